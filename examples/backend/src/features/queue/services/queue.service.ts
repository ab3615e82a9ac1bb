import { Queue, shutdown as shutdownQueueNative } from '@anant/queue-native';
import type { Job } from '@anant/queue-native';
import { logger } from '../../../utils/logger';
import { ALL_QUEUES, QUEUE_IMPL, QUEUE_PREFIX, QueueName, REDIS_CONFIG } from '../shared/config';
import type { EventEnvelope, JobState, JobSummary, QueueHealth, QueueServiceApi } from '../shared/types';

const COUNTED_STATES = ['waiting', 'active', 'completed', 'failed', 'delayed', 'prioritized', 'paused', 'waiting-children'] as const;

export function toSummary(job: Job<EventEnvelope>): JobSummary {
  return {
    id: String(job.id),
    name: job.name,
    data: job.data,
    attemptsMade: job.attemptsMade,
    timestamp: job.timestamp,
    processedOn: job.processedOn,
    finishedOn: job.finishedOn,
    failedReason: job.failedReason,
    returnvalue: job.returnvalue ?? undefined,
  };
}

/**
 * Producer and admin side of the queues. One instance per process; queues are created on first
 * use and all of them share the process's connection pair with the workers.
 */
export class QueueService implements QueueServiceApi {
  private static instance: QueueService | undefined;
  private readonly queues = new Map<QueueName, Queue<EventEnvelope>>();
  private closing: Promise<void> | null = null;

  private constructor() {}

  static getInstance(): QueueService {
    if (!QueueService.instance) QueueService.instance = new QueueService();
    return QueueService.instance;
  }

  getQueue(name: QueueName): Queue<EventEnvelope> {
    let queue = this.queues.get(name);
    if (!queue) {
      queue = new Queue<EventEnvelope>(name, { connection: REDIS_CONFIG, prefix: QUEUE_PREFIX });
      queue.on('error', (err: Error) => logger.error(`Queue ${name} error`, { queue: name, error: err.message }));
      this.queues.set(name, queue);
      logger.debug(`Queue ${name} created`);
    }
    return queue;
  }

  async addJob<T>(queue: QueueName, name: string, data: EventEnvelope<T>, opts: Record<string, unknown> = {}): Promise<{ id: string }> {
    const job = await this.getQueue(queue).add(name, data as EventEnvelope, opts);
    return { id: String(job.id) };
  }

  async getQueueHealth(name: QueueName): Promise<QueueHealth> {
    const queue = this.getQueue(name);
    const [counts, isPaused] = await Promise.all([queue.getJobCounts(...COUNTED_STATES), queue.isPaused()]);
    const full = Object.fromEntries(COUNTED_STATES.map((s) => [s, counts[s] ?? 0])) as QueueHealth['counts'];
    return { name, isPaused, counts: full };
  }

  getAllQueuesHealth(): Promise<QueueHealth[]> {
    return Promise.all(ALL_QUEUES.map((name) => this.getQueueHealth(name)));
  }

  async getJob(name: QueueName, id: string): Promise<JobSummary | null> {
    const job = await this.getQueue(name).getJob(id);
    return job ? toSummary(job) : null;
  }

  async getJobs(name: QueueName, state: JobState, start = 0, end = 49): Promise<JobSummary[]> {
    const queue = this.getQueue(name);
    let jobs: Job<EventEnvelope>[];
    switch (state) {
      case 'waiting':
        jobs = await queue.getWaiting(start, end);
        break;
      case 'active':
        jobs = await queue.getActive(start, end);
        break;
      case 'completed':
        jobs = await queue.getCompleted(start, end);
        break;
      case 'failed':
        jobs = await queue.getFailed(start, end);
        break;
      case 'delayed':
        jobs = await queue.getDelayed(start, end);
        break;
      case 'prioritized':
        jobs = await queue.getPrioritized(start, end);
        break;
      default:
        throw new Error(`unknown job state ${String(state)}`);
    }
    return jobs.filter(Boolean).map(toSummary);
  }

  /** Move failed jobs back to waiting; returns how many were retried. */
  async retryFailedJobs(name: QueueName, limit = 100): Promise<number> {
    const failed = await this.getQueue(name).getFailed(0, limit - 1);
    let retried = 0;
    for (const job of failed) {
      try {
        await job.retry();
        retried++;
      } catch (err) {
        logger.warn(`Could not retry job ${job.id} of ${name}`, { error: (err as Error).message });
      }
    }
    logger.info(`Retried ${retried} failed job(s) of ${name}`);
    return retried;
  }

  /** Remove waiting and delayed jobs and every finished job of the queue. */
  async clearQueue(name: QueueName): Promise<void> {
    const queue = this.getQueue(name);
    await queue.drain(true);
    await queue.clean(0, 0, 'completed');
    await queue.clean(0, 0, 'failed');
    logger.info(`Queue ${name} cleared`);
  }

  async pauseQueue(name: QueueName): Promise<void> {
    await this.getQueue(name).pause();
    logger.info(`Queue ${name} paused`);
  }

  async resumeQueue(name: QueueName): Promise<void> {
    await this.getQueue(name).resume();
    logger.info(`Queue ${name} resumed`);
  }

  /** Close the queues, then the process's connection pair. Stop the workers first. */
  shutdown(): Promise<void> {
    if (!this.closing) {
      this.closing = (async () => {
        await Promise.all([...this.queues.values()].map((q) => q.close()));
        this.queues.clear();
        await shutdownQueueNative();
        logger.info('Queue service shut down');
      })().finally(() => {
        this.closing = null;
      });
    }
    return this.closing;
  }
}

/**
 * The process's queue service. QUEUE_IMPL=bullmq swaps in the pre-migration BullMQ service
 * (../legacy) for the before/after comparison; nothing else in the backend changes.
 */
export const queueService: QueueServiceApi =
  QUEUE_IMPL === 'bullmq'
    ? // eslint-disable-next-line @typescript-eslint/no-var-requires
      (require('../legacy/queue.service') as typeof import('../legacy/queue.service')).queueService
    : QueueService.getInstance();
