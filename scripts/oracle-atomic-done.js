'use strict';
// Used by scripts/oracle.sh on its private copy of the shared oracle-diff tool (the shared
// folder is read-only). The tool decides that a run is over when six keys (wait, paused,
// active, delayed, prioritized, waiting-children) hold no job, read with six separate
// commands. A job promoted from delayed and activated between the read of `active` and the
// read of `delayed` is seen by neither, so the run was declared over while it was still
// running: the worker was closed mid-scenario and the comparison differed (seen in CI about
// once in twenty runs of retry-fixed-then-complete, with the worker taking the due job at the
// moment of a check). Reading the six counts in one MULTI makes the check a single instant.
// Nothing else in the tool is changed; if its code is not what this expects, nothing is
// patched and a note says so.
//
//   node scripts/oracle-atomic-done.js <copy of oracle-diff>/lib/runner.js

const fs = require('fs');

const file = process.argv[2];
const before = `  const counts = await Promise.all([
    ...PENDING_LISTS.map((k) => client.call('LLEN', base + k)),
    ...PENDING_ZSETS.map((k) => client.call('ZCARD', base + k)),
  ]);`;
const after = `  // (patched by queue-native's scripts/oracle-atomic-done.js: one MULTI, one instant)
  const tx = client.multi();
  for (const k of PENDING_LISTS) tx.llen(base + k);
  for (const k of PENDING_ZSETS) tx.zcard(base + k);
  const counts = (await tx.exec()).map(([err, n]) => {
    if (err) throw err;
    return n;
  });`;

const source = fs.readFileSync(file, 'utf8');
if (source.includes(before)) {
  fs.writeFileSync(file, source.replace(before, after));
} else {
  console.error('oracle-atomic-done: pendingJobs in the oracle-diff tool is not the expected code; left as it is');
}
