// The studio's shell: sign-in, the header with identity and permissions,
// the navigation, and the page for the current path.
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import './app.css';
import { api, setUnauthorizedHandler } from './api.js';
import { AuthContext, can, PERMS } from './auth.js';
import { ErrorBox, Spinner } from './components.jsx';
import { Link, navigate, usePath } from './router.jsx';
import { Playground, TASKS } from './pages/playground.jsx';
import { Hub } from './pages/hub.jsx';
import { Keys } from './pages/keys.jsx';
import { Dashboard } from './pages/dashboard.jsx';
import { Settings } from './pages/settings.jsx';

// Page paths never share a first segment with an API route (/settings,
// /custom-tasks are API paths): the server sends those to the API. The
// server answers index.html only for these first segments (is_page() in
// src/server/web.c): a new page needs its segment there too.
// The custom-task editor (CodeMirror) is the bulk of the code: it loads
// when its page is first opened, not with every page.
function lazy(load) {
  let Loaded = null;
  return function Lazy(props) {
    const [C, setC] = useState(() => Loaded);
    const [error, setError] = useState(null);
    useEffect(() => {
      if (!C) load().then((c) => setC(() => (Loaded = c)), setError);
    }, []);
    if (error) return <ErrorBox error={error} />;
    return C ? <C {...props} /> : <Spinner label="Loading…" />;
  };
}
const CustomTasks = lazy(() => import('./pages/custom.jsx').then((m) => m.CustomTasks));

const NAV = [
  { href: '/dashboard', label: 'Dashboard', perm: 'admin:read' },
  { href: '/playground/classification', match: '/playground', label: 'Playgrounds', perm: 'tasks:execute' },
  { href: '/hub', label: 'Models & Hub' },
  { href: '/custom', label: 'Custom tasks', perm: 'tasks:execute' },
  { href: '/keys', label: 'API keys', perm: 'admin:read' },
  { href: '/system', label: 'Settings', perm: 'admin:read' },
];

function Login({ onDone, ended }) {
  const [key, setKey] = useState('');
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await api.post('/auth/login', { api_key: key.trim() });
      onDone();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="login" id="main">
      <form class="card login-card" onSubmit={submit}>
        <div class="brand big">
          <span class="logo" aria-hidden="true">B</span> BERT Studio
        </div>
        <p class="muted">Sign in with an API key. The first admin key is printed once by
          <code> bertstudio serve</code> on its first start; <code>bertstudio keys create --admin</code> makes another.</p>
        {ended && !error && (
          <div class="notice warn" role="alert" data-testid="session-ended">
            <strong>Please sign in again.</strong> Your session has ended: the key was revoked or
            deactivated, the session expired, or it was signed out elsewhere
            {ended.detail ? ` (the server said: ${ended.message}: ${ended.detail})` : ` (the server said: ${ended.message})`}.
            You will come back to this page.
          </div>
        )}
        <label for="api-key">API key</label>
        <input id="api-key" type="password" autocomplete="off" placeholder="ak_…" value={key}
          onInput={(e) => setKey(e.currentTarget.value)} required autofocus />
        <ErrorBox error={error} title={error?.status === 401 ? 'Sign-in refused' : undefined} />
        <button type="submit" class="primary" disabled={busy || !key.trim()}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}

function Header({ auth, onLogout, path }) {
  const [open, setOpen] = useState(false);
  useEffect(() => setOpen(false), [path]);
  return (
    <header class="top">
      <a class="skip" href="#main">Skip to content</a>
      <div class="brand">
        <span class="logo" aria-hidden="true">B</span>
        <span>BERT Studio</span>
      </div>
      <button type="button" class="menu-toggle" aria-expanded={open} aria-controls="nav" onClick={() => setOpen(!open)}>
        Menu
      </button>
      <nav id="nav" class={open ? 'open' : ''} aria-label="Main">
        {NAV.map((n) => {
          const allowed = !n.perm || can(auth, n.perm);
          const current = path.startsWith(n.match || n.href);
          return allowed ? (
            <Link key={n.href} href={n.href} aria-current={current ? 'page' : undefined}>
              {n.label}
            </Link>
          ) : (
            <span key={n.href} class="nav-disabled" title={`Needs ${n.perm}`} aria-disabled="true">
              {n.label}
            </span>
          );
        })}
      </nav>
      <div class="who">
        <span class="who-name" data-testid="who">
          {auth.name}
          <small>{auth.auth_method === 'session' ? 'session' : 'key'}</small>
        </span>
        <details class="perms">
          <summary>{auth.permissions.length} permissions</summary>
          <ul>
            {Object.keys(PERMS).map((p) => (
              <li key={p} class={can(auth, p) ? 'yes' : 'no'}>
                <span aria-hidden="true">{can(auth, p) ? '✓' : '✕'}</span> {p}
                <span class="sr-only">{can(auth, p) ? ' granted' : ' not granted'}</span>
              </li>
            ))}
          </ul>
        </details>
        <button type="button" class="small" onClick={onLogout}>
          Sign out
        </button>
      </div>
    </header>
  );
}

function NoAccess({ perm }) {
  return (
    <div class="page">
      <h1>Not available</h1>
      <p class="notice warn">This page needs the <code>{perm}</code> permission ({PERMS[perm]}), which your key lacks.</p>
    </div>
  );
}

function Page({ path, auth }) {
  const guard = (perm, el) => (can(auth, perm) ? el : <NoAccess perm={perm} />);
  if (path.startsWith('/playground/')) {
    const task = path.split('/')[2];
    if (TASKS[task]) return guard('tasks:execute', <Playground key={task} task={task} />);
  }
  if (path === '/hub') return <Hub />;
  if (path === '/custom') return guard('tasks:execute', <CustomTasks />);
  if (path === '/keys') return guard('admin:read', <Keys />);
  if (path === '/dashboard') return guard('admin:read', <Dashboard />);
  if (path === '/system') return guard('admin:read', <Settings />);
  return (
    <div class="page">
      <h1>Page not found</h1>
      <p>
        There is no page at <code>{path}</code>. <Link href="/">Go to the start page</Link>.
      </p>
    </div>
  );
}

function home(auth) {
  if (can(auth, 'admin:read')) return '/dashboard';
  if (can(auth, 'tasks:execute')) return '/playground/classification';
  return '/hub';
}

function App() {
  const path = usePath();
  const [auth, setAuth] = useState(undefined);
  const [error, setError] = useState(null);
  // The 401 that ended a signed-in session, explained on the sign-in form.
  const [ended, setEnded] = useState(null);
  const check = async () => {
    try {
      setAuth(await api.get('/auth/check'));
      setError(null);
      setEnded(null);
    } catch (e) {
      if (e.status === 401) setAuth(null);
      else setError(e);
    }
  };
  useEffect(() => {
    check();
    setUnauthorizedHandler((err) => {
      setEnded(err);
      setAuth(null);
    });
  }, []);
  useEffect(() => {
    if (auth && (path === '/' || path === '/login')) navigate(home(auth));
  }, [auth, path]);
  const logout = async () => {
    try {
      await api.post('/auth/logout');
    } finally {
      setEnded(null);
      setAuth(null);
      navigate('/login');
    }
  };
  if (error) return <main class="login"><ErrorBox error={error} /></main>;
  if (auth === undefined) return <main class="login"><Spinner label="Loading…" /></main>;
  if (!auth) return <Login onDone={check} ended={ended} />;
  return (
    <AuthContext.Provider value={auth}>
      <Header auth={auth} onLogout={logout} path={path} />
      <main id="main" tabIndex={-1}>
        <Page path={path} auth={auth} />
      </main>
    </AuthContext.Provider>
  );
}

render(<App />, document.getElementById('app'));
