#!/usr/bin/env bash
# Installs the Debian packages BERT Studio builds and tests with. Idempotent and
# quiet: only what is missing is installed, and nothing is printed when all is there.
set -euo pipefail

pkgs=(
  build-essential cmake pkg-config clang
  libmicrohttpd-dev libjansson-dev libsqlite3-dev libmongoc-dev libbson-dev
  libopenblas-dev libutf8proc-dev libpcre2-dev libdouble-conversion-dev
  libcurl4-openssl-dev libsodium-dev libcmocka-dev
  libpython3.11-dev libseccomp-dev
  python3 python3-pytest python3-requests python3-numpy
  nodejs npm
  chromium
  qemu-user # tests/qemu_cpu.py: the engine on an emulated AVX2-only and a no-AVX CPU
)
# make test-arm64 (tests/arm64.sh): the engine cross-built for aarch64 and run
# under qemu-aarch64, with the engine's libraries for arm64 (multiarch).
if [ "$(dpkg --print-architecture)" = amd64 ]; then
  pkgs+=(
    gcc-aarch64-linux-gnu g++-aarch64-linux-gnu libc6-dev-arm64-cross
    libopenblas-dev:arm64 libjansson-dev:arm64 libsodium-dev:arm64 libdouble-conversion-dev:arm64
    libcmocka-dev:arm64 libutf8proc-dev:arm64 libpcre2-dev:arm64
  )
fi

missing=()
for p in "${pkgs[@]}"; do
  # nodejs/npm may come from outside Debian's packages (e.g. NodeSource): a
  # working command is as good as the package.
  case $p in nodejs|npm) command -v "${p/nodejs/node}" >/dev/null 2>&1 && continue ;; esac
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo=(sudo -n)
else
  echo "install-deps: these Debian packages are missing: ${missing[*]}" >&2
  echo "install-deps: run as root, or install them with: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# arm64 packages need arm64 as a foreign architecture (the update below reads its lists)
if [[ " ${missing[*]}" == *:arm64* ]] && ! dpkg --print-foreign-architectures | grep -qx arm64; then
  "${sudo[@]}" dpkg --add-architecture arm64
fi
"${sudo[@]}" apt-get update -qq >/dev/null
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
