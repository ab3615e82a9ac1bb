import { logger } from '../../../utils/logger';
import { DEFAULT_JOB_OPTIONS, JobPriority, QueueName } from '../shared/config';
import {
  EventType,
  type EventEnvelope,
  type EventMetadata,
  type InventoryReservationData,
  type OrderCancelledData,
  type OrderCreatedData,
  type PaymentAuthorizedData,
  type PaymentRequestedData,
  type PublishRequest,
  type SendEmailData,
  type SendSmsData,
} from '../shared/types';
import { queueService } from './queue.service';

/** Where an event comes from when a worker publishes it: carried into the envelope's metadata. */
export interface Cause {
  correlationId: string;
  causationId?: string;
  source?: string;
}

/**
 * Publishes domain events as jobs. The job's data is the envelope
 * `{ type, data, timestamp, metadata }`; the job's name is the event type. Publishing never
 * throws into the caller: a failure is logged and the helper resolves with `null`.
 */
export class EventPublisherService {
  private published = 0;
  private failures = 0;

  async publish<T>(request: PublishRequest<T>): Promise<string | null> {
    const { type, queue, data, priority = JobPriority.NORMAL } = request;
    const metadata: EventMetadata = {
      correlationId: request.metadata?.correlationId ?? `evt-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`,
      causationId: request.metadata?.causationId,
      source: request.metadata?.source ?? 'api',
      version: 1,
    };
    const envelope: EventEnvelope<T> = { type, data, timestamp: new Date().toISOString(), metadata };
    try {
      const job = await queueService.addJob(queue, type, envelope, {
        ...DEFAULT_JOB_OPTIONS,
        priority,
        ...(request.jobId ? { jobId: request.jobId } : {}),
        ...(request.delay ? { delay: request.delay } : {}),
      });
      this.published++;
      logger.debug(`Published ${type} to ${queue}`, { jobId: job.id, correlationId: metadata.correlationId });
      return job.id;
    } catch (err) {
      this.failures++;
      logger.error(`Failed to publish ${type} to ${queue}`, {
        correlationId: metadata.correlationId,
        error: (err as Error).message,
      });
      return null;
    }
  }

  publishOrderCreated(order: OrderCreatedData, cause?: Cause): Promise<string | null> {
    return this.publish({
      type: EventType.ORDER_CREATED,
      queue: QueueName.ORDERS,
      data: order,
      priority: JobPriority.HIGH,
      metadata: { correlationId: order.orderId, source: 'orders-api', ...cause },
    });
  }

  publishOrderCancelled(data: OrderCancelledData, cause?: Cause): Promise<string | null> {
    return this.publish({
      type: EventType.ORDER_CANCELLED,
      queue: QueueName.ORDERS,
      data,
      priority: JobPriority.HIGH,
      metadata: { correlationId: data.orderId, source: 'orders-api', ...cause },
    });
  }

  publishPaymentRequested(data: PaymentRequestedData, cause?: Cause): Promise<string | null> {
    return this.publish({
      type: EventType.PAYMENT_REQUESTED,
      queue: QueueName.PAYMENTS,
      data,
      priority: JobPriority.CRITICAL,
      metadata: { correlationId: data.orderId, ...cause },
    });
  }

  publishPaymentAuthorized(data: PaymentAuthorizedData, cause?: Cause): Promise<string | null> {
    return this.publish({
      type: EventType.PAYMENT_AUTHORIZED,
      queue: QueueName.INVENTORY,
      data,
      priority: JobPriority.HIGH,
      metadata: { correlationId: data.orderId, ...cause },
    });
  }

  publishInventoryReserved(data: InventoryReservationData, cause?: Cause): Promise<string | null> {
    return this.publish({
      type: EventType.INVENTORY_RESERVED,
      queue: QueueName.INVENTORY,
      data,
      priority: JobPriority.HIGH,
      metadata: { correlationId: data.orderId, ...cause },
    });
  }

  publishInventoryReleased(data: InventoryReservationData, cause?: Cause): Promise<string | null> {
    return this.publish({
      type: EventType.INVENTORY_RELEASED,
      queue: QueueName.INVENTORY,
      data,
      priority: JobPriority.NORMAL,
      metadata: { correlationId: data.orderId, ...cause },
    });
  }

  sendEmail(data: SendEmailData, cause?: Cause, priority = JobPriority.NORMAL): Promise<string | null> {
    return this.publish({
      type: EventType.SEND_EMAIL,
      queue: QueueName.NOTIFICATIONS,
      data,
      priority,
      metadata: { correlationId: cause?.correlationId ?? data.to, ...cause },
    });
  }

  sendSms(data: SendSmsData, cause?: Cause): Promise<string | null> {
    return this.publish({
      type: EventType.SEND_SMS,
      queue: QueueName.NOTIFICATIONS,
      data,
      priority: JobPriority.LOW,
      metadata: { correlationId: cause?.correlationId ?? data.to, ...cause },
    });
  }

  /** Published jobs and failed publishes since start. */
  getStats(): { published: number; failures: number } {
    return { published: this.published, failures: this.failures };
  }
}

export const eventPublisher = new EventPublisherService();

/** The cause to put on events a job's processor publishes: same correlation id, this job as cause. */
export function causedBy(job: { id?: string; queueName: string; data: EventEnvelope<unknown> }, source: string): Cause {
  return {
    correlationId: job.data?.metadata?.correlationId ?? `${job.queueName}-${job.id}`,
    causationId: `${job.queueName}:${job.id}`,
    source,
  };
}
