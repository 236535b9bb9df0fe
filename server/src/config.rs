//! Server configuration: a TOML file (every option documented in `deploy/sealtrail.example.toml`),
//! overridden by `SEALTRAIL_*` environment variables and command-line flags (handled in `main`).
//!
//! Precedence, highest first: flag, environment variable, config file, built-in default. Every
//! default is safe for production; [`Config::validate`] rejects values that could break a
//! guarantee (a payload cap the entry bundles cannot hold, a zero queue).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::store::Engine;

/// Default maximum payload size in bytes: a leaf must fit a 16-bit entry-bundle length prefix
/// together with its envelope (see `spec/docs/leaf-envelope.md`).
pub const DEFAULT_MAX_PAYLOAD: usize = 64_000;

/// Everything `sealtrail serve` needs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Directory holding the store and, by default, the signing key.
    pub data_dir: PathBuf,
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Storage engine.
    pub store: Engine,
    /// The log's origin: the first line of every checkpoint and the name of its key. Used when
    /// the key is created; afterwards it must match the key's name.
    pub origin: String,
    /// The signing key file (Go note `PRIVATE+KEY+...` format). Default: `<data_dir>/log.key`.
    pub key_file: Option<PathBuf>,
    /// Request and queue limits.
    pub limits: Limits,
    /// Logging.
    pub log: LogConfig,
    /// Forwarding sinks (`[[forward]]` sections), see `crate::forward`.
    pub forward: Vec<crate::forward::SinkConfig>,
}

/// Request, batching and queue limits. All are listed at `GET /v1/log`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest accepted payload of one entry, in bytes.
    pub max_payload_bytes: usize,
    /// Most entries in one `POST /v1/entries/batch`.
    pub max_batch_entries: usize,
    /// Largest `POST /v1/entries/batch` body, in bytes.
    pub max_batch_bytes: usize,
    /// Entries waiting for the sequencer before new writes get 503 with `Retry-After`.
    pub queue_entries: usize,
    /// Most entries the sequencer commits in one transaction (group commit cap).
    pub commit_max_entries: usize,
    /// Most entries returned by one `GET /v1/entries` page.
    pub max_page_entries: u64,
    /// Seconds a client may take to send its request headers.
    pub header_timeout_secs: u64,
    /// Seconds a whole request may take, body included, before 408.
    pub request_timeout_secs: u64,
    /// Most concurrent client connections; more wait in the accept queue.
    pub max_connections: usize,
    /// Seconds to wait for in-flight requests on shutdown before closing them.
    pub shutdown_grace_secs: u64,
}

/// Logging options.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `json` (one object per line, for collectors) or `text`.
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `sealtrail_server=debug,info`.
    pub level: String,
}

/// Log line format.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Structured JSON lines.
    Json,
    /// Human-readable lines.
    Text,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("sealtrail-data"),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            store: Engine::Redb,
            origin: "sealtrail.localhost/log".to_owned(),
            key_file: None,
            limits: Limits::default(),
            log: LogConfig::default(),
            forward: Vec::new(),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_payload_bytes: DEFAULT_MAX_PAYLOAD,
            max_batch_entries: 1000,
            max_batch_bytes: 8 << 20,
            queue_entries: 100_000,
            commit_max_entries: 8192,
            max_page_entries: 1000,
            header_timeout_secs: 10,
            request_timeout_secs: 30,
            max_connections: 4096,
            shutdown_grace_secs: 30,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Json,
            level: "info".to_owned(),
        }
    }
}

/// A configuration that cannot be loaded or would be unsafe.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading {path}: {error}")]
    Read {
        /// The config file.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// The file is not valid TOML for this configuration.
    #[error("parsing {path}: {error}")]
    Parse {
        /// The config file.
        path: PathBuf,
        /// What is wrong, with line and column.
        error: String,
    },
    /// A value is out of its allowed range.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Reads a TOML config file. Unknown keys are errors, so a typo never silently falls back to a
    /// default.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            path: path.to_owned(),
            error,
        })?;
        Self::from_toml(&text).map_err(|error| match error {
            ConfigError::Parse { error, .. } => ConfigError::Parse {
                path: path.to_owned(),
                error,
            },
            other => other,
        })
    }

    /// Parses TOML text.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: PathBuf::new(),
            error: e.to_string(),
        })
    }

    /// The signing key's path.
    pub fn key_path(&self) -> PathBuf {
        self.key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("log.key"))
    }

    /// Checks every value that could break a guarantee or the process.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let l = &self.limits;
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if !sealtrail_spec::note::is_valid_key_name(&self.origin) {
            return bad(format!(
                "origin {:?} must be a non-empty key name without spaces or '+'",
                self.origin
            ));
        }
        if l.max_payload_bytes == 0
            || l.max_payload_bytes > sealtrail_spec::envelope::MAX_SAFE_PAYLOAD_LEN
        {
            return bad(format!(
                "limits.max_payload_bytes must be 1..={} (an entry bundle holds at most 65535-byte leaves)",
                sealtrail_spec::envelope::MAX_SAFE_PAYLOAD_LEN
            ));
        }
        let positive = [
            ("limits.max_batch_entries", l.max_batch_entries as u64),
            ("limits.max_batch_bytes", l.max_batch_bytes as u64),
            ("limits.queue_entries", l.queue_entries as u64),
            ("limits.commit_max_entries", l.commit_max_entries as u64),
            ("limits.max_page_entries", l.max_page_entries),
            ("limits.header_timeout_secs", l.header_timeout_secs),
            ("limits.request_timeout_secs", l.request_timeout_secs),
            ("limits.max_connections", l.max_connections as u64),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return bad(format!("{name} must be positive"));
        }
        if l.max_batch_entries > l.queue_entries {
            return bad("limits.max_batch_entries must not exceed limits.queue_entries".into());
        }
        if l.max_page_entries > 10_000 {
            return bad("limits.max_page_entries must be at most 10000".into());
        }
        crate::forward::validate_all(&self.forward).map_err(ConfigError::Invalid)?;
        Ok(())
    }
}

impl Limits {
    /// Header read timeout.
    pub fn header_timeout(&self) -> Duration {
        Duration::from_secs(self.header_timeout_secs)
    }

    /// Whole-request timeout.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_safe() {
        let c = Config::default();
        c.validate().unwrap();
        assert!(c.listen.ip().is_loopback());
        assert_eq!(c.store, Engine::Redb);
        assert_eq!(c.key_path(), PathBuf::from("sealtrail-data/log.key"));
    }

    #[test]
    fn example_config_parses_to_the_defaults() {
        // deploy/sealtrail.example.toml documents every option with its default value.
        let text = include_str!("../../deploy/sealtrail.example.toml");
        assert_eq!(Config::from_toml(text).unwrap(), Config::default());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_rejected() {
        assert!(Config::from_toml("data_dri = \"x\"").is_err());
        assert!(Config::from_toml("[limits]\nmax_payload = 5").is_err());
        assert!(Config::from_toml("store = \"rocksdb\"").is_err());
        let c = Config::from_toml("[limits]\nmax_payload_bytes = 70000").unwrap();
        assert!(c.validate().is_err());
        let c = Config::from_toml("[limits]\nqueue_entries = 0").unwrap();
        assert!(c.validate().is_err());
        let c = Config::from_toml("origin = \"has space\"").unwrap();
        assert!(c.validate().is_err());
        let c = Config::from_toml("store = \"sled\"\norigin = \"audit.example.com/prod\"").unwrap();
        c.validate().unwrap();
        assert_eq!(c.store, Engine::Sled);
    }
}
