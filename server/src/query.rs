//! Finding records: secondary indexes by event type and by submitting principal, and the search
//! behind `GET /v1/entries/search` and `sealtrail search`.
//!
//! Index design (why inserts stay appends). The sequencer writes, in the same transaction as the
//! entries, one *posting row* per distinct (field, value) in each committed batch. Its key is
//! `field byte || value length (u16 BE) || value || last index (u64 BE)` and the row lists the
//! batch's indices with that value (LEB128: the first index, then the gaps). Within one value the
//! keys grow with the log, so every insert lands at the right end of that value's key range, and a
//! batch of 1000 entries with a handful of types and principals writes a handful of rows rather
//! than 2000 random-key ones. Rows are disjoint, ordered index intervals per value.
//!
//! Time needs no index: the sequencer never lets the sequencing time go backwards (`time_ms` is
//! `max(now, last)`), so a time range is an index range, found by binary search over the entries
//! (about 24 entry reads for 10^7 entries).
//!
//! A query walks one stream per condition (the index range, and one posting stream per filtered
//! field) with a leapfrog intersection: each stream seeks to the next candidate of the others, so
//! a rare value bounds the work even when combined with a common one. Out of scope: full-text
//! search of payloads, filters other than exact type and principal, indexes for entries appended
//! before this index existed (a store from an older build has no posting rows for them; fsck
//! reports that).

use std::collections::{HashMap, VecDeque};

use sealtrail_spec::envelope::LeafEnvelope;

use crate::store::{LogStore, StoreError};

/// The field byte of event-type posting keys.
pub const FIELD_EVENT_TYPE: u8 = b't';
/// The field byte of principal posting keys.
pub const FIELD_PRINCIPAL: u8 = b'p';

/// Posting rows fetched per store read while walking a value's rows.
const ROWS_PER_READ: usize = 64;

/// The key prefix of all rows of `(field, value)`.
fn value_prefix(field: u8, value: &[u8]) -> Vec<u8> {
    let len = u16::try_from(value.len()).unwrap_or(u16::MAX);
    let mut k = Vec::with_capacity(value.len() + 11);
    k.push(field);
    k.extend_from_slice(&len.to_be_bytes());
    k.extend_from_slice(value);
    k
}

/// The key of the row of `(field, value)` whose largest index is `last`.
pub fn posting_key(field: u8, value: &[u8], last: u64) -> Vec<u8> {
    let mut k = value_prefix(field, value);
    k.extend_from_slice(&last.to_be_bytes());
    k
}

/// Splits a posting key into `(field, value, last index)`; `None` if it is not one.
pub fn parse_posting_key(key: &[u8]) -> Option<(u8, &[u8], u64)> {
    let (&field, rest) = key.split_first()?;
    let (len, rest) = rest.split_first_chunk::<2>()?;
    let len = usize::from(u16::from_be_bytes(*len));
    let value = rest.get(..len)?;
    let last: [u8; 8] = rest.get(len..)?.try_into().ok()?;
    Some((field, value, u64::from_be_bytes(last)))
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Encodes strictly increasing indices as a posting row.
pub fn encode_row(indices: &[u64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(indices.len() * 2 + 8);
    let mut prev = None;
    for &i in indices {
        put_varint(&mut out, prev.map_or(i, |p| i - p));
        prev = Some(i);
    }
    out
}

/// Decodes a posting row: strictly increasing indices. Anything else (empty row, truncated or
/// overlong varint, zero gap, overflow) is corruption.
pub fn decode_row(row: &[u8]) -> Result<Vec<u64>, StoreError> {
    let bad = |why: &str| StoreError::Corrupt(format!("posting row: {why}"));
    let mut out: Vec<u64> = Vec::new();
    let mut bytes = row.iter();
    while bytes.len() > 0 {
        let mut v: u64 = 0;
        let mut shift = 0;
        loop {
            let &b = bytes.next().ok_or_else(|| bad("truncated number"))?;
            if shift == 63 && b > 1 || shift > 63 {
                return Err(bad("number too long"));
            }
            v |= u64::from(b & 0x7F) << shift;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
        let next = match out.last() {
            None => v,
            Some(_) if v == 0 => return Err(bad("indices not increasing")),
            Some(&p) => p.checked_add(v).ok_or_else(|| bad("index overflow"))?,
        };
        out.push(next);
    }
    if out.is_empty() {
        return Err(bad("empty"));
    }
    Ok(out)
}

/// What an erasure does to the principal postings: the keys of rows that named an erased record
/// (to delete) and the rows that keep other indices (to write again, under their new last index).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PostingChanges {
    /// Keys to delete.
    pub removed: Vec<Vec<u8>>,
    /// Rows to write after the deletions.
    pub rewritten: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Takes each erased record `(index, principal)` out of its principal's posting rows, so the
/// store keeps no trace of which entries a principal made (event-type rows stay: event types
/// are public). Each row is read once, however many of its indices are erased. Indices without
/// a row (an entry indexed by no batch, which fsck reports) are skipped.
pub fn remove_principal_postings(
    store: &dyn LogStore,
    erased: &[(u64, String)],
) -> Result<PostingChanges, StoreError> {
    // Original row key -> (principal, remaining indices).
    let mut rows: HashMap<Vec<u8>, (String, Vec<u64>)> = HashMap::new();
    // Principal -> last index of each fetched row -> its key.
    let mut fetched: HashMap<&str, std::collections::BTreeMap<u64, Vec<u8>>> = HashMap::new();
    let mut changed: Vec<Vec<u8>> = Vec::new();
    for (index, principal) in erased {
        let index = *index;
        let cached = fetched
            .get(principal.as_str())
            .and_then(|m| m.range(index..).next())
            .map(|(_, key)| key.clone())
            .filter(|key| {
                rows.get(key)
                    .and_then(|(_, idx)| idx.first())
                    .is_some_and(|f| *f <= index)
            });
        let key = match cached {
            Some(key) => key,
            None => {
                let mut end = posting_key(FIELD_PRINCIPAL, principal.as_bytes(), u64::MAX);
                end.push(0);
                let from = posting_key(FIELD_PRINCIPAL, principal.as_bytes(), index);
                let Some((key, row)) = store.postings(&from, &end, false, 1)?.into_iter().next()
                else {
                    continue;
                };
                let indices = decode_row(&row)?;
                let last = *indices.last().unwrap_or(&index);
                fetched
                    .entry(principal.as_str())
                    .or_default()
                    .insert(last, key.clone());
                rows.insert(key.clone(), (principal.clone(), indices));
                key
            }
        };
        if let Some((_, indices)) = rows.get_mut(&key)
            && let Ok(pos) = indices.binary_search(&index)
        {
            indices.remove(pos);
            changed.push(key);
        }
    }
    changed.sort_unstable();
    changed.dedup();
    let mut out = PostingChanges::default();
    for key in changed {
        if let Some((principal, indices)) = rows.remove(&key) {
            if let Some(&last) = indices.last() {
                out.rewritten.push((
                    posting_key(FIELD_PRINCIPAL, principal.as_bytes(), last),
                    encode_row(&indices),
                ));
            }
            out.removed.push(key);
        }
    }
    Ok(out)
}

/// Collects the posting rows of one batch. The sequencer adds each entry it commits.
#[derive(Debug, Default)]
pub struct PostingsBuilder {
    event_types: HashMap<String, Vec<u64>>,
    principals: HashMap<String, Vec<u64>>,
}

fn push_value(map: &mut HashMap<String, Vec<u64>>, value: String, index: u64) {
    match map.get_mut(value.as_str()) {
        Some(v) => v.push(index),
        None => {
            map.insert(value, vec![index]);
        }
    }
}

impl PostingsBuilder {
    /// Records entry `index` (indices must be added in increasing order). No principal for an
    /// imported entry whose record was erased.
    pub fn add(&mut self, index: u64, principal: Option<String>, event_type: Option<String>) {
        if let Some(principal) = principal {
            push_value(&mut self.principals, principal, index);
        }
        if let Some(t) = event_type {
            push_value(&mut self.event_types, t, index);
        }
    }

    /// The `(key, row)` pairs for the batch.
    pub fn finish(self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let rows = |field: u8, map: HashMap<String, Vec<u64>>| {
            map.into_iter().filter_map(move |(value, idx)| {
                let last = *idx.last()?;
                Some((posting_key(field, value.as_bytes(), last), encode_row(&idx)))
            })
        };
        rows(FIELD_EVENT_TYPE, self.event_types)
            .chain(rows(FIELD_PRINCIPAL, self.principals))
            .collect()
    }
}

/// Why a search failed.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The query itself is invalid.
    #[error("{0}")]
    Invalid(String),
    /// The store failed or holds something this program does not write.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A search: every condition given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchQuery {
    /// Sequencing time lower bound, ms since the Unix epoch, inclusive.
    pub since: Option<u64>,
    /// Sequencing time upper bound, ms since the Unix epoch, exclusive.
    pub until: Option<u64>,
    /// Exact event type.
    pub event_type: Option<String>,
    /// Exact submitting principal.
    pub principal: Option<String>,
    /// Continue after a previous page: its `next_cursor`.
    pub cursor: Option<u64>,
    /// Most results.
    pub limit: usize,
    /// Newest (highest index) first.
    pub newest_first: bool,
}

/// One page of results: matching indices in the requested order, and where the next page starts
/// (`None` when nothing more matches within the searched tree size).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchPage {
    /// Matching entry indices.
    pub indices: Vec<u64>,
    /// Pass as `cursor` to get the next page.
    pub next_cursor: Option<u64>,
}

/// The smallest index in `0..=size` whose sequencing time is at least `t` (`size` if none), by
/// binary search: times never decrease with the index.
pub fn first_at_or_after(store: &dyn LogStore, size: u64, t: u64) -> Result<u64, StoreError> {
    let (mut lo, mut hi) = (0, size);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let bytes = store
            .entry(mid)?
            .ok_or_else(|| StoreError::Corrupt(format!("entry {mid} missing")))?;
        let env = LeafEnvelope::decode(&bytes)
            .map_err(|e| StoreError::Corrupt(format!("entry {mid}: {e}")))?;
        if env.time_ms < t {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    Ok(lo)
}

/// A stream of candidate indices within `[lo, hi)` in one direction. `seek(t)` returns the first
/// candidate at or after `t` in that direction (at least `t` ascending, at most `t` descending).
enum Stream<'a> {
    Range,
    Postings(PostingStream<'a>),
}

/// Walks the rows of one indexed value.
struct PostingStream<'a> {
    store: &'a dyn LogStore,
    prefix: Vec<u8>,
    lo: u64,
    hi: u64,
    desc: bool,
    /// Fetched candidates, in stream order.
    buf: VecDeque<u64>,
    /// Ascending: rows whose last index is below this were fetched. Descending: rows whose last
    /// index is at least this were fetched.
    bound: u64,
    done: bool,
}

impl PostingStream<'_> {
    fn key(&self, last: u64) -> Vec<u8> {
        let mut k = self.prefix.clone();
        k.extend_from_slice(&last.to_be_bytes());
        k
    }

    /// The end of this value's key range (past every `last`).
    fn end_key(&self) -> Vec<u8> {
        let mut k = self.key(u64::MAX);
        k.push(0);
        k
    }

    fn rows(
        &self,
        from: Vec<u8>,
        to: Vec<u8>,
        rev: bool,
        n: usize,
    ) -> Result<Vec<(u64, Vec<u64>)>, StoreError> {
        self.store
            .postings(&from, &to, rev, n)?
            .into_iter()
            .map(|(k, row)| {
                let last = k
                    .len()
                    .checked_sub(8)
                    .and_then(|at| k.get(at..))
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .map(u64::from_be_bytes)
                    .ok_or_else(|| StoreError::Corrupt("posting key too short".into()))?;
                let idx = decode_row(&row)?;
                if idx.last() != Some(&last) {
                    return Err(StoreError::Corrupt(format!(
                        "posting row ending at {last} does not end there"
                    )));
                }
                Ok((last, idx))
            })
            .collect()
    }

    fn seek(&mut self, t: u64) -> Result<Option<u64>, StoreError> {
        loop {
            while let Some(&x) = self.buf.front() {
                let passed = if self.desc { x > t } else { x < t };
                if !passed {
                    let inside = x >= self.lo && x < self.hi;
                    return Ok(inside.then_some(x));
                }
                self.buf.pop_front();
            }
            if self.done {
                return Ok(None);
            }
            if self.desc {
                self.fill_desc(t)?;
            } else {
                self.fill_asc(t)?;
            }
        }
    }

    fn fill_asc(&mut self, t: u64) -> Result<(), StoreError> {
        // Rows ending below `t` cannot hold a candidate at or after it.
        self.bound = self.bound.max(t);
        let rows = self.rows(self.key(self.bound), self.end_key(), false, ROWS_PER_READ)?;
        if rows.is_empty() {
            self.done = true;
        }
        for (last, idx) in rows {
            let first = idx.first().copied().unwrap_or(last);
            self.buf.extend(idx);
            self.bound = last.saturating_add(1);
            if first >= self.hi {
                self.done = true;
                break;
            }
        }
        Ok(())
    }

    fn fill_desc(&mut self, t: u64) -> Result<(), StoreError> {
        // Only the row straddling `t` can hold candidates at most `t` among the rows ending after
        // it; every row before that one ends below `t`.
        let above = t.saturating_add(1);
        if above < self.bound {
            let straddle = self.rows(self.key(above), self.key(self.bound), false, 1)?;
            self.bound = above;
            if let Some((_, idx)) = straddle.into_iter().next()
                && let Some(&first) = idx.first()
                && first <= t
            {
                self.buf.extend(idx.into_iter().rev().filter(|&i| i <= t));
                self.bound = first;
                return Ok(());
            }
        }
        let rows = self.rows(self.key(self.lo), self.key(self.bound), true, ROWS_PER_READ)?;
        if rows.is_empty() {
            self.done = true;
        }
        for (_, idx) in rows {
            let first = idx.first().copied().unwrap_or(0);
            self.buf.extend(idx.into_iter().rev());
            self.bound = first;
        }
        Ok(())
    }
}

impl Stream<'_> {
    fn seek(&mut self, t: u64, lo: u64, hi: u64, desc: bool) -> Result<Option<u64>, StoreError> {
        match self {
            Stream::Range => Ok(if desc {
                let x = t.min(hi.saturating_sub(1));
                (hi > lo && x >= lo).then_some(x)
            } else {
                let x = t.max(lo);
                (x < hi).then_some(x)
            }),
            Stream::Postings(p) => p.seek(t),
        }
    }
}

/// Runs `q` over the first `size` entries (a published tree size, so every result is provable).
pub fn search(store: &dyn LogStore, size: u64, q: &SearchQuery) -> Result<SearchPage, QueryError> {
    if q.limit == 0 {
        return Err(QueryError::Invalid("limit must be at least 1".into()));
    }
    let mut lo = match q.since {
        Some(t) => first_at_or_after(store, size, t)?,
        None => 0,
    };
    let mut hi = match q.until {
        Some(t) => first_at_or_after(store, size, t)?,
        None => size,
    };
    match (q.cursor, q.newest_first) {
        (Some(c), false) => lo = lo.max(c),
        (Some(c), true) => hi = hi.min(c),
        (None, _) => {}
    }
    let desc = q.newest_first;
    let mut streams = vec![Stream::Range];
    for (field, value) in [
        (FIELD_EVENT_TYPE, &q.event_type),
        (FIELD_PRINCIPAL, &q.principal),
    ] {
        if let Some(v) = value {
            if v.is_empty() || v.len() > usize::from(u16::MAX) {
                return Err(QueryError::Invalid(
                    "filter values must be 1 to 65535 bytes".into(),
                ));
            }
            streams.push(Stream::Postings(PostingStream {
                store,
                prefix: value_prefix(field, v.as_bytes()),
                lo,
                hi,
                desc,
                buf: VecDeque::new(),
                bound: if desc { u64::MAX } else { 0 },
                done: false,
            }));
        }
    }
    let mut found = Vec::new();
    let mut more = false;
    if lo < hi {
        let mut t = if desc { hi - 1 } else { lo };
        'search: loop {
            let mut agreed = true;
            for s in &mut streams {
                match s.seek(t, lo, hi, desc)? {
                    None => break 'search,
                    Some(x) if x != t => {
                        t = x;
                        agreed = false;
                    }
                    Some(_) => {}
                }
            }
            if !agreed {
                continue;
            }
            if found.len() == q.limit {
                more = true;
                break;
            }
            found.push(t);
            t = match (desc, t.checked_sub(1)) {
                (false, _) => t + 1,
                (true, Some(prev)) => prev,
                (true, None) => break,
            };
        }
    }
    let next_cursor = match found.last() {
        Some(&last) if more => Some(if desc { last } else { last + 1 }),
        _ => None,
    };
    Ok(SearchPage {
        indices: found,
        next_cursor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip_and_reject_bad_bytes() {
        for idx in [
            vec![0],
            vec![5, 6, 1000, 1 << 40],
            vec![u64::MAX - 1, u64::MAX],
        ] {
            assert_eq!(decode_row(&encode_row(&idx)).unwrap(), idx);
        }
        assert!(decode_row(&[]).is_err());
        assert!(decode_row(&[0x80]).is_err(), "truncated");
        assert!(decode_row(&[5, 0]).is_err(), "zero gap");
        assert!(decode_row(&[0xFF; 11]).is_err(), "too long");
        let mut max_then_one = encode_row(&[u64::MAX]);
        max_then_one.push(1);
        assert!(decode_row(&max_then_one).is_err(), "overflow");
    }

    #[test]
    fn keys_parse_and_order_by_value_then_index() {
        let k = posting_key(FIELD_PRINCIPAL, b"alice", 300);
        assert_eq!(
            parse_posting_key(&k),
            Some((FIELD_PRINCIPAL, &b"alice"[..], 300))
        );
        assert!(posting_key(b't', b"a", u64::MAX) < posting_key(b't', b"ab", 0));
        assert!(posting_key(b't', b"a", 255) < posting_key(b't', b"a", 256));
        assert_eq!(parse_posting_key(&k[..k.len() - 1]), None);
        assert_eq!(parse_posting_key(b"t"), None);
    }
}
