//! The witness's shared state ([`Core`]): its key, the configured logs, the store, metrics, rate
//! limiters, the HTTP client and the channel feeding the anchors; and the one place a split view
//! is reported ([`Core::report_split_view`]).

use std::sync::Arc;
use std::time::Duration;

use sealtrail_net::backoff::{Backoff, Jitter};
use sealtrail_net::ratelimit::RateLimiter;
use sealtrail_spec::cosignature::Cosigner;
use sealtrail_spec::note::{Ed25519Verifier, Verifier};
use sealtrail_spec::witness::origin_hash;
use tokio::sync::watch;

use crate::anchor::{Anchor, Latest, LatestMap};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::store::{SplitView, Store, StoreError};

/// Split-view alerts are sent at most this many times, `ALERT_BACKOFF` apart (doubling).
const ALERT_ATTEMPTS: u32 = 5;
/// The wait after the first failed alert; it doubles after each failure, without jitter.
const ALERT_BACKOFF: Backoff =
    Backoff::new(Duration::from_millis(500), Duration::MAX, Jitter::Below);

/// A configured log.
#[derive(Debug)]
pub(crate) struct Log {
    pub(crate) origin: String,
    /// Lowercase hex SHA-256 of the origin (the monitoring path segment).
    pub(crate) origin_hash: String,
    pub(crate) verifiers: Vec<Ed25519Verifier>,
    /// tlog-tiles base URL without a trailing slash.
    pub(crate) url: Option<String>,
}

impl Log {
    pub(crate) fn verifiers(&self) -> Vec<&dyn Verifier> {
        self.verifiers.iter().map(|v| v as &dyn Verifier).collect()
    }
}

/// Everything the handlers, gossip and anchors share.
#[derive(Debug)]
pub(crate) struct Core {
    pub(crate) cosigner: Cosigner,
    pub(crate) logs: Vec<Log>,
    pub(crate) store: Store,
    pub(crate) metrics: Metrics,
    pub(crate) config: Config,
    /// add-checkpoint rate limit per configured origin.
    pub(crate) per_log: RateLimiter<String>,
    /// add-checkpoint rate limit over all requests: one bucket.
    pub(crate) total: RateLimiter<()>,
    pub(crate) latest: watch::Sender<LatestMap>,
    pub(crate) client: reqwest::Client,
    pub(crate) anchors: Vec<Anchor>,
    /// Request body bytes that may be arriving at once (`limits.max_inflight_body_bytes`, with a share per
    /// client address).
    pub(crate) body_budget: sealtrail_net::budget::Budget,
    /// TLS for the listener, when configured.
    pub(crate) tls: Option<Arc<sealtrail_net::tls::Tls>>,
}

impl Core {
    pub(crate) fn log(&self, origin: &str) -> Option<&Log> {
        self.logs.iter().find(|l| l.origin == origin)
    }

    pub(crate) fn log_by_hash(&self, hash: &str) -> Option<&Log> {
        self.logs.iter().find(|l| l.origin_hash == hash)
    }

    /// Runs a blocking store operation off the async threads.
    pub(crate) async fn with_store<T, F>(self: &Arc<Self>, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    {
        let core = self.clone();
        tokio::task::spawn_blocking(move || f(&core.store))
            .await
            .map_err(|e| StoreError::Io(format!("store task failed: {e}")))?
    }

    /// Records a split view durably, then raises every alarm: the metric, an error-level log
    /// event, and the webhook. Repeated detections for an origin that is already blocked are
    /// logged at warn level and change nothing.
    pub(crate) async fn report_split_view(self: &Arc<Self>, split: SplitView) {
        let s = split.clone();
        match self.with_store(move |st| st.record_split_view(&s)).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(origin = %split.origin, source = %split.source, reason = %split.reason,
                    "split view seen again; the log is already blocked");
                return;
            }
            Err(e) => {
                // Still alarm: the evidence could not be stored, but the operator must know.
                tracing::error!(origin = %split.origin, error = %e, "could not store split-view evidence");
            }
        }
        self.metrics
            .split_view
            .with_label_values(&[split.origin.as_str()])
            .set(1);
        self.metrics
            .split_views_detected
            .with_label_values(&[split.origin.as_str()])
            .inc();
        tracing::error!(
            event = "split_view",
            origin = %split.origin,
            source = %split.source,
            reason = %split.reason,
            ours = %split.ours,
            theirs = %split.theirs,
            "SPLIT VIEW: the log signed inconsistent checkpoints; cosigning for it is suspended \
             until an operator runs clear-split-view"
        );
        if let Some(url) = self.config.alerts.webhook_url.clone() {
            let core = self.clone();
            tokio::spawn(async move { core.send_alert(&url, &split).await });
        }
    }

    /// POSTs a split-view alert, retrying a few times with back-off.
    async fn send_alert(&self, url: &str, split: &SplitView) {
        let body = serde_json::json!({
            "event": "split_view",
            "witness": self.cosigner.name(),
            "origin": split.origin,
            "origin_hash": origin_hash(&split.origin),
            "detected_at": split.detected_at,
            "source": split.source,
            "reason": split.reason,
            "ours": split.ours,
            "theirs": split.theirs,
        });
        for attempt in 1..=ALERT_ATTEMPTS {
            let timeout = Duration::from_secs(self.config.gossip.timeout_secs);
            match self
                .client
                .post(url)
                .timeout(timeout)
                .json(&body)
                .send()
                .await
            {
                Ok(r) if r.status().is_success() => {
                    tracing::info!(origin = %split.origin, url, "split-view alert delivered");
                    return;
                }
                Ok(r) => tracing::warn!(
                    url,
                    status = r.status().as_u16(),
                    attempt,
                    "split-view alert refused"
                ),
                Err(e) => tracing::warn!(url, error = %e, attempt, "split-view alert failed"),
            }
            tokio::time::sleep(ALERT_BACKOFF.base(attempt)).await;
        }
        tracing::error!(origin = %split.origin, url, "split-view alert not delivered");
    }

    /// Publishes a newly cosigned checkpoint to the anchors, unless a newer one is already there.
    pub(crate) fn publish_latest(&self, latest: Latest) {
        self.latest.send_if_modified(|map| {
            let newer = map
                .get(&latest.origin)
                .is_none_or(|old| old.size <= latest.size);
            if newer {
                map.insert(latest.origin.clone(), latest.clone());
            }
            newer
        });
    }
}
