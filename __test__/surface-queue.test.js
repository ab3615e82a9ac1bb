'use strict';
// Queue methods beyond add/get (getJobState, toKey, remove, obliterate, retryJobs,
// promoteJobs, trimEvents, deduplication keys, rate limits, global concurrency and rate limit,
// getMeta, getVersion, getCountsPerPriority) against BullMQ's Queue on the same data: same
// results, same Redis state.
const qn = require('..');
const { useRedis } = require('./helpers/suite');
const { sideBySide, step } = require('./helpers/side-by-side');

const { redis, inspect, closers } = useRedis();

const { manualWorker, flowProducer, compare } = sideBySide({ redis, inspect, closers });

/** Jobs in every state: 2 completed, 2 failed, 1 active, waiting, delayed, prioritized. */
async function everyState({ producer, prefix, name }) {
  for (const id of ['c1', 'c2', 'f1', 'f2', 'a1']) await producer.add(id, { id }, { jobId: id });
  const w = manualWorker(name, prefix);
  for (const id of ['c1', 'c2']) await (await w.getNextJob('t', { block: false })).moveToCompleted(`${id}!`, 't', false);
  for (const id of ['f1', 'f2']) await (await w.getNextJob('t', { block: false })).moveToFailed(new Error(`${id} broke`), 't', false);
  await w.getNextJob('t-active', { block: false });
  await producer.add('w1', {}, { jobId: 'w1' });
  await producer.add('w2', {}, { jobId: 'w2' });
  await producer.add('d1', {}, { jobId: 'd1', delay: 60000 });
  await producer.add('d2', {}, { jobId: 'd2', delay: 120000 });
  await producer.add('p1', {}, { jobId: 'p1', priority: 2 });
  await producer.add('p2', {}, { jobId: 'p2', priority: 2 });
  await producer.add('p3', {}, { jobId: 'p3', priority: 9 });
}

test('toKey, getJobState, getCountsPerPriority, queue.remove', async () => {
  await compare(everyState, async ({ queue }) => {
    const out = { key: queue.toKey('wait').replace(/^[^:]+:/, '<prefix>:') };
    for (const id of ['c1', 'f1', 'a1', 'w1', 'd1', 'p1', 'none']) out[id] = await queue.getJobState(id);
    out.perPriority = await queue.getCountsPerPriority([0, 2, 9, 2, 5]);
    out.remove = [await step(() => queue.remove('w1')), await step(() => queue.remove('a1')), await step(() => queue.remove('p3'))];
    out.after = await queue.getCountsPerPriority([0, 9]);
    return out;
  });
});

test('retryJobs (failed, completed, timestamp, count) and promoteJobs', async () => {
  const results = await compare(everyState, async ({ queue }) => {
    const out = {};
    await queue.retryJobs({ state: 'failed', timestamp: 1 }); // nothing finished before 1 ms
    out.none = await queue.getJobCounts('failed', 'wait');
    await queue.retryJobs({ count: 1 });
    out.failed = await queue.getJobCounts('failed', 'wait');
    await queue.retryJobs({ state: 'completed' });
    out.completed = await queue.getJobCounts('completed', 'wait');
    await queue.promoteJobs({ count: 1 });
    out.promoted = await queue.getJobCounts('delayed', 'wait');
    return out;
  });
  expect(results.promoted).toEqual({ delayed: 0, wait: 8 });
});

test('obliterate: refuses active jobs without force, leaves nothing with force (in small rounds)', async () => {
  const results = await compare(
    async (ctx) => {
      await everyState(ctx);
      const node = (id, children) => ({ name: id, queueName: ctx.name, data: {}, opts: { jobId: id }, children });
      await flowProducer(ctx.prefix).add(node('P', [node('k1', [node('gk')])]));
      await ctx.producer.add('dd', {}, { jobId: 'dd', deduplication: { id: 'x' } });
      await ctx.producer.upsertJobScheduler('every-minute', { every: 60000 }, { name: 'tick' });
    },
    async ({ queue }) => [await step(() => queue.obliterate()), await step(() => queue.obliterate({ force: true, count: 3 }))],
  );
  expect(results[0].error).toBe('Cannot obliterate queue with active jobs');
});

test('trimEvents, deduplication ids, rate limits, global concurrency and rate limit, getMeta, getVersion', async () => {
  const results = await compare(
    async ({ producer }) => {
      for (let i = 0; i < 30; i++) await producer.add(`j${i}`, {}, { jobId: `j${i}` });
      await producer.add('dd', {}, { jobId: 'dd', deduplication: { id: 'k' } });
    },
    async ({ queue }) => {
      const out = {};
      out.trim = await queue.trimEvents(0);
      out.dedup = [await queue.getDeduplicationJobId('k'), await queue.getDeduplicationJobId('none')];
      out.removeDedup = [await queue.removeDeduplicationKey('k'), await queue.removeDeduplicationKey('k')];
      out.ttl0 = await queue.getRateLimitTtl();
      await queue.rateLimit(60000);
      const ttl = await queue.getRateLimitTtl(1);
      out.ttlLimited = ttl > 55000 && ttl <= 60000;
      out.removeLimiter = [await queue.removeRateLimitKey(), await queue.removeRateLimitKey()];
      out.concurrency = [await queue.getGlobalConcurrency(), await queue.setGlobalConcurrency(4), await queue.getGlobalConcurrency()];
      out.rate = [await queue.getGlobalRateLimit(), await queue.setGlobalRateLimit(10, 1000), await queue.getGlobalRateLimit()];
      out.meta = await queue.getMeta();
      out.version = await queue.getVersion();
      out.removed = [await queue.removeGlobalConcurrency(), await queue.removeGlobalRateLimit()];
      out.metaAfter = await queue.getMeta();
      return out;
    },
  );
  expect(results.ttlLimited).toBe(true);
  expect(results.meta).toMatchObject({ concurrency: 4, max: 10, duration: 1000, paused: false });
  expect(results.version).toMatch(/^bullmq:6/);
});

test('removeOrphanedJobs deletes job keys no state references, and nothing else', async () => {
  const results = await compare(
    async (ctx) => {
      await everyState(ctx);
      const base = `${ctx.prefix}:${ctx.name}:`;
      await inspect.hset(`${base}orphan1`, 'name', 'o', 'data', '{}');
      await inspect.rpush(`${base}orphan1:logs`, 'x');
      await inspect.rpush(`${base}orphan2:logs`, 'only logs');
      await inspect.set(`${base}orphan3:lock`, 'tok');
      await inspect.set(`${base}de:kept`, 'w1');
    },
    async ({ queue }) => [await queue.removeOrphanedJobs(), await queue.removeOrphanedJobs(), await queue.getJobCounts()],
  );
  expect(results[0]).toBe(3);
  expect(results[1]).toBe(0);
});
