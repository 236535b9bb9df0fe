//! The write API: `POST /v1/entries` and `POST /v1/entries/batch`.
//!
//! Handlers validate everything they can before queueing (size, content type, JSON, headers), so a
//! bad request never reaches the sequencer; then they wait for the durable commit.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use super::read::inclusion_proof_at;
use super::{ApiError, AppState, QueryResult, is_json_media, media_essence, read_body};
use crate::sequencer::{Idempotency, NewEntry, SequenceError, Sequenced};

use super::read::{Caller, principal_of};

/// Content type recorded when a client sends none.
const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";
/// Longest accepted `Idempotency-Key`.
const MAX_IDEMPOTENCY_KEY: usize = 255;

/// Parsed `?wait=` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// Answer once durable (the default).
    Durable,
    /// Also return the signed checkpoint and an inclusion proof.
    Checkpoint,
    /// Also return a checkpoint that meets the witness policy, and an inclusion proof.
    Cosigned,
}

fn parse_wait(q: &HashMap<String, String>) -> Result<Wait, ApiError> {
    super::read::only_params(q, &["wait"])?;
    match q.get("wait").map(String::as_str) {
        None => Ok(Wait::Durable),
        Some("checkpoint") => Ok(Wait::Checkpoint),
        Some("cosigned") => Ok(Wait::Cosigned),
        Some(other) => Err(ApiError::BadRequest(format!(
            "unsupported wait={other:?}; supported: wait=checkpoint, wait=cosigned"
        ))),
    }
}

/// Refuses `?wait=cosigned` on a log without witnesses, before anything is written.
fn check_wait(st: &AppState, wait: Wait) -> Result<(), ApiError> {
    if wait == Wait::Cosigned && !st.witnessing.enabled() {
        return Err(ApiError::BadRequest(
            "wait=cosigned needs witnesses, and this log has none configured".into(),
        ));
    }
    Ok(())
}

/// The checkpoint (size, signed note) a `?wait=` answer proves against: the commit's own, or
/// the first checkpoint that meets the witness policy and covers the first `end` entries.
async fn proof_checkpoint(
    st: &AppState,
    wait: Wait,
    end: u64,
    done: &Sequenced,
) -> Result<Option<(u64, Arc<Vec<u8>>)>, ApiError> {
    match wait {
        Wait::Durable => Ok(None),
        Wait::Checkpoint => Ok(Some((
            done.published.size,
            done.published.checkpoint.clone(),
        ))),
        Wait::Cosigned => {
            let secs = st.config.witnessing.cosigned_wait_secs;
            match st
                .witnessing
                .wait_cosigned(end, Duration::from_secs(secs))
                .await
            {
                Some(c) => Ok(Some((c.size, c.note.clone()))),
                None => Err(ApiError::WitnessTimeout(format!(
                    "entries {}..{end} are durably appended, but no checkpoint meeting the \
                     witness policy covered them within {secs}s; get the proof later from \
                     GET /v1/proof/{}, or retry with the same Idempotency-Key",
                    done.first_index, done.first_index
                ))),
            }
        }
    }
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, ApiError> {
    headers
        .get(name)
        .map(|v| {
            v.to_str()
                .map_err(|_| ApiError::BadRequest(format!("{name} must be visible ASCII")))
        })
        .transpose()
}

/// The content type as sent (validated) and whether it is JSON.
fn content_type(headers: &HeaderMap) -> Result<(String, bool), ApiError> {
    let ct = header_text(headers, "content-type")?.unwrap_or(DEFAULT_CONTENT_TYPE);
    if ct.is_empty() || ct.len() > sealtrail_spec::envelope::MAX_CONTENT_TYPE_LEN {
        return Err(ApiError::BadRequest(
            "Content-Type must be 1 to 256 characters".into(),
        ));
    }
    if !ct.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(ApiError::BadRequest(
            "Content-Type must be printable ASCII".into(),
        ));
    }
    Ok((ct.to_owned(), is_json_media(&media_essence(ct))))
}

fn event_type(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(v) = header_text(headers, "x-event-type")? else {
        return Ok(None);
    };
    if v.is_empty() || v.len() > sealtrail_spec::envelope::MAX_EVENT_TYPE_LEN {
        return Err(ApiError::BadRequest(
            "X-Event-Type must be 1 to 128 characters".into(),
        ));
    }
    if v.starts_with(sealtrail_spec::envelope::RESERVED_EVENT_TYPE_PREFIX) {
        return Err(ApiError::BadRequest(format!(
            "X-Event-Type {v:?}: the prefix {:?} is reserved for the log's own entries",
            sealtrail_spec::envelope::RESERVED_EVENT_TYPE_PREFIX
        )));
    }
    Ok(Some(v.to_owned()))
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(k) = header_text(headers, "idempotency-key")? else {
        return Ok(None);
    };
    if k.is_empty() || k.len() > MAX_IDEMPOTENCY_KEY || !k.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::BadRequest(
            "Idempotency-Key must be 1 to 255 visible ASCII characters".into(),
        ));
    }
    Ok(Some(k))
}

/// SHA-256 over length-prefixed parts: an unambiguous digest of several fields.
fn digest(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    h.finalize().into()
}

/// Keys are scoped to the principal, so two clients cannot collide or probe each other's keys.
fn idempotency(key: Option<&str>, principal: &str, request: &[&[u8]]) -> Option<Idempotency> {
    key.map(|k| Idempotency {
        key: digest(&[
            b"sealtrail/idempotency-key/v1",
            principal.as_bytes(),
            k.as_bytes(),
        ]),
        request_hash: digest(request),
    })
}

/// What every write request carries besides its body: `?wait=`, `X-Event-Type` and
/// `Idempotency-Key`, all validated.
struct WriteHead<'a> {
    wait: Wait,
    event_type: Option<String>,
    key: Option<&'a str>,
}

fn write_head<'a>(query: QueryResult, headers: &'a HeaderMap) -> Result<WriteHead<'a>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    Ok(WriteHead {
        wait: parse_wait(&q)?,
        event_type: event_type(headers)?,
        key: idempotency_key(headers)?,
    })
}

pub(super) fn sequence_error(e: SequenceError) -> ApiError {
    match e {
        SequenceError::QueueFull => ApiError::Busy("the log is busy; retry shortly".into()),
        SequenceError::IdempotencyConflict(i) => ApiError::Conflict(format!(
            "Idempotency-Key was already used for a different request (entry {i})"
        )),
        SequenceError::IdempotencyErased(i) => ApiError::Conflict(format!(
            "Idempotency-Key was already used; the record of entry {i} it created has been \
             erased, so this request cannot be compared with it: use a new key"
        )),
        SequenceError::Unavailable(why) => {
            ApiError::Unavailable(format!("not accepting writes: {why}"))
        }
        SequenceError::ShuttingDown => ApiError::Unavailable("the server is shutting down".into()),
        SequenceError::Invalid(why) => ApiError::BadRequest(why),
        SequenceError::DiskFull(why) => ApiError::DiskFull(why),
    }
}

fn status_of(s: &Sequenced) -> StatusCode {
    if s.duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    }
}

/// `POST /v1/entries`: one entry, the body is the payload.
pub(super) async fn post_entry(
    State(st): State<AppState>,
    caller: Caller,
    query: QueryResult,
    peer: super::ClientIp,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let WriteHead {
        wait,
        event_type,
        key,
    } = write_head(query, &headers)?;
    check_wait(&st, wait)?;
    let principal = principal_of(caller)?;
    let (ct, is_json) = content_type(&headers)?;
    let limits = &st.config.limits;
    let payload = read_body(&st, peer, body, &headers, limits.max_payload_bytes).await?;
    if payload.is_empty() {
        return Err(ApiError::BadRequest(
            "empty body: the payload is the request body".into(),
        ));
    }
    if is_json {
        json_text(&payload, "the body")?;
    }
    let et = event_type.as_deref().unwrap_or("");
    let idem = idempotency(key, &principal, &[ct.as_bytes(), et.as_bytes(), &payload]);
    let entry = NewEntry {
        principal,
        content_type: ct,
        event_type,
        payload: payload.to_vec(),
    };
    let done = st
        .seq
        .submit(vec![entry], idem)
        .await
        .map_err(sequence_error)?;
    let index = done.first_index;
    let mut reply = AppendReply {
        index,
        leaf_hash: done.leaf_hashes.first().map(|h| h.to_hex()),
        timestamp: done.time_ms,
        tree_size: done.published.size,
        duplicate: done.duplicate,
        checkpoint: None,
        inclusion_proof: None,
        tlog_proof: None,
    };
    if let Some((size, checkpoint)) = proof_checkpoint(&st, wait, index + 1, &done).await? {
        let proof = inclusion_proof_at(&st, index, size).await?;
        reply.tlog_proof = Some(super::read::tlog_proof_text(index, &proof, &checkpoint)?);
        reply.inclusion_proof = Some(proof.iter().map(|h| h.to_base64()).collect());
        reply.checkpoint = Some(String::from_utf8_lossy(&checkpoint).into_owned());
    }
    let mut resp = (status_of(&done), axum::Json(reply)).into_response();
    if let Ok(v) = format!("/v1/entries/{index}").parse() {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

/// The answer to `POST /v1/entries` (serialised directly: it is on every append's path).
#[derive(serde::Serialize)]
struct AppendReply {
    index: u64,
    leaf_hash: Option<String>,
    timestamp: u64,
    tree_size: u64,
    duplicate: bool,
    /// With `?wait=checkpoint` or `?wait=cosigned`: the checkpoint the proofs are against.
    #[serde(skip_serializing_if = "Option::is_none")]
    checkpoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    inclusion_proof: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tlog_proof: Option<String>,
}

/// Splits a batch body into raw JSON items: a JSON array, or NDJSON (one value per line; empty
/// lines are skipped).
/// Checks that `bytes` are one JSON text: UTF-8 (RFC 8259 section 8.1; the parser alone lets
/// invalid bytes inside strings through) and well-formed.
fn json_text(bytes: &[u8], what: &str) -> Result<(), ApiError> {
    std::str::from_utf8(bytes)
        .map_err(|e| ApiError::BadRequest(format!("{what} is not valid JSON: not UTF-8 ({e})")))?;
    serde_json::from_slice::<serde::de::IgnoredAny>(bytes)
        .map(|_| ())
        .map_err(|e| ApiError::BadRequest(format!("{what} is not valid JSON: {e}")))
}

fn batch_items<'a>(body: &'a [u8], ndjson: bool) -> Result<Vec<&'a [u8]>, ApiError> {
    if ndjson {
        let mut items = Vec::new();
        for (n, line) in body.split(|b| *b == b'\n').enumerate() {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            json_text(line, &format!("line {}", n + 1))?;
            items.push(line);
        }
        Ok(items)
    } else {
        let text = std::str::from_utf8(body)
            .map_err(|_| ApiError::BadRequest("body is not UTF-8 JSON".into()))?;
        let raw: Vec<&'a RawValue> = serde_json::from_str(text).map_err(|e| {
            ApiError::BadRequest(format!("body must be a JSON array of payloads: {e}"))
        })?;
        Ok(raw.into_iter().map(|r| r.get().as_bytes()).collect())
    }
}

/// `POST /v1/entries/batch`: NDJSON or a JSON array of payloads, appended all-or-nothing at
/// consecutive indices.
pub(super) async fn post_batch(
    State(st): State<AppState>,
    caller: Caller,
    query: QueryResult,
    peer: super::ClientIp,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let WriteHead {
        wait,
        event_type,
        key,
    } = write_head(query, &headers)?;
    check_wait(&st, wait)?;
    let principal = principal_of(caller)?;
    let (ct, _) = content_type(&headers)?;
    let ndjson = match media_essence(&ct).as_str() {
        "application/x-ndjson" | "application/ndjson" | "application/jsonl" => true,
        "application/json" => false,
        _ => {
            return Err(ApiError::UnsupportedMediaType(
                "a batch is application/x-ndjson or a JSON array (application/json)".into(),
            ));
        }
    };
    let limits = &st.config.limits;
    let raw = read_body(&st, peer, body, &headers, limits.max_batch_bytes).await?;
    let items = batch_items(&raw, ndjson)?;
    if items.is_empty() {
        return Err(ApiError::BadRequest("the batch holds no entries".into()));
    }
    if items.len() > limits.max_batch_entries {
        return Err(ApiError::TooLarge(format!(
            "the batch holds {} entries; the limit is {}",
            items.len(),
            limits.max_batch_entries
        )));
    }
    if let Some((i, item)) = items
        .iter()
        .enumerate()
        .find(|(_, it)| it.len() > limits.max_payload_bytes)
    {
        return Err(ApiError::TooLarge(format!(
            "entry {i} of the batch is {} bytes; the limit is {}",
            item.len(),
            limits.max_payload_bytes
        )));
    }
    let et = event_type.as_deref().unwrap_or("");
    let idem = idempotency(key, &principal, &[b"batch", et.as_bytes(), &raw]);
    let entries: Vec<NewEntry> = items
        .iter()
        .map(|item| NewEntry {
            principal: principal.clone(),
            content_type: "application/json".to_owned(),
            event_type: event_type.clone(),
            payload: item.to_vec(),
        })
        .collect();
    let count = entries.len();
    let done = st.seq.submit(entries, idem).await.map_err(sequence_error)?;
    let mut body = serde_json::json!({
        "first_index": done.first_index,
        "count": count,
        "leaf_hashes": done.leaf_hashes.iter().map(|h| h.to_hex()).collect::<Vec<_>>(),
        "timestamp": done.time_ms,
        "tree_size": done.published.size,
        "duplicate": done.duplicate,
    });
    let end = done.first_index + count as u64;
    if let Some((size, checkpoint)) = proof_checkpoint(&st, wait, end, &done).await? {
        let mut proofs = Vec::with_capacity(count);
        for i in 0..count as u64 {
            let p = inclusion_proof_at(&st, done.first_index + i, size).await?;
            proofs.push(p.iter().map(|h| B64.encode(h.0)).collect::<Vec<_>>());
        }
        body["checkpoint"] = String::from_utf8_lossy(&checkpoint).into();
        body["inclusion_proofs"] = proofs.into();
    }
    Ok((status_of(&done), axum::Json(body)).into_response())
}
