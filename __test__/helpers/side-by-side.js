'use strict';
// Side-by-side runs for the surface specs: the same data is set up under two prefixes by
// BullMQ's own classes, the same calls run through BullMQ's classes on one and ours on the
// other, and the results and the Redis state left behind must be equal.

const qn = require('../..');
const { bullmq, uniqueQueue, connectionFor } = require('./bull');
const { snapshot } = require('./snapshot');

let seq = 0;
const uniquePrefix = (tag) => `${tag}${++seq}x${process.pid}`;

/** What a call gave: its value, or the message of what it threw. */
async function step(fn) {
  try {
    const v = await fn();
    return v === undefined ? '<undefined>' : v;
  } catch (err) {
    return { error: err.message };
  }
}

// `env` is read lazily (its redis / inspect are set in beforeAll).
function sideBySide(env) {
  const closers = env.closers;
  const bullQueue = (name, opts = {}) => {
    const q = new bullmq[6].Queue(name, { connection: connectionFor(env.redis), ...opts });
    q.on('error', () => {});
    closers.push(() => q.close());
    return q;
  };

  const manualWorker = (name, prefix) => {
    const w = new bullmq[6].Worker(name, null, {
      connection: connectionFor(env.redis),
      prefix,
      autorun: false,
      skipStalledCheck: true,
      skipLockRenewal: true,
    });
    w.on('error', () => {});
    closers.push(() => w.close());
    return w;
  };

  const flowProducer = (prefix) => {
    const f = new bullmq[6].FlowProducer({ connection: connectionFor(env.redis), prefix });
    f.on('error', () => {});
    closers.push(() => f.close());
    return f;
  };

  /** Snapshot without the parts two runs at different moments cannot share. */
  const comparable = async (prefix) => {
    const s = await snapshot(env.inspect, prefix);
    for (const [rel, entry] of Object.entries(s)) {
      if (entry.type === 'stream') for (const e of entry.value) if (e.event === 'delayed') e.delay = '<due>';
      if (entry.type === 'hash' && entry.value.delay && /^\d{13}$/.test(entry.value.delay)) entry.value.delay = '<ts>';
      if (rel.endsWith(':limiter')) entry.value = '<limiter>';
      // Scored by the ms each parent moved there: which of two parents a run put first depends on
      // the clock, not on the implementation.
      if (rel.endsWith(':waiting-children') && entry.type === 'zset' && entry.value.every((m) => typeof m === 'string')) {
        entry.value = [...entry.value].sort();
      }
    }
    return s;
  };

  /**
   * Set the same data up under two prefixes with BullMQ (`setup`), run `act` with BullMQ's
   * Job/Queue on one and ours on the other; results and Redis state (through `normalise`, for
   * what a run at another moment cannot share) must be equal. Returns BullMQ's results.
   */
  const compare = async (setup, act, normalise = (x) => x) => {
    const name = uniqueQueue('sbs');
    const sides = {};
    for (const side of ['bull', 'ours']) {
      const prefix = uniquePrefix(side);
      const producer = bullQueue(name, { prefix });
      await producer.waitUntilReady();
      sides[side] = { prefix, producer, ctx: await setup({ producer, prefix, name }) };
    }
    const ourQueue = new qn.Queue(name, { prefix: sides.ours.prefix });
    ourQueue.on('error', () => {});
    closers.push(() => ourQueue.close());
    const results = {};
    for (const side of ['bull', 'ours']) {
      const api =
        side === 'bull' ? { Job: bullmq[6].Job, queue: sides.bull.producer } : { Job: qn.Job, queue: ourQueue };
      const raw = await act({ ...api, ctx: sides[side].ctx, prefix: sides[side].prefix, name, side });
      results[side] = JSON.parse(JSON.stringify(raw).split(`${sides[side].prefix}:`).join('<prefix>:'));
    }
    expect(results.ours).toEqual(results.bull);
    expect(normalise(await comparable(sides.ours.prefix))).toEqual(normalise(await comparable(sides.bull.prefix)));
    return results.bull;
  };

  return { bullQueue, manualWorker, flowProducer, comparable, compare };
}

module.exports = { sideBySide, step, uniquePrefix };
