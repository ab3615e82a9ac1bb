'use strict';
// The rest of BullMQ's Job and Queue surface (state reads, remove, promote, priorities,
// delays, dependencies, obliterate, bulk moves, global limits, deduplication keys...). Every
// call is one of our Lua scripts run by the engine (src/engine/surface.rs) on the shared
// command connection; this module shapes arguments and replies the way BullMQ's classes do,
// including BullMQ's error messages (with our stable err.code).
//
// The methods are installed on the Job and Queue prototypes by install(): one Job class,
// whether a job came from a Queue, a processor or Job.fromId.

const binding = require('../binding.js');
const { QueueNativeError, callSync, callAsync, invalid } = require('./errors');
const { serializeConnection, command: rawCommand } = require('./connection');
const { longOptions } = require('./job');

// One NativeQueueOps per (endpoint options, prefix, queue).
const handles = new Map();
// `<prefix>:<queue>` -> connection JSON of the Worker or Queue that last declared it: how a
// job from a processor finds its endpoint.
const endpoints = new Map();

/** Called by Worker and Queue constructors: jobs of this queue live on this connection. */
function registerQueue(prefix, name, connectionJson) {
  endpoints.set(`${prefix}:${name}`, connectionJson ?? null);
}

function handle(prefix, name, connectionJson) {
  const key = `${connectionJson ?? ''}\u0000${prefix}\u0000${name}`;
  let h = handles.get(key);
  if (!h) {
    h = callSync(() => new binding.NativeQueueOps(name, prefix, connectionJson ?? null));
    handles.set(key, h);
  }
  return h;
}

function run(h, op, jobId, params = []) {
  return callAsync(() => h.run(op, jobId === undefined || jobId === null ? '' : String(jobId), params.map(String)));
}

function queueHandle(queue) {
  if (!queue._surfaceConn) {
    Object.defineProperty(queue, '_surfaceConn', {
      value: serializeConnection(queue.opts && queue.opts.connection),
      enumerable: false,
    });
  }
  return handle(queue.prefix ?? 'bull', queue.name, queue._surfaceConn);
}

function jobPrefix(job) {
  const qualified = job.queueQualifiedName;
  return qualified.slice(0, qualified.length - job.queueName.length - 1);
}

function jobHandle(job) {
  if (job._queue) return queueHandle(job._queue);
  const prefix = jobPrefix(job);
  return handle(prefix, job.queueName, endpoints.get(`${prefix}:${job.queueName}`));
}

// BullMQ's messages for the scripts' negative codes (finishedErrors), with our stable codes.
const CODE_NAMES = {
  '-1': 'ERR_JOB_NOT_FOUND',
  '-2': 'ERR_LOCK_LOST',
  '-3': 'ERR_JOB_STATE',
  '-4': 'ERR_JOB_STATE',
  '-5': 'ERR_JOB_NOT_FOUND',
  '-6': 'ERR_LOCK_LOST',
  '-8': 'ERR_JOB_STATE',
  '-10': 'ERR_JOB_STATE',
  '-11': 'ERR_JOB_STATE',
};

function finishedError(code, { jobId, command, state, parentKey }) {
  let message;
  switch (code) {
    case -1:
      message = `Missing key for job ${jobId}. ${command}`;
      break;
    case -2:
      message = `Missing lock for job ${jobId}. ${command}`;
      break;
    case -3:
      message = `Job ${jobId} is not in the ${state} state. ${command}`;
      break;
    case -4:
      message = `Job ${jobId} has pending dependencies. ${command}`;
      break;
    case -5:
      message = `Missing key for parent job ${parentKey}. ${command}`;
      break;
    case -6:
      message = `Lock mismatch for job ${jobId}. Cmd ${command} from ${state}`;
      break;
    case -8:
      message = `Job ${jobId} belongs to a job scheduler and cannot be removed directly. ${command}`;
      break;
    case -10:
      message = `Cannot create job scheduler iteration - job ID already exists. ${command}`;
      break;
    case -11:
      message = `Cannot create job scheduler iteration - current and next time slots already have jobs. ${command}`;
      break;
    default:
      message = `Unknown code ${code} error for ${jobId}. ${command}`;
  }
  return new QueueNativeError(CODE_NAMES[String(code)] || 'ERR_REDIS', message, { bullmqCode: code });
}

function pairsToObject(flat, parse) {
  const out = {};
  for (let i = 0; i + 1 < (flat || []).length; i += 2) out[flat[i]] = parse ? parseJson(flat[i + 1]) : flat[i + 1];
  return out;
}

function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function nonNegativeInt(name, v) {
  if (!Number.isInteger(v) || v < 0) throw invalid(name, 'must be a non-negative integer');
}


// BullMQ's stored short option names (optsEncodeMap) and telemetry's tm / omc.
const OPTS_ENCODE = {
  deduplication: 'de',
  failParentOnFailure: 'fpof',
  continueParentOnFailure: 'cpof',
  ignoreDependencyOnFailure: 'idof',
  keepLogs: 'kl',
  removeDependencyOnFailure: 'rdof',
};
const OPTS_DECODE = Object.fromEntries(Object.entries(OPTS_ENCODE).map(([k, v]) => [v, k]));

/** Options as BullMQ stores them (its optsAsJSON): short names, undefined dropped. */
function optsAsJSON(opts = {}) {
  const out = {};
  for (const [key, value] of Object.entries(opts)) {
    if (value === undefined) continue;
    if (key in OPTS_ENCODE) out[OPTS_ENCODE[key]] = value;
    else if (key === 'telemetry') {
      if (value.metadata !== undefined) out.tm = value.metadata;
      if (value.omitContext !== undefined) out.omc = value.omitContext;
    } else out[key] = value;
  }
  return out;
}

/** Stored options as the job shows them (BullMQ's Job.optsFromJSON). */
function optsFromJSON(raw) {
  const out = {};
  for (const [key, value] of Object.entries(parseJson(raw || '{}') || {})) {
    if (OPTS_DECODE[key]) out[OPTS_DECODE[key]] = value;
    else if (key === 'tm') out.telemetry = { ...out.telemetry, metadata: value };
    else if (key === 'omc') out.telemetry = { ...out.telemetry, omitContext: value };
    else out[key] = value;
  }
  return out;
}

// BullMQ's legacy repeatable key: name:id:endDate:tz:<pattern or every>.
function legacyRepeatKeyShape(key) {
  const parts = key.split(':');
  return parts.length >= 5;
}

/** A scheduler as BullMQ's getJobScheduler shows it, or undefined for an empty hash. */
function schedulerData(key, hash, next) {
  if (hash && Object.keys(hash).length > 0) {
    const out = { key, name: hash.name, next };
    if (hash.ic) out.iterationCount = parseInt(hash.ic, 10);
    if (hash.limit) out.limit = parseInt(hash.limit, 10);
    if (hash.startDate) out.startDate = parseInt(hash.startDate, 10);
    if (hash.endDate) out.endDate = parseInt(hash.endDate, 10);
    if (hash.tz) out.tz = hash.tz;
    if (hash.pattern) out.pattern = hash.pattern;
    if (hash.every) out.every = parseInt(hash.every, 10);
    if (hash.offset) out.offset = parseInt(hash.offset, 10);
    if (hash.data || hash.opts) {
      out.template = {};
      if (hash.data) out.template.data = JSON.parse(hash.data);
      if (hash.opts) out.template.opts = optsFromJSON(hash.opts);
    }
    return out;
  }
  if (legacyRepeatKeyShape(key)) {
    throw new QueueNativeError(
      'ERR_INVALID_OPTION',
      `Legacy repeatable job metadata is not supported in BullMQ v6 (key: "${key}"). Migrate legacy repeatable jobs to Job Schedulers before upgrading.`,
    );
  }
  return undefined;
}

// msgpackr (encodeUndefinedAsNil) packs an undefined entry as nil: the key still counts in the
// map, which sizes the Lua table and so decides cjson's key order in the stored text. JSON
// keeps such entries only as null (the engine packs null as nil).
const keepUndefined = (key, value) => (value === undefined ? null : value);

const toMs = (d) => (d === undefined || d === null ? undefined : new Date(d).getTime());

const DEPENDENCY_TYPES = ['processed', 'unprocessed', 'ignored', 'failed'];

// A Queue of ours per (endpoint, prefix, queue), for job.retry() on jobs that did not come
// from a Queue (a processor's job, or one handed to a worker's 'failed' listener).
const retryQueues = new Map();
function retryQueue(job) {
  if (job._queue) return job._queue;
  const prefix = jobPrefix(job);
  const connectionJson = endpoints.get(`${prefix}:${job.queueName}`) ?? null;
  const key = `${connectionJson ?? ''}\u0000${prefix}\u0000${job.queueName}`;
  let q = retryQueues.get(key);
  if (!q) {
    const { Queue } = require('./queue');
    q = new Queue(job.queueName, { prefix, connection: connectionJson ? JSON.parse(connectionJson) : undefined });
    q.on('error', () => {});
    retryQueues.set(key, q);
  }
  return q;
}

const jobMethods = {
  /**
   * A failed (or, with 'completed', a completed) job goes back to waiting, as BullMQ's
   * job.retry(), on the job's own Queue when it came from one.
   */
  async retry(state = 'failed', opts = {}) {
    const q = retryQueue(this);
    await callAsync(() =>
      q._native.reprocess(this.id, state, Boolean(opts.resetAttemptsMade), Boolean(opts.resetAttemptsStarted)),
    );
    this.failedReason = null;
    this.finishedOn = null;
    this.processedOn = null;
    this.returnvalue = null;
    if (opts.resetAttemptsMade) this.attemptsMade = 0;
    if (opts.resetAttemptsStarted) this.attemptsStarted = 0;
  },

  /** 'completed' | 'failed' | 'delayed' | 'prioritized' | 'active' | 'waiting' | 'waiting-children' | 'unknown' */
  getState() {
    return run(jobHandle(this), 'getState', this.id);
  },

  isCompleted() {
    return this.getState().then((s) => s === 'completed');
  },
  isFailed() {
    return this.getState().then((s) => s === 'failed');
  },
  isDelayed() {
    return this.getState().then((s) => s === 'delayed');
  },
  isActive() {
    return this.getState().then((s) => s === 'active');
  },
  isWaiting() {
    return this.getState().then((s) => s === 'waiting');
  },
  isWaitingChildren() {
    return this.getState().then((s) => s === 'waiting-children');
  },

  /** Delete the job (and, by default, its children); throws if it is locked (active). */
  async remove({ removeChildren = true } = {}) {
    const code = await run(jobHandle(this), 'remove', this.id, [removeChildren ? 1 : 0]);
    if (code === 1) {
      if (this._queue) this._queue.emit('removed', this);
      return;
    }
    if (code < 0) throw finishedError(code, { jobId: this.id, command: 'removeJob' });
    throw new QueueNativeError(
      'ERR_JOB_STATE',
      `Job ${this.id} could not be removed because it is locked by another worker`,
    );
  },

  /**
   * Remove the children that have not been processed yet (BullMQ's
   * removeUnprocessedChildren): every pending child, with its own unprocessed descendants,
   * except those active (locked) or failed; the job itself stays. A parent left with
   * nothing pending goes to waiting.
   */
  async removeUnprocessedChildren() {
    await run(jobHandle(this), 'remove', this.id, ['unprocessed']);
  },

  /** A delayed job becomes waiting now. */
  async promote() {
    const code = await run(jobHandle(this), 'promote', this.id);
    if (code < 0) throw finishedError(code, { jobId: this.id, command: 'promote', state: 'delayed' });
    this.delay = 0;
  },

  async changePriority(opts = {}) {
    const priority = opts.priority ?? 0;
    if (!Number.isInteger(priority) || priority < 0 || priority > 2097152) {
      throw invalid('priority', 'must be an integer between 0 and 2097152');
    }
    const code = await run(jobHandle(this), 'changePriority', this.id, [priority, opts.lifo ? 1 : 0]);
    if (code < 0) throw finishedError(code, { jobId: this.id, command: 'changePriority' });
    this.priority = priority;
  },

  /** A delayed job is due `delay` ms from now. */
  async changeDelay(delay) {
    if (typeof delay !== 'number' || !(delay >= 0)) throw invalid('delay', 'must be a non-negative number of ms');
    const code = await run(jobHandle(this), 'changeDelay', this.id, [Math.trunc(delay), Date.now()]);
    if (code < 0) throw finishedError(code, { jobId: this.id, command: 'changeDelay', state: 'delayed' });
    this.delay = delay;
  },

  /** 1 when the lock held by `token` was extended to `duration` ms, else 0. */
  extendLock(token, duration) {
    return run(jobHandle(this), 'extendLock', this.id, [token, Math.trunc(duration)]);
  },

  /** Delete the job's logs, or keep the newest `keepLogs` lines. */
  async clearLogs(keepLogs) {
    await run(jobHandle(this), 'clearLogs', this.id, [keepLogs ? Math.trunc(keepLogs) : 0]);
  },

  /** BullMQ 5's discard(): a failure of this job, from now on, is not retried. */
  discard() {
    this.discarded = true;
  },

  /**
   * The children: { processed, unprocessed, ignored, failed } (all of them), or, with
   * opts.processed / unprocessed / ignored / failed = { cursor, count }, one page of each
   * asked for with its next cursor (BullMQ's shape).
   */
  async getDependencies(opts = {}) {
    const h = jobHandle(this);
    if (!opts.processed && !opts.unprocessed && !opts.ignored && !opts.failed) {
      const [processed, unprocessed, ignored, failed] = await run(h, 'dependencies', this.id, ['all']);
      return { processed: pairsToObject(processed, true), unprocessed, failed, ignored: pairsToObject(ignored, false) };
    }
    const spec = (o) => (o ? `${o.cursor ?? 0}:${o.count ?? 20}` : '');
    const reply = await run(h, 'dependencies', this.id, [
      'page',
      spec(opts.processed),
      spec(opts.unprocessed),
      spec(opts.ignored),
      spec(opts.failed),
    ]);
    const out = {};
    const [processed, unprocessed, ignored, failed] = reply;
    // BullMQ only reports a page whose next cursor is not 0 ("0" from SCAN is falsy there
    // only as a number; its string form is truthy, so the page is always reported).
    if (processed) {
      out.processed = pairsToObject(processed[1], true);
      out.nextProcessedCursor = Number(processed[0]);
    }
    if (ignored) {
      out.ignored = pairsToObject(ignored[1], false);
      out.nextIgnoredCursor = Number(ignored[0]);
    }
    if (failed) {
      out.failed = failed;
      out.nextFailedCursor = (opts.failed.cursor ?? 0) + (opts.failed.count ?? 20);
    }
    if (unprocessed) {
      out.unprocessed = unprocessed[1];
      out.nextUnprocessedCursor = Number(unprocessed[0]);
    }
    return out;
  },

  /** { processed, unprocessed, ignored, failed } counts (only the types set in opts, if any). */
  async getDependenciesCount(opts = {}) {
    const asked = Object.entries(opts)
      .filter(([, v]) => v)
      .map(([k]) => k);
    const types = asked.length ? asked : DEPENDENCY_TYPES;
    const counts = await run(jobHandle(this), 'dependencies', this.id, ['counts', ...types]);
    const out = {};
    types.forEach((t, i) => {
      out[t] = counts[i] || 0;
    });
    return out;
  },

  /** Failures of children ignored with ignoreDependencyOnFailure: child key -> reason. */
  async getIgnoredChildrenFailures() {
    return pairsToObject(await run(jobHandle(this), 'dependencies', this.id, ['ignored']), false);
  },

  getFailedChildrenValues() {
    return this.getIgnoredChildrenFailures();
  },

  /** Unlink an unfinished child from its parent: true if the link existed. */
  async removeChildDependency() {
    const code = await run(jobHandle(this), 'removeChildDependency', this.id);
    if (code === 0) {
      this.parent = undefined;
      this.parentKey = undefined;
      return true;
    }
    if (code === 1) return false;
    throw finishedError(code, { jobId: this.id, parentKey: this.parentKey, command: 'removeChildDependency' });
  },

  /** Release this job's deduplication id if the job still holds it: true when released. */
  async removeDeduplicationKey() {
    if (!this.deduplicationId) return false;
    const n = await run(jobHandle(this), 'removeDeduplicationKey', this.id, [this.deduplicationId]);
    return n > 0;
  },

  /**
   * Resolves with the job's return value once it completes, rejects with its failedReason
   * once it fails (or after `ttl` ms), as BullMQ's.
   */
  async waitUntilFinished(queueEvents, ttl) {
    const jobId = this.id;
    const h = jobHandle(this);
    const name = this.name;
    return new Promise((resolve, reject) => {
      let timer;
      let done = false;
      const cleanup = () => {
        done = true;
        clearTimeout(timer);
        queueEvents.removeListener(`completed:${jobId}`, onCompleted);
        queueEvents.removeListener(`failed:${jobId}`, onFailed);
        queueEvents.removeListener('closing', onClosing);
      };
      const onCompleted = (args) => {
        cleanup();
        resolve(args.returnvalue);
      };
      const onFailed = (args) => {
        cleanup();
        reject(new Error(args.failedReason || args));
      };
      const onClosing = (reason) => onFailed(reason);
      if (ttl) {
        timer = setTimeout(
          () =>
            onFailed(
              `Job wait ${name} timed out before finishing, no finish notification arrived after ${ttl}ms (id=${jobId})`,
            ),
          ttl,
        );
      }
      queueEvents.on(`completed:${jobId}`, onCompleted);
      queueEvents.on(`failed:${jobId}`, onFailed);
      queueEvents.on('closing', onClosing);
      // Listening first, then one look: a job that finished before we listened is seen here,
      // one that finishes after is seen by the listener.
      Promise.resolve(queueEvents.waitUntilReady())
        .then(() => run(h, 'isFinished', jobId))
        .then(([status, value]) => {
          if (done) return;
          if (status === 1) onCompleted({ returnvalue: parseJson(value) });
          else if (status === 2) onFailed({ failedReason: value });
          else if (status === -1) onFailed({ failedReason: `Missing key for job ${this.queueQualifiedName}:${jobId}. isFinished` });
        })
        .catch((err) => {
          if (done) return;
          cleanup();
          reject(err);
        });
    });
  },
};

/** A job hash (flat field/value list) as BullMQ's paginate hands it out (its JobJson). */
function jobJsonOf(flat) {
  const raw = pairsToObject(flat, false);
  const opts = longOptions(JSON.parse(raw.opts || '{}'));
  return {
    id: raw.id,
    name: raw.name,
    data: raw.data || '{}',
    opts,
    progress: JSON.parse(raw.progress || '0'),
    delay: parseInt(raw.delay, 10),
    priority: parseInt(raw.priority, 10),
    timestamp: parseInt(raw.timestamp, 10),
    attemptsStarted: parseInt(raw.ats || '0', 10),
    attemptsMade: parseInt(raw.attemptsMade || raw.atm || '0', 10),
    stalledCounter: parseInt(raw.stc || '0', 10),
    finishedOn: raw.finishedOn ? parseInt(raw.finishedOn, 10) : undefined,
    processedOn: raw.processedOn ? parseInt(raw.processedOn, 10) : undefined,
    repeatJobKey: raw.rjk,
    debounceId: raw.deid,
    deduplicationId: raw.deid,
    failedReason: raw.failedReason,
    deferredFailure: raw.defa,
    stacktrace: raw.stacktrace,
    returnvalue: raw.returnvalue,
    parentKey: raw.parentKey,
    parent: raw.parent ? JSON.parse(raw.parent) : undefined,
    processedBy: raw.pb,
  };
}

const queueMethods = {
  /**
   * One page of a parent's children (BullMQ's Queue.getDependencies): `type` 'processed'
   * (the processed hash: items `{ id: child key, v: its return value }`, or `err` when the
   * value is not JSON) or 'pending' (items `{ id: child key }`); positions start..end (end -1:
   * to the last) in Redis's SCAN order; `jobs` the children's hashes; `total` all of them.
   */
  async getDependencies(parentId, type, start = 0, end = -1) {
    const h = queueHandle(this);
    const pageSize = end >= 0 ? end - start + 1 : Infinity;
    let cursor = '0';
    let offset = 0;
    let total = 0;
    const page = [];
    const jobs = [];
    do {
      const reply = await run(h, 'dependencies', parentId, [
        'scan',
        type === 'processed' ? 'processed' : 'pending',
        start + page.length,
        end,
        cursor,
        offset,
        '1',
      ]);
      [cursor, offset] = [String(reply[0]), Number(reply[1])];
      total = Number(reply[3]);
      page.push(...reply[2]);
      for (const flat of reply[4] || []) jobs.push(jobJsonOf(flat));
    } while (cursor !== '0' && page.length < pageSize);
    const items = page.map((item) => {
      if (!Array.isArray(item)) return { id: item };
      try {
        return { id: item[0], v: JSON.parse(item[1]) };
      } catch (err) {
        return { id: item[0], err: err.message };
      }
    });
    return { items, jobs, total };
  },

  /** `<prefix>:<queue>:<type>` */
  toKey(type) {
    return `${this.prefix}:${this.name}:${type}`;
  },

  getJobState(jobId) {
    return run(queueHandle(this), 'getState', jobId);
  },

  /** 1 removed, 0 locked (not removed); emits 'removed' (jobId) when removed. */
  async remove(jobId, { removeChildren = true } = {}) {
    const code = await run(queueHandle(this), 'remove', jobId, [removeChildren ? 1 : 0]);
    if (code < 0) throw finishedError(code, { jobId, command: 'removeJob' });
    if (code === 1) this.emit('removed', jobId);
    return code;
  },

  /**
   * Delete the queue and everything in it (it is paused first). Throws if it has active jobs,
   * unless force. `count`: jobs deleted per script call (default 1000).
   */
  async obliterate(opts = {}) {
    const { force = false, count = 1000 } = opts;
    nonNegativeInt('count', count);
    await this.pause();
    const h = queueHandle(this);
    for (;;) {
      const code = await run(h, 'obliterate', '', [count, force ? 1 : 0]);
      if (code === -1) throw new QueueNativeError('ERR_JOB_STATE', 'Cannot obliterate non-paused queue');
      if (code === -2) throw new QueueNativeError('ERR_JOB_STATE', 'Cannot obliterate queue with active jobs');
      if (code === 0) return;
    }
  },

  /** Failed (or completed) jobs finished up to `timestamp` go back to wait, `count` per call. */
  async retryJobs(opts = {}) {
    const { state = 'failed', count = 1000, timestamp = Date.now() } = opts;
    if (state !== 'failed' && state !== 'completed') throw invalid('state', "must be 'failed' or 'completed'");
    const h = queueHandle(this);
    while (await run(h, 'moveJobsToWait', '', [state, count, timestamp]));
  },

  /** Every delayed job goes to wait now, `count` per call. */
  async promoteJobs(opts = {}) {
    const { count = 1000 } = opts;
    const h = queueHandle(this);
    while (await run(h, 'moveJobsToWait', '', ['delayed', count, '+inf']));
  },

  /** XTRIM the events stream to about maxLength entries; the number deleted. */
  trimEvents(maxLength) {
    return run(queueHandle(this), 'queueAdmin', '', ['trimEvents', Math.trunc(maxLength)]);
  },

  getDeduplicationJobId(id) {
    return run(queueHandle(this), 'queueAdmin', '', ['dedupJobId', id]);
  },

  getDebounceJobId(id) {
    return this.getDeduplicationJobId(id);
  },

  /** Release deduplication id `id` whoever holds it; the number of keys deleted. */
  removeDeduplicationKey(id) {
    return run(queueHandle(this), 'removeDeduplicationKey', '', [id]);
  },

  removeDebounceKey(id) {
    return this.removeDeduplicationKey(id);
  },

  removeRateLimitKey() {
    return run(queueHandle(this), 'queueAdmin', '', ['delLimiter']);
  },

  /** Rate-limit the whole queue for `expireTimeMs`. */
  async rateLimit(expireTimeMs) {
    await run(queueHandle(this), 'queueAdmin', '', ['rateLimit', Math.trunc(expireTimeMs)]);
  },

  /** ms left in the rate-limit window (0 when not limited; see BullMQ for maxJobs). */
  getRateLimitTtl(maxJobs) {
    return run(queueHandle(this), 'queueAdmin', '', ['rateLimitTtl', maxJobs ? Math.trunc(maxJobs) : 0]);
  },

  setGlobalConcurrency(concurrency) {
    return run(queueHandle(this), 'queueAdmin', '', ['setMeta', 'concurrency', concurrency]);
  },

  async getGlobalConcurrency() {
    const [c] = await run(queueHandle(this), 'queueAdmin', '', ['metaFields', 'concurrency']);
    return c ? Number(c) : null;
  },

  removeGlobalConcurrency() {
    return run(queueHandle(this), 'queueAdmin', '', ['delMeta', 'concurrency']);
  },

  setGlobalRateLimit(max, duration) {
    return run(queueHandle(this), 'queueAdmin', '', ['setMeta', 'max', max, 'duration', duration]);
  },

  async getGlobalRateLimit() {
    const [max, duration] = await run(queueHandle(this), 'queueAdmin', '', ['metaFields', 'max', 'duration']);
    return max && duration ? { max: Number(max), duration: Number(duration) } : null;
  },

  removeGlobalRateLimit() {
    return run(queueHandle(this), 'queueAdmin', '', ['delMeta', 'max', 'duration']);
  },

  /** The queue's meta hash, with BullMQ's parsing (numbers, paused as a boolean). */
  async getMeta() {
    if (this._metaDone) await this._metaDone;
    const raw = pairsToObject(await run(queueHandle(this), 'queueAdmin', '', ['getMeta']), false);
    const { concurrency, max, duration, paused, 'opts.maxLenEvents': maxLenEvents, ...rest } = raw;
    if (concurrency) rest.concurrency = Number(concurrency);
    if (maxLenEvents) rest.maxLenEvents = Number(maxLenEvents);
    if (max) rest.max = Number(max);
    if (duration) rest.duration = Number(duration);
    rest.paused = paused === '1';
    return rest;
  },

  /** Whether the global concurrency is reached (as many active jobs as it allows). */
  async isMaxed() {
    return (await run(queueHandle(this), 'queueAdmin', '', ['isMaxed'])) === 1;
  },

  /** BullMQ's Queue.updateJobProgress: the progress of job `jobId`, by id. */
  updateJobProgress(jobId, progress) {
    let json;
    try {
      json = JSON.stringify(progress);
    } catch (err) {
      return Promise.reject(invalid('progress', `is not serialisable (${err.message})`));
    }
    return callAsync(() => this._native.updateProgress(String(jobId), json)).then(() => {
      this.emit('progress', jobId, progress);
    });
  },

  /** BullMQ's Queue.addJobLog: appends a log line to job `jobId`; resolves with the count kept. */
  addJobLog(jobId, logRow, keepLogs) {
    return callAsync(() => this._native.addLog(String(jobId), String(logRow), typeof keepLogs === 'number' ? keepLogs : undefined));
  },

  /** Deletes the `priority` key BullMQ before 5 kept (nothing else uses it). */
  async removeDeprecatedPriorityKey() {
    return Number(await rawCommand(['DEL', this.toKey('priority')], this.opts && this.opts.connection));
  },

  async getVersion() {
    if (this._metaDone) await this._metaDone;
    const [v] = await run(queueHandle(this), 'queueAdmin', '', ['metaFields', 'version']);
    return v;
  },

  /**
   * Create or replace job scheduler `id` (repeat: `every` ms or a cron `pattern`, with `tz`,
   * `startDate`, `endDate`, `limit`, `offset`, `immediately`) and add its next iteration from
   * the template ({ name, data, opts }). Resolves with that job, or undefined when the
   * scheduler has nothing left to run (limit or endDate reached).
   */
  async upsertJobScheduler(jobSchedulerId, repeatOpts, jobTemplate) {
    // Its first iteration is placed by JavaScript's clock, mocked or not (as BullMQ's).
    binding.syncClock(Date.now());
    if (typeof jobSchedulerId !== 'string' || jobSchedulerId === '') throw invalid('jobSchedulerId', 'must be a non-empty string');
    if (repeatOpts === null || typeof repeatOpts !== 'object') throw invalid('repeatOpts', 'must be an object');
    const fail = (message) => new QueueNativeError('ERR_INVALID_OPTION', message);
    if (repeatOpts.endDate && +new Date(repeatOpts.endDate) < Date.now()) {
      throw fail('End date must be greater than current timestamp');
    }
    const jobName = (jobTemplate && jobTemplate.name) ?? jobSchedulerId;
    const jobData = (jobTemplate && jobTemplate.data) ?? {};
    const opts = Object.assign({}, this.jobsOpts, jobTemplate && jobTemplate.opts);
    const { every, limit, pattern, offset } = repeatOpts;
    if (pattern && every) throw fail('Both .pattern and .every options are defined for this repeatable job');
    if (!pattern && !every) throw fail('Either .pattern or .every options must be defined for this repeatable job');
    if (repeatOpts.immediately && repeatOpts.startDate) {
      throw fail('Both .immediately and .startDate options are defined for this repeatable job');
    }
    if (Object.prototype.hasOwnProperty.call(opts, 'debounce')) {
      throw fail('Debounce option has been removed. Use deduplication option instead');
    }
    const iterationCount = repeatOpts.count ? repeatOpts.count + 1 : 1;
    if (limit !== undefined && iterationCount > limit) return undefined;
    let now = Date.now();
    if (repeatOpts.endDate && now > new Date(repeatOpts.endDate).getTime()) return undefined;
    const prevMillis = opts.prevMillis || 0;
    now = prevMillis < now ? now : prevMillis;
    // BullMQ drops `immediately` from the options it stores (the cron strategy still sees it).
    const filteredRepeatOpts = { ...repeatOpts };
    delete filteredRepeatOpts.immediately;
    const newOffset = every && offset ? offset : null;
    let nextMillis;
    if (pattern) {
      // The Queue's `settings.repeatStrategy`, run as the worker runs its own (lib/cron.js).
      // A user's strategy that throws rejects this call with its own error, as with BullMQ.
      const cron = require('./cron');
      const strategy = this.opts.settings && this.opts.settings.repeatStrategy;
      try {
        nextMillis = await cron.nextRun(strategy, now, repeatOpts, jobName);
      } catch (err) {
        if (err instanceof cron.BadRepeatAnswer) throw fail(`settings.repeatStrategy ${err.message}`);
        if (strategy) throw err;
        throw fail(`invalid cron pattern ${JSON.stringify(pattern)}: ${err.message}`);
      }
      if (nextMillis === null) return undefined;
      if (nextMillis < now) nextMillis = now;
    }
    // BullMQ's getNextJobOpts, key for key (the stored text depends on the order).
    const base = Object.assign({}, opts, { repeat: filteredRepeatOpts, telemetry: undefined });
    const stamp = Date.now();
    const delay = nextMillis === undefined ? 0 : Math.max(0, nextMillis + (newOffset || 0) - stamp);
    const merged = Object.assign({}, base, {
      jobId: `repeat:${jobSchedulerId}:${nextMillis}`,
      delay,
      timestamp: stamp,
      prevMillis: nextMillis,
      repeatJobKey: jobSchedulerId,
    });
    merged.repeat = Object.assign({}, base.repeat, {
      offset: newOffset,
      count: iterationCount,
      startDate: toMs(base.repeat.startDate || undefined),
      endDate: toMs(base.repeat.endDate || undefined),
    });
    const schedulerOpts = {
      name: jobName,
      startDate: repeatOpts.startDate ? new Date(repeatOpts.startDate).getTime() : undefined,
      endDate: repeatOpts.endDate ? new Date(repeatOpts.endDate).getTime() : undefined,
      tz: repeatOpts.tz,
      pattern,
      every,
      limit,
      offset: newOffset,
    };
    let dataJson;
    try {
      dataJson = JSON.stringify(jobData === undefined ? {} : jobData);
    } catch (err) {
      throw invalid('jobTemplate.data', `is not serialisable (${err.message})`);
    }
    const reply = await run(queueHandle(this), 'upsertScheduler', '', [
      nextMillis === undefined ? '' : nextMillis,
      JSON.stringify(schedulerOpts, keepUndefined),
      jobSchedulerId,
      dataJson,
      JSON.stringify(optsAsJSON(opts), keepUndefined),
      JSON.stringify(optsAsJSON(merged), keepUndefined),
      now,
    ]);
    if (typeof reply === 'number') {
      throw finishedError(reply, { jobId: jobSchedulerId, command: 'addJobScheduler' });
    }
    return this.getJob(reply[0]);
  },

  /** The scheduler (BullMQ's shape: key, name, next, every / pattern, template...), or undefined. */
  async getJobScheduler(id) {
    const reply = await run(queueHandle(this), 'scheduler', '', ['get', id]);
    if (!reply || reply.length === 0) return schedulerData(id, null, null);
    return schedulerData(id, pairsToObject(reply[0], false), reply[1] ? parseInt(reply[1], 10) : null);
  },

  /** Schedulers start..end by next run (soonest first with asc). */
  async getJobSchedulers(start = 0, end = -1, asc = false) {
    const h = queueHandle(this);
    const reply = await run(h, 'scheduler', '', ['range', start, end, asc ? 1 : 0]);
    const out = [];
    for (let i = 0; i < reply.length; i += 3) {
      const key = reply[i];
      const data = schedulerData(key, pairsToObject(reply[i + 2], false), parseInt(reply[i + 1], 10));
      if (data) out.push(data);
      else await run(h, 'scheduler', '', ['remove', key]);
    }
    return out;
  },

  getJobSchedulersCount() {
    return run(queueHandle(this), 'scheduler', '', ['count']);
  },

  /** true when the scheduler existed and was removed (with its delayed next iteration). */
  async removeJobScheduler(jobSchedulerId) {
    const code = await run(queueHandle(this), 'scheduler', '', ['remove', jobSchedulerId]);
    return code === 0;
  },

  /**
   * Delete job keys that no state of the queue references (SCAN `count` keys per call, stop
   * after `limit` removals, 0 = no limit); the number of jobs removed.
   */
  async removeOrphanedJobs(count = 1000, limit = 0) {
    const h = queueHandle(this);
    let cursor = '0';
    let total = 0;
    do {
      const [next, removed] = await run(h, 'removeOrphans', '', [cursor, count]);
      cursor = String(next);
      total += removed || 0;
      if (limit > 0 && total >= limit) break;
    } while (cursor !== '0');
    return total;
  },

  /** { [priority]: waiting jobs with it } */
  async getCountsPerPriority(priorities) {
    const unique = [...new Set(priorities)];
    const counts = await run(queueHandle(this), 'queueAdmin', '', ['countsPerPriority', ...unique]);
    const out = {};
    unique.forEach((p, i) => {
      out[`${p}`] = counts[i] || 0;
    });
    return out;
  },
};

function define(proto, methods) {
  for (const [name, fn] of Object.entries(methods)) {
    Object.defineProperty(proto, name, { value: fn, writable: true, configurable: true, enumerable: false });
  }
}

/** Install the methods on the facade's classes (index.js calls it once). */
function install({ Job, Queue }) {
  define(Job.prototype, jobMethods);
  define(Queue.prototype, queueMethods);
  if (!Object.prototype.hasOwnProperty.call(Job, 'create')) {
    /** BullMQ's Job.create(queue, name, data, opts): queue.add, resolving with the job. */
    Job.create = function create(queue, name, data, opts) {
      return queue.add(name, data, opts);
    };
    /** BullMQ's Job.createBulk(queue, jobs): queue.addBulk. */
    Job.createBulk = function createBulk(queue, jobs) {
      return queue.addBulk(jobs);
    };
  }
  if (!Object.prototype.hasOwnProperty.call(Job, 'fromId')) {
    /** BullMQ's Job.fromId(queue, id): the job, or undefined. */
    Job.fromId = function fromId(queue, jobId) {
      if (jobId === undefined || jobId === null || jobId === '') return Promise.resolve(undefined);
      return queue.getJob(jobId);
    };
  }
}

module.exports = { install, registerQueue, finishedError };
