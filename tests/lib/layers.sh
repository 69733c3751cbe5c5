#!/bin/sh
# The build layers: libweft depends only on OpenSSL, zlib, libdeflate, c-ares, liburing and
# pthreads; a
# library-only build (-DWEFT_PROGRAM=OFF -DWEFT_TESTS=OFF) neither looks for nor links the
# program's libraries; scripts/setup installs for `make run` nothing that only the tests need.
#   usage: layers.sh CMAKE SOURCE_DIR LIBWEFT_SO WORK_DIR C_COMPILER
set -eu
cmake=$1 src=$2 so=$3 work=$4 cc=$5
fail() { echo "layers: $*" >&2; exit 1; }

# 1. What libweft.so needs at run time.
needed=$(readelf -d "$so" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | sort | tr '\n' ' ')
echo "libweft.so NEEDED: $needed"
for lib in $needed; do
    case "$lib" in
    libssl.so.* | libcrypto.so.* | libz.so.* | libdeflate.so.* | libcares.so.* | liburing.so.* | \
        libc.so.* | libpthread.so.* | libasan.so.* | libubsan.so.* | libtsan.so.* | libm.so.* | \
        libgcc_s.so.* | ld-linux*) ;;
    *) fail "libweft.so needs $lib (only OpenSSL, zlib, libdeflate, c-ares, liburing, pthreads)" ;;
    esac
done

# 2. The library alone: configure looks for none of the program's libraries, and it builds.
rm -rf "$work"
"$cmake" -S "$src" -B "$work" -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER="$cc" \
    -DWEFT_PROGRAM=OFF -DWEFT_TESTS=OFF >"$work.log" 2>&1 || { cat "$work.log"; fail "configure"; }
for dep in JANSSON LIBJWT INIH HIREDIS CMOCKA; do
    ! grep -q "^${dep}_FOUND" "$work/CMakeCache.txt" ||
        fail "-DWEFT_PROGRAM=OFF -DWEFT_TESTS=OFF still looks for $dep"
done
"$cmake" --build "$work" -j2 >>"$work.log" 2>&1 || { tail -30 "$work.log"; fail "build"; }
[ -f "$work/libweft.a" ] && [ -f "$work/libweft.so.0" ] || fail "the library was not built"
[ ! -e "$work/weft" ] || fail "-DWEFT_PROGRAM=OFF built the weft program"
echo "library-only build: ok"

# 3. scripts/setup: `make run` (scripts/setup build) installs no test-only peer.
build=$("$src/scripts/setup" --list build | tr '\n' ' ')
for p in chromium nodejs npm redis-server libcmocka-dev clang python3-websockets; do
    case " $build " in *" $p "*) fail "scripts/setup build installs $p" ;; esac
done
lib=$("$src/scripts/setup" --list lib | tr '\n' ' ')
for p in libdeflate-dev liburing-dev; do
    case " $lib " in *" $p "*) ;; *) fail "scripts/setup lib misses $p" ;; esac
done
for p in libjansson-dev libjwt-dev libinih-dev libhiredis-dev; do
    case " $lib " in *" $p "*) fail "scripts/setup lib installs $p" ;; esac
done
testset=$("$src/scripts/setup" --list test | tr '\n' ' ')
for p in libcmocka-dev doxygen abigail-tools redis-server chromium clang libjansson-dev; do
    case " $testset " in *" $p "*) ;; *) fail "scripts/setup test misses $p" ;; esac
done
grep -q '^release: setup-build$' "$src/Makefile" || fail "make release/run does not use scripts/setup build"
echo "scripts/setup sets: ok"
