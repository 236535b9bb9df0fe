//! Tests over a real TCP socket on 127.0.0.1: slow clients are cut off, and a graceful shutdown
//! answers every request it accepted. Every wait is bounded by a guard timeout; none is a sleep.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use sealtrail_server::serve::Server;
use sealtrail_server::store::LogStore as _;
use sealtrail_server::store::mem::MemStore;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

const GUARD: Duration = Duration::from_secs(30);

async fn start(
    config: sealtrail_server::config::Config,
    store: Arc<MemStore>,
) -> (
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let server = Server::start(config, store, signer()).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.run(listener, async {
        let _ = rx.await;
    }));
    (addr, tx, task)
}

/// Reads until the server closes the connection; returns what it sent.
async fn read_to_close(s: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    tokio::time::timeout(GUARD, s.read_to_end(&mut buf))
        .await
        .expect("server closed the connection in time")
        .unwrap_or(0);
    String::from_utf8_lossy(&buf).into_owned()
}

fn post(body: &str) -> String {
    format!(
        "POST /v1/entries HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_and_slow_bodies_are_cut_off() {
    let mut c = config();
    c.limits.header_timeout_secs = 1;
    c.limits.request_timeout_secs = 1;
    let store = Arc::new(MemStore::new());
    let (addr, stop, task) = start(c, store.clone()).await;
    // Headers that never finish: the connection is closed without a request being handled.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"POST /v1/entries HTTP/1.1\r\nHost: t\r\n")
        .await
        .unwrap();
    let got = read_to_close(&mut s).await;
    assert!(got.is_empty() || got.starts_with("HTTP/1.1 408"), "{got:?}");
    // A body that never finishes: 408 with a JSON error, nothing written.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"POST /v1/entries HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"a\":")
        .await
        .unwrap();
    let got = read_to_close(&mut s).await;
    assert!(got.starts_with("HTTP/1.1 408"), "{got:?}");
    assert!(got.contains("\"code\":\"timeout\""), "{got:?}");
    assert_eq!(store.tree_size().unwrap(), 0);
    // A normal client still gets through.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(post("{\"ok\":true}").as_bytes()).await.unwrap();
    let got = read_to_close(&mut s).await;
    assert!(got.starts_with("HTTP/1.1 201"), "{got:?}");
    stop.send(()).unwrap();
    tokio::time::timeout(GUARD, task).await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_answers_accepted_requests() {
    let store = Arc::new(MemStore::new());
    let (addr, stop, task) = start(config(), store.clone()).await;
    // K requests whose bodies are still incomplete: accepted, handlers waiting for the body.
    let body = "{\"inflight\":true}";
    let head = post(body);
    let (first, last) = head.split_at(head.len() - 3);
    let mut pending = Vec::new();
    for _ in 0..8 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(first.as_bytes()).await.unwrap();
        pending.push(s);
    }
    // One complete request: once it is answered, the earlier connections (queued before it in
    // the listen backlog) have been accepted.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(post("{\"marker\":1}").as_bytes())
        .await
        .unwrap();
    assert!(read_to_close(&mut s).await.starts_with("HTTP/1.1 201"));
    // Shut down, then let the in-flight requests finish.
    stop.send(()).unwrap();
    for s in &mut pending {
        s.write_all(last.as_bytes()).await.unwrap();
    }
    for s in &mut pending {
        let got = read_to_close(s).await;
        assert!(got.starts_with("HTTP/1.1 201"), "{got:?}");
    }
    tokio::time::timeout(GUARD, task).await.unwrap().unwrap();
    assert_eq!(
        store.tree_size().unwrap(),
        9,
        "every answered request is in the store"
    );
    // New connections are refused once the server is gone.
    assert!(TcpStream::connect(addr).await.is_err());
}
