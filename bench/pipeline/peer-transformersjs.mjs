// The transformers.js peer of bench/pipeline/run.sh: runs the same requests
// (one JSON object per line) through @huggingface/transformers' pipeline on
// the ONNX copy of the same model, one request at a time, and prints one
// JSON line: {"task", "requests", "load_s", "seconds", "requests_per_s"}.
// Install once: ONNXRUNTIME_NODE_INSTALL_CUDA=skip npm install --no-save --prefix DIR @huggingface/transformers@3
// usage: node peer-transformersjs.mjs --tjs DIR --model MODEL_DIR --task classification|embeddings
//        --requests FILE [--threads T]
import { readFileSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';

const args = { threads: 2 };
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
const { pipeline, env } = await import(
  pathToFileURL(resolve(args.tjs, 'node_modules/@huggingface/transformers/src/transformers.js')).href);
env.allowRemoteModels = false;
env.localModelPath = dirname(resolve(args.model)) + '/';

const requests = readFileSync(args.requests, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
const kind = args.task === 'classification' ? 'text-classification' : 'feature-extraction';
const t0 = performance.now();
const pipe = await pipeline(kind, basename(resolve(args.model)), {
  dtype: 'fp32',
  session_options: { intraOpNumThreads: +args.threads, interOpNumThreads: 1 },
});
const loadS = (performance.now() - t0) / 1000;
const run = (r) => (args.task === 'classification'
  ? pipe(r.text, { top_k: r.top_k ?? 1 })
  : pipe(r.text, { pooling: 'mean', normalize: true }));
await run(requests[0]); // warm-up, as the C side's first line pays its own first-call costs
const t1 = performance.now();
for (const r of requests) await run(r);
const seconds = (performance.now() - t1) / 1000;
console.log(JSON.stringify({ task: args.task, requests: requests.length, load_s: +loadS.toFixed(3),
  seconds: +seconds.toFixed(3), requests_per_s: +(requests.length / seconds).toFixed(2) }));
