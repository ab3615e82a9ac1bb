// Each worker processes what the event publisher sends it.
import { waitFor } from './helpers/redis';
import { useBackend } from './helpers/backend';
import type { JobSummary } from '../src/features/queue/shared/types';
import { makeOrder } from '../src/load/orders';

const { redis, be } = useBackend({ QUEUE_CONCURRENCY: '10' });

async function settled(queue: import('../src/features/queue').QueueName, id: string | null): Promise<JobSummary> {
  expect(id).toEqual(expect.any(String));
  return waitFor(
    async () => {
      const job = await be.queueService.getJob(queue, id!);
      return job && job.finishedOn ? job : undefined;
    },
    { what: `job ${id} of ${queue} to finish` },
  );
}

test('the publisher adds the envelope { type, data, timestamp, metadata } with the priority and job defaults', async () => {
  const order = makeOrder(1, 'envelope');
  const id = await be.eventPublisher.publishOrderCreated(order);
  const job = await settled(be.QueueName.ORDERS, id);
  expect(job.name).toBe(be.EventType.ORDER_CREATED);
  expect(job.data).toEqual({
    type: be.EventType.ORDER_CREATED,
    data: order,
    timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    metadata: { correlationId: order.orderId, source: 'orders-api', version: 1 },
  });
  // An explicit connection: jest gives each test file its own copy of process.env, which the
  // addon (reading the real environment) does not see.
  const native = new be.native.Queue(be.QueueName.ORDERS, { connection: { host: '127.0.0.1', port: redis.port } });
  const stored = await native.getJob(id!);
  expect(stored?.priority).toBe(be.JobPriority.HIGH);
  expect(stored?.opts).toMatchObject({ attempts: 3, backoff: { type: 'exponential', delay: 20 }, removeOnComplete: { age: 86400, count: 1000 } });
  await native.close();
});

test('order worker: accepts a valid order and reports three follow-ups', async () => {
  const order = makeOrder(2, 'w');
  const job = await settled(be.QueueName.ORDERS, await be.eventPublisher.publishOrderCreated(order));
  expect(job.failedReason).toBeFalsy();
  expect(job.returnvalue).toEqual({ orderId: order.orderId, status: 'accepted', total: expect.any(Number), followUps: 3 });
});

test('payment worker: authorizes a payment request', async () => {
  const id = await be.eventPublisher.publishPaymentRequested({
    orderId: 'ord-pay-1',
    customerId: 'cus_1',
    customerEmail: 'cus_1@example.com',
    amount: 129900,
    currency: 'INR',
    cardToken: 'tok_visa_4242',
    cardLast4: '4242',
    items: [{ sku: 'SKU-1001', quantity: 1 }],
  });
  const job = await settled(be.QueueName.PAYMENTS, id);
  expect(job.returnvalue).toMatchObject({ orderId: 'ord-pay-1', amount: 129900, paymentId: expect.stringMatching(/^pay_/) });
});

test('inventory worker: reserves, commits and releases', async () => {
  const items = [{ sku: 'SKU-1002', quantity: 2 }];
  const reserved = await settled(be.QueueName.INVENTORY, await be.eventPublisher.publishInventoryReserved({ orderId: 'ord-inv-1', items }));
  expect(reserved.returnvalue).toEqual({ orderId: 'ord-inv-1', action: 'reserved', lines: 1 });
  const released = await settled(
    be.QueueName.INVENTORY,
    await be.eventPublisher.publishInventoryReleased({ orderId: 'ord-inv-1', items, reason: 'test' }),
  );
  expect(released.returnvalue).toEqual({ orderId: 'ord-inv-1', action: 'released', lines: 1 });
  const committed = await settled(
    be.QueueName.INVENTORY,
    await be.eventPublisher.publishPaymentAuthorized({
      orderId: 'ord-inv-2',
      paymentId: 'pay_x',
      authorizationCode: '123456',
      amount: 100,
      currency: 'EUR',
      items,
    }),
  );
  expect(committed.returnvalue).toEqual({ orderId: 'ord-inv-2', action: 'committed', lines: 1 });
});

test('notification worker: sends emails and text messages', async () => {
  const { mailer } = await import('../src/integrations/mailer');
  const email = await settled(
    be.QueueName.NOTIFICATIONS,
    await be.eventPublisher.sendEmail({ to: 'asha@example.com', template: 'order-confirmation', subject: 'Hi', variables: { orderId: 'o-1' } }),
  );
  expect(email.returnvalue).toEqual({ channel: 'email', messageId: expect.stringMatching(/^msg_/) });
  const sms = await settled(be.QueueName.NOTIFICATIONS, await be.eventPublisher.sendSms({ to: '+919800000000', body: 'Your order shipped' }));
  expect(sms.returnvalue).toEqual({ channel: 'sms', messageId: expect.stringMatching(/^msg_/) });
  expect(mailer.outbox.map((m) => m.to)).toEqual(expect.arrayContaining(['asha@example.com', '+919800000000']));
});

test('publishing never throws into the caller: a failure is logged and resolves null', async () => {
  const circular: Record<string, unknown> = {};
  circular.self = circular;
  await expect(be.eventPublisher.sendSms({ to: 'x', body: circular as unknown as string })).resolves.toBeNull();
  expect(be.eventPublisher.getStats().failures).toBeGreaterThanOrEqual(1);
});

test('getWorkersHealth: five workers at QUEUE_CONCURRENCY=10 with their numbers', () => {
  const health = be.getWorkersHealth();
  expect(health.map((h) => h.name).sort()).toEqual(['inventory-worker', 'notification-worker', 'order-worker', 'order-worker-2', 'payment-worker']);
  for (const h of health) {
    expect(h).toMatchObject({ isRunning: true, concurrency: 10, processing: expect.any(Number), errorCount: expect.any(Number) });
  }
  expect(health.reduce((s, h) => s + h.completed, 0)).toBeGreaterThanOrEqual(8);
  expect(health.find((h) => h.name === 'payment-worker')?.lastJobAt).toEqual(expect.stringMatching(/^\d{4}-/));
});
