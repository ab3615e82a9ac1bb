'use strict';
// Job schedulers on our Queue (upsertJobScheduler, getJobScheduler, getJobSchedulers,
// getJobSchedulersCount, removeJobScheduler) against BullMQ's Queue: the same calls on the same
// data must store the same scheduler hashes and iterations and return the same data. Times
// are chosen so both sides compute the same run times (a future startDate, a yearly cron);
// what still depends on the moment of the call (the iteration's delay and timestamp) is masked.
const qn = require('..');
const { waitFor } = require('./helpers/redis-server');
const { useRedis } = require('./helpers/suite');
const { sideBySide, step } = require('./helpers/side-by-side');
const { uniqueQueue } = require('./helpers/bull');

const { redis, inspect, closers } = useRedis();

const { compare } = sideBySide({ redis, inspect, closers });

/** Mask the iteration fields that depend on the moment of the call. */
function maskMoments(snapshot) {
  for (const entry of Object.values(snapshot)) {
    if (entry.type !== 'hash' || !entry.value.rjk) continue;
    if (entry.value.delay) entry.value.delay = '<delay>';
    if (entry.value.opts) {
      entry.value.opts = entry.value.opts.replace(/"delay":\d+/, '"delay":"<delay>"').replace(/"timestamp":\d+/, '"timestamp":"<ts>"');
    }
  }
  return snapshot;
}

/** A scheduler / job as data, with the moment-dependent parts masked. */
function view(x) {
  if (!x) return x;
  if (x.queueName !== undefined) {
    return { id: x.id, name: x.name, data: x.data, repeatJobKey: x.repeatJobKey, priority: x.priority };
  }
  return x;
}

const START = Date.now() + 3600_000 - ((Date.now() + 3600_000) % 1000);

test('upsert (every with startDate, yearly cron, template opts), replace, get, list, count, remove', async () => {
  const results = await compare(
    async () => {},
    async ({ queue }) => {
      const out = {};
      out.every = view(
        await queue.upsertJobScheduler('every-hour', { every: 60_000, startDate: START }, {
          name: 'tick', data: { n: 1 }, opts: { attempts: 3, backoff: { type: 'fixed', delay: 10 }, removeOnComplete: 5, priority: 2 },
        }),
      );
      out.cron = view(
        await queue.upsertJobScheduler('new-year', { pattern: '0 0 1 1 *', tz: 'UTC', limit: 10 }, { name: 'celebrate', data: { y: true } }),
      );
      out.plain = view(await queue.upsertJobScheduler('bare', { every: 5_000, startDate: START + 5000 }));
      // Replace: a new template, same schedule; the waiting iteration is replaced.
      out.replaced = view(
        await queue.upsertJobScheduler('every-hour', { every: 60_000, startDate: START }, { name: 'tock', data: { n: 2 } }),
      );
      out.get = await queue.getJobScheduler('every-hour');
      out.getCron = await queue.getJobScheduler('new-year');
      out.getMissing = await queue.getJobScheduler('nope');
      out.list = await queue.getJobSchedulers();
      out.listAsc = await queue.getJobSchedulers(0, 1, true);
      out.count = await queue.getJobSchedulersCount();
      out.remove = [await queue.removeJobScheduler('bare'), await queue.removeJobScheduler('bare')];
      out.countAfter = await queue.getJobSchedulersCount();
      out.errors = [
        await step(() => queue.upsertJobScheduler('x', { every: 1000, pattern: '* * * * *' })),
        await step(() => queue.upsertJobScheduler('x', {})),
        await step(() => queue.upsertJobScheduler('x', { every: 1000, endDate: Date.now() - 1000 })),
        await step(() => queue.upsertJobScheduler('x', { pattern: '* * * * *', immediately: true, startDate: START })),
      ];
      return out;
    },
    maskMoments,
  );
  expect(results.count).toBe(3);
  expect(results.get).toMatchObject({ key: 'every-hour', name: 'tock', every: 60000, next: START });
});

test('a scheduler added by our Queue is run by our Worker, iteration after iteration', async () => {
  const name = uniqueQueue('sched-run');
  const q = new qn.Queue(name);
  closers.push(() => q.close());
  await q.upsertJobScheduler('fast', { every: 100 }, { name: 'beat', data: { k: 1 } });
  let runs = 0;
  const w = new qn.Worker(name, async (job) => {
    runs += 1;
    expect(job.repeatJobKey).toBe('fast');
    return job.data.k;
  });
  w.on('error', () => {});
  closers.push(() => w.close());
  await waitFor(() => runs >= 3, { timeout: 10000, what: '3 iterations' });
  expect(await q.removeJobScheduler('fast')).toBe(true);
  expect(await q.getJobSchedulersCount()).toBe(0);
});
