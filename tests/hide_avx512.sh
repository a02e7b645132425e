#!/bin/sh
# bench/hide-avx512.sh, the benchmarks' AVX2-only CPU (bench/compare.sh's
# BS_BENCH_HIDE_AVX512=1, bench/serve/compare.py --hide-avx512), does what
# the figures rely on:
# - with no BS_CPU, our dispatch sees no AVX-512 and picks the avx2 path,
#   naming why in the load log's words;
# - a program's own SIGSEGV handler still gets its faults: node's WebAssembly
#   bounds checks are such faults, and node (ONNX Runtime's host in the
#   benchmarks) must still turn one into a RuntimeError, not die.
# Skipped (77) where cpuid faulting is missing or the CPU has no AVX2.
# usage: hide_avx512.sh CPU_PROBE SOURCE_DIR
set -eu
probe=$1 src=$2
hide="sh $src/bench/hide-avx512.sh"
"$probe" avx2 >/dev/null || { echo "no AVX2 here: skipped"; exit 77; }
unset BS_CPU
got=$($hide "$probe" --check) || exit $?
echo "$got"
case $got in
"kernels: avx2+fma3 (no avx512f"*) ;;
*) echo "FAIL: expected the avx2 path, chosen for want of avx512f" >&2; exit 1 ;;
esac

command -v node >/dev/null || { echo "no node: its SIGSEGV handler is not checked"; exit 0; }
# (module (memory 1) (func (export "f") (result i32) (i32.load (i32.const 131072))))
js='const b = new Uint8Array([0,97,115,109,1,0,0,0, 1,5,1,96,0,1,127, 3,2,1,0, 5,3,1,0,1,
  7,5,1,1,102,0,0, 10,11,1,9,0,65,128,128,8,40,2,0,11]);
const f = new WebAssembly.Instance(new WebAssembly.Module(b)).exports.f;
try { f(); console.log("no trap"); } catch (e) { console.log(e.constructor.name); }'
got=$($hide node -e "$js") || { echo "FAIL: node died under hide-avx512.sh" >&2; exit 1; }
echo "node, an out-of-bounds WebAssembly load: $got"
[ "$got" = RuntimeError ] || { echo "FAIL: expected RuntimeError" >&2; exit 1; }
