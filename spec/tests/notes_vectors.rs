//! Signed-note, checkpoint, cosignature and witness-format vectors from outside this crate:
//!
//! - `spec/tests/vectors/notes.json`, made by Go's `golang.org/x/mod/sumdb/note`;
//! - the published examples collected in c2sp-digest section 8.5 (C2SP specs, Go x/mod
//!   `note_test.go`, torchwood/litewitness test data, transparency-dev/formats test keys);
//! - Cloudflare's `signed_note` crate as a live oracle.
//!
//! Every expected string here comes from one of those sources, never from our own output.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use proptest::prelude::*;
use sealtrail_spec::checkpoint::{self, Checkpoint, CheckpointError};
use sealtrail_spec::cosignature::{
    CosignatureError, CosignatureVerifier, Cosigner, cosignature_timestamp,
};
use sealtrail_spec::hash::{Hash, sha256};
use sealtrail_spec::merkle::verify_consistency;
use sealtrail_spec::note::{
    self, Ed25519Signer, Ed25519Verifier, KeyError, Note, NoteError, NoteSignature, Signer,
    Verifier, VerifierKey,
};
use sealtrail_spec::witness::{self, AddCheckpointRequest};

fn seed(hex_seed: &str) -> [u8; 32] {
    hex::decode(hex_seed).unwrap().try_into().unwrap()
}

// ---------------------------------------------------------------------------------------------
// notes.json (Go x/mod sumdb/note)

#[derive(serde::Deserialize)]
struct NoteVector {
    description: String,
    key_name: String,
    ed25519_seed_hex: String,
    ed25519_public_key_hex: String,
    key_id_hex: String,
    signer_key: String,
    verifier_key: String,
    text: String,
    signed_note: String,
}

/// The second key of the two-signature vector: its seed is SHA-256 of this text (its description
/// names the text; the key ID in the note confirms the derivation).
const VECTOR_WITNESS_SEED_TEXT: &str = "tlog-oracle vector witness";

#[test]
fn go_note_vectors() {
    let path = common::vectors_dir().join("notes.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let vectors: Vec<NoteVector> = serde_json::from_str(&text).unwrap();
    assert!(vectors.len() >= 3);
    for v in &vectors {
        let d = &v.description;
        let signer = Ed25519Signer::from_seed(&v.key_name, seed(&v.ed25519_seed_hex)).unwrap();
        assert_eq!(
            hex::encode(signer.public_key()),
            v.ed25519_public_key_hex,
            "{d}"
        );
        assert_eq!(format!("{:08x}", signer.key_id()), v.key_id_hex, "{d}");
        assert_eq!(signer.to_skey(), v.signer_key, "{d}");
        assert_eq!(signer.verifier().to_vkey(), v.verifier_key, "{d}");
        let from_skey = Ed25519Signer::from_skey(&v.signer_key).unwrap();
        assert_eq!(from_skey.public_key(), signer.public_key(), "{d}");
        let verifier = Ed25519Verifier::from_vkey(&v.verifier_key).unwrap();
        assert_eq!(verifier.to_vkey(), v.verifier_key, "{d}");

        let bytes = v.signed_note.as_bytes();
        let parsed = Note::parse(bytes).unwrap();
        assert_eq!(parsed.text(), v.text, "{d}");
        assert_eq!(parsed.to_bytes(), bytes, "{d}");
        assert_eq!(note::verify(&parsed, &[&verifier]).unwrap(), [0], "{d}");

        // Reproduce the note byte for byte (Ed25519 is deterministic).
        let mut signers: Vec<Ed25519Signer> = vec![signer];
        if parsed.signatures().len() == 2 {
            let name = parsed.signatures()[1].name();
            let witness =
                Ed25519Signer::from_seed(name, sha256(VECTOR_WITNESS_SEED_TEXT.as_bytes()))
                    .unwrap();
            assert_eq!(witness.key_id(), parsed.signatures()[1].key_id(), "{d}");
            signers.push(witness);
        }
        assert_eq!(signers.len(), parsed.signatures().len(), "{d}");
        let dyns: Vec<&dyn Signer> = signers.iter().map(|s| s as &dyn Signer).collect();
        assert_eq!(Note::sign(&v.text, &dyns).unwrap().to_bytes(), bytes, "{d}");

        // They are checkpoints of the log named by the key.
        let cp = checkpoint::open(bytes, &v.key_name, &[&verifier]).unwrap();
        assert_eq!(cp.checkpoint().to_text(), v.text, "{d}");
        assert_eq!(cp.bytes(), bytes, "{d}");
        assert_eq!(
            checkpoint::sign_checkpoint(cp.checkpoint(), &signers[0]).unwrap(),
            Note::sign(&v.text, &dyns[..1]).unwrap().to_bytes(),
            "{d}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// c2sp-digest 8.5 (a): the signed-note spec example.

#[test]
fn c2sp_signed_note_example() {
    let vkey = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
    let msg = "This is an example message.\n\n— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";
    let v = Ed25519Verifier::from_vkey(vkey).unwrap();
    assert_eq!(v.key_id(), 0x530d903a);
    assert_eq!(v.to_vkey(), vkey);
    let n = Note::parse(msg.as_bytes()).unwrap();
    assert_eq!(n.text(), "This is an example message.\n");
    assert_eq!(n.to_bytes(), msg.as_bytes());
    assert_eq!(note::verify(&n, &[&v]).unwrap(), [0]);
}

// ---------------------------------------------------------------------------------------------
// c2sp-digest 8.5 (b): Go x/mod note_test.go.

const PETER_SKEY: &str =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const PETER_SEED: &str = "810a1402d5146c8d84f2443330f54080ebf98ee17d9c74f6252fc5d5c7283173";
const ENOCH_VKEY: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
const GO_TEXT: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const PETER_SIG: &str = "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
const ENOCH_SIG: &str = "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

fn peter() -> Ed25519Verifier {
    Ed25519Verifier::from_vkey(PETER_VKEY).unwrap()
}

fn enoch() -> Ed25519Verifier {
    Ed25519Verifier::from_vkey(ENOCH_VKEY).unwrap()
}

fn go_note(sigs: &[&str]) -> Vec<u8> {
    format!("{GO_TEXT}\n{}", sigs.concat()).into_bytes()
}

#[test]
fn go_peter_neumann_keys_and_signature() {
    let s = Ed25519Signer::from_skey(PETER_SKEY).unwrap();
    assert_eq!(s.to_skey(), PETER_SKEY);
    assert_eq!(s.verifier().to_vkey(), PETER_VKEY);
    assert_eq!(s.key_id(), 0xc74f20a3);
    let from_seed = Ed25519Signer::from_seed("PeterNeumann", seed(PETER_SEED)).unwrap();
    assert_eq!(from_seed.to_skey(), PETER_SKEY);
    // Go's TestSign: the exact signed note.
    assert_eq!(
        Note::sign(GO_TEXT, &[&s]).unwrap().to_bytes(),
        go_note(&[PETER_SIG])
    );
    // And signing over a stale signature from the same key replaces it.
    let stale = NoteSignature::new("PeterNeumann", 0xc74f20a3, vec![1, 2, 3]).unwrap();
    let mut n = Note::new(GO_TEXT, vec![stale]).unwrap();
    n.add_signatures(&[&s]).unwrap();
    assert_eq!(n.to_bytes(), go_note(&[PETER_SIG]));
    assert_eq!(enoch().key_id(), 0xaf0cfe78);
}

#[test]
fn go_open_cases() {
    let (p, e) = (peter(), enoch());
    let both = Note::parse(&go_note(&[PETER_SIG, ENOCH_SIG])).unwrap();
    assert_eq!(both.text(), GO_TEXT);
    assert_eq!(note::verify(&both, &[&p]).unwrap(), [0]);
    assert_eq!(note::verify(&both, &[&p, &e]).unwrap(), [0, 1]);
    let err = note::verify(&both, &[]).unwrap_err();
    assert_eq!(err, NoteError::Unverified);
    assert_eq!(err.to_string(), "note has no verifiable signatures");

    // Duplicated verifier.
    let enoch_only = Note::parse(&go_note(&[ENOCH_SIG])).unwrap();
    let err = note::verify(&enoch_only, &[&e, &p, &e]).unwrap_err();
    assert_eq!(err.to_string(), "ambiguous key EnochRoot+af0cfe78");
    // Go accepts an unused duplicated verifier; we reject the list up front (documented).
    let peter_only = Note::parse(&go_note(&[PETER_SIG])).unwrap();
    assert!(matches!(
        note::verify(&peter_only, &[&e, &p, &e]),
        Err(NoteError::AmbiguousKey { .. })
    ));

    // Too many signatures: 101 lines are malformed whoever the verifiers are.
    let many = go_note(&[&PETER_SIG.repeat(101)]);
    assert_eq!(Note::parse(&many), Err(NoteError::TooManySignatures));

    // Invalid signature: "ABCD" inserted into the base64 keeps it valid base64.
    let bad = format!("{}ABCD{}", &PETER_SIG[..60], &PETER_SIG[60..]);
    let n = Note::parse(&go_note(&[&bad])).unwrap();
    assert_eq!(
        note::verify(&n, &[&p]).unwrap_err().to_string(),
        "invalid signature for key PeterNeumann+c74f20a3"
    );

    // Duplicated verified and unverified signatures.
    let enoch_abcd = format!("{}ABCD{}", &ENOCH_SIG[..60], &ENOCH_SIG[60..]);
    let n = Note::parse(&go_note(&[
        PETER_SIG,
        PETER_SIG,
        ENOCH_SIG,
        ENOCH_SIG,
        &enoch_abcd,
    ]))
    .unwrap();
    assert_eq!(n.signatures().len(), 5);
    assert_eq!(note::verify(&n, &[&p]).unwrap(), [0]);
    // With Enoch's key known too, Go verifies only the first Enoch line and skips the later ones
    // (same name and ID), so it accepts. We verify every known-key line, so the mangled one
    // rejects the note (c2sp-digest section 9 item 9).
    assert!(matches!(
        note::verify(&n, &[&p, &e]),
        Err(NoteError::InvalidSignature { .. })
    ));

    // Invalid encoded message syntax.
    let bad_msgs: Vec<Vec<u8>> = vec![
        GO_TEXT.into(),
        format!("{GO_TEXT}\n").into(),
        format!("{GO_TEXT}\n{}", &PETER_SIG[..PETER_SIG.len() - 1]).into(),
        [b"\x01".as_slice(), &go_note(&[PETER_SIG])].concat(),
        [b"\xff".as_slice(), &go_note(&[PETER_SIG])].concat(),
        format!("{GO_TEXT}\n— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=").into(),
        format!("{GO_TEXT}\n{PETER_SIG}Unexpected line.\n").into(),
    ];
    for msg in bad_msgs {
        assert!(
            Note::parse(&msg).is_err(),
            "{:?}",
            String::from_utf8_lossy(&msg)
        );
    }
}

#[test]
fn go_vkey_and_skey_manglings() {
    // Go's TestNewVerifier/TestNewSigner: every proper substring and every single-byte increment
    // must be rejected.
    fn mangled(key: &str) -> Vec<Vec<u8>> {
        let b = key.as_bytes();
        let mut out = Vec::new();
        for i in 0..=b.len() {
            for j in i + 1..=b.len() {
                if i != 0 || j != b.len() {
                    out.push(b[i..j].to_vec());
                }
            }
        }
        for i in 0..b.len() {
            let mut m = b.to_vec();
            m[i] = m[i].wrapping_add(1);
            out.push(m);
        }
        out
    }
    for m in mangled(PETER_VKEY) {
        let Ok(s) = std::str::from_utf8(&m) else {
            continue;
        };
        assert!(Ed25519Verifier::from_vkey(s).is_err(), "{s}");
    }
    for m in mangled(PETER_SKEY) {
        let Ok(s) = std::str::from_utf8(&m) else {
            continue;
        };
        assert!(Ed25519Signer::from_skey(s).is_err(), "{s}");
    }
    // Wrong length key and unknown algorithm, each with an adjusted key ID.
    assert!(
        Ed25519Verifier::from_vkey(
            "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY=="
        )
        .is_err()
    );
    assert_eq!(
        Ed25519Verifier::from_vkey(
            "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
        ),
        Err(KeyError::Type(0x65))
    );
}

// ---------------------------------------------------------------------------------------------
// c2sp-digest 8.5 (c): sigsum log checkpoints (torchwood litewitness test data).

const SIGSUM_PK: &str = "ffdc2d4d98e4124d3feaf788c0c2f9abfd796083d1f0495437f302ec79cf100f";
const SIGSUM_ORIGIN: &str =
    "sigsum.org/v1/tree/4d6d8825a6bb689d459628312889dfbb0bcd41b5211d9e1ce768b0ff0309e562";
const SIGSUM_VKEY: &str = "sigsum.org/v1/tree/4d6d8825a6bb689d459628312889dfbb0bcd41b5211d9e1ce768b0ff0309e562+5202289b+Af/cLU2Y5BJNP+r3iMDC+av9eWCD0fBJVDfzAux5zxAP";
const SIGSUM_ROOT_1: &str = "KgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
const SIGSUM_ROOT_3: &str = "RcCI1Nk56ZcSmIEfIn0SleqtV7uvrlXNccFx595Iwl0=";
const SIGSUM_SIG_1: &str =
    "UgIom7fPZTqpxWWhyjWduBvTvGVqsokMbqTArsQilegKoFBJQjUFAmQ0+YeSPM3wfUQMFSzVnnNuWRTYrajXpNUbIQY=";
const SIGSUM_SIG_3: &str =
    "UgIom2VbtIcdFbwFAy1n7s6IkAxIY6J/GQOTuZF2ORV39d75cbAj2aQYwyJre36kezNobZs4SUUdrcawfAB8WVrx6go=";

fn sigsum_note(origin: &str, size: u64, root: &str, sig: &str) -> String {
    format!("{origin}\n{size}\n{root}\n\n— {SIGSUM_ORIGIN} {sig}\n")
}

#[test]
fn sigsum_checkpoints() {
    let pk: [u8; 32] = hex::decode(SIGSUM_PK).unwrap().try_into().unwrap();
    assert_eq!(
        SIGSUM_ORIGIN,
        format!("sigsum.org/v1/tree/{}", hex::encode(sha256(&pk)))
    );
    let v = Ed25519Verifier::from_vkey(SIGSUM_VKEY).unwrap();
    assert_eq!(v.public_key(), pk);
    assert_eq!(
        Ed25519Verifier::from_public_key(SIGSUM_ORIGIN, pk)
            .unwrap()
            .to_vkey(),
        SIGSUM_VKEY
    );
    for (size, root, sig) in [
        (1, SIGSUM_ROOT_1, SIGSUM_SIG_1),
        (3, SIGSUM_ROOT_3, SIGSUM_SIG_3),
    ] {
        let n = sigsum_note(SIGSUM_ORIGIN, size, root, sig);
        let cp = checkpoint::open(n.as_bytes(), SIGSUM_ORIGIN, &[&v]).unwrap();
        assert_eq!(cp.checkpoint().size(), size);
        assert_eq!(cp.checkpoint().root(), Hash::from_base64(root).unwrap());
    }
    // litewitness's "invalid signature" request ends the signature in "6gx=": not canonical
    // base64 (stray low bit), so we reject it as malformed before any signature check.
    let n = sigsum_note(
        SIGSUM_ORIGIN,
        3,
        SIGSUM_ROOT_3,
        &SIGSUM_SIG_3.replace("6go=", "6gx="),
    );
    assert!(matches!(
        checkpoint::open(n.as_bytes(), SIGSUM_ORIGIN, &[&v]),
        Err(CheckpointError::Note(NoteError::SignatureLine { .. }))
    ));
    // A canonical alteration is a bad signature from the known key.
    let n = sigsum_note(
        SIGSUM_ORIGIN,
        3,
        SIGSUM_ROOT_3,
        &SIGSUM_SIG_3.replace("6go=", "6gg="),
    );
    let err = checkpoint::open(n.as_bytes(), SIGSUM_ORIGIN, &[&v]).unwrap_err();
    assert_eq!(err.category(), "invalid_signature");
    // The size-1 signature does not cover the size-3 body.
    let n = sigsum_note(SIGSUM_ORIGIN, 3, SIGSUM_ROOT_3, SIGSUM_SIG_1);
    assert!(checkpoint::open(n.as_bytes(), SIGSUM_ORIGIN, &[&v]).is_err());
    // The "unknown log" request: origin ...e563.
    let other = SIGSUM_ORIGIN.replace("e562", "e563");
    let n = sigsum_note(&other, 3, SIGSUM_ROOT_3, SIGSUM_SIG_3);
    assert!(matches!(
        checkpoint::open(n.as_bytes(), SIGSUM_ORIGIN, &[&v]),
        Err(CheckpointError::Origin { .. })
    ));
}

#[test]
fn litewitness_add_checkpoint_transcript() {
    let v = Ed25519Verifier::from_vkey(SIGSUM_VKEY).unwrap();
    let old_root = Hash::from_base64(SIGSUM_ROOT_1).unwrap();
    let note3 = sigsum_note(SIGSUM_ORIGIN, 3, SIGSUM_ROOT_3, SIGSUM_SIG_3);
    let proof_ok = "KgEAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\nKgIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
    // The checks a witness runs after parsing, on the spec's inputs.
    let check = |body: String| -> Result<(), String> {
        let req = AddCheckpointRequest::parse(body.as_bytes()).map_err(|e| e.to_string())?;
        assert_eq!(req.to_bytes(), body.as_bytes());
        let cp =
            checkpoint::open(req.checkpoint(), SIGSUM_ORIGIN, &[&v]).map_err(|e| e.to_string())?;
        let c = cp.checkpoint();
        verify_consistency(req.old_size(), c.size(), &old_root, &c.root(), req.proof())
            .map_err(|e| e.to_string())
    };
    // Step 1: old 0, size-1 checkpoint.
    let note1 = sigsum_note(SIGSUM_ORIGIN, 1, SIGSUM_ROOT_1, SIGSUM_SIG_1);
    let req = AddCheckpointRequest::parse(format!("old 0\n\n{note1}").as_bytes()).unwrap();
    assert_eq!((req.old_size(), req.proof().len()), (0, 0));
    checkpoint::open(req.checkpoint(), SIGSUM_ORIGIN, &[&v]).unwrap();
    // Step 4: old 1 without a proof.
    assert!(check(format!("old 1\n\n{note3}")).is_err());
    // Step 5: a corrupted second proof hash.
    let corrupted = proof_ok.replace("KgIA", "KgIB");
    assert!(check(format!("old 1\n{corrupted}\n{note3}")).is_err());
    // Step 6: the good proof.
    check(format!("old 1\n{proof_ok}\n{note3}")).unwrap();
}

// ---------------------------------------------------------------------------------------------
// c2sp-digest 8.5 (d): cosignatures, key IDs by type, transparency-dev/formats vkeys.

const SOFA: &str =
    "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";

#[test]
fn cosignature_self_generated_vector() {
    let w = Cosigner::from_seed("witness.example/w1", seed(PETER_SEED)).unwrap();
    assert_eq!(
        w.verifier().to_vkey(),
        "witness.example/w1+cc9a7044+BBpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
    );
    let line = "— witness.example/w1 zJpwRAAAAABkGFDLJeR//pqzhnEKVvEm2wWbh2RJ6oru5+cUUfm5X9NnlaGr8aSH9QE5RVZD4QGlxl2F5UpVIIi94p178KLfqPPsAA==\n";
    assert_eq!(w.cosign(SOFA, 1679315147).unwrap().to_line(), line);
    let sig = NoteSignature::parse_line(line).unwrap();
    let v = CosignatureVerifier::from_vkey(
        "witness.example/w1+cc9a7044+BBpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    )
    .unwrap();
    assert_eq!(v.verify_cosignature(SOFA, &sig), Ok(1679315147));
    let n = Note::new(SOFA, vec![sig]).unwrap();
    assert_eq!(note::verify(&n, &[&v]).unwrap(), [0]);
    assert!(
        v.verify_cosignature(
            &SOFA.replace("63\n", "64\n"),
            n.signatures().first().unwrap()
        )
        .is_err()
    );
}

#[test]
fn key_ids_differ_by_type() {
    let plain = Ed25519Signer::from_seed("witness.example/w1", seed(PETER_SEED)).unwrap();
    let cosigner = Cosigner::from_seed("witness.example/w1", seed(PETER_SEED)).unwrap();
    assert_eq!(format!("{:08x}", plain.key_id()), "a7f07fd6");
    assert_eq!(format!("{:08x}", cosigner.key_id()), "cc9a7044");
}

#[test]
fn spec_cosignature_line_decodes() {
    // tlog-cosignature's example line; the witness key is not published, so only decode it.
    let line = "— witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n";
    let sig = NoteSignature::parse_line(line).unwrap();
    assert_eq!(sig.key_id(), 0x8d66cf3f);
    assert_eq!(cosignature_timestamp(&sig), Ok(1679315147));
    assert_eq!(sig.to_line(), line);
    // transparency-dev/formats TestCosignatureTimestamp: a real cosignature and a plain Ed25519
    // signature (68 bytes, no timestamp).
    let real = NoteSignature::parse_line("— w ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyocWODBt97w9uL+8qT7S5gxEHWWOworDcFiEBYJXORmnFBOBA==\n").unwrap();
    assert_eq!(cosignature_timestamp(&real), Ok(1727964367));
    let plain = NoteSignature::parse_line("— w eQjRQm6eSKzFoiYalgwCPXu2y3ijtg68is9M46JKxuZB+dRfTmeQeDBoXnvxZx2ugnkyV+MUMLXpWs1hPb/W/4xkNQY=\n").unwrap();
    assert_eq!(
        cosignature_timestamp(&plain),
        Err(CosignatureError::Length(64))
    );
}

/// transparency-dev/formats `note_cosigv1_test.go` (TestCoSigV1NewVerifier); ML-DSA-44 vkey.
const MLDSA_VKEY: &str = "test+5893dc2c+BtMcFiao6ZOdU6LZ40tLKbsWpDOU8smRapXBIYI3lXyESm62to+/AeDuWOEtbwUNVzrC9FacZ1q+gXES2hAhp5/C1TPwTiO/G+T9x0iAb8gSGkGwsbDJXmQMhsFM+Ub3tB5Fdujz4o7DF3NqCCUMC1zsD7jMyy9BTCFi6Av1I/ZDRQxJJOKFt31l0cJY6OHFcUGMSGSHcGEo839UikbMBlArWRgYk/Ve4aqW0pRl7G46Qk39pu/yFYwhk3gMYMkush5NKQo7EbvhnHvUlQWK27t2VsIbH2p/l9i73UDtEmHeqIMcqtwhCnFoqT6S7cL9/p7NLwxD1gICM0gCZIi3KrbnMFok+5uovBbrF9vISSXX67R1nprdjiE0MGAwZ3Prtt0ah2xchT5I1WgmUGSA0B1cnEDXWneUaA0axw/TQ47x88+jfKIN0kn8rg5bncI5q71hV2mF1n2xuE4G+WOdBRjMVGLWlt1rZcCh8IredoZe3SxWKx7amrLo00lFN8QL8TAw1bvDiFYRqyAZE4Z5M77H8OmAR2QahuZA+d8Q1SXmTdDtOu1RRXtHq54Nm3d2SbQl48UE7BsWvu7YdqGEti5EpTX3oMVmnnjj0FRH2QjlnpaRn5bE8tiblhL31f6KRz37E9lqIUoLuE19OQ+yYOj2B6avwEY6xWq5SrOOhENQKAODXTjacDYVL4Z1hsJA9+7qbFH5S3JjMCs4VFtZHOa4tkxbpO94lfPNnhqDnuFb5xm7sT51/In+xn0vAyCoaaIpm/rwG0nRFZmR6bafSPBJXcnrocdPy86sQ/C3ma7ldByWwsHuEm8YTNABAqn6hNICNECFuoV8EBwnA0BVkhClyjTkPSnyB1CAUEkzQwd/SW7VgjDoI9r6k4ot1oaxD9ZudZor7309jhMIbQhE1ODPMDxFM2B5XvhlJ6nl6r0JUI/q2uLnZGyzKDMGnL+T+uGDN+AvBrg4kyHEM1X39Dkr1XpJIMRlROY+GayJliTQ8eEdZ1yug5C0JGHJ9bEQu/L2Zf084+/+4BAUrrJ4JtmShbYulaDmMVjm72Osu5a9ld7KeZ2hn5uK9yhiUJqeBDGGLmqqZbbUwIRa9OWZoQVU+dCt2ust5migCq69O3H+83U2YKBj9r3QLv6FG/crj3IUrKagKIqv5fT71eeCEmSmdAGqVP+5hxBQMBcISqp+9rqDsS1NLba2YuUWYgFDlQ7Xq915t+d3N5ouHNWJHs1/2V0ZNsSvID1p73sUWVJlh2M4/B8/QT1uvteCPc+yycsJM80Xaomwv9KTfUpyNn60R860zr+Va432W8v5urT1Teu6QCTWKdq3ivhyYREBLvka07jb7SlIees2PKDfvibKBBanF/EmorgkdPIagG/88kT9GtXtOIQp/HJLw3Ej5QPwEgrLYZ0YY6t53ZC6BmjDt0eSEShPmqte74KC7Qgo2hvA3grqp03vA7RG3cMCmtn/k0PH9ZY4ytTF7eozJCRim9AWa0HudpkGKbv3ijxrkBBhAGTCGQe96Tt5nBiKatheV3z4i2o4TtoRC6SEQZUEnWLszXOWtghhfe/V7QqB8jfMLxHW2qkueUkTz2IatYI+2hlkyTQRIKGPjKrnF8qAKz5/PZcoaL6pBaWcpsUEcpwQs6/aT0tmB2UGZNzrj02lREEgGajjuqHMH/rwmqIQTV38KohBniPDkDV9jdIyU1HVlm5dElah29WMC+RWC6bN2GbOvn1+s6iQwNNLUGU=";

#[test]
fn formats_vkeys() {
    // Type 0x01, converted to a cosignature verifier.
    let test01 = "TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6";
    let plain = Ed25519Verifier::from_vkey(test01).unwrap();
    assert_eq!(plain.to_vkey(), test01);
    let cosig = CosignatureVerifier::from_vkey(test01).unwrap();
    assert_eq!(cosig.public_key(), plain.public_key());
    assert_ne!(cosig.key_id(), 0x7997405c);
    assert!(cosig.to_vkey().contains("+B"));
    assert_eq!(
        CosignatureVerifier::from_vkey(&cosig.to_vkey()).unwrap(),
        cosig
    );

    // Type 0x04.
    let remora = "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2";
    let v = CosignatureVerifier::from_vkey(remora).unwrap();
    assert_eq!(v.key_id(), 0xda77ade7);
    assert_eq!(v.to_vkey(), remora);
    assert_eq!(
        Ed25519Verifier::from_vkey(remora),
        Err(KeyError::Type(0x04))
    );

    let wrong_id = remora.replace("+da77ade7+", "+da77ade8+");
    assert!(matches!(
        VerifierKey::parse(&wrong_id),
        Err(KeyError::KeyId { .. })
    ));

    // Type 0x06 (ML-DSA-44): the generic parser splits it (its written ID is not the signed-note
    // formula's, and formats never checks it, so we take it as written); the Ed25519 ones refuse
    // it.
    let ml = VerifierKey::parse(MLDSA_VKEY).unwrap();
    assert_eq!(
        (ml.key_type, ml.key.len(), ml.key_id),
        (0x06, 1312, 0x5893dc2c)
    );
    assert_eq!(ml.to_vkey(), MLDSA_VKEY);
    assert_eq!(
        Ed25519Verifier::from_vkey(MLDSA_VKEY),
        Err(KeyError::Type(0x06))
    );
    assert_eq!(
        CosignatureVerifier::from_vkey(MLDSA_VKEY),
        Err(KeyError::Type(0x06))
    );

    // Failing cases from the same test.
    for bad in [
        "bananas.sigstore.dev+12344556",
        "rekor.sigstore.dev+12345678+THIS_IS_NOT_BASE64!",
        "rekor.sigstore.dev+NOT_A_NUMBER+AwEB",
        "rekor.sigstore.dev+00000000+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6",
    ] {
        assert!(VerifierKey::parse(bad).is_err(), "{bad}");
        assert!(CosignatureVerifier::from_vkey(bad).is_err(), "{bad}");
    }
    // An unknown type (0x03) is not taken for Ed25519; its ID is not ours to check.
    let unknown = "rekor.sigstore.dev+12345678+AwEB";
    assert_eq!(VerifierKey::parse(unknown).unwrap().key_type, 0x03);
    assert_eq!(
        Ed25519Verifier::from_vkey(unknown),
        Err(KeyError::Type(0x03))
    );
    assert_eq!(
        CosignatureVerifier::from_vkey(unknown),
        Err(KeyError::Type(0x03))
    );

    // A witness-network vkey whose base64 contains '+'.
    let geomys = "keyserver.geomys.org+16b31509+ARLJ+pmTj78HzTeBj04V+LVfB+GFAQyrg54CRIju7Nn8";
    assert_eq!(
        Ed25519Verifier::from_vkey(geomys).unwrap().to_vkey(),
        geomys
    );
}

// ---------------------------------------------------------------------------------------------
// tlog-witness examples.

#[test]
fn origin_hash_example() {
    assert_eq!(
        witness::origin_hash("example.com/behind-the-sofa"),
        "5fd2dc0beb4ce54da5050cf6d5c75248b023abad441c3cecde3976fbe9da4fe4"
    );
}

#[test]
fn tlog_witness_request_example() {
    let body = "old 20852014
PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=
jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=
5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=
/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=

example.com/behind-the-sofa
20852163
CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=

— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=
— example.com/behind-the-sofa opLqBQsREYCgu6xQkYQwJr9fo45a62DN9EdmHXnZdXNqlcVGlCum2Wks+49/V6267UEjw6QUXTS5Rovnzv++qbSzm9Q=
";
    let req = AddCheckpointRequest::parse(body.as_bytes()).unwrap();
    assert_eq!(req.old_size(), 20852014);
    assert_eq!(req.proof().len(), 4);
    assert_eq!(
        req.proof()[2],
        Hash::from_base64("5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=").unwrap()
    );
    assert_eq!(req.to_bytes(), body.as_bytes());
    let n = Note::parse(req.checkpoint()).unwrap();
    let ids: Vec<u32> = n.signatures().iter().map(NoteSignature::key_id).collect();
    assert_eq!(ids, [0x033de0ae, 0xa292ea05]);
    let c = Checkpoint::parse(n.text()).unwrap();
    assert_eq!(
        (c.origin(), c.size()),
        ("example.com/behind-the-sofa", 20852163)
    );
    assert!(c.size() >= req.old_size());
}

#[test]
fn tlog_witness_response_example() {
    let body = "— witness.example/w1 CMp+6LWBU0anHGH5aNDTJkH/gj79sG+T6+iP2ThYN5krrDJbR1HDnucjL39QsZTSvVjyQLrdk3DXDqI5G2HgLatVs0pWh6Up69HVOw==
— witness.example/w1 I7rEps0pvK2UqkS2gSpVUDhrhVtQV9lgF6pRrWAvjJHjyWpW7VcE3SiOlVlbQNt64vWhO+DlkL0+UfzuOBMh9ChdMkP1vi/lCAsmlw==
— witness.example/w2 AWui8Sk55XjYLOijihBjhqEH6nS1ndDymE0a+6idX7pLcnoB+dhnz0854aLZgrrKbYKA7nC3HNJhm/kWl7oJlqU3rXXvpysAdyP3wQ==
";
    let sigs = witness::parse_cosignature_lines(body.as_bytes()).unwrap();
    assert_eq!(witness::format_signature_lines(&sigs), body);
    let summary: Vec<(&str, u32)> = sigs.iter().map(|s| (s.name(), s.key_id())).collect();
    assert_eq!(
        summary,
        [
            ("witness.example/w1", 0x08ca7ee8),
            ("witness.example/w1", 0x23bac4a6),
            ("witness.example/w2", 0x016ba2f1)
        ]
    );
    // The example's bytes are illustrative: the first two "timestamps" exceed 2^63-1.
    assert!(matches!(
        cosignature_timestamp(&sigs[0]),
        Err(CosignatureError::Timestamp(_))
    ));
    assert_eq!(cosignature_timestamp(&sigs[2]), Ok(2970657736413210787));
}

// ---------------------------------------------------------------------------------------------
// Oracle: Cloudflare's signed_note crate.

fn oracle_verifiers(vkeys: &[String]) -> signed_note::VerifierList {
    signed_note::VerifierList::new(
        vkeys
            .iter()
            .map(|k| {
                Box::new(signed_note::StandardVerifier::new(k).unwrap())
                    as Box<dyn signed_note::Verifier>
            })
            .collect(),
    )
}

fn oracle_sign(text: &str, skeys: &[String]) -> Vec<u8> {
    let signers: Vec<signed_note::StandardSigner> = skeys
        .iter()
        .map(|k| signed_note::StandardSigner::new(k).unwrap())
        .collect();
    let dyns: Vec<&dyn signed_note::Signer> = signers
        .iter()
        .map(|s| s as &dyn signed_note::Signer)
        .collect();
    let mut n = signed_note::Note::new(text.as_bytes(), &[]).unwrap();
    n.add_sigs(&dyns).unwrap();
    n.to_bytes()
}

#[test]
fn oracle_keys_match() {
    for (i, name) in ["a", "example.com/log", "sigsum.org/v1/tree/x", "é"]
        .iter()
        .enumerate()
    {
        let s = Ed25519Signer::from_seed(name, [i as u8 + 1; 32]).unwrap();
        let pk = ed25519_dalek::VerifyingKey::from_bytes(&s.public_key()).unwrap();
        assert_eq!(
            signed_note::new_ed25519_verifier_key(name, &pk),
            s.verifier().to_vkey()
        );
        let mut material = vec![0x01];
        material.extend_from_slice(&s.public_key());
        assert_eq!(signed_note::key_id(name, &material), s.key_id());
        assert_eq!(note::key_id(name, &material), s.key_id());
        assert!(signed_note::StandardSigner::new(&s.to_skey()).is_ok());
    }
}

#[test]
fn oracle_go_vectors_verify() {
    let vkeys = [PETER_VKEY.to_owned(), ENOCH_VKEY.to_owned()];
    let n = signed_note::Note::from_bytes(&go_note(&[PETER_SIG, ENOCH_SIG])).unwrap();
    let (verified, _) = n.verify(&oracle_verifiers(&vkeys)).unwrap();
    assert_eq!(verified.len(), 2);
    assert_eq!(
        oracle_sign(GO_TEXT, &[PETER_SKEY.to_owned()]),
        go_note(&[PETER_SIG])
    );
}

fn text_strategy() -> impl Strategy<Value = String> {
    prop::collection::vec("[^\\x00-\\x1f]{0,30}", 1..6)
        .prop_map(|lines| lines.iter().map(|l| format!("{l}\n")).collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Notes we sign are byte-identical to the oracle's, and each side verifies the other's.
    #[test]
    fn oracle_sign_and_verify_agree(
        text in text_strategy(),
        seeds in prop::collection::vec(1u8..=255, 1..4),
    ) {
        let signers: Vec<Ed25519Signer> = seeds
            .iter()
            .enumerate()
            .map(|(i, s)| Ed25519Signer::from_seed(&format!("example.com/k{i}"), [*s; 32]).unwrap())
            .collect();
        let dyns: Vec<&dyn Signer> = signers.iter().map(|s| s as &dyn Signer).collect();
        let ours = Note::sign(&text, &dyns).unwrap().to_bytes();
        let skeys: Vec<String> = signers.iter().map(Ed25519Signer::to_skey).collect();
        let theirs = oracle_sign(&text, &skeys);
        prop_assert_eq!(&ours, &theirs);

        let vkeys: Vec<String> = signers.iter().map(|s| s.verifier().to_vkey()).collect();
        let oracle = signed_note::Note::from_bytes(&ours).unwrap();
        prop_assert!(oracle.verify(&oracle_verifiers(&vkeys)).is_ok());

        let verifiers: Vec<Ed25519Verifier> =
            vkeys.iter().map(|k| Ed25519Verifier::from_vkey(k).unwrap()).collect();
        let vd: Vec<&dyn Verifier> = verifiers.iter().map(|v| v as &dyn Verifier).collect();
        let parsed = Note::parse(&theirs).unwrap();
        prop_assert_eq!(parsed.to_bytes(), theirs);
        prop_assert_eq!(note::verify(&parsed, &vd).unwrap().len(), signers.len());
    }

    /// Differential: mutate one byte of a signed note; we accept (parse and verify) exactly when
    /// the oracle does.
    #[test]
    fn oracle_agrees_on_mutations(
        text in text_strategy(),
        pos in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let s = Ed25519Signer::from_seed("example.com/k", [7; 32]).unwrap();
        let mut bytes = Note::sign(&text, &[&s]).unwrap().to_bytes();
        let i = pos.index(bytes.len());
        bytes[i] = byte;
        let v = s.verifier();
        let ours = Note::parse(&bytes).and_then(|n| note::verify(&n, &[&v]));
        let theirs = signed_note::Note::from_bytes(&bytes)
            .and_then(|n| n.verify(&oracle_verifiers(&[v.to_vkey()])).map(|_| ()));
        prop_assert_eq!(ours.is_ok(), theirs.is_ok(), "ours {:?} theirs {:?}", ours, theirs.err());
    }
}
