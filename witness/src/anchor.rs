//! Anchoring: record the latest cosigned checkpoint of each log somewhere else, so the witness's
//! own history is itself witnessed.
//!
//! One background task per anchor watches a channel that holds only the latest cosigned
//! checkpoint per log ([`crate::state::LatestMap`]); cosigning only replaces that value and never
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
//!   `Content-Type: text/plain; charset=utf-8`, `X-Event-Type: sealtrail.witness.checkpoint`,
//!   optional bearer token; the JSON answer's `index` is logged and exported;
//! - `file`: one JSON object per line (`origin`, `size`, `root_hash`, `note`, `time`), appended
//!   and synced with `fdatasync` before the delivery counts;
//! - `webhook`: the same JSON object, POSTed.

use std::collections::HashMap;
use std::fmt;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sealtrail_spec::Hash;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{AnchorConfig, Anchoring};
use crate::metrics::{Metrics, gauge_value};
use crate::state::{Core, Latest, LatestMap, now_secs};

/// `X-Event-Type` of checkpoints appended to a sealtrail anchor log.
pub const EVENT_TYPE: &str = "sealtrail.witness.checkpoint";

/// A configured anchor, ready to use.
#[derive(Clone)]
pub(crate) struct Anchor {
    name: String,
    target: Target,
}

#[derive(Clone)]
enum Target {
    Sealtrail { url: String, token: Option<String> },
    File(PathBuf),
    Webhook(String),
}

impl fmt::Debug for Anchor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.target {
            Target::Sealtrail { .. } => "sealtrail",
            Target::File(_) => "file",
            Target::Webhook(_) => "webhook",
        };
        // Never the token.
        f.debug_struct("Anchor")
            .field("name", &self.name)
            .field("kind", &kind)
            .finish_non_exhaustive()
    }
}

/// Builds the anchors, reading token files.
pub(crate) fn from_config(configs: &[AnchorConfig]) -> Result<Vec<Anchor>, String> {
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
                                .map_err(|e| format!("anchor token file {}: {e}", p.display()))?
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
            };
            Ok(Anchor {
                name: c.name(i),
                target,
            })
        })
        .collect()
}

/// Starts one task per anchor.
pub(crate) fn spawn_all(core: &Arc<Core>) -> Vec<JoinHandle<()>> {
    core.anchors
        .iter()
        .map(|a| {
            // Both series exist from the start, so alerts on `rate(...{result="error"})` see 0.
            for result in ["ok", "error"] {
                core.metrics
                    .anchor_deliveries
                    .with_label_values(&[a.name.as_str(), result]);
            }
            let worker = Worker {
                anchor: a.clone(),
                client: core.client.clone(),
                metrics: core.metrics.clone(),
                settings: core.config.anchoring.clone(),
                witness: core.cosigner.name().to_owned(),
            };
            tokio::spawn(worker.run(core.latest.subscribe()))
        })
        .collect()
}

struct Worker {
    anchor: Anchor,
    client: reqwest::Client,
    metrics: Metrics,
    settings: Anchoring,
    witness: String,
}

impl Worker {
    async fn run(self, mut rx: watch::Receiver<LatestMap>) {
        // (size, root) delivered, by origin: a re-cosigned identical tree is not sent again.
        let mut delivered: HashMap<String, (u64, String)> = HashMap::new();
        let interval = Duration::from_secs(self.settings.interval_secs);
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
                                size = l.size, error = %e, "anchor delivery failed; will retry");
                        }
                    }
                }
                if !failed {
                    break;
                }
                failures = failures.saturating_add(1);
                tokio::time::sleep(self.backoff(failures)).await;
            }
        }
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(self.settings.timeout_secs)
    }

    fn count(&self, result: &str) {
        self.metrics
            .anchor_deliveries
            .with_label_values(&[self.anchor.name.as_str(), result])
            .inc();
    }

    /// `retry_initial_ms * 2^(failures-1)`, capped at `retry_max_secs`, plus up to 50% jitter.
    fn backoff(&self, failures: u32) -> Duration {
        let base = Duration::from_millis(self.settings.retry_initial_ms)
            .saturating_mul(2u32.saturating_pow(failures.saturating_sub(1).min(20)))
            .min(Duration::from_secs(self.settings.retry_max_secs));
        let half = u64::try_from(base.as_millis() / 2).unwrap_or(u64::MAX);
        let jitter = getrandom::u64().unwrap_or(0) % half.saturating_add(1);
        base + Duration::from_millis(jitter)
    }

    async fn deliver(&self, l: &Latest) -> Result<(), String> {
        let record = serde_json::json!({
            "witness": self.witness,
            "origin": l.origin,
            "size": l.size,
            "root_hash": l.root_base64,
            "note": l.note,
            "time": now_secs(),
        });
        let mut index = None;
        match &self.anchor.target {
            Target::Sealtrail { url, token } => {
                index = Some(self.append_to_log(url, token.as_deref(), l).await?);
            }
            Target::File(path) => append_line(path.clone(), record.to_string()).await?,
            Target::Webhook(url) => {
                let r = self
                    .client
                    .post(url)
                    .timeout(self.timeout())
                    .json(&record)
                    .send()
                    .await
                    .map_err(|e| format!("POST {url}: {e}"))?;
                if !r.status().is_success() {
                    return Err(format!("POST {url}: HTTP {}", r.status()));
                }
            }
        }
        self.count("ok");
        self.metrics
            .anchor_last_size
            .with_label_values(&[self.anchor.name.as_str(), l.origin.as_str()])
            .set(gauge_value(l.size));
        if let Some(i) = index {
            self.metrics
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
    ) -> Result<u64, String> {
        let url = format!("{base}/v1/entries");
        let key = Hash(sealtrail_spec::hash::sha256(l.note.as_bytes())).to_hex();
        let mut req = self
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
        let r = req.send().await.map_err(|e| format!("POST {url}: {e}"))?;
        let status = r.status();
        let body = r.bytes().await.map_err(|e| format!("POST {url}: {e}"))?;
        if !status.is_success() {
            return Err(format!(
                "POST {url}: HTTP {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(512)])
            ));
        }
        serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("index").and_then(serde_json::Value::as_u64))
            .ok_or_else(|| format!("POST {url}: the answer has no entry index"))
    }
}

/// Appends one line to a file and syncs it.
async fn append_line(path: PathBuf, line: String) -> Result<(), String> {
    tokio::task::spawn_blocking(move || {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)?;
        f.write_all(format!("{line}\n").as_bytes())?;
        f.sync_data()
    })
    .await
    .map_err(|e| format!("file anchor task: {e}"))?
    .map_err(|e| format!("file anchor: {e}"))
}
