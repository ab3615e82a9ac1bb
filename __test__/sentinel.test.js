'use strict';
// Redis Sentinel: the master is found through the sentinels, and a failover (the sentinel
// promotes the replica) moves both sockets of the pair to the new master; every job runs
// exactly once across it.
const qn = require('..');
const { startSentinelSetup } = require('./helpers/redis-sentinel');
const { ourClients, waitFor } = require('./helpers/redis-server');
const { uniqueQueue } = require('./helpers/bull');

let setup;

beforeAll(async () => {
  setup = await startSentinelSetup();
}, 60000);

afterAll(async () => {
  await qn.shutdown();
  await setup?.stop();
});

test('finds the master through the sentinels; a failover moves both sockets and loses no job', async () => {
  const connection = { sentinels: setup.sentinels, name: setup.name };
  const name = uniqueQueue('sentinel');
  const q = new qn.Queue(name, { connection });
  const seen = new Map();
  const w = new qn.Worker(name, async (job) => seen.set(job.id, (seen.get(job.id) || 0) + 1), { connection });
  w.on('error', () => {});
  const events = [];
  const onEvent = (e) => events.push(e);
  qn.onConnection('reconnecting', onEvent);
  for (let i = 0; i < 5; i++) await q.add('j', { i });
  await waitFor(() => seen.size === 5, { timeout: 10000, what: 'five jobs on the first master' });
  const oldMaster = setup.master.client();
  const newMaster = setup.replica.client();
  expect((await ourClients(oldMaster)).map((c) => c.name.split(':')[1]).sort()).toEqual(['blocking', 'command']);
  expect(await ourClients(newMaster)).toEqual([]);
  expect(qn.health().endpoints.map((e) => e.endpoint)).toContain(`redis+sentinel://127.0.0.1:${setup.port}/${setup.name}/0`);

  await setup.failover();
  // Both sockets follow the sentinel to the promoted replica.
  await waitFor(async () => (await ourClients(newMaster)).length === 2 && (await ourClients(oldMaster)).length === 0, {
    timeout: 15000,
    what: 'both sockets on the new master',
  });
  for (let i = 5; i < 10; i++) await q.add('j', { i });
  await waitFor(() => seen.size === 10, { timeout: 15000, what: 'five more jobs after the failover' });
  expect([...seen.values()].every((n) => n === 1)).toBe(true);
  expect(await q.getJobCounts('completed', 'failed', 'active', 'wait')).toEqual({ completed: 10, failed: 0, active: 0, wait: 0 });
  expect(events.length).toBeGreaterThan(0);
  qn.offConnection('reconnecting', onEvent);
  await w.close();
  await q.close();
});

test('a master name no sentinel knows: connect() fails with the reason, no hang', async () => {
  const err = await qn.connect({ sentinels: setup.sentinels, name: 'nope', connectTimeout: 1000 }, 3000).then(
    () => null,
    (e) => e,
  );
  expect(err && err.code).toBe('ERR_REDIS_UNREACHABLE');
  expect(err.message).toContain('does not know a master named `nope`');
});
