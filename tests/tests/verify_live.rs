//! The verifier library against live sealtrail servers on 127.0.0.1: proofs, entries,
//! consistency and a full audit of a real log verify; a rollback and a fork (two logs with one
//! key and different histories) are caught. The CLI binary's exit codes are tested in
//! `verifier/tests/cli.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use sealtrail_server::config::Config;
use sealtrail_server::serve::Server;
use sealtrail_server::store::mem::MemStore;
use sealtrail_spec::Hash;
use sealtrail_spec::note::Ed25519Signer;
use sealtrail_verifier::consistency::{self, ProofFrom};
use sealtrail_verifier::proof::Leaf;
use sealtrail_verifier::source::Source;
use sealtrail_verifier::trust::{Trust, WitnessArgs};
use sealtrail_verifier::{Error, audit, checkpoint, entry, monitor, proof};

const ORIGIN: &str = "live.verify.example/log";

fn signer() -> Ed25519Signer {
    Ed25519Signer::from_seed(ORIGIN, [11; 32]).unwrap()
}

fn trust() -> Trust {
    Trust::new(&signer().verifier().to_vkey(), None, WitnessArgs::default()).unwrap()
}

/// A server on 127.0.0.1:0 with an in-memory store; dropped with its runtime.
struct Live {
    url: String,
    http: reqwest::blocking::Client,
    _stop: tokio::sync::oneshot::Sender<()>,
    _rt: tokio::runtime::Runtime,
}

impl Live {
    fn start() -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let addr = rt.block_on(async {
            let config = Config {
                origin: ORIGIN.to_owned(),
                ..Config::default()
            };
            let server = Server::start(config, Arc::new(MemStore::new()), signer()).unwrap();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(server.run(listener, async {
                let _ = rx.await;
            }));
            addr
        });
        Live {
            url: format!("http://{addr}"),
            http: sealtrail_verifier::source::http_client().unwrap(),
            _stop: tx,
            _rt: rt,
        }
    }

    /// Appends `count` JSON entries tagged `history`, waiting for a checkpoint covering them.
    fn append(&self, history: &str, first: u64, count: u64) {
        for chunk in (first..first + count).collect::<Vec<_>>().chunks(100) {
            let body: String = chunk
                .iter()
                .map(|i| format!("{{\"history\":\"{history}\",\"n\":{i}}}\n"))
                .collect();
            let r = self
                .http
                .post(format!("{}/v1/entries/batch?wait=checkpoint", self.url))
                .header("content-type", "application/x-ndjson")
                .body(body)
                .send()
                .unwrap();
            assert!(r.status().is_success(), "{}", r.text().unwrap());
        }
    }

    fn get(&self, path: &str) -> Vec<u8> {
        let r = self
            .http
            .get(format!("{}/{path}", self.url))
            .send()
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.bytes().unwrap().to_vec()
    }

    fn source(&self) -> Source {
        Source::open(&self.url).unwrap()
    }
}

fn failed(r: Result<sealtrail_verifier::Report, Error>, naming: &str) {
    match r {
        Err(Error::Failed(m)) => assert!(m.contains(naming), "{m:?} does not name {naming:?}"),
        other => panic!("want a verification failure naming {naming:?}, got {other:?}"),
    }
}

#[test]
fn a_live_log_verifies_end_to_end() {
    let live = Live::start();
    live.append("a", 0, 300);
    let old = live.get("checkpoint");
    checkpoint::run(&trust(), &old).unwrap();

    // A tlog-proof from the server, with the leaf hash the server reports.
    let p = live.get("v1/proof/257");
    let j: serde_json::Value = serde_json::from_slice(&live.get("v1/entries/257")).unwrap();
    let leaf = Hash::from_hex(j["leaf_hash"].as_str().unwrap()).unwrap();
    let r = proof::run(&trust(), &p, &Leaf::Hash(leaf)).unwrap();
    assert_eq!(r.json["index"], 257);

    // The entry from the tiles, decoded.
    let r = entry::run(&trust(), &live.source(), 257).unwrap();
    assert_eq!(r.json["leaf_hash"], leaf.to_hex());
    assert_eq!(
        r.json["envelope"]["payload"]["text"],
        "{\"history\":\"a\",\"n\":257}"
    );

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
    let (a, b) = (Live::start(), Live::start());
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
    let live = Live::start();
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
    let other = Live::start();
    other.append("b", 0, size + 10);
    let before = std::fs::read(&state).unwrap();
    failed(monitor::poll(&trust(), &other.source(), &state), "fork");
    assert_eq!(std::fs::read(&state).unwrap(), before);
    std::fs::remove_dir_all(&dir).unwrap();
}
