'use strict';
// The parent side of one measured run: a private redis-server (shared by all runs), the
// BullMQ 6 producer, a child process per implementation, and the Redis-side accounting
// (INFO cpu/commandstats deltas, sampled CLIENT LIST for the child's sockets).

const { spawn } = require('child_process');
const { performance } = require('perf_hooks');
const path = require('path');
const { EventEmitter } = require('events');
const { startRedis, parseClientList, isNativeClientOf, sleep } = require('../scripts/redis-harness');
const { MARK, redisSnapshot, redisDelta } = require('./lib');

const { Queue: BullQueue } = require('bullmq6');

/** What both kinds of run report per job: throughput, Redis cost, the child's CPU and memory. */
function perJob(redis, done) {
  const jobs = done.completed;
  return {
    jobs,
    elapsedMs: done.elapsedMs,
    jobsPerSec: (jobs / done.elapsedMs) * 1000,
    redisCpuUsPerJob: (redis.cpuSec * 1e6) / jobs,
    redisCallsPerJob: redis.calls / jobs,
    scriptCallsPerJob: scriptCalls(redis) / jobs,
    procCpuUsPerJob: (done.cpuSec * 1e6) / jobs,
    threadsCpuSec: done.threads,
    peakRssMB: done.peakRss / 2 ** 20,
    redisPerCommand: redis.perCommand,
  };
}

/** Script invocations (EVALSHA/EVAL and their _RO forms) in a redisDelta. */
function scriptCalls(redis) {
  let n = 0;
  for (const [name, s] of Object.entries(redis.perCommand)) if (/^eval(sha)?(_ro)?$/.test(name)) n += s.calls;
  return n;
}

class Child extends EventEmitter {
  /** `wrap`: a command line to run node under (e.g. strace or perf), for bench/profile.js. */
  constructor(cfg, nodeArgs = [], wrap = []) {
    super();
    this.cfg = cfg;
    this.messages = [];
    this.exited = false;
    const argv = [process.execPath, ...nodeArgs, path.join(__dirname, 'child.js'), JSON.stringify(cfg)];
    const [cmd, ...args] = [...wrap, ...argv];
    this.proc = spawn(cmd, args, {
      stdio: ['pipe', 'pipe', 'inherit'],
      cwd: path.join(__dirname, '..'),
      env: { ...process.env, QUEUE_CONCURRENCY: '' },
    });
    this.pid = this.proc.pid;
    let buf = '';
    this.proc.stdout.setEncoding('utf8');
    this.proc.stdout.on('data', (d) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (!line.startsWith(MARK)) continue;
        const msg = JSON.parse(line.slice(MARK.length));
        this.messages.push(msg);
        this.emit('msg', msg);
      }
    });
    this.exitPromise = new Promise((resolve) =>
      this.proc.on('exit', (code, signal) => {
        this.exited = true;
        this.emit('exit', code, signal);
        resolve({ code, signal });
      }),
    );
  }

  command(line) {
    if (!this.exited) this.proc.stdin.write(line + '\n');
  }

  /** Resolve with the first message of `type` (already received or next), reject on error/exit/timeout. */
  wait(type, timeoutMs) {
    const have = this.messages.find((m) => m.type === type);
    if (have) return Promise.resolve(have);
    return new Promise((resolve, reject) => {
      const cleanup = () => {
        clearTimeout(timer);
        this.off('msg', onMsg);
        this.off('exit', onExit);
      };
      const onMsg = (m) => {
        if (m.type === type) {
          cleanup();
          resolve(m);
        } else if (m.type === 'error') {
          cleanup();
          reject(new Error(`child (${this.cfg.impl}) failed: ${m.message}`));
        }
      };
      const onExit = (code, signal) => {
        cleanup();
        reject(new Error(`child (${this.cfg.impl}) exited (${code ?? signal}) before '${type}'`));
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`child (${this.cfg.impl}) sent no '${type}' within ${timeoutMs} ms`));
      }, timeoutMs);
      this.on('msg', onMsg);
      this.on('exit', onExit);
    });
  }

  async stop() {
    this.command('exit');
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 15000);
    await this.exitPromise;
    clearTimeout(t);
  }
}

class Bench {
  async start() {
    this.redis = await startRedis();
    this.admin = this.redis.client();
    await this.admin.ping();
    const info = await this.admin.info('server');
    this.redisVersion = /redis_version:(\S+)/.exec(info)[1];
    this.seq = 0;
  }

  async stop() {
    await this.redis.stop();
  }

  connection() {
    return { host: '127.0.0.1', port: this.redis.port, maxRetriesPerRequest: null };
  }

  /** Ids of the clients connected right now. */
  async clientIds() {
    return new Set(parseClientList(await this.admin.call('CLIENT', 'LIST')).map((c) => c.id));
  }

  /** Sample the clients that are not the harness's own, every `everyMs`, keeping the peak. */
  sampleSockets(baseline, pidOf, everyMs = 100) {
    const s = { peak: 0, peakNamed: 0, samples: 0, names: new Set(), stopped: false };
    const loop = async () => {
      while (!s.stopped) {
        try {
          const list = parseClientList(await this.admin.call('CLIENT', 'LIST'));
          const mine = list.filter((c) => !baseline.has(c.id));
          s.peak = Math.max(s.peak, mine.length);
          const named = mine.filter((c) => isNativeClientOf(c, pidOf()));
          s.peakNamed = Math.max(s.peakNamed, named.length);
          for (const c of mine) s.names.add(c.name ? c.name.replace(/:\d+$/, ':<pid>') : '(unnamed)');
          s.samples += 1;
        } catch {
          // the server is busy or going away: try again
        }
        await sleep(everyMs);
      }
    };
    s.done = loop();
    s.stop = async () => {
      s.stopped = true;
      await s.done;
      return { peak: s.peak, peakNamed: s.peakNamed, samples: s.samples, names: [...s.names].sort() };
    };
    return s;
  }

  uniqueName(tag) {
    this.seq += 1;
    return `bench-${tag}-${this.seq}`;
  }

  async preload(queues, perQueue) {
    for (const q of queues) {
      for (let i = 0; i < perQueue; i += 1000) {
        const jobs = [];
        for (let j = i; j < Math.min(perQueue, i + 1000); j++) jobs.push({ name: 'job', data: { i: j } });
        await q.addBulk(jobs);
      }
    }
  }

  /**
   * One worker run: flush, preload (throughput) with BullMQ 6's Queue, start the child,
   * measure from 'go' to the last completion. Latency runs produce open-loop instead.
   */
  async runWorker(impl, sc, { nodeArgs = [], wrap = [], timeoutMs = 600000 } = {}) {
    await this.admin.flushall();
    const names = [];
    for (let i = 0; i < sc.queues; i++) names.push(this.uniqueName(`${sc.id}-${impl}-q${i}`));
    const producers = names.map((n) => new BullQueue(n, { connection: this.connection() }));
    await Promise.all(producers.map((p) => p.waitUntilReady()));
    const expected = sc.kind === 'latency' ? Math.round(sc.rate * sc.seconds) : sc.queues * sc.jobsPerQueue;
    if (sc.kind !== 'latency') await this.preload(producers.slice(0, sc.preloadQueues || producers.length), sc.jobsPerQueue);
    const baseline = await this.clientIds();

    const child = new Child(
      {
        mode: 'worker',
        impl,
        port: this.redis.port,
        queues: names,
        concurrency: sc.concurrency,
        removeOnComplete: sc.removeOnComplete,
        metrics: sc.metrics,
        expected,
        latency: sc.kind === 'latency',
        backend: sc.backend,
      },
      nodeArgs,
      wrap,
    );
    // The node process's pid (differs from child.pid under a wrapper) arrives with 'ready'.
    let nodePid = child.pid;
    child.once('msg', (m) => {
      if (m.type === 'ready') nodePid = m.pid;
    });
    const sockets = this.sampleSockets(baseline, () => nodePid);
    let result;
    try {
      const ready = await child.wait('ready', 60000);
      const before = await redisSnapshot(this.admin);
      child.command('go');
      if (sc.kind === 'latency') {
        await child.wait('started', 30000);
        await this.openLoop(producers[0], sc.rate, sc.seconds);
      }
      const done = await child.wait('done', timeoutMs);
      const after = await redisSnapshot(this.admin);
      const sock = await sockets.stop();
      const redis = redisDelta(before, after);
      const verify = await this.verify(names, sc, impl);
      const jobs = done.completed;
      result = {
        impl,
        pid: ready.pid,
        window: { goUs: done.goUs, doneUs: done.doneUs },
        ...perJob(redis, done),
        failed: done.failed,
        procCpuUserUsPerJob: (done.cpuUserSec * 1e6) / jobs,
        procCpuSysUsPerJob: (done.cpuSysSec * 1e6) / jobs,
        peakSockets: sock.peak,
        namedSockets: sock.peakNamed,
        socketNames: sock.names,
        rssIdleMB: ready.rssIdle / 2 ** 20,
        latency: done.latency,
        verify,
      };
    } catch (err) {
      await sockets.stop();
      child.proc.kill('SIGKILL');
      await child.exitPromise;
      await Promise.all(producers.map((p) => p.close().catch(() => {})));
      throw err;
    }
    await child.stop();
    await Promise.all(producers.map((p) => p.close()));
    return result;
  }

  /** Open loop: one add every 1000/rate ms by the clock, never waiting for the previous one. */
  async openLoop(queue, rate, seconds) {
    const n = Math.round(rate * seconds);
    const every = 1000 / rate;
    const start = Date.now();
    const pending = [];
    for (let i = 0; i < n; i++) {
      const due = start + i * every;
      const wait = due - Date.now();
      if (wait > 0) await sleep(wait);
      pending.push(queue.add('job', { i, t: performance.timeOrigin + performance.now() }));
    }
    await Promise.all(pending);
  }

  /** After a run: nothing left waiting or active, retention as configured, nothing failed. */
  async verify(names, sc, impl) {
    const problems = [];
    for (const n of names) {
      const [wait, active, completed, failed] = await Promise.all([
        this.admin.llen(`bull:${n}:wait`),
        this.admin.llen(`bull:${n}:active`),
        this.admin.zcard(`bull:${n}:completed`),
        this.admin.zcard(`bull:${n}:failed`),
      ]);
      const want = sc.removeOnComplete ? 0 : sc.kind === 'latency' ? sc.rate * sc.seconds : sc.jobsPerQueue;
      if (wait !== 0 || active !== 0 || failed !== 0 || completed !== want) {
        problems.push(`${n}: wait=${wait} active=${active} failed=${failed} completed=${completed} (want ${want})`);
      }
    }
    if (problems.length) process.stderr.write(`[bench] verification (${impl}, ${sc.id}): ${problems.join('; ')}\n`);
    return problems.length ? problems : true;
  }

  /** One producer run in a child: `add` one at a time, or one `addBulk`. */
  async runProducer(impl, sc, { timeoutMs = 600000 } = {}) {
    await this.admin.flushall();
    const name = this.uniqueName(`${sc.id}-${impl}`);
    const child = new Child({ mode: 'producer', impl, port: this.redis.port, queues: [name], kind: sc.producer, count: sc.count });
    try {
      await child.wait('ready', 60000);
      const before = await redisSnapshot(this.admin);
      child.command('go');
      const done = await child.wait('done', timeoutMs);
      const after = await redisSnapshot(this.admin);
      const redis = redisDelta(before, after);
      const waiting = await this.admin.llen(`bull:${name}:wait`);
      const verify = waiting === sc.count + 1 ? true : [`wait=${waiting}, want ${sc.count + 1}`];
      await child.stop();
      return { impl, ...perJob(redis, done), verify };
    } catch (err) {
      child.proc.kill('SIGKILL');
      await child.exitPromise;
      throw err;
    }
  }
}

module.exports = { Bench, Child };
