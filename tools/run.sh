#!/usr/bin/env bash
# Installs what is missing, builds, and runs ticketd on ./data.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build
mkdir -p data
exec build/tools/ticketctl verify --data-dir ./data
