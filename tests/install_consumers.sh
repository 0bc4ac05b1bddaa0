#!/bin/sh
# Install libtxstats into a temporary prefix, then build and run examples/basic.c from outside the
# tree: with nothing but pkg-config (shared, then static with `pkg-config --static`), and with
# CMake's find_package(txstats). The prefix is moved first to prove that the .pc file and the
# server's run path are relocatable. A DESTDIR install lands under DESTDIR.
set -eu
cmake_bin="$1"; build="$2"; src="$3"
work=$(mktemp -d /tmp/txstats-install-XXXXXX)
trap 'rm -rf "$work"' EXIT
"$cmake_bin" --install "$build" --prefix "$work/prefix" >/dev/null
mv "$work/prefix" "$work/moved"
prefix="$work/moved"
pcdir=$(dirname "$(find "$prefix" -name libtxstats.pc)")
libdir=$(dirname "$pcdir")

echo "== the installed server runs from a moved prefix, without LD_LIBRARY_PATH"
if [ -x "$prefix/bin/txstats-server" ]; then
    env -u LD_LIBRARY_PATH "$prefix/bin/txstats-server" --version
    for f in share/man/man1/txstats-server.1 share/txstats/openapi.json \
             lib/systemd/system/txstats-server.service; do
        [ -s "$prefix/$f" ] || { echo "not installed: $f"; exit 1; }
    done
    grep -q '^\.SH EXIT STATUS' "$prefix/share/man/man1/txstats-server.1"
fi

echo "== pkg-config only"
cp -r "$src/examples" "$work/examples"
PKG_CONFIG_PATH="$pcdir" make -s -C "$work/examples/pkgconfig" basic
LD_LIBRARY_PATH="$libdir" "$work/examples/pkgconfig/basic"

echo "== pkg-config --static: libtxstats.a and its dependencies"
[ -f "$libdir/libtxstats.a" ] || { echo "libtxstats.a is not installed"; exit 1; }
libs=$(PKG_CONFIG_PATH="$pcdir" pkg-config --static --libs libtxstats)
echo "pkg-config --static --libs libtxstats: $libs"
# -ltxstats resolved to the archive, everything else as pkg-config says.
cc -O2 $(PKG_CONFIG_PATH="$pcdir" pkg-config --cflags libtxstats) -o "$work/basic-static" \
    "$src/examples/basic.c" $(echo "$libs" | sed 's/-ltxstats/-Wl,-Bstatic -ltxstats -Wl,-Bdynamic/')
if readelf -d "$work/basic-static" | grep -q 'libtxstats\.so'; then
    echo "basic-static still needs libtxstats.so"; exit 1
fi
env -u LD_LIBRARY_PATH "$work/basic-static"

echo "== find_package(txstats)"
"$cmake_bin" -S "$work/examples/cmake" -B "$work/cm" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
"$cmake_bin" --build "$work/cm" >/dev/null
LD_LIBRARY_PATH="$libdir" "$work/cm/basic"

echo "== find_package(txstats), target txstats::txstats_static"
"$cmake_bin" -S "$work/examples/cmake" -B "$work/cm-static" -DCMAKE_PREFIX_PATH="$prefix" \
    -DTXSTATS_TARGET=txstats::txstats_static >/dev/null
"$cmake_bin" --build "$work/cm-static" >/dev/null
if readelf -d "$work/cm-static/basic" | grep -q 'libtxstats\.so'; then
    echo "txstats::txstats_static still links libtxstats.so"; exit 1
fi
env -u LD_LIBRARY_PATH "$work/cm-static/basic"

echo "== DESTDIR"
DESTDIR="$work/destdir" "$cmake_bin" --install "$build" --prefix /opt/txstats >/dev/null
[ -n "$(find "$work/destdir/opt/txstats" -name 'libtxstats.so.*' | head -1)" ]
echo "install consumers: ok"
