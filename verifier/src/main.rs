//! `sealtrail-verify`: parses the command line, runs one command of the `sealtrail_verifier`
//! library and prints its report. Exit codes: 0 verified, 1 verification failed, 2 usage or I/O
//! error.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use sealtrail_spec::Hash;
use sealtrail_verifier::consistency::ProofFrom;
use sealtrail_verifier::proof::Leaf;
use sealtrail_verifier::record::RecordFrom;
use sealtrail_verifier::source::Source;
use sealtrail_verifier::trust::{Trust, WitnessArgs};
use sealtrail_verifier::{Error, Report, read_file};

#[derive(Debug, Parser)]
#[command(
    name = "sealtrail-verify",
    version,
    about = "Verify a C2SP tlog-tiles transparency log"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args)]
struct Common {
    /// The log's note verifier key (vkey).
    #[arg(long)]
    log_key: String,
    /// The log's origin; defaults to the key's name.
    #[arg(long)]
    origin: Option<String>,
    /// Print the result as one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct Witnesses {
    /// A C2SP tlog-policy file with the witnesses and quorum.
    #[arg(long, conflicts_with = "witness_key")]
    policy: Option<PathBuf>,
    /// A witness's cosignature vkey; repeatable.
    #[arg(long)]
    witness_key: Vec<String>,
    /// How many of the --witness-key witnesses must cosign (default: all).
    #[arg(long, requires = "witness_key")]
    quorum: Option<usize>,
}

/// The entry a tlog-proof is checked for: exactly one of the two, and a missing one names both.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
struct LeafArgs {
    /// The entry's bytes (for sealtrail, the leaf envelope).
    #[arg(long)]
    entry: Option<PathBuf>,
    /// The entry's RFC 6962 leaf hash, in hex.
    #[arg(long)]
    leaf_hash: Option<String>,
}

/// Where `entry` gets the entry's private record (salt, principal, payload) to check it against
/// the leaf.
#[derive(Debug, Args)]
struct RecordArgs {
    /// Check the record in this JSON file (the log's GET /v1/entries/{i} answer, or only its
    /// "record" object) instead of fetching it.
    #[arg(long, value_name = "FILE", conflicts_with = "no_record")]
    record: Option<PathBuf>,
    /// Bearer token for GET /v1/entries/{i}; used only when LOG is an http(s) URL, never sent
    /// with tile requests.
    #[arg(long, env = "SEALTRAIL_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Do not fetch or check the record (inclusion only).
    #[arg(long)]
    no_record: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Verify a checkpoint's log signature and witness cosignatures.
    Checkpoint {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        witnesses: Witnesses,
        /// The signed checkpoint file.
        file: PathBuf,
    },
    /// Verify a c2sp.org/tlog-proof@v1 offline.
    Proof {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        witnesses: Witnesses,
        #[command(flatten)]
        leaf: LeafArgs,
        /// Check the entry's private record in this JSON file (the log's GET /v1/entries/{i}
        /// answer, or only its "record" object; with --leaf-hash, the whole answer).
        #[arg(long, value_name = "FILE")]
        record: Option<PathBuf>,
        /// The tlog-proof file.
        proof: PathBuf,
    },
    /// Verify that checkpoint NEW extends checkpoint OLD.
    Consistency {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        witnesses: Witnesses,
        /// A consistency proof file: one base64 hash per line.
        #[arg(long, conflicts_with = "from")]
        proof: Option<PathBuf>,
        /// Compute the proof from this log's tiles (URL or static tile directory).
        #[arg(long)]
        from: Option<String>,
        old: PathBuf,
        new: PathBuf,
    },
    /// Fetch and verify one entry, its inclusion and the checkpoint, then its private record
    /// (from an http(s) log by default, or --record FILE).
    Entry {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        witnesses: Witnesses,
        #[command(flatten)]
        record: RecordArgs,
        /// The log: a URL or a static tile directory.
        log: String,
        index: u64,
    },
    /// Recompute the whole log from its entry bundles and check every tile and the root.
    Audit {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        witnesses: Witnesses,
        /// Resume from, and record progress in, this state file.
        #[arg(long)]
        state: Option<PathBuf>,
        /// The log: a URL, a static tile directory, or an export archive (`sealtrail export
        /// --archive`).
        log: String,
    },
    /// Verify an evidence package (`sealtrail evidence`) offline: the log's signed manifest, every
    /// file's SHA-256, the checkpoint and witness quorum, every inclusion proof, every record
    /// against its commitment and the scope, every erasure, the consistency proof.
    Evidence {
        /// The log's note verifier key (vkey). Default: the package's own log.vkey, which only
        /// shows the package is self-consistent; pin the key you trust.
        #[arg(long)]
        log_key: Option<String>,
        /// A C2SP tlog-policy file with the witnesses and quorum. Default: the package's own
        /// witness-policy, if it has one.
        #[arg(long)]
        policy: Option<PathBuf>,
        /// Print the result as one JSON object.
        #[arg(long)]
        json: bool,
        /// The package: a .tar.gz file, or the directory it was extracted into.
        package: PathBuf,
    },
    /// Verify RFC 3161 time-stamp tokens: a witness's anchored checkpoints (a file with its
    /// `.tst` token beside it, or every `*.checkpoint` under a directory) against the TSA's
    /// certificate chain.
    Timestamp {
        /// The TSA's root (or issuing) CA certificate, PEM; repeatable. Only these are trusted.
        #[arg(long, value_name = "PEM", required = true)]
        tsa_ca: Vec<PathBuf>,
        /// More certificates, PEM: the TSA's own when the token does not carry it, and
        /// intermediates; repeatable.
        #[arg(long, value_name = "PEM")]
        tsa_cert: Vec<PathBuf>,
        /// The token; default: FILE with the extension `.tst`.
        #[arg(long, value_name = "TOKEN")]
        token: Option<PathBuf>,
        /// Print the result as one JSON object.
        #[arg(long)]
        json: bool,
        /// The time-stamped file (a checkpoint), or a directory of them.
        file: PathBuf,
    },
    /// Follow a log: verify each new checkpoint and its consistency with the trusted state.
    Monitor {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        witnesses: Witnesses,
        /// The trusted checkpoint; created on the first poll, advanced only after verification.
        #[arg(long)]
        state: PathBuf,
        /// Seconds between polls.
        #[arg(long, default_value_t = 60)]
        interval: u64,
        /// Poll once; exit 1 on an alert.
        #[arg(long)]
        once: bool,
        /// POST each alert (JSON) to this URL.
        #[arg(long)]
        alert_webhook: Option<String>,
        /// The log: a URL or a static tile directory.
        log: String,
    },
}

fn trust(common: &Common, w: &Witnesses) -> Result<Trust, Error> {
    let policy = w.policy.as_deref().map(read_file).transpose()?;
    let args = WitnessArgs {
        policy,
        witness_keys: w.witness_key.clone(),
        quorum: w.quorum,
    };
    Trust::new(&common.log_key, common.origin.as_deref(), args)
}

fn run(command: &Command) -> Result<Report, Error> {
    match command {
        Command::Checkpoint {
            common,
            witnesses,
            file,
        } => sealtrail_verifier::checkpoint::run(&trust(common, witnesses)?, &read_file(file)?),
        Command::Proof {
            common,
            witnesses,
            leaf: LeafArgs { entry, leaf_hash },
            record,
            proof,
        } => {
            let leaf = match (entry, leaf_hash) {
                (Some(f), _) => Leaf::Entry(read_file(f)?),
                (None, Some(h)) => Leaf::Hash(
                    Hash::from_hex(h).map_err(|e| Error::Usage(format!("--leaf-hash: {e}")))?,
                ),
                (None, None) => return Err(Error::Usage("give --entry or --leaf-hash".into())),
            };
            let trust = trust(common, witnesses)?;
            let record = record.as_deref().map(read_file).transpose()?;
            sealtrail_verifier::proof::run_with_record(
                &trust,
                &read_file(proof)?,
                &leaf,
                record.as_deref(),
            )
        }
        Command::Consistency {
            common,
            witnesses,
            proof,
            from,
            old,
            new,
        } => {
            let trust = trust(common, witnesses)?;
            let source = from.as_deref().map(Source::open).transpose()?;
            let from = match (proof, &source) {
                (Some(f), _) => ProofFrom::File(read_file(f)?),
                (None, Some(s)) => ProofFrom::Log(s),
                (None, None) => ProofFrom::None,
            };
            sealtrail_verifier::consistency::run(&trust, &read_file(old)?, &read_file(new)?, from)
        }
        Command::Entry {
            common,
            witnesses,
            record,
            log,
            index,
        } => {
            let trust = trust(common, witnesses)?;
            let from = match record {
                RecordArgs {
                    no_record: true, ..
                } => RecordFrom::Skip,
                RecordArgs {
                    record: Some(f), ..
                } => RecordFrom::File(read_file(f)?),
                RecordArgs { token, .. } => RecordFrom::Log {
                    token: token.clone().filter(|t| !t.is_empty()),
                },
            };
            sealtrail_verifier::entry::run_with(&trust, &Source::open(log)?, *index, &from)
        }
        Command::Audit {
            common,
            witnesses,
            state,
            log,
        } => {
            let trust = trust(common, witnesses)?;
            let source = Source::open(log)?;
            let terminal = std::io::stderr().is_terminal();
            let mut progress = |done: u64, size: u64| {
                if terminal {
                    eprint!("\raudited {done} of {size} entries");
                    if done == size {
                        eprintln!();
                    }
                }
            };
            sealtrail_verifier::audit::run_with_progress(
                &trust,
                &source,
                state.as_deref(),
                &mut progress,
            )
        }
        Command::Evidence {
            log_key,
            policy,
            json: _,
            package,
        } => {
            use sealtrail_verifier::evidence::{Keys, Package, run};
            let keys = Keys {
                log_key: log_key.clone(),
                policy: policy.as_deref().map(read_file).transpose()?,
            };
            run(&Package::open(package)?, &keys)
        }
        Command::Timestamp {
            tsa_ca,
            tsa_cert,
            token,
            json: _,
            file,
        } => {
            use sealtrail_verifier::timestamp::{Authorities, pairs, run};
            let authorities = Authorities::from_pem_files(tsa_ca, tsa_cert)?;
            run(&pairs(file, token.as_deref())?, &authorities)
        }
        Command::Monitor {
            common,
            witnesses,
            state,
            interval,
            once,
            alert_webhook,
            log,
        } => {
            let trust = trust(common, witnesses)?;
            let follow = Follow {
                state,
                interval: *interval,
                once: *once,
                webhook: alert_webhook.as_deref(),
                json: common.json,
            };
            monitor(&trust, &Source::open(log)?, &follow)
        }
    }
}

struct Follow<'a> {
    state: &'a std::path::Path,
    interval: u64,
    once: bool,
    webhook: Option<&'a str>,
    json: bool,
}

/// Polls until an alert with `--once`, or forever. Alerts are JSON lines on stdout (and the
/// webhook); the state is advanced only by a verified poll.
fn monitor(trust: &Trust, source: &Source, f: &Follow<'_>) -> Result<Report, Error> {
    use sealtrail_verifier::monitor;
    loop {
        match monitor::poll(trust, source, f.state) {
            Err(e @ Error::Failed(_)) => {
                let alert = monitor::alert(trust.origin(), &e);
                println!("{alert}");
                if let Some(url) = f.webhook
                    && let Err(w) = monitor::send_webhook(url, &alert)
                {
                    eprintln!("error: {w}");
                }
                if f.once {
                    return Err(e);
                }
            }
            Err(e) if f.once => return Err(e),
            Err(e) => eprintln!("error: {e}"),
            Ok(report) if f.once => return Ok(report),
            Ok(report) => print_report(report, f.json),
        }
        std::thread::sleep(std::time::Duration::from_secs(f.interval));
    }
}

fn print_report(report: Report, json: bool) {
    if json {
        let mut j = report.json;
        j["verified"] = true.into();
        println!("{j}");
    } else {
        for line in report.lines {
            println!("{line}");
        }
        println!("OK: verified");
    }
}

fn json_flag(command: &Command) -> bool {
    match command {
        Command::Checkpoint { common, .. }
        | Command::Proof { common, .. }
        | Command::Consistency { common, .. }
        | Command::Entry { common, .. }
        | Command::Audit { common, .. }
        | Command::Monitor { common, .. } => common.json,
        Command::Evidence { json, .. } | Command::Timestamp { json, .. } => *json,
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = json_flag(&cli.command);
    match run(&cli.command) {
        Ok(report) => {
            print_report(report, json);
            ExitCode::SUCCESS
        }
        Err(e) => {
            if json {
                let j = serde_json::json!({
                    "verified": false,
                    "category": e.category(),
                    "error": e.to_string(),
                });
                println!("{j}");
            } else if e.exit_code() == 1 {
                eprintln!("FAILED: {e}");
            } else {
                eprintln!("error: {e}");
            }
            ExitCode::from(e.exit_code())
        }
    }
}
