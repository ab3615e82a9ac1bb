// The follow-up chain: an order publishes its reservation, payment and confirmation email;
// the payment publishes the inventory commit and the receipt (or, declined, the release and
// the payment-failed email).
import { waitFor } from './helpers/redis';
import { useBackend } from './helpers/backend';
import type { QueueName } from '../src/features/queue/shared/config';
import type { EventType, JobSummary } from '../src/features/queue/shared/types';
import { makeOrder } from '../src/load/orders';

const { be } = useBackend({ QUEUE_CONCURRENCY: '10' });

/** Every job of the order's chain (same correlation id), once the chain has settled. */
async function chainOf(orderId: string, expected: number): Promise<JobSummary[]> {
  return waitFor(
    async () => {
      const jobs: JobSummary[] = [];
      for (const queue of be.ALL_QUEUES) {
        for (const state of ['completed', 'failed'] as const) {
          jobs.push(...(await be.queueService.getJobs(queue, state, 0, -1)).filter((j) => j.data.metadata.correlationId === orderId));
        }
      }
      const health = await be.queueService.getAllQueuesHealth();
      const busy = health.some((h) => h.counts.active + h.counts.waiting + h.counts.prioritized + h.counts.delayed > 0);
      return !busy && jobs.length >= expected ? jobs : undefined;
    },
    { timeout: 15_000, what: `the chain of ${orderId}` },
  );
}

function find(jobs: JobSummary[], queue: QueueName, type: EventType, template?: string): JobSummary {
  const hit = jobs.find(
    (j) => j.data.type === type && (!template || (j.data.data as { template?: string }).template === template) && queueOf(j) === queue,
  );
  if (!hit) throw new Error(`no ${type} ${template ?? ''} in ${queue}: ${JSON.stringify(jobs.map((j) => j.name))}`);
  return hit;
}

const queueByType: Record<string, string> = {
  ORDER_CREATED: 'orders-queue',
  PAYMENT_REQUESTED: 'payments-queue',
  INVENTORY_RESERVED: 'inventory-queue',
  PAYMENT_AUTHORIZED: 'inventory-queue',
  INVENTORY_RELEASED: 'inventory-queue',
  SEND_EMAIL: 'notifications-queue',
};
const queueOf = (j: JobSummary) => queueByType[j.data.type];

test('order -> inventory reservation + payment + confirmation email; payment -> commit + receipt', async () => {
  const { inventoryStore } = await import('../src/integrations/inventory.store');
  const { mailer } = await import('../src/integrations/mailer');
  const order = makeOrder(10, 'chain');
  const orderJobId = await be.eventPublisher.publishOrderCreated(order);
  const jobs = await chainOf(order.orderId, 6);

  expect(jobs).toHaveLength(6);
  expect(jobs.every((j) => !j.failedReason)).toBe(true);
  const orderJob = find(jobs, be.QueueName.ORDERS, be.EventType.ORDER_CREATED);
  expect(orderJob.id).toBe(orderJobId);
  const reserve = find(jobs, be.QueueName.INVENTORY, be.EventType.INVENTORY_RESERVED);
  const payment = find(jobs, be.QueueName.PAYMENTS, be.EventType.PAYMENT_REQUESTED);
  const confirmation = find(jobs, be.QueueName.NOTIFICATIONS, be.EventType.SEND_EMAIL, 'order-confirmation');
  const commit = find(jobs, be.QueueName.INVENTORY, be.EventType.PAYMENT_AUTHORIZED);
  const receipt = find(jobs, be.QueueName.NOTIFICATIONS, be.EventType.SEND_EMAIL, 'payment-receipt');

  // Who caused what.
  for (const j of [reserve, payment, confirmation]) expect(j.data.metadata.causationId).toBe(`orders-queue:${orderJobId}`);
  for (const j of [commit, receipt]) expect(j.data.metadata.causationId).toBe(`payments-queue:${payment.id}`);
  expect(payment.data.data).toMatchObject({ orderId: order.orderId, amount: (orderJob.returnvalue as { total: number }).total });
  expect(reserve.returnvalue).toMatchObject({ action: 'reserved' });
  expect(commit.returnvalue).toMatchObject({ action: 'committed' });
  expect(inventoryStore.isCommitted(order.orderId)).toBe(true);
  expect(mailer.outbox.filter((m) => m.to === order.customerEmail).map((m) => m.subject)).toEqual(
    expect.arrayContaining([`We received your order ${order.orderId}`, `Receipt for order ${order.orderId}`]),
  );
});

test('a declined card: payment retried, then failed with its reason; reservation released, customer told', async () => {
  const { inventoryStore } = await import('../src/integrations/inventory.store');
  const order = makeOrder(39, 'chain'); // every 40th order pays with the declined test card
  expect(order.payment.cardLast4).toBe('0002');
  await be.eventPublisher.publishOrderCreated(order);
  const jobs = await chainOf(order.orderId, 6);

  const payment = find(jobs, be.QueueName.PAYMENTS, be.EventType.PAYMENT_REQUESTED);
  expect(payment.failedReason).toBe('card_declined: insufficient funds (card ending 0002)');
  expect(payment.attemptsMade).toBe(3);
  const release = find(jobs, be.QueueName.INVENTORY, be.EventType.INVENTORY_RELEASED);
  expect(release.data.data).toMatchObject({ orderId: order.orderId, reason: 'insufficient_funds' });
  find(jobs, be.QueueName.NOTIFICATIONS, be.EventType.SEND_EMAIL, 'payment-failed');
  expect(jobs.filter((j) => j.failedReason)).toHaveLength(1);
  expect(inventoryStore.isReserved(order.orderId)).toBe(false);
  expect(inventoryStore.isCommitted(order.orderId)).toBe(false);
});

test('a hundred orders through the whole fan-out', async () => {
  const { expectedOutcome } = await import('../src/load/orders');
  const before = be.getWorkersHealth().reduce((s, w) => s + w.completed, 0);
  const failedBefore = (await be.queueService.getAllQueuesHealth()).reduce((s, q) => s + q.counts.failed, 0);
  await Promise.all(Array.from({ length: 100 }, (_, n) => be.eventPublisher.publishOrderCreated(makeOrder(n, 'bulk'))));
  const expected = expectedOutcome(100);
  await waitFor(
    async () => {
      const failed = (await be.queueService.getAllQueuesHealth()).reduce((s, q) => s + q.counts.failed, 0) - failedBefore;
      const completed = be.getWorkersHealth().reduce((s, w) => s + w.completed, 0) - before;
      return completed + failed === expected.jobs ? { completed, failed } : undefined;
    },
    { timeout: 30_000, what: `${expected.jobs} jobs of 100 orders` },
  ).then(({ failed }) => expect(failed).toBe(expected.failed));
});
