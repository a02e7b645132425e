// Building blocks shared by the pages: error boxes, bars, heat maps, charts,
// the copyable curl command and the JSON viewer.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, explain } from './api.js';

export function ErrorBox({ error, children, title: override, testid }) {
  if (!error) return null;
  const { title: t, text } = explain(error);
  const title = override || t;
  return (
    <div class="error" role="alert" data-status={error.status ?? ''} data-testid={testid}>
      <strong>{title}</strong>
      <span>{text}</span>
      {children}
    </div>
  );
}

export function Notice({ kind = 'info', children }) {
  return (
    <div class={`notice ${kind}`} role="status">
      {children}
    </div>
  );
}

export function Spinner({ label }) {
  return (
    <span class="spinner" role="status">
      <span class="dot" aria-hidden="true" />
      {label}
    </span>
  );
}

export function CopyButton({ text, label = 'Copy' }) {
  const [done, setDone] = useState(false);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      // Clipboard refused (insecure origin): select the text for Ctrl+C.
      const ta = document.createElement('textarea');
      ta.value = text;
      document.body.appendChild(ta);
      ta.select();
      document.execCommand('copy');
      ta.remove();
    }
    setDone(true);
    setTimeout(() => setDone(false), 1500);
  };
  return (
    <button type="button" class="small" onClick={copy}>
      {done ? 'Copied' : label}
    </button>
  );
}

export function CodeBlock({ title, text, className }) {
  return (
    <section class={`codeblock ${className || ''}`}>
      <header>
        <h3>{title}</h3>
        <CopyButton text={text} />
      </header>
      <pre tabIndex={0}>{text}</pre>
    </section>
  );
}

// Horizontal bars, longest first as given; value in [0, max].
export function Bars({ items, max = 1, format = (v) => v.toFixed(4), testid }) {
  const top = Math.max(max, ...items.map((i) => i.value), 1e-12);
  return (
    <ol class="bars" data-testid={testid}>
      {items.map((it, i) => (
        <li key={i} class={it.highlight ? 'hl' : ''}>
          <span class="bar-label" title={it.label}>
            {it.label}
          </span>
          <span class="bar-track" aria-hidden="true">
            <span class="bar-fill" style={{ width: `${Math.max(0, (it.value / top) * 100).toFixed(2)}%` }} />
          </span>
          <span class="bar-value">{format(it.value)}</span>
        </li>
      ))}
    </ol>
  );
}

function color(t, diverging) {
  // Sequential: white -> indigo. Diverging: red <- white -> blue.
  if (!diverging) {
    const a = [248, 250, 252], b = [67, 56, 202];
    return `rgb(${a.map((x, i) => Math.round(x + (b[i] - x) * t)).join(',')})`;
  }
  const w = [248, 250, 252], pos = [37, 99, 235], neg = [220, 38, 38];
  const c = t >= 0.5 ? pos : neg, k = Math.abs(t - 0.5) * 2;
  return `rgb(${w.map((x, i) => Math.round(x + (c[i] - x) * k)).join(',')})`;
}

// A matrix drawn on a canvas, with row and column labels. values: rows of numbers.
export function Heatmap({ values, rowLabels, colLabels, min, max, diverging, cell = 28, testid, label }) {
  const ref = useRef();
  const rows = values.length, cols = rows ? values[0].length : 0;
  const lo = min ?? Math.min(...values.flat()), hi = max ?? Math.max(...values.flat());
  const [tip, setTip] = useState('');
  const cw = Math.max(4, Math.min(cell, Math.floor(900 / Math.max(cols, 1))));
  const ch = Math.max(10, Math.min(cell, 28));
  useEffect(() => {
    const c = ref.current;
    if (!c) return;
    const dpr = window.devicePixelRatio || 1;
    c.width = cols * cw * dpr;
    c.height = rows * ch * dpr;
    c.style.width = `${cols * cw}px`;
    c.style.height = `${rows * ch}px`;
    const g = c.getContext('2d');
    g.scale(dpr, dpr);
    for (let r = 0; r < rows; r++)
      for (let k = 0; k < cols; k++) {
        const v = values[r][k];
        const t = hi > lo ? (v - lo) / (hi - lo) : 0.5;
        g.fillStyle = color(Math.min(1, Math.max(0, t)), diverging);
        g.fillRect(k * cw, r * ch, cw, ch);
        if (cw >= 26 && cols <= 12) {
          g.fillStyle = t > 0.6 || (diverging && Math.abs(t - 0.5) > 0.3) ? '#fff' : '#111827';
          g.font = '10px system-ui, sans-serif';
          g.textAlign = 'center';
          g.textBaseline = 'middle';
          g.fillText(v.toFixed(2), k * cw + cw / 2, r * ch + ch / 2);
        }
      }
  }, [values, cw, ch, lo, hi, diverging]);
  const onMove = (e) => {
    const rect = e.currentTarget.getBoundingClientRect();
    const k = Math.floor((e.clientX - rect.left) / cw), r = Math.floor((e.clientY - rect.top) / ch);
    if (r >= 0 && r < rows && k >= 0 && k < cols)
      setTip(`${rowLabels?.[r] ?? r} × ${colLabels?.[k] ?? k}: ${values[r][k].toFixed(4)}`);
  };
  return (
    <figure class="heatmap" data-testid={testid} data-rows={rows} data-cols={cols}>
      <div class="heatmap-grid">
        <div class="heatmap-rows" aria-hidden="true">
          {(rowLabels || []).map((l, i) => (
            <span key={i} style={{ height: `${ch}px` }} title={l}>
              {l}
            </span>
          ))}
        </div>
        <div class="heatmap-scroll" tabIndex={0} role="region" aria-label={`${label} (scrolls sideways)`}>
          <canvas ref={ref} role="img" aria-label={label} onMouseMove={onMove} onMouseLeave={() => setTip('')} />
          {colLabels && cw >= 26 && (
            <div class="heatmap-cols" aria-hidden="true">
              {colLabels.map((l, i) => (
                <span key={i} style={{ width: `${cw}px` }}>
                  {l}
                </span>
              ))}
            </div>
          )}
        </div>
      </div>
      <figcaption>
        <span class="legend-scale">
          <span>{lo.toFixed(3)}</span>
          <span class={`scale ${diverging ? 'div' : ''}`} aria-hidden="true" />
          <span>{hi.toFixed(3)}</span>
        </span>
        <span class="tip">{tip || 'Point at a cell to read its value.'}</span>
      </figcaption>
    </figure>
  );
}

let chartLib;
async function loadChart() {
  if (!chartLib) {
    const m = await import('chart.js');
    m.Chart.register(...m.registerables);
    m.Chart.defaults.font.family = 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
    m.Chart.defaults.color = '#374151';
    chartLib = m.Chart;
  }
  return chartLib;
}

// A Chart.js chart; config is { type, data, options } as Chart.js takes it.
export function ChartView({ config, height = 260, label, testid }) {
  const ref = useRef();
  useEffect(() => {
    let chart, dead = false;
    loadChart().then((Chart) => {
      if (dead || !ref.current) return;
      chart = new Chart(ref.current, {
        ...config,
        options: { responsive: true, maintainAspectRatio: false, animation: false, ...config.options },
      });
      ref.current.dataset.rendered = 'true';
    });
    return () => {
      dead = true;
      chart?.destroy();
    };
  }, [JSON.stringify(config)]);
  return (
    <div class="chart" style={{ height: `${height}px` }} data-testid={testid}>
      <canvas ref={ref} role="img" aria-label={label} />
    </div>
  );
}

export const PALETTE = ['#4338ca', '#0891b2', '#d97706', '#db2777', '#059669', '#7c3aed', '#dc2626', '#65a30d', '#0284c7', '#9333ea'];

export function fmtBytes(n) {
  if (n === undefined || n === null) return '—';
  const u = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) (n /= 1024), i++;
  return `${n.toFixed(i ? 1 : 0)} ${u[i]}`;
}

export function fmtDate(v) {
  if (!v) return '—';
  const d = new Date(typeof v === 'object' && v.$date ? v.$date : v);
  return isNaN(d) ? String(v) : d.toLocaleString();
}

export function Field({ label, hint, children, id }) {
  return (
    <div class="field">
      <label for={id}>{label}</label>
      {children}
      {hint && <small class="hint">{hint}</small>}
    </div>
  );
}

// GET path again whenever it (or refresh, a counter bumped to reload)
// changes, and give [data, error] of the newest request only: a filter typed
// a keystroke at a time sends a request each, and an older answer arriving
// last must not replace the newer one.
export function useLatestGet(path, refresh) {
  const [data, setData] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    let current = true;
    setError(null);
    api.get(path).then((d) => current && setData(d), (e) => current && setError(e));
    return () => { current = false; };
  }, [path, refresh]);
  return [data, error];
}
