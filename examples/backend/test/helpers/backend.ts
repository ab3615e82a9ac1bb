// Loads the backend the way the process does, with the environment a test sets first: the
// feature's config is read once, at import, like in production.
import type { PrivateRedis } from './redis';

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
