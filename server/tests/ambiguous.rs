//! One meaning for every ambiguous request: each of these requests could be read two ways, and
//! the server refuses it with a JSON error instead of picking one (issue 20). Checked through the
//! router, and on the store: nothing was written.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use common::*;
use sealtrail_server::auth::Role;
use sealtrail_server::store::LogStore;
use sealtrail_server::store::mem::MemStore;

const SUBMITTER: &str = "stk_submitter-token-for-ambiguity-tests-00000000";
const ADMIN: &str = "stk_admin-token-for-ambiguity-tests-000000000000";

fn start() -> (TestLog, Arc<MemStore>) {
    let mut c = config();
    c.limits.ip_rate_per_sec = 0.0;
    c.limits.principal_rate_per_sec = 0.0;
    c.auth.tokens = vec![
        token("ingest", Role::Submitter, SUBMITTER),
        token("ops", Role::Admin, ADMIN),
    ];
    let store = Arc::new(MemStore::new());
    (TestLog::start(c, store.clone()), store)
}

/// The JSON error shape, the status and the code.
fn refused(r: &Resp, status: StatusCode, code: &str) {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(
        r.headers["content-type"],
        "application/json",
        "errors are JSON: {}",
        r.text()
    );
    assert_eq!(r.error_code(), code, "{}", r.text());
}

#[tokio::test]
async fn json_that_is_not_utf8_is_refused_other_types_keep_any_bytes() {
    let (log, store) = start();
    let json = [("content-type", "application/json")];
    let bad = b"{\"name\":\"\xff\xfe\"}";
    refused(
        &log.req(Method::POST, "/v1/entries", &json, bad).await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    );
    let ndjson = [("content-type", "application/x-ndjson")];
    let lines = b"{\"a\":1}\n{\"b\":\"\xc3\x28\"}\n";
    let r = log
        .req(Method::POST, "/v1/entries/batch", &ndjson, lines)
        .await;
    refused(&r, StatusCode::BAD_REQUEST, "bad_request");
    assert!(r.text().contains("line 2"), "{}", r.text());
    assert_eq!(store.tree_size().unwrap(), 0, "nothing was written");
    // The same bytes as an opaque payload are fine.
    let octets = [("content-type", "application/octet-stream")];
    let r = log.req(Method::POST, "/v1/entries", &octets, bad).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    log.stop().await;
}

#[tokio::test]
async fn bad_paths_and_unknown_routes_answer_json() {
    let (log, _) = start();
    refused(
        &log.get("/v1/entries/%ff").await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    );
    refused(
        &log.get("/v1/proof/%ff").await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    );
    refused(
        &log.get("/tile/0/%ff").await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    refused(
        &log.get("/no/such/route").await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    refused(
        &log.req(Method::DELETE, "/checkpoint", &[], b"").await,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    );
    log.stop().await;
}

#[tokio::test]
async fn tlog_tiles_paths_are_canonical_and_ignore_queries_json_endpoints_refuse_them() {
    let (log, _) = start();
    for i in 0..20 {
        log.post_json("/v1/entries?wait=checkpoint", &format!("{{\"i\":{i}}}"))
            .await;
    }
    let plain = log.get("/tile/0/000.p/20").await;
    assert_eq!(plain.status, StatusCode::OK);
    // Percent-encoding is not the canonical path a static file server would serve.
    refused(
        &log.get("/tile/0/000%2ep/20").await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    refused(
        &log.get("/tile/entries/000%2Ep/20").await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    // tlog-tiles resources ignore query strings, as a static file server does.
    let q = log.get("/tile/0/000.p/20?cache=bust").await;
    assert_eq!((q.status, &q.body), (StatusCode::OK, &plain.body));
    assert_eq!(log.get("/checkpoint?x=1").await.status, StatusCode::OK);
    // The JSON endpoints refuse unknown parameters.
    for uri in ["/v1/log?x=1", "/v1/entries/0?x=1", "/v1/proof/0?x=1"] {
        refused(&log.get(uri).await, StatusCode::BAD_REQUEST, "bad_request");
    }
    log.stop().await;
}

#[tokio::test]
async fn repeated_headers_and_parameters_are_refused() {
    let (log, store) = start();
    let ok_auth = format!("Bearer {SUBMITTER}");
    // A valid token and a bogus one: neither wins.
    for pair in [
        [ok_auth.as_str(), "Bearer stk_bogus"],
        ["Bearer stk_bogus", ok_auth.as_str()],
    ] {
        let r = log
            .req(
                Method::POST,
                "/v1/entries",
                &[
                    ("content-type", "application/json"),
                    ("authorization", pair[0]),
                    ("authorization", pair[1]),
                ],
                b"{}",
            )
            .await;
        refused(&r, StatusCode::BAD_REQUEST, "bad_request");
    }
    for (name, a, b) in [
        ("x-event-type", "a", "b"),
        ("idempotency-key", "k1", "k2"),
        ("content-type", "application/json", "text/plain"),
    ] {
        let r = log
            .req(
                Method::POST,
                "/v1/entries",
                &[("content-type", "application/json"), (name, a), (name, b)],
                b"{}",
            )
            .await;
        refused(&r, StatusCode::BAD_REQUEST, "bad_request");
        assert!(r.text().contains(name), "{}", r.text());
    }
    let r = log.get("/v1/entries/search?type=a&type=b").await;
    refused(&r, StatusCode::BAD_REQUEST, "bad_request");
    assert!(r.text().contains("more than once"), "{}", r.text());
    refused(
        &log.get("/v1/entries?start=0&start=5").await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    );
    assert_eq!(store.tree_size().unwrap(), 0, "nothing was written");
    log.stop().await;
}

#[tokio::test]
async fn encoded_bodies_are_never_stored_as_payloads() {
    let (log, store) = start();
    let gz = [
        ("content-type", "application/json"),
        ("transfer-encoding", "gzip, chunked"),
    ];
    refused(
        &log.req(Method::POST, "/v1/entries", &gz, b"\x1f\x8b\x08")
            .await,
        StatusCode::NOT_IMPLEMENTED,
        "not_implemented",
    );
    let ce = [
        ("content-type", "application/json"),
        ("content-encoding", "gzip"),
    ];
    refused(
        &log.req(Method::POST, "/v1/entries", &ce, b"\x1f\x8b\x08")
            .await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
    assert_eq!(store.tree_size().unwrap(), 0);
    // Chunked framing alone is fine.
    let chunked = [
        ("content-type", "application/json"),
        ("transfer-encoding", "chunked"),
    ];
    let r = log.req(Method::POST, "/v1/entries", &chunked, b"{}").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    log.stop().await;
}

#[tokio::test]
async fn a_flood_of_auth_failures_hides_no_other_security_event() {
    let (log, _) = start();
    let auth = |t: &str| format!("Bearer {t}");
    let forbidden = log
        .req(
            Method::GET,
            "/v1/admin/holds",
            &[("authorization", auth(SUBMITTER).as_str())],
            b"",
        )
        .await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    // 1,200 cheap 401s: more than the view keeps of any one kind.
    for n in 0..1200 {
        let bogus = auth(&format!("stk_bogus-{}", n % 2));
        let r = log
            .req(
                Method::POST,
                "/v1/entries",
                &[
                    ("authorization", bogus.as_str()),
                    ("content-type", "application/json"),
                ],
                b"{}",
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let view = log
        .req(
            Method::GET,
            "/v1/admin/security-events?limit=1000",
            &[("authorization", auth(ADMIN).as_str())],
            b"",
        )
        .await
        .json();
    let events = view["events"].as_array().unwrap();
    assert!(
        events.iter().any(|e| e["kind"] == "forbidden"),
        "the forbidden attempt is still in view"
    );
    assert_eq!(view["counts"]["auth_failure"], 1200, "{}", view["counts"]);
    assert_eq!(view["counts"]["forbidden"], 1);
    log.stop().await;
}
