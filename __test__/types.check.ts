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
