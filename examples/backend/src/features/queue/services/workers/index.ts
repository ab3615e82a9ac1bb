import { logger } from '../../../../utils/logger';
import { ALL_QUEUES, QUEUE_IMPL, WORKER_INSTANCES, QueueName } from '../../shared/config';
import type { ManagedWorker, WorkerHealth } from '../../shared/types';
import { InventoryWorker } from './inventory.worker';
import { NotificationWorker } from './notification.worker';
import { OrderWorker } from './order.worker';
import { PaymentWorker } from './payment.worker';

const FACTORIES: Record<QueueName, () => ManagedWorker> = {
  [QueueName.ORDERS]: () => new OrderWorker(),
  [QueueName.PAYMENTS]: () => new PaymentWorker(),
  [QueueName.INVENTORY]: () => new InventoryWorker(),
  [QueueName.NOTIFICATIONS]: () => new NotificationWorker(),
};

let workers: ManagedWorker[] = [];
let starting: Promise<ManagedWorker[]> | null = null;

/** Start every worker of the process (WORKER_INSTANCES per queue). Idempotent. */
export function startWorkers(): Promise<ManagedWorker[]> {
  if (!starting) {
    starting = (async () => {
      const created = ALL_QUEUES.flatMap((queue) => Array.from({ length: WORKER_INSTANCES[queue] }, () => FACTORIES[queue]()));
      workers = created;
      try {
        await Promise.all(created.map((w) => w.start()));
      } catch (err) {
        logger.error('Workers failed to start', { error: (err as Error).message });
        await Promise.allSettled(created.map((w) => w.stop()));
        workers = [];
        starting = null;
        throw err;
      }
      logger.info('All workers started successfully', { workers: created.length, impl: QUEUE_IMPL });
      for (const w of created) {
        const h = w.getHealth();
        logger.info(`  - ${h.name} on ${h.queue} (concurrency ${h.concurrency})`);
      }
      return created;
    })();
  }
  return starting;
}

/** Stop every worker: no new jobs are fetched, jobs in flight finish and are written. */
export async function stopWorkers(): Promise<void> {
  if (starting) await starting.catch(() => undefined);
  const current = workers;
  workers = [];
  starting = null;
  await Promise.all(current.map((w) => w.stop()));
  if (current.length > 0) logger.info('All workers stopped', { workers: current.length });
}

export function getWorkersHealth(): WorkerHealth[] {
  return workers.map((w) => w.getHealth());
}

export { OrderWorker, PaymentWorker, InventoryWorker, NotificationWorker };
