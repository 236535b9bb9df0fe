//! Crash test with the real `sealtrail` binary: concurrent writers on 127.0.0.1, SIGKILL at random
//! moments, restart, then check that every acknowledged entry is at its index with its leaf hash,
//! that no index was reused, that every checkpoint seen before a kill is consistent with the new
//! one, and finally that `sealtrail fsck` passes. Runs on both storage engines.
//!
//! Bounded: a fixed number of kills per engine, each round at most a few seconds of load, and a
//! guard timeout on every wait. The kill moments come from a seeded generator; the seed is printed
//! so a failure can be replayed with `SEALTRAIL_CRASH_SEED`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sealtrail_spec::Hash;
use sealtrail_spec::note::Ed25519Verifier;
use sha2::Digest as _;

const ORIGIN: &str = "crash.sealtrail.example/log";
const KILLS_PER_ENGINE: usize = 12;
const WRITERS: usize = 4;
const GUARD: Duration = Duration::from_secs(60);

use common::Rng;

struct Http {
    status: u16,
    body: Vec<u8>,
}

/// A minimal blocking HTTP/1.1 client (one request per connection).
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    ct: &str,
    body: &[u8],
) -> std::io::Result<Http> {
    http_as(addr, method, path, ct, body, "")
}

/// [`http`] with extra header lines (each ending in CRLF).
fn http_as(
    addr: SocketAddr,
    method: &str,
    path: &str,
    ct: &str,
    body: &[u8],
    headers: &str,
) -> std::io::Result<Http> {
    let (status, body) = common::raw_http(addr, method, path, ct, headers, body)?;
    Ok(Http { status, body })
}

fn json(r: &Http) -> serde_json::Value {
    serde_json::from_slice(&r.body)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&r.body)))
}

struct Node {
    child: Child,
    addr: SocketAddr,
    vkey: String,
}

/// A failed test never leaves its server running (it would hold the test's output open).
impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_sealtrail")
}

fn start(dir: &std::path::Path, engine: &str) -> Node {
    start_with(dir, engine, &[])
}

fn start_with(dir: &std::path::Path, engine: &str, extra: &[&std::ffi::OsStr]) -> Node {
    let mut child = Command::new(bin())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--store",
            engine,
            "--origin",
            ORIGIN,
        ])
        .arg("--data-dir")
        .arg(dir)
        .args(extra)
        .args(["--log-format", "text", "--log", "warn"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn sealtrail");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let (mut vkey, mut addr) = (None, None);
    let deadline = Instant::now() + GUARD;
    while addr.is_none() {
        assert!(Instant::now() < deadline, "server did not start");
        let line = lines
            .next()
            .expect("server exited before listening")
            .unwrap();
        if let Some(k) = line.strip_prefix("sealtrail: verifier key ") {
            vkey = Some(k.to_owned());
        }
        if let Some(a) = line.strip_prefix("sealtrail: listening on http://") {
            addr = Some(a.parse().unwrap());
        }
    }
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Node {
        child,
        addr: addr.unwrap(),
        vkey: vkey.expect("verifier key printed"),
    }
}

/// (size, root) of a verified checkpoint.
fn checkpoint(addr: SocketAddr, vkey: &str) -> Option<(u64, Hash)> {
    let r = http(addr, "GET", "/checkpoint", "text/plain", b"").ok()?;
    let v = Ed25519Verifier::from_vkey(vkey).unwrap();
    let c = sealtrail_spec::checkpoint::open(&r.body, ORIGIN, &[&v]).expect("checkpoint verifies");
    Some((c.checkpoint().size(), c.checkpoint().root()))
}

#[derive(Default)]
struct Seen {
    /// index -> leaf hash of every acknowledged entry.
    acked: BTreeMap<u64, Hash>,
    /// Every checkpoint observed while the server ran.
    checkpoints: Vec<(u64, Hash)>,
}

fn record_ack(seen: &Mutex<Seen>, index: u64, leaf: Hash) {
    let mut s = seen.lock().unwrap();
    if let Some(prev) = s.acked.insert(index, leaf) {
        assert_eq!(
            prev, leaf,
            "index {index} acknowledged for two different entries"
        );
    }
}

fn writer(
    addr: SocketAddr,
    id: usize,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Seen>>,
    round: usize,
) {
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let r = if n.is_multiple_of(5) {
            let items: Vec<String> = (0..10)
                .map(|k| format!("{{\"w\":{id},\"r\":{round},\"n\":{n},\"k\":{k}}}"))
                .collect();
            http(
                addr,
                "POST",
                "/v1/entries/batch",
                "application/json",
                format!("[{}]", items.join(",")).as_bytes(),
            )
        } else {
            http(
                addr,
                "POST",
                "/v1/entries",
                "application/json",
                format!("{{\"w\":{id},\"r\":{round},\"n\":{n}}}").as_bytes(),
            )
        };
        let Ok(r) = r else { return }; // the server was killed
        if r.status != 201 {
            return;
        }
        let j = json(&r);
        if let Some(first) = j["first_index"].as_u64() {
            for (k, h) in j["leaf_hashes"].as_array().unwrap().iter().enumerate() {
                record_ack(
                    &seen,
                    first + k as u64,
                    Hash::from_hex(h.as_str().unwrap()).unwrap(),
                );
            }
        } else {
            let leaf = Hash::from_hex(j["leaf_hash"].as_str().unwrap()).unwrap();
            record_ack(&seen, j["index"].as_u64().unwrap(), leaf);
        }
    }
}

/// Calls `f` on every entry below `end`, as `GET /v1/entries` pages of 1000 answer them.
fn for_each_entry(node: &Node, end: u64, mut f: impl FnMut(&serde_json::Value)) {
    let mut start = 0;
    while start < end {
        let r = http(
            node.addr,
            "GET",
            &format!("/v1/entries?start={start}&limit=1000"),
            "text/plain",
            b"",
        )
        .unwrap();
        assert_eq!(r.status, 200);
        json(&r)["entries"]
            .as_array()
            .unwrap()
            .iter()
            .for_each(&mut f);
        start += 1000;
    }
}

/// After a restart: everything acknowledged is there, every old checkpoint is consistent.
fn verify(node: &Node, seen: &Seen) {
    let (size, root) = checkpoint(node.addr, &node.vkey).expect("checkpoint after restart");
    let max_acked = seen.acked.keys().next_back().map_or(0, |i| i + 1);
    assert!(
        size >= max_acked,
        "tree size {size} lost acknowledged entries up to {max_acked}"
    );
    for_each_entry(node, max_acked, |e| {
        let i = e["index"].as_u64().unwrap();
        if let Some(want) = seen.acked.get(&i) {
            assert_eq!(
                e["leaf_hash"].as_str().unwrap(),
                want.to_hex(),
                "entry {i} changed"
            );
        }
    });
    for &(m, old_root) in &seen.checkpoints {
        assert!(
            m <= size,
            "checkpoint of size {m} was published but the tree is now {size}"
        );
        let r = http(
            node.addr,
            "GET",
            &format!("/v1/proof/consistency?from={m}&to={size}"),
            "text/plain",
            b"",
        )
        .unwrap();
        assert_eq!(r.status, 200);
        let proof: Vec<Hash> = json(&r)["proof"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| Hash::from_base64(h.as_str().unwrap()).unwrap())
            .collect();
        sealtrail_spec::merkle::verify_consistency(m, size, &old_root, &root, &proof)
            .unwrap_or_else(|e| panic!("checkpoint {m} inconsistent with {size}: {e}"));
    }
}

fn crash_loop(engine: &str) {
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
    eprintln!("crash test ({engine}): SEALTRAIL_CRASH_SEED={seed}");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let mut node = start(dir.path(), engine);
    for round in 0..KILLS_PER_ENGINE {
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads: Vec<_> = (0..WRITERS)
            .map(|id| {
                let (stop, seen, addr) = (stop.clone(), seen.clone(), node.addr);
                std::thread::spawn(move || writer(addr, id, stop, seen, round))
            })
            .collect();
        {
            let (stop, seen, addr, vkey) =
                (stop.clone(), seen.clone(), node.addr, node.vkey.clone());
            threads.push(std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match checkpoint(addr, &vkey) {
                        Some(c) => seen.lock().unwrap().checkpoints.push(c),
                        None => return,
                    }
                }
            }));
        }
        // Let the load run for a random moment, then kill without warning.
        std::thread::sleep(Duration::from_millis(20 + rng.below(400)));
        node.child.kill().unwrap(); // SIGKILL
        node.child.wait().unwrap();
        stop.store(true, Ordering::Relaxed);
        for t in threads {
            t.join().unwrap();
        }
        node = start(dir.path(), engine);
        verify(&node, &seen.lock().unwrap());
        let s = seen.lock().unwrap();
        eprintln!(
            "crash test ({engine}): kill {}: {} acknowledged, {} checkpoints checked",
            round + 1,
            s.acked.len(),
            s.checkpoints.len()
        );
    }
    assert!(
        !seen.lock().unwrap().acked.is_empty(),
        "no entry was ever acknowledged"
    );
    stop_and_fsck(node, dir.path(), engine);
}

/// Clean stop with SIGTERM (exit 0), then fsck the data directory.
fn stop_and_fsck(mut node: Node, dir: &std::path::Path, engine: &str) {
    unsafe_free_sigterm(&node.child);
    let status = node.child.wait().unwrap();
    assert!(status.success(), "graceful shutdown exit status {status}");
    let out = Command::new(bin())
        .args(["fsck", "--store", engine, "--origin", ORIGIN])
        .arg("--data-dir")
        .arg(dir)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "fsck failed:\n{report}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(report.contains("fsck: OK"), "{report}");
}

/// Sends SIGTERM via the `kill` command (the crate forbids unsafe code, so no libc call here).
fn unsafe_free_sigterm(child: &Child) {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -TERM failed");
}

// ---- erasure ----

const ADMIN_TOKEN: &str = "stk_crash-test-admin-token-000000000000000000000";
const ERASE_GROUPS: u64 = 6;
const ENTRIES_PER_PRINCIPAL: u64 = 5000;

/// The erasure entries' claims and the tombstones must agree: every record an erasure entry
/// names is erased by it, and every erased record is named by its erasure entry. Returns how
/// many records are erased.
fn check_erasures(node: &Node) -> u64 {
    let (size, _) = checkpoint(node.addr, &node.vkey).expect("checkpoint");
    let mut claimed: BTreeMap<u64, u64> = BTreeMap::new();
    let mut erased: BTreeMap<u64, u64> = BTreeMap::new();
    for_each_entry(node, size, |e| {
        let i = e["index"].as_u64().unwrap();
        if let Some(by) = e["erased"]["erasure_index"].as_u64() {
            erased.insert(i, by);
        }
        if e["event_type"] == "sealtrail.erasure" {
            let payload = &e["record"]["payload"];
            for item in payload["erasure"]["indices"].as_array().unwrap() {
                let (a, b) = match item.as_u64() {
                    Some(n) => (n, n),
                    None => (item[0].as_u64().unwrap(), item[1].as_u64().unwrap()),
                };
                for k in a..=b {
                    assert!(claimed.insert(k, i).is_none(), "{k} erased twice");
                }
            }
        }
    });
    assert_eq!(
        claimed, erased,
        "erasure entries and erased records disagree (an erasure claimed but not done, or done \
         without an entry)"
    );
    erased.len() as u64
}

/// SIGKILL while erasures run: after each restart, erasure entries and erased records agree
/// exactly, and at the end every erasure finishes when repeated and fsck passes.
fn erasure_crash_loop(engine: &str) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sealtrail.toml");
    let sha: String = sha2::Sha256::digest(ADMIN_TOKEN.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    std::fs::write(
        &config,
        format!("[[auth.tokens]]\nname = \"ops\"\nrole = \"admin\"\nsha256 = \"{sha}\"\n"),
    )
    .unwrap();
    let data = dir.path().join("data");
    let args = [std::ffi::OsStr::new("--config"), config.as_os_str()];
    let mut node = start_with(&data, engine, &args);
    // Anonymous entries in groups told apart by event type; each erasure selects one group.
    for p in 0..ERASE_GROUPS {
        for chunk in 0..ENTRIES_PER_PRINCIPAL / 1000 {
            let items: Vec<String> = (0..1000)
                .map(|k| format!("{{\"p\":{p},\"c\":{chunk},\"k\":{k}}}"))
                .collect();
            let r = http_as(
                node.addr,
                "POST",
                "/v1/entries/batch",
                "application/json",
                format!("[{}]", items.join(",")).as_bytes(),
                &format!("X-Event-Type: kind{p}\r\n"),
            )
            .unwrap();
            assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
        }
    }
    let mut rng = Rng(0x5eed_0000 ^ engine.len() as u64);
    let admin = format!("Authorization: Bearer {ADMIN_TOKEN}\r\n");
    for p in 0..ERASE_GROUPS {
        let addr = node.addr;
        let (h, body) = (
            admin.clone(),
            format!("{{\"event_type\":\"kind{p}\",\"reason\":\"crash test\"}}"),
        );
        let eraser = std::thread::spawn(move || {
            http_as(
                addr,
                "POST",
                "/v1/admin/erasures",
                "application/json",
                body.as_bytes(),
                &h,
            )
        });
        std::thread::sleep(Duration::from_millis(rng.below(600)));
        node.child.kill().unwrap(); // SIGKILL, mid-erasure or not
        node.child.wait().unwrap();
        let _ = eraser.join().unwrap();
        node = start_with(&data, engine, &args);
        let n = check_erasures(&node);
        eprintln!(
            "erasure crash test ({engine}): kill {}: {n} records erased",
            p + 1
        );
    }
    // Repeating each erasure finishes it.
    for p in 0..ERASE_GROUPS {
        let r = http_as(
            node.addr,
            "POST",
            "/v1/admin/erasures",
            "application/json",
            format!("{{\"event_type\":\"kind{p}\",\"reason\":\"finish\"}}").as_bytes(),
            &admin,
        )
        .unwrap();
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    }
    assert_eq!(check_erasures(&node), ERASE_GROUPS * ENTRIES_PER_PRINCIPAL);
    stop_and_fsck(node, &data, engine);
}

#[test]
fn erasure_crash_redb() {
    erasure_crash_loop("redb");
}

#[test]
fn erasure_crash_sled() {
    erasure_crash_loop("sled");
}

#[test]
fn crash_redb() {
    crash_loop("redb");
}

#[test]
fn crash_sled() {
    crash_loop("sled");
}
