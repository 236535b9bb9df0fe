//! Writes a test log as static tlog-tiles, for benchmarking `sealtrail-verify audit`:
//! `static_log DIR N` writes N v2 leaf envelopes (81 bytes each), every entry bundle and
//! hash tile, and a checkpoint signed with a fixed test key, and prints that key's vkey.
//! Bundles are generated and hashed 256 at a time, so memory stays small for any N.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use sealtrail_spec::checkpoint::{Checkpoint, sign_checkpoint};
use sealtrail_spec::edge::TiledEdge;
use sealtrail_spec::envelope::LeafEnvelope;
use sealtrail_spec::hash::sha256;
use sealtrail_spec::note::Ed25519Signer;
use sealtrail_spec::record::PrivateRecord;
use sealtrail_spec::tiles;
use sealtrail_spec::{Hash, leaf_hash};

const ORIGIN: &str = "bench.sealtrail.example/log";

fn write(dir: &Path, rel: &str, bytes: &[u8]) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, bytes).unwrap();
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (dir, n): (&Path, u64) = (Path::new(&args[1]), args[2].parse().unwrap());
    let signer = Ed25519Signer::from_seed(ORIGIN, [1; 32]).unwrap();
    let mut edge = TiledEdge::empty();
    for b in tiles::all_bundles(n) {
        let entries: Vec<Vec<u8>> = (b.start()..b.start() + u64::from(b.width))
            .map(|i| {
                // The record stays private (a fixed salt per entry: a fixture, not a log);
                // the leaf carries its size and commitment.
                let record = PrivateRecord {
                    salt: sha256(&i.to_be_bytes()),
                    principal: "bench".into(),
                    payload: format!("{{\"n\":{i},\"pad\":\"0123456789abcdef\"}}").into_bytes(),
                };
                LeafEnvelope {
                    time_ms: 1_700_000_000_000 + i,
                    content_type: "application/json".into(),
                    event_type: Some("bench.event".into()),
                    payload_size: record.payload.len() as u64,
                    commitment: record.commitment(),
                }
                .encode()
                .unwrap()
            })
            .collect();
        let leaves: Vec<Hash> = entries.iter().map(|e| leaf_hash(e)).collect();
        let ext = edge.extend(&leaves).unwrap();
        for (tile, hashes) in &ext.tiles {
            write(dir, &tile.path(), &tiles::encode_hash_tile(hashes));
        }
        write(dir, &b.path(), &tiles::encode_bundle(&entries).unwrap());
        edge = ext.edge;
    }
    let cp = Checkpoint::new(ORIGIN, n, edge.root()).unwrap();
    write(dir, "checkpoint", &sign_checkpoint(&cp, &signer).unwrap());
    println!("{}", signer.verifier().to_vkey());
}
