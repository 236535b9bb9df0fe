//! Running the witness: [`Witness::start`] does everything that can fail before a port is used
//! (key, store, HTTP client); [`Witness::run`] serves a bound listener, runs gossip and the
//! anchors in the background, and on `shutdown` stops accepting, lets in-flight requests finish
//! (bounded by `limits.shutdown_grace_secs`), stops the background tasks and returns, releasing
//! the store.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use sealtrail_net::ratelimit::RateLimiter;
use sealtrail_spec::cosignature::{CosignatureVerifier, Cosigner};
use sealtrail_spec::note::{Ed25519Verifier, KeyError};
use sealtrail_spec::witness::origin_hash;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::anchor::{self, Latest};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::state::{Core, Log};
use crate::store::{SplitView, Store};

/// Why the witness could not start. [`StartError::category`] says which part failed.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The key file could not be loaded.
    #[error(transparent)]
    Key(#[from] crate::keys::KeyFileError),
    /// The key handed to [`Witness::start_with_key`] is not named as configured.
    #[error("the key is named {key:?}, the configured name is {configured:?}")]
    KeyName {
        /// The key's name.
        key: String,
        /// The configured name.
        configured: String,
    },
    /// A configured log key does not parse (validation checks them first).
    #[error("log {origin}: {error}")]
    LogKey {
        /// The log's origin.
        origin: String,
        /// What is wrong with the key.
        error: KeyError,
    },
    /// An anchor's token file could not be read.
    #[error(transparent)]
    AnchorToken(#[from] crate::anchor::AnchorTokenError),
    /// The TLS certificate or key could not be loaded.
    #[error("tls: {0}")]
    Tls(sealtrail_net::tls::TlsError),
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The metrics could not be registered.
    #[error("registering metrics: {0}")]
    Metrics(prometheus::Error),
    /// The HTTP client for gossip, alerts and anchors could not be built.
    #[error("HTTP client: {0}")]
    HttpClient(reqwest::Error),
}

impl StartError {
    /// A short static label: `config` (the configuration or a file it names), `key`, `store`,
    /// or `internal` (metrics, HTTP client).
    pub fn category(&self) -> &'static str {
        match self {
            StartError::Config(_)
            | StartError::LogKey { .. }
            | StartError::AnchorToken(_)
            | StartError::Tls(_) => "config",
            StartError::Key(_) | StartError::KeyName { .. } => "key",
            StartError::Store(_) => "store",
            StartError::Metrics(_) | StartError::HttpClient(_) => "internal",
        }
    }
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
            return Err(StartError::KeyName {
                key: cosigner.name().to_owned(),
                configured: config.name.clone(),
            });
        }
        let logs = logs_from_config(&config)?;
        let metrics = Metrics::new().map_err(StartError::Metrics)?;
        let client = http_client()?;
        let anchors = anchor::from_config(&config.anchors)?;
        let tls = match (&config.tls.cert_file, &config.tls.key_file) {
            (Some(cert), Some(key)) => Some(Arc::new(
                sealtrail_net::tls::Tls::load(sealtrail_net::tls::TlsFiles {
                    cert_file: cert.clone(),
                    key_file: key.clone(),
                    client_ca_file: None,
                    client_cert_optional: false,
                })
                .map_err(StartError::Tls)?,
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
        // Only configured origins get a bucket, so there are never more than the logs.
        let per_log = RateLimiter::new(r.per_log_per_second, r.per_log_burst, logs.len());
        let core = Core {
            cosigner,
            logs,
            store,
            metrics,
            per_log,
            total: RateLimiter::new(r.total_per_second, r.total_burst, 1),
            // Anchors start from what is stored: the checkpoint cosigned last before a restart
            // is anchored too, if it was not already (delivery is at least once).
            latest: watch::Sender::new(latest),
            client,
            anchors,
            tls,
            body_budget: sealtrail_net::budget::Budget::new(
                config.limits.max_inflight_body_bytes,
                config.limits.max_inflight_body_bytes_per_ip,
            ),
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
        let mut background = spawn_anchors(&core);
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

/// Builds the configured logs (the config has been validated).
fn logs_from_config(config: &Config) -> Result<Vec<Log>, StartError> {
    config
        .logs
        .iter()
        .map(|l| {
            let verifiers = l
                .keys
                .iter()
                .map(|k| {
                    Ed25519Verifier::from_vkey(k).map_err(|error| StartError::LogKey {
                        origin: l.origin.clone(),
                        error,
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Log {
                origin: l.origin.clone(),
                origin_hash: origin_hash(&l.origin),
                verifiers,
                url: l.url.as_ref().map(|u| u.trim_end_matches('/').to_owned()),
            })
        })
        .collect()
}

/// The HTTP client for gossip, alerts and anchors: rustls with the ring provider (installed as
/// the process default if none is; reqwest is built without one). Each request sets its own
/// timeout (`gossip.timeout_secs` or `anchoring.timeout_secs`).
fn http_client() -> Result<reqwest::Client, StartError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .user_agent(concat!("sealtrail-witness/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(StartError::HttpClient)
}

/// Starts the anchor tasks on the witness's client, metrics and settings.
fn spawn_anchors(core: &Core) -> Vec<tokio::task::JoinHandle<()>> {
    let context = anchor::Context {
        client: core.client.clone(),
        metrics: core.metrics.clone(),
        settings: core.config.anchoring.clone(),
        witness: core.cosigner.name().to_owned(),
    };
    anchor::spawn_all(&core.anchors, &context, &core.latest)
}

async fn serve_http(core: &Arc<Core>, listener: TcpListener, shutdown: impl Future<Output = ()>) {
    let limits = &core.config.limits;
    let opts = sealtrail_net::http::HttpOptions {
        header_timeout: Duration::from_secs(limits.header_timeout_secs),
        max_connections: limits.max_connections,
        max_connections_per_ip: limits.max_connections_per_ip,
        shutdown_grace: Duration::from_secs(limits.shutdown_grace_secs),
        // A client that reads nothing of its answer for a whole request timeout is let go.
        write_timeout: Duration::from_secs(limits.request_timeout_secs),
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
    let on_limit: Arc<sealtrail_net::http::ConnLimitFn> = Arc::new(|l| {
        if let sealtrail_net::http::ConnLimit::PerIp(ip) = l {
            tracing::warn!(%ip, "per-address connection limit reached: connection closed");
        }
    });
    sealtrail_net::http::serve(listener, app, opts, tls, None, Some(on_limit), shutdown).await;
    if let Some(r) = reloader {
        r.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAME: &str = "witness.example/w";

    fn config(extra: &str) -> Config {
        Config::from_toml(&format!("name = \"{NAME}\"\nkey_file = \"w.key\"\n{extra}")).unwrap()
    }

    fn cosigner(name: &str) -> Cosigner {
        Cosigner::from_seed(name, [7; 32]).unwrap()
    }

    #[test]
    fn a_key_of_another_name_is_a_key_error() {
        let err = Witness::start_with_key(config(""), cosigner("other")).unwrap_err();
        assert!(
            matches!(&err, StartError::KeyName { key, configured }
                if key == "other" && configured == NAME),
            "{err:?}"
        );
        assert_eq!(err.category(), "key");
        assert_eq!(
            err.to_string(),
            format!("the key is named \"other\", the configured name is \"{NAME}\"")
        );
    }

    #[test]
    fn an_unreadable_anchor_token_file_is_a_config_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no-token");
        let c = config(&format!(
            "[[anchors]]\nkind = \"sealtrail\"\nurl = \"http://127.0.0.1:1\"\n\
             bearer_token_file = \"{}\"\n",
            missing.display()
        ));
        let err = Witness::start_with_key(c, cosigner(NAME)).unwrap_err();
        assert!(
            matches!(&err, StartError::AnchorToken(e) if e.path == missing),
            "{err:?}"
        );
        assert_eq!(err.category(), "config");
        let prefix = format!("anchor token file {}: ", missing.display());
        assert!(err.to_string().starts_with(&prefix), "{err}");
        // Nothing was created where the store would be.
        assert!(!dir.path().join("data").exists());
    }
}
