'use strict';
// Two builds of the addon against each other, in alternating pairs on one private
// redis-server: the paired ratios B/A of jobs/s, process CPU per job and the JS thread's CPU
// per job, and their medians. This machine's speed drifts by 2x between minutes (a shared
// VM), so only pairs run back to back say anything about a change of +-10%; `npm run bench`
// then reports the ratios against BullMQ.
//
//   node bench/ab.js <a.node> <b.node> [--concurrency 1,10,50] [--jobs 20000] [--pairs 6]
//
// Each run is a child process: BullMQ 6's Queue loads the jobs ({i, pad}), our Worker (with
// the given .node through NAPI_RS_NATIVE_LIBRARY_PATH) runs them with a no-op processor,
// removeOnComplete true.

const { execFileSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const { startRedis } = require('../scripts/redis-harness');
const { median, threadCpu } = require('./lib');

const JS_THREAD = 'main (JS) thread';

async function child() {
  const [port, concurrency, jobs] = process.argv.slice(3).map(Number);
  const connection = { host: '127.0.0.1', port };
  const { Queue } = require('bullmq6');
  const name = `ab-${process.pid}`;
  const queue = new Queue(name, { connection });
  for (let i = 0; i < jobs; i += 1000) {
    const n = Math.min(1000, jobs - i);
    await queue.addBulk(Array.from({ length: n }, (_, j) => ({ name: 'job', data: { i: i + j, pad: 'x'.repeat(50) } })));
  }
  await queue.close();
  const qn = require(path.join(__dirname, '..'));
  qn.configure(connection);
  let done = 0;
  let finished;
  const all = new Promise((resolve) => (finished = resolve));
  const t0 = process.hrtime.bigint();
  const c0 = process.cpuUsage();
  const js0 = threadCpu()[JS_THREAD];
  const worker = new qn.Worker(name, async (job) => {
    if (++done === jobs) finished();
    return { ok: job.data.i };
  }, { concurrency, removeOnComplete: true });
  await all;
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  const c = process.cpuUsage(c0);
  const jsSec = threadCpu()[JS_THREAD] - js0;
  await worker.close();
  await qn.shutdown();
  process.stdout.write(
    JSON.stringify({
      jobsPerSec: jobs / s,
      cpuUsPerJob: (c.user + c.system) / jobs,
      // /proc counts in ticks of 10 ms: only meaningful over seconds of work.
      jsUsPerJob: (jsSec * 1e6) / jobs,
    }),
  );
  process.exit(0);
}

async function main() {
  const args = process.argv.slice(2);
  const files = [];
  const o = { concurrency: [1, 10, 50], jobs: 20000, pairs: 6 };
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--concurrency') o.concurrency = args[++i].split(',').map(Number);
    else if (args[i] === '--jobs') o.jobs = Number(args[++i]);
    else if (args[i] === '--pairs') o.pairs = Number(args[++i]);
    else files.push(path.resolve(args[i]));
  }
  if (files.length !== 2 || !files.every((f) => fs.existsSync(f))) {
    console.error('usage: node bench/ab.js <a.node> <b.node> [--concurrency 1,10,50] [--jobs N] [--pairs N]');
    process.exit(2);
  }
  const redis = await startRedis();
  try {
    const run = (file, conc) =>
      JSON.parse(
        execFileSync(process.execPath, [__filename, '--child', String(redis.port), String(conc), String(o.jobs)], {
          env: { ...process.env, NAPI_RS_NATIVE_LIBRARY_PATH: file },
          encoding: 'utf8',
        }),
      );
    console.log(`A = ${files[0]}\nB = ${files[1]}\n${o.pairs} pairs of ${o.jobs} jobs, A then B\n`);
    console.log('| concurrency | jobs/s A | jobs/s B | B/A jobs/s | B/A process CPU | B/A JS thread CPU |');
    console.log('|---:|---:|---:|---:|---:|---:|');
    for (const conc of o.concurrency) {
      const pairs = [];
      for (let p = 0; p < o.pairs; p++) pairs.push([run(files[0], conc), run(files[1], conc)]);
      const m = (f) => median(pairs.map(([a, b]) => f(b) / f(a)));
      const fmt = (x) => x.toFixed(2);
      console.log(
        `| ${conc} | ${Math.round(median(pairs.map(([a]) => a.jobsPerSec)))} | ${Math.round(median(pairs.map(([, b]) => b.jobsPerSec)))} | ` +
          `${fmt(m((r) => r.jobsPerSec))} | ${fmt(m((r) => r.cpuUsPerJob))} | ${fmt(m((r) => r.jsUsPerJob))} |`,
      );
    }
  } finally {
    await redis.stop();
  }
}

if (process.argv[2] === '--child') child().catch((err) => {
  console.error(err);
  process.exit(1);
});
else main().catch((err) => {
  console.error(err);
  process.exit(1);
});
