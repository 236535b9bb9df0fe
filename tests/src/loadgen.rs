//! The load generator behind `sealtrail-loadgen`: drives a running sealtrail server over HTTP/1.1
//! and checks everything it receives, so that an error or a bad answer never counts as throughput.
//!
//! Every run is bounded (a duration, a request count, and a hard deadline) and talks to 127.0.0.1
//! unless [`Options::allow_remote`] is set. Closed loop: `concurrency` workers, each on its own
//! keep-alive connection, send their next request as soon as the previous one is answered.
//! Open loop ([`Options::rate`]): requests are started on a fixed schedule whatever the server's
//! pace, and latency counts from the scheduled start, so a slow server cannot hide its queueing
//! (no coordinated omission).
//!
//! What is checked: status codes; append replies (index below the tree size, the right number of
//! leaf hashes, and no index handed out twice in the run); `wait=checkpoint` replies (every
//! tlog-proof is parsed and verified against the log's key: signature, origin and inclusion);
//! inclusion and consistency proofs (root equal to the signed checkpoint's, and on a sample the
//! Merkle path itself); tiles (length, and on a sample one hash proven into the signed tree). After
//! an append run, a sample of the acknowledged entries is proven into a fresh signed checkpoint.
//! The log's verifier key comes from `GET /v1/log` unless pinned with [`Options::log_key`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use sealtrail_spec::Hash;
use sealtrail_spec::checkpoint;
use sealtrail_spec::merkle;
use sealtrail_spec::note::{Ed25519Verifier, Verifier};
use sealtrail_spec::tlog_proof::TlogProof;
use serde::{Deserialize, Serialize};

/// What each request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[derive(clap::ValueEnum)]
pub enum Mode {
    /// `POST /v1/entries`: one entry per request.
    Append,
    /// `POST /v1/entries/batch`: [`Options::batch`] entries per request (NDJSON).
    Batch,
    /// `POST /v1/entries?wait=checkpoint`: one entry, answered with a tlog-proof that is verified.
    Checkpoint,
    /// `GET /v1/proof/inclusion` for random indices in the signed tree.
    Inclusion,
    /// `GET /v1/proof/consistency` from a random size to the signed tree size.
    Consistency,
    /// `GET /tile/0/<N>`: random level-0 hash tiles of the signed tree.
    Tiles,
    /// Half appends, three tenths inclusion proofs, one tenth tiles, one tenth consistency proofs.
    Mixed,
}

impl Mode {
    /// Whether requests of this mode append entries.
    fn appends(self) -> bool {
        matches!(self, Mode::Append | Mode::Batch | Mode::Checkpoint)
    }

    /// Whether this mode needs entries in the log before it starts.
    fn needs_entries(self) -> bool {
        matches!(
            self,
            Mode::Inclusion | Mode::Consistency | Mode::Tiles | Mode::Mixed
        )
    }
}

/// One run's settings. [`Options::new`] gives the defaults.
#[derive(Debug, Clone)]
pub struct Options {
    /// The request kind.
    pub mode: Mode,
    /// `http://HOST:PORT` of the server.
    pub url: String,
    /// Closed-loop workers (each with its own connection).
    pub concurrency: usize,
    /// Bytes of each JSON payload (at least 32).
    pub payload_bytes: usize,
    /// Entries per batch request ([`Mode::Batch`]).
    pub batch: usize,
    /// How long to run. With neither this nor [`Options::count`], 10 seconds.
    pub duration: Option<Duration>,
    /// How many requests to make.
    pub count: Option<u64>,
    /// Open loop: requests started per second. `None`: closed loop.
    pub rate: Option<f64>,
    /// Open loop: most requests in flight at once; later ones wait (and their latency grows).
    pub max_in_flight: usize,
    /// Sent as `Authorization: Bearer <token>`.
    pub token: Option<String>,
    /// Allow a target that is not a loopback address.
    pub allow_remote: bool,
    /// The log's verifier key (vkey). `None`: taken from `GET /v1/log`.
    pub log_key: Option<String>,
    /// Verify the Merkle path of one proof or tile response in this many (1: every one).
    pub verify_every: u64,
    /// After an append run, prove this many acknowledged entries into a fresh checkpoint.
    pub post_check: usize,
    /// Entries appended (in batches of up to 1000, unmeasured) before the run starts.
    pub prefill: u64,
    /// The server's process id, to report its CPU time and memory.
    pub server_pid: Option<u32>,
    /// Hard limit on the whole run, whatever `count` says.
    pub deadline: Duration,
}

impl Options {
    /// Defaults: 64 workers, 256-byte payloads, 1000-entry batches, 10 seconds.
    pub fn new(mode: Mode, url: &str) -> Self {
        Options {
            mode,
            url: url.to_owned(),
            concurrency: 64,
            payload_bytes: 256,
            batch: 1000,
            duration: None,
            count: None,
            rate: None,
            max_in_flight: 1024,
            token: None,
            allow_remote: false,
            log_key: None,
            verify_every: 10,
            post_check: 100,
            prefill: 0,
            server_pid: None,
            deadline: Duration::from_secs(3600),
        }
    }
}

/// The JSON summary of a run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    /// The mode, as given on the command line.
    pub mode: String,
    /// `closed` or `open`.
    pub load: String,
    /// The target.
    pub url: String,
    /// The server's storage engine, from `GET /v1/log`.
    pub engine: String,
    /// Closed-loop workers, or the open loop's in-flight cap.
    pub concurrency: usize,
    /// Open loop: requests offered per second.
    pub offered_rate: Option<f64>,
    /// Payload bytes per entry.
    pub payload_bytes: usize,
    /// Entries per request for appends (1 unless batch mode).
    pub batch: usize,
    /// Seconds from the first request to the last answer.
    pub elapsed_s: f64,
    /// Requests sent.
    pub requests: u64,
    /// Requests answered as expected and verified.
    pub ok: u64,
    /// Requests that failed in any way (status, transport, malformed or unverifiable answer).
    pub errors: u64,
    /// Errors by kind.
    pub error_kinds: BTreeMap<String, u64>,
    /// The first error's full message, if any.
    pub first_error: Option<String>,
    /// Entries appended and acknowledged (0 for read modes).
    pub entries: u64,
    /// Successful requests per second.
    pub requests_per_s: f64,
    /// Acknowledged entries per second.
    pub entries_per_s: f64,
    /// Latency of the successful requests, in milliseconds (send to verified answer; open loop:
    /// scheduled start to verified answer).
    pub latency_ms: Latency,
    /// Responses whose proof (or tile hash) was verified cryptographically.
    pub verified: u64,
    /// Verification failures (also counted in `errors`).
    pub verify_failures: u64,
    /// Indices acknowledged more than once within this run (must be 0).
    pub duplicate_indices: u64,
    /// Tree size before and after the run.
    pub tree_size_before: u64,
    /// Tree size after the run.
    pub tree_size_after: u64,
    /// Acknowledged entries later proven into a fresh signed checkpoint.
    pub post_checked: u64,
    /// This process's CPU time during the run.
    pub generator: ProcessUse,
    /// The server's CPU time during the run and memory after it, if its pid was given.
    pub server: Option<ProcessUse>,
    /// The server's sequencer commits during the run (from its `/metrics`, when readable).
    pub server_commits: Option<Commits>,
}

/// The server's sequencer commits (extend, sign, durable write) during a run, from the
/// difference of its `sealtrail_commit_seconds` histogram before and after. Percentiles are
/// the histogram's bucket bounds: "at most this long".
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Commits {
    /// Commits during the run.
    pub count: u64,
    /// Mean commit time, milliseconds.
    pub mean_ms: f64,
    /// Upper bound of the bucket holding the median, milliseconds.
    pub p50_le_ms: f64,
    /// Upper bound of the bucket holding the 99th percentile, milliseconds.
    pub p99_le_ms: f64,
    /// Upper bound of the bucket holding the slowest commit, milliseconds.
    pub max_le_ms: f64,
    /// Commits that took longer than 25.6 ms (the bucket bound nearest half of a 50 ms goal).
    pub over_25ms: u64,
}

/// A Prometheus histogram as cumulative `(le, count)` buckets, its sum and count.
#[derive(Debug, Clone, Default, PartialEq)]
struct Histogram {
    buckets: Vec<(f64, u64)>,
    sum: f64,
    count: u64,
}

/// Reads histogram `name` from a Prometheus text exposition (no labels besides `le`).
fn parse_histogram(text: &str, name: &str) -> Option<Histogram> {
    let mut h = Histogram::default();
    let bucket = format!("{name}_bucket{{le=\"");
    let (sum, count) = (format!("{name}_sum "), format!("{name}_count "));
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix(&bucket) {
            let (le, n) = rest.split_once("\"} ")?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            h.buckets.push((le, n.trim().parse().ok()?));
        } else if let Some(v) = line.strip_prefix(&sum) {
            h.sum = v.trim().parse().ok()?;
        } else if let Some(v) = line.strip_prefix(&count) {
            h.count = v.trim().parse().ok()?;
        }
    }
    (!h.buckets.is_empty()).then_some(h)
}

/// The commits between two scrapes of the same server's `sealtrail_commit_seconds`.
fn commits_between(before: &Histogram, after: &Histogram) -> Option<Commits> {
    if before.buckets.len() != after.buckets.len() || after.count < before.count {
        return None;
    }
    let count = after.count - before.count;
    let delta: Vec<(f64, u64)> = after
        .buckets
        .iter()
        .zip(&before.buckets)
        .map(|(a, b)| (a.0, a.1.saturating_sub(b.1)))
        .collect();
    let rank = |q: f64| {
        let want = ((count as f64) * q).ceil().max(1.0) as u64;
        delta
            .iter()
            .find(|(_, n)| *n >= want)
            .map_or(f64::INFINITY, |(le, _)| le * 1e3)
    };
    let within_25ms = delta
        .iter()
        .filter(|(le, _)| *le <= 0.0256 + 1e-9)
        .map(|(_, n)| *n)
        .max()
        .unwrap_or(0);
    Some(Commits {
        count,
        mean_ms: if count == 0 {
            0.0
        } else {
            (after.sum - before.sum) * 1e3 / count as f64
        },
        p50_le_ms: if count == 0 { 0.0 } else { rank(0.5) },
        p99_le_ms: if count == 0 { 0.0 } else { rank(0.99) },
        max_le_ms: if count == 0 { 0.0 } else { rank(1.0) },
        over_25ms: count.saturating_sub(within_25ms),
    })
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

/// CPU and memory of a process over a run.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ProcessUse {
    /// User plus system CPU seconds during the run.
    pub cpu_s: f64,
    /// CPU microseconds per successful request.
    pub cpu_us_per_request: f64,
    /// Resident memory at the end, KiB.
    pub rss_kib: u64,
    /// Peak resident memory (VmHWM), KiB.
    pub peak_rss_kib: u64,
}

impl Summary {
    /// Whether the run saw no error and no verification failure.
    pub fn clean(&self) -> bool {
        self.errors == 0 && self.verify_failures == 0 && self.duplicate_indices == 0
    }
}

/// A run that could not start or finish (bad options, unreachable or unverifiable server).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The options are unusable.
    #[error("{0}")]
    Usage(String),
    /// The server could not be used.
    #[error("{0}")]
    Server(String),
}

/// The target: where to connect and what to put in `Host`.
#[derive(Debug, Clone)]
struct Target {
    addr: SocketAddr,
    host: HeaderValue,
}

async fn resolve(url: &str, allow_remote: bool) -> Result<Target, LoadError> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        LoadError::Usage(format!(
            "the URL must start with http:// (TLS is not supported): {url:?}"
        ))
    })?;
    let authority = rest.trim_end_matches('/');
    if authority.is_empty() || authority.contains(['/', '?', '#', '@']) {
        return Err(LoadError::Usage(format!(
            "the URL must be http://HOST:PORT with no path: {url:?}"
        )));
    }
    let with_port = if authority.rsplit_once(':').is_some_and(|(_, p)| {
        !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && !authority.ends_with(']')
    }) {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(&with_port)
        .await
        .map_err(|e| LoadError::Usage(format!("resolving {authority}: {e}")))?
        .collect();
    let Some(addr) = addrs.first().copied() else {
        return Err(LoadError::Usage(format!("{authority} has no address")));
    };
    if !allow_remote && !addrs.iter().all(|a| a.ip().is_loopback()) {
        return Err(LoadError::Usage(format!(
            "{authority} is not a loopback address; pass --allow-remote to load a remote server"
        )));
    }
    let host = HeaderValue::from_str(authority)
        .map_err(|_| LoadError::Usage(format!("bad host in {url:?}")))?;
    Ok(Target { addr, host })
}

/// One keep-alive HTTP/1.1 connection.
struct Conn {
    tx: SendRequest<Full<Bytes>>,
}

/// A failed request: a short kind for counting and the full message.
#[derive(Debug)]
struct Failure {
    kind: String,
    message: String,
    verify: bool,
}

impl Failure {
    fn new(kind: impl Into<String>, message: impl Into<String>) -> Self {
        Failure {
            kind: kind.into(),
            message: message.into(),
            verify: false,
        }
    }

    fn verify(message: impl Into<String>) -> Self {
        Failure {
            kind: "verification failed".into(),
            message: message.into(),
            verify: true,
        }
    }

    fn bad(message: impl Into<String>) -> Self {
        Failure::new("malformed response", message)
    }
}

/// An HTTP/1.1 client for one server: the address, the `Host` header and the token.
#[derive(Debug, Clone)]
struct Client {
    target: Target,
    token: Option<HeaderValue>,
}

impl Client {
    async fn connect(&self) -> Result<Conn, Failure> {
        let stream = tokio::net::TcpStream::connect(self.target.addr)
            .await
            .map_err(|e| Failure::new("connect", format!("connecting: {e}")))?;
        let _ = stream.set_nodelay(true);
        let (tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| Failure::new("connect", format!("HTTP handshake: {e}")))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Conn { tx })
    }

    /// Sends one request on `conn` (connecting first if needed); drops a broken connection.
    async fn call(
        &self,
        conn: &mut Option<Conn>,
        method: Method,
        path: &str,
        content_type: Option<&'static str>,
        body: Bytes,
    ) -> Result<(StatusCode, Bytes), Failure> {
        if conn.as_ref().is_none_or(|c| c.tx.is_closed()) {
            *conn = Some(self.connect().await?);
        }
        let Some(c) = conn.as_mut() else {
            return Err(Failure::new("connect", "no connection"));
        };
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, self.target.host.clone());
        if let Some(ct) = content_type {
            req = req.header(CONTENT_TYPE, ct);
        }
        if let Some(t) = &self.token {
            req = req.header(AUTHORIZATION, t.clone());
        }
        let req = req
            .body(Full::new(body))
            .map_err(|e| Failure::new("request", format!("building the request: {e}")))?;
        let result = async {
            c.tx.ready().await?;
            let resp = c.tx.send_request(req).await?;
            let status = resp.status();
            let body = resp.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>((status, body))
        }
        .await;
        match result {
            Ok(r) => Ok(r),
            Err(e) => {
                *conn = None;
                Err(Failure::new("transport", format!("{path}: {e}")))
            }
        }
    }

    async fn get_json<T: for<'de> Deserialize<'de>>(
        &self,
        conn: &mut Option<Conn>,
        path: &str,
    ) -> Result<T, Failure> {
        let (status, body) = self
            .call(conn, Method::GET, path, None, Bytes::new())
            .await?;
        expect_status(status, StatusCode::OK, &body)?;
        serde_json::from_slice(&body).map_err(|e| Failure::bad(format!("{path}: {e}")))
    }
}

/// What every request needs: the client, the trusted key and origin, and the signed tree the
/// read modes work against.
struct Ctx {
    http: Client,
    origin: String,
    verifier: Ed25519Verifier,
    opts: Options,
    /// The signed tree that proofs and tiles are requested against.
    tree: Option<Tree>,
    payload_pad: String,
    next_seq: AtomicU64,
    /// The last checkpoint whose signature was verified, and its tree.
    last_checkpoint: Mutex<Option<(Vec<u8>, Tree)>>,
}

#[derive(Debug, Clone, Copy)]
struct Tree {
    size: u64,
    root: Hash,
}

impl Ctx {
    /// A JSON payload of exactly `payload_bytes` bytes, unique within the run.
    fn payload(&self, out: &mut Vec<u8>) {
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let head = format!("{{\"seq\":{seq},\"pad\":\"");
        let pad = self
            .opts
            .payload_bytes
            .saturating_sub(head.len() + 2)
            .min(self.payload_pad.len());
        out.extend_from_slice(head.as_bytes());
        out.extend_from_slice(&self.payload_pad.as_bytes()[..pad]);
        out.extend_from_slice(b"\"}");
    }

    fn tree(&self) -> Result<Tree, Failure> {
        self.tree
            .ok_or_else(|| Failure::new("usage", "no signed tree to read"))
    }

    /// Opens a signed checkpoint, verifying its signature only if it differs from the last one
    /// verified (many answers of one group commit carry the same checkpoint).
    fn verified_tree(&self, bytes: &[u8]) -> Result<Tree, Failure> {
        if let Ok(last) = self.last_checkpoint.lock()
            && let Some((b, tree)) = last.as_ref()
            && b.as_slice() == bytes
        {
            return Ok(*tree);
        }
        let tree = self.open_checkpoint(bytes)?;
        if let Ok(mut last) = self.last_checkpoint.lock() {
            *last = Some((bytes.to_vec(), tree));
        }
        Ok(tree)
    }

    /// Opens a signed checkpoint with the trusted key.
    fn open_checkpoint(&self, bytes: &[u8]) -> Result<Tree, Failure> {
        let v: [&dyn Verifier; 1] = [&self.verifier];
        let cp = checkpoint::open(bytes, &self.origin, &v)
            .map_err(|e| Failure::verify(format!("checkpoint: {e}")))?;
        Ok(Tree {
            size: cp.checkpoint().size(),
            root: cp.checkpoint().root(),
        })
    }
}

fn expect_status(got: StatusCode, want: StatusCode, body: &[u8]) -> Result<(), Failure> {
    if got == want {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
    Err(Failure::new(
        format!("status {}", got.as_u16()),
        format!("expected {want}, got {got}: {text}"),
    ))
}

fn hash_hex(h: &str) -> Result<Hash, Failure> {
    Hash::from_hex(h).map_err(|e| Failure::bad(format!("leaf_hash {h:?}: {e}")))
}

fn hashes_b64(v: &[String]) -> Result<Vec<Hash>, Failure> {
    v.iter()
        .map(|h| Hash::from_base64(h).map_err(|e| Failure::bad(format!("hash {h:?}: {e}"))))
        .collect()
}

#[derive(Deserialize)]
struct LogInfo {
    origin: String,
    verifier_key: String,
    tree_size: u64,
    checkpoint: String,
    storage_engine: String,
}

#[derive(Deserialize)]
struct AppendReply {
    index: u64,
    leaf_hash: String,
    tree_size: u64,
    tlog_proof: Option<String>,
}

#[derive(Deserialize)]
struct BatchReply {
    first_index: u64,
    count: u64,
    leaf_hashes: Vec<String>,
    tree_size: u64,
}

#[derive(Deserialize)]
struct InclusionReply {
    index: u64,
    tree_size: u64,
    leaf_hash: String,
    root_hash: String,
    proof: Vec<String>,
}

#[derive(Deserialize)]
struct ConsistencyReply {
    from: u64,
    to: u64,
    old_root: String,
    new_root: String,
    proof: Vec<String>,
}

/// How long one request may take before it counts as a timeout error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A small, fast, seeded generator (xorshift64*); quality is irrelevant here.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-enough in `0..n` (`n > 0`).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// One worker's (or one open-loop request's) tally.
#[derive(Default)]
struct Stats {
    requests: u64,
    ok: u64,
    entries: u64,
    latencies_us: Vec<u32>,
    errors: BTreeMap<String, u64>,
    first_error: Option<String>,
    verified: u64,
    verify_failures: u64,
    /// Acknowledged index ranges `(first, count)`.
    ranges: Vec<(u64, u64)>,
    /// Acknowledged `(index, leaf hash)` pairs kept for the post-run check.
    samples: Vec<(u64, Hash)>,
}

impl Stats {
    fn record(&mut self, started: Instant, result: Result<Done, Failure>) {
        self.requests += 1;
        match result {
            Ok(done) => {
                self.ok += 1;
                self.entries += done.entries;
                let us = started.elapsed().as_micros();
                self.latencies_us
                    .push(u32::try_from(us).unwrap_or(u32::MAX));
                self.verified += u64::from(done.verified);
                if done.entries > 0 {
                    self.ranges.push((done.first_index, done.entries));
                }
                if let Some(s) = done.sample {
                    self.samples.push(s);
                }
            }
            Err(f) => {
                if f.verify {
                    self.verify_failures += 1;
                }
                *self.errors.entry(f.kind).or_default() += 1;
                if self.first_error.is_none() {
                    self.first_error = Some(f.message);
                }
            }
        }
    }

    fn merge(&mut self, o: Stats) {
        self.requests += o.requests;
        self.ok += o.ok;
        self.entries += o.entries;
        self.latencies_us.extend(o.latencies_us);
        for (k, v) in o.errors {
            *self.errors.entry(k).or_default() += v;
        }
        if self.first_error.is_none() {
            self.first_error = o.first_error;
        }
        self.verified += o.verified;
        self.verify_failures += o.verify_failures;
        self.ranges.extend(o.ranges);
        self.samples.extend(o.samples);
    }
}

/// A successful request.
#[derive(Default)]
struct Done {
    entries: u64,
    first_index: u64,
    verified: bool,
    sample: Option<(u64, Hash)>,
}

/// Which request a mode makes for request number `n`.
fn op_for(mode: Mode, n: u64) -> Mode {
    if mode != Mode::Mixed {
        return mode;
    }
    match n % 10 {
        0..=4 => Mode::Append,
        5..=7 => Mode::Inclusion,
        8 => Mode::Tiles,
        _ => Mode::Consistency,
    }
}

async fn one(
    ctx: &Ctx,
    conn: &mut Option<Conn>,
    op: Mode,
    rng: &mut Rng,
    keep: bool,
    buf: &mut Vec<u8>,
) -> Result<Done, Failure> {
    let check_path = rng.below(ctx.opts.verify_every.max(1)) == 0;
    match op {
        Mode::Append | Mode::Checkpoint | Mode::Mixed => {
            buf.clear();
            ctx.payload(buf);
            let path = if op == Mode::Checkpoint {
                "/v1/entries?wait=checkpoint"
            } else {
                "/v1/entries"
            };
            let (status, body) = ctx
                .http
                .call(
                    conn,
                    Method::POST,
                    path,
                    Some("application/json"),
                    Bytes::copy_from_slice(buf),
                )
                .await?;
            expect_status(status, StatusCode::CREATED, &body)?;
            let r: AppendReply = serde_json::from_slice(&body)
                .map_err(|e| Failure::bad(format!("append reply: {e}")))?;
            if r.index >= r.tree_size {
                return Err(Failure::bad(format!(
                    "index {} is not below the tree size {}",
                    r.index, r.tree_size
                )));
            }
            let leaf = hash_hex(&r.leaf_hash)?;
            let mut verified = false;
            if op == Mode::Checkpoint {
                let text = r
                    .tlog_proof
                    .ok_or_else(|| Failure::bad("wait=checkpoint reply without tlog_proof"))?;
                let proof = TlogProof::parse(text.as_bytes())
                    .map_err(|e| Failure::verify(format!("tlog-proof: {e}")))?;
                if proof.index() != r.index {
                    return Err(Failure::verify(format!(
                        "tlog-proof for index {} in the reply for index {}",
                        proof.index(),
                        r.index
                    )));
                }
                // tlog-proof verification (its steps 2 and 4: the log's signature on the
                // checkpoint, then inclusion), with the signature checked once per checkpoint.
                let tree = ctx.verified_tree(proof.checkpoint())?;
                merkle::verify_inclusion(r.index, tree.size, &leaf, proof.path(), &tree.root)
                    .map_err(|e| Failure::verify(format!("tlog-proof of {}: {e}", r.index)))?;
                verified = true;
            }
            Ok(Done {
                entries: 1,
                first_index: r.index,
                verified,
                sample: keep.then_some((r.index, leaf)),
            })
        }
        Mode::Batch => {
            buf.clear();
            for _ in 0..ctx.opts.batch {
                ctx.payload(buf);
                buf.push(b'\n');
            }
            let (status, body) = ctx
                .http
                .call(
                    conn,
                    Method::POST,
                    "/v1/entries/batch",
                    Some("application/x-ndjson"),
                    Bytes::copy_from_slice(buf),
                )
                .await?;
            expect_status(status, StatusCode::CREATED, &body)?;
            let r: BatchReply = serde_json::from_slice(&body)
                .map_err(|e| Failure::bad(format!("batch reply: {e}")))?;
            let n = ctx.opts.batch as u64;
            if r.count != n || r.leaf_hashes.len() as u64 != n {
                return Err(Failure::bad(format!(
                    "batch of {n} acknowledged as {} entries with {} leaf hashes",
                    r.count,
                    r.leaf_hashes.len()
                )));
            }
            if r.first_index.checked_add(n).is_none_or(|e| e > r.tree_size) {
                return Err(Failure::bad(format!(
                    "entries {}+{n} are not within the tree size {}",
                    r.first_index, r.tree_size
                )));
            }
            let k = rng.below(n);
            let leaf = hash_hex(r.leaf_hashes.get(k as usize).map_or("", String::as_str))?;
            Ok(Done {
                entries: n,
                first_index: r.first_index,
                verified: false,
                sample: keep.then_some((r.first_index + k, leaf)),
            })
        }
        Mode::Inclusion => {
            let tree = ctx.tree()?;
            let index = rng.below(tree.size);
            inclusion(ctx, conn, tree, index, None, check_path).await
        }
        Mode::Consistency => {
            let tree = ctx.tree()?;
            let from = 1 + rng.below(tree.size);
            let path = format!("/v1/proof/consistency?from={from}&to={}", tree.size);
            let r: ConsistencyReply = ctx.http.get_json(conn, &path).await?;
            let new_root = Hash::from_base64(&r.new_root)
                .map_err(|e| Failure::bad(format!("new_root: {e}")))?;
            if r.from != from || r.to != tree.size || new_root != tree.root {
                return Err(Failure::verify(format!(
                    "consistency {from}->{}: answered {}->{} with a root other than the signed one",
                    tree.size, r.from, r.to
                )));
            }
            if check_path {
                let old_root = Hash::from_base64(&r.old_root)
                    .map_err(|e| Failure::bad(format!("old_root: {e}")))?;
                merkle::verify_consistency(
                    from,
                    tree.size,
                    &old_root,
                    &new_root,
                    &hashes_b64(&r.proof)?,
                )
                .map_err(|e| Failure::verify(format!("consistency {from}->{}: {e}", tree.size)))?;
            }
            Ok(Done {
                verified: check_path,
                ..Done::default()
            })
        }
        Mode::Tiles => {
            let tree = ctx.tree()?;
            let full = tree.size / 256;
            let (index, width) = if full > 0 {
                (rng.below(full), 256u64)
            } else {
                (0, tree.size)
            };
            let path = if width == 256 {
                format!("/tile/0/{}", sealtrail_spec::tiles::encode_index(index))
            } else {
                format!("/tile/0/000.p/{width}")
            };
            let (status, body) = ctx
                .http
                .call(conn, Method::GET, &path, None, Bytes::new())
                .await?;
            expect_status(status, StatusCode::OK, &body)?;
            if body.len() as u64 != width * 32 {
                return Err(Failure::bad(format!(
                    "{path}: {} bytes, expected {}",
                    body.len(),
                    width * 32
                )));
            }
            if check_path {
                // One hash of the tile must be the leaf hash at its index in the signed tree.
                let k = rng.below(width);
                let at = (k * 32) as usize;
                let leaf = Hash::from_slice(&body[at..at + 32])
                    .map_err(|e| Failure::bad(format!("{path}: {e}")))?;
                inclusion(ctx, conn, tree, index * 256 + k, Some(leaf), true).await?;
            }
            Ok(Done {
                verified: check_path,
                ..Done::default()
            })
        }
    }
}

/// Requests the inclusion proof of `index` in `tree` and checks it; `leaf`, if given, must be
/// the proven leaf hash.
async fn inclusion(
    ctx: &Ctx,
    conn: &mut Option<Conn>,
    tree: Tree,
    index: u64,
    leaf: Option<Hash>,
    check_path: bool,
) -> Result<Done, Failure> {
    let path = format!("/v1/proof/inclusion?index={index}&size={}", tree.size);
    let r: InclusionReply = ctx.http.get_json(conn, &path).await?;
    let root =
        Hash::from_base64(&r.root_hash).map_err(|e| Failure::bad(format!("root_hash: {e}")))?;
    if r.index != index || r.tree_size != tree.size || root != tree.root {
        return Err(Failure::verify(format!(
            "inclusion of {index} in {}: answered for {} in {} with a root other than the signed one",
            tree.size, r.index, r.tree_size
        )));
    }
    let got = hash_hex(&r.leaf_hash)?;
    if leaf.is_some_and(|l| l != got) {
        return Err(Failure::verify(format!(
            "entry {index}: the proof is for another leaf hash than the one acknowledged or served"
        )));
    }
    if check_path {
        merkle::verify_inclusion(index, tree.size, &got, &hashes_b64(&r.proof)?, &tree.root)
            .map_err(|e| Failure::verify(format!("inclusion of {index} in {}: {e}", tree.size)))?;
    }
    Ok(Done {
        verified: check_path,
        ..Done::default()
    })
}

/// `/proc/<pid>/stat` utime+stime in seconds (USER_HZ is 100 on Linux), and VmRSS/VmHWM in KiB.
fn proc_use(pid: &str) -> Option<(f64, u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Some((ticks as f64 / 100.0, kib("VmRSS:"), kib("VmHWM:")))
}

fn latency(mut us: Vec<u32>) -> Latency {
    if us.is_empty() {
        return Latency::default();
    }
    us.sort_unstable();
    let at = |q: f64| {
        let i = ((us.len() as f64 * q).ceil() as usize).clamp(1, us.len()) - 1;
        f64::from(us[i]) / 1000.0
    };
    let sum: u64 = us.iter().map(|&v| u64::from(v)).sum();
    Latency {
        p50: at(0.50),
        p90: at(0.90),
        p99: at(0.99),
        max: at(1.0),
        mean: sum as f64 / us.len() as f64 / 1000.0,
    }
}

/// The durable-write latency of this machine's disk, tail included: what a sequencer commit can
/// never beat. From `--fsync-probe`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct FsyncProbe {
    /// Durable writes made (4 KiB each, then `fdatasync`).
    pub syncs: u64,
    /// Seconds the probe ran.
    pub elapsed_s: f64,
    /// Latency of one write plus `fdatasync`, in milliseconds.
    pub latency_ms: Latency,
    /// Syncs slower than 25 ms.
    pub over_25ms: u64,
}

/// Rewrites 4 KiB blocks of a 2 MiB file in `dir` and `fdatasync`s after each, for `duration`
/// (at most `max_syncs` syncs), timing each; the file is removed afterwards. The same kind of
/// write a commit ends with, without the store: its tail is the disk's.
pub fn fsync_probe(
    dir: &std::path::Path,
    duration: Duration,
    max_syncs: u64,
) -> std::io::Result<FsyncProbe> {
    use std::os::unix::fs::FileExt as _;
    const BLOCK: usize = 4096;
    const BLOCKS: u64 = 512;
    let path = dir.join(format!("sealtrail-fsync-probe-{}", std::process::id()));
    let file = std::fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .open(&path)?;
    let run = || {
        let block = vec![0x5a_u8; BLOCK];
        // Allocate the whole file first, so the timed syncs are overwrites.
        for b in 0..BLOCKS {
            file.write_all_at(&block, b * BLOCK as u64)?;
        }
        file.sync_all()?;
        let mut us = Vec::new();
        let start = Instant::now();
        let mut n = 0u64;
        while n < max_syncs && start.elapsed() < duration {
            let t = Instant::now();
            file.write_all_at(&block, (n % BLOCKS) * BLOCK as u64)?;
            file.sync_data()?;
            // Rounded up: on a filesystem where a sync costs under a microsecond (tmpfs) every
            // sample is still a measured, non-zero time.
            let took = t.elapsed().as_nanos().div_ceil(1000);
            us.push(u32::try_from(took).unwrap_or(u32::MAX));
            n += 1;
        }
        Ok(FsyncProbe {
            syncs: n,
            elapsed_s: start.elapsed().as_secs_f64(),
            over_25ms: us.iter().filter(|&&u| u > 25_000).count() as u64,
            latency_ms: latency(us),
        })
    };
    let result = run();
    drop(file);
    std::fs::remove_file(&path)?;
    result
}

/// Index ranges acknowledged more than once (overlapping entries counted).
fn duplicates(mut ranges: Vec<(u64, u64)>) -> u64 {
    ranges.sort_unstable();
    let mut dup = 0;
    let mut end = 0u64;
    for (i, (first, n)) in ranges.into_iter().enumerate() {
        let last = first.saturating_add(n);
        if i > 0 && first < end {
            dup += end.min(last) - first;
        }
        end = end.max(last);
    }
    dup
}

fn validate(o: &Options) -> Result<(), LoadError> {
    let bad = |m: &str| Err(LoadError::Usage(m.to_owned()));
    if o.concurrency == 0 || o.concurrency > 10_000 {
        return bad("--concurrency must be 1 to 10000");
    }
    if o.payload_bytes < 32 || o.payload_bytes > 64_000 {
        return bad("--payload-bytes must be 32 to 64000");
    }
    if o.batch == 0 || o.batch > 100_000 {
        return bad("--batch must be 1 to 100000");
    }
    if o.count == Some(0) {
        return bad("--count must be at least 1");
    }
    if o.duration.is_some_and(|d| d.is_zero() || d > o.deadline) {
        return bad("--duration must be positive and within the deadline");
    }
    if o.rate
        .is_some_and(|r| !(r.is_finite() && r > 0.0 && r <= 1e6))
    {
        return bad("--rate must be between 0 and 1000000 requests/s");
    }
    if o.max_in_flight == 0 {
        return bad("--max-in-flight must be at least 1");
    }
    if o.verify_every == 0 {
        return bad("--verify-every must be at least 1");
    }
    Ok(())
}

/// Runs one load test and returns its summary. Errors only if the run cannot start (bad options,
/// an unreachable server, a checkpoint that does not verify with the key).
pub async fn run(opts: Options) -> Result<Summary, LoadError> {
    validate(&opts)?;
    let target = resolve(&opts.url, opts.allow_remote).await?;
    let token = opts
        .token
        .as_deref()
        .map(|t| {
            let mut v = HeaderValue::from_str(&format!("Bearer {t}"))
                .map_err(|_| LoadError::Usage("the token must be visible ASCII".into()))?;
            v.set_sensitive(true);
            Ok::<_, LoadError>(v)
        })
        .transpose()?;
    let http = Client { target, token };
    let server = |e: Failure| LoadError::Server(e.message);
    let mut conn = None;
    let info: LogInfo = http.get_json(&mut conn, "/v1/log").await.map_err(server)?;
    let vkey = opts.log_key.clone().unwrap_or(info.verifier_key);
    let verifier = Ed25519Verifier::from_vkey(vkey.trim())
        .map_err(|e| LoadError::Usage(format!("the log key: {e}")))?;
    let mut ctx = Ctx {
        http,
        origin: info.origin,
        verifier,
        payload_pad: "x".repeat(opts.payload_bytes),
        next_seq: AtomicU64::new(0),
        last_checkpoint: Mutex::new(None),
        tree: None,
        opts,
    };
    if info.tree_size > 0 {
        ctx.open_checkpoint(info.checkpoint.as_bytes())
            .map_err(server)?;
    }
    if ctx.opts.prefill > 0 {
        prefill(&ctx, &mut conn).await?;
    }
    if ctx.opts.mode.needs_entries() {
        let (status, body) = ctx
            .http
            .call(&mut conn, Method::GET, "/checkpoint", None, Bytes::new())
            .await
            .map_err(server)?;
        expect_status(status, StatusCode::OK, &body).map_err(server)?;
        let tree = ctx.open_checkpoint(&body).map_err(server)?;
        if tree.size == 0 {
            return Err(LoadError::Usage(
                "the log is empty: fill it first (--prefill N)".into(),
            ));
        }
        ctx.tree = Some(tree);
    }
    let before = ctx.http.get_json::<LogInfo>(&mut conn, "/v1/log").await;
    let tree_size_before = before.map_err(server)?.tree_size;
    let commits0 = commit_histogram(&ctx.http, &mut conn).await;
    let ctx = Arc::new(ctx);
    let pid = std::process::id().to_string();
    let server_pid = ctx.opts.server_pid.map(|p| p.to_string());
    let gen0 = proc_use(&pid).map_or(0.0, |u| u.0);
    let srv0 = server_pid
        .as_deref()
        .and_then(proc_use)
        .map_or(0.0, |u| u.0);
    let start = Instant::now();
    let stats = match ctx.opts.rate {
        None => closed_loop(ctx.clone(), start).await,
        Some(rate) => open_loop(ctx.clone(), start, rate).await,
    };
    let elapsed = start.elapsed().as_secs_f64();
    let gen1 = proc_use(&pid).unwrap_or_default();
    let srv1 = server_pid.as_deref().and_then(proc_use);
    let commits1 = commit_histogram(&ctx.http, &mut conn).await;
    let post_checked = post_check(&ctx, &mut conn, &stats.samples)
        .await
        .map_err(server)?;
    let after: LogInfo = ctx
        .http
        .get_json(&mut conn, "/v1/log")
        .await
        .map_err(server)?;
    let per = |cpu: f64| {
        if stats.ok == 0 {
            0.0
        } else {
            cpu * 1e6 / stats.ok as f64
        }
    };
    let o = &ctx.opts;
    Ok(Summary {
        mode: format!("{:?}", o.mode).to_lowercase(),
        load: if o.rate.is_some() { "open" } else { "closed" }.into(),
        url: o.url.clone(),
        engine: after.storage_engine,
        concurrency: if o.rate.is_some() {
            o.max_in_flight
        } else {
            o.concurrency
        },
        offered_rate: o.rate,
        payload_bytes: o.payload_bytes,
        batch: if o.mode == Mode::Batch { o.batch } else { 1 },
        elapsed_s: elapsed,
        requests: stats.requests,
        ok: stats.ok,
        errors: stats.requests - stats.ok,
        error_kinds: stats.errors,
        first_error: stats.first_error,
        entries: stats.entries,
        requests_per_s: stats.ok as f64 / elapsed,
        entries_per_s: stats.entries as f64 / elapsed,
        latency_ms: latency(stats.latencies_us),
        verified: stats.verified,
        verify_failures: stats.verify_failures,
        duplicate_indices: duplicates(stats.ranges),
        tree_size_before,
        tree_size_after: after.tree_size,
        post_checked,
        generator: ProcessUse {
            cpu_s: gen1.0 - gen0,
            cpu_us_per_request: per(gen1.0 - gen0),
            rss_kib: gen1.1,
            peak_rss_kib: gen1.2,
        },
        server: srv1.map(|s| ProcessUse {
            cpu_s: s.0 - srv0,
            cpu_us_per_request: per(s.0 - srv0),
            rss_kib: s.1,
            peak_rss_kib: s.2,
        }),
        server_commits: commits0
            .zip(commits1)
            .and_then(|(b, a)| commits_between(&b, &a)),
    })
}

/// The server's commit-latency histogram, or `None` if its `/metrics` is not readable (private
/// metrics without a token that may read them) or lacks it.
async fn commit_histogram(http: &Client, conn: &mut Option<Conn>) -> Option<Histogram> {
    let (status, body) = http
        .call(conn, Method::GET, "/metrics", None, Bytes::new())
        .await
        .ok()?;
    if status != StatusCode::OK {
        return None;
    }
    parse_histogram(std::str::from_utf8(&body).ok()?, "sealtrail_commit_seconds")
}

/// Appends `prefill` entries in batches of up to 1000, unmeasured, 4 requests at a time.
async fn prefill(ctx: &Ctx, conn: &mut Option<Conn>) -> Result<(), LoadError> {
    let mut left = ctx.opts.prefill;
    let mut bodies = Vec::new();
    while left > 0 {
        let n = left.min(1000);
        left -= n;
        let mut buf = Vec::new();
        for _ in 0..n {
            ctx.payload(&mut buf);
            buf.push(b'\n');
        }
        bodies.push((n, Bytes::from(buf)));
    }
    for (n, body) in bodies {
        let (status, reply) = ctx
            .http
            .call(
                conn,
                Method::POST,
                "/v1/entries/batch",
                Some("application/x-ndjson"),
                body,
            )
            .await
            .map_err(|e| LoadError::Server(format!("prefill: {}", e.message)))?;
        expect_status(status, StatusCode::CREATED, &reply)
            .map_err(|e| LoadError::Server(format!("prefill: {}", e.message)))?;
        let r: BatchReply = serde_json::from_slice(&reply)
            .map_err(|e| LoadError::Server(format!("prefill reply: {e}")))?;
        if r.count != n {
            return Err(LoadError::Server(format!(
                "prefill: {n} entries acknowledged as {}",
                r.count
            )));
        }
    }
    Ok(())
}

/// Proves up to `post_check` sampled acknowledged entries into a fresh signed checkpoint.
async fn post_check(
    ctx: &Ctx,
    conn: &mut Option<Conn>,
    samples: &[(u64, Hash)],
) -> Result<u64, Failure> {
    if samples.is_empty() || ctx.opts.post_check == 0 {
        return Ok(0);
    }
    let (status, body) = ctx
        .http
        .call(conn, Method::GET, "/checkpoint", None, Bytes::new())
        .await?;
    expect_status(status, StatusCode::OK, &body)?;
    let tree = ctx.open_checkpoint(&body)?;
    let step = samples.len().div_ceil(ctx.opts.post_check).max(1);
    let mut n = 0;
    for &(index, leaf) in samples.iter().step_by(step) {
        if index >= tree.size {
            return Err(Failure::verify(format!(
                "entry {index} was acknowledged but the signed tree has only {} entries",
                tree.size
            )));
        }
        inclusion(ctx, conn, tree, index, Some(leaf), true).await?;
        n += 1;
    }
    Ok(n)
}

/// `concurrency` workers, each with its own connection, until the count or the time is used up.
async fn closed_loop(ctx: Arc<Ctx>, start: Instant) -> Stats {
    let o = &ctx.opts;
    let until = start
        + o.duration.unwrap_or(if o.count.is_some() {
            o.deadline
        } else {
            Duration::from_secs(10)
        });
    let hard = start + o.deadline;
    let issued = Arc::new(AtomicU64::new(0));
    let limit = o.count.unwrap_or(u64::MAX);
    let every = sample_every(o);
    let mut workers = Vec::new();
    for w in 0..o.concurrency {
        let ctx = ctx.clone();
        let issued = issued.clone();
        workers.push(tokio::spawn(async move {
            let mut st = Stats::default();
            let mut conn = None;
            let mut rng = Rng::new(w as u64 + 1);
            let mut buf = Vec::new();
            loop {
                let n = issued.fetch_add(1, Ordering::Relaxed);
                if n >= limit || Instant::now() >= until {
                    break;
                }
                let t = Instant::now();
                let op = op_for(ctx.opts.mode, n);
                // Each request gets 30 s, and none outlives the run's hard deadline.
                let r = tokio::time::timeout_at(
                    hard.min(t + REQUEST_TIMEOUT).into(),
                    one(
                        &ctx,
                        &mut conn,
                        op,
                        &mut rng,
                        n.is_multiple_of(every),
                        &mut buf,
                    ),
                )
                .await
                .unwrap_or_else(|_| Err(Failure::new("timeout", "no answer in time")));
                st.record(t, r);
            }
            st
        }));
    }
    let mut all = Stats::default();
    for w in workers {
        if let Ok(st) = w.await {
            all.merge(st);
        }
    }
    all
}

/// Request `n` keeps its acknowledged entry for the post-run check if `n % sample_every == 0`:
/// about `post_check` samples over a counted run, one in 500 requests over a timed one.
fn sample_every(o: &Options) -> u64 {
    if !o.mode.appends() && o.mode != Mode::Mixed {
        return u64::MAX;
    }
    o.count
        .map_or(500, |c| c / (o.post_check.max(1) as u64))
        .max(1)
}

/// Requests started at `rate` per second on their schedule, at most `max_in_flight` at once, with
/// a pool of idle connections.
async fn open_loop(ctx: Arc<Ctx>, start: Instant, rate: f64) -> Stats {
    let o = &ctx.opts;
    let until = start
        + o.duration.unwrap_or(if o.count.is_some() {
            o.deadline
        } else {
            Duration::from_secs(10)
        });
    let limit = o.count.unwrap_or(u64::MAX);
    let every = sample_every(o);
    let total = Arc::new(Mutex::new(Stats::default()));
    let pool: Arc<Mutex<Vec<Conn>>> = Arc::new(Mutex::new(Vec::new()));
    let slots = Arc::new(tokio::sync::Semaphore::new(o.max_in_flight));
    let mut tasks = tokio::task::JoinSet::new();
    let interval = Duration::from_secs_f64(1.0 / rate);
    let mut n = 0u64;
    while n < limit {
        let due = start + interval.mul_f64(n as f64);
        if due >= until {
            break;
        }
        tokio::time::sleep_until(due.into()).await;
        let Ok(permit) = slots.clone().acquire_owned().await else {
            break;
        };
        let (ctx, total, pool) = (ctx.clone(), total.clone(), pool.clone());
        tasks.spawn(async move {
            let mut conn = pool.lock().ok().and_then(|mut p| p.pop());
            let mut rng = Rng::new(n + 1);
            let mut st = Stats::default();
            let mut buf = Vec::new();
            let op = op_for(ctx.opts.mode, n);
            let r = tokio::time::timeout(
                REQUEST_TIMEOUT,
                one(
                    &ctx,
                    &mut conn,
                    op,
                    &mut rng,
                    n.is_multiple_of(every),
                    &mut buf,
                ),
            )
            .await
            .unwrap_or_else(|_| Err(Failure::new("timeout", "no answer within 30 s")));
            st.record(due, r);
            if let Some(c) = conn
                && let Ok(mut p) = pool.lock()
            {
                p.push(c);
            }
            if let Ok(mut t) = total.lock() {
                t.merge(st);
            }
            drop(permit);
        });
        // Reap finished tasks so the set stays small.
        while tasks.try_join_next().is_some() {}
        n += 1;
    }
    while tasks.join_next().await.is_some() {}
    let mut all = Stats::default();
    if let Ok(mut t) = total.lock() {
        all.merge(std::mem::take(&mut *t));
    }
    all
}

/// One row of the benchmark suite's results table: a load-generator run (see
/// [`Summary::row`]) or a figure the suite measured otherwise (written by the suite script).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Row {
    /// What was measured, e.g. `append-64`.
    pub scenario: String,
    /// Storage engine, or what else ran (`postgresql`, `machine`).
    pub engine: String,
    /// The figure, with its unit.
    pub result: String,
    /// Median latency, ms.
    #[serde(default)]
    pub p50_ms: Option<f64>,
    /// 99th-percentile latency, ms.
    #[serde(default)]
    pub p99_ms: Option<f64>,
    /// Failed requests.
    #[serde(default)]
    pub errors: Option<u64>,
    /// The goal, in words (empty if none).
    #[serde(default)]
    pub goal: String,
    /// Whether the goal was met (`None`: no goal).
    #[serde(default)]
    pub met: Option<bool>,
    /// Context: CPU per request, machine load.
    #[serde(default)]
    pub note: String,
}

/// A number with thousands separators, rounded.
fn grouped(v: f64) -> String {
    let digits = format!("{:.0}", v.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The first field of `/proc/loadavg` (the 1-minute load average), if readable.
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

impl Summary {
    /// This run as a results-table row, judged against a rate goal (entries/s for append modes,
    /// requests/s otherwise) and a p99 goal. A run with any error never meets its goal.
    pub fn row(&self, scenario: &str, goal_rate: Option<f64>, goal_p99_ms: Option<f64>) -> Row {
        let appends = self.entries > 0 || matches!(self.mode.as_str(), "append" | "batch");
        let (rate, unit) = if appends {
            (self.entries_per_s, "entries/s")
        } else {
            (self.requests_per_s, "requests/s")
        };
        let mut goal = Vec::new();
        if let Some(g) = goal_rate {
            goal.push(format!("≥ {} {unit}", grouped(g)));
        }
        if let Some(g) = goal_p99_ms {
            goal.push(format!("p99 ≤ {g} ms"));
        }
        let met = (goal_rate.is_some() || goal_p99_ms.is_some()).then(|| {
            self.clean()
                && goal_rate.is_none_or(|g| rate >= g)
                && goal_p99_ms.is_none_or(|g| self.latency_ms.p99 <= g)
        });
        let mut note = format!(
            "{} requests in {:.1} s; CPU per request: generator {:.0} µs",
            self.requests, self.elapsed_s, self.generator.cpu_us_per_request
        );
        if let Some(s) = &self.server {
            note.push_str(&format!(
                ", server {:.0} µs; server RSS {} MiB",
                s.cpu_us_per_request,
                s.rss_kib / 1024
            ));
        }
        if let Some(r) = self.offered_rate {
            note.push_str(&format!("; offered {} requests/s", grouped(r)));
        }
        if let Some(c) = self.server_commits.as_ref().filter(|c| c.count > 0) {
            note.push_str(&format!(
                "; {} server commits, mean {:.2} ms, p50 ≤ {:.1} ms, p99 ≤ {:.1} ms, max ≤ {:.1} ms, {} over 25.6 ms",
                grouped(c.count as f64),
                c.mean_ms,
                c.p50_le_ms,
                c.p99_le_ms,
                c.max_le_ms,
                c.over_25ms
            ));
        }
        if self.verified > 0 {
            note.push_str(&format!("; {} answers verified", self.verified));
        }
        if let Some(l) = load_average() {
            note.push_str(&format!("; load {l:.2}"));
        }
        Row {
            scenario: scenario.to_owned(),
            engine: self.engine.clone(),
            result: format!("{} {unit}", grouped(rate)),
            p50_ms: Some(self.latency_ms.p50),
            p99_ms: Some(self.latency_ms.p99),
            errors: Some(self.errors),
            goal: goal.join(", "),
            met,
            note,
        }
    }
}

/// The rows as a Markdown table.
pub fn markdown(rows: &[Row]) -> String {
    let ms = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.2}"));
    let mut out = String::from(
        "| scenario | engine | result | p50 ms | p99 ms | errors | goal | met | note |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let cell = |s: &str| s.replace('|', "\\|");
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            cell(&r.scenario),
            cell(&r.engine),
            cell(&r.result),
            ms(r.p50_ms),
            ms(r.p99_ms),
            r.errors.map_or(String::new(), |e| e.to_string()),
            cell(&r.goal),
            match r.met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "",
            },
            cell(&r.note),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_ranges_are_counted() {
        assert_eq!(duplicates(vec![(0, 10), (10, 5), (20, 1)]), 0);
        assert_eq!(duplicates(vec![(0, 10), (5, 10)]), 5);
        assert_eq!(duplicates(vec![(3, 1), (3, 1), (3, 1)]), 2);
        assert_eq!(duplicates(vec![(0, 100), (10, 5)]), 5);
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let l = latency((1..=100).map(|v| v * 1000).collect());
        assert_eq!(
            (l.p50, l.p90, l.p99, l.max, l.mean),
            (50.0, 90.0, 99.0, 100.0, 50.5)
        );
        assert_eq!(latency(vec![7000]).p99, 7.0);
    }

    #[test]
    fn rows_render_and_judge_goals() {
        assert_eq!(grouped(1234567.4), "1,234,567");
        assert_eq!(grouped(999.0), "999");
        let mut s = Summary {
            mode: "append".into(),
            load: "closed".into(),
            url: String::new(),
            engine: "redb".into(),
            concurrency: 64,
            offered_rate: None,
            payload_bytes: 256,
            batch: 1,
            elapsed_s: 2.0,
            requests: 40_000,
            ok: 40_000,
            errors: 0,
            error_kinds: BTreeMap::new(),
            first_error: None,
            entries: 40_000,
            requests_per_s: 20_000.0,
            entries_per_s: 20_000.0,
            latency_ms: Latency {
                p50: 2.0,
                p90: 5.0,
                p99: 25.0,
                max: 30.0,
                mean: 3.0,
            },
            verified: 0,
            verify_failures: 0,
            duplicate_indices: 0,
            tree_size_before: 0,
            tree_size_after: 40_000,
            post_checked: 100,
            generator: ProcessUse::default(),
            server: None,
            server_commits: None,
        };
        let r = s.row("append-64", Some(20_000.0), Some(25.0));
        assert_eq!(r.result, "20,000 entries/s");
        assert_eq!(r.goal, "≥ 20,000 entries/s, p99 ≤ 25 ms");
        assert_eq!(r.met, Some(true));
        assert_eq!(s.row("x", None, None).met, None);
        assert_eq!(s.row("x", Some(20_001.0), None).met, Some(false));
        assert_eq!(s.row("x", None, Some(24.9)).met, Some(false));
        s.errors = 1;
        assert_eq!(
            s.row("x", Some(1.0), None).met,
            Some(false),
            "errors never meet a goal"
        );
        let md = markdown(&[r]);
        assert_eq!(md.lines().count(), 3);
        assert!(md.contains("| append-64 | redb | 20,000 entries/s | 2.00 | 25.00 | 0 |"));
        assert!(md.contains("| yes |"));
    }

    #[test]
    fn commit_histograms_are_differenced() {
        let exposition = |b: [u64; 4], sum: f64| {
            format!(
                "# HELP sealtrail_commit_seconds x\n# TYPE sealtrail_commit_seconds histogram\n\
                 sealtrail_commit_seconds_bucket{{le=\"0.0128\"}} {}\n\
                 sealtrail_commit_seconds_bucket{{le=\"0.0256\"}} {}\n\
                 sealtrail_commit_seconds_bucket{{le=\"0.0512\"}} {}\n\
                 sealtrail_commit_seconds_bucket{{le=\"+Inf\"}} {}\n\
                 sealtrail_commit_seconds_sum {sum}\nsealtrail_commit_seconds_count {}\n\
                 sealtrail_other_bucket{{le=\"1\"}} 99\n",
                b[0], b[1], b[2], b[3], b[3]
            )
        };
        let before = parse_histogram(
            &exposition([10, 10, 10, 10], 0.05),
            "sealtrail_commit_seconds",
        )
        .expect("parses");
        assert_eq!(before.buckets.len(), 4);
        assert_eq!(before.buckets[3], (f64::INFINITY, 10));
        assert_eq!(before.count, 10);
        // 100 more commits: 97 within 12.8 ms, 1 within 25.6 ms, 1 within 51.2 ms, 1 beyond.
        let after = parse_histogram(
            &exposition([107, 108, 109, 110], 1.05),
            "sealtrail_commit_seconds",
        )
        .expect("parses");
        let c = commits_between(&before, &after).expect("same buckets");
        assert_eq!(c.count, 100);
        assert!((c.mean_ms - 10.0).abs() < 1e-9, "{}", c.mean_ms);
        assert!((c.p50_le_ms - 12.8).abs() < 1e-9, "{}", c.p50_le_ms);
        assert!((c.p99_le_ms - 51.2).abs() < 1e-9, "{}", c.p99_le_ms);
        assert_eq!(
            c.max_le_ms,
            f64::INFINITY,
            "the slowest is beyond the last bound"
        );
        assert_eq!(c.over_25ms, 2);
        assert!(
            commits_between(&after, &before).is_none(),
            "a restarted server"
        );
        assert!(parse_histogram("sealtrail_x 1\n", "sealtrail_commit_seconds").is_none());
    }

    #[test]
    fn fsync_probe_times_syncs_and_cleans_up() {
        let dir = tempfile::tempdir().expect("temp dir");
        let p = fsync_probe(dir.path(), Duration::from_secs(5), 50).expect("probe");
        assert_eq!(p.syncs, 50, "bounded by the count");
        let l = &p.latency_ms;
        assert!(l.p50 > 0.0 && l.p50 <= l.p99 && l.p99 <= l.max, "{l:?}");
        assert!(p.elapsed_s * 1e3 >= l.max, "{p:?}");
        assert_eq!(
            std::fs::read_dir(dir.path()).expect("list").count(),
            0,
            "the probe file is removed"
        );
        let p = fsync_probe(dir.path(), Duration::ZERO, 50).expect("probe");
        assert_eq!(p.syncs, 0, "bounded by the duration");
    }

    #[test]
    fn mixed_mode_proportions() {
        let ops: Vec<Mode> = (0..10).map(|n| op_for(Mode::Mixed, n)).collect();
        let count = |m| ops.iter().filter(|&&o| o == m).count();
        assert_eq!(count(Mode::Append), 5);
        assert_eq!(count(Mode::Inclusion), 3);
        assert_eq!(count(Mode::Tiles), 1);
        assert_eq!(count(Mode::Consistency), 1);
    }
}
