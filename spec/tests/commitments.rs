//! Record commitments against `tests/vectors/commitments.json`, whose expected values were made
//! by `tests/commitment_vectors.py` with Python's hashlib, independently of this crate. The test
//! also runs that script, so the file, the Python computation and the Rust one agree three ways.

// Test helpers outside `#[test]` functions unwrap too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use proptest::prelude::*;
use sealtrail_spec::envelope::{LeafEnvelope, MAX_PRINCIPAL_LEN};
use sealtrail_spec::record::{
    COMMITMENT_DOMAIN, PrivateRecord, RecordError, SALT_LEN, check_principal, commitment,
};

struct Case {
    name: String,
    record: PrivateRecord,
    commitment: [u8; 32],
}

fn cases() -> Vec<Case> {
    let doc = common::load("commitments.json");
    assert_eq!(
        doc["domain"].as_str().unwrap().as_bytes(),
        COMMITMENT_DOMAIN
    );
    let hex = |v: &serde_json::Value| hex::decode(v.as_str().unwrap()).unwrap();
    doc["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| Case {
            name: c["name"].as_str().unwrap().to_owned(),
            record: PrivateRecord {
                salt: hex(&c["salt"]).try_into().unwrap(),
                principal: c["principal"].as_str().unwrap().to_owned(),
                payload: hex(&c["payload"]),
            },
            commitment: hex(&c["commitment"]).try_into().unwrap(),
        })
        .collect()
}

fn leaf_for(record: &PrivateRecord) -> LeafEnvelope {
    LeafEnvelope {
        time_ms: 1_700_000_000_000,
        content_type: "application/octet-stream".into(),
        event_type: None,
        payload_size: record.payload.len() as u64,
        commitment: record.commitment(),
    }
}

#[test]
fn rust_commitments_match_the_python_made_vectors() {
    let cases = cases();
    assert!(cases.len() >= 5);
    for c in &cases {
        let r = &c.record;
        assert_eq!(
            commitment(&r.salt, &r.principal, &r.payload),
            c.commitment,
            "{}",
            c.name
        );
        assert_eq!(r.commitment(), c.commitment, "{}", c.name);
        // Every vector is a valid record, and survives its storage encoding.
        assert_eq!(r.validate(), Ok(()), "{}", c.name);
        assert_eq!(PrivateRecord::decode(&r.encode()).as_ref(), Ok(r));
        assert_eq!(r.check(&leaf_for(r)), Ok(()), "{}", c.name);
    }
    let by_name = |n: &str| cases.iter().find(|c| c.name == n).unwrap();
    // The longest principal counts bytes: 128 characters, 256 bytes.
    let long = &by_name("principal-256-bytes").record.principal;
    assert_eq!((long.len(), long.chars().count()), (MAX_PRINCIPAL_LEN, 128));
    // Not UTF-8, so displays show it as base64.
    assert!(std::str::from_utf8(&by_name("binary-payload").record.payload).is_err());
    assert!(by_name("empty-payload").record.payload.is_empty());
    // The same bytes split differently between principal and payload: the lengths are bound.
    let (a, b) = (by_name("length-binding-a"), by_name("length-binding-b"));
    assert_eq!(a.record.salt, b.record.salt);
    assert_ne!(a.commitment, b.commitment);
}

#[test]
fn the_spec_quotes_the_vectors() {
    let doc: String = include_str!("../docs/leaf-envelope.md")
        .split_whitespace()
        .collect();
    for c in cases() {
        for (what, hex) in [
            ("salt", hex::encode(c.record.salt)),
            ("commitment", hex::encode(c.commitment)),
        ] {
            assert!(
                doc.contains(&hex),
                "the {what} of {} is not in leaf-envelope.md",
                c.name
            );
        }
    }
}

#[test]
fn a_record_checks_only_against_its_own_leaf() {
    for c in cases() {
        let leaf = leaf_for(&c.record);
        let mut salt = c.record.clone();
        salt.salt[0] ^= 1;
        assert_eq!(
            salt.check(&leaf),
            Err(RecordError::Commitment),
            "{}",
            c.name
        );
        let mut principal = c.record.clone();
        principal.principal.push('x');
        assert_eq!(principal.check(&leaf), Err(RecordError::Commitment));
        // A payload of the same length with one bit changed: the commitment catches it.
        let mut payload = c.record.clone();
        if let Some(b) = payload.payload.first_mut() {
            *b ^= 1;
            assert_eq!(payload.check(&leaf), Err(RecordError::Commitment));
        }
        // A longer payload: the size catches it first.
        let mut longer = c.record.clone();
        longer.payload.push(0);
        assert_eq!(
            longer.check(&leaf),
            Err(RecordError::PayloadSize {
                got: leaf.payload_size + 1,
                want: leaf.payload_size
            })
        );
    }
}

#[test]
fn principal_rules() {
    assert_eq!(check_principal("alice"), Ok(()));
    assert_eq!(check_principal(&"p".repeat(MAX_PRINCIPAL_LEN)), Ok(()));
    assert!(check_principal(&"p".repeat(MAX_PRINCIPAL_LEN + 1)).is_err());
    assert_eq!(check_principal(&"é".repeat(128)), Ok(()));
    assert!(check_principal(&"é".repeat(129)).is_err());
    assert!(matches!(
        check_principal(""),
        Err(RecordError::Principal(_))
    ));
    for ch in ['\0', '\n', '\u{7f}', '\u{85}'] {
        assert!(
            check_principal(&format!("a{ch}b")).is_err(),
            "{ch:?} is accepted"
        );
    }
    assert_eq!(check_principal("jwt:Zoë Ångström 🛡"), Ok(()));
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/commitment_vectors.py")
}

/// Runs `python3 tests/commitment_vectors.py ARGS`; a missing python3 fails the test.
fn python(args: &[&Path]) -> std::process::Output {
    match Command::new("python3").arg(script()).args(args).output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "python3 is not installed, and this test runs tests/commitment_vectors.py with it: \
             install python3 (Debian or Ubuntu: apt-get install python3) and run the tests again"
        ),
        Err(e) => panic!("running python3 {}: {e}", script().display()),
    }
}

#[test]
fn the_python_script_recomputes_every_vector() {
    let out = python(&[]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "commitment_vectors.py failed: {}\n{stdout}{stderr}",
        out.status
    );
    assert_eq!(
        stdout.trim(),
        format!("{} commitments match", cases().len())
    );
}

#[test]
fn the_python_script_fails_on_a_wrong_vector() {
    // One commitment changed: the script must notice and exit non-zero (so a pass means
    // something).
    let mut doc = common::load("commitments.json");
    let c = &mut doc["cases"][1]["commitment"];
    let mut bytes = hex::decode(c.as_str().unwrap()).unwrap();
    bytes[31] ^= 1;
    *c = hex::encode(bytes).into();
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("commitments-tampered.json");
    std::fs::write(&path, serde_json::to_vec(&doc).unwrap()).unwrap();
    let out = python(&[&path]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("MISMATCH json-payload"));
}

proptest! {
    #[test]
    fn random_records_check_against_their_leaf(
        salt in any::<[u8; SALT_LEN]>(),
        principal in "[^\\p{Cc}]{1,60}",
        payload in proptest::collection::vec(any::<u8>(), 0..300),
        flip in any::<prop::sample::Index>(),
    ) {
        let record = PrivateRecord { salt, principal, payload };
        let leaf = leaf_for(&record);
        prop_assert_eq!(record.check(&leaf), Ok(()));
        prop_assert_eq!(PrivateRecord::decode(&record.encode()), Ok(record.clone()));
        // Any one bit flipped in the salt breaks it.
        let mut bad = record.clone();
        bad.salt[flip.index(SALT_LEN)] ^= 1;
        prop_assert_eq!(bad.check(&leaf), Err(RecordError::Commitment));
    }
}
