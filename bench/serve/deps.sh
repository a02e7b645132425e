#!/bin/sh
# Installs what the serving benchmarks need beyond scripts/install-deps.sh:
# wrk (Debian's package, the load generator) and this folder's npm packages
# (package-lock.json: @huggingface/transformers 4.3.1 with onnxruntime-node
# 1.30, for peer-server.mjs) through scripts/node-deps.sh. Idempotent; not
# part of the build or of `make test`.
# usage: bench/serve/deps.sh
set -eu
here=$(cd "$(dirname "$0")" && pwd)
if ! command -v wrk >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ]; then sudo=; elif sudo -n true 2>/dev/null; then sudo="sudo -n"; else
    echo "bench/serve/deps.sh: wrk is missing: sudo apt-get install wrk" >&2; exit 1
  fi
  echo "bench/serve/deps.sh: installing wrk" >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends wrk >/dev/null
fi
# onnxruntime-node's own CPU binaries are in its package; no CUDA download
ONNXRUNTIME_NODE_INSTALL_CUDA=skip sh "$here/../../scripts/node-deps.sh" "$here" "$here/node_modules/.bench-deps"
