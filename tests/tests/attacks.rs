//! The resource-exhaustion attacks of `sealtrail-loadgen --attack`, bounded in count and time,
//! against a server (redb store) and a witness in this process on 127.0.0.1. Under each attack
//! the process's memory stays below 512 MiB, `/livez` answers every probe, a well-behaved
//! client's appends all succeed, connections over the limits are refused, and afterwards the
//! memory comes back near its baseline and the store passes fsck. Latency is not asserted here:
//! `tests/bench/attacks.sh` measures it on a release build (BENCHMARKS.md).
//!
//! The attacks run one after the other in a single test, because the memory measured is this
//! whole process's (the attacker's sockets live in the kernel, not in it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use sealtrail_server::config::Config;
use sealtrail_server::serve::Server;
use sealtrail_spec::cosignature::Cosigner;
use sealtrail_spec::note::Ed25519Signer;
use sealtrail_tests::loadgen::attack::{AttackOptions, AttackReport, Scenario, attack};

/// The allocator the binaries use, so that memory is returned as it is in production.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ORIGIN: &str = "attacks.test.example/log";
const RSS_BOUND_MIB: f64 = 512.0;
/// Idle sockets from one address: more than the per-address cap the server is given here.
const PER_IP_CAP: usize = 200;
const IDLE: usize = 300;

fn options(scenario: Scenario, target: std::net::SocketAddr) -> AttackOptions {
    let mut o = AttackOptions::new(scenario, target, std::process::id());
    o.connections = match scenario {
        Scenario::UnreadResponses => 60,
        Scenario::SlowBodies => 60,
        Scenario::IdleSockets => IDLE,
    };
    o.duration = Duration::from_secs(6);
    o.reconnect = Duration::from_millis(500);
    // Generous: a loaded two-core CI machine running a debug-info build.
    o.probe_timeout = Duration::from_secs(10);
    o.settle = Duration::from_secs(30);
    o.linger = Duration::from_secs(2);
    o
}

/// What every attack must leave true. `refusals`: whether the limits must have refused some of
/// the attack's connections or requests.
fn check(r: &AttackReport, appends: bool, refusals: bool) {
    let show = serde_json::to_string_pretty(r).unwrap();
    assert!(
        r.opened > 0 && r.open_peak > 0,
        "no attack was made: {show}"
    );
    assert!(
        r.rss_peak_mib < RSS_BOUND_MIB,
        "memory over the bound: {show}"
    );
    assert!(
        r.livez.ok > 0 && r.livez.failed == 0,
        "/livez failed: {show}"
    );
    if appends {
        assert!(
            r.appends.ok > 0 && r.appends.failed == 0,
            "appends failed: {show}"
        );
    }
    if refusals {
        assert!(r.refused > 0, "nothing was refused: {show}");
    }
    let near = r.rss_baseline_mib + (r.rss_baseline_mib / 4.0).max(32.0);
    assert!(
        r.rss_after_mib <= near,
        "memory did not come back near its baseline: {show}"
    );
}

#[test]
fn attacks_leave_memory_bounded_and_the_log_serving() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let signer = || Ed25519Signer::from_seed(ORIGIN, [33; 32]).unwrap();

    // The log, with its default limits but a per-address connection cap the idle sockets exceed.
    let mut config = Config {
        origin: ORIGIN.to_owned(),
        data_dir: dir.path().join("log"),
        ..Config::default()
    };
    config.limits.max_connections_per_ip = PER_IP_CAP;
    let store: Arc<dyn sealtrail_server::store::LogStore> =
        Arc::from(sealtrail_server::store::open(config.store, &config.data_dir).unwrap());
    let (stop, done, addr) = rt.block_on(async {
        let server = Server::start(config, store.clone(), signer()).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let done = tokio::spawn(server.run(listener, async {
            let _ = rx.await;
        }));
        (tx, done, addr)
    });

    let pages = rt
        .block_on(attack(options(Scenario::UnreadResponses, addr)))
        .unwrap();
    check(&pages, true, false);
    // Over the per-address share of the body budget, unfinished bodies are refused with 503.
    let bodies = rt
        .block_on(attack(options(Scenario::SlowBodies, addr)))
        .unwrap();
    check(&bodies, true, true);
    let idle = rt
        .block_on(attack(options(Scenario::IdleSockets, addr)))
        .unwrap();
    check(&idle, true, true);
    // The server counted the connections it closed over the per-address cap.
    let metrics = reqwest::blocking::get(format!("http://{addr}/metrics"))
        .unwrap()
        .text()
        .unwrap();
    let closed: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("sealtrail_errors_total{category=\"connection_limit_ip\"} "))
        .map_or(0, |v| v.trim().parse().unwrap());
    assert!(
        closed as usize >= IDLE - PER_IP_CAP,
        "{closed} connections closed over the per-address cap:\n{metrics}"
    );

    let _ = stop.send(());
    rt.block_on(done).unwrap();
    let report =
        sealtrail_server::fsck::fsck(store.as_ref(), ORIGIN, &signer().verifier()).unwrap();
    assert!(report.ok(), "{report:?}");
    assert!(
        report.size > 1000,
        "the pages and appends are in the log: {report:?}"
    );
    drop(store);

    // The witness: unfinished add-checkpoint bodies and idle sockets.
    let key = Cosigner::from_seed("attacks.witness.example", [34; 32]).unwrap();
    let wconfig = sealtrail_witness::config::Config::from_toml(&format!(
        "name = \"attacks.witness.example\"\nkey_file = \"unused\"\ndata_dir = {:?}\n\
         [limits]\nmax_connections_per_ip = {PER_IP_CAP}\n",
        dir.path().join("witness")
    ))
    .unwrap();
    let (wstop, wdone, waddr) = rt.block_on(async {
        let w = sealtrail_witness::serve::Witness::start_with_key(wconfig, key).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let done = tokio::spawn(w.run(listener, async {
            let _ = rx.await;
        }));
        (tx, done, addr)
    });
    for scenario in [Scenario::SlowBodies, Scenario::IdleSockets] {
        let mut o = options(scenario, waddr);
        o.appends = false;
        o.path = Some("/add-checkpoint".into());
        o.body_bytes = 128 << 10;
        let r = rt.block_on(attack(o)).unwrap();
        check(&r, false, true);
    }
    let _ = wstop.send(());
    rt.block_on(wdone).unwrap();
}
