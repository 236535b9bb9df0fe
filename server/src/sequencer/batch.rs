//! The batch logic, without threads: encoding submissions into leaves, idempotency keys and
//! duplicates, imports, and the answers to a batch that will not be written.

use std::collections::HashMap;

use sealtrail_spec::Hash;
use sealtrail_spec::envelope::LeafEnvelope;
use sealtrail_spec::record::{PrivateRecord, SALT_LEN};

use super::*;
use crate::store::{IdempotencyRecord, LogStore, RecordState};

/// Decodes imported entries strictly into `open`, each record checked against its leaf's
/// commitment, their sequencing times never going backwards from `time_ms`; returns the batch and
/// the last time.
pub(super) fn check_import(
    mut open: Open,
    entries: Vec<ImportEntry>,
    mut time_ms: u64,
) -> Result<(Open, u64), SequenceError> {
    for (index, entry) in (open.old_size..).zip(entries) {
        let invalid =
            |e: &dyn std::fmt::Display| SequenceError::Invalid(format!("entry {index}: {e}"));
        let env = LeafEnvelope::decode(&entry.leaf).map_err(|e| invalid(&e))?;
        if env.time_ms < time_ms {
            return Err(SequenceError::Invalid(format!(
                "entry {index}: sequencing time {} is before {time_ms}",
                env.time_ms
            )));
        }
        time_ms = env.time_ms;
        let principal = match entry.record {
            ImportRecord::Live(record) => {
                record.validate().map_err(|e| invalid(&e))?;
                record.check(&env).map_err(|e| invalid(&e))?;
                let principal = record.principal.clone();
                open.records.push(Some(record.encode()));
                Some(principal)
            }
            ImportRecord::Erased(by) if by > index => {
                open.records.push(None);
                open.tombstones.push((index, by));
                None
            }
            ImportRecord::Erased(by) => {
                return Err(invalid(&format!(
                    "erased by entry {by}, which does not come after it"
                )));
            }
        };
        open.leaf_hashes
            .push(sealtrail_spec::leaf_hash(&entry.leaf));
        open.payload_bytes += env.payload_size;
        open.fields.push(IndexedFields {
            principal,
            event_type: env.event_type,
        });
        open.entries.push(entry.leaf);
    }
    Ok((open, time_ms))
}

/// Erases again, in an import batch, the records of earlier (committed) entries that restored
/// erasure entries name; records already erased are left alone.
pub(super) fn reapply_erasures(
    store: &dyn LogStore,
    open: &mut Open,
    reapply: &[(u64, u64)],
) -> Result<(), SequenceError> {
    let read_error = |e: StoreError| SequenceError::Unavailable(Unavailable::Read(Arc::new(e)));
    let mut erase = Vec::new();
    for &(index, by) in reapply {
        if index >= open.old_size {
            return Err(SequenceError::Invalid(format!(
                "re-applying erasure {by} to entry {index}, which is not committed yet"
            )));
        }
        match store.record(index).map_err(read_error)? {
            RecordState::Live(bytes) => {
                let r = PrivateRecord::decode(&bytes)
                    .map_err(|e| read_error(StoreError::Corrupt(format!("entry {index}: {e}"))))?;
                open.erased.push((index, by));
                erase.push((index, r.principal));
            }
            RecordState::Erased(_) => {}
            RecordState::Absent => {
                return Err(read_error(StoreError::Corrupt(format!(
                    "the record of entry {index} is missing"
                ))));
            }
        }
    }
    open.posting_changes =
        crate::query::remove_principal_postings(store, &erase).map_err(read_error)?;
    Ok(())
}

/// Whether a submission may be sequenced on the caller's thread (see [`INLINE_MAX_ENTRIES`]).
pub(super) fn small_enough(entries: &[NewEntry]) -> bool {
    entries.len() <= INLINE_MAX_ENTRIES && payload_bytes(entries) <= INLINE_MAX_BYTES
}

pub(super) fn payload_bytes(entries: &[NewEntry]) -> u64 {
    entries.iter().map(|e| e.payload.len() as u64).sum()
}

/// A submission whose entries are encoded: ready to join a batch.
pub(super) struct Encoded {
    /// The submission, its entries moved into `leaves`.
    pub(super) sub: Submission,
    pub(super) leaves: Vec<EncodedLeaf>,
    /// The entries' payload bytes.
    pub(super) payload_bytes: u64,
}

/// Encodes a submission's entries at `time_ms`, or `None` once it has been answered with the
/// error.
pub(super) fn encode(mut sub: Submission, time_ms: u64) -> Option<Encoded> {
    let payload_bytes = payload_bytes(&sub.entries);
    match encode_entries(std::mem::take(&mut sub.entries), time_ms) {
        Ok(leaves) => Some(Encoded {
            sub,
            leaves,
            payload_bytes,
        }),
        Err(e) => {
            let _ = sub.reply.send(Err(e));
            None
        }
    }
}

/// Encodes a submission at `time_ms` (the caller holds the batch lock and has made `time_ms` the
/// latest sequencing time) and adds it to the open batch, or answers it now.
pub(super) fn encode_and_accept(
    g: &mut Gather,
    store: &dyn LogStore,
    sub: Submission,
    time_ms: u64,
) {
    if let Some(encoded) = encode(sub, time_ms) {
        add_to_batch(g, store, encoded, time_ms);
    }
}

/// Adds an encoded submission to the open batch (opening one if needed), as a duplicate of an
/// earlier request with its idempotency key, or answers it now (a conflict).
pub(super) fn add_to_batch(g: &mut Gather, store: &dyn LogStore, encoded: Encoded, time_ms: u64) {
    let Encoded {
        sub,
        leaves,
        payload_bytes,
    } = encoded;
    let count = leaves.len();
    let next_size = g.next_size;
    let open = match &mut g.open {
        Some(open) => open,
        None => {
            g.outstanding += 1;
            g.open.insert(Open::new(next_size))
        }
    };
    if let Some(idem) = sub.idempotency {
        match check_idempotency(store, &idem, &open.seen, &g.in_flight, &leaves) {
            Ok(Some(Prior::Stored(first_index))) => {
                open.duplicates.push(Duplicate::Stored {
                    sub,
                    first_index,
                    count,
                });
                return;
            }
            Ok(Some(Prior::InBatch(slot))) => {
                open.duplicates.push(Duplicate::InBatch { sub, slot });
                return;
            }
            Ok(Some(Prior::InFlight(k))) => {
                open.duplicates.push(Duplicate::InFlight {
                    sub,
                    first_index: k.first_index,
                    hashes: k.leaf_hashes,
                    time_ms: k.time_ms,
                });
                return;
            }
            Ok(None) => {}
            Err(e) => {
                let _ = sub.reply.send(Err(e));
                return;
            }
        }
    }
    let first_index = open.new_size();
    for leaf in leaves {
        open.entries.push(leaf.bytes);
        open.records.push(Some(leaf.record));
        open.leaf_hashes.push(leaf.hash);
        open.fields.push(leaf.fields);
    }
    open.payload_bytes += payload_bytes;
    if let Some(idem) = sub.idempotency {
        open.seen.insert(
            idem.key,
            SeenKey {
                request_hash: idem.request_hash,
                slot: open.accepted.len(),
                first_index,
            },
        );
        open.idempotency.push((
            idem.key,
            IdempotencyRecord {
                index: first_index,
                count: count as u64,
            },
        ));
    }
    open.accepted.push(Accepted {
        sub,
        first_index,
        count,
        time_ms,
    });
}

/// Leaf hashes of the stored entries `index..index + n` and the first one's sequencing time.
pub(super) fn stored_entries(
    store: &dyn LogStore,
    index: u64,
    n: usize,
) -> Result<(Vec<Hash>, u64), StoreError> {
    let entries = store.entries(index, index + n as u64)?;
    let time_ms = match entries.first() {
        Some(first) => {
            LeafEnvelope::decode(first)
                .map_err(|e| StoreError::Corrupt(format!("entry {index}: {e}")))?
                .time_ms
        }
        None => return Err(StoreError::Corrupt(format!("entry {index} is missing"))),
    };
    Ok((
        entries
            .iter()
            .map(|b| sealtrail_spec::leaf_hash(b))
            .collect(),
        time_ms,
    ))
}

/// Answers every submission (or the import) of a batch that will not be written with `err`.
pub(super) fn answer_error(open: Open, err: &SequenceError) {
    for a in open.accepted {
        let _ = a.sub.reply.send(Err(err.clone()));
    }
    for d in open.duplicates {
        let _ = d.into_submission().reply.send(Err(err.clone()));
    }
    if let Some(reply) = open.import {
        let _ = reply.send(Err(err.clone()));
    }
    if let Some(work) = open.admin {
        let _ = work.reply.send(Err(err.clone()));
    }
}

/// Where an idempotency key was used before.
pub(super) enum Prior {
    Stored(u64),
    InBatch(usize),
    InFlight(InFlightKey),
}

/// Where `idem`'s key was used before: in the open batch, in a batch the writer took, or in the
/// store (checked last: a key leaves `in_flight` only after its batch is durable). A different
/// request under the same key is a conflict.
pub(super) fn check_idempotency(
    store: &dyn LogStore,
    idem: &Idempotency,
    seen: &HashMap<[u8; 32], SeenKey>,
    in_flight: &InFlight,
    leaves: &[EncodedLeaf],
) -> Result<Option<Prior>, SequenceError> {
    if let Some(k) = seen.get(&idem.key) {
        return if k.request_hash == idem.request_hash {
            Ok(Some(Prior::InBatch(k.slot)))
        } else {
            Err(SequenceError::IdempotencyConflict(k.first_index))
        };
    }
    if let Some(k) = in_flight.get(&idem.key) {
        return if k.request_hash == idem.request_hash {
            Ok(Some(Prior::InFlight(k.clone())))
        } else {
            Err(SequenceError::IdempotencyConflict(k.first_index))
        };
    }
    let read_error = |e: StoreError| SequenceError::Unavailable(Unavailable::Read(Arc::new(e)));
    match store.idempotency(&idem.key) {
        Ok(Some(rec)) => match same_as_stored(store, rec, leaves) {
            Ok(Ok(())) => Ok(Some(Prior::Stored(rec.index))),
            Ok(Err(e)) => Err(e),
            Err(e) => Err(read_error(e)),
        },
        Ok(None) => Ok(None),
        Err(e) => Err(read_error(e)),
    }
}

/// Whether a request's entries are the ones an idempotency record names: compared with the
/// stored records and leaves themselves (the store keeps no digest of the content). A record
/// erased since cannot be compared: the key is then spent.
fn same_as_stored(
    store: &dyn LogStore,
    rec: IdempotencyRecord,
    leaves: &[EncodedLeaf],
) -> Result<Result<(), SequenceError>, StoreError> {
    if rec.count != leaves.len() as u64 {
        return Ok(Err(SequenceError::IdempotencyConflict(rec.index)));
    }
    let corrupt =
        |i: u64, e: &dyn std::fmt::Display| StoreError::Corrupt(format!("entry {i}: {e}"));
    for (index, new) in (rec.index..).zip(leaves) {
        let stored = store
            .entry(index)?
            .ok_or_else(|| StoreError::Corrupt(format!("entry {index} is missing")))?;
        let old_env = LeafEnvelope::decode(&stored).map_err(|e| corrupt(index, &e))?;
        let new_env = LeafEnvelope::decode(&new.bytes).map_err(|e| corrupt(index, &e))?;
        let old = match store.record(index)? {
            RecordState::Live(bytes) => {
                PrivateRecord::decode(&bytes).map_err(|e| corrupt(index, &e))?
            }
            RecordState::Erased(_) => return Ok(Err(SequenceError::IdempotencyErased(index))),
            RecordState::Absent => {
                return Err(StoreError::Corrupt(format!(
                    "the record of entry {index} is missing"
                )));
            }
        };
        let new_rec = PrivateRecord::decode(&new.record).map_err(|e| corrupt(index, &e))?;
        let same = old.principal == new_rec.principal
            && old.payload == new_rec.payload
            && old_env.content_type == new_env.content_type
            && old_env.event_type == new_env.event_type;
        if !same {
            return Ok(Err(SequenceError::IdempotencyConflict(rec.index)));
        }
    }
    Ok(Ok(()))
}

/// An encoded leaf, its hash, its encoded private record, and the indexed fields.
pub(super) struct EncodedLeaf {
    pub(super) bytes: Vec<u8>,
    pub(super) hash: Hash,
    pub(super) record: Vec<u8>,
    pub(super) fields: IndexedFields,
}

/// Builds the private records (each with a fresh salt from the OS CSPRNG) and the envelopes that
/// commit to them, and hashes the leaves.
pub(super) fn encode_entries(
    entries: Vec<NewEntry>,
    time_ms: u64,
) -> Result<Vec<EncodedLeaf>, SequenceError> {
    let mut salts = vec![[0u8; SALT_LEN]; entries.len()];
    getrandom::fill(salts.as_flattened_mut())
        .map_err(|e| SequenceError::Unavailable(Unavailable::Random(e.to_string())))?;
    entries
        .into_iter()
        .zip(salts)
        .map(|(e, salt)| encode_one(e, salt, time_ms))
        .collect()
}

/// One entry's record and leaf.
pub(super) fn encode_one(
    e: NewEntry,
    salt: [u8; SALT_LEN],
    time_ms: u64,
) -> Result<EncodedLeaf, SequenceError> {
    let invalid = |err: &dyn std::fmt::Display| SequenceError::Invalid(err.to_string());
    let record = PrivateRecord {
        salt,
        principal: e.principal,
        payload: e.payload,
    };
    record.validate().map_err(|err| invalid(&err))?;
    let env = LeafEnvelope {
        time_ms,
        content_type: e.content_type,
        event_type: e.event_type,
        payload_size: record.payload.len() as u64,
        commitment: record.commitment(),
    };
    let bytes = env.encode().map_err(|err| invalid(&err))?;
    let hash = sealtrail_spec::leaf_hash(&bytes);
    let encoded = record.encode();
    Ok(EncodedLeaf {
        bytes,
        hash,
        record: encoded,
        fields: IndexedFields {
            principal: Some(record.principal),
            event_type: env.event_type,
        },
    })
}

#[cfg(test)]
mod tests {
    use tokio::sync::oneshot;

    use super::*;
    use crate::store::mem::MemStore;

    fn submission(
        payloads: &[&str],
        key: Option<(u8, u8)>,
    ) -> (
        Submission,
        oneshot::Receiver<Result<Sequenced, SequenceError>>,
    ) {
        let (reply, rx) = oneshot::channel();
        let entries = payloads
            .iter()
            .map(|p| NewEntry {
                principal: "token:t".into(),
                content_type: "text/plain".into(),
                event_type: Some("e".into()),
                payload: p.as_bytes().to_vec(),
            })
            .collect();
        let idempotency = key.map(|(k, r)| Idempotency {
            key: [k; 32],
            request_hash: [r; 32],
        });
        let sub = Submission {
            entries,
            idempotency,
            reply,
        };
        (sub, rx)
    }

    #[test]
    fn submissions_take_consecutive_indices_and_keys_are_deduplicated_in_the_batch() {
        let store = MemStore::new();
        let mut g = Gather::new(10, 0);
        let (a, _ra) = submission(&["a", "b"], Some((1, 1)));
        let (b, _rb) = submission(&["c"], None);
        let (again, _ragain) = submission(&["a", "b"], Some((1, 1)));
        let (conflict, mut rconflict) = submission(&["x"], Some((1, 2)));
        for (sub, t) in [(a, 5), (b, 6), (again, 7), (conflict, 8)] {
            encode_and_accept(&mut g, &store, sub, t);
        }
        let open = g.open.as_ref().unwrap();
        assert_eq!(g.outstanding, 1, "one batch opened");
        assert_eq!(open.old_size, 10);
        assert_eq!(
            open.new_size(),
            13,
            "the repeat and the conflict added nothing"
        );
        let firsts: Vec<(u64, usize, u64)> = open
            .accepted
            .iter()
            .map(|a| (a.first_index, a.count, a.time_ms))
            .collect();
        assert_eq!(firsts, [(10, 2, 5), (12, 1, 6)]);
        assert_eq!(open.fields[2].principal.as_deref(), Some("token:t"));
        for (i, leaf) in open.entries.iter().enumerate() {
            assert_eq!(open.leaf_hashes[i], sealtrail_spec::leaf_hash(leaf));
            let env = LeafEnvelope::decode(leaf).unwrap();
            let record = PrivateRecord::decode(open.records[i].as_ref().unwrap()).unwrap();
            assert_eq!(record.payload, [b"a".as_slice(), b"b", b"c"][i]);
            assert_eq!(record.check(&env), Ok(()));
        }
        let salts: std::collections::HashSet<_> = open
            .records
            .iter()
            .map(|r| PrivateRecord::decode(r.as_ref().unwrap()).unwrap().salt)
            .collect();
        assert_eq!(salts.len(), 3, "every record has its own salt");
        assert!(matches!(
            open.duplicates.as_slice(),
            [Duplicate::InBatch { slot: 0, .. }]
        ));
        assert!(matches!(
            rconflict.try_recv(),
            Ok(Err(SequenceError::IdempotencyConflict(10)))
        ));
        assert_eq!(open.idempotency.len(), 1);
        assert_eq!(open.idempotency[0].1.index, 10);
    }

    #[test]
    fn a_key_in_a_batch_the_writer_took_is_answered_from_it() {
        let store = MemStore::new();
        let mut g = Gather::new(4, 0);
        let hashes = vec![sealtrail_spec::leaf_hash(b"earlier")];
        g.in_flight.insert(
            [3; 32],
            InFlightKey {
                request_hash: [9; 32],
                first_index: 2,
                leaf_hashes: hashes.clone(),
                time_ms: 77,
            },
        );
        let (same, _r) = submission(&["p"], Some((3, 9)));
        encode_and_accept(&mut g, &store, same, 100);
        let open = g.open.as_ref().unwrap();
        assert_eq!(open.new_size(), 4, "nothing new was added");
        match open.duplicates.as_slice() {
            [
                Duplicate::InFlight {
                    first_index,
                    hashes: h,
                    time_ms,
                    ..
                },
            ] => assert_eq!((*first_index, h, *time_ms), (2, &hashes, 77)),
            _ => panic!("expected one in-flight duplicate"),
        }
        let (other, mut r) = submission(&["p"], Some((3, 8)));
        encode_and_accept(&mut g, &store, other, 101);
        assert!(matches!(
            r.try_recv(),
            Ok(Err(SequenceError::IdempotencyConflict(2)))
        ));
    }

    #[test]
    fn an_import_must_decode_match_its_records_and_keep_times_in_order() {
        let entry = |t: u64| {
            let record = PrivateRecord {
                salt: [t as u8; 32],
                principal: "p".into(),
                payload: b"x".to_vec(),
            };
            let leaf = LeafEnvelope {
                time_ms: t,
                content_type: "c".into(),
                event_type: None,
                payload_size: 1,
                commitment: record.commitment(),
            }
            .encode()
            .unwrap();
            ImportEntry {
                leaf,
                record: ImportRecord::Live(record),
            }
        };
        let (open, last) =
            check_import(Open::new(0), vec![entry(5), entry(5), entry(9)], 5).unwrap();
        assert_eq!((open.new_size(), last), (3, 9));
        assert_eq!(open.records.len(), 3);
        let Err(SequenceError::Invalid(why)) =
            check_import(Open::new(7), vec![entry(5), entry(4)], 0)
        else {
            panic!("a time going backwards was accepted");
        };
        assert!(why.contains("entry 8"), "{why}");
        let junk = ImportEntry {
            leaf: b"junk".to_vec(),
            record: ImportRecord::Erased(9),
        };
        assert!(matches!(
            check_import(Open::new(0), vec![junk], 0),
            Err(SequenceError::Invalid(_))
        ));
        assert!(matches!(
            check_import(Open::new(0), vec![entry(1)], 2),
            Err(SequenceError::Invalid(_))
        ));
        // A record that is not the one the leaf commits to.
        let mut forged = entry(3);
        if let ImportRecord::Live(r) = &mut forged.record {
            r.payload = b"y".to_vec();
        }
        let Err(SequenceError::Invalid(why)) = check_import(Open::new(0), vec![forged], 0) else {
            panic!("a forged record was accepted");
        };
        assert!(why.contains("commitment"), "{why}");
        // An erased record: a tombstone, naming a later erasure entry.
        let mut erased = entry(3);
        erased.record = ImportRecord::Erased(4);
        let (open, _) = check_import(Open::new(2), vec![erased], 0).unwrap();
        assert_eq!(open.records, vec![None]);
        assert_eq!(open.tombstones, vec![(2, 4)]);
        let mut early = entry(3);
        early.record = ImportRecord::Erased(1);
        assert!(check_import(Open::new(2), vec![early], 0).is_err());
    }
}
