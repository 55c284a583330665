#!/usr/bin/env bash
# Installs the Debian 12 packages ticketd needs to build, test and benchmark. Idempotent and quiet
# when everything is already there; needs root (or sudo) only when something is missing.
set -euo pipefail
packages=(
  cmake ninja-build g++ ccache pkg-config git
  libboost-dev libboost-system-dev librocksdb-dev libflatbuffers-dev flatbuffers-compiler
  libsimdjson-dev libspdlog-dev libfmt-dev libgtest-dev libgmock-dev libssl-dev libsodium-dev
  libhowardhinnant-date-dev tzdata libgoogle-perftools-dev libabsl-dev
  libpango1.0-dev libcairo2-dev libgdk-pixbuf-2.0-dev fonts-noto-cjk poppler-utils
  libcurl4-openssl-dev libisal-dev
  python3-aiosmtpd openssl libcsv-dev libmagic-dev
  python3 python3-websocket curl
  clang libfuzzer-14-dev libclang-rt-14-dev
)
# The benchmark peer (../shared/bench/pg-event-store-peer.sh) only with --bench.
[[ ${1:-} == --bench ]] && packages+=(postgresql postgresql-contrib)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
((${#missing[@]} == 0)) && exit 0

sudo=()
((EUID == 0)) || sudo=(sudo)
echo "install-deps: installing ${missing[*]}" >&2
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
