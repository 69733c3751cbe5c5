#!/bin/sh
# Installs the build into a temporary prefix and builds tests/lib/consumer/selfecho.c outside
# the tree against it, four ways: CMake find_package (shared, then static) and pkg-config
# (shared, then static with --static), then runs each (a loop echoing to itself).
#   usage: install.sh CMAKE BUILD_DIR LIBDIR WORK_DIR CC "SANITIZER_FLAGS"
set -eu
cmake=$1 build=$2 libdir=$3 work=$4 cc=$5 san=$6
src=$(cd "$(dirname "$0")/consumer" && pwd)
prefix=$work/prefix

rm -rf "$work"
mkdir -p "$work"
"$cmake" --install "$build" --prefix "$prefix" >"$work/install.log"
fail() { echo "install test: $*" >&2; exit 1; }

# The layout and the SONAME.
for f in include/weft.h "$libdir/libweft.a" "$libdir/libweft.so" "$libdir/libweft.so.0" \
         "$libdir/pkgconfig/weft.pc" "$libdir/cmake/weft/weftConfig.cmake" \
         "$libdir/cmake/weft/weftConfigVersion.cmake"; do
    [ -e "$prefix/$f" ] || fail "missing $prefix/$f"
done
soname=$(readelf -d "$prefix/$libdir/libweft.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = "libweft.so.0" ] || fail "SONAME is '$soname', expected libweft.so.0"
echo "layout and SONAME ($soname): ok"

# run NAME EXE SHARED(yes|no): runs a consumer and checks which libweft it uses.
run() {
    if [ "$3" = yes ]; then
        LD_LIBRARY_PATH=$prefix/$libdir ldd "$2" | grep -q "$prefix/$libdir/libweft.so.0" ||
            fail "$1: not linked against the installed libweft.so.0"
    else
        ! ldd "$2" | grep -q libweft || fail "$1: linked against libweft.so, expected libweft.a"
    fi
    LD_LIBRARY_PATH=$prefix/$libdir "$2" || fail "$1: selfecho failed"
    echo "$1: ok"
}

# CMake: find_package(weft CONFIG) -> weft::weft.
for kind in shared static; do
    static=OFF
    [ $kind = static ] && static=ON
    "$cmake" -S "$src" -B "$work/cmake-$kind" -DCMAKE_PREFIX_PATH="$prefix" \
        -DCMAKE_C_COMPILER="$cc" -DCMAKE_C_FLAGS="$san" -DCMAKE_EXE_LINKER_FLAGS="$san" \
        -DWEFT_USE_STATIC_LIBS=$static >"$work/cmake-$kind.log" 2>&1 ||
        { cat "$work/cmake-$kind.log"; fail "find_package ($kind): configure failed"; }
    "$cmake" --build "$work/cmake-$kind" >>"$work/cmake-$kind.log" 2>&1 ||
        { cat "$work/cmake-$kind.log"; fail "find_package ($kind): build failed"; }
    [ $kind = shared ] && shared=yes || shared=no
    run "find_package ($kind)" "$work/cmake-$kind/selfecho" $shared
done

# pkg-config: weft.pc (shared), then --static (Requires.private and Libs.private).
export PKG_CONFIG_PATH="$prefix/$libdir/pkgconfig"
# shellcheck disable=SC2046,SC2086
$cc $san $(pkg-config --cflags weft) -o "$work/pc-shared" "$src/selfecho.c" \
    $(pkg-config --libs weft) || fail "pkg-config (shared): build failed"
run "pkg-config (shared)" "$work/pc-shared" yes
# shellcheck disable=SC2046,SC2086
$cc $san $(pkg-config --cflags weft) -o "$work/pc-static" "$src/selfecho.c" \
    $(pkg-config --static --libs weft | sed 's/-lweft\b/-l:libweft.a/') ||
    fail "pkg-config --static: build failed"
run "pkg-config (static)" "$work/pc-static" no
