#!/usr/bin/env bash
# Redis's instructions per Queue.add, ours against BullMQ 6's producer, counted by valgrind's
# callgrind (see bench/callgrind.sh for the worker side and what the columns mean).
#
#   bash bench/callgrind-add.sh [adds=1000]
adds=${1:-1000}
source "$(dirname "$0")/callgrind-lib.sh"

echo "| producer | Ir/add (server) | in EVALSHA | commands inside scripts | Lua side |"
echo "|---|---:|---:|---:|---:|"
for impl in bullmq ours; do
  file="$out/callgrind.add.$impl"
  start_server "$file" "$out/valgrind.add.$impl.log"
  node bench/callgrind-add-child.js "$impl" "$port" "$adds" "$vg"
  stop_server
  readings "$file"
  node -e '
    const [impl, n, total, ev, inner] = process.argv.slice(1);
    const per = (x) => Math.round(Number(x) / Number(n)).toLocaleString("en-US");
    console.log(`| ${impl} | ${per(total)} | ${per(ev)} | ${per(inner)} | ${per(ev - inner)} |`);
  ' "$impl" "$adds" "$total" "$eval_ir" "$inner"
done
