//! What a run is asked to do: the request [`Mode`], the [`Options`] with their defaults and
//! limits, and [`LoadError`], for a run that cannot start or finish.

use std::time::Duration;

use serde::Serialize;

/// What each request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[derive(clap::ValueEnum)]
pub enum Mode {
    /// `POST /v1/entries`: one entry per request.
    Append,
    /// `POST /v1/entries/batch`: [`Options::batch`] entries per request (NDJSON).
    Batch,
    /// `POST /v1/entries?wait=checkpoint`: one entry, answered with a tlog-proof that is verified.
    Checkpoint,
    /// `GET /v1/proof/inclusion` for random indices in the signed tree.
    Inclusion,
    /// `GET /v1/proof/consistency` from a random size to the signed tree size.
    Consistency,
    /// `GET /tile/0/<N>`: random level-0 hash tiles of the signed tree.
    Tiles,
    /// Half appends, three tenths inclusion proofs, one tenth tiles, one tenth consistency proofs.
    Mixed,
}

impl Mode {
    /// Whether requests of this mode append entries.
    pub(super) fn appends(self) -> bool {
        matches!(self, Mode::Append | Mode::Batch | Mode::Checkpoint)
    }

    /// Whether this mode needs entries in the log before it starts.
    pub(super) fn needs_entries(self) -> bool {
        matches!(
            self,
            Mode::Inclusion | Mode::Consistency | Mode::Tiles | Mode::Mixed
        )
    }
}

/// One run's settings. [`Options::new`] gives the defaults.
#[derive(Debug, Clone)]
pub struct Options {
    /// The request kind.
    pub mode: Mode,
    /// `http://HOST:PORT` of the server.
    pub url: String,
    /// Closed-loop workers (each with its own connection).
    pub concurrency: usize,
    /// Bytes of each JSON payload (at least 32).
    pub payload_bytes: usize,
    /// Entries per batch request ([`Mode::Batch`]).
    pub batch: usize,
    /// How long to run. With neither this nor [`Options::count`], 10 seconds.
    pub duration: Option<Duration>,
    /// How many requests to make.
    pub count: Option<u64>,
    /// Open loop: requests started per second. `None`: closed loop.
    pub rate: Option<f64>,
    /// Open loop: most requests in flight at once; later ones wait (and their latency grows).
    pub max_in_flight: usize,
    /// Sent as `Authorization: Bearer <token>`.
    pub token: Option<String>,
    /// Allow a target that is not a loopback address.
    pub allow_remote: bool,
    /// The log's verifier key (vkey). `None`: taken from `GET /v1/log`.
    pub log_key: Option<String>,
    /// Verify the Merkle path of one proof or tile response in this many (1: every one).
    pub verify_every: u64,
    /// After an append run, prove this many acknowledged entries into a fresh checkpoint.
    pub post_check: usize,
    /// Entries appended (in batches of up to 1000, unmeasured) before the run starts.
    pub prefill: u64,
    /// The server's process id, to report its CPU time and memory.
    pub server_pid: Option<u32>,
    /// Hard limit on the whole run, whatever `count` says.
    pub deadline: Duration,
}

impl Options {
    /// Defaults: 64 workers, 256-byte payloads, 1000-entry batches, 10 seconds.
    pub fn new(mode: Mode, url: &str) -> Self {
        Options {
            mode,
            url: url.to_owned(),
            concurrency: 64,
            payload_bytes: 256,
            batch: 1000,
            duration: None,
            count: None,
            rate: None,
            max_in_flight: 1024,
            token: None,
            allow_remote: false,
            log_key: None,
            verify_every: 10,
            post_check: 100,
            prefill: 0,
            server_pid: None,
            deadline: Duration::from_secs(3600),
        }
    }
}

/// A run that could not start or finish (bad options, unreachable or unverifiable server).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The options are unusable.
    #[error("{0}")]
    Usage(String),
    /// The server could not be used.
    #[error("{0}")]
    Server(String),
}

/// Checks the options before anything is sent; the messages name the command-line flags.
pub(super) fn validate(o: &Options) -> Result<(), LoadError> {
    let bad = |m: &str| Err(LoadError::Usage(m.to_owned()));
    if o.concurrency == 0 || o.concurrency > 10_000 {
        return bad("--concurrency must be 1 to 10000");
    }
    if o.payload_bytes < 32 || o.payload_bytes > 64_000 {
        return bad("--payload-bytes must be 32 to 64000");
    }
    if o.batch == 0 || o.batch > 100_000 {
        return bad("--batch must be 1 to 100000");
    }
    if o.count == Some(0) {
        return bad("--count must be at least 1");
    }
    if o.duration.is_some_and(|d| d.is_zero() || d > o.deadline) {
        return bad("--duration must be positive and within the deadline");
    }
    if o.rate
        .is_some_and(|r| !(r.is_finite() && r > 0.0 && r <= 1e6))
    {
        return bad("--rate must be between 0 and 1000000 requests/s");
    }
    if o.max_in_flight == 0 {
        return bad("--max-in-flight must be at least 1");
    }
    if o.verify_every == 0 {
        return bad("--verify-every must be at least 1");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(change: impl FnOnce(&mut Options)) -> String {
        let mut o = Options::new(Mode::Append, "http://127.0.0.1:1");
        change(&mut o);
        match validate(&o) {
            Err(LoadError::Usage(m)) => m,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_defaults_pass_and_each_limit_names_its_flag() {
        assert!(validate(&Options::new(Mode::Mixed, "http://127.0.0.1:1")).is_ok());
        assert_eq!(
            refused(|o| o.concurrency = 10_001),
            "--concurrency must be 1 to 10000"
        );
        assert_eq!(
            refused(|o| o.payload_bytes = 31),
            "--payload-bytes must be 32 to 64000"
        );
        assert_eq!(refused(|o| o.batch = 0), "--batch must be 1 to 100000");
        assert_eq!(refused(|o| o.count = Some(0)), "--count must be at least 1");
        assert_eq!(
            refused(|o| o.duration = Some(o.deadline + Duration::from_secs(1))),
            "--duration must be positive and within the deadline"
        );
        assert_eq!(
            refused(|o| o.rate = Some(f64::NAN)),
            "--rate must be between 0 and 1000000 requests/s"
        );
        assert_eq!(
            refused(|o| o.max_in_flight = 0),
            "--max-in-flight must be at least 1"
        );
        assert_eq!(
            refused(|o| o.verify_every = 0),
            "--verify-every must be at least 1"
        );
    }

    #[test]
    fn which_modes_append_and_which_need_entries() {
        let all = [
            Mode::Append,
            Mode::Batch,
            Mode::Checkpoint,
            Mode::Inclusion,
            Mode::Consistency,
            Mode::Tiles,
            Mode::Mixed,
        ];
        let appends: Vec<_> = all.iter().filter(|m| m.appends()).collect();
        let reads: Vec<_> = all.iter().filter(|m| m.needs_entries()).collect();
        assert_eq!(appends, [&Mode::Append, &Mode::Batch, &Mode::Checkpoint]);
        assert_eq!(
            reads,
            [
                &Mode::Inclusion,
                &Mode::Consistency,
                &Mode::Tiles,
                &Mode::Mixed
            ]
        );
    }
}
