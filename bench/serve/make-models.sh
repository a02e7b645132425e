#!/bin/sh
# Makes the serving benchmarks' models under DIR (default bench/out/serve), once:
#   DIR/base  bench/make-model.py: BERT-base shape (12 layers, hidden 768), random weights
#   DIR/emb   BertModel + sentence-transformers files + onnx/model.onnx (compare.py, both servers)
#   DIR/cls   BertForSequenceClassification (+ its ONNX copy, unused here)
#   DIR/ner, DIR/qa  token-classification and QA heads (mixed.py, our server only)
# About 3 GB of files; a folder already made is kept.
# usage: bench/serve/make-models.sh [DIR]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/../out/serve}
mkdir -p "$out"
[ -f "$out/base/model.safetensors" ] || /usr/bin/python3 "$here/../make-model.py" "$out/base" --no-onnx >/dev/null
[ -f "$out/emb/onnx/model.onnx" ] && [ -f "$out/cls/model.safetensors" ] ||
    /usr/bin/python3 "$here/../pipeline/make-variants.py" "$out/base" "$out" >/dev/null
[ -f "$out/ner/model.safetensors" ] && [ -f "$out/qa/model.safetensors" ] ||
    /usr/bin/python3 "$here/make-heads.py" "$out/base" "$out" >/dev/null
echo "$out"
