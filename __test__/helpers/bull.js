'use strict';
// The real BullMQ packages, as producers, observers and co-workers.
const bullmq = { 5: require('bullmq5'), 6: require('bullmq6') };

let seq = 0;
/** A queue name no other test uses. */
function uniqueQueue(tag = 'q') {
  seq += 1;
  return `${tag}-${process.pid}-${Date.now().toString(36)}-${seq}`;
}

function connectionFor(redis) {
  return { host: '127.0.0.1', port: redis.port, maxRetriesPerRequest: null };
}

module.exports = { bullmq, uniqueQueue, connectionFor };
