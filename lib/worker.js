'use strict';
// Worker: BullMQ's Worker shape over the engine's runner. The engine owns fetching, locks,
// retries and Redis; this class owns the JavaScript side: running the processor, turning
// whatever it does into a plain outcome, and emitting BullMQ's events.

const { EventEmitter } = require('events');
const binding = require('./native');
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
const { addsSettled } = require('./queue');
const { cronCallback } = require('./cron');
const { checkTelemetry, instrumentWorker } = require('./telemetry');

const BUILTIN_BACKOFF = new Set(['fixed', 'exponential']);
// Names of errors that mean "the processor moved the job itself" (ours and BullMQ's).
const MOVED = new Set(['DelayedError', 'WaitingChildrenError', 'WaitingError']);

// A manual rate limit: our RateLimitError or BullMQ's (`Worker.RateLimitError()`), which
// BullMQ recognises by its message.
function isRateLimit(name, message) {
  return name === 'RateLimitError' || message === RATE_LIMIT_MESSAGE;
}
// Options that only the JavaScript side uses; everything else goes to the engine.
const JS_ONLY = new Set(['connection', 'autorun', 'settings', 'telemetry']);

// BullMQ's texts for the rules it shares with us (users match on them); err.code stays ours.
const CONCURRENCY_RULE = 'concurrency must be a finite number greater than 0';
const ALREADY_RUNNING = 'Worker is already running.';
// The engine's text (BullMQ's) for a parent that cannot complete because a child failed.
const FAILED_CHILD = /at least one failed child/;

function checkConcurrency(n) {
  // BullMQ's exact text (its tests compare the whole message).
  if (typeof n !== 'number' || !Number.isFinite(n) || n < 1) throw new QueueNativeError('ERR_INVALID_OPTION', CONCURRENCY_RULE);
  if (!Number.isInteger(n)) throw invalid('concurrency', 'concurrency must be an integer');
}

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
    if (typeof queueName !== 'string' || queueName.length === 0) throw invalid('queueName', 'Queue name must be provided');
    // null / undefined: manual processing (getNextJob + job.moveToCompleted / moveToFailed,
    // lib/manual.js), as BullMQ's `new Worker(name, null)`.
    if (processor !== null && processor !== undefined && typeof processor !== 'function') {
      throw invalid('processor', 'must be a function (sandboxed processor files are not supported)');
    }
    if (opts === null || typeof opts !== 'object') throw invalid('opts', 'must be an object');
    // JSON would turn NaN or Infinity into null, which the engine reads as "not given".
    if (opts.concurrency !== undefined && opts.concurrency !== null) checkConcurrency(opts.concurrency);
    const settings = opts.settings || {};
    if (settings.backoffStrategy !== undefined && typeof settings.backoffStrategy !== 'function') {
      throw invalid('settings.backoffStrategy', 'must be a function');
    }
    if (settings.repeatStrategy !== undefined && typeof settings.repeatStrategy !== 'function') {
      throw invalid('settings.repeatStrategy', 'must be a function');
    }
    this.name = queueName;
    this.opts = opts;
    this._processor = instrumentWorker(this, processor, checkTelemetry(opts.telemetry));
    this._backoffStrategy = settings.backoffStrategy;
    this._inFlight = new Map();
    // Outcomes settled in the same tick go back in one call (see _settle): completed jobs as
    // two flat arrays (completeValues), anything else as outcome objects (completeMany).
    this._done = { seqs: [], items: [] };
    this._other = { seqs: [], items: [] };
    this._flushSettled = () => {
      // BullMQ stamps finishedOn (and ages out kept jobs) by JavaScript's clock, mocked or not.
      binding.syncClock(Date.now());
      if (this._done.seqs.length) this._native.completeValues(...takeSettled(this._done));
      if (this._other.seqs.length) this._native.completeMany(...takeSettled(this._other));
    };

    this._closing = null;
    this._keepAlive = null;
    // BullMQ's lifecycle: run() resolves when the worker closes or is paused; while paused
    // the worker is not running, and resume() starts it again.
    this._running = false;
    this._resolveRun = null;
    this._paused = false;
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
          cronCallback(settings.repeatStrategy),
        ),
    );
    liveWorkers.add(this);
    // Jobs this worker hands out find their endpoint for job.getState() & co. (lib/surface.js).
    require('./surface').registerQueue(opts.prefix || 'bull', queueName, connectionJson);
    if (opts.autorun !== false && this._processor) {
      this.run().catch((err) => this._emitError(err));
    }
    // As BullMQ: 'ready' once the connections are up, run or not (a worker with autorun
    // false is ready too); a connection that fails reports through 'error' on its own.
    this.waitUntilReady().then(
      () =>
        setTimeout(() => {
          if (!this._closing) this._safeEmit('ready');
        }, 0),
      () => {},
    );
  }

  /** BullMQ's `Worker.RateLimitError()`: throw it after `worker.rateLimit(ms)`. */
  static RateLimitError() {
    return new RateLimitError();
  }

  /**
   * Rate-limit the queue for `ms` (BullMQ's `worker.rateLimit`): sets the queue's limiter
   * key, which holds back every worker that knows a max (limiter option or global limit),
   * this one included; there is no local timer, so `queue.removeRateLimitKey()` lifts it.
   * Then throw `Worker.RateLimitError()` from the processor to put the current job back to
   * waiting without counting the attempt (the worker then waits the key's TTL, as BullMQ's).
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
    checkConcurrency(n);
    callSync(() => this._native.setConcurrency(n));
  }

  /**
   * Start processing; resolves when the worker has closed or has been paused (as BullMQ's).
   * Rejects while already running; resolves at once while paused or closing.
   */
  run() {
    if (!this._processor) return Promise.reject(new QueueNativeError('ERR_INVALID_OPTION', 'No process function is defined.'));
    if (this._running) return Promise.reject(new QueueNativeError('ERR_ALREADY_RUNNING', ALREADY_RUNNING));
    if (this._closing || this._paused) return Promise.resolve();
    this._running = true;
    // The jobs it takes are stamped (processedOn) by JavaScript's clock, mocked or not.
    binding.syncClock(Date.now());
    // The engine's sockets live outside libuv; this handle keeps Node alive while we run.
    if (!this._keepAlive) this._keepAlive = setInterval(() => {}, 1 << 30);
    const running = new Promise((resolve) => {
      this._resolveRun = resolve;
    });
    try {
      callSync(() => this._native.run());
    } catch (err) {
      this._stopRunning();
      return Promise.reject(err);
    }
    return running;
  }

  _stopRunning() {
    this._running = false;
    const resolve = this._resolveRun;
    this._resolveRun = null;
    if (resolve) resolve();
  }

  waitUntilReady(timeoutMs = 30000) {
    return callAsync(() => this._native.waitUntilReady(timeoutMs));
  }

  isRunning() {
    return this._running;
  }

  /**
   * How long (s) the engine's blocking wait for a job lasts, as BullMQ's getBlockTimeout:
   * until `blockUntil` (ms since the epoch; a delayed job due then), at most 10 s and at
   * least the smallest timeout the server honours (1 ms from Redis 7.0.8, else 2 ms), or 0
   * or less once it has passed; without it, drainDelay (s), at least that smallest timeout.
   */
  getBlockTimeout(blockUntil) {
    const version = this.getBackend().redisVersion;
    const [major, minor, patch] = String(version || '7.0.8').split('.').map((n) => parseInt(n, 10) || 0);
    const old = major < 7 || (major === 7 && minor === 0 && patch < 8);
    const least = old ? 0.002 : 0.001;
    if (blockUntil) {
      const left = (blockUntil - Date.now()) / 1000;
      if (left <= 0) return left;
      return Math.min(Math.max(left, least), 10);
    }
    return Math.max(this.opts.drainDelay ?? 5, least);
  }

  /**
   * BullMQ's `moveStalledJobsToWait()`: one stalled check of the queue now (a manual worker
   * has no loop to run it): jobs whose lock is gone go back to waiting, or are marked to fail
   * when stalled too often; every worker of this process on the queue emits 'stalled' (jobId)
   * for each. At most once per stalledInterval across all workers, as the periodic check.
   */
  async moveStalledJobsToWait() {
    await callAsync(() => this._native.moveStalledJobsToWait());
  }

  /**
   * BullMQ's Worker#delay: resolves after `milliseconds` (default 1 ms) or when
   * `abortController` aborts. BullMQ's loop waits with it between fetches; ours waits in the
   * engine, so this is only the public helper (tests that stub it find it).
   */
  delay(milliseconds, abortController) {
    return new Promise((resolve) => {
      const signal = abortController && abortController.signal;
      if (signal && signal.aborted) {
        resolve();
        return;
      }
      const done = () => {
        clearTimeout(timer);
        if (signal) signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, milliseconds || 1);
      if (signal) signal.addEventListener('abort', done, { once: true });
    });
  }

  isPaused() {
    return this._paused;
  }

  /** Stop fetching (unless doNotWaitActive, after the active jobs end); then 'paused'. */
  async pause(doNotWaitActive = false) {
    if (this._paused) return;
    this._paused = true;
    await callAsync(() => this._native.pause(Boolean(doNotWaitActive)));
    if (!doNotWaitActive) {
      // As BullMQ's: run() has resolved, and its callbacks have run, before 'paused'.
      this._stopRunning();
      await new Promise((resolve) => setImmediate(resolve));
    }
    this._safeEmit('paused');
  }

  /** Fetch again; a worker that is not running (paused, or never run) starts. Then 'resumed'. */
  async resume() {
    if (this._running && !this._paused) return;
    this._paused = false;
    this._native.resume();
    if (!this._running && !this._closing) this.run().catch((err) => this._emitError(err));
    this._safeEmit('resumed');
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
        // A closed worker stays closed: its callbacks into this object go too (the events
        // already queued are still delivered), so that it leaves no handle behind.
        this._native.release();
        if (this._keepAlive) clearInterval(this._keepAlive);
        this._keepAlive = null;
        this._stopRunning();
      }
      this._safeEmit('closed');
    })();
    return this._closing;
  }

  _emitError(err) {
    // An 'error' without listeners must not crash the application: connection trouble is
    // also visible in health() and onConnection('error').
    if (this.listenerCount('error') === 0) return;
    try {
      this.emit('error', err);
    } catch (thrown) {
      // A throwing 'error' listener is the application's own crash, as with any emitter; it
      // surfaces on its own tick so that the job or the delivery being handled goes on.
      process.nextTick(() => {
        throw thrown;
      });
    }
  }

  // Listeners are user code: whatever one throws becomes an 'error' event (as BullMQ
  // reports it) and never leaves a job without an outcome or a delivery half-handled.
  _safeEmit(event, ...args) {
    try {
      this.emit(event, ...args);
    } catch (err) {
      this._emitError(err);
    }
  }

  // One call from the engine: events that piled up, then jobs to run (see Bridge in
  // src/binding/worker.rs). Each job's outcome goes back through _settle.
  _deliver(delivery) {
    if (delivery.events) this._onEngineEvents(delivery.events);
    if (!delivery.jobs) return;
    // A job added by this process starts only after its add() has resolved (and the code
    // awaiting it has run), as with BullMQ: see addsSettled in lib/queue.js.
    const settled = addsSettled();
    if (settled) settled.then(() => this._runAll(delivery.jobs));
    else this._runAll(delivery.jobs);
  }

  _runAll(jobs) {
    for (const payload of jobs) this._run(payload);
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
    this._safeEmit('active', job, 'waiting');
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
    // job.discard() (BullMQ 5): this failure is final, as with an UnrecoverableError.
    const unrecoverable = name === 'UnrecoverableError' || entry.job.discarded === true;
    const outcome = { kind: 'failed', message, stack, unrecoverable };
    const backoff = entry.job.opts.backoff;
    const type = backoff && typeof backoff === 'object' ? backoff.type : undefined;
    if (type && !BUILTIN_BACKOFF.has(type) && this._backoffStrategy) {
      try {
        const delay = await this._backoffStrategy(entry.job.attemptsMade + 1, type, entry.error, entry.job);
        outcome.backoff = typeof delay === 'number' && Number.isFinite(delay) ? delay : 0;
      } catch (err) {
        // BullMQ reports the strategy's error as an 'error' event (and leaves the job to the
        // stalled check); the job fails here instead, so it never lingers without an outcome.
        this._emitError(toError(err));
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
        entry.job.attemptsMade += 1;
        this._safeEmit('completed', entry.job, entry.result, 'active');
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
        // BullMQ fails a deferred failure, and a parent whose completion found a failed child,
        // with an UnrecoverableError of that message.
        const unrecoverable = ev.fields || FAILED_CHILD.test(ev.message || '');
        const err = entry && entry.error ? entry.error : unrecoverable ? new UnrecoverableError(ev.message) : new Error(ev.message);
        if (entry) {
          entry.job.failedReason = ev.message;
          entry.job.attemptsMade += 1;
          if (typeof ev.delay === 'number' && ev.delay > 0) entry.job.delay = ev.delay;
          if (!ev.willRetry) entry.job.finishedOn = Date.now();
        }
        this._safeEmit('failed', entry ? entry.job : undefined, err, 'active');
        return;
      }
      case 'stalled':
        this._safeEmit('stalled', ev.jobId, 'active');
        return;
      case 'drained':
        this._safeEmit('drained');
        return;
      case 'clock':
        // The engine waits for a time to come on a mocked clock (fake timers): it asks.
        binding.syncClock(Date.now());
        return;
      case 'error': {
        // A completion refused for the job's state (pending or failed children) is followed
        // by that job's 'failed' event, which still needs the job; any other error, or a
        // second one, ends the job's time here.
        const entry = ev.jobId ? this._inFlight.get(ev.jobId) : undefined;
        if (entry) {
          entry.errors = (entry.errors || 0) + 1;
          if (ev.code !== 'ERR_JOB_STATE' || entry.errors > 1) this._inFlight.delete(ev.jobId);
        }
        this._emitError(new QueueNativeError(ev.code || 'ERR_REDIS', ev.message || 'worker error', ev.jobId ? { jobId: ev.jobId } : undefined));
        return;
      }
      default:
    }
  }
}

module.exports = { Worker };
