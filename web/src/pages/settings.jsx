// Settings: every typed system setting with its description, range and
// default, edited in place; the server's validation message is shown beside
// the field, and who changed each one when.
import { useEffect, useState } from 'preact/hooks';
import { api } from '../api.js';
import { lacks, useAuth } from '../auth.js';
import { ErrorBox, fmtBytes, fmtDate, Spinner } from '../components.jsx';
import { getHealth, PRECISION_LABEL, PRECISIONS, PrecisionBadge, precisionCounts } from '../precision.jsx';

// Settings whose value is one of a few strings: a picker, not a text box.
// The server refuses anything else with 400 all the same.
const CHOICES = {
  default_precision: [['', '"" (serve --precision)'], ...PRECISIONS.map((p) => [p, PRECISION_LABEL[p]])],
};

const show = (v) => (typeof v === 'object' ? JSON.stringify(v) : String(v));
// Ranges read as people write them: 0.000278 (one second in hours), not 0.00027777777777777778.
const brief = (v) => (typeof v === 'number' && !Number.isInteger(v) ? String(+v.toPrecision(3)) : show(v));

function parse(type, text) {
  if (type === 'integer') {
    if (!/^-?\d+$/.test(text.trim())) throw new Error('must be a whole number');
    return Number(text);
  }
  if (type === 'float') {
    if (text.trim() === '' || isNaN(Number(text))) throw new Error('must be a number');
    return Number(text);
  }
  if (type === 'boolean') return text === 'true';
  if (type === 'json') {
    try {
      return JSON.parse(text);
    } catch (e) {
      throw new Error(`is not valid JSON (${e.message})`);
    }
  }
  return text;
}

function Row({ s, disabled, onSaved, children }) {
  const [text, setText] = useState(show(s.setting_value));
  const [error, setError] = useState(null);
  const [saved, setSaved] = useState(false);
  const id = `set-${s.setting_key}`;
  const dirty = text !== show(s.setting_value);
  const save = async (e) => {
    e.preventDefault();
    setError(null);
    setSaved(false);
    let value;
    try {
      value = parse(s.setting_type, text);
    } catch (err) {
      setError({ status: 400, message: `${s.setting_key} ${err.message}` });
      return;
    }
    try {
      const doc = await api.put(`/settings/${s.setting_key}`, { value });
      setSaved(true);
      onSaved(doc);
    } catch (err) {
      setError(err);
    }
  };
  const range = s.min != null || s.max != null ? `range ${brief(s.min ?? '…')} – ${brief(s.max ?? '…')}` : '';
  const bytes = s.setting_key.endsWith('_bytes') && typeof s.setting_value === 'number' ? ` = ${fmtBytes(s.setting_value)}` : '';
  return (
    <form class="setting" onSubmit={save} data-setting={s.setting_key}>
      <div class="setting-head">
        <label for={id}><code>{s.setting_key}</code></label>
        <span class="badge">{s.setting_type}</span>
        {!s.is_default && <span class="badge warn">changed</span>}
      </div>
      <p class="muted small" id={`${id}-d`}>{s.description} {range && <span>({range}; default {show(s.default)})</span>}{bytes && <strong>{bytes}</strong>}</p>
      <div class="row tight">
        {CHOICES[s.setting_key] ? (
          <select id={id} value={text} onChange={(e) => setText(e.currentTarget.value)} disabled={!!disabled} aria-describedby={`${id}-d`}>
            {CHOICES[s.setting_key].map(([v, l]) => <option key={v} value={v}>{l}</option>)}
          </select>
        ) : s.setting_type === 'boolean' ? (
          <select id={id} value={text} onChange={(e) => setText(e.currentTarget.value)} disabled={!!disabled} aria-describedby={`${id}-d`}>
            <option>true</option><option>false</option>
          </select>
        ) : (
          <input id={id} value={text} onInput={(e) => setText(e.currentTarget.value)} disabled={!!disabled}
            aria-describedby={`${id}-d`} aria-invalid={error ? 'true' : undefined} class={s.setting_type === 'json' ? 'mono' : ''} />
        )}
        <button type="submit" class="small primary" disabled={!!disabled || !dirty} title={disabled}>Save</button>
        {dirty && <button type="button" class="small" onClick={() => { setText(show(s.setting_value)); setError(null); }}>Reset</button>}
        {saved && !dirty && <span class="ok-text" role="status">Saved</span>}
      </div>
      {children}
      {error && <div class="field-error" role="alert" data-testid="setting-error">{error.message}{error.detail ? `: ${error.detail}` : ''}</div>}
      <p class="muted small">
        {s.updated_by ? `Changed by ${s.updated_by} on ${fmtDate(s.updated_at)}` : 'Never changed (default)'}
      </p>
    </form>
  );
}

// What default_precision means right now (GET /health): the precision of
// the next load, and the loaded models per precision.
function PrecisionNow({ health }) {
  const counts = precisionCounts(health.loaded_precisions);
  return (
    <p class="muted small prec-counts" data-testid="precision-now">
      <span data-testid="next-load">Next load: <PrecisionBadge precision={health.precision} /></span>
      <span>Loaded now: {counts.length ? counts.map(([p, n]) => <span key={p}><PrecisionBadge precision={p} /> ×{n} </span>) : 'none'}</span>
    </p>
  );
}

export function Settings() {
  const auth = useAuth();
  const [list, setList] = useState(null);
  const [error, setError] = useState(null);
  const [health, setHealth] = useState(null);
  const load = () => {
    getHealth().then(setHealth, () => setHealth(null));
    return api.get('/settings').then((d) => setList(d.settings || []), setError);
  };
  useEffect(() => {
    load();
  }, []);
  const noWrite = lacks(auth, 'admin:write');
  return (
    <div class="page">
      <h1>Settings</h1>
      <p class="muted">System settings apply to the next request; the server checks each value's type and range.</p>
      {noWrite && <p class="notice warn">{noWrite} Settings are read-only.</p>}
      <ErrorBox error={error} />
      {!list ? <Spinner label="Loading…" /> : (
        <div class="settings">
          {list.map((s) => (
            <Row key={s.setting_key + show(s.setting_value)} s={s} disabled={noWrite} onSaved={load}>
              {s.setting_key === 'default_precision' && health && <PrecisionNow health={health} />}
            </Row>
          ))}
        </div>
      )}
    </div>
  );
}
