'use strict';
// The specs' private redis-server: the one harness in scripts/redis-harness.js (shared with
// the demo, the bench and examples/backend's tests), under the name the specs require.
module.exports = require('../../scripts/redis-harness');
