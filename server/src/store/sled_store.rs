//! The sled 0.34.7 engine, made durable by fsyncing sled's files ourselves.
//!
//! All log state lives in ONE sled tree (the default tree) so that a batch is one
//! `Tree::apply_batch`, which sled makes atomic for one tree. Keys (format version
//! [`FORMAT_VERSION`]): `e` + index (u64 BE) → the leaf and its live private record (one value,
//! see `super::join_row`); `x` +
//! index → erasure entry index (u64 BE, the tombstone of an erased record); `h` + hold id (u64
//! BE) → encoded legal hold; `t` + level + index (u64 BE) → hash tile
//! bytes; `i` + key digest (32 bytes) → 16-byte [`IdempotencyRecord`]; `r` + run (u64 BE) + bucket →
//! leaf-index row; `p` + opaque posting key → posting row (`crate::query`); `c` + sink name →
//! forwarding cursor (u64 BE; not flushed on its own, it rides on the next commit's flush);
//! `mcheckpoint` → the signed checkpoint of the stored size; `mtree_size`
//! and `mformat_version` → u64 BE. Big-endian indices make key order log order.
//!
//! Durability. `Db::flush` in 0.34.7 writes the log buffer with `pwrite` and then calls
//! `sync_file_range(WAIT_BEFORE | WRITE | WAIT_AFTER)` on Linux (`src/pagecache/iobuf.rs`,
//! `IoBufs::write_to_log`), which neither flushes the disk's write cache nor persists file
//! metadata. So after `flush` returns, [`SledStore::commit`] fsyncs, through its own descriptors
//! (fsync acts on the inode, not the descriptor):
//!
//! - every file in `blobs/` it has not synced before, then `blobs/` itself. sled spills a log
//!   record into its own file `blobs/<lsn>` when it is larger than a quarter of a segment (128 KiB
//!   by default; `src/pagecache/logger.rs`, `reserve_inner`). Records can be whole tree nodes, and
//!   a leaf splits only once it holds more than 16 items (`src/node.rs`, `should_split`), so nodes
//!   of large entries become blobs (20 entries of 64 KiB do; 256-byte entries with 8 KiB tiles made
//!   none in our benchmark runs, but nothing in sled's config rules it out: the segment size is a
//!   hidden testing knob). `write_blob` (`src/pagecache/blob_io.rs`) writes them with `write_all`
//!   and never syncs them. Every blob a flushed record points to exists before `flush` returns:
//!   `IoBufs::encapsulate` writes the blob while its record is reserved, and a log buffer is
//!   written only once all of its reservations are complete;
//! - the `db` file (`fdatasync`): the log itself, segments and all.
//!
//! At open it also fsyncs `conf` (written by `Config::write_config` without a sync), the data
//! directory (new `db`, `conf`, `blobs/` entries, and the `snap.*` rename that sled does, without a
//! directory sync, in `src/pagecache/snapshot.rs` `write_snapshot`) and `blobs/`. sled 0.34.7
//! writes snapshots only at open (`read_snapshot_or_default`), so no per-commit directory sync is
//! needed beyond `blobs/`.
//!
//! One writer: the sequencer is the only caller of `commit`. A mutex held across the size check,
//! `apply_batch`, `flush` and the fsyncs makes that safe even if two commits race: only one can
//! pass the check for a given size. Readers do not take the mutex, so they can see a batch as soon
//! as `apply_batch` has run, before it is durable (the trait allows that; callers bound reads by
//! a committed size), but never part of one.
//!
//! Erased records: sled is log-structured, so a removed record's bytes stay in old log segments
//! until sled rewrites them. `sealtrail compact` (server stopped) copies the live data into a
//! fresh store, after which no byte of an erased record is left in the data directory.
//!
//! sled keeps up to `cache_capacity` bytes of pages in memory; its default is 1 GiB, ours is
//! [`CACHE_BYTES`]. The background flusher (`flush_every_ms`, 500 ms) stays on as a backstop.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::File;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{
    Batch, CursorStore, EntryStore, IdempotencyRecord, IdempotencyStore, LeafIndex, LogStore,
    PostingStore, RecordState, RecordStore, StoreError, StoreResult, TileStore,
};

/// Version of the key layout above. A store with another version is refused at open.
pub const FORMAT_VERSION: u64 = 2;

/// sled's page cache budget: 64 MiB instead of sled's 1 GiB default. The append path touches
/// only the right edge of the tree, and reads of old entries and tiles are served from disk.
pub const CACHE_BYTES: u64 = 64 * 1024 * 1024;

const META_TREE_SIZE: &[u8] = b"mtree_size";
const META_FORMAT: &[u8] = b"mformat_version";
const META_CHECKPOINT: &[u8] = b"mcheckpoint";

fn run_key(run: u64, bucket: u8) -> [u8; 10] {
    let mut k = [0u8; 10];
    k[0] = b'r';
    k[1..9].copy_from_slice(&run.to_be_bytes());
    k[9] = bucket;
    k
}

/// A log store in one sled database directory. All methods take `&self`.
#[derive(Debug)]
pub struct SledStore {
    tree: sled::Db,
    dir: PathBuf,
    /// Our own descriptor on sled's `db` file, used only to fsync it.
    db_file: File,
    /// Held for a whole commit. Also owns what the fsync step has to remember.
    writer: Mutex<WriterState>,
}

#[derive(Debug, Default)]
struct WriterState {
    /// Names of the files in `blobs/` already fsynced (and still present at the last listing).
    synced_blobs: HashSet<OsString>,
    /// How many blob files have been fsynced since open (a counter for tests and debugging).
    blob_syncs: u64,
    /// Set when a flush or fsync failed: the batch may be in sled's memory without being durable,
    /// so no further commit is accepted until the store is reopened.
    failed: Option<String>,
}

fn prefixed(tag: u8, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + 1);
    k.push(tag);
    k.extend_from_slice(key);
    k
}

fn entry_key(index: u64) -> [u8; 9] {
    indexed_key(b'e', index)
}

fn indexed_key(tag: u8, index: u64) -> [u8; 9] {
    let mut k = [tag; 9];
    k[1..].copy_from_slice(&index.to_be_bytes());
    k
}

fn tile_key(level: u8, index: u64) -> [u8; 10] {
    let mut k = [b't'; 10];
    k[1] = level;
    k[2..].copy_from_slice(&index.to_be_bytes());
    k
}

fn idempotency_key(key: &[u8; 32]) -> [u8; 33] {
    let mut k = [b'i'; 33];
    k[1..].copy_from_slice(key);
    k
}

/// sled 0.34.7 reports a held file lock as an `Io` error with this text (`Config::try_lock`).
fn is_lock_conflict(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(io) if io.to_string().contains("could not acquire lock"))
}

fn sled_err(what: &'static str) -> impl FnOnce(sled::Error) -> StoreError {
    move |e| match e {
        sled::Error::Corruption { .. } => StoreError::Corrupt(format!("sled {what}: {e}")),
        sled::Error::Io(ref io) if is_lock_conflict(&e) => StoreError::Io(format!(
            "sled {what}: the store is already open (by this or another process); \
                 only one sealtrail server may use a data directory ({io})"
        )),
        other => StoreError::Io(format!("sled {what}: {other}")),
    }
}

fn io_err(what: &str, path: &Path) -> impl FnOnce(std::io::Error) -> StoreError {
    let msg = format!("{what} {}", path.display());
    move |e| StoreError::Io(format!("{msg}: {e}"))
}

/// How long `open` waits for a file lock held by this process's previous, just-dropped handle.
///
/// sled's `Db` lock is an `flock` on the `db` file, released when the last `Arc` of sled's I/O
/// buffers is dropped. sled's I/O threads (`src/threadpool.rs`) hold one until their write job
/// returns, which can be a moment after `flush` has returned and the `Db` is gone, so reopening a
/// store in the same process can briefly meet its own lock. Nothing signals the release, so `open`
/// retries for a bounded time; a store really held by another handle is still refused, after
/// this delay.
const LOCK_WAIT: Duration = Duration::from_secs(1);

fn open_sled(dir: &Path) -> StoreResult<sled::Db> {
    let config = sled::Config::new().path(dir).cache_capacity(CACHE_BYTES);
    let deadline = Instant::now() + LOCK_WAIT;
    let mut pause = Duration::from_millis(1);
    loop {
        match config.open() {
            Ok(db) => return Ok(db),
            Err(e) if is_lock_conflict(&e) && Instant::now() < deadline => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            Err(e) => return Err(sled_err("open")(e)),
        }
    }
}

impl SledStore {
    /// Opens (creating if needed) the sled database in `dir`. Fails if another handle (in this
    /// process or another) has it open, or if its format version is unknown.
    pub fn open(dir: &Path) -> StoreResult<Self> {
        super::create_dir_durably(dir)?;
        let tree = open_sled(dir)?;
        let db_path = dir.join("db");
        let db_file = File::open(&db_path).map_err(io_err("opening", &db_path))?;
        let conf = dir.join("conf");
        File::open(&conf)
            .and_then(|f| f.sync_all())
            .map_err(io_err("syncing", &conf))?;
        super::sync_dir(dir)?;
        let store = SledStore {
            tree,
            dir: dir.to_path_buf(),
            db_file,
            writer: Mutex::new(WriterState::default()),
        };
        {
            let mut state = store.lock()?;
            store.sync_blobs(&mut state, true)?;
        }
        store.init_or_check_format()?;
        Ok(store)
    }

    fn init_or_check_format(&self) -> StoreResult<()> {
        match self
            .tree
            .get(META_FORMAT)
            .map_err(sled_err("read format"))?
        {
            Some(v) => match super::u64_from("format version", &v)? {
                FORMAT_VERSION => Ok(()),
                other => Err(StoreError::Corrupt(format!(
                    "store format version {other}; this build reads version {FORMAT_VERSION}"
                ))),
            },
            None if !self.tree.is_empty() => Err(StoreError::Corrupt(
                "store has data but no format version".into(),
            )),
            None => {
                let mut batch = sled::Batch::default();
                batch.insert(META_FORMAT, &FORMAT_VERSION.to_be_bytes()[..]);
                batch.insert(META_TREE_SIZE, &0u64.to_be_bytes()[..]);
                let mut state = self.lock()?;
                self.tree
                    .apply_batch(batch)
                    .map_err(sled_err("write meta"))?;
                self.make_durable(&mut state)
            }
        }
    }

    fn lock(&self) -> StoreResult<std::sync::MutexGuard<'_, WriterState>> {
        self.writer
            .lock()
            .map_err(|_| StoreError::Io("sled writer lock poisoned".into()))
    }

    /// `flush` (sled's `sync_file_range`), then the real fsyncs: new blob files, `blobs/`, `db`.
    fn make_durable(&self, state: &mut WriterState) -> StoreResult<()> {
        let result = self
            .tree
            .flush()
            .map_err(sled_err("flush"))
            .and_then(|_| self.sync_blobs(state, false))
            .and_then(|()| {
                self.db_file
                    .sync_data()
                    .map_err(io_err("syncing", &self.dir.join("db")))
            });
        if let Err(e) = &result {
            state.failed = Some(e.to_string());
        }
        result
    }

    /// fsyncs every file in `blobs/` not synced before, then the directory if its listing changed
    /// (or if `force`). A blob that vanishes while we look was removed by sled's segment cleaner.
    ///
    /// sled does not say which blobs a flush wrote, so this lists the directory on every commit:
    /// O(live blob files), which is zero for typical audit records and grows only with nodes of
    /// large entries.
    fn sync_blobs(&self, state: &mut WriterState, force: bool) -> StoreResult<()> {
        let blob_dir = self.dir.join("blobs");
        let mut present = HashSet::with_capacity(state.synced_blobs.len());
        let mut changed = force;
        for dirent in std::fs::read_dir(&blob_dir).map_err(io_err("listing", &blob_dir))? {
            let name = dirent.map_err(io_err("listing", &blob_dir))?.file_name();
            if !state.synced_blobs.contains(&name) {
                let path = blob_dir.join(&name);
                match File::open(&path).and_then(|f| f.sync_all()) {
                    Ok(()) => state.blob_syncs += 1,
                    Err(e) if e.kind() == ErrorKind::NotFound => continue,
                    Err(e) => return Err(io_err("syncing", &path)(e)),
                }
                changed = true;
            }
            present.insert(name);
        }
        changed |= present.len() != state.synced_blobs.len();
        state.synced_blobs = present;
        if changed {
            super::sync_dir(&blob_dir)?;
        }
        Ok(())
    }

    fn stored_size(&self) -> StoreResult<u64> {
        let v = self
            .tree
            .get(META_TREE_SIZE)
            .map_err(sled_err("read size"))?
            .ok_or_else(|| StoreError::Corrupt("store has no tree size".into()))?;
        super::u64_from("tree size", &v)
    }
}

impl EntryStore for SledStore {
    fn entry(&self, index: u64) -> StoreResult<Option<Vec<u8>>> {
        let v = self
            .tree
            .get(entry_key(index))
            .map_err(sled_err("read entry"))?;
        v.map(|v| super::split_row(&v).map(|(leaf, _)| leaf.to_vec()))
            .transpose()
    }

    fn entries(&self, start: u64, end: u64) -> StoreResult<Vec<Vec<u8>>> {
        if start >= end {
            return Ok(Vec::new());
        }
        let capacity = usize::try_from(end - start).unwrap_or(usize::MAX).min(4096);
        let mut out = Vec::with_capacity(capacity);
        let mut expected = start;
        for row in self.tree.range(entry_key(start)..entry_key(end)) {
            let (key, value) = row.map_err(sled_err("scan entries"))?;
            if key.as_ref() != entry_key(expected) {
                break;
            }
            out.push(super::split_row(&value)?.0.to_vec());
            expected += 1;
        }
        if expected != end {
            return Err(StoreError::Corrupt(format!("entry {expected} missing")));
        }
        Ok(out)
    }
}

impl TileStore for SledStore {
    fn tile(&self, level: u8, index: u64) -> StoreResult<Option<Vec<u8>>> {
        let v = self
            .tree
            .get(tile_key(level, index))
            .map_err(sled_err("read tile"))?;
        Ok(v.map(|v| v.to_vec()))
    }
}

impl IdempotencyStore for SledStore {
    fn idempotency(&self, key: &[u8; 32]) -> StoreResult<Option<IdempotencyRecord>> {
        let v = self
            .tree
            .get(idempotency_key(key))
            .map_err(sled_err("read idempotency"))?;
        v.map(|v| IdempotencyRecord::from_bytes(&v)).transpose()
    }

    fn idempotency_after(
        &self,
        after: Option<&[u8; 32]>,
        limit: usize,
    ) -> StoreResult<Vec<([u8; 32], IdempotencyRecord)>> {
        let start = match after {
            Some(a) => std::ops::Bound::Excluded(idempotency_key(a).to_vec()),
            None => std::ops::Bound::Included(vec![b'i']),
        };
        self.tree
            .range::<Vec<u8>, _>((start, std::ops::Bound::Excluded(vec![b'i' + 1])))
            .take(limit)
            .map(|r| {
                let (k, v) = r.map_err(sled_err("scan idempotency"))?;
                let key = <[u8; 32]>::try_from(k.get(1..).unwrap_or_default()).map_err(|_| {
                    StoreError::Corrupt(format!("idempotency key of {} bytes", k.len()))
                })?;
                Ok((key, IdempotencyRecord::from_bytes(&v)?))
            })
            .collect()
    }
}

impl LeafIndex for SledStore {
    fn leaf_run(&self, run: u64, bucket: u8) -> StoreResult<Option<Vec<u8>>> {
        let v = self
            .tree
            .get(run_key(run, bucket))
            .map_err(sled_err("read leaf run"))?;
        Ok(v.map(|v| v.to_vec()))
    }
}

impl PostingStore for SledStore {
    fn postings(
        &self,
        from: &[u8],
        to: &[u8],
        reverse: bool,
        limit: usize,
    ) -> StoreResult<Vec<(Vec<u8>, Vec<u8>)>> {
        if from >= to {
            return Ok(Vec::new());
        }
        let range = self.tree.range(prefixed(b'p', from)..prefixed(b'p', to));
        let row = |r: sled::Result<(sled::IVec, sled::IVec)>| {
            let (k, v) = r.map_err(sled_err("scan postings"))?;
            Ok((k.get(1..).unwrap_or_default().to_vec(), v.to_vec()))
        };
        if reverse {
            range.rev().take(limit).map(row).collect()
        } else {
            range.take(limit).map(row).collect()
        }
    }
}

impl CursorStore for SledStore {
    fn sink_cursor(&self, name: &str) -> StoreResult<Option<u64>> {
        self.tree
            .get(prefixed(b'c', name.as_bytes()))
            .map_err(sled_err("read cursor"))?
            .map(|v| super::u64_from("sink cursor", &v))
            .transpose()
    }

    /// One insert, not flushed: the next commit's flush and fsyncs (or sled's 500 ms background
    /// flush) persist it.
    fn set_sink_cursor(&self, name: &str, next: u64) -> StoreResult<()> {
        self.tree
            .insert(prefixed(b'c', name.as_bytes()), &next.to_be_bytes()[..])
            .map_err(sled_err("write cursor"))?;
        Ok(())
    }

    fn sink_cursors(&self) -> StoreResult<Vec<(String, u64)>> {
        self.tree
            .scan_prefix([b'c'])
            .map(|r| {
                let (k, v) = r.map_err(sled_err("scan cursors"))?;
                let name = String::from_utf8(k.get(1..).unwrap_or_default().to_vec())
                    .map_err(|_| StoreError::Corrupt("sink cursor name is not UTF-8".into()))?;
                Ok((name, super::u64_from("sink cursor", &v)?))
            })
            .collect()
    }
}

impl SledStore {
    /// `(index, value)` rows of tag `tag` with `start <= index < end`, at most `limit`.
    fn indexed_range(
        &self,
        tag: u8,
        start: u64,
        end: u64,
        limit: usize,
    ) -> StoreResult<Vec<(u64, sled::IVec)>> {
        if start >= end {
            return Ok(Vec::new());
        }
        self.tree
            .range(indexed_key(tag, start)..indexed_key(tag, end))
            .take(limit)
            .map(|row| {
                let (k, v) = row.map_err(sled_err("scan"))?;
                Ok((
                    super::u64_from("record key", k.get(1..).unwrap_or_default())?,
                    v,
                ))
            })
            .collect()
    }
}

impl SledStore {
    /// Writes a copy of every key into a new sled database in `dir` and makes it durable (see
    /// [`LogStore::copy_into`]).
    fn copy_keys(&self, dir: &Path) -> StoreResult<u64> {
        let copy = SledStore::open(dir)?;
        let mut n = 0u64;
        let mut writes = sled::Batch::default();
        for row in self.tree.iter() {
            let (k, v) = row.map_err(sled_err("scan for copy"))?;
            writes.insert(k, v);
            n += 1;
        }
        copy.tree
            .apply_batch(writes)
            .map_err(sled_err("write copy"))?;
        let mut state = copy.lock()?;
        copy.sync_blobs(&mut state, true)?;
        copy.make_durable(&mut state)?;
        Ok(n)
    }
}

impl RecordStore for SledStore {
    fn record(&self, index: u64) -> StoreResult<RecordState> {
        if let Some(v) = self
            .tree
            .get(entry_key(index))
            .map_err(sled_err("read record"))?
            && let (_, Some(record)) = super::split_row(&v)?
        {
            return Ok(RecordState::Live(record.to_vec()));
        }
        match self
            .tree
            .get(indexed_key(b'x', index))
            .map_err(sled_err("read erased"))?
        {
            Some(v) => Ok(RecordState::Erased(super::u64_from("tombstone", &v)?)),
            None => Ok(RecordState::Absent),
        }
    }

    fn live_records(&self, start: u64, end: u64, limit: usize) -> StoreResult<Vec<(u64, Vec<u8>)>> {
        let mut out = Vec::new();
        if start >= end {
            return Ok(out);
        }
        for row in self.tree.range(entry_key(start)..entry_key(end)) {
            if out.len() >= limit {
                break;
            }
            let (k, v) = row.map_err(sled_err("scan records"))?;
            if let (_, Some(record)) = super::split_row(&v)? {
                let index = super::u64_from("entry key", k.get(1..).unwrap_or_default())?;
                out.push((index, record.to_vec()));
            }
        }
        Ok(out)
    }

    fn erased_records(&self, start: u64, end: u64, limit: usize) -> StoreResult<Vec<(u64, u64)>> {
        self.indexed_range(b'x', start, end, limit)?
            .into_iter()
            .map(|(i, v)| Ok((i, super::u64_from("tombstone", &v)?)))
            .collect()
    }

    fn holds(&self) -> StoreResult<Vec<(u64, Vec<u8>)>> {
        Ok(self
            .indexed_range(b'h', 0, u64::MAX, usize::MAX)?
            .into_iter()
            .map(|(i, v)| (i, v.to_vec()))
            .collect())
    }
}

impl LogStore for SledStore {
    fn tree_size(&self) -> StoreResult<u64> {
        self.stored_size()
    }

    fn checkpoint(&self) -> StoreResult<Option<Vec<u8>>> {
        let v = self
            .tree
            .get(META_CHECKPOINT)
            .map_err(sled_err("read checkpoint"))?;
        Ok(v.map(|v| v.to_vec()))
    }

    /// Under the writer mutex: check the size, one `apply_batch`, `flush`, fsyncs. If the flush
    /// or an fsync fails, the batch may already be visible in memory and may or may not survive a
    /// crash; the store then refuses every later commit until it is reopened.
    fn commit(&self, batch: &Batch) -> StoreResult<()> {
        super::check_batch_shape(batch)?;
        let mut state = self.lock()?;
        if let Some(why) = &state.failed {
            return Err(StoreError::Io(format!(
                "sled store failed earlier and must be reopened: {why}"
            )));
        }
        let found = self.stored_size()?;
        if found != batch.old_size {
            return Err(StoreError::SizeMismatch {
                expected: batch.old_size,
                found,
            });
        }
        let mut writes = sled::Batch::default();
        for ((index, entry), record) in (batch.old_size..).zip(&batch.entries).zip(&batch.records) {
            writes.insert(
                &entry_key(index)[..],
                super::join_row(entry, record.as_deref()),
            );
        }
        for &(index, by) in &batch.tombstones {
            writes.insert(&indexed_key(b'x', index)[..], &by.to_be_bytes()[..]);
        }
        for &(index, by) in &batch.erased {
            // The one writer holds the mutex, so the row cannot change before apply_batch. It is
            // written again without its record: the leaf stays.
            let row = self
                .tree
                .get(entry_key(index))
                .map_err(sled_err("read record"))?
                .ok_or_else(|| super::not_live(index))?;
            let leaf = match super::split_row(&row)? {
                (leaf, Some(_)) => super::join_row(leaf, None),
                (_, None) => return Err(super::not_live(index)),
            };
            writes.insert(&entry_key(index)[..], leaf);
            writes.insert(&indexed_key(b'x', index)[..], &by.to_be_bytes()[..]);
        }
        for (id, hold) in &batch.holds_placed {
            writes.insert(&indexed_key(b'h', *id)[..], hold.as_slice());
        }
        for id in &batch.holds_released {
            writes.remove(&indexed_key(b'h', *id)[..]);
        }
        for (id, bytes) in &batch.tiles {
            writes.insert(&tile_key(id.level, id.index)[..], bytes.as_slice());
        }
        for (key, record) in &batch.idempotency {
            writes.insert(&idempotency_key(key)[..], &record.to_bytes()[..]);
        }
        for (run, bucket, row) in &batch.leaf_runs {
            writes.insert(&run_key(*run, *bucket)[..], row.as_slice());
        }
        for key in &batch.postings_removed {
            writes.remove(prefixed(b'p', key));
        }
        for (key, row) in &batch.postings {
            writes.insert(prefixed(b'p', key), row.as_slice());
        }
        writes.insert(META_CHECKPOINT, batch.checkpoint.as_slice());
        writes.insert(META_TREE_SIZE, &batch.new_size().to_be_bytes()[..]);
        self.tree
            .apply_batch(writes)
            .map_err(sled_err("apply batch"))?;
        self.make_durable(&mut state)
    }

    fn engine(&self) -> &'static str {
        "sled"
    }

    fn copy_into(&self, dir: &Path) -> StoreResult<u64> {
        self.copy_keys(dir)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::store::conformance::{Expected, batch};

    /// Deletes an entry from a closed store, as corruption would.
    pub(crate) fn remove_entry(dir: &Path, index: u64) {
        let db = open_sled(dir).unwrap();
        assert!(db.remove(entry_key(index)).unwrap().is_some());
        db.flush().unwrap();
    }

    #[test]
    fn refuses_an_unknown_format_version() {
        let tmp = tempfile::tempdir().unwrap();
        drop(SledStore::open(tmp.path()).unwrap());
        {
            // Through `open_sled`: the dropped store's I/O threads may hold the lock a moment.
            let db = open_sled(tmp.path()).unwrap();
            db.insert(META_FORMAT, &(FORMAT_VERSION + 1).to_be_bytes()[..])
                .unwrap();
            db.flush().unwrap();
        }
        match SledStore::open(tmp.path()) {
            Err(StoreError::Corrupt(msg)) => assert!(msg.contains("format version 3"), "{msg}"),
            other => panic!("expected a format error, got {other:?}"),
        }
    }

    #[test]
    fn refuses_a_sled_db_of_someone_else() {
        let tmp = tempfile::tempdir().unwrap();
        {
            let db = sled::open(tmp.path()).unwrap();
            db.insert(b"other", b"data").unwrap();
            db.flush().unwrap();
        }
        assert!(matches!(
            SledStore::open(tmp.path()),
            Err(StoreError::Corrupt(_))
        ));
    }

    /// Nodes of large entries are spilled into `blobs/`; every blob file must have been fsynced
    /// by the commit that needed it.
    #[test]
    fn blob_files_are_synced() {
        let tmp = tempfile::tempdir().unwrap();
        let store = SledStore::open(tmp.path()).unwrap();
        let mut want = Expected::default();
        let mut before: HashSet<OsString> = HashSet::new();
        for round in 0..4u64 {
            let mut b = batch(round * 20, 20);
            for e in &mut b.entries {
                e.resize(65535, 0x5A);
            }
            let syncs_before = store.lock().unwrap().blob_syncs;
            want.commit(&store, &b);
            let on_disk: HashSet<OsString> = std::fs::read_dir(tmp.path().join("blobs"))
                .unwrap()
                .map(|d| d.unwrap().file_name())
                .collect();
            assert!(!on_disk.is_empty(), "large nodes should be blobs");
            let state = store.lock().unwrap();
            let new = on_disk.difference(&before).count() as u64;
            assert!(new > 0, "every round of large entries writes new blobs");
            assert!(
                state.blob_syncs - syncs_before >= new,
                "a new blob was not fsynced"
            );
            assert!(
                on_disk.is_subset(&state.synced_blobs),
                "{on_disk:?} not all synced"
            );
            drop(state);
            before = on_disk;
        }
        drop(store);
        want.check(&SledStore::open(tmp.path()).unwrap());
    }

    #[test]
    fn key_layout_is_log_ordered() {
        assert!(entry_key(255) < entry_key(256));
        assert!(entry_key(u64::MAX)[..] < tile_key(0, 0)[..]);
        assert!(tile_key(0, u64::MAX) < tile_key(1, 0));
        assert_eq!(&tile_key(3, 1)[..], &[b't', 3, 0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(idempotency_key(&[7; 32])[0], b'i');
    }
}
