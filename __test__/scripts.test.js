'use strict';
// Our Lua scripts (src/scripts/*.lua) against the real BullMQ: jobs produced by BullMQ 6 and 5
// `Queue`s / `FlowProducer`s, consumed by calling the scripts through the engine's own Rust
// wrappers (the testing addon, helpers/testing.js), and oracle runs comparing what BullMQ's own
// Worker leaves in Redis with what a driver built only on our scripts leaves.

const { waitFor, sleep } = require('./helpers/redis-server');
const testing = require('./helpers/testing');
const scriptWorker = require('./helpers/script-worker');
const { snapshot } = require('./helpers/snapshot');
const { bullmq } = require('./helpers/bull');
const { useRedis } = require('./helpers/suite');

const { SCRIPTS, Scripts, queueKeys, flatToObject } = testing;
// Declared before useRedis(): afterAll hooks run in declaration order, and the testing addon's
// pair goes before the suite stops its server.
afterAll(() => testing.shutdown());
const { inspect: client, connection, closers } = useRedis({ addon: false });
const s = new Scripts(connection);

let seq = 0;
const unique = (tag) => `${tag}${++seq}`;

/** A BullMQ Queue (major 5 or 6) on a fresh prefix, with its meta (version, events cap) written. */
async function producer(major, { prefix = unique('p'), name = 'q' } = {}) {
  const queue = new bullmq[major].Queue(name, { connection, prefix });
  closers.push(() => queue.close());
  const k = queueKeys(prefix, name);
  await waitFor(() => client.hexists(k.meta, 'version'), { what: 'queue meta' });
  return { queue, k, prefix };
}

async function events(k) {
  return (await client.xrange(k.events, '-', '+')).map(([, flat]) => flatToObject(flat));
}

const eventNames = async (k) => (await events(k)).map((e) => e.event);
const now = () => Date.now();
const fetchOne = (k, token = unique('tok'), extra = {}) => s.activate(k, now(), { lockMs: 30000, tokens: [token], ...extra });

describe('script files', () => {
  test('each script starts with a header naming purpose, KEYS, ARGV, returns and codes', () => {
    const names = Object.keys(SCRIPTS).sort();
    expect(names).toEqual([
      'activate',
      'add_job',
      'add_log',
      'clean',
      'delay',
      'drain',
      'extend_locks',
      'finish',
      'get_jobs',
      'pause',
      'progress',
      'reprocess',
      'requeue',
      'retry',
      'scheduler_next',
      'stalled',
      'update_data',
      'waiting_children',
      // The Job / Queue surface, FlowProducer and job schedulers (engine::surface, engine::flow).
      'add_parent',
      'add_scheduler',
      'change_delay',
      'change_priority',
      'clear_logs',
      'dependencies',
      'extend_lock',
      'flow_release',
      'get_state',
      'is_finished',
      'move_jobs_to_wait',
      'obliterate',
      'promote',
      'queue_admin',
      'remove',
      'remove_child_dependency',
      'remove_dedup',
      'remove_orphans',
      'scheduler',
    ].sort());
    for (const name of names) {
      const header = SCRIPTS[name].split(']]')[0];
      expect(header.startsWith(`--[[\n  ${name}:`)).toBe(true);
      for (const section of ['KEYS', 'ARGV', 'Returns', 'Error codes']) expect(header).toContain(section);
    }
  });

  test('helpers repeated across scripts are identical copies', () => {
    const seen = {};
    for (const [file, text] of Object.entries(SCRIPTS)) {
      for (const [, name, body] of text.matchAll(/-- helper: (\w+)\n([\s\S]*?)-- end helper\n/g)) {
        (seen[name] = seen[name] || []).push({ file, body });
      }
    }
    expect(Object.keys(seen).length).toBeGreaterThan(5);
    for (const copies of Object.values(seen)) {
      for (const c of copies) expect(c.body).toBe(copies[0].body);
    }
    // fetch-next in finish.lua is exactly activate.lua's fetch.
    expect(seen.fetch.map((c) => c.file).sort()).toEqual(['activate', 'finish']);
  });
});

describe('activate', () => {
  test('FIFO plain jobs: lock, processedOn, pb, ats, active event, marker', async () => {
    const { queue, k } = await producer(6);
    for (const n of [1, 2, 3]) await queue.add('job', { n });
    const ids = [];
    for (let i = 0; i < 3; i++) {
      const token = `tok-${i}`;
      const t = now();
      const f = await s.activate(k, t, { lockMs: 5000, name: 'w1', tokens: [token] });
      expect(f.jobs).toHaveLength(1);
      const [job] = f.jobs;
      ids.push(job.id);
      expect(job.fields).toMatchObject({ name: 'job', processedOn: String(t), pb: 'w1', ats: '1' });
      expect(JSON.parse(job.fields.data)).toEqual({ n: i + 1 });
      expect(await client.get(k.lock(job.id))).toBe(token);
      const pttl = await client.pttl(k.lock(job.id));
      expect(pttl).toBeGreaterThan(4000);
      expect(pttl).toBeLessThanOrEqual(5000);
    }
    expect(ids).toEqual(['1', '2', '3']);
    expect(await client.lrange(k.active, 0, -1)).toEqual(['3', '2', '1']);
    expect(await client.zscore(k.marker, '0')).toBe('0');
    const active = (await events(k)).filter((e) => e.event === 'active');
    expect(active).toEqual(ids.map((jobId) => ({ event: 'active', jobId, prev: 'waiting' })));
    // Nothing left: no job, nothing delayed, no rate limit.
    expect(await fetchOne(k)).toEqual({ ttl: 0, nextDue: 0, jobs: [] });
  });

  test('priority order, FIFO within a priority, plain jobs first; pc deleted once drained', async () => {
    const { queue, k } = await producer(6);
    await queue.add('p3', {}, { priority: 3 });
    await queue.add('p1a', {}, { priority: 1 });
    await queue.add('plain', {});
    await queue.add('p2', {}, { priority: 2 });
    await queue.add('p1b', {}, { priority: 1 });
    const names = [];
    for (;;) {
      const f = await fetchOne(k);
      if (!f.jobs.length) break;
      names.push(f.jobs[0].fields.name);
    }
    expect(names).toEqual(['plain', 'p1a', 'p1b', 'p2', 'p3']);
    expect(await client.exists(k.pc)).toBe(0);
  });

  test('lifo jobs run first, newest first', async () => {
    const { queue, k } = await producer(6);
    await queue.add('a', {});
    await queue.add('b', {});
    await queue.add('c', {}, { lifo: true });
    await queue.add('d', {}, { lifo: true });
    const f = await s.activate(k, now(), { tokens: ['t1', 't2', 't3', 't4'] });
    expect(f.jobs.map((j) => j.fields.name)).toEqual(['d', 'c', 'a', 'b']);
  });

  test('delayed jobs: next due reported, promoted once due (waiting prev=delayed, delay 0)', async () => {
    const { queue, k } = await producer(6);
    const job = await queue.add('later', {}, { delay: 300 });
    const due = job.timestamp + 300;
    const early = await fetchOne(k);
    expect(early.jobs).toHaveLength(0);
    expect(early.nextDue).toBe(due);
    await sleep(due - now() + 20);
    const f = await fetchOne(k);
    expect(f.jobs.map((j) => j.id)).toEqual([job.id]);
    expect(f.jobs[0].fields.delay).toBe('0');
    expect(await client.zcard(k.delayed)).toBe(0);
    const evs = await events(k);
    expect(evs.slice(-2)).toEqual([
      { event: 'waiting', jobId: job.id, prev: 'delayed' },
      { event: 'active', jobId: job.id, prev: 'waiting' },
    ]);
  });

  test('delayed prioritized job is promoted into prioritized', async () => {
    const { queue, k } = await producer(6);
    const job = await queue.add('later', {}, { delay: 50, priority: 4 });
    await sleep(80);
    // Promotion happens even when the call wants no job (no tokens).
    const f = await s.activate(k, now(), { tokens: [] });
    expect(f.jobs).toHaveLength(0);
    const score = Number(await client.zscore(k.prioritized, job.id));
    expect(Math.floor(score / 2 ** 32)).toBe(4);
    expect(await client.zscore(k.marker, '0')).toBe('0');
  });

  test('batched activation: one lock per token, in queue order', async () => {
    const { queue, k } = await producer(6);
    for (let i = 1; i <= 5; i++) await queue.add('job', { i });
    const first = await s.activate(k, now(), { tokens: ['a', 'b', 'c'] });
    expect(first.jobs.map((j) => j.id)).toEqual(['1', '2', '3']);
    expect(await Promise.all(['1', '2', '3'].map((id) => client.get(k.lock(id))))).toEqual(['a', 'b', 'c']);
    const second = await s.activate(k, now(), { tokens: ['d', 'e', 'f'] });
    expect(second.jobs.map((j) => j.id)).toEqual(['4', '5']);
    expect(await eventNames(k)).toEqual([...Array(5).fill('added').flatMap((e) => [e, 'waiting']), ...Array(5).fill('active')]);
  });

  test('rate limiter: counts activations in a fixed window and reports the ttl', async () => {
    const { queue, k } = await producer(6);
    for (let i = 0; i < 4; i++) await queue.add('job', {});
    const f = await s.activate(k, now(), { limiter: [2, 1000], tokens: ['a', 'b', 'c'] });
    expect(f.jobs).toHaveLength(2);
    expect(f.ttl).toBe(0);
    expect(await client.get(k.limiter)).toBe('2');
    const limited = await s.activate(k, now(), { limiter: [2, 1000], tokens: ['d'] });
    expect(limited.jobs).toHaveLength(0);
    expect(limited.ttl).toBeGreaterThan(0);
    expect(limited.ttl).toBeLessThanOrEqual(1000);
    // A global limit in meta wins for the max.
    await client.del(k.limiter);
    await client.hset(k.meta, 'max', 1, 'duration', 1000);
    const global = await s.activate(k, now(), { tokens: ['e', 'f'] });
    expect(global.jobs).toHaveLength(1);
  });

  test('global concurrency: a maxed queue gives nothing', async () => {
    const { queue, k } = await producer(6);
    for (let i = 0; i < 3; i++) await queue.add('job', {});
    await queue.setGlobalConcurrency(2);
    expect((await s.activate(k, now(), { tokens: ['a', 'b', 'c'] })).jobs).toHaveLength(2);
    expect((await s.activate(k, now(), { tokens: ['d'] })).jobs).toHaveLength(0);
  });

  test('token "0" takes a job without a lock', async () => {
    const { queue, k } = await producer(6);
    await queue.add('job', {});
    const f = await s.activate(k, now(), { tokens: ['0'] });
    expect(f.jobs).toHaveLength(1);
    expect(await client.exists(k.lock('1'))).toBe(0);
  });

  test('legacy "0:" markers in wait are skipped', async () => {
    const { queue, k } = await producer(6);
    await queue.add('job', {});
    await client.rpush(k.wait, '0:123');
    const f = await s.activate(k, now(), { tokens: ['a', 'b'] });
    expect(f.jobs.map((j) => j.id)).toEqual(['1']);
    expect(await client.lrange(k.active, 0, -1)).toEqual(['1']);
  });

  test('v6 pause: jobs stay in wait, nothing is taken until resume', async () => {
    const { queue, k } = await producer(6);
    await queue.add('a', {});
    await queue.pause();
    await queue.add('b', {});
    expect(await client.llen(k.wait)).toBe(2);
    expect((await fetchOne(k)).jobs).toHaveLength(0);
    await queue.resume();
    expect((await s.activate(k, now(), { tokens: ['x', 'y'] })).jobs.map((j) => j.fields.name)).toEqual(['a', 'b']);
  });

  test('v5 pause: jobs move to the paused list; nothing is taken; after resume they run', async () => {
    const { queue, k } = await producer(5);
    await queue.add('a', {});
    await queue.add('later', {}, { delay: 30 });
    await queue.pause();
    await queue.add('b', {});
    expect(await client.lrange(k.paused, 0, -1)).toEqual(['3', '1']);
    expect(await client.llen(k.wait)).toBe(0);
    await sleep(50);
    // While paused: nothing taken, and the due delayed job is promoted into the v5 paused list.
    const f = await fetchOne(k);
    expect(f.jobs).toHaveLength(0);
    expect((await client.lrange(k.paused, 0, -1)).sort()).toEqual(['1', '2', '3']);
    expect(await client.zcard(k.marker)).toBe(0);
    await queue.resume();
    const names = [];
    for (;;) {
      const g = await fetchOne(k);
      if (!g.jobs.length) break;
      names.push(g.jobs[0].fields.name);
    }
    expect(names.sort()).toEqual(['a', 'b', 'later']);
  });
});

describe('finish', () => {
  async function activeJob(major = 6, opts = {}, data = {}) {
    const p = await producer(major);
    const job = await p.queue.add('job', data, opts);
    const token = unique('tok');
    const f = await fetchOne(p.k, token);
    expect(f.jobs[0].id).toBe(job.id);
    return { ...p, id: job.id, token };
  }

  test('completed with fetch-next: next job under the same token, then drained', async () => {
    const { queue, k } = await producer(6);
    await queue.add('a', {});
    await queue.add('b', {});
    const token = 'T';
    await fetchOne(k, token);
    const t = now();
    const f = await s.finish(k, '1', token, t, { completed: '{"ok":1}' }, { count: -1 }, 0, { tokens: [token], name: 'w' });
    expect(f.jobs.map((j) => j.id)).toEqual(['2']);
    expect(await client.get(k.lock('2'))).toBe(token);
    expect(await client.exists(k.lock('1'))).toBe(0);
    expect(await client.hgetall(k.job('1'))).toMatchObject({ returnvalue: '{"ok":1}', finishedOn: String(t), atm: '1' });
    expect(await client.zscore(k.completed, '1')).toBe(String(t));
    const g = await s.finish(k, '2', token, now(), { completed: 'null' }, { count: -1 }, 0, { tokens: [token] });
    expect(g).toEqual({ ttl: 0, nextDue: 0, jobs: [] });
    const tail = (await events(k)).slice(-5);
    expect(tail).toEqual([
      { event: 'active', jobId: '1', prev: 'waiting' },
      { event: 'completed', jobId: '1', returnvalue: '{"ok":1}', prev: 'active' },
      { event: 'active', jobId: '2', prev: 'waiting' },
      { event: 'completed', jobId: '2', returnvalue: 'null', prev: 'active' },
      { event: 'drained' },
    ]);
  });

  test('several jobs in one call: each checked and applied on its own, one fetched job per token', async () => {
    const { queue, k } = await producer(6);
    for (const n of ['a', 'b', 'c', 'd', 'e']) await queue.add(n, { n });
    const f0 = await s.activate(k, now(), { lockMs: 30000, tokens: ['T1', 'T2', 'T3'] });
    expect(f0.jobs.map((j) => j.id)).toEqual(['1', '2', '3']);
    const t = now();
    const r = await s.finishMany(k, t, [
      { id: '1', token: 'T1', outcome: { completed: '"one"' }, keep: { count: 0 } },
      { id: '2', token: 'WRONG', outcome: { completed: 'null' } },
      { id: '3', token: 'T3', outcome: { failed: 'bad', stacktrace: '["Error: bad"]' }, attempts: 1 },
      { id: 'missing', token: 'T9', outcome: { completed: 'null' } },
    ], { lockMs: 30000, tokens: ['T1', 'T3', 'T9'], name: 'w' });
    // Job 2 keeps its lock and its place; the others are done whatever it did.
    expect(r.codes).toEqual([0, -6, 0, -1]);
    expect(await client.exists(k.job('1'))).toBe(0);
    expect(await client.lrange(k.active, 0, -1)).toEqual(expect.arrayContaining(['2', '4', '5']));
    expect(await client.llen(k.active)).toBe(3);
    expect(await client.get(k.lock('2'))).toBe('T2');
    expect(await client.hgetall(k.job('3'))).toMatchObject({ failedReason: 'bad', finishedOn: String(t), atm: '1' });
    expect(await client.zscore(k.failed, '3')).toBe(String(t));
    // Only two jobs were left: the tokens are used in order.
    expect(r.jobs.map((j) => j.id)).toEqual(['4', '5']);
    expect(await client.get(k.lock('4'))).toBe('T1');
    expect(await client.get(k.lock('5'))).toBe('T3');
    // The reply carries what the job hash holds after activation.
    for (const j of r.jobs) {
      expect(j.fields).toEqual(await client.hgetall(k.job(j.id)));
      expect(j.fields).toMatchObject({ ats: '1', pb: 'w', processedOn: String(t) });
    }
    const tail = (await events(k)).slice(-5).map((e) => `${e.event}:${e.jobId || ''}`);
    expect(tail).toEqual(['completed:1', 'failed:3', 'retries-exhausted:3', 'active:4', 'active:5']);
  });

  test('no drained while delayed jobs are pending and a fetch was asked (as BullMQ)', async () => {
    const { queue, k } = await producer(6);
    await queue.add('now', {});
    await queue.add('later', {}, { delay: 5000 });
    await fetchOne(k, 'T');
    const f = await s.finish(k, '1', 'T', now(), { completed: 'null' }, { count: -1 }, 0, { tokens: ['T'] });
    expect(f.jobs).toHaveLength(0);
    expect(f.nextDue).toBeGreaterThan(now());
    expect(await eventNames(k)).not.toContain('drained');
  });

  test('failed: failedReason, stacktrace, defa removed, failed + retries-exhausted', async () => {
    const { k, id, token } = await activeJob(6, { attempts: 1 });
    await client.hset(k.job(id), 'defa', 'something');
    const t = now();
    const f = await s.finish(k, id, token, t, { failed: 'boom', stacktrace: '["Error: boom"]' }, { count: -1 }, 1);
    expect(f).toEqual({ ttl: 0, nextDue: 0, jobs: [] });
    const h = await client.hgetall(k.job(id));
    expect(h).toMatchObject({ failedReason: 'boom', stacktrace: '["Error: boom"]', finishedOn: String(t), atm: '1' });
    expect(h.defa).toBeUndefined();
    expect(await client.zscore(k.failed, id)).toBe(String(t));
    expect((await events(k)).slice(-3)).toEqual([
      { event: 'failed', jobId: id, failedReason: 'boom', prev: 'active' },
      { event: 'retries-exhausted', jobId: id, attemptsMade: '1' },
      { event: 'drained' },
    ]);
  });

  test('removeOnComplete count: keep the newest n, delete the others with their keys', async () => {
    const { queue, k } = await producer(6);
    for (let i = 0; i < 4; i++) await queue.add('job', {});
    for (const id of ['1', '2', '3', '4']) {
      await fetchOne(k, 'T');
      await client.rpush(k.logs(id), 'line');
      const code = await s.finish(k, id, 'T', now() + Number(id), { completed: 'null' }, { count: 2 }, 0);
      expect(code).toEqual({ ttl: 0, nextDue: 0, jobs: [] });
    }
    expect(await client.zrange(k.completed, 0, -1)).toEqual(['3', '4']);
    for (const id of ['1', '2']) {
      expect(await client.exists(k.job(id), k.logs(id))).toBe(0);
    }
    expect(await client.exists(k.job('3'), k.logs('3'))).toBe(2);
  });

  test('removeOnComplete 0 deletes the job at once; age removes old jobs', async () => {
    const { queue, k } = await producer(6);
    await queue.add('gone', {});
    await queue.add('old', {});
    await queue.add('new', {});
    await fetchOne(k, 'T');
    await client.rpush(k.logs('1'), 'line');
    await s.finish(k, '1', 'T', now(), { completed: 'null' }, { count: 0 }, 0);
    expect(await client.exists(k.job('1'), k.logs('1'))).toBe(0);
    expect(await client.zcard(k.completed)).toBe(0);
    expect(await eventNames(k)).toContain('completed');
    await fetchOne(k, 'T');
    await s.finish(k, '2', 'T', now() - 10000, { completed: 'null' }, { count: -1 }, 0);
    await fetchOne(k, 'T');
    await s.finish(k, '3', 'T', now(), { completed: 'null' }, { count: -1, age: 5 }, 0);
    expect(await client.zrange(k.completed, 0, -1)).toEqual(['3']);
    expect(await client.exists(k.job('2'))).toBe(0);
  });

  test('error codes: -1 missing, -2 no lock, -6 other token, -3 not active, -4 / -9 children', async () => {
    const { k, id, token } = await activeJob(6);
    const done = (code) => s.finish(k, id, code, now(), { completed: 'null' }, { count: -1 }, 0);
    expect(await s.finish(k, 'nope', token, now(), { completed: 'null' })).toBe(-1);
    expect(await done('other')).toBe(-6);
    await client.sadd(`${k.job(id)}:dependencies`, 'x:y:z');
    expect(await done(token)).toBe(-4);
    await client.del(`${k.job(id)}:dependencies`);
    await client.zadd(`${k.job(id)}:unsuccessful`, 1, 'x:y:z');
    expect(await done(token)).toBe(-9);
    // A failed parent with failed children is fine.
    await client.del(`${k.job(id)}:unsuccessful`);
    await client.lrem(k.active, 0, id);
    expect(await done(token)).toBe(-3);
    expect(await done(token)).toBe(-2);
  });

  test('deduplication key released when its job finishes (only when it has no ttl)', async () => {
    const { queue, k } = await producer(6);
    await queue.add('a', {}, { deduplication: { id: 'd1' } });
    await queue.add('b', {}, { deduplication: { id: 'd2', ttl: 60000 } });
    await fetchOne(k, 'T');
    await fetchOne(k, 'T');
    expect(await client.get(`${k.base}de:d1`)).toBe('1');
    await s.finish(k, '1', 'T', now(), { completed: 'null' });
    await s.finish(k, '2', 'T', now(), { completed: 'null' });
    expect(await client.exists(`${k.base}de:d1`)).toBe(0);
    expect(await client.get(`${k.base}de:d2`)).toBe('2');
  });
});

describe('retry and delay', () => {
  test('retry: back to wait (LPUSH; RPUSH for lifo), atm+1, failedReason, waiting prev=active', async () => {
    const { queue, k } = await producer(6);
    await queue.add('a', {});
    await queue.add('b', {});
    await queue.add('c', {});
    await fetchOne(k, 'T');
    expect(await s.retry(k, '1', 'T', now(), false, 'again', '["s"]')).toBe(0);
    expect(await client.lrange(k.wait, 0, -1)).toEqual(['1', '3', '2']);
    expect(await client.hgetall(k.job('1'))).toMatchObject({ atm: '1', failedReason: 'again', stacktrace: '["s"]' });
    expect(await client.exists(k.lock('1'))).toBe(0);
    await fetchOne(k, 'U'); // job 2
    expect(await s.retry(k, '2', 'U', now(), true, 'lifo')).toBe(0);
    expect(await client.lrange(k.wait, 0, -1)).toEqual(['1', '3', '2']);
    expect((await events(k)).slice(-1)).toEqual([{ event: 'waiting', jobId: '2', prev: 'active' }]);
    expect(await s.retry(k, '3', 'U', now(), false, 'x')).toBe(-2);
    expect(await s.retry(k, 'nope', 'U', now(), false, 'x')).toBe(-1);
  });

  test('retry of a prioritized job goes back to prioritized', async () => {
    const { queue, k } = await producer(6);
    await queue.add('p', {}, { priority: 7 });
    await fetchOne(k, 'T');
    expect(await s.retry(k, '1', 'T', now(), false, 'again')).toBe(0);
    expect(Math.floor(Number(await client.zscore(k.prioritized, '1')) / 2 ** 32)).toBe(7);
    expect(await client.llen(k.wait)).toBe(0);
  });

  test('delay: §5 score with a sequence per ms, delayed event with the due time, delay marker', async () => {
    const { queue, k } = await producer(6);
    await queue.add('a', {});
    await queue.add('b', {});
    await s.activate(k, now(), { tokens: ['T', 'U'] });
    const t = now();
    expect(await s.delay(k, '1', 'T', t, 200, false, 'oops', '["st"]')).toBe(0);
    expect(await s.delay(k, '2', 'U', t, 200, true)).toBe(0);
    const due = t + 200;
    expect(await client.zrange(k.delayed, 0, -1, 'WITHSCORES')).toEqual(['1', String(due * 4096), '2', String(due * 4096 + 1)]);
    expect(await client.hgetall(k.job('1'))).toMatchObject({ atm: '1', delay: '200', failedReason: 'oops', stacktrace: '["st"]' });
    const h2 = await client.hgetall(k.job('2'));
    expect(h2.atm).toBeUndefined();
    expect(h2.failedReason).toBeUndefined();
    expect(await client.zscore(k.marker, '1')).toBe(String(due));
    expect((await events(k)).slice(-2)).toEqual([
      { event: 'delayed', jobId: '1', delay: String(due) },
      { event: 'delayed', jobId: '2', delay: String(due) },
    ]);
    expect(await client.llen(k.active)).toBe(0);
    expect(await s.delay(k, '1', 'T', t, 200, false)).toBe(-2);
  });

  test('delay on a paused queue writes no delay marker', async () => {
    const { queue, k } = await producer(6);
    await queue.add('a', {});
    await fetchOne(k, 'T');
    await queue.pause();
    expect(await s.delay(k, '1', 'T', now(), 100, false)).toBe(0);
    expect(await client.zscore(k.marker, '1')).toBeNull();
  });
});

describe('locks and stalled jobs', () => {
  test('extend_locks renews owned locks and reports the others', async () => {
    const { queue, k } = await producer(6);
    await queue.add('a', {});
    await queue.add('b', {});
    await s.activate(k, now(), { lockMs: 1000, tokens: ['T1', 'T2'] });
    await client.sadd(k.stalled, '1', '2');
    const lost = await s.extendLocks(k, 60000, [['1', 'T1'], ['2', 'wrong'], ['9', 'T9']]);
    expect(lost).toEqual(['2', '9']);
    expect(await client.pttl(k.lock('1'))).toBeGreaterThan(50000);
    expect(await client.pttl(k.lock('2'))).toBeLessThanOrEqual(1000);
    expect(await client.get(k.lock('2'))).toBe('T2');
    expect(await client.smembers(k.stalled)).toEqual(['2']);
    // No pairs: nothing to renew, so the wrapper sends no script at all.
    expect(await s.extendLocks(k, 1000, [])).toBeNull();
  });

  test('stalled: flagged job whose lock is gone goes back to wait, with events; guard honoured', async () => {
    const { queue, k } = await producer(6);
    await queue.add('a', {});
    await queue.add('b', {});
    await fetchOne(k, 'T');
    // First check flags what is active.
    expect(await s.stalled(k, 1, now(), 60000)).toEqual([]);
    expect(await client.smembers(k.stalled)).toEqual(['1']);
    expect(await client.pttl(k.stalledCheck)).toBeGreaterThan(50000);
    // Guard still there: nothing happens.
    await client.del(k.lock('1'));
    expect(await s.stalled(k, 1, now(), 60000)).toEqual([]);
    await client.del(k.stalledCheck);
    expect(await s.stalled(k, 1, now(), 60000)).toEqual(['1']);
    expect(await client.lrange(k.wait, 0, -1)).toEqual(['2', '1']);
    expect(await client.hget(k.job('1'), 'stc')).toBe('1');
    expect(await client.hget(k.job('1'), 'defa')).toBeNull();
    expect(await client.zscore(k.marker, '0')).toBe('0');
    expect((await events(k)).slice(-2)).toEqual([
      { event: 'waiting', jobId: '1', prev: 'active' },
      { event: 'stalled', jobId: '1' },
    ]);
    // It runs next (RPUSH).
    expect((await fetchOne(k, 'U')).jobs[0].id).toBe('1');
  });

  test('stalled past maxStalledCount: defa set, and a lock that is still held is left alone', async () => {
    const { queue, k } = await producer(6);
    await queue.add('a', {});
    await queue.add('b', {});
    await s.activate(k, now(), { tokens: ['T', 'U'] });
    await s.stalled(k, 0, now(), 60000);
    expect((await client.smembers(k.stalled)).sort()).toEqual(['1', '2']);
    await client.del(k.stalledCheck, k.lock('1'));
    expect(await s.stalled(k, 0, now(), 60000)).toEqual(['1']);
    expect(await client.hget(k.job('1'), 'defa')).toBe('job stalled more than allowable limit');
    expect(await client.lrange(k.active, 0, -1)).toEqual(['2']);
    // Still-active job 2 is flagged again for the next round.
    expect(await client.smembers(k.stalled)).toEqual(['2']);
  });
});

describe('progress, logs, data', () => {
  test('progress stores JSON and emits progress; -1 for a missing job', async () => {
    const { queue, k } = await producer(6);
    await queue.add('a', {});
    expect(await s.progress(k, '1', '{"pct":50}')).toBe(0);
    expect(await client.hget(k.job('1'), 'progress')).toBe('{"pct":50}');
    expect((await events(k)).slice(-1)).toEqual([{ event: 'progress', jobId: '1', data: '{"pct":50}' }]);
    expect(await s.progress(k, 'nope', '1')).toBe(-1);
  });

  test('add_log appends, trims to keepLogs and returns the count', async () => {
    const { queue, k } = await producer(6);
    await queue.add('a', {});
    expect(await s.addLog(k, '1', 'one')).toBe(1);
    expect(await s.addLog(k, '1', 'two')).toBe(2);
    expect(await s.addLog(k, '1', 'three', 2)).toBe(2);
    expect(await client.lrange(k.logs('1'), 0, -1)).toEqual(['two', 'three']);
    expect(await s.addLog(k, 'nope', 'x')).toBe(-1);
    const logs = await queue.getJobLogs('1');
    expect(logs).toEqual({ logs: ['two', 'three'], count: 2 });
  });

  test('update_data replaces data; -1 for a missing job', async () => {
    const { queue, k } = await producer(6);
    await queue.add('a', { v: 1 });
    expect(await s.updateData(k, '1', '{"v":2}')).toBe(0);
    expect((await queue.getJob('1')).data).toEqual({ v: 2 });
    expect(await s.updateData(k, 'nope', '{}')).toBe(-1);
  });
});

describe('flows (FlowProducer, bullmq 6)', () => {
  async function flow(childOpts = {}) {
    const prefix = unique('f');
    const fp = new bullmq[6].FlowProducer({ connection, prefix });
    closers.push(() => fp.close());
    const pk = queueKeys(prefix, 'parents');
    const ck = queueKeys(prefix, 'children');
    await fp.add({
      name: 'parent', queueName: 'parents', data: {}, opts: { jobId: 'P' },
      children: [
        { name: 'c1', queueName: 'children', data: {}, opts: { jobId: 'c1' } },
        { name: 'c2', queueName: 'children', data: {}, opts: { jobId: 'c2', ...childOpts } },
      ],
    });
    return { pk, ck, prefix };
  }

  test('parent in another queue is released after both children complete', async () => {
    const { pk, ck } = await flow();
    expect(await client.zrange(pk.waitingChildren, 0, -1)).toEqual(['P']);
    const f = await s.activate(ck, now(), { tokens: ['T', 'T'] });
    expect(f.jobs.map((j) => j.id)).toEqual(['c1', 'c2']);
    await s.finish(ck, 'c1', 'T', now(), { completed: '"one"' });
    expect(await client.zrange(pk.waitingChildren, 0, -1)).toEqual(['P']);
    expect(await client.llen(pk.wait)).toBe(0);
    await s.finish(ck, 'c2', 'T', now(), { completed: '"two"' });
    expect(await client.zcard(pk.waitingChildren)).toBe(0);
    expect(await client.lrange(pk.wait, 0, -1)).toEqual(['P']);
    expect(await client.zscore(pk.marker, '0')).toBe('0');
    expect((await events(pk)).slice(-1)).toEqual([{ event: 'waiting', jobId: 'P', prev: 'waiting-children' }]);
    expect(await client.hgetall(`${pk.job('P')}:processed`)).toEqual({ [ck.job('c1')]: '"one"', [ck.job('c2')]: '"two"' });
    expect(await client.scard(`${pk.job('P')}:dependencies`)).toBe(0);
    // The parent now completes (no pending dependencies any more).
    const p = await fetchOne(pk, 'X');
    expect(p.jobs[0].id).toBe('P');
    expect(await s.finish(pk, 'P', 'X', now(), { completed: 'null' })).toEqual({ ttl: 0, nextDue: 0, jobs: [] });
  });

  test('failParentOnFailure: the parent gets defa, unsuccessful child, and is released at once', async () => {
    const { pk, ck } = await flow({ failParentOnFailure: true });
    await s.activate(ck, now(), { tokens: ['T', 'T'] });
    await s.finish(ck, 'c2', 'T', now(), { failed: 'bad child' }, { count: -1 }, 0);
    expect(await client.hget(pk.job('P'), 'defa')).toBe(`child ${ck.job('c2')} failed`);
    expect(await client.zrange(`${pk.job('P')}:unsuccessful`, 0, -1)).toEqual([ck.job('c2')]);
    // Released although c1 is still pending.
    expect(await client.lrange(pk.wait, 0, -1)).toEqual(['P']);
    expect(await client.zcard(pk.waitingChildren)).toBe(0);
    // Completing the parent is refused (-4 pending, then -9 failed children); failing it is
    // what a worker does with defa.
    await fetchOne(pk, 'X');
    expect(await s.finish(pk, 'P', 'X', now(), { completed: 'null' })).toBe(-4);
    await s.finish(ck, 'c1', 'T', now(), { completed: '1' });
    expect(await s.finish(pk, 'P', 'X', now(), { completed: 'null' })).toBe(-9);
    const f = await s.finish(pk, 'P', 'X', now(), { failed: 'child failed' }, { count: -1 }, 0);
    expect(f.jobs).toEqual([]);
    expect(await client.hget(pk.job('P'), 'defa')).toBeNull();
  });

  test('ignoreDependencyOnFailure: failure recorded in :failed, parent released when no deps remain', async () => {
    const { pk, ck } = await flow({ ignoreDependencyOnFailure: true });
    await s.activate(ck, now(), { tokens: ['T', 'T'] });
    await s.finish(ck, 'c2', 'T', now(), { failed: 'ignored' }, { count: -1 }, 0);
    expect(await client.hgetall(`${pk.job('P')}:failed`)).toEqual({ [ck.job('c2')]: 'ignored' });
    expect(await client.llen(pk.wait)).toBe(0);
    await s.finish(ck, 'c1', 'T', now(), { completed: '1' });
    expect(await client.lrange(pk.wait, 0, -1)).toEqual(['P']);
  });

  test('a child failing without flags keeps the parent waiting; deleting it (removeOnFail) releases it', async () => {
    const { pk, ck } = await flow();
    await s.activate(ck, now(), { tokens: ['T', 'T'] });
    await s.finish(ck, 'c1', 'T', now(), { completed: '1' });
    await s.finish(ck, 'c2', 'T', now(), { failed: 'x' }, { count: -1 }, 0);
    expect(await client.zrange(pk.waitingChildren, 0, -1)).toEqual(['P']);
    expect(await client.smembers(`${pk.job('P')}:dependencies`)).toEqual([ck.job('c2')]);
  });
});

describe('waiting_children, requeue, scheduler_next', () => {
  test('waiting_children: moves a parent with pending children, 1 when nothing is pending, codes', async () => {
    const { queue, k } = await producer(6);
    await queue.add('parent', {}, { jobId: 'P' });
    await queue.add('lonely', {}, { jobId: 'L' });
    await s.activate(k, now(), { tokens: ['T', 'U'] });
    const child = `${k.base}kid`;
    await client.sadd(`${k.job('P')}:dependencies`, child);
    // Another child than the pending one: nothing to wait for.
    expect(await s.waitingChildren(k, 'P', 'T', now(), `${k.base}other`)).toBe(1);
    expect(await s.waitingChildren(k, 'P', 'X', now())).toBe(-6);
    const t = now();
    expect(await s.waitingChildren(k, 'P', 'T', t, child)).toBe(0);
    expect(await client.zrange(k.waitingChildren, 0, -1, 'WITHSCORES')).toEqual(['P', String(t)]);
    expect(await client.lrange(k.active, 0, -1)).toEqual(['L']);
    expect(await client.exists(k.lock('P'))).toBe(0);
    expect((await events(k)).slice(-1)).toEqual([{ event: 'waiting-children', jobId: 'P', prev: 'active' }]);
    expect(await s.waitingChildren(k, 'L', 'U', now())).toBe(1);
    expect(await client.lrange(k.active, 0, -1)).toEqual(['L']);
    expect(await s.waitingChildren(k, 'P', 'T', now())).toBe(-2);
    await client.zadd(`${k.job('L')}:unsuccessful`, 1, child);
    expect(await s.waitingChildren(k, 'L', 'U', now())).toBe(-9);
    expect(await s.waitingChildren(k, 'nope', 'U', now())).toBe(-1);
  });

  test('requeue: back to wait (RPUSH) without an attempt; prioritized at the front; limiter ttl', async () => {
    const { queue, k } = await producer(6);
    await queue.add('a', {}, { jobId: 'a' });
    await queue.add('b', {}, { jobId: 'b' });
    await queue.add('p', {}, { jobId: 'p', priority: 4 });
    await s.activate(k, now(), { tokens: ['T', 'U', 'V'] });
    await client.set(k.limiter, '9007199254740991', 'PX', 5000);
    await client.del(k.marker);
    const ttl = await s.requeue(k, 'a', 'T');
    expect(ttl).toBeGreaterThan(4000);
    expect(await client.lrange(k.wait, 0, -1)).toEqual(['a']);
    expect(await client.hget(k.job('a'), 'atm')).toBeNull();
    expect(await client.hget(k.job('a'), 'ats')).toBe('1');
    expect(await client.exists(k.lock('a'))).toBe(0);
    expect(await client.zscore(k.marker, '0')).toBe('0');
    expect((await events(k)).slice(-1)).toEqual([{ event: 'waiting', jobId: 'a', prev: 'active' }]);
    await client.del(k.limiter);
    expect(await s.requeue(k, 'p', 'V')).toBe(0);
    expect(await client.zrange(k.prioritized, 0, -1, 'WITHSCORES')).toEqual(['p', String(4 * 2 ** 32)]);
    expect(await s.requeue(k, 'b', 'X')).toBe(-6);
    expect(await s.requeue(k, 'a', 'T')).toBe(-2);
    expect(await s.requeue(k, 'a', '0')).toBe(-3);
    expect(await s.requeue(k, 'nope', 'T')).toBe(-1);
  });

  // The options a BullMQ worker sends for the next iteration (msgpack, as BullMQ packs them).
  const { Packr } = require('msgpackr');
  const packer = new Packr({ useRecords: false, encodeUndefinedAsNil: true });
  const nextOpts = (sid, t, repeat, extra = {}) => packer.pack({
    attempts: 0, ...extra, repeat, jobId: `repeat:${sid}:undefined`, delay: 0, timestamp: t, repeatJobKey: sid,
  });

  test('scheduler_next: every iteration as a BullMQ worker adds it; only the current iteration; duplicates', async () => {
    const { queue, k } = await producer(6);
    await queue.upsertJobScheduler('s', { every: 1000 }, { name: 'tick', data: { a: 1 }, opts: { backoff: 20 } });
    const [first] = await client.lrange(k.wait, 0, -1);
    const prev = Number(first.split(':')[2]);
    const f = await fetchOne(k, 'T');
    expect(f.jobs[0].id).toBe(first);
    const t = now();
    const packed = nextOpts('s', t, { every: 1000, count: 2, offset: undefined }, { backoff: { type: 'fixed', delay: 20 } });
    const id = await s.schedulerNext(k, 's', first, t, '', false, packed);
    expect(id).toBe(`repeat:s:${prev + 1000}`);
    expect(await client.zscore(k.repeat, 's')).toBe(String(prev + 1000));
    expect(await client.hget(`${k.repeat}:s`, 'ic')).toBe('2');
    expect(await client.get(k.id)).toBe('2');
    const h = await client.hgetall(k.job(id));
    expect(h).toMatchObject({ name: 'tick', data: '{"a":1}', rjk: 's', priority: '0', timestamp: String(t),
      delay: String(prev + 1000 - t) });
    expect(JSON.parse(h.opts)).toEqual({ backoff: { type: 'fixed', delay: 20 }, attempts: 0, delay: prev + 1000 - t,
      jobId: id, timestamp: t, repeatJobKey: 's', repeat: { every: 1000, count: 2 } });
    // The stored text is cjson's encoding of the table cmsgpack built: what BullMQ stores.
    expect(h.opts).toBe(await client.eval(`local o = cmsgpack.unpack(ARGV[1]); o.delay = tonumber(ARGV[2]);
      o.jobId = ARGV[3]; return cjson.encode(o)`, 0, packed, prev + 1000 - t, id));
    expect(await client.zrange(k.delayed, 0, -1, 'WITHSCORES')).toEqual([id, String((prev + 1000) * 4096)]);
    expect((await events(k)).slice(-2)).toEqual([
      { event: 'added', jobId: id, name: 'tick' },
      { event: 'delayed', jobId: id, delay: String(prev + 1000) },
    ]);
    // The first iteration is no longer the current one: nothing happens.
    expect(await s.schedulerNext(k, 's', first, t, '', false, packed)).toBe(0);
    // The current one, when its next slot is taken: `duplicated`.
    await client.hset(k.job(`repeat:s:${prev + 2000}`), 'name', 'squatter');
    expect(await s.schedulerNext(k, 's', id, t, '', false, packed)).toBe(1);
    expect((await events(k)).slice(-1)).toEqual([{ event: 'duplicated', jobId: `repeat:s:${prev + 2000}` }]);
    // Late: realigned to the next slot after now (offset kept); a past slot runs at once.
    await client.del(k.job(`repeat:s:${prev + 2000}`));
    const late = prev + 5500;
    const lateId = await s.schedulerNext(k, 's', id, late, '', false, packed);
    expect(lateId).toBe(`repeat:s:${prev + 6000}`);
    // Gone scheduler.
    expect(await s.schedulerNext(k, 'missing', 'repeat:missing:1', t, '', false, packed)).toBe(0);
  });

  test('scheduler_next: cron next time from the caller, prevMillis, a due slot goes to wait', async () => {
    const { queue, k } = await producer(6);
    await queue.upsertJobScheduler('c', { pattern: '0 0 * * *', tz: 'UTC' }, { name: 'daily' });
    const [first] = await client.zrange(k.delayed, 0, -1);
    const t = now();
    const packed = nextOpts('c', t, { pattern: '0 0 * * *', tz: 'UTC', count: 2 }, { prevMillis: t - 5 });
    const id = await s.schedulerNext(k, 'c', first, t, t - 5, false, packed);
    expect(id).toBe(`repeat:c:${t - 5}`);
    expect(await client.lrange(k.wait, 0, -1)).toEqual([id]);
    const h = await client.hgetall(k.job(id));
    expect(h.delay).toBe('0');
    expect(JSON.parse(h.opts)).toMatchObject({ prevMillis: t - 5, delay: 0, repeat: { pattern: '0 0 * * *', tz: 'UTC', count: 2 } });
    expect((await events(k)).slice(-2)).toEqual([
      { event: 'added', jobId: id, name: 'daily' },
      { event: 'waiting', jobId: id },
    ]);
    // A legacy-shaped id that has no scheduler hash with `ic` is refused.
    await client.zadd(k.repeat, 1, 'n:i::UTC:0 0 * * *');
    expect(await s.schedulerNext(k, 'n:i::UTC:0 0 * * *', 'repeat:n:i::UTC:0 0 * * *:1', t, t, true, packed)).toBe(2);
  });
});

// ---------------------------------------------------------------------------------------
// Oracle runs: the same jobs consumed by BullMQ's Worker (prefix A) and by the driver built
// on our scripts (prefix B); everything both leave in Redis must be equal after normalising
// times, tokens, stacks and prefixes (see helpers/snapshot.js).

class NamedError extends Error {
  constructor(name, message) {
    super(message);
    this.name = name;
  }
}

const ORACLE_SCENARIOS = [
  {
    name: 'mixed waiting: plain, priorities, lifo; results and worker name',
    async produce({ queues: { q } }) {
      await q.add('a', { n: 1 });
      await q.add('b', { n: 2 }, { priority: 2 });
      await q.add('c', { n: 3 }, { priority: 1 });
      await q.add('d', { n: 4 }, { lifo: true });
      await q.add('e', { n: 5 }, { priority: 1 });
      await q.add('f', { n: 6 });
    },
    process: async (job) => ({ seen: job.data.n, name: job.name }),
  },
  {
    name: 'failures: backoff retries, immediate retry, exhausted, unrecoverable',
    async produce({ queues: { q } }) {
      await q.add('fixed', {}, { attempts: 3, backoff: { type: 'fixed', delay: 100 } });
      await q.add('immediate', {}, { attempts: 3 });
      await q.add('exhausted', {}, { attempts: 2, backoff: { type: 'exponential', delay: 50 } });
      await q.add('unrecoverable', {}, { attempts: 5 });
      await q.add('plain-fail', {});
    },
    async process(job, { attempt }) {
      if (job.name === 'fixed' && attempt < 3) throw new Error(`fixed ${attempt}`);
      if (job.name === 'immediate' && attempt < 2) throw new Error('once');
      if (job.name === 'exhausted') throw new Error(`exhausted ${attempt}`);
      if (job.name === 'unrecoverable') throw new NamedError(attempt === 1 ? 'Error' : 'UnrecoverableError', `u${attempt}`);
      if (job.name === 'plain-fail') throw new Error('no attempts');
      return attempt;
    },
  },
  {
    name: 'delayed jobs and the processor moving its own job to delayed',
    async produce({ queues: { q } }) {
      await q.add('later', {}, { delay: 250 });
      await q.add('now', {});
      await q.add('self-delay', {});
    },
    async process(job, { attempt, token }) {
      if (job.name === 'self-delay' && attempt === 1) {
        await job.moveToDelayed(Date.now() + 150, token);
        throw new NamedError('DelayedError', 'moved');
      }
      return job.name;
    },
  },
  {
    name: 'retention: removeOnComplete count / true / age, removeOnFail count',
    async produce({ queues: { q } }) {
      for (let i = 0; i < 4; i++) await q.add('keep2', { i }, { removeOnComplete: 2 });
      await q.add('drop', {}, { removeOnComplete: true });
      await q.add('aged', {}, { removeOnComplete: { age: 3600, count: 10 } });
      for (let i = 0; i < 3; i++) await q.add('fail1', { i }, { removeOnFail: 1 });
    },
    async process(job) {
      await job.log(`running ${job.name}`);
      if (job.name === 'fail1') throw new Error('f');
      return job.data;
    },
  },
  {
    name: 'progress, logs with keepLogs, updateData',
    async produce({ queues: { q } }) {
      await q.add('p', { v: 1 }, { keepLogs: 2 });
    },
    async process(job) {
      await job.updateProgress(10);
      await job.updateProgress({ step: 'two', pct: 66.5 });
      for (const line of ['l1', 'l2', 'l3']) await job.log(line);
      await job.updateData({ v: 2, note: 'é/"' });
      return 'done';
    },
  },
  {
    name: 'flow across queues with custom ids: children complete, parent reads their values',
    queues: ['children', 'parents'],
    async produce({ flow }) {
      await flow().add({
        name: 'parent', queueName: 'parents', data: {}, opts: { jobId: 'P1' },
        children: [
          { name: 'c1', queueName: 'children', data: { v: 1 }, opts: { jobId: 'k1' } },
          { name: 'c2', queueName: 'children', data: { v: 2 }, opts: { jobId: 'k2' } },
        ],
      });
    },
    async process(job) {
      if (job.name === 'parent') {
        const values = await job.getChildrenValues();
        return Object.keys(values).sort().map((key) => [key.split(':').slice(-2).join(':'), values[key]]);
      }
      return job.data.v * 10;
    },
  },
  {
    name: 'flow: failParentOnFailure and ignoreDependencyOnFailure children',
    queues: ['children', 'parents'],
    async produce({ flow }) {
      const f = flow();
      await f.add({
        name: 'fp-parent', queueName: 'parents', data: {}, opts: { jobId: 'FP' },
        children: [{ name: 'bad', queueName: 'children', data: {}, opts: { jobId: 'b1', failParentOnFailure: true } }],
      });
      await f.add({
        name: 'id-parent', queueName: 'parents', data: {}, opts: { jobId: 'IP' },
        children: [
          { name: 'bad', queueName: 'children', data: {}, opts: { jobId: 'b2', ignoreDependencyOnFailure: true } },
          { name: 'good', queueName: 'children', data: {}, opts: { jobId: 'g2' } },
        ],
      });
    },
    async process(job) {
      if (job.name === 'bad') throw new Error('child failed');
      return job.name;
    },
  },
];

async function allFinal(prefix, names, { ignoreWaitingChildren = false } = {}) {
  for (const name of names) {
    const k = queueKeys(prefix, name);
    const counts = await Promise.all([
      client.llen(k.wait), client.llen(k.active), client.llen(k.paused),
      client.zcard(k.delayed), client.zcard(k.prioritized),
      ignoreWaitingChildren ? 0 : client.zcard(k.waitingChildren),
    ]);
    if (counts.some((c) => c > 0)) return false;
  }
  return true;
}

async function runScenario(major, scenario, role) {
  const prefix = unique(role);
  const names = scenario.queues || ['q'];
  const bull = bullmq[major];
  const queues = {};
  for (const name of names) queues[name] = (await producer(major, { prefix, name })).queue;
  const flows = [];
  const flow = () => {
    const f = new bull.FlowProducer({ connection, prefix });
    flows.push(f);
    return f;
  };
  await scenario.produce({ queues, flow });
  const attempts = new Map();
  const Worker = role === 'oracle' ? bull.Worker : scriptWorker.Worker;
  const start = (name) => {
    const processor = (job, token) => {
      const key = `${name}:${job.id}`;
      const attempt = (attempts.get(key) || 0) + 1;
      attempts.set(key, attempt);
      return scenario.process(job, { attempt, token });
    };
    const w = new Worker(name, processor, { connection, prefix, name: 'od-worker', concurrency: 1 });
    w.on('error', () => {});
    return w;
  };
  const what = `${role} run of "${scenario.name}"`;
  try {
    // One queue after the other (children before parents), so that the order in which
    // parents are released and run does not depend on two workers racing.
    for (const name of names) {
      const w = start(name);
      try {
        await waitFor(() => allFinal(prefix, [name], { ignoreWaitingChildren: true }), { timeout: 15000, what });
      } finally {
        await w.close();
      }
    }
    expect(await allFinal(prefix, names)).toBe(true);
  } finally {
    await Promise.all(flows.map((f) => f.close()));
  }
  return snapshot(client, prefix);
}

describe.each([6, 5])('oracle: BullMQ %i Worker vs our scripts', (major) => {
  test.each(ORACLE_SCENARIOS.map((sc) => [sc.name, sc]))('%s', async (_name, scenario) => {
    const oracle = await runScenario(major, scenario, 'oracle');
    const ours = await runScenario(major, scenario, 'impl');
    expect(Object.keys(oracle).length).toBeGreaterThan(3);
    expect(ours).toEqual(oracle);
  });
});
