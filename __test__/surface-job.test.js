'use strict';
// Job methods (getState, remove, promote, changePriority, changeDelay, logs, locks,
// dependencies, deduplication, waitUntilFinished, Job.fromId...) against BullMQ's: the same
// data is set up under two prefixes by BullMQ's own Queue / FlowProducer / manual Worker; then
// the same calls run through BullMQ's Job on one and ours on the other, and the results and
// everything left in Redis must be the same.
const qn = require('..');
const { waitFor } = require('./helpers/redis-server');
const { useRedis } = require('./helpers/suite');
const { bullmq, uniqueQueue, connectionFor } = require('./helpers/bull');
const { sideBySide, step } = require('./helpers/side-by-side');

const { redis, inspect, closers } = useRedis();

const { bullQueue, manualWorker, flowProducer, compare } = sideBySide({ redis, inspect, closers });

const STATES = ['isCompleted', 'isFailed', 'isDelayed', 'isActive', 'isWaiting', 'isWaitingChildren'];

test('getState, the isX() checks, queue.getJobState and Job.fromId in every state', async () => {
  const results = await compare(
    async ({ producer, prefix, name }) => {
      for (const id of ['a1', 'a2', 'a3']) await producer.add('a', { id }, { jobId: id });
      const w = manualWorker(name, prefix);
      const j1 = await w.getNextJob('tok', { block: false });
      await j1.moveToCompleted({ r: 1 }, 'tok', false);
      const j2 = await w.getNextJob('tok', { block: false });
      await j2.moveToFailed(new Error('bad'), 'tok', false);
      await w.getNextJob('tok3', { block: false });
      await producer.add('w', {}, { jobId: 'w' });
      await producer.add('d', {}, { jobId: 'd', delay: 60000 });
      await producer.add('p', {}, { jobId: 'p', priority: 4 });
      await flowProducer(prefix).add({
        name: 'parent', queueName: name, data: {}, opts: { jobId: 'parent' },
        children: [{ name: 'child', queueName: name, data: {}, opts: { jobId: 'child' } }],
      });
      await producer.pause();
      await producer.add('paused', {}, { jobId: 'pw' });
    },
    async ({ Job, queue }) => {
      const out = {};
      for (const id of ['a1', 'a2', 'a3', 'w', 'd', 'p', 'parent', 'child', 'pw']) {
        const job = await Job.fromId(queue, id);
        const flags = [];
        for (const m of STATES) flags.push(await job[m]());
        out[id] = { state: await job.getState(), flags, viaQueue: await queue.getJobState(id) };
      }
      out.missing = [await Job.fromId(queue, 'nope'), await queue.getJobState('nope')];
      return out;
    },
  );
  expect(results.a1.state).toBe('completed');
  expect(results.pw.state).toBe('waiting');
  expect(results.parent.state).toBe('waiting-children');
  expect(results.missing).toEqual([null, 'unknown']); // undefined, as JSON
});

test('remove: waiting, delayed, locked, children, parents released, queue.remove', async () => {
  const results = await compare(
    async ({ producer, prefix, name }) => {
      await producer.add('act', {}, { jobId: 'act' });
      await manualWorker(name, prefix).getNextJob('tok', { block: false });
      await producer.add('w', {}, { jobId: 'w' });
      await producer.add('d', {}, { jobId: 'd', delay: 60000 });
      await producer.add('dd', {}, { jobId: 'dd', deduplication: { id: 'dedup-1' } });
      const flow = flowProducer(prefix);
      const node = (id, children) => ({ name: id, queueName: name, data: {}, opts: { jobId: id }, children });
      // One child per level: Redis iterates a set in hash order, which differs between the
      // two prefixes, and the order of removals shows in the events.
      await flow.add(node('P', [node('c2', [node('gc')])]));
      await flow.add(node('Q', [node('q1')]));
      await flow.add(node('R', [node('r1')]));
      await flow.add(node('S', [node('s1'), node('s2')]));
    },
    async ({ Job, queue }) => {
      const out = [];
      const removeJob = async (id, opts) => {
        const job = await Job.fromId(queue, id);
        out.push([id, await step(() => job.remove(opts))]);
      };
      await removeJob('w');
      await removeJob('d');
      await removeJob('dd');
      await removeJob('act');
      await removeJob('q1'); // Q's last child: Q goes back to waiting
      await removeJob('P'); // with its children and grandchild
      await removeJob('R', { removeChildren: false });
      await removeJob('s1');
      out.push(['queue.remove s2', await step(() => queue.remove('s2'))]);
      out.push(['queue.remove nope', await step(() => queue.remove('nope'))]);
      out.push(['queue.remove act', await step(() => queue.remove('act'))]);
      for (const id of ['Q', 'S', 'r1']) out.push([id, await queue.getJobState(id)]);
      return out;
    },
  );
  expect(results.find(([id]) => id === 'act')[1].error).toMatch(/locked/);
});

test('promote, changeDelay and changePriority (with BullMQ errors for the wrong state)', async () => {
  const results = await compare(
    async ({ producer }) => {
      await producer.add('d1', {}, { jobId: 'd1', delay: 60000 });
      await producer.add('d2', {}, { jobId: 'd2', delay: 60000 });
      await producer.add('dp', {}, { jobId: 'dp', delay: 60000, priority: 7 });
      for (const id of ['w1', 'w2', 'w3']) await producer.add(id, {}, { jobId: id });
      await producer.add('p1', {}, { jobId: 'p1', priority: 3 });
      await producer.add('p2', {}, { jobId: 'p2', priority: 3 });
    },
    async ({ Job, queue }) => {
      const get = (id) => Job.fromId(queue, id);
      const out = {};
      const d1 = await get('d1');
      out.promote = await step(() => d1.promote());
      out.d1 = [d1.delay, await d1.getState()];
      out.promoteAgain = await step(() => d1.promote());
      out.promoteWaiting = await step(async () => (await get('w1')).promote());
      out.promotePrioritized = await step(async () => (await get('dp')).promote());
      const d2 = await get('d2');
      out.changeDelay = await step(() => d2.changeDelay(30000));
      out.d2 = d2.delay;
      out.changeDelayWaiting = await step(async () => (await get('w1')).changeDelay(10));
      const w2 = await get('w2');
      out.toPriority = await step(() => w2.changePriority({ priority: 5 }));
      out.w2 = [w2.priority, await w2.getState()];
      const p1 = await get('p1');
      out.toZero = await step(() => p1.changePriority({ priority: 0 }));
      out.p1 = [p1.priority, await p1.getState()];
      out.lifoPriority = await step(async () => (await get('p2')).changePriority({ priority: 3, lifo: true }));
      out.lifoZero = await step(async () => (await get('w3')).changePriority({ priority: 0, lifo: true }));
      const ghost = await get('w1');
      await queue.remove('w1');
      out.missing = await step(() => ghost.changePriority({ priority: 2 }));
      out.missingDelay = await step(() => ghost.changeDelay(5));
      return out;
    },
  );
  expect(results.promoteWaiting.error).toBe('Job w1 is not in the delayed state. promote');
  expect(results.missing.error).toBe('Missing key for job w1. changePriority');
});

test('logs, clearLogs, data, progress and extendLock', async () => {
  await compare(
    async ({ producer, prefix, name }) => {
      await producer.add('a', { x: 1 }, { jobId: 'a' });
      await manualWorker(name, prefix).getNextJob('tok', { block: false });
      await producer.add('b', { x: 2 }, { jobId: 'b' });
    },
    async ({ Job, queue }) => {
      const out = [];
      const a = await Job.fromId(queue, 'a');
      const b = await Job.fromId(queue, 'b');
      for (const line of ['one', 'two', 'three']) out.push(await b.log(line));
      await b.clearLogs(2);
      out.push(await queue.getJobLogs('b'));
      await b.clearLogs();
      out.push(await queue.getJobLogs('b'));
      await b.updateData({ y: 2 });
      await b.updateProgress(42);
      await b.updateProgress({ step: 'x' });
      out.push((await Job.fromId(queue, 'b')).data, (await Job.fromId(queue, 'b')).progress);
      out.push(await a.extendLock('tok', 60000));
      out.push(await a.extendLock('other', 60000));
      out.push(await b.extendLock('tok', 60000));
      return out;
    },
  );
  // The lock was extended to 60 s on both sides.
});

test('dependencies: getDependencies (all and paged), counts, children values, ignored failures, removeChildDependency', async () => {
  const results = await compare(
    async ({ prefix, name }) => {
      const node = (id, opts = {}, children) => ({
        name: id, queueName: name, data: { id }, opts: { jobId: id, ...opts }, children,
      });
      await flowProducer(prefix).add(
        node('P', {}, [node('c1'), node('c2', { delay: 60000 }), node('c3', { ignoreDependencyOnFailure: true }), node('c4', { delay: 60000 })]),
      );
      const w = manualWorker(name, prefix);
      for (let i = 0; i < 2; i++) {
        const job = await w.getNextJob('tok', { block: false });
        if (job.id === 'c1') await job.moveToCompleted({ value: 'c1 done' }, 'tok', false);
        else await job.moveToFailed(new Error(`${job.id} failed`), 'tok', false);
      }
    },
    async ({ Job, queue }) => {
      const P = await Job.fromId(queue, 'P');
      const out = {};
      out.all = await P.getDependencies();
      out.all.unprocessed.sort();
      const page = await P.getDependencies({ processed: {}, unprocessed: { count: 10 }, ignored: {}, failed: {} });
      page.unprocessed.sort();
      out.page = page;
      out.counts = await P.getDependenciesCount();
      out.someCounts = await P.getDependenciesCount({ processed: true, unprocessed: true });
      out.values = await P.getChildrenValues();
      out.ignored = await P.getIgnoredChildrenFailures();
      out.failedValues = await P.getFailedChildrenValues();
      const c2 = await Job.fromId(queue, 'c2');
      out.unlink = await step(() => c2.removeChildDependency());
      out.c2 = [c2.parentKey, c2.parent];
      out.unlinkAgain = await step(async () => (await Job.fromId(queue, 'c2')).removeChildDependency());
      const c4 = await Job.fromId(queue, 'c4');
      out.unlinkLast = await step(() => c4.removeChildDependency());
      out.parentState = await P.getState();
      out.orphan = await step(async () => (await Job.fromId(queue, 'c1')).removeChildDependency());
      return out;
    },
  );
  expect(Object.values(results.values)).toEqual([{ value: 'c1 done' }]);
  expect(results.parentState).toBe('waiting');
});

test('removeDeduplicationKey releases only what the job still holds', async () => {
  await compare(
    async ({ producer }) => {
      await producer.add('a', {}, { jobId: 'a', deduplication: { id: 'k1' } });
      await producer.add('b', {}, { jobId: 'b' });
    },
    async ({ Job, queue }) => {
      const a = await Job.fromId(queue, 'a');
      const b = await Job.fromId(queue, 'b');
      return [await a.removeDeduplicationKey(), await a.removeDeduplicationKey(), await b.removeDeduplicationKey()];
    },
  );
});

test('waitUntilFinished (before and after the finish, failure, ttl) with QueueEvents, like BullMQ', async () => {
  const outcomes = {};
  for (const side of ['bull', 'ours']) {
    const name = uniqueQueue(`wuf-${side}`);
    const producer = bullQueue(name);
    const qe = side === 'bull' ? new bullmq[6].QueueEvents(name, { connection: connectionFor(redis) }) : new qn.QueueEvents(name);
    qe.on('error', () => {});
    closers.push(() => qe.close());
    const queue = side === 'bull' ? producer : new qn.Queue(name);
    if (side === 'ours') closers.push(() => queue.close());
    const Job = side === 'bull' ? bullmq[6].Job : qn.Job;
    await qe.waitUntilReady();
    await producer.add('ok', { n: 2 }, { jobId: 'ok' });
    await producer.add('bad', {}, { jobId: 'bad' });
    await producer.add('early', {}, { jobId: 'early' });
    await producer.add('slow', {}, { jobId: 'slow', delay: 60000 });
    const w = new qn.Worker(name, async (job) => {
      if (job.name === 'bad') throw new Error('it broke');
      return { doubled: job.data.n * 2 };
    });
    w.on('error', () => {});
    closers.push(() => w.close());
    const ok = await Job.fromId(queue, 'ok');
    const bad = await Job.fromId(queue, 'bad');
    const early = await Job.fromId(queue, 'early');
    await waitFor(async () => (await queue.getJobState('early')) === 'completed', { what: 'early to complete' });
    const slow = await Job.fromId(queue, 'slow');
    outcomes[side] = {
      ok: await step(() => ok.waitUntilFinished(qe)),
      bad: await step(() => bad.waitUntilFinished(qe)),
      early: await step(() => early.waitUntilFinished(qe)),
      slow: await step(() => slow.waitUntilFinished(qe, 150)),
    };
  }
  expect(outcomes.ours).toEqual(outcomes.bull);
  expect(outcomes.ours.ok).toEqual({ doubled: 4 });
});

test('one Job class: a processor job has the same methods; discard() makes the failure final', async () => {
  const name = uniqueQueue('proc');
  const producer = bullQueue(name);
  await producer.add('x', {}, { jobId: 'x', attempts: 3 });
  const seen = {};
  const w = new qn.Worker(name, async (job) => {
    seen.state = await job.getState();
    seen.isActive = await job.isActive();
    seen.instance = job instanceof qn.Job;
    job.discard();
    throw new Error('no retry');
  });
  w.on('error', () => {});
  closers.push(() => w.close());
  await waitFor(async () => (await producer.getJobState('x')) === 'failed', { what: 'x to fail' });
  expect(seen).toEqual({ state: 'active', isActive: true, instance: true });
  expect((await producer.getJob('x')).attemptsMade).toBe(1);
});

test("job.retry() on a job from the worker's 'failed' event sends it back, as BullMQ's", async () => {
  const name = uniqueQueue('retry-evt');
  const producer = bullQueue(name);
  await producer.add('flaky', {}, { jobId: 'flaky' });
  let calls = 0;
  const w = new qn.Worker(name, async () => {
    calls += 1;
    if (calls === 1) throw new Error('first time');
    return 'second time';
  });
  w.on('error', () => {});
  w.on('failed', (job) => {
    job.retry().catch(() => {});
  });
  closers.push(() => w.close());
  await waitFor(async () => (await producer.getJobState('flaky')) === 'completed', { what: 'flaky to complete on retry' });
  const job = await producer.getJob('flaky');
  expect([calls, job.returnvalue, job.failedReason]).toEqual([2, 'second time', undefined]);
});
