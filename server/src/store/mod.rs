//! Durable storage for one log: entries (public leaves), their private records, hash tiles,
//! idempotency records, legal holds and the tree size.
//!
//! The store is trusted for durability, not for truth: `sealtrail fsck` recomputes every hash from
//! the stored entries and every commitment from the stored records. Small read traits per role
//! ([`EntryStore`], [`RecordStore`], [`TileStore`], [`IdempotencyStore`]) and one writer trait,
//! [`LogStore`], whose only mutation of the tree is [`LogStore::commit`]: one atomic, durable
//! transaction per sequenced batch. Erasure is part of a batch too: the erasure entry and the
//! removal of the records it names commit together or not at all. Engines are chosen in
//! `main` with a `match` on the configuration (see [`open`]).
//!
//! Out of scope here: the Merkle maths (the sequencer computes tiles with `sealtrail-spec`) and
//! which reads are allowed (the HTTP layer bounds every read by the published tree size).

use std::path::Path;

use sealtrail_spec::Hash;
use sealtrail_spec::tiles::{TileId, TileReader, decode_hash_tile};

pub mod compact;
#[cfg(test)]
mod conformance;
mod filled;
pub mod mem;
#[cfg(test)]
pub(crate) mod pg_cluster;
pub mod pg_store;
pub mod redb_store;
pub mod sled_store;

/// A failed storage operation. Nothing was written by a failed [`LogStore::commit`].
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The engine or the file system failed (disk full, I/O error, lock held by another process).
    #[error("storage I/O: {0}")]
    Io(String),
    /// Stored data is not what this program writes (truncated value, bad length, missing entry
    /// below the tree size). Never retried; `sealtrail fsck` reports the details.
    #[error("storage corrupt: {0}")]
    Corrupt(String),
    /// A batch was built on a tree size that is not the stored one: another writer, or a bug.
    /// Nothing was written.
    #[error("batch built on tree size {expected} but the store holds {found}")]
    SizeMismatch {
        /// The batch's `old_size`.
        expected: u64,
        /// The stored tree size.
        found: u64,
    },
    /// Another instance committed the same idempotency key first (shared stores). Nothing was
    /// written; a retry is answered as a repeat of that request.
    #[error("idempotency key committed by another instance meanwhile; nothing was written")]
    Conflict,
}

impl StoreError {
    /// A short static label for metrics.
    pub fn category(&self) -> &'static str {
        match self {
            StoreError::Io(_) => "io",
            StoreError::Corrupt(_) => "corrupt",
            StoreError::SizeMismatch { .. } => "size_mismatch",
            StoreError::Conflict => "conflict",
        }
    }
}

/// Result of a storage operation.
pub type StoreResult<T> = Result<T, StoreError>;

/// What an `Idempotency-Key` maps to: the entries its request created. Nothing of the content:
/// a repeat is compared with the stored records themselves (through their commitments), so an
/// erased record leaves no fingerprint here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdempotencyRecord {
    /// Index of the first entry the key's request created.
    pub index: u64,
    /// How many entries it created.
    pub count: u64,
}

impl IdempotencyRecord {
    /// Fixed 16-byte encoding: index then count (u64 big-endian each).
    pub fn to_bytes(&self) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&self.index.to_be_bytes());
        out[8..].copy_from_slice(&self.count.to_be_bytes());
        out
    }

    /// Decodes [`IdempotencyRecord::to_bytes`]; anything else is corruption.
    pub fn from_bytes(b: &[u8]) -> StoreResult<Self> {
        let (index, count) = b
            .split_first_chunk::<8>()
            .and_then(|(i, rest)| Some((i, <[u8; 8]>::try_from(rest).ok()?)))
            .ok_or_else(|| {
                StoreError::Corrupt(format!("idempotency record of {} bytes", b.len()))
            })?;
        Ok(IdempotencyRecord {
            index: u64::from_be_bytes(*index),
            count: u64::from_be_bytes(count),
        })
    }
}

/// What the store holds for one entry's private record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordState {
    /// The record's storage encoding (`sealtrail_spec::record::PrivateRecord::encode`).
    Live(Vec<u8>),
    /// The record was erased by the erasure entry at this index.
    Erased(u64),
    /// Neither: no entry at this index, or a store that lost the row (fsck reports it).
    Absent,
}

/// Decodes 8 big-endian bytes as a u64; any other length is corruption.
pub(crate) fn u64_from(what: &str, bytes: &[u8]) -> StoreResult<u64> {
    <[u8; 8]>::try_from(bytes)
        .map(u64::from_be_bytes)
        .map_err(|_| StoreError::Corrupt(format!("{what} of {} bytes", bytes.len())))
}

/// One sequenced batch: everything that changes when the tree grows from `old_size` to
/// `old_size + entries.len()`.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    /// The tree size this batch was built on. [`LogStore::commit`] refuses the batch with
    /// [`StoreError::SizeMismatch`] unless the stored size equals it (compare-and-swap).
    pub old_size: u64,
    /// The new entries (leaf bytes), at indices `old_size..old_size + entries.len()`.
    pub entries: Vec<Vec<u8>>,
    /// Changed hash tiles with their full bytes (`32 * width`). Each replaces the stored version of
    /// the tile `(level, index)`, which is always a prefix of it.
    pub tiles: Vec<(TileId, Vec<u8>)>,
    /// The private records of `entries`, one per entry in the same order (each the storage
    /// encoding of a `sealtrail_spec::record::PrivateRecord`). `None` only for an imported entry
    /// whose record was erased before the export: its tombstone is in `tombstones`.
    pub records: Vec<Option<Vec<u8>>>,
    /// Tombstones written as they are (imports of erased entries): `(index, erasure entry index)`.
    pub tombstones: Vec<(u64, u64)>,
    /// Records this batch erases: `(index, erasure entry index)`. Each record must be live; it is
    /// removed and a tombstone naming the erasure entry takes its place.
    pub erased: Vec<(u64, u64)>,
    /// Posting keys removed before `postings` are written (rows that named erased records; a
    /// row that keeps other indices is written again under `postings`).
    pub postings_removed: Vec<Vec<u8>>,
    /// Legal holds placed: `(hold id, encoded hold)`. The id is the index of the hold's entry.
    pub holds_placed: Vec<(u64, Vec<u8>)>,
    /// Legal holds released, by id.
    pub holds_released: Vec<u64>,
    /// New idempotency records, keyed by the server's idempotency key digest.
    pub idempotency: Vec<([u8; 32], IdempotencyRecord)>,
    /// Leaf-index rows completed by this batch: `(run, bucket, row)` (see `crate::leafindex`).
    /// Keys only ever grow, so they append.
    pub leaf_runs: Vec<(u64, u8, Vec<u8>)>,
    /// Secondary-index rows for this batch's entries: `(key, row)`, opaque to the store (see
    /// `crate::query`). Each key ends with the largest index its row holds, so within each
    /// indexed value keys only ever grow and inserts append.
    pub postings: Vec<(Vec<u8>, Vec<u8>)>,
    /// The log-signed checkpoint (signed note bytes) for the tree after this batch. It is signed
    /// before the commit but published only after it, so a signed checkpoint leaves the process
    /// only once the tree it commits to is durable; storing it lets a restart and `fsck` check
    /// the tree against what was last published.
    pub checkpoint: Vec<u8>,
}

impl Batch {
    /// The tree size after this batch.
    pub fn new_size(&self) -> u64 {
        self.old_size + self.entries.len() as u64
    }
}

/// Reads entries (leaf bytes) by index.
///
/// Contract: returns what a committed batch wrote. An index at or past the stored tree size is
/// `Ok(None)` (for `entry`) or an error (for `entries`). Reads may run concurrently with a commit and
/// may observe it before `commit` returns on engines without snapshot isolation, so callers bound
/// reads by a tree size they know is committed.
pub trait EntryStore {
    /// The entry at `index`, or `None` if there is none.
    fn entry(&self, index: u64) -> StoreResult<Option<Vec<u8>>>;

    /// Entries `start..end`, in order. Every one must exist: a gap below the tree size is
    /// [`StoreError::Corrupt`].
    fn entries(&self, start: u64, end: u64) -> StoreResult<Vec<Vec<u8>>>;
}

/// Reads private records, tombstones and legal holds.
///
/// Contract: a record is written by the batch that writes its entry and removed only by a batch
/// that erases it, which writes the tombstone in the same transaction. Same concurrency rule as
/// [`EntryStore`].
pub trait RecordStore {
    /// The record of entry `index`.
    fn record(&self, index: u64) -> StoreResult<RecordState>;

    /// Live records with `start <= index < end`, ascending, at most `limit` of them.
    fn live_records(&self, start: u64, end: u64, limit: usize) -> StoreResult<Vec<(u64, Vec<u8>)>>;

    /// Tombstones with `start <= index < end`, ascending, at most `limit`: `(index, erasure entry
    /// index)`.
    fn erased_records(&self, start: u64, end: u64, limit: usize) -> StoreResult<Vec<(u64, u64)>>;

    /// Every legal hold in force: `(hold id, encoded hold)`, by id.
    fn holds(&self) -> StoreResult<Vec<(u64, Vec<u8>)>>;
}

/// Reads hash tiles.
///
/// Contract: returns the widest stored version of tile `(level, index)` (`32 * width` bytes), or
/// `None` if no batch wrote it. Callers truncate to the width their tree size implies. Same
/// concurrency rule as [`EntryStore`].
pub trait TileStore {
    /// The stored bytes of hash tile `(level, index)`.
    fn tile(&self, level: u8, index: u64) -> StoreResult<Option<Vec<u8>>>;
}

/// Reads idempotency records.
///
/// Contract: a record is visible once the batch that wrote it is committed; records are never
/// changed or deleted (they hold indices only, never content).
pub trait IdempotencyStore {
    /// The record for `key`, if any.
    fn idempotency(&self, key: &[u8; 32]) -> StoreResult<Option<IdempotencyRecord>>;

    /// Records with keys after `after` (all with `None`), ascending by key, at most `limit`:
    /// to move a log between engines (`sealtrail migrate`).
    fn idempotency_after(
        &self,
        after: Option<&[u8; 32]>,
        limit: usize,
    ) -> StoreResult<Vec<([u8; 32], IdempotencyRecord)>>;
}

/// Reads the leaf-index rows (`crate::leafindex`).
///
/// Contract: returns the row a committed batch wrote for `(run, bucket)`, or `None`; rows are
/// never changed or deleted. The store does not interpret them.
pub trait LeafIndex {
    /// The row for `(run, bucket)`.
    fn leaf_run(&self, run: u64, bucket: u8) -> StoreResult<Option<Vec<u8>>>;
}

/// Reads the secondary-index rows ("postings", see `crate::query`).
///
/// Contract: rows are written only by [`LogStore::commit`], in the same transaction as the
/// entries they point to, and change only when an erasure removes indices from them (in the
/// erasure's transaction). Keys compare as byte strings.
pub trait PostingStore {
    /// Rows with `from <= key < to`, in ascending key order (descending if `reverse`), at most
    /// `limit` of them. An empty or inverted range is an empty answer, not an error.
    fn postings(
        &self,
        from: &[u8],
        to: &[u8],
        reverse: bool,
        limit: usize,
    ) -> StoreResult<Vec<(Vec<u8>, Vec<u8>)>>;
}

/// Durable per-sink forwarding cursors: the index of the next entry a sink has not acknowledged.
///
/// Contract: [`CursorStore::set_sink_cursor`] is atomic and never blocks longer than a commit.
/// It is NOT synced on its own: it becomes durable with the next [`LogStore::commit`] (or an
/// engine's background flush). After a crash a cursor may therefore read an older value, never a
/// newer one, which makes forwarding replay entries (at-least-once) but never skip one. Cursors
/// are independent of the tree: `fsck` does not check them.
pub trait CursorStore {
    /// The stored cursor of sink `name`, or `None` if it never acknowledged anything.
    fn sink_cursor(&self, name: &str) -> StoreResult<Option<u64>>;
    /// Stores the cursor of sink `name`.
    fn set_sink_cursor(&self, name: &str, next: u64) -> StoreResult<()>;
    /// Every stored cursor, by name.
    fn sink_cursors(&self) -> StoreResult<Vec<(String, u64)>>;
}

/// A log's durable state. One writer (the sequencer) calls [`LogStore::commit`]; any number of
/// readers may read concurrently.
pub trait LogStore:
    EntryStore
    + RecordStore
    + TileStore
    + IdempotencyStore
    + LeafIndex
    + PostingStore
    + CursorStore
    + Send
    + Sync
    + 'static
{
    /// The committed tree size (0 for a new store).
    fn tree_size(&self) -> StoreResult<u64>;

    /// The checkpoint stored by the last committed batch (`None` for a new store).
    fn checkpoint(&self) -> StoreResult<Option<Vec<u8>>>;

    /// Writes the whole batch (entries, records, erasures, holds, tiles, idempotency records,
    /// leaf-hash index, postings, checkpoint, new tree size) in ONE atomic transaction and returns only once it is durable: a real
    /// `fsync`/`fdatasync` has completed, so the batch survives a crash or power loss from then on.
    /// Atomic means all of the batch or none of it is ever visible, before or after a crash.
    ///
    /// `records` must be as long as `entries`, and every erased record must be live: otherwise
    /// [`StoreError::Corrupt`] and nothing is written.
    ///
    /// Errors: [`StoreError::SizeMismatch`] wrote nothing. After [`StoreError::Io`] the outcome is
    /// unknown (an `fsync` may fail after the data reached the disk): the caller must not commit
    /// again on this handle, and learns the truth by reopening the store and reading
    /// [`LogStore::tree_size`]. Not retried internally.
    fn commit(&self, batch: &Batch) -> StoreResult<()>;

    /// The engine's name, for `/v1/log` and metrics.
    fn engine(&self) -> &'static str;

    /// Whether other processes may commit to this store too (several `sealtrail serve`
    /// instances on one PostgreSQL database). A shared store is committed to under
    /// [`LogStore::begin_commit`], and a failed commit is not final: the next one learns the
    /// truth from the store.
    fn shared(&self) -> bool {
        false
    }

    /// Shared stores: opens the commit transaction and takes the tree lock, which every
    /// instance's commit takes, and returns the tree as stored now; when it has grown past
    /// `known` (what this instance last committed or saw), also what catching up needs (see
    /// [`Locked`]). The next [`LogStore::commit`] on this handle runs inside that transaction
    /// (so nothing can be committed between reading the size and writing the batch);
    /// [`LogStore::abort_commit`] ends it without writing. Embedded stores have one writer and
    /// answer `None`.
    fn begin_commit(&self, known: u64) -> StoreResult<Option<Locked>> {
        let _ = known;
        Ok(None)
    }

    /// Ends a transaction [`LogStore::begin_commit`] opened, writing nothing.
    fn abort_commit(&self) {}

    /// Shared stores: the newest checkpoint note whose cosignatures met the witness policy, as
    /// the instance that witnesses stored it (each instance verifies it before serving it).
    /// Embedded stores keep it in memory only: `None`.
    fn cosigned(&self) -> StoreResult<Option<Vec<u8>>> {
        Ok(None)
    }

    /// Shared stores: stores the cosigned checkpoint `note` of tree size `size`, unless a larger
    /// one is stored. Not synced on its own (witnesses cosign again after a loss).
    fn set_cosigned(&self, size: u64, note: &[u8]) -> StoreResult<()> {
        let _ = (size, note);
        Ok(())
    }

    /// A lock named `name` that at most one holder has at a time, across every instance on a
    /// shared store (`None`: another holder has it). It is held while the returned guard lives
    /// and [`Leadership::held`]; an instance that dies loses it. An embedded store has one
    /// process, so the first caller gets it.
    fn try_lead(&self, name: &str) -> StoreResult<Option<Box<dyn Leadership>>> {
        let _ = name;
        Ok(Some(Box::new(Sole)))
    }

    /// Writes a copy of the whole store (every live row, nothing removed) as a new store of the
    /// same engine in the empty directory `dir`, durably. Returns the rows copied. Used by
    /// compaction (`compact`): the copy holds no byte of a removed record.
    fn copy_into(&self, dir: &Path) -> StoreResult<u64>;
}

/// The tree as [`LogStore::begin_commit`] found it under the lock.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Locked {
    /// The stored tree size.
    pub size: u64,
    /// When the tree grew past `known` (by at most [`CATCH_UP_ROWS`] entries), read in the same
    /// round trip: the stored checkpoint, the level-0 tiles from the one holding entry `known`
    /// to the last (each the stored bytes), and the last entry's leaf. `None` when the tree did
    /// not grow, or grew by more (then read it through the read traits).
    pub catch_up: Option<CatchUp>,
}

/// See [`Locked::catch_up`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CatchUp {
    /// The stored checkpoint note.
    pub checkpoint: Vec<u8>,
    /// Level-0 tiles `known / 256 ..= (size - 1) / 256`, in order.
    pub tiles: Vec<Vec<u8>>,
    /// The leaf of entry `size - 1`.
    pub last_leaf: Vec<u8>,
}

/// Most entries a [`CatchUp`] covers.
pub const CATCH_UP_ROWS: u64 = 1 << 16;

/// A lock held from [`LogStore::try_lead`]; released when dropped.
pub trait Leadership: Send + Sync {
    /// Whether the lock is still held (false once the session holding it was lost).
    fn held(&self) -> bool;
}

/// The leadership of an embedded store's only process.
struct Sole;

impl Leadership for Sole {
    fn held(&self) -> bool {
        true
    }
}

/// The record states of entries `start..end`, in order (two range reads, not one read per
/// entry). An index with neither a record nor a tombstone is [`RecordState::Absent`].
pub fn record_states(store: &dyn LogStore, start: u64, end: u64) -> StoreResult<Vec<RecordState>> {
    let n = usize::try_from(end.saturating_sub(start)).unwrap_or(usize::MAX);
    let mut out = vec![RecordState::Absent; n];
    let slot = |i: u64| usize::try_from(i - start).unwrap_or(usize::MAX);
    for (i, r) in store.live_records(start, end, n)? {
        if let Some(s) = out.get_mut(slot(i)) {
            *s = RecordState::Live(r);
        }
    }
    for (i, by) in store.erased_records(start, end, n)? {
        if let Some(s) = out.get_mut(slot(i)) {
            *s = RecordState::Erased(by);
        }
    }
    Ok(out)
}

/// The disk engines keep an entry and its live record in one row: the leaf's length (u32 BE),
/// the leaf, then the record (nothing once it is erased). One B-tree insert per entry instead of
/// two: a separate records table cost 45% of the commit path (BENCHMARKS.md, issue 19).
pub(crate) fn join_row(leaf: &[u8], record: Option<&[u8]>) -> Vec<u8> {
    let record = record.unwrap_or_default();
    let mut row = Vec::with_capacity(4 + leaf.len() + record.len());
    row.extend_from_slice(&u32::try_from(leaf.len()).unwrap_or(u32::MAX).to_be_bytes());
    row.extend_from_slice(leaf);
    row.extend_from_slice(record);
    row
}

/// Splits a [`join_row`] row into the leaf and the record (`None` when it has none).
pub(crate) fn split_row(row: &[u8]) -> StoreResult<(&[u8], Option<&[u8]>)> {
    let bad = || StoreError::Corrupt(format!("entry row of {} bytes", row.len()));
    let (len, rest) = row.split_first_chunk::<4>().ok_or_else(bad)?;
    let len = usize::try_from(u32::from_be_bytes(*len)).map_err(|_| bad())?;
    let (leaf, record) = rest.split_at_checked(len).ok_or_else(bad)?;
    Ok((leaf, (!record.is_empty()).then_some(record)))
}

/// Checks what every engine checks before writing a batch: one record per entry.
pub(crate) fn check_batch_shape(batch: &Batch) -> StoreResult<()> {
    if batch.records.len() != batch.entries.len() {
        return Err(StoreError::Corrupt(format!(
            "batch of {} entries carries {} records",
            batch.entries.len(),
            batch.records.len()
        )));
    }
    Ok(())
}

/// The error for erasing a record that is not live.
pub(crate) fn not_live(index: u64) -> StoreError {
    StoreError::Corrupt(format!(
        "erasing the record of entry {index}, which is not live"
    ))
}

/// The storage engines sealtrail ships.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// redb: copy-on-write B-tree, `fdatasync` on every commit. The default.
    Redb,
    /// sled 0.34, with an explicit fsync after every flush (its own flush is not durable).
    Sled,
    /// PostgreSQL (`[postgres]` in the configuration), each batch one transaction with
    /// `synchronous_commit` on. Not a directory: `data_dir` then holds only the key.
    Postgres,
}

impl Engine {
    /// The engine's name as written in configuration and in the data directory's marker.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Redb => "redb",
            Engine::Sled => "sled",
            Engine::Postgres => "postgres",
        }
    }
}

/// Opens the store `engine` names: PostgreSQL through `postgres` (which it needs), an embedded
/// engine in directory `dir` (see [`open`]).
pub fn open_configured(
    engine: Engine,
    dir: &Path,
    postgres: Option<&pg_store::PgConfig>,
) -> StoreResult<Box<dyn LogStore>> {
    match (engine, postgres) {
        (Engine::Postgres, Some(pg)) => Ok(Box::new(pg_store::PgStore::connect(pg)?)),
        (Engine::Postgres, None) => Err(StoreError::Io(
            "store = \"postgres\" needs a [postgres] section with its url".into(),
        )),
        _ => open(engine, dir),
    }
}

/// The file in a data directory that records which engine created it.
pub const ENGINE_MARKER: &str = "ENGINE";

/// Opens (creating if needed) the store of the chosen engine in directory `dir`. A data directory
/// remembers its engine: opening it with another one is an error, never a silently empty log.
pub fn open(engine: Engine, dir: &Path) -> StoreResult<Box<dyn LogStore>> {
    if engine == Engine::Postgres {
        return Err(StoreError::Io(
            "the postgres engine is reached through [postgres] url in the configuration, not a \
             data directory"
                .into(),
        ));
    }
    let io =
        |what: &str, e: std::io::Error| StoreError::Io(format!("{what} {}: {e}", dir.display()));
    create_dir_durably(dir)?;
    let marker = dir.join(ENGINE_MARKER);
    match std::fs::read_to_string(&marker) {
        Ok(text) if text.trim() == engine.name() => {}
        Ok(text) => {
            return Err(StoreError::Io(format!(
                "{} was created with the {} engine, not {}",
                dir.display(),
                text.trim(),
                engine.name()
            )));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io("reading the engine marker in", e)),
    }
    let store: Box<dyn LogStore> = match engine {
        Engine::Redb => Box::new(redb_store::RedbStore::open(dir)?),
        Engine::Sled => Box::new(sled_store::SledStore::open(dir)?),
        Engine::Postgres => unreachable!("refused above"),
    };
    if !marker.exists() {
        std::fs::write(&marker, format!("{}\n", engine.name()))
            .map_err(|e| io("writing the engine marker in", e))?;
        sync_dir(dir)?;
    }
    Ok(store)
}

/// Creates `dir` (and missing parents) so that the new directory entries survive a crash: every
/// directory created here and the parent of the topmost one are fsynced. An existing `dir` is left
/// alone.
pub(crate) fn create_dir_durably(dir: &Path) -> StoreResult<()> {
    if dir.is_dir() {
        return Ok(());
    }
    // `Path::new("x").ancestors()` ends with `""` (the current directory), which exists.
    let missing: Vec<&Path> = dir
        .ancestors()
        .take_while(|p| !p.as_os_str().is_empty() && !p.exists())
        .collect();
    std::fs::create_dir_all(dir)
        .map_err(|e| StoreError::Io(format!("creating {}: {e}", dir.display())))?;
    for created in &missing {
        sync_dir(created)?;
    }
    if let Some(parent) = missing.last().and_then(|top| top.parent()) {
        // `Path::new("x").parent()` is `Some("")`: the current directory.
        let parent = if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        };
        sync_dir(parent)?;
    }
    Ok(())
}

/// fsyncs a directory, making the creation, rename or removal of its entries durable.
pub(crate) fn sync_dir(dir: &Path) -> StoreResult<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::Io(format!("syncing directory {}: {e}", dir.display())))
}

/// Reads hash tiles from a store (for recovery and proofs).
pub struct StoreTiles<'a>(pub &'a dyn LogStore);

impl std::fmt::Debug for StoreTiles<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StoreTiles({})", self.0.engine())
    }
}

impl TileReader for StoreTiles<'_> {
    type Error = StoreError;

    fn read_tile(&mut self, tile: TileId) -> Result<Vec<Hash>, StoreError> {
        let bytes = self
            .0
            .tile(tile.level, tile.index)?
            .ok_or_else(|| StoreError::Corrupt(format!("{} is missing", tile.path())))?;
        let want = usize::from(tile.width) * 32;
        let prefix = bytes.get(..want).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "{} holds {} bytes, fewer than {want}",
                tile.path(),
                bytes.len()
            ))
        })?;
        decode_hash_tile(prefix, tile.width).map_err(|e| StoreError::Corrupt(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_relative_directories_durably() {
        let tmp = tempfile::tempdir().unwrap();
        create_dir_durably(&tmp.path().join("a/b/c")).unwrap();
        assert!(tmp.path().join("a/b/c").is_dir());
        // A single relative component (its parent is "", the current directory): once failed.
        let name = format!("sealtrail-test-dir-{}", std::process::id());
        create_dir_durably(Path::new(&name)).unwrap();
        assert!(Path::new(&name).is_dir());
        std::fs::remove_dir(&name).unwrap();
    }

    #[test]
    fn open_dispatches_on_the_engine_and_creates_nested_dirs() {
        let tmp = tempfile::tempdir().unwrap();
        for (engine, name) in [(Engine::Redb, "redb"), (Engine::Sled, "sled")] {
            let dir = tmp.path().join(name).join("a").join("b");
            let store = open(engine, &dir).unwrap();
            assert_eq!(store.engine(), name);
            assert_eq!(store.tree_size().unwrap(), 0);
            assert!(dir.is_dir());
        }
    }

    #[test]
    fn open_reports_a_file_where_the_directory_should_be() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("not-a-dir");
        std::fs::write(&file, b"x").unwrap();
        for engine in [Engine::Redb, Engine::Sled] {
            assert!(matches!(open(engine, &file), Err(StoreError::Io(_))));
        }
    }
}
