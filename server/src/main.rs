//! `sealtrail`: the log server's command line. A thin layer over the `sealtrail_server` library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use clap::{Args, Parser, Subcommand};
use sealtrail_server::config::{Config, LogFormat};
use sealtrail_server::serve::{Server, reload_on_sighup, shutdown_signal};
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
    /// API token commands.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
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
    },
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
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("listening on {listen}"))?;
        let addr = listener.local_addr()?;
        let shutdown = shutdown_signal();
        if let Some(tls) = server.tls().cloned() {
            tokio::spawn(reload_on_sighup(tls));
        }
        println!("sealtrail: listening on {scheme}://{addr}");
        tracing::info!(%addr, tree_size = server.sequencer().published().size, "listening");
        server.run(listener, shutdown).await;
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

fn token_create(name: &str, role: &str) -> Result<bool> {
    let principal = format!("token:{name}");
    sealtrail_server::auth::check_principal(&principal)
        .map_err(|e| anyhow::anyhow!("--name: {e}"))?;
    let (token, sha256) = sealtrail_server::auth::generate_token()
        .map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let name_toml = toml::Value::String(name.to_owned());
    eprintln!("The token is shown only once; store it in the client's secret store.");
    eprintln!("Add these lines to the server's config file:\n");
    eprintln!("[[auth.tokens]]\nname = {name_toml}\nrole = \"{role}\"\nsha256 = \"{sha256}\"\n");
    println!("{token}");
    Ok(true)
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
        Command::Token {
            command: TokenCommand::Create { name, role },
        } => token_create(name, role),
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
