'use strict';
// CLIENT KILL storms on both sockets of a worker process while jobs arrive in bursts (so the
// worker alternates between fetching with its command socket and waiting on its blocking
// socket). Every job must reach a final state, once. Kills this frequent keep a socket's
// reconnect backoff growing (up to its 2 s cap), so locks are longer than that: a job whose
// lock expires while its result waits for a connection may run again, which is lock expiry's
// doing, not what this scenario measures.
const { startRedis, parseClientList } = require('../helpers/redis-server');
const { bullmq } = require('../helpers/bull');
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

// One kill of a worker socket: the one waiting in BZPOPMIN, or one that is not (polled for up
// to 300 ms: the worker blocks only between bursts, and reconnects after each kill).
async function killOne(spared, blocking) {
  for (let tries = 0; tries < 30; tries++) {
    const theirs = parseClientList(await inspect.call('CLIENT', 'LIST')).filter((c) => !spared.has(c.id));
    const target = theirs.find((c) => (c.cmd === 'bzpopmin') === blocking);
    if (target && (await inspect.call('CLIENT', 'KILL', 'ID', target.id)) === 1) return true;
    await h.sleep(10);
  }
  return false;
}

test.each(h.IMPLS)('%s: kills on both sockets while jobs arrive in bursts: 0 lost, 0 duplicates', async (impl) => {
  const queue = h.uniqueQueue(`kill-storm-${impl}`);
  const producer = new bullmq[6].Queue(queue, { connection: { host: '127.0.0.1', port: redis.port, maxRetriesPerRequest: null } });
  try {
    await producer.getWaitingCount();
    // Every socket already open (this test's, the producer's) is spared; the worker's are not.
    const spared = new Set(parseClientList(await inspect.call('CLIENT', 'LIST')).map((c) => c.id));
    const w = await h.startWorker(redis, queue, { impl, concurrency: 5, jobMs: 5, lockDuration: 5000, stalledInterval: 1000 });
    const RUN_MS = 4000;
    const PER = 25;
    const until = Date.now() + RUN_MS;
    let N = 0;
    const produce = (async () => {
      while (Date.now() < until) {
        const jobs = Array.from({ length: PER }, (_, k) => ({ name: 'f', data: { i: N + k }, opts: { jobId: `j${N + k}` } }));
        N += PER;
        await producer.addBulk(jobs);
        await h.sleep(150);
      }
    })();
    const kills = { blocking: 0, command: 0 };
    for (let k = 0; Date.now() < until; k++) {
      const blocking = k % 2 === 0;
      if (await killOne(spared, blocking)) kills[blocking ? 'blocking' : 'command'] += 1;
      await h.sleep(100);
    }
    await produce;
    const done = await h.waitFinished(inspect, queue, N, 30000);
    await w.stop();
    const ex = h.executions([w.log]);
    h.record('client-kill-storm', impl, { jobs: N, kills, lost: N - done, duplicates: ex.duplicates });
    await h.explain([w], async () => {
      // BullMQ's worker (FAULTS_COMPARE) reconnects slowly enough that fewer kills land: its
      // figures are measured, not required.
      if (impl === 'ours') {
        expect(kills.blocking).toBeGreaterThanOrEqual(3);
        expect(kills.command).toBeGreaterThanOrEqual(5);
      }
      expect(N - done).toBe(0);
      expect(ex.count.size).toBe(N);
      expect(ex.duplicates).toBe(0);
      expect(await inspect.llen(`bull:${queue}:active`)).toBe(0);
    });
  } finally {
    await producer.close();
  }
});
