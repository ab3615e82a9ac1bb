'use strict';
// BullMQ's `telemetry` option ({ tracer, contextManager, meter? }: the interface bullmq-otel
// implements) on Queue and Worker: producer spans for add / addBulk that store the trace
// context in the job's `tm` option, consumer spans that continue it around the processor,
// BullMQ's span names and attributes, and its job counters / duration histogram on a meter.

const crypto = require('crypto');

// OpenTelemetry's SpanKind values, as BullMQ passes them.
const SPAN_KIND = { INTERNAL: 0, PRODUCER: 3, CONSUMER: 4 };
// BullMQ's attribute and metric names (its TelemetryAttributes / MetricNames).
const ATTR = {
  queueName: 'bullmq.queue.name',
  operation: 'bullmq.queue.operation',
  bulkCount: 'bullmq.job.bulk.count',
  bulkNames: 'bullmq.job.bulk.names',
  jobName: 'bullmq.job.name',
  jobId: 'bullmq.job.id',
  attemptsMade: 'bullmq.job.attempts.made',
  workerName: 'bullmq.worker.name',
  workerId: 'bullmq.worker.id',
  finishedAt: 'bullmq.job.attempt_finished_timestamp',
  processedAt: 'bullmq.job.processed.timestamp',
  result: 'bullmq.job.result',
  failedReason: 'bullmq.job.failed.reason',
  jobState: 'bullmq.job.state',
};
const METRIC = {
  completed: 'bullmq.jobs.completed',
  failed: 'bullmq.jobs.failed',
  delayed: 'bullmq.jobs.delayed',
  retried: 'bullmq.jobs.retried',
  duration: 'bullmq.job.duration',
};
// Outcomes that are not failures: the processor moved the job itself, or hit a rate limit.
const NOT_FAILED = new Set(['DelayedError', 'WaitingChildrenError', 'WaitingError', 'RateLimitError']);

function checkTelemetry(telemetry) {
  if (telemetry === undefined || telemetry === null) return undefined;
  const ok =
    typeof telemetry === 'object' &&
    telemetry.tracer &&
    typeof telemetry.tracer.startSpan === 'function' &&
    telemetry.contextManager &&
    ['active', 'with', 'getMetadata', 'fromMetadata'].every((m) => typeof telemetry.contextManager[m] === 'function');
  if (!ok) {
    const { invalid } = require('./errors');
    throw invalid('telemetry', 'must be { tracer, contextManager, meter? } (for example new BullMQOtel(...))');
  }
  return telemetry;
}

/**
 * Run `fn(span, metadata)` in a span `<operation> <destination>` of `kind`. A consumer span
 * continues the context carried by `parentMetadata`; `metadata` is the new span's context,
 * ready to store in a job. Errors that escape are recorded on the span.
 */
async function inSpan(telemetry, kind, queueName, operation, destination, fn, parentMetadata) {
  const { tracer, contextManager } = telemetry;
  const active = contextManager.active();
  const parent = parentMetadata ? contextManager.fromMetadata(active, parentMetadata) : undefined;
  const span = tracer.startSpan(`${operation} ${destination}`, { kind }, parent);
  try {
    span.setAttributes({ [ATTR.queueName]: queueName, [ATTR.operation]: operation });
    const ctx = span.setSpanOnContext(kind === SPAN_KIND.CONSUMER && parent ? parent : active);
    const metadata = kind === SPAN_KIND.PRODUCER ? contextManager.getMetadata(ctx) : undefined;
    return await contextManager.with(ctx, () => fn(span, metadata));
  } catch (err) {
    span.recordException(err);
    throw err;
  } finally {
    span.end();
  }
}

/** Queue.add / addBulk with producer spans when the queue has `opts.telemetry`. */
function installQueueTelemetry(QueueClass) {
  const plainAdd = QueueClass.prototype.add;
  const plainAddBulk = QueueClass.prototype.addBulk;
  Object.defineProperty(QueueClass.prototype, 'add', {
    configurable: true,
    writable: true,
    value: function add(name, data, opts) {
      if (!this.opts.telemetry) return plainAdd.call(this, name, data, opts);
      let telemetry;
      try {
        telemetry = checkTelemetry(this.opts.telemetry);
      } catch (err) {
        return Promise.reject(err);
      }
      return inSpan(telemetry, SPAN_KIND.PRODUCER, this.name, 'add', `${this.name}.${name}`, async (span, metadata) => {
        let withContext = opts;
        if (metadata && !(opts && opts.telemetry && opts.telemetry.omitContext)) {
          withContext = { ...opts, telemetry: { metadata } };
        }
        const job = await plainAdd.call(this, name, data, withContext);
        span.setAttributes({ [ATTR.jobName]: name, [ATTR.jobId]: job.id });
        return job;
      });
    },
  });
  Object.defineProperty(QueueClass.prototype, 'addBulk', {
    configurable: true,
    writable: true,
    value: function addBulk(jobs) {
      if (!this.opts.telemetry || !Array.isArray(jobs)) return plainAddBulk.call(this, jobs);
      let telemetry;
      try {
        telemetry = checkTelemetry(this.opts.telemetry);
      } catch (err) {
        return Promise.reject(err);
      }
      return inSpan(telemetry, SPAN_KIND.PRODUCER, this.name, 'addBulk', this.name, (span, metadata) => {
        span.setAttributes({ [ATTR.bulkNames]: jobs.map((j) => j && j.name), [ATTR.bulkCount]: jobs.length });
        const traced = jobs.map((entry) => {
          if (entry === null || typeof entry !== 'object') return entry;
          const own = entry.opts && entry.opts.telemetry;
          let telemetryOpt = own;
          if (metadata) {
            const omitContext = own && own.omitContext;
            const carried = (own && own.metadata) || (!omitContext && metadata);
            if (carried || omitContext) telemetryOpt = { metadata: carried, omitContext };
          }
          // The key order of the stored opts: the job's own, then jobId, then telemetry.
          const opts = Object.assign({}, entry.opts, { jobId: entry.opts ? entry.opts.jobId : undefined, telemetry: telemetryOpt });
          return { ...entry, opts };
        });
        return plainAddBulk.call(this, traced);
      });
    },
  });
}

/**
 * The processor of a Worker with `opts.telemetry`: each run in a consumer span
 * `process <queue>` continuing the job's stored context (`tm`), with BullMQ's attributes and
 * a `job completed` / `job failed` event. Keeps the processor's arity (it decides whether
 * the processor gets an AbortSignal).
 */
function traceProcessor(processor, telemetry, worker) {
  const traced = async function tracedProcessor(job, token, signal) {
    const opts = job.opts || {};
    const parent = opts.omc ? undefined : opts.tm || (opts.telemetry && opts.telemetry.metadata);
    // The processor's error is the job's outcome, not the span's: it leaves the span as a
    // value (BullMQ records no exception on the consumer span, only its `job failed` event).
    const outcome = await inSpan(
      telemetry,
      SPAN_KIND.CONSUMER,
      worker.name,
      'process',
      worker.name,
      async (span) => {
        span.setAttributes({
          [ATTR.workerId]: worker.id,
          [ATTR.workerName]: worker.opts.name,
          [ATTR.jobId]: job.id,
          [ATTR.jobName]: job.name,
        });
        try {
          const result = await processor.call(worker, job, token, signal);
          span.addEvent('job completed', { [ATTR.result]: JSON.stringify(result) });
          span.setAttributes({ [ATTR.attemptsMade]: job.attemptsMade + 1 });
          return { result };
        } catch (err) {
          const name = err && err.name;
          if (!NOT_FAILED.has(name)) {
            span.addEvent('job failed', { [ATTR.failedReason]: err && err.message !== undefined ? String(err.message) : String(err) });
            span.setAttributes({ [ATTR.attemptsMade]: job.attemptsMade + 1 });
          }
          return { thrown: err, failed: true };
        } finally {
          span.setAttributes({ [ATTR.finishedAt]: job.finishedOn || Date.now(), [ATTR.processedAt]: job.processedOn });
        }
      },
      parent,
    );
    if (outcome.failed) throw outcome.thrown;
    return outcome.result;
  };
  Object.defineProperty(traced, 'length', { value: processor.length });
  return traced;
}

/** BullMQ's job counters and duration histogram on `telemetry.meter`, from the worker's events. */
function recordJobMetrics(worker, meter) {
  const record = (job, state) => {
    const attributes = { [ATTR.queueName]: worker.name, [ATTR.jobName]: job.name, [ATTR.jobState]: state };
    meter.createCounter(METRIC[state], { description: `Number of jobs ${state}`, unit: '1' }).add(1, attributes);
    if (job.processedOn) {
      meter
        .createHistogram(METRIC.duration, { description: 'Job processing duration', unit: 'ms' })
        .record(Date.now() - job.processedOn, attributes);
    }
  };
  worker.on('completed', (job) => job && record(job, 'completed'));
  worker.on('failed', (job, err) => {
    if (!job) return;
    const attempts = (job.opts && job.opts.attempts) || 1;
    const final = (err && err.name === 'UnrecoverableError') || job.attemptsMade >= attempts;
    if (final) {
      record(job, 'failed');
      return;
    }
    const backoff = job.opts && job.opts.backoff;
    const delay = typeof backoff === 'number' ? backoff : backoff && typeof backoff === 'object' ? backoff.delay : 0;
    record(job, delay > 0 ? 'delayed' : 'retried');
  });
}

/** Set up a Worker's telemetry: its id, the traced processor, the meter's job metrics. */
function instrumentWorker(worker, processor, telemetry) {
  if (!worker.id) Object.defineProperty(worker, 'id', { value: crypto.randomUUID(), enumerable: true });
  if (!telemetry) return processor;
  if (telemetry.meter) recordJobMetrics(worker, telemetry.meter);
  return traceProcessor(processor, telemetry, worker);
}

module.exports = { checkTelemetry, installQueueTelemetry, instrumentWorker, SPAN_KIND, ATTR };
