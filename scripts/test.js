'use strict';
// `npm test`: runs jest, then prints one plain summary line (`N passed, N failed`) that CI
// reads. Extra arguments go to jest.
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'qn-jest-')), 'results.json');
const jest = require.resolve('jest/bin/jest');
// --forceExit: suites share one Node process per jest worker, and a Redis server a suite killed on
// purpose can leave a reconnecting pair behind until that process ends. That the library lets
// a process exit by itself is proven where it matters, in child processes
// (connection.test.js, worker.test.js), not by jest's own shutdown.
const run = spawnSync(process.execPath, [jest, '--json', '--forceExit', `--outputFile=${out}`, ...process.argv.slice(2)], {
  stdio: 'inherit',
});
let passed = 0;
let failed = 0;
try {
  const results = JSON.parse(fs.readFileSync(out, 'utf8'));
  passed = results.numPassedTests;
  failed = results.numFailedTests + results.numRuntimeErrorTestSuites;
} catch {
  failed = 1;
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(run.status === 0 && failed === 0 ? 0 : 1);
