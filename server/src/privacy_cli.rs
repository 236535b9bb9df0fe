//! `sealtrail erase`, `sealtrail hold` and `sealtrail compact`: the command-line side of erasure,
//! legal holds and physical erasure (the binary's module; the logic is in the library).

use std::path::Path;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

/// Where the running server is and how to authenticate (the admin role).
#[derive(Args, Debug, Clone)]
pub(crate) struct Remote {
    /// The server's base URL.
    #[arg(long, env = "SEALTRAIL_URL", default_value = "http://127.0.0.1:8080")]
    pub(crate) url: String,
    /// Bearer token with the admin role.
    #[arg(long, env = "SEALTRAIL_TOKEN")]
    pub(crate) token: Option<String>,
}

/// Record conditions: every one given must hold.
#[derive(Args, Debug, Clone, Default)]
pub(crate) struct ConditionArgs {
    /// Exact submitting principal.
    #[arg(long)]
    pub(crate) principal: Option<String>,
    /// Exact event type.
    #[arg(long = "type")]
    pub(crate) event_type: Option<String>,
    /// Sequencing time lower bound (inclusive): an RFC 3339 time (2026-12-01T10:00:00Z), a date
    /// (2026-12-01, midnight UTC) or ms since the Unix epoch.
    #[arg(long, value_parser = crate::time_arg)]
    pub(crate) since: Option<u64>,
    /// Sequencing time upper bound (exclusive), in the same forms as --since.
    #[arg(long, value_parser = crate::time_arg)]
    pub(crate) until: Option<u64>,
}

impl ConditionArgs {
    /// The conditions given, as the query parameters of `GET /v1/entries/search` and
    /// `GET /v1/evidence` (`since`, `until` in ms, `type`, `principal`).
    pub(crate) fn query_pairs(&self) -> Vec<(&'static str, String)> {
        let times = [("since", self.since), ("until", self.until)];
        let texts = [("type", &self.event_type), ("principal", &self.principal)];
        times
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v.to_string())))
            .chain(
                texts
                    .into_iter()
                    .filter_map(|(k, v)| v.clone().map(|v| (k, v))),
            )
            .collect()
    }

    fn json(&self) -> Value {
        let mut v = json!({});
        if let Some(p) = &self.principal {
            v["principal"] = json!(p);
        }
        if let Some(t) = &self.event_type {
            v["event_type"] = json!(t);
        }
        if let Some(s) = self.since {
            v["since_ms"] = json!(s);
        }
        if let Some(u) = self.until {
            v["until_ms"] = json!(u);
        }
        v
    }
}

/// `sealtrail erase` options.
#[derive(Args, Debug)]
pub(crate) struct EraseArgs {
    #[command(flatten)]
    pub(crate) remote: Remote,
    /// Entry indices to erase (comma-separated); instead of conditions.
    #[arg(long, value_delimiter = ',')]
    pub(crate) index: Vec<u64>,
    #[command(flatten)]
    pub(crate) conditions: ConditionArgs,
    /// Why (recorded in the erasure entry; never put personal data here).
    #[arg(long)]
    pub(crate) reason: String,
}

/// `sealtrail hold` subcommands.
#[derive(Subcommand, Debug)]
pub(crate) enum HoldCommand {
    /// Place a legal hold: records it covers cannot be erased or expire until it is released.
    Place {
        #[command(flatten)]
        remote: Remote,
        #[command(flatten)]
        conditions: ConditionArgs,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Release a legal hold.
    Release {
        #[command(flatten)]
        remote: Remote,
        /// The hold's id (the index of the entry that placed it).
        id: u64,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// List the holds in force.
    List {
        #[command(flatten)]
        remote: Remote,
    },
}

fn client() -> Result<reqwest::blocking::Client> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(600))
        .build()
        .context("building the HTTP client")
}

/// Sends a JSON request and returns the answer, or the server's error message.
fn call(
    remote: &Remote,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Result<Value> {
    let url = format!("{}{path}", remote.url.trim_end_matches('/'));
    let mut req = client()?.request(method, &url);
    if let Some(t) = &remote.token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().with_context(|| format!("requesting {url}"))?;
    let status = resp.status();
    let v: Value = resp
        .json()
        .with_context(|| format!("reading the answer of {url}"))?;
    if !status.is_success() {
        anyhow::bail!(
            "{status}: {}",
            v["error"]["message"].as_str().unwrap_or("?")
        );
    }
    Ok(v)
}

/// `sealtrail erase`: prints the server's summary as JSON.
pub(crate) fn erase(a: &EraseArgs) -> Result<bool> {
    let mut body = a.conditions.json();
    if !a.index.is_empty() {
        body["indices"] = json!(a.index);
    }
    body["reason"] = json!(a.reason);
    let v = call(
        &a.remote,
        reqwest::Method::POST,
        "/v1/admin/erasures",
        Some(body),
    )?;
    println!("{v}");
    eprintln!(
        "erase: {} records erased, {} already erased, {} held, erasure entries {}",
        v["erased"], v["already_erased"], v["held"], v["erasure_entries"]
    );
    eprintln!(
        "erase: the bytes leave the store's files at the next `sealtrail compact` (server \
         stopped); see RUNBOOK.md"
    );
    Ok(true)
}

/// `sealtrail hold ...`.
pub(crate) fn hold(c: &HoldCommand) -> Result<bool> {
    let v = match c {
        HoldCommand::Place {
            remote,
            conditions,
            reason,
        } => {
            let mut body = conditions.json();
            body["reason"] = json!(reason);
            call(remote, reqwest::Method::POST, "/v1/admin/holds", Some(body))?
        }
        HoldCommand::Release { remote, id, reason } => call(
            remote,
            reqwest::Method::POST,
            &format!("/v1/admin/holds/{id}/release"),
            Some(json!({ "reason": reason })),
        )?,
        HoldCommand::List { remote } => {
            call(remote, reqwest::Method::GET, "/v1/admin/holds", None)?
        }
    };
    println!("{v}");
    Ok(true)
}

/// `sealtrail compact`.
pub(crate) fn compact(engine: sealtrail_server::store::Engine, dir: &Path) -> Result<bool> {
    if engine == sealtrail_server::store::Engine::Postgres {
        anyhow::bail!(
            "compact rewrites an embedded store; PostgreSQL reclaims erased records' old row \
             versions with VACUUM (autovacuum does it in time; VACUUM FULL rewrites the tables)"
        );
    }
    let s = sealtrail_server::store::compact::compact(engine, dir)
        .with_context(|| format!("compacting {}", dir.display()))?;
    println!(
        "compact: {} at tree size {}: {} rows copied, {} bytes before, {} after",
        dir.display(),
        s.size,
        s.rows,
        s.bytes_before,
        s.bytes_after
    );
    Ok(true)
}
