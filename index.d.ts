// Public types of @anant/queue-native (the generated binding.d.ts is internal).

export interface TlsOptions {
  ca?: string;
  cert?: string;
  key?: string;
  /** Must equal the host when given (see README: TLS). */
  servername?: string;
  rejectUnauthorized?: boolean;
}

export interface ConnectionOptions {
  url?: string;
  host?: string;
  port?: number;
  username?: string;
  password?: string;
  db?: number;
  tls?: boolean | TlsOptions;
  /** ms, default 10000 */
  connectTimeout?: number;
  /** Reconnect backoff (ms), jittered; defaults 100 and 2000. */
  retry?: { initialDelay?: number; maxDelay?: number };
}

export type ConnectionStatus = 'idle' | 'connecting' | 'ready' | 'reconnecting' | 'closed';

export interface ErrorInfo {
  code: string;
  message: string;
  /** Unix time, ms */
  at: number;
}

export interface WorkerHealth {
  queue: string;
  concurrency: number;
  active: number;
  completed: number;
  failed: number;
  running: boolean;
  paused: boolean;
}

export interface EndpointHealth {
  endpoint: string;
  status: ConnectionStatus;
  connections: { command: number; blocking: number };
  reconnects: number;
  lastError?: ErrorInfo;
  redisVersion?: string;
}

export interface Health {
  status: ConnectionStatus;
  /** Sockets this process holds right now, over every endpoint (0 while reconnecting). */
  connections: { command: number; blocking: number };
  reconnects: number;
  lastError?: ErrorInfo;
  redisVersion?: string;
  workers: WorkerHealth[];
  /** The same, per endpoint. */
  endpoints: EndpointHealth[];
}

export interface ConnectionEventInfo {
  endpoint: string;
  connection?: 'command' | 'blocking';
  code?: string;
  message?: string;
  /** ms until the next attempt ('reconnecting') */
  delay?: number;
  /** consecutive failed attempts ('reconnecting') */
  attempt?: number;
}

export declare class QueueNativeError extends Error {
  readonly code: string;
  endpoint?: string;
  connection?: 'command' | 'blocking';
}
export declare class UnrecoverableError extends Error {}
export declare class DelayedError extends Error {}

import { EventEmitter } from 'events';

export declare function configure(options?: ConnectionOptions): void;
export declare function connect(options?: ConnectionOptions, timeoutMs?: number): Promise<void>;
export declare function health(): Health;
export declare function shutdown(): Promise<void>;
export declare function onConnection(event: 'error', listener: (err: QueueNativeError) => void): void;
export declare function onConnection(
  event: 'ready' | 'reconnecting' | 'end' | 'warning',
  listener: (info: ConnectionEventInfo) => void,
): void;
export declare function offConnection(event: string, listener: (...args: any[]) => void): void;
export declare function command(args: string[], options?: ConnectionOptions): Promise<unknown>;

export type KeepJobs = boolean | number | { age?: number; count?: number; limit?: number };

export interface WorkerOptions {
  /** Same meaning as configure(); workers with the same endpoint share one pair. */
  connection?: ConnectionOptions;
  /** default 'bull' */
  prefix?: string;
  /** default: QUEUE_CONCURRENCY env, else 1 */
  concurrency?: number;
  /** default true */
  autorun?: boolean;
  /** ms, default 30000 */
  lockDuration?: number;
  /** ms, default 30000 */
  stalledInterval?: number;
  /** default 1 */
  maxStalledCount?: number;
  /** seconds, default 5 */
  drainDelay?: number;
  removeOnComplete?: KeepJobs;
  removeOnFail?: KeepJobs;
  limiter?: { max: number; duration: number };
  settings?: {
    backoffStrategy?: (attemptsMade: number, type: string, err: Error, job: Job) => number | Promise<number>;
  };
  /** stored as the job's processed-by (`pb`) field */
  name?: string;
  /** fail a job (unrecoverably) once it was started more often than this */
  maxStartedAttempts?: number;
  /** leave the stalled check to other workers */
  skipStalledCheck?: boolean;
}

export declare class Job<T = any, R = any> {
  readonly id: string;
  readonly name: string;
  data: T;
  opts: Record<string, any>;
  readonly queueName: string;
  timestamp: number;
  processedOn?: number;
  finishedOn?: number;
  attemptsMade: number;
  attemptsStarted: number;
  stalledCounter: number;
  progress: number | object;
  delay: number;
  priority: number;
  token?: string;
  stacktrace: string[];
  failedReason?: string;
  returnvalue: R | null;
  parentKey?: string;
  parent?: { id: string; queueKey: string };
  repeatJobKey?: string;
  deduplicationId?: string;
  updateProgress(progress: number | object): Promise<void>;
  log(line: string): Promise<number>;
  updateData(data: T): Promise<void>;
  /** Then throw a DelayedError from the processor. */
  moveToDelayed(timestampMs: number, token?: string): Promise<void>;
  getChildrenValues<V = any>(): Promise<Record<string, V>>;
  getDependenciesCount(): Promise<{ processed: number; unprocessed: number }>;
}

export type Processor<T = any, R = any> = (job: Job<T, R>, token?: string, signal?: AbortSignal) => Promise<R> | R;

export declare class Worker<T = any, R = any> extends EventEmitter {
  constructor(queueName: string, processor: Processor<T, R>, opts?: WorkerOptions);
  readonly name: string;
  readonly opts: WorkerOptions;
  concurrency: number;
  run(): Promise<void>;
  waitUntilReady(timeoutMs?: number): Promise<void>;
  pause(doNotWaitActive?: boolean): Promise<void>;
  resume(): void;
  isRunning(): boolean;
  isPaused(): boolean;
  close(force?: boolean): Promise<void>;
  cancelJob(jobId: string, reason?: unknown): boolean;
  cancelAllJobs(reason?: unknown): void;

  on(event: 'ready' | 'drained' | 'closed', listener: () => void): this;
  on(event: 'active', listener: (job: Job<T, R>, prev: string) => void): this;
  on(event: 'completed', listener: (job: Job<T, R>, result: R, prev: string) => void): this;
  on(event: 'failed', listener: (job: Job<T, R> | undefined, error: Error, prev: string) => void): this;
  on(event: 'progress', listener: (job: Job<T, R>, progress: number | object) => void): this;
  on(event: 'stalled', listener: (jobId: string, prev: string) => void): this;
  on(event: 'error', listener: (error: QueueNativeError) => void): this;
}
