//! Appending leaves to a tiled tree, Tessera-style: given the current size, a reader for the
//! stored hash tiles and the new leaf hashes, compute the new root and every hash tile that
//! changed. The caller writes the tiles (and the entry bundles, which it builds from its own
//! entry bytes with [`crate::tiles::encode_bundle`]).
//!
//! Cost: every new hash is hashed into its tile once, and each level's rightmost partial tile is
//! read and re-hashed once (at most 255 hashes per level), so a call costs O(new leaves + log n)
//! hashes and holds only the tiles it touches, never the whole tree.

use crate::hash::Hash;
use crate::merkle::PerfectStack;
use crate::tiles::{TILE_WIDTH, TileId, TileReader, hashes_at_level, partial_width};

/// The outcome of [`extend`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extension {
    /// The tree size before.
    pub old_size: u64,
    /// The tree size after.
    pub new_size: u64,
    /// `MTH` of the first `new_size` leaves.
    pub root: Hash,
    /// Every hash tile whose contents changed, with its full contents at `new_size`, level by
    /// level and left to right. Partial tiles appear at their new width.
    pub tiles: Vec<(TileId, Vec<Hash>)>,
}

/// Why an extension failed. Nothing was computed; the caller writes nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtendError<E> {
    /// The tile reader failed.
    #[error("reading {}: {error}", tile.path())]
    Reader {
        /// The tile being read.
        tile: TileId,
        /// The reader's error.
        error: E,
    },
    /// The tile reader returned the wrong number of hashes for a tile.
    #[error("stored tile {tile} has {got} hashes, expected {want}", tile = .0.path(), got = .1, want = .0.width)]
    Corrupt(TileId, usize),
    /// The new size does not fit in 64 bits.
    #[error("tree size would overflow")]
    Overflow,
}

/// Appends `leaves` (leaf hashes) to the tree of `old_size` leaves whose hash tiles `tiles` serves.
/// Returns the new root and every changed tile. With no leaves, returns the current root and no
/// tiles.
pub fn extend<R: TileReader>(
    old_size: u64,
    mut tiles: R,
    leaves: &[Hash],
) -> Result<Extension, ExtendError<R::Error>> {
    let added = u64::try_from(leaves.len()).map_err(|_| ExtendError::Overflow)?;
    let new_size = old_size.checked_add(added).ok_or(ExtendError::Overflow)?;
    let width = u64::from(TILE_WIDTH);
    let mut changed = Vec::new();
    // Per level, the perfect subtrees of the rightmost partial tile: the right edge of the tree.
    let mut edge: Vec<Vec<Hash>> = Vec::new();
    // Hashes appended at the current level: new leaves, then roots of newly completed tiles.
    let mut incoming: Vec<Hash> = leaves.to_vec();
    let mut level: u8 = 0;
    while hashes_at_level(new_size, level) > 0 {
        let old_count = hashes_at_level(old_size, level);
        let first_tile = old_count / width;
        // The stored prefix of the first tile that changes (or that feeds the root).
        let stored = match partial_width(old_size, level) {
            Some(w) => read_exact(&mut tiles, level, first_tile, w)?,
            None => Vec::new(),
        };
        let mut completed = Vec::new();
        let mut level_edge = Vec::new();
        if incoming.is_empty() {
            // Nothing new at this level: only its partial tile's shape feeds the root.
            level_edge = stack_of(&stored).hashes().to_vec();
        } else {
            let mut current = stored;
            let mut index = first_tile;
            for h in incoming {
                current.push(h);
                if current.len() == usize::from(TILE_WIDTH) {
                    completed.push(stack_of(&current).root());
                    changed.push((
                        tile_id(level, index, TILE_WIDTH),
                        std::mem::take(&mut current),
                    ));
                    index += 1;
                }
            }
            if !current.is_empty() {
                level_edge = stack_of(&current).hashes().to_vec();
                let w = u16::try_from(current.len()).map_err(|_| ExtendError::Overflow)?;
                changed.push((tile_id(level, index, w), current));
            }
        }
        edge.push(level_edge);
        incoming = completed;
        level += 1;
    }
    // The root folds the right edge from the top level (largest subtrees) down.
    let mut root_stack: Vec<Hash> = edge.into_iter().rev().flatten().collect();
    let root = match root_stack.pop() {
        None => crate::hash::EMPTY_ROOT,
        Some(last) => root_stack
            .iter()
            .rev()
            .fold(last, |acc, left| crate::hash::node_hash(left, &acc)),
    };
    Ok(Extension {
        old_size,
        new_size,
        root,
        tiles: changed,
    })
}

fn tile_id(level: u8, index: u64, width: u16) -> TileId {
    TileId {
        level,
        index,
        width,
    }
}

fn stack_of(hashes: &[Hash]) -> PerfectStack {
    let mut s = PerfectStack::default();
    for h in hashes {
        s.push(*h);
    }
    s
}

fn read_exact<R: TileReader>(
    tiles: &mut R,
    level: u8,
    index: u64,
    width: u16,
) -> Result<Vec<Hash>, ExtendError<R::Error>> {
    let id = tile_id(level, index, width);
    let hashes = tiles
        .read_tile(id)
        .map_err(|e| ExtendError::Reader { tile: id, error: e })?;
    if hashes.len() != usize::from(width) {
        return Err(ExtendError::Corrupt(id, hashes.len()));
    }
    Ok(hashes)
}
