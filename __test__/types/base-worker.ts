// A backend's worker base, written as BullMQ's docs write one. It must compile unchanged against
// BullMQ (tsconfig.bullmq.json) and against this package (tsconfig.json): only the module the
// import names differs, through `paths`.
import {
  Worker,
  Job,
  UnrecoverableError,
  DelayedError,
  WaitingChildrenError,
  RateLimitError,
  type ConnectionOptions,
  type WorkerOptions,
  type Processor,
  type JobProgress,
  type MinimalJob,
} from 'queue-under-test';

// An ioredis-style literal, as backends pass to BullMQ: keys that mean nothing to the native
// pair (maxRetriesPerRequest, enableReadyCheck, retryStrategy, ...) must still type-check.
export const connection: ConnectionOptions = {
  host: process.env.REDIS_HOST ?? 'localhost',
  port: Number(process.env.REDIS_PORT ?? 6379),
  password: process.env.REDIS_PASSWORD,
  db: 0,
  maxRetriesPerRequest: null,
  enableReadyCheck: false,
  retryStrategy: (times: number) => Math.min(times * 50, 2000),
};

export interface EventEnvelope<T = unknown> {
  type: string;
  data: T;
  metadata?: { correlationId?: string; source?: string };
}

export type OrderJobName = 'ORDER_CREATED' | 'ORDER_CANCELLED';

export abstract class BaseWorker<T = unknown, R = unknown, N extends string = string> {
  protected worker: Worker<EventEnvelope<T>, R, N> | null = null;
  private completed = 0;
  private failed = 0;

  constructor(
    readonly queueName: string,
    private readonly options: Partial<WorkerOptions> = {},
  ) {}

  protected abstract processJob(job: Job<EventEnvelope<T>, R, N>, token?: string): Promise<R>;

  start(): Worker<EventEnvelope<T>, R, N> {
    const processor: Processor<EventEnvelope<T>, R, N> = async (job, token) => this.processJob(job, token);
    const worker = new Worker<EventEnvelope<T>, R, N>(this.queueName, processor, {
      connection,
      concurrency: 5,
      lockDuration: 30_000,
      removeOnComplete: { count: 1000 },
      removeOnFail: { age: 24 * 3600 },
      ...this.options,
    });
    worker.on('completed', (job: Job<EventEnvelope<T>, R, N>, result: R, prev: string) => {
      this.completed++;
      console.log(job.id, job.name, result, prev, job.finishedOn! - job.processedOn!);
    });
    worker.on('failed', (job: Job<EventEnvelope<T>, R, N> | undefined, err: Error, prev: string) => {
      this.failed++;
      const attempts = job?.opts.attempts ?? 1;
      console.warn(job?.id, err.message, prev, `${job?.attemptsMade}/${attempts}`, job?.failedReason);
    });
    worker.on('progress', (job: Job<EventEnvelope<T>, R, N>, progress: JobProgress) => console.log(job.id, progress));
    worker.on('active', (job, prev) => console.log(job.id, prev));
    worker.on('stalled', (jobId: string, prev: string) => console.warn(jobId, prev));
    worker.on('error', (err: Error) => console.error(err.message));
    worker.on('drained', () => console.log('drained'));
    worker.on('closed', () => console.log('closed'));
    this.worker = worker;
    return worker;
  }

  counts(): { completed: number; failed: number; running: boolean } {
    return { completed: this.completed, failed: this.failed, running: this.worker?.isRunning() ?? false };
  }

  async stop(): Promise<void> {
    await this.worker?.close();
  }
}

interface OrderCreated {
  orderId: string;
  total: number;
}

export class OrderWorker extends BaseWorker<OrderCreated, { ok: boolean }, OrderJobName> {
  constructor() {
    super('orders-queue', { concurrency: 10 });
  }

  protected async processJob(job: Job<EventEnvelope<OrderCreated>, { ok: boolean }, OrderJobName>, token?: string) {
    await job.updateProgress(10);
    await job.updateProgress({ step: 'reserved' });
    await job.log(`order ${job.data.data.orderId}`);
    if (job.name === 'ORDER_CANCELLED') throw new UnrecoverableError('cancelled orders are not processed');
    if (job.data.data.total < 0) {
      await job.moveToDelayed(Date.now() + 1000, token);
      throw new DelayedError();
    }
    if (job.data.data.total === 0 && (await job.moveToWaitingChildren(token!))) {
      throw new WaitingChildrenError();
    }
    const tries: number = job.attemptsMade + job.attemptsStarted + job.stalledCounter;
    const when: number = job.timestamp + job.delay + job.priority + tries;
    void when;
    return { ok: true };
  }
}

// A plain function processor with the (job, token, signal) signature.
export const sendEmail: Processor<{ to: string }, void> = async (job, _token, signal) => {
  if (signal?.aborted) throw new RateLimitError();
  console.log(job.data.to);
};

export function describe(job: MinimalJob<{ to: string }>): string {
  return `${job.id}:${job.name}:${job.data.to}`;
}

export const rateLimited: Error = Worker.RateLimitError();
