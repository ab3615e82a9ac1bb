'use strict';
// The hand-written facade over the generated binding (binding.js). It owns everything that is
// JavaScript-shaped: error classes, EventEmitter plumbing, option serialisation. The binding
// only ever sees plain strings and numbers.

const { EventEmitter } = require('events');
const binding = require('./binding.js');

/** Every error the library raises: `code` is stable and documented in the README. */
class QueueNativeError extends Error {
  constructor(code, message, extra) {
    super(message);
    this.name = 'QueueNativeError';
    this.code = code;
    if (extra) Object.assign(this, extra);
  }
}

/** Thrown by a processor: fail the job now, no retries (BullMQ's class of the same name). */
class UnrecoverableError extends Error {
  constructor(message) {
    super(message);
    this.name = 'UnrecoverableError';
  }
}

/** Thrown by a processor after it moved its job with `job.moveToDelayed()`. */
class DelayedError extends Error {
  constructor(message = 'bullmq:movedToDelayed') {
    super(message);
    this.name = 'DelayedError';
  }
}

const CODED = /^(ERR_[A-Z0-9_]+): ([\s\S]*)$/;

// The binding reports engine errors as "CODE: message"; this is the one place that turns
// them into QueueNativeErrors.
function fromBinding(err) {
  if (err instanceof QueueNativeError) return err;
  const match = err && typeof err.message === 'string' ? CODED.exec(err.message) : null;
  return match ? new QueueNativeError(match[1], match[2]) : err;
}

function callSync(fn) {
  try {
    return fn();
  } catch (err) {
    throw fromBinding(err);
  }
}

async function callAsync(fn) {
  try {
    return await fn();
  } catch (err) {
    throw fromBinding(err);
  }
}

function invalid(option, reason) {
  return new QueueNativeError('ERR_INVALID_OPTION', `invalid option \`${option}\`: ${reason}`);
}

const CONNECTION_FIELDS = ['url', 'host', 'port', 'username', 'password', 'db', 'tls'];

// Connection options become JSON for the engine, which validates them. Functions (an ioredis
// retryStrategy, say) are dropped by JSON; an ioredis client instance is read for its options,
// so `connection: redisClient` from BullMQ code keeps working (without its socket).
function serializeConnection(options, name = 'connection') {
  if (options === undefined || options === null) return null;
  if (typeof options !== 'object' || Array.isArray(options)) {
    throw invalid(name, 'must be an object');
  }
  let plain = options;
  if (typeof options.duplicate === 'function' && options.options && typeof options.options === 'object') {
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
  const snapshot = callSync(() => binding.health());
  if (!Array.isArray(snapshot.workers)) snapshot.workers = [];
  return snapshot;
}

/** Close every worker gracefully, then the connections. Idempotent. */
function shutdown() {
  return callAsync(() => binding.shutdown());
}

const CONNECTION_EVENTS = new Set(['ready', 'reconnecting', 'error', 'end', 'warning']);
const connectionEvents = new EventEmitter();
let dispatcherInstalled = false;

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
  if (!dispatcherInstalled) {
    binding.onConnectionEvent(dispatchConnectionEvent);
    dispatcherInstalled = true;
  }
  connectionEvents.on(event, listener);
}

function offConnection(event, listener) {
  connectionEvents.off(event, listener);
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
  QueueNativeError,
  UnrecoverableError,
  DelayedError,
};
