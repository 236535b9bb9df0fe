//! Access control through the router: API tokens, JWTs, roles, anonymous writes, rate limits,
//! load shedding, size caps and security events. Every refusal is checked for its status and JSON
//! error, and for writing nothing; accepted writes are checked by decoding the stored envelope
//! with the spec crate.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use common::*;
use sealtrail_server::auth::{AnonymousAccess, JwtAlgorithm, JwtConfig, Role};
use sealtrail_server::config::Config;
use sealtrail_server::store::mem::MemStore;
use sealtrail_server::store::{EntryStore as _, LogStore, RecordState, RecordStore as _};
use sealtrail_spec::envelope::LeafEnvelope;
use sealtrail_spec::record::PrivateRecord;
use sha2::{Digest, Sha256};
use tower::ServiceExt as _;

const SUBMITTER: &str = "stk_submitter-token-for-tests-000000000000000000";
const SUBMITTER2: &str = "stk_second-submitter-token-for-tests-00000000000";
const READER: &str = "stk_reader-token-for-tests-000000000000000000000";
const ADMIN: &str = "stk_admin-token-for-tests-0000000000000000000000";
const HS_SECRET: &str = "an-hs256-secret-of-at-least-32-bytes!";
const ISS: &str = "https://idp.test";
const AUD: &str = "sealtrail-test";

/// Tokens for every role; anonymous writes never.
fn locked_config() -> Config {
    let mut c = config();
    c.auth.anonymous_writes = AnonymousAccess::Never;
    c.auth.tokens = vec![
        token("ingest", Role::Submitter, SUBMITTER),
        token("ingest-2", Role::Submitter, SUBMITTER2),
        token("auditor", Role::Reader, READER),
        token("ops", Role::Admin, ADMIN),
    ];
    c
}

fn start(c: Config) -> (TestLog, Arc<MemStore>) {
    let store = Arc::new(MemStore::new());
    (TestLog::start(c, store.clone()), store)
}

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

async fn post(log: &TestLog, auth: Option<&str>, body: &str) -> Resp {
    let a = auth.map(bearer);
    let mut h = vec![("content-type", "application/json")];
    if let Some(a) = &a {
        h.push(("authorization", a.as_str()));
    }
    log.req(Method::POST, "/v1/entries", &h, body.as_bytes())
        .await
}

async fn get_as(log: &TestLog, uri: &str, auth: Option<&str>) -> Resp {
    let a = auth.map(bearer);
    let h: Vec<(&str, &str)> = a.iter().map(|a| ("authorization", a.as_str())).collect();
    log.req(Method::GET, uri, &h, b"").await
}

fn size(store: &MemStore) -> u64 {
    store.tree_size().unwrap()
}

/// The principal recorded in entry `i`, decoded from the stored leaf with the spec's decoder.
fn principal_at(store: &MemStore, i: u64) -> String {
    let leaf = store.entry(i).unwrap().expect("entry stored");
    let env = LeafEnvelope::decode(&leaf).unwrap();
    let RecordState::Live(bytes) = store.record(i).unwrap() else {
        panic!("record {i} is not live");
    };
    let record = PrivateRecord::decode(&bytes).unwrap();
    assert_eq!(record.check(&env), Ok(()), "the record matches its leaf");
    record.principal
}

fn assert_refused(r: &Resp, status: StatusCode, code: &str) {
    assert_eq!(r.status, status, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.error_code(), code);
}

#[tokio::test]
async fn tokens_roles_and_recorded_principals() {
    let (log, store) = start(locked_config());
    // Missing, wrong, and non-Bearer credentials: 401 with a challenge; nothing written.
    let r = post(&log, None, "{}").await;
    assert_refused(&r, StatusCode::UNAUTHORIZED, "unauthorized");
    assert_eq!(r.headers["www-authenticate"], "Bearer realm=\"sealtrail\"");
    let wrong = "stk_wrong-token-0000000000000000000000000000000";
    assert_refused(
        &post(&log, Some(wrong), "{}").await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    let r = log
        .req(
            Method::POST,
            "/v1/entries",
            &[("authorization", "Basic dXNlcjpwYXNz")],
            b"{}",
        )
        .await;
    assert_refused(&r, StatusCode::UNAUTHORIZED, "unauthorized");
    // A reader cannot write; a submitter cannot see admin endpoints.
    assert_refused(
        &post(&log, Some(READER), "{}").await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    let r = get_as(&log, "/v1/admin/security-events", Some(SUBMITTER)).await;
    assert_refused(&r, StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(size(&store), 0);

    // The submitter's entry records its principal.
    let r = post(&log, Some(SUBMITTER), r#"{"a":1}"#).await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(principal_at(&store, 0), "token:ingest");
    // Reads stay public.
    assert_eq!(log.get("/v1/entries/0").await.status, StatusCode::OK);

    // The admin sees the refusals, newest last, and metrics count them.
    let r = get_as(&log, "/v1/admin/security-events?limit=10", Some(ADMIN)).await;
    assert_eq!(r.status, StatusCode::OK);
    let kinds: Vec<String> = r.json()["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        kinds,
        [
            "auth_failure",
            "auth_failure",
            "auth_failure",
            "forbidden",
            "forbidden"
        ]
    );
    let metrics = log.get("/metrics").await.text();
    assert!(metrics.contains("sealtrail_security_events_total{kind=\"auth_failure\"} 3"));
    assert!(metrics.contains("sealtrail_security_events_total{kind=\"forbidden\"} 2"));
    // Kinds that did not happen are exported at 0, so alerts have a series to rate().
    assert!(metrics.contains("sealtrail_security_events_total{kind=\"tls_handshake\"} 0"));
    assert!(metrics.contains("sealtrail_security_events_total{kind=\"rate_limited\"} 0"));
    log.stop().await;
}

#[tokio::test]
async fn idempotency_keys_are_scoped_per_principal() {
    let (log, store) = start(locked_config());
    let send = |t: &'static str| {
        let log = &log;
        async move {
            let a = bearer(t);
            log.req(
                Method::POST,
                "/v1/entries",
                &[
                    ("content-type", "application/json"),
                    ("idempotency-key", "k1"),
                    ("authorization", &a),
                ],
                b"{\"same\":true}",
            )
            .await
        }
    };
    let a = send(SUBMITTER).await;
    let b = send(SUBMITTER2).await;
    let a2 = send(SUBMITTER).await;
    assert_eq!(a.status, StatusCode::CREATED);
    assert_eq!(
        b.status,
        StatusCode::CREATED,
        "another principal's key is its own"
    );
    assert_eq!(a2.status, StatusCode::OK);
    assert_eq!(a2.json()["index"], 0);
    assert_eq!(size(&store), 2);
    assert_eq!(principal_at(&store, 0), "token:ingest");
    assert_eq!(principal_at(&store, 1), "token:ingest-2");
    log.stop().await;
}

#[tokio::test]
async fn private_reads_and_metrics_need_roles() {
    let mut c = locked_config();
    c.auth.private_reads = true;
    c.auth.private_metrics = true;
    let (log, _store) = start(c);
    for uri in [
        "/checkpoint",
        "/v1/log",
        "/v1/entries",
        "/tile/0/000",
        "/nothing",
    ] {
        assert_refused(
            &get_as(&log, uri, None).await,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        );
        assert_ne!(
            get_as(&log, uri, Some(READER)).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        get_as(&log, "/checkpoint", Some(READER)).await.status,
        StatusCode::OK
    );
    assert_eq!(
        get_as(&log, "/checkpoint", Some(SUBMITTER)).await.status,
        StatusCode::OK
    );
    assert_refused(
        &get_as(&log, "/metrics", Some(READER)).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_eq!(
        get_as(&log, "/metrics", Some(ADMIN)).await.status,
        StatusCode::OK
    );
    // Health checks never need credentials.
    assert_eq!(log.get("/livez").await.status, StatusCode::OK);
    assert_eq!(log.get("/readyz").await.status, StatusCode::OK);
    log.stop().await;
}

#[tokio::test]
async fn anonymous_writes_follow_the_listen_address() {
    // Default: loopback listen address, anonymous writes allowed (the quick start).
    let (log, store) = start(config());
    let r = post(&log, None, "{}").await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(principal_at(&store, 0), "anonymous");
    assert_eq!(
        log.get("/v1/log").await.json()["access"]["anonymous_writes"],
        true
    );
    log.stop().await;

    // Reachable from other machines: credentials needed, same default setting.
    let mut c = config();
    c.listen = "0.0.0.0:8080".parse().unwrap();
    let (log, store) = start(c);
    assert_refused(
        &post(&log, None, "{}").await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    assert_eq!(
        log.get("/v1/log").await.json()["access"]["anonymous_writes"],
        false
    );
    assert_eq!(size(&store), 0);
    log.stop().await;

    let mut c = config();
    c.listen = "0.0.0.0:8080".parse().unwrap();
    c.auth.anonymous_writes = AnonymousAccess::Always;
    let (log, _) = start(c);
    assert_eq!(post(&log, None, "{}").await.status, StatusCode::CREATED);
    log.stop().await;
}

// ---- JWT ----

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn claims(role: &str) -> serde_json::Value {
    serde_json::json!({"sub": "alice", "iss": ISS, "aud": AUD, "exp": now() + 600, "role": role})
}

/// A JWT made by hand: header and claims as given, signed by `sign` over `header.claims`.
fn jwt(
    header: serde_json::Value,
    claims: &serde_json::Value,
    sign: impl Fn(&[u8]) -> Vec<u8>,
) -> String {
    let msg = format!(
        "{}.{}",
        B64URL.encode(header.to_string()),
        B64URL.encode(claims.to_string())
    );
    let sig = sign(msg.as_bytes());
    format!("{msg}.{}", B64URL.encode(sig))
}

fn hs256(secret: &[u8]) -> impl Fn(&[u8]) -> Vec<u8> {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    move |m| ring::hmac::sign(&key, m).as_ref().to_vec()
}

fn jwt_config(algorithm: JwtAlgorithm) -> JwtConfig {
    JwtConfig {
        algorithm,
        secret: None,
        secret_file: None,
        public_key_file: None,
        issuer: ISS.to_owned(),
        audience: AUD.to_owned(),
        principal_claim: "sub".to_owned(),
        role_claim: "role".to_owned(),
        leeway_secs: 0,
    }
}

fn with_jwt(j: JwtConfig) -> Config {
    let mut c = locked_config();
    c.auth.jwt = Some(j);
    c
}

#[tokio::test]
async fn hs256_jwts_are_checked_claim_by_claim() {
    let mut j = jwt_config(JwtAlgorithm::HS256);
    j.secret = Some(HS_SECRET.to_owned());
    let (log, store) = start(with_jwt(j));
    let hdr = serde_json::json!({"alg": "HS256", "typ": "JWT"});
    let good = claims("submitter");
    let sign = hs256(HS_SECRET.as_bytes());

    let mut bad: Vec<(&str, String)> = Vec::new();
    let mut c = good.clone();
    c["exp"] = (now() - 60).into();
    bad.push(("expired", jwt(hdr.clone(), &c, &sign)));
    let mut c = good.clone();
    c["nbf"] = (now() + 600).into();
    bad.push(("not yet valid", jwt(hdr.clone(), &c, &sign)));
    let mut c = good.clone();
    c["iss"] = "https://evil.test".into();
    bad.push(("wrong issuer", jwt(hdr.clone(), &c, &sign)));
    let mut c = good.clone();
    c["aud"] = "other-service".into();
    bad.push(("wrong audience", jwt(hdr.clone(), &c, &sign)));
    let mut c = good.clone();
    c.as_object_mut().unwrap().remove("exp");
    bad.push(("no expiry", jwt(hdr.clone(), &c, &sign)));
    bad.push((
        "another key",
        jwt(
            hdr.clone(),
            &good,
            hs256(b"another-secret-of-at-least-32-bytes!!"),
        ),
    ));
    // RFC 7515 section 4.1.11: critical extensions the server does not understand.
    bad.push((
        "crit",
        jwt(
            serde_json::json!({"alg": "HS256", "typ": "JWT", "crit": ["exp-ext"], "exp-ext": 1}),
            &good,
            &sign,
        ),
    ));
    bad.push((
        "alg none",
        jwt(serde_json::json!({"alg": "none"}), &good, |_| Vec::new()),
    ));
    bad.push((
        "alg none, HS signature",
        jwt(serde_json::json!({"alg": "none"}), &good, &sign),
    ));
    bad.push((
        "unpinned HS384",
        jwt(serde_json::json!({"alg": "HS384"}), &good, |m| {
            let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA384, HS_SECRET.as_bytes());
            ring::hmac::sign(&k, m).as_ref().to_vec()
        }),
    ));
    bad.push(("garbage", "a.b.c".to_owned()));
    let mut c = good.clone();
    c["sub"] = "".into();
    bad.push(("empty subject", jwt(hdr.clone(), &c, &sign)));
    let mut c = good.clone();
    c["sub"] = 42.into();
    bad.push(("numeric subject", jwt(hdr.clone(), &c, &sign)));
    for (what, t) in &bad {
        let r = post(&log, Some(t), "{}").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{what}: {}", r.text());
        assert_eq!(r.error_code(), "unauthorized", "{what}");
    }
    // A valid token without a writing role is forbidden, not unauthenticated.
    let r = post(
        &log,
        Some(&jwt(hdr.clone(), &claims("reader"), &sign)),
        "{}",
    )
    .await;
    assert_refused(&r, StatusCode::FORBIDDEN, "forbidden");
    let mut c = good.clone();
    c.as_object_mut().unwrap().remove("role");
    assert_refused(
        &post(&log, Some(&jwt(hdr.clone(), &c, &sign)), "{}").await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_eq!(size(&store), 0);

    let r = post(&log, Some(&jwt(hdr.clone(), &good, &sign)), "{}").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(principal_at(&store, 0), "jwt:alice");
    // A role array: the highest known role counts.
    let mut c = good.clone();
    c["role"] = serde_json::json!(["reader", "unknown", "admin"]);
    let r = get_as(
        &log,
        "/v1/admin/security-events",
        Some(&jwt(hdr, &c, &sign)),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    log.stop().await;
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

fn write_temp(dir: &tempfile::TempDir, name: &str, text: &[u8]) -> std::path::PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[tokio::test]
async fn rs256_jwts_and_algorithm_confusion() {
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let public_pem = std::fs::read(data.join("jwt-rsa.pub.pem")).unwrap();
    let pk8 = std::fs::read(data.join("jwt-rsa.pk8")).unwrap();
    let key = ring::rsa::KeyPair::from_pkcs8(&pk8).unwrap();
    let rng = ring::rand::SystemRandom::new();
    let rs256 = |m: &[u8]| {
        let mut sig = vec![0; key.public().modulus_len()];
        key.sign(&ring::signature::RSA_PKCS1_SHA256, &rng, m, &mut sig)
            .unwrap();
        sig
    };
    let mut j = jwt_config(JwtAlgorithm::RS256);
    j.public_key_file = Some(data.join("jwt-rsa.pub.pem"));
    let (log, store) = start(with_jwt(j));
    let good = claims("submitter");

    // HS/RS confusion: the RSA public key (PEM text, or its DER) used as an HMAC secret.
    let spki_der = base64::engine::general_purpose::STANDARD
        .decode(
            String::from_utf8(public_pem.clone())
                .unwrap()
                .lines()
                .filter(|l| !l.starts_with("-----"))
                .collect::<String>(),
        )
        .unwrap();
    for secret in [&public_pem[..], &spki_der[..]] {
        let t = jwt(serde_json::json!({"alg": "HS256"}), &good, hs256(secret));
        assert_refused(
            &post(&log, Some(&t), "{}").await,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        );
    }
    // alg none, and an RS256 header over a PS256-style junk signature.
    let t = jwt(serde_json::json!({"alg": "none"}), &good, |_| Vec::new());
    assert_refused(
        &post(&log, Some(&t), "{}").await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    let t = jwt(serde_json::json!({"alg": "RS256"}), &good, |_| vec![7; 256]);
    assert_refused(
        &post(&log, Some(&t), "{}").await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    assert_eq!(size(&store), 0);

    let t = jwt(
        serde_json::json!({"alg": "RS256", "typ": "JWT"}),
        &good,
        rs256,
    );
    let r = post(&log, Some(&t), "{}").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(principal_at(&store, 0), "jwt:alice");
    log.stop().await;
}

#[tokio::test]
async fn eddsa_and_es256_jwts_verify_with_pem_public_keys() {
    let rng = ring::rand::SystemRandom::new();
    let dir = tempfile::tempdir().unwrap();
    use ring::signature::KeyPair as _;

    // Ed25519: SPKI = fixed RFC 8410 prefix + 32-byte key.
    let ed = ring::signature::Ed25519KeyPair::from_pkcs8(
        ring::signature::Ed25519KeyPair::generate_pkcs8(&rng)
            .unwrap()
            .as_ref(),
    )
    .unwrap();
    let other_ed = ring::signature::Ed25519KeyPair::from_pkcs8(
        ring::signature::Ed25519KeyPair::generate_pkcs8(&rng)
            .unwrap()
            .as_ref(),
    )
    .unwrap();
    let mut spki = vec![
        0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
    ];
    spki.extend_from_slice(ed.public_key().as_ref());
    let mut j = jwt_config(JwtAlgorithm::EdDSA);
    j.public_key_file = Some(write_temp(
        &dir,
        "ed.pem",
        pem("PUBLIC KEY", &spki).as_bytes(),
    ));
    let (log, store) = start(with_jwt(j));
    let hdr = serde_json::json!({"alg": "EdDSA"});
    let forged = jwt(hdr.clone(), &claims("submitter"), |m| {
        other_ed.sign(m).as_ref().to_vec()
    });
    assert_refused(
        &post(&log, Some(&forged), "{}").await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    let t = jwt(hdr, &claims("submitter"), |m| ed.sign(m).as_ref().to_vec());
    assert_eq!(post(&log, Some(&t), "{}").await.status, StatusCode::CREATED);
    assert_eq!(principal_at(&store, 0), "jwt:alice");
    log.stop().await;

    // ES256 (P-256): SPKI = RFC 5480 prefix + 65-byte uncompressed point.
    let alg = &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING;
    let ec = ring::signature::EcdsaKeyPair::from_pkcs8(
        alg,
        ring::signature::EcdsaKeyPair::generate_pkcs8(alg, &rng)
            .unwrap()
            .as_ref(),
        &rng,
    )
    .unwrap();
    let mut spki = vec![
        0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08,
        0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
    ];
    spki.extend_from_slice(ec.public_key().as_ref());
    let mut j = jwt_config(JwtAlgorithm::ES256);
    j.public_key_file = Some(write_temp(
        &dir,
        "ec.pem",
        pem("PUBLIC KEY", &spki).as_bytes(),
    ));
    let (log, store) = start(with_jwt(j));
    let hdr = serde_json::json!({"alg": "ES256"});
    // An EdDSA-signed token against the ES256-pinned server.
    let t = jwt(
        serde_json::json!({"alg": "EdDSA"}),
        &claims("submitter"),
        |m| ed.sign(m).as_ref().to_vec(),
    );
    assert_refused(
        &post(&log, Some(&t), "{}").await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    let t = jwt(hdr, &claims("submitter"), |m| {
        ec.sign(&rng, m).unwrap().as_ref().to_vec()
    });
    assert_eq!(post(&log, Some(&t), "{}").await.status, StatusCode::CREATED);
    assert_eq!(size(&store), 1);
    log.stop().await;

    // A key of the wrong type for the pinned algorithm is a startup error.
    let mut c = locked_config();
    let mut j = jwt_config(JwtAlgorithm::RS256);
    j.public_key_file = Some(dir.path().join("ec.pem"));
    c.auth.jwt = Some(j);
    let e =
        sealtrail_server::serve::Server::start(c, Arc::new(MemStore::new()), signer()).unwrap_err();
    assert!(e.to_string().contains("does not match"), "{e}");
}

// ---- abuse resistance ----

#[tokio::test]
async fn principal_rate_limit_is_reached_and_recovers() {
    let mut c = locked_config();
    c.limits.principal_rate_per_sec = 0.5;
    c.limits.principal_burst = 1;
    let (log, store) = start(c);
    assert_eq!(
        post(&log, Some(SUBMITTER), "{}").await.status,
        StatusCode::CREATED
    );
    let r = post(&log, Some(SUBMITTER), "{}").await;
    assert_refused(&r, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "Retry-After {retry}");
    assert_eq!(size(&store), 1);
    // Another principal is not affected; anonymous readers are limited per IP address only.
    assert_eq!(
        post(&log, Some(SUBMITTER2), "{}").await.status,
        StatusCode::CREATED
    );
    for _ in 0..3 {
        assert_eq!(log.get("/v1/log").await.status, StatusCode::OK);
    }
    // The bucket refills: poll with a bounded deadline.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = post(&log, Some(SUBMITTER), "{}").await;
        if r.status == StatusCode::CREATED {
            break;
        }
        assert_refused(&r, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
        assert!(Instant::now() < deadline, "the limit never recovered");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(size(&store), 3);
    log.stop().await;
}

#[tokio::test]
async fn too_many_concurrent_requests_are_shed() {
    let mut c = config();
    c.limits.max_concurrent_requests = 1;
    let (log, store) = start(c);
    // Request 1 holds the only slot: its body arrives only when we say so.
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(1);
    let body = Body::new(Held(rx));
    let req = Request::post("/v1/entries")
        .header("content-type", "application/json")
        .body(body)
        .unwrap();
    let app = log.app.clone();
    let first = tokio::spawn(async move { app.oneshot(req).await.unwrap() });
    let deadline = Instant::now() + Duration::from_secs(30);
    let shed = loop {
        let r = log.get("/v1/log").await;
        if r.status == StatusCode::SERVICE_UNAVAILABLE {
            break r;
        }
        assert_eq!(r.status, StatusCode::OK);
        assert!(Instant::now() < deadline, "never shed");
        tokio::task::yield_now().await;
    };
    assert_eq!(shed.error_code(), "busy");
    assert_eq!(shed.headers["retry-after"], "1");
    assert_refused(
        &post(&log, None, "{}").await,
        StatusCode::SERVICE_UNAVAILABLE,
        "busy",
    );
    // Health checks are never shed.
    assert_eq!(log.get("/livez").await.status, StatusCode::OK);
    assert_eq!(size(&store), 0);
    tx.send(b"{\"held\":true}".to_vec()).await.unwrap();
    drop(tx);
    let r = tokio::time::timeout(Duration::from_secs(30), first)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(log.get("/v1/log").await.status, StatusCode::OK);
    assert_eq!(size(&store), 1);
    log.stop().await;
}

/// A request body whose bytes arrive only when the test sends them.
struct Held(tokio::sync::mpsc::Receiver<Vec<u8>>);

impl hyper::body::Body for Held {
    type Data = axum::body::Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|o| o.map(|v| Ok(hyper::body::Frame::data(v.into()))))
    }
}

#[tokio::test]
async fn oversized_and_malformed_requests_are_refused_and_recorded() {
    let mut c = locked_config();
    c.limits.max_payload_bytes = 100;
    c.limits.max_batch_entries = 2;
    let (log, store) = start(c);
    let big = format!("\"{}\"", "x".repeat(200));
    assert_refused(
        &post(&log, Some(SUBMITTER), &big).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );
    let a = bearer(SUBMITTER);
    let r = log
        .req(
            Method::POST,
            "/v1/entries/batch",
            &[
                ("content-type", "application/x-ndjson"),
                ("authorization", &a),
            ],
            b"1\n2\n3\n",
        )
        .await;
    assert_refused(&r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    assert_refused(
        &post(&log, Some(SUBMITTER), "{not json").await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    );
    assert_eq!(size(&store), 0);
    let r = get_as(&log, "/v1/admin/security-events", Some(ADMIN)).await;
    let events = r.json()["events"].as_array().unwrap().clone();
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["oversized", "oversized", "malformed"]);
    assert_eq!(events[0]["principal"], "token:ingest");
    assert_eq!(events[0]["path"], "/v1/entries");
    // Bad parameters of the admin view itself.
    let r = get_as(&log, "/v1/admin/security-events?limit=0", Some(ADMIN)).await;
    assert_refused(&r, StatusCode::BAD_REQUEST, "bad_request");
    log.stop().await;
}

#[test]
fn bad_auth_configuration_is_refused() {
    let bad = [
        "[auth]\nanonymous_writes = \"sometimes\"",
        "[[auth.tokens]]\nname = \"x\"\nrole = \"root\"\nsha256 = \"00\"",
        "[auth.jwt]\nalgorithm = \"none\"\nissuer = \"i\"\naudience = \"a\"",
        "[auth.jwt]\nalgorithm = \"HS512\"\nissuer = \"i\"\naudience = \"a\"",
    ];
    for text in bad {
        assert!(Config::from_toml(text).is_err(), "{text}");
    }
    let invalid = [
        "[[auth.tokens]]\nname = \"x\"\nrole = \"admin\"\nsha256 = \"00\"",
        "[auth.jwt]\nalgorithm = \"HS256\"\nsecret = \"short\"\nissuer = \"i\"\naudience = \"a\"",
        "[auth.jwt]\nalgorithm = \"RS256\"\nsecret = \"0123456789abcdef0123456789abcdef\"\nissuer = \"i\"\naudience = \"a\"",
        "[auth.jwt]\nalgorithm = \"HS256\"\nsecret = \"0123456789abcdef0123456789abcdef\"\nissuer = \"\"\naudience = \"a\"",
        "[tls]\ncert_file = \"c.pem\"",
        "[tls]\nclient_ca_file = \"ca.pem\"",
        "[limits]\nip_rate_per_sec = -1.0",
        "[limits]\nmax_concurrent_requests = 0",
        "[[auth.tokens]]\nname = \"\"\nrole = \"admin\"\nsha256 = \"0000000000000000000000000000000000000000000000000000000000000000\"",
    ];
    for text in invalid {
        let c = Config::from_toml(text).unwrap_or_else(|e| panic!("{text}: {e:?}"));
        assert!(c.validate().is_err(), "{text}");
    }
    let h = sealtrail_spec::to_hex(&Sha256::digest(b"t"));
    let dup = format!(
        "[[auth.tokens]]\nname = \"a\"\nrole = \"admin\"\nsha256 = \"{h}\"\n[[auth.tokens]]\nname = \"b\"\nrole = \"reader\"\nsha256 = \"{h}\"\n"
    );
    assert!(Config::from_toml(&dup).unwrap().validate().is_err());
}

#[tokio::test]
async fn token_create_prints_a_token_once_and_a_config_that_accepts_it() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sealtrail"))
        .args([
            "token",
            "create",
            "--name",
            "billing",
            "--role",
            "submitter",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(token.starts_with("stk_"));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        !stderr.contains(&token),
        "the token is printed once, on stdout"
    );
    // The printed lines are valid config; the server accepts the token with them.
    let snippet: String = stderr
        .lines()
        .skip_while(|l| !l.starts_with("[[auth.tokens]]"))
        .map(|l| format!("{l}\n"))
        .collect();
    let mut c = Config::from_toml(&snippet).unwrap();
    c.origin = ORIGIN.to_owned();
    c.auth.anonymous_writes = AnonymousAccess::Never;
    c.validate().unwrap();
    assert_eq!(
        c.auth.tokens[0].sha256,
        sealtrail_spec::to_hex(&Sha256::digest(token.as_bytes()))
    );
    let (log, store) = start(c);
    assert_eq!(
        post(&log, Some(&token), "{}").await.status,
        StatusCode::CREATED
    );
    assert_eq!(principal_at(&store, 0), "token:billing");
    log.stop().await;

    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_sealtrail"))
        .args(["token", "create", "--name", "x", "--role", "root"])
        .output()
        .unwrap();
    assert!(!bad.status.success());

    // --expires: a lifetime from now becomes expires_at, which the config accepts.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sealtrail"))
        .args(["token", "create", "--name", "tmp", "--role", "reader"])
        .args(["--expires", "90d"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    let snippet: String = stderr
        .lines()
        .skip_while(|l| !l.starts_with("[[auth.tokens]]"))
        .map(|l| format!("{l}\n"))
        .collect();
    let c = Config::from_toml(&snippet).unwrap();
    let at = c.auth.tokens[0].expires_ms().unwrap().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let days = (at - now) as f64 / 86_400_000.0;
    assert!((89.9..=90.0).contains(&days), "{days}");
    for bad in ["0d", "90", "soon", "1969-01-01"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_sealtrail"))
            .args([
                "token",
                "create",
                "--name",
                "t",
                "--role",
                "reader",
                "--expires",
                bad,
            ])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad}");
    }
}

#[tokio::test]
async fn secret_files_work_and_inline_secrets_are_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    let mut j = jwt_config(JwtAlgorithm::HS256);
    j.secret_file = Some(write_temp(
        &dir,
        "hs.secret",
        format!("{HS_SECRET}\n").as_bytes(),
    ));
    let (log, store) = start(with_jwt(j));
    let t = jwt(
        serde_json::json!({"alg": "HS256"}),
        &claims("submitter"),
        hs256(HS_SECRET.as_bytes()),
    );
    assert_eq!(post(&log, Some(&t), "{}").await.status, StatusCode::CREATED);
    assert_eq!(size(&store), 1);
    log.stop().await;

    let mut j = jwt_config(JwtAlgorithm::HS256);
    j.secret = Some(HS_SECRET.to_owned());
    let printed = toml::to_string_pretty(&with_jwt(j)).unwrap();
    assert!(!printed.contains(HS_SECRET), "{printed}");
    assert!(printed.contains("secret = \"<redacted>\""), "{printed}");
}

#[tokio::test]
async fn subscribers_receive_security_events_as_they_happen() {
    let (log, _store) = start(locked_config());
    let mut rx = log
        .server
        .as_ref()
        .unwrap()
        .state()
        .guard
        .events
        .subscribe();
    assert_refused(
        &post(&log, Some(READER), "{}").await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    let ev = rx.try_recv().expect("the event was broadcast");
    assert_eq!(ev.kind.as_str(), "forbidden");
    assert_eq!(ev.principal.as_deref(), Some("token:auditor"));
    assert_eq!(ev.method, "POST");
    assert_eq!(ev.path, "/v1/entries");
    log.stop().await;
}
