//! Runs every fuzz target's round-trip check over its seed corpus in `fuzz/corpus/<target>/`, so
//! CI exercises the targets on stable Rust, without libFuzzer.

use std::fs;
use std::path::Path;

use sealtrail_spec::checkpoint::Checkpoint;
use sealtrail_spec::envelope::LeafEnvelope;
use sealtrail_spec::note::Note;
use sealtrail_spec::policy::Policy;
use sealtrail_spec::record::PrivateRecord;
use sealtrail_spec::rfc3161::{Token, token_bytes};
use sealtrail_spec::roundtrip;
use sealtrail_spec::tiles::{TilePath, decode_bundle};
use sealtrail_spec::tlog_proof::TlogProof;
use sealtrail_spec::witness::{AddCheckpointRequest, parse_cosignature_lines};

type Check = fn(&[u8]);

/// Every fuzz target and its round-trip check. Adding a target is one line here, one file in
/// `fuzz/fuzz_targets/`, one `[[bin]]` in `fuzz/Cargo.toml` and its seeds in `fuzz/corpus/`.
const TARGETS: &[(&str, Check)] = &[
    ("tile_path", roundtrip::tile_path),
    ("entry_bundle", roundtrip::entry_bundle),
    ("leaf_envelope", roundtrip::leaf_envelope),
    ("private_record", roundtrip::private_record),
    ("note", roundtrip::note),
    ("checkpoint", roundtrip::checkpoint),
    ("cosignature", roundtrip::cosignature),
    ("witness_request", roundtrip::witness_request),
    ("tlog_proof", roundtrip::tlog_proof),
    ("policy", roundtrip::policy),
    ("rfc3161_token", roundtrip::rfc3161_token),
];

/// Whether each target's parser accepts an input, to check that seeds named `valid-*` parse and
/// seeds named `invalid-*` do not (so a near miss really is one, and stays one).
const ACCEPTS: &[(&str, Accepts)] = &[
    ("tile_path", |d| {
        std::str::from_utf8(d).is_ok_and(|t| TilePath::parse(t).is_ok())
    }),
    ("entry_bundle", |d| decode_bundle(d, None).is_ok()),
    ("leaf_envelope", |d| LeafEnvelope::decode(d).is_ok()),
    ("private_record", |d| PrivateRecord::decode(d).is_ok()),
    ("note", |d| Note::parse(d).is_ok()),
    ("checkpoint", |d| {
        std::str::from_utf8(d).is_ok_and(|t| Checkpoint::parse(t).is_ok())
    }),
    ("cosignature", |d| parse_cosignature_lines(d).is_ok()),
    ("witness_request", |d| {
        AddCheckpointRequest::parse(d).is_ok()
    }),
    ("tlog_proof", |d| TlogProof::parse(d).is_ok()),
    ("policy", |d| Policy::parse(d).is_ok()),
    ("rfc3161_token", |d| {
        token_bytes(d).is_ok_and(|t| Token::parse(t).is_ok())
    }),
];

type Accepts = fn(&[u8]) -> bool;

#[test]
fn every_target_passes_its_corpus() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    for (name, check) in TARGETS {
        let dir = corpus.join(name);
        let mut files = 0;
        for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            check(&fs::read(&path).unwrap());
            files += 1;
        }
        assert!(files > 0, "corpus of {name} is empty");
    }
}

#[test]
fn seeds_named_valid_parse_and_invalid_do_not() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    assert_eq!(ACCEPTS.len(), TARGETS.len());
    for (name, accepts) in ACCEPTS {
        for entry in fs::read_dir(corpus.join(name)).unwrap() {
            let path = entry.unwrap().path();
            let file = path.file_name().unwrap().to_string_lossy().into_owned();
            let ok = accepts(&fs::read(&path).unwrap());
            if file.starts_with("valid-") {
                assert!(ok, "{name}/{file} is rejected");
            } else if file.starts_with("invalid-") {
                assert!(!ok, "{name}/{file} is accepted");
            }
        }
    }
}

#[test]
fn every_fuzz_target_is_listed() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/fuzz_targets");
    let mut on_disk: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| {
            e.unwrap()
                .path()
                .file_stem()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = TARGETS.iter().map(|(n, _)| n.to_string()).collect();
    listed.sort();
    assert_eq!(on_disk, listed);
}
