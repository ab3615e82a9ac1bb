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

  // ioredis options that BullMQ code passes. Accepted so that existing connection objects work
  // unchanged, and ignored: the process-wide pair has its own reconnect, ready check and
  // queueing rules (README: "Connection options").
  /** Ignored (BullMQ requires null on its blocking client; the pair never drops a command). */
  maxRetriesPerRequest?: number | null;
  /** Ignored (the pair is ready once Redis answers and has loaded its data). */
  enableReadyCheck?: boolean;
  /** Ignored: use `retry` (a function cannot cross into the native pair). */
  retryStrategy?: (times: number) => number | void | null;
  /** Ignored (commands wait while the pair reconnects). */
  enableOfflineQueue?: boolean;
  /** Ignored (the pair connects on first use). */
  lazyConnect?: boolean;
  /** Ignored. */
  keepAlive?: number;
  /** Ignored. */
  family?: number;
  /** Ignored (the sockets are named queue-native:<role>:<pid>). */
  connectionName?: string;
  /** Ignored. */
  reconnectOnError?: ((err: Error) => boolean | 1 | 2) | null;
  /** Ignored. */
  commandTimeout?: number;
  /** Ignored. */
  autoResubscribe?: boolean;
  /** Ignored. */
  autoResendUnfulfilledCommands?: boolean;
  /** Ignored. */
  noDelay?: boolean;
  /** Ignored. */
  showFriendlyErrorStack?: boolean;
  /** Ignored (the command socket pipelines everything already). */
  enableAutoPipelining?: boolean;
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
  /**
   * Sockets this process holds right now, over every endpoint (0 while reconnecting); `events`
   * is the QueueEvents socket, open only while at least one QueueEvents runs.
   */
  connections: { command: number; blocking: number; events: number };
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

/** Retention of finished jobs, as BullMQ's `KeepJobs`; `removeOnComplete` / `removeOnFail` also take a boolean or a count. */
export interface KeepJobs {
  /** seconds */
  age?: number;
  count?: number;
  /** at most this many removed per finishing call */
  limit?: number;
}

/** BullMQ's progress value. */
export type JobProgress = string | boolean | number | object;

export interface BackoffOptions {
  type: 'fixed' | 'exponential' | (string & {});
  /** ms */
  delay?: number;
  /** 0..1: a random share of the delay is dropped */
  jitter?: number;
}

/**
 * BullMQ's `RepeatStrategy`: the epoch ms of a cron scheduler's next run after `millis`, for
 * the scheduler's repeat options and job name. An answer before `millis` runs the iteration
 * at `millis`; `undefined` schedules nothing more.
 */
export type RepeatStrategy = (millis: number, opts: RepeatOptions, name?: string) => number | undefined | Promise<number | undefined>;

/** A job scheduler's repeat rule (BullMQ's `RepeatOptions`). */
export interface RepeatOptions {
  /** cron pattern */
  pattern?: string;
  /** ms between iterations */
  every?: number;
  /** time zone of the cron pattern */
  tz?: string;
  /** iterations at most */
  limit?: number;
  startDate?: Date | string | number;
  endDate?: Date | string | number;
  /** first iteration now rather than at the first due time */
  immediately?: boolean;
  count?: number;
  offset?: number;
  utc?: boolean;
  jobId?: string;
  key?: string;
}

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
  removeOnComplete?: boolean | number | KeepJobs;
  removeOnFail?: boolean | number | KeepJobs;
  limiter?: { max: number; duration: number };
  settings?: {
    backoffStrategy?: (attemptsMade: number, type: string, err: Error, job: Job) => number | Promise<number>;
    /** The next run of a cron (`pattern`) scheduler's iteration, as in BullMQ; default cron-parser. */
    repeatStrategy?: RepeatStrategy;
  };
  /** stored as the job's processed-by (`pb`) field */
  name?: string;
  /** fail a job (unrecoverably) once it was started more often than this */
  maxStartedAttempts?: number;
  /** ms, default 30000: the longest single wait while rate limited before asking Redis again */
  maximumRateLimitDelay?: number;
  /** ms, default lockDuration / 2: a job's lock is extended every lockRenewTime / 2 */
  lockRenewTime?: number;
  /** never extend the locks of this worker's jobs (they expire after lockDuration) */
  skipLockRenewal?: boolean;
  /** leave the stalled check to other workers */
  skipStalledCheck?: boolean;
  /** Record BullMQ's per-minute completed / failed metrics, keeping this many points (0 = off). */
  metrics?: { maxDataPoints?: number };
  /** Consumer spans `process <queue>` continuing the job's stored context; job metrics on `meter`. */
  telemetry?: Telemetry;
}

/** The fields every job shows (BullMQ's `MinimalJob`). */
export interface MinimalJob<DataType = any, ReturnType = any, NameType extends string = string> {
  readonly id?: string;
  readonly name: NameType;
  data: DataType;
  opts: JobsOptions;
  readonly queueName: string;
  timestamp: number;
  processedOn?: number;
  finishedOn?: number;
  attemptsMade: number;
  attemptsStarted: number;
  progress: JobProgress;
  delay: number;
  failedReason: string;
  stacktrace: string[];
  returnvalue: ReturnType;
  parentKey?: string;
  repeatJobKey?: string;
  updateProgress(progress: JobProgress): Promise<void>;
  log(line: string): Promise<number>;
}

/**
 * A job, whether a processor, an event or a Queue handed it over. `DataType`, `ReturnType` and
 * `NameType` are BullMQ's generics, in BullMQ's order.
 */
/**
 * `queue.client` / `getBackend().client`: an ioredis-shaped client on the process's shared
 * command connection (no socket of its own). Any command as a method (`client.hgetall(key)`,
 * replies shaped as ioredis's), `call(name, ...args)`, and `multi()` / `pipeline()` whose
 * `exec()` gives `[[error, reply], ...]`. Blocking commands and commands that change the
 * connection's state (SELECT, MULTI, CLIENT SETNAME, ...) reject with ERR_INVALID_OPTION.
 */
export interface RawClient {
  readonly status: 'ready';
  call(command: string, ...args: unknown[]): Promise<any>;
  multi(): RawBatch;
  pipeline(): RawBatch;
  quit(): Promise<'OK'>;
  disconnect(): void;
  duplicate(): RawClient;
  [command: string]: any;
}

/** A queued `multi()` / `pipeline()`: command methods chain; `exec()` sends them together. */
export interface RawBatch {
  exec(): Promise<Array<[Error | null, any]>>;
  [command: string]: any;
}

/** BullMQ 6's `getBackend()`, as far as we provide it. */
export interface RawBackend {
  readonly client: Promise<RawClient>;
  /** The server's version once connected ('' before). */
  readonly redisVersion: string;
  readonly databaseType: 'redis';
}

export declare class Job<DataType = any, ReturnType = any, NameType extends string = string>
  implements MinimalJob<DataType, ReturnType, NameType>
{
  /** BullMQ's `new Job(queue, name, data, opts, id)`: a job not stored yet (see addJob). */
  constructor(queue: Queue<any, any, any>, name: NameType, data: DataType, opts?: JobsOptions, id?: string);
  /** Store a job made with `new Job(queue, ...)`; resolves its id (the client argument is unused). */
  addJob(client?: unknown, parentOpts?: { parentKey?: string }): Promise<string>;
  readonly id: string;
  readonly name: NameType;
  data: DataType;
  opts: JobsOptions;
  readonly queueName: string;
  timestamp: number;
  processedOn?: number;
  finishedOn?: number;
  attemptsMade: number;
  attemptsStarted: number;
  stalledCounter: number;
  progress: JobProgress;
  delay: number;
  priority: number;
  token?: string;
  stacktrace: string[];
  failedReason: string;
  returnvalue: ReturnType;
  parentKey?: string;
  parent?: { id: string; queueKey: string };
  repeatJobKey?: string;
  deduplicationId?: string;
  /** The `name` option of the worker that ran the job last. */
  processedBy?: string;
  updateProgress(progress: JobProgress): Promise<void>;
  log(line: string): Promise<number>;
  updateData(data: DataType): Promise<void>;
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
  /** A failed (or completed) job back to waiting, as BullMQ's job.retry(). */
  retry(
    state?: 'failed' | 'completed',
    opts?: { resetAttemptsMade?: boolean; resetAttemptsStarted?: boolean },
  ): Promise<void>;
  getState(): Promise<JobStateName>;
  isCompleted(): Promise<boolean>;
  isFailed(): Promise<boolean>;
  isDelayed(): Promise<boolean>;
  isActive(): Promise<boolean>;
  isWaiting(): Promise<boolean>;
  isWaitingChildren(): Promise<boolean>;
  /** Throws if the job is locked (active) or is a job scheduler's current iteration. */
  /** Remove the pending children not yet processed (not active, not failed), recursively; the job stays. */
  removeUnprocessedChildren(): Promise<void>;
  remove(opts?: { removeChildren?: boolean }): Promise<void>;
  /** A delayed job becomes waiting now. */
  promote(): Promise<void>;
  changePriority(opts: { priority?: number; lifo?: boolean }): Promise<void>;
  /** A delayed job becomes due `delay` ms from now. */
  changeDelay(delay: number): Promise<void>;
  /** 1 when extended, 0 when the lock is gone or held by another token. */
  extendLock(token: string, duration: number): Promise<number>;
  clearLogs(keepLogs?: number): Promise<void>;
  /** BullMQ 5: a failure of this job is final (no retry). */
  discard(): void;
  discarded?: boolean;
  getDependencies(opts?: {
    processed?: DependenciesPage;
    unprocessed?: DependenciesPage;
    ignored?: DependenciesPage;
    failed?: DependenciesPage;
  }): Promise<{
    processed?: Record<string, any>;
    unprocessed?: string[];
    ignored?: Record<string, string>;
    failed?: string[];
    nextProcessedCursor?: number;
    nextUnprocessedCursor?: number;
    nextIgnoredCursor?: number;
    nextFailedCursor?: number;
  }>;
  getDependenciesCount(opts?: {
    processed?: boolean;
    unprocessed?: boolean;
    ignored?: boolean;
    failed?: boolean;
  }): Promise<{ processed?: number; unprocessed?: number; ignored?: number; failed?: number }>;
  getIgnoredChildrenFailures(): Promise<Record<string, string>>;
  getFailedChildrenValues(): Promise<Record<string, string>>;
  /** true when the link to the parent existed and was removed. */
  removeChildDependency(): Promise<boolean>;
  /** true when this job still held its deduplication id and released it. */
  removeDeduplicationKey(): Promise<boolean>;
  /** The return value once completed; rejects with the failedReason, or after `ttl` ms. */
  waitUntilFinished(queueEvents: QueueEvents, ttl?: number): Promise<ReturnType>;
  /** BullMQ's Job.toJSON: the same keys in the same order for a job from the same origin (add, read, worker, flow). */
  toJSON(): Record<string, any>;
  /** Complete (held by `token`); with fetchNext (default true): [fields, id, 0, 0] of the next job taken. */
  moveToCompleted(returnValue: ReturnType, token: string, fetchNext?: boolean): Promise<[Record<string, string>, string, number, number] | undefined>;
  /** Back to waiting without counting the attempt; the rate limiter's remaining window (ms). */
  moveToWait(token?: string): Promise<number>;
  /** Fail this attempt (retried while attempts remain, unless unrecoverable or discarded). */
  moveToFailed(err: Error, token: string, fetchNext?: boolean): Promise<[Record<string, string>, string, number, number] | undefined>;
}

/** BullMQ's processor signature; `signal` aborts on `close(true)`, `cancelJob()` or the job's timeout. */
export type Processor<DataType = any, ResultType = any, NameType extends string = string> = (
  job: Job<DataType, ResultType, NameType>,
  token?: string,
  signal?: AbortSignal,
) => Promise<ResultType> | ResultType;

export declare class Worker<DataType = any, ResultType = any, NameType extends string = string> extends EventEmitter {
  /** BullMQ's `client`: a raw client on the shared command connection (see RawClient). */
  readonly client: Promise<RawClient>;
  /** BullMQ 6's `getBackend()`: its `client` is this object's `client`. */
  getBackend(): RawBackend;
  /** processor null: manual processing (getNextJob + job.moveToCompleted / moveToFailed). */
  constructor(queueName: string, processor: Processor<DataType, ResultType, NameType> | null, opts?: WorkerOptions);
  readonly name: string;
  readonly opts: WorkerOptions;
  concurrency: number;
  run(): Promise<void>;
  waitUntilReady(timeoutMs?: number): Promise<void>;
  pause(doNotWaitActive?: boolean): Promise<void>;
  resume(): Promise<void>;
  isRunning(): boolean;
  /** The blocking wait's timeout (s): until blockUntil (ms) capped at 10 s, or drainDelay; at least the server's minimum. */
  getBlockTimeout(blockUntil: number): number;
  /** One stalled check of the queue now ('stalled' for each job moved back); once per stalledInterval fleet-wide. */
  moveStalledJobsToWait(): Promise<void>;
  /** BullMQ's helper: resolves after `milliseconds` (default 1) or when the controller aborts. */
  delay(milliseconds?: number, abortController?: AbortController): Promise<void>;
  isPaused(): boolean;
  close(force?: boolean): Promise<void>;
  cancelJob(jobId: string, reason?: unknown): boolean;
  cancelAllJobs(reason?: unknown): void;
  /** Rate-limit the queue for `ms`; then throw `Worker.RateLimitError()` from the processor. */
  rateLimit(ms: number): Promise<void>;
  /** BullMQ's factory for the manual rate-limit error. */
  static RateLimitError(): RateLimitError;

  on(event: 'ready' | 'drained' | 'closed' | 'paused' | 'resumed', listener: () => void): this;
  on(event: 'closing', listener: (msg: string) => void): this;
  on(event: 'active', listener: (job: Job<DataType, ResultType, NameType>, prev: string) => void): this;
  on(event: 'completed', listener: (job: Job<DataType, ResultType, NameType>, result: ResultType, prev: string) => void): this;
  on(event: 'failed', listener: (job: Job<DataType, ResultType, NameType> | undefined, error: Error, prev: string) => void): this;
  on(event: 'progress', listener: (job: Job<DataType, ResultType, NameType>, progress: JobProgress) => void): this;
  on(event: 'stalled', listener: (jobId: string, prev: string) => void): this;
  /** Engine errors are `QueueNativeError`s (with `code`); an error thrown by a listener is passed as thrown. */
  on(event: 'error', listener: (error: Error & { code?: string }) => void): this;
  /** The next job locked with `token` (waits up to drainDelay unless block: false), or undefined. */
  getNextJob(token: string, opts?: { block?: boolean }): Promise<Job<DataType, ResultType, NameType> | undefined>;
  /** A random id per worker (BullMQ's `worker.id`, the `bullmq.worker.id` span attribute). */
  readonly id: string;
}

// Queue: the producer and admin side, on the same process-wide connection pair.

/** Options a queue may give every job (BullMQ's `DefaultJobOptions`). */
export interface DefaultJobOptions {
  /** Creation time (ms) instead of now. */
  timestamp?: number;
  /** 0 (none, runs before any prioritized job) .. 2097151; lower runs first. */
  priority?: number;
  /** ms before the job may run (>= 0). */
  delay?: number;
  /** Total tries, the first included (0 or 1: no retry). */
  attempts?: number;
  /** A number is `{ type: 'fixed', delay }`. */
  backoff?: number | BackoffOptions;
  /** Run before the jobs already waiting. */
  lifo?: boolean;
  removeOnComplete?: boolean | number | KeepJobs;
  removeOnFail?: boolean | number | KeepJobs;
  keepLogs?: number;
  stackTraceLimit?: number;
  /** Refuse data larger than this many bytes (of JSON). */
  sizeLimit?: number;
}

/** BullMQ 6.7's deduplication options (`JobsOptions.deduplication`). */
export interface DeduplicationOptions {
  /** The deduplication id: adds with an id that is taken return the job that holds it. */
  id: string;
  /** ms the id stays taken (else until its job finishes or is removed). */
  ttl?: number;
  /** With `ttl`: every deduplicated add restarts the `ttl` window. */
  extend?: boolean;
  /** While the job holding the id is delayed, the add replaces it (removed, event `removed`). */
  replace?: boolean;
  /** While the job holding the id is delayed, it is due again `delay` ms after this add (not with `replace`). */
  reschedule?: boolean;
  /**
   * While the job holding the id is active, the latest such add is kept and becomes a job when
   * the active one completes or fails (the id then has no TTL: `ttl` is ignored).
   */
  keepLastIfActive?: boolean;
}

/** Options of one job (BullMQ's `JobsOptions`). */
export interface JobsOptions extends DefaultJobOptions {
  /** Custom id: not an integer string, no ':' (unless exactly 3 segments). */
  jobId?: string;
  /** Adds with a taken id return the job that holds it (for `ttl` ms, else until it finishes). */
  deduplication?: DeduplicationOptions;
  /** Make the job a child of an existing job; `queue` is the parent's `<prefix>:<queue>`. */
  parent?: { id: string; queue: string };
  failParentOnFailure?: boolean;
  continueParentOnFailure?: boolean;
  ignoreDependencyOnFailure?: boolean;
  removeDependencyOnFailure?: boolean;
  /** BullMQ's: the trace context to continue (`metadata`, set by a traced add) or none (`omitContext`). */
  telemetry?: { metadata?: string; omitContext?: boolean };
}

export interface QueueOptions {
  /** Same meaning as configure(); queues and workers with the same endpoint share one pair. */
  connection?: ConnectionOptions;
  /** default 'bull' */
  prefix?: string;
  /** Merged into every job's options (the job's own options win), as in BullMQ. */
  defaultJobOptions?: DefaultJobOptions;
  /** Producer spans for add / addBulk; the context is stored in the job (`opts.telemetry.metadata`, `tm`). */
  telemetry?: Telemetry;
  /** `repeatStrategy` computes the first run of a cron scheduler in `upsertJobScheduler`. */
  settings?: { repeatStrategy?: RepeatStrategy };
  /** The events stream's cap, written to the queue's meta when constructed (default 10000). */
  streams?: { events?: { maxLen?: number } };
  /** Do not write the queue's meta (events cap, version) when constructed. */
  skipMetasUpdate?: boolean;
}

/** A job's state (BullMQ's `JobState`). */
export type JobState = 'completed' | 'failed' | 'active' | 'delayed' | 'prioritized' | 'waiting' | 'waiting-children';

/** What the getters take: a state, or `wait` / `paused` (BullMQ's `JobType`). */
export type JobType = JobState | 'paused' | 'repeat' | 'wait';

/** @deprecated Every job is a `Job` now; kept for code written against 0.1. */
export type QueueJob<DataType = any, ReturnType = any, NameType extends string = string> = Job<DataType, ReturnType, NameType>;

/** `Queue<Job<D, R, N>>` or `Queue<D, R, N>`, as in BullMQ. */
export type ExtractDataType<DataTypeOrJob, Default> = DataTypeOrJob extends Job<infer D, any, any> ? D : Default;
export type ExtractResultType<DataTypeOrJob, Default> = DataTypeOrJob extends Job<any, infer R, any> ? R : Default;
export type ExtractNameType<DataTypeOrJob, Default extends string> = DataTypeOrJob extends Job<any, any, infer N> ? N : Default;

export declare class Queue<
  DataTypeOrJob = any,
  DefaultResultType = any,
  DefaultNameType extends string = string,
  DataType = ExtractDataType<DataTypeOrJob, DataTypeOrJob>,
  ResultType = ExtractResultType<DataTypeOrJob, DefaultResultType>,
  NameType extends string = ExtractNameType<DataTypeOrJob, DefaultNameType>,
> extends EventEmitter {
  /** BullMQ's `client`: a raw client on the shared command connection (see RawClient). */
  readonly client: Promise<RawClient>;
  /** BullMQ 6's `getBackend()`: its `client` is this object's `client`. */
  getBackend(): RawBackend;
  constructor(name: string, opts?: QueueOptions);
  readonly name: string;
  readonly prefix: string;
  /** `<prefix>:<name>`: what a child's `parent.queue` names. */
  readonly qualifiedName: string;
  readonly opts: QueueOptions;
  readonly defaultJobOptions: DefaultJobOptions;
  waitUntilReady(timeoutMs?: number): Promise<void>;
  add(name: NameType, data: DataType, opts?: JobsOptions): Promise<Job<DataType, ResultType, NameType>>;
  /** One round trip for all of them. */
  addBulk(jobs: Array<{ name: NameType; data: DataType; opts?: JobsOptions }>): Promise<Job<DataType, ResultType, NameType>[]>;
  getJob(id: string): Promise<Job<DataType, ResultType, NameType> | undefined>;
  getJobs(types?: JobType | JobType[], start?: number, end?: number, asc?: boolean): Promise<Job<DataType, ResultType, NameType>[]>;
  /** Oldest first. */
  getWaiting(start?: number, end?: number): Promise<Job<DataType, ResultType, NameType>[]>;
  getActive(start?: number, end?: number): Promise<Job<DataType, ResultType, NameType>[]>;
  /** Soonest first. */
  getDelayed(start?: number, end?: number): Promise<Job<DataType, ResultType, NameType>[]>;
  getPrioritized(start?: number, end?: number): Promise<Job<DataType, ResultType, NameType>[]>;
  getWaitingChildren(start?: number, end?: number): Promise<Job<DataType, ResultType, NameType>[]>;
  /** Newest first. */
  getCompleted(start?: number, end?: number): Promise<Job<DataType, ResultType, NameType>[]>;
  /** Newest first. */
  getFailed(start?: number, end?: number): Promise<Job<DataType, ResultType, NameType>[]>;
  /** Without types: active, completed, delayed, failed, prioritized, waiting, waiting-children. */
  getJobCounts(...types: Array<JobType | JobType[]>): Promise<Record<string, number>>;
  getJobCountByTypes(...types: JobType[]): Promise<number>;
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

  on(event: 'waiting', listener: (job: Job<DataType, ResultType, NameType>) => void): this;
  on(event: 'error', listener: (error: QueueNativeError) => void): this;
  on(event: 'paused' | 'resumed' | 'closed', listener: () => void): this;
  on(event: 'cleaned', listener: (ids: string[], type: string) => void): this;
  /** `<prefix>:<queue>:<type>` */
  toKey(type: string): string;
  getJobState(jobId: string): Promise<JobStateName>;
  /** 1 removed, 0 not removed (locked). */
  remove(jobId: string, opts?: { removeChildren?: boolean }): Promise<number>;
  /** Pauses, then deletes everything; throws with active jobs unless `force`. */
  obliterate(opts?: { force?: boolean; count?: number }): Promise<void>;
  retryJobs(opts?: { state?: 'failed' | 'completed'; count?: number; timestamp?: number }): Promise<void>;
  promoteJobs(opts?: { count?: number }): Promise<void>;
  /** Entries deleted. */
  trimEvents(maxLength: number): Promise<number>;
  getDeduplicationJobId(id: string): Promise<string | null>;
  getDebounceJobId(id: string): Promise<string | null>;
  removeDeduplicationKey(id: string): Promise<number>;
  removeDebounceKey(id: string): Promise<number>;
  removeRateLimitKey(): Promise<number>;
  rateLimit(expireTimeMs: number): Promise<void>;
  getRateLimitTtl(maxJobs?: number): Promise<number>;
  setGlobalConcurrency(concurrency: number): Promise<number>;
  getGlobalConcurrency(): Promise<number | null>;
  removeGlobalConcurrency(): Promise<number>;
  setGlobalRateLimit(max: number, duration: number): Promise<number>;
  getGlobalRateLimit(): Promise<{ max: number; duration: number } | null>;
  removeGlobalRateLimit(): Promise<number>;
  getMeta(): Promise<Record<string, any> & { paused: boolean; concurrency?: number; max?: number; duration?: number; maxLenEvents?: number; version?: string }>;
  getVersion(): Promise<string | null>;
  /** BullMQ's `keys`: the full Redis key of each of this queue's keys, by type ('' is the base). */
  readonly keys: Record<string, string>;
  /**
   * BullMQ's `queue.jobScheduler`: the queue's scheduler methods in BullMQ's JobScheduler
   * argument order; its 'error' events are the queue's.
   */
  readonly jobScheduler: Promise<
    import('events').EventEmitter & {
      waitUntilReady(timeoutMs?: number): Promise<void>;
      upsertJobScheduler(id: string, repeatOpts: RepeatOptions, jobName?: NameType, jobData?: DataType, opts?: JobsOptions): Promise<Job<DataType, ResultType, NameType> | undefined>;
      getScheduler(id: string): Promise<JobSchedulerData | undefined>;
      getJobSchedulers(start?: number, end?: number, asc?: boolean): Promise<JobSchedulerData[]>;
      getSchedulersCount(): Promise<number>;
      removeJobScheduler(id: string): Promise<boolean>;
      /** A job scheduler (not a legacy repeatable job key). */
      isJobScheduler(id: string): Promise<boolean>;
      close(): Promise<void>;
    }
  >;
  /** Whether the global concurrency is reached. */
  isMaxed(): Promise<boolean>;
  /** Set job `jobId`'s progress (emits `progress`), as BullMQ's Queue.updateJobProgress. */
  updateJobProgress(jobId: string, progress: JobProgress): Promise<void>;
  /** Append a log line to job `jobId`; the number of lines kept. */
  addJobLog(jobId: string, logRow: string, keepLogs?: number): Promise<number>;
  /** Delete the `priority` key BullMQ before 5 kept; the number of keys deleted. */
  removeDeprecatedPriorityKey(): Promise<number>;
  getCountsPerPriority(priorities: number[]): Promise<Record<string, number>>;
  /** Delete job keys no state references; the number of jobs removed. */
  removeOrphanedJobs(count?: number, limit?: number): Promise<number>;
  on(event: 'removed', listener: (jobOrId: Job<DataType, ResultType, NameType> | string) => void): this;
  /** Create or replace a scheduler; its next iteration, or undefined when it has no more runs. */
  upsertJobScheduler(
    jobSchedulerId: string,
    repeatOpts: RepeatOptions,
    jobTemplate?: { name?: NameType; data?: DataType; opts?: JobsOptions },
  ): Promise<Job<DataType, ResultType, NameType> | undefined>;
  getJobScheduler(id: string): Promise<JobSchedulerData | undefined>;
  getJobSchedulers(start?: number, end?: number, asc?: boolean): Promise<JobSchedulerData[]>;
  getJobSchedulersCount(): Promise<number>;
  /** true when it existed. */
  removeJobScheduler(jobSchedulerId: string): Promise<boolean>;
  /** BullMQ's metrics (written by workers with `metrics`); data = points start..end. */
  getMetrics(type: 'completed' | 'failed', start?: number, end?: number): Promise<Metrics>;
  /** BullMQ's Prometheus text: job counts per state, completed / failed totals; extra labels. */
  exportPrometheusMetrics(globalVariables?: Record<string, string>): Promise<string>;
  /**
   * The workers serving this queue (ours and BullMQ's), in BullMQ's shape: one entry per
   * Worker (the CLIENT LIST fields of the socket it runs on, `name` = the queue, `rawname` =
   * `<prefix>:<base64 queue>[:w:<worker name>]`).
   */
  getWorkers(): Promise<Array<Record<string, string>>>;
  getWorkersCount(): Promise<number>;
  /** The QueueEvents listening to this queue (ours and BullMQ's), one entry each, as getWorkers. */
  getQueueEvents(): Promise<Array<Record<string, string>>>;
  /**
   * One page of a parent's children (BullMQ's shape): 'processed' items `{ id, v }` (child
   * key, return value; `err` when not JSON), 'pending' items `{ id }`; positions start..end
   * (end -1: all), the children's job hashes in `jobs`, all of them counted in `total`.
   */
  getDependencies(
    parentId: string,
    type: 'processed' | 'pending',
    start?: number,
    end?: number,
  ): Promise<{ items: Array<{ id: string; v?: any; err?: string }>; jobs: Array<Record<string, any>>; total: number }>;
}

// QueueEvents: BullMQ's global events of a queue. Every QueueEvents of the process shares one
// events socket (health().connections.events), open only while at least one is running.

export interface QueueEventsOptions {
  connection?: ConnectionOptions;
  /** default 'bull' */
  prefix?: string;
  /** default true */
  autorun?: boolean;
  /** Read from after this stream id ('0': from the start); default '$' (from now). */
  lastEventId?: string;
  /** ms the shared XREAD blocks for (the smallest among the running QueueEvents); default 10000 */
  blockingTimeout?: number;
}

/**
 * BullMQ's QueueEventsProducer: custom events into a queue's events stream (heard by every
 * QueueEvents of the queue as an event of that name); no socket of its own.
 */
export declare class QueueEventsProducer extends EventEmitter {
  /** BullMQ's `client`: a raw client on the shared command connection (see RawClient). */
  readonly client: Promise<RawClient>;
  /** BullMQ 6's `getBackend()`: its `client` is this object's `client`. */
  getBackend(): RawBackend;
  constructor(name: string, opts?: { connection?: ConnectionOptions; prefix?: string });
  readonly name: string;
  waitUntilReady(timeoutMs?: number): Promise<void>;
  publishEvent<T extends { eventName: string }>(argsObj: T, maxEvents?: number): Promise<void>;
  close(): Promise<void>;
}

export declare class QueueEvents extends EventEmitter {
  /** BullMQ's `client`: a raw client on the shared command connection (see RawClient). */
  readonly client: Promise<RawClient>;
  /** BullMQ 6's `getBackend()`: its `client` is this object's `client`. */
  getBackend(): RawBackend;
  constructor(name: string, opts?: QueueEventsOptions);
  readonly name: string;
  readonly prefix: string;
  readonly qualifiedName: string;
  readonly opts: QueueEventsOptions;
  running: boolean;
  closed: boolean;
  toKey(type: string): string;
  /** Resolves when closed; rejects if already running. */
  run(): Promise<void>;
  /** Resolves once every event written from now on will be delivered. */
  waitUntilReady(): Promise<void>;
  close(): Promise<void>;
  disconnect(): Promise<void>;

  on(event: 'completed', listener: (args: { jobId: string; returnvalue: any; prev?: string }, id: string) => void): this;
  on(event: 'failed', listener: (args: { jobId: string; failedReason: string; prev?: string }, id: string) => void): this;
  on(event: 'active', listener: (args: { jobId: string; prev?: string }, id: string) => void): this;
  on(event: 'waiting', listener: (args: { jobId: string; prev?: string }, id: string) => void): this;
  on(event: 'delayed', listener: (args: { jobId: string; delay: number }, id: string) => void): this;
  on(event: 'progress', listener: (args: { jobId: string; data: number | object }, id: string) => void): this;
  on(event: 'stalled', listener: (args: { jobId: string }, id: string) => void): this;
  on(event: 'removed', listener: (args: { jobId: string; prev: string }, id: string) => void): this;
  on(event: 'added', listener: (args: { jobId: string; name: string }, id: string) => void): this;
  on(event: 'deduplicated', listener: (args: { jobId: string; deduplicationId: string; deduplicatedJobId: string }, id: string) => void): this;
  on(event: 'retries-exhausted', listener: (args: { jobId: string; attemptsMade: string }, id: string) => void): this;
  on(event: 'waiting-children', listener: (args: { jobId: string }, id: string) => void): this;
  on(event: 'paused' | 'resumed', listener: (args: {}, id: string) => void): this;
  on(event: 'cleaned', listener: (args: { count: string }, id: string) => void): this;
  on(event: 'drained', listener: (id: string) => void): this;
  on(event: 'error', listener: (error: QueueNativeError) => void): this;
  on(event: string, listener: (...args: any[]) => void): this;
}

// Types of the rest of BullMQ's Job and Queue surface (lib/surface.js; the methods are on the
// Job and Queue declarations above).

export type JobStateName =
  | 'completed'
  | 'failed'
  | 'delayed'
  | 'prioritized'
  | 'active'
  | 'waiting'
  | 'waiting-children'
  | 'unknown';

export interface DependenciesPage {
  cursor?: number;
  count?: number;
}

export declare namespace Job {
  /** BullMQ's Job.fromId: the job, or undefined. */
  function fromId<DataType = any, ReturnType = any, NameType extends string = string>(
    queue: Queue<DataType, ReturnType, NameType>,
    jobId: string,
  ): Promise<Job<DataType, ReturnType, NameType> | undefined>;
  /** BullMQ's Job.create: `queue.add(name, data, opts)`. */
  function create<DataType = any, ReturnType = any, NameType extends string = string>(
    queue: Queue<DataType, ReturnType, NameType>,
    name: NameType,
    data: DataType,
    opts?: JobsOptions,
  ): Promise<Job<DataType, ReturnType, NameType>>;
  /** BullMQ's Job.createBulk: `queue.addBulk(jobs)`. */
  function createBulk<DataType = any, ReturnType = any, NameType extends string = string>(
    queue: Queue<DataType, ReturnType, NameType>,
    jobs: Array<{ name: NameType; data: DataType; opts?: JobsOptions }>,
  ): Promise<Job<DataType, ReturnType, NameType>[]>;
}

// FlowProducer: trees of jobs (a parent waits in waiting-children for its children), stored as
// BullMQ's FlowProducer stores them, on the process-wide connection pair.

export interface FlowJob {
  name: string;
  queueName: string;
  data?: any;
  /** default: the FlowProducer's prefix */
  prefix?: string;
  opts?: Omit<JobsOptions, 'parent'> & { parent?: { id: string; queue: string } };
  children?: FlowJob[];
}

export interface JobNode {
  job: QueueJob;
  children?: JobNode[];
}

export declare class FlowProducer extends EventEmitter {
  /** BullMQ's `client`: a raw client on the shared command connection (see RawClient). */
  readonly client: Promise<RawClient>;
  /** BullMQ 6's `getBackend()`: its `client` is this object's `client`. */
  getBackend(): RawBackend;
  constructor(opts?: { connection?: ConnectionOptions; prefix?: string });
  readonly opts: { connection?: ConnectionOptions; prefix?: string };
  waitUntilReady(): Promise<void>;
  add(flow: FlowJob, opts?: { queuesOptions?: Record<string, { defaultJobOptions?: JobsOptions }> }): Promise<JobNode>;
  addBulk(flows: FlowJob[]): Promise<JobNode[]>;
  getFlow(opts: { id: string; queueName: string; prefix?: string; depth?: number; maxChildren?: number }): Promise<JobNode | undefined>;
  close(): Promise<void>;
  disconnect(): Promise<void>;
}

// Job schedulers (the methods are on Queue above).


export interface JobSchedulerData {
  key: string;
  name: string;
  next: number | null;
  iterationCount?: number;
  limit?: number;
  startDate?: number;
  endDate?: number;
  tz?: string;
  pattern?: string;
  every?: number;
  offset?: number;
  template?: { data?: any; opts?: JobsOptions };
}

// ---- Observability (BullMQ's metrics; the options and methods are on the declarations above) ----

/** BullMQ's per-minute job metrics of one type, as `Queue.getMetrics` returns them. */
export interface Metrics {
  meta: { count: number; prevTS: number; prevCount: number };
  /** One point per minute, newest first. */
  data: number[];
  /** How many points are stored. */
  count: number;
}

// ---- Observability: the process view ----

/** A histogram as read: cumulative buckets (upper bound `le` in seconds), sum (s), count. */
export interface HistogramSnapshot {
  buckets: Array<{ le: number; count: number }>;
  sum: number;
  count: number;
}

export interface ProcessMetrics {
  /** Sockets open now and reconnects, per endpoint (printable name, no credentials). */
  endpoints: Array<{ endpoint: string; sockets: { command: number; blocking: number }; reconnects: number }>;
  dispatcher: {
    /** Waiting workers woken: their queue's marker popped, or their wait timed out. */
    wakeups: { marker: number; timeout: number };
    /** From a marker wake-up to the worker's fetch reply. */
    wakeToFetchSeconds: HistogramSnapshot;
  };
  /** How late each job lock renewal ran past its due time. */
  lockRenewalLagSeconds: HistogramSnapshot;
  /** Jobs handed to the JavaScript thread and not yet picked up by it. */
  bridgeBacklog: number;
  /** Per queue a worker of this process consumes (counters live as long as the process). */
  queues: Array<{
    prefix: string;
    queue: string;
    inFlight: number;
    /** Processor runs that ended (any outcome). */
    processed: number;
    /** Of which ended in a failure (retried or final). */
    failed: number;
    processingSeconds: HistogramSnapshot;
  }>;
  /** perf_hooks.monitorEventLoopDelay since the previous read (zeros on the first). */
  eventLoopDelaySeconds: { min: number; max: number; mean: number; p50: number; p90: number; p99: number; samples: number };
}

/** The process view (synchronous, cheap: atomic counters in the engine). */
export declare function metrics(): ProcessMetrics;
/** metrics() as Prometheus text: `queue_native_*`, seconds, `_total` counters. */
export declare function metricsText(): string;

// ---- Observability: BullMQ's telemetry option (the interface bullmq-otel implements) ----

/** BullMQ's `Telemetry`: pass `new BullMQOtel(...)` from `bullmq-otel`. */
export interface Telemetry {
  tracer: { startSpan(name: string, options?: { kind: number }, context?: unknown): TelemetrySpan };
  contextManager: {
    active(): unknown;
    with<A extends (...args: any[]) => any>(context: unknown, fn: A): ReturnType<A>;
    getMetadata(context: unknown): string;
    fromMetadata(activeContext: unknown, metadata: string): unknown;
  };
  meter?: {
    createCounter(name: string, options?: { description?: string; unit?: string }): { add(value: number, attributes?: Record<string, unknown>): void };
    createHistogram(name: string, options?: { description?: string; unit?: string }): { record(value: number, attributes?: Record<string, unknown>): void };
  };
}

export interface TelemetrySpan {
  setSpanOnContext(context: unknown): unknown;
  setAttribute(key: string, value: unknown): void;
  setAttributes(attributes: Record<string, unknown>): void;
  addEvent(name: string, attributes?: Record<string, unknown>): void;
  recordException(exception: unknown): void;
  end(): void;
}
