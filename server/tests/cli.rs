//! The `sealtrail` command line: keygen, config check, key-file safety, first start, fsck.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead as _, BufReader};
use std::os::unix::fs::PermissionsExt as _;
use std::process::{Command, Output, Stdio};

use sealtrail_spec::note::{Ed25519Signer, Ed25519Verifier};

fn sealtrail(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sealtrail"))
        .args(args)
        .env_remove("SEALTRAIL_ORIGIN")
        .env_remove("SEALTRAIL_DATA_DIR")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn keygen_writes_a_private_key_once() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k/log.key");
    let key_s = key.to_str().unwrap();
    let out = sealtrail(&[
        "keygen",
        "--origin",
        "audit.example.com/prod",
        "--out",
        key_s,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let vkey = text(&out.stdout).trim().to_owned();
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let signer = Ed25519Signer::from_skey(std::fs::read_to_string(&key).unwrap().trim()).unwrap();
    assert_eq!(signer.verifier().to_vkey(), vkey);
    Ed25519Verifier::from_vkey(&vkey).unwrap();
    let again = sealtrail(&[
        "keygen",
        "--origin",
        "audit.example.com/prod",
        "--out",
        key_s,
    ]);
    assert_eq!(again.status.code(), Some(2));
    assert!(text(&again.stderr).contains("refusing to overwrite"));
    let bad = sealtrail(&[
        "keygen",
        "--origin",
        "has space",
        "--out",
        dir.path().join("x").to_str().unwrap(),
    ]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn config_check_accepts_the_example_and_names_errors() {
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/sealtrail.example.toml"
    );
    let ok = sealtrail(&["config", "check", "--config", example]);
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    assert!(text(&ok.stdout).contains("max_payload_bytes = 64000"));
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[limits]\nmax_payload_bytez = 1\n").unwrap();
    let out = sealtrail(&["config", "check", "--config", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("max_payload_bytez"),
        "{}",
        text(&out.stderr)
    );
    // Flags override the file; invalid values are named.
    let out = sealtrail(&["config", "check", "--config", example, "--origin", "a+b"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("origin"));
}

#[test]
fn refuses_a_key_readable_by_others() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("log.key");
    let out = sealtrail(&[
        "keygen",
        "--origin",
        "o.example/log",
        "--out",
        key.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = sealtrail(&[
        "serve",
        "--origin",
        "o.example/log",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--key-file",
        key.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("chmod 600"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn first_start_creates_and_prints_the_key_then_fsck_passes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut child = Command::new(env!("CARGO_BIN_EXE_sealtrail"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--origin",
            "first.example/log",
            "--log-format",
            "text",
        ])
        .arg("--data-dir")
        .arg(&data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    while !seen
        .iter()
        .any(|l: &String| l.starts_with("sealtrail: listening on"))
    {
        seen.push(lines.next().expect("server exited early").unwrap());
    }
    assert!(
        seen.iter()
            .any(|l| l.starts_with("sealtrail: created signing key")),
        "{seen:?}"
    );
    let vkey = seen
        .iter()
        .find_map(|l| l.strip_prefix("sealtrail: verifier key "))
        .expect("verifier key printed");
    let key = Ed25519Signer::from_skey(
        std::fs::read_to_string(data.join("log.key"))
            .unwrap()
            .trim(),
    )
    .unwrap();
    assert_eq!(key.verifier().to_vkey(), vkey);
    assert_eq!(
        std::fs::read_to_string(data.join("ENGINE")).unwrap().trim(),
        "redb"
    );
    // SIGTERM: graceful exit 0.
    assert!(
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    assert!(child.wait().unwrap().success());
    let out = sealtrail(&[
        "fsck",
        "--origin",
        "first.example/log",
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(text(&out.stdout).contains("fsck: OK"));
    // The data directory remembers its engine.
    let out = sealtrail(&[
        "fsck",
        "--origin",
        "first.example/log",
        "--store",
        "sled",
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("created with the redb engine"),
        "{}",
        text(&out.stderr)
    );
}
