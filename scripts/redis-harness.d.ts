// Types of scripts/redis-harness.js, for examples/backend's TypeScript tests.
import type { ChildProcess } from 'child_process';
import type { Redis, RedisOptions } from 'ioredis';

export interface RedisServerOptions {
  /** Default: a free port, picked by start(). */
  port?: number;
  /** Sets requirepass. */
  password?: string;
  /** 'none' (default): no snapshots, no AOF. 'aof': every write fsynced, survives kill(). */
  persistence?: 'none' | 'aof';
  /** Working dir, kept at stop(); default: a temp dir removed at stop(). */
  dir?: string;
  /** More redis-server arguments, after the harness's own. */
  args?: string[];
}

export class RedisServer {
  constructor(opts?: RedisServerOptions);
  readonly host: string;
  /** Set by start() when not given. */
  port: number;
  readonly password: string | undefined;
  dir: string | undefined;
  proc: ChildProcess | null;
  exited: boolean;
  /** The server's stdout and stderr so far. */
  output: string;
  readonly url: string;
  readonly pid: number | undefined;
  start(extra?: string[]): Promise<this>;
  kill(signal?: NodeJS.Signals): Promise<void>;
  restart(opts?: { args?: string[] }): Promise<void>;
  /** Needs ioredis (loaded on first use); disconnected by stop(). */
  client(opts?: RedisOptions): Redis;
  stop(): Promise<void>;
  killSync(): void;
}

export function startRedis(opts?: RedisServerOptions): Promise<RedisServer>;
export function findRedisServer(): string;
export function freePort(): Promise<number>;

export type ClientInfo = Record<string, string>;
export function parseClientList(text: string): ClientInfo[];
export function isNativeClientOf(entry: ClientInfo, pid: number): boolean;
export function ourClients(client: { call(...args: string[]): Promise<unknown> }, pid?: number): Promise<ClientInfo[]>;

type Falsy = undefined | null | false | 0 | '';
export function waitFor<T>(
  predicate: () => Promise<T | Falsy> | T | Falsy,
  opts?: { timeout?: number; interval?: number; what?: string },
): Promise<T>;
export function sleep(ms: number): Promise<void>;
