#!/bin/sh
# Compares the built libweft.so with the committed ABI description (abi/libweft.so.N.abi,
# abidw output) using abidiff (abigail-tools). Fails on an incompatible change (a removed
# function, a changed type or signature) unless the SONAME changed too. Compatible additions
# pass with a note. How to update the baseline: docs/abi.md.
#   usage: abi.sh BASELINE LIBWEFT_SO INCLUDE_DIR
set -u
base=$1 lib=$2 inc=$3
command -v abidiff >/dev/null 2>&1 || { echo "abidiff not found: run scripts/setup test"; exit 1; }

base_soname=$(sed -n "s/^<abi-corpus [^>]*soname='\([^']*\)'.*/\1/p" "$base" | head -n 1)
lib_soname=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
if [ -z "$base_soname" ] || [ -z "$lib_soname" ]; then
    echo "cannot read the SONAME of $base or $lib"
    exit 1
fi
if [ "$base_soname" != "$lib_soname" ]; then
    echo "SONAME $base_soname -> $lib_soname: incompatible changes are allowed;"
    echo "write the new baseline abi/$lib_soname.abi (docs/abi.md)"
    exit 0
fi
if ! readelf -S "$lib" | grep -q '\.debug_info'; then
    echo "note: $lib has no debug info: only exported functions are compared, not types"
fi

# Additions (new functions) are compatible: leave them out of the verdict. Anything else that
# abidiff reports (a removed or changed function, a changed type, even one whose size stayed
# the same) breaks programs built against the baseline.
abidiff --no-added-syms --headers-dir2 "$inc" --drop-private-types "$base" "$lib" \
    >abi-report.txt 2>&1
rc=$?
cat abi-report.txt
# abidiff's status is a bit mask: 1 error, 2 usage error, 4 ABI change, 8 incompatible change.
if [ $((rc & 3)) -ne 0 ]; then
    echo "abidiff failed (status $rc)"
    exit 1
fi
if [ $((rc & 12)) -ne 0 ]; then
    echo "INCOMPATIBLE ABI change with the same SONAME ($lib_soname): undo it, or bump the"
    echo "SOVERSION and write a new baseline (docs/abi.md)"
    exit 1
fi
if ! abidiff --headers-dir2 "$inc" --drop-private-types "$base" "$lib" >/dev/null 2>&1; then
    echo "compatible ABI change (additions): refresh abi/$lib_soname.abi (docs/abi.md)"
fi
echo "ABI of $lib_soname: compatible with the baseline"
exit 0
