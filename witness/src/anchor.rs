//! Anchoring: record the latest cosigned checkpoint of each log somewhere else, so the witness's
//! own history is itself witnessed.
//!
//! One background task per anchor watches a channel that holds only the latest cosigned
//! checkpoint per log ([`LatestMap`]); cosigning only replaces that value and never
//! waits for an anchor. A task delivers at most once per `anchoring.interval_secs`, every log whose
//! latest tree (size and root) it has not delivered yet; a re-submitted checkpoint that only got a
//! fresh cosignature is not delivered again. A failed delivery is retried after
//! `retry_initial_ms`, doubling up to `retry_max_secs`, plus up to 50% random jitter; each retry
//! picks up the newest checkpoint. Delivery is at least once: after a restart the last stored
//! checkpoint is delivered again, and a sealtrail anchor gets an `Idempotency-Key` derived from the
//! note, so a retried append is not duplicated.
//!
//! Kinds:
//! - `sealtrail`: `POST <url>/v1/entries`, body = the cosigned checkpoint note,
//!   `Content-Type: text/plain; charset=utf-8`, `X-Event-Type: witness.checkpoint`,
//!   optional bearer token; the JSON answer's `index` is logged and exported;
//! - `file`: one JSON object per line (`origin`, `size`, `root_hash`, `note`, `time`), appended
//!   and synced with `fdatasync` before the delivery counts;
//! - `webhook`: the same JSON object, POSTed;
//! - `rfc3161`: an RFC 3161 `TimeStampReq` over the note's SHA-256 (with a random nonce and
//!   `certReq`) POSTed as `application/timestamp-query`; the answer must be granted, for that
//!   digest and nonce. The note and the token are then written (each synced, then renamed into
//!   place, the note first) to `<dir>/<origin>/<size>-<digest>.checkpoint` and `.tst`, where
//!   `sealtrail-verify timestamp` checks them against the TSA's certificate chain.
//!
//! This module knows nothing of the witness's shared state: the caller hands it the anchors, a
//! [`Context`] and the channel.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use sealtrail_net::backoff::{Backoff, Jitter};
use sealtrail_net::clock::unix_secs;
use sealtrail_spec::Hash;
use sealtrail_spec::rfc3161;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{AnchorConfig, Anchoring};
use crate::metrics::{Metrics, gauge_value};

/// `X-Event-Type` of checkpoints appended to a sealtrail anchor log.
pub const EVENT_TYPE: &str = "witness.checkpoint";

/// The latest cosigned checkpoint of a log, as handed to the anchors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Latest {
    pub(crate) origin: String,
    pub(crate) size: u64,
    pub(crate) root_base64: String,
    /// The cosigned note (log signatures and our cosignature).
    pub(crate) note: String,
}

/// Latest cosigned checkpoint per origin. A watch channel keeps only the newest map, so a slow
/// anchor never holds up cosigning and never sees a backlog, only the latest state.
pub(crate) type LatestMap = BTreeMap<String, Latest>;

/// What every anchor task needs from the witness.
#[derive(Debug, Clone)]
pub(crate) struct Context {
    pub(crate) client: reqwest::Client,
    pub(crate) metrics: Metrics,
    pub(crate) settings: Anchoring,
    /// The witness's name, in every record.
    pub(crate) witness: String,
}

/// An anchor that cannot be set up: its bearer token file is unreadable.
#[derive(Debug, thiserror::Error)]
#[error("anchor token file {path}: {error}")]
pub struct AnchorTokenError {
    /// The token file.
    pub path: PathBuf,
    /// The I/O error.
    pub error: std::io::Error,
}

/// Why a delivery to an anchor failed. Every kind is retried.
#[derive(Debug, thiserror::Error)]
enum DeliveryError {
    /// The request got no answer (connection, timeout, body).
    #[error("POST {url}: {error}")]
    Http { url: String, error: reqwest::Error },
    /// The anchor answered with an error status; a sealtrail log's answer body is kept.
    #[error("POST {url}: HTTP {status}{}", body_suffix(.body.as_deref()))]
    Refused {
        url: String,
        status: reqwest::StatusCode,
        body: Option<String>,
    },
    /// A sealtrail log accepted the entry but did not say its index.
    #[error("POST {url}: the answer has no entry index")]
    NoIndex { url: String },
    /// The file anchor could not append or sync.
    #[error("file anchor: {0}")]
    File(std::io::Error),
    /// The file anchor's blocking task failed.
    #[error("file anchor task: {0}")]
    Task(tokio::task::JoinError),
    /// A Time-Stamp Authority's answer is not a token for the request.
    #[error("POST {url}: {error}")]
    Tsa { url: String, error: String },
}

/// `: <body>` after a refused sealtrail append, nothing after a refused webhook.
fn body_suffix(body: Option<&str>) -> String {
    body.map_or(String::new(), |b| format!(": {b}"))
}

impl DeliveryError {
    /// A short static label for logs.
    fn category(&self) -> &'static str {
        match self {
            DeliveryError::Http { .. } => "http",
            DeliveryError::Refused { .. } => "refused",
            DeliveryError::NoIndex { .. } | DeliveryError::Tsa { .. } => "bad_answer",
            DeliveryError::File(_) | DeliveryError::Task(_) => "io",
        }
    }
}

/// A configured anchor, ready to use.
#[derive(Clone)]
pub(crate) struct Anchor {
    name: String,
    target: Target,
}

#[derive(Clone)]
enum Target {
    Sealtrail {
        url: String,
        token: Option<String>,
    },
    File(PathBuf),
    Webhook(String),
    Rfc3161 {
        url: String,
        dir: PathBuf,
        /// The requested policy (object identifier content octets).
        policy: Option<Vec<u8>>,
    },
}

impl fmt::Debug for Anchor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.target {
            Target::Sealtrail { .. } => "sealtrail",
            Target::File(_) => "file",
            Target::Webhook(_) => "webhook",
            Target::Rfc3161 { .. } => "rfc3161",
        };
        // Never the token.
        f.debug_struct("Anchor")
            .field("name", &self.name)
            .field("kind", &kind)
            .finish_non_exhaustive()
    }
}

/// Builds the anchors, reading token files.
pub(crate) fn from_config(configs: &[AnchorConfig]) -> Result<Vec<Anchor>, AnchorTokenError> {
    configs
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let target = match c {
                AnchorConfig::Sealtrail {
                    url,
                    bearer_token,
                    bearer_token_file,
                    ..
                } => {
                    let token = match (bearer_token, bearer_token_file) {
                        (Some(t), _) => Some(t.clone()),
                        (None, Some(p)) => Some(
                            std::fs::read_to_string(p)
                                .map_err(|error| AnchorTokenError {
                                    path: p.clone(),
                                    error,
                                })?
                                .trim()
                                .to_owned(),
                        ),
                        (None, None) => None,
                    };
                    Target::Sealtrail {
                        url: url.trim_end_matches('/').to_owned(),
                        token,
                    }
                }
                AnchorConfig::File { path, .. } => Target::File(path.clone()),
                AnchorConfig::Webhook { url, .. } => Target::Webhook(url.clone()),
                AnchorConfig::Rfc3161 {
                    url, dir, policy, ..
                } => Target::Rfc3161 {
                    url: url.clone(),
                    dir: dir.clone(),
                    // Checked when the configuration was validated.
                    policy: policy
                        .as_deref()
                        .and_then(|p| sealtrail_spec::der::oid_from_dotted(p).ok()),
                },
            };
            Ok(Anchor {
                name: c.name(i),
                target,
            })
        })
        .collect()
}

/// Starts one task per anchor, each watching `latest`.
pub(crate) fn spawn_all(
    anchors: &[Anchor],
    context: &Context,
    latest: &watch::Sender<LatestMap>,
) -> Vec<JoinHandle<()>> {
    anchors
        .iter()
        .map(|a| {
            // Both series exist from the start, so alerts on `rate(...{result="error"})` see 0.
            for result in ["ok", "error"] {
                context
                    .metrics
                    .anchor_deliveries
                    .with_label_values(&[a.name.as_str(), result]);
            }
            let s = &context.settings;
            let worker = Worker {
                anchor: a.clone(),
                // `retry_initial_ms * 2^(failures-1)`, capped at `retry_max_secs`, plus up to 50%.
                backoff: Backoff::new(
                    Duration::from_millis(s.retry_initial_ms),
                    Duration::from_secs(s.retry_max_secs),
                    Jitter::Above,
                ),
                context: context.clone(),
            };
            tokio::spawn(worker.run(latest.subscribe()))
        })
        .collect()
}

struct Worker {
    anchor: Anchor,
    backoff: Backoff,
    context: Context,
}

impl Worker {
    async fn run(self, mut rx: watch::Receiver<LatestMap>) {
        // (size, root) delivered, by origin: a re-cosigned identical tree is not sent again.
        let mut delivered: HashMap<String, (u64, String)> = HashMap::new();
        let interval = Duration::from_secs(self.context.settings.interval_secs);
        let mut last_round: Option<Instant> = None;
        // The initial value (what was stored before a restart) counts as new.
        rx.mark_changed();
        loop {
            if rx.changed().await.is_err() {
                return;
            }
            if let Some(t) = last_round {
                tokio::time::sleep(interval.saturating_sub(t.elapsed())).await;
            }
            last_round = Some(Instant::now());
            let mut failures = 0u32;
            loop {
                let pending: Vec<Latest> = rx
                    .borrow_and_update()
                    .values()
                    .filter(|l| delivered.get(&l.origin) != Some(&(l.size, l.root_base64.clone())))
                    .cloned()
                    .collect();
                let mut failed = false;
                for l in pending {
                    match self.deliver(&l).await {
                        Ok(()) => {
                            delivered.insert(l.origin.clone(), (l.size, l.root_base64.clone()));
                        }
                        Err(e) => {
                            failed = true;
                            self.count("error");
                            tracing::warn!(anchor = %self.anchor.name, origin = %l.origin,
                                size = l.size, error = %e, category = e.category(),
                                "anchor delivery failed; will retry");
                        }
                    }
                }
                if !failed {
                    break;
                }
                failures = failures.saturating_add(1);
                tokio::time::sleep(self.backoff.delay(failures)).await;
            }
        }
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(self.context.settings.timeout_secs)
    }

    fn count(&self, result: &str) {
        self.context
            .metrics
            .anchor_deliveries
            .with_label_values(&[self.anchor.name.as_str(), result])
            .inc();
    }

    async fn deliver(&self, l: &Latest) -> Result<(), DeliveryError> {
        let record = serde_json::json!({
            "witness": self.context.witness,
            "origin": l.origin,
            "size": l.size,
            "root_hash": l.root_base64,
            "note": l.note,
            "time": unix_secs(),
        });
        let mut index = None;
        match &self.anchor.target {
            Target::Sealtrail { url, token } => {
                index = Some(self.append_to_log(url, token.as_deref(), l).await?);
            }
            Target::File(path) => append_line(path.clone(), record.to_string()).await?,
            Target::Rfc3161 { url, dir, policy } => {
                self.time_stamp(url, dir, policy.as_deref(), l).await?;
            }
            Target::Webhook(url) => {
                self.post(url, |r| r.json(&record)).await?;
            }
        }
        self.count("ok");
        let metrics = &self.context.metrics;
        metrics
            .anchor_last_size
            .with_label_values(&[self.anchor.name.as_str(), l.origin.as_str()])
            .set(gauge_value(l.size));
        if let Some(i) = index {
            metrics
                .anchor_last_index
                .with_label_values(&[self.anchor.name.as_str()])
                .set(gauge_value(i));
        }
        tracing::info!(anchor = %self.anchor.name, origin = %l.origin, size = l.size,
            index, "checkpoint anchored");
        Ok(())
    }

    /// Appends the note to a sealtrail log; returns its index.
    async fn append_to_log(
        &self,
        base: &str,
        token: Option<&str>,
        l: &Latest,
    ) -> Result<u64, DeliveryError> {
        let url = format!("{base}/v1/entries");
        let key = Hash(sealtrail_spec::hash::sha256(l.note.as_bytes())).to_hex();
        let mut req = self
            .context
            .client
            .post(&url)
            .timeout(self.timeout())
            .header(reqwest::header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .header("x-event-type", EVENT_TYPE)
            .header("idempotency-key", key)
            .body(l.note.clone());
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.map_err(http_error(&url))?;
        let status = r.status();
        let body = r.bytes().await.map_err(http_error(&url))?;
        if !status.is_success() {
            return Err(DeliveryError::Refused {
                url,
                status,
                body: Some(String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned()),
            });
        }
        serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("index").and_then(serde_json::Value::as_u64))
            .ok_or(DeliveryError::NoIndex { url })
    }
}

impl Worker {
    /// POSTs to a webhook or a TSA (`body` adds the body); an error status is a refusal whose
    /// answer is not kept.
    async fn post(
        &self,
        url: &str,
        body: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, DeliveryError> {
        let request = self.context.client.post(url).timeout(self.timeout());
        let r = body(request).send().await.map_err(http_error(url))?;
        if !r.status().is_success() {
            return Err(DeliveryError::Refused {
                url: url.to_owned(),
                status: r.status(),
                body: None,
            });
        }
        Ok(r)
    }

    /// Has the note's SHA-256 time-stamped and stores the note and the token.
    async fn time_stamp(
        &self,
        url: &str,
        dir: &std::path::Path,
        policy: Option<&[u8]>,
        l: &Latest,
    ) -> Result<(), DeliveryError> {
        let digest = sealtrail_spec::hash::sha256(l.note.as_bytes());
        let nonce = getrandom::u64()
            .unwrap_or_else(|_| u64::from_be_bytes(first8(&digest)) ^ unix_secs())
            .to_be_bytes();
        let tsa = |error: String| DeliveryError::Tsa {
            url: url.to_owned(),
            error,
        };
        let mut r = self
            .post(url, |r| {
                r.header(reqwest::header::CONTENT_TYPE, rfc3161::QUERY_MEDIA_TYPE)
                    .body(rfc3161::request(&digest, &nonce, policy))
            })
            .await?;
        let mut body = Vec::new();
        while let Some(chunk) = r.chunk().await.map_err(http_error(url))? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_TSA_ANSWER {
                return Err(tsa(format!(
                    "the answer is larger than {MAX_TSA_ANSWER} bytes"
                )));
            }
        }
        let token = rfc3161::token_from_response(&body).map_err(|e| tsa(e.to_string()))?;
        rfc3161::Token::parse(token)
            .and_then(|t| t.tst_info.check_answer(&digest, &nonce, policy))
            .map_err(|e| tsa(format!("the token: {e}")))?;
        let stem = format!("{}-{}", l.size, &Hash(digest).to_hex()[..16]);
        let folder = dir.join(origin_dir_name(&l.origin));
        let (note, token) = (l.note.clone().into_bytes(), token.to_vec());
        tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&folder)?;
            write_synced(&folder, &format!("{stem}.checkpoint"), &note)?;
            write_synced(&folder, &format!("{stem}.tst"), &token)
        })
        .await
        .map_err(DeliveryError::Task)?
        .map_err(DeliveryError::File)
    }
}

/// Largest TSA answer read (a token with a certificate chain is a few KiB).
const MAX_TSA_ANSWER: usize = 256 << 10;

fn first8(d: &[u8; 32]) -> [u8; 8] {
    let mut out = [0; 8];
    out.copy_from_slice(&d[..8]);
    out
}

/// An origin as one path component: bytes other than ASCII letters, digits, `-` and `_` (and a
/// `.` that is not first) percent-encoded, so `example.com/log` becomes `example.com%2Flog`.
fn origin_dir_name(origin: &str) -> String {
    let mut out = String::with_capacity(origin.len());
    for (i, b) in origin.bytes().enumerate() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || (b == b'.' && i > 0) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Writes `dir/name` whole: a temporary file, synced, renamed into place, the directory synced.
fn write_synced(dir: &std::path::Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join(name))?;
    std::fs::File::open(dir)?.sync_all()
}

fn http_error(url: &str) -> impl FnOnce(reqwest::Error) -> DeliveryError + '_ {
    move |error| DeliveryError::Http {
        url: url.to_owned(),
        error,
    }
}

/// Appends one line to a file and syncs it.
async fn append_line(path: PathBuf, line: String) -> Result<(), DeliveryError> {
    tokio::task::spawn_blocking(move || {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)?;
        f.write_all(format!("{line}\n").as_bytes())?;
        f.sync_data()
    })
    .await
    .map_err(DeliveryError::Task)?
    .map_err(DeliveryError::File)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_errors_keep_their_messages_and_say_their_category() {
        let url = "http://anchor.example/v1/entries".to_owned();
        let webhook = DeliveryError::Refused {
            url: url.clone(),
            status: reqwest::StatusCode::BAD_GATEWAY,
            body: None,
        };
        assert_eq!(
            webhook.to_string(),
            "POST http://anchor.example/v1/entries: HTTP 502 Bad Gateway"
        );
        assert_eq!(webhook.category(), "refused");
        let log = DeliveryError::Refused {
            url: url.clone(),
            status: reqwest::StatusCode::FORBIDDEN,
            body: Some("no token\n".into()),
        };
        assert_eq!(
            log.to_string(),
            "POST http://anchor.example/v1/entries: HTTP 403 Forbidden: no token\n"
        );
        let no_index = DeliveryError::NoIndex { url };
        assert_eq!(
            no_index.to_string(),
            "POST http://anchor.example/v1/entries: the answer has no entry index"
        );
        assert_eq!(no_index.category(), "bad_answer");
        let file = DeliveryError::File(std::io::Error::other("disk full"));
        assert_eq!(file.to_string(), "file anchor: disk full");
        assert_eq!(file.category(), "io");
    }

    #[test]
    fn origins_become_one_safe_path_component() {
        assert_eq!(origin_dir_name("example.com/log"), "example.com%2Flog");
        assert_eq!(origin_dir_name("../x y"), "%2E.%2Fx%20y");
        assert_eq!(origin_dir_name(".."), "%2E.");
        assert_eq!(origin_dir_name("a_b-c.9"), "a_b-c.9");
    }

    #[test]
    fn token_files_are_read_and_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "s3cret\n").unwrap();
        let anchors = from_config(&[AnchorConfig::Sealtrail {
            name: None,
            url: "http://log.example/".into(),
            bearer_token: None,
            bearer_token_file: Some(token),
        }])
        .unwrap();
        match &anchors[0].target {
            Target::Sealtrail { url, token } => {
                assert_eq!(url, "http://log.example");
                assert_eq!(token.as_deref(), Some("s3cret"));
            }
            other => panic!("{:?}", std::mem::discriminant(other)),
        }
        assert_eq!(anchors[0].name, "sealtrail-0");
        let missing = dir.path().join("missing");
        let err = from_config(&[AnchorConfig::Sealtrail {
            name: None,
            url: "http://log.example".into(),
            bearer_token: None,
            bearer_token_file: Some(missing.clone()),
        }])
        .unwrap_err();
        assert_eq!(err.path, missing);
        assert_eq!(err.error.kind(), std::io::ErrorKind::NotFound);
    }
}
