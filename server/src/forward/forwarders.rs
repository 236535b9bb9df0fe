//! Building, starting and stopping the sinks: [`Prepared`] (every sink built, nothing running),
//! [`Forwarders`] (one task per sink), and the [`SecurityEvents`] feed that reaches the sinks
//! configured with `security_events = true`.

use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::config::SinkConfigError;
use super::run::{Ctx, SECURITY_QUEUE, run_sink};
use super::sink::{OpenError, Sink};
use super::{ForwardMetrics, SinkConfig, validate_all};
use crate::published::Published;
use crate::store::LogStore;

/// Why the sinks could not be prepared: a configuration error, or a sink that cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// A `[[forward]]` section is invalid (see [`SinkConfig::validate`]).
    #[error(transparent)]
    Config(#[from] SinkConfigError),
    /// A sink cannot be built (unreadable CA file, bad URL, unwritable file).
    #[error(transparent)]
    Open(#[from] OpenError),
}

impl PrepareError {
    /// A short static label for metrics and logs: the underlying error's category.
    pub fn category(&self) -> &'static str {
        match self {
            PrepareError::Config(e) => e.category(),
            PrepareError::Open(e) => e.category(),
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
                m.security_event_dropped(name);
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
    pub fn new(configs: &[SinkConfig]) -> Result<Self, PrepareError> {
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
        lead: watch::Receiver<bool>,
    ) -> Forwarders {
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut security = self.security;
        security.metrics = Some(metrics.clone());
        // Every sink's series exist before any task runs.
        let sink_metrics: Vec<_> = self
            .sinks
            .iter()
            .map(|(cfg, _, _)| metrics.sink(&cfg.name))
            .collect();
        let ctx = Ctx {
            store,
            origin: origin.to_owned(),
            published,
            stop: stop_rx,
            lead,
        };
        let tasks = self
            .sinks
            .into_iter()
            .zip(sink_metrics)
            .map(|((cfg, sink, rx), m)| tokio::spawn(run_sink(cfg, sink, rx, ctx.clone(), m)))
            .collect();
        Forwarders {
            tasks,
            stop: stop_tx,
            security,
            always_lead: None,
        }
    }
}

/// The running sinks.
#[derive(Debug)]
pub struct Forwarders {
    tasks: Vec<JoinHandle<()>>,
    stop: watch::Sender<bool>,
    security: SecurityEvents,
    /// Keeps the lead open for [`Forwarders::start`], which always leads.
    always_lead: Option<watch::Sender<bool>>,
}

impl Forwarders {
    /// [`Prepared::new`] then [`Prepared::spawn`].
    pub fn start(
        sinks: &[SinkConfig],
        store: Arc<dyn LogStore>,
        origin: &str,
        published: watch::Receiver<Arc<Published>>,
        metrics: ForwardMetrics,
    ) -> Result<Self, PrepareError> {
        let (lead, follows) = watch::channel(true);
        let mut f = Prepared::new(sinks)?.spawn(store, origin, published, metrics, follows);
        f.always_lead = Some(lead);
        Ok(f)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forward::SinkKind;

    #[test]
    fn preparing_fails_on_the_first_invalid_or_unbuildable_sink() {
        let dir = tempfile::tempdir().unwrap();
        let mut good = SinkConfig::new("good", SinkKind::File);
        good.path = Some(dir.path().join("good.jsonl"));
        good.security_events = true;
        let mut bad_url = SinkConfig::new("w", SinkKind::Webhook);
        bad_url.url = Some("not a url".into());
        let e = Prepared::new(&[good.clone(), bad_url]).unwrap_err();
        assert!(matches!(e, PrepareError::Open(_)), "{e:?}");
        assert_eq!(e.category(), "request");
        assert!(e.to_string().starts_with("forward w: url "), "{e}");
        let e =
            Prepared::new(&[good.clone(), SinkConfig::new("w", SinkKind::Webhook)]).unwrap_err();
        assert!(matches!(e, PrepareError::Config(_)), "{e:?}");
        assert_eq!(
            (e.category(), e.to_string()),
            ("missing_field", "forward w: Webhook needs url".to_owned())
        );
        let p = Prepared::new(&[good]).unwrap();
        assert_eq!(p.sinks.len(), 1);
        assert_eq!(
            p.security_events().sinks.len(),
            1,
            "it asked for security events"
        );
    }
}
