'use strict';
// Our Worker consuming what the real BullMQ (5.x and 6.x) produces, leaving what BullMQ's
// own worker would leave, all on the process's two sockets.
const qn = require('..');
const { ourClients, waitFor, sleep } = require('./helpers/redis-server');
const { bullmq, uniqueQueue, connectionFor } = require('./helpers/bull');
const { useRedis } = require('./helpers/suite');

const { redis, inspect, closers, bullQueue: producer, ourWorker: worker, finished } = useRedis();

describe.each([6, 5])('with a BullMQ %s producer', (major) => {
  test('processes jobs FIFO and stores results BullMQ can read', async () => {
    const name = uniqueQueue('fifo');
    const q = producer(major, name);
    for (let i = 0; i < 5; i++) await q.add('n', { i });
    const seen = [];
    const w = worker(name, async (job) => {
      seen.push(job.data.i);
      return { doubled: job.data.i * 2 };
    });
    await finished(q, 5);
    expect(seen).toEqual([0, 1, 2, 3, 4]);
    const job = await q.getJob('3');
    expect(job.returnvalue).toEqual({ doubled: 4 });
    expect(job.finishedOn).toBeGreaterThan(0);
    expect(job.attemptsMade).toBe(1);
    expect(await q.getJobState('3')).toBe('completed');
    expect(w.isRunning()).toBe(true);
  });

  test('priority order with FIFO ties, lifo, and delays', async () => {
    const name = uniqueQueue('prio');
    const q = producer(major, name);
    await q.add('p', { n: 'low-1' }, { priority: 4 });
    await q.add('p', { n: 'crit-1' }, { priority: 1 });
    await q.add('p', { n: 'low-2' }, { priority: 4 });
    await q.add('p', { n: 'crit-2' }, { priority: 1 });
    await q.add('p', { n: 'high' }, { priority: 2 });
    const seen = [];
    worker(name, async (job) => {
      seen.push(job.data.n);
    });
    await finished(q, 5);
    expect(seen).toEqual(['crit-1', 'crit-2', 'high', 'low-1', 'low-2']);

    const lname = uniqueQueue('lifo');
    const lq = producer(major, lname);
    await lq.add('x', { n: 1 });
    await lq.add('x', { n: 2 });
    await lq.add('x', { n: 3 }, { lifo: true });
    const lseen = [];
    worker(lname, async (job) => {
      lseen.push(job.data.n);
    });
    await finished(lq, 3);
    expect(lseen).toEqual([3, 1, 2]);

    const dname = uniqueQueue('delay');
    const dq = producer(major, dname);
    const started = {};
    worker(dname, async (job) => {
      started[job.data.n] = Date.now() - job.timestamp;
    });
    await dq.add('d', { n: 'late' }, { delay: 600 });
    await dq.add('d', { n: 'now' });
    await finished(dq, 2);
    expect(started.now).toBeLessThan(600);
    expect(started.late).toBeGreaterThanOrEqual(600);
  });

  test('attempts with fixed and exponential backoff, then failure with its reason', async () => {
    const name = uniqueQueue('retry');
    const q = producer(major, name);
    const attempts = {};
    const failedEvents = [];
    const w = worker(name, async (job) => {
      (attempts[job.id] ||= []).push(Date.now());
      if (job.data.okOn && job.attemptsMade + 1 >= job.data.okOn) return 'ok';
      throw new Error(`boom ${job.attemptsMade + 1}`);
    });
    w.on('failed', (job, err) => failedEvents.push([job && job.id, err.message]));
    await q.add('f', { okOn: 3 }, { attempts: 3, backoff: { type: 'fixed', delay: 150 }, jobId: 'fixed' });
    await q.add('e', {}, { attempts: 3, backoff: { type: 'exponential', delay: 100 }, jobId: 'expo' });
    await finished(q, 2);
    const fixed = await q.getJob('fixed');
    expect(fixed.returnvalue).toBe('ok');
    expect(fixed.attemptsMade).toBe(3);
    const gaps = (id) => attempts[id].slice(1).map((t, i) => t - attempts[id][i]);
    expect(gaps('fixed').every((g) => g >= 150)).toBe(true);
    const expo = await q.getJob('expo');
    expect(await expo.getState()).toBe('failed');
    expect(expo.failedReason).toBe('boom 3');
    expect(expo.attemptsMade).toBe(3);
    expect(expo.stacktrace).toHaveLength(3);
    const [g1, g2] = gaps('expo');
    expect(g1).toBeGreaterThanOrEqual(100);
    expect(g2).toBeGreaterThanOrEqual(200);
    expect(failedEvents.filter(([id]) => id === 'expo').map(([, m]) => m)).toEqual(['boom 1', 'boom 2', 'boom 3']);
  });

  test('retention: removeOnComplete / removeOnFail variants, job option over worker option', async () => {
    const name = uniqueQueue('keep');
    const q = producer(major, name);
    for (let i = 0; i < 6; i++) await q.add('k', { i }, { removeOnComplete: 2 });
    await q.add('gone', {}, { removeOnComplete: true, jobId: 'gone' });
    await q.add('kept', {}, { removeOnComplete: false, jobId: 'kept' });
    await q.add('bad', {}, { removeOnFail: true, jobId: 'badgone' });
    await q.add('bad', {}, { jobId: 'badkept' });
    worker(name, async (job) => {
      if (job.name === 'bad') throw new Error('nope');
      return job.data;
    }, { removeOnComplete: { count: 100 }, removeOnFail: { age: 3600 } });
    await waitFor(async () => (await q.getJob('badkept')) && (await q.getJobState('badkept')) === 'failed', { what: 'last job' });
    expect(await q.getJob('gone')).toBeUndefined();
    expect(await q.getJob('kept')).toBeDefined();
    expect(await q.getJob('badgone')).toBeUndefined();
    const completed = await q.getCompleted();
    // 2 of the count-limited jobs survive (newest), plus 'kept'.
    expect(completed.map((j) => j.id).sort()).toEqual(['5', '6', 'kept'].sort());
  });
});

test('progress and logs are visible through BullMQ QueueEvents and getJobLogs', async () => {
  const name = uniqueQueue('progress');
  const q = producer(6, name);
  const events = new bullmq[6].QueueEvents(name, { connection: connectionFor(redis) });
  closers.push(() => events.close());
  await events.waitUntilReady();
  const progress = [];
  events.on('progress', ({ jobId, data }) => progress.push([jobId, data]));
  const completed = new Promise((resolve) => events.on('completed', resolve));
  worker(name, async (job) => {
    await job.updateProgress(50);
    await job.log('halfway');
    await job.updateProgress({ step: 'done' });
    await job.log('finished');
    return 'r';
  });
  const job = await q.add('p', {});
  const done = await completed;
  expect(done.jobId).toBe(job.id);
  expect(done.returnvalue).toBe('r');
  await waitFor(() => progress.length === 2, { what: 'progress events' });
  expect(progress).toEqual([
    [job.id, 50],
    [job.id, { step: 'done' }],
  ]);
  expect(await q.getJobLogs(job.id)).toEqual({ logs: ['halfway', 'finished'], count: 2 });
});

test('a BullMQ Worker and ours on one queue process every job exactly once', async () => {
  const name = uniqueQueue('mixed');
  const q = producer(6, name);
  const counts = new Map();
  const by = { ours: 0, bull: 0 };
  const record = (who) => async (job) => {
    counts.set(job.id, (counts.get(job.id) || 0) + 1);
    by[who] += 1;
    await sleep(2);
  };
  worker(name, record('ours'), { concurrency: 4 });
  const bw = new bullmq[6].Worker(name, record('bull'), { connection: connectionFor(redis), concurrency: 4 });
  closers.push(() => bw.close());
  await q.addBulk(Array.from({ length: 200 }, (_, i) => ({ name: 'm', data: { i } })));
  await finished(q, 200);
  expect(counts.size).toBe(200);
  expect([...counts.values()].every((c) => c === 1)).toBe(true);
  expect(by.ours).toBeGreaterThan(0);
  expect(by.bull).toBeGreaterThan(0);
});

test.each([6, 5])('BullMQ %s Queue.pause() is honoured and resume() lets jobs run', async (major) => {
  const name = uniqueQueue('paused');
  const q = producer(major, name);
  await q.pause();
  await q.add('x', { a: 1 });
  await q.add('x', { a: 2 });
  const seen = [];
  const w = worker(name, async (job) => seen.push(job.data.a), { drainDelay: 0.2 });
  await w.waitUntilReady();
  await sleep(600);
  expect(seen).toEqual([]);
  await q.resume();
  await finished(q, 2);
  expect(seen.sort()).toEqual([1, 2]);
});

test('bad input: invalid JSON data, non-Error throws, undefined and unserialisable results', async () => {
  const name = uniqueQueue('bad');
  const q = producer(6, name);
  await q.add('throwstring', {}, { jobId: 'str' });
  await q.add('undef', {}, { jobId: 'undef' });
  await q.add('circular', {}, { jobId: 'circ' });
  await q.add('bigint', {}, { jobId: 'big' });
  await q.add('corrupt', {}, { jobId: 'corrupt', delay: 300 });
  // Corrupt the stored data of the delayed job before it runs.
  await inspect.hset(`bull:${name}:corrupt`, 'data', '{not json');
  await q.add('after', { ok: true }, { jobId: 'after', delay: 400 });
  worker(name, async (job) => {
    switch (job.name) {
      case 'throwstring':
        throw 'plain string';
      case 'undef':
        return undefined;
      case 'circular': {
        const o = {};
        o.self = o;
        return o;
      }
      case 'bigint':
        return { n: 10n };
      default:
        return 'fine';
    }
  });
  await finished(q, 6);
  expect((await q.getJob('str')).failedReason).toBe('plain string');
  const undef = await q.getJob('undef');
  expect(undef.returnvalue).toBeNull();
  expect(await undef.getState()).toBe('completed');
  expect((await q.getJob('circ')).failedReason).toMatch(/ERR_RESULT_NOT_SERIALISABLE/);
  expect((await q.getJob('big')).failedReason).toMatch(/ERR_RESULT_NOT_SERIALISABLE/);
  // BullMQ's own getJob cannot parse the corrupt data either; read the hash directly.
  expect(await inspect.hget(`bull:${name}:corrupt`, 'failedReason')).toMatch(/ERR_JOB_DATA/);
  expect(await q.getJobState('corrupt')).toBe('failed');
  expect((await q.getJob('after')).returnvalue).toBe('fine');
});

test('UnrecoverableError fails at once despite attempts; DelayedError after moveToDelayed', async () => {
  const name = uniqueQueue('unrec');
  const q = producer(6, name);
  let delayedRuns = 0;
  worker(name, async (job, token) => {
    if (job.name === 'unrec') throw new qn.UnrecoverableError('fatal');
    delayedRuns += 1;
    if (delayedRuns === 1) {
      await job.moveToDelayed(Date.now() + 300, token);
      throw new qn.DelayedError();
    }
    return 'second run';
  });
  await q.add('unrec', {}, { attempts: 5, jobId: 'u' });
  await q.add('later', {}, { attempts: 1, jobId: 'd' });
  await finished(q, 2);
  const u = await q.getJob('u');
  expect(u.failedReason).toBe('fatal');
  expect(u.attemptsMade).toBe(1);
  const d = await q.getJob('d');
  expect(d.returnvalue).toBe('second run');
  expect(delayedRuns).toBe(2);
});

test('BullMQ FlowProducer children complete their parent', async () => {
  const name = uniqueQueue('flow');
  const childName = uniqueQueue('flowkids');
  const flow = new bullmq[6].FlowProducer({ connection: connectionFor(redis) });
  closers.push(() => flow.close());
  const q = producer(6, name);
  await flow.add({
    name: 'parent',
    queueName: name,
    data: {},
    children: [
      { name: 'kid', queueName: childName, data: { v: 1 } },
      { name: 'kid', queueName: childName, data: { v: 2 } },
    ],
  });
  let parentSaw;
  worker(childName, async (job) => job.data.v * 10);
  worker(name, async (job) => {
    parentSaw = await job.getChildrenValues();
    return Object.values(parentSaw).reduce((a, b) => a + b, 0);
  });
  await finished(q, 1);
  const [parent] = await q.getCompleted();
  expect(parent.returnvalue).toBe(30);
  expect(Object.keys(parentSaw)).toHaveLength(2);
});

test('graceful close waits for in-flight jobs; forced close leaves them to the stalled check', async () => {
  const name = uniqueQueue('close');
  const q = producer(6, name);
  await q.add('slow', {}, { jobId: 'g' });
  let release;
  const gate = new Promise((r) => (release = r));
  const w = new qn.Worker(name, async () => {
    await gate;
    return 'done';
  });
  await waitFor(async () => (await q.getJobState('g')) === 'active', { what: 'job active' });
  const closing = w.close();
  await sleep(100);
  expect(await q.getJobState('g')).toBe('active');
  release();
  await closing;
  expect(await q.getJobState('g')).toBe('completed');
  await w.close(); // idempotent

  // A fresh queue: the stalled-check guard key of the first worker (30 s) would hold back
  // every other check on `name` for its whole interval, exactly as BullMQ's fleet guard does.
  const fname = uniqueQueue('forced');
  const fq = producer(6, fname);
  await fq.add('stuck', {}, { jobId: 'f' });
  let aborted = false;
  let started = false;
  const fw = new qn.Worker(fname, (job, token, signal) => new Promise((resolve) => {
    started = true;
    signal.addEventListener('abort', () => {
      aborted = true;
      setTimeout(resolve, 50);
    });
  }), { lockDuration: 500, stalledInterval: 300 });
  fw.on('error', () => {});
  await waitFor(() => started, { what: 'processor of f to start' });
  await fw.close(true);
  expect(aborted).toBe(true);
  await sleep(100);
  expect(await fq.getJobState('f')).toBe('active');
  // Another worker's stalled check recovers it once the lock expired.
  const stalled = [];
  const rw = worker(fname, async () => 'recovered', { stalledInterval: 300, lockDuration: 500 });
  rw.on('stalled', (id) => stalled.push(id));
  await waitFor(async () => (await fq.getJobState('f')) === 'completed', { timeout: 10000, what: 'stalled recovery' });
  expect(stalled).toContain('f');
});

test('one process, 5 queues x concurrency 10: at most 2 sockets', async () => {
  const names = Array.from({ length: 5 }, () => uniqueQueue('five'));
  const queues = names.map((n) => producer(6, n));
  let running = 0;
  let peak = 0;
  for (const n of names) {
    worker(n, async () => {
      running += 1;
      peak = Math.max(peak, running);
      await sleep(20);
      running -= 1;
    }, { concurrency: 10 });
  }
  await Promise.all(queues.map((q) => q.addBulk(Array.from({ length: 50 }, (_, i) => ({ name: 'j', data: { i } })))));
  const socketCounts = [];
  const sampler = setInterval(async () => {
    socketCounts.push((await ourClients(inspect)).length);
  }, 50);
  await Promise.all(queues.map((q) => finished(q, 50)));
  clearInterval(sampler);
  socketCounts.push((await ourClients(inspect)).length);
  expect(Math.max(...socketCounts)).toBeLessThanOrEqual(2);
  expect(qn.health().connections).toEqual({ command: 1, blocking: 1, events: 0 });
  expect(peak).toBeGreaterThan(10);
  expect(qn.health().workers.filter((w) => names.includes(w.queue))).toHaveLength(5);
});

test('a job whose worker process is killed with SIGKILL is recovered by the stalled check', async () => {
  const { spawn } = require('child_process');
  const path = require('path');
  const name = uniqueQueue('sigkill');
  const q = producer(6, name);
  await q.add('victim', { v: 1 }, { jobId: 'victim', attempts: 2 });
  const child = spawn(process.execPath, [path.join(__dirname, 'fixtures', 'hang-worker.js'), String(redis.port), name], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise((resolve) => child.stdout.on('data', (d) => String(d).includes('active victim') && resolve()));
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
  expect(await q.getJobState('victim')).toBe('active');
  const stalled = [];
  const w = worker(name, async (job) => ({ recovered: job.data.v, stalledBefore: job.stalledCounter }), {
    stalledInterval: 400,
    lockDuration: 1000,
  });
  w.on('stalled', (id) => stalled.push(id));
  await waitFor(async () => (await q.getJobState('victim')) === 'completed', { timeout: 10000, what: 'recovery' });
  const job = await q.getJob('victim');
  expect(job.returnvalue).toEqual({ recovered: 1, stalledBefore: 1 });
  expect(stalled).toEqual(['victim']);
});

test('after every worker is closed, the process exits by itself (no shutdown() needed)', async () => {
  const { spawn } = require('child_process');
  const path = require('path');
  const a = uniqueQueue('exitA');
  const b = uniqueQueue('exitB');
  const qa = producer(6, a);
  const qb = producer(6, b);
  await qa.addBulk([{ name: 'x', data: {} }, { name: 'x', data: {} }]);
  await qb.addBulk([{ name: 'x', data: {} }, { name: 'x', data: {} }]);
  const child = spawn(process.execPath, [path.join(__dirname, 'fixtures', 'work-and-exit.js'), String(redis.port), a, b], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  let closedAt;
  child.stdout.on('data', () => {
    if (out.includes('closed after') && !closedAt) closedAt = Date.now();
  });
  const code = await new Promise((resolve) => {
    const t = setTimeout(() => child.kill('SIGKILL'), 15000);
    child.once('exit', (c) => {
      clearTimeout(t);
      resolve(c);
    });
  });
  expect(out).toContain('closed after 4 jobs');
  expect(code).toBe(0);
  expect(Date.now() - closedAt).toBeLessThan(5000);
});

test('locks are renewed: a job longer than lockDuration runs once and never stalls', async () => {
  const name = uniqueQueue('renew');
  const q = producer(6, name);
  let runs = 0;
  const stalled = [];
  const w = worker(name, async () => {
    runs += 1;
    await sleep(1600);
    return 'long';
  }, { lockDuration: 400, stalledInterval: 250 });
  w.on('stalled', (id) => stalled.push(id));
  await q.add('long', {}, { jobId: 'long' });
  await waitFor(() => runs === 1, { what: 'our worker to start the job' });
  // A BullMQ worker on the same queue runs its own stalled checks meanwhile.
  const bw = new bullmq[6].Worker(name, async () => 'bull', {
    connection: connectionFor(redis),
    stalledInterval: 250,
    lockDuration: 400,
  });
  closers.push(() => bw.close());
  await finished(q, 1);
  const job = await q.getJob('long');
  expect(job.returnvalue).toBe('long');
  expect(runs).toBe(1);
  expect(stalled).toEqual([]);
  expect(job.stalledCounter || 0).toBe(0);
});

test('completions are coalesced: far fewer finishing calls than jobs, every job completed once', async () => {
  const name = uniqueQueue('coalesce');
  const q = producer(6, name);
  const total = 200;
  await q.addBulk(Array.from({ length: total }, (_, i) => ({ name: 'n', data: { i } })));
  const evalCalls = async () => {
    const m = /cmdstat_evalsha:calls=(\d+)/.exec(await inspect.info('commandstats'));
    return m ? Number(m[1]) : 0;
  };
  const before = await evalCalls();
  const seen = new Map();
  const w = worker(name, async (job) => {
    seen.set(job.data.i, (seen.get(job.data.i) || 0) + 1);
    return job.data.i;
  }, { concurrency: 20, removeOnComplete: false });
  await finished(q, total);
  await w.close();
  // Each call finishes the outcomes that arrived while the previous one was in flight; one
  // call per job would be `total` calls (plus the first activation).
  expect(await evalCalls() - before).toBeLessThan(total / 2);
  expect(seen.size).toBe(total);
  expect([...seen.values()].every((n) => n === 1)).toBe(true);
  const done = await q.getJobs(['completed'], 0, -1);
  expect(done).toHaveLength(total);
  expect(done.every((j) => j.returnvalue === j.data.i && j.attemptsMade === 1)).toBe(true);
  expect(await q.getJobCounts('active', 'wait')).toEqual({ active: 0, wait: 0 });
});

test('retries that fall due while the worker is busy are taken at once, not after the drain delay', async () => {
  // Seen in `npm run demo` (about 1 run in 3): retries left delayed for the whole drain delay
  // once a busy worker went idle (a marker handed to a wait the worker was leaving was lost:
  // tests/worker.rs dispatcher_puts_back_a_marker_its_waiter_left_unread; and a due time
  // already past led to a drain-delay wait). This is the end-to-end shape: with a drain delay
  // of 60 s, a retry not taken when due leaves the round unsettled past the waitFor.
  const name = uniqueQueue('due-retries');
  const q = producer(6, name);
  let settled = 0;
  const w = worker(
    name,
    async (job) => {
      await sleep(1 + (Number(job.id) % 5));
      if (job.attemptsMade + 1 < job.data.okOn) throw new Error('declined');
      return 'ok';
    },
    { concurrency: 10, drainDelay: 60 },
  );
  w.on('completed', () => (settled += 1));
  w.on('failed', (job) => {
    if (job.attemptsMade >= job.opts.attempts) settled += 1;
  });
  const rounds = 4;
  for (let round = 0; round < rounds; round++) {
    await q.addBulk(
      Array.from({ length: 30 }, (_, i) => ({
        name: 'pay',
        data: { okOn: 1 + (i % 4) },
        opts: { attempts: 3, backoff: { type: 'exponential', delay: 20 } },
      })),
    );
    await waitFor(() => settled === 30 * (round + 1), { timeout: 20000, what: `round ${round + 1}: every job settled` });
  }
  expect(await q.getJobCounts('delayed', 'wait', 'active')).toEqual({ delayed: 0, wait: 0, active: 0 });
});
