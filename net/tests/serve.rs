//! The shared accept loop over real sockets on 127.0.0.1: plain HTTP with the connection's
//! peer on every request, TLS, mutual TLS naming a principal, refused and timed-out handshakes,
//! certificate reload and graceful shutdown.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Extension;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use sealtrail_net::http::{ConnInfo, HttpOptions, TlsSetup, serve};
use sealtrail_net::tls::{Tls, TlsFiles};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

fn opts() -> HttpOptions {
    HttpOptions {
        header_timeout: Duration::from_secs(5),
        max_connections: 16,
        max_connections_per_ip: 0,
        shutdown_grace: Duration::from_secs(5),
        write_timeout: Duration::from_secs(30),
        tls_handshake_timeout: Duration::from_millis(300),
    }
}

/// A router answering with what it knows of the connection.
fn app() -> axum::Router {
    axum::Router::new().route(
        "/who",
        axum::routing::get(|Extension(c): Extension<ConnInfo>| async move {
            format!(
                "{} {}",
                c.addr.ip(),
                c.cert_principal.as_deref().unwrap_or("-")
            )
        }),
    )
}

struct Running {
    addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

async fn start(tls: Option<TlsSetup>) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, app(), opts(), tls, None, None, async {
        let _ = rx.await;
    }));
    Running { addr, stop, task }
}

impl Running {
    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("graceful shutdown")
            .unwrap();
    }
}

/// [`get`] over a new connection to `addr`, or `None` if the server closed it first.
async fn try_get(addr: SocketAddr) -> Option<String> {
    let mut s = TcpStream::connect(addr).await.ok()?;
    s.write_all(b"GET /who HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).await.ok()?;
    Some(out)
}

/// One HTTP/1.1 GET over any stream; the whole response.
async fn get<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(mut s: S) -> String {
    s.write_all(b"GET /who HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test]
async fn plain_http_carries_the_peer() {
    let r = start(None).await;
    let resp = get(TcpStream::connect(r.addr).await.unwrap()).await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.ends_with("127.0.0.1 -"), "{resp}");
    r.stop().await;
}

struct Ca(CertifiedIssuer<'static, KeyPair>);

impl Ca {
    fn new(name: &str) -> Ca {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, name);
        Ca(CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap())
    }

    /// A certificate for `cn` (and `localhost`) and its key, as PEM.
    fn issue(&self, cn: &str) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        (
            p.signed_by(&key, &self.0).unwrap().pem(),
            key.serialize_pem(),
        )
    }
}

fn write(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// A TLS client trusting `ca`, presenting `client` if given.
async fn tls_get(
    addr: SocketAddr,
    ca: &Ca,
    client: Option<(String, String)>,
) -> std::io::Result<String> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca.0.pem().as_bytes()).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let b = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match client {
        None => b.with_no_client_auth(),
        Some((cert, key)) => b
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
            )
            .unwrap(),
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await?;
    let mut s = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await?;
    // With TLS 1.3 a refused client certificate shows only when reading.
    s.write_all(b"GET /who HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await?;
    let mut out = String::new();
    s.read_to_string(&mut out).await?;
    Ok(out)
}

type Refusals = Arc<Mutex<Vec<String>>>;

fn setup(tls: Tls) -> (TlsSetup, Refusals, Arc<Tls>) {
    let refusals: Refusals = Arc::default();
    let seen = refusals.clone();
    let tls = Arc::new(tls);
    let setup = TlsSetup {
        tls: tls.clone(),
        principal: Arc::new(|certs: Option<&[CertificateDer<'_>]>| {
            Ok(certs.map(|c| format!("cert with {} bytes", c[0].len()).into()))
        }),
        refused: Arc::new(move |_, why: &str| seen.lock().unwrap().push(why.to_owned())),
    };
    (setup, refusals, tls)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_mutual_tls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let (server_ca, client_ca, stranger) =
        (Ca::new("server ca"), Ca::new("client ca"), Ca::new("x"));
    let (cert, key) = server_ca.issue("localhost");
    let files = TlsFiles {
        cert_file: write(dir.path(), "cert.pem", &cert),
        key_file: write(dir.path(), "key.pem", &key),
        client_ca_file: Some(write(dir.path(), "clients.pem", &client_ca.0.pem())),
        client_cert_optional: true,
    };
    let (tls, refusals, _) = setup(Tls::load(files).unwrap());
    let r = start(Some(tls)).await;
    // No client certificate (allowed here): TLS, no principal.
    let resp = tls_get(r.addr, &server_ca, None).await.unwrap();
    assert!(resp.ends_with("127.0.0.1 -"), "{resp}");
    // A client certificate from the client CA: its principal reaches the handler.
    let resp = tls_get(r.addr, &server_ca, Some(client_ca.issue("app")))
        .await
        .unwrap();
    assert!(resp.contains("127.0.0.1 cert with"), "{resp}");
    // One from another CA: refused, and reported.
    assert!(
        tls_get(r.addr, &server_ca, Some(stranger.issue("app")))
            .await
            .is_err()
    );
    // Plain HTTP on a TLS port: refused.
    let plain = get(TcpStream::connect(r.addr).await.unwrap()).await;
    assert!(!plain.contains("200"), "{plain}");
    r.stop().await;
    let refusals = refusals.lock().unwrap();
    assert_eq!(refusals.len(), 2, "{refusals:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_handshakes_time_out_and_certificates_reload() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let (old_ca, new_ca) = (Ca::new("old"), Ca::new("new"));
    let (cert, key) = old_ca.issue("localhost");
    let files = TlsFiles {
        cert_file: write(dir.path(), "cert.pem", &cert),
        key_file: write(dir.path(), "key.pem", &key),
        client_ca_file: None,
        client_cert_optional: false,
    };
    let (setup, refusals, tls) = setup(Tls::load(files).unwrap());
    let r = start(Some(setup)).await;
    // A client that connects and says nothing is dropped after the handshake timeout.
    let mut silent = TcpStream::connect(r.addr).await.unwrap();
    let mut buf = [0u8; 1];
    let n = tokio::time::timeout(Duration::from_secs(10), silent.read(&mut buf))
        .await
        .expect("the server closed the silent connection")
        .unwrap_or(0);
    assert_eq!(n, 0);
    assert!(
        refusals
            .lock()
            .unwrap()
            .iter()
            .any(|w| w.contains("timed out"))
    );
    // New files, reloaded: new connections see the new certificate, a broken file keeps it.
    assert!(tls_get(r.addr, &old_ca, None).await.is_ok());
    let (cert, key) = new_ca.issue("localhost");
    write(dir.path(), "cert.pem", &cert);
    write(dir.path(), "key.pem", &key);
    tls.reload().unwrap();
    assert!(tls_get(r.addr, &old_ca, None).await.is_err());
    assert!(tls_get(r.addr, &new_ca, None).await.is_ok());
    write(dir.path(), "cert.pem", "not a certificate");
    assert!(tls.reload().is_err());
    assert!(tls_get(r.addr, &new_ca, None).await.is_ok());
    r.stop().await;
}

#[tokio::test]
async fn one_address_cannot_take_every_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let hits = Arc::new(Mutex::new(Vec::new()));
    let seen = hits.clone();
    let on_limit: Arc<sealtrail_net::http::ConnLimitFn> = Arc::new(move |l| {
        seen.lock().unwrap().push(l);
    });
    let mut o = opts();
    o.max_connections_per_ip = 2;
    let task = tokio::spawn(serve(
        listener,
        app(),
        o,
        None,
        None,
        Some(on_limit),
        async {
            let _ = rx.await;
        },
    ));
    // Two idle connections from 127.0.0.1 fill its share; the third is closed at once.
    let _a = TcpStream::connect(addr).await.unwrap();
    let _b = TcpStream::connect(addr).await.unwrap();
    let mut c = TcpStream::connect(addr).await.unwrap();
    let mut buf = [0u8; 1];
    let n = tokio::time::timeout(Duration::from_secs(10), c.read(&mut buf))
        .await
        .expect("closed, not left waiting")
        .unwrap_or(0);
    assert_eq!(n, 0, "the third connection from one address is closed");
    assert_eq!(
        hits.lock().unwrap().as_slice(),
        [sealtrail_net::http::ConnLimit::PerIp(
            "127.0.0.1".parse().unwrap()
        )]
    );
    // Another address is served meanwhile (any 127.0.0.0/8 address is loopback on Linux).
    let other = tokio::net::TcpSocket::new_v4().unwrap();
    other.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let body = get(other.connect(addr).await.unwrap()).await;
    assert!(body.ends_with("127.0.0.2 -"), "{body}");
    // When one of the first two ends, the address may connect again (the server notices the
    // end on its own time: bounded retries, each refused connection is closed at once).
    drop(_a);
    let mut served = None;
    for _ in 0..1000 {
        served = try_get(addr).await.filter(|b| b.ends_with("127.0.0.1 -"));
        if served.is_some() {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(served.is_some(), "the address was never let in again");
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn a_client_that_never_reads_its_answer_is_let_go() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    // One connection at a time: the next one is served only once the stalled one is closed.
    let mut o = opts();
    o.max_connections = 1;
    o.write_timeout = Duration::from_millis(300);
    let big = axum::Router::new()
        .route(
            "/big",
            axum::routing::get(|| async { vec![b'x'; 32 << 20] }),
        )
        .merge(app());
    let task = tokio::spawn(serve(listener, big, o, None, None, None, async {
        let _ = rx.await;
    }));
    // A client with a tiny receive window asks for 32 MiB and reads nothing.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stalled = socket.connect(addr).await.unwrap();
    stalled
        .write_all(b"GET /big HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    // Without the write timeout this waits forever for the only connection slot.
    let body = tokio::time::timeout(
        Duration::from_secs(20),
        get(TcpStream::connect(addr).await.unwrap()),
    )
    .await
    .expect("the stalled connection was closed and this one served");
    assert!(body.ends_with("127.0.0.1 -"), "{body}");
    drop(stalled);
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap();
}
