// The ONNX Runtime peer of `bertstudio bench`: runs bench/make-model.py's
// model.onnx in onnxruntime-node with the same threads and the same tokens
// (same LCG stream: lengths first, then ids), padded to the batch's longest
// row as ORT needs, and prints the same JSON line.
// Install once: ONNXRUNTIME_NODE_INSTALL_CUDA=skip npm install --no-save --prefix bench/.peer onnxruntime-node@1.30
// usage: node bench/peer-ort.mjs --model DIR [--batch N] [--seq L | --mixed MIN:MAX] [--threads T] [--iters K] [--warmup W]
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

const require = createRequire(new URL('./.peer/', import.meta.url));
const ort = require('onnxruntime-node');

const args = { batch: 1, seq: 128, threads: 2, iters: 20, warmup: 3 };
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
const batch = +args.batch, threads = +args.threads, iters = +args.iters, warmup = +args.warmup;
let mn = 0, mx = 0;
if (args.mixed) [mn, mx] = args.mixed.split(':').map(Number);

const cfg = JSON.parse(readFileSync(`${args.model}/config.json`, 'utf8'));
let s = 42;
const lcg = () => (s = (Math.imul(s, 1103515245) + 12345) & 0x7fffffff) >>> 0;
// Math.imul keeps the 32-bit wrap-around of the C version's uint32 arithmetic.
const base = cfg.vocab_size > 2000 ? 1000 : 0; // as bertstudio bench: skip special tokens
const lens = [];
for (let b = 0; b < batch; b++) lens.push(mn ? mn + (lcg() % (mx - mn + 1)) : +args.seq);
const S = Math.max(...lens);
const ids = new Int32Array(batch * S), mask = new Int32Array(batch * S), types = new Int32Array(batch * S);
for (let b = 0; b < batch; b++)
  for (let i = 0; i < lens[b]; i++) {
    ids[b * S + i] = base + (lcg() % (cfg.vocab_size - base));
    mask[b * S + i] = 1;
  }

const t0 = performance.now();
const session = await ort.InferenceSession.create(`${args.model}/model.onnx`, {
  intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all',
});
const loadMs = performance.now() - t0;
const rssLoad = process.memoryUsage().rss;
const feeds = {
  input_ids: new ort.Tensor('int32', ids, [batch, S]),
  token_type_ids: new ort.Tensor('int32', types, [batch, S]),
  attention_mask: new ort.Tensor('int32', mask, [batch, S]),
};
const lat = [];
let firstMs = -1, out;
for (let i = 0; i < warmup + iters; i++) {
  const a = performance.now();
  out = await session.run(feeds);
  const d = performance.now() - a;
  if (firstMs < 0) firstMs = performance.now(); // ms since the process started
  if (i >= warmup) lat.push(d);
}
lat.sort((x, y) => x - y);
const total = lens.reduce((x, y) => x + y, 0);
const H = cfg.hidden_size, I = cfg.intermediate_size, L = cfg.num_hidden_layers;
let flops = 0;
for (const l of lens) flops += L * (l * (8 * H * H + 4 * H * I) + 4 * l * l * H);
// checksum: sum of the first sequence's real-token hidden states (compare with bertstudio's)
const hs = out.last_hidden_state.data;
let checksum = 0;
for (let i = 0; i < lens[0] * H; i++) checksum += hs[i];
const med = lat[Math.floor(iters / 2)], p90 = lat[Math.min(iters - 1, Math.floor(iters * 9 / 10))];
let peak = -1;
try {
  peak = +/VmHWM:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1] / 1024;
} catch { /* not Linux */ }
console.log(JSON.stringify({
  engine: 'onnxruntime-node', model: args.model, batch, ...(mn ? { mixed: `${mn}:${mx}` } : { seq: +args.seq }),
  tokens: total, padded_tokens: batch * S, threads, iters,
  latency_ms: { median: +med.toFixed(3), p90: +p90.toFixed(3), min: +lat[0].toFixed(3) },
  seq_per_s: +(batch / (med / 1e3)).toFixed(1), tokens_per_s: Math.round(total / (med / 1e3)),
  gflops: +(flops / (med / 1e3) / 1e9).toFixed(1), load_ms: +loadMs.toFixed(1), start_to_first_ms: Math.round(firstMs),
  rss_after_load_mb: +(rssLoad / 1048576).toFixed(1), peak_rss_mb: +peak.toFixed(1), checksum: +checksum.toFixed(3),
}));
