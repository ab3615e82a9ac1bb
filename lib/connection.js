'use strict';
// The process-wide connection pair: configure, connect, health, shutdown, connection events.

const { EventEmitter } = require('events');
const binding = require('./native');
const { QueueNativeError, callSync, callAsync, invalid } = require('./errors');

const CONNECTION_FIELDS = ['url', 'host', 'port', 'username', 'password', 'db', 'tls', 'sentinels', 'name', 'sentinelUsername', 'sentinelPassword'];

// Connection options become JSON for the engine, which validates them. Functions (an ioredis
// retryStrategy, say) are dropped by JSON; an ioredis client instance is read for its options,
// so `connection: redisClient` from BullMQ code keeps working (without its socket).
function serializeConnection(options, name = 'connection') {
  if (options === undefined || options === null) return null;
  if (typeof options !== 'object' || Array.isArray(options)) {
    throw invalid(name, 'must be an object');
  }
  let plain = options;
  if (options.isCluster === true && Array.isArray(options.startupNodes)) {
    // An ioredis Cluster (BullMQ's `new Cluster(nodes, { redisOptions })`): its seed nodes and
    // the credentials/TLS of its redisOptions.
    const redisOptions = (options.options && options.options.redisOptions) || {};
    plain = {
      cluster: options.startupNodes.map((n) => (typeof n === 'object' ? { host: n.host, port: n.port } : n)),
    };
    for (const key of ['username', 'password', 'tls']) {
      if (redisOptions[key] !== undefined) plain[key] = redisOptions[key];
    }
    if (plain.tls && typeof plain.tls === 'object') plain.tls = true;
  } else if (typeof options.duplicate === 'function' && options.options && typeof options.options === 'object') {
    plain = {};
    for (const key of CONNECTION_FIELDS) {
      if (options.options[key] !== undefined) plain[key] = options.options[key];
    }
    if (plain.tls && typeof plain.tls === 'object') plain.tls = true;
  }
  try {
    return JSON.stringify(plain);
  } catch (err) {
    throw invalid(name, `is not serialisable (${err.message})`);
  }
}

/** Set the process-wide default connection, before first use. */
function configure(options) {
  callSync(() => binding.configure(serializeConnection(options, 'configure')));
}

/**
 * Open (or reuse) the connection pair for these options (default: configure(), else the
 * environment) and resolve once both sockets are up. Rejects with the last connection error
 * after `timeoutMs` (default 30000).
 */
function connect(options, timeoutMs) {
  let json;
  try {
    json = serializeConnection(options);
  } catch (err) {
    return Promise.reject(err);
  }
  return callAsync(() => binding.connect(json, timeoutMs));
}

/** Synchronous snapshot of the connection pairs (and, later, the workers) of this process. */
function health() {
  return callSync(() => binding.health());
}

// Every Worker of this process that has not closed yet (lib/worker.js adds and removes them).
// shutdown() closes them through the facade, not only natively: the facade's close is what
// releases the keep-alive handle and emits 'closed'.
const liveWorkers = new Set();

/** Close every worker gracefully, then the connections. Idempotent. */
async function shutdown() {
  const closing = await Promise.allSettled([...liveWorkers].map((w) => w.close()));
  await callAsync(() => binding.shutdown());
  const failed = closing.find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;
}

const CONNECTION_EVENTS = new Set(['ready', 'reconnecting', 'error', 'end', 'warning']);
const connectionEvents = new EventEmitter();
// The native dispatcher's id while one is registered: only while someone listens, so that a
// process with no listener left holds no callback of ours.
let dispatcherId = null;

function dispatchConnectionEvent(json) {
  let info;
  try {
    info = JSON.parse(json);
  } catch {
    return;
  }
  const { event, ...rest } = info;
  const payload =
    event === 'error' ? new QueueNativeError(rest.code, rest.message, { endpoint: rest.endpoint, connection: rest.connection }) : rest;
  if (event === 'error' && connectionEvents.listenerCount('error') === 0) return;
  try {
    connectionEvents.emit(event, payload);
  } catch (err) {
    // A throwing listener behaves as with any EventEmitter: an uncaught exception.
    process.nextTick(() => {
      throw err;
    });
  }
}

/** Listen to connection events: 'ready' | 'reconnecting' | 'error' | 'end' | 'warning'. */
function onConnection(event, listener) {
  if (!CONNECTION_EVENTS.has(event)) {
    throw invalid('event', `must be one of ${[...CONNECTION_EVENTS].join(', ')}`);
  }
  if (typeof listener !== 'function') throw invalid('listener', 'must be a function');
  if (dispatcherId === null) dispatcherId = binding.onConnectionEvent(dispatchConnectionEvent);
  connectionEvents.on(event, listener);
}

function offConnection(event, listener) {
  connectionEvents.off(event, listener);
  const left = [...CONNECTION_EVENTS].reduce((n, e) => n + connectionEvents.listenerCount(e), 0);
  if (dispatcherId !== null && left === 0) {
    binding.offConnectionEvent(dispatcherId);
    dispatcherId = null;
  }
}

/** Diagnostics: run one command on the shared command connection (e.g. CLIENT LIST). */
function command(args, options) {
  if (!Array.isArray(args) || args.length === 0) {
    return Promise.reject(invalid('args', 'must be a non-empty array of strings'));
  }
  let json;
  try {
    json = serializeConnection(options);
  } catch (err) {
    return Promise.reject(err);
  }
  return callAsync(() => binding.rawCommand(json, args.map(String)));
}

module.exports = {
  configure,
  connect,
  health,
  shutdown,
  onConnection,
  offConnection,
  command,
  serializeConnection,
  liveWorkers,
};
