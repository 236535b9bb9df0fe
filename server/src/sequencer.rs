//! The sequencer: the one writer of a log.
//!
//! One OS thread per log owns the tree's right edge and the store's write side. It takes everything
//! queued (up to `commit_max_entries`), assigns indices, builds the leaf envelopes and their hashes,
//! extends the tree with `sealtrail-spec`, signs the checkpoint for the new size, and commits
//! entries, tiles, idempotency records, leaf-hash index, secondary-index postings
//! (`crate::query`) and checkpoint in ONE durable transaction.
//! Only then does it publish the checkpoint and answer the callers. While a commit is in flight new
//! submissions queue up: that is group commit.
//!
//! Invariants:
//! - A reply with an index is sent only after the commit holding it returned: acknowledged entries
//!   are durable.
//! - A checkpoint is published (leaves this thread) only after the tree it signs is durable, and
//!   the tree only grows, so two published checkpoints are always consistent.
//! - After a failed commit the sequencer refuses all writes until restart: the store's state after
//!   a failed `fsync` is unknowable, and a restart rebuilds everything from what is durable.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use sealtrail_spec::Hash;
use sealtrail_spec::checkpoint::{Checkpoint, sign_checkpoint};
use sealtrail_spec::envelope::LeafEnvelope;
use sealtrail_spec::extend::{RightEdge, extend_edge};
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
}

/// The handle request handlers use to submit entries. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SequencerHandle {
    tx: mpsc::UnboundedSender<Msg>,
    queued: Arc<AtomicUsize>,
    capacity: usize,
    failed: Arc<AtomicBool>,
    published: watch::Receiver<Arc<Published>>,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Msg::Submit(_) => "Submit",
            Msg::Import(..) => "Import",
            Msg::Shutdown => "Shutdown",
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
        // Reserve queue room first: memory is bounded by entries waiting, not by requests.
        let reserved = self
            .queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |q| {
                (q + n <= self.capacity).then_some(q + n)
            });
        if reserved.is_err() {
            return Err(SequenceError::QueueFull);
        }
        let (reply, rx) = oneshot::channel();
        let msg = Msg::Submit(Submission {
            entries,
            idempotency,
            reply,
        });
        if self.tx.send(msg).is_err() {
            self.queued.fetch_sub(n, Ordering::AcqRel);
            return Err(SequenceError::ShuttingDown);
        }
        rx.await.unwrap_or(Err(SequenceError::ShuttingDown))
    }

    /// Appends already-encoded leaves verbatim, in one commit, and returns the published tree
    /// (for `sealtrail import`, which has verified them against a signed checkpoint). Each leaf
    /// must decode strictly as an envelope and sequencing times must not go backwards. Blocks:
    /// never call it on an async runtime thread.
    pub fn import_blocking(&self, leaves: Vec<Vec<u8>>) -> Result<Arc<Published>, SequenceError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Msg::Import(leaves, reply))
            .map_err(|_| SequenceError::ShuttingDown)?;
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

/// The sequencer's private state.
struct Sequencer {
    store: Arc<dyn LogStore>,
    signer: Ed25519Signer,
    origin: String,
    edge: RightEdge,
    /// The rightmost partial tile of each level: what the next extension reads.
    edge_tiles: BTreeMap<u8, (u64, Vec<Hash>)>,
    last_time_ms: u64,
    /// Leaf hashes of the last committed batch, for the replies.
    last_batch_hashes: Vec<Hash>,
    /// Leaf hashes of the unfinished leaf-index run (fewer than `leafindex::RUN`).
    run_hashes: Vec<Hash>,
    max_batch: usize,
    disk_guard: Option<(std::path::PathBuf, u64)>,
    published: watch::Sender<Arc<Published>>,
    queued: Arc<AtomicUsize>,
    failed: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
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
    let edge = RightEdge::from_tiles(size, &mut StoreTiles(store.as_ref()))
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
    let run_hashes = unfinished_run(store.as_ref(), size)
        .map_err(|e| StartError::Inconsistent(format!("reading the leaf-index tail: {e}")))?;
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
    let handle = SequencerHandle {
        tx,
        queued: queued.clone(),
        capacity: config.queue_entries,
        failed: failed.clone(),
        published: pub_rx,
    };
    let seq = Sequencer {
        store,
        signer,
        origin: config.origin.clone(),
        edge,
        edge_tiles: BTreeMap::new(),
        last_time_ms,
        last_batch_hashes: Vec::new(),
        run_hashes,
        max_batch: config.commit_max_entries,
        disk_guard: config.disk_guard.clone(),
        published: pub_tx,
        queued,
        failed,
        metrics,
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

/// A submission accepted into the current batch.
struct Accepted {
    sub: Submission,
    first_index: u64,
    /// Entries in the submission (its entries were moved into the batch).
    count: usize,
}

/// A submission answered from an earlier entry with the same idempotency key.
enum Duplicate {
    /// Committed before: answer now.
    Stored(Submission, u64),
    /// In this batch: answer with the same indices after the commit.
    InBatch(Submission, usize),
}

impl Sequencer {
    fn run(mut self, mut rx: mpsc::UnboundedReceiver<Msg>) {
        let mut stopping = false;
        while !stopping {
            let Some(first) = rx.blocking_recv() else {
                break;
            };
            let mut subs = Vec::new();
            let mut n = 0;
            for msg in std::iter::once(first).chain(std::iter::from_fn(|| rx.try_recv().ok())) {
                match msg {
                    Msg::Shutdown => {
                        stopping = true;
                        break;
                    }
                    Msg::Import(leaves, reply) => {
                        // Keep the log order: what was submitted before goes first.
                        if !subs.is_empty() {
                            self.queued.fetch_sub(n, Ordering::AcqRel);
                            self.process(std::mem::take(&mut subs));
                            n = 0;
                        }
                        let _ = reply.send(self.import(leaves));
                    }
                    Msg::Submit(s) => {
                        n += s.entries.len();
                        subs.push(s);
                    }
                }
                if n >= self.max_batch {
                    break;
                }
            }
            self.queued.fetch_sub(n, Ordering::AcqRel);
            self.metrics
                .queue_depth
                .set(self.queued.load(Ordering::Acquire) as i64);
            if !subs.is_empty() {
                self.process(subs);
            }
        }
        tracing::info!("sequencer stopped");
    }

    fn process(&mut self, subs: Vec<Submission>) {
        if self.failed.load(Ordering::Acquire) {
            for s in subs {
                let _ = s.reply.send(Err(SequenceError::Unavailable(
                    "an earlier commit failed".into(),
                )));
            }
            return;
        }
        if let Some(why) = self.disk_full(&subs) {
            self.metrics.errors.with_label_values(&["disk_full"]).inc();
            for s in subs {
                let _ = s.reply.send(Err(SequenceError::DiskFull(why.clone())));
            }
            return;
        }
        let old_size = self.edge.size();
        let time_ms = now_ms().max(self.last_time_ms);
        let mut accepted: Vec<Accepted> = Vec::new();
        let mut duplicates: Vec<Duplicate> = Vec::new();
        let mut batch = Batch {
            old_size,
            ..Batch::default()
        };
        let mut leaf_hashes: Vec<Hash> = Vec::new();
        let mut seen: HashMap<[u8; 32], ([u8; 32], usize, u64)> = HashMap::new();
        let mut postings = crate::query::PostingsBuilder::default();
        for mut sub in subs {
            if let Some(idem) = sub.idempotency {
                match self.check_idempotency(&idem, &seen) {
                    Ok(Some(dup)) => {
                        duplicates.push(match dup {
                            Prior::Stored(index) => Duplicate::Stored(sub, index),
                            Prior::InBatch(j) => Duplicate::InBatch(sub, j),
                        });
                        continue;
                    }
                    Ok(None) => {}
                    Err(e) => {
                        let _ = sub.reply.send(Err(e));
                        continue;
                    }
                }
            }
            let first_index = batch.new_size();
            let count = sub.entries.len();
            match encode_entries(std::mem::take(&mut sub.entries), time_ms) {
                Ok(leaves) => {
                    for (index, (bytes, hash, principal, event_type)) in (first_index..).zip(leaves)
                    {
                        batch.entries.push(bytes);
                        leaf_hashes.push(hash);
                        postings.add(index, principal, event_type);
                    }
                }
                Err(e) => {
                    let _ = sub.reply.send(Err(e));
                    continue;
                }
            }
            if let Some(idem) = sub.idempotency {
                seen.insert(idem.key, (idem.request_hash, accepted.len(), first_index));
                batch.idempotency.push((
                    idem.key,
                    IdempotencyRecord {
                        index: first_index,
                        payload_hash: idem.request_hash,
                    },
                ));
            }
            accepted.push(Accepted {
                sub,
                first_index,
                count,
            });
        }
        batch.postings = postings.finish();
        let published = if batch.entries.is_empty() {
            self.published.borrow().clone()
        } else {
            match self.commit(batch, leaf_hashes, time_ms) {
                Ok(p) => p,
                Err(e) => {
                    let err = SequenceError::Unavailable(e);
                    for a in accepted {
                        let _ = a.sub.reply.send(Err(err.clone()));
                    }
                    for d in duplicates {
                        let (Duplicate::Stored(s, ..) | Duplicate::InBatch(s, _)) = d;
                        let _ = s.reply.send(Err(err.clone()));
                    }
                    return;
                }
            }
        };
        self.reply_all(accepted, duplicates, &published, old_size, time_ms);
    }

    /// Commits verbatim leaves (see [`SequencerHandle::import_blocking`]).
    fn import(&mut self, leaves: Vec<Vec<u8>>) -> Result<Arc<Published>, SequenceError> {
        if self.failed.load(Ordering::Acquire) {
            return Err(SequenceError::Unavailable(
                "an earlier commit failed".into(),
            ));
        }
        let old_size = self.edge.size();
        let mut time_ms = self.last_time_ms;
        let mut hashes = Vec::with_capacity(leaves.len());
        let mut postings = crate::query::PostingsBuilder::default();
        for (i, leaf) in leaves.iter().enumerate() {
            let index = old_size + i as u64;
            let env = LeafEnvelope::decode(leaf)
                .map_err(|e| SequenceError::Invalid(format!("entry {index}: {e}")))?;
            if env.time_ms < time_ms {
                return Err(SequenceError::Invalid(format!(
                    "entry {index}: sequencing time {} is before {time_ms}",
                    env.time_ms
                )));
            }
            time_ms = env.time_ms;
            hashes.push(sealtrail_spec::leaf_hash(leaf));
            postings.add(index, env.principal, env.event_type);
        }
        if leaves.is_empty() {
            return Ok(self.published.borrow().clone());
        }
        let batch = Batch {
            old_size,
            entries: leaves,
            postings: postings.finish(),
            ..Batch::default()
        };
        self.commit(batch, hashes, time_ms)
            .map_err(SequenceError::Unavailable)
    }

    /// Why the batch must not be written because the data directory's filesystem would keep
    /// less than the configured free space; `None` to go ahead. The store is never asked to
    /// write into a full disk (redb refuses every later operation, reads too, after a failed
    /// write), and writes resume by themselves once space is freed.
    fn disk_full(&self, subs: &[Submission]) -> Option<String> {
        let (dir, min_free) = self.disk_guard.as_ref()?;
        if *min_free == 0 {
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
        let (entries, bytes) = subs
            .iter()
            .flat_map(|s| &s.entries)
            .fold((0u64, 0u64), |(n, b), e| {
                (n + 1, b + e.payload.len() as u64)
            });
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

    fn reply_all(
        &self,
        accepted: Vec<Accepted>,
        duplicates: Vec<Duplicate>,
        published: &Arc<Published>,
        old_size: u64,
        time_ms: u64,
    ) {
        // Only in-batch duplicates need the accepted answers again; don't copy hashes otherwise.
        let keep = duplicates
            .iter()
            .any(|d| matches!(d, Duplicate::InBatch(..)));
        let mut answers: Vec<(u64, Vec<Hash>)> = Vec::new();
        for a in accepted {
            let n = a.count;
            let hashes = self.batch_hashes(a.first_index - old_size, n);
            if keep {
                answers.push((a.first_index, hashes.clone()));
            }
            let _ = a.sub.reply.send(Ok(Sequenced {
                first_index: a.first_index,
                leaf_hashes: hashes,
                time_ms,
                published: published.clone(),
                duplicate: false,
            }));
        }
        for d in duplicates {
            let (sub, first_index, hashes) = match d {
                Duplicate::InBatch(sub, j) => {
                    let (first, hashes) = answers.get(j).cloned().unwrap_or_default();
                    (sub, first, hashes)
                }
                Duplicate::Stored(sub, index) => match self.stored_hashes(index, sub.entries.len())
                {
                    Ok(hashes) => (sub, index, hashes),
                    Err(e) => {
                        let _ = sub
                            .reply
                            .send(Err(SequenceError::Unavailable(e.to_string())));
                        continue;
                    }
                },
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

/// Where an idempotency key was seen before.
enum Prior {
    Stored(u64),
    InBatch(usize),
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

/// The sequencer's tile reader: right-edge tiles from memory, anything else from the store.
struct EdgeTiles<'a> {
    cache: &'a BTreeMap<u8, (u64, Vec<Hash>)>,
    store: &'a dyn LogStore,
}

impl TileReader for EdgeTiles<'_> {
    type Error = StoreError;

    fn read_tile(&mut self, tile: TileId) -> Result<Vec<Hash>, StoreError> {
        if let Some((index, hashes)) = self.cache.get(&tile.level)
            && *index == tile.index
            && hashes.len() >= usize::from(tile.width)
        {
            return Ok(hashes[..usize::from(tile.width)].to_vec());
        }
        StoreTiles(self.store).read_tile(tile)
    }
}

impl Sequencer {
    fn check_idempotency(
        &self,
        idem: &Idempotency,
        seen: &HashMap<[u8; 32], ([u8; 32], usize, u64)>,
    ) -> Result<Option<Prior>, SequenceError> {
        if let Some((hash, j, first_index)) = seen.get(&idem.key) {
            return if *hash == idem.request_hash {
                Ok(Some(Prior::InBatch(*j)))
            } else {
                Err(SequenceError::IdempotencyConflict(*first_index))
            };
        }
        match self.store.idempotency(&idem.key) {
            Ok(Some(rec)) if rec.payload_hash == idem.request_hash => {
                Ok(Some(Prior::Stored(rec.index)))
            }
            Ok(Some(rec)) => Err(SequenceError::IdempotencyConflict(rec.index)),
            Ok(None) => Ok(None),
            Err(e) => Err(SequenceError::Unavailable(e.to_string())),
        }
    }

    /// Extends the tree, signs, commits durably, then publishes. On error nothing is published
    /// and the sequencer refuses further writes.
    fn commit(
        &mut self,
        mut batch: Batch,
        leaf_hashes: Vec<Hash>,
        time_ms: u64,
    ) -> Result<Arc<Published>, String> {
        let started = Instant::now();
        let reader = EdgeTiles {
            cache: &self.edge_tiles,
            store: self.store.as_ref(),
        };
        let ext = match extend_edge(&self.edge, reader, &leaf_hashes) {
            Ok(ext) => ext,
            Err(e) => return Err(self.fail(format!("extending the tree: {e}"))),
        };
        batch.checkpoint = match sign(&self.signer, &self.origin, ext.new_size, ext.root) {
            Ok(c) => c,
            Err(e) => return Err(self.fail(format!("signing the checkpoint: {e}"))),
        };
        batch.tiles = ext
            .tiles
            .iter()
            .map(|(id, hashes)| (*id, encode_hash_tile(hashes)))
            .collect();
        // Leaf-index rows for every run this batch completes.
        let run = crate::leafindex::RUN as usize;
        let next_run_hashes = if self.run_hashes.len() + leaf_hashes.len() >= run {
            let mut all = self.run_hashes.clone();
            all.extend_from_slice(&leaf_hashes);
            let first_run = (batch.old_size - self.run_hashes.len() as u64) / crate::leafindex::RUN;
            let chunks = all.chunks_exact(run);
            let rest = chunks.remainder().to_vec();
            for (k, chunk) in (first_run..).zip(chunks) {
                for (bucket, row) in crate::leafindex::build_run(chunk) {
                    batch.leaf_runs.push((k, bucket, row));
                }
            }
            Some(rest)
        } else {
            None
        };
        let entries = batch.entries.len();
        if let Err(e) = self.store.commit(&batch) {
            self.metrics.errors.with_label_values(&[e.category()]).inc();
            return Err(self.fail(format!("commit of {entries} entries failed: {e}")));
        }
        self.metrics
            .commit_seconds
            .observe(started.elapsed().as_secs_f64());
        self.metrics.batch_entries.observe(entries as f64);
        self.metrics.entries_appended.inc_by(entries as u64);
        // Durable: adopt the new edge and publish.
        for (id, hashes) in ext.tiles {
            if id.is_full() {
                if self
                    .edge_tiles
                    .get(&id.level)
                    .is_some_and(|(i, _)| *i == id.index)
                {
                    self.edge_tiles.remove(&id.level);
                }
            } else {
                self.edge_tiles.insert(id.level, (id.index, hashes));
            }
        }
        self.edge = ext.edge;
        self.last_time_ms = time_ms;
        match next_run_hashes {
            Some(rest) => self.run_hashes = rest,
            None => self.run_hashes.extend_from_slice(&leaf_hashes),
        }
        self.last_batch_hashes = leaf_hashes;
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

    fn fail(&self, why: String) -> String {
        tracing::error!(error = %why, "sequencer: refusing further writes until restart");
        self.failed.store(true, Ordering::Release);
        why
    }

    fn batch_hashes(&self, offset: u64, n: usize) -> Vec<Hash> {
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        self.last_batch_hashes
            .get(start..start.saturating_add(n))
            .map(<[Hash]>::to_vec)
            .unwrap_or_default()
    }

    fn stored_hashes(&self, index: u64, n: usize) -> Result<Vec<Hash>, StoreError> {
        Ok(self
            .store
            .entries(index, index + n as u64)?
            .iter()
            .map(|bytes| sealtrail_spec::leaf_hash(bytes))
            .collect())
    }
}
