//! The HTTP API: C2SP tlog-tiles reads (`/checkpoint`, `/tile/...`), the JSON API under `/v1/`,
//! and the operational endpoints (`/livez`, `/readyz`, `/metrics`).
//!
//! Every error is a JSON body `{"error": {"code", "message"}}`, and [`ApiError`] maps error kinds to
//! HTTP statuses in exactly one place. No handler writes anything unless the sequencer commits it.

mod read;
mod search;
mod write;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::config::Config;
use crate::metrics::Metrics;
use crate::sequencer::SequencerHandle;
use crate::store::LogStore;

pub use read::{ReadPath, TileCache};

/// Everything a handler needs, behind one `Arc`: axum clones the state for every request and
/// every middleware layer, and cloning (then dropping) a dozen `Arc`s and channel handles per
/// layer cost about a tenth of the server's CPU per append (BENCHMARKS.md).
#[derive(Clone, Debug)]
pub struct AppState(Arc<SharedState>);

impl AppState {
    /// Wraps the shared parts.
    pub fn new(shared: SharedState) -> Self {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = SharedState;

    fn deref(&self) -> &SharedState {
        &self.0
    }
}

/// The parts of [`AppState`].
pub struct SharedState {
    /// The log's store (read side; the sequencer owns writes).
    pub store: Arc<dyn LogStore>,
    /// Submits entries and reports the published tree.
    pub seq: SequencerHandle,
    /// The server configuration.
    pub config: Arc<Config>,
    /// The log's verifier key (vkey text).
    pub verifier_key: Arc<str>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Hot full tiles and bundles.
    pub cache: Arc<TileCache>,
    /// Whether point reads run inline or on the blocking pool.
    pub reads: Arc<ReadPath>,
    /// Witnesses, witness policy and the newest cosigned checkpoint.
    pub witnessing: Arc<crate::witnessing::Witnessing>,
    /// Access control, rate limits and security events.
    pub guard: Arc<crate::auth::Guard>,
}

impl std::fmt::Debug for SharedState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedState")
            .field("store", &self.store.engine())
            .field("verifier_key", &self.verifier_key)
            .finish_non_exhaustive()
    }
}

/// An API error. The status, the JSON `code` and the metrics category come from one match.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Missing or invalid credentials (401 with `WWW-Authenticate`).
    #[error("{0}")]
    Unauthorized(String),
    /// Valid credentials without the role the request needs.
    #[error("{0}")]
    Forbidden(String),
    /// A rate limit was reached. Retry after the given seconds.
    #[error("{message}")]
    RateLimited {
        /// What was limited.
        message: String,
        /// Seconds until a retry can succeed (the `Retry-After` header).
        retry_after_secs: u64,
    },
    /// Malformed input: bad JSON, bad query, bad header, bad path.
    #[error("{0}")]
    BadRequest(String),
    /// Nothing there (unknown route, index past the tree, unknown leaf hash).
    #[error("{0}")]
    NotFound(String),
    /// The route exists but not for this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The request is consistent but conflicts with the log (idempotency key reuse).
    #[error("{0}")]
    Conflict(String),
    /// The body or an item is larger than the configured limit.
    #[error("{0}")]
    TooLarge(String),
    /// The content type is not one this endpoint accepts.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The client took too long to send the request.
    #[error("{0}")]
    Timeout(String),
    /// Back-pressure: the queue is full. Retry after the given seconds.
    #[error("{0}")]
    Busy(String),
    /// The log cannot serve this now (not accepting writes, shutting down).
    #[error("{0}")]
    Unavailable(String),
    /// The data directory's disk is nearly full; nothing was written.
    #[error("{0}")]
    DiskFull(String),
    /// The witnesses did not cosign in time (the write itself succeeded).
    #[error("{0}")]
    WitnessTimeout(String),
    /// A failure inside the server. The message is logged, not sent.
    #[error("{0}")]
    Internal(String),
}

/// The challenge sent with every 401.
const WWW_AUTHENTICATE: &str = "Bearer realm=\"sealtrail\"";
/// Seconds a client should wait before retrying a 503.
const RETRY_AFTER_SECS: &str = "1";

impl ApiError {
    fn parts(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            ApiError::Timeout(_) => (StatusCode::REQUEST_TIMEOUT, "timeout"),
            ApiError::Busy(_) => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::DiskFull(_) => (StatusCode::SERVICE_UNAVAILABLE, "disk_full"),
            ApiError::WitnessTimeout(_) => (StatusCode::GATEWAY_TIMEOUT, "witness_timeout"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

/// The metrics category of an error response, carried as a response extension.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ErrorCategory(pub(crate) &'static str);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.parts();
        let message = match &self {
            ApiError::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                "internal server error".to_owned()
            }
            other => other.to_string(),
        };
        let body = serde_json::json!({ "error": { "code": code, "message": message } });
        let mut resp = (status, axum::Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(RETRY_AFTER_SECS),
            );
        }
        if let ApiError::RateLimited {
            retry_after_secs, ..
        } = &self
        {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
        }
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(WWW_AUTHENTICATE),
            );
        }
        resp.extensions_mut().insert(ErrorCategory(code));
        resp
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        ApiError::Internal(format!("store: {e}"))
    }
}

/// The router with every route, the fallback and the middleware.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/checkpoint", get(read::checkpoint))
        .route("/tile/{*path}", get(read::tile))
        .route("/v1/log", get(read::log_info))
        .route(
            "/v1/entries",
            post(write::post_entry).get(read::list_entries),
        )
        .route("/v1/entries/batch", post(write::post_batch))
        .route("/v1/entries/search", get(search::search))
        .route("/v1/entries/{index}", get(read::get_entry))
        .route("/v1/proof/inclusion", get(read::inclusion))
        .route("/v1/proof/consistency", get(read::consistency))
        .route("/v1/proof/{index}", get(read::tlog_proof))
        .route("/livez", get(read::livez))
        .route("/readyz", get(read::readyz))
        .route("/metrics", get(read::metrics))
        .route(
            "/v1/admin/security-events",
            get(crate::auth::security_events),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::auth::guard,
        ))
        .layer(axum::middleware::from_fn_with_state(state.clone(), observe))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            panic_response,
        ))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such route".into())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::Internal("handler panicked".into()).into_response()
}

static REQUEST_IDS: AtomicU64 = AtomicU64::new(1);
const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The process id part of generated request ids, read once (`getpid` is a system call).
fn request_id_prefix() -> u32 {
    static PID: OnceLock<u32> = OnceLock::new();
    *PID.get_or_init(std::process::id)
}

/// The request's id: the client's `X-Request-Id` when it is 1 to 128 visible ASCII characters,
/// else `{pid:x}-{counter}`.
fn request_id(req: &Request) -> HeaderValue {
    if let Some(v) = req.headers().get(&REQUEST_ID)
        && !v.is_empty()
        && v.len() <= 128
        && v.as_bytes().iter().all(u8::is_ascii_graphic)
    {
        return v.clone();
    }
    let id = format!(
        "{:x}-{}",
        request_id_prefix(),
        REQUEST_IDS.fetch_add(1, Ordering::Relaxed)
    );
    HeaderValue::from_str(&id).unwrap_or(HeaderValue::from_static("unknown"))
}

/// Request id, whole-request timeout, one structured log line and metrics per request.
async fn observe(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request_id(&req);
    let route = req.extensions().get::<MatchedPath>().cloned();
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    let method = req.method().clone();
    req.headers_mut().insert(REQUEST_ID, id.clone());
    let timeout = state.config.limits.request_timeout();
    let mut resp = match tokio::time::timeout(timeout, next.run(req)).await {
        Ok(r) => r,
        Err(_) => ApiError::Timeout(format!(
            "request not completed within {}s",
            timeout.as_secs()
        ))
        .into_response(),
    };
    let status = resp.status();
    state
        .metrics
        .http_requests
        .with_label_values(&[route, method.as_str(), status.as_str()])
        .inc();
    if let Some(ErrorCategory(cat)) = resp.extensions().get::<ErrorCategory>() {
        state.metrics.errors.with_label_values(&[cat]).inc();
    }
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    let request_id = id.to_str().unwrap_or("");
    if status.is_server_error() {
        tracing::warn!(request_id, %method, route, status = status.as_u16(), ms, "request");
    } else {
        tracing::info!(request_id, %method, route, status = status.as_u16(), ms, "request");
    }
    resp.headers_mut().insert(REQUEST_ID, id);
    resp
}

/// Query parameters as handlers receive them (rejections are mapped to JSON errors by hand).
pub(crate) type QueryResult = Result<
    axum::extract::Query<std::collections::HashMap<String, String>>,
    axum::extract::rejection::QueryRejection,
>;

/// The media type of a `Content-Type` value: before any parameters, trimmed, lowercase.
pub fn media_essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Whether a media type (from [`media_essence`]) is JSON: `application/json` or `*+json`.
pub(crate) fn is_json_media(essence: &str) -> bool {
    essence == "application/json" || essence.ends_with("+json")
}

/// Reads a request body of at most `limit` bytes within `timeout`.
pub(crate) async fn read_body(
    body: Body,
    headers: &axum::http::HeaderMap,
    limit: usize,
    timeout: Duration,
) -> Result<axum::body::Bytes, ApiError> {
    let too_large = || ApiError::TooLarge(format!("request body exceeds {limit} bytes"));
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len > limit as u64
    {
        return Err(too_large());
    }
    match tokio::time::timeout(timeout, axum::body::to_bytes(body, limit)).await {
        Err(_) => Err(ApiError::Timeout(
            "request body not received in time".into(),
        )),
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e)) => {
            let is_limit = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
                || e.to_string().contains("length limit");
            if is_limit {
                Err(too_large())
            } else {
                Err(ApiError::BadRequest(format!(
                    "reading the request body: {e}"
                )))
            }
        }
    }
}
