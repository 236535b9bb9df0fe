//! Property test over the whole request path, access control included: random methods, paths,
//! queries, headers (credentials above all) and bodies never panic, never get a 5xx other than
//! 503, always get a JSON error when refused, and never write without a 2xx answer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Method, Request, StatusCode};
use common::*;
use proptest::prelude::*;
use proptest::test_runner::{Config as PtConfig, TestRunner};
use sealtrail_server::auth::{AnonymousAccess, JwtAlgorithm, JwtConfig, Role, TokenEntry};
use sealtrail_server::store::LogStore as _;
use sealtrail_server::store::mem::MemStore;
use sha2::{Digest, Sha256};
use tower::ServiceExt as _;

const TOKEN: &str = "stk_fuzz-submitter-token-000000000000000000000";

fn fuzz_config() -> sealtrail_server::config::Config {
    let mut c = config();
    c.auth.anonymous_writes = AnonymousAccess::Never;
    c.auth.private_reads = true;
    c.auth.tokens = vec![TokenEntry {
        name: "fuzz".into(),
        role: Role::Admin,
        sha256: Sha256::digest(TOKEN.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
        expires_at: None,
    }];
    c.auth.jwt = Some(JwtConfig {
        algorithm: JwtAlgorithm::HS256,
        secret: Some("fuzz-secret-fuzz-secret-fuzz-secret!".into()),
        secret_file: None,
        public_key_file: None,
        issuer: "i".into(),
        audience: "a".into(),
        principal_claim: "sub".into(),
        role_claim: "role".into(),
        leeway_secs: 0,
    });
    c.limits.max_payload_bytes = 512;
    c.limits.max_batch_bytes = 2048;
    c.limits.max_batch_entries = 4;
    c
}

fn method() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => Just("GET".to_owned()),
        4 => Just("POST".to_owned()),
        1 => Just("HEAD".to_owned()),
        1 => Just("PUT".to_owned()),
        1 => Just("DELETE".to_owned()),
        1 => "[A-Z]{1,8}",
    ]
}

fn path() -> impl Strategy<Value = String> {
    let seg = prop_oneof![
        Just("v1"),
        Just("entries"),
        Just("batch"),
        Just("log"),
        Just("proof"),
        Just("inclusion"),
        Just("consistency"),
        Just("tile"),
        Just("data"),
        Just("admin"),
        Just("security-events"),
        Just("checkpoint"),
        Just("metrics"),
        Just("livez"),
        Just("0"),
        Just("x001"),
        Just("18446744073709551616"),
        Just("%00"),
        Just(".."),
    ];
    let known = prop_oneof![
        4 => Just("/v1/entries"),
        2 => Just("/v1/entries/batch"),
        1 => Just("/v1/entries/0"),
        1 => Just("/v1/log"),
        1 => Just("/v1/admin/security-events"),
        1 => Just("/v1/proof/inclusion"),
        1 => Just("/checkpoint"),
        1 => Just("/metrics"),
    ]
    .prop_map(|p| p.split('/').skip(1).map(str::to_owned).collect::<Vec<_>>());
    let segs = prop_oneof![
        3 => known,
        1 => prop::collection::vec(seg.prop_map(str::to_owned), 0..5),
    ];
    (
        segs,
        prop_oneof![3 => Just(String::new()), 1 => "[a-z0-9=&%.-]{0,24}"],
    )
        .prop_map(|(segs, q)| {
            let p = format!("/{}", segs.join("/"));
            if q.is_empty() { p } else { format!("{p}?{q}") }
        })
}

fn auth_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => Just(format!("Bearer {TOKEN}").into_bytes()),
        1 => "Bearer stk_[A-Za-z0-9_-]{0,50}".prop_map(String::into_bytes),
        1 => "(Bearer|bearer|Basic|) [A-Za-z0-9_.=-]{0,80}".prop_map(String::into_bytes),
        1 => "Bearer e[A-Za-z0-9_-]{0,40}\\.[A-Za-z0-9_-]{0,40}\\.[A-Za-z0-9_-]{0,40}"
            .prop_map(String::into_bytes),
        1 => prop::collection::vec(any::<u8>(), 0..64),
    ]
}

fn headers() -> impl Strategy<Value = Vec<(String, Vec<u8>)>> {
    let name = prop_oneof![
        Just("authorization"),
        Just("content-type"),
        Just("idempotency-key"),
        Just("x-event-type"),
        Just("content-length"),
        Just("x-request-id"),
    ];
    let value = prop_oneof![
        Just(b"application/json".to_vec()),
        Just(b"application/x-ndjson".to_vec()),
        "[ -~]{0,40}".prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 0..40),
    ];
    let auth = prop::option::weighted(
        0.8,
        auth_value().prop_map(|v| ("authorization".to_owned(), v)),
    );
    let any_header = (name, value).prop_map(|(n, v)| (n.to_owned(), v));
    // The credential goes first, so it is the one a duplicate Authorization header cannot hide.
    (auth, prop::collection::vec(any_header, 0..4))
        .prop_map(|(a, rest)| a.into_iter().chain(rest).collect())
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        2 => Just(b"{\"a\":1}".to_vec()),
        1 => Just(b"[1,2,3]".to_vec()),
        2 => prop::collection::vec(any::<u8>(), 0..1200),
    ]
}

#[test]
fn random_requests_never_panic_or_fail_inside() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let store = Arc::new(MemStore::new());
    let log = TestLog::start(fuzz_config(), store.clone());
    let mut runner = TestRunner::new(PtConfig {
        cases: 3000,
        failure_persistence: None,
        ..PtConfig::default()
    });
    let accepted_writes = std::cell::Cell::new(0u64);
    let statuses = std::cell::RefCell::new(std::collections::BTreeMap::<u16, u32>::new());
    runner
        .run(&(method(), path(), headers(), body()), |(m, p, hs, b)| {
            let Ok(m) = Method::from_bytes(m.as_bytes()) else {
                return Ok(());
            };
            let mut req = Request::builder().method(m.clone()).uri(p.as_str());
            for (n, v) in &hs {
                if let (Ok(n), Ok(v)) =
                    (HeaderName::try_from(n.as_str()), HeaderValue::from_bytes(v))
                {
                    req = req.header(n, v);
                }
            }
            let Ok(req) = req.body(Body::from(b.clone())) else {
                return Ok(());
            };
            let before = store.tree_size().unwrap();
            let (status, body) = rt.block_on(async {
                let resp = log.app.clone().oneshot(req).await.unwrap();
                let status = resp.status();
                let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
                    .await
                    .unwrap();
                (status, body)
            });
            prop_assert!(
                !status.is_server_error() || status == StatusCode::SERVICE_UNAVAILABLE,
                "{m} {p} -> {status}: {}",
                String::from_utf8_lossy(&body)
            );
            if status.is_client_error() && m != Method::HEAD {
                let j: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
                    TestCaseError::fail(format!("{m} {p} -> {status}: not JSON: {e}"))
                })?;
                prop_assert!(j["error"]["code"].is_string() && j["error"]["message"].is_string());
            }
            *statuses.borrow_mut().entry(status.as_u16()).or_default() += 1;
            let after = store.tree_size().unwrap();
            if after > before {
                prop_assert!(status.is_success(), "{m} {p} wrote with {status}");
                accepted_writes.set(accepted_writes.get() + (after - before));
            }
            Ok(())
        })
        .unwrap();
    // The generator reaches the handlers past authentication, the write path included.
    let statuses = statuses.into_inner();
    eprintln!(
        "statuses {statuses:?}, accepted writes {}",
        accepted_writes.get()
    );
    assert!(accepted_writes.get() > 0);
    assert!(statuses.contains_key(&401) && statuses.contains_key(&200));
    rt.block_on(log.stop());
}
