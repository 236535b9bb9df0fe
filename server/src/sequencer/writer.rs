//! The writer thread: takes the open batch whenever it is free, extends the tree, signs the
//! checkpoint, commits everything in one durable transaction, then publishes.

use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::{Instant, SystemTime};

use sealtrail_spec::Hash;
use sealtrail_spec::tiles::encode_hash_tile;

use super::published::sign;
use super::*;
use crate::store::{Batch, Locked};

impl Writer {
    pub(super) fn run(mut self) {
        loop {
            // On a shared store the tree lock is taken before the batch: requests that arrive
            // while another instance holds it join this batch, and one commit carries them all.
            let locked = if self.store.shared() {
                if !self.wait_for_open() {
                    break;
                }
                Some(self.store.begin_commit(self.edge.size()))
            } else {
                None
            };
            let Some(mut open) = self.take() else {
                if locked.is_some() {
                    self.store.abort_commit();
                }
                break;
            };
            let result = self.write(&mut open, locked);
            if let Some(tx) = self.notify.upgrade() {
                let _ = tx.send(Msg::Done(Box::new(Done { result, open })));
            }
        }
    }

    /// Waits until a batch is open (true) or the sequencer stops with none (false).
    fn wait_for_open(&self) -> bool {
        let mut g = self.shared.lock();
        loop {
            if g.open.is_some() {
                return true;
            }
            if g.closing {
                return false;
            }
            g = self.idle(g);
        }
    }

    /// Waits, marked idle, for the sequencer to signal a batch (or the stop).
    fn idle<'a>(&'a self, mut g: MutexGuard<'a, Gather>) -> MutexGuard<'a, Gather> {
        g.writer_idle = true;
        let mut g = self
            .shared
            .ready
            .wait(g)
            .unwrap_or_else(PoisonError::into_inner);
        g.writer_idle = false;
        g
    }

    /// Waits for an open batch and takes it; `None` when the sequencer has stopped. A batch
    /// that would overfill the disk is answered here and not taken: its indices are reused.
    fn take(&self) -> Option<Open> {
        let mut g = self.shared.lock();
        loop {
            if let Some(open) = g.open.take() {
                if let Some(why) = self.disk_full(open.payload_bytes, open.entries.len() as u64) {
                    self.metrics.errors.with_label_values(&["disk_full"]).inc();
                    drop(g);
                    if let Some(tx) = self.notify.upgrade() {
                        let _ = tx.send(Msg::Done(Box::new(Done {
                            result: Err(SequenceError::DiskFull(why)),
                            open,
                        })));
                    }
                    g = self.shared.lock();
                    continue;
                }
                g.next_size = open.new_size();
                for a in &open.accepted {
                    if let Some(idem) = a.sub.idempotency {
                        let start = usize::try_from(a.first_index - open.old_size).unwrap_or(0);
                        let hashes = open
                            .leaf_hashes
                            .get(start..start + a.count)
                            .map(<[Hash]>::to_vec)
                            .unwrap_or_default();
                        g.in_flight.insert(
                            idem.key,
                            InFlightKey {
                                request_hash: idem.request_hash,
                                first_index: a.first_index,
                                leaf_hashes: hashes,
                                time_ms: a.time_ms,
                            },
                        );
                    }
                }
                if std::mem::take(&mut g.wake_on_take)
                    && let Some(tx) = self.notify.upgrade()
                {
                    let _ = tx.send(Msg::Taken);
                }
                return Some(open);
            }
            if g.closing {
                return None;
            }
            g = self.idle(g);
        }
    }

    /// Extends the tree by `open`, signs, commits durably, then publishes. On error nothing is
    /// published and the log refuses further writes.
    /// `locked`: what [`LogStore::begin_commit`] answered before the batch was taken (shared
    /// stores), or `None` to begin here.
    fn write(
        &mut self,
        open: &mut Open,
        locked: Option<Result<Option<Locked>, StoreError>>,
    ) -> Result<Arc<Published>, SequenceError> {
        let nothing_to_write = self.failed.load(Ordering::Acquire) || open.entries.is_empty();
        if nothing_to_write && matches!(locked, Some(Ok(Some(_)))) {
            self.store.abort_commit();
        }
        if self.failed.load(Ordering::Acquire) {
            return Err(SequenceError::Unavailable(Unavailable::EarlierFailure));
        }
        if open.entries.is_empty() {
            return Ok(self.published.borrow().clone());
        }
        let started = Instant::now();
        let keys: Vec<[u8; 32]> = open.idempotency.iter().map(|(k, _)| *k).collect();
        let result = self.commit(open, locked);
        if !keys.is_empty() {
            // Durable (or never to be): the store answers for these keys from now on.
            let mut g = self.shared.lock();
            for key in &keys {
                g.in_flight.remove(key);
            }
        }
        let published = result.map_err(|e| SequenceError::Unavailable(e.into()))?;
        self.metrics
            .commit_seconds
            .observe(started.elapsed().as_secs_f64());
        Ok(published)
    }

    /// Moves the batch's entries into the store; `open` keeps what the answers need.
    fn commit(
        &mut self,
        open: &mut Open,
        locked: Option<Result<Option<Locked>, StoreError>>,
    ) -> Result<Arc<Published>, CommitError> {
        // A shared store: take the tree lock every instance's commit takes (unless taken
        // already), and land the batch after whatever the others committed (see `follow`).
        let locked = match locked {
            Some(l) => l,
            None => self.store.begin_commit(self.edge.size()),
        };
        match locked {
            Ok(None) => {}
            Ok(Some(locked)) => {
                if let Err(e) = self.follow(locked, open) {
                    self.store.abort_commit();
                    return Err(e);
                }
            }
            Err(e) => return Err(self.store_failed(open.entries.len(), e)),
        }
        let result = self.extend_and_commit(open);
        if result.is_err() {
            // Nothing of a refused batch may stay open under the lock.
            self.store.abort_commit();
        }
        result
    }

    /// Extends the tree by `open`, signs, commits, publishes.
    fn extend_and_commit(&mut self, open: &mut Open) -> Result<Arc<Published>, CommitError> {
        let ext = match self.edge.extend(&open.leaf_hashes) {
            Ok(ext) => ext,
            Err(e) => return Err(self.fail(CommitError::Extend(e))),
        };
        let mut postings = crate::query::PostingsBuilder::default();
        for (index, f) in (open.old_size..).zip(open.fields.drain(..)) {
            postings.add(index, f.principal, f.event_type);
        }
        let mut postings = postings.finish();
        postings.append(&mut open.posting_changes.rewritten);
        let (holds_placed, holds_released) = match &open.admin {
            Some(work) => (
                work.hold_placed
                    .iter()
                    .map(|h| (h.id, h.encode()))
                    .collect(),
                work.hold_released.into_iter().collect(),
            ),
            None => Default::default(),
        };
        let mut batch = Batch {
            old_size: open.old_size,
            entries: std::mem::take(&mut open.entries),
            records: std::mem::take(&mut open.records),
            tombstones: std::mem::take(&mut open.tombstones),
            erased: std::mem::take(&mut open.erased),
            postings_removed: std::mem::take(&mut open.posting_changes.removed),
            holds_placed,
            holds_released,
            tiles: ext
                .tiles
                .iter()
                .map(|(id, hashes)| (*id, encode_hash_tile(hashes)))
                .collect(),
            idempotency: std::mem::take(&mut open.idempotency),
            leaf_runs: Vec::new(),
            postings,
            checkpoint: match sign(&self.signer, &self.origin, ext.new_size, ext.root) {
                Ok(c) => c,
                Err(e) => return Err(self.fail(CommitError::Sign(e))),
            },
        };
        // Leaf-index rows for every run this batch completes: the first from the unfinished
        // run and the batch's head, any further ones from the batch alone.
        let run = crate::leafindex::RUN as usize;
        let pending = self.run_hashes.len();
        let completes = pending + open.leaf_hashes.len() >= run;
        if completes {
            let first_run = (open.old_size - pending as u64) / crate::leafindex::RUN;
            let (head, tail) = open.leaf_hashes.split_at(run - pending);
            // Completed in place (its capacity is RUN); the unfinished run is set after the commit.
            self.run_hashes.extend_from_slice(head);
            let runs = std::iter::once(self.run_hashes.as_slice()).chain(tail.chunks_exact(run));
            for (k, chunk) in (first_run..).zip(runs) {
                for (bucket, row) in crate::leafindex::build_run(chunk) {
                    batch.leaf_runs.push((k, bucket, row));
                }
            }
            self.run_hashes.truncate(pending);
        }
        let n = batch.entries.len();
        let last_time_ms = match batch.entries.last() {
            Some(leaf) => sealtrail_spec::envelope::LeafEnvelope::decode(leaf)
                .map(|e| e.time_ms)
                .unwrap_or(self.last_time_ms),
            None => self.last_time_ms,
        };
        if let Err(e) = self.store.commit(&batch) {
            return Err(self.store_failed(n, e));
        }
        self.last_time_ms = last_time_ms;
        self.metrics.batch_entries.observe(n as f64);
        self.metrics.entries_appended.inc_by(n as u64);
        // Durable: adopt the new edge and publish.
        self.edge = ext.edge;
        // The unfinished run keeps its buffer (RUN hashes): regrowing it every run cost fresh,
        // zeroed pages on the writer's critical path.
        if completes {
            let done = (pending + open.leaf_hashes.len()) / run * run - pending;
            self.run_hashes.clear();
            self.run_hashes.extend_from_slice(&open.leaf_hashes[done..]);
        } else {
            self.run_hashes.extend_from_slice(&open.leaf_hashes);
        }
        Ok(super::published::publish(
            &self.published,
            &self.metrics,
            Published {
                size: ext.new_size,
                root: ext.root,
                checkpoint: Arc::new(batch.checkpoint),
                signed_at: SystemTime::now(),
            },
        ))
    }

    /// Why a batch of `entries` entries and `bytes` payload bytes must not be written because
    /// the data directory's filesystem would keep less than the configured free space; `None`
    /// to go ahead. The store is never asked to write into a full disk (redb refuses every later
    /// operation, reads too, after a failed write), and writes resume by themselves once space
    /// is freed.
    fn disk_full(&self, bytes: u64, entries: u64) -> Option<String> {
        let (dir, min_free) = self.disk_guard.as_ref()?;
        if *min_free == 0 || entries == 0 {
            return None;
        }
        let space = match crate::space::disk_space(dir) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the data directory's free space");
                return None;
            }
        };
        self.metrics.observe_disk(&space);
        let need = min_free.saturating_add(crate::space::batch_footprint(bytes, entries));
        (space.free_bytes < need).then(|| {
            tracing::error!(
                free_bytes = space.free_bytes,
                min_free_bytes = *min_free,
                "data directory nearly full: refusing writes"
            );
            format!(
                "the data directory's disk is nearly full ({} bytes free, {} must stay free); \
                 nothing was written; retry after space is freed",
                space.free_bytes, min_free
            )
        })
    }

    /// A failed store write or read of a batch of `entries`. On an embedded store the log then
    /// refuses writes until restart (the state after a failed `fsync` is unknowable). On a shared
    /// store it is not final: the next commit reads the stored size under the lock and follows
    /// whatever is there, whether this batch landed or not; the callers were told it failed, and
    /// those with an idempotency key get the truth by retrying.
    fn store_failed(&mut self, entries: usize, e: StoreError) -> CommitError {
        self.metrics.errors.with_label_values(&[e.category()]).inc();
        let why = CommitError::Store {
            entries,
            error: Arc::new(e),
        };
        if self.store.shared()
            && !matches!(&why, CommitError::Store { error, .. } if matches!(**error, StoreError::Corrupt(_)))
        {
            // Once a second at most: an outage fails every batch.
            let now = Instant::now();
            if self.quiet_until.is_none_or(|until| now >= until) {
                self.quiet_until = Some(now + std::time::Duration::from_secs(1));
                tracing::warn!(
                    error = %why,
                    "commit failed; the next batch retries on the stored tree (repeats within a \
                     second are not logged; see sealtrail_errors_total)"
                );
            }
            return why;
        }
        self.fail(why)
    }

    pub(super) fn fail(&self, why: CommitError) -> CommitError {
        tracing::error!(
            error = %why,
            category = why.category(),
            "sequencer: refusing further writes until restart"
        );
        self.failed.store(true, Ordering::Release);
        why
    }
}
