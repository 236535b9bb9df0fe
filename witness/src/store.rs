//! The witness state in one redb file, `witness.redb`, in the data directory.
//!
//! Contract:
//! - Per origin, the latest cosigned checkpoint as the note served by the monitoring API (the
//!   checkpoint text, the log signatures the witness verified and its own cosignature). No entry
//!   means "never cosigned", which add-checkpoint treats as size 0 with the empty-tree root.
//! - Per origin, at most one split-view record (both signed notes as evidence). While one exists
//!   the witness does not cosign that origin; only [`Store::clear_split_view`] (the operator
//!   command) removes it.
//! - Every write is one redb write transaction committed with `Durability::Immediate` (fsync)
//!   before the method returns: a cosignature is only handed out after its state is durable.
//!   redb runs one write transaction at a time, so [`Store::compare_and_swap`] is atomic: the
//!   stored state is compared and replaced under the writer lock, and racing requests can never
//!   roll it back.
//! - Methods block (disk I/O); async callers use `spawn_blocking`.
//! - One process at a time: opening a store another handle holds fails with
//!   [`StoreError::Locked`].
//!
//! The store is trusted for durability, not for truth: stored notes are re-parsed on read and a
//! note that is not a checkpoint is reported as corrupt.

use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use sealtrail_spec::checkpoint::Checkpoint;
use sealtrail_spec::note::Note;
use sealtrail_spec::{EMPTY_ROOT, Hash};
use serde::{Deserialize, Serialize};

/// The store's file name inside the data directory.
pub const FILE_NAME: &str = "witness.redb";

const CHECKPOINTS: TableDefinition<&str, &[u8]> = TableDefinition::new("checkpoints");
const SPLIT_VIEWS: TableDefinition<&str, &[u8]> = TableDefinition::new("split_views");

/// A store failure.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// Another process (or handle) has the store open.
    #[error("{0} is in use by another process (is the witness running? stop it first)")]
    Locked(PathBuf),
    /// I/O or database failure.
    #[error("store: {0}")]
    Io(String),
    /// Stored bytes do not decode.
    #[error("store is corrupt: {0}")]
    Corrupt(String),
}

fn db_err<E: Into<redb::Error>>(what: &'static str) -> impl FnOnce(E) -> StoreError {
    move |e| StoreError::Io(format!("{what}: {}", e.into()))
}

/// The latest cosigned checkpoint of one log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cosigned {
    /// The checkpoint body.
    pub checkpoint: Checkpoint,
    /// The note served by the monitoring API.
    pub note: Vec<u8>,
}

/// Evidence of a split view: two checkpoints validly signed by the same log that cannot both be
/// views of one append-only tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitView {
    /// The log.
    pub origin: String,
    /// Unix time (seconds) of detection.
    pub detected_at: u64,
    /// Where the conflicting checkpoint came from (`peer <url>`, `log <url>`, `add-checkpoint`).
    pub source: String,
    /// Why the two are inconsistent.
    pub reason: String,
    /// Our cosigned checkpoint note.
    pub ours: String,
    /// The conflicting signed checkpoint note.
    pub theirs: String,
}

/// The outcome of [`Store::compare_and_swap`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Swap {
    /// The new checkpoint is stored.
    Stored,
    /// The stored state changed since it was read; the current size.
    Conflict(u64),
    /// A split view was recorded for this origin; nothing was stored.
    Blocked,
}

/// The witness's redb store.
#[derive(Debug)]
pub struct Store {
    db: Database,
}

impl Store {
    /// Opens `dir/witness.redb`, creating the directory and the file if needed.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Io(format!("creating {}: {e}", dir.display())))?;
        let path = dir.join(FILE_NAME);
        let db = Database::create(&path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::Locked(path.clone()),
            other => StoreError::Io(format!("opening {}: {other}", path.display())),
        })?;
        let txn = db.begin_write().map_err(db_err("begin write"))?;
        txn.open_table(CHECKPOINTS)
            .map_err(db_err("open checkpoints"))?;
        txn.open_table(SPLIT_VIEWS)
            .map_err(db_err("open split views"))?;
        txn.commit().map_err(db_err("commit"))?;
        // The new file's directory entry must survive a crash like the data in it.
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| StoreError::Io(format!("syncing {}: {e}", dir.display())))?;
        Ok(Store { db })
    }

    /// The latest cosigned checkpoint of `origin`, if any.
    pub fn latest(&self, origin: &str) -> Result<Option<Cosigned>, StoreError> {
        let txn = self.db.begin_read().map_err(db_err("begin read"))?;
        let table = txn
            .open_table(CHECKPOINTS)
            .map_err(db_err("open checkpoints"))?;
        let value = table.get(origin).map_err(db_err("read checkpoint"))?;
        value.map(|v| decode_cosigned(v.value())).transpose()
    }

    /// Stores `note` (a checkpoint of `origin`) if the stored state is still `expected` (size
    /// and root; `(0, EMPTY_ROOT)` when nothing is stored) and no split view is recorded, in one
    /// durable transaction.
    pub fn compare_and_swap(
        &self,
        origin: &str,
        expected: (u64, Hash),
        note: &[u8],
    ) -> Result<Swap, StoreError> {
        let txn = self.db.begin_write().map_err(db_err("begin write"))?;
        {
            let splits = txn
                .open_table(SPLIT_VIEWS)
                .map_err(db_err("open split views"))?;
            if splits
                .get(origin)
                .map_err(db_err("read split view"))?
                .is_some()
            {
                return Ok(Swap::Blocked);
            }
            let mut table = txn
                .open_table(CHECKPOINTS)
                .map_err(db_err("open checkpoints"))?;
            let current = match table.get(origin).map_err(db_err("read checkpoint"))? {
                Some(v) => {
                    let c = decode_cosigned(v.value())?.checkpoint;
                    (c.size(), c.root())
                }
                None => (0, EMPTY_ROOT),
            };
            if current != expected {
                return Ok(Swap::Conflict(current.0));
            }
            table
                .insert(origin, note)
                .map_err(db_err("write checkpoint"))?;
        }
        txn.commit().map_err(db_err("commit"))?;
        Ok(Swap::Stored)
    }

    /// Records a split view unless one is already recorded for its origin. Returns whether this
    /// one was recorded.
    pub fn record_split_view(&self, split: &SplitView) -> Result<bool, StoreError> {
        let bytes = serde_json::to_vec(split)
            .map_err(|e| StoreError::Io(format!("encoding split view: {e}")))?;
        let txn = self.db.begin_write().map_err(db_err("begin write"))?;
        {
            let mut table = txn
                .open_table(SPLIT_VIEWS)
                .map_err(db_err("open split views"))?;
            if table
                .get(split.origin.as_str())
                .map_err(db_err("read split view"))?
                .is_some()
            {
                return Ok(false);
            }
            table
                .insert(split.origin.as_str(), bytes.as_slice())
                .map_err(db_err("write split view"))?;
        }
        txn.commit().map_err(db_err("commit"))?;
        Ok(true)
    }

    /// The split view recorded for `origin`, if any.
    pub fn split_view(&self, origin: &str) -> Result<Option<SplitView>, StoreError> {
        let txn = self.db.begin_read().map_err(db_err("begin read"))?;
        let table = txn
            .open_table(SPLIT_VIEWS)
            .map_err(db_err("open split views"))?;
        let value = table.get(origin).map_err(db_err("read split view"))?;
        value.map(|v| decode_split(v.value())).transpose()
    }

    /// Every recorded split view, by origin.
    pub fn split_views(&self) -> Result<Vec<SplitView>, StoreError> {
        let txn = self.db.begin_read().map_err(db_err("begin read"))?;
        let table = txn
            .open_table(SPLIT_VIEWS)
            .map_err(db_err("open split views"))?;
        let mut out = Vec::new();
        for row in table.iter().map_err(db_err("iterate split views"))? {
            let (_, v) = row.map_err(db_err("read split view"))?;
            out.push(decode_split(v.value())?);
        }
        Ok(out)
    }

    /// Removes the split view of `origin` (durably) and returns it; `None` if there was none.
    pub fn clear_split_view(&self, origin: &str) -> Result<Option<SplitView>, StoreError> {
        let txn = self.db.begin_write().map_err(db_err("begin write"))?;
        let removed = {
            let mut table = txn
                .open_table(SPLIT_VIEWS)
                .map_err(db_err("open split views"))?;
            let removed = table.remove(origin).map_err(db_err("remove split view"))?;
            removed.map(|v| decode_split(v.value())).transpose()?
        };
        txn.commit().map_err(db_err("commit"))?;
        Ok(removed)
    }

    /// Whether the store can be read (for `/readyz`).
    pub fn check(&self) -> Result<(), StoreError> {
        let txn = self.db.begin_read().map_err(db_err("begin read"))?;
        txn.open_table(CHECKPOINTS)
            .map_err(db_err("open checkpoints"))?;
        Ok(())
    }
}

fn decode_cosigned(bytes: &[u8]) -> Result<Cosigned, StoreError> {
    let note = Note::parse(bytes).map_err(|e| StoreError::Corrupt(format!("stored note: {e}")))?;
    let checkpoint = Checkpoint::parse(note.text())
        .map_err(|e| StoreError::Corrupt(format!("stored checkpoint: {e}")))?;
    Ok(Cosigned {
        checkpoint,
        note: bytes.to_vec(),
    })
}

fn decode_split(bytes: &[u8]) -> Result<SplitView, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(format!("split view: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sealtrail_spec::checkpoint::sign_checkpoint;
    use sealtrail_spec::leaf_hash;
    use sealtrail_spec::note::Ed25519Signer;

    fn note(size: u64, root: Hash) -> Vec<u8> {
        let k = Ed25519Signer::from_seed("o", [1; 32]).unwrap();
        sign_checkpoint(&Checkpoint::new("o", size, root).unwrap(), &k).unwrap()
    }

    fn split(origin: &str) -> SplitView {
        SplitView {
            origin: origin.into(),
            detected_at: 1,
            source: "test".into(),
            reason: "r".into(),
            ours: "a".into(),
            theirs: "b".into(),
        }
    }

    #[test]
    fn cas_persists_and_refuses_stale_and_locked() {
        let dir = tempfile::tempdir().unwrap();
        let r1 = leaf_hash(b"1");
        let r2 = leaf_hash(b"2");
        {
            let s = Store::open(dir.path()).unwrap();
            assert!(matches!(
                Store::open(dir.path()),
                Err(StoreError::Locked(_))
            ));
            assert_eq!(s.latest("o").unwrap(), None);
            assert_eq!(
                s.compare_and_swap("o", (1, r1), &note(1, r1)).unwrap(),
                Swap::Conflict(0)
            );
            assert_eq!(
                s.compare_and_swap("o", (0, EMPTY_ROOT), &note(1, r1))
                    .unwrap(),
                Swap::Stored
            );
            // Same size, other root: still a conflict (never a rollback or a fork).
            assert_eq!(
                s.compare_and_swap("o", (1, r2), &note(2, r2)).unwrap(),
                Swap::Conflict(1)
            );
            assert_eq!(
                s.compare_and_swap("o", (0, EMPTY_ROOT), &note(2, r2))
                    .unwrap(),
                Swap::Conflict(1)
            );
        }
        let s = Store::open(dir.path()).unwrap();
        let c = s.latest("o").unwrap().unwrap();
        assert_eq!((c.checkpoint.size(), c.checkpoint.root()), (1, r1));
        assert_eq!(c.note, note(1, r1));
    }

    #[test]
    fn split_views_block_until_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        assert!(s.record_split_view(&split("o")).unwrap());
        let mut second = split("o");
        second.reason = "other".into();
        assert!(!s.record_split_view(&second).unwrap());
        assert_eq!(s.split_view("o").unwrap(), Some(split("o")));
        assert_eq!(
            s.compare_and_swap("o", (0, EMPTY_ROOT), &note(1, leaf_hash(b"1")))
                .unwrap(),
            Swap::Blocked
        );
        assert!(s.record_split_view(&split("p")).unwrap());
        assert_eq!(s.split_views().unwrap().len(), 2);
        drop(s);
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(s.clear_split_view("o").unwrap(), Some(split("o")));
        assert_eq!(s.clear_split_view("o").unwrap(), None);
        assert_eq!(s.split_views().unwrap(), vec![split("p")]);
        assert_eq!(
            s.compare_and_swap("o", (0, EMPTY_ROOT), &note(1, leaf_hash(b"1")))
                .unwrap(),
            Swap::Stored
        );
    }
}
