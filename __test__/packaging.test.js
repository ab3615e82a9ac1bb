'use strict';
// Packaging: what a consumer sees when the native binary is missing or does not fit the
// platform, and that the package's runtime dependencies hold no build tool.
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { loadFailure, platformTriple, shipped } = require('../lib/platform');
const pkg = require('../package.json');

const root = path.join(__dirname, '..');

describe('platform detection and load errors', () => {
  test('this machine maps to the binary this checkout built', () => {
    expect(platformTriple()).toBe('linux-x64-gnu');
    expect(shipped()).toContain(platformTriple());
  });

  test('musl, macOS and Windows name their own binary', () => {
    expect(platformTriple('linux', 'x64', true)).toBe('linux-x64-musl');
    expect(platformTriple('linux', 'arm64', false)).toBe('linux-arm64-gnu');
    expect(platformTriple('darwin', 'arm64', false)).toBe('darwin-arm64');
    expect(platformTriple('win32', 'x64', false)).toBe('win32-x64');
  });

  test('Alpine gets ERR_UNSUPPORTED_PLATFORM naming the binary and the Docker fix', () => {
    const cause = new Error('Cannot find module ./queue-native.linux-x64-musl.node');
    const err = loadFailure(cause, 'linux-x64-musl', ['linux-x64-gnu']);
    expect(err.name).toBe('QueueNativeError');
    expect(err.code).toBe('ERR_UNSUPPORTED_PLATFORM');
    expect(err.message).toContain('linux-x64-musl');
    expect(err.message).toContain('node node_modules/@anant/queue-native/scripts/build.js');
    expect(err.message).toContain('Docker and Alpine');
    expect(err.cause).toBe(cause);
  });

  test('another unshipped platform gets the same code without the Alpine advice', () => {
    const err = loadFailure(new Error('x'), 'darwin-arm64', ['linux-x64-gnu', 'linux-x64-musl']);
    expect(err.code).toBe('ERR_UNSUPPORTED_PLATFORM');
    expect(err.message).not.toContain('Alpine');
  });

  // A copy of the package (without the built binary), loaded by a fresh process.
  function loadCopy(prepare) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qn-nobinary-'));
    try {
      for (const file of ['index.js', 'binding.js', 'package.json']) fs.copyFileSync(path.join(root, file), path.join(dir, file));
      fs.cpSync(path.join(root, 'lib'), path.join(dir, 'lib'), { recursive: true });
      fs.symlinkSync(path.join(root, 'node_modules'), path.join(dir, 'node_modules'));
      prepare(dir);
      const run = spawnSync(
        process.execPath,
        ['-e', `try { require(${JSON.stringify(dir)}); console.log('{}') } catch (e) { console.log(JSON.stringify({ code: e.code, name: e.name, message: e.message })) }`],
        { encoding: 'utf8', env: { ...process.env, NAPI_RS_NATIVE_LIBRARY_PATH: '' } },
      );
      return JSON.parse(run.stdout.trim());
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }

  test('an install without the binary for this platform gets ERR_UNSUPPORTED_PLATFORM', () => {
    const out = loadCopy(() => {});
    expect(out.code).toBe('ERR_UNSUPPORTED_PLATFORM');
    expect(out.name).toBe('QueueNativeError');
    expect(out.message).toContain('no prebuilt binary for linux-x64-gnu (this install has: none)');
  });

  test('a binary that is there but does not load gets ERR_NATIVE_LOAD with the loader reason', () => {
    const out = loadCopy((dir) => fs.writeFileSync(path.join(dir, 'queue-native.linux-x64-gnu.node'), 'not an ELF file'));
    expect(out.code).toBe('ERR_NATIVE_LOAD');
    expect(out.message).toContain('queue-native.linux-x64-gnu.node');
    expect(out.message).toMatch(/invalid ELF header|file too short/);
  });
});

describe('package manifest', () => {
  test('runtime dependencies hold no build tool', () => {
    const runtime = Object.keys(pkg.dependencies || {});
    expect(runtime).not.toContain('@napi-rs/cli');
    expect(runtime.filter((name) => /napi|typescript|jest|eslint/.test(name))).toEqual([]);
  });

  test('the tarball ships the loader, the facade and the public types', () => {
    for (const file of ['index.js', 'index.d.ts', 'binding.js', 'lib/', 'scripts/build.js']) {
      expect(pkg.files).toContain(file);
    }
  });
});
