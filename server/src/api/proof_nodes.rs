//! Proof nodes from shared tile bytes and cached tile summaries (the proof endpoints' reader).

use std::sync::Arc;

use sealtrail_spec::Hash;
use sealtrail_spec::merkle::{HashReader, Node};
use sealtrail_spec::tiles::{
    TILE_HEIGHT, TILE_WIDTH, TileId, TileReadError, decode_hash_tile, tile_for,
};

use crate::store::{LogStore, StoreError};

use super::cache::{TileCache, summary_from};

/// Serves proof nodes from the hash tiles, as [`sealtrail_spec::tiles::TileHashReader`] does,
/// but from shared tile bytes (no per-request copies) and with the nodes high enough inside a
/// tile (see [`summary_from`]) taken from a cached summary of that tile (its inner hashes at
/// those heights, built once from the tile's hashes). So a proof hashes at most 7 times in its
/// level-0 tile and not at all above, instead of up to 247 times per tile level, and reads each
/// tile at most once per request.
pub(super) struct ProofNodes<'a> {
    size: u64,
    store: &'a dyn LogStore,
    cache: &'a TileCache,
    /// Tiles read for this request: a proof, its root and its leaf read the same few tiles.
    memo: Vec<(TileId, Arc<Vec<u8>>)>,
}

impl<'a> ProofNodes<'a> {
    pub(super) fn new(size: u64, store: &'a dyn LogStore, cache: &'a TileCache) -> Self {
        ProofNodes {
            size,
            store,
            cache,
            memo: Vec::new(),
        }
    }

    /// The stored bytes of `tile`, at least `tile.width` hashes long.
    fn tile_bytes(&mut self, tile: TileId) -> Result<Arc<Vec<u8>>, TileReadError<StoreError>> {
        if let Some((_, b)) = self.memo.iter().find(|(t, _)| *t == tile) {
            return Ok(b.clone());
        }
        let bytes = self
            .cache
            .tile(self.store, tile.level, tile.index, tile.width)
            .map_err(|error| TileReadError::Reader { tile, error })?
            .ok_or_else(|| TileReadError::Reader {
                tile,
                error: StoreError::Corrupt(format!("{} is missing", tile.path())),
            })?;
        if bytes.len() < usize::from(tile.width) * 32 {
            return Err(TileReadError::Corrupt(tile, bytes.len() / 32));
        }
        self.memo.push((tile, bytes.clone()));
        Ok(bytes)
    }

    /// The summary of `tile`: its hashes at relative heights `summary_from(level)` to 7, height by
    /// height, left to right (for a partial tile, the complete nodes of its width).
    fn summary(&mut self, tile: TileId) -> Result<Arc<Vec<u8>>, TileReadError<StoreError>> {
        let cache = self.cache;
        let full = tile.is_full();
        let (key, pkey) = (
            (tile.level, tile.index),
            (tile.level, tile.index, tile.width),
        );
        let hit = if full {
            cache.summaries.lock().ok().and_then(|c| c.get(&key))
        } else {
            cache
                .partial_summaries
                .lock()
                .ok()
                .and_then(|c| c.get(&pkey))
        };
        if let Some(s) = hit {
            return Ok(s);
        }
        let bytes = self.tile_bytes(tile)?;
        let mut row = decode_hash_tile(&bytes[..usize::from(tile.width) * 32], tile.width)
            .map_err(|_| TileReadError::Corrupt(tile, bytes.len() / 32))?;
        let from = summary_from(tile.level);
        let mut out = Vec::with_capacity((usize::from(tile.width) >> (from - 1)) * 32);
        for height in 1..TILE_HEIGHT {
            row = row
                .chunks_exact(2)
                .map(|p| sealtrail_spec::node_hash(&p[0], &p[1]))
                .collect();
            if height >= from {
                for h in &row {
                    out.extend_from_slice(h.as_bytes());
                }
            }
        }
        let out = Arc::new(out);
        if full {
            if let Ok(mut c) = cache.summaries.lock() {
                c.put(key, out.clone());
            }
        } else if let Ok(mut c) = cache.partial_summaries.lock() {
            c.put(pkey, out.clone());
        }
        Ok(out)
    }

    /// One node: from its tile's summary if it is high enough inside its tile, else hashed from
    /// the tile's hashes (at most 8 of them).
    fn node(&mut self, node: &Node) -> Result<Hash, TileReadError<StoreError>> {
        let (level, rel) = (node.height / TILE_HEIGHT, node.height % TILE_HEIGHT);
        let size = self.size;
        let out_of_tree = || TileReadError::OutOfTree(*node, size);
        let first = node
            .index
            .checked_shl(u32::from(rel))
            .ok_or_else(out_of_tree)?;
        // The last hash of this level that the node covers decides its tile.
        let last = first + ((1u64 << rel) - 1);
        let tile = tile_for(size, level, last).ok_or_else(out_of_tree)?;
        let from = summary_from(level);
        if rel >= from {
            let summary = self.summary(tile)?;
            // The summary holds width >> r hashes for each height r from `from` to 7, in order.
            let base: usize = (from..rel).map(|r| usize::from(tile.width >> r)).sum();
            let within = usize::try_from(node.index % (u64::from(TILE_WIDTH) >> rel)).unwrap_or(0);
            let at = (base + within) * 32;
            let corrupt = || TileReadError::Corrupt(tile, summary.len() / 32);
            let bytes = summary.get(at..at + 32).ok_or_else(corrupt)?;
            return Hash::from_slice(bytes).map_err(|_| corrupt());
        }
        let bytes = self.tile_bytes(tile)?;
        let at = usize::try_from(first % u64::from(TILE_WIDTH)).unwrap_or(0) * 32;
        let count = 1usize << rel;
        let hashes = bytes
            .get(at..at + count * 32)
            .ok_or_else(out_of_tree)?
            .chunks_exact(32)
            .map(Hash::from_slice)
            .collect::<Result<Vec<Hash>, _>>()
            .map_err(|_| TileReadError::Corrupt(tile, bytes.len() / 32))?;
        Ok(sealtrail_spec::merkle::tree_hash(&hashes))
    }
}

impl HashReader for ProofNodes<'_> {
    type Error = TileReadError<StoreError>;

    fn read_nodes(&mut self, nodes: &[Node]) -> Result<Vec<Hash>, Self::Error> {
        nodes.iter().map(|n| self.node(n)).collect()
    }
}
