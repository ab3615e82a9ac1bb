'use strict';
// Observability methods of Queue: BullMQ's job metrics (getMetrics) and its Prometheus text
// (exportPrometheusMetrics). Kept apart from queue.js and installed on Queue.prototype.

const { callAsync, invalid } = require('./errors');

// BullMQ's label escaping (Prometheus text format: backslash, double quote, newline).
function escapeLabel(value) {
  return String(value).replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

const queueMethods = {
  /**
   * BullMQ's metrics of `type` ('completed' | 'failed'), as recorded by workers with the
   * `metrics: { maxDataPoints }` option: `{ meta: { count, prevTS, prevCount }, data, count }`,
   * data = points start..end (one per minute, newest first), count = how many points exist.
   */
  async getMetrics(type, start = 0, end = -1) {
    if (!Number.isInteger(start) || !Number.isInteger(end)) throw invalid('start/end', 'must be integers');
    const m = await callAsync(() => this._native.getMetrics(String(type), start, end));
    return {
      meta: {
        count: parseInt(m.count || '0', 10),
        prevTS: parseInt(m.prevTs || '0', 10),
        prevCount: parseInt(m.prevCount || '0', 10),
      },
      data: m.data.map((point) => +point || 0),
      count: m.points,
    };
  },

  /**
   * The queue in Prometheus text format, as BullMQ writes it: `bullmq_job_count` per state
   * (getJobCounts()), `bullmq_job_completed_total` and `bullmq_job_failed_total` (from the
   * metrics), each with label queue plus the given `globalVariables` as extra labels.
   */
  async exportPrometheusMetrics(globalVariables) {
    const [counts, completed, failed] = await Promise.all([
      this.getJobCounts(),
      this.getMetrics('completed'),
      this.getMetrics('failed'),
    ]);
    const queue = escapeLabel(this.name);
    const extra = globalVariables
      ? Object.keys(globalVariables)
          .map((name) => `, ${name}="${escapeLabel(globalVariables[name])}"`)
          .join('')
      : '';
    const lines = ['# HELP bullmq_job_count Number of jobs in the queue by state', '# TYPE bullmq_job_count gauge'];
    for (const [state, count] of Object.entries(counts)) {
      lines.push(`bullmq_job_count{queue="${queue}", state="${state}"${extra}} ${count}`);
    }
    lines.push(
      '# HELP bullmq_job_completed_total Total number of completed jobs',
      '# TYPE bullmq_job_completed_total counter',
      `bullmq_job_completed_total{queue="${queue}"${extra}} ${completed.meta.count}`,
      '# HELP bullmq_job_failed_total Total number of failed jobs',
      '# TYPE bullmq_job_failed_total counter',
      `bullmq_job_failed_total{queue="${queue}"${extra}} ${failed.meta.count}`,
    );
    return lines.join('\n');
  },
};

/** Add the observability methods to the Queue class. */
function installQueueMethods(QueueClass) {
  for (const [name, fn] of Object.entries(queueMethods)) {
    Object.defineProperty(QueueClass.prototype, name, { value: fn, writable: true, configurable: true });
  }
}

module.exports = { installQueueMethods, escapeLabel };
