//! The redb engine (the default): one file, `log.redb`, in the data directory.
//!
//! redb is a copy-on-write B-tree with MVCC: readers see a snapshot, there is one writer at a
//! time, and a write transaction committed with `Durability::Immediate` (redb's default, never
//! lowered here) has been `fdatasync`ed when `commit` returns. That is the whole durability story
//! of this engine: each [`LogStore::commit`] is one write transaction.
//!
//! Layout (format version [`FORMAT_VERSION`]): table `entries` (u64 index → the leaf and its
//! live private record, one row: see `super::join_row`), `erased` (u64 index → erasure entry index), `holds`
//! (hold id → encoded hold), `tiles` ((level, index) → hash tile bytes), `idempotency` (key
//! digest → 16-byte [`IdempotencyRecord`]), `leaf_runs` ((run, bucket) → leaf-index row), `postings` (opaque
//! secondary-index key → row, see `crate::query`), `sink_cursors` (sink name → u64, written with
//! `Durability::None` so it rides on the next durable commit), `checkpoint` (`latest` → the
//! signed checkpoint of the stored size), `meta` (`tree_size`, `format_version` → u64).
//!
//! Erased records: redb is copy-on-write, so a removed record's bytes stay in freed pages until
//! redb reuses them. `sealtrail compact` (server stopped) rewrites the store into a fresh file,
//! after which no byte of an erased record is left in the data directory.

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

use super::{
    Batch, CursorStore, EntryStore, IdempotencyRecord, IdempotencyStore, LeafIndex, LogStore,
    PostingStore, RecordState, RecordStore, StoreError, StoreResult, TileStore,
};

/// The store's file inside the data directory.
pub const FILE_NAME: &str = "log.redb";

/// Version of the table layout above. A store with another version is refused at open.
pub const FORMAT_VERSION: u64 = 2;

/// Memory redb may use for its page cache. redb's default is 1 GiB; a log reads mostly recent
/// tiles and entries, so a modest cache keeps the server small without slowing the append path
/// (measured in `BENCHMARKS.md`).
const CACHE_BYTES: usize = 64 * 1024 * 1024;

const ENTRIES: TableDefinition<u64, &[u8]> = TableDefinition::new("entries");
const TILES: TableDefinition<(u8, u64), &[u8]> = TableDefinition::new("tiles");
const IDEMPOTENCY: TableDefinition<[u8; 32], [u8; 16]> = TableDefinition::new("idempotency");
const ERASED: TableDefinition<u64, u64> = TableDefinition::new("erased");
const HOLDS: TableDefinition<u64, &[u8]> = TableDefinition::new("holds");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const LEAF_RUNS: TableDefinition<(u64, u8), &[u8]> = TableDefinition::new("leaf_runs");
const CHECKPOINT: TableDefinition<&str, &[u8]> = TableDefinition::new("checkpoint");
const CHECKPOINT_KEY: &str = "latest";
const POSTINGS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("postings");
const CURSORS: TableDefinition<&str, u64> = TableDefinition::new("sink_cursors");

const META_TREE_SIZE: &str = "tree_size";
const META_FORMAT: &str = "format_version";

/// A log store in one redb file. Cheap to share behind an `Arc`; all methods take `&self`.
#[derive(Debug)]
pub struct RedbStore {
    db: Database,
}

/// Maps any redb error to a [`StoreError`], naming the operation that failed.
fn redb_err<E: Into<redb::Error>>(what: &'static str) -> impl FnOnce(E) -> StoreError {
    move |e| match e.into() {
        redb::Error::Corrupted(msg) => StoreError::Corrupt(format!("redb {what}: {msg}")),
        redb::Error::DatabaseAlreadyOpen => StoreError::Io(format!(
            "redb {what}: the store is already open (by this or another process); \
             only one sealtrail server may use a data directory"
        )),
        other => StoreError::Io(format!("redb {what}: {other}")),
    }
}

impl RedbStore {
    /// Opens `dir/log.redb`, creating `dir` and an empty store if needed. Fails if another handle
    /// (in this process or another) has the store open, or if its format version is unknown.
    pub fn open(dir: &Path) -> StoreResult<Self> {
        super::create_dir_durably(dir)?;
        let path = dir.join(FILE_NAME);
        let existed = path.exists();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .and_then(super::filled::FilledFile::new)
            .map_err(|e| StoreError::Io(format!("redb open: {e} ({})", path.display())))?;
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create_with_backend(file)
            .map_err(|e| match redb_err("open")(e) {
                StoreError::Io(msg) => StoreError::Io(format!("{msg} ({})", path.display())),
                other => other,
            })?;
        if !existed {
            // The new file's directory entry must survive a crash like the data in it.
            super::sync_dir(dir)?;
        }
        Self::from_database(db)
    }

    /// Wraps an opened database, creating or checking the layout.
    fn from_database(db: Database) -> StoreResult<Self> {
        let store = RedbStore { db };
        store.init_or_check_format()?;
        Ok(store)
    }

    /// Creates the tables and the meta rows of a new store, or checks the format of an old one.
    fn init_or_check_format(&self) -> StoreResult<()> {
        let txn = self.db.begin_write().map_err(redb_err("begin write"))?;
        {
            let mut meta = txn.open_table(META).map_err(redb_err("open meta"))?;
            let format = meta.get(META_FORMAT).map_err(redb_err("read format"))?;
            match format.map(|v| v.value()) {
                Some(FORMAT_VERSION) => {}
                Some(other) => {
                    return Err(StoreError::Corrupt(format!(
                        "store format version {other}; this build reads version {FORMAT_VERSION}"
                    )));
                }
                None => {
                    if meta.len().map_err(redb_err("read meta"))? != 0 {
                        return Err(StoreError::Corrupt(
                            "meta table has no format version".into(),
                        ));
                    }
                    meta.insert(META_FORMAT, FORMAT_VERSION)
                        .map_err(redb_err("write format"))?;
                    meta.insert(META_TREE_SIZE, 0)
                        .map_err(redb_err("write size"))?;
                }
            }
            // Creating the tables here lets every read transaction open them.
            txn.open_table(ENTRIES).map_err(redb_err("open entries"))?;
            txn.open_table(TILES).map_err(redb_err("open tiles"))?;
            txn.open_table(IDEMPOTENCY)
                .map_err(redb_err("open idempotency"))?;
            txn.open_table(LEAF_RUNS)
                .map_err(redb_err("open leaf runs"))?;
            txn.open_table(CHECKPOINT)
                .map_err(redb_err("open checkpoint"))?;
            txn.open_table(POSTINGS)
                .map_err(redb_err("open postings"))?;
            txn.open_table(CURSORS).map_err(redb_err("open cursors"))?;
            txn.open_table(ERASED).map_err(redb_err("open erased"))?;
            txn.open_table(HOLDS).map_err(redb_err("open holds"))?;
        }
        txn.commit().map_err(redb_err("commit"))
    }

    /// Bytes of live data the store holds (redb's `stored_bytes` plus its metadata), without
    /// free or fragmented pages: what benchmarks compare. Opens (and aborts) a write transaction.
    pub fn live_bytes(&self) -> StoreResult<u64> {
        let txn = self.db.begin_write().map_err(redb_err("begin write"))?;
        let stats = txn.stats().map_err(redb_err("stats"))?;
        Ok(stats.stored_bytes() + stats.metadata_bytes())
    }

    fn read(&self) -> StoreResult<redb::ReadTransaction> {
        self.db.begin_read().map_err(redb_err("begin read"))
    }
}

/// Copies every row of table `def` from `r` into `w`.
fn copy_table<K: redb::Key + 'static, V: redb::Value + 'static>(
    r: &redb::ReadTransaction,
    w: &redb::WriteTransaction,
    def: TableDefinition<K, V>,
) -> StoreResult<u64> {
    let src = r.open_table(def).map_err(redb_err("open for copy"))?;
    let mut dst = w.open_table(def).map_err(redb_err("open for copy"))?;
    let mut n = 0;
    for row in src.iter().map_err(redb_err("scan for copy"))? {
        let (k, v) = row.map_err(redb_err("scan for copy"))?;
        dst.insert(k.value(), v.value())
            .map_err(redb_err("write copy"))?;
        n += 1;
    }
    Ok(n)
}

impl RedbStore {
    /// Writes a copy of every table into a new `log.redb` in `dir` and makes it durable (see
    /// [`LogStore::copy_into`]).
    fn copy_tables(&self, dir: &Path) -> StoreResult<u64> {
        let path = dir.join(FILE_NAME);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .and_then(super::filled::FilledFile::new)
            .map_err(|e| StoreError::Io(format!("creating {}: {e}", path.display())))?;
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create_with_backend(file)
            .map_err(redb_err("create copy"))?;
        let r = self.read()?;
        let w = db.begin_write().map_err(redb_err("begin write"))?;
        let mut n = 0;
        n += copy_table(&r, &w, META)?;
        n += copy_table(&r, &w, ENTRIES)?;
        n += copy_table(&r, &w, ERASED)?;
        n += copy_table(&r, &w, HOLDS)?;
        n += copy_table(&r, &w, TILES)?;
        n += copy_table(&r, &w, IDEMPOTENCY)?;
        n += copy_table(&r, &w, LEAF_RUNS)?;
        n += copy_table(&r, &w, CHECKPOINT)?;
        n += copy_table(&r, &w, POSTINGS)?;
        n += copy_table(&r, &w, CURSORS)?;
        w.commit().map_err(redb_err("commit copy"))?;
        Ok(n)
    }
}

/// Reads the stored tree size from an open meta table.
fn stored_size(meta: &impl ReadableTable<&'static str, u64>) -> StoreResult<u64> {
    meta.get(META_TREE_SIZE)
        .map_err(redb_err("read size"))?
        .map(|v| v.value())
        .ok_or_else(|| StoreError::Corrupt("meta table has no tree size".into()))
}

impl EntryStore for RedbStore {
    fn entry(&self, index: u64) -> StoreResult<Option<Vec<u8>>> {
        let txn = self.read()?;
        let table = txn.open_table(ENTRIES).map_err(redb_err("open entries"))?;
        let value = table.get(index).map_err(redb_err("read entry"))?;
        value
            .map(|v| super::split_row(v.value()).map(|(leaf, _)| leaf.to_vec()))
            .transpose()
    }

    fn entries(&self, start: u64, end: u64) -> StoreResult<Vec<Vec<u8>>> {
        if start >= end {
            return Ok(Vec::new());
        }
        let txn = self.read()?;
        let table = txn.open_table(ENTRIES).map_err(redb_err("open entries"))?;
        let capacity = usize::try_from(end - start).unwrap_or(usize::MAX).min(4096);
        let mut out = Vec::with_capacity(capacity);
        let mut expected = start;
        for row in table.range(start..end).map_err(redb_err("scan entries"))? {
            let (key, value) = row.map_err(redb_err("scan entries"))?;
            if key.value() != expected {
                break;
            }
            out.push(super::split_row(value.value())?.0.to_vec());
            expected += 1;
        }
        if expected != end {
            return Err(StoreError::Corrupt(format!("entry {expected} missing")));
        }
        Ok(out)
    }
}

impl RecordStore for RedbStore {
    fn record(&self, index: u64) -> StoreResult<RecordState> {
        let txn = self.read()?;
        let entries = txn.open_table(ENTRIES).map_err(redb_err("open entries"))?;
        if let Some(v) = entries.get(index).map_err(redb_err("read record"))?
            && let (_, Some(record)) = super::split_row(v.value())?
        {
            return Ok(RecordState::Live(record.to_vec()));
        }
        let erased = txn.open_table(ERASED).map_err(redb_err("open erased"))?;
        Ok(match erased.get(index).map_err(redb_err("read erased"))? {
            Some(by) => RecordState::Erased(by.value()),
            None => RecordState::Absent,
        })
    }

    fn live_records(&self, start: u64, end: u64, limit: usize) -> StoreResult<Vec<(u64, Vec<u8>)>> {
        if start >= end {
            return Ok(Vec::new());
        }
        let txn = self.read()?;
        let table = txn.open_table(ENTRIES).map_err(redb_err("open entries"))?;
        let mut out = Vec::new();
        for row in table.range(start..end).map_err(redb_err("scan records"))? {
            if out.len() >= limit {
                break;
            }
            let (k, v) = row.map_err(redb_err("scan records"))?;
            if let (_, Some(record)) = super::split_row(v.value())? {
                out.push((k.value(), record.to_vec()));
            }
        }
        Ok(out)
    }

    fn erased_records(&self, start: u64, end: u64, limit: usize) -> StoreResult<Vec<(u64, u64)>> {
        if start >= end {
            return Ok(Vec::new());
        }
        let txn = self.read()?;
        let table = txn.open_table(ERASED).map_err(redb_err("open erased"))?;
        let range = table.range(start..end).map_err(redb_err("scan erased"))?;
        range
            .take(limit)
            .map(|r| {
                r.map(|(k, v)| (k.value(), v.value()))
                    .map_err(redb_err("scan erased"))
            })
            .collect()
    }

    fn holds(&self) -> StoreResult<Vec<(u64, Vec<u8>)>> {
        let txn = self.read()?;
        let table = txn.open_table(HOLDS).map_err(redb_err("open holds"))?;
        let rows = table.iter().map_err(redb_err("scan holds"))?;
        rows.map(|r| {
            r.map(|(k, v)| (k.value(), v.value().to_vec()))
                .map_err(redb_err("scan holds"))
        })
        .collect()
    }
}

impl TileStore for RedbStore {
    fn tile(&self, level: u8, index: u64) -> StoreResult<Option<Vec<u8>>> {
        let txn = self.read()?;
        let table = txn.open_table(TILES).map_err(redb_err("open tiles"))?;
        let value = table.get((level, index)).map_err(redb_err("read tile"))?;
        Ok(value.map(|v| v.value().to_vec()))
    }
}

impl IdempotencyStore for RedbStore {
    fn idempotency(&self, key: &[u8; 32]) -> StoreResult<Option<IdempotencyRecord>> {
        let txn = self.read()?;
        let table = txn
            .open_table(IDEMPOTENCY)
            .map_err(redb_err("open idempotency"))?;
        let value = table.get(key).map_err(redb_err("read idempotency"))?;
        value
            .map(|v| IdempotencyRecord::from_bytes(&v.value()))
            .transpose()
    }

    fn idempotency_after(
        &self,
        after: Option<&[u8; 32]>,
        limit: usize,
    ) -> StoreResult<Vec<([u8; 32], IdempotencyRecord)>> {
        let txn = self.read()?;
        let table = txn
            .open_table(IDEMPOTENCY)
            .map_err(redb_err("open idempotency"))?;
        let range = match after {
            Some(a) => {
                table.range::<&[u8; 32]>((std::ops::Bound::Excluded(a), std::ops::Bound::Unbounded))
            }
            None => table.range::<&[u8; 32]>(..),
        }
        .map_err(redb_err("scan idempotency"))?;
        range
            .take(limit)
            .map(|r| {
                let (k, v) = r.map_err(redb_err("scan idempotency"))?;
                Ok((k.value(), IdempotencyRecord::from_bytes(&v.value())?))
            })
            .collect()
    }
}

impl LeafIndex for RedbStore {
    fn leaf_run(&self, run: u64, bucket: u8) -> StoreResult<Option<Vec<u8>>> {
        let txn = self.read()?;
        let table = txn
            .open_table(LEAF_RUNS)
            .map_err(redb_err("open leaf runs"))?;
        let value = table
            .get((run, bucket))
            .map_err(redb_err("read leaf run"))?;
        Ok(value.map(|v| v.value().to_vec()))
    }
}

impl PostingStore for RedbStore {
    fn postings(
        &self,
        from: &[u8],
        to: &[u8],
        reverse: bool,
        limit: usize,
    ) -> StoreResult<Vec<(Vec<u8>, Vec<u8>)>> {
        if from >= to || limit == 0 {
            return Ok(Vec::new());
        }
        let txn = self.read()?;
        let table = txn
            .open_table(POSTINGS)
            .map_err(redb_err("open postings"))?;
        let range = table.range(from..to).map_err(redb_err("scan postings"))?;
        type Row<'a> = (
            redb::AccessGuard<'a, &'static [u8]>,
            redb::AccessGuard<'a, &'static [u8]>,
        );
        let row = |r: Result<Row<'_>, redb::StorageError>| {
            r.map(|(k, v)| (k.value().to_vec(), v.value().to_vec()))
                .map_err(redb_err("scan postings"))
        };
        if reverse {
            range.rev().take(limit).map(row).collect()
        } else {
            range.take(limit).map(row).collect()
        }
    }
}

impl CursorStore for RedbStore {
    fn sink_cursor(&self, name: &str) -> StoreResult<Option<u64>> {
        let txn = self.read()?;
        let table = txn.open_table(CURSORS).map_err(redb_err("open cursors"))?;
        let value = table.get(name).map_err(redb_err("read cursor"))?;
        Ok(value.map(|v| v.value()))
    }

    /// A write transaction with `Durability::None`: no fsync of its own; the sequencer's next
    /// durable commit persists it (redb makes a durable commit include earlier non-durable ones).
    fn set_sink_cursor(&self, name: &str, next: u64) -> StoreResult<()> {
        let mut txn = self.db.begin_write().map_err(redb_err("begin write"))?;
        txn.set_durability(redb::Durability::None)
            .map_err(|e| StoreError::Io(format!("redb set durability: {e}")))?;
        {
            let mut table = txn.open_table(CURSORS).map_err(redb_err("open cursors"))?;
            table.insert(name, next).map_err(redb_err("write cursor"))?;
        }
        txn.commit().map_err(redb_err("commit cursor"))
    }

    fn sink_cursors(&self) -> StoreResult<Vec<(String, u64)>> {
        let txn = self.read()?;
        let table = txn.open_table(CURSORS).map_err(redb_err("open cursors"))?;
        let rows = table.iter().map_err(redb_err("scan cursors"))?;
        rows.map(|r| {
            let (k, v) = r.map_err(redb_err("scan cursors"))?;
            Ok((k.value().to_owned(), v.value()))
        })
        .collect()
    }
}

impl LogStore for RedbStore {
    fn tree_size(&self) -> StoreResult<u64> {
        let txn = self.read()?;
        let meta = txn.open_table(META).map_err(redb_err("open meta"))?;
        stored_size(&meta)
    }

    /// One write transaction: check the size (compare-and-swap), insert everything, set the new
    /// size, commit with `Durability::Immediate`. redb serialises write transactions, so the size
    /// check cannot race with another commit. Dropping the transaction on an early return aborts
    /// it, so a refused or failed batch leaves nothing behind.
    fn commit(&self, batch: &Batch) -> StoreResult<()> {
        super::check_batch_shape(batch)?;
        let txn = self.db.begin_write().map_err(redb_err("begin write"))?;
        {
            let mut meta = txn.open_table(META).map_err(redb_err("open meta"))?;
            let found = stored_size(&meta)?;
            if found != batch.old_size {
                return Err(StoreError::SizeMismatch {
                    expected: batch.old_size,
                    found,
                });
            }
            let mut entries = txn.open_table(ENTRIES).map_err(redb_err("open entries"))?;
            for ((index, entry), record) in
                (batch.old_size..).zip(&batch.entries).zip(&batch.records)
            {
                let row = super::join_row(entry, record.as_deref());
                entries
                    .insert(index, row.as_slice())
                    .map_err(redb_err("write entry"))?;
            }
            let mut erased = txn.open_table(ERASED).map_err(redb_err("open erased"))?;
            for &(index, by) in &batch.tombstones {
                erased.insert(index, by).map_err(redb_err("write erased"))?;
            }
            for &(index, by) in &batch.erased {
                // The row is written again without its record: the leaf stays.
                let leaf = match entries.get(index).map_err(redb_err("read entry"))? {
                    Some(v) => match super::split_row(v.value())? {
                        (leaf, Some(_)) => leaf.to_vec(),
                        (_, None) => return Err(super::not_live(index)),
                    },
                    None => return Err(super::not_live(index)),
                };
                entries
                    .insert(index, super::join_row(&leaf, None).as_slice())
                    .map_err(redb_err("erase record"))?;
                erased.insert(index, by).map_err(redb_err("write erased"))?;
            }
            let mut holds = txn.open_table(HOLDS).map_err(redb_err("open holds"))?;
            for (id, hold) in &batch.holds_placed {
                holds
                    .insert(*id, hold.as_slice())
                    .map_err(redb_err("write hold"))?;
            }
            for id in &batch.holds_released {
                holds.remove(*id).map_err(redb_err("release hold"))?;
            }
            let mut tiles = txn.open_table(TILES).map_err(redb_err("open tiles"))?;
            for (id, bytes) in &batch.tiles {
                tiles
                    .insert((id.level, id.index), bytes.as_slice())
                    .map_err(redb_err("write tile"))?;
            }
            let mut idem = txn
                .open_table(IDEMPOTENCY)
                .map_err(redb_err("open idempotency"))?;
            for (key, record) in &batch.idempotency {
                idem.insert(key, record.to_bytes())
                    .map_err(redb_err("write idempotency"))?;
            }
            let mut runs = txn
                .open_table(LEAF_RUNS)
                .map_err(redb_err("open leaf runs"))?;
            for (run, bucket, row) in &batch.leaf_runs {
                runs.insert((*run, *bucket), row.as_slice())
                    .map_err(redb_err("write leaf run"))?;
            }
            let mut postings = txn
                .open_table(POSTINGS)
                .map_err(redb_err("open postings"))?;
            for key in &batch.postings_removed {
                postings
                    .remove(key.as_slice())
                    .map_err(redb_err("remove posting"))?;
            }
            for (key, row) in &batch.postings {
                postings
                    .insert(key.as_slice(), row.as_slice())
                    .map_err(redb_err("write posting"))?;
            }
            let mut cp = txn
                .open_table(CHECKPOINT)
                .map_err(redb_err("open checkpoint"))?;
            cp.insert(CHECKPOINT_KEY, batch.checkpoint.as_slice())
                .map_err(redb_err("write checkpoint"))?;
            meta.insert(META_TREE_SIZE, batch.new_size())
                .map_err(redb_err("write size"))?;
        }
        txn.commit().map_err(redb_err("commit"))
    }

    fn checkpoint(&self) -> StoreResult<Option<Vec<u8>>> {
        let txn = self.read()?;
        let table = txn
            .open_table(CHECKPOINT)
            .map_err(redb_err("open checkpoint"))?;
        let value = table
            .get(CHECKPOINT_KEY)
            .map_err(redb_err("read checkpoint"))?;
        Ok(value.map(|v| v.value().to_vec()))
    }

    fn engine(&self) -> &'static str {
        "redb"
    }

    fn copy_into(&self, dir: &Path) -> StoreResult<u64> {
        let n = self.copy_tables(dir)?;
        super::sync_dir(dir)?;
        Ok(n)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::store::conformance::{Expected, batch, idem_key};

    /// Deletes an entry from a closed store, as corruption would.
    pub(crate) fn remove_entry(dir: &Path, index: u64) {
        let db = Database::create(dir.join(FILE_NAME)).unwrap();
        let txn = db.begin_write().unwrap();
        assert!(
            txn.open_table(ENTRIES)
                .unwrap()
                .remove(index)
                .unwrap()
                .is_some()
        );
        txn.commit().unwrap();
    }

    fn set_format(dir: &Path, version: u64) {
        let db = Database::create(dir.join(FILE_NAME)).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(META)
            .unwrap()
            .insert(META_FORMAT, version)
            .unwrap();
        txn.commit().unwrap();
    }

    /// A file backend whose writes fail while `fail` is set, as a full disk would.
    #[derive(Debug)]
    struct FailingBackend {
        inner: redb::backends::FileBackend,
        fail: Arc<AtomicBool>,
    }

    impl FailingBackend {
        fn check(&self) -> std::io::Result<()> {
            if self.fail.load(Ordering::SeqCst) {
                return Err(std::io::Error::other("injected write failure"));
            }
            Ok(())
        }
    }

    impl redb::StorageBackend for FailingBackend {
        fn len(&self) -> std::io::Result<u64> {
            self.inner.len()
        }
        fn read(&self, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
            self.inner.read(offset, out)
        }
        fn set_len(&self, len: u64) -> std::io::Result<()> {
            self.check()?;
            self.inner.set_len(len)
        }
        fn sync_data(&self) -> std::io::Result<()> {
            self.check()?;
            self.inner.sync_data()
        }
        fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
            self.check()?;
            self.inner.write(offset, data)
        }
    }

    /// A commit whose writes fail reports an I/O error, and after a restart the store holds
    /// exactly what it held before that commit.
    #[test]
    fn failed_write_leaves_the_store_unchanged_after_restart() {
        let tmp = tempfile::tempdir().unwrap();
        let mut want = Expected::default();
        want.commit(&RedbStore::open(tmp.path()).unwrap(), &batch(0, 50));
        {
            let fail = Arc::new(AtomicBool::new(false));
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(tmp.path().join(FILE_NAME))
                .unwrap();
            let backend = FailingBackend {
                inner: redb::backends::FileBackend::new(file).unwrap(),
                fail: fail.clone(),
            };
            let db = Database::builder().create_with_backend(backend).unwrap();
            let store = RedbStore::from_database(db).unwrap();
            want.commit(&store, &batch(50, 30));
            fail.store(true, Ordering::SeqCst);
            match store.commit(&batch(80, 500)) {
                Err(StoreError::Io(msg)) => assert!(msg.contains("injected"), "{msg}"),
                other => panic!("expected an I/O error, got {other:?}"),
            }
        }
        let store = RedbStore::open(tmp.path()).unwrap();
        want.check(&store);
        assert_eq!(store.idempotency(&idem_key(80)).unwrap(), None);
        want.commit(&store, &batch(80, 5));
        want.check(&store);
    }

    #[test]
    fn refuses_an_unknown_format_version() {
        let tmp = tempfile::tempdir().unwrap();
        drop(RedbStore::open(tmp.path()).unwrap());
        set_format(tmp.path(), FORMAT_VERSION + 1);
        match RedbStore::open(tmp.path()) {
            Err(StoreError::Corrupt(msg)) => assert!(msg.contains("format version 3"), "{msg}"),
            other => panic!("expected a format error, got {other:?}"),
        }
        set_format(tmp.path(), FORMAT_VERSION);
        assert_eq!(RedbStore::open(tmp.path()).unwrap().tree_size().unwrap(), 0);
    }

    #[test]
    fn refuses_a_redb_file_of_someone_else() {
        let tmp = tempfile::tempdir().unwrap();
        {
            let db = Database::create(tmp.path().join(FILE_NAME)).unwrap();
            let txn = db.begin_write().unwrap();
            txn.open_table(META).unwrap().insert("other", 1).unwrap();
            txn.commit().unwrap();
        }
        assert!(matches!(
            RedbStore::open(tmp.path()),
            Err(StoreError::Corrupt(_))
        ));
    }
}
