#!/usr/bin/env bash
# Runs one libFuzzer target for a bounded time over its seed corpus (copied into a scratch
# directory so the checked-in seeds are never modified) and prints executions per second and
# the coverage libFuzzer reached (its final "cov:" figure: instrumented edges).
# usage: run.sh TARGET SEED_DIR WORK_DIR SECONDS
set -euo pipefail
target=$1 seed=$2 work=$3 secs=$4
rm -rf "$work"; mkdir -p "$work/corpus" "$work/artifacts"
[ -d "$seed" ] && cp -r "$seed"/. "$work/corpus/" 2>/dev/null || true
log="$work/fuzz.log"
set +e
"$target" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=70000 \
    -print_final_stats=1 -artifact_prefix="$work/artifacts/" "$work/corpus" >"$log" 2>&1
rc=$?
set -e
execs=$(grep -m1 'stat::number_of_executed_units' "$log" | awk '{print $2}')
rate=$(grep -m1 'stat::average_exec_per_sec' "$log" | awk '{print $2}')
cov=$( (grep -E '^#[0-9]+[[:space:]]+DONE[[:space:]]+cov:' "$log" || true) | tail -n 1 | awk '{print $4}')
line="$(basename "$target"): ${execs:-?} executions in ${secs}s, ${rate:-?} exec/s, cov ${cov:-?}, exit $rc"
echo "$line"
echo "$line" >"$work/summary"
if [ $rc -ne 0 ]; then
    tail -n 60 "$log"
    ls -l "$work/artifacts"
    exit 1
fi
