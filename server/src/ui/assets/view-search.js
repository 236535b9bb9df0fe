// Search: GET /v1/entries/search with a time range (date pickers in local time, sent as
// milliseconds since the epoch), event type, principal and order; pages through next_cursor.
// The conditions live in the URL fragment (#/search?type=...), never the token, so the back
// button returns to the same results. Each row links to the entry view, where it is verified.

import * as api from './api.js';
import { h, clear, heading, card, field, note, errorBox, escapedText, fmtTime, fmtBytes, fmtCount, localInputToMs, msToLocalInput } from './dom.js';

const PAGE = 50;

/** The fragment of the last search shown, for the entry view's way back. */
let last = '#/search';

export function lastSearch() {
  return last;
}

/** The search conditions of the URL fragment. */
function conditions(query) {
  const get = (k) => query.get(k) ?? '';
  return { since: get('since'), until: get('until'), type: get('type'), principal: get('principal'), order: get('order') || 'newest' };
}

export async function render({ root, query, signal }) {
  last = window.location.hash || '#/search';
  const c = conditions(query);
  root.append(heading('Search'));
  const form = searchForm(c);
  const results = h('section', { id: 'search-results', class: 'card', 'aria-label': 'Results' });
  root.append(card(null, form), results);
  await runSearch(c, results, signal);
}

function searchForm(c) {
  const since = h('input', { type: 'datetime-local', step: '1', value: msToLocalInput(c.since) });
  const until = h('input', { type: 'datetime-local', step: '1', value: msToLocalInput(c.until) });
  const type = h('input', { type: 'text', value: c.type, placeholder: 'e.g. user.login', autocomplete: 'off', spellcheck: 'false' });
  const principal = h('input', { type: 'text', value: c.principal, placeholder: 'e.g. token:ingest', autocomplete: 'off', spellcheck: 'false' });
  const order = h('select', {},
    h('option', { value: 'newest', selected: c.order === 'newest' }, 'Newest first'),
    h('option', { value: 'oldest', selected: c.order === 'oldest' }, 'Oldest first'));
  const submit = (e) => {
    e.preventDefault();
    const q = api.query({
      since: localInputToMs(since.value),
      until: localInputToMs(until.value),
      type: type.value,
      principal: principal.value,
      order: order.value === 'newest' ? '' : order.value,
    });
    const target = `#/search${q}`;
    // The same conditions again: re-run (hashchange does not fire for an unchanged fragment).
    if (window.location.hash === target) window.dispatchEvent(new HashChangeEvent('hashchange'));
    else window.location.hash = target;
  };
  return h('form', { id: 'search-form', class: 'form-grid', on: { submit } },
    field('search-since', 'Since (local time, inclusive)', since),
    field('search-until', 'Until (local time, exclusive)', until),
    field('search-type', 'Event type (exact)', type),
    field('search-principal', 'Principal (exact, reader role)', principal),
    field('search-order', 'Order', order),
    h('div', { class: 'form-actions' },
      h('button', { type: 'submit', class: 'btn', id: 'search-submit' }, 'Search'),
      h('a', { href: '#/search', class: 'btn btn-quiet' }, 'Clear')));
}

async function runSearch(c, results, signal) {
  clear(results).append(note('Searching…'));
  const base = { since: c.since, until: c.until, type: c.type, principal: c.principal, order: c.order, limit: PAGE };
  let page;
  try {
    page = await api.getJson(`v1/entries/search${api.query(base)}`, { signal });
  } catch (e) {
    if (!signal.aborted) clear(results).append(errorBox(e));
    return;
  }
  if (signal.aborted) return;
  clear(results);
  const tbody = h('tbody', {});
  const count = h('span', {});
  let shown = 0;
  const more = h('button', { type: 'button', class: 'btn btn-quiet', id: 'search-more' }, 'Load more');
  const add = (p) => {
    for (const e of p.entries) tbody.append(row(e));
    shown += p.entries.length;
    count.textContent = `${fmtCount(shown)} ${shown === 1 ? 'entry' : 'entries'} shown, among the first ${fmtCount(p.tree_size)} of the log`;
    more.hidden = !p.next_cursor;
    more.dataset.cursor = p.next_cursor ?? '';
  };
  more.addEventListener('click', async () => {
    more.disabled = true;
    try {
      add(await api.getJson(`v1/entries/search${api.query({ ...base, cursor: more.dataset.cursor })}`, { signal }));
    } catch (e) {
      results.append(errorBox(e));
    } finally {
      more.disabled = false;
    }
  });
  results.append(
    h('div', { class: 'results-head' }, h('h2', {}, 'Results'), h('p', { class: 'muted', role: 'status' }, count)),
    h('div', { class: 'table-wrap' },
      h('table', { class: 'table', id: 'search-table' },
        h('thead', {}, h('tr', {},
          h('th', { scope: 'col' }, 'Index'), h('th', { scope: 'col' }, 'Sequenced (UTC)'), h('th', { scope: 'col' }, 'Event type'),
          h('th', { scope: 'col' }, 'Content type'), h('th', { scope: 'col', class: 'num' }, 'Size'), h('th', { scope: 'col' }, 'Principal'))),
        tbody)),
    more,
  );
  add(page);
  if (shown === 0) results.append(note('No entry matches these conditions.'));
}

function row(e) {
  let principal;
  if (e.record) principal = escapedText(e.record.principal);
  else if (e.erased) principal = h('span', { class: 'tag tag-erased' }, `erased by #${e.erased.erasure_index}`);
  else principal = h('span', { class: 'tag' }, 'withheld');
  return h('tr', { data: { index: String(e.index) } },
    h('td', {}, h('a', { href: `#/entry/${e.index}`, class: 'entry-link' }, `#${e.index}`)),
    h('td', { class: 'nowrap' }, fmtTime(e.timestamp)),
    h('td', { class: 'event-type' }, escapedText(e.event_type)),
    h('td', { class: 'content-type' }, escapedText(e.content_type)),
    h('td', { class: 'num' }, fmtBytes(e.payload_size)),
    h('td', { class: 'principal' }, principal));
}
