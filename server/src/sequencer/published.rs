//! The published tree and what is rebuilt from the store: signing and publishing checkpoints,
//! reading back the stored checkpoint, the leaf-index tail and the last sequencing time. Shared by
//! recovery at start (`start`), the writer and the follower of other instances (`follow`).

use std::sync::Arc;
use std::time::SystemTime;

use sealtrail_spec::Hash;
use sealtrail_spec::checkpoint::{Checkpoint, sign_checkpoint};
use sealtrail_spec::envelope::LeafEnvelope;
use sealtrail_spec::note::{Ed25519Signer, Ed25519Verifier};
use sealtrail_spec::tiles::{TileId, TileReader};
use tokio::sync::watch;

use crate::metrics::Metrics;
use crate::published::Published;
use crate::store::{LogStore, StoreError, StoreTiles};

pub(super) fn sign(
    signer: &Ed25519Signer,
    origin: &str,
    size: u64,
    root: Hash,
) -> Result<Vec<u8>, sealtrail_spec::checkpoint::CheckpointError> {
    sign_checkpoint(&Checkpoint::new(origin, size, root)?, signer)
}

/// Leaf hashes of the entries after the last completed leaf-index run, from the level-0 tiles.
pub(super) fn unfinished_run(store: &dyn LogStore, size: u64) -> Result<Vec<Hash>, StoreError> {
    leaf_hashes(
        store,
        size / crate::leafindex::RUN * crate::leafindex::RUN,
        size,
    )
}

/// Leaf hashes of the stored entries `start..end`, from the level-0 tiles (one read per 256).
pub(super) fn leaf_hashes(
    store: &dyn LogStore,
    start: u64,
    end: u64,
) -> Result<Vec<Hash>, StoreError> {
    let mut hashes = Vec::new();
    let mut tiles = StoreTiles(store);
    let mut at = start / 256 * 256;
    while at < end {
        let width = u16::try_from((end - at).min(256)).unwrap_or(256);
        let tile = tiles.read_tile(TileId {
            level: 0,
            index: at / 256,
            width,
        })?;
        let skip = usize::try_from(start.saturating_sub(at)).unwrap_or(usize::MAX);
        hashes.extend(tile.into_iter().skip(skip));
        at += u64::from(width);
    }
    Ok(hashes)
}

/// The sequencing time of the stored entry `index`.
pub(super) fn last_time(store: &dyn LogStore, index: u64) -> Result<u64, StoreError> {
    let bytes = store
        .entry(index)?
        .ok_or_else(|| StoreError::Corrupt(format!("entry {index} is missing")))?;
    LeafEnvelope::decode(&bytes)
        .map(|e| e.time_ms)
        .map_err(|e| StoreError::Corrupt(format!("entry {index}: {e}")))
}

/// The tree a stored checkpoint note signs, if it is this log's (origin and key).
pub(super) fn checked_published(
    note: &[u8],
    origin: &str,
    verifier: &Ed25519Verifier,
) -> Option<Published> {
    let opened = sealtrail_spec::checkpoint::open(note, origin, &[verifier]).ok()?;
    let c = opened.checkpoint();
    Some(Published {
        size: c.size(),
        root: c.root(),
        checkpoint: Arc::new(note.to_vec()),
        signed_at: SystemTime::now(),
    })
}

/// Publishes `p` unless something at least as large is published already: checkpoints leave in
/// size order whoever committed them.
pub(super) fn publish(
    tx: &watch::Sender<Arc<Published>>,
    metrics: &Metrics,
    p: Published,
) -> Arc<Published> {
    let p = Arc::new(p);
    let mut sent = false;
    tx.send_if_modified(|cur| {
        if p.size > cur.size {
            *cur = p.clone();
            sent = true;
        }
        sent
    });
    if sent {
        metrics.observe_published(&p);
    }
    p
}
