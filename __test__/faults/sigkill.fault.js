'use strict';
// SIGKILL of a worker process mid-batch: its in-flight jobs keep their locks until they
// expire, then the stalled check of the next worker runs them again. Nothing is lost; only
// the jobs that were in flight at the kill may run twice.
const { startRedis } = require('../helpers/redis-server');
const h = require('./harness');

let redis;
let inspect;
beforeAll(async () => {
  redis = await startRedis();
  inspect = redis.client();
});
afterAll(async () => {
  await h.cleanup();
  await redis.stop();
});

test.each(h.IMPLS)('%s: SIGKILL mid-batch loses nothing; duplicates <= jobs in flight', async (impl) => {
  const N = 1500;
  const queue = h.uniqueQueue(`kill-${impl}`);
  await h.seed(redis, queue, N);
  const opts = { impl, concurrency: 10, jobMs: 5, lockDuration: 1500, stalledInterval: 500 };
  const first = await h.startWorker(redis, queue, opts);
  await h.waitFor(async () => (await h.finishedCount(inspect, queue)) >= N / 4, { timeout: 30000, what: 'a quarter of the batch' });
  await first.kill('SIGKILL');
  const killedAt = Date.now();
  const inFlight = h.executions([first.log]).unfinished[0].size;
  const second = await h.startWorker(redis, queue, opts);
  const done = await h.waitFinished(inspect, queue, N, 40000);
  const resumedIn = Date.now() - killedAt;
  await second.stop();
  const ex = h.executions([first.log, second.log]);
  h.record('sigkill', impl, { jobs: N, lost: N - done, inFlight, duplicates: ex.duplicates, finishedInMs: resumedIn });
  expect(N - done).toBe(0);
  expect(ex.count.size).toBe(N);
  expect(inFlight).toBeGreaterThan(0);
  expect(ex.duplicates).toBeLessThanOrEqual(inFlight);
  // Every job ran exactly once except those in flight at the kill.
  for (const [id, n] of ex.count) if (n > 1) expect(ex.unfinished[0].has(id)).toBe(true);
  expect(await inspect.llen(`bull:${queue}:active`)).toBe(0);
  expect(second.exit.code).toBe(0);
});
