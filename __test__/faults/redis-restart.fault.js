'use strict';
// Redis restarts (SIGKILL, then a new server on the same port and AOF, fsync always) while a
// worker process runs a batch. Every acknowledged write survives, so nothing may be lost and,
// with locks longer than the outage, nothing may run twice; the worker resumes by itself
// within 2 s of Redis being ready each time. (Jobs that a finishing call fetched just before
// the kill, whose reply never arrived, wait in active until their lock expires: delayed by
// lockDuration + stalledInterval, not run twice.)
//
// Even a small AOF makes the new server answer LOADING for a few ms after it accepts
// connections: a call that meets it must wait and retry (issue 11, defect 3).
const { startRedis } = require('../helpers/redis-server');
const h = require('./harness');

let redis;
let inspect;
beforeAll(async () => {
  redis = await startRedis({ args: ['--appendonly', 'yes', '--appendfsync', 'always'] });
  inspect = redis.client();
});
afterAll(async () => {
  await h.cleanup();
  await redis.stop();
});

describe.each(h.IMPLS)('%s: 3 restarts during a run', (impl) => {
  const N = 3000; // paced (about 500 jobs/s at most) so that each restart falls mid-run
  const run = {};
  beforeAll(async () => {
    const queue = h.uniqueQueue(`restart-${impl}`);
    await h.seed(redis, queue, N);
    const w = await h.startWorker(redis, queue, { impl, concurrency: 5, jobMs: 10, lockDuration: 3000, stalledInterval: 1000 });
    run.worker = w;
    run.resumed = [];
    for (let r = 1; r <= 3; r++) {
      await h.waitFor(async () => (await h.finishedCount(inspect, queue)) >= (r * N) / 5, { timeout: 30000, interval: 50, what: `${r}/5 of the batch` });
      await redis.restart();
      const ready = Date.now();
      const before = await h.finishedCount(inspect, queue);
      await h.waitFor(async () => (await h.finishedCount(inspect, queue)) > before, { timeout: 15000, interval: 20, what: `progress after restart ${r}` }).catch(() => {});
      run.resumed.push(Date.now() - ready);
    }
    run.done = await h.waitFinished(inspect, queue, N, 30000);
    run.activeLeft = await inspect.llen(`bull:${queue}:active`);
    await w.stop();
    run.ex = h.executions([w.log]);
    h.record('redis-restart', impl, { jobs: N, restarts: 3, lost: N - run.done, duplicates: run.ex.duplicates, resumedMs: run.resumed });
  }, 120000);

  test('nothing lost, every job final, resumed within 2 s of each restart', () => {
    expect(N - run.done).toBe(0);
    expect(run.ex.count.size).toBe(N);
    expect(run.activeLeft).toBe(0);
    for (const ms of run.resumed) expect(ms).toBeLessThan(2000);
    expect(run.worker.exit.code).toBe(0);
  });

  // Defect 3: a finishing call that meets LOADING fails instead of waiting; the job stays
  // active and runs again after its lock expires.
  test.skip('defect 3: nothing runs twice (LOADING is waited out and the same call retried)', () =>
    h.explain([run.worker], () => expect(run.ex.duplicates).toBe(0)));
});
