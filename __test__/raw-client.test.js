'use strict';
// queue.client (BullMQ 5) and getBackend().client (BullMQ 6): an ioredis-shaped client on the
// shared command connection. Each command's reply is compared with what ioredis itself
// answers for the same command on the same server; commands that would block or change the
// shared connection are refused, and no socket is opened for it.
const qn = require('..');
const { ourClients } = require('./helpers/redis-server');
const { useRedis } = require('./helpers/suite');
const { uniqueQueue, bullmq } = require('./helpers/bull');

const { inspect, track } = useRedis();

const key = (k) => `raw-${process.pid}-${k}`;

test('commands answer as ioredis answers them (replies shaped the same: hgetall as an object)', async () => {
  const q = track(new qn.Queue(uniqueQueue('raw')));
  const client = await q.client;
  const steps = [
    ['set', key('s'), 'v'],
    ['get', key('s')],
    ['get', key('missing')],
    ['incrby', key('n'), 5],
    ['hset', key('h'), { a: 1, b: 'x' }],
    ['hgetall', key('h')],
    ['hgetall', key('none')],
    ['rpush', key('l'), ['1', '2', '3']],
    ['lrange', key('l'), 0, -1],
    ['zadd', key('z'), 1, 'a', 2, 'b'],
    ['zrange', key('z'), 0, -1, 'WITHSCORES'],
    ['zscore', key('z'), 'b'],
    ['zincrby', key('z'), 0.5, 'a'],
    ['zadd', key('z2'), 1, 'x', 2, 'y', 3, 'w'],
    ['zpopmin', key('z2'), 2],
    ['zpopmin', key('z2')],
    ['hscan', key('h'), 0],
    ['exists', key('s'), key('missing')],
    ['type', key('h')],
    ['del', key('s'), key('n'), key('h'), key('l'), key('z'), key('z2')],
  ];
  const ours = [];
  for (const [name, ...args] of steps) ours.push(await client[name](...args));
  const theirs = [];
  for (const [name, ...args] of steps) theirs.push(await inspect[name](...args));
  expect(ours).toEqual(theirs);
  // The same object through BullMQ 6's getBackend().
  expect(await (await q.getBackend().client).ping()).toBe('PONG');
});

test('an error reply rejects with the server\'s words, as ioredis\'s', async () => {
  const q = track(new qn.Queue(uniqueQueue('raw')));
  const client = await q.client;
  await client.set(key('str'), '1');
  const ours = await client.hset(key('str'), 'f', '1').catch((e) => e);
  const theirs = await inspect.hset(key('str'), 'f', '1').catch((e) => e);
  expect(ours.code).toBe('ERR_REDIS');
  expect(ours.message).toBe(theirs.message);
  await client.del(key('str'));
});

test('multi() and pipeline() exec as ioredis\'s: [[error, reply], ...]', async () => {
  const w = track(new qn.Worker(uniqueQueue('raw'), async () => 1, { autorun: false }));
  const client = await w.client;
  const build = (c, kind) => c[kind]().set(key('m'), '1').incr(key('m')).hset(key('m'), 'f', '1').get(key('m')).del(key('m'));
  for (const kind of ['multi', 'pipeline']) {
    const ours = await build(client, kind).exec();
    const theirs = await build(inspect, kind).exec();
    const plain = (list) => list.map(([err, value]) => [err && err.message, value]);
    expect(plain(ours)).toEqual(plain(theirs));
  }
});

test('blocking and connection-state commands are refused; no socket is opened for it', async () => {
  const q = track(new qn.Queue(uniqueQueue('raw')));
  await q.waitUntilReady();
  const before = (await ourClients(inspect)).length;
  const client = await q.client;
  for (const call of [
    () => client.blpop(key('x'), 1),
    () => client.xread('BLOCK', 100, 'STREAMS', key('x'), '$'),
    () => client.subscribe('chan'),
    () => client.select(1),
    () => client.multi().exec().then(() => client.call('MULTI')),
    () => client.client('SETNAME', 'other'),
  ]) {
    const err = await call().catch((e) => e);
    expect(err).toBeInstanceOf(qn.QueueNativeError);
    expect(err.code).toBe('ERR_INVALID_OPTION');
  }
  // Reads of the connection's own state pass.
  expect(typeof (await client.client('ID'))).toBe('number');
  await client.quit();
  expect(await client.ping()).toBe('PONG');
  expect((await ourClients(inspect)).length).toBe(before);
});

test('BullMQ 6\'s client interface (options as objects) answers as BullMQ 6\'s own ioredis adapter', async () => {
  const { createIORedisClient } = bullmq[6];
  const theirs = createIORedisClient(inspect.duplicate());
  const q = track(new qn.Queue(uniqueQueue('raw')));
  const ours = await q.getBackend().client;
  const stream = (side) => key(`stream-${side}`);
  const run = async (c, side) => {
    const out = [];
    out.push(await c.set(key(`px-${side}`), 'v', { PX: 60000 }));
    out.push((await c.pttl(key(`px-${side}`))) > 0);
    await c.zadd(key(`z-${side}`), 1, 'a', 2, 'b');
    out.push(await c.zrange(key(`z-${side}`), 0, -1, { WITHSCORES: true }));
    out.push(await c.zrevrange(key(`z-${side}`), 0, -1, { WITHSCORES: true }));
    for (const i of [1, 2, 3]) await c.xadd(stream(side), `${i}-0`, { event: 'e', n: i }, { MAXLEN: 100 });
    const read = await c.xread([{ key: stream(side), id: '0-0' }], { COUNT: 2 });
    out.push(read.map(([, entries]) => entries));
    out.push(await c.xtrim(stream(side), 'MAXLEN', 1, { approximate: false }));
    out.push((await c.scan('0', { MATCH: key(`z-${side}`), COUNT: 1000 }))[1]);
    out.push(typeof (await c.clientList()));
    await c.del(key(`px-${side}`), key(`z-${side}`), stream(side));
    return JSON.stringify(out).replaceAll(side, '<side>');
  };
  try {
    expect(await run(ours, 'ours')).toEqual(await run(theirs, 'theirs'));
  } finally {
    await theirs.quit();
  }
});
