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
  // In flight = taken and not finished in Redis: started in the processor, or finished there
  // but with the outcome not yet written (or fetched, not yet handed over).
  const active = new Set(await inspect.lrange(`bull:${queue}:active`, 0, -1));
  const inFlight = active.size;
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
  for (const [id, n] of ex.count) if (n > 1) expect(active.has(id)).toBe(true);
  expect(await inspect.llen(`bull:${queue}:active`)).toBe(0);
  expect(second.exit.code).toBe(0);
});
