//! Recovery at start: the tree, the checkpoint, the last sequencing time and the leaf-index
//! tail are rebuilt from what is durable and checked against each other; then the threads start.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::{Arc, Condvar, Mutex};
use std::time::SystemTime;

use sealtrail_spec::edge::TiledEdge;
use sealtrail_spec::envelope::LeafEnvelope;
use sealtrail_spec::note::Ed25519Signer;
use tokio::sync::{mpsc, watch};

use super::*;
use crate::metrics::Metrics;
use crate::store::{LogStore, StoreError, StoreTiles};

use super::published::{sign, unfinished_run};

/// Recovers the log state from `store`, checks it against the stored checkpoint, and starts the
/// sequencer thread. Returns the handle and the thread (joined after [`SequencerHandle::shutdown`]).
pub fn start(
    store: Arc<dyn LogStore>,
    signer: Ed25519Signer,
    config: &SequencerConfig,
    metrics: Arc<Metrics>,
) -> Result<(SequencerHandle, std::thread::JoinHandle<()>), StartError> {
    let verifier = signer.verifier();
    let (size, stored) = if store.shared() {
        // Other instances commit meanwhile: start from the tree the stored checkpoint signs,
        // which was committed with it (a later one may be committed by the time it is read).
        let note = store.checkpoint()?;
        let size = match &note {
            Some(n) => sealtrail_spec::checkpoint::open(n, &config.origin, &[&verifier])
                .map_err(|e| StartError::Inconsistent(format!("stored checkpoint: {e}")))?
                .checkpoint()
                .size(),
            None => 0,
        };
        (size, note)
    } else {
        (store.tree_size()?, store.checkpoint()?)
    };
    let edge = TiledEdge::from_tiles(size, StoreTiles(store.as_ref()))
        .map_err(|e| StartError::Inconsistent(format!("rebuilding the right edge: {e}")))?;
    let root = edge.root();
    let checkpoint = match stored {
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
    let holds = store
        .holds()?
        .into_iter()
        .map(|(id, bytes)| {
            crate::privacy::Hold::decode(&bytes)
                .map_err(|e| StartError::Inconsistent(format!("legal hold {id}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let holds = Arc::new(Mutex::new(holds));
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
        gather: Mutex::new(Gather::new(size, last_time_ms)),
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
        admin_lock: Arc::new(tokio::sync::Mutex::new(())),
        holds: holds.clone(),
    };
    // Other instances commit to a shared store: follow their checkpoints.
    let follower = if store.shared() {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = super::follow::spawn_follower(
            store.clone(),
            pub_tx.clone(),
            metrics.clone(),
            config.origin.clone(),
            signer.verifier(),
            FOLLOW_EVERY,
            stop.clone(),
        )
        .map_err(|e| StartError::Store(StoreError::Io(format!("spawning the follower: {e}"))))?;
        Some((stop, thread))
    } else {
        None
    };
    let writer = Writer {
        store: store.clone(),
        shared: shared.clone(),
        signer,
        origin: config.origin.clone(),
        edge,
        run_hashes,
        last_time_ms,
        quiet_until: None,
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
        holds,
        shared,
        max_batch: config.commit_max_entries,
        waiting: VecDeque::new(),
        queued,
        failed,
        metrics,
        writer: Some(writer_thread),
        follower,
    };
    let thread = std::thread::Builder::new()
        .name("sequencer".into())
        .spawn(move || seq.run(rx))
        .map_err(|e| StartError::Store(StoreError::Io(format!("spawning the sequencer: {e}"))))?;
    Ok((handle, thread))
}

/// How often an instance on a shared store reads the stored checkpoint to follow the others'
/// commits (reads here lag theirs by at most this much, plus the read).
pub const FOLLOW_EVERY: std::time::Duration = std::time::Duration::from_millis(100);
