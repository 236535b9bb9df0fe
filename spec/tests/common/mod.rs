//! Helpers shared by the spec integration tests: the Go-made vectors in `tests/vectors/`, the naive
//! RFC 6962 tree hash, and an in-memory tile store.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::collections::HashMap;
use std::path::PathBuf;

use sealtrail_spec::tiles::{TileId, TileReader};
use sealtrail_spec::{EMPTY_ROOT, Hash, node_hash};

/// `spec/tests/vectors/`: the Go-made vectors, kept in the repository (see their README).
pub fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

pub fn load(name: &str) -> serde_json::Value {
    let path = vectors_dir().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading vector file {}: {e}", path.display()));
    serde_json::from_str(&text).expect("vector JSON")
}

pub fn hx(v: &serde_json::Value) -> Hash {
    Hash::from_hex(v.as_str().expect("hex string")).expect("hex hash")
}

pub fn hashes(v: &serde_json::Value) -> Vec<Hash> {
    v.as_array().expect("array").iter().map(hx).collect()
}

pub fn u(v: &serde_json::Value) -> u64 {
    v.as_u64().expect("integer")
}

/// Leaf `i` of the vector trees: the ASCII string `leaf-<i>` (vectors/meta.json).
pub fn leaf_data(i: u64) -> Vec<u8> {
    format!("leaf-{i}").into_bytes()
}

pub fn leaf_hashes(n: u64) -> Vec<Hash> {
    (0..n)
        .map(|i| sealtrail_spec::leaf_hash(&leaf_data(i)))
        .collect()
}

// ---- Naive RFC 6962 section 2.1, straight from the definitions ----

/// The largest power of two smaller than `n` (`n >= 2`), the RFC's `k`.
pub fn k_of(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// `MTH(D[n])`, recursively.
pub fn mth(d: &[Hash]) -> Hash {
    match d.len() {
        0 => EMPTY_ROOT,
        1 => d[0],
        n => {
            let k = k_of(n);
            node_hash(&mth(&d[..k]), &mth(&d[k..]))
        }
    }
}

/// Hash tiles in memory, keeping the widest version of each (as a server would).
#[derive(Debug, Default, Clone)]
pub struct MemTiles {
    pub tiles: HashMap<(u8, u64), Vec<Hash>>,
    pub reads: usize,
}

impl MemTiles {
    pub fn store(&mut self, changed: Vec<(TileId, Vec<Hash>)>) {
        for (id, hashes) in changed {
            assert_eq!(hashes.len(), usize::from(id.width), "tile {}", id.path());
            self.tiles.insert((id.level, id.index), hashes);
        }
    }

    /// Builds a tree of `leaves` by extending in the given batch sizes.
    pub fn build(leaves: &[Hash], batches: &[usize]) -> (Self, Hash) {
        let mut store = MemTiles::default();
        let mut size = 0usize;
        let mut root = sealtrail_spec::EMPTY_ROOT;
        for &b in batches.iter().chain(std::iter::once(&usize::MAX)) {
            let end = size.saturating_add(b).min(leaves.len());
            let ext = sealtrail_spec::edge::extend(size as u64, &mut store, &leaves[size..end])
                .expect("extend");
            root = ext.root;
            store.store(ext.tiles);
            size = end;
            if size == leaves.len() {
                break;
            }
        }
        (store, root)
    }
}

#[derive(Debug, PartialEq, Eq)]
pub struct Missing(pub String);

impl TileReader for MemTiles {
    type Error = Missing;

    fn read_tile(&mut self, tile: TileId) -> Result<Vec<Hash>, Missing> {
        self.reads += 1;
        let t = self
            .tiles
            .get(&(tile.level, tile.index))
            .ok_or_else(|| Missing(tile.path()))?;
        t.get(..usize::from(tile.width))
            .map(<[Hash]>::to_vec)
            .ok_or_else(|| Missing(format!("{} (have {})", tile.path(), t.len())))
    }
}
