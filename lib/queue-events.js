'use strict';
// QueueEvents: BullMQ's global events of a queue (the `<prefix>:<queue>:events` stream), with
// its event names and arguments. Unlike BullMQ's, an instance opens no socket of its own:
// every QueueEvents of the process is one subscription of the process-wide events reader
// (src/engine/events_reader.rs), which serves them all with one XREAD BLOCK on a third socket
// that is open only while at least one QueueEvents runs.

const { EventEmitter } = require('events');
const binding = require('../binding.js');
const { QueueNativeError, callSync, callAsync, invalid } = require('./errors');
const connection = require('./connection');

// Field values BullMQ's QueueEvents parses before emitting.
function parseFields(flat) {
  const args = {};
  for (let i = 0; i + 1 < flat.length; i += 2) args[flat[i]] = flat[i + 1];
  switch (args.event) {
    case 'progress':
      args.data = parseJson(args.data);
      break;
    case 'completed':
      args.returnvalue = parseJson(args.returnvalue);
      break;
    case 'delayed':
      args.delay = Number(args.delay);
      break;
    default:
  }
  return args;
}

function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** A queue name and an options object, as both classes below take them. */
function checkArgs(name, opts) {
  if (typeof name !== 'string' || name.length === 0) throw invalid('name', 'must be a non-empty string');
  if (name.includes(':')) throw invalid('name', `\`${name}\` contains ':' (BullMQ queue names cannot)`);
  if (opts === null || typeof opts !== 'object') throw invalid('opts', 'must be an object');
}

class QueueEvents extends EventEmitter {
  constructor(name, opts = {}) {
    super();
    checkArgs(name, opts);
    const { autorun = true, ...rest } = opts;
    this.name = name;
    this.opts = { blockingTimeout: 10000, ...rest };
    const bt = this.opts.blockingTimeout;
    if (typeof bt !== 'number' || !(bt > 0)) throw invalid('blockingTimeout', 'must be a positive number of ms');
    const lastEventId = this.opts.lastEventId;
    if (lastEventId !== undefined && lastEventId !== null && typeof lastEventId !== 'string') {
      throw invalid('lastEventId', 'must be a stream id string');
    }
    this.prefix = this.opts.prefix ?? 'bull';
    this.qualifiedName = `${this.prefix}:${name}`;
    this.running = false;
    this.closing = undefined;
    this.closed = false;
    const connectionJson = connection.serializeConnection(this.opts.connection);
    this._connectionJson = connectionJson;
    this._native = callSync(() => new binding.NativeQueueEvents(name, this.prefix, connectionJson));
    this._subscribed = null;
    this._stopped = null;
    this._resolveStopped = null;
    if (autorun) {
      this.run().catch((err) => this.emit('error', err));
    }
  }

  /** `<prefix>:<queue>:<type>`, BullMQ's key of a queue part. */
  toKey(type) {
    return `${this.qualifiedName}:${type}`;
  }

  /**
   * Start consuming (only needed with autorun: false). Resolves when this QueueEvents has
   * been closed, as BullMQ's does; rejects if it is already running.
   */
  run() {
    if (this.running) return Promise.reject(new Error('Queue Events is already running.'));
    if (this.closing) return Promise.resolve();
    this.running = true;
    this._stopped = new Promise((resolve) => {
      this._resolveStopped = resolve;
    });
    this._subscribed = callAsync(() =>
      this._native.subscribe((json) => this._onBatch(json), this.opts.lastEventId ?? null, this.opts.blockingTimeout),
    );
    return this._subscribed.then(
      () => this._stopped,
      (err) => {
        this.running = false;
        this._resolveStopped();
        throw err;
      },
    );
  }

  /**
   * Resolves once the shared connection is up and, if running, once every event written
   * from now on is sure to be delivered.
   */
  async waitUntilReady() {
    await connection.connect(this.opts.connection);
    if (this._subscribed) await this._subscribed;
  }

  /** Stop consuming; the events socket closes when no other QueueEvents runs. Idempotent. */
  close() {
    if (!this.closing) {
      this.emit('closing', 'closing queue events');
      this.closing = (async () => {
        try {
          if (this._subscribed) await this._subscribed.catch(() => {});
          await callAsync(() => this._native.close());
        } finally {
          this.closed = true;
          this.running = false;
          if (this._resolveStopped) this._resolveStopped();
        }
      })();
    }
    return this.closing;
  }

  /** BullMQ's disconnect(): here the same as close() (there is no socket of our own). */
  disconnect() {
    return this.close();
  }

  emit(event, ...args) {
    // As BullMQ's QueueBase: a throwing listener becomes an 'error' event, and an 'error'
    // without listeners does not crash the process.
    if (event === 'error' && this.listenerCount('error') === 0) return false;
    try {
      return super.emit(event, ...args);
    } catch (err) {
      if (event === 'error' || this.listenerCount('error') === 0) return false;
      try {
        return super.emit('error', err);
      } catch (e) {
        console.error(e);
        return false;
      }
    }
  }

  _onBatch(json) {
    if (this.closing) return;
    let batch;
    try {
      batch = JSON.parse(json);
    } catch {
      return;
    }
    if (batch.error) {
      this.emit('error', new QueueNativeError(batch.error.code, batch.error.message));
      return;
    }
    for (const [id, flat] of batch.entries || []) {
      if (this.closing) return;
      const { event, ...rest } = parseFields(flat);
      if (event === 'drained') {
        this.emit(event, id);
      } else {
        this.emit(event, rest, id);
        if (rest.jobId) this.emit(`${event}:${rest.jobId}`, rest, id);
      }
    }
  }
}

/**
 * BullMQ's QueueEventsProducer: publishes custom events into a queue's events stream, which
 * every QueueEvents of the queue (ours or BullMQ's) hears as an event of that name. It opens
 * no socket: the event goes on the shared command connection.
 */
class QueueEventsProducer extends EventEmitter {
  constructor(name, opts = {}) {
    super();
    checkArgs(name, opts);
    this.name = name;
    this.opts = { ...opts };
    this.prefix = opts.prefix || 'bull';
    connection.serializeConnection(opts.connection);
  }

  /** The queue's events stream key. */
  get eventsKey() {
    return `${this.prefix}:${this.name}:events`;
  }

  waitUntilReady(timeoutMs = 30000) {
    return connection.connect(this.opts.connection, timeoutMs);
  }

  /**
   * Add `{ eventName, ...fields }` to the stream as event `eventName` with those fields
   * (values as text), the stream capped near `maxEvents` (default 1000), as BullMQ's does.
   */
  async publishEvent(argsObj, maxEvents = 1000) {
    if (argsObj === null || typeof argsObj !== 'object' || typeof argsObj.eventName !== 'string') {
      throw invalid('publishEvent', 'takes { eventName: string, ...fields }');
    }
    const { eventName, ...rest } = argsObj;
    const words = ['XADD', this.eventsKey, 'MAXLEN', '~', String(maxEvents), '*', 'event', eventName];
    for (const [key, value] of Object.entries(rest)) words.push(key, String(value));
    await connection.command(words, this.opts.connection);
  }

  /** Nothing of its own to close (the connection is the process's). */
  async close() {}
}

module.exports = { QueueEvents, QueueEventsProducer };
