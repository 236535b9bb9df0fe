//! Bounded resources under hostile clients (issue 20): request bodies that arrive slowly or never
//! finish count against a global budget; past it, requests are refused with 503 before their
//! bodies are read, and the budget comes back when the slow bodies end.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{Method, Request, StatusCode};
use common::*;
use sealtrail_server::store::LogStore;
use sealtrail_server::store::mem::MemStore;
use tokio::sync::{mpsc, oneshot};
use tower::ServiceExt as _;

/// A body that sends `first`, tells `started` it is being read, then waits for more chunks on
/// the returned sender (dropping the sender ends it short: the request fails).
fn slow_body(first: &'static [u8]) -> (Body, mpsc::Sender<Bytes>, oneshot::Receiver<()>) {
    let (tx, rx) = mpsc::channel::<Bytes>(1);
    let (started_tx, started_rx) = oneshot::channel();
    let state = (Some(Bytes::from_static(first)), Some(started_tx), rx);
    let stream = futures_util::stream::unfold(state, |(first, started, mut rx)| async move {
        if let Some(chunk) = first {
            return Some((Ok::<_, std::io::Error>(chunk), (None, started, rx)));
        }
        if let Some(s) = started {
            let _ = s.send(());
        }
        let chunk = rx.recv().await?;
        Some((Ok(chunk), (None, None, rx)))
    });
    (Body::from_stream(stream), tx, started_rx)
}

fn post(len: usize, body: Body) -> Request<Body> {
    Request::builder()
        .method(Method::POST)
        .uri("/v1/entries")
        .header("content-type", "application/json")
        .header("content-length", len.to_string())
        .body(body)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfinished_bodies_hold_a_bounded_budget_and_the_rest_get_503() {
    let mut c = config();
    c.limits.max_payload_bytes = 3000;
    c.limits.max_batch_bytes = 3000;
    c.limits.max_inflight_body_bytes = 4000;
    c.limits.request_timeout_secs = 60;
    // The budget must hold at least the largest single body, admin requests included.
    assert!(c.validate().is_err());
    c.limits.max_inflight_body_bytes = 2 << 20;
    c.limits.max_payload_bytes = 1 << 20;
    c.limits.max_batch_bytes = 1 << 20;
    c.validate().unwrap();
    let store = Arc::new(MemStore::new());
    let log = TestLog::start(c, store.clone());
    // Two slow clients declare 1 MiB bodies and send a few bytes: the whole budget is theirs.
    let mut held = Vec::new();
    for _ in 0..2 {
        let (body, more, started) = slow_body(b"{\"a\":\"");
        let app = log.app.clone();
        let task = tokio::spawn(async move { app.oneshot(post(1 << 20, body)).await.unwrap() });
        started.await.unwrap();
        held.push((task, more));
    }
    // A third body does not fit: 503 with Retry-After, at once, and nothing is read or written.
    let r = log
        .app
        .clone()
        .oneshot(post(2, Body::from("{}")))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers()["retry-after"], "1");
    // Reads and health checks need no body and still answer.
    assert_eq!(log.get("/livez").await.status, StatusCode::OK);
    assert_eq!(log.get("/v1/log").await.status, StatusCode::OK);
    // The slow clients give up: their bodies end short, and their budget comes back.
    for (task, more) in held {
        drop(more);
        let r = task.await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    }
    let r = log.post_json("/v1/entries", "{}").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(store.tree_size().unwrap(), 1);
    log.stop().await;
}
