'use strict';
// TLS against redis-server's own TLS port, with certificates made here by openssl: a CA that
// verifies (server auth, and mutual TLS with a client certificate), and one that must be
// refused with ERR_TLS and its reason, within the connect timeout (never a hang).
const { execFileSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const qn = require('..');
const { startRedis, freePort, waitFor } = require('./helpers/redis-server');
const { uniqueQueue } = require('./helpers/bull');

let dir;
let redis;
let tlsPort;
const pem = {};

function openssl(...args) {
  execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
}

/** A CA, and a certificate for `cn` (with the SANs 127.0.0.1 and localhost) signed by it. */
function makeCa(name) {
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', `/CN=${name}`,
    '-keyout', `${name}.key`, '-out', `${name}.crt`);
}
function makeCert(ca, name, ext) {
  fs.writeFileSync(path.join(dir, `${name}.ext`), ext);
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${name}`, '-keyout', `${name}.key`, '-out', `${name}.csr`);
  openssl('x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-CAcreateserial',
    '-days', '2', '-extfile', `${name}.ext`, '-out', `${name}.crt`);
}
const read = (f) => fs.readFileSync(path.join(dir, f), 'utf8');

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qn-tls-'));
  makeCa('ca');
  makeCa('other-ca');
  makeCert('ca', 'server', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  makeCert('ca', 'client', 'extendedKeyUsage=clientAuth\n');
  for (const f of ['ca.crt', 'other-ca.crt', 'client.crt', 'client.key']) pem[f] = read(f);
  tlsPort = await freePort();
  redis = await startRedis({
    args: [
      '--tls-port', String(tlsPort),
      '--tls-cert-file', path.join(dir, 'server.crt'),
      '--tls-key-file', path.join(dir, 'server.key'),
      '--tls-ca-cert-file', path.join(dir, 'ca.crt'),
      '--tls-auth-clients', 'optional',
    ],
  });
});

afterAll(async () => {
  await qn.shutdown();
  await redis?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('rediss:// with a CA that verifies: jobs run over TLS (the plain port sees no socket of ours)', async () => {
  const connection = { url: `rediss://127.0.0.1:${tlsPort}`, tls: { ca: pem['ca.crt'] } };
  await qn.connect(connection, 10000);
  const name = uniqueQueue('tls');
  const q = new qn.Queue(name, { connection });
  const done = [];
  const w = new qn.Worker(name, async (job) => done.push(job.data.n), { connection });
  w.on('error', () => {});
  await q.add('j', { n: 1 });
  await q.add('j', { n: 2 });
  await waitFor(() => done.length === 2, { timeout: 10000, what: 'two jobs over TLS' });
  const plain = redis.client();
  const list = await plain.call('CLIENT', 'LIST');
  const ours = list.split('\n').filter((l) => l.includes(`queue-native:`) && l.includes(`:${process.pid}`));
  // CLIENT LIST has no TLS column, but every one of our sockets arrived on the TLS port.
  expect(ours.length).toBe(2);
  expect(ours.every((l) => / laddr=127\.0\.0\.1:(\d+) /.exec(l)[1] === String(tlsPort))).toBe(true);
  await w.close();
  await q.close();
});

test('mutual TLS: a client certificate and key', async () => {
  const connection = {
    host: '127.0.0.1',
    port: tlsPort,
    // Another database: options naming the same host, port, db and user share one pair.
    db: 1,
    tls: { ca: pem['ca.crt'], cert: pem['client.crt'], key: pem['client.key'], servername: '127.0.0.1' },
  };
  await qn.connect(connection, 10000);
  await expect(qn.command(['PING'], connection)).resolves.toBe('PONG');
});

test('a CA that did not sign the server certificate is refused: ERR_TLS with the reason, no hang', async () => {
  const connection = { url: `rediss://127.0.0.1:${tlsPort}/2`, tls: { ca: pem['other-ca.crt'] }, connectTimeout: 2000 };
  const t0 = Date.now();
  const err = await qn.connect(connection, 4000).then(() => null, (e) => e);
  expect(Date.now() - t0).toBeLessThan(6000);
  expect(err).not.toBeNull();
  expect(err.code).toBe('ERR_TLS');
  expect(err.message).toMatch(/certificate|issuer/i);
  expect(qn.health().endpoints.find((e) => e.endpoint === `rediss://127.0.0.1:${tlsPort}/2`)?.lastError?.code).toBe('ERR_TLS');
});

test('plain TCP to the TLS port is not mistaken for a server: it fails, and does not hang', async () => {
  const err = await qn.connect({ host: '127.0.0.1', port: tlsPort, connectTimeout: 1000, db: 3 }, 3000).then(() => null, (e) => e);
  expect(err).not.toBeNull();
  expect(['ERR_REDIS_UNREACHABLE', 'ERR_CONNECTION_LOST', 'ERR_TIMEOUT']).toContain(err.code);
});
