'use strict';
// `npm run test:faults`: the fault suite, apart from `npm test` (it kills, stops and restarts
// redis-servers and worker processes; minutes, not seconds). One file at a time: the
// scenarios measure timing under faults and must not compete for the two CI cores.
const path = require('path');

module.exports = {
  rootDir: path.join(__dirname, '..', '..'),
  testMatch: ['<rootDir>/__test__/faults/**/*.fault.js'],
  testEnvironment: 'node',
  testTimeout: 90000,
  maxWorkers: 1,
};
