//! The HTTP API: C2SP tlog-tiles reads (`/checkpoint`, `/tile/...`), the JSON API under `/v1/`,
//! and the operational endpoints (`/livez`, `/readyz`, `/metrics`).
//!
//! Every error is a JSON body `{"error": {"code", "message"}}`, and [`ApiError`] maps error kinds to
//! HTTP statuses in exactly one place. No handler writes anything unless the sequencer commits it.

mod admin;
mod cache;
mod evidence;
mod outbound;
mod proof_nodes;
mod read;
mod read_path;
mod search;
mod write;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::config::Config;
use crate::metrics::Metrics;
use crate::sequencer::SequencerHandle;
use crate::store::LogStore;

pub use crate::http_error::ApiError;
pub(crate) use crate::http_error::{ErrorCategory, QueryResult};
pub use admin::{EraseRequest, erase};
pub use cache::TileCache;
pub use outbound::ResponseBudget;
pub use read_path::ReadPath;
use sealtrail_net::http::{is_json_media, media_essence};

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

/// The access-control state, for the middleware and the admin handler that need only it.
impl axum::extract::FromRef<AppState> for Arc<crate::auth::Guard> {
    fn from_ref(state: &AppState) -> Self {
        state.guard.clone()
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
    /// Request body bytes that may be arriving at once (`limits.max_inflight_body_bytes`).
    pub body_budget: sealtrail_net::budget::Budget,
    /// Response bytes held for clients that have not read them (`limits.max_inflight_response_bytes`).
    pub outbound: ResponseBudget,
    /// The log's key, for the statements it signs besides checkpoints (evidence manifests).
    pub signer: sealtrail_spec::note::Ed25519Signer,
    /// Evidence packages built at once (one; more are answered 503).
    pub evidence_builds: Arc<tokio::sync::Semaphore>,
}

impl std::fmt::Debug for SharedState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedState")
            .field("store", &self.store.engine())
            .field("verifier_key", &self.verifier_key)
            .finish_non_exhaustive()
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
        .route("/v1/evidence", get(evidence::evidence))
        .route("/livez", get(read::livez))
        .route("/readyz", get(read::readyz))
        .route("/metrics", get(read::metrics))
        .route(
            "/v1/admin/security-events",
            get(crate::auth::security_events),
        )
        .route("/v1/admin/erasures", post(admin::post_erasure))
        .route(
            "/v1/admin/holds",
            get(admin::list_holds).post(admin::post_hold),
        )
        .route("/v1/admin/holds/{id}/release", post(admin::release_hold))
        .merge(crate::ui::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            outbound::limit,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.guard.clone(),
            crate::auth::guard,
        ))
        .layer(axum::middleware::from_fn(canonical))
        .layer(axum::middleware::from_fn_with_state(state.clone(), observe))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            panic_response,
        ))
        .with_state(state)
}

/// Refuses, before authentication and any handler, requests that could mean two things: a header
/// that decides something given twice (two `Authorization` headers must not let the first one
/// win), a repeated query parameter, a transfer coding other than chunked (its bytes would be
/// stored as if they were the payload), a content coding, and percent-encoded tlog-tiles paths
/// (not what a static file server would find). See `spec/docs/http-api.md`, "Conventions".
async fn canonical(req: Request, next: Next) -> Response {
    match check_canonical(&req) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

fn check_canonical(req: &Request) -> Result<(), ApiError> {
    let h = req.headers();
    for name in [
        header::AUTHORIZATION.as_str(),
        header::CONTENT_TYPE.as_str(),
        "x-event-type",
        "idempotency-key",
    ] {
        if h.get_all(name).iter().nth(1).is_some() {
            return Err(ApiError::BadRequest(format!(
                "the {name} header is given more than once"
            )));
        }
    }
    for v in h.get_all(header::TRANSFER_ENCODING) {
        let codings = v.to_str().unwrap_or("?");
        if let Some(c) = codings
            .split(',')
            .map(str::trim)
            .find(|c| !c.eq_ignore_ascii_case("chunked"))
        {
            return Err(ApiError::NotImplemented(format!(
                "Transfer-Encoding {c:?} is not supported: send the body as it is (chunked \
                 framing only)"
            )));
        }
    }
    for v in h.get_all(header::CONTENT_ENCODING) {
        if !v
            .to_str()
            .unwrap_or("?")
            .trim()
            .eq_ignore_ascii_case("identity")
        {
            return Err(ApiError::UnsupportedMediaType(
                "Content-Encoding is not supported: send the payload uncompressed".into(),
            ));
        }
    }
    if let Some(q) = req.uri().query() {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(q)
            .map_err(|e| ApiError::BadRequest(format!("bad query string: {e}")))?;
        let mut seen = std::collections::HashSet::new();
        if let Some((k, _)) = pairs.iter().find(|(k, _)| !seen.insert(k.as_str())) {
            return Err(ApiError::BadRequest(format!(
                "query parameter {k:?} is given more than once"
            )));
        }
    }
    let path = req.uri().path();
    if (path == "/checkpoint" || path.starts_with("/tile/")) && path.contains('%') {
        return Err(ApiError::NotFound(
            "no such resource: tlog-tiles paths are canonical, without percent-encoding".into(),
        ));
    }
    Ok(())
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
    let seconds = started.elapsed().as_secs_f64();
    state
        .metrics
        .observe_request(route, method.as_str(), status.as_str(), seconds);
    if let Some(ErrorCategory(cat)) = resp.extensions().get::<ErrorCategory>() {
        state.metrics.errors.with_label_values(&[cat]).inc();
    }
    let ms = seconds * 1000.0;
    let request_id = id.to_str().unwrap_or("");
    if status.is_server_error() {
        tracing::warn!(request_id, %method, route, status = status.as_u16(), ms, "request");
    } else {
        tracing::info!(request_id, %method, route, status = status.as_u16(), ms, "request");
    }
    resp.headers_mut().insert(REQUEST_ID, id);
    resp
}

/// The client's address (from the connection), when known; the share of the memory budgets
/// ([`sealtrail_net::budget`]) is per address.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientIp(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(
            parts
                .extensions
                .get::<sealtrail_net::http::ConnInfo>()
                .map(|c| c.addr.ip()),
        ))
    }
}

/// Reads a request body of at most `limit` bytes within the request timeout, counted in the
/// server's in-flight body budget (`limits.max_inflight_body_bytes`, and the client address's share
/// of it) while it arrives: a body
/// that does not fit is refused with 503 before a byte of it is read.
pub(crate) async fn read_body(
    st: &AppState,
    ClientIp(ip): ClientIp,
    body: Body,
    headers: &axum::http::HeaderMap,
    limit: usize,
) -> Result<axum::body::Bytes, ApiError> {
    use sealtrail_net::body::{BodyError, read_limited};
    let timeout = st.config.limits.request_timeout();
    read_limited(body, headers, limit, (&st.body_budget, ip), timeout)
        .await
        .map_err(|e| match e {
            BodyError::TooLarge(_) => ApiError::TooLarge(e.to_string()),
            BodyError::Busy => {
                st.metrics.errors.with_label_values(&["body_budget"]).inc();
                ApiError::Busy(e.to_string())
            }
            BodyError::Timeout => ApiError::Timeout(e.to_string()),
            BodyError::Read(_) => ApiError::BadRequest(e.to_string()),
        })
}
