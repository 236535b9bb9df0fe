//! `cargo bench -p sealtrail-spec`: leaf hashing, tree extension and proof verification rates.
//!
//! A plain timing harness (no criterion: it would double the dev-dependency tree). Each case runs
//! a fixed amount of work, so the run is bounded; the figures it prints go in BENCHMARKS.md with the
//! machine they came from. Single-threaded throughout: these are per-core numbers.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // a benchmark harness, not library code

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Instant;

use sealtrail_spec::edge::TiledEdge;
use sealtrail_spec::merkle::{
    LeafHashes, consistency_proof, inclusion_proof, verify_consistency, verify_inclusion,
};
use sealtrail_spec::tiles::{TileHashReader, TileId, TileReader};
use sealtrail_spec::{Hash, leaf_hash};

#[derive(Default)]
struct Store(HashMap<(u8, u64), Vec<Hash>>);

impl TileReader for Store {
    type Error = String;
    fn read_tile(&mut self, t: TileId) -> Result<Vec<Hash>, String> {
        self.0
            .get(&(t.level, t.index))
            .and_then(|v| v.get(..usize::from(t.width)))
            .map(<[Hash]>::to_vec)
            .ok_or_else(|| t.path())
    }
}

fn payloads(n: usize, len: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let mut p = vec![0u8; len];
            p[..8].copy_from_slice(&(i as u64).to_be_bytes());
            p
        })
        .collect()
}

fn report(name: &str, items: u64, unit: &str, secs: f64) {
    println!(
        "{name:<52} {:>12.0} {unit}/s   ({items} in {:.3} s)",
        items as f64 / secs,
        secs
    );
}

fn bench_leaf_hashing() {
    let data = payloads(1_000_000, 256);
    let t = Instant::now();
    for p in &data {
        black_box(leaf_hash(black_box(p)));
    }
    report(
        "leaf hash, 256-byte leaves",
        1_000_000,
        "leaves",
        t.elapsed().as_secs_f64(),
    );
}

/// Hash 256-byte leaves and extend the tree in batches, as the sequencer does per commit.
fn bench_extension(batch: usize, total: usize) -> Store {
    let data = payloads(total, 256);
    let mut store = Store::default();
    let t = Instant::now();
    let mut edge = TiledEdge::empty();
    for chunk in data.chunks(batch) {
        let hashes: Vec<Hash> = chunk.iter().map(|p| leaf_hash(p)).collect();
        let ext = edge.extend(&hashes).expect("extend");
        edge = ext.edge;
        for (id, h) in ext.tiles {
            store.0.insert((id.level, id.index), h);
        }
    }
    report(
        &format!("hash + extend, 256-byte leaves, batches of {batch}"),
        total as u64,
        "leaves",
        t.elapsed().as_secs_f64(),
    );
    store
}

fn bench_proofs(store: &mut Store, size: u64) {
    const N: u64 = 100_000;
    let mut reader = TileHashReader::new(size, &mut *store);
    let root = sealtrail_spec::merkle::tree_root(size, &mut reader).expect("root");
    let idx = |i: u64| (i * 7_919_993) % size;
    let t = Instant::now();
    let proofs: Vec<(u64, Vec<Hash>)> = (0..N / 10)
        .map(|i| {
            let mut reader = TileHashReader::new(size, &mut *store);
            (
                idx(i),
                inclusion_proof(idx(i), size, &mut reader).expect("proof"),
            )
        })
        .collect();
    report(
        &format!("inclusion proof from tiles, size {size}"),
        N / 10,
        "proofs",
        t.elapsed().as_secs_f64(),
    );
    // Leaf hashes for the verification loop: leaf i's hash is hash i of its level-0 tile.
    let leaves: Vec<Hash> = proofs
        .iter()
        .map(|(i, _)| store.0[&(0, i / 256)][(i % 256) as usize])
        .collect();
    let t = Instant::now();
    for k in 0..N as usize {
        let j = k % proofs.len();
        let (i, p) = &proofs[j];
        verify_inclusion(*i, size, &leaves[j], p, &root).expect("verify");
    }
    report(
        &format!("inclusion proof verification, size {size}"),
        N,
        "proofs",
        t.elapsed().as_secs_f64(),
    );
    let old = size / 3 + 1;
    let mut reader = TileHashReader::new(size, &mut *store);
    let old_root = sealtrail_spec::merkle::tree_root(old, &mut reader).expect("old root");
    let p = consistency_proof(old, size, &mut reader).expect("consistency");
    let t = Instant::now();
    for _ in 0..N {
        verify_consistency(old, size, &old_root, &root, black_box(&p)).expect("verify");
    }
    report(
        &format!("consistency proof verification, {old} -> {size}"),
        N,
        "proofs",
        t.elapsed().as_secs_f64(),
    );
    // Sanity: tile-backed and in-memory proofs agree on a small tree (guards the benchmark itself).
    let small: Vec<Hash> = (0..1000u32).map(|i| leaf_hash(&i.to_be_bytes())).collect();
    assert_eq!(
        inclusion_proof(3, 1000, &mut LeafHashes(&small))
            .expect("proof")
            .len(),
        10
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs us with no flag: do a tiny run.
    if !std::env::args().any(|a| a == "--bench") {
        bench_extension(100, 10_000);
        return;
    }
    println!(
        "sealtrail-spec benchmarks (single thread), {} logical CPUs",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    bench_leaf_hashing();
    bench_extension(1, 200_000);
    bench_extension(64, 1_000_000);
    bench_extension(1000, 2_000_000);
    let mut store = bench_extension(10_000, 4_000_000);
    bench_proofs(&mut store, 4_000_000);
}
