import { UnrecoverableError } from '@anant/queue-native';
import type { Job } from '@anant/queue-native';
import { inventoryStore } from '../../../../integrations/inventory.store';
import { QueueName } from '../../shared/config';
import {
  EventType,
  type EventEnvelope,
  type InventoryReservationData,
  type InventoryResult,
  type PaymentAuthorizedData,
} from '../../shared/types';
import { BaseWorker } from './base.worker';

type InventoryEvent = InventoryReservationData | PaymentAuthorizedData;

/** inventory-queue: holds stock for new orders, sells it once paid, gives it back otherwise. */
export class InventoryWorker extends BaseWorker<InventoryEvent, InventoryResult> {
  constructor() {
    super(QueueName.INVENTORY);
  }

  protected async processJob(job: Job<EventEnvelope<InventoryEvent>>): Promise<InventoryResult> {
    const { orderId, items } = job.data.data;
    switch (job.data.type) {
      case EventType.INVENTORY_RESERVED:
        await inventoryStore.reserve(orderId, items);
        return { orderId, action: 'reserved', lines: items.length };
      case EventType.PAYMENT_AUTHORIZED:
        await inventoryStore.commit(orderId, items);
        return { orderId, action: 'committed', lines: items.length };
      case EventType.INVENTORY_RELEASED:
        return { orderId, action: 'released', lines: await inventoryStore.release(orderId) };
      default:
        throw new UnrecoverableError(`${this.name} cannot handle events of type ${job.data.type}`);
    }
  }
}
