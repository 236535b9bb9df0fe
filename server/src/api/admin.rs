//! The erasure and legal-hold API (admin role; the guard enforces it for every `/v1/admin` route):
//!
//! - `POST /v1/admin/erasures`: erase the records an index list or conditions select;
//! - `GET /v1/admin/holds`: the holds in force;
//! - `POST /v1/admin/holds`: place a hold;
//! - `POST /v1/admin/holds/{id}/release`: release one.
//!
//! An erasure is split into parts of at most [`ERASURE_CHUNK`] records; each part is one
//! erasure entry committed atomically with the removal of its records. A request that fails
//! half-way has erased the parts it reports; repeating it finishes the rest (records already
//! erased are counted, not erased twice).

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::read::{Caller, blocking, principal_of};
use super::write::sequence_error;
use super::{ApiError, AppState, read_body};
use crate::privacy::{
    Conditions, ERASURE_CHUNK, ErasureNote, Hold, MAX_LISTED_INDICES, check_reason, new_request_id,
};
use crate::query::{QueryError, SearchQuery, search};
use crate::sequencer::{AdminOp, AdminOutcome, indices_selector};

use crate::config::ADMIN_BODY_BYTES as MAX_ADMIN_BODY;

/// `POST /v1/admin/erasures`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EraseRequest {
    /// Explicit indices (alone, without conditions).
    #[serde(default)]
    pub indices: Option<Vec<u64>>,
    /// Conditions, every one of which must hold (at least one, unless `indices` is given).
    #[serde(flatten)]
    pub conditions: Conditions,
    /// Why (recorded in the erasure entry).
    pub reason: String,
}

/// `POST /v1/admin/holds`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HoldRequest {
    /// What the hold covers (at least one condition).
    #[serde(flatten)]
    pub covers: Conditions,
    /// Why.
    pub reason: String,
}

/// `POST /v1/admin/holds/{id}/release`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ReleaseRequest {
    /// Why.
    pub reason: String,
}

async fn json_body<T: serde::de::DeserializeOwned>(
    st: &AppState,
    peer: super::ClientIp,
    headers: &HeaderMap,
    body: Body,
) -> Result<T, ApiError> {
    let bytes = read_body(st, peer, body, headers, MAX_ADMIN_BODY).await?;
    serde_json::from_slice(&bytes).map_err(|e| ApiError::BadRequest(format!("request body: {e}")))
}

/// Totals over the parts of one erasure request.
#[derive(Debug, Default)]
struct Totals {
    erased: u64,
    already: u64,
    protected: u64,
    held: Vec<u64>,
    held_count: u64,
    entries: Vec<u64>,
}

impl Totals {
    fn add(&mut self, outcome: AdminOutcome) {
        if let AdminOutcome::Erased {
            entry,
            erased,
            held,
            already,
            protected,
        } = outcome
        {
            self.erased += erased;
            self.already += already;
            self.protected += protected;
            self.held_count += held.len() as u64;
            self.held.extend(
                held.into_iter()
                    .take(100usize.saturating_sub(self.held.len())),
            );
            self.entries.extend(entry);
        }
    }

    fn json(&self, request_id: &str, tree_size: u64) -> serde_json::Value {
        json!({
            "request_id": request_id,
            "erased": self.erased,
            "already_erased": self.already,
            "protected": self.protected,
            "held": self.held_count,
            "held_indices": self.held,
            "erasure_entries": self.entries,
            "tree_size": tree_size,
        })
    }
}

/// The error of an erasure that stopped half-way, saying what it did before.
fn partial(e: ApiError, done: &Totals) -> ApiError {
    if done.entries.is_empty() {
        return e;
    }
    let more = format!(
        " (before this, the request erased {} records, erasure entries {:?}; repeat it to \
         finish: erased records are skipped)",
        done.erased, done.entries
    );
    match e {
        ApiError::Busy(m) => ApiError::Busy(m + &more),
        ApiError::Unavailable(m) => ApiError::Unavailable(m + &more),
        ApiError::DiskFull(m) => ApiError::DiskFull(m + &more),
        ApiError::BadRequest(m) => ApiError::BadRequest(m + &more),
        other => other,
    }
}

/// Erases what `req` selects, part by part, as `by`. Shared by the HTTP handler and the
/// retention job's callers in tests.
pub async fn erase(
    st: &AppState,
    req: EraseRequest,
    by: String,
) -> Result<serde_json::Value, ApiError> {
    check_reason(&req.reason).map_err(ApiError::BadRequest)?;
    req.conditions.validate().map_err(ApiError::BadRequest)?;
    let size = st.seq.published().size;
    let request_id = new_request_id().map_err(ApiError::Internal)?;
    let note = |part: u32, selector: serde_json::Value| ErasureNote {
        request_id: request_id.clone(),
        part,
        reason: req.reason.clone(),
        selector,
    };
    let mut totals = Totals::default();
    let mut part = 0u32;
    let mut run = async |indices: Vec<u64>, selector: serde_json::Value, totals: &mut Totals| {
        part += 1;
        let op = AdminOp::Erase {
            indices,
            note: note(part, selector),
            requested_by: by.clone(),
        };
        match st.seq.admin(op).await {
            Ok(outcome) => {
                totals.add(outcome);
                Ok(())
            }
            Err(e) => Err(partial(sequence_error(e), totals)),
        }
    };
    match req.indices {
        Some(mut indices) => {
            if !req.conditions.is_empty() {
                return Err(ApiError::BadRequest(
                    "give either indices or conditions, not both".into(),
                ));
            }
            if indices.is_empty() || indices.len() > MAX_LISTED_INDICES {
                return Err(ApiError::BadRequest(format!(
                    "indices must list 1 to {MAX_LISTED_INDICES} entries"
                )));
            }
            indices.sort_unstable();
            indices.dedup();
            if let Some(&last) = indices.last()
                && last >= size
            {
                return Err(ApiError::NotFound(format!(
                    "entry {last} is not in the log (size {size})"
                )));
            }
            for chunk in indices.chunks(ERASURE_CHUNK) {
                run(chunk.to_vec(), indices_selector(), &mut totals).await?;
            }
        }
        None => {
            if req.conditions.is_empty() {
                return Err(ApiError::BadRequest(
                    "an erasure needs indices or at least one condition (principal, event_type, \
                     since_ms, until_ms)"
                        .into(),
                ));
            }
            let c = req.conditions.clone();
            let mut cursor = None;
            loop {
                let q = SearchQuery {
                    since: c.since_ms,
                    until: c.until_ms,
                    event_type: c.event_type.clone(),
                    principal: c.principal.clone(),
                    cursor,
                    limit: ERASURE_CHUNK,
                    newest_first: false,
                };
                let page = blocking(st, move |store, _| {
                    search(store, size, &q).map_err(|e| match e {
                        QueryError::Invalid(m) => ApiError::BadRequest(m),
                        QueryError::Store(e) => ApiError::from(e),
                    })
                })
                .await?;
                if !page.indices.is_empty() {
                    run(page.indices, c.public(), &mut totals).await?;
                }
                match page.next_cursor {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
        }
    }
    Ok(totals.json(&request_id, st.seq.published().size))
}

/// `POST /v1/admin/erasures`.
pub(super) async fn post_erasure(
    State(st): State<AppState>,
    caller: Caller,
    peer: super::ClientIp,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let by = principal_of(caller)?;
    let req: EraseRequest = json_body(&st, peer, &headers, body).await?;
    let v = erase(&st, req, by).await?;
    Ok(axum::Json(v).into_response())
}

/// `GET /v1/admin/holds`.
pub(super) async fn list_holds(State(st): State<AppState>) -> Result<Response, ApiError> {
    let holds = blocking(&st, |store, _| {
        store
            .holds()?
            .into_iter()
            .map(|(_, bytes)| Hold::decode(&bytes).map(|h| h.to_json()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(ApiError::Internal)
    })
    .await?;
    Ok(axum::Json(json!({ "holds": holds })).into_response())
}

/// `POST /v1/admin/holds`.
pub(super) async fn post_hold(
    State(st): State<AppState>,
    caller: Caller,
    peer: super::ClientIp,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let by = principal_of(caller)?;
    let req: HoldRequest = json_body(&st, peer, &headers, body).await?;
    check_reason(&req.reason).map_err(ApiError::BadRequest)?;
    req.covers.validate().map_err(ApiError::BadRequest)?;
    if req.covers.is_empty() {
        return Err(ApiError::BadRequest(
            "a hold needs at least one condition (principal, event_type, since_ms, until_ms)"
                .into(),
        ));
    }
    let op = AdminOp::PlaceHold {
        covers: req.covers,
        reason: req.reason,
        by,
    };
    match st.seq.admin(op).await.map_err(sequence_error)? {
        AdminOutcome::HoldPlaced(hold) => {
            Ok((axum::http::StatusCode::CREATED, axum::Json(hold.to_json())).into_response())
        }
        other => Err(ApiError::Internal(format!("unexpected outcome {other:?}"))),
    }
}

/// `POST /v1/admin/holds/{id}/release`.
pub(super) async fn release_hold(
    State(st): State<AppState>,
    caller: Caller,
    id: super::read::PathParam,
    peer: super::ClientIp,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let by = principal_of(caller)?;
    let id = super::read::path_param(id)?;
    let id = sealtrail_spec::parse_decimal(&id)
        .ok_or_else(|| ApiError::BadRequest(format!("hold id {id:?} is not a number")))?;
    let req: ReleaseRequest = json_body(&st, peer, &headers, body).await?;
    check_reason(&req.reason).map_err(ApiError::BadRequest)?;
    let op = AdminOp::ReleaseHold {
        id,
        reason: req.reason,
        by,
    };
    match st.seq.admin(op).await {
        Ok(AdminOutcome::HoldReleased { entry }) => {
            Ok(axum::Json(json!({ "released": id, "entry": entry })).into_response())
        }
        Ok(other) => Err(ApiError::Internal(format!("unexpected outcome {other:?}"))),
        Err(crate::sequencer::SequenceError::Invalid(m)) => Err(ApiError::NotFound(m)),
        Err(e) => Err(sequence_error(e)),
    }
}
