// A private redis-server per test file: the repository's one harness (scripts/redis-harness.js:
// free port, never 6379, temp dir, no persistence), with inspection clients on this package's
// own ioredis.
import Redis from 'ioredis';
import * as harness from '../../../../scripts/redis-harness';

export { freePort, sleep, parseClientList, type ClientInfo } from '../../../../scripts/redis-harness';

type Falsy = undefined | null | false | 0 | '';

/** Poll until `predicate` gives something truthy; resolves with it (10 s by default). */
export function waitFor<T>(
  predicate: () => Promise<T | Falsy> | T | Falsy,
  { timeout = 10_000, interval = 25, what = 'condition' } = {},
): Promise<T> {
  return harness.waitFor(predicate, { timeout, interval, what });
}

export interface PrivateRedis {
  port: number;
  /** A client of the test's own, for inspection (never the backend's). */
  client(): Redis;
  stop(): Promise<void>;
}

export async function startRedis(): Promise<PrivateRedis> {
  const server = await harness.startRedis();
  const clients: Redis[] = [];
  return {
    port: server.port,
    client() {
      const c = new Redis({ port: server.port, host: server.host, maxRetriesPerRequest: 1 });
      c.on('error', () => undefined);
      clients.push(c);
      return c;
    },
    async stop() {
      for (const c of clients) c.disconnect();
      await server.stop();
    },
  };
}

/**
 * A stand-in for a value made in beforeAll: every property read goes to the real one (methods
 * bound to it), so a test file can destructure it at the top.
 */
export function lateBound<T extends object>(get: () => T | undefined, what: string): T {
  return new Proxy({} as T, {
    get(_, key) {
      const target = get();
      if (!target) throw new Error(`${what} is used before beforeAll made it`);
      const value = Reflect.get(target, key);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/** A private server and an inspection client on it (redis.stop() closes both). */
export async function openRedis(): Promise<{ redis: PrivateRedis; inspect: Redis }> {
  const redis = await startRedis();
  const inspect = redis.client();
  await inspect.ping();
  return { redis, inspect };
}

/** The hooks of a test file that needs only Redis: a private server from beforeAll to afterAll. */
export function useRedis(): { redis: PrivateRedis; inspect: Redis } {
  let opened: { redis: PrivateRedis; inspect: Redis } | undefined;
  beforeAll(async () => {
    opened = await openRedis();
  });
  afterAll(async () => {
    await opened?.redis.stop();
  });
  return { redis: lateBound(() => opened?.redis, 'redis'), inspect: lateBound(() => opened?.inspect, 'inspect') };
}

export async function clientList(redis: Redis): Promise<harness.ClientInfo[]> {
  return harness.parseClientList(String(await redis.call('CLIENT', 'LIST')));
}

/** The addon's sockets of process `pid` as the server sees them (queue-native:<role>:<pid>). */
export async function nativeClientsOf(redis: Redis, pid: number): Promise<harness.ClientInfo[]> {
  return (await clientList(redis)).filter((c) => harness.isNativeClientOf(c, pid));
}

export async function connectedClients(redis: Redis): Promise<number> {
  const info = String(await redis.info('clients'));
  return Number(/connected_clients:(\d+)/.exec(info)?.[1] ?? NaN);
}
