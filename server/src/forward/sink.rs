//! One configured sink behind one type: [`Sink`] dispatches to the syslog, HTTP and file sinks,
//! and the two ways a sink fails: it cannot be built ([`OpenError`], at start-up) or a send
//! failed ([`SinkError`], retried by the sink's task).

use super::{ForwardEvent, SinkConfig, SinkKind, file, http, syslog};

/// Why a send failed (retried; the message is logged and counted).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SinkError(pub String);

/// Why a sink could not be built from its (valid) configuration. Every message starts with
/// `forward <name>:`.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The URL, a header or the HEC token cannot go into a request.
    #[error("forward {sink}: {detail}")]
    Request {
        /// The sink's name.
        sink: String,
        /// What is wrong, with the offending value.
        detail: String,
    },
    /// The CA file cannot be read or holds no usable certificate.
    #[error("forward {sink}: {detail}")]
    CaFile {
        /// The sink's name.
        sink: String,
        /// What is wrong, with the file's path.
        detail: String,
    },
    /// TLS cannot be set up: the server name is not a valid name, or no protocol version fits.
    #[error("forward {sink}: {detail}")]
    Tls {
        /// The sink's name.
        sink: String,
        /// What is wrong.
        detail: String,
    },
    /// The HTTP client cannot be built.
    #[error("forward {sink}: {detail}")]
    HttpClient {
        /// The sink's name.
        sink: String,
        /// What is wrong.
        detail: String,
    },
    /// The file sink's file cannot be opened for appending, or its partial last line cut off.
    #[error("forward {sink}: {source}")]
    File {
        /// The sink's name.
        sink: String,
        /// The failed file operation.
        source: file::FileError,
    },
}

impl OpenError {
    /// A short static label for metrics and logs.
    pub fn category(&self) -> &'static str {
        match self {
            OpenError::Request { .. } => "request",
            OpenError::CaFile { .. } => "ca_file",
            OpenError::Tls { .. } => "tls",
            OpenError::HttpClient { .. } => "http_client",
            OpenError::File { .. } => "file",
        }
    }
}

/// A configured sink, ready to send.
#[derive(Debug)]
pub(super) enum Sink {
    Syslog(syslog::SyslogSink),
    Http(http::HttpSink),
    File(file::FileSink),
}

impl Sink {
    /// Builds the sink of `cfg`'s kind (reads files, checks URLs; connects nowhere).
    pub(super) fn open(cfg: &SinkConfig) -> Result<Self, OpenError> {
        Ok(match cfg.kind {
            SinkKind::Syslog => Sink::Syslog(syslog::SyslogSink::new(cfg)?),
            SinkKind::Webhook | SinkKind::SplunkHec | SinkKind::Elasticsearch => {
                Sink::Http(http::HttpSink::new(cfg)?)
            }
            SinkKind::File => Sink::File(file::FileSink::new(cfg)?),
        })
    }

    /// Sends `events`; `Ok` means the receiver acknowledged all of them.
    pub(super) async fn send(&mut self, events: &[ForwardEvent]) -> Result<(), SinkError> {
        match self {
            Sink::Syslog(s) => s.send(events).await,
            Sink::Http(s) => s.send(events).await,
            Sink::File(s) => s.send(events).await,
        }
    }

    /// Entries to re-send before the cursor after the last failure (see `replay_entries`).
    pub(super) fn take_replay(&mut self) -> u64 {
        match self {
            Sink::Syslog(s) => s.take_replay(),
            _ => 0,
        }
    }
}
