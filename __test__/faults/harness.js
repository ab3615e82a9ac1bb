'use strict';
// The fault suite's parts: real redis-servers (../helpers/redis-server.js), worker processes
// (worker-proc.js) that log every execution to a file, and the counts every scenario checks:
// lost jobs (never reached a final state) and duplicate executions.
const { spawn } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { bullmq, uniqueQueue } = require('../helpers/bull');
const { waitFor, sleep } = require('../helpers/redis-server');

const WORKER = path.join(__dirname, 'worker-proc.js');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'qn-faults-'));
// Every worker process started, so a failed scenario never leaves one behind.
const started = new Set();

/** Which worker implementations a scenario runs: ours; with FAULTS_COMPARE=1 BullMQ's too. */
const IMPLS = process.env.FAULTS_COMPARE === '1' ? ['ours', 'bullmq'] : ['ours'];

/** Add n jobs (ids j0..j{n-1}) with BullMQ's own Queue. */
async function seed(redis, queue, n, { password } = {}) {
  const q = new bullmq[6].Queue(queue, {
    connection: { host: '127.0.0.1', port: redis.port, password, maxRetriesPerRequest: null },
  });
  for (let from = 0; from < n; from += 500) {
    const batch = [];
    for (let i = from; i < Math.min(n, from + 500); i++) batch.push({ name: 'f', data: { i }, opts: { jobId: `j${i}` } });
    await q.addBulk(batch);
  }
  await q.close();
}

/** Start a worker process; resolves once it has started (not necessarily connected). */
function startWorker(redis, queue, opts = {}) {
  const log = path.join(tmp, `${queue}-${Date.now()}-${Math.random().toString(36).slice(2)}.log`);
  const cfg = { port: redis.port, queue, impl: 'ours', log, ...opts };
  const proc = spawn(process.execPath, [WORKER, JSON.stringify(cfg)], { stdio: ['ignore', 'pipe', 'pipe'] });
  started.add(proc);
  const events = [];
  let stderr = '';
  let buf = '';
  proc.stdout.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try {
        events.push(JSON.parse(line));
      } catch {
        events.push({ ev: 'text', line });
      }
    }
  });
  proc.stderr.on('data', (d) => (stderr += d));
  let exit = null;
  const exited = new Promise((resolve) => {
    proc.once('exit', (code, signal) => {
      started.delete(proc);
      exit = { code, signal, at: Date.now() };
      resolve(exit);
    });
  });
  const w = {
    proc,
    log,
    events,
    get stderr() {
      return stderr;
    },
    get exit() {
      return exit;
    },
    exited,
    kill(signal = 'SIGKILL') {
      if (!exit) proc.kill(signal);
      return exited;
    },
    /** SIGTERM (the worker shuts down gracefully), SIGKILL after `grace` ms. */
    async stop(grace = 10000) {
      if (exit) return exit;
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), grace);
      await exited;
      clearTimeout(t);
      return exit;
    },
  };
  return waitFor(() => events.some((e) => e.ev === 'started') || exit, { timeout: 10000, what: 'the worker process' }).then(() => w);
}

/** Executions per job id over these logs, and the ids started but not ended per log. */
function executions(logs) {
  const count = new Map();
  const unfinished = [];
  for (const log of logs) {
    const open = new Set();
    const text = fs.existsSync(log) ? fs.readFileSync(log, 'utf8') : '';
    for (const line of text.split('\n')) {
      const [kind, id] = line.split(' ');
      if (kind === 'S') {
        count.set(id, (count.get(id) || 0) + 1);
        open.add(id);
      } else if (kind === 'E') open.delete(id);
    }
    unfinished.push(open);
  }
  let duplicates = 0;
  for (const n of count.values()) duplicates += Math.max(0, n - 1);
  return { count, unfinished, duplicates, total: [...count.values()].reduce((a, b) => a + b, 0) };
}

/** completed + failed of a queue, read straight from its sorted sets. */
async function finishedCount(client, queue) {
  const [c, f] = await Promise.all([client.zcard(`bull:${queue}:completed`), client.zcard(`bull:${queue}:failed`)]);
  return c + f;
}

async function waitFinished(client, queue, n, timeout) {
  try {
    await waitFor(async () => (await finishedCount(client, queue)) >= n, { timeout, interval: 100, what: `${n} jobs of ${queue} to finish` });
  } catch {
    // The caller reports how many were lost.
  }
  return finishedCount(client, queue);
}

/** Appends one measured line per scenario and implementation (FAULTS_REPORT=file). */
function record(scenario, impl, figures) {
  const line = JSON.stringify({ scenario, impl, ...figures });
  if (process.env.FAULTS_REPORT) fs.appendFileSync(process.env.FAULTS_REPORT, `${line}\n`);
  // eslint-disable-next-line no-console
  console.log(line);
}

/** What a worker process said, minus health snapshots: for failure messages. */
function story(w, last = 40) {
  const said = w.events.filter((e) => e.ev !== 'health');
  // Every worker error (the interesting part), then the tail of everything else.
  const errors = said.filter((e) => e.ev === 'error' && !/^(blocking|command) connection/.test(e.message));
  const lines = [...errors, { ev: '--- last events ---' }, ...said.slice(-last)];
  return `${lines.map((e) => JSON.stringify(e)).join('\n')}\n${w.stderr}`;
}

/** Runs `fn`; if it throws, the error carries what the worker processes said. */
async function explain(workers, fn) {
  try {
    return await fn();
  } catch (err) {
    err.message += `\n--- worker processes said:\n${workers.map((w) => story(w)).join('\n---\n')}`;
    throw err;
  }
}

/** SIGKILL whatever worker process is still running, and remove the logs. */
async function cleanup() {
  const gone = [...started].map((p) => new Promise((r) => (p.exitCode !== null || p.signalCode ? r() : (p.once('exit', r), p.kill('SIGKILL')))));
  await Promise.all(gone);
  fs.rmSync(tmp, { recursive: true, force: true });
}

module.exports = { IMPLS, seed, startWorker, executions, finishedCount, waitFinished, record, story, explain, cleanup, uniqueQueue, waitFor, sleep };
