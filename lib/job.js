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

/**
 * The stored options `stored` (a parsed `opts` field) under the names BullMQ shows, added to
 * `into`: short names made long, `tm` / `omc` as telemetry's fields, the rest as stored (BullMQ's
 * optsFromJSON).
 */
function longOptions(stored, into = {}) {
  const opts = into;
  if (stored !== null && typeof stored === 'object' && !Array.isArray(stored)) {
    for (const [key, value] of Object.entries(stored)) {
      if (LONG_OPTION[key]) opts[LONG_OPTION[key]] = value;
      else if (key === 'tm') opts.telemetry = { ...opts.telemetry, metadata: value };
      else if (key === 'omc') opts.telemetry = { ...opts.telemetry, omitContext: value };
      else opts[key] = value;
    }
  }
  return opts;
}

// The engine's text for a job with a failed child (BullMQ's words, src/engine/scripts.rs).
const FAILED_CHILD = /at least one failed child/;

// The options as BullMQ's Job constructor leaves them: `attempts` first (0 when not stored),
// no `repeatJobKey`, and a `backoff` key always (a number becomes {type: 'fixed', delay}).
function decodeOpts(text) {
  const stored = lenientJson(text, {});
  const { repeatJobKey: _dropped, ...opts } = longOptions(stored, { attempts: 0 });
  const backoff = opts.backoff;
  opts.backoff = Number.isFinite(backoff) ? { type: 'fixed', delay: backoff } : backoff || undefined;
  return opts;
}

/**
 * Job#moveToWaitingChildren through `native` (the worker's, or a manual worker's for a job
 * taken by hand).
 */
function toWaitingChildren(native, jobId, token, opts) {
  const child = opts && opts.child;
  const childKey = child ? `${child.queue}:${child.id}` : undefined;
  return callAsync(() => native.moveToWaitingChildren(jobId, String(token), childKey)).catch((err) => {
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

/** The payload of a job made with BullMQ's `new Job(queue, name, data, opts, id)`. */
function unsavedPayload(name, data, opts, id) {
  const fields = {
    name,
    data: JSON.stringify(data === undefined ? {} : data),
    opts: JSON.stringify(opts),
    timestamp: String(opts.timestamp ?? Date.now()),
    delay: String(opts.delay ?? 0),
    priority: String(opts.priority ?? 0),
  };
  if (opts.parent) {
    fields.parentKey = `${opts.parent.queue}:${opts.parent.id}`;
    fields.parent = JSON.stringify({ id: opts.parent.id, queueKey: opts.parent.queue });
  }
  // As BullMQ's: the id is the fifth argument only (opts.jobId is not read here).
  return { id, fields, created: true };
}

class Job {
  // Private fields: not enumerable (a job spreads or logs as BullMQ's does), and, unlike
  // per-instance defineProperty, cheap to create for every job.
  #native;
  #prefix;
  // Made by an add (Queue.add, FlowProducer) rather than read from Redis: BullMQ's Job then
  // has no `parent` key unless it has a parent (see toJSON).
  #created;

  /**
   * @internal built by the Worker from the engine's payload. Also BullMQ's
   * `new Job(queue, name, data, opts, id)`: a job not stored yet, for `job.addJob()`.
   */
  constructor(native, queueName, payload, prefix = 'bull', bullId = undefined) {
    let queue;
    if (native && native._native !== undefined && typeof native.add === 'function' && typeof queueName === 'string') {
      // BullMQ's form: (queue, name, data, opts, id).
      queue = native;
      const opts = prefix && typeof prefix === 'object' ? prefix : {};
      payload = unsavedPayload(queueName, payload, opts, bullId);
      queueName = queue.name;
      native = queue._native;
      prefix = queue.prefix ?? 'bull';
    }
    const f = payload.fields;
    this.#native = native;
    this.#prefix = prefix;
    this.#created = payload.created === true;
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
    if (f.defa) this.deferredFailure = f.defa;
    if (this.#created) {
      // BullMQ's Job as its constructor leaves it (no read from Redis yet).
      this.delay = this.opts.delay;
      this.stacktrace = null;
    }
    if (queue) {
      Object.defineProperty(this, '_queue', { value: queue, enumerable: false });
    }
  }

  /**
   * Store a job made with `new Job(queue, name, data, opts)` (BullMQ's addJob; the client
   * argument is not needed: the queue's connection is used). Resolves the job's id. With
   * `parentOpts.parentKey`, the job is added as that parent's child.
   */
  async addJob(_client, parentOpts) {
    if (!this._queue) throw new QueueNativeError('ERR_JOB_STATE', `job ${this.id}: addJob needs a job made with new Job(queue, name, data, opts)`);
    const { jobId: _ignored, ...opts } = this.opts;
    if (this.id !== undefined) opts.jobId = this.id;
    const parentKey = parentOpts && parentOpts.parentKey;
    if (parentKey) {
      const at = parentKey.lastIndexOf(':');
      opts.parent = { id: parentKey.slice(at + 1), queue: parentKey.slice(0, at) };
    }
    const added = await this._queue.add(this.name, this.data, opts);
    this.id = added.id;
    this.timestamp = added.timestamp;
    return added.id;
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
    return toWaitingChildren(this.#native, this.id, token, opts);
  }

  /** Flow parents: results of the children, keyed by child job key. */
  async getChildrenValues() {
    const raw = await callAsync(() => this.#native.childrenValues(this.id));
    const out = {};
    for (const [key, value] of Object.entries(raw)) out[key] = lenientJson(value, value);
    return out;
  }

  /**
   * BullMQ's counts of this parent's children: processed, unprocessed, ignored, failed; with
   * opts (e.g. `{ failed: true }`) only the types asked for.
   */
  async getDependenciesCount(opts = {}) {
    const [unprocessed, processed, ignored, failed] = await callAsync(() => this.#native.dependenciesCount(this.id));
    const all = { processed, unprocessed, ignored, failed };
    const wanted = Object.keys(opts || {}).filter((type) => opts[type] && type in all);
    if (!wanted.length) return all;
    const counts = {};
    for (const type of wanted) counts[type] = all[type];
    return counts;
  }

  /**
   * The keys of BullMQ's Job.toJSON, in its order. BullMQ returns the instance's own
   * properties, so its keys depend on how the job was made: its constructor's (`parent` only
   * with a parent, `toKey` and `queueQualifiedName` included), then what a read from Redis or
   * a later move adds when set, then the worker's token.
   */
  toJSON() {
    const out = {
      name: this.name,
      data: this.data,
      opts: this.opts,
      id: this.id,
      progress: this.progress,
      returnvalue: this.returnvalue,
      stacktrace: this.stacktrace,
      delay: this.delay,
      priority: this.priority,
      attemptsStarted: this.attemptsStarted,
      attemptsMade: this.attemptsMade,
      stalledCounter: this.stalledCounter,
      repeatJobKey: this.repeatJobKey,
      timestamp: this.timestamp,
      parentKey: this.parentKey,
    };
    if (this.opts && this.opts.parent) out.parent = this.parent;
    out.deduplicationId = this.deduplicationId;
    const qualified = `${this.#prefix}:${this.queueName}`;
    out.toKey = (type) => `${qualified}:${type}`;
    out.queueQualifiedName = qualified;
    if (this.finishedOn) out.finishedOn = this.finishedOn;
    if (this.processedOn) out.processedOn = this.processedOn;
    if (this.failedReason) out.failedReason = this.failedReason;
    if (this.deferredFailure) out.deferredFailure = this.deferredFailure;
    if (!this.#created && !('parent' in out)) out.parent = this.parent;
    if (this.processedBy) out.processedBy = this.processedBy;
    if (this.token !== undefined) out.token = this.token;
    return out;
  }
}

module.exports = { Job, toWaitingChildren, longOptions };
