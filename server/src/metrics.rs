//! Prometheus metrics for the server, on a registry of its own (no global state), served at
//! `/metrics` in the text exposition format.

use std::time::UNIX_EPOCH;

use prometheus::{
    Encoder as _, Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};

use crate::published::Published;

/// Every metric the server exports.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    /// Entries durably appended.
    pub entries_appended: IntCounter,
    /// Entries per committed batch.
    pub batch_entries: Histogram,
    /// Seconds per sequencer commit (extend, sign, durable write).
    pub commit_seconds: Histogram,
    /// Entries waiting for the sequencer.
    pub queue_depth: IntGauge,
    /// Size of the latest published tree.
    pub tree_size: IntGauge,
    /// Unix time (seconds) at which the latest checkpoint was signed.
    pub checkpoint_timestamp: Gauge,
    /// HTTP requests by route, method and status.
    pub http_requests: IntCounterVec,
    /// Errors by category (store failures, rejected input, ...).
    pub errors: IntCounterVec,
    /// Entries the sequencer queue holds at most (`limits.queue_entries`).
    pub queue_capacity: IntGauge,
    /// Free bytes on the data directory's filesystem (for unprivileged users).
    pub disk_free: IntGauge,
    /// Size of the data directory's filesystem in bytes.
    pub disk_total: IntGauge,
    /// Security events by kind (see `auth::events`).
    pub security_events: IntCounterVec,
    /// Point reads (proofs, tiles, entries) run inline on the HTTP worker, and those run on the
    /// blocking pool (see `api::read::ReadPath`): the two series of `point_reads_total{path}`,
    /// resolved once because every point read counts one.
    pub point_reads_inline: IntCounter,
    /// See `point_reads_inline`.
    pub point_reads_pool: IntCounter,
    /// Inline point reads that read from the disk or stalled.
    pub slow_inline_reads: IntCounter,
    /// Batches moved to later indices because another instance committed first (shared store).
    pub rebased_batches: IntCounter,
    /// Entries re-stamped to the time of another instance's later entry (shared store).
    pub retimed_entries: IntCounter,
    /// Whether this instance holds each background singleton's lock (1) or not (0).
    pub leader: prometheus::IntGaugeVec,
}

fn buckets(start: f64, factor: f64, count: usize) -> Vec<f64> {
    prometheus::exponential_buckets(start, factor, count).unwrap_or_default()
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("sealtrail".into()), None)?;
        let point_reads = IntCounterVec::new(
            Opts::new(
                "point_reads_total",
                "Point reads (proofs, tiles, entries) by where they ran: inline or pool",
            ),
            &["path"],
        )?;
        let m = Metrics {
            entries_appended: IntCounter::new(
                "entries_appended_total",
                "Entries durably appended",
            )?,
            batch_entries: Histogram::with_opts(
                HistogramOpts::new("batch_entries", "Entries per committed batch")
                    .buckets(buckets(1.0, 4.0, 8)),
            )?,
            commit_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "commit_seconds",
                    "Sequencer commit latency: extend, sign and durable write",
                )
                .buckets(buckets(0.0001, 2.0, 16)),
            )?,
            queue_depth: IntGauge::new("queue_entries", "Entries waiting for the sequencer")?,
            tree_size: IntGauge::new("tree_size", "Size of the latest published tree")?,
            checkpoint_timestamp: Gauge::new(
                "checkpoint_timestamp_seconds",
                "Unix time at which the latest checkpoint was signed",
            )?,
            http_requests: IntCounterVec::new(
                Opts::new(
                    "http_requests_total",
                    "HTTP requests by route, method and status",
                ),
                &["route", "method", "status"],
            )?,
            errors: IntCounterVec::new(
                Opts::new("errors_total", "Errors by category"),
                &["category"],
            )?,
            queue_capacity: IntGauge::new(
                "queue_capacity_entries",
                "Entries the sequencer queue holds at most",
            )?,
            disk_free: IntGauge::new(
                "data_dir_free_bytes",
                "Free bytes on the data directory's filesystem",
            )?,
            disk_total: IntGauge::new(
                "data_dir_size_bytes",
                "Size of the data directory's filesystem in bytes",
            )?,
            security_events: IntCounterVec::new(
                Opts::new("security_events_total", "Security events by kind"),
                &["kind"],
            )?,
            point_reads_inline: point_reads.with_label_values(&["inline"]),
            point_reads_pool: point_reads.with_label_values(&["pool"]),
            slow_inline_reads: IntCounter::new(
                "slow_inline_reads_total",
                "Inline point reads that read from the disk or stalled (point reads then use the blocking pool for ten times as long)",
            )?,
            rebased_batches: IntCounter::new(
                "rebased_batches_total",
                "Batches moved to later indices because another instance committed first",
            )?,
            retimed_entries: IntCounter::new(
                "retimed_entries_total",
                "Entries re-stamped to the time of another instance's later entry",
            )?,
            leader: prometheus::IntGaugeVec::new(
                Opts::new(
                    "leader",
                    "Whether this instance runs the background task (1) or another does (0)",
                ),
                &["task"],
            )?,
            registry,
        };
        let r = &m.registry;
        r.register(Box::new(m.entries_appended.clone()))?;
        r.register(Box::new(m.batch_entries.clone()))?;
        r.register(Box::new(m.commit_seconds.clone()))?;
        r.register(Box::new(m.queue_depth.clone()))?;
        r.register(Box::new(m.tree_size.clone()))?;
        r.register(Box::new(m.checkpoint_timestamp.clone()))?;
        r.register(Box::new(m.http_requests.clone()))?;
        r.register(Box::new(m.errors.clone()))?;
        r.register(Box::new(m.queue_capacity.clone()))?;
        r.register(Box::new(m.disk_free.clone()))?;
        r.register(Box::new(m.disk_total.clone()))?;
        r.register(Box::new(m.security_events.clone()))?;
        r.register(Box::new(point_reads))?;
        r.register(Box::new(m.slow_inline_reads.clone()))?;
        r.register(Box::new(m.rebased_batches.clone()))?;
        r.register(Box::new(m.retimed_entries.clone()))?;
        r.register(Box::new(m.leader.clone()))?;
        // Every kind at 0 from the start, so `rate(...)` in alerts has a series to work on.
        for kind in crate::auth::SecurityEventKind::ALL {
            m.security_events.with_label_values(&[kind.as_str()]);
        }
        Ok(m)
    }

    /// The registry, for metrics that other modules own.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Records a newly published tree.
    pub fn observe_published(&self, p: &Published) {
        self.tree_size
            .set(i64::try_from(p.size).unwrap_or(i64::MAX));
        if let Ok(d) = p.signed_at.duration_since(UNIX_EPOCH) {
            self.checkpoint_timestamp.set(d.as_secs_f64());
        }
    }

    /// Records the data directory's free space.
    pub fn observe_disk(&self, s: &crate::space::DiskSpace) {
        self.disk_free
            .set(i64::try_from(s.free_bytes).unwrap_or(i64::MAX));
        self.disk_total
            .set(i64::try_from(s.total_bytes).unwrap_or(i64::MAX));
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
