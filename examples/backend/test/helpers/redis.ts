// A private redis-server per test file: free port (never 6379), temp dir, no persistence.
// Same idea as the addon's own __test__/helpers/redis-server.js.
import { spawn, type ChildProcess } from 'child_process';
import fs from 'fs';
import net from 'net';
import os from 'os';
import path from 'path';
import Redis from 'ioredis';

export function findRedisServer(): string {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const candidate = path.join(dir, 'redis-server');
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // keep looking
    }
  }
  throw new Error('redis-server not found on PATH: install it (apt-get install redis-server, brew install redis)');
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address() as net.AddressInfo;
      srv.close(() => resolve(address.port));
    });
  });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

type Falsy = undefined | null | false | 0 | '';

/** Poll until `predicate` gives something truthy; resolves with it. */
export async function waitFor<T>(
  predicate: () => Promise<T | Falsy> | T | Falsy,
  { timeout = 10_000, interval = 25, what = 'condition' } = {},
): Promise<T> {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = await predicate();
    if (value) return value as T;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await sleep(interval);
  }
}

/** One PING on a fresh socket: enough to tell "up" from "not yet". */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let buf = '';
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(500, () => done(false));
    sock.on('error', () => done(false));
    sock.on('connect', () => sock.write('PING\r\n'));
    sock.on('data', (d) => {
      buf += d.toString();
      if (buf.includes('\r\n')) done(buf.startsWith('+PONG'));
    });
  });
}

export interface PrivateRedis {
  port: number;
  /** A client of the test's own, for inspection (never the backend's). */
  client(): Redis;
  stop(): Promise<void>;
}

export async function startRedis(): Promise<PrivateRedis> {
  const bin = findRedisServer();
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'backend-redis-'));
  const proc: ChildProcess = spawn(bin, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], {
    stdio: 'ignore',
  });
  let exited = false;
  proc.on('exit', () => (exited = true));
  await waitFor(
    () => {
      if (exited) throw new Error(`redis-server exited while starting on port ${port}`);
      return ping(port);
    },
    { timeout: 10_000, what: `redis-server on port ${port}` },
  );
  const clients: Redis[] = [];
  return {
    port,
    client() {
      const c = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1 });
      c.on('error', () => undefined);
      clients.push(c);
      return c;
    },
    async stop() {
      for (const c of clients) c.disconnect();
      if (!exited) {
        const gone = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGKILL');
        await gone;
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export type ClientInfo = Record<string, string>;

export function parseClientList(text: string): ClientInfo[] {
  return text
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

export async function clientList(redis: Redis): Promise<ClientInfo[]> {
  return parseClientList(String(await redis.call('CLIENT', 'LIST')));
}

/** The addon's sockets of process `pid` as the server sees them (queue-native:<role>:<pid>). */
export async function nativeClientsOf(redis: Redis, pid: number): Promise<ClientInfo[]> {
  return (await clientList(redis)).filter((c) => c.name?.startsWith('queue-native:') && c.name.endsWith(`:${pid}`));
}

export async function connectedClients(redis: Redis): Promise<number> {
  const info = String(await redis.info('clients'));
  return Number(/connected_clients:(\d+)/.exec(info)?.[1] ?? NaN);
}
