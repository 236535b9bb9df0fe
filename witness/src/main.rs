//! `sealtrail-witness`: the witness daemon's command line, a thin layer over the library.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use clap::{Parser, Subcommand};
use sealtrail_witness::config::Config;
use sealtrail_witness::store::Store;
use sealtrail_witness::{Witness, keys, shutdown_signal};

#[derive(Parser, Debug)]
#[command(
    name = "sealtrail-witness",
    version,
    about = "A C2SP tlog-witness: cosigns consistent checkpoints, gossips, alarms on split views"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the witness.
    Serve {
        /// TOML configuration file (see deploy/sealtrail-witness.example.toml).
        #[arg(long, env = "SEALTRAIL_WITNESS_CONFIG")]
        config: PathBuf,
        /// Address to listen on (overrides the file).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// PEM certificate chain for TLS (overrides the file; needs --tls-key).
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// PEM private key for TLS (overrides the file; needs --tls-cert).
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
    },
    /// Create a new witness key file (mode 0600) and print its verifier key.
    Keygen {
        /// The witness name, e.g. witness.example.com/w1.
        #[arg(long)]
        name: String,
        /// Where to write the key (refuses to overwrite).
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the recorded split views (the witness must be stopped).
    SplitViews {
        /// TOML configuration file.
        #[arg(long, env = "SEALTRAIL_WITNESS_CONFIG")]
        config: PathBuf,
    },
    /// Remove the split-view block of a log so it is cosigned again (the witness must be
    /// stopped). Prints the removed evidence as JSON: archive it.
    ClearSplitView {
        /// TOML configuration file.
        #[arg(long, env = "SEALTRAIL_WITNESS_CONFIG")]
        config: PathBuf,
        /// The log's origin.
        #[arg(long)]
        origin: String,
    },
}

fn init_logging(c: &Config) {
    sealtrail_net::logging::init(&c.log);
}

fn serve(
    config: &Path,
    listen: Option<std::net::SocketAddr>,
    tls: Option<(PathBuf, PathBuf)>,
) -> Result<()> {
    let mut config = Config::from_file(config)?;
    if let Some(l) = listen {
        config.listen = l;
    }
    if let Some((cert, key)) = tls {
        config.tls.cert_file = Some(cert);
        config.tls.key_file = Some(key);
    }
    let scheme = if config.tls.cert_file.is_some() {
        "https"
    } else {
        "http"
    };
    init_logging(&config);
    let listen = config.listen;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let witness = Witness::start(config)?;
        println!(
            "sealtrail-witness: verifier key {}",
            witness.verifier().to_vkey()
        );
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("listening on {listen}"))?;
        let addr = listener.local_addr()?;
        println!("sealtrail-witness: listening on {scheme}://{addr}");
        tracing::info!(%addr, "listening");
        witness.run(listener, shutdown_signal()).await;
        Ok(())
    })
}

fn open_store(config: &Path) -> Result<Store> {
    let config = Config::from_file(config)?;
    Ok(Store::open(&config.data_dir)?)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve {
            config,
            listen,
            tls_cert,
            tls_key,
        } => serve(&config, listen, tls_cert.zip(tls_key)),
        Command::Keygen { name, out } => keys::generate(&name)
            .and_then(|c| keys::write_new(&out, &c).map(|()| c))
            .map(|c| println!("{}", c.verifier().to_vkey()))
            .map_err(anyhow::Error::from),
        Command::SplitViews { config } => open_store(&config).and_then(|s| {
            println!("{}", serde_json::to_string_pretty(&s.split_views()?)?);
            Ok(())
        }),
        Command::ClearSplitView { config, origin } => {
            open_store(&config).and_then(|s| match s.clear_split_view(&origin)? {
                Some(split) => {
                    println!("{}", serde_json::to_string_pretty(&split)?);
                    eprintln!("sealtrail-witness: split view of {origin:?} cleared");
                    Ok(())
                }
                None => bail!("no split view is recorded for {origin:?}"),
            })
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sealtrail-witness: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
