'use strict';
// Observability methods of Queue: BullMQ's job metrics (getMetrics) and its Prometheus text
// (exportPrometheusMetrics). Kept apart from queue.js and installed on Queue.prototype.

const { monitorEventLoopDelay } = require('perf_hooks');
const binding = require('../binding.js');
const { callAsync, callSync, invalid } = require('./errors');
const connection = require('./connection');

// Our command socket's client name while workers run on it (src/engine/connection/naming.rs):
// queue-native:command:<base64 of prefix:queue, comma-separated>:<pid>.
const SERVING = /^queue-native:command:([A-Za-z0-9+/=,.!]+):(\d+)$/;

/**
 * CLIENT LIST read for `queue`: BullMQ's clients whose name `isBull(bullName, name)` accepts,
 * and, for each entry of our command sockets' names that `ours(entry, bullName)` maps to
 * `{ queue, rawname }` with `queue` = this queue, one entry; each in BullMQ's shape.
 */
async function listClients(queue, isBull, ours) {
  const text = await connection.command(['CLIENT', 'LIST'], queue.opts.connection);
  const bullName = `${queue.prefix}:${Buffer.from(queue.name).toString('base64')}`;
  const wanted = Buffer.from(`${queue.prefix}:${queue.name}`).toString('base64');
  const out = [];
  for (const line of String(text).split(/\r?\n/)) {
    if (!line) continue;
    const client = parseClient(line);
    const name = client.name || '';
    if (isBull(bullName, name)) {
      out.push({ ...client, name: queue.name, rawname: name });
      continue;
    }
    const m = SERVING.exec(name);
    if (!m) continue;
    for (const entry of m[1].split(',')) {
      const found = ours(entry, bullName);
      if (found && found.queue === wanted) out.push({ ...client, name: queue.name, rawname: found.rawname });
    }
  }
  return out;
}

// One CLIENT LIST line -> { field: value } (values are text, as BullMQ gives them).
function parseClient(line) {
  const client = {};
  for (const pair of line.split(' ')) {
    const at = pair.indexOf('=');
    if (at > 0) client[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return client;
}

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
   * The workers serving this queue, in BullMQ's shape: one entry per Worker, with the
   * `CLIENT LIST` fields of the socket it runs on, `name` = the queue's name and `rawname` =
   * the client name BullMQ's Worker would have (`<prefix>:<base64 queue name>`, plus
   * `:w:<name>` for a named worker). Ours are read from the entries of our command sockets'
   * names (one socket serves every Worker of a process; see src/engine/connection/naming.rs);
   * BullMQ's own workers on the same queue (a migration in progress) are listed as BullMQ
   * lists them.
   */
  getWorkers() {
    return listClients(this, (bullName, name) => name === bullName || name.startsWith(`${bullName}:w:`), (entry, bullName) => {
      const [queue, workerName] = entry.split('.');
      if (queue.startsWith('!')) return null;
      const suffix = workerName === undefined ? '' : `:w:${Buffer.from(workerName, 'base64').toString()}`;
      return { queue, rawname: `${bullName}${suffix}` };
    });
  },

  /**
   * The QueueEvents listening to this queue, in BullMQ's shape (BullMQ deprecates it, and
   * still has it): one entry per QueueEvents of ours (from our command sockets' names) or of
   * BullMQ's, `rawname` = `<prefix>:<base64 queue name>:qe` as BullMQ names its socket.
   */
  getQueueEvents() {
    return listClients(this, (bullName, name) => name === `${bullName}:qe`, (entry, bullName) =>
      entry.startsWith('!') ? { queue: entry.slice(1), rawname: `${bullName}:qe` } : null,
    );
  },

  /** How many workers serve this queue (getWorkers().length). */
  async getWorkersCount() {
    return (await this.getWorkers()).length;
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

// The event loop's delay, sampled every 10 ms from the first metrics() call on (a process
// that never asks pays nothing). Each read reports the delays since the previous read.
let loopMonitor = null;

function eventLoopDelay() {
  if (!loopMonitor) {
    loopMonitor = monitorEventLoopDelay({ resolution: 10 });
    loopMonitor.enable();
  }
  const h = loopMonitor;
  // The histogram is in ns; before its first sample min is a huge sentinel and mean NaN.
  const s = (ns) => (Number.isFinite(ns) && h.count > 0 ? ns / 1e9 : 0);
  const out = {
    min: s(h.min),
    max: s(h.max),
    mean: s(h.mean),
    p50: s(h.percentile(50)),
    p90: s(h.percentile(90)),
    p99: s(h.percentile(99)),
    samples: h.count,
  };
  h.reset();
  return out;
}

function histogram(h) {
  return { buckets: h.buckets.map((b) => ({ le: b.le, count: b.count })), sum: h.sum, count: h.count };
}

/**
 * The process view: sockets per endpoint and role, reconnects, dispatcher wake-ups and the
 * wake -> fetch latency, lock-renewal lag, the JS-bridge backlog, per queue the jobs in
 * flight, processed / failed counts and processing times, and the event loop's delay.
 * Synchronous and cheap (atomic counters in the engine); durations in seconds.
 */
function metrics() {
  const m = callSync(() => binding.processMetrics());
  return {
    endpoints: m.endpoints.map((e) => ({
      endpoint: e.endpoint,
      sockets: { command: e.command, blocking: e.blocking },
      reconnects: e.reconnects,
    })),
    dispatcher: {
      wakeups: { marker: m.dispatcherWakeupsMarker, timeout: m.dispatcherWakeupsTimeout },
      wakeToFetchSeconds: histogram(m.wakeToFetchSeconds),
    },
    lockRenewalLagSeconds: histogram(m.lockRenewalLagSeconds),
    bridgeBacklog: m.bridgeBacklog,
    queues: m.queues.map((q) => ({
      prefix: q.prefix,
      queue: q.queue,
      inFlight: q.inFlight,
      processed: q.processed,
      failed: q.failed,
      processingSeconds: histogram(q.processingSeconds),
    })),
    eventLoopDelaySeconds: eventLoopDelay(),
  };
}

function labels(pairs) {
  const parts = Object.entries(pairs).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

function family(lines, name, type, help) {
  lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
}

function histogramLines(lines, name, labelPairs, h) {
  for (const b of h.buckets) lines.push(`${name}_bucket${labels({ ...labelPairs, le: String(b.le) })} ${b.count}`);
  lines.push(`${name}_bucket${labels({ ...labelPairs, le: '+Inf' })} ${h.count}`);
  lines.push(`${name}_sum${labels(labelPairs)} ${h.sum}`);
  lines.push(`${name}_count${labels(labelPairs)} ${h.count}`);
}

/** metrics() in the Prometheus text format (names `queue_native_*`, seconds, `_total` counters). */
function metricsText() {
  const m = metrics();
  const lines = [];
  family(lines, 'queue_native_connections', 'gauge', 'Sockets open to Redis, by endpoint and role (command, blocking).');
  for (const e of m.endpoints) {
    for (const role of ['command', 'blocking']) {
      lines.push(`queue_native_connections${labels({ endpoint: e.endpoint, role })} ${e.sockets[role]}`);
    }
  }
  family(lines, 'queue_native_reconnects_total', 'counter', 'Reconnects after a lost socket, by endpoint.');
  for (const e of m.endpoints) lines.push(`queue_native_reconnects_total${labels({ endpoint: e.endpoint })} ${e.reconnects}`);
  family(
    lines,
    'queue_native_dispatcher_wakeups_total',
    'counter',
    'Waiting workers woken by the dispatcher, by reason (marker popped, wait timed out).',
  );
  for (const reason of ['marker', 'timeout']) {
    lines.push(`queue_native_dispatcher_wakeups_total${labels({ reason })} ${m.dispatcher.wakeups[reason]}`);
  }
  family(lines, 'queue_native_dispatcher_wake_to_fetch_seconds', 'histogram', "From a marker wake-up to the worker's fetch reply.");
  histogramLines(lines, 'queue_native_dispatcher_wake_to_fetch_seconds', {}, m.dispatcher.wakeToFetchSeconds);
  family(lines, 'queue_native_lock_renewal_lag_seconds', 'histogram', 'How late each job lock renewal ran past its due time.');
  histogramLines(lines, 'queue_native_lock_renewal_lag_seconds', {}, m.lockRenewalLagSeconds);
  family(lines, 'queue_native_bridge_backlog_jobs', 'gauge', 'Jobs handed to the JavaScript thread and not yet picked up by it.');
  lines.push(`queue_native_bridge_backlog_jobs ${m.bridgeBacklog}`);
  family(lines, 'queue_native_jobs_in_flight', 'gauge', "Jobs active in this process's workers, by queue.");
  for (const q of m.queues) lines.push(`queue_native_jobs_in_flight${labels({ prefix: q.prefix, queue: q.queue })} ${q.inFlight}`);
  family(lines, 'queue_native_jobs_processed_total', 'counter', 'Processor runs that ended (any outcome), by queue.');
  for (const q of m.queues) lines.push(`queue_native_jobs_processed_total${labels({ prefix: q.prefix, queue: q.queue })} ${q.processed}`);
  family(lines, 'queue_native_jobs_failed_total', 'counter', 'Processor runs that ended in a failure (retried or final), by queue.');
  for (const q of m.queues) lines.push(`queue_native_jobs_failed_total${labels({ prefix: q.prefix, queue: q.queue })} ${q.failed}`);
  family(lines, 'queue_native_job_processing_seconds', 'histogram', 'How long the processor ran, by queue.');
  for (const q of m.queues) histogramLines(lines, 'queue_native_job_processing_seconds', { prefix: q.prefix, queue: q.queue }, q.processingSeconds);
  family(
    lines,
    'queue_native_event_loop_delay_seconds',
    'gauge',
    "The Node.js event loop's delay since the previous read, by quantile (perf_hooks.monitorEventLoopDelay).",
  );
  const d = m.eventLoopDelaySeconds;
  for (const [quantile, v] of [['0.5', d.p50], ['0.9', d.p90], ['0.99', d.p99], ['1', d.max]]) {
    lines.push(`queue_native_event_loop_delay_seconds${labels({ quantile })} ${v}`);
  }
  return `${lines.join('\n')}\n`;
}

/** Add the observability methods to the Queue class. */
function installQueueMethods(QueueClass) {
  for (const [name, fn] of Object.entries(queueMethods)) {
    Object.defineProperty(QueueClass.prototype, name, { value: fn, writable: true, configurable: true });
  }
}

module.exports = { installQueueMethods, escapeLabel, metrics, metricsText };
