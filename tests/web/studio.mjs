// Browser tests of the web studio: Debian's Chromium (headless, driven by
// playwright-core from web/node_modules) against the real bertstudio binary
// on 127.0.0.1 with a fresh data dir, the fixture models as demo/<folder>,
// and the local fake Hub (tests/api/hub_server.py). Screenshots of every page
// (and phone-width ones of every playground) go to $BS_WEB_ARTIFACTS.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const SRC = process.env.BS_SOURCE_DIR || resolve(here, '../..');
const BIN = process.env.BERTSTUDIO_BIN || join(SRC, 'build/bertstudio');
const FIXTURES = process.env.BS_FIXTURES || join(SRC, 'tests/fixtures');
const ART = process.env.BS_WEB_ARTIFACTS || join(SRC, 'build/web-artifacts');
const CHROMIUM = process.env.BS_CHROMIUM || '/usr/bin/chromium';
const { chromium } = createRequire(join(SRC, 'web/package.json'))('playwright-core');

const procs = [];
const root = mkdtempSync(join(tmpdir(), 'bs-web-'));
let browser;

function cleanup() {
  for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
  rmSync(root, { recursive: true, force: true });
}
process.on('exit', cleanup);
// A ctest timeout sends SIGTERM: leave through 'exit' so that nothing lingers.
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(1));

// Starts cmd and resolves with the first stdout line matching re.
function startUntil(cmd, args, env, re, what) {
  return new Promise((ok, fail) => {
    const p = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    procs.push(p);
    let out = '', err = '';
    const timer = setTimeout(() => fail(new Error(`${what} did not start within 30 s:\n${out}\n${err}`)), 30000);
    p.stderr.on('data', (d) => (err = (err + d).slice(-20000)));
    p.stdout.on('data', (d) => {
      out += d;
      const m = re.exec(out);
      if (m) {
        clearTimeout(timer);
        ok({ p, m, log: () => err });
      }
    });
    p.on('exit', (code) => fail(new Error(`${what} exited with ${code}:\n${out}\n${err}`)));
  });
}

async function api(base, key, method, path, body) {
  const r = await fetch(base + path, {
    method,
    headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const j = await r.json();
  assert.ok(r.ok, `${method} ${path}: ${r.status} ${JSON.stringify(j)}`);
  return j.data;
}

const steps = [];
const step = (name, fn) => steps.push({ name, fn });

// ── the scenario ──
const S = {}; // shared state between steps

step('start the fake Hub and the server', async () => {
  const hub = await startUntil('/usr/bin/python3', [join(SRC, 'tests/api/hub_server.py'), '--port', '0'], {}, /PORT (\d+)/, 'hub_server.py');
  S.hub = `http://127.0.0.1:${hub.m[1]}`;
  const data = join(root, 'data');
  mkdirSync(data);
  const srv = await startUntil(BIN, ['serve', '--port', '0', '--data-dir', data, '--quiet'],
    { BERTSTUDIO_DEMO_MODELS: join(FIXTURES, 'models'), HF_ENDPOINT: S.hub },
    /(ak_[A-Za-z0-9]+)[\s\S]*serving on http:\/\/127\.0\.0\.1:(\d+)/, 'bertstudio serve');
  S.key = srv.m[1];
  S.base = `http://127.0.0.1:${srv.m[2]}`;
  S.serverLog = srv.log;
  // Every request of the suite comes from 127.0.0.1: lift the per-IP limit.
  await api(S.base, S.key, 'PUT', '/settings/per_ip_requests_per_minute', { value: 100000000 });
});

step('the server answers API 404s in JSON and deep links with the studio', async () => {
  let r = await fetch(`${S.base}/models/x/y/z`);
  assert.equal(r.status, 404);
  assert.equal((await r.json()).success, false);
  r = await fetch(`${S.base}/playground/ner`, { headers: { 'Accept-Encoding': 'gzip' } });
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /^text\/html/);
  assert.match(r.headers.get('content-security-policy'), /script-src 'self'/);
  const etag = r.headers.get('etag');
  assert.match(etag, /^"[0-9a-f]{32}"$/);
  assert.match(await r.text(), /<div id="app">/);
  r = await fetch(`${S.base}/`, { headers: { 'If-None-Match': etag } });
  assert.equal(r.status, 304);
  r = await fetch(`${S.base}/assets/missing.js`);
  assert.equal(r.status, 404);
});

step('open the browser', async () => {
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu'] });
  const ctx = await browser.newContext({ viewport: { width: 1366, height: 900 } });
  S.ctx = ctx;
  S.external = [];
  S.consoleErrors = [];
  await ctx.route('**/*', (route) => {
    const u = new URL(route.request().url());
    if (u.hostname !== '127.0.0.1' && u.protocol !== 'data:' && u.protocol !== 'blob:') {
      S.external.push(u.href);
      return route.abort();
    }
    return route.continue();
  });
  S.page = await ctx.newPage();
  S.page.on('console', (m) => m.type() === 'error' && S.consoleErrors.push(`${S.step}: ${m.text()} ${m.location().url}`));
  S.page.on('pageerror', (e) => S.consoleErrors.push(`${S.step}: ${e}`));
});

// Chromium logs every non-2xx fetch on the console; those the test provoked
// (or that the page handles, such as 503 while a model loads) are dropped.
const dropNetworkErrors = (status) =>
  (S.consoleErrors = S.consoleErrors.filter((e) => !e.includes(`status of ${status} `)));

const AXE = readFileSync(createRequire(join(SRC, 'web/package.json')).resolve('axe-core/axe.min.js'), 'utf8');
S.a11y = [];
// axe-core's WCAG 2 A/AA rules (labels, names, contrast, landmarks) on the
// page as shown; injected through the DevTools protocol, which the page's
// CSP does not govern.
async function a11y(name, page) {
  await page.evaluate(AXE);
  const r = await page.evaluate(() => window.axe.run(document, { runOnly: ['wcag2a', 'wcag2aa'] }));
  for (const v of r.violations) S.a11y.push(`${name}: ${v.id} (${v.help}) at ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(', ')}`);
}

async function shot(name, page = S.page) {
  await page.screenshot({ path: join(ART, `${name}.png`), fullPage: true });
  await a11y(name, page);
}

step('log in with the admin key', async () => {
  const p = S.page;
  await p.goto(`${S.base}/`);
  await p.getByLabel('API key').fill('ak_wrongwrongwrongwrongwrongwrongwrongwrongwro');
  await p.getByRole('button', { name: 'Sign in' }).click();
  await p.getByRole('alert').waitFor();
  dropNetworkErrors(401); // the refused login
  await shot('login');
  // By keyboard: the key field has the focus, Enter submits.
  await p.getByLabel('API key').fill('');
  assert.equal(await p.evaluate(() => document.activeElement.id), 'api-key');
  await p.keyboard.type(S.key);
  await p.keyboard.press('Enter');
  await p.getByTestId('who').waitFor();
  assert.match(await p.getByTestId('who').textContent(), /admin/i);
  await p.waitForURL('**/dashboard');
});

async function runPlayground(task, model, fill) {
  const p = S.page;
  await p.goto(`${S.base}/playground/${task}`);
  await p.getByLabel('Model', { exact: true }).selectOption(model);
  if (fill) await fill(p);
  await p.getByTestId('run').click();
  await p.getByTestId('result').waitFor({ timeout: 30000 });
  await p.getByTestId('elapsed').waitFor();
  dropNetworkErrors(503); // the playground retried while the model loaded
  assert.match(await p.locator('.curl pre').textContent(), new RegExp(`curl -sS -X POST ${S.base}/tasks/`));
}

async function phoneShot(task) {
  const ph = await S.ctx.newPage();
  await ph.setViewportSize({ width: 390, height: 844 });
  ph.on('pageerror', (e) => S.consoleErrors.push(String(e)));
  await ph.goto(`${S.base}/playground/${task}`);
  await ph.getByTestId('run').waitFor();
  await ph.waitForFunction(() => document.querySelector('#pg-model')?.value);
  await ph.getByTestId('run').click();
  await ph.getByTestId('result').waitFor({ timeout: 30000 });
  await shot(`phone-playground-${task}`, ph);
  await ph.close();
}

step('classification playground: bars and a chart', async () => {
  await runPlayground('classification', 'demo/tiny-bert-classification');
  const want = await api(S.base, S.key, 'POST', '/tasks/classification',
    { text: 'I loved this film, the actors were wonderful.', model_name: 'demo/tiny-bert-classification', top_k: null });
  const labels = await S.page.locator('[data-testid=class-bars] .bar-label').allTextContents();
  const best = [...want.results[0]].sort((a, b) => b.score - a.score).map((r) => r.label);
  assert.deepEqual(labels, best);
  await S.page.locator('[data-testid=class-chart] canvas[data-rendered=true]').waitFor();
  await shot('playground-classification');
  await phoneShot('classification');
});

step('NER playground: spans at the right characters', async () => {
  await runPlayground('ner', 'demo/tiny-bert-ner');
  const text = 'My name is Wolfgang and I live in Berlin.';
  const want = await api(S.base, S.key, 'POST', '/tasks/ner', { text, model_name: 'demo/tiny-bert-ner', aggregation_strategy: 'simple' });
  const marks = await S.page.locator('[data-testid=ner-text] mark').evaluateAll((ms) =>
    ms.map((m) => ({ start: +m.dataset.start, end: +m.dataset.end, text: m.firstChild.textContent })));
  const cps = Array.from(text);
  assert.ok(want.results[0].length > 0, 'the fixture NER model finds entities');
  assert.equal(marks.length, want.results[0].length);
  want.results[0].forEach((e, i) => {
    assert.equal(marks[i].start, e.start);
    assert.equal(marks[i].end, e.end);
    assert.equal(marks[i].text, cps.slice(e.start, e.end).join(''));
  });
  await S.page.getByLabel('Aggregation strategy').selectOption('none');
  await S.page.getByTestId('run').click();
  await S.page.waitForFunction(() => document.querySelector('.json pre')?.textContent.includes('"entity"'));
  await shot('playground-ner');
  await phoneShot('ner');
});

step('QA playground: the answer highlighted in the context', async () => {
  await runPlayground('qa', 'demo/tiny-bert-qa');
  const want = await api(S.base, S.key, 'POST', '/tasks/qa', {
    question: 'Where does Wolfgang live?', context: 'My name is Wolfgang and I live in Berlin. I work as an engineer.',
    model_name: 'demo/tiny-bert-qa', top_k: 3 });
  assert.equal(await S.page.getByTestId('qa-answer').textContent(), want.results[0].answer || '(no answer)');
  const mark = S.page.locator('[data-testid=qa-context] mark');
  assert.equal(await mark.textContent(), want.results[0].answer);
  assert.equal(Number(await mark.getAttribute('data-start')), want.results[0].start);
  assert.equal(await S.page.locator('[data-testid=qa-topk] li').count(), want.results.length);
  await shot('playground-qa');
  await phoneShot('qa');
});

step('fill-mask playground: ranked bars', async () => {
  await runPlayground('fill-mask', 'demo/tiny-bert-mlm');
  const want = await api(S.base, S.key, 'POST', '/tasks/fill-mask', { text: 'The capital of France is [MASK].', model_name: 'demo/tiny-bert-mlm', top_k: 5 });
  assert.deepEqual(await S.page.locator('[data-testid=mask-bars] .bar-label').allTextContents(), want.results[0].map((r) => r.token_str));
  await shot('playground-fill-mask');
  await phoneShot('fill-mask');
});

step('embeddings playground: cosine heat map and download', async () => {
  await runPlayground('embeddings', 'demo/tiny-bert-embeddings');
  const hm = S.page.getByTestId('cos-heatmap');
  assert.equal(await hm.getAttribute('data-rows'), '3');
  assert.equal(await hm.getAttribute('data-cols'), '3');
  // The diagonal (an input with itself) is the most similar: darkest blue.
  const px = await hm.locator('canvas').evaluate((c) => {
    const g = c.getContext('2d'), k = c.width / 3;
    const at = (r, col) => Array.from(g.getImageData(col * k + 2, r * k + 2, 1, 1).data);
    return { diag: at(0, 0), off: at(0, 2) };
  });
  assert.ok(px.diag[0] < px.off[0] || px.diag[2] >= px.off[2], `diagonal ${px.diag} vs ${px.off}`);
  const dl = S.page.waitForEvent('download');
  await S.page.getByRole('link', { name: 'Download JSON' }).click();
  const file = await (await dl).path();
  const saved = JSON.parse(readFileSync(file, 'utf8'));
  assert.equal(saved.embeddings.length, 3);
  await shot('playground-embeddings');
  await phoneShot('embeddings');
});

step('features playground: token x dimension heat map', async () => {
  await runPlayground('features', 'demo/tiny-electra-base');
  const hm = S.page.getByTestId('feat-heatmap');
  const rows = Number(await hm.getAttribute('data-rows'));
  const tok = await api(S.base, S.key, 'POST', '/tokenize', { text: 'Transformers read every token in context.', model_name: 'demo/tiny-electra-base' });
  assert.equal(rows, tok.results[0].input_ids.length);
  assert.ok(Number(await hm.getAttribute('data-cols')) > 1);
  await shot('playground-features');
  await phoneShot('features');
});

step('rerank playground: documents sorted by score', async () => {
  await runPlayground('rerank', 'demo/tiny-bert-classification');
  const items = S.page.locator('[data-testid=rerank-list] li .pill');
  const scores = (await items.allTextContents()).map(Number);
  assert.equal(scores.length, 3);
  assert.deepEqual(scores, [...scores].sort((a, b) => b - a));
  await shot('playground-rerank');
  await phoneShot('rerank');
});

step('summarization playground: the summary', async () => {
  await runPlayground('summarization', 'demo/tiny-bart');
  const text = await S.page.getByTestId('summary').textContent();
  assert.ok(text.length > 0);
  await shot('playground-summarization');
  await phoneShot('summarization');
});

step('playground errors: 422 is explained', async () => {
  const p = S.page;
  await p.goto(`${S.base}/playground/fill-mask`);
  await p.getByLabel('Model', { exact: true }).selectOption('demo/tiny-bert-mlm');
  await p.getByLabel('Text with a mask token').fill('No mask token here.');
  await p.getByTestId('run').click();
  const alert = p.locator('.error[data-status="422"]');
  await alert.waitFor();
  assert.match(await alert.textContent(), /cannot be used/);
  dropNetworkErrors(422);
  dropNetworkErrors(503); // the model was evicted (max_loaded_models) and loaded again
});

// Runs the playground once and resolves with the response of its task request.
async function runOnce(p, task = 'classification') {
  const resp = p.waitForResponse((r) => r.url() === `${S.base}/tasks/${task}` && r.request().method() === 'POST');
  await p.getByTestId('run').click();
  return resp;
}

step('playground errors: 503 loading, 413, 403, 401 and 429 are explained', async () => {
  const MODEL = 'demo/tiny-bert-classification';
  const key = await api(S.base, S.key, 'POST', '/api-keys', { name: 'error-probe', permissions: ['tasks:execute'] });
  const ctx = await browser.newContext({ viewport: { width: 1366, height: 900 } });
  const p = await ctx.newPage();
  p.on('console', (m) => m.type() === 'error' && S.consoleErrors.push(`${S.step}: ${m.text()} ${m.location().url}`));
  p.on('pageerror', (e) => S.consoleErrors.push(`${S.step}: ${e}`));
  const signIn = async () => {
    await p.getByLabel('API key').fill(key.api_key);
    await p.getByRole('button', { name: 'Sign in' }).click();
  };
  await p.goto(`${S.base}/playground/classification`);
  await signIn();
  await p.getByTestId('who').waitFor();
  assert.equal(new URL(p.url()).pathname, '/playground/classification');
  await p.getByLabel('Model', { exact: true }).selectOption(MODEL);
  const alert = (status) => p.locator(`.error[data-status="${status}"]`);
  try {
    // 503: an unloaded model answers "loading"; the page says so, waits
    // Retry-After and retries by itself until the result comes.
    await api(S.base, S.key, 'POST', `/models/${MODEL}/unload`);
    await p.reload();
    await p.waitForFunction(() => document.querySelector('#pg-model')?.value);
    await p.getByLabel('Model', { exact: true }).selectOption(MODEL);
    const option = p.locator(`#pg-model option[value="${MODEL}"]`);
    assert.match(await option.textContent(), /· cached/);
    const first = p.waitForResponse((r) => r.url() === `${S.base}/tasks/classification` && r.status() === 503);
    await p.getByTestId('run').click();
    const r503 = await first;
    assert.ok(Number(r503.headers()['retry-after']) >= 1);
    // The loading state lasts Retry-After: read it in one go while it shows.
    const state = await (await p.waitForFunction(() => {
      const spin = document.querySelector('[data-testid=loading]');
      return spin && { spin: spin.textContent, note: document.querySelector('[data-testid=loading-note]')?.textContent,
        disabled: document.querySelector('[data-testid=run]').disabled };
    })).jsonValue();
    assert.match(state.spin, new RegExp(`Loading: the model ${MODEL} is being loaded; retrying in \\d+ s`));
    assert.match(state.note, /loading demo\/tiny-bert-classification into memory/);
    assert.ok(state.disabled);
    await shot('error-503-loading', p); // most likely still loading (Retry-After >= 1 s)
    const loading = p.getByTestId('loading');
    await p.getByTestId('result').waitFor({ timeout: 30000 });
    await loading.waitFor({ state: 'detached' });
    await option.filter({ hasText: '· loaded' }).waitFor({ state: 'attached' }); // the picker was refreshed
    assert.equal((await api(S.base, S.key, 'GET', '/models')).models.find((m) => m.model_name === MODEL).state, 'loaded');
    dropNetworkErrors(503);

    // 413: a body over max_request_bytes.
    await api(S.base, S.key, 'PUT', '/settings/max_request_bytes', { value: 1024 });
    await p.getByLabel('Text', { exact: true }).fill('word '.repeat(400));
    assert.equal((await runOnce(p)).status(), 413);
    await alert(413).waitFor();
    const t413 = await alert(413).textContent();
    assert.match(t413, /too large/);
    assert.match(t413, /limit is 1024 bytes \(setting max_request_bytes\)/);
    assert.match(t413, /This request was \d{4} bytes/);
    assert.match(await p.locator('.result').textContent(), /No result: the server refused the request/);
    await shot('error-413', p);
    await api(S.base, S.key, 'PUT', '/settings/max_request_bytes', { value: 10485760 });
    dropNetworkErrors(413);
    await p.getByLabel('Text', { exact: true }).fill('A short text again.');

    // 403: the key loses tasks:execute while its session is open.
    await api(S.base, S.key, 'PATCH', `/api-keys/${key._id}`, { permissions: ['models:download'] });
    assert.equal((await runOnce(p)).status(), 403);
    await alert(403).waitFor();
    const t403 = await alert(403).textContent();
    assert.match(t403, /lacks a permission/);
    assert.match(t403, /POST \/tasks\/classification needs the permission tasks:execute/);
    await shot('error-403', p);
    await api(S.base, S.key, 'PATCH', `/api-keys/${key._id}`, { permissions: ['tasks:execute'] });
    dropNetworkErrors(403);

    // 401: the session is signed out elsewhere (its cookie, another client);
    // the next run sends the page to sign-in, which says why, and signing in
    // again comes back to the playground.
    const cookie = (await ctx.cookies()).find((c) => c.name === 'bs_session');
    assert.ok(cookie, 'the sign-in set the bs_session cookie');
    const out = await fetch(`${S.base}/auth/logout`, {
      method: 'POST', headers: { Cookie: `bs_session=${cookie.value}`, 'X-Requested-With': 'test' } });
    assert.equal(out.status, 200);
    assert.equal((await runOnce(p)).status(), 401);
    const ended = p.getByTestId('session-ended');
    await ended.waitFor();
    assert.match(await ended.textContent(), /sign in again[\s\S]*session has ended/i);
    assert.equal(new URL(p.url()).pathname, '/playground/classification');
    await shot('error-401', p);
    dropNetworkErrors(401);
    await signIn();
    await p.getByTestId('run').waitFor();
    assert.equal(new URL(p.url()).pathname, '/playground/classification');
    await p.waitForFunction(() => document.querySelector('#pg-model')?.value);
    await p.getByLabel('Model', { exact: true }).selectOption(MODEL);

    // 429: one request a minute; the page's own requests since the sign-in
    // use it up, or else the first run does and the second is refused.
    await api(S.base, S.key, 'PATCH', `/api-keys/${key._id}`, { rate_limits: { requests_per_minute: 1 } });
    let r429;
    for (let i = 0; i < 2 && !r429; i++) {
      const r = await runOnce(p);
      if (r.status() === 429) r429 = r;
      else {
        assert.equal(r.status(), 200);
        await p.getByTestId('result').waitFor();
      }
    }
    assert.ok(r429, 'one request a minute refuses the second run');
    const retry = Number(r429.headers()['retry-after']);
    // A sliding window: the requests made before the limit was lowered can
    // keep the key over it into the next minute, hence up to two minutes.
    assert.ok(retry >= 1 && retry <= 120, `Retry-After ${retry}`);
    await alert(429).waitFor();
    assert.match(await alert(429).textContent(), new RegExp(`Rate limited: try again in ${retry} s`));
    const run = p.getByTestId('run');
    assert.ok(await run.isDisabled());
    assert.match(await run.textContent(), /^Wait \d+ s$/);
    assert.ok(Number((await run.textContent()).match(/\d+/)[0]) <= retry);
    await shot('error-429', p);
    // The button counts down.
    const shown = Number((await run.textContent()).match(/\d+/)[0]);
    if (shown > 1) await p.waitForFunction((n) => Number(document.querySelector('[data-testid=run]').textContent.match(/\d+/)?.[0]) < n, shown);
    dropNetworkErrors(429);

    // 401 again: the key itself is revoked. Opening another playground (no
    // reload) lists the models with the session, which is refused, and
    // sign-in says the session ended, with the server's reason.
    await api(S.base, S.key, 'DELETE', `/api-keys/${key._id}`);
    const refused = p.waitForResponse((r) => r.url() === `${S.base}/models` && r.status() === 401);
    await p.getByRole('link', { name: 'Named entities' }).click();
    await refused;
    assert.equal(new URL(p.url()).pathname, '/playground/ner');
    const gone = p.getByTestId('session-ended');
    await gone.waitFor();
    assert.match(await gone.textContent(), /sign in again[\s\S]*the server said: [^)]*revoked/i);
    dropNetworkErrors(401);
  } finally {
    await api(S.base, S.key, 'PUT', '/settings/max_request_bytes', { value: 10485760 });
    await api(S.base, S.key, 'DELETE', `/api-keys/${key._id}`); // already revoked unless a check failed
    await ctx.close();
  }
});

step('Hub: search, then download until the progress bar reaches 100%', async () => {
  const p = S.page;
  await p.goto(`${S.base}/hub`);
  await p.getByTestId('local-models').waitFor();
  // Everything: 20 fixture repos on pages of 9.
  await p.getByRole('button', { name: 'Search', exact: true }).click();
  await p.getByText('20 models from').waitFor();
  assert.equal(await p.locator('[data-testid=hub-results] article').count(), 9);
  await p.getByText('Page 1 of 3').waitFor();
  await p.getByRole('button', { name: 'Next' }).click();
  await p.getByText('Page 2 of 3').waitFor();
  // A tag chip from the results filters through the server's Hub search.
  await p.getByRole('button', { name: 'roberta', exact: true }).click();
  await p.waitForFunction(() => document.querySelectorAll('[data-testid=hub-results] article').length === 2);
  const names = await p.locator('[data-testid=hub-results] article h3').allTextContents();
  assert.ok(names.every((n) => n.includes('roberta')), names.join());
  assert.equal(await p.getByRole('button', { name: 'roberta', exact: true }).getAttribute('aria-pressed'), 'true');
  await p.getByRole('button', { name: 'roberta', exact: true }).click();
  await p.getByLabel('Search text').fill('tiny-bert-ner');
  await p.getByRole('button', { name: 'Search', exact: true }).click();
  const card = p.locator('[data-testid=hub-results] [data-model="fixtures/tiny-bert-ner"]');
  await card.waitFor();
  await card.getByRole('button', { name: 'Download' }).click();
  const bar = card.getByTestId('download-progress');
  await bar.waitFor();
  await p.waitForFunction((sel) => document.querySelector(sel)?.getAttribute('aria-valuenow') === '100',
    '[data-model="fixtures/tiny-bert-ner"] [data-testid=download-progress]', { timeout: 60000 });
  await p.locator('[data-testid=local-models] [data-model="fixtures/tiny-bert-ner"]').waitFor();
  await shot('hub');
  // Load it from the table in int8: the badge says so, and so does the API.
  const NAME = 'fixtures/tiny-bert-ner';
  const row = p.locator(`[data-testid=local-models] [data-model="${NAME}"]`);
  const prec = row.getByLabel(`Precision to load ${NAME} in`);
  const health = await api(S.base, S.key, 'GET', '/health');
  assert.equal(await prec.locator('option[value=""]').textContent(), `server default (${health.precision})`);
  await prec.selectOption('int8');
  const sent = p.waitForRequest((r) => r.url() === `${S.base}/models/${NAME}/load`);
  await row.getByRole('button', { name: 'Load', exact: true }).click();
  assert.deepEqual((await sent).postDataJSON(), { precision: 'int8' });
  await row.locator('[data-testid=precision][data-precision=int8]').waitFor({ timeout: 30000 });
  await p.locator(`[data-testid=local-models] [data-model="${NAME}"][data-state=loaded]`).waitFor({ timeout: 30000 });
  const listed = async () => (await api(S.base, S.key, 'GET', '/models')).models.find((m) => m.model_name === NAME);
  assert.deepEqual([(await listed()).state, (await listed()).precision], ['loaded', 'int8']);
  await p.getByText(`${NAME} is loaded in int8.`).waitFor();
  assert.ok((await api(S.base, S.key, 'GET', '/health')).loaded_precisions.int8 >= 1);
  await shot('hub-precision');
  // Reloading in the precision it runs in would do nothing: the button says so.
  assert.ok(await row.getByRole('button', { name: 'Reload' }).isDisabled());
  // Another precision loads it again: 202, the table follows it to fp16.
  await prec.selectOption('fp16');
  const answered = p.waitForResponse((r) => r.url() === `${S.base}/models/${NAME}/load`);
  await row.getByRole('button', { name: 'Reload' }).click();
  const r202 = await answered;
  assert.equal(r202.status(), 202);
  assert.deepEqual(r202.request().postDataJSON(), { precision: 'fp16' });
  await row.locator('[data-testid=precision][data-precision=fp16]').waitFor({ timeout: 30000 });
  await p.locator(`[data-testid=local-models] [data-model="${NAME}"][data-state=loaded]`).waitFor({ timeout: 30000 });
  assert.deepEqual([(await listed()).state, (await listed()).precision], ['loaded', 'fp16']);
  await p.getByText(`${NAME} is loaded in fp16.`).waitFor(); // followed through the 202
  // The server's 400 is shown in its own words, naming the action. The
  // picker offers only valid precisions, so the request is altered on its
  // way (the server and its answer are real).
  await p.route(`${S.base}/models/${NAME}/load`, (route) => route.continue({ postData: '{"precision":"int4"}' }));
  await prec.selectOption('int8');
  await row.getByRole('button', { name: 'Reload' }).click();
  const bad = p.locator('[data-testid=cache-error][data-status="400"]');
  await bad.waitFor();
  const badText = await bad.textContent();
  assert.match(badText, new RegExp(`Reloading ${NAME} in int8: The request was refused`));
  assert.match(badText, /field 'precision' must be "f32", "fp16", "bf16" or "int8"/);
  await p.unroute(`${S.base}/models/${NAME}/load`);
  dropNetworkErrors(400);
  assert.equal((await listed()).precision, 'fp16'); // the refused reload changed nothing
  await row.getByRole('button', { name: 'Unload' }).click();
  await row.getByRole('button', { name: 'Load', exact: true }).waitFor();
  assert.equal(await row.locator('[data-testid=precision]').count(), 0);
  // The admin imports a folder from the server's disk.
  await p.getByLabel('Folder on the server').fill(join(FIXTURES, 'models', 'tiny-bert-qa'));
  await p.getByLabel('Model name', { exact: true }).fill('local/qa-copy');
  await p.getByRole('button', { name: 'Import', exact: true }).click();
  await p.locator('[data-testid=local-models] [data-model="local/qa-copy"]').waitFor();
});

step('a key without admin or download rights sees those pages and buttons disabled', async () => {
  const [secret] = [(await api(S.base, S.key, 'POST', '/api-keys', { name: 'runner', permissions: ['tasks:execute'] })).api_key];
  const ctx = await browser.newContext({ viewport: { width: 1366, height: 900 } });
  const p = await ctx.newPage();
  p.on('pageerror', (e) => S.consoleErrors.push(`${S.step}: ${e}`));
  await p.goto(`${S.base}/login`);
  await p.getByLabel('API key').fill(secret);
  await p.getByRole('button', { name: 'Sign in' }).click();
  await p.waitForURL('**/playground/classification');
  const disabled = await p.locator('header nav [aria-disabled=true]').allTextContents();
  assert.deepEqual(disabled, ['Dashboard', 'API keys', 'Settings']);
  assert.match(await p.locator('header nav [aria-disabled=true]').first().getAttribute('title'), /admin:read/);
  await p.goto(`${S.base}/hub`);
  const first = p.locator('[data-testid=local-models] tr[data-state=not_loaded]').first();
  const load = first.getByRole('button', { name: 'Load', exact: true });
  assert.ok(await load.isDisabled());
  assert.match(await load.getAttribute('title'), /models:download/);
  assert.ok(await first.getByRole('combobox').isDisabled());
  await p.getByText(/lacks the models:download permission/).first().waitFor();
  await p.goto(`${S.base}/system`);
  await p.getByText(/needs the admin:read permission/).waitFor();
  await shot('restricted-key-settings', p);
  await ctx.close();
});

step('API keys: create (secret shown once) and revoke', async () => {
  const p = S.page;
  await p.goto(`${S.base}/keys`);
  await p.getByLabel('Name', { exact: true }).fill('web-test-key');
  await p.getByLabel('Requests per minute').fill('60');
  await p.getByRole('button', { name: 'Create key' }).click();
  const secret = await p.locator('[data-testid=new-secret] .secret-text').textContent();
  assert.match(secret, /^ak_[A-Za-z0-9]{43}$/);
  const chk = await fetch(`${S.base}/auth/check`, { headers: { Authorization: `Bearer ${secret}` } });
  assert.equal(chk.status, 200);
  // Edit: a second permission and another limit, through PATCH.
  await p.locator('tr[data-key="web-test-key"]').getByRole('button', { name: 'Edit' }).click();
  await p.getByRole('checkbox', { name: /tasks:save/ }).check();
  await p.getByLabel('Requests per hour').fill('600');
  await p.getByRole('button', { name: 'Save changes' }).click();
  await p.locator('tr[data-key="web-test-key"]', { hasText: 'tasks:save' }).waitFor();
  const doc = (await api(S.base, S.key, 'GET', '/api-keys?limit=100')).api_keys.find((k) => k.name === 'web-test-key');
  assert.deepEqual([...doc.permissions].sort(), ['tasks:execute', 'tasks:save']);
  assert.deepEqual(doc.rate_limits, { requests_per_minute: 60, requests_per_hour: 600 });
  await shot('keys');
  p.once('dialog', (d) => d.accept());
  await p.locator('tr[data-key="web-test-key"]').getByRole('button', { name: 'Revoke' }).click();
  await p.locator('tr[data-key="web-test-key"].revoked').waitFor();
  const after = await fetch(`${S.base}/auth/check`, { headers: { Authorization: `Bearer ${secret}` } });
  assert.equal(after.status, 401);
});

// Polls GET /models until name is loaded (a 202 load finishes in the background).
async function untilLoaded(name) {
  for (const t0 = Date.now(); Date.now() - t0 < 30000; await new Promise((r) => setTimeout(r, 100))) {
    const m = (await api(S.base, S.key, 'GET', '/models')).models.find((x) => x.model_name === name);
    if (m?.state === 'loaded') return m;
  }
  throw new Error(`${name} did not load within 30 s`);
}

step('dashboard: charts after the executions', async () => {
  const p = S.page;
  // One model in int8 beside the playgrounds' f32 ones: two precisions to count.
  await api(S.base, S.key, 'POST', '/models/fixtures/tiny-bert-ner/load', { precision: 'int8' });
  assert.equal((await untilLoaded('fixtures/tiny-bert-ner')).precision, 'int8');
  await p.goto(`${S.base}/dashboard`);
  for (const id of ['chart-time', 'chart-model', 'chart-latency', 'chart-success'])
    await p.locator(`[data-testid=${id}] canvas[data-rendered=true]`).waitFor();
  assert.ok(Number((await p.getByTestId('stat-total').locator('.stat-value').textContent()).replace(/\D/g, '')) >= 8);
  assert.ok((await p.locator('[data-testid=log-table] tbody tr').count()) > 0);
  await p.locator('#lf-task').selectOption('ner');
  await p.waitForFunction(() => {
    const rows = [...document.querySelectorAll('[data-testid=log-table] tbody tr')];
    return rows.length > 0 && rows.every((tr) => tr.children[1].textContent === 'ner');
  });
  // The runs of the NER playground succeeded.
  assert.ok((await p.locator('[data-testid=log-table] tbody tr .state', { hasText: 'success' }).count()) > 0);
  // The loaded models with their precision, and /health's counts of them.
  const health = await api(S.base, S.key, 'GET', '/health');
  const counts = await p.locator('[data-testid=loaded-precisions] [data-count]').evaluateAll((xs) =>
    Object.fromEntries(xs.map((x) => [x.querySelector('[data-precision]').dataset.precision, Number(x.dataset.count)])));
  assert.deepEqual(counts, health.loaded_precisions);
  assert.equal(counts.int8, 1);
  assert.ok(counts.f32 > 0, 'the playgrounds left models loaded in f32');
  const loaded = (await api(S.base, S.key, 'GET', '/models/loaded')).models;
  const shown = await p.locator('[data-testid=loaded-models] li').evaluateAll((lis) =>
    lis.map((li) => [li.querySelector('.mono').textContent, li.querySelector('[data-precision]')?.dataset.precision]));
  assert.deepEqual(shown.sort(), loaded.map((m) => [m.model_name, m.precision]).sort());
  // The kernel path every model runs, as /stats/serving (and the load log) name it.
  const stats = await fetch(`${S.base}/stats/serving`, { headers: { Authorization: `Bearer ${S.key}` } });
  const { engine } = await stats.json(); // a task route: no data envelope
  assert.equal(await p.getByTestId('kernels').textContent(), engine.kernels);
  const line = await p.getByTestId('engine').textContent();
  assert.ok(line.includes(engine.kernels_reason) && line.includes(`${engine.compute_threads} compute`), line);
  await shot('dashboard');
  await api(S.base, S.key, 'POST', '/models/fixtures/tiny-bert-ner/unload');
});

step('settings: a bad value shows the validation error', async () => {
  const p = S.page;
  await p.goto(`${S.base}/system`);
  const row = p.locator('[data-setting=max_loaded_models]');
  await row.getByRole('textbox').fill('0');
  await row.getByRole('button', { name: 'Save' }).click();
  const err = row.getByTestId('setting-error');
  await err.waitFor();
  assert.match(await err.textContent(), /max_loaded_models|range|1/);
  dropNetworkErrors(400);
  await row.getByRole('textbox').fill('3');
  await row.getByRole('button', { name: 'Save' }).click();
  await row.getByText(/Changed by/).waitFor();
  await shot('settings');
});

step('settings: default_precision picked from its values, and the next load takes it', async () => {
  const p = S.page;
  await p.goto(`${S.base}/system`);
  const row = p.locator('[data-setting=default_precision]');
  const sel = row.getByRole('combobox');
  await sel.waitFor();
  assert.deepEqual(await sel.locator('option').evaluateAll((os) => os.map((o) => o.value)), ['', 'f32', 'fp16', 'bf16', 'int8']);
  assert.equal(await sel.inputValue(), '');
  const before = await api(S.base, S.key, 'GET', '/health');
  await row.getByTestId('precision-now').locator(`[data-precision=${before.precision}]`).first().waitFor();
  await sel.selectOption('int8');
  await row.getByRole('button', { name: 'Save' }).click();
  await row.getByText(/Changed by/).waitFor();
  assert.equal((await api(S.base, S.key, 'GET', '/settings/default_precision')).setting_value, 'int8');
  assert.equal((await api(S.base, S.key, 'GET', '/health')).precision, 'int8');
  await row.getByTestId('next-load').locator('[data-precision=int8]').waitFor();
  await shot('settings-precision');
  // The Hub's "server default" is now int8, and a load without a precision takes it.
  await p.goto(`${S.base}/hub`);
  const NAME = 'local/qa-copy';
  const mrow = p.locator(`[data-testid=local-models] [data-model="${NAME}"]`);
  const prec = mrow.getByLabel(`Precision to load ${NAME} in`);
  await p.waitForFunction((n) => document.querySelector(`[data-model="${n}"] option[value=""]`)?.textContent === 'server default (int8)', NAME);
  const sent = p.waitForRequest((r) => r.url() === `${S.base}/models/${NAME}/load`);
  await mrow.getByRole('button', { name: 'Load', exact: true }).click();
  assert.deepEqual((await sent).postDataJSON(), {});
  // the badge shows the precision from the load's start; the row's state says when it is done
  await p.locator(`[data-testid=local-models] [data-model="${NAME}"][data-state=loaded] [data-testid=precision][data-precision=int8]`).waitFor({ timeout: 30000 });
  const m = (await api(S.base, S.key, 'GET', '/models')).models.find((x) => x.model_name === NAME);
  assert.deepEqual([m.state, m.precision], ['loaded', 'int8']);
  assert.equal(await prec.inputValue(), '');
  // A playground's picker says so too.
  await p.goto(`${S.base}/playground/qa`);
  await p.getByLabel('Model', { exact: true }).selectOption(NAME);
  await p.locator('.model-picker [data-testid=precision][data-precision=int8]').waitFor();
  assert.match(await p.locator(`#pg-model option[value="${NAME}"]`).textContent(), /· loaded in int8/);
  await p.goto(`${S.base}/hub`);
  await mrow.getByRole('button', { name: 'Unload' }).click();
  await mrow.getByRole('button', { name: 'Load', exact: true }).waitFor();
  // Back to "" (serve --precision), from the settings page.
  await p.goto(`${S.base}/system`);
  await sel.selectOption('');
  const put = p.waitForResponse((r) => r.url() === `${S.base}/settings/default_precision` && r.request().method() === 'PUT');
  await row.getByRole('button', { name: 'Save' }).click();
  assert.equal((await put).status(), 200);
  await row.getByTestId('next-load').locator(`[data-precision=${before.precision}]`).waitFor();
  assert.equal((await api(S.base, S.key, 'GET', '/settings/default_precision')).setting_value, '');
  assert.equal((await api(S.base, S.key, 'GET', '/health')).precision, before.precision);
});

// Replaces an editor's text as a paste would (keys typed one by one would
// trigger its auto-indent and bracket closing).
async function setCode(p, part, code) {
  await p.locator(`[data-editor=ed-${part}] .cm-content`).click();
  await p.keyboard.press('Control+A');
  await p.keyboard.insertText(code);
}

step('custom tasks: create, run, save, search, an error line highlighted, delete', async () => {
  const p = S.page;
  await p.goto(`${S.base}/custom`);
  await p.locator('[data-editor=ed-function_code] .cm-content').waitFor();
  assert.ok((await p.locator('[data-editor=ed-function_code] .cm-lineNumbers .cm-gutterElement').count()) > 3);
  await p.waitForFunction(() => document.querySelector('#ct-model-pick')?.value);
  await p.locator('#ct-model-pick').selectOption('demo/tiny-bert-classification');
  await p.getByRole('button', { name: 'Single template' }).click();
  assert.match(await p.locator('[data-editor=ed-model_code] .cm-content').textContent(), /from_pretrained\('demo\/tiny-bert-classification'\)/);
  await p.getByLabel('Name', { exact: true }).fill('web sentiment probe');
  await p.getByLabel('Tags (comma-separated)').fill('web, demo');
  await p.getByLabel('Description').fill('Label probabilities from the studio test');
  await p.getByTestId('ct-run').click();
  await p.getByTestId('ct-result').waitFor({ timeout: 60000 });
  const result = JSON.parse(await p.getByTestId('ct-result').textContent());
  const want = await api(S.base, S.key, 'POST', '/tasks/classification',
    { text: 'I loved this film.', model_name: 'demo/tiny-bert-classification', top_k: null });
  assert.deepEqual(Object.keys(result).sort(), want.results[0].map((r) => r.label).sort());
  for (const r of want.results[0]) assert.ok(Math.abs(result[r.label] - r.score) < 1e-3, r.label);
  await p.getByTestId('ct-save').click();
  await p.getByText('Task saved.').waitFor();
  const item = p.locator('[data-testid=task-list] [data-task-name="web sentiment probe"]');
  await item.waitFor();
  await p.locator('#ct-search').fill('probabilities');
  await item.waitFor();
  await p.locator('#ct-search').fill('nomatchword');
  await p.getByText('No saved task matches.').waitFor();
  await p.locator('#ct-search').fill('');
  await item.waitFor();
  // A failing run points at its line in the function's editor.
  await setCode(p, 'function_code', 'def custom_function(text):\n    x = len(text)\n    return x / 0\n');
  await p.getByTestId('ct-run').click();
  const err = p.getByTestId('ct-error');
  await err.waitFor({ timeout: 60000 });
  assert.match(await err.textContent(), /ZeroDivisionError[\s\S]*line 3/);
  await p.locator('[data-editor=ed-function_code] .cm-error-line[data-error-line="3"]').waitFor();
  assert.equal(await p.locator('.cm-error-line').count(), 1);
  dropNetworkErrors(422);
  await shot('custom-tasks');
  // Export the selected task to a file.
  await item.getByRole('checkbox').check();
  const dl = p.waitForEvent('download');
  await p.getByRole('button', { name: 'Export selected (1)' }).click();
  S.exported = join(root, 'export.json');
  await (await dl).saveAs(S.exported);
  const exp = JSON.parse(readFileSync(S.exported, 'utf8'));
  assert.equal(exp.tasks.length, 1);
  assert.equal(exp.tasks[0].name, 'web sentiment probe');
  // Open the saved task, then delete it.
  await item.getByRole('button', { name: 'web sentiment probe' }).click();
  await p.getByRole('heading', { name: /Edit “web sentiment probe”/ }).waitFor();
  await p.locator('[data-editor=ed-function_code] .cm-content', { hasText: 'softmax' }).waitFor();
  // Unchanged, it runs by its id and its usage counts the run.
  await p.getByTestId('ct-run').click();
  await p.getByTestId('ct-result').waitFor({ timeout: 60000 });
  await item.getByText(/^1 run\b/).waitFor();
  p.once('dialog', (d) => d.accept());
  await p.getByTestId('ct-delete').click();
  await p.getByText('Task deleted.').waitFor();
  await item.waitFor({ state: 'detached' });
  const left = await api(S.base, S.key, 'GET', '/custom-tasks?search=probabilities');
  assert.equal(left.total, 0);
  // The export file taken before the delete imports it back.
  await p.locator('input[type=file]').setInputFiles(S.exported);
  await p.getByText(/^Imported/).waitFor();
  await item.waitFor();
  const back = (await api(S.base, S.key, 'GET', '/custom-tasks?search=probabilities')).tasks[0];
  assert.deepEqual(back.tags, ['web', 'demo']);
  assert.match(back.function_code, /softmax/);
});

step('keyboard: skip link first, then the navigation', async () => {
  const p = S.page;
  await p.goto(`${S.base}/playground/qa`);
  await p.getByTestId('run').waitFor();
  await p.keyboard.press('Tab');
  assert.equal(await p.evaluate(() => document.activeElement.textContent), 'Skip to content');
  await p.keyboard.press('Tab');
  assert.equal(await p.evaluate(() => document.activeElement.textContent), 'Dashboard');
});

step('log out', async () => {
  const p = S.page;
  await p.getByRole('button', { name: 'Sign out' }).click();
  await p.getByLabel('API key').waitFor();
  const r = await p.evaluate(() => fetch('/auth/check').then((x) => x.status));
  assert.equal(r, 401);
  dropNetworkErrors(401);
});

step('accessibility: no WCAG 2 A/AA violation on any page', async () => {
  assert.deepEqual(S.a11y, []);
});

step('no request left 127.0.0.1 and the console has no errors', async () => {
  assert.deepEqual(S.external, []);
  assert.deepEqual(S.consoleErrors, []);
});

// ── run ──
mkdirSync(ART, { recursive: true });
for (const f of readdirSync(ART)) if (f.startsWith('failure-')) rmSync(join(ART, f)); // from an earlier run
const t0 = Date.now();
let failed = 0;
for (const s of steps) {
  const t = Date.now();
  S.step = s.name;
  try {
    await s.fn();
    console.log(`ok   ${s.name} (${Date.now() - t} ms)`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${s.name}\n${e.stack}`);
    if (S.page) await S.page.screenshot({ path: join(ART, `failure-${steps.indexOf(s)}.png`), fullPage: true }).catch(() => {});
    if (!S.page) break; // nothing else can run without the server or the browser
  }
}
await browser?.close();
writeFileSync(join(ART, 'README.txt'), `Screenshots of tests/web/studio.mjs (${new Date().toISOString()}).\n`);
console.log(`${steps.length - failed}/${steps.length} steps passed in ${((Date.now() - t0) / 1000).toFixed(1)} s; screenshots in ${ART}`);
if (failed && S.serverLog) console.log(S.serverLog().slice(-3000));
process.exit(failed ? 1 : 0);
