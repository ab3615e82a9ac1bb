'use strict';
// `npm test`: builds the testing addon when it is missing or older than the Rust sources, runs
// jest, then prints one plain summary line (`N passed, N failed`) that CI reads. Extra
// arguments go to jest.
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const root = path.join(__dirname, '..');

/** Newest modification time (ms) under `p` (a file or a directory), 0 when absent. */
function newest(p) {
  let stat;
  try {
    stat = fs.statSync(p);
  } catch {
    return 0;
  }
  if (!stat.isDirectory()) return stat.mtimeMs;
  return fs.readdirSync(p).reduce((m, name) => Math.max(m, newest(path.join(p, name))), stat.mtimeMs);
}

// The script specs run the engine's script wrappers through a debug addon built with the
// `testing` feature (src/binding/testing.rs) into target/testing/; the release addon never
// carries those functions. cargo would make a no-op rebuild cheap, but napi's start-up still
// costs seconds, so the build runs only when an input is newer than the built addon.
function ensureTestingAddon() {
  const dir = path.join(root, 'target', 'testing');
  const addons = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.node')) : [];
  // The oldest of what the build writes (0 when any is missing).
  const built = addons.length ? Math.min(...[...addons, 'binding.js'].map((f) => newest(path.join(dir, f)))) : 0;
  const inputs = Math.max(...['src', 'build.rs', 'Cargo.toml', 'Cargo.lock'].map((f) => newest(path.join(root, f))));
  if (built > inputs) return;
  console.log(`building the testing addon (npm run build:testing): target/testing is ${built ? 'older than the sources' : 'missing'}`);
  const build = spawnSync('npm', ['run', '--silent', 'build:testing'], { cwd: root, encoding: 'utf8' });
  if (build.status !== 0) {
    process.stdout.write(build.stdout || '');
    process.stderr.write(build.stderr || String(build.error || ''));
    console.log('0 passed, 1 failed');
    process.exit(1);
  }
}

ensureTestingAddon();
const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'qn-jest-')), 'results.json');
const jest = require.resolve('jest/bin/jest');
// No --forceExit: a closed worker, queue or QueueEvents releases its callbacks into JS, and
// the pair's reconnect timers live on the runtime's threads, not on the event loop, so jest's
// processes end by themselves (__test__/shutdown.test.js checks the handles). Should one hang
// anyway, the timeout turns the hang into a failed run instead of a CI job that never ends.
const TIMEOUT_MS = 30 * 60 * 1000;
const run = spawnSync(process.execPath, [jest, '--json', `--outputFile=${out}`, ...process.argv.slice(2)], {
  stdio: 'inherit',
  timeout: TIMEOUT_MS,
  killSignal: 'SIGKILL',
});
const hung = Boolean(run.error && run.error.code === 'ETIMEDOUT');
if (hung) console.log(`jest did not exit within ${TIMEOUT_MS / 60000} minutes: killed (counted as a failure)`);
let passed = 0;
let failed = hung ? 1 : 0;
try {
  const results = JSON.parse(fs.readFileSync(out, 'utf8'));
  passed = results.numPassedTests;
  failed += results.numFailedTests + results.numRuntimeErrorTestSuites;
} catch {
  failed = 1;
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(run.status === 0 && failed === 0 ? 0 : 1);
