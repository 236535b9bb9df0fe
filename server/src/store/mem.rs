//! An in-memory [`LogStore`] for tests, with fault injection.
//!
//! Not durable: it exists so the sequencer and the HTTP layer can be tested against failures
//! (a commit that fails before anything is written) without a disk. It honours every other part
//! of the storage contract and runs the same conformance suite as the real engines.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{
    Batch, CursorStore, EntryStore, IdempotencyRecord, IdempotencyStore, LeafIndex, LogStore,
    PostingStore, RecordState, RecordStore, StoreError, StoreResult, TileStore,
};

#[derive(Debug, Default)]
struct State {
    entries: BTreeMap<u64, Vec<u8>>,
    records: BTreeMap<u64, Vec<u8>>,
    erased: BTreeMap<u64, u64>,
    holds: BTreeMap<u64, Vec<u8>>,
    tiles: HashMap<(u8, u64), Vec<u8>>,
    idempotency: HashMap<[u8; 32], IdempotencyRecord>,
    leaf_runs: HashMap<(u64, u8), Vec<u8>>,
    postings: BTreeMap<Vec<u8>, Vec<u8>>,
    cursors: HashMap<String, u64>,
    checkpoint: Option<Vec<u8>>,
    size: u64,
}

/// In-memory store. `fail_commits(n)` makes the next `n` commits fail with an I/O error, writing
/// nothing, as a full disk would.
#[derive(Debug, Default)]
pub struct MemStore {
    state: Mutex<State>,
    failures: AtomicU64,
    commits: AtomicU64,
    /// What the next entry reads do first, and how many of them (see `delay_entry_reads`).
    read_delay: Mutex<Option<(u64, ReadDelay)>>,
    /// Whether commits wait, and how many are waiting (see `hold_commits`).
    hold: Mutex<(bool, u64)>,
    hold_changed: std::sync::Condvar,
}

/// What an entry read of a [`MemStore`] does before answering, to test the read path.
#[derive(Debug, Clone)]
pub enum ReadDelay {
    /// Waits this long (a read stalled somewhere).
    Sleep(std::time::Duration),
    /// Reads this whole file first (with its pages evicted from the page cache, a real read
    /// from the disk).
    ReadFile(std::path::PathBuf),
}

impl MemStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the next `n` commits fail without writing anything.
    pub fn fail_commits(&self, n: u64) {
        self.failures.store(n, Ordering::SeqCst);
    }

    /// With `true`, makes every commit wait before it does anything (as a slow `fsync` would)
    /// until called with `false`.
    pub fn hold_commits(&self, hold: bool) {
        let mut h = self
            .hold
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        h.0 = hold;
        self.hold_changed.notify_all();
    }

    /// Blocks until `n` commits are waiting in [`MemStore::hold_commits`].
    pub fn wait_for_held_commits(&self, n: u64) {
        let mut h = self
            .hold
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while h.1 < n {
            h = self
                .hold_changed
                .wait(h)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }

    /// Waits while commits are held.
    fn pass_hold(&self) {
        let mut h = self
            .hold
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !h.0 {
            return;
        }
        h.1 += 1;
        self.hold_changed.notify_all();
        while h.0 {
            h = self
                .hold_changed
                .wait(h)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        h.1 -= 1;
    }

    /// Makes the next `n` entry reads do `delay` first, as a read that misses every cache and
    /// waits for the disk would.
    pub fn delay_entry_reads(&self, n: u64, delay: ReadDelay) {
        if let Ok(mut d) = self.read_delay.lock() {
            *d = Some((n, delay));
        }
    }

    /// Overwrites a stored entry behind the log's back (fault injection for `fsck` tests).
    pub fn corrupt_entry(&self, index: u64, bytes: Vec<u8>) {
        if let Ok(mut s) = self.state.lock() {
            s.entries.insert(index, bytes);
        }
    }

    /// Overwrites a stored hash tile behind the log's back (fault injection for `fsck` tests).
    pub fn corrupt_tile(&self, level: u8, index: u64, bytes: Vec<u8>) {
        if let Ok(mut s) = self.state.lock() {
            s.tiles.insert((level, index), bytes);
        }
    }

    /// Overwrites a leaf-index row behind the log's back (fault injection for `fsck` tests).
    pub fn corrupt_leaf_run(&self, run: u64, bucket: u8, row: Vec<u8>) {
        if let Ok(mut s) = self.state.lock() {
            s.leaf_runs.insert((run, bucket), row);
        }
    }

    /// Overwrites (or with `None` deletes) a posting row behind the log's back (fault injection
    /// for `fsck` tests).
    pub fn corrupt_posting(&self, key: Vec<u8>, row: Option<Vec<u8>>) {
        if let Ok(mut s) = self.state.lock() {
            match row {
                Some(row) => s.postings.insert(key, row),
                None => s.postings.remove(&key),
            };
        }
    }

    /// Sets what the store holds for entry `index`'s record behind the log's back (fault
    /// injection for `fsck` tests): a live record, a tombstone, or nothing.
    pub fn corrupt_record(&self, index: u64, state: RecordState) {
        if let Ok(mut s) = self.state.lock() {
            s.records.remove(&index);
            s.erased.remove(&index);
            match state {
                RecordState::Live(r) => {
                    s.records.insert(index, r);
                }
                RecordState::Erased(by) => {
                    s.erased.insert(index, by);
                }
                RecordState::Absent => {}
            }
        }
    }

    /// Replaces the stored checkpoint behind the log's back (fault injection for `fsck` tests).
    pub fn corrupt_checkpoint(&self, note: Option<Vec<u8>>) {
        if let Ok(mut s) = self.state.lock() {
            s.checkpoint = note;
        }
    }

    /// Number of successful commits so far.
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::SeqCst)
    }

    /// Deletes entry `index` behind the contract's back, as disk corruption would (tests only).
    #[cfg(test)]
    pub(crate) fn remove_entry(&self, index: u64) {
        if let Ok(mut state) = self.state.lock() {
            state.entries.remove(&index);
        }
    }

    fn lock(&self) -> StoreResult<std::sync::MutexGuard<'_, State>> {
        self.state
            .lock()
            .map_err(|_| StoreError::Io("memory store lock poisoned".into()))
    }
}

impl EntryStore for MemStore {
    fn entry(&self, index: u64) -> StoreResult<Option<Vec<u8>>> {
        let delay = self
            .read_delay
            .lock()
            .ok()
            .and_then(|mut d| match d.as_mut() {
                Some((n, how)) if *n > 0 => {
                    *n -= 1;
                    Some(how.clone())
                }
                _ => None,
            });
        match delay {
            Some(ReadDelay::Sleep(d)) => std::thread::sleep(d),
            Some(ReadDelay::ReadFile(path)) => {
                std::fs::read(&path).map_err(|e| StoreError::Io(format!("{path:?}: {e}")))?;
            }
            None => {}
        }
        Ok(self.lock()?.entries.get(&index).cloned())
    }

    fn entries(&self, start: u64, end: u64) -> StoreResult<Vec<Vec<u8>>> {
        let state = self.lock()?;
        (start..end)
            .map(|i| {
                state
                    .entries
                    .get(&i)
                    .cloned()
                    .ok_or_else(|| StoreError::Corrupt(format!("entry {i} missing")))
            })
            .collect()
    }
}

impl RecordStore for MemStore {
    fn record(&self, index: u64) -> StoreResult<RecordState> {
        let state = self.lock()?;
        Ok(
            match (state.records.get(&index), state.erased.get(&index)) {
                (Some(r), _) => RecordState::Live(r.clone()),
                (None, Some(by)) => RecordState::Erased(*by),
                (None, None) => RecordState::Absent,
            },
        )
    }

    fn live_records(&self, start: u64, end: u64, limit: usize) -> StoreResult<Vec<(u64, Vec<u8>)>> {
        if start >= end {
            return Ok(Vec::new());
        }
        let state = self.lock()?;
        Ok(state
            .records
            .range(start..end)
            .take(limit)
            .map(|(i, r)| (*i, r.clone()))
            .collect())
    }

    fn erased_records(&self, start: u64, end: u64, limit: usize) -> StoreResult<Vec<(u64, u64)>> {
        if start >= end {
            return Ok(Vec::new());
        }
        let state = self.lock()?;
        Ok(state
            .erased
            .range(start..end)
            .take(limit)
            .map(|(i, by)| (*i, *by))
            .collect())
    }

    fn holds(&self) -> StoreResult<Vec<(u64, Vec<u8>)>> {
        let state = self.lock()?;
        Ok(state.holds.iter().map(|(i, h)| (*i, h.clone())).collect())
    }
}

impl TileStore for MemStore {
    fn tile(&self, level: u8, index: u64) -> StoreResult<Option<Vec<u8>>> {
        Ok(self.lock()?.tiles.get(&(level, index)).cloned())
    }
}

impl IdempotencyStore for MemStore {
    fn idempotency(&self, key: &[u8; 32]) -> StoreResult<Option<IdempotencyRecord>> {
        Ok(self.lock()?.idempotency.get(key).copied())
    }

    fn idempotency_after(
        &self,
        after: Option<&[u8; 32]>,
        limit: usize,
    ) -> StoreResult<Vec<([u8; 32], IdempotencyRecord)>> {
        let state = self.lock()?;
        let mut rows: Vec<_> = state
            .idempotency
            .iter()
            .filter(|(k, _)| after.is_none_or(|a| *k > a))
            .map(|(k, r)| (*k, *r))
            .collect();
        rows.sort_unstable_by_key(|(k, _)| *k);
        rows.truncate(limit);
        Ok(rows)
    }
}

impl LeafIndex for MemStore {
    fn leaf_run(&self, run: u64, bucket: u8) -> StoreResult<Option<Vec<u8>>> {
        Ok(self.lock()?.leaf_runs.get(&(run, bucket)).cloned())
    }
}

impl PostingStore for MemStore {
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
        let state = self.lock()?;
        let range = state.postings.range::<[u8], _>((
            std::ops::Bound::Included(from),
            std::ops::Bound::Excluded(to),
        ));
        let clone = |(k, v): (&Vec<u8>, &Vec<u8>)| (k.clone(), v.clone());
        Ok(if reverse {
            range.rev().take(limit).map(clone).collect()
        } else {
            range.take(limit).map(clone).collect()
        })
    }
}

impl CursorStore for MemStore {
    fn sink_cursor(&self, name: &str) -> StoreResult<Option<u64>> {
        Ok(self.lock()?.cursors.get(name).copied())
    }

    fn set_sink_cursor(&self, name: &str, next: u64) -> StoreResult<()> {
        self.lock()?.cursors.insert(name.to_owned(), next);
        Ok(())
    }

    fn sink_cursors(&self) -> StoreResult<Vec<(String, u64)>> {
        let mut all: Vec<_> = self
            .lock()?
            .cursors
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        all.sort();
        Ok(all)
    }
}

impl LogStore for MemStore {
    fn tree_size(&self) -> StoreResult<u64> {
        Ok(self.lock()?.size)
    }

    fn checkpoint(&self) -> StoreResult<Option<Vec<u8>>> {
        Ok(self.lock()?.checkpoint.clone())
    }

    fn commit(&self, batch: &Batch) -> StoreResult<()> {
        self.pass_hold();
        super::check_batch_shape(batch)?;
        let mut state = self.lock()?;
        if state.size != batch.old_size {
            return Err(StoreError::SizeMismatch {
                expected: batch.old_size,
                found: state.size,
            });
        }
        if self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(StoreError::Io("injected commit failure".into()));
        }
        // Checked before anything changes: a refused batch writes nothing.
        if let Some((index, _)) = batch
            .erased
            .iter()
            .find(|(i, _)| !state.records.contains_key(i))
        {
            return Err(super::not_live(*index));
        }
        for (i, e) in batch.entries.iter().enumerate() {
            state.entries.insert(batch.old_size + i as u64, e.clone());
        }
        for (index, r) in (batch.old_size..).zip(&batch.records) {
            if let Some(r) = r {
                state.records.insert(index, r.clone());
            }
        }
        for &(index, by) in &batch.tombstones {
            state.erased.insert(index, by);
        }
        for &(index, by) in &batch.erased {
            state.records.remove(&index);
            state.erased.insert(index, by);
        }
        for (id, h) in &batch.holds_placed {
            state.holds.insert(*id, h.clone());
        }
        for id in &batch.holds_released {
            state.holds.remove(id);
        }
        for key in &batch.postings_removed {
            state.postings.remove(key);
        }
        for (id, bytes) in &batch.tiles {
            state.tiles.insert((id.level, id.index), bytes.clone());
        }
        for (k, r) in &batch.idempotency {
            state.idempotency.insert(*k, *r);
        }
        for (run, bucket, row) in &batch.leaf_runs {
            state.leaf_runs.insert((*run, *bucket), row.clone());
        }
        for (key, row) in &batch.postings {
            state.postings.insert(key.clone(), row.clone());
        }
        state.checkpoint = Some(batch.checkpoint.clone());
        state.size = batch.new_size();
        self.commits.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn engine(&self) -> &'static str {
        "memory"
    }

    fn copy_into(&self, _dir: &std::path::Path) -> StoreResult<u64> {
        Err(StoreError::Io(
            "the memory store has no files to compact".into(),
        ))
    }
}
