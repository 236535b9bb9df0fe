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
    /// Seconds to the response head, by route and status class (`2xx`...`5xx`).
    pub http_duration: prometheus::HistogramVec,
    /// The process's own metrics (`process_*`, without the `sealtrail_` prefix, as dashboards
    /// expect them), refreshed at every scrape.
    process: Process,
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
            http_duration: prometheus::HistogramVec::new(
                HistogramOpts::new(
                    "http_request_duration_seconds",
                    "Seconds from a request's arrival to its response head, by route and status class",
                )
                .buckets(buckets(0.00025, 2.0, 16)),
                &["route", "status_class"],
            )?,
            process: Process::new()?,
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
        r.register(Box::new(m.http_duration.clone()))?;
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

    /// Records one answered request (`status` as its three digits).
    pub fn observe_request(&self, route: &str, method: &str, status: &str, seconds: f64) {
        self.http_requests
            .with_label_values(&[route, method, status])
            .inc();
        let class = match status.as_bytes().first() {
            Some(b'1') => "1xx",
            Some(b'2') => "2xx",
            Some(b'3') => "3xx",
            Some(b'4') => "4xx",
            _ => "5xx",
        };
        self.http_duration
            .with_label_values(&[route, class])
            .observe(seconds);
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        self.process.refresh();
        let mut families = self.registry.gather();
        families.extend(self.process.registry.gather());
        let mut buf = Vec::new();
        if TextEncoder::new().encode(&families, &mut buf).is_err() {
            return String::new();
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

/// The process's CPU time, memory, file descriptors and threads, read from the kernel at every
/// scrape (`getrusage`, `getrlimit`, `/proc/self/status`, `/proc/self/fd`), under the names of
/// the Prometheus client libraries' process collectors. Read here rather than with the
/// `prometheus` crate's `process` feature, which brings `procfs` and a second `rustix`.
#[derive(Debug, Clone)]
struct Process {
    registry: Registry,
    cpu: IntCounter,
    cpu_micros_seen: std::sync::Arc<std::sync::atomic::AtomicU64>,
    rss: IntGauge,
    virtual_memory: IntGauge,
    open_fds: IntGauge,
    max_fds: IntGauge,
    threads: IntGauge,
    start_time: Gauge,
}

impl Process {
    fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let p = Process {
            cpu: IntCounter::new(
                "process_cpu_seconds_total",
                "User and system CPU time spent, in seconds (whole seconds; see process_cpu_microseconds_total)",
            )?,
            cpu_micros_seen: Default::default(),
            rss: IntGauge::new(
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
            )?,
            virtual_memory: IntGauge::new(
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes",
            )?,
            open_fds: IntGauge::new("process_open_fds", "Open file descriptors")?,
            max_fds: IntGauge::new(
                "process_max_fds",
                "Maximum open file descriptors (soft limit)",
            )?,
            threads: IntGauge::new("process_threads", "Operating system threads")?,
            start_time: Gauge::new(
                "process_start_time_seconds",
                "Start time of the process since the Unix epoch, in seconds",
            )?,
            registry,
        };
        for m in [
            &p.rss,
            &p.virtual_memory,
            &p.open_fds,
            &p.max_fds,
            &p.threads,
        ] {
            p.registry.register(Box::new(m.clone()))?;
        }
        p.registry.register(Box::new(p.cpu.clone()))?;
        p.registry.register(Box::new(p.start_time.clone()))?;
        if let Ok(d) = std::time::SystemTime::now().duration_since(UNIX_EPOCH) {
            p.start_time.set(d.as_secs_f64());
        }
        p.refresh();
        Ok(p)
    }

    fn refresh(&self) {
        use nix::sys::resource::{Resource, UsageWho, getrlimit, getrusage};
        use std::sync::atomic::Ordering;
        if let Ok(u) = getrusage(UsageWho::RUSAGE_SELF) {
            let micros = |t: nix::sys::time::TimeVal| {
                u64::try_from(t.tv_sec()).unwrap_or(0) * 1_000_000
                    + u64::try_from(t.tv_usec()).unwrap_or(0)
            };
            let total = micros(u.user_time()) + micros(u.system_time());
            // The counter counts whole seconds; the remainder waits for the next scrape.
            let seen = self.cpu_micros_seen.load(Ordering::Relaxed);
            let secs = total.saturating_sub(seen) / 1_000_000;
            if secs > 0 {
                self.cpu_micros_seen
                    .fetch_add(secs * 1_000_000, Ordering::Relaxed);
                self.cpu.inc_by(secs);
            }
        }
        if let Ok((soft, _)) = getrlimit(Resource::RLIMIT_NOFILE) {
            self.max_fds.set(i64::try_from(soft).unwrap_or(i64::MAX));
        }
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            self.open_fds
                .set(i64::try_from(dir.count()).unwrap_or(i64::MAX));
        }
        if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
            for line in status.lines() {
                let value = |prefix: &str| {
                    line.strip_prefix(prefix)?
                        .trim()
                        .trim_end_matches(" kB")
                        .parse::<i64>()
                        .ok()
                };
                if let Some(kb) = value("VmRSS:") {
                    self.rss.set(kb * 1024);
                } else if let Some(kb) = value("VmSize:") {
                    self.virtual_memory.set(kb * 1024);
                } else if let Some(n) = value("Threads:") {
                    self.threads.set(n);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::metric;

    #[test]
    fn request_durations_by_route_and_status_class_and_process_metrics() {
        let m = Metrics::new().unwrap();
        m.observe_request("/v1/entries", "POST", "201", 0.003);
        m.observe_request("/v1/entries", "POST", "503", 0.0001);
        m.observe_request("/v1/entries", "POST", "201", 2.0);
        let text = m.render();
        let samples =
            crate::status::metric_samples(&text, "sealtrail_http_request_duration_seconds_count");
        assert!(
            samples.contains(&("route=\"/v1/entries\",status_class=\"2xx\"", 2.0)),
            "{samples:?}"
        );
        assert!(samples.contains(&("route=\"/v1/entries\",status_class=\"5xx\"", 1.0)));
        // 3 ms and 2 s fall on either side of the 4 ms bucket (0.25 ms doubling).
        let buckets =
            crate::status::metric_samples(&text, "sealtrail_http_request_duration_seconds_bucket");
        assert!(
            buckets.contains(&(
                "route=\"/v1/entries\",status_class=\"2xx\",le=\"0.004\"",
                1.0
            )),
            "{buckets:?}"
        );
        let counts = crate::status::metric_samples(&text, "sealtrail_http_requests_total");
        assert!(counts.contains(&("method=\"POST\",route=\"/v1/entries\",status=\"201\"", 2.0)));
        // The process's own figures, under the usual names, read from the kernel.
        let rss = metric(&text, "process_resident_memory_bytes").unwrap();
        assert!(rss > 1e6, "{rss}");
        assert!(metric(&text, "process_open_fds").unwrap() >= 3.0);
        assert!(
            metric(&text, "process_max_fds").unwrap() >= metric(&text, "process_open_fds").unwrap()
        );
        assert!(metric(&text, "process_threads").unwrap() >= 1.0);
        assert!(metric(&text, "process_virtual_memory_bytes").unwrap() >= rss);
        assert!(metric(&text, "process_start_time_seconds").unwrap() > 1.7e9);
        assert!(metric(&text, "process_cpu_seconds_total").is_some());
    }
}
