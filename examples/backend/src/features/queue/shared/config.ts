// Queue configuration of the backend: queue names, priorities, job defaults, worker
// concurrency and the Redis endpoint. Everything is read from the environment once, at load.

export enum QueueName {
  ORDERS = 'orders-queue',
  PAYMENTS = 'payments-queue',
  INVENTORY = 'inventory-queue',
  NOTIFICATIONS = 'notifications-queue',
}

export const ALL_QUEUES: readonly QueueName[] = Object.values(QueueName);

/** BullMQ priorities: 1 is served first. */
export enum JobPriority {
  CRITICAL = 1,
  HIGH = 2,
  NORMAL = 3,
  LOW = 4,
}

function intFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got "${raw}"`);
  return n;
}

/**
 * Redis connection settings. The same object is handed to every Worker and Queue: with BullMQ
 * (legacy/) that still means one client per object; with @anant/queue-native it means one
 * command socket and one blocking socket for the whole process.
 */
export const REDIS_CONFIG = {
  host: process.env.REDIS_HOST || 'localhost',
  port: intFromEnv('REDIS_PORT', 6379),
  password: process.env.REDIS_PASSWORD || undefined,
  db: intFromEnv('REDIS_DB', 0),
  maxRetriesPerRequest: null,
};

/** Key prefix of every queue (BullMQ's default is 'bull'). */
export const QUEUE_PREFIX = process.env.QUEUE_PREFIX || 'bull';

/**
 * Options of every published job. QUEUE_BACKOFF_DELAY_MS overrides the 2000 ms base of the
 * exponential backoff (the demo sets it low so that its retries finish within the run).
 */
export const DEFAULT_JOB_OPTIONS = {
  attempts: 3,
  backoff: { type: 'exponential' as const, delay: intFromEnv('QUEUE_BACKOFF_DELAY_MS', 2000) },
  removeOnComplete: { age: 24 * 3600, count: 1000 },
  removeOnFail: { age: 7 * 24 * 3600 },
};

/** Jobs each worker runs at once; QUEUE_CONCURRENCY overrides all of them. */
const override = process.env.QUEUE_CONCURRENCY ? intFromEnv('QUEUE_CONCURRENCY', 1) || 1 : undefined;
export const WORKER_CONCURRENCY: Record<QueueName, number> = {
  [QueueName.ORDERS]: override ?? 5,
  [QueueName.PAYMENTS]: override ?? 3,
  [QueueName.INVENTORY]: override ?? 5,
  [QueueName.NOTIFICATIONS]: override ?? 10,
};

/** Worker instances per queue in one process: orders is the busiest queue and runs two. */
export const WORKER_INSTANCES: Record<QueueName, number> = {
  [QueueName.ORDERS]: 2,
  [QueueName.PAYMENTS]: 1,
  [QueueName.INVENTORY]: 1,
  [QueueName.NOTIFICATIONS]: 1,
};

/**
 * Which queue library runs the feature: 'native' (@anant/queue-native, the default) or
 * 'bullmq' (the pre-migration code in ../legacy, kept for the before/after comparison).
 */
export const QUEUE_IMPL: 'native' | 'bullmq' = process.env.QUEUE_IMPL === 'bullmq' ? 'bullmq' : 'native';
if (process.env.QUEUE_IMPL && !['native', 'bullmq'].includes(process.env.QUEUE_IMPL)) {
  throw new Error(`QUEUE_IMPL must be "native" or "bullmq", got "${process.env.QUEUE_IMPL}"`);
}
