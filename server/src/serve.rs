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
use crate::witnessing::Witnessing;

/// A started log: store open, state recovered and checked, sequencer running.
#[derive(Debug)]
pub struct Server {
    state: AppState,
    sequencer: std::thread::JoinHandle<()>,
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
            // Only for a real data directory (in-memory test stores have none).
            disk_guard: config
                .data_dir
                .is_dir()
                .then(|| (config.data_dir.clone(), config.limits.min_free_bytes)),
        };
        let verifier_key = signer.verifier().to_vkey();
        metrics
            .queue_capacity
            .set(i64::try_from(config.limits.queue_entries).unwrap_or(i64::MAX));
        let witnessing = Arc::new(
            Witnessing::new(&config, &verifier_key, metrics.registry())
                .map_err(|e| StartError::Config(e.to_string()))?,
        );
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
                witnessing,
            },
            sequencer,
        })
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
    pub async fn run(self, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        let limits = self.state.config.limits.clone();
        let app = router(self.state.clone());
        let mut witness_tasks = self
            .state
            .witnessing
            .spawn(self.state.seq.clone(), self.state.store.clone());
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
        witness_tasks.abort_all();
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
        self.stop().await;
    }

    /// Stops the sequencer after it has committed and answered everything queued.
    pub async fn stop(self) {
        self.state.seq.shutdown();
        let Server { state, sequencer } = self;
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
