#!/usr/bin/env bash
# Instructions the server spends on a submission, counted by valgrind's callgrind over every
# thread (user space; system calls not counted): a figure the shared machine's noise does not
# move, for telling two builds apart where submits/s cannot (BENCHMARKS.md, session 43).
#   tools/bench-instructions.sh [SECONDS=10]       # TICKETD_BUILD=<build> measures another build
# Starts ticketd under callgrind on a scratch directory (a minute or two to load the demo),
# submits for 3 s to warm up, zeroes the counts, submits for SECONDS over 8 connections, and
# prints name=value lines and the functions that cost most. libsodium is left out of the total:
# the load generator's one sign-in hashes a password, a fixed cost that would swamp the figure.
# Libraries choose their code by the CPU valgrind presents (no SHA extensions, no AVX-512), so
# OpenSSL's and libc's shares are larger than on the machine itself; compare builds, not parts.
# Needs valgrind (apt-get install valgrind).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${TICKETD_BUILD:-$root/build}
seconds=${1:-10}
command -v valgrind >/dev/null || { echo "needs valgrind: apt-get install valgrind" >&2; exit 1; }
data=$(mktemp -d /tmp/ticketd-instructions.XXXXXX)
log="$data.log"
server=""
cleanup() { [[ -n $server ]] && kill "$server" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$data" "$log"; }
trap cleanup EXIT

valgrind --tool=callgrind --callgrind-out-file="$data/callgrind.out" \
  "$build/server/ticketd" --demo --data-dir "$data/db" --listen 127.0.0.1:0 --rate-limit 0 \
  --reference-dir "$root/domain/reference" >"$log" 2>&1 &
server=$!
url=""
for _ in $(seq 1 3000); do  # up to 5 minutes: the demo loads 50 times slower under callgrind
  url=$(grep -o 'ticketd serving http://[0-9.]*:[0-9]*' "$log" | head -n 1 | cut -d' ' -f3 || true)
  [[ -n $url ]] && break
  kill -0 "$server" 2>/dev/null || { cat "$log" >&2; exit 1; }
  sleep 0.1
done
[[ -n $url ]] || { echo "ticketd did not start" >&2; exit 1; }

"$build/tools/ticketd-load" submit --url "$url" --connections 8 --seconds 3 >/dev/null
callgrind_control --zero "$server" >/dev/null 2>&1
"$build/tools/ticketd-load" submit --url "$url" --connections 8 --seconds "$seconds" >"$data/load.txt"
callgrind_control --dump "$server" >/dev/null 2>&1
kill -INT "$server"
wait "$server" 2>/dev/null || true
server=""
requests=$(grep '^requests=' "$data/load.txt" | cut -d= -f2)
errors=$(grep '^errors=' "$data/load.txt" | cut -d= -f2)
[[ ${errors:-0} == 0 ]] || { echo "the load had $errors errors" >&2; cat "$data/load.txt" >&2; exit 1; }

# Self costs by function from the dump the zeroing started (callgrind.out.1): a cost line after
# "calls=" is the callee's inclusive cost and is skipped; "ob=" names the library.
/usr/bin/python3 - "$data/callgrind.out.1" "$requests" <<'EOF'
import collections, re, sys
path, requests = sys.argv[1], int(sys.argv[2])
names = {"ob": {}, "fn": {}}
ob = fn = None
after_call = False
by_fn = collections.Counter()
by_ob = collections.Counter()
for line in open(path, errors="replace"):
    m = re.match(r"(c?)(ob|fn)=\((\d+)\)(?: (.*))?$", line.rstrip("\n"))
    if m:
        kind, ident, name = m.group(2), m.group(3), m.group(4)
        if name:
            names[kind][ident] = name
        if not m.group(1):
            if kind == "ob":
                ob = names["ob"][ident]
            else:
                fn = names["fn"][ident]
        continue
    if line.startswith("calls="):
        after_call = True
        continue
    if line[:1].isdigit() or line[:1] in "+-*":
        fields = line.split()
        if after_call:
            after_call = False
        elif len(fields) > 1 and fn is not None:
            by_fn[(ob, fn)] += int(fields[1])
            by_ob[ob] += int(fields[1])
kept = sum(v for o, v in by_ob.items() if "libsodium" not in (o or ""))
print("requests=%d" % requests)
print("instructions_per_submit=%d" % (kept // requests))
for o, v in by_ob.most_common(6):
    print("library_per_submit{%s}=%d" % ((o or "?").rsplit("/", 1)[-1], v // requests))
for (o, f), v in by_fn.most_common(25):
    if "libsodium" not in (o or ""):
        print("# %8d %s" % (v // requests, f[:120]))
EOF
