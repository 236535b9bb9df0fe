//! Erasures and legal holds in the sequencer: each runs alone in its batch, prepared only once
//! every earlier batch is committed and answered (so the store it reads is current and no other
//! erasure or hold is in flight), and commits its own entry together with what it changes.
//!
//! An erasure chunk reads each named record and its leaf, skips records already erased and
//! records a hold covers, and builds one erasure entry naming exactly the records it erases.
//! The store removes those records, writes their tombstones and rewrites the principal posting
//! rows in the same transaction as the entry: after a crash either all of it exists or none.

use serde_json::Value;
use tokio::sync::oneshot;

use sealtrail_spec::envelope::LeafEnvelope;
use sealtrail_spec::record::{PrivateRecord, SALT_LEN};

use super::batch::{EncodedLeaf, encode_one};
use super::{NewEntry, SequenceError, Unavailable};
use crate::privacy::{
    ADMIN_CONTENT_TYPE, Conditions, ERASURE_EVENT_TYPE, ErasureNote, HOLD_EVENT_TYPE, Hold,
    RELEASE_EVENT_TYPE, release_payload,
};
use crate::query::PostingChanges;
use crate::store::{LogStore, RecordState, StoreError};

/// An erasure or hold operation for the sequencer.
#[derive(Debug, Clone)]
pub enum AdminOp {
    /// Erase these records (one part of an erasure request).
    Erase {
        /// Indices to erase, ascending, below the published tree size.
        indices: Vec<u64>,
        /// What the erasure entry records.
        note: ErasureNote,
        /// Who asked (the erasure entry's principal).
        requested_by: String,
    },
    /// Place a legal hold.
    PlaceHold {
        /// What it covers (at least one condition).
        covers: Conditions,
        /// Why.
        reason: String,
        /// Who asked.
        by: String,
    },
    /// Release the legal hold with this id.
    ReleaseHold {
        /// The hold's id.
        id: u64,
        /// Why.
        reason: String,
        /// Who asked.
        by: String,
    },
}

/// What an admin operation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminOutcome {
    /// An erasure part.
    Erased {
        /// The erasure entry's index; `None` when nothing was left to erase (no entry written).
        entry: Option<u64>,
        /// Records erased.
        erased: u64,
        /// Records skipped because a legal hold covers them.
        held: Vec<u64>,
        /// Records already erased before.
        already: u64,
        /// Records of the log's own entries (`sealtrail.*`), which are never erased.
        protected: u64,
    },
    /// A hold was placed; its id is its entry's index.
    HoldPlaced(Hold),
    /// A hold was released by the entry at this index.
    HoldReleased {
        /// The release entry's index.
        entry: u64,
    },
}

pub(super) type AdminReply = oneshot::Sender<Result<AdminOutcome, SequenceError>>;

/// What a prepared admin batch changes besides appending its entry.
pub(super) struct Effects {
    pub(super) outcome: AdminOutcome,
    pub(super) erased: Vec<(u64, u64)>,
    pub(super) postings: PostingChanges,
    pub(super) hold_placed: Option<Hold>,
    pub(super) hold_released: Option<u64>,
}

/// Whom to answer and what to change in the sequencer's hold list once an admin batch is
/// durable (its erasures travel in the `Open` itself).
pub(super) struct AdminWork {
    pub(super) reply: AdminReply,
    pub(super) outcome: AdminOutcome,
    pub(super) hold_placed: Option<Hold>,
    pub(super) hold_released: Option<u64>,
}

/// A prepared operation: nothing to write (answered at once), or one entry and its effects.
pub(super) enum Prepared {
    Nothing(AdminOutcome),
    Batch(Box<(EncodedLeaf, Effects)>),
}

fn read_error(e: StoreError) -> SequenceError {
    SequenceError::Unavailable(Unavailable::Read(std::sync::Arc::new(e)))
}

fn corrupt(index: u64, e: &dyn std::fmt::Display) -> SequenceError {
    read_error(StoreError::Corrupt(format!("entry {index}: {e}")))
}

/// Builds the log's own entry: a fresh salt, JSON content.
fn own_entry(
    principal: &str,
    event_type: &str,
    payload: Vec<u8>,
    time_ms: u64,
) -> Result<EncodedLeaf, SequenceError> {
    let mut salt = [0u8; SALT_LEN];
    getrandom::fill(&mut salt)
        .map_err(|e| SequenceError::Unavailable(Unavailable::Random(e.to_string())))?;
    encode_one(
        NewEntry {
            principal: principal.to_owned(),
            content_type: ADMIN_CONTENT_TYPE.to_owned(),
            event_type: Some(event_type.to_owned()),
            payload,
        },
        salt,
        time_ms,
    )
}

/// Prepares `op` on a store of `size` entries (all committed), with `holds` in force; the new
/// entry, if any, goes at index `size` with sequencing time `time_ms`.
pub(super) fn prepare(
    store: &dyn LogStore,
    holds: &[Hold],
    op: AdminOp,
    size: u64,
    time_ms: u64,
) -> Result<Prepared, SequenceError> {
    match op {
        AdminOp::Erase {
            indices,
            note,
            requested_by,
        } => prepare_erase(store, holds, &indices, &note, &requested_by, size, time_ms),
        AdminOp::PlaceHold { covers, reason, by } => {
            let hold = Hold {
                id: size,
                covers,
                reason,
                placed_by: by,
                placed_at_ms: time_ms,
            };
            own_entry(
                &hold.placed_by,
                HOLD_EVENT_TYPE,
                hold.entry_payload(),
                time_ms,
            )
            .map(|leaf| {
                Prepared::Batch(Box::new((
                    leaf,
                    work(
                        AdminOutcome::HoldPlaced(hold.clone()),
                        Vec::new(),
                        PostingChanges::default(),
                        Some(hold),
                        None,
                    ),
                )))
            })
        }
        AdminOp::ReleaseHold { id, reason, by } => {
            if holds.iter().all(|h| h.id != id) {
                Err(SequenceError::Invalid(format!(
                    "no legal hold {id} is in force"
                )))
            } else {
                own_entry(
                    &by,
                    RELEASE_EVENT_TYPE,
                    release_payload(id, &reason),
                    time_ms,
                )
                .map(|leaf| {
                    Prepared::Batch(Box::new((
                        leaf,
                        work(
                            AdminOutcome::HoldReleased { entry: size },
                            Vec::new(),
                            PostingChanges::default(),
                            None,
                            Some(id),
                        ),
                    )))
                })
            }
        }
    }
}

fn work(
    outcome: AdminOutcome,
    erased: Vec<(u64, u64)>,
    postings: PostingChanges,
    hold_placed: Option<Hold>,
    hold_released: Option<u64>,
) -> Effects {
    Effects {
        outcome,
        erased,
        postings,
        hold_placed,
        hold_released,
    }
}

fn prepare_erase(
    store: &dyn LogStore,
    holds: &[Hold],
    indices: &[u64],
    note: &ErasureNote,
    requested_by: &str,
    size: u64,
    time_ms: u64,
) -> Result<Prepared, SequenceError> {
    let mut erase: Vec<(u64, String)> = Vec::new();
    let (mut held, mut already, mut protected) = (Vec::new(), 0u64, 0u64);
    for &index in indices {
        if index >= size {
            return Err(SequenceError::Invalid(format!(
                "entry {index} is not in the log of size {size}"
            )));
        }
        let record = match store.record(index).map_err(read_error)? {
            RecordState::Live(bytes) => {
                PrivateRecord::decode(&bytes).map_err(|e| corrupt(index, &e))?
            }
            RecordState::Erased(_) => {
                already += 1;
                continue;
            }
            RecordState::Absent => {
                return Err(read_error(StoreError::Corrupt(format!(
                    "the record of entry {index} is missing"
                ))));
            }
        };
        let leaf = store
            .entry(index)
            .map_err(read_error)?
            .ok_or_else(|| corrupt(index, &"missing"))?;
        let env = LeafEnvelope::decode(&leaf).map_err(|e| corrupt(index, &e))?;
        if env.is_reserved() {
            protected += 1;
            continue;
        }
        if holds.iter().any(|h| {
            h.covers.covers(
                Some(&record.principal),
                env.event_type.as_deref(),
                env.time_ms,
            )
        }) {
            held.push(index);
            continue;
        }
        erase.push((index, record.principal));
    }
    if erase.is_empty() {
        return Ok(Prepared::Nothing(AdminOutcome::Erased {
            entry: None,
            erased: 0,
            held,
            already,
            protected,
        }));
    }
    let erased_indices: Vec<u64> = erase.iter().map(|(i, _)| *i).collect();
    let leaf = own_entry(
        requested_by,
        ERASURE_EVENT_TYPE,
        note.payload(&erased_indices),
        time_ms,
    )?;
    let postings = crate::query::remove_principal_postings(store, &erase).map_err(read_error)?;
    let outcome = AdminOutcome::Erased {
        entry: Some(size),
        erased: erase.len() as u64,
        held,
        already,
        protected,
    };
    let tombstones = erased_indices.into_iter().map(|i| (i, size)).collect();
    Ok(Prepared::Batch(Box::new((
        leaf,
        work(outcome, tombstones, postings, None, None),
    ))))
}

/// The selector an erasure entry records for an explicit index list.
pub fn indices_selector() -> Value {
    serde_json::json!({ "indices": true })
}
