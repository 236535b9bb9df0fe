//! Forwarding to SIEMs: every committed entry reaches every configured sink at least once.
//!
//! One tokio task per sink reads committed entries from the store, from the sink's durable cursor
//! up to the published tree size, in batches of `batch_entries`, sends each batch, and only when
//! the sink has acknowledged it advances the cursor (stored in the log's store, see
//! [`crate::store::CursorStore`]). A failed send is retried with exponential back-off and jitter,
//! for ever, without moving the cursor. The task wakes on the sequencer's published watch; it never
//! touches the append path, so a slow or dead sink costs appends nothing, and it holds one batch
//! at a time, so memory is bounded per sink. Sinks are independent tasks: one stuck sink never
//! blocks another.
//!
//! Besides entries a sink configured with `security_events = true` receives non-entry events
//! ([`ForwardEvent::Security`], e.g. access-control alarms or witness alarms) through a bounded
//! channel, best-effort: sent once with the next attempt, dropped (and counted) when the channel
//! is full, never cursor-tracked.
//!
//! Sinks: syslog RFC 5424 over UDP, TCP or TLS ([`syslog`]), HTTP NDJSON webhook, Splunk HEC and
//! Elasticsearch/OpenSearch `_bulk` ([`http`]), a local JSONL file with size-based rotation
//! ([`file`]).

pub mod file;
pub mod http;
pub mod syslog;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry};
use sealtrail_spec::envelope::LeafEnvelope;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::sequencer::Published;
use crate::store::{LogStore, StoreError};

/// Security events a sink may hold while it is busy; more are dropped and counted.
const SECURITY_QUEUE: usize = 1024;

/// The kinds of sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SinkKind {
    /// Syslog RFC 5424 (`transport` = `udp`, `tcp` or `tls`; octet counting on TCP and TLS).
    Syslog,
    /// `POST url` with an NDJSON body, one event per line.
    Webhook,
    /// Splunk HTTP Event Collector: `POST url/services/collector/event`.
    SplunkHec,
    /// Elasticsearch or OpenSearch: `POST url/_bulk`, `_id` = origin/index.
    Elasticsearch,
    /// A local JSONL file with size-based rotation.
    File,
}

/// Syslog transports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// One datagram per message; no acknowledgement (best-effort by nature).
    Udp,
    /// Octet-counted frames (RFC 6587) over TCP.
    Tcp,
    /// Octet-counted frames over TLS (rustls, ring).
    Tls,
}

/// One `[[forward]]` section of the configuration. Fields not used by a kind must be absent.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SinkConfig {
    /// Unique name: the cursor's key in the store and the `sink` metrics label. Renaming a sink
    /// starts it from the beginning of the log.
    pub name: String,
    /// What kind of sink.
    pub kind: SinkKind,
    /// Most entries per batch (one request, one group of syslog frames, one file append).
    #[serde(default = "default_batch")]
    pub batch_entries: u64,
    /// Also forward security and alarm events (best-effort).
    #[serde(default)]
    pub security_events: bool,
    /// First retry delay in milliseconds; doubled per failure up to `retry_max_ms`, with jitter.
    #[serde(default = "default_retry_initial")]
    pub retry_initial_ms: u64,
    /// Longest retry delay in milliseconds.
    #[serde(default = "default_retry_max")]
    pub retry_max_ms: u64,
    /// Seconds one send may take before it counts as failed.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// syslog: `host:port` to send to.
    pub address: Option<String>,
    /// syslog: `udp`, `tcp` or `tls`.
    pub transport: Option<Transport>,
    /// syslog TLS and HTTPS sinks: PEM file of the CA certificates to trust (default for syslog
    /// TLS: none, so it is required; for HTTPS: the system's roots).
    pub ca_file: Option<std::path::PathBuf>,
    /// syslog TLS: the name to verify in the server's certificate (default: the address's host).
    pub server_name: Option<String>,
    /// syslog: HOSTNAME field (default: the machine's host name).
    pub hostname: Option<String>,
    /// syslog: facility number 0-23 (default 13, "log audit").
    pub facility: Option<u8>,
    /// syslog TCP/TLS: entries re-sent before the cursor after a broken connection, because
    /// frames the peer's kernel accepted may never have been read (default 10000).
    pub replay_entries: Option<u64>,
    /// HTTP sinks: the endpoint (webhook: the full URL; HEC and bulk: the base URL).
    pub url: Option<String>,
    /// Splunk HEC token (sent as `Authorization: Splunk <token>`).
    pub token: Option<String>,
    /// Elasticsearch index name.
    pub index: Option<String>,
    /// HTTP sinks: extra request headers (e.g. `Authorization` for a webhook or `_bulk`).
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, String>,
    /// File sink: the file to append to.
    pub path: Option<std::path::PathBuf>,
    /// File sink: rotate when the file would exceed this many bytes (default 100 MiB).
    pub max_bytes: Option<u64>,
    /// File sink: rotated files kept (`path.1` newest ... `path.N`; default 5).
    pub keep_files: Option<u32>,
}

fn default_batch() -> u64 {
    500
}
fn default_retry_initial() -> u64 {
    200
}
fn default_retry_max() -> u64 {
    30_000
}
fn default_timeout() -> u64 {
    10
}

impl SinkConfig {
    /// A sink of `kind` named `name` with every default.
    pub fn new(name: &str, kind: SinkKind) -> Self {
        SinkConfig {
            name: name.to_owned(),
            kind,
            batch_entries: default_batch(),
            security_events: false,
            retry_initial_ms: default_retry_initial(),
            retry_max_ms: default_retry_max(),
            timeout_secs: default_timeout(),
            address: None,
            transport: None,
            ca_file: None,
            server_name: None,
            hostname: None,
            facility: None,
            replay_entries: None,
            url: None,
            token: None,
            index: None,
            headers: Default::default(),
            path: None,
            max_bytes: None,
            keep_files: None,
        }
    }

    /// Checks the fields this kind needs and refuses those it does not use.
    pub fn validate(&self) -> Result<(), String> {
        let name = &self.name;
        if name.is_empty() || name.len() > 128 || name.chars().any(char::is_control) {
            return Err(format!(
                "forward sink name {name:?} must be 1-128 printable characters"
            ));
        }
        if self.batch_entries == 0 || self.batch_entries > 100_000 {
            return Err(format!("forward {name}: batch_entries must be 1 to 100000"));
        }
        if self.retry_initial_ms == 0 || self.retry_max_ms < self.retry_initial_ms {
            return Err(format!(
                "forward {name}: need 0 < retry_initial_ms <= retry_max_ms"
            ));
        }
        if self.timeout_secs == 0 {
            return Err(format!("forward {name}: timeout_secs must be positive"));
        }
        let has = |set: bool, field: &str, need: bool| match (set, need) {
            (false, true) => Err(format!("forward {name}: {:?} needs {field}", self.kind)),
            (true, false) => Err(format!(
                "forward {name}: {field} is not used by {:?}",
                self.kind
            )),
            _ => Ok(()),
        };
        let k = self.kind;
        let syslog = k == SinkKind::Syslog;
        let http = matches!(
            k,
            SinkKind::Webhook | SinkKind::SplunkHec | SinkKind::Elasticsearch
        );
        let tls = self.transport == Some(Transport::Tls);
        has(self.address.is_some(), "address", syslog)?;
        has(self.transport.is_some(), "transport", syslog)?;
        has(
            self.server_name.is_some(),
            "server_name",
            self.server_name.is_some() && tls,
        )?;
        has(
            self.hostname.is_some(),
            "hostname",
            self.hostname.is_some() && syslog,
        )?;
        has(
            self.facility.is_some(),
            "facility",
            self.facility.is_some() && syslog,
        )?;
        has(
            self.replay_entries.is_some(),
            "replay_entries",
            self.replay_entries.is_some() && syslog,
        )?;
        has(
            self.ca_file.is_some(),
            "ca_file",
            (syslog && tls) || (http && self.ca_file.is_some()),
        )?;
        has(self.url.is_some(), "url", http)?;
        has(self.token.is_some(), "token", k == SinkKind::SplunkHec)?;
        has(self.index.is_some(), "index", k == SinkKind::Elasticsearch)?;
        has(
            !self.headers.is_empty(),
            "headers",
            http && !self.headers.is_empty(),
        )?;
        has(self.path.is_some(), "path", k == SinkKind::File)?;
        let file = k == SinkKind::File;
        has(
            self.max_bytes.is_some(),
            "max_bytes",
            file && self.max_bytes.is_some(),
        )?;
        has(
            self.keep_files.is_some(),
            "keep_files",
            file && self.keep_files.is_some(),
        )?;
        if self.facility.is_some_and(|f| f > 23) {
            return Err(format!("forward {name}: facility must be 0 to 23"));
        }
        if self.max_bytes == Some(0) {
            return Err(format!("forward {name}: max_bytes must be positive"));
        }
        Ok(())
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs)
    }
}

/// Checks a list of sinks: each valid, names unique.
pub fn validate_all(sinks: &[SinkConfig]) -> Result<(), String> {
    let mut names = std::collections::HashSet::new();
    for s in sinks {
        s.validate()?;
        if !names.insert(s.name.as_str()) {
            return Err(format!("two forward sinks are named {:?}", s.name));
        }
    }
    Ok(())
}

/// Something to forward.
#[derive(Debug, Clone)]
pub enum ForwardEvent {
    /// A committed entry (cursor-tracked).
    Entry(EntryEvent),
    /// A non-entry event: a JSON object from the access-control or witness layer (best-effort).
    Security(serde_json::Value),
}

/// A committed entry as forwarded.
#[derive(Debug, Clone)]
pub struct EntryEvent {
    /// The log's origin.
    pub origin: String,
    /// The entry's index.
    pub index: u64,
    /// Hex leaf hash.
    pub leaf_hash: String,
    /// Sequencing time, ms since the Unix epoch.
    pub time_ms: u64,
    /// Size of a signed, published checkpoint that includes the entry.
    pub checkpoint_size: u64,
    /// The JSON document every sink sends (see [`entry_event`]).
    pub json: serde_json::Value,
}

impl ForwardEvent {
    /// The JSON document of the event.
    pub fn json(&self) -> &serde_json::Value {
        match self {
            ForwardEvent::Entry(e) => &e.json,
            ForwardEvent::Security(v) => v,
        }
    }

    /// The event's stable id (`origin/index`) for entries; replays carry the same id.
    pub fn id(&self) -> Option<String> {
        match self {
            ForwardEvent::Entry(e) => Some(format!("{}/{}", e.origin, e.index)),
            ForwardEvent::Security(_) => None,
        }
    }

    /// Time of the event in ms since the Unix epoch.
    pub fn time_ms(&self) -> u64 {
        match self {
            ForwardEvent::Entry(e) => e.time_ms,
            ForwardEvent::Security(v) => v
                .get("time_ms")
                .and_then(serde_json::Value::as_u64)
                .unwrap_or_else(now_ms),
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Builds the forwarded form of entry `index` (leaf bytes `leaf`): origin, index, id, leaf hash,
/// sequencing time, principal, event type, content type, the payload (inline JSON when the
/// content type is JSON and the bytes parse, otherwise `payload_base64`) and the size of a
/// published checkpoint that covers it.
pub fn entry_event(
    origin: &str,
    index: u64,
    leaf: &[u8],
    checkpoint_size: u64,
) -> Result<EntryEvent, StoreError> {
    let env = LeafEnvelope::decode(leaf)
        .map_err(|e| StoreError::Corrupt(format!("entry {index}: {e}")))?;
    let leaf_hash = sealtrail_spec::leaf_hash(leaf).to_hex();
    let essence = env
        .content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let is_json = essence == "application/json" || essence.ends_with("+json");
    let inline = is_json
        .then(|| serde_json::from_slice::<serde_json::Value>(&env.payload).ok())
        .flatten();
    let mut json = serde_json::json!({
        "id": format!("{origin}/{index}"),
        "origin": origin,
        "index": index,
        "leaf_hash": leaf_hash,
        "timestamp": env.time_ms,
        "principal": env.principal,
        "event_type": env.event_type,
        "content_type": env.content_type,
        "checkpoint_size": checkpoint_size,
    });
    if let Some(obj) = json.as_object_mut() {
        match inline {
            Some(v) => obj.insert("payload".into(), v),
            None => obj.insert(
                "payload_base64".into(),
                base64::engine::general_purpose::STANDARD
                    .encode(&env.payload)
                    .into(),
            ),
        };
    }
    Ok(EntryEvent {
        origin: origin.to_owned(),
        index,
        leaf_hash,
        time_ms: env.time_ms,
        checkpoint_size,
        json,
    })
}

/// Why a send failed (retried; the message is logged and counted).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SinkError(pub String);

/// A configured sink, ready to send.
#[derive(Debug)]
enum Sink {
    Syslog(syslog::SyslogSink),
    Http(http::HttpSink),
    File(file::FileSink),
}

impl Sink {
    fn open(cfg: &SinkConfig) -> Result<Self, String> {
        Ok(match cfg.kind {
            SinkKind::Syslog => Sink::Syslog(syslog::SyslogSink::new(cfg)?),
            SinkKind::Webhook | SinkKind::SplunkHec | SinkKind::Elasticsearch => {
                Sink::Http(http::HttpSink::new(cfg)?)
            }
            SinkKind::File => Sink::File(file::FileSink::new(cfg)?),
        })
    }

    /// Sends `events`; `Ok` means the receiver acknowledged all of them.
    async fn send(&mut self, events: &[ForwardEvent]) -> Result<(), SinkError> {
        match self {
            Sink::Syslog(s) => s.send(events).await,
            Sink::Http(s) => s.send(events).await,
            Sink::File(s) => s.send(events).await,
        }
    }

    /// Entries to re-send before the cursor after the last failure (see `replay_entries`).
    fn take_replay(&mut self) -> u64 {
        match self {
            Sink::Syslog(s) => s.take_replay(),
            _ => 0,
        }
    }
}

/// Per-sink metrics, labelled `sink`.
#[derive(Debug, Clone)]
pub struct ForwardMetrics {
    lag_entries: IntGaugeVec,
    lag_seconds: IntGaugeVec,
    sent: IntCounterVec,
    failed: IntCounterVec,
    retries: IntCounterVec,
    dropped: IntCounterVec,
}

impl ForwardMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let gauge = |n: &str, h: &str| IntGaugeVec::new(Opts::new(n, h), &["sink"]);
        let counter = |n: &str, h: &str| IntCounterVec::new(Opts::new(n, h), &["sink"]);
        let m = ForwardMetrics {
            lag_entries: gauge(
                "forward_lag_entries",
                "Committed entries the sink has not acknowledged",
            )?,
            lag_seconds: gauge(
                "forward_lag_seconds",
                "Age of the oldest entry the sink has not acknowledged",
            )?,
            sent: counter("forward_sent_total", "Events the sink acknowledged")?,
            failed: counter("forward_failed_total", "Failed send attempts")?,
            retries: counter("forward_retries_total", "Retries after a failed send")?,
            dropped: counter(
                "forward_dropped_events_total",
                "Security events dropped because the sink's queue was full",
            )?,
        };
        registry.register(Box::new(m.lag_entries.clone()))?;
        registry.register(Box::new(m.lag_seconds.clone()))?;
        registry.register(Box::new(m.sent.clone()))?;
        registry.register(Box::new(m.failed.clone()))?;
        registry.register(Box::new(m.retries.clone()))?;
        registry.register(Box::new(m.dropped.clone()))?;
        Ok(m)
    }

    /// Creates every series of sink `name` at 0, so a configured sink is visible in `/metrics`
    /// (and alerts see `rate(...) == 0`) before its first send or failure.
    fn init_sink(&self, name: &str) {
        for g in [&self.lag_entries, &self.lag_seconds] {
            g.with_label_values(&[name]);
        }
        for c in [&self.sent, &self.failed, &self.retries, &self.dropped] {
            c.with_label_values(&[name]);
        }
    }
}

/// Feeds security events to every sink configured with `security_events = true`. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct SecurityEvents {
    sinks: Vec<(String, mpsc::Sender<serde_json::Value>)>,
    metrics: Option<ForwardMetrics>,
}

impl SecurityEvents {
    /// Queues `event` (a JSON object) for each such sink; never waits. A full queue drops it.
    pub fn send(&self, event: serde_json::Value) {
        for (name, tx) in &self.sinks {
            if tx.try_send(event.clone()).is_err()
                && let Some(m) = &self.metrics
            {
                m.dropped.with_label_values(&[name]).inc();
            }
        }
    }
}

/// Sinks built from the configuration (files and CA certificates read, URLs checked), not yet
/// running. Built before the server takes traffic, so a broken sink fails start-up.
#[derive(Debug)]
pub struct Prepared {
    sinks: Vec<(SinkConfig, Sink, Option<mpsc::Receiver<serde_json::Value>>)>,
    security: SecurityEvents,
}

impl Prepared {
    /// Validates and builds every sink.
    pub fn new(configs: &[SinkConfig]) -> Result<Self, String> {
        validate_all(configs)?;
        let mut security = SecurityEvents::default();
        let mut sinks = Vec::new();
        for cfg in configs {
            let sink = Sink::open(cfg)?;
            let rx = if cfg.security_events {
                let (tx, rx) = mpsc::channel(SECURITY_QUEUE);
                security.sinks.push((cfg.name.clone(), tx));
                Some(rx)
            } else {
                None
            };
            sinks.push((cfg.clone(), sink, rx));
        }
        Ok(Prepared { sinks, security })
    }

    /// The feed for security events (usable before and after [`Prepared::spawn`]).
    pub fn security_events(&self) -> SecurityEvents {
        self.security.clone()
    }

    /// Starts one task per sink on the current tokio runtime.
    pub fn spawn(
        self,
        store: Arc<dyn LogStore>,
        origin: &str,
        published: watch::Receiver<Arc<Published>>,
        metrics: ForwardMetrics,
    ) -> Forwarders {
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut security = self.security;
        security.metrics = Some(metrics.clone());
        for (cfg, _, _) in &self.sinks {
            metrics.init_sink(&cfg.name);
        }
        let ctx = Ctx {
            store,
            origin: origin.to_owned(),
            published,
            stop: stop_rx,
            metrics,
        };
        let tasks = self
            .sinks
            .into_iter()
            .map(|(cfg, sink, rx)| tokio::spawn(run_sink(cfg, sink, rx, ctx.clone())))
            .collect();
        Forwarders {
            tasks,
            stop: stop_tx,
            security,
        }
    }
}

/// The running sinks.
#[derive(Debug)]
pub struct Forwarders {
    tasks: Vec<JoinHandle<()>>,
    stop: watch::Sender<bool>,
    security: SecurityEvents,
}

/// What every sink task shares.
#[derive(Clone)]
struct Ctx {
    store: Arc<dyn LogStore>,
    origin: String,
    published: watch::Receiver<Arc<Published>>,
    stop: watch::Receiver<bool>,
    metrics: ForwardMetrics,
}

impl Forwarders {
    /// [`Prepared::new`] then [`Prepared::spawn`].
    pub fn start(
        sinks: &[SinkConfig],
        store: Arc<dyn LogStore>,
        origin: &str,
        published: watch::Receiver<Arc<Published>>,
        metrics: ForwardMetrics,
    ) -> Result<Self, String> {
        Ok(Prepared::new(sinks)?.spawn(store, origin, published, metrics))
    }

    /// The feed for security events.
    pub fn security_events(&self) -> SecurityEvents {
        self.security.clone()
    }

    /// Stops every sink (an unacknowledged batch is sent again after a restart).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Back-off before retry `n` (1-based): `initial * 2^(n-1)` capped at `max`, then a random
/// factor in [0.5, 1) so sinks recovering together do not retry in lock-step.
fn backoff(cfg: &SinkConfig, n: u32) -> Duration {
    let exp = cfg
        .retry_initial_ms
        .saturating_mul(1u64 << n.saturating_sub(1).min(30))
        .min(cfg.retry_max_ms);
    let r = getrandom::u64().unwrap_or(u64::MAX / 2) % 1000;
    Duration::from_millis(exp / 2 + exp * r / 2000)
}

/// Reads entries `start..end` and builds their events, off the async threads.
async fn read_events(
    ctx: &Ctx,
    start: u64,
    end: u64,
    checkpoint_size: u64,
) -> Result<Vec<ForwardEvent>, StoreError> {
    let store = ctx.store.clone();
    let origin = ctx.origin.clone();
    tokio::task::spawn_blocking(move || {
        store
            .entries(start, end)?
            .iter()
            .zip(start..)
            .map(|(leaf, i)| {
                entry_event(&origin, i, leaf, checkpoint_size).map(ForwardEvent::Entry)
            })
            .collect()
    })
    .await
    .map_err(|e| StoreError::Io(format!("reader task: {e}")))?
}

async fn store_call<T: Send + 'static>(
    ctx: &Ctx,
    f: impl FnOnce(&dyn LogStore) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let store = ctx.store.clone();
    tokio::task::spawn_blocking(move || f(store.as_ref()))
        .await
        .map_err(|e| StoreError::Io(format!("store task: {e}")))?
}

/// One sink's loop: read from the cursor, send, acknowledge, repeat; sleep on the published
/// watch when caught up. Returns when stopped.
async fn run_sink(
    cfg: SinkConfig,
    mut sink: Sink,
    mut security: Option<mpsc::Receiver<serde_json::Value>>,
    mut ctx: Ctx,
) {
    let name = cfg.name.clone();
    let label = [name.as_str()];
    let mut failures: u32 = 0;
    // `cursor`: next entry to send. `acked`: the highest cursor stored (a replay after a broken
    // connection rewinds `cursor`, never the stored value).
    let stored = {
        let n = name.clone();
        store_call(&ctx, move |s| s.sink_cursor(&n)).await
    };
    let mut acked = match stored {
        Ok(c) => c.unwrap_or(0),
        Err(e) => {
            tracing::error!(sink = %name, error = %e, "forward: cannot read the cursor; sink stopped");
            return;
        }
    };
    // Syslog streams re-send a window before the cursor at start-up (see `replay_entries`).
    let mut cursor = acked.saturating_sub(sink.take_replay());
    let mut pending_security: Vec<ForwardEvent> = Vec::new();
    loop {
        if *ctx.stop.borrow() {
            return;
        }
        if let Some(rx) = security.as_mut() {
            while pending_security.len() < SECURITY_QUEUE {
                match rx.try_recv() {
                    Ok(v) => pending_security.push(ForwardEvent::Security(v)),
                    Err(_) => break,
                }
            }
        }
        let published = ctx.published.borrow_and_update().clone();
        let size = published.size;
        ctx.metrics
            .lag_entries
            .with_label_values(&label)
            .set(i64::try_from(size.saturating_sub(acked)).unwrap_or(i64::MAX));
        if cursor >= size && pending_security.is_empty() {
            ctx.metrics.lag_seconds.with_label_values(&label).set(0);
            let woke = match security.as_mut() {
                Some(rx) => tokio::select! {
                    r = ctx.published.changed() => Wake::Published(r.is_ok()),
                    _ = ctx.stop.changed() => Wake::Published(false),
                    v = rx.recv() => Wake::Security(v),
                },
                None => tokio::select! {
                    r = ctx.published.changed() => Wake::Published(r.is_ok()),
                    _ = ctx.stop.changed() => Wake::Published(false),
                },
            };
            match woke {
                Wake::Published(false) => return,
                Wake::Published(true) => {}
                Wake::Security(Some(v)) => pending_security.push(ForwardEvent::Security(v)),
                // Every feeder is gone: no more security events.
                Wake::Security(None) => security = None,
            }
            continue;
        }
        let end = size.min(cursor.saturating_add(cfg.batch_entries));
        let mut events = if cursor < end {
            match read_events(&ctx, cursor, end, size).await {
                Ok(e) => e,
                Err(e) => {
                    tracing::error!(sink = %name, error = %e, "forward: reading entries failed");
                    failures += 1;
                    if !pause(&mut ctx, backoff(&cfg, failures)).await {
                        return;
                    }
                    continue;
                }
            }
        } else {
            Vec::new()
        };
        if let Some(ForwardEvent::Entry(first)) = events.first() {
            let age = now_ms().saturating_sub(first.time_ms) / 1000;
            ctx.metrics
                .lag_seconds
                .with_label_values(&label)
                .set(i64::try_from(age).unwrap_or(i64::MAX));
        }
        let n_security = pending_security.len();
        events.append(&mut pending_security);
        let result = tokio::select! {
            r = tokio::time::timeout(cfg.timeout(), sink.send(&events)) => match r {
                Ok(r) => r,
                Err(_) => Err(SinkError(format!("no acknowledgement within {}s", cfg.timeout_secs))),
            },
            _ = ctx.stop.changed() => return,
        };
        match result {
            Ok(()) => {
                failures = 0;
                ctx.metrics
                    .sent
                    .with_label_values(&label)
                    .inc_by(events.len() as u64);
                cursor = end;
                if end > acked {
                    acked = end;
                    let n = name.clone();
                    if let Err(e) = store_call(&ctx, move |s| s.set_sink_cursor(&n, end)).await {
                        tracing::warn!(sink = %name, error = %e, "forward: storing the cursor failed");
                    }
                }
            }
            Err(e) => {
                // Security events were sent once (best-effort); entries are retried.
                if n_security > 0 {
                    ctx.metrics
                        .dropped
                        .with_label_values(&label)
                        .inc_by(n_security as u64);
                }
                failures = failures.saturating_add(1);
                ctx.metrics.failed.with_label_values(&label).inc();
                ctx.metrics.retries.with_label_values(&label).inc();
                let replay = sink.take_replay();
                cursor = cursor.saturating_sub(replay);
                let delay = backoff(&cfg, failures);
                tracing::warn!(sink = %name, error = %e, retry_in_ms = delay.as_millis() as u64,
                    replay, "forward: send failed");
                if !pause(&mut ctx, delay).await {
                    return;
                }
            }
        }
    }
}

/// What woke an idle sink.
enum Wake {
    /// The published tree changed (`true`) or the log is gone (`false`).
    Published(bool),
    /// A security event, or `None` when its feed closed.
    Security(Option<serde_json::Value>),
}

/// Sleeps for `d` unless stopped first; `false` if stopped.
async fn pause(ctx: &mut Ctx, d: Duration) -> bool {
    tokio::select! {
        () = tokio::time::sleep(d) => true,
        _ = ctx.stop.changed() => false,
    }
}
