#!/bin/sh
# Runs a command on this CPU as if it had no AVX-512 (AVX2, FMA3 and F16C
# stay), through bench/hide-avx512.c's LD_PRELOAD library: our engine's
# dispatch and ONNX Runtime's (for bench/compare.sh, transformers.js in
# bench/serve/compare.py) then both choose their AVX2 paths by themselves,
# as on an AMD Zen 2/3 or a laptop. glibc's string functions are told to
# leave AVX-512 too (GLIBC_TUNABLES).
#
#   sh bench/hide-avx512.sh COMMAND [ARGS...]   run COMMAND so
#   sh bench/hide-avx512.sh --env               print the two variables
#                                               (NAME=value lines) to set
#
# Needs cpuid faulting (x86-64 Linux; /proc/cpuinfo's "cpuid_fault"):
# without it, exits 77 and says so. COMMAND must be dynamically linked (a
# static program ignores LD_PRELOAD and would see every feature). The library is built on first use into
# bench/out/ (or $BS_HIDE_AVX512_DIR).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${BS_HIDE_AVX512_DIR:-$root/bench/out}
lib=$dir/hide-avx512.so
src=$root/bench/hide-avx512.c

[ $# -gt 0 ] || { echo "usage: sh bench/hide-avx512.sh COMMAND [ARGS...] | --env" >&2; exit 2; }
[ "$(uname -m)" = x86_64 ] || { echo "hide-avx512: x86-64 only (this is $(uname -m))" >&2; exit 77; }
grep -qw cpuid_fault /proc/cpuinfo ||
    { echo "hide-avx512: this CPU or kernel has no cpuid faulting (no cpuid_fault in /proc/cpuinfo)" >&2; exit 77; }
if [ ! -f "$lib" ] || [ -n "$(find "$src" -newer "$lib")" ]; then
    mkdir -p "$dir"
    # built beside it and renamed: a run started meanwhile sees the old or the new one
    if ! ${CC:-cc} -O2 -Wall -Wextra -shared -fPIC "$src" -o "$lib.$$" -ldl || ! mv "$lib.$$" "$lib"; then
        echo "hide-avx512: could not build $lib from $src" >&2
        exit 1
    fi
fi
# glibc 2.26+: these names of its x86 cpu features are dropped from its ifunc choices
tunables=glibc.cpu.hwcaps=-AVX512F,-AVX512CD,-AVX512BW,-AVX512DQ,-AVX512VL,-AVX512ER,-AVX512PF
if [ "$1" = --env ]; then
    printf 'LD_PRELOAD=%s\nGLIBC_TUNABLES=%s\n' "$lib" "$tunables"
    exit 0
fi
LD_PRELOAD=$lib${LD_PRELOAD:+:$LD_PRELOAD} GLIBC_TUNABLES=$tunables exec "$@"
