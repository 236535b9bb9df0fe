//! Forwarding metrics, one series per sink (label `sink`): lag in entries and seconds, events
//! acknowledged, failed attempts, retries, and security events dropped.
//!
//! [`ForwardMetrics`] registers the families; [`SinkMetrics`] is one sink's series, resolved once
//! when the sink starts, so its task updates them without looking the label up again.

use prometheus::{IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

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

    /// The series of sink `name`, every one created at 0, so a configured sink is visible in
    /// `/metrics` (and alerts see `rate(...) == 0`) before its first send or failure.
    pub(super) fn sink(&self, name: &str) -> SinkMetrics {
        let label = [name];
        SinkMetrics {
            lag_entries: self.lag_entries.with_label_values(&label),
            lag_seconds: self.lag_seconds.with_label_values(&label),
            sent: self.sent.with_label_values(&label),
            failed: self.failed.with_label_values(&label),
            retries: self.retries.with_label_values(&label),
            dropped: self.dropped.with_label_values(&label),
        }
    }

    /// Counts one security event dropped for sink `name` (its queue was full).
    pub(super) fn security_event_dropped(&self, name: &str) {
        self.dropped.with_label_values(&[name]).inc();
    }
}

/// One sink's series (see [`ForwardMetrics::sink`]).
#[derive(Debug, Clone)]
pub(super) struct SinkMetrics {
    lag_entries: IntGauge,
    lag_seconds: IntGauge,
    sent: IntCounter,
    failed: IntCounter,
    retries: IntCounter,
    dropped: IntCounter,
}

/// `v` as a gauge value, saturating.
fn gauge_value(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl SinkMetrics {
    /// Committed entries not acknowledged yet.
    pub(super) fn set_lag_entries(&self, entries: u64) {
        self.lag_entries.set(gauge_value(entries));
    }

    /// Age in seconds of the oldest entry not acknowledged yet (0 when caught up).
    pub(super) fn set_lag_seconds(&self, seconds: u64) {
        self.lag_seconds.set(gauge_value(seconds));
    }

    /// `events` acknowledged by the sink.
    pub(super) fn sent(&self, events: u64) {
        self.sent.inc_by(events);
    }

    /// One failed send, to be retried.
    pub(super) fn failed_attempt(&self) {
        self.failed.inc();
        self.retries.inc();
    }

    /// `events` security events lost (sent once with a failed batch, never retried).
    pub(super) fn dropped(&self, events: u64) {
        self.dropped.inc_by(events);
    }
}

#[cfg(test)]
mod tests {
    use prometheus::proto::MetricType;

    use super::*;

    /// `(name, sink label, value)` of every sample in `registry`.
    fn samples(registry: &Registry) -> Vec<(String, String, f64)> {
        let mut out = Vec::new();
        for family in registry.gather() {
            for m in family.get_metric() {
                let sink = m
                    .get_label()
                    .iter()
                    .find(|l| l.name() == "sink")
                    .map(|l| l.value().to_owned())
                    .unwrap_or_default();
                let value = match family.get_field_type() {
                    MetricType::GAUGE => m.get_gauge().get_value(),
                    _ => m.get_counter().get_value(),
                };
                out.push((family.name().to_owned(), sink, value));
            }
        }
        out.sort_by(|a, b| a.partial_cmp(b).unwrap());
        out
    }

    #[test]
    fn a_sink_is_visible_at_zero_and_updates_only_its_series() {
        let registry = Registry::new();
        let m = ForwardMetrics::new(&registry).unwrap();
        assert!(samples(&registry).is_empty());
        let a = m.sink("a");
        m.sink("b");
        let zero = |sink: &str| {
            [
                "forward_dropped_events_total",
                "forward_failed_total",
                "forward_lag_entries",
                "forward_lag_seconds",
                "forward_retries_total",
                "forward_sent_total",
            ]
            .map(|n| (n.to_owned(), sink.to_owned(), 0.0))
        };
        let mut want: Vec<_> = zero("a").into_iter().chain(zero("b")).collect();
        want.sort_by(|x, y| x.partial_cmp(y).unwrap());
        assert_eq!(samples(&registry), want);

        a.set_lag_entries(7);
        a.set_lag_seconds(u64::MAX);
        a.sent(3);
        a.sent(2);
        a.failed_attempt();
        a.dropped(4);
        m.security_event_dropped("a");
        let got: Vec<_> = samples(&registry)
            .into_iter()
            .filter(|s| s.1 == "a")
            .collect();
        assert_eq!(
            got,
            vec![
                ("forward_dropped_events_total".into(), "a".into(), 5.0),
                ("forward_failed_total".into(), "a".into(), 1.0),
                ("forward_lag_entries".into(), "a".into(), 7.0),
                ("forward_lag_seconds".into(), "a".into(), i64::MAX as f64),
                ("forward_retries_total".into(), "a".into(), 1.0),
                ("forward_sent_total".into(), "a".into(), 5.0),
            ]
        );
        assert!(
            samples(&registry)
                .iter()
                .filter(|s| s.1 == "b")
                .all(|s| s.2 == 0.0),
            "sink b is untouched"
        );
    }
}
