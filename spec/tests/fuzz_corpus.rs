//! Runs every fuzz target's round-trip check over its seed corpus in `fuzz/corpus/<target>/`, so
//! CI exercises the targets on stable Rust, without libFuzzer.

use std::fs;
use std::path::Path;

use sealtrail_spec::roundtrip;

type Check = fn(&[u8]);

/// Every fuzz target and its round-trip check. Adding a target is one line here, one file in
/// `fuzz/fuzz_targets/`, one `[[bin]]` in `fuzz/Cargo.toml` and its seeds in `fuzz/corpus/`.
const TARGETS: &[(&str, Check)] = &[
    ("tile_path", roundtrip::tile_path),
    ("entry_bundle", roundtrip::entry_bundle),
    ("leaf_envelope", roundtrip::leaf_envelope),
];

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
