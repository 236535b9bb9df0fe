//! `sealtrail search` against a real `sealtrail serve` on 127.0.0.1: filters, order and paging
//! (a `--max` above the server's page size follows cursors), and a clear error for bad input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn post(addr: &str, event_type: &str, body: &str) {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST /v1/entries HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: application/json\r\nX-Event-Type: {event_type}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    assert!(buf.starts_with("HTTP/1.1 201"), "{buf}");
}

fn search(args: &[&str]) -> (bool, Vec<serde_json::Value>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sealtrail"))
        .arg("search")
        .args(args)
        .output()
        .unwrap();
    let lines = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (
        out.status.success(),
        lines,
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn search_command_filters_orders_and_pages() {
    let tmp = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sealtrail"))
        .args(["serve", "--listen", "127.0.0.1:0", "--log", "error"])
        .args(["--origin", "cli.sealtrail.example/log"])
        .arg("--data-dir")
        .arg(tmp.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let _guard = KillOnDrop(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    let addr = loop {
        assert!(Instant::now() < deadline, "server did not start");
        let line = lines.next().unwrap().unwrap();
        if let Some(a) = line.strip_prefix("sealtrail: listening on http://") {
            break a.to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    for i in 0..1205 {
        let t = if i % 3 == 0 { "a.b" } else { "other" };
        post(&addr, t, &format!("{{\"i\":{i}}}"));
    }
    let url = format!("http://{addr}");
    let (ok, got, err) = search(&[
        "--url", &url, "--type", "a.b", "--order", "oldest", "--max", "5000",
    ]);
    assert!(ok, "{err}");
    let want: Vec<u64> = (0..1205).filter(|i| i % 3 == 0).collect();
    let idx: Vec<u64> = got.iter().map(|e| e["index"].as_u64().unwrap()).collect();
    assert_eq!(idx, want);
    assert!(got.iter().all(|e| e["event_type"] == "a.b"));
    let (ok, got, _) = search(&["--url", &url, "--max", "3"]);
    assert!(ok);
    let idx: Vec<u64> = got.iter().map(|e| e["index"].as_u64().unwrap()).collect();
    assert_eq!(idx, [1204, 1203, 1202]);
    let (ok, got, err) = search(&["--url", &url, "--type", ""]);
    assert!(!ok && got.is_empty());
    assert!(err.contains("type is empty"), "{err}");

    // Times as RFC 3339 (what the entries' own timestamps print as) or dates, as well as ms.
    let (ok, all, err) = search(&["--url", &url, "--order", "oldest", "--max", "5000"]);
    assert!(ok, "{err}");
    let ts = all[600]["timestamp"].as_u64().unwrap();
    let since = sealtrail_spec::rfc3339_ms(ts);
    let want: Vec<u64> = all
        .iter()
        .filter(|e| e["timestamp"].as_u64().unwrap() >= ts)
        .map(|e| e["index"].as_u64().unwrap())
        .collect();
    for since in [since.as_str(), &ts.to_string()] {
        let (ok, got, err) = search(&[
            "--url", &url, "--since", since, "--order", "oldest", "--max", "5000",
        ]);
        assert!(ok, "{err}");
        let idx: Vec<u64> = got.iter().map(|e| e["index"].as_u64().unwrap()).collect();
        assert_eq!(idx, want, "--since {since}");
    }
    let (ok, got, _) = search(&["--url", &url, "--until", "2000-01-01"]);
    assert!(ok && got.is_empty());
    let (ok, _, err) = search(&["--url", &url, "--since", "yesterday"]);
    assert!(!ok);
    assert!(err.contains("RFC 3339"), "{err}");
}

/// Kills the server when the test ends, passing or not.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
