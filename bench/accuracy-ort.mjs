// `bertstudio accuracy --precision int8` with ONNX Runtime's own dynamic int8:
// runs bench/make-model.py's model.onnx (f32) and model-int8.onnx (its
// --int8-onnx: quantize_dynamic's DynamicQuantizeMatMul layers) on the inputs
// `bertstudio accuracy` draws for the same --inputs/--lengths/--seed (same LCG:
// per sequence its length, then its ids), one sequence a run (the int8 graph's
// activation scale spans the batch, padding included), and prints the same JSON
// line. margin_median depends on f32's logits alone, so equal figures from both
// tools show they ran the same model on the same inputs.
// Install the peer once: ONNXRUNTIME_NODE_INSTALL_CUDA=skip npm install --no-save --prefix bench/.peer onnxruntime-node@1.30
// usage: node bench/accuracy-ort.mjs --model DIR [--inputs 1000] [--lengths 8:128] [--seed 1] [--threads 2]
//        [--int8 model-int8.onnx (in DIR unless absolute)]
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

const require = createRequire(new URL('./.peer/', import.meta.url));
const ort = require('onnxruntime-node');

const args = { inputs: 1000, lengths: '8:128', seed: 1, threads: 2, int8: 'model-int8.onnx' };
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
const cfg = JSON.parse(readFileSync(`${args.model}/config.json`, 'utf8'));
const inputs = +args.inputs;
let [lo, hi] = args.lengths.split(':').map(Number);
hi = Math.min(hi, cfg.max_position_embeddings); // as accuracy: capped at the model's longest (BERT)
lo = Math.min(lo, hi);
const int8Path = resolve(args.model, args.int8);
// make-model.py names the int8 graph after its weights' granularity (the name
// follows the nodes, ahead of the weights)
const granularity = /bert-int8-(per-channel|per-tensor)/.exec(readFileSync(int8Path).subarray(0, 1 << 16).toString('latin1'));

const opts = {
  intraOpNumThreads: +args.threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all',
};
const f32 = await ort.InferenceSession.create(`${args.model}/model.onnx`, opts);
const int8 = await ort.InferenceSession.create(int8Path, opts);
const classify = f32.outputNames.includes('logits');

let s = +args.seed;
const lcg = () => (s = (Math.imul(s, 1103515245) + 12345) & 0x7fffffff);
const V = cfg.vocab_size, H = cfg.hidden_size;
const base = V > 2000 ? 1000 : V > 8 ? 5 : 0; // as accuracy: skip special (and unused) tokens

const argmax = (x) => x.reduce((best, v, i) => (v > x[best] ? i : best), 0);
// The argmax of x and its gap to the runner-up, as accuracy's top_gap.
function topGap(x) {
  const ia = argmax(x);
  let second = -Infinity;
  x.forEach((v, i) => { if (i !== ia && v > second) second = v; });
  return [ia, x.length > 1 ? x[ia] - second : Infinity];
}
const cosine = (ab, aa, bb) => (aa === 0 && bb === 0 ? 1 : ab / (Math.sqrt(aa * bb) + 1e-300));

let embMin = 1, embSum = 0, tokMin = 1, maxDiff = 0, same = 0, flippedMax = 0;
const margins = [];
const poolA = new Float64Array(H), poolB = new Float64Array(H);
for (let n = 0; n < inputs; n++) {
  const len = lo + (lcg() % (hi - lo + 1));
  const ids = new Int32Array(len);
  for (let j = 0; j < len; j++) ids[j] = base + (lcg() % (V - base));
  const feeds = {
    input_ids: new ort.Tensor('int32', ids, [1, len]),
    token_type_ids: new ort.Tensor('int32', new Int32Array(len), [1, len]),
    attention_mask: new ort.Tensor('int32', new Int32Array(len).fill(1), [1, len]),
  };
  const a = await f32.run(feeds), b = await int8.run(feeds);
  const ha = a.last_hidden_state.data, hb = b.last_hidden_state.data;
  poolA.fill(0);
  poolB.fill(0);
  for (let i = 0; i < len; i++) {
    let ab = 0, aa = 0, bb = 0;
    for (let j = 0; j < H; j++) {
      const x = ha[i * H + j], y = hb[i * H + j];
      ab += x * y, aa += x * x, bb += y * y;
      poolA[j] += x;
      poolB[j] += y;
      maxDiff = Math.max(maxDiff, Math.abs(x - y));
    }
    tokMin = Math.min(tokMin, cosine(ab, aa, bb));
  }
  // the mean-pooled embeddings' cosine is their sums' (1/len cancels)
  let ab = 0, aa = 0, bb = 0;
  for (let j = 0; j < H; j++) ab += poolA[j] * poolB[j], aa += poolA[j] * poolA[j], bb += poolB[j] * poolB[j];
  const c = cosine(ab, aa, bb);
  embMin = Math.min(embMin, c);
  embSum += c;
  if (classify) {
    const [ia, margin] = topGap(Array.from(a.logits.data));
    if (argmax(Array.from(b.logits.data)) === ia) same++;
    else flippedMax = Math.max(flippedMax, margin);
    margins.push(margin);
  }
}

const r = (x) => +x.toPrecision(10); // accuracy's 10 significant digits
const out = {
  model: args.model, precision: granularity ? `int8-ort-${granularity[1]}` : 'int8-ort', reference: 'f32',
  inputs, lengths: `${lo}:${hi}`,
  embedding_cosine: { min: r(embMin), mean: r(embSum / inputs) },
  token_cosine_min: r(tokMin), max_abs_diff: r(maxDiff),
};
if (classify) {
  margins.sort((x, y) => x - y);
  out.argmax = { unchanged: same, of: margins.length, margin_median: r(margins[margins.length >> 1]) };
  if (same < margins.length) out.argmax.flipped_margin_max = r(flippedMax);
}
console.log(JSON.stringify(out));
