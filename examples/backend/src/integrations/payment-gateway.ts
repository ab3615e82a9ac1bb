import { io } from './latency';
import type { Currency } from '../features/queue/shared/types';

/** Test cards of the simulated acquirer (tokens as the checkout hands them over). */
export const TEST_CARDS = {
  visa: { token: 'tok_visa_4242', last4: '4242' },
  mastercard: { token: 'tok_mastercard_4444', last4: '4444' },
  /** Always declined: insufficient funds. */
  declined: { token: 'tok_chargeDeclined_0002', last4: '0002' },
  /** The acquirer times out on the first attempt of each payment, then answers. */
  flaky: { token: 'tok_timeoutOnce_0119', last4: '0119' },
} as const;

/** Authorizations above this amount (minor units) are declined for every card. */
export const AMOUNT_LIMIT = 2_000_000;

export class PaymentDeclinedError extends Error {
  constructor(readonly declineCode: string, message: string) {
    super(`card_declined: ${message}`);
    this.name = 'PaymentDeclinedError';
  }
}

export class GatewayTimeoutError extends Error {
  constructor() {
    super('gateway_timeout: no answer from the acquirer within 3000 ms');
    this.name = 'GatewayTimeoutError';
  }
}

export interface AuthorizationRequest {
  orderId: string;
  amount: number;
  currency: Currency;
  cardToken: string;
  cardLast4: string;
}

export interface Authorization {
  paymentId: string;
  authorizationCode: string;
}

/** Simulated card acquirer (in memory). */
class PaymentGateway {
  private readonly timedOutOnce = new Set<string>();
  private sequence = 0;

  async authorize(req: AuthorizationRequest): Promise<Authorization> {
    await io(3);
    if (req.cardToken === TEST_CARDS.declined.token) {
      throw new PaymentDeclinedError('insufficient_funds', `insufficient funds (card ending ${req.cardLast4})`);
    }
    if (req.amount > AMOUNT_LIMIT) {
      throw new PaymentDeclinedError('amount_limit', `amount over the card's limit (${(AMOUNT_LIMIT / 100).toFixed(2)})`);
    }
    if (req.cardToken === TEST_CARDS.flaky.token && !this.timedOutOnce.has(req.orderId)) {
      this.timedOutOnce.add(req.orderId);
      throw new GatewayTimeoutError();
    }
    this.sequence++;
    return {
      paymentId: `pay_${req.orderId}_${this.sequence.toString(36)}`,
      authorizationCode: (100000 + ((this.sequence * 7919) % 900000)).toString(),
    };
  }
}

export const paymentGateway = new PaymentGateway();
