'use strict';
// The Worker's own API (API.md): autorun/run, pause/resume, concurrency at run time,
// cancelJob, custom backoff, rate limits, global concurrency, deduplication, Redis restarts.
const qn = require('..');
const { startRedis, waitFor, sleep } = require('./helpers/redis-server');
const { uniqueQueue } = require('./helpers/bull');
const { useRedis } = require('./helpers/suite');

const { redis, closers, bullQueue, ourWorker: worker, finished } = useRedis();

/** BullMQ 6's Queue on the suite's server, or on another one's `port`. */
const producer = (name, port = redis.port) => bullQueue(6, name, { connection: { host: '127.0.0.1', port, maxRetriesPerRequest: null } });

test('invalid worker options throw ERR_INVALID_OPTION synchronously', () => {
  const bad = (fn, option) => {
    let err;
    try {
      fn();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(qn.QueueNativeError);
    expect(err.code).toBe('ERR_INVALID_OPTION');
    expect(err.message).toContain(option);
  };
  bad(() => new qn.Worker('a:b', async () => {}), 'queueName');
  bad(() => new qn.Worker('q', 'processor.js'), 'processor');
  bad(() => new qn.Worker('q', async () => {}, { concurrency: 0 }), 'concurrency');
  bad(() => new qn.Worker('q', async () => {}, { limiter: { max: 0, duration: 1000 } }), 'limiter');
  bad(() => new qn.Worker('q', async () => {}, { connection: { port: 'x' } }), 'port');
});

test('autorun: false waits for run(); run() resolves when closed; ready event', async () => {
  const name = uniqueQueue('autorun');
  const q = producer(name);
  await q.add('a', {});
  let ran = 0;
  const w = worker(name, async () => {
    ran += 1;
  }, { autorun: false });
  // As BullMQ's: 'ready' once connected, whether or not the worker runs.
  const ready = new Promise((r) => w.once('ready', r));
  await ready;
  await sleep(300);
  expect(ran).toBe(0);
  expect(w.isRunning()).toBe(false);
  const running = w.run();
  await finished(q, 1);
  expect(ran).toBe(1);
  let resolved = false;
  running.then(() => (resolved = true));
  await sleep(50);
  expect(resolved).toBe(false);
  const closed = new Promise((r) => w.once('closed', r));
  await w.close();
  await closed;
  await running;
  expect(w.isRunning()).toBe(false);
});

test('pause() waits for active jobs and stops fetching; resume() continues', async () => {
  const name = uniqueQueue('wpause');
  const q = producer(name);
  const seen = [];
  const w = worker(name, async (job) => {
    await sleep(100);
    seen.push(job.data.i);
  });
  await q.add('a', { i: 1 });
  await waitFor(async () => (await q.getActiveCount()) === 1, { what: 'first job active' });
  await w.pause();
  expect(seen).toEqual([1]);
  expect(w.isPaused()).toBe(true);
  await q.add('a', { i: 2 });
  await sleep(300);
  expect(seen).toEqual([1]);
  w.resume();
  await finished(q, 2);
  expect(seen).toEqual([1, 2]);
});

test('concurrency can be raised at run time', async () => {
  const name = uniqueQueue('conc');
  const q = producer(name);
  let running = 0;
  let peak = 0;
  const w = worker(name, async () => {
    running += 1;
    peak = Math.max(peak, running);
    await sleep(80);
    running -= 1;
  }, { concurrency: 1 });
  expect(w.concurrency).toBe(1);
  await q.addBulk(Array.from({ length: 20 }, () => ({ name: 'c', data: {} })));
  await sleep(200);
  expect(peak).toBe(1);
  w.concurrency = 5;
  expect(w.concurrency).toBe(5);
  await finished(q, 20);
  expect(peak).toBe(5);
  expect(() => {
    w.concurrency = 0;
  }).toThrow(qn.QueueNativeError);
});

test('cancelJob fires the job signal; the processor decides the outcome', async () => {
  const name = uniqueQueue('cancel');
  const q = producer(name);
  const w = worker(name, (job, token, signal) => new Promise((resolve, reject) => {
    signal.addEventListener('abort', () => reject(new Error(`cancelled: ${signal.reason}`)));
  }));
  await q.add('c', {}, { jobId: 'c1' });
  await waitFor(() => w.cancelJob('c1', 'operator said so'), { what: 'job in flight' });
  await finished(q, 1);
  expect((await q.getJob('c1')).failedReason).toBe('cancelled: operator said so');
  expect(w.cancelJob('nope')).toBe(false);
});

test('custom backoffStrategy from settings decides the delay; -1 stops retrying', async () => {
  const name = uniqueQueue('custom');
  const q = producer(name);
  const calls = [];
  const times = [];
  worker(name, async (job) => {
    times.push(Date.now());
    throw new Error(`fail ${job.attemptsMade + 1}`);
  }, {
    settings: {
      backoffStrategy: (attemptsMade, type, err, job) => {
        calls.push([attemptsMade, type, err.message, job.id]);
        return attemptsMade >= 2 ? -1 : 250;
      },
    },
  });
  await q.add('x', {}, { attempts: 5, backoff: { type: 'linearish' }, jobId: 'k' });
  await finished(q, 1);
  expect(calls).toEqual([
    [1, 'linearish', 'fail 1', 'k'],
    [2, 'linearish', 'fail 2', 'k'],
  ]);
  expect(times[1] - times[0]).toBeGreaterThanOrEqual(250);
  const job = await q.getJob('k');
  expect(job.attemptsMade).toBe(2);
  expect(await job.getState()).toBe('failed');
});

test('worker limiter: at most max jobs start per duration window', async () => {
  const name = uniqueQueue('limit');
  const q = producer(name);
  worker(name, async () => {}, { concurrency: 5, limiter: { max: 2, duration: 500 } });
  await q.addBulk(Array.from({ length: 6 }, () => ({ name: 'l', data: {} })));
  await finished(q, 6);
  // When each job became active, by Redis's own clock (the ids of the `active` entries of the
  // events stream): that is the clock the limiter window runs on. The JS processor's start,
  // or the caller's timestamp, can lag behind it on a busy machine.
  const inspect = redis.client();
  const entries = await inspect.xrange(`bull:${name}:events`, '-', '+');
  const starts = entries
    .filter(([, fields]) => fields[0] === 'event' && fields[1] === 'active')
    .map(([id]) => Number(id.split('-')[0]));
  expect(starts).toHaveLength(6);
  // Fixed windows: jobs 1-2, 3-4, 5-6 start in three distinct windows.
  expect(starts[2] - starts[0]).toBeGreaterThanOrEqual(400);
  expect(starts[4] - starts[2]).toBeGreaterThanOrEqual(400);
});

test('global concurrency (meta.concurrency, set by BullMQ) caps active jobs across workers', async () => {
  const name = uniqueQueue('global');
  const q = producer(name);
  await q.setGlobalConcurrency(2);
  let running = 0;
  let peak = 0;
  const proc = async () => {
    running += 1;
    peak = Math.max(peak, running);
    await sleep(50);
    running -= 1;
  };
  worker(name, proc, { concurrency: 5 });
  worker(name, proc, { concurrency: 5 });
  await q.addBulk(Array.from({ length: 12 }, () => ({ name: 'g', data: {} })));
  await finished(q, 12);
  expect(peak).toBeLessThanOrEqual(2);
});

test('a deduplicated job releases its deduplication key when it finishes', async () => {
  const name = uniqueQueue('dedup');
  const q = producer(name);
  const inspect = redis.client();
  const first = await q.add('d', { n: 1 }, { deduplication: { id: 'order-7' } });
  const second = await q.add('d', { n: 2 }, { deduplication: { id: 'order-7' } });
  expect(second.id).toBe(first.id);
  expect(await inspect.get(`bull:${name}:de:order-7`)).toBe(first.id);
  worker(name, async (job) => job.data.n);
  await finished(q, 1);
  expect(await inspect.exists(`bull:${name}:de:order-7`)).toBe(0);
  const third = await q.add('d', { n: 3 }, { deduplication: { id: 'order-7' } });
  expect(third.id).not.toBe(first.id);
});

test('a Redis restart mid-run loses no job and wedges no worker', async () => {
  const own = await startRedis();
  try {
    const name = uniqueQueue('restart');
    const conn = { port: own.port, retry: { initialDelay: 50, maxDelay: 300 } };
    const q = producer(name, own.port);
    const done = new Set();
    let w;
    const errors = [];
    w = new qn.Worker(name, async (job) => {
      await sleep(20);
      done.add(job.data.i);
    }, { connection: conn, concurrency: 4, lockDuration: 2000, stalledInterval: 1000 });
    w.on('error', (e) => errors.push(e.code));
    await q.addBulk(Array.from({ length: 100 }, (_, i) => ({ name: 'r', data: { i } })));
    await waitFor(() => done.size >= 20, { what: 'some progress' });
    expect(done.size).toBeLessThan(60);
    // A crash with a snapshot: work done after the SAVE is lost with the server, as in a
    // real crash, and must be redone (stalled recovery), never lost.
    const inspect = own.client();
    await inspect.call('SAVE');
    await own.restart();
    await waitFor(() => qn.health().endpoints.some((e) => e.endpoint.includes(`:${own.port}/`) && e.status === 'ready'), {
      timeout: 10000,
      what: 'reconnect',
    });
    const after = own.client();
    await waitFor(async () => {
      const c = await after.call('ZCARD', `bull:${name}:completed`);
      const active = await after.call('LLEN', `bull:${name}:active`);
      const wait = await after.call('LLEN', `bull:${name}:wait`);
      return Number(c) === 100 && Number(active) === 0 && Number(wait) === 0;
    }, { timeout: 40000, what: 'all 100 jobs completed after the restart' });
    expect(errors.length).toBeGreaterThan(0);
    expect(qn.health().reconnects).toBeGreaterThan(0);
    await w.close();
  } finally {
    // Close this server's clients before the server goes, or they would wait for it.
    while (closers.length) await closers.pop()();
    await own.stop();
  }
}, 60000);

test('close() during a Redis outage does not wait for the connection to come back', async () => {
  const own = await startRedis();
  const name = uniqueQueue('outage');
  const w = new qn.Worker(name, async () => {}, {
    connection: { port: own.port, retry: { initialDelay: 50, maxDelay: 200 } },
    drainDelay: 0.2,
  });
  w.on('error', () => {});
  await w.waitUntilReady();
  await own.stop();
  await sleep(300);
  const started = Date.now();
  await w.close();
  // Bounded by the fetch loop noticing the close, not by the outage.
  expect(Date.now() - started).toBeLessThan(3000);
  expect(w.isRunning()).toBe(false);
});
