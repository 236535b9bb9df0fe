//! Credential lifecycle against the real binary: an expired token is refused with 401, and SIGHUP
//! re-reads the whole `[auth]` section: a token added works, a token removed is refused, and a
//! broken configuration file keeps the rules in force (and the log says why).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use sha2::{Digest as _, Sha256};

const ALICE: &str = "stk_alice-token-for-the-reload-test-000000000000";
const BOB: &str = "stk_bob-token-for-the-reload-test-00000000000000";
const OLD: &str = "stk_old-token-for-the-reload-test-00000000000000";

fn token_toml(name: &str, token: &str, expires_at: Option<&str>) -> String {
    let hash = sealtrail_spec::to_hex(&Sha256::digest(token.as_bytes()));
    let expires = expires_at.map_or(String::new(), |t| format!("expires_at = \"{t}\"\n"));
    format!(
        "[[auth.tokens]]\nname = \"{name}\"\nrole = \"submitter\"\nsha256 = \"{hash}\"\n{expires}"
    )
}

fn config(tokens: &[String]) -> String {
    format!(
        "origin = \"reload.sealtrail.example/log\"\n[auth]\nanonymous_writes = \"never\"\n\n{}",
        tokens.concat()
    )
}

/// The server, and its log lines as they arrive.
struct Server {
    child: Child,
    url: String,
    logs: mpsc::Receiver<String>,
}

impl Server {
    /// Waits (at most 30 s) for a log line containing `what`; returns it.
    fn log_line(&self, what: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.logs.recv_timeout(left) {
                Ok(l) if l.contains(what) => return l,
                Ok(_) => {}
                Err(e) => panic!("no log line with {what:?}: {e}"),
            }
        }
    }

    fn hup(&self) {
        let st = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
    }

    /// POSTs an entry with `token`; the status and the error message, if any.
    fn post(&self, token: &str) -> (u16, String) {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let r = reqwest::blocking::Client::new()
            .post(format!("{}/v1/entries", self.url))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body("{\"n\":1}")
            .send()
            .unwrap();
        let status = r.status().as_u16();
        let j: serde_json::Value = r.json().unwrap();
        (
            status,
            j["error"]["message"].as_str().unwrap_or("").to_owned(),
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &std::path::Path, config_file: &std::path::Path) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sealtrail"))
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "text"])
        .arg("--config")
        .arg(config_file)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .env_remove("SEALTRAIL_ORIGIN")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = loop {
        let l = out.next().expect("the server exited early").unwrap();
        if let Some(u) = l.strip_prefix("sealtrail: listening on ") {
            break u.to_owned();
        }
    };
    std::thread::spawn(move || for _ in out {});
    let (tx, logs) = mpsc::channel();
    let err = BufReader::new(child.stderr.take().unwrap());
    std::thread::spawn(move || {
        for l in err.lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                return;
            }
        }
    });
    Server { child, url, logs }
}

#[test]
fn expired_tokens_are_refused_and_sighup_reloads_auth() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sealtrail.toml");
    let alice = token_toml("alice", ALICE, Some("2999-01-01T00:00:00Z"));
    let old = token_toml("old", OLD, Some("2020-01-01"));
    std::fs::write(&file, config(&[alice.clone(), old])).unwrap();
    let s = start(dir.path(), &file);

    assert_eq!(s.post(ALICE).0, 201);
    let (status, msg) = s.post(OLD);
    assert_eq!(status, 401, "{msg}");
    assert!(msg.contains("expired at 2020-01-01T00:00:00.000Z"), "{msg}");
    assert_eq!(s.post(BOB).0, 401);

    // Bob added: after SIGHUP (and the reload's log line) his token works.
    let bob = token_toml("bob", BOB, None);
    std::fs::write(&file, config(&[alice, bob.clone()])).unwrap();
    s.hup();
    s.log_line("access rules reloaded");
    assert_eq!(s.post(BOB).0, 201);
    assert_eq!(s.post(ALICE).0, 201);

    // Alice removed: refused from the next request on.
    std::fs::write(&file, config(std::slice::from_ref(&bob))).unwrap();
    s.hup();
    s.log_line("access rules reloaded");
    assert_eq!(s.post(ALICE).0, 401);
    assert_eq!(s.post(BOB).0, 201);

    // A broken file (bad TOML, then a bad token hash): the rules in force stay, and the log says
    // why.
    std::fs::write(&file, "origin = \"reload.sealtrail.example/log\"\n[auth\n").unwrap();
    s.hup();
    let line = s.log_line("reload failed");
    assert!(line.contains("keeping the current access rules"), "{line}");
    assert_eq!(s.post(BOB).0, 201);
    let bad = config(&[bob.replace("sha256 = \"", "sha256 = \"zz")]);
    std::fs::write(&file, bad).unwrap();
    s.hup();
    let line = s.log_line("reload failed");
    assert!(line.contains("sha256"), "{line}");
    assert_eq!(s.post(BOB).0, 201);
    assert_eq!(s.post(ALICE).0, 401);
}
