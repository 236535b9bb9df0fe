//! Structured logs on stderr: JSON lines for collectors, or text for people, with a `tracing`
//! filter.

use serde::{Deserialize, Serialize};

/// Logging options (the `[log]` section of both configurations).
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

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Json,
            level: "info".to_owned(),
        }
    }
}

/// Installs the global subscriber (an invalid filter falls back to `info`).
pub fn init(c: &LogConfig) {
    let filter = tracing_subscriber::EnvFilter::try_new(&c.level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match c.format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .init(),
        LogFormat::Text => builder.init(),
    }
}
