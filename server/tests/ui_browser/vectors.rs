//! Values computed by `sealtrail-spec` for checking `verify.js` in the browser (the checks are
//! `verify_vectors.js`): leaf envelopes at every CBOR head width, record commitments, every
//! inclusion and consistency proof of the trees of 1 to 20 leaves, a checkpoint signed by the log
//! and cosigned under a 2-of-3 witness policy (and broken variants), and a tlog-proof.
#![allow(unreachable_pub)]

use serde_json::{Value, json};

use super::common::{ORIGIN, signer};
use super::{BIDI_TYPE, ZWSP_PRINCIPAL};

/// Everything `verify_vectors.js` reads as `data`.
pub fn data() -> Value {
    let (inclusion, consistency) = proof_cases();
    json!({
        "envelopes": envelope_cases(),
        "records": record_cases(),
        "inclusion": inclusion,
        "consistency": consistency,
        "witnessed": witnessed_cases(),
        "tlog": tlog_proof_case(),
    })
}

fn b64(h: &sealtrail_spec::Hash) -> String {
    h.to_base64()
}

/// Leaf hashes of a tree of `n` leaves.
fn leaves(n: u64) -> Vec<sealtrail_spec::Hash> {
    (0..n)
        .map(|i| sealtrail_spec::leaf_hash(format!("leaf {i}").as_bytes()))
        .collect()
}

fn envelope_cases() -> Value {
    use sealtrail_spec::envelope::LeafEnvelope;
    let cases: Vec<(u64, String, Option<String>, u64)> = vec![
        (0, "a".into(), None, 0),
        (23, "application/json".into(), Some("x".into()), 23),
        (24, "text/plain".into(), Some(BIDI_TYPE.into()), 24),
        (255, "a".repeat(256), Some("é".repeat(64)), 255),
        (256, "application/cbor".into(), Some("\u{200B}".into()), 256),
        (65_535, "b".into(), None, 65_536),
        (
            4_294_967_295,
            "c".into(),
            Some("t".repeat(128)),
            4_294_967_296,
        ),
        (
            1_700_000_000_000,
            "application/json".into(),
            Some("login".into()),
            11,
        ),
        ((1 << 53) - 1, "d".into(), None, (1 << 53) - 1),
    ];
    let out: Vec<Value> = cases
        .into_iter()
        .enumerate()
        .map(|(i, (time_ms, content_type, event_type, payload_size))| {
            let commitment = [i as u8 ^ 0xa5; 32];
            let env = LeafEnvelope {
                time_ms,
                content_type: content_type.clone(),
                event_type: event_type.clone(),
                payload_size,
                commitment,
            };
            let bytes = env.encode().unwrap();
            json!({
                "fields": {"timestamp": time_ms, "content_type": content_type,
                           "event_type": event_type, "payload_size": payload_size,
                           "commitment": sealtrail_spec::to_hex(&commitment)},
                "envelope": sealtrail_spec::to_hex(&bytes),
                "leaf_hash": sealtrail_spec::leaf_hash(&bytes).to_hex(),
            })
        })
        .collect();
    json!(out)
}

fn record_cases() -> Value {
    let cases = [
        ("alice", b"{\"ok\":true}".to_vec()),
        (ZWSP_PRINCIPAL, vec![]),
        ("anonymous", vec![0xff; 300]),
    ];
    json!(
        cases
            .iter()
            .enumerate()
            .map(|(i, (principal, payload))| {
                let salt = [i as u8; 32];
                json!({
                    "salt": sealtrail_spec::to_hex(&salt),
                    "principal": principal,
                    "payload": base64_std(payload),
                    "commitment": sealtrail_spec::to_hex(
                        &sealtrail_spec::record::commitment(&salt, principal, payload)),
                })
            })
            .collect::<Vec<_>>()
    )
}

fn base64_std(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn proof_cases() -> (Value, Value) {
    use sealtrail_spec::merkle::{LeafHashes, consistency_proof, inclusion_proof, tree_hash};
    let all = leaves(20);
    let mut inclusion = Vec::new();
    let mut consistency = Vec::new();
    for n in 1..=20u64 {
        let tree = &all[..n as usize];
        let root = tree_hash(tree);
        for i in 0..n {
            let p = inclusion_proof(i, n, &mut LeafHashes(tree)).unwrap();
            inclusion.push(
                json!({"index": i, "size": n, "leaf": b64(&tree[i as usize]),
                "root": b64(&root), "proof": p.iter().map(b64).collect::<Vec<_>>()}),
            );
        }
        for m in 0..=n {
            let p = consistency_proof(m, n, &mut LeafHashes(tree)).unwrap();
            consistency.push(json!({"first": m, "second": n,
                "first_root": b64(&tree_hash(&tree[..m as usize])), "second_root": b64(&root),
                "proof": p.iter().map(b64).collect::<Vec<_>>()}));
        }
    }
    (json!(inclusion), json!(consistency))
}

/// A checkpoint signed by the log, cosigned by witnesses 1 and 3 of a 2-of-3 policy (witness 3
/// given as a type-0x01 key), and variants.
fn witnessed_cases() -> Value {
    use sealtrail_spec::checkpoint::Checkpoint;
    use sealtrail_spec::cosignature::Cosigner;
    use sealtrail_spec::note::{Ed25519Signer, Note};
    let root = sealtrail_spec::merkle::tree_hash(&leaves(7));
    let text = Checkpoint::new(ORIGIN, 7, root).unwrap().to_text();
    let cosigners: Vec<Cosigner> = (1..=3)
        .map(|i| Cosigner::from_seed(&format!("w{i}.witness.example"), [40 + i; 32]).unwrap())
        .collect();
    let w3_note_key = Ed25519Signer::from_seed("w3.witness.example", [43; 32])
        .unwrap()
        .verifier()
        .to_vkey();
    let policy = format!(
        "# test policy\nlog {}\nwitness w1 {}\nwitness w2 {}\nwitness w3 {}\ngroup g 2 w1 w2 w3\nquorum g\n",
        signer().verifier().to_vkey(),
        cosigners[0].verifier().to_vkey(),
        cosigners[1].verifier().to_vkey(),
        w3_note_key,
    );
    sealtrail_spec::policy::Policy::parse(policy.as_bytes()).expect("a valid policy");
    let signed = |who: &[usize]| {
        let mut note = Note::sign(&text, &[&signer()]).unwrap();
        for &w in who {
            note.push_signature(
                cosigners[w]
                    .cosign(&text, 1_700_000_000 + w as u64)
                    .unwrap(),
            )
            .unwrap();
        }
        String::from_utf8(note.to_bytes()).unwrap()
    };
    let met = signed(&[0, 2]);
    // The log's signature with one bit of the signature flipped.
    let bad_log_signature = {
        let (text_part, sigs) = met.split_once("\n\n").unwrap();
        let (log_line, rest) = sigs.split_once('\n').unwrap();
        let (head, b) = log_line.rsplit_once(' ').unwrap();
        let mut bytes = base64_decode(b);
        bytes[10] ^= 1;
        format!("{text_part}\n\n{head} {}\n{rest}", base64_std(&bytes))
    };
    // A cosignature whose timestamp was changed after signing.
    let bad_line = {
        let line = cosigners[1].cosign(&text, 5).unwrap().to_line();
        let sig = line.trim_end();
        let (head, b) = sig.rsplit_once(' ').unwrap();
        let mut bytes = base64_decode(b);
        bytes[7] ^= 1; // a byte of the timestamp (after the 4-byte key ID)
        format!("{head} {}", base64_std(&bytes))
    };
    let invalid = format!("{met}{bad_line}\n");
    json!({
        "vkey": signer().verifier().to_vkey(),
        "policy": policy,
        "met": met,
        "one": signed(&[1]),
        "none": signed(&[]),
        "invalid": invalid,
        "bad_log_signature": bad_log_signature,
    })
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

fn tlog_proof_case() -> Value {
    use sealtrail_spec::checkpoint::Checkpoint;
    use sealtrail_spec::merkle::{LeafHashes, inclusion_proof, tree_hash};
    use sealtrail_spec::note::Note;
    let tree = leaves(11);
    let text = Checkpoint::new(ORIGIN, 11, tree_hash(&tree))
        .unwrap()
        .to_text();
    let note = Note::sign(&text, &[&signer()]).unwrap().to_bytes();
    let path = inclusion_proof(9, 11, &mut LeafHashes(&tree)).unwrap();
    let proof = sealtrail_spec::tlog_proof::TlogProof::new(9, path, note, Some(b"x".to_vec()))
        .unwrap()
        .to_bytes();
    json!({"proof": String::from_utf8(proof).unwrap(), "leaf": b64(&tree[9])})
}
