//! Backup and restore end to end, on redb data directories: export a running log while appends
//! go on, audit the export with the verifier, import it into a new data directory, and check the
//! restored log serves the same checkpoint, proofs and private records and continues
//! consistently. Tampered, truncated and foreign exports (tiles or records files) are refused and
//! leave nothing behind. A backup taken before an erasure never brings the erased records back,
//! even with records files older than the erasure, and compaction then removes every byte of
//! them; a public-only export holds no content at all.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use common::Live;
use sealtrail_server::auth::{Role, TokenEntry};
use sealtrail_server::config::Config;
use sealtrail_server::export::{self, DirSource, ExportError, HttpSource};
use sealtrail_server::store::{self, Engine, LogStore};
use sealtrail_spec::Hash;
use sealtrail_spec::envelope::LeafEnvelope;
use sealtrail_spec::merkle::verify_consistency;
use sealtrail_spec::note::Ed25519Signer;
use sealtrail_spec::record::PrivateRecord;
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
    // The same export as an archive (`export --archive`): the verifier audits the file itself,
    // and a flipped byte in it fails.
    let archive = tmp.path().join("backup.tar.gz");
    sealtrail_server::archive::write(&out, &archive).unwrap();
    assert_eq!(audit(&archive), again.size);
    let mut bytes = std::fs::read(&archive).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x20;
    let damaged = tmp.path().join("damaged.tar.gz");
    std::fs::write(&damaged, bytes).unwrap();
    let trust = Trust::new(&signer().verifier().to_vkey(), None, WitnessArgs::default()).unwrap();
    let failed = sealtrail_verifier::source::Source::open(damaged.to_str().unwrap())
        .and_then(|source| sealtrail_verifier::audit::run(&trust, &source, None));
    assert!(
        matches!(failed, Err(sealtrail_verifier::Error::Failed(_))),
        "{failed:?}"
    );
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
    // The private records came back with the leaves (served anonymously on loopback).
    let j = back.json("v1/entries/17");
    assert_eq!(
        j["record"]["payload"],
        serde_json::json!({"history": "a", "n": 17}),
        "{j}"
    );
    assert_eq!(j["record"]["principal"], "anonymous", "{j}");
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
/// first export as it was, before the update. Tiles and bundles are never rewritten, so the old
/// ones are still there; a records file (`private/records/<N>`, one per bundle index whatever
/// its width) is rewritten when the bundle grows, so the partial bundle's records are its first
/// `width` lines (no erasure here, so the lines of the first export are unchanged).
fn copy_export(from: &Path, to: &Path, note: &[u8], size: u64) {
    for b in sealtrail_spec::tiles::all_bundles(size) {
        copy(from, to, &b.path());
        let rel = format!("{}/{}", export::RECORDS_DIR, b.index);
        let text = std::fs::read_to_string(from.join(&rel)).unwrap();
        let lines: String = text
            .split_inclusive('\n')
            .take(usize::from(b.width))
            .collect();
        assert_eq!(lines.lines().count(), usize::from(b.width), "{rel}");
        let dst = to.join(&rel);
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::write(dst, lines).unwrap();
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

    // A public leaf field changed inside an entry (bundles hold no payload since envelope v2):
    // a content type byte, still printable ASCII, so the envelope decodes and its record still
    // matches its commitment, but the root differs.
    let bundle = out.join("tile/entries/001");
    let good = std::fs::read(&bundle).unwrap();
    let mut bad = good.clone();
    let at = bad
        .windows(16)
        .position(|w| w == b"application/json")
        .unwrap()
        + "application/".len();
    bad[at] = b'k';
    sealtrail_spec::tiles::decode_bundle(&bad, Some(256)).unwrap();
    std::fs::write(&bundle, &bad).unwrap();
    refused(&out, &target, "root");
    // A truncated bundle.
    std::fs::write(&bundle, &good[..good.len() - 3]).unwrap();
    refused(&out, &target, "entry");
    // A missing bundle.
    std::fs::remove_file(&bundle).unwrap();
    refused(&out, &target, "No such file");
    std::fs::write(&bundle, &good).unwrap();

    // Tampered records files are refused, naming the file: every record is checked against
    // its leaf's payload size and commitment before anything is restored.
    let records = out.join(export::RECORDS_DIR).join("1");
    let good = std::fs::read_to_string(&records).unwrap();
    let lines: Vec<&str> = good.lines().collect();
    assert_eq!(lines.len(), 256);
    let with_line = |k: usize, line: &str| -> String {
        let mut l = lines.clone();
        l[k] = line;
        l.iter().map(|l| format!("{l}\n")).collect()
    };
    let record = |k: usize| -> PrivateRecord {
        PrivateRecord::decode(&B64.decode(lines[k].strip_prefix("r ").unwrap()).unwrap()).unwrap()
    };
    let line = |r: &PrivateRecord| format!("r {}", B64.encode(r.encode()));
    // One payload byte changed, same length: the commitment differs.
    let mut r = record(5);
    assert_eq!(
        String::from_utf8(r.payload.clone()).unwrap(),
        "{\"history\":\"t\",\"n\":261}"
    );
    let at = r.payload.iter().position(|&b| b == b't').unwrap();
    r.payload[at] = b'u';
    std::fs::write(&records, with_line(5, &line(&r))).unwrap();
    refused(&out, &target, "private/records/1: entry 261");
    refused(&out, &target, "commitment");
    // Another principal: the commitment differs.
    let mut r = record(5);
    r.principal = "mallory".into();
    std::fs::write(&records, with_line(5, &line(&r))).unwrap();
    refused(&out, &target, "private/records/1: entry 261");
    // A payload of another length: the leaf's payload size differs.
    let mut r = record(5);
    r.payload.push(b' ');
    std::fs::write(&records, with_line(5, &line(&r))).unwrap();
    refused(&out, &target, "private/records/1: entry 261");
    // Two records swapped: each is a valid record, of another leaf.
    let mut swapped = lines.clone();
    swapped.swap(5, 6);
    let swapped: String = swapped.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&records, swapped).unwrap();
    refused(&out, &target, "private/records/1: entry 261");
    // A record replaced by a tombstone naming an entry that is not after it.
    std::fs::write(&records, with_line(5, "x 3")).unwrap();
    refused(&out, &target, "private/records/1: entry 261");
    // A line that is neither a record nor a tombstone, and a line too few.
    std::fs::write(&records, with_line(5, "r not-base64!")).unwrap();
    refused(&out, &target, "private/records/1 line 6");
    let short: String = lines[1..].iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&records, short).unwrap();
    refused(
        &out,
        &target,
        "private/records/1: 255 lines for 256 entries",
    );
    // A missing records file.
    std::fs::remove_file(&records).unwrap();
    refused(&out, &target, "No such file");
    std::fs::write(&records, &good).unwrap();

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

// Two submitters and an admin for the erasure test: tokens in the server's config by SHA-256.
const ALICE: &str = "stk_alice-token-for-export-import-tests-000000000";
const BOB: &str = "stk_bob-token-for-export-import-tests-00000000000";
const OPS: &str = "stk_ops-admin-token-for-export-import-tests-000000";
/// In alice's payloads only: what must be gone from every file once her records are erased.
const MARKER: &str = "ERASE-ME-4c1f9a7e-alice-personal-data";
/// In bob's payloads only: what must survive (and shows a file scan would find a payload).
const KEEP: &str = "KEEP-ME-8d02b6c3-bob-data";

fn privacy_config(dir: &Path) -> Config {
    let token = |name: &str, role, t: &str| TokenEntry {
        name: name.to_owned(),
        role,
        sha256: Hash(sealtrail_spec::hash::sha256(t.as_bytes())).to_hex(),
        expires_at: None,
    };
    let mut c = config(dir);
    c.auth.tokens = vec![
        token("alice", Role::Submitter, ALICE),
        token("bob", Role::Submitter, BOB),
        token("ops", Role::Admin, OPS),
    ];
    c
}

/// Appends `count` JSON entries as the token's principal; returns their indices.
fn append_as(live: &Live, token: &str, note: &str, first: u64, count: u64) -> Vec<u64> {
    let body: String = (first..first + count)
        .map(|n| format!("{{\"n\":{n},\"note\":\"{note}\"}}\n"))
        .collect();
    let r = live
        .http
        .post(format!("{}/v1/entries/batch?wait=checkpoint", live.url))
        .bearer_auth(token)
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().unwrap());
    let j: serde_json::Value = r.json().unwrap();
    assert_eq!(j["count"], count, "{j}");
    let start = j["first_index"].as_u64().unwrap();
    (start..start + count).collect()
}

/// Every file under `dir` (recursively) whose bytes contain `needle`, relative to `dir`.
fn files_containing(dir: &Path, needle: &str) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, needle: &[u8], hits: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                walk(root, &path, needle, hits);
            } else if std::fs::read(&path)
                .unwrap()
                .windows(needle.len())
                .any(|w| w == needle)
            {
                hits.push(path.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    let mut hits = Vec::new();
    walk(dir, dir, needle.as_bytes(), &mut hits);
    hits.sort();
    hits
}

/// The records of an export, decoded (they are base64 in the files, so a byte scan of the
/// export cannot see a payload): `(live records' "principal payload" lines, tombstones)`.
fn export_records(dir: &Path) -> (Vec<String>, usize) {
    let (mut live, mut erased) = (Vec::new(), 0);
    for e in std::fs::read_dir(dir.join(export::RECORDS_DIR)).unwrap() {
        for line in std::fs::read_to_string(e.unwrap().path()).unwrap().lines() {
            match line.split_once(' ').unwrap() {
                ("r", b64) => {
                    let r = PrivateRecord::decode(&B64.decode(b64).unwrap()).unwrap();
                    live.push(format!(
                        "{} {}",
                        r.principal,
                        String::from_utf8_lossy(&r.payload)
                    ));
                }
                ("x", _) => erased += 1,
                other => panic!("{other:?}"),
            }
        }
    }
    (live, erased)
}

/// How many of `records` hold `needle`.
fn count(records: &[String], needle: &str) -> usize {
    records.iter().filter(|r| r.contains(needle)).count()
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let path = e.unwrap().path();
        let dst = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_tree(&path, &dst);
        } else {
            std::fs::copy(&path, &dst).unwrap();
        }
    }
}

/// Checks a restored data directory: alice's records erased by one of `erasures`, bob's live
/// and matching their leaves' commitments, the erasure entries in place, and fsck clean.
fn check_restored(dir: &Path, alice: &[u64], bob: &[u64], erasures: &[u64]) {
    use sealtrail_server::store::RecordState;
    let store = open(dir);
    let leaf = |i: u64| LeafEnvelope::decode(&store.entry(i).unwrap().unwrap()).unwrap();
    for &i in alice {
        match store.record(i).unwrap() {
            RecordState::Erased(by) => assert!(erasures.contains(&by), "entry {i} erased by {by}"),
            other => panic!(
                "{}: alice's entry {i} is not erased: {other:?}",
                dir.display()
            ),
        }
    }
    for &i in bob {
        let RecordState::Live(bytes) = store.record(i).unwrap() else {
            panic!("{}: bob's entry {i} has no live record", dir.display());
        };
        let r = PrivateRecord::decode(&bytes).unwrap();
        assert_eq!(r.check(&leaf(i)), Ok(()), "entry {i}");
        assert_eq!(r.principal, "token:bob");
        assert_eq!(
            String::from_utf8(r.payload).unwrap(),
            format!("{{\"n\":{i},\"note\":\"{KEEP}\"}}")
        );
    }
    for &e in erasures {
        assert_eq!(
            leaf(e).event_type.as_deref(),
            Some(sealtrail_server::privacy::ERASURE_EVENT_TYPE)
        );
        assert!(matches!(store.record(e).unwrap(), RecordState::Live(_)));
    }
    let report =
        sealtrail_server::fsck::fsck(store.as_ref(), ORIGIN, &signer().verifier()).unwrap();
    assert!(report.ok(), "{}: {:?}", dir.display(), report.problems);
}

#[test]
fn a_backup_taken_before_an_erasure_and_restored_after_it_keeps_those_records_erased() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |name: &str| tmp.path().join(name);
    let live = Live::start(privacy_config(&p("data")), open(&p("data")), signer());
    // 8448 entries (33 full bundles) in alternating runs of 64. The import commits every 8192
    // entries, so alice's early records are restored in a commit before the one that holds the
    // erasure entries (re-applied to committed records) and her late ones in the same commit
    // (replaced before they are written); the erasure entries open bundle 33 of their own.
    let (mut alice, mut bob) = (Vec::new(), Vec::new());
    for run in 0..66 {
        alice.extend(append_as(&live, ALICE, MARKER, run * 128, 64));
        bob.extend(append_as(&live, BOB, KEEP, run * 128 + 64, 64));
    }
    assert_eq!(alice.len() + bob.len(), 8448);
    // Payloads are what the test says they are (indices and markers), served on loopback.
    let j = live.json(&format!("v1/entries/{}", bob[3]));
    assert_eq!(j["record"]["payload"]["note"], KEEP, "{j}");
    assert_eq!(j["record"]["principal"], "token:bob", "{j}");

    // The backup before the erasure, and a byte copy of it.
    let a = p("backup");
    let mut source = HttpSource::new(&live.url, None).unwrap();
    let first = export::export(&mut source, ORIGIN, &signer().verifier(), &a, false).unwrap();
    assert_eq!((first.size, first.erased_records), (8448, 0));
    let a_old = p("backup-old");
    copy_tree(&a, &a_old);
    let (records, erased) = export_records(&a_old);
    assert_eq!(
        (count(&records, MARKER), count(&records, KEEP), erased),
        (4224, 4224, 0)
    );
    assert_eq!(count(&records, "token:alice"), 4224);

    // Erase alice's records through the admin API (admin role: an anonymous caller is refused).
    let erase = |token: Option<&str>| {
        let mut req = live
            .http
            .post(format!("{}/v1/admin/erasures", live.url))
            .header("content-type", "application/json")
            .body(
                serde_json::json!({"principal": "token:alice", "reason": "erasure request 17"})
                    .to_string(),
            );
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().unwrap()
    };
    assert!(erase(None).status().is_client_error());
    assert!(erase(Some(BOB)).status().is_client_error());
    let r = erase(Some(OPS));
    assert!(r.status().is_success(), "{}", r.text().unwrap());
    let summary: serde_json::Value = r.json().unwrap();
    assert_eq!(summary["erased"], 64 * 66, "{summary}");
    // 4224 records: two erasure entries of at most 4096 indices each.
    let erasures: Vec<u64> = summary["erasure_entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_u64().unwrap())
        .collect();
    assert_eq!(erasures, vec![8448, 8449], "{summary}");
    let j = live.json(&format!("v1/entries/{}", alice[0]));
    assert!(
        j["record"].is_null() && j["erased"]["erasure_index"].is_u64(),
        "{j}"
    );

    // Re-export into the same backup: the records files now hold tombstones.
    let mut source = HttpSource::new(&live.url, None).unwrap();
    let again = export::export(&mut source, ORIGIN, &signer().verifier(), &a, false).unwrap();
    assert_eq!((again.size, again.erased_records), (8450, 4224));
    let (records, erased) = export_records(&a);
    assert_eq!(
        (count(&records, MARKER), count(&records, KEEP), erased),
        (0, 4224, 4224)
    );
    assert_eq!(count(&records, "token:alice"), 0);
    // The two erasure entries' own records (the admin's, no personal data of alice's).
    assert_eq!(count(&records, "token:ops"), 2);
    assert_eq!(files_containing(&a, MARKER), Vec::<String>::new());
    assert_eq!(audit(&a), 8450);

    // A public-only export (a mirror): no private directory, no content, no principal.
    let public = p("public");
    let mut source = HttpSource::new(&live.url, None).unwrap();
    let s = export::export(&mut source, ORIGIN, &signer().verifier(), &public, true).unwrap();
    assert_eq!(s.size, 8450);
    assert!(!public.join("private").exists());
    for needle in [MARKER, KEEP, "token:alice", "token:bob", "token:ops"] {
        assert_eq!(files_containing(&public, needle), Vec::<String>::new());
    }
    assert_eq!(audit(&public), 8450);
    live.stop();
    // A mirror is not a backup: it cannot be imported.
    refused(&public, &p("from-public"), "No such file");

    // (a) The updated backup restores with alice's records erased and bob's intact.
    let restored_a = p("restored-a");
    let s = export::import(&a, &config(&restored_a), signer()).unwrap();
    assert_eq!((s.size, s.erased_again), (8450, 0));
    check_restored(&restored_a, &alice, &bob, &erasures);
    // Served, the restored log says so too, and the verifier checks the erasure entry.
    let back = Live::start(privacy_config(&restored_a), open(&restored_a), signer());
    let j = back.json(&format!("v1/entries/{}", alice[100]));
    assert!(j["record"].is_null(), "{j}");
    assert!(
        erasures.contains(&j["erased"]["erasure_index"].as_u64().unwrap()),
        "{j}"
    );
    assert_eq!(j["restricted"], false, "{j}");
    let j = back.json(&format!("v1/entries/{}", bob[100]));
    assert_eq!(j["record"]["payload"]["note"], KEEP, "{j}");
    assert!(j["erased"].is_null(), "{j}");
    let trust = Trust::new(&signer().verifier().to_vkey(), None, WitnessArgs::default()).unwrap();
    let r = sealtrail_verifier::entry::run(&trust, &back.source(), alice[100]).unwrap();
    assert_eq!(r.json["record_status"], "erased", "{}", r.json);
    assert_eq!(
        r.json["erased"]["erasure_entry_verified"], true,
        "{}",
        r.json
    );
    let r = sealtrail_verifier::entry::run(&trust, &back.source(), bob[100]).unwrap();
    assert_eq!(r.json["record_status"], "verified", "{}", r.json);
    back.stop();

    // (b) Stale records files: the tiles hold the erasure entries, but the records files are
    // the ones from before the erasure (bundle 33, the erasure entries', is not in the old
    // backup, so it stays). The import re-applies the erasure entries it restores.
    let stale = p("backup-stale");
    copy_tree(&a, &stale);
    copy_tree(
        &a_old.join(export::RECORDS_DIR),
        &stale.join(export::RECORDS_DIR),
    );
    let (records, erased) = export_records(&stale);
    assert_eq!((count(&records, MARKER), erased), (4224, 0));
    let restored_b = p("restored-b");
    let s = export::import(&stale, &config(&restored_b), signer()).unwrap();
    assert_eq!((s.size, s.erased_again), (8450, 4224));
    check_restored(&restored_b, &alice, &bob, &erasures);
    // The import erased the stale records again and then compacted the new store, so their
    // bytes are not in its files even before anyone runs `sealtrail compact`.
    assert_eq!(files_containing(&restored_b, MARKER), Vec::<String>::new());
    assert!(!files_containing(&restored_b, KEEP).is_empty());

    // (c) After compaction no file of either restored data directory holds alice's data.
    for dir in [&restored_a, &restored_b] {
        let before = files_containing(dir, MARKER);
        eprintln!(
            "{}: before compaction the marker is in {before:?}",
            dir.file_name().unwrap().to_string_lossy()
        );
        let c = sealtrail_server::store::compact::compact(Engine::Redb, dir).unwrap();
        assert_eq!(c.size, 8450);
        assert_eq!(files_containing(dir, MARKER), Vec::<String>::new());
        // The scan does see payloads in the store's files: bob's are there.
        assert!(!files_containing(dir, KEEP).is_empty());
        check_restored(dir, &alice, &bob, &erasures);
    }
}

// A records file line `x E` must be backed by entry E: an erasure entry of the restored log that
// names the record. A damaged or forged backup claiming otherwise is refused, naming the file,
// like every other records file damage (it would restore into a directory fsck rejects).
#[test]
fn a_tombstone_naming_no_erasure_of_the_record_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let out = small_export(tmp.path());
    let records = out.join(export::RECORDS_DIR).join("1");
    let good = std::fs::read_to_string(&records).unwrap();
    // Entry 400 is an ordinary entry; entry 99999 is beyond the export's 600.
    for (k, forged) in [(5, "x 400"), (6, "x 99999")] {
        let mut lines: Vec<&str> = good.lines().collect();
        lines[k] = forged;
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        std::fs::write(&records, text).unwrap();
        let target = tmp.path().join(format!("restored-{k}"));
        refused(&out, &target, "private/records/1");
    }
}

/// An export's source whose checkpoint was read before an erasure and whose bundles and records
/// are read after it, as `HttpSource` reads them when an erasure commits between its
/// `GET /checkpoint` and its `GET /v1/entries` calls.
struct ReadAcrossAnErasure {
    note: Vec<u8>,
    inner: HttpSource,
}

impl export::Source for ReadAcrossAnErasure {
    fn checkpoint(&mut self) -> Result<Vec<u8>, ExportError> {
        Ok(self.note.clone())
    }

    fn bundle(&mut self, id: sealtrail_spec::tiles::BundleId) -> Result<Vec<u8>, ExportError> {
        self.inner.bundle(id)
    }

    fn records(
        &mut self,
        id: sealtrail_spec::tiles::BundleId,
    ) -> Result<Vec<sealtrail_server::sequencer::ImportRecord>, ExportError> {
        self.inner.records(id)
    }
}

// An export from a running server that races an erasure sees tombstones naming an erasure entry
// past the exported checkpoint. A backup must never restore into a directory fsck rejects: the
// export reads again (here the source keeps serving the old checkpoint, so it refuses).
#[test]
fn an_export_racing_an_erasure_never_restores_into_a_directory_fsck_rejects() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let live = Live::start(privacy_config(&data), open(&data), signer());
    append_as(&live, BOB, KEEP, 0, 100);
    append_as(&live, ALICE, MARKER, 100, 100);
    let note = live.get("checkpoint");
    let r = live
        .http
        .post(format!("{}/v1/admin/erasures", live.url))
        .bearer_auth(OPS)
        .header("content-type", "application/json")
        .body(r#"{"principal":"token:alice","reason":"erasure during a backup"}"#)
        .send()
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().unwrap());
    let mut source = ReadAcrossAnErasure {
        note,
        inner: HttpSource::new(&live.url, None).unwrap(),
    };
    let out = tmp.path().join("export");
    let exported = export::export(&mut source, ORIGIN, &signer().verifier(), &out, false);
    live.stop();
    let Ok(summary) = exported else {
        return; // refusing such an export is fine
    };
    assert_eq!(summary.size, 200);
    let restored = tmp.path().join("restored");
    if export::import(&out, &config(&restored), signer()).is_err() {
        return; // and so is refusing to import it
    }
    let store = open(&restored);
    let report =
        sealtrail_server::fsck::fsck(store.as_ref(), ORIGIN, &signer().verifier()).unwrap();
    let p = &report.problems;
    assert!(
        report.ok(),
        "{} problems, first {:?}",
        p.len(),
        &p[..p.len().min(2)]
    );
}
