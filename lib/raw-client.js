'use strict';
// `queue.client` (BullMQ 5's Promise of the queue's ioredis client) and BullMQ 6's
// `getBackend().client`: an ioredis-shaped raw client whose commands run on the process's
// shared command connection (and, as BullMQ 6's backend, `redisVersion` and `databaseType`).
// Applications (and BullMQ's own tests) use it for ad-hoc reads
// and writes; it opens no socket. Commands that block the connection (BLPOP, XREAD BLOCK,
// SUBSCRIBE, ...) would stall every queue of the process on that socket, and commands that
// change the connection's state (SELECT, MULTI, CLIENT SETNAME, ...) would change it for all
// of them: both are refused with ERR_INVALID_OPTION; quit() / disconnect() leave the shared
// socket open.

const binding = require('./native');
const { callAsync, invalid } = require('./errors');
const { serializeConnection } = require('./connection');

const BLOCKING = new Set([
  'blpop', 'brpop', 'brpoplpush', 'blmove', 'blmpop', 'bzpopmin', 'bzpopmax', 'bzmpop',
  'wait', 'waitaof', 'subscribe', 'psubscribe', 'ssubscribe', 'monitor', 'sync', 'psync',
]);

// Commands that change the shared connection's own state (database, transaction, auth,
// protocol, name), which every queue of the process relies on: refused. multi() / pipeline()
// give transactions that leave the connection as they found it.
const CONNECTION_STATE = new Set(['select', 'multi', 'exec', 'discard', 'watch', 'unwatch', 'auth', 'hello', 'reset', 'quit', 'readonly', 'readwrite']);
// CLIENT subcommands that only read or act on other connections.
const CLIENT_SAFE = new Set(['list', 'info', 'id', 'getname', 'kill', 'unblock', 'pause', 'unpause']);

// Not commands: properties a caller (or `await`) may probe.
const NOT_COMMANDS = new Set(['then', 'catch', 'finally', 'constructor', 'toJSON', 'inspect', 'asymmetricMatch', '$$typeof', 'nodeType']);

/** ioredis's argument flattening: arrays spread, plain objects as field/value pairs. */
function flatten(args, out = []) {
  for (const a of args) {
    if (Array.isArray(a)) flatten(a, out);
    else if (a instanceof Map) for (const [k, v] of a) out.push(String(k), String(v));
    else if (Buffer.isBuffer(a)) out.push(a.toString());
    else if (a !== null && typeof a === 'object') for (const [k, v] of Object.entries(a)) out.push(k, String(v));
    else out.push(String(a));
  }
  return out;
}

const isOptions = (v) => v !== null && typeof v === 'object' && !Array.isArray(v) && !Buffer.isBuffer(v);

// BullMQ 6's client interface (its IRedisClient) passes options as objects where ioredis takes
// words; both forms are accepted, told apart by the arguments' shape.
const STRUCTURED = {
  set: (key, value, opts) =>
    isOptions(opts) ? [key, value, ...(opts.PX != null ? ['PX', opts.PX] : opts.EX != null ? ['EX', opts.EX] : [])] : null,
  zrange: (key, start, end, opts) => (isOptions(opts) ? [key, start, end, ...(opts.WITHSCORES ? ['WITHSCORES'] : [])] : null),
  zrevrange: (key, start, end, opts) => (isOptions(opts) ? [key, start, end, ...(opts.WITHSCORES ? ['WITHSCORES'] : [])] : null),
  xadd: (key, id, fields, opts) => {
    if (!isOptions(fields)) return null;
    const cap = opts && opts.MAXLEN != null ? ['MAXLEN', ...(opts.approximate === false ? [] : ['~']), opts.MAXLEN] : [];
    return [key, ...cap, id, ...Object.entries(fields).flat()];
  },
  xread: (streams, opts) => {
    if (!Array.isArray(streams) || !streams.every(isOptions)) return null;
    const o = opts || {};
    return [
      ...(o.BLOCK != null ? ['BLOCK', o.BLOCK] : []),
      ...(o.COUNT != null ? ['COUNT', o.COUNT] : []),
      'STREAMS',
      ...streams.map((x) => x.key),
      ...streams.map((x) => x.id),
    ];
  },
  xtrim: (key, strategy, threshold, opts) =>
    isOptions(opts) ? [key, strategy, ...(opts.approximate === false ? [] : ['~']), threshold] : null,
  scan: (cursor, opts) =>
    isOptions(opts) ? [cursor, ...(opts.MATCH != null ? ['MATCH', opts.MATCH] : []), ...(opts.COUNT != null ? ['COUNT', opts.COUNT] : [])] : null,
};

/** A command's words, checked: [name, ...args]. */
function commandOf(name, args) {
  const structured = STRUCTURED[name.toLowerCase()];
  const translated = structured ? structured(...args) : null;
  const words = [name, ...flatten(translated || args)];
  const lower = name.toLowerCase();
  const blocks =
    BLOCKING.has(lower) ||
    ((lower === 'xread' || lower === 'xreadgroup') && words.some((w) => String(w).toLowerCase() === 'block'));
  if (blocks) {
    throw invalid('command', `${name.toUpperCase()} would block the shared connection every queue of this process uses`);
  }
  if (CONNECTION_STATE.has(lower) || (lower === 'client' && !CLIENT_SAFE.has(String(words[1] || '').toLowerCase()))) {
    const what = lower === 'client' ? `CLIENT ${String(words[1] || '').toUpperCase()}` : name.toUpperCase();
    throw invalid('command', `${what} would change the shared connection every queue of this process uses`);
  }
  return words;
}

// Commands whose RESP3 reply nests [member, score] pairs where RESP2 (what ioredis speaks)
// gives one flat list; the shared connection speaks RESP3.
const PAIRED = new Set(['zrange', 'zrangebyscore', 'zrevrange', 'zrevrangebyscore', 'zpopmin', 'zpopmax', 'zrandmember', 'zunion', 'zinter', 'zdiff', 'hrandfield']);

/** ioredis's reply shaping: HGETALL as an object, RESP3's score pairs flat as in RESP2. */
function shape(name, reply) {
  const lower = name.toLowerCase();
  if (lower === 'hgetall' && Array.isArray(reply)) {
    const out = {};
    for (let i = 0; i + 1 < reply.length; i += 2) out[reply[i]] = reply[i + 1];
    return out;
  }
  if (PAIRED.has(lower) && Array.isArray(reply) && reply.some(Array.isArray)) {
    return reply.flatMap((item) => (Array.isArray(item) ? item : [item]));
  }
  // RESP3 gives XREAD a map (stream -> entries), which arrives flat; RESP2's is a list of
  // [stream, entries] pairs.
  if ((lower === 'xread' || lower === 'xreadgroup') && Array.isArray(reply) && typeof reply[0] === 'string') {
    const pairs = [];
    for (let i = 0; i + 1 < reply.length; i += 2) pairs.push([reply[i], reply[i + 1]]);
    return pairs;
  }
  return reply;
}

function run(connJson, words) {
  return callAsync(() => binding.rawCommand(connJson, words)).then((reply) => shape(words[0], reply));
}

/** `multi()` / `pipeline()`: queued commands sent together; exec() gives [[err, reply], ...]. */
function batch(connJson, atomic) {
  const queued = [];
  const exec = async () => {
    const replies = await callAsync(() => binding.rawPipeline(connJson, queued, atomic));
    return replies.map(([err, value], i) => (err === null ? [null, shape(queued[i][0], value)] : [new Error(err), undefined]));
  };
  const builder = new Proxy(
    {},
    {
      get(_, prop) {
        if (prop === 'exec') return exec;
        if (prop === 'length') return queued.length;
        if (typeof prop !== 'string' || NOT_COMMANDS.has(prop)) return undefined;
        return (...args) => {
          queued.push(commandOf(prop, args));
          return builder;
        };
      },
    },
  );
  return builder;
}

/** The raw client for `connection` (a Queue's / Worker's `opts.connection`). */
function rawClient(connection) {
  const connJson = serializeConnection(connection);
  const fixed = {
    status: 'ready',
    multi: () => batch(connJson, true),
    pipeline: () => batch(connJson, false),
    call: (name, ...args) => {
      try {
        return run(connJson, commandOf(String(name), args));
      } catch (err) {
        return Promise.reject(err);
      }
    },
    // BullMQ 6's client interface.
    clientList: () => fixed.call('CLIENT', 'LIST'),
    clientInfo: () => fixed.call('CLIENT', 'INFO'),
    info: (...args) => fixed.call('INFO', ...args),
    quit: async () => 'OK',
    disconnect: () => {},
    duplicate: () => rawClient(connection),
  };
  return new Proxy(fixed, {
    get(target, prop) {
      if (Object.prototype.hasOwnProperty.call(target, prop)) return target[prop];
      if (typeof prop !== 'string' || NOT_COMMANDS.has(prop)) return undefined;
      return (...args) => target.call(prop, ...args);
    },
  });
}

/** The version the server of `connection` reported when its pair connected ('' before). */
function endpointVersion(connection) {
  try {
    const name = binding.resolveEndpoint(serializeConnection(connection));
    const endpoint = binding.health().endpoints.find((e) => e.endpoint === name);
    return (endpoint && endpoint.redisVersion) || '';
  } catch {
    return '';
  }
}

/**
 * Give `Class` BullMQ's `client` (a Promise of the raw client) and `getBackend()` (BullMQ 6:
 * an object whose `client` is that Promise). The client is made once per object.
 */
function installRawClient(Class) {
  Object.defineProperty(Class.prototype, 'client', {
    configurable: true,
    get() {
      if (!this._rawClient) {
        Object.defineProperty(this, '_rawClient', { value: rawClient(this.opts && this.opts.connection), enumerable: false });
      }
      return Promise.resolve(this._rawClient);
    },
  });
  Object.defineProperty(Class.prototype, 'getBackend', {
    configurable: true,
    writable: true,
    value() {
      const owner = this;
      return {
        get client() {
          return owner.client;
        },
        /** The server's version, once connected ('' before). */
        get redisVersion() {
          return endpointVersion(owner.opts && owner.opts.connection);
        },
        databaseType: 'redis',
      };
    },
  });
}

module.exports = { rawClient, installRawClient };
