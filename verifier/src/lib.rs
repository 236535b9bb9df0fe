//! `sealtrail-verifier`: check what a transparency log claims while trusting nothing but public
//! keys and a witness policy. Works on any C2SP tlog-tiles log, not only sealtrail.
//!
//! One module per command ([`checkpoint`], [`proof`], [`consistency`], [`entry`], [`audit`],
//! [`evidence`], [`timestamp`]);
//! each takes its inputs as values and returns a [`Report`] or an [`Error`]. [`trust`] turns the
//! key and policy flags into one [`trust::Trust`]; [`source`] reads a log's checkpoint, tiles and
//! entry bundles over HTTP or from a directory laid out as static tlog-tiles. [`record`] checks a
//! sealtrail entry's private record (salt, principal, payload) against its verified leaf.
//! Printing and exit codes belong to `main`. `monitor` polls a log and advances a trusted state.

pub mod archive;
pub mod audit;
pub mod checkpoint;
pub mod consistency;
pub mod entry;
pub mod evidence;
pub mod monitor;
pub mod proof;
pub mod record;
pub mod source;
pub mod timestamp;
pub mod trust;

mod show;

use serde_json::Value;

/// What a command verified: lines for a human and the same facts as JSON.
#[derive(Debug, Clone)]
pub struct Report {
    /// One line per fact, for a terminal.
    pub lines: Vec<String>,
    /// The facts as a JSON object (without the `verified` field, which `main` adds).
    pub json: Value,
}

/// Why a command did not verify. Messages say what failed: which signature, tile or index.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The log's material does not verify (exit code 1).
    #[error("{0}")]
    Failed(String),
    /// The command line or a local input is unusable (exit code 2).
    #[error("{0}")]
    Usage(String),
    /// Reading a file or fetching from the log failed (exit code 2).
    #[error("{0}")]
    Io(String),
}

impl Error {
    /// The process exit code: 1 for a verification failure, 2 for usage and I/O errors.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Failed(_) => 1,
            Error::Usage(_) | Error::Io(_) => 2,
        }
    }

    /// A short static label for `--json` output.
    pub fn category(&self) -> &'static str {
        match self {
            Error::Failed(_) => "verification_failed",
            Error::Usage(_) => "usage",
            Error::Io(_) => "io",
        }
    }

    pub(crate) fn failed(msg: impl Into<String>) -> Self {
        Error::Failed(msg.into())
    }
}

/// Reads a local input file; failure is an I/O error naming the file.
pub fn read_file(path: &std::path::Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| Error::Io(format!("reading {}: {e}", path.display())))
}

/// Replaces `path` with `bytes` atomically: a synced temporary file renamed over it, so a
/// crash leaves either the old state or the new one.
pub(crate) fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> Result<(), Error> {
    use std::io::Write as _;
    let tmp = path.with_extension("tmp");
    let io = |e: std::io::Error| Error::Io(format!("writing {}: {e}", path.display()));
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}
