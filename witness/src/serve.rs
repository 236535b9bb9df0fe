//! Running the witness: [`Witness::start`] does everything that can fail before a port is used
//! (key, store, HTTP client); [`Witness::run`] serves a bound listener, runs gossip and the
//! anchors in the background, and on `shutdown` stops accepting, lets in-flight requests finish
//! (bounded by `limits.shutdown_grace_secs`), stops the background tasks and returns, releasing
//! the store.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use sealtrail_spec::cosignature::{CosignatureVerifier, Cosigner};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt as _;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::ratelimit::RateLimiter;
use crate::state::{Core, Latest, http_client, logs_from_config};
use crate::store::{SplitView, Store};

/// Why the witness could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The key file could not be loaded.
    #[error(transparent)]
    Key(#[from] crate::keys::KeyFileError),
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// Anything else (metrics registry, HTTP client).
    #[error("{0}")]
    Other(String),
}

/// A started witness. Cloning is cheap and shares everything; the store is released when
/// [`Witness::run`] has returned and every clone is dropped.
#[derive(Debug, Clone)]
pub struct Witness {
    core: Arc<Core>,
}

impl Witness {
    /// Validates `config`, loads the key from `config.key_file` and opens the store.
    pub fn start(config: Config) -> Result<Self, StartError> {
        config.validate()?;
        let cosigner = crate::keys::load(&config.key_file, &config.name)?;
        Self::start_with_key(config, cosigner)
    }

    /// Like [`Witness::start`] with a key already in hand (its name must be `config.name`).
    pub fn start_with_key(config: Config, cosigner: Cosigner) -> Result<Self, StartError> {
        config.validate()?;
        if cosigner.name() != config.name {
            return Err(StartError::Other(format!(
                "the key is named {:?}, the configured name is {:?}",
                cosigner.name(),
                config.name
            )));
        }
        let logs = logs_from_config(&config).map_err(StartError::Other)?;
        let metrics =
            Metrics::new().map_err(|e| StartError::Other(format!("registering metrics: {e}")))?;
        let client = http_client().map_err(StartError::Other)?;
        let anchors = crate::anchor::from_config(&config.anchors).map_err(StartError::Other)?;
        let store = Store::open(&config.data_dir)?;
        let mut latest = BTreeMap::new();
        for log in &logs {
            metrics
                .split_view
                .with_label_values(&[log.origin.as_str()])
                .set(i64::from(store.split_view(&log.origin)?.is_some()));
            if let Some(c) = store.latest(&log.origin)? {
                metrics
                    .cosigned_size
                    .with_label_values(&[log.origin.as_str()])
                    .set(crate::metrics::gauge_value(c.checkpoint.size()));
                latest.insert(
                    log.origin.clone(),
                    Latest {
                        origin: log.origin.clone(),
                        size: c.checkpoint.size(),
                        root_base64: c.checkpoint.root().to_base64(),
                        note: String::from_utf8_lossy(&c.note).into_owned(),
                    },
                );
            }
        }
        let r = &config.rate_limits;
        let core = Core {
            cosigner,
            logs,
            store,
            metrics,
            per_log: RateLimiter::new(r.per_log_per_second, r.per_log_burst),
            total: RateLimiter::new(r.total_per_second, r.total_burst),
            // Anchors start from what is stored: the checkpoint cosigned last before a restart
            // is anchored too, if it was not already (delivery is at least once).
            latest: watch::Sender::new(latest),
            client,
            anchors,
            config,
        };
        Ok(Witness {
            core: Arc::new(core),
        })
    }

    /// The witness's cosignature verifier (its vkey is `verifier().to_vkey()`).
    pub fn verifier(&self) -> CosignatureVerifier {
        self.core.cosigner.verifier()
    }

    /// The metrics, for tests and embedding.
    pub fn metrics(&self) -> &Metrics {
        &self.core.metrics
    }

    /// Every recorded split view.
    pub async fn split_views(&self) -> Result<Vec<SplitView>, crate::store::StoreError> {
        self.core.with_store(|s| s.split_views()).await
    }

    /// Runs one gossip round now: every peer and log URL, every configured log.
    pub async fn gossip_once(&self) {
        crate::gossip::round(&self.core).await;
    }

    /// Serves `listener` until `shutdown` resolves, with gossip (every `gossip.interval_secs`,
    /// unless 0) and the anchors running in the background.
    pub async fn run(self, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        let core = self.core;
        let mut background = crate::anchor::spawn_all(&core);
        if core.config.gossip.interval_secs > 0 {
            let c = core.clone();
            background.push(tokio::spawn(async move { crate::gossip::run(c).await }));
        }
        serve_http(&core, listener, shutdown).await;
        for task in &background {
            task.abort();
        }
        for task in background {
            let _ = task.await;
        }
        tracing::info!("stopped");
    }
}

async fn serve_http(core: &Arc<Core>, listener: TcpListener, shutdown: impl Future<Output = ()>) {
    let limits = core.config.limits.clone();
    let app = crate::api::router(core.clone());
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(limits.header_timeout_secs))
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
        let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    drop(app);
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
