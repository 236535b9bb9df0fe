//! Several sequencers on one PostgreSQL database (a throwaway cluster): one log.

use std::collections::{BTreeMap, HashMap};

use sealtrail_spec::envelope::LeafEnvelope;

use super::*;
use crate::privacy::{Conditions, ErasureNote};
use crate::store::pg_cluster;
use crate::store::pg_store::{PgConfig, PgStore};
use crate::store::{EntryStore as _, RecordStore as _};

const ORIGIN: &str = "shared.test.example/log";

struct Instance {
    seq: SequencerHandle,
    thread: std::thread::JoinHandle<()>,
    metrics: Arc<Metrics>,
}

fn signer() -> Ed25519Signer {
    Ed25519Signer::from_seed(ORIGIN, [5; 32]).unwrap()
}

fn instance(url: &str) -> Instance {
    let store: Arc<dyn LogStore> = Arc::new(PgStore::connect(&PgConfig::new(url)).unwrap());
    let metrics = Arc::new(Metrics::new().unwrap());
    let config = SequencerConfig {
        origin: ORIGIN.into(),
        queue_entries: 10_000,
        commit_max_entries: 64,
        disk_guard: None,
    };
    let (seq, thread) = start(store, signer(), &config, metrics.clone()).unwrap();
    Instance {
        seq,
        thread,
        metrics,
    }
}

fn entries(principal: &str, tag: &str, n: usize) -> Vec<NewEntry> {
    (0..n)
        .map(|i| NewEntry {
            principal: principal.into(),
            content_type: "application/json".into(),
            event_type: Some("test".into()),
            payload: format!("{{\"tag\":\"{tag}\",\"i\":{i}}}").into_bytes(),
        })
        .collect()
}

fn is_conflict(e: &SequenceError) -> bool {
    matches!(
        e,
        SequenceError::Unavailable(Unavailable::Commit(CommitError::Store { error, .. }))
            if matches!(**error, StoreError::Conflict)
    )
}

/// Submits until an answer that is not an idempotency race lost to another instance (which
/// wrote nothing, so a retry is safe); any other error fails the test.
async fn submit(seq: &SequencerHandle, e: Vec<NewEntry>, idem: Option<Idempotency>) -> Sequenced {
    for _ in 0..50 {
        match seq.submit(e.clone(), idem).await {
            Ok(s) => return s,
            Err(err) if is_conflict(&err) => continue,
            Err(err) => panic!("submission failed: {err}"),
        }
    }
    panic!("50 idempotency conflicts in a row")
}

/// Three instances take writes at once: every acknowledged entry is in the one tree exactly
/// once at the index it was acknowledged with, a key raced on all three creates entries once,
/// sequencing times never go backwards, every checkpoint any instance published is the root of
/// a prefix of the final tree (so all are consistent), idle instances follow the others, and
/// fsck passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_instances_on_one_database_form_one_log() {
    let url = pg_cluster::shared().new_database();
    let nodes: Vec<Instance> = (0..3).map(|_| instance(&url)).collect();
    let mut tasks = tokio::task::JoinSet::new();
    for (n, node) in nodes.iter().enumerate() {
        for w in 0..4 {
            let seq = node.seq.clone();
            tasks.spawn(async move {
                let mut got = Vec::new();
                for i in 0..40 {
                    let tag = format!("n{n}w{w}i{i}");
                    let count = if i % 7 == 0 { 3 } else { 1 };
                    let idem = (i % 5 == 0).then(|| Idempotency {
                        key: sealtrail_spec::hash::sha256(tag.as_bytes()),
                        request_hash: [1; 32],
                    });
                    let e = entries("writer", &tag, count);
                    got.push((tag, submit(&seq, e, idem).await));
                }
                got
            });
        }
        // The same key on every instance at once.
        for k in 0..8 {
            let seq = node.seq.clone();
            tasks.spawn(async move {
                let tag = format!("raced{k}");
                let idem = Some(Idempotency {
                    key: sealtrail_spec::hash::sha256(tag.as_bytes()),
                    request_hash: [2; 32],
                });
                vec![(
                    tag.clone(),
                    submit(&seq, entries("racer", &tag, 2), idem).await,
                )]
            });
        }
    }
    let mut answers = Vec::new();
    while let Some(r) = tasks.join_next().await {
        answers.extend(r.unwrap());
    }

    let store = PgStore::connect(&PgConfig::new(&url)).unwrap();
    let size = store.tree_size().unwrap();
    let leaves = store.entries(0, size).unwrap();
    let hashes: Vec<Hash> = leaves
        .iter()
        .map(|l| sealtrail_spec::leaf_hash(l))
        .collect();

    // Exactly once, at the acknowledged index, with the acknowledged hashes.
    let mut owner: BTreeMap<u64, String> = BTreeMap::new();
    let mut raced: HashMap<String, Vec<&Sequenced>> = HashMap::new();
    for (tag, s) in &answers {
        let n = s.leaf_hashes.len() as u64;
        assert_eq!(
            &hashes[s.first_index as usize..(s.first_index + n) as usize],
            s.leaf_hashes.as_slice(),
            "{tag}: the entries at its acknowledged indices are not its own"
        );
        if tag.starts_with("raced") {
            raced.entry(tag.clone()).or_default().push(s);
            if s.duplicate {
                continue;
            }
        }
        assert!(!s.duplicate, "{tag}: a fresh key answered as a repeat");
        for i in s.first_index..s.first_index + n {
            if let Some(other) = owner.insert(i, tag.clone()) {
                panic!("index {i} acknowledged to both {other} and {tag}");
            }
        }
    }
    assert_eq!(
        owner.len() as u64,
        size,
        "the tree holds entries nobody was acknowledged"
    );
    for (tag, seen) in &raced {
        assert_eq!(seen.len(), 3, "{tag}");
        assert_eq!(
            seen.iter().filter(|s| !s.duplicate).count(),
            1,
            "{tag}: created more than once"
        );
        assert!(seen.iter().all(|s| s.first_index == seen[0].first_index));
    }
    // Times never go backwards, whichever instance stamped them.
    let times: Vec<u64> = leaves
        .iter()
        .map(|l| LeafEnvelope::decode(l).unwrap().time_ms)
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "times go backwards");
    // Every published checkpoint signs a prefix of the one tree.
    let verifier = signer().verifier();
    for (tag, s) in &answers {
        let cp = sealtrail_spec::checkpoint::open(&s.published.checkpoint, ORIGIN, &[&verifier])
            .unwrap();
        let c = cp.checkpoint();
        assert_eq!(
            c.root(),
            sealtrail_spec::merkle::tree_hash(&hashes[..c.size() as usize]),
            "{tag}: checkpoint of size {} is not a prefix of the log",
            c.size()
        );
    }
    let rebased: u64 = nodes.iter().map(|n| n.metrics.rebased_batches.get()).sum();
    assert!(rebased > 0, "no instance ever landed after another");
    // Idle instances follow: each publishes the final tree without writing again.
    for node in &nodes {
        let mut rx = node.seq.subscribe();
        tokio::time::timeout(
            std::time::Duration::from_secs(10),
            rx.wait_for(|p| p.size == size),
        )
        .await
        .expect("an instance did not follow the others within 10 s")
        .unwrap();
    }
    for node in nodes {
        node.seq.shutdown();
        node.thread.join().unwrap();
    }
    let report = crate::fsck::fsck(&store, ORIGIN, &verifier).unwrap();
    assert!(report.ok(), "{report:?}");
}

/// A hold placed through one instance binds an erasure asked of another, and an erasure
/// commits on a tree another instance has advanced since it was planned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holds_and_erasures_span_instances() {
    let url = pg_cluster::shared().new_database();
    let a = instance(&url);
    let b = instance(&url);
    let held = submit(&a.seq, entries("held-user", "h", 1), None).await;
    let free = submit(&a.seq, entries("free-user", "f", 1), None).await;
    let placed = a
        .seq
        .admin(AdminOp::PlaceHold {
            covers: Conditions {
                principal: Some("held-user".into()),
                ..Conditions::default()
            },
            reason: "litigation".into(),
            by: "admin".into(),
        })
        .await
        .unwrap();
    assert!(matches!(placed, AdminOutcome::HoldPlaced(_)));
    // B has written nothing since it started before the hold.
    let _ = submit(&a.seq, entries("other", "o", 2), None).await;
    let outcome = b
        .seq
        .admin(AdminOp::Erase {
            indices: vec![held.first_index, free.first_index],
            note: ErasureNote {
                request_id: "00".into(),
                part: 1,
                reason: "request".into(),
                selector: indices_selector(),
            },
            requested_by: "admin".into(),
        })
        .await
        .unwrap();
    let AdminOutcome::Erased {
        entry: Some(entry),
        erased,
        held: skipped,
        ..
    } = outcome
    else {
        panic!("{outcome:?}")
    };
    assert_eq!(erased, 1);
    assert_eq!(skipped, vec![held.first_index]);
    let store = PgStore::connect(&PgConfig::new(&url)).unwrap();
    assert_eq!(store.tree_size().unwrap(), entry + 1);
    assert_eq!(
        store.record(free.first_index).unwrap(),
        crate::store::RecordState::Erased(entry)
    );
    assert!(matches!(
        store.record(held.first_index).unwrap(),
        crate::store::RecordState::Live(_)
    ));
    for node in [a, b] {
        node.seq.shutdown();
        node.thread.join().unwrap();
    }
    let report = crate::fsck::fsck(&store, ORIGIN, &signer().verifier()).unwrap();
    assert!(report.ok(), "{report:?}");
}
