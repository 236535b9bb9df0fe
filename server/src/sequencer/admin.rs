//! Erasures and legal holds in the sequencer. One admin operation at a time (the handle holds a
//! lock from planning to the answer): it is **planned** off the sequencer thread against the
//! committed store (the slow part, reading every named record and its leaf, so appends keep
//! flowing meanwhile), then **applied** on the sequencer thread, where its entry gets its index
//! and time and commits alone in its batch together with what it changes.
//!
//! An erasure part reads each named record and its leaf, skips records already erased, the
//! log's own entries and records a hold covers, and builds one erasure entry naming exactly the
//! records it erases. The store removes those records, writes their tombstones and rewrites the
//! principal posting rows in the same transaction as the entry: after a crash either all of it
//! exists or none.

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

/// What a committed admin batch changes besides appending its entry.
pub(super) struct Effects {
    pub(super) outcome: AdminOutcome,
    pub(super) erased: Vec<(u64, u64)>,
    pub(super) postings: PostingChanges,
    pub(super) hold_placed: Option<Hold>,
    pub(super) hold_released: Option<u64>,
}

/// Whom to answer and what to change in the hold list once an admin batch is durable (its
/// erasures travel in the `Open` itself).
pub(super) struct AdminWork {
    pub(super) reply: AdminReply,
    pub(super) outcome: AdminOutcome,
    pub(super) hold_placed: Option<Hold>,
    pub(super) hold_released: Option<u64>,
}

/// An operation planned against the committed store: nothing to write (answered at once), or
/// the entry to append and what it changes.
pub(super) enum Plan {
    Nothing(AdminOutcome),
    Apply(Box<Planned>),
}

/// Everything of an admin batch that does not depend on where it lands: made off the sequencer
/// thread (the slow part: reading the records), applied on it.
pub(crate) struct Planned {
    principal: String,
    event_type: &'static str,
    payload: Vec<u8>,
    kind: PlannedKind,
}

enum PlannedKind {
    Erase {
        indices: Vec<u64>,
        postings: PostingChanges,
        held: Vec<u64>,
        already: u64,
        protected: u64,
    },
    Hold {
        covers: Conditions,
        reason: String,
    },
    Release(u64),
}

fn read_error(e: StoreError) -> SequenceError {
    SequenceError::Unavailable(Unavailable::Read(std::sync::Arc::new(e)))
}

fn corrupt(index: u64, e: &dyn std::fmt::Display) -> SequenceError {
    read_error(StoreError::Corrupt(format!("entry {index}: {e}")))
}

/// Plans `op` on the committed entries below `size`, with `holds` in force. Callers serialise
/// admin operations (one plan-and-apply at a time), so nothing it read about records and holds
/// changes before the plan is applied; appends may commit meanwhile, which it does not read.
pub(super) fn plan(
    store: &dyn LogStore,
    holds: &[Hold],
    op: AdminOp,
    size: u64,
) -> Result<Plan, SequenceError> {
    let planned = |principal: String, event_type, payload, kind| {
        Plan::Apply(Box::new(Planned {
            principal,
            event_type,
            payload,
            kind,
        }))
    };
    match op {
        AdminOp::Erase {
            indices,
            note,
            requested_by,
        } => plan_erase(store, holds, &indices, &note, requested_by, size),
        AdminOp::PlaceHold { covers, reason, by } => {
            let payload = Hold::entry_payload_for(&covers, &reason);
            Ok(planned(
                by,
                HOLD_EVENT_TYPE,
                payload,
                PlannedKind::Hold { covers, reason },
            ))
        }
        AdminOp::ReleaseHold { id, reason, by } => {
            if holds.iter().all(|h| h.id != id) {
                return Err(SequenceError::Invalid(format!(
                    "no legal hold {id} is in force"
                )));
            }
            Ok(planned(
                by,
                RELEASE_EVENT_TYPE,
                release_payload(id, &reason),
                PlannedKind::Release(id),
            ))
        }
    }
}

/// The entry of a plan, at index `index` and sequencing time `time_ms`, and what it changes.
pub(super) fn apply(
    p: Planned,
    index: u64,
    time_ms: u64,
) -> Result<(EncodedLeaf, Effects), SequenceError> {
    let mut salt = [0u8; SALT_LEN];
    getrandom::fill(&mut salt)
        .map_err(|e| SequenceError::Unavailable(Unavailable::Random(e.to_string())))?;
    let leaf = encode_one(
        NewEntry {
            principal: p.principal.clone(),
            content_type: ADMIN_CONTENT_TYPE.to_owned(),
            event_type: Some(p.event_type.to_owned()),
            payload: p.payload,
        },
        salt,
        time_ms,
    )?;
    let none = |outcome| Effects {
        outcome,
        erased: Vec::new(),
        postings: PostingChanges::default(),
        hold_placed: None,
        hold_released: None,
    };
    let effects = match p.kind {
        PlannedKind::Erase {
            indices,
            postings,
            held,
            already,
            protected,
        } => Effects {
            outcome: AdminOutcome::Erased {
                entry: Some(index),
                erased: indices.len() as u64,
                held,
                already,
                protected,
            },
            erased: indices.into_iter().map(|i| (i, index)).collect(),
            postings,
            hold_placed: None,
            hold_released: None,
        },
        PlannedKind::Hold { covers, reason } => {
            let hold = Hold {
                id: index,
                covers,
                reason,
                placed_by: p.principal,
                placed_at_ms: time_ms,
            };
            Effects {
                hold_placed: Some(hold.clone()),
                ..none(AdminOutcome::HoldPlaced(hold))
            }
        }
        PlannedKind::Release(id) => Effects {
            hold_released: Some(id),
            ..none(AdminOutcome::HoldReleased { entry: index })
        },
    };
    Ok((leaf, effects))
}

fn plan_erase(
    store: &dyn LogStore,
    holds: &[Hold],
    indices: &[u64],
    note: &ErasureNote,
    requested_by: String,
    size: u64,
) -> Result<Plan, SequenceError> {
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
        return Ok(Plan::Nothing(AdminOutcome::Erased {
            entry: None,
            erased: 0,
            held,
            already,
            protected,
        }));
    }
    let indices: Vec<u64> = erase.iter().map(|(i, _)| *i).collect();
    let postings = crate::query::remove_principal_postings(store, &erase).map_err(read_error)?;
    Ok(Plan::Apply(Box::new(Planned {
        principal: requested_by,
        event_type: ERASURE_EVENT_TYPE,
        payload: note.payload(&indices),
        kind: PlannedKind::Erase {
            indices,
            postings,
            held,
            already,
            protected,
        },
    })))
}

/// The selector an erasure entry records for an explicit index list.
pub fn indices_selector() -> Value {
    serde_json::json!({ "indices": true })
}
