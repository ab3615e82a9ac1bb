import http from 'http';
import { logger } from './utils/logger';
import {
  ALL_QUEUES,
  QUEUE_IMPL,
  QueueName,
  eventPublisher,
  getWorkersHealth,
  queueService,
  startWorkers,
  stopWorkers,
  type JobState,
  type OrderCreatedData,
} from './features/queue';

// The backend's entry: the queue workers plus a small HTTP API (health, metrics, orders,
// failed jobs).
// SIGTERM / SIGINT stop it gracefully: no new work is taken, jobs in flight finish and are
// written to Redis, then the connections close and the process exits 0.

const PORT = Number(process.env.PORT ?? 3000);
const SHUTDOWN_TIMEOUT_MS = Number(process.env.SHUTDOWN_TIMEOUT_MS ?? 30_000);

function send(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

function readJson(req: http.IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (text += chunk));
    req.on('end', () => {
      try {
        resolve(text ? JSON.parse(text) : {});
      } catch (err) {
        reject(err);
      }
    });
    req.on('error', reject);
  });
}

async function route(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const queueMatch = /^\/queues\/([\w-]+)\/(jobs|retry)$/.exec(url.pathname);
  if (req.method === 'GET' && url.pathname === '/health') {
    const queues = await queueService.getAllQueuesHealth();
    let redis: unknown;
    if (QUEUE_IMPL === 'native') redis = (await import('@anant/queue-native')).health().connections;
    return send(res, 200, { status: shuttingDown ? 'stopping' : 'ok', impl: QUEUE_IMPL, workers: getWorkersHealth(), queues, redis });
  }
  if (req.method === 'GET' && url.pathname === '/metrics') {
    // The process view of the addon (sockets, dispatcher, locks, per-queue counters and
    // processing times, event-loop delay) in the Prometheus text format.
    if (QUEUE_IMPL !== 'native') return send(res, 404, { error: 'metrics need QUEUE_IMPL=native' });
    const text = (await import('@anant/queue-native')).metricsText();
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
    res.end(text);
    return;
  }
  if (req.method === 'POST' && url.pathname === '/orders') {
    if (shuttingDown) return send(res, 503, { error: 'shutting down' });
    const order = (await readJson(req)) as OrderCreatedData;
    const jobId = await eventPublisher.publishOrderCreated(order);
    return jobId ? send(res, 202, { jobId }) : send(res, 503, { error: 'could not queue the order' });
  }
  if (queueMatch && (ALL_QUEUES as string[]).includes(queueMatch[1])) {
    const queue = queueMatch[1] as QueueName;
    if (req.method === 'GET' && queueMatch[2] === 'jobs') {
      const state = (url.searchParams.get('state') ?? 'failed') as JobState;
      return send(res, 200, await queueService.getJobs(queue, state));
    }
    if (req.method === 'POST' && queueMatch[2] === 'retry') {
      return send(res, 200, { retried: await queueService.retryFailedJobs(queue) });
    }
  }
  send(res, 404, { error: 'not found' });
}

let shuttingDown = false;

async function main(): Promise<void> {
  let server: http.Server | undefined;

  const stop = async (signal: NodeJS.Signals): Promise<void> => {
    if (shuttingDown) {
      logger.warn(`${signal} received again: still waiting for jobs in flight`);
      return;
    }
    shuttingDown = true;
    logger.info(`${signal} received: shutting down gracefully (jobs in flight finish first)`);
    const deadline = setTimeout(() => {
      logger.error(`Graceful shutdown took longer than ${SHUTDOWN_TIMEOUT_MS} ms: exiting`);
      process.exit(1);
    }, SHUTDOWN_TIMEOUT_MS);
    deadline.unref();
    try {
      server?.close();
      server?.closeAllConnections?.();
      await stopWorkers();
      await queueService.shutdown();
      clearTimeout(deadline);
      logger.info('Shutdown complete');
      process.exitCode = 0;
    } catch (err) {
      logger.error('Shutdown failed', { error: (err as Error).message });
      process.exit(1);
    }
  };
  // Installed before anything starts: a signal during start-up (workers already running,
  // HTTP not yet listening) is a graceful stop too, not Node's default exit.
  process.on('SIGTERM', (s) => void stop(s));
  process.on('SIGINT', (s) => void stop(s));

  await startWorkers();
  if (shuttingDown) return;
  server = http.createServer((req, res) => {
    route(req, res).catch((err: Error) => {
      logger.error('Request failed', { url: req.url, error: err.message });
      if (!res.headersSent) send(res, 500, { error: err.message });
    });
  });
  const listening = server;
  await new Promise<void>((resolve) => listening.listen(PORT, '127.0.0.1', resolve));
  if (shuttingDown) {
    // The signal came while the socket was being opened: stop() could not close it yet.
    listening.close();
    return;
  }
  const address = listening.address();
  logger.info(`HTTP API listening on 127.0.0.1:${typeof address === 'object' && address ? address.port : PORT}`, {
    impl: QUEUE_IMPL,
  });
}

main().catch((err: Error) => {
  logger.error('Backend failed to start', { error: err.message, stack: err.stack });
  process.exit(1);
});
