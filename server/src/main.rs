//! `sealtrail`: the log server's command line. A thin layer over the `sealtrail_server` library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use clap::{Args, Parser, Subcommand};
use sealtrail_server::config::{Config, LogFormat};
use sealtrail_server::serve::{Server, reload_on_sighup, shutdown_signal};
use sealtrail_server::store::{self, Engine};
use sealtrail_server::{export, fsck, keys, status};
use sealtrail_spec::note::{Ed25519Verifier, Signer as _, Verifier as _};

mod evidence_cli;
mod privacy_cli;

/// Threads for store work off the HTTP workers: scans, and point reads while the store reads
/// from the disk (see `api::read::ReadPath`). Enough to keep a disk's queue full; tokio's
/// default of 512 let a burst of disk reads start dozens of threads, each keeping its own
/// allocator heap, and the server's RSS after the read benchmarks went from about 260 to
/// 370-450 MiB (BENCHMARKS.md). Further work queues until a thread is free.
const BLOCKING_THREADS: usize = 16;

/// mimalloc instead of glibc's malloc: the read path frees and allocates many tile-sized buffers,
/// and glibc's fastbin consolidation cost a fifth of the server's CPU serving proofs
/// (BENCHMARKS.md, "Tuning: the allocator").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(
    name = "sealtrail",
    version,
    about = "A verifiable, append-only audit log"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the log server (creates the signing key on first start).
    Serve(Common),
    /// Create a new signing key file and print its verifier key.
    Keygen {
        /// The log origin (the key's name), e.g. audit.example.com/prod.
        #[arg(long, env = "SEALTRAIL_ORIGIN")]
        origin: String,
        /// Where to write the key (refuses to overwrite).
        #[arg(long)]
        out: PathBuf,
    },
    /// Configuration commands.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Recompute every hash from the stored entries and check tiles and checkpoint.
    Fsck(Common),
    /// Write a consistent snapshot of the log as a static tlog-tiles directory (a backup and a
    /// mirror), recomputing and checking every hash against the signed checkpoint.
    Export {
        /// Output directory: new, empty, or an earlier export to bring up to date.
        #[arg(long, required_unless_present = "archive", conflicts_with = "archive")]
        out: Option<PathBuf>,
        /// Write a whole export as one compressed tar file instead (a new file; by convention
        /// .tar.gz), which `import` and `sealtrail-verify audit` read directly.
        #[arg(long, value_name = "FILE")]
        archive: Option<PathBuf>,
        /// Read from this running server (its tlog-tiles endpoints). Without it the store in
        /// the data directory is read, which needs the server stopped.
        #[arg(long)]
        url: Option<String>,
        /// The log's verifier key (vkey) to check the checkpoint with. Default: from the key
        /// file when reading the store; with --url, required.
        #[arg(long)]
        log_key: Option<String>,
        /// With --url: a bearer token that may read content (reader role), to export the
        /// private records.
        #[arg(long, env = "SEALTRAIL_TOKEN")]
        token: Option<String>,
        /// Write no private records (`private/`): a public mirror of tiles and checkpoint only.
        #[arg(long)]
        public_only: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Rebuild a new data directory from an export, checking every entry, hash and the
    /// checkpoint signature with the log's own key first. The log continues from there.
    Import {
        /// The export directory, or an archive written by `export --archive`.
        dir: PathBuf,
        /// Also copy the key file into the new data directory as log.key (mode 0600), so that
        /// `serve --data-dir` finds it without --key-file.
        #[arg(long)]
        copy_key: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Check a running server's health: exit 0 healthy, 1 warning, 2 critical.
    Status {
        /// The server's base URL.
        #[arg(long, default_value = "http://127.0.0.1:8080", env = "SEALTRAIL_URL")]
        url: String,
        /// Bearer token, when the server's metrics are private.
        #[arg(long, env = "SEALTRAIL_TOKEN")]
        token: Option<String>,
        /// Print one JSON object instead of lines.
        #[arg(long)]
        json: bool,
        /// Seconds entries may wait without a new checkpoint (critical after).
        #[arg(long, default_value_t = 60.0)]
        max_checkpoint_age: f64,
        /// Seconds the witness policy may stay unmet (critical after).
        #[arg(long, default_value_t = 300.0)]
        max_cosign_lag: f64,
        /// Free fraction of the data directory's filesystem below which to warn.
        #[arg(long, default_value_t = 0.10)]
        disk_warn_free: f64,
        /// Free fraction below which it is critical.
        #[arg(long, default_value_t = 0.05)]
        disk_critical_free: f64,
        /// Forwarding lag in entries that warns (critical at ten times).
        #[arg(long, default_value_t = 100_000.0)]
        max_forward_lag: f64,
        /// Fraction of the sequencer queue in use that warns (critical at 0.9).
        #[arg(long, default_value_t = 0.5)]
        queue_warn: f64,
        /// Security events per minute (auth failures, refusals, rate limiting...) that warn
        /// (critical at ten times).
        #[arg(long, default_value_t = 5.0)]
        max_security_events: f64,
        /// Request timeout in seconds.
        #[arg(long, default_value_t = 5.0)]
        timeout: f64,
        /// Seconds between the two readings the security-event rate needs (0: one reading,
        /// no rate check).
        #[arg(long, default_value_t = 2.0)]
        sample: f64,
        /// Check again every SECS seconds, printing each round, until interrupted (the rates
        /// compare with the previous round).
        #[arg(long, value_name = "SECS")]
        watch: Option<f64>,
    },
    /// API token commands.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Search a running log (GET /v1/entries/search) and print the entries as JSON lines.
    Search(SearchArgs),
    /// Download an evidence package of a scope (time range, event type, principal) from a running
    /// log: the records, their inclusion proofs, the checkpoint, keys and a report, signed by the
    /// log. Check it with `sealtrail-verify evidence`.
    Evidence(evidence_cli::EvidenceArgs),
    /// Erase private records (admin role): by index, principal, event type or time range. Each
    /// erasure is itself an entry of the log.
    Erase(privacy_cli::EraseArgs),
    /// Legal holds (admin role): records a hold covers are neither erased nor expired.
    Hold {
        #[command(subcommand)]
        command: privacy_cli::HoldCommand,
    },
    /// Rewrite the store into fresh files (server stopped), so no byte of an erased record is
    /// left in the data directory.
    Compact(Common),
    /// Move a log between storage engines: from a data directory into PostgreSQL, back, or
    /// between the embedded engines (servers stopped). Copies every row, then verifies the copy:
    /// same size and checkpoint, and fsck OK on the target. The target must be empty.
    Migrate(MigrateArgs),
}

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["from_data_dir", "from"])))]
#[command(group(clap::ArgGroup::new("target").required(true).args(["to_data_dir", "to"])))]
struct MigrateArgs {
    /// The source: an embedded store's data directory.
    #[arg(long)]
    from_data_dir: Option<PathBuf>,
    /// The source: a PostgreSQL connection string (postgres://...).
    #[arg(long)]
    from: Option<String>,
    /// The target: a new data directory.
    #[arg(long)]
    to_data_dir: Option<PathBuf>,
    /// The target: a PostgreSQL connection string of an empty database (the schema is created).
    #[arg(long)]
    to: Option<String>,
    /// The embedded engine of --from-data-dir.
    #[arg(long, value_enum, default_value = "redb")]
    from_engine: Engine,
    /// The embedded engine of --to-data-dir.
    #[arg(long, value_enum, default_value = "redb")]
    to_engine: Engine,
    /// The log's signing key, to verify the checkpoint with (default: log.key in
    /// --from-data-dir). It is copied into --to-data-dir as log.key (mode 0600).
    #[arg(long)]
    key_file: Option<PathBuf>,
    /// CA certificates (PEM) that sign the PostgreSQL server's certificate: TLS to it.
    #[arg(long)]
    pg_ca_file: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum TokenCommand {
    /// Create a new API token: prints the token once, and the config lines to add.
    Create {
        /// The principal name (recorded as `token:NAME` in every entry it appends).
        #[arg(long)]
        name: String,
        /// The token's role.
        #[arg(long, value_parser = ["submitter", "reader", "admin"])]
        role: String,
        /// When the token stops being accepted: a lifetime from now (90d, 12h, 30m) or an RFC 3339
        /// time or date. Default: never.
        #[arg(long, value_parser = expiry_arg)]
        expires: Option<u64>,
    },
}

/// `sealtrail search` options.
#[derive(Args, Debug)]
struct SearchArgs {
    /// The log's base URL.
    #[arg(long, env = "SEALTRAIL_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    #[command(flatten)]
    conditions: privacy_cli::ConditionArgs,
    /// `newest` or `oldest` first.
    #[arg(long, default_value = "newest", value_parser = ["newest", "oldest"])]
    order: String,
    /// Most entries to print; pages are fetched until this many or the end.
    #[arg(long, default_value_t = 100)]
    max: u64,
    /// Bearer token (reader role, to see content and to search by principal).
    #[arg(long, env = "SEALTRAIL_TOKEN")]
    token: Option<String>,
}

#[derive(Subcommand, Debug)]
enum ConfigCommand {
    /// Validate the configuration and print the effective settings.
    Check(Common),
}

/// Options shared by the commands that open a log.
#[derive(Args, Debug, Clone)]
struct Common {
    /// TOML configuration file (see deploy/sealtrail.example.toml).
    #[arg(long, env = "SEALTRAIL_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory (default ./sealtrail-data).
    #[arg(long, env = "SEALTRAIL_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Address to listen on (default 127.0.0.1:8080).
    #[arg(long, env = "SEALTRAIL_LISTEN")]
    listen: Option<std::net::SocketAddr>,
    /// Storage engine (default redb).
    #[arg(long, env = "SEALTRAIL_STORE", value_enum)]
    store: Option<Engine>,
    /// Log origin, used when the key is created.
    #[arg(long, env = "SEALTRAIL_ORIGIN")]
    origin: Option<String>,
    /// Signing key file (default <data-dir>/log.key).
    #[arg(long, env = "SEALTRAIL_KEY_FILE")]
    key_file: Option<PathBuf>,
    /// Log format: json or text.
    #[arg(long, env = "SEALTRAIL_LOG_FORMAT", value_parser = ["json", "text"])]
    log_format: Option<String>,
    /// Log filter, e.g. info or debug.
    #[arg(long, env = "SEALTRAIL_LOG")]
    log: Option<String>,
    /// TLS certificate chain (PEM); turns TLS on together with --tls-key.
    #[arg(long, env = "SEALTRAIL_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, env = "SEALTRAIL_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// CA certificates (PEM) for client certificates: turns on mutual TLS.
    #[arg(long, env = "SEALTRAIL_TLS_CLIENT_CA")]
    tls_client_ca: Option<PathBuf>,
}

impl Common {
    /// File, then environment and flags (clap merges those two), then validation.
    fn load(&self) -> Result<Config> {
        let mut c = match &self.config {
            Some(p) => Config::from_file(p)?,
            None => Config::default(),
        };
        if let Some(v) = &self.data_dir {
            c.data_dir.clone_from(v);
        }
        if let Some(v) = self.listen {
            c.listen = v;
        }
        if let Some(v) = self.store {
            c.store = v;
        }
        if let Some(v) = &self.origin {
            c.origin.clone_from(v);
        }
        if let Some(v) = &self.key_file {
            c.key_file = Some(v.clone());
        }
        if let Some(v) = &self.log_format {
            c.log.format = if v == "text" {
                LogFormat::Text
            } else {
                LogFormat::Json
            };
        }
        if let Some(v) = &self.log {
            c.log.level.clone_from(v);
        }
        if let Some(v) = &self.tls_cert {
            c.tls.cert_file = Some(v.clone());
        }
        if let Some(v) = &self.tls_key {
            c.tls.key_file = Some(v.clone());
        }
        if let Some(v) = &self.tls_client_ca {
            c.tls.client_ca_file = Some(v.clone());
        }
        c.validate()?;
        Ok(c)
    }
}

fn init_logging(c: &Config) {
    sealtrail_net::logging::init(&c.log);
}

fn open_store(c: &Config) -> Result<Arc<dyn store::LogStore>> {
    let s = store::open_configured(c.store, &c.data_dir, c.postgres.as_ref()).with_context(
        || match c.store {
            store::Engine::Postgres => "opening the postgres store".to_owned(),
            _ => format!(
                "opening the {:?} store in {}",
                c.store,
                c.data_dir.display()
            ),
        },
    )?;
    Ok(Arc::from(s))
}

fn serve(common: &Common) -> Result<()> {
    let config = common.load()?;
    init_logging(&config);
    // The key first: a bad key must fail before any storage is created or opened.
    let (signer, created) = keys::load_or_create(&config.key_path(), &config.origin)?;
    let store = open_store(&config)?;
    let vkey = signer.verifier().to_vkey();
    if created {
        println!(
            "sealtrail: created signing key {}",
            config.key_path().display()
        );
    }
    println!("sealtrail: origin {}", signer.name());
    println!("sealtrail: verifier key {vkey}");
    let listen = config.listen;
    let scheme = if config.tls.enabled() {
        "https"
    } else {
        "http"
    };
    let server = Server::start(config, store, signer)?;
    let guard = &server.state().guard;
    if guard.anonymous_writes() {
        println!("sealtrail: anonymous writes are allowed (listening on loopback; see [auth])");
    } else if !guard.has_credentials() {
        println!(
            "sealtrail: writes need credentials and none are configured; create a token with\n  \
             sealtrail token create --name NAME --role submitter\nand add the printed lines to the config file"
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(BLOCKING_THREADS)
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("listening on {listen}"))?;
        let addr = listener.local_addr()?;
        let shutdown = shutdown_signal();
        let reload_from = common.clone();
        tokio::spawn(reload_on_sighup(
            server.state().guard.clone(),
            server.tls().cloned(),
            listen.ip().is_loopback(),
            move || reload_from.load().map_err(|e| format!("{e:#}")),
        ));
        println!("sealtrail: listening on {scheme}://{addr}");
        tracing::info!(%addr, tree_size = server.sequencer().published().size, "listening");
        server.run(listener, shutdown).await;
        Ok::<(), anyhow::Error>(())
    })
}

fn run_fsck(common: &Common) -> Result<bool> {
    let config = common.load()?;
    // The key names the log: with --origin (or a config origin) it must match, else the key's
    // name is the origin.
    let signer = match (&common.origin, &common.config) {
        (None, None) => keys::load_any(&config.key_path())?,
        _ => keys::load(&config.key_path(), &config.origin)?,
    };
    let store = open_store(&config)?;
    let verifier = signer.verifier();
    let report = fsck::fsck(store.as_ref(), signer.name(), &verifier)?;
    println!(
        "fsck: tree size {}, {} entries hashed, {} tiles compared, {} records checked, {} \
         erased",
        report.size, report.entries, report.tiles, report.records, report.erased
    );
    if let Some(root) = report.root {
        println!("fsck: root {}", root.to_base64());
    }
    for p in &report.problems {
        println!("fsck: PROBLEM: {p}");
    }
    println!("fsck: {}", if report.ok() { "OK" } else { "FAILED" });
    Ok(report.ok())
}

fn run_export(
    common: &Common,
    (dir, archive): (Option<&std::path::Path>, Option<&std::path::Path>),
    url: Option<&str>,
    log_key: Option<&str>,
    token: Option<String>,
    public_only: bool,
) -> Result<bool> {
    let config = common.load()?;
    let verifier = match log_key {
        Some(vkey) => Ed25519Verifier::from_vkey(vkey).context("--log-key")?,
        None if url.is_some() => {
            anyhow::bail!("--url needs --log-key: the export is checked against the log's key")
        }
        None => keys::load_any(&config.key_path())?.verifier(),
    };
    let origin = verifier.name().to_owned();
    // An archive: a whole export into a directory beside it, then packed and renamed into place.
    let staging = archive.map(|a| {
        let mut d = a.as_os_str().to_owned();
        d.push(".partial.d");
        PathBuf::from(d)
    });
    if let (Some(a), Some(d)) = (archive, &staging) {
        if a.exists() {
            anyhow::bail!("{} exists; choose a new file", a.display());
        }
        if d.exists() {
            std::fs::remove_dir_all(d)
                .with_context(|| format!("removing the leftover {}", d.display()))?;
        }
    }
    let out = match (dir, &staging) {
        (Some(d), _) => d,
        (None, Some(s)) => s.as_path(),
        (None, None) => anyhow::bail!("give --out DIR or --archive FILE"),
    };
    let summary = match url {
        Some(url) => {
            let mut source = export::HttpSource::new(url, token)?;
            export::export(&mut source, &origin, &verifier, out, public_only)?
        }
        None => {
            let store = open_store(&config)?;
            let mut source = export::StoreSource(store.as_ref());
            export::export(&mut source, &origin, &verifier, out, public_only)?
        }
    };
    if let (Some(a), Some(d)) = (archive, &staging) {
        let packed = sealtrail_server::archive::write(d, a);
        let _ = std::fs::remove_dir_all(d);
        let bytes = packed?;
        println!(
            "export: {} at tree size {} ({} files, {bytes} bytes compressed)",
            a.display(),
            summary.size,
            summary.files_written
        );
        return Ok(true);
    }
    println!(
        "export: {} at tree size {} ({} files, {} bytes written)",
        out.display(),
        summary.size,
        summary.files_written,
        summary.bytes_written
    );
    Ok(true)
}

fn run_migrate(m: &MigrateArgs) -> Result<bool> {
    let open = |dir: &Option<PathBuf>, url: &Option<String>, engine: Engine| {
        let pg = url.as_ref().map(|u| store::pg_store::PgConfig {
            tls_ca_file: m.pg_ca_file.clone(),
            ..store::pg_store::PgConfig::new(u.clone())
        });
        let (engine, dir) = match (dir, &pg) {
            (Some(d), _) if engine == Engine::Postgres => {
                anyhow::bail!("{} is a data directory: choose redb or sled", d.display())
            }
            (Some(d), _) => (engine, d.clone()),
            (None, _) => (Engine::Postgres, PathBuf::new()),
        };
        store::open_configured(engine, &dir, pg.as_ref())
            .map(Arc::<dyn store::LogStore>::from)
            .with_context(|| match engine {
                Engine::Postgres => "opening the postgres store".to_owned(),
                _ => format!("opening the {engine:?} store in {}", dir.display()),
            })
    };
    let key_path = match (&m.key_file, &m.from_data_dir) {
        (Some(k), _) => k.clone(),
        (None, Some(d)) => d.join("log.key"),
        (None, None) => anyhow::bail!("pass --key-file: the log's key verifies the copy"),
    };
    let signer = keys::load_any(&key_path)?;
    if let Some(d) = &m.to_data_dir
        && std::fs::read_dir(d).is_ok_and(|mut e| e.next().is_some())
    {
        anyhow::bail!("{} is not empty: migrate into a new directory", d.display());
    }
    let from = open(&m.from_data_dir, &m.from, m.from_engine)?;
    let to = open(&m.to_data_dir, &m.to, m.to_engine)?;
    let report = sealtrail_server::migrate::migrate(
        from.as_ref(),
        to.as_ref(),
        signer.name(),
        &signer.verifier(),
        &mut |step| eprintln!("sealtrail migrate: {step}"),
    )?;
    if let Some(d) = &m.to_data_dir {
        keys::write_new(&d.join("log.key"), &signer)?;
    }
    println!(
        "migrated {} entries (root {}): {} records, {} erased, {} tiles, {} idempotency records, \
         {} holds, {} forwarding cursors; verified",
        report.size,
        report.root.to_base64(),
        report.records,
        report.erased,
        report.tiles,
        report.idempotency,
        report.holds,
        report.cursors
    );
    Ok(true)
}

fn run_import(common: &Common, dir: &std::path::Path, copy_key: bool) -> Result<bool> {
    let mut config = common.load()?;
    if config.store == store::Engine::Postgres {
        anyhow::bail!(
            "import restores into an embedded store (redb or sled); import there, then move \
             the log into PostgreSQL with `sealtrail migrate --from-data-dir DIR --to URL`"
        );
    }
    let key_path = config.key_path();
    if !key_path.exists() {
        anyhow::bail!(
            "the log's signing key is needed: pass --key-file (not found at {})",
            key_path.display()
        );
    }
    let signer = keys::load_any(&key_path)?;
    // The key names the log: the restored log keeps its origin.
    config.origin = signer.name().to_owned();
    let copy = copy_key.then(|| signer.clone());
    // An archive is unpacked beside the new data directory (the same filesystem, which must hold
    // the restored log anyway), and removed afterwards.
    let extracted = if sealtrail_server::archive::is_archive(dir) {
        let parent = match config.data_dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Some(sealtrail_server::archive::extract(dir, &parent)?)
    } else {
        None
    };
    let from = extracted.as_ref().map_or(dir, |s| s.path());
    let summary = export::import(from, &config, signer)?;
    drop(extracted);
    println!(
        "import: {} restored at tree size {}, root {}",
        config.data_dir.display(),
        summary.size,
        summary.root.to_base64()
    );
    if summary.erased_again > 0 {
        println!(
            "import: {} records of the export were erased again (its records files predate \
             erasure entries it holds); the store was compacted",
            summary.erased_again
        );
    }
    let default_key = config.data_dir.join("log.key");
    if let Some(signer) = copy.filter(|_| key_path != default_key) {
        keys::write_new(&default_key, &signer)?;
        println!("import: key copied to {}", default_key.display());
    } else if key_path != default_key {
        println!("import: start it with --key-file {}", key_path.display());
    }
    Ok(true)
}

#[allow(clippy::too_many_arguments)]
/// How `sealtrail status` reads the server: once, or `--watch` every few seconds.
struct StatusRun<'a> {
    url: &'a str,
    token: Option<&'a str>,
    json: bool,
    thresholds: status::Thresholds,
    timeout: f64,
    /// Seconds between the two readings the rate checks need (0: one reading, no rate checks).
    sample: f64,
    /// Seconds between rounds, forever (`--watch`).
    watch: Option<f64>,
}

fn run_status(r: &StatusRun<'_>) -> Result<status::Level> {
    let timeout = std::time::Duration::from_secs_f64(r.timeout.max(0.1));
    let read = || status::observe(r.url, r.token, timeout);
    let mut previous = None;
    if r.watch.is_none() && r.sample > 0.0 {
        previous = Some(read());
        std::thread::sleep(std::time::Duration::from_secs_f64(r.sample));
    }
    loop {
        let observed = read();
        let findings = status::evaluate(&observed, previous.as_ref(), &r.thresholds);
        let level = status::overall(&findings);
        let at = sealtrail_spec::rfc3339_ms((observed.now_secs * 1000.0) as u64);
        if r.json {
            println!(
                "{}",
                serde_json::json!({ "url": r.url, "time": at, "status": level, "checks": findings })
            );
        } else {
            if r.watch.is_some() {
                println!("-- {at}");
            }
            for f in &findings {
                println!(
                    "{:<8} {:<15} {}",
                    format!("{:?}", f.level).to_uppercase(),
                    f.check,
                    f.message
                );
            }
            println!("status: {}", format!("{level:?}").to_uppercase());
        }
        let Some(every) = r.watch else {
            return Ok(level);
        };
        previous = Some(observed);
        std::thread::sleep(std::time::Duration::from_secs_f64(every.max(1.0)));
    }
}

/// `--expires`: `N` days, hours or minutes from now (`90d`, `12h`, `30m`), or an RFC 3339 time or
/// date; in ms since the Unix epoch.
fn expiry_arg(text: &str) -> Result<u64, String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_millis();
    let now = u64::try_from(now).map_err(|e| e.to_string())?;
    let unit_ms = match text.as_bytes().last() {
        Some(b'd') => Some(86_400_000),
        Some(b'h') => Some(3_600_000),
        Some(b'm') => Some(60_000),
        _ => None,
    };
    if let Some(unit) = unit_ms
        && let Some(n) = sealtrail_spec::parse_decimal(&text[..text.len() - 1]).filter(|n| *n > 0)
    {
        return n
            .checked_mul(unit)
            .and_then(|d| d.checked_add(now))
            .ok_or_else(|| format!("{text:?} is too far in the future"));
    }
    let at = sealtrail_spec::parse_time_ms(text).map_err(|_| {
        format!("{text:?} is neither a lifetime (90d, 12h, 30m) nor an RFC 3339 time or date")
    })?;
    if at <= now {
        return Err(format!(
            "{text:?} ({}) is in the past",
            sealtrail_spec::rfc3339_ms(at)
        ));
    }
    Ok(at)
}

fn token_create(name: &str, role: &str, expires_ms: Option<u64>) -> Result<bool> {
    let principal = format!("token:{name}");
    sealtrail_server::auth::check_principal(&principal)
        .map_err(|e| anyhow::anyhow!("--name: {e}"))?;
    let (token, sha256) = sealtrail_server::auth::generate_token()
        .map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let name_toml = toml::Value::String(name.to_owned());
    eprintln!("The token is shown only once; store it in the client's secret store.");
    eprintln!("Add these lines to the server's config file:\n");
    let expires = expires_ms.map_or(String::new(), |ms| {
        format!("expires_at = \"{}\"\n", sealtrail_spec::rfc3339_ms(ms))
    });
    eprintln!(
        "[[auth.tokens]]\nname = {name_toml}\nrole = \"{role}\"\nsha256 = \"{sha256}\"\n{expires}"
    );
    eprintln!("# then reload the server: systemctl reload sealtrail (or kill -HUP its pid)");
    println!("{token}");
    Ok(true)
}

/// A time on the command line: an RFC 3339 time or date, or ms since the Unix epoch.
fn time_arg(text: &str) -> Result<u64, String> {
    sealtrail_spec::parse_time_ms(text)
}

fn search(a: &SearchArgs) -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .context("building the HTTP client")?;
    let base = format!("{}/v1/entries/search", a.url.trim_end_matches('/'));
    let mut printed = 0u64;
    let mut cursor: Option<u64> = None;
    while printed < a.max {
        let mut url = reqwest::Url::parse(&base).with_context(|| format!("url {base:?}"))?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("order", &a.order);
            q.append_pair("limit", &(a.max - printed).min(1000).to_string());
            if let Some(c) = cursor {
                q.append_pair("cursor", &c.to_string());
            }
            for (k, v) in a.conditions.query_pairs() {
                q.append_pair(k, &v);
            }
        }
        let mut req = client.get(url);
        if let Some(t) = &a.token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().context("requesting the search")?;
        let status = resp.status();
        let body: serde_json::Value = resp.json().context("reading the search answer")?;
        if !status.is_success() {
            anyhow::bail!("{status}: {}", body["error"]["message"]);
        }
        for e in body["entries"].as_array().into_iter().flatten() {
            println!("{e}");
            printed += 1;
        }
        match body["next_cursor"].as_u64() {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Serve(c) => serve(c).map(|()| true),
        Command::Keygen { origin, out } => keys::generate(origin)
            .and_then(|s| keys::write_new(out, &s).map(|()| s))
            .map(|s| {
                println!("{}", s.verifier().to_vkey());
                true
            })
            .map_err(anyhow::Error::from),
        Command::Config {
            command: ConfigCommand::Check(c),
        } => c.load().and_then(|mut config| {
            // Printed settings never show the database password.
            if let Some(pg) = config.postgres.as_mut() {
                pg.url = store::pg_store::redact_url(&pg.url);
            }
            print!("{}", toml::to_string_pretty(&config)?);
            eprintln!("configuration OK");
            Ok(true)
        }),
        Command::Fsck(c) => run_fsck(c),
        Command::Export {
            out,
            archive,
            url,
            log_key,
            token,
            public_only,
            common,
        } => run_export(
            common,
            (out.as_deref(), archive.as_deref()),
            url.as_deref(),
            log_key.as_deref(),
            token.clone(),
            *public_only,
        ),
        Command::Import {
            dir,
            copy_key,
            common,
        } => run_import(common, dir, *copy_key),
        Command::Status {
            url,
            token,
            json,
            max_checkpoint_age,
            max_cosign_lag,
            max_forward_lag,
            disk_warn_free,
            disk_critical_free,
            queue_warn,
            max_security_events,
            timeout,
            sample,
            watch,
        } => {
            let run = StatusRun {
                url,
                token: token.as_deref(),
                json: *json,
                thresholds: status::Thresholds {
                    max_checkpoint_age_secs: *max_checkpoint_age,
                    max_cosign_lag_secs: *max_cosign_lag,
                    max_forward_lag_entries: *max_forward_lag,
                    disk_warn_free: *disk_warn_free,
                    disk_critical_free: *disk_critical_free,
                    queue_warn_fraction: *queue_warn,
                    max_security_events_per_min: *max_security_events,
                },
                timeout: *timeout,
                sample: *sample,
                watch: *watch,
            };
            return match run_status(&run) {
                Ok(level) => ExitCode::from(level.exit_code()),
                Err(e) => {
                    eprintln!("sealtrail: error: {e:#}");
                    ExitCode::from(2)
                }
            };
        }
        Command::Token {
            command:
                TokenCommand::Create {
                    name,
                    role,
                    expires,
                },
        } => token_create(name, role, *expires),
        Command::Search(a) => search(a).map(|()| true),
        Command::Evidence(a) => evidence_cli::evidence(a),
        Command::Erase(a) => privacy_cli::erase(a),
        Command::Hold { command } => privacy_cli::hold(command),
        Command::Migrate(m) => run_migrate(m),
        Command::Compact(c) => c
            .load()
            .and_then(|config| privacy_cli::compact(config.store, &config.data_dir)),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("sealtrail: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
