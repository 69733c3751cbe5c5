#!/usr/bin/env bash
# echo_vs_node.sh — echo throughput of `weft serve` next to Node `ws` (+ bufferutil), in one
# session, interleaved (weft, node, weft, node, ...), following shared/BENCHMARKING.md: server
# pinned to CPU 0, generator (bench/echo_load) to CPU 1, warm-up excluded, medians of the
# repeats; server CPU µs per message from /proc/PID/stat beside msgs/s, with the generator's
# own CPU %.
#
# usage: bench/echo_vs_node.sh [BUILD_DIR] [-- echo_load options]
#   BUILD_DIR  a Release build with weft and echo_load (default build/release)
#   env: REPEATS (3), DURATION (5 s), CONNS (100), INFLIGHT (8), SIZE (64)
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=${1:-build/release}
[ $# -gt 0 ] && shift
[ "${1:-}" = "--" ] && shift
EXTRA=("$@")
REPEATS=${REPEATS:-3}
DURATION=${DURATION:-5}
CONNS=${CONNS:-100}
INFLIGHT=${INFLIGHT:-8}
SIZE=${SIZE:-64}
WEFT=$BUILD/weft
LOAD=$BUILD/echo_load
NODE_PEER=bench/peers/node_ws_echo.js

for f in "$WEFT" "$LOAD"; do
    [ -x "$f" ] || { echo "echo_vs_node: $f not built (cmake --build $BUILD)" >&2; exit 1; }
done
command -v node >/dev/null || { echo "echo_vs_node: node not found" >&2; exit 1; }
[ -d tests/interop/node_modules/ws ] ||
    { echo "echo_vs_node: tests/interop/node_modules/ws missing (run scripts/setup)" >&2; exit 1; }
command -v taskset >/dev/null || { echo "echo_vs_node: taskset not found" >&2; exit 1; }

TMP=$(mktemp -d /tmp/weft-echo-vs-node.XXXXXX)
SERVER_PID=
cleanup() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

# Idle share of all CPUs over one second, from /proc/stat.
idle_pct() {
    local a b
    read -r -a a < <(grep '^cpu ' /proc/stat)
    sleep 1
    read -r -a b < <(grep '^cpu ' /proc/stat)
    local ta=0 tb=0 i
    for i in 1 2 3 4 5 6 7 8; do ta=$((ta + a[i])); tb=$((tb + b[i])); done
    echo $(( 100 * ((b[4] + b[5]) - (a[4] + a[5])) / (tb - ta) ))
}

# start_server NAME LOG: starts the server pinned to CPU 0, sets SERVER_PID and PORT.
start_server() {
    local name=$1 log=$2
    : > "$log"
    if [ "$name" = weft ]; then
        taskset -c 0 "$WEFT" serve --host 127.0.0.1 --port 0 --log-level warn 2> "$log" &
    else
        taskset -c 0 node "$NODE_PEER" 0 2> "$log" &
    fi
    SERVER_PID=$!
    PORT=
    for _ in $(seq 1 300); do
        PORT=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$log" | head -1 | sed 's/.*://' || true)
        [ -n "$PORT" ] && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.05
    done
    echo "echo_vs_node: $name did not start:" >&2
    cat "$log" >&2
    exit 1
}

stop_server() {
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
}

IDLE=$(idle_pct)
echo "machine idle before the run: ${IDLE}% of $(nproc) CPUs$([ "$IDLE" -lt 90 ] && echo ' (NOT quiet: figures are noisy)')"
echo "load: $CONNS connections x $INFLIGHT in flight x $SIZE B, ${DURATION}s measured after 1s warm-up, $REPEATS repeats"

declare -A RATE CPU GEN
for r in $(seq 1 "$REPEATS"); do
    for name in weft node; do
        start_server "$name" "$TMP/$name.log"
        [ "$r" = 1 ] && sed -n 's/.*\(node ws .*\): listening.*/peer: \1/p' "$TMP/$name.log"
        out=$(taskset -c 1 "$LOAD" -c "$CONNS" -w "$INFLIGHT" -s "$SIZE" -d "$DURATION" \
              --server-pid "$SERVER_PID" "${EXTRA[@]}" "ws://127.0.0.1:$PORT/echo") || {
            echo "echo_vs_node: echo_load failed against $name:" >&2
            echo "$out" >&2
            exit 1
        }
        stop_server
        line=$(grep '^RESULT' <<< "$out")
        rate=$(sed 's/.*msgs_per_s=\([0-9.]*\).*/\1/' <<< "$line")
        cpu=$(sed 's/.*server_us_per_msg=\([0-9.-]*\).*/\1/' <<< "$line")
        gen=$(sed 's/.*client_cpu_pct=\([0-9.]*\).*/\1/' <<< "$line")
        printf '  run %d %-4s  %10s msgs/s  %7s us/msg (server CPU)  generator %s%%\n' \
               "$r" "$name" "$rate" "$cpu" "$gen"
        RATE[$name]+="$rate "
        CPU[$name]+="$cpu "
        GEN[$name]+="$gen "
    done
done

median() { tr ' ' '\n' <<< "$1" | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {
    if (NR % 2) print a[(NR + 1) / 2]; else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

wr=$(median "${RATE[weft]}"); nr=$(median "${RATE[node]}")
wc=$(median "${CPU[weft]}"); nc=$(median "${CPU[node]}")
wg=$(median "${GEN[weft]}"); ng=$(median "${GEN[node]}")
echo
echo "| server | msgs/s (median) | server CPU us/msg (median) | generator CPU % |"
echo "|---|---|---|---|"
printf '| weft serve | %.0f | %.3f | %s |\n' "$wr" "$wc" "$wg"
printf '| Node ws + bufferutil | %.0f | %.3f | %s |\n' "$nr" "$nc" "$ng"
awk -v wr="$wr" -v nr="$nr" -v wc="$wc" -v nc="$nc" 'BEGIN {
    printf "| ratio weft/node | %.2fx msgs/s | %.2fx less CPU per message | |\n", wr / nr, nc / wc }'
