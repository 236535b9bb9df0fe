//! The read API: tlog-tiles resources, the JSON entry and proof endpoints, and the operational
//! endpoints. Every read is bounded by the published tree size, so nothing is served that a
//! signed checkpoint does not cover. Point reads (a proof, a tile, an entry) run inline unless the
//! store has recently read from the disk, scans on the blocking pool (see
//! [`ReadPath`](super::ReadPath)).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sealtrail_spec::Hash;
use sealtrail_spec::merkle::{HashReader, Node, consistency_proof, inclusion_proof, tree_root};
use sealtrail_spec::tiles::{TILE_WIDTH, TilePath, encode_bundle, hashes_at_level};

use super::{ApiError, AppState, QueryResult};
use crate::store::LogStore;

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const SHORT_LIVED: &str = "public, max-age=60";
const CHECKPOINT_CACHE: &str = "public, max-age=1, must-revalidate";
use super::cache::{CachedTiles, TileCache};
use super::outbound::entry_json;
use super::proof_nodes::ProofNodes;
pub(super) use super::read_path::{blocking, point_read};

fn proof_error<E: std::fmt::Display>(e: sealtrail_spec::merkle::ProofError<E>) -> ApiError {
    match e {
        sealtrail_spec::merkle::ProofError::Range(r) => ApiError::BadRequest(r.to_string()),
        other => ApiError::Internal(format!("building a proof: {other}")),
    }
}

/// The inclusion proof of `index` in the published tree of size `size`.
pub(super) async fn inclusion_proof_at(
    st: &AppState,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, ApiError> {
    point_read(st, move |store, cache| {
        let mut r = ProofNodes::new(size, store, cache);
        inclusion_proof(index, size, &mut r).map_err(proof_error)
    })
    .await
}

/// A c2sp.org/tlog-proof@v1 for `index` with `path` against `checkpoint` (built and checked by
/// `sealtrail-spec`).
pub(super) fn tlog_proof_text(
    index: u64,
    path: &[Hash],
    checkpoint: &[u8],
) -> Result<String, ApiError> {
    let proof =
        sealtrail_spec::tlog_proof::TlogProof::new(index, path.to_vec(), checkpoint.to_vec(), None)
            .map_err(|e| ApiError::Internal(format!("building a tlog-proof: {e}")))?;
    String::from_utf8(proof.to_bytes()).map_err(|e| ApiError::Internal(e.to_string()))
}

/// Rejects query parameters other than `allowed`.
pub(super) fn only_params(q: &HashMap<String, String>, allowed: &[&str]) -> Result<(), ApiError> {
    match q.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(ApiError::BadRequest(format!(
            "unknown query parameter {k:?}; allowed: {}",
            allowed.join(", ")
        ))),
        None => Ok(()),
    }
}

fn parse_u64(name: &str, v: &str) -> Result<u64, ApiError> {
    sealtrail_spec::parse_decimal(v).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "{name} must be a decimal integer without leading zeros, got {v:?}"
        ))
    })
}

pub(super) fn query(q: QueryResult, allowed: &[&str]) -> Result<HashMap<String, String>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    only_params(&q, allowed)?;
    Ok(q)
}

pub(super) fn param(q: &HashMap<String, String>, name: &str) -> Result<Option<u64>, ApiError> {
    q.get(name).map(|v| parse_u64(name, v)).transpose()
}

fn with_cache(mut resp: Response, policy: &'static str) -> Response {
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(policy));
    resp
}

/// `GET /checkpoint`: the latest signed checkpoint (tlog-tiles). With witnesses configured, the
/// newest checkpoint whose cosignatures meet the witness policy, with those cosignatures; until
/// one does (after a start), the latest checkpoint with only the log's signature.
pub(super) async fn checkpoint(State(st): State<AppState>) -> Response {
    let body = match st.witnessing.cosigned() {
        Some(c) => c.note.as_ref().clone(),
        None => st.seq.published().checkpoint.as_ref().clone(),
    };
    let resp = ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response();
    with_cache(resp, CHECKPOINT_CACHE)
}

/// `GET /tile/<L>/<N>[.p/<W>]` and `GET /tile/entries/<N>[.p/<W>]` (tlog-tiles).
pub(super) async fn tile(
    State(st): State<AppState>,
    rest: PathParam,
) -> Result<Response, ApiError> {
    let path = format!("tile/{}", path_param(rest)?);
    let parsed = TilePath::parse(&path).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let size = st.seq.published().size;
    let w = u64::from(TILE_WIDTH);
    let (level, index, width, full) = match parsed {
        TilePath::Hash(t) => (t.level, t.index, t.width, t.is_full()),
        TilePath::Entries(b) => (0, b.index, b.width, b.is_full()),
    };
    // The tile exists at the published size if every hash (entry) it holds does.
    let end = index
        .checked_mul(w)
        .and_then(|s| s.checked_add(u64::from(width)));
    if end.is_none_or(|end| end > hashes_at_level(size, level)) {
        return Err(ApiError::NotFound(format!(
            "{path} is not in the published tree (size {size})"
        )));
    }
    let bytes = match parsed {
        TilePath::Hash(_) => {
            point_read(&st, move |store, cache| {
                let t = cache
                    .tile(store, level, index, width)?
                    .ok_or_else(|| ApiError::Internal(format!("{path} missing from the store")))?;
                t.get(..usize::from(width) * 32)
                    .map(<[u8]>::to_vec)
                    .ok_or_else(|| ApiError::Internal(format!("{path} is truncated in the store")))
            })
            .await?
        }
        TilePath::Entries(_) => bundle(&st, index, width, full).await?,
    };
    let resp = ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response();
    Ok(with_cache(resp, if full { IMMUTABLE } else { SHORT_LIVED }))
}

async fn bundle(st: &AppState, index: u64, width: u16, full: bool) -> Result<Vec<u8>, ApiError> {
    if full && let Some(b) = st.cache.bundles.lock().ok().and_then(|c| c.get(&index)) {
        return Ok(b.as_ref().clone());
    }
    blocking(st, move |store, cache| {
        let start = index * u64::from(TILE_WIDTH);
        let entries = store.entries(start, start + u64::from(width))?;
        let bytes = encode_bundle(&entries).map_err(|e| ApiError::Internal(e.to_string()))?;
        if full && let Ok(mut c) = cache.bundles.lock() {
            c.put(index, Arc::new(bytes.clone()));
        }
        Ok(bytes)
    })
    .await
}

/// `GET /v1/log`: what a client needs to know about this log.
pub(super) async fn log_info(
    State(st): State<AppState>,
    q: QueryResult,
) -> Result<Response, ApiError> {
    query(q, &[])?;
    let p = st.seq.published();
    let l = &st.config.limits;
    Ok(axum::Json(serde_json::json!({
        "origin": st.config.origin,
        "verifier_key": st.verifier_key.as_ref(),
        "tree_size": p.size,
        "root_hash": p.root.to_base64(),
        "checkpoint": String::from_utf8_lossy(&p.checkpoint),
        "checkpoint_signed_at": sealtrail_net::clock::secs_since_epoch(p.signed_at),
        "storage_engine": st.store.engine(),
        "witness_policy": st.witnessing.policy_text(),
        "cosigned_tree_size": st.witnessing.cosigned().map(|c| c.size),
        "version": env!("CARGO_PKG_VERSION"),
        // Every configured limit, so clients can size requests and back off correctly.
        "limits": l,
        "access": {
            "anonymous_writes": st.guard.anonymous_writes(),
            "anonymous_content": st.guard.anonymous_content(),
            "private_reads": st.config.auth.private_reads,
        },
    }))
    .into_response())
}

/// The caller, as the auth guard identified them (absent only on routes the guard skips).
pub(super) type Caller = Option<axum::Extension<crate::auth::Principal>>;

/// The caller's principal name, on routes the guard runs on (every write and admin route).
pub(super) fn principal_of(caller: Caller) -> Result<String, ApiError> {
    caller
        .map(|axum::Extension(p)| p.name)
        .ok_or_else(|| ApiError::Internal("route reached without the auth guard".into()))
}

/// Whether the caller may read private records.
pub(super) fn may_read_content(st: &AppState, caller: &Caller) -> bool {
    caller
        .as_ref()
        .is_some_and(|axum::Extension(p)| st.guard.may_read_content(p))
}

fn parse_index(v: &str) -> Result<u64, ApiError> {
    parse_u64("index", v)
}

/// A path parameter, or the extractor's refusal (e.g. `%ff`, not UTF-8) as a JSON 400.
pub(super) type PathParam = Result<Path<String>, axum::extract::rejection::PathRejection>;

pub(super) fn path_param(p: PathParam) -> Result<String, ApiError> {
    p.map(|Path(v)| v)
        .map_err(|e| ApiError::BadRequest(format!("bad path: {}", e.body_text())))
}

/// `GET /v1/entries/{index}`: one entry, decoded.
pub(super) async fn get_entry(
    State(st): State<AppState>,
    caller: Caller,
    index: PathParam,
    q: QueryResult,
) -> Result<Response, ApiError> {
    query(q, &[])?;
    let content = may_read_content(&st, &caller);
    let index = parse_index(&path_param(index)?)?;
    let size = st.seq.published().size;
    if index >= size {
        return Err(ApiError::NotFound(format!(
            "entry {index} is not in the log (size {size})"
        )));
    }
    let v = point_read(&st, move |store, _| {
        let bytes = store
            .entry(index)?
            .ok_or_else(|| ApiError::Internal(format!("entry {index} missing from the store")))?;
        let record = content.then(|| store.record(index)).transpose()?;
        entry_json(index, &bytes, record)
    })
    .await?;
    Ok(axum::Json(v).into_response())
}

/// `GET /v1/entries?start=&limit=`: a page of entries in index order.
pub(super) async fn list_entries(
    State(st): State<AppState>,
    caller: Caller,
    peer: super::ClientIp,
    q: QueryResult,
) -> Result<Response, ApiError> {
    let content = may_read_content(&st, &caller);
    let q = query(q, &["start", "limit"])?;
    let start = param(&q, "start")?.unwrap_or(0);
    let max = st.config.limits.max_page_entries;
    let limit = param(&q, "limit")?.unwrap_or(100.min(max));
    if limit == 0 || limit > max {
        return Err(ApiError::BadRequest(format!("limit must be 1 to {max}")));
    }
    let size = st.seq.published().size;
    let end = start.saturating_add(limit).min(size);
    let mut head = serde_json::Map::new();
    head.insert("tree_size".into(), size.into());
    head.insert(
        "next".into(),
        (end < size && start < end).then_some(end).into(),
    );
    Ok(super::outbound::entries_page(
        &st,
        peer,
        head,
        super::outbound::Indices::Range(start, end.max(start)),
        content,
    ))
}

/// `GET /v1/proof/inclusion?index=|leaf_hash=&size=`.
pub(super) async fn inclusion(
    State(st): State<AppState>,
    q: QueryResult,
) -> Result<Response, ApiError> {
    let q = query(q, &["index", "leaf_hash", "size"])?;
    let published = st.seq.published();
    let size = param(&q, "size")?.unwrap_or(published.size);
    if size > published.size {
        return Err(ApiError::BadRequest(format!(
            "size {size} is beyond the published tree size {}",
            published.size
        )));
    }
    let by_hash = q
        .get("leaf_hash")
        .map(|h| {
            Hash::from_hex(h)
                .or_else(|_| Hash::from_base64(h))
                .map_err(|_| {
                    ApiError::BadRequest("leaf_hash must be 64 hex digits or base64".into())
                })
        })
        .transpose()?;
    let index = param(&q, "index")?;
    // The root at the published size is known; older sizes are computed.
    let published_root = (size == published.size).then_some(published.root);
    // A lookup by leaf hash reads one leaf-index row per run of 16,384 entries (a scan, so it
    // goes to the blocking pool); a proof by index is a point read.
    let scan = by_hash.is_some();
    let work = move |store: &dyn LogStore, cache: &TileCache| {
        let index = match (index, by_hash) {
            (Some(i), None) => i,
            (None, Some(h)) => {
                crate::leafindex::find(store, &mut CachedTiles { store, cache }, size, &h)?
                    .ok_or_else(|| {
                        ApiError::NotFound(format!(
                            "no entry in the tree of size {size} has leaf hash {h}"
                        ))
                    })?
            }
            _ => {
                return Err(ApiError::BadRequest(
                    "give exactly one of index and leaf_hash".into(),
                ));
            }
        };
        if index >= size {
            return Err(ApiError::NotFound(format!(
                "entry {index} is not in the tree of size {size}"
            )));
        }
        let mut r = ProofNodes::new(size, store, cache);
        let proof = inclusion_proof(index, size, &mut r).map_err(proof_error)?;
        let root = match published_root {
            Some(root) => root,
            None => tree_root(size, &mut r).map_err(proof_error)?,
        };
        let leaf = r
            .read_nodes(&[Node { height: 0, index }])
            .map_err(|e| ApiError::Internal(format!("reading leaf {index}: {e}")))?
            .first()
            .copied()
            .ok_or_else(|| ApiError::Internal("empty tile".into()))?;
        Ok(InclusionJson {
            index,
            tree_size: size,
            leaf_hash: leaf.to_hex(),
            root_hash: root.to_base64(),
            proof: proof.iter().map(Hash::to_base64).collect(),
        })
    };
    let v = if scan {
        blocking(&st, work).await?
    } else {
        point_read(&st, work).await?
    };
    Ok(axum::Json(v).into_response())
}

/// The answer of `GET /v1/proof/inclusion` (serialized directly, without a `Value` tree).
#[derive(serde::Serialize)]
struct InclusionJson {
    index: u64,
    tree_size: u64,
    leaf_hash: String,
    root_hash: String,
    proof: Vec<String>,
}

/// The answer of `GET /v1/proof/consistency`.
#[derive(serde::Serialize)]
struct ConsistencyJson {
    from: u64,
    to: u64,
    old_root: String,
    new_root: String,
    proof: Vec<String>,
}

/// `GET /v1/proof/consistency?from=&to=`.
pub(super) async fn consistency(
    State(st): State<AppState>,
    q: QueryResult,
) -> Result<Response, ApiError> {
    let q = query(q, &["from", "to"])?;
    let published = st.seq.published();
    let from = param(&q, "from")?.ok_or_else(|| ApiError::BadRequest("from is required".into()))?;
    let to = param(&q, "to")?.unwrap_or(published.size);
    if to > published.size {
        return Err(ApiError::BadRequest(format!(
            "to {to} is beyond the published tree size {}",
            published.size
        )));
    }
    if from > to {
        return Err(ApiError::BadRequest(format!(
            "from {from} is larger than to {to}"
        )));
    }
    let published_root = (to == published.size).then_some(published.root);
    let v = point_read(&st, move |store, cache| {
        let mut r = ProofNodes::new(to, store, cache);
        let proof = consistency_proof(from, to, &mut r).map_err(proof_error)?;
        let old_root = tree_root(from, &mut r).map_err(proof_error)?;
        let new_root = match published_root {
            Some(root) => root,
            None => tree_root(to, &mut r).map_err(proof_error)?,
        };
        Ok(ConsistencyJson {
            from,
            to,
            old_root: old_root.to_base64(),
            new_root: new_root.to_base64(),
            proof: proof.iter().map(Hash::to_base64).collect(),
        })
    })
    .await?;
    Ok(axum::Json(v).into_response())
}

/// `GET /v1/proof/{index}`: a c2sp.org/tlog-proof@v1 for the entry against the latest checkpoint.
pub(super) async fn tlog_proof(
    State(st): State<AppState>,
    index: PathParam,
    q: QueryResult,
) -> Result<Response, ApiError> {
    query(q, &[])?;
    let index = parse_index(&path_param(index)?)?;
    let published = st.seq.published();
    if index >= published.size {
        return Err(ApiError::NotFound(format!(
            "entry {index} is not in the log (size {})",
            published.size
        )));
    }
    let proof = inclusion_proof_at(&st, index, published.size).await?;
    let text = tlog_proof_text(index, &proof, &published.checkpoint)?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response())
}

/// `GET /livez`: the process is up and its sequencer has not failed. After a failed commit the
/// log refuses writes until a restart (which re-checks the store), so a supervisor that restarts
/// on a failed liveness check is what recovers it.
pub(super) async fn livez(State(st): State<AppState>) -> Result<&'static str, ApiError> {
    if st.seq.is_failed() {
        return Err(ApiError::Unavailable(
            "the sequencer failed (see the logs); restart the server".into(),
        ));
    }
    Ok("ok\n")
}

/// `GET /readyz`: the store answers, the sequencer is alive and accepting writes.
pub(super) async fn readyz(State(st): State<AppState>) -> Result<Response, ApiError> {
    if st.seq.is_failed() {
        return Err(ApiError::Unavailable(
            "the sequencer is not accepting writes".into(),
        ));
    }
    blocking(&st, |store, _| store.tree_size().map_err(ApiError::from)).await?;
    Ok((StatusCode::OK, "ready\n").into_response())
}

/// `GET /metrics`: Prometheus text format.
pub(super) async fn metrics(State(st): State<AppState>) -> Response {
    st.metrics
        .queue_depth
        .set(i64::try_from(st.seq.queue_depth()).unwrap_or(i64::MAX));
    if let Ok(space) = crate::space::disk_space(&st.config.data_dir) {
        st.metrics.observe_disk(&space);
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        st.metrics.render(),
    )
        .into_response()
}
