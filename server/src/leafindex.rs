//! Finding an entry by its leaf hash, without a random-key index.
//!
//! A B-tree keyed by leaf hash costs about one page write per appended entry (hashes are random,
//! so every insert lands on a different page), which measured at a third of the ingest rate. So
//! the index is written in *runs*: when the tree passes a multiple of [`RUN`] entries, the
//! sequencer writes, in the same transaction, one row per first hash byte (`(run, bucket)` keys,
//! which only ever append) holding that run's leaves as sorted `(hash[1..9], offset)` records. A
//! lookup binary-searches one row per completed run and scans the level-0 tiles of the unfinished
//! tail; every candidate is confirmed against the full leaf hash in its tile.
//!
//! Cost: writes are amortised to about 10 bytes per entry, appended; a lookup reads
//! `size / RUN` small rows plus at most `RUN / 256` tiles. Out of scope: multi-level merging of
//! runs (worth it past about 10^8 entries).

use sealtrail_spec::Hash;
use sealtrail_spec::tiles::{TileId, TileReader};

use crate::store::{LogStore, StoreError};

/// Entries per run (64 full level-0 tiles).
pub const RUN: u64 = 16384;
/// Hash bytes kept per record after the bucket byte.
const PREFIX: usize = 8;
/// Bytes per record: the prefix and a big-endian `u16` offset within the run.
const RECORD: usize = PREFIX + 2;

/// Builds the rows of one run from its `RUN` leaf hashes, in index order: `(bucket, row)` for each
/// non-empty bucket, buckets ascending, records sorted (equal prefixes keep index order).
pub fn build_run(hashes: &[Hash]) -> Vec<(u8, Vec<u8>)> {
    let mut buckets: Vec<Vec<[u8; RECORD]>> = vec![Vec::new(); 256];
    for (offset, h) in hashes.iter().enumerate() {
        let mut rec = [0u8; RECORD];
        rec[..PREFIX].copy_from_slice(&h.0[1..=PREFIX]);
        rec[PREFIX..].copy_from_slice(&u16::try_from(offset).unwrap_or(u16::MAX).to_be_bytes());
        if let Some(b) = buckets.get_mut(usize::from(h.0[0])) {
            b.push(rec);
        }
    }
    buckets
        .into_iter()
        .zip(0u8..=255)
        .filter(|(b, _)| !b.is_empty())
        .map(|(mut b, bucket)| {
            b.sort_unstable();
            (bucket, b.concat())
        })
        .collect()
}

/// The bucket (row) a leaf hash belongs to.
pub fn bucket(hash: &Hash) -> u8 {
    hash.0[0]
}

/// Offsets within the run of the records in `row` whose prefix matches `hash`, ascending. A row of
/// the wrong length yields nothing (callers confirm every candidate, and `fsck` checks rows).
pub fn candidates(row: &[u8], hash: &Hash) -> Vec<u64> {
    if !row.len().is_multiple_of(RECORD) {
        return Vec::new();
    }
    let key = &hash.0[1..=PREFIX];
    let records: Vec<&[u8]> = row.chunks_exact(RECORD).collect();
    let start = records.partition_point(|r| &r[..PREFIX] < key);
    records[start..]
        .iter()
        .take_while(|r| &r[..PREFIX] == key)
        .map(|r| u64::from(u16::from_be_bytes([r[PREFIX], r[PREFIX + 1]])))
        .collect()
}

/// The first index at or below `size` whose leaf hash is `hash`: one row per completed run, then
/// the tail's level-0 tiles. Every candidate is confirmed against the full hash in its tile.
pub fn find<T: TileReader<Error = StoreError>>(
    store: &dyn LogStore,
    tiles: &mut T,
    size: u64,
    hash: &Hash,
) -> Result<Option<u64>, StoreError> {
    let runs = size / RUN;
    let mut leaf_tile = |at: u64| {
        let width = u16::try_from((size - at / 256 * 256).min(256)).unwrap_or(256);
        tiles.read_tile(TileId {
            level: 0,
            index: at / 256,
            width,
        })
    };
    for run in 0..runs {
        let Some(row) = store.leaf_run(run, bucket(hash))? else {
            continue;
        };
        for offset in candidates(&row, hash) {
            let index = run * RUN + offset;
            let tile = leaf_tile(index)?;
            if tile.get(usize::try_from(index % 256).unwrap_or(usize::MAX)) == Some(hash) {
                return Ok(Some(index));
            }
        }
    }
    let mut at = runs * RUN;
    while at < size {
        let tile = leaf_tile(at)?;
        if let Some(p) = tile.iter().position(|h| h == hash) {
            return Ok(Some(at + p as u64));
        }
        at += tile.len().max(1) as u64;
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_leaf_is_found_in_its_row() {
        let hashes: Vec<Hash> = (0..RUN)
            .map(|i| sealtrail_spec::leaf_hash(&i.to_be_bytes()))
            .collect();
        let rows = build_run(&hashes);
        assert!(rows.windows(2).all(|w| w[0].0 < w[1].0));
        let total: usize = rows.iter().map(|(_, r)| r.len() / RECORD).sum();
        assert_eq!(total as u64, RUN);
        for (i, h) in hashes.iter().enumerate().step_by(97) {
            let row = &rows.iter().find(|(b, _)| *b == bucket(h)).unwrap().1;
            assert_eq!(candidates(row, h), vec![i as u64]);
        }
        let absent = sealtrail_spec::leaf_hash(b"not in the run");
        let row = rows
            .iter()
            .find(|(b, _)| *b == bucket(&absent))
            .map_or(&[][..], |r| &r.1[..]);
        assert!(candidates(row, &absent).is_empty());
        assert!(candidates(&[1, 2, 3], &absent).is_empty());
    }

    #[test]
    fn repeated_leaves_are_all_candidates_in_index_order() {
        let a = sealtrail_spec::leaf_hash(b"a");
        let b = sealtrail_spec::leaf_hash(b"b");
        let rows = build_run(&[b, a, b, a, a]);
        let row = &rows.iter().find(|(k, _)| *k == bucket(&a)).unwrap().1;
        assert_eq!(candidates(row, &a), vec![1, 3, 4]);
    }
}
