//! `sealtrail-loadgen`: drives a sealtrail server with a bounded load, checks every answer, and
//! prints a JSON summary. Exit status: 0 for a clean run, 1 if any request failed or any answer
//! did not verify, 2 if the run could not start.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use sealtrail_tests::loadgen::attack::{AttackOptions, Scenario, attack};
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
    /// Make this resource-exhaustion attack instead of a load (needs --server-pid; --duration
    /// defaults to 20 s): prints the target's memory, /livez latency and a well-behaved client's
    /// appends during it, and how its memory came back after. Exit 1 if a probe or append failed.
    #[arg(long, value_enum, value_name = "SCENARIO")]
    attack: Option<Scenario>,
    /// Attack: connections held at once (default: 150 unread-responses, 300 slow-bodies, 4200
    /// idle-sockets).
    #[arg(long)]
    connections: Option<usize>,
    /// Attack: the loopback address attack sockets come from (probes come from 127.0.0.1).
    #[arg(long, default_value = "127.0.0.2")]
    from: std::net::IpAddr,
    /// Attack: the path asked for (unread-responses) or posted to (slow-bodies).
    #[arg(long)]
    attack_path: Option<String>,
    /// Attack (slow-bodies): the declared Content-Length.
    #[arg(long, default_value_t = 8 << 20)]
    body_bytes: usize,
    /// Attack (unread-responses): entries appended for the pages, and the page size.
    #[arg(long, default_value_t = 1000)]
    page_entries: usize,
    /// Attack (unread-responses): payload bytes of those entries.
    #[arg(long, default_value_t = 8000)]
    page_payload_bytes: usize,
    /// Attack: seconds the memory is watched after it came back near its baseline.
    #[arg(long, default_value_t = 30.0)]
    linger: f64,
    /// Attack: no well-behaved appends (a witness).
    #[arg(long)]
    no_appends: bool,
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

fn attack_options(cli: &Cli, scenario: Scenario) -> Result<AttackOptions, String> {
    let pid = cli
        .server_pid
        .ok_or("--attack needs --server-pid (the target's memory is what it measures)")?;
    let authority = cli.url.strip_prefix("http://").unwrap_or(&cli.url);
    let target: std::net::SocketAddr = authority
        .trim_end_matches('/')
        .parse()
        .map_err(|_| format!("--attack needs --url http://IP:PORT, got {:?}", cli.url))?;
    let mut o = AttackOptions::new(scenario, target, pid);
    if let Some(n) = cli.connections {
        o.connections = n;
    }
    o.from = cli.from;
    o.duration = seconds("duration", cli.duration.unwrap_or(20.0).min(cli.deadline))?;
    o.token = cli.token.clone();
    o.path = cli.attack_path.clone();
    o.body_bytes = cli.body_bytes;
    o.page_entries = cli.page_entries;
    o.payload_bytes = cli.page_payload_bytes;
    o.appends = !cli.no_appends;
    o.linger = seconds("linger", cli.linger)?;
    Ok(o)
}

fn run_attack(cli: &Cli, scenario: Scenario) -> ExitCode {
    let opts = match attack_options(cli, scenario) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("sealtrail-loadgen: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.threads.clamp(1, 64))
        .enable_all()
        .build();
    let report = match rt
        .map_err(|e| e.to_string())
        .and_then(|rt| rt.block_on(attack(opts)).map_err(|e| e.to_string()))
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sealtrail-loadgen: {e}");
            return ExitCode::from(2);
        }
    };
    println!(
        "{}",
        serde_json::to_string_pretty(&report).unwrap_or_default()
    );
    if report.livez.failed == 0 && report.appends.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(scenario) = cli.attack {
        return run_attack(&cli, scenario);
    }
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
