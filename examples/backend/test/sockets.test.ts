// The whole process (five workers at QUEUE_CONCURRENCY=10 plus its publishers) on at most two
// Redis sockets; and, for comparison, what the same backend opens on plain BullMQ.
import { clientList, connectedClients, nativeClientsOf, waitFor } from './helpers/redis';
import { useBackend } from './helpers/backend';
import { http, startServer } from './helpers/server';
import { expectedOutcome, makeOrder } from '../src/load/orders';

const { redis, inspect, be } = useBackend({ QUEUE_CONCURRENCY: '10', SIMULATED_LATENCY_MS: '1' }, { startWorkers: false });

/** Sockets of this process on the server: ours by name, and nobody else of ours by count. */
async function sample(): Promise<{ ours: number; connected: number; roles: string[] }> {
  const [ours, connected] = await Promise.all([nativeClientsOf(inspect, process.pid), connectedClients(inspect)]);
  return { ours: ours.length, connected, roles: ours.map((c) => c.name.split(':')[1]).sort() };
}

test('5 workers at concurrency 10 and all publishers, under load: 2 sockets, and no other client', async () => {
  await be.startWorkers();
  const workers = be.getWorkersHealth();
  expect(workers).toHaveLength(5);
  expect(workers.every((w) => w.concurrency === 10)).toBe(true);

  const samples: Array<Awaited<ReturnType<typeof sample>>> = [];
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      samples.push(await sample());
      await new Promise((r) => setTimeout(r, 20));
    }
  })();

  const orders = 300;
  const completedBefore = be.getWorkersHealth().reduce((s, w) => s + w.completed, 0);
  await Promise.all(Array.from({ length: orders }, (_, n) => be.eventPublisher.publishOrderCreated(makeOrder(n, 'sockets'))));
  const expected = expectedOutcome(orders);
  await waitFor(
    async () => {
      const failed = (await be.queueService.getAllQueuesHealth()).reduce((s, q) => s + q.counts.failed, 0);
      const completed = be.getWorkersHealth().reduce((s, w) => s + w.completed, 0) - completedBefore;
      return completed + failed === expected.jobs;
    },
    { timeout: 30_000, what: `${expected.jobs} jobs` },
  );
  sampling = false;
  await sampler;

  expect(samples.length).toBeGreaterThan(10);
  // The test's own inspection client is the only other client on this private server.
  for (const s of samples) {
    expect(s.roles).toEqual(['blocking', 'command']);
    expect(s.connected).toBe(s.ours + 1);
  }
  expect(be.native.health().connections).toEqual({ command: 1, blocking: 1, events: 0 });
  // Every queue was created, each with its own worker(s): still the same two sockets.
  const names = (await clientList(inspect)).map((c) => c.name).filter(Boolean);
  expect(names.sort()).toEqual([`queue-native:blocking:${process.pid}`, expect.stringMatching(new RegExp(`^queue-native:command:.+:${process.pid}$`))]);
  // The command socket's name has one entry per Worker, `<base64 prefix:queue>.<base64 worker
  // name>` (Queue.getWorkers reads it): five workers over the four queues.
  const served = names.find((n) => n.startsWith('queue-native:command:'))!.split(':')[2].split(',');
  expect(served).toHaveLength(5);
  const servedQueues = [...new Set(served.map((entry) => entry.split('.')[0]))];
  const expectedQueues = (be.ALL_QUEUES as readonly string[]).map((q) => Buffer.from(`bull:${q}`).toString('base64'));
  expect(servedQueues.sort()).toEqual(expectedQueues.sort());
});

test('before: the same backend on BullMQ (QUEUE_IMPL=bullmq) opens 2 per Worker and 1 per Queue', async () => {
  const server = await startServer(redis.port, { QUEUE_IMPL: 'bullmq' });
  try {
    await server.waitForOutput(/All workers started successfully/);
    // /health touches every queue (the service creates them on demand).
    const { status, json } = await http(server.port, 'GET', '/health');
    expect(status).toBe(200);
    expect(json.impl).toBe('bullmq');
    expect(json.workers).toHaveLength(5);
    const own = 1; // the inspection client
    const ours = (await nativeClientsOf(inspect, process.pid)).length; // this jest process's pair, if open
    const theirs = await waitFor(
      async () => {
        const n = (await connectedClients(inspect)) - own - ours;
        return n >= 14 ? n : undefined;
      },
      { what: '14 BullMQ clients' },
    );
    expect(theirs).toBe(5 * 2 + 4 * 1);
    expect((await nativeClientsOf(inspect, server.pid)).length).toBe(0);
    server.proc.kill('SIGTERM');
    expect((await server.exited).code).toBe(0);
  } finally {
    server.kill();
  }
});
