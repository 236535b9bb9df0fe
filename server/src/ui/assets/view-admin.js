// Erasures and holds (admin): the legal holds in force (GET /v1/admin/holds, admin role) and the
// log's own sealtrail.erasure entries (GET /v1/entries/search?type=sealtrail.erasure) with their
// payloads: which records were erased, why and at whose request. Refusals (401, 403) are shown as
// such, with what the token lacks.

import * as api from './api.js';
import * as v from './verify.js';
import { h, clear, heading, card, note, escapedText, fmtTime, fmtCount } from './dom.js';

const ERASURE = 'sealtrail.erasure';

export async function render({ root, signal }) {
  root.append(heading('Erasures & holds'));
  const holds = card('Legal holds in force', note('Loading…'));
  const erasures = card('Erasure entries', note('Loading…'));
  root.append(holds, erasures);
  await Promise.all([loadHolds(holds, signal), loadErasures(erasures, signal)]);
}

/** A refusal or error, saying plainly when it is about the token's role. */
function refusal(e) {
  if (e.status === 401 || e.status === 403) {
    return h('div', { class: 'alert alert-error', role: 'alert', data: { status: String(e.status) } },
      h('strong', {}, e.status === 401 ? 'Not authenticated (401). ' : 'Forbidden (403). '),
      e.status === 401 ? 'This needs a token with the admin role: paste one under ' : 'The token you gave does not have the admin role. Use an admin token under ',
      h('a', { href: '#/settings' }, 'Settings'), '.',
      h('div', { class: 'muted' }, e.message));
  }
  return h('div', { class: 'alert alert-error', role: 'alert' }, e.message);
}

function replaceBody(cardEl, ...children) {
  const title = cardEl.querySelector('h2');
  clear(cardEl).append(title, ...children);
}

function conditions(covers) {
  const parts = [];
  for (const [k, val] of Object.entries(covers ?? {})) {
    if (val === null || val === undefined) continue;
    const shown = k.endsWith('_ms') ? fmtTime(val) : escapedText(typeof val === 'string' ? val : JSON.stringify(val));
    parts.push(h('div', {}, h('span', { class: 'muted' }, `${k}: `), shown));
  }
  return parts.length ? parts : h('span', { class: 'muted' }, 'none');
}

async function loadHolds(el, signal) {
  let body;
  try {
    body = await api.getJson('v1/admin/holds', { signal });
  } catch (e) {
    if (!signal.aborted) replaceBody(el, refusal(e));
    return;
  }
  if (body.holds.length === 0) {
    replaceBody(el, note('No hold is in force.'));
    return;
  }
  replaceBody(el, h('div', { class: 'table-wrap' }, h('table', { class: 'table', id: 'holds-table' },
    h('thead', {}, h('tr', {}, h('th', {}, 'Hold'), h('th', {}, 'Covers'), h('th', {}, 'Reason'), h('th', {}, 'Placed by'), h('th', {}, 'Placed'))),
    h('tbody', {}, body.holds.map((x) => h('tr', {},
      h('td', {}, h('a', { href: `#/entry/${x.id}` }, `#${x.id}`)),
      h('td', {}, conditions(x.covers)),
      h('td', {}, escapedText(x.reason)),
      h('td', {}, escapedText(x.placed_by)),
      h('td', { class: 'nowrap' }, fmtTime(x.placed_at_ms))))))));
}

/** An erasure's indices: a lone index is a number, a run is [first, last]. */
function indices(list) {
  if (!Array.isArray(list)) return '';
  const shown = list.slice(0, 20).map((x) => (Array.isArray(x) ? `${x[0]}–${x[1]}` : String(x)));
  return shown.join(', ') + (list.length > 20 ? `, … (${list.length - 20} more runs)` : '');
}

function erasurePayload(entry) {
  if (!entry.record) return null;
  try {
    return JSON.parse(v.decodeUtf8(v.fromBase64(entry.record.payload_base64)));
  } catch {
    return null;
  }
}

async function loadErasures(el, signal) {
  const tbody = h('tbody', {});
  const more = h('button', { type: 'button', class: 'btn btn-quiet' }, 'Load more');
  const count = h('p', { class: 'muted' });
  let shown = 0;
  const load = async (cursor) => {
    const page = await api.getJson(`v1/entries/search${api.query({ type: ERASURE, limit: 50, cursor })}`, { signal });
    for (const e of page.entries) tbody.append(erasureRow(e));
    shown += page.entries.length;
    count.textContent = `${fmtCount(shown)} erasure ${shown === 1 ? 'entry' : 'entries'} shown`;
    more.hidden = !page.next_cursor;
    more.onclick = () => load(page.next_cursor).catch((e) => el.append(refusal(e)));
  };
  try {
    await load(undefined);
  } catch (e) {
    if (!signal.aborted) replaceBody(el, refusal(e));
    return;
  }
  if (shown === 0) {
    replaceBody(el, note('No record has been erased.'));
    return;
  }
  replaceBody(el, count, h('div', { class: 'table-wrap' }, h('table', { class: 'table', id: 'erasures-table' },
    h('thead', {}, h('tr', {}, h('th', {}, 'Entry'), h('th', {}, 'Sequenced'), h('th', {}, 'Requested by'), h('th', {}, 'Reason'), h('th', { class: 'num' }, 'Erased'), h('th', {}, 'Indices'), h('th', {}, 'Payload'))),
    tbody)), more);
}

function erasureRow(e) {
  const p = erasurePayload(e)?.erasure;
  const payload = e.record
    ? h('details', {}, h('summary', {}, 'JSON'), h('pre', { class: 'payload' }, escapedText(JSON.stringify(erasurePayload(e), null, 2), { multiline: true })))
    : h('span', { class: 'tag' }, e.erased ? 'erased' : 'withheld');
  return h('tr', {},
    h('td', {}, h('a', { href: `#/entry/${e.index}` }, `#${e.index}`)),
    h('td', { class: 'nowrap' }, fmtTime(e.timestamp)),
    h('td', {}, e.record ? escapedText(e.record.principal) : h('span', { class: 'muted' }, 'withheld')),
    h('td', {}, p ? escapedText(p.reason) : ''),
    h('td', { class: 'num' }, p ? fmtCount(p.count) : ''),
    h('td', {}, p ? indices(p.indices) : ''),
    h('td', {}, payload));
}
