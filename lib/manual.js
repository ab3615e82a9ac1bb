'use strict';
// Manual processing, as BullMQ's: `new Worker(name, null)` runs nothing by itself; the
// application takes jobs with `worker.getNextJob(token)` and finishes them with
// `job.moveToCompleted(value, token)` / `job.moveToFailed(err, token)`. The engine
// (src/engine/manual.rs) runs the worker's own scripts, on the shared command connection.

const binding = require('../binding.js');
const { callSync, callAsync, invalid } = require('./errors');
const { serializeConnection } = require('./connection');
const { toWaitingChildren } = require('./job');
const { nextRun } = require('./cron');

// Worker options that are JavaScript-only (not for the engine).
const JS_ONLY = new Set(['connection', 'settings', 'autorun']);

function engineOptsJson(opts) {
  const out = {};
  for (const [k, v] of Object.entries(opts || {})) if (!JS_ONLY.has(k) && typeof v !== 'function') out[k] = v;
  return JSON.stringify(out);
}

// One NativeManualWorker per Worker, or per (connection, prefix, queue) for jobs that did not
// come from getNextJob.
const fallbacks = new Map();

function manualOf(worker) {
  if (!worker._manualNative) {
    const native = callSync(
      () => new binding.NativeManualWorker(worker.name, engineOptsJson(worker.opts), serializeConnection(worker.opts.connection)),
    );
    Object.defineProperty(worker, '_manualNative', { value: native, enumerable: false });
  }
  return worker._manualNative;
}

function manualForJob(job) {
  if (job._manualNative) return job._manualNative;
  const qualified = job.queueQualifiedName;
  const prefix = qualified.slice(0, qualified.length - job.queueName.length - 1);
  const conn = job._queue ? serializeConnection(job._queue.opts && job._queue.opts.connection) : null;
  const key = `${conn ?? ''}\u0000${prefix}\u0000${job.queueName}`;
  let native = fallbacks.get(key);
  if (!native) {
    native = callSync(() => new binding.NativeManualWorker(job.queueName, JSON.stringify({ prefix }), conn));
    fallbacks.set(key, native);
  }
  return native;
}

function install({ Worker, Queue, QueueJob, Job }) {
  // A Queue of ours per worker: the jobs it hands out are Queue jobs (updateProgress, log,
  // updateData, getState... all work on them).
  const queueOf = (worker) => {
    if (!worker._manualQueue) {
      // Internal (BullMQ's Worker writes no queue meta).
      const q = new Queue(worker.name, { prefix: worker.opts.prefix, connection: worker.opts.connection, skipMetasUpdate: true });
      q.on('error', () => {});
      Object.defineProperty(worker, '_manualQueue', { value: q, enumerable: false });
    }
    return worker._manualQueue;
  };

  const toJob = (worker, record, token) => {
    if (!record) return undefined;
    const job = new QueueJob(queueOf(worker), record);
    job.token = token;
    // A job the worker handed out reports its progress on the worker, as BullMQ's does.
    job._onProgress = (j, progress) => worker._safeEmit('progress', j, progress);
    Object.defineProperty(job, '_manualNative', { value: manualOf(worker), enumerable: false });
    // A job taken by hand is moved by hand: to delayed (then nothing to throw), to
    // waiting-children, or back to wait.
    Object.defineProperty(job, 'moveToDelayed', {
      configurable: true,
      writable: true,
      value(timestamp, tok = this.token) {
        return callAsync(() => this._manualNative.moveToDelayed(this.id, String(tok), Number(timestamp)));
      },
    });
    Object.defineProperty(job, 'moveToWaitingChildren', {
      configurable: true,
      writable: true,
      value(tok = this.token, opts = {}) {
        return toWaitingChildren(this._manualNative, this.id, tok, opts);
      },
    });
    return job;
  };

  // A job scheduler's iteration was taken: add the next one now, as BullMQ's getNextJob does
  // (its worker loop's path; the engine does it for processor workers). The cron run is
  // computed here (the engine has no cron parser); a failure is the worker's 'error' event and
  // the job is still handed out.
  const scheduleNext = async (worker, native, record) => {
    const scheduler = record.fields.rjk;
    try {
      let cronNext = null;
      const opts = record.fields.opts ? JSON.parse(record.fields.opts) : {};
      const repeat = opts.repeat;
      if (repeat && repeat.pattern && !repeat.every) {
        const after = Math.max(Date.now(), Number(opts.prevMillis) || 0);
        cronNext = await nextRun(worker.opts.settings && worker.opts.settings.repeatStrategy, after, repeat, record.fields.name);
      }
      await callAsync(() => native.scheduleNext(record.id, record.fields.opts ?? null, scheduler, cronNext));
    } catch (err) {
      worker._safeEmit('error', err instanceof Error ? err : new Error(String(err)));
    }
  };

  const nextData = (record) => (record ? [record.fields, record.id, 0, 0] : undefined);

  Object.defineProperty(Worker.prototype, 'getNextJob', {
    configurable: true,
    writable: true,
    /**
     * Take the next job, locked with `token`. With `block` (default true) wait for one up to
     * the worker's drainDelay (s, default 5); resolves undefined when there is none.
     */
    async value(token, { block = true } = {}) {
      if (typeof token !== 'string' || token === '') throw invalid('token', 'must be a non-empty string');
      // As BullMQ: a paused or closing worker takes nothing.
      if (this._paused || this._closing) return undefined;
      const native = manualOf(this);
      binding.syncClock(Date.now());
      const deadline = Date.now() + (this.opts.drainDelay ?? 5) * 1000;
      for (;;) {
        const record = await callAsync(() => native.nextJob(token));
        if (record) {
          const job = toJob(this, record, token);
          if (record.fields.rjk) await scheduleNext(this, native, record);
          this._safeEmit('active', job, 'waiting');
          return job;
        }
        if (!block || this._closing || Date.now() >= deadline) return undefined;
        await new Promise((r) => setTimeout(r, 25));
      }
    },
  });

  const jobMethods = {
    /**
     * Complete this active job (held by `token`); with fetchNext (default true) the next job
     * is taken in the same call: resolves [fields, id, 0, 0] for it, or undefined.
     */
    async moveToCompleted(returnValue, token, fetchNext = true) {
      let json;
      try {
        json = JSON.stringify(returnValue === undefined ? null : returnValue);
      } catch (err) {
        throw invalid('returnValue', `is not serialisable (${err.message})`);
      }
      binding.syncClock(Date.now());
      const next = await callAsync(() => manualForJob(this).complete(this.id, String(token), json ?? 'null', Boolean(fetchNext)));
      this.returnvalue = returnValue;
      this.finishedOn = Date.now();
      this.attemptsMade += 1;
      return nextData(next);
    },

    /** Back to waiting without counting the attempt (BullMQ's moveToWait); resolves the rate-limit ms left. */
    moveToWait(token) {
      return callAsync(() => manualForJob(this).moveToWait(this.id, String(token ?? this.token ?? '0')));
    },

    /**
     * Fail this attempt (held by `token`): retried while attempts remain (at once or after the
     * backoff) unless the error is an UnrecoverableError or the job was discarded, else failed.
     */
    async moveToFailed(err, token, fetchNext = false) {
      const message = err && err.message !== undefined ? String(err.message) : String(err);
      const stack = err && typeof err.stack === 'string' ? err.stack : null;
      const unrecoverable = (err && err.name === 'UnrecoverableError') || this.discarded === true;
      binding.syncClock(Date.now());
      const next = await callAsync(() =>
        manualForJob(this).fail(this.id, String(token), message, stack, unrecoverable, Boolean(fetchNext)),
      );
      // The job as BullMQ's moveToFailed leaves it: the stack kept (within stackTraceLimit),
      // finishedOn when this was the last attempt, one more attempt made.
      this.failedReason = message;
      const retried = !unrecoverable && this.attemptsMade + 1 < (Number(this.opts.attempts) || 0);
      if (stack) {
        const kept = Array.isArray(this.stacktrace) ? [...this.stacktrace, stack] : [stack];
        const limit = this.opts.stackTraceLimit;
        this.stacktrace = limit === 0 ? [] : limit ? kept.slice(-limit) : kept;
      }
      if (!retried) this.finishedOn = Date.now();
      this.attemptsMade += 1;
      return nextData(next);
    },
  };
  for (const [name, fn] of Object.entries(jobMethods)) {
    Object.defineProperty(Job.prototype, name, { value: fn, writable: true, configurable: true });
  }
}

module.exports = { install };
