'use strict';
// FlowProducer against BullMQ's: the same flows (nested, across queues, addBulk, under an
// existing parent, with queuesOptions) added by both under two prefixes must store exactly the
// same keys, and add / addBulk / getFlow must return the same trees.
const qn = require('..');
const { ourClients } = require('./helpers/redis-server');
const { useRedis } = require('./helpers/suite');
const { bullmq, uniqueQueue, connectionFor } = require('./helpers/bull');
const { sideBySide, step, uniquePrefix } = require('./helpers/side-by-side');

const { redis, inspect, closers } = useRedis();

const { comparable } = sideBySide({ redis, inspect, closers });

function producers(prefix) {
  const bull = new bullmq[6].FlowProducer({ connection: connectionFor(redis), prefix: prefix.bull });
  const ours = new qn.FlowProducer({ prefix: prefix.ours });
  closers.push(() => bull.close(), () => ours.close());
  return { bull, ours };
}

/** A job tree as plain data (children sorted by id: getFlow reads them from sets). */
function plain(tree, sort = false) {
  if (!tree) return tree;
  const { job } = tree;
  const out = {
    id: job.id,
    name: job.name,
    data: job.data,
    opts: job.opts,
    queueName: job.queueName,
    parentKey: job.parentKey,
    priority: job.priority,
    delay: job.delay,
  };
  if (tree.children) {
    out.children = tree.children.map((c) => plain(c, sort));
    if (sort) out.children.sort((a, b) => (a.id < b.id ? -1 : 1));
  }
  return out;
}

function normalise(value, prefix) {
  return JSON.parse(JSON.stringify(value === undefined ? null : value).split(`${prefix}:`).join('<prefix>:'));
}

async function sideBySideFlows(act) {
  const prefix = { bull: uniquePrefix('fb'), ours: uniquePrefix('fo') };
  const fp = producers(prefix);
  const names = { a: uniqueQueue('fa'), b: uniqueQueue('fb') };
  const out = {};
  for (const side of ['bull', 'ours']) {
    out[side] = normalise(await act(fp[side], names, prefix[side], side), prefix[side]);
  }
  expect(out.ours).toEqual(out.bull);
  expect(await comparable(prefix.ours)).toEqual(await comparable(prefix.bull));
  return out.bull;
}

test('a nested flow across two queues: same keys, same tree, same getFlow', async () => {
  const result = await sideBySideFlows(async (fp, { a, b }) => {
    const tree = await fp.add({
      name: 'root',
      queueName: a,
      data: { level: 0 },
      opts: { jobId: 'root', priority: 3, attempts: 2 },
      children: [
        { name: 'c1', queueName: a, data: { level: 1 }, opts: { jobId: 'c1', delay: 5000 } },
        {
          name: 'c2',
          queueName: b,
          data: { level: 1 },
          opts: { jobId: 'c2', failParentOnFailure: true },
          children: [
            { name: 'g1', queueName: a, data: { level: 2 }, opts: { jobId: 'g1', removeOnComplete: true } },
            { name: 'g2', queueName: b, data: [1, 2], opts: { jobId: 'g2', lifo: true } },
          ],
        },
        { name: 'c3', queueName: a, opts: { jobId: 'c3', priority: 1, ignoreDependencyOnFailure: true } },
      ],
    });
    const flow = await fp.getFlow({ id: 'root', queueName: a });
    const shallow = await fp.getFlow({ id: 'root', queueName: a, depth: 1 });
    const missing = await fp.getFlow({ id: 'nope', queueName: a });
    return { tree: plain(tree), flow: plain(flow, true), shallow: plain(shallow, true), missing };
  });
  expect(result.tree.children.map((c) => c.id)).toEqual(['c1', 'c2', 'c3']);
  expect(result.flow.children[1].children.map((c) => c.id)).toEqual(['g1', 'g2']);
});

test('addBulk, a flow under an existing parent, queuesOptions, and a missing parent', async () => {
  await sideBySideFlows(async (fp, { a, b }, prefix) => {
    const trees = await fp.addBulk([
      { name: 'p1', queueName: a, opts: { jobId: 'p1' }, children: [{ name: 'k1', queueName: b, opts: { jobId: 'k1' } }] },
      { name: 'solo', queueName: b, data: { s: 1 }, opts: { jobId: 'solo' } },
      {
        name: 'p2', queueName: b, opts: { jobId: 'p2' },
        children: [{ name: 'k2', queueName: a, opts: { jobId: 'k2' }, children: [{ name: 'k3', queueName: a, opts: { jobId: 'k3' } }] }],
      },
    ]);
    const attached = await fp.add({
      name: 'sub', queueName: b, opts: { jobId: 'sub', parent: { id: 'p1', queue: `${prefix}:${a}` } },
      children: [{ name: 'subchild', queueName: b, opts: { jobId: 'subchild' } }],
    });
    const withDefaults = await fp.add(
      { name: 'dp', queueName: a, opts: { jobId: 'dp' }, children: [{ name: 'dc', queueName: b, opts: { jobId: 'dc' } }] },
      { queuesOptions: { [a]: { defaultJobOptions: { attempts: 5, priority: 2 } }, [b]: { defaultJobOptions: { delay: 1000 } } } },
    );
    const missing = await step(() =>
      fp.add({ name: 'orphan', queueName: a, opts: { jobId: 'orphan', parent: { id: 'ghost', queue: `${prefix}:${a}` } } }),
    );
    const dedupParent = await step(() =>
      fp.add({ name: 'x', queueName: a, opts: { deduplication: { id: 'd' } }, children: [{ name: 'y', queueName: a }] }),
    );
    return { trees: trees.map((t) => plain(t)), attached: plain(attached), withDefaults: plain(withDefaults), missing, dedupParent };
  });
});

test('generated ids: the same shape as BullMQ (uuids), on the shared sockets only', async () => {
  const q = uniqueQueue('fu');
  const ours = new qn.FlowProducer();
  closers.push(() => ours.close());
  const tree = await ours.add({ name: 'r', queueName: q, children: [{ name: 'c', queueName: q }] });
  expect(tree.job.id).toMatch(/^[0-9a-f-]{36}$/);
  expect(tree.children[0].job.parentKey).toBe(`bull:${q}:${tree.job.id}`);
  expect(await tree.job.getState()).toBe('waiting-children');
  expect(await tree.children[0].job.getState()).toBe('waiting');
  const roles = (await ourClients(inspect)).map((c) => c.name.split(':')[1]).sort();
  expect(roles).toEqual(['blocking', 'command']);
});
