// The entry (src/server.ts) as its own process: SIGTERM with jobs in flight lets them finish,
// writes their results and exits 0; the process holds 2 Redis sockets while it runs.
import { connectedClients, nativeClientsOf, useRedis, waitFor } from './helpers/redis';
import { http, startServer } from './helpers/server';
import { makeOrder } from '../src/load/orders';
import { Queue } from '@anant/queue-native';

const { redis, inspect } = useRedis();

async function jobIdsIn(key: string): Promise<string[]> {
  return inspect.zrange(key, 0, -1);
}

test('SIGTERM with jobs in flight: they finish and are written, nothing is left active, exit code 0', async () => {
  // Each simulated I/O call takes 1.5 s, so the orders are in flight when the signal comes.
  const server = await startServer(redis.port, { SIMULATED_LATENCY_MS: '1500', QUEUE_PREFIX: 'term' });
  try {
    await server.waitForOutput(/All workers started successfully/);
    const ids: string[] = [];
    for (let n = 0; n < 8; n++) {
      const res = await http(server.port, 'POST', '/orders', makeOrder(n, 'term'));
      expect(res.status).toBe(202);
      ids.push(res.json.jobId);
    }
    // All eight are active (two order workers, concurrency 10 each).
    await waitFor(async () => (await inspect.llen('term:orders-queue:active')) === 8, { what: '8 active orders' });

    // The whole process: its two named sockets and no other client (1 = this test's inspector).
    const named = await nativeClientsOf(inspect, server.pid);
    expect(named.map((c) => c.name.split(':')[1]).sort()).toEqual(['blocking', 'command']);
    expect(await connectedClients(inspect)).toBe(named.length + 1);

    server.proc.kill('SIGTERM');
    await server.waitForOutput(/SIGTERM received: shutting down gracefully/);
    const { code, signal } = await server.exited;
    expect({ code, signal, output: server.output() }).toMatchObject({ code: 0, signal: null, output: expect.stringMatching(/Shutdown complete/) });

    // Every order that was in flight completed, with its result, and nothing stayed active.
    const completed = await jobIdsIn('term:orders-queue:completed');
    expect(completed.sort()).toEqual([...ids].sort());
    const queue = new Queue('orders-queue', { connection: { host: '127.0.0.1', port: redis.port }, prefix: 'term' });
    for (const id of ids) {
      const job = await queue.getJob(id);
      expect(job?.returnvalue).toMatchObject({ status: 'accepted', followUps: 3 });
    }
    await queue.close();
    for (const q of ['orders-queue', 'payments-queue', 'inventory-queue', 'notifications-queue']) {
      expect(await inspect.llen(`term:${q}:active`)).toBe(0);
    }
    // Their follow-ups were published before the orders completed and wait for the next start.
    expect(await inspect.zcard('term:payments-queue:prioritized')).toBe(8);
    // The process closed its sockets on the way out.
    expect(await nativeClientsOf(inspect, server.pid)).toHaveLength(0);
  } finally {
    server.kill();
  }
});

test('SIGINT on an idle backend exits 0 at once', async () => {
  const server = await startServer(redis.port, { QUEUE_PREFIX: 'int' });
  try {
    await server.waitForOutput(/All workers started successfully/);
    const started = Date.now();
    server.proc.kill('SIGINT');
    const { code, signal } = await server.exited;
    expect({ code, signal, output: server.output() }).toMatchObject({ code: 0, signal: null });
    expect(Date.now() - started).toBeLessThan(5000);
    expect(server.output()).toMatch(/SIGINT received[\s\S]*Shutdown complete/);
  } finally {
    server.kill();
  }
});

afterAll(async () => {
  const { shutdown } = await import('@anant/queue-native');
  await shutdown();
});
