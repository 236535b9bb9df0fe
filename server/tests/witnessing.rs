//! The server's witness loop against in-test witnesses on 127.0.0.1: policy k of n, witnesses
//! that are down, answer with another key, or hold an older size (409 resync); `/checkpoint` and
//! `?wait=cosigned`. Everything the server returns is checked with `sealtrail-spec`. The real
//! witness binary is exercised end to end in the `tests` crate.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use common::{ORIGIN, TestLog, config, signer, verifier};
use sealtrail_server::config::{Config, WitnessEndpoint};
use sealtrail_server::store::mem::MemStore;
use sealtrail_spec::Hash;
use sealtrail_spec::cosignature::Cosigner;
use sealtrail_spec::merkle::verify_consistency;
use sealtrail_spec::policy::Policy;
use sealtrail_spec::tlog_proof::TlogProof;
use sealtrail_spec::witness::{AddCheckpointRequest, format_signature_lines, format_size_body};

/// A minimal honest witness: checks the log signature, the old size and the consistency proof,
/// keeps (size, root), cosigns. `down` makes it answer 503; `signer` may be another key than
/// the one the log is configured with.
struct FakeWitness {
    cosigner: Cosigner,
    state: Mutex<(u64, Hash)>,
    down: AtomicBool,
    requests: AtomicUsize,
    conflicts: AtomicUsize,
}

async fn add_checkpoint(State(w): State<Arc<FakeWitness>>, body: Bytes) -> Response {
    w.requests.fetch_add(1, Ordering::SeqCst);
    if w.down.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "down").into_response();
    }
    let req = match AddCheckpointRequest::parse(&body) {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    let Ok(cp) = sealtrail_spec::checkpoint::open(req.checkpoint(), ORIGIN, &[&verifier()]) else {
        return (StatusCode::FORBIDDEN, "bad log signature").into_response();
    };
    let (size, root) = (cp.checkpoint().size(), cp.checkpoint().root());
    let mut state = w.state.lock().unwrap();
    if req.old_size() != state.0 {
        w.conflicts.fetch_add(1, Ordering::SeqCst);
        return (
            StatusCode::CONFLICT,
            [(header::CONTENT_TYPE, "text/x.tlog.size")],
            format_size_body(state.0),
        )
            .into_response();
    }
    if verify_consistency(state.0, size, &state.1, &root, req.proof()).is_err() {
        return (StatusCode::UNPROCESSABLE_ENTITY, "bad proof").into_response();
    }
    *state = (size, root);
    let sig = w.cosigner.cosign(cp.note().text(), 1_700_000_000).unwrap();
    format_signature_lines(&[sig]).into_response()
}

struct Witness {
    fake: Arc<FakeWitness>,
    url: String,
    vkey: String,
}

async fn witness(name: &str, seed: u8, wrong_key: bool) -> Witness {
    let cosigner = Cosigner::from_seed(name, [seed; 32]).unwrap();
    let vkey = if wrong_key {
        Cosigner::from_seed(name, [seed ^ 0xff; 32])
            .unwrap()
            .verifier()
            .to_vkey()
    } else {
        cosigner.verifier().to_vkey()
    };
    let fake = Arc::new(FakeWitness {
        cosigner,
        state: Mutex::new((0, sealtrail_spec::hash::EMPTY_ROOT)),
        down: AtomicBool::new(false),
        requests: AtomicUsize::new(0),
        conflicts: AtomicUsize::new(0),
    });
    let app = axum::Router::new()
        .route("/add-checkpoint", axum::routing::post(add_checkpoint))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Witness { fake, url, vkey }
}

fn witnessed_config(ws: &[&Witness], quorum: usize) -> Config {
    let mut c = config();
    c.witnessing.witnesses = ws
        .iter()
        .map(|w| WitnessEndpoint {
            url: w.url.clone(),
            vkey: w.vkey.clone(),
        })
        .collect();
    c.witnessing.quorum = Some(quorum);
    c.witnessing.interval_ms = 20;
    c.witnessing.max_backoff_ms = 100;
    c.witnessing.timeout_ms = 2000;
    c.witnessing.cosigned_wait_secs = 2;
    c
}

/// The policy a client would use, built from the witnesses' real keys (not the config's).
fn client_policy(ws: &[&Witness], k: usize) -> Policy {
    let keys: Vec<String> = ws
        .iter()
        .map(|w| w.fake.cosigner.verifier().to_vkey())
        .collect();
    Policy::k_of_n(&[signer().verifier().to_vkey()], &keys, k).unwrap()
}

async fn append(log: &TestLog, n: usize, wait: &str) -> common::Resp {
    let mut last = None;
    for i in 0..n {
        last = Some(
            log.post_json(&format!("/v1/entries{wait}"), &format!("{{\"n\":{i}}}"))
                .await,
        );
    }
    last.unwrap()
}

fn start(c: Config) -> (TestLog, tokio::task::JoinSet<()>) {
    let log = TestLog::start(c, Arc::new(MemStore::default()));
    let state = log.server.as_ref().unwrap().state().clone();
    let tasks = state
        .witnessing
        .spawn(state.seq.clone(), state.store.clone());
    (log, tasks)
}

/// Polls `/checkpoint` until it verifies under `policy` at `size` or more (bounded).
async fn cosigned_checkpoint(log: &TestLog, policy: &Policy, size: u64) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let body = log.get("/checkpoint").await.body;
        if let Ok(o) = policy.verify_checkpoint(&body, ORIGIN)
            && o.checkpoint().checkpoint().size() >= size
        {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "no checkpoint of size {size} met the policy: {}",
            String::from_utf8_lossy(&body)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn check_tlog_proof(resp: &common::Resp, policy: &Policy) -> u64 {
    let j = resp.json();
    let proof = TlogProof::parse(j["tlog_proof"].as_str().unwrap().as_bytes()).unwrap();
    let leaf = Hash::from_hex(j["leaf_hash"].as_str().unwrap()).unwrap();
    let v = proof
        .verify(&leaf, ORIGIN, &[&verifier()], Some(policy))
        .expect("the tlog-proof verifies under the witness policy");
    v.witnesses().map_or(0, <[_]>::len) as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_of_three_cosign_and_tolerate_one_witness_down() {
    let (a, b, c) = (
        witness("w1.example", 1, false).await,
        witness("w2.example", 2, false).await,
        witness("w3.example", 3, false).await,
    );
    let policy = client_policy(&[&a, &b, &c], 2);
    let (log, _tasks) = start(witnessed_config(&[&a, &b, &c], 2));

    append(&log, 3, "").await;
    let note = cosigned_checkpoint(&log, &policy, 3).await;
    let cosigners = policy.verify_checkpoint(&note, ORIGIN).unwrap();
    assert!(cosigners.witnesses().len() >= 2);

    // wait=cosigned answers with a tlog-proof whose checkpoint meets the policy.
    let r = append(&log, 1, "?wait=cosigned").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert!(check_tlog_proof(&r, &policy) >= 2);

    // One witness down: the other two still meet the policy.
    c.fake.down.store(true, Ordering::SeqCst);
    let r = append(&log, 2, "?wait=cosigned").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    check_tlog_proof(&r, &policy);
    let info = log.get("/v1/log").await.json();
    let text = info["witness_policy"].as_str().unwrap();
    assert_eq!(Policy::parse(text.as_bytes()).unwrap(), policy);
    log.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_witnesses_down_time_out_wait_cosigned_but_appends_succeed() {
    let (a, b, c) = (
        witness("w1.example", 1, false).await,
        witness("w2.example", 2, false).await,
        witness("w3.example", 3, false).await,
    );
    b.fake.down.store(true, Ordering::SeqCst);
    c.fake.down.store(true, Ordering::SeqCst);
    let (log, _tasks) = start(witnessed_config(&[&a, &b, &c], 2));
    let r = append(&log, 1, "?wait=cosigned").await;
    assert_eq!(r.status, StatusCode::GATEWAY_TIMEOUT, "{}", r.text());
    assert_eq!(r.error_code(), "witness_timeout");
    // The entry is there anyway, and plain appends go on.
    assert_eq!(log.get("/v1/entries/0").await.status, StatusCode::OK);
    let r = append(&log, 1, "").await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.json()["index"], 1);
    // The one live witness did cosign; the down ones were retried.
    assert!(a.fake.state.lock().unwrap().0 >= 1);
    let metrics = log.get("/metrics").await.text();
    assert!(
        metrics.contains("sealtrail_witness_policy_met 0"),
        "{metrics}"
    );
    log.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_witness_with_another_key_never_counts() {
    let a = witness("w1.example", 1, true).await;
    let (log, _tasks) = start(witnessed_config(&[&a], 1));
    let r = append(&log, 1, "?wait=cosigned").await;
    assert_eq!(r.status, StatusCode::GATEWAY_TIMEOUT, "{}", r.text());
    assert!(a.fake.requests.load(Ordering::SeqCst) >= 1);
    // /checkpoint stays the log-only checkpoint: no unverified cosignature is ever served.
    let body = log.get("/checkpoint").await.text();
    assert!(!body.contains("w1.example"), "{body}");
    let metrics = log.get("/metrics").await.text();
    assert!(
        metrics.contains(
            "sealtrail_witness_requests_total{result=\"invalid\",witness=\"w1.example\"}"
        ),
        "{metrics}"
    );
    log.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_loop_resyncs_from_the_witness_size_with_a_valid_proof() {
    let a = witness("w1.example", 1, false).await;
    let policy = client_policy(&[&a], 1);
    let (log, mut tasks) = start(witnessed_config(&[&a], 1));
    append(&log, 5, "").await;
    cosigned_checkpoint(&log, &policy, 5).await;
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    append(&log, 7, "").await;
    // A fresh loop does not know the witness holds 5: it sends old 0, learns 5 from the 409,
    // and proves 5 -> 12 (the fake witness checks the proof).
    let state = log.server.as_ref().unwrap().state().clone();
    let _tasks = state
        .witnessing
        .spawn(state.seq.clone(), state.store.clone());
    cosigned_checkpoint(&log, &policy, 12).await;
    assert_eq!(a.fake.state.lock().unwrap().0, 12);
    assert_eq!(a.fake.conflicts.load(Ordering::SeqCst), 1);
    log.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_cosigned_without_witnesses_is_refused_before_writing() {
    let log = TestLog::start(config(), Arc::new(MemStore::default()));
    let r = append(&log, 1, "?wait=cosigned").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error_code(), "bad_request");
    assert_eq!(log.get("/v1/log").await.json()["tree_size"], 0);
    assert!(log.get("/v1/log").await.json()["witness_policy"].is_null());
    log.stop().await;
}

#[test]
fn bad_witness_configs_are_refused() {
    let mut c = config();
    c.witnessing.quorum = Some(1);
    assert!(c.validate().is_err(), "quorum without witnesses");
    let mut c = config();
    c.witnessing.witnesses = vec![WitnessEndpoint {
        url: "ftp://w".into(),
        vkey: Cosigner::from_seed("w", [1; 32])
            .unwrap()
            .verifier()
            .to_vkey(),
    }];
    c.validate().unwrap();
    let err = sealtrail_server::serve::Server::start(c, Arc::new(MemStore::default()), signer())
        .unwrap_err();
    assert!(err.to_string().contains("not http or https"), "{err}");
    let mut c = config();
    c.witnessing.witnesses = vec![WitnessEndpoint {
        url: "http://127.0.0.1:1".into(),
        vkey: "not a key".into(),
    }];
    assert!(
        sealtrail_server::serve::Server::start(c, Arc::new(MemStore::default()), signer()).is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tlog_policy_file_names_the_witnesses_and_the_quorum() {
    let (a, b) = (
        witness("w1.example", 1, false).await,
        witness("w2.example", 2, false).await,
    );
    let dir = tempfile::tempdir().unwrap();
    let log_vkey = signer().verifier().to_vkey();
    // w2 has no URL: it counts for the policy but is never contacted, so the quorum must be
    // met by w1 alone.
    let text = format!(
        "log {log_vkey}\nwitness w1 {} {}\nwitness w2 {}\ngroup g 1 w1 w2\nquorum g\n",
        a.vkey, a.url, b.vkey
    );
    let path = dir.path().join("policy.txt");
    std::fs::write(&path, &text).unwrap();
    let mut c = config();
    c.witnessing.policy_file = Some(path.clone());
    c.witnessing.interval_ms = 20;
    let (log, _tasks) = start(c);
    let r = append(&log, 2, "?wait=cosigned").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let policy = Policy::parse(text.as_bytes()).unwrap();
    assert_eq!(check_tlog_proof(&r, &policy), 1);
    assert_eq!(b.fake.requests.load(Ordering::SeqCst), 0);
    log.stop().await;

    // A policy that does not list this log's key is refused at start.
    let other = Cosigner::from_seed("other.example/log", [9; 32])
        .unwrap()
        .verifier()
        .to_vkey();
    std::fs::write(
        &path,
        format!("log {other}\nwitness w1 {} {}\nquorum w1\n", a.vkey, a.url),
    )
    .unwrap();
    let mut c = config();
    c.witnessing.policy_file = Some(path);
    let err = sealtrail_server::serve::Server::start(c, Arc::new(MemStore::default()), signer())
        .unwrap_err();
    assert!(
        err.to_string().contains("does not list this log's key"),
        "{err}"
    );
}
