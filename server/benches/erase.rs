//! `cargo bench -p sealtrail-server --bench erase`: erasing by principal in a large log while
//! appends go on, and what erasure and compaction do to the store's size.
//!
//! Builds a redb log of `SEALTRAIL_BENCH_ENTRIES` entries (default 1,000,000 with `--bench`,
//! 20,000 without: the smoke run) through the sequencer, every tenth entry from the principal
//! `subject`, 256-byte JSON payloads. Then erases `subject` (100,000 records at the default size)
//! with the same code as `POST /v1/admin/erasures`, while 8 submitters keep appending single
//! entries, and reports: the erasure's wall time, the appends made meanwhile and their slowest
//! latency, the store file before and after (growth per erased record), and a compaction.
//! Bounded: fixed entry counts, one erasure.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sealtrail_server::api::{EraseRequest, erase};
use sealtrail_server::config::Config;
use sealtrail_server::privacy::Conditions;
use sealtrail_server::sequencer::NewEntry;
use sealtrail_server::serve::Server;
use sealtrail_server::store::{self, Engine};
use sealtrail_spec::note::Ed25519Signer;

fn entry(i: u64) -> NewEntry {
    let mut p = format!("{{\"seq\":{i},\"pad\":\"").into_bytes();
    p.resize(254, b'x');
    p.extend_from_slice(b"\"}");
    NewEntry {
        principal: if i.is_multiple_of(10) {
            "subject".into()
        } else {
            format!("user-{}", i % 1000)
        },
        content_type: "application/json".into(),
        event_type: Some("bench.event".into()),
        payload: p,
    }
}

/// The server, in process, on the redb store in `dir` (created or reopened).
fn start(dir: &std::path::Path) -> Server {
    let st: Arc<dyn store::LogStore> = Arc::from(store::open(Engine::Redb, dir).expect("open"));
    let mut config = Config {
        origin: "bench.sealtrail.example/log".into(),
        ..Config::default()
    };
    config.limits.queue_entries = 1_000_000;
    let signer = Ed25519Signer::from_seed(&config.origin, [1; 32]).unwrap();
    Server::start(config, st, signer).expect("start")
}

fn live_bytes(dir: &std::path::Path) -> u64 {
    store::redb_store::RedbStore::open(dir)
        .and_then(|s| s.live_bytes())
        .expect("store stats")
}

fn file_len(dir: &std::path::Path) -> u64 {
    std::fs::metadata(dir.join("log.redb")).map_or(0, |m| m.len())
}

async fn run(total: u64) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("data");
    let server = start(&dir);
    let seq = server.sequencer().clone();
    let started = Instant::now();
    let mut n = 0;
    while n < total {
        let k = (total - n).min(1000);
        seq.submit((n..n + k).map(entry).collect(), None)
            .await
            .expect("submit");
        n += k;
    }
    println!(
        "built {total} entries in {:.1} s; store file {} bytes",
        started.elapsed().as_secs_f64(),
        file_len(&dir)
    );
    // The live bytes before the erasure, as redb counts them.
    drop(seq);
    server.stop().await;
    let live0 = live_bytes(&dir);
    let per_entry = live0 as f64 / total as f64;
    println!("live bytes before the erasure: {live0} ({per_entry:.0} per entry)");
    let server = start(&dir);
    let seq = server.sequencer().clone();
    let before = file_len(&dir);
    // Appends go on during the erasure.
    let stop = Arc::new(AtomicBool::new(false));
    let appended = Arc::new(AtomicU64::new(0));
    let slowest = Arc::new(AtomicU64::new(0));
    let mut writers = Vec::new();
    for w in 0..8u64 {
        let (seq, stop, appended, slowest) =
            (seq.clone(), stop.clone(), appended.clone(), slowest.clone());
        writers.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                seq.submit(vec![entry(total + 1 + w * 10_000_000 + i * 10)], None)
                    .await
                    .expect("append during erasure");
                slowest.fetch_max(t.elapsed().as_micros() as u64, Ordering::Relaxed);
                appended.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The same writers without an erasure, for comparison.
    let (base_from, t) = (appended.load(Ordering::Relaxed), Instant::now());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let baseline =
        (appended.load(Ordering::Relaxed) - base_from) as f64 / t.elapsed().as_secs_f64();
    slowest.store(0, Ordering::Relaxed);
    let (appended_before, t) = (appended.load(Ordering::Relaxed), Instant::now());
    let answer = erase(
        server.state(),
        EraseRequest {
            indices: None,
            conditions: Conditions {
                principal: Some("subject".into()),
                ..Conditions::default()
            },
            reason: "benchmark".into(),
        },
        "token:bench".into(),
    )
    .await
    .expect("erase");
    let secs = t.elapsed().as_secs_f64();
    let during = appended.load(Ordering::Relaxed) - appended_before;
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    let erased = answer["erased"].as_u64().unwrap();
    assert!(erased >= total / 10, "{answer}");
    let after = file_len(&dir);
    println!(
        "erased {erased} records by principal in {secs:.2} s ({} erasure entries); {during} appends \
         meanwhile ({:.0}/s, against {baseline:.0}/s before the erasure), slowest append {:.1} ms",
        answer["erasure_entries"].as_array().unwrap().len(),
        during as f64 / secs,
        slowest.load(Ordering::Relaxed) as f64 / 1000.0
    );
    println!(
        "store file {before} -> {after} bytes: {:+} bytes ({:+.1} per erased record; the \
         appends meanwhile included)",
        after as i64 - before as i64,
        (after as f64 - before as f64) / erased as f64
    );
    let appended_total = appended.load(Ordering::Relaxed);
    drop(seq);
    server.stop().await;
    let live1 = live_bytes(&dir);
    let t = Instant::now();
    let c = store::compact::compact(Engine::Redb, &dir).expect("compact");
    println!(
        "compacted in {:.1} s: data directory {} -> {} bytes",
        t.elapsed().as_secs_f64(),
        c.bytes_before,
        c.bytes_after
    );
    // Live bytes after, less the appends made since (at the log's bytes per entry): what the
    // erasure itself changed, per erased record (negative: the records' bytes left the store).
    let erasure = live1 as f64 - live0 as f64 - appended_total as f64 * per_entry;
    println!(
        "live bytes {live0} -> {live1}: {:+.0} per erased record ({appended_total} appends \
         discounted at {per_entry:.0} bytes each)",
        erasure / erased as f64
    );
}

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    let total = std::env::var("SEALTRAIL_BENCH_ENTRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 20_000 } else { 1_000_000 });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(total));
}
