//! Running the witness: [`Witness::start`] does everything that can fail before a port is used
//! (key, store, HTTP client); [`Witness::run`] serves a bound listener, runs gossip and the
//! anchors in the background, and on `shutdown` stops accepting, lets in-flight requests finish
//! (bounded by `limits.shutdown_grace_secs`), stops the background tasks and returns, releasing
//! the store.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use sealtrail_spec::cosignature::{CosignatureVerifier, Cosigner};
use tokio::net::TcpListener;
use tokio::sync::watch;

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
        let tls = match (&config.tls.cert_file, &config.tls.key_file) {
            (Some(cert), Some(key)) => Some(Arc::new(
                sealtrail_net::tls::Tls::load(sealtrail_net::tls::TlsFiles {
                    cert_file: cert.clone(),
                    key_file: key.clone(),
                    client_ca_file: None,
                    client_cert_optional: false,
                })
                .map_err(|e| StartError::Other(format!("tls: {e}")))?,
            )),
            _ => None,
        };
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
            tls,
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
    let limits = &core.config.limits;
    let opts = sealtrail_net::http::HttpOptions {
        header_timeout: Duration::from_secs(limits.header_timeout_secs),
        max_connections: limits.max_connections,
        shutdown_grace: Duration::from_secs(limits.shutdown_grace_secs),
        tls_handshake_timeout: Duration::from_secs(limits.header_timeout_secs),
    };
    let tls = core.tls.clone().map(|tls| sealtrail_net::http::TlsSetup {
        tls,
        principal: Arc::new(|_| Ok(None)),
        refused: Arc::new(|peer, why| {
            tracing::info!(%peer, reason = why, "TLS connection refused");
        }),
    });
    // SIGHUP reloads the certificates (installed here, before the first connection).
    let reloader = core
        .tls
        .clone()
        .map(|t| tokio::spawn(sealtrail_net::signal::reload_on_sighup(t)));
    let app = crate::api::router(core.clone());
    sealtrail_net::http::serve(listener, app, opts, tls, None, shutdown).await;
    if let Some(r) = reloader {
        r.abort();
    }
}
