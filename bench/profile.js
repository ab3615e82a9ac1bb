'use strict';
// "Where the time of one job goes": one run per implementation and concurrency with
//   - Redis SLOWLOG at threshold 0: every script call and every command run inside it, with
//     durations, so each script's time splits into its commands and the Lua/call overhead;
//   - the worker child under `node --cpu-prof`: main-thread time by function and category;
//   - per-thread CPU of the child from /proc (JS main thread vs tokio vs V8/libuv threads).
// Both tools slow things down: read ratios and shares from here, absolute speed from
// `npm run bench`.
//
//   node bench/profile.js [--jobs 5000] [--concurrency 1,10,backend] [--impl ours,bullmq]

const crypto = require('crypto');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { Bench } = require('./runner');
const { pinAddon } = require('./lib');

function parseArgs(argv) {
  const o = { jobs: 5000, concurrency: [1, 10], impl: ['ours', 'bullmq'], allowDebug: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--jobs') o.jobs = Number(argv[++i]);
    else if (a === '--concurrency') o.concurrency = argv[++i].split(',').map((c) => (c === 'backend' ? c : Number(c)));
    else if (a === '--impl') o.impl = argv[++i].split(',');
    else if (a === '--allow-debug') o.allowDebug = true;
    else throw new Error(`unknown argument ${a}`);
  }
  return o;
}

const sha1 = (s) => crypto.createHash('sha1').update(s).digest('hex');

/** sha1 -> script name, for our scripts and BullMQ 6's. */
function scriptNames() {
  const names = {};
  const dir = path.join(__dirname, '..', 'src', 'scripts');
  for (const f of fs.readdirSync(dir)) if (f.endsWith('.lua')) names[sha1(fs.readFileSync(path.join(dir, f), 'utf8'))] = `ours:${f}`;
  const bull = require('bullmq6/dist/cjs/scripts');
  for (const s of Object.values(bull)) if (s && s.content) names[sha1(s.content)] = `bullmq:${s.name}`;
  return names;
}

/**
 * SLOWLOG entries, oldest first: [id, ts, usec, args, addr, name]. Commands run inside a
 * script are logged (addr "?:0") before the script call itself.
 */
function splitByScript(entries, names, jobs) {
  const scripts = {};
  const top = {};
  let inner = [];
  for (const e of entries) {
    const [, , usec, args, addr] = e;
    const cmd = String(args[0]).toLowerCase();
    if (addr === '?:0' || addr === '') {
      inner.push([cmd, usec]);
      continue;
    }
    if (cmd === 'evalsha' || cmd === 'eval') {
      const name = cmd === 'evalsha' ? names[args[1]] || `sha:${String(args[1]).slice(0, 8)}` : `eval:${names[sha1(String(args[1]))] || '?'}`;
      const s = (scripts[name] ||= { calls: 0, usec: 0, innerCalls: 0, innerUsec: 0, commands: {} });
      s.calls += 1;
      s.usec += usec;
      for (const [c, u] of inner) {
        s.innerCalls += 1;
        s.innerUsec += u;
        const k = (s.commands[c] ||= { calls: 0, usec: 0 });
        k.calls += 1;
        k.usec += u;
      }
    } else {
      const k = (top[cmd] ||= { calls: 0, usec: 0 });
      k.calls += 1;
      k.usec += usec;
    }
    inner = [];
  }
  for (const s of Object.values(scripts)) {
    s.usecPerCall = s.usec / s.calls;
    s.innerCallsPerCall = s.innerCalls / s.calls;
    s.innerUsecPerCall = s.innerUsec / s.calls;
    s.overheadUsecPerCall = (s.usec - s.innerUsec) / s.calls;
    s.callsPerJob = s.calls / jobs;
  }
  return { scripts, topLevel: top };
}

/**
 * Self time per function of a .cpuprofile, grouped into categories; only the samples inside
 * the measured window (from 'go' to the last completion: the child reports both on the
 * monotonic clock the profiler uses), so start-up and shutdown are left out.
 */
function summariseProfile(file, window) {
  const prof = JSON.parse(fs.readFileSync(file, 'utf8'));
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const self = new Map();
  let t = prof.startTime;
  for (let i = 0; i < prof.samples.length; i++) {
    const dt = prof.timeDeltas[i] || 0;
    t += dt;
    if (window && window.goUs && (t < window.goUs || t > window.doneUs)) continue;
    self.set(prof.samples[i], (self.get(prof.samples[i]) || 0) + dt);
  }
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const fns = new Map();
  const cats = {};
  for (const [id, us] of self) {
    const n = byId.get(id);
    const cf = n.callFrame;
    const url = cf.url || '';
    // Paths inside the run's snapshot of the package (or the repository) become lib/..., index.js
    const short = url
      .replace(/^file:\/\//, '')
      .replace(path.join(__dirname, '..') + '/', '')
      .replace(/^.*\/qn-bench-pkg-[^/]+\//, '');
    const key = `${cf.functionName || '(anonymous)'} ${short ? `${short}:${cf.lineNumber + 1}` : '(native)'}`;
    fns.set(key, (fns.get(key) || 0) + us);
    const cat = category(cf.functionName, short);
    cats[cat] = (cats[cat] || 0) + us;
  }
  const top = [...fns.entries()].sort((a, b) => b[1] - a[1]).slice(0, 20);
  return { totalUs: total, categories: cats, top };
}

function category(fn, url) {
  if (fn === '(idle)') return 'idle (waiting in the event loop)';
  if (fn === '(garbage collector)') return 'garbage collector';
  if (fn === '(program)') return '(program): native code outside JS (napi/TSFN dispatch, libuv, V8 internals)';
  if (url.startsWith('lib/') || url === 'index.js' || url === 'binding.js') return 'our facade JS (lib/*.js: Job, Worker._process, events)';
  if (url.startsWith('bench/')) return 'benchmark processor and counters';
  if (url.includes('node_modules/bullmq')) return 'bullmq JS';
  if (url.includes('node_modules/ioredis') || url.includes('node_modules/redis-parser') || url.includes('node_modules/standard-as-callback') || url.includes('node_modules/denque')) return 'ioredis (protocol, commands)';
  if (url.includes('node_modules/')) return 'other node_modules (msgpackr, tslib, ...)';
  if (url.startsWith('node:') || url === '') return fn && url === '' ? 'native functions called from JS (napi callbacks, builtins)' : 'Node core JS (events, timers, streams, AbortController)';
  return 'other';
}

function pct(x, total) {
  return `${((100 * x) / total).toFixed(1)}%`;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const addon = pinAddon({ allowDebug: opts.allowDebug });
  const names = scriptNames();
  const bench = new Bench();
  await bench.start();
  const profDir = fs.mkdtempSync(path.join(os.tmpdir(), 'qn-prof-'));
  const out = { startedAt: new Date().toISOString(), jobs: opts.jobs, loadavgStart: fs.readFileSync('/proc/loadavg', 'utf8').trim(), runs: [] };
  const md = ['# Where the time of one job goes (bench/profile.js)', ''];
  md.push(`- ${out.startedAt}, ${opts.jobs} jobs per run, removeOnComplete true, Redis SLOWLOG at 0 µs and \`node --cpu-prof\` (both add overhead: use shares, not absolute speed)`);
  md.push(`- load average at start: ${out.loadavgStart}`, '');
  try {
    for (const concurrency of opts.concurrency) {
      for (const impl of opts.impl) {
        // `--concurrency backend`: npm run bench's backend fan-out (opts.jobs / 4 orders).
        const sc =
          concurrency === 'backend'
            ? {
                id: 'prof-backend',
                kind: 'throughput',
                queues: 4,
                jobsPerQueue: Math.round(opts.jobs / 4),
                preloadQueues: 1,
                backend: { waitMs: 2, workers: [[0, 5], [0, 5], [1, 3], [2, 5], [3, 10]] },
                removeOnComplete: true,
              }
            : { id: `prof-c${concurrency}`, kind: 'throughput', queues: 1, jobsPerQueue: opts.jobs, concurrency, removeOnComplete: true };
        const dir = path.join(profDir, `${impl}-c${concurrency}`);
        fs.mkdirSync(dir);
        // The slowlog is switched on after the preload (inside runWorker, preload happens
        // first); we reset it right before the child starts by hooking the client-id baseline.
        const origIds = bench.clientIds.bind(bench);
        bench.clientIds = async () => {
          await bench.admin.call('CONFIG', 'SET', 'slowlog-max-len', String(60 * opts.jobs + 100000));
          await bench.admin.call('CONFIG', 'SET', 'slowlog-log-slower-than', '0');
          await bench.admin.call('SLOWLOG', 'RESET');
          return origIds();
        };
        let run;
        try {
          run = await bench.runWorker(impl, sc, { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${dir}`] });
        } finally {
          bench.clientIds = origIds;
          await bench.admin.call('CONFIG', 'SET', 'slowlog-log-slower-than', '10000');
        }
        const entries = (await bench.admin.call('SLOWLOG', 'GET', String(60 * opts.jobs + 100000))).reverse();
        await bench.admin.call('SLOWLOG', 'RESET');
        const redis = splitByScript(entries, names, run.jobs);
        const profFile = fs.readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
        const cpu = profFile ? summariseProfile(path.join(dir, profFile), run.window) : undefined;
        out.runs.push({ impl, concurrency, run, redis, cpu });

        const label = impl === 'ours' ? 'ours' : 'BullMQ 6';
        md.push(`## ${label}, concurrency ${concurrency}`, '');
        const wallUs = (run.elapsedMs * 1000) / run.jobs;
        md.push(`- ${run.jobsPerSec.toFixed(0)} jobs/s under the profilers = ${wallUs.toFixed(0)} µs of wall time per job; worker process CPU ${run.procCpuUsPerJob.toFixed(0)} µs/job; Redis CPU ${run.redisCpuUsPerJob.toFixed(0)} µs/job`);
        const th = Object.entries(run.threadsCpuSec).filter(([, v]) => v > 0).map(([k, v]) => `${k} ${((v * 1e6) / run.jobs).toFixed(0)} µs/job`);
        md.push(`- worker process CPU by thread (/proc, 10 ms ticks): ${th.join('; ')}`, '');
        md.push('| Redis: script | calls/job | µs/call | commands inside/call | µs in those commands | µs Lua + call overhead |', '|---|---:|---:|---:|---:|---:|');
        for (const [name, s] of Object.entries(redis.scripts).sort((a, b) => b[1].usec - a[1].usec)) {
          md.push(`| ${name} | ${s.callsPerJob.toFixed(3)} | ${s.usecPerCall.toFixed(1)} | ${s.innerCallsPerCall.toFixed(1)} | ${s.innerUsecPerCall.toFixed(1)} | ${s.overheadUsecPerCall.toFixed(1)} |`);
        }
        const tl = Object.entries(redis.topLevel).filter(([c]) => !['info', 'client', 'slowlog', 'config'].includes(c));
        if (tl.length) md.push(`| other top-level commands | ${tl.map(([c, v]) => `${c} ${(v.calls / run.jobs).toFixed(3)}`).join(', ')} | | | | |`);
        md.push('');
        const fin = Object.entries(redis.scripts).sort((a, b) => b[1].usec - a[1].usec)[0];
        if (fin) {
          const cmds = Object.entries(fin[1].commands).sort((a, b) => b[1].calls - a[1].calls);
          md.push(`Commands inside \`${fin[0]}\` per call: ${cmds.map(([c, v]) => `${c} ${(v.calls / fin[1].calls).toFixed(2)}`).join(', ')}`, '');
        }
        if (cpu) {
          const total = cpu.totalUs;
          md.push(`Main (JS) thread, \`--cpu-prof\` self time by category, samples from 'go' to the last completion (${(total / 1000).toFixed(0)} ms, ${(total / run.jobs).toFixed(0)} µs/job of wall time):`, '');
          md.push('| Category | share | µs/job |', '|---|---:|---:|');
          for (const [c, us] of Object.entries(cpu.categories).sort((a, b) => b[1] - a[1])) md.push(`| ${c} | ${pct(us, total)} | ${(us / run.jobs).toFixed(1)} |`);
          md.push('', 'Top self-time functions (main thread):', '', '| Function | share | µs/job |', '|---|---:|---:|');
          for (const [fn, us] of cpu.top.slice(0, 12)) md.push(`| \`${fn}\` | ${pct(us, total)} | ${(us / run.jobs).toFixed(1)} |`);
          md.push('');
        }
        console.error(`[profile] ${impl} c${concurrency}: ${run.jobsPerSec.toFixed(0)} jobs/s`);
      }
    }
  } finally {
    await bench.stop();
    addon.cleanup();
    fs.rmSync(profDir, { recursive: true, force: true });
  }
  out.loadavgEnd = fs.readFileSync('/proc/loadavg', 'utf8').trim();
  md.splice(4, 0, `- load average at end: ${out.loadavgEnd}`);
  const dir = path.join(__dirname, 'results');
  fs.mkdirSync(dir, { recursive: true });
  const stamp = out.startedAt.replace(/[:.]/g, '-');
  fs.writeFileSync(path.join(dir, `profile-${stamp}.json`), JSON.stringify(out, null, 2));
  fs.writeFileSync(path.join(dir, 'profile-latest.md'), md.join('\n'));
  console.log(md.join('\n'));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
