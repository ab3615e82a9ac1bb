'use strict';
// The test-only addon (cargo feature `testing`, src/binding/testing.rs), built by
// `npm run build:testing` into target/testing/ (`npm test` builds it when missing or stale).
// It runs the engine's own script wrappers, so each script's KEYS/ARGV layout and the include
// assembly live once, in Rust; the specs name a script and its arguments and get Redis's raw
// reply (negative codes included). What is here: loading it, the argument objects of the
// table in testing.rs, reading the replies, and key names for inspecting Redis.

const path = require('path');

const BINDING = path.join(__dirname, '..', '..', 'target', 'testing', 'binding.js');

function load() {
  try {
    return require(BINDING);
  } catch (err) {
    throw new Error(`the testing addon is missing (${err.message}); run \`npm run build:testing\` or \`npm test\``);
  }
}

const binding = load();

/** Every script's text as Redis runs it (includes inlined), by name. */
const SCRIPTS = binding.testScriptSources();

/** The names of QueueKeys (src/engine/keys.rs), written out to inspect what the scripts leave. */
function queueKeys(prefix, name) {
  const base = `${prefix}:${name}:`;
  const k = { prefix, name, base };
  for (const [field, suffix] of Object.entries({
    wait: 'wait', active: 'active', prioritized: 'prioritized', events: 'events', stalled: 'stalled',
    limiter: 'limiter', delayed: 'delayed', paused: 'paused', meta: 'meta', pc: 'pc', marker: 'marker',
    completed: 'completed', failed: 'failed', stalledCheck: 'stalled-check', id: 'id',
    waitingChildren: 'waiting-children', repeat: 'repeat',
  })) {
    k[field] = base + suffix;
  }
  k.job = (id) => base + id;
  k.lock = (id) => `${base}${id}:lock`;
  k.logs = (id) => `${base}${id}:logs`;
  return k;
}

function flatToObject(flat) {
  const o = {};
  for (let i = 0; i < flat.length; i += 2) o[flat[i]] = flat[i + 1];
  return o;
}

/** activate.lua / finish.lua reply -> { ttl, nextDue, jobs: [{ id, fields }] } (or a negative code). */
function parseFetched(reply) {
  if (typeof reply === 'number') return reply;
  const jobs = [];
  for (let i = 2; i < reply.length; i += 2) jobs.push({ id: reply[i], fields: flatToObject(reply[i + 1]) });
  return { ttl: reply[0], nextDue: reply[1], jobs };
}

/** The connection options as the addon takes them (API.md `connection`; ioredis-only keys are ignored). */
const connectionJson = (connection) => (connection ? JSON.stringify(connection) : null);

/**
 * The scripts of one Redis server, one method per script (arguments as in the table of
 * src/binding/testing.rs), each resolving with the raw reply. `connection` is read at each
 * call, so it may be filled in after construction (a suite's port is known in beforeAll).
 */
class Scripts {
  constructor(connection) {
    this.connection = connection;
  }

  call(k, script, args) {
    return binding.testScriptCall(connectionJson(this.connection), k.prefix, k.name, script, JSON.stringify(args));
  }

  /** fetch: { lockMs?, limiter?: [max, duration], name?, tokens } */
  async activate(k, now, fetch) {
    return parseFetched(await this.call(k, 'activate', { now, fetch }));
  }

  /**
   * outcome: { completed: returnvalueJson } | { failed: reason, stacktrace? }
   * keep: { count, age?, limit? }
   */
  async finish(k, id, token, now, outcome, keep = { count: -1 }, attempts = 0, fetch = null) {
    const r = await this.finishMany(k, now, [{ id, token, outcome, keep, attempts }], fetch);
    return r.codes[0] < 0 ? r.codes[0] : { ttl: r.ttl, nextDue: r.nextDue, jobs: r.jobs };
  }

  /** jobs: [{ id, token, outcome, keep?, attempts? }] -> { codes, ttl, nextDue, jobs } */
  async finishMany(k, now, jobs, fetch = null) {
    const [codes, ...rest] = await this.call(k, 'finish', { now, jobs, fetch });
    return { codes, ...parseFetched(rest) };
  }

  retry(k, id, token, now, lifo, reason, stacktrace) {
    return this.call(k, 'retry', { id, token, now, lifo, reason, stacktrace });
  }

  delay(k, id, token, now, delayMs, skipAttempt, reason, stacktrace) {
    return this.call(k, 'delay', { id, token, now, delayMs, skipAttempt, reason, stacktrace });
  }

  /** pairs: [[id, token], ...]; resolves with null for none: the wrapper then sends no script. */
  extendLocks(k, durationMs, pairs) {
    return this.call(k, 'extend_locks', { durationMs, pairs });
  }

  stalled(k, maxStalled, now, intervalMs) {
    return this.call(k, 'stalled', { maxStalled, now, intervalMs });
  }

  progress(k, id, json) {
    return this.call(k, 'progress', { id, json });
  }

  addLog(k, id, line, keep) {
    return this.call(k, 'add_log', { id, line, keep });
  }

  updateData(k, id, json) {
    return this.call(k, 'update_data', { id, json });
  }

  waitingChildren(k, id, token, now, childKey) {
    return this.call(k, 'waiting_children', { id, token, now, childKey });
  }

  requeue(k, id, token) {
    return this.call(k, 'requeue', { id, token });
  }

  /**
   * next: ms for a cron scheduler, '' for an every scheduler; opts: the next iteration's
   * options as a msgpack Buffer (what job::next_iteration_opts builds).
   */
  schedulerNext(k, schedulerId, producerId, now, next, legacy, opts) {
    return this.call(k, 'scheduler_next', {
      schedulerId, producerId, now, next: next === '' ? null : next, legacy, opts: [...opts],
    });
  }

  /** A plain command (args: strings) on the same connection pair as the scripts. */
  command(args) {
    return binding.rawCommand(connectionJson(this.connection), args.map(String));
  }

  /** Resolves once the connection pair is up. */
  connect(timeoutMs) {
    return binding.connect(connectionJson(this.connection), timeoutMs);
  }
}

/** Close the testing addon's connection pairs (run it before the suite stops its server). */
const shutdown = () => binding.shutdown();

module.exports = { SCRIPTS, Scripts, queueKeys, parseFetched, flatToObject, shutdown };
