'use strict';
// One side of bench/callgrind-add.sh: N sequential awaited Queue.add calls (ours or BullMQ
// 6's) with callgrind's instrumentation of the redis-server on only around them.
//
//   node bench/callgrind-add-child.js <ours|bullmq> <port> <jobs> <valgrind pid>

const { execFileSync } = require('child_process');

const [impl, port, jobs, vgPid] = process.argv.slice(2);
const connection = { host: '127.0.0.1', port: Number(port) };

async function main() {
  const qn = impl === 'ours' ? require('..') : null;
  const Q = qn ? qn.Queue : require('bullmq6').Queue;
  const queue = new Q(`cga-${impl}-${Date.now()}`, { connection });
  // Scripts loaded and meta written before counting.
  await queue.add('warmup', { i: -1 });
  const callgrind = (state) => execFileSync('callgrind_control', ['-i', state, vgPid], { stdio: 'ignore' });
  callgrind('on');
  for (let i = 0; i < Number(jobs); i++) await queue.add('job', { i, pad: 'x'.repeat(50) }, { removeOnComplete: true });
  callgrind('off');
  await queue.close();
  if (qn) await qn.shutdown();
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
