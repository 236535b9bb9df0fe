// Overview: the tree, the latest checkpoint (verified here: the log's signature, the witnesses'
// cosignatures and the quorum), the log key with a button to pin it, the witness policy, and the
// ingest rate.
//
// The ingest rate is measured, not reported by the server: the view polls GET /v1/log every
// POLL_MS and divides the growth of tree_size between the last two answers by the time between
// them (performance.now() when each answer arrived).

import * as api from './api.js';
import * as v from './verify.js';
import { h, clear, heading, card, fields, mono, badge, note, fmtCount, fmtTime, escapedText, errorBox } from './dom.js';
import { trustAnchor, checkCheckpoint, summarize } from './trust.js';

const POLL_MS = 5000;

export async function render({ root, signal, rerender }) {
  root.append(heading('Overview'));
  const body = root.appendChild(h('div', { class: 'stack' }, note('Loading the log…')));
  const log = await api.getJson('v1/log', { signal });
  const cpBytes = await api.getBytes('checkpoint', { signal });
  const anchor = await trustAnchor(log);
  const serverKey = await v.parseVkey(log.verifier_key).catch(() => null);
  const verified = await checkCheckpoint(cpBytes, anchor);
  if (signal.aborted) return;
  clear(body);

  const rate = h('span', { id: 'ingest-rate' }, 'measuring…');
  const rateHow = h('small', { class: 'muted' }, `first sample taken; the next in ${POLL_MS / 1000} s`);
  const size = h('span', { id: 'overview-tree-size' }, fmtCount(log.tree_size));
  body.append(
    h('div', { class: 'stats' },
      stat('Tree size', size, h('small', { class: 'muted' }, 'entries in the published tree')),
      stat('Cosigned tree size', log.cosigned_tree_size === null ? 'none' : fmtCount(log.cosigned_tree_size),
        h('small', { class: 'muted' }, log.witness_policy ? 'newest checkpoint meeting the witness policy' : 'the log has no witnesses')),
      stat('Ingest rate', rate, rateHow),
      stat('Checkpoint signed', h('span', { class: 'stat-value-small' }, fmtTime(log.checkpoint_signed_at * 1000, { seconds: true })),
        h('small', { class: 'muted' }, 'by the log, as the server reports it'))),
    checkpointCard(cpBytes, verified, anchor),
    keyCard(log, anchor, serverKey, rerender),
    policyCard(log, anchor),
    serverCard(log),
  );
  pollRate(log.tree_size, size, rate, rateHow, signal);
}

function stat(label, value, sub) {
  return h('div', { class: 'stat' }, h('div', { class: 'stat-label' }, label), h('div', { class: 'stat-value' }, value), sub);
}

function checkpointCard(bytes, verified, anchor) {
  const summary = summarize(verified.checks);
  const status = h('div', { id: 'checkpoint-status', class: `status status-${summary.state}`, data: { state: summary.state }, role: 'status' },
    summary.state === 'ok' ? 'Checkpoint verified' : `Checkpoint ${summary.text}`);
  const cp = verified.opened?.checkpoint;
  const checks = h('ul', { class: 'checks' }, verified.checks.map((c) =>
    h('li', { data: { check: c.id, state: c.state } }, badge(c.state), h('span', { class: 'check-label' }, c.label), h('span', { class: 'check-detail' }, c.detail))));
  return card('Latest checkpoint',
    status,
    cp ? fields([
      ['Origin', escapedText(cp.origin)],
      ['Tree size', fmtCount(cp.size)],
      ['Root hash', mono(v.toBase64(cp.root))],
    ]) : null,
    checks,
    signaturesTable(bytes, verified, anchor),
    h('details', {}, h('summary', {}, 'Signed note text'), h('pre', { class: 'note-text' }, new TextDecoder().decode(bytes))),
  );
}

/** Every signature line of the note, with what it is (log, listed witness, unknown key). */
function signaturesTable(bytes, verified, anchor) {
  let note;
  try {
    note = verified.opened?.note ?? v.parseNote(bytes);
  } catch {
    return null;
  }
  const witnesses = verified.witnesses?.witnesses ?? [];
  const rows = note.signatures.map((s) => {
    const id = v.keyIdHex(s.id);
    let role = 'unknown key (ignored)';
    let state = h('span', { class: 'muted' }, '—');
    let time = '';
    if (anchor.key && s.name === anchor.key.name && s.id === anchor.key.id) {
      role = 'log signature';
      const ok = verified.checks.find((c) => c.id === 'checkpoint-signature')?.state === 'ok';
      state = badge(ok ? 'ok' : 'failed', ok ? 'verified' : 'invalid');
    } else {
      const w = witnesses.find((x) => x.keyName === s.name && x.keyId === id);
      if (w) {
        role = `cosignature of witness ${w.name}`;
        state = badge('ok', 'verified');
        time = fmtTime(Number(w.timestamp) * 1000, { seconds: true });
      }
    }
    return h('tr', {}, h('td', {}, escapedText(s.name)), h('td', {}, mono(id)), h('td', {}, role), h('td', {}, time), h('td', {}, state));
  });
  return h('table', { class: 'table' },
    h('caption', {}, 'Signatures'),
    h('thead', {}, h('tr', {}, h('th', {}, 'Signer'), h('th', {}, 'Key ID'), h('th', {}, 'Kind'), h('th', {}, 'Cosigned at'), h('th', {}, 'Status'))),
    h('tbody', {}, rows));
}

function keyCard(log, anchor, serverKey, rerender) {
  const pinned = api.getPinnedKey();
  const server = anchor.checks.find((c) => c.id === 'log-key');
  const pin = (vkey) => () => {
    api.setPinnedKey(vkey);
    rerender();
  };
  const actions = h('div', { class: 'actions' });
  if (pinned !== log.verifier_key && serverKey) {
    actions.append(h('button', { type: 'button', class: 'btn', id: 'pin-key', on: { click: pin(log.verifier_key) } },
      pinned ? 'Replace the pinned key with this one' : 'Pin this key'));
  }
  if (pinned) {
    actions.append(h('button', { type: 'button', class: 'btn btn-quiet', on: { click: pin('') } }, 'Unpin'));
  }
  return card('Log key',
    h('p', {}, badge(server?.state ?? 'failed'), ' ', server?.detail ?? ''),
    fields([
      ['Announced by the server', mono(log.verifier_key)],
      ['Name', serverKey ? escapedText(serverKey.name) : undefined],
      ['Key ID', serverKey ? mono(v.keyIdHex(serverKey.id)) : undefined],
      ['Pinned in this browser', pinned ? mono(pinned) : h('span', { class: 'muted' }, 'nothing pinned')],
    ]),
    actions,
  );
}

function policyCard(log, anchor) {
  if (!log.witness_policy && !anchor.policySource) {
    return card('Witnesses', note('This log has no witness policy: checkpoints carry only the log\'s signature.'));
  }
  return card('Witnesses',
    anchor.policyError ? errorBox(new Error(`The witness policy does not parse: ${anchor.policyError}`)) : null,
    fields([
      ['Policy in use', anchor.policySource === 'pinned' ? 'pinned in this browser' : 'announced by the server (pin it under Settings)'],
      ['Quorum', anchor.policy ? escapedText(anchor.policy.quorum) : undefined],
      ['Cosigned tree size', log.cosigned_tree_size === null ? 'no checkpoint meets the policy yet' : fmtCount(log.cosigned_tree_size)],
    ]),
    h('pre', { class: 'note-text' }, anchor.policySource === 'pinned' ? api.getPinnedPolicy() : log.witness_policy),
  );
}

function serverCard(log) {
  const a = log.access ?? {};
  return card('Server',
    fields([
      ['Origin', escapedText(log.origin)],
      ['Version', log.version],
      ['Storage engine', log.storage_engine],
      ['Reads', a.private_reads ? 'private (reader role)' : 'public'],
      ['Anonymous content', a.anonymous_content ? 'readable without a token' : 'needs a token'],
      ['Anonymous writes', a.anonymous_writes ? 'allowed' : 'refused'],
    ]));
}

/** Polls /v1/log and shows the growth rate between the last two answers. */
function pollRate(firstSize, sizeEl, rateEl, howEl, signal) {
  let last = { size: firstSize, at: performance.now() };
  const timer = setInterval(async () => {
    try {
      const log = await api.getJson('v1/log', { signal });
      const now = { size: log.tree_size, at: performance.now() };
      const secs = (now.at - last.at) / 1000;
      const rate = (now.size - last.size) / secs;
      rateEl.textContent = `${rate.toFixed(rate < 10 ? 2 : 0)} entries/s`;
      howEl.textContent = `from two GET /v1/log polls ${secs.toFixed(1)} s apart (tree size ${fmtCount(last.size)} → ${fmtCount(now.size)})`;
      sizeEl.textContent = fmtCount(now.size);
      last = now;
    } catch (e) {
      if (!signal.aborted) howEl.textContent = `polling failed: ${e.message}`;
    }
  }, POLL_MS);
  signal.addEventListener('abort', () => clearInterval(timer));
}
