#!/bin/sh
# The portable path on ARM (make test-arm64): the engine (BS_ENGINE_ONLY: util,
# tensor, tokenizer, model, pipeline and their unit tests) cross-built for
# aarch64 with Debian's toolchain (cmake/aarch64-linux-gnu.cmake) into BUILD_DIR,
# its tests run by ctest under qemu-aarch64. Exits 0, saying why, when the
# cross compilers, qemu-aarch64 or the arm64 libraries are missing
# (scripts/install-deps.sh installs them).
#   usage: tests/arm64.sh BUILD_DIR JOBS [CMAKE_FLAG...]
set -eu
cd "$(dirname "$0")/.."
dir=$1 jobs=$2
shift 2

skip() {
    echo "test-arm64: skipped: $*; scripts/install-deps.sh installs what is missing"
    exit 0
}
for c in aarch64-linux-gnu-gcc aarch64-linux-gnu-g++ qemu-aarch64; do
    command -v "$c" >/dev/null 2>&1 || skip "$c not found"
done
missing=
for m in jansson openblas libutf8proc libpcre2-8 libsodium cmocka double-conversion; do
    PKG_CONFIG_LIBDIR=/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig \
        pkg-config --exists "$m" || missing="$missing $m"
done
[ -z "$missing" ] || skip "no arm64 pkg-config module for$missing"
[ -e /lib/ld-linux-aarch64.so.1 ] || skip "no /lib/ld-linux-aarch64.so.1 (libc6:arm64)"

t0=$(date +%s)
cmake -S . -B "$dir" -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake -DBS_ENGINE_ONLY=ON \
    -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build "$dir" -j "$jobs"
t1=$(date +%s)
# qemu's TCG runs the tests ~50x slower than natively (~2.5 min of CPU in all).
# Left out: test_pipeline_fixtures' test_summarization (21 BART beam searches,
# ~60 s alone; BART's forward passes are still checked by test_model_bart*).
cd "$dir"
BS_TEST_SKIP=test_summarization ctest --output-on-failure -L unit -j "$jobs"
echo "test-arm64: built in $((t1 - t0)) s, tests in $(($(date +%s) - t1)) s"
