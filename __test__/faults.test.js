'use strict';
// Connection faults: wrong password, unreachable endpoint, server at maxclients.
const net = require('net');
const qn = require('..');
const { startRedis, freePort, ourClients, waitFor, sleep } = require('./helpers/redis-server');

const EVENTS = ['ready', 'reconnecting', 'error', 'end', 'warning'];
const events = [];
const record = Object.fromEntries(EVENTS.map((name) => [name, (info) => events.push({ name, info })]));

// The listeners live as long as this file's tests (each test filters by its own endpoint);
// removed at the end, they leave no handle behind.
const forEndpoint = (list, port) => list.filter((e) => e.info.endpoint && e.info.endpoint.includes(`:${port}/`));
beforeAll(() => {
  for (const name of EVENTS) qn.onConnection(name, record[name]);
});
afterAll(() => {
  for (const name of EVENTS) qn.offConnection(name, record[name]);
});

afterEach(async () => {
  await qn.shutdown();
  qn.configure(undefined);
});

test('wrong password: ERR_AUTH once per socket, retried with capped backoff, heals when the server takes it; no secret anywhere', async () => {
  const redis = await startRedis({ password: 'sekrit' });
  try {
    const secret = 'wrong-pass-123';
    qn.configure({ port: redis.port, password: secret, retry: { initialDelay: 50, maxDelay: 200 } });
    const err = await qn.connect(undefined, 1000).then(
      () => null,
      (e) => e,
    );
    expect(err).toBeInstanceOf(qn.QueueNativeError);
    expect(err.code).toBe('ERR_AUTH');
    expect(err.message).not.toContain(secret);
    const w = new qn.Worker('auth-q', async () => 'x');
    w.on('error', () => {});
    const mine = () => forEndpoint(events, redis.port);
    const dials = async () => Number(/total_connections_received:(\d+)/.exec(await redis.client().info('stats'))[1]);
    const before = await dials();
    await sleep(1000);
    // Still dialling (capped at 200 ms), still `reconnecting`, and the worker agrees.
    expect((await dials()) - before).toBeGreaterThanOrEqual(6);
    expect(qn.health().status).toBe('reconnecting');
    expect(qn.health().lastError.code).toBe('ERR_AUTH');
    expect(w.isRunning()).toBe(true);
    expect(qn.health().workers.find((x) => x.queue === 'auth-q').running).toBe(true);
    // One `error` per socket when the refusals started, none per retry; no `end`.
    const authErrors = mine().filter((e) => e.name === 'error' && e.info.code === 'ERR_AUTH').length;
    expect(authErrors).toBeGreaterThanOrEqual(1);
    expect(authErrors).toBeLessThanOrEqual(2);
    expect(mine().some((e) => e.name === 'end')).toBe(false);
    const everything = JSON.stringify(mine().map((e) => ({ ...e.info, message: e.info.message }))) + JSON.stringify(qn.health());
    expect(everything).not.toContain(secret);
    // The server accepts that password now: up again by itself, and the worker with it.
    await redis.client().call('CONFIG', 'SET', 'requirepass', secret);
    await waitFor(() => qn.health().status === 'ready', { timeout: 3000, what: 'the pair to heal' });
    await w.waitUntilReady(1000);
    await w.close();
  } finally {
    await redis.stop();
  }
});

test('unreachable endpoint: reconnecting with growing delays, then recovers by itself', async () => {
  const port = await freePort();
  const secret = 'url-secret-456';
  qn.configure({ url: `redis://someone:${secret}@127.0.0.1:${port}` });
  const pending = qn.connect(undefined, 20000);
  const reconnects = () =>
    forEndpoint(events, port).filter((e) => e.name === 'reconnecting' && e.info.connection === 'command');
  await waitFor(() => reconnects().length >= 5, { timeout: 10000, what: '5 reconnect attempts' });
  expect(['connecting', 'reconnecting']).toContain(qn.health().status);
  expect(qn.health().connections).toEqual({ command: 0, blocking: 0, events: 0 });
  expect(qn.health().lastError.code).toBe('ERR_REDIS_UNREACHABLE');
  const delays = reconnects().map((e) => e.info.delay);
  expect(Math.max(...delays.slice(-2))).toBeGreaterThan(Math.min(...delays.slice(0, 2)));
  expect(delays.every((d) => d <= 2000)).toBe(true);
  expect(reconnects().map((e) => e.info.attempt).slice(0, 3)).toEqual([1, 2, 3]);

  const redis = await startRedis({ port, args: ['--user', 'someone', 'on', `>${secret}`, '~*', '&*', '+@all'] });
  try {
    await pending; // resolves by itself: nobody called connect() again
    expect(qn.health().status).toBe('ready');
    expect(forEndpoint(events, port).some((e) => e.name === 'ready')).toBe(true);
    expect(JSON.stringify(forEndpoint(events, port).map((e) => ({ ...e.info, message: e.info.message })))).not.toContain(secret);
  } finally {
    await redis.stop();
  }
});

function hog(port) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    sock.once('connect', () => sock.write('PING\r\n'));
    sock.once('data', (d) => resolve({ sock, reply: d.toString() }));
    sock.on('error', () => {});
  });
}

test('server at maxclients: ERR_MAX_CLIENTS with the server words, up within 3 s of slots freeing', async () => {
  const redis = await startRedis({ args: ['--maxclients', '4'] });
  const hogs = [];
  try {
    for (;;) {
      const h = await hog(redis.port);
      if (h.reply.startsWith('+PONG')) {
        hogs.push(h.sock);
        continue;
      }
      expect(h.reply).toContain('max number of clients reached');
      h.sock.destroy();
      break;
    }
    qn.configure({ port: redis.port });
    const err = await qn.connect(undefined, 1500).then(
      () => null,
      (e) => e,
    );
    expect(err).toMatchObject({ code: 'ERR_MAX_CLIENTS' });
    expect(err.message).toContain('max number of clients reached');
    const seen = forEndpoint(events, redis.port).find((e) => e.name === 'error' && e.info.code === 'ERR_MAX_CLIENTS');
    expect(seen.info).toBeInstanceOf(qn.QueueNativeError);
    expect(seen.info.message).toContain('max number of clients reached');
    expect(qn.health().status).toBe('reconnecting');

    // Free the two slots the pair needs.
    hogs.pop().destroy();
    hogs.pop().destroy();
    const freed = Date.now();
    await qn.connect(undefined, 3000);
    expect(Date.now() - freed).toBeLessThan(3000);
    expect(qn.health().connections).toEqual({ command: 1, blocking: 1, events: 0 });
  } finally {
    for (const s of hogs) s.destroy();
    await redis.stop();
  }
});

test('eviction policy other than noeviction raises a warning event', async () => {
  const redis = await startRedis({ args: ['--maxmemory-policy', 'allkeys-lru'] });
  try {
    await qn.connect({ port: redis.port });
    const warning = forEndpoint(events, redis.port).find((e) => e.name === 'warning');
    expect(warning.info.code).toBe('WARN_EVICTION_POLICY');
    expect(warning.info.message).toContain('allkeys-lru');
    expect(await ourClients(redis.client())).toHaveLength(2);
  } finally {
    await redis.stop();
  }
});
