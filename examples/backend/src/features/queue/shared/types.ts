import type { JobPriority, QueueName } from './config';

/** Every event the backend publishes; the job's name is its type. */
export enum EventType {
  ORDER_CREATED = 'ORDER_CREATED',
  ORDER_CANCELLED = 'ORDER_CANCELLED',
  PAYMENT_REQUESTED = 'PAYMENT_REQUESTED',
  PAYMENT_AUTHORIZED = 'PAYMENT_AUTHORIZED',
  INVENTORY_RESERVED = 'INVENTORY_RESERVED',
  INVENTORY_RELEASED = 'INVENTORY_RELEASED',
  SEND_EMAIL = 'SEND_EMAIL',
  SEND_SMS = 'SEND_SMS',
}

export interface EventMetadata {
  /** The order (or request) this event belongs to, carried along the chain. */
  correlationId: string;
  /** queue:jobId of the job whose processor published this event, if any. */
  causationId?: string;
  source: string;
  version: 1;
}

/** The data of every job: the event envelope. */
export interface EventEnvelope<T = unknown> {
  type: EventType;
  data: T;
  /** ISO 8601, when it was published */
  timestamp: string;
  metadata: EventMetadata;
}

export interface PublishRequest<T = unknown> {
  type: EventType;
  queue: QueueName;
  data: T;
  priority?: JobPriority;
  metadata?: Partial<EventMetadata>;
  /** Idempotent publishing: a job with this id is added once. */
  jobId?: string;
  delay?: number;
}

// ------------------------------------------------------------------ payloads

export type Currency = 'USD' | 'EUR' | 'INR';

export interface Address {
  line1: string;
  city: string;
  postalCode: string;
  country: string;
}

export interface OrderItem {
  sku: string;
  name: string;
  quantity: number;
  /** minor units (cents) */
  unitPrice: number;
}

export interface OrderCreatedData {
  orderId: string;
  customerId: string;
  customerEmail: string;
  customerPhone?: string;
  items: OrderItem[];
  currency: Currency;
  shippingAddress: Address;
  payment: { method: 'card'; cardToken: string; cardLast4: string };
  createdAt: string;
}

export interface OrderCancelledData {
  orderId: string;
  customerEmail: string;
  reason: string;
  items: Array<Pick<OrderItem, 'sku' | 'quantity'>>;
}

export interface PaymentRequestedData {
  orderId: string;
  customerId: string;
  customerEmail: string;
  /** minor units */
  amount: number;
  currency: Currency;
  cardToken: string;
  cardLast4: string;
  items: Array<Pick<OrderItem, 'sku' | 'quantity'>>;
}

export interface PaymentAuthorizedData {
  orderId: string;
  paymentId: string;
  authorizationCode: string;
  amount: number;
  currency: Currency;
  items: Array<Pick<OrderItem, 'sku' | 'quantity'>>;
}

export interface InventoryReservationData {
  orderId: string;
  items: Array<Pick<OrderItem, 'sku' | 'quantity'>>;
  reason?: string;
}

export type EmailTemplate = 'order-confirmation' | 'payment-receipt' | 'payment-failed' | 'order-cancelled';

export interface SendEmailData {
  to: string;
  template: EmailTemplate;
  subject: string;
  variables: Record<string, string | number>;
}

export interface SendSmsData {
  to: string;
  body: string;
}

// ------------------------------------------------------------------ results and health

export interface OrderResult {
  orderId: string;
  status: 'accepted' | 'cancelled';
  total: number;
  followUps: number;
}

export interface PaymentResult {
  orderId: string;
  paymentId: string;
  authorizationCode: string;
  amount: number;
}

export interface InventoryResult {
  orderId: string;
  action: 'reserved' | 'committed' | 'released';
  lines: number;
}

export interface NotificationResult {
  channel: 'email' | 'sms';
  messageId: string;
}

export interface WorkerHealth {
  name: string;
  queue: QueueName;
  isRunning: boolean;
  concurrency: number;
  /** jobs running right now */
  processing: number;
  lastJobAt: string | null;
  /** failed attempts plus worker errors since start */
  errorCount: number;
  completed: number;
  /** attempts that failed (retried or final) */
  failed: number;
}

/** What workers/index.ts manages; both base classes (native and legacy) implement it. */
export interface ManagedWorker {
  readonly name: string;
  readonly queueName: QueueName;
  start(): Promise<void>;
  stop(): Promise<void>;
  getHealth(): WorkerHealth;
}

export type JobState = 'waiting' | 'active' | 'completed' | 'failed' | 'delayed' | 'prioritized';

export interface QueueHealth {
  name: QueueName;
  isPaused: boolean;
  counts: Record<JobState | 'paused' | 'waiting-children', number>;
}

export interface JobSummary {
  id: string;
  name: string;
  data: EventEnvelope;
  attemptsMade: number;
  timestamp: number;
  processedOn?: number;
  finishedOn?: number;
  failedReason?: string;
  returnvalue?: unknown;
}

/** The queue service's public surface; the native and the legacy service implement it. */
export interface QueueServiceApi {
  addJob<T>(queue: QueueName, name: string, data: EventEnvelope<T>, opts?: Record<string, unknown>): Promise<{ id: string }>;
  getQueueHealth(queue: QueueName): Promise<QueueHealth>;
  getAllQueuesHealth(): Promise<QueueHealth[]>;
  getJob(queue: QueueName, id: string): Promise<JobSummary | null>;
  getJobs(queue: QueueName, state: JobState, start?: number, end?: number): Promise<JobSummary[]>;
  retryFailedJobs(queue: QueueName, limit?: number): Promise<number>;
  clearQueue(queue: QueueName): Promise<void>;
  pauseQueue(queue: QueueName): Promise<void>;
  resumeQueue(queue: QueueName): Promise<void>;
  shutdown(): Promise<void>;
}
