// The official `openai` npm client (pinned in tests/node/package-lock.json)
// against the real server: models.retrieve(), models.list() and
// embeddings.create() with a string, an array, base64 and dimensions, each
// checked against the server's own /tasks/embeddings answer.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import OpenAI from 'openai';

const here = dirname(fileURLToPath(import.meta.url));
const SRC = process.env.BS_SOURCE_DIR || resolve(here, '../..');
const BIN = process.env.BERTSTUDIO_BIN || join(SRC, 'build/bertstudio');
const FIXTURES = process.env.BS_FIXTURES || join(SRC, 'tests/fixtures');
const MODEL = 'demo/tiny-bert-embeddings';

// Starts the server on a free port; resolves with its key and URL once it
// prints them (the admin key first, then the address it serves on).
function startServer(dataDir) {
  return new Promise((ok, fail) => {
    const proc = spawn(BIN, ['serve', '--port', '0', '--data-dir', dataDir], {
      env: { ...process.env, BERTSTUDIO_DEMO_MODELS: join(FIXTURES, 'models') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    const timer = setTimeout(() => fail(new Error(`server did not start:\n${out}`)), 30000);
    const seen = (chunk) => {
      out += chunk;
      const m = out.match(/(ak_[A-Za-z0-9_-]+)[\s\S]*serving on (http:\/\/127\.0\.0\.1:\d+)/);
      if (m) {
        clearTimeout(timer);
        ok({ proc, key: m[1], url: m[2] });
      }
    };
    proc.stdout.on('data', seen);
    proc.stderr.on('data', seen);
    proc.on('exit', (code) => fail(new Error(`server exited with ${code}:\n${out}`)));
  });
}

// The server's own answer for the same texts (/tasks/embeddings, mean
// pooling and normalisation as /v1/embeddings does), retrying while the
// model loads (503 + Retry-After is the API's contract).
async function reference(srv, texts) {
  for (;;) {
    const r = await fetch(`${srv.url}/tasks/embeddings`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${srv.key}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ text: texts, model_name: MODEL }),
    });
    if (r.status === 503) {
      await new Promise((w) => setTimeout(w, 100)); // the model is loading
      continue;
    }
    const text = await r.text();
    assert.equal(r.status, 200, text);
    return JSON.parse(text).data.embeddings;
  }
}

function closeTo(got, want, tol = 1e-5) {
  assert.equal(got.length, want.length);
  got.forEach((v, i) => assert.ok(Math.abs(v - want[i]) <= tol, `[${i}] ${v} vs ${want[i]}`));
}

const data = mkdtempSync(join(tmpdir(), 'bs-node-'));
const srv = await startServer(data);
try {
  const client = new OpenAI({ apiKey: srv.key, baseURL: `${srv.url}/v1`, maxRetries: 8 });
  const [ref1, ref2] = await reference(srv, ['hello world', 'a second text']);

  // embeddings.create with a string (the client asks for base64 and decodes it)
  const one = await client.embeddings.create({ model: MODEL, input: 'hello world' });
  assert.equal(one.object, 'list');
  assert.equal(one.model, MODEL);
  assert.equal(one.data.length, 1);
  assert.equal(one.data[0].object, 'embedding');
  assert.equal(one.data[0].index, 0);
  closeTo(one.data[0].embedding, ref1);
  assert.ok(one.usage.prompt_tokens > 0 && one.usage.total_tokens === one.usage.prompt_tokens);

  // an array, as floats
  const two = await client.embeddings.create({ model: MODEL, input: ['hello world', 'a second text'], encoding_format: 'float' });
  assert.deepEqual(two.data.map((d) => d.index), [0, 1]);
  closeTo(two.data[0].embedding, ref1);
  closeTo(two.data[1].embedding, ref2);

  // base64 asked for explicitly: the client hands back the string
  const b64 = await client.embeddings.create({ model: MODEL, input: 'hello world', encoding_format: 'base64' });
  const raw = Buffer.from(b64.data[0].embedding, 'base64');
  const floats = Array.from(new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4));
  closeTo(floats, ref1);

  // dimensions: the first n components, normalised again
  const dims = await client.embeddings.create({ model: MODEL, input: 'hello world', dimensions: 8, encoding_format: 'float' });
  assert.equal(dims.data[0].embedding.length, 8);
  const norm = Math.hypot(...dims.data[0].embedding);
  assert.ok(Math.abs(norm - 1) < 1e-4, `norm ${norm}`);
  const head = ref1.slice(0, 8);
  const hn = Math.hypot(...head);
  closeTo(dims.data[0].embedding, head.map((v) => v / hn));

  // models.list and models.retrieve
  const ids = [];
  for await (const m of client.models.list()) {
    assert.equal(m.object, 'model');
    ids.push(m.id);
  }
  assert.ok(ids.includes(MODEL), ids.join(','));
  const m = await client.models.retrieve(MODEL);
  assert.equal(m.id, MODEL);
  assert.equal(m.object, 'model');
  assert.equal(typeof m.created, 'number');
  assert.equal(typeof m.owned_by, 'string');
  await assert.rejects(client.models.retrieve('nobody/none'), (e) => e.status === 404);
  await assert.rejects(
    new OpenAI({ apiKey: 'ak_wrong', baseURL: `${srv.url}/v1`, maxRetries: 0 }).models.list(),
    (e) => e.status === 401,
  );
  console.log('openai client: retrieve, list, embeddings (string, array, base64, dimensions) ok');
} finally {
  srv.proc.removeAllListeners('exit');
  srv.proc.kill('SIGTERM');
  await new Promise((w) => srv.proc.once('exit', w));
  rmSync(data, { recursive: true, force: true });
}
