//! `cargo bench -p sealtrail-server --bench ingest`: in-process durable ingest through the
//! sequencer (envelope, leaf hash, tree extension, checkpoint signature and one durable commit per
//! group), with many concurrent submitters and no HTTP. Reports entries/s per engine.
//!
//! Bounded by a fixed entry count per case. Arguments after `--`: `[engine ...]` (default: both).
//! `SEALTRAIL_BENCH_ENTRIES=N` runs one case with N entries, for peak-RSS comparisons.
//! `SEALTRAIL_BENCH_DISTINCT=N` varies principals and event types (see `distinct`).
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::sync::Arc;
use std::time::Instant;

use sealtrail_server::config::Config;
use sealtrail_server::sequencer::NewEntry;
use sealtrail_server::serve::Server;
use sealtrail_server::store::{self, Engine};
use sealtrail_spec::note::Ed25519Signer;

fn payload(i: u64) -> Vec<u8> {
    // 256 bytes of JSON.
    let head = format!("{{\"seq\":{i},\"pad\":\"");
    let mut p = head.into_bytes();
    p.resize(254, b'x');
    p.extend_from_slice(b"\"}");
    p
}

/// `SEALTRAIL_BENCH_DISTINCT=N`: N principals and N/50 (at least 1) event types round-robin
/// instead of one of each, so every batch writes many secondary-index rows (the worst case for
/// `crate::query`'s postings; the default is the best case).
fn distinct() -> u64 {
    std::env::var("SEALTRAIL_BENCH_DISTINCT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn entry(i: u64, distinct: u64) -> NewEntry {
    let (principal, event_type) = if distinct == 0 {
        ("bench".into(), "bench.event".into())
    } else {
        (
            format!("user-{}", i % distinct),
            format!("type.{}", i % (distinct / 50).max(1)),
        )
    };
    NewEntry {
        principal,
        content_type: "application/json".into(),
        event_type: Some(event_type),
        payload: payload(i),
    }
}

async fn run(engine: Engine, submitters: u64, per_request: u64, total: u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let st: Arc<dyn store::LogStore> = Arc::from(store::open(engine, dir.path()).expect("open"));
    let mut config = Config {
        origin: "bench.sealtrail.example/log".into(),
        ..Config::default()
    };
    config.limits.queue_entries = 1_000_000;
    let signer = Ed25519Signer::from_seed(&config.origin, [1; 32]).unwrap();
    let server = Server::start(config, st, signer).expect("start");
    let seq = server.sequencer().clone();
    let requests = total / per_request;
    let started = Instant::now();
    let mut tasks = Vec::new();
    let distinct = distinct();
    for s in 0..submitters {
        let seq = seq.clone();
        tasks.push(tokio::spawn(async move {
            let mut r = s;
            while r < requests {
                let entries = (0..per_request)
                    .map(|k| entry(r * per_request + k, distinct))
                    .collect();
                seq.submit(entries, None).await.expect("submit");
                r += submitters;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    let size = seq.published().size;
    assert_eq!(size, requests * per_request);
    println!(
        "{:<5} {submitters:>4} submitters x {per_request:>4} entries/request: {:>9.0} entries/s  ({size} entries in {secs:.2} s)",
        engine.name(),
        size as f64 / secs
    );
    server.stop().await;
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let quick = !std::env::args().any(|a| a == "--bench");
    let engines: Vec<Engine> = if args.is_empty() {
        vec![Engine::Redb, Engine::Sled]
    } else {
        args.iter()
            .map(|a| match a.as_str() {
                "redb" => Engine::Redb,
                "sled" => Engine::Sled,
                other => panic!("unknown engine {other}"),
            })
            .collect()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    // SEALTRAIL_BENCH_ENTRIES=N runs only the 1000-entries-per-request case with N entries (to
    // watch peak RSS against log size, e.g. under `/usr/bin/time -v`).
    if let Some(n) = std::env::var("SEALTRAIL_BENCH_ENTRIES")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        for engine in engines {
            rt.block_on(run(engine, 16, 1000, n));
        }
        return;
    }
    let total = if quick { 2_000 } else { 400_000 };
    for engine in engines {
        rt.block_on(run(engine, 256, 1, total / 4));
        rt.block_on(run(engine, 64, 100, total));
        rt.block_on(run(engine, 16, 1000, total));
    }
}
