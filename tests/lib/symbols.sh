#!/bin/sh
# Fails if libweft.so or libweft.a defines an external symbol outside the weft_ namespace
# (an application linking libweft must be free to use any other name). Lists the offenders.
#   usage: symbols.sh NM LIBWEFT_SO LIBWEFT_A
set -u
nm=$1 so=$2 ar=$3
status=0

# check LABEL: reads "nm" lines on stdin, prints the names that are not weft_*.
check() {
    bad=$(awk 'NF >= 2 { name = $NF; if (name !~ /^weft_/) print name }' | sort -u)
    if [ -n "$bad" ]; then
        echo "$1: $(echo "$bad" | wc -l) defined external symbol(s) outside weft_:"
        echo "$bad" | sed 's/^/  /'
        status=1
    else
        echo "$1: ok"
    fi
}

for f in "$so" "$ar"; do
    [ -f "$f" ] || { echo "missing: $f"; exit 1; }
done
# Dynamic symbol table of the shared library (what the dynamic linker resolves against).
"$nm" -D --defined-only "$so" | check "$so (dynamic)"
# Every member of the archive: global and weak definitions (lines "ADDR T name").
"$nm" -g --defined-only "$ar" | grep -E '^[0-9a-fA-F]+ ' | check "$ar"
# Sanity: the check must see the API, or it proves nothing.
if ! "$nm" -D --defined-only "$so" | grep -q ' weft_server_new$'; then
    echo "$so: weft_server_new not exported"; status=1
fi
if ! "$nm" -g --defined-only "$ar" | grep -q ' weft_server_new$'; then
    echo "$ar: weft_server_new not defined"; status=1
fi
exit $status
