import { UnrecoverableError } from '@anant/queue-native';
import type { Job } from '@anant/queue-native';
import { PaymentDeclinedError, paymentGateway } from '../../../../integrations/payment-gateway';
import { JobPriority, QueueName } from '../../shared/config';
import { EventType, type EventEnvelope, type PaymentRequestedData, type PaymentResult } from '../../shared/types';
import { causedBy, eventPublisher } from '../event-publisher.service';
import { BaseWorker } from './base.worker';

function isLastAttempt(job: Job): boolean {
  return job.attemptsMade + 1 >= Number(job.opts.attempts ?? 1);
}

/**
 * payments-queue: authorizes the payment of an order. Authorized: the inventory commits the
 * reserved items and the customer gets a receipt. Declined: the attempt fails and is retried
 * (with backoff); after the last attempt the reservation is released and the customer is told.
 */
export class PaymentWorker extends BaseWorker<PaymentRequestedData, PaymentResult> {
  constructor() {
    super(QueueName.PAYMENTS);
  }

  protected async processJob(job: Job<EventEnvelope<PaymentRequestedData>>): Promise<PaymentResult> {
    if (job.data.type !== EventType.PAYMENT_REQUESTED) {
      throw new UnrecoverableError(`${this.name} cannot handle events of type ${job.data.type}`);
    }
    const payment = job.data.data;
    const cause = causedBy(job, this.name);
    let auth;
    try {
      auth = await paymentGateway.authorize(payment);
    } catch (err) {
      if (err instanceof PaymentDeclinedError && isLastAttempt(job)) {
        await Promise.all([
          eventPublisher.publishInventoryReleased({ orderId: payment.orderId, items: payment.items, reason: err.declineCode }, cause),
          eventPublisher.sendEmail(
            {
              to: payment.customerEmail,
              template: 'payment-failed',
              subject: `Payment for order ${payment.orderId} failed`,
              variables: { orderId: payment.orderId, reason: err.declineCode },
            },
            cause,
            JobPriority.HIGH,
          ),
        ]);
      }
      throw err;
    }
    await Promise.all([
      eventPublisher.publishPaymentAuthorized(
        {
          orderId: payment.orderId,
          paymentId: auth.paymentId,
          authorizationCode: auth.authorizationCode,
          amount: payment.amount,
          currency: payment.currency,
          items: payment.items,
        },
        cause,
      ),
      eventPublisher.sendEmail(
        {
          to: payment.customerEmail,
          template: 'payment-receipt',
          subject: `Receipt for order ${payment.orderId}`,
          variables: { orderId: payment.orderId, amount: (payment.amount / 100).toFixed(2), currency: payment.currency },
        },
        cause,
        JobPriority.LOW,
      ),
    ]);
    return { orderId: payment.orderId, paymentId: auth.paymentId, authorizationCode: auth.authorizationCode, amount: payment.amount };
  }
}
