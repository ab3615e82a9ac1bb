'use strict';
// Shared pieces of the benchmark harness: statistics, Redis INFO parsing, the child process
// protocol and per-thread CPU accounting. Plain JavaScript (not part of the tsc project).

const crypto = require('crypto');
const fs = require('fs');
const os = require('os');
const path = require('path');

// ---------------------------------------------------------------- statistics

function sorted(xs) {
  return xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
}

function median(xs) {
  const s = sorted(xs);
  if (s.length === 0) return undefined;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Nearest-rank percentile (p in 0..100) of an unsorted array. */
function percentile(xs, p) {
  const s = sorted(xs);
  if (s.length === 0) return undefined;
  const rank = Math.min(s.length, Math.max(1, Math.ceil((p / 100) * s.length)));
  return s[rank - 1];
}

function summary(xs) {
  const s = sorted(xs);
  if (s.length === 0) return undefined;
  return { median: median(s), min: s[0], max: s[s.length - 1], n: s.length, values: xs };
}

// ---------------------------------------------------------------- Redis INFO

/** Parse an INFO reply into { key: value } (numbers where they are numbers). */
function parseInfo(text) {
  const out = {};
  for (const line of text.split('\r\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.indexOf(':');
    if (i < 0) continue;
    const k = line.slice(0, i);
    const v = line.slice(i + 1);
    out[k] = /^-?\d+(\.\d+)?$/.test(v) ? Number(v) : v;
  }
  return out;
}

/** cmdstat_<name>:calls=1,usec=2,... -> { name: { calls, usec, ... } } */
function commandStats(info) {
  const out = {};
  for (const [k, v] of Object.entries(info)) {
    if (!k.startsWith('cmdstat_') || typeof v !== 'string') continue;
    const fields = {};
    for (const kv of v.split(',')) {
      const [a, b] = kv.split('=');
      fields[a] = Number(b);
    }
    out[k.slice('cmdstat_'.length)] = fields;
  }
  return out;
}

// The harness's own commands, left out of the per-job command counts (the worker children
// issue none of them while a run is measured).
const HARNESS_COMMANDS = new Set(['info', 'client|list']);

/** One snapshot of what the run is charged for: Redis CPU and commands executed. */
async function redisSnapshot(client) {
  const info = parseInfo(await client.call('INFO', 'cpu', 'commandstats'));
  const stats = commandStats(info);
  let calls = 0;
  for (const [name, s] of Object.entries(stats)) if (!HARNESS_COMMANDS.has(name)) calls += s.calls || 0;
  return {
    cpu: (info.used_cpu_sys || 0) + (info.used_cpu_user || 0),
    calls,
    stats,
  };
}

function redisDelta(before, after) {
  const perCommand = {};
  for (const [name, s] of Object.entries(after.stats)) {
    if (HARNESS_COMMANDS.has(name)) continue;
    const b = before.stats[name] || { calls: 0, usec: 0 };
    const calls = (s.calls || 0) - (b.calls || 0);
    if (calls > 0) perCommand[name] = { calls, usec: (s.usec || 0) - (b.usec || 0) };
  }
  return { cpuSec: after.cpu - before.cpu, calls: after.calls - before.calls, perCommand };
}

// ---------------------------------------------------------------- per-thread CPU (Linux)

const TICK = 100; // USER_HZ: /proc reports utime/stime in 1/100 s on Linux

/** CPU seconds per thread group of this process: main (the JS thread), by thread name else. */
function threadCpu(pid = process.pid) {
  const out = {};
  let dir;
  try {
    dir = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of dir) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // rest[0] is field 3 (state); utime is field 14, stime field 15
      const cpu = (Number(rest[11]) + Number(rest[12])) / TICK;
      const comm = fs.readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      const group = String(tid) === String(pid) ? 'main (JS) thread' : comm === 'node' ? 'other node threads (V8 GC/platform, libuv)' : comm;
      out[group] = (out[group] || 0) + cpu;
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

function threadDelta(before, after) {
  const out = {};
  for (const [k, v] of Object.entries(after)) out[k] = +(v - (before[k] || 0)).toFixed(3);
  return out;
}

// ---------------------------------------------------------------- child protocol

const MARK = '@@bench ';

/** Child side: one JSON message per line on stdout, marked so stray output is ignored. */
function send(msg) {
  process.stdout.write(MARK + JSON.stringify(msg) + '\n');
}

/** Child side: commands from the parent arrive as lines on stdin. */
function onCommand(handler) {
  let buf = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i).trim();
      buf = buf.slice(i + 1);
      if (line) handler(line);
    }
  });
}

// ---------------------------------------------------------------- the addon under test

/** Names of the ELF sections of a shared object (enough to tell a debug build). */
function elfSections(file) {
  const buf = fs.readFileSync(file);
  if (buf.readUInt32BE(0) !== 0x7f454c46 || buf[4] !== 2) return [];
  const shoff = Number(buf.readBigUInt64LE(0x28));
  const shentsize = buf.readUInt16LE(0x3a);
  const shnum = buf.readUInt16LE(0x3c);
  const shstrndx = buf.readUInt16LE(0x3e);
  const strOff = Number(buf.readBigUInt64LE(shoff + shstrndx * shentsize + 0x18));
  const names = [];
  for (let i = 0; i < shnum; i++) {
    const nameOff = buf.readUInt32LE(shoff + i * shentsize);
    const end = buf.indexOf(0, strOff + nameOff);
    names.push(buf.toString('latin1', strOff + nameOff, end));
  }
  return names;
}

/**
 * Pin the code under test for the whole run: other people rebuild the repository's .node
 * (often as a debug build) and edit lib/*.js while a benchmark runs. The facade (index.js,
 * binding.js, lib/, package.json) and the release binary (QUEUE_NATIVE_ADDON, else the
 * repository's .node) are copied to a private directory at start; every process of the run
 * loads that snapshot (QN_BENCH_PACKAGE). A binary with DWARF sections is a debug build:
 * refused unless allowDebug.
 */
function pinAddon({ allowDebug = false } = {}) {
  const root = path.join(__dirname, '..');
  const binaryName = 'queue-native.linux-x64-gnu.node';
  const src = process.env.QUEUE_NATIVE_ADDON || path.join(root, binaryName);
  if (!fs.existsSync(src)) throw new Error(`addon ${src} not found: run \`npm run build\` first`);
  const debug = elfSections(src).some((n) => n.startsWith('.debug_'));
  if (debug && !allowDebug) {
    throw new Error(
      `${src} is a debug build (it has .debug_* sections): run \`npm run build\` (release) first, ` +
        'or point QUEUE_NATIVE_ADDON at a release .node',
    );
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qn-bench-pkg-'));
  for (const f of ['index.js', 'binding.js', 'package.json']) fs.copyFileSync(path.join(root, f), path.join(dir, f));
  fs.cpSync(path.join(root, 'lib'), path.join(dir, 'lib'), { recursive: true });
  fs.copyFileSync(src, path.join(dir, binaryName));
  // The facade's own dependencies (cron-parser, ...) resolve from the repository.
  fs.symlinkSync(path.join(root, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
  // binding.js would prefer an override path over the local file: make sure it uses ours.
  delete process.env.NAPI_RS_NATIVE_LIBRARY_PATH;
  process.env.QN_BENCH_PACKAGE = dir;
  const st = fs.statSync(src);
  let git;
  try {
    const { execSync } = require('child_process');
    const head = execSync('git rev-parse --short HEAD', { cwd: root }).toString().trim();
    const dirty = execSync('git status --porcelain -- src lib index.js binding.js', { cwd: root }).toString().trim();
    git = { head, dirtySources: dirty ? dirty.split('\n').length : 0 };
  } catch {
    git = undefined;
  }
  return {
    source: path.isAbsolute(path.relative(root, src)) || path.relative(root, src).startsWith('..') ? src : path.relative(root, src),
    package: dir,
    bytes: st.size,
    builtAt: st.mtime.toISOString(),
    sha256: crypto.createHash('sha256').update(fs.readFileSync(src)).digest('hex').slice(0, 16),
    debug,
    git,
    cleanup: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

/** The package under test: the run's snapshot if there is one, else the repository. */
function packageDir() {
  return process.env.QN_BENCH_PACKAGE || path.join(__dirname, '..');
}

module.exports = {
  pinAddon,
  packageDir,
  median,
  percentile,
  summary,
  parseInfo,
  commandStats,
  redisSnapshot,
  redisDelta,
  threadCpu,
  threadDelta,
  send,
  onCommand,
  MARK,
};
