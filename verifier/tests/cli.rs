//! The `sealtrail-verify` binary against static fixtures: every command's exit codes (0 verified,
//! 1 failed, 2 usage or I/O) and, for each kind of tampering, a message naming what failed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;

fn vkey_args(k: &str) -> Vec<String> {
    vec!["--log-key".into(), k.into()]
}

/// `rest[0]` is the command; the key flags follow it.
fn args<'a>(v: &'a [String], rest: &[&'a str]) -> Vec<&'a str> {
    let mut out = vec![rest[0]];
    out.extend(v.iter().map(String::as_str));
    out.extend(rest[1..].iter().copied());
    out
}

// --- checkpoint ---

#[test]
fn checkpoint_verifies_with_and_without_witness_quorum() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::new("a", 10);
    let (w1, w2) = (witness(1), witness(2));
    let f = write(
        dir.path(),
        "cp",
        &log.checkpoint(10, &[w1.clone(), w2.clone()]),
    );
    let k = vkey_args(&log_vkey());
    run(&args(&k, &["checkpoint", s(&f)])).ok();
    let (v1, v2) = (w1.verifier().to_vkey(), w2.verifier().to_vkey());
    let out = run(&args(
        &k,
        &[
            "checkpoint",
            "--json",
            "--witness-key",
            &v1,
            "--witness-key",
            &v2,
            s(&f),
        ],
    ));
    out.ok();
    let j: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(j["verified"], true);
    assert_eq!(j["checkpoint"]["size"], 10);
    assert_eq!(j["checkpoint"]["witnesses"].as_array().unwrap().len(), 2);
    let policy = format!(
        "log {}\nwitness w1 {v1}\nwitness w2 {v2}\ngroup g 2 w1 w2\nquorum g\n",
        log_vkey()
    );
    let p = write(dir.path(), "policy", policy.as_bytes());
    run(&args(&k, &["checkpoint", "--policy", s(&p), s(&f)])).ok();
}

#[test]
fn checkpoint_missing_cosignature_fails_the_quorum() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::new("a", 10);
    let f = write(dir.path(), "cp", &log.checkpoint(10, &[witness(1)]));
    let (v1, v2) = (
        witness(1).verifier().to_vkey(),
        witness(2).verifier().to_vkey(),
    );
    let k = vkey_args(&log_vkey());
    let out = run(&args(
        &k,
        &[
            "checkpoint",
            "--witness-key",
            &v1,
            "--witness-key",
            &v2,
            "--quorum",
            "2",
            s(&f),
        ],
    ));
    out.failed_naming("quorum");
    out.failed_naming("witness1.example");
    run(&args(
        &k,
        &[
            "checkpoint",
            "--witness-key",
            &v1,
            "--witness-key",
            &v2,
            "--quorum",
            "1",
            s(&f),
        ],
    ))
    .ok();
}

#[test]
fn checkpoint_tampering_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::new("a", 10);
    let good = log.checkpoint(10, &[witness(1)]);
    let k = vkey_args(&log_vkey());
    // A flipped bit in the log's signature.
    let f = write(dir.path(), "sig", &flip_signature(&good, 0));
    run(&args(&k, &["checkpoint", s(&f)]))
        .failed_naming("log signature by verify.test.example/log");
    // A flipped bit in the witness's cosignature.
    let f = write(dir.path(), "cosig", &flip_signature(&good, 1));
    let v1 = witness(1).verifier().to_vkey();
    run(&args(&k, &["checkpoint", "--witness-key", &v1, s(&f)])).failed_naming("witness1.example");
    // An edited size line.
    let text = String::from_utf8(good.clone())
        .unwrap()
        .replacen("\n10\n", "\n11\n", 1);
    let f = write(dir.path(), "size", text.as_bytes());
    run(&args(&k, &["checkpoint", s(&f)])).failed_naming("does not verify");
    // The right key but another origin expected.
    let f = write(dir.path(), "good", &good);
    run(&args(
        &k,
        &["checkpoint", "--origin", "other.example/log", s(&f)],
    ))
    .failed_naming("origin");
    // Another key with the same name.
    let other = sealtrail_spec::note::Ed25519Signer::from_seed(ORIGIN, [9; 32]).unwrap();
    let k2 = vkey_args(&other.verifier().to_vkey());
    run(&args(&k2, &["checkpoint", s(&f)])).failed_naming("no signature by the log key");
}

#[test]
fn checkpoint_usage_and_io_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "cp", &Log::new("a", 3).checkpoint(3, &[]));
    assert_eq!(
        run(&["checkpoint", "--log-key", "not-a-key", s(&f)]).code,
        2
    );
    let k = vkey_args(&log_vkey());
    assert_eq!(
        run(&args(&k, &["checkpoint", s(&dir.path().join("absent"))])).code,
        2
    );
    assert_eq!(run(&args(&k, &["checkpoint"])).code, 2);
    let out = run(&args(
        &k,
        &["checkpoint", "--json", s(&dir.path().join("absent"))],
    ));
    assert_eq!(out.code, 2);
    let j: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(j["verified"], false);
    assert_eq!(j["category"], "io");
}

// --- proof ---

#[test]
fn proof_verifies_and_prints_the_envelope() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::new("a", 300);
    let p = write(dir.path(), "p", &log.proof(257, 300, &[witness(1)]));
    let e = write(dir.path(), "e", &log.entries[257]);
    let k = vkey_args(&log_vkey());
    let out = run(&args(&k, &["proof", "--entry", s(&e), s(&p)]));
    out.ok();
    // The leaf's public fields; the principal and payload are in the record, not the leaf.
    let commitment = sealtrail_spec::Hash(log.envelopes[257].commitment).to_hex();
    for line in [
        "time_ms: 1700000000257 (2023-11-14T22:13:20.257Z)",
        "content_type: application/json",
        "event_type: test.event",
        "payload_size: 23 bytes",
        &format!("commitment: {commitment}"),
    ] {
        assert!(out.stdout.contains(line), "{line}: {}", out.stdout);
    }
    assert!(!out.stdout.contains("tester"), "{}", out.stdout);
    let v1 = witness(1).verifier().to_vkey();
    let hex = log.leaves[257].to_hex();
    let out = run(&args(
        &k,
        &[
            "proof",
            "--json",
            "--witness-key",
            &v1,
            "--leaf-hash",
            &hex,
            s(&p),
        ],
    ));
    out.ok();
    let j: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(j["index"], 257);
    let out = run(&args(&k, &["proof", "--json", "--entry", s(&e), s(&p)]));
    let j: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(j["envelope"]["payload_size"], 23);
    assert_eq!(j["envelope"]["event_type"], "test.event");
    assert_eq!(j["envelope"]["commitment"], commitment);
    assert_eq!(j["envelope"]["principal"], serde_json::Value::Null);
    // Without --record, no record fields.
    assert_eq!(j.get("record_status"), None);
}

#[test]
fn proof_tampering_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::new("a", 300);
    let good = log.proof(257, 300, &[witness(1)]);
    let k = vkey_args(&log_vkey());
    let e = write(dir.path(), "e", &log.entries[257]);
    // Another entry's bytes.
    let wrong = write(dir.path(), "wrong", &log.entries[256]);
    let p = write(dir.path(), "p", &good);
    run(&args(&k, &["proof", "--entry", s(&wrong), s(&p)])).failed_naming("index 257");
    // A flipped bit in a proof line: decode, flip, re-encode so it still parses.
    let text = String::from_utf8(good.clone()).unwrap();
    let line = text.lines().nth(2).unwrap();
    let mut h = sealtrail_spec::Hash::from_base64(line).unwrap();
    h.0[0] ^= 1;
    let p = write(
        dir.path(),
        "line",
        text.replacen(line, &h.to_base64(), 1).as_bytes(),
    );
    run(&args(&k, &["proof", "--entry", s(&e), s(&p)])).failed_naming("proof line");
    // A flipped bit in the base64 text of a proof line.
    let p = write(dir.path(), "raw", &good);
    flip(&p, 30);
    assert_eq!(run(&args(&k, &["proof", "--entry", s(&e), s(&p)])).code, 1);
    // A flipped bit in the checkpoint's signature.
    let (head, note) = text.split_once("\n\n").unwrap();
    let bad = format!(
        "{head}\n\n{}",
        String::from_utf8(flip_signature(note.as_bytes(), 0)).unwrap()
    );
    let p = write(dir.path(), "sig", bad.as_bytes());
    run(&args(&k, &["proof", "--entry", s(&e), s(&p)])).failed_naming("log signature");
    // Quorum not met: the proof's checkpoint carries one cosignature, two are required.
    let p = write(dir.path(), "good", &good);
    let (v1, v2) = (
        witness(1).verifier().to_vkey(),
        witness(2).verifier().to_vkey(),
    );
    run(&args(
        &k,
        &[
            "proof",
            "--entry",
            s(&e),
            "--witness-key",
            &v1,
            "--witness-key",
            &v2,
            s(&p),
        ],
    ))
    .failed_naming("quorum");
    let missing = run(&args(&k, &["proof", s(&p)]));
    assert_eq!(missing.code, 2);
    // Either flag answers the usage error, so it names both.
    for flag in ["--entry", "--leaf-hash"] {
        assert!(missing.stderr.contains(flag), "{}", missing.stderr);
    }
    let both = run(&args(
        &k,
        &[
            "proof",
            "--entry",
            s(&e),
            "--leaf-hash",
            &"00".repeat(32),
            s(&p),
        ],
    ));
    assert_eq!(both.code, 2, "{}", both.stderr);
}

// --- consistency ---

#[test]
fn consistency_from_tiles_and_from_a_proof_file() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::new("a", 70_000);
    let tiles = dir.path().join("log");
    log.write_tiles(&tiles, &[]);
    let old = write(dir.path(), "old", &log.checkpoint(1_000, &[]));
    let new = write(dir.path(), "new", &log.checkpoint(70_000, &[]));
    let k = vkey_args(&log_vkey());
    run(&args(
        &k,
        &["consistency", "--from", s(&tiles), s(&old), s(&new)],
    ))
    .ok();
    // NEW older than the log's tiles: its partial tiles are gone, read from the full ones.
    let mid = write(dir.path(), "mid", &log.checkpoint(1_500, &[]));
    assert!(!tiles.join("tile/0/005.p/220").exists());
    assert!(!tiles.join("tile/1/000.p/5").exists());
    run(&args(
        &k,
        &["consistency", "--from", s(&tiles), s(&old), s(&mid)],
    ))
    .ok();
    let proof = sealtrail_spec::merkle::consistency_proof(
        1_000,
        70_000,
        &mut sealtrail_spec::merkle::LeafHashes(&log.leaves),
    )
    .unwrap();
    let lines: String = proof.iter().map(|h| h.to_base64() + "\n").collect();
    let pf = write(dir.path(), "proof", lines.as_bytes());
    run(&args(
        &k,
        &["consistency", "--proof", s(&pf), s(&old), s(&new)],
    ))
    .ok();
    // A flipped bit in one proof line.
    let mut bad = proof.clone();
    bad[1].0[5] ^= 4;
    let lines: String = bad.iter().map(|h| h.to_base64() + "\n").collect();
    let pf = write(dir.path(), "bad", lines.as_bytes());
    run(&args(
        &k,
        &["consistency", "--proof", s(&pf), s(&old), s(&new)],
    ))
    .failed_naming("does not extend");
    // Rollback: NEW is older than OLD.
    run(&args(
        &k,
        &["consistency", "--from", s(&tiles), s(&new), s(&old)],
    ))
    .failed_naming("rollback");
    // Sizes differ and no proof source: usage.
    assert_eq!(run(&args(&k, &["consistency", s(&old), s(&new)])).code, 2);
}

#[test]
fn consistency_catches_a_fork_and_a_tampered_tile() {
    let dir = tempfile::tempdir().unwrap();
    let a = Log::new("a", 600);
    let b = Log::new("b", 600);
    let tiles_b = dir.path().join("b");
    b.write_tiles(&tiles_b, &[]);
    // One key, two histories: OLD from log a, NEW from log b.
    let old = write(dir.path(), "old", &a.checkpoint(300, &[]));
    let new = write(dir.path(), "new", &b.checkpoint(600, &[]));
    let k = vkey_args(&log_vkey());
    run(&args(
        &k,
        &["consistency", "--from", s(&tiles_b), s(&old), s(&new)],
    ))
    .failed_naming("fork");
    // Same history, a flipped bit in a level-0 tile the proof reads.
    let tiles_a = dir.path().join("a");
    a.write_tiles(&tiles_a, &[]);
    let new = write(dir.path(), "new_a", &a.checkpoint(600, &[]));
    run(&args(
        &k,
        &["consistency", "--from", s(&tiles_a), s(&old), s(&new)],
    ))
    .ok();
    flip(&tiles_a.join("tile/0/001"), 40);
    run(&args(
        &k,
        &[
            "consistency",
            "--json",
            "--from",
            s(&tiles_a),
            s(&old),
            s(&new),
        ],
    ))
    .failed_naming("does not extend");
}

// --- entry ---

#[test]
fn entry_from_a_tile_directory() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::new("a", 600);
    log.write_tiles(dir.path(), &[]);
    let k = vkey_args(&log_vkey());
    for i in ["0", "255", "256", "599"] {
        let out = run(&args(&k, &["entry", "--json", s(dir.path()), i]));
        out.ok();
        let j: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(j["index"].to_string(), i);
        let n: usize = i.parse().unwrap();
        let commitment = sealtrail_spec::Hash(log.envelopes[n].commitment).to_hex();
        assert_eq!(j["envelope"]["commitment"], commitment);
        assert_eq!(j["envelope"]["payload_size"], log.records[n].payload.len());
        // A tile directory serves no records.
        assert_eq!(j["record_status"], "not_checked");
        assert_eq!(j["record"], serde_json::Value::Null);
    }
    assert_eq!(run(&args(&k, &["entry", s(dir.path()), "600"])).code, 2);
    assert_eq!(
        run(&args(&k, &["entry", s(&dir.path().join("absent")), "1"])).code,
        2
    );
    // A flipped bit in the entry bundle (the last entry's commitment).
    flip(&dir.path().join("tile/entries/002.p/88"), -2);
    run(&args(&k, &["entry", s(dir.path()), "599"])).failed_naming("tile/entries/002.p/88");
    // A flipped bit in a level-0 tile on the path of entry 3.
    flip(&dir.path().join("tile/0/000"), 2 * 32);
    run(&args(&k, &["entry", s(dir.path()), "3"])).failed_naming("entry 3");
    // A wrong origin in the served checkpoint is refused.
    run(&args(
        &k,
        &["entry", "--origin", "x.example/log", s(dir.path()), "1"],
    ))
    .failed_naming("origin");
}

// --- audit ---

#[test]
fn audit_passes_on_an_untouched_log_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::new("a", 70_000);
    let tiles = dir.path().join("log");
    log.write_tiles(&tiles, &[witness(1)]);
    let k = vkey_args(&log_vkey());
    let state = dir.path().join("state.json");
    let out = run(&args(
        &k,
        &["audit", "--json", "--state", s(&state), s(&tiles)],
    ));
    out.ok();
    let j: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(j["audited_to"], 70_000);
    // Resume: the state covers the full bundles, only the last partial one is redone.
    let out = run(&args(
        &k,
        &["audit", "--json", "--state", s(&state), s(&tiles)],
    ));
    out.ok();
    let j: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(j["audited_from"], 70_000 - 70_000 % 256);
    // A grown log resumes from the state and checks the new part.
    let grown = Log::new("a", 70_300);
    let tiles2 = dir.path().join("grown");
    grown.write_tiles(&tiles2, &[]);
    run(&args(&k, &["audit", "--state", s(&state), s(&tiles2)])).ok();
    // The state is ahead of a rolled-back log.
    let small = Log::new("a", 500);
    let tiles3 = dir.path().join("small");
    small.write_tiles(&tiles3, &[]);
    run(&args(&k, &["audit", "--state", s(&state), s(&tiles3)])).failed_naming("rollback");
    let v1 = witness(1).verifier().to_vkey();
    run(&args(&k, &["audit", "--witness-key", &v1, s(&tiles)])).ok();
}

fn audit_fails_after(rel: &str, at: isize, naming: &str) {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::new("a", 70_000);
    log.write_tiles(dir.path(), &[]);
    flip(&dir.path().join(rel), at);
    let k = vkey_args(&log_vkey());
    run(&args(&k, &["audit", s(dir.path())])).failed_naming(naming);
}

#[test]
fn audit_names_a_flipped_bit_in_a_level_0_tile() {
    audit_fails_after("tile/0/001", 100, "tile/0/001: hash 3");
}

#[test]
fn audit_names_a_flipped_bit_in_a_level_1_tile() {
    audit_fails_after("tile/1/000", 32 * 7, "tile/1/000: hash 7");
    audit_fails_after("tile/1/001.p/17", 32 * 16, "tile/1/001.p/17: hash 16");
}

#[test]
fn audit_names_a_flipped_bit_in_an_entry_bundle() {
    audit_fails_after("tile/entries/005", -1, "tile/entries/005");
    // A flipped length prefix breaks the bundle's framing.
    audit_fails_after(
        "tile/entries/006",
        0,
        "tile/entries/006: malformed entry bundle",
    );
}

#[test]
fn audit_names_a_bad_checkpoint_and_a_missing_tile() {
    audit_fails_after("checkpoint", -3, "signature line 1");
    let dir = tempfile::tempdir().unwrap();
    Log::new("a", 600).write_tiles(dir.path(), &[]);
    std::fs::remove_file(dir.path().join("tile/0/001")).unwrap();
    let k = vkey_args(&log_vkey());
    run(&args(&k, &["audit", s(dir.path())])).failed_naming("tile/0/001 is missing");
}

// --- monitor ---

#[test]
fn monitor_advances_only_past_verified_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let state = dir.path().join("state");
    let k = vkey_args(&log_vkey());
    let poll = |extra: &[&str]| {
        let mut a = vec!["monitor", "--once", "--state", s(&state)];
        a.extend_from_slice(extra);
        a.push(s(&log));
        run(&args(&k, &a))
    };
    let trusted = || std::fs::read(&state).unwrap();
    let publish = |history: &str, size: u64| {
        let _ = std::fs::remove_dir_all(&log);
        Log::new(history, size).write_tiles(&log, &[]);
    };
    // First use: the verified checkpoint becomes the state; then the log grows.
    publish("a", 300);
    poll(&[]).ok();
    assert_eq!(trusted(), Log::new("a", 300).checkpoint(300, &[]));
    publish("a", 700);
    poll(&[]).ok();
    let good = Log::new("a", 700).checkpoint(700, &[]);
    assert_eq!(trusted(), good);
    // Rollback, fork and a bad signature: an alert, exit 1, and the state stays.
    publish("a", 600);
    let out = poll(&[]);
    out.failed_naming("rollback");
    let alert: serde_json::Value =
        serde_json::from_str(out.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(alert["alert"], "verification_failed");
    assert_eq!(trusted(), good);
    publish("b", 900);
    poll(&[]).failed_naming("fork");
    assert_eq!(trusted(), good);
    publish("a", 900);
    let cp = log.join("checkpoint");
    let bad = flip_signature(&std::fs::read(&cp).unwrap(), 0);
    std::fs::write(&cp, bad).unwrap();
    poll(&[]).failed_naming("log signature");
    assert_eq!(trusted(), good);
    // A quorum the checkpoint does not meet.
    publish("a", 900);
    let v1 = witness(1).verifier().to_vkey();
    poll(&["--witness-key", &v1]).failed_naming("quorum");
    assert_eq!(trusted(), good);
    // The honest, grown log is followed again.
    poll(&[]).ok();
    assert_eq!(trusted(), Log::new("a", 900).checkpoint(900, &[]));
}

/// Accepts one HTTP request on 127.0.0.1, answers 200, and hands back its body.
/// If no request came (a bug), `unblock` sends an empty one so the test fails instead of hanging.
fn one_shot_webhook() -> (String, std::thread::JoinHandle<String>) {
    use std::io::{BufRead as _, BufReader, Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/alert", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let mut stream = stream;
        stream
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .unwrap();
        String::from_utf8(body).unwrap()
    });
    (url, handle)
}

#[test]
fn monitor_posts_alerts_to_the_webhook() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let state = dir.path().join("state");
    std::fs::write(&state, Log::new("a", 300).checkpoint(300, &[])).unwrap();
    Log::new("b", 400).write_tiles(&log, &[]);
    let (url, hook) = one_shot_webhook();
    let k = vkey_args(&log_vkey());
    let out = run(&args(
        &k,
        &[
            "monitor",
            "--once",
            "--alert-webhook",
            &url,
            "--state",
            s(&state),
            s(&log),
        ],
    ));
    out.failed_naming("fork");
    // The CLI has exited, so its POST (if any) was answered and the listener is gone; if it is
    // still there, no alert came: unblock it with an empty request so the test fails.
    let addr = url.trim_start_matches("http://").trim_end_matches("/alert");
    if let Ok(mut unblock) = std::net::TcpStream::connect(addr) {
        let _ = std::io::Write::write_all(
            &mut unblock,
            b"POST / HTTP/1.1\r\ncontent-length: 0\r\n\r\n",
        );
    }
    let alert: serde_json::Value = serde_json::from_str(&hook.join().unwrap()).unwrap();
    assert_eq!(alert["origin"], ORIGIN);
    assert!(alert["message"].as_str().unwrap().contains("fork"));
}

// --- records (entry and proof: the private record checked against the verified leaf) ---

use serde_json::{Value, json};

fn j(out: &Out) -> Value {
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout))
}

/// A log of 300 entries written to a tile directory, served with `answer` for /v1/entries/{i}.
fn served(
    log: Log,
    answer: impl Fn(&Log, u64, Option<&str>) -> Option<(u16, Value)> + Send + Sync + 'static,
) -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    log.write_tiles(dir.path(), &[]);
    let server = serve_log(dir.path(), move |i, auth| answer(&log, i, auth));
    (dir, server)
}

#[test]
fn entry_over_http_verifies_the_record() {
    let (_dir, server) = served(Log::new("a", 300), |log, i, _| Some((200, log.answer(i))));
    let k = vkey_args(&log_vkey());
    let out = run(&args(&k, &["entry", &server.url, "257"]));
    out.ok();
    for line in [
        "entry 257 (leaf hash",
        "record (the log's answer): verified, its payload size and commitment match the leaf",
        "  principal: tester",
        "  payload: {\"history\":\"a\",\"n\":257}",
    ] {
        assert!(out.stdout.contains(line), "{line}: {}", out.stdout);
    }
    // The salt is never shown.
    let salt = sealtrail_spec::Hash(record("a", 257).salt).to_hex();
    assert!(!out.stdout.contains(&salt));
    let out = run(&args(&k, &["entry", "--json", &server.url, "0"]));
    out.ok();
    let j = j(&out);
    assert_eq!(j["verified"], true);
    assert_eq!(j["record_status"], "verified");
    assert_eq!(j["record"]["principal"], "tester");
    assert_eq!(
        j["record"]["payload"]["text"],
        "{\"history\":\"a\",\"n\":0}"
    );
    assert_eq!(j["record"].get("salt"), None);
    assert_eq!(j["erased"], Value::Null);
    // Without a token, no Authorization header was sent.
    assert!(server.requests().iter().all(|r| r.authorization.is_none()));
}

#[test]
fn entry_trusts_payload_base64_not_the_parsed_payload() {
    // The answer's parsed "payload" is a convenience; the bytes checked and shown are
    // payload_base64's.
    let (_dir, server) = served(Log::new("a", 10), |log, i, _| {
        let mut a = log.answer(i);
        a["record"]["payload"] = json!({"n": 999});
        Some((200, a))
    });
    let k = vkey_args(&log_vkey());
    let out = run(&args(&k, &["entry", "--json", &server.url, "3"]));
    out.ok();
    assert_eq!(
        j(&out)["record"]["payload"]["text"],
        "{\"history\":\"a\",\"n\":3}"
    );
}

#[test]
fn entry_shows_a_binary_payload_as_base64() {
    // A log whose entry 1 has a payload that is not UTF-8.
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::new("b", 2);
    let r = sealtrail_spec::record::PrivateRecord {
        salt: [9; 32],
        principal: "cert:device-17".into(),
        payload: vec![0xff, 0xfe, 0x00, 0x01],
    };
    log.envelopes[1] = envelope(&r, 1, "firmware.blob");
    log.entries[1] = log.envelopes[1].encode().unwrap();
    log.leaves[1] = sealtrail_spec::leaf_hash(&log.entries[1]);
    log.records[1] = r;
    log.write_tiles(dir.path(), &[]);
    let file = write(
        dir.path(),
        "answer.json",
        log.answer(1).to_string().as_bytes(),
    );
    let k = vkey_args(&log_vkey());
    let out = run(&args(
        &k,
        &["entry", "--record", s(&file), s(dir.path()), "1"],
    ));
    out.ok();
    assert!(
        out.stdout.contains("  payload: (binary, base64) //4AAQ=="),
        "{}",
        out.stdout
    );
    let out = run(&args(
        &k,
        &["entry", "--json", "--record", s(&file), s(dir.path()), "1"],
    ));
    assert_eq!(j(&out)["record"]["payload"]["base64"], "//4AAQ==");
}

/// Serves entry answers changed by `tamper`, and checks that `entry` fails (exit 1, also with
/// `--json`) with a message naming `what`.
fn tampered_fails(tamper: fn(&mut Value), what: &str) {
    let (_dir, server) = served(Log::new("a", 300), move |log, i, _| {
        let mut a = log.answer(i);
        tamper(&mut a);
        Some((200, a))
    });
    let k = vkey_args(&log_vkey());
    let out = run(&args(&k, &["entry", &server.url, "257"]));
    out.failed_naming(what);
    out.failed_naming("entry 257");
    let out = run(&args(&k, &["entry", "--json", &server.url, "257"]));
    assert_eq!(out.code, 1);
    let j = j(&out);
    assert_eq!(j["verified"], false);
    assert_eq!(j["category"], "verification_failed");
    assert!(j["error"].as_str().unwrap().contains(what), "{j}");
}

fn b64(p: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(p)
}

#[test]
fn entry_fails_a_tampered_principal_payload_or_salt() {
    const COMMITMENT: &str = "is not the leaf's commitment";
    // Another principal.
    tampered_fails(|a| a["record"]["principal"] = "mallory".into(), COMMITMENT);
    // Another payload of the same length: only the commitment catches it.
    tampered_fails(
        |a| a["record"]["payload_base64"] = b64(br#"{"history":"b","n":257}"#).into(),
        COMMITMENT,
    );
    // A longer payload: the payload size catches it first.
    tampered_fails(
        |a| a["record"]["payload_base64"] = b64(br#"{"history":"a","n":2570}"#).into(),
        "the payload is 24 bytes but the leaf's payload size is 23",
    );
    // One bit of the salt.
    tampered_fails(
        |a| {
            let salt = a["record"]["salt"].as_str().unwrap().to_owned();
            let flipped = if salt.starts_with('0') { "1" } else { "0" };
            a["record"]["salt"] = format!("{flipped}{}", &salt[1..]).into();
        },
        COMMITMENT,
    );
    // Another entry's record (of the same size).
    tampered_fails(|a| a["record"] = record_json(&record("a", 256)), COMMITMENT);
}

#[test]
fn entry_fails_an_answer_whose_public_fields_differ_from_the_leaf() {
    tampered_fails(
        |a| a["payload_size"] = 24.into(),
        "says payload_size 24, but the verified leaf has 23",
    );
    tampered_fails(
        |a| a["index"] = 256.into(),
        "is for entry 256, not entry 257",
    );
    tampered_fails(|a| a["time_ms"] = 1.into(), "says time_ms 1");
    tampered_fails(
        |a| a["event_type"] = "user.logout".into(),
        "says event_type \"user.logout\", but the verified leaf has \"test.event\"",
    );
    tampered_fails(|a| a["event_type"] = Value::Null, "says event_type none");
    tampered_fails(
        |a| a["commitment"] = "00".repeat(32).into(),
        "says commitment 0000",
    );
    // A malformed answer: a record without its salt, an erasure without an index.
    tampered_fails(
        |a| {
            a["record"].as_object_mut().unwrap().remove("salt");
        },
        "malformed: the record has no \"salt\" string",
    );
    tampered_fails(
        |a| {
            a["record"] = Value::Null;
            a["erased"] = json!({"time_ms": 5});
        },
        "erased\" has no erasure_index",
    );
}

#[test]
fn entry_reports_a_restricted_record() {
    // The log answers restricted without the reader's token, the record with it.
    let (_dir, server) = served(Log::new("a", 300), |log, i, auth| {
        Some(if auth == Some("Bearer s3cret") {
            (200, log.answer(i))
        } else {
            (200, log.restricted_answer(i))
        })
    });
    let k = vkey_args(&log_vkey());
    let out = run(&args(&k, &["entry", &server.url, "5"]));
    out.ok();
    for line in [
        "record: not readable by this caller (the log's answer says restricted); content not verified",
        "give --token or set SEALTRAIL_TOKEN",
    ] {
        assert!(out.stdout.contains(line), "{line}: {}", out.stdout);
    }
    let out = run(&args(&k, &["entry", "--json", &server.url, "5"]));
    out.ok();
    let jv = j(&out);
    assert_eq!(jv["verified"], true);
    assert_eq!(jv["record_status"], "restricted");
    assert_eq!(jv["record"], Value::Null);
    // With the token (flag or environment) the record is read and verified.
    let out = run(&args(
        &k,
        &["entry", "--json", "--token", "s3cret", &server.url, "5"],
    ));
    out.ok();
    assert_eq!(j(&out)["record_status"], "verified");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sealtrail-verify"))
        .args(args(&k, &["entry", "--json", &server.url, "6"]))
        .env("SEALTRAIL_TOKEN", "s3cret")
        .output()
        .unwrap();
    assert!(out.status.success());
    let jv: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(jv["record"]["principal"], "tester");
    // The token went to /v1/entries/{i} only, never with a tile or checkpoint request.
    let requests = server.requests();
    assert!(requests.iter().any(|r| r.authorization.is_some()));
    for r in &requests {
        if r.authorization.is_some() {
            assert!(r.path.starts_with("/v1/entries/"), "{r:?}");
        }
    }
    // The token is never printed.
    assert!(!String::from_utf8_lossy(&out.stdout).contains("s3cret"));
}

#[test]
fn entry_reports_a_refused_or_missing_answer() {
    // 401 from the API: restricted, exit 0.
    let (_dir, server) = served(Log::new("a", 20), |_, _, _| {
        Some((401, json!({"error": "unauthorized"})))
    });
    let k = vkey_args(&log_vkey());
    let out = run(&args(&k, &["entry", &server.url, "5"]));
    out.ok();
    assert!(
        out.stdout
            .contains("not readable by this caller (v1/entries/5: HTTP 401)"),
        "{}",
        out.stdout
    );
    // 404: the log serves no records (a plain tlog-tiles log), exit 0.
    let (_dir, server) = served(Log::new("a", 20), |_, _, _| None);
    let out = run(&args(&k, &["entry", "--json", &server.url, "5"]));
    out.ok();
    assert_eq!(j(&out)["record_status"], "not_served");
    // An answer that is not a sealtrail entry answer: not served, exit 0.
    let dir = tempfile::tempdir().unwrap();
    Log::new("a", 20).write_tiles(dir.path(), &[]);
    let server = Server::start(
        dir.path(),
        Box::new(|path, _| {
            path.starts_with("/v1/")
                .then(|| (200, "<html>hi</html>".into()))
        }),
    );
    let out = run(&args(&k, &["entry", "--json", &server.url, "5"]));
    out.ok();
    assert_eq!(j(&out)["record_status"], "not_served");
    // --no-record skips the request.
    let before = server.requests().len();
    let out = run(&args(
        &k,
        &["entry", "--json", "--no-record", &server.url, "5"],
    ));
    out.ok();
    assert_eq!(j(&out)["record_status"], "skipped");
    assert!(
        server.requests()[before..]
            .iter()
            .all(|r| !r.path.starts_with("/v1/"))
    );
}

#[test]
fn entry_reports_an_erased_record_and_checks_the_erasure_entry() {
    // Entry 290 is the log's sealtrail.erasure entry; the log says it erased entry 5's record.
    let (_dir, server) = served(Log::with_erasure_at("a", 300, Some(290)), |log, i, _| {
        Some((
            200,
            match i {
                5 => log.erased_answer(5, 290),
                6 => log.erased_answer(6, 100), // entry 100 is no erasure
                7 => log.erased_answer(7, 3),   // before the entry
                8 => log.erased_answer(8, 5000), // past the checkpoint
                _ => log.answer(i),
            },
        ))
    });
    let k = vkey_args(&log_vkey());
    let out = run(&args(&k, &["entry", &server.url, "5"]));
    out.ok();
    for line in [
        "record: erased by entry 290, a sealtrail.erasure entry included in this checkpoint \
         (sequenced 2023-11-14T22:13:20.290Z)",
        "content not verified: the record no longer exists",
    ] {
        assert!(out.stdout.contains(line), "{line}: {}", out.stdout);
    }
    let out = run(&args(&k, &["entry", "--json", &server.url, "5"]));
    out.ok();
    let jv = j(&out);
    assert_eq!(jv["record_status"], "erased");
    assert_eq!(jv["record"], Value::Null);
    assert_eq!(jv["erased"]["erasure_index"], 290);
    assert_eq!(jv["erased"]["erasure_entry_verified"], true);
    // The erasure entry's time, from its verified leaf, not the answer's claim.
    assert_eq!(jv["erased"]["time_ms"], 1_700_000_000_290u64);
    // The erasure entry itself shows as the log's own.
    let out = run(&args(&k, &["entry", &server.url, "290"]));
    out.ok();
    assert!(
        out.stdout
            .contains("event_type: sealtrail.erasure (reserved: the log's own entry)"),
        "{}",
        out.stdout
    );
    // Lies about the erasure fail.
    run(&args(&k, &["entry", &server.url, "6"]))
        .failed_naming("entry 100, named as the erasure, is not a sealtrail.erasure entry");
    run(&args(&k, &["entry", &server.url, "7"])).failed_naming("which is not after it");
    // An erasure past the verified checkpoint cannot be checked: reported, exit 0.
    let out = run(&args(&k, &["entry", "--json", &server.url, "8"]));
    out.ok();
    let jv = j(&out);
    assert_eq!(jv["record_status"], "erased");
    assert_eq!(jv["erased"]["erasure_entry_verified"], false);
}

#[test]
fn entry_checks_a_record_file_offline() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::new("a", 300);
    log.write_tiles(dir.path(), &[]);
    let k = vkey_args(&log_vkey());
    // The whole answer, and the record object alone.
    let whole = write(
        dir.path(),
        "whole.json",
        log.answer(42).to_string().as_bytes(),
    );
    let bare = write(
        dir.path(),
        "bare.json",
        record_json(&log.records[42]).to_string().as_bytes(),
    );
    for f in [&whole, &bare] {
        let out = run(&args(
            &k,
            &["entry", "--json", "--record", s(f), s(dir.path()), "42"],
        ));
        out.ok();
        let jv = j(&out);
        assert_eq!(jv["record_status"], "verified");
        assert_eq!(
            jv["record"]["payload"]["text"],
            "{\"history\":\"a\",\"n\":42}"
        );
    }
    // The record of another entry fails.
    let out = run(&args(
        &k,
        &["entry", "--record", s(&bare), s(dir.path()), "43"],
    ));
    out.failed_naming("does not match the leaf");
    // A tampered principal in the file.
    let mut a = log.answer(42);
    a["record"]["principal"] = "root".into();
    let bad = write(dir.path(), "bad.json", a.to_string().as_bytes());
    run(&args(
        &k,
        &["entry", "--record", s(&bad), s(dir.path()), "42"],
    ))
    .failed_naming("is not the leaf's commitment");
    // An unreadable file is a usage error (exit 2), as are --record with --no-record.
    let junk = write(dir.path(), "junk.json", b"{\"hello\":1}");
    let out = run(&args(
        &k,
        &["entry", "--record", s(&junk), s(dir.path()), "42"],
    ));
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("--record"), "{}", out.stderr);
    let out = run(&args(
        &k,
        &[
            "entry",
            "--no-record",
            "--record",
            s(&whole),
            s(dir.path()),
            "42",
        ],
    ));
    assert_eq!(out.code, 2);
    // A restricted or erased answer saved to a file is reported as such.
    let r = write(
        dir.path(),
        "r.json",
        log.restricted_answer(42).to_string().as_bytes(),
    );
    let out = run(&args(
        &k,
        &["entry", "--json", "--record", s(&r), s(dir.path()), "42"],
    ));
    out.ok();
    assert_eq!(j(&out)["record_status"], "restricted");
}

#[test]
fn proof_checks_a_record_file() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::new("a", 300);
    let p = write(dir.path(), "p", &log.proof(257, 300, &[]));
    let e = write(dir.path(), "e", &log.entries[257]);
    let whole = write(
        dir.path(),
        "whole.json",
        log.answer(257).to_string().as_bytes(),
    );
    let bare = write(
        dir.path(),
        "bare.json",
        record_json(&log.records[257]).to_string().as_bytes(),
    );
    let k = vkey_args(&log_vkey());
    // With the entry's bytes, either file shape.
    for f in [&whole, &bare] {
        let out = run(&args(
            &k,
            &["proof", "--json", "--entry", s(&e), "--record", s(f), s(&p)],
        ));
        out.ok();
        let jv = j(&out);
        assert_eq!(jv["record_status"], "verified");
        assert_eq!(jv["record"]["principal"], "tester");
    }
    // With only the leaf hash: the whole answer's public fields must hash to it.
    let hex = log.leaves[257].to_hex();
    let out = run(&args(
        &k,
        &["proof", "--leaf-hash", &hex, "--record", s(&whole), s(&p)],
    ));
    out.ok();
    for line in [
        "envelope (the --record file's public fields; they hash to the proven leaf):",
        "  principal: tester",
        "verified",
    ] {
        assert!(out.stdout.contains(line), "{line}: {}", out.stdout);
    }
    let out = run(&args(
        &k,
        &["proof", "--leaf-hash", &hex, "--record", s(&bare), s(&p)],
    ));
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("--record with --leaf-hash"),
        "{}",
        out.stderr
    );
    // Public fields that are not the entry's.
    let mut a = log.answer(257);
    a["time_ms"] = 5.into();
    let lie = write(dir.path(), "lie.json", a.to_string().as_bytes());
    run(&args(
        &k,
        &["proof", "--leaf-hash", &hex, "--record", s(&lie), s(&p)],
    ))
    .failed_naming("they are not this entry's");
    // A tampered payload.
    let mut a = log.answer(257);
    a["record"]["payload_base64"] = b64(br#"{"history":"a","n":258}"#).into();
    let bad = write(dir.path(), "bad.json", a.to_string().as_bytes());
    for leaf in [["--entry", s(&e)], ["--leaf-hash", &hex]] {
        run(&args(
            &k,
            &["proof", leaf[0], leaf[1], "--record", s(&bad), s(&p)],
        ))
        .failed_naming("is not the leaf's commitment");
    }
    // An erased answer offline: reported, not checked.
    let erased = write(
        dir.path(),
        "erased.json",
        log.erased_answer(257, 299).to_string().as_bytes(),
    );
    let out = run(&args(
        &k,
        &["proof", "--entry", s(&e), "--record", s(&erased), s(&p)],
    ));
    out.ok();
    assert!(
        out.stdout
            .contains("record: erased by entry 299, says the file (not checked offline)"),
        "{}",
        out.stdout
    );
}

// --- evidence ---

/// A package `sealtrail evidence --type user.login` wrote from a live log (five records), and
/// that log's key (tests/data).
fn evidence_fixture() -> (std::path::PathBuf, String) {
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let vkey = std::fs::read_to_string(data.join("evidence-logins.vkey")).unwrap();
    (data.join("evidence-logins.tar.gz"), vkey.trim().to_owned())
}

/// Extracts the fixture with tar(1) into `dir`; returns the package's directory.
fn extract(pkg: &std::path::Path, dir: &std::path::Path) -> std::path::PathBuf {
    let st = std::process::Command::new("tar")
        .arg("xzf")
        .arg(pkg)
        .arg("-C")
        .arg(dir)
        .status()
        .unwrap();
    assert!(st.success());
    dir.join("sealtrail-evidence")
}

#[test]
fn evidence_exit_codes_json_and_named_tampering() {
    let (pkg, vkey) = evidence_fixture();
    let out = run(&["evidence", "--log-key", &vkey, s(&pkg)]);
    out.ok();
    assert!(out.stdout.contains("5 records in scope"), "{}", out.stdout);
    let out = run(&["evidence", "--json", "--log-key", &vkey, s(&pkg)]);
    out.ok();
    let j: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(j["verified"], true);
    assert_eq!(j["records"]["in_scope"], 5);
    assert_eq!(j["scope"]["event_type"], "user.login");
    assert_eq!(j["log_key_pinned"], true);

    // The extracted directory verifies too; a changed file fails, named.
    let dir = tempfile::tempdir().unwrap();
    let root = extract(&pkg, dir.path());
    run(&["evidence", "--log-key", &vkey, s(&root)]).ok();
    flip(&root.join("proofs/2.tlog-proof"), 40);
    run(&["evidence", "--log-key", &vkey, s(&root)]).failed_naming("proofs/2.tlog-proof");
    let out = run(&["evidence", "--json", "--log-key", &vkey, s(&root)]);
    assert_eq!(out.code, 1);
    let j: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(j["verified"], false);
    assert_eq!(j["category"], "verification_failed");
    // A damaged archive is a verification failure too, naming the file.
    let damaged = write(
        dir.path(),
        "damaged.tar.gz",
        &std::fs::read(&pkg).unwrap()[..900],
    );
    run(&["evidence", "--log-key", &vkey, s(&damaged)]).failed_naming("damaged.tar.gz");
    // Another key: the signed manifest does not verify.
    run(&["evidence", "--log-key", &log_vkey(), s(&pkg)]).failed_naming("manifest.sig");

    // Usage and I/O errors exit 2.
    assert_eq!(
        run(&["evidence", "--log-key", "not a key", s(&pkg)]).code,
        2
    );
    assert_eq!(run(&["evidence", "/nonexistent/package.tar.gz"]).code, 2);
    assert_eq!(run(&["evidence"]).code, 2);
}
