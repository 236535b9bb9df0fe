//! `cargo bench -p sealtrail-server --bench search`: latency of `GET /v1/entries/search` pages
//! (the search in `sealtrail_server::query` plus reading and decoding each result, in process, no
//! HTTP) over a redb log of `SEALTRAIL_BENCH_ENTRIES` entries (default 10,000,000; 20,000 in
//! smoke mode without `--bench`). Entries have 1000 principals and 20 event types round-robin,
//! plus a rare type on 0.1% of them. Prints p50/p99/max per query shape.
//!
//! `SEALTRAIL_BENCH_DIR=dir` keeps the store there and reuses it when it already holds enough
//! entries (filling 10M entries takes about a minute).
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use sealtrail_server::config::Config;
use sealtrail_server::query::{SearchQuery, search};
use sealtrail_server::sequencer::NewEntry;
use sealtrail_server::serve::Server;
use sealtrail_server::store::{self, Engine, LogStore, RecordState};
use sealtrail_spec::envelope::LeafEnvelope;
use sealtrail_spec::note::Ed25519Signer;
use sealtrail_spec::record::PrivateRecord;

const PRINCIPALS: u64 = 1000;
const TYPES: u64 = 20;

fn entry(i: u64) -> NewEntry {
    let event_type = if i % 1000 == 999 {
        "rare.alarm".to_owned()
    } else {
        format!("type.{}", i % TYPES)
    };
    NewEntry {
        principal: format!("user-{}", i % PRINCIPALS),
        content_type: "application/json".into(),
        event_type: Some(event_type),
        payload: format!("{{\"seq\":{i},\"pad\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}}")
            .into_bytes(),
    }
}

async fn fill(st: Arc<dyn LogStore>, n: u64) -> Arc<dyn LogStore> {
    let have = st.tree_size().unwrap();
    if have >= n {
        println!("reusing a store of {have} entries");
        return st;
    }
    let mut config = Config {
        origin: "bench.sealtrail.example/log".into(),
        ..Config::default()
    };
    config.limits.queue_entries = 1_000_000;
    let signer = Ed25519Signer::from_seed(&config.origin, [1; 32]).unwrap();
    let server = Server::start(config, st.clone(), signer).expect("start");
    let seq = server.sequencer().clone();
    let started = Instant::now();
    let per = 1000;
    let mut next = have;
    while next < n {
        let mut tasks = Vec::new();
        for _ in 0..16 {
            if next >= n {
                break;
            }
            let k = per.min(n - next);
            let entries: Vec<NewEntry> = (next..next + k).map(entry).collect();
            let seq = seq.clone();
            tasks.push(tokio::spawn(async move { seq.submit(entries, None).await }));
            next += k;
        }
        for t in tasks {
            t.await.unwrap().expect("submit");
        }
    }
    println!(
        "filled {} entries in {:.1} s",
        n - have,
        started.elapsed().as_secs_f64()
    );
    server.stop().await;
    st
}

/// One page as the HTTP handler builds it: search, then read and decode every result.
fn page(st: &dyn LogStore, size: u64, q: &SearchQuery) -> usize {
    let p = search(st, size, q).unwrap();
    let mut bytes = 0;
    for i in &p.indices {
        let leaf = st.entry(*i).unwrap().unwrap();
        let env = LeafEnvelope::decode(&leaf).unwrap();
        let RecordState::Live(stored) = st.record(*i).unwrap() else {
            panic!("record {i} is not live");
        };
        let record = PrivateRecord::decode(&stored).unwrap();
        assert_eq!(record.check(&env), Ok(()));
        let v: serde_json::Value = serde_json::from_slice(&record.payload).unwrap();
        bytes += v.to_string().len() + sealtrail_spec::leaf_hash(&leaf).to_hex().len();
    }
    assert!(!p.indices.is_empty(), "{q:?} found nothing");
    bytes
}

fn time_of(st: &dyn LogStore, i: u64) -> u64 {
    LeafEnvelope::decode(&st.entry(i).unwrap().unwrap())
        .unwrap()
        .time_ms
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    println!(
        "{name:<44} p50 {:>8.3} ms  p99 {:>8.3} ms  max {:>8.3} ms  ({} pages)",
        at(0.5).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        at(1.0).as_secs_f64() * 1e3,
        samples.len()
    );
}

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    let n: u64 = std::env::var("SEALTRAIL_BENCH_ENTRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 20_000 } else { 10_000_000 });
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::env::var_os("SEALTRAIL_BENCH_DIR")
        .map_or_else(|| tmp.path().to_owned(), std::path::PathBuf::from);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let st: Arc<dyn LogStore> = Arc::from(store::open(Engine::Redb, &dir).expect("open"));
    let st = rt.block_on(fill(st, n));
    let size = st.tree_size().unwrap();
    let iters: u64 = if quick { 20 } else { 500 };
    let rng = std::cell::Cell::new(0x9E37_79B9_7F4A_7C15u64);
    let rand = |m: u64| {
        let mut x = rng.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        rng.set(x);
        x % m
    };
    let base = SearchQuery {
        limit: 100,
        newest_first: true,
        ..SearchQuery::default()
    };
    println!("redb, {size} entries, 100-result pages, 2 logical CPUs");
    type Shape<'a> = (&'a str, Box<dyn FnMut() -> SearchQuery + 'a>);
    let st2 = st.clone();
    let shapes: Vec<Shape> = vec![
        ("newest, no filter", Box::new(|| base.clone())),
        (
            "type (1 in 20), newest",
            Box::new(|| SearchQuery {
                event_type: Some(format!("type.{}", rand(TYPES))),
                ..base.clone()
            }),
        ),
        (
            "principal (1 in 1000), newest",
            Box::new(|| SearchQuery {
                principal: Some(format!("user-{}", rand(PRINCIPALS))),
                ..base.clone()
            }),
        ),
        (
            "type + principal, oldest, random cursor",
            Box::new(|| {
                // Not user-999: its entries all carry the rare type.
                let p = rand(PRINCIPALS - 1);
                SearchQuery {
                    principal: Some(format!("user-{p}")),
                    // The type this principal's entries carry (20 divides 1000).
                    event_type: Some(format!("type.{}", p % TYPES)),
                    cursor: Some(rand(size / 2)),
                    newest_first: false,
                    ..base.clone()
                }
            }),
        ),
        (
            "rare type (1 in 1000), oldest, random cursor",
            Box::new(|| SearchQuery {
                event_type: Some("rare.alarm".into()),
                cursor: Some(rand(size / 2)),
                newest_first: false,
                ..base.clone()
            }),
        ),
        (
            "time window from a random entry, oldest",
            Box::new(|| SearchQuery {
                since: Some(time_of(st2.as_ref(), rand(size / 2))),
                newest_first: false,
                ..base.clone()
            }),
        ),
    ];
    for (name, mut make) in shapes {
        let mut samples = Vec::new();
        for _ in 0..iters {
            let q = make();
            let t = Instant::now();
            std::hint::black_box(page(st.as_ref(), size, &q));
            samples.push(t.elapsed());
        }
        report(name, samples);
    }
}
