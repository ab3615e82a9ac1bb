'use strict';
// `npm run demo [-- --orders N]`: the backend example (examples/backend) over a few thousand
// orders, once on plain BullMQ Workers and Queues (the "before") and once on
// @anant/queue-native (the "after"), each in its own process, with the Redis sockets each
// process really held. Builds the addon and installs the example's dependencies if needed,
// starts a private redis-server unless REDIS_URL is set, cleans up, exits 0.

const { spawn, spawnSync } = require('child_process');
const fs = require('fs');
const net = require('net');
const path = require('path');
const { RedisServer, parseClientList, isNativeClientOf, sleep } = require('./redis-harness');

const root = path.join(__dirname, '..');
const example = path.join(root, 'examples', 'backend');
const CONCURRENCY = 10;
// The backend retries with exponential backoff from 2000 ms (DEFAULT_JOB_OPTIONS). The demo
// starts it at 50 ms (QUEUE_BACKOFF_DELAY_MS) so that its retries finish within the run.
const BACKOFF_MS = 50;
const SAMPLE_MS = 100;
const CHILD_TIMEOUT_MS = 150_000;

// ------------------------------------------------------------------ small helpers

function usage() {
  console.log(`usage: npm run demo [-- --orders N]

Runs examples/backend over N orders (default 3000) on BullMQ and on @anant/queue-native and
prints throughput, failures and the Redis sockets each process held.
  REDIS_URL=redis://[:password@]host:port[/db]  use this server (keys under a demo-only prefix,
                                                deleted afterwards) instead of a private one`);
}

function parseArgs(argv) {
  const opts = { orders: 3000 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--help' || a === '-h') {
      usage();
      process.exit(0);
    } else if (a === '--orders' || a.startsWith('--orders=')) {
      const v = a.includes('=') ? a.split('=')[1] : argv[++i];
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1 || n > 1_000_000) fail(`--orders needs a whole number from 1 to 1000000, got ${v}`);
      opts.orders = n;
    } else {
      fail(`unknown argument ${a} (try --help)`);
    }
  }
  return opts;
}

const cleanups = [];
// Last resort, whatever ends the process: kill the children we started (synchronously, as
// 'exit' handlers must; the redis-server harness does the same for its server).
const exitCleanups = [];
process.on('exit', () => {
  for (const f of exitCleanups) {
    try {
      f();
    } catch {
      // best effort
    }
  }
});
// A reader that goes away (`npm run demo | head`) must not stop the cleanup.
for (const stream of [process.stdout, process.stderr]) stream.on('error', () => {});
let exiting = false;

async function cleanup() {
  while (cleanups.length) {
    try {
      await cleanups.pop()();
    } catch {
      // best effort
    }
  }
}

function fail(message) {
  console.error(`demo: ${message}`);
  exiting = true;
  cleanup().finally(() => process.exit(1));
  // keep the caller from going on while cleanup runs
  throw Object.assign(new Error(message), { handled: true });
}

const fmt = (n) => Math.round(n).toLocaleString('en-US');

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', ...opts });
  if (r.error) fail(`${cmd} ${args.join(' ')}: ${r.error.message}`);
  if (r.status !== 0) fail(`\`${cmd} ${args.join(' ')}\` failed (exit ${r.status}) in ${opts.cwd || root}`);
}

function npm(args, opts = {}) {
  // Under `npm run`, npm_execpath is npm's own CLI: use the same npm that runs us.
  const cli = process.env.npm_execpath;
  if (cli && /npm-cli\.js$/.test(cli)) return run(process.execPath, [cli, ...args], opts);
  return run(process.platform === 'win32' ? 'npm.cmd' : 'npm', args, opts);
}

// ------------------------------------------------------------------ build and install if needed

function addonBinary() {
  return fs.readdirSync(root).find((f) => /^queue-native\..+\.node$/.test(f));
}

/** A shared object with DWARF sections is a debug build (slow: its numbers mean little). */
function isDebugBuild(file) {
  try {
    const buf = fs.readFileSync(file);
    if (buf.readUInt32BE(0) !== 0x7f454c46 || buf[4] !== 2) return false;
    const shoff = Number(buf.readBigUInt64LE(0x28));
    const shentsize = buf.readUInt16LE(0x3a);
    const shnum = buf.readUInt16LE(0x3c);
    const strOff = Number(buf.readBigUInt64LE(shoff + buf.readUInt16LE(0x3e) * shentsize + 0x18));
    for (let i = 0; i < shnum; i++) {
      const nameOff = buf.readUInt32LE(shoff + i * shentsize);
      const name = buf.toString('latin1', strOff + nameOff, buf.indexOf(0, strOff + nameOff));
      if (name.startsWith('.debug_')) return true;
    }
  } catch {
    // not ELF or unreadable: say nothing
  }
  return false;
}

function ensureBuilt() {
  if (!addonBinary()) {
    if (!fs.existsSync(path.join(root, 'node_modules', '@napi-rs', 'cli'))) {
      console.log('demo: installing the addon\'s dependencies and building it (first run only: a few minutes)...');
      npm(['install', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: root });
    }
    if (!addonBinary()) {
      console.log('demo: building the addon (release; first run only: a few minutes)...');
      npm(['run', 'build'], { cwd: root });
    }
    if (!addonBinary()) fail('the build finished but no queue-native.*.node appeared');
  }
  // napi-rs's loader prefers NAPI_RS_NATIVE_LIBRARY_PATH when it is set (the bench pins a
  // release build that way); the children inherit it.
  const binary = process.env.NAPI_RS_NATIVE_LIBRARY_PATH || path.join(root, addonBinary());
  return { binary, debug: isDebugBuild(binary) };
}

function ensureExampleInstalled() {
  const needed = ['@anant/queue-native', '@swc/core', 'bullmq', 'winston', 'ioredis'];
  const missing = needed.filter((p) => !fs.existsSync(path.join(example, 'node_modules', p, 'package.json')));
  if (missing.length === 0) return;
  console.log('demo: installing examples/backend\'s dependencies (first run only)...');
  // The example depends on the addon through `file:../..` (a symlink to this checkout, already
  // built): QUEUE_NATIVE_SKIP_BUILD=1 keeps npm from building it a second time.
  const env = { ...process.env, QUEUE_NATIVE_SKIP_BUILD: '1' };
  const hasLock = fs.existsSync(path.join(example, 'package-lock.json'));
  npm([hasLock ? 'ci' : 'install', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: example, env });
}

// ------------------------------------------------------------------ Redis: a private server or REDIS_URL

/** A minimal RESP2 client: enough for PING, INFO, CLIENT LIST, SCAN and UNLINK. */
function respClient({ host, port, username, password, db }) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, host);
    const pending = [];
    let buf = Buffer.alloc(0);
    let failed = null;

    function parse(b, i) {
      if (i >= b.length) return null;
      const end = b.indexOf('\r\n', i);
      if (end < 0) return null;
      const type = String.fromCharCode(b[i]);
      const line = b.toString('utf8', i + 1, end);
      const next = end + 2;
      if (type === '+') return [line, next];
      if (type === '-') return [Object.assign(new Error(line), { redis: true }), next];
      if (type === ':') return [Number(line), next];
      if (type === '$') {
        const len = Number(line);
        if (len < 0) return [null, next];
        if (b.length < next + len + 2) return null;
        return [b.toString('utf8', next, next + len), next + len + 2];
      }
      if (type === '*') {
        const n = Number(line);
        if (n < 0) return [null, next];
        const out = [];
        let at = next;
        for (let k = 0; k < n; k++) {
          const r = parse(b, at);
          if (!r) return null;
          out.push(r[0]);
          at = r[1];
        }
        return [out, at];
      }
      throw new Error(`unexpected RESP type ${type}`);
    }

    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const r = parse(buf, 0);
        if (!r) break;
        buf = buf.subarray(r[1]);
        const p = pending.shift();
        if (!p) continue;
        if (r[0] instanceof Error) p.reject(r[0]);
        else p.resolve(r[0]);
      }
    });
    const die = (err) => {
      failed = failed || err;
      while (pending.length) pending.shift().reject(failed);
    };
    sock.on('error', (err) => {
      die(err);
      reject(err);
    });
    sock.on('close', () => die(new Error('connection closed')));

    const client = {
      call(...args) {
        if (failed) return Promise.reject(failed);
        return new Promise((res, rej) => {
          pending.push({ resolve: res, reject: rej });
          let msg = `*${args.length}\r\n`;
          for (const a of args) {
            const s = String(a);
            msg += `$${Buffer.byteLength(s)}\r\n${s}\r\n`;
          }
          sock.write(msg);
        });
      },
      close() {
        sock.end();
        sock.destroy();
      },
    };
    sock.on('connect', async () => {
      try {
        if (password) await client.call('AUTH', ...(username ? [username, password] : [password]));
        if (db) await client.call('SELECT', db);
        await client.call('CLIENT', 'SETNAME', 'queue-native-demo-sampler');
        resolve(client);
      } catch (err) {
        sock.destroy();
        reject(err);
      }
    });
  });
}

function parseRedisUrl(text) {
  let u;
  try {
    u = new URL(text);
  } catch {
    fail('REDIS_URL is not a URL (expected redis://[:password@]host:port[/db])');
  }
  if (u.protocol !== 'redis:') fail(`REDIS_URL: only redis:// is supported by the demo (got ${u.protocol}//)`);
  return {
    host: u.hostname || '127.0.0.1',
    port: Number(u.port || 6379),
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    db: Number((u.pathname || '/0').slice(1) || 0),
  };
}

async function startPrivateRedis() {
  const server = new RedisServer();
  cleanups.push(() => server.stop());
  try {
    await server.start();
  } catch (err) {
    fail(err.code === 'ENOREDIS' ? `${err.message}, or set REDIS_URL=redis://host:port` : err.message);
  }
  const endpoint = { host: server.host, port: server.port };
  const client = await respClient(endpoint);
  return { endpoint, client, version: await serverVersion(client), private: true };
}

async function serverVersion(client) {
  const info = await client.call('INFO', 'server');
  return (/redis_version:([^\r\n]+)/.exec(info) || [])[1] || '?';
}

// ------------------------------------------------------------------ counting a process's sockets

/** Local TCP ports of the sockets process `pid` holds (Linux /proc); null where unknown. */
function localPortsOf(pid) {
  let fds;
  try {
    fds = fs.readdirSync(`/proc/${pid}/fd`);
  } catch {
    return null;
  }
  const inodes = new Set();
  for (const fd of fds) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]);
    } catch {
      // closed meanwhile
    }
  }
  const ports = new Set();
  for (const tcpTable of [`/proc/${pid}/net/tcp`, `/proc/${pid}/net/tcp6`]) {
    let text;
    try {
      text = fs.readFileSync(tcpTable, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length > 9 && inodes.has(cols[9])) ports.add(parseInt(cols[1].split(':').pop(), 16));
    }
  }
  return ports;
}

/**
 * The Redis clients of process `pid`, as the server lists them: matched by the socket's port
 * (CLIENT LIST addr against the process's own sockets in /proc) or, for the addon, by its
 * client name queue-native:<role>:<pid>.
 */
async function clientsOf(client, pid) {
  const [list, info] = await Promise.all([client.call('CLIENT', 'LIST'), client.call('INFO', 'clients')]);
  const ports = localPortsOf(pid);
  const mine = parseClientList(list).filter((c) => {
    if (isNativeClientOf(c, pid)) return true;
    if (!ports) return false;
    const port = Number(String(c.addr || '').split(':').pop());
    return ports.has(port);
  });
  const connected = Number((/connected_clients:(\d+)/.exec(info) || [])[1] || NaN);
  return { mine, connected, byProc: !!ports };
}

// ------------------------------------------------------------------ one run of the backend

function runVariant(impl, { orders, endpoint, sampler, prefix }) {
  return new Promise((resolve) => {
    const env = { ...process.env };
    delete env.REDIS_URL;
    Object.assign(env, {
      REDIS_HOST: endpoint.host,
      REDIS_PORT: String(endpoint.port),
      REDIS_DB: String(endpoint.db || 0),
      QUEUE_IMPL: impl,
      QUEUE_PREFIX: prefix,
      QUEUE_CONCURRENCY: String(CONCURRENCY),
      QUEUE_BACKOFF_DELAY_MS: String(BACKOFF_MS),
      LOG_LEVEL: 'warn',
      NODE_ENV: 'production',
    });
    if (endpoint.password) env.REDIS_PASSWORD = endpoint.password;
    else delete env.REDIS_PASSWORD;
    const started = Date.now();
    const child = spawn(
      process.execPath,
      ['-r', './scripts/register.js', 'src/load/run-orders.ts', '--orders', String(orders), '--timeout', String(CHILD_TIMEOUT_MS - 20_000)],
      { cwd: example, env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const killer = () => child.kill('SIGKILL');
    cleanups.push(killer);
    exitCleanups.push(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), CHILD_TIMEOUT_MS);

    const peak = { sockets: 0, connected: 0, names: new Set(), byProc: true, samples: 0 };
    let sampling = true;
    const baselinePromise = sampler.call('INFO', 'clients').then((info) => Number((/connected_clients:(\d+)/.exec(info) || [])[1]));
    const loop = (async () => {
      const baseline = await baselinePromise;
      while (sampling) {
        try {
          const s = await clientsOf(sampler, child.pid);
          peak.samples++;
          peak.byProc = peak.byProc && s.byProc;
          peak.sockets = Math.max(peak.sockets, s.mine.length);
          peak.connected = Math.max(peak.connected, s.connected - baseline);
          // The command socket's name lists the process's workers and is renamed as they come
          // (src/engine/connection/naming.rs): one socket, shown once.
          const shown = (name) => name.replace(`:${child.pid}`, ':<pid>').replace(/^(queue-native:command:).+(:<pid>)$/, '$1<workers>$2');
          for (const c of s.mine) peak.names.add(c.name ? shown(c.name) : '(no name)');
        } catch {
          // the server is busy or gone: next sample
        }
        await sleep(SAMPLE_MS);
      }
    })();

    child.on('exit', async (code, signal) => {
      clearTimeout(timer);
      sampling = false;
      await loop;
      const idx = cleanups.indexOf(killer);
      if (idx >= 0) cleanups.splice(idx, 1);
      const line = out.split('\n').find((l) => l.startsWith('@@result '));
      let result = null;
      try {
        result = line ? JSON.parse(line.slice('@@result '.length)) : null;
      } catch {
        result = null;
      }
      resolve({ impl, code, signal, result, out, peak, wallMs: Date.now() - started });
    });
  });
}

async function deleteKeys(client, prefix) {
  let cursor = '0';
  let n = 0;
  do {
    const [next, keys] = await client.call('SCAN', cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length) n += await client.call('UNLINK', ...keys);
  } while (cursor !== '0');
  return n;
}

// ------------------------------------------------------------------ the report

function versionOf(pkgDir) {
  try {
    return JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8')).version;
  } catch {
    return '?';
  }
}

function table(rows, widths) {
  return rows
    .map((cells) => cells.map((c, i) => (i === 0 ? String(c).padEnd(widths[0]) : String(c).padStart(widths[i]))).join(''))
    .join('\n');
}

function report(runs, { orders }) {
  const [before, after] = runs;
  const b = before.result;
  const a = after.result;
  const sockets = (r) => (r.peak.samples ? String(r.peak.sockets) : '?');
  const bullmqVersion = versionOf(path.join(example, 'node_modules', 'bullmq'));
  const rows = [
    ['', `before: BullMQ ${bullmqVersion}`, 'after: @anant/queue-native'],
    ['Redis sockets held (peak)', sockets(before), sockets(after)],
    ['throughput', `${fmt(b.jobsPerSec)} jobs/s`, `${fmt(a.jobsPerSec)} jobs/s`],
    ['time to settle all jobs', `${(b.elapsedMs / 1000).toFixed(1)} s`, `${(a.elapsedMs / 1000).toFixed(1)} s`],
    ['jobs completed', fmt(b.completed), fmt(a.completed)],
    ['jobs failed (final)', fmt(b.failed), fmt(a.failed)],
    ['  of them unrecoverable', fmt(b.unrecoverable), fmt(a.unrecoverable)],
    ['attempts failed and retried', fmt(b.retried), fmt(a.retried)],
    ['peak RSS of the process', `${b.rssPeakMb} MB`, `${a.rssPeakMb} MB`],
  ];
  console.log('');
  console.log(table(rows, [30, 24, 30]));
  console.log('');
  const expected = a.expected;
  for (const r of [b, a]) {
    const total = r.completed + r.failed;
    if (total !== expected.jobs || r.failed !== expected.failed) {
      console.log(`note: the ${r.impl} run accounted for ${fmt(total)} jobs and ${fmt(r.failed)} failures; ${fmt(expected.jobs)} and ${fmt(expected.failed)} were expected`);
    }
  }
  console.log(`top failure reasons (after; ${fmt(a.failed)} failed jobs, listed through the backend's queue service):`);
  for (const { reason, count } of a.failureReasons.slice(0, 5)) {
    console.log(`  ${String(count).padStart(6)}  ${reason}`);
  }
  const names = [...after.peak.names].sort().join(', ');
  console.log('');
  console.log(
    `sockets: the run's process in CLIENT LIST (matched by ${before.peak.byProc ? 'its sockets in /proc' : 'client name'}), sampled every ${SAMPLE_MS} ms.`,
  );
  console.log(
    `  before: one shared config object, yet every Worker opens 2 clients and every Queue 1 (5 x 2 + 4 = 14); peak connected_clients rise ${before.peak.connected}.`,
  );
  console.log(`  after: ${names || '(none seen)'}; peak connected_clients rise ${after.peak.connected}.`);
  console.log(`${fmt(orders)} orders -> ${fmt(expected.jobs)} jobs per run.`);
}

// ------------------------------------------------------------------ main

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.on(sig, () => {
      if (exiting) return;
      exiting = true;
      console.error(`\ndemo: ${sig}: cleaning up`);
      cleanup().finally(() => process.exit(130));
    });
  }

  const addon = ensureBuilt();
  ensureExampleInstalled();

  let redis;
  if (process.env.REDIS_URL) {
    const endpoint = parseRedisUrl(process.env.REDIS_URL);
    let client;
    try {
      client = await respClient(endpoint);
    } catch (err) {
      fail(`cannot reach REDIS_URL (${endpoint.host}:${endpoint.port}): ${err.message}`);
    }
    redis = { endpoint, client, version: await serverVersion(client), private: false };
  } else {
    redis = await startPrivateRedis();
  }
  cleanups.push(async () => redis.client.close());
  const where = `${redis.endpoint.host}:${redis.endpoint.port}`;

  console.log(`queue-native demo: examples/backend (the anant backend's queue feature) over ${fmt(opts.orders)} orders`);
  console.log(`  orders -> payments -> inventory + notifications; 5 workers (2 order, payment, inventory, notification)`);
  console.log(`  at QUEUE_CONCURRENCY=${CONCURRENCY}, 4 queues, publishers in the same process; each run in its own process`);
  console.log(
    `  redis ${redis.version} at ${where} (${redis.private ? 'private redis-server, stopped at the end' : 'REDIS_URL; demo keys deleted at the end'})`,
  );
  console.log(`  retries: exponential backoff from ${BACKOFF_MS} ms for this run (QUEUE_BACKOFF_DELAY_MS; the backend's default is 2000 ms)`);
  if (addon.debug) {
    console.log('  note: the addon is a DEBUG build: its numbers are not representative (`npm run build` makes a release build)');
  }

  const runs = [];
  const variants = [
    ['bullmq', 'before: plain BullMQ Workers and Queues'],
    ['native', 'after:  @anant/queue-native'],
  ];
  for (const [i, [impl, label]] of variants.entries()) {
    const prefix = `demo-${impl}-${process.pid}`;
    if (!redis.private) cleanups.push(() => deleteKeys(redis.client, prefix));
    process.stdout.write(`[${i + 1}/2] ${label} ... `);
    const r = await runVariant(impl, { orders: opts.orders, endpoint: redis.endpoint, sampler: redis.client, prefix });
    if (!r.result || r.code !== 0) {
      console.log('FAILED');
      const tail = r.out.split('\n').filter((l) => !l.startsWith('@@result')).slice(-30).join('\n');
      fail(`the ${impl} run ${r.signal ? `was killed (${r.signal})` : `exited with ${r.code}`}${r.result && !r.result.settled ? ' before its jobs settled' : ''}; its last output:\n${tail}`);
    }
    console.log(`done in ${(r.wallMs / 1000).toFixed(1)} s`);
    runs.push(r);
  }

  report(runs, opts);

  const native = runs[1];
  await cleanup();
  console.log(`cleaned up: ${redis.private ? 'redis-server stopped, its temp dir removed' : 'demo keys deleted'}.`);
  if (native.peak.samples && native.peak.sockets > 2) {
    console.error(`demo: the queue-native process held ${native.peak.sockets} sockets (expected at most 2)`);
    process.exit(1);
  }
}

main().catch((err) => {
  if (err && err.handled) return;
  console.error(`demo: ${err && err.stack ? err.stack : err}`);
  exiting = true;
  cleanup().finally(() => process.exit(1));
});
