// A backend's queue service in the style of BullMQ's docs: a Map of queues, default job options,
// typed adds, counts. Compiles against BullMQ and against this package (see base-worker.ts).
import {
  Queue,
  Worker,
  Job,
  type QueueOptions,
  type JobsOptions,
  type DefaultJobOptions,
  type BackoffOptions,
  type KeepJobs,
  type JobType,
  type RepeatOptions,
} from 'queue-under-test';
import { connection, type EventEnvelope } from './base-worker';

const backoff: BackoffOptions = { type: 'exponential', delay: 1000 };
const keep: KeepJobs = { age: 3600, count: 1000 };

export const defaultJobOptions: DefaultJobOptions = {
  attempts: 3,
  backoff,
  removeOnComplete: keep,
  removeOnFail: 5000,
};

const queueOptions: QueueOptions = { connection, prefix: 'bull', defaultJobOptions };

export const hourly: RepeatOptions = { pattern: '0 * * * *', tz: 'UTC' };

export class QueueService {
  private readonly queues = new Map<string, Queue>();
  private readonly typed = new Map<string, Queue<EventEnvelope>>();

  getQueue(name: string): Queue {
    let queue = this.queues.get(name);
    if (!queue) {
      queue = new Queue(name, queueOptions);
      queue.on('error', (err: Error) => console.error(name, err.message));
      this.queues.set(name, queue);
    }
    return queue;
  }

  getTyped(name: string): Queue<EventEnvelope> {
    let queue = this.typed.get(name);
    if (!queue) {
      queue = new Queue<EventEnvelope>(name, { connection });
      this.typed.set(name, queue);
    }
    return queue;
  }

  async publish<T>(queue: string, name: string, data: EventEnvelope<T>, opts: JobsOptions = {}): Promise<string | undefined> {
    const job: Job<EventEnvelope> = await this.getTyped(queue).add(name, data, {
      priority: 1,
      delay: 0,
      jobId: `${name}-${Date.now()}`,
      ...opts,
    });
    return job.id;
  }

  async publishMany(queue: string, events: EventEnvelope[]): Promise<number> {
    const jobs = await this.getTyped(queue).addBulk(events.map((data) => ({ name: data.type, data, opts: { lifo: false } })));
    return jobs.length;
  }

  async stats(name: string): Promise<Record<string, number>> {
    const types: JobType[] = ['waiting', 'active', 'completed', 'failed', 'delayed', 'prioritized'];
    return this.getQueue(name).getJobCounts(...types);
  }

  async failedJobs(name: string): Promise<Array<{ id?: string; reason: string }>> {
    const jobs = await this.getQueue(name).getFailed(0, 9);
    return jobs.map((job) => ({ id: job.id, reason: job.failedReason }));
  }

  async retryFailed(name: string): Promise<void> {
    const jobs = await this.getQueue(name).getJobs(['failed'], 0, 100, true);
    await Promise.all(jobs.map((job) => job.retry('failed')));
  }

  async waitingCount(name: string): Promise<number> {
    return this.getQueue(name).getWaitingCount();
  }

  async pauseAll(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.pause()));
  }

  async close(): Promise<void> {
    await Promise.all([...this.queues.values(), ...this.typed.values()].map((q) => q.close()));
  }
}

// A job module with a queue of its own, typed by job name.
type MailName = 'welcome' | 'reset';
export const mailQueue = new Queue<{ to: string }, void, MailName>('notifications-queue', { connection });
export async function sendWelcome(to: string): Promise<Job<{ to: string }, void, MailName>> {
  return mailQueue.add('welcome', { to }, { attempts: 5, backoff: { type: 'fixed', delay: 500 } });
}

// A calendar-driven scheduler: the queue's and the worker's repeat strategy (BullMQ's
// `settings.repeatStrategy`), async, reading the repeat options and the job name.
const businessDays = async (millis: number, opts: RepeatOptions, name?: string): Promise<number | undefined> => {
  if (name === 'retired' || !opts.pattern) return undefined;
  const next = new Date(millis + 86_400_000);
  while (next.getUTCDay() === 0 || next.getUTCDay() === 6) next.setUTCDate(next.getUTCDate() + 1);
  return next.getTime();
};
export const reportQueue = new Queue('reports-queue', { connection, settings: { repeatStrategy: businessDays } });
export async function scheduleReport(): Promise<void> {
  await reportQueue.upsertJobScheduler('daily-report', { pattern: '0 6 * * *', tz: 'UTC' }, { name: 'report', data: {} });
}
export const reportWorker = new Worker('reports-queue', async () => 'sent', {
  connection,
  settings: { repeatStrategy: businessDays, backoffStrategy: (attemptsMade: number) => attemptsMade * 1000 },
});
