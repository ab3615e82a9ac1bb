import type { QueueName } from './config';

const instances = new Map<QueueName, number>();

/** `orders-queue` -> `order-worker`, then `order-worker-2`, ... for more instances. */
export function workerName(queueName: QueueName): string {
  const n = (instances.get(queueName) ?? 0) + 1;
  instances.set(queueName, n);
  const base = `${queueName.replace(/-queue$/, '').replace(/s$/, '')}-worker`;
  return n === 1 ? base : `${base}-${n}`;
}

/** A job result as it goes into a log line: short. */
export function summarize(result: unknown): unknown {
  if (result === null || typeof result !== 'object') return result;
  const text = JSON.stringify(result);
  return text.length > 200 ? `${text.slice(0, 200)}…` : result;
}
