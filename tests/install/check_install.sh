#!/bin/sh
# Installs the build into a temporary prefix, then builds examples/embed.c
# there the way an outside program would (pkg-config, shared and static) and
# runs both on a fixture model: the installed headers, libraries and
# bertstudio.pc are enough. usage: check_install.sh BUILD_DIR SOURCE_DIR
set -eu
build=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
export PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig"
model="$src/tests/fixtures/models/tiny-bert-embeddings"
# shellcheck disable=SC2046
cc -std=c17 -O1 -o "$tmp/embed-shared" "$src/examples/embed.c" $(pkg-config --cflags --libs bertstudio) \
    -Wl,-rpath,"$tmp/prefix/lib"
# shellcheck disable=SC2046
cc -std=c17 -O1 -o "$tmp/embed-static" "$src/examples/embed.c" $(pkg-config --cflags bertstudio) \
    "$tmp/prefix/lib/libbertstudio.a" $(pkg-config --libs --static bertstudio | sed 's/-lbertstudio//')
"$tmp/embed-shared" "$model" "a first sentence" "another one" >"$tmp/shared.out"
"$tmp/embed-static" "$model" "a first sentence" "another one" >"$tmp/static.out"
cmp "$tmp/shared.out" "$tmp/static.out"
grep -q . "$tmp/shared.out"
# the shared library exports the public API and nothing else
bad=$(nm -D --defined-only "$tmp/prefix/lib/libbertstudio.so" | awk '{print $3}' | grep -v '^bs_' || true)
[ -z "$bad" ] || { echo "libbertstudio.so exports non-API symbols: $bad" >&2; exit 1; }
"$tmp/prefix/bin/bertstudio" --version
echo "install: ok"
