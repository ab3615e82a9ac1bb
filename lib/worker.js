'use strict';
// Worker: BullMQ's Worker shape over the engine's runner. The engine owns fetching, locks,
// retries and Redis; this class owns the JavaScript side: running the processor, turning
// whatever it does into a plain outcome, and emitting BullMQ's events.

const { EventEmitter } = require('events');
const binding = require('../binding.js');
const {
  QueueNativeError,
  UnrecoverableError,
  RateLimitError,
  RATE_LIMIT_MESSAGE,
  callSync,
  callAsync,
  invalid,
} = require('./errors');
const { serializeConnection, liveWorkers } = require('./connection');
const { Job } = require('./job');
const { cronCallback } = require('./cron');

const BUILTIN_BACKOFF = new Set(['fixed', 'exponential']);
// Names of errors that mean "the processor moved the job itself" (ours and BullMQ's).
const MOVED = new Set(['DelayedError', 'WaitingChildrenError', 'WaitingError']);

// A manual rate limit: our RateLimitError or BullMQ's (`Worker.RateLimitError()`), which
// BullMQ recognises by its message.
function isRateLimit(name, message) {
  return name === 'RateLimitError' || message === RATE_LIMIT_MESSAGE;
}
// Options that only the JavaScript side uses; everything else goes to the engine.
const JS_ONLY = new Set(['connection', 'autorun', 'settings']);

function describeThrown(thrown) {
  if (thrown instanceof Error) {
    return { message: String(thrown.message), stack: thrown.stack, name: thrown.name };
  }
  // Processors that throw strings, objects or undefined still get a readable failedReason.
  let message;
  if (typeof thrown === 'string') message = thrown;
  else if (thrown === undefined) message = 'processor threw undefined';
  else {
    try {
      message = `processor threw a non-Error: ${JSON.stringify(thrown)}`;
    } catch {
      message = `processor threw a non-Error: ${String(thrown)}`;
    }
  }
  return { message, stack: undefined, name: thrown && typeof thrown.name === 'string' ? thrown.name : 'Error' };
}

function toError(thrown) {
  if (thrown instanceof Error) return thrown;
  const err = new Error(describeThrown(thrown).message);
  err.thrown = thrown;
  return err;
}

/** Empties one pending list of settled outcomes: [seqs, items] for the native call. */
function takeSettled(pending) {
  const taken = [pending.seqs, pending.items];
  pending.seqs = [];
  pending.items = [];
  return taken;
}

class Worker extends EventEmitter {
  constructor(queueName, processor, opts = {}) {
    super();
    if (typeof queueName !== 'string' || queueName.length === 0) throw invalid('queueName', 'must be a non-empty string');
    if (typeof processor !== 'function') {
      throw invalid('processor', 'must be a function (sandboxed processor files are not supported)');
    }
    if (opts === null || typeof opts !== 'object') throw invalid('opts', 'must be an object');
    const settings = opts.settings || {};
    if (settings.backoffStrategy !== undefined && typeof settings.backoffStrategy !== 'function') {
      throw invalid('settings.backoffStrategy', 'must be a function');
    }
    this.name = queueName;
    this.opts = opts;
    this._processor = processor;
    this._backoffStrategy = settings.backoffStrategy;
    this._inFlight = new Map();
    // Outcomes settled in the same tick go back in one call (see _settle): completed jobs as
    // two flat arrays (completeValues), anything else as outcome objects (completeMany).
    this._done = { seqs: [], items: [] };
    this._other = { seqs: [], items: [] };
    this._flushSettled = () => {
      if (this._done.seqs.length) this._native.completeValues(...takeSettled(this._done));
      if (this._other.seqs.length) this._native.completeMany(...takeSettled(this._other));
    };

    this._closing = null;
    this._keepAlive = null;
    this._runPromise = null;
    const engineOpts = {};
    for (const [k, v] of Object.entries(opts)) if (!JS_ONLY.has(k) && typeof v !== 'function') engineOpts[k] = v;
    let optsJson;
    try {
      optsJson = JSON.stringify(engineOpts);
    } catch (err) {
      throw invalid('opts', `is not serialisable (${err.message})`);
    }
    const connectionJson = serializeConnection(opts.connection);
    this._native = callSync(
      () =>
        new binding.NativeWorker(
          queueName,
          optsJson,
          connectionJson,
          (delivery) => this._deliver(delivery),
          cronCallback,
        ),
    );
    liveWorkers.add(this);
    if (opts.autorun !== false) {
      this.run().catch((err) => this._emitError(err));
    }
  }

  /** BullMQ's `Worker.RateLimitError()`: throw it after `worker.rateLimit(ms)`. */
  static RateLimitError() {
    return new RateLimitError();
  }

  /**
   * Rate-limit the queue for `ms` (BullMQ's `worker.rateLimit`): sets the queue's limiter
   * key, which holds back every worker that knows a max (limiter option or global limit),
   * and this worker fetches nothing until then. Then throw `Worker.RateLimitError()` from
   * the processor to put the current job back to waiting without counting the attempt.
   */
  rateLimit(ms) {
    if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 1) {
      return Promise.reject(invalid('rateLimit', 'expire time must be a positive number of ms'));
    }
    return callAsync(() => this._native.rateLimit(ms));
  }

  get concurrency() {
    return this._native.concurrency();
  }

  set concurrency(n) {
    if (!Number.isInteger(n) || n < 1) throw invalid('concurrency', 'must be a positive integer');
    callSync(() => this._native.setConcurrency(n));
  }

  /** Start processing; resolves when the worker has closed. */
  run() {
    if (this._runPromise) return this._runPromise;
    if (this._closing) return Promise.reject(new QueueNativeError('ERR_CLOSED', `worker for ${this.name} is closed`));
    // The engine's sockets live outside libuv; this handle keeps Node alive while we run.
    this._keepAlive = setInterval(() => {}, 1 << 30);
    this._runPromise = new Promise((resolve) => {
      this._resolveRun = resolve;
    });
    callSync(() => this._native.run());
    this.waitUntilReady().then(
      () => {
        if (!this._closing) this.emit('ready');
      },
      (err) => this._emitError(err),
    );
    return this._runPromise;
  }

  waitUntilReady(timeoutMs = 30000) {
    return callAsync(() => this._native.waitUntilReady(timeoutMs));
  }

  isRunning() {
    return this._native.isRunning();
  }

  isPaused() {
    return this._native.isPaused();
  }

  pause(doNotWaitActive = false) {
    return callAsync(() => this._native.pause(Boolean(doNotWaitActive)));
  }

  resume() {
    this._native.resume();
  }

  /** Fire the AbortSignal of an in-flight job. */
  cancelJob(jobId, reason) {
    const entry = this._inFlight.get(String(jobId));
    if (!entry || !entry.controller) return false;
    entry.controller.abort(reason === undefined ? new Error(`job ${jobId} cancelled`) : reason);
    return true;
  }

  cancelAllJobs(reason) {
    for (const id of this._inFlight.keys()) this.cancelJob(id, reason);
  }

  /**
   * Graceful (default): stop fetching, let in-flight jobs finish, write their results.
   * Forced: stop now, abort the jobs' signals; their locks expire and the stalled checker
   * recovers them. Idempotent.
   */
  close(force = false) {
    if (this._closing) return this._closing;
    this._closing = (async () => {
      if (force) {
        this._forced = true;
        this.cancelAllJobs(new Error('worker closed'));
      }
      try {
        await callAsync(() => this._native.close(Boolean(force)));
      } finally {
        // Even a failed close must not leave a handle holding the process.
        liveWorkers.delete(this);
        if (this._keepAlive) clearInterval(this._keepAlive);
        this._keepAlive = null;
        if (this._resolveRun) this._resolveRun();
      }
      this.emit('closed');
    })();
    return this._closing;
  }

  _emitError(err) {
    // An 'error' without listeners must not crash the application: connection trouble is
    // also visible in health() and onConnection('error').
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }

  // One call from the engine: events that piled up, then jobs to run (see Bridge in
  // src/binding/worker.rs). Each job's outcome goes back through _settle.
  _deliver(delivery) {
    if (delivery.events) this._onEngineEvents(delivery.events);
    if (delivery.jobs) for (const payload of delivery.jobs) this._run(payload);
  }

  _run(payload) {
    this._process(payload).then(
      (outcome) => this._settle(payload.seq, outcome),
      (err) => this._settle(payload.seq, { kind: 'failed', message: describeThrown(err).message }),
    );
  }

  // The jobs of one delivery usually settle in the same microtask run: their outcomes cross
  // in one call, so the engine sees them together and writes them with one finishing script
  // call (src/engine/worker.rs, FinishQueue).
  _settle(seq, outcome) {
    if (this._done.seqs.length === 0 && this._other.seqs.length === 0) queueMicrotask(this._flushSettled);
    const completed = outcome.kind === 'completed';
    const pending = completed ? this._done : this._other;
    pending.seqs.push(seq);
    pending.items.push(completed ? outcome.value : outcome);
  }

  async _process(payload) {
    let job;
    try {
      const fields = JSON.parse(payload.fieldsJson);
      job = new Job(this._native, this.name, { id: payload.id, token: payload.token, fields }, this.opts.prefix || 'bull');
    } catch (err) {
      return { kind: 'failed', message: err.message, unrecoverable: true };
    }
    job._onProgress = (j, progress) => this.emit('progress', j, progress);
    // An AbortController costs more than the rest of the hand-over; a processor declared with
    // one or two parameters cannot see the signal, so it gets none (length 0 may be variadic).
    const arity = this._processor.length;
    const controller = arity >= 3 || arity === 0 ? new AbortController() : null;
    // A job handed over while a forced close was under way starts out aborted.
    if (this._forced && controller) controller.abort(new Error('worker closed'));
    const entry = { job, controller, result: undefined, error: undefined };
    this._inFlight.set(job.id, entry);
    this.emit('active', job, 'waiting');
    let result;
    try {
      result = await this._processor(job, payload.token, controller ? controller.signal : undefined);
    } catch (thrown) {
      return this._failure(entry, thrown);
    }
    let value;
    try {
      value = JSON.stringify(result === undefined ? null : result);
    } catch (err) {
      const reason = `ERR_RESULT_NOT_SERIALISABLE: the result of job ${job.id} cannot be stored as JSON (${err.message})`;
      entry.error = new QueueNativeError('ERR_RESULT_NOT_SERIALISABLE', reason);
      return { kind: 'failed', message: reason, stack: entry.error.stack, unrecoverable: true };
    }
    entry.result = result === undefined ? null : result;
    return { kind: 'completed', value: value === undefined ? 'null' : value };
  }

  async _failure(entry, thrown) {
    const { message, stack, name } = describeThrown(thrown);
    if (isRateLimit(name, message)) {
      this._inFlight.delete(entry.job.id);
      return { kind: 'ratelimited' };
    }
    if (MOVED.has(name)) {
      this._inFlight.delete(entry.job.id);
      return { kind: 'moved' };
    }
    entry.error = toError(thrown);
    const outcome = { kind: 'failed', message, stack, unrecoverable: name === 'UnrecoverableError' };
    const backoff = entry.job.opts.backoff;
    const type = backoff && typeof backoff === 'object' ? backoff.type : undefined;
    if (type && !BUILTIN_BACKOFF.has(type) && this._backoffStrategy) {
      try {
        const delay = await this._backoffStrategy(entry.job.attemptsMade + 1, type, entry.error, entry.job);
        outcome.backoff = typeof delay === 'number' && Number.isFinite(delay) ? delay : 0;
      } catch (err) {
        outcome.message = `${message} (and backoffStrategy threw: ${describeThrown(err).message})`;
        outcome.unrecoverable = true;
      }
    }
    return outcome;
  }

  _onEngineEvents(events) {
    for (const ev of events) this._onEngineEvent(ev);
  }

  _onEngineEvent(ev) {
    switch (ev.event) {
      case 'completed': {
        const entry = this._inFlight.get(ev.jobId);
        this._inFlight.delete(ev.jobId);
        if (!entry) return;
        entry.job.returnvalue = entry.result;
        entry.job.finishedOn = Date.now();
        this.emit('completed', entry.job, entry.result, 'active');
        return;
      }
      case 'failed': {
        let entry = this._inFlight.get(ev.jobId);
        this._inFlight.delete(ev.jobId);
        if (!entry && ev.fields) {
          // A deferred failure: the processor never saw this job, but listeners get it.
          try {
            entry = { job: new Job(this._native, this.name, { id: ev.jobId, fields: ev.fields }, this.opts.prefix || 'bull') };
          } catch {
            entry = undefined;
          }
        }
        // BullMQ fails a deferred failure with an UnrecoverableError of that message.
        const err = entry && entry.error ? entry.error : ev.fields ? new UnrecoverableError(ev.message) : new Error(ev.message);
        if (entry) {
          entry.job.failedReason = ev.message;
          entry.job.attemptsMade += 1;
          if (!ev.willRetry) entry.job.finishedOn = Date.now();
        }
        this.emit('failed', entry ? entry.job : undefined, err, 'active');
        return;
      }
      case 'stalled':
        this.emit('stalled', ev.jobId, 'active');
        return;
      case 'drained':
        this.emit('drained');
        return;
      case 'error': {
        if (ev.jobId) this._inFlight.delete(ev.jobId);
        this._emitError(new QueueNativeError(ev.code || 'ERR_REDIS', ev.message || 'worker error', ev.jobId ? { jobId: ev.jobId } : undefined));
        return;
      }
      default:
    }
  }
}

module.exports = { Worker };
