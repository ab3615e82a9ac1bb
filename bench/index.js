'use strict';
// `npm run bench`: BullMQ 6's Worker and ours, side by side on one private redis-server,
// interleaved (BullMQ, ours, BullMQ, ours, ...) for several repetitions; medians, min-max
// and the ratio ours/BullMQ per scenario. See docs/PERFORMANCE.md.
//
//   npm run bench                      full run, 3 repetitions
//   npm run bench -- --reps 5          more repetitions
//   npm run bench -- --quick           short smoke run (small job counts, 1 repetition)
//   npm run bench -- --only c10,latency   only scenarios whose id contains one of these
//
// The code under test is pinned for the whole run (a private copy of the facade and the
// release .node, see pinAddon in lib.js): a debug build is refused unless --allow-debug.

const fs = require('fs');
const os = require('os');
const path = require('path');
const { execSync } = require('child_process');
const { Bench } = require('./runner');
const { summary, median, pinAddon, packageDir } = require('./lib');
const { render } = require('./report');

function parseArgs(argv) {
  const opts = { reps: 3, quick: false, only: null, allowDebug: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--quick') opts.quick = true;
    else if (a === '--reps') opts.reps = Number(argv[++i]);
    else if (a.startsWith('--reps=')) opts.reps = Number(a.slice(7));
    else if (a === '--only') opts.only = argv[++i].split(',');
    else if (a.startsWith('--only=')) opts.only = a.slice(7).split(',');
    else if (a === '--allow-debug') opts.allowDebug = true;
    else if (a === '--help' || a === '-h') {
      console.log(
        'usage: npm run bench -- [--reps N] [--quick] [--only id1,id2] [--allow-debug]\n' +
          '       node bench/index.js --render bench/results/<timestamp>.json\n' +
          '  QUEUE_NATIVE_ADDON=<release .node> benchmarks that binary instead of the repository\'s',
      );
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  if (opts.quick && !argv.some((a) => a.startsWith('--reps'))) opts.reps = 1;
  if (!Number.isInteger(opts.reps) || opts.reps < 1) throw new Error('--reps must be a positive integer');
  return opts;
}

function scenarios(quick) {
  const jobs = quick ? 2000 : 20000;
  const list = [];
  for (const concurrency of [1, 10, 50]) {
    for (const removeOnComplete of [true, false]) {
      list.push({
        id: `c${concurrency}-${removeOnComplete ? 'remove' : 'keep'}`,
        title: `${jobs / 1000}k jobs, concurrency ${concurrency}, removeOnComplete ${removeOnComplete}`,
        kind: 'throughput',
        queues: 1,
        jobsPerQueue: jobs,
        concurrency,
        removeOnComplete,
      });
    }
  }
  // The cost of BullMQ's metrics option (issue 15): c10 again with metrics on, both sides.
  for (const removeOnComplete of [true, false]) {
    list.push({
      id: `c10-${removeOnComplete ? 'remove' : 'keep'}-metrics`,
      title: `${jobs / 1000}k jobs, concurrency 10, removeOnComplete ${removeOnComplete}, metrics { maxDataPoints: 60 }`,
      kind: 'throughput',
      queues: 1,
      jobsPerQueue: jobs,
      concurrency: 10,
      removeOnComplete,
      metrics: 60,
    });
  }
  list.push({
    id: '5q-c5',
    title: `5 queues x ${jobs / 4000}k jobs, 5 workers at concurrency 5, one process, removeOnComplete true`,
    kind: 'throughput',
    queues: 5,
    jobsPerQueue: jobs / 4,
    concurrency: 5,
    removeOnComplete: true,
  });
  // The example backend's shape (examples/backend, shared/config.ts): orders (two workers at
  // concurrency 5) fans each order out to payments (c3), inventory (c5) and notifications
  // (c10); every processor awaits a 2 ms timer (its I/O). Only the orders are preloaded; the
  // other three queues are fed by the orders' processors through the implementation's own Queue.
  const orders = quick ? 500 : 2500;
  list.push({
    id: 'backend',
    title: `backend fan-out: ${orders} orders -> payments, inventory, notifications (4 queues, c5 x2 / c3 / c5 / c10), 2 ms processors`,
    kind: 'throughput',
    queues: 4,
    jobsPerQueue: orders,
    preloadQueues: 1,
    backend: { waitMs: 2, workers: [[0, 5], [0, 5], [1, 3], [2, 5], [3, 10]] },
    removeOnComplete: true,
  });
  list.push({
    id: 'latency',
    title: `pickup latency, open-loop producer 200 jobs/s for ${quick ? 3 : 10} s, concurrency 10, removeOnComplete true`,
    kind: 'latency',
    queues: 1,
    rate: 200,
    seconds: quick ? 3 : 10,
    concurrency: 10,
    removeOnComplete: true,
  });
  list.push({
    id: 'add',
    title: `producer: ${quick ? 500 : 5000} sequential awaited add()`,
    kind: 'producer',
    producer: 'add',
    count: quick ? 500 : 5000,
  });
  list.push({
    id: 'addBulk',
    title: `producer: one addBulk() of ${quick ? 1000 : 10000} jobs`,
    kind: 'producer',
    producer: 'addBulk',
    count: quick ? 1000 : 10000,
  });
  return list;
}

const METRICS = [
  'jobsPerSec',
  'redisCpuUsPerJob',
  'redisCallsPerJob',
  'scriptCallsPerJob',
  'procCpuUsPerJob',
  'peakSockets',
  'rssIdleMB',
  'peakRssMB',
  'latency.p50',
  'latency.p95',
  'latency.p99',
  'latency.hr.p50',
  'latency.hr.p95',
  'latency.hr.p99',
];

function pick(run, metric) {
  return metric.split('.').reduce((o, k) => (o == null ? undefined : o[k]), run);
}

function summarise(runs) {
  const out = {};
  for (const m of METRICS) {
    const b = runs.bullmq.map((r) => pick(r, m));
    const o = runs.ours.map((r) => pick(r, m));
    const sb = summary(b);
    const so = summary(o);
    if (!sb || !so) continue;
    const pairs = [];
    for (let i = 0; i < Math.min(b.length, o.length); i++) if (b[i] > 0 && o[i] != null) pairs.push(o[i] / b[i]);
    out[m] = {
      bullmq: sb,
      ours: so,
      ratio: sb.median > 0 ? so.median / sb.median : undefined,
      pairRatio: pairs.length ? { median: median(pairs), min: Math.min(...pairs), max: Math.max(...pairs) } : undefined,
    };
  }
  return out;
}

function machine() {
  const cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8');
  const model = (/model name\s*:\s*(.*)/.exec(cpuinfo) || [])[1];
  let nproc;
  try {
    nproc = Number(execSync('nproc').toString().trim());
  } catch {
    nproc = os.cpus().length;
  }
  const pkg = (name) => {
    try {
      return require(`${name}/package.json`).version;
    } catch {
      return undefined;
    }
  };
  return {
    nproc,
    cpuModel: model,
    memGB: +(os.totalmem() / 2 ** 30).toFixed(1),
    node: process.version,
    kernel: os.release(),
    bullmq: pkg('bullmq6'),
    ioredis: pkg('ioredis'),
  };
}

const loadavg = () => fs.readFileSync('/proc/loadavg', 'utf8').trim().split(' ').slice(0, 3).join(' ');

async function main() {
  // `node bench/index.js --render <result.json>`: print the tables of a saved run again.
  if (process.argv[2] === '--render') {
    console.log(render(JSON.parse(fs.readFileSync(process.argv[3], 'utf8'))));
    return;
  }
  const opts = parseArgs(process.argv.slice(2));
  const addon = pinAddon({ allowDebug: opts.allowDebug });
  const ours = require(packageDir());
  const hasQueue = typeof ours.Queue === 'function';
  const started = new Date();
  const result = {
    startedAt: started.toISOString(),
    command: `npm run bench${process.argv.length > 2 ? ' -- ' + process.argv.slice(2).join(' ') : ''}`,
    options: opts,
    machine: { ...machine(), loadavgStart: loadavg() },
    // Environment that changes how the implementations run (passed to both children).
    env: Object.fromEntries(['TOKIO_WORKER_THREADS', 'QUEUE_NATIVE_THREADS', 'UV_THREADPOOL_SIZE', 'NODE_OPTIONS'].filter((k) => process.env[k]).map((k) => [k, process.env[k]])),
    addon: { file: addon.source, builtAt: addon.builtAt, bytes: addon.bytes, sha256: addon.sha256, debug: addon.debug, git: addon.git },
    scenarios: [],
  };
  const bench = new Bench();
  await bench.start();
  result.machine.redis = bench.redisVersion;
  console.error(`[bench] redis-server ${bench.redisVersion} on port ${bench.redis.port}; load ${result.machine.loadavgStart}; reps ${opts.reps}${opts.quick ? ' (quick)' : ''}`);
  let stopping = false;
  const onSignal = async () => {
    if (stopping) return;
    stopping = true;
    await bench.stop().catch(() => {});
    addon.cleanup();
    process.exit(130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    for (const sc of scenarios(opts.quick)) {
      if (opts.only && !opts.only.some((o) => sc.id.includes(o))) continue;
      const entry = { ...sc, loadavg: loadavg(), runs: { bullmq: [], ours: [] }, errors: [] };
      result.scenarios.push(entry);
      if (sc.kind === 'producer' && !hasQueue) {
        entry.skipped = 'skipped: no Queue export';
        console.error(`[bench] ${sc.id}: skipped: no Queue export`);
        continue;
      }
      for (let rep = 0; rep < opts.reps; rep++) {
        for (const impl of ['bullmq', 'ours']) {
          const t = Date.now();
          try {
            const run = sc.kind === 'producer' ? await bench.runProducer(impl, sc) : await bench.runWorker(impl, sc);
            run.rep = rep;
            run.loadavg = loadavg();
            entry.runs[impl].push(run);
            const lat = run.latency ? ` p50/p99 ${run.latency.p50}/${run.latency.p99} ms` : '';
            console.error(
              `[bench] ${sc.id} rep ${rep + 1}/${opts.reps} ${impl.padEnd(6)} ${run.jobsPerSec.toFixed(0).padStart(6)} jobs/s` +
                `${run.redisCpuUsPerJob != null ? `  redis ${run.redisCpuUsPerJob.toFixed(1)} us/job` : ''}` +
                `  proc ${run.procCpuUsPerJob.toFixed(1)} us/job${run.peakSockets != null ? `  sockets ${run.peakSockets}` : ''}` +
                `  rss ${run.peakRssMB.toFixed(0)} MB${lat}  (${((Date.now() - t) / 1000).toFixed(1)} s, load ${run.loadavg.split(' ')[0]})` +
                `${run.verify === true ? '' : '  VERIFY FAILED'}`,
            );
          } catch (err) {
            entry.errors.push({ impl, rep, message: err.message });
            console.error(`[bench] ${sc.id} rep ${rep + 1} ${impl}: ERROR ${err.message}`);
          }
        }
      }
      entry.summary = summarise(entry.runs);
    }
  } finally {
    await bench.stop();
    addon.cleanup();
  }
  result.machine.loadavgEnd = loadavg();
  result.finishedAt = new Date().toISOString();

  const md = render(result);
  const dir = path.join(__dirname, 'results');
  fs.mkdirSync(dir, { recursive: true });
  const stamp = started.toISOString().replace(/[:.]/g, '-');
  const file = path.join(dir, `${stamp}.json`);
  fs.writeFileSync(file, JSON.stringify(result, null, 2));
  fs.writeFileSync(path.join(dir, 'latest.md'), md);
  console.log(md);
  console.error(`[bench] wrote ${path.relative(process.cwd(), file)} and bench/results/latest.md`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
