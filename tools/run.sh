#!/usr/bin/env bash
# Installs what is missing, builds, and starts ticketd on ./data with the reference application
# loaded (demo mode); prints the admin token and the demo logins. Extra arguments go to ticketd.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build
exec build/server/ticketd --demo --data-dir ./data "$@"
