import { Worker } from '@anant/queue-native';
import type { Job } from '@anant/queue-native';
import { logger } from '../../../../utils/logger';
import { QUEUE_IMPL, QUEUE_PREFIX, QueueName, REDIS_CONFIG, WORKER_CONCURRENCY } from '../../shared/config';
import type { EventEnvelope, ManagedWorker, WorkerHealth } from '../../shared/types';
import { summarize, workerName } from '../../shared/worker-utils';

/**
 * Base of every queue worker: runs `processJob` for each job of its queue, keeps the numbers
 * `getHealth()` reports, logs completed / failed / error events and rethrows processor errors so
 * that the queue retries the job (attempts and backoff come from the job's options).
 *
 * Runs on @anant/queue-native: every worker and queue of the process shares one command socket
 * and one blocking socket, however many workers run.
 */
abstract class NativeBaseWorker<T = unknown, R = unknown> implements ManagedWorker {
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

  /** Process one job; throw to fail the attempt (an UnrecoverableError fails it for good). */
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
      logger.error(`${this.name}: worker error`, { queue: this.queueName, code: err.code, error: err.message });
    });
    this.worker = worker;
    await worker.waitUntilReady();
    logger.info(`${this.name} started`, { queue: this.queueName, concurrency: worker.concurrency });
  }

  /** Stop fetching, let the jobs in flight finish and write their results, then resolve. */
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
      logger.debug(`${this.name}: job ${job.id} threw`, { error: (err as Error).message });
      throw err; // the queue retries it (or fails it, after the last attempt)
    } finally {
      this.processing--;
    }
  }
}

/**
 * What every worker extends. QUEUE_IMPL=bullmq swaps in the pre-migration BullMQ base
 * (../../legacy/base.worker.ts) so that the same workers run on both for the comparison.
 */
export const BaseWorker: typeof NativeBaseWorker =
  QUEUE_IMPL === 'bullmq'
    ? // eslint-disable-next-line @typescript-eslint/no-var-requires
      (require('../../legacy/base.worker') as { BaseWorker: typeof NativeBaseWorker }).BaseWorker
    : NativeBaseWorker;
export type BaseWorker<T = unknown, R = unknown> = NativeBaseWorker<T, R>;
