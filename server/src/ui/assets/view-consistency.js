// Consistency: proves in the browser that an older checkpoint's tree is a prefix of a newer one's.
// Both checkpoints are signed notes the browser verifies itself (with the pinned or announced log
// key): ones it verified earlier (remembered in localStorage: public data), pasted ones, or the
// latest from GET /checkpoint. The proof from GET /v1/proof/consistency?from=M&to=N is checked with
// the RFC 9162 section 2.1.4.2 algorithm against the two SIGNED roots; the old_root and new_root
// the endpoint also sends are ignored.

import * as api from './api.js';
import * as v from './verify.js';
import { h, heading, card, badge, note, errorBox, fmtCount, fmtTime, escapedText, mono } from './dom.js';
import { check, trustAnchor, summarize } from './trust.js';

export async function render({ root, signal, rerender }) {
  root.append(heading('Consistency'));
  const remembered = api.rememberedCheckpoints();
  const [older, newer] = defaultPair(remembered);
  const a = noteInput('consistency-old', 'Older checkpoint', older, remembered);
  const b = noteInput('consistency-new', 'Newer checkpoint', newer, remembered);
  const latest = h('button', { type: 'button', class: 'btn btn-quiet', id: 'consistency-latest' }, 'Use the latest checkpoint');
  latest.addEventListener('click', async () => {
    try {
      b.textarea.value = new TextDecoder().decode(await api.getBytes('checkpoint', { signal }));
    } catch (e) {
      result.replaceChildren(errorBox(e));
    }
  });
  const run = h('button', { type: 'submit', class: 'btn', id: 'consistency-check' }, 'Check consistency');
  const result = h('div', { id: 'consistency-result' });
  const form = h('form', {
    class: 'stack', on: {
      submit: async (e) => {
        e.preventDefault();
        run.disabled = true;
        try {
          await checkPair(a.textarea.value, b.textarea.value, result, signal);
        } finally {
          run.disabled = false;
        }
      },
    },
  },
  note('Pick two checkpoints this browser verified before, or paste signed checkpoint notes (from another client, a witness, an export). Both signatures are verified here, then the consistency proof between their trees.', ''),
  h('div', { class: 'two-col' }, a.el, b.el),
  h('div', { class: 'form-actions' }, run, latest));
  root.append(card(null, form), result, rememberedCard(remembered, rerender));
}

/** The newest remembered checkpoint, and the largest remembered one below its size. */
function defaultPair(list) {
  if (list.length === 0) return ['', ''];
  const newest = list.reduce((x, c) => (BigInt(c.size) > BigInt(x.size) ? c : x));
  const below = list.filter((c) => BigInt(c.size) < BigInt(newest.size));
  const older = below.reduce((x, c) => (x === null || BigInt(c.size) > BigInt(x.size) ? c : x), null);
  return [older?.note ?? '', newest.note];
}

function noteInput(id, label, value, remembered) {
  const textarea = h('textarea', { id, rows: '6', spellcheck: 'false', class: 'mono' });
  textarea.value = value;
  const pick = h('select', { id: `${id}-pick`, 'aria-label': `${label}: pick a remembered checkpoint` },
    h('option', { value: '' }, 'Pick a remembered checkpoint…'),
    remembered.map((c, i) => h('option', { value: String(i) }, `size ${fmtCount(c.size)}, verified ${fmtTime(c.verifiedAt)}`)));
  pick.addEventListener('change', () => {
    if (pick.value !== '') textarea.value = remembered[Number(pick.value)].note;
  });
  return {
    textarea,
    el: h('div', { class: 'form-field' }, h('label', { for: id }, label), pick, textarea),
  };
}

/** Pasted text as note bytes: CRLF line ends made LF, a missing final newline added back. */
function noteBytes(text) {
  let t = text.replace(/\r\n/g, '\n').trim();
  if (t) t += '\n';
  return v.utf8(t);
}

async function checkPair(textA, textB, result, signal) {
  const status = h('div', { id: 'consistency-status', class: 'status status-pending', data: { state: 'pending' }, role: 'status' }, 'checking…');
  const list = h('ul', { class: 'checks' });
  result.replaceChildren(card('Result', status, list));
  const checks = [];
  const log = await api.getJson('v1/log', { signal });
  const anchor = await trustAnchor(log);
  checks.push(...anchor.checks);
  const opened = [];
  for (const [id, label, text] of [['old-signature', 'Older checkpoint', textA], ['new-signature', 'Newer checkpoint', textB]]) {
    try {
      if (!anchor.key) throw new v.VerifyError('no usable log key');
      const o = await v.openCheckpoint(noteBytes(text), anchor.key);
      api.rememberCheckpoint(o.checkpoint.origin, o.checkpoint.size, new TextDecoder().decode(noteBytes(text)));
      opened.push(o.checkpoint);
      checks.push(check(id, `${label} signature`, 'ok', `size ${o.checkpoint.size}, root ${v.toBase64(o.checkpoint.root)}`));
    } catch (e) {
      checks.push(check(id, `${label} signature`, 'failed', e.message));
    }
  }
  if (opened.length === 2) {
    const [x, y] = opened[0].size <= opened[1].size ? opened : [opened[1], opened[0]];
    try {
      const p = await api.getJson(`v1/proof/consistency${api.query({ from: x.size, to: y.size })}`, { signal });
      if (String(p.from) !== String(x.size) || String(p.to) !== String(y.size)) {
        throw new v.VerifyError(`the server answered a proof from ${p.from} to ${p.to}`);
      }
      const proof = p.proof.map(v.fromBase64);
      await v.verifyConsistency(x.size, y.size, x.root, y.root, proof);
      checks.push(check('consistency', 'Consistency proof', 'ok',
        `the ${proof.length}-hash proof shows the tree of size ${x.size} is a prefix of the tree of size ${y.size}`));
    } catch (e) {
      checks.push(check('consistency', 'Consistency proof', 'failed', e.message));
    }
  } else {
    checks.push(check('consistency', 'Consistency proof', 'failed', 'both checkpoints must verify first'));
  }
  for (const c of checks) {
    list.append(h('li', { data: { check: c.id, state: c.state } }, badge(c.state), h('span', { class: 'check-label' }, c.label), h('span', { class: 'check-detail' }, c.detail)));
  }
  const s = summarize(checks);
  status.dataset.state = s.state;
  status.className = `status status-${s.state}`;
  status.textContent = s.state === 'ok' ? 'verified: the older tree is a prefix of the newer one' : s.text;
}

function rememberedCard(list, rerender) {
  if (list.length === 0) {
    return card('Remembered checkpoints', note('None yet: every checkpoint whose signature this browser verifies (Overview, entries, this page) is remembered here.'));
  }
  const forget = h('button', { type: 'button', class: 'btn btn-quiet', on: { click: () => { api.forgetCheckpoints(); rerender(); } } }, 'Forget them');
  return card('Remembered checkpoints',
    h('div', { class: 'table-wrap' }, h('table', { class: 'table' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Origin'), h('th', { class: 'num' }, 'Size'), h('th', {}, 'Root hash'), h('th', {}, 'Verified'))),
      h('tbody', {}, list.map((c) => {
        let rootHash = '';
        try {
          rootHash = v.toBase64(v.parseCheckpoint(v.parseNote(v.utf8(c.note)).text).root);
        } catch {
          rootHash = '?';
        }
        return h('tr', {}, h('td', {}, escapedText(c.origin)), h('td', { class: 'num' }, fmtCount(c.size)), h('td', {}, mono(rootHash)), h('td', { class: 'nowrap' }, fmtTime(c.verifiedAt)));
      })))),
    h('div', { class: 'actions' }, forget, h('span', { class: 'muted' }, ' Stored in this browser (localStorage): signed checkpoints are public.')));
}
