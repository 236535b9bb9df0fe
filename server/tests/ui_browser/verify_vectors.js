// Checks of verify.js and dom.js against values sealtrail-spec computed (server/tests/ui_browser/
// vectors.rs), run in the browser by server/tests/ui_browser.rs as the body of an async function
// with `v` (verify.js), `dom` (dom.js) and `data`. Returns {fails, counts}: every check that did
// not hold, and how many proofs were checked.
const fails = [];
const expect = (cond, what) => { if (!cond) fails.push(what); };
const throws = async (f, what) => {
  try { await f(); fails.push(`${what}: did not throw`); } catch (e) {
    if (!(e instanceof v.VerifyError)) fails.push(`${what}: ${e}`);
  }
};
const b = v.fromBase64;
// Envelopes: byte for byte, and the leaf hash.
for (const c of data.envelopes) {
  const env = v.encodeEnvelope(c.fields);
  expect(v.toHex(env) === c.envelope, `envelope ${JSON.stringify(c.fields)}: ${v.toHex(env)}`);
  expect(v.toHex(await v.leafHash(env)) === c.leaf_hash, `leaf hash ${c.leaf_hash}`);
}
// leaf-envelope.md Example A.
const a = v.encodeEnvelope({ timestamp: 1700000000000, content_type: 'application/json', event_type: 'login',
  payload_size: 11, commitment: '2c8763cdcf7ccc6668ca4dd441731dd17590a2195fb0d3e2c96da9519a9b7da2' });
expect(v.toHex(await v.leafHash(a)) === 'b72bbaf3e95e63e0c3d6831d05269225493281cfe8b5f94e434538f7d2eb65ed', 'example A');
const salt = Uint8Array.from({ length: 32 }, (_, i) => i);
expect(v.toHex(await v.recordCommitment(salt, 'alice', v.utf8('{"ok":true}'))) ===
  '2c8763cdcf7ccc6668ca4dd441731dd17590a2195fb0d3e2c96da9519a9b7da2', 'example A commitment');
await throws(() => v.encodeEnvelope({ ...data.envelopes[0].fields, event_type: '' }), 'empty event type');
await throws(() => v.encodeEnvelope({ ...data.envelopes[0].fields, event_type: 'a\u0007' }), 'control character');
await throws(() => v.encodeEnvelope({ ...data.envelopes[0].fields, timestamp: 2 ** 53 }), 'unsafe integer');
for (const r of data.records) {
  const got = await v.recordCommitment(v.fromHex(r.salt), r.principal, b(r.payload));
  expect(v.toHex(got) === r.commitment, `commitment for ${r.principal}`);
}
// Every inclusion proof verifies; altered ones do not.
for (const c of data.inclusion) {
  const proof = c.proof.map(b);
  try { await v.verifyInclusion(c.index, c.size, b(c.leaf), proof, b(c.root)); }
  catch (e) { fails.push(`inclusion ${c.index}/${c.size}: ${e.message}`); }
  for (let k = 0; k < proof.length; k++) {
    const bad = proof.map((h) => h.slice());
    bad[k][0] ^= 1;
    await throws(() => v.verifyInclusion(c.index, c.size, b(c.leaf), bad, b(c.root)), `inclusion ${c.index}/${c.size} hash ${k} flipped`);
  }
  await throws(() => v.verifyInclusion(c.index, c.size, b(c.leaf), [...proof, b(c.root)], b(c.root)), `inclusion ${c.index}/${c.size} extra hash`);
  if (proof.length > 0) await throws(() => v.verifyInclusion(c.index, c.size, b(c.leaf), proof.slice(0, -1), b(c.root)), `inclusion ${c.index}/${c.size} missing hash`);
  if (c.size > 1) await throws(() => v.verifyInclusion((c.index + 1) % c.size, c.size, b(c.leaf), proof, b(c.root)), `inclusion ${c.index}/${c.size} other index`);
  await throws(() => v.verifyInclusion(c.size, c.size, b(c.leaf), proof, b(c.root)), `inclusion index = size ${c.size}`);
}
// Every consistency proof verifies; altered ones do not.
for (const c of data.consistency) {
  const proof = c.proof.map(b);
  try { await v.verifyConsistency(c.first, c.second, b(c.first_root), b(c.second_root), proof); }
  catch (e) { fails.push(`consistency ${c.first}->${c.second}: ${e.message}`); }
  for (let k = 0; k < proof.length; k++) {
    const bad = proof.map((h) => h.slice());
    bad[k][31] ^= 0x80;
    await throws(() => v.verifyConsistency(c.first, c.second, b(c.first_root), b(c.second_root), bad), `consistency ${c.first}->${c.second} hash ${k} flipped`);
  }
  // From the empty tree every tree is consistent (c2sp-digest 1.3): no root to get wrong.
  if (c.first !== c.second && c.first > 0) {
    const wrong = b(c.second_root); wrong[0] ^= 1;
    await throws(() => v.verifyConsistency(c.first, c.second, b(c.first_root), wrong, proof), `consistency ${c.first}->${c.second} wrong new root`);
    const wrongOld = b(c.first_root); wrongOld[0] ^= 1;
    await throws(() => v.verifyConsistency(c.first, c.second, wrongOld, b(c.second_root), proof), `consistency ${c.first}->${c.second} wrong old root`);
    await throws(() => v.verifyConsistency(c.first, c.second, b(c.first_root), b(c.second_root), [...proof, proof[0]]), `consistency ${c.first}->${c.second} extra hash`);
  }
  if (c.first === 0 && c.second > 0) {
    const notEmpty = b(c.second_root);
    await throws(() => v.verifyConsistency(0, c.second, notEmpty, b(c.second_root), []), `consistency 0->${c.second} with a non-empty old root`);
    await throws(() => v.verifyConsistency(0, c.second, b(c.first_root), b(c.second_root), [notEmpty]), `consistency 0->${c.second} with a non-empty proof`);
  }
  await throws(() => v.verifyConsistency(c.second + 1, c.second, b(c.first_root), b(c.second_root), proof), `consistency backwards`);
}
// Signed notes, cosignatures and the 2-of-3 policy.
const w = data.witnessed;
const key = await v.parseVkey(w.vkey);
const policy = await v.parsePolicy(w.policy);
const open = async (text) => v.openCheckpoint(v.utf8(text), key);
const met = await v.evaluatePolicy(policy, (await open(w.met)).note);
expect(met.met === true, 'quorum met with w1 and w3 (w3 given as a type-0x01 key)');
expect(met.witnesses.map((x) => x.timestamp === null ? '-' : String(x.timestamp)).join() === '1700000000,-,1700000002', `timestamps ${JSON.stringify(met.witnesses.map((x) => String(x.timestamp)))}`);
expect((await v.evaluatePolicy(policy, (await open(w.one)).note)).met === false, 'one cosignature is not a quorum');
expect((await v.evaluatePolicy(policy, (await open(w.none)).note)).met === false, 'no cosignature is not a quorum');
await throws(async () => v.evaluatePolicy(policy, (await open(w.invalid)).note), 'an invalid cosignature of a listed witness');
await throws(() => open(w.met.replace('\n7\n', '\n8\n')), 'altered checkpoint text');
await throws(() => open(w.bad_log_signature), 'altered log signature');
await throws(() => v.parseVkey(w.vkey.replace(/\+[0-9a-f]{8}\+/, '+00000000+')), 'wrong key ID');
// c2sp-digest 8.5 (b) and (d): the x/mod PeterNeumann note and the cosignature vector.
const pn = await v.parseVkey('PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW');
const pnNote = v.parseNote(v.utf8("If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"));
await v.verifyNoteSignature(pnNote, pn);
const cosigner = await v.cosignerFromVkey('witness.example/w1+cc9a7044+BBpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW');
const sofa = v.parseNote(v.utf8('example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n\u2014 witness.example/w1 zJpwRAAAAABkGFDLJeR//pqzhnEKVvEm2wWbh2RJ6oru5+cUUfm5X9NnlaGr8aSH9QE5RVZD4QGlxl2F5UpVIIi94p178KLfqPPsAA==\n'));
expect(sofa.signatures[0].id === cosigner.id, 'cosigner key ID');
expect(await v.verifyCosignature(cosigner, sofa.signatures[0].signature, sofa.textBytes) === 1679315147n, 'cosignature vector');
// A tlog-proof with an extra line.
const tp = v.parseTlogProof(v.utf8(data.tlog.proof));
const tpc = await v.openCheckpoint(tp.checkpoint, key);
await v.verifyInclusion(tp.index, tpc.checkpoint.size, b(data.tlog.leaf), tp.proof, tpc.checkpoint.root);
expect(tp.index === 9n, 'tlog-proof index');
// Escaping for display.
for (const [input, shown] of [
  ['user\u202enigol', 'user\\u{202E}nigol'], ['a\u200bb', 'a\\u{200B}b'], ['soft\u00adhyphen', 'soft\\u{00AD}hyphen'],
  ['\ufeffbom', '\\u{FEFF}bom'], ['x\u2066y\u2069', 'x\\u{2066}y\\u{2069}'], ['bell\u0007', 'bell\\u{0007}'],
  ['tag\u{e0041}', 'tag\\u{E0041}'], ['nbsp\u00a0x', 'nbsp\\u{00A0}x'], ['plain user.login', 'plain user.login'],
  ['caf\u00e9 \u65e5\u672c', 'caf\u00e9 \u65e5\u672c'],
]) {
  const el = dom.escapedText(input);
  expect(el.textContent === shown, `escaped ${JSON.stringify(input)} as ${JSON.stringify(el.textContent)}`);
}
expect(dom.escapedText('a\nb\u202e', { multiline: true }).textContent === 'a\nb\\u{202E}', 'multiline keeps newlines');
return { fails, counts: [data.inclusion.length, data.consistency.length] };
