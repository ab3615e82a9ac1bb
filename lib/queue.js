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
    // As BullMQ: job.updateProgress emits 'progress' (job, progress) on the job's queue.
    Object.defineProperty(this, '_onProgress', {
      value: (job, progress) => queue.emit('progress', job, progress),
      enumerable: false,
      writable: true,
      configurable: true,
    });
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
/** This process's health entry of `endpoint` (connection.health()), or undefined. */
function endpointHealth(endpoint) {
  return (connection.health().endpoints || []).find((e) => e.endpoint === endpoint);
}

function toOpenQueues(err) {
  for (const q of liveQueues) {
    if (q._endpoint !== err.endpoint) continue;
    q._connErrorSeen = true;
    q._emitError(err);
  }
}
function addLiveQueue(queue) {
  if (liveQueues.size === 0) connection.onConnection('error', toOpenQueues);
  liveQueues.add(queue);
  // The engine announces an endpoint's failure once (not on every retry): a queue created
  // while its endpoint is already failing, or whose first connect failed before this
  // listener was there, is told the standing error (once, unless the event reached it).
  // Looked at on the next turn and again a little later (a first connect that is still
  // failing); the second look finds the first's error already told.
  const check = () => {
    if (queue._connErrorSeen || !liveQueues.has(queue)) return;
    const now = endpointHealth(queue._endpoint);
    if (!now || now.status === 'ready' || !now.lastError) return;
    queue._connErrorSeen = true;
    const { code, message } = now.lastError;
    queue._emitError(new QueueNativeError(code, message, { endpoint: queue._endpoint }));
  };
  setImmediate(check);
  setTimeout(check, 50).unref();
}
function removeLiveQueue(queue) {
  if (liveQueues.delete(queue) && liveQueues.size === 0) connection.offConnection('error', toOpenQueues);
}

// BullMQ's QueueKeys: `queue.keys[type]` is the full Redis key of each of a queue's keys.
const KEY_TYPES = ['', 'active', 'wait', 'waiting-children', 'paused', 'id', 'delayed', 'prioritized', 'stalled-check', 'completed', 'failed', 'stalled', 'repeat', 'limiter', 'meta', 'events', 'pc', 'marker', 'de'];
function queueKeys(qualifiedName) {
  const keys = {};
  for (const type of KEY_TYPES) keys[type] = `${qualifiedName}:${type}`;
  return keys;
}

// Plain adds made while one is in flight go together in the next call, at most this many.
const MAX_ADDS_PER_CALL = 1000;

// The meta `version` a queue created by ours gets: the BullMQ release whose data layout our
// scripts write (docs/PROTOCOL.md, "Queue-side differences").
const PROTOCOL_VERSION = 'bullmq:6.7.0';

// The events stream's cap as BullMQ's Queue stores it in meta (`streams.events.maxLen`,
// default 10000): every script that adds events caps the stream with it.
function eventsMaxLen(opts) {
  const maxLen = opts.streams && opts.streams.events ? opts.streams.events.maxLen : undefined;
  if (maxLen === undefined || maxLen === null) return 10000;
  if (typeof maxLen !== 'number' || !Number.isInteger(maxLen) || maxLen < 0) {
    throw invalid('streams.events.maxLen', 'must be an integer >= 0');
  }
  return maxLen;
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
    const maxLenEvents = eventsMaxLen(opts);
    this._native = callSync(() => new binding.NativeQueue(name, optsJson, connectionJson));
    this._endpoint = callSync(() => binding.resolveEndpoint(connectionJson));
    addLiveQueue(this);
    this._addQueue = [];
    this._addBusy = false;
    this._metaWrite = null;
    this._metaOff = null;
    // Settles once the meta write is done (or given up at close): what getVersion() and
    // getMeta() wait for, as BullMQ's do.
    this._metaDone = null;
    if (!opts.skipMetasUpdate) this._writeMetaWhenReady(maxLenEvents);
  }

  // As BullMQ's Queue (unless skipMetasUpdate): the events cap and the version go to meta
  // once the connection is up; while that write is in flight, this queue's adds (and
  // getVersion / getMeta) wait for it, so that their events are capped by it. The version is
  // only written when absent: our scripts read it to tell a queue run by BullMQ 5 (v5 paused
  // list) from one run by BullMQ 6, and a queue BullMQ 5 created keeps its layout. Nothing is
  // sent (or left pending, which would keep Node alive) before the endpoint is ready: the
  // write starts on its 'ready' event, and close() drops the wait.
  _writeMetaWhenReady(maxLenEvents) {
    const meta = `${this.qualifiedName}:meta`;
    let done;
    this._metaDone = new Promise((resolve) => {
      done = resolve;
    });
    const write = () => {
      this._metaOff = null;
      this._metaWrite = connection
        .command(['HSET', meta, 'opts.maxLenEvents', String(maxLenEvents)], this.opts.connection)
        .then(() => connection.command(['HSETNX', meta, 'version', PROTOCOL_VERSION], this.opts.connection))
        // A failing connection reports on its own (the 'error' event); as with BullMQ, the
        // meta write adds nothing to it.
        .catch(() => {})
        .then(() => {
          this._metaWrite = null;
          this._metaDone = null;
          done();
        });
    };
    const onReady = (ev) => {
      if (ev.endpoint !== this._endpoint) return;
      connection.offConnection('ready', onReady);
      write();
    };
    // Listening first, then one look: a pair that became ready in between is seen either way.
    connection.onConnection('ready', onReady);
    this._metaOff = () => {
      connection.offConnection('ready', onReady);
      this._metaDone = null;
      done();
    };
    const health = endpointHealth(this._endpoint);
    if (health && health.status === 'ready') {
      connection.offConnection('ready', onReady);
      write();
    }
  }

  /** BullMQ's `keys`: the full Redis key of each of this queue's keys, by type. */
  get keys() {
    return queueKeys(this.qualifiedName);
  }

  /**
   * BullMQ's `queue.jobScheduler`: a Promise of the queue's job-scheduler object. Ours runs
   * on the queue's own connection, so it is a thin view of the queue's scheduler methods (in
   * BullMQ's argument order) whose 'error' events are the queue's, as BullMQ forwards them.
   */
  get jobScheduler() {
    if (!this._jobScheduler) {
      const queue = this;
      const scheduler = Object.assign(new EventEmitter(), {
        name: queue.name,
        waitUntilReady: (timeoutMs) => queue.waitUntilReady(timeoutMs),
        upsertJobScheduler: (id, repeatOpts, jobName, jobData, opts) =>
          queue.upsertJobScheduler(id, repeatOpts, { name: jobName, data: jobData, opts }),
        getScheduler: (id) => queue.getJobScheduler(id),
        getJobSchedulers: (start, end, asc) => queue.getJobSchedulers(start, end, asc),
        getSchedulersCount: () => queue.getJobSchedulersCount(),
        removeJobScheduler: (id) => queue.removeJobScheduler(id),
        // A job scheduler, not a legacy repeatable job: in the repeat set, with an iteration
        // count in its hash (legacy entries have none).
        isJobScheduler: async (id) => {
          const repeatKey = queue.toKey('repeat');
          const [score, counted] = await Promise.all([
            connection.command(['ZSCORE', repeatKey, String(id)], queue.opts.connection),
            connection.command(['HEXISTS', `${repeatKey}:${id}`, 'ic'], queue.opts.connection),
          ]);
          return score !== null && counted === 1;
        },
        close: async () => {},
      });
      scheduler.on('error', (err) => queue.emit('error', err));
      Object.defineProperty(this, '_jobScheduler', { value: scheduler, enumerable: false });
    }
    return Promise.resolve(this._jobScheduler);
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
      this._submit([{ name, data, opts }], false).then(([job]) => {
        this.emit('waiting', job);
        return job;
      }),
    );
  }

  /** Add many jobs in one round trip (one script call). */
  addBulk(jobs) {
    if (!Array.isArray(jobs)) return Promise.reject(invalid('jobs', 'must be an array of { name, data, opts? }'));
    return trackAdd(this._submit(jobs, true));
  }

  // Adds leave in the order they were made, as ioredis sends BullMQ's: one add call of this
  // queue is in flight at a time, and the adds made meanwhile go together in the next one
  // (one script call, jobs stored in call order). Independent native calls would not keep
  // that order: the runtime may start them in any order (concurrent `add()`s got their ids
  // out of call order). A lone add leaves at once, so nothing waits when nothing is queued.
  _submit(entries, bulk) {
    return new Promise((resolve, reject) => {
      this._addQueue.push({ entries, bulk, resolve, reject });
      if (!this._addBusy) this._pumpAdds();
    });
  }

  _pumpAdds() {
    const queued = this._addQueue;
    if (queued.length === 0) {
      this._addBusy = false;
      return;
    }
    this._addBusy = true;
    // An addBulk goes alone (it succeeds or fails as a whole, as BullMQ's); so does an add
    // with a parent, the one kind whose refusal (-5 / -7) comes from the script, after
    // the others of its call would have been stored. Plain adds go together.
    const alone = (s) => s.bulk || Boolean(s.entries[0] && s.entries[0].opts && s.entries[0].opts.parent);
    const batch = [queued.shift()];
    if (!alone(batch[0])) {
      while (queued.length > 0 && batch.length < MAX_ADDS_PER_CALL && !alone(queued[0])) batch.push(queued.shift());
    }
    const next = () => this._pumpAdds();
    this._sendAdds(batch).then(next, next);
  }

  async _sendAdds(batch) {
    if (batch.length === 1) {
      const [{ entries, bulk, resolve, reject }] = batch;
      await this._add(entries, !bulk).then(resolve, reject);
      return;
    }
    let jobs;
    try {
      jobs = await this._add(
        batch.map((s) => s.entries[0]),
        true,
      );
    } catch (err) {
      // An invalid add refuses the whole call before anything is stored: each goes again on
      // its own, so that only the invalid one fails (with its own error).
      if (err && err.code === 'ERR_INVALID_OPTION') {
        for (const { entries, resolve, reject } of batch) await this._add(entries, true).then(resolve, reject);
      } else {
        for (const { reject } of batch) reject(err);
      }
      return;
    }
    batch.forEach(({ resolve }, i) => resolve([jobs[i]]));
  }

  async _add(jobs, single) {
    if (this._metaWrite) await this._metaWrite;
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
    // BullMQ stamps `timestamp` by JavaScript's clock, mocked or not.
    binding.syncClock(Date.now());
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
    if (this._metaOff) this._metaOff();
    this._metaOff = null;
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
