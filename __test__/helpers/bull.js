'use strict';
// The real BullMQ packages, as producers, observers and co-workers.
const bullmq = { 5: require('bullmq5'), 6: require('bullmq6') };

let seq = 0;
/** A queue name no other test uses. */
function uniqueQueue(tag = 'q') {
  seq += 1;
  return `${tag}-${process.pid}-${Date.now().toString(36)}-${seq}`;
}

let prefixSeq = 0;
/** A key prefix no other test uses (for twin runs side by side, or a queue's name kept fixed). */
function uniquePrefix(tag = 'p') {
  prefixSeq += 1;
  return `${tag}${prefixSeq}x${process.pid}`;
}

function connectionFor(redis) {
  return { host: '127.0.0.1', port: redis.port, maxRetriesPerRequest: null };
}

module.exports = { bullmq, uniqueQueue, uniquePrefix, connectionFor };
