#!/bin/sh
# Tokenizer throughput: BERT Studio's C tokenizer vs HuggingFace `tokenizers`
# (Rust, Node binding) and the JS port `@huggingface/tokenizers`, on 1 MiB of
# English and 1 MiB of mixed-script text, WordPiece (bert-base-uncased) and
# byte-level BPE (roberta-base). Prints a table of tokens/second.
# Usage: bench/tokenize/run.sh [BUILD_DIR]   (default: build)
set -eu
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(cd "${1:-$SRC/build}" 2>/dev/null && pwd || { mkdir -p "${1:-$SRC/build}"; cd "${1:-$SRC/build}" && pwd; })
OUT=$BUILD/bench-tokenize
mkdir -p "$OUT" "$BUILD/node"
[ -f "$BUILD/CMakeCache.txt" ] || cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" -j2 --target bs_tokenizer bs_util >/dev/null 2>&1
cc -O2 -march=x86-64-v3 -I"$SRC/include" -I"$SRC/src" "$SRC/bench/tokenize/bench_tokenize.c" \
  "$BUILD/libbs_tokenizer.a" "$BUILD/libbs_util.a" \
  $(pkg-config --libs libutf8proc libpcre2-8 jansson libsodium) -lpthread -lm -o "$OUT/bench_tokenize"
for p in tokenizers@0.23.2 @huggingface/tokenizers; do
  name=${p%@0.23.2}
  [ -f "$BUILD/node/node_modules/$name/package.json" ] ||
    npm install --no-audit --no-fund --prefix "$BUILD/node" "$p" >/dev/null 2>&1
done
node "$SRC/bench/tokenize/gen_texts.mjs" "$OUT"
FIX=$SRC/tests/fixtures/tokenizers
rate() { # json line -> "tokens tokens/s"
  node -e 'const r=JSON.parse(process.argv[1]);console.log(r.tokens+" "+Math.round(r.tokens/r.seconds))' "$1"
}
printf '%-10s %-8s %-38s %10s %14s\n' model text implementation tokens tokens/s
for model in bert-base-uncased roberta-base; do
  kind=WordPiece; [ $model = roberta-base ] && kind=BPE
  for text in english mixed; do
    f=$OUT/$text.txt
    for impl in "bertstudio C, 1 thread" "bertstudio C, 2 threads" "tokenizers 0.23.2 (Rust), encode" \
                "tokenizers 0.23.2 (Rust), encodeBatch" "@huggingface/tokenizers (JS)"; do
      case $impl in
        "bertstudio C, 1 thread") r=$("$OUT/bench_tokenize" "$FIX/$model" "$f" 1) ;;
        "bertstudio C, 2 threads") r=$("$OUT/bench_tokenize" "$FIX/$model" "$f" 2) ;;
        *encodeBatch) r=$(node "$SRC/bench/tokenize/bench.mjs" tokenizers batch "$FIX/$model" "$f" "$BUILD/node/node_modules") ;;
        *Rust*) r=$(node "$SRC/bench/tokenize/bench.mjs" tokenizers seq "$FIX/$model" "$f" "$BUILD/node/node_modules") ;;
        *) r=$(node "$SRC/bench/tokenize/bench.mjs" js seq "$FIX/$model" "$f" "$BUILD/node/node_modules") ;;
      esac
      set -- $(rate "$r")
      printf '%-10s %-8s %-38s %10s %14s\n' $kind $text "$impl" "$1" "$2"
    done
  done
done
