'use strict';
// BullMQ's worker semantics to the letter (issue 12). Each spec runs one scenario against
// BullMQ's own Worker (6, and 5 where it is cheap) and against ours, each on its own key
// prefix of the same private redis-server, and expects the same observable result: what is
// left in Redis, the events with their arguments, the Job's fields, error texts.
const qn = require('..');
const { waitFor, sleep } = require('./helpers/redis-server');
const { useRedis } = require('./helpers/suite');
const { bullmq, uniqueQueue, connectionFor } = require('./helpers/bull');
const { snapshot } = require('./helpers/snapshot');

const { redis, inspect, closers } = useRedis();

let prefixSeq = 0;

/**
 * One implementation's side of a comparison: kind 'bullmq6' | 'bullmq5' | 'ours', its own
 * prefix and queue name, and factories that close what they create after the test. Producers
 * are always BullMQ's Queue of that major (ours uses 6's), so only the Worker differs.
 */
function side(kind) {
  const major = kind === 'bullmq5' ? 5 : 6;
  const B = bullmq[major];
  prefixSeq += 1;
  const prefix = `sem${process.pid}${kind.replace('bullmq', 'b')}x${prefixSeq}`;
  const name = uniqueQueue('sem');
  const s = {
    kind,
    prefix,
    name,
    errors: kind === 'ours' ? qn : B,
    queue(opts = {}) {
      const q = new B.Queue(name, { connection: connectionFor(redis), prefix, ...opts });
      q.on('error', () => {});
      closers.push(() => q.close());
      return q;
    },
    /** The worker's 'error' events are collected in w.errors (a listener is always there). */
    worker(processor, opts = {}) {
      const w = kind === 'ours'
        ? new qn.Worker(name, processor, { prefix, ...opts })
        : new B.Worker(name, processor, { connection: connectionFor(redis), prefix, ...opts });
      w.errors = [];
      w.on('error', (err) => w.errors.push(err));
      closers.push(() => w.close());
      return w;
    },
    snapshot: () => snapshot(inspect, prefix),
  };
  return s;
}

/** Runs scenario(side) for each kind in turn; every result must equal the first kind's. */
async function compare(kinds, scenario) {
  const results = {};
  for (const kind of kinds) {
    try {
      results[kind] = await scenario(side(kind));
    } catch (err) {
      err.message = `[${kind}] ${err.message}`;
      throw err;
    }
  }
  for (const kind of kinds.slice(1)) expect({ [kind]: results[kind] }).toEqual({ [kind]: results[kinds[0]] });
  return results;
}

async function counts(q) {
  return q.getJobCounts('completed', 'failed', 'active', 'wait', 'delayed', 'waiting-children', 'prioritized');
}

async function settled(q, n, timeout = 15000) {
  await waitFor(async () => {
    const c = await q.getJobCounts('completed', 'failed');
    return c.completed + c.failed >= n;
  }, { timeout, what: `${n} jobs to finish` });
}

/** The fields of a Job a user reads, at the moment it is picked. */
function jobView(job) {
  return {
    id: job.id,
    name: job.name,
    data: job.data,
    opts: job.opts,
    attemptsMade: job.attemptsMade,
    attemptsStarted: job.attemptsStarted,
    stalledCounter: job.stalledCounter,
    delay: job.delay,
    priority: job.priority,
    progress: job.progress,
    processedBy: job.processedBy,
    failedReason: job.failedReason,
    returnvalue: job.returnvalue,
    parentKey: job.parentKey,
    finished: job.finishedOn !== undefined,
  };
}

const BOTH = ['bullmq6', 'ours'];
const ALL = ['bullmq6', 'bullmq5', 'ours'];

describe('1: exceptions from user code', () => {
  test.each(['completed', 'failed'])('a throwing %s listener is an error event; every job still ends, close() resolves', async (event) => {
    await compare(ALL, async (s) => {
      const q = s.queue();
      await q.addBulk([1, 2, 3, 4, 5].map((i) => ({ name: 'n', data: { i } })));
      const w = s.worker(async (job) => {
        if (event === 'failed') throw new Error(`no ${job.data.i}`);
        return job.data.i;
      }, { concurrency: 3 });
      const seen = [];
      w.on(event, (job) => {
        seen.push(job.id);
        if (job.data.i % 2 === 1) throw new Error(`listener threw for ${job.id}`);
      });
      await settled(q, 5);
      await waitFor(() => seen.length === 5, { what: `five ${event} events` });
      await w.close();
      return {
        counts: await counts(q),
        seen: seen.sort(),
        listenerErrors: w.errors.map((e) => e.message).filter((m) => m.startsWith('listener threw')).sort(),
      };
    });
  });

  test('a throwing active listener is an error event and the job still runs (ours; BullMQ strands it until the stalled check)', async () => {
    const s = side('ours');
    const q = s.queue();
    await q.addBulk([1, 2, 3].map((i) => ({ name: 'n', data: { i } })));
    const w = s.worker(async (job) => job.data.i, { concurrency: 2 });
    w.on('active', (job) => {
      if (job.data.i === 1) throw new Error('active listener threw');
    });
    await settled(q, 3);
    await w.close();
    expect(await counts(q)).toMatchObject({ completed: 3, active: 0 });
    expect(w.errors.map((e) => e.message)).toEqual(['active listener threw']);
  });

  test('a throwing error listener crashes like any emitter\'s, after the jobs of the delivery are handed over (ours)', () => {
    // In a child process: jest would take the crash as this test's own failure.
    const name = uniqueQueue('errl');
    const script = `
      const qn = require(${JSON.stringify(require.resolve('..'))});
      const { Queue } = require(${JSON.stringify(require.resolve('bullmq6'))});
      qn.configure({ port: ${redis.port} });
      const q = new Queue('${name}', { connection: { host: '127.0.0.1', port: ${redis.port} } });
      process.on('uncaughtException', (err) => console.log('uncaught ' + err.message));
      (async () => {
        await q.addBulk([1, 2, 3].map((i) => ({ name: 'n', data: { i } })));
        const w = new qn.Worker('${name}', async (job) => job.data.i, { concurrency: 3 });
        w.on('completed', () => { throw new Error('completed threw'); });
        w.on('error', () => { throw new Error('error listener threw'); });
        for (;;) {
          const c = await q.getJobCounts('completed');
          if (c.completed === 3) break;
          await new Promise((r) => setTimeout(r, 20));
        }
        await w.close();
        console.log('closed ' + JSON.stringify(await q.getJobCounts('completed', 'active')));
        await q.close();
        await qn.shutdown();
      })();
    `;
    const out = require('child_process').execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 20000 });
    expect(out.trim().split('\n')).toEqual([
      'uncaught error listener threw',
      'uncaught error listener threw',
      'uncaught error listener threw',
      'closed {"completed":3,"active":0}',
    ]);
  });

  test('processors that throw non-Errors or synchronously, and a throwing backoffStrategy, leave no job without an outcome (ours)', async () => {
    const s = side('ours');
    const q = s.queue();
    await q.add('sync', {});
    await q.add('string', {});
    await q.add('undef', {});
    await q.add('custom', {}, { attempts: 3, backoff: { type: 'mine' } });
    const w = s.worker((job) => {
      if (job.name === 'sync') throw new Error('sync throw');
      if (job.name === 'string') return Promise.reject('a string');
      if (job.name === 'undef') return Promise.reject(undefined);
      throw new Error('custom');
    }, { settings: { backoffStrategy: () => { throw new Error('strategy threw'); } } });
    await settled(q, 4);
    await w.close();
    expect(await counts(q)).toMatchObject({ failed: 4, active: 0 });
    expect(w.errors.map((e) => e.message)).toEqual(['strategy threw']);
  });
});

describe('7: the Job in the processor and in events', () => {
  test('attemptsMade, delay after a backoff, processedBy and opts with long names', async () => {
    await compare(ALL, async (s) => {
      const q = s.queue();
      await q.add('n', { x: 1 }, {
        jobId: 'j1', attempts: 3, backoff: { type: 'fixed', delay: 60 }, keepLogs: 5, deduplication: { id: 'd1' },
      });
      const seen = [];
      const w = s.worker(async (job) => {
        seen.push({ at: 'process', ...jobView(job) });
        if (job.attemptsMade < 2) throw new Error(`fail ${job.attemptsMade}`);
        return 'ok';
      }, { name: 'w-one' });
      w.on('completed', (job, result, prev) => seen.push({ at: 'completed', result, prev, ...jobView(job) }));
      w.on('failed', (job, err, prev) => seen.push({ at: 'failed', err: err.message, prev, ...jobView(job) }));
      await settled(q, 1);
      await waitFor(() => seen.length === 6, { what: 'six views' });
      await w.close();
      const stored = await q.getJob('j1');
      return { seen, stored: jobView(stored) };
    });
  });
});

describe('10: pause and resume', () => {
  test('paused / resumed events; run() resolves on pause; isRunning() and run() while paused', async () => {
    await compare(ALL, async (s) => {
      const q = s.queue();
      const log = [];
      const w = s.worker(async (job) => {
        log.push(`process ${job.data.i}`);
        return job.data.i;
      }, { autorun: false });
      for (const ev of ['paused', 'resumed', 'closed']) w.on(ev, () => log.push(`event ${ev}`));
      const first = w.run().then(() => log.push('first run() resolved'));
      await w.waitUntilReady();
      log.push(`running ${w.isRunning()} paused ${w.isPaused()}`);
      await q.add('n', { i: 1 });
      await settled(q, 1);
      await w.pause();
      await waitFor(() => log.includes('first run() resolved'), { what: 'run() to resolve after pause' });
      log.push(`after pause: running ${w.isRunning()} paused ${w.isPaused()}`);
      await w.run();
      log.push(`run() while paused resolved: running ${w.isRunning()}`);
      await q.add('n', { i: 2 });
      await sleep(200);
      log.push(`while paused: ${JSON.stringify(await counts(q))}`);
      await w.resume();
      log.push(`after resume: running ${w.isRunning()} paused ${w.isPaused()}`);
      await settled(q, 2);
      await w.close();
      await first;
      return log;
    });
  });

  test('resume() of a worker that never ran starts it, as BullMQ', async () => {
    await compare(ALL, async (s) => {
      const q = s.queue();
      const log = [];
      const w = s.worker(async () => 'ok', { autorun: false });
      w.on('resumed', () => log.push('event resumed'));
      await q.add('n', {});
      await w.resume();
      log.push(`running ${w.isRunning()}`);
      await settled(q, 1);
      await w.close();
      return log;
    });
  });
});

describe('11: validation', () => {
  test('a second run() rejects with "Worker is already running."', async () => {
    await compare(ALL, async (s) => {
      const w = s.worker(async () => 'ok');
      await w.waitUntilReady();
      const err = await w.run().then(() => null, (e) => e);
      return err && err.message;
    });
  });

  // For BullMQ constructors that throw: a connection that never connects leaves nothing behind.
  const idle = () => ({ ...connectionFor(redis), lazyConnect: true, retryStrategy: () => null });

  /** The error a constructor or call throws (sync or async), or null. */
  async function thrown(fn) {
    try {
      await fn();
      return null;
    } catch (err) {
      return err;
    }
  }

  test.each([
    ['concurrency NaN', { concurrency: NaN }],
    ['concurrency 0', { concurrency: 0 }],
    ['concurrency -1', { concurrency: -1 }],
    ['maxStalledCount -1', { maxStalledCount: -1 }],
    ['stalledInterval 0', { stalledInterval: 0 }],
    ['stalledInterval -5', { stalledInterval: -5 }],
    ['drainDelay 0', { drainDelay: 0 }],
    ['drainDelay -1', { drainDelay: -1 }],
  ])('worker option %s: our message carries BullMQ\'s text, our code stays', async (_label, opts) => {
    const name = uniqueQueue('val');
    const theirs = await thrown(() => new bullmq[6].Worker(name, async () => {}, { connection: idle(), autorun: false, ...opts }));
    const ours = await thrown(() => new qn.Worker(name, async () => {}, { autorun: false, ...opts }));
    expect(theirs).not.toBeNull();
    expect(ours).toBeInstanceOf(qn.QueueNativeError);
    expect(ours.code).toBe('ERR_INVALID_OPTION');
    expect(ours.message).toContain(theirs.message);
  });

  test('worker.concurrency = 0 / NaN: BullMQ\'s text', async () => {
    const name = uniqueQueue('val');
    const theirsW = new bullmq[6].Worker(name, async () => {}, { connection: connectionFor(redis), autorun: false });
    closers.push(() => theirsW.close());
    const oursW = new qn.Worker(name, async () => {}, { autorun: false });
    closers.push(() => oursW.close());
    for (const bad of [0, -1, NaN]) {
      const theirs = await thrown(() => { theirsW.concurrency = bad; });
      const ours = await thrown(() => { oursW.concurrency = bad; });
      expect(ours.code).toBe('ERR_INVALID_OPTION');
      expect(ours.message).toContain(theirs.message);
    }
  });

  test('one wording per rule: lockDuration -1 and 0', async () => {
    const a = await thrown(() => new qn.Worker('q', async () => {}, { autorun: false, lockDuration: -1 }));
    const b = await thrown(() => new qn.Worker('q', async () => {}, { autorun: false, lockDuration: 0 }));
    expect(a.code).toBe('ERR_INVALID_OPTION');
    expect(a.message).toBe(b.message);
  });

  test.each([['empty', ''], ['with a colon', 'a:b']])('queue name %s: BullMQ\'s text for Worker and Queue', async (_label, name) => {
    const theirs = await thrown(() => new bullmq[6].Worker(name, async () => {}, { connection: idle(), autorun: false }));
    const oursW = await thrown(() => new qn.Worker(name, async () => {}, { autorun: false }));
    const theirsQ = await thrown(() => new bullmq[6].Queue(name, { connection: idle() }));
    const oursQ = await thrown(() => new qn.Queue(name));
    for (const ours of [oursW, oursQ]) {
      expect(ours.code).toBe('ERR_INVALID_OPTION');
      expect(ours.message).toContain(theirs.message);
    }
    expect(theirsQ.message).toBe(theirs.message);
  });

  test.each([
    ['0', '0'],
    ['0:x', '0:x'],
    ['an integer', '42'],
    ['a colon', 'a:b'],
  ])('jobId %s: BullMQ\'s text', async (_label, jobId) => {
    const name = uniqueQueue('val');
    const theirsQ = new bullmq[6].Queue(name, { connection: connectionFor(redis) });
    closers.push(() => theirsQ.close());
    const oursQ = new qn.Queue(name);
    closers.push(() => oursQ.close());
    const theirs = await thrown(() => theirsQ.add('n', {}, { jobId }));
    const ours = await thrown(() => oursQ.add('n', {}, { jobId }));
    expect(theirs).not.toBeNull();
    expect(ours.code).toBe('ERR_INVALID_OPTION');
    expect(ours.message).toContain(theirs.message);
  });
});

describe('2 and 3: parents with unfinished or failed children', () => {
  test('2: a parent that completes while a child is pending fails with "has pending dependencies"', async () => {
    await compare(ALL, async (s) => {
      const q = s.queue();
      const kids = new (s.kind === 'bullmq5' ? bullmq[5] : bullmq[6]).Queue(`${s.name}-kids`, { connection: connectionFor(redis), prefix: s.prefix });
      closers.push(() => kids.close());
      await q.add('parent', {}, { jobId: 'p1' });
      await kids.add('kid', {}, { jobId: 'k1', parent: { id: 'p1', queue: `${s.prefix}:${s.name}` } });
      const failed = [];
      const w = s.worker(async () => 'done');
      w.on('failed', (job, err) => failed.push({ id: job.id, message: err.message, attemptsMade: job.attemptsMade }));
      await settled(q, 1);
      await waitFor(() => failed.length === 1 && w.errors.length >= 1, { what: 'failed and error events' });
      await w.close();
      const parent = await q.getJob('p1');
      return {
        state: await parent.getState(),
        failedReason: parent.failedReason,
        attemptsMade: parent.attemptsMade,
        failed,
        errors: [...new Set(w.errors.map((e) => e.message))],
        kid: await (await kids.getJob('k1')).getState(),
      };
    });
  });

  test('3: moveToWaitingChildren with a failed child fails the parent at once, without retries', async () => {
    await compare(ALL, async (s) => {
      const q = s.queue();
      await q.add('parent', {}, { jobId: 'p1', attempts: 3 });
      const failed = [];
      const w = s.worker(async (job, token) => {
        if (job.name === 'kid') throw new Error('kid fails');
        const kid = await q.add('kid', {}, { jobId: 'k1', parent: { id: job.id, queue: job.queueQualifiedName }, failParentOnFailure: true });
        await waitFor(async () => (await q.getJobState(kid.id)) === 'failed', { what: 'the kid to fail' });
        await job.moveToWaitingChildren(token);
        return 'not reached';
      }, { concurrency: 2 });
      w.on('failed', (job, err) => failed.push({ id: job.id, name: err.name, message: err.message, attemptsMade: job.attemptsMade }));
      await settled(q, 2);
      await waitFor(() => failed.length === 2, { what: 'two failed events' });
      await w.close();
      const parent = await q.getJob('p1');
      return {
        state: await parent.getState(),
        failedReason: parent.failedReason,
        attemptsMade: parent.attemptsMade,
        failed,
      };
    });
  });
});

describe('6: the events stream cap', () => {
  test('maxLenEvents 0 still leaves the worker\'s own last events, as BullMQ trims before adding', async () => {
    await compare(ALL, async (s) => {
      const q = s.queue({ streams: { events: { maxLen: 0 } } });
      await q.waitUntilReady();
      await q.add('n', {}, { jobId: 'a' });
      const w = s.worker(async () => 'ok');
      await settled(q, 1);
      await w.close();
      const events = (await inspect.xrange(`${s.prefix}:${s.name}:events`, '-', '+')).map(([, flat]) => `${flat[1]}${flat[2] === 'jobId' ? ` ${flat[3]}` : ''}`);
      return events;
    });
  });
});

describe('12: lock and missing-key messages', () => {
  test.each([
    ['lock mismatch', async (name, prefix, job) => inspect.set(`${prefix}:${name}:${job.id}:lock`, 'someone-else')],
    ['missing key', async (name, prefix, job) => inspect.del(`${prefix}:${name}:${job.id}`)],
  ])('%s when finishing: BullMQ\'s error text', async (_label, sabotage) => {
    await compare(ALL, async (s) => {
      const q = s.queue();
      await q.add('n', {}, { jobId: 'j1' });
      const w = s.worker(async (job) => {
        await sabotage(s.name, s.prefix, job);
        return 'ok';
      });
      await waitFor(() => w.errors.length >= 1, { what: 'an error event' });
      await sleep(100);
      await w.close(true);
      return { errors: [...new Set(w.errors.map((e) => e.message))], counts: await counts(q) };
    });
  });
});

describe('8: start order', () => {
  test('the jobs of one fetched batch start in queue order', async () => {
    await compare(ALL, async (s) => {
      const q = s.queue();
      const rounds = [];
      for (let round = 0; round < 3; round++) {
        await q.addBulk([1, 2, 3, 4, 5].map((i) => ({ name: 'n', data: { i } })));
        const started = [];
        const w = s.worker(async (job) => {
          started.push(job.data.i);
          await sleep(20);
        }, { concurrency: 5 });
        await settled(q, 5 * (round + 1));
        await w.close();
        rounds.push(started);
      }
      return rounds;
    });
  });
});

describe('9: getDependenciesCount', () => {
  test('processed, unprocessed, ignored and failed, as BullMQ counts them; opts pick types', async () => {
    await compare(ALL, async (s) => {
      const parents = s.queue();
      const B = s.kind === 'bullmq5' ? bullmq[5] : bullmq[6];
      const kids = new B.Queue(`${s.name}-kids`, { connection: connectionFor(redis), prefix: s.prefix });
      closers.push(() => kids.close());
      await parents.add('parent', {}, { jobId: 'p1' });
      const parent = { id: 'p1', queue: `${s.prefix}:${s.name}` };
      await kids.add('ok', {}, { jobId: 'k1', parent });
      await kids.add('ignored', {}, { jobId: 'k2', parent, ignoreDependencyOnFailure: true });
      await kids.add('failing', {}, { jobId: 'k3', parent, failParentOnFailure: true });
      await kids.add('later', {}, { jobId: 'k4', parent, delay: 3600000 });
      const kidsProcessor = async (job) => {
        if (job.name !== 'ok') throw new Error('no');
        return 'ok';
      };
      const kidWorker = s.kind === 'ours'
        ? new qn.Worker(`${s.name}-kids`, kidsProcessor, { prefix: s.prefix })
        : new B.Worker(`${s.name}-kids`, kidsProcessor, { connection: connectionFor(redis), prefix: s.prefix });
      kidWorker.on('error', () => {});
      closers.push(() => kidWorker.close());
      await settled(kids, 3);
      await kidWorker.close();
      let read;
      if (s.kind === 'ours') {
        const ours = new qn.Queue(s.name, { prefix: s.prefix });
        closers.push(() => ours.close());
        read = await ours.getJob('p1');
      } else {
        read = await parents.getJob('p1');
      }
      return {
        all: await read.getDependenciesCount(),
        some: await read.getDependenciesCount({ failed: true, processed: true }),
      };
    });
  });
});

describe('4: add() and a Worker of the same process', () => {
  // BullMQ's Worker usually starts a job after its add() resolved (activation costs it one
  // more round trip), but not always: in a run of 40 adds a few start first. Ours holds the
  // jobs of a delivery until the adds pending then have settled: never first.
  test('add() resolves, and the code awaiting it runs, before its job starts (ours)', async () => {
    const s = side('ours');
    const q = new qn.Queue(s.name, { prefix: s.prefix });
    closers.push(() => q.close());
    const log = [];
    const w = s.worker(async (job) => {
      log.push(`start ${job.id}`);
    }, { concurrency: 4 });
    await w.waitUntilReady();
    for (let i = 0; i < 60; i++) {
      const job = await q.add('n', { i });
      log.push(`added ${job.id}`);
      if (i % 8 === 0) await sleep(5);
    }
    const jobs = await q.addBulk([1, 2, 3].map((i) => ({ name: 'bulk', data: { i } })));
    for (const job of jobs) log.push(`added ${job.id}`);
    await waitFor(async () => (await q.getJobCounts('completed')).completed === 63, { timeout: 15000, what: '63 jobs' });
    const early = log.filter((line) => line.startsWith('start ') && log.indexOf(`added ${line.slice(6)}`) > log.indexOf(line));
    expect(early).toEqual([]);
    expect(log.filter((l) => l.startsWith('start')).length).toBe(63);
  });
});

describe('5: worker.rateLimit goes through Redis', () => {
  test.each([
    ['without a limiter, a worker that does not throw RateLimitError goes on', undefined, false, false],
    ['with a limiter, the next fetch sees the key, then waits what it reported', { max: 10, duration: 1000 }, false, true],
    ['RateLimitError: the worker waits the key\'s TTL', undefined, true, false],
  ])('%s', async (_label, limiter, throwIt, removeKey) => {
    await compare(BOTH, async (s) => {
      const q = s.queue();
      await q.add('first', {});
      const done = [];
      let limited = false;
      const t0 = Date.now();
      const w = s.worker(async (job) => {
        if (!limited) {
          limited = true;
          await w.rateLimit(3000);
          if (throwIt) throw s.errors.Worker.RateLimitError();
        }
        done.push([job.name, Date.now() - t0]);
        return 'ok';
      }, limiter ? { limiter } : {});
      await waitFor(() => limited, { what: 'the limit' });
      await sleep(100);
      await q.add('second', {});
      if (removeKey) {
        await sleep(200);
        await q.removeRateLimitKey();
      }
      await waitFor(() => done.length === 2, { timeout: 8000, what: 'the jobs' });
      await w.close();
      // Before the limit's 3 s ran out, or after.
      return done.map(([name, ms]) => `${name} ${ms < 2500 ? 'soon' : 'after the limit'}`);
    });
  });
});
