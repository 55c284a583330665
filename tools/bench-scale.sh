#!/usr/bin/env bash
# Restart time, memory and rebuild at scale (#6's restart, memory and rebuild figures):
#   tools/bench-scale.sh [TICKETS=1000000]
# Seeds TICKETS open reference tickets through the domain logic (ticketctl bench seed), then
# starts ticketd on them twice — replaying the whole log, then from the snapshot its clean stop
# saved — printing the time from start to serving and the resident memory, and finally times
# ticketctl rebuild. Prints name=value lines. Needs a build in ./build.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${TICKETD_BUILD:-$root/build}
tickets=${1:-1000000}
data=$(mktemp -d /tmp/ticketd-scale.XXXXXX)
log="$data.log"
server=""
elapsed=""
cleanup() { [[ -n $server ]] && kill "$server" 2>/dev/null; rm -rf "$data" "$log"; }
trap cleanup EXIT

# Starts ticketd; sets $server, and $elapsed to the seconds until it serves.
start() {
  : >"$log"
  local t0; t0=$(date +%s.%N)
  "$build/server/ticketd" --data-dir "$data" --listen 127.0.0.1:0 --rate-limit 0 \
    --reference-dir "$root/domain/reference" "$@" >"$log" 2>&1 &
  server=$!
  until grep -q 'ticketd serving' "$log"; do
    kill -0 "$server" 2>/dev/null || { cat "$log" >&2; exit 1; }
    sleep 0.05
  done
  elapsed=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
}
stop() { kill -TERM "$server"; wait "$server" || true; server=""; }
rss_mb() { awk '/VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$server/status"; }

start --demo
stop
"$build/tools/ticketctl" bench seed --data-dir "$data" --tickets "$tickets" | sed 's/^/seed_/'
start
echo "restart_replay_s=$elapsed"
echo "rss_replay_mb=$(rss_mb)"
stop
start
echo "restart_snapshot_s=$elapsed"
# Serving comes first; the pending timers the restore left out are computed right after.
for _ in $(seq 1 600); do grep -q 'pending timers computed' "$log" && break; sleep 0.05; done
echo "timers_completed_after_serving_s=$(grep -o 'pending timers computed in [0-9.]*' "$log" | grep -o '[0-9.]*$')"
echo "rss_snapshot_mb=$(rss_mb)"
stop
"$build/tools/ticketctl" rebuild --data-dir "$data" | tr ' ' '\n' | grep = | sed 's/^/rebuild_/'
echo "data_dir_mb=$(du -sm "$data" | cut -f1)"
