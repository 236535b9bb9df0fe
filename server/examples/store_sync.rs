//! Durable-commit cost of the store engines: opens a store and makes N commits, then prints the
//! time taken. Run it under `strace -f -c -e trace=fsync,fdatasync,sync_file_range` to count the
//! real syncs behind N acknowledged commits (`BENCHMARKS-store.md` has the commands and figures).
//!
//! ```text
//! cargo run --release -p sealtrail-server --example store_sync -- <redb|sled> <dir> <commits> [single|batch|large]
//! ```
//!
//! `single`: each commit holds one 256-byte entry. `batch`: each commit holds 1000 entries of 256
//! bytes plus the hash tiles a sequencer would write with them (every level-0 tile the batch
//! touches, at its new width, and the level-1 tile above). `large`: 20 entries of 65535 bytes (the
//! largest leaf) plus tiles, which makes sled spill nodes into `blobs/`. An existing store is
//! extended.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::ValueEnum;
use sealtrail_server::store::{self, Batch, Engine};
use sealtrail_spec::tiles::TileId;

const BATCH_ENTRIES: u64 = 1000;
const LARGE_ENTRIES: u64 = 20;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [engine, dir, commits, rest @ ..] = args.as_slice() else {
        bail!("usage: store_sync <redb|sled> <dir> <commits> [single|batch|large]");
    };
    let engine = Engine::from_str(engine, true).map_err(anyhow::Error::msg)?;
    let dir = PathBuf::from(dir);
    let commits: u64 = commits.parse().context("commits must be a number")?;
    let (per_commit, payload_bytes) = match rest.first().map(String::as_str) {
        None | Some("single") => (1, 256),
        Some("batch") => (BATCH_ENTRIES, 256),
        Some("large") => (LARGE_ENTRIES, 65535),
        Some(other) => bail!("unknown mode {other:?}: single, batch or large"),
    };

    let store = store::open(engine, &dir)?;
    let mut rng = 0x9E37_79B9_7F4A_7C15_u64;
    let mut latencies = Vec::with_capacity(usize::try_from(commits)?);
    let start = Instant::now();
    for _ in 0..commits {
        let batch = make_batch(store.tree_size()?, per_commit, payload_bytes, &mut rng);
        let t = Instant::now();
        store.commit(&batch)?;
        latencies.push(t.elapsed());
    }
    let elapsed = start.elapsed();
    report(
        store.engine(),
        per_commit,
        payload_bytes,
        elapsed,
        &mut latencies,
    );
    Ok(())
}

/// `n` pseudo-random entries of `bytes` bytes on `old_size`, with tiles when `n > 1`.
fn make_batch(old_size: u64, n: u64, bytes: usize, rng: &mut u64) -> Batch {
    let entries: Vec<Vec<u8>> = (0..n)
        .map(|_| {
            let mut e: Vec<u8> = (0..bytes.div_ceil(8))
                .flat_map(|_| next(rng).to_le_bytes())
                .collect();
            e.truncate(bytes);
            e
        })
        .collect();
    let new_size = old_size + n;
    let mut tiles = Vec::new();
    if n > 1 {
        let tile = |level, index, width: u64| {
            let width = u16::try_from(width).unwrap_or(256);
            let id = TileId {
                level,
                index,
                width,
            };
            (id, vec![0xAB; 32 * usize::from(width)])
        };
        for k in old_size / 256..=(new_size - 1) / 256 {
            tiles.push(tile(0, k, (new_size - k * 256).min(256)));
        }
        let last = new_size - 1;
        tiles.push(tile(1, last / 65536, (last % 65536) / 256 + 1));
    }
    // The checkpoint is written too, as the sequencer does (leaf-index rows come once per 16384
    // entries, about 10 bytes per entry; posting rows, a few per batch; both left out here).
    Batch {
        old_size,
        entries,
        tiles,
        idempotency: Vec::new(),
        leaf_runs: Vec::new(),
        postings: Vec::new(),
        checkpoint: vec![0x43; 180],
        ..Batch::default()
    }
}

/// xorshift64: payloads that no engine can compress.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn report(
    engine: &str,
    per_commit: u64,
    payload_bytes: usize,
    elapsed: Duration,
    latencies: &mut [Duration],
) {
    latencies.sort();
    let commits = latencies.len();
    let entries = per_commit * commits as u64;
    let secs = elapsed.as_secs_f64();
    let pct = |p: usize| {
        latencies
            .get(commits * p / 100)
            .copied()
            .unwrap_or_default()
    };
    println!(
        "{engine}: {commits} commits x {per_commit} entries of {payload_bytes} B in {secs:.3} s: \
         {:.0} entries/s, {:.3} ms/commit mean, p50 {:.3} ms, p99 {:.3} ms",
        entries as f64 / secs,
        secs * 1000.0 / commits.max(1) as f64,
        pct(50).as_secs_f64() * 1000.0,
        pct(99).as_secs_f64() * 1000.0,
    );
}
