'use strict';
// Flows, manual rate limits and job schedulers inside our Worker, against the real BullMQ 6:
// job.moveToWaitingChildren + WaitingChildrenError, failParentOnFailure, worker.rateLimit +
// RateLimitError, and the next iteration of `every` / cron job schedulers. Where the outcome
// is deterministic, a BullMQ Worker runs the same scenario on a twin queue (another prefix)
// and what the two leave in Redis is compared key by key.
const qn = require('..');
const { waitFor, sleep } = require('./helpers/redis-server');
const { bullmq, uniqueQueue, uniquePrefix, connectionFor } = require('./helpers/bull');
const { snapshot } = require('./helpers/snapshot');
const { useRedis } = require('./helpers/suite');

const { redis, inspect, closers, bullQueue, ourWorker: worker, bullWorker, finished, streamEntries } = useRedis();

const producer = (name, prefix = 'bull') => bullQueue(6, name, { prefix });

/** Our worker (impl) or BullMQ 6's (oracle), same processor and options. */
const makeWorker = (kind, name, processor, opts = {}) => (kind === 'ours' ? worker(name, processor, opts) : bullWorker(6, name, processor, opts));

const eventList = (prefix, name) => streamEntries(`${prefix}:${name}:events`);

describe('moveToWaitingChildren', () => {
  // BullMQ's documented pattern: the step lives in job.data; step 1 adds children, step 2
  // waits for them (WaitingChildrenError), step 3 runs once they are all done.
  function stepProcessor(kind, childQueue, steps, WaitingChildrenError) {
    return async (job, token) => {
      let step = job.data.step;
      for (;;) {
        steps.push(step);
        if (step === 'initial') {
          for (const n of [1, 2]) {
            await childQueue.add('kid', { n }, { parent: { id: job.id, queue: job.queueQualifiedName } });
          }
          await job.updateData({ step: 'wait' });
          step = 'wait';
        } else if (step === 'wait') {
          const moved = await job.moveToWaitingChildren(token);
          if (moved) throw new WaitingChildrenError();
          await job.updateData({ step: 'finish' });
          step = 'finish';
        } else {
          const values = await job.getChildrenValues();
          return Object.values(values).sort((a, b) => a - b);
        }
      }
    };
  }

  async function runSteps(kind, prefix) {
    const parentName = 'parents';
    const childName = 'kids';
    const pq = producer(parentName, prefix);
    const cq = producer(childName, prefix);
    const steps = [];
    const WaitingChildrenError = kind === 'ours' ? qn.WaitingChildrenError : bullmq[6].WaitingChildrenError;
    const parents = makeWorker(kind, parentName, stepProcessor(kind, cq, steps, WaitingChildrenError), { prefix });
    await pq.add('parent', { step: 'initial' }, { jobId: 'p1' });
    // The children run only once their parent waits for them (a deterministic order).
    await waitFor(async () => (await pq.getJobState('p1')) === 'waiting-children', { what: 'parent waiting' });
    const kids = makeWorker(kind, childName, async (job) => job.data.n * 10, { prefix });
    await finished(pq, 1);
    await finished(cq, 2);
    await parents.close();
    await kids.close();
    return { pq, steps };
  }

  test('the parent waits for children its processor added, then runs again; same data as BullMQ', async () => {
    const oursPrefix = uniquePrefix('wco');
    const bullPrefix = uniquePrefix('wcb');
    const [ours, theirs] = await Promise.all([runSteps('ours', oursPrefix), runSteps('bull', bullPrefix)]);
    expect(ours.steps).toEqual(['initial', 'wait', 'wait', 'finish']);
    expect(theirs.steps).toEqual(ours.steps);
    const parent = await ours.pq.getJob('p1');
    expect(parent.returnvalue).toEqual([10, 20]);
    expect(await parent.getState()).toBe('completed');
    // Waiting for children is not an attempt; both activations were started.
    expect(parent.attemptsMade).toBe(1);
    expect(parent.attemptsStarted).toBe(2);
    const events = (await eventList(oursPrefix, 'parents')).map((e) => `${e.event}${e.prev ? `<${e.prev}` : ''}`);
    expect(events).toEqual(expect.arrayContaining(['waiting-children<active', 'waiting<waiting-children']));
    expect(events.indexOf('waiting-children<active')).toBeLessThan(events.indexOf('waiting<waiting-children'));
    expect(await snapshot(inspect, oursPrefix)).toEqual(await snapshot(inspect, bullPrefix));
  });

  test('false when nothing is pending (the job stays active); a given child; BullMQ error classes by name', async () => {
    const name = uniqueQueue('wcfalse');
    const kidsName = uniqueQueue('wcfalsekids');
    const q = producer(name);
    const kq = producer(kidsName);
    const seen = [];
    worker(kidsName, async () => 'kid');
    worker(name, async (job, token) => {
      if (job.name === 'alone') {
        seen.push(['alone', await job.moveToWaitingChildren(token)]);
        return 'no children';
      }
      // Wait for one particular child only.
      if (!job.data.kid) {
        const kid = await kq.add('k', {}, { parent: { id: job.id, queue: job.queueQualifiedName }, delay: 300 });
        await job.updateData({ kid: kid.id });
        const moved = await job.moveToWaitingChildren(token, { child: { id: kid.id, queue: `bull:${kidsName}` } });
        seen.push(['first', moved]);
        if (moved) throw new bullmq[6].WaitingChildrenError();
        return 'unexpected';
      }
      const moved = await job.moveToWaitingChildren(token, { child: { id: job.data.kid, queue: `bull:${kidsName}` } });
      seen.push(['again', moved]);
      return 'after kid';
    });
    await q.add('alone', {}, { jobId: 'alone' });
    await q.add('parent', {}, { jobId: 'withkid' });
    await finished(q, 2);
    expect(seen).toEqual([['alone', false], ['first', true], ['again', false]]);
    expect((await q.getJob('alone')).returnvalue).toBe('no children');
    expect((await q.getJob('withkid')).returnvalue).toBe('after kid');
  });

  test('errors: not the lock owner, and a job with failed children', async () => {
    const name = uniqueQueue('wcerr');
    const q = producer(name);
    const errors = [];
    worker(name, async (job, token) => {
      await inspect.sadd(`bull:${name}:${job.id}:dependencies`, `bull:${name}:ghost`);
      try {
        await job.moveToWaitingChildren('not-my-token');
      } catch (err) {
        errors.push(err.code);
      }
      await inspect.zadd(`bull:${name}:${job.id}:unsuccessful`, Date.now(), `bull:${name}:ghost`);
      try {
        await job.moveToWaitingChildren(token);
      } catch (err) {
        errors.push(err.code);
      }
      await inspect.del(`bull:${name}:${job.id}:dependencies`, `bull:${name}:${job.id}:unsuccessful`);
      return 'ok';
    });
    await q.add('x', {});
    await finished(q, 1);
    expect(errors).toEqual(['ERR_LOCK_LOST', 'ERR_JOB_STATE']);
  });

  test('a child failing with failParentOnFailure fails its parent (deferred failure) through our worker', async () => {
    const name = uniqueQueue('fpof');
    const kidsName = uniqueQueue('fpofkids');
    const q = producer(name);
    const kq = producer(kidsName);
    const flow = new bullmq[6].FlowProducer({ connection: connectionFor(redis) });
    closers.push(() => flow.close());
    const tree = await flow.add({
      name: 'parent',
      queueName: name,
      data: {},
      opts: { attempts: 3 },
      children: [
        { name: 'ok', queueName: kidsName, data: {} },
        { name: 'bad', queueName: kidsName, data: {}, opts: { failParentOnFailure: true, delay: 200 } },
      ],
    });
    let parentRuns = 0;
    const failed = [];
    const pw = worker(name, async () => {
      parentRuns += 1;
      return 'must not run';
    });
    pw.on('failed', (job, err) => failed.push([job && job.id, job && job.name, err.name, err.message]));
    worker(kidsName, async (job) => {
      if (job.name === 'bad') throw new Error('child broke');
      return 'fine';
    });
    await finished(q, 1);
    const badKey = `bull:${kidsName}:${tree.children.find((c) => c.job.name === 'bad').job.id}`;
    const parent = await q.getJob(tree.job.id);
    expect(await parent.getState()).toBe('failed');
    expect(parent.failedReason).toBe(`child ${badKey} failed`);
    expect(parent.attemptsMade).toBe(1);
    expect(parentRuns).toBe(0);
    expect(failed).toEqual([[tree.job.id, 'parent', 'UnrecoverableError', `child ${badKey} failed`]]);
    expect(await inspect.zrange(`bull:${name}:${tree.job.id}:unsuccessful`, 0, -1)).toEqual([badKey]);
    expect(await inspect.hexists(`bull:${name}:${tree.job.id}`, 'defa')).toBe(0);
  });
});

describe('manual rate limit', () => {
  test('worker.rateLimit + RateLimitError: back to wait without an attempt, runs again after the limit', async () => {
    const name = uniqueQueue('ratelimit');
    const q = producer(name);
    const runs = [];
    let limitedAt;
    let pttl;
    const failed = [];
    const w = worker(name, async (job) => {
      runs.push({ id: job.id, at: Date.now(), atm: job.attemptsMade, ats: job.attemptsStarted });
      if (job.id === 'limited' && runs.filter((r) => r.id === 'limited').length === 1) {
        await w.rateLimit(600);
        limitedAt = Date.now();
        pttl = await inspect.pttl(`bull:${name}:limiter`);
        throw qn.Worker.RateLimitError();
      }
      return 'ok';
    });
    w.on('failed', (job, err) => failed.push(err.message));
    await q.add('x', {}, { jobId: 'limited', attempts: 1 });
    await waitFor(() => limitedAt, { what: 'the rate limit' });
    // The job is waiting again right away; nothing runs until the limit ends.
    await waitFor(async () => (await q.getJobState('limited')) === 'waiting', { what: 'job back in wait' });
    await q.add('y', {}, { jobId: 'next' });
    await finished(q, 2);
    expect(pttl).toBeGreaterThan(400);
    expect(await inspect.get(`bull:${name}:limiter`)).toBe(null);
    const second = runs.filter((r) => r.id === 'limited')[1];
    const next = runs.find((r) => r.id === 'next');
    expect(second.at - limitedAt).toBeGreaterThanOrEqual(500);
    expect(next.at - limitedAt).toBeGreaterThanOrEqual(500);
    // Not an attempt: attempts 1 and still completed; attemptsStarted counts both starts.
    expect(second.atm).toBe(0);
    expect(second.ats).toBe(2);
    const job = await q.getJob('limited');
    expect(job.returnvalue).toBe('ok');
    expect(job.attemptsMade).toBe(1);
    expect(failed).toEqual([]);
    const events = (await eventList('bull', name)).filter((e) => e.jobId === 'limited').map((e) => `${e.event}${e.prev ? `<${e.prev}` : ''}`);
    expect(events).toEqual(['added', 'waiting', 'active<waiting', 'waiting<active', 'active<waiting', 'completed<active']);
  });

  test("BullMQ's own rate-limit error (by message), a prioritized job goes to the front of its priority", async () => {
    const name = uniqueQueue('ratelimitprio');
    const q = producer(name);
    const order = [];
    let first = true;
    worker(name, async (job) => {
      order.push(job.name);
      if (first) {
        first = false;
        await q.rateLimit(600);
        await q.add('later-same-priority', {}, { priority: 3 });
        throw bullmq[6].Worker.RateLimitError();
      }
    }, { limiter: { max: 100, duration: 1000 } });
    await q.add('limited', {}, { priority: 3, jobId: 'p3' });
    // Back in `prioritized` at the front of priority 3 (no counter), while the limit holds.
    await waitFor(() => order.length === 1, { what: 'first run' });
    const score = await waitFor(() => inspect.zscore(`bull:${name}:prioritized`, 'p3'), { what: 'p3 prioritized again' });
    expect(Number(score)).toBe(3 * 2 ** 32);
    expect(order).toEqual(['limited']);
    await finished(q, 2);
    expect(order).toEqual(['limited', 'limited', 'later-same-priority']);
    expect((await q.getJob('p3')).attemptsMade).toBe(1);
  });

  test('what our worker leaves equals what a BullMQ Worker leaves', async () => {
    async function run(kind) {
      const prefix = uniquePrefix(kind === 'ours' ? 'rlo' : 'rlb');
      const q = producer('rl', prefix);
      await q.add('a', { n: 1 }, { jobId: 'a' });
      await q.add('b', { n: 2 }, { jobId: 'b', priority: 2 });
      await q.add('c', { n: 3 }, { jobId: 'c' });
      let limited = false;
      const w = makeWorker(kind, 'rl', async (job) => {
        if (job.id === 'b' && !limited) {
          limited = true;
          await q.rateLimit(300);
          throw new Error('bullmq:rateLimitExceeded');
        }
        return job.data.n;
      }, { prefix, limiter: { max: 10, duration: 1000 } });
      await finished(q, 3);
      await w.close();
      return prefix;
    }
    const [ours, theirs] = await Promise.all([run('ours'), run('bull')]);
    const strip = (snap) => {
      delete snap['rl:limiter']; // its window counter depends on timing
      return snap;
    };
    expect(strip(await snapshot(inspect, ours))).toEqual(strip(await snapshot(inspect, theirs)));
  });
});

describe('job schedulers', () => {
  // Everything a run leaves, with what legitimately differs between two runs normalised:
  // iteration ids `repeat:<id>:<ms>` become `repeat:<id>:+<ms since the first iteration>`,
  // times inside iteration opts and the `delay` of iterations become placeholders, and the
  // scheduler's every-offset (the phase of the upsert time) too. The opts JSON is compared as
  // text (key order included: cjson's order depends on how the Lua table was built).
  async function schedulerView(prefix) {
    let text = JSON.stringify(await snapshot(inspect, prefix));
    const first = {};
    for (const [, sid, ms] of text.matchAll(/repeat:([A-Za-z0-9_-]+):(\d{13})/g)) {
      first[sid] = Math.min(first[sid] ?? Infinity, Number(ms));
    }
    text = text.replace(/repeat:([A-Za-z0-9_-]+):(\d{13})/g, (_, sid, ms) => `repeat:${sid}:+${Number(ms) - first[sid]}`);
    const snap = JSON.parse(text);
    for (const [key, entry] of Object.entries(snap)) {
      if (entry.type === 'hash' && /:repeat:[^:]+:\+\d+$/.test(key)) {
        const h = entry.value;
        if (h.delay !== undefined) h.delay = '<delay>';
        // Compared as text: the same keys in the same order, only the times replaced.
        h.opts = h.opts.replace(/"(timestamp|prevMillis|delay)":\d+/g, '"$1":"<$1>"');
      } else if (entry.type === 'hash' && /:repeat:[^:]+$/.test(key) && entry.value.offset !== undefined && entry.value.every) {
        entry.value.offset = '<offset>';
      } else if (entry.type === 'stream') {
        for (const e of entry.value) if (e.event === 'delayed' && /^repeat:/.test(e.jobId)) e.delay = '<due>';
      }
    }
    return snap;
  }

  async function runScheduler(kind, prefix, upsert, runsWanted) {
    const q = producer('sched', prefix);
    await upsert(q);
    const runs = [];
    let done;
    const enough = new Promise((resolve) => (done = resolve));
    const w = makeWorker(kind, 'sched', async (job) => {
      runs.push({ id: job.id, name: job.name, data: job.data, at: Date.now() });
      return job.data;
    }, { prefix });
    w.on('completed', () => {
      if (runs.length >= runsWanted) done();
    });
    await enough;
    await w.close();
    return { q, runs, prefix };
  }

  test('every: our worker keeps producing iterations, the same ones a BullMQ Worker produces', async () => {
    const upsert = (q) => q.upsertJobScheduler('s', { every: 300 }, {
      name: 'tick',
      data: { a: 1 },
      opts: { attempts: 2, backoff: 50, removeOnComplete: false },
    });
    const [ours, theirs] = await Promise.all([
      runScheduler('ours', uniquePrefix('evo'), upsert, 4),
      runScheduler('bull', uniquePrefix('evb'), upsert, 4),
    ]);
    expect(ours.runs.length).toBeGreaterThanOrEqual(4);
    expect(ours.runs.every((r) => r.name === 'tick' && r.data.a === 1)).toBe(true);
    // Iteration n is due at first + n * every.
    const due = ours.runs.map((r) => Number(r.id.split(':')[2]));
    expect(due.slice(1).map((d, i) => d - due[i])).toEqual([300, 300, 300]);
    const sched = await inspect.hgetall(`${ours.prefix}:sched:repeat:s`);
    expect(Number(sched.ic)).toBe(5);
    const next = await inspect.zscore(`${ours.prefix}:sched:repeat`, 's');
    expect(Number(next)).toBe(due[3] + 300);
    const nextJob = await inspect.hgetall(`${ours.prefix}:sched:repeat:s:${due[3] + 300}`);
    const opts = JSON.parse(nextJob.opts);
    expect(opts).toMatchObject({ attempts: 2, backoff: { type: 'fixed', delay: 50 }, removeOnComplete: false,
      repeat: { every: 300, count: 5 }, repeatJobKey: 's', jobId: `repeat:s:${due[3] + 300}` });
    expect(opts.prevMillis).toBeUndefined();
    expect(nextJob.rjk).toBe('s');
    expect(await schedulerView(ours.prefix)).toEqual(await schedulerView(theirs.prefix));
  });

  test('pattern (cron, with seconds): iterations every second, the same ones a BullMQ Worker produces', async () => {
    const upsert = async (q) => {
      // Not right at a second boundary, where BullMQ's Queue adds the first iteration as
      // waiting instead of delayed (the producer's timing, not the worker's).
      while (Date.now() % 1000 < 100 || Date.now() % 1000 > 700) await sleep(10);
      await q.upsertJobScheduler('c', { pattern: '*/1 * * * * *', tz: 'Europe/Berlin' }, { name: 'cron', data: { b: 2 } });
    };
    const [ours, theirs] = await Promise.all([
      runScheduler('ours', uniquePrefix('cro'), upsert, 3),
      runScheduler('bull', uniquePrefix('crb'), upsert, 3),
    ]);
    expect(ours.runs.length).toBeGreaterThanOrEqual(3);
    const due = ours.runs.map((r) => Number(r.id.split(':')[2]));
    expect(due.every((d) => d % 1000 === 0)).toBe(true);
    expect(due.slice(1).map((d, i) => d - due[i])).toEqual([1000, 1000]);
    const next = Number(await inspect.zscore(`${ours.prefix}:sched:repeat`, 'c'));
    expect(next).toBe(due[2] + 1000);
    const opts = JSON.parse(await inspect.hget(`${ours.prefix}:sched:repeat:c:${next}`, 'opts'));
    expect(opts).toMatchObject({ prevMillis: next, attempts: 0, repeat: { pattern: '*/1 * * * * *', tz: 'Europe/Berlin', count: 4 } });
    expect(await schedulerView(ours.prefix)).toEqual(await schedulerView(theirs.prefix));
  }, 20000);

  test('limit and endDate stop the iterations; a removed scheduler is not iterated', async () => {
    const name = uniqueQueue('schedlimit');
    const q = producer(name);
    await q.upsertJobScheduler('lim', { every: 150, limit: 3 }, { name: 'l' });
    await q.upsertJobScheduler('end', { every: 150, endDate: Date.now() + 400 }, { name: 'e' });
    // A scheduler removed behind its waiting iteration's back: that one runs, nothing follows.
    await q.upsertJobScheduler('gone', { every: 150 }, { name: 'g' });
    await inspect.zrem(`bull:${name}:repeat`, 'gone');
    await inspect.del(`bull:${name}:repeat:gone`);
    const runs = { l: 0, e: 0, g: 0 };
    worker(name, async (job) => {
      runs[job.name] += 1;
    });
    await waitFor(() => runs.l === 3, { what: '3 runs of the limited scheduler' });
    await sleep(1200);
    expect(runs.l).toBe(3);
    expect(runs.e).toBeGreaterThanOrEqual(2);
    expect(runs.e).toBeLessThanOrEqual(4);
    expect(runs.g).toBe(1);
    expect(await q.getDelayedCount()).toBe(0);
    expect(Number(await inspect.hget(`bull:${name}:repeat:lim`, 'ic'))).toBe(3);
  });

  test('an invalid cron pattern is reported as an error event and the job still runs', async () => {
    const name = uniqueQueue('schedbad');
    const q = producer(name);
    await q.upsertJobScheduler('bad', { pattern: '*/1 * * * * *' }, { name: 'b' });
    // Corrupt the pattern the next iteration is computed from.
    const [id] = await inspect.zrange(`bull:${name}:delayed`, 0, 0);
    const opts = JSON.parse(await inspect.hget(`bull:${name}:${id}`, 'opts'));
    opts.repeat.pattern = 'not a pattern';
    await inspect.hset(`bull:${name}:${id}`, 'opts', JSON.stringify(opts));
    const errors = [];
    const w = new qn.Worker(name, async () => 'ran');
    w.on('error', (e) => errors.push(e));
    closers.push(() => w.close());
    await finished(q, 1);
    expect(errors.map((e) => e.code)).toEqual(['ERR_INVALID_OPTION']);
    expect(errors[0].message).toMatch(/job scheduler bad .*not a pattern/);
    expect((await q.getJob(id)).returnvalue).toBe('ran');
  });
});
