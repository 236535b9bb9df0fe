//! Helpers for the server's in-process tests: a server on a given store, requests through the
//! router, and checks built on `sealtrail-spec` (never on the server's own answers).
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

pub mod go;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use sealtrail_server::api::router;
use sealtrail_server::config::Config;
use sealtrail_server::serve::Server;
use sealtrail_server::store::LogStore;
use sealtrail_spec::checkpoint::{Checkpoint, VerifiedCheckpoint};
use sealtrail_spec::note::{Ed25519Signer, Ed25519Verifier};
use tower::ServiceExt as _;

pub const ORIGIN: &str = "test.sealtrail.example/log";

pub fn signer() -> Ed25519Signer {
    Ed25519Signer::from_seed(ORIGIN, [7u8; 32]).unwrap()
}

pub fn verifier() -> Ed25519Verifier {
    signer().verifier()
}

/// An API token entry for `t` (stored as its SHA-256, as `sealtrail token create` prints it).
pub fn token(
    name: &str,
    role: sealtrail_server::auth::Role,
    t: &str,
) -> sealtrail_server::auth::TokenEntry {
    use sha2::Digest as _;
    sealtrail_server::auth::TokenEntry {
        name: name.into(),
        role,
        sha256: sealtrail_spec::to_hex(&sha2::Sha256::digest(t.as_bytes())),
        expires_at: None,
    }
}

pub fn config() -> Config {
    Config {
        origin: ORIGIN.to_owned(),
        ..Config::default()
    }
}

pub struct TestLog {
    pub server: Option<Server>,
    pub app: axum::Router,
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).unwrap()
    }

    /// Asserts the JSON error shape and returns its code.
    pub fn error_code(&self) -> String {
        let j = self.json();
        let msg = j["error"]["message"].as_str().expect("error.message");
        assert!(!msg.is_empty());
        j["error"]["code"].as_str().expect("error.code").to_owned()
    }
}

impl TestLog {
    pub fn start(config: Config, store: Arc<dyn LogStore>) -> Self {
        let server = Server::start(config, store, signer()).expect("start");
        let app = router(server.state().clone());
        TestLog {
            server: Some(server),
            app,
        }
    }

    pub async fn stop(mut self) {
        if let Some(s) = self.server.take() {
            drop(self.app);
            s.stop().await;
        }
    }

    pub async fn req(
        &self,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Resp {
        let mut b = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let resp = self
            .app
            .clone()
            .oneshot(b.body(Body::from(body.to_vec())).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec();
        Resp {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, uri: &str) -> Resp {
        self.req(Method::GET, uri, &[], b"").await
    }

    pub async fn post_json(&self, uri: &str, body: &str) -> Resp {
        self.req(
            Method::POST,
            uri,
            &[("content-type", "application/json")],
            body.as_bytes(),
        )
        .await
    }

    /// Fetches `/checkpoint` and verifies it with the test key.
    pub async fn checkpoint(&self) -> VerifiedCheckpoint {
        let r = self.get("/checkpoint").await;
        assert_eq!(r.status, StatusCode::OK);
        sealtrail_spec::checkpoint::open(&r.body, ORIGIN, &[&verifier()]).expect("valid checkpoint")
    }
}

/// Erases records `indices` as one erasure part through the sequencer (what the admin API does
/// for each part), by `token:ops`.
pub async fn erase_indices(
    seq: &sealtrail_server::sequencer::SequencerHandle,
    indices: Vec<u64>,
) -> sealtrail_server::sequencer::AdminOutcome {
    seq.admin(sealtrail_server::sequencer::AdminOp::Erase {
        indices,
        note: sealtrail_server::privacy::ErasureNote {
            request_id: "test".into(),
            part: 1,
            reason: "test".into(),
            selector: serde_json::json!({"indices": true}),
        },
        requested_by: "token:ops".into(),
    })
    .await
    .unwrap()
}

pub fn cp(v: &VerifiedCheckpoint) -> &Checkpoint {
    v.checkpoint()
}

/// The value of one series, e.g. `name{label="v"}`, in a `/metrics` text (parsed with the
/// server's own exposition reader); panics, showing the text, if it is missing.
pub fn metric(text: &str, series: &str) -> u64 {
    let (name, labels) = match series.split_once('{') {
        Some((n, l)) => (n, l.trim_end_matches('}')),
        None => (series, ""),
    };
    sealtrail_server::status::metric_samples(text, name)
        .into_iter()
        .find(|(l, _)| *l == labels)
        .map(|(_, v)| v as u64)
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

/// One HTTP/1.1 request on a connection of its own, as a bare client would make it (the crash
/// tests use it against a child process): `extra` header lines each end in CRLF. Returns the
/// status and the body, de-chunked when the answer is streamed.
pub fn raw_http(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    content_type: &str,
    extra: &str,
    body: &[u8],
) -> std::io::Result<(u16, Vec<u8>)> {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(5))?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(60)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{extra}Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )?;
    s.write_all(body)?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let bad = |what: &str| std::io::Error::other(what.to_owned());
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of the header"))?;
    let head = String::from_utf8_lossy(&buf[..split]).to_ascii_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("bad status line"))?;
    let rest = &buf[split + 4..];
    let chunked = head
        .lines()
        .any(|l| l.starts_with("transfer-encoding:") && l.trim_end().ends_with("chunked"));
    if !chunked {
        return Ok((status, rest.to_vec()));
    }
    Ok((
        status,
        dechunk(rest).ok_or_else(|| bad("bad chunked body"))?,
    ))
}

/// The data of a complete `Transfer-Encoding: chunked` body (no trailers expected).
fn dechunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = rest.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&rest[..eol]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        rest = &rest[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        if rest.len() < size + 2 || &rest[size..size + 2] != b"\r\n" {
            return None;
        }
        out.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

/// xorshift64*: a deterministic generator per seed (kill moments, picks), no dependency.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
