// Evidence package: downloads GET /v1/evidence?since=&until=&type=&principal= (a tar.gz) for the
// same conditions as a search. The request is made with fetch so that it carries the
// Authorization header (a plain link could not, and the token must never go in a URL); the answer
// is saved through an object URL.

import * as api from './api.js';
import { h, heading, card, field, note, errorBox, fmtBytes, localInputToMs } from './dom.js';

const DEFAULT_NAME = 'sealtrail-evidence.tar.gz';

/** The file name from Content-Disposition, reduced to safe characters. */
function fileName(disposition) {
  const m = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(disposition ?? '');
  let name = m ? m[1] : '';
  try {
    name = decodeURIComponent(name);
  } catch {
    // Keep it as it came.
  }
  name = name.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '');
  return name || DEFAULT_NAME;
}

export async function render({ root, signal }) {
  root.append(heading('Evidence package'));
  const since = h('input', { type: 'datetime-local', step: '1' });
  const until = h('input', { type: 'datetime-local', step: '1' });
  const type = h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false' });
  const principal = h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false' });
  const submit = h('button', { type: 'submit', class: 'btn', id: 'evidence-download' }, 'Download the package');
  const result = h('div', { id: 'evidence-result', role: 'status' });
  const download = async (e) => {
    e.preventDefault();
    submit.disabled = true;
    result.replaceChildren(note('Building the package…'));
    try {
      const q = api.query({ since: localInputToMs(since.value), until: localInputToMs(until.value), type: type.value, principal: principal.value });
      const resp = await api.request(`v1/evidence${q}`, { signal });
      const blob = await resp.blob();
      const url = URL.createObjectURL(blob);
      const name = fileName(resp.headers.get('Content-Disposition'));
      const a = h('a', { href: url, download: name }, name);
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
      result.replaceChildren(h('div', { class: 'alert alert-ok' }, `Saved ${name} (${fmtBytes(blob.size)}).`));
    } catch (err) {
      if (err.status === 404) {
        result.replaceChildren(errorBox(new Error(`This server does not offer evidence packages (${err.message})`)));
      } else {
        result.replaceChildren(errorBox(err));
      }
    } finally {
      submit.disabled = false;
    }
  };
  root.append(card(null,
    note('Downloads the evidence package (tar.gz) the server builds for these conditions, for checking offline. The same conditions as a search; leave a field empty not to filter on it.', ''),
    h('form', { class: 'form-grid', on: { submit: download } },
      field('evidence-since', 'Since (local time, inclusive)', since),
      field('evidence-until', 'Until (local time, exclusive)', until),
      field('evidence-type', 'Event type (exact)', type),
      field('evidence-principal', 'Principal (exact)', principal),
      h('div', { class: 'form-actions' }, submit)),
    result));
}
