// api.js: the one way the app talks to the server.
// JSON in and out, the CSRF token on state-changing calls, and any 401 sends
// the user back to the login page (then back to where they were).

import { getLang } from './i18n.js';

let csrfToken = '';
let unauthorizedHandler = () => {};

// ApiError carries the HTTP status and the decoded error body.
export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.body = body;
  }
}

// onUnauthorized registers what to do when the server answers 401.
export function onUnauthorized(fn) {
  unauthorizedHandler = fn;
}

// signalUnauthorized reports a 401 seen outside request() (WHEP, downloads).
export function signalUnauthorized() {
  csrfToken = '';
  unauthorizedHandler();
}

// url builds a same-origin URL with query parameters, skipping empty ones.
export function url(path, query) {
  const u = new URL(path, location.origin);
  for (const [k, v] of Object.entries(query || {})) {
    if (v === undefined || v === null || v === '') continue;
    u.searchParams.set(k, v instanceof Date ? v.toISOString() : String(v));
  }
  return u.pathname + u.search;
}

const safeMethods = new Set(['GET', 'HEAD', 'OPTIONS']);

// csrf returns the CSRF token, fetching the session once if needed.
export async function csrf() {
  if (!csrfToken) await getSession();
  return csrfToken;
}

// request performs one API call. opts: query, body (object → JSON; string,
// Blob or FormData sent as is), contentType, signal, raw (return the Response).
// connection tells whether the server answered the last request: it fires
// 'change' when the browser loses the server or finds it again, so that the
// shell can say so instead of showing stale states.
export const connection = new EventTarget();
let reachable = true;

function setReachable(ok) {
  if (ok === reachable) return;
  reachable = ok;
  connection.dispatchEvent(new Event('change'));
}

export function serverReachable() {
  return reachable;
}

export async function request(method, path, opts = {}) {
  return doRequest(method, path, opts, true);
}

async function doRequest(method, path, opts, retryCsrf) {
  // The server words its errors in the language the user chose.
  const headers = { Accept: 'application/json', 'Accept-Language': getLang() };
  let body = opts.body;
  if (body !== undefined && body !== null && !(typeof body === 'string') &&
      !(body instanceof Blob) && !(body instanceof FormData)) {
    body = JSON.stringify(body);
    headers['Content-Type'] = 'application/json';
  }
  if (opts.contentType) headers['Content-Type'] = opts.contentType;
  // Logging in needs no token (the password is its authority), even while
  // an older session cookie is still valid.
  const isLogin = path === '/api/v1/session' && method === 'POST';
  if (!safeMethods.has(method) && !isLogin) {
    const token = await csrf();
    if (token) headers['X-CSRF-Token'] = token;
  }

  let res;
  try {
    res = await fetch(url(path, opts.query), {
      method, headers, body, credentials: 'same-origin', signal: opts.signal,
    });
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    setReachable(false);
    throw new ApiError(0, 'network', null);
  }
  setReachable(true);
  if (res.status === 401 && !isLogin) {
    csrfToken = '';
    unauthorizedHandler();
    throw new ApiError(401, 'unauthorized', null);
  }
  const data = opts.raw && res.ok ? null : await decode(res);
  if (res.status === 403 && retryCsrf && headers['X-CSRF-Token'] && data?.code === 'auth.csrf') {
    // The token may belong to an older session: fetch it again, retry once
    // (only then: retrying another refusal, such as a wrong current
    // password, would count twice).
    csrfToken = '';
    return doRequest(method, path, opts, false);
  }
  if (opts.raw && res.ok) return res;
  if (!res.ok) {
    const msg = (data && typeof data === 'object' && data.error) ? data.error
      : (typeof data === 'string' && data) ? data : res.statusText || String(res.status);
    throw new ApiError(res.status, msg, data);
  }
  return data;
}

async function decode(res) {
  if (res.status === 204) return null;
  const type = res.headers.get('Content-Type') || '';
  const text = await res.text();
  if (type.includes('json') && text) {
    try {
      return JSON.parse(text);
    } catch {
      return text;
    }
  }
  return text;
}

export const get = (path, query, opts = {}) => request('GET', path, { ...opts, query });
export const post = (path, body, opts = {}) => request('POST', path, { ...opts, body });
export const put = (path, body, opts = {}) => request('PUT', path, { ...opts, body });
export const del = (path, opts = {}) => request('DELETE', path, opts);

// getSession returns {username, role, departments, csrfToken}; it throws an
// ApiError(401) when not logged in (without redirecting).
export async function getSession() {
  const res = await fetch('/api/v1/session', { credentials: 'same-origin', headers: { Accept: 'application/json' } });
  if (!res.ok) {
    const data = await decode(res);
    throw new ApiError(res.status, (data && data.error) || res.statusText, data);
  }
  const s = await res.json();
  csrfToken = s.csrfToken || '';
  return s;
}

// login returns the new session, {username, role, departments, csrfToken}.
export async function login(username, password) {
  csrfToken = '';
  const s = await request('POST', '/api/v1/session', { body: { username, password } });
  csrfToken = (s && s.csrfToken) || '';
  return s;
}

export async function logout() {
  try {
    await request('DELETE', '/api/v1/session');
  } finally {
    csrfToken = '';
  }
}

// list accepts either a bare JSON array or an object wrapping one.
export function list(data, key) {
  if (Array.isArray(data)) return data;
  if (data && Array.isArray(data[key])) return data[key];
  return [];
}

// camPath builds /api/v1/cameras/{id}/... with the id escaped.
export function camPath(id, tail = '') {
  return `/api/v1/cameras/${encodeURIComponent(id)}${tail ? '/' + tail : ''}`;
}
