#!/bin/sh
# Every symbol the shared library exports is public API: txstats_ but not txstats__ (internal).
set -eu
lib="$1"
case "$lib" in *.so*) ;; *) echo "static library: nothing to check"; exit 0 ;; esac
bad=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRW]$/ {print $3}' | grep -v '^txstats_[a-z]' || true)
internal=$(nm -D --defined-only "$lib" | awk '{print $3}' | grep '^txstats__' || true)
if [ -n "$bad$internal" ]; then
    echo "unexpected exported symbols:"; echo "$bad$internal"; exit 1
fi
n=$(nm -D --defined-only "$lib" | grep -c ' T txstats_')
echo "exports: $n public functions, nothing else"
[ "$n" -ge 17 ]
