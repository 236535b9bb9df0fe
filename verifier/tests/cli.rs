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
