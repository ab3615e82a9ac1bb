'use strict';
// The jest set-up the spec files share. `useRedis()`, called at the top of a spec file (or of a
// describe block), registers the hooks:
//   beforeAll  starts a private redis-server (scripts/redis-harness.js), opens an inspection
//              client on it and points the addon's default connection at it;
//   afterEach  closes, newest first, whatever the test registered in `closers`;
//   afterAll   shuts the addon's pair down and stops the server.
// It returns what the specs build on. `redis` and `inspect` exist from the start, so a spec
// can destructure them at load time: `redis.port` is set, and `inspect` answers, once
// beforeAll has run.

const { RedisServer, waitFor } = require('./redis-server');
const { bullmq, connectionFor } = require('./bull');

/**
 * A stand-in for an object made later (in beforeAll): every property read goes to the real
 * one, methods bound to it. Lets `const { inspect } = useRedis()` sit at the top of a file.
 */
function lateBound(get, what) {
  return new Proxy(
    {},
    {
      get(_, key) {
        const target = get();
        if (!target) throw new Error(`${what} is used before beforeAll started the suite's redis-server`);
        const value = target[key];
        return typeof value === 'function' ? value.bind(target) : value;
      },
    },
  );
}

const noop = () => {};

/**
 * @param {object} [opts]
 * @param {boolean} [opts.addon=true] configure the addon's default connection at the private
 *   server in beforeAll and shut the addon down in afterAll; false leaves the addon alone
 *   (never loaded by this helper)
 * @param {boolean} [opts.configure=opts.addon] only the beforeAll configure() part
 * @param {object} [opts.server] RedisServer options ({ password, persistence, dir, args })
 */
function useRedis({ addon = true, configure = addon, server = {} } = {}) {
  const qn = addon ? require('../..') : null;
  const redis = new RedisServer(server);
  let client = null;
  const inspect = lateBound(() => client, 'inspect');
  /** ioredis/BullMQ connection options for the private server (port filled in by beforeAll). */
  const connection = { host: '127.0.0.1', port: undefined, maxRetriesPerRequest: null };
  /** Functions run (newest first) after each test: push a close() here for each thing a test opens. */
  const closers = [];

  beforeAll(async () => {
    await redis.start();
    connection.port = redis.port;
    client = redis.client();
    if (configure) qn.configure({ port: redis.port, password: redis.password });
  });

  afterEach(async () => {
    while (closers.length) await closers.pop()();
  });

  afterAll(async () => {
    if (qn) await qn.shutdown();
    await redis.stop();
  });

  /** Close `thing` after the test; errors it emits are the test's to assert on, not to crash jest. */
  function track(thing) {
    if (typeof thing.on === 'function') thing.on('error', noop);
    closers.push(() => thing.close());
    return thing;
  }

  return {
    redis,
    inspect,
    connection,
    closers,
    track,
    /** Our Queue on the addon's default connection. */
    ourQueue: (name, opts = {}) => track(new qn.Queue(name, opts)),
    /** Our Worker on the addon's default connection. */
    ourWorker: (name, processor, opts = {}) => track(new qn.Worker(name, processor, opts)),
    /** BullMQ's (major 5 or 6) Queue on the private server; opts may override the connection. */
    bullQueue: (major, name, opts = {}) => track(new bullmq[major].Queue(name, { connection: connectionFor(redis), ...opts })),
    /** BullMQ's (major 5 or 6) Worker on the private server. */
    bullWorker: (major, name, processor, opts = {}) =>
      track(new bullmq[major].Worker(name, processor, { connection: connectionFor(redis), ...opts })),
    /** Resolves once `queue` counts at least `n` completed + failed jobs. */
    finished: async (queue, n, timeout = 15000) => {
      await waitFor(
        async () => {
          const c = await queue.getJobCounts('completed', 'failed');
          return c.completed + c.failed >= n;
        },
        { timeout, what: `${n} jobs to finish` },
      );
    },
    /** The entries of a stream (a queue's events) as objects, oldest first. */
    streamEntries: async (key) => (await inspect.xrange(key, '-', '+')).map(([, flat]) => flatToObject(flat)),
  };
}

/** Redis's flat [field, value, field, value, ...] replies as an object. */
function flatToObject(flat) {
  const o = {};
  for (let i = 0; i < flat.length; i += 2) o[flat[i]] = flat[i + 1];
  return o;
}

module.exports = { useRedis, flatToObject };
