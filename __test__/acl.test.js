'use strict';
// ACL users: the least-privilege lines the README gives for workers and for producers are
// enough to run jobs (and nothing broader is needed), and a user lacking a command the
// library needs gets ERR_NOPERM naming that command, never a silent stall.
const qn = require('..');
const { startRedis, waitFor } = require('./helpers/redis-server');
const { uniqueQueue } = require('./helpers/bull');

// Kept equal to the README's "ACL users" section (the test reads it from there).
const fs = require('fs');
const path = require('path');
const readme = fs.readFileSync(path.join(__dirname, '..', 'README.md'), 'utf8');
function readmeLine(user) {
  const line = readme.split('\n').find((l) => l.startsWith(`ACL SETUSER ${user} `));
  if (!line) throw new Error(`README has no ACL SETUSER line for ${user}`);
  return line;
}

let redis;
let admin;
const closers = [];

async function setUser(line, password) {
  const args = line.replace(/^ACL SETUSER /, '').replace('<password>', password).split(/\s+/);
  await admin.call('ACL', 'SETUSER', ...args);
}

beforeAll(async () => {
  redis = await startRedis();
  admin = redis.client();
  await setUser(readmeLine('qn-worker'), 'w-secret');
  await setUser(readmeLine('qn-producer'), 'p-secret');
});

afterEach(async () => {
  while (closers.length) await closers.pop()();
});

afterAll(async () => {
  await qn.shutdown();
  await redis.stop();
});

const as = (username, password) => ({ host: '127.0.0.1', port: redis.port, username, password });

test("the README's worker and producer users are enough: jobs added and processed", async () => {
  const name = uniqueQueue('acl');
  const q = new qn.Queue(name, { connection: as('qn-producer', 'p-secret') });
  closers.push(() => q.close());
  const done = [];
  const w = new qn.Worker(name, async (job) => {
    await job.updateProgress(50);
    await job.log('half way');
    done.push(job.data.n);
    return job.data.n * 2;
  }, { connection: as('qn-worker', 'w-secret'), concurrency: 4 });
  const errors = [];
  w.on('error', (e) => errors.push(e));
  closers.push(() => w.close());
  await q.addBulk([1, 2, 3, 4, 5].map((n) => ({ name: 'j', data: { n } })));
  await q.add('later', { n: 6 }, { delay: 200 });
  await waitFor(() => done.length === 6, { timeout: 15000, what: 'six jobs' });
  const counts = await q.getJobCounts('completed', 'failed');
  expect(counts).toEqual({ completed: 6, failed: 0 });
  expect((await q.getJob('1')).returnvalue).toBe(2);
  expect(errors).toEqual([]);
  // Neither user could do more than its line says.
  const log = await admin.call('ACL', 'LOG');
  expect(log).toEqual([]);
});

test('a producer lacking EVALSHA: add() fails with ERR_NOPERM naming evalsha', async () => {
  await setUser(`${readmeLine('qn-producer').replace('qn-producer', 'qn-no-evalsha')} -evalsha`, 'x');
  const q = new qn.Queue(uniqueQueue('acl'), { connection: as('qn-no-evalsha', 'x') });
  closers.push(() => q.close());
  const err = await q.add('j', {}).then(() => null, (e) => e);
  expect(err && err.code).toBe('ERR_NOPERM');
  expect(err.message).toMatch(/evalsha/i);
});

test('a producer lacking a command its script runs (XADD): ERR_NOPERM naming xadd', async () => {
  await setUser(`${readmeLine('qn-producer').replace('qn-producer', 'qn-no-xadd')} -xadd`, 'x');
  const q = new qn.Queue(uniqueQueue('acl'), { connection: as('qn-no-xadd', 'x') });
  closers.push(() => q.close());
  const err = await q.add('j', {}).then(() => null, (e) => e);
  expect(err && err.code).toBe('ERR_NOPERM');
  expect(err.message).toMatch(/xadd/i);
});

test('a worker lacking BZPOPMIN: a connection error ERR_NOPERM naming bzpopmin', async () => {
  await setUser(`${readmeLine('qn-worker').replace('qn-worker', 'qn-no-bzpopmin')} -bzpopmin`, 'x');
  const seen = [];
  const listener = (e) => seen.push(e);
  qn.onConnection('error', listener);
  closers.push(() => qn.offConnection('error', listener));
  const w = new qn.Worker(uniqueQueue('acl'), async () => {}, { connection: as('qn-no-bzpopmin', 'x') });
  w.on('error', () => {});
  closers.push(() => w.close());
  await waitFor(() => seen.some((e) => e.code === 'ERR_NOPERM' && /bzpopmin/i.test(e.message)), {
    timeout: 10000,
    what: 'ERR_NOPERM naming bzpopmin',
  });
});

test('a user lacking CLIENT SETNAME cannot open a socket: ERR_NOPERM names it', async () => {
  await setUser(`${readmeLine('qn-worker').replace('qn-worker', 'qn-no-setname')} -client|setname`, 'x');
  const err = await qn.connect(as('qn-no-setname', 'x'), 3000).then(() => null, (e) => e);
  expect(err && err.code).toBe('ERR_NOPERM');
  expect(err.message).toMatch(/client\|setname/i);
});
