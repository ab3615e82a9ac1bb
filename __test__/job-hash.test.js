'use strict';
// A job whose hash lacks fields that every add writes (here `timestamp`: written by hand, by an
// old producer, or half-restored) still exists, so it must reach a final state, as BullMQ's
// worker brings it to one (issue 11, defect 5). Each case runs the same data through
// BullMQ's worker and ours.
const qn = require('..');
const { waitFor } = require('./helpers/redis-server');
const { useRedis } = require('./helpers/suite');
const { bullmq, uniqueQueue, connectionFor } = require('./helpers/bull');

const { redis, inspect, closers } = useRedis();

// A waiting job without `timestamp` (and, when asked, already past its stall limit).
async function seed(name, { extra = {} } = {}) {
  const q = new bullmq[6].Queue(name, { connection: connectionFor(redis) });
  closers.push(() => q.close());
  await q.add('bare', { v: 1 }, { jobId: 'bare', attempts: 1 });
  const key = `bull:${name}:bare`;
  await inspect.hdel(key, 'timestamp');
  for (const [k, v] of Object.entries(extra)) await inspect.hset(key, k, v);
  expect(await inspect.hexists(key, 'timestamp')).toBe(0);
  return q;
}

async function runWith(kind, name, processor) {
  if (kind === 'bullmq') {
    const w = new bullmq[6].Worker(name, processor, { connection: connectionFor(redis) });
    w.on('error', () => {});
    closers.push(() => w.close());
  } else {
    const w = new qn.Worker(name, processor);
    w.on('error', () => {});
    closers.push(() => w.close());
  }
}

async function finalState(q) {
  return waitFor(
    async () => {
      const state = await q.getJobState('bare');
      return state === 'completed' || state === 'failed' ? state : null;
    },
    { timeout: 8000, what: 'the job to reach a final state' },
  );
}

const cases = [
  { what: 'completes', processor: async () => 'done', extra: {} },
  {
    what: 'fails',
    processor: async () => {
      throw new Error('boom');
    },
    extra: {},
  },
  // Past maxStalledCount: the stalled check set `defa`, the next worker must fail it.
  { what: 'fails as stalled too often', processor: async () => 'never', extra: { defa: 'job stalled more than allowable limit', stc: '2' } },
];

describe.each(cases)('a job hash without timestamp $what', ({ processor, extra }) => {
  test('as with BullMQ', async () => {
    const results = {};
    for (const kind of ['bullmq', 'ours']) {
      const name = uniqueQueue(`bare-${kind}`);
      const q = await seed(name, { extra });
      await runWith(kind, name, processor);
      const state = await finalState(q);
      const job = await q.getJob('bare');
      results[kind] = { state, returnvalue: job.returnvalue, failedReason: job.failedReason || undefined, active: await q.getActiveCount() };
    }
    expect(results.ours).toEqual(results.bullmq);
    expect(results.ours.active).toBe(0);
  });
});
