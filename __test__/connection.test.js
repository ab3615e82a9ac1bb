'use strict';
const { spawn } = require('child_process');
const path = require('path');
const qn = require('..');
const { ourClients, waitFor } = require('./helpers/redis-server');
const { useRedis } = require('./helpers/suite');

const FIXTURE = path.join(__dirname, 'fixtures', 'connect-and-exit.js');

function runChild(args, env) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(process.execPath, [FIXTURE, ...args], {
      env: { PATH: process.env.PATH, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const killer = setTimeout(() => child.kill('SIGKILL'), 15000);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(killer);
      const line = out.trim().split('\n').filter(Boolean).pop();
      resolve({ code, signal, elapsed: Date.now() - started, result: line ? JSON.parse(line) : undefined, stderr: err });
    });
  });
}

describe('the process-wide connection pair', () => {
  const { redis, inspect, closers } = useRedis({ configure: false });

  afterEach(async () => {
    await qn.shutdown();
    qn.configure(undefined);
  });

  test('connects by URL; health() counts the sockets CLIENT LIST shows', async () => {
    const ready = [];
    const onReady = (info) => ready.push(info);
    qn.onConnection('ready', onReady);
    closers.push(() => qn.offConnection('ready', onReady));
    qn.configure({ url: `redis://127.0.0.1:${redis.port}/0` });
    // 'idle' in a fresh process (checked in a child below); jest may reuse this process
    // after another suite's shutdown(), which leaves 'closed'.
    expect(['idle', 'closed']).toContain(qn.health().status);
    await qn.connect();
    const h = qn.health();
    expect(h.status).toBe('ready');
    expect(h.connections).toEqual({ command: 1, blocking: 1, events: 0 });
    expect(h.redisVersion).toMatch(/^\d+\.\d+/);
    const clients = await ourClients(inspect);
    expect(clients.map((c) => c.name).sort()).toEqual([
      `queue-native:blocking:${process.pid}`,
      `queue-native:command:${process.pid}`,
    ]);
    expect(h.connections.command + h.connections.blocking).toBe(clients.length);
    expect(ready.length).toBeGreaterThanOrEqual(1);
    expect(ready[0].endpoint).toBe(`redis://127.0.0.1:${redis.port}/0`);
  });

  test('host/port and the equivalent URL share one pair', async () => {
    await qn.connect({ host: '127.0.0.1', port: redis.port });
    await qn.connect({ url: `redis://127.0.0.1:${redis.port}` });
    await qn.connect({ host: '127.0.0.1', port: String(redis.port), db: 0, maxRetriesPerRequest: null });
    expect(qn.health().connections).toEqual({ command: 1, blocking: 1, events: 0 });
    expect(await ourClients(inspect)).toHaveLength(2);
    expect(await qn.command(['PING'], { port: redis.port })).toBe('PONG');
  });

  test('a different db is a different endpoint with its own pair', async () => {
    await qn.connect({ port: redis.port, db: 0 });
    await qn.connect({ port: redis.port, db: 3 });
    const h = qn.health();
    expect(h.endpoints).toHaveLength(2);
    expect(h.connections).toEqual({ command: 2, blocking: 2, events: 0 });
    expect(await ourClients(inspect)).toHaveLength(4);
    await qn.command(['SET', 'qn:dbcheck', 'x'], { port: redis.port, db: 3 });
    expect(await inspect.call('EXISTS', 'qn:dbcheck')).toBe(0);
  });

  test.each(['command', 'blocking'])('CLIENT KILL of the %s connection is survived and counted', async (role) => {
    qn.configure({ port: redis.port });
    await qn.connect();
    const before = (await ourClients(inspect)).find((c) => c.name === `queue-native:${role}:${process.pid}`);
    expect(before).toBeDefined();
    expect(await inspect.call('CLIENT', 'KILL', 'ID', before.id)).toBe(1);
    await waitFor(() => qn.health().reconnects >= 1 && qn.health().status === 'ready', { what: 'reconnect' });
    const after = await ourClients(inspect);
    expect(after).toHaveLength(2);
    expect(after.map((c) => c.id)).not.toContain(before.id);
    expect(qn.health().connections).toEqual({ command: 1, blocking: 1, events: 0 });
    expect(await qn.command(['PING'])).toBe('PONG');
  });

  test('shutdown() closes the sockets, is idempotent, and a later use connects again', async () => {
    const ends = [];
    const onEnd = (info) => ends.push(info);
    qn.onConnection('end', onEnd);
    closers.push(() => qn.offConnection('end', onEnd));
    qn.configure({ port: redis.port });
    await qn.connect();
    await qn.shutdown();
    await qn.shutdown();
    expect(qn.health()).toMatchObject({ status: 'closed', connections: { command: 0, blocking: 0 } });
    await waitFor(async () => (await ourClients(inspect)).length === 0, { what: 'sockets to close' });
    expect(ends.length).toBeGreaterThanOrEqual(1);
    await qn.connect();
    expect(qn.health().status).toBe('ready');
  });

  test('connects from the environment: REDIS_URL, else REDIS_HOST/REDIS_PORT', async () => {
    const byUrl = await runChild([], { REDIS_URL: `redis://127.0.0.1:${redis.port}/1`, REDIS_PORT: '1' });
    expect(byUrl.code).toBe(0);
    expect(byUrl.result.health).toMatchObject({ status: 'ready', connections: { command: 1, blocking: 1 } });
    expect(byUrl.result.health.endpoints[0].endpoint).toBe(`redis://127.0.0.1:${redis.port}/1`);

    const byHost = await runChild([], { REDIS_HOST: '127.0.0.1', REDIS_PORT: String(redis.port), REDIS_DB: '2' });
    expect(byHost.code).toBe(0);
    expect(byHost.result.health.endpoints[0].endpoint).toBe(`redis://127.0.0.1:${redis.port}/2`);

    const bad = await runChild([], { REDIS_PORT: 'sixthousand' });
    expect(bad.result.error).toMatchObject({ code: 'ERR_INVALID_OPTION' });
    expect(bad.result.error.message).toContain('REDIS_PORT');
  });

  test('a child process that used the library exits by itself within 5 s of shutdown()', async () => {
    const run = await runChild([JSON.stringify({ port: redis.port })], {});
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.result.health.status).toBe('ready');
    expect(run.result.initial).toBe('idle');
    expect(run.elapsed).toBeLessThan(5000);
    // And the server saw that child's sockets go away.
    await waitFor(async () => (await ourClients(inspect, run.result.pid)).length === 0, { what: 'child sockets to close' });
  });
});
