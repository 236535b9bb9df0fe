//! Server configuration: a TOML file (every option documented in `deploy/sealtrail.example.toml`),
//! overridden by `SEALTRAIL_*` environment variables and command-line flags (handled in `main`).
//!
//! Precedence, highest first: flag, environment variable, config file, built-in default. Every
//! default is safe for production; [`Config::validate`] rejects values that could break a
//! guarantee (a payload cap the entry bundles cannot hold, a zero queue).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use sealtrail_net::config::ConfigError;
pub use sealtrail_net::logging::{LogConfig, LogFormat};
use serde::{Deserialize, Serialize};

use crate::store::Engine;

/// Largest body of an admin request (erasures, holds).
pub const ADMIN_BODY_BYTES: usize = 2 << 20;

/// Default maximum payload size in bytes. Payloads live in private records, not in the leaves,
/// so the limit is a policy choice up to `sealtrail_spec::record::MAX_PAYLOAD_LEN` (1 MiB).
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
    /// The database of `store = "postgres"`. One instance per database for now: several
    /// instances on one database are not yet supported (each would refuse the other's commits).
    pub postgres: Option<crate::store::pg_store::PgConfig>,
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
    /// Authentication and authorisation.
    pub auth: crate::auth::AuthConfig,
    /// TLS (and mutual TLS). Off unless `cert_file` and `key_file` are set.
    pub tls: crate::tls::TlsConfig,
    /// Witnesses that cosign the log's checkpoints, and the policy their cosignatures must meet.
    pub witnessing: WitnessingConfig,
    /// Retention rules (`[[retention]]` sections): how long records are kept, by event type.
    /// None: records are kept until erased.
    pub retention: Vec<crate::retention::RetentionRule>,
    /// Seconds between two runs of the retention job.
    pub retention_interval_secs: u64,
}

/// Witnesses and witness policy (C2SP tlog-witness, tlog-policy). With no witnesses configured the
/// log works alone: `/checkpoint` carries only the log's signature and `?wait=cosigned` is refused.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct WitnessingConfig {
    /// A tlog-policy file. Its `witness` lines that carry a URL are the witnesses contacted (the
    /// URL is the submission prefix), and its quorum is the policy. It must list this log's key.
    /// Mutually exclusive with `witnesses`.
    pub policy_file: Option<PathBuf>,
    /// Witnesses given inline, each with its submission prefix URL and verifier key.
    pub witnesses: Vec<WitnessEndpoint>,
    /// With inline witnesses: how many must cosign a checkpoint (k of n). Default: all of them.
    pub quorum: Option<usize>,
    /// Least milliseconds between two checkpoints sent to the witnesses (each witness gets at
    /// most one new checkpoint per interval).
    pub interval_ms: u64,
    /// Milliseconds a witness may take to answer one add-checkpoint request.
    pub timeout_ms: u64,
    /// Longest back-off, in milliseconds, after a witness fails (back-off doubles from
    /// `interval_ms`, with jitter).
    pub max_backoff_ms: u64,
    /// Seconds a `?wait=cosigned` write waits for a checkpoint that meets the policy before it
    /// answers 504 (the entry stays appended). Must be below `limits.request_timeout_secs`.
    pub cosigned_wait_secs: u64,
    /// PEM CA certificates trusted for `https://` witnesses besides the system's roots.
    pub ca_file: Option<PathBuf>,
}

/// One witness: where to send checkpoints and the key its cosignatures verify with.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WitnessEndpoint {
    /// The witness's submission prefix; `<url>/add-checkpoint` is called.
    pub url: String,
    /// The witness's verifier key (vkey text; Ed25519 type 0x01 keys are used as 0x04
    /// cosignature keys).
    pub vkey: String,
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
    /// Most records in scope of one evidence package (`GET /v1/evidence`).
    pub max_evidence_records: u64,
    /// Seconds a client may take to send its request headers.
    pub header_timeout_secs: u64,
    /// Seconds a whole request may take, body included, before 408.
    pub request_timeout_secs: u64,
    /// Seconds a write to a client may stay blocked because the client reads nothing; then the
    /// connection is closed and what its answer held is freed.
    pub write_timeout_secs: u64,
    /// Most concurrent client connections; more wait in the accept queue.
    pub max_connections: usize,
    /// Most concurrent connections from one IP address; more are closed at once (0: no cap, for
    /// a server behind a proxy whose one address carries every client).
    pub max_connections_per_ip: usize,
    /// Seconds to wait for in-flight requests on shutdown before closing them.
    pub shutdown_grace_secs: u64,
    /// Seconds a client may take to complete the TLS handshake.
    pub tls_handshake_timeout_secs: u64,
    /// Requests handled at once; more are shed with 503 and `Retry-After`.
    pub max_concurrent_requests: usize,
    /// Sustained requests per second allowed to one principal (0 = no limit).
    pub principal_rate_per_sec: f64,
    /// Requests one principal may send in a burst above its sustained rate.
    pub principal_burst: u32,
    /// Sustained requests per second allowed from one client IP address (0 = no limit).
    pub ip_rate_per_sec: f64,
    /// Requests one client IP address may send in a burst.
    pub ip_burst: u32,
    /// Most rate-limit buckets kept per kind (principal, IP); idle buckets are evicted first.
    pub rate_limit_max_keys: usize,
    /// Free bytes the data directory's filesystem must keep: a batch that would leave less is
    /// refused with 503 before the store is touched, so the store never meets a full disk and
    /// reads go on. 0 disables the check.
    pub min_free_bytes: u64,
    /// Request body bytes all requests together may be receiving at once. A body is counted at
    /// its `Content-Length` (or at its route's limit when chunked) from before it is read until
    /// it is; a request that does not fit is answered 503 with `Retry-After` without reading it,
    /// so clients that send bodies slowly or never finish them cannot hold unbounded memory.
    pub max_inflight_body_bytes: usize,
    /// Of those, the bytes one client address may hold, so that one client cannot take the room
    /// of the others (0: no share, for a server behind a proxy whose one address carries every
    /// client). At least the largest single body.
    pub max_inflight_body_bytes_per_ip: usize,
    /// Response bytes the server may hold at once for clients that have not read them yet. A
    /// whole answer of 16 KiB or more counts its size until it is written (over the budget it is
    /// answered 503 with `Retry-After`); pages of entries are streamed and count only the chunk
    /// being written. With the write timeout, this bounds what clients that never read can cost.
    pub max_inflight_response_bytes: usize,
    /// Of those, the bytes held for one client address (0: no share, behind a proxy). At least
    /// the largest single answer.
    pub max_inflight_response_bytes_per_ip: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("sealtrail-data"),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            store: Engine::Redb,
            postgres: None,
            origin: "sealtrail.localhost/log".to_owned(),
            key_file: None,
            limits: Limits::default(),
            log: LogConfig::default(),
            auth: crate::auth::AuthConfig::default(),
            tls: crate::tls::TlsConfig::default(),
            witnessing: WitnessingConfig::default(),
            forward: Vec::new(),
            retention: Vec::new(),
            retention_interval_secs: 3600,
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
            max_evidence_records: 100_000,
            header_timeout_secs: 10,
            request_timeout_secs: 30,
            write_timeout_secs: 30,
            max_connections: 4096,
            max_connections_per_ip: 512,
            shutdown_grace_secs: 30,
            tls_handshake_timeout_secs: 10,
            max_concurrent_requests: 1024,
            principal_rate_per_sec: 5000.0,
            principal_burst: 10_000,
            ip_rate_per_sec: 5000.0,
            ip_burst: 10_000,
            rate_limit_max_keys: 100_000,
            min_free_bytes: 256 << 20,
            max_inflight_body_bytes: 64 << 20,
            max_inflight_response_bytes: 64 << 20,
            max_inflight_body_bytes_per_ip: 16 << 20,
            max_inflight_response_bytes_per_ip: 16 << 20,
        }
    }
}

impl Default for WitnessingConfig {
    fn default() -> Self {
        WitnessingConfig {
            policy_file: None,
            witnesses: Vec::new(),
            quorum: None,
            interval_ms: 1000,
            timeout_ms: 5000,
            max_backoff_ms: 60_000,
            cosigned_wait_secs: 10,
            ca_file: None,
        }
    }
}

impl Config {
    /// What the access-control guard needs from `[auth]`, `[limits]`, `[tls]` and `listen`.
    pub fn guard_settings(&self) -> crate::auth::GuardSettings<'_> {
        let l = &self.limits;
        crate::auth::GuardSettings {
            auth: &self.auth,
            limits: crate::auth::RequestLimits {
                max_concurrent_requests: l.max_concurrent_requests,
                principal_rate_per_sec: l.principal_rate_per_sec,
                principal_burst: l.principal_burst,
                ip_rate_per_sec: l.ip_rate_per_sec,
                ip_burst: l.ip_burst,
                rate_limit_max_keys: l.rate_limit_max_keys,
            },
            cert_role: self.tls.cert_role(),
            listen_is_loopback: self.listen.ip().is_loopback(),
        }
    }

    /// Reads a TOML config file. Unknown keys are errors, so a typo never silently falls back to a
    /// default.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        sealtrail_net::config::read_toml(path)
    }

    /// Parses TOML text.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        sealtrail_net::config::parse_toml(text)
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
        match (&self.store, &self.postgres) {
            (Engine::Postgres, None) => {
                return bad("store = \"postgres\" needs a [postgres] section with its url".into());
            }
            (Engine::Postgres, Some(pg)) if pg.url.trim().is_empty() || pg.pool_size == 0 => {
                return bad("postgres.url must be set and postgres.pool_size at least 1".into());
            }
            (Engine::Redb | Engine::Sled, Some(_)) => {
                return bad(format!(
                    "a [postgres] section is set but store = {:?}; set store = \"postgres\" or \
                     remove the section",
                    self.store.name()
                ));
            }
            _ => {}
        }
        if let Err(e) = crate::retention::validate(&self.retention) {
            return bad(e);
        }
        if self.retention_interval_secs == 0 {
            return bad("retention_interval_secs must be at least 1".into());
        }
        if l.max_payload_bytes == 0 || l.max_payload_bytes > sealtrail_spec::record::MAX_PAYLOAD_LEN
        {
            return bad(format!(
                "limits.max_payload_bytes must be 1..={} (the largest private record payload)",
                sealtrail_spec::record::MAX_PAYLOAD_LEN
            ));
        }
        let largest_body = l
            .max_payload_bytes
            .max(l.max_batch_bytes)
            .max(ADMIN_BODY_BYTES);
        for (name, v) in [
            ("max_inflight_body_bytes", l.max_inflight_body_bytes),
            (
                "max_inflight_body_bytes_per_ip",
                l.max_inflight_body_bytes_per_ip,
            ),
        ] {
            if v < largest_body && !(v == 0 && name.ends_with("per_ip")) {
                return bad(format!(
                    "limits.{name} ({v}) must hold the largest single body ({largest_body} \
                     bytes: max_batch_bytes, max_payload_bytes or an admin request)"
                ));
            }
        }
        // One entry's answer: its payload as base64 and, for JSON, re-encoded (escapes of
        // control characters take up to six bytes each), plus the envelope fields.
        let largest_answer = l
            .max_payload_bytes
            .saturating_mul(8)
            .saturating_add(64 << 10);
        for (name, v) in [
            ("max_inflight_response_bytes", l.max_inflight_response_bytes),
            (
                "max_inflight_response_bytes_per_ip",
                l.max_inflight_response_bytes_per_ip,
            ),
        ] {
            if v < largest_answer && !(v == 0 && name.ends_with("per_ip")) {
                return bad(format!(
                    "limits.{name} ({v}) must hold the largest single answer ({largest_answer} \
                     bytes: eight times max_payload_bytes, plus 64 KiB)"
                ));
            }
        }
        let positive = [
            ("limits.max_batch_entries", l.max_batch_entries as u64),
            ("limits.max_batch_bytes", l.max_batch_bytes as u64),
            ("limits.queue_entries", l.queue_entries as u64),
            ("limits.commit_max_entries", l.commit_max_entries as u64),
            ("limits.max_page_entries", l.max_page_entries),
            ("limits.max_evidence_records", l.max_evidence_records),
            ("limits.header_timeout_secs", l.header_timeout_secs),
            ("limits.request_timeout_secs", l.request_timeout_secs),
            ("limits.write_timeout_secs", l.write_timeout_secs),
            ("limits.max_connections", l.max_connections as u64),
            (
                "limits.tls_handshake_timeout_secs",
                l.tls_handshake_timeout_secs,
            ),
            (
                "limits.max_concurrent_requests",
                l.max_concurrent_requests as u64,
            ),
            ("limits.principal_burst", u64::from(l.principal_burst)),
            ("limits.ip_burst", u64::from(l.ip_burst)),
            ("limits.rate_limit_max_keys", l.rate_limit_max_keys as u64),
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
        for (name, rate) in [
            ("limits.principal_rate_per_sec", l.principal_rate_per_sec),
            ("limits.ip_rate_per_sec", l.ip_rate_per_sec),
        ] {
            if !rate.is_finite() || rate < 0.0 {
                return bad(format!("{name} must be a non-negative number"));
            }
        }
        self.auth.validate().map_err(ConfigError::Invalid)?;
        self.tls.validate().map_err(ConfigError::Invalid)?;
        let w = &self.witnessing;
        if w.policy_file.is_some() && (!w.witnesses.is_empty() || w.quorum.is_some()) {
            return bad(
                "witnessing.policy_file and inline witnessing.witnesses/quorum are exclusive"
                    .into(),
            );
        }
        if w.quorum.is_some_and(|k| k == 0 || k > w.witnesses.len()) {
            return bad(format!(
                "witnessing.quorum must be 1..={} (the number of witnesses)",
                w.witnesses.len()
            ));
        }
        if w.interval_ms == 0 || w.timeout_ms == 0 || w.cosigned_wait_secs == 0 {
            return bad(
                "witnessing.interval_ms, timeout_ms and cosigned_wait_secs must be positive".into(),
            );
        }
        if w.max_backoff_ms < w.interval_ms {
            return bad("witnessing.max_backoff_ms must be at least interval_ms".into());
        }
        if w.cosigned_wait_secs >= l.request_timeout_secs {
            return bad(
                "witnessing.cosigned_wait_secs must be below limits.request_timeout_secs".into(),
            );
        }
        crate::forward::validate_all(&self.forward)
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
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

    /// How long a write to a client may stay blocked.
    pub fn write_timeout(&self) -> Duration {
        Duration::from_secs(self.write_timeout_secs)
    }

    /// TLS handshake timeout.
    pub fn tls_handshake_timeout(&self) -> Duration {
        Duration::from_secs(self.tls_handshake_timeout_secs)
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
        assert!(
            c.validate().is_ok(),
            "payloads no longer live in the leaves"
        );
        let c = Config::from_toml("[limits]\nmax_payload_bytes = 1048577").unwrap();
        assert!(c.validate().is_err());
        let c = Config::from_toml("[limits]\nqueue_entries = 0").unwrap();
        assert!(c.validate().is_err());
        let c = Config::from_toml("origin = \"has space\"").unwrap();
        assert!(c.validate().is_err());
        let c = Config::from_toml("store = \"sled\"\norigin = \"audit.example.com/prod\"").unwrap();
        c.validate().unwrap();
        assert_eq!(c.store, Engine::Sled);
    }

    #[test]
    fn the_postgres_engine_needs_its_section_and_only_it_has_one() {
        let c = Config::from_toml(
            "store = \"postgres\"\n[postgres]\nurl = \"host=/run/postgresql dbname=log\"\n",
        )
        .unwrap();
        c.validate().unwrap();
        let pg = c.postgres.as_ref().unwrap();
        assert_eq!(c.store, Engine::Postgres);
        assert_eq!(pg.url, "host=/run/postgresql dbname=log");
        assert_eq!(pg.pool_size, crate::store::pg_store::DEFAULT_POOL_SIZE);
        assert_eq!(pg.tls_ca_file, None);
        let err = |text: &str| {
            Config::from_toml(text)
                .unwrap()
                .validate()
                .unwrap_err()
                .to_string()
        };
        assert!(
            err("store = \"postgres\"").contains("needs a [postgres] section"),
            "{}",
            err("store = \"postgres\"")
        );
        assert!(err("store = \"postgres\"\n[postgres]\nurl = \" \"").contains("postgres.url"));
        assert!(
            err("store = \"postgres\"\n[postgres]\nurl = \"x\"\npool_size = 0")
                .contains("pool_size")
        );
        assert!(err("[postgres]\nurl = \"x\"").contains("store = \"redb\""));
        assert!(Config::from_toml("store = \"postgres\"\n[postgres]\nuri = \"x\"").is_err());
    }
}
