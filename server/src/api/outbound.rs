//! Response bodies under a memory bound. A client that asks for answers and never reads them must
//! not make the server hold them without limit, so every response body the server keeps for a
//! client is counted in one budget (`limits.max_inflight_response_bytes`) until the connection has
//! handed it to the kernel or closed:
//!
//! - a whole response (an entry, a tile, a proof) of [`COUNTED_FROM`] bytes or more holds its size
//!   in the budget for as long as the body lives; when it does not fit it is answered 503 with
//!   `Retry-After` instead, and the built body is freed at once;
//! - pages of entries (`GET /v1/entries`, search) are streamed: they are read from the store and
//!   encoded a [`CHUNK`] at a time, each chunk only when the connection has taken the one before,
//!   so a page costs the server about one chunk per connection, however large it is and however
//!   slowly it is read. Each chunk holds its size in the budget until it is written.
//!
//! The write timeout (`limits.write_timeout_secs`, in `sealtrail-net`) closes connections that stop
//! reading, which frees what they held. `/livez`, `/readyz` and `/metrics` are never refused.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::Body as _;
use sealtrail_net::budget::{Budget, Held};
use tokio::sync::Semaphore;

use super::read_path::blocking;
use super::{ApiError, AppState, ClientIp};
use crate::store::RecordState;

/// What a caller sees of an entry's private record: `None` when they may not read content.
pub(super) type Content = Option<RecordState>;

/// Whole responses from this size on are counted in the budget; smaller ones (checkpoints,
/// proofs, errors) cost less than the connection itself.
pub(super) const COUNTED_FROM: u64 = 16 << 10;

/// The size a streamed page is encoded in: the bytes one connection holds of it at a time (one
/// entry larger than this is sent whole).
pub(super) const CHUNK: usize = 64 << 10;

/// The budget of response bytes held for clients, with a share per client address, and the
/// number of page chunks encoded at once.
#[derive(Debug, Clone)]
pub struct ResponseBudget(Budget, Arc<Semaphore>);

impl ResponseBudget {
    /// A budget of `total` bytes, of which one address may hold `per_ip` (0: no share). Pages
    /// are encoded on at most half the cores at once (at least one), so that many clients
    /// asking for large pages leave CPU to `/livez`, the other requests and the sequencer.
    pub fn new(total: usize, per_ip: usize) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        ResponseBudget(
            Budget::new(total, per_ip),
            Arc::new(Semaphore::new((cores / 2).max(1))),
        )
    }

    /// Bytes held for clients now.
    pub fn held(&self) -> usize {
        self.0.held()
    }
}

fn over_budget(st: &AppState) -> Response {
    st.metrics
        .errors
        .with_label_values(&["response_budget"])
        .inc();
    ApiError::Busy(
        "too many answers are waiting for their clients to read them; retry shortly".into(),
    )
    .into_response()
}

/// Middleware: counts whole response bodies in the budget, or answers 503 when they do not fit.
/// Streamed bodies (no known size) count themselves, chunk by chunk.
pub(super) async fn limit(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let exempt = matches!(req.uri().path(), "/livez" | "/readyz" | "/metrics");
    let ip = client_ip(&req);
    let resp = next.run(req).await;
    let size = resp.body().size_hint().exact();
    match size {
        Some(n) if !exempt && n >= COUNTED_FROM => {
            let held = usize::try_from(n)
                .ok()
                .and_then(|n| st.outbound.0.try_take(ip, n).ok());
            let Some(held) = held else {
                return over_budget(&st);
            };
            let (parts, body) = resp.into_parts();
            Response::from_parts(parts, Body::new(Counted { body, _held: held }))
        }
        _ => resp,
    }
}

fn client_ip(req: &Request) -> Option<std::net::IpAddr> {
    req.extensions()
        .get::<sealtrail_net::http::ConnInfo>()
        .map(|c| c.addr.ip())
}

/// A body and the budget it holds, given back when hyper drops the body (sent, or the
/// connection closed).
struct Counted {
    body: Body,
    _held: Held,
}

impl http_body::Body for Counted {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// Chunk bytes that give their budget back when the connection drops them.
struct Chunk {
    bytes: Vec<u8>,
    _held: Held,
}

impl AsRef<[u8]> for Chunk {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

/// Which entries a streamed page holds.
pub(super) enum Indices {
    /// `start..end`, in order.
    Range(u64, u64),
    /// These, in this order.
    List(Vec<u64>),
}

impl Indices {
    fn len(&self) -> usize {
        match self {
            Indices::Range(s, e) => usize::try_from(e.saturating_sub(*s)).unwrap_or(usize::MAX),
            Indices::List(v) => v.len(),
        }
    }

    fn get(&self, i: usize) -> u64 {
        match self {
            Indices::Range(s, _) => s + i as u64,
            Indices::List(v) => v[i],
        }
    }
}

/// A JSON page: `{<head fields>, "entries": [<entry>...]}`, the entries encoded as
/// `GET /v1/entries/{index}` encodes one, streamed a [`CHUNK`] at a time. `head` holds the page's
/// other fields, all known before the first entry is read. Answers 503 when the budget has no
/// room for a first chunk. A store error after the first chunk can only abort the connection
/// (the status is sent): the client sees a truncated page, never a wrong one.
pub(super) fn entries_page(
    st: &AppState,
    ClientIp(ip): ClientIp,
    head: serde_json::Map<String, serde_json::Value>,
    indices: Indices,
    content: bool,
) -> Response {
    // The first chunk's room now, or 503 while nothing is sent.
    let Ok(first) = st.outbound.0.try_take(ip, CHUNK) else {
        return over_budget(st);
    };
    let mut open = serde_json::to_vec(&head).unwrap_or_else(|_| b"{}".to_vec());
    open.pop(); // the closing brace: the entries follow
    if !head.is_empty() {
        open.push(b',');
    }
    open.extend_from_slice(b"\"entries\":[");
    let indices = Arc::new(indices);
    let state = Page {
        st: st.clone(),
        indices,
        next: 0,
        open: Some(open),
        done: false,
        content,
        ip,
        first: Some(first),
    };
    let stream = futures_util::stream::unfold(state, |mut page| async move {
        if page.done {
            return None;
        }
        let out = page.chunk().await;
        if out.is_err() {
            page.done = true;
        }
        Some((out, page))
    });
    let mut resp = Body::from_stream(stream).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

struct Page {
    st: AppState,
    indices: Arc<Indices>,
    next: usize,
    open: Option<Vec<u8>>,
    done: bool,
    content: bool,
    ip: Option<std::net::IpAddr>,
    /// The room taken for the first chunk when the page was asked for.
    first: Option<Held>,
}

impl Page {
    /// The next chunk: the opening (first time), then entries until about [`CHUNK`] bytes, and
    /// the closing `]}` after the last.
    async fn chunk(&mut self) -> Result<Bytes, std::io::Error> {
        let wait = self.st.config.limits.write_timeout();
        let held = match self.first.take() {
            Some(h) => h,
            None => self
                .st
                .outbound
                .0
                .take(self.ip, CHUNK, wait)
                .await
                .map_err(|_| {
                    std::io::Error::other(
                        "no room in the response budget for the next chunk of a page",
                    )
                })?,
        };
        let mut buf = self.open.take().unwrap_or_default();
        buf.reserve(CHUNK + (CHUNK >> 2));
        let (first, indices, content) = (self.next, self.indices.clone(), self.content);
        // On the blocking pool: encoding is CPU work, and pages must not hold up `/livez` or the
        // append path on the async workers.
        let encoder = self
            .st
            .outbound
            .1
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| std::io::Error::other("the page encoders are closed"))?;
        let (mut buf, next) = blocking(&self.st, move |store, _| {
            let _encoder = encoder;
            let mut i = first;
            while i < indices.len() && buf.len() < CHUNK {
                let index = indices.get(i);
                let bytes = store
                    .entry(index)?
                    .ok_or_else(|| ApiError::Internal(format!("entry {index} missing")))?;
                let record = content.then(|| store.record(index)).transpose()?;
                if i > 0 {
                    buf.push(b',');
                }
                serde_json::to_writer(&mut buf, &entry_json(index, &bytes, record)?)
                    .map_err(|e| ApiError::Internal(format!("encoding entry {index}: {e}")))?;
                i += 1;
            }
            Ok((buf, i))
        })
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "streaming a page of entries failed; closing the connection");
            std::io::Error::other(e.to_string())
        })?;
        self.next = next;
        if next >= self.indices.len() {
            buf.extend_from_slice(b"]}");
            self.done = true;
        }
        // The memory is what counts: no spare capacity is kept, and entries larger than the
        // reservation take the rest of their size from the budget too.
        buf.shrink_to_fit();
        let mut held = held;
        if buf.capacity() > CHUNK {
            // Already built: counted if it fits, sent either way.
            let _ = held.grow(buf.capacity() - CHUNK);
        }
        Ok(Bytes::from_owner(Chunk {
            bytes: buf,
            _held: held,
        }))
    }
}

/// An entry as JSON ([`crate::entry_view::entry_json`]); a stored entry or record that does not
/// decode is an internal error.
pub(super) fn entry_json(
    index: u64,
    bytes: &[u8],
    content: Content,
) -> Result<serde_json::Value, ApiError> {
    crate::entry_view::entry_json(index, bytes, content).map_err(ApiError::Internal)
}
