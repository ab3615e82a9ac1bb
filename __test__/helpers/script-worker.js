'use strict';
// A small reference worker driven only by our Lua scripts (src/scripts), called through the
// engine's script wrappers (the testing addon, helpers/testing.js), with BullMQ's worker-side
// decisions written out in JS (retry rule, backoff, removeOn* mapping, fetch-next with the
// same token, stalled check, lock renewal). The script specs run it next to BullMQ's own
// Worker and compare what both leave in Redis, which proves the scripts and their wrappers
// without the engine's worker. It also has the API.md `Worker` shape, so it can serve as
// `--impl` for the shared oracle-diff tool.
//
// Concurrency 1 only: it is a test driver, not the product.

const crypto = require('crypto');
const { EventEmitter } = require('events');
const testing = require('./testing');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const CODES = { '-1': 'job missing', '-2': 'lock missing', '-3': 'not active', '-4': 'pending dependencies', '-6': 'lock held by another token', '-9': 'failed children' };

let defaultConnection;
const workers = new Set();

/** BullMQ's getKeepJobs: job-level removeOn* wins over the worker's. */
function keepJobs(jobLevel, workerLevel) {
  const v = jobLevel === undefined ? workerLevel : jobLevel;
  if (v === undefined || v === null) return { count: -1 };
  if (typeof v === 'object') return { count: v.count ?? -1, age: v.age, limit: v.limit };
  if (typeof v === 'number') return { count: v };
  return { count: v ? 0 : -1 };
}

/** BullMQ's backoff (§9.6): n = the attempt number that just failed. */
function backoffDelay(backoff, n, err, job, strategy) {
  if (!backoff) return 0;
  const { type, delay = 0, jitter = 0 } = typeof backoff === 'number' ? { type: 'fixed', delay: backoff } : backoff;
  const jittered = (d) => (jitter > 0 ? Math.floor(Math.random() * d * jitter + d * (1 - jitter)) : d);
  if (type === 'fixed') return jittered(delay);
  if (type === 'exponential') return jittered(Math.round(2 ** (n - 1) * delay));
  if (strategy) return strategy(n, type, err, job);
  throw new Error(`Unknown backoff strategy ${type}`);
}

function scriptError(code, what) {
  const e = new Error(`${what}: script code ${code} (${CODES[code] || 'unknown'})`);
  e.code = code;
  return e;
}

class Worker extends EventEmitter {
  constructor(queueName, processor, opts = {}) {
    super();
    const { connection, prefix = 'bull', ...rest } = opts;
    this.name = queueName;
    this.processor = processor;
    this.opts = { lockDuration: 30000, stalledInterval: 30000, maxStalledCount: 1, ...rest };
    this.scripts = new testing.Scripts(connection || defaultConnection);
    this.k = testing.queueKeys(prefix, queueName);
    this.uuid = crypto.randomUUID();
    this.serial = 0;
    this.closing = false;
    this.locks = new Map(); // job id -> token, for lock renewal
    workers.add(this);
    if (opts.autorun !== false) this.run();
  }

  get concurrency() {
    return 1;
  }

  set concurrency(_n) {}

  token() {
    this.serial += 1;
    return `${this.uuid}:${this.serial}`;
  }

  fetchOpts(token) {
    const l = this.opts.limiter;
    return { lockMs: this.opts.lockDuration, limiter: l ? [l.max, l.duration] : null, name: this.opts.name, tokens: [token] };
  }

  run() {
    if (!this.running) this.running = this.loop();
    return this.running;
  }

  waitUntilReady() {
    return this.scripts.connect(5000);
  }

  async stalledCheck() {
    try {
      const moved = await this.scripts.stalled(this.k, this.opts.maxStalledCount, Date.now(), this.opts.stalledInterval);
      for (const id of moved) this.emit('stalled', id);
    } catch (err) {
      this.emit('error', err);
    }
  }

  async renewLocks() {
    if (this.locks.size === 0) return;
    try {
      const lost = await this.scripts.extendLocks(this.k, this.opts.lockDuration, [...this.locks.entries()]);
      for (const id of lost) this.emit('error', new Error(`could not renew lock for job ${id}`));
    } catch (err) {
      this.emit('error', err);
    }
  }

  async loop() {
    await this.stalledCheck();
    this.timers = [
      setInterval(() => this.stalledCheck(), this.opts.stalledInterval),
      setInterval(() => this.renewLocks(), Math.max(10, this.opts.lockDuration / 2)),
    ];
    let next = null;
    let drainedOnce = false;
    while (!this.closing) {
      try {
        if (!next) next = await this.fetch(this.token());
        if (!next) {
          if (!drainedOnce) this.emit('drained');
          drainedOnce = true;
          await sleep(this.idleMs);
          continue;
        }
        drainedOnce = false;
        next = await this.processJob(next);
      } catch (err) {
        this.emit('error', err);
        next = null;
        await sleep(20);
      }
    }
  }

  /** activate.lua with one token; remembers how long to idle when nothing came. */
  async fetch(token) {
    const f = await this.scripts.activate(this.k, Date.now(), this.fetchOpts(token));
    return this.take(f, token);
  }

  take(f, token) {
    if (f.jobs.length > 0) return { ...f.jobs[0], token };
    const wait = f.ttl > 0 ? f.ttl : f.nextDue > 0 ? f.nextDue - Date.now() : 10;
    this.idleMs = Math.min(Math.max(wait, 1), 10);
    return null;
  }

  makeJob({ id, fields, token }) {
    const { k, scripts } = this;
    const opts = JSON.parse(fields.opts || '{}');
    const job = {
      id,
      name: fields.name,
      data: JSON.parse(fields.data || '{}'),
      opts,
      queueName: this.name,
      timestamp: Number(fields.timestamp),
      processedOn: Number(fields.processedOn),
      attemptsMade: Number(fields.atm ?? fields.attemptsMade ?? 0),
      attemptsStarted: Number(fields.ats || 0),
      progress: fields.progress ? JSON.parse(fields.progress) : 0,
      delay: Number(fields.delay || 0),
      priority: Number(fields.priority || 0),
      stacktrace: fields.stacktrace ? JSON.parse(fields.stacktrace) : [],
      token,
      async updateProgress(progress) {
        const code = await scripts.progress(k, id, JSON.stringify(progress));
        if (code < 0) throw scriptError(code, 'updateProgress');
        job.progress = progress;
      },
      async log(line) {
        const n = await scripts.addLog(k, id, line, opts.kl);
        if (n < 0) throw scriptError(n, 'log');
        return n;
      },
      async updateData(data) {
        const code = await scripts.updateData(k, id, JSON.stringify(data));
        if (code < 0) throw scriptError(code, 'updateData');
        job.data = data;
      },
      async moveToDelayed(timestamp, tok) {
        const now = Date.now();
        const code = await scripts.delay(k, id, tok || token, now, Math.max(timestamp - now, 0), true);
        if (code < 0) throw scriptError(code, 'moveToDelayed');
      },
      async getChildrenValues() {
        const raw = testing.flatToObject(await scripts.command(['HGETALL', `${k.job(id)}:processed`]));
        return Object.fromEntries(Object.entries(raw).map(([key, v]) => [key, JSON.parse(v)]));
      },
    };
    return job;
  }

  async processJob(raw) {
    const { id, fields, token } = raw;
    this.locks.set(id, token);
    const job = this.makeJob(raw);
    this.emit('active', job);
    try {
      if (fields.defa) {
        const err = new Error(fields.defa);
        err.name = 'UnrecoverableError';
        return await this.handleFailed(job, err);
      }
      let result;
      try {
        result = await this.processor(job, token);
      } catch (err) {
        return await this.handleFailed(job, err);
      }
      return await this.handleCompleted(job, result);
    } finally {
      this.locks.delete(id);
    }
  }

  async handleCompleted(job, result) {
    const json = JSON.stringify(result);
    const f = await this.scripts.finish(this.k, job.id, job.token, Date.now(), { completed: json === undefined ? 'null' : json },
      keepJobs(job.opts.removeOnComplete, this.opts.removeOnComplete), job.opts.attempts || 0,
      this.closing ? null : this.fetchOpts(job.token));
    if (typeof f === 'number') throw scriptError(f, `complete job ${job.id}`);
    this.emit('completed', job, result);
    return this.take(f, job.token);
  }

  async handleFailed(job, err) {
    if (err && err.name === 'DelayedError') {
      return this.closing ? null : this.fetch(job.token);
    }
    const reason = err && err.message;
    const stack = job.stacktrace;
    if (err && err.stack) {
      stack.push(err.stack);
      const limit = job.opts.stackTraceLimit;
      if (limit === 0) stack.length = 0;
      else if (limit) stack.splice(0, Math.max(stack.length - limit, 0));
    }
    const stackJson = JSON.stringify(stack);
    const attempts = job.opts.attempts || 0;
    let retryDelay = -1;
    if (job.attemptsMade + 1 < attempts && !(err && err.name === 'UnrecoverableError')) {
      const strategy = this.opts.settings && this.opts.settings.backoffStrategy;
      retryDelay = backoffDelay(job.opts.backoff, job.attemptsMade + 1, err, job, strategy) || 0;
    }
    this.emit('failed', job, err);
    if (retryDelay > 0) {
      const code = await this.scripts.delay(this.k, job.id, job.token, Date.now(), retryDelay, false, reason, stackJson);
      if (code < 0) throw scriptError(code, `delay job ${job.id}`);
      return this.closing ? null : this.fetch(job.token);
    }
    if (retryDelay === 0) {
      const code = await this.scripts.retry(this.k, job.id, job.token, Date.now(), !!job.opts.lifo, reason, stackJson);
      if (code < 0) throw scriptError(code, `retry job ${job.id}`);
      return null;
    }
    const f = await this.scripts.finish(this.k, job.id, job.token, Date.now(), { failed: reason, stacktrace: stackJson },
      keepJobs(job.opts.removeOnFail, this.opts.removeOnFail), attempts, this.closing ? null : this.fetchOpts(job.token));
    if (typeof f === 'number') throw scriptError(f, `fail job ${job.id}`);
    return this.take(f, job.token);
  }

  async close() {
    if (this.closed) return this.closed;
    this.closing = true;
    this.closed = (async () => {
      await this.running;
      for (const t of this.timers || []) clearInterval(t);
      workers.delete(this);
      this.emit('closed');
    })();
    return this.closed;
  }
}

function configure(options) {
  defaultConnection = options;
}

async function shutdown() {
  await Promise.all([...workers].map((w) => w.close()));
  await testing.shutdown();
}

class UnrecoverableError extends Error {
  constructor(message) {
    super(message);
    this.name = 'UnrecoverableError';
  }
}

class DelayedError extends Error {
  constructor(message) {
    super(message);
    this.name = 'DelayedError';
  }
}

module.exports = { Worker, configure, shutdown, UnrecoverableError, DelayedError, keepJobs, backoffDelay };
