//! `sealtrail-loadgen`: drives a sealtrail server with a bounded load, checks every answer, and
//! prints a JSON summary. Exit status: 0 for a clean run, 1 if any request failed or any answer
//! did not verify, 2 if the run could not start.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use sealtrail_tests::loadgen::{self, Mode, Options};

#[derive(Parser, Debug)]
#[command(
    name = "sealtrail-loadgen",
    about = "Load generator for a sealtrail server; every answer is checked"
)]
struct Cli {
    /// What each request does.
    #[arg(long, value_enum, default_value = "append")]
    mode: Mode,
    /// The server, http://HOST:PORT (a loopback address unless --allow-remote).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Closed loop: concurrent clients, each on its own connection.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Bytes of each JSON payload.
    #[arg(long, default_value_t = 256)]
    payload_bytes: usize,
    /// Entries per request in batch mode.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Seconds to run (default 10 when --count is not given).
    #[arg(long)]
    duration: Option<f64>,
    /// Requests to make.
    #[arg(long)]
    count: Option<u64>,
    /// Open loop: requests started per second, on schedule, whatever the server's pace.
    #[arg(long)]
    rate: Option<f64>,
    /// Open loop: most requests in flight.
    #[arg(long, default_value_t = 1024)]
    max_in_flight: usize,
    /// Bearer token for the Authorization header (or SEALTRAIL_TOKEN).
    #[arg(long, env = "SEALTRAIL_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Allow a target that is not a loopback address.
    #[arg(long)]
    allow_remote: bool,
    /// The log's verifier key (vkey); default: the one GET /v1/log names.
    #[arg(long)]
    log_key: Option<String>,
    /// Verify the Merkle path of one proof or tile answer in N (1: all).
    #[arg(long, default_value_t = 10)]
    verify_every: u64,
    /// After appending, prove this many acknowledged entries into a fresh checkpoint.
    #[arg(long, default_value_t = 100)]
    post_check: usize,
    /// Append this many entries (batches of 1000, unmeasured) before the run.
    #[arg(long, default_value_t = 0)]
    prefill: u64,
    /// The server's pid, to report its CPU time and memory.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Hard limit on the run in seconds, whatever --count says.
    #[arg(long, default_value_t = 3600.0)]
    deadline: f64,
    /// Tokio worker threads of the generator (it shares the machine with the server).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Append this run's results-table row (one JSON line) to FILE.
    #[arg(long, value_name = "FILE")]
    record: Option<PathBuf>,
    /// The row's scenario name.
    #[arg(long, default_value = "run")]
    scenario: String,
    /// Goal for the row: entries/s (append modes) or requests/s at least this.
    #[arg(long)]
    goal_rate: Option<f64>,
    /// Goal for the row: p99 latency at most this many milliseconds.
    #[arg(long)]
    goal_p99_ms: Option<f64>,
    /// Measure this disk instead of a server: timed 4 KiB writes each followed by fdatasync, in
    /// a scratch file in DIR, for --duration seconds (default 10, at most --count syncs); prints
    /// a JSON summary with the latency percentiles.
    #[arg(long, value_name = "DIR")]
    fsync_probe: Option<PathBuf>,
    /// Print the rows recorded in FILE as a Markdown table, and run nothing.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
}

/// `--report FILE`: the recorded rows as Markdown.
fn report(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let rows = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, l)| {
            serde_json::from_str::<loadgen::Row>(l)
                .map_err(|e| format!("{} line {}: {e}", path.display(), n + 1))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(loadgen::markdown(&rows))
}

/// `--record FILE`: appends one JSON line.
fn record(path: &Path, row: &loadgen::Row) -> Result<(), String> {
    let line = serde_json::to_string(row).map_err(|e| e.to_string())?;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    writeln!(f, "{line}").map_err(|e| format!("{}: {e}", path.display()))
}

fn seconds(name: &str, v: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(v).map_err(|_| format!("--{name} must be a positive number"))
}

fn options(cli: Cli) -> Result<Options, String> {
    let mut o = Options::new(cli.mode, &cli.url);
    o.concurrency = cli.concurrency;
    o.payload_bytes = cli.payload_bytes;
    o.batch = cli.batch;
    o.duration = cli.duration.map(|d| seconds("duration", d)).transpose()?;
    o.count = cli.count;
    o.rate = cli.rate;
    o.max_in_flight = cli.max_in_flight;
    o.token = cli.token;
    o.allow_remote = cli.allow_remote;
    o.log_key = cli.log_key;
    o.verify_every = cli.verify_every;
    o.post_check = cli.post_check;
    o.prefill = cli.prefill;
    o.server_pid = cli.server_pid;
    o.deadline = seconds("deadline", cli.deadline)?;
    Ok(o)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(path) = &cli.report {
        return match report(path) {
            Ok(md) => {
                print!("{md}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("sealtrail-loadgen: {e}");
                ExitCode::from(2)
            }
        };
    }
    if let Some(dir) = &cli.fsync_probe {
        let duration = match seconds("duration", cli.duration.unwrap_or(10.0).min(cli.deadline)) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("sealtrail-loadgen: {e}");
                return ExitCode::from(2);
            }
        };
        return match loadgen::fsync_probe(dir, duration, cli.count.unwrap_or(u64::MAX)) {
            Ok(p) => {
                println!("{}", serde_json::to_string_pretty(&p).unwrap_or_default());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("sealtrail-loadgen: fsync probe in {}: {e}", dir.display());
                ExitCode::from(2)
            }
        };
    }
    let recording = cli
        .record
        .clone()
        .map(|f| (f, cli.scenario.clone(), cli.goal_rate, cli.goal_p99_ms));
    let threads = cli.threads.clamp(1, 64);
    let opts = match options(cli) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("sealtrail-loadgen: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sealtrail-loadgen: starting the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match rt.block_on(loadgen::run(opts)) {
        Ok(summary) => {
            match serde_json::to_string_pretty(&summary) {
                Ok(s) => println!("{s}"),
                Err(e) => {
                    eprintln!("sealtrail-loadgen: {e}");
                    return ExitCode::from(2);
                }
            }
            if let Some((file, scenario, rate, p99)) = &recording
                && let Err(e) = record(file, &summary.row(scenario, *rate, *p99))
            {
                eprintln!("sealtrail-loadgen: recording: {e}");
                return ExitCode::from(2);
            }
            if summary.clean() {
                ExitCode::SUCCESS
            } else {
                if let Some(e) = &summary.first_error {
                    eprintln!("sealtrail-loadgen: {} errors; first: {e}", summary.errors);
                }
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("sealtrail-loadgen: {e}");
            ExitCode::from(2)
        }
    }
}
