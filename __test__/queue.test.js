'use strict';
// Our Queue (producer and admin side) against the real BullMQ: what it stores must be what
// BullMQ's Queue.add stores, byte for byte; BullMQ's Worker and ours must process its jobs;
// its getters, counts, pause/resume, drain, clean and job.retry() must read and leave what
// BullMQ's own Queue reads and leaves; and it must do all that on the process's two sockets.
const qn = require('..');
const { freePort, ourClients, waitFor, sleep } = require('./helpers/redis-server');
const { bullmq, uniqueQueue, uniquePrefix, connectionFor } = require('./helpers/bull');
const { snapshot, scanAll } = require('./helpers/snapshot');
const { useRedis } = require('./helpers/suite');

const { redis, inspect, ourQueue, bullQueue, ourWorker, bullWorker, streamEntries: events } = useRedis();

/** A BullMQ worker that only moves jobs by hand (getNextJob / moveToCompleted / moveToFailed). */
function manualWorker(name, prefix) {
  return bullWorker(6, name, null, { prefix, autorun: false, skipStalledCheck: true, skipLockRenewal: true });
}

/**
 * Snapshot of a prefix (helpers/snapshot.js) without meta.version (BullMQ's Queue writes its
 * version; ours does not), and with the due time of `delayed` events left out: two runs add
 * their jobs at different moments, so it is compared exactly elsewhere, relative to each job's
 * timestamp.
 */
async function comparable(prefix) {
  const s = await snapshot(inspect, prefix);
  for (const [rel, entry] of Object.entries(s)) {
    if (rel.endsWith(':meta')) delete entry.value.version;
    if (entry.type === 'stream') {
      for (const e of entry.value) if (e.event === 'delayed') e.delay = '<due>';
    }
  }
  return s;
}

/** True once the job is completed, failed or deleted. */
async function isFinal(prefix, name, id) {
  const base = `${prefix}:${name}`;
  if ((await inspect.exists(`${base}:${id}`)) === 0) return true;
  return (await inspect.zscore(`${base}:completed`, id)) !== null || (await inspect.zscore(`${base}:failed`, id)) !== null;
}

async function allFinal(prefix, name, ids, timeout = 15000) {
  await waitFor(async () => (await Promise.all(ids.map((id) => isFinal(prefix, name, id)))).every(Boolean), {
    timeout,
    what: `jobs ${ids.join(',')} to finish`,
  });
}

// Adds with the same inputs, in the same order, through both producers. Data, option key
// orders, custom ids, deduplication (simple and TTL), defaults, fixed timestamps.
const CASES = [
  ['plain', { a: 1, s: 'x/y', u: 'é', nested: { z: 1, a: [1, { b: null }] } }, undefined],
  ['no-data', undefined, {}],
  ['prio', [1, 2, 3], { priority: 7 }],
  ['prio-max', 'a string', { priority: 2097151, lifo: true }],
  ['lifo', null, { lifo: true }],
  ['delayed', { d: 1 }, { delay: 60000 }],
  ['delayed-prio', {}, { delay: 60000, priority: 3, attempts: 4, backoff: 250 }],
  ['backoff', {}, { attempts: 3, backoff: { type: 'exponential', delay: 100, jitter: 0.5 } }],
  ['custom', {}, { jobId: 'order-42', removeOnComplete: true, removeOnFail: { age: 3600, count: 10 } }],
  ['custom-dup', { again: true }, { jobId: 'order-42' }],
  ['keep', {}, { removeOnComplete: 5, removeOnFail: false, keepLogs: 3, stackTraceLimit: 2 }],
  ['dedup', { n: 1 }, { deduplication: { id: 'dd' } }],
  ['dedup-again', { n: 2 }, { deduplication: { id: 'dd' } }],
  ['dedup-ttl', {}, { deduplication: { id: 'tt', ttl: 60000 } }],
  ['dedup-ttl-again', {}, { deduplication: { id: 'tt', ttl: 60000 } }],
  ['ts', {}, { timestamp: 1700000000000 }],
  ['ts-delay', {}, { timestamp: 1700000000000, delay: 5000 }],
  ['extra-keys', { big: 12345678901234 }, { zeta: { z: 1, a: [] }, alpha: 'x/y', attempts: 1, jobId: 'extra-1' }],
];

async function compareStores(name, pa, pb) {
  // Job hashes: equal but for the creation time (equal too when the job fixed it).
  const ha = await scanAll(inspect, `${pa}:${name}:*`);
  const hb = await scanAll(inspect, `${pb}:${name}:*`);
  expect(ha.map((k) => k.slice(pa.length))).toEqual(hb.map((k) => k.slice(pb.length)));
  const timestamps = { a: {}, b: {} };
  for (const key of ha) {
    if ((await inspect.type(key)) !== 'hash' || key.endsWith(':meta')) continue;
    const a = await inspect.hgetall(key);
    const b = await inspect.hgetall(pb + key.slice(pa.length));
    const id = key.slice(`${pa}:${name}:`.length);
    timestamps.a[id] = Number(a.timestamp);
    timestamps.b[id] = Number(b.timestamp);
    if (!(JSON.parse(a.opts).timestamp > 0)) {
      expect(Math.abs(Number(a.timestamp) - Number(b.timestamp))).toBeLessThan(5000);
      delete a.timestamp;
      delete b.timestamp;
    }
    // Same fields with the same bytes, and (listpack-encoded hashes) in the same order.
    expect(a).toEqual(b);
    if ((await inspect.object('ENCODING', key)) === 'listpack') expect(Object.keys(a)).toEqual(Object.keys(b));
  }
  // Every key, normalised (times, prefix), marker aside.
  expect(await comparable(pa)).toEqual(await comparable(pb));
  // Exact scores: prioritized as is; delayed as (due - timestamp, sequence).
  expect(await inspect.zrange(`${pa}:${name}:prioritized`, 0, -1, 'WITHSCORES')).toEqual(
    await inspect.zrange(`${pb}:${name}:prioritized`, 0, -1, 'WITHSCORES'),
  );
  // The sequence part depends on which jobs share a due millisecond, and that depends on the
  // wall clock of each add (on a busy machine two adds of a bulk can fall in different ms).
  // So each side must follow the rule itself (seq = earlier jobs due in the same ms), and
  // the sides are compared on what the rule does not decide: ids, order, due - timestamp.
  const delayedShape = async (p, ts) => {
    const z = await inspect.zrange(`${p}:${name}:delayed`, 0, -1, 'WITHSCORES');
    const out = [];
    const perMs = new Map();
    for (let i = 0; i < z.length; i += 2) {
      const score = Number(z[i + 1]);
      const due = Math.floor(score / 4096);
      const seq = perMs.get(due) || 0;
      perMs.set(due, seq + 1);
      expect(score % 4096).toBe(seq);
      out.push([z[i], due - ts[z[i]]]);
    }
    return out;
  };
  expect(await delayedShape(pa, timestamps.a)).toEqual(await delayedShape(pb, timestamps.b));
  // Marker: same members; the delay marker points at the earliest delayed job's score / 4096.
  const markerShape = async (p) => {
    const m = await inspect.zrange(`${p}:${name}:marker`, 0, -1, 'WITHSCORES');
    const first = await inspect.zrange(`${p}:${name}:delayed`, 0, 0, 'WITHSCORES');
    const out = [];
    for (let i = 0; i < m.length; i += 2) {
      out.push([m[i], m[i] === '1' ? Number(m[i + 1]) === Number(first[1]) / 4096 : m[i + 1]]);
    }
    return out;
  };
  expect(await markerShape(pa)).toEqual(await markerShape(pb));
  // Events field by field; a `delayed` event's due time relative to the job's timestamp.
  const eventShape = async (p, ts) =>
    (await events(`${p}:${name}:events`)).map((e) => (e.event === 'delayed' ? { ...e, delay: Number(e.delay) - ts[e.jobId] } : e));
  expect(await eventShape(pa, timestamps.a)).toEqual(await eventShape(pb, timestamps.b));
  // Counters.
  for (const k of ['id', 'pc']) {
    expect(await inspect.get(`${pa}:${name}:${k}`)).toEqual(await inspect.get(`${pb}:${name}:${k}`));
  }
  expect(await inspect.pttl(`${pa}:${name}:de:tt`) > 0).toBe(await inspect.pttl(`${pb}:${name}:de:tt`) > 0);
}

describe('what add stores', () => {
  test.each([
    ['no defaults', undefined],
    ['defaultJobOptions', { attempts: 2, removeOnComplete: 100, backoff: { type: 'fixed', delay: 10 }, lifo: false }],
  ])('is byte for byte what BullMQ 6 Queue.add stores (%s)', async (_label, defaultJobOptions) => {
    const name = uniqueQueue('bytes');
    const [pa, pb] = [uniquePrefix('oa'), uniquePrefix('ob')];
    const ours = ourQueue(name, { prefix: pa, defaultJobOptions });
    const theirs = bullQueue(6, name, { prefix: pb, defaultJobOptions });
    const waiting = [];
    ours.on('waiting', (job) => waiting.push(job.id));
    for (const [jobName, data, opts] of CASES) {
      const a = await ours.add(jobName, data, opts);
      const b = await theirs.add(jobName, data, opts);
      expect([jobName, a.id]).toEqual([jobName, b.id]);
      expect(a.name).toBe(jobName);
      expect(a.data).toEqual(data);
      expect(a.opts).toEqual(b.opts);
    }
    expect(waiting).toHaveLength(CASES.length);
    await compareStores(name, pa, pb);
  });

  test('addBulk stores what BullMQ 6 addBulk stores, in one round trip', async () => {
    const name = uniqueQueue('bulk');
    const [pa, pb] = [uniquePrefix('oa'), uniquePrefix('ob')];
    const ours = ourQueue(name, { prefix: pa, defaultJobOptions: { attempts: 5 } });
    const theirs = bullQueue(6, name, { prefix: pb, defaultJobOptions: { attempts: 5 } });
    const jobs = CASES.map(([n, data, opts]) => ({ name: n, data, opts }));
    for (let i = 0; i < 100; i++) jobs.push({ name: `n${i}`, data: { i }, opts: i % 3 ? { priority: i % 5 } : { lifo: i % 2 === 0 } });
    // The script is loaded on both sides first, so that MONITOR shows only real calls.
    await ours.add('warm-up', {});
    await theirs.add('warm-up', {});
    // Count the script calls that reach Redis while our addBulk runs.
    const monitor = await inspect.monitor();
    const calls = [];
    monitor.on('monitor', (_t, args) => {
      if (/^eval/i.test(args[0]) && args.some((a) => a.includes(`${pa}:${name}`))) calls.push(args[0]);
    });
    const a = await ours.addBulk(jobs);
    await ours.add('probe', {});
    await waitFor(() => calls.length >= 2, { what: 'the probe script call in MONITOR' });
    monitor.disconnect();
    expect(calls).toHaveLength(2); // the bulk and the probe
    const b = await theirs.addBulk(jobs);
    await theirs.add('probe', {});
    expect(a.map((j) => j.id)).toEqual(b.map((j) => j.id));
    await compareStores(name, pa, pb);
  });
});

describe.each([
  ['a BullMQ 6 Worker', (name, processor, opts) => bullWorker(6, name, processor, opts)],
  ['our Worker', (name, processor, opts) => ourWorker(name, processor, opts)],
])('jobs our Queue adds are processed by %s', (_label, makeWorker) => {
  test('priority order with FIFO ties, lifo, then delays', async () => {
    const name = uniqueQueue('order');
    const q = ourQueue(name);
    await q.add('p', { n: 'low-1' }, { priority: 4 });
    await q.add('p', { n: 'crit-1' }, { priority: 1 });
    await q.add('p', { n: 'plain-1' });
    await q.add('p', { n: 'low-2' }, { priority: 4 });
    await q.add('p', { n: 'crit-2' }, { priority: 1 });
    await q.add('p', { n: 'plain-2' });
    await q.addBulk([
      { name: 'p', data: { n: 'high' }, opts: { priority: 2 } },
      { name: 'p', data: { n: 'lifo' }, opts: { lifo: true } },
    ]);
    const seen = [];
    const started = {};
    makeWorker(name, async (job) => {
      seen.push(job.data.n);
      started[job.data.n] = Date.now() - job.timestamp;
    });
    const late = await q.add('d', { n: 'late' }, { delay: 600 });
    await allFinal('bull', name, ['1', '2', '3', '4', '5', '6', '7', '8', late.id]);
    expect(seen.slice(0, 8)).toEqual(['lifo', 'plain-1', 'plain-2', 'crit-1', 'crit-2', 'high', 'low-1', 'low-2']);
    expect(seen[8]).toBe('late');
    expect(started.late).toBeGreaterThanOrEqual(600);
    expect(await q.getCompletedCount()).toBe(9);
  });

  test('attempts with backoff, then failure; removeOnComplete / removeOnFail', async () => {
    const name = uniqueQueue('retry');
    const q = ourQueue(name);
    const tries = {};
    makeWorker(
      name,
      async (job) => {
        tries[job.id] = (tries[job.id] || 0) + 1;
        if (job.data.okOn && tries[job.id] >= job.data.okOn) return { ok: job.id };
        throw new Error(`boom ${tries[job.id]}`);
      },
      { concurrency: 4 },
    );
    const fixed = await q.add('f', { okOn: 3 }, { attempts: 3, backoff: { type: 'fixed', delay: 100 } });
    const expo = await q.add('e', {}, { attempts: 2, backoff: { type: 'exponential', delay: 50 } });
    const gone = await q.add('g', { okOn: 1 }, { removeOnComplete: true });
    const kept = await q.add('g', { okOn: 1 }, { removeOnComplete: false });
    await allFinal('bull', name, [fixed.id, expo.id, gone.id, kept.id]);

    const f = await q.getJob(fixed.id);
    expect(f.returnvalue).toEqual({ ok: fixed.id });
    expect(f.attemptsMade).toBe(3);
    const e = await q.getJob(expo.id);
    expect(e.failedReason).toBe('boom 2');
    expect(e.attemptsMade).toBe(2);
    expect(e.stacktrace.length).toBeGreaterThan(0);
    expect(await q.getJob(gone.id)).toBeUndefined();
    expect(tries[gone.id]).toBe(1);
    expect((await q.getJob(kept.id)).returnvalue).toEqual({ ok: kept.id });
    expect((await q.getFailed()).map((j) => j.id)).toEqual([expo.id]);

    // removeOnFail: n keeps the newest n failures of the queue.
    const other = uniqueQueue('keep');
    const q2 = ourQueue(other);
    makeWorker(other, async () => {
      throw new Error('no');
    });
    const first = await q2.add('k', {}, { removeOnFail: 1 });
    await allFinal('bull', other, [first.id]);
    const second = await q2.add('k', {}, { removeOnFail: 1 });
    await waitFor(async () => !(await q2.getJob(first.id)), { what: 'removeOnFail: 1 to drop the older failure' });
    expect((await q2.getFailed()).map((j) => j.id)).toEqual([second.id]);
  });
});

describe('reading what BullMQ wrote', () => {
  // Every state, written by BullMQ 6: completed (with progress and logs), failed, active,
  // waiting (one lifo), prioritized, delayed.
  async function bullState(name, prefix = 'bull') {
    const q = bullQueue(6, name, { prefix });
    const w = manualWorker(name, prefix);
    const finish = async (ok, result) => {
      const job = await w.getNextJob('tok', { block: false });
      if (ok) {
        await job.updateProgress({ step: 2 });
        await job.log('first line');
        await job.log('second line');
        await job.moveToCompleted(result, 'tok', false);
      } else {
        await job.moveToFailed(new Error('it broke'), 'tok', false);
      }
      return job.id;
    };
    await q.add('c', { n: 1 }, { removeOnComplete: false });
    await finish(true, { answer: 42 });
    await q.add('c', { n: 2 });
    await finish(true, 'text');
    await q.add('f', { n: 3 }, { attempts: 1 });
    await finish(false);
    await q.add('f', { n: 4 }, { priority: 2 });
    await finish(false);
    await q.add('a', { n: 5 });
    await w.getNextJob('tok-active', { block: false });
    await q.add('w', { n: 6 });
    await q.add('w', { n: 7 }, { jobId: 'custom-w' });
    await q.add('w', { n: 8 }, { lifo: true });
    await q.add('p', { n: 9 }, { priority: 3 });
    await q.add('p', { n: 10 }, { priority: 1 });
    await q.add('d', { n: 11 }, { delay: 60000 });
    await q.add('d', { n: 12 }, { delay: 30000, deduplication: { id: 'x' } });
    return q;
  }

  const FIELDS = ['id', 'name', 'data', 'opts', 'progress', 'attemptsMade', 'failedReason', 'stacktrace', 'returnvalue',
    'finishedOn', 'processedOn', 'timestamp', 'delay', 'priority'];
  const pick = (job) => Object.fromEntries(FIELDS.map((f) => [f, job[f]]));

  test('counts, getters and getJob agree with BullMQ 6 Queue', async () => {
    const name = uniqueQueue('read');
    const theirs = await bullState(name);
    const ours = ourQueue(name);

    expect(await ours.getJobCounts()).toEqual(await theirs.getJobCounts());
    const types = ['waiting', 'paused', 'prioritized', 'delayed', 'active', 'completed', 'failed', 'waiting-children'];
    expect(await ours.getJobCounts(...types)).toEqual(await theirs.getJobCounts(...types));
    expect(await ours.getJobCounts(types)).toEqual(await theirs.getJobCounts(...types));
    expect(await ours.getJobCounts()).toMatchObject({ waiting: 3, prioritized: 2, delayed: 2, active: 1, completed: 2, failed: 2 });
    for (const m of ['getWaitingCount', 'getActiveCount', 'getCompletedCount', 'getFailedCount', 'getDelayedCount',
      'getPrioritizedCount', 'getWaitingChildrenCount', 'count']) {
      expect([m, await ours[m]()]).toEqual([m, await theirs[m]()]);
    }
    expect(await ours.isPaused()).toBe(false);

    for (const getter of ['getWaiting', 'getActive', 'getDelayed', 'getCompleted', 'getFailed', 'getPrioritized']) {
      for (const [start, end] of [[0, -1], [0, 0], [1, 2], [1, -1], [5, 9]]) {
        const a = (await ours[getter](start, end)).map(pick);
        const b = (await theirs[getter](start, end)).map(pick);
        expect([getter, start, end, a]).toEqual([getter, start, end, b]);
      }
    }
    const all = ['waiting', 'active', 'completed', 'failed', 'delayed', 'prioritized'];
    expect((await ours.getJobs(all, 0, -1, true)).map(pick)).toEqual((await theirs.getJobs(all, 0, -1, true)).map(pick));
    expect((await ours.getJobs(all)).map(pick)).toEqual((await theirs.getJobs(all)).map(pick));

    const completed = await ours.getJob('1');
    expect(completed).toMatchObject({ id: '1', returnvalue: { answer: 42 }, progress: { step: 2 }, attemptsMade: 1 });
    expect(completed.finishedOn).toBeGreaterThan(0);
    const failed = await ours.getJob('3');
    expect(failed).toMatchObject({ failedReason: 'it broke', attemptsMade: 1 });
    expect(failed.stacktrace[0]).toContain('it broke');
    for (const id of ['1', '3', '5', 'custom-w', '12', 'nope']) {
      const a = await ours.getJob(id);
      const b = await theirs.getJob(id);
      expect(a && pick(a)).toEqual(b && pick(b));
    }
    expect((await ours.getJob('12')).opts.deduplication).toEqual({ id: 'x' });
    expect(await ours.getJobLogs('1')).toEqual(await theirs.getJobLogs('1'));
    expect(await ours.getJobLogs('1')).toEqual({ logs: ['first line', 'second line'], count: 2 });
    expect(await ours.getJobLogs('1', 0, 0, false)).toEqual(await theirs.getJobLogs('1', 0, 0, false));
    expect(await ours.getJobLogs('nope')).toEqual({ logs: [], count: 0 });
  });

  test('jobs from a BullMQ 5 producer read the same', async () => {
    const name = uniqueQueue('read5');
    const q5 = bullQueue(5, name);
    await q5.add('x', { v: 5 }, { priority: 2, attempts: 3, backoff: 10 });
    await q5.add('y', { v: 6 }, { delay: 10000 });
    const ours = ourQueue(name);
    const q6 = bullQueue(6, name);
    expect(await ours.getJobCounts()).toEqual(await q6.getJobCounts());
    expect((await ours.getPrioritized()).map(pick)).toEqual((await q6.getPrioritized()).map(pick));
    expect((await ours.getDelayed()).map(pick)).toEqual((await q6.getDelayed()).map(pick));
  });
});

describe('pause and resume', () => {
  test('ours pauses: BullMQ sees it and its worker stops; ours resumes: it runs', async () => {
    const name = uniqueQueue('pause');
    const ours = ourQueue(name);
    const theirs = bullQueue(6, name);
    const done = [];
    bullWorker(6, name, async (job) => {
      done.push(job.data.n);
    });
    await ours.add('x', { n: 1 });
    await waitFor(() => done.length === 1, { what: 'the first job' });
    await ours.pause();
    expect(await theirs.isPaused()).toBe(true);
    expect(await ours.isPaused()).toBe(true);
    await ours.add('x', { n: 2 });
    expect(await inspect.zrange(`bull:${name}:marker`, 0, -1)).toEqual([]);
    // Absence can only be shown by waiting: give the worker time it would need to run it.
    await sleep(700);
    expect(done).toEqual([1]);
    expect(await theirs.getWaitingCount()).toBe(1);
    await ours.resume();
    expect(await theirs.isPaused()).toBe(false);
    await waitFor(() => done.length === 2, { what: 'the job added while paused' });
    expect((await events(`bull:${name}:events`)).filter((e) => ['paused', 'resumed'].includes(e.event))).toEqual([
      { event: 'paused' },
      { event: 'resumed' },
    ]);
  });

  test('BullMQ pauses: ours reports it and our worker stops; resume from either side', async () => {
    const name = uniqueQueue('pause6');
    const ours = ourQueue(name);
    const theirs = bullQueue(6, name);
    const done = [];
    ourWorker(name, async (job) => {
      done.push(job.data.n);
    });
    await theirs.pause();
    expect(await ours.isPaused()).toBe(true);
    await ours.add('x', { n: 1 });
    await sleep(700);
    expect(done).toEqual([]);
    await theirs.resume();
    expect(await ours.isPaused()).toBe(false);
    await waitFor(() => done.length === 1, { what: 'the job after BullMQ resumed' });
    await theirs.pause();
    await ours.add('x', { n: 2 });
    await ours.resume();
    expect(await theirs.isPaused()).toBe(false);
    await waitFor(() => done.length === 2, { what: 'the job after ours resumed' });
  });

  test('pause and resume leave what BullMQ 6 leaves (marker included)', async () => {
    const name = uniqueQueue('ptwin');
    const [pa, pb] = [uniquePrefix('oa'), uniquePrefix('ob')];
    for (const p of [pa, pb]) {
      const q = bullQueue(6, name, { prefix: p });
      await q.add('w', { n: 1 });
      await q.add('p', { n: 2 }, { priority: 2 });
      await q.add('d', { n: 3 }, { delay: 60000 });
    }
    const ours = ourQueue(name, { prefix: pa });
    const theirs = bullQueue(6, name, { prefix: pb });
    // The delay marker's score is the earliest delayed score / 4096: compared as that relation.
    const marker = async (p) => {
      const m = await inspect.zrange(`${p}:${name}:marker`, 0, -1, 'WITHSCORES');
      const first = await inspect.zrange(`${p}:${name}:delayed`, 0, 0, 'WITHSCORES');
      return m.map((v, i) => (i % 2 === 1 && m[i - 1] === '1' ? Number(v) === Number(first[1]) / 4096 : v));
    };
    await ours.pause();
    await theirs.pause();
    expect(await comparable(pa)).toEqual(await comparable(pb));
    expect(await marker(pa)).toEqual([]);
    expect(await marker(pb)).toEqual([]);
    await ours.resume();
    await theirs.resume();
    expect(await comparable(pa)).toEqual(await comparable(pb));
    expect(await marker(pa)).toEqual(await marker(pb));
    // Nothing waiting, only delayed: resume re-creates the delay marker.
    await ours.drain();
    await theirs.drain();
    await ours.pause();
    await theirs.pause();
    await ours.resume();
    await theirs.resume();
    expect(await marker(pa)).toEqual(await marker(pb));
    expect((await marker(pa))[0]).toBe('1');
  });

  test('resume migrates a BullMQ 5 paused list back into wait, in order', async () => {
    const name = uniqueQueue('legacy');
    const [pa, pb] = [uniquePrefix('oa'), uniquePrefix('ob')];
    // 7100 jobs paused by BullMQ 5 (its pause renames wait to paused), then one added by a
    // v6 producer into wait: resume has to move them in more than one batch.
    for (const p of [pa, pb]) {
      const q5 = bullQueue(5, name, { prefix: p });
      await q5.addBulk(Array.from({ length: 7100 }, (_, i) => ({ name: 'j', data: { i } })));
      await q5.pause();
      expect(await inspect.exists(`${p}:${name}:paused`)).toBe(1);
      expect(await inspect.exists(`${p}:${name}:wait`)).toBe(0);
      await q5.close();
    }
    const ours = ourQueue(name, { prefix: pa });
    expect(await ours.isPaused()).toBe(true);
    const theirs = bullQueue(6, name, { prefix: pb });
    for (const p of [pa, pb]) await bullQueue(6, name, { prefix: p }).add('late', { i: 'late' });
    for (const p of [pa, pb]) expect(await inspect.llen(`${p}:${name}:wait`)).toBe(1);
    await ours.resume();
    await theirs.resume();
    for (const p of [pa, pb]) expect(await inspect.exists(`${p}:${name}:paused`)).toBe(0);
    const wa = await inspect.lrange(`${pa}:${name}:wait`, 0, -1);
    expect(wa).toEqual(await inspect.lrange(`${pb}:${name}:wait`, 0, -1));
    expect(wa).toHaveLength(7101);
    // Workers take from the right: the oldest legacy job first, the late one last.
    expect(wa[wa.length - 1]).toBe('1');
    expect(wa[0]).toBe('7101');
    expect(await events(`${pa}:${name}:events`)).toEqual(await events(`${pb}:${name}:events`));
    expect(await inspect.zrange(`${pa}:${name}:marker`, 0, -1, 'WITHSCORES')).toEqual(['0', '0']);
  });
});

describe('bad input', () => {
  test('is rejected with ERR_INVALID_OPTION before anything is written', async () => {
    expect(() => new qn.Queue('a:b')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_OPTION' }));
    expect(() => new qn.Queue('')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_OPTION' }));
    expect(() => new qn.Queue('ok', { prefix: '' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_OPTION' }));
    expect(() => new qn.Queue('ok', { defaultJobOptions: 5 })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_OPTION' }));

    const name = uniqueQueue('bad');
    const prefix = uniquePrefix('bad');
    const q = ourQueue(name, { prefix });
    await q.add('fine', { ok: true });
    const before = await scanAll(inspect, `${prefix}*`);
    const idBefore = await inspect.get(`${prefix}:${name}:id`);
    const circular = {};
    circular.self = circular;
    const cases = [
      ['circular data', () => q.add('x', circular), 'data'],
      ['BigInt data', () => q.add('x', { n: 10n }), 'data'],
      ['function data', () => q.add('x', () => 1), 'data'],
      ['numeric jobId', () => q.add('x', {}, { jobId: '123' }), 'opts.jobId'],
      ['jobId 0', () => q.add('x', {}, { jobId: '0' }), 'opts.jobId'],
      ['jobId with a colon', () => q.add('x', {}, { jobId: 'a:b' }), 'opts.jobId'],
      ['negative priority', () => q.add('x', {}, { priority: -1 }), 'opts.priority'],
      ['priority too high', () => q.add('x', {}, { priority: 2097152 }), 'opts.priority'],
      ['float priority', () => q.add('x', {}, { priority: 1.5 }), 'opts.priority'],
      ['negative delay', () => q.add('x', {}, { delay: -1 }), 'opts.delay'],
      ['string delay', () => q.add('x', {}, { delay: '5' }), 'opts.delay'],
      ['bad backoff', () => q.add('x', {}, { backoff: 'soon' }), 'opts.backoff'],
      ['bad jitter', () => q.add('x', {}, { backoff: { type: 'fixed', delay: 1, jitter: 3 } }), 'opts.backoff.jitter'],
      ['dedup without id', () => q.add('x', {}, { deduplication: { ttl: 5 } }), 'opts.deduplication.id'],
      ['dedup with parent', () => q.add('x', {}, { deduplication: { id: 'd' }, parent: { id: '1', queue: `${prefix}:${name}` } }), 'opts.deduplication'],
      ['parent without queue', () => q.add('x', {}, { parent: { id: '1' } }), 'opts.parent.queue'],
      ['bad removeOnComplete', () => q.add('x', {}, { removeOnComplete: 'yes' }), 'opts.removeOnComplete'],
      ['name not a string', () => q.add(5, {}), 'name'],
      ['opts not an object', () => q.add('x', {}, 'fast'), 'opts'],
      ['bulk with one bad job', () => q.addBulk([{ name: 'a', data: {} }, { name: 'b', data: {} }, { name: 'c', data: {}, opts: { priority: -3 } }]), 'jobs[2].opts.priority'],
      ['bulk with bad data', () => q.addBulk([{ name: 'a', data: {} }, { name: 'b', data: circular }]), 'jobs[1].data'],
      ['bulk not an array', () => q.addBulk({ name: 'a' }), 'jobs'],
    ];
    for (const [label, call, option] of cases) {
      const err = await call().then(
        () => new Error(`${label}: resolved`),
        (e) => e,
      );
      expect([label, err.code]).toEqual([label, 'ERR_INVALID_OPTION']);
      expect(err).toBeInstanceOf(qn.QueueNativeError);
      expect([label, err.message]).toEqual([label, expect.stringContaining(`\`${option}\``)]);
    }
    expect(await scanAll(inspect, `${prefix}*`)).toEqual(before);
    expect(await inspect.get(`${prefix}:${name}:id`)).toBe(idBefore);
    expect(await q.getJobCounts('waiting')).toEqual({ waiting: 1 });
    await expect(q.getJobCounts('meta')).rejects.toMatchObject({ code: 'ERR_INVALID_OPTION' });
    await expect(q.clean(-1, 0, 'completed')).rejects.toMatchObject({ code: 'ERR_INVALID_OPTION' });
    await expect(q.clean(0, 0, 'meta')).rejects.toMatchObject({ code: 'ERR_INVALID_OPTION' });
  });

  test('a closed queue refuses calls with ERR_CLOSED', async () => {
    const q = ourQueue(uniqueQueue('closed'));
    await q.close();
    await q.close();
    await expect(q.add('x', {})).rejects.toMatchObject({ code: 'ERR_CLOSED' });
    await expect(q.getJobCounts()).rejects.toMatchObject({ code: 'ERR_CLOSED' });
  });
});

describe('deduplication', () => {
  test('a deduplicated add returns the owner; the id is free again once the owner finished', async () => {
    const name = uniqueQueue('dedup');
    const q = ourQueue(name);
    const a = await q.add('x', { n: 1 }, { deduplication: { id: 'same' } });
    const b = await q.add('x', { n: 2 }, { deduplication: { id: 'same' } });
    expect(b.id).toBe(a.id);
    expect(await q.getJobCounts('waiting')).toEqual({ waiting: 1 });
    expect((await q.getJob(a.id)).data).toEqual({ n: 1 });
    expect((await events(`bull:${name}:events`)).pop()).toEqual({
      event: 'deduplicated', jobId: a.id, deduplicationId: 'same', deduplicatedJobId: '2',
    });
    const seen = [];
    ourWorker(name, async (job) => {
      seen.push(job.data.n);
    });
    await allFinal('bull', name, [a.id]);
    expect(await inspect.exists(`bull:${name}:de:same`)).toBe(0);
    const c = await q.add('x', { n: 3 }, { deduplication: { id: 'same' } });
    expect(c.id).toBe('3');
    await allFinal('bull', name, [c.id]);
    expect(seen).toEqual([1, 3]);
  });

  test('with a TTL the id deduplicates until the key expires', async () => {
    const name = uniqueQueue('dedupttl');
    const q = ourQueue(name);
    const a = await q.add('x', {}, { deduplication: { id: 't', ttl: 400 } });
    expect(await inspect.pttl(`bull:${name}:de:t`)).toBeGreaterThan(0);
    expect((await q.add('x', {}, { deduplication: { id: 't', ttl: 400 } })).id).toBe(a.id);
    await waitFor(async () => (await inspect.exists(`bull:${name}:de:t`)) === 0, { what: 'the TTL to expire' });
    expect((await q.add('x', {}, { deduplication: { id: 't', ttl: 400 } })).id).not.toBe(a.id);
  });

  test('a key whose owner is gone is taken over', async () => {
    const name = uniqueQueue('stale');
    const q = ourQueue(name);
    const a = await q.add('x', {}, { deduplication: { id: 's' } });
    await inspect.del(`bull:${name}:${a.id}`);
    const b = await q.add('x', {}, { deduplication: { id: 's' } });
    expect(b.id).not.toBe(a.id);
    expect(await inspect.get(`bull:${name}:de:s`)).toBe(b.id);
  });
});

describe('parent option', () => {
  test('a child added under a waiting parent is stored and linked as BullMQ 6 does', async () => {
    const name = uniqueQueue('kids');
    const parents = uniqueQueue('parents');
    const [pa, pb] = [uniquePrefix('oa'), uniquePrefix('ob')];
    for (const p of [pa, pb]) {
      const flow = new bullmq[6].FlowProducer({ connection: connectionFor(redis), prefix: p });
      await flow.add({
        name: 'parent', queueName: parents, data: { p: true }, opts: { jobId: 'parent-1' },
        children: [{ name: 'first', queueName: name, data: { c: 0 }, opts: { jobId: 'child-0' } }],
      });
      await flow.close();
    }
    const ours = ourQueue(name, { prefix: pa });
    const theirs = bullQueue(6, name, { prefix: pb });
    const opts = (p) => ({ parent: { id: 'parent-1', queue: `${p}:${parents}` }, failParentOnFailure: true });
    const a = await ours.add('second', { c: 1 }, opts(pa));
    const b = await theirs.add('second', { c: 1 }, opts(pb));
    expect(a.id).toBe(b.id);
    const ha = await inspect.hgetall(`${pa}:${name}:${a.id}`);
    const hb = await inspect.hgetall(`${pb}:${name}:${b.id}`);
    expect(ha.parentKey).toBe(`${pa}:${parents}:parent-1`);
    expect(JSON.parse(ha.parent)).toEqual({ id: 'parent-1', queueKey: `${pa}:${parents}`, fpof: true });
    for (const h of [ha, hb]) delete h.timestamp;
    expect(JSON.stringify(ha).split(pa).join('<p>')).toBe(JSON.stringify(hb).split(pb).join('<p>'));
    expect((await inspect.smembers(`${pa}:${parents}:parent-1:dependencies`)).sort()).toEqual([
      `${pa}:${name}:${a.id}`,
      `${pa}:${name}:child-0`,
    ]);
    expect(await comparable(pa)).toEqual(await comparable(pb));

    // Our worker finishes both children: the parent leaves waiting-children.
    ourWorker(name, async (job) => ({ c: job.data.c }), { prefix: pa });
    await waitFor(async () => (await inspect.llen(`${pa}:${parents}:wait`)) === 1, { what: 'the parent to be released' });
    expect(await inspect.hgetall(`${pa}:${parents}:parent-1:processed`)).toEqual({
      [`${pa}:${name}:child-0`]: '{"c":0}',
      [`${pa}:${name}:${a.id}`]: '{"c":1}',
    });
  });

  test('a missing parent is ERR_JOB_NOT_FOUND and nothing is written (as BullMQ: no id used)', async () => {
    const name = uniqueQueue('orphan');
    const q = ourQueue(name);
    await expect(q.add('x', {}, { parent: { id: 'nope', queue: 'bull:nowhere' } })).rejects.toMatchObject({
      code: 'ERR_JOB_NOT_FOUND',
      message: `Missing key for parent job bull:nowhere:nope. addJob`,
    });
    // Only the meta a Queue writes when constructed (as BullMQ's does): no id, no job.
    expect(await scanAll(inspect, `bull:${name}:*`)).toEqual([`bull:${name}:meta`]);
  });
});

describe('job.retry(), drain and clean', () => {
  // The same BullMQ-written state under two prefixes: one for our call, one for BullMQ's.
  async function twins(name, build) {
    const [pa, pb] = [uniquePrefix('oa'), uniquePrefix('ob')];
    for (const p of [pa, pb]) await build(p);
    return [pa, pb];
  }

  async function mixedState(p, name) {
    const q = bullQueue(6, name, { prefix: p });
    const w = manualWorker(name, p);
    for (let i = 0; i < 3; i++) {
      await q.add('c', { i }, { jobId: `c${i}` });
      const job = await w.getNextJob('t', { block: false });
      await job.moveToCompleted({ i }, 't', false);
    }
    await q.add('f', { i: 'f1' }, { jobId: 'f1', attempts: 1 });
    await q.add('f', { i: 'f2' }, { jobId: 'f2', attempts: 1, priority: 5 });
    for (let i = 0; i < 2; i++) {
      const job = await w.getNextJob('t', { block: false });
      await job.moveToFailed(new Error(`failed ${job.id}`), 't', false);
    }
    await q.add('w', {}, { jobId: 'w1' });
    await q.add('w', {}, { jobId: 'w2', lifo: true });
    await q.add('p', {}, { jobId: 'p1', priority: 2 });
    await q.add('d', {}, { jobId: 'd1', delay: 60000 });
    await q.add('d', {}, { jobId: 'd2', delay: 30000, deduplication: { id: 'dd' } });
  }

  test('retry() of failed jobs does what BullMQ 6 job.retry() does', async () => {
    const name = uniqueQueue('retry');
    const [pa, pb] = await twins(name, (p) => mixedState(p, name));
    const ours = ourQueue(name, { prefix: pa });
    const theirs = bullQueue(6, name, { prefix: pb });
    const failed = await ours.getFailed();
    expect(failed.map((j) => j.id).sort()).toEqual(['f1', 'f2']);
    for (const job of failed) {
      await job.retry();
      expect(job.failedReason).toBeNull();
    }
    for (const job of await theirs.getFailed()) await job.retry();
    expect(await comparable(pa)).toEqual(await comparable(pb));
    expect(await inspect.zrange(`${pa}:${name}:prioritized`, 0, -1)).toContain('f2');
    expect(await inspect.hexists(`${pa}:${name}:f1`, 'failedReason')).toBe(0);
    // Only failed jobs can be retried as failed; completed ones with state 'completed'.
    const [completed] = await ours.getCompleted(0, 0);
    await expect(completed.retry()).rejects.toMatchObject({ code: 'ERR_JOB_STATE' });
    await completed.retry('completed', { resetAttemptsMade: true });
    const [theirsCompleted] = await theirs.getCompleted(0, 0);
    await theirsCompleted.retry('completed', { resetAttemptsMade: true });
    expect(await comparable(pa)).toEqual(await comparable(pb));
  });

  test('a retried job runs again', async () => {
    const name = uniqueQueue('rerun');
    const q = ourQueue(name);
    let calls = 0;
    ourWorker(name, async () => {
      calls += 1;
      if (calls === 1) throw new Error('first time');
      return 'second time';
    });
    const job = await q.add('x', {});
    await allFinal('bull', name, [job.id]);
    const [failed] = await q.getFailed();
    expect(failed.failedReason).toBe('first time');
    await failed.retry();
    await waitFor(async () => (await q.getCompletedCount()) === 1, { what: 'the retried job to complete' });
    expect((await q.getJob(job.id)).returnvalue).toBe('second time');
  });

  test('drain and drain(delayed) leave what BullMQ 6 leaves', async () => {
    const name = uniqueQueue('drain');
    const [pa, pb] = await twins(name, (p) => mixedState(p, name));
    const ours = ourQueue(name, { prefix: pa });
    const theirs = bullQueue(6, name, { prefix: pb });
    await ours.drain();
    await theirs.drain();
    expect(await comparable(pa)).toEqual(await comparable(pb));
    expect(await ours.getJobCounts('waiting', 'prioritized', 'delayed')).toEqual({ waiting: 0, prioritized: 0, delayed: 2 });
    await ours.drain(true);
    await theirs.drain(true);
    expect(await comparable(pa)).toEqual(await comparable(pb));
    expect(await ours.getDelayedCount()).toBe(0);
    expect(await inspect.exists(`${pa}:${name}:de:dd`)).toBe(0);
  });

  test('clean of each state leaves (and returns) what BullMQ 6 clean does', async () => {
    const name = uniqueQueue('clean');
    const [pa, pb] = await twins(name, (p) => mixedState(p, name));
    const ours = ourQueue(name, { prefix: pa });
    const theirs = bullQueue(6, name, { prefix: pb });
    const cleaned = [];
    ours.on('cleaned', (ids, type) => cleaned.push([type, ids.length]));
    // Everything is older than now + 0 grace; 60 s of grace spares it all.
    for (const [grace, limit, type] of [
      [60000, 0, 'completed'],
      [0, 2, 'completed'],
      [0, 0, 'completed'],
      [0, 1, 'failed'],
      [0, 0, 'wait'],
      [0, 0, 'delayed'],
      [0, 0, 'prioritized'],
      [0, 0, 'failed'],
    ]) {
      const a = await ours.clean(grace, limit, type);
      const b = await theirs.clean(grace, limit, type);
      expect([type, limit, a]).toEqual([type, limit, b]);
      expect(await comparable(pa)).toEqual(await comparable(pb));
    }
    expect(cleaned).toEqual([['completed', 0], ['completed', 2], ['completed', 1], ['failed', 1], ['wait', 2],
      ['delayed', 2], ['prioritized', 1], ['failed', 1]]);
    expect(await ours.getJobCounts()).toMatchObject({ completed: 0, failed: 0, waiting: 0, delayed: 0, prioritized: 0 });
  });
});

describe('connections', () => {
  test('5 Queues and 5 Workers at concurrency 10 use the process pair: at most 2 sockets', async () => {
    const names = Array.from({ length: 5 }, () => uniqueQueue('many'));
    const queues = names.map((n) => ourQueue(n));
    let done = 0;
    for (const n of names) {
      ourWorker(n, async () => {
        await sleep(5);
        done += 1;
      }, { concurrency: 10 });
    }
    await Promise.all(queues.map((q) => q.addBulk(Array.from({ length: 40 }, (_, i) => ({ name: 'j', data: { i } })))));
    await waitFor(() => done === 200, { timeout: 20000, what: '200 jobs' });
    for (const q of queues) expect(await q.getCompletedCount()).toBe(40);
    const sockets = await ourClients(inspect);
    expect(sockets.length).toBeLessThanOrEqual(2);
    expect(sockets.map((c) => c.name.split(':')[1]).sort()).toEqual(['blocking', 'command']);
    expect(qn.health().connections).toEqual({ command: 1, blocking: 1, events: 0 });
  });

  test('a queue used after shutdown() connects again', async () => {
    const name = uniqueQueue('again');
    const q = ourQueue(name);
    await q.add('x', {});
    await qn.shutdown();
    await q.add('y', {});
    expect(await q.getWaitingCount()).toBe(2);
  });

  test('connection errors reach the queue as error events with their code', async () => {
    const port = await freePort();
    const q = new qn.Queue(uniqueQueue('down'), { connection: { port, retry: { initialDelay: 50, maxDelay: 100 } } });
    const err = await new Promise((resolve) => q.once('error', resolve));
    expect(err).toBeInstanceOf(qn.QueueNativeError);
    expect(err.code).toBe('ERR_REDIS_UNREACHABLE');
    await q.close();
  });
});
