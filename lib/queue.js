'use strict';
// Queue: BullMQ's producer and admin API (add, addBulk, getters, counts, pause/resume,
// drain, clean, job.retry) on the process-wide command connection. The engine validates,
// normalises and stores; this class owns the JavaScript side: merging defaultJobOptions the
// way BullMQ does, serialising data, building Job objects and emitting events.

const { EventEmitter } = require('events');
const binding = require('./native');
const { QueueNativeError, callSync, callAsync, invalid } = require('./errors');
const connection = require('./connection');
const { Job } = require('./job');

// getJobCounts() without types counts these (BullMQ's list).
const DEFAULT_COUNT_TYPES = ['active', 'completed', 'delayed', 'failed', 'prioritized', 'waiting', 'waiting-children'];
// The add() / addBulk() promises of this process not settled yet. The job's activation and
// the add's reply travel on different paths, so a Worker of this process could start a job
// before its add() resolved; BullMQ's never does (activation costs it one more round trip).
// Workers hold back the jobs of a delivery until the adds pending then have settled.
const addsInFlight = new Set();

function trackAdd(promise) {
  addsInFlight.add(promise);
  const done = () => addsInFlight.delete(promise);
  promise.then(done, done);
  return promise;
}

/** Resolves once every add pending now has settled (undefined when none is). */
function addsSettled() {
  if (addsInFlight.size === 0) return undefined;
  return Promise.allSettled([...addsInFlight]);
}

/**
 * A job read or added by a Queue: the Worker's Job, knowing its Queue (job.retry(), installed
 * by lib/surface.js on every Job, uses it instead of opening one).
 */
class QueueJob extends Job {
  constructor(queue, payload) {
    super(queue._native, queue.name, payload, queue.prefix);
    Object.defineProperty(this, '_queue', { value: queue, enumerable: false });
  }

  moveToDelayed() {
    return Promise.reject(
      new QueueNativeError('ERR_JOB_STATE', `job ${this.id}: only its processor can move an active job to delayed`),
    );
  }
}

// Connection errors reach the 'error' event of every open queue on that endpoint; the
// listener is there only while a queue is open (see connection.offConnection).
const liveQueues = new Set();
function toOpenQueues(err) {
  for (const q of liveQueues) if (q._endpoint === err.endpoint) q._emitError(err);
}
function addLiveQueue(queue) {
  if (liveQueues.size === 0) connection.onConnection('error', toOpenQueues);
  liveQueues.add(queue);
}
function removeLiveQueue(queue) {
  if (liveQueues.delete(queue) && liveQueues.size === 0) connection.offConnection('error', toOpenQueues);
}

function flattenTypes(types) {
  const flat = types.flat().filter((t) => t !== undefined);
  for (const t of flat) if (typeof t !== 'string') throw invalid('types', 'must be job state names');
  return [...new Set(flat)];
}

function checkRange(start, end) {
  if (!Number.isInteger(start) || !Number.isInteger(end)) throw invalid('start/end', 'must be integers');
}

/**
 * The options of a job just added, keyed as BullMQ's Job constructor leaves them: `attempts`
 * first, then every merged key in order (those left undefined too, e.g. `jobId`, which JSON
 * drops on the way to the engine), `backoff` last when not given. Values are the engine's
 * normalised ones.
 */
function asConstructed(normalised, merged) {
  const opts = { attempts: normalised.attempts };
  for (const key of Object.keys(merged)) {
    if (key !== 'repeatJobKey') opts[key] = key in normalised ? normalised[key] : merged[key];
  }
  if (!('backoff' in opts)) opts.backoff = normalised.backoff;
  return opts;
}

class Queue extends EventEmitter {
  constructor(name, opts = {}) {
    super();
    if (typeof name !== 'string' || name.length === 0) throw invalid('name', 'Queue name must be provided');
    if (opts === null || typeof opts !== 'object') throw invalid('opts', 'must be an object');
    const defaults = opts.defaultJobOptions;
    if (defaults !== undefined && (defaults === null || typeof defaults !== 'object' || Array.isArray(defaults))) {
      throw invalid('defaultJobOptions', 'must be an object');
    }
    const repeatStrategy = opts.settings && opts.settings.repeatStrategy;
    if (repeatStrategy !== undefined && typeof repeatStrategy !== 'function') {
      throw invalid('settings.repeatStrategy', 'must be a function');
    }
    this.name = name;
    this.opts = opts;
    this.jobsOpts = defaults ?? {};
    this.prefix = opts.prefix ?? 'bull';
    this.qualifiedName = `${this.prefix}:${name}`;
    this._closing = null;
    const connectionJson = connection.serializeConnection(opts.connection);
    let optsJson;
    try {
      optsJson = JSON.stringify({ prefix: opts.prefix });
    } catch (err) {
      throw invalid('prefix', `is not serialisable (${err.message})`);
    }
    this._native = callSync(() => new binding.NativeQueue(name, optsJson, connectionJson));
    this._endpoint = callSync(() => binding.resolveEndpoint(connectionJson));
    addLiveQueue(this);
  }

  /** A copy of the options merged into every job added. */
  get defaultJobOptions() {
    return { ...this.jobsOpts };
  }

  /** Resolves once the shared connections are up. */
  waitUntilReady(timeoutMs = 30000) {
    return callAsync(() => this._native.waitUntilReady(timeoutMs));
  }

  /** Add one job; resolves with it (its id is the existing one when deduplicated). */
  add(name, data, opts) {
    return trackAdd(
      this._add([{ name, data, opts }], true).then(([job]) => {
        this.emit('waiting', job);
        return job;
      }),
    );
  }

  /** Add many jobs in one round trip (one script call). */
  addBulk(jobs) {
    if (!Array.isArray(jobs)) return Promise.reject(invalid('jobs', 'must be an array of { name, data, opts? }'));
    return trackAdd(this._add(jobs, false));
  }

  async _add(jobs, single) {
    const inputs = jobs.map((entry, i) => {
      const at = single ? '' : `jobs[${i}].`;
      if (entry === null || typeof entry !== 'object') throw invalid(`jobs[${i}]`, 'must be { name, data, opts? }');
      const { name, data, opts } = entry;
      if (typeof name !== 'string') throw invalid(`${at}name`, 'must be a string');
      if (opts !== undefined && opts !== null && (typeof opts !== 'object' || Array.isArray(opts))) {
        throw invalid(`${at}opts`, 'must be an object');
      }
      let dataJson;
      try {
        dataJson = JSON.stringify(data === undefined ? {} : data);
      } catch (err) {
        throw invalid(`${at}data`, `is not serialisable (${err.message})`);
      }
      if (typeof dataJson !== 'string') throw invalid(`${at}data`, 'is not serialisable (JSON.stringify gave nothing)');
      // BullMQ: Object.assign({}, defaultJobOptions, opts, { jobId: opts.jobId }); the key
      // order decides the stored `opts` text, so it is built the same way.
      // addBulk also sets `telemetry` (undefined unless given), which only shows in job.opts.
      const merged = single
        ? Object.assign({}, this.jobsOpts, opts, { jobId: opts ? opts.jobId : undefined })
        : Object.assign({}, this.jobsOpts, opts, { jobId: opts ? opts.jobId : undefined, telemetry: opts ? opts.telemetry : undefined });
      let optsJson;
      try {
        optsJson = JSON.stringify(merged);
      } catch (err) {
        throw invalid(`${at}opts`, `is not serialisable (${err.message})`);
      }
      return { name, data, dataJson, optsJson, merged };
    });
    const added = await callAsync(() =>
      this._native.addBulk(inputs.map((j) => ({ name: j.name, data: j.dataJson, opts: j.optsJson }))),
    );
    return added.map((a, i) => {
      const fields = {
        name: inputs[i].name,
        opts: a.opts,
        timestamp: String(a.timestamp),
        delay: String(a.delay),
        priority: String(a.priority),
      };
      const job = new QueueJob(this, { id: a.id, fields, created: true });
      job.data = inputs[i].data;
      job.opts = asConstructed(job.opts, inputs[i].merged);
      return job;
    });
  }

  async getJob(jobId) {
    const record = await callAsync(() => this._native.getJob(String(jobId)));
    return record ? new QueueJob(this, record) : undefined;
  }

  /**
   * Jobs in the given states. asc: lists oldest first, sets by ascending score; BullMQ's
   * getters use asc for waiting, active, delayed, prioritized and waiting-children, and
   * newest first for completed and failed.
   */
  async getJobs(types, start = 0, end = -1, asc = false) {
    let list = typeof types === 'string' ? [types] : flattenTypes(types || []);
    if (list.length === 0) list = DEFAULT_COUNT_TYPES;
    checkRange(start, end);
    const records = await callAsync(() => this._native.getJobs(list, start, end, Boolean(asc)));
    return records.map((r) => new QueueJob(this, r));
  }

  getWaiting(start = 0, end = -1) {
    return this.getJobs(['waiting'], start, end, true);
  }

  getActive(start = 0, end = -1) {
    return this.getJobs(['active'], start, end, true);
  }

  getDelayed(start = 0, end = -1) {
    return this.getJobs(['delayed'], start, end, true);
  }

  getPrioritized(start = 0, end = -1) {
    return this.getJobs(['prioritized'], start, end, true);
  }

  getWaitingChildren(start = 0, end = -1) {
    return this.getJobs(['waiting-children'], start, end, true);
  }

  getCompleted(start = 0, end = -1) {
    return this.getJobs(['completed'], start, end, false);
  }

  getFailed(start = 0, end = -1) {
    return this.getJobs(['failed'], start, end, false);
  }

  /** { [type]: count } for the given states (default: BullMQ's list). */
  async getJobCounts(...types) {
    let list = flattenTypes(types);
    if (list.length === 0) list = DEFAULT_COUNT_TYPES;
    const counts = await callAsync(() => this._native.counts(list));
    const out = {};
    list.forEach((type, i) => {
      out[type] = counts[i] || 0;
    });
    return out;
  }

  async getJobCountByTypes(...types) {
    const counts = await this.getJobCounts(...types);
    return Object.values(counts).reduce((sum, n) => sum + n, 0);
  }

  /** Jobs not yet started: waiting, delayed, prioritized and waiting-children. */
  count() {
    return this.getJobCountByTypes('waiting', 'delayed', 'prioritized', 'waiting-children');
  }

  getWaitingCount() {
    return this.getJobCountByTypes('waiting');
  }

  getActiveCount() {
    return this.getJobCountByTypes('active');
  }

  getCompletedCount() {
    return this.getJobCountByTypes('completed');
  }

  getFailedCount() {
    return this.getJobCountByTypes('failed');
  }

  getDelayedCount() {
    return this.getJobCountByTypes('delayed');
  }

  getPrioritizedCount() {
    return this.getJobCountByTypes('prioritized');
  }

  getWaitingChildrenCount() {
    return this.getJobCountByTypes('waiting-children');
  }

  isPaused() {
    return callAsync(() => this._native.isPaused());
  }

  /** { logs, count }: log lines start..end (oldest first when asc) and how many there are. */
  getJobLogs(jobId, start = 0, end = -1, asc = true) {
    try {
      checkRange(start, end);
    } catch (err) {
      return Promise.reject(err);
    }
    return callAsync(() => this._native.jobLogs(String(jobId), start, end, Boolean(asc)));
  }

  /** Pause globally (every worker of every process, ours and BullMQ's, stops taking jobs). */
  async pause() {
    await callAsync(() => this._native.pause());
    this.emit('paused');
  }

  async resume() {
    await callAsync(() => this._native.resume());
    this.emit('resumed');
  }

  /** Remove waiting and prioritized jobs (and delayed ones with `delayed`). */
  async drain(delayed = false) {
    await callAsync(() => this._native.drain(Boolean(delayed)));
  }

  /**
   * Remove up to `limit` (0 = all) jobs of `type` older than `grace` ms; resolves with
   * their ids. Types: completed, failed, delayed, wait (or waiting), prioritized, paused,
   * active.
   */
  async clean(grace, limit, type = 'completed') {
    if (typeof grace !== 'number' || !(grace >= 0)) throw invalid('grace', 'must be a non-negative number of ms');
    const max = limit === undefined || limit === null ? 0 : limit;
    if (typeof max !== 'number' || !(max >= 0)) throw invalid('limit', 'must be a non-negative number');
    const ids = await callAsync(() => this._native.clean(grace, max, String(type)));
    this.emit('cleaned', ids, type === 'waiting' ? 'wait' : type);
    return ids;
  }

  /** This queue accepts no more calls; the shared connections stay up. Idempotent. */
  close() {
    if (this._closing) return this._closing;
    this._native.close();
    removeLiveQueue(this);
    this._closing = Promise.resolve().then(() => {
      this.emit('closed');
    });
    return this._closing;
  }

  _emitError(err) {
    // An 'error' without listeners must not crash the application (as with workers).
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }
}

require('./metrics').installQueueMethods(Queue);
require('./telemetry').installQueueTelemetry(Queue);

module.exports = { Queue, QueueJob, addsSettled, asConstructed };
