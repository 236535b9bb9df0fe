// Entry: the envelope's public fields, the private record and the payload, and the browser's own
// verification of the whole chain, from the record up to the log key:
//
//   1. Private record: SHA-256 over the salt, principal and payload (leaf-envelope.md section 5)
//      equals the commitment, and the payload's length equals payload_size.
//   2. Leaf hash: the envelope re-encoded here from the public fields (section 4, deterministic
//      CBOR) hashes to SHA-256(0x00 || envelope) = leaf_hash (section 10).
//   3. Inclusion proof: the audit path leads from that leaf hash (computed here, not the server's)
//      to the root of a checkpoint whose signature was verified here (RFC 9162 2.1.3.2), never to
//      the root_hash the proof endpoint also sends.
//   4. Checkpoint signature: Ed25519, with the pinned log key (or the announced one, flagged).
//   5. Witness cosignatures and quorum, when there is a witness policy.
//
// The proof comes from GET /v1/proof/inclusion?index=N&size=S, S being the size of the checkpoint
// GET /checkpoint served (with witnesses, the newest cosigned one). An entry newer than that
// checkpoint is proven with GET /v1/proof/N, a tlog-proof against the latest log-signed
// checkpoint, which no quorum has cosigned yet (a warning, not a failure).

import * as api from './api.js';
import * as v from './verify.js';
import { h, heading, card, fields, mono, badge, note, errorBox, escapedText, fmtTime, fmtBytes } from './dom.js';
import { check, trustAnchor, checkCheckpoint, summarize } from './trust.js';
import { lastSearch } from './view-search.js';

/** The order checks are listed in: from the record up to the trust anchor. */
const ORDER = ['record', 'leaf-hash', 'inclusion', 'checkpoint-signature', 'witnesses', 'log-key'];

export async function render({ root, params, signal }) {
  const index = BigInt(params[0]);
  root.append(heading(`Entry #${index}`, h('a', { href: lastSearch(), class: 'btn btn-quiet' }, 'Back to search')));
  const status = h('div', { id: 'verify-status', class: 'status status-pending', data: { state: 'pending', entry: String(index) }, role: 'status', 'aria-live': 'polite' }, 'verifying…');
  const list = h('ul', { class: 'checks', id: 'verify-checks' });
  const details = h('div', { class: 'entry-grid' });
  root.append(card('Verification in this browser', status, list), details);

  let entry;
  try {
    entry = await api.getJson(`v1/entries/${index}`, { signal });
  } catch (e) {
    if (signal.aborted) return;
    setStatus(status, 'failed', `verification failed: the entry could not be read (${e.message})`);
    details.append(errorBox(e));
    return;
  }
  if (signal.aborted) return;
  const envelope = safely(() => v.encodeEnvelope(entry));
  details.append(...entryCards(entry, envelope));

  const checks = await verifyEntry(entry, index, signal);
  if (signal.aborted) return;
  checks.sort((a, b) => ORDER.indexOf(a.id) - ORDER.indexOf(b.id));
  for (const c of checks) {
    list.append(h('li', { data: { check: c.id, state: c.state } },
      badge(c.state), h('span', { class: 'check-label' }, c.label), h('span', { class: 'check-detail' }, c.detail)));
  }
  const summary = summarize(checks);
  setStatus(status, summary.state, summary.state === 'ok' ? `verified${caveats(checks)}` : summary.text);
}

/** What a "verified" does not cover: a withheld or erased record, a pending witness quorum. */
function caveats(checks) {
  const state = (id) => checks.find((c) => c.id === id)?.state;
  const notes = [];
  if (state('record') === 'skipped') notes.push('the leaf only: the record is withheld from this token');
  if (state('record') === 'info') notes.push('the leaf only: the record was erased');
  if (state('witnesses') === 'warn') notes.push("by the log's signature; no witness quorum covers this entry yet");
  return notes.length ? ` (${notes.join('; ')})` : '';
}

function setStatus(el, state, text) {
  el.dataset.state = state;
  el.className = `status status-${state}`;
  el.textContent = text;
}

function safely(f) {
  try {
    return f();
  } catch {
    return null;
  }
}

async function verifyEntry(entry, index, signal) {
  const checks = [];
  checks.push(await recordCheck(entry));
  let leaf = null;
  try {
    if (String(entry.index) !== String(index)) fail(`the server answered entry ${entry.index}`);
    const env = v.encodeEnvelope(entry);
    leaf = await v.leafHash(env);
    if (v.toHex(leaf) !== entry.leaf_hash) {
      fail(`the ${env.length}-byte envelope re-encoded from the public fields hashes to ${v.toHex(leaf)}, but the server says ${entry.leaf_hash}`);
    }
    checks.push(check('leaf-hash', 'Leaf hash', 'ok',
      `SHA-256(0x00 || envelope) of the ${env.length}-byte envelope re-encoded from the public fields is ${v.toHex(leaf)}`));
  } catch (e) {
    checks.push(check('leaf-hash', 'Leaf hash', 'failed', e.message));
  }

  const log = await api.getJson('v1/log', { signal });
  const anchor = await trustAnchor(log);
  checks.push(...anchor.checks);
  const latest = await checkCheckpoint(await api.getBytes('checkpoint', { signal }), anchor);
  const size = latest.opened?.checkpoint.size;
  if (latest.opened && index < size) {
    checks.push(...latest.checks);
    checks.push(await inclusionCheck(index, leaf, latest.opened.checkpoint, async () => {
      const p = await api.getJson(`v1/proof/inclusion${api.query({ index, size })}`, { signal });
      if (String(p.index) !== String(index) || String(p.tree_size) !== String(size)) {
        fail(`the server answered a proof for entry ${p.index} in the tree of size ${p.tree_size}`);
      }
      return p.proof.map(v.fromBase64);
    }));
  } else if (latest.opened) {
    // Newer than the newest checkpoint that meets the policy: a tlog-proof against the latest.
    const tp = v.parseTlogProof(await api.getBytes(`v1/proof/${index}`, { signal }));
    const own = await checkCheckpoint(tp.checkpoint, anchor);
    for (const c of own.checks) {
      if (c.id === 'witnesses' && c.state === 'failed' && own.witnesses && !own.witnesses.met) {
        checks.push(check(c.id, c.label, 'warn',
          `entry ${index} is newer than the newest cosigned checkpoint (size ${size}); ${c.detail}`));
      } else {
        checks.push(c);
      }
    }
    checks.push(await inclusionCheck(index, leaf, own.opened?.checkpoint, async () => {
      if (tp.index !== index) fail(`the tlog-proof is for entry ${tp.index}`);
      return tp.proof;
    }));
  } else {
    checks.push(...latest.checks);
    checks.push(check('inclusion', 'Inclusion proof', 'failed', 'no checkpoint with a verified signature to check against'));
  }
  return checks;
}

function fail(message) {
  throw new v.VerifyError(message);
}

/** Verifies the audit path from `getProof` for `leaf` against the verified `checkpoint`. */
async function inclusionCheck(index, leaf, checkpoint, getProof) {
  const label = 'Inclusion proof';
  if (!checkpoint) return check('inclusion', label, 'failed', 'no checkpoint with a verified signature to check against');
  if (!leaf) return check('inclusion', label, 'failed', 'no leaf hash to prove (the envelope did not re-encode)');
  try {
    const proof = await getProof();
    await v.verifyInclusion(index, checkpoint.size, leaf, proof, checkpoint.root);
    return check('inclusion', label, 'ok',
      `the ${proof.length}-hash audit path leads from the leaf to the signed root of the checkpoint of size ${checkpoint.size}`);
  } catch (e) {
    return check('inclusion', label, 'failed', e.message);
  }
}

async function recordCheck(entry) {
  const label = 'Private record';
  if (entry.erased) {
    return check('record', label, 'info',
      `erased by entry ${entry.erased.erasure_index}: the record and its salt are destroyed; the leaf is still proven below`);
  }
  if (!entry.record) return check('record', label, 'skipped', 'withheld: this token may not read content (reader role)');
  try {
    const r = entry.record;
    const payload = v.fromBase64(r.payload_base64);
    if (payload.length !== entry.payload_size) {
      fail(`the payload is ${payload.length} bytes, but the leaf says ${entry.payload_size}`);
    }
    const got = await v.recordCommitment(v.fromHex(r.salt), r.principal, payload);
    if (!v.bytesEqual(got, v.fromHex(entry.commitment))) {
      fail(`SHA-256 over the salt, principal and payload is ${v.toHex(got)}, not the leaf's commitment ${entry.commitment}`);
    }
    return check('record', label, 'ok',
      `SHA-256 over the salt, the principal and the ${payload.length}-byte payload equals the leaf's commitment`);
  } catch (e) {
    return check('record', label, 'failed', e.message);
  }
}

function entryCards(entry, envelope) {
  const r = entry.record;
  let recordState = 'readable';
  if (entry.erased) {
    recordState = h('span', {}, h('span', { class: 'tag tag-erased' }, 'erased'), ' by entry ',
      h('a', { href: `#/entry/${entry.erased.erasure_index}` }, `#${entry.erased.erasure_index}`));
  } else if (!r) {
    recordState = h('span', { class: 'tag' }, 'withheld from this token');
  }
  const leafCard = card('Leaf envelope (public)',
    fields([
      ['Sequenced', h('span', { title: `${entry.timestamp} ms since the Unix epoch` }, fmtTime(entry.timestamp))],
      ['Event type', h('span', { id: 'entry-event-type' }, escapedText(entry.event_type))],
      ['Content type', escapedText(entry.content_type)],
      ['Payload size', `${fmtBytes(entry.payload_size)} (${entry.payload_size} bytes)`],
      ['Commitment', mono(entry.commitment)],
      ['Leaf hash (server)', mono(entry.leaf_hash)],
    ]),
    envelope ? h('details', {}, h('summary', {}, `Envelope re-encoded in this browser (${envelope.length} bytes, CBOR)`),
      h('pre', { class: 'note-text' }, v.toHex(envelope))) : null);
  const recordCard = card('Private record',
    fields([
      ['Status', recordState],
      ['Principal', r ? h('span', { id: 'entry-principal' }, escapedText(r.principal)) : undefined],
    ]),
    r ? payloadView(entry.content_type, r.payload_base64) : null,
    r ? h('details', {}, h('summary', {}, 'Salt (secret: it keeps the commitment from being guessed)'), h('pre', { class: 'note-text' }, r.salt)) : null);
  return [leafCard, recordCard];
}

function isJsonMedia(contentType) {
  const essence = contentType.split(';')[0].trim().toLowerCase();
  return essence === 'application/json' || essence.endsWith('+json');
}

/** The payload: pretty JSON, else UTF-8 text, else base64; invisible characters escaped. */
function payloadView(contentType, payloadBase64) {
  let bytes;
  try {
    bytes = v.fromBase64(payloadBase64);
  } catch (e) {
    return errorBox(e);
  }
  let kind = 'binary, shown as base64';
  let text = v.toBase64(bytes);
  try {
    const s = v.decodeUtf8(bytes);
    kind = 'text';
    text = s;
    if (isJsonMedia(contentType)) {
      text = JSON.stringify(JSON.parse(s), null, 2);
      kind = 'JSON, pretty-printed';
    }
  } catch {
    // Not UTF-8 (base64 it is), or not JSON after all (shown as the text it is).
  }
  if (bytes.length === 0) return note('The payload is empty.');
  return h('div', {},
    h('h3', {}, 'Payload ', h('span', { class: 'muted' }, `(${kind})`)),
    h('pre', { class: 'payload', id: 'entry-payload' }, escapedText(text, { multiline: true })));
}
