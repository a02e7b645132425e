#!/bin/sh
# Builds the web studio (web/) and the C file that embeds it in the binary.
# npm ci runs only when web/package-lock.json changed since the last install.
# usage: scripts/web-build.sh WEB_DIR DIST_DIR OUT.c
set -eu
web=$1 dist=$2 out=$3
here=$(cd "$(dirname "$0")" && pwd)
sh "$here/node-deps.sh" "$web" "$out.deps"
(cd "$web" && node node_modules/vite/bin/vite.js build --outDir "$dist" --emptyOutDir --logLevel warn)
node "$here/embed-web.mjs" "$dist" "$out.tmp"
mv "$out.tmp" "$out"
