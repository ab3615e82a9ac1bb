'use strict';
// The Job a processor receives: BullMQ's field names, parsed from the raw hash the engine
// hands over. Data and options are JSON text in Redis and are parsed here, in V8.

const { callAsync, QueueNativeError, UnrecoverableError } = require('./errors');

function int(v, fallback = 0) {
  if (v === undefined || v === null || v === '') return fallback;
  const n = Number(v);
  return Number.isFinite(n) ? Math.trunc(n) : fallback;
}

function lenientJson(text, fallback) {
  if (text === undefined || text === null || text === '') return fallback;
  try {
    return JSON.parse(text);
  } catch {
    return fallback;
  }
}

// Stored option names and the names BullMQ's Job shows (its optsDecodeMap); `tm` and `omc`
// are telemetry's two fields.
const LONG_OPTION = {
  de: 'deduplication',
  fpof: 'failParentOnFailure',
  cpof: 'continueParentOnFailure',
  idof: 'ignoreDependencyOnFailure',
  kl: 'keepLogs',
  rdof: 'removeDependencyOnFailure',
};

// The engine's text for a job with a failed child (BullMQ's words, src/engine/scripts.rs).
const FAILED_CHILD = /at least one failed child/;

function decodeOpts(text) {
  const stored = lenientJson(text, {});
  if (stored === null || typeof stored !== 'object' || Array.isArray(stored)) return {};
  const opts = {};
  for (const [key, value] of Object.entries(stored)) {
    if (LONG_OPTION[key]) opts[LONG_OPTION[key]] = value;
    else if (key === 'tm') opts.telemetry = { ...opts.telemetry, metadata: value };
    else if (key === 'omc') opts.telemetry = { ...opts.telemetry, omitContext: value };
    else opts[key] = value;
  }
  return opts;
}

class Job {
  // Private fields: not enumerable (a job spreads or logs as BullMQ's does), and, unlike
  // per-instance defineProperty, cheap to create for every job.
  #native;
  #prefix;

  /** @internal built by the Worker from the engine's payload */
  constructor(native, queueName, payload, prefix = 'bull') {
    const f = payload.fields;
    this.#native = native;
    this.#prefix = prefix;
    this.id = payload.id;
    this.name = f.name ?? '';
    this.queueName = queueName;
    try {
      this.data = f.data === undefined ? {} : JSON.parse(f.data);
    } catch (err) {
      throw new QueueNativeError('ERR_JOB_DATA', `ERR_JOB_DATA: job ${payload.id} in queue ${queueName} has data that is not valid JSON (${err.message})`);
    }
    this.opts = decodeOpts(f.opts);
    this.timestamp = int(f.timestamp);
    this.processedOn = f.processedOn !== undefined ? int(f.processedOn) : undefined;
    this.attemptsMade = int(f.atm ?? f.attemptsMade);
    this.attemptsStarted = int(f.ats);
    this.stalledCounter = int(f.stc);
    this.progress = lenientJson(f.progress, 0);
    this.delay = int(f.delay);
    this.priority = int(f.priority);
    this.token = payload.token;
    this.stacktrace = lenientJson(f.stacktrace, []);
    this.failedReason = f.failedReason;
    this.returnvalue = lenientJson(f.returnvalue, null);
    this.finishedOn = f.finishedOn !== undefined ? int(f.finishedOn) : undefined;
    if (f.parentKey) this.parentKey = f.parentKey;
    if (f.parent) this.parent = lenientJson(f.parent, undefined);
    if (f.rjk) this.repeatJobKey = f.rjk;
    // As BullMQ's Job: the id from the options, overridden by the stored `deid`.
    const de = this.opts.deduplication;
    if (de && de.id) this.deduplicationId = de.id;
    if (f.deid) this.deduplicationId = f.deid;
    if (f.pb) this.processedBy = f.pb;
  }

  async updateProgress(progress) {
    const json = JSON.stringify(progress);
    await callAsync(() => this.#native.updateProgress(this.id, json));
    this.progress = progress;
    if (this._onProgress) this._onProgress(this, progress);
  }

  /** Append a log line; resolves with the number of lines now kept. */
  log(line) {
    const keep = this.opts.keepLogs;
    return callAsync(() => this.#native.addLog(this.id, String(line), typeof keep === 'number' ? keep : undefined));
  }

  async updateData(data) {
    const json = JSON.stringify(data === undefined ? {} : data);
    await callAsync(() => this.#native.updateData(this.id, json));
    this.data = data;
  }

  /** Move this (active) job to delayed until `timestampMs`; then throw a DelayedError. */
  moveToDelayed(timestampMs, token = this.token) {
    return callAsync(() => this.#native.moveToDelayed(this.id, token, Number(timestampMs)));
  }

  /** `<prefix>:<queue>`: what a child's `parent.queue` option names (BullMQ's field). */
  get queueQualifiedName() {
    return `${this.#prefix}:${this.queueName}`;
  }

  /**
   * Flow parents: move this (active) job to waiting-children while it has pending children
   * (only `opts.child` = `{ id, queue }`, if given, with `queue` = its queueQualifiedName).
   * Resolves true when moved: the processor must then throw a WaitingChildrenError; false
   * when there is nothing to wait for (the job stays active and the processor goes on).
   */
  moveToWaitingChildren(token = this.token, opts = {}) {
    const child = opts && opts.child;
    const childKey = child ? `${child.queue}:${child.id}` : undefined;
    return callAsync(() => this.#native.moveToWaitingChildren(this.id, String(token), childKey)).catch((err) => {
      // A failed child can never complete this job: BullMQ throws an UnrecoverableError, so a
      // processor that lets it through fails the job at once, without retries.
      if (err && err.code === 'ERR_JOB_STATE' && FAILED_CHILD.test(err.message)) {
        const unrecoverable = new UnrecoverableError(err.message);
        unrecoverable.code = err.code;
        throw unrecoverable;
      }
      throw err;
    });
  }

  /** Flow parents: results of the children, keyed by child job key. */
  async getChildrenValues() {
    const raw = await callAsync(() => this.#native.childrenValues(this.id));
    const out = {};
    for (const [key, value] of Object.entries(raw)) out[key] = lenientJson(value, value);
    return out;
  }

  async getDependenciesCount() {
    const [unprocessed, processed] = await callAsync(() => this.#native.dependenciesCount(this.id));
    return { processed, unprocessed };
  }

  toJSON() {
    const { _onProgress, ...rest } = this;
    return rest;
  }
}

module.exports = { Job };
