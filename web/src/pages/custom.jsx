// Custom tasks: the list (search, tag and model filters, newest or most
// used), three Python editors (tokenizer, model, function), templates for
// single and batch mode, run with an input (errors point at their line),
// save/update/delete, public or private, export and import, and stats.
import { useEffect, useState } from 'preact/hooks';
import { api, query, request } from '../api.js';
import { can, lacks, useAuth } from '../auth.js';
import { CodeBlock, ErrorBox, Field, fmtDate, Notice, Spinner, useLatestGet } from '../components.jsx';
import { PyEditor } from '../editor.jsx';
import { ModelPicker } from './playground.jsx';

// The templates name the picked model, as the seed's example document does.
const TEMPLATES = {
  single: {
    tokenizer_code: "tokenizer = AutoTokenizer.from_pretrained('MODEL')",
    model_code: "model = AutoModelForSequenceClassification.from_pretrained('MODEL')",
    function_code:
      "def custom_function(text):\n    inputs = tokenizer(text, return_tensors='pt')\n    outputs = model(**inputs)\n    probs = torch.softmax(outputs.logits, dim=-1)[0]\n    labels = model.config.id2label\n    return {labels[i]: round(p, 4) for i, p in enumerate(probs.tolist())}\n",
  },
  batch: {
    tokenizer_code: "tokenizer = AutoTokenizer.from_pretrained('MODEL')",
    model_code: "model = AutoModelForSequenceClassification.from_pretrained('MODEL')",
    function_code:
      "def custom_function(texts):\n    inputs = tokenizer(texts, padding=True, truncation=True, return_tensors='pt')\n    outputs = model(**inputs)\n    best = torch.argmax(outputs.logits, dim=-1)\n    return [model.config.id2label[int(i)] for i in best.tolist()]\n",
  },
};
const PARTS = [
  ['tokenizer_code', 'Tokenizer code', 'binds tokenizer'],
  ['model_code', 'Model code', 'binds model'],
  ['function_code', 'Function code', 'defines custom_function(text), or custom_function(texts) in batch mode'],
];
const template = (kind, model) =>
  Object.fromEntries(Object.entries(TEMPLATES[kind]).map(([k, v]) => [k, v.replaceAll('MODEL', model || 'MODEL')]));
const EMPTY = { _id: null, name: '', description: '', tags: '', model_name: '', is_public: false, ...TEMPLATES.single };
const CLASSIFY = { types: ['classification'], hint: 'classification' };

// Where an error message points: {part, line} from "function_code line 3",
// "File "<function_code>", line 3" or a bare "line 3" (function code).
export function errorPlace(text) {
  const m = /line (\d+)/i.exec(text || '');
  if (!m) return null;
  const part = (/(tokenizer_code|model_code|function_code)/.exec(text) || [])[1] || 'function_code';
  return { part, line: Number(m[1]) };
}

const taskList = (d) => d?.tasks || d?.custom_tasks || (Array.isArray(d) ? d : []);

function List({ onOpen, refresh, selected, setSelected }) {
  const [f, setF] = useState({ search: '', tags: '', model: '', sort: '' });
  const [data, error] = useLatestGet(`/custom-tasks${query({ ...f, limit: 50 })}`, refresh);
  const set = (k) => (e) => setF({ ...f, [k]: e.currentTarget.value });
  const tasks = taskList(data);
  const toggle = (id) => setSelected(selected.includes(id) ? selected.filter((x) => x !== id) : [...selected, id]);
  return (
    <section class="card" aria-labelledby="ct-list-h">
      <h2 id="ct-list-h">Saved tasks</h2>
      <form class="row wrap filters" onSubmit={(e) => e.preventDefault()} role="search">
        <div class="field"><label for="ct-search">Search</label><input id="ct-search" type="search" value={f.search} onInput={set('search')} placeholder="name or description" /></div>
        <div class="field"><label for="ct-tags">Tags</label><input id="ct-tags" value={f.tags} onChange={set('tags')} placeholder="a,b" /></div>
        <div class="field"><label for="ct-model">Model</label><input id="ct-model" value={f.model} onChange={set('model')} placeholder="any" /></div>
        <div class="field"><label for="ct-sort">Sort</label>
          <select id="ct-sort" value={f.sort} onChange={set('sort')}>
            <option value="">{f.search ? 'best match' : 'newest'}</option><option value="created_at">newest</option><option value="usage_count">most used</option>
          </select></div>
      </form>
      <ErrorBox error={error} />
      {!data && !error ? <Spinner label="Loading…" /> : tasks.length === 0 ? <p class="muted">No saved task matches.</p> : (
        <ul class="task-list" data-testid="task-list">
          {tasks.map((t) => (
            <li key={t._id} data-task-name={t.name}>
              <input type="checkbox" aria-label={`Select ${t.name} for export`} checked={selected.includes(t._id)} onChange={() => toggle(t._id)} />
              <button type="button" class="link" onClick={() => onOpen(t)}>{t.name}</button>
              <span class="muted small">{t.model_name}</span>
              {(t.tags || []).map((g) => <span class="tag" key={g}>{g}</span>)}
              <span class="badge">{t.is_public ? 'public' : 'private'}</span>
              <span class="muted small">
                {t.usage_count ?? 0} {t.usage_count === 1 ? 'run' : 'runs'}
                {t.execution_stats?.total_executions ? ` · avg ${(t.execution_stats.avg_execution_time * 1000).toFixed(1)} ms · ${(t.execution_stats.success_rate * 100).toFixed(0)}% ok` : ''}
                {' · '}{fmtDate(t.created_at)}
              </span>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

function Stats({ refresh }) {
  const [st, setSt] = useState(null);
  useEffect(() => {
    api.get('/custom-tasks/stats').then(setSt, () => setSt(null));
  }, [refresh]);
  if (!st) return null;
  const rows = st.tasks || st.per_task || [];
  const chips = (list, key) => (list || []).slice(0, 12).map((x) => <span class="tag" key={x[key]}>{x[key]} · {x.count}</span>);
  return (
    <section class="card" aria-labelledby="ct-stats-h">
      <h2 id="ct-stats-h">Execution stats</h2>
      <div class="stats">
        {Object.entries(st).filter(([, v]) => typeof v === 'number').map(([k, v]) => (
          <div class="stat" key={k}><span class="stat-value">{Number.isInteger(v) ? v : v.toFixed(3)}</span><span class="stat-label">{k.replace(/_/g, ' ')}</span></div>
        ))}
      </div>
      {st.models?.length > 0 && <p><strong>Models </strong>{chips(st.models, 'model_name')}</p>}
      {st.tags?.length > 0 && <p><strong>Tags </strong>{chips(st.tags, 'tag')}</p>}
      {rows.length > 0 && (
        <table><thead><tr><th scope="col">task</th><th scope="col">runs</th><th scope="col">avg time</th><th scope="col">success</th></tr></thead>
          <tbody>{rows.map((r, i) => {
            const s = r.execution_stats || r;
            return <tr key={i}><td>{r.name || r._id}</td><td>{s.total_executions ?? r.usage_count ?? 0}</td><td>{s.avg_execution_time != null ? `${(s.avg_execution_time * 1000).toFixed(1)} ms` : '—'}</td><td>{s.success_rate != null ? `${(s.success_rate * 100).toFixed(0)}%` : '—'}</td></tr>;
          })}</tbody></table>
      )}
    </section>
  );
}

export function CustomTasks() {
  const auth = useAuth();
  const [t, setT] = useState(EMPTY);
  const [input, setInput] = useState('I loved this film.');
  const [out, setOut] = useState(null);
  const [error, setError] = useState(null);
  const [msg, setMsg] = useState('');
  const [busy, setBusy] = useState(false);
  const [refresh, setRefresh] = useState(0);
  const [selected, setSelected] = useState([]);
  const [savedCode, setSavedCode] = useState(''); // the code as stored, to run a saved task by its id
  const place = errorPlace(out?.errorText);
  const set = (patch) => setT((p) => ({ ...p, ...patch }));
  const noSave = lacks(auth, 'tasks:save');
  const code = { tokenizer_code: t.tokenizer_code, model_code: t.model_code, function_code: t.function_code };

  const run = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    setOut(null);
    setMsg('');
    const t0 = performance.now();
    // A saved task whose code is unchanged runs by its id: its usage and stats count the run.
    const body = t._id && savedCode === JSON.stringify(code)
      ? { task_id: t._id, input_text: input }
      : { ...code, input_text: input, ...(t.model_name && { model_id: t.model_name }) };
    try {
      const r = await request('POST', '/tasks/custom', body, { raw: true });
      const d = r.json.data ?? {};
      const errText = d.error || (d.errors || []).find(Boolean);
      setOut({ ms: performance.now() - t0, json: JSON.stringify(r.json, null, 2), result: d.result ?? d.results ?? d, errorText: errText ? String(errText) : '' });
      if (body.task_id) setRefresh((n) => n + 1);
    } catch (err) {
      // The task's own failure (422) goes to the result panel, with its line.
      if (err.status === 422 && err.detail) setOut({ errorText: err.detail, title: err.message });
      else setError(err);
    } finally {
      setBusy(false);
    }
  };
  const save = async () => {
    setError(null);
    setMsg('');
    const doc = { name: t.name, description: t.description, tags: t.tags.split(',').map((x) => x.trim()).filter(Boolean), model_name: t.model_name, is_public: t.is_public, ...code };
    try {
      const d = t._id ? await api.put(`/custom-tasks/${t._id}`, doc) : await api.post('/custom-tasks', doc);
      const id = d?._id || d?.task_id || d?.id || t._id;
      set({ _id: id });
      setSavedCode(JSON.stringify(code));
      setMsg(t._id ? 'Task updated.' : 'Task saved.');
      setRefresh(refresh + 1);
    } catch (err) {
      if (errorPlace(err.detail)) setOut({ errorText: err.detail, title: err.message });
      else setError(err);
    }
  };
  const remove = async () => {
    if (!confirm(`Delete the task "${t.name}"?`)) return;
    try {
      await api.del(`/custom-tasks/${t._id}`);
      setT(EMPTY);
      setMsg('Task deleted.');
      setRefresh(refresh + 1);
    } catch (err) {
      setError(err);
    }
  };
  const open = async (row) => {
    try {
      const d = await api.get(`/custom-tasks/${row._id}`);
      const doc = d.task || d;
      setT({ ...EMPTY, ...doc, tags: (doc.tags || []).join(', ') });
      setSavedCode(JSON.stringify({ tokenizer_code: doc.tokenizer_code, model_code: doc.model_code, function_code: doc.function_code }));
      setOut(null);
      setMsg('');
    } catch (err) {
      setError(err);
    }
  };
  const exportSel = async () => {
    try {
      const d = await api.post('/custom-tasks/export', { task_ids: selected });
      const a = document.createElement('a');
      a.href = URL.createObjectURL(new Blob([JSON.stringify(d, null, 2)], { type: 'application/json' }));
      a.download = 'custom-tasks.json';
      a.click();
    } catch (err) {
      setError(err);
    }
  };
  const importFile = async (e) => {
    const input = e.currentTarget; // null once the event is over
    const file = input.files[0];
    if (!file) return;
    try {
      const d = await api.post('/custom-tasks/import', JSON.parse(await file.text()));
      setMsg(`Imported ${d?.imported ?? d?.count ?? ''} task(s).`);
      setRefresh(refresh + 1);
    } catch (err) {
      setError(err instanceof SyntaxError ? { status: 400, message: 'The file is not JSON', detail: err.message } : err);
    }
    input.value = ''; // the same file may be imported again
  };
  return (
    <div class="page">
      <div class="page-head">
        <h1>Custom tasks</h1>
        <div class="row tight">
          <button type="button" class="small" disabled={!selected.length} onClick={exportSel}>Export selected ({selected.length})</button>
          <label class={`button small ${noSave ? 'disabled' : ''}`} title={noSave}>
            Import file<input type="file" accept="application/json,.json" class="sr-only" disabled={!!noSave} onChange={importFile} />
          </label>
        </div>
      </div>
      <div class="split wide-left">
        <form class="card" onSubmit={run} aria-labelledby="ct-edit-h">
          <div class="card-head">
            <h2 id="ct-edit-h">{t._id ? `Edit “${t.name}”` : 'New task'}</h2>
            <div class="row tight" role="group" aria-label="Templates">
              <button type="button" class="small" onClick={() => set(template('single', t.model_name))}>Single template</button>
              <button type="button" class="small" onClick={() => set(template('batch', t.model_name))}>Batch template</button>
              {t._id && <button type="button" class="small" onClick={() => { setT(EMPTY); setOut(null); }}>New</button>}
            </div>
          </div>
          <div class="row wrap">
            <Field id="ct-name" label="Name"><input id="ct-name" value={t.name} onInput={(e) => set({ name: e.currentTarget.value })} /></Field>
            <Field id="ct-tags-e" label="Tags (comma-separated)"><input id="ct-tags-e" value={t.tags} onInput={(e) => set({ tags: e.currentTarget.value })} /></Field>
          </div>
          <Field id="ct-desc" label="Description"><input id="ct-desc" value={t.description} onInput={(e) => set({ description: e.currentTarget.value })} /></Field>
          <ModelPicker id="ct-model-pick" value={t.model_name} prefer={CLASSIFY}
            onChange={(v) => setT((p) => {
              // Code still naming the previous model follows the picker.
              const swap = (code) => (p.model_name ? code.replaceAll(`'${p.model_name}'`, `'${v}'`) : code.replaceAll("'MODEL'", `'${v}'`));
              return { ...p, model_name: v, tokenizer_code: swap(p.tokenizer_code), model_code: swap(p.model_code) };
            })} />
          {PARTS.map(([k, l, hint]) => (
            <div class="field" key={k}>
              <label for={`ed-${k}`}>{l} <small class="muted">({hint})</small></label>
              <PyEditor id={`ed-${k}`} label={l} value={t[k]} onChange={(v) => set({ [k]: v })} errorAt={place?.part === k ? place.line : 0} />
            </div>
          ))}
          <Field id="ct-input" label="Input text"><textarea id="ct-input" rows={2} value={input} onInput={(e) => setInput(e.currentTarget.value)} /></Field>
          <div class="actions">
            <button type="submit" class="primary" disabled={busy} data-testid="ct-run">Run</button>
            <button type="button" disabled={!!noSave || !t.name} title={noSave || (!t.name ? 'Give the task a name' : '')} onClick={save} data-testid="ct-save">{t._id ? 'Update' : 'Save'}</button>
            <label class="check"><input type="checkbox" checked={t.is_public} onChange={(e) => set({ is_public: e.currentTarget.checked })} /> public</label>
            {t._id && <button type="button" class="danger" disabled={!!noSave} onClick={remove} data-testid="ct-delete">Delete</button>}
            {busy && <Spinner label="Running…" />}
            {out?.ms != null && <span class="pill">{out.ms.toFixed(0)} ms</span>}
          </div>
          {msg && <Notice kind="ok">{msg}</Notice>}
          <ErrorBox error={error} />
        </form>
        <section class="card result" aria-live="polite" aria-labelledby="ct-res-h">
          <h2 id="ct-res-h">Result</h2>
          {!out && <p class="muted">Run the task to see its result.</p>}
          {out?.errorText && (
            <div class="error" role="alert" data-testid="ct-error">
              <strong>{place ? `${out.title || 'Error'} in ${place.part.replace('_', ' ')}, line ${place.line}` : out.title || 'Error'}</strong>
              <pre>{out.errorText}</pre>
            </div>
          )}
          {out && !out.errorText && <pre class="output" data-testid="ct-result">{JSON.stringify(out.result, null, 2)}</pre>}
          {out?.json && <CodeBlock title="JSON response" text={out.json} className="json" />}
        </section>
      </div>
      <List onOpen={open} refresh={refresh} selected={selected} setSelected={setSelected} />
      {can(auth, 'tasks:execute') && <Stats refresh={refresh} />}
    </div>
  );
}
