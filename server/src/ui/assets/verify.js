// Pure verification functions of the sealtrail web explorer: bytes in, results out. No DOM, no
// network. Functions are async only where Web Crypto is (SHA-256 and Ed25519 via crypto.subtle).
//
// Formats, with the sections they follow:
//   - the leaf envelope and the record commitment: spec/docs/leaf-envelope.md sections 3 to 5, 10;
//   - Merkle proofs: RFC 9162 sections 2.1.3.2 (inclusion) and 2.1.4.2 (consistency), as written
//     out in c2sp-digest sections 1.4 and 1.5;
//   - signed notes, vkeys and key IDs: c2sp.org/signed-note (c2sp-digest section 2);
//   - checkpoints: c2sp.org/tlog-checkpoint (section 3);
//   - cosignatures: c2sp.org/tlog-cosignature, type 0x04 "cosignature/v1" (section 4);
//   - witness policies: c2sp.org/tlog-policy (section 7.3);
//   - proofs: c2sp.org/tlog-proof@v1 (section 7.1).
//
// Every function throws a VerifyError saying what is wrong; callers turn it into a failed check.

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder('utf-8', { fatal: true });

/** A check that did not pass, with a message for people. */
export class VerifyError extends Error {
  constructor(message) {
    super(message);
    this.name = 'VerifyError';
  }
}

function fail(message) {
  throw new VerifyError(message);
}

// ---------------------------------------------------------------------------------------------
// Bytes

/** The UTF-8 bytes of a string. */
export function utf8(s) {
  return encoder.encode(s);
}

/** Bytes as text, refusing anything that is not valid UTF-8. */
export function decodeUtf8(bytes) {
  try {
    return strictDecoder.decode(bytes);
  } catch {
    fail('not valid UTF-8');
  }
}

export function concat(...parts) {
  const arrays = parts.map((p) => (p instanceof Uint8Array ? p : Uint8Array.from(p)));
  const out = new Uint8Array(arrays.reduce((n, a) => n + a.length, 0));
  let at = 0;
  for (const a of arrays) {
    out.set(a, at);
    at += a.length;
  }
  return out;
}

export function bytesEqual(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

export function toHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** Lowercase hex only, as the API writes it. */
export function fromHex(s) {
  if (typeof s !== 'string' || !/^(?:[0-9a-f]{2})*$/.test(s)) fail('not lowercase hex');
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function toBase64(bytes) {
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}

/** Standard, padded base64 in its one canonical form (as in notes and checkpoints). */
export function fromBase64(s) {
  if (typeof s !== 'string' || s.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(s)) {
    fail('not standard padded base64');
  }
  const bin = atob(s);
  const out = Uint8Array.from(bin, (c) => c.charCodeAt(0));
  if (toBase64(out) !== s) fail('not canonical base64');
  return out;
}

/** An unsigned 64-bit integer, big-endian. */
export function u64be(n) {
  const v = BigInt(n);
  if (v < 0n || v >= 1n << 64n) fail(`${n} does not fit 64 bits`);
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, v);
  return out;
}

/** A canonical decimal (ASCII digits, no sign, no leading zeros) below 2^64, as a BigInt. */
export function parseDecimal(s) {
  if (typeof s !== 'string' || !/^(?:0|[1-9][0-9]*)$/.test(s)) fail(`${JSON.stringify(s)} is not a canonical decimal`);
  const v = BigInt(s);
  if (v >= 1n << 64n) fail(`${s} does not fit 64 bits`);
  return v;
}

export async function sha256(...parts) {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', concat(...parts)));
}

// ---------------------------------------------------------------------------------------------
// The leaf envelope (leaf-envelope.md sections 3 and 4) and the record commitment (section 5)

const HASH_SIZE = 32;
const MAX_CONTENT_TYPE = 256;
const MAX_EVENT_TYPE = 128;
/** The domain of the record commitment (section 5). */
const RECORD_DOMAIN = 'sealtrail/record/v1';

/** A JSON number or BigInt that is an exact unsigned 64-bit integer. */
function uint(value, what) {
  if (typeof value === 'bigint') {
    if (value >= 0n && value < 1n << 64n) return value;
  } else if (Number.isSafeInteger(value) && value >= 0) {
    return BigInt(value);
  }
  fail(`${what} is not an exact unsigned integer: ${value}`);
}

/**
 * The head of a CBOR item in its shortest form (RFC 8949 section 4.2.1, leaf-envelope.md section
 * 4 rule 3): arguments below 24 in the initial byte, then 1, 2, 4 or 8 big-endian bytes.
 */
function cborHead(major, value) {
  const v = BigInt(value);
  const initial = major << 5;
  if (v < 24n) return [initial | Number(v)];
  const widths = [
    [0x100n, 24, 1],
    [0x10000n, 25, 2],
    [0x100000000n, 26, 4],
    [1n << 64n, 27, 8],
  ];
  for (const [limit, info, bytes] of widths) {
    if (v < limit) {
      const out = [initial | info];
      for (let i = bytes - 1; i >= 0; i--) out.push(Number((v >> BigInt(8 * i)) & 0xffn));
      return out;
    }
  }
  fail(`${value} does not fit a CBOR head`);
}

function cborText(s) {
  const b = utf8(s);
  return concat(cborHead(3, b.length), b);
}

/** Control characters: general category Cc (leaf-envelope.md section 3, "Text rules"). */
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/u;

/**
 * Encodes a leaf envelope from its public fields, deterministically (leaf-envelope.md section 4):
 * a map of 5 or 6 pairs, keys 0, 1, 2, (3,) 4, 5 in order, shortest heads, definite lengths.
 * `fields` is the API's entry object: timestamp, content_type, event_type (or null),
 * payload_size and commitment (hex).
 */
export function encodeEnvelope(fields) {
  const time = uint(fields.timestamp, 'the timestamp');
  const size = uint(fields.payload_size, 'the payload size');
  const ct = fields.content_type;
  if (typeof ct !== 'string' || !/^[\x20-\x7e]+$/.test(ct) || ct.length > MAX_CONTENT_TYPE) {
    fail('the content type is not 1 to 256 bytes of printable ASCII');
  }
  const et = fields.event_type;
  if (et !== null && et !== undefined) {
    const n = typeof et === 'string' ? utf8(et).length : 0;
    if (n < 1 || n > MAX_EVENT_TYPE || CONTROL.test(et)) {
      fail('the event type is not 1 to 128 bytes without control characters');
    }
  }
  const commitment = fromHex(fields.commitment);
  if (commitment.length !== HASH_SIZE) fail('the commitment is not 32 bytes');
  const hasType = et !== null && et !== undefined;
  return concat(
    cborHead(5, hasType ? 6 : 5),
    [0x00, 0x02], // 0: version 2
    [0x01], cborHead(0, time), // 1: sequencing time, ms
    [0x02], cborText(ct), // 2: content type
    hasType ? concat([0x03], cborText(et)) : [], // 3: event type, absent when none
    [0x04], cborHead(0, size), // 4: payload size
    [0x05], cborHead(2, HASH_SIZE), commitment, // 5: commitment, always 58 20 ...
  );
}

/** The RFC 6962 leaf hash of an envelope: SHA-256(0x00 || envelope) (section 10). */
export function leafHash(envelope) {
  return sha256([0x00], envelope);
}

/**
 * The commitment to a private record (leaf-envelope.md section 5):
 * SHA-256("sealtrail/record/v1" || 0x00 || salt || u64be(len principal) || principal
 *         || u64be(len payload) || payload).
 */
export function recordCommitment(salt, principal, payload) {
  if (salt.length !== HASH_SIZE) fail('the salt is not 32 bytes');
  const p = utf8(principal);
  return sha256(utf8(RECORD_DOMAIN), [0x00], salt, u64be(p.length), p, u64be(payload.length), payload);
}

// ---------------------------------------------------------------------------------------------
// Merkle proofs (RFC 9162 section 2.1; c2sp-digest sections 1.4 and 1.5). Indexes and sizes are
// BigInts: JavaScript's bit operators on numbers are 32-bit.

/** The hash of an interior node: SHA-256(0x01 || left || right). */
function nodeHash(left, right) {
  return sha256([0x01], left, right);
}

/** The empty tree's root, SHA-256 of nothing. */
export function emptyRoot() {
  return sha256();
}

function checkHashes(hashes, what) {
  for (const h of hashes) {
    if (!(h instanceof Uint8Array) || h.length !== HASH_SIZE) fail(`${what}: a hash is not 32 bytes`);
  }
}

/** Shifts fn and sn right until fn is odd or zero (the inner loop of both verifiers). */
function climb(fn, sn) {
  while ((fn & 1n) === 0n && fn !== 0n) {
    fn >>= 1n;
    sn >>= 1n;
  }
  return [fn, sn];
}

/**
 * Checks that `leaf` is at `index` in the tree of `size` whose root is `root`, with the audit
 * path `proof` (RFC 9162 section 2.1.3.2). Throws if not.
 */
export async function verifyInclusion(index, size, leaf, proof, root) {
  const i = BigInt(index);
  const n = BigInt(size);
  if (i < 0n || i >= n) fail(`index ${i} is not in a tree of size ${n}`);
  checkHashes([leaf, root, ...proof], 'inclusion proof');
  let fn = i;
  let sn = n - 1n;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0n) fail('the inclusion proof has too many hashes');
    if ((fn & 1n) === 1n || fn === sn) {
      r = await nodeHash(p, r);
      if ((fn & 1n) === 0n) [fn, sn] = climb(fn, sn);
    } else {
      r = await nodeHash(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) fail('the inclusion proof has too few hashes');
  if (!bytesEqual(r, root)) fail('the root computed from the proof is not the signed root');
}

function isPowerOfTwo(n) {
  return n > 0n && (n & (n - 1n)) === 0n;
}

/**
 * Checks that the tree of size `first` with root `firstRoot` is a prefix of the tree of size
 * `second` with root `secondRoot` (RFC 9162 section 2.1.4.2), with the edge cases of
 * c2sp-digest section 1.3: equal sizes need an empty proof and equal roots; from the empty tree
 * the proof is empty and the first root must be the empty tree's.
 */
export async function verifyConsistency(first, second, firstRoot, secondRoot, proof) {
  const m = BigInt(first);
  const n = BigInt(second);
  checkHashes([firstRoot, secondRoot, ...proof], 'consistency proof');
  if (m < 0n || m > n) fail(`size ${m} is larger than size ${n}`);
  if (m === n) {
    if (proof.length !== 0) fail('a proof between equal sizes must be empty');
    if (!bytesEqual(firstRoot, secondRoot)) fail('two checkpoints of the same size have different roots');
    return;
  }
  if (m === 0n) {
    if (proof.length !== 0) fail('a proof from the empty tree must be empty');
    if (!bytesEqual(firstRoot, await emptyRoot())) fail('a tree of size 0 must have the empty root');
    return;
  }
  if (proof.length === 0) fail('the consistency proof is empty');
  const path = isPowerOfTwo(m) ? [firstRoot, ...proof] : proof;
  let fn = m - 1n;
  let sn = n - 1n;
  while ((fn & 1n) === 1n) {
    fn >>= 1n;
    sn >>= 1n;
  }
  let fr = path[0];
  let sr = path[0];
  for (const c of path.slice(1)) {
    if (sn === 0n) fail('the consistency proof has too many hashes');
    if ((fn & 1n) === 1n || fn === sn) {
      fr = await nodeHash(c, fr);
      sr = await nodeHash(c, sr);
      if ((fn & 1n) === 0n) [fn, sn] = climb(fn, sn);
    } else {
      sr = await nodeHash(sr, c);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) fail('the consistency proof has too few hashes');
  if (!bytesEqual(fr, firstRoot)) fail('the proof does not lead to the older signed root');
  if (!bytesEqual(sr, secondRoot)) fail('the proof does not lead to the newer signed root');
}

// ---------------------------------------------------------------------------------------------
// Signed notes (c2sp.org/signed-note; c2sp-digest sections 2.1 to 2.6)

/** The signature line prefix: an em dash and a space. */
const SIG_PREFIX = '\u2014 ';
/** Most signature lines we read (Go's x/mod limit; the spec asks for at least 16). */
const MAX_SIGNATURES = 100;
export const SIG_ED25519 = 0x01;
export const SIG_COSIGNATURE_V1 = 0x04;

/** A key name: non-empty, no Unicode whitespace, no '+'. */
function checkKeyName(name) {
  if (!name || /[\s+]/u.test(name)) fail(`invalid key name ${JSON.stringify(name)}`);
}

/** The key ID: the first 4 bytes of SHA-256(name || 0x0A || type || public key), as a uint32. */
export async function keyId(name, type, publicKey) {
  const d = await sha256(utf8(name), [0x0a, type], publicKey);
  return new DataView(d.buffer).getUint32(0);
}

export function keyIdHex(id) {
  return id.toString(16).padStart(8, '0');
}

/**
 * Parses a verifier key `name+hex8(key ID)+base64(type || key)` (c2sp-digest section 2.6) for an
 * Ed25519 type (0x01 or 0x04), checking that the written key ID is the key's.
 */
export async function parseVkey(vkey) {
  if (typeof vkey !== 'string') fail('no verifier key');
  const a = vkey.indexOf('+');
  const b = vkey.indexOf('+', a + 1);
  if (a < 0 || b < 0) fail('a verifier key is name+id+key');
  const name = vkey.slice(0, a);
  const idHex = vkey.slice(a + 1, b);
  checkKeyName(name);
  if (!/^[0-9a-f]{8}$/.test(idHex)) fail('the key ID of a verifier key is 8 lowercase hex digits');
  const material = fromBase64(vkey.slice(b + 1));
  if (material.length !== 33) fail('an Ed25519 verifier key holds a type byte and 32 key bytes');
  const type = material[0];
  if (type !== SIG_ED25519 && type !== SIG_COSIGNATURE_V1) fail(`key type 0x${type.toString(16)} is not supported`);
  const publicKey = material.slice(1);
  const id = await keyId(name, type, publicKey);
  if (keyIdHex(id) !== idHex) fail(`the key ID ${idHex} is not this key's (${keyIdHex(id)})`);
  return { vkey, name, id, type, publicKey };
}

/**
 * Parses a signed note (c2sp-digest section 2.1): UTF-8 without control characters but LF, the
 * text up to the last empty line, then only signature lines "— name base64(keyID || sig)".
 */
export function parseNote(bytes) {
  const s = decodeUtf8(bytes);
  if (/[\u0000-\u0009\u000b-\u001f]/.test(s)) fail('the note holds control characters');
  const split = s.lastIndexOf('\n\n');
  if (split < 0) fail('the note has no signatures');
  const text = s.slice(0, split + 1);
  const block = s.slice(split + 2);
  if (!block.endsWith('\n')) fail('the signature block does not end with a newline');
  const lines = block.slice(0, -1).split('\n');
  if (lines.length > MAX_SIGNATURES) fail('the note has too many signatures');
  const signatures = lines.map((line) => {
    if (!line.startsWith(SIG_PREFIX)) fail('a line after the note text is not a signature');
    const rest = line.slice(SIG_PREFIX.length);
    const sp = rest.indexOf(' ');
    if (sp < 0) fail('a signature line has no signature');
    const name = rest.slice(0, sp);
    checkKeyName(name);
    const blob = fromBase64(rest.slice(sp + 1));
    if (blob.length < 5) fail('a signature is too short');
    const id = new DataView(blob.buffer).getUint32(0);
    return { name, id, signature: blob.slice(4), line };
  });
  return { text, textBytes: utf8(text), signatures };
}

/** Ed25519 verification with Web Crypto (RFC 8032, pure). */
export async function ed25519Verify(publicKey, signature, message) {
  let key;
  try {
    key = await crypto.subtle.importKey('raw', publicKey, { name: 'Ed25519' }, false, ['verify']);
  } catch (e) {
    fail(`this browser cannot verify Ed25519 signatures (${e.message})`);
  }
  if (signature.length !== 64) return false;
  return crypto.subtle.verify({ name: 'Ed25519' }, key, signature, message);
}

/**
 * Verifies the note's signatures by `key` (a parsed type-0x01 vkey): lines with its name and key
 * ID must all verify, and there must be at least one (c2sp-digest section 2.4). Lines of other
 * keys are ignored here.
 */
export async function verifyNoteSignature(note, key) {
  if (key.type !== SIG_ED25519) fail('the log key is not an Ed25519 note key (type 0x01)');
  const mine = note.signatures.filter((s) => s.name === key.name && s.id === key.id);
  if (mine.length === 0) fail(`no signature by ${key.name}+${keyIdHex(key.id)}`);
  for (const s of mine) {
    if (!(await ed25519Verify(key.publicKey, s.signature, note.textBytes))) {
      fail(`the signature by ${key.name}+${keyIdHex(key.id)} does not verify`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Checkpoints (c2sp.org/tlog-checkpoint; c2sp-digest section 3)

/** The origin, size (BigInt) and root of a checkpoint note's text. */
export function parseCheckpoint(text) {
  if (!text.endsWith('\n')) fail('the checkpoint does not end with a newline');
  const lines = text.slice(0, -1).split('\n');
  if (lines.length < 3) fail('a checkpoint has at least three lines');
  const [origin, sizeText, rootText, ...extensions] = lines;
  if (!origin) fail('the checkpoint has no origin');
  const size = parseDecimal(sizeText);
  const root = fromBase64(rootText);
  if (root.length !== HASH_SIZE) fail('the checkpoint root is not 32 bytes');
  if (extensions.some((l) => l === '')) fail('the checkpoint has an empty extension line');
  return { origin, size, root, extensions };
}

/**
 * Opens a checkpoint note signed by the log `key`: parses the note, checks that the origin is
 * the key's name (sealtrail signs with a key named after the log) and verifies the signature.
 */
export async function openCheckpoint(bytes, key) {
  const note = parseNote(bytes);
  const checkpoint = parseCheckpoint(note.text);
  if (checkpoint.origin !== key.name) {
    fail(`the checkpoint is for ${JSON.stringify(checkpoint.origin)}, not for the log key's ${JSON.stringify(key.name)}`);
  }
  await verifyNoteSignature(note, key);
  return { note, checkpoint };
}

// ---------------------------------------------------------------------------------------------
// Cosignatures (c2sp.org/tlog-cosignature, type 0x04; c2sp-digest sections 4.1 and 4.2)

/** Largest cosignature timestamp: 2^63 - 1 (section 4.1). */
const MAX_TIMESTAMP = (1n << 63n) - 1n;

/**
 * A cosigner from a witness vkey. Type 0x04 is the cosigner form; a type-0x01 note key is
 * accepted and converted, its cosignatures then carrying the type-0x04 key ID (as
 * sealtrail_spec::cosignature::CosignatureVerifier::from_vkey and transparency-dev/formats do).
 */
export async function cosignerFromVkey(vkey) {
  const k = await parseVkey(vkey);
  const id = k.type === SIG_COSIGNATURE_V1 ? k.id : await keyId(k.name, SIG_COSIGNATURE_V1, k.publicKey);
  return { vkey, name: k.name, id, publicKey: k.publicKey };
}

/**
 * Verifies one cosignature line's signature (keyID stripped: timestamp(8) || Ed25519 sig(64))
 * over "cosignature/v1\ntime <timestamp>\n" || the whole checkpoint note text. Returns the
 * timestamp (POSIX seconds, BigInt).
 */
export async function verifyCosignature(cosigner, signature, noteTextBytes) {
  if (signature.length !== 72) fail(`a cosignature by ${cosigner.name} is not 72 bytes`);
  const timestamp = new DataView(signature.buffer, signature.byteOffset).getBigUint64(0);
  if (timestamp > MAX_TIMESTAMP) fail(`a cosignature by ${cosigner.name} has an invalid timestamp`);
  const message = concat(utf8(`cosignature/v1\ntime ${timestamp}\n`), noteTextBytes);
  if (!(await ed25519Verify(cosigner.publicKey, signature.slice(8), message))) {
    fail(`the cosignature by ${cosigner.name}+${keyIdHex(cosigner.id)} does not verify`);
  }
  return timestamp;
}

// ---------------------------------------------------------------------------------------------
// Witness policies (c2sp.org/tlog-policy; c2sp-digest section 7.3)

/**
 * Parses a tlog-policy text: `log <vkey> [url]`, `witness <name> <vkey> [url]`,
 * `group <name> all|any|<k> <member>...`, `quorum <name>|none`. Fields are separated by ASCII
 * spaces and tabs; blank lines and lines starting with '#' are ignored. Witnesses and groups
 * share one namespace; groups and the quorum name only earlier definitions.
 */
export async function parsePolicy(text) {
  const logs = [];
  const members = new Map(); // name -> {kind: 'witness', cosigner} | {kind: 'group', k, names}
  let quorum;
  const lines = text.split('\n');
  for (const [n, raw] of lines.entries()) {
    const line = raw.replace(/^[ \t]+|[ \t]+$/g, '');
    if (line === '' || line.startsWith('#')) continue;
    const f = line.split(/[ \t]+/);
    const where = `policy line ${n + 1}`;
    const define = (name, value) => {
      if (name === 'none' || members.has(name)) fail(`${where}: ${name} is already defined`);
      members.set(name, value);
    };
    switch (f[0]) {
      case 'log':
        if (f.length < 2 || f.length > 3) fail(`${where}: log <vkey> [<url>]`);
        logs.push(await parseVkey(f[1]));
        break;
      case 'witness':
        if (f.length < 3 || f.length > 4) fail(`${where}: witness <name> <vkey> [<url>]`);
        define(f[1], { kind: 'witness', name: f[1], cosigner: await cosignerFromVkey(f[2]) });
        break;
      case 'group': {
        if (f.length < 4) fail(`${where}: group <name> all|any|<k> <member>...`);
        const names = f.slice(3);
        if (new Set(names).size !== names.length) fail(`${where}: a member is listed twice`);
        for (const m of names) if (!members.has(m)) fail(`${where}: ${m} is not defined earlier`);
        let k;
        if (f[2] === 'all') k = names.length;
        else if (f[2] === 'any') k = 1;
        else k = Number(parseDecimal(f[2]));
        if (k < 1 || k > names.length) fail(`${where}: the threshold must be 1 to ${names.length}`);
        define(f[1], { kind: 'group', name: f[1], threshold: f[2], k, names });
        break;
      }
      case 'quorum':
        if (f.length !== 2 || quorum !== undefined) fail(`${where}: exactly one quorum <name>|none`);
        if (f[1] !== 'none' && !members.has(f[1])) fail(`${where}: ${f[1]} is not defined earlier`);
        quorum = f[1];
        break;
      default:
        fail(`${where}: unknown keyword ${JSON.stringify(f[0])}`);
    }
  }
  if (quorum === undefined) fail('the policy has no quorum line');
  const witnesses = [...members.values()].filter((m) => m.kind === 'witness');
  return { logs, members, witnesses, quorum };
}

/**
 * Evaluates a checkpoint note against a policy: every cosignature line from a listed witness must
 * verify (one that does not fails the whole note, as signed-note says for known keys), a witness
 * that cosigned more than once counts once, lines from other keys are ignored, and the quorum
 * group must be satisfied. Returns {met, witnesses: [{name, keyName, keyId, timestamp|null}]};
 * throws on an invalid cosignature.
 */
export async function evaluatePolicy(policy, note) {
  const signed = new Set();
  const witnesses = [];
  for (const w of policy.witnesses) {
    const c = w.cosigner;
    const lines = note.signatures.filter((s) => s.name === c.name && s.id === c.id);
    let timestamp = null;
    for (const l of lines) timestamp = await verifyCosignature(c, l.signature, note.textBytes);
    if (timestamp !== null) signed.add(w.name);
    witnesses.push({ name: w.name, keyName: c.name, keyId: keyIdHex(c.id), timestamp });
  }
  const satisfied = (name) => {
    const m = policy.members.get(name);
    if (m.kind === 'witness') return signed.has(name);
    return m.names.filter(satisfied).length >= m.k;
  };
  const met = policy.quorum === 'none' || satisfied(policy.quorum);
  const q = policy.members.get(policy.quorum);
  const rule = q?.kind === 'group' ? `${q.k} of ${q.names.join(', ')}` : policy.quorum;
  return { met, witnesses, quorum: policy.quorum, rule };
}

// ---------------------------------------------------------------------------------------------
// tlog-proof (c2sp.org/tlog-proof@v1; c2sp-digest section 7.1)

const TLOG_PROOF_HEADER = 'c2sp.org/tlog-proof@v1';

/** Splits a tlog-proof into its index (BigInt), audit path and checkpoint note bytes. */
export function parseTlogProof(bytes) {
  const s = decodeUtf8(bytes);
  const split = s.indexOf('\n\n');
  if (split < 0) fail('the tlog-proof has no checkpoint');
  const lines = s.slice(0, split).split('\n');
  if (lines.shift() !== TLOG_PROOF_HEADER) fail('not a c2sp.org/tlog-proof@v1');
  if (lines[0]?.startsWith('extra ')) lines.shift();
  const indexLine = lines.shift() ?? '';
  if (!indexLine.startsWith('index ')) fail('the tlog-proof has no index line');
  const index = parseDecimal(indexLine.slice('index '.length));
  const proof = lines.map((l) => fromBase64(l));
  return { index, proof, checkpoint: utf8(s.slice(split + 2)) };
}
