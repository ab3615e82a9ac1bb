'use strict';
// `npm run test:cluster`: the suites that start a Redis Cluster (6 servers each), kept out of
// `npm test`'s testMatch (*.test.js) because they are slower; .ci/run runs both.
module.exports = {
  testMatch: ['<rootDir>/__test__/cluster/**/*.cluster.js'],
  testTimeout: 120000,
  testEnvironment: 'node',
};
