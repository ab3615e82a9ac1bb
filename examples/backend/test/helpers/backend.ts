// Loads the backend the way the process does, with the environment a test sets first: the
// feature's config is read once, at import, like in production.
import type Redis from 'ioredis';
import { lateBound, openRedis, type PrivateRedis } from './redis';

export type Backend = typeof import('../../src/features/queue') & {
  workers: typeof import('../../src/features/queue/services/workers');
  native: typeof import('@anant/queue-native');
};

export async function loadBackend(redis: PrivateRedis, env: Record<string, string> = {}): Promise<Backend> {
  Object.assign(process.env, {
    REDIS_HOST: '127.0.0.1',
    REDIS_PORT: String(redis.port),
    QUEUE_IMPL: 'native',
    QUEUE_BACKOFF_DELAY_MS: '20',
    SIMULATED_LATENCY_MS: '0',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    ...env,
  });
  const feature = await import('../../src/features/queue');
  const workers = await import('../../src/features/queue/services/workers');
  const native = await import('@anant/queue-native');
  // The addon reads the real environment, not jest's per-file copy of process.env: point its
  // default endpoint at the private server too, so that nothing in a test reaches 6379.
  native.configure({ host: '127.0.0.1', port: redis.port });
  return { ...feature, workers, native };
}

/**
 * The hooks of a test file on the backend: beforeAll starts a private server, loads the
 * backend on it with `env` and (unless `startWorkers: false`) starts its workers; afterAll
 * stops the workers, the queue service and the server, in that order.
 */
export function useBackend(
  env: Record<string, string> = {},
  { startWorkers = true } = {},
): { redis: PrivateRedis; inspect: Redis; be: Backend } {
  let opened: { redis: PrivateRedis; inspect: Redis; be?: Backend } | undefined;
  beforeAll(async () => {
    opened = await openRedis();
    opened.be = await loadBackend(opened.redis, env);
    if (startWorkers) await opened.be.startWorkers();
  });
  afterAll(async () => {
    await opened?.be?.stopWorkers();
    await opened?.be?.queueService.shutdown();
    await opened?.redis.stop();
  });
  return {
    redis: lateBound(() => opened?.redis, 'redis'),
    inspect: lateBound(() => opened?.inspect, 'inspect'),
    be: lateBound(() => opened?.be, 'the backend'),
  };
}
