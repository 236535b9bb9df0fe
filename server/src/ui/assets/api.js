// Talking to the sealtrail API (spec/docs/http-api.md) and keeping the explorer's small state.
//
// The bearer token lives in sessionStorage only: it is gone when the tab closes, is never written
// to localStorage, and never goes into a URL (it travels only in the Authorization header). What
// is kept in localStorage is public: the pinned log key, a pinned witness policy and checkpoints
// the browser has verified (signed notes anyone may hold).

const TOKEN = 'sealtrail.token';
const PINNED_KEY = 'sealtrail.pinned-vkey';
const PINNED_POLICY = 'sealtrail.pinned-policy';
const CHECKPOINTS = 'sealtrail.checkpoints';
/** Most verified checkpoints remembered (the oldest are dropped). */
const MAX_CHECKPOINTS = 50;

/** The server's root: the explorer is served at <root>/ui/, so API paths resolve against "../". */
const ROOT = new URL('../', window.location.href);

/** An HTTP error answer, with the API's error code and message when it sent them. */
export class HttpError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = 'HttpError';
    this.status = status;
    this.code = code;
  }
}

export function getToken() {
  return sessionStorage.getItem(TOKEN) || '';
}

export function setToken(token) {
  if (token) sessionStorage.setItem(TOKEN, token);
  else sessionStorage.removeItem(TOKEN);
  window.dispatchEvent(new Event('sealtrail-session'));
}

/** A request to the API with the user's token. `path` is relative to the server root. */
export async function request(path, { signal, accept } = {}) {
  const headers = {};
  const token = getToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  if (accept) headers.Accept = accept;
  const resp = await fetch(new URL(path, ROOT), { headers, signal, cache: 'no-store' });
  if (!resp.ok) throw await httpError(resp);
  return resp;
}

async function httpError(resp) {
  let code = '';
  let message = resp.statusText;
  try {
    const body = await resp.json();
    code = body?.error?.code ?? '';
    message = body?.error?.message ?? message;
  } catch {
    // Not the API's JSON error (a proxy's page, say): keep the status text.
  }
  const hint = {
    401: ' Paste a token under Settings.',
    403: ' The token does not have the role this needs.',
  }[resp.status] ?? '';
  return new HttpError(resp.status, code, `${resp.status} ${code || resp.statusText}: ${message}.${hint}`);
}

export async function getJson(path, opts) {
  return (await request(path, { ...opts, accept: 'application/json' })).json();
}

/** The body's exact bytes (signed notes are verified byte for byte). */
export async function getBytes(path, opts) {
  return new Uint8Array(await (await request(path, opts)).arrayBuffer());
}

/** A query string from the entries of `params` whose values are set. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

export function getPinnedKey() {
  return localStorage.getItem(PINNED_KEY) || '';
}

export function setPinnedKey(vkey) {
  if (vkey) localStorage.setItem(PINNED_KEY, vkey);
  else localStorage.removeItem(PINNED_KEY);
  window.dispatchEvent(new Event('sealtrail-session'));
}

export function getPinnedPolicy() {
  return localStorage.getItem(PINNED_POLICY) || '';
}

export function setPinnedPolicy(text) {
  if (text) localStorage.setItem(PINNED_POLICY, text);
  else localStorage.removeItem(PINNED_POLICY);
}

/** Verified checkpoints, newest first: [{origin, size (string), note (text), verifiedAt (ms)}]. */
export function rememberedCheckpoints() {
  try {
    const list = JSON.parse(localStorage.getItem(CHECKPOINTS) || '[]');
    return Array.isArray(list) ? list : [];
  } catch {
    return [];
  }
}

/** Remembers a checkpoint note whose signature the browser verified. */
export function rememberCheckpoint(origin, size, note) {
  const list = rememberedCheckpoints().filter((c) => c.note !== note);
  list.unshift({ origin, size: String(size), note, verifiedAt: Date.now() });
  localStorage.setItem(CHECKPOINTS, JSON.stringify(list.slice(0, MAX_CHECKPOINTS)));
}

export function forgetCheckpoints() {
  localStorage.removeItem(CHECKPOINTS);
}
