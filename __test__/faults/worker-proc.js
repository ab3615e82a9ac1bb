'use strict';
// A worker process for the fault suite: ours or BullMQ's, on one queue. Every execution of a
// processor is appended synchronously to a log file (`S id` when it starts, `E id` when it
// ends), so the parent can count executions even after this process is SIGKILLed.
// stdout carries one JSON object per line: what happened (ready, error, connection events,
// periodic health snapshots with the worker's own running flag).
//
// argv[2]: JSON { port, queue, impl: 'ours' | 'bullmq', log, concurrency, jobMs, lockDuration,
//                 stalledInterval, password, healthEvery }
const fs = require('fs');

const cfg = JSON.parse(process.argv[2]);
const fd = fs.openSync(cfg.log, 'a');
const say = (obj) => process.stdout.write(`${JSON.stringify({ t: Date.now(), ...obj })}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function processor(job) {
  fs.writeSync(fd, `S ${job.id}\n`);
  if (cfg.jobMs) await sleep(cfg.jobMs);
  fs.writeSync(fd, `E ${job.id}\n`);
  return job.data.i;
}

const opts = {
  concurrency: cfg.concurrency || 1,
  lockDuration: cfg.lockDuration || 30000,
  stalledInterval: cfg.stalledInterval || 30000,
};

let worker;
let qn;
if (cfg.impl === 'bullmq') {
  const { Worker } = require('bullmq6');
  const connection = { host: '127.0.0.1', port: cfg.port, maxRetriesPerRequest: null };
  if (cfg.password) connection.password = cfg.password;
  worker = new Worker(cfg.queue, processor, { ...opts, connection });
} else {
  qn = require('../..');
  qn.configure({ port: cfg.port, password: cfg.password, retry: cfg.retry });
  for (const ev of ['ready', 'reconnecting', 'error', 'end']) {
    qn.onConnection(ev, (info) => say({ ev: `connection:${ev}`, code: info.code, role: info.connection }));
  }
  worker = new qn.Worker(cfg.queue, processor, opts);
}
worker.on('error', (err) => say({ ev: 'error', code: err.code, message: String(err.message).slice(0, 200) }));
worker.on('ready', () => say({ ev: 'ready' }));
worker.on('closed', () => say({ ev: 'closed' }));

if (cfg.healthEvery) {
  setInterval(() => {
    const h = qn ? qn.health() : undefined;
    say({ ev: 'health', status: h && h.status, running: worker.isRunning() });
  }, cfg.healthEvery).unref();
}

process.on('SIGTERM', async () => {
  await (qn ? qn.shutdown() : worker.close());
  say({ ev: 'exit' });
  fs.closeSync(fd);
  // BullMQ's blocking client may hold the loop for its drainDelay; ours must not need this.
  if (!qn) process.exit(0);
});
say({ ev: 'started', pid: process.pid });
