//! Moving a log between storage engines (`sealtrail migrate`): from an embedded data directory
//! into PostgreSQL and back, or between the embedded engines.
//!
//! Every row is copied as it is, nothing is recomputed: entries with their records and
//! tombstones, hash tiles, leaf-index rows, postings, legal holds, idempotency records, the
//! checkpoint and the forwarding cursors (so forwarding goes on where it stood, and a retried
//! request is still recognised). The source's checkpoint is verified with the log's key before
//! anything is written, and the target is verified after: its size and checkpoint equal the
//! source's, and `fsck` recomputes every hash, every tile and every commitment.
//!
//! The target must be empty. Rows go in through [`LogStore::commit`], entries first (chunk by
//! chunk, each commit carrying the source's final checkpoint), then the rest with no new
//! entries. A migration that stops half way therefore leaves a target whose tree is smaller than
//! its checkpoint: the server refuses to start on it, and `fsck` says so; start again on a new,
//! empty target. The source is only read: stop its server first (an embedded store is locked
//! by it anyway; on PostgreSQL stop every instance so the copy is one consistent state).

use sealtrail_spec::Hash;
use sealtrail_spec::note::Verifier;
use sealtrail_spec::tiles::all_tiles;

use crate::store::{Batch, LogStore, RecordState, StoreError, record_states};

/// Entries per commit while copying.
const ENTRY_CHUNK: u64 = 10_000;
/// Other rows per commit while copying.
const ROW_CHUNK: usize = 10_000;
/// Above every postings key: keys are an indexed value (bounded in length by the envelope's
/// limits) and an index.
const POSTINGS_END: [u8; 4096] = [0xFF; 4096];

/// What was copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The tree size.
    pub size: u64,
    /// The root hash, equal on both sides.
    pub root: Hash,
    /// Live records copied.
    pub records: u64,
    /// Tombstones of erased records copied.
    pub erased: u64,
    /// Hash tiles.
    pub tiles: u64,
    /// Leaf-index rows.
    pub leaf_runs: u64,
    /// Postings rows.
    pub postings: u64,
    /// Legal holds.
    pub holds: u64,
    /// Idempotency records.
    pub idempotency: u64,
    /// Forwarding cursors.
    pub cursors: u64,
}

/// Why a log could not be moved.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// Reading the source or writing the target failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The source's checkpoint is missing or not this log's.
    #[error("the source: {0}")]
    Source(String),
    /// The target is not empty.
    #[error("the target already holds a log ({0}); migrate into a new, empty one")]
    TargetNotEmpty(String),
    /// The copy does not verify.
    #[error("the copy does not verify: {0}")]
    Verify(String),
}

/// Copies the log in `from` into the empty store `to` and verifies the copy. `origin` and `key`
/// are the log's (the source's checkpoint must verify with them). `progress` hears about each
/// step.
pub fn migrate(
    from: &dyn LogStore,
    to: &dyn LogStore,
    origin: &str,
    key: &dyn Verifier,
    progress: &mut dyn FnMut(&str),
) -> Result<Report, MigrateError> {
    let size = from.tree_size()?;
    let checkpoint = from
        .checkpoint()?
        .ok_or_else(|| MigrateError::Source("it holds no checkpoint (an empty log)".into()))?;
    let opened = sealtrail_spec::checkpoint::open(&checkpoint, origin, &[key])
        .map_err(|e| MigrateError::Source(format!("its checkpoint: {e}")))?;
    let (cp_size, root) = (opened.checkpoint().size(), opened.checkpoint().root());
    if cp_size != size {
        return Err(MigrateError::Source(format!(
            "its checkpoint is for {cp_size} entries but it holds {size}; run `sealtrail fsck`"
        )));
    }
    let target = to.tree_size()?;
    if target != 0 || to.checkpoint()?.is_some() || to.entry(0)?.is_some() {
        return Err(MigrateError::TargetNotEmpty(format!("{target} entries")));
    }
    let mut report = Report {
        size,
        root,
        records: 0,
        erased: 0,
        tiles: 0,
        leaf_runs: 0,
        postings: 0,
        holds: 0,
        idempotency: 0,
        cursors: 0,
    };
    // Every commit carries the final checkpoint: see the module documentation.
    let empty = || Batch {
        old_size: size,
        checkpoint: checkpoint.clone(),
        ..Batch::default()
    };

    let mut at = 0;
    while at < size {
        let end = size.min(at + ENTRY_CHUNK);
        let entries = from.entries(at, end)?;
        let mut batch = Batch {
            old_size: at,
            entries,
            checkpoint: checkpoint.clone(),
            ..Batch::default()
        };
        for (i, state) in (at..).zip(record_states(from, at, end)?) {
            match state {
                RecordState::Live(r) => {
                    batch.records.push(Some(r));
                    report.records += 1;
                }
                RecordState::Erased(by) => {
                    batch.records.push(None);
                    batch.tombstones.push((i, by));
                    report.erased += 1;
                }
                RecordState::Absent => {
                    return Err(MigrateError::Source(format!(
                        "entry {i} has neither a record nor a tombstone; run `sealtrail fsck`"
                    )));
                }
            }
        }
        to.commit(&batch)?;
        at = end;
        progress(&format!("entries: {at} of {size}"));
    }

    let mut batch = empty();
    for id in all_tiles(size) {
        let bytes = from.tile(id.level, id.index)?.ok_or_else(|| {
            MigrateError::Source(format!(
                "tile {} is missing; run `sealtrail fsck`",
                id.path()
            ))
        })?;
        batch.tiles.push((id, bytes));
        report.tiles += 1;
        if batch.tiles.len() >= ROW_CHUNK {
            to.commit(&std::mem::replace(&mut batch, empty()))?;
        }
    }
    for run in 0..size / crate::leafindex::RUN {
        for bucket in 0..=u8::MAX {
            if let Some(row) = from.leaf_run(run, bucket)? {
                batch.leaf_runs.push((run, bucket, row));
                report.leaf_runs += 1;
            }
        }
        if batch.leaf_runs.len() >= ROW_CHUNK {
            to.commit(&std::mem::replace(&mut batch, empty()))?;
        }
    }
    to.commit(&std::mem::replace(&mut batch, empty()))?;
    progress(&format!(
        "tiles: {}, leaf-index rows: {}",
        report.tiles, report.leaf_runs
    ));

    let mut next: Vec<u8> = Vec::new();
    loop {
        let page = from.postings(&next, &POSTINGS_END, false, ROW_CHUNK)?;
        let Some((last, _)) = page.last() else { break };
        // The smallest key after `last`.
        next = last.clone();
        next.push(0);
        report.postings += page.len() as u64;
        to.commit(&Batch {
            postings: page,
            ..empty()
        })?;
    }
    let holds = from.holds()?;
    report.holds = holds.len() as u64;
    let mut after: Option<[u8; 32]> = None;
    loop {
        let page = from.idempotency_after(after.as_ref(), ROW_CHUNK)?;
        let Some((last, _)) = page.last() else { break };
        after = Some(*last);
        report.idempotency += page.len() as u64;
        to.commit(&Batch {
            idempotency: page,
            ..empty()
        })?;
    }
    to.commit(&Batch {
        holds_placed: holds,
        ..empty()
    })?;
    for (name, next) in from.sink_cursors()? {
        to.set_sink_cursor(&name, next)?;
        report.cursors += 1;
    }
    // The cursors become durable with a commit (see `CursorStore`).
    to.commit(&empty())?;
    progress(&format!(
        "postings: {}, holds: {}, idempotency records: {}, forwarding cursors: {}",
        report.postings, report.holds, report.idempotency, report.cursors
    ));

    verify(from, to, origin, key, &report)?;
    progress("verified: same size, same checkpoint, fsck OK");
    Ok(report)
}

/// The target holds the same tree and checkpoint as the source, and passes fsck.
fn verify(
    from: &dyn LogStore,
    to: &dyn LogStore,
    origin: &str,
    key: &dyn Verifier,
    report: &Report,
) -> Result<(), MigrateError> {
    let size = to.tree_size()?;
    if size != report.size {
        return Err(MigrateError::Verify(format!(
            "it holds {size} entries, the source {}",
            report.size
        )));
    }
    if to.checkpoint()? != from.checkpoint()? {
        return Err(MigrateError::Verify(
            "its checkpoint differs from the source's".into(),
        ));
    }
    let fsck = crate::fsck::fsck(to, origin, key)?;
    if !fsck.ok() {
        return Err(MigrateError::Verify(format!(
            "fsck: {}",
            fsck.problems.join("; ")
        )));
    }
    if fsck.root != Some(report.root) {
        return Err(MigrateError::Verify(
            "fsck recomputed another root than the checkpoint's".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use sealtrail_spec::note::Ed25519Signer;

    use super::*;
    use crate::metrics::Metrics;
    use crate::privacy::{Conditions, ErasureNote};
    use crate::sequencer::{
        AdminOp, Idempotency, NewEntry, SequencerConfig, SequencerHandle, indices_selector,
    };
    use crate::store::pg_cluster;
    use crate::store::pg_store::{PgConfig, PgStore};
    use crate::store::{Engine, RecordState};

    const ORIGIN: &str = "migrate.test.example/log";

    fn signer() -> Ed25519Signer {
        Ed25519Signer::from_seed(ORIGIN, [3; 32]).unwrap()
    }

    fn sequencer(store: Arc<dyn LogStore>) -> (SequencerHandle, std::thread::JoinHandle<()>) {
        let config = SequencerConfig {
            origin: ORIGIN.into(),
            queue_entries: 10_000,
            commit_max_entries: 1000,
            disk_guard: None,
        };
        crate::sequencer::start(store, signer(), &config, Arc::new(Metrics::new().unwrap()))
            .unwrap()
    }

    fn entry(principal: &str, i: u64) -> Vec<NewEntry> {
        vec![NewEntry {
            principal: principal.into(),
            content_type: "application/json".into(),
            event_type: Some(format!("type{}", i % 3)),
            payload: format!("{{\"i\":{i}}}").into_bytes(),
        }]
    }

    /// Everything a store holds that a migration must keep, read through the public traits.
    #[derive(Debug, PartialEq)]
    struct Contents {
        size: u64,
        checkpoint: Option<Vec<u8>>,
        entries: Vec<Vec<u8>>,
        records: Vec<RecordState>,
        tiles: Vec<Option<Vec<u8>>>,
        postings: Vec<(Vec<u8>, Vec<u8>)>,
        holds: Vec<(u64, Vec<u8>)>,
        idempotency: Vec<([u8; 32], crate::store::IdempotencyRecord)>,
        cursors: Vec<(String, u64)>,
        leaf_runs: Vec<Option<Vec<u8>>>,
    }

    fn contents(s: &dyn LogStore) -> Contents {
        let size = s.tree_size().unwrap();
        Contents {
            size,
            checkpoint: s.checkpoint().unwrap(),
            entries: s.entries(0, size).unwrap(),
            records: record_states(s, 0, size).unwrap(),
            tiles: all_tiles(size)
                .iter()
                .map(|id| s.tile(id.level, id.index).unwrap())
                .collect(),
            postings: s.postings(&[], &POSTINGS_END, false, usize::MAX).unwrap(),
            holds: s.holds().unwrap(),
            idempotency: s.idempotency_after(None, usize::MAX).unwrap(),
            cursors: s.sink_cursors().unwrap(),
            leaf_runs: (0..=u8::MAX).map(|b| s.leaf_run(0, b).unwrap()).collect(),
        }
    }

    /// A log with everything in it (more than one leaf-index run, idempotency records, an
    /// erasure, a legal hold, a forwarding cursor) moves redb → PostgreSQL → redb with every row
    /// intact, and each copy goes on as the same log: new checkpoints extend the old tree.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_log_moves_to_postgres_and_back_and_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let redb: Arc<dyn LogStore> =
            Arc::from(crate::store::open(Engine::Redb, &dir.path().join("a")).unwrap());
        let (seq, thread) = sequencer(redb.clone());
        let n = crate::leafindex::RUN + 500;
        // Submissions of 50 entries, every fifth with an idempotency key.
        for first in (0..n).step_by(50) {
            let idem = (first % 250 == 0).then(|| Idempotency {
                key: sealtrail_spec::hash::sha256(&first.to_be_bytes()),
                request_hash: [7; 32],
            });
            let batch = (first..n.min(first + 50))
                .flat_map(|i| entry(if i % 2 == 0 { "alice" } else { "bob" }, i))
                .collect();
            seq.submit(batch, idem).await.unwrap();
        }
        seq.admin(AdminOp::Erase {
            indices: vec![1, 3],
            note: ErasureNote {
                request_id: "01".into(),
                part: 1,
                reason: "request".into(),
                selector: indices_selector(),
            },
            requested_by: "admin".into(),
        })
        .await
        .unwrap();
        seq.admin(AdminOp::PlaceHold {
            covers: Conditions {
                principal: Some("alice".into()),
                ..Conditions::default()
            },
            reason: "audit".into(),
            by: "admin".into(),
        })
        .await
        .unwrap();
        seq.shutdown();
        thread.join().unwrap();
        redb.set_sink_cursor("siem", 42).unwrap();
        let original = contents(redb.as_ref());
        assert_eq!(original.size, n + 2);
        assert!(matches!(original.records[1], RecordState::Erased(_)));
        assert_eq!(original.holds.len(), 1);
        assert!(original.idempotency.len() > 10);
        assert!(original.leaf_runs.iter().any(Option::is_some));

        let url = pg_cluster::shared().new_database();
        let pg: Arc<dyn LogStore> = Arc::new(PgStore::connect(&PgConfig::new(&url)).unwrap());
        let key = signer().verifier();
        let mut steps = Vec::new();
        let report = migrate(redb.as_ref(), pg.as_ref(), ORIGIN, &key, &mut |s| {
            steps.push(s.to_owned())
        })
        .unwrap();
        assert_eq!(report.size, n + 2);
        assert_eq!((report.erased, report.holds, report.cursors), (2, 1, 1));
        assert!(steps.last().unwrap().starts_with("verified"));
        assert_eq!(contents(pg.as_ref()), original, "redb → postgres");
        // Into a store that is not empty: refused, nothing written.
        let again = migrate(redb.as_ref(), pg.as_ref(), ORIGIN, &key, &mut |_| {});
        assert!(
            matches!(again, Err(MigrateError::TargetNotEmpty(_))),
            "{again:?}"
        );
        // With another log's key: refused before anything is written.
        let other = Ed25519Signer::from_seed(ORIGIN, [4; 32])
            .unwrap()
            .verifier();
        let back_dir = dir.path().join("b");
        let back: Arc<dyn LogStore> =
            Arc::from(crate::store::open(Engine::Redb, &back_dir).unwrap());
        let wrong = migrate(pg.as_ref(), back.as_ref(), ORIGIN, &other, &mut |_| {});
        assert!(matches!(wrong, Err(MigrateError::Source(_))), "{wrong:?}");
        assert_eq!(back.tree_size().unwrap(), 0);

        migrate(pg.as_ref(), back.as_ref(), ORIGIN, &key, &mut |_| {}).unwrap();
        assert_eq!(contents(back.as_ref()), original, "postgres → redb");

        // Both copies go on as the same log.
        let hashes: Vec<Hash> = original
            .entries
            .iter()
            .map(|l| sealtrail_spec::leaf_hash(l))
            .collect();
        for store in [pg, back] {
            let (seq, thread) = sequencer(store.clone());
            let done = seq.submit(entry("carol", 0), None).await.unwrap();
            assert_eq!(done.first_index, n + 2, "continues the same tree");
            let mut all = hashes.clone();
            all.extend(done.leaf_hashes.iter().copied());
            assert_eq!(
                done.published.root,
                sealtrail_spec::merkle::tree_hash(&all),
                "the new checkpoint extends the migrated tree"
            );
            seq.shutdown();
            thread.join().unwrap();
            let report = crate::fsck::fsck(store.as_ref(), ORIGIN, &key).unwrap();
            assert!(report.ok(), "{report:?}");
        }
    }
}
