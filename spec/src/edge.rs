//! The right edge of a tiled tree and appending to it: Tessera's `Integrate`, with the state it
//! reads kept in memory. Given the edge of a tree of `size` leaves and a batch of new leaf hashes,
//! [`TiledEdge::extend`] computes the new root and every hash tile to write; the caller writes the
//! tiles (and the entry bundles, which it builds from its own entry bytes with
//! [`crate::tiles::encode_bundle`]). Out of scope: storing anything, and deciding when a new edge
//! counts (a caller adopts [`Extension::edge`] only once the tiles it returned are durable).
//!
//! A [`TiledEdge`] holds, for each level of tiles (height 8, tlog-tiles), the hashes of that
//! level's rightmost partial tile and the perfect subtrees over them. The subtrees of all levels
//! together are the compact range `[0, size)`, so they give the root; the partial tiles are what
//! an append extends. So an append reads nothing and hashes only new data: O(new leaves + log n)
//! hashes. An edge comes from storage once, through a [`TileReader`] ([`TiledEdge::from_tiles`]
//! reads one partial tile per level) or from partial tiles saved by the caller
//! ([`TiledEdge::from_partial_tiles`]); [`extend`] does the read and the append in one call for a
//! caller that keeps no state.
//!
//! Invariants of an edge of `size` leaves (every constructor establishes them, `extend` keeps them;
//! nothing else can change an edge):
//! - it has one level for each level that holds a hash (`hashes_at_level(size, l) > 0`), no more;
//! - level `l`'s tile holds exactly `partial_width(size, l)` hashes (none when the level has no
//!   partial tile): the level's hashes from the last multiple of 256 to its end, which are the
//!   contents of the stored tile `tile/<l>/<n / 256>.p/<w>` for `n = hashes_at_level(size, l)`;
//! - level `l`'s subtrees are that tile's hashes pushed in order into a [`PerfectStack`];
//! - memory is at most 255 hashes per level (at most 8 levels), whatever the size.
//!
//! Every extension returns exactly the tiles of the new tree that are not tiles of the old one
//! (as [`all_tiles`](crate::tiles::all_tiles) enumerates them): full tiles completed by the batch,
//! and each changed partial tile at its new width, a stored partial tile only ever growing by
//! appending.

use std::collections::BTreeMap;
use std::convert::Infallible;

use crate::hash::Hash;
use crate::merkle::{PerfectStack, fold_range};
use crate::tiles::{TILE_WIDTH, TileId, TileReader, hashes_at_level, partial_width};

/// Hashes in a full tile, as a length.
const FULL: usize = TILE_WIDTH as usize;

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
    /// The edge at `new_size`, for the next append.
    pub edge: TiledEdge,
}

/// Why an edge could not be restored or extended. Nothing was computed; the caller writes nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EdgeError<E> {
    /// The tile reader failed.
    #[error("reading {}: {error}", tile.path())]
    Reader {
        /// The tile being read.
        tile: TileId,
        /// The reader's error.
        error: E,
    },
    /// A tile has the wrong number of hashes (a saved partial tile that is missing has 0).
    #[error("tile {tile} has {got} hashes, expected {want}", tile = .0.path(), got = .1, want = .0.width)]
    Corrupt(TileId, usize),
    /// A saved partial tile was given for a level that has none at this size.
    #[error("a partial tile was given for level {level}, which has none at size {size}")]
    Unexpected {
        /// The level.
        level: u8,
        /// The tree size.
        size: u64,
    },
    /// The new size does not fit in 64 bits.
    #[error("tree size would overflow")]
    Overflow,
}

/// One level of the edge: its rightmost partial tile and the perfect subtrees over it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Level {
    /// The partial tile's hashes (empty if the level has none); never 256.
    tile: Vec<Hash>,
    /// `tile` pushed in order.
    stack: PerfectStack,
}

impl Level {
    fn from_tile(tile: Vec<Hash>) -> Self {
        let mut stack = PerfectStack::default();
        for h in &tile {
            stack.push(*h);
        }
        Level { tile, stack }
    }

    /// Appends `incoming` to this level, whose partial tile is tile `index`. Pushes every tile
    /// that changes onto `changed` and returns the roots of the tiles it completed: the next
    /// level's incoming hashes.
    fn append(
        &mut self,
        level: u8,
        mut index: u64,
        incoming: &[Hash],
        changed: &mut Vec<(TileId, Vec<Hash>)>,
    ) -> Vec<Hash> {
        let mut completed = Vec::new();
        for h in incoming {
            self.tile.push(*h);
            self.stack.push(*h);
            if self.tile.len() == FULL {
                completed.push(self.stack.root());
                self.stack = PerfectStack::default();
                let full = std::mem::replace(&mut self.tile, Vec::with_capacity(FULL));
                changed.push((tile_id(level, index, TILE_WIDTH), full));
                index += 1;
            }
        }
        if !incoming.is_empty() && !self.tile.is_empty() {
            // Below 256 here: a tile is moved out as soon as it is full.
            let width = u16::try_from(self.tile.len()).unwrap_or(TILE_WIDTH);
            changed.push((tile_id(level, index, width), self.tile.clone()));
        }
        completed
    }
}

/// The right edge of a tree stored as hash tiles: per level, the rightmost partial tile and the
/// perfect subtrees over it (see the module documentation for the invariants).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TiledEdge {
    size: u64,
    /// `levels[l]` for every level `l` with `hashes_at_level(size, l) > 0`.
    levels: Vec<Level>,
}

impl TiledEdge {
    /// The edge of the empty tree.
    pub fn empty() -> Self {
        TiledEdge::default()
    }

    /// Restores the edge of the tree of `size` leaves by reading its partial tiles, one per
    /// level, from `tiles` (re-hashing at most 255 hashes per level).
    pub fn from_tiles<R: TileReader>(size: u64, mut tiles: R) -> Result<Self, EdgeError<R::Error>> {
        let mut levels = Vec::new();
        for (_, id) in partial_ids(size) {
            let tile = match id {
                Some(id) => read_exact(&mut tiles, id)?,
                None => Vec::new(),
            };
            levels.push(Level::from_tile(tile));
        }
        Ok(TiledEdge { size, levels })
    }

    /// Restores the edge of the tree of `size` leaves from its partial tiles as
    /// [`partial_tiles`](Self::partial_tiles) gave them (level and hashes), for a caller that
    /// saves its own progress. The tiles must be exactly those of that size: one per level that
    /// has a partial tile, at its width, and no other.
    pub fn from_partial_tiles<I>(size: u64, tiles: I) -> Result<Self, EdgeError<Infallible>>
    where
        I: IntoIterator<Item = (u8, Vec<Hash>)>,
    {
        let mut given = BTreeMap::new();
        for (level, hashes) in tiles {
            if given.insert(level, hashes).is_some() {
                return Err(EdgeError::Unexpected { level, size });
            }
        }
        let mut levels = Vec::new();
        for (level, id) in partial_ids(size) {
            let tile = given.remove(&level).unwrap_or_default();
            match id {
                Some(id) if tile.len() != usize::from(id.width) => {
                    return Err(EdgeError::Corrupt(id, tile.len()));
                }
                None if !tile.is_empty() => return Err(EdgeError::Unexpected { level, size }),
                _ => levels.push(Level::from_tile(tile)),
            }
        }
        match given.into_keys().next() {
            Some(level) => Err(EdgeError::Unexpected { level, size }),
            None => Ok(TiledEdge { size, levels }),
        }
    }

    /// The tree size this edge describes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// `MTH` of the tree: the subtrees folded from the top level (largest subtrees) down.
    pub fn root(&self) -> Hash {
        let nodes: Vec<Hash> = self
            .levels
            .iter()
            .rev()
            .flat_map(|l| l.stack.hashes().iter().copied())
            .collect();
        fold_range(&nodes)
    }

    /// The partial tile of `level` and its hashes, if the level has one at this size.
    pub fn partial_tile(&self, level: u8) -> Option<(TileId, &[Hash])> {
        let tile = &self.levels.get(usize::from(level))?.tile;
        let width = u16::try_from(tile.len()).ok().filter(|w| *w > 0)?;
        let index = hashes_at_level(self.size, level) / u64::from(TILE_WIDTH);
        Some((tile_id(level, index, width), tile))
    }

    /// Every partial tile of the tree and its hashes, level by level: with the full tiles
    /// written before, these are all the tree's tiles (`all_tiles(size)`).
    pub fn partial_tiles(&self) -> impl Iterator<Item = (TileId, &[Hash])> + '_ {
        (0..=crate::tiles::MAX_LEVEL)
            .take(self.levels.len())
            .filter_map(|level| self.partial_tile(level))
    }

    /// Appends `leaves` (leaf hashes). Returns the new root, every tile that changed and the edge
    /// at the new size; `self` is unchanged, so a caller can drop the result if writing the tiles
    /// fails. With no leaves: the current root and no tiles.
    pub fn extend(&self, leaves: &[Hash]) -> Result<Extension, EdgeError<Infallible>> {
        let added = u64::try_from(leaves.len()).map_err(|_| EdgeError::Overflow)?;
        let new_size = self.size.checked_add(added).ok_or(EdgeError::Overflow)?;
        let mut changed = Vec::new();
        let mut levels = Vec::new();
        // Roots of the tiles completed at the level below: what the current level appends.
        let mut carried: Vec<Hash> = Vec::new();
        let mut level: u8 = 0;
        while hashes_at_level(new_size, level) > 0 {
            let old = self.levels.get(usize::from(level));
            let incoming: &[Hash] = if level == 0 { leaves } else { &carried };
            if incoming.is_empty() {
                // Nothing reaches this level, so neither it nor any level above changes.
                levels.push(old.cloned().unwrap_or_default());
            } else {
                let mut next = Level {
                    tile: Vec::with_capacity(FULL),
                    stack: old.map(|l| l.stack.clone()).unwrap_or_default(),
                };
                next.tile
                    .extend_from_slice(old.map_or(&[][..], |l| &l.tile));
                let index = hashes_at_level(self.size, level) / u64::from(TILE_WIDTH);
                let completed = next.append(level, index, incoming, &mut changed);
                levels.push(next);
                carried = completed;
            }
            level += 1;
        }
        let edge = TiledEdge {
            size: new_size,
            levels,
        };
        Ok(Extension {
            old_size: self.size,
            new_size,
            root: edge.root(),
            tiles: changed,
            edge,
        })
    }
}

/// Appends `leaves` (leaf hashes) to the tree of `old_size` leaves whose hash tiles `tiles`
/// serves: restores the edge from the stored partial tiles, then extends it. For a caller that
/// keeps no edge between appends; one that does calls [`TiledEdge::extend`] and reads nothing.
pub fn extend<R: TileReader>(
    old_size: u64,
    tiles: R,
    leaves: &[Hash],
) -> Result<Extension, EdgeError<R::Error>> {
    TiledEdge::from_tiles(old_size, tiles)?
        .extend(leaves)
        .map_err(|e| match e {
            EdgeError::Reader { error, .. } => match error {},
            EdgeError::Corrupt(id, got) => EdgeError::Corrupt(id, got),
            EdgeError::Unexpected { level, size } => EdgeError::Unexpected { level, size },
            EdgeError::Overflow => EdgeError::Overflow,
        })
}

/// Each level of the tree of `size` leaves, with its partial tile if it has one.
fn partial_ids(size: u64) -> impl Iterator<Item = (u8, Option<TileId>)> {
    (0..=crate::tiles::MAX_LEVEL)
        .take_while(move |level| hashes_at_level(size, *level) > 0)
        .map(move |level| {
            let index = hashes_at_level(size, level) / u64::from(TILE_WIDTH);
            let id = partial_width(size, level).map(|width| tile_id(level, index, width));
            (level, id)
        })
}

fn tile_id(level: u8, index: u64, width: u16) -> TileId {
    TileId {
        level,
        index,
        width,
    }
}

fn read_exact<R: TileReader>(tiles: &mut R, id: TileId) -> Result<Vec<Hash>, EdgeError<R::Error>> {
    let hashes = tiles
        .read_tile(id)
        .map_err(|e| EdgeError::Reader { tile: id, error: e })?;
    if hashes.len() != usize::from(id.width) {
        return Err(EdgeError::Corrupt(id, hashes.len()));
    }
    Ok(hashes)
}
