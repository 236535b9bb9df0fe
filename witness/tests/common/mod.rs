//! Test helpers: an in-test log (leaves, roots, proofs and signed checkpoints made with the spec
//! crate's Merkle code and a test key, never with the witness), in-process witnesses on
//! 127.0.0.1:0, small HTTP receivers and a raw add-checkpoint client.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    dead_code,
    unreachable_pub
)]

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use sealtrail_spec::checkpoint::{Checkpoint, sign_checkpoint};
use sealtrail_spec::cosignature::Cosigner;
use sealtrail_spec::merkle::{LeafHashes, consistency_proof, tree_hash};
use sealtrail_spec::note::Ed25519Signer;
use sealtrail_spec::tiles::{all_tiles, encode_hash_tile};
use sealtrail_spec::{Hash, leaf_hash};
use sealtrail_witness::config::LogConfig;
use sealtrail_witness::{Config, Witness};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const ORIGIN: &str = "example.com/log";
pub const WITNESS_NAME: &str = "witness.example.com/w1";

/// A log history: a key and leaves. Two histories with the same key and different leaves are
/// a split view.
#[derive(Clone)]
pub struct TestLog {
    pub origin: String,
    pub key: Ed25519Signer,
    pub leaves: Vec<Hash>,
}

impl TestLog {
    /// A log of `n` leaves `"<tag><i>"`, signed with the key derived from `seed`.
    pub fn new(origin: &str, seed: u8, tag: &str, n: usize) -> Self {
        TestLog {
            origin: origin.to_owned(),
            key: Ed25519Signer::from_seed(origin, [seed; 32]).unwrap(),
            leaves: (0..n)
                .map(|i| leaf_hash(format!("{tag}{i}").as_bytes()))
                .collect(),
        }
    }

    pub fn vkey(&self) -> String {
        self.key.verifier().to_vkey()
    }

    pub fn root(&self, size: u64) -> Hash {
        tree_hash(&self.leaves[..size as usize])
    }

    pub fn checkpoint_text(&self, size: u64) -> String {
        Checkpoint::new(&self.origin, size, self.root(size))
            .unwrap()
            .to_text()
    }

    /// The signed checkpoint note at `size`.
    pub fn checkpoint(&self, size: u64) -> Vec<u8> {
        sign_checkpoint(
            &Checkpoint::new(&self.origin, size, self.root(size)).unwrap(),
            &self.key,
        )
        .unwrap()
    }

    pub fn proof(&self, old: u64, new: u64) -> Vec<Hash> {
        consistency_proof(old, new, &mut LeafHashes(&self.leaves[..new as usize])).unwrap()
    }

    /// The add-checkpoint body from `old` to `new` with a correct proof.
    pub fn request(&self, old: u64, new: u64) -> Vec<u8> {
        body(old, &self.proof(old, new), &self.checkpoint(new))
    }

    pub fn log_config(&self, url: Option<String>) -> LogConfig {
        LogConfig {
            origin: self.origin.clone(),
            keys: vec![self.vkey()],
            url,
        }
    }

    /// Every tlog-tiles hash tile at `size`, by path.
    pub fn tiles(&self, size: u64) -> HashMap<String, Vec<u8>> {
        all_tiles(size)
            .into_iter()
            .map(|t| {
                let span = 256u64.pow(u32::from(t.level));
                let hashes: Vec<Hash> = (0..u64::from(t.width))
                    .map(|i| {
                        let start = ((t.index * 256 + i) * span) as usize;
                        tree_hash(&self.leaves[start..start + span as usize])
                    })
                    .collect();
                (t.path(), encode_hash_tile(&hashes))
            })
            .collect()
    }
}

/// An add-checkpoint body, written by hand from the spec's grammar.
pub fn body(old: u64, proof: &[Hash], note: &[u8]) -> Vec<u8> {
    let mut b = format!("old {old}\n").into_bytes();
    for h in proof {
        b.extend_from_slice(h.to_base64().as_bytes());
        b.push(b'\n');
    }
    b.push(b'\n');
    b.extend_from_slice(note);
    b
}

pub fn cosigner() -> Cosigner {
    Cosigner::from_seed(WITNESS_NAME, [42; 32]).unwrap()
}

/// A config for `dir` with `logs`, gossip off, generous rate limits.
pub fn config(dir: &Path, logs: Vec<LogConfig>) -> Config {
    let mut c = Config::new(WITNESS_NAME, dir.join("unused.key"), dir.join("data"));
    c.logs = logs;
    c.rate_limits.per_log_per_second = 0.0;
    c.rate_limits.total_per_second = 0.0;
    c
}

/// A witness running in-process.
pub struct Running {
    pub url: String,
    pub witness: Witness,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Running {
    /// Stops the witness and waits until it has released its store.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap();
        }
    }
}

/// Starts a witness with `config` on an already bound listener.
pub fn start_on(listener: TcpListener, config: Config, key: Cosigner) -> Running {
    let addr = listener.local_addr().unwrap();
    let witness = Witness::start_with_key(config, key).unwrap();
    let (tx, rx) = oneshot::channel();
    let w = witness.clone();
    let task = tokio::spawn(async move {
        w.run(listener, async {
            let _ = rx.await;
        })
        .await;
    });
    Running {
        url: format!("http://{addr}"),
        witness,
        stop: Some(tx),
        task: Some(task),
    }
}

pub async fn listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").await.unwrap()
}

pub async fn start(config: Config) -> Running {
    start_on(listener().await, config, cosigner())
}

pub fn client() -> reqwest::Client {
    // reqwest is built without a TLS provider; the witness installs ring, so do the same here.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// POSTs an add-checkpoint body; returns status, content type and body text.
pub async fn add(url: &str, body: Vec<u8>) -> (u16, String, String) {
    let r = client()
        .post(format!("{url}/add-checkpoint"))
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, ct, r.text().await.unwrap())
}

pub async fn get(url: &str) -> (u16, String) {
    let r = client().get(url).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// The value of a metric line that starts with `prefix` (name and labels), if present.
pub async fn metric(url: &str, prefix: &str) -> Option<f64> {
    let (_, text) = get(&format!("{url}/metrics")).await;
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Polls `f` until it returns `Some`, for at most 20 seconds.
pub async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A received HTTP request.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// An in-test HTTP server recording every POST; `respond` picks the answer for the n-th
/// request (0-based).
pub struct Receiver {
    pub url: String,
    pub requests: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    pub fn requests(&self) -> Vec<Received> {
        self.requests.lock().unwrap().clone()
    }
}

pub type Respond = Arc<dyn Fn(usize, &Received) -> (StatusCode, String) + Send + Sync>;

pub async fn receiver(respond: Respond) -> Receiver {
    receiver_with_gate(respond, None).await
}

/// Like [`receiver`]; the first request's answer waits until `gate` fires.
pub async fn receiver_with_gate(respond: Respond, gate: Option<oneshot::Receiver<()>>) -> Receiver {
    let requests: Arc<Mutex<Vec<Received>>> = Arc::default();
    let gate = Arc::new(tokio::sync::Mutex::new(gate));
    let reqs = requests.clone();
    let app = Router::new().fallback(
        move |uri: axum::http::Uri, headers: HeaderMap, body: Bytes| {
            let reqs = reqs.clone();
            let respond = respond.clone();
            let gate = gate.clone();
            async move {
                let r = Received {
                    path: uri.path().to_owned(),
                    headers,
                    body,
                };
                let n = {
                    let mut v = reqs.lock().unwrap();
                    v.push(r.clone());
                    v.len() - 1
                };
                if n == 0
                    && let Some(g) = gate.lock().await.take()
                {
                    let _ = g.await;
                }
                respond(n, &r)
            }
        },
    );
    let url = serve(app).await;
    Receiver { url, requests }
}

/// Serves static files (path without the leading slash -> bytes).
pub async fn static_server(files: HashMap<String, Vec<u8>>) -> String {
    let files = Arc::new(files);
    let app = Router::new().fallback(move |uri: axum::http::Uri| {
        let files = files.clone();
        async move {
            match files.get(uri.path().trim_start_matches('/')) {
                Some(b) => (StatusCode::OK, b.clone()),
                None => (StatusCode::NOT_FOUND, Vec::new()),
            }
        }
    });
    serve(app).await
}

async fn serve(app: Router) -> String {
    let l = listener().await;
    let addr: SocketAddr = l.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(l, app).await.unwrap();
    });
    format!("http://{addr}")
}
