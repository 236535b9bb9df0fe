//! The HTTP API:
//!
//! - `POST /add-checkpoint` (tlog-witness; see [`crate::add`] for every status),
//! - `GET /<origin hash>/checkpoint` (tlog-witness monitoring: the latest cosigned checkpoint,
//!   404 if never cosigned),
//! - `GET /split-views` (JSON evidence of every recorded split view),
//! - `/livez`, `/readyz`, `/metrics`.
//!
//! Bodies are text, as tlog-witness clients expect; [`error_response`] is the one place errors
//! become HTTP answers.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{MatchedPath, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use sealtrail_net::ratelimit::retry_after_secs;
use sealtrail_spec::witness::{CONTENT_TYPE_TEXT, CONTENT_TYPE_TLOG_SIZE, format_size_body};

use crate::add::{AddError, add_checkpoint};
use crate::state::Core;

/// The router over the shared state.
pub(crate) fn router(core: Arc<Core>) -> Router {
    Router::new()
        .route("/add-checkpoint", post(post_add_checkpoint))
        .route("/split-views", get(split_views))
        .route("/livez", get(livez))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/{origin_hash}/checkpoint", get(monitoring_checkpoint))
        .fallback(|| async { text(StatusCode::NOT_FOUND, "no such route\n") })
        .layer(axum::middleware::from_fn_with_state(core.clone(), observe))
        .with_state(core)
}

fn text(status: StatusCode, body: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, CONTENT_TYPE_TEXT)],
        body.into(),
    )
        .into_response()
}

/// The answer for a refused add-checkpoint.
fn error_response(e: &AddError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = match e {
        AddError::Conflict(size) => (
            status,
            [(header::CONTENT_TYPE, CONTENT_TYPE_TLOG_SIZE)],
            format_size_body(*size),
        )
            .into_response(),
        AddError::Internal(detail) => {
            tracing::error!(error = %detail, "internal error");
            text(status, "internal error\n")
        }
        other => text(status, format!("{other}\n")),
    };
    let retry = match e {
        AddError::RateLimited(secs) => Some(*secs),
        AddError::Busy => Some(1),
        _ => None,
    };
    if let Some(secs) = retry
        && let Ok(v) = HeaderValue::from_str(&secs.to_string())
    {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

async fn post_add_checkpoint(
    State(core): State<Arc<Core>>,
    peer: Option<axum::Extension<sealtrail_net::http::ConnInfo>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let peer = peer.map(|axum::Extension(c)| c.addr.ip());
    let result = async {
        core.total
            .check(&(), Instant::now())
            .map_err(|w| AddError::RateLimited(retry_after_secs(w)))?;
        let bytes = read_body(&core, peer, body, &headers).await?;
        add_checkpoint(&core, &bytes).await
    }
    .await;
    let category = result.as_ref().map_or_else(AddError::category, |_| "ok");
    core.metrics
        .add_checkpoint
        .with_label_values(&[category])
        .inc();
    match result {
        Ok(lines) => text(StatusCode::OK, lines),
        Err(e) => error_response(&e),
    }
}

/// Reads at most `limit` bytes of body within the request timeout, counted in the witness's
/// in-flight body budget while it arrives.
async fn read_body(
    core: &Core,
    peer: Option<std::net::IpAddr>,
    body: Body,
    headers: &HeaderMap,
) -> Result<Vec<u8>, AddError> {
    use sealtrail_net::body::{BodyError, read_limited};
    let l = &core.config.limits;
    let timeout = std::time::Duration::from_secs(l.request_timeout_secs);
    match read_limited(
        body,
        headers,
        l.max_body_bytes,
        (&core.body_budget, peer),
        timeout,
    )
    .await
    {
        Ok(b) => Ok(b.to_vec()),
        Err(BodyError::TooLarge(n)) => Err(AddError::TooLarge(n)),
        Err(BodyError::Busy) => Err(AddError::Busy),
        Err(e) => Err(AddError::BadRequest(e.to_string())),
    }
}

async fn monitoring_checkpoint(
    State(core): State<Arc<Core>>,
    Path(hash): Path<String>,
) -> Response {
    let Some(log) = core.log_by_hash(&hash) else {
        return text(StatusCode::NOT_FOUND, "unknown log\n");
    };
    let origin = log.origin.clone();
    match core.with_store(move |s| s.latest(&origin)).await {
        Ok(Some(c)) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, CONTENT_TYPE_TEXT),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            c.note,
        )
            .into_response(),
        Ok(None) => text(
            StatusCode::NOT_FOUND,
            "this witness never cosigned that log\n",
        ),
        Err(e) => error_response(&AddError::from(e)),
    }
}

async fn split_views(State(core): State<Arc<Core>>) -> Response {
    match core.with_store(|s| s.split_views()).await {
        Ok(list) => axum::Json(serde_json::json!({ "split_views": list })).into_response(),
        Err(e) => error_response(&AddError::from(e)),
    }
}

async fn livez() -> Response {
    text(StatusCode::OK, "ok\n")
}

async fn readyz(State(core): State<Arc<Core>>) -> Response {
    match core.with_store(|s| s.check()).await {
        Ok(()) => text(StatusCode::OK, "ready\n"),
        Err(e) => text(StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {e}\n")),
    }
}

async fn metrics(State(core): State<Arc<Core>>) -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        core.metrics.render(),
    )
        .into_response()
}

/// Whole-request timeout, one structured log line and the request counter.
async fn observe(State(core): State<Arc<Core>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let method = req.method().clone();
    let timeout = core.config.limits.request_timeout();
    let resp = match tokio::time::timeout(timeout, next.run(req)).await {
        Ok(r) => r,
        Err(_) => text(StatusCode::REQUEST_TIMEOUT, "request timed out\n"),
    };
    let status = resp.status();
    core.metrics
        .http_requests
        .with_label_values(&[route.as_str(), method.as_str(), status.as_str()])
        .inc();
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if status.is_server_error() {
        tracing::warn!(%method, route, status = status.as_u16(), ms, "request");
    } else {
        tracing::info!(%method, route, status = status.as_u16(), ms, "request");
    }
    resp
}
