//! The read path's memory: hot full tiles and bundles, the partial tiles at the right edge, and
//! tile summaries for proofs, each bounded by bytes.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash as StdHash;
use std::sync::{Arc, Mutex};

use sealtrail_spec::Hash;
use sealtrail_spec::tiles::{TILE_WIDTH, TileId, TileReader, decode_hash_tile};

use crate::store::StoreTiles;
use crate::store::{LogStore, StoreError};

/// Bytes of full tiles and of full entry bundles kept in memory (each cache separately). Bounded
/// by bytes, not count: a bundle of 64 KB entries is 16 MiB.
const CACHED_TILE_BYTES: usize = 64 << 20;
const CACHED_BUNDLE_BYTES: usize = 64 << 20;
/// Bytes of tile summaries (see [`ProofNodes`](super::proof_nodes::ProofNodes)): 960 bytes per full level-0 tile and 8 KiB per
/// tile above, so 48 MiB covers a log of about 12M entries. Partial tiles' summaries (a new one per width, so
/// per commit) have their own small cache, so they never push full ones out.
const CACHED_SUMMARY_BYTES: usize = 48 << 20;
const CACHED_PARTIAL_SUMMARY_BYTES: usize = 1 << 20;
/// Partial tiles kept at the right edge of the tree (about one per level).
const CACHED_PARTIAL_TILES: usize = 16;
/// Heights inside a tile from which nodes are served from a tile summary: a node of relative
/// height r costs 2^r - 1 hashes from the tile's own hashes. Level-0 summaries keep heights 4 to 7
/// (30 hashes, 960 bytes), so a proof hashes at most 7 times in its level-0 tile. Tiles of higher
/// levels are 256 times fewer and every proof reads them, so their summaries keep every inner
/// node (heights 1 to 7: 254 hashes, 8 KiB) and proofs hash nothing there.
pub(super) fn summary_from(level: u8) -> u8 {
    if level == 0 { 4 } else { 1 }
}

/// A first-in, first-out cache of immutable byte strings, bounded by their total size.
#[derive(Debug)]
pub(super) struct Fifo<K> {
    map: HashMap<K, Arc<Vec<u8>>>,
    order: VecDeque<K>,
    bytes: usize,
    cap: usize,
}

impl<K: StdHash + Eq + Clone> Fifo<K> {
    fn new(cap: usize) -> Self {
        Fifo {
            map: HashMap::new(),
            order: VecDeque::new(),
            bytes: 0,
            cap,
        }
    }

    pub(super) fn get(&self, k: &K) -> Option<Arc<Vec<u8>>> {
        self.map.get(k).cloned()
    }

    pub(super) fn put(&mut self, k: K, v: Arc<Vec<u8>>) {
        if v.len() > self.cap || self.map.contains_key(&k) {
            return;
        }
        self.bytes += v.len();
        self.map.insert(k.clone(), v);
        self.order.push_back(k);
        while self.bytes > self.cap {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if let Some(v) = self.map.remove(&old) {
                self.bytes -= v.len();
            }
        }
    }
}

type TileFifo = Mutex<Fifo<(u8, u64)>>;
/// Recently read partial tiles by (level, index), oldest first.
type PartialTiles = Mutex<VecDeque<((u8, u64), Arc<Vec<u8>>)>>;

/// Hot full hash tiles and entry bundles. Only full ones are cached: they never change.
#[derive(Debug)]
pub struct TileCache {
    tiles: TileFifo,
    pub(super) bundles: Mutex<Fifo<u64>>,
    pub(super) summaries: TileFifo,
    pub(super) partial_summaries: Mutex<Fifo<(u8, u64, u16)>>,
    /// The latest stored bytes of recently read partial tiles. A tile's stored hashes only ever
    /// grow at the end, so any prefix of what was read once stays valid.
    partial_tiles: PartialTiles,
}

impl Default for TileCache {
    fn default() -> Self {
        TileCache {
            tiles: Mutex::new(Fifo::new(CACHED_TILE_BYTES)),
            bundles: Mutex::new(Fifo::new(CACHED_BUNDLE_BYTES)),
            summaries: Mutex::new(Fifo::new(CACHED_SUMMARY_BYTES)),
            partial_summaries: Mutex::new(Fifo::new(CACHED_PARTIAL_SUMMARY_BYTES)),
            partial_tiles: Mutex::new(VecDeque::new()),
        }
    }
}

impl TileCache {
    /// The stored bytes of a tile, holding at least its first `width` hashes if the store has
    /// them (callers check the length).
    pub(super) fn tile(
        &self,
        store: &dyn LogStore,
        level: u8,
        index: u64,
        width: u16,
    ) -> Result<Option<Arc<Vec<u8>>>, StoreError> {
        let full = width == TILE_WIDTH;
        let want = usize::from(width) * 32;
        if full && let Some(t) = self.tiles.lock().ok().and_then(|c| c.get(&(level, index))) {
            return Ok(Some(t));
        }
        if !full
            && let Ok(p) = self.partial_tiles.lock()
            && let Some((_, t)) = p
                .iter()
                .find(|(k, t)| *k == (level, index) && t.len() >= want)
        {
            return Ok(Some(t.clone()));
        }
        let Some(bytes) = store.tile(level, index)? else {
            return Ok(None);
        };
        let bytes = Arc::new(bytes);
        if bytes.len() == usize::from(TILE_WIDTH) * 32 {
            if let Ok(mut c) = self.tiles.lock() {
                c.put((level, index), bytes.clone());
            }
        } else if let Ok(mut p) = self.partial_tiles.lock() {
            p.retain(|(k, _)| *k != (level, index));
            if p.len() == CACHED_PARTIAL_TILES {
                p.pop_front();
            }
            p.push_back(((level, index), bytes.clone()));
        }
        Ok(Some(bytes))
    }
}

/// Reads decoded tiles through the cache (for leaf-hash lookups; proofs use [`ProofNodes`]).
pub(super) struct CachedTiles<'a> {
    pub(super) store: &'a dyn LogStore,
    pub(super) cache: &'a TileCache,
}

impl TileReader for CachedTiles<'_> {
    type Error = StoreError;

    fn read_tile(&mut self, tile: TileId) -> Result<Vec<Hash>, StoreError> {
        let Some(bytes) = self
            .cache
            .tile(self.store, tile.level, tile.index, tile.width)?
        else {
            return StoreTiles(self.store).read_tile(tile);
        };
        let want = usize::from(tile.width) * 32;
        let prefix = bytes.get(..want).ok_or_else(|| {
            StoreError::Corrupt(format!("{} is shorter than {want} bytes", tile.path()))
        })?;
        decode_hash_tile(prefix, tile.width).map_err(|e| StoreError::Corrupt(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_is_bounded_by_bytes() {
        let mut f = Fifo::new(100);
        for k in 0..10u64 {
            f.put(k, Arc::new(vec![0; 30]));
            assert!(f.bytes <= 100);
        }
        assert_eq!(f.map.len(), 3);
        assert!(f.get(&9).is_some() && f.get(&6).is_none());
        f.put(99, Arc::new(vec![0; 101])); // larger than the whole cache: not kept
        assert!(f.get(&99).is_none());
        f.put(9, Arc::new(vec![0; 50])); // already present: unchanged
        assert_eq!(f.bytes, 90);
    }
}
