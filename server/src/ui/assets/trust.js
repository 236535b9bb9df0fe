// What the browser trusts, and the checks every view shares: the log's key (pinned by the user,
// or the one the server announces, flagged as such), the witness policy, and checkpoints verified
// against both. A check is {id, label, state, detail}; state is ok, failed, warn (passes, with a
// caveat), skipped or info.

import * as api from './api.js';
import * as v from './verify.js';
import { fmtTime } from './dom.js';

export function check(id, label, state, detail) {
  return { id, label, state, detail };
}

/**
 * The log key and witness policy to verify with. The key is the pinned one when the user pinned
 * one (a server announcing another fails the "Log key" check), else the server's, trusted on
 * first use. The policy is the pinned one, else the server's `witness_policy`.
 */
export async function trustAnchor(log) {
  const checks = [];
  const pinned = api.getPinnedKey();
  let key = null;
  try {
    if (pinned) {
      key = await v.parseVkey(pinned);
      if (pinned !== log.verifier_key) {
        checks.push(check('log-key', 'Log key', 'failed',
          `the server announces ${log.verifier_key}, but the pinned key is ${pinned}`));
      } else {
        checks.push(check('log-key', 'Log key', 'ok', `pinned: ${key.name}+${v.keyIdHex(key.id)}`));
      }
    } else {
      key = await v.parseVkey(log.verifier_key);
      checks.push(check('log-key', 'Log key', 'warn',
        `not pinned: using the key the server announces, ${key.name}+${v.keyIdHex(key.id)}. ` +
        'Pin it (Overview or Settings) so that a change is caught.'));
    }
  } catch (e) {
    checks.push(check('log-key', 'Log key', 'failed', e.message));
  }
  const pinnedPolicy = api.getPinnedPolicy();
  const policyText = pinnedPolicy || log.witness_policy || '';
  let policy = null;
  let policyError = null;
  if (policyText) {
    try {
      policy = await v.parsePolicy(policyText);
      if (key && policy.logs.length > 0 && !policy.logs.some((l) => v.bytesEqual(l.publicKey, key.publicKey))) {
        policyError = 'the witness policy does not list this log key';
      }
    } catch (e) {
      policyError = e.message;
    }
  }
  return {
    key,
    checks,
    policy,
    policyError,
    policySource: policyText ? (pinnedPolicy ? 'pinned' : 'server') : null,
  };
}

function describeWitnesses(result) {
  return result.witnesses
    .map((w) => `${w.name} ${w.timestamp === null ? 'did not cosign' : `cosigned at ${fmtTime(Number(w.timestamp) * 1000, { seconds: true })}`}`)
    .join('; ');
}

/** The witness check of a parsed note against the anchor's policy. */
export async function witnessCheck(note, anchor) {
  const label = 'Witness cosignatures';
  if (!anchor.policy && !anchor.policyError) {
    return { check: check('witnesses', label, 'skipped', 'the log has no witness policy'), result: null };
  }
  if (anchor.policyError) {
    return { check: check('witnesses', label, 'failed', `witness policy: ${anchor.policyError}`), result: null };
  }
  if (!note) return { check: check('witnesses', label, 'failed', 'no checkpoint to check'), result: null };
  try {
    const result = await v.evaluatePolicy(anchor.policy, note);
    const source = anchor.policySource === 'pinned' ? 'pinned policy' : "server's policy";
    const state = result.met ? 'ok' : 'failed';
    const head = `quorum (${result.rule}) ${result.met ? 'met' : 'NOT met'}`;
    return { check: check('witnesses', label, state, `${head} (${source}): ${describeWitnesses(result) || 'no witnesses'}`), result };
  } catch (e) {
    return { check: check('witnesses', label, 'failed', e.message), result: null };
  }
}

/**
 * Verifies a checkpoint note: the log's signature, then the cosignatures and quorum. Returns
 * {opened: {note, checkpoint} | null, checks, witnesses}. A checkpoint whose log signature
 * verifies is remembered for the consistency view.
 */
export async function checkCheckpoint(bytes, anchor, { witnesses = true } = {}) {
  const checks = [];
  let opened = null;
  if (!anchor.key) {
    checks.push(check('checkpoint-signature', 'Checkpoint signature', 'failed', 'no usable log key'));
  } else {
    try {
      opened = await v.openCheckpoint(bytes, anchor.key);
      const cp = opened.checkpoint;
      checks.push(check('checkpoint-signature', 'Checkpoint signature', 'ok',
        `Ed25519 signature by ${anchor.key.name}+${v.keyIdHex(anchor.key.id)} on the checkpoint of size ${cp.size}`));
      api.rememberCheckpoint(cp.origin, cp.size, new TextDecoder().decode(bytes));
    } catch (e) {
      checks.push(check('checkpoint-signature', 'Checkpoint signature', 'failed', e.message));
    }
  }
  let witnessResult = null;
  if (witnesses) {
    let note = opened?.note ?? null;
    if (!note) {
      try {
        note = v.parseNote(bytes);
      } catch {
        note = null;
      }
    }
    const w = await witnessCheck(note, anchor);
    checks.push(w.check);
    witnessResult = w.result;
  }
  return { opened, checks, witnesses: witnessResult };
}

/** The overall result of a list of checks: failed if any failed, else ok. */
export function summarize(checks) {
  const failed = checks.filter((c) => c.state === 'failed');
  if (failed.length > 0) {
    return { state: 'failed', text: `verification failed: ${failed.map((c) => c.label.toLowerCase()).join(', ')}` };
  }
  return { state: 'ok', text: 'verified' };
}
