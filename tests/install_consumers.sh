#!/bin/sh
# Install libtxstats into a temporary prefix, then build and run examples/basic.c from outside the
# tree twice: with nothing but pkg-config, and with CMake's find_package(txstats). The prefix is
# moved before the pkg-config build to prove the .pc file is relocatable.
set -eu
cmake_bin="$1"; build="$2"; src="$3"
work=$(mktemp -d /tmp/txstats-install-XXXXXX)
trap 'rm -rf "$work"' EXIT
"$cmake_bin" --install "$build" --prefix "$work/prefix" >/dev/null
mv "$work/prefix" "$work/moved"
prefix="$work/moved"
pcdir=$(dirname "$(find "$prefix" -name libtxstats.pc)")
libdir=$(dirname "$pcdir")

echo "== pkg-config only"
cp -r "$src/examples" "$work/examples"
PKG_CONFIG_PATH="$pcdir" make -s -C "$work/examples/pkgconfig" basic
LD_LIBRARY_PATH="$libdir" "$work/examples/pkgconfig/basic"

echo "== find_package(txstats)"
"$cmake_bin" -S "$work/examples/cmake" -B "$work/cm" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
"$cmake_bin" --build "$work/cm" >/dev/null
LD_LIBRARY_PATH="$libdir" "$work/cm/basic"
echo "install consumers: ok"
