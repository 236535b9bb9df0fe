//! Access control over real sockets on 127.0.0.1: TLS, mutual TLS (principal from the client
//! certificate, unknown CAs and missing certificates refused), certificate reload, handshake and
//! header timeouts, per-IP rate limits. Certificates are made by rcgen per test. Every wait is
//! bounded by a guard timeout; none is a sleep used as synchronisation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use sealtrail_server::auth::SecurityEvents;
use sealtrail_server::config::Config;
use sealtrail_server::serve::Server;
use sealtrail_server::store::mem::MemStore;
use sealtrail_server::store::{EntryStore as _, LogStore as _, RecordState, RecordStore as _};
use sealtrail_server::tls::Tls;
use sealtrail_spec::envelope::LeafEnvelope;
use sealtrail_spec::record::PrivateRecord;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

const GUARD: Duration = Duration::from_secs(30);

struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        p.distinguished_name.push(DnType::CommonName, name);
        Ca {
            issuer: CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap(),
        }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A leaf certificate and its key, as PEM.
    fn issue(&self, cn: &str, sans: &[&str], usage: ExtendedKeyUsagePurpose) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut p =
            CertificateParams::new(sans.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
                .unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.extended_key_usages = vec![usage];
        let cert = p.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn server_cert(&self) -> (String, String) {
        self.issue(
            "localhost",
            &["localhost", "127.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    fn client_cert(&self, cn: &str) -> (String, String) {
        self.issue(cn, &[], ExtendedKeyUsagePurpose::ClientAuth)
    }
}

struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Files {
        Files {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

struct Running {
    addr: SocketAddr,
    store: Arc<MemStore>,
    events: Arc<SecurityEvents>,
    tls: Option<Arc<Tls>>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    async fn start(c: Config) -> Running {
        let store = Arc::new(MemStore::new());
        let server = Server::start(c, store.clone(), signer()).unwrap();
        let events = server.state().guard.events.clone();
        let tls = server.tls().cloned();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.run(listener, async {
            let _ = rx.await;
        }));
        Running {
            addr,
            store,
            events,
            tls,
            stop,
            task,
        }
    }

    async fn shutdown(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(GUARD, self.task)
            .await
            .unwrap()
            .unwrap();
    }

    /// Polls until a security event of `kind` was recorded.
    async fn wait_event(&self, kind: &str) {
        let deadline = Instant::now() + GUARD;
        while !self
            .events
            .recent(1000)
            .iter()
            .any(|e| e.kind.as_str() == kind)
        {
            assert!(Instant::now() < deadline, "no {kind} event");
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

fn tls_config(files: &Files, ca: &Ca) -> Config {
    let (cert, key) = ca.server_cert();
    let mut c = config();
    c.tls.cert_file = Some(files.write("server.pem", &cert));
    c.tls.key_file = Some(files.write("server.key", &key));
    c
}

fn connector(trust: &Ca, client: Option<&(String, String)>) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(trust.pem().as_bytes()).unwrap())
        .unwrap();
    let b = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let c = match client {
        None => b.with_no_client_auth(),
        Some((cert, key)) => b
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
            )
            .unwrap(),
    };
    tokio_rustls::TlsConnector::from(Arc::new(c))
}

/// One request over a fresh connection; `None` when the connection or handshake fails or the
/// server closes without an answer.
async fn request<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    method: &str,
    path: &str,
    body: &str,
) -> Option<(u16, String)> {
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.ok()?;
    let mut buf = Vec::new();
    tokio::time::timeout(GUARD, s.read_to_end(&mut buf))
        .await
        .expect("the server answered or closed in time")
        .ok()?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text.get(9..12)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())?;
    Some((status, body))
}

async fn tls_request(
    addr: SocketAddr,
    conn: &tokio_rustls::TlsConnector,
    method: &str,
    path: &str,
    body: &str,
) -> Option<(u16, String)> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let tls = tokio::time::timeout(GUARD, conn.connect(name, tcp))
        .await
        .expect("handshake finished in time")
        .ok()?;
    request(tls, method, path, body).await
}

fn principal_at(store: &MemStore, i: u64) -> String {
    let RecordState::Live(bytes) = store.record(i).unwrap() else {
        panic!("record {i} is not live");
    };
    let record = PrivateRecord::decode(&bytes).unwrap();
    let leaf = LeafEnvelope::decode(&store.entry(i).unwrap().unwrap()).unwrap();
    assert_eq!(record.check(&leaf), Ok(()), "the record matches its leaf");
    record.principal
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_records_the_certificate_principal_and_refuses_strangers() {
    let files = Files::new();
    let ca = Ca::new("clients and server CA");
    let mut c = tls_config(&files, &ca);
    c.listen = "0.0.0.0:8080".parse().unwrap(); // anonymous writes off
    c.tls.client_ca_file = Some(files.write("clients.pem", &ca.pem()));
    let run = Running::start(c).await;

    let good = connector(&ca, Some(&ca.client_cert("billing-client")));
    let (status, body) = tls_request(run.addr, &good, "POST", "/v1/entries", "{\"a\":1}")
        .await
        .expect("answered");
    assert_eq!(status, 201, "{body}");
    assert_eq!(principal_at(&run.store, 0), "cert:billing-client");

    // A certificate from another CA, and no certificate at all: the handshake fails.
    let stranger = Ca::new("someone else");
    let bad = connector(&ca, Some(&stranger.client_cert("intruder")));
    assert_eq!(
        tls_request(run.addr, &bad, "POST", "/v1/entries", "{}").await,
        None
    );
    let none = connector(&ca, None);
    assert_eq!(
        tls_request(run.addr, &none, "POST", "/v1/entries", "{}").await,
        None
    );
    // Plain HTTP on the TLS port gets no HTTP answer.
    let plain = TcpStream::connect(run.addr).await.unwrap();
    assert_eq!(request(plain, "POST", "/v1/entries", "{}").await, None);
    run.wait_event("tls_handshake").await;
    assert_eq!(run.store.tree_size().unwrap(), 1);

    // The server keeps serving good clients.
    let (status, _) = tls_request(run.addr, &good, "GET", "/v1/log", "")
        .await
        .unwrap();
    assert_eq!(status, 200);
    run.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn optional_client_certificates_fall_back_to_tokens_and_anonymous_rules() {
    let files = Files::new();
    let ca = Ca::new("ca");
    let mut c = tls_config(&files, &ca);
    c.listen = "0.0.0.0:8080".parse().unwrap();
    c.tls.client_ca_file = Some(files.write("clients.pem", &ca.pem()));
    c.tls.client_auth = sealtrail_server::tls::ClientAuth::Optional;
    c.tls.client_role = Some(sealtrail_server::auth::Role::Reader);
    let run = Running::start(c).await;
    // No certificate: anonymous, and anonymous writes are off here.
    let anon = connector(&ca, None);
    let (status, body) = tls_request(run.addr, &anon, "POST", "/v1/entries", "{}")
        .await
        .unwrap();
    assert_eq!(status, 401, "{body}");
    // A reader certificate cannot write.
    let reader = connector(&ca, Some(&ca.client_cert("dashboard")));
    let (status, body) = tls_request(run.addr, &reader, "POST", "/v1/entries", "{}")
        .await
        .unwrap();
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("cert:dashboard"), "{body}");
    assert_eq!(run.store.tree_size().unwrap(), 0);
    run.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_reload_without_a_restart() {
    let files = Files::new();
    let old = Ca::new("old");
    let new = Ca::new("new");
    let run = Running::start(tls_config(&files, &old)).await;
    let trusts_old = connector(&old, None);
    let trusts_new = connector(&new, None);
    assert_eq!(
        tls_request(run.addr, &trusts_old, "GET", "/v1/log", "")
            .await
            .unwrap()
            .0,
        200
    );
    assert_eq!(
        tls_request(run.addr, &trusts_new, "GET", "/v1/log", "").await,
        None
    );

    let (cert, key) = new.server_cert();
    files.write("server.pem", &cert);
    files.write("server.key", &key);
    let tls = run.tls.clone().unwrap();
    tls.reload().unwrap();
    assert_eq!(
        tls_request(run.addr, &trusts_new, "GET", "/v1/log", "")
            .await
            .unwrap()
            .0,
        200
    );
    assert_eq!(
        tls_request(run.addr, &trusts_old, "GET", "/v1/log", "").await,
        None
    );

    // A broken file fails the reload and keeps the current certificate.
    files.write("server.pem", "not a certificate");
    assert!(tls.reload().is_err());
    assert_eq!(
        tls_request(run.addr, &trusts_new, "GET", "/v1/log", "")
            .await
            .unwrap()
            .0,
        200
    );
    run.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_byte_at_a_time_clients_are_cut_off_under_tls() {
    let files = Files::new();
    let ca = Ca::new("ca");
    let mut c = tls_config(&files, &ca);
    c.limits.tls_handshake_timeout_secs = 1;
    c.limits.header_timeout_secs = 1;
    let run = Running::start(c).await;

    // Connects and never says hello: closed after the handshake timeout.
    let mut silent = TcpStream::connect(run.addr).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(GUARD, silent.read_to_end(&mut buf))
        .await
        .expect("closed in time")
        .ok();
    assert!(buf.is_empty());
    run.wait_event("tls_handshake").await;

    // Handshakes, then sends its headers one byte every 50 ms: 400 bytes would take 20 s; the
    // server cuts it off after about one.
    let conn = connector(&ca, None);
    let tcp = TcpStream::connect(run.addr).await.unwrap();
    let mut s = conn
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let head = format!(
        "GET /v1/log HTTP/1.1\r\nHost: localhost\r\nX-Pad: {}\r\n\r\n",
        "p".repeat(360)
    );
    let started = Instant::now();
    let mut sent = 0;
    for b in head.as_bytes() {
        if s.write_all(&[*b]).await.is_err() || s.flush().await.is_err() {
            break;
        }
        sent += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(started.elapsed() < GUARD, "never cut off");
    }
    assert!(
        sent < head.len(),
        "the server read every byte of a slow header"
    );
    run.wait_event("timeout").await;
    // Meanwhile, and afterwards, others are served.
    assert_eq!(
        tls_request(run.addr, &conn, "GET", "/v1/log", "")
            .await
            .unwrap()
            .0,
        200
    );
    assert_eq!(run.store.tree_size().unwrap(), 0);
    run.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_ip_rate_limit_answers_429_and_spares_health_checks() {
    let mut c = config();
    c.limits.ip_rate_per_sec = 0.001;
    c.limits.ip_burst = 2;
    let run = Running::start(c).await;
    let get = |path: &'static str| async move {
        request(TcpStream::connect(run.addr).await.unwrap(), "GET", path, "")
            .await
            .unwrap()
    };
    assert_eq!(get("/v1/log").await.0, 200);
    assert_eq!(get("/checkpoint").await.0, 200);
    let (status, body) = get("/v1/log").await;
    assert_eq!(status, 429);
    let j: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(j["error"]["code"], "rate_limited");
    let (status, body) = request(
        TcpStream::connect(run.addr).await.unwrap(),
        "POST",
        "/v1/entries",
        "{}",
    )
    .await
    .unwrap();
    assert_eq!(status, 429, "{body}");
    assert_eq!(get("/livez").await.0, 200);
    assert_eq!(run.store.tree_size().unwrap(), 0);
    run.wait_event("rate_limited").await;
    run.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn san_principals_and_certificates_without_the_configured_name() {
    let files = Files::new();
    let ca = Ca::new("ca");
    let mut c = tls_config(&files, &ca);
    c.tls.client_ca_file = Some(files.write("clients.pem", &ca.pem()));
    c.tls.client_principal = sealtrail_server::tls::ClientName::Dns;
    let run = Running::start(c).await;
    let with_dns = ca.issue(
        "common-name",
        &["ingest.svc.internal"],
        ExtendedKeyUsagePurpose::ClientAuth,
    );
    let good = connector(&ca, Some(&with_dns));
    let (status, body) = tls_request(run.addr, &good, "POST", "/v1/entries", "{}")
        .await
        .unwrap();
    assert_eq!(status, 201, "{body}");
    assert_eq!(principal_at(&run.store, 0), "cert:ingest.svc.internal");
    // A valid certificate without a DNS name is refused, not treated as anonymous (anonymous
    // writes are allowed on this loopback server).
    let nameless = connector(&ca, Some(&ca.client_cert("only-a-cn")));
    assert_eq!(
        tls_request(run.addr, &nameless, "POST", "/v1/entries", "{}").await,
        None
    );
    run.wait_event("tls_handshake").await;
    assert_eq!(run.store.tree_size().unwrap(), 1);
    run.shutdown().await;
}

/// Sends raw bytes and reads the answer until the server closes.
async fn raw(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let _ = s.write_all(bytes).await;
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(GUARD, s.read_to_end(&mut buf))
        .await
        .expect("closed in time");
    String::from_utf8_lossy(&buf).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_request_heads_are_security_events() {
    let run = Running::start(config()).await;
    let answer = raw(run.addr, b"NOT HTTP AT ALL\r\n\r\n").await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 400"),
        "{answer}"
    );
    run.wait_event("malformed").await;
    let mut head = String::from("GET /v1/log HTTP/1.1\r\nHost: t\r\n");
    for i in 0..200 {
        head.push_str(&format!("X-H{i}: v\r\n"));
    }
    head.push_str("\r\n");
    let answer = raw(run.addr, head.as_bytes()).await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
        "{answer}"
    );
    run.wait_event("oversized").await;
    // Others are still served.
    let ok = request(
        TcpStream::connect(run.addr).await.unwrap(),
        "GET",
        "/v1/log",
        "",
    )
    .await;
    assert_eq!(ok.unwrap().0, 200);
    run.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_tls_from_flags_and_reloads_on_sighup() {
    use tokio::io::AsyncBufReadExt as _;
    let files = Files::new();
    let old = Ca::new("old");
    let new = Ca::new("new");
    let (cert, key) = old.server_cert();
    let cert_path = files.write("server.pem", &cert);
    let key_path = files.write("server.key", &key);
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_sealtrail"))
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "text"])
        .arg("--data-dir")
        .arg(files.dir.path().join("data"))
        .arg("--tls-cert")
        .arg(&cert_path)
        .arg("--tls-key")
        .arg(&key_path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let addr: SocketAddr = loop {
        let line = tokio::time::timeout(GUARD, lines.next_line())
            .await
            .expect("the server started in time")
            .unwrap()
            .expect("the server exited early");
        if let Some(a) = line.strip_prefix("sealtrail: listening on https://") {
            break a.parse().unwrap();
        }
    };
    let trusts_old = connector(&old, None);
    let trusts_new = connector(&new, None);
    assert_eq!(
        tls_request(addr, &trusts_old, "GET", "/v1/log", "")
            .await
            .unwrap()
            .0,
        200
    );

    let (cert, key) = new.server_cert();
    files.write("server.pem", &cert);
    files.write("server.key", &key);
    let pid = child.id().unwrap().to_string();
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap();
    assert!(hup.success());
    // Poll until new connections get the new certificate.
    let deadline = Instant::now() + GUARD;
    while tls_request(addr, &trusts_new, "GET", "/v1/log", "")
        .await
        .is_none()
    {
        assert!(
            Instant::now() < deadline,
            "the certificate was never reloaded"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        tls_request(addr, &trusts_old, "GET", "/v1/log", "").await,
        None
    );
    let term = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(term.success());
    let status = tokio::time::timeout(GUARD, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status}");
}
