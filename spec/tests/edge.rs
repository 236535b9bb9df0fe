//! The tiled right edge against the naive RFC 6962 tree (`common::mth`, from the RFC's
//! definitions): appending in random batches gives the naive root after every batch and exactly
//! the tiles, full and partial, that the naive tree has and the previous size did not, byte for
//! byte; an edge restored from stored tiles at any size continues the same way. Also the Go-made
//! tiles of the 70000-leaf tree, what an edge reads, and every failure.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeSet, HashMap};
use std::sync::OnceLock;

use common::*;
use proptest::prelude::*;
use sealtrail_spec::edge::{EdgeError, Extension, TiledEdge, extend};
use sealtrail_spec::hash::sha256;
use sealtrail_spec::tiles::{TileId, TilePath, TileReader, all_tiles, encode_hash_tile};
use sealtrail_spec::{EMPTY_ROOT, Hash, node_hash};

/// Leaves of the naive tree: past twice 65536, so batches cross level-1 tile boundaries (a full
/// level-1 tile covers 65536 leaves) once or twice.
const MAX_LEAVES: usize = 140_000;

/// The naive tree of [`MAX_LEAVES`] leaves.
struct Naive {
    leaves: Vec<Hash>,
    /// `levels[l][p]`: `mth` of the `256^l` leaves from `p * 256^l`, each computed from the leaves.
    levels: Vec<Vec<Hash>>,
}

fn naive() -> &'static Naive {
    static NAIVE: OnceLock<Naive> = OnceLock::new();
    NAIVE.get_or_init(|| {
        let leaves = leaf_hashes(MAX_LEAVES as u64);
        let mut levels = vec![leaves.clone()];
        let mut span = 256;
        while span <= leaves.len() {
            levels.push(leaves.chunks_exact(span).map(mth).collect());
            span *= 256;
        }
        Naive { leaves, levels }
    })
}

impl Naive {
    /// The hashes of tile `id` at its width.
    fn tile(&self, id: TileId) -> Vec<Hash> {
        let start = id.index as usize * 256;
        self.levels[usize::from(id.level)][start..start + usize::from(id.width)].to_vec()
    }

    /// The tiles of the tree of `size` leaves that `keep` selects, in `all_tiles` order.
    fn tiles(&self, size: usize, keep: impl Fn(&TileId) -> bool) -> Vec<(TileId, Vec<Hash>)> {
        all_tiles(size as u64)
            .into_iter()
            .filter(keep)
            .map(|id| (id, self.tile(id)))
            .collect()
    }

    /// `MTH` of the first `size` leaves: the RFC's recursion, taking the aligned `256^l`-leaf
    /// subtrees from `levels` so a root costs O(log n) hashes.
    fn root(&self, size: usize) -> Hash {
        if size == 0 {
            EMPTY_ROOT
        } else {
            self.mth_range(0, size)
        }
    }

    fn mth_range(&self, lo: usize, hi: usize) -> Hash {
        let n = hi - lo;
        for (l, level) in self.levels.iter().enumerate() {
            let span = 1usize << (8 * l);
            if n == span && lo.is_multiple_of(span) {
                return level[lo / span];
            }
        }
        let k = k_of(n);
        node_hash(&self.mth_range(lo, lo + k), &self.mth_range(lo + k, hi))
    }
}

fn bytes(tiles: &[(TileId, Vec<Hash>)]) -> Vec<(String, Vec<u8>)> {
    tiles
        .iter()
        .map(|(id, h)| (id.path(), encode_hash_tile(h)))
        .collect()
}

/// One append from `old` to `new` leaves, against the naive tree.
fn check_extension(ext: &Extension, old: usize, new: usize) -> Result<(), TestCaseError> {
    let n = naive();
    prop_assert_eq!(ext.old_size, old as u64);
    prop_assert_eq!(ext.new_size, new as u64);
    prop_assert_eq!(ext.root, n.root(new));
    prop_assert_eq!(ext.edge.size(), new as u64);
    prop_assert_eq!(ext.edge.root(), ext.root);
    // Exactly the tiles of the new tree that the old one did not have, in order, byte for byte.
    let before: BTreeSet<TileId> = all_tiles(old as u64).into_iter().collect();
    let want = n.tiles(new, |id| !before.contains(id));
    prop_assert_eq!(bytes(&ext.tiles), bytes(&want));
    // The edge holds the new tree's partial tiles.
    let partial: Vec<(TileId, Vec<Hash>)> = ext
        .edge
        .partial_tiles()
        .map(|(id, h)| (id, h.to_vec()))
        .collect();
    prop_assert_eq!(partial, n.tiles(new, |id| !id.is_full()));
    Ok(())
}

/// Appends leaves from `edge.size()` up to `total` in `batches` (then one batch with the rest),
/// checking every extension and writing its tiles to `store`. After each batch, the edge restored
/// from `store`, and the one restored from its own partial tiles, equal the carried one.
fn grow(
    mut edge: TiledEdge,
    batches: &[usize],
    total: usize,
    store: &mut MemTiles,
) -> Result<TiledEdge, TestCaseError> {
    let leaves = &naive().leaves;
    let mut size = edge.size() as usize;
    for b in batches.iter().copied().chain([usize::MAX]) {
        let end = size.saturating_add(b).min(total);
        let ext = edge.extend(&leaves[size..end]).unwrap();
        check_extension(&ext, size, end)?;
        for (id, hashes) in &ext.tiles {
            // What the store holds and what is written agree on the hashes both have.
            if let Some(prev) = store.tiles.get(&(id.level, id.index)) {
                let k = prev.len().min(hashes.len());
                prop_assert_eq!(&hashes[..k], &prev[..k], "{}", id.path());
            }
        }
        store.store(ext.tiles);
        let restored = TiledEdge::from_tiles(end as u64, &mut *store).unwrap();
        prop_assert_eq!(&restored, &ext.edge);
        let saved = ext
            .edge
            .partial_tiles()
            .map(|(id, h)| (id.level, h.to_vec()));
        let reloaded = TiledEdge::from_partial_tiles(end as u64, saved).unwrap();
        prop_assert_eq!(&reloaded, &ext.edge);
        edge = ext.edge;
        size = end;
        if size == total {
            break;
        }
    }
    Ok(edge)
}

/// Batch sizes: the tile-width edge cases, small and large random ones.
fn batch() -> impl Strategy<Value = usize> {
    prop_oneof![
        3 => prop::sample::select(vec![0usize, 1, 255, 256, 257]),
        3 => 0usize..1200,
        1 => 30_000usize..70_000,
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn appending_in_batches_builds_the_naive_tree(
        batches in prop::collection::vec(batch(), 1..24),
        restart in prop::collection::vec(batch(), 0..8),
        at in any::<prop::sample::Index>(),
    ) {
        let total = batches.iter().sum::<usize>().min(MAX_LEAVES);
        let mut store = MemTiles::default();
        let last = grow(TiledEdge::empty(), &batches, total, &mut store)?;
        prop_assert_eq!(last.size(), total as u64);
        // Everything written, the widest version of each tile kept, is the naive tree's tiles.
        let want: HashMap<(u8, u64), Vec<Hash>> = naive()
            .tiles(total, |_| true)
            .into_iter()
            .map(|(id, h)| ((id.level, id.index), h))
            .collect();
        prop_assert_eq!(&store.tiles, &want);
        // Restored at any size from the stored tiles (which are wider by now) and continued in
        // other batches: the same tiles and the same edge at the end.
        let from = at.index(total + 1) as u64;
        let restored = TiledEdge::from_tiles(from, &mut store).unwrap();
        let mut again = store.clone();
        prop_assert_eq!(grow(restored, &restart, total, &mut again)?, last);
        prop_assert_eq!(&again.tiles, &want);
    }
}

#[test]
fn batches_across_level_one_boundaries() {
    for batches in [
        &[65535, 1, 1][..],
        &[65536, 0, 65536, 1],
        &[65000, 1000, 65280, 255, 257, 1],
        &[255, 1, 256, 257, 65023, 255, 256, 257],
        &[131_071, 1],
    ] {
        let total = batches.iter().sum::<usize>();
        let mut store = MemTiles::default();
        let edge = grow(TiledEdge::empty(), batches, total, &mut store)
            .unwrap_or_else(|e| panic!("batches {batches:?}: {e}"));
        assert_eq!(edge.root(), mth(&naive().leaves[..total]), "{batches:?}");
    }
}

#[test]
fn every_size_to_600_one_leaf_at_a_time() {
    let mut store = MemTiles::default();
    let edge = grow(TiledEdge::empty(), &[1; 600], 600, &mut store).unwrap();
    assert_eq!(edge.root(), mth(&naive().leaves[..600]));
}

#[test]
fn tiles_of_70000_match_go() {
    let v = load("tiles_70000.json");
    let leaves = leaf_hashes(70_000);
    let mut written: HashMap<String, Vec<u8>> = HashMap::new();
    let mut edge = TiledEdge::empty();
    let mut at = 0;
    for b in [255, 1, 257, 64000, 1500, 255, 256, 3000, 476] {
        let ext = edge.extend(&leaves[at..at + b]).unwrap();
        for (id, hashes) in ext.tiles {
            written.insert(id.path(), encode_hash_tile(&hashes));
        }
        edge = ext.edge;
        at += b;
    }
    assert_eq!(edge.size(), 70_000);
    let partial: Vec<String> = edge.partial_tiles().map(|(id, _)| id.path()).collect();
    assert_eq!(
        partial,
        ["tile/0/273.p/112", "tile/1/001.p/17", "tile/2/000.p/1"]
    );
    let mut checked = BTreeSet::new();
    for case in v.as_array().unwrap() {
        let path = case["path"].as_str().unwrap();
        let TilePath::Hash(id) = TilePath::parse(path).unwrap() else {
            continue;
        };
        let bytes = &written[path];
        assert_eq!(bytes.len() as u64, u(&case["bytes"]), "{path}");
        assert_eq!(Hash(sha256(bytes)), hx(&case["sha256_hex"]), "{path}");
        if !id.is_full() {
            let held = edge.partial_tile(id.level).unwrap();
            assert_eq!((held.0, encode_hash_tile(held.1)), (id, bytes.clone()));
        }
        checked.insert(id);
    }
    assert_eq!(checked, all_tiles(70_000).into_iter().collect());
    let roots = load("roots.json");
    let root = roots
        .as_array()
        .unwrap()
        .iter()
        .find(|c| u(&c["size"]) == 70_000)
        .unwrap();
    assert_eq!(edge.root(), hx(&root["root_hex"]));
}

#[test]
fn restoring_reads_one_partial_tile_per_level_and_appending_reads_nothing() {
    let leaves = leaf_hashes(70_000);
    let (mut store, _) = MemTiles::build(&leaves[..69_999], &[69_999]);
    for (size, reads) in [
        (69_999, 3),
        (65_536, 1),
        (65_792, 2),
        (256, 1),
        (257, 2),
        (0, 0),
    ] {
        store.reads = 0;
        let edge = TiledEdge::from_tiles(size, &mut store).unwrap();
        assert_eq!(store.reads, reads, "size {size}");
        assert_eq!(edge.root(), mth(&leaves[..size as usize]), "size {size}");
    }
    // `TiledEdge::extend` takes no reader; the stateless `extend` reads what restoring reads.
    store.reads = 0;
    let ext = extend(69_999, &mut store, &leaves[69_999..]).unwrap();
    assert_eq!(store.reads, 3);
    assert_eq!(ext.tiles.len(), 1, "one leaf changes only tile/0/273.p/112");
    assert_eq!(ext.tiles[0].0.path(), "tile/0/273.p/112");
    assert_eq!(ext.root, mth(&leaves));
    // Nothing appended: no tiles, the same root and edge.
    let same = ext.edge.extend(&[]).unwrap();
    assert!(same.tiles.is_empty());
    assert_eq!((same.root, &same.edge), (ext.root, &ext.edge));
    let empty = TiledEdge::empty().extend(&[]).unwrap();
    assert_eq!((empty.root, empty.new_size), (EMPTY_ROOT, 0));
    assert_eq!(TiledEdge::empty().partial_tiles().count(), 0);
}

#[test]
fn reader_failures_and_short_tiles_are_reported() {
    let leaves = leaf_hashes(300);
    let (mut store, _) = MemTiles::build(&leaves, &[300]);
    let missing = extend(300, &mut MemTiles::default(), &leaves[..1]).unwrap_err();
    assert_eq!(
        missing,
        EdgeError::Reader {
            tile: TileId {
                level: 0,
                index: 1,
                width: 44
            },
            error: Missing("tile/0/001.p/44".into())
        }
    );
    // A tile reader that returns too few hashes is reported, not trusted.
    struct Short<'a>(&'a mut MemTiles);
    impl TileReader for Short<'_> {
        type Error = Missing;
        fn read_tile(&mut self, t: TileId) -> Result<Vec<Hash>, Missing> {
            let mut v = self.0.read_tile(t)?;
            v.pop();
            Ok(v)
        }
    }
    assert!(matches!(
        TiledEdge::from_tiles(300, Short(&mut store)),
        Err(EdgeError::Corrupt(TileId { level: 0, .. }, 43))
    ));
    assert!(extend(u64::MAX, &mut store, &leaves[..1]).is_err());
}

#[test]
fn saved_partial_tiles_must_be_exactly_those_of_the_size() {
    let leaves = leaf_hashes(70_000);
    let (mut store, _) = MemTiles::build(&leaves, &[70_000]);
    let edge = TiledEdge::from_tiles(70_000, &mut store).unwrap();
    let saved: Vec<(u8, Vec<Hash>)> = edge
        .partial_tiles()
        .map(|(id, h)| (id.level, h.to_vec()))
        .collect();
    assert_eq!(
        TiledEdge::from_partial_tiles(70_000, saved.clone()),
        Ok(edge)
    );
    // A missing level, a short tile, a level given twice, a level beyond the tree, a level
    // without a partial tile at this size.
    let without_1: Vec<_> = saved.iter().filter(|(l, _)| *l != 1).cloned().collect();
    assert!(matches!(
        TiledEdge::from_partial_tiles(70_000, without_1),
        Err(EdgeError::Corrupt(TileId { level: 1, .. }, 0))
    ));
    let mut short = saved.clone();
    short[0].1.pop();
    assert!(matches!(
        TiledEdge::from_partial_tiles(70_000, short),
        Err(EdgeError::Corrupt(TileId { level: 0, .. }, 111))
    ));
    let mut twice = saved.clone();
    twice.push(saved[2].clone());
    assert_eq!(
        TiledEdge::from_partial_tiles(70_000, twice),
        Err(EdgeError::Unexpected {
            level: 2,
            size: 70_000
        })
    );
    let mut beyond = saved.clone();
    beyond.push((3, vec![leaves[0]]));
    assert_eq!(
        TiledEdge::from_partial_tiles(70_000, beyond),
        Err(EdgeError::Unexpected {
            level: 3,
            size: 70_000
        })
    );
    assert_eq!(
        TiledEdge::from_partial_tiles(256, [(0, vec![leaves[0]])]),
        Err(EdgeError::Unexpected {
            level: 0,
            size: 256
        })
    );
    assert_eq!(TiledEdge::from_partial_tiles(0, []), Ok(TiledEdge::empty()));
}

#[test]
fn the_largest_tree_cannot_grow() {
    // Size 2^64 - 1: every level 0..=7 has a partial tile of 255 hashes.
    let h = leaf_hashes(1)[0];
    let edge = TiledEdge::from_partial_tiles(u64::MAX, (0..8).map(|l| (l, vec![h; 255]))).unwrap();
    assert_eq!(edge.partial_tiles().count(), 8);
    assert_eq!(edge.extend(&[h]), Err(EdgeError::Overflow));
    assert_eq!(edge.extend(&[]).unwrap().new_size, u64::MAX);
}
