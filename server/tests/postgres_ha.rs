//! Several `sealtrail serve` processes on one PostgreSQL database (a throwaway cluster, Unix
//! socket only) form one log, through kills, a database outage and singleton failover.
//!
//! - Kills under load: three instances take writes from concurrent clients while random instances
//!   are SIGKILLed and restarted (at least 20 kills). Then every acknowledged entry is in the log
//!   exactly once at its acknowledged index, no request was committed twice, every checkpoint any
//!   client saw is the root of a prefix of the final tree (checked with `sealtrail-spec`), the Go
//!   x/mod client proves the final log and its consistency with a sample of those checkpoints,
//!   and `sealtrail fsck` passes.
//! - Database outage: PostgreSQL stopped (`-m immediate`) and restarted under load. While it is
//!   down writes answer 503, never anything else; nothing acknowledged is lost; writes resume by
//!   themselves.
//! - Singleton failover: the instance leading forwarding and witnessing is killed; another takes
//!   both over within a bounded time, and every entry reaches the forwarding files at least once.
//!
//! Bounded: fixed counts, and a guard timeout on every wait. Kill moments come from a seeded
//! generator; the seed is printed (`SEALTRAIL_CRASH_SEED` replays it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[allow(dead_code, unreachable_pub)]
#[path = "../src/store/pg_cluster.rs"]
mod pg_cluster;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sealtrail_spec::Hash;
use sealtrail_spec::note::Ed25519Verifier;

const ORIGIN: &str = "ha.sealtrail.example/log";
const INSTANCES: usize = 3;
const KILLS: usize = 20;
const WRITERS: usize = 6;
const GUARD: Duration = Duration::from_secs(60);

use common::Rng;

fn seed() -> u64 {
    let seed = std::env::var("SEALTRAIL_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("SEALTRAIL_CRASH_SEED={seed}");
    seed
}

fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &[u8],
) -> std::io::Result<(u16, Vec<u8>)> {
    common::raw_http(addr, method, path, "application/json", "", body)
}

fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(body)))
}

/// Waits for `cond`, checking every 20 ms, up to the guard timeout.
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + GUARD;
    while !cond() {
        assert!(Instant::now() < deadline, "{what}: not within {GUARD:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One `sealtrail serve` process; killed when dropped.
struct Node {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One log on one database: the shared key, one configuration per instance (they differ only in
/// the forwarding file), and the instances' addresses as they restart.
struct Log {
    dir: tempfile::TempDir,
    key: PathBuf,
    vkey: String,
    addrs: Mutex<Vec<Option<SocketAddr>>>,
}

impl Log {
    /// Writes the configurations (`extra` is appended; `{i}` in it is the instance number) and
    /// creates the key.
    fn new(url: &str, extra: &str) -> Log {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..INSTANCES {
            let text = format!(
                "origin = \"{ORIGIN}\"\nstore = \"postgres\"\n\n[postgres]\nurl = \"{url}\"\npool_size = 2\n\n{}",
                extra.replace("{i}", &i.to_string())
            );
            std::fs::write(dir.path().join(format!("n{i}.toml")), text).unwrap();
        }
        let key = dir.path().join("log.key");
        let out = Command::new(bin())
            .args(["keygen", "--origin", ORIGIN, "--out"])
            .arg(&key)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let vkey = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .find(|w| w.starts_with(&format!("{ORIGIN}+")))
            .expect("keygen prints the verifier key")
            .to_owned();
        Log {
            dir,
            key,
            vkey,
            addrs: Mutex::new(vec![None; INSTANCES]),
        }
    }

    fn config(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("n{i}.toml"))
    }

    fn start(&self, i: usize) -> Node {
        let data = self.dir.path().join(format!("data{i}"));
        let mut child = Command::new(bin())
            .arg("serve")
            .arg("--config")
            .arg(self.config(i))
            .arg("--data-dir")
            .arg(&data)
            .arg("--key-file")
            .arg(&self.key)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--log-format",
                "text",
                "--log",
                "warn",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn sealtrail");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let deadline = Instant::now() + GUARD;
        let addr = loop {
            assert!(Instant::now() < deadline, "instance {i} did not start");
            let line = lines.next().expect("exited before listening").unwrap();
            if let Some(a) = line.strip_prefix("sealtrail: listening on http://") {
                break a.parse().unwrap();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        self.addrs.lock().unwrap()[i] = Some(addr);
        Node { child, addr }
    }

    fn verifier(&self) -> Ed25519Verifier {
        Ed25519Verifier::from_vkey(&self.vkey).unwrap()
    }

    /// A live instance's address, chosen by `pick`.
    fn addr(&self, pick: u64) -> Option<SocketAddr> {
        let addrs = self.addrs.lock().unwrap();
        let live: Vec<_> = addrs.iter().flatten().copied().collect();
        (!live.is_empty()).then(|| live[pick as usize % live.len()])
    }

    fn fsck(&self) {
        let out = Command::new(bin())
            .arg("fsck")
            .arg("--config")
            .arg(self.config(0))
            .arg("--key-file")
            .arg(&self.key)
            .output()
            .unwrap();
        let report = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && report.contains("fsck: OK"),
            "fsck failed:\n{report}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_sealtrail")
}

/// What clients saw.
#[derive(Default)]
struct Seen {
    /// Acknowledged: index → (leaf hash, request tag).
    acked: BTreeMap<u64, (Hash, String)>,
    /// Verified checkpoint notes, by size.
    checkpoints: BTreeMap<u64, Vec<u8>>,
    /// Status codes answered to writes, with how often.
    statuses: BTreeMap<u16, u64>,
}

/// Appends `{"tag": ...}` entries to live instances until `stop`, never retrying a request
/// (so a request committed twice would show as a repeated tag).
fn writer(log: Arc<Log>, id: usize, stop: Arc<AtomicBool>, seen: Arc<Mutex<Seen>>, seed: u64) {
    let mut rng = Rng(seed ^ (id as u64 + 1).wrapping_mul(0x9E37_79B9));
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let Some(addr) = log.addr(rng.next()) else {
            continue;
        };
        n += 1;
        let tag = format!("w{id}-{n}");
        let Ok((status, body)) = http(
            addr,
            "POST",
            "/v1/entries",
            format!("{{\"tag\":\"{tag}\"}}").as_bytes(),
        ) else {
            continue; // killed meanwhile
        };
        let mut s = seen.lock().unwrap();
        *s.statuses.entry(status).or_default() += 1;
        if status == 201 {
            let j = json(&body);
            let leaf = Hash::from_hex(j["leaf_hash"].as_str().unwrap()).unwrap();
            let index = j["index"].as_u64().unwrap();
            if let Some(prev) = s.acked.insert(index, (leaf, tag.clone())) {
                panic!("index {index} acknowledged to both {} and {tag}", prev.1);
            }
        }
    }
}

/// Reads checkpoints from live instances until `stop`, verifying each.
fn watcher(log: Arc<Log>, stop: Arc<AtomicBool>, seen: Arc<Mutex<Seen>>, seed: u64) {
    let mut rng = Rng(seed ^ 0x00C0_FFEE);
    let v = log.verifier();
    while !stop.load(Ordering::Relaxed) {
        let Some(addr) = log.addr(rng.next()) else {
            continue;
        };
        let Ok((200, note)) = http(addr, "GET", "/checkpoint", b"") else {
            continue;
        };
        let c =
            sealtrail_spec::checkpoint::open(&note, ORIGIN, &[&v]).expect("checkpoint verifies");
        seen.lock()
            .unwrap()
            .checkpoints
            .insert(c.checkpoint().size(), note);
    }
}

/// Every entry of the log: (leaf hash, tag) by index, read from `addr` up to `size`.
fn entries(addr: SocketAddr, size: u64) -> Vec<(Hash, String)> {
    let mut out = Vec::new();
    while (out.len() as u64) < size {
        let (status, body) = http(
            addr,
            "GET",
            &format!("/v1/entries?start={}&limit=1000", out.len()),
            b"",
        )
        .unwrap();
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        for e in json(&body)["entries"].as_array().unwrap() {
            let leaf = Hash::from_hex(e["leaf_hash"].as_str().unwrap()).unwrap();
            let tag = e["record"]["payload"]["tag"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            out.push((leaf, tag));
        }
    }
    out.truncate(size as usize);
    out
}

/// The final checkpoint (size, root) from `addr`, verified.
fn final_checkpoint(log: &Log, addr: SocketAddr) -> (u64, Hash) {
    let (status, note) = http(addr, "GET", "/checkpoint", b"").unwrap();
    assert_eq!(status, 200);
    let c = sealtrail_spec::checkpoint::open(&note, ORIGIN, &[&log.verifier()]).unwrap();
    (c.checkpoint().size(), c.checkpoint().root())
}

/// Everything acknowledged is at its index, no tag is in the log twice, and every checkpoint
/// seen is the root of a prefix of the log.
fn check_log(log: &Log, addr: SocketAddr, seen: &Seen) -> Vec<(Hash, String)> {
    // The instance follows the others' last commits within moments.
    let end = seen.acked.keys().next_back().map_or(0, |i| i + 1);
    wait_until("the instance follows every acknowledged commit", || {
        final_checkpoint(log, addr).0 >= end
    });
    let (size, root) = final_checkpoint(log, addr);
    let all = entries(addr, size);
    let hashes: Vec<Hash> = all.iter().map(|(h, _)| *h).collect();
    assert_eq!(sealtrail_spec::merkle::tree_hash(&hashes), root);
    for (index, (leaf, tag)) in &seen.acked {
        let (got, got_tag) = all
            .get(*index as usize)
            .unwrap_or_else(|| panic!("acknowledged entry {index} ({tag}) is not in the log"));
        assert_eq!((got, got_tag), (leaf, tag), "entry {index}");
    }
    let mut tags: HashMap<&str, u64> = HashMap::new();
    for (i, (_, tag)) in all.iter().enumerate() {
        if let Some(first) = tags.insert(tag, i as u64) {
            panic!("request {tag} committed twice: entries {first} and {i}");
        }
    }
    let v = log.verifier();
    for note in seen.checkpoints.values() {
        let c = sealtrail_spec::checkpoint::open(note, ORIGIN, &[&v]).unwrap();
        let m = c.checkpoint().size();
        assert!(
            m <= size,
            "checkpoint of {m} entries but the log has {size}"
        );
        assert_eq!(
            c.checkpoint().root(),
            sealtrail_spec::merkle::tree_hash(&hashes[..m as usize]),
            "the checkpoint of size {m} is not a prefix of the log"
        );
    }
    all
}

#[test]
fn three_instances_survive_twenty_kills_under_load() {
    let seed = seed();
    let mut rng = Rng(seed);
    let url = pg_cluster::shared().new_database();
    let log = Arc::new(Log::new(&url, ""));
    let mut nodes: Vec<Node> = (0..INSTANCES).map(|i| log.start(i)).collect();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads: Vec<_> = (0..WRITERS)
        .map(|id| {
            let (log, stop, seen) = (log.clone(), stop.clone(), seen.clone());
            std::thread::spawn(move || writer(log, id, stop, seen, seed))
        })
        .collect();
    {
        let (log, stop, seen) = (log.clone(), stop.clone(), seen.clone());
        threads.push(std::thread::spawn(move || watcher(log, stop, seen, seed)));
    }
    let started = Instant::now();
    for k in 0..KILLS {
        // Load for a random moment, then kill a random instance without warning.
        std::thread::sleep(Duration::from_millis(50 + rng.below(250)));
        let i = rng.below(INSTANCES as u64) as usize;
        log.addrs.lock().unwrap()[i] = None;
        nodes[i].child.kill().unwrap();
        nodes[i].child.wait().unwrap();
        nodes[i] = log.start(i);
        let acked = seen.lock().unwrap().acked.len();
        eprintln!("kill {}: instance {i}; {acked} acknowledged so far", k + 1);
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let seen = seen.lock().unwrap();
    eprintln!(
        "{KILLS} kills in {:?}: {} acknowledged, {} checkpoints seen, statuses {:?}",
        started.elapsed(),
        seen.acked.len(),
        seen.checkpoints.len(),
        seen.statuses
    );
    assert!(seen.acked.len() > 100, "too little load to mean anything");
    assert!(
        seen.statuses.keys().all(|s| *s == 201 || *s == 503),
        "writes answered other than 201 or 503: {:?}",
        seen.statuses
    );
    // Every instance serves the same, whole log.
    let all = check_log(&log, nodes[0].addr, &seen);
    for node in &nodes[1..] {
        wait_until("every instance follows", || {
            final_checkpoint(&log, node.addr).0 == all.len() as u64
        });
    }
    // The Go x/mod client: the log, and its consistency with a sample of the checkpoints seen.
    let olds: Vec<PathBuf> = seen
        .checkpoints
        .values()
        .step_by((seen.checkpoints.len() / 20).max(1))
        .enumerate()
        .map(|(n, note)| {
            let p = log.dir.path().join(format!("old{n}.checkpoint"));
            std::fs::write(&p, note).unwrap();
            p
        })
        .collect();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let go = common::go::build_go_client().await;
        let base = format!("http://{}", nodes[1].addr);
        let run = go.run(&base, &log.vkey, &olds).await;
        let summary = run.assert_ok();
        eprintln!("Go client: {summary}");
    });
    drop(nodes);
    log.fsck();
}

#[test]
fn a_database_outage_answers_503_and_writes_resume_by_themselves() {
    let seed = seed();
    // A cluster of its own: this test stops it.
    let cluster = pg_cluster::Cluster::start();
    let url = cluster.new_database();
    let log = Arc::new(Log::new(&url, ""));
    let nodes: Vec<Node> = (0..2).map(|i| log.start(i)).collect();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..3)
        .map(|id| {
            let (log, stop, seen) = (log.clone(), stop.clone(), seen.clone());
            std::thread::spawn(move || writer(log, id, stop, seen, seed))
        })
        .collect();
    let count = |code: u16| {
        seen.lock()
            .unwrap()
            .statuses
            .get(&code)
            .copied()
            .unwrap_or(0)
    };
    wait_until("writes before the outage", || count(201) >= 50);
    cluster.stop_server();
    let down_at = count(201);
    wait_until("503 while the database is down", || count(503) >= 20);
    let acked_while_down = count(201) - down_at;
    // A write in flight at the stop may still have been acknowledged; none after it.
    assert!(
        acked_while_down <= 3,
        "{acked_while_down} writes acknowledged without a database"
    );
    cluster.start_server();
    let up_at = count(201);
    wait_until("writes resume after the restart", || {
        count(201) >= up_at + 50
    });
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let seen = seen.lock().unwrap();
    eprintln!("statuses through the outage: {:?}", seen.statuses);
    assert!(
        seen.statuses.keys().all(|s| *s == 201 || *s == 503),
        "writes answered other than 201 or 503: {:?}",
        seen.statuses
    );
    check_log(&log, nodes[0].addr, &seen);
    drop(nodes);
    log.fsck();
}

/// The instances whose `/metrics` say they lead `task`.
fn leaders(log: &Log, task: &str) -> Vec<usize> {
    let addrs = log.addrs.lock().unwrap().clone();
    addrs
        .iter()
        .enumerate()
        .filter_map(|(i, a)| {
            let (status, body) = http((*a)?, "GET", "/metrics", b"").ok()?;
            let text = String::from_utf8_lossy(&body);
            let series = format!("sealtrail_leader{{task=\"{task}\"}} 1");
            (status == 200 && text.lines().any(|l| l == series)).then_some(i)
        })
        .collect()
}

/// Indices in the forwarding files, with how often each was sent.
fn forwarded(dir: &Path) -> BTreeMap<u64, u64> {
    let mut out = BTreeMap::new();
    for i in 0..INSTANCES {
        let text = std::fs::read_to_string(dir.join(format!("fwd{i}.jsonl"))).unwrap_or_default();
        for line in text.lines() {
            if let Some(index) = json(line.as_bytes())["index"].as_u64() {
                *out.entry(index).or_default() += 1;
            }
        }
    }
    out
}

#[test]
fn another_instance_takes_over_forwarding_and_witnessing_when_the_leader_dies() {
    let url = pg_cluster::shared().new_database();
    let probe = tempfile::tempdir().unwrap();
    // A witness nobody runs: witnessing is on, and led, though nothing gets cosigned.
    let witness = sealtrail_spec::cosignature::Cosigner::from_seed("w.example", [1; 32])
        .unwrap()
        .verifier()
        .to_vkey();
    let extra = format!(
        "[[forward]]\nname = \"file\"\nkind = \"file\"\npath = \"{}/fwd{{i}}.jsonl\"\n\
         batch_entries = 50\n\n[witnessing]\ninterval_ms = 200\n\n\
         [[witnessing.witnesses]]\nurl = \"http://127.0.0.1:9/\"\nvkey = \"{witness}\"\n",
        probe.path().display()
    );
    let log = Log::new(&url, &extra);
    let mut nodes: Vec<Option<Node>> = (0..INSTANCES).map(|i| Some(log.start(i))).collect();
    let append = |n: u64| {
        let counter = AtomicU64::new(0);
        for k in 0..n {
            let addr = log.addr(k).unwrap();
            let (status, body) = http(addr, "POST", "/v1/entries", br#"{"tag":"f"}"#).unwrap();
            assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
            counter.fetch_add(1, Ordering::Relaxed);
        }
    };
    append(100);
    let mut leader = Vec::new();
    wait_until("one instance leads forwarding", || {
        leader = leaders(&log, "forwarding");
        leader.len() == 1
    });
    let first = leader[0];
    wait_until("forwarded before the kill", || {
        forwarded(probe.path()).len() >= 100
    });
    wait_until("one instance leads witnessing", || {
        leaders(&log, "witnessing").len() == 1
    });
    let witnessing = leaders(&log, "witnessing")[0];
    eprintln!("forwarding led by {first}, witnessing by {witnessing}");

    // Kill the forwarding leader, and the witnessing leader if another.
    let killed: BTreeSet<usize> = [first, witnessing].into_iter().collect();
    let killed_at = Instant::now();
    for &i in &killed {
        log.addrs.lock().unwrap()[i] = None;
        drop(nodes[i].take());
    }
    append(100);
    let mut next = Vec::new();
    wait_until("another instance leads forwarding", || {
        next = leaders(&log, "forwarding");
        next.len() == 1
    });
    let took = killed_at.elapsed();
    wait_until("another instance leads witnessing", || {
        leaders(&log, "witnessing").len() == 1
    });
    assert!(!killed.contains(&next[0]));
    eprintln!(
        "forwarding taken over by {} {took:?} after the kill; witnessing by {:?}",
        next[0],
        leaders(&log, "witnessing")
    );
    let size = final_checkpoint(&log, log.addr(0).unwrap()).0;
    wait_until("every entry forwarded at least once", || {
        let f = forwarded(probe.path());
        (0..size).all(|i| f.contains_key(&i))
    });
    let f = forwarded(probe.path());
    let repeats = f.values().filter(|n| **n > 1).count();
    eprintln!("{size} entries forwarded, {repeats} sent more than once");
    drop(nodes);
    log.fsck();
}

/// `sealtrail migrate` moves a served redb log into PostgreSQL, where instances serve it as the
/// same log (same checkpoint, consistent proofs as it grows), and back into a new data directory
/// that fsck passes.
#[test]
fn the_cli_moves_a_log_into_postgres_and_back() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("redb");
    let key = data.join("log.key");
    // A log on redb, created by the server itself.
    let mut child = Command::new(bin())
        .args([
            "serve",
            "--origin",
            ORIGIN,
            "--listen",
            "127.0.0.1:0",
            "--log",
            "warn",
        ])
        .arg("--data-dir")
        .arg(&data)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut vkey = String::new();
    let addr: SocketAddr = loop {
        let line = lines.next().expect("exited before listening").unwrap();
        if let Some(k) = line.strip_prefix("sealtrail: verifier key ") {
            vkey = k.to_owned();
        }
        if let Some(a) = line.strip_prefix("sealtrail: listening on http://") {
            break a.parse().unwrap();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    for n in 0..300 {
        let (status, _) = http(
            addr,
            "POST",
            "/v1/entries",
            format!("{{\"tag\":\"m{n}\"}}").as_bytes(),
        )
        .unwrap();
        assert_eq!(status, 201);
    }
    let (_, before) = http(addr, "GET", "/checkpoint", b"").unwrap();
    assert!(
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    assert!(child.wait().unwrap().success());

    let url = pg_cluster::shared().new_database();
    let out = Command::new(bin())
        .arg("migrate")
        .arg("--from-data-dir")
        .arg(&data)
        .args(["--to", &url])
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        printed.contains("migrated 300 entries") && printed.contains("verified"),
        "{printed}"
    );
    // Into the same database again: refused.
    let again = Command::new(bin())
        .arg("migrate")
        .arg("--from-data-dir")
        .arg(&data)
        .args(["--to", &url])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds a log"));

    // Served from PostgreSQL: the same checkpoint, and it goes on consistently.
    let mut log = Log::new(&url, "");
    std::fs::copy(&key, &log.key).unwrap();
    log.vkey = vkey;
    let node = log.start(0);
    let (_, served) = http(node.addr, "GET", "/checkpoint", b"").unwrap();
    assert_eq!(
        served, before,
        "the migrated log serves the same checkpoint"
    );
    let (status, _) = http(node.addr, "POST", "/v1/entries", br#"{"tag":"after"}"#).unwrap();
    assert_eq!(status, 201);
    let v = log.verifier();
    let old = sealtrail_spec::checkpoint::open(&before, ORIGIN, &[&v]).unwrap();
    let (size, root) = final_checkpoint(&log, node.addr);
    assert_eq!(size, 301);
    let (status, body) = http(
        node.addr,
        "GET",
        "/v1/proof/consistency?from=300&to=301",
        b"",
    )
    .unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let proof: Vec<Hash> = json(&body)["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| Hash::from_base64(h.as_str().unwrap()).unwrap())
        .collect();
    sealtrail_spec::merkle::verify_consistency(300, 301, &old.checkpoint().root(), &root, &proof)
        .expect("the grown log is consistent with the migrated one");
    drop(node);

    let back = dir.path().join("back");
    let out = Command::new(bin())
        .arg("migrate")
        .args(["--from", &url])
        .arg("--to-data-dir")
        .arg(&back)
        .arg("--key-file")
        .arg(&key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fsck = Command::new(bin())
        .arg("fsck")
        .arg("--data-dir")
        .arg(&back)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&fsck.stdout);
    assert!(
        fsck.status.success() && report.contains("fsck: OK"),
        "{report}"
    );
    assert!(report.contains("301"), "{report}");
}
