// BEFORE the migration: the workers' base class as the backend has it today, on BullMQ's
// Worker. Kept only for the before/after comparison (QUEUE_IMPL=bullmq). Every Worker gets the
// same REDIS_CONFIG object, and every Worker still opens two Redis clients of its own: its
// main client and the blocking client BullMQ duplicates from it.
import { Worker } from 'bullmq';
import type { Job } from 'bullmq';
import { logger } from '../../../utils/logger';
import { QUEUE_PREFIX, QueueName, REDIS_CONFIG, WORKER_CONCURRENCY } from '../shared/config';
import type { EventEnvelope, ManagedWorker, WorkerHealth } from '../shared/types';
import { summarize, workerName } from '../shared/worker-utils';

export abstract class BaseWorker<T = unknown, R = unknown> implements ManagedWorker {
  readonly name: string;
  protected worker: Worker<EventEnvelope<T>, R> | null = null;
  private processing = 0;
  private lastJobAt: Date | null = null;
  private errorCount = 0;
  private completed = 0;
  private failed = 0;

  constructor(readonly queueName: QueueName) {
    this.name = workerName(queueName);
  }

  protected abstract processJob(job: Job<EventEnvelope<T>>): Promise<R>;

  async start(): Promise<void> {
    if (this.worker) return;
    const worker = new Worker<EventEnvelope<T>, R>(this.queueName, (job) => this.handle(job), {
      connection: REDIS_CONFIG,
      prefix: QUEUE_PREFIX,
      concurrency: WORKER_CONCURRENCY[this.queueName],
      name: this.name,
    });
    worker.on('completed', (job, result) => {
      this.completed++;
      logger.info(`${this.name}: job ${job.id} (${job.name}) completed`, {
        queue: this.queueName,
        jobId: job.id,
        correlationId: job.data?.metadata?.correlationId,
        durationMs: job.finishedOn && job.processedOn ? job.finishedOn - job.processedOn : undefined,
        result: summarize(result),
      });
    });
    worker.on('failed', (job, err) => {
      this.failed++;
      const attempts = Number(job?.opts?.attempts ?? 1);
      const willRetry = !!job && err.name !== 'UnrecoverableError' && job.attemptsMade < attempts;
      const meta = {
        queue: this.queueName,
        jobId: job?.id,
        correlationId: job?.data?.metadata?.correlationId,
        attempt: job ? `${job.attemptsMade}/${attempts}` : undefined,
        reason: err.message,
      };
      if (willRetry) logger.warn(`${this.name}: job ${job?.id} (${job?.name}) failed, will retry`, meta);
      else logger.error(`${this.name}: job ${job?.id} (${job?.name}) failed permanently`, meta);
    });
    worker.on('error', (err) => {
      this.errorCount++;
      logger.error(`${this.name}: worker error`, { queue: this.queueName, error: err.message });
    });
    this.worker = worker;
    await worker.waitUntilReady();
    logger.info(`${this.name} started`, { queue: this.queueName, concurrency: worker.concurrency });
  }

  async stop(): Promise<void> {
    const worker = this.worker;
    if (!worker) return;
    await worker.close();
    this.worker = null;
    logger.info(`${this.name} stopped`, { queue: this.queueName, completed: this.completed, failed: this.failed });
  }

  getHealth(): WorkerHealth {
    return {
      name: this.name,
      queue: this.queueName,
      isRunning: this.worker?.isRunning() ?? false,
      concurrency: this.worker?.concurrency ?? WORKER_CONCURRENCY[this.queueName],
      processing: this.processing,
      lastJobAt: this.lastJobAt ? this.lastJobAt.toISOString() : null,
      errorCount: this.errorCount,
      completed: this.completed,
      failed: this.failed,
    };
  }

  private async handle(job: Job<EventEnvelope<T>>): Promise<R> {
    this.processing++;
    this.lastJobAt = new Date();
    try {
      return await this.processJob(job);
    } catch (err) {
      this.errorCount++;
      throw err;
    } finally {
      this.processing--;
    }
  }
}
