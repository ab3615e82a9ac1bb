'use strict';
// Redis Cluster, 3 primaries + 3 replicas started here: queues on one shared hash tag and on
// per-queue tags, every job exactly once, the promised socket counts on every node (CLIENT
// LIST), BullMQ producers and a BullMQ Worker on the same queues, and a slot migration and a
// failover under load that lose nothing.
const qn = require('../..');
const { startCluster, waitFor, sleep } = require('../helpers/redis-cluster');
const { bullmq, uniqueQueue } = require('../helpers/bull');

let cluster;
const closers = [];

beforeAll(async () => {
  cluster = await startCluster({ primaries: 3, replicas: 1 });
  qn.configure({ cluster: cluster.seeds });
}, 120000);

afterEach(async () => {
  while (closers.length) await closers.pop()();
});

afterAll(async () => {
  await qn.shutdown();
  await cluster?.stop();
});

function worker(name, processor, opts = {}) {
  const w = new qn.Worker(name, processor, { concurrency: 10, ...opts });
  w.on('error', () => {});
  closers.push(() => w.close());
  return w;
}

function queue(name, opts = {}) {
  const q = new qn.Queue(name, opts);
  closers.push(() => q.close());
  return q;
}

/** Records each processing of `<queue>/<id>`; `once()` proves every id ran exactly once. */
function ledger() {
  const seen = new Map();
  return {
    note(queueName, id) {
      const k = `${queueName}/${id}`;
      seen.set(k, (seen.get(k) || 0) + 1);
    },
    get size() {
      return seen.size;
    },
    twice() {
      return [...seen].filter(([, n]) => n > 1);
    },
  };
}

async function counts(q) {
  return q.getJobCounts('wait', 'active', 'delayed', 'prioritized', 'completed', 'failed');
}

async function drained(queues, perQueue, timeout = 60000) {
  await waitFor(
    async () => {
      for (const q of queues) {
        const c = await counts(q);
        if (c.completed !== perQueue || c.active || c.wait || c.failed) return false;
      }
      return true;
    },
    { timeout, interval: 100, what: `${queues.length} queues x ${perQueue} jobs completed` },
  );
}

function totals(sockets) {
  return Object.values(sockets).reduce(
    (a, s) => ({ command: a.command + s.command, blocking: a.blocking + s.blocking }),
    { command: 0, blocking: 0 },
  );
}

test('a queue whose keys would span slots is refused at construction with ERR_CROSSSLOT', () => {
  let err;
  try {
    new qn.Queue('no-tag');
  } catch (e) {
    err = e;
  }
  expect(err && err.code).toBe('ERR_CROSSSLOT');
  expect(err.message).toContain("prefix '{bull}'");
  expect(() => new qn.Worker('no-tag', async () => {})).toThrow(expect.objectContaining({ code: 'ERR_CROSSSLOT' }));
  // A tag in the name, or in the prefix, is accepted.
  queue('{tagged}-q').close();
  queue('q', { prefix: '{bull}' }).close();
});

test('5 queues on one shared tag x concurrency 10: every job once, 1 command + 1 blocking socket', async () => {
  const names = Array.from({ length: 5 }, (_, i) => uniqueQueue(`shared${i}`));
  const queues = names.map((n) => queue(n, { prefix: '{bull}' }));
  const seen = ledger();
  const perQueue = 60;
  for (const q of queues) {
    await q.addBulk(Array.from({ length: perQueue }, (_, i) => ({ name: 'j', data: { i } })));
  }
  for (const n of names) {
    worker(n, async (job) => {
      seen.note(n, job.id);
      return job.data.i;
    }, { prefix: '{bull}' });
  }
  await drained(queues, perQueue);
  expect(seen.size).toBe(5 * perQueue);
  expect(seen.twice()).toEqual([]);

  // Idle now: every worker waits through the one dispatcher of the {bull} slot.
  const owner = await cluster.ownerOf(await cluster.slotOf('{bull}'));
  await waitFor(async () => {
    const s = await cluster.ourSockets();
    const t = totals(s);
    return t.command === 1 && t.blocking === 1 && s[owner].command === 1 && s[owner].blocking === 1;
  }, { timeout: 10000, what: '1 command + 1 blocking socket, both on the owner of {bull}' });
  const h = qn.health();
  const node = h.endpoints.find((e) => e.endpoint.endsWith(`:${owner}/0`));
  expect(node).toBeDefined();
  expect(node.connections).toEqual({ command: 1, blocking: 1 });
});

test('per-queue tags: one blocking socket per slot in use, one command socket per primary in use', async () => {
  const masters = await cluster.masters();
  // Five tags whose slots cover all three primaries.
  const tags = [];
  const byOwner = new Map();
  for (let i = 0; tags.length < 5 && i < 500; i++) {
    const tag = `t${process.pid}x${i}`;
    const owner = await cluster.ownerOf(await cluster.slotOf(`{${tag}}`));
    const have = byOwner.get(owner) || 0;
    if (have < 2) {
      byOwner.set(owner, have + 1);
      tags.push(tag);
    }
  }
  expect(byOwner.size).toBe(masters.length);
  const names = tags.map((t) => `{${t}}`);
  const queues = names.map((n) => queue(n));
  const seen = ledger();
  const perQueue = 40;
  for (const q of queues) await q.addBulk(Array.from({ length: perQueue }, (_, i) => ({ name: 'j', data: { i } })));
  for (const n of names) worker(n, async (job) => seen.note(n, job.id));
  await drained(queues, perQueue);
  expect(seen.size).toBe(5 * perQueue);
  expect(seen.twice()).toEqual([]);

  // The previous test's {bull} sockets stay (its dispatcher lives as long as the process):
  // count this test's slots on top of it.
  const bullOwner = await cluster.ownerOf(await cluster.slotOf('{bull}'));
  const expected = {};
  for (const p of cluster.ports) expected[p] = { command: 0, blocking: 0 };
  expected[bullOwner] = { command: 1, blocking: 1 };
  for (const [owner, n] of byOwner) {
    expected[owner].command = 1;
    expected[owner].blocking += n;
  }
  await waitFor(async () => JSON.stringify(await cluster.ourSockets()) === JSON.stringify(expected), {
    timeout: 10000,
    what: `sockets per node ${JSON.stringify(expected)}`,
  }).catch(async (e) => {
    throw new Error(`${e.message}; saw ${JSON.stringify(await cluster.ourSockets())}`);
  });
});

test('BullMQ producers and a BullMQ Worker (ioredis Cluster, prefix {bull}) share the queues with ours', async () => {
  const name = uniqueQueue('mixed');
  const conn = cluster.ioredisCluster();
  closers.push(() => conn.quit().catch(() => {}));
  const producer = new bullmq[6].Queue(name, { connection: conn, prefix: '{bull}' });
  closers.push(() => producer.close());
  const seen = ledger();
  const byWhom = { ours: 0, bullmq: 0 };
  // BullMQ never closes a connection it was handed: without this quit, the client would
  // reconnect (on ref'd timers) after the cluster stops, and the test process would not end.
  const workerConn = cluster.ioredisCluster();
  closers.push(() => workerConn.quit().catch(() => {}));
  const theirs = new bullmq[6].Worker(
    name,
    async (job) => {
      seen.note(name, job.id);
      byWhom.bullmq += 1;
      await sleep(2);
      return 'bullmq';
    },
    { connection: workerConn, prefix: '{bull}', concurrency: 5 },
  );
  theirs.on('error', () => {});
  closers.push(() => theirs.close());
  // Our worker is handed the same kind of ioredis Cluster BullMQ code passes: its seed nodes
  // are read, its sockets are not used.
  worker(name, async (job) => {
    seen.note(name, job.id);
    byWhom.ours += 1;
    await sleep(2);
    return 'ours';
  }, { prefix: '{bull}', connection: conn });
  const ours = queue(name, { prefix: '{bull}' });
  const total = 200;
  for (let i = 0; i < total / 2; i++) {
    await producer.add('from-bullmq', { i });
    await ours.add('from-ours', { i });
  }
  await waitFor(async () => (await producer.getJobCounts('completed')).completed === total, {
    timeout: 60000,
    what: `${total} jobs completed`,
  });
  expect(seen.size).toBe(total);
  expect(seen.twice()).toEqual([]);
  expect(byWhom.ours).toBeGreaterThan(0);
  expect(byWhom.bullmq).toBeGreaterThan(0);
  const c = await producer.getJobCounts('wait', 'active', 'failed');
  expect(c).toEqual({ wait: 0, active: 0, failed: 0 });
});

/** Busy queue on its own tag; `disturb` runs once some jobs are done, while others are in flight. */
async function underLoad(tag, disturb) {
  const name = `{${tag}}-busy`;
  const q = queue(name);
  const seen = ledger();
  const first = 300;
  await q.addBulk(Array.from({ length: first }, (_, i) => ({ name: 'j', data: { i } })));
  worker(name, async (job) => {
    seen.note(name, job.id);
    await sleep(20);
  });
  await waitFor(async () => (await counts(q)).completed >= 50, { timeout: 20000, what: '50 jobs done' });
  const slot = await cluster.slotOf(`{${tag}}`);
  const before = await cluster.ownerOf(slot);
  // Producers keep adding while the cluster changes.
  let added = 0;
  let adding = true;
  const producing = (async () => {
    while (adding) {
      await q.add('late', { i: added });
      added += 1;
      await sleep(5);
    }
  })();
  const after = await disturb(slot, before);
  // The change really happened mid-run: jobs were left to process after it.
  const left = await counts(q);
  expect(left.wait + left.active).toBeGreaterThan(0);
  await sleep(300);
  adding = false;
  await producing;
  await drained([q], first + added, 60000);
  expect(seen.size).toBe(first + added);
  expect(seen.twice()).toEqual([]);
  // The blocking socket of this slot follows it to the new owner.
  await waitFor(async () => {
    const s = await cluster.ourSockets();
    return s[after].blocking >= 1 && s[after].command === 1;
  }, { timeout: 15000, what: `our sockets on the new owner ${after}` });
  return { slot, before, after };
}

test('a migration of the busy queue\'s slot during processing loses nothing', async () => {
  await underLoad(`rs${process.pid}`, async (slot, before) => {
    const target = (await cluster.masters()).find((m) => m.port !== before).port;
    await cluster.migrateSlot(slot, target);
    expect(await cluster.ownerOf(slot)).toBe(target);
    return target;
  });
});

test('a failover (CLUSTER FAILOVER on a replica) of the busy primary loses nothing', async () => {
  const { before } = await underLoad(`fo${process.pid}`, async (slot, owner) => cluster.failover(owner));
  // The demoted primary owns no slots: we keep no command socket there.
  await waitFor(async () => (await cluster.ourSockets())[before].command === 0, {
    timeout: 15000,
    what: `no command socket on the demoted primary ${before}`,
  });
});

test('an idle worker blocked on a slot that moves (migration, then failover) wakes for the next job at once', async () => {
  const tag = `idle${process.pid}`;
  const name = `{${tag}}-idle`;
  const q = queue(name);
  const done = [];
  worker(name, async (job) => done.push(job.id), { drainDelay: 30 });
  const slot = await cluster.slotOf(`{${tag}}`);
  const pickup = async (what) => {
    const job = await q.add('j', {});
    const t0 = Date.now();
    // Well below the worker's 30 s drain delay and the dispatcher's 10 s cap: only a
    // dispatcher that re-routed its BZPOPMIN to the new owner sees this marker in time.
    await waitFor(async () => done.includes(job.id), { timeout: 3000, what: `pickup after ${what}` });
    return Date.now() - t0;
  };
  await pickup('start');
  const waitBlocked = (port) =>
    waitFor(async () => (await cluster.ourSockets())[port].blocking >= 1, { timeout: 10000, what: `blocking socket on ${port}` });
  const owner = await cluster.ownerOf(slot);
  await waitBlocked(owner);
  await sleep(200);
  const target = (await cluster.masters()).find((m) => m.port !== owner).port;
  await cluster.migrateSlot(slot, target);
  await pickup('migration');
  await waitBlocked(target);
  await sleep(200);
  const promoted = await cluster.failover(target);
  await pickup('failover');
  await waitBlocked(promoted);
  expect(done.length).toBe(3);
});
