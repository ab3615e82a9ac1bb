'use strict';
// BullMQ's job metrics (worker option `metrics: { maxDataPoints }`): our finishing script must
// leave the same `metrics:<completed|failed>` hashes and `:data` lists as BullMQ's own Worker
// on the same jobs from the same starting state; BullMQ's getMetrics / exportPrometheusMetrics
// must read our data; and our getMetrics / exportPrometheusMetrics must give what BullMQ's do.
const qn = require('..');
const { waitFor, sleep } = require('./helpers/redis-server');
const { useRedis } = require('./helpers/suite');
const { bullmq, uniqueQueue, connectionFor } = require('./helpers/bull');

const { redis, inspect, closers } = useRedis();

const MINUTE = 60000;

function bullQueue(name) {
  const q = new bullmq[6].Queue(name, { connection: connectionFor(redis) });
  q.on('error', () => {});
  closers.push(() => q.close());
  return q;
}

function ourQueue(name) {
  const q = new qn.Queue(name);
  q.on('error', () => {});
  closers.push(() => q.close());
  return q;
}

// Jobs named 'bad' fail (once: attempts 1), the others complete.
async function processor(job) {
  if (job.name === 'bad') throw new Error(`bad ${job.id}`);
  return job.data.n;
}

function startWorker(impl, name, opts) {
  const w =
    impl === 'bullmq'
      ? new bullmq[6].Worker(name, processor, { connection: connectionFor(redis), ...opts })
      : new qn.Worker(name, processor, opts);
  w.on('error', () => {});
  closers.push(() => w.close());
  return w;
}

// A run must not straddle a minute boundary: both workers' jobs then fall in the same minute.
async function awayFromMinuteEdge() {
  const left = MINUTE - (Date.now() % MINUTE);
  if (left < 8000) await sleep(left + 50);
}

async function metricsState(name) {
  const out = {};
  for (const kind of ['completed', 'failed']) {
    const key = `bull:${name}:metrics:${kind}`;
    out[kind] = {
      hash: await inspect.hgetall(key),
      data: await inspect.lrange(`${key}:data`, 0, -1),
    };
  }
  return out;
}

// Same seed for both queues: the metrics as a run some minutes ago left them.
async function seed(name, state) {
  for (const [kind, s] of Object.entries(state)) {
    const key = `bull:${name}:metrics:${kind}`;
    if (s.hash) await inspect.hset(key, s.hash);
    if (s.data && s.data.length) await inspect.rpush(`${key}:data`, ...s.data);
  }
}

async function runScenario(impl, name, { jobs, state, workerOpts }) {
  if (state) await seed(name, state);
  const producer = bullQueue(name);
  await producer.addBulk(jobs);
  const worker = startWorker(impl, name, workerOpts);
  const total = jobs.length;
  await waitFor(
    async () => {
      const c = await producer.getJobCounts('completed', 'failed', 'wait', 'active');
      const removed = jobs.filter((j) => j.name !== 'bad' && j.opts.removeOnComplete === true).length;
      return c.completed + c.failed + removed === total && c.wait === 0 && c.active === 0;
    },
    { timeout: 15000, what: `${impl} processed ${total} jobs` },
  );
  await worker.close();
  return metricsState(name);
}

function jobsOf(n, bad) {
  const jobs = [];
  for (let i = 1; i <= n; i++) {
    jobs.push({ name: bad.includes(i) ? 'bad' : 'ok', data: { n: i }, opts: { jobId: `j${i}`, attempts: 1 } });
  }
  return jobs;
}

// prevTS `minutes` whole minutes before now (the same in both runs).
function minutesAgo(minutes) {
  return String(Date.now() - minutes * MINUTE);
}

const scenarios = [
  {
    title: 'first jobs ever: the clock starts, no point yet',
    make: () => ({ jobs: jobsOf(6, [2, 5]), workerOpts: { metrics: { maxDataPoints: 10 } } }),
  },
  {
    title: 'three minutes later: one point for the closed minute, zeros after it',
    make: () => ({
      jobs: jobsOf(5, [3]),
      workerOpts: { metrics: { maxDataPoints: 10 } },
      state: {
        completed: { hash: { count: '7', prevTS: minutesAgo(3), prevCount: '2' }, data: ['4', '1'] },
        failed: { hash: { count: '3', prevTS: minutesAgo(2), prevCount: '3' } },
      },
    }),
    // 7 - 2 jobs in the minute closed; the two minutes after it had none.
    check: (m) => expect(m.completed.data).toEqual(['0', '0', '5', '4', '1']),
  },
  {
    title: 'a long pause: the gap is capped at maxDataPoints and the list trimmed',
    make: () => ({
      jobs: jobsOf(4, [1, 4]),
      workerOpts: { metrics: { maxDataPoints: 4 }, concurrency: 3 },
      state: {
        completed: { hash: { count: '12', prevTS: minutesAgo(100), prevCount: '9' }, data: ['5', '6', '7'] },
        failed: { hash: { count: '1', prevTS: minutesAgo(1), prevCount: '0' }, data: ['2', '2', '2', '2'] },
      },
    }),
    check: (m) => {
      expect(m.completed.data).toEqual(['0', '0', '0', '3']);
      expect(m.failed.data).toEqual(['1', '2', '2', '2']);
    },
  },
  {
    title: 'jobs deleted on completion count too (removeOnComplete: true), batches at concurrency 4',
    make: () => ({
      jobs: jobsOf(8, [6]).map((j, i) => (i % 2 ? { ...j, opts: { ...j.opts, removeOnComplete: true } } : j)),
      workerOpts: { metrics: { maxDataPoints: 60 }, concurrency: 4 },
      state: { completed: { hash: { count: '2', prevTS: minutesAgo(1), prevCount: '0' } } },
    }),
  },
];

describe('metrics recorded by our worker = those of BullMQ\'s worker', () => {
  for (const s of scenarios) {
    test(s.title, async () => {
      await awayFromMinuteEdge();
      const spec = s.make();
      const theirs = await runScenario('bullmq', uniqueQueue('mb'), spec);
      const ours = await runScenario('ours', uniqueQueue('mo'), spec);
      // prevTS is the finishing time of a job: equal to the minute, and both must be recent.
      const minuteOf = (state) => {
        const copy = JSON.parse(JSON.stringify(state));
        for (const kind of Object.keys(copy)) {
          const h = copy[kind].hash;
          if (h.prevTS) h.prevTS = Math.floor(Number(h.prevTS) / MINUTE);
        }
        return copy;
      };
      expect(minuteOf(ours)).toEqual(minuteOf(theirs));
      if (s.check) s.check(ours);
    });
  }

  test('without the option (or maxDataPoints 0) no metrics key is written', async () => {
    for (const workerOpts of [{}, { metrics: { maxDataPoints: 0 } }]) {
      const name = uniqueQueue('moff');
      await runScenario('ours', name, { jobs: jobsOf(3, [2]), workerOpts });
      expect(await inspect.keys(`bull:${name}:metrics*`)).toEqual([]);
    }
  });

  test('a bad maxDataPoints is refused with ERR_INVALID_OPTION', () => {
    expect(() => new qn.Worker(uniqueQueue('mbad'), processor, { metrics: { maxDataPoints: -2 }, autorun: false })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_OPTION' }),
    );
  });
});

describe('getMetrics and exportPrometheusMetrics', () => {
  async function queueWithMetrics() {
    await awayFromMinuteEdge();
    const name = uniqueQueue('mr');
    await runScenario('ours', name, {
      jobs: jobsOf(7, [1, 4, 6]),
      workerOpts: { metrics: { maxDataPoints: 20 } },
      state: {
        completed: { hash: { count: '30', prevTS: minutesAgo(4), prevCount: '21' }, data: ['3', '0', '8'] },
        failed: { hash: { count: '5', prevTS: minutesAgo(2), prevCount: '4' } },
      },
    });
    // Some jobs in other states, for the job counts.
    const producer = bullQueue(name);
    await producer.add('later', {}, { delay: 60000 });
    await producer.add('waiting', {});
    await producer.add('prio', {}, { priority: 3 });
    return name;
  }

  test('BullMQ\'s getMetrics reads our data; ours returns the same', async () => {
    const name = await queueWithMetrics();
    const theirs = bullQueue(name);
    const ours = ourQueue(name);
    for (const kind of ['completed', 'failed']) {
      for (const [start, end] of [[0, -1], [1, 2], [0, 0], [5, 10]]) {
        const expected = await theirs.getMetrics(kind, start, end);
        expect(await ours.getMetrics(kind, start, end)).toEqual(expected);
      }
    }
    const completed = await theirs.getMetrics('completed');
    expect(completed.meta.count).toBe(34); // 30 seeded + 4 completed
    expect(completed.data.slice(0, 4)).toEqual([0, 0, 0, 9]); // 30 - 21 closed four minutes ago
    expect(completed.count).toBe(7);
    const failed = await theirs.getMetrics('failed');
    expect(failed.meta.count).toBe(8);
    // Never recorded: zeros, as BullMQ reports them.
    const empty = uniqueQueue('mempty');
    expect(await ourQueue(empty).getMetrics('completed')).toEqual(await bullQueue(empty).getMetrics('completed'));
  });

  test('exportPrometheusMetrics: ours = BullMQ\'s line for line, with and without extra labels', async () => {
    const name = await queueWithMetrics();
    const theirs = bullQueue(name);
    const ours = ourQueue(name);
    for (const globals of [undefined, {}, { env: 'prod', host: 'a"b\\c\nd' }]) {
      const expected = (await theirs.exportPrometheusMetrics(globals)).split('\n');
      const got = (await ours.exportPrometheusMetrics(globals)).split('\n');
      expect(got).toEqual(expected);
    }
    const text = await ours.exportPrometheusMetrics();
    expect(text).toContain(`bullmq_job_completed_total{queue="${name}"} 34`);
    expect(text).toContain(`bullmq_job_count{queue="${name}", state="delayed"} 1`);
  });

  test('a queue name needing escapes is escaped as BullMQ does', async () => {
    const name = `${uniqueQueue('mq')}"x\\y`;
    const expected = await bullQueue(name).exportPrometheusMetrics({ a: '1' });
    expect(await ourQueue(name).exportPrometheusMetrics({ a: '1' })).toBe(expected);
  });

  test('getMetrics refuses a type other than completed / failed', async () => {
    await expect(ourQueue(uniqueQueue('mt')).getMetrics('active')).rejects.toMatchObject({ code: 'ERR_INVALID_OPTION' });
  });
});
