//! `GET /v1/evidence?since=&until=&type=&principal=`: an evidence package of the records in a
//! scope (`crate::evidence`), streamed as a gzip-compressed tar. `since` and `until` are ms since
//! the Unix epoch or RFC 3339 times or dates. Content (records, salts, principals) is included when
//! the caller may read it; a scope by principal needs that. The scope is selected before the
//! answer starts, so an invalid or too large scope is a plain JSON error; a failure after that
//! (the client went away, the store failed) ends the stream early, which leaves a truncated gzip
//! that no verifier accepts.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use sealtrail_spec::Hash;
use sealtrail_spec::merkle::{consistency_proof, inclusion_proof};
use tokio::sync::mpsc;

use super::cache::TileCache;
use super::proof_nodes::ProofNodes;
use super::read::{Caller, may_read_content, query};
use super::{ApiError, AppState, QueryResult};
use crate::evidence::{self, EvidenceError, Inputs, Proofs, Scope, SignedCheckpoint};
use crate::store::LogStore;

const PARAMS: [&str; 4] = ["since", "until", "type", "principal"];

/// Bytes the builder hands to the connection at a time, and chunks that may wait in between.
const CHUNK: usize = 64 << 10;
const CHUNKS_QUEUED: usize = 4;

impl From<EvidenceError> for ApiError {
    fn from(e: EvidenceError) -> Self {
        match e {
            EvidenceError::Scope(m) => ApiError::BadRequest(m),
            EvidenceError::TooLarge(m) => ApiError::TooLarge(m),
            EvidenceError::Retry(m) => ApiError::Busy(m),
            EvidenceError::Store(e) => ApiError::from(e),
            e @ (EvidenceError::Write(_) | EvidenceError::Internal(_)) => {
                ApiError::Internal(e.to_string())
            }
        }
    }
}

/// Proofs from the tiles, through the same cached reader as the proof endpoints.
struct TileProofs<'a> {
    store: &'a dyn LogStore,
    cache: &'a TileCache,
}

impl Proofs for TileProofs<'_> {
    fn inclusion(&mut self, index: u64, size: u64) -> Result<Vec<Hash>, String> {
        let mut r = ProofNodes::new(size, self.store, self.cache);
        inclusion_proof(index, size, &mut r).map_err(|e| format!("inclusion proof: {e}"))
    }

    fn consistency(&mut self, old: u64, new: u64) -> Result<Vec<Hash>, String> {
        let mut r = ProofNodes::new(new, self.store, self.cache);
        consistency_proof(old, new, &mut r).map_err(|e| format!("consistency proof: {e}"))
    }
}

/// Hands the package to the connection in [`CHUNK`]s; a client that went away fails the write.
struct ToBody {
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
    buf: Vec<u8>,
}

impl ToBody {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::other("the client closed the connection"))
    }
}

impl Write for ToBody {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// Parses the scope parameters.
fn scope(q: &std::collections::HashMap<String, String>) -> Result<Scope, ApiError> {
    let text = |name: &str| -> Result<Option<String>, ApiError> {
        match q.get(name) {
            Some(v) if v.is_empty() => Err(ApiError::BadRequest(format!("{name} is empty"))),
            v => Ok(v.cloned()),
        }
    };
    let time = |name: &str| -> Result<Option<u64>, ApiError> {
        text(name)?
            .map(|v| {
                sealtrail_spec::parse_time_ms(&v)
                    .map_err(|e| ApiError::BadRequest(format!("{name}: {e}")))
            })
            .transpose()
    };
    Ok(Scope {
        since_ms: time("since")?,
        until_ms: time("until")?,
        event_type: text("type")?,
        principal: text("principal")?,
    })
}

/// The handler.
pub(super) async fn evidence(
    State(st): State<AppState>,
    caller: Caller,
    q: QueryResult,
) -> Result<Response, ApiError> {
    let q = query(q, &PARAMS)?;
    let scope = scope(&q)?;
    let content = may_read_content(&st, &caller);
    if scope.principal.is_some() && !content {
        return Err(ApiError::Forbidden(
            "a scope by principal needs the reader role (principals are private)".into(),
        ));
    }
    let permit = st
        .evidence_builds
        .clone()
        .try_acquire_owned()
        .map_err(|_| {
            ApiError::Busy("another evidence package is being built; retry shortly".into())
        })?;
    let checkpoint = match st.witnessing.cosigned() {
        Some(c) => SignedCheckpoint {
            note: c.note.as_ref().clone(),
            cosigned: true,
        },
        None => SignedCheckpoint {
            note: st.seq.published().checkpoint.as_ref().clone(),
            cosigned: false,
        },
    };
    let size = evidence::size_of(&checkpoint)?;
    let max = st.config.limits.max_evidence_records;
    let selected = {
        let scope = scope.clone();
        super::read::blocking(&st, move |store, _| {
            Ok(evidence::select(store, size, &scope, max)?)
        })
        .await?
    };

    let (tx, mut rx) = mpsc::channel(CHUNKS_QUEUED);
    let errors = tx.clone();
    let state = st.clone();
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let latest = || state.seq.published().checkpoint.as_ref().clone();
        let mut proofs = TileProofs {
            store: state.store.as_ref(),
            cache: &state.cache,
        };
        let inputs = Inputs {
            store: state.store.as_ref(),
            origin: &state.config.origin,
            verifier_key: &state.verifier_key,
            signer: &state.signer,
            checkpoint,
            latest: &latest,
            policy: state.witnessing.policy_text(),
            content,
            now_ms,
            proofs: &mut proofs,
        };
        let out = ToBody {
            tx,
            buf: Vec::with_capacity(CHUNK),
        };
        let result = evidence::build(inputs, &scope, &selected, out)
            .and_then(|(mut out, built)| out.flush().map(|()| built).map_err(Into::into));
        match result {
            Ok(built) => tracing::info!(
                records = built.records,
                erased = built.erased,
                size = built.size,
                "evidence package sent"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "evidence package not completed");
                let _ = errors.blocking_send(Err(std::io::Error::other(e.to_string())));
            }
        }
    });
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let filename = format!("sealtrail-evidence-{size}.tar.gz");
    Ok((
        [
            (header::CONTENT_TYPE, "application/gzip".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}
