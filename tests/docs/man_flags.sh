#!/bin/sh
# Every flag that `weft --help` and `weft serve|connect|bench --help` print appears in the
# matching man page (docs/man/weft.1, weft-serve.1, weft-connect.1, weft-bench.1). Lists the
# missing ones.
#   usage: man_flags.sh WEFT MAN_DIR
set -u
weft=$1 mandir=$2
status=0

# check PAGE HELP_ARGS...: compares the flags of the help with the page's text.
check() {
    name=$1
    page=$mandir/$name
    shift
    [ -f "$page" ] || { echo "missing page: $page"; status=1; return; }
    help=$("$weft" "$@" --help 2>&1)
    # The page's text without roff escapes: \- is a dash, \fB..\fR are fonts.
    text=$(sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' -e 's/\\&//g' "$page")
    flags=$(printf '%s\n' "$help" |
        grep -oE '(^|[][ (,])--?[a-zA-Z][a-zA-Z0-9-]*' | sed 's/^[][ (,]//' | sort -u)
    n=0
    for f in $flags; do
        n=$((n + 1))
        if ! printf '%s\n' "$text" | grep -qE -- "(^|[^a-zA-Z0-9-])$f([^a-zA-Z0-9-]|\$)"; then
            echo "$name: $f (in 'weft $* --help') is not in the page"
            status=1
        fi
    done
    [ $n -gt 0 ] || { echo "$name: no flag found in 'weft $* --help'"; status=1; }
    echo "$name: $n flags checked"
}

check weft.1
check weft-serve.1 serve
check weft-connect.1 connect
check weft-bench.1 bench
exit $status
