'use strict';
// The server refuses the worker for a while: maxclients reached, then the password changed
// under it. Both are survived by retrying with capped backoff; the worker resumes by itself
// once the server takes it again, and health() and the worker's own state agree throughout.
const { startRedis, parseClientList } = require('../helpers/redis-server');
const h = require('./harness');

// Kill every client except the spared ones (this test's own): the worker must reconnect.
async function kickAll(inspect, spared) {
  for (const c of parseClientList(await inspect.call('CLIENT', 'LIST'))) {
    if (!spared.has(c.id)) await inspect.call('CLIENT', 'KILL', 'ID', c.id).catch(() => {});
  }
}

afterAll(() => h.cleanup());

async function scenario({ redis, inspect, impl, password, refuse, allow, tag }) {
  const N = 1000;
  const queue = h.uniqueQueue(`${tag}-${impl}`);
  await h.seed(redis, queue, N, { password });
  const spared = new Set(parseClientList(await inspect.call('CLIENT', 'LIST')).map((c) => c.id));
  const w = await h.startWorker(redis, queue, { impl, password, concurrency: 5, jobMs: 10, lockDuration: 10000, stalledInterval: 2000, healthEvery: 100 });
  await h.waitFor(async () => (await h.finishedCount(inspect, queue)) >= N / 4, { timeout: 30000, interval: 50, what: 'a quarter of the batch' });
  await refuse();
  await kickAll(inspect, spared);
  const refusedAt = Date.now();
  await h.sleep(2000);
  const stuckAt = await h.finishedCount(inspect, queue);
  await allow();
  const allowedAt = Date.now();
  await h.waitFor(async () => (await h.finishedCount(inspect, queue)) > stuckAt, { timeout: 15000, interval: 20, what: 'progress once allowed' }).catch(() => {});
  const resumedMs = Date.now() - allowedAt;
  const done = await h.waitFinished(inspect, queue, N, 30000);
  const activeLeft = await inspect.llen(`bull:${queue}:active`);
  await w.stop();
  const ex = h.executions([w.log]);
  h.record(tag, impl, { jobs: N, refusedMs: allowedAt - refusedAt, lost: N - done, duplicates: ex.duplicates, resumedMs });
  return { N, w, ex, done, activeLeft, resumedMs, refusedAt, allowedAt };
}

describe('maxclients reached while the worker reconnects', () => {
  let redis;
  let inspect;
  beforeAll(async () => {
    redis = await startRedis();
    inspect = redis.client();
  });
  afterAll(() => redis.stop());

  test.each(h.IMPLS)('%s: refused for 2 s, then resumes within 3 s; 0 lost, 0 duplicates', async (impl) => {
    let spare;
    const r = await scenario({
      redis,
      inspect,
      impl,
      tag: 'maxclients',
      // Room for the sockets open now minus the worker's: its reconnects are refused.
      refuse: async () => {
        spare = parseClientList(await inspect.call('CLIENT', 'LIST')).length;
        await inspect.call('CONFIG', 'SET', 'maxclients', String(Math.max(1, spare - 2)));
      },
      allow: () => inspect.call('CONFIG', 'SET', 'maxclients', '1000'),
    });
    await h.explain([r.w], async () => {
      expect(r.N - r.done).toBe(0);
      expect(r.ex.count.size).toBe(r.N);
      expect(r.ex.duplicates).toBe(0);
      expect(r.activeLeft).toBe(0);
      expect(r.resumedMs).toBeLessThan(3000);
      if (impl === 'ours') {
        expect(r.w.events.some((e) => e.ev === 'connection:error' && e.code === 'ERR_MAX_CLIENTS')).toBe(true);
        const during = r.w.events.filter((e) => e.ev === 'health' && e.t > r.refusedAt + 500 && e.t < r.allowedAt);
        expect(during.length).toBeGreaterThan(5);
        expect(during.every((e) => e.status === 'reconnecting')).toBe(true);
      }
    });
  });
});

describe('password rotation: the old password refused for 2 s, then accepted again', () => {
  let redis;
  let inspect;
  beforeAll(async () => {
    redis = await startRedis({ password: 'old-secret' });
    inspect = redis.client();
  });
  afterAll(() => redis.stop());

  // Defect 4: three WRONGPASS answers used to make the pair give up for good, silently.
  test.each(h.IMPLS)('defect 4: %s resumes within 3 s; ERR_AUTH per state change; health() and isRunning() agree', async (impl) => {
    const r = await scenario({
      redis,
      inspect,
      impl,
      password: 'old-secret',
      tag: 'password-rotation',
      refuse: () => inspect.call('CONFIG', 'SET', 'requirepass', 'new-secret'),
      allow: () => inspect.call('CONFIG', 'SET', 'requirepass', 'old-secret'),
    });
    await h.explain([r.w], async () => {
      expect(r.N - r.done).toBe(0);
      expect(r.ex.count.size).toBe(r.N);
      expect(r.ex.duplicates).toBe(0);
      expect(r.activeLeft).toBe(0);
      expect(r.resumedMs).toBeLessThan(3000);
      if (impl === 'ours') {
        const authErrors = r.w.events.filter((e) => e.ev === 'error' && e.code === 'ERR_AUTH');
        // Reported when it starts, not on every retry (2 s of capped backoff is ~10 attempts).
        expect(authErrors.length).toBeGreaterThanOrEqual(1);
        expect(authErrors.length).toBeLessThanOrEqual(2);
        const snaps = r.w.events.filter((e) => e.ev === 'health');
        const during = snaps.filter((e) => e.t > r.refusedAt + 500 && e.t < r.allowedAt);
        expect(during.length).toBeGreaterThan(5);
        expect(during.every((e) => e.status === 'reconnecting' && e.running)).toBe(true);
        expect(snaps.every((e) => (e.status === 'closed') === !e.running)).toBe(true);
        expect(JSON.stringify(r.w.events)).not.toContain('old-secret');
      }
    });
  });
});
