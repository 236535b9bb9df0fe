//! `sealtrail`: the log server's command line. A thin layer over the `sealtrail_server` library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use clap::{Args, Parser, Subcommand};
use sealtrail_server::config::{Config, LogFormat};
use sealtrail_server::serve::{Server, shutdown_signal};
use sealtrail_server::store::{self, Engine};
use sealtrail_server::{fsck, keys};
use sealtrail_spec::note::Signer as _;

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
    /// Search a running log (GET /v1/entries/search) and print the entries as JSON lines.
    Search(SearchArgs),
}

/// `sealtrail search` options.
#[derive(Args, Debug)]
struct SearchArgs {
    /// The log's base URL.
    #[arg(long, env = "SEALTRAIL_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Sequencing time lower bound, ms since the Unix epoch (inclusive).
    #[arg(long)]
    since: Option<u64>,
    /// Sequencing time upper bound, ms since the Unix epoch (exclusive).
    #[arg(long)]
    until: Option<u64>,
    /// Exact event type.
    #[arg(long = "type")]
    event_type: Option<String>,
    /// Exact submitting principal.
    #[arg(long)]
    principal: Option<String>,
    /// `newest` or `oldest` first.
    #[arg(long, default_value = "newest", value_parser = ["newest", "oldest"])]
    order: String,
    /// Most entries to print; pages are fetched until this many or the end.
    #[arg(long, default_value_t = 100)]
    max: u64,
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
        c.validate()?;
        Ok(c)
    }
}

fn init_logging(c: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&c.log.level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match c.log.format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .init(),
        LogFormat::Text => builder.init(),
    }
}

fn open_store(c: &Config) -> Result<Arc<dyn store::LogStore>> {
    let s = store::open(c.store, &c.data_dir).with_context(|| {
        format!(
            "opening the {:?} store in {}",
            c.store,
            c.data_dir.display()
        )
    })?;
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
    let server = Server::start(config, store, signer)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("listening on {listen}"))?;
        let addr = listener.local_addr()?;
        println!("sealtrail: listening on http://{addr}");
        tracing::info!(%addr, tree_size = server.sequencer().published().size, "listening");
        server.run(listener, shutdown_signal()).await;
        Ok::<(), anyhow::Error>(())
    })
}

fn run_fsck(common: &Common) -> Result<bool> {
    let config = common.load()?;
    let signer = keys::load(&config.key_path(), &config.origin)?;
    let store = open_store(&config)?;
    let verifier = signer.verifier();
    let report = fsck::fsck(store.as_ref(), &config.origin, &verifier)?;
    println!(
        "fsck: tree size {}, {} entries hashed, {} tiles compared",
        report.size, report.entries, report.tiles
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
            let nums = [("since", a.since), ("until", a.until), ("cursor", cursor)];
            for (k, v) in nums {
                if let Some(v) = v {
                    q.append_pair(k, &v.to_string());
                }
            }
            for (k, v) in [("type", &a.event_type), ("principal", &a.principal)] {
                if let Some(v) = v {
                    q.append_pair(k, v);
                }
            }
        }
        let resp = client.get(url).send().context("requesting the search")?;
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
        } => c.load().and_then(|config| {
            print!("{}", toml::to_string_pretty(&config)?);
            eprintln!("configuration OK");
            Ok(true)
        }),
        Command::Fsck(c) => run_fsck(c),
        Command::Search(a) => search(a).map(|()| true),
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
