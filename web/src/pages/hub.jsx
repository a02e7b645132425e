// Models & Hub: the local cache (load, unload, delete, disk used against the
// cap), the Hub search with tag chips and paginated cards, downloads with a
// live progress bar (server-sent events), and the admin's folder import.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, explain, modelPath, query } from '../api.js';
import { can, lacks, useAuth } from '../auth.js';
import { ErrorBox, Field, fmtBytes, Notice, Spinner } from '../components.jsx';
import { getHealth, PRECISION_HINT, PRECISION_LABEL, PRECISIONS, PrecisionBadge } from '../precision.jsx';

const TAGS = ['text-classification', 'token-classification', 'question-answering', 'fill-mask', 'feature-extraction', 'sentence-similarity', 'summarization'];
const PAGE = 9;

function Progress({ name, onEnd }) {
  const [p, setP] = useState({ stage: 'starting', done: 0, total: 0 });
  const [end, setEnd] = useState(null);
  useEffect(() => {
    const es = new EventSource(`/models/${modelPath(name)}/events`);
    const finish = (kind, data) => {
      es.close();
      setEnd({ kind, data });
      onEnd(kind, data);
    };
    es.addEventListener('progress', (e) => setP(JSON.parse(e.data)));
    es.addEventListener('done', (e) => {
      setP((q) => ({ ...q, stage: 'done', done: q.total || 1, total: q.total || 1 }));
      finish('done', JSON.parse(e.data));
    });
    es.addEventListener('error', (e) => {
      if (e.data) finish('error', JSON.parse(e.data));
    });
    es.addEventListener('state', (e) => finish('state', JSON.parse(e.data)));
    return () => es.close();
  }, [name]);
  const pct = p.stage === 'done' ? 100 : p.total ? Math.min(100, (100 * p.done) / p.total) : 0;
  return (
    <div class="progress-wrap">
      <div class="progress" role="progressbar" aria-label={`Download of ${name}`} aria-valuemin="0" aria-valuemax="100"
        aria-valuenow={Math.round(pct)} data-testid="download-progress">
        <span style={{ width: `${pct}%` }} />
      </div>
      <small class="muted">
        {end?.kind === 'error' ? `Failed: ${end.data.detail || end.data.error}` :
          `${p.stage}${p.files_total ? ` · file ${p.files_done}/${p.files_total}` : ''}${p.total > 0 ? ` · ${fmtBytes(p.done)} of ${fmtBytes(p.total)}` : ''} · ${Math.round(pct)}%`}
      </small>
    </div>
  );
}

// What became of the last load asked for, as the table (polled while a model
// loads) tells: loading, loaded in which precision, or failed.
function LoadOutcome({ asked, model }) {
  const { name, precision } = asked;
  if (!model) return null;
  if (model.state === 'loading') return <Spinner label={`${name} is loading in ${model.precision || precision}…`} />;
  if (model.state === 'loaded')
    return <Notice kind="ok">{asked.status === 200 ? `${name} was already loaded in ${model.precision}.` : `${name} is loaded in ${model.precision}.`}</Notice>;
  if (model.state === 'failed')
    return <div class="error" role="alert" data-testid="cache-error"><strong>{name} could not be loaded in {precision}</strong><span>Load it again: the server answers with the reason (and the next load starts afresh).</span></div>;
  return null;
}

// The precision a row's load asks for: the one picked, else the server's
// default for the next load (health.precision), so that "server default"
// also reloads a model running in another precision.
function Cache({ auth, reload, models, error, capBytes, health }) {
  const [busy, setBusy] = useState('');
  const [err, setErr] = useState(null);
  // The last load asked for: {name, precision, status}; its line follows the table.
  const [asked, setAsked] = useState(null);
  const [pick, setPick] = useState({});
  const act = async (label, fn) => {
    setBusy(label);
    setErr(null);
    setAsked(null);
    try {
      await fn();
      await reload();
    } catch (e) {
      setErr({ what: label.replace(/…$/, ''), e });
    } finally {
      setBusy('');
    }
  };
  const load = (m) => {
    const chosen = pick[m.model_name] || '';
    const reloading = m.state === 'loaded';
    // A loaded model keeps its precision on a load without one: say which.
    const want = chosen || (reloading ? health?.precision : '');
    const verb = reloading ? 'Reloading' : 'Loading';
    return act(`${verb} ${m.model_name}${want ? ` in ${want}` : ''}…`, async () => {
      const r = await api.post(`/models/${modelPath(m.model_name)}/load`, want ? { precision: want } : {}, { raw: true });
      setAsked({ name: m.model_name, precision: r.json?.data?.precision, status: r.status });
    });
  };
  const noManage = lacks(auth, 'models:download');
  const used = (models || []).reduce((a, m) => a + (m.file_size || 0), 0);
  const cached = (models || []).filter((m) => m.state !== 'not_cached').sort((a, b) => a.model_name.localeCompare(b.model_name));
  const dflt = health?.precision;
  return (
    <section class="card" aria-labelledby="cache-h">
      <div class="card-head">
        <h2 id="cache-h">Local models</h2>
        <div class="disk" data-testid="disk">
          <span>Disk: {fmtBytes(used)}{capBytes ? ` of ${fmtBytes(capBytes)}` : capBytes === 0 ? ' (no cap)' : ''}</span>
          {capBytes > 0 && (
            <span class="meter" role="meter" aria-label="Model cache disk use" aria-valuemin="0" aria-valuemax={capBytes} aria-valuenow={used}>
              <span style={{ width: `${Math.min(100, (100 * used) / capBytes)}%` }} />
            </span>
          )}
        </div>
      </div>
      {noManage && <Notice kind="warn">{noManage} Loading, unloading and deleting are disabled.</Notice>}
      <ErrorBox error={error} />
      {err && <ErrorBox error={err.e} title={`${err.what}: ${explain(err.e).title}`} testid="cache-error" />}
      {busy && <Spinner label={busy} />}
      {asked && !busy && <LoadOutcome asked={asked} model={(models || []).find((m) => m.model_name === asked.name)} />}
      {!models ? <Spinner label="Loading…" /> : cached.length === 0 ? <p class="muted">No model in the cache yet: search the Hub below.</p> : (
        <div class="table-wrap">
          <table class="models" data-testid="local-models">
            <thead><tr><th scope="col">model</th><th scope="col">task</th><th scope="col">state</th><th scope="col">precision</th><th scope="col">size</th><th scope="col"><span class="sr-only">actions</span></th></tr></thead>
            <tbody>
              {cached.map((m) => {
                const loaded = m.state === 'loaded', loading = m.state === 'loading';
                const chosen = pick[m.model_name] || '';
                const target = chosen || dflt;
                // Reloading in the precision it already runs in does nothing (200).
                const same = loaded && target === m.precision;
                const off = !!noManage || !!busy || loading;
                return (
                  <tr key={m.model_name} data-model={m.model_name} data-state={m.state}>
                    <th scope="row" class="mono">{m.model_name}</th>
                    <td>{m.task_type || '—'}</td>
                    <td><span class={`state st-${m.state}`}>{loading && <span class="dot" aria-hidden="true" />}{m.state.replace('_', ' ')}</span></td>
                    <td><PrecisionBadge precision={m.precision} loading={loading} /></td>
                    <td>{fmtBytes(m.file_size)}</td>
                    <td class="btns">
                      <select class="small" aria-label={`Precision to load ${m.model_name} in`} value={chosen}
                        disabled={!!noManage || loading} title={noManage || 'Precision of the dense layers'}
                        onChange={(e) => setPick({ ...pick, [m.model_name]: e.currentTarget.value })}>
                        <option value="">server default{dflt ? ` (${dflt})` : ''}</option>
                        {PRECISIONS.map((p) => <option key={p} value={p} title={PRECISION_HINT[p]}>{PRECISION_LABEL[p]}</option>)}
                      </select>
                      {loaded ? (
                        <>
                          <button type="button" class="small" disabled={off || same}
                            title={noManage || (same ? `It runs in ${m.precision}: pick another precision to reload it` : `Load it again in ${target}`)}
                            onClick={() => load(m)}>Reload</button>
                          <button type="button" class="small" disabled={!!noManage || !!busy} title={noManage}
                            onClick={() => act(`Unloading ${m.model_name}…`, () => api.post(`/models/${modelPath(m.model_name)}/unload`))}>Unload</button>
                        </>
                      ) : (
                        <button type="button" class="small" disabled={off} title={noManage || (loading ? 'Loading…' : '')}
                          onClick={() => load(m)}>Load</button>
                      )}
                      <button type="button" class="small danger" disabled={!!noManage || !!busy} title={noManage}
                        onClick={() => confirm(`Delete ${m.model_name} from the cache?`) && act(`Deleting ${m.model_name}…`, () => api.del(`/models/${modelPath(m.model_name)}`))}>Delete</button>
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

function Search({ auth, local, reload }) {
  const [text, setText] = useState('');
  const [tag, setTag] = useState('');
  const [res, setRes] = useState(null);
  const [page, setPage] = useState(0);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const [downloads, setDownloads] = useState({});
  const noDl = lacks(auth, 'models:download');
  const search = async (e, t = tag) => {
    e?.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const d = await api.get(`/models/available${query({ search: text, tag: t, limit: 100 })}`);
      setRes(d);
      setPage(0);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const pickTag = (t) => {
    const nt = t === tag ? '' : t;
    setTag(nt);
    search(null, nt);
  };
  const download = async (name) => {
    setError(null);
    try {
      await api.post('/models/download', { model_name: name });
      setDownloads((d) => ({ ...d, [name]: 'running' }));
    } catch (err) {
      setError(err);
    }
  };
  const models = res?.models || [];
  // Task chips, then the tags most common among the results (architectures, languages...).
  const [seen, setSeen] = useState([]);
  useEffect(() => {
    if (!res || tag) return;
    const n = {};
    for (const m of models) for (const t of m.tags || []) if (!TAGS.includes(t)) n[t] = (n[t] || 0) + 1;
    setSeen(Object.entries(n).sort((a, b) => b[1] - a[1]).slice(0, 10).map(([t]) => t));
  }, [res]);
  const pages = Math.ceil(models.length / PAGE);
  const shown = models.slice(page * PAGE, page * PAGE + PAGE);
  return (
    <section class="card" aria-labelledby="hub-h">
      <h2 id="hub-h">Search the Hub</h2>
      <form class="row" onSubmit={search} role="search">
        <label class="sr-only" for="hub-q">Search text</label>
        <input id="hub-q" type="search" placeholder="bert, ner, sentiment…" value={text} onInput={(e) => setText(e.currentTarget.value)} />
        <button type="submit" class="primary" disabled={busy}>Search</button>
      </form>
      <div class="chips" role="group" aria-label="Filter by task tag">
        {[...TAGS, ...seen.filter((t) => !TAGS.includes(t))].map((t) => (
          <button type="button" key={t} class={`chip ${tag === t ? 'on' : ''}`} aria-pressed={tag === t} onClick={() => pickTag(t)}>{t}</button>
        ))}
      </div>
      <ErrorBox error={error} />
      {busy && <Spinner label="Searching…" />}
      {res && <p class="muted small">{models.length} {models.length === 1 ? 'model' : 'models'} from {res.endpoint}</p>}
      <div class="cards" data-testid="hub-results">
        {shown.map((m) => {
          const have = local?.find((l) => l.model_name === m.model_name && l.state !== 'not_cached');
          const dl = downloads[m.model_name];
          return (
            <article class="model-card" key={m.model_name} data-model={m.model_name}>
              <h3 class="mono">{m.model_name}</h3>
              <div class="meta">
                {m.pipeline_tag && <span class="badge">{m.pipeline_tag}</span>}
                <span title="downloads">↓ {(m.downloads ?? 0).toLocaleString()}</span>
                <span title="likes">♥ {(m.likes ?? 0).toLocaleString()}</span>
              </div>
              <div class="tags">{(m.tags || []).slice(0, 6).map((t) => <span key={t} class="tag">{t}</span>)}</div>
              {dl ? (
                <Progress name={m.model_name} onEnd={(kind) => { setDownloads((d) => ({ ...d, [m.model_name]: kind })); reload(); }} />
              ) : have ? (
                <span class="badge ok">in the cache</span>
              ) : (
                <button type="button" class="small primary" disabled={!!noDl} title={noDl} onClick={() => download(m.model_name)}>Download</button>
              )}
            </article>
          );
        })}
      </div>
      {pages > 1 && (
        <nav class="pager" aria-label="Result pages">
          <button type="button" class="small" disabled={page === 0} onClick={() => setPage(page - 1)}>Previous</button>
          <span>Page {page + 1} of {pages}</span>
          <button type="button" class="small" disabled={page >= pages - 1} onClick={() => setPage(page + 1)}>Next</button>
        </nav>
      )}
    </section>
  );
}

function Import({ reload }) {
  const [path, setPath] = useState('');
  const [name, setName] = useState('');
  const [msg, setMsg] = useState(null);
  const [error, setError] = useState(null);
  const submit = async (e) => {
    e.preventDefault();
    setError(null);
    setMsg(null);
    try {
      await api.post('/models/import', { path, model_name: name });
      setMsg(`Imported ${name}.`);
      reload();
    } catch (err) {
      setError(err);
    }
  };
  return (
    <section class="card" aria-labelledby="imp-h">
      <h2 id="imp-h">Import a local folder</h2>
      <p class="muted">A folder on the server's disk with config.json, tokenizer files and safetensors weights.</p>
      <form class="row wrap" onSubmit={submit}>
        <Field id="imp-path" label="Folder on the server">
          <input id="imp-path" value={path} onInput={(e) => setPath(e.currentTarget.value)} placeholder="/srv/models/my-bert" required />
        </Field>
        <Field id="imp-name" label="Model name">
          <input id="imp-name" value={name} onInput={(e) => setName(e.currentTarget.value)} placeholder="local/my-bert" required />
        </Field>
        <button type="submit" class="primary">Import</button>
      </form>
      {msg && <Notice kind="ok">{msg}</Notice>}
      <ErrorBox error={error} />
    </section>
  );
}

export function Hub() {
  const auth = useAuth();
  const [models, setModels] = useState(null);
  const [error, setError] = useState(null);
  const [cap, setCap] = useState(undefined);
  const [health, setHealth] = useState(null);
  const alive = useRef(true);
  const reload = async () => {
    try {
      const [d, h] = await Promise.all([api.get('/models'), getHealth().catch(() => null)]);
      if (!alive.current) return;
      setModels(d.models || []);
      if (h) setHealth(h);
    } catch (e) {
      setError(e);
    }
  };
  // A model loads in the background (202): follow it until it settles.
  const busyModels = (models || []).some((m) => m.state === 'loading' || m.state === 'downloading');
  useEffect(() => {
    if (!busyModels) return;
    const t = setTimeout(reload, 700);
    return () => clearTimeout(t);
  }, [models]);
  useEffect(() => {
    reload();
    if (can(auth, 'admin:read')) api.get('/settings/model_cache_max_bytes').then((s) => setCap(Number(s.setting_value)), () => {});
    return () => (alive.current = false);
  }, []);
  return (
    <div class="page">
      <h1>Models &amp; Hub</h1>
      <Cache auth={auth} models={models} error={error} reload={reload} capBytes={cap} health={health} />
      <Search auth={auth} local={models} reload={reload} />
      {can(auth, 'admin:write') ? <Import reload={reload} /> : (
        <p class="muted small">Importing a folder from the server's disk needs admin:write.</p>
      )}
    </div>
  );
}
