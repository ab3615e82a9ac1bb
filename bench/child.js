'use strict';
// One implementation under test, alone in its own Node process, so that its RSS, CPU and
// Redis sockets are its own. Driven by bench/index.js over stdin/stdout:
//
//   child -> parent  {type:'ready', rssIdle}      workers/queues created and connected
//   parent -> child  go                           start (workers: run(); producers: add)
//   child -> parent  {type:'started'}             workers are running (latency scenario)
//   child -> parent  {type:'done', ...metrics}    the expected number of jobs completed
//   parent -> child  exit                         close gracefully and exit
//
// argv[2] is the JSON config: { mode: 'worker' | 'producer', impl: 'ours' | 'bullmq', port,
// queues, concurrency, removeOnComplete, expected, latency, kind, count }.

const { performance } = require('perf_hooks');
const { send, onCommand, percentile, threadCpu, threadDelta, packageDir } = require('./lib');

const cfg = JSON.parse(process.argv[2]);
// The snapshot of the package taken at the start of the run (see pinAddon in lib.js).
const ROOT = packageDir();
const connection = { host: '127.0.0.1', port: cfg.port };

let peakRss = process.memoryUsage().rss;
const rssTimer = setInterval(() => {
  const rss = process.memoryUsage().rss;
  if (rss > peakRss) peakRss = rss;
}, 50);

function fail(err) {
  send({ type: 'error', message: String((err && err.stack) || err) });
  process.exit(1);
}
process.on('uncaughtException', fail);
process.on('unhandledRejection', fail);

function ours() {
  const qn = require(ROOT);
  qn.configure(connection);
  return qn;
}

function bull() {
  return require('bullmq6');
}

// ---------------------------------------------------------------- workers

async function workerMode() {
  const latencies = [];
  const latenciesHr = [];
  let completed = 0;
  let failed = 0;
  let t0 = 0;
  let cpu0;
  let threads0;
  let doneSent = false;
  let goUs = 0;
  const monoUs = () => Number(process.hrtime.bigint() / 1000n);

  // The processor: trivial, async, returns a small object.
  const processor = async (job) => {
    if (cfg.latency) {
      // As specified: processor start - job.timestamp (both whole ms). Also, with sub-ms
      // resolution, against the producer's wall clock stamped into the data (data.t).
      latencies.push(Date.now() - job.timestamp);
      if (job.data && typeof job.data.t === 'number') latenciesHr.push(performance.timeOrigin + performance.now() - job.data.t);
    }
    return { ok: true, id: job.id };
  };

  const onCompleted = () => {
    completed += 1;
    if (completed === cfg.expected && !doneSent) {
      doneSent = true;
      const elapsedMs = performance.now() - t0;
      const cpu = process.cpuUsage(cpu0);
      const cpuSec = (cpu.user + cpu.system) / 1e6;
      const rss = process.memoryUsage().rss;
      if (rss > peakRss) peakRss = rss;
      send({
        type: 'done',
        completed,
        failed,
        elapsedMs,
        // CLOCK_MONOTONIC µs, the clock of --cpu-prof timestamps: the measured window
        goUs,
        doneUs: monoUs(),
        cpuSec,
        cpuUserSec: cpu.user / 1e6,
        cpuSysSec: cpu.system / 1e6,
        threads: threadDelta(threads0, threadCpu()),
        peakRss,
        rssEnd: rss,
        latency: cfg.latency
          ? {
              n: latencies.length,
              p50: percentile(latencies, 50),
              p95: percentile(latencies, 95),
              p99: percentile(latencies, 99),
              max: percentile(latencies, 100),
              hr: {
                n: latenciesHr.length,
                p50: percentile(latenciesHr, 50),
                p95: percentile(latenciesHr, 95),
                p99: percentile(latenciesHr, 99),
                max: percentile(latenciesHr, 100),
              },
            }
          : undefined,
      });
    }
  };
  const onFailed = (job, err) => {
    failed += 1;
    process.stderr.write(`[child ${cfg.impl}] job failed: ${err && err.message}\n`);
  };
  const onError = (err) => process.stderr.write(`[child ${cfg.impl}] worker error: ${err && err.message}\n`);

  const common = { concurrency: cfg.concurrency, autorun: false };
  // BullMQ's per-minute metrics, on both sides, when the scenario asks (maxDataPoints).
  if (cfg.metrics) common.metrics = { maxDataPoints: cfg.metrics };
  let workers;
  if (cfg.backend) workers = await backendWorkers();
  else if (cfg.impl === 'ours') {
    const qn = ours();
    workers = cfg.queues.map(
      (q) => new qn.Worker(q, processor, { ...common, removeOnComplete: cfg.removeOnComplete ? true : false }),
    );
  } else {
    const { Worker } = bull();
    workers = cfg.queues.map(
      (q) =>
        new Worker(q, processor, {
          ...common,
          connection: { ...connection, maxRetriesPerRequest: null },
          // BullMQ's worker option takes KeepJobs only: {count: 0} is what `true` means on a job.
          removeOnComplete: cfg.removeOnComplete ? { count: 0 } : { count: -1 },
        }),
    );
  }
  for (const w of workers) {
    w.on('completed', onCompleted);
    w.on('failed', onFailed);
    w.on('error', onError);
  }
  await Promise.all(workers.map((w) => w.waitUntilReady()));
  const rssIdle = process.memoryUsage().rss;
  send({ type: 'ready', rssIdle, pid: process.pid });

  onCommand(async (line) => {
    if (line === 'go') {
      threads0 = threadCpu();
      cpu0 = process.cpuUsage();
      t0 = performance.now();
      goUs = monoUs();
      for (const w of workers) w.run().catch(onError);
      if (cfg.latency) setTimeout(() => send({ type: 'started' }), 500);
    } else if (line === 'exit') {
      const guard = setTimeout(() => process.exit(0), 10000);
      guard.unref();
      await Promise.all(workers.map((w) => w.close().catch(() => {})));
      if (cfg.impl === 'ours') await require(ROOT).shutdown();
      clearInterval(rssTimer);
      process.exit(0);
    }
  });
}

// The backend scenario: workers[i] = [queue index, concurrency]; queue 0's processor waits,
// then publishes one job to each other queue (awaited, as the example's order worker does);
// every other processor only waits. Each implementation publishes with its own Queue.
async function backendWorkers() {
  const { waitMs, workers: spec } = cfg.backend;
  const wait = () => new Promise((resolve) => setTimeout(resolve, waitMs));
  let Worker;
  let queues;
  let workerOpts;
  if (cfg.impl === 'ours') {
    const qn = ours();
    Worker = qn.Worker;
    queues = cfg.queues.slice(1).map((q) => new qn.Queue(q));
    workerOpts = { removeOnComplete: cfg.removeOnComplete ? true : false };
  } else {
    const bq = bull();
    Worker = bq.Worker;
    const conn = { ...connection, maxRetriesPerRequest: null };
    queues = cfg.queues.slice(1).map((q) => new bq.Queue(q, { connection: conn }));
    workerOpts = { connection: conn, removeOnComplete: cfg.removeOnComplete ? { count: 0 } : { count: -1 } };
    await Promise.all(queues.map((q) => q.waitUntilReady()));
  }
  const order = async (job) => {
    await wait();
    await Promise.all(queues.map((q) => q.add('step', { order: job.id })));
    return { ok: true };
  };
  const step = async () => {
    await wait();
    return { ok: true };
  };
  return spec.map(([qi, concurrency]) => new Worker(cfg.queues[qi], qi === 0 ? order : step, { ...workerOpts, concurrency, autorun: false }));
}

// ---------------------------------------------------------------- producers

async function producerMode() {
  let queue;
  if (cfg.impl === 'ours') {
    const qn = ours();
    queue = new qn.Queue(cfg.queues[0]);
    await qn.connect();
  } else {
    const { Queue } = bull();
    queue = new Queue(cfg.queues[0], { connection: { ...connection, maxRetriesPerRequest: null } });
    await queue.waitUntilReady();
  }
  // One job first, so that script loading is not part of the measurement.
  await queue.add('warmup', { i: -1 });
  send({ type: 'ready', rssIdle: process.memoryUsage().rss, pid: process.pid });

  onCommand(async (line) => {
    if (line === 'go') {
      const threads0 = threadCpu();
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      if (cfg.kind === 'add') {
        for (let i = 0; i < cfg.count; i++) await queue.add('job', { i });
      } else {
        const jobs = [];
        for (let i = 0; i < cfg.count; i++) jobs.push({ name: 'job', data: { i } });
        await queue.addBulk(jobs);
      }
      const elapsedMs = performance.now() - t0;
      const cpu = process.cpuUsage(cpu0);
      send({
        type: 'done',
        completed: cfg.count,
        elapsedMs,
        cpuSec: (cpu.user + cpu.system) / 1e6,
        cpuUserSec: cpu.user / 1e6,
        cpuSysSec: cpu.system / 1e6,
        threads: threadDelta(threads0, threadCpu()),
        peakRss,
        rssEnd: process.memoryUsage().rss,
      });
    } else if (line === 'exit') {
      const guard = setTimeout(() => process.exit(0), 10000);
      guard.unref();
      await queue.close().catch(() => {});
      if (cfg.impl === 'ours') await require(ROOT).shutdown();
      process.exit(0);
    }
  });
}

(cfg.mode === 'producer' ? producerMode() : workerMode()).catch(fail);
