//! `add-checkpoint` (<https://c2sp.org/tlog-witness>, v1.0.0 with the `main` clarifications),
//! checked in this order:
//!
//! | check | answer |
//! |---|---|
//! | body larger than `limits.max_body_bytes` | 413 (in the handler) |
//! | no room in `limits.max_inflight_body_bytes` for the body | 503, `Retry-After: 1`, body unread |
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
use std::time::Instant;

use sealtrail_net::clock::unix_secs;
use sealtrail_net::ratelimit::retry_after_secs;
use sealtrail_spec::checkpoint::{self, Checkpoint, CheckpointError, VerifiedCheckpoint};
use sealtrail_spec::merkle::verify_consistency;
use sealtrail_spec::note::{Note, NoteError, NoteSignature, Verifier as _};
use sealtrail_spec::witness::{AddCheckpointRequest, WitnessError, format_signature_lines};
use sealtrail_spec::{EMPTY_ROOT, Hash};

use crate::anchor::Latest;
use crate::state::{Core, Log};
use crate::store::{Cosigned, SplitView, StoreError, Swap};

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
    /// Too many request bodies are arriving at once (`limits.max_inflight_body_bytes`); nothing
    /// of this one was read.
    #[error("too many request bodies are arriving at once; retry shortly")]
    Busy,
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
            AddError::Busy => 503,
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
            AddError::Busy => "busy",
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

/// Handles one add-checkpoint body; returns the 200 body (our cosignature line). One step per
/// check, in the order of the table above.
pub(crate) async fn add_checkpoint(core: &Arc<Core>, body: &[u8]) -> Result<String, AddError> {
    let (req, origin) = parse_request(body)?;
    let log = known_log(core, &origin)?;
    let verified = check_log_signature(&req, log)?;
    let stored = read_state(core, &log.origin).await?;
    let expected = expected_state(stored.as_ref());
    check_old_size(&req, verified.checkpoint(), expected.0)?;
    check_consistency(core, &req, verified.checkpoint(), stored.as_ref(), expected).await?;
    let (cosignature, note) = cosign(core, log, &verified)?;
    compare_and_swap(core, &log.origin, expected, &note).await?;
    announce(core, log, req.old_size(), verified.checkpoint(), &note);
    Ok(format_signature_lines(&[cosignature]))
}

/// The request, and the origin its checkpoint claims: parsed without any signature work, so an
/// unknown origin (404) and the per-log limit (429) come before the signature check (403).
fn parse_request(body: &[u8]) -> Result<(AddCheckpointRequest, String), AddError> {
    let req = AddCheckpointRequest::parse(body).map_err(bad_request)?;
    let note = Note::parse(req.checkpoint()).map_err(|e| AddError::BadRequest(e.to_string()))?;
    let claimed = Checkpoint::parse(note.text())
        .map_err(|e| AddError::BadRequest(format!("checkpoint: {e}")))?;
    let origin = claimed.origin().to_owned();
    Ok((req, origin))
}

/// The configured log of `origin` (404 if none), once its rate limit allows (429).
fn known_log<'a>(core: &'a Core, origin: &str) -> Result<&'a Log, AddError> {
    let log = core
        .log(origin)
        .ok_or_else(|| AddError::UnknownOrigin(origin.to_owned()))?;
    core.per_log
        .check(log.origin.as_str(), Instant::now())
        .map_err(|wait| AddError::RateLimited(retry_after_secs(wait)))?;
    Ok(log)
}

/// The checkpoint, verified with the log's keys: 403 without a valid signature from one of them
/// or with an invalid one, 400 if the note is not a checkpoint of this log.
fn check_log_signature(
    req: &AddCheckpointRequest,
    log: &Log,
) -> Result<VerifiedCheckpoint, AddError> {
    checkpoint::open(req.checkpoint(), &log.origin, &log.verifiers()).map_err(|e| match e {
        CheckpointError::Note(
            e @ (NoteError::InvalidSignature { .. }
            | NoteError::Unverified
            | NoteError::AmbiguousKey { .. }),
        ) => AddError::Forbidden(format!("checkpoint signature: {e}")),
        other => AddError::BadRequest(format!("checkpoint: {other}")),
    })
}

/// The checkpoint cosigned last for `origin`, if any; 403 while a split view is recorded.
async fn read_state(core: &Arc<Core>, origin: &str) -> Result<Option<Cosigned>, AddError> {
    let o = origin.to_owned();
    let (blocked, stored) = core
        .with_store(move |s| Ok((s.split_view(&o)?.is_some(), s.latest(&o)?)))
        .await?;
    if blocked {
        return Err(AddError::SplitView(origin.to_owned()));
    }
    Ok(stored)
}

/// The (size, root) the request must extend: the stored checkpoint's, or the empty tree.
fn expected_state(stored: Option<&Cosigned>) -> (u64, Hash) {
    stored.map_or((0, EMPTY_ROOT), |c| {
        (c.checkpoint.size(), c.checkpoint.root())
    })
}

/// `old` must not exceed the checkpoint's size (400), then must be the stored size (409, which
/// tells the client the size to prove from).
fn check_old_size(
    req: &AddCheckpointRequest,
    new: &Checkpoint,
    stored_size: u64,
) -> Result<(), AddError> {
    let old = req.old_size();
    if old > new.size() {
        return Err(AddError::BadRequest(format!(
            "old size {old} is larger than the checkpoint size {}",
            new.size()
        )));
    }
    if old != stored_size {
        return Err(AddError::Conflict(stored_size));
    }
    Ok(())
}

/// The checkpoint must extend the stored one, `(old, old_root)` (422 otherwise): the empty tree
/// has the empty root and needs no proof, an equal size must have an equal root (else a split
/// view, recorded and reported), and the consistency proof from `old` must verify. `old` is the
/// request's old size too ([`check_old_size`] came first), and `new` is a verified checkpoint of
/// this log, so its origin is the log's.
async fn check_consistency(
    core: &Arc<Core>,
    req: &AddCheckpointRequest,
    new: &Checkpoint,
    stored: Option<&Cosigned>,
    (old, old_root): (u64, Hash),
) -> Result<(), AddError> {
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
    if let Some(stored) = stored
        && new.size() == old
        && new.root() != old_root
    {
        core.report_split_view(SplitView {
            origin: new.origin().to_owned(),
            detected_at: unix_secs(),
            source: "add-checkpoint".into(),
            reason: format!(
                "two checkpoints of size {} with different root hashes",
                new.size()
            ),
            ours: String::from_utf8_lossy(&stored.note).into_owned(),
            theirs: String::from_utf8_lossy(req.checkpoint()).into_owned(),
        })
        .await;
        return Err(AddError::Inconsistent(format!(
            "checkpoint has size {} like the stored one but a different root hash",
            new.size()
        )));
    }
    verify_consistency(old, new.size(), &old_root, &new.root(), req.proof())
        .map_err(|e| AddError::Inconsistent(format!("consistency proof: {e}")))
}

/// Our cosignature, and the note the monitoring API will serve: the checkpoint text, the log
/// signatures we verified (unknown lines such as other witnesses' cosignatures are dropped) and
/// our line.
fn cosign(
    core: &Core,
    log: &Log,
    verified: &VerifiedCheckpoint,
) -> Result<(NoteSignature, Vec<u8>), AddError> {
    let text = verified.note().text().to_owned();
    let timestamp = unix_secs();
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
    let note = Note::new(&text, log_sigs)
        .map_err(|e| AddError::Internal(format!("building the cosigned note: {e}")))?
        .to_bytes();
    Ok((cosignature, note))
}

/// Stores the cosigned note durably if the state is still the `expected` one read before the
/// checks: 409 with the new size if another request advanced it meanwhile, 403 if a split view
/// was recorded meanwhile.
async fn compare_and_swap(
    core: &Arc<Core>,
    origin: &str,
    expected: (u64, Hash),
    note: &[u8],
) -> Result<(), AddError> {
    let (o, n) = (origin.to_owned(), note.to_vec());
    match core
        .with_store(move |s| s.compare_and_swap(&o, expected, &n))
        .await?
    {
        Swap::Stored => Ok(()),
        Swap::Conflict(size) => Err(AddError::Conflict(size)),
        Swap::Blocked => Err(AddError::SplitView(origin.to_owned())),
    }
}

/// After the swap: the metric, the log line, and the anchors' latest checkpoint.
fn announce(core: &Core, log: &Log, old: u64, new: &Checkpoint, note: &[u8]) {
    let origin = log.origin.as_str();
    core.metrics
        .cosigned_size
        .with_label_values(&[origin])
        .set(crate::metrics::gauge_value(new.size()));
    tracing::info!(origin = %origin, old, size = new.size(), root = %new.root().to_base64(), "cosigned");
    core.publish_latest(Latest {
        origin: origin.to_owned(),
        size: new.size(),
        root_base64: new.root().to_base64(),
        note: String::from_utf8_lossy(note).into_owned(),
    });
}
