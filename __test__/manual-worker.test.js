'use strict';
// Manual processing (new Worker(name, null), getNextJob, job.moveToCompleted / moveToFailed)
// side by side with BullMQ's: the same jobs moved by hand leave the same Redis state, with the
// same retry rules, on the process's two sockets.
const qn = require('..');
const { ourClients } = require('./helpers/redis-server');
const { useRedis } = require('./helpers/suite');
const { bullmq, connectionFor } = require('./helpers/bull');
const { sideBySide, step } = require('./helpers/side-by-side');

const { redis, inspect, closers } = useRedis();

const { compare } = sideBySide({ redis, inspect, closers });

function worker(side, name, prefix) {
  const w =
    side === 'bull'
      ? new bullmq[6].Worker(name, null, { connection: connectionFor(redis), prefix, autorun: false, skipStalledCheck: true, skipLockRenewal: true })
      : new qn.Worker(name, null, { prefix });
  w.on('error', () => {});
  closers.push(() => w.close());
  return w;
}

test('getNextJob, moveToCompleted (with and without fetching the next), moveToFailed with retries and a final failure', async () => {
  const results = await compare(
    async ({ producer }) => {
      await producer.add('ok', { n: 1 }, { jobId: 'ok' });
      await producer.add('retry', { n: 2 }, { jobId: 'retry', attempts: 2 });
      await producer.add('later', { n: 3 }, { jobId: 'later', attempts: 3, backoff: { type: 'fixed', delay: 60000 } });
      await producer.add('fatal', { n: 4 }, { jobId: 'fatal', attempts: 5, removeOnFail: true });
      await producer.add('last', { n: 5 }, { jobId: 'last' });
    },
    async ({ name, prefix, side, queue, Job }) => {
      const w = worker(side, name, prefix);
      const UnrecoverableError = side === 'bull' ? bullmq[6].UnrecoverableError : qn.UnrecoverableError;
      const out = [];
      const ok = await w.getNextJob('t1', { block: false });
      out.push([ok.id, ok.data, ok.name]);
      const next = await ok.moveToCompleted({ done: true }, 't1', true);
      out.push(next ? next[1] : null); // 'retry', taken by the same call with the same token
      const retry = await Job.fromId(queue, 'retry');
      await retry.moveToFailed(new Error('first failure'), 't1'); // attempt 1 of 2: back to wait
      out.push(await retry.getState());
      const later = await w.getNextJob('t2', { block: false });
      out.push(later.id);
      await later.moveToFailed(new Error('backoff'), 't2'); // 60 s fixed backoff: delayed
      out.push(await later.getState());
      const fatal = await w.getNextJob('t3', { block: false });
      await fatal.moveToFailed(new UnrecoverableError('no retry'), 't3'); // removeOnFail: gone
      out.push([fatal.id, await queue.getJobState('fatal')]);
      const last = await w.getNextJob('t4', { block: false });
      out.push(last.id);
      out.push(await step(async () => (await last.moveToCompleted('x', 'wrong-token', false)) === undefined));
      await last.moveToFailed(new Error('only attempt'), 't4');
      out.push(await last.getState());
      const again = await w.getNextJob('t5', { block: false });
      out.push(again.id);
      await again.moveToFailed(new Error('second failure'), 't5'); // attempts exhausted
      out.push(await again.getState());
      out.push((await w.getNextJob('t6', { block: false })) ?? null);
      return out.map((x) => (x && x.error ? 'threw' : x));
    },
  );
  expect(results).toEqual([
    ['ok', { n: 1 }, 'ok'], 'retry', 'waiting', 'later', 'delayed', ['fatal', 'unknown'],
    'last', 'threw', 'failed', 'retry', 'failed', null,
  ]);
});

test('a Worker without processor does not run, and takes no socket of its own', async () => {
  const w = new qn.Worker('manual-idle', null);
  closers.push(() => w.close());
  await expect(w.run()).rejects.toThrow('No process function is defined.');
  expect(await w.getNextJob('t', { block: false })).toBeUndefined();
  const roles = (await ourClients(inspect)).map((c) => c.name.split(':')[1]).sort();
  expect(roles).toEqual(['blocking', 'command']);
});

test('moveToWait and moveToDelayed on a job taken by hand, as BullMQ', async () => {
  await compare(
    async ({ producer }) => {
      await producer.add('a', {}, { jobId: 'a' });
      await producer.add('b', {}, { jobId: 'b' });
    },
    async ({ name, prefix, side, queue }) => {
      const w = worker(side, name, prefix);
      const a = await w.getNextJob('ta', { block: false });
      await a.moveToDelayed(Date.now() + 60000, 'ta');
      const b = await w.getNextJob('tb', { block: false });
      const left = await b.moveToWait('tb');
      return [a.id, await queue.getJobState('a'), b.id, left, await queue.getJobState('b')];
    },
    // The stored delay is the due time minus the clock when the script runs: the ms the call
    // took shows in it on either side.
    (snap) => {
      for (const entry of Object.values(snap)) {
        if (entry.type === 'hash' && /^\d+$/.test(entry.value.delay || '')) {
          entry.value.delay = String(Math.round(Number(entry.value.delay) / 1000) * 1000);
        }
      }
      return snap;
    },
  );
});
