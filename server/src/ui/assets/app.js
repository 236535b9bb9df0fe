// The sealtrail web explorer: hash routing between the views, the navigation and the session
// indicator. Each view is a module exporting `render(ctx)`, where ctx holds the view's root
// element, the route's parameters and an AbortSignal that fires when the user navigates away (a
// view stops its polling and ignores late answers then).

import * as api from './api.js';
import { h, clear, errorBox } from './dom.js';
import * as overview from './view-overview.js';
import * as search from './view-search.js';
import * as entry from './view-entry.js';
import * as consistency from './view-consistency.js';
import * as admin from './view-admin.js';
import * as evidence from './view-evidence.js';
import * as settings from './view-settings.js';

const ROUTES = [
  { pattern: /^\/overview$/, nav: 'overview', view: overview },
  { pattern: /^\/search$/, nav: 'search', view: search },
  { pattern: /^\/entry\/(0|[1-9][0-9]*)$/, nav: 'search', view: entry },
  { pattern: /^\/consistency$/, nav: 'consistency', view: consistency },
  { pattern: /^\/admin$/, nav: 'admin', view: admin },
  { pattern: /^\/evidence$/, nav: 'evidence', view: evidence },
  { pattern: /^\/settings$/, nav: 'settings', view: settings },
];

let current = null;

function route() {
  const hash = window.location.hash.replace(/^#/, '') || '/overview';
  const [path, queryString = ''] = hash.split('?');
  for (const r of ROUTES) {
    const m = path.match(r.pattern);
    if (m) return { ...r, params: m.slice(1), query: new URLSearchParams(queryString) };
  }
  return null;
}

async function render() {
  current?.abort();
  const controller = new AbortController();
  current = controller;
  const root = clear(document.getElementById('view'));
  const r = route();
  for (const a of document.querySelectorAll('nav a[data-nav]')) {
    if (r && a.dataset.nav === r.nav) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  if (!r) {
    root.append(h('h1', {}, 'Not found'), h('p', {}, 'There is no such view. ', h('a', { href: '#/overview' }, 'Go to the overview.')));
    return;
  }
  try {
    await r.view.render({ root, params: r.params, query: r.query, signal: controller.signal, rerender: render });
  } catch (e) {
    if (controller.signal.aborted || e.name === 'AbortError') return;
    root.append(errorBox(e));
  }
  // Move focus to the new view's heading for keyboard and screen-reader users, unless the user
  // is typing somewhere (a search form re-rendering its own view).
  if (!controller.signal.aborted && document.activeElement === document.body) {
    root.querySelector('h1')?.focus({ preventScroll: true });
  }
}

function renderSession() {
  const el = clear(document.getElementById('session'));
  const token = api.getToken();
  const pinned = api.getPinnedKey();
  el.append(
    h('a', { href: '#/settings', class: `pill ${token ? 'pill-on' : ''}`, title: 'The bearer token is kept in this tab only (sessionStorage)' },
      token ? 'Token set' : 'No token'),
    h('a', { href: '#/settings', class: `pill ${pinned ? 'pill-on' : 'pill-warn'}`, title: 'The log key checkpoints are verified with' },
      pinned ? 'Key pinned' : 'Key not pinned'),
  );
}

window.addEventListener('hashchange', render);
window.addEventListener('sealtrail-session', renderSession);
window.addEventListener('storage', renderSession);
renderSession();
render();
