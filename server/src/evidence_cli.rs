//! `sealtrail evidence`: downloads an evidence package of a scope from a running server
//! (`GET /v1/evidence`) into a file (the binary's module; the package is built by the server,
//! `sealtrail_server::evidence`).

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::Args;

/// `sealtrail evidence` options.
#[derive(Args, Debug)]
pub(crate) struct EvidenceArgs {
    /// The log's base URL.
    #[arg(long, env = "SEALTRAIL_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Which records: every condition given must hold (a principal needs the reader role).
    #[command(flatten)]
    conditions: crate::privacy_cli::ConditionArgs,
    /// Bearer token; the reader role includes the records' content and salts.
    #[arg(long, env = "SEALTRAIL_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Where to write the package (a new file; by convention .tar.gz).
    #[arg(long)]
    out: PathBuf,
}

/// Downloads the package into a temporary file beside `--out`, then renames it: a failed or
/// interrupted download leaves no file that looks like a package.
pub(crate) fn evidence(a: &EvidenceArgs) -> Result<bool> {
    if a.out.exists() {
        anyhow::bail!("{} exists; choose a new file", a.out.display());
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(3600))
        .build()
        .context("building the HTTP client")?;
    let base = format!("{}/v1/evidence", a.url.trim_end_matches('/'));
    let mut url = reqwest::Url::parse(&base).with_context(|| format!("url {base:?}"))?;
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in a.conditions.query_pairs() {
            q.append_pair(k, &v);
        }
    }
    let mut req = client.get(url);
    if let Some(t) = a.token.as_deref().filter(|t| !t.is_empty()) {
        req = req.bearer_auth(t);
    }
    let mut resp = req.send().context("requesting the evidence package")?;
    let status = resp.status();
    if !status.is_success() {
        let body: serde_json::Value = resp.json().unwrap_or_default();
        anyhow::bail!(
            "{status}: {}",
            body["error"]["message"]
                .as_str()
                .unwrap_or("no error message")
        );
    }
    let tmp = a.out.with_extension("partial");
    let written = (|| -> Result<u64> {
        let mut f = std::fs::File::create_new(&tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        let n = resp
            .copy_to(&mut f)
            .context("receiving the package (the server may have failed half-way; see its log)")?;
        f.flush()?;
        f.sync_all()?;
        std::fs::rename(&tmp, &a.out)
            .with_context(|| format!("renaming {} to {}", tmp.display(), a.out.display()))?;
        Ok(n)
    })();
    let n = match written {
        Ok(n) => n,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    eprintln!(
        "wrote {} ({n} bytes); verify it with: sealtrail-verify evidence {} --log-key '<the log's vkey>'",
        a.out.display(),
        a.out.display()
    );
    Ok(true)
}
