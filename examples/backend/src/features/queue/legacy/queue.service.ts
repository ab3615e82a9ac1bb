// BEFORE the migration: the queue service as the backend has it today, on BullMQ's Queue.
// Kept only for the before/after comparison (QUEUE_IMPL=bullmq). Every Queue below is created
// from the same REDIS_CONFIG object, and every one of them still opens its own Redis client.
import { Queue } from 'bullmq';
import type { Job } from 'bullmq';
import { logger } from '../../../utils/logger';
import { ALL_QUEUES, QUEUE_PREFIX, QueueName, REDIS_CONFIG } from '../shared/config';
import type { EventEnvelope, JobState, JobSummary, QueueHealth, QueueServiceApi } from '../shared/types';

const COUNTED_STATES = ['waiting', 'active', 'completed', 'failed', 'delayed', 'prioritized', 'paused', 'waiting-children'] as const;

function toSummary(job: Job<EventEnvelope>): JobSummary {
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

export class QueueService implements QueueServiceApi {
  private static instance: QueueService | undefined;
  private readonly queues = new Map<QueueName, Queue<EventEnvelope>>();

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
    const jobs = await this.getQueue(name).getJobs([state], start, end);
    return jobs.filter(Boolean).map(toSummary);
  }

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
    return retried;
  }

  async clearQueue(name: QueueName): Promise<void> {
    const queue = this.getQueue(name);
    await queue.drain(true);
    await queue.clean(0, 0, 'completed');
    await queue.clean(0, 0, 'failed');
  }

  async pauseQueue(name: QueueName): Promise<void> {
    await this.getQueue(name).pause();
  }

  async resumeQueue(name: QueueName): Promise<void> {
    await this.getQueue(name).resume();
  }

  async shutdown(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.close()));
    this.queues.clear();
    logger.info('Queue service shut down');
  }
}

export const queueService = QueueService.getInstance();
