//! The witness over TLS (`[tls]`): a log's add-checkpoint and the monitoring read work over
//! https with a certificate the client trusts, and plain HTTP to the TLS port gets nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{TestLog, config, cosigner, listener, start_on};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_checkpoint_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert_pem, key_pem) = (cert.cert.pem(), cert.signing_key.serialize_pem());
    std::fs::write(dir.path().join("cert.pem"), &cert_pem).unwrap();
    std::fs::write(dir.path().join("key.pem"), &key_pem).unwrap();
    let log = TestLog::new("tls.example/log", 5, "e", 10);
    let mut c = config(dir.path(), vec![log.log_config(None)]);
    c.tls.cert_file = Some(dir.path().join("cert.pem"));
    c.tls.key_file = Some(dir.path().join("key.pem"));
    let l = listener().await;
    let port = l.local_addr().unwrap().port();
    let running = start_on(l, c, cosigner());

    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap())
        .resolve("localhost", ([127, 0, 0, 1], port).into())
        .build()
        .unwrap();
    let base = format!("https://localhost:{port}");
    let r = client
        .post(format!("{base}/add-checkpoint"))
        .body(log.request(0, 10))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let lines = r.bytes().await.unwrap();
    let sig = sealtrail_spec::witness::parse_cosignature_lines(&lines).unwrap();
    let text = log.checkpoint_text(10);
    cosigner()
        .verifier()
        .verify_cosignature(&text, &sig[0])
        .expect("a valid cosignature over TLS");
    let path = sealtrail_spec::witness::monitoring_checkpoint_path(&log.origin);
    let r = client.get(format!("{base}/{path}")).send().await.unwrap();
    assert_eq!(r.status(), 200);

    // Plain HTTP on the TLS port: no HTTP answer.
    let mut plain = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    plain
        .write_all(b"GET /livez HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    let _ = plain.read_to_end(&mut out).await;
    assert!(!String::from_utf8_lossy(&out).contains("200 OK"));
    running.stop().await;
}
