// The studio's only way to the server: same-origin fetches of the public
// JSON API (docs/api.md), authenticated by the bs_session cookie. Writes carry
// X-Requested-With, which the server's CSRF check asks of cookie sessions.

export class ApiError extends Error {
  constructor(status, error, detail, retryAfter) {
    super(error || `HTTP ${status}`);
    this.status = status;
    this.detail = detail || '';
    this.retryAfter = retryAfter;
  }
}

// What a person should read for each status, beside the server's own words.
export function explain(err) {
  if (!(err instanceof ApiError)) return { title: 'Network error', text: String(err.message || err) };
  const s = err.status;
  const titles = {
    400: 'The request was refused',
    401: 'Not signed in (or the key was revoked)',
    403: 'Your key lacks a permission',
    404: 'Not found',
    409: 'Conflict',
    413: 'The input is too large for the server',
    422: 'The input cannot be used',
    429: 'Rate limited',
    502: 'The Hub could not be reached',
    503: 'The server is busy or a model is loading',
  };
  let text = err.message + (err.detail ? `: ${err.detail}` : '');
  let title = titles[s] || `Error ${s}`;
  if (s === 429 && err.retryAfter) title += `: try again in ${err.retryAfter} s`;
  return { title, text };
}

let onUnauthorized = () => {};
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

export async function request(method, path, body, { raw = false, signal } = {}) {
  const headers = { 'X-Requested-With': 'bertstudio-web' };
  let payload;
  if (body instanceof FormData) {
    payload = body;
  } else if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, { method, headers, body: payload, credentials: 'same-origin', signal });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'The server did not answer', String(e.message || e));
  }
  const retryAfter = Number(res.headers.get('Retry-After')) || 0;
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    /* not JSON: reported below */
  }
  if (!res.ok) {
    const err = new ApiError(res.status, json?.error || res.statusText, json?.detail, retryAfter);
    if (res.status === 401 && path !== '/auth/login' && path !== '/auth/check') onUnauthorized(err);
    throw err;
  }
  if (raw) return { json, text, status: res.status };
  if (json && json.success === false) throw new ApiError(res.status, json.error, json.detail);
  return json ? json.data : null;
}

export const api = {
  get: (p, o) => request('GET', p, undefined, o),
  post: (p, b, o) => request('POST', p, b ?? {}, o),
  put: (p, b) => request('PUT', p, b),
  patch: (p, b) => request('PATCH', p, b),
  del: (p) => request('DELETE', p),
};

// "org/name" keeps its slash in model routes (/models/{org}/{name}/load).
export const modelPath = (name) => name.split('/').map(encodeURIComponent).join('/');

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : '';
}
