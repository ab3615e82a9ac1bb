'use strict';
// Deduplication modes on add (simple, ttl, extend, replace, keepLastIfActive, reschedule)
// against BullMQ 6.7's Queue: the same adds (and the same jobs taken and finished by hand)
// run through BullMQ's classes under one prefix and ours under another; the returned ids,
// the Redis state (keys, values, TTLs within a tolerance), the events stream and what each
// side's QueueEvents reports as `deduplicated` must be equal.
const qn = require('..');
const { useRedis } = require('./helpers/suite');
const { bullmq, uniqueQueue, uniquePrefix, connectionFor } = require('./helpers/bull');
const { snapshot } = require('./helpers/snapshot');

const { redis, inspect, closers } = useRedis();

// PTTLs measured on the two sides at slightly different moments may differ by this much.
const TTL_TOLERANCE_MS = 700;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function until(what, cond, ms = 5000) {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

function sideApi(side, name, prefix) {
  const keep = (x) => {
    x.on('error', () => {});
    closers.push(() => x.close());
    return x;
  };
  if (side === 'bull') {
    const connection = connectionFor(redis);
    return {
      queue: keep(new bullmq[6].Queue(name, { connection, prefix })),
      worker: keep(
        new bullmq[6].Worker(name, null, { connection, prefix, autorun: false, skipStalledCheck: true, skipLockRenewal: true }),
      ),
      events: keep(new bullmq[6].QueueEvents(name, { connection, prefix, lastEventId: '0' })),
    };
  }
  return {
    queue: keep(new qn.Queue(name, { prefix })),
    worker: keep(new qn.Worker(name, null, { prefix })),
    events: keep(new qn.QueueEvents(name, { prefix, lastEventId: '0' })),
  };
}

/**
 * Run `scenario` on both sides. It gets { queue, worker, take, finish, ttl, key } and returns
 * what it wants compared; `ttl(dedupId)` records the PTTL of that deduplication key (compared
 * within TTL_TOLERANCE_MS, -1 / -2 exactly). Returns BullMQ's side.
 */
async function twin(scenario) {
  const name = uniqueQueue('dedup');
  const sides = {};
  for (const side of ['bull', 'ours']) {
    const prefix = uniquePrefix(side);
    const api = sideApi(side, name, prefix);
    const deduplicated = [];
    api.events.on('deduplicated', (args) => deduplicated.push(args));
    await api.queue.waitUntilReady();
    await api.events.waitUntilReady();
    const ttls = [];
    const ctx = {
      ...api,
      side,
      key: (rel) => `${prefix}:${name}:${rel}`,
      ttl: async (id) => {
        ttls.push(await inspect.pttl(`${prefix}:${name}:de:${id}`));
      },
      take: async () => {
        const job = await api.worker.getNextJob('tok', { block: false });
        return job;
      },
      finish: (job, value = 'done') => job.moveToCompleted(value, 'tok', false),
      fail: (job) => job.moveToFailed(new Error('broke'), 'tok', false),
    };
    const result = JSON.parse(JSON.stringify(await scenario(ctx)));
    const eventsKey = `${prefix}:${name}:events`;
    const inStream = (await inspect.xrange(eventsKey, '-', '+')).filter(([, f]) => f[1] === 'deduplicated').length;
    await until(`${side} QueueEvents to report ${inStream} deduplicated events`, () => deduplicated.length >= inStream);
    const state = await snapshot(inspect, prefix);
    // BullMQ's Queue writes its version into meta, ours does not (see queue.test.js).
    for (const [rel, entry] of Object.entries(state)) if (rel.endsWith(':meta')) delete entry.value.version;
    sides[side] = { result, ttls, deduplicated, state };
  }
  if (process.env.DEDUP_DEBUG) console.log(JSON.stringify({ bull: [sides.bull.result, sides.bull.ttls], ours: [sides.ours.result, sides.ours.ttls] }));
  expect(sides.ours.result).toEqual(sides.bull.result);
  expect(sides.ours.state).toEqual(sides.bull.state);
  expect(sides.ours.deduplicated).toEqual(sides.bull.deduplicated);
  expect(sides.ours.ttls.length).toBe(sides.bull.ttls.length);
  sides.bull.ttls.forEach((b, i) => {
    const o = sides.ours.ttls[i];
    if (b < 0 || o < 0) expect([i, o]).toEqual([i, b]);
    else expect([i, Math.abs(o - b) <= TTL_TOLERANCE_MS, o, b]).toEqual([i, true, o, b]);
  });
  return sides.bull;
}

const ids = (jobs) => jobs.map((j) => j.id);

test('simple: the id deduplicates until its job finishes; addBulk; getDeduplicationJobId', async () => {
  const bull = await twin(async ({ queue, take, finish, ttl }) => {
    const out = {};
    out.first = (await queue.add('a', { n: 1 }, { deduplication: { id: 's' } })).id;
    out.again = (await queue.add('b', { n: 2 }, { deduplication: { id: 's' } })).id;
    out.bulk = ids(
      await queue.addBulk([
        { name: 'c', data: {}, opts: { deduplication: { id: 's' } } },
        { name: 'd', data: {}, opts: { deduplication: { id: 'other' } } },
        { name: 'e', data: {}, opts: { deduplication: { id: 'other' } } },
      ]),
    );
    await ttl('s');
    out.owner = await queue.getDeduplicationJobId('s');
    await finish(await take());
    out.released = await queue.getDeduplicationJobId('s');
    out.after = (await queue.add('f', {}, { deduplication: { id: 's' } })).id;
    return out;
  });
  expect(bull.result).toEqual({ first: '1', again: '1', bulk: ['1', '4', '4'], owner: '1', released: null, after: '6' });
  expect(bull.ttls).toEqual([-1]);
  expect(bull.deduplicated).toEqual([
    { jobId: '1', deduplicationId: 's', deduplicatedJobId: '2' },
    { jobId: '1', deduplicationId: 's', deduplicatedJobId: '3' },
    { jobId: '4', deduplicationId: 'other', deduplicatedJobId: '5' },
  ]);
});

test('ttl: the key outlives its finished job until it expires; extend restarts the window on every add', async () => {
  const bull = await twin(async ({ queue, take, finish, ttl }) => {
    const out = {};
    out.ttl = [(await queue.add('a', {}, { deduplication: { id: 't', ttl: 60000 } })).id];
    await sleep(300);
    out.ttl.push((await queue.add('a', {}, { deduplication: { id: 't', ttl: 60000 } })).id);
    await ttl('t'); // not extended: ~59700
    await finish(await take());
    out.ttl.push((await queue.add('a', {}, { deduplication: { id: 't', ttl: 60000 } })).id);
    out.short = [(await queue.add('s', {}, { deduplication: { id: 'short', ttl: 150 } })).id];
    await sleep(400);
    out.short.push((await queue.add('s', {}, { deduplication: { id: 'short', ttl: 150 } })).id);

    out.extend = [(await queue.add('e', {}, { deduplication: { id: 'x', ttl: 60000, extend: true } })).id];
    await sleep(300);
    await ttl('x'); // ~59700
    out.extend.push((await queue.add('e', {}, { deduplication: { id: 'x', ttl: 60000, extend: true } })).id);
    await ttl('x'); // back to ~60000
    // extend without a TTL is the simple mode.
    out.plainExtend = [
      (await queue.add('p', {}, { deduplication: { id: 'p', extend: true } })).id,
      (await queue.add('p', {}, { deduplication: { id: 'p', extend: true } })).id,
    ];
    await ttl('p');
    return out;
  });
  expect(bull.result).toEqual({ ttl: ['1', '1', '1'], short: ['4', '5'], extend: ['6', '6'], plainExtend: ['8', '8'] });
  expect(bull.ttls[0]).toBeLessThan(59900);
  expect(bull.ttls[1]).toBeLessThan(59900);
  expect(bull.ttls[2]).toBeGreaterThan(59800);
  expect(bull.ttls[3]).toBe(-1);
});

test('replace: a delayed owner is removed and replaced (TTL kept unless extend); any other owner stays', async () => {
  const bull = await twin(async ({ queue, take, finish, ttl, key }) => {
    const out = {};
    const rep = (name, delay, extra = {}) =>
      queue.add(name, { name }, { delay, deduplication: { id: 'r', ttl: 60000, replace: true, ...extra } });
    out.first = (await rep('a', 30000)).id;
    await sleep(300);
    out.replaced = (await rep('b', 40000)).id; // KEEPTTL: ~59700
    await ttl('r');
    out.firstGone = await inspect.exists(key(out.first));
    out.extended = (await rep('c', 50000, { extend: true })).id; // ~60000 again
    await ttl('r');
    out.delayedOwner = await queue.getDeduplicationJobId('r');
    // A waiting owner is not replaced, and no event is written for it.
    out.waitingOwner = (await queue.add('w', {}, { deduplication: { id: 'w', replace: true } })).id;
    out.waitingAgain = (await queue.add('w2', {}, { deduplication: { id: 'w', replace: true } })).id;
    await ttl('w');
    // No TTL: the replacement's key has none either.
    out.noTtl = [
      (await queue.add('n', {}, { delay: 10000, deduplication: { id: 'n', replace: true } })).id,
      (await queue.add('n2', {}, { delay: 5000, deduplication: { id: 'n', replace: true } })).id,
    ];
    await ttl('n');
    // Active owner: kept.
    out.activeOwner = (await queue.add('act', {}, { deduplication: { id: 'act', replace: true } })).id;
    const job = await take(); // 'w' was added first
    out.took = job.id;
    const job2 = await take();
    out.took2 = job2.id;
    out.activeAgain = (await queue.add('act2', {}, { deduplication: { id: 'act', replace: true } })).id;
    await finish(job2);
    await finish(job);
    out.counts = await queue.getJobCounts('delayed', 'wait', 'completed');
    return out;
  });
  expect(bull.result.replaced).not.toBe(bull.result.first);
  expect(bull.result.firstGone).toBe(0);
  expect(bull.ttls[0]).toBeLessThan(59900);
  expect(bull.ttls[1]).toBeGreaterThan(59800);
  expect(bull.deduplicated.length).toBe(3);
  expect(bull.result.took2).toBe(bull.result.activeOwner);
  expect(bull.deduplicated[0]).toEqual({ jobId: bull.result.replaced, deduplicationId: 'r', deduplicatedJobId: bull.result.first });
});

test('keepLastIfActive: adds made while the owner is active are parked, the latest becomes the next job when it finishes', async () => {
  const bull = await twin(async ({ queue, take, finish, fail, ttl, key }) => {
    const out = {};
    const kl = (name, extra = {}, jobOpts = {}) =>
      queue.add(name, { name }, { ...jobOpts, deduplication: { id: 'k', keepLastIfActive: true, ...extra } });
    out.first = (await kl('a', { ttl: 60000 })).id;
    await ttl('k'); // no TTL with keepLastIfActive
    out.whileWaiting = (await kl('b')).id; // plain deduplication: nothing parked
    out.parkedBefore = await inspect.exists(key('dn:k'));
    const a = await take();
    out.parked = [(await kl('c', { ttl: 60000 })).id, (await kl('d', { ttl: 60000, extend: true })).id];
    out.next = await inspect.hgetall(key('dn:k'));
    await ttl('k');
    await finish(a);
    out.afterFinish = { owner: await queue.getDeduplicationJobId('k'), dn: await inspect.exists(key('dn:k')) };
    await ttl('k');
    out.counts = await queue.getJobCounts('wait', 'completed');
    // The next job runs; one add parked while it fails: it becomes a job in turn.
    const d = await take();
    out.took = d.id;
    out.parkedAgain = (await kl('e', {}, { delay: 20000 })).id;
    await fail(d);
    out.afterFail = { owner: await queue.getDeduplicationJobId('k'), counts: await queue.getJobCounts('wait', 'delayed', 'failed') };
    // An owner that has a TTL (set by a plain add) loses it while an add is parked.
    out.ttlOwner = (await queue.add('t', {}, { deduplication: { id: 'kt', ttl: 60000 } })).id;
    const t = await take();
    await ttl('kt');
    out.parkedTtl = (await queue.add('t2', {}, { priority: 3, deduplication: { id: 'kt', keepLastIfActive: true } })).id;
    await ttl('kt');
    await finish(t);
    out.afterTtl = await queue.getDeduplicationJobId('kt');
    await ttl('kt');
    out.prioritized = await queue.getJobCounts('prioritized');
    return out;
  });
  expect(bull.result.first).toBe('1');
  expect(bull.result.parked).toEqual(['1', '1']);
  expect(bull.result.next.jid).toBe('4');
  expect(bull.result.afterFinish).toEqual({ owner: '4', dn: 0 });
  expect(bull.result.afterFail).toEqual({ owner: '6', counts: { wait: 0, delayed: 1, failed: 1 } });
  expect(bull.result.afterTtl).toBe('9');
  expect(bull.result.prioritized).toEqual({ prioritized: 1 });
  expect(bull.ttls).toEqual([-1, -1, -1, expect.any(Number), -1, -1]);
  expect(bull.ttls[3]).toBeGreaterThan(59000);
});

test('reschedule: a delayed owner is due again after the new add\'s delay; ignored for other states and with replace', async () => {
  const bull = await twin(async ({ queue, take, finish, key }) => {
    const out = {};
    const rs = (name, delay) =>
      queue.add(name, { name }, { ...(delay === undefined ? {} : { delay }), deduplication: { id: 'rs', reschedule: true } });
    const t0 = Date.now();
    out.first = (await rs('a', 60000)).id;
    out.again = (await rs('b', 1000)).id;
    const job = await queue.getJob(out.first);
    out.delay = job.delay;
    out.name = job.name;
    const score = Number(await inspect.zscore(key('delayed'), out.first));
    out.dueSoon = Math.floor(score / 4096) - t0 < 5000;
    out.noDelay = (await rs('c', undefined)).id; // omitted delay = 0: due now
    out.delayZero = (await queue.getJob(out.first)).delay;
    // A waiting owner is not touched.
    out.waiting = [
      (await queue.add('w', {}, { deduplication: { id: 'rw', reschedule: true } })).id,
      (await queue.add('w2', {}, { delay: 5000, deduplication: { id: 'rw', reschedule: true } })).id,
    ];
    out.waitingState = await queue.getJobState(out.waiting[0]);
    await finish(await take());
    return out;
  });
  expect(bull.result.again).toBe(bull.result.first);
  expect(bull.result.delay).toBe(1000);
  expect(bull.result.dueSoon).toBe(true);
  expect(bull.result.delayZero).toBe(0);
  expect(bull.result.waitingState).toBe('waiting');
});

test('a key without TTL whose owner is gone is taken over; removeDeduplicationKey with the modes', async () => {
  const bull = await twin(async ({ queue, take, finish, ttl, key }) => {
    const out = {};
    out.first = (await queue.add('a', {}, { deduplication: { id: 'g' } })).id;
    // Lost without releasing its key.
    await inspect.del(key(out.first));
    await inspect.lrem(key('wait'), 0, out.first);
    out.takeover = (await queue.add('b', {}, { deduplication: { id: 'g', ttl: 60000, replace: true } })).id;
    await ttl('g');
    // job.removeDeduplicationKey on an active keepLastIfActive owner: the parked add stays.
    const k = await queue.add('k', {}, { deduplication: { id: 'kk', keepLastIfActive: true } });
    await take(); // 'b'
    const active = await take(); // 'k'
    out.active = active.id;
    out.parked = (await queue.add('k2', {}, { deduplication: { id: 'kk', keepLastIfActive: true } })).id;
    // The job returned by add knows its deduplication id too.
    out.removed = [await k.removeDeduplicationKey(), await active.removeDeduplicationKey()];
    out.dn = await inspect.exists(key('dn:kk'));
    out.fresh = (await queue.add('k3', {}, { deduplication: { id: 'kk', keepLastIfActive: true } })).id;
    await finish(active);
    out.owner = await queue.getDeduplicationJobId('kk');
    out.queueRemove = [await queue.removeDeduplicationKey('kk'), await queue.removeDeduplicationKey('kk')];
    return out;
  });
  expect(bull.result.takeover).not.toBe(bull.result.first);
  expect(bull.result.removed).toEqual([true, false]);
});

test('QueueEvents deliver `deduplicated` with BullMQ\'s arguments (also job-specific listeners)', async () => {
  const name = uniqueQueue('dedupqe');
  const prefix = uniquePrefix('qe');
  const q = new qn.Queue(name, { prefix });
  closers.push(() => q.close());
  const theirs = new bullmq[6].QueueEvents(name, { connection: connectionFor(redis), prefix, lastEventId: '0' });
  const ours = new qn.QueueEvents(name, { prefix, lastEventId: '0' });
  closers.push(() => theirs.close(), () => ours.close());
  const got = { theirs: [], ours: [] };
  theirs.on('deduplicated', (args, id) => got.theirs.push([args, id]));
  ours.on('deduplicated', (args, id) => got.ours.push([args, id]));
  await q.add('a', {}, { deduplication: { id: 'x', ttl: 60000, extend: true } });
  await q.add('b', {}, { deduplication: { id: 'x', ttl: 60000, extend: true } });
  await q.add('c', {}, { delay: 9000, deduplication: { id: 'y', replace: true } });
  await q.add('d', {}, { delay: 9000, deduplication: { id: 'y', replace: true } });
  await until('both QueueEvents', () => got.theirs.length === 2 && got.ours.length === 2);
  expect(got.ours).toEqual(got.theirs);
  expect(got.ours.map(([a]) => a)).toEqual([
    { jobId: '1', deduplicationId: 'x', deduplicatedJobId: '2' },
    { jobId: '4', deduplicationId: 'y', deduplicatedJobId: '3' },
  ]);
});

test('bad mode values are typed errors; FlowProducer leaves use the same add', async () => {
  const name = uniqueQueue('dedupbad');
  const q = new qn.Queue(name);
  closers.push(() => q.close());
  for (const mode of ['extend', 'replace', 'keepLastIfActive', 'reschedule']) {
    await expect(q.add('x', {}, { deduplication: { id: 'd', [mode]: 'yes' } })).rejects.toMatchObject({
      code: 'ERR_INVALID_OPTION',
    });
  }
  const fp = new qn.FlowProducer();
  closers.push(() => fp.close());
  const opts = { deduplication: { id: 'f', ttl: 60000, extend: true } };
  await fp.add({ name: 'leaf', queueName: name, opts });
  await fp.add({ name: 'leaf', queueName: name, opts });
  expect(await q.getJobCounts('wait')).toEqual({ wait: 1 });
  expect(await inspect.pttl(`bull:${name}:de:f`)).toBeGreaterThan(59000);
});
