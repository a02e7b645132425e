#!/bin/sh
# Builds the web studio (web/) and the C file that embeds it in the binary.
# npm ci runs only when web/package-lock.json changed since the last install.
# usage: scripts/web-build.sh WEB_DIR DIST_DIR OUT.c
set -eu
web=$1 dist=$2 out=$3
here=$(cd "$(dirname "$0")" && pwd)
want=$(sha256sum "$web/package-lock.json" | cut -d' ' -f1)
stamp=$web/node_modules/.bertstudio-lock
# Build folders (build/, build-debug/) share web/node_modules: one installs at a time.
exec 9<"$web/package-lock.json"
flock 9
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  (cd "$web" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" >"$stamp"
fi
flock -u 9
(cd "$web" && node node_modules/vite/bin/vite.js build --outDir "$dist" --emptyOutDir --logLevel warn)
node "$here/embed-web.mjs" "$dist" "$out.tmp"
mv "$out.tmp" "$out"
