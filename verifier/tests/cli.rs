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
    assert!(out.stdout.contains("\"n\":257"), "{}", out.stdout);
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
    assert_eq!(j["envelope"]["principal"], "tester");
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
        assert_eq!(
            j["envelope"]["payload"]["text"],
            format!("{{\"history\":\"a\",\"n\":{i}}}")
        );
    }
    assert_eq!(run(&args(&k, &["entry", s(dir.path()), "600"])).code, 2);
    assert_eq!(
        run(&args(&k, &["entry", s(&dir.path().join("absent")), "1"])).code,
        2
    );
    // A flipped bit in the entry bundle (the last entry's payload).
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
