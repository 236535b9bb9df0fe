//! Private records, erasure, legal holds and retention, through the router: who reads content,
//! what an erasure destroys and records, what a hold blocks, what retention expires. Every check
//! on content is made against the stored leaf with the spec crate's commitment, never against the
//! server's word alone.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use common::*;
use sealtrail_server::auth::{AnonymousAccess, Role};
use sealtrail_server::config::Config;
use sealtrail_server::retention::{RetentionRule, run_once};
use sealtrail_server::store::mem::MemStore;
use sealtrail_server::store::{EntryStore as _, LogStore, RecordState, RecordStore as _};
use sealtrail_spec::envelope::LeafEnvelope;
use sealtrail_spec::merkle::verify_inclusion;
use sealtrail_spec::record::PrivateRecord;
use sealtrail_spec::{Hash, leaf_hash};

const SUBMITTER: &str = "stk_submitter-token-for-privacy-tests-0000000000";
const READER: &str = "stk_reader-token-for-privacy-tests-00000000000000";
const ADMIN: &str = "stk_admin-token-for-privacy-tests-000000000000000";
const MARKER: &str = "MARKER-7f3a9c-personal-data";

/// A server reachable from other machines, with a token per role.
fn remote_config() -> Config {
    let mut c = config();
    c.listen = "0.0.0.0:8080".parse().unwrap();
    c.auth.anonymous_writes = AnonymousAccess::Never;
    c.auth.tokens = vec![
        token("ingest", Role::Submitter, SUBMITTER),
        token("auditor", Role::Reader, READER),
        token("ops", Role::Admin, ADMIN),
    ];
    c
}

fn start(c: Config) -> (TestLog, Arc<MemStore>) {
    let store = Arc::new(MemStore::new());
    (TestLog::start(c, store.clone()), store)
}

async fn call(
    log: &TestLog,
    method: Method,
    uri: &str,
    auth: Option<&str>,
    extra: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    let a = auth.map(|t| format!("Bearer {t}"));
    let mut h: Vec<(&str, &str)> = a.iter().map(|a| ("authorization", a.as_str())).collect();
    h.extend_from_slice(extra);
    log.req(method, uri, &h, body).await
}

/// Appends a JSON entry as the principal of `auth` (anonymous if `None`) with event type `t`.
async fn append(log: &TestLog, auth: Option<&str>, t: &str, body: &str) -> u64 {
    let r = call(
        log,
        Method::POST,
        "/v1/entries?wait=checkpoint",
        auth,
        &[("content-type", "application/json"), ("x-event-type", t)],
        body.as_bytes(),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    r.json()["index"].as_u64().unwrap()
}

async fn post_admin(log: &TestLog, uri: &str, auth: Option<&str>, body: serde_json::Value) -> Resp {
    call(
        log,
        Method::POST,
        uri,
        auth,
        &[("content-type", "application/json")],
        body.to_string().as_bytes(),
    )
    .await
}

/// The record an entry answer serves, checked against the stored leaf with the spec crate.
fn served_record(store: &MemStore, answer: &serde_json::Value) -> PrivateRecord {
    let i = answer["index"].as_u64().unwrap();
    let r = &answer["record"];
    let record = PrivateRecord {
        salt: Hash::from_hex(r["salt"].as_str().unwrap()).unwrap().0,
        principal: r["principal"].as_str().unwrap().to_owned(),
        payload: B64.decode(r["payload_base64"].as_str().unwrap()).unwrap(),
    };
    let leaf = LeafEnvelope::decode(&store.entry(i).unwrap().unwrap()).unwrap();
    assert_eq!(
        record.check(&leaf),
        Ok(()),
        "entry {i}: served record vs leaf"
    );
    record
}

/// Every live record's payload and principal, as the store holds them.
fn stored_content(store: &MemStore) -> String {
    store
        .live_records(0, u64::MAX, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|(_, b)| {
            let r = PrivateRecord::decode(&b).unwrap();
            format!("{} {}\n", r.principal, String::from_utf8_lossy(&r.payload))
        })
        .collect()
}

#[tokio::test]
async fn content_is_served_to_readers_only_on_a_reachable_server() {
    let (log, store) = start(remote_config());
    for i in 0..3 {
        append(
            &log,
            Some(SUBMITTER),
            "login",
            &format!(r#"{{"n":{i},"m":"{MARKER}"}}"#),
        )
        .await;
    }
    // Anonymous: the public fields, no content.
    let anon = call(&log, Method::GET, "/v1/entries/1", None, &[], b"")
        .await
        .json();
    assert_eq!(anon["restricted"], true);
    assert!(anon["record"].is_null());
    assert_eq!(anon["event_type"], "login");
    assert!(!anon.to_string().contains(MARKER));
    assert!(!anon.to_string().contains("token:ingest"));
    let page = call(
        &log,
        Method::GET,
        "/v1/entries?start=0&limit=3",
        None,
        &[],
        b"",
    )
    .await;
    assert!(!page.text().contains(MARKER), "{}", page.text());
    let found = call(
        &log,
        Method::GET,
        "/v1/entries/search?type=login",
        None,
        &[],
        b"",
    )
    .await;
    assert_eq!(found.status, StatusCode::OK);
    assert!(!found.text().contains(MARKER));
    // Which entries a principal made is private too.
    let by_principal = call(
        &log,
        Method::GET,
        "/v1/entries/search?principal=token:ingest",
        None,
        &[],
        b"",
    )
    .await;
    assert_eq!(
        by_principal.status,
        StatusCode::FORBIDDEN,
        "{}",
        by_principal.text()
    );
    assert_eq!(
        log.get("/v1/log").await.json()["access"]["anonymous_content"],
        false
    );
    // A reader gets the record with its salt, and it matches the leaf.
    let read = call(&log, Method::GET, "/v1/entries/1", Some(READER), &[], b"")
        .await
        .json();
    assert_eq!(read["restricted"], false);
    let r = served_record(&store, &read);
    assert_eq!(r.principal, "token:ingest");
    assert!(String::from_utf8(r.payload).unwrap().contains(MARKER));
    let page = call(
        &log,
        Method::GET,
        "/v1/entries?start=0&limit=3",
        Some(READER),
        &[],
        b"",
    )
    .await
    .json();
    for e in page["entries"].as_array().unwrap() {
        served_record(&store, e);
    }
    let by_principal = call(
        &log,
        Method::GET,
        "/v1/entries/search?principal=token:ingest",
        Some(READER),
        &[],
        b"",
    )
    .await
    .json();
    assert_eq!(by_principal["entries"].as_array().unwrap().len(), 3);
    // Erasure and holds need the admin role.
    let body = serde_json::json!({"indices": [0], "reason": "test"});
    for (who, status) in [
        (None, StatusCode::UNAUTHORIZED),
        (Some(SUBMITTER), StatusCode::FORBIDDEN),
        (Some(READER), StatusCode::FORBIDDEN),
    ] {
        let r = post_admin(&log, "/v1/admin/erasures", who, body.clone()).await;
        assert_eq!(r.status, status, "{}", r.text());
        let hold = serde_json::json!({"event_type": "login", "reason": "test"});
        assert_eq!(
            post_admin(&log, "/v1/admin/holds", who, hold).await.status,
            status
        );
    }
    assert_eq!(store.tree_size().unwrap(), 3, "nothing was written");
    assert!(matches!(store.record(0).unwrap(), RecordState::Live(_)));
    let r = post_admin(&log, "/v1/admin/erasures", Some(ADMIN), body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    log.stop().await;
}

#[tokio::test]
async fn the_quick_start_on_loopback_reads_content_anonymously() {
    let (log, store) = start(config());
    append(&log, None, "x", r#"{"a":1}"#).await;
    let e = log.get("/v1/entries/0").await.json();
    assert_eq!(served_record(&store, &e).principal, "anonymous");
    assert_eq!(
        log.get("/v1/log").await.json()["access"]["anonymous_content"],
        true
    );
    log.stop().await;
    // Unless the operator says otherwise.
    let mut c = config();
    c.auth.anonymous_content = AnonymousAccess::Never;
    let (log, _) = start(c);
    append(&log, None, "x", r#"{"a":1}"#).await;
    assert_eq!(log.get("/v1/entries/0").await.json()["restricted"], true);
    log.stop().await;
}

#[tokio::test]
async fn clients_cannot_write_the_logs_own_event_types() {
    let (log, store) = start(config());
    let r = call(
        &log,
        Method::POST,
        "/v1/entries",
        None,
        &[
            ("content-type", "application/json"),
            ("x-event-type", "sealtrail.erasure"),
        ],
        b"{}",
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text().contains("reserved"), "{}", r.text());
    assert_eq!(store.tree_size().unwrap(), 0);
    log.stop().await;
}

#[tokio::test]
async fn erasure_by_principal_destroys_records_and_is_itself_logged() {
    let mut c = remote_config();
    c.auth.tokens.push(token(
        "alice",
        Role::Submitter,
        "stk_alice-token-for-privacy-tests-0000000000000",
    ));
    let alice = "stk_alice-token-for-privacy-tests-0000000000000";
    let (log, store) = start(c);
    let mut alice_idx = Vec::new();
    for i in 0..6 {
        let body = format!(r#"{{"n":{i},"m":"{MARKER}"}}"#);
        if i % 2 == 0 {
            let r = call(
                &log,
                Method::POST,
                "/v1/entries?wait=checkpoint",
                Some(alice),
                &[
                    ("content-type", "application/json"),
                    ("x-event-type", "login"),
                    ("idempotency-key", &format!("k{i}")),
                ],
                body.as_bytes(),
            )
            .await;
            assert_eq!(r.status, StatusCode::CREATED);
            alice_idx.push(r.json()["index"].as_u64().unwrap());
        } else {
            append(&log, Some(SUBMITTER), "login", &format!(r#"{{"n":{i}}}"#)).await;
        }
    }
    let leaves_before: Vec<Vec<u8>> = store.entries(0, 6).unwrap();
    let r = post_admin(
        &log,
        "/v1/admin/erasures",
        Some(ADMIN),
        serde_json::json!({"principal": "token:alice", "reason": "GDPR Art. 17 request #42"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let summary = r.json();
    assert_eq!(summary["erased"], 3, "{summary}");
    let erasure = summary["erasure_entries"][0].as_u64().unwrap();
    assert_eq!(erasure, 6, "the erasure is the next entry");
    // The leaves stay; every proof still verifies against the new checkpoint.
    assert_eq!(store.entries(0, 6).unwrap(), leaves_before);
    let cp = log.checkpoint().await;
    for &i in &alice_idx {
        let p = log
            .get(&format!(
                "/v1/proof/inclusion?index={i}&size={}",
                cp.checkpoint().size()
            ))
            .await
            .json();
        let proof: Vec<Hash> = p["proof"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| Hash::from_base64(h.as_str().unwrap()).unwrap())
            .collect();
        verify_inclusion(
            i,
            cp.checkpoint().size(),
            &leaf_hash(&leaves_before[i as usize]),
            &proof,
            &cp.checkpoint().root(),
        )
        .unwrap();
        // The answer: public fields and a pointer to the erasure entry, to readers too.
        let e = call(
            &log,
            Method::GET,
            &format!("/v1/entries/{i}"),
            Some(READER),
            &[],
            b"",
        )
        .await
        .json();
        assert!(e["record"].is_null(), "{e}");
        assert_eq!(e["erased"]["erasure_index"], erasure);
        assert_eq!(e["restricted"], false);
        assert_eq!(store.record(i).unwrap(), RecordState::Erased(erasure));
    }
    // Nothing of alice is left in the store: records, principal postings.
    let content = stored_content(&store);
    assert!(!content.contains(MARKER), "{content}");
    let search = call(
        &log,
        Method::GET,
        "/v1/entries/search?principal=token:alice",
        Some(READER),
        &[],
        b"",
    )
    .await
    .json();
    assert_eq!(search["entries"].as_array().unwrap().len(), 0, "{search}");
    // The erasure entry: reserved type, who and why and which, but no personal data.
    let e = call(
        &log,
        Method::GET,
        &format!("/v1/entries/{erasure}"),
        Some(READER),
        &[],
        b"",
    )
    .await
    .json();
    assert_eq!(e["event_type"], "sealtrail.erasure");
    let rec = served_record(&store, &e);
    assert_eq!(rec.principal, "token:ops");
    let payload: serde_json::Value = serde_json::from_slice(&rec.payload).unwrap();
    assert_eq!(
        sealtrail_server::privacy::erased_indices(&rec.payload).unwrap(),
        alice_idx
    );
    assert_eq!(payload["erasure"]["reason"], "GDPR Art. 17 request #42");
    assert_eq!(payload["erasure"]["selector"]["principal"], true);
    assert!(
        !String::from_utf8_lossy(&rec.payload).contains("alice"),
        "{payload}"
    );
    // Bob's (the submitter's) records are untouched.
    let other = call(&log, Method::GET, "/v1/entries/1", Some(READER), &[], b"")
        .await
        .json();
    served_record(&store, &other);
    // Again: nothing left to erase, no new entry.
    let again = post_admin(
        &log,
        "/v1/admin/erasures",
        Some(ADMIN),
        serde_json::json!({"indices": alice_idx, "reason": "again"}),
    )
    .await
    .json();
    assert_eq!(again["erased"], 0);
    assert_eq!(again["already_erased"], 3);
    assert_eq!(again["erasure_entries"], serde_json::json!([]));
    // The erasure entry itself cannot be erased.
    let own = post_admin(
        &log,
        "/v1/admin/erasures",
        Some(ADMIN),
        serde_json::json!({"indices": [erasure], "reason": "cover tracks"}),
    )
    .await
    .json();
    assert_eq!(own["protected"], 1);
    assert_eq!(store.tree_size().unwrap(), 7);
    // A repeat of an erased entry's request under its idempotency key cannot be compared: 409.
    let r = call(
        &log,
        Method::POST,
        "/v1/entries",
        Some(alice),
        &[
            ("content-type", "application/json"),
            ("x-event-type", "login"),
            ("idempotency-key", "k0"),
        ],
        format!(r#"{{"n":0,"m":"{MARKER}"}}"#).as_bytes(),
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    assert!(r.text().contains("erased"), "{}", r.text());
    // fsck agrees: records match commitments, tombstones match the erasure entry.
    let report = sealtrail_server::fsck::fsck(store.as_ref(), ORIGIN, &verifier()).unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!((report.records, report.erased), (4, 3));
    log.stop().await;
}

#[tokio::test]
async fn bad_erasure_requests_are_refused_and_write_nothing() {
    let (log, store) = start(remote_config());
    append(&log, Some(SUBMITTER), "x", "{}").await;
    for body in [
        serde_json::json!({"reason": "no selector"}),
        serde_json::json!({"indices": [0]}),
        serde_json::json!({"indices": [0], "reason": ""}),
        serde_json::json!({"indices": [], "reason": "r"}),
        serde_json::json!({"indices": [0], "principal": "p", "reason": "both"}),
        serde_json::json!({"since_ms": 5, "until_ms": 5, "reason": "empty range"}),
        serde_json::json!({"indices": [0], "reason": "r", "extra": 1}),
    ] {
        let r = post_admin(&log, "/v1/admin/erasures", Some(ADMIN), body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.text());
        assert_eq!(r.error_code(), "bad_request");
    }
    let r = post_admin(
        &log,
        "/v1/admin/erasures",
        Some(ADMIN),
        serde_json::json!({"indices": [1], "reason": "past the end"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    assert_eq!(store.tree_size().unwrap(), 1);
    assert!(matches!(store.record(0).unwrap(), RecordState::Live(_)));
    log.stop().await;
}

#[tokio::test]
async fn a_legal_hold_blocks_erasure_until_released() {
    let (log, store) = start(remote_config());
    for i in 0..4 {
        append(&log, Some(SUBMITTER), if i < 2 { "a" } else { "b" }, "{}").await;
    }
    let r = post_admin(
        &log,
        "/v1/admin/holds",
        Some(ADMIN),
        serde_json::json!({"principal": "token:ingest", "event_type": "a", "reason": "litigation 7"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let hold = r.json();
    let id = hold["id"].as_u64().unwrap();
    assert_eq!(id, 4, "a hold is an entry");
    let e = call(
        &log,
        Method::GET,
        &format!("/v1/entries/{id}"),
        Some(READER),
        &[],
        b"",
    )
    .await
    .json();
    assert_eq!(e["event_type"], "sealtrail.hold");
    let rec = served_record(&store, &e);
    assert!(
        !String::from_utf8_lossy(&rec.payload).contains("ingest"),
        "no principal in the entry"
    );
    let list = call(&log, Method::GET, "/v1/admin/holds", Some(ADMIN), &[], b"")
        .await
        .json();
    assert_eq!(list["holds"][0]["covers"]["principal"], "token:ingest");
    // Erasing everything of the principal: the held records stay.
    let r = post_admin(
        &log,
        "/v1/admin/erasures",
        Some(ADMIN),
        serde_json::json!({"principal": "token:ingest", "reason": "request"}),
    )
    .await
    .json();
    assert_eq!(
        (r["erased"].as_u64(), r["held"].as_u64()),
        (Some(2), Some(2)),
        "{r}"
    );
    assert_eq!(r["held_indices"], serde_json::json!([0, 1]));
    assert!(matches!(store.record(0).unwrap(), RecordState::Live(_)));
    assert!(matches!(store.record(2).unwrap(), RecordState::Erased(_)));
    // Releasing: an entry too; then the erasure goes through.
    let r = post_admin(
        &log,
        &format!("/v1/admin/holds/{id}/release"),
        Some(ADMIN),
        serde_json::json!({"reason": "case closed"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let released = r.json()["entry"].as_u64().unwrap();
    let e = call(
        &log,
        Method::GET,
        &format!("/v1/entries/{released}"),
        Some(READER),
        &[],
        b"",
    )
    .await
    .json();
    assert_eq!(e["event_type"], "sealtrail.hold-release");
    let r = post_admin(
        &log,
        &format!("/v1/admin/holds/{id}/release"),
        Some(ADMIN),
        serde_json::json!({"reason": "twice"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = post_admin(
        &log,
        "/v1/admin/erasures",
        Some(ADMIN),
        serde_json::json!({"indices": [0, 1], "reason": "request"}),
    )
    .await
    .json();
    assert_eq!(r["erased"], 2, "{r}");
    assert!(
        call(&log, Method::GET, "/v1/admin/holds", Some(ADMIN), &[], b"")
            .await
            .json()["holds"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let report = sealtrail_server::fsck::fsck(store.as_ref(), ORIGIN, &verifier()).unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    log.stop().await;
}

#[tokio::test]
async fn retention_erases_expired_records_except_held_ones() {
    let (log, store) = start(remote_config());
    for t in ["auth.login", "auth.logout", "billing", "billing"] {
        append(&log, Some(SUBMITTER), t, "{}").await;
    }
    let seq = log.server.as_ref().unwrap().state().seq.clone();
    let st: Arc<dyn LogStore> = store.clone();
    let now = sealtrail_net::clock::unix_millis();
    let day = 86_400_000;
    let rules = vec![
        RetentionRule {
            event_type: Some("auth.*".into()),
            keep_days: 1,
        },
        RetentionRule {
            event_type: None,
            keep_days: 30,
        },
    ];
    // Half a day on: nothing has expired.
    let r = run_once(&st, &seq, &rules, now + day / 2).await.unwrap();
    assert_eq!((r.expired, r.erased), (0, 0));
    assert_eq!(
        store.tree_size().unwrap(),
        4,
        "no erasure entry for nothing"
    );
    // Two days on: the auth records expire, billing stays.
    let r = run_once(&st, &seq, &rules, now + 2 * day).await.unwrap();
    assert_eq!((r.expired, r.erased, r.held), (2, 2, 0), "{r:?}");
    assert_eq!(r.entries, vec![4]);
    assert!(matches!(store.record(0).unwrap(), RecordState::Erased(4)));
    assert!(matches!(store.record(2).unwrap(), RecordState::Live(_)));
    let e = call(&log, Method::GET, "/v1/entries/4", Some(READER), &[], b"")
        .await
        .json();
    let rec = served_record(&store, &e);
    assert_eq!(rec.principal, "sealtrail:retention");
    // A hold on billing; a month on, billing has expired but is held.
    let hold = post_admin(
        &log,
        "/v1/admin/holds",
        Some(ADMIN),
        serde_json::json!({"event_type": "billing", "reason": "audit"}),
    )
    .await
    .json();
    let r = run_once(&st, &seq, &rules, now + 31 * day).await.unwrap();
    assert_eq!((r.expired, r.erased, r.held), (2, 0, 2), "{r:?}");
    assert!(matches!(store.record(3).unwrap(), RecordState::Live(_)));
    // The log's own entries (the erasure, the hold) never expire.
    assert!(matches!(store.record(4).unwrap(), RecordState::Live(_)));
    post_admin(
        &log,
        &format!("/v1/admin/holds/{}/release", hold["id"]),
        Some(ADMIN),
        serde_json::json!({"reason": "done"}),
    )
    .await;
    let r = run_once(&st, &seq, &rules, now + 31 * day).await.unwrap();
    assert_eq!((r.expired, r.erased, r.held), (2, 2, 0), "{r:?}");
    assert!(matches!(store.record(3).unwrap(), RecordState::Erased(_)));
    let report = sealtrail_server::fsck::fsck(store.as_ref(), ORIGIN, &verifier()).unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    log.stop().await;
}

/// Whether `needle` occurs in any file under `dir`.
fn files_containing(dir: &std::path::Path, needle: &[u8]) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(files_containing(&path, needle));
        } else if std::fs::read(&path)
            .unwrap()
            .windows(needle.len())
            .any(|w| w == needle)
        {
            found.push(path);
        }
    }
    found
}

async fn erase_then_compact(engine: sealtrail_server::store::Engine) {
    use sealtrail_server::store::{compact::compact, open};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let marker = format!("{MARKER}-{}", engine.name());
    let store: Arc<dyn LogStore> = Arc::from(open(engine, &dir).unwrap());
    let log = TestLog::start(config(), store.clone());
    for i in 0..300 {
        let body = if i % 3 == 0 {
            format!(r#"{{"n":{i},"secret":"{marker}"}}"#)
        } else {
            format!(r#"{{"n":{i}}}"#)
        };
        append(
            &log,
            None,
            if i % 3 == 0 { "secret" } else { "plain" },
            &body,
        )
        .await;
    }
    let r = log
        .post_json(
            "/v1/admin/erasures",
            &serde_json::json!({"event_type": "secret", "reason": "test"}).to_string(),
        )
        .await;
    // The quick start has no admin: erasure needs a token even on loopback.
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let seq = log.server.as_ref().unwrap().state().seq.clone();
    let indices: Vec<u64> = (0..300).filter(|i| i % 3 == 0).collect();
    let outcome = erase_indices(&seq, indices).await;
    assert!(matches!(
        outcome,
        sealtrail_server::sequencer::AdminOutcome::Erased { erased: 100, .. }
    ));
    log.stop().await;
    drop(seq);
    drop(store);
    let before = files_containing(&dir, marker.as_bytes());
    eprintln!(
        "{}: the marker is in {} file(s) after erasure, before compaction",
        engine.name(),
        before.len()
    );
    let summary = compact(engine, &dir).unwrap();
    assert_eq!(summary.size, 301);
    let after = files_containing(&dir, marker.as_bytes());
    assert!(
        after.is_empty(),
        "marker bytes survive compaction in {after:?}"
    );
    // The compacted log is the same log: fsck passes, records and tombstones are all there.
    let store = open(engine, &dir).unwrap();
    let report = sealtrail_server::fsck::fsck(store.as_ref(), ORIGIN, &verifier()).unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!((report.records, report.erased), (201, 100));
    assert!(!tmp.path().join("data.compacting").exists());
    assert!(!tmp.path().join("data.precompact").exists());
}

#[tokio::test]
async fn erased_bytes_leave_a_redb_data_directory_after_compaction() {
    erase_then_compact(sealtrail_server::store::Engine::Redb).await;
}

#[tokio::test]
async fn erased_bytes_leave_a_sled_data_directory_after_compaction() {
    erase_then_compact(sealtrail_server::store::Engine::Sled).await;
}

#[test]
fn an_interrupted_compaction_is_finished_or_undone() {
    use sealtrail_server::store::{Engine, compact::compact, open};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    drop(open(Engine::Redb, &dir).unwrap());
    // A crash between the two renames leaves only the old directory, under its new name.
    std::fs::rename(&dir, tmp.path().join("data.precompact")).unwrap();
    std::fs::create_dir(tmp.path().join("data.compacting")).unwrap();
    compact(Engine::Redb, &dir).unwrap();
    assert!(dir.join("log.redb").exists());
    assert!(!tmp.path().join("data.precompact").exists());
    assert!(!tmp.path().join("data.compacting").exists());
    // A running server (an open store) is refused, and nothing changes.
    let held = open(Engine::Redb, &dir).unwrap();
    assert!(compact(Engine::Redb, &dir).is_err());
    drop(held);
    assert!(!tmp.path().join("data.compacting").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_during_erasures_are_all_answered_and_kept() {
    let (log, store) = start(config());
    let seq = log.server.as_ref().unwrap().state().seq.clone();
    for i in 0..200 {
        append(&log, None, "x", &format!(r#"{{"i":{i}}}"#)).await;
    }
    let writers: Vec<_> = (0..8u64)
        .map(|w| {
            let seq = seq.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                for i in 0..150u64 {
                    let e = sealtrail_server::sequencer::NewEntry {
                        principal: format!("w{w}"),
                        content_type: "application/json".into(),
                        event_type: None,
                        payload: format!(r#"{{"w":{w},"i":{i}}}"#).into_bytes(),
                    };
                    got.push(
                        seq.submit(vec![e], None)
                            .await
                            .expect("append answered")
                            .first_index,
                    );
                }
                got
            })
        })
        .collect();
    // Erasures, one index at a time, racing the appends.
    for i in 0..40u64 {
        let outcome = erase_indices(&seq, vec![i * 5]).await;
        assert!(matches!(
            outcome,
            sealtrail_server::sequencer::AdminOutcome::Erased { erased: 1, .. }
        ));
    }
    let mut indices: Vec<u64> = Vec::new();
    for w in writers {
        indices.extend(w.await.unwrap());
    }
    indices.sort_unstable();
    indices.dedup();
    assert_eq!(indices.len(), 8 * 150, "every append has its own index");
    assert_eq!(store.tree_size().unwrap(), 200 + 8 * 150 + 40);
    for i in indices {
        assert!(
            matches!(store.record(i).unwrap(), RecordState::Live(_)),
            "entry {i}"
        );
    }
    let report = sealtrail_server::fsck::fsck(store.as_ref(), ORIGIN, &verifier()).unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!(report.erased, 40);
    log.stop().await;
}
