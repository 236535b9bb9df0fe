//! C2SP tlog-tiles: tile coordinates, the `tile/...` paths (strict parsing, canonical
//! formatting), partial-tile widths for a tree size, and the byte encodings of hash tiles and entry
//! bundles. Also [`TileHashReader`], which serves Merkle nodes out of hash tiles so proofs can be
//! built from stored tiles.
//!
//! Out of scope: fetching or storing tiles (callers supply a [`TileReader`]), and which partial
//! tiles a client may request (a client must only ask for those implied by a verified checkpoint).
//! Tile height is fixed at 8 ([`TILE_HEIGHT`]), as tlog-tiles requires.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::fmt;

use crate::hash::{HASH_SIZE, Hash};
use crate::merkle::{HashReader, Node, tree_hash};
use crate::text::parse_decimal;

/// Tile height: each tile holds one level of `2^8` hashes (tlog-tiles).
pub const TILE_HEIGHT: u8 = 8;
/// Hashes (or entries) in a full tile.
pub const TILE_WIDTH: u16 = 256;
/// Highest level a tile path may name (tlog-tiles: `<L>` is 0 to 63).
pub const MAX_LEVEL: u8 = 63;
/// Largest entry an entry bundle can hold: its length prefix is a big-endian `u16`.
pub const MAX_ENTRY_SIZE: usize = u16::MAX as usize;

/// A hash tile: level `level`, position `index`, holding the first `width` (1..=256) hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TileId {
    /// Level; level 0 holds leaf hashes.
    pub level: u8,
    /// Position of the tile within its level.
    pub index: u64,
    /// Hashes present: 256 for a full tile, 1..=255 for a partial one.
    pub width: u16,
}

/// An entry bundle: position `index`, holding the first `width` (1..=256) entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BundleId {
    /// Position of the bundle: it starts at entry `index * 256`.
    pub index: u64,
    /// Entries present: 256 for a full bundle.
    pub width: u16,
}

/// Anything a `tile/...` path can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TilePath {
    /// `tile/<L>/<N>[.p/<W>]`
    Hash(TileId),
    /// `tile/entries/<N>[.p/<W>]`
    Entries(BundleId),
}

/// Why a tile path, tile or bundle was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TileError {
    /// The path is not a canonical tlog-tiles path.
    #[error("malformed tile path {0:?}")]
    Path(String),
    /// A hash tile's byte length is not `32 * width`.
    #[error("hash tile has {got} bytes, expected {want}")]
    TileLength {
        /// Bytes present.
        got: usize,
        /// Bytes expected.
        want: usize,
    },
    /// An entry bundle is truncated, or has more or fewer entries than expected.
    #[error("malformed entry bundle: {0}")]
    Bundle(&'static str),
    /// An entry too large for a bundle's 16-bit length prefix.
    #[error("entry of {0} bytes exceeds the {MAX_ENTRY_SIZE}-byte bundle limit")]
    EntryTooLarge(usize),
}

impl TileId {
    /// Whether this is a full tile (no `.p/` suffix).
    pub fn is_full(&self) -> bool {
        self.width == TILE_WIDTH
    }

    /// The canonical `tile/<L>/<N>[.p/<W>]` path.
    pub fn path(&self) -> String {
        format!(
            "tile/{}/{}{}",
            self.level,
            encode_index(self.index),
            width_suffix(self.width)
        )
    }
}

impl BundleId {
    /// Whether this is a full bundle.
    pub fn is_full(&self) -> bool {
        self.width == TILE_WIDTH
    }

    /// The canonical `tile/entries/<N>[.p/<W>]` path.
    pub fn path(&self) -> String {
        format!(
            "tile/entries/{}{}",
            encode_index(self.index),
            width_suffix(self.width)
        )
    }

    /// First entry index in the bundle.
    pub fn start(&self) -> u64 {
        self.index * u64::from(TILE_WIDTH)
    }
}

impl fmt::Display for TilePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TilePath::Hash(t) => f.write_str(&t.path()),
            TilePath::Entries(b) => f.write_str(&b.path()),
        }
    }
}

fn width_suffix(width: u16) -> String {
    if width == TILE_WIDTH {
        String::new()
    } else {
        format!(".p/{width}")
    }
}

/// Encodes a tile index as tlog-tiles path elements: base-1000 groups of three digits, every
/// group but the last prefixed with `x` (`1234067` is `x001/x234/067`).
pub fn encode_index(mut n: u64) -> String {
    let mut s = format!("{:03}", n % 1000);
    while n >= 1000 {
        n /= 1000;
        s = format!("x{:03}/{s}", n % 1000);
    }
    s
}

impl TilePath {
    /// Parses a path relative to the log prefix (`tile/0/x001/234`, `tile/entries/000.p/5`),
    /// accepting only the canonical spelling: the one [`TilePath`]'s `Display` writes back.
    pub fn parse(path: &str) -> Result<Self, TileError> {
        let err = || TileError::Path(path.chars().take(200).collect());
        let rest = path.strip_prefix("tile/").ok_or_else(err)?;
        let (level, rest) = rest.split_once('/').ok_or_else(err)?;
        let (index_part, width) = match rest.split_once(".p/") {
            Some((i, w)) => {
                let w = parse_decimal(w).ok_or_else(err)?;
                if !(1..u64::from(TILE_WIDTH)).contains(&w) {
                    return Err(err());
                }
                (i, u16::try_from(w).map_err(|_| err())?)
            }
            None => (rest, TILE_WIDTH),
        };
        let index = decode_index(index_part).ok_or_else(err)?;
        let parsed = if level == "entries" {
            TilePath::Entries(BundleId { index, width })
        } else {
            let level = parse_decimal(level)
                .and_then(|l| u8::try_from(l).ok())
                .filter(|l| *l <= MAX_LEVEL)
                .ok_or_else(err)?;
            TilePath::Hash(TileId {
                level,
                index,
                width,
            })
        };
        // Canonical form only (rejects `x000/001`, redundant `x` groups and the like).
        if parsed.to_string() != path {
            return Err(err());
        }
        Ok(parsed)
    }
}

fn decode_index(s: &str) -> Option<u64> {
    let mut n: u64 = 0;
    let mut groups = s.split('/').peekable();
    while let Some(g) = groups.next() {
        let last = groups.peek().is_none();
        let digits = if last { g } else { g.strip_prefix('x')? };
        if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let v: u64 = digits.parse().ok()?;
        n = n.checked_mul(1000)?.checked_add(v)?;
    }
    Some(n)
}

/// Number of hashes at `level` in a tree of `size` leaves: `floor(size / 256^level)`.
pub fn hashes_at_level(size: u64, level: u8) -> u64 {
    let shift = u32::from(level) * u32::from(TILE_HEIGHT);
    size.checked_shr(shift).unwrap_or(0)
}

/// Width of the rightmost tile at `level` for tree `size`, or `None` when that level has no
/// partial tile (`W = floor(size / 256^level) mod 256` is 0).
pub fn partial_width(size: u64, level: u8) -> Option<u16> {
    let w = u16::try_from(hashes_at_level(size, level) % u64::from(TILE_WIDTH)).ok()?;
    (w > 0).then_some(w)
}

/// The tile at `level` holding hash position `pos`, with the width it has in tree `size`
/// (full if the tree covers the whole tile). `None` if `pos` is not below the level's count.
pub fn tile_for(size: u64, level: u8, pos: u64) -> Option<TileId> {
    let count = hashes_at_level(size, level);
    if pos >= count {
        return None;
    }
    let index = pos / u64::from(TILE_WIDTH);
    let width = if index < count / u64::from(TILE_WIDTH) {
        TILE_WIDTH
    } else {
        u16::try_from(count % u64::from(TILE_WIDTH)).ok()?
    };
    Some(TileId {
        level,
        index,
        width,
    })
}

/// Every hash tile of a tree of `size` leaves, level by level, as a tlog-tiles server serves
/// them (full tiles plus the rightmost partial tile of each level).
pub fn all_tiles(size: u64) -> Vec<TileId> {
    let mut out = Vec::new();
    for level in 0..=MAX_LEVEL {
        let count = hashes_at_level(size, level);
        if count == 0 {
            break;
        }
        let full = count / u64::from(TILE_WIDTH);
        out.extend((0..full).map(|index| TileId {
            level,
            index,
            width: TILE_WIDTH,
        }));
        if let Some(width) = partial_width(size, level) {
            out.push(TileId {
                level,
                index: full,
                width,
            });
        }
    }
    out
}

/// Every entry bundle of a tree of `size` leaves.
pub fn all_bundles(size: u64) -> Vec<BundleId> {
    bundles_between(0, size)
}

/// The entry bundles that change when the tree grows from `old` to `new` leaves, with their
/// widths at `new`.
pub fn bundles_between(old: u64, new: u64) -> Vec<BundleId> {
    let w = u64::from(TILE_WIDTH);
    if new <= old {
        return Vec::new();
    }
    let first = old / w;
    let last = (new - 1) / w;
    (first..=last)
        .filter_map(|index| {
            let end = ((index + 1) * w).min(new);
            Some(BundleId {
                index,
                width: u16::try_from(end - index * w).ok()?,
            })
        })
        .collect()
}

/// The bytes of a hash tile: the hashes concatenated.
pub fn encode_hash_tile(hashes: &[Hash]) -> Vec<u8> {
    hashes.iter().flat_map(|h| h.0).collect()
}

/// Splits a hash tile into hashes, insisting on exactly `width` of them.
pub fn decode_hash_tile(bytes: &[u8], width: u16) -> Result<Vec<Hash>, TileError> {
    let want = usize::from(width) * HASH_SIZE;
    if bytes.len() != want {
        return Err(TileError::TileLength {
            got: bytes.len(),
            want,
        });
    }
    Ok(bytes
        .chunks_exact(HASH_SIZE)
        .filter_map(|c| Hash::from_slice(c).ok())
        .collect())
}

/// Encodes entries as a bundle: each as a big-endian `u16` length and its bytes.
pub fn encode_bundle<E: AsRef<[u8]>>(entries: &[E]) -> Result<Vec<u8>, TileError> {
    let total: usize = entries.iter().map(|e| 2 + e.as_ref().len()).sum();
    let mut out = Vec::with_capacity(total);
    for e in entries {
        let e = e.as_ref();
        let len = u16::try_from(e.len()).map_err(|_| TileError::EntryTooLarge(e.len()))?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(e);
    }
    Ok(out)
}

/// Splits a bundle into entries. With `Some(width)`, the bundle must hold exactly that many.
/// Truncated records and trailing bytes are errors.
pub fn decode_bundle(bytes: &[u8], width: Option<u16>) -> Result<Vec<&[u8]>, TileError> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let (len, tail) = rest
            .split_first_chunk::<2>()
            .ok_or(TileError::Bundle("truncated length prefix"))?;
        let len = usize::from(u16::from_be_bytes(*len));
        if tail.len() < len {
            return Err(TileError::Bundle("truncated entry"));
        }
        let (entry, tail) = tail.split_at(len);
        out.push(entry);
        rest = tail;
        if out.len() > usize::from(TILE_WIDTH) {
            return Err(TileError::Bundle("more than 256 entries"));
        }
    }
    match width {
        Some(w) if out.len() != usize::from(w) => {
            Err(TileError::Bundle("entry count does not match the width"))
        }
        _ => Ok(out),
    }
}

/// Reads stored hash tiles.
///
/// Contract: `read_tile` returns the first `tile.width` hashes of hash tile
/// `(tile.level, tile.index)`; a store that holds a wider version of the tile truncates it, since a
/// partial tile is always a prefix of its later, wider versions. Callers only ask for tiles that
/// exist at the tree size they work with. A missing tile or an I/O failure is `Err`; returning a
/// different number of hashes is reported by the caller as a corrupt tile.
pub trait TileReader {
    /// The store's failure.
    type Error;

    /// Returns the first `tile.width` hashes of the tile.
    fn read_tile(&mut self, tile: TileId) -> Result<Vec<Hash>, Self::Error>;
}

impl<T: TileReader + ?Sized> TileReader for &mut T {
    type Error = T::Error;
    fn read_tile(&mut self, tile: TileId) -> Result<Vec<Hash>, Self::Error> {
        (**self).read_tile(tile)
    }
}

/// A failure inside [`TileHashReader`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TileReadError<E> {
    /// The tile reader failed.
    #[error("reading {}: {error}", tile.path())]
    Reader {
        /// The tile being read.
        tile: TileId,
        /// The reader's error.
        error: E,
    },
    /// The tile reader returned the wrong number of hashes.
    #[error("tile {tile} returned {got} hashes", tile = .0.path(), got = .1)]
    Corrupt(TileId, usize),
    /// A node outside the tree size was asked for.
    #[error("node {0:?} is outside a tree of size {1}")]
    OutOfTree(Node, u64),
}

/// Serves Merkle nodes of the tree of `size` leaves out of its hash tiles. Node `(h, k)` is the
/// MTH of `2^(h mod 8)` consecutive hashes of a level-`h/8` tile, which never straddle a tile.
/// Each tile is read at most once per `read_nodes` call.
#[derive(Debug)]
pub struct TileHashReader<T> {
    size: u64,
    tiles: T,
}

impl<T: TileReader> TileHashReader<T> {
    /// Serves nodes of the tree of `size` leaves from `tiles`.
    pub fn new(size: u64, tiles: T) -> Self {
        TileHashReader { size, tiles }
    }

    /// Gives the tile reader back.
    pub fn into_inner(self) -> T {
        self.tiles
    }
}

impl<T: TileReader> HashReader for TileHashReader<T> {
    type Error = TileReadError<T::Error>;

    fn read_nodes(&mut self, nodes: &[Node]) -> Result<Vec<Hash>, Self::Error> {
        let mut cache: BTreeMap<TileId, Vec<Hash>> = BTreeMap::new();
        let mut out = Vec::with_capacity(nodes.len());
        for node in nodes {
            let level = node.height / TILE_HEIGHT;
            let rel = node.height % TILE_HEIGHT;
            let out_of_tree = || TileReadError::OutOfTree(*node, self.size);
            let first = node
                .index
                .checked_shl(u32::from(rel))
                .ok_or_else(out_of_tree)?;
            let count = 1u64 << rel;
            let last = first + count - 1;
            let tile = tile_for(self.size, level, last).ok_or_else(out_of_tree)?;
            let hashes = match cache.entry(tile) {
                Entry::Occupied(e) => e.into_mut(),
                Entry::Vacant(e) => {
                    let hashes = self
                        .tiles
                        .read_tile(tile)
                        .map_err(|e| TileReadError::Reader { tile, error: e })?;
                    if hashes.len() != usize::from(tile.width) {
                        return Err(TileReadError::Corrupt(tile, hashes.len()));
                    }
                    e.insert(hashes)
                }
            };
            let offset = first % u64::from(TILE_WIDTH);
            let slice = usize::try_from(offset)
                .ok()
                .and_then(|a| hashes.get(a..a + usize::try_from(count).ok()?))
                .ok_or_else(out_of_tree)?;
            out.push(tree_hash(slice));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_encoding_vectors() {
        // c2sp-digest section 8.6 / tlog-tiles.
        for (n, s) in [
            (0, "000"),
            (999, "999"),
            (1000, "x001/000"),
            (1_234_067, "x001/x234/067"),
            (123_456_789, "x123/x456/789"),
            (1_000_000, "x001/x000/000"),
        ] {
            assert_eq!(encode_index(n), s);
            assert_eq!(decode_index(s), Some(n));
        }
        assert_eq!(encode_index(u64::MAX), "x018/x446/x744/x073/x709/x551/615");
    }

    #[test]
    fn parse_accepts_canonical_paths() {
        let t = |level, index, width| {
            TilePath::Hash(TileId {
                level,
                index,
                width,
            })
        };
        let e = |index, width| TilePath::Entries(BundleId { index, width });
        for (p, want) in [
            ("tile/0/000", t(0, 0, 256)),
            ("tile/0/273.p/112", t(0, 273, 112)),
            ("tile/1/001.p/17", t(1, 1, 17)),
            ("tile/2/000.p/1", t(2, 0, 1)),
            ("tile/63/x001/x234/067", t(63, 1_234_067, 256)),
            ("tile/entries/273.p/112", e(273, 112)),
            ("tile/entries/x004/822", e(4822, 256)),
            ("tile/entries/x004/822.p/136", e(4822, 136)),
        ] {
            assert_eq!(TilePath::parse(p), Ok(want), "{p}");
            assert_eq!(want.to_string(), p);
        }
    }

    #[test]
    fn parse_rejects_noncanonical_paths() {
        for p in [
            "",
            "tile",
            "tile/",
            "tile/0",
            "tile/0/",
            "tile/00/000",
            "tile/64/000",
            "tile/-1/000",
            "tile/0/0",
            "tile/0/0000",
            "tile/0/1000",
            "tile/0/x000/001",
            "tile/0/001/000",
            "tile/0/x001",
            "tile/0/x01/000",
            "tile/0/000.p/0",
            "tile/0/000.p/256",
            "tile/0/000.p/007",
            "tile/0/000.p/",
            "tile/0/000.p/5/",
            "tile/0/000/",
            "/tile/0/000",
            "tile/data/000",
            "tile/8/0/000",
            "tile/entries/0",
            "tile/entries/000.p/0",
            "tile/Entries/000",
            "tile/0/x019/x000/x000/x000/x000/x000/000",
            "tile/0/00a",
            "tile/0/+12",
        ] {
            assert!(TilePath::parse(p).is_err(), "{p:?} should be rejected");
        }
    }

    #[test]
    fn widths_for_size_70000() {
        // tlog-tiles worked example (c2sp-digest 6.2).
        assert_eq!(partial_width(70000, 0), Some(112));
        assert_eq!(partial_width(70000, 1), Some(17));
        assert_eq!(partial_width(70000, 2), Some(1));
        assert_eq!(partial_width(70000, 3), None);
        let tiles = all_tiles(70000);
        assert_eq!(tiles.len(), 273 + 1 + 1 + 1 + 1);
        let paths: Vec<String> = tiles.iter().rev().take(4).map(TileId::path).collect();
        assert_eq!(
            paths,
            [
                "tile/2/000.p/1",
                "tile/1/001.p/17",
                "tile/1/000",
                "tile/0/273.p/112"
            ]
        );
        assert_eq!(
            all_bundles(70000).last().map(BundleId::path).as_deref(),
            Some("tile/entries/273.p/112")
        );
        // s = 1234568 (digest 6.2).
        assert_eq!(
            tile_for(1_234_568, 0, 1_234_567)
                .map(|t| t.path())
                .as_deref(),
            Some("tile/0/x004/822.p/136")
        );
        assert_eq!(partial_width(1_234_568, 1), Some(214));
        assert_eq!(partial_width(1_234_568, 2), Some(18));
        assert!(all_tiles(0).is_empty());
        assert_eq!(
            all_tiles(256).iter().map(TileId::path).collect::<Vec<_>>(),
            ["tile/0/000", "tile/1/000.p/1"]
        );
    }

    #[test]
    fn bundles_between_sizes() {
        assert!(bundles_between(5, 5).is_empty());
        assert_eq!(
            bundles_between(250, 600),
            vec![
                BundleId {
                    index: 0,
                    width: 256
                },
                BundleId {
                    index: 1,
                    width: 256
                },
                BundleId {
                    index: 2,
                    width: 88
                },
            ]
        );
        assert_eq!(
            bundles_between(256, 257),
            vec![BundleId { index: 1, width: 1 }]
        );
    }

    #[test]
    fn bundle_round_trip_and_errors() {
        let entries: Vec<&[u8]> = vec![b"", b"a", &[0u8; 300]];
        let b = encode_bundle(&entries).unwrap();
        assert_eq!(&b[..5], &[0, 0, 0, 1, b'a']);
        assert_eq!(decode_bundle(&b, Some(3)).unwrap(), entries);
        assert!(decode_bundle(&b, Some(2)).is_err());
        assert!(decode_bundle(&b[..b.len() - 1], None).is_err());
        assert!(decode_bundle(&[0], None).is_err());
        let mut extra = b.clone();
        extra.push(0);
        assert!(decode_bundle(&extra, None).is_err());
        assert_eq!(
            encode_bundle(&[vec![0u8; 65536]]),
            Err(TileError::EntryTooLarge(65536))
        );
        assert!(encode_bundle(&[vec![0u8; 65535]]).is_ok());
        let too_many = encode_bundle(&vec![b"x"; 257]).unwrap();
        assert!(decode_bundle(&too_many, None).is_err());
    }

    #[test]
    fn hash_tile_length_checked() {
        let h = [Hash([1; 32]), Hash([2; 32])];
        let b = encode_hash_tile(&h);
        assert_eq!(decode_hash_tile(&b, 2).unwrap(), h);
        assert!(decode_hash_tile(&b, 1).is_err());
        assert!(decode_hash_tile(&b[..63], 2).is_err());
    }
}
