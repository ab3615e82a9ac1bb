'use strict';
// Our Lua scripts (src/scripts/*.lua), called from JS with the same KEYS/ARGV the Rust
// wrappers in src/engine/scripts.rs send. Used by the script specs and by script-worker.js.

const fs = require('fs');
const path = require('path');

const SCRIPT_DIR = path.join(__dirname, '..', '..', 'src', 'scripts');
const INCLUDE_DIR = path.join(SCRIPT_DIR, 'include');
const DIRECTIVE = '--@include';

function readLuaDir(dir) {
  const out = {};
  for (const file of fs.readdirSync(dir)) {
    if (file.endsWith('.lua')) out[file.slice(0, -4)] = fs.readFileSync(path.join(dir, file), 'utf8');
  }
  return out;
}

/** The names a text's `--@include a, b` lines ask for, in order. */
function directives(name, source) {
  const out = [];
  for (const line of source.split('\n')) {
    if (!line.startsWith(DIRECTIVE)) continue;
    for (const raw of line.slice(DIRECTIVE.length).split(',')) {
      const item = raw.trim();
      if (!/^[A-Za-z0-9_]+$/.test(item)) throw new Error(`${name}: malformed \`${DIRECTIVE}\` line \`${line}\``);
      out.push(item);
    }
  }
  return out;
}

/** source with its directive lines dropped, the first one replaced by inlined. */
function splice(source, inlined) {
  let out = '';
  let done = false;
  for (const line of source.split(/(?<=\n)/)) {
    if (line.startsWith(DIRECTIVE)) {
      if (!done) out += inlined;
      done = true;
    } else {
      out += line;
    }
  }
  return out;
}

/**
 * The script text Redis runs: the includes it asks for (src/scripts/include/*.lua) inlined at its
 * first directive line, each once, after what it needs. The same as assemble in src/engine/lua.rs.
 */
function assemble(name, source, includes) {
  const wanted = directives(name, source);
  if (!wanted.length) return source;
  const order = [];
  const visit = (inc, chain) => {
    if (order.includes(inc)) return;
    if (chain.includes(inc)) throw new Error(`${name}: include cycle ${chain.join(' -> ')} -> ${inc}`);
    if (!Object.prototype.hasOwnProperty.call(includes, inc)) {
      throw new Error(`${name}: unknown include \`${inc}\` (no src/scripts/include/${inc}.lua)`);
    }
    for (const dep of directives(`include/${inc}.lua`, includes[inc])) visit(dep, [...chain, inc]);
    order.push(inc);
  };
  for (const inc of wanted) visit(inc, []);
  return splice(source, order.map((inc) => splice(includes[inc], '')).join('\n'));
}

function loadScripts() {
  const includes = readLuaDir(INCLUDE_DIR);
  const out = {};
  for (const [name, source] of Object.entries(readLuaDir(SCRIPT_DIR))) out[name] = assemble(name, source, includes);
  return out;
}

const SCRIPTS = loadScripts();

/** The same names as QueueKeys (src/engine/keys.rs). */
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

function fetchArgs(f) {
  if (!f) return ['0', '0', '0', ''];
  const [max, duration] = f.limiter || [0, 0];
  return [f.lockMs ?? 30000, max, duration, f.name || '', ...(f.tokens || [])];
}

class Scripts {
  constructor(client) {
    this.client = client;
  }

  run(name, keys, argv) {
    return this.client.eval(SCRIPTS[name], keys.length, ...keys, ...argv.map(String));
  }

  async activate(k, now, f) {
    const keys = [k.wait, k.active, k.prioritized, k.events, k.stalled, k.limiter, k.delayed, k.paused, k.meta, k.pc, k.marker];
    return parseFetched(await this.run('activate', keys, [k.base, now, ...fetchArgs(f)]));
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
    const keys = [k.wait, k.active, k.prioritized, k.events, k.stalled, k.limiter, k.delayed, k.paused, k.meta, k.pc,
      k.completed, k.failed, k.marker];
    const [lock, max, duration, name, ...tokens] = fetchArgs(fetch);
    const argv = [now, k.base, lock, max, duration, name, jobs.length];
    for (const { id, token, outcome, keep = { count: -1 }, attempts = 0 } of jobs) {
      const completed = 'completed' in outcome;
      argv.push(id, completed ? 'completed' : 'failed', completed ? outcome.completed : outcome.failed, token,
        keep.count ?? -1, keep.age || 0, keep.limit || 0, attempts, completed ? '' : outcome.stacktrace || '');
    }
    const [codes, ...rest] = await this.run('finish', keys, [...argv, ...tokens]);
    return { codes, ...parseFetched(rest) };
  }

  retry(k, id, token, now, lifo, reason, stacktrace = '') {
    const keys = [k.active, k.wait, k.paused, k.job(id), k.meta, k.events, k.delayed, k.prioritized, k.pc, k.marker, k.stalled];
    return this.run('retry', keys, [k.base, now, lifo ? 'RPUSH' : 'LPUSH', id, token, reason, stacktrace]);
  }

  delay(k, id, token, now, delayMs, skipAttempt, reason = '', stacktrace = '') {
    const keys = [k.marker, k.active, k.prioritized, k.delayed, k.job(id), k.events, k.meta, k.stalled, k.wait, k.limiter, k.pc];
    return this.run('delay', keys, [k.base, now, id, token, delayMs, skipAttempt ? '1' : '0', reason || '', stacktrace || '']);
  }

  extendLocks(k, durationMs, pairs) {
    return this.run('extend_locks', [k.stalled], [k.base, durationMs, ...pairs.flat()]);
  }

  stalled(k, maxStalled, now, intervalMs) {
    const keys = [k.stalled, k.wait, k.active, k.stalledCheck, k.meta, k.paused, k.marker, k.events];
    return this.run('stalled', keys, [maxStalled, k.base, now, intervalMs]);
  }

  progress(k, id, json) {
    return this.run('progress', [k.job(id), k.events, k.meta], [id, json]);
  }

  addLog(k, id, line, keep) {
    return this.run('add_log', [k.job(id), k.logs(id)], [id, line, keep ?? '']);
  }

  updateData(k, id, json) {
    return this.run('update_data', [k.job(id)], [json]);
  }

  waitingChildren(k, id, token, now, childKey = '') {
    const keys = [k.active, k.waitingChildren, k.job(id), `${k.job(id)}:dependencies`, `${k.job(id)}:unsuccessful`,
      k.stalled, k.events, k.meta];
    return this.run('waiting_children', keys, [id, token, childKey, now]);
  }

  requeue(k, id, token) {
    const keys = [k.active, k.wait, k.stalled, k.paused, k.meta, k.limiter, k.prioritized, k.marker, k.events, k.job(id)];
    return this.run('requeue', keys, [id, token, k.base]);
  }

  /**
   * next: ms for a cron scheduler, '' for an every scheduler; opts: the next iteration's
   * options as a msgpack Buffer (what job::next_iteration_opts builds).
   */
  schedulerNext(k, schedulerId, producerId, now, next, legacy, opts) {
    const keys = [k.repeat, k.delayed, k.wait, k.paused, k.meta, k.prioritized, k.marker, k.id, k.events, k.pc,
      k.active, k.job(producerId)];
    return this.client.eval(SCRIPTS.scheduler_next, keys.length, ...keys, k.base, String(now), schedulerId, producerId,
      String(next ?? ''), legacy ? '1' : '0', opts);
  }
}

module.exports = { SCRIPTS, SCRIPT_DIR, assemble, queueKeys, Scripts, parseFetched, flatToObject };
