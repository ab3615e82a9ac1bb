import { UnrecoverableError } from '@anant/queue-native';
import type { Job } from '@anant/queue-native';
import { io } from '../../../../integrations/latency';
import { QueueName } from '../../shared/config';
import { EventType, type EventEnvelope, type OrderCancelledData, type OrderCreatedData, type OrderResult } from '../../shared/types';
import { causedBy, eventPublisher } from '../event-publisher.service';
import { BaseWorker } from './base.worker';

type OrderEvent = OrderCreatedData | OrderCancelledData;

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/** What is wrong with an order, if anything (empty: valid). */
export function validateOrder(order: Partial<OrderCreatedData>): string[] {
  const problems: string[] = [];
  if (!order.orderId) problems.push('orderId is missing');
  if (!order.customerId) problems.push('customerId is missing');
  if (!order.customerEmail || !EMAIL.test(order.customerEmail)) problems.push('customerEmail is not an email address');
  if (!Array.isArray(order.items) || order.items.length === 0) problems.push('items must not be empty');
  (order.items ?? []).forEach((item, i) => {
    if (!item.sku) problems.push(`items[${i}].sku is missing`);
    if (!Number.isInteger(item.quantity) || item.quantity <= 0) problems.push(`items[${i}].quantity must be a positive integer`);
    if (!Number.isInteger(item.unitPrice) || item.unitPrice < 0) problems.push(`items[${i}].unitPrice must be a non-negative integer`);
  });
  if (!order.payment?.cardToken) problems.push('payment.cardToken is missing');
  return problems;
}

export function orderTotal(order: OrderCreatedData): number {
  return order.items.reduce((sum, item) => sum + item.quantity * item.unitPrice, 0);
}

/**
 * orders-queue: accepts new orders and cancellations. An accepted order publishes its inventory
 * reservation, its payment request and the confirmation email; invalid order data fails the
 * job at once (UnrecoverableError: retrying cannot fix it).
 */
export class OrderWorker extends BaseWorker<OrderEvent, OrderResult> {
  constructor() {
    super(QueueName.ORDERS);
  }

  protected async processJob(job: Job<EventEnvelope<OrderEvent>>): Promise<OrderResult> {
    switch (job.data.type) {
      case EventType.ORDER_CREATED:
        return this.orderCreated(job, job.data.data as OrderCreatedData);
      case EventType.ORDER_CANCELLED:
        return this.orderCancelled(job, job.data.data as OrderCancelledData);
      default:
        throw new UnrecoverableError(`${this.name} cannot handle events of type ${job.data.type}`);
    }
  }

  private async orderCreated(job: Job<EventEnvelope<OrderEvent>>, order: OrderCreatedData): Promise<OrderResult> {
    const problems = validateOrder(order);
    if (problems.length > 0) throw new UnrecoverableError(`Invalid order data: ${problems.join('; ')}`);
    const total = orderTotal(order);
    await io(2); // persist the order
    const cause = causedBy(job, this.name);
    const lines = order.items.map(({ sku, quantity }) => ({ sku, quantity }));
    const published = await Promise.all([
      eventPublisher.publishInventoryReserved({ orderId: order.orderId, items: lines }, cause),
      eventPublisher.publishPaymentRequested(
        {
          orderId: order.orderId,
          customerId: order.customerId,
          customerEmail: order.customerEmail,
          amount: total,
          currency: order.currency,
          cardToken: order.payment.cardToken,
          cardLast4: order.payment.cardLast4,
          items: lines,
        },
        cause,
      ),
      eventPublisher.sendEmail(
        {
          to: order.customerEmail,
          template: 'order-confirmation',
          subject: `We received your order ${order.orderId}`,
          variables: { orderId: order.orderId, total: (total / 100).toFixed(2), currency: order.currency, items: order.items.length },
        },
        cause,
      ),
    ]);
    return { orderId: order.orderId, status: 'accepted', total, followUps: published.filter(Boolean).length };
  }

  private async orderCancelled(job: Job<EventEnvelope<OrderEvent>>, data: OrderCancelledData): Promise<OrderResult> {
    if (!data.orderId) throw new UnrecoverableError('Invalid order data: orderId is missing');
    const cause = causedBy(job, this.name);
    const published = await Promise.all([
      eventPublisher.publishInventoryReleased({ orderId: data.orderId, items: data.items, reason: data.reason }, cause),
      eventPublisher.sendEmail(
        {
          to: data.customerEmail,
          template: 'order-cancelled',
          subject: `Your order ${data.orderId} was cancelled`,
          variables: { orderId: data.orderId, reason: data.reason },
        },
        cause,
      ),
    ]);
    return { orderId: data.orderId, status: 'cancelled', total: 0, followUps: published.filter(Boolean).length };
  }
}
