//! Witnessing: the log sends its checkpoints to witnesses (C2SP tlog-witness `add-checkpoint`)
//! and collects their cosignatures until the witness policy (C2SP tlog-policy) is met.
//!
//! A coordinator picks the checkpoint to witness: the newest published one, at most once per
//! `interval_ms`. Each witness has a task of its own that sends the current target with a
//! consistency proof from the witness's last known size, so a slow or dead witness never delays
//! the others, and witnesses that keep up all get the same target, so their cosignatures meet on
//! one checkpoint. A task that does not know its witness's size (after a start) sends `old 0`;
//! the witness's 409 answer (`text/x.tlog.size`) tells it the size to prove from.
//!
//! Every cosignature is verified with the witness's configured key before it is kept. The newest
//! checkpoint whose collected cosignatures meet the policy is [`Cosigned`]: `/checkpoint` serves
//! it and `?wait=cosigned` writes wait for it. Nothing here is persisted: after a restart the
//! witnesses cosign the newest checkpoint again.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use prometheus::{Gauge, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts};
use sealtrail_net::backoff::{Backoff, Jitter};
use sealtrail_spec::cosignature::CosignatureVerifier;
use sealtrail_spec::merkle::consistency_proof;
use sealtrail_spec::note::{Note, NoteSignature};
use sealtrail_spec::policy::Policy;
use sealtrail_spec::tiles::TileHashReader;
use sealtrail_spec::witness::{
    ADD_CHECKPOINT_PATH, AddCheckpointRequest, CONTENT_TYPE_TLOG_SIZE, parse_cosignature_lines,
    parse_size_body,
};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::WitnessingConfig;
use crate::published::Published;
use crate::sequencer::SequencerHandle;
use crate::store::LogStore;
use crate::store::StoreTiles;

/// A checkpoint with enough cosignatures to meet the witness policy.
#[derive(Debug)]
pub struct Cosigned {
    /// Its tree size.
    pub size: u64,
    /// The signed note: the log's signature and every collected cosignature.
    pub note: Arc<Vec<u8>>,
    /// How many configured witnesses cosigned it.
    pub witnesses: usize,
}

/// One witness the log talks to.
#[derive(Debug, Clone)]
struct Endpoint {
    name: String,
    /// `<submission prefix>/add-checkpoint`.
    add_url: String,
    verifier: CosignatureVerifier,
}

/// Cosignatures collected for one checkpoint.
#[derive(Debug)]
struct Round {
    checkpoint: Arc<Vec<u8>>,
    /// By witness (index into `Witnessing::endpoints`).
    signatures: Vec<Option<NoteSignature>>,
}

/// Most checkpoints whose cosignatures are kept while waiting for the policy to be met.
const MAX_ROUNDS: usize = 64;

/// Witness configuration, collected cosignatures and the newest cosigned checkpoint. Inert (no
/// policy, no tasks) when no witness is configured.
#[derive(Debug)]
pub struct Witnessing {
    origin: String,
    config: WitnessingConfig,
    policy: Option<Policy>,
    endpoints: Vec<Endpoint>,
    rounds: Mutex<BTreeMap<u64, Round>>,
    best: watch::Sender<Option<Arc<Cosigned>>>,
    metrics: WitnessMetrics,
    client: reqwest::Client,
}

/// Why the witness configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum WitnessingError {
    /// The policy file cannot be read.
    #[error("reading witness policy {path}: {error}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        error: std::io::Error,
    },
    /// The policy or a witness key is invalid, or does not fit this log.
    #[error("witness configuration: {0}")]
    Invalid(String),
}

impl Witnessing {
    /// Builds the policy and the witness list from the `[witnessing]` section `wc` for the log
    /// `origin` with verifier key `log_vkey`, and registers the metrics on `registry`.
    pub fn new(
        wc: &WitnessingConfig,
        origin: &str,
        log_vkey: &str,
        registry: &prometheus::Registry,
    ) -> Result<Self, WitnessingError> {
        let invalid = |m: String| WitnessingError::Invalid(m);
        let (policy, endpoints) = if let Some(path) = &wc.policy_file {
            let bytes = std::fs::read(path).map_err(|error| WitnessingError::Read {
                path: path.display().to_string(),
                error,
            })?;
            let policy =
                Policy::parse(&bytes).map_err(|e| invalid(format!("{}: {e}", path.display())))?;
            if !policy.logs().iter().any(|l| l.vkey() == log_vkey) {
                return Err(invalid(format!(
                    "{} does not list this log's key {log_vkey}",
                    path.display()
                )));
            }
            let mut endpoints = Vec::new();
            for w in policy.witnesses() {
                let name = String::from_utf8_lossy(w.name()).into_owned();
                let Some(url) = w.url() else {
                    tracing::warn!(witness = %name, "policy witness has no URL: not contacted");
                    continue;
                };
                let url = std::str::from_utf8(url)
                    .map_err(|_| invalid(format!("witness {name}: URL is not UTF-8")))?;
                endpoints.push(endpoint(&name, url, w.verifier().clone())?);
            }
            (Some(policy), endpoints)
        } else if wc.witnesses.is_empty() {
            (None, Vec::new())
        } else {
            let vkeys: Vec<&str> = wc.witnesses.iter().map(|w| w.vkey.as_str()).collect();
            let k = wc.quorum.unwrap_or(vkeys.len());
            let policy = Policy::k_of_n(&[log_vkey], &vkeys, k)
                .map_err(|e| invalid(format!("inline witnesses: {e}")))?;
            let mut endpoints = Vec::new();
            for (w, pw) in wc.witnesses.iter().zip(policy.witnesses()) {
                let name = String::from_utf8_lossy(pw.name()).into_owned();
                endpoints.push(endpoint(&name, &w.url, pw.verifier().clone())?);
            }
            (Some(policy), endpoints)
        };
        let client = http_client(wc)?;
        let names: Vec<&str> = endpoints.iter().map(|e| e.name.as_str()).collect();
        let metrics = WitnessMetrics::new(registry, &names)
            .map_err(|e| invalid(format!("registering metrics: {e}")))?;
        Ok(Witnessing {
            origin: origin.to_owned(),
            config: wc.clone(),
            policy,
            endpoints,
            rounds: Mutex::new(BTreeMap::new()),
            best: watch::channel(None).0,
            metrics,
            client,
        })
    }

    /// Whether a witness policy is configured.
    pub fn enabled(&self) -> bool {
        self.policy.is_some()
    }

    /// The witness policy in tlog-policy text, if one is configured.
    pub fn policy_text(&self) -> Option<String> {
        self.policy
            .as_ref()
            .map(|p| String::from_utf8_lossy(&p.to_text()).into_owned())
    }

    /// The newest checkpoint that meets the policy, if any yet.
    pub fn cosigned(&self) -> Option<Arc<Cosigned>> {
        self.best.borrow().clone()
    }

    /// Waits up to `timeout` for a checkpoint of at least `min_size` that meets the policy.
    pub async fn wait_cosigned(&self, min_size: u64, timeout: Duration) -> Option<Arc<Cosigned>> {
        let mut rx = self.best.subscribe();
        let wait = rx.wait_for(|b| b.as_ref().is_some_and(|c| c.size >= min_size));
        match tokio::time::timeout(timeout, wait).await {
            Ok(Ok(b)) => b.clone(),
            _ => None,
        }
    }

    /// Starts the coordinator and one task per witness on the current runtime. The tasks end
    /// when the returned set is dropped or aborted.
    pub fn spawn(self: &Arc<Self>, seq: SequencerHandle, store: Arc<dyn LogStore>) -> JoinSet<()> {
        let mut tasks = JoinSet::new();
        if self.endpoints.is_empty() {
            return tasks;
        }
        let client = self.client.clone();
        let (target_tx, target_rx) = watch::channel(None);
        tasks.spawn(self.clone().coordinate(seq, target_tx));
        for i in 0..self.endpoints.len() {
            let w = WitnessTask {
                shared: self.clone(),
                index: i,
                client: client.clone(),
                store: store.clone(),
                known_size: None,
            };
            tasks.spawn(w.run(target_rx.clone()));
        }
        tasks
    }

    /// Shares the cosigned checkpoint through a shared store, every `interval_ms`: stores the
    /// one this instance collected (when it witnesses) and adopts a newer one stored by the
    /// instance that witnesses, once it meets the policy here too. Runs until aborted; nothing
    /// to do without witnesses or on an embedded store.
    pub async fn share(self: Arc<Self>, store: Arc<dyn LogStore>) {
        let Some(policy) = self.policy.clone() else {
            return;
        };
        if !store.shared() {
            return;
        }
        let every = Duration::from_millis(self.config.interval_ms.max(100));
        let mut stored_size = 0u64;
        loop {
            let own = self.cosigned();
            if let Some(c) = own.as_ref().filter(|c| c.size > stored_size) {
                let (s, size, note) = (store.clone(), c.size, c.note.clone());
                match tokio::task::spawn_blocking(move || s.set_cosigned(size, &note)).await {
                    Ok(Ok(())) => stored_size = size,
                    Ok(Err(e)) => tracing::warn!(error = %e, "storing the cosigned checkpoint"),
                    Err(e) => tracing::warn!(error = %e, "storing the cosigned checkpoint"),
                }
            }
            let s = store.clone();
            if let Ok(Ok(Some(note))) = tokio::task::spawn_blocking(move || s.cosigned()).await {
                match policy.verify_checkpoint(&note, &self.origin) {
                    Ok(outcome) => {
                        let size = outcome.checkpoint().checkpoint().size();
                        stored_size = stored_size.max(size);
                        if own.as_ref().is_none_or(|c| c.size < size) {
                            self.adopt(size, note, outcome.witnesses().len());
                        }
                    }
                    Err(e) => tracing::warn!(
                        error = %e,
                        "the stored cosigned checkpoint fails this instance's witness policy"
                    ),
                }
            }
            tokio::time::sleep(every).await;
        }
    }

    /// Serves `note` (of tree size `size`, meeting the policy with `witnesses` cosignatures)
    /// as the newest cosigned checkpoint, unless a newer one is served already.
    fn adopt(&self, size: u64, note: Vec<u8>, witnesses: usize) {
        let newer = self.best.borrow().as_ref().is_none_or(|b| size > b.size);
        if newer {
            self.best.send_replace(Some(Arc::new(Cosigned {
                size,
                note: Arc::new(note),
                witnesses,
            })));
            self.metrics.cosigned_size.set(to_i64(size));
        }
    }

    /// Publishes the newest published checkpoint as the target, at most once per interval.
    async fn coordinate(
        self: Arc<Self>,
        seq: SequencerHandle,
        target: watch::Sender<Option<Arc<Published>>>,
    ) {
        let interval = Duration::from_millis(self.config.interval_ms);
        let mut published = seq.subscribe();
        let mut last: Option<Instant> = None;
        loop {
            let p = published.borrow_and_update().clone();
            let current = target.borrow().as_ref().map(|t| t.size);
            if p.size > 0 && current != Some(p.size) {
                let wait = last.map_or(Duration::ZERO, |l| interval.saturating_sub(l.elapsed()));
                if !wait.is_zero() {
                    // Too soon: wait out the interval, then take whatever is newest then.
                    tokio::time::sleep(wait).await;
                    continue;
                }
                last = Some(Instant::now());
                self.metrics.target_size.set(to_i64(p.size));
                self.update_policy_met(p.size);
                target.send_replace(Some(p));
            }
            if published.changed().await.is_err() {
                return;
            }
        }
    }

    /// Keeps a verified cosignature of witness `i` over `checkpoint` and publishes the
    /// checkpoint if its cosignatures now meet the policy.
    fn record(&self, i: usize, size: u64, checkpoint: &Arc<Vec<u8>>, signature: NoteSignature) {
        let Some(policy) = &self.policy else { return };
        let Ok(mut rounds) = self.rounds.lock() else {
            return;
        };
        let n = self.endpoints.len();
        let round = rounds.entry(size).or_insert_with(|| Round {
            checkpoint: checkpoint.clone(),
            signatures: vec![None; n],
        });
        if round.checkpoint != *checkpoint {
            // The same size signed again (bytes differ only if the log key changed): start over.
            *round = Round {
                checkpoint: checkpoint.clone(),
                signatures: vec![None; n],
            };
        }
        round.signatures[i] = Some(signature);
        let note = match combine(&round.checkpoint, &round.signatures) {
            Ok(note) => note,
            Err(e) => {
                tracing::error!(size, error = %e, "cannot combine cosignatures");
                return;
            }
        };
        let met = match policy.verify_checkpoint(&note, &self.origin) {
            Ok(outcome) => Some(outcome.witnesses().len()),
            Err(sealtrail_spec::policy::PolicyError::QuorumNotMet { .. }) => None,
            Err(e) => {
                tracing::error!(size, error = %e, "collected cosignatures fail the policy");
                None
            }
        };
        if let Some(witnesses) = met {
            let newer = self.best.borrow().as_ref().is_none_or(|b| size >= b.size);
            if newer {
                self.best.send_replace(Some(Arc::new(Cosigned {
                    size,
                    note: Arc::new(note),
                    witnesses,
                })));
                self.metrics.cosigned_size.set(to_i64(size));
                let now = SystemTime::now().duration_since(UNIX_EPOCH);
                self.metrics
                    .cosigned_timestamp
                    .set(now.map_or(0.0, |d| d.as_secs_f64()));
                self.update_policy_met(self.metrics.target_size.get().max(0) as u64);
                // Older rounds can no longer become the newest cosigned checkpoint.
                rounds.retain(|&s, _| s >= size);
            }
        }
        while rounds.len() > MAX_ROUNDS {
            rounds.pop_first();
        }
    }

    fn update_policy_met(&self, target: u64) {
        let met = self
            .best
            .borrow()
            .as_ref()
            .is_some_and(|b| b.size >= target);
        self.metrics.policy_met.set(i64::from(met));
    }
}

/// The client for the witnesses: the system's roots, plus `ca_file`'s certificates if set.
fn http_client(c: &WitnessingConfig) -> Result<reqwest::Client, WitnessingError> {
    // reqwest is built without a default TLS provider (see the workspace Cargo.toml).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut b = reqwest::Client::builder()
        .timeout(Duration::from_millis(c.timeout_ms))
        .connect_timeout(Duration::from_millis(c.timeout_ms))
        .pool_idle_timeout(Duration::from_secs(90))
        .user_agent(concat!("sealtrail/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = &c.ca_file {
        let pem = std::fs::read(path).map_err(|error| WitnessingError::Read {
            path: path.display().to_string(),
            error,
        })?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            WitnessingError::Invalid(format!("witnessing.ca_file {}: {e}", path.display()))
        })?;
        if certs.is_empty() {
            return Err(WitnessingError::Invalid(format!(
                "witnessing.ca_file {} holds no certificate",
                path.display()
            )));
        }
        for cert in certs {
            b = b.add_root_certificate(cert);
        }
    }
    b.build()
        .map_err(|e| WitnessingError::Invalid(format!("HTTP client: {e}")))
}

fn endpoint(
    name: &str,
    url: &str,
    verifier: CosignatureVerifier,
) -> Result<Endpoint, WitnessingError> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| WitnessingError::Invalid(format!("witness {name}: URL {url:?}: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(WitnessingError::Invalid(format!(
            "witness {name}: URL {url:?} is not http or https"
        )));
    }
    Ok(Endpoint {
        name: name.to_owned(),
        add_url: format!("{}/{ADD_CHECKPOINT_PATH}", url.trim_end_matches('/')),
        verifier,
    })
}

/// The checkpoint note with every collected cosignature appended.
fn combine(
    checkpoint: &[u8],
    signatures: &[Option<NoteSignature>],
) -> Result<Vec<u8>, sealtrail_spec::note::NoteError> {
    let mut note = Note::parse(checkpoint)?;
    for s in signatures.iter().flatten() {
        note.push_signature(s.clone())?;
    }
    Ok(note.to_bytes())
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// What one add-checkpoint exchange can end in, besides a cosignature.
#[derive(Debug, thiserror::Error)]
enum SendError {
    #[error("{0}")]
    Transport(String),
    #[error("witness answered {status}: {body}")]
    Status { status: u16, body: String },
    #[error("witness holds size {0}, larger than the checkpoint sent; waiting for the log to grow")]
    WitnessAhead(u64),
    #[error("{0}")]
    Invalid(String),
}

impl SendError {
    fn label(&self) -> &'static str {
        match self {
            SendError::Transport(_) => "transport",
            SendError::Status { .. } => "status",
            SendError::WitnessAhead(_) => "ahead",
            SendError::Invalid(_) => "invalid",
        }
    }
}

/// The task that keeps one witness up to date.
struct WitnessTask {
    shared: Arc<Witnessing>,
    index: usize,
    client: reqwest::Client,
    store: Arc<dyn LogStore>,
    /// The witness's stored size as last learned (a 200 or a 409), if known.
    known_size: Option<u64>,
}

impl WitnessTask {
    async fn run(mut self, mut target: watch::Receiver<Option<Arc<Published>>>) {
        let name = self.shared.endpoints[self.index].name.clone();
        let mut done: Option<u64> = None;
        let mut failures: u32 = 0;
        loop {
            let t = {
                let t = target.borrow_and_update().clone();
                match t {
                    Some(t) if done != Some(t.size) => t,
                    _ => {
                        if target.changed().await.is_err() {
                            return;
                        }
                        continue;
                    }
                }
            };
            let started = Instant::now();
            let result = self.send(&t).await;
            let m = &self.shared.metrics;
            m.latency
                .with_label_values(&[name.as_str()])
                .observe(started.elapsed().as_secs_f64());
            match result {
                Ok(()) => {
                    m.requests.with_label_values(&[name.as_str(), "ok"]).inc();
                    m.witness_size
                        .with_label_values(&[name.as_str()])
                        .set(to_i64(t.size));
                    done = Some(t.size);
                    failures = 0;
                }
                Err(e) => {
                    m.requests
                        .with_label_values(&[name.as_str(), e.label()])
                        .inc();
                    failures = failures.saturating_add(1);
                    let delay = backoff(&self.shared.config, failures);
                    tracing::warn!(
                        witness = %name, size = t.size, error = %e,
                        retry_ms = delay.as_millis() as u64, "witness did not cosign"
                    );
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    /// Sends `t` to the witness, resynchronising once on 409, and keeps the cosignature.
    async fn send(&mut self, t: &Arc<Published>) -> Result<(), SendError> {
        let ep = &self.shared.endpoints[self.index];
        let mut resynced = false;
        loop {
            let old = self.known_size.unwrap_or(0);
            if old > t.size {
                return Err(SendError::WitnessAhead(old));
            }
            let proof = self.proof(old, t.size).await?;
            let body = AddCheckpointRequest::new(old, proof, t.checkpoint.as_ref().clone())
                .map_err(|e| SendError::Invalid(format!("building the request: {e}")))?
                .to_bytes();
            let resp = self
                .client
                .post(&ep.add_url)
                .body(body)
                .send()
                .await
                .map_err(|e| SendError::Transport(format!("{}: {e}", ep.add_url)))?;
            let status = resp.status();
            let is_size = resp
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| sealtrail_net::http::media_essence(v) == CONTENT_TYPE_TLOG_SIZE);
            let bytes = resp
                .bytes()
                .await
                .map_err(|e| SendError::Transport(format!("reading the answer: {e}")))?;
            match status.as_u16() {
                200 => {
                    let signature = verify_answer(&ep.verifier, &t.checkpoint, &bytes)?;
                    self.known_size = Some(t.size);
                    self.shared
                        .record(self.index, t.size, &t.checkpoint, signature);
                    return Ok(());
                }
                409 if is_size && !resynced => {
                    let size = parse_size_body(&bytes)
                        .map_err(|e| SendError::Invalid(format!("409 body: {e}")))?;
                    tracing::info!(witness = %ep.name, size, "witness size learned from 409");
                    self.known_size = Some(size);
                    resynced = true;
                }
                code => {
                    if code == 409 {
                        // A second conflict: forget the size, relearn it next time.
                        self.known_size = None;
                    }
                    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(512)]);
                    return Err(SendError::Status {
                        status: code,
                        body: text.trim().to_owned(),
                    });
                }
            }
        }
    }

    /// The consistency proof from `old` to `new`, read from the store's tiles.
    async fn proof(&self, old: u64, new: u64) -> Result<Vec<sealtrail_spec::Hash>, SendError> {
        if old == 0 || old == new {
            return Ok(Vec::new());
        }
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            let mut r = TileHashReader::new(new, StoreTiles(store.as_ref()));
            consistency_proof(old, new, &mut r).map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| SendError::Invalid(format!("proof task: {e}")))?
        .map_err(|e| SendError::Invalid(format!("consistency proof {old} -> {new}: {e}")))
    }
}

/// The first signature line in a 200 answer that verifies as this witness's cosignature over
/// `checkpoint`; others (other keys of the witness, unknown algorithms) are ignored.
fn verify_answer(
    verifier: &CosignatureVerifier,
    checkpoint: &[u8],
    body: &[u8],
) -> Result<NoteSignature, SendError> {
    let lines = parse_cosignature_lines(body)
        .map_err(|e| SendError::Invalid(format!("cosignature lines: {e}")))?;
    let note =
        Note::parse(checkpoint).map_err(|e| SendError::Invalid(format!("own checkpoint: {e}")))?;
    let mut last = None;
    for line in lines {
        match verifier.verify_cosignature(note.text(), &line) {
            Ok(_) => return Ok(line),
            Err(e) => last = Some(e),
        }
    }
    Err(SendError::Invalid(format!(
        "no valid cosignature from the configured key{}",
        last.map_or(String::new(), |e| format!(": {e}"))
    )))
}

/// Exponential back-off from `interval_ms` up to `max_backoff_ms`, with up to 50% jitter below.
fn backoff(c: &WitnessingConfig, failures: u32) -> Duration {
    Backoff::new(
        Duration::from_millis(c.interval_ms),
        Duration::from_millis(c.max_backoff_ms),
        Jitter::Below,
    )
    .delay(failures)
}

/// Witnessing metrics, on the server's registry.
#[derive(Debug)]
struct WitnessMetrics {
    requests: IntCounterVec,
    latency: HistogramVec,
    witness_size: IntGaugeVec,
    target_size: IntGauge,
    cosigned_size: IntGauge,
    cosigned_timestamp: Gauge,
    policy_met: IntGauge,
}

impl WitnessMetrics {
    fn new(r: &prometheus::Registry, witnesses: &[&str]) -> Result<Self, prometheus::Error> {
        let m = WitnessMetrics {
            requests: IntCounterVec::new(
                Opts::new(
                    "witness_requests_total",
                    "add-checkpoint requests by witness and result",
                ),
                &["witness", "result"],
            )?,
            latency: HistogramVec::new(
                HistogramOpts::new(
                    "witness_request_seconds",
                    "add-checkpoint latency by witness, failures included",
                )
                .buckets(prometheus::exponential_buckets(0.001, 2.0, 14)?),
                &["witness"],
            )?,
            witness_size: IntGaugeVec::new(
                Opts::new(
                    "witness_cosigned_size",
                    "Tree size of the newest checkpoint each witness cosigned",
                ),
                &["witness"],
            )?,
            target_size: IntGauge::new(
                "witness_target_size",
                "Tree size of the newest checkpoint sent to the witnesses",
            )?,
            cosigned_size: IntGauge::new(
                "cosigned_tree_size",
                "Tree size of the newest checkpoint that meets the witness policy",
            )?,
            cosigned_timestamp: Gauge::new(
                "cosigned_timestamp_seconds",
                "Unix time at which a checkpoint last met the witness policy",
            )?,
            policy_met: IntGauge::new(
                "witness_policy_met",
                "1 if the newest checkpoint sent to the witnesses meets the policy, else 0",
            )?,
        };
        r.register(Box::new(m.requests.clone()))?;
        r.register(Box::new(m.latency.clone()))?;
        r.register(Box::new(m.witness_size.clone()))?;
        r.register(Box::new(m.target_size.clone()))?;
        r.register(Box::new(m.cosigned_size.clone()))?;
        r.register(Box::new(m.cosigned_timestamp.clone()))?;
        r.register(Box::new(m.policy_met.clone()))?;
        // Show every witness's series from the start, so dashboards see a dead witness as 0.
        for w in witnesses {
            m.witness_size.with_label_values(&[*w]).set(0);
            m.requests.with_label_values(&[*w, "ok"]);
        }
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let c = WitnessingConfig {
            interval_ms: 100,
            max_backoff_ms: 1000,
            ..WitnessingConfig::default()
        };
        for (failures, base) in [
            (1, 100u64),
            (2, 200),
            (3, 400),
            (4, 800),
            (5, 1000),
            (60, 1000),
        ] {
            for _ in 0..20 {
                let d = backoff(&c, failures).as_millis() as u64;
                assert!(d >= base / 2 && d <= base, "failures {failures}: {d} ms");
            }
        }
    }
}
