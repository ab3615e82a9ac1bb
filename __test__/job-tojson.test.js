'use strict';
// job.toJSON() against BullMQ 6.7's on the same jobs: BullMQ's returns the Job's own
// properties, so its keys (and their order) depend on where the job came from (an add, a
// read, a worker, a FlowProducer tree). Each origin is run through BullMQ's classes under one
// prefix and ours under another; the keys, the keys of job.opts and the JSON text (times,
// tokens, flow uuids and stack frames normalised) must be equal.
const qn = require('..');
const { useRedis } = require('./helpers/suite');
const { bullmq, uniqueQueue, uniquePrefix, connectionFor } = require('./helpers/bull');

const { redis, closers } = useRedis();

function describeJob(job, prefix) {
  const json = job.toJSON();
  const text = JSON.stringify(job)
    .split(`${prefix}:`)
    .join('<prefix>:')
    .replace(/"(timestamp|processedOn|finishedOn)":\d+/g, '"$1":"<ts>"')
    .replace(/"token":"[^"]*"/g, '"token":"<token>"')
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, '<uuid>')
    .replace(/"stacktrace":\["[^\]]*"\]/g, '"stacktrace":["<frames>"]');
  return { keys: Object.keys(json), optsKeys: Object.keys(job.opts), text, toKey: json.toKey('wait').replace(prefix, '<prefix>') };
}

test('toJSON keys, order and text match BullMQ for added, read, worker and flow jobs', async () => {
  const name = uniqueQueue('tojson');
  const sides = {};
  for (const side of ['bull', 'ours']) {
    const prefix = uniquePrefix(side);
    const M = side === 'bull' ? bullmq[6] : qn;
    const conn = side === 'bull' ? { connection: connectionFor(redis) } : {};
    const keep = (x) => {
      x.on('error', () => {});
      closers.push(() => x.close());
      return x;
    };
    const q = keep(new M.Queue(name, { prefix, ...conn }));
    const out = {};
    const rec = (tag, job) => {
      out[tag] = describeJob(job, prefix);
    };
    rec('add', await q.add('a', { x: 1 }, { jobId: 'a1', backoff: 500, attempts: 3 }));
    rec('addDedup', await q.add('b', {}, { deduplication: { id: 'd' }, removeOnFail: false }));
    rec('addDelayed', await q.add('c', {}, { delay: 60000, priority: 3 }));
    rec('addBulk', (await q.addBulk([{ name: 'e', data: { e: 1 } }]))[0]);
    rec('getWaiting', await q.getJob('a1'));
    rec('getDedup', await q.getJob('2'));
    rec('fromId', await M.Job.fromId(q, 'a1'));
    rec('getDelayed', (await q.getDelayed())[0]);
    const w = keep(
      new M.Worker(name, null, { prefix, ...conn, ...(side === 'bull' ? { autorun: false, skipStalledCheck: true, skipLockRenewal: true } : {}) }),
    );
    const first = await w.getNextJob('tok', { block: false });
    rec('taken', first);
    await first.moveToCompleted({ ok: true }, 'tok', false);
    rec('getCompleted', await q.getJob(first.id));
    const second = await w.getNextJob('tok', { block: false });
    await second.moveToFailed(new Error('broke'), 'tok', false);
    rec('getFailed', await q.getJob(second.id));
    const fp = keep(new M.FlowProducer({ prefix, ...conn }));
    const tree = await fp.add({ name: 'p', queueName: name, children: [{ name: 'c', queueName: name, data: { c: 1 }, opts: { jobId: 'kid' } }] });
    rec('flowParent', tree.job);
    rec('flowChild', tree.children[0].job);
    rec('getChild', await q.getJob('kid'));
    sides[side] = out;
  }
  for (const tag of Object.keys(sides.bull)) expect([tag, sides.ours[tag]]).toEqual([tag, sides.bull[tag]]);
  // What differs by origin (so that the comparison above covers it).
  expect(sides.bull.add.keys).not.toContain('parent');
  expect(sides.bull.getWaiting.keys).toContain('parent');
  expect(sides.bull.taken.keys).toContain('token');
  expect(sides.bull.add.optsKeys[0]).toBe('attempts');
});
