import { performance } from 'perf_hooks';
import { logger } from '../utils/logger';
import {
  ALL_QUEUES,
  DEFAULT_JOB_OPTIONS,
  QUEUE_IMPL,
  WORKER_CONCURRENCY,
  eventPublisher,
  getWorkersHealth,
  queueService,
  startWorkers,
  stopWorkers,
} from '../features/queue';
import { expectedOutcome, makeOrder } from './orders';

// A load run of the backend: starts its workers, sends N orders through the event publisher (as
// the orders API does), waits until every job of the fan-out has settled, and prints one result
// line (`@@result {json}`) for scripts/demo.js. Usage: run-orders.ts [--orders N]

const MARK = '@@result ';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  if (i < 0) return fallback;
  const n = Number(process.argv[i + 1]);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} needs a positive integer`);
  return n;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function pendingJobs(): Promise<{ pending: number; failed: number }> {
  const health = await queueService.getAllQueuesHealth();
  let pending = 0;
  let failed = 0;
  for (const q of health) {
    const c = q.counts;
    pending += c.waiting + c.active + c.delayed + c.prioritized + c.paused + c['waiting-children'];
    failed += c.failed;
  }
  return { pending, failed };
}

async function main(): Promise<void> {
  const orders = arg('--orders', 3000);
  const timeoutMs = arg('--timeout', 120_000);
  const runId = `${QUEUE_IMPL}${process.pid}`;
  const workers = await startWorkers();
  let rssPeak = process.memoryUsage().rss;
  const rssTimer = setInterval(() => (rssPeak = Math.max(rssPeak, process.memoryUsage().rss)), 100);

  const t0 = performance.now();
  // The orders API: at most 100 requests in flight.
  let next = 0;
  await Promise.all(
    Array.from({ length: 100 }, async () => {
      while (next < orders) {
        const n = next++;
        await eventPublisher.publishOrderCreated(makeOrder(n, runId));
      }
    }),
  );
  const publishedAt = performance.now();

  // Settled: nothing waiting, active or delayed anywhere, and every published job accounted for.
  let settled = false;
  let zeroPolls = 0;
  let failedFinal = 0;
  while (performance.now() - t0 < timeoutMs) {
    const { pending, failed } = await pendingJobs();
    failedFinal = failed;
    const completed = getWorkersHealth().reduce((s, w) => s + w.completed, 0);
    zeroPolls = pending === 0 ? zeroPolls + 1 : 0;
    if (pending === 0 && (completed + failed === eventPublisher.getStats().published || zeroPolls >= 10)) {
      settled = true;
      break;
    }
    await sleep(50);
  }
  const elapsedMs = performance.now() - t0;
  clearInterval(rssTimer);

  const health = getWorkersHealth();
  const completed = health.reduce((s, w) => s + w.completed, 0);
  const attemptsFailed = health.reduce((s, w) => s + w.failed, 0);
  const reasons = new Map<string, number>();
  let unrecoverable = 0; // failed before using up their attempts
  for (const queue of ALL_QUEUES) {
    for (const job of await queueService.getJobs(queue, 'failed', 0, -1)) {
      const reason = job.failedReason ?? '(no reason)';
      reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
      if (job.attemptsMade < DEFAULT_JOB_OPTIONS.attempts) unrecoverable++;
    }
  }
  const result = {
    impl: QUEUE_IMPL,
    pid: process.pid,
    orders,
    settled,
    elapsedMs: Math.round(elapsedMs),
    publishMs: Math.round(publishedAt - t0),
    published: eventPublisher.getStats().published,
    publishFailures: eventPublisher.getStats().failures,
    completed,
    failed: failedFinal,
    unrecoverable,
    retried: attemptsFailed - failedFinal,
    jobsPerSec: Math.round((completed + failedFinal) / (elapsedMs / 1000)),
    expected: expectedOutcome(orders),
    failureReasons: [...reasons.entries()].sort((a, b) => b[1] - a[1]).map(([reason, count]) => ({ reason, count })),
    workers: workers.map((w) => w.getHealth()).map(({ name, queue, concurrency }) => ({ name, queue, concurrency })),
    queues: ALL_QUEUES.length,
    concurrency: WORKER_CONCURRENCY,
    rssPeakMb: Math.round(rssPeak / 1048576),
  };
  process.stdout.write(`${MARK}${JSON.stringify(result)}\n`);

  await stopWorkers();
  await queueService.shutdown();
  if (!settled) process.exitCode = 2;
}

main().catch((err: Error) => {
  logger.error('Load run failed', { error: err.message, stack: err.stack });
  process.exit(1);
});
