'use strict';
// One side of bench/callgrind.sh: loads N jobs with BullMQ 6's Queue, turns callgrind's
// instrumentation of the redis-server on, processes the jobs with one worker (ours or
// BullMQ 6's), turns it off. Only the processing is counted.
//
//   node bench/callgrind-child.js <ours|bullmq> <port> <concurrency> <jobs> <valgrind pid>

const { execFileSync } = require('child_process');
const path = require('path');

const [impl, port, concurrency, jobs, vgPid] = process.argv.slice(2);
const n = Number(jobs);
const connection = { host: '127.0.0.1', port: Number(port) };
const { Queue, Worker: BullWorker } = require('bullmq6');

async function main() {
  const name = `cg-${impl}-${Date.now()}`;
  const queue = new Queue(name, { connection });
  for (let i = 0; i < n; i += 1000) {
    const size = Math.min(1000, n - i);
    await queue.addBulk(Array.from({ length: size }, (_, j) => ({ name: 'job', data: { i: i + j, pad: 'x'.repeat(50) } })));
  }
  await queue.close();

  let done = 0;
  let finished;
  const allDone = new Promise((resolve) => (finished = resolve));
  const processor = async (job) => {
    if (++done === n) finished();
    return { ok: job.data.i };
  };
  const callgrind = (state) => execFileSync('callgrind_control', ['-i', state, vgPid], { stdio: 'ignore' });

  // Our pair connects (and loads every script into Redis's cache, once per socket) before
  // counting starts: a cost per connection, not per job.
  let qnEarly;
  if (impl === 'ours') {
    qnEarly = require(path.join(__dirname, '..'));
    await qnEarly.connect(connection);
  }
  callgrind('on');
  const t0 = process.hrtime.bigint();
  let worker;
  let qn;
  // QN_BENCH_METRICS=<maxDataPoints>: both workers record BullMQ's metrics (issue 15's cost).
  const metrics = process.env.QN_BENCH_METRICS ? { metrics: { maxDataPoints: Number(process.env.QN_BENCH_METRICS) } } : {};
  if (impl === 'ours') {
    qn = require(path.join(__dirname, '..'));
    qn.configure(connection);
    worker = new qn.Worker(name, processor, { concurrency: Number(concurrency), removeOnComplete: true, ...metrics });
  } else {
    worker = new BullWorker(name, processor, { connection, concurrency: Number(concurrency), removeOnComplete: { count: 0 }, ...metrics });
  }
  await allDone;
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  callgrind('off');
  await worker.close();
  if (qn) await qn.shutdown();
  console.log(JSON.stringify({ impl, concurrency: Number(concurrency), jobs: n, ms: Math.round(ms) }));
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
