// Compile-only check of the public types (tsc --noEmit): the calls base.worker.ts makes.
import { configure, connect, health, onConnection, shutdown, QueueNativeError, type Health } from '..';

configure({ host: 'localhost', port: 6379, password: process.env.REDIS_PASSWORD, retry: { initialDelay: 100 } });
configure({ url: 'rediss://redis.example:6380/0', tls: { rejectUnauthorized: true } });
onConnection('error', (err: QueueNativeError) => console.error(err.code, err.message));
onConnection('reconnecting', (info) => console.warn(info.delay, info.attempt));
const h: Health = health();
const sockets: number = h.connections.command + h.connections.blocking;
void sockets;
void connect().then(() => shutdown());

import { Worker, UnrecoverableError, DelayedError, type Job } from '..';

interface OrderEvent {
  type: 'ORDER_CREATED';
  data: { orderId: string; total: number };
}

const worker = new Worker<OrderEvent, { ok: boolean }>(
  'orders-queue',
  async (job: Job<OrderEvent>, token, signal) => {
    await job.updateProgress(10);
    await job.log(`order ${job.data.data.orderId}`);
    if (signal?.aborted) throw new UnrecoverableError('cancelled');
    if (job.data.data.total < 0) {
      await job.moveToDelayed(Date.now() + 1000, token);
      throw new DelayedError();
    }
    return { ok: true };
  },
  { concurrency: 10, removeOnComplete: { age: 86400, count: 1000 }, removeOnFail: { age: 604800 } },
);
worker.on('completed', (job, result) => console.log(job.id, result.ok));
worker.on('failed', (job, err) => console.error(job?.id, err.message));
worker.concurrency = 5;
void worker.close();

// Flows and manual rate limits inside a processor.
import { WaitingChildrenError, RateLimitError } from '..';

const flowWorker: Worker = new Worker('parents', async (job, token) => {
  if (await job.moveToWaitingChildren(token, { child: { id: '1', queue: job.queueQualifiedName } })) {
    throw new WaitingChildrenError();
  }
  if (job.data.tooFast) {
    await flowWorker.rateLimit(1000);
    throw Worker.RateLimitError();
  }
  if (job.data.alsoTooFast) throw new RateLimitError();
  return 'done';
});
void flowWorker.close();

// The producer / admin side.
import { Queue, type JobsOptions, type QueueJob } from '..';

const defaults: JobsOptions = { attempts: 3, backoff: { type: 'exponential', delay: 1000 }, removeOnComplete: { age: 3600 } };
const orders = new Queue<OrderEvent, { ok: boolean }>('orders-queue', { prefix: 'bull', defaultJobOptions: defaults });
orders.on('waiting', (job: QueueJob<OrderEvent>) => console.log(job.id, job.data.type));
orders.on('error', (err) => console.error(err.code));
void (async () => {
  const job = await orders.add('ORDER_CREATED', { type: 'ORDER_CREATED', data: { orderId: '1', total: 5 } }, {
    priority: 1, delay: 500, jobId: 'order-1', deduplication: { id: 'order-1', ttl: 1000 }, lifo: false,
  });
  const jobs = await orders.addBulk([{ name: 'a', data: job.data }, { name: 'b', data: job.data, opts: { parent: { id: 'p', queue: 'bull:parents' } } }]);
  const counts: Record<string, number> = await orders.getJobCounts('waiting', 'failed');
  const failed = await orders.getFailed(0, 9);
  for (const f of failed) {
    const reason: string | undefined = f.failedReason;
    console.log(reason, f.stacktrace, f.returnvalue?.ok, f.finishedOn, f.processedOn, f.attemptsMade, f.progress);
    await f.retry();
  }
  const { logs, count } = await orders.getJobLogs(job.id);
  const removed: string[] = await orders.clean(60_000, 100, 'completed');
  console.log(jobs.length, counts, logs, count, removed, await orders.isPaused(), await orders.getWaitingCount());
  await orders.pause();
  await orders.resume();
  await orders.drain();
  await orders.close();
})();

// QueueEvents and the rest of the Job / Queue surface.
import { QueueEvents, Job as JobClass, type JobStateName } from '..';
void (async () => {
  const events = new QueueEvents('orders', { lastEventId: '0', blockingTimeout: 5000, autorun: true });
  events.on('completed', ({ jobId, returnvalue }, id) => console.log(jobId, returnvalue, id));
  events.on('failed', ({ failedReason }) => console.log(failedReason));
  events.on('drained', (id) => console.log(id));
  await events.waitUntilReady();
  const job = await JobClass.fromId(orders, 'order-1');
  if (job) {
    const state: JobStateName = await job.getState();
    const done: boolean = await job.isCompleted();
    await job.changePriority({ priority: 3 });
    const deps = await job.getDependencies({ processed: { count: 10 } });
    const n = await job.getDependenciesCount({ unprocessed: true });
    const result = await job.waitUntilFinished(events, 1000);
    console.log(state, done, deps.nextProcessedCursor, n.unprocessed, result);
  }
  await orders.obliterate({ force: true });
  const limit = await orders.getGlobalRateLimit();
  console.log(limit?.max, await orders.getCountsPerPriority([0, 1]), health().connections.events);
  await events.close();
})();

import { FlowProducer } from '..';
void (async () => {
  const flows = new FlowProducer({ prefix: 'bull' });
  const tree = await flows.add({ name: 'p', queueName: 'q', children: [{ name: 'c', queueName: 'q', data: { x: 1 } }] });
  const again = await flows.getFlow({ id: tree.job.id, queueName: 'q', depth: 2 });
  console.log(tree.children?.[0].job.parentKey, again?.children?.length);
  await flows.close();
})();
