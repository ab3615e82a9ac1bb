# Shared by bench/callgrind.sh and bench/callgrind-add.sh (sourced): a redis-server under
# callgrind with instrumentation off until the child turns it on, and the readings.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out=bench/results/callgrind
mkdir -p "$out"
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 1; }
port=$(node -e "require('./scripts/redis-harness').freePort().then(console.log)")

inclusive() { # <file> <function regex>: inclusive Ir of the first matching function
  callgrind_annotate --inclusive=yes "$1" 2>/dev/null | grep -E "$2" | head -1 | awk '{gsub(",","",$1); print $1}'
}

# start_server <callgrind file> <log file>: sets $vg to the valgrind pid once Redis answers.
start_server() {
  rm -f "$1"
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$1" \
    redis-server --port "$port" --save '' --appendonly no >"$2" 2>&1 &
  vg=$!
  for _ in $(seq 150); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.2; done
}

stop_server() {
  redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
  wait "$vg" || true
}

# readings <callgrind file>: sets $total, $eval_ir (in EVALSHA) and $inner (commands inside scripts).
readings() {
  total=$(callgrind_annotate "$1" 2>/dev/null | grep "PROGRAM TOTALS" | awk '{gsub(",","",$1); print $1}')
  eval_ir=$(inclusive "$1" ":evalGenericCommand ")
  inner=$(inclusive "$1" ":call'2 ")
}
