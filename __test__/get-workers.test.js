'use strict';
// Queue.getWorkers(): every Worker that serves the queue, in BullMQ's shape (one entry per
// Worker, rawname as BullMQ's Worker names its socket), found through the name of our command
// socket (one socket serves every Worker of the process, so BullMQ's one name per socket
// cannot be used).
const qn = require('..');
const { waitFor, ourClients } = require('./helpers/redis-server');
const { useRedis } = require('./helpers/suite');
const { bullmq, uniqueQueue, connectionFor } = require('./helpers/bull');

const { redis, inspect, closers } = useRedis();

function track(x) {
  x.on('error', () => {});
  closers.push(() => x.close());
  return x;
}

const ourWorker = (name, opts = {}) => track(new qn.Worker(name, async () => 1, opts));
const ourQueue = (name, opts = {}) => track(new qn.Queue(name, opts));

test('lists each Worker of this process, in the shape of BullMQ\'s entries', async () => {
  const a = uniqueQueue('ga');
  const b = uniqueQueue('gb');
  const idle = uniqueQueue('gi');
  const wa1 = ourWorker(a);
  ourWorker(a, { concurrency: 3, name: 'second:one' });
  // Not running yet: listed, as BullMQ's (its blocking socket is open from the constructor).
  ourWorker(a, { autorun: false });
  const wb = ourWorker(b, { prefix: 'other' });
  await Promise.all([wa1.waitUntilReady(), wb.waitUntilReady()]);
  await waitFor(async () => (await ourQueue(a).getWorkers()).length === 3, { what: 'queue a served' });

  const entries = await ourQueue(a).getWorkers();
  const bullName = `bull:${Buffer.from(a).toString('base64')}`;
  expect(entries.map((e) => e.name)).toEqual([a, a, a]);
  expect(entries.map((e) => e.rawname).sort()).toEqual([bullName, bullName, `${bullName}:w:second:one`].sort());
  const [entry] = entries;
  const [command] = (await ourClients(inspect)).filter((c) => c.name.startsWith('queue-native:command:'));
  expect(entry.id).toBe(String(command.id));
  // The prefix is part of the queue's identity.
  expect(await ourQueue(b).getWorkers()).toEqual([]);
  expect(await ourQueue(b, { prefix: 'other' }).getWorkersCount()).toBe(1);
  expect(await ourQueue(idle).getWorkers()).toEqual([]);

  // BullMQ's entry for its own worker: the same fields.
  const theirs = uniqueQueue('gt');
  const bw = track(new bullmq[6].Worker(theirs, async () => 1, { connection: connectionFor(redis) }));
  await bw.waitUntilReady();
  const bq = track(new bullmq[6].Queue(theirs, { connection: connectionFor(redis) }));
  const [theirEntry] = await waitFor(async () => {
    const list = await bq.getWorkers();
    return list.length ? list : undefined;
  }, { what: "BullMQ's worker listed" });
  expect(Object.keys(entry).sort()).toEqual(Object.keys(theirEntry).sort());
  // BullMQ's own reader does not see ours (one name per queue per socket): documented.
  expect(await track(new bullmq[6].Queue(a, { connection: connectionFor(redis) })).getWorkers()).toEqual([]);
  // During a migration ours lists BullMQ's workers on the queue too, as BullMQ lists them.
  const ours = ourWorker(theirs, { name: 'native' });
  await ours.waitUntilReady();
  const both = await waitFor(async () => {
    const list = await ourQueue(theirs).getWorkers();
    return list.length === 2 ? list : undefined;
  }, { what: 'both workers listed' });
  const theirsName = `bull:${Buffer.from(theirs).toString('base64')}`;
  expect(both.map((e) => e.rawname).sort()).toEqual([theirsName, `${theirsName}:w:native`]);
  expect(both.find((e) => e.rawname === theirsName).id).toBe(theirEntry.id);
});

test('a queue whose last worker closed is no longer listed; the name survives a reconnect', async () => {
  const a = uniqueQueue('gc');
  const b = uniqueQueue('gd');
  const wa = new qn.Worker(a, async () => 1);
  wa.on('error', () => {});
  ourWorker(b);
  const qa = ourQueue(a);
  const qb = ourQueue(b);
  await waitFor(async () => (await qa.getWorkersCount()) === 1 && (await qb.getWorkersCount()) === 1, { what: 'both served' });
  await wa.close();
  await waitFor(async () => (await qa.getWorkersCount()) === 0, { what: 'queue a no longer served' });
  expect(await qb.getWorkersCount()).toBe(1);

  const [command] = (await ourClients(inspect)).filter((c) => c.name.startsWith('queue-native:command:'));
  const before = qn.health().reconnects;
  expect(await inspect.call('CLIENT', 'KILL', 'ID', command.id)).toBe(1);
  await waitFor(() => qn.health().reconnects > before && qn.health().status === 'ready', { what: 'reconnect' });
  const [entry] = await waitFor(async () => {
    const list = await qb.getWorkers();
    return list.length ? list : undefined;
  }, { what: 'queue b listed after the reconnect' });
  expect(entry.id).not.toBe(String(command.id));
});
