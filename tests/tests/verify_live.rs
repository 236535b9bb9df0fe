//! The verifier library against live sealtrail servers on 127.0.0.1: proofs, entries,
//! consistency and a full audit of a real log verify; a rollback and a fork (two logs with one
//! key and different histories) are caught. The CLI binary's exit codes are tested in
//! `verifier/tests/cli.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

mod common;

use common::Live;
use sealtrail_server::config::Config;
use sealtrail_server::store::mem::MemStore;
use sealtrail_spec::Hash;
use sealtrail_spec::note::Ed25519Signer;
use sealtrail_verifier::consistency::{self, ProofFrom};
use sealtrail_verifier::proof::Leaf;
use sealtrail_verifier::trust::{Trust, WitnessArgs};
use sealtrail_verifier::{Error, audit, checkpoint, entry, monitor, proof};

const ORIGIN: &str = "live.verify.example/log";

fn signer() -> Ed25519Signer {
    Ed25519Signer::from_seed(ORIGIN, [11; 32]).unwrap()
}

fn trust() -> Trust {
    Trust::new(&signer().verifier().to_vkey(), None, WitnessArgs::default()).unwrap()
}

fn start_live() -> Live {
    let config = Config {
        origin: ORIGIN.to_owned(),
        ..Config::default()
    };
    Live::start(config, Arc::new(MemStore::new()), signer())
}

fn failed(r: Result<sealtrail_verifier::Report, Error>, naming: &str) {
    match r {
        Err(Error::Failed(m)) => assert!(m.contains(naming), "{m:?} does not name {naming:?}"),
        other => panic!("want a verification failure naming {naming:?}, got {other:?}"),
    }
}

#[test]
fn a_live_log_verifies_end_to_end() {
    let live = start_live();
    live.append("a", 0, 300);
    let old = live.get("checkpoint");
    checkpoint::run(&trust(), &old).unwrap();

    // A tlog-proof from the server, with the leaf hash the server reports.
    let p = live.get("v1/proof/257");
    let j: serde_json::Value = serde_json::from_slice(&live.get("v1/entries/257")).unwrap();
    let leaf = Hash::from_hex(j["leaf_hash"].as_str().unwrap()).unwrap();
    let r = proof::run(&trust(), &p, &Leaf::Hash(leaf)).unwrap();
    assert_eq!(r.json["index"], 257);

    // The entry from the tiles, decoded; the leaf holds only public fields and a commitment, so
    // the content comes from the private record (served anonymously on loopback), checked
    // against the verified leaf.
    let r = entry::run(&trust(), &live.source(), 257).unwrap();
    assert_eq!(r.json["leaf_hash"], leaf.to_hex());
    let payload = "{\"history\":\"a\",\"n\":257}";
    assert_eq!(r.json["envelope"]["payload_size"], payload.len());
    assert_eq!(r.json["envelope"]["commitment"], j["commitment"]);
    assert_eq!(r.json["record_status"], "verified", "{:#}", r.json);
    assert_eq!(r.json["record"]["payload"]["text"], payload);
    // No authentication configured: the spec says the principal is `anonymous`.
    assert_eq!(r.json["record"]["principal"], "anonymous");
    assert_eq!(j["record"]["principal"], "anonymous");

    // The log grows; the new checkpoint extends the old one, proven from the tiles.
    live.append("a", 300, 400);
    let new = live.get("checkpoint");
    consistency::run(&trust(), &old, &new, ProofFrom::Log(&live.source())).unwrap();
    failed(
        consistency::run(&trust(), &new, &old, ProofFrom::Log(&live.source())),
        "rollback",
    );

    // A full audit of the live log.
    let r = audit::run(&trust(), &live.source(), None).unwrap();
    assert_eq!(r.json["audited_to"], 700);
}

#[test]
fn a_fork_between_two_live_logs_with_one_key_is_caught() {
    let (a, b) = (start_live(), start_live());
    a.append("a", 0, 300);
    b.append("b", 0, 600);
    let old = a.get("checkpoint");
    let new = b.get("checkpoint");
    // Each log is fine on its own...
    checkpoint::run(&trust(), &old).unwrap();
    audit::run(&trust(), &b.source(), None).unwrap();
    // ...but b's history does not extend a's.
    failed(
        consistency::run(&trust(), &old, &new, ProofFrom::Log(&b.source())),
        "fork",
    );
    // The same through an audit resumed from a state file written against log a.
    let dir = std::env::temp_dir().join(format!("sealtrail-fork-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let state = dir.join("state.json");
    a.append("a", 300, 300);
    audit::run(&trust(), &a.source(), Some(&state)).unwrap();
    failed(audit::run(&trust(), &b.source(), Some(&state)), "fork");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn monitor_follows_a_growing_live_log() {
    let live = start_live();
    let dir = std::env::temp_dir().join(format!("sealtrail-monitor-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let state = dir.join("trusted");
    let mut size = 0;
    for round in 0..4 {
        live.append("a", size, 150 + round * 100);
        size += 150 + round * 100;
        let r = monitor::poll(&trust(), &live.source(), &state).unwrap();
        assert_eq!(r.json["checkpoint"]["size"], size);
        assert_eq!(std::fs::read(&state).unwrap(), live.get("checkpoint"));
    }
    // Another log with the same key: a fork, and the state does not move.
    let other = start_live();
    other.append("b", 0, size + 10);
    let before = std::fs::read(&state).unwrap();
    failed(monitor::poll(&trust(), &other.source(), &state), "fork");
    assert_eq!(std::fs::read(&state).unwrap(), before);
    std::fs::remove_dir_all(&dir).unwrap();
}
