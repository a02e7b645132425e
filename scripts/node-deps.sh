#!/bin/sh
# Installs the exact npm packages of a folder's package-lock.json (npm ci),
# only when the lock changed since the last install; then touches STAMP.
# Build folders (build/, build-debug/) share DIR/node_modules: one installs at a time.
# usage: scripts/node-deps.sh DIR STAMP
set -eu
dir=$1 stamp_out=$2
want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
stamp=$dir/node_modules/.bertstudio-lock
exec 9<"$dir/package-lock.json"
flock 9
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" >"$stamp"
fi
flock -u 9
touch "$stamp_out"
