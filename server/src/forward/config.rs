//! The `[[forward]]` configuration: what kind each sink is, the fields it takes, and the checks
//! run before anything is built ([`SinkConfig::validate`], [`validate_all`]).
//!
//! Out of scope: opening sinks (files, CA certificates, URLs are only read when a sink is built,
//! see [`super::Prepared::new`]) and sending.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The kinds of sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SinkKind {
    /// Syslog RFC 5424 (`transport` = `udp`, `tcp` or `tls`; octet counting on TCP and TLS).
    Syslog,
    /// `POST url` with an NDJSON body, one event per line.
    Webhook,
    /// Splunk HTTP Event Collector: `POST url/services/collector/event`.
    SplunkHec,
    /// Elasticsearch or OpenSearch: `POST url/_bulk`, `_id` = origin/index.
    Elasticsearch,
    /// A local JSONL file with size-based rotation.
    File,
}

/// Syslog transports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// One datagram per message; no acknowledgement (best-effort by nature).
    Udp,
    /// Octet-counted frames (RFC 6587) over TCP.
    Tcp,
    /// Octet-counted frames over TLS (rustls, ring).
    Tls,
}

/// One `[[forward]]` section of the configuration. Fields not used by a kind must be absent.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SinkConfig {
    /// Unique name: the cursor's key in the store and the `sink` metrics label. Renaming a sink
    /// starts it from the beginning of the log.
    pub name: String,
    /// What kind of sink.
    pub kind: SinkKind,
    /// Most entries per batch (one request, one group of syslog frames, one file append).
    #[serde(default = "default_batch")]
    pub batch_entries: u64,
    /// Also forward security and alarm events (best-effort).
    #[serde(default)]
    pub security_events: bool,
    /// Forward the log's own entries (`sealtrail.erasure`, `sealtrail.hold`,
    /// `sealtrail.hold-release`), so the SIEM learns of erasures and can act on them: erasure
    /// cannot recall what a SIEM already holds. On by default.
    #[serde(default = "default_true")]
    pub own_entries: bool,
    /// First retry delay in milliseconds; doubled per failure up to `retry_max_ms`, with jitter.
    #[serde(default = "default_retry_initial")]
    pub retry_initial_ms: u64,
    /// Longest retry delay in milliseconds.
    #[serde(default = "default_retry_max")]
    pub retry_max_ms: u64,
    /// Seconds one send may take before it counts as failed.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// syslog: `host:port` to send to.
    pub address: Option<String>,
    /// syslog: `udp`, `tcp` or `tls`.
    pub transport: Option<Transport>,
    /// syslog TLS and HTTPS sinks: PEM file of the CA certificates to trust (default for syslog
    /// TLS: none, so it is required; for HTTPS: the system's roots).
    pub ca_file: Option<std::path::PathBuf>,
    /// syslog TLS: the name to verify in the server's certificate (default: the address's host).
    pub server_name: Option<String>,
    /// syslog: HOSTNAME field (default: the machine's host name).
    pub hostname: Option<String>,
    /// syslog: facility number 0-23 (default 13, "log audit").
    pub facility: Option<u8>,
    /// syslog TCP/TLS: entries re-sent before the cursor after a broken connection, because
    /// frames the peer's kernel accepted may never have been read (default 10000).
    pub replay_entries: Option<u64>,
    /// HTTP sinks: the endpoint (webhook: the full URL; HEC and bulk: the base URL).
    pub url: Option<String>,
    /// Splunk HEC token (sent as `Authorization: Splunk <token>`).
    pub token: Option<String>,
    /// Elasticsearch index name.
    pub index: Option<String>,
    /// HTTP sinks: extra request headers (e.g. `Authorization` for a webhook or `_bulk`).
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, String>,
    /// File sink: the file to append to.
    pub path: Option<std::path::PathBuf>,
    /// File sink: rotate when the file would exceed this many bytes (default 100 MiB).
    pub max_bytes: Option<u64>,
    /// File sink: rotated files kept (`path.1` newest ... `path.N`; default 5).
    pub keep_files: Option<u32>,
}

fn default_batch() -> u64 {
    500
}
fn default_retry_initial() -> u64 {
    200
}
fn default_retry_max() -> u64 {
    30_000
}
fn default_true() -> bool {
    true
}

fn default_timeout() -> u64 {
    10
}

impl SinkConfig {
    /// A sink of `kind` named `name` with every default.
    pub fn new(name: &str, kind: SinkKind) -> Self {
        SinkConfig {
            name: name.to_owned(),
            kind,
            batch_entries: default_batch(),
            security_events: false,
            own_entries: true,
            retry_initial_ms: default_retry_initial(),
            retry_max_ms: default_retry_max(),
            timeout_secs: default_timeout(),
            address: None,
            transport: None,
            ca_file: None,
            server_name: None,
            hostname: None,
            facility: None,
            replay_entries: None,
            url: None,
            token: None,
            index: None,
            headers: Default::default(),
            path: None,
            max_bytes: None,
            keep_files: None,
        }
    }

    /// Checks the fields this kind needs and refuses those it does not use.
    pub fn validate(&self) -> Result<(), SinkConfigError> {
        let name = &self.name;
        if name.is_empty() || name.len() > 128 || name.chars().any(char::is_control) {
            return Err(SinkConfigError::BadName(name.clone()));
        }
        let out_of_range = |rule: &'static str| SinkConfigError::OutOfRange {
            sink: name.clone(),
            rule,
        };
        if self.batch_entries == 0 || self.batch_entries > 100_000 {
            return Err(out_of_range("batch_entries must be 1 to 100000"));
        }
        if self.retry_initial_ms == 0 || self.retry_max_ms < self.retry_initial_ms {
            return Err(out_of_range("need 0 < retry_initial_ms <= retry_max_ms"));
        }
        if self.timeout_secs == 0 {
            return Err(out_of_range("timeout_secs must be positive"));
        }
        self.check_fields()?;
        if self.facility.is_some_and(|f| f > 23) {
            return Err(out_of_range("facility must be 0 to 23"));
        }
        if self.max_bytes == Some(0) {
            return Err(out_of_range("max_bytes must be positive"));
        }
        Ok(())
    }

    /// Each optional field: present if and only if this kind (and transport) uses it. Checked
    /// in a fixed order, so the first offending field is the one reported.
    fn check_fields(&self) -> Result<(), SinkConfigError> {
        let has = |set: bool, field: &'static str, need: bool| match (set, need) {
            (false, true) => Err(SinkConfigError::MissingField {
                sink: self.name.clone(),
                kind: self.kind,
                field,
            }),
            (true, false) => Err(SinkConfigError::UnusedField {
                sink: self.name.clone(),
                kind: self.kind,
                field,
            }),
            _ => Ok(()),
        };
        let k = self.kind;
        let syslog = k == SinkKind::Syslog;
        let http = matches!(
            k,
            SinkKind::Webhook | SinkKind::SplunkHec | SinkKind::Elasticsearch
        );
        let tls = self.transport == Some(Transport::Tls);
        has(self.address.is_some(), "address", syslog)?;
        has(self.transport.is_some(), "transport", syslog)?;
        has(
            self.server_name.is_some(),
            "server_name",
            self.server_name.is_some() && tls,
        )?;
        has(
            self.hostname.is_some(),
            "hostname",
            self.hostname.is_some() && syslog,
        )?;
        has(
            self.facility.is_some(),
            "facility",
            self.facility.is_some() && syslog,
        )?;
        has(
            self.replay_entries.is_some(),
            "replay_entries",
            self.replay_entries.is_some() && syslog,
        )?;
        has(
            self.ca_file.is_some(),
            "ca_file",
            (syslog && tls) || (http && self.ca_file.is_some()),
        )?;
        has(self.url.is_some(), "url", http)?;
        has(self.token.is_some(), "token", k == SinkKind::SplunkHec)?;
        has(self.index.is_some(), "index", k == SinkKind::Elasticsearch)?;
        has(
            !self.headers.is_empty(),
            "headers",
            http && !self.headers.is_empty(),
        )?;
        has(self.path.is_some(), "path", k == SinkKind::File)?;
        let file = k == SinkKind::File;
        has(
            self.max_bytes.is_some(),
            "max_bytes",
            file && self.max_bytes.is_some(),
        )?;
        has(
            self.keep_files.is_some(),
            "keep_files",
            file && self.keep_files.is_some(),
        )
    }

    /// How long one send (or one connection attempt) may take.
    pub(super) fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs)
    }
}

/// Checks a list of sinks: each valid, names unique.
pub fn validate_all(sinks: &[SinkConfig]) -> Result<(), SinkConfigError> {
    let mut names = std::collections::HashSet::new();
    for s in sinks {
        s.validate()?;
        if !names.insert(s.name.as_str()) {
            return Err(SinkConfigError::DuplicateName(s.name.clone()));
        }
    }
    Ok(())
}

/// A `[[forward]]` section that cannot be used, found before any sink is built. The messages name
/// the sink and the field, as an operator reads them at start-up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SinkConfigError {
    /// The name is empty, longer than 128 bytes or holds a control character.
    #[error("forward sink name {0:?} must be 1-128 printable characters")]
    BadName(String),
    /// Two sinks share a name (the name keys the cursor and the metrics).
    #[error("two forward sinks are named {0:?}")]
    DuplicateName(String),
    /// The kind (or its transport) needs a field that is absent.
    #[error("forward {sink}: {kind:?} needs {field}")]
    MissingField {
        /// The sink's name.
        sink: String,
        /// Its kind.
        kind: SinkKind,
        /// The missing field.
        field: &'static str,
    },
    /// A field is set that the kind (or its transport) does not use.
    #[error("forward {sink}: {field} is not used by {kind:?}")]
    UnusedField {
        /// The sink's name.
        sink: String,
        /// Its kind.
        kind: SinkKind,
        /// The field set in vain.
        field: &'static str,
    },
    /// A number outside its range.
    #[error("forward {sink}: {rule}")]
    OutOfRange {
        /// The sink's name.
        sink: String,
        /// The rule broken, e.g. `facility must be 0 to 23`.
        rule: &'static str,
    },
}

impl SinkConfigError {
    /// A short static label for metrics and logs.
    pub fn category(&self) -> &'static str {
        match self {
            SinkConfigError::BadName(_) => "bad_name",
            SinkConfigError::DuplicateName(_) => "duplicate_name",
            SinkConfigError::MissingField { .. } => "missing_field",
            SinkConfigError::UnusedField { .. } => "unused_field",
            SinkConfigError::OutOfRange { .. } => "out_of_range",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str) -> SinkConfig {
        SinkConfig {
            path: Some("out.jsonl".into()),
            ..SinkConfig::new(name, SinkKind::File)
        }
    }

    fn refused(cfg: &SinkConfig) -> (&'static str, String) {
        let e = cfg.validate().unwrap_err();
        (e.category(), e.to_string())
    }

    #[test]
    fn complete_configs_of_every_kind_pass() {
        let mut tls = SinkConfig::new("t", SinkKind::Syslog);
        tls.address = Some("siem.example:6514".into());
        tls.transport = Some(Transport::Tls);
        tls.ca_file = Some("ca.pem".into());
        tls.server_name = Some("siem.example".into());
        tls.facility = Some(23);
        let mut hook = SinkConfig::new("w", SinkKind::Webhook);
        hook.url = Some("https://siem.example/in".into());
        hook.headers.insert("Authorization".into(), "x".into());
        let mut hec = SinkConfig::new("h", SinkKind::SplunkHec);
        hec.url = Some("https://hec.example".into());
        hec.token = Some("t".into());
        let mut es = SinkConfig::new("e", SinkKind::Elasticsearch);
        es.url = Some("https://es.example".into());
        es.index = Some("audit".into());
        let all = [tls, hook, hec, es, file("f")];
        for cfg in &all {
            assert_eq!(cfg.validate(), Ok(()), "{cfg:?}");
        }
        assert_eq!(validate_all(&all), Ok(()));
    }

    #[test]
    fn each_refusal_has_its_category_and_message() {
        assert_eq!(
            refused(&file("")),
            (
                "bad_name",
                r#"forward sink name "" must be 1-128 printable characters"#.into()
            )
        );
        assert_eq!(refused(&file(&"n".repeat(129))).0, "bad_name");
        assert_eq!(refused(&file("a\nb")).0, "bad_name");
        assert_eq!(file(&"n".repeat(128)).validate(), Ok(()));

        let mut f = file("f");
        f.batch_entries = 100_001;
        assert_eq!(
            refused(&f),
            (
                "out_of_range",
                "forward f: batch_entries must be 1 to 100000".into()
            )
        );
        let mut f = file("f");
        f.retry_max_ms = f.retry_initial_ms - 1;
        assert_eq!(
            refused(&f).1,
            "forward f: need 0 < retry_initial_ms <= retry_max_ms"
        );
        let mut f = file("f");
        f.timeout_secs = 0;
        assert_eq!(refused(&f).1, "forward f: timeout_secs must be positive");
        let mut f = file("f");
        f.max_bytes = Some(0);
        assert_eq!(
            refused(&f),
            (
                "out_of_range",
                "forward f: max_bytes must be positive".into()
            )
        );
        let mut s = SinkConfig::new("s", SinkKind::Syslog);
        s.address = Some("h:514".into());
        s.transport = Some(Transport::Udp);
        s.facility = Some(24);
        assert_eq!(
            refused(&s),
            ("out_of_range", "forward s: facility must be 0 to 23".into())
        );

        assert_eq!(
            refused(&SinkConfig::new("w", SinkKind::Webhook)),
            ("missing_field", "forward w: Webhook needs url".into())
        );
        s.facility = None;
        s.transport = Some(Transport::Tls);
        assert_eq!(
            refused(&s),
            ("missing_field", "forward s: Syslog needs ca_file".into())
        );
        s.transport = Some(Transport::Tcp);
        s.server_name = Some("x".into());
        assert_eq!(
            refused(&s),
            (
                "unused_field",
                "forward s: server_name is not used by Syslog".into()
            )
        );
        let mut f = file("f");
        f.url = Some("http://x".into());
        f.token = Some("t".into());
        assert_eq!(
            refused(&f),
            ("unused_field", "forward f: url is not used by File".into()),
            "the first offending field in the fixed order"
        );

        let e = validate_all(&[file("a"), file("same"), file("same")]).unwrap_err();
        assert_eq!(
            (e.category(), e.to_string()),
            (
                "duplicate_name",
                r#"two forward sinks are named "same""#.into()
            )
        );
        assert_eq!(
            validate_all(&[file("ok"), file("")])
                .unwrap_err()
                .category(),
            "bad_name",
            "each sink is validated"
        );
    }
}
