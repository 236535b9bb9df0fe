//! Several instances on one shared store (PostgreSQL): the writer follows the others.
//!
//! Each instance gathers batches at provisional indices after its own view of the tree. Its
//! writer opens the commit transaction with [`LogStore::begin_commit`], which takes the tree
//! lock every instance's commit takes, and learns the stored size. If another instance
//! advanced the tree, the writer **catches up** (rebuilds its right edge and leaf-index tail
//! from the stored tiles and checks them against the stored, signed checkpoint), then
//! **rebases** its batch, and every provisional index gathered after it, onto the stored size.
//! Sequencing times never go backwards across instances either: entries stamped before the last
//! stored entry's time are **re-timed** to it (their envelopes re-encoded and re-hashed; a
//! record's commitment does not cover the time). Only then is the tree extended, the checkpoint
//! signed and the batch committed, all under the lock: two instances can never extend the same
//! tree, and every checkpoint any instance signs extends every earlier one.
//!
//! Readers on an instance that is not writing see the others' checkpoints through
//! [`spawn_follower`], which polls the stored checkpoint and publishes newer ones.

use std::sync::Arc;
use std::time::Duration;

use sealtrail_spec::edge::TiledEdge;
use sealtrail_spec::envelope::LeafEnvelope;
use sealtrail_spec::note::Ed25519Verifier;

use super::published::{checked_published, last_time, leaf_hashes, publish, unfinished_run};
use super::*;
use crate::store::{CATCH_UP_ROWS, CatchUp, Locked, StoreTiles};

/// Moves a provisional index by `delta`.
fn moved(index: u64, delta: i128) -> u64 {
    u64::try_from(i128::from(index) + delta).unwrap_or(u64::MAX)
}

impl Open {
    /// Moves every index this batch gave out by `delta` (it lands elsewhere in the tree).
    fn shift(&mut self, delta: i128) {
        let mv = |i: u64| moved(i, delta);
        self.old_size = mv(self.old_size);
        for a in &mut self.accepted {
            a.first_index = mv(a.first_index);
        }
        for k in self.seen.values_mut() {
            k.first_index = mv(k.first_index);
        }
        for (_, rec) in &mut self.idempotency {
            rec.index = mv(rec.index);
        }
        for d in &mut self.duplicates {
            // Stored duplicates point at committed entries, which stay where they are.
            if let Duplicate::InFlight { first_index, .. } = d {
                *first_index = mv(*first_index);
            }
        }
        // `(record erased, erasure entry)`: only the erasure entry is this batch's.
        for (_, by) in &mut self.erased {
            *by = mv(*by);
        }
        if let Some(work) = &mut self.admin {
            match &mut work.outcome {
                AdminOutcome::Erased { entry, .. } => *entry = entry.map(mv),
                AdminOutcome::HoldPlaced(hold) => hold.id = mv(hold.id),
                AdminOutcome::HoldReleased { entry } => *entry = mv(*entry),
            }
            if let Some(hold) = &mut work.hold_placed {
                hold.id = mv(hold.id);
            }
        }
    }
}

impl Writer {
    /// Under the commit lock, with the store at `found`: catches up with what other instances
    /// committed, rebases `open` (and everything gathered after it) onto `found`, and re-times
    /// its entries that would go before the last stored one. Errors are store reads (retried
    /// with the next batch) or a store that contradicts the log (fatal).
    pub(super) fn follow(&mut self, locked: Locked, open: &mut Open) -> Result<(), CommitError> {
        let found = locked.size;
        if found != self.edge.size() {
            self.catch_up(found, locked.catch_up)?;
        }
        if open.old_size != found {
            if open.import.is_some() {
                return Err(store_error(
                    open.entries.len(),
                    StoreError::SizeMismatch {
                        expected: open.old_size,
                        found,
                    },
                ));
            }
            let delta = i128::from(found) - i128::from(open.old_size);
            self.metrics.rebased_batches.inc();
            let mut g = self.shared.lock();
            open.shift(delta);
            g.next_size = moved(g.next_size, delta);
            for k in g.in_flight.values_mut() {
                k.first_index = moved(k.first_index, delta);
            }
            if let Some(o) = &mut g.open {
                o.shift(delta);
            }
        }
        self.retime(open)
    }

    /// Rebuilds the right edge, the leaf-index tail and the time floor at `found`, from the
    /// stored tiles and entries, and checks them against the stored checkpoint (signed with this
    /// log's key: all instances share it). Publishes that checkpoint.
    fn catch_up(&mut self, found: u64, read_ahead: Option<CatchUp>) -> Result<(), CommitError> {
        let store = self.store.clone();
        let read = |e: StoreError| store_error(0, e);
        if found < self.edge.size() {
            return Err(self.fail(store_error(
                0,
                StoreError::Corrupt(format!(
                    "the stored tree shrank from {} to {found} entries",
                    self.edge.size()
                )),
            )));
        }
        // What the lock's round trip brought, or the same read now.
        let (added, note, last_leaf) = match read_ahead {
            Some(c) => (
                Some(added_hashes(self.edge.size(), found, &c.tiles).map_err(read)?),
                c.checkpoint,
                Some(c.last_leaf),
            ),
            None => (
                None,
                store.checkpoint().map_err(read)?.unwrap_or_default(),
                None,
            ),
        };
        let (edge, run_hashes) = self.edge_at(found, added).map_err(read)?;
        let verifier = self.signer.verifier();
        let published = match checked_published(&note, &self.origin, &verifier) {
            Some(p) if p.size == found && p.root == edge.root() => p,
            _ => {
                return Err(self.fail(store_error(
                    0,
                    StoreError::Corrupt(format!(
                        "the stored checkpoint does not sign the stored tree of {found} entries \
                         (root {}), or not with this log's key",
                        edge.root().to_base64()
                    )),
                )));
            }
        };
        let last_time_ms = match (found.checked_sub(1), last_leaf) {
            (None, _) => 0,
            (Some(last), Some(leaf)) => LeafEnvelope::decode(&leaf)
                .map(|e| e.time_ms)
                .map_err(|e| read(StoreError::Corrupt(format!("entry {last}: {e}"))))?,
            (Some(last), None) => last_time(store.as_ref(), last).map_err(read)?,
        };
        tracing::debug!(
            from = self.edge.size(),
            to = found,
            "writer: caught up with another instance"
        );
        self.edge = edge;
        self.run_hashes.clear();
        self.run_hashes.extend_from_slice(&run_hashes);
        self.last_time_ms = last_time_ms;
        publish(&self.published, &self.metrics, published);
        let mut g = self.shared.lock();
        g.last_time_ms = g.last_time_ms.max(last_time_ms);
        Ok(())
    }

    /// The right edge and the unfinished leaf-index run at `found`: extended from this
    /// instance's by the leaf hashes the others added (a few tile reads), or rebuilt from the
    /// stored tiles after a long absence.
    fn edge_at(
        &self,
        found: u64,
        added: Option<Vec<Hash>>,
    ) -> Result<(TiledEdge, Vec<Hash>), StoreError> {
        let store = self.store.as_ref();
        let old = self.edge.size();
        let added = match added {
            Some(added) => added,
            None if found - old > CATCH_UP_ROWS => {
                let edge = TiledEdge::from_tiles(found, StoreTiles(store))
                    .map_err(|e| StoreError::Io(format!("rebuilding the right edge: {e}")))?;
                return Ok((edge, unfinished_run(store, found)?));
            }
            None => leaf_hashes(store, old, found)?,
        };
        let ext = self
            .edge
            .extend(&added)
            .map_err(|e| StoreError::Corrupt(format!("extending the right edge: {e}")))?;
        // `run_hashes` starts at the last run boundary at or below `old`; keep from the one at
        // or below `found`.
        let run = crate::leafindex::RUN;
        let drop = usize::try_from(found / run * run - old / run * run).unwrap_or(usize::MAX);
        let run_hashes = self
            .run_hashes
            .iter()
            .chain(&added)
            .skip(drop)
            .copied()
            .collect();
        Ok((ext.edge, run_hashes))
    }

    /// Re-times the entries of `open` stamped before the last stored entry's time to that time:
    /// their envelopes are re-encoded and re-hashed, and every answer that carries their time or
    /// hashes follows.
    fn retime(&mut self, open: &mut Open) -> Result<(), CommitError> {
        let floor = self.last_time_ms;
        let n = open.entries.len();
        let mut changed = 0;
        for (entry, hash) in open.entries.iter_mut().zip(&mut open.leaf_hashes) {
            let mut env = LeafEnvelope::decode(entry)
                .map_err(|e| store_error(n, StoreError::Corrupt(format!("own entry: {e}"))))?;
            if env.time_ms >= floor {
                // Times never go backwards within a batch: the rest are late enough.
                break;
            }
            env.time_ms = floor;
            *entry = env
                .encode()
                .map_err(|e| store_error(n, StoreError::Corrupt(format!("own entry: {e}"))))?;
            *hash = sealtrail_spec::leaf_hash(entry);
            changed += 1;
        }
        if changed == 0 {
            return Ok(());
        }
        self.metrics.retimed_entries.inc_by(changed as u64);
        let (start, end) = (open.old_size, open.new_size());
        for a in &mut open.accepted {
            a.time_ms = a.time_ms.max(floor);
        }
        if let Some(work) = &mut open.admin {
            if let AdminOutcome::HoldPlaced(hold) = &mut work.outcome {
                hold.placed_at_ms = hold.placed_at_ms.max(floor);
            }
            if let Some(hold) = &mut work.hold_placed {
                hold.placed_at_ms = hold.placed_at_ms.max(floor);
            }
        }
        let hashes_at = |first: u64, count: usize| -> Vec<Hash> {
            let from = usize::try_from(first - start).unwrap_or(usize::MAX);
            open.leaf_hashes
                .get(from..from.saturating_add(count))
                .map(<[Hash]>::to_vec)
                .unwrap_or_default()
        };
        let mut g = self.shared.lock();
        g.last_time_ms = g.last_time_ms.max(floor);
        // Repeats of this batch's requests, answered from the in-flight table or after it.
        for k in g.in_flight.values_mut() {
            if (start..end).contains(&k.first_index) {
                k.time_ms = k.time_ms.max(floor);
                k.leaf_hashes = hashes_at(k.first_index, k.leaf_hashes.len());
            }
        }
        if let Some(o) = &mut g.open {
            for d in &mut o.duplicates {
                if let Duplicate::InFlight {
                    first_index,
                    hashes,
                    time_ms,
                    ..
                } = d
                    && (start..end).contains(first_index)
                {
                    *time_ms = (*time_ms).max(floor);
                    *hashes = hashes_at(*first_index, hashes.len());
                }
            }
        }
        Ok(())
    }
}

/// The leaf hashes of entries `old..found` from the level-0 tiles starting with the one that
/// holds entry `old` (as [`CatchUp::tiles`] has them).
fn added_hashes(old: u64, found: u64, tiles: &[Vec<u8>]) -> Result<Vec<Hash>, StoreError> {
    let skip = usize::try_from(old % 256).unwrap_or(usize::MAX);
    let want = usize::try_from(found - old).unwrap_or(usize::MAX);
    let hashes: Vec<Hash> = tiles
        .iter()
        .flat_map(|t| t.chunks_exact(32))
        .skip(skip)
        .take(want)
        .map(|h| Hash(h.try_into().unwrap_or([0; 32])))
        .collect();
    if hashes.len() != want {
        return Err(StoreError::Corrupt(format!(
            "the level-0 tiles hold {} of the {want} leaf hashes after entry {old}",
            hashes.len()
        )));
    }
    Ok(hashes)
}

fn store_error(entries: usize, e: StoreError) -> CommitError {
    CommitError::Store {
        entries,
        error: Arc::new(e),
    }
}

/// Polls a shared store's checkpoint every `every` and publishes it when another instance has
/// committed past what this one published, so that reads, witnessing and forwarding here follow
/// the whole log. Checkpoints not signed by this log's key are ignored (and logged). Stops when
/// every receiver is gone or `stop` is set.
pub(super) fn spawn_follower(
    store: Arc<dyn LogStore>,
    tx: watch::Sender<Arc<Published>>,
    metrics: Arc<Metrics>,
    origin: String,
    verifier: Ed25519Verifier,
    every: Duration,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("follower".into())
        .spawn(move || {
            let mut warned = false;
            while !stop.load(Ordering::Acquire) && !tx.is_closed() {
                match store.checkpoint() {
                    Ok(Some(note)) => match checked_published(&note, &origin, &verifier) {
                        Some(p) => {
                            warned = false;
                            publish(&tx, &metrics, p);
                        }
                        None if !warned => {
                            warned = true;
                            tracing::error!(
                                "the stored checkpoint is not signed by this log's key: \
                                 every instance must share one key"
                            );
                        }
                        None => {}
                    },
                    Ok(None) => {}
                    Err(e) => tracing::debug!(error = %e, "follower: reading the checkpoint"),
                }
                std::thread::park_timeout(every);
            }
        })
}
