//! Prometheus metrics for the witness, prefix `sealtrail_witness_`, on a registry of its own (no
//! global state), served at `/metrics`.

use prometheus::{Encoder as _, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder};

/// Every metric the witness exports.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    /// add-checkpoint answers by result category (`ok`, `conflict`, `inconsistent`, ...).
    pub add_checkpoint: IntCounterVec,
    /// Size of the latest cosigned checkpoint, by origin.
    pub cosigned_size: IntGaugeVec,
    /// HTTP requests by route, method and status.
    pub http_requests: IntCounterVec,
    /// 1 while a split view is recorded for the origin (cosigning refused), else 0.
    pub split_view: IntGaugeVec,
    /// Split views detected, by origin.
    pub split_views_detected: IntCounterVec,
    /// Gossip comparisons by source kind (`peer`, `log`) and result.
    pub gossip_checks: IntCounterVec,
    /// Anchor deliveries by anchor and result (`ok`, `error`).
    pub anchor_deliveries: IntCounterVec,
    /// Size of the last checkpoint delivered to each anchor, by anchor and origin.
    pub anchor_last_size: IntGaugeVec,
    /// Index returned by a sealtrail anchor log for the last delivered checkpoint.
    pub anchor_last_index: IntGaugeVec,
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("sealtrail_witness".into()), None)?;
        let counter = |name: &str, help: &str, labels: &[&str]| {
            IntCounterVec::new(Opts::new(name, help), labels)
        };
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            IntGaugeVec::new(Opts::new(name, help), labels)
        };
        let m = Metrics {
            add_checkpoint: counter(
                "add_checkpoint_total",
                "add-checkpoint answers by result",
                &["result"],
            )?,
            cosigned_size: gauge(
                "cosigned_tree_size",
                "Size of the latest cosigned checkpoint",
                &["origin"],
            )?,
            http_requests: counter(
                "http_requests_total",
                "HTTP requests by route, method and status",
                &["route", "method", "status"],
            )?,
            split_view: gauge(
                "split_view",
                "1 while a split view is recorded for the log and cosigning is refused",
                &["origin"],
            )?,
            split_views_detected: counter(
                "split_views_detected_total",
                "Split views detected",
                &["origin"],
            )?,
            gossip_checks: counter(
                "gossip_checks_total",
                "Gossip comparisons by source kind and result",
                &["source", "result"],
            )?,
            anchor_deliveries: counter(
                "anchor_deliveries_total",
                "Anchor deliveries by anchor and result",
                &["anchor", "result"],
            )?,
            anchor_last_size: gauge(
                "anchor_last_size",
                "Size of the last checkpoint delivered to the anchor",
                &["anchor", "origin"],
            )?,
            anchor_last_index: gauge(
                "anchor_last_index",
                "Entry index returned by a sealtrail anchor for the last delivery",
                &["anchor"],
            )?,
            registry,
        };
        let r = &m.registry;
        r.register(Box::new(m.add_checkpoint.clone()))?;
        r.register(Box::new(m.cosigned_size.clone()))?;
        r.register(Box::new(m.http_requests.clone()))?;
        r.register(Box::new(m.split_view.clone()))?;
        r.register(Box::new(m.split_views_detected.clone()))?;
        r.register(Box::new(m.gossip_checks.clone()))?;
        r.register(Box::new(m.anchor_deliveries.clone()))?;
        r.register(Box::new(m.anchor_last_size.clone()))?;
        r.register(Box::new(m.anchor_last_index.clone()))?;
        Ok(m)
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        if TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .is_err()
        {
            return String::new();
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

/// Clamps a size to a gauge value.
pub(crate) fn gauge_value(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}
