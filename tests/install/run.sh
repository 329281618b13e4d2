#!/usr/bin/env bash
# Installs deferq into a temporary prefix, builds an outside project against it (CMake package and
# pkg-config), and runs it against a broker and worker started from the installed programs.
set -euo pipefail
source_dir=$1 build_dir=$2 generator=${3:-Ninja}
work=$(mktemp -d /tmp/deferq-install-XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

cmake --install "$build_dir" --prefix "$work/prefix" > "$work/install.log"
test -x "$work/prefix/bin/deferq-broker"
test -x "$work/prefix/bin/deferq-worker"
test -x "$work/prefix/bin/deferq"
test -f "$work/prefix/include/deferq/client.hpp"
test -f "$work/prefix/include/deferq/plugin.hpp"

cmake -S "$source_dir/tests/install/project" -B "$work/build" -G "$generator" \
    -DCMAKE_PREFIX_PATH="$work/prefix" > "$work/configure.log"
cmake --build "$work/build" > "$work/build.log"

libdir=$(ls -d "$work/prefix"/lib*/pkgconfig | head -1)
PKG_CONFIG_PATH="$libdir" g++ -std=c++20 "$source_dir/tests/install/project/pkgconfig_main.cpp" \
    -o "$work/pkgconfig_main" $(PKG_CONFIG_PATH="$libdir" pkg-config --cflags --libs deferq)

"$work/prefix/bin/deferq-broker" --clients 'tcp://127.0.0.1:*' --workers 'tcp://127.0.0.1:*' \
    --ready-file "$work/ready" > "$work/broker.log" 2>&1 &
pids+=($!)
for _ in $(seq 200); do [ -f "$work/ready" ] && break; sleep 0.05; done
clients=$(sed -n 's/^clients=//p' "$work/ready")
workers=$(sed -n 's/^workers=//p' "$work/ready")
"$work/prefix/bin/deferq-worker" --broker "$workers" --name installed > "$work/worker.log" 2>&1 &
pids+=($!)
# The same plugin built with nothing but pkg-config's cflags (a plugin links no deferq library).
PKG_CONFIG_PATH="$libdir" g++ -std=c++20 -shared -fPIC "$source_dir/tests/install/project/plugin.cpp" \
    -o "$work/libpkgconfig_plugin.so" $(PKG_CONFIG_PATH="$libdir" pkg-config --cflags deferq)

"$work/prefix/bin/deferq-worker" --broker "$workers" --name plugged --no-builtins \
    --plugin "$work/build/liboutside_plugin.so" --plugin "$work/libpkgconfig_plugin.so" \
    > "$work/plugin-worker.log" 2>&1 &
pids+=($!)

output=$(timeout 60 "$work/build/outside" "$clients" "$workers")
echo "$output"
[ "$output" = "square=49 add=5" ]
output=$(timeout 60 "$work/pkgconfig_main" "$clients")
echo "$output"
[ "$output" = "pkgconfig add=42" ]
output=$(timeout 60 "$work/prefix/bin/deferq" --broker "$clients" --timeout 30000 call outside_triple 14)
echo "plugin outside_triple(14)=$output"
[ "$output" = "42" ]
if "$work/prefix/bin/deferq-worker" --broker "$workers" --plugin "$work/missing.so" > "$work/bad.log" 2>&1; then
    echo "deferq-worker started with a missing plugin"; exit 1
fi
grep -q "plugin $work/missing.so: no such file" "$work/bad.log"
echo "install test passed"
