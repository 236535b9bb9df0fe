//! `fsck` recomputes everything from the stored entries: it passes on a healthy log and names
//! each kind of damage.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::*;
use sealtrail_server::fsck::fsck;
use sealtrail_server::store::mem::MemStore;
use sealtrail_server::store::{EntryStore as _, RecordState, RecordStore as _, TileStore as _};
use sealtrail_spec::record::PrivateRecord;

async fn healthy_log(entries: usize) -> Arc<MemStore> {
    let store = Arc::new(MemStore::new());
    let log = TestLog::start(config(), store.clone());
    let mut n = 0;
    while n < entries {
        let k = (entries - n).min(700);
        let items: Vec<String> = (n..n + k).map(|i| format!("{{\"i\":{i}}}")).collect();
        let r = log
            .post_json("/v1/entries/batch", &format!("[{}]", items.join(",")))
            .await;
        assert_eq!(r.status, axum::http::StatusCode::CREATED);
        n += k;
    }
    log.stop().await;
    store
}

#[tokio::test]
async fn passes_on_healthy_logs_of_every_shape() {
    for size in [0usize, 1, 255, 256, 257, 1500, 65_536 + 300] {
        let store = healthy_log(size).await;
        let r = fsck(store.as_ref(), ORIGIN, &verifier()).unwrap();
        assert!(r.ok(), "size {size}: {:?}", r.problems);
        assert_eq!(r.size, size as u64);
        assert_eq!(r.entries, size as u64);
        assert_eq!(
            r.tiles as usize,
            sealtrail_spec::tiles::all_tiles(size as u64).len()
        );
    }
}

#[tokio::test]
async fn names_each_kind_of_damage() {
    let store = healthy_log(600).await;
    // A changed entry: its leaf no longer matches its tile.
    let mut e = store.entry(300).unwrap().unwrap();
    let last = e.len() - 2;
    e[last] ^= 1;
    store.corrupt_entry(300, e.clone());
    let r = fsck(store.as_ref(), ORIGIN, &verifier()).unwrap();
    assert!(!r.ok());
    assert!(
        r.problems.iter().any(|p| p.contains("tile/0/001")),
        "{:?}",
        r.problems
    );
    // An entry that is not an envelope at all.
    store.corrupt_entry(300, b"garbage".to_vec());
    let r = fsck(store.as_ref(), ORIGIN, &verifier()).unwrap();
    assert!(
        r.problems
            .iter()
            .any(|p| p.contains("entry 300 is not a valid leaf envelope")),
        "{:?}",
        r.problems
    );
    // Restore the entry, damage a tile instead.
    let store = healthy_log(600).await;
    let mut t = store.tile(0, 0).unwrap().unwrap();
    t[5] ^= 0x80;
    store.corrupt_tile(0, 0, t);
    let r = fsck(store.as_ref(), ORIGIN, &verifier()).unwrap();
    assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
    assert!(
        r.problems[0].contains("tile/0/000 differs"),
        "{:?}",
        r.problems
    );
    // A checkpoint signed by another key, or missing.
    let store = healthy_log(10).await;
    let other = sealtrail_spec::note::Ed25519Signer::from_seed(ORIGIN, [3; 32]).unwrap();
    let cp = sealtrail_spec::checkpoint::Checkpoint::new(ORIGIN, 10, sealtrail_spec::EMPTY_ROOT)
        .unwrap();
    store.corrupt_checkpoint(Some(
        sealtrail_spec::checkpoint::sign_checkpoint(&cp, &other).unwrap(),
    ));
    let r = fsck(store.as_ref(), ORIGIN, &verifier()).unwrap();
    assert!(
        r.problems.iter().any(|p| p.contains("stored checkpoint")),
        "{:?}",
        r.problems
    );
    store.corrupt_checkpoint(None);
    let r = fsck(store.as_ref(), ORIGIN, &verifier()).unwrap();
    assert_eq!(r.problems, ["no stored checkpoint"]);
    // A validly signed checkpoint for the wrong root.
    let signer = signer();
    let wrong = sealtrail_spec::checkpoint::Checkpoint::new(ORIGIN, 10, sealtrail_spec::EMPTY_ROOT)
        .unwrap();
    store.corrupt_checkpoint(Some(
        sealtrail_spec::checkpoint::sign_checkpoint(&wrong, &signer).unwrap(),
    ));
    let r = fsck(store.as_ref(), ORIGIN, &verifier()).unwrap();
    assert!(
        r.problems
            .iter()
            .any(|p| p.contains("differs from the recomputed root")),
        "{:?}",
        r.problems
    );
}

#[tokio::test]
async fn leaf_hash_lookups_cross_runs_and_a_bad_index_row_is_caught() {
    use sealtrail_server::leafindex::RUN;
    let size = 2 * RUN as usize + 1000;
    let store = healthy_log(size).await;
    let log = TestLog::start(config(), store.clone());
    for index in [0, 1, RUN - 1, RUN, RUN + 17, 2 * RUN, size as u64 - 1] {
        let e = log.get(&format!("/v1/entries/{index}")).await.json();
        let leaf = e["leaf_hash"].as_str().unwrap().to_owned();
        let p = log
            .get(&format!("/v1/proof/inclusion?leaf_hash={leaf}"))
            .await;
        assert_eq!(p.status, axum::http::StatusCode::OK, "{}", p.text());
        assert_eq!(p.json()["index"], index, "lookup of entry {index}");
        // At an older size that does not contain it, it is not found.
        if index > 0 {
            let old = log
                .get(&format!(
                    "/v1/proof/inclusion?leaf_hash={leaf}&size={index}"
                ))
                .await;
            assert_eq!(old.status, axum::http::StatusCode::NOT_FOUND);
        }
    }
    let missing = sealtrail_spec::leaf_hash(b"never appended").to_hex();
    let r = log
        .get(&format!("/v1/proof/inclusion?leaf_hash={missing}"))
        .await;
    assert_eq!(r.status, axum::http::StatusCode::NOT_FOUND);
    log.stop().await;
    assert!(fsck(store.as_ref(), ORIGIN, &verifier()).unwrap().ok());
    // A damaged index row is reported by fsck.
    store.corrupt_leaf_run(1, 7, vec![0; 10]);
    let r = fsck(store.as_ref(), ORIGIN, &verifier()).unwrap();
    assert_eq!(
        r.problems,
        ["leaf-index row 1/7 does not match the entries"]
    );
}

#[tokio::test]
async fn damaged_secondary_indexes_are_caught() {
    use sealtrail_server::query::{FIELD_EVENT_TYPE, FIELD_PRINCIPAL, encode_row, posting_key};
    use sealtrail_server::store::PostingStore as _;
    let store = healthy_log(1500).await;
    assert!(fsck(store.as_ref(), ORIGIN, &verifier()).unwrap().ok());
    let rows = store.postings(&[], &[0xFF], false, usize::MAX).unwrap();
    assert!(rows.len() >= 3, "one principal row per batch");
    let (key, row) = rows[1].clone();
    let indexes_problem = |store: &MemStore| {
        let r = fsck(store, ORIGIN, &verifier()).unwrap();
        assert!(!r.ok(), "damage not found");
        r.problems.join("; ")
    };
    // A missing row.
    store.corrupt_posting(key.clone(), None);
    assert!(indexes_problem(&store).contains("secondary indexes"));
    // A row pointing at other entries (same count).
    let mut shifted = sealtrail_server::query::decode_row(&row).unwrap();
    shifted[0] -= 1;
    store.corrupt_posting(key.clone(), Some(encode_row(&shifted)));
    assert!(indexes_problem(&store).contains("secondary indexes"));
    // Undecodable bytes.
    store.corrupt_posting(key.clone(), Some(vec![0x80]));
    assert!(indexes_problem(&store).contains("posting row"));
    store.corrupt_posting(key.clone(), Some(row.clone()));
    assert!(fsck(store.as_ref(), ORIGIN, &verifier()).unwrap().ok());
    // An extra posting for a value no entry has.
    let extra = posting_key(FIELD_EVENT_TYPE, b"never", 5);
    store.corrupt_posting(extra.clone(), Some(encode_row(&[5])));
    assert!(indexes_problem(&store).contains("secondary indexes"));
    store.corrupt_posting(extra, None);
    // A row past the tree.
    let past = posting_key(FIELD_PRINCIPAL, b"anonymous", 5000);
    store.corrupt_posting(past.clone(), Some(encode_row(&[5000])));
    assert!(indexes_problem(&store).contains("past the tree"));
    store.corrupt_posting(past, None);
    assert!(fsck(store.as_ref(), ORIGIN, &verifier()).unwrap().ok());
}

#[tokio::test]
async fn damaged_records_and_erasures_are_caught() {
    let problems = |store: &MemStore| fsck(store, ORIGIN, &verifier()).unwrap().problems;
    let has = |ps: &[String], s: &str| ps.iter().any(|p| p.contains(s));
    let store = healthy_log(20).await;
    let RecordState::Live(bytes) = store.record(5).unwrap() else {
        panic!("record 5 is live");
    };
    // A record whose payload changed: it no longer matches the leaf's commitment.
    let mut r = PrivateRecord::decode(&bytes).unwrap();
    r.payload = b"{\"i\":99}".to_vec();
    store.corrupt_record(5, RecordState::Live(r.encode()));
    let ps = problems(&store);
    assert!(
        has(&ps, "record of entry 5 does not match its leaf"),
        "{ps:?}"
    );
    // A lost record.
    store.corrupt_record(5, RecordState::Live(bytes));
    store.corrupt_record(6, RecordState::Absent);
    assert!(has(&problems(&store), "record of entry 6 is missing"));
    // A silent erasure: a tombstone no erasure entry claims.
    let store = healthy_log(20).await;
    store.corrupt_record(8, RecordState::Erased(15));
    let ps = problems(&store);
    assert!(
        has(&ps, "name entry 15, which is not an erasure entry"),
        "{ps:?}"
    );
    store.corrupt_record(8, RecordState::Erased(3));
    assert!(has(&problems(&store), "cannot have erased it"));
    // An erasure entry that claims records which are still there.
    let store = Arc::new(MemStore::new());
    let log = TestLog::start(config(), store.clone());
    for i in 0..4 {
        log.post_json("/v1/entries", &format!("{{\"i\":{i}}}"))
            .await;
    }
    let seq = log.server.as_ref().unwrap().state().seq.clone();
    erase_indices(&seq, vec![1, 2]).await;
    log.stop().await;
    assert!(problems(&store).is_empty());
    let live = |i: u8| {
        PrivateRecord {
            salt: [i; 32],
            principal: "anonymous".into(),
            payload: b"{}".to_vec(),
        }
        .encode()
    };
    store.corrupt_record(2, RecordState::Live(live(2)));
    let ps = problems(&store);
    assert!(
        has(&ps, "erasure entry 4 and the tombstones disagree"),
        "{ps:?}"
    );
    store.corrupt_record(1, RecordState::Live(live(1)));
    let ps = problems(&store);
    assert!(has(&ps, "none of them is erased"), "{ps:?}");
}
