#!/usr/bin/env bash
# Runs the shared oracle-diff tool (BullMQ's own Worker vs ours, same scenarios, compared key
# by key in Redis) for BullMQ 6 and 5: its built-in scenarios and, when no arguments are
# given, the project's own in __test__/fixtures/oracle-flows.js. The tool lives outside this
# repository (ORACLE_DIFF_DIR, default ../shared/tools/oracle-diff next to the checkout, else
# /work/shared/tools/oracle-diff); without it this script says so and exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."
src="${ORACLE_DIFF_DIR:-}"
for candidate in "$src" ../shared/tools/oracle-diff /work/shared/tools/oracle-diff; do
  if [ -n "$candidate" ] && [ -f "$candidate/oracle-diff.js" ]; then src="$candidate"; break; fi
done
if [ -z "$src" ] || [ ! -f "$src/oracle-diff.js" ]; then
  echo "oracle-diff not found (set ORACLE_DIFF_DIR): skipped"
  exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp -r "$src/." "$work/"
chmod -R u+w "$work"
# The tool's "all jobs final" check is made atomic in this copy (see the script for why).
node scripts/oracle-atomic-done.js "$work/lib/runner.js"
(cd "$work" && npm ci --no-audit --no-fund --silent >/dev/null 2>&1)
# Without arguments: the built-in scenarios plus the project's own (flows, manual rate limit).
extra=()
if [ $# -eq 0 ] && [ -f __test__/fixtures/oracle-flows.js ]; then
  extra=(--all --scenario-file __test__/fixtures/oracle-flows.js)
fi
status=0
for major in 6 5; do
  node "$work/oracle-diff.js" --impl . --bullmq "$major" "${extra[@]}" "$@" || status=$?
done
exit $status
