#!/bin/sh
# Builds the server binary of another commit for mixed.py's before/after
# comparison, in its own git worktree (never in the current tree): DIR gets a
# detached checkout of COMMIT and a Release build of the bertstudio binary.
# Prints the binary's path. A DIR already built at COMMIT is reused.
# usage: bench/serve/build-before.sh COMMIT DIR
set -eu
commit=$1 dir=$2
if [ ! -e "$dir/.git" ]; then
  git worktree add --detach "$dir" "$commit" >/dev/null 2>&1
elif [ "$(git -C "$dir" rev-parse HEAD)" != "$(git rev-parse "$commit^{commit}")" ]; then
  echo "build-before.sh: $dir holds another commit than $commit" >&2; exit 1
fi
(cd "$dir" && cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null &&
  cmake --build build -j 2 --target bertstudio_bin >/dev/null)
echo "$dir/build/bertstudio"
