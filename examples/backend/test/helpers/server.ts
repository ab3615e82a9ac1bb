// Runs the backend's entry (src/server.ts) as a child process, the way it runs in production
// (TypeScript compiled in memory by scripts/register.js: no build step needed).
import { spawn, type ChildProcess } from 'child_process';
import path from 'path';
import { waitFor } from './redis';

const root = path.resolve(__dirname, '..', '..');

export interface ServerProcess {
  proc: ChildProcess;
  pid: number;
  port: number;
  output(): string;
  waitForOutput(pattern: RegExp, timeout?: number): Promise<RegExpExecArray>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(): void;
}

export async function startServer(redisPort: number, env: Record<string, string> = {}): Promise<ServerProcess> {
  const proc = spawn(process.execPath, ['-r', path.join(root, 'scripts', 'register.js'), path.join(root, 'src', 'server.ts')], {
    cwd: root,
    env: {
      ...process.env,
      NODE_ENV: 'development',
      REDIS_HOST: '127.0.0.1',
      REDIS_PORT: String(redisPort),
      PORT: '0',
      LOG_LEVEL: 'info',
      QUEUE_IMPL: 'native',
      QUEUE_CONCURRENCY: '10',
      QUEUE_BACKOFF_DELAY_MS: '20',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on('exit', (code, signal) => resolve({ code, signal })),
  );
  let gone = false;
  void exited.then(() => (gone = true));
  const waitForOutput = (pattern: RegExp, timeout = 20_000) =>
    waitFor(
      () => {
        if (gone && !pattern.test(out)) throw new Error(`server exited before printing ${pattern}:\n${out}`);
        return pattern.exec(out);
      },
      { timeout, what: `server output ${pattern}` },
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n--- server output ---\n${out}`);
    });
  const [, port] = await waitForOutput(/HTTP API listening on 127\.0\.0\.1:(\d+)/);
  return {
    proc,
    pid: proc.pid!,
    port: Number(port),
    output: () => out,
    waitForOutput,
    exited,
    kill: () => {
      if (!gone) proc.kill('SIGKILL');
    },
  };
}

export async function http(port: number, method: string, urlPath: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`http://127.0.0.1:${port}${urlPath}`, {
    method,
    headers: body === undefined ? undefined : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
}
