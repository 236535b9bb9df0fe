//! A tampering proxy: forwards every request to the real server and passes every answer through
//! unchanged, except the Merkle proofs, in which it flips one bit of the first hash: the `proof`
//! array of `GET /v1/proof/inclusion` and `GET /v1/proof/consistency`, and the first hash line of
//! a tlog-proof (`GET /v1/proof/{index}`). The inclusion answer's `root_hash` is replaced by the
//! root the altered proof leads to, so the lie is consistent: only a client that checks the proof
//! against a signed checkpoint's root catches it. Everything else (entries, checkpoints, the
//! explorer's files) is the server's own.
#![allow(unreachable_pub)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use tokio::net::TcpListener;

#[derive(Clone)]
struct Upstream {
    url: String,
    client: reqwest::Client,
    tampered: Arc<AtomicUsize>,
}

/// A running proxy.
pub struct Tamper {
    pub url: String,
    tampered: Arc<AtomicUsize>,
}

impl Tamper {
    /// How many proofs it has altered so far.
    pub fn tampered(&self) -> usize {
        self.tampered.load(Ordering::SeqCst)
    }
}

/// Starts the proxy in front of `upstream` (an `http://host:port` URL) on 127.0.0.1:0. It runs
/// until the runtime it was started on shuts down.
pub async fn start(upstream: String) -> Tamper {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tampered = Arc::new(AtomicUsize::new(0));
    let state = Upstream {
        url: upstream,
        client: reqwest::Client::new(),
        tampered: tampered.clone(),
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = Router::new().fallback(forward).with_state(state);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Tamper { url, tampered }
}

async fn forward(State(up): State<Upstream>, req: Request) -> Response {
    let path = req.uri().path().to_owned();
    let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let mut out = up
        .client
        .request(req.method().clone(), format!("{}{target}", up.url));
    for name in [header::AUTHORIZATION, header::ACCEPT, header::IF_NONE_MATCH] {
        if let Some(v) = req.headers().get(&name) {
            out = out.header(name, v.clone());
        }
    }
    let Ok(resp) = out.send().await else {
        return (StatusCode::BAD_GATEWAY, "upstream unreachable").into_response();
    };
    let status = resp.status();
    let headers = resp.headers().clone();
    let mut body = resp.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
    if status == StatusCode::OK && path.starts_with("/v1/proof/") {
        let altered = if path == "/v1/proof/inclusion" || path == "/v1/proof/consistency" {
            tamper_json(&body)
        } else {
            tamper_tlog_proof(&body)
        };
        if let Some(b) = altered {
            body = b;
            up.tampered.fetch_add(1, Ordering::SeqCst);
        }
    }
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    for (k, v) in &headers {
        if k != header::CONTENT_LENGTH && k != header::TRANSFER_ENCODING && k != header::CONNECTION
        {
            r.headers_mut().append(k, v.clone());
        }
    }
    r
}

/// A base64 hash with one bit of its last byte flipped.
fn flip(hash: &str) -> Option<String> {
    let mut b = B64.decode(hash).ok()?;
    *b.last_mut()? ^= 0x01;
    Some(B64.encode(b))
}

fn tamper_json(body: &[u8]) -> Option<Vec<u8>> {
    use sealtrail_spec::Hash;
    let mut v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let first = v.get_mut("proof")?.get_mut(0)?;
    *first = flip(first.as_str()?)?.into();
    if let (Some(index), Some(size), Some(leaf)) = (
        v["index"].as_u64(),
        v["tree_size"].as_u64(),
        v["leaf_hash"].as_str().and_then(|h| Hash::from_hex(h).ok()),
    ) {
        let proof: Vec<Hash> = v["proof"]
            .as_array()?
            .iter()
            .map(|h| h.as_str().and_then(|h| Hash::from_base64(h).ok()))
            .collect::<Option<_>>()?;
        let root =
            sealtrail_spec::merkle::root_from_inclusion_proof(index, size, &leaf, &proof).ok()?;
        v["root_hash"] = root.to_base64().into();
    }
    serde_json::to_vec(&v).ok()
}

/// Flips the first hash line of a tlog-proof: the line after `index N`.
fn tamper_tlog_proof(body: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(body).ok()?;
    let mut lines: Vec<String> = text.split('\n').map(str::to_owned).collect();
    let at = lines.iter().position(|l| l.starts_with("index "))? + 1;
    let line = lines.get_mut(at).filter(|l| !l.is_empty())?;
    *line = flip(line)?;
    Some(lines.join("\n").into_bytes())
}
