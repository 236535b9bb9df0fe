//! tlog-proof against proofs assembled by hand from Go-made vectors (`spec/tests/vectors/`):
//! `inclusion.json` gives the index, leaf hash and audit path in the `leaf-<i>` trees of sizes
//! 1000 and 70000, and `notes.json` the log-signed checkpoints of those trees. The proof bytes
//! are written out here with the `base64` crate, not with [`TlogProof::to_bytes`], and every
//! expected value comes from the vectors or the spec.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use common::{hashes, hx, load, u};
use sealtrail_spec::checkpoint::CheckpointError;
use sealtrail_spec::cosignature::Cosigner;
use sealtrail_spec::hash::sha256;
use sealtrail_spec::merkle::{RangeError, VerifyError};
use sealtrail_spec::note::{Ed25519Signer, Ed25519Verifier, Note, NoteError, Verifier};
use sealtrail_spec::policy::{Policy, PolicyError};
use sealtrail_spec::tlog_proof::{
    MAX_EXTRA_SIZE, MAX_PATH_LINES, MAX_PROOF_SIZE, TlogProof, TlogProofError,
};
use sealtrail_spec::{Hash, leaf_hash};

const ORIGIN: &str = "example.test/vector-log";

/// One inclusion vector with the Go-signed checkpoint of its tree.
struct Case {
    index: u64,
    size: u64,
    leaf: Hash,
    path: Vec<Hash>,
    note: String,
}

/// The Go checkpoint notes by tree size, and the log's vkey.
fn notes() -> (Vec<(u64, String)>, String) {
    let notes = load("notes.json");
    let mut by_size = Vec::new();
    for n in notes.as_array().unwrap() {
        let text = n["text"].as_str().unwrap();
        let size: u64 = text.lines().nth(1).unwrap().parse().unwrap();
        by_size.push((size, n["signed_note"].as_str().unwrap().to_owned()));
    }
    (
        by_size,
        notes[0]["verifier_key"].as_str().unwrap().to_owned(),
    )
}

/// Every inclusion vector whose tree has a Go-signed checkpoint (sizes 1000 and 70000).
fn cases() -> Vec<Case> {
    let (notes, _) = notes();
    let mut out = Vec::new();
    for v in load("inclusion.json").as_array().unwrap() {
        let size = u(&v["size"]);
        let Some((_, note)) = notes.iter().find(|(s, _)| *s == size) else {
            continue;
        };
        out.push(Case {
            index: u(&v["index"]),
            size,
            leaf: hx(&v["leaf_hash_hex"]),
            path: hashes(&v["proof_hex"]),
            note: note.clone(),
        });
    }
    assert_eq!(out.len(), 24, "12 vectors each for sizes 1000 and 70000");
    out
}

fn log_key() -> Ed25519Verifier {
    Ed25519Verifier::from_vkey(&notes().1).unwrap()
}

/// The proof's wire form, written out by hand.
fn proof_text(extra: Option<&str>, index: &str, path: &[Hash], note: &str) -> String {
    let mut s = "c2sp.org/tlog-proof@v1\n".to_owned();
    if let Some(e) = extra {
        s.push_str(&format!("extra {e}\n"));
    }
    s.push_str(&format!("index {index}\n"));
    for h in path {
        s.push_str(&B64.encode(h.0));
        s.push('\n');
    }
    s.push('\n');
    s.push_str(note);
    s
}

fn text_of(c: &Case) -> String {
    proof_text(None, &c.index.to_string(), &c.path, &c.note)
}

fn verify_plain(proof: &TlogProof, leaf: &Hash) -> Result<(), TlogProofError> {
    let key = log_key();
    proof.verify(leaf, ORIGIN, &[&key], None).map(|_| ())
}

#[test]
fn go_vectors_verify() {
    let key = log_key();
    for c in cases() {
        let text = text_of(&c);
        let proof = TlogProof::parse(text.as_bytes()).unwrap();
        assert_eq!(proof.index(), c.index);
        assert_eq!(proof.path(), c.path.as_slice());
        assert_eq!(proof.checkpoint(), c.note.as_bytes());
        assert_eq!(proof.extra(), None);
        assert_eq!(proof.to_bytes(), text.as_bytes());
        let built = TlogProof::new(c.index, c.path.clone(), c.note.clone().into_bytes(), None);
        assert_eq!(built.as_ref(), Ok(&proof));

        // The vector's leaf hash is the RFC 6962 hash of "leaf-<i>".
        let leaf = leaf_hash(format!("leaf-{}", c.index).as_bytes());
        assert_eq!(leaf, c.leaf);
        let v = proof.verify(&leaf, ORIGIN, &[&key], None).unwrap();
        assert_eq!(v.index(), c.index);
        assert_eq!(v.leaf_hash(), &leaf);
        assert_eq!(v.checkpoint().checkpoint().size(), c.size);
        assert_eq!(v.checkpoint().bytes(), c.note.as_bytes());
        assert!(v.witnesses().is_none());
    }
}

#[test]
fn second_signature_from_an_unknown_key_is_ignored() {
    // The size-1000 note also carries example.test/witness's signature, which we have no key for.
    let c = cases().into_iter().find(|c| c.size == 1000).unwrap();
    assert_eq!(
        Note::parse(c.note.as_bytes()).unwrap().signatures().len(),
        2
    );
    let proof = TlogProof::parse(text_of(&c).as_bytes()).unwrap();
    verify_plain(&proof, &c.leaf).unwrap();
}

#[test]
fn every_flipped_path_bit_fails() {
    let key = log_key();
    for c in cases()
        .iter()
        .filter(|c| [0, 23333, 69999, 999].contains(&c.index))
    {
        for h in 0..c.path.len() {
            for bit in 0..256 {
                let mut path = c.path.clone();
                path[h].0[bit / 8] ^= 1 << (bit % 8);
                let proof =
                    TlogProof::new(c.index, path, c.note.clone().into_bytes(), None).unwrap();
                let err = proof.verify(&c.leaf, ORIGIN, &[&key], None).unwrap_err();
                assert_eq!(
                    err,
                    TlogProofError::Inclusion {
                        index: c.index,
                        size: c.size,
                        source: VerifyError::RootMismatch { which: "tree" }
                    },
                    "index {} hash {h} bit {bit}",
                    c.index
                );
            }
        }
    }
}

#[test]
fn wrong_index_leaf_or_path_length_fails() {
    let key = log_key();
    let all = cases();
    for c in &all {
        let note = c.note.clone().into_bytes();
        let fails = |index: u64, leaf: &Hash, path: Vec<Hash>| {
            let proof = TlogProof::new(index, path, note.clone(), None).unwrap();
            let err = proof.verify(leaf, ORIGIN, &[&key], None).unwrap_err();
            assert_eq!(err.category(), "inclusion", "{err}");
            assert!(
                err.to_string().starts_with(&format!(
                    "leaf is not proven at index {index} of the checkpoint's tree of size {}",
                    c.size
                )),
                "{err}"
            );
        };
        // Neighbouring indices (index 0 - 1 wraps to u64::MAX), the size itself.
        for index in [c.index.wrapping_sub(1), c.index + 1, c.size, u64::MAX] {
            fails(index, &c.leaf, c.path.clone());
        }
        // Other leaves: a neighbour, and the right data hashed without RFC 6962's 0x00 prefix.
        let data = format!("leaf-{}", c.index);
        fails(
            c.index,
            &leaf_hash(format!("leaf-{}", c.index + 1).as_bytes()),
            c.path.clone(),
        );
        fails(c.index, &Hash(sha256(data.as_bytes())), c.path.clone());
        // Truncated and extended paths.
        if !c.path.is_empty() {
            fails(c.index, &c.leaf, c.path[..c.path.len() - 1].to_vec());
            fails(c.index, &c.leaf, c.path[1..].to_vec());
        }
        let mut longer = c.path.clone();
        longer.push(c.leaf);
        fails(c.index, &c.leaf, longer);
        // The path of the same index in the other tree.
        if let Some(other) = all.iter().find(|o| o.index == c.index && o.size != c.size) {
            fails(c.index, &c.leaf, other.path.clone());
        }
    }
    // An index at the size is a range error, reported as such.
    let c = &all[0];
    let proof = TlogProof::new(c.size, c.path.clone(), c.note.clone().into_bytes(), None).unwrap();
    assert_eq!(
        verify_plain(&proof, &c.leaf),
        Err(TlogProofError::Inclusion {
            index: c.size,
            size: c.size,
            source: VerifyError::Range(RangeError::IndexOutOfRange {
                index: c.size,
                size: c.size
            })
        })
    );
}

#[test]
fn wrong_log_key_or_origin_fails() {
    let c = &cases()[0];
    let proof = TlogProof::parse(text_of(c).as_bytes()).unwrap();
    // Same name, another key: the log's signature line is unknown to it.
    let other = Ed25519Signer::from_seed(ORIGIN, [7; 32])
        .unwrap()
        .verifier();
    let err = proof.verify(&c.leaf, ORIGIN, &[&other], None).unwrap_err();
    assert_eq!(
        err,
        TlogProofError::Checkpoint(CheckpointError::Note(NoteError::Unverified))
    );
    assert!(
        err.to_string().starts_with("checkpoint not accepted: "),
        "{err}"
    );
    assert_eq!(err.category(), "unverified");
    let err = proof.verify(&c.leaf, ORIGIN, &[], None).unwrap_err();
    assert_eq!(
        err,
        TlogProofError::Checkpoint(CheckpointError::Note(NoteError::Unverified))
    );

    // The right key under another name (so another key ID) does not verify either.
    let seed = hex::decode(load("notes.json")[0]["ed25519_seed_hex"].as_str().unwrap()).unwrap();
    let renamed = Ed25519Signer::from_seed("example.test/other", seed.try_into().unwrap())
        .unwrap()
        .verifier();
    assert!(proof.verify(&c.leaf, ORIGIN, &[&renamed], None).is_err());

    let key = log_key();
    let err = proof
        .verify(&c.leaf, "example.test/other-log", &[&key], None)
        .unwrap_err();
    assert!(
        matches!(
            err,
            TlogProofError::Checkpoint(CheckpointError::Origin { .. })
        ),
        "{err}"
    );
    assert_eq!(err.category(), "wrong_origin");
}

#[test]
fn forged_log_signature_fails() {
    // Flip a bit of the log's signature in the note.
    let c = &cases()[0];
    let note = Note::parse(c.note.as_bytes()).unwrap();
    let sig = &note.signatures()[0];
    let mut bytes = sig.signature().to_vec();
    bytes[10] ^= 1;
    let forged = sealtrail_spec::note::NoteSignature::new(sig.name(), sig.key_id(), bytes).unwrap();
    let forged = Note::new(note.text(), vec![forged]).unwrap().to_bytes();
    let proof = TlogProof::new(c.index, c.path.clone(), forged, None).unwrap();
    let err = verify_plain(&proof, &c.leaf).unwrap_err();
    assert_eq!(err.category(), "invalid_signature", "{err}");
}

/// The size-70000 Go note with cosignatures from `witnesses` added.
fn cosigned(note: &str, witnesses: &[(&Cosigner, u64)]) -> Vec<u8> {
    let mut n = Note::parse(note.as_bytes()).unwrap();
    for (w, ts) in witnesses {
        n.push_signature(w.cosign(n.text(), *ts).unwrap()).unwrap();
    }
    n.to_bytes()
}

#[test]
fn witness_policy() {
    let (_, log_vkey) = notes();
    let key = log_key();
    let c = cases().into_iter().find(|c| c.index == 35000).unwrap();
    let w: Vec<Cosigner> = (1..=3u8)
        .map(|i| Cosigner::from_seed(&format!("witness.example/w{i}"), [i; 32]).unwrap())
        .collect();
    let vkeys: Vec<String> = w.iter().map(|w| w.verifier().to_vkey()).collect();
    let policy = Policy::k_of_n(&[log_vkey.as_str()], &vkeys, 2).unwrap();

    let proof_with = |note: Vec<u8>| TlogProof::new(c.index, c.path.clone(), note, None).unwrap();

    // Two of three cosigned: satisfied, and both are reported with their timestamps.
    let p = proof_with(cosigned(
        &c.note,
        &[(&w[2], 1700000003), (&w[0], 1700000001)],
    ));
    let v = p.verify(&c.leaf, ORIGIN, &[&key], Some(&policy)).unwrap();
    let got: Vec<(&[u8], &str, u64)> = v
        .witnesses()
        .unwrap()
        .iter()
        .map(|c| (c.name(), c.verifier().name(), c.timestamp()))
        .collect();
    assert_eq!(
        got,
        [
            (&b"witness.example/w1"[..], "witness.example/w1", 1700000001),
            (&b"witness.example/w3"[..], "witness.example/w3", 1700000003)
        ]
    );
    // The same proof verifies without a policy, and then reports no witnesses.
    assert!(
        p.verify(&c.leaf, ORIGIN, &[&key], None)
            .unwrap()
            .witnesses()
            .is_none()
    );
    // The policy's own log keys work as the log verifiers.
    p.verify(
        &c.leaf,
        ORIGIN,
        &policy.log_verifiers(ORIGIN),
        Some(&policy),
    )
    .unwrap();

    // One of three, or the Go note without any cosignature: the policy is not met.
    for note in [
        cosigned(&c.note, &[(&w[1], 5)]),
        c.note.clone().into_bytes(),
    ] {
        let err = proof_with(note)
            .verify(&c.leaf, ORIGIN, &[&key], Some(&policy))
            .unwrap_err();
        assert!(
            matches!(
                err,
                TlogProofError::Policy(PolicyError::QuorumNotMet { .. })
            ),
            "{err}"
        );
        assert_eq!(err.category(), "quorum_not_met");
        assert!(
            err.to_string()
                .starts_with("witness policy not satisfied: "),
            "{err}"
        );
    }

    // Step order: a bad inclusion proof with a good policy fails at step 4, an unmet policy
    // with a bad inclusion proof at step 3.
    let mut bad_path = c.path.clone();
    bad_path[0].0[0] ^= 1;
    let good_note = cosigned(&c.note, &[(&w[0], 1), (&w[1], 2)]);
    let p = TlogProof::new(c.index, bad_path.clone(), good_note, None).unwrap();
    assert_eq!(
        p.verify(&c.leaf, ORIGIN, &[&key], Some(&policy))
            .unwrap_err()
            .category(),
        "inclusion"
    );
    let p = TlogProof::new(c.index, bad_path, c.note.clone().into_bytes(), None).unwrap();
    assert_eq!(
        p.verify(&c.leaf, ORIGIN, &[&key], Some(&policy))
            .unwrap_err()
            .category(),
        "quorum_not_met"
    );
}

#[test]
fn extra_line() {
    let c = &cases()[0];
    // The spec's example extra payload.
    let spec_extra = "YWdlLXYxLjIuMS1kYXJ3aW4tYXJtNjQudGFyLmd6kYXJ3aW4tYXJ";
    let text = proof_text(Some(spec_extra), &c.index.to_string(), &c.path, &c.note);
    let proof = TlogProof::parse(text.as_bytes()).unwrap();
    assert_eq!(
        proof.extra(),
        Some(B64.decode(spec_extra).unwrap().as_slice())
    );
    assert!(
        proof
            .extra()
            .unwrap()
            .starts_with(b"age-v1.2.1-darwin-arm64.tar.gz")
    );
    assert_eq!(proof.to_bytes(), text.as_bytes());
    verify_plain(&proof, &c.leaf).unwrap();

    // `extra ` with nothing after it: empty, and distinct from an absent line.
    let empty = proof_text(Some(""), &c.index.to_string(), &c.path, &c.note);
    let proof = TlogProof::parse(empty.as_bytes()).unwrap();
    assert_eq!(proof.extra(), Some(&[][..]));
    assert_eq!(proof.to_bytes(), empty.as_bytes());
    let absent = TlogProof::parse(text_of(c).as_bytes()).unwrap();
    assert_ne!(proof, absent);
    assert!(
        !String::from_utf8(absent.to_bytes())
            .unwrap()
            .contains("extra")
    );

    // Largest payload accepted, one more byte refused.
    let max = vec![0xa5; MAX_EXTRA_SIZE];
    let text = proof_text(Some(&B64.encode(&max)), "0", &[], &c.note);
    assert_eq!(
        TlogProof::parse(text.as_bytes()).unwrap().extra(),
        Some(max.as_slice())
    );
    let over = vec![0xa5; MAX_EXTRA_SIZE + 1];
    let text = proof_text(Some(&B64.encode(&over)), "0", &[], &c.note);
    assert_eq!(
        TlogProof::parse(text.as_bytes()),
        Err(TlogProofError::ExtraTooLarge)
    );
    assert_eq!(
        TlogProof::new(0, vec![], c.note.clone().into_bytes(), Some(over)),
        Err(TlogProofError::ExtraTooLarge)
    );
}

#[test]
fn path_line_limit() {
    let c = &cases()[0];
    let path: Vec<Hash> = (0..=MAX_PATH_LINES as u8)
        .map(|i| leaf_hash(&[i]))
        .collect();
    let ok = proof_text(None, "5", &path[..MAX_PATH_LINES], &c.note);
    assert_eq!(TlogProof::parse(ok.as_bytes()).unwrap().path().len(), 63);
    let over = proof_text(None, "5", &path, &c.note);
    assert_eq!(
        TlogProof::parse(over.as_bytes()),
        Err(TlogProofError::TooManyPathLines)
    );
    assert_eq!(
        TlogProof::new(5, path, c.note.clone().into_bytes(), None),
        Err(TlogProofError::TooManyPathLines)
    );
}

#[test]
fn parse_rejects() {
    let c = cases()
        .into_iter()
        .find(|c| c.index == 257 && c.size == 1000)
        .unwrap();
    let good = text_of(&c);
    assert!(TlogProof::parse(good.as_bytes()).is_ok());
    let h0 = B64.encode(c.path[0].0);
    assert!(
        h0.ends_with('='),
        "the trailing-bits case below edits the last character"
    );
    let mut bad_bits = h0.clone().into_bytes();
    let last = bad_bits.len() - 2;
    bad_bits[last] = if bad_bits[last] == b'A' { b'B' } else { b'A' };
    let bad_bits = String::from_utf8(bad_bits).unwrap();
    assert_ne!(
        B64.decode(&bad_bits).ok(),
        Some(c.path[0].0.to_vec()),
        "still a second spelling?"
    );

    let note = c.note.as_str();
    let header = "c2sp.org/tlog-proof@v1\n";
    let cases: Vec<(String, &str, &str)> = vec![
        // (input, what, expected start of the error message)
        (
            String::new(),
            "empty",
            "malformed tlog-proof, line 1: no header line",
        ),
        (
            good.replacen("@v1", "@v2", 1),
            "header v2",
            "malformed tlog-proof, line 1: header",
        ),
        (
            good.replacen("c2sp", "C2SP", 1),
            "header case",
            "malformed tlog-proof, line 1",
        ),
        (
            good.replacen("@v1\n", "@v1 \n", 1),
            "header trailing space",
            "malformed tlog-proof, line 1",
        ),
        (
            format!(" {good}"),
            "header leading space",
            "malformed tlog-proof, line 1",
        ),
        (
            good.replacen(header, "", 1),
            "no header",
            "malformed tlog-proof, line 1",
        ),
        (
            good.replace('\n', "\r\n"),
            "CRLF",
            "malformed tlog-proof, line 1",
        ),
        (
            format!("{header}\n{}", &good[header.len()..]),
            "empty line after header",
            "malformed tlog-proof, line 2",
        ),
        (
            good.replacen("index 257", "index 0257", 1),
            "leading zero",
            "malformed tlog-proof, line 2",
        ),
        (
            good.replacen("index 257", "index +257", 1),
            "plus",
            "malformed tlog-proof, line 2",
        ),
        (
            good.replacen("index 257", "index  257", 1),
            "two spaces",
            "malformed tlog-proof, line 2",
        ),
        (
            good.replacen("index 257", "index 257 ", 1),
            "trailing space",
            "malformed tlog-proof, line 2",
        ),
        (
            good.replacen("index 257", "index\t257", 1),
            "tab",
            "malformed tlog-proof, line 2",
        ),
        (
            good.replacen("index 257", "Index 257", 1),
            "capital",
            "malformed tlog-proof, line 2",
        ),
        (
            good.replacen("index 257", "index", 1),
            "no number",
            "malformed tlog-proof, line 2",
        ),
        (
            good.replacen("index 257", "index 0x101", 1),
            "hex",
            "malformed tlog-proof, line 2",
        ),
        (
            good.replacen("index 257", "index 18446744073709551616", 1),
            "overflow",
            "malformed tlog-proof, line 2",
        ),
        (
            good.replacen("index 257\n", "", 1),
            "no index",
            "malformed tlog-proof, line 2",
        ),
        (
            good.replacen("index 257\n", "index 257\nindex 257\n", 1),
            "two index lines",
            "malformed tlog-proof, line 3",
        ),
        (
            good.replacen("index 257\n", "index 257\nextra AAAA\n", 1),
            "extra after index",
            "malformed tlog-proof, line 3",
        ),
        (
            good.replacen(header, &format!("{header}extra\n"), 1),
            "extra without space",
            "malformed tlog-proof, line 2",
        ),
        (
            good.replacen(header, &format!("{header}extra AAA\n"), 1),
            "extra unpadded",
            "malformed tlog-proof, line 2: extra data is not canonical base64",
        ),
        (
            good.replacen(header, &format!("{header}extra AB==\n"), 1),
            "extra trailing bits",
            "malformed tlog-proof, line 2: extra data",
        ),
        (
            good.replacen(header, &format!("{header}extra  AAAA\n"), 1),
            "extra two spaces",
            "malformed tlog-proof, line 2: extra data",
        ),
        (
            good.replacen(header, &format!("{header}extra AAAA\nextra AAAA\n"), 1),
            "two extra lines",
            "malformed tlog-proof, line 3",
        ),
        (
            good.replacen(&h0, &bad_bits, 1),
            "path hash trailing bits",
            "malformed tlog-proof, line 3: proof line",
        ),
        (
            good.replacen(&h0, h0.trim_end_matches('='), 1),
            "path hash unpadded",
            "malformed tlog-proof, line 3: proof line",
        ),
        (
            good.replacen(&h0, &c.path[0].to_hex(), 1),
            "path hash in hex",
            "malformed tlog-proof, line 3: proof line",
        ),
        (
            good.replacen(&h0, &format!("{h0} "), 1),
            "path hash trailing space",
            "malformed tlog-proof, line 3: proof line",
        ),
        (
            good.replacen(&h0, &h0[..40], 1),
            "path hash short",
            "malformed tlog-proof, line 3: proof line",
        ),
        (
            good.replacen(&h0, &B64.encode([0u8; 33]), 1),
            "path hash 33 bytes",
            "malformed tlog-proof, line 3: proof line",
        ),
        (
            good.replacen(
                &format!("\n\n{}", &note[..10]),
                &format!("\n{}", &note[..10]),
                1,
            ),
            "missing blank line",
            "malformed tlog-proof, line 13: proof line",
        ),
        (
            format!("{header}index 0\n"),
            "no blank line at all",
            "malformed tlog-proof, line 3: no empty line",
        ),
        (
            format!("{header}index 0\n\n"),
            "no checkpoint",
            "checkpoint part is not a signed note",
        ),
        (
            format!("{good}x"),
            "trailing byte",
            "checkpoint part is not a signed note",
        ),
        (
            format!("{good}\n"),
            "trailing newline",
            "checkpoint part is not a signed note",
        ),
        (
            format!("{good}{good}"),
            "two proofs",
            "checkpoint part is not a checkpoint",
        ),
        (
            good[..good.len() - 1].to_owned(),
            "truncated note",
            "checkpoint part is not a signed note",
        ),
        (
            good.replacen(
                &format!("\n\n{}", &note[..10]),
                &format!("\n\n\n{}", &note[..10]),
                1,
            ),
            "two blank lines",
            "checkpoint part is not a checkpoint",
        ),
        (
            good.replacen("\n1000\n", "\n01000\n", 1),
            "note not a checkpoint",
            "checkpoint part is not a checkpoint",
        ),
    ];
    for (input, what, want) in cases {
        let err = TlogProof::parse(input.as_bytes()).expect_err(what);
        assert!(err.to_string().starts_with(want), "{what}: {err}");
        assert_eq!(err.category(), "malformed");
    }
    // Non-UTF-8 in a line before the checkpoint.
    let mut bytes = good.clone().into_bytes();
    bytes[header.len() + 6] = 0xff;
    assert!(TlogProof::parse(&bytes).is_err());

    let huge = vec![b'a'; MAX_PROOF_SIZE + 1];
    assert_eq!(
        TlogProof::parse(&huge),
        Err(TlogProofError::TooLarge(MAX_PROOF_SIZE + 1))
    );
    // The builder holds the checkpoint to the same rules.
    for bad in [&b""[..], b"not a note\n", good.as_bytes()] {
        assert!(TlogProof::new(1, vec![], bad.to_vec(), None).is_err());
    }
}

#[test]
fn mutations_that_parse_are_canonical() {
    // Every single-byte substitution, from a small alphabet, in the lines before the checkpoint.
    let c = cases()
        .into_iter()
        .find(|c| c.index == 2 && c.size == 1000)
        .unwrap();
    let good = proof_text(Some("AAEC"), "2", &c.path[..2], &c.note);
    let head = good.find("\n\n").unwrap() + 1;
    for i in 0..head {
        for b in [b'0', b'1', b'A', b'=', b'+', b'/', b'\n', b' ', b'x', 0x80] {
            let mut bytes = good.clone().into_bytes();
            bytes[i] = b;
            if let Ok(p) = TlogProof::parse(&bytes) {
                assert_eq!(p.to_bytes(), bytes, "position {i}");
            }
        }
    }
}

#[test]
fn verifier_list_must_not_be_ambiguous() {
    let c = &cases()[0];
    let proof = TlogProof::parse(text_of(c).as_bytes()).unwrap();
    let (a, b) = (log_key(), log_key());
    let dyns: [&dyn Verifier; 2] = [&a, &b];
    let err = proof.verify(&c.leaf, ORIGIN, &dyns, None).unwrap_err();
    assert_eq!(err.category(), "ambiguous_key");
}
