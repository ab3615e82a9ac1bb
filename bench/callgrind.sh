#!/usr/bin/env bash
# Redis's instructions per job, ours against BullMQ 6's worker, counted by valgrind's callgrind
# (instructions, not seconds: the same for the same binaries and inputs, however loaded the
# machine is). Each run gets its own redis-server under callgrind; only the processing of the
# jobs is instrumented (bench/callgrind-child.js turns it on and off).
#
#   bash bench/callgrind.sh [jobs=2000] [concurrency list=1,10]
#   QN_BENCH_METRICS=60 bash bench/callgrind.sh ...   both workers with metrics { maxDataPoints: 60 }
#
# Prints a table: instructions per job in the whole server, in script calls (EVALSHA), in the
# commands run inside scripts, and in the Lua side (the rest of the script calls: the
# interpreter, and converting arguments and replies between Lua and Redis). The raw
# callgrind files stay in bench/results/callgrind/ for callgrind_annotate.
jobs=${1:-2000}
concs=${2:-1,10}
source "$(dirname "$0")/callgrind-lib.sh"

echo "| worker | concurrency | Ir/job (server) | in EVALSHA | commands inside scripts | Lua side | ms (under valgrind) |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for conc in ${concs//,/ }; do
  for impl in bullmq ours; do
    file="$out/callgrind.$impl.c$conc"
    start_server "$file" "$out/valgrind.$impl.c$conc.log"
    result=$(node bench/callgrind-child.js "$impl" "$port" "$conc" "$jobs" "$vg")
    stop_server
    readings "$file"
    ms=$(node -e "console.log(JSON.parse(process.argv[1]).ms)" "$result")
    node -e '
      const [impl, conc, jobs, total, ev, inner, ms] = process.argv.slice(1);
      const per = (x) => Math.round(Number(x) / Number(jobs)).toLocaleString("en-US");
      console.log(`| ${impl} | ${conc} | ${per(total)} | ${per(ev)} | ${per(inner)} | ${per(ev - inner)} | ${ms} |`);
    ' "$impl" "$conc" "$jobs" "$total" "$eval_ir" "$inner" "$ms"
  done
done
