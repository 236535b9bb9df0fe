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

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use sealtrail_spec::Hash;
use sealtrail_spec::checkpoint::{Checkpoint, sign_checkpoint};
use sealtrail_spec::edge::TiledEdge;
use sealtrail_spec::envelope::LeafEnvelope;
use sealtrail_spec::note::Ed25519Signer;
use sealtrail_spec::tiles::{TileId, TileReader, decode_hash_tile, encode_hash_tile};
use tokio::sync::{mpsc, oneshot, watch};

use crate::metrics::Metrics;
use crate::store::{Batch, IdempotencyRecord, LogStore, StoreError};

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

/// What the log has published: the latest durable tree and its signed checkpoint.
#[derive(Debug, Clone)]
pub struct Published {
    /// Tree size.
    pub size: u64,
    /// Root hash at that size.
    pub root: Hash,
    /// The signed checkpoint note.
    pub checkpoint: Arc<Vec<u8>>,
    /// When the checkpoint was signed (kept out of the checkpoint body; for metrics and `/v1/log`).
    pub signed_at: SystemTime,
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
    /// The log cannot accept writes (a commit failed; see the logs).
    #[error("the log is not accepting writes: {0}")]
    Unavailable(String),
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

struct Submission {
    entries: Vec<NewEntry>,
    idempotency: Option<Idempotency>,
    reply: oneshot::Sender<Result<Sequenced, SequenceError>>,
}

enum Msg {
    Submit(Submission),
    /// Leaves appended verbatim (restoring an export).
    Import(
        Vec<Vec<u8>>,
        oneshot::Sender<Result<Arc<Published>, SequenceError>>,
    ),
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
}

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
            return Err(SequenceError::Unavailable(
                "an earlier commit failed".into(),
            ));
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
        g.last_time_ms = now_ms().max(g.last_time_ms);
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

    /// Appends already-encoded leaves verbatim, in one commit, and returns the published tree
    /// (for `sealtrail import`, which has verified them against a signed checkpoint). Each leaf
    /// must decode strictly as an envelope and sequencing times must not go backwards. Blocks:
    /// never call it on an async runtime thread.
    pub fn import_blocking(&self, leaves: Vec<Vec<u8>>) -> Result<Arc<Published>, SequenceError> {
        let (reply, rx) = oneshot::channel();
        if !self.to_thread(Msg::Import(leaves, reply)) {
            return Err(SequenceError::ShuttingDown);
        }
        rx.blocking_recv()
            .unwrap_or(Err(SequenceError::ShuttingDown))
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

/// Idempotency keys in batches the writer took and has not yet committed:
/// key → (request hash, first index, leaf hashes, sequencing time).
type InFlight = HashMap<[u8; 32], ([u8; 32], u64, Vec<Hash>, u64)>;

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
    leaf_hashes: Vec<Hash>,
    /// Principal and event type of each entry, for the secondary index.
    fields: Vec<(String, Option<String>)>,
    idempotency: Vec<([u8; 32], IdempotencyRecord)>,
    /// Idempotency keys in this batch: key → (request hash, accepted slot, first index).
    seen: HashMap<[u8; 32], ([u8; 32], usize, u64)>,
    accepted: Vec<Accepted>,
    duplicates: Vec<Duplicate>,
    payload_bytes: u64,
    /// An import: verbatim leaves, alone in their batch.
    import: Option<oneshot::Sender<Result<Arc<Published>, SequenceError>>>,
}

impl Open {
    fn new(old_size: u64) -> Self {
        Open {
            old_size,
            entries: Vec::new(),
            leaf_hashes: Vec::new(),
            fields: Vec::new(),
            idempotency: Vec::new(),
            seen: HashMap::new(),
            accepted: Vec::new(),
            duplicates: Vec::new(),
            payload_bytes: 0,
            import: None,
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
    /// Committed before: the first index and the number of entries.
    Stored(Submission, u64, usize),
    /// In the same batch (accepted slot).
    InBatch(Submission, usize),
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
            Duplicate::Stored(s, ..)
            | Duplicate::InBatch(s, _)
            | Duplicate::InFlight { sub: s, .. } => s,
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
    Import(
        Vec<Vec<u8>>,
        oneshot::Sender<Result<Arc<Published>, SequenceError>>,
    ),
}

/// The sequencer thread: receives submissions, encodes and hashes them into the open batch,
/// and answers each batch once the writer is done with it.
struct Sequencer {
    store: Arc<dyn LogStore>,
    shared: Arc<Shared>,
    max_batch: usize,
    waiting: VecDeque<Waiting>,
    queued: Arc<AtomicUsize>,
    failed: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
    writer: Option<std::thread::JoinHandle<()>>,
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
    disk_guard: Option<(std::path::PathBuf, u64)>,
    published: watch::Sender<Arc<Published>>,
    failed: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
    /// To the sequencer thread (weak: it does not keep the channel open).
    notify: mpsc::WeakUnboundedSender<Msg>,
}

impl Sequencer {
    fn run(mut self, mut rx: mpsc::UnboundedReceiver<Msg>) {
        let mut stopping = false;
        loop {
            self.gather();
            if stopping && self.waiting.is_empty() && self.shared.lock().outstanding == 0 {
                break;
            }
            let Some(first) = rx.blocking_recv() else {
                break;
            };
            self.receive(first, &mut stopping);
            while let Ok(msg) = rx.try_recv() {
                self.receive(msg, &mut stopping);
            }
        }
        // The writer commits what it was given (its answers may find nobody left) and stops.
        self.shared.lock().closing = true;
        self.shared.ready.notify_all();
        if let Some(t) = self.writer.take()
            && t.join().is_err()
        {
            tracing::error!("the writer thread panicked");
        }
        tracing::info!("sequencer stopped");
    }

    fn receive(&mut self, msg: Msg, stopping: &mut bool) {
        match msg {
            Msg::Done(done) => {
                self.shared.lock().outstanding -= 1;
                self.answer(*done);
            }
            Msg::Taken => {}
            Msg::Shutdown => {
                *stopping = true;
                self.shared.lock().stopping = true;
            }
            Msg::Submit(s) if *stopping => {
                self.queued.fetch_sub(s.entries.len(), Ordering::AcqRel);
                self.shared.lock().with_thread -= 1;
                let _ = s.reply.send(Err(SequenceError::ShuttingDown));
            }
            Msg::Import(_, reply) if *stopping => {
                self.shared.lock().with_thread -= 1;
                let _ = reply.send(Err(SequenceError::ShuttingDown));
            }
            Msg::Submit(s) => self.waiting.push_back(Waiting::Submit(s)),
            Msg::Import(leaves, reply) => self.waiting.push_back(Waiting::Import(leaves, reply)),
        }
    }

    /// Moves waiting submissions into the open batch while it has room, in arrival order.
    fn gather(&mut self) {
        if self.failed.load(Ordering::Acquire) {
            self.refuse_all();
            return;
        }
        let mut added = false;
        while let Some(front) = self.waiting.front() {
            let fits = {
                let mut g = self.shared.lock();
                let fits = match front {
                    Waiting::Import(..) => g.open.is_none(),
                    Waiting::Submit(s) => g.fits(s.entries.len(), self.max_batch),
                };
                if !fits {
                    g.wake_on_take = true;
                }
                fits
            };
            if !fits {
                break;
            }
            match self.waiting.pop_front() {
                Some(Waiting::Submit(sub)) => {
                    self.queued.fetch_sub(sub.entries.len(), Ordering::AcqRel);
                    added |= self.accept(sub);
                }
                Some(Waiting::Import(leaves, reply)) => added |= self.import(leaves, reply),
                None => break,
            }
        }
        if added {
            self.shared.ready.notify_one();
        }
        self.metrics
            .queue_depth
            .set(self.queued.load(Ordering::Acquire) as i64);
    }

    /// After a failed commit: everything waiting or gathered is refused.
    fn refuse_all(&mut self) {
        let err = SequenceError::Unavailable("an earlier commit failed".into());
        self.shared.lock().with_thread -= self.waiting.len();
        for w in self.waiting.drain(..) {
            match w {
                Waiting::Submit(s) => {
                    self.queued.fetch_sub(s.entries.len(), Ordering::AcqRel);
                    let _ = s.reply.send(Err(err.clone()));
                }
                Waiting::Import(_, reply) => {
                    let _ = reply.send(Err(err.clone()));
                }
            }
        }
        let open = {
            let mut g = self.shared.lock();
            let open = g.open.take();
            if open.is_some() {
                g.outstanding -= 1;
            }
            open
        };
        if let Some(open) = open {
            answer_error(open, &err);
        }
    }

    /// Encodes one submission (outside the lock: the writer may be taking the previous batch
    /// meanwhile) and adds it to the open batch (opening one if needed), or answers it now.
    /// Returns whether the open batch changed.
    fn accept(&mut self, sub: Submission) -> bool {
        // This submission still counts in `with_thread`, so nothing is accepted on a caller's
        // thread until it is in the batch: its time and index stay in order.
        let time_ms = {
            let mut g = self.shared.lock();
            g.last_time_ms = now_ms().max(g.last_time_ms);
            g.last_time_ms
        };
        let encoded = encode(sub, time_ms);
        let mut g = self.shared.lock();
        g.with_thread -= 1;
        let Some((sub, leaves, bytes)) = encoded else {
            return false;
        };
        add_to_batch(&mut g, self.store.as_ref(), sub, leaves, bytes, time_ms);
        true
    }

    /// Checks verbatim leaves (see [`SequencerHandle::import_blocking`]) and opens a batch of
    /// them alone, or answers why not. Returns whether a batch opened.
    fn import(
        &mut self,
        leaves: Vec<Vec<u8>>,
        reply: oneshot::Sender<Result<Arc<Published>, SequenceError>>,
    ) -> bool {
        // Nothing is open (imports wait for that) and nothing is accepted elsewhere while the
        // import counts in `with_thread`, so the next index and the time floor stay put.
        let (old_size, floor) = {
            let g = self.shared.lock();
            (g.next_size, g.last_time_ms)
        };
        let checked = check_import(Open::new(old_size), leaves, floor);
        let mut g = self.shared.lock();
        g.with_thread -= 1;
        match checked {
            Ok((mut open, time_ms)) => {
                g.last_time_ms = time_ms;
                open.import = Some(reply);
                g.open = Some(open);
                g.outstanding += 1;
                true
            }
            Err(e) => {
                drop(g);
                let _ = reply.send(Err(e));
                false
            }
        }
    }

    /// Answers everyone waiting on a batch the writer is done with.
    fn answer(&self, done: Done) {
        let Done { result, mut open } = done;
        let published = match result {
            Ok(p) => p,
            Err(e) => return answer_error(open, &e),
        };
        if let Some(reply) = open.import.take() {
            let _ = reply.send(Ok(published));
            return;
        }
        let hashes_of = |first: u64, n: usize| {
            let start = usize::try_from(first - open.old_size).unwrap_or(usize::MAX);
            open.leaf_hashes
                .get(start..start.saturating_add(n))
                .map(<[Hash]>::to_vec)
                .unwrap_or_default()
        };
        let mut slots = Vec::with_capacity(open.accepted.len());
        for a in open.accepted {
            slots.push((a.first_index, a.count, a.time_ms));
            let _ = a.sub.reply.send(Ok(Sequenced {
                first_index: a.first_index,
                leaf_hashes: hashes_of(a.first_index, a.count),
                time_ms: a.time_ms,
                published: published.clone(),
                duplicate: false,
            }));
        }
        for d in open.duplicates {
            let (sub, first_index, hashes, time_ms) = match d {
                Duplicate::InBatch(sub, j) => {
                    let (first, n, time) = slots.get(j).copied().unwrap_or_default();
                    (sub, first, hashes_of(first, n), time)
                }
                Duplicate::InFlight {
                    sub,
                    first_index,
                    hashes,
                    time_ms,
                } => (sub, first_index, hashes, time_ms),
                Duplicate::Stored(sub, index, count) => {
                    match stored_entries(self.store.as_ref(), index, count) {
                        Ok((hashes, time)) => (sub, index, hashes, time),
                        Err(e) => {
                            let _ = sub.reply.send(Err(SequenceError::Unavailable(e)));
                            continue;
                        }
                    }
                }
            };
            let _ = sub.reply.send(Ok(Sequenced {
                first_index,
                leaf_hashes: hashes,
                time_ms,
                published: published.clone(),
                duplicate: true,
            }));
        }
    }
}

/// Decodes imported leaves strictly into `open`, their sequencing times never going backwards
/// from `time_ms`; returns the batch and the last time.
fn check_import(
    mut open: Open,
    leaves: Vec<Vec<u8>>,
    mut time_ms: u64,
) -> Result<(Open, u64), SequenceError> {
    for (index, leaf) in (open.old_size..).zip(leaves) {
        let env = LeafEnvelope::decode(&leaf)
            .map_err(|e| SequenceError::Invalid(format!("entry {index}: {e}")))?;
        if env.time_ms < time_ms {
            return Err(SequenceError::Invalid(format!(
                "entry {index}: sequencing time {} is before {time_ms}",
                env.time_ms
            )));
        }
        time_ms = env.time_ms;
        open.leaf_hashes.push(sealtrail_spec::leaf_hash(&leaf));
        open.payload_bytes += env.payload.len() as u64;
        open.fields.push((env.principal, env.event_type));
        open.entries.push(leaf);
    }
    Ok((open, time_ms))
}

/// Whether a submission may be sequenced on the caller's thread (see [`INLINE_MAX_ENTRIES`]).
fn small_enough(entries: &[NewEntry]) -> bool {
    entries.len() <= INLINE_MAX_ENTRIES && payload_bytes(entries) <= INLINE_MAX_BYTES
}

fn payload_bytes(entries: &[NewEntry]) -> u64 {
    entries.iter().map(|e| e.payload.len() as u64).sum()
}

/// Encodes a submission's entries at `time_ms`: the submission, its leaves and payload bytes, or
/// `None` once it has been answered with the error.
fn encode(mut sub: Submission, time_ms: u64) -> Option<(Submission, Vec<EncodedLeaf>, u64)> {
    let bytes = payload_bytes(&sub.entries);
    match encode_entries(std::mem::take(&mut sub.entries), time_ms) {
        Ok(leaves) => Some((sub, leaves, bytes)),
        Err(e) => {
            let _ = sub.reply.send(Err(e));
            None
        }
    }
}

/// Encodes a submission at `time_ms` (the caller holds the batch lock and has made `time_ms` the
/// latest sequencing time) and adds it to the open batch, or answers it now.
fn encode_and_accept(g: &mut Gather, store: &dyn LogStore, sub: Submission, time_ms: u64) {
    if let Some((sub, leaves, bytes)) = encode(sub, time_ms) {
        add_to_batch(g, store, sub, leaves, bytes, time_ms);
    }
}

/// Adds an encoded submission to the open batch (opening one if needed), as a duplicate of an
/// earlier request with its idempotency key, or answers it now (a conflict).
fn add_to_batch(
    g: &mut Gather,
    store: &dyn LogStore,
    sub: Submission,
    leaves: Vec<EncodedLeaf>,
    bytes: u64,
    time_ms: u64,
) {
    let count = leaves.len();
    let next_size = g.next_size;
    let open = match &mut g.open {
        Some(open) => open,
        None => {
            g.outstanding += 1;
            g.open.insert(Open::new(next_size))
        }
    };
    if let Some(idem) = sub.idempotency {
        match check_idempotency(store, &idem, &open.seen, &g.in_flight) {
            Ok(Some(Prior::Stored(index))) => {
                open.duplicates.push(Duplicate::Stored(sub, index, count));
                return;
            }
            Ok(Some(Prior::InBatch(j))) => {
                open.duplicates.push(Duplicate::InBatch(sub, j));
                return;
            }
            Ok(Some(Prior::InFlight(first_index, hashes, time_ms))) => {
                open.duplicates.push(Duplicate::InFlight {
                    sub,
                    first_index,
                    hashes,
                    time_ms,
                });
                return;
            }
            Ok(None) => {}
            Err(e) => {
                let _ = sub.reply.send(Err(e));
                return;
            }
        }
    }
    let first_index = open.new_size();
    for (bytes, hash, principal, event_type) in leaves {
        open.entries.push(bytes);
        open.leaf_hashes.push(hash);
        open.fields.push((principal, event_type));
    }
    open.payload_bytes += bytes;
    if let Some(idem) = sub.idempotency {
        open.seen.insert(
            idem.key,
            (idem.request_hash, open.accepted.len(), first_index),
        );
        open.idempotency.push((
            idem.key,
            IdempotencyRecord {
                index: first_index,
                payload_hash: idem.request_hash,
            },
        ));
    }
    open.accepted.push(Accepted {
        sub,
        first_index,
        count,
        time_ms,
    });
}

/// Leaf hashes of the stored entries `index..index + n` and the first one's sequencing time.
fn stored_entries(store: &dyn LogStore, index: u64, n: usize) -> Result<(Vec<Hash>, u64), String> {
    let entries = store
        .entries(index, index + n as u64)
        .map_err(|e| e.to_string())?;
    let time_ms = match entries.first() {
        Some(first) => {
            LeafEnvelope::decode(first)
                .map_err(|e| format!("entry {index}: {e}"))?
                .time_ms
        }
        None => return Err(format!("entry {index} is missing")),
    };
    Ok((
        entries
            .iter()
            .map(|b| sealtrail_spec::leaf_hash(b))
            .collect(),
        time_ms,
    ))
}

/// Answers every submission (or the import) of a batch that will not be written with `err`.
fn answer_error(open: Open, err: &SequenceError) {
    for a in open.accepted {
        let _ = a.sub.reply.send(Err(err.clone()));
    }
    for d in open.duplicates {
        let _ = d.into_submission().reply.send(Err(err.clone()));
    }
    if let Some(reply) = open.import {
        let _ = reply.send(Err(err.clone()));
    }
}

/// Where an idempotency key was used before.
enum Prior {
    Stored(u64),
    InBatch(usize),
    InFlight(u64, Vec<Hash>, u64),
}

/// Where `idem`'s key was used before: in the open batch, in a batch the writer took, or in the
/// store (checked last: a key leaves `in_flight` only after its batch is durable). A different
/// request under the same key is a conflict.
fn check_idempotency(
    store: &dyn LogStore,
    idem: &Idempotency,
    seen: &HashMap<[u8; 32], ([u8; 32], usize, u64)>,
    in_flight: &InFlight,
) -> Result<Option<Prior>, SequenceError> {
    if let Some((hash, j, first_index)) = seen.get(&idem.key) {
        return if *hash == idem.request_hash {
            Ok(Some(Prior::InBatch(*j)))
        } else {
            Err(SequenceError::IdempotencyConflict(*first_index))
        };
    }
    if let Some((hash, first_index, hashes, time_ms)) = in_flight.get(&idem.key) {
        return if *hash == idem.request_hash {
            Ok(Some(Prior::InFlight(
                *first_index,
                hashes.clone(),
                *time_ms,
            )))
        } else {
            Err(SequenceError::IdempotencyConflict(*first_index))
        };
    }
    match store.idempotency(&idem.key) {
        Ok(Some(rec)) if rec.payload_hash == idem.request_hash => {
            Ok(Some(Prior::Stored(rec.index)))
        }
        Ok(Some(rec)) => Err(SequenceError::IdempotencyConflict(rec.index)),
        Ok(None) => Ok(None),
        Err(e) => Err(SequenceError::Unavailable(e.to_string())),
    }
}

impl Writer {
    fn run(mut self) {
        while let Some(mut open) = self.take() {
            let result = self.write(&mut open);
            if let Some(tx) = self.notify.upgrade() {
                let _ = tx.send(Msg::Done(Box::new(Done { result, open })));
            }
        }
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
                            (idem.request_hash, a.first_index, hashes, a.time_ms),
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
            g.writer_idle = true;
            g = self
                .shared
                .ready
                .wait(g)
                .unwrap_or_else(PoisonError::into_inner);
            g.writer_idle = false;
        }
    }

    /// Extends the tree by `open`, signs, commits durably, then publishes. On error nothing is
    /// published and the log refuses further writes.
    fn write(&mut self, open: &mut Open) -> Result<Arc<Published>, SequenceError> {
        if self.failed.load(Ordering::Acquire) {
            return Err(SequenceError::Unavailable(
                "an earlier commit failed".into(),
            ));
        }
        if open.entries.is_empty() {
            return Ok(self.published.borrow().clone());
        }
        let started = Instant::now();
        let keys: Vec<[u8; 32]> = open.idempotency.iter().map(|(k, _)| *k).collect();
        let result = self.commit(open);
        if !keys.is_empty() {
            // Durable (or never to be): the store answers for these keys from now on.
            let mut g = self.shared.lock();
            for key in &keys {
                g.in_flight.remove(key);
            }
        }
        let published = result.map_err(SequenceError::Unavailable)?;
        self.metrics
            .commit_seconds
            .observe(started.elapsed().as_secs_f64());
        Ok(published)
    }

    /// Moves the batch's entries into the store; `open` keeps what the answers need.
    fn commit(&mut self, open: &mut Open) -> Result<Arc<Published>, String> {
        let ext = match self.edge.extend(&open.leaf_hashes) {
            Ok(ext) => ext,
            Err(e) => return Err(self.fail(format!("extending the tree: {e}"))),
        };
        let mut postings = crate::query::PostingsBuilder::default();
        for (index, (principal, event_type)) in (open.old_size..).zip(open.fields.drain(..)) {
            postings.add(index, principal, event_type);
        }
        let mut batch = Batch {
            old_size: open.old_size,
            entries: std::mem::take(&mut open.entries),
            tiles: ext
                .tiles
                .iter()
                .map(|(id, hashes)| (*id, encode_hash_tile(hashes)))
                .collect(),
            idempotency: std::mem::take(&mut open.idempotency),
            leaf_runs: Vec::new(),
            postings: postings.finish(),
            checkpoint: match sign(&self.signer, &self.origin, ext.new_size, ext.root) {
                Ok(c) => c,
                Err(e) => return Err(self.fail(format!("signing the checkpoint: {e}"))),
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
        if let Err(e) = self.store.commit(&batch) {
            self.metrics.errors.with_label_values(&[e.category()]).inc();
            return Err(self.fail(format!("commit of {n} entries failed: {e}")));
        }
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
        let published = Arc::new(Published {
            size: ext.new_size,
            root: ext.root,
            checkpoint: Arc::new(batch.checkpoint),
            signed_at: SystemTime::now(),
        });
        self.metrics.observe_published(&published);
        self.published.send_replace(published.clone());
        Ok(published)
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

    fn fail(&self, why: String) -> String {
        tracing::error!(error = %why, "sequencer: refusing further writes until restart");
        self.failed.store(true, Ordering::Release);
        why
    }
}

/// An encoded leaf, its hash, and the indexed fields moved back out of its envelope.
type EncodedLeaf = (Vec<u8>, Hash, String, Option<String>);

/// Builds and hashes the envelopes, moving the entries' fields rather than copying them.
fn encode_entries(entries: Vec<NewEntry>, time_ms: u64) -> Result<Vec<EncodedLeaf>, SequenceError> {
    entries
        .into_iter()
        .map(|e| {
            let env = LeafEnvelope {
                time_ms,
                principal: e.principal,
                content_type: e.content_type,
                event_type: e.event_type,
                payload: e.payload,
            };
            let bytes = env
                .encode()
                .map_err(|err| SequenceError::Invalid(err.to_string()))?;
            let hash = sealtrail_spec::leaf_hash(&bytes);
            Ok((bytes, hash, env.principal, env.event_type))
        })
        .collect()
}

/// Recovers the log state from `store`, checks it against the stored checkpoint, and starts the
/// sequencer thread. Returns the handle and the thread (joined after [`SequencerHandle::shutdown`]).
pub fn start(
    store: Arc<dyn LogStore>,
    signer: Ed25519Signer,
    config: &SequencerConfig,
    metrics: Arc<Metrics>,
) -> Result<(SequencerHandle, std::thread::JoinHandle<()>), StartError> {
    let size = store.tree_size()?;
    let edge = TiledEdge::from_tiles(size, StoreTiles(store.as_ref()))
        .map_err(|e| StartError::Inconsistent(format!("rebuilding the right edge: {e}")))?;
    let root = edge.root();
    let verifier = signer.verifier();
    let checkpoint = match store.checkpoint()? {
        Some(note) => {
            let cp = sealtrail_spec::checkpoint::open(&note, &config.origin, &[&verifier])
                .map_err(|e| StartError::Inconsistent(format!("stored checkpoint: {e}")))?;
            let c = cp.checkpoint();
            if c.size() != size || c.root() != root {
                return Err(StartError::Inconsistent(format!(
                    "stored checkpoint is size {} root {} but the store holds size {size} root {root}",
                    c.size(),
                    c.root().to_base64()
                )));
            }
            note
        }
        None if size == 0 => sign(&signer, &config.origin, 0, root)
            .map_err(|e| StartError::Inconsistent(e.to_string()))?,
        None => {
            return Err(StartError::Inconsistent(format!(
                "store holds {size} entries but no checkpoint"
            )));
        }
    };
    let last_time_ms = match size.checked_sub(1) {
        None => 0,
        Some(last) => {
            let bytes = store
                .entry(last)?
                .ok_or_else(|| StartError::Inconsistent(format!("entry {last} is missing")))?;
            LeafEnvelope::decode(&bytes)
                .map_err(|e| StartError::Inconsistent(format!("entry {last}: {e}")))?
                .time_ms
        }
    };
    let mut run_hashes = unfinished_run(store.as_ref(), size)
        .map_err(|e| StartError::Inconsistent(format!("reading the leaf-index tail: {e}")))?;
    run_hashes.reserve_exact((crate::leafindex::RUN as usize).saturating_sub(run_hashes.len()));
    let published = Arc::new(Published {
        size,
        root,
        checkpoint: Arc::new(checkpoint),
        signed_at: SystemTime::now(),
    });
    metrics.observe_published(&published);
    let (pub_tx, pub_rx) = watch::channel(published);
    let (tx, rx) = mpsc::unbounded_channel();
    let queued = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicBool::new(false));
    let shared = Arc::new(Shared {
        gather: Mutex::new(Gather {
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
        }),
        ready: Condvar::new(),
    });
    let handle = SequencerHandle {
        tx,
        queued: queued.clone(),
        capacity: config.queue_entries,
        failed: failed.clone(),
        published: pub_rx,
        shared: shared.clone(),
        store: store.clone(),
        max_batch: config.commit_max_entries,
    };
    let writer = Writer {
        store: store.clone(),
        shared: shared.clone(),
        signer,
        origin: config.origin.clone(),
        edge,
        run_hashes,
        disk_guard: config.disk_guard.clone(),
        published: pub_tx,
        failed: failed.clone(),
        metrics: metrics.clone(),
        notify: handle.tx.downgrade(),
    };
    let writer_thread = std::thread::Builder::new()
        .name("writer".into())
        .spawn(move || writer.run())
        .map_err(|e| StartError::Store(StoreError::Io(format!("spawning the writer: {e}"))))?;
    let seq = Sequencer {
        store,
        shared,
        max_batch: config.commit_max_entries,
        waiting: VecDeque::new(),
        queued,
        failed,
        metrics,
        writer: Some(writer_thread),
    };
    let thread = std::thread::Builder::new()
        .name("sequencer".into())
        .spawn(move || seq.run(rx))
        .map_err(|e| StartError::Store(StoreError::Io(format!("spawning the sequencer: {e}"))))?;
    Ok((handle, thread))
}

fn sign(
    signer: &Ed25519Signer,
    origin: &str,
    size: u64,
    root: Hash,
) -> Result<Vec<u8>, sealtrail_spec::checkpoint::CheckpointError> {
    sign_checkpoint(&Checkpoint::new(origin, size, root)?, signer)
}

/// Leaf hashes of the entries after the last completed leaf-index run, from the level-0 tiles.
fn unfinished_run(store: &dyn LogStore, size: u64) -> Result<Vec<Hash>, StoreError> {
    let start = size / crate::leafindex::RUN * crate::leafindex::RUN;
    let mut hashes = Vec::new();
    let mut tiles = StoreTiles(store);
    let mut at = start;
    while at < size {
        let width = u16::try_from((size - at).min(256)).unwrap_or(256);
        hashes.extend(tiles.read_tile(TileId {
            level: 0,
            index: at / 256,
            width,
        })?);
        at += u64::from(width);
    }
    Ok(hashes)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
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
    use std::future::Future;
    use std::pin::Pin;
    use std::task::Poll;

    use super::*;
    use crate::store::mem::MemStore;
    use crate::store::{EntryStore as _, LeafIndex as _};

    const ORIGIN: &str = "example.com/pipeline";

    fn log(store: &Arc<MemStore>) -> (SequencerHandle, std::thread::JoinHandle<()>) {
        let signer = Ed25519Signer::from_seed(ORIGIN, [7; 32]).unwrap();
        let config = SequencerConfig {
            origin: ORIGIN.into(),
            queue_entries: 1000,
            commit_max_entries: 100,
            disk_guard: None,
        };
        start(
            store.clone(),
            signer,
            &config,
            Arc::new(Metrics::new().unwrap()),
        )
        .unwrap()
    }

    fn entry(payload: &str) -> Vec<NewEntry> {
        vec![NewEntry {
            principal: "tester".into(),
            content_type: "application/json".into(),
            event_type: None,
            payload: payload.as_bytes().to_vec(),
        }]
    }

    fn key(k: u8, payload: &str) -> Option<Idempotency> {
        Some(Idempotency {
            key: [k; 32],
            request_hash: sealtrail_spec::hash::sha256(payload.as_bytes()),
        })
    }

    /// `f`'s output, or a failure if it takes more than 30 s (an answer that never comes).
    async fn answer<F: Future>(f: F) -> F::Output {
        tokio::time::timeout(std::time::Duration::from_secs(30), f)
            .await
            .expect("no answer within 30 s")
    }

    /// Polls `f` once, which sends its submission: the sequencer takes messages in order.
    async fn send<F: Future + Unpin>(f: &mut F) {
        std::future::poll_fn(|cx| {
            assert!(
                Pin::new(&mut *f).poll(cx).is_pending(),
                "answered too early"
            );
            Poll::Ready(())
        })
        .await;
    }

    /// While the writer commits one batch, the next is gathered: a repeat of an idempotency key
    /// in the batch being committed is a duplicate of it, a different request under that key a
    /// conflict, and new entries go into the next commit at the following indices.
    #[tokio::test]
    async fn the_next_batch_gathers_while_one_commits() {
        let store = Arc::new(MemStore::new());
        let (seq, thread) = log(&store);
        store.hold_commits(true);
        let mut a = Box::pin(seq.submit(entry("{\"a\":1}"), key(1, "{\"a\":1}")));
        send(&mut a).await;
        store.wait_for_held_commits(1);
        let mut again = Box::pin(seq.submit(entry("{\"a\":1}"), key(1, "{\"a\":1}")));
        send(&mut again).await;
        let mut next = Box::pin(seq.submit(entry("{\"b\":2}"), None));
        send(&mut next).await;
        // Answered at once, and after the two above were gathered (messages are taken in order).
        match answer(seq.submit(entry("{\"c\":3}"), key(1, "{\"c\":3}"))).await {
            Err(SequenceError::IdempotencyConflict(0)) => {}
            other => panic!("expected a conflict with entry 0, got {other:?}"),
        }
        assert_eq!(store.commits(), 0, "the first commit is still held");
        store.hold_commits(false);
        let a = a.await.unwrap();
        let again = again.await.unwrap();
        let next = next.await.unwrap();
        assert_eq!((a.first_index, a.duplicate), (0, false));
        assert_eq!((again.first_index, again.duplicate), (0, true));
        assert_eq!(again.leaf_hashes, a.leaf_hashes);
        assert_eq!(again.time_ms, a.time_ms);
        assert_eq!((next.first_index, next.duplicate), (1, false));
        assert_eq!(next.published.size, 2);
        assert_eq!(store.commits(), 2, "one commit each");
        assert!(next.time_ms >= a.time_ms);
        seq.shutdown();
        thread.join().unwrap();
    }

    /// A batch gathered behind a commit that fails is refused and never written. (Two things
    /// see to that: the writer refuses batches after a failure, and the store refuses a batch
    /// built on a size it does not hold.)
    #[tokio::test]
    async fn a_failed_commit_refuses_the_batch_gathered_behind_it() {
        let store = Arc::new(MemStore::new());
        let (seq, thread) = log(&store);
        store.hold_commits(true);
        store.fail_commits(1);
        let mut a = Box::pin(seq.submit(entry("{\"a\":1}"), key(1, "{\"a\":1}")));
        send(&mut a).await;
        store.wait_for_held_commits(1);
        let mut behind = Box::pin(seq.submit(entry("{\"b\":2}"), None));
        send(&mut behind).await;
        assert!(matches!(
            answer(seq.submit(entry("{\"c\":3}"), key(1, "{\"c\":3}"))).await,
            Err(SequenceError::IdempotencyConflict(0))
        ));
        store.hold_commits(false);
        assert!(matches!(a.await, Err(SequenceError::Unavailable(_))));
        assert!(matches!(behind.await, Err(SequenceError::Unavailable(_))));
        assert!(seq.is_failed());
        assert_eq!(store.tree_size().unwrap(), 0);
        assert_eq!(store.commits(), 0);
        assert!(matches!(
            seq.submit(entry("{\"d\":4}"), None).await,
            Err(SequenceError::Unavailable(_))
        ));
        seq.shutdown();
        thread.join().unwrap();
    }

    /// A repeat of a committed request is answered with the stored entry's index, hashes and
    /// sequencing time.
    #[tokio::test]
    async fn a_repeat_of_a_stored_request_gets_the_stored_answer() {
        let store = Arc::new(MemStore::new());
        let (seq, thread) = log(&store);
        let first = seq
            .submit(entry("{\"a\":1}"), key(1, "{\"a\":1}"))
            .await
            .unwrap();
        seq.submit(entry("{\"b\":2}"), None).await.unwrap();
        let again = seq
            .submit(entry("{\"a\":1}"), key(1, "{\"a\":1}"))
            .await
            .unwrap();
        assert!(again.duplicate);
        assert_eq!(again.first_index, 0);
        assert_eq!(again.leaf_hashes, first.leaf_hashes);
        assert_eq!(again.time_ms, first.time_ms);
        assert_eq!(again.published.size, 2);
        seq.shutdown();
        thread.join().unwrap();
    }

    /// Leaf-index runs are written whichever way batches fall across them: a batch that
    /// completes one run from the unfinished one, spans a whole second run and starts a third,
    /// then small batches that go on from its tail (checked by fsck, which rebuilds every row).
    #[tokio::test]
    async fn leaf_index_runs_are_whole_across_a_batch_larger_than_a_run() {
        let run = crate::leafindex::RUN;
        let store = Arc::new(MemStore::new());
        let (seq, thread) = log(&store);
        let mut last = None;
        for i in 0..3 {
            last = Some(
                seq.submit(entry(&format!("{{\"i\":{i}}}")), None)
                    .await
                    .unwrap(),
            );
        }
        let time_ms = last.unwrap().time_ms;
        let leaves: Vec<Vec<u8>> = (0..2 * run + 10)
            .map(|i| {
                LeafEnvelope {
                    time_ms,
                    principal: "importer".into(),
                    content_type: "application/json".into(),
                    event_type: None,
                    payload: format!("{{\"imported\":{i}}}").into_bytes(),
                }
                .encode()
                .unwrap()
            })
            .collect();
        let importer = seq.clone();
        let published = tokio::task::spawn_blocking(move || importer.import_blocking(leaves))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(published.size, 2 * run + 13);
        for i in 0..5 {
            seq.submit(entry(&format!("{{\"after\":{i}}}")), None)
                .await
                .unwrap();
        }
        seq.shutdown();
        thread.join().unwrap();
        let signer = Ed25519Signer::from_seed(ORIGIN, [7; 32]).unwrap();
        let report = crate::fsck::fsck(store.as_ref(), ORIGIN, &signer.verifier()).unwrap();
        assert!(report.ok(), "{:?}", report.problems);
        assert_eq!(report.size, 2 * run + 18);
        for r in 0..2 {
            assert!(
                (0..=255u8).any(|b| store.leaf_run(r, b).unwrap().is_some()),
                "run {r} has no rows"
            );
        }
    }

    /// Small submissions sequenced on the callers' threads and larger ones through the
    /// sequencer thread, all at once: every entry gets exactly one index, the indices are
    /// contiguous, and sequencing times never go backwards in index order.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn inline_and_threaded_submissions_keep_indices_and_times_in_order() {
        let store = Arc::new(MemStore::new());
        let (seq, thread) = log(&store);
        let mut tasks = Vec::new();
        for t in 0..16u32 {
            let seq = seq.clone();
            tasks.push(tokio::spawn(async move {
                let mut got = Vec::new();
                for i in 0..40u32 {
                    // Every fourth submission is larger than the inline limit.
                    let n = if i % 4 == 3 {
                        INLINE_MAX_ENTRIES + 5
                    } else {
                        1
                    };
                    let entries: Vec<NewEntry> = (0..n)
                        .flat_map(|k| entry(&format!("{{\"t\":{t},\"i\":{i},\"k\":{k}}}")))
                        .collect();
                    let done = loop {
                        match seq.submit(entries.clone(), None).await {
                            Err(SequenceError::QueueFull) => tokio::task::yield_now().await,
                            other => break other.unwrap(),
                        }
                    };
                    assert_eq!(done.leaf_hashes.len(), n);
                    got.push((done.first_index, n, done.time_ms));
                }
                got
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        seq.shutdown();
        thread.join().unwrap();
        all.sort_unstable();
        let mut next = 0;
        for (first, n, _) in &all {
            assert_eq!(*first, next, "indices are contiguous and given once");
            next += *n as u64;
        }
        let entries = store.entries(0, next).unwrap();
        assert_eq!(entries.len() as u64, next);
        let times: Vec<u64> = entries
            .iter()
            .map(|e| LeafEnvelope::decode(e).unwrap().time_ms)
            .collect();
        assert!(
            times.windows(2).all(|w| w[0] <= w[1]),
            "sequencing times go backwards"
        );
        for (first, _, time_ms) in &all {
            assert_eq!(
                times[*first as usize], *time_ms,
                "the answer's time is the stored one"
            );
        }
    }

    /// A small submission does not overtake a larger one waiting for room in the batch: while
    /// the sequencer thread holds any submission, small ones queue behind it there.
    #[tokio::test]
    async fn a_small_submission_queues_behind_one_waiting_for_room() {
        let entries = |tag: &str, n: usize| -> Vec<NewEntry> {
            (0..n)
                .flat_map(|k| entry(&format!("{{\"{tag}\":{k}}}")))
                .collect()
        };
        let store = Arc::new(MemStore::new());
        let (seq, thread) = log(&store);
        store.hold_commits(true);
        let mut x = Box::pin(seq.submit(entries("x", 1), None));
        send(&mut x).await;
        store.wait_for_held_commits(1);
        // 60 entries open the next batch; 50 more do not fit beside them (at most 100); one
        // would.
        let mut b = Box::pin(seq.submit(entries("b", 60), None));
        send(&mut b).await;
        let mut c = Box::pin(seq.submit(entries("c", 50), None));
        send(&mut c).await;
        let mut d = Box::pin(seq.submit(entries("d", 1), None));
        send(&mut d).await;
        store.hold_commits(false);
        assert_eq!(answer(x).await.unwrap().first_index, 0);
        assert_eq!(answer(b).await.unwrap().first_index, 1);
        assert_eq!(answer(c).await.unwrap().first_index, 61);
        assert_eq!(answer(d).await.unwrap().first_index, 111);
        seq.shutdown();
        thread.join().unwrap();
    }

    #[test]
    fn only_small_submissions_are_sequenced_on_the_callers_thread() {
        let sized = |n: usize, bytes: usize| -> Vec<NewEntry> {
            (0..n)
                .map(|_| NewEntry {
                    principal: "tester".into(),
                    content_type: "application/octet-stream".into(),
                    event_type: None,
                    payload: vec![b'x'; bytes],
                })
                .collect()
        };
        assert!(small_enough(&sized(1, 256)));
        assert!(small_enough(&sized(INLINE_MAX_ENTRIES, 256)));
        assert!(!small_enough(&sized(INLINE_MAX_ENTRIES + 1, 1)));
        assert!(small_enough(&sized(1, 64 * 1024)));
        assert!(!small_enough(&sized(2, 40 * 1024)));
    }

    /// On shutdown, what was accepted before it (a batch being committed, one gathered on a
    /// caller's thread) is committed and answered, and every later submission is refused,
    /// whichever way it would have gone.
    #[tokio::test]
    async fn shutdown_commits_what_was_accepted_and_refuses_the_rest() {
        let store = Arc::new(MemStore::new());
        let (seq, thread) = log(&store);
        store.hold_commits(true);
        let mut a = Box::pin(seq.submit(entry("{\"a\":1}"), None));
        send(&mut a).await;
        store.wait_for_held_commits(1);
        let mut b = Box::pin(seq.submit(entry("{\"b\":2}"), None));
        send(&mut b).await;
        seq.shutdown();
        // Through the thread, behind the shutdown: refused once the thread has seen it.
        let large: Vec<NewEntry> = (0..=INLINE_MAX_ENTRIES)
            .flat_map(|k| entry(&format!("{{\"large\":{k}}}")))
            .collect();
        assert!(matches!(
            answer(seq.submit(large, None)).await,
            Err(SequenceError::ShuttingDown)
        ));
        assert!(matches!(
            answer(seq.submit(entry("{\"c\":3}"), None)).await,
            Err(SequenceError::ShuttingDown)
        ));
        store.hold_commits(false);
        assert_eq!(answer(a).await.unwrap().first_index, 0);
        let b = answer(b).await.unwrap();
        assert_eq!((b.first_index, b.published.size), (1, 2));
        thread.join().unwrap();
        assert_eq!(store.entries(0, 2).unwrap().len(), 2);
        assert!(
            store.entries(2, 3).is_err(),
            "nothing after the shutdown was stored"
        );
    }
}
