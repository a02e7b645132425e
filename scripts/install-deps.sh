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
"${sudo[@]}" apt-get update -qq >/dev/null
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
