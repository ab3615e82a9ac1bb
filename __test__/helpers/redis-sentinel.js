'use strict';
// A private Redis Sentinel setup for a test file: a master, one replica and one sentinel
// (quorum 1), each on a free port with its own temp dir; `failover()` promotes the replica.

const { spawn } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const Redis = require('ioredis');
const { startRedis, freePort, waitFor } = require('./redis-server');

async function startSentinelSetup({ name = 'mymaster' } = {}) {
  const master = await startRedis();
  const replica = await startRedis({ args: ['--replicaof', '127.0.0.1', String(master.port)] });
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qn-sentinel-'));
  const conf = path.join(dir, 'sentinel.conf');
  fs.writeFileSync(
    conf,
    [
      `port ${port}`,
      'bind 127.0.0.1',
      `dir ${dir}`,
      `sentinel monitor ${name} 127.0.0.1 ${master.port} 1`,
      `sentinel down-after-milliseconds ${name} 2000`,
      `sentinel failover-timeout ${name} 10000`,
      '',
    ].join('\n'),
  );
  let output = '';
  const proc = spawn('redis-server', [conf, '--sentinel'], { stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout.on('data', (d) => (output += d));
  proc.stderr.on('data', (d) => (output += d));
  const sentinel = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1 });
  sentinel.on('error', () => {});
  const stop = async () => {
    sentinel.disconnect();
    if (proc.exitCode === null) {
      const gone = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGKILL');
      await gone;
    }
    fs.rmSync(dir, { recursive: true, force: true });
    await replica.stop();
    await master.stop();
  };
  try {
    const masterPort = async () => Number((await sentinel.call('SENTINEL', 'get-master-addr-by-name', name))?.[1]);
    await waitFor(async () => (await masterPort().catch(() => 0)) === master.port, { timeout: 10000, what: 'sentinel up' });
    // The sentinel must know the replica, and the replica be in sync, before a failover can pick it.
    const inspect = replica.client();
    await waitFor(async () => /master_link_status:up/.test(await inspect.info('replication')), {
      timeout: 10000,
      what: 'replica in sync',
    });
    await waitFor(async () => {
      const list = await sentinel.call('SENTINEL', 'replicas', name);
      return list.some((r) => {
        const o = {};
        for (let i = 0; i < r.length; i += 2) o[r[i]] = r[i + 1];
        return Number(o.port) === replica.port && o.flags === 'slave' && o['master-link-status'] === 'ok';
      });
    }, { timeout: 20000, interval: 100, what: 'sentinel to see the replica' });
    return {
      name,
      master,
      replica,
      port,
      sentinels: [{ host: '127.0.0.1', port }],
      masterPort,
      /** SENTINEL FAILOVER: the replica becomes master; resolves once the sentinel says so. */
      async failover() {
        await sentinel.call('SENTINEL', 'FAILOVER', name);
        await waitFor(async () => (await masterPort()) === replica.port, { timeout: 30000, interval: 100, what: 'failover' });
        await waitFor(async () => (await inspect.call('ROLE'))[0] === 'master', { timeout: 10000, what: 'replica promoted' });
      },
      output: () => output,
      stop,
    };
  } catch (err) {
    await stop();
    throw new Error(`${err.message}\n${output.slice(-2000)}`);
  }
}

module.exports = { startSentinelSetup };
