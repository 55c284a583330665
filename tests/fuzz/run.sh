#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each for a while on the seeds in
# tests/fuzz/corpus. New inputs go to a scratch directory, never into the committed corpus.
# Usage: tests/fuzz/run.sh [--seconds 60] [--build-dir build/fuzz]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
seconds=60
build="$here/../../build/fuzz"
while (($#)); do
  case $1 in
    --seconds) seconds=$2; shift 2 ;;
    --build-dir) build=$2; shift 2 ;;
    *) echo "usage: $0 [--seconds N] [--build-dir DIR]" >&2; exit 2 ;;
  esac
done
cmake -S "$here" -B "$build" -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
if ! cmake --build "$build" >"$build/build.log" 2>&1; then
  grep -E "error|Error" "$build/build.log" >&2 || cat "$build/build.log" >&2
  echo "fuzz: the targets did not build; full log: $build/build.log" >&2
  exit 1
fi
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for target in json definitions condition ticket snapshot; do
  mkdir -p "$scratch/$target"
  echo "fuzz_$target: ${seconds}s"
  status=0
  "$build/fuzz_$target" -max_total_time="$seconds" -max_len=8192 -timeout=10 -print_final_stats=1 \
    "$scratch/$target" "$here/corpus/$target" >"$scratch/$target.log" 2>&1 || status=$?
  grep -E "^(stat::number_of_executed_units|Done)" "$scratch/$target.log" || true
  if ((status != 0)); then
    # A crash, sanitizer report, leak or timeout: show it, and keep the input that caused it.
    grep -E "ERROR|SUMMARY|runtime error|Test unit written" "$scratch/$target.log" >&2 || true
    cp "$scratch"/../crash-* "$here/../../" 2>/dev/null || true
    echo "fuzz_$target FAILED (exit $status); full log: $build/fuzz_$target.log" >&2
    cp "$scratch/$target.log" "$build/fuzz_$target.log"
    exit 1
  fi
done
echo "fuzz: no crashes"
