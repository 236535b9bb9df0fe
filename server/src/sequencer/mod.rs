//! The sequencer: the one writer of a log.
//!
//! Two OS threads per log. The **sequencer thread** receives submissions, checks idempotency
//! keys, builds the leaf envelopes and their hashes, and gathers them into the open batch at
//! indices after everything already handed on. The **writer thread** owns the tree's right edge
//! and the store's write side: whenever it is free it takes the whole open batch (up to
//! `commit_max_entries`), extends the tree with `sealtrail-spec`, signs the checkpoint for the new
//! size, and commits entries, tiles, idempotency records, leaf-hash index, secondary-index
//! postings (`crate::query`) and checkpoint in ONE durable transaction. Then it publishes the
//! checkpoint and hands the batch back, and the sequencer thread answers the callers. So the next
//! batch is received, encoded and hashed while one is being written and synced: group commit,
//! with the per-entry work off the commit's critical path.
//!
//! Invariants:
//! - A reply with an index is sent only after the commit holding it returned: acknowledged entries
//!   are durable.
//! - A checkpoint is published (leaves the writer) only after the tree it signs is durable, and
//!   the tree only grows, so two published checkpoints are always consistent.
//! - An idempotency key is found in the open batch, in a batch the writer took (until that batch
//!   is durable), or in the store, so a repeated request never gets a second index.
//! - After a failed commit the log refuses all writes until restart, including a batch already
//!   gathered: the store's state after a failed `fsync` is unknowable, and a restart rebuilds
//!   everything from what is durable.

mod admin;
mod batch;
mod follow;
mod published;
#[cfg(test)]
mod shared_tests;
mod start;
#[cfg(test)]
mod tests;
mod thread;
mod writer;

use batch::{encode_and_accept, small_enough};

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use sealtrail_net::clock::unix_millis;
use sealtrail_spec::Hash;
use sealtrail_spec::checkpoint::CheckpointError;
use sealtrail_spec::edge::{EdgeError, TiledEdge};
use sealtrail_spec::note::Ed25519Signer;
use tokio::sync::{mpsc, oneshot, watch};

use crate::metrics::Metrics;
use crate::published::Published;
use crate::store::{IdempotencyRecord, LogStore, StoreError};
pub use admin::{AdminOp, AdminOutcome, indices_selector};
use admin::{AdminReply, AdminWork};
pub use start::{FOLLOW_EVERY, start};

/// An entry as a client submitted it; the sequencer adds the sequencing time.
#[derive(Debug, Clone)]
pub struct NewEntry {
    /// The authenticated principal (or `anonymous`).
    pub principal: String,
    /// The payload's content type, as sent.
    pub content_type: String,
    /// The optional event type.
    pub event_type: Option<String>,
    /// The payload bytes, exactly as sent.
    pub payload: Vec<u8>,
}

/// An idempotency key digest and the digest of the request it came with.
#[derive(Debug, Clone, Copy)]
pub struct Idempotency {
    /// SHA-256 over the principal and the client's key (see the HTTP layer).
    pub key: [u8; 32],
    /// SHA-256 of the request payload (or the whole batch body).
    pub request_hash: [u8; 32],
}

/// The answer to a submission.
#[derive(Debug, Clone)]
pub struct Sequenced {
    /// Index of the first entry of the submission.
    pub first_index: u64,
    /// Leaf hashes of the submission's entries, in order.
    pub leaf_hashes: Vec<Hash>,
    /// Sequencing time (ms since the Unix epoch) written into the envelopes.
    pub time_ms: u64,
    /// The published tree that includes these entries.
    pub published: Arc<Published>,
    /// True if an idempotency key matched an earlier submission: nothing new was appended.
    pub duplicate: bool,
}

/// Why a submission was not sequenced.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SequenceError {
    /// Too many entries are waiting; retry later.
    #[error("the sequencer queue is full")]
    QueueFull,
    /// The idempotency key was used before with a different request.
    #[error("idempotency key already used for a different request (entry {0})")]
    IdempotencyConflict(u64),
    /// The idempotency key was used before, and the record of entry `.0` it created has been
    /// erased since: the request can no longer be compared with it.
    #[error("idempotency key already used; entry {0} it created was erased since")]
    IdempotencyErased(u64),
    /// The log cannot accept writes (a commit failed, or the store could not be read; see the
    /// logs).
    #[error("the log is not accepting writes: {0}")]
    Unavailable(Unavailable),
    /// The server is shutting down.
    #[error("the server is shutting down")]
    ShuttingDown,
    /// The entry could not be encoded (a field broke an envelope limit).
    #[error("invalid entry: {0}")]
    Invalid(String),
    /// The data directory's filesystem is (nearly) full; nothing was written. Retry later.
    #[error("{0}")]
    DiskFull(String),
}

/// Why the log is not accepting a write, by category.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Unavailable {
    /// An earlier commit failed: the log refuses writes until a restart.
    #[error("an earlier commit failed")]
    EarlierFailure,
    /// This batch's commit failed; the log refuses writes from now on.
    #[error(transparent)]
    Commit(#[from] CommitError),
    /// The store could not be read to answer the request (an idempotency key's record, or the
    /// entries of the request a repeat is answered with).
    #[error("{0}")]
    Read(Arc<StoreError>),
    /// The OS random number generator failed (no salt for a record).
    #[error("the OS random number generator failed: {0}")]
    Random(String),
}

impl Unavailable {
    /// A short label for logs and metrics.
    pub fn category(&self) -> &'static str {
        match self {
            Unavailable::EarlierFailure => "earlier_failure",
            Unavailable::Commit(e) => e.category(),
            Unavailable::Read(_) => "read",
            Unavailable::Random(_) => "random",
        }
    }
}

/// Why the writer could not commit a batch. Nothing of it was published.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CommitError {
    /// The tree could not be extended (its size would overflow).
    #[error("extending the tree: {0}")]
    Extend(EdgeError<Infallible>),
    /// The checkpoint for the new size could not be built or signed.
    #[error("signing the checkpoint: {0}")]
    Sign(CheckpointError),
    /// The store's durable write failed.
    #[error("commit of {entries} entries failed: {error}")]
    Store {
        /// Entries in the batch.
        entries: usize,
        /// What the store said.
        error: Arc<StoreError>,
    },
}

impl CommitError {
    /// A short label for logs and metrics.
    pub fn category(&self) -> &'static str {
        match self {
            CommitError::Extend(_) => "extend",
            CommitError::Sign(_) => "sign",
            CommitError::Store { .. } => "commit",
        }
    }
}

struct Submission {
    entries: Vec<NewEntry>,
    idempotency: Option<Idempotency>,
    reply: oneshot::Sender<Result<Sequenced, SequenceError>>,
}

/// An entry of an import: its leaf verbatim and its private record (or the tombstone of one
/// erased before the export).
#[derive(Debug, Clone)]
pub struct ImportEntry {
    /// The leaf envelope bytes.
    pub leaf: Vec<u8>,
    /// The record.
    pub record: ImportRecord,
}

/// The private record of an imported entry.
#[derive(Debug, Clone)]
pub enum ImportRecord {
    /// The record, checked against the leaf's commitment.
    Live(sealtrail_spec::record::PrivateRecord),
    /// Erased by the erasure entry at this index.
    Erased(u64),
}

type ImportReply = oneshot::Sender<Result<Arc<Published>, SequenceError>>;
type ImportBatch = (Vec<ImportEntry>, Vec<(u64, u64)>);

enum Msg {
    Submit(Submission),
    /// Entries appended verbatim (restoring an export), and erasures to re-apply.
    Import(Box<ImportBatch>, ImportReply),
    /// A planned erasure or legal hold: alone in its batch.
    Admin(Box<admin::Planned>, AdminReply),
    Shutdown,
    /// From the writer: a batch is done, to be answered.
    Done(Box<Done>),
    /// From the writer: it took the open batch, so waiting submissions have room.
    Taken,
}

/// The handle request handlers use to submit entries. Cheap to clone.
#[derive(Clone)]
pub struct SequencerHandle {
    tx: mpsc::UnboundedSender<Msg>,
    queued: Arc<AtomicUsize>,
    capacity: usize,
    failed: Arc<AtomicBool>,
    published: watch::Receiver<Arc<Published>>,
    shared: Arc<Shared>,
    store: Arc<dyn LogStore>,
    max_batch: usize,
    /// Held from planning an admin operation to its answer: one at a time.
    admin_lock: Arc<tokio::sync::Mutex<()>>,
    /// The legal holds in force, as of the last committed admin batch.
    holds: SharedHolds,
}

/// The legal holds in force, shared by the handle (which plans) and the sequencer thread (which
/// updates them once a hold's batch is durable).
type SharedHolds = Arc<Mutex<Vec<crate::privacy::Hold>>>;

impl std::fmt::Debug for SequencerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SequencerHandle")
            .field("queued", &self.queued)
            .field("capacity", &self.capacity)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

/// Submissions of at most this many entries and payload bytes are sequenced on the caller's
/// thread while the sequencer thread holds none: encoded and hashed under the batch lock (a few
/// microseconds for a typical entry, at most tens for the largest), which saves two thread
/// hand-offs per request. Larger ones go through the thread.
const INLINE_MAX_ENTRIES: usize = 16;
const INLINE_MAX_BYTES: u64 = 64 * 1024;

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Msg::Submit(_) => "Submit",
            Msg::Import(..) => "Import",
            Msg::Admin(..) => "Admin",
            Msg::Shutdown => "Shutdown",
            Msg::Done(_) => "Done",
            Msg::Taken => "Taken",
        })
    }
}

impl SequencerHandle {
    /// Queues `entries` (all-or-nothing, at consecutive indices) and waits until they are
    /// durable, or the reason they will not be.
    pub async fn submit(
        &self,
        entries: Vec<NewEntry>,
        idempotency: Option<Idempotency>,
    ) -> Result<Sequenced, SequenceError> {
        if self.failed.load(Ordering::Acquire) {
            return Err(SequenceError::Unavailable(Unavailable::EarlierFailure));
        }
        let n = entries.len();
        if n > self.capacity {
            // Could never wait in the queue, so it is refused whichever way it would go.
            return Err(SequenceError::QueueFull);
        }
        let (reply, rx) = oneshot::channel();
        let sub = Submission {
            entries,
            idempotency,
            reply,
        };
        let Some(sub) = self.try_inline(sub) else {
            return rx.await.unwrap_or(Err(SequenceError::ShuttingDown));
        };
        // Reserve queue room first: memory is bounded by entries waiting, not by requests.
        let reserved = self
            .queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |q| {
                (q + n <= self.capacity).then_some(q + n)
            });
        if reserved.is_err() {
            return Err(SequenceError::QueueFull);
        }
        if !self.to_thread(Msg::Submit(sub)) {
            self.queued.fetch_sub(n, Ordering::AcqRel);
            return Err(SequenceError::ShuttingDown);
        }
        rx.await.unwrap_or(Err(SequenceError::ShuttingDown))
    }

    /// Sequences a small submission here, into the open batch, if the sequencer thread holds no
    /// submission (which keeps arrival order) and the batch has room; gives it back otherwise.
    fn try_inline(&self, sub: Submission) -> Option<Submission> {
        if !small_enough(&sub.entries) {
            return Some(sub);
        }
        let mut guard = self.shared.lock();
        let g = &mut *guard;
        if g.stopping || g.with_thread > 0 || !g.fits(sub.entries.len(), self.max_batch) {
            return Some(sub);
        }
        g.last_time_ms = unix_millis().max(g.last_time_ms);
        let time_ms = g.last_time_ms;
        encode_and_accept(g, self.store.as_ref(), sub, time_ms);
        if g.writer_idle {
            self.shared.ready.notify_one();
        }
        None
    }

    /// Hands a message to the sequencer thread, counted in `with_thread` until the thread has
    /// dealt with it; false if the thread is gone.
    fn to_thread(&self, msg: Msg) -> bool {
        let mut g = self.shared.lock();
        g.with_thread += 1;
        if self.tx.send(msg).is_err() {
            g.with_thread -= 1;
            return false;
        }
        true
    }

    /// Appends already-encoded leaves verbatim with their records, in one commit, and returns
    /// the published tree (for `sealtrail import`, which has verified the leaves against a signed
    /// checkpoint). Each leaf must decode strictly as an envelope, each record must match its
    /// leaf's commitment, and sequencing times must not go backwards. Blocks: never call it on an
    /// async runtime thread.
    ///
    /// `reapply` lists records of earlier imported entries that erasure entries in `entries`
    /// name: `(index, erasure entry index)`. Each still live is erased in the same commit.
    pub fn import_blocking(
        &self,
        entries: Vec<ImportEntry>,
        reapply: Vec<(u64, u64)>,
    ) -> Result<Arc<Published>, SequenceError> {
        let (reply, rx) = oneshot::channel();
        if !self.to_thread(Msg::Import(Box::new((entries, reapply)), reply)) {
            return Err(SequenceError::ShuttingDown);
        }
        rx.blocking_recv()
            .unwrap_or(Err(SequenceError::ShuttingDown))
    }

    /// Runs an erasure part or a hold operation and answers once its entry is durable (or why
    /// nothing was written). One at a time: planned on a blocking thread against the published
    /// tree (appends go on meanwhile), then committed alone in its batch.
    pub async fn admin(&self, op: AdminOp) -> Result<AdminOutcome, SequenceError> {
        if self.failed.load(Ordering::Acquire) {
            return Err(SequenceError::Unavailable(Unavailable::EarlierFailure));
        }
        let _one_at_a_time = self.admin_lock.lock().await;
        let store = self.store.clone();
        // On a shared store other instances place holds and erase too: one admin operation at
        // a time across all of them, planned against the holds stored now.
        let _cluster_wide = if store.shared() {
            Some(admin_lead(&store).await?)
        } else {
            None
        };
        let cached = (!store.shared()).then(|| {
            self.holds
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
        });
        let size = self.published().size;
        let planned = tokio::task::spawn_blocking(move || {
            let (holds, size) = match cached {
                Some(holds) => (holds, size),
                // Committed means signed here too: another instance's entries may be named.
                None => (
                    stored_holds(store.as_ref())?,
                    store
                        .tree_size()
                        .map_err(|e| SequenceError::Unavailable(Unavailable::Read(Arc::new(e))))?,
                ),
            };
            admin::plan(store.as_ref(), &holds, op, size)
        })
        .await
        .map_err(|e| {
            SequenceError::Unavailable(Unavailable::Read(Arc::new(StoreError::Io(format!(
                "planning task: {e}"
            )))))
        })??;
        let planned = match planned {
            admin::Plan::Nothing(outcome) => return Ok(outcome),
            admin::Plan::Apply(p) => p,
        };
        let (reply, rx) = oneshot::channel();
        if !self.to_thread(Msg::Admin(planned, reply)) {
            return Err(SequenceError::ShuttingDown);
        }
        rx.await.unwrap_or(Err(SequenceError::ShuttingDown))
    }

    /// The latest published tree.
    pub fn published(&self) -> Arc<Published> {
        self.published.borrow().clone()
    }

    /// A receiver that changes whenever a new checkpoint is published.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Published>> {
        self.published.clone()
    }

    /// Entries waiting for the sequencer.
    pub fn queue_depth(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }

    /// Whether writes are refused after a failed commit.
    pub fn is_failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// Asks the sequencer to finish everything queued so far and stop.
    pub fn shutdown(&self) {
        let _ = self.tx.send(Msg::Shutdown);
    }
}

/// How long an admin operation waits for another instance's to finish.
const ADMIN_LEAD_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The cluster-wide admin lock of a shared store, waited for up to [`ADMIN_LEAD_WAIT`].
async fn admin_lead(
    store: &Arc<dyn LogStore>,
) -> Result<Box<dyn crate::store::Leadership>, SequenceError> {
    let unavailable = |e: StoreError| SequenceError::Unavailable(Unavailable::Read(Arc::new(e)));
    let deadline = tokio::time::Instant::now() + ADMIN_LEAD_WAIT;
    loop {
        let s = store.clone();
        let got = tokio::task::spawn_blocking(move || s.try_lead("admin"))
            .await
            .map_err(|e| unavailable(StoreError::Io(format!("admin lock task: {e}"))))?
            .map_err(unavailable)?;
        if let Some(lead) = got {
            return Ok(lead);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(unavailable(StoreError::Io(
                "another instance has been running an admin operation for 10 s; retry".into(),
            )));
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The legal holds in force, as stored.
fn stored_holds(store: &dyn LogStore) -> Result<Vec<crate::privacy::Hold>, SequenceError> {
    let read = |e: StoreError| SequenceError::Unavailable(Unavailable::Read(Arc::new(e)));
    store
        .holds()
        .map_err(read)?
        .into_iter()
        .map(|(id, bytes)| {
            crate::privacy::Hold::decode(&bytes)
                .map_err(|e| read(StoreError::Corrupt(format!("legal hold {id}: {e}"))))
        })
        .collect()
}

/// Why the sequencer could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The store does not match the last checkpoint it recorded, or holds an undecodable entry.
    #[error("refusing to start: {0}; run `sealtrail fsck`")]
    Inconsistent(String),
    /// A setting or configured service the server cannot use (TLS files, JWT keys, access
    /// control, witnesses, metrics).
    #[error("refusing to start: {0}")]
    Config(String),
    /// A forwarding sink cannot be built (unreadable CA file, bad URL, unwritable file).
    #[error("forwarding: {0}")]
    Forward(String),
}

/// Settings the sequencer needs.
#[derive(Debug, Clone)]
pub struct SequencerConfig {
    /// The log origin.
    pub origin: String,
    /// Most entries waiting before `QueueFull`.
    pub queue_entries: usize,
    /// Most entries per commit.
    pub commit_max_entries: usize,
    /// The data directory and the free bytes its filesystem must keep (see
    /// `Limits::min_free_bytes`); `None` for stores without a directory.
    pub disk_guard: Option<(std::path::PathBuf, u64)>,
}

/// Idempotency keys in batches the writer took and has not yet committed.
type InFlight = HashMap<[u8; 32], InFlightKey>;

/// A request with an idempotency key, in a batch the writer took: what a repeat is answered with.
#[derive(Debug, Clone)]
struct InFlightKey {
    /// SHA-256 of the request, to tell a repeat from a conflict.
    request_hash: [u8; 32],
    first_index: u64,
    leaf_hashes: Vec<Hash>,
    time_ms: u64,
}

/// An idempotency key seen in the open batch.
#[derive(Debug, Clone, Copy)]
struct SeenKey {
    request_hash: [u8; 32],
    /// The submission's position in [`Open::accepted`].
    slot: usize,
    first_index: u64,
}

/// The fields of an entry the secondary index (`crate::query`) keeps. No principal for an
/// imported entry whose record was erased.
#[derive(Debug, Clone)]
struct IndexedFields {
    principal: Option<String>,
    event_type: Option<String>,
}

/// What the sequencer thread and the writer thread share.
struct Shared {
    gather: Mutex<Gather>,
    /// Signalled when a batch opens (or the writer must stop).
    ready: Condvar,
}

/// The batch being gathered and what the writer has taken.
struct Gather {
    /// Index of the next entry accepted: the tree size after every batch the writer took.
    next_size: u64,
    /// The batch being gathered, taken whole by the writer when it is free.
    open: Option<Open>,
    in_flight: InFlight,
    /// The writer tells the sequencer when it takes a batch (submissions wait for room).
    wake_on_take: bool,
    /// The writer stops once nothing is open.
    closing: bool,
    /// The writer is waiting for a batch to open.
    writer_idle: bool,
    /// Sequencing time of the latest accepted entry; times never go backwards.
    last_time_ms: u64,
    /// Batches opened whose answers the sequencer thread has not yet sent.
    outstanding: usize,
    /// Submissions and imports sent to the sequencer thread and not yet accepted or answered.
    /// While there are any, every submission goes through the thread, behind them.
    with_thread: usize,
    /// The sequencer thread is shutting down: nothing new is accepted.
    stopping: bool,
}

impl Gather {
    /// Nothing open or in flight, for a tree of `size` whose last entry was sequenced at
    /// `last_time_ms`.
    fn new(size: u64, last_time_ms: u64) -> Self {
        Gather {
            next_size: size,
            open: None,
            in_flight: HashMap::new(),
            wake_on_take: false,
            closing: false,
            writer_idle: false,
            last_time_ms,
            outstanding: 0,
            with_thread: 0,
            stopping: false,
        }
    }

    /// Whether a submission of `count` entries may join the open batch.
    fn fits(&self, count: usize, max_batch: usize) -> bool {
        match &self.open {
            None => true,
            Some(o) => {
                o.import.is_none() && (o.entries.is_empty() || o.entries.len() + count <= max_batch)
            }
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Gather> {
        // Nothing in `Gather` is left half-changed by a panic that matters more than stopping
        // the log, and a poisoned lock would stop it; go on with the state as it is.
        self.gather.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A batch being gathered: entries encoded and hashed, at indices from `old_size`.
struct Open {
    old_size: u64,
    entries: Vec<Vec<u8>>,
    /// The private record of each entry (`None`: an imported tombstone).
    records: Vec<Option<Vec<u8>>>,
    /// Imported tombstones.
    tombstones: Vec<(u64, u64)>,
    /// Records of earlier entries this batch erases: `(index, erasure entry index)` (an erasure,
    /// or an import re-applying a restored erasure entry), and what that does to the postings.
    erased: Vec<(u64, u64)>,
    posting_changes: crate::query::PostingChanges,
    leaf_hashes: Vec<Hash>,
    /// Principal and event type of each entry, for the secondary index.
    fields: Vec<IndexedFields>,
    idempotency: Vec<([u8; 32], IdempotencyRecord)>,
    /// Idempotency keys in this batch.
    seen: HashMap<[u8; 32], SeenKey>,
    accepted: Vec<Accepted>,
    duplicates: Vec<Duplicate>,
    payload_bytes: u64,
    /// An import: verbatim leaves, alone in their batch.
    import: Option<ImportReply>,
    /// An erasure or hold: its entry is the batch's first; appends may follow it.
    admin: Option<AdminWork>,
}

impl Open {
    fn new(old_size: u64) -> Self {
        Open {
            old_size,
            entries: Vec::new(),
            records: Vec::new(),
            tombstones: Vec::new(),
            erased: Vec::new(),
            posting_changes: Default::default(),
            leaf_hashes: Vec::new(),
            fields: Vec::new(),
            idempotency: Vec::new(),
            seen: HashMap::new(),
            accepted: Vec::new(),
            duplicates: Vec::new(),
            payload_bytes: 0,
            import: None,
            admin: None,
        }
    }

    fn new_size(&self) -> u64 {
        self.old_size + self.entries.len() as u64
    }
}

/// A submission accepted into a batch.
struct Accepted {
    sub: Submission,
    first_index: u64,
    /// Entries in the submission (its entries were moved into the batch).
    count: usize,
    time_ms: u64,
}

/// A submission answered from an earlier entry with the same idempotency key.
enum Duplicate {
    /// Committed before, at `first_index..first_index + count`.
    Stored {
        sub: Submission,
        first_index: u64,
        count: usize,
    },
    /// In the same batch, at this position of [`Open::accepted`].
    InBatch { sub: Submission, slot: usize },
    /// In a batch the writer took earlier: answered with its indices once this batch is done,
    /// which is after that one.
    InFlight {
        sub: Submission,
        first_index: u64,
        hashes: Vec<Hash>,
        time_ms: u64,
    },
}

impl Duplicate {
    fn into_submission(self) -> Submission {
        match self {
            Duplicate::Stored { sub, .. }
            | Duplicate::InBatch { sub, .. }
            | Duplicate::InFlight { sub, .. } => sub,
        }
    }
}

/// A batch the writer is done with, for the sequencer thread to answer.
struct Done {
    result: Result<Arc<Published>, SequenceError>,
    open: Open,
}

/// A message waiting for room in the open batch.
enum Waiting {
    Submit(Submission),
    Import(Box<ImportBatch>, ImportReply),
    Admin(Box<admin::Planned>, AdminReply),
}

/// The sequencer thread: receives submissions, encodes and hashes them into the open batch,
/// and answers each batch once the writer is done with it.
struct Sequencer {
    store: Arc<dyn LogStore>,
    /// The legal holds in force (the store's, as of the last committed batch).
    holds: SharedHolds,
    shared: Arc<Shared>,
    max_batch: usize,
    waiting: VecDeque<Waiting>,
    queued: Arc<AtomicUsize>,
    failed: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
    writer: Option<std::thread::JoinHandle<()>>,
    /// On a shared store: the thread following the other instances' checkpoints, and its stop.
    follower: Option<(Arc<AtomicBool>, std::thread::JoinHandle<()>)>,
}

/// The writer thread: owns the tree's right edge and the store's write side. Takes the open
/// batch whenever it is free, extends the tree, signs, commits durably, publishes.
struct Writer {
    store: Arc<dyn LogStore>,
    shared: Arc<Shared>,
    signer: Ed25519Signer,
    origin: String,
    /// The tree's right edge with its partial tiles: all the next extension needs.
    edge: TiledEdge,
    /// Leaf hashes of the unfinished leaf-index run (fewer than `leafindex::RUN`).
    run_hashes: Vec<Hash>,
    /// Sequencing time of the last committed entry (this instance's or, on a shared store,
    /// another's): no entry is committed with an earlier one.
    last_time_ms: u64,
    /// Until when failed commits on a shared store are not logged again.
    quiet_until: Option<std::time::Instant>,
    disk_guard: Option<(std::path::PathBuf, u64)>,
    published: watch::Sender<Arc<Published>>,
    failed: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
    /// To the sequencer thread (weak: it does not keep the channel open).
    notify: mpsc::WeakUnboundedSender<Msg>,
}
