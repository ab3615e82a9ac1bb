import { TEST_CARDS } from '../integrations/payment-gateway';
import type { Currency, OrderCreatedData, OrderItem } from '../features/queue/shared/types';

// Deterministic order traffic for load runs and tests: mostly good orders, plus a fixed share of
// the cases the backend has to cope with.
//   every 40th order   card that is always declined  -> payment retried, then failed for good
//   every 150th order  amount above the card limit    -> payment retried, then failed for good
//   every 25th order   acquirer times out once        -> payment retried once, then completes
//   every 200th order  invalid order data             -> order fails at once (UnrecoverableError)

const CATALOG: Array<Omit<OrderItem, 'quantity'>> = Array.from({ length: 40 }, (_, i) => ({
  sku: `SKU-${String(1000 + i)}`,
  name: ['Basmati rice 5kg', 'Cold-pressed oil 1l', 'Steel tiffin', 'Cotton kurta', 'Masala chai 250g', 'Brass diya', 'Jute bag', 'Ceramic mug'][i % 8],
  unitPrice: 199 + ((i * 7919) % 4800),
}));

const CURRENCIES: Currency[] = ['INR', 'USD', 'EUR'];

/** Small seeded PRNG (mulberry32) so that every run sends the same traffic. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export type OrderKind = 'ok' | 'declined' | 'over-limit' | 'flaky' | 'invalid';

export function kindOf(n: number): OrderKind {
  if (n % 200 === 199) return 'invalid';
  if (n % 150 === 149) return 'over-limit';
  if (n % 40 === 39) return 'declined';
  if (n % 25 === 24) return 'flaky';
  return 'ok';
}

export function makeOrder(n: number, runId = 'run'): OrderCreatedData {
  const random = rng(n + 1);
  const kind = kindOf(n);
  const lines = 1 + Math.floor(random() * 3);
  const items: OrderItem[] = Array.from({ length: lines }, () => {
    const product = CATALOG[Math.floor(random() * CATALOG.length)];
    return { ...product, quantity: 1 + Math.floor(random() * 3) };
  });
  if (kind === 'over-limit') items[0] = { sku: 'SKU-9000', name: 'Gold necklace 22k', quantity: 1, unitPrice: 2_500_000 };
  if (kind === 'invalid') items[0] = { ...items[0], quantity: 0 };
  const card = kind === 'declined' ? TEST_CARDS.declined : kind === 'flaky' ? TEST_CARDS.flaky : n % 2 ? TEST_CARDS.visa : TEST_CARDS.mastercard;
  const customer = `cus_${(n % 997).toString().padStart(4, '0')}`;
  return {
    orderId: `ord-${runId}-${n}`,
    customerId: customer,
    customerEmail: `${customer}@example.com`,
    items,
    currency: CURRENCIES[n % CURRENCIES.length],
    shippingAddress: { line1: `${1 + (n % 120)} MG Road`, city: 'Bengaluru', postalCode: '560001', country: 'IN' },
    payment: { method: 'card', cardToken: card.token, cardLast4: card.last4 },
    createdAt: new Date().toISOString(),
  };
}

/** How many jobs and outcomes `count` orders produce, for checks. */
export function expectedOutcome(count: number): { orders: number; jobs: number; failed: number; unrecoverable: number } {
  let jobs = 0;
  let failed = 0;
  let unrecoverable = 0;
  for (let n = 0; n < count; n++) {
    const kind = kindOf(n);
    if (kind === 'invalid') {
      jobs += 1;
      failed += 1;
      unrecoverable += 1;
    } else {
      // order, reservation, payment, confirmation email, then either (commit + receipt) or
      // (release + payment-failed email)
      jobs += 6;
      if (kind === 'declined' || kind === 'over-limit') failed += 1;
    }
  }
  return { orders: count, jobs, failed, unrecoverable };
}
