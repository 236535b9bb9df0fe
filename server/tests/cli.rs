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

/// Starts `sealtrail serve` on 127.0.0.1:0 with `data` and `args`; returns the child and its
/// stdout lines up to and including "listening on".
fn serve(data: &std::path::Path, args: &[&str]) -> (std::process::Child, Vec<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sealtrail"))
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "text"])
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .env_remove("SEALTRAIL_ORIGIN")
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
    (child, seen)
}

fn url_of(seen: &[String]) -> String {
    seen.iter()
        .find_map(|l| l.strip_prefix("sealtrail: listening on "))
        .unwrap()
        .to_owned()
}

fn stop(mut child: std::process::Child) {
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    assert!(child.wait().unwrap().success());
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// POSTs `body` with the curl CLI, as the README's examples do; fails unless curl answers 2xx.
fn curl_post(url: &str, content_type: &str, body: &str) {
    let r = Command::new("curl")
        .args(["-sf", "-X", "POST", "-H"])
        .arg(format!("content-type: {content_type}"))
        .args(["--data-binary", body])
        .arg(url)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run curl ({e}): install it (Debian: apt-get install curl), or run \
                 scripts/test, which installs what the tests need"
            )
        });
    assert!(r.status.success(), "curl: {}", text(&r.stderr));
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
fn config_check_never_prints_the_database_password() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("pg.toml");
    std::fs::write(
        &config,
        "store = \"postgres\"\n[postgres]\nurl = \"postgres://log:Sup3rSecret@db.example/audit\"\n",
    )
    .unwrap();
    let out = sealtrail(&["config", "check", "--config", config.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed = text(&out.stdout);
    assert!(!printed.contains("Sup3rSecret"), "{printed}");
    assert!(
        printed.contains("postgres://log:***@db.example/audit"),
        "{printed}"
    );
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
    let (mut child, seen) = serve(&data, &["--origin", "first.example/log"]);
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

/// Runs `sealtrail status --json` until its exit code is `want` (bounded), returning the JSON.
fn status_until(url: &str, want: i32) -> serde_json::Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        // The disk thresholds are off: this machine's own free space is not under test.
        let out = sealtrail(&[
            "status",
            "--json",
            "--timeout",
            "2",
            "--disk-warn-free",
            "0",
            "--disk-critical-free",
            "0",
            "--sample",
            "0",
            "--url",
            url,
        ]);
        let code = out.status.code().unwrap();
        if code == want {
            return serde_json::from_slice(&out.stdout).unwrap();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "status stayed at exit {code}, want {want}: {}",
            text(&out.stdout)
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn status_exit_codes() {
    // Nothing listening: critical.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = sealtrail(&["status", "--url", &format!("http://127.0.0.1:{port}")]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("server down"),
        "{}",
        text(&out.stdout)
    );

    // A healthy server: 0.
    let dir = tempfile::tempdir().unwrap();
    let (child, seen) = serve(&dir.path().join("a"), &[]);
    let url = url_of(&seen);
    let j = status_until(&url, 0);
    assert_eq!(j["status"], "ok");
    let checks = j["checks"].as_array().unwrap();
    assert!(checks.iter().any(|c| c["check"] == "disk"));
    assert!(
        checks
            .iter()
            .any(|c| c["check"] == "queue" && c["level"] == "ok"),
        "{j}"
    );

    // --watch: a round per second; once bad tokens pour in, the security-event rate (against
    // the previous round) turns critical and names the kind.
    let mut watch = std::process::Command::new(env!("CARGO_BIN_EXE_sealtrail"))
        .args(["status", "--json", "--watch", "1", "--disk-warn-free", "0"])
        .args(["--disk-critical-free", "0", "--url", &url])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut rounds = BufReader::new(watch.stdout.take().unwrap()).lines();
    let first: serde_json::Value = serde_json::from_str(&rounds.next().unwrap().unwrap()).unwrap();
    assert!(
        first["checks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["check"] != "security_events"),
        "no rate without a previous round: {first}"
    );
    for _ in 0..60 {
        let r = Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-H",
                "authorization: Bearer stk_wrong",
            ])
            .arg(format!("{url}/v1/log"))
            .status()
            .unwrap();
        assert!(r.success());
    }
    let mut seen_critical = None;
    for _ in 0..20 {
        let round: serde_json::Value =
            serde_json::from_str(&rounds.next().unwrap().unwrap()).unwrap();
        let sec = round["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == "security_events")
            .cloned()
            .expect("a rate from the second round on");
        if sec["level"] == "critical" {
            seen_critical = Some(sec);
            break;
        }
    }
    let sec = seen_critical.expect("the burst of bad tokens shows as critical");
    assert!(
        sec["message"].as_str().unwrap().contains("auth_failure"),
        "{sec}"
    );
    watch.kill().unwrap();
    watch.wait().unwrap();
    stop(child);

    // A witness policy that no checkpoint has met (its only witness is down): warning.
    let witness = sealtrail_spec::cosignature::Cosigner::from_seed("w.example", [3; 32]).unwrap();
    let config = dir.path().join("witnessed.toml");
    std::fs::write(
        &config,
        format!(
            "[witnessing]\ninterval_ms = 50\n[[witnessing.witnesses]]\nurl = \"http://127.0.0.1:{port}\"\nvkey = \"{}\"\n",
            witness.verifier().to_vkey()
        ),
    )
    .unwrap();
    let (child, seen) = serve(
        &dir.path().join("b"),
        &["--config", config.to_str().unwrap()],
    );
    let url = url_of(&seen);
    curl_post(&format!("{url}/v1/entries"), "application/json", "{}");
    let j = status_until(&url, 1);
    assert!(
        j["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["check"] == "witness_policy" && c["level"] == "warning"),
        "{j}"
    );
    stop(child);
}

#[test]
fn export_and_import_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let (data, out, restored) = (
        dir.path().join("data"),
        dir.path().join("export"),
        dir.path().join("restored"),
    );
    let (child, seen) = serve(&data, &["--origin", "cli.example/log"]);
    let url = url_of(&seen);
    let vkey = seen
        .iter()
        .find_map(|l| l.strip_prefix("sealtrail: verifier key "))
        .unwrap()
        .to_owned();
    let body: String = (0..300).map(|i| format!("{{\"n\":{i}}}\n")).collect();
    curl_post(
        &format!("{url}/v1/entries/batch"),
        "application/x-ndjson",
        &body,
    );
    // --url without --log-key is refused: the export must be checked against a known key.
    let o = sealtrail(&["export", "--url", &url, "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let o = sealtrail(&[
        "export",
        "--url",
        &url,
        "--log-key",
        &vkey,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("at tree size 300"),
        "{}",
        text(&o.stdout)
    );
    stop(child);

    // Import needs the key; with it (copied into the new directory) the log is restored.
    let o = sealtrail(&[
        "import",
        out.to_str().unwrap(),
        "--data-dir",
        restored.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("--key-file"),
        "{}",
        text(&o.stderr)
    );
    let key = data.join("log.key");
    let o = sealtrail(&[
        "import",
        out.to_str().unwrap(),
        "--data-dir",
        restored.to_str().unwrap(),
        "--key-file",
        key.to_str().unwrap(),
        "--copy-key",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("restored at tree size 300"),
        "{}",
        text(&o.stdout)
    );
    let o = sealtrail(&[
        "fsck",
        "--origin",
        "cli.example/log",
        "--data-dir",
        restored.to_str().unwrap(),
    ]);
    assert!(text(&o.stdout).contains("fsck: OK"), "{}", text(&o.stdout));
    assert_eq!(
        std::fs::read(restored.join("log.key")).unwrap(),
        std::fs::read(&key).unwrap()
    );

    // --archive: the same export as one compressed file, restored by import directly.
    let (child, seen) = serve(&data, &["--origin", "cli.example/log"]);
    let url = url_of(&seen);
    let archive = dir.path().join("backup.tar.gz");
    let export_archive = || {
        sealtrail(&[
            "export",
            "--url",
            &url,
            "--log-key",
            &vkey,
            "--archive",
            archive.to_str().unwrap(),
        ])
    };
    let o = export_archive();
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("at tree size 300"),
        "{}",
        text(&o.stdout)
    );
    let leftovers: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // Never over an existing archive.
    let o = export_archive();
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("exists"), "{}", text(&o.stderr));
    stop(child);
    let from_archive = dir.path().join("from-archive");
    let o = sealtrail(&[
        "import",
        archive.to_str().unwrap(),
        "--data-dir",
        from_archive.to_str().unwrap(),
        "--key-file",
        key.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("restored at tree size 300"),
        "{}",
        text(&o.stdout)
    );
    let extracted: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".sealtrail-extract-"))
        .collect();
    assert!(extracted.is_empty(), "{extracted:?}");
    // A file that is not an export archive is refused, and nothing is created.
    let junk = dir.path().join("junk.tar.gz");
    std::fs::write(&junk, b"not an archive").unwrap();
    let o = sealtrail(&[
        "import",
        junk.to_str().unwrap(),
        "--data-dir",
        dir.path().join("never").to_str().unwrap(),
        "--key-file",
        key.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(!dir.path().join("never").exists());
}

#[test]
fn erase_hold_and_compact_from_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // An admin token, as `sealtrail token create` prints it.
    let created = sealtrail(&["token", "create", "--name", "ops", "--role", "admin"]);
    assert!(created.status.success());
    let token = text(&created.stdout).trim().to_owned();
    let config = tmp.path().join("sealtrail.toml");
    let stanza = text(&created.stderr);
    let stanza = &stanza[stanza.find("[[auth.tokens]]").unwrap()..];
    std::fs::write(&config, stanza).unwrap();
    let (child, seen) = serve(&data, &["--config", config.to_str().unwrap()]);
    let url = url_of(&seen);
    for i in 0..6 {
        curl_post(
            &format!("{url}/v1/entries"),
            "application/json",
            &format!(r#"{{"n":{i},"secret":"cli-marker-{i}"}}"#),
        );
    }
    let admin = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--url", &url, "--token", &token]);
        sealtrail(&all)
    };
    // Hold the principal, then try to erase some of its records.
    let placed = admin(&[
        "hold",
        "place",
        "--principal",
        "anonymous",
        "--reason",
        "case 9",
    ]);
    assert!(placed.status.success(), "{}", text(&placed.stderr));
    let hold: serde_json::Value = serde_json::from_slice(&placed.stdout).unwrap();
    assert_eq!(hold["id"], 6);
    let listed = admin(&["hold", "list"]);
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed["holds"][0]["covers"]["principal"], "anonymous");
    let held = admin(&["erase", "--index", "0,1", "--reason", "DSR-1"]);
    assert!(held.status.success(), "{}", text(&held.stderr));
    let held: serde_json::Value = serde_json::from_slice(&held.stdout).unwrap();
    assert_eq!(
        (held["erased"].as_u64(), held["held"].as_u64()),
        (Some(0), Some(2))
    );
    let released = admin(&["hold", "release", "6", "--reason", "closed"]);
    assert!(released.status.success(), "{}", text(&released.stderr));
    let erased = admin(&["erase", "--index", "0,1", "--reason", "DSR-1"]);
    assert!(erased.status.success(), "{}", text(&erased.stderr));
    let erased: serde_json::Value = serde_json::from_slice(&erased.stdout).unwrap();
    assert_eq!(erased["erased"], 2, "{erased}");
    // Without the admin token: refused, exit 2 with the server's message.
    let refused = sealtrail(&["erase", "--index", "2", "--reason", "x", "--url", &url]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        text(&refused.stderr).contains("401"),
        "{}",
        text(&refused.stderr)
    );
    stop(child);
    // Offline: compaction, then fsck.
    let compacted = sealtrail(&["compact", "--data-dir", data.to_str().unwrap()]);
    assert!(compacted.status.success(), "{}", text(&compacted.stderr));
    assert!(
        text(&compacted.stdout).contains("compact:"),
        "{}",
        text(&compacted.stdout)
    );
    for f in std::fs::read_dir(&data).unwrap() {
        let bytes = std::fs::read(f.unwrap().path()).unwrap();
        for gone in ["cli-marker-0", "cli-marker-1"] {
            assert!(!bytes.windows(gone.len()).any(|w| w == gone.as_bytes()));
        }
    }
    let fsck = sealtrail(&["fsck", "--data-dir", data.to_str().unwrap()]);
    assert!(fsck.status.success(), "{}", text(&fsck.stdout));
    // Six entries, the hold, its release and the erasure: seven live records, two erased.
    assert!(
        text(&fsck.stdout).contains("7 records checked, 2 erased"),
        "{}",
        text(&fsck.stdout)
    );
}

#[test]
fn evidence_downloads_a_package_of_a_scope() {
    let dir = tempfile::tempdir().unwrap();
    let (child, seen) = serve(&dir.path().join("data"), &["--origin", "cli.example/log"]);
    let url = url_of(&seen);
    let body: String = (0..20).map(|i| format!("{{\"n\":{i}}}\n")).collect();
    curl_post(
        &format!("{url}/v1/entries/batch?wait=checkpoint"),
        "application/x-ndjson",
        &body,
    );
    let out = dir.path().join("pkg.tar.gz");
    let o = sealtrail(&[
        "evidence",
        "--url",
        &url,
        "--since",
        "2000-01-01T00:00:00Z",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("sealtrail-verify evidence"));
    // A gzip-compressed tar of the package's directory: 20 proofs, the manifest and its
    // signature, and no partial file left beside it.
    let mut names = Vec::new();
    let gz = flate2::read::GzDecoder::new(std::fs::File::open(&out).unwrap());
    for e in tar::Archive::new(gz).entries().unwrap() {
        names.push(e.unwrap().path().unwrap().display().to_string());
    }
    assert_eq!(
        names
            .iter()
            .filter(|n| n.starts_with("sealtrail-evidence/proofs/"))
            .count(),
        20
    );
    for f in ["manifest.json", "manifest.sig", "report.html", "checkpoint"] {
        assert!(
            names.contains(&format!("sealtrail-evidence/{f}")),
            "{names:?}"
        );
    }
    assert!(!dir.path().join("pkg.partial").exists());
    // An existing file is never overwritten; a bad time and a server error exit 2 and leave
    // nothing behind.
    let o = sealtrail(&["evidence", "--url", &url, "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("exists"), "{}", text(&o.stderr));
    let other = dir.path().join("other.tar.gz");
    let o = sealtrail(&[
        "evidence",
        "--url",
        &url,
        "--since",
        "yesterday",
        "--out",
        other.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("RFC 3339"), "{}", text(&o.stderr));
    let o = sealtrail(&[
        "evidence",
        "--url",
        &format!("{url}/nowhere"),
        "--out",
        other.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("404"), "{}", text(&o.stderr));
    assert!(!other.exists());
    stop(child);
}
