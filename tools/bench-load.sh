#!/usr/bin/env bash
# Starts ticketd (reference application, no rate limit) on a scratch data directory and a free
# loopback port, runs ticketd-load against it, and stops it. Arguments go to ticketd-load:
#   tools/bench-load.sh submit --connections 64 --seconds 10 [--peer]
#   tools/bench-load.sh read --tickets 100000 --seconds 10
# Expects a build in ./build (tools/test.sh or tools/run.sh make one).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${TICKETD_BUILD:-$root/build}
data=$(mktemp -d /tmp/ticketd-bench.XXXXXX)
log="$data.log"
"$build/server/ticketd" --demo --data-dir "$data" --listen 127.0.0.1:0 --rate-limit 0 \
  --reference-dir "$root/domain/reference" >"$log" 2>&1 &
server=$!
cleanup() { kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$data" "$log"; }
trap cleanup EXIT
url=""
for _ in $(seq 1 300); do  # up to 30 s for the demo to load
  url=$(grep -o 'ticketd serving http://[0-9.]*:[0-9]*' "$log" | head -n 1 | cut -d' ' -f3 || true)
  [[ -n $url ]] && break
  kill -0 "$server" 2>/dev/null || { cat "$log" >&2; exit 1; }
  sleep 0.1
done
[[ -n $url ]] || { echo "ticketd did not start" >&2; cat "$log" >&2; exit 1; }
# Submit and read runs also print the server's CPU a request by thread (server_cpu_us_per_request).
server_cpu=()
case "${1:-}" in submit | read) server_cpu=(--server-pid "$server") ;; esac
"$build/tools/ticketd-load" "$@" --url "$url" "${server_cpu[@]}"
