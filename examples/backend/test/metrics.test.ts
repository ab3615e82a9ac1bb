// GET /metrics: the addon's process view in the Prometheus text format, next to /health.
import { startRedis, waitFor, type PrivateRedis } from './helpers/redis';
import { http, startServer, type ServerProcess } from './helpers/server';
import { makeOrder } from '../src/load/orders';

let redis: PrivateRedis;
let server: ServerProcess | undefined;

beforeAll(async () => {
  redis = await startRedis();
});

afterAll(async () => {
  server?.kill();
  await redis?.stop();
});

async function scrape(port: number): Promise<{ status: number; type: string | null; text: string }> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  return { status: res.status, type: res.headers.get('content-type'), text: await res.text() };
}

/** The value of the sample `name{labels}` (labels as written), or undefined. */
function sample(text: string, name: string, labels: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

test('/metrics serves the process view: sockets, per-queue counters and processing times', async () => {
  server = await startServer(redis.port);
  await server.waitForOutput(/All workers started successfully/);
  const { status: healthStatus } = await http(server.port, 'GET', '/health');
  expect(healthStatus).toBe(200);

  const { status } = await http(server.port, 'POST', '/orders', makeOrder(1, 'metrics'));
  expect(status).toBe(202);
  const orders = '{prefix="bull",queue="orders-queue"}';
  const scraped = await waitFor(
    async () => {
      const s = await scrape(server!.port);
      return (sample(s.text, 'queue_native_jobs_processed_total', orders) ?? 0) >= 1 ? s : undefined;
    },
    { timeout: 15_000, what: 'the order job in /metrics' },
  );
  expect(scraped.status).toBe(200);
  expect(scraped.type).toMatch(/^text\/plain; version=0\.0\.4/);
  const { text } = scraped;
  expect(text).toContain('# TYPE queue_native_job_processing_seconds histogram');
  expect(sample(text, 'queue_native_job_processing_seconds_count', orders)).toBeGreaterThanOrEqual(1);
  // The whole backend on one pair: one command and one blocking socket.
  const endpoint = `127.0.0.1:${redis.port}`;
  const sockets = text.split('\n').filter((l) => l.startsWith('queue_native_connections{') && l.includes(endpoint));
  expect(sockets.sort()).toEqual([
    expect.stringMatching(/role="blocking"\} 1$/),
    expect.stringMatching(/role="command"\} 1$/),
  ]);
  expect(text).toMatch(/^queue_native_event_loop_delay_seconds\{quantile="0\.99"\} [0-9.e-]+$/m);

  server.proc.kill('SIGTERM');
  expect((await server.exited).code).toBe(0);
});
