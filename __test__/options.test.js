'use strict';
// Invalid options are rejected synchronously, with a stable code, naming the option,
// and without ever quoting a credential. No Redis needed.
const qn = require('..');

function expectInvalid(fn, option) {
  let thrown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  expect(thrown).toBeInstanceOf(qn.QueueNativeError);
  expect(thrown.code).toBe('ERR_INVALID_OPTION');
  expect(thrown.message).toContain(`\`${option}\``);
  return thrown;
}

describe('connection options', () => {
  afterAll(() => qn.configure(undefined));

  test('bad port', () => {
    expectInvalid(() => qn.configure({ port: 99999 }), 'port');
    expectInvalid(() => qn.configure({ port: 'http' }), 'port');
    expectInvalid(() => qn.configure({ port: 1.5 }), 'port');
  });

  test('non-numeric db', () => {
    expectInvalid(() => qn.configure({ db: 'abc' }), 'db');
    expectInvalid(() => qn.configure({ db: -1 }), 'db');
  });

  test('bad URL scheme and malformed URL', () => {
    expectInvalid(() => qn.configure({ url: 'http://127.0.0.1:6379' }), 'url');
    expectInvalid(() => qn.configure({ url: 'not a url' }), 'url');
    expectInvalid(() => qn.configure({ url: 'redis://127.0.0.1:6379/zero' }), 'url');
  });

  test('unknown TLS field', () => {
    expectInvalid(() => qn.configure({ tls: { rejectUnauthorised: false } }), 'tls.rejectUnauthorised');
    expectInvalid(() => qn.configure({ tls: 'yes' }), 'tls');
  });

  test('unknown option and bad retry', () => {
    expectInvalid(() => qn.configure({ hots: 'localhost' }), 'hots');
    expectInvalid(() => qn.configure({ retry: { initialDelay: -5 } }), 'retry.initialDelay');
    expectInvalid(() => qn.configure({ connectTimeout: 0 }), 'connectTimeout');
    expectInvalid(() => qn.configure('redis://x'), 'configure');
  });

  test('errors never echo credentials', () => {
    const err = expectInvalid(() => qn.configure({ url: 'ftp://user:hunter2secret@host:1' }), 'url');
    expect(err.message).not.toContain('hunter2secret');
    expect(err.stack).not.toContain('hunter2secret');
  });

  test('connect() rejects invalid options before touching the network', async () => {
    await expect(qn.connect({ port: 0 })).rejects.toMatchObject({ code: 'ERR_INVALID_OPTION' });
  });

  test('valid options are accepted, including ioredis-only fields BullMQ code passes', () => {
    expect(() =>
      qn.configure({ host: 'localhost', port: '6380', db: 2, maxRetriesPerRequest: null, enableReadyCheck: false }),
    ).not.toThrow();
    expect(() => qn.configure({ url: 'rediss://:p%40ss@example.com:6380/1', tls: { rejectUnauthorized: false } })).not.toThrow();
  });

  test('onConnection validates its event name', () => {
    expect(() => qn.onConnection('connected', () => {})).toThrow(qn.QueueNativeError);
  });
});
