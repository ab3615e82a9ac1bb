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
  /**
   * Redis Cluster seed nodes (any subset; the rest is discovered): `{ host, port }` objects,
   * `'host:port'` strings or `redis://` / `rediss://` URLs. `username`, `password`, `tls` and
   * the timeouts above apply to every node. Every queue needs a hash tag (`prefix: '{bull}'`
   * or a `{tag}` in its name), else `ERR_CROSSSLOT`.
   */
  cluster?: Array<{ host?: string; port?: number } | string>;
  /**
   * Redis Sentinel: the sentinels to ask (any of them) for the master named `name`. Both
   * sockets connect to the master they name and follow it through a failover. `username`,
   * `password`, `tls`, `db` apply to the master; `sentinelUsername` / `sentinelPassword` to the
   * sentinels.
   */
  sentinels?: Array<{ host?: string; port?: number } | string>;
  /** The master's name, with `sentinels`. */
  name?: string;
  sentinelUsername?: string;
  sentinelPassword?: string;
}

export type ConnectionStatus = 'idle' | 'connecting' | 'ready' | 'degraded' | 'reconnecting' | 'closed';

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
/** Throw after `job.moveToWaitingChildren()` resolved true. */
export declare class WaitingChildrenError extends Error {}
/** Throw after `worker.rateLimit(ms)` (message 'bullmq:rateLimitExceeded', as BullMQ's). */
export declare class RateLimitError extends Error {}

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
  /** `<prefix>:<queue>`, as a child's `parent.queue` option names it. */
  readonly queueQualifiedName: string;
  /**
   * true: moved to waiting-children (then throw a WaitingChildrenError); false: no pending
   * child (only `opts.child`, if given), the job stays active.
   */
  moveToWaitingChildren(token?: string, opts?: { child?: { id: string; queue: string } }): Promise<boolean>;
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
  /** Rate-limit the queue for `ms`; then throw `Worker.RateLimitError()` from the processor. */
  rateLimit(ms: number): Promise<void>;
  /** BullMQ's factory for the manual rate-limit error. */
  static RateLimitError(): RateLimitError;

  on(event: 'ready' | 'drained' | 'closed', listener: () => void): this;
  on(event: 'active', listener: (job: Job<T, R>, prev: string) => void): this;
  on(event: 'completed', listener: (job: Job<T, R>, result: R, prev: string) => void): this;
  on(event: 'failed', listener: (job: Job<T, R> | undefined, error: Error, prev: string) => void): this;
  on(event: 'progress', listener: (job: Job<T, R>, progress: number | object) => void): this;
  on(event: 'stalled', listener: (jobId: string, prev: string) => void): this;
  on(event: 'error', listener: (error: QueueNativeError) => void): this;
}

// Queue: the producer and admin side, on the same process-wide connection pair.

export interface JobsOptions {
  /** 0 (none, runs before any prioritized job) .. 2097151; lower runs first. */
  priority?: number;
  /** ms before the job may run (>= 0). */
  delay?: number;
  /** Total tries, the first included (0 or 1: no retry). */
  attempts?: number;
  /** A number is `{ type: 'fixed', delay }`. */
  backoff?: number | { type: 'fixed' | 'exponential' | (string & {}); delay?: number; jitter?: number };
  /** Run before the jobs already waiting. */
  lifo?: boolean;
  /** Custom id: not an integer string, no ':' (unless exactly 3 segments). */
  jobId?: string;
  removeOnComplete?: KeepJobs;
  removeOnFail?: KeepJobs;
  /** Adds with a taken id return the job that holds it (for `ttl` ms, else until it finishes). */
  deduplication?: { id: string; ttl?: number };
  /** Make the job a child of an existing job; `queue` is the parent's `<prefix>:<queue>`. */
  parent?: { id: string; queue: string };
  failParentOnFailure?: boolean;
  continueParentOnFailure?: boolean;
  ignoreDependencyOnFailure?: boolean;
  removeDependencyOnFailure?: boolean;
  /** Creation time (ms) instead of now. */
  timestamp?: number;
  keepLogs?: number;
  stackTraceLimit?: number;
  /** Refuse data larger than this many bytes (of JSON). */
  sizeLimit?: number;
}

export interface QueueOptions {
  /** Same meaning as configure(); queues and workers with the same endpoint share one pair. */
  connection?: ConnectionOptions;
  /** default 'bull' */
  prefix?: string;
  /** Merged into every job's options (the job's own options win), as in BullMQ. */
  defaultJobOptions?: JobsOptions;
}

export type JobState =
  | 'waiting'
  | 'wait'
  | 'paused'
  | 'active'
  | 'prioritized'
  | 'delayed'
  | 'completed'
  | 'failed'
  | 'waiting-children';

/** A job added or read by a Queue. */
export interface QueueJob<T = any, R = any> extends Job<T, R> {
  /** Back to waiting (prioritized if it has a priority), as BullMQ's job.retry(). */
  retry(
    state?: 'failed' | 'completed',
    opts?: { resetAttemptsMade?: boolean; resetAttemptsStarted?: boolean },
  ): Promise<void>;
}

export declare class Queue<T = any, R = any> extends EventEmitter {
  constructor(name: string, opts?: QueueOptions);
  readonly name: string;
  readonly prefix: string;
  /** `<prefix>:<name>`: what a child's `parent.queue` names. */
  readonly qualifiedName: string;
  readonly opts: QueueOptions;
  readonly defaultJobOptions: JobsOptions;
  waitUntilReady(timeoutMs?: number): Promise<void>;
  add(name: string, data: T, opts?: JobsOptions): Promise<QueueJob<T, R>>;
  /** One round trip for all of them. */
  addBulk(jobs: Array<{ name: string; data: T; opts?: JobsOptions }>): Promise<QueueJob<T, R>[]>;
  getJob(id: string): Promise<QueueJob<T, R> | undefined>;
  getJobs(types?: JobState | JobState[], start?: number, end?: number, asc?: boolean): Promise<QueueJob<T, R>[]>;
  /** Oldest first. */
  getWaiting(start?: number, end?: number): Promise<QueueJob<T, R>[]>;
  getActive(start?: number, end?: number): Promise<QueueJob<T, R>[]>;
  /** Soonest first. */
  getDelayed(start?: number, end?: number): Promise<QueueJob<T, R>[]>;
  getPrioritized(start?: number, end?: number): Promise<QueueJob<T, R>[]>;
  getWaitingChildren(start?: number, end?: number): Promise<QueueJob<T, R>[]>;
  /** Newest first. */
  getCompleted(start?: number, end?: number): Promise<QueueJob<T, R>[]>;
  /** Newest first. */
  getFailed(start?: number, end?: number): Promise<QueueJob<T, R>[]>;
  /** Without types: active, completed, delayed, failed, prioritized, waiting, waiting-children. */
  getJobCounts(...types: Array<JobState | JobState[]>): Promise<Record<string, number>>;
  getJobCountByTypes(...types: JobState[]): Promise<number>;
  /** waiting + delayed + prioritized + waiting-children */
  count(): Promise<number>;
  getWaitingCount(): Promise<number>;
  getActiveCount(): Promise<number>;
  getCompletedCount(): Promise<number>;
  getFailedCount(): Promise<number>;
  getDelayedCount(): Promise<number>;
  getPrioritizedCount(): Promise<number>;
  getWaitingChildrenCount(): Promise<number>;
  isPaused(): Promise<boolean>;
  getJobLogs(id: string, start?: number, end?: number, asc?: boolean): Promise<{ logs: string[]; count: number }>;
  /** Global: every worker (ours and BullMQ's, in any process) stops taking jobs. */
  pause(): Promise<void>;
  resume(): Promise<void>;
  /** Remove waiting and prioritized jobs; delayed ones too with `delayed`. */
  drain(delayed?: boolean): Promise<void>;
  /** Remove up to `limit` (0 = all) jobs of `type` older than `grace` ms; the removed ids. */
  clean(
    grace: number,
    limit: number,
    type?: 'completed' | 'failed' | 'delayed' | 'wait' | 'waiting' | 'prioritized' | 'paused' | 'active',
  ): Promise<string[]>;
  /** The queue accepts no more calls; the shared connections stay (shutdown() closes them). */
  close(): Promise<void>;

  on(event: 'waiting', listener: (job: QueueJob<T, R>) => void): this;
  on(event: 'error', listener: (error: QueueNativeError) => void): this;
  on(event: 'paused' | 'resumed' | 'closed', listener: () => void): this;
  on(event: 'cleaned', listener: (ids: string[], type: string) => void): this;
}
