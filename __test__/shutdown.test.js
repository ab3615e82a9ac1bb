'use strict';
// shutdown(): every worker closes gracefully (in-flight jobs finish, 'closed' fires), then the
// connections, and nothing is left holding the process (issue 11, defects 1 and 2).
const async_hooks = require('async_hooks');
const { spawn } = require('child_process');
const path = require('path');
const qn = require('..');
const { startRedis, ourClients, waitFor } = require('./helpers/redis-server');
const { bullmq, uniqueQueue, connectionFor } = require('./helpers/bull');

let redis;
let inspect;

beforeAll(async () => {
  redis = await startRedis();
  inspect = redis.client();
});

afterAll(async () => {
  await qn.shutdown();
  await redis.stop();
});

test("SIGTERM -> shutdown(): the in-flight job completes, every worker emits 'closed', the process exits by itself", async () => {
  const a = uniqueQueue('termA');
  const b = uniqueQueue('termB');
  const q = new bullmq[6].Queue(a, { connection: connectionFor(redis) });
  try {
    await q.add('slow', {}, { jobId: 'slow' });
    const child = spawn(
      process.execPath,
      [path.join(__dirname, 'fixtures', 'sigterm-shutdown.js'), String(redis.port), a, b, '700'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const exited = new Promise((resolve) => {
      const killer = setTimeout(() => child.kill('SIGKILL'), 15000);
      child.once('exit', (code, signal) => {
        clearTimeout(killer);
        resolve({ code, signal, at: Date.now() });
      });
    });
    await waitFor(() => out.includes(`active ${a} slow`), { timeout: 10000, what: 'the job to start' });
    child.kill('SIGTERM');
    const { code, signal, at } = await exited;
    const lines = out.trim().split('\n');
    expect(err).toBe('');
    expect(signal).toBeNull();
    expect(code).toBe(0);
    // Graceful: the job finished before the workers closed, and its result is in Redis.
    expect(lines.indexOf(`done ${a} slow`)).toBeGreaterThan(lines.indexOf('sigterm'));
    expect(lines.indexOf(`closed ${a}`)).toBeGreaterThan(lines.indexOf(`done ${a} slow`));
    expect(lines).toEqual(expect.arrayContaining([`closed ${a}`, `closed ${b}`, 'closed idle', 'shutdown resolved']));
    expect(lines.indexOf('shutdown resolved')).toBeGreaterThan(lines.indexOf(`closed ${a}`));
    expect(await q.getJobState('slow')).toBe('completed');
    expect((await q.getJob('slow')).returnvalue).toBe('ok');
    // Exited by itself, promptly (the killer above would have made signal SIGKILL).
    expect(at).toBeGreaterThan(0);
    await waitFor(async () => (await ourClients(inspect, child.pid)).length === 0, { what: 'the child sockets to close' });
  } finally {
    await q.close();
  }
});

test('when shutdown() resolves, Redis lists neither socket (the blocking one was waiting in BZPOPMIN)', async () => {
  qn.configure({ port: redis.port });
  const w = new qn.Worker(uniqueQueue('idle'), async () => 'never', { drainDelay: 5 });
  w.on('error', () => {});
  await w.waitUntilReady();
  await waitFor(async () => (await ourClients(inspect)).some((c) => c.name.includes(':blocking:') && c.cmd === 'bzpopmin'), {
    what: 'the dispatcher to block',
  });
  const started = Date.now();
  await qn.shutdown();
  const took = Date.now() - started;
  // The very next command this server runs sees both sockets gone.
  expect(await ourClients(inspect)).toEqual([]);
  expect(qn.health()).toMatchObject({ status: 'closed', connections: { command: 0, blocking: 0 } });
  // And without waiting for the BZPOPMIN's own timeout.
  expect(took).toBeLessThan(2000);
  qn.configure(undefined);
});

test('closed workers and queues, and removed connection listeners, leave no callback handle of ours open', async () => {
  // Weak handles do not hold the event loop, but async_hooks (and so jest --detectOpenHandles)
  // count them until they are released: a test runner must not need --forceExit for us.
  const live = new Set();
  const hook = async_hooks
    .createHook({
      init(id, type) {
        if (type === 'napi_rs_threadsafe_function') live.add(id);
      },
      destroy(id) {
        live.delete(id);
      },
    })
    .enable();
  try {
    qn.configure({ port: redis.port });
    const name = uniqueQueue('handles');
    const q = new qn.Queue(name);
    const onReady = () => {};
    qn.onConnection('ready', onReady);
    let done = 0;
    const w = new qn.Worker(name, async () => 'ok', { concurrency: 2 });
    w.on('completed', () => (done += 1));
    await q.add('a', {});
    await q.upsertJobScheduler('cron', { pattern: '* * * * * *' }, { name: 'tick' });
    await waitFor(() => done >= 2, { what: 'a job and a cron iteration' });
    // The worker's delivery and cron callbacks and the connection dispatcher.
    expect(live.size).toBeGreaterThanOrEqual(3);
    await q.removeJobScheduler('cron');
    await w.close();
    await q.close();
    expect(live.size).toBeGreaterThan(0);
    qn.offConnection('ready', onReady);
    await waitFor(() => live.size === 0, { what: 'every callback handle released' });
  } finally {
    hook.disable();
    await qn.shutdown();
    qn.configure(undefined);
  }
});
