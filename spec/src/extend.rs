//! Appending leaves to a tiled tree, Tessera-style: given the current size, a reader for the
//! stored hash tiles and the new leaf hashes, compute the new root and every hash tile that
//! changed. The caller writes the tiles (and the entry bundles, which it builds from its own
//! entry bytes with [`crate::tiles::encode_bundle`]).
//!
//! The only state that matters between appends is the [`RightEdge`]: for each level, the perfect
//! subtrees of that level's rightmost partial tile (O(log n) hashes). [`extend`] rebuilds it from
//! the stored partial tiles (re-hashing at most 255 hashes per level); a sequencer that keeps the
//! edge from the previous [`Extension`] calls [`extend_edge`] and hashes only new data. Either way a
//! call costs O(new leaves + log n) hashes and holds only the tiles it touches.

use crate::hash::Hash;
use crate::merkle::{PerfectStack, fold_range};
use crate::tiles::{TILE_WIDTH, TileId, TileReader, hashes_at_level, partial_width};

/// The outcome of an append.
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
    /// The right edge at `new_size`, for the next [`extend_edge`].
    pub edge: RightEdge,
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

/// The right edge of a tree: per level, the perfect subtrees of its rightmost partial tile.
/// Together they are the compact range `[0, size)`, which is all an append needs besides the
/// partial tiles' stored contents.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RightEdge {
    size: u64,
    /// `levels[l]` has pushed exactly `partial_width(size, l)` hashes (0 if none).
    levels: Vec<PerfectStack>,
}

impl RightEdge {
    /// The edge of the empty tree.
    pub fn empty() -> Self {
        RightEdge::default()
    }

    /// Rebuilds the edge of the tree of `size` leaves from its stored partial tiles.
    pub fn from_tiles<R: TileReader>(
        size: u64,
        tiles: &mut R,
    ) -> Result<Self, ExtendError<R::Error>> {
        let mut levels = Vec::new();
        let mut level = 0u8;
        while hashes_at_level(size, level) > 0 {
            let mut stack = PerfectStack::default();
            if let Some(w) = partial_width(size, level) {
                let index = hashes_at_level(size, level) / u64::from(TILE_WIDTH);
                for h in read_exact(tiles, level, index, w)? {
                    stack.push(h);
                }
            }
            levels.push(stack);
            level += 1;
        }
        Ok(RightEdge { size, levels })
    }

    /// The tree size this edge describes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// `MTH` of the tree: the edge folded from the top level (largest subtrees) down.
    pub fn root(&self) -> Hash {
        let nodes: Vec<Hash> = self
            .levels
            .iter()
            .rev()
            .flat_map(|s| s.hashes().iter().copied())
            .collect();
        fold_range(&nodes)
    }
}

/// Appends `leaves` (leaf hashes) to the tree of `old_size` leaves whose hash tiles `tiles` serves,
/// rebuilding the right edge from the stored partial tiles first. Returns the new root and every
/// changed tile. With no leaves, returns the current root and no tiles.
pub fn extend<R: TileReader>(
    old_size: u64,
    mut tiles: R,
    leaves: &[Hash],
) -> Result<Extension, ExtendError<R::Error>> {
    let edge = RightEdge::from_tiles(old_size, &mut tiles)?;
    extend_edge(&edge, tiles, leaves)
}

/// Appends `leaves` to the tree whose right edge is `edge`. `tiles` is read only for the stored
/// prefix of partial tiles that change (at most one tile per level); no stored hash is re-hashed.
pub fn extend_edge<R: TileReader>(
    edge: &RightEdge,
    mut tiles: R,
    leaves: &[Hash],
) -> Result<Extension, ExtendError<R::Error>> {
    let old_size = edge.size;
    let added = u64::try_from(leaves.len()).map_err(|_| ExtendError::Overflow)?;
    let new_size = old_size.checked_add(added).ok_or(ExtendError::Overflow)?;
    let full = usize::from(TILE_WIDTH);
    let mut changed = Vec::new();
    let mut new_levels = Vec::new();
    // Hashes appended at the current level: new leaves, then roots of newly completed tiles.
    let mut incoming: Vec<Hash> = leaves.to_vec();
    let mut level: u8 = 0;
    while hashes_at_level(new_size, level) > 0 {
        let mut stack = edge
            .levels
            .get(usize::from(level))
            .cloned()
            .unwrap_or_default();
        if !incoming.is_empty() {
            let first_tile = hashes_at_level(old_size, level) / u64::from(TILE_WIDTH);
            let mut contents = match partial_width(old_size, level) {
                Some(w) => read_exact(&mut tiles, level, first_tile, w)?,
                None => Vec::new(),
            };
            let mut index = first_tile;
            let mut completed = Vec::new();
            for h in incoming {
                contents.push(h);
                stack.push(h);
                if contents.len() == full {
                    completed.push(stack.root());
                    stack = PerfectStack::default();
                    changed.push((
                        tile_id(level, index, TILE_WIDTH),
                        std::mem::take(&mut contents),
                    ));
                    index += 1;
                }
            }
            if !contents.is_empty() {
                let w = u16::try_from(contents.len()).map_err(|_| ExtendError::Overflow)?;
                changed.push((tile_id(level, index, w), contents));
            }
            incoming = completed;
        }
        new_levels.push(stack);
        level += 1;
    }
    let edge = RightEdge {
        size: new_size,
        levels: new_levels,
    };
    Ok(Extension {
        old_size,
        new_size,
        root: edge.root(),
        tiles: changed,
        edge,
    })
}

fn tile_id(level: u8, index: u64, width: u16) -> TileId {
    TileId {
        level,
        index,
        width,
    }
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
