//! Witness configuration: one TOML file (every option documented in
//! `deploy/sealtrail-witness.example.toml`), with `--listen` as the only command-line override.
//!
//! Unknown keys are errors, so a typo never silently falls back to a default. [`Config::validate`]
//! checks what serde cannot: key names, vkeys, URLs, duplicate origins, positive limits.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use sealtrail_net::config::ConfigError;
pub use sealtrail_net::logging::{LogConfig as Logging, LogFormat};
use sealtrail_spec::cosignature::CosignatureVerifier;
use sealtrail_spec::note::{Ed25519Verifier, is_valid_key_name};
use serde::{Deserialize, Serialize};

/// Everything `sealtrail-witness serve` needs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The witness name: the cosigner name in its signature lines, which must be the key's name.
    pub name: String,
    /// The witness signing key (Go-style skey, type 0x04 or 0x01), mode 0600.
    pub key_file: PathBuf,
    /// Directory holding the witness state (`witness.redb`).
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Address to listen on.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Request limits.
    #[serde(default)]
    pub limits: Limits,
    /// Rate limits on `add-checkpoint`.
    #[serde(default)]
    pub rate_limits: RateLimits,
    /// Gossip with peers and logs.
    #[serde(default)]
    pub gossip: Gossip,
    /// Where split-view alerts go besides the log, the metric and `/split-views`.
    #[serde(default)]
    pub alerts: Alerts,
    /// How often and how persistently anchors are fed.
    #[serde(default)]
    pub anchoring: Anchoring,
    /// Places the latest cosigned checkpoints are recorded.
    #[serde(default)]
    pub anchors: Vec<AnchorConfig>,
    /// The logs this witness cosigns.
    #[serde(default)]
    pub logs: Vec<LogConfig>,
    /// Other witnesses whose monitoring checkpoints are compared with ours.
    #[serde(default)]
    pub peers: Vec<PeerConfig>,
    /// Logging.
    #[serde(default)]
    pub log: Logging,
    /// TLS for the listener (off unless both files are set).
    #[serde(default)]
    pub tls: TlsConfig,
}

/// TLS for the witness's listener. Logs and peers then use `https://` URLs for it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first. Flag `--tls-cert`.
    pub cert_file: Option<PathBuf>,
    /// PEM private key. Flag `--tls-key`.
    pub key_file: Option<PathBuf>,
}

/// A log this witness cosigns.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// The checkpoint origin line.
    pub origin: String,
    /// The log's Ed25519 verifier keys (vkey text, type 0x01). A checkpoint needs a valid
    /// signature from at least one and no invalid one.
    pub keys: Vec<String>,
    /// The log's tlog-tiles base URL. With it, gossip fetches the log's `/checkpoint` and checks
    /// checkpoints of other sizes against ours with proofs built from the log's tiles; without it,
    /// only same-size checkpoints can be compared.
    #[serde(default)]
    pub url: Option<String>,
}

/// A peer witness.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    /// The peer's monitoring prefix: its checkpoints are at `<url>/<origin hash>/checkpoint`.
    pub url: String,
    /// The peer's cosigner vkey (type 0x04 or 0x01). A checkpoint carrying an invalid
    /// cosignature under this key is ignored.
    pub vkey: String,
}

/// Request limits.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest `add-checkpoint` body, in bytes; larger ones get 413.
    pub max_body_bytes: usize,
    /// Seconds a whole request may take.
    pub request_timeout_secs: u64,
    /// Seconds a client may take to send its request headers.
    pub header_timeout_secs: u64,
    /// Most concurrent client connections.
    pub max_connections: usize,
    /// Most concurrent connections from one IP address (0: no cap, behind a proxy).
    pub max_connections_per_ip: usize,
    /// Seconds to wait for in-flight requests on shutdown.
    pub shutdown_grace_secs: u64,
    /// Request body bytes all requests together may be receiving at once, each counted at its
    /// `Content-Length` (chunked: at `max_body_bytes`) until it has arrived; a request that does
    /// not fit gets 503 with `Retry-After` before its body is read. At least `max_body_bytes`.
    pub max_inflight_body_bytes: usize,
    /// Of those, the bytes one client address may hold (0: no share, behind a proxy). At least
    /// `max_body_bytes`.
    pub max_inflight_body_bytes_per_ip: usize,
}

/// Token buckets on `add-checkpoint`: `per_second` tokens are added up to `burst`; a request
/// without a token gets 429 with `Retry-After`. A `per_second` of 0 disables that limit.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimits {
    /// Requests per second for each log (counted after the origin is read).
    pub per_log_per_second: f64,
    /// Burst for each log.
    pub per_log_burst: u32,
    /// Requests per second over all logs (counted before the body is read).
    pub total_per_second: f64,
    /// Burst over all logs.
    pub total_burst: u32,
}

/// Gossip settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Gossip {
    /// Seconds between gossip rounds; 0 disables the periodic loop.
    pub interval_secs: u64,
    /// Timeout of each gossip HTTP request, in seconds.
    pub timeout_secs: u64,
}

/// Alerting on split views.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Alerts {
    /// URL that receives a JSON POST for every detected split view.
    pub webhook_url: Option<String>,
}

/// Anchoring schedule and retries.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Anchoring {
    /// Least seconds between two deliveries to the same anchor.
    pub interval_secs: u64,
    /// First retry delay after a failure, in milliseconds; doubled per failure, plus jitter.
    pub retry_initial_ms: u64,
    /// Longest retry delay, in seconds.
    pub retry_max_secs: u64,
    /// Timeout of each anchor HTTP request, in seconds.
    pub timeout_secs: u64,
}

/// One anchor.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum AnchorConfig {
    /// A sealtrail log: the cosigned checkpoint note is appended with `POST <url>/v1/entries`.
    Sealtrail {
        /// Label in metrics and logs (default `sealtrail-<position>`).
        #[serde(default)]
        name: Option<String>,
        /// The log's base URL.
        url: String,
        /// Bearer token sent as `Authorization: Bearer <token>`.
        #[serde(default)]
        bearer_token: Option<String>,
        /// File holding the bearer token (instead of `bearer_token`).
        #[serde(default)]
        bearer_token_file: Option<PathBuf>,
    },
    /// An append-only JSON Lines file, synced after every line.
    File {
        /// Label in metrics and logs (default `file-<position>`).
        #[serde(default)]
        name: Option<String>,
        /// The file.
        path: PathBuf,
    },
    /// An HTTP endpoint receiving a JSON POST per checkpoint.
    Webhook {
        /// Label in metrics and logs (default `webhook-<position>`).
        #[serde(default)]
        name: Option<String>,
        /// The URL.
        url: String,
    },
    /// An RFC 3161 Time-Stamp Authority: the SHA-256 of each cosigned checkpoint note is
    /// time-stamped, and the note and the TSA's token are stored side by side.
    Rfc3161 {
        /// Label in metrics and logs (default `rfc3161-<position>`).
        #[serde(default)]
        name: Option<String>,
        /// The TSA's URL (`POST`, `application/timestamp-query`).
        url: String,
        /// Where notes and tokens are kept: `<dir>/<origin>/<size>-<digest>.checkpoint` and
        /// `.tst` (origin percent-encoded, digest the first 16 hex digits of the note's SHA-256).
        dir: PathBuf,
        /// The TSA policy to request (dotted object identifier); default: the TSA's own.
        #[serde(default)]
        policy: Option<String>,
    },
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("sealtrail-witness-data")
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8081))
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 128 << 10,
            request_timeout_secs: 30,
            header_timeout_secs: 10,
            max_connections: 1024,
            max_connections_per_ip: 128,
            shutdown_grace_secs: 10,
            max_inflight_body_bytes: 16 << 20,
            max_inflight_body_bytes_per_ip: 1 << 20,
        }
    }
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            per_log_per_second: 1.0,
            per_log_burst: 10,
            total_per_second: 50.0,
            total_burst: 200,
        }
    }
}

impl Default for Gossip {
    fn default() -> Self {
        Gossip {
            interval_secs: 60,
            timeout_secs: 10,
        }
    }
}

impl Default for Anchoring {
    fn default() -> Self {
        Anchoring {
            interval_secs: 300,
            retry_initial_ms: 1000,
            retry_max_secs: 300,
            timeout_secs: 30,
        }
    }
}

impl Config {
    /// Reads and validates a TOML config file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let c: Config = sealtrail_net::config::read_toml(path)?;
        c.validate()?;
        Ok(c)
    }

    /// Parses and validates TOML text.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let c: Config = sealtrail_net::config::parse_toml(text)?;
        c.validate()?;
        Ok(c)
    }

    /// A minimal configuration: no logs, peers or anchors, default limits, gossip disabled.
    pub fn new(name: &str, key_file: PathBuf, data_dir: PathBuf) -> Self {
        Config {
            name: name.to_owned(),
            key_file,
            data_dir,
            listen: default_listen(),
            limits: Limits::default(),
            rate_limits: RateLimits::default(),
            gossip: Gossip {
                interval_secs: 0,
                ..Gossip::default()
            },
            alerts: Alerts::default(),
            anchoring: Anchoring::default(),
            anchors: Vec::new(),
            logs: Vec::new(),
            peers: Vec::new(),
            log: Logging::default(),
            tls: TlsConfig::default(),
        }
    }

    /// Checks everything serde cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if self.tls.cert_file.is_some() != self.tls.key_file.is_some() {
            return bad("tls.cert_file and tls.key_file go together".into());
        }
        if !is_valid_key_name(&self.name) {
            return bad(format!("name {:?} is not a valid key name", self.name));
        }
        let l = &self.limits;
        if l.max_body_bytes == 0 || l.max_body_bytes > sealtrail_spec::witness::MAX_REQUEST_SIZE {
            return bad(format!(
                "limits.max_body_bytes must be 1..={}",
                sealtrail_spec::witness::MAX_REQUEST_SIZE
            ));
        }
        for (name, v) in [
            ("max_inflight_body_bytes", l.max_inflight_body_bytes),
            (
                "max_inflight_body_bytes_per_ip",
                l.max_inflight_body_bytes_per_ip,
            ),
        ] {
            if v < l.max_body_bytes && !(v == 0 && name.ends_with("per_ip")) {
                return bad(format!(
                    "limits.{name} ({v}) must hold one body of limits.max_body_bytes ({})",
                    l.max_body_bytes
                ));
            }
        }
        for (name, v) in [
            ("limits.request_timeout_secs", l.request_timeout_secs),
            ("limits.header_timeout_secs", l.header_timeout_secs),
            ("limits.max_connections", l.max_connections as u64),
            ("gossip.timeout_secs", self.gossip.timeout_secs),
            ("anchoring.timeout_secs", self.anchoring.timeout_secs),
            ("anchoring.retry_max_secs", self.anchoring.retry_max_secs),
        ] {
            if v == 0 {
                return bad(format!("{name} must be positive"));
            }
        }
        let r = &self.rate_limits;
        for (name, rate, burst) in [
            ("per_log", r.per_log_per_second, r.per_log_burst),
            ("total", r.total_per_second, r.total_burst),
        ] {
            if !rate.is_finite() || rate < 0.0 {
                return bad(format!("rate_limits.{name}_per_second must be >= 0"));
            }
            if rate > 0.0 && burst == 0 {
                return bad(format!("rate_limits.{name}_burst must be positive"));
            }
        }
        let mut origins = HashSet::new();
        for log in &self.logs {
            if log.origin.is_empty() || log.origin.chars().any(|c| c.is_ascii_control()) {
                return bad(format!("log origin {:?} is not a valid line", log.origin));
            }
            if !origins.insert(log.origin.as_str()) {
                return bad(format!("log origin {:?} is configured twice", log.origin));
            }
            if log.keys.is_empty() {
                return bad(format!("log {:?} has no keys", log.origin));
            }
            for k in &log.keys {
                Ed25519Verifier::from_vkey(k).map_err(|e| {
                    ConfigError::Invalid(format!("log {:?}: key {k:?}: {e}", log.origin))
                })?;
            }
            if let Some(u) = &log.url {
                check_url(u, "logs.url")?;
            }
        }
        for p in &self.peers {
            check_url(&p.url, "peers.url")?;
            CosignatureVerifier::from_vkey(&p.vkey)
                .map_err(|e| ConfigError::Invalid(format!("peer {}: vkey: {e}", p.url)))?;
        }
        if let Some(u) = &self.alerts.webhook_url {
            check_url(u, "alerts.webhook_url")?;
        }
        let mut names = HashSet::new();
        for (i, a) in self.anchors.iter().enumerate() {
            match a {
                AnchorConfig::Sealtrail {
                    url,
                    bearer_token,
                    bearer_token_file,
                    ..
                } => {
                    check_url(url, "anchors.url")?;
                    if bearer_token.is_some() && bearer_token_file.is_some() {
                        return bad(
                            "an anchor has both bearer_token and bearer_token_file".to_owned()
                        );
                    }
                }
                AnchorConfig::Webhook { url, .. } => check_url(url, "anchors.url")?,
                AnchorConfig::Rfc3161 { url, policy, .. } => {
                    check_url(url, "anchors.url")?;
                    if let Some(p) = policy {
                        sealtrail_spec::der::oid_from_dotted(p)
                            .map_err(|e| ConfigError::Invalid(format!("anchors.policy: {e}")))?;
                    }
                }
                AnchorConfig::File { .. } => {}
            }
            if !names.insert(a.name(i)) {
                return bad(format!("anchor name {:?} is used twice", a.name(i)));
            }
        }
        Ok(())
    }

    /// The configured log with this origin.
    pub fn log(&self, origin: &str) -> Option<&LogConfig> {
        self.logs.iter().find(|l| l.origin == origin)
    }
}

fn check_url(url: &str, what: &str) -> Result<(), ConfigError> {
    let ok = (url.starts_with("http://") || url.starts_with("https://"))
        && reqwest::Url::parse(url).is_ok();
    if ok {
        Ok(())
    } else {
        Err(ConfigError::Invalid(format!(
            "{what} {url:?} is not an http(s) URL"
        )))
    }
}

impl AnchorConfig {
    /// The anchor's label: its `name`, or `<kind>-<position>`.
    pub fn name(&self, position: usize) -> String {
        let (name, kind) = match self {
            AnchorConfig::Sealtrail { name, .. } => (name, "sealtrail"),
            AnchorConfig::File { name, .. } => (name, "file"),
            AnchorConfig::Webhook { name, .. } => (name, "webhook"),
            AnchorConfig::Rfc3161 { name, .. } => (name, "rfc3161"),
        };
        name.clone().unwrap_or_else(|| format!("{kind}-{position}"))
    }
}

impl Limits {
    /// The whole-request timeout.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_parses() {
        let text = include_str!("../../deploy/sealtrail-witness.example.toml");
        let c = Config::from_toml(text).unwrap();
        assert_eq!(c.name, "witness.example.com/w1");
        assert_eq!(c.logs.len(), 1);
        assert_eq!(c.peers.len(), 1);
        assert_eq!(c.anchors.len(), 4);
        assert_eq!(c.limits, Limits::default());
        assert_eq!(c.rate_limits, RateLimits::default());
        assert_eq!(c.anchoring, Anchoring::default());
        assert!(matches!(c.anchors[1], AnchorConfig::File { .. }));
        assert_eq!(c.anchors[0].name(0), "anchor-log");
        assert_eq!(c.anchors[2].name(2), "webhook-2");
        assert!(matches!(
            &c.anchors[3],
            AnchorConfig::Rfc3161 { policy: None, dir, .. } if dir.ends_with("timestamps")
        ));
        assert_eq!(c.anchors[3].name(3), "rfc3161-3");
    }

    const MIN: &str = "name = \"w\"\nkey_file = \"w.key\"\n";
    const LOG: &str = "[[logs]]\norigin = \"example.com/log\"\n\
        keys = [\"PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW\"]\n";

    #[test]
    fn minimal_and_defaults() {
        let c = Config::from_toml(MIN).unwrap();
        assert!(c.listen.ip().is_loopback());
        assert_eq!(c.gossip, Gossip::default());
        let c = Config::from_toml(&format!("{MIN}{LOG}")).unwrap();
        assert!(c.log("example.com/log").is_some());
        assert!(c.log("example.com/other").is_none());
    }

    #[test]
    fn rejects_unknown_keys_and_bad_values() {
        let cases = [
            format!("{MIN}nmae = 1\n"),
            format!("{MIN}[limits]\nmax_body = 5\n"),
            "name = \"has space\"\nkey_file = \"k\"\n".to_owned(),
            format!("{MIN}[limits]\nmax_body_bytes = 0\n"),
            format!("{MIN}[limits]\nmax_body_bytes = 100000000\n"),
            format!("{MIN}[limits]\nmax_inflight_body_bytes = 1000\n"),
            format!("{MIN}[limits]\nmax_inflight_body_bytes_per_ip = 1000\n"),
            format!("{MIN}{LOG}{LOG}"),
            format!("{MIN}[[logs]]\norigin = \"o\"\nkeys = []\n"),
            format!("{MIN}[[logs]]\norigin = \"o\"\nkeys = [\"nonsense\"]\n"),
            format!("{MIN}{LOG}url = \"ftp://x\"\n"),
            format!("{MIN}[[logs]]\norigin = \"o\"\nkeys = []\nbogus = 1\n"),
            format!("{MIN}[[peers]]\nurl = \"http://p\"\nvkey = \"x\"\n"),
            format!("{MIN}[[anchors]]\nkind = \"carrier-pigeon\"\n"),
            format!("{MIN}[[anchors]]\nkind = \"file\"\npath = \"a\"\nurl = \"http://x\"\n"),
            format!(
                "{MIN}[[anchors]]\nkind = \"file\"\npath = \"a\"\n[[anchors]]\nkind = \"file\"\nname = \"file-0\"\npath = \"b\"\n"
            ),
            format!("{MIN}[rate_limits]\ntotal_per_second = -1.0\n"),
            format!("{MIN}[gossip]\ntimeout_secs = 0\n"),
            format!("{MIN}[[anchors]]\nkind = \"rfc3161\"\nurl = \"http://tsa\"\n"),
            format!("{MIN}[[anchors]]\nkind = \"rfc3161\"\nurl = \"tsa\"\ndir = \"t\"\n"),
            format!(
                "{MIN}[[anchors]]\nkind = \"rfc3161\"\nurl = \"http://tsa\"\ndir = \"t\"\npolicy = \"1.2.x\"\n"
            ),
        ];
        for text in cases {
            assert!(Config::from_toml(&text).is_err(), "accepted:\n{text}");
        }
    }
}
