//! The `sealtrail-witness` binary: keygen, key permission checks, config errors,
//! clear-split-view (including on a store in use), and serve end to end.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::*;
use sealtrail_spec::cosignature::{CosignatureVerifier, Cosigner};
use sealtrail_witness::store::{SplitView, Store};

const BIN: &str = env!("CARGO_BIN_EXE_sealtrail-witness");

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn write_config(dir: &Path, key: &Path, log: &TestLog) -> std::path::PathBuf {
    let path = dir.join("witness.toml");
    std::fs::write(
        &path,
        format!(
            "name = \"{WITNESS_NAME}\"\nkey_file = \"{}\"\ndata_dir = \"{}\"\n\
             [gossip]\ninterval_secs = 0\n\
             [[logs]]\norigin = \"{}\"\nkeys = [\"{}\"]\n",
            key.display(),
            dir.join("data").display(),
            log.origin,
            log.vkey()
        ),
    )
    .unwrap();
    path
}

#[test]
fn keygen_writes_a_private_key_and_prints_its_vkey() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("keys/w.key");
    let out = run(&[
        "keygen",
        "--name",
        WITNESS_NAME,
        "--out",
        key.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let vkey = text(&out.stdout).trim().to_owned();
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let skey = std::fs::read_to_string(&key).unwrap();
    let c = Cosigner::from_skey(skey.trim_end()).unwrap();
    assert_eq!(c.name(), WITNESS_NAME);
    assert_eq!(CosignatureVerifier::from_vkey(&vkey).unwrap(), c.verifier());
    // Never overwrites.
    let again = run(&[
        "keygen",
        "--name",
        WITNESS_NAME,
        "--out",
        key.to_str().unwrap(),
    ]);
    assert_eq!(again.status.code(), Some(2));
    assert!(text(&again.stderr).contains("already exists"));
    assert_eq!(std::fs::read_to_string(&key).unwrap(), skey);
    // A bad name is refused.
    let bad = run(&[
        "keygen",
        "--name",
        "a b",
        "--out",
        dir.path().join("x").to_str().unwrap(),
    ]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn serve_refuses_a_readable_key_and_a_bad_config() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("w.key");
    assert!(
        run(&[
            "keygen",
            "--name",
            WITNESS_NAME,
            "--out",
            key.to_str().unwrap()
        ])
        .status
        .success()
    );
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
    let cfg = write_config(dir.path(), &key, &TestLog::new(ORIGIN, 1, "a", 1));
    let out = run(&[
        "serve",
        "--config",
        cfg.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("chmod 600"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        !dir.path().join("data").exists(),
        "no store before the key is checked"
    );

    std::fs::write(&cfg, "name = \"w\"\nkey_file = \"k\"\ntypo = 1\n").unwrap();
    let out = run(&["serve", "--config", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("typo"), "{}", text(&out.stderr));
}

#[test]
fn clear_split_view_command() {
    let dir = tempfile::tempdir().unwrap();
    let log = TestLog::new(ORIGIN, 1, "a", 1);
    let cfg = write_config(dir.path(), &dir.path().join("w.key"), &log);
    let cfg = cfg.to_str().unwrap();
    let split = SplitView {
        origin: ORIGIN.into(),
        detected_at: 7,
        source: "peer http://p".into(),
        reason: "r".into(),
        ours: "ours\n".into(),
        theirs: "theirs\n".into(),
    };
    {
        let store = Store::open(&dir.path().join("data")).unwrap();
        store.record_split_view(&split).unwrap();
        // While the store is open (the witness running), the command fails clearly.
        let out = run(&["clear-split-view", "--config", cfg, "--origin", ORIGIN]);
        assert_eq!(out.status.code(), Some(2));
        assert!(
            text(&out.stderr).contains("in use"),
            "{}",
            text(&out.stderr)
        );
    }
    let out = run(&["split-views", "--config", cfg]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listed: Vec<SplitView> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed, vec![split.clone()]);

    let out = run(&["clear-split-view", "--config", cfg, "--origin", ORIGIN]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed: SplitView = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed, split);
    assert!(
        Store::open(&dir.path().join("data"))
            .unwrap()
            .split_views()
            .unwrap()
            .is_empty()
    );
    let out = run(&["clear-split-view", "--config", cfg, "--origin", ORIGIN]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no split view"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_cosigns_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("w.key");
    let out = run(&[
        "keygen",
        "--name",
        WITNESS_NAME,
        "--out",
        key.to_str().unwrap(),
    ]);
    let vkey = text(&out.stdout).trim().to_owned();
    let log = TestLog::new(ORIGIN, 1, "a", 5);
    let cfg = write_config(dir.path(), &key, &log);
    let mut child = tokio::process::Command::new(BIN)
        .args([
            "serve",
            "--config",
            cfg.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
    let mut url = None;
    while let Some(line) = lines.next_line().await.unwrap() {
        if let Some(u) = line.strip_prefix("sealtrail-witness: listening on ") {
            url = Some(u.to_owned());
            break;
        }
        if let Some(v) = line.strip_prefix("sealtrail-witness: verifier key ") {
            assert_eq!(v, vkey);
        }
    }
    let url = url.expect("the witness printed its address");
    let (status, _, body) = add(&url, log.request(0, 5)).await;
    assert_eq!(status, 200, "{body}");
    let sig = &sealtrail_spec::witness::parse_cosignature_lines(body.as_bytes()).unwrap()[0];
    CosignatureVerifier::from_vkey(&vkey)
        .unwrap()
        .verify_cosignature(&log.checkpoint_text(5), sig)
        .unwrap();
    let pid = child.id().unwrap();
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().await.unwrap();
    assert!(exit.success(), "{exit:?}");
    // The store is released on exit.
    let store = Store::open(&dir.path().join("data")).unwrap();
    assert_eq!(store.latest(ORIGIN).unwrap().unwrap().checkpoint.size(), 5);
}
