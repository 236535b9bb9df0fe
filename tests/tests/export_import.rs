//! Backup and restore end to end, on redb data directories: export a running log while appends
//! go on, audit the export with the verifier, import it into a new data directory, and check the
//! restored log serves the same checkpoint and proofs and continues consistently. Tampered,
//! truncated and foreign exports are refused and leave nothing behind.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::Live;
use sealtrail_server::config::Config;
use sealtrail_server::export::{self, DirSource, ExportError, HttpSource};
use sealtrail_server::store::{self, Engine, LogStore};
use sealtrail_spec::Hash;
use sealtrail_spec::merkle::verify_consistency;
use sealtrail_spec::note::Ed25519Signer;
use sealtrail_verifier::trust::{Trust, WitnessArgs};

const ORIGIN: &str = "backup.sealtrail.example/log";

fn signer() -> Ed25519Signer {
    Ed25519Signer::from_seed(ORIGIN, [21; 32]).unwrap()
}

fn config(dir: &Path) -> Config {
    Config {
        origin: ORIGIN.to_owned(),
        data_dir: dir.to_owned(),
        ..Config::default()
    }
}

fn open(dir: &Path) -> Arc<dyn LogStore> {
    Arc::from(store::open(Engine::Redb, dir).unwrap())
}

fn start(dir: &Path) -> Live {
    Live::start(config(dir), open(dir), signer())
}

fn audit(dir: &Path) -> u64 {
    let trust = Trust::new(&signer().verifier().to_vkey(), None, WitnessArgs::default()).unwrap();
    let source = sealtrail_verifier::source::Source::open(dir.to_str().unwrap()).unwrap();
    let r = sealtrail_verifier::audit::run(&trust, &source, None).expect("the export audits");
    r.json["audited_to"].as_u64().unwrap()
}

fn checkpoint_size(note: &[u8]) -> (u64, Hash) {
    let v = sealtrail_spec::checkpoint::open(note, ORIGIN, &[&signer().verifier()]).unwrap();
    (v.checkpoint().size(), v.checkpoint().root())
}

#[test]
fn export_while_appending_audit_import_and_continue() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, out, restored) = (
        tmp.path().join("data"),
        tmp.path().join("export"),
        tmp.path().join("restored"),
    );
    let live = start(&data);
    live.append("a", 0, 1000);

    // Export while another thread keeps appending.
    let stop = AtomicBool::new(false);
    let summary = std::thread::scope(|s| {
        s.spawn(|| {
            let mut n = 1000;
            while !stop.load(Ordering::Relaxed) && n < 5000 {
                live.append("a", n, 100);
                n += 100;
            }
        });
        let mut source = HttpSource::new(&live.url, None).unwrap();
        let summary = export::export(&mut source, ORIGIN, &signer().verifier(), &out, false);
        stop.store(true, Ordering::Relaxed);
        summary.unwrap()
    });
    assert!(summary.size >= 1000);
    // The export is a valid static tlog-tiles log, checked by the independent verifier.
    assert_eq!(audit(&out), summary.size);
    let exported = std::fs::read(out.join("checkpoint")).unwrap();
    let (size, root) = checkpoint_size(&exported);
    assert_eq!(size, summary.size);

    // Bring the export up to date: only what changed is written, and it still audits.
    live.append("a", 9000, 300);
    let mut source = HttpSource::new(&live.url, None).unwrap();
    let again = export::export(&mut source, ORIGIN, &signer().verifier(), &out, false).unwrap();
    assert!(again.size >= size + 300);
    let full_bundles_before = size / 256;
    assert!(
        again.files_written < (again.size / 256 - full_bundles_before) * 3 + 20,
        "{again:?}"
    );
    assert_eq!(audit(&out), again.size);
    let live_checkpoint = live.get("checkpoint");
    let live_size = checkpoint_size(&live_checkpoint).0;
    live.stop();

    // Restore the first export.
    let first = tmp.path().join("first");
    copy_export(&out, &first, &exported, size);
    let summary = export::import(&first, &config(&restored), signer()).unwrap();
    assert_eq!((summary.size, summary.root), (size, root));
    let back = start(&restored);
    // The same checkpoint (the log's signature is deterministic) and the same proofs.
    assert_eq!(back.get("checkpoint"), exported);
    let j = back.json(&format!("v1/proof/inclusion?index=17&size={size}"));
    let proof: Vec<Hash> = j["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| Hash::from_base64(h.as_str().unwrap()).unwrap())
        .collect();
    let leaf = Hash::from_hex(j["leaf_hash"].as_str().unwrap()).unwrap();
    sealtrail_spec::merkle::verify_inclusion(17, size, &leaf, &proof, &root).unwrap();
    // It accepts new entries, consistently with the export.
    back.append("b", 0, 10);
    let (new_size, new_root) = checkpoint_size(&back.get("checkpoint"));
    assert_eq!(new_size, size + 10);
    let j = back.json(&format!("v1/proof/consistency?from={size}&to={new_size}"));
    let proof: Vec<Hash> = j["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| Hash::from_base64(h.as_str().unwrap()).unwrap())
        .collect();
    verify_consistency(size, new_size, &root, &new_root, &proof).unwrap();
    back.stop();
    assert!(live_size >= again.size);

    // A data directory that exists is never overwritten.
    let err = export::import(&first, &config(&restored), signer()).unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");
}

/// Copies the export's files of the tree at `size` (its checkpoint `note`) into `to`: the
/// first export as it was, before the update.
fn copy_export(from: &Path, to: &Path, note: &[u8], size: u64) {
    for b in sealtrail_spec::tiles::all_bundles(size) {
        copy(from, to, &b.path());
    }
    for t in sealtrail_spec::tiles::all_tiles(size) {
        copy(from, to, &t.path());
    }
    std::fs::write(to.join("checkpoint"), note).unwrap();
}

fn copy(from: &Path, to: &Path, rel: &str) {
    let dst = to.join(rel);
    std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
    std::fs::copy(from.join(rel), dst).unwrap();
}

/// An export of 600 entries made from a stopped server's store.
fn small_export(root: &Path) -> std::path::PathBuf {
    let data = root.join("data");
    let live = start(&data);
    live.append("t", 0, 600);
    live.stop();
    let out = root.join("export");
    let store = open(&data);
    let mut source = export::StoreSource(store.as_ref());
    let s = export::export(&mut source, ORIGIN, &signer().verifier(), &out, false).unwrap();
    assert_eq!(s.size, 600);
    out
}

fn refused(dir: &Path, target: &Path, naming: &str) {
    match export::import(dir, &config(target), signer()) {
        Err(ExportError::Invalid(m) | ExportError::Source { error: m, .. }) => {
            assert!(m.contains(naming), "{m:?} does not name {naming:?}");
        }
        other => panic!("want a refusal naming {naming:?}, got {other:?}"),
    }
    assert!(
        !target.exists(),
        "a refused import left {}",
        target.display()
    );
    let mut staging = target.as_os_str().to_owned();
    staging.push(".importing");
    assert!(
        !Path::new(&staging).exists(),
        "a refused import left its staging directory"
    );
}

#[test]
fn tampered_truncated_and_foreign_exports_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let out = small_export(tmp.path());
    let target = tmp.path().join("restored");

    // A payload byte changed inside an entry: the envelope still decodes, the root differs.
    let bundle = out.join("tile/entries/001");
    let good = std::fs::read(&bundle).unwrap();
    let mut bad = good.clone();
    let at = bad.windows(2).position(|w| w == b"\"t").unwrap() + 1;
    bad[at] = b'u';
    std::fs::write(&bundle, &bad).unwrap();
    refused(&out, &target, "root");
    // A truncated bundle.
    std::fs::write(&bundle, &good[..good.len() - 3]).unwrap();
    refused(&out, &target, "entry");
    // A missing bundle.
    std::fs::remove_file(&bundle).unwrap();
    refused(&out, &target, "No such file");
    std::fs::write(&bundle, &good).unwrap();

    // A checkpoint from another key (an impostor log with the same origin).
    let note = std::fs::read(out.join("checkpoint")).unwrap();
    let impostor = Ed25519Signer::from_seed(ORIGIN, [99; 32]).unwrap();
    let (size, root) = checkpoint_size(&note);
    let forged = sealtrail_spec::checkpoint::sign_checkpoint(
        &sealtrail_spec::checkpoint::Checkpoint::new(ORIGIN, size, root).unwrap(),
        &impostor,
    )
    .unwrap();
    std::fs::write(out.join("checkpoint"), &forged).unwrap();
    refused(&out, &target, "checkpoint");
    // A checkpoint claiming more entries than the export holds.
    let bigger = sealtrail_spec::checkpoint::sign_checkpoint(
        &sealtrail_spec::checkpoint::Checkpoint::new(ORIGIN, size + 1, root).unwrap(),
        &signer(),
    )
    .unwrap();
    std::fs::write(out.join("checkpoint"), &bigger).unwrap();
    refused(&out, &target, "No such file");
    std::fs::write(out.join("checkpoint"), &note).unwrap();

    // Restored intact once the export is intact again.
    let s = export::import(&out, &config(&target), signer()).unwrap();
    assert_eq!(s.size, 600);
    let store = open(&target);
    let report =
        sealtrail_server::fsck::fsck(store.as_ref(), ORIGIN, &signer().verifier()).unwrap();
    assert!(report.ok(), "{:?}", report.problems);
}

#[test]
fn an_export_of_another_history_is_not_extended() {
    let tmp = tempfile::tempdir().unwrap();
    let out = small_export(tmp.path());
    // Another log with the same key but a different history of 700 entries.
    let other = tmp.path().join("other");
    let live = start(&other);
    live.append("different", 0, 700);
    let mut source = HttpSource::new(&live.url, None).unwrap();
    let err = export::export(&mut source, ORIGIN, &signer().verifier(), &out, false).unwrap_err();
    assert!(err.to_string().contains("not a continuation"), "{err}");
    live.stop();
    // The earlier export is untouched and still audits.
    assert_eq!(audit(&out), 600);
    // A directory with other files is not an export target.
    let junk = tmp.path().join("junk");
    std::fs::create_dir(&junk).unwrap();
    std::fs::write(junk.join("notes.txt"), "x").unwrap();
    let mut source = DirSource(out.clone());
    let err = export::export(&mut source, ORIGIN, &signer().verifier(), &junk, false).unwrap_err();
    assert!(err.to_string().contains("neither empty"), "{err}");
}
