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

// settings.repeatStrategy: BullMQ calls it as (millis, repeatOpts, jobName), awaits it, raises
// an answer before `millis` to it, and schedules nothing on `undefined`. The same strategy on
// both sides must be called with the same arguments and leave the same schedulers and jobs.
const { bullmq, connectionFor } = require('./helpers/bull');
const { sideBySide: sbs } = require('./helpers/side-by-side');
const { comparable } = sbs({ redis, inspect, closers });

/** A strategy that records its calls and answers by job name (FIXED is a fixed future time). */
function recordingStrategy(fixed) {
  const calls = [];
  const strategy = (millis, opts, name) => {
    calls.push({ millis: typeof millis, near: Math.abs(millis - Date.now()) < 10_000, opts, name });
    if (name === 'sync') return fixed;
    if (name === 'async') return new Promise((resolve) => setTimeout(() => resolve(fixed + 1000), 5));
    if (name === 'none') return undefined;
    if (name === 'past') return fixed - 10 * 365 * 86400_000;
    throw new Error(`no schedule for ${name}`);
  };
  return { calls, strategy };
}

test('Queue settings.repeatStrategy: same calls, same answers read, same Redis state as BullMQ', async () => {
  const name = uniqueQueue('strategy-q');
  const FIXED = START + 12_345;
  const results = {};
  const prefixes = {};
  for (const side of ['bull', 'ours']) {
    const prefix = `${side}strat${process.pid}`;
    prefixes[side] = prefix;
    const { calls, strategy } = recordingStrategy(FIXED);
    const opts = { prefix, settings: { repeatStrategy: strategy } };
    const queue = side === 'bull' ? new bullmq[6].Queue(name, { connection: connectionFor(redis), ...opts }) : new qn.Queue(name, opts);
    queue.on('error', () => {});
    closers.push(() => queue.close());
    const out = {};
    for (const jobName of ['sync', 'async', 'none', 'boom']) {
      out[jobName] = view(
        await step(() => queue.upsertJobScheduler(`s-${jobName}`, { pattern: '0 0 1 1 *', tz: 'UTC' }, { name: jobName, data: { n: jobName } })),
      );
    }
    // An answer before `now` runs the iteration now: the job id carries that moment, so only
    // whether it was added is compared.
    const past = await queue.upsertJobScheduler('s-past', { pattern: '0 0 1 1 *' }, { name: 'past' });
    out.pastAdded = past !== undefined && /^repeat:s-past:\d{13}$/.test(past.id);
    out.schedulers = (await queue.getJobSchedulers(0, -1, true)).filter((s) => s.key !== 's-past');
    out.calls = calls;
    results[side] = out;
  }
  expect(results.ours).toEqual(results.bull);
  expect(results.bull.sync.id).toBe(`repeat:s-sync:${FIXED}`);
  expect(results.bull.none).toBe('<undefined>');
  expect(results.bull.boom).toEqual({ error: 'no schedule for boom' });
  const drop = (s) => {
    for (const rel of Object.keys(s)) if (rel.includes('s-past')) delete s[rel];
    // Only BullMQ's Queue writes meta.version (docs/PROTOCOL.md, deliberate differences).
    for (const [rel, entry] of Object.entries(s)) if (rel.endsWith(':meta')) delete entry.value.version;
    for (const entry of Object.values(s)) {
      if (Array.isArray(entry.value)) entry.value = entry.value.filter((m) => !JSON.stringify(m).includes('s-past'));
    }
    return maskMoments(s);
  };
  expect(drop(await comparable(prefixes.ours))).toEqual(drop(await comparable(prefixes.bull)));
});

test('Worker settings.repeatStrategy computes the next iteration as BullMQ worker does', async () => {
  const name = uniqueQueue('strategy-w');
  const NEXT = START + 54_321;
  const results = {};
  for (const side of ['bull', 'ours']) {
    const prefix = `${side}stratw${process.pid}`;
    // The first iteration is due now (a queue strategy answering the current time).
    const producer = new bullmq[6].Queue(name, { connection: connectionFor(redis), prefix, settings: { repeatStrategy: () => Date.now() } });
    producer.on('error', () => {});
    closers.push(() => producer.close());
    await producer.upsertJobScheduler('nightly', { pattern: '0 3 * * *', tz: 'Europe/Berlin', limit: 5 }, { name: 'sync', data: { x: 1 } });
    const calls = [];
    const repeatStrategy = async (millis, opts, jobName) => {
      calls.push({ millis: typeof millis, near: Math.abs(millis - Date.now()) < 10_000, opts, jobName });
      return NEXT;
    };
    let ran = 0;
    const processor = async () => {
      ran += 1;
      return 'ok';
    };
    const wopts = { prefix, settings: { repeatStrategy } };
    const worker =
      side === 'bull' ? new bullmq[6].Worker(name, processor, { connection: connectionFor(redis), ...wopts }) : new qn.Worker(name, processor, wopts);
    worker.on('error', () => {});
    closers.push(() => worker.close());
    await waitFor(async () => ran === 1 && (await producer.getDelayed()).length === 1, { timeout: 10000, what: `${side}: first run and the next iteration` });
    await worker.close();
    const next = (await producer.getDelayed())[0];
    const scheduler = await producer.getJobScheduler('nightly');
    // The iteration's opts.timestamp is the moment it was added.
    results[side] = { calls, next: { id: next.id, name: next.name, data: next.data, delay: next.opts.delay > 0 }, scheduler };
  }
  expect(results.ours).toEqual(results.bull);
  expect(results.bull.next.id).toBe(`repeat:nightly:${NEXT}`);
  expect(results.bull.calls).toHaveLength(1);
  expect(results.bull.calls[0].jobName).toBe('sync');
});

test('a repeatStrategy that is not a function, throws or answers nonsense: typed errors, the job still runs', async () => {
  expect(() => new qn.Queue('x', { settings: { repeatStrategy: 'cron' } })).toThrow(
    expect.objectContaining({ code: 'ERR_INVALID_OPTION', message: expect.stringContaining('settings.repeatStrategy') }),
  );
  expect(() => new qn.Worker('x', async () => {}, { autorun: false, settings: { repeatStrategy: 42 } })).toThrow(
    expect.objectContaining({ code: 'ERR_INVALID_OPTION' }),
  );
  const name = uniqueQueue('strategy-bad');
  const q = new qn.Queue(name, { settings: { repeatStrategy: () => 'soon' } });
  closers.push(() => q.close());
  await expect(q.upsertJobScheduler('bad', { pattern: '* * * * *' })).rejects.toMatchObject({
    code: 'ERR_INVALID_OPTION',
    message: expect.stringContaining('settings.repeatStrategy must return a number'),
  });
  const now = new qn.Queue(name, { settings: { repeatStrategy: () => Date.now() } });
  closers.push(() => now.close());
  await now.upsertJobScheduler('due', { pattern: '* * * * *' }, { name: 'due' });
  const errors = [];
  let ran = 0;
  const w = new qn.Worker(
    name,
    async () => {
      ran += 1;
    },
    { settings: { repeatStrategy: () => Promise.reject(new Error('calendar service down')) } },
  );
  w.on('error', (err) => errors.push(err));
  closers.push(() => w.close());
  await waitFor(() => ran === 1 && errors.length === 1, { timeout: 10000, what: 'the run and its scheduling error' });
  expect(errors[0].message).toContain('settings.repeatStrategy failed: calendar service down');
  expect(await q.getJobCounts('completed', 'delayed', 'wait', 'active')).toEqual({ completed: 1, delayed: 0, wait: 0, active: 0 });
});
