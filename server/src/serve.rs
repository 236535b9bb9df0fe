//! Running the server: open the store, start the sequencer, accept connections, shut down
//! gracefully.
//!
//! [`Server::start`] does everything that can fail before a port is used (store, key, recovery);
//! [`Server::run`] serves a bound listener until `shutdown` resolves, then stops accepting, lets
//! in-flight requests finish (bounded by `shutdown_grace_secs`), has the sequencer commit and answer
//! everything queued, and returns. Tests bind `127.0.0.1:0` and call the same functions as `main`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use sealtrail_spec::note::Ed25519Signer;
use tokio::net::TcpListener;

use crate::api::{AppState, ReadPath, SharedState, TileCache, router};
use crate::auth::{Guard, SecurityEvent, SecurityEventKind};
use crate::config::Config;
use crate::leader::{self, Leader};
use crate::metrics::Metrics;
use crate::sequencer::{self, SequencerConfig, SequencerHandle, StartError};
use crate::store::LogStore;
use crate::tls::Tls;
use crate::witnessing::Witnessing;

/// A started log: store open, state recovered and checked, sequencer running.
#[derive(Debug)]
pub struct Server {
    state: AppState,
    sequencer: std::thread::JoinHandle<()>,
    tls: Option<Arc<Tls>>,
    /// Forwarding sinks, started by [`Server::run`].
    forward: Option<crate::forward::Prepared>,
    security_events: crate::forward::SecurityEvents,
}

impl Server {
    /// Recovers the log from `store` and starts its sequencer.
    pub fn start(
        config: Config,
        store: Arc<dyn LogStore>,
        signer: Ed25519Signer,
    ) -> Result<Self, StartError> {
        let metrics = Arc::new(
            Metrics::new().map_err(|e| StartError::Config(format!("registering metrics: {e}")))?,
        );
        let seq_config = SequencerConfig {
            origin: config.origin.clone(),
            queue_entries: config.limits.queue_entries,
            commit_max_entries: config.limits.commit_max_entries,
            // Only where the store's data is in the data directory (in-memory test stores have
            // none; with PostgreSQL it holds only the key, and the database guards its disk).
            disk_guard: (config.data_dir.is_dir() && !store.shared())
                .then(|| (config.data_dir.clone(), config.limits.min_free_bytes)),
        };
        let verifier_key = signer.verifier().to_vkey();
        metrics
            .queue_capacity
            .set(i64::try_from(config.limits.queue_entries).unwrap_or(i64::MAX));
        let witnessing = Arc::new(
            Witnessing::new(
                &config.witnessing,
                &config.origin,
                &verifier_key,
                metrics.registry(),
            )
            .map_err(|e| StartError::Config(e.to_string()))?,
        );
        // Access control and TLS files are checked before the sequencer starts.
        let guard = Guard::new(
            config.guard_settings(),
            Some(metrics.security_events.clone()),
        )
        .map_err(|e| StartError::Config(e.to_string()))?;
        let tls = Tls::load(&config.tls)
            .map_err(|e| StartError::Config(format!("tls: {e}")))?
            .map(Arc::new);
        let forward = crate::forward::Prepared::new(&config.forward)
            .map_err(|e| StartError::Forward(e.to_string()))?;
        let security_events = forward.security_events();
        let l = &config.limits;
        let body_budget = sealtrail_net::budget::Budget::new(
            l.max_inflight_body_bytes,
            l.max_inflight_body_bytes_per_ip,
        );
        let outbound = crate::api::ResponseBudget::new(
            l.max_inflight_response_bytes,
            l.max_inflight_response_bytes_per_ip,
        );
        let (seq, sequencer) =
            sequencer::start(store.clone(), signer.clone(), &seq_config, metrics.clone())?;
        Ok(Server {
            state: AppState::new(SharedState {
                store,
                seq,
                config: Arc::new(config),
                verifier_key: verifier_key.into(),
                metrics,
                cache: Arc::new(TileCache::default()),
                reads: Arc::new(ReadPath::default()),
                witnessing,
                guard: Arc::new(guard),
                body_budget,
                outbound,
                signer,
                evidence_builds: Arc::new(tokio::sync::Semaphore::new(1)),
            }),
            sequencer,
            tls,
            forward: Some(forward),
            security_events,
        })
    }

    /// Feeds non-entry events (access control, witness alarms) to the sinks configured with
    /// `security_events = true`, best-effort.
    pub fn security_events(&self) -> crate::forward::SecurityEvents {
        self.security_events.clone()
    }

    /// The shared state (for tests and in-process use).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The sequencer handle.
    pub fn sequencer(&self) -> &SequencerHandle {
        &self.state.seq
    }

    /// The TLS state, when TLS is on (to reload certificates).
    pub fn tls(&self) -> Option<&Arc<Tls>> {
        self.tls.as_ref()
    }

    /// Serves `listener` until `shutdown` resolves, then shuts down gracefully. With TLS on,
    /// every connection is a TLS connection (handshake bounded by
    /// `limits.tls_handshake_timeout_secs`); see [`reload_on_sighup`] for certificate reloads.
    pub async fn run(mut self, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        let limits = self.state.config.limits.clone();
        let forwarders = self.start_forwarding();
        let security_feed = tokio::spawn(feed_security_events(
            self.state.guard.events.subscribe(),
            self.security_events.clone(),
        ));
        let app = router(self.state.clone());
        // Background singletons: on a shared store one instance runs each (see `leader`).
        let store = self.state.store.clone();
        let mut background = tokio::task::JoinSet::new();
        let mut leaders = Vec::new();
        if self.state.witnessing.enabled() {
            let lead = Leader::spawn(store.clone(), "witnessing", self.state.metrics.clone());
            let (w, seq, s) = (
                self.state.witnessing.clone(),
                self.state.seq.clone(),
                store.clone(),
            );
            background.spawn(leader::while_leading(lead.watch(), move || {
                let tasks = w.spawn(seq.clone(), s.clone());
                async move {
                    // Aborted on standing down, which drops (and aborts) the witness tasks.
                    let _tasks = tasks;
                    std::future::pending::<()>().await;
                }
            }));
            background.spawn(self.state.witnessing.clone().share(store.clone()));
            leaders.push(lead);
        }
        if !self.state.config.retention.is_empty() {
            let lead = Leader::spawn(store.clone(), "retention", self.state.metrics.clone());
            let (seq, s) = (self.state.seq.clone(), store.clone());
            let rules = self.state.config.retention.clone();
            let every = Duration::from_secs(self.state.config.retention_interval_secs);
            background.spawn(leader::while_leading(lead.watch(), move || {
                crate::retention::run(s.clone(), seq.clone(), rules.clone(), every)
            }));
            leaders.push(lead);
        }
        let opts = sealtrail_net::http::HttpOptions {
            header_timeout: limits.header_timeout(),
            max_connections: limits.max_connections,
            max_connections_per_ip: limits.max_connections_per_ip,
            shutdown_grace: Duration::from_secs(limits.shutdown_grace_secs),
            write_timeout: limits.write_timeout(),
            tls_handshake_timeout: limits.tls_handshake_timeout(),
        };
        let events = self.state.guard.events.clone();
        let tls = self.tls.clone().map(|tls| {
            let refused_events = events.clone();
            let named = tls.clone();
            sealtrail_net::http::TlsSetup {
                tls: tls.acceptor(),
                principal: Arc::new(move |certs| named.client_principal(certs)),
                refused: Arc::new(move |peer, why| {
                    refused_events.record(SecurityEvent::new(
                        SecurityEventKind::TlsHandshake,
                        None,
                        Some(peer.ip()),
                        "",
                        "",
                        why,
                    ));
                }),
            }
        });
        // Requests hyper refuses before the router sees them are security events too.
        let on_error: Arc<sealtrail_net::http::ConnErrorFn> = Arc::new(move |peer, e| {
            let kind = if e.is_timeout() {
                SecurityEventKind::Timeout
            } else if e.is_parse_too_large() {
                SecurityEventKind::Oversized
            } else if e.is_parse() {
                SecurityEventKind::Malformed
            } else {
                return;
            };
            events.record(SecurityEvent::new(
                kind,
                None,
                Some(peer.ip()),
                "",
                "",
                &e.to_string(),
            ));
        });
        let limit_events = self.state.guard.events.clone();
        let limit_metrics = self.state.metrics.clone();
        let on_limit: Arc<sealtrail_net::http::ConnLimitFn> = Arc::new(move |l| match l {
            sealtrail_net::http::ConnLimit::Total => {
                limit_metrics
                    .errors
                    .with_label_values(&["connection_limit"])
                    .inc();
            }
            sealtrail_net::http::ConnLimit::PerIp(ip) => {
                limit_metrics
                    .errors
                    .with_label_values(&["connection_limit_ip"])
                    .inc();
                limit_events.record(SecurityEvent::new(
                    SecurityEventKind::Overloaded,
                    None,
                    Some(ip),
                    "",
                    "",
                    "per-address connection limit reached: connection closed",
                ));
            }
        });
        sealtrail_net::http::serve(
            listener,
            app,
            opts,
            tls,
            Some(on_error),
            Some(on_limit),
            shutdown,
        )
        .await;
        background.abort_all();
        security_feed.abort();
        if let Some((f, lead)) = forwarders {
            f.stop().await;
            drop(lead);
        }
        drop(leaders);
        self.stop().await;
    }

    /// Starts the forwarding sinks (once; `None` if already started or none could register
    /// metrics).
    fn start_forwarding(&mut self) -> Option<(crate::forward::Forwarders, Leader)> {
        let prepared = self.forward.take()?;
        let metrics = match crate::forward::ForwardMetrics::new(self.state.metrics.registry()) {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(error = %e, "forwarding metrics; sinks not started");
                return None;
            }
        };
        let lead = Leader::spawn(
            self.state.store.clone(),
            "forwarding",
            self.state.metrics.clone(),
        );
        let forwarders = prepared.spawn(
            self.state.store.clone(),
            &self.state.config.origin,
            self.state.seq.subscribe(),
            metrics,
            lead.watch(),
        );
        Some((forwarders, lead))
    }

    /// Stops the sequencer after it has committed and answered everything queued.
    pub async fn stop(self) {
        self.state.seq.shutdown();
        let Server {
            state, sequencer, ..
        } = self;
        drop(state);
        let _ = tokio::task::spawn_blocking(move || sequencer.join()).await;
        tracing::info!("stopped");
    }
}

pub use sealtrail_net::signal::shutdown_signal;

/// Hands every security event to the sinks configured with `security_events = true`
/// (best-effort: a lagging subscriber skips what it missed and counts it in the log).
async fn feed_security_events(
    mut events: tokio::sync::broadcast::Receiver<SecurityEvent>,
    sinks: crate::forward::SecurityEvents,
) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        match events.recv().await {
            Ok(e) => match serde_json::to_value(&e) {
                Ok(v) => sinks.send(v),
                Err(err) => tracing::warn!(error = %err, "security event not serialisable"),
            },
            Err(RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "security events not forwarded: the feed lagged");
            }
            Err(RecvError::Closed) => return,
        }
    }
}

/// On every SIGHUP: re-reads the configuration with `load` and replaces the guard's `[auth]`
/// rules (tokens, JWT keys, anonymous access, private reads and metrics), then reloads the TLS
/// files when TLS is on. A reload that fails (a configuration that does not parse or validate, an
/// unreadable key file) keeps what is in force and logs why. Requests in flight finish under the
/// rules they started with. `[limits]` and the listen address are not reloaded. `main` calls this
/// before announcing that it listens (SIGHUP's default action ends the process).
pub fn reload_on_sighup(
    guard: Arc<Guard>,
    tls: Option<Arc<Tls>>,
    listen_is_loopback: bool,
    load: impl Fn() -> Result<Config, String> + Send + 'static,
) -> impl Future<Output = ()> {
    let hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup());
    async move {
        let Ok(mut hup) = hup else {
            tracing::warn!("cannot listen for SIGHUP: configuration reloads only on restart");
            return;
        };
        while hup.recv().await.is_some() {
            reload(&guard, tls.as_deref(), listen_is_loopback, &load);
        }
    }
}

/// One reload (see [`reload_on_sighup`]).
pub fn reload(
    guard: &Guard,
    tls: Option<&Tls>,
    listen_is_loopback: bool,
    load: &dyn Fn() -> Result<Config, String>,
) {
    match load() {
        Err(e) => {
            tracing::error!(error = %e, "configuration reload failed; keeping the current access rules");
        }
        Ok(config) => {
            let mut settings = config.guard_settings();
            // The socket keeps its address until a restart, and so do the rules that depend on it.
            settings.listen_is_loopback = listen_is_loopback;
            match guard.reload(settings) {
                Ok(()) => tracing::info!(
                    tokens = config.auth.tokens.len(),
                    jwt = config.auth.jwt.is_some(),
                    "access rules reloaded ([auth])"
                ),
                Err(e) => tracing::error!(
                    error = %e,
                    "access rules reload failed; keeping the current ones"
                ),
            }
        }
    }
    if let Some(tls) = tls {
        match tls.reload() {
            Ok(()) => tracing::info!("TLS certificates reloaded"),
            Err(e) => {
                tracing::error!(error = %e, "TLS reload failed; keeping the current certificates");
            }
        }
    }
}
