#!/bin/sh
# cli_usage.sh PATH/TO/weft — checks the command line of `weft` and its subcommands:
#   a bad flag or a bad value (serve, connect, bench, the top level) prints exactly one line
#   on stderr, the error and a hint "(see weft CMD --help)", nothing on stdout, exit 2;
#   a failed start (bad --web-root or TLS file, a bad config file) prints exactly one line;
#   --help prints every flag (with its default) on stdout and exits 0.
# No server is started by these invocations: each must exit at once (bounded by `timeout`).
set -u
weft=${1:?usage: cli_usage.sh PATH/TO/weft}
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
fail=0

# expect_cmd_error CMD NAME ARGS...: `weft CMD ARGS` (CMD "-": `weft ARGS`) exits 2 with
# exactly one line on stderr, "weft CMD: ... (see weft CMD --help)", and nothing on stdout.
expect_cmd_error() {
    cmd=$1; name=$2; shift 2
    if [ "$cmd" = - ]; then prefix="weft"; else prefix="weft $cmd"; set -- "$cmd" "$@"; fi
    timeout 10 "$weft" "$@" >"$tmp/out" 2>"$tmp/err"
    st=$?
    lines=$(wc -l <"$tmp/err")
    if [ "$st" -ne 2 ]; then
        echo "FAIL $name: 'weft $*' exited $st, expected 2"; sed 's/^/    | /' "$tmp/err" | head -n 5; fail=1
    elif [ "$lines" -ne 1 ] || ! grep -q "^$prefix: .* (see $prefix --help)\$" "$tmp/err"; then
        echo "FAIL $name: 'weft $*' printed $lines lines, expected one ending in (see $prefix --help)"
        sed 's/^/    | /' "$tmp/err" | head -n 5; fail=1
    elif [ -s "$tmp/out" ]; then
        echo "FAIL $name: 'weft $*' wrote to stdout"; fail=1
    else
        echo "ok   $name: exit 2, $(cat "$tmp/err")"
    fi
}
expect_usage_error() { expect_cmd_error serve "$@"; }

expect_usage_error bogus-flag --bogus
expect_usage_error port-not-a-number --port notanumber
expect_usage_error port-too-big --port 65536
expect_usage_error port-missing-value --port
expect_usage_error max-message-bad --max-message 12x
expect_usage_error max-message-zero --max-message 0
expect_usage_error memory-budget-bad --memory-budget 12x
expect_usage_error memory-budget-negative --memory-budget -1
expect_usage_error slow-policy-bad --slow-policy maybe
expect_usage_error idle-timeout-negative --idle-timeout -1
expect_usage_error log-level-bad --log-level loud
expect_usage_error stray-argument extra
expect_usage_error flag-value-refused --auth-allow-no-exp=yes

expect_cmd_error connect connect-bogus-flag --bogus ws://127.0.0.1:1/echo
expect_cmd_error connect connect-missing-url
expect_cmd_error connect connect-bad-url http://127.0.0.1:1/echo
expect_cmd_error connect connect-missing-value ws://127.0.0.1:1/echo --header
expect_cmd_error connect connect-bad-linger --linger soon ws://127.0.0.1:1/echo
expect_cmd_error bench bench-bogus-flag --bogus ws://127.0.0.1:1/echo
expect_cmd_error bench bench-bad-value -c 0 ws://127.0.0.1:1/echo
expect_cmd_error bench bench-missing-url
expect_cmd_error bench bench-bad-url http://127.0.0.1:1/echo
expect_cmd_error - top-bogus-command bogus
expect_cmd_error - top-no-command

# expect_start_error NAME STATUS PATTERN ARGS...: `weft serve ARGS` exits STATUS with exactly
# one line on stderr, matching PATTERN (grep -E), and nothing on stdout (a failed start prints
# no log line before its reason, and no "stopped" line after it).
expect_start_error() {
    name=$1; want=$2; pattern=$3; shift 3
    timeout 20 "$weft" serve --host 127.0.0.1 --port 0 "$@" >"$tmp/out" 2>"$tmp/err"
    st=$?
    lines=$(wc -l <"$tmp/err")
    if [ "$st" -ne "$want" ] || [ "$lines" -ne 1 ] || ! grep -Eq -- "$pattern" "$tmp/err" ||
       [ -s "$tmp/out" ]; then
        echo "FAIL $name: exit $st (want $want), $lines stderr lines (want 1 matching '$pattern')"
        sed 's/^/    | /' "$tmp/err" | head -n 20; fail=1
    else
        echo "ok   $name: exit $st, $(cat "$tmp/err")"
    fi
}

expect_start_error web-root-missing 1 '^weft serve: --web-root /nonexistent/weft: not a readable directory' \
    --workers 1 --web-root /nonexistent/weft
expect_start_error web-root-missing-2-workers 1 '^weft serve: --web-root /nonexistent/weft: ' \
    --workers 2 --web-root /nonexistent/weft
expect_start_error tls-cert-missing 1 "^weft serve: TLS: cannot read certificate file '/nonexistent/c.pem'" \
    --workers 1 --tls-cert /nonexistent/c.pem --tls-key /nonexistent/k.pem
expect_start_error tls-cert-missing-2-workers 1 '^weft serve: TLS: ' --workers 2 \
    --tls-cert /nonexistent/c.pem --tls-key /nonexistent/k.pem
expect_start_error tls-cert-missing-text-logs 1 '^weft serve: TLS: ' --log-format text \
    --workers 1 --tls-cert /nonexistent/c.pem --tls-key /nonexistent/k.pem
printf 'port = 0\nmax-rooms = 5\000junk\n' >"$tmp/nul.conf"
expect_start_error config-nul 2 "nul.conf:2: a NUL byte" --config "$tmp/nul.conf"
printf '# rooms\nmax-rooms = 5 junk\n' >"$tmp/junk.conf"
expect_start_error config-junk-after-number 2 "junk.conf:2: bad value '5 junk' for max-rooms" \
    --config "$tmp/junk.conf"
printf 'max-message = 12q\n' >"$tmp/junk2.conf"
expect_start_error config-junk-after-bytes 2 "junk2.conf:1: bad value '12q'" --config "$tmp/junk2.conf"

timeout 10 "$weft" serve --help >"$tmp/out" 2>"$tmp/err"
st=$?
if [ "$st" -ne 0 ]; then
    echo "FAIL help: 'weft serve --help' exited $st, expected 0"; sed 's/^/    | /' "$tmp/err"; fail=1
else
    missing=""
    for flag in --host --port --unix --max-message --memory-budget --max-backpressure --slow-policy \
                --idle-timeout --ping-interval --handshake-timeout --shutdown-timeout \
                --log-level --help; do
        grep -q -- "$flag" "$tmp/out" || missing="$missing $flag"
    done
    # Each flag line shows its default in brackets.
    for d in '\[0\.0\.0\.0\]' '\[8080\]' '\[536870912\]' '\[1048576\]' '\[drop\]' '\[info\]'; do
        grep -q -- "$d" "$tmp/out" || missing="$missing default$d"
    done
    if [ -n "$missing" ]; then
        echo "FAIL help: --help does not document:$missing"; sed 's/^/    | /' "$tmp/out"; fail=1
    else
        echo "ok   help: exit 0, every flag and its default on stdout"
    fi
fi

[ "$fail" -eq 0 ] && echo "cli usage: all passed" || echo "cli usage: FAILED"
exit "$fail"
