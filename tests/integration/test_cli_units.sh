#!/bin/sh
# test_cli_units.sh PATH/TO/weft — the same value means the same thing in `weft serve`,
# `weft connect` and `weft bench` (the grammar of src/hub/units.h):
#   sizes      1MB = 1MiB = 1m = 1048576 in serve (--print-config); connect accepts every form
#              and enforces it (a 1024-byte echo passes --max-message 1KiB, 1025 bytes close
#              with 1009); bench's -s 1k is 1024 ("size" in --json).
#   durations  0.0001 s is 1 ms everywhere: serve prints 0.001, connect's --connect-timeout
#              0.0001 is accepted (> 0), bench's --warmup 0.0001 reports 0.001; 500ms and 1m
#              are accepted by all three.
#   junk       1x, -1, 1.5k and "" exit 2 with one line in all three.
# Starts one `weft serve --port 0` on 127.0.0.1 and stops exactly that PID.
set -u
weft=${1:?usage: test_cli_units.sh PATH/TO/weft}
tmp=$(mktemp -d) || exit 1
srv=
cleanup() {
    if [ -n "$srv" ]; then kill "$srv" 2>/dev/null; wait "$srv" 2>/dev/null; fi
    rm -rf "$tmp"
}
trap cleanup EXIT
fail=0
ok() { echo "ok   $1"; }
bad() { echo "FAIL $1"; fail=1; }

# serve: every size form gives the same byte count, every duration form the same seconds.
for v in 1MB 1MiB 1m 1M 1048576; do
    got=$("$weft" serve --max-message "$v" --print-config 2>&1 | sed -n 's/^max-message = //p')
    [ "$got" = 1048576 ] && ok "serve --max-message $v = 1048576" ||
        bad "serve --max-message $v gave '$got'"
done
# --deflate-threshold is a size like the others (it was a plain number: 1k was refused).
for pair in 1k:1024 64:64 2KiB:2048 0:0; do
    v=${pair%%:*}; want=${pair#*:}
    got=$("$weft" serve --deflate-threshold "$v" --print-config 2>&1 |
        sed -n 's/^deflate-threshold = //p')
    [ "$got" = "$want" ] && ok "serve --deflate-threshold $v = $want" ||
        bad "serve --deflate-threshold $v gave '$got', want $want"
done
for pair in 0.0001:0.001 500ms:0.5 1.5:1.5 2s:2 1m:60 0:0; do
    v=${pair%%:*}; want=${pair#*:}
    got=$("$weft" serve --idle-timeout "$v" --print-config 2>&1 | sed -n 's/^idle-timeout = //p')
    [ "$got" = "$want" ] && ok "serve --idle-timeout $v = $want s" ||
        bad "serve --idle-timeout $v gave '$got', want $want"
done

# expect_usage NAME ARGS...: exit 2, exactly one line on stderr.
expect_usage() {
    name=$1; shift
    timeout 10 "$weft" "$@" >/dev/null 2>"$tmp/err"
    st=$?
    if [ $st -eq 2 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ]; then ok "$name: exit 2"
    else bad "$name: exit $st"; sed 's/^/    | /' "$tmp/err"; fi
}
for v in 1x -1 1.5k ''; do
    expect_usage "serve --max-message '$v'" serve --max-message "$v" --print-config
    expect_usage "connect --max-message '$v'" connect --max-message "$v" ws://127.0.0.1:1/
    expect_usage "bench -s '$v'" bench -s "$v" ws://127.0.0.1:1/
    expect_usage "serve --deflate-threshold '$v'" serve --deflate-threshold "$v" --print-config
    expect_usage "serve --idle-timeout '$v'" serve --idle-timeout "$v" --print-config
    expect_usage "connect --linger '$v'" connect --linger "$v" ws://127.0.0.1:1/
    expect_usage "bench --warmup '$v'" bench --warmup "$v" ws://127.0.0.1:1/
done

# connect: a sub-millisecond timeout is 1 ms, not 0 (rejected as "> 0" before): the attempt
# runs (refused: exit 1), it is not a usage error.
timeout 10 "$weft" connect --connect-timeout 0.0001 --ping-interval 0.0001 --linger 500ms \
    --max-message 1MB ws://127.0.0.1:1/ </dev/null >/dev/null 2>"$tmp/err"
st=$?
[ $st -eq 1 ] && ok "connect --connect-timeout 0.0001 (1 ms) --max-message 1MB: accepted, exit 1" ||
    { bad "connect sub-ms / 1MB: exit $st (want 1)"; cat "$tmp/err"; }

"$weft" serve --host 127.0.0.1 --port 0 --log-level warn 2>"$tmp/serve.log" &
srv=$!
port=
i=0
while [ $i -lt 100 ] && [ -z "$port" ]; do
    port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$tmp/serve.log" | head -n 1)
    [ -n "$port" ] || sleep 0.1
    i=$((i + 1))
done
[ -n "$port" ] || { echo "FAIL weft serve did not start:"; cat "$tmp/serve.log"; exit 1; }

# connect enforces the size it parsed: 1KiB = 1k = 1024 bytes.
line() { /usr/bin/python3 -c "import sys; sys.stdout.write('x' * int(sys.argv[1]) + '\n')" "$1"; }
for v in 1KiB 1k 1024 1KB; do
    line 1024 | timeout 20 "$weft" connect --quiet --linger 0.2 --max-message "$v" \
        "ws://127.0.0.1:$port/echo" >"$tmp/out" 2>"$tmp/err"
    st=$?
    [ $st -eq 0 ] && [ "$(wc -c <"$tmp/out")" -eq 1025 ] &&
        ok "connect --max-message $v: a 1024-byte echo passes" ||
        { bad "connect --max-message $v, 1024 bytes: exit $st"; cat "$tmp/err"; }
    line 1025 | timeout 20 "$weft" connect --quiet --linger 0.2 --max-message "$v" \
        "ws://127.0.0.1:$port/echo" >"$tmp/out" 2>"$tmp/err"
    st=$?
    [ $st -eq 1 ] && grep -q 1009 "$tmp/err" &&
        ok "connect --max-message $v: a 1025-byte echo closes with 1009" ||
        { bad "connect --max-message $v, 1025 bytes: exit $st"; cat "$tmp/err"; }
done

# bench: -s 1k is 1024 bytes, --warmup 0.0001 is 1 ms, -d 500ms is half a second.
for v in 1k 1KiB 1024; do
    timeout 30 "$weft" bench --json -c 1 -w 1 -s "$v" -d 500ms --warmup 0.0001 \
        "ws://127.0.0.1:$port/echo" >"$tmp/b.json" 2>"$tmp/err"
    st=$?
    if [ $st -eq 0 ] && /usr/bin/python3 - "$tmp/b.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["size"] == 1024, d["size"]
assert d["warmup_s"] == 0.001, d["warmup_s"]
assert 0.45 <= d["duration_s"] < 2, d["duration_s"]
assert d["messages"] > 0 and d["errors"]["total"] == 0, d
PY
    then ok "bench -s $v -d 500ms --warmup 0.0001: size 1024, warm-up 1 ms"
    else bad "bench -s $v: exit $st"; cat "$tmp/b.json" "$tmp/err"; fi
done

exit $fail
