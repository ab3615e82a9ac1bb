// Failed jobs and their reasons, through the queue service (health, listings, retry, clear,
// pause and resume).
import { sleep, waitFor } from './helpers/redis';
import { useBackend } from './helpers/backend';
import { makeOrder } from '../src/load/orders';

const { be } = useBackend({ QUEUE_CONCURRENCY: '10' });

async function failedJob(queue: import('../src/features/queue').QueueName, id: string | null) {
  return waitFor(
    async () => {
      const job = await be.queueService.getJob(queue, id!);
      return job?.finishedOn && job.failedReason ? job : undefined;
    },
    { what: `job ${id} to fail` },
  );
}

test('invalid order data fails at once (UnrecoverableError, no retries) and says why', async () => {
  const order = { ...makeOrder(5, 'bad'), items: [] };
  const id = await be.eventPublisher.publishOrderCreated(order);
  const job = await failedJob(be.QueueName.ORDERS, id);
  expect(job.failedReason).toBe('Invalid order data: items must not be empty');
  expect(job.attemptsMade).toBe(1);
  const listed = await be.queueService.getJobs(be.QueueName.ORDERS, 'failed');
  expect(listed.find((j) => j.id === id)?.failedReason).toBe('Invalid order data: items must not be empty');
});

test('a payment over the card limit is retried with backoff, then fails with its reason', async () => {
  const order = makeOrder(149, 'limit'); // every 150th order is over the limit
  await be.eventPublisher.publishOrderCreated(order);
  const payment = await waitFor(
    async () =>
      (await be.queueService.getJobs(be.QueueName.PAYMENTS, 'failed', 0, -1)).find((j) => j.data.metadata.correlationId === order.orderId),
    { what: 'the failed payment' },
  );
  expect(payment.failedReason).toBe("card_declined: amount over the card's limit (20000.00)");
  expect(payment.attemptsMade).toBe(3);
  // exponential backoff of 20 ms: 20 ms, then 40 ms between the three attempts
  expect(payment.finishedOn! - payment.timestamp).toBeGreaterThanOrEqual(60);
  const health = await be.queueService.getQueueHealth(be.QueueName.PAYMENTS);
  expect(health.counts.failed).toBeGreaterThanOrEqual(1);
  expect(health.isPaused).toBe(false);
});

test('a transient gateway timeout is retried and then completes', async () => {
  const order = makeOrder(24, 'flaky'); // every 25th order's acquirer times out once
  await be.eventPublisher.publishOrderCreated(order);
  const payment = await waitFor(
    async () =>
      (await be.queueService.getJobs(be.QueueName.PAYMENTS, 'completed', 0, -1)).find((j) => j.data.metadata.correlationId === order.orderId),
    { what: 'the completed payment' },
  );
  // Completed on the second attempt; as in BullMQ, the first attempt's reason stays on the job.
  expect(payment.returnvalue).toMatchObject({ orderId: order.orderId });
  expect(payment.attemptsMade).toBeGreaterThanOrEqual(1);
  expect(payment.failedReason ?? '').toMatch(/^(gateway_timeout: .*)?$/);
});

test('retryFailedJobs sends failed jobs back; they fail again with the same reason', async () => {
  const id = await be.eventPublisher.publishPaymentRequested({
    orderId: 'ord-retry-1',
    customerId: 'cus_9',
    customerEmail: 'cus_9@example.com',
    amount: 500,
    currency: 'USD',
    cardToken: 'tok_chargeDeclined_0002',
    cardLast4: '0002',
    items: [{ sku: 'SKU-1003', quantity: 1 }],
  });
  const first = await failedJob(be.QueueName.PAYMENTS, id);
  const retried = await be.queueService.retryFailedJobs(be.QueueName.PAYMENTS);
  expect(retried).toBeGreaterThanOrEqual(1);
  const again = await waitFor(
    async () => {
      const job = await be.queueService.getJob(be.QueueName.PAYMENTS, id!);
      return job?.failedReason && job.finishedOn! > first.finishedOn! ? job : undefined;
    },
    { what: 'the retried job to fail again' },
  );
  expect(again.failedReason).toBe('card_declined: insufficient funds (card ending 0002)');
});

test('pause holds jobs back, resume lets them run', async () => {
  await be.queueService.pauseQueue(be.QueueName.NOTIFICATIONS);
  expect((await be.queueService.getQueueHealth(be.QueueName.NOTIFICATIONS)).isPaused).toBe(true);
  const id = await be.eventPublisher.sendEmail({ to: 'ravi@example.com', template: 'order-confirmation', subject: 'Paused', variables: {} });
  await sleep(300);
  expect((await be.queueService.getJob(be.QueueName.NOTIFICATIONS, id!))?.finishedOn).toBeFalsy();
  await be.queueService.resumeQueue(be.QueueName.NOTIFICATIONS);
  await waitFor(async () => (await be.queueService.getJob(be.QueueName.NOTIFICATIONS, id!))?.finishedOn, { what: 'the email after resume' });
});

test('clearQueue removes finished jobs', async () => {
  const before = await be.queueService.getQueueHealth(be.QueueName.ORDERS);
  expect(before.counts.completed + before.counts.failed).toBeGreaterThan(0);
  await be.queueService.clearQueue(be.QueueName.ORDERS);
  const after = await be.queueService.getQueueHealth(be.QueueName.ORDERS);
  expect(after.counts).toMatchObject({ completed: 0, failed: 0, waiting: 0, delayed: 0, prioritized: 0 });
});
