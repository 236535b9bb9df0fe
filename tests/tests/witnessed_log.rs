//! A log with real witnesses, all in-process on 127.0.0.1: a 2-of-3 policy met, held with one
//! witness down and missed (with appends still succeeding) with two down; a split view between two
//! log instances sharing one key, caught by gossiping witnesses; a witness anchoring the
//! checkpoints it cosigns into a second sealtrail log, proven there with the verifier.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use sealtrail_server::config::{Config, WitnessEndpoint};
use sealtrail_server::serve::Server;
use sealtrail_server::store::mem::MemStore;
use sealtrail_spec::Hash;
use sealtrail_spec::cosignature::Cosigner;
use sealtrail_spec::note::Ed25519Signer;
use sealtrail_spec::policy::Policy;
use sealtrail_spec::tlog_proof::TlogProof;
use sealtrail_witness::Witness;
use sealtrail_witness::config::{AnchorConfig, LogConfig, PeerConfig};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

const ORIGIN: &str = "witnessed.sealtrail.example/log";

fn log_signer() -> Ed25519Signer {
    Ed25519Signer::from_seed(ORIGIN, [31; 32]).unwrap()
}

/// A running service: its URL and the sender that stops it.
struct Running {
    url: String,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<()>,
}

impl Running {
    async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let _ = self.done.await;
    }
}

async fn bind() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    (l, url)
}

fn run_server(
    listener: TcpListener,
    url: String,
    config: Config,
    signer: Ed25519Signer,
) -> Running {
    let server = Server::start(config, Arc::new(MemStore::new()), signer).unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let done = tokio::spawn(server.run(listener, async {
        let _ = rx.await;
    }));
    Running {
        url,
        stop: Some(tx),
        done,
    }
}

fn run_witness(listener: TcpListener, url: String, w: Witness) -> Running {
    let (tx, rx) = oneshot::channel::<()>();
    let done = tokio::spawn(w.run(listener, async {
        let _ = rx.await;
    }));
    Running {
        url,
        stop: Some(tx),
        done,
    }
}

fn cosigner(n: u8) -> Cosigner {
    Cosigner::from_seed(&format!("w{n}.witness.example"), [n; 32]).unwrap()
}

/// A witness of the log `ORIGIN` (signed by `log_key`), state in `dir`.
fn witness_config(
    n: u8,
    dir: &std::path::Path,
    log_url: Option<&str>,
    peers: Vec<PeerConfig>,
    anchors: Vec<AnchorConfig>,
) -> sealtrail_witness::Config {
    let name = cosigner(n).name().to_owned();
    let mut c = sealtrail_witness::Config::new(
        &name,
        dir.join(format!("w{n}.key")),
        dir.join(format!("w{n}")),
    );
    c.logs = vec![LogConfig {
        origin: ORIGIN.to_owned(),
        keys: vec![log_signer().verifier().to_vkey()],
        url: log_url.map(str::to_owned),
    }];
    c.peers = peers;
    c.anchors = anchors;
    c.anchoring.interval_secs = 0;
    c
}

fn server_config(witnesses: &[(String, String)], quorum: usize) -> Config {
    let mut c = Config {
        origin: ORIGIN.to_owned(),
        ..Config::default()
    };
    c.witnessing.witnesses = witnesses
        .iter()
        .map(|(url, vkey)| WitnessEndpoint {
            url: url.clone(),
            vkey: vkey.clone(),
        })
        .collect();
    c.witnessing.quorum = Some(quorum);
    c.witnessing.interval_ms = 20;
    c.witnessing.max_backoff_ms = 200;
    c.witnessing.cosigned_wait_secs = 3;
    c
}

async fn post(url: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
    let r = reqwest::Client::new()
        .post(format!("{url}{path}"))
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

fn verify_cosigned(j: &serde_json::Value, policy: &Policy) -> usize {
    let proof = TlogProof::parse(j["tlog_proof"].as_str().unwrap().as_bytes()).unwrap();
    let leaf = Hash::from_hex(j["leaf_hash"].as_str().unwrap()).unwrap();
    let v = proof
        .verify(&leaf, ORIGIN, &[&log_signer().verifier()], Some(policy))
        .expect("tlog-proof meets the witness policy");
    v.witnesses().map_or(0, <[_]>::len)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_of_three_witnesses_cosign_with_one_down_and_not_with_two() {
    let dir = tempfile::tempdir().unwrap();
    let (log_l, log_url) = bind().await;
    let mut witnesses = Vec::new();
    let mut endpoints = Vec::new();
    for n in 1..=3 {
        let (l, url) = bind().await;
        let c = witness_config(n, dir.path(), Some(&log_url), Vec::new(), Vec::new());
        let w = Witness::start_with_key(c, cosigner(n)).unwrap();
        endpoints.push((url.clone(), w.verifier().to_vkey()));
        witnesses.push(run_witness(l, url, w));
    }
    let vkeys: Vec<&str> = endpoints.iter().map(|(_, k)| k.as_str()).collect();
    let policy = Policy::k_of_n(&[log_signer().verifier().to_vkey()], &vkeys, 2).unwrap();
    let log = run_server(
        log_l,
        log_url.clone(),
        server_config(&endpoints, 2),
        log_signer(),
    );

    let (s, j) = post(&log_url, "/v1/entries?wait=cosigned", "{\"n\":1}").await;
    assert_eq!(s, 201, "{j}");
    assert!(verify_cosigned(&j, &policy) >= 2);

    // One witness down: the other two still meet the policy for a new entry.
    witnesses.pop().unwrap().stop().await;
    let (s, j) = post(&log_url, "/v1/entries?wait=cosigned", "{\"n\":2}").await;
    assert_eq!(s, 201, "{j}");
    assert_eq!(verify_cosigned(&j, &policy), 2);

    // Two down: wait=cosigned times out with a clear error; appends still succeed.
    witnesses.pop().unwrap().stop().await;
    let (s, j) = post(&log_url, "/v1/entries?wait=cosigned", "{\"n\":3}").await;
    assert_eq!(s, 504, "{j}");
    assert_eq!(j["error"]["code"], "witness_timeout");
    let (s, j) = post(&log_url, "/v1/entries", "{\"n\":4}").await;
    assert_eq!(s, 201, "{j}");
    assert_eq!(j["index"], 3);
    log.stop().await;
    for w in witnesses {
        w.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn witnesses_gossip_and_catch_a_split_view() {
    let dir = tempfile::tempdir().unwrap();
    // Two instances of "the same log" (one key), each with its own history, each talking to
    // its own witness; the witnesses are each other's peers.
    let (la, url_a) = bind().await;
    let (lb, url_b) = bind().await;
    let (l1, url_1) = bind().await;
    let (l2, url_2) = bind().await;
    let peer = |n: u8, url: &str| PeerConfig {
        url: url.to_owned(),
        vkey: cosigner(n).verifier().to_vkey(),
    };
    let w1 = Witness::start_with_key(
        witness_config(
            1,
            dir.path(),
            Some(&url_a),
            vec![peer(2, &url_2)],
            Vec::new(),
        ),
        cosigner(1),
    )
    .unwrap();
    let w2 = Witness::start_with_key(
        witness_config(
            2,
            dir.path(),
            Some(&url_b),
            vec![peer(1, &url_1)],
            Vec::new(),
        ),
        cosigner(2),
    )
    .unwrap();
    let (g1, g2) = (w1.clone(), w2.clone());
    let r1 = run_witness(l1, url_1.clone(), w1);
    let r2 = run_witness(l2, url_2.clone(), w2);
    let a = run_server(
        la,
        url_a.clone(),
        server_config(&[(url_1, cosigner(1).verifier().to_vkey())], 1),
        log_signer(),
    );
    let b = run_server(
        lb,
        url_b.clone(),
        server_config(&[(url_2, cosigner(2).verifier().to_vkey())], 1),
        log_signer(),
    );
    // Same sizes, different contents: each witness alone sees nothing wrong.
    for i in 0..5 {
        let (s, j) = post(
            &url_a,
            "/v1/entries?wait=cosigned",
            &format!("{{\"a\":{i}}}"),
        )
        .await;
        assert_eq!(s, 201, "{j}");
        let (s, j) = post(
            &url_b,
            "/v1/entries?wait=cosigned",
            &format!("{{\"b\":{i}}}"),
        )
        .await;
        assert_eq!(s, 201, "{j}");
    }
    assert!(g1.split_views().await.unwrap().is_empty());
    // One gossip round each: both find the other's checkpoint inconsistent with their own.
    g1.gossip_once().await;
    g2.gossip_once().await;
    for (g, ours, theirs) in [(&g1, "a", "b"), (&g2, "b", "a")] {
        let views = g.split_views().await.unwrap();
        assert_eq!(views.len(), 1, "{views:?}");
        let v = &views[0];
        assert_eq!(v.origin, ORIGIN);
        // The evidence is both signed notes, each valid under the log's key.
        for note in [&v.ours, &v.theirs] {
            sealtrail_spec::checkpoint::open(note.as_bytes(), ORIGIN, &[&log_signer().verifier()])
                .unwrap();
        }
        assert_ne!(v.ours, v.theirs, "{ours} vs {theirs}");
        let metrics = g.metrics().render();
        assert!(
            metrics.contains(&format!(
                "sealtrail_witness_split_view{{origin=\"{ORIGIN}\"}} 1"
            )),
            "{metrics}"
        );
    }
    // And they stop cosigning: a new checkpoint of log a is not cosigned any more.
    let (s, j) = post(&url_a, "/v1/entries?wait=cosigned", "{\"a\":99}").await;
    assert_eq!(s, 504, "{j}");
    let body = reqwest::get(format!("{}/split-views", r1.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.contains(ORIGIN), "{body}");
    for r in [a, b, r1, r2] {
        r.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_witness_anchors_cosigned_checkpoints_into_a_second_log() {
    let dir = tempfile::tempdir().unwrap();
    let anchor_signer = Ed25519Signer::from_seed("anchor.sealtrail.example/log", [41; 32]).unwrap();
    let anchor_vkey = anchor_signer.verifier().to_vkey();
    let (la, anchor_url) = bind().await;
    let anchor = run_server(
        la,
        anchor_url.clone(),
        Config {
            origin: "anchor.sealtrail.example/log".to_owned(),
            ..Config::default()
        },
        anchor_signer,
    );
    let (lw, w_url) = bind().await;
    let (ll, log_url) = bind().await;
    let w = Witness::start_with_key(
        witness_config(
            1,
            dir.path(),
            None,
            Vec::new(),
            vec![AnchorConfig::Sealtrail {
                name: Some("anchor-log".into()),
                url: anchor_url.clone(),
                bearer_token: None,
                bearer_token_file: None,
            }],
        ),
        cosigner(1),
    )
    .unwrap();
    let witness = run_witness(lw, w_url.clone(), w);
    let log = run_server(
        ll,
        log_url.clone(),
        server_config(&[(w_url, cosigner(1).verifier().to_vkey())], 1),
        log_signer(),
    );
    let (s, j) = post(
        &log_url,
        "/v1/entries?wait=cosigned",
        "{\"event\":\"login\"}",
    )
    .await;
    assert_eq!(s, 201, "{j}");
    let cosigned_size = TlogProof::parse(j["tlog_proof"].as_str().unwrap().as_bytes())
        .unwrap()
        .index()
        + 1;

    // The anchor log receives the cosigned checkpoint as an entry.
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let (index, note, event_type) = loop {
        let j: serde_json::Value = http
            .get(format!("{anchor_url}/v1/entries?start=0"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let hit = j["entries"].as_array().unwrap().iter().find_map(|e| {
            // The payload is in the private record, served anonymously on loopback.
            let text =
                String::from_utf8(base64_decode(e["record"]["payload_base64"].as_str()?)).ok()?;
            text.starts_with(ORIGIN).then(|| {
                (
                    e["index"].as_u64().unwrap(),
                    text,
                    e["event_type"].as_str().map(str::to_owned),
                )
            })
        });
        if let Some(hit) = hit {
            break hit;
        }
        assert!(
            Instant::now() < deadline,
            "the checkpoint was never anchored"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // Under the witness's own event type: `sealtrail.` ones are the log's, refused from clients.
    assert_eq!(
        event_type.as_deref(),
        Some(sealtrail_witness::ANCHOR_EVENT_TYPE)
    );
    assert!(!sealtrail_witness::ANCHOR_EVENT_TYPE.starts_with("sealtrail."));
    // What was anchored is a checkpoint of the first log, cosigned by the witness.
    let policy = Policy::k_of_n(
        &[log_signer().verifier().to_vkey()],
        &[cosigner(1).verifier().to_vkey()],
        1,
    )
    .unwrap();
    let outcome = policy.verify_checkpoint(note.as_bytes(), ORIGIN).unwrap();
    assert!(outcome.checkpoint().checkpoint().size() >= cosigned_size);

    // Its inclusion in the anchor log verifies with the verifier, from the anchor log's tiles.
    let proof = http
        .get(format!("{anchor_url}/v1/proof/{index}"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec();
    let report = tokio::task::spawn_blocking(move || {
        let trust = sealtrail_verifier::trust::Trust::new(
            &anchor_vkey,
            None,
            sealtrail_verifier::trust::WitnessArgs::default(),
        )
        .unwrap();
        let source = sealtrail_verifier::source::Source::open(&anchor_url).unwrap();
        let entry = sealtrail_verifier::entry::run(&trust, &source, index).unwrap();
        let leaf = Hash::from_hex(entry.json["leaf_hash"].as_str().unwrap()).unwrap();
        let r = sealtrail_verifier::proof::run(
            &trust,
            &proof,
            &sealtrail_verifier::proof::Leaf::Hash(leaf),
        )
        .unwrap();
        (entry.json, r.json)
    })
    .await
    .unwrap();
    assert_eq!(report.1["index"], index);
    // The verifier checked the record it was served against the verified leaf.
    assert_eq!(report.0["record_status"], "verified", "{}", report.0);
    assert!(
        report.0["record"]["payload"]["text"]
            .as_str()
            .unwrap()
            .starts_with(ORIGIN),
        "{}",
        report.0
    );
    for r in [log, witness, anchor] {
        r.stop().await;
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_witness_over_tls_with_a_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let pem = cert.cert.pem();
    std::fs::write(dir.path().join("w.pem"), &pem).unwrap();
    std::fs::write(dir.path().join("w.key"), cert.signing_key.serialize_pem()).unwrap();
    let (lw, w_url) = bind().await;
    let w_url = w_url.replace("http://", "https://");
    let mut wc = witness_config(1, dir.path(), None, Vec::new(), Vec::new());
    wc.tls.cert_file = Some(dir.path().join("w.pem"));
    wc.tls.key_file = Some(dir.path().join("w.key"));
    let witness = run_witness(
        lw,
        w_url.clone(),
        Witness::start_with_key(wc, cosigner(1)).unwrap(),
    );
    let policy = Policy::k_of_n(
        &[log_signer().verifier().to_vkey()],
        &[cosigner(1).verifier().to_vkey()],
        1,
    )
    .unwrap();
    let endpoints = [(w_url, cosigner(1).verifier().to_vkey())];
    // Without the witness's CA the log cannot reach it; with it, checkpoints are cosigned.
    let (ll, log_url) = bind().await;
    let log = run_server(
        ll,
        log_url.clone(),
        server_config(&endpoints, 1),
        log_signer(),
    );
    let (s, j) = post(&log_url, "/v1/entries?wait=cosigned", "{\"n\":1}").await;
    assert_eq!(s, 504, "{j}");
    log.stop().await;
    let mut c = server_config(&endpoints, 1);
    c.witnessing.ca_file = Some(dir.path().join("w.pem"));
    let (ll, log_url) = bind().await;
    let log = run_server(ll, log_url.clone(), c, log_signer());
    let (s, j) = post(&log_url, "/v1/entries?wait=cosigned", "{\"n\":1}").await;
    assert_eq!(s, 201, "{j}");
    assert_eq!(verify_cosigned(&j, &policy), 1);
    // A CA file that holds no certificate is refused at start.
    std::fs::write(dir.path().join("empty.pem"), "").unwrap();
    let mut c = server_config(&endpoints, 1);
    c.witnessing.ca_file = Some(dir.path().join("empty.pem"));
    let err = Server::start(c, Arc::new(MemStore::new()), log_signer()).unwrap_err();
    assert!(err.to_string().contains("no certificate"), "{err}");
    log.stop().await;
    witness.stop().await;
}
