#!/bin/sh
# Build the Debian packages with CPack: libtxstats<soversion>, libtxstats-dev, txstats-server.
# usage: deb.sh BUILD_DIR   (the .deb files are left in BUILD_DIR)
set -eu
build="${1:?usage: deb.sh BUILD_DIR}"
src=$(cd "$(dirname "$0")/.." && pwd)
cmake -S "$src" -B "$build" -DCMAKE_INSTALL_PREFIX=/usr -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DBUILD_TESTING=OFF -DTXSTATS_BUILD_EXAMPLES=OFF -DTXSTATS_WERROR=ON >/dev/null
cmake --build "$build" -j "$(nproc 2>/dev/null || echo 2)"
(cd "$build" && cpack -G DEB >/dev/null)
ls "$build"/*.deb
