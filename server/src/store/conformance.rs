//! The storage contract as tests: one suite, generic over a [`Factory`], run against every engine
//! (`mem`, `redb`, `sled`, and `postgres` on a throwaway cluster) by the `conformance!` macro at
//! the bottom.
//!
//! Each check commits batches, mirrors them in [`Expected`] (a plain model of what the store must
//! hold) and compares the store with it entry by entry. Engine-specific checks (format version
//! refusal, sled's blob files) live beside the engines.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use sealtrail_spec::tiles::TileId;

use super::mem::MemStore;
use super::pg_store::{PgConfig, PgStore};
use super::redb_store::RedbStore;
use super::sled_store::SledStore;
use super::{
    Batch, CursorStore, EntryStore, IdempotencyRecord, IdempotencyStore, LeafIndex, LogStore,
    PostingStore, RecordState, RecordStore, StoreError, StoreResult, TileStore,
};

/// Makes stores of one engine for the suite.
pub(crate) trait Factory {
    /// The engine's store.
    type Store: LogStore;
    /// Whether a store survives being dropped and opened again.
    const DURABLE: bool;
    /// Opens the factory's store: the same one again on durable engines (once the previous handle
    /// is dropped), a new empty one otherwise.
    fn open(&self) -> Self::Store {
        match self.try_open() {
            Ok(store) => store,
            Err(e) => panic!("open failed: {e}"),
        }
    }
    /// Like `open`, returning the error.
    fn try_open(&self) -> StoreResult<Self::Store>;
    /// Makes the next commit of `store` fail without writing anything. `false` if the engine has
    /// no fault injection.
    fn fail_next_commit(&self, store: &Self::Store) -> bool;
    /// Deletes entry `index` behind the store's back, as corruption would, and returns the
    /// store (reopened, on disk engines).
    fn remove_entry(&self, store: Self::Store, index: u64) -> Self::Store;
}

/// The in-memory engine: not durable, with fault injection.
pub(crate) struct MemFactory;

impl Factory for MemFactory {
    type Store = MemStore;
    const DURABLE: bool = false;
    fn try_open(&self) -> StoreResult<MemStore> {
        Ok(MemStore::new())
    }
    fn fail_next_commit(&self, store: &MemStore) -> bool {
        store.fail_commits(1);
        true
    }
    fn remove_entry(&self, store: MemStore, index: u64) -> MemStore {
        store.remove_entry(index);
        store
    }
}

/// A disk engine in its own temporary directory (a not-yet-existing subdirectory, so `open` has
/// to create it).
pub(crate) struct DiskFactory<S> {
    dir: tempfile::TempDir,
    open: fn(&Path) -> StoreResult<S>,
    remove_entry: fn(&Path, u64),
}

impl<S> DiskFactory<S> {
    pub(crate) fn new(open: fn(&Path) -> StoreResult<S>, remove_entry: fn(&Path, u64)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        DiskFactory {
            dir,
            open,
            remove_entry,
        }
    }

    pub(crate) fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("data")
    }
}

impl<S: LogStore> Factory for DiskFactory<S> {
    type Store = S;
    const DURABLE: bool = true;
    fn try_open(&self) -> StoreResult<S> {
        (self.open)(&self.path())
    }
    fn fail_next_commit(&self, _: &S) -> bool {
        false
    }
    fn remove_entry(&self, store: S, index: u64) -> S {
        drop(store);
        (self.remove_entry)(&self.path(), index);
        self.open()
    }
}

/// PostgreSQL: a database of its own in the process's throwaway cluster (`pg_cluster`); opening
/// again connects again to the same database.
pub(crate) struct PgFactory {
    url: String,
}

impl PgFactory {
    pub(crate) fn new() -> Self {
        PgFactory {
            url: super::pg_cluster::shared().new_database(),
        }
    }
}

impl Factory for PgFactory {
    type Store = PgStore;
    const DURABLE: bool = true;
    fn try_open(&self) -> StoreResult<PgStore> {
        PgStore::connect(&PgConfig::new(self.url.clone()))
    }
    fn fail_next_commit(&self, _: &PgStore) -> bool {
        false
    }
    /// Deletes the row over a connection of its own; the open store sees it at once.
    fn remove_entry(&self, store: PgStore, index: u64) -> PgStore {
        super::pg_cluster::shared().execute(
            &self.url,
            &format!("DELETE FROM entries WHERE idx = {index}"),
        );
        store
    }
}

// ---- test data ----

/// Leaf `i`: its index, then `i % 300` filler bytes, so lengths vary and values are distinct.
pub(crate) fn leaf(i: u64) -> Vec<u8> {
    let mut v = i.to_be_bytes().to_vec();
    v.extend((0..i % 300).map(|j| (i as u8).wrapping_mul(31).wrapping_add(j as u8)));
    v
}

/// A hash tile's bytes: byte `j` depends only on (level, index, j), so a narrow version is a
/// prefix of a wide one, as in a real log.
pub(crate) fn tile_bytes(level: u8, index: u64, width: u16) -> Vec<u8> {
    (0..32 * usize::from(width))
        .map(|j| (j as u8) ^ level.wrapping_mul(97) ^ (index as u8).wrapping_mul(13))
        .collect()
}

fn tile(level: u8, index: u64, width: u16) -> (TileId, Vec<u8>) {
    (
        TileId {
            level,
            index,
            width,
        },
        tile_bytes(level, index, width),
    )
}

pub(crate) fn idem_key(i: u64) -> [u8; 32] {
    let mut k = [0xA5; 32];
    k[..8].copy_from_slice(&i.to_le_bytes());
    k
}

pub(crate) fn idem_record(i: u64) -> IdempotencyRecord {
    IdempotencyRecord {
        index: i,
        count: 1 + i % 3,
    }
}

/// Record `i`: opaque bytes to the store, distinct per index, of varying length.
pub(crate) fn record(i: u64) -> Vec<u8> {
    let mut v = b"record".to_vec();
    v.extend_from_slice(&i.to_be_bytes());
    v.extend((0..i % 200).map(|j| (i as u8).wrapping_add(j as u8)));
    v
}

/// A batch of `n` leaves on `old_size`, with the level-0 tiles it touches (at their new widths),
/// one level-1 tile and an idempotency record per leaf.
pub(crate) fn batch(old_size: u64, n: u64) -> Batch {
    let new_size = old_size + n;
    let mut tiles = Vec::new();
    if n > 0 {
        for k in old_size / 256..=(new_size - 1) / 256 {
            let width = (new_size - k * 256).min(256) as u16;
            tiles.push(tile(0, k, width));
        }
        let last = new_size - 1;
        tiles.push(tile(1, last / 65536, ((last % 65536) / 256 + 1) as u16));
    }
    complete(Batch {
        old_size,
        entries: (old_size..new_size).map(leaf).collect(),
        records: (old_size..new_size).map(|i| Some(record(i))).collect(),
        tiles,
        idempotency: (old_size..new_size)
            .map(|i| (idem_key(i), idem_record(i)))
            .collect(),
        ..Batch::default()
    })
}

/// A posting key in the shape `crate::query` uses: a value, then the row's last index.
pub(crate) fn posting_key(value: &[u8], last: u64) -> Vec<u8> {
    let mut k = value.to_vec();
    k.extend_from_slice(&last.to_be_bytes());
    k
}

/// Fills in what the sequencer adds: a checkpoint (opaque bytes to the store) naming the new
/// size, a posting row for two values over the batch's entries, and leaf-index rows on every
/// batch that starts at a multiple of 8.
pub(crate) fn complete(mut b: Batch) -> Batch {
    b.checkpoint = format!("test checkpoint\n{}\n", b.new_size()).into_bytes();
    if !b.entries.is_empty() && b.postings.is_empty() {
        let last = b.new_size() - 1;
        b.postings = vec![
            (posting_key(b"even", last), last.to_le_bytes().to_vec()),
            (posting_key(b"odd", last), b.old_size.to_le_bytes().to_vec()),
        ];
    }
    if b.old_size.is_multiple_of(8) && b.leaf_runs.is_empty() {
        let tag = (b.old_size % 251) as u8;
        b.leaf_runs = vec![
            (b.old_size, 7, vec![tag; 10]),
            (b.old_size, 255, vec![tag; 20]),
        ];
    }
    b
}

/// What the store must hold: the model every check compares against.
#[derive(Debug, Default, Clone)]
pub(crate) struct Expected {
    entries: Vec<Vec<u8>>,
    records: BTreeMap<u64, Vec<u8>>,
    erased: BTreeMap<u64, u64>,
    holds: BTreeMap<u64, Vec<u8>>,
    tiles: BTreeMap<(u8, u64), Vec<u8>>,
    idempotency: BTreeMap<[u8; 32], IdempotencyRecord>,
    leaf_runs: BTreeMap<(u64, u8), Vec<u8>>,
    postings: BTreeMap<Vec<u8>, Vec<u8>>,
    checkpoint: Option<Vec<u8>>,
}

impl Expected {
    fn size(&self) -> u64 {
        self.entries.len() as u64
    }

    fn apply(&mut self, b: &Batch) {
        assert_eq!(b.old_size, self.size(), "test bug: batch on the wrong size");
        self.entries.extend(b.entries.iter().cloned());
        for (i, r) in (b.old_size..).zip(&b.records) {
            if let Some(r) = r {
                self.records.insert(i, r.clone());
            }
        }
        self.erased.extend(b.tombstones.iter().copied());
        for &(i, by) in &b.erased {
            assert!(self.records.remove(&i).is_some(), "test bug: erasing {i}");
            self.erased.insert(i, by);
        }
        for (id, h) in &b.holds_placed {
            self.holds.insert(*id, h.clone());
        }
        for id in &b.holds_released {
            self.holds.remove(id);
        }
        for key in &b.postings_removed {
            self.postings.remove(key);
        }
        for (id, bytes) in &b.tiles {
            self.tiles.insert((id.level, id.index), bytes.clone());
        }
        self.idempotency.extend(b.idempotency.iter().copied());
        for (run, bucket, row) in &b.leaf_runs {
            self.leaf_runs.insert((*run, *bucket), row.clone());
        }
        self.postings.extend(b.postings.iter().cloned());
        self.checkpoint = Some(b.checkpoint.clone());
    }

    /// Commits `b` to `store`, which must accept it, and mirrors it.
    pub(crate) fn commit(&mut self, store: &impl LogStore, b: &Batch) {
        if let Err(e) = store.commit(b) {
            panic!("commit on size {} failed: {e}", b.old_size);
        }
        self.apply(b);
    }

    /// The store holds exactly this: size, every entry (one by one and as a range), every tile
    /// and idempotency record, and nothing at the next index.
    pub(crate) fn check(&self, store: &impl LogStore) {
        let size = self.size();
        assert_eq!(store.tree_size().unwrap(), size, "tree size");
        for (i, e) in self.entries.iter().enumerate() {
            assert_eq!(
                store.entry(i as u64).unwrap().as_ref(),
                Some(e),
                "entry {i}"
            );
        }
        assert_eq!(store.entries(0, size).unwrap(), self.entries, "all entries");
        assert_eq!(store.entry(size).unwrap(), None, "entry at the tree size");
        for i in 0..size {
            let want = match (self.records.get(&i), self.erased.get(&i)) {
                (Some(r), _) => RecordState::Live(r.clone()),
                (None, Some(by)) => RecordState::Erased(*by),
                (None, None) => RecordState::Absent,
            };
            assert_eq!(store.record(i).unwrap(), want, "record {i}");
        }
        assert_eq!(store.record(size).unwrap(), RecordState::Absent);
        let live: Vec<_> = self.records.clone().into_iter().collect();
        assert_eq!(store.live_records(0, u64::MAX, usize::MAX).unwrap(), live);
        let erased: Vec<_> = self.erased.clone().into_iter().collect();
        assert_eq!(
            store.erased_records(0, u64::MAX, usize::MAX).unwrap(),
            erased
        );
        let holds: Vec<_> = self.holds.clone().into_iter().collect();
        assert_eq!(store.holds().unwrap(), holds, "holds");
        for ((level, index), bytes) in &self.tiles {
            let got = store.tile(*level, *index).unwrap();
            assert_eq!(got.as_ref(), Some(bytes), "tile {level}/{index}");
        }
        for (key, record) in &self.idempotency {
            assert_eq!(
                store.idempotency(key).unwrap(),
                Some(*record),
                "idempotency {key:?}"
            );
        }
        // Listed in key order, page by page.
        let mut want: Vec<_> = self.idempotency.iter().map(|(k, r)| (*k, *r)).collect();
        want.sort_unstable_by_key(|(k, _)| *k);
        let mut listed = Vec::new();
        loop {
            let page = store
                .idempotency_after(listed.last().map(|(k, _)| k), 2)
                .unwrap();
            assert!(page.len() <= 2, "a page longer than its limit");
            if page.is_empty() {
                break;
            }
            listed.extend(page);
        }
        assert_eq!(listed, want, "idempotency records listed");
        for ((run, bucket), row) in &self.leaf_runs {
            let got = store.leaf_run(*run, *bucket).unwrap();
            assert_eq!(got.as_ref(), Some(row), "leaf run {run}/{bucket}");
        }
        assert_eq!(
            store.leaf_run(u64::MAX, 3).unwrap(),
            None,
            "absent leaf run"
        );
        let all: Vec<_> = self.postings.clone().into_iter().collect();
        assert_eq!(
            store.postings(&[], &[0xFF; 64], false, usize::MAX).unwrap(),
            all,
            "all postings"
        );
        assert_eq!(store.checkpoint().unwrap(), self.checkpoint, "checkpoint");
    }
}

fn assert_corrupt<T: std::fmt::Debug>(r: StoreResult<T>, what: &str) {
    match r {
        Err(StoreError::Corrupt(_)) => {}
        other => panic!("{what}: expected a Corrupt error, got {other:?}"),
    }
}

// ---- the checks ----

pub(crate) fn empty_store<F: Factory>(f: &F) {
    let s = f.open();
    assert_eq!(s.tree_size().unwrap(), 0);
    assert_eq!(s.entry(0).unwrap(), None);
    assert_eq!(s.entry(u64::MAX).unwrap(), None);
    assert_eq!(s.tile(0, 0).unwrap(), None);
    assert_eq!(s.tile(u8::MAX, u64::MAX).unwrap(), None);
    assert_eq!(s.idempotency(&idem_key(0)).unwrap(), None);
    assert_eq!(s.entries(0, 0).unwrap(), Vec::<Vec<u8>>::new());
    assert_corrupt(s.entries(0, 1), "entries(0, 1) of an empty store");
    Expected::default().check(&s);
}

pub(crate) fn commit_and_read_back<F: Factory>(f: &F) {
    let s = f.open();
    let mut want = Expected::default();
    want.commit(&s, &batch(0, 10));
    want.check(&s);
    // A batch of tiles only (no entries) is legal and keeps the size.
    let tiles_only = Batch {
        old_size: 10,
        tiles: vec![tile(2, 0, 1)],
        ..Batch::default()
    };
    want.commit(&s, &tiles_only);
    want.check(&s);
    assert_eq!(s.tile(2, 0).unwrap(), Some(tile_bytes(2, 0, 1)));
}

pub(crate) fn leaf_runs_read_back<F: Factory>(f: &F) {
    let s = f.open();
    let mut want = Expected::default();
    want.commit(&s, &batch(0, 8));
    want.commit(&s, &batch(8, 3));
    // Rows of every key shape: run 0 and u64::MAX - 1, buckets 0 and 255, empty and 64 KiB rows.
    let rows = vec![
        (0, 0, vec![]),
        (u64::MAX - 1, 255, vec![9; 65536]),
        (3, 128, vec![5; 10]),
    ];
    want.commit(
        &s,
        &complete(Batch {
            old_size: 11,
            leaf_runs: rows,
            ..Batch::default()
        }),
    );
    assert_eq!(s.leaf_run(3, 128).unwrap(), Some(vec![5; 10]));
    assert_eq!(s.leaf_run(3, 127).unwrap(), None);
    want.check(&s);
}

pub(crate) fn entry_ranges<F: Factory>(f: &F) {
    let s = f.open();
    let mut want = Expected::default();
    for (old, n) in [(0, 100), (100, 150), (250, 50)] {
        want.commit(&s, &batch(old, n));
    }
    let leaves = |a: u64, b: u64| (a..b).map(leaf).collect::<Vec<_>>();
    for (a, b) in [(0, 300), (0, 1), (5, 6), (99, 101), (100, 250), (299, 300)] {
        assert_eq!(s.entries(a, b).unwrap(), leaves(a, b), "entries({a}, {b})");
    }
    for (a, b) in [(5, 5), (300, 300), (7, 3), (u64::MAX, u64::MAX)] {
        assert!(s.entries(a, b).unwrap().is_empty(), "entries({a}, {b})");
    }
    // Ranges reaching past the stored entries are an error, not a short answer.
    for (a, b) in [(290, 301), (0, 1000), (300, 301), (400, 410), (0, u64::MAX)] {
        assert_corrupt(s.entries(a, b), &format!("entries({a}, {b})"));
    }
    want.check(&s);
}

/// A missing entry below the tree size (corruption) makes any range over it an error.
pub(crate) fn gap_is_corruption<F: Factory>(f: &F) {
    let s = f.open();
    Expected::default().commit(&s, &batch(0, 20));
    let s = f.remove_entry(s, 7);
    assert_eq!(s.entry(7).unwrap(), None);
    for (a, b) in [(0, 20), (5, 10), (7, 8), (6, 8), (7, 20)] {
        match s.entries(a, b) {
            Err(StoreError::Corrupt(msg)) => assert!(msg.contains("entry 7 "), "{msg}"),
            other => panic!("entries({a}, {b}) over a gap: {other:?}"),
        }
    }
    let leaves = |a: u64, b: u64| (a..b).map(leaf).collect::<Vec<_>>();
    assert_eq!(s.entries(0, 7).unwrap(), leaves(0, 7));
    assert_eq!(s.entries(8, 20).unwrap(), leaves(8, 20));
}

pub(crate) fn tiles_replaced_by_wider<F: Factory>(f: &F) {
    let s = f.open();
    let mut want = Expected::default();
    let mut size = 0;
    for width in [1u16, 2, 3, 255, 256] {
        let b = complete(Batch {
            old_size: size,
            entries: (size..u64::from(width)).map(leaf).collect(),
            records: (size..u64::from(width)).map(|i| Some(record(i))).collect(),
            tiles: vec![tile(0, 0, width)],
            ..Batch::default()
        });
        want.commit(&s, &b);
        size = u64::from(width);
        assert_eq!(
            s.tile(0, 0).unwrap(),
            Some(tile_bytes(0, 0, width)),
            "width {width}"
        );
    }
    // Tiles with the same index on other levels, and far-away indices, are distinct keys.
    let b = Batch {
        old_size: size,
        tiles: vec![
            tile(1, 0, 1),
            tile(7, 0, 4),
            tile(0, 1 << 40, 9),
            tile(3, u64::MAX, 2),
            tile(u8::MAX, 5, 1),
        ],
        ..Batch::default()
    };
    want.commit(&s, &b);
    want.check(&s);
    assert_eq!(s.tile(0, 1).unwrap(), None);
    assert_eq!(s.tile(2, 0).unwrap(), None);
}

pub(crate) fn size_mismatch_writes_nothing<F: Factory>(f: &F) {
    let s = f.open();
    let mut want = Expected::default();
    want.commit(&s, &batch(0, 5));
    for old_size in [0, 3, 4, 6, 1000] {
        let mut b = batch(old_size, 4);
        // Also try to overwrite a committed tile and add a new one.
        b.tiles.push((
            TileId {
                level: 0,
                index: 0,
                width: 1,
            },
            vec![0xEE; 32],
        ));
        b.tiles.push(tile(5, 5, 5));
        b.idempotency.push((idem_key(999), idem_record(999)));
        match s.commit(&b) {
            Err(StoreError::SizeMismatch { expected, found }) => {
                assert_eq!((expected, found), (old_size, 5));
            }
            other => panic!("batch on size {old_size}: expected SizeMismatch, got {other:?}"),
        }
        want.check(&s);
        assert_eq!(s.tile(5, 5).unwrap(), None);
        assert_eq!(s.idempotency(&idem_key(999)).unwrap(), None);
        for i in 5..old_size + 4 {
            assert_eq!(s.entry(i).unwrap(), None, "entry {i} after a refused batch");
        }
    }
    // The store still takes the right batch.
    want.commit(&s, &batch(5, 3));
    want.check(&s);
}

pub(crate) fn injected_failure_writes_nothing<F: Factory>(f: &F) {
    let s = f.open();
    if !f.fail_next_commit(&s) {
        return; // no fault injection in this engine; its refusals are covered above
    }
    let mut want = Expected::default();
    match s.commit(&batch(0, 3)) {
        Err(StoreError::Io(_)) => {}
        other => panic!("expected the injected I/O error, got {other:?}"),
    }
    want.check(&s);
    assert_eq!(s.idempotency(&idem_key(0)).unwrap(), None);
    assert_eq!(s.tile(0, 0).unwrap(), None);
    want.commit(&s, &batch(0, 3));
    assert!(f.fail_next_commit(&s));
    assert!(matches!(s.commit(&batch(3, 2)), Err(StoreError::Io(_))));
    want.check(&s);
    want.commit(&s, &batch(3, 2));
    want.check(&s);
}

pub(crate) fn many_batches<F: Factory>(f: &F) {
    let s = f.open();
    let mut want = Expected::default();
    for k in 0..120u64 {
        want.commit(&s, &batch(want.size(), k % 37 + 1));
    }
    want.check(&s);
    assert!(want.size() > 256, "the batches cross a tile boundary");
}

pub(crate) fn reopen_keeps_everything<F: Factory>(f: &F) {
    if !F::DURABLE {
        return;
    }
    let mut want = Expected::default();
    {
        let s = f.open();
        for n in [1, 255, 300, 7] {
            want.commit(&s, &batch(want.size(), n));
        }
        // A refused batch before the drop must not reappear.
        assert!(s.commit(&batch(want.size() + 1, 10)).is_err());
    }
    {
        let s = f.open();
        want.check(&s);
        assert_eq!(s.entry(want.size()).unwrap(), None);
        want.commit(&s, &batch(want.size(), 40));
    }
    let s = f.open();
    want.check(&s);
}

pub(crate) fn large_values<F: Factory>(f: &F) {
    let big = |i: u64| vec![(i % 251) as u8; 65535];
    let mut want = Expected::default();
    {
        let s = f.open();
        for round in 0..3u64 {
            let old_size = want.size();
            let b = complete(Batch {
                old_size,
                entries: (old_size..old_size + 20).map(big).collect(),
                records: (old_size..old_size + 20).map(|i| Some(big(i))).collect(),
                tiles: (0..20).map(|k| tile(0, round * 20 + k, 256)).collect(),
                ..Batch::default()
            });
            want.commit(&s, &b);
        }
        want.check(&s);
    }
    if F::DURABLE {
        want.check(&f.open());
    }
}

/// One writer commits 10-entry batches while readers check that they never see part of a batch,
/// a size ahead of the data, or a size going backwards.
pub(crate) fn concurrent_readers<F: Factory>(f: &F) {
    const BATCH: u64 = 10;
    const BATCHES: u64 = 150;
    let s = f.open();
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let readers: Vec<_> = (0..3)
            .map(|_| scope.spawn(|| read_while_writing(&s, &done, BATCH)))
            .collect();
        let mut want = Expected::default();
        for _ in 0..BATCHES {
            want.commit(&s, &batch(want.size(), BATCH));
        }
        done.store(true, Ordering::SeqCst);
        for r in readers {
            assert!(r.join().expect("reader panicked") > 0);
        }
        want.check(&s);
    });
}

/// Returns the number of rounds read.
fn read_while_writing(s: &impl LogStore, done: &AtomicBool, batch: u64) -> u64 {
    let mut last_size = 0;
    let mut rounds = 0;
    loop {
        let finished = done.load(Ordering::SeqCst);
        let size = s.tree_size().unwrap();
        assert!(
            size >= last_size,
            "size went back from {last_size} to {size}"
        );
        assert_eq!(size % batch, 0, "size {size} inside a batch");
        last_size = size;
        if size > 0 {
            assert_eq!(s.entry(size - 1).unwrap(), Some(leaf(size - 1)));
            let from = size.saturating_sub(3 * batch);
            assert_eq!(s.entries(from, size).unwrap().len() as u64, size - from);
        }
        // The batch after `size` may be appearing right now: read it backwards (last entry, its
        // idempotency record, then the first entry). Seeing a later part without an earlier
        // part would be a torn batch.
        let last = size + batch - 1;
        if s.entry(last).unwrap().is_some() {
            assert!(
                s.idempotency(&idem_key(last)).unwrap().is_some(),
                "torn at {size}"
            );
            assert_eq!(s.entry(size).unwrap(), Some(leaf(size)), "torn at {size}");
            assert!(
                s.tree_size().unwrap() > size,
                "entries visible before the size"
            );
        }
        rounds += 1;
        if finished {
            return rounds;
        }
    }
}

/// A second handle on an open store is refused with a clear error, and the first still works.
pub(crate) fn second_open_is_refused<F: Factory>(f: &F) {
    if !F::DURABLE {
        return;
    }
    let s = f.open();
    let mut want = Expected::default();
    want.commit(&s, &batch(0, 3));
    match f.try_open() {
        Err(StoreError::Io(msg)) => assert!(msg.contains("already open"), "unclear error: {msg}"),
        Err(other) => panic!("second open: wrong error {other:?}"),
        Ok(_) => panic!("second open of an open store succeeded"),
    }
    want.commit(&s, &batch(3, 3));
    want.check(&s);
    if F::DURABLE {
        drop(s);
        want.check(&f.open());
    }
}

/// Posting range scans agree with a `BTreeMap` model: both directions, limits, bounds that fall
/// between keys, empty and inverted ranges, keys that are prefixes of other keys.
pub(crate) fn posting_ranges<F: Factory>(f: &F) {
    let s = f.open();
    let mut want = Expected::default();
    let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    let values: [&[u8]; 4] = [b"a", b"ab", b"b", b"\xFF\xFF"];
    for k in 0..40u64 {
        let mut b = batch(want.size(), k % 5 + 1);
        b.postings = values
            .iter()
            .filter(|v| !(k + v.len() as u64).is_multiple_of(3))
            .map(|v| {
                (
                    posting_key(v, b.new_size() - 1),
                    vec![k as u8; (k % 4) as usize],
                )
            })
            .collect();
        model.extend(b.postings.iter().cloned());
        want.commit(&s, &b);
    }
    let bounds: Vec<Vec<u8>> = vec![
        vec![],
        b"a".to_vec(),
        posting_key(b"a", 10),
        posting_key(b"ab", 0),
        posting_key(b"ab", 57),
        b"b".to_vec(),
        posting_key(b"b", u64::MAX),
        vec![0xFF; 20],
    ];
    for from in &bounds {
        for to in &bounds {
            for reverse in [false, true] {
                for limit in [0, 1, 3, 1000] {
                    let mut rows: Vec<_> = if from < to {
                        model
                            .range(from.clone()..to.clone())
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect()
                    } else {
                        Vec::new()
                    };
                    if reverse {
                        rows.reverse();
                    }
                    rows.truncate(limit);
                    let got = s.postings(from, to, reverse, limit).unwrap();
                    assert_eq!(
                        got, rows,
                        "{from:?}..{to:?} reverse {reverse} limit {limit}"
                    );
                }
            }
        }
    }
    want.check(&s);
    if F::DURABLE {
        drop(s);
        want.check(&f.open());
    }
}

/// Cursors read back, overwrite, are independent per name, survive reopening once a commit
/// followed them, and are untouched by a refused batch.
pub(crate) fn sink_cursors<F: Factory>(f: &F) {
    let s = f.open();
    assert_eq!(s.sink_cursor("a").unwrap(), None);
    s.set_sink_cursor("a", 5).unwrap();
    s.set_sink_cursor("a/b é", u64::MAX).unwrap();
    assert_eq!(s.sink_cursor("a").unwrap(), Some(5));
    s.set_sink_cursor("a", 7).unwrap();
    s.set_sink_cursor("", 1).unwrap();
    assert_eq!(s.sink_cursor("a").unwrap(), Some(7));
    assert_eq!(s.sink_cursor("a/b é").unwrap(), Some(u64::MAX));
    assert_eq!(s.sink_cursor("").unwrap(), Some(1));
    assert_eq!(s.sink_cursor("b").unwrap(), None);
    let all = vec![
        (String::new(), 1),
        ("a".to_owned(), 7),
        ("a/b é".to_owned(), u64::MAX),
    ];
    assert_eq!(s.sink_cursors().unwrap(), all);
    let mut want = Expected::default();
    want.commit(&s, &batch(0, 10));
    assert!(s.commit(&batch(3, 1)).is_err());
    assert_eq!(s.sink_cursor("a").unwrap(), Some(7));
    want.check(&s);
    if F::DURABLE {
        drop(s);
        let s = f.open();
        assert_eq!(s.sink_cursor("a").unwrap(), Some(7));
        assert_eq!(s.sink_cursor("a/b é").unwrap(), Some(u64::MAX));
        want.check(&s);
    }
}

/// One `#[test]` per check for an engine.
pub(crate) fn erasure_and_holds<F: Factory>(f: &F) {
    let s = f.open();
    let mut want = Expected::default();
    want.commit(&s, &batch(0, 20));
    // Ranges of live records honour bounds and limits.
    let got = s.live_records(3, 9, 4).unwrap();
    assert_eq!(
        got.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        vec![3, 4, 5, 6]
    );
    assert_eq!(got[0].1, record(3));
    assert!(s.live_records(9, 3, 10).unwrap().is_empty());
    // An erasure batch: its own entry at 20, records 2, 5 and 7 erased by it, a posting removed,
    // a hold placed; all in one commit.
    let mut erase = batch(20, 1);
    erase.erased = vec![(2, 20), (5, 20), (7, 20)];
    erase.postings_removed = vec![posting_key(b"even", 19)];
    erase.holds_placed = vec![(20, b"hold twenty".to_vec())];
    want.commit(&s, &erase);
    want.check(&s);
    assert_eq!(s.record(5).unwrap(), RecordState::Erased(20));
    assert_eq!(s.erased_records(0, 6, 10).unwrap(), vec![(2, 20), (5, 20)]);
    assert_eq!(s.erased_records(0, 100, 1).unwrap(), vec![(2, 20)]);
    // Erasing a record that is no longer live refuses the whole batch: nothing of it is written.
    let mut again = batch(21, 2);
    again.erased = vec![(9, 21), (5, 21)];
    again.holds_released = vec![20];
    assert_corrupt(s.commit(&again), "erasing an erased record");
    want.check(&s);
    // So does a batch whose records do not match its entries.
    let mut short = batch(21, 2);
    short.records.pop();
    assert_corrupt(s.commit(&short), "a record missing");
    want.check(&s);
    // An imported entry whose record was erased before the export: a tombstone, no record.
    let mut imported = batch(21, 2);
    imported.records[1] = None;
    imported.tombstones = vec![(22, 40)];
    want.commit(&s, &imported);
    want.check(&s);
    assert_eq!(s.record(22).unwrap(), RecordState::Erased(40));
    // Releasing a hold.
    let mut release = batch(23, 1);
    release.holds_released = vec![20];
    want.commit(&s, &release);
    want.check(&s);
    if F::DURABLE {
        drop(s);
        want.check(&f.open());
    }
}

macro_rules! conformance {
    ($engine:ident, $factory:expr) => {
        mod $engine {
            use super::*;
            conformance!(@tests $factory;
                empty_store, commit_and_read_back, leaf_runs_read_back, entry_ranges, gap_is_corruption, tiles_replaced_by_wider,
                size_mismatch_writes_nothing, injected_failure_writes_nothing, many_batches,
                reopen_keeps_everything, large_values, concurrent_readers, second_open_is_refused,
                posting_ranges, sink_cursors, erasure_and_holds);
        }
    };
    (@tests $factory:expr; $($check:ident),*) => {
        $(
            #[test]
            fn $check() {
                super::$check(&$factory);
            }
        )*
    };
}

conformance!(mem, MemFactory);
conformance!(
    redb,
    DiskFactory::new(
        RedbStore::open,
        crate::store::redb_store::tests::remove_entry
    )
);
conformance!(
    sled,
    DiskFactory::new(
        SledStore::open,
        crate::store::sled_store::tests::remove_entry
    )
);

// PostgreSQL runs every check but `second_open_is_refused`, which cannot apply: a database is
// shared by design (several server instances connect to it), and the compare-and-swap on the tree
// size inside each commit's transaction, not a lock, keeps writers apart. pg_store.rs tests that
// instead (`a_stale_second_handle_is_refused_and_writes_nothing`).
mod postgres {
    use super::*;
    conformance!(@tests PgFactory::new();
        empty_store, commit_and_read_back, leaf_runs_read_back, entry_ranges, gap_is_corruption,
        tiles_replaced_by_wider, size_mismatch_writes_nothing, injected_failure_writes_nothing,
        many_batches, reopen_keeps_everything, large_values, concurrent_readers, posting_ranges,
        sink_cursors, erasure_and_holds);
}
