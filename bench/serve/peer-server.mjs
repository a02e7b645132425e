// The transformers.js peer of bench/serve/compare.py: a minimal node HTTP
// server answering POST /tasks/embeddings like ours ({"text": ..., "model_name"}
// -> {"success": true, "data": {"embeddings": [[...]], "dimensions": N}}) with
// @huggingface/transformers' feature-extraction pipeline (mean pooling +
// normalize) on the ONNX copy of the same model. So that the peer gets the
// same advantage as our dynamic batcher, concurrent requests are merged: while
// one pipeline call runs, arriving requests queue, and the next call takes
// every queued text (up to --max-batch) as one list (padded batch).
// Install once: sh bench/serve/deps.sh (this folder's package-lock.json: transformers.js 4.3.1),
// then --tjs bench/serve.
// usage: node peer-server.mjs --tjs DIR --model MODEL_DIR [--port 0] [--threads 2] [--max-batch 64]
//        prints one line "listening PORT" once the model is loaded.
import { createServer } from 'node:http';
import { basename, dirname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const args = { port: '0', threads: '2', 'max-batch': '64' };
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
const { pipeline, env } = await import(
  pathToFileURL(resolve(args.tjs, 'node_modules/@huggingface/transformers/dist/transformers.node.mjs')).href);
env.allowRemoteModels = false;
env.localModelPath = dirname(resolve(args.model)) + '/';
const pipe = await pipeline('feature-extraction', basename(resolve(args.model)), {
  dtype: 'fp32',
  session_options: { intraOpNumThreads: +args.threads, interOpNumThreads: 1 },
});
// bench/make-model.py's tokenizer_config.json names no pad_token (real BERT
// checkpoints say "[PAD]"); without one transformers.js cannot pad a batch.
if (pipe.tokenizer.pad_token_id === undefined) {
  pipe.tokenizer.pad_token = '[PAD]';
  pipe.tokenizer.pad_token_id = pipe.tokenizer._tokenizer?.token_to_id
    ? pipe.tokenizer._tokenizer.token_to_id('[PAD]') // 4.x
    : pipe.tokenizer.model.tokens_to_ids.get('[PAD]'); // 3.x
  if (pipe.tokenizer.pad_token_id === undefined) throw new Error('no [PAD] token to pad batches with');
}
const maxBatch = +args['max-batch'];
const stats = { batches: 0, batched_requests: 0, max_batch_size: 0 };

const queue = [];
let running = false;

// Takes everything queued (a lone request does not wait for company, as ours)
// and runs it as one pipeline call; loops while requests keep arriving.
async function drain() {
  if (running) return;
  running = true;
  while (queue.length) {
    const batch = queue.splice(0, maxBatch);
    stats.batches++;
    stats.batched_requests += batch.length;
    if (batch.length > stats.max_batch_size) stats.max_batch_size = batch.length;
    try {
      const out = await pipe(batch.map((r) => r.text), { pooling: 'mean', normalize: true });
      const [, dim] = out.dims;
      batch.forEach((r, i) => r.resolve({ embeddings: [Array.from(out.data.subarray(i * dim, (i + 1) * dim))],
        dimensions: dim }));
    } catch (e) {
      batch.forEach((r) => r.reject(e));
    }
    // let the requests that arrived during the call reach the queue
    await new Promise((r) => setImmediate(r));
  }
  running = false;
}

function reply(res, status, obj) {
  const body = JSON.stringify(obj);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

const server = createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/stats/serving') {
    return reply(res, 200, { batching: { ...stats, queued: queue.length, running: running ? 1 : 0 } });
  }
  if (req.method !== 'POST' || req.url !== '/tasks/embeddings') {
    return reply(res, 404, { success: false, error: 'not found' });
  }
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    let body;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      return reply(res, 400, { success: false, error: 'the body is not JSON' });
    }
    if (typeof body.text !== 'string') return reply(res, 400, { success: false, error: 'text: a string is required' });
    new Promise((resolve_, reject) => {
      queue.push({ text: body.text, resolve: resolve_, reject });
      drain();
    }).then((data) => reply(res, 200, { success: true, data }),
      (e) => reply(res, 500, { success: false, error: String(e) }));
  });
});
server.keepAliveTimeout = 60000;
server.listen(+args.port, '127.0.0.1', () => console.log(`listening ${server.address().port}`));
