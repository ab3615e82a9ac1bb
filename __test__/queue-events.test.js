'use strict';
// QueueEvents against BullMQ's: the same stream read by both must give the same events with
// the same arguments, and every QueueEvents of the process must share ONE events socket (the
// third), open only while at least one exists.
const qn = require('..');
const { ourClients, waitFor, sleep } = require('./helpers/redis-server');
const { useRedis } = require('./helpers/suite');
const { bullmq, uniqueQueue, connectionFor } = require('./helpers/bull');

const { redis, inspect, closers } = useRedis();

const EVENTS = [
  'added', 'waiting', 'active', 'progress', 'completed', 'failed', 'delayed', 'removed', 'drained',
  'paused', 'resumed', 'cleaned', 'retries-exhausted', 'waiting-children', 'deduplicated', 'stalled',
  'duplicated', 'debounced',
];

function record(qe) {
  const seen = [];
  for (const name of new Set(EVENTS)) qe.on(name, (...args) => seen.push([name, ...args]));
  return seen;
}

function ours(name, opts = {}) {
  const qe = new qn.QueueEvents(name, opts);
  qe.on('error', () => {});
  closers.push(() => qe.close());
  return qe;
}

function theirs(name, opts = {}) {
  const qe = new bullmq[6].QueueEvents(name, { connection: connectionFor(redis), ...opts });
  qe.on('error', () => {});
  closers.push(() => qe.close());
  return qe;
}

function bullQueue(name, opts = {}) {
  const q = new bullmq[6].Queue(name, { connection: connectionFor(redis), ...opts });
  q.on('error', () => {});
  closers.push(() => q.close());
  return q;
}

async function socketRoles() {
  const list = await ourClients(inspect);
  return list.map((c) => c.name.split(':')[1]).sort();
}

test('one events socket for every QueueEvents of the process, only while one exists', async () => {
  const q = new qn.Queue(uniqueQueue('sock'));
  closers.push(() => q.close());
  await q.waitUntilReady();
  await waitFor(async () => (await socketRoles()).length === 2, { what: 'the pair' });
  expect(await socketRoles()).toEqual(['blocking', 'command']);
  expect(qn.health().connections.events).toBe(0);

  const many = [];
  for (let i = 0; i < 5; i++) many.push(new qn.QueueEvents(uniqueQueue(`sock${i}`)));
  await Promise.all(many.map((qe) => qe.waitUntilReady()));
  await waitFor(async () => (await socketRoles()).length === 3, { what: 'the events socket' });
  expect(await socketRoles()).toEqual(['blocking', 'command', 'events']);
  expect(qn.health().connections.events).toBe(1);

  await many[0].close();
  await many[1].close();
  await sleep(50);
  expect(await socketRoles()).toEqual(['blocking', 'command', 'events']);

  await Promise.all(many.slice(2).map((qe) => qe.close()));
  await waitFor(async () => (await socketRoles()).length === 2, { what: 'the events socket to close' });
  expect(await socketRoles()).toEqual(['blocking', 'command']);
  expect(qn.health().connections.events).toBe(0);

  // And again: a new QueueEvents opens it again.
  const again = ours(uniqueQueue('sock-again'));
  await again.waitUntilReady();
  await waitFor(async () => (await socketRoles()).length === 3, { what: 'the events socket again' });
  await again.close();
  await waitFor(async () => (await socketRoles()).length === 2, { what: 'the events socket to close again' });
});

test('the same events with the same arguments as BullMQ QueueEvents (BullMQ producer and worker)', async () => {
  const name = uniqueQueue('ev');
  const mine = ours(name);
  const bulls = theirs(name);
  const a = record(mine);
  const b = record(bulls);
  await Promise.all([mine.waitUntilReady(), bulls.waitUntilReady()]);
  // BullMQ's QueueEvents has no readiness for its XREAD: give it a moment to be blocking.
  await sleep(200);

  const q = bullQueue(name);
  await q.add('a', { x: 1 });
  await q.add('b', { x: 2 }, { delay: 50 });
  await q.add('c', { x: 3 }, { attempts: 2 });
  await q.add('d', { x: 4 }, { deduplication: { id: 'dd' } });
  await q.add('d2', { x: 5 }, { deduplication: { id: 'dd' } });
  const gone = await q.add('e', {}, { delay: 60000 });
  await gone.remove();
  await q.pause();
  await q.resume();

  let finished = 0;
  const w = new bullmq[6].Worker(
    name,
    async (job) => {
      await job.updateProgress({ pct: 50 });
      if (job.name === 'c') throw new Error('boom');
      return { ok: job.name };
    },
    { connection: connectionFor(redis) },
  );
  w.on('completed', () => finished++);
  w.on('failed', () => finished++);
  closers.push(() => w.close());
  await waitFor(() => finished >= 5, { timeout: 15000, what: 'jobs to finish' });
  await q.clean(0, 10, 'completed');
  await waitFor(() => a.some((e) => e[0] === 'cleaned') && b.some((e) => e[0] === 'cleaned'), { what: 'cleaned' });
  await sleep(100);

  const names = new Set(a.map((e) => e[0]));
  for (const n of ['added', 'waiting', 'active', 'progress', 'completed', 'failed', 'delayed', 'removed', 'paused', 'resumed', 'cleaned', 'retries-exhausted', 'deduplicated']) {
    expect(names).toContain(n);
  }
  expect(a).toEqual(b);
  // Types as BullMQ emits them: parsed returnvalue, progress data and delay.
  const completed = a.find((e) => e[0] === 'completed');
  expect(typeof completed[1].returnvalue).toBe('object');
  expect(typeof a.find((e) => e[0] === 'delayed')[1].delay).toBe('number');
  expect(a.find((e) => e[0] === 'progress')[1].data).toEqual({ pct: 50 });
});

test('per-job events (completed:<id>, failed:<id>) and our worker as the producer of events', async () => {
  const name = uniqueQueue('perjob');
  const mine = ours(name);
  const bulls = theirs(name);
  await Promise.all([mine.waitUntilReady(), bulls.waitUntilReady()]);
  await sleep(200);
  const q = new qn.Queue(name);
  closers.push(() => q.close());
  const ok = await q.add('ok', { n: 1 });
  const bad = await q.add('bad', { n: 2 });
  const got = {};
  const gotBull = {};
  for (const [qe, into] of [[mine, got], [bulls, gotBull]]) {
    qe.on(`completed:${ok.id}`, (args, id) => (into.completed = [args, id]));
    qe.on(`failed:${bad.id}`, (args, id) => (into.failed = [args, id]));
  }
  const w = new qn.Worker(name, async (job) => {
    if (job.name === 'bad') throw new Error('nope');
    return 42;
  });
  w.on('error', () => {});
  closers.push(() => w.close());
  await waitFor(() => got.completed && got.failed && gotBull.completed && gotBull.failed, { what: 'per-job events' });
  expect(got).toEqual(gotBull);
  expect(got.completed[0]).toMatchObject({ jobId: ok.id, returnvalue: 42, prev: 'active' });
  expect(got.failed[0]).toMatchObject({ jobId: bad.id, failedReason: 'nope', prev: 'active' });
});

test('lastEventId replays the stream like BullMQ; autorun false waits for run()', async () => {
  const name = uniqueQueue('replay');
  const q = bullQueue(name);
  await q.add('a', { i: 1 });
  await q.add('b', { i: 2 }, { delay: 1000 });
  await q.add('c', { i: 3 }, { priority: 3 });

  const mine = ours(name, { lastEventId: '0' });
  const bulls = theirs(name, { lastEventId: '0' });
  const a = record(mine);
  const b = record(bulls);
  await waitFor(() => a.length >= 6 && b.length >= 6, { what: 'replayed events' });
  expect(a).toEqual(b);

  const lazy = ours(name, { autorun: false });
  const c = record(lazy);
  await q.add('d', {});
  await sleep(100);
  expect(c).toEqual([]);
  const running = lazy.run();
  await expect(lazy.run()).rejects.toThrow('Queue Events is already running.');
  await lazy.waitUntilReady();
  await q.add('e', {});
  await waitFor(() => c.some((e) => e[0] === 'added' && e[1].name === 'e'), { what: 'the added event after run()' });
  expect(c.some((e) => e[1] && e[1].name === 'd')).toBe(false);
  await lazy.close();
  await expect(running).resolves.toBeUndefined();
});

test('events written right after waitUntilReady() are never missed; bad options throw', async () => {
  for (let round = 0; round < 5; round++) {
    const name = uniqueQueue('ready');
    const qe = new qn.QueueEvents(name);
    const c = record(qe);
    await qe.waitUntilReady();
    const q = bullQueue(name);
    await q.add('x', {});
    await waitFor(() => c.some((e) => e[0] === 'added'), { what: `added (round ${round})` });
    await qe.close();
  }
  expect(() => new qn.QueueEvents('a:b')).toThrow(/name/);
  expect(() => new qn.QueueEvents('ok', { blockingTimeout: -1 })).toThrow(/blockingTimeout/);
  const bad = new qn.QueueEvents('ok', { lastEventId: 'nope', autorun: false });
  await expect(bad.run()).rejects.toMatchObject({ code: 'ERR_INVALID_OPTION' });
  await bad.close();
});

test('the events socket is re-opened after CLIENT KILL and no event is lost (reads resume from the cursor)', async () => {
  const name = uniqueQueue('kill');
  const qe = ours(name);
  const seen = record(qe);
  const errors = [];
  qe.on('error', (err) => errors.push(err));
  await qe.waitUntilReady();
  const q = bullQueue(name);
  await q.add('before', {});
  await waitFor(() => seen.some((e) => e[0] === 'added' && e[1].name === 'before'), { what: 'the first event' });
  const victim = (await ourClients(inspect)).find((c) => c.name.startsWith('queue-native:events:'));
  await inspect.call('CLIENT', 'KILL', 'ID', victim.id);
  // Written while the reader is (maybe) down: delivered once it reads again.
  await q.add('during', {});
  await waitFor(async () => (await socketRoles()).includes('events'), { what: 'the events socket to come back' });
  await q.add('after', {});
  await waitFor(() => seen.some((e) => e[0] === 'added' && e[1].name === 'after'), { timeout: 10000, what: 'events after the kill' });
  const added = seen.filter((e) => e[0] === 'added').map((e) => e[1].name);
  expect(added).toEqual(['before', 'during', 'after']);
  expect(errors.every((e) => e instanceof qn.QueueNativeError)).toBe(true);
  expect(await socketRoles()).toEqual(['blocking', 'command', 'events']);
});

test('opening and closing QueueEvents in quick succession never holds more than one events socket', async () => {
  let most = 0;
  for (let round = 0; round < 15; round++) {
    const batch = [0, 1, 2].map((i) => new qn.QueueEvents(uniqueQueue(`churn${round}-${i}`)));
    batch.forEach((qe) => qe.on('error', () => {}));
    if (round % 2) await Promise.all(batch.map((qe) => qe.waitUntilReady()));
    most = Math.max(most, (await socketRoles()).filter((r) => r === 'events').length);
    await Promise.all(batch.map((qe) => qe.close()));
    most = Math.max(most, (await socketRoles()).filter((r) => r === 'events').length);
  }
  expect(most).toBeLessThanOrEqual(1);
  await waitFor(async () => !(await socketRoles()).includes('events'), { what: 'the events socket to close' });
  expect(qn.health().connections.events).toBe(0);
});

test.each([['close'], ['shutdown']])('a process that used QueueEvents exits by itself after %s()', async (mode) => {
  const { spawn } = require('child_process');
  const path = require('path');
  const child = spawn(process.execPath, [path.join(__dirname, 'fixtures', 'events-and-exit.js'), String(redis.port), mode], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  let doneAt;
  child.stdout.on('data', (d) => {
    out += d;
    if (out.includes('done') && !doneAt) doneAt = Date.now();
  });
  const code = await new Promise((resolve) => {
    const t = setTimeout(() => child.kill('SIGKILL'), 15000);
    child.once('exit', (c) => {
      clearTimeout(t);
      resolve(c);
    });
  });
  expect(out).toContain(`done (${mode})`);
  expect(code).toBe(0);
  expect(Date.now() - doneAt).toBeLessThan(5000);
});
