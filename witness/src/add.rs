//! `add-checkpoint` (<https://c2sp.org/tlog-witness>, v1.0.0 with the `main` clarifications),
//! checked in this order:
//!
//! | check | answer |
//! |---|---|
//! | body larger than `limits.max_body_bytes` | 413 (in the handler) |
//! | overall rate limit | 429 + `Retry-After` (in the handler) |
//! | body or checkpoint malformed | 400 |
//! | origin not configured | 404 |
//! | per-log rate limit | 429 + `Retry-After` |
//! | no valid signature from a log key, or an invalid one | 403 |
//! | a split view is recorded for the log | 403 (body says why; cleared by the operator) |
//! | `old` > checkpoint size | 400 |
//! | `old` ≠ stored size (0 if none) | 409, `text/x.tlog.size`, `<stored size>\n` |
//! | size 0 with a root other than the empty-tree hash | 422 |
//! | `old` 0 with a non-empty proof | 422 |
//! | same size as stored, different root | 422, and recorded as a split view |
//! | consistency proof fails | 422 |
//! | state changed while checking (lost compare-and-swap) | 409 with the new size |
//!
//! On success the checkpoint, its verified log signatures and a fresh cosignature are stored
//! durably (compare-and-swap on the size and root read before checking), and only then is the
//! cosignature line returned. Re-submitting the stored checkpoint is accepted and gets a fresh
//! cosignature.
//!
//! A split view blocks with 403 rather than 409: tlog-witness clients read a 409 as "your
//! `old` is stale" and retry with the size in the body, which must not happen here.

use std::sync::Arc;
use std::time::Duration;

use sealtrail_spec::EMPTY_ROOT;
use sealtrail_spec::checkpoint::{self, Checkpoint, CheckpointError};
use sealtrail_spec::merkle::verify_consistency;
use sealtrail_spec::note::{Note, NoteError, Verifier as _};
use sealtrail_spec::witness::{AddCheckpointRequest, WitnessError, format_signature_lines};

use crate::ratelimit::retry_after_secs;
use crate::state::{Core, Latest, now_secs};
use crate::store::{SplitView, StoreError, Swap};

/// Why add-checkpoint was refused. [`AddError::status`] maps each kind to its HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddError {
    /// Malformed body, or `old` larger than the checkpoint's size.
    #[error("{0}")]
    BadRequest(String),
    /// The body is larger than the limit.
    #[error("request body exceeds {0} bytes")]
    TooLarge(usize),
    /// The origin is not a configured log.
    #[error("unknown log origin {0:?}")]
    UnknownOrigin(String),
    /// No valid signature from the log's keys, or an invalid one.
    #[error("{0}")]
    Forbidden(String),
    /// A split view is recorded for this log.
    #[error(
        "split view detected for log {0:?}: cosigning is suspended until the witness operator \
         clears it"
    )]
    SplitView(String),
    /// `old` is not the stored size; carries the stored size.
    #[error("old size does not match; this witness has size {0}")]
    Conflict(u64),
    /// The checkpoint is not consistent with the stored one.
    #[error("{0}")]
    Inconsistent(String),
    /// Too many requests; retry after this many seconds.
    #[error("too many requests; retry in {0}s")]
    RateLimited(u64),
    /// A failure inside the witness (store). Logged, not sent.
    #[error("{0}")]
    Internal(String),
}

impl AddError {
    /// The HTTP status code.
    pub fn status(&self) -> u16 {
        match self {
            AddError::BadRequest(_) => 400,
            AddError::TooLarge(_) => 413,
            AddError::UnknownOrigin(_) => 404,
            AddError::Forbidden(_) | AddError::SplitView(_) => 403,
            AddError::Conflict(_) => 409,
            AddError::Inconsistent(_) => 422,
            AddError::RateLimited(_) => 429,
            AddError::Internal(_) => 500,
        }
    }

    /// A short static label for metrics.
    pub fn category(&self) -> &'static str {
        match self {
            AddError::BadRequest(_) => "bad_request",
            AddError::TooLarge(_) => "too_large",
            AddError::UnknownOrigin(_) => "unknown_origin",
            AddError::Forbidden(_) => "forbidden",
            AddError::SplitView(_) => "split_view",
            AddError::Conflict(_) => "conflict",
            AddError::Inconsistent(_) => "inconsistent",
            AddError::RateLimited(_) => "rate_limited",
            AddError::Internal(_) => "internal",
        }
    }
}

impl From<StoreError> for AddError {
    fn from(e: StoreError) -> Self {
        AddError::Internal(e.to_string())
    }
}

fn bad_request(e: WitnessError) -> AddError {
    match e {
        WitnessError::TooLarge(n) => AddError::TooLarge(n),
        other => AddError::BadRequest(other.to_string()),
    }
}

/// Handles one add-checkpoint body; returns the 200 body (our cosignature line).
pub(crate) async fn add_checkpoint(core: &Arc<Core>, body: &[u8]) -> Result<String, AddError> {
    let req = AddCheckpointRequest::parse(body).map_err(bad_request)?;
    // The origin first, with no signature work: 404 and the per-log limit come before 403.
    let note = Note::parse(req.checkpoint()).map_err(|e| AddError::BadRequest(e.to_string()))?;
    let body_cp = Checkpoint::parse(note.text())
        .map_err(|e| AddError::BadRequest(format!("checkpoint: {e}")))?;
    let log = core
        .log(body_cp.origin())
        .ok_or_else(|| AddError::UnknownOrigin(body_cp.origin().to_owned()))?;
    core.per_log
        .check(&log.origin)
        .map_err(|wait: Duration| AddError::RateLimited(retry_after_secs(wait)))?;
    let verified =
        checkpoint::open(req.checkpoint(), &log.origin, &log.verifiers()).map_err(|e| match e {
            CheckpointError::Note(
                e @ (NoteError::InvalidSignature { .. }
                | NoteError::Unverified
                | NoteError::AmbiguousKey { .. }),
            ) => AddError::Forbidden(format!("checkpoint signature: {e}")),
            other => AddError::BadRequest(format!("checkpoint: {other}")),
        })?;
    let origin = log.origin.clone();
    let o = origin.clone();
    let (blocked, stored) = core
        .with_store(move |s| Ok((s.split_view(&o)?.is_some(), s.latest(&o)?)))
        .await?;
    if blocked {
        return Err(AddError::SplitView(origin));
    }
    let new = verified.checkpoint();
    let old = req.old_size();
    if old > new.size() {
        return Err(AddError::BadRequest(format!(
            "old size {old} is larger than the checkpoint size {}",
            new.size()
        )));
    }
    let expected = stored.as_ref().map_or((0, EMPTY_ROOT), |c| {
        (c.checkpoint.size(), c.checkpoint.root())
    });
    if old != expected.0 {
        return Err(AddError::Conflict(expected.0));
    }
    if new.size() == 0 && new.root() != EMPTY_ROOT {
        return Err(AddError::Inconsistent(
            "a checkpoint of size 0 must have the empty-tree root".into(),
        ));
    }
    if old == 0 && !req.proof().is_empty() {
        return Err(AddError::Inconsistent(
            "old size is 0 but the consistency proof is not empty".into(),
        ));
    }
    if let Some(stored) = &stored
        && new.size() == expected.0
        && new.root() != expected.1
    {
        let split = SplitView {
            origin: origin.clone(),
            detected_at: now_secs(),
            source: "add-checkpoint".into(),
            reason: format!(
                "two checkpoints of size {} with different root hashes",
                new.size()
            ),
            ours: String::from_utf8_lossy(&stored.note).into_owned(),
            theirs: String::from_utf8_lossy(req.checkpoint()).into_owned(),
        };
        core.report_split_view(split).await;
        return Err(AddError::Inconsistent(format!(
            "checkpoint has size {} like the stored one but a different root hash",
            new.size()
        )));
    }
    verify_consistency(old, new.size(), &expected.1, &new.root(), req.proof())
        .map_err(|e| AddError::Inconsistent(format!("consistency proof: {e}")))?;

    // Cosign, and keep the note the monitoring API serves: the text, the log signatures we
    // verified (unknown lines such as other witnesses' cosignatures are dropped), our line.
    let text = verified.note().text().to_owned();
    let timestamp = now_secs();
    if timestamp == 0 {
        // tlog-witness: the cosignature timestamp MUST NOT be 0.
        return Err(AddError::Internal("the system clock is before 1970".into()));
    }
    let cosignature = core
        .cosigner
        .cosign(&text, timestamp)
        .map_err(|e| AddError::Internal(format!("cosigning: {e}")))?;
    let log_sigs = verified
        .note()
        .signatures()
        .iter()
        .filter(|s| {
            log.verifiers
                .iter()
                .any(|v| v.name() == s.name() && v.key_id() == s.key_id())
        })
        .cloned()
        .chain(std::iter::once(cosignature.clone()))
        .collect();
    let stored_note = Note::new(&text, log_sigs)
        .map_err(|e| AddError::Internal(format!("building the cosigned note: {e}")))?
        .to_bytes();
    let o = origin.clone();
    let n = stored_note.clone();
    match core
        .with_store(move |s| s.compare_and_swap(&o, expected, &n))
        .await?
    {
        Swap::Stored => {}
        Swap::Conflict(size) => return Err(AddError::Conflict(size)),
        Swap::Blocked => return Err(AddError::SplitView(origin)),
    }
    core.metrics
        .cosigned_size
        .with_label_values(&[origin.as_str()])
        .set(crate::metrics::gauge_value(new.size()));
    tracing::info!(origin = %origin, old, size = new.size(), root = %new.root().to_base64(), "cosigned");
    core.publish_latest(Latest {
        origin,
        size: new.size(),
        root_base64: new.root().to_base64(),
        note: String::from_utf8_lossy(&stored_note).into_owned(),
    });
    Ok(format_signature_lines(&[cosignature]))
}
