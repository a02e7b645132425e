// Dashboard: executions over time by task and model, latency p50/p95 and
// success rates (GET /logs/stats), the loaded models, and the request log
// with filters (GET /logs).
import { useEffect, useState } from 'preact/hooks';
import { api, query } from '../api.js';
import { ChartView, ErrorBox, fmtBytes, fmtDate, PALETTE, Spinner, useLatestGet } from '../components.jsx';
import { getHealth, PrecisionBadge, precisionCounts } from '../precision.jsx';

const ms = (s) => (s == null ? null : +(s * 1000).toFixed(2));

function Stat({ label, value, testid }) {
  return (
    <div class="stat" data-testid={testid}>
      <span class="stat-value">{value}</span>
      <span class="stat-label">{label}</span>
    </div>
  );
}

function Charts({ since }) {
  const [st, setSt] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    (async () => {
      try {
        const q = { since };
        const [byTask, byModel, byDay] = await Promise.all(
          ['task_type', 'model_name', 'day'].map((g) => api.get(`/logs/stats${query({ ...q, group_by: g })}`)));
        const tasks = byTask.groups.map((g) => g._id);
        const perTask = await Promise.all(tasks.map((t) => api.get(`/logs/stats${query({ ...q, group_by: 'day', task_type: t })}`)));
        setSt({ byTask: byTask.groups, byModel: byModel.groups, byDay: byDay.groups, perTask, tasks });
      } catch (e) {
        setError(e);
      }
    })();
  }, [since]);
  if (error) return <ErrorBox error={error} />;
  if (!st) return <Spinner label="Loading statistics…" />;
  const total = st.byDay.reduce((a, g) => a + g.count, 0);
  const ok = st.byDay.reduce((a, g) => a + g.count * g.success_rate, 0);
  if (!total) return <p class="muted" data-testid="no-stats">No executions yet in this period: run a playground and come back.</p>;
  const days = st.byDay.map((g) => g._id).sort();
  const avgP50 = st.byTask.reduce((a, g) => a + g.p50_execution_time * g.count, 0) / total;
  const worstP95 = Math.max(...st.byTask.map((g) => g.p95_execution_time));
  return (
    <>
      <div class="stats">
        <Stat label="executions" value={total.toLocaleString()} testid="stat-total" />
        <Stat label="success rate" value={`${((100 * ok) / total).toFixed(1)}%`} />
        <Stat label="p50 latency (weighted)" value={`${ms(avgP50)} ms`} />
        <Stat label="worst p95 latency" value={`${ms(worstP95)} ms`} />
      </div>
      <div class="grid2">
        <section class="card">
          <h2>Executions per day, by task</h2>
          <ChartView testid="chart-time" label="Executions per day by task"
            config={{
              type: 'bar',
              data: {
                labels: days,
                datasets: st.tasks.map((t, i) => ({
                  label: t, backgroundColor: PALETTE[i % PALETTE.length],
                  data: days.map((d) => st.perTask[i].groups.find((g) => g._id === d)?.count ?? 0),
                })),
              },
              options: { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } } },
            }} />
        </section>
        <section class="card">
          <h2>Executions by model</h2>
          <ChartView testid="chart-model" label="Executions by model"
            config={{
              type: 'bar',
              data: { labels: st.byModel.map((g) => g._id), datasets: [{ label: 'executions', data: st.byModel.map((g) => g.count), backgroundColor: PALETTE[1], borderRadius: 4 }] },
              options: { indexAxis: 'y', plugins: { legend: { display: false } }, scales: { x: { beginAtZero: true, ticks: { precision: 0 } } } },
            }} />
        </section>
        <section class="card">
          <h2>Latency by task (ms)</h2>
          <ChartView testid="chart-latency" label="Latency p50 and p95 by task"
            config={{
              type: 'bar',
              data: {
                labels: st.byTask.map((g) => g._id),
                datasets: [
                  { label: 'p50', data: st.byTask.map((g) => ms(g.p50_execution_time)), backgroundColor: PALETTE[0] },
                  { label: 'p95', data: st.byTask.map((g) => ms(g.p95_execution_time)), backgroundColor: PALETTE[2] },
                ],
              },
              options: { scales: { y: { beginAtZero: true } } },
            }} />
        </section>
        <section class="card">
          <h2>Success rate by task (%)</h2>
          <ChartView testid="chart-success" label="Success rate by task"
            config={{
              type: 'bar',
              data: { labels: st.byTask.map((g) => g._id), datasets: [{ label: 'success %', data: st.byTask.map((g) => +(g.success_rate * 100).toFixed(1)), backgroundColor: PALETTE[4], borderRadius: 4 }] },
              options: { plugins: { legend: { display: false } }, scales: { y: { min: 0, max: 100 } } },
            }} />
        </section>
      </div>
    </>
  );
}

function Loaded() {
  const [models, setModels] = useState(null);
  const [health, setHealth] = useState(null);
  const [engine, setEngine] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    api.get('/models/loaded').then((d) => setModels(d.models || []), setError);
    getHealth().then(setHealth, () => {});
    // The kernels every model runs (needs tasks:execute; without it, not shown).
    api.get('/stats/serving', { raw: true }).then((r) => setEngine(r.json?.engine || null), () => {});
  }, []);
  const counts = precisionCounts(health?.loaded_precisions);
  return (
    <section class="card" aria-labelledby="loaded-h">
      <h2 id="loaded-h">Loaded models</h2>
      <ErrorBox error={error} />
      {health && (
        <p class="prec-counts" data-testid="loaded-precisions">
          <span class="muted">By precision:</span>
          {counts.length ? counts.map(([p, n]) => (
            <span key={p} data-count={n}><PrecisionBadge precision={p} /> ×{n}</span>
          )) : <span class="muted">none loaded</span>}
          <span class="muted">· next load:</span><PrecisionBadge precision={health.precision} />
        </p>
      )}
      {engine && (
        <p class="muted small" data-testid="engine">
          Kernels: <code data-testid="kernels">{engine.kernels}</code> ({engine.kernels_reason}) ·
          int8 kernel <code>{engine.int8_kernel}</code> · {engine.compute_threads} compute
          {engine.compute_threads === 1 ? ' thread' : ' threads'}, shared by every model
        </p>
      )}
      {!models ? <Spinner label="Loading…" /> : models.length === 0 ? <p class="muted">No model in memory.</p> : (
        <ul class="loaded" data-testid="loaded-models">
          {models.map((m) => (
            <li key={m.model_name}>
              <span class="mono">{m.model_name}</span>
              <span class="muted">{m.task_type}</span>
              <PrecisionBadge precision={m.precision} />
              <span class="pill" title="Weights, memory-mapped from the cache">{fmtBytes(m.memory_bytes ?? m.file_size)} weights</span>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

function Log() {
  const [f, setF] = useState({ task_type: '', model_name: '', status: '' });
  const [page, setPage] = useState(0);
  const LIMIT = 25;
  const [data, error] = useLatestGet(`/logs${query({ ...f, limit: LIMIT, offset: page * LIMIT })}`);
  const set = (k) => (e) => {
    setPage(0);
    setF({ ...f, [k]: e.currentTarget.value.trim() });
  };
  return (
    <section class="card" aria-labelledby="log-h">
      <h2 id="log-h">Request log</h2>
      <form class="row wrap filters" onSubmit={(e) => e.preventDefault()}>
        <div class="field"><label for="lf-task">Task</label>
          <select id="lf-task" value={f.task_type} onChange={set('task_type')}>
            <option value="">all</option>
            {['classification', 'ner', 'qa', 'fill-mask', 'embeddings', 'features', 'rerank', 'summarization', 'custom'].map((t) => <option key={t}>{t}</option>)}
          </select></div>
        <div class="field"><label for="lf-model">Model</label><input id="lf-model" value={f.model_name} onChange={set('model_name')} placeholder="any" /></div>
        <div class="field"><label for="lf-status">Status</label>
          <select id="lf-status" value={f.status} onChange={set('status')}>
            <option value="">all</option><option>success</option><option>error</option>
          </select></div>
      </form>
      <ErrorBox error={error} />
      {!data ? <Spinner label="Loading…" /> : (
        <>
          <div class="table-wrap">
            <table data-testid="log-table">
              <thead><tr><th scope="col">time</th><th scope="col">task</th><th scope="col">model</th><th scope="col">duration</th><th scope="col">status</th><th scope="col">input</th></tr></thead>
              <tbody>
                {data.logs.map((l) => (
                  <tr key={l._id}>
                    <td>{fmtDate(l.timestamp || l.created_at)}</td>
                    <td>{l.task_type}</td>
                    <td class="mono">{l.model_name}</td>
                    <td>{ms(l.execution_time)} ms</td>
                    <td><span class={`state ${l.status === 'success' ? 'st-loaded' : 'st-revoked'}`} title={l.error_message || ''}>{l.status}</span></td>
                    <td class="small muted">{l.input_text ?? (l.input_length != null ? `${l.input_length} chars` : '')}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <nav class="pager" aria-label="Log pages">
            <button type="button" class="small" disabled={page === 0} onClick={() => setPage(page - 1)}>Previous</button>
            <span>{data.total ? `${page * LIMIT + 1}–${Math.min(data.total, (page + 1) * LIMIT)} of ${data.total}` : 'no entries'}</span>
            <button type="button" class="small" disabled={(page + 1) * LIMIT >= data.total} onClick={() => setPage(page + 1)}>Next</button>
          </nav>
        </>
      )}
    </section>
  );
}

export function Dashboard() {
  const [range, setRange] = useState('7');
  const since = new Date(Date.now() - Number(range) * 86400000).toISOString().slice(0, 10);
  return (
    <div class="page">
      <div class="page-head">
        <h1>Dashboard</h1>
        <div class="field inline">
          <label for="range">Period</label>
          <select id="range" value={range} onChange={(e) => setRange(e.currentTarget.value)}>
            <option value="1">last day</option>
            <option value="7">last 7 days</option>
            <option value="30">last 30 days</option>
            <option value="90">last 90 days</option>
          </select>
        </div>
      </div>
      <Charts since={since} />
      <Loaded />
      <Log />
    </div>
  );
}
