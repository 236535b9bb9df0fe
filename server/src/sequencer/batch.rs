//! The batch logic, without threads: encoding submissions into leaves, idempotency keys and
//! duplicates, imports, and the answers to a batch that will not be written.

use std::collections::HashMap;

use sealtrail_spec::Hash;
use sealtrail_spec::envelope::LeafEnvelope;

use super::*;
use crate::store::{IdempotencyRecord, LogStore};

/// Decodes imported leaves strictly into `open`, their sequencing times never going backwards
/// from `time_ms`; returns the batch and the last time.
pub(super) fn check_import(
    mut open: Open,
    leaves: Vec<Vec<u8>>,
    mut time_ms: u64,
) -> Result<(Open, u64), SequenceError> {
    for (index, leaf) in (open.old_size..).zip(leaves) {
        let env = LeafEnvelope::decode(&leaf)
            .map_err(|e| SequenceError::Invalid(format!("entry {index}: {e}")))?;
        if env.time_ms < time_ms {
            return Err(SequenceError::Invalid(format!(
                "entry {index}: sequencing time {} is before {time_ms}",
                env.time_ms
            )));
        }
        time_ms = env.time_ms;
        open.leaf_hashes.push(sealtrail_spec::leaf_hash(&leaf));
        open.payload_bytes += env.payload.len() as u64;
        open.fields.push((env.principal, env.event_type));
        open.entries.push(leaf);
    }
    Ok((open, time_ms))
}

/// Whether a submission may be sequenced on the caller's thread (see [`INLINE_MAX_ENTRIES`]).
pub(super) fn small_enough(entries: &[NewEntry]) -> bool {
    entries.len() <= INLINE_MAX_ENTRIES && payload_bytes(entries) <= INLINE_MAX_BYTES
}

pub(super) fn payload_bytes(entries: &[NewEntry]) -> u64 {
    entries.iter().map(|e| e.payload.len() as u64).sum()
}

/// Encodes a submission's entries at `time_ms`: the submission, its leaves and payload bytes, or
/// `None` once it has been answered with the error.
pub(super) fn encode(
    mut sub: Submission,
    time_ms: u64,
) -> Option<(Submission, Vec<EncodedLeaf>, u64)> {
    let bytes = payload_bytes(&sub.entries);
    match encode_entries(std::mem::take(&mut sub.entries), time_ms) {
        Ok(leaves) => Some((sub, leaves, bytes)),
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
    if let Some((sub, leaves, bytes)) = encode(sub, time_ms) {
        add_to_batch(g, store, sub, leaves, bytes, time_ms);
    }
}

/// Adds an encoded submission to the open batch (opening one if needed), as a duplicate of an
/// earlier request with its idempotency key, or answers it now (a conflict).
pub(super) fn add_to_batch(
    g: &mut Gather,
    store: &dyn LogStore,
    sub: Submission,
    leaves: Vec<EncodedLeaf>,
    bytes: u64,
    time_ms: u64,
) {
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
        match check_idempotency(store, &idem, &open.seen, &g.in_flight) {
            Ok(Some(Prior::Stored(index))) => {
                open.duplicates.push(Duplicate::Stored(sub, index, count));
                return;
            }
            Ok(Some(Prior::InBatch(j))) => {
                open.duplicates.push(Duplicate::InBatch(sub, j));
                return;
            }
            Ok(Some(Prior::InFlight(first_index, hashes, time_ms))) => {
                open.duplicates.push(Duplicate::InFlight {
                    sub,
                    first_index,
                    hashes,
                    time_ms,
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
    for (bytes, hash, principal, event_type) in leaves {
        open.entries.push(bytes);
        open.leaf_hashes.push(hash);
        open.fields.push((principal, event_type));
    }
    open.payload_bytes += bytes;
    if let Some(idem) = sub.idempotency {
        open.seen.insert(
            idem.key,
            (idem.request_hash, open.accepted.len(), first_index),
        );
        open.idempotency.push((
            idem.key,
            IdempotencyRecord {
                index: first_index,
                payload_hash: idem.request_hash,
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
) -> Result<(Vec<Hash>, u64), String> {
    let entries = store
        .entries(index, index + n as u64)
        .map_err(|e| e.to_string())?;
    let time_ms = match entries.first() {
        Some(first) => {
            LeafEnvelope::decode(first)
                .map_err(|e| format!("entry {index}: {e}"))?
                .time_ms
        }
        None => return Err(format!("entry {index} is missing")),
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
}

/// Where an idempotency key was used before.
pub(super) enum Prior {
    Stored(u64),
    InBatch(usize),
    InFlight(u64, Vec<Hash>, u64),
}

/// Where `idem`'s key was used before: in the open batch, in a batch the writer took, or in the
/// store (checked last: a key leaves `in_flight` only after its batch is durable). A different
/// request under the same key is a conflict.
pub(super) fn check_idempotency(
    store: &dyn LogStore,
    idem: &Idempotency,
    seen: &HashMap<[u8; 32], ([u8; 32], usize, u64)>,
    in_flight: &InFlight,
) -> Result<Option<Prior>, SequenceError> {
    if let Some((hash, j, first_index)) = seen.get(&idem.key) {
        return if *hash == idem.request_hash {
            Ok(Some(Prior::InBatch(*j)))
        } else {
            Err(SequenceError::IdempotencyConflict(*first_index))
        };
    }
    if let Some((hash, first_index, hashes, time_ms)) = in_flight.get(&idem.key) {
        return if *hash == idem.request_hash {
            Ok(Some(Prior::InFlight(
                *first_index,
                hashes.clone(),
                *time_ms,
            )))
        } else {
            Err(SequenceError::IdempotencyConflict(*first_index))
        };
    }
    match store.idempotency(&idem.key) {
        Ok(Some(rec)) if rec.payload_hash == idem.request_hash => {
            Ok(Some(Prior::Stored(rec.index)))
        }
        Ok(Some(rec)) => Err(SequenceError::IdempotencyConflict(rec.index)),
        Ok(None) => Ok(None),
        Err(e) => Err(SequenceError::Unavailable(e.to_string())),
    }
}

/// An encoded leaf, its hash, and the indexed fields moved back out of its envelope.
pub(super) type EncodedLeaf = (Vec<u8>, Hash, String, Option<String>);

/// Builds and hashes the envelopes, moving the entries' fields rather than copying them.
pub(super) fn encode_entries(
    entries: Vec<NewEntry>,
    time_ms: u64,
) -> Result<Vec<EncodedLeaf>, SequenceError> {
    entries
        .into_iter()
        .map(|e| {
            let env = LeafEnvelope {
                time_ms,
                principal: e.principal,
                content_type: e.content_type,
                event_type: e.event_type,
                payload: e.payload,
            };
            let bytes = env
                .encode()
                .map_err(|err| SequenceError::Invalid(err.to_string()))?;
            let hash = sealtrail_spec::leaf_hash(&bytes);
            Ok((bytes, hash, env.principal, env.event_type))
        })
        .collect()
}
