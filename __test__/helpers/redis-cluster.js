'use strict';
// Starts a private Redis Cluster for a test file: N primaries + N*replicas replicas, each a
// redis-server on a free port (never 6379) with its own temp dir, joined with
// `redis-cli --cluster create`. Helpers to see it the way an operator would (CLUSTER NODES,
// CLIENT LIST per node) and to change it under load (slot migration, failover).

const { execFile } = require('child_process');
const net = require('net');
const { promisify } = require('util');
const Redis = require('ioredis');
const { startRedis, freePort, parseClientList, waitFor, sleep } = require('./redis-server');

const run = promisify(execFile);

function isFree(port) {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** A free port whose cluster bus port (port + 10000, Redis's default) is free and valid too. */
async function clusterPort() {
  for (;;) {
    const port = await freePort();
    if (port + 10000 <= 65535 && (await isFree(port + 10000))) return port;
  }
}

/** Parse CLUSTER NODES into { id, port, role, masterId, slots: [[a,b],...], flags }. */
function parseNodes(text) {
  return text
    .trim()
    .split('\n')
    .map((line) => {
      const parts = line.trim().split(' ');
      const [id, addr, flags, master] = parts;
      const port = Number(addr.split('@')[0].split(':').pop());
      const slots = parts
        .slice(8)
        .filter((s) => !s.startsWith('['))
        .map((s) => s.split('-').map(Number))
        .map(([a, b]) => [a, b ?? a]);
      return {
        id,
        port,
        flags: flags.split(','),
        role: flags.includes('master') ? 'master' : 'replica',
        masterId: master === '-' ? null : master,
        slots,
      };
    });
}

async function startCluster({ primaries = 3, replicas = 1, args = [] } = {}) {
  const count = primaries * (1 + replicas);
  const servers = [];
  try {
    for (let i = 0; i < count; i++) {
      const port = await clusterPort();
      servers.push(
        await startRedis({
          port,
          args: [
            '--cluster-enabled', 'yes',
            '--cluster-config-file', `nodes-${port}.conf`,
            '--cluster-node-timeout', '2000',
            ...args,
          ],
        }),
      );
    }
    const addrs = servers.map((s) => `127.0.0.1:${s.port}`);
    await run('redis-cli', ['--cluster', 'create', ...addrs, '--cluster-replicas', String(replicas), '--cluster-yes'], {
      timeout: 60000,
    });
  } catch (err) {
    for (const s of servers) await s.stop();
    throw err;
  }
  const clients = new Map();
  const node = (port) => {
    if (!clients.has(port)) {
      const c = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1, lazyConnect: false });
      c.on('error', () => {});
      clients.set(port, c);
    }
    return clients.get(port);
  };
  const cluster = {
    servers,
    ports: servers.map((s) => s.port),
    seeds: servers.slice(0, 2).map((s) => ({ host: '127.0.0.1', port: s.port })),
    /** ioredis client of one node (the test's own, for inspection). */
    node,
    async nodes() {
      // Asked of every node in turn: one that is mid-failover may not answer.
      for (const port of this.ports) {
        try {
          return parseNodes(await node(port).call('CLUSTER', 'NODES'));
        } catch {
          // next
        }
      }
      throw new Error('no node answers CLUSTER NODES');
    },
    async masters() {
      return (await this.nodes()).filter((n) => n.role === 'master' && !n.flags.includes('fail') && n.slots.length);
    },
    /** Port of the primary serving `slot`, as that node itself says. */
    async ownerOf(slot) {
      for (const n of await this.masters()) {
        if (n.slots.some(([a, b]) => slot >= a && slot <= b)) return n.port;
      }
      return null;
    },
    async slotOf(key) {
      return Number(await node(this.ports[0]).call('CLUSTER', 'KEYSLOT', key));
    },
    /** Every node agrees: cluster_state ok and the same owner for every slot. */
    async settled() {
      const views = [];
      for (const port of this.ports) {
        const info = await node(port).call('CLUSTER', 'INFO');
        if (!/cluster_state:ok/.test(info)) return false;
        const masters = parseNodes(await node(port).call('CLUSTER', 'NODES'))
          .filter((n) => n.role === 'master' && n.slots.length)
          .map((n) => `${n.port}:${JSON.stringify(n.slots)}`)
          .sort()
          .join('|');
        views.push(masters);
      }
      return views.every((v) => v === views[0]);
    },
    async waitSettled(timeout = 30000) {
      await waitFor(() => this.settled().catch(() => false), { timeout, interval: 100, what: 'cluster to settle' });
    },
    /** An ioredis Cluster client (what BullMQ uses on a cluster). */
    ioredisCluster(opts = {}) {
      const c = new Redis.Cluster(this.seeds, { redisOptions: { maxRetriesPerRequest: null }, ...opts });
      c.on('error', () => {});
      return c;
    },
    /** Our library's sockets per node port (CLIENT LIST on every node), by role. */
    async ourSockets(pid = process.pid) {
      const out = {};
      for (const port of this.ports) {
        const list = parseClientList(await node(port).call('CLIENT', 'LIST'));
        const ours = list.filter((c) => c.name && c.name.startsWith('queue-native:') && c.name.endsWith(`:${pid}`));
        out[port] = {
          command: ours.filter((c) => c.name.startsWith('queue-native:command:')).length,
          blocking: ours.filter((c) => c.name.startsWith('queue-native:blocking:')).length,
        };
      }
      return out;
    },
    /**
     * Move one slot, with its keys, to the primary on `toPort`, the way `redis-cli --cluster
     * reshard` does: IMPORTING / MIGRATING, MIGRATE the keys in batches, SETSLOT NODE on both.
     */
    async migrateSlot(slot, toPort) {
      const fromPort = await this.ownerOf(slot);
      if (fromPort === toPort) return;
      const all = await this.nodes();
      const from = all.find((n) => n.port === fromPort);
      const to = all.find((n) => n.port === toPort);
      await node(toPort).call('CLUSTER', 'SETSLOT', slot, 'IMPORTING', from.id);
      await node(fromPort).call('CLUSTER', 'SETSLOT', slot, 'MIGRATING', to.id);
      for (;;) {
        const keys = await node(fromPort).call('CLUSTER', 'GETKEYSINSLOT', slot, 100);
        if (!keys.length) break;
        await node(fromPort).call('MIGRATE', '127.0.0.1', toPort, '', 0, 5000, 'REPLACE', 'KEYS', ...keys);
      }
      await node(toPort).call('CLUSTER', 'SETSLOT', slot, 'NODE', to.id);
      await node(fromPort).call('CLUSTER', 'SETSLOT', slot, 'NODE', to.id);
      for (const n of all.filter((x) => x.role === 'master' && x.port !== fromPort && x.port !== toPort)) {
        await node(n.port).call('CLUSTER', 'SETSLOT', slot, 'NODE', to.id).catch(() => {});
      }
      await this.waitSettled();
    },
    /** `CLUSTER FAILOVER` on a replica of the primary on `port`; resolves with the new primary's port. */
    async failover(port) {
      const all = await this.nodes();
      const primary = all.find((n) => n.port === port);
      const replica = all.find((n) => n.masterId === primary.id);
      await node(replica.port).call('CLUSTER', 'FAILOVER');
      await waitFor(
        async () => (await this.nodes()).find((n) => n.port === replica.port)?.role === 'master',
        { timeout: 20000, interval: 100, what: `replica ${replica.port} to take over` },
      );
      await this.waitSettled();
      return replica.port;
    },
    async flushAll() {
      for (const n of await this.masters()) await node(n.port).flushall();
    },
    async stop() {
      for (const c of clients.values()) c.disconnect();
      for (const s of servers) await s.stop();
    },
  };
  await cluster.waitSettled(60000);
  return cluster;
}

module.exports = { startCluster, parseNodes, sleep, waitFor };
