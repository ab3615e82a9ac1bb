#!/usr/bin/env bash
# Redis's instructions per Queue.add, ours against BullMQ 6's producer, counted by valgrind's
# callgrind (see bench/callgrind.sh for the worker side and what the columns mean).
#
#   bash bench/callgrind-add.sh [adds=1000]
set -euo pipefail
cd "$(dirname "$0")/.."
adds=${1:-1000}
out=bench/results/callgrind
mkdir -p "$out"
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 1; }
port=$(node -e "require('./scripts/redis-harness').freePort().then(console.log)")

inclusive() { # <file> <function regex>: inclusive Ir of the first matching function
  callgrind_annotate --inclusive=yes "$1" 2>/dev/null | grep -E "$2" | head -1 | awk '{gsub(",","",$1); print $1}'
}

echo "| producer | Ir/add (server) | in EVALSHA | commands inside scripts | Lua side |"
echo "|---|---:|---:|---:|---:|"
for impl in bullmq ours; do
  file="$out/callgrind.add.$impl"
  rm -f "$file"
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$file" \
    redis-server --port "$port" --save '' --appendonly no >"$out/valgrind.add.$impl.log" 2>&1 &
  vg=$!
  for _ in $(seq 150); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.2; done
  node bench/callgrind-add-child.js "$impl" "$port" "$adds" "$vg"
  redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
  wait "$vg" || true
  total=$(callgrind_annotate "$file" 2>/dev/null | grep "PROGRAM TOTALS" | awk '{gsub(",","",$1); print $1}')
  eval_ir=$(inclusive "$file" ":evalGenericCommand ")
  inner=$(inclusive "$file" ":call'2 ")
  node -e '
    const [impl, n, total, ev, inner] = process.argv.slice(1);
    const per = (x) => Math.round(Number(x) / Number(n)).toLocaleString("en-US");
    console.log(`| ${impl} | ${per(total)} | ${per(ev)} | ${per(inner)} | ${per(ev - inner)} |`);
  ' "$impl" "$adds" "$total" "$eval_ir" "$inner"
done
