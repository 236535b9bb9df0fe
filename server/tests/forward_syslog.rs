//! The syslog sink against a real rsyslog (Debian packages `rsyslog` and `rsyslog-gnutls`),
//! started here as a child process with its own configuration in a temporary directory: imtcp on
//! 127.0.0.1 (plain, and TLS with a CA and certificate made here with the `openssl` CLI), omfile
//! writing the message ID, the structured data and the message of each record. rsyslog is stopped
//! mid-stream and restarted: every entry must arrive, and a duplicate must be the same event
//! (same origin, index and leaf hash). Without rsyslog these tests FAIL (CI installs it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use sealtrail_server::forward::{ForwardMetrics, Forwarders, SinkConfig, SinkKind, Transport};
use sealtrail_server::sequencer::NewEntry;
use sealtrail_server::store::EntryStore as _;
use sealtrail_server::store::mem::MemStore;

const GUARD: Duration = Duration::from_secs(60);

struct Tls {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

struct Rsyslog {
    dir: PathBuf,
    child: Option<Child>,
    port: u16,
    tls: bool,
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!(
            "cannot run {cmd:?} ({e}): install it (Debian: apt-get install openssl), or run \
             scripts/test, which installs what the tests need"
        )
    });
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA and a server certificate for 127.0.0.1 (EC P-256), made with the `openssl` CLI.
fn make_certs(dir: &Path) -> Tls {
    let p = |n: &str| dir.join(n);
    run(Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args([
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=sealtrail test CA",
        ])
        .arg("-keyout")
        .arg(p("ca.key"))
        .arg("-out")
        .arg(p("ca.pem")));
    run(Command::new("openssl")
        .args([
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-subj", "/CN=localhost"])
        .arg("-keyout")
        .arg(p("key.pem"))
        .arg("-out")
        .arg(p("srv.csr")));
    std::fs::write(p("ext.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n").unwrap();
    run(Command::new("openssl")
        .args(["x509", "-req", "-days", "2", "-CAcreateserial"])
        .arg("-in")
        .arg(p("srv.csr"))
        .arg("-CA")
        .arg(p("ca.pem"))
        .arg("-CAkey")
        .arg(p("ca.key"))
        .arg("-extfile")
        .arg(p("ext.cnf"))
        .arg("-out")
        .arg(p("cert.pem")));
    Tls {
        ca: p("ca.pem"),
        cert: p("cert.pem"),
        key: p("key.pem"),
    }
}

impl Rsyslog {
    fn out(&self) -> PathBuf {
        self.dir.join("out.log")
    }

    /// Starts rsyslogd in `dir` on `port` (0: any free one, read back from its port file).
    fn start(dir: &Path, port: u16, tls: Option<&Tls>) -> Rsyslog {
        std::fs::create_dir_all(dir.join("work")).unwrap();
        let port_file = dir.join("port");
        let _ = std::fs::remove_file(&port_file);
        let (global_tls, module_tls) = match tls {
            Some(t) => (
                format!(
                    "DefaultNetstreamDriverCAFile=\"{}\" DefaultNetstreamDriverCertFile=\"{}\" \
                     DefaultNetstreamDriverKeyFile=\"{}\"",
                    t.ca.display(),
                    t.cert.display(),
                    t.key.display()
                ),
                "StreamDriver.Name=\"gtls\" StreamDriver.Mode=\"1\" StreamDriver.AuthMode=\"anon\""
                    .to_owned(),
            ),
            None => (String::new(), String::new()),
        };
        let conf = format!(
            r#"global(workDirectory="{work}" maxMessageSize="128k" {global_tls})
module(load="imtcp" {module_tls})
template(name="rec" type="string" string="%msgid%|%structured-data%|%msg%\n")
input(type="imtcp" address="127.0.0.1" port="{port}" listenPortFileName="{port_file}")
action(type="omfile" file="{out}" template="rec")
"#,
            work = dir.join("work").display(),
            port_file = port_file.display(),
            out = dir.join("out.log").display(),
        );
        std::fs::write(dir.join("rsyslog.conf"), conf).unwrap();
        let child = Command::new("rsyslogd")
            .arg("-n")
            .arg("-f")
            .arg(dir.join("rsyslog.conf"))
            .arg("-i")
            .arg(dir.join("rsyslog.pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run rsyslogd ({e}): install the Debian packages rsyslog and \
                     rsyslog-gnutls, or run scripts/test, which installs them"
                )
            });
        let mut r = Rsyslog {
            dir: dir.to_owned(),
            child: Some(child),
            port,
            tls: tls.is_some(),
        };
        let deadline = Instant::now() + GUARD;
        loop {
            // rsyslog writes the port file only for port 0; a fixed port is probed instead.
            let listening = if port == 0 {
                std::fs::read_to_string(&port_file)
                    .ok()
                    .and_then(|t| t.trim().parse::<u16>().ok())
                    .filter(|p| *p != 0)
            } else {
                std::net::TcpStream::connect(("127.0.0.1", port))
                    .ok()
                    .map(|_| port)
            };
            if let Some(p) = listening {
                r.port = p;
                break;
            }
            if let Some(status) = r.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("rsyslogd exited at start-up: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "rsyslogd did not start listening"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        r
    }

    /// SIGTERM, then wait for the exit.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            run(Command::new("kill").arg(child.id().to_string()));
            child.wait().unwrap();
        }
    }

    fn restart(&mut self, tls: Option<&Tls>) {
        self.stop();
        assert_eq!(tls.is_some(), self.tls);
        let port = self.port;
        *self = Rsyslog::start(&self.dir.clone(), port, tls);
    }

    /// Every record written so far: index → (SD params, message JSON), all copies.
    fn records(&self) -> Vec<(BTreeMap<String, String>, serde_json::Value)> {
        let text = std::fs::read_to_string(self.out()).unwrap_or_default();
        text.lines()
            .filter(|l| !l.is_empty())
            .map(|line| {
                let mut parts = line.splitn(3, '|');
                let msgid = parts.next().unwrap();
                assert_eq!(msgid, "entry", "{line}");
                let sd = sd_params(parts.next().unwrap());
                let msg: serde_json::Value =
                    serde_json::from_str(parts.next().unwrap().trim()).unwrap();
                (sd, msg)
            })
            .collect()
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The params of `[sealtrail@32473 k="v" ...]` (with RFC 5424 escapes undone).
fn sd_params(sd: &str) -> BTreeMap<String, String> {
    let body = sd
        .strip_prefix("[sealtrail@32473 ")
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or_else(|| panic!("unexpected structured data {sd}"));
    let mut out = BTreeMap::new();
    let mut chars = body.chars().peekable();
    loop {
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            return out;
        }
        assert_eq!(chars.next(), Some('"'));
        let mut v = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => v.push(chars.next().unwrap()),
                '"' => break,
                c => v.push(c),
            }
        }
        out.insert(key.trim().to_owned(), v);
        if chars.peek() == Some(&' ') {
            chars.next();
        }
    }
}

fn entry(i: u64) -> NewEntry {
    NewEntry {
        principal: format!("p{}", i % 4),
        content_type: "application/json".into(),
        event_type: Some("door.open".into()),
        payload: format!("{{\"door\":{i},\"note\":\"a \\\"quoted\\\" ] bracket\"}}").into_bytes(),
    }
}

async fn append(log: &TestLog, from: u64, to: u64) {
    let seq = log.server.as_ref().unwrap().sequencer();
    for i in (from..to).step_by(10) {
        let r = seq
            .submit((i..(i + 10).min(to)).map(entry).collect(), None)
            .await
            .unwrap();
        assert_eq!(r.first_index, i);
    }
}

async fn until_all(r: &Rsyslog, n: u64) {
    let deadline = Instant::now() + GUARD;
    loop {
        let have: std::collections::BTreeSet<u64> = r
            .records()
            .iter()
            .map(|(sd, _)| sd["index"].parse().unwrap())
            .collect();
        if have.len() as u64 == n && have.iter().all(|i| *i < n) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "rsyslog has {} of {n} entries; missing {:?}",
            have.len(),
            (0..n)
                .filter(|i| !have.contains(i))
                .take(10)
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every record is the entry it names: SD and message agree with the stored leaf; copies of one
/// index are identical events.
fn check_records(store: &MemStore, r: &Rsyslog) -> usize {
    let mut by_index: BTreeMap<u64, (String, String)> = BTreeMap::new();
    let mut duplicates = 0;
    for (sd, msg) in r.records() {
        let i: u64 = sd["index"].parse().unwrap();
        let leaf = store.entry(i).unwrap().unwrap();
        let hash = sealtrail_spec::leaf_hash(&leaf).to_hex();
        assert_eq!(sd["origin"], ORIGIN);
        assert_eq!(sd["leaf_hash"], hash);
        let cs: u64 = sd["checkpoint_size"].parse().unwrap();
        assert!(cs > i);
        assert_eq!(msg["index"], i);
        assert_eq!(msg["leaf_hash"], hash.as_str());
        assert_eq!(msg["principal"], format!("p{}", i % 4));
        let want: serde_json::Value = serde_json::from_slice(&entry(i).payload).unwrap();
        assert_eq!(msg["payload"], want);
        let id = (sd["origin"].clone(), sd["leaf_hash"].clone());
        if let Some(prev) = by_index.insert(i, id.clone()) {
            assert_eq!(prev, id, "a duplicate of {i} is another event");
            duplicates += 1;
        }
    }
    duplicates
}

async fn stop_and_restart_mid_stream(transport: Transport) {
    let tmp = tempfile::tempdir().unwrap();
    let tls = (transport == Transport::Tls).then(|| make_certs(tmp.path()));
    let mut rs = Rsyslog::start(&tmp.path().join("rsyslog"), 0, tls.as_ref());
    let store = Arc::new(MemStore::new());
    let log = TestLog::start(config(), store.clone());
    let mut sink = SinkConfig::new("syslog", SinkKind::Syslog);
    sink.address = Some(format!("127.0.0.1:{}", rs.port));
    sink.transport = Some(transport);
    sink.ca_file = tls.as_ref().map(|t| t.ca.clone());
    sink.hostname = Some("test-host".into());
    sink.batch_entries = 15;
    sink.retry_initial_ms = 10;
    sink.retry_max_ms = 200;
    let registry = prometheus::Registry::new();
    let f = Forwarders::start(
        &[sink],
        store.clone(),
        ORIGIN,
        log.server.as_ref().unwrap().sequencer().subscribe(),
        ForwardMetrics::new(&registry).unwrap(),
    )
    .unwrap();
    append(&log, 0, 100).await;
    until_all(&rs, 100).await;
    // Stop rsyslog while entries are flowing, append more while it is down, restart it.
    append(&log, 100, 150).await;
    rs.stop();
    append(&log, 150, 200).await;
    rs.restart(tls.as_ref());
    append(&log, 200, 220).await;
    until_all(&rs, 220).await;
    let dups = check_records(&store, &rs);
    eprintln!("{transport:?}: 220 entries, {dups} duplicates");
    f.stop().await;
    log.stop().await;
    rs.stop();
}

#[tokio::test]
async fn rsyslog_over_tcp_receives_every_entry_across_a_restart() {
    stop_and_restart_mid_stream(Transport::Tcp).await;
}

#[tokio::test]
async fn rsyslog_over_tls_receives_every_entry_across_a_restart() {
    stop_and_restart_mid_stream(Transport::Tls).await;
}

#[tokio::test]
async fn udp_datagrams_are_single_rfc5424_messages() {
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let store = Arc::new(MemStore::new());
    let log = TestLog::start(config(), store.clone());
    let mut sink = SinkConfig::new("udp", SinkKind::Syslog);
    sink.address = Some(sock.local_addr().unwrap().to_string());
    sink.transport = Some(Transport::Udp);
    sink.hostname = Some("h".into());
    sink.facility = Some(4);
    let f = Forwarders::start(
        &[sink],
        store.clone(),
        ORIGIN,
        log.server.as_ref().unwrap().sequencer().subscribe(),
        ForwardMetrics::new(&prometheus::Registry::new()).unwrap(),
    )
    .unwrap();
    append(&log, 0, 5).await;
    let mut buf = vec![0u8; 70_000];
    for i in 0..5u64 {
        let n = tokio::time::timeout(GUARD, sock.recv(&mut buf))
            .await
            .unwrap()
            .unwrap();
        let msg = std::str::from_utf8(&buf[..n]).unwrap();
        // Facility 4, severity 6: PRI 38. No octet count on UDP.
        assert!(msg.starts_with("<38>1 "), "{msg}");
        let fields: Vec<&str> = msg.splitn(8, ' ').collect();
        assert_eq!(fields[2], "h");
        assert_eq!(fields[3], "sealtrail");
        assert_eq!(fields[5], "entry");
        let sd_end = msg.find("] ").unwrap();
        let sd_start = msg.find("[sealtrail@32473").unwrap();
        let sd = sd_params(&msg[sd_start..=sd_end]);
        assert_eq!(sd["index"], i.to_string());
        let leaf = store.entry(i).unwrap().unwrap();
        assert_eq!(sd["leaf_hash"], sealtrail_spec::leaf_hash(&leaf).to_hex());
        let json: serde_json::Value = serde_json::from_str(&msg[sd_end + 2..]).unwrap();
        assert_eq!(json["index"], i);
    }
    f.stop().await;
    log.stop().await;
}

/// Reads octet-counted frames from `conn` until `n` have arrived; returns their indices.
async fn read_frames(conn: &mut tokio::net::TcpStream, n: usize) -> Vec<u64> {
    use tokio::io::AsyncReadExt as _;
    let mut buf = Vec::new();
    let mut out = Vec::new();
    while out.len() < n {
        let mut chunk = [0u8; 4096];
        let k = tokio::time::timeout(GUARD, conn.read(&mut chunk))
            .await
            .unwrap()
            .unwrap();
        assert!(k > 0, "connection closed after {} frames", out.len());
        buf.extend_from_slice(&chunk[..k]);
        // Octet counting: "LEN SP MSG", repeated.
        while let Some(sp) = buf.iter().position(|b| *b == b' ') {
            let len: usize = std::str::from_utf8(&buf[..sp]).unwrap().parse().unwrap();
            if buf.len() < sp + 1 + len {
                break;
            }
            let msg = String::from_utf8(buf[sp + 1..sp + 1 + len].to_vec()).unwrap();
            let start = msg.find("[sealtrail@32473").unwrap();
            let end = msg.find("] ").unwrap();
            out.push(sd_params(&msg[start..=end])["index"].parse().unwrap());
            buf.drain(..sp + 1 + len);
        }
    }
    out
}

#[tokio::test]
async fn a_restarted_stream_sink_replays_its_window_before_the_cursor() {
    use sealtrail_server::store::CursorStore as _;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let store = Arc::new(MemStore::new());
    let log = TestLog::start(config(), store.clone());
    append(&log, 0, 60).await;
    // As if an earlier run had acknowledged 50 entries.
    store.set_sink_cursor("tcp", 50).unwrap();
    let mut sink = SinkConfig::new("tcp", SinkKind::Syslog);
    sink.address = Some(listener.local_addr().unwrap().to_string());
    sink.transport = Some(Transport::Tcp);
    sink.replay_entries = Some(20);
    let f = Forwarders::start(
        &[sink],
        store.clone(),
        ORIGIN,
        log.server.as_ref().unwrap().sequencer().subscribe(),
        ForwardMetrics::new(&prometheus::Registry::new()).unwrap(),
    )
    .unwrap();
    let (mut conn, _) = listener.accept().await.unwrap();
    assert_eq!(
        read_frames(&mut conn, 30).await,
        (30..60).collect::<Vec<_>>()
    );
    // The receiver goes away: the next batch finds the connection closed, reconnects and
    // re-sends the window before its cursor, then the new entries.
    drop(conn);
    append(&log, 60, 65).await;
    let (mut conn, _) = listener.accept().await.unwrap();
    let got = read_frames(&mut conn, 25).await;
    assert_eq!(got, (40..65).collect::<Vec<_>>());
    f.stop().await;
    log.stop().await;
}
