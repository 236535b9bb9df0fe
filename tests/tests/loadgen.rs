//! The load generator against a live in-process server on 127.0.0.1: every mode completes with
//! its answers checked and counted, errors are never counted as throughput, a wrong log key is
//! caught, and non-loopback targets are refused. Small counts only: no timing is asserted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use sealtrail_server::config::Config;
use sealtrail_server::serve::Server;
use sealtrail_server::store::mem::MemStore;
use sealtrail_spec::note::Ed25519Signer;
use sealtrail_tests::loadgen::{LoadError, Mode, Options, Summary, run};

const ORIGIN: &str = "loadgen.test.example/log";

/// A server on 127.0.0.1:0 with an in-memory store, on the test's runtime; `config` adjusts the
/// defaults.
async fn start(config: impl FnOnce(&mut Config)) -> (String, tokio::sync::oneshot::Sender<()>) {
    let mut c = Config {
        origin: ORIGIN.to_owned(),
        ..Config::default()
    };
    config(&mut c);
    let signer = Ed25519Signer::from_seed(ORIGIN, [21; 32]).unwrap();
    let server = Server::start(c, Arc::new(MemStore::new()), signer).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.run(listener, async {
        let _ = rx.await;
    }));
    (format!("http://{addr}"), tx)
}

fn opts(mode: Mode, url: &str, count: u64) -> Options {
    let mut o = Options::new(mode, url);
    o.concurrency = 4;
    o.count = Some(count);
    o.verify_every = 1;
    o.deadline = Duration::from_secs(60);
    o
}

fn assert_clean(s: &Summary, requests: u64) {
    assert!(s.clean(), "{s:#?}");
    assert_eq!(s.requests, requests, "{s:#?}");
    assert_eq!(s.ok, requests, "{s:#?}");
    assert!(s.latency_ms.max > 0.0 && s.latency_ms.p50 <= s.latency_ms.p99);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_modes_count_and_verify_every_entry() {
    let (url, _stop) = start(|_| {}).await;

    let s = run(opts(Mode::Append, &url, 40)).await.unwrap();
    assert_clean(&s, 40);
    assert_eq!(
        (s.entries, s.tree_size_before, s.tree_size_after),
        (40, 0, 40)
    );
    assert_eq!(s.duplicate_indices, 0);
    assert!(
        s.post_checked > 0,
        "acknowledged entries were proven: {s:#?}"
    );
    assert_eq!(s.mode, "append");

    let mut o = opts(Mode::Batch, &url, 6);
    o.batch = 50;
    o.payload_bytes = 100;
    let s = run(o).await.unwrap();
    assert_clean(&s, 6);
    assert_eq!((s.entries, s.batch), (300, 50));
    assert_eq!((s.tree_size_before, s.tree_size_after), (40, 340));
    assert!(s.post_checked > 0);

    let s = run(opts(Mode::Checkpoint, &url, 20)).await.unwrap();
    assert_clean(&s, 20);
    assert_eq!(s.entries, 20);
    assert_eq!(s.verified, 20, "every wait=checkpoint proof is verified");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_modes_verify_against_the_signed_tree() {
    let (url, _stop) = start(|_| {}).await;
    for mode in [Mode::Inclusion, Mode::Consistency, Mode::Tiles] {
        let mut o = opts(mode, &url, 30);
        // The first read run fills the log: 600 entries, so both full and partial tiles exist.
        o.prefill = if mode == Mode::Inclusion { 600 } else { 0 };
        let s = run(o).await.unwrap();
        assert_clean(&s, 30);
        assert_eq!(s.entries, 0);
        assert_eq!(
            s.verified, 30,
            "{mode:?}: every answer verified with --verify-every 1"
        );
        assert_eq!(s.tree_size_after, 600);
    }
    let s = run(opts(Mode::Mixed, &url, 40)).await.unwrap();
    assert_clean(&s, 40);
    assert_eq!(s.entries, 20, "half of a mixed run appends");
    assert_eq!(s.verified, 20, "every read of a mixed run is verified");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_runs_on_schedule_and_verifies() {
    let (url, _stop) = start(|_| {}).await;
    let mut o = opts(Mode::Checkpoint, &url, 50);
    o.rate = Some(500.0);
    let s = run(o).await.unwrap();
    assert_clean(&s, 50);
    assert_eq!((s.load.as_str(), s.offered_rate), ("open", Some(500.0)));
    assert_eq!(s.verified, 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tiny_log_has_only_a_partial_tile() {
    let (url, _stop) = start(|_| {}).await;
    let mut o = opts(Mode::Tiles, &url, 10);
    o.prefill = 5;
    let s = run(o).await.unwrap();
    assert_clean(&s, 10);
    assert_eq!(s.verified, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_requests_are_errors_not_throughput() {
    // A server whose payload cap is below the generator's payloads: every append gets 413.
    let (url, _stop) = start(|c| c.limits.max_payload_bytes = 64).await;
    let mut o = opts(Mode::Append, &url, 10);
    o.payload_bytes = 200;
    let s = run(o).await.unwrap();
    assert!(!s.clean());
    assert_eq!((s.requests, s.ok, s.errors, s.entries), (10, 0, 10, 0));
    assert_eq!(s.entries_per_s, 0.0);
    assert_eq!(s.error_kinds.get("status 413"), Some(&10), "{s:#?}");
    assert!(s.first_error.as_deref().unwrap().contains("413"));
    assert_eq!(s.verify_failures, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_log_key_fails_verification() {
    let (url, _stop) = start(|_| {}).await;
    let other = Ed25519Signer::from_seed(ORIGIN, [99; 32]).unwrap();
    let mut o = opts(Mode::Checkpoint, &url, 8);
    o.log_key = Some(other.verifier().to_vkey());
    let s = run(o).await.unwrap();
    assert_eq!((s.ok, s.errors, s.verify_failures), (0, 8, 8), "{s:#?}");
    assert_eq!(s.entries, 0, "unverified appends are not counted");
    assert!(!s.clean());

    // Read modes open the checkpoint before they start: a wrong key stops the run.
    let mut o = opts(Mode::Inclusion, &url, 8);
    o.log_key = Some(other.verifier().to_vkey());
    let e = run(o).await.unwrap_err();
    assert!(
        matches!(e, LoadError::Server(ref m) if m.contains("checkpoint")),
        "{e}"
    );
}

#[tokio::test]
async fn only_loopback_targets_without_allow_remote() {
    for url in ["http://192.0.2.1:8080", "http://[2001:db8::1]:80"] {
        let e = run(opts(Mode::Append, url, 1)).await.unwrap_err();
        assert!(
            matches!(e, LoadError::Usage(ref m) if m.contains("--allow-remote")),
            "{url}: {e}"
        );
    }
    for url in [
        "https://127.0.0.1:1",
        "127.0.0.1:1",
        "http://127.0.0.1:1/v1",
    ] {
        let e = run(opts(Mode::Append, url, 1)).await.unwrap_err();
        assert!(matches!(e, LoadError::Usage(_)), "{url}: {e}");
    }
    let mut o = opts(Mode::Append, "http://127.0.0.1:1", 1);
    o.count = Some(0);
    assert!(matches!(run(o).await.unwrap_err(), LoadError::Usage(_)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_log_cannot_serve_proof_runs() {
    let (url, _stop) = start(|_| {}).await;
    let e = run(opts(Mode::Inclusion, &url, 5)).await.unwrap_err();
    assert!(
        matches!(e, LoadError::Usage(ref m) if m.contains("--prefill")),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proofs_verify_across_full_level_one_tiles() {
    // Past 65,536 entries the first level-1 tile is full: proof nodes come from both levels'
    // full and partial tiles (and the server's summaries of them).
    let (url, _stop) = start(|_| {}).await;
    let mut o = opts(Mode::Inclusion, &url, 300);
    o.prefill = 66_000;
    let s = run(o).await.unwrap();
    assert_clean(&s, 300);
    assert_eq!((s.verified, s.tree_size_after), (300, 66_000));
    let s = run(opts(Mode::Consistency, &url, 300)).await.unwrap();
    assert_clean(&s, 300);
    assert_eq!(s.verified, 300);
    let s = run(opts(Mode::Checkpoint, &url, 300)).await.unwrap();
    assert_clean(&s, 300);
    assert_eq!(s.verified, 300);
}
