'use strict';
// The one private redis-server harness: the jest specs (__test__/helpers), `npm run demo`,
// the bench and examples/backend's tests all start their Redis through this file. A server
// gets a free port (never 6379: a developer's own Redis usually lives there), a temp dir and
// no persistence unless asked; whatever ends the process, it does not outlive it.
//
// Only Node built-ins at load time: the demo runs it before the devDependencies may be
// installed. `client()` needs ioredis (a devDependency) and loads it on first use.

const { spawn } = require('child_process');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');

const HOST = '127.0.0.1';
const START_TIMEOUT_MS = 10_000;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Poll until `predicate` gives something truthy and resolve with it; throw after `timeout` ms. */
async function waitFor(predicate, { timeout = 5000, interval = 20, what = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = await predicate();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await sleep(interval);
  }
}

/** The redis-server binary on PATH; an error with code ENOREDIS (and how to install it) if none. */
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
  throw Object.assign(
    new Error('redis-server not found on PATH: install it (Debian/Ubuntu: `sudo apt-get install redis-server`, macOS: `brew install redis`)'),
    { code: 'ENOREDIS' },
  );
}

/** A TCP port nobody listens on right now (the OS picks it). */
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, HOST, () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// One PING on a fresh socket tells "up" from "not yet"; -NOAUTH is "up" too (a password is set).
function probe(port) {
  return new Promise((resolve) => {
    const sock = net.connect(port, HOST);
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

const PERSISTENCE = {
  none: ['--save', '', '--appendonly', 'no'],
  // Every write fsynced before the reply: a SIGKILL loses nothing (fault tests restart on it).
  aof: ['--save', '', '--appendonly', 'yes', '--appendfsync', 'always'],
};

class RedisServer {
  /**
   * @param {object} [opts]
   * @param {number} [opts.port] default: a free one, picked by start()
   * @param {string} [opts.password] requirepass
   * @param {'none'|'aof'} [opts.persistence] default 'none'; an explicit SAVE still writes dump.rdb to `dir`
   * @param {string} [opts.dir] working dir (kept at stop); default: a temp dir removed at stop
   * @param {string[]} [opts.args] more redis-server arguments, after ours
   */
  constructor({ port, password, persistence = 'none', dir, args = [] } = {}) {
    if (!PERSISTENCE[persistence]) throw new Error(`persistence must be one of ${Object.keys(PERSISTENCE).join(', ')}`);
    this.host = HOST;
    this.port = port;
    this.password = password;
    this.dir = dir;
    this.ownDir = !dir;
    this.persistence = persistence;
    this.args = args;
    this.proc = null;
    this.exited = true;
    this.output = '';
    this.clients = [];
    // A server still running when the process exits (a crash, process.exit in a script) is
    // killed synchronously: an 'exit' listener cannot wait. Added by start(), removed by stop().
    this.onExit = () => this.killSync();
  }

  get url() {
    return `redis://${this.password ? `:${encodeURIComponent(this.password)}@` : ''}${HOST}:${this.port}`;
  }

  get pid() {
    return this.proc && this.proc.pid;
  }

  /**
   * Start the server (again, after kill(): same port and dir) and resolve once it answers.
   * `extra` arguments apply to this start only (e.g. `--key-load-delay` to make loading last).
   */
  async start(extra = []) {
    if (!this.exited) return this;
    const bin = findRedisServer();
    if (this.port === undefined) this.port = await freePort();
    if (!this.dir) this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qn-redis-'));
    const argv = ['--port', String(this.port), '--bind', HOST, ...PERSISTENCE[this.persistence], '--dir', this.dir];
    if (this.password) argv.push('--requirepass', this.password);
    argv.push(...this.args, ...extra);
    this.output = '';
    const proc = spawn(bin, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = proc;
    this.exited = false;
    proc.stdout.on('data', (d) => (this.output += d));
    proc.stderr.on('data', (d) => (this.output += d));
    proc.on('exit', () => {
      if (this.proc === proc) this.exited = true;
    });
    process.off('exit', this.onExit);
    process.on('exit', this.onExit);
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (!(await probe(this.port))) {
      if (this.exited || Date.now() > deadline) {
        await this.kill();
        throw new Error(`redis-server did not start on port ${this.port}:\n${this.output.slice(-2000)}`);
      }
      await sleep(20);
    }
    return this;
  }

  /** Crash it (SIGKILL by default): the port and dir stay for start(). */
  async kill(signal = 'SIGKILL') {
    if (!this.exited) {
      const gone = new Promise((r) => this.proc.once('exit', r));
      this.proc.kill(signal);
      await gone;
    }
  }

  /**
   * Crash and start again on the same port and dir: whatever was persisted comes back. `args`
   * are added for this start only. Resolves once the server answers PING (it has loaded).
   */
  async restart({ args = [] } = {}) {
    await this.kill();
    await this.start(args);
  }

  /** A separate ioredis client for the caller's own inspection, disconnected by stop(). */
  client(opts = {}) {
    const Redis = require('ioredis');
    const c = new Redis({ host: HOST, port: this.port, password: this.password, maxRetriesPerRequest: 1, ...opts });
    c.on('error', () => {});
    this.clients.push(c);
    return c;
  }

  /** Disconnect our clients, kill the server, remove the temp dir. */
  async stop() {
    for (const c of this.clients.splice(0)) c.disconnect();
    await this.kill();
    process.off('exit', this.onExit);
    this.removeDir();
  }

  killSync() {
    if (!this.exited) this.proc.kill('SIGKILL');
    this.removeDir();
  }

  removeDir() {
    if (this.ownDir && this.dir) {
      fs.rmSync(this.dir, { recursive: true, force: true });
      this.dir = undefined;
    }
  }
}

/** Start a private server (see RedisServer for the options). */
function startRedis(opts) {
  return new RedisServer(opts).start();
}

/** CLIENT LIST's text as one object a client. */
function parseClientList(text) {
  return String(text)
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) =>
      Object.fromEntries(
        line
          .trim()
          .split(' ')
          .map((kv) => {
            const i = kv.indexOf('=');
            return [kv.slice(0, i), kv.slice(i + 1)];
          }),
      ),
    );
}

/** Is this CLIENT LIST entry one of the addon's sockets of process `pid` (named queue-native:<role>:<pid>)? */
function isNativeClientOf(entry, pid) {
  return Boolean(entry.name && entry.name.startsWith('queue-native:') && entry.name.endsWith(`:${pid}`));
}

/** The addon's sockets of process `pid` as the server sees them; `client` is anything with call(). */
async function ourClients(client, pid = process.pid) {
  return parseClientList(await client.call('CLIENT', 'LIST')).filter((c) => isNativeClientOf(c, pid));
}

module.exports = {
  RedisServer,
  startRedis,
  findRedisServer,
  freePort,
  parseClientList,
  isNativeClientOf,
  ourClients,
  waitFor,
  sleep,
};
