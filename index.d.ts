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
