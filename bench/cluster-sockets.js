'use strict';
// `node bench/cluster-sockets.js`: Redis sockets held by P worker processes x Q queues on a
// local Redis Cluster (3 primaries + 3 replicas, started here), ours against BullMQ 6 (its
// Worker on an ioredis Cluster, as BullMQ documents). Each process starts its Q workers,
// processes one job per queue, then idles; the sockets are counted with CLIENT LIST on every
// node (connected clients minus the count before the processes started). Prints a Markdown
// table for docs/PERFORMANCE.md.

const { fork } = require('child_process');
const { startCluster, waitFor, sleep } = require('../__test__/helpers/redis-cluster');


if (process.argv[2] === 'child') {
  // One worker process: impl, queue names, prefix, seeds come from the parent.
  const { impl, names, prefix, seeds } = JSON.parse(process.argv[3]);
  (async () => {
    const workers = [];
    if (impl === 'ours') {
      const qn = require('..');
      qn.configure({ cluster: seeds });
      for (const n of names) {
        const w = new qn.Worker(n, async () => n, { prefix, concurrency: 10 });
        w.on('error', () => {});
        workers.push(w);
      }
    } else {
      const { Worker } = require('bullmq6');
      const Redis = require('ioredis');
      for (const n of names) {
        const connection = new Redis.Cluster(seeds, { redisOptions: { maxRetriesPerRequest: null } });
        connection.on('error', () => {});
        const w = new Worker(n, async () => n, { prefix, concurrency: 10, connection });
        w.on('error', () => {});
        workers.push(w);
      }
    }
    process.on('message', (m) => {
      if (m === 'stop') process.exit(0);
    });
    process.send({ started: true });
  })().catch((e) => {
    console.error(e);
    process.exit(1);
  });
  return;
}

async function clientsPerNode(cluster) {
  const out = {};
  for (const port of cluster.ports) {
    const info = await cluster.node(port).call('INFO', 'clients');
    out[port] = Number(/connected_clients:(\d+)/.exec(info)[1]);
  }
  return out;
}

async function scenario(cluster, { impl, P, Q, tags }) {
  const run = `${impl}${P}${Q}${tags}${Date.now().toString(36)}`;
  const prefix = tags === 'shared' ? '{bull}' : 'bull';
  const names = Array.from({ length: Q }, (_, i) => (tags === 'shared' ? `${run}-q${i}` : `{${run}-q${i}}`));
  const before = await clientsPerNode(cluster);
  const children = [];
  for (let p = 0; p < P; p++) {
    const child = fork(__filename, ['child', JSON.stringify({ impl, names, prefix, seeds: cluster.seeds })], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const started = new Promise((resolve, reject) => {
      child.on('message', (m) => m.started && resolve());
      child.on('exit', (code) => reject(new Error(`child exited ${code}`)));
    });
    children.push({ child, started });
  }
  // One job per queue per process, added by the test's own client.
  const { Queue } = require('bullmq6');
  const Redis = require('ioredis');
  const conn = new Redis.Cluster(cluster.seeds);
  conn.on('error', () => {});
  const queues = names.map((n) => new Queue(n, { prefix, connection: conn }));
  await Promise.all(children.map((c) => c.started));
  await sleep(1500);
  for (let p = 0; p < P; p++) for (const q of queues) await q.add('j', {});
  await waitFor(async () => {
    for (const q of queues) if ((await q.getJobCounts('completed')).completed < P) return false;
    return true;
  }, { timeout: 60000, interval: 50, what: `${P} jobs per queue processed` });
  for (const q of queues) await q.close();
  await conn.quit();
  await sleep(1500); // idle: every worker waiting for work
  const after = await clientsPerNode(cluster);
  const perNode = {};
  for (const port of cluster.ports) perNode[port] = after[port] - before[port];
  const masters = new Set((await cluster.masters()).map((m) => m.port));
  const onPrimaries = [...masters].reduce((a, p) => a + perNode[p], 0);
  const onReplicas = cluster.ports.filter((p) => !masters.has(p)).reduce((a, p) => a + perNode[p], 0);
  for (const { child } of children) {
    child.removeAllListeners('exit');
    const gone = new Promise((r) => child.once('exit', r));
    child.send('stop');
    await gone;
  }
  await waitFor(async () => {
    const now = await clientsPerNode(cluster);
    return cluster.ports.every((p) => now[p] <= before[p]);
  }, { timeout: 20000, what: 'sockets released' }).catch(() => {});
  return { impl, P, Q, tags, total: onPrimaries + onReplicas, onPrimaries, onReplicas };
}

(async () => {
  const cluster = await startCluster({ primaries: 3, replicas: 1 });
  const rows = [];
  try {
    const cases = [
      { P: 1, Q: 1, tags: 'shared' },
      { P: 1, Q: 5, tags: 'shared' },
      { P: 1, Q: 5, tags: 'per-queue' },
      { P: 2, Q: 5, tags: 'shared' },
      { P: 2, Q: 5, tags: 'per-queue' },
    ];
    for (const c of cases) {
      for (const impl of ['ours', 'bullmq']) {
        const r = await scenario(cluster, { impl, ...c });
        rows.push(r);
        console.error(JSON.stringify(r));
      }
    }
  } finally {
    await cluster.stop();
  }
  console.log('| P processes | Q queues | hash tags | ours: sockets (primaries + replicas) | BullMQ 6: sockets (primaries + replicas) |');
  console.log('| --- | --- | --- | --- | --- |');
  for (let i = 0; i < rows.length; i += 2) {
    const [o, b] = [rows[i], rows[i + 1]];
    console.log(`| ${o.P} | ${o.Q} | ${o.tags} | ${o.total} (${o.onPrimaries} + ${o.onReplicas}) | ${b.total} (${b.onPrimaries} + ${b.onReplicas}) |`);
  }
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
