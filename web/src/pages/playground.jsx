// The eight playgrounds: one form per built-in task, a model picker with a
// compatibility badge, the request as curl, the answer drawn the way people
// read it (bars, highlighted spans, heat maps) and as JSON.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, ApiError, request } from '../api.js';
import { Bars, ChartView, CodeBlock, ErrorBox, Field, Heatmap, Notice, PALETTE, Spinner } from '../components.jsx';
import { PrecisionBadge } from '../precision.jsx';
import { Link } from '../router.jsx';

const lines = (s) => s.split('\n').map((l) => l.trim()).filter(Boolean);
const num = (v) => (v === '' || v === undefined ? undefined : Number(v));

export const TASKS = {
  classification: {
    title: 'Text classification',
    blurb: 'Scores every label of a sequence-classification model for the text.',
    endpoint: '/tasks/classification',
    types: ['classification', 'sentiment-analysis', 'text-classification'],
    hint: 'classification',
    initial: { text: 'I loved this film, the actors were wonderful.', top_k: '', function_to_apply: '' },
    body: (s) => ({ text: s.text, top_k: s.top_k ? Number(s.top_k) : null, ...(s.function_to_apply && { function_to_apply: s.function_to_apply }) }),
    Form: ({ s, set }) => (
      <>
        <TextArea id="pg-text" label="Text" value={s.text} onInput={(v) => set({ text: v })} />
        <div class="row">
          <Field id="pg-topk" label="top_k" hint="Empty: every label">
            <input id="pg-topk" type="number" min="1" value={s.top_k} onInput={(e) => set({ top_k: e.currentTarget.value })} />
          </Field>
          <Field id="pg-fn" label="function_to_apply">
            <select id="pg-fn" value={s.function_to_apply} onChange={(e) => set({ function_to_apply: e.currentTarget.value })}>
              <option value="">model default</option>
              <option>softmax</option>
              <option>sigmoid</option>
              <option>none</option>
            </select>
          </Field>
        </div>
      </>
    ),
    Result: ({ data }) => {
      const items = [...(data.results?.[0] || [])].sort((a, b) => b.score - a.score);
      const generic = items.length > 0 && items.every((r) => /^LABEL_\d+$/.test(r.label));
      return (
        <>
          {generic && (
            <Notice kind="warn">
              This model's labels are <code>LABEL_n</code>: its config.json has no <code>id2label</code> names, so the
              labels' meaning is whatever the model was trained on. Check the model card.
            </Notice>
          )}
          <ChartView testid="class-chart" label="Label scores"
            height={Math.max(120, items.length * 34 + 40)}
            config={{
              type: 'bar',
              data: { labels: items.map((r) => r.label), datasets: [{ label: 'score', data: items.map((r) => r.score), backgroundColor: PALETTE[0], borderRadius: 4 }] },
              options: { indexAxis: 'y', plugins: { legend: { display: false } }, scales: { x: { min: 0, max: Math.max(1, ...items.map((r) => r.score)) } } },
            }} />
          <Bars testid="class-bars" items={items.map((r, i) => ({ label: r.label, value: r.score, highlight: i === 0 }))} />
        </>
      );
    },
  },
  ner: {
    title: 'Named entities',
    blurb: 'Finds entities in the text; the aggregation strategy merges word pieces into words and entities.',
    endpoint: '/tasks/ner',
    types: ['ner', 'token-classification'],
    hint: 'ner',
    initial: { text: 'My name is Wolfgang and I live in Berlin.', aggregation_strategy: 'simple' },
    body: (s) => ({ text: s.text, aggregation_strategy: s.aggregation_strategy }),
    Form: ({ s, set }) => (
      <>
        <TextArea id="pg-text" label="Text" value={s.text} onInput={(v) => set({ text: v })} />
        <Field id="pg-agg" label="Aggregation strategy" hint="none: one entry per token; simple/first/average/max: grouped entities">
          <select id="pg-agg" value={s.aggregation_strategy} onChange={(e) => set({ aggregation_strategy: e.currentTarget.value })}>
            {['none', 'simple', 'first', 'average', 'max'].map((o) => <option key={o}>{o}</option>)}
          </select>
        </Field>
      </>
    ),
    Result: ({ data, sent }) => <Entities text={sent.text} ents={data.results?.[0] || []} />,
  },
  qa: {
    title: 'Question answering',
    blurb: 'Extracts the span of the context that answers the question.',
    endpoint: '/tasks/qa',
    types: ['qa', 'question-answering'],
    hint: 'qa',
    initial: { question: 'Where does Wolfgang live?', context: 'My name is Wolfgang and I live in Berlin. I work as an engineer.', top_k: '3' },
    body: (s) => ({ question: s.question, context: s.context, top_k: s.top_k ? Number(s.top_k) : 1 }),
    Form: ({ s, set }) => (
      <>
        <Field id="pg-q" label="Question">
          <input id="pg-q" value={s.question} onInput={(e) => set({ question: e.currentTarget.value })} />
        </Field>
        <TextArea id="pg-ctx" label="Context" value={s.context} onInput={(v) => set({ context: v })} />
        <Field id="pg-topk" label="top_k" hint="How many candidate answers">
          <input id="pg-topk" type="number" min="1" max="20" value={s.top_k} onInput={(e) => set({ top_k: e.currentTarget.value })} />
        </Field>
      </>
    ),
    Result: ({ data, sent }) => {
      const res = data.results || [];
      const best = res[0];
      if (!best) return <p>No answer.</p>;
      const cps = Array.from(sent.context);
      return (
        <>
          <div class="answer">
            <span class="muted">Answer</span>
            <strong data-testid="qa-answer">{best.answer || '(no answer)'}</strong>
            <span class="pill">score {best.score.toFixed(4)}</span>
          </div>
          <p class="context" data-testid="qa-context">
            {cps.slice(0, best.start).join('')}
            <mark class="answer-mark" data-start={best.start} data-end={best.end}>{cps.slice(best.start, best.end).join('')}</mark>
            {cps.slice(best.end).join('')}
          </p>
          <h3>Top {res.length}</h3>
          <Bars testid="qa-topk" items={res.map((r, i) => ({ label: `${r.answer} [${r.start}-${r.end}]`, value: r.score, highlight: i === 0 }))} />
        </>
      );
    },
  },
  'fill-mask': {
    title: 'Fill mask',
    blurb: 'Ranks the vocabulary for the masked position ([MASK] for BERT-like models, <mask> for RoBERTa).',
    endpoint: '/tasks/fill-mask',
    types: ['fill-mask', 'mlm'],
    hint: 'mlm',
    initial: { text: 'The capital of France is [MASK].', top_k: '5' },
    body: (s) => ({ text: s.text, top_k: s.top_k ? Number(s.top_k) : 5 }),
    Form: ({ s, set }) => (
      <>
        <TextArea id="pg-text" label="Text with a mask token" value={s.text} onInput={(v) => set({ text: v })} />
        <Field id="pg-topk" label="top_k">
          <input id="pg-topk" type="number" min="1" max="100" value={s.top_k} onInput={(e) => set({ top_k: e.currentTarget.value })} />
        </Field>
      </>
    ),
    Result: ({ data }) => {
      const items = data.results?.[0] || [];
      return (
        <Bars testid="mask-bars" items={items.map((r, i) => ({ label: r.token_str, value: r.score, highlight: i === 0 }))} />
      );
    },
  },
  embeddings: {
    title: 'Embeddings',
    blurb: 'One vector per input; the heat map shows the cosine similarity of every pair.',
    endpoint: '/tasks/embeddings',
    types: ['embeddings', 'feature-extraction', 'sentence-similarity'],
    hint: 'embeddings',
    initial: { texts: 'A man is playing a guitar.\nSomeone plays an instrument.\nThe stock market fell today.', pooling: '', normalize: true },
    body: (s) => ({ text: lines(s.texts), normalize: s.normalize, ...(s.pooling && { pooling: s.pooling }) }),
    Form: ({ s, set }) => (
      <>
        <TextArea id="pg-texts" label="Inputs, one per line" rows={5} value={s.texts} onInput={(v) => set({ texts: v })} />
        <div class="row">
          <Field id="pg-pool" label="Pooling">
            <select id="pg-pool" value={s.pooling} onChange={(e) => set({ pooling: e.currentTarget.value })}>
              <option value="">model default</option>
              <option>mean</option>
              <option>cls</option>
              <option>max</option>
            </select>
          </Field>
          <label class="check">
            <input type="checkbox" checked={s.normalize} onChange={(e) => set({ normalize: e.currentTarget.checked })} /> normalize
          </label>
        </div>
      </>
    ),
    Result: ({ data, sent }) => {
      const E = data.embeddings || [];
      const inputs = lines(sent.texts);
      const norm = (v) => Math.sqrt(v.reduce((a, x) => a + x * x, 0)) || 1;
      const cos = E.map((a) => E.map((b) => a.reduce((acc, x, i) => acc + x * b[i], 0) / (norm(a) * norm(b))));
      const short = inputs.map((t, i) => `${i + 1}. ${t.length > 24 ? t.slice(0, 23) + '…' : t}`);
      const url = URL.createObjectURL(new Blob([JSON.stringify({ inputs, embeddings: E }, null, 1)], { type: 'application/json' }));
      return (
        <>
          <p class="muted">{E.length} vectors of {data.dimensions} dimensions.</p>
          <h3>Cosine similarity</h3>
          <Heatmap testid="cos-heatmap" label="Cosine similarity of the inputs" values={cos} rowLabels={short}
            colLabels={inputs.map((_, i) => String(i + 1))} min={-1} max={1} diverging cell={48} />
          <h3>Vector preview</h3>
          <table class="vectors">
            <thead><tr><th scope="col">input</th><th scope="col">first 8 of {data.dimensions} values</th></tr></thead>
            <tbody>
              {E.map((v, i) => (
                <tr key={i}><th scope="row">{short[i]}</th><td class="mono">[{v.slice(0, 8).map((x) => x.toFixed(4)).join(', ')}{v.length > 8 ? ', …' : ''}]</td></tr>
              ))}
            </tbody>
          </table>
          <a class="button" href={url} download="embeddings.json">Download JSON</a>
        </>
      );
    },
  },
  features: {
    title: 'Features',
    blurb: "The model's last hidden state: one vector per token.",
    endpoint: '/tasks/features',
    types: ['features', 'feature-extraction', 'embeddings'],
    hint: 'embeddings',
    initial: { text: 'Transformers read every token in context.' },
    body: (s) => ({ text: s.text }),
    extra: async (s, model) => {
      try {
        const t = await api.post('/tokenize', { text: s.text, model_name: model });
        return { tokens: t.results?.[0]?.tokens };
      } catch {
        return {};
      }
    },
    Form: ({ s, set }) => <TextArea id="pg-text" label="Text" value={s.text} onInput={(v) => set({ text: v })} />,
    Result: ({ data, extra }) => {
      const F = data.features?.[0] || [];
      const tokens = extra?.tokens && extra.tokens.length === F.length ? extra.tokens : F.map((_, i) => `#${i}`);
      const dims = F[0]?.length || 0;
      const shown = F.map((row) => row.slice(0, 64));
      const m = Math.max(...shown.flat().map(Math.abs), 1e-9);
      return (
        <>
          <p class="muted">{F.length} tokens × {dims} dimensions{dims > 64 ? ' (first 64 shown)' : ''}.</p>
          <Heatmap testid="feat-heatmap" label="Token by dimension values" values={shown} rowLabels={tokens} min={-m} max={m} diverging cell={14} />
        </>
      );
    },
  },
  rerank: {
    title: 'Reranking',
    blurb: 'A cross-encoder scores each document against the query; documents come back best first.',
    endpoint: '/tasks/rerank',
    types: ['classification', 'rerank', 'text-classification'],
    hint: 'classification',
    initial: { query: 'How do plants make food?', texts: 'Photosynthesis turns light into chemical energy.\nThe train leaves at noon.\nPlants use sunlight, water and carbon dioxide.' },
    body: (s) => ({ query: s.query, texts: lines(s.texts), return_text: true }),
    Form: ({ s, set }) => (
      <>
        <Field id="pg-q" label="Query">
          <input id="pg-q" value={s.query} onInput={(e) => set({ query: e.currentTarget.value })} />
        </Field>
        <TextArea id="pg-texts" label="Documents, one per line" rows={5} value={s.texts} onInput={(v) => set({ texts: v })} />
      </>
    ),
    Result: ({ data }) => (
      <ol class="ranked" data-testid="rerank-list">
        {(data.results || []).map((r, i) => (
          <li key={i}>
            <span class="rank">{i + 1}</span>
            <span class="doc">{r.text ?? `document ${r.index + 1}`}</span>
            <span class="pill">{r.score.toFixed(4)}</span>
            <span class="muted small">input #{r.index + 1}</span>
          </li>
        ))}
      </ol>
    ),
  },
  summarization: {
    title: 'Summarization',
    blurb: 'A sequence-to-sequence model (BART) writes a summary with beam search.',
    endpoint: '/tasks/summarization',
    types: ['summarization', 'text2text-generation'],
    hint: 'bart',
    initial: { text: 'The city council met on Monday to discuss the new park. After a long debate, members voted to fund the project, which will open next spring with playgrounds, gardens and a lake.', max_length: '40', min_length: '5', num_beams: '2', no_repeat_ngram_size: '3', length_penalty: '1.0', early_stopping: true },
    body: (s) => ({
      text: s.text, max_length: num(s.max_length), min_length: num(s.min_length), num_beams: num(s.num_beams),
      no_repeat_ngram_size: num(s.no_repeat_ngram_size), length_penalty: num(s.length_penalty), early_stopping: s.early_stopping,
    }),
    Form: ({ s, set }) => (
      <>
        <TextArea id="pg-text" label="Text" rows={6} value={s.text} onInput={(v) => set({ text: v })} />
        <div class="params">
          {[['max_length', 1, 1024], ['min_length', 0, 1024], ['num_beams', 1, 16], ['no_repeat_ngram_size', 0, 10], ['length_penalty', -10, 10]].map(([k, lo, hi]) => (
            <Field key={k} id={`pg-${k}`} label={k}>
              <input id={`pg-${k}`} type="number" step={k === 'length_penalty' ? '0.1' : '1'} min={lo} max={hi} value={s[k]} onInput={(e) => set({ [k]: e.currentTarget.value })} />
            </Field>
          ))}
          <label class="check">
            <input type="checkbox" checked={s.early_stopping} onChange={(e) => set({ early_stopping: e.currentTarget.checked })} /> early_stopping
          </label>
        </div>
      </>
    ),
    Result: ({ data }) => (
      <>
        {data.truncated && <Notice kind="warn">The text was longer than the model's input and was truncated before summarizing.</Notice>}
        <blockquote class="summary" data-testid="summary">{(data.results?.[0]?.summary_text ?? '').trim()}</blockquote>
      </>
    ),
  },
};

function TextArea({ id, label, value, onInput, rows = 4 }) {
  return (
    <Field id={id} label={label}>
      <textarea id={id} rows={rows} value={value} onInput={(e) => onInput(e.currentTarget.value)} />
    </Field>
  );
}

const entType = (e) => (e.entity_group || e.entity || '').replace(/^[BIES]-/, '');

function Entities({ text, ents }) {
  const cps = Array.from(text);
  const types = [...new Set(ents.map(entType))].sort();
  const colorOf = (t) => `ent-c${types.indexOf(t) % 8}`;
  const sorted = [...ents].sort((a, b) => a.start - b.start);
  const parts = [];
  let at = 0;
  sorted.forEach((e, i) => {
    if (e.start < at) return; // overlapping (aggregation none): keep the first
    parts.push(cps.slice(at, e.start).join(''));
    parts.push(
      <mark key={i} class={`ent ${colorOf(entType(e))}`} data-start={e.start} data-end={e.end} data-label={entType(e)}
        title={`${e.entity_group || e.entity} ${e.score.toFixed(3)}`}>
        {cps.slice(e.start, e.end).join('')}
        <span class="ent-tag">{entType(e)}</span>
      </mark>,
    );
    at = e.end;
  });
  parts.push(cps.slice(at).join(''));
  return (
    <>
      <p class="ner-text" data-testid="ner-text">{parts}</p>
      {types.length ? (
        <ul class="legend" aria-label="Entity types">
          {types.map((t) => (
            <li key={t}><span class={`swatch ${colorOf(t)}`} aria-hidden="true" />{t} ({ents.filter((e) => entType(e) === t).length})</li>
          ))}
        </ul>
      ) : <p class="muted">No entities found.</p>}
      <table class="ents">
        <thead><tr><th scope="col">entity</th><th scope="col">word</th><th scope="col">chars</th><th scope="col">score</th></tr></thead>
        <tbody>
          {ents.map((e, i) => (
            <tr key={i}><td>{e.entity_group || e.entity}</td><td>{e.word}</td><td>{e.start}–{e.end}</td><td>{e.score.toFixed(4)}</td></tr>
          ))}
        </tbody>
      </table>
    </>
  );
}

function shellQuote(s) {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export function curlFor(path, body) {
  return [
    `curl -sS -X POST ${location.origin}${path}`,
    `  -H "Authorization: Bearer $BERTSTUDIO_API_KEY"`,
    `  -H 'Content-Type: application/json'`,
    `  -d ${shellQuote(JSON.stringify(body))}`,
  ].join(' \\\n');
}

function compatible(model, cfg) {
  const t = (model.task_type || '').toLowerCase();
  return cfg.types.includes(t) || model.model_name.toLowerCase().includes(cfg.hint);
}

// `refresh` changes when the models' states may have changed (a load).
export function ModelPicker({ id, value, onChange, cfg, prefer, label = 'Model', refresh = 0 }) {
  const [models, setModels] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    api.get('/models').then(
      (d) => {
        const ms = (d.models || []).filter((m) => m.state !== 'not_cached' && m.state !== 'downloading');
        const order = cfg || prefer;
        ms.sort((a, b) => (order ? compatible(b, order) - compatible(a, order) : 0) || a.model_name.localeCompare(b.model_name));
        setModels(ms);
        if (!value && ms.length) onChange(ms[0].model_name);
      },
      setError,
    );
  }, [refresh]);
  const current = models?.find((m) => m.model_name === value);
  return (
    <div class="field model-picker">
      <label for={id}>{label}</label>
      <div class="row tight">
        <select id={id} value={value} onChange={(e) => onChange(e.currentTarget.value)} disabled={!models?.length}>
          {!models && <option>Loading models…</option>}
          {models?.length === 0 && <option value="">No model in the cache</option>}
          {models?.map((m) => (
            <option key={m.model_name} value={m.model_name}>
              {m.model_name} · {m.state === 'loaded' ? `loaded${m.precision ? ` in ${m.precision}` : ''}` : 'cached'}{cfg && !compatible(m, cfg) ? ` · ${m.task_type || 'other task'}` : ''}
            </option>
          ))}
        </select>
        {current && cfg && (compatible(current, cfg)
          ? <span class="badge ok" data-testid="compat">compatible</span>
          : <span class="badge warn" data-testid="compat" title={`Registered for ${current.task_type || 'another task'}`}>may not fit: {current.task_type || 'other task'}</span>)}
        {current?.state === 'loaded' && <PrecisionBadge precision={current.precision} />}
      </div>
      {models?.length === 0 && <small class="hint">Download or import a model in <Link href="/hub">Models &amp; Hub</Link>.</small>}
      {value?.startsWith('demo/') && <small class="hint">A demo model with random weights: its answers have the right shape but no meaning.</small>}
      <ErrorBox error={error} />
    </div>
  );
}

function trimJson(text) {
  return text.length > 30000 ? `${text.slice(0, 30000)}\n… (${text.length - 30000} more characters; use the curl command for all)` : text;
}

export function Playground({ task }) {
  const cfg = TASKS[task];
  const [s, setS] = useState(cfg.initial);
  const [model, setModel] = useState('');
  const [run, setRun] = useState(null); // {data, json, ms, sent, extra}
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState('');
  const [wait, setWait] = useState(0);
  const [loading, setLoading] = useState(null); // the last 503 while retrying
  const [loads, setLoads] = useState(0); // bumped when a model was loaded for a run
  const abort = useRef(null);
  const set = (patch) => setS((p) => ({ ...p, ...patch }));
  useEffect(() => () => abort.current?.abort(), []);
  useEffect(() => {
    if (wait <= 0) return;
    const t = setTimeout(() => setWait((w) => w - 1), 1000);
    return () => clearTimeout(t);
  }, [wait]);

  const body = { ...cfg.body(s), model_name: model };
  // RoBERTa-style tokenizers (RoBERTa, BART, XLM-R) write the mask <mask>, BERT-style ones [MASK].
  const pickModel = (m) => {
    setModel(m);
    if (task !== 'fill-mask') return;
    const bpe = /roberta|bart|xlm/i.test(m);
    setS((p) => ({ ...p, text: bpe ? p.text.replaceAll('[MASK]', '<mask>') : p.text.replaceAll('<mask>', '[MASK]') }));
  };
  const submit = async (e) => {
    e.preventDefault();
    abort.current?.abort();
    const ctl = (abort.current = new AbortController());
    setError(null);
    setBusy('Running…');
    const sent = { ...s };
    const t0 = performance.now();
    try {
      // 503 while the model loads: wait as the server asks, then try again.
      for (let attempt = 0; ; attempt++) {
        try {
          const r = await request('POST', cfg.endpoint, body, { raw: true, signal: ctl.signal });
          const ms = performance.now() - t0;
          const extra = cfg.extra ? await cfg.extra(sent, model) : null;
          setRun({ data: r.json.data, json: JSON.stringify(r.json, null, 2), ms, sent, extra });
          if (attempt > 0) setLoads((n) => n + 1); // the picker shows it loaded now
          break;
        } catch (err) {
          if (err instanceof ApiError && err.status === 503 && attempt < 60) {
            const secs = Math.min(err.retryAfter || 1, 10);
            setLoading({ what: err.message, wait: secs, attempt: attempt + 1 });
            setRun(null);
            setBusy(`Loading: ${err.message === 'Model loading' ? `the model ${model} is being loaded` : err.message}; retrying in ${secs} s…`);
            await new Promise((res) => setTimeout(res, 1000 * secs));
            if (ctl.signal.aborted) return;
            continue;
          }
          throw err;
        }
      }
    } catch (err) {
      if (err.name === 'AbortError') return;
      setError(err);
      if (err.status === 429) setWait(err.retryAfter || 1);
      setRun(null);
    } finally {
      setBusy('');
      setLoading(null);
    }
  };
  const R = cfg.Result;
  return (
    <div class="page playground" data-task={task}>
      <nav class="tabs" aria-label="Playgrounds">
        {Object.entries(TASKS).map(([k, c]) => (
          <Link key={k} href={`/playground/${k}`} aria-current={k === task ? 'page' : undefined}>{c.title}</Link>
        ))}
      </nav>
      <div class="split">
        <form class="card" onSubmit={submit} aria-label={`${cfg.title} input`}>
          <h1>{cfg.title}</h1>
          <p class="muted">{cfg.blurb}</p>
          <ModelPicker id="pg-model" value={model} onChange={pickModel} cfg={cfg} refresh={loads} />
          <cfg.Form s={s} set={set} />
          <div class="actions">
            <button type="submit" class="primary" disabled={!!busy || !model || wait > 0} data-testid="run">
              {wait > 0 ? `Wait ${wait} s` : 'Run'}
            </button>
            {busy && <span data-testid={loading ? 'loading' : 'busy'} data-attempt={loading?.attempt}><Spinner label={busy} /></span>}
            {run && !busy && <span class="pill" data-testid="elapsed">{run.ms.toFixed(0)} ms</span>}
          </div>
          <ErrorBox error={error}>
            {error?.status === 413 && <span>This request was {new Blob([JSON.stringify(body)]).size} bytes of JSON: shorten the input.</span>}
            {error?.status === 429 && wait > 0 && <span data-testid="wait">The Run button comes back in {wait} s.</span>}
          </ErrorBox>
          <CodeBlock title="Request" text={curlFor(cfg.endpoint, body)} className="curl" />
        </form>
        <section class="card result" aria-live="polite" aria-label="Result">
          <h2>Result</h2>
          {!run && !error && !loading && <p class="muted">Run the task to see its result here.</p>}
          {loading && (
            <p class="notice info" data-testid="loading-note">
              The server is loading <code>{model}</code> into memory (it answered 503, {loading.what}). The run is
              sent again by itself after the wait the server asked for (attempt {loading.attempt}).
            </p>
          )}
          {error && <p class="muted">No result: the server refused the request (the message is beside the Run button).</p>}
          {run && <div data-testid="result"><R data={run.data} sent={run.sent} extra={run.extra} /></div>}
          {run && <CodeBlock title="JSON response" text={trimJson(run.json)} className="json" />}
        </section>
      </div>
    </div>
  );
}
