//! The load generator behind `sealtrail-loadgen`: drives a running sealtrail server over HTTP/1.1
//! and checks everything it receives, so that an error or a bad answer never counts as throughput.
//!
//! Every run is bounded (a duration, a request count, and a hard deadline) and talks to 127.0.0.1
//! unless [`Options::allow_remote`] is set. Closed loop: `concurrency` workers, each on its own
//! keep-alive connection, send their next request as soon as the previous one is answered.
//! Open loop ([`Options::rate`]): requests are started on a fixed schedule whatever the server's
//! pace, and latency counts from the scheduled start, so a slow server cannot hide its queueing
//! (no coordinated omission).
//!
//! What is checked: status codes; append replies (index below the tree size, the right number of
//! leaf hashes, and no index handed out twice in the run); `wait=checkpoint` replies (every
//! tlog-proof is parsed and verified against the log's key: signature, origin and inclusion);
//! inclusion and consistency proofs (root equal to the signed checkpoint's, and on a sample the
//! Merkle path itself); tiles (length, and on a sample one hash proven into the signed tree). After
//! an append run, a sample of the acknowledged entries is proven into a fresh signed checkpoint.
//! The log's verifier key comes from `GET /v1/log` unless pinned with [`Options::log_key`].

//!
//! Modules, one concern each: `options` (the modes, the settings and their limits), `client` (the
//! HTTP/1.1 client), `checks` (what every answer must satisfy), `modes` (the request each mode
//! makes, the prefill and the post-run check), `loops` (closed and open loop), `stats` (the
//! tallies and what is derived from them), `report` (the JSON summary, the results-table row and
//! the Markdown table) and `fsync` (the disk probe). [`run`] puts them together. [`attack`] is
//! apart: resource-exhaustion attacks and what the target does under them.

pub mod attack;
mod checks;
mod client;
mod fsync;
mod loops;
mod modes;
mod options;
mod report;
mod stats;

use std::sync::Arc;
use std::time::Instant;

use sealtrail_spec::note::Ed25519Verifier;

use checks::{LogInfo, Trust};
use client::{Client, Conn, Failure};
use modes::Ctx;
use stats::{Histogram, Stats};

pub use fsync::{FsyncProbe, fsync_probe};
pub use options::{LoadError, Mode, Options};
pub use report::{Row, Summary, load_average, markdown};
pub use stats::{Commits, Latency, ProcessUse};

/// Runs one load test and returns its summary. Errors only if the run cannot start (bad options,
/// an unreachable server, a checkpoint that does not verify with the key).
pub async fn run(opts: Options) -> Result<Summary, LoadError> {
    options::validate(&opts)?;
    let mut conn = None;
    let mut ctx = connect(opts, &mut conn).await?;
    prepare(&mut ctx, &mut conn).await?;
    let measured = measure(Arc::new(ctx), &mut conn).await?;
    Ok(summarise(measured))
}

/// The server could not be used: its failure's message.
fn server(e: Failure) -> LoadError {
    LoadError::Server(e.message)
}

/// Connects, reads `GET /v1/log`, and trusts the log's key (pinned, or the one it names); a
/// non-empty log's checkpoint must open with it.
async fn connect(opts: Options, conn: &mut Option<Conn>) -> Result<Ctx, LoadError> {
    let http = Client::new(&opts.url, opts.allow_remote, opts.token.as_deref()).await?;
    let info: LogInfo = http.get_json(conn, "/v1/log").await.map_err(server)?;
    let vkey = opts.log_key.clone().unwrap_or(info.verifier_key);
    let verifier = Ed25519Verifier::from_vkey(vkey.trim())
        .map_err(|e| LoadError::Usage(format!("the log key: {e}")))?;
    let ctx = Ctx::new(http, Trust::new(info.origin, verifier), opts);
    if info.tree_size > 0 {
        ctx.trust
            .open_checkpoint(info.checkpoint.as_bytes())
            .map_err(server)?;
    }
    Ok(ctx)
}

/// The unmeasured start: the prefill, then, for the read modes, the signed tree they read.
async fn prepare(ctx: &mut Ctx, conn: &mut Option<Conn>) -> Result<(), LoadError> {
    if ctx.opts.prefill > 0 {
        modes::prefill(ctx, conn).await?;
    }
    if ctx.opts.mode.needs_entries() {
        let tree = ctx.signed_tree(conn).await.map_err(server)?;
        if tree.size == 0 {
            return Err(LoadError::Usage(
                "the log is empty: fill it first (--prefill N)".into(),
            ));
        }
        ctx.tree = Some(tree);
    }
    Ok(())
}

/// What a run measured, before it is summarised.
struct Measured {
    ctx: Arc<Ctx>,
    stats: Stats,
    /// Seconds from the first request to the last answer.
    elapsed: f64,
    tree_size_before: u64,
    /// `GET /v1/log` after the run.
    after: LogInfo,
    post_checked: u64,
    /// This process's CPU seconds before, and its use after.
    generator: (f64, (f64, u64, u64)),
    /// The server's CPU seconds before, and its use after (if its pid was given and readable).
    server: (f64, Option<(f64, u64, u64)>),
    /// The server's commit histogram before and after.
    commits: (Option<Histogram>, Option<Histogram>),
}

/// The measured run: the tree size and the processes' CPU before, the load, and after it the
/// CPU, the post-run check and the tree size.
async fn measure(ctx: Arc<Ctx>, conn: &mut Option<Conn>) -> Result<Measured, LoadError> {
    let before = ctx.http.get_json::<LogInfo>(conn, "/v1/log").await;
    let tree_size_before = before.map_err(server)?.tree_size;
    let commits0 = stats::commit_histogram(&ctx.http, conn).await;
    let pid = std::process::id().to_string();
    let server_pid = ctx.opts.server_pid.map(|p| p.to_string());
    let gen0 = stats::proc_use(&pid).map_or(0.0, |u| u.0);
    let srv0 = server_pid
        .as_deref()
        .and_then(stats::proc_use)
        .map_or(0.0, |u| u.0);
    let start = Instant::now();
    let stats = match ctx.opts.rate {
        None => loops::closed_loop(ctx.clone(), start).await,
        Some(rate) => loops::open_loop(ctx.clone(), start, rate).await,
    };
    let elapsed = start.elapsed().as_secs_f64();
    let gen1 = stats::proc_use(&pid).unwrap_or_default();
    let srv1 = server_pid.as_deref().and_then(stats::proc_use);
    let commits1 = stats::commit_histogram(&ctx.http, conn).await;
    let post_checked = modes::post_check(&ctx, conn, &stats.samples)
        .await
        .map_err(server)?;
    let after: LogInfo = ctx.http.get_json(conn, "/v1/log").await.map_err(server)?;
    Ok(Measured {
        ctx,
        stats,
        elapsed,
        tree_size_before,
        after,
        post_checked,
        generator: (gen0, gen1),
        server: (srv0, srv1),
        commits: (commits0, commits1),
    })
}

/// The JSON summary of a measured run.
fn summarise(m: Measured) -> Summary {
    let Measured {
        ctx,
        stats,
        elapsed,
        tree_size_before,
        after,
        post_checked,
        generator: (gen0, gen1),
        server: (srv0, srv1),
        commits: (commits0, commits1),
    } = m;
    let per = |cpu: f64| {
        if stats.ok == 0 {
            0.0
        } else {
            cpu * 1e6 / stats.ok as f64
        }
    };
    let o = &ctx.opts;
    Summary {
        mode: format!("{:?}", o.mode).to_lowercase(),
        load: if o.rate.is_some() { "open" } else { "closed" }.into(),
        url: o.url.clone(),
        engine: after.storage_engine,
        concurrency: if o.rate.is_some() {
            o.max_in_flight
        } else {
            o.concurrency
        },
        offered_rate: o.rate,
        payload_bytes: o.payload_bytes,
        batch: if o.mode == Mode::Batch { o.batch } else { 1 },
        elapsed_s: elapsed,
        requests: stats.requests,
        ok: stats.ok,
        errors: stats.requests - stats.ok,
        error_kinds: stats.errors,
        first_error: stats.first_error,
        entries: stats.entries,
        requests_per_s: stats.ok as f64 / elapsed,
        entries_per_s: stats.entries as f64 / elapsed,
        latency_ms: stats::latency(stats.latencies_us),
        verified: stats.verified,
        verify_failures: stats.verify_failures,
        duplicate_indices: stats::duplicates(stats.ranges),
        tree_size_before,
        tree_size_after: after.tree_size,
        post_checked,
        generator: ProcessUse {
            cpu_s: gen1.0 - gen0,
            cpu_us_per_request: per(gen1.0 - gen0),
            rss_kib: gen1.1,
            peak_rss_kib: gen1.2,
        },
        server: srv1.map(|s| ProcessUse {
            cpu_s: s.0 - srv0,
            cpu_us_per_request: per(s.0 - srv0),
            rss_kib: s.1,
            peak_rss_kib: s.2,
        }),
        server_commits: commits0
            .zip(commits1)
            .and_then(|(b, a)| stats::commits_between(&b, &a)),
    }
}
