// Compile-only check of the public types (tsc --noEmit): the calls base.worker.ts makes.
import { configure, connect, health, onConnection, shutdown, QueueNativeError, type Health } from '..';

configure({ host: 'localhost', port: 6379, password: process.env.REDIS_PASSWORD, retry: { initialDelay: 100 } });
configure({ url: 'rediss://redis.example:6380/0', tls: { rejectUnauthorized: true } });
onConnection('error', (err: QueueNativeError) => console.error(err.code, err.message));
onConnection('reconnecting', (info) => console.warn(info.delay, info.attempt));
const h: Health = health();
const sockets: number = h.connections.command + h.connections.blocking;
void sockets;
void connect().then(() => shutdown());
