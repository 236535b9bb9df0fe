//! `sealtrail fsck`: the store is trusted for durability, not for truth. This recomputes every
//! leaf hash from the stored entries, rebuilds every hash tile, compares each with the stored tile
//! byte for byte, checks every live private record against its leaf's commitment, checks that
//! erasures and tombstones agree (every record an erasure entry names is gone and points back at
//! it, and every tombstone is named by its erasure entry), checks the leaf-hash index and the
//! secondary indexes (`crate::query`), and checks the final root against the stored,
//! log-signed checkpoint. Memory stays O(log n): entries are read one bundle at a time and only
//! the right edge of the recomputed tree is kept.

use sealtrail_spec::edge::TiledEdge;
use sealtrail_spec::envelope::LeafEnvelope;
use sealtrail_spec::note::Verifier;
use sealtrail_spec::tiles::{TILE_WIDTH, TileId, encode_hash_tile};
use sealtrail_spec::{Hash, leaf_hash};

use std::collections::BTreeMap;

use sealtrail_spec::record::PrivateRecord;

use crate::leafindex::{RUN, build_run};
use crate::privacy::{ERASURE_EVENT_TYPE, erased_indices};
use crate::query::{FIELD_EVENT_TYPE, FIELD_PRINCIPAL, decode_row, parse_posting_key};
use crate::store::{LogStore, RecordState, StoreError};

/// Problems are capped so a badly damaged store still yields a readable report.
const MAX_PROBLEMS: usize = 100;

/// What `fsck` found.
#[derive(Debug, Default, Clone)]
pub struct FsckReport {
    /// The stored tree size.
    pub size: u64,
    /// Entries read and hashed.
    pub entries: u64,
    /// Hash tiles compared.
    pub tiles: u64,
    /// Live records checked against their commitments.
    pub records: u64,
    /// Erased records (tombstones) checked against their erasure entries.
    pub erased: u64,
    /// The recomputed root.
    pub root: Option<Hash>,
    /// Everything wrong, most specific first (capped at 100).
    pub problems: Vec<String>,
}

impl FsckReport {
    /// True if nothing is wrong.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    fn problem(&mut self, p: String) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(p);
        }
    }
}

/// Checks the whole store. `Err` only for a store that cannot be read at all.
pub fn fsck(
    store: &dyn LogStore,
    origin: &str,
    log_key: &dyn Verifier,
) -> Result<FsckReport, StoreError> {
    let mut report = FsckReport {
        size: store.tree_size()?,
        ..FsckReport::default()
    };
    let size = report.size;
    let mut edge = TiledEdge::empty();
    let mut run_hashes: Vec<Hash> = Vec::new();
    let mut want_postings = PostingSum::default();
    let mut erasures = Erasures::default();
    let step = u64::from(TILE_WIDTH);
    let mut start = 0;
    while start < size {
        let end = (start + step).min(size);
        let entries = match store.entries(start, end) {
            Ok(e) => e,
            Err(e) => {
                report.problem(format!("entries {start}..{end}: {e}"));
                return Ok(report);
            }
        };
        let records = match crate::store::record_states(store, start, end) {
            Ok(r) => r,
            Err(e) => {
                report.problem(format!("records {start}..{end}: {e}"));
                return Ok(report);
            }
        };
        let mut hashes = Vec::with_capacity(entries.len());
        for ((i, bytes), record) in (start..).zip(&entries).zip(records) {
            match LeafEnvelope::decode(bytes) {
                Err(e) => report.problem(format!("entry {i} is not a valid leaf envelope: {e}")),
                Ok(env) => {
                    if let Some(t) = &env.event_type {
                        want_postings.add(FIELD_EVENT_TYPE, t.as_bytes(), i);
                    }
                    erasures.record(&mut report, &mut want_postings, i, &env, record, size);
                }
            }
            let h = leaf_hash(bytes);
            hashes.push(h);
        }
        report.entries += entries.len() as u64;
        run_hashes.extend_from_slice(&hashes);
        if run_hashes.len() as u64 == RUN {
            check_run(store, &mut report, start / RUN, &run_hashes)?;
            run_hashes.clear();
        }
        let ext = match edge.extend(&hashes) {
            Ok(ext) => ext,
            Err(e) => {
                report.problem(format!("recomputing the tree at {start}: {e}"));
                return Ok(report);
            }
        };
        // A full tile is final now; partial ones are compared at the end.
        for (id, tile) in ext.tiles.iter().filter(|(id, _)| id.is_full()) {
            compare_tile(store, &mut report, *id, tile)?;
        }
        edge = ext.edge;
        start = end;
    }
    // The rightmost partial tile of each level, at its final width, level by level.
    for (id, tile) in edge.partial_tiles() {
        compare_tile(store, &mut report, id, tile)?;
    }
    erasures.check(&mut report);
    check_postings(store, &mut report, &want_postings)?;
    let root = edge.root();
    report.root = Some(root);
    check_checkpoint(store, &mut report, origin, log_key, root)?;
    Ok(report)
}

/// Records and erasures as the scan meets them: which indices each tombstone says an erasure
/// entry erased, and which indices each erasure entry says it erased.
#[derive(Debug, Default)]
struct Erasures {
    tombstones: BTreeMap<u64, Vec<u64>>,
    named: BTreeMap<u64, Vec<u64>>,
}

impl Erasures {
    /// Checks entry `i`'s record against its leaf `env` and notes what it says about erasures.
    fn record(
        &mut self,
        report: &mut FsckReport,
        postings: &mut PostingSum,
        i: u64,
        env: &LeafEnvelope,
        record: RecordState,
        size: u64,
    ) {
        match record {
            RecordState::Live(bytes) => {
                let r = match PrivateRecord::decode(&bytes) {
                    Ok(r) => r,
                    Err(e) => return report.problem(format!("the record of entry {i}: {e}")),
                };
                report.records += 1;
                if let Err(e) = r.check(env) {
                    report.problem(format!(
                        "the record of entry {i} does not match its leaf: {e}"
                    ));
                }
                postings.add(FIELD_PRINCIPAL, r.principal.as_bytes(), i);
                if env.event_type.as_deref() == Some(ERASURE_EVENT_TYPE) {
                    match erased_indices(&r.payload) {
                        Some(indices) => {
                            self.named.insert(i, indices);
                        }
                        None => report.problem(format!(
                            "erasure entry {i} does not say which records it erased"
                        )),
                    }
                }
            }
            RecordState::Erased(by) => {
                report.erased += 1;
                if by <= i || by >= size {
                    report.problem(format!(
                        "the tombstone of entry {i} names erasure entry {by}, which cannot have \
                         erased it"
                    ));
                }
                self.tombstones.entry(by).or_default().push(i);
            }
            RecordState::Absent => {
                report.problem(format!("the record of entry {i} is missing"));
            }
        }
    }

    /// Every erasure entry erased exactly the records whose tombstones name it.
    fn check(self, report: &mut FsckReport) {
        for (by, indices) in &self.tombstones {
            match self.named.get(by) {
                None => report.problem(format!(
                    "{} tombstones (first: entry {}) name entry {by}, which is not an erasure \
                     entry with a live record",
                    indices.len(),
                    indices.first().copied().unwrap_or_default()
                )),
                Some(named) if named != indices => {
                    let missing = named.iter().find(|i| indices.binary_search(i).is_err());
                    let extra = indices.iter().find(|i| named.binary_search(i).is_err());
                    report.problem(format!(
                        "erasure entry {by} and the tombstones disagree (first record it names \
                         that is not erased: {missing:?}; first tombstone it does not name: \
                         {extra:?})"
                    ));
                }
                Some(_) => {}
            }
        }
        for (by, named) in &self.named {
            if !named.is_empty() && !self.tombstones.contains_key(by) {
                report.problem(format!(
                    "erasure entry {by} names {} records, but none of them is erased \
                     (first: entry {})",
                    named.len(),
                    named[0]
                ));
            }
        }
    }
}

/// An order-independent digest of a set of postings `(field, value, index)`: count and wrapping
/// sum of a 128-bit hash of each. Equal sums with equal counts mean equal multisets (up to a
/// 2^-128 accident), so `fsck` compares the stored rows with the entries in O(1) memory.
#[derive(Debug, Default, PartialEq, Eq, Clone, Copy)]
struct PostingSum {
    count: u64,
    sum: u128,
}

impl PostingSum {
    fn add(&mut self, field: u8, value: &[u8], index: u64) {
        use sha2::Digest as _;
        let mut h = sha2::Sha256::new();
        h.update([field]);
        h.update((value.len() as u64).to_be_bytes());
        h.update(value);
        h.update(index.to_be_bytes());
        let d = h.finalize();
        let mut b = [0u8; 16];
        b.copy_from_slice(&d[..16]);
        self.count += 1;
        self.sum = self.sum.wrapping_add(u128::from_be_bytes(b));
    }
}

/// Posting rows fetched per read while checking.
const POSTING_PAGE: usize = 1024;

/// Every posting row is well formed (known field, row ending at its key's index, indices
/// increasing within a value and below the tree size), and together the rows hold exactly one
/// posting per entry and indexed field.
fn check_postings(
    store: &dyn LogStore,
    report: &mut FsckReport,
    want: &PostingSum,
) -> Result<(), StoreError> {
    let mut got = PostingSum::default();
    let mut from: Vec<u8> = Vec::new();
    let to = [0xFFu8; 8];
    let mut prev: Option<(Vec<u8>, u64)> = None;
    loop {
        let rows = store.postings(&from, &to, false, POSTING_PAGE)?;
        let Some((last_key, _)) = rows.last() else {
            break;
        };
        from = last_key.clone();
        from.push(0);
        for (key, row) in &rows {
            let Some((field, value, last)) = parse_posting_key(key) else {
                report.problem(format!(
                    "posting key {} is malformed",
                    sealtrail_spec::to_hex(key)
                ));
                continue;
            };
            let idx = match decode_row(row) {
                Ok(idx) => idx,
                Err(e) => {
                    report.problem(format!("posting row {}: {e}", sealtrail_spec::to_hex(key)));
                    continue;
                }
            };
            if ![FIELD_EVENT_TYPE, FIELD_PRINCIPAL].contains(&field)
                || idx.last() != Some(&last)
                || last >= report.size
            {
                report.problem(format!(
                    "posting row {} does not match its key or lies past the tree",
                    sealtrail_spec::to_hex(key)
                ));
                continue;
            }
            let value_key = key[..key.len() - 8].to_vec();
            if let Some((pv, plast)) = &prev
                && *pv == value_key
                && idx.first().is_some_and(|f| f <= plast)
            {
                report.problem(format!(
                    "posting row {} overlaps the previous one",
                    sealtrail_spec::to_hex(key)
                ));
            }
            for &i in &idx {
                got.add(field, value, i);
            }
            prev = Some((value_key, last));
        }
    }
    if got != *want {
        report.problem(format!(
            "the secondary indexes do not match the entries ({} postings stored, {} expected,              or the same number pointing at the wrong entries)",
            got.count, want.count
        ));
    }
    Ok(())
}

/// The stored leaf-index rows of a completed run are exactly those rebuilt from its leaves.
fn check_run(
    store: &dyn LogStore,
    report: &mut FsckReport,
    run: u64,
    hashes: &[Hash],
) -> Result<(), StoreError> {
    let mut want: Vec<Option<Vec<u8>>> = vec![None; 256];
    for (bucket, row) in build_run(hashes) {
        if let Some(w) = want.get_mut(usize::from(bucket)) {
            *w = Some(row);
        }
    }
    for (bucket, want) in (0..=255u8).zip(want) {
        if store.leaf_run(run, bucket)? != want {
            report.problem(format!(
                "leaf-index row {run}/{bucket} does not match the entries"
            ));
        }
    }
    Ok(())
}

fn compare_tile(
    store: &dyn LogStore,
    report: &mut FsckReport,
    id: TileId,
    tile: &[Hash],
) -> Result<(), StoreError> {
    report.tiles += 1;
    let want = encode_hash_tile(tile);
    match store.tile(id.level, id.index)? {
        None => report.problem(format!("{} is missing", id.path())),
        Some(got) if got != want => report.problem(format!(
            "{} differs from the tile recomputed from the entries ({} stored bytes, {} expected)",
            id.path(),
            got.len(),
            want.len()
        )),
        Some(_) => {}
    }
    Ok(())
}

fn check_checkpoint(
    store: &dyn LogStore,
    report: &mut FsckReport,
    origin: &str,
    log_key: &dyn Verifier,
    root: Hash,
) -> Result<(), StoreError> {
    let Some(note) = store.checkpoint()? else {
        if report.size > 0 {
            report.problem("no stored checkpoint".into());
        }
        return Ok(());
    };
    match sealtrail_spec::checkpoint::open(&note, origin, &[log_key]) {
        Err(e) => report.problem(format!("stored checkpoint: {e}")),
        Ok(cp) => {
            let c = cp.checkpoint();
            if c.size() != report.size {
                report.problem(format!(
                    "stored checkpoint is for size {} but the store holds {}",
                    c.size(),
                    report.size
                ));
            } else if c.root() != root {
                report.problem(format!(
                    "stored checkpoint root {} differs from the recomputed root {}",
                    c.root().to_base64(),
                    root.to_base64()
                ));
            }
        }
    }
    Ok(())
}
