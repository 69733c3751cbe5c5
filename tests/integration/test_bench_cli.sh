#!/bin/sh
# test_bench_cli.sh PATH/TO/weft — smoke test of `weft bench` (not a timing test): against a
# `weft serve --port 0` started here, echo, room and hub runs of about 2 s each must exit 0 with
# messages > 0 and no errors, --json must parse and carry the documented keys, and bad flags
# must exit 2 (also --history-rate outside hub mode, a negative --read-rate). Hub mode (/hub JSON protocol) must also count exactly one delivery per publish
# and per member other than the publisher (the server excludes the sender). --deflate (echo and room against the server's default lean deflate: every
# connection negotiates it, echoes come back intact) and wss:// (a second server with
# certificates made by tls_certs.sh: echo with --cacert, echo + deflate, connect mode with
# --insecure; an unknown CA gives handshake errors and exit 1) are covered briefly, and URLs:
# an IPv6 literal, a name (localhost), an unknown name.
# Stops exactly the server PIDs it started.
set -u
weft=${1:?usage: test_bench_cli.sh PATH/TO/weft}
tmp=$(mktemp -d) || exit 1
srv=
tsrv=
srv6=
cleanup() {
    if [ -n "$srv6" ]; then kill "$srv6" 2>/dev/null; wait "$srv6" 2>/dev/null; fi
    if [ -n "$srv" ]; then kill "$srv" 2>/dev/null; wait "$srv" 2>/dev/null; fi
    if [ -n "$tsrv" ]; then kill "$tsrv" 2>/dev/null; wait "$tsrv" 2>/dev/null; fi
    rm -rf "$tmp"
}
trap cleanup EXIT
pass=0
fail=0
ok() { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; fail=$((fail + 1)); }

"$weft" serve --host 127.0.0.1 --port 0 --log-level warn 2>"$tmp/serve.log" &
srv=$!
port=
i=0
while [ $i -lt 100 ] && [ -z "$port" ]; do
    port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$tmp/serve.log" | head -n 1)
    [ -n "$port" ] || sleep 0.1
    i=$((i + 1))
done
if [ -z "$port" ]; then
    echo "FAIL weft serve did not start:"; cat "$tmp/serve.log"; exit 1
fi

# check_json NAME FILE MODE: parses, documented keys present, messages > 0, errors == 0.
check_json() {
    if /usr/bin/python3 - "$2" "$3" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
keys = ["mode", "url", "connections", "opened", "peak_open", "senders", "members", "size", "window",
        "rate", "binary", "warmup_s", "duration_s", "messages", "sent", "msgs_per_s",
        "mb_per_s", "latency_us", "errors", "client_cpu_pct", "generator_bound", "server"]
missing = [k for k in keys if k not in d]
assert not missing, "missing keys %s" % missing
for k in ["count", "min", "mean", "p50", "p90", "p99", "p999", "max"]:
    assert k in d["latency_us"], "latency_us lacks " + k
for k in ["total", "connect", "handshake", "timeout", "protocol", "closed", "io",
          "bad_message", "lost", "backlog"]:
    assert k in d["errors"], "errors lacks " + k
for k in ["pid", "cpu_pct", "cpu_us_per_msg", "rss_before_kib", "rss_kib", "rss_per_conn_kib"]:
    assert k in d["server"], "server lacks " + k
assert d["mode"] == sys.argv[2], d["mode"]
assert d["messages"] > 0, "no messages"
assert d["errors"]["total"] == 0, "errors: %s" % d["errors"]
assert d["latency_us"]["count"] > 0 and d["latency_us"]["p50"] > 0, "no latency"
PY
    then ok "$1"; else bad "$1"; sed 's/^/    | /' "$2"; fi
}

# Text output: exit 0, messages > 0, no errors.
timeout 60 "$weft" bench -c 8 -w 4 -d 1.5 --warmup 0.3 "ws://127.0.0.1:$port/echo" \
    >"$tmp/echo.txt" 2>"$tmp/echo.err"
st=$?
if [ $st -eq 0 ] && grep -q '^  messages   [1-9]' "$tmp/echo.txt" &&
   grep -q '^  errors     none' "$tmp/echo.txt"; then
    ok "echo (text summary)"
else
    bad "echo (text summary): exit $st"; cat "$tmp/echo.txt" "$tmp/echo.err"
fi

timeout 60 "$weft" bench --json --text -c 8 -w 2 -d 1.5 --warmup 0.3 --server-pid "$srv" \
    "ws://127.0.0.1:$port/echo" >"$tmp/echo.json" 2>"$tmp/echo.err"
st=$?
[ $st -eq 0 ] && check_json "echo --json" "$tmp/echo.json" echo ||
    { bad "echo --json: exit $st"; cat "$tmp/echo.err"; }

timeout 60 "$weft" bench --json --mode room -c 10 -k 3 -w 2 -d 1.5 --warmup 0.3 \
    --server-pid "$srv" "ws://127.0.0.1:$port/ws/smoke" >"$tmp/room.json" 2>"$tmp/room.err"
st=$?
[ $st -eq 0 ] && check_json "room --json" "$tmp/room.json" room ||
    { bad "room --json: exit $st"; cat "$tmp/room.err"; }

# Hub mode: 10 connections join room "smoke" (all joins answered before traffic), 3 publish
# with 2 in flight each. Every publish reaches the 9 other members and not its publisher, so
# deliveries = publishes x 9, give or take the messages in flight at the window's two edges
# (at most 3 x 2 x 9 each): counting nothing, the "published" replies, or one member per
# publish would all be far off.
timeout 60 "$weft" bench --json --mode hub --room smoke -c 10 -k 3 -w 2 -d 1.5 --warmup 0.3 \
    --server-pid "$srv" "ws://127.0.0.1:$port/hub" >"$tmp/hub.json" 2>"$tmp/hub.err"
st=$?
[ $st -eq 0 ] && check_json "hub --json" "$tmp/hub.json" hub ||
    { bad "hub --json: exit $st"; cat "$tmp/hub.err"; }
if /usr/bin/python3 - "$tmp/hub.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
members, senders, window = 10, 3, 2
assert d["members"] == members, "members %s, expected %d (every join answered)" % (d["members"], members)
assert d["senders"] == senders, d["senders"]
sent, got = d["sent"], d["messages"]
expect = sent * (members - 1)
slack = 2 * senders * window * (members - 1)
assert sent > 100, "only %d publishes" % sent
assert abs(got - expect) <= slack, "deliveries %d, expected %d x %d = %d (+- %d)" % (
    got, sent, members - 1, expect, slack)
assert d["latency_us"]["count"] == got, "latency samples %d != deliveries %d" % (
    d["latency_us"]["count"], got)
PY
then ok "hub: deliveries = publishes x (members - 1)"; else bad "hub: delivery count"; cat "$tmp/hub.json"; fi

timeout 60 "$weft" bench --json -r 2000 -c 4 -d 1 --warmup 0.2 --server-pid "$srv" \
    "ws://127.0.0.1:$port/echo" >"$tmp/open.json" 2>"$tmp/open.err"
st=$?
[ $st -eq 0 ] && check_json "echo open loop -r --json" "$tmp/open.json" echo ||
    { bad "open loop: exit $st"; cat "$tmp/open.err"; }

# --history-rate (hub): history and join-with-since requests are sent and answered without
# errors (no history_gap: "since" trails the member's last seen seq), the kept messages a
# re-join sends again are counted apart (replayed), not as deliveries: deliveries stay within
# publishes x (members - 1) plus the few in flight when the measured window opened.
timeout 60 "$weft" bench --json --mode hub --room hist -c 6 -k 2 -r 200 --history-rate 40 \
    -d 1.5 --warmup 0.3 "ws://127.0.0.1:$port/hub" >"$tmp/hh.json" 2>"$tmp/hh.err"
st=$?
if [ $st -eq 0 ] && /usr/bin/python3 - "$tmp/hh.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
req, rep, replayed = d["history_requests"], d["history_replies"], d["replayed"]
assert req >= 30, "only %d history requests" % req
assert req - 5 <= rep <= req, "%d replies to %d requests" % (rep, req)
assert replayed > 0, "no kept message was sent again"
assert d["errors"]["total"] == 0, d["errors"]
assert 0 < d["messages"] <= d["sent"] * 5 + 50, "deliveries %d for %d publishes" % (
    d["messages"], d["sent"])
PY
then ok "hub --history-rate: requests answered, replayed kept apart"
else bad "hub --history-rate: exit $st"; cat "$tmp/hh.json" "$tmp/hh.err"; fi

# --read-rate: 4 connections echo 400 messages/s of 1000 bytes in all but each reads at most
# 4000 bytes/s, so at most 4 x (4000 x 1.5 s + one 200-byte chunk) bytes (~24 messages) can be
# received in the 1.5 s measured; without the limit it would be ~600.
timeout 60 "$weft" bench --json -c 4 -r 400 -s 1000 --read-rate 4000 -d 1.5 --warmup 0 \
    "ws://127.0.0.1:$port/echo" >"$tmp/slow.json" 2>"$tmp/slow.err"
st=$?
if [ $st -eq 0 ] && /usr/bin/python3 - "$tmp/slow.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["read_rate"] == 4000, d["read_rate"]
assert 0 < d["messages"] <= 4 * (4000 * 1.5 + 200) / 1000, "%d messages read" % d["messages"]
assert d["sent"] > 300, "only %d sent" % d["sent"]
PY
then ok "--read-rate: reading bounded by the rate"
else bad "--read-rate: exit $st"; cat "$tmp/slow.json" "$tmp/slow.err"; fi

# Bad usage: exit 2 with one line on stderr (ending with the hint to --help), nothing on
# stdout.
expect2() {
    name=$1; shift
    timeout 10 "$weft" bench "$@" >"$tmp/out" 2>"$tmp/err"
    st=$?
    if [ $st -eq 2 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] &&
       grep -q '(see weft bench --help)$' "$tmp/err" && [ ! -s "$tmp/out" ]; then
        ok "$name: exit 2"
    else
        bad "$name: 'weft bench $*' exited $st, expected 2"; cat "$tmp/err"
    fi
}
expect2 bogus-flag --bogus "ws://127.0.0.1:$port/echo"
expect2 missing-url
expect2 bad-connections -c 0 "ws://127.0.0.1:$port/echo"
expect2 bad-mode --mode nope "ws://127.0.0.1:$port/echo"
expect2 bad-url "http://127.0.0.1:$port/echo"
expect2 room-too-small --mode room -s 4 "ws://127.0.0.1:$port/ws/x"
expect2 hub-binary --mode hub --binary "ws://127.0.0.1:$port/hub"
expect2 hub-bad-room --mode hub --room 'a b' "ws://127.0.0.1:$port/hub"
expect2 room-with-room-flag --mode room --room x "ws://127.0.0.1:$port/ws/x"
expect2 bad-payload --payload nope "ws://127.0.0.1:$port/echo"
expect2 history-rate-not-hub --history-rate 5 "ws://127.0.0.1:$port/echo"
expect2 bad-read-rate --read-rate -1 "ws://127.0.0.1:$port/echo"

# permessage-deflate: `weft serve` accepts it by default (lean); every connection negotiates
# it and the inflated echoes have the right size (bad_message would count otherwise).
# has_key FILE 'KEY': VALUE — the JSON line carries exactly that pair.
has() { grep -q "\"$2\": $3[,}]" "$1"; }
timeout 60 "$weft" bench --json --deflate --payload json --text -c 8 -s 1024 -w 2 -d 1.5 \
    --warmup 0.3 --server-pid "$srv" "ws://127.0.0.1:$port/echo" >"$tmp/z.json" 2>"$tmp/z.err"
st=$?
[ $st -eq 0 ] && check_json "echo --deflate --json" "$tmp/z.json" echo ||
    { bad "echo --deflate: exit $st"; cat "$tmp/z.err"; }
has "$tmp/z.json" deflate_conns 8 && ok "echo --deflate: 8 connections negotiated" ||
    { bad "echo --deflate: deflate_conns"; cat "$tmp/z.json"; }
timeout 60 "$weft" bench --json --deflate --mode room -c 6 -k 2 -s 300 -d 1 --warmup 0.2 \
    --server-pid "$srv" "ws://127.0.0.1:$port/ws/zroom" >"$tmp/zr.json" 2>"$tmp/zr.err"
st=$?
[ $st -eq 0 ] && check_json "room --deflate --json" "$tmp/zr.json" room ||
    { bad "room --deflate: exit $st"; cat "$tmp/zr.err"; }

# wss://: a second server with test certificates.
if sh "$(dirname "$0")/tls_certs.sh" "$tmp/certs" >/dev/null 2>&1; then
    : >"$tmp/tserve.log"
    "$weft" serve --host 127.0.0.1 --port 0 --log-level warn --tls-cert "$tmp/certs/server.pem" \
        --tls-key "$tmp/certs/server.key" 2>"$tmp/tserve.log" &
    tsrv=$!
    tport=
    i=0
    while [ $i -lt 100 ] && [ -z "$tport" ]; do
        tport=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$tmp/tserve.log" |
                head -n 1)
        [ -n "$tport" ] || sleep 0.1
        i=$((i + 1))
    done
    timeout 60 "$weft" bench --json -c 4 -w 2 -d 1 --warmup 0.2 --cacert "$tmp/certs/ca.pem" \
        --server-pid "$tsrv" "wss://127.0.0.1:$tport/echo" >"$tmp/t.json" 2>"$tmp/t.err"
    st=$?
    [ $st -eq 0 ] && check_json "wss echo --cacert --json" "$tmp/t.json" echo &&
        has "$tmp/t.json" tls true || { bad "wss echo: exit $st"; cat "$tmp/t.err"; }
    timeout 60 "$weft" bench --json --deflate --payload json -s 2000 -c 4 -w 2 -d 1 \
        --warmup 0.2 --cacert "$tmp/certs/ca.pem" --server-pid "$tsrv" \
        "wss://localhost:$tport/echo" >"$tmp/tz.json" 2>"$tmp/tz.err"
    st=$?
    [ $st -eq 0 ] && check_json "wss echo --deflate (localhost)" "$tmp/tz.json" echo &&
        has "$tmp/tz.json" deflate_conns 4 || { bad "wss + deflate: exit $st"; cat "$tmp/tz.err"; }
    timeout 60 "$weft" bench --json --mode connect --insecure -c 4 -d 1 --warmup 0.2 \
        --server-pid "$tsrv" "wss://127.0.0.1:$tport/echo" >"$tmp/tc.json" 2>"$tmp/tc.err"
    st=$?
    [ $st -eq 0 ] && check_json "wss connect --insecure" "$tmp/tc.json" connect ||
        { bad "wss connect: exit $st"; cat "$tmp/tc.err"; }
    timeout 30 "$weft" bench -c 2 -d 0.5 --warmup 0 "wss://127.0.0.1:$tport/echo" \
        >"$tmp/tu.txt" 2>"$tmp/tu.err"
    st=$?
    if [ $st -eq 1 ] && grep -q 'handshake' "$tmp/tu.txt" && grep -qi 'verify' "$tmp/tu.err"; then
        ok "wss with an unknown CA: handshake errors, exit 1"
    else
        bad "wss unknown CA: exit $st"; cat "$tmp/tu.txt" "$tmp/tu.err"
    fi
else
    bad "tls_certs.sh failed"
fi

# URLs through weft_url_parse and c-ares: an IPv6 literal is accepted (a second server on ::1,
# if the machine has IPv6 loopback; otherwise only that it is not a usage error), a name
# resolves (localhost, IPv4 preferred: the first server), an unknown name is one line and exit 1.
"$weft" serve --host ::1 --port 0 --log-level warn 2>"$tmp/serve6.log" &
srv6=$!
port6=
i=0
while [ $i -lt 50 ] && [ -z "$port6" ] && kill -0 "$srv6" 2>/dev/null; do
    port6=$(sed -n 's/.*listening on \[*::1\]*:\([0-9][0-9]*\).*/\1/p' "$tmp/serve6.log" | head -n 1)
    [ -n "$port6" ] || sleep 0.1
    i=$((i + 1))
done
if [ -n "$port6" ]; then
    timeout 60 "$weft" bench --json -c 4 -w 2 -d 1 --warmup 0.2 --server-pid "$srv6" \
        "ws://[::1]:$port6/echo" >"$tmp/v6.json" 2>"$tmp/v6.err"
    st=$?
    [ $st -eq 0 ] && check_json "echo over IPv6 (ws://[::1]:PORT)" "$tmp/v6.json" echo ||
        { bad "IPv6: exit $st"; cat "$tmp/v6.err"; }
else
    timeout 30 "$weft" bench -c 1 -d 0.3 --warmup 0 "ws://[::1]:1/echo" >/dev/null 2>"$tmp/v6.err"
    st=$?
    [ $st -eq 1 ] && ok "IPv6 literal accepted (no ::1 here: exit 1)" ||
        { bad "IPv6 literal: exit $st"; cat "$tmp/v6.err"; }
fi
kill "$srv6" 2>/dev/null
wait "$srv6" 2>/dev/null
srv6=
timeout 60 "$weft" bench --json -c 4 -w 2 -d 1 --warmup 0.2 --server-pid "$srv" \
    "ws://localhost:$port/echo" >"$tmp/name.json" 2>"$tmp/name.err"
st=$?
[ $st -eq 0 ] && check_json "echo by name (ws://localhost:PORT, c-ares)" "$tmp/name.json" echo ||
    { bad "localhost: exit $st"; cat "$tmp/name.err"; }
timeout 30 "$weft" bench -c 1 -d 0.3 "ws://nonexistent.invalid:$port/echo" >"$tmp/nx.out" \
    2>"$tmp/nx.err"
st=$?
[ $st -eq 1 ] && [ "$(wc -l <"$tmp/nx.err")" -eq 1 ] && grep -q "cannot resolve" "$tmp/nx.err" &&
    ok "unknown name: one line, exit 1" || { bad "unknown name: exit $st"; cat "$tmp/nx.err"; }

timeout 10 "$weft" bench --help >"$tmp/help" 2>&1 && grep -q 'JSON keys' "$tmp/help" &&
    ok "--help: exit 0" || bad "--help"

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
