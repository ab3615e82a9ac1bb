'use strict';
// Starts a private redis-server for a test file: free port, temp dir, no persistence.
// Never touches 6379 (a developer's own Redis usually lives there).

const { spawn } = require('child_process');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');
const Redis = require('ioredis');

function findRedisServer() {
  for (const dir of (process.env.PATH || '').split(path.delimiter)) {
    const candidate = path.join(dir, 'redis-server');
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // keep looking
    }
  }
  throw new Error(
    'redis-server not found on PATH: install it (e.g. `apt-get install redis-server` or `brew install redis`) to run the tests',
  );
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// One RESP round trip on a fresh socket: enough to tell "up" from "not yet".
function probe(port) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let buf = '';
    const done = (ok) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(500, () => done(false));
    sock.on('error', () => done(false));
    sock.on('connect', () => sock.write('PING\r\n'));
    sock.on('data', (d) => {
      buf += d.toString();
      if (buf.includes('\r\n')) done(buf.startsWith('+PONG') || buf.startsWith('-NOAUTH'));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function startRedis({ port, args = [], password } = {}) {
  const bin = findRedisServer();
  port = port ?? (await freePort());
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qn-redis-'));
  const argv = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, ...args];
  if (password) argv.push('--requirepass', password);
  let proc;
  let exited;
  let output = '';
  async function launch(extra = []) {
    proc = spawn(bin, [...argv, ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
    proc.stdout.on('data', (d) => (output += d));
    proc.stderr.on('data', (d) => (output += d));
    exited = false;
    proc.on('exit', () => (exited = true));
    const deadline = Date.now() + 10000;
    while (!(await probe(port))) {
      if (exited || Date.now() > deadline) {
        proc.kill('SIGKILL');
        throw new Error(`redis-server did not start on port ${port}:\n${output.slice(-2000)}`);
      }
      await sleep(20);
    }
  }
  async function kill() {
    if (!exited) {
      const gone = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGKILL');
      await gone;
    }
  }
  await launch();
  const clients = [];
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    get proc() {
      return proc;
    },
    /**
     * Crash (SIGKILL) and start again on the same port and dir: whatever was SAVEd comes back.
     * `args` are added for this start only (e.g. `--key-load-delay` to make loading last).
     * Resolves once the server answers PING, that is once it has loaded its data.
     */
    async restart({ args: extra = [] } = {}) {
      await kill();
      await launch(extra);
    },
    /** A separate ioredis client for the test's own inspection (never the library's). */
    client() {
      const c = new Redis({ port, host: '127.0.0.1', password, lazyConnect: false, maxRetriesPerRequest: 1 });
      c.on('error', () => {});
      clients.push(c);
      return c;
    },
    async stop() {
      for (const c of clients) c.disconnect();
      await kill();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Parse CLIENT LIST into objects. */
function parseClientList(text) {
  return text
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => Object.fromEntries(line.trim().split(' ').map((kv) => {
      const i = kv.indexOf('=');
      return [kv.slice(0, i), kv.slice(i + 1)];
    })));
}

/** Our library's sockets as the server sees them (named queue-native:<role>:<pid>). */
async function ourClients(client, pid = process.pid) {
  const list = parseClientList(await client.call('CLIENT', 'LIST'));
  return list.filter((c) => c.name && c.name.startsWith('queue-native:') && c.name.endsWith(`:${pid}`));
}

async function waitFor(predicate, { timeout = 5000, interval = 20, what = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = await predicate();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await sleep(interval);
  }
}

module.exports = { startRedis, freePort, ourClients, parseClientList, waitFor, sleep };
