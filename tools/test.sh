#!/usr/bin/env bash
# Installs what is missing, builds everything and runs every test. ctest's summary is the last
# thing printed. Usage: tools/test.sh [build dir, default build]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
tools/install-deps.sh
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build"
cd "$build"
exec ctest --output-on-failure --timeout 600 -j "$(nproc)"
