// API keys: create one (its secret shown once, with a copy button), choose
// its permissions and rate limits, see its usage, revoke it; admins also see
// the sessions opened with the keys.
import { useEffect, useState } from 'preact/hooks';
import { api, query } from '../api.js';
import { can, lacks, PERMS, useAuth } from '../auth.js';
import { CopyButton, ErrorBox, Field, fmtDate, Notice, Spinner } from '../components.jsx';

const LIMITS = [
  ['requests_per_minute', 'Requests per minute'],
  ['requests_per_hour', 'Requests per hour'],
  ['custom_tasks_per_hour', 'Custom tasks per hour'],
];

function KeyForm({ onCreated, onSaved, disabled, editing, onCancel }) {
  const [name, setName] = useState(editing?.name ?? '');
  const [description, setDescription] = useState(editing?.description ?? '');
  const [perms, setPerms] = useState(editing?.permissions ?? ['tasks:execute']);
  const [limits, setLimits] = useState(Object.fromEntries(LIMITS.map(([k]) => [k, editing?.rate_limits?.[k] ?? ''])));
  const [error, setError] = useState(null);
  const toggle = (p) => setPerms(perms.includes(p) ? perms.filter((x) => x !== p) : [...perms, p]);
  const submit = async (e) => {
    e.preventDefault();
    setError(null);
    const rl = Object.fromEntries(Object.entries(limits).filter(([, v]) => v !== '').map(([k, v]) => [k, Number(v)]));
    try {
      if (editing) {
        await api.patch(`/api-keys/${editing._id}`, { name, description, permissions: perms, rate_limits: rl });
        onSaved();
        return;
      }
      const doc = await api.post('/api-keys', { name, description, permissions: perms, ...(Object.keys(rl).length && { rate_limits: rl }) });
      setName('');
      setDescription('');
      onCreated(doc);
    } catch (err) {
      setError(err);
    }
  };
  return (
    <form class={`card ${editing ? 'editing' : ''}`} onSubmit={submit} aria-labelledby="new-key-h">
      <h2 id="new-key-h">{editing ? `Edit “${editing.name}”` : 'New key'}</h2>
      {disabled && <Notice kind="warn">{disabled}</Notice>}
      <fieldset disabled={!!disabled}>
        <div class="row wrap">
          <Field id="key-name" label="Name">
            <input id="key-name" value={name} maxLength={100} required onInput={(e) => setName(e.currentTarget.value)} />
          </Field>
          <Field id="key-desc" label="Description">
            <input id="key-desc" value={description} maxLength={500} onInput={(e) => setDescription(e.currentTarget.value)} />
          </Field>
        </div>
        <fieldset class="perm-set">
          <legend>Permissions</legend>
          {Object.entries(PERMS).map(([p, what]) => (
            <label class="check" key={p}>
              <input type="checkbox" checked={perms.includes(p)} onChange={() => toggle(p)} /> <code>{p}</code> <span class="muted">{what}</span>
            </label>
          ))}
        </fieldset>
        <fieldset class="perm-set">
          <legend>{editing ? 'Rate limits (empty: no limit)' : "Rate limits (empty: the server's default_rate_limits)"}</legend>
          <div class="row wrap">
            {LIMITS.map(([k, l]) => (
              <Field key={k} id={`rl-${k}`} label={l}>
                <input id={`rl-${k}`} type="number" min="1" value={limits[k]} onInput={(e) => setLimits({ ...limits, [k]: e.currentTarget.value })} />
              </Field>
            ))}
          </div>
        </fieldset>
        <ErrorBox error={error} />
        <div class="actions">
          <button type="submit" class="primary">{editing ? 'Save changes' : 'Create key'}</button>
          {editing && <button type="button" onClick={onCancel}>Cancel</button>}
        </div>
      </fieldset>
    </form>
  );
}

function Sessions() {
  const [list, setList] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    api.get(`/sessions${query({ limit: 50 })}`).then((d) => setList(d.sessions || []), setError);
  }, []);
  return (
    <section class="card" aria-labelledby="sess-h">
      <h2 id="sess-h">Sessions</h2>
      <ErrorBox error={error} />
      {!list ? <Spinner label="Loading…" /> : (
        <div class="table-wrap">
          <table>
            <thead><tr><th scope="col">key</th><th scope="col">active</th><th scope="col">created</th><th scope="col">last activity</th><th scope="col">expires</th></tr></thead>
            <tbody>
              {list.map((s) => (
                <tr key={s._id}>
                  <td class="mono">{s.api_key_id}</td>
                  <td>{s.is_active ? 'yes' : 'no'}</td>
                  <td>{fmtDate(s.created_at)}</td>
                  <td>{fmtDate(s.last_activity)}</td>
                  <td>{fmtDate(s.expires_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

export function Keys() {
  const auth = useAuth();
  const [keys, setKeys] = useState(null);
  const [error, setError] = useState(null);
  const [created, setCreated] = useState(null);
  const [editing, setEditing] = useState(null);
  const load = () => api.get(`/api-keys${query({ limit: 100 })}`).then((d) => setKeys(d.api_keys || []), setError);
  useEffect(() => {
    load();
  }, []);
  const noWrite = lacks(auth, 'admin:write');
  const revoke = async (k) => {
    if (!confirm(`Revoke the key "${k.name}"? Requests with it will get 401.`)) return;
    try {
      await api.del(`/api-keys/${k._id}`);
      load();
    } catch (e) {
      setError(e);
    }
  };
  return (
    <div class="page">
      <h1>API keys</h1>
      {created && (
        <div class="card secret" role="alert" data-testid="new-secret">
          <h2>Key “{created.name}” created</h2>
          <p>Copy the secret now: it is shown only this once.</p>
          <div class="row tight">
            <code class="secret-text">{created.api_key}</code>
            <CopyButton text={created.api_key} />
          </div>
          <button type="button" class="small" onClick={() => setCreated(null)}>I stored it</button>
        </div>
      )}
      <KeyForm key={editing?._id || 'new'} disabled={noWrite} editing={editing} onCancel={() => setEditing(null)}
        onSaved={() => { setEditing(null); load(); }} onCreated={(d) => { setCreated(d); load(); }} />
      <section class="card" aria-labelledby="keys-h">
        <h2 id="keys-h">Keys</h2>
        <ErrorBox error={error} />
        {!keys ? <Spinner label="Loading…" /> : (
          <div class="table-wrap">
            <table data-testid="keys-table">
              <thead>
                <tr><th scope="col">name</th><th scope="col">prefix</th><th scope="col">permissions</th><th scope="col">limits</th><th scope="col">usage</th><th scope="col">last used</th><th scope="col">state</th><th scope="col"><span class="sr-only">actions</span></th></tr>
              </thead>
              <tbody>
                {keys.map((k) => (
                  <tr key={k._id} data-key={k.name} class={k.is_active ? '' : 'revoked'}>
                    <th scope="row">{k.name}<small class="muted block">{k.description}</small></th>
                    <td class="mono">{k.key_prefix}…</td>
                    <td>{(k.permissions || []).map((p) => <span key={p} class="tag">{p}</span>)}</td>
                    <td class="small">{Object.keys(k.rate_limits || {}).length ? LIMITS.filter(([x]) => k.rate_limits[x]).map(([x]) => `${k.rate_limits[x]} ${x.replace(/_/g, ' ').replace('requests per', '/')}`).join(', ') : 'none'}</td>
                    <td>{k.usage_stats?.total_requests ?? 0} total<small class="muted block">{k.usage_stats?.requests_today ?? 0} today</small></td>
                    <td>{fmtDate(k.last_used)}</td>
                    <td><span class={`state ${k.is_active ? 'st-loaded' : 'st-revoked'}`}>{k.is_active ? 'active' : 'revoked'}</span></td>
                    <td class="btns">
                      {k.is_active && <button type="button" class="small" disabled={!!noWrite} title={noWrite} onClick={() => { setEditing(k); window.scrollTo(0, 0); }}>Edit</button>}
                      {k.is_active && <button type="button" class="small danger" disabled={!!noWrite} title={noWrite} onClick={() => revoke(k)}>Revoke</button>}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
      {can(auth, 'admin:read') && <Sessions />}
    </div>
  );
}
