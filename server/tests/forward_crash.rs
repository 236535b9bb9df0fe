//! Forwarding survives crashes: the real `sealtrail` binary with a JSONL file sink is killed with
//! SIGKILL at seeded random moments while writers append and the sink forwards; after the last
//! restart every entry of the log reaches the file at least once, with the leaf hash its append
//! was acknowledged with. Bounded: a fixed number of kills, a guard timeout on every wait.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ORIGIN: &str = "fwdcrash.sealtrail.example/log";
const KILLS: u64 = 6;
const GUARD: Duration = Duration::from_secs(60);

struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

/// One HTTP/1.1 request on its own connection: (status, body).
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &[u8],
) -> std::io::Result<(u16, Vec<u8>)> {
    common::raw_http(addr, method, path, "application/json", "", body)
}

/// The server process; killed if a failed test drops it (it would hold the test's output open).
struct Node(Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(dir: &Path) -> (Node, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sealtrail"))
        .args(["serve", "--listen", "127.0.0.1:0", "--origin", ORIGIN])
        .arg("--config")
        .arg(dir.join("sealtrail.toml"))
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(["--log-format", "text", "--log", "error"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn sealtrail");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + GUARD;
    let addr = loop {
        assert!(Instant::now() < deadline, "server did not start");
        let line = lines.next().expect("server exited").unwrap();
        if let Some(a) = line.strip_prefix("sealtrail: listening on http://") {
            break a.parse().unwrap();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (Node(child), addr)
}

/// Forwarded lines in the sink file: index → leaf hashes of every copy.
fn forwarded(path: &Path) -> BTreeMap<u64, Vec<String>> {
    let mut out: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    let text = std::fs::read_to_string(path).unwrap_or_default();
    for line in text.lines() {
        // A SIGKILL may cut the last line short; a later replay writes it whole.
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let i = v["index"].as_u64().unwrap();
        out.entry(i)
            .or_default()
            .push(v["leaf_hash"].as_str().unwrap().to_owned());
    }
    out
}

#[test]
fn every_entry_reaches_the_sink_across_sigkills() {
    let seed = std::env::var("SEALTRAIL_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0xF02D_CA5E);
    eprintln!("seed {seed}");
    let mut rng = Rng(seed);
    let tmp = tempfile::tempdir().unwrap();
    let sink = tmp.path().join("forwarded.jsonl");
    std::fs::write(
        tmp.path().join("sealtrail.toml"),
        format!(
            "[[forward]]\nname = \"file\"\nkind = \"file\"\npath = \"{}\"\nbatch_entries = 7\n\
             retry_initial_ms = 10\nretry_max_ms = 100\n",
            sink.display()
        ),
    )
    .unwrap();
    let mut acked: BTreeMap<u64, String> = BTreeMap::new();
    for round in 0..KILLS {
        let (mut child, addr) = start(tmp.path());
        let requests = rng.below(40) + 1;
        for n in 0..requests {
            let items: Vec<String> = (0..rng.below(20) + 1)
                .map(|k| format!("{{\"round\":{round},\"n\":{n},\"k\":{k}}}"))
                .collect();
            let (status, body) = http(
                addr,
                "POST",
                "/v1/entries/batch",
                format!("[{}]", items.join(",")).as_bytes(),
            )
            .unwrap();
            assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
            let j: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let first = j["first_index"].as_u64().unwrap();
            for (k, h) in j["leaf_hashes"].as_array().unwrap().iter().enumerate() {
                acked.insert(first + k as u64, h.as_str().unwrap().to_owned());
            }
        }
        // Kill while the sink is most likely still forwarding the last requests.
        child.0.kill().unwrap();
        child.0.wait().unwrap();
    }
    let total = acked.len() as u64;
    assert_eq!(
        acked.keys().next_back(),
        Some(&(total - 1)),
        "indices are dense"
    );
    let (mut child, _addr) = start(tmp.path());
    let deadline = Instant::now() + GUARD;
    loop {
        let got = forwarded(&sink);
        if (0..total).all(|i| got.contains_key(&i)) {
            for (i, want) in &acked {
                for h in &got[i] {
                    assert_eq!(h, want, "entry {i} forwarded with another leaf hash");
                }
            }
            let copies: usize = got.values().map(Vec::len).sum();
            eprintln!("{total} entries, {copies} lines forwarded");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the sink is missing {:?}",
            (0..total)
                .filter(|i| !got.contains_key(i))
                .take(10)
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    // Lines cut short by a kill were dropped at restart, never glued to the next line. Only
    // the last line may be partial (the final kill above, with no restart after it).
    let text = std::fs::read_to_string(&sink).unwrap();
    let complete = text.rsplit_once('\n').map_or("", |(head, _)| head);
    for line in complete.lines() {
        assert!(
            serde_json::from_str::<serde_json::Value>(line).is_ok(),
            "a corrupt line in the sink: {line}"
        );
    }
}
