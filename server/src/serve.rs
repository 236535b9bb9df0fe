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

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use sealtrail_spec::note::Ed25519Signer;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt as _;

use crate::api::{AppState, TileCache, router};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::sequencer::{self, SequencerConfig, SequencerHandle, StartError};
use crate::store::LogStore;

/// A started log: store open, state recovered and checked, sequencer running.
#[derive(Debug)]
pub struct Server {
    state: AppState,
    sequencer: std::thread::JoinHandle<()>,
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
            Metrics::new()
                .map_err(|e| StartError::Inconsistent(format!("registering metrics: {e}")))?,
        );
        let seq_config = SequencerConfig {
            origin: config.origin.clone(),
            queue_entries: config.limits.queue_entries,
            commit_max_entries: config.limits.commit_max_entries,
        };
        let verifier_key = signer.verifier().to_vkey();
        let forward =
            crate::forward::Prepared::new(&config.forward).map_err(StartError::Forward)?;
        let security_events = forward.security_events();
        let (seq, sequencer) =
            sequencer::start(store.clone(), signer, &seq_config, metrics.clone())?;
        Ok(Server {
            state: AppState {
                store,
                seq,
                config: Arc::new(config),
                verifier_key: verifier_key.into(),
                metrics,
                cache: Arc::new(TileCache::default()),
            },
            sequencer,
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

    /// Serves `listener` until `shutdown` resolves, then shuts down gracefully.
    pub async fn run(mut self, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        let limits = self.state.config.limits.clone();
        let forwarders = self.start_forwarding();
        let app = router(self.state.clone());
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout())
            .keep_alive(true);
        let graceful = GracefulShutdown::new();
        let connections = Arc::new(Semaphore::new(limits.max_connections));
        tokio::pin!(shutdown);
        loop {
            let permit = tokio::select! {
                () = &mut shutdown => break,
                p = connections.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => break,
                },
            };
            let (stream, peer) = tokio::select! {
                () = &mut shutdown => break,
                r = listener.accept() => match r {
                    Ok(s) => s,
                    Err(e) => {
                        // Out of file descriptors and similar: log, back off briefly, go on.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let _ = stream.set_nodelay(true);
            let app = app.clone();
            let service = hyper::service::service_fn(move |req| app.clone().oneshot(req));
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            let conn = graceful.watch(conn);
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                drop(permit);
            });
        }
        drop(listener);
        tracing::info!("shutting down: no longer accepting connections");
        let grace = Duration::from_secs(limits.shutdown_grace_secs);
        if tokio::time::timeout(grace, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!(
                "in-flight requests did not finish within {}s",
                grace.as_secs()
            );
        }
        if let Some(f) = forwarders {
            f.stop().await;
        }
        self.stop().await;
    }

    /// Starts the forwarding sinks (once; `None` if already started or none could register
    /// metrics).
    fn start_forwarding(&mut self) -> Option<crate::forward::Forwarders> {
        let prepared = self.forward.take()?;
        let metrics = match crate::forward::ForwardMetrics::new(self.state.metrics.registry()) {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(error = %e, "forwarding metrics; sinks not started");
                return None;
            }
        };
        Some(prepared.spawn(
            self.state.store.clone(),
            &self.state.config.origin,
            self.state.seq.subscribe(),
            metrics,
        ))
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

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received");
}
