//! In-process tests of every endpoint and every error of the HTTP API, on the in-memory store.
//! Everything the server returns is checked with `sealtrail-spec`: proofs against signed
//! checkpoints, tiles against entries, never against the server's own other answers.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::type_complexity
)]

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::{Method, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use common::*;
use sealtrail_server::store::mem::{MemStore, ReadDelay};
use sealtrail_spec::envelope::LeafEnvelope;
use sealtrail_spec::merkle::{
    consistency_proof, inclusion_proof, tree_root, verify_consistency, verify_inclusion,
};
use sealtrail_spec::record::PrivateRecord;
use sealtrail_spec::tiles::{
    TileHashReader, TileId, TileReader, all_bundles, all_tiles, decode_bundle, decode_hash_tile,
};
use sealtrail_spec::{Hash, leaf_hash};

fn mem() -> (Arc<MemStore>, TestLog) {
    let store = Arc::new(MemStore::new());
    let log = TestLog::start(config(), store.clone());
    (store, log)
}

fn b64s(v: &serde_json::Value) -> Vec<Hash> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|h| Hash::from_base64(h.as_str().unwrap()).unwrap())
        .collect()
}

#[tokio::test]
async fn append_one_entry_and_read_it_back() {
    let (_, log) = mem();
    let r = log
        .req(
            Method::POST,
            "/v1/entries",
            &[
                ("content-type", "application/json"),
                ("x-event-type", "user.login"),
            ],
            br#"{"user":"alice","action":"login"}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let j = r.json();
    assert_eq!(j["index"], 0);
    assert_eq!(j["duplicate"], false);
    assert_eq!(r.headers["location"], "/v1/entries/0");
    // The entry bundle holds the exact envelope; its leaf hash is the one we were given.
    let bundle = log.get("/tile/entries/000.p/1").await;
    assert_eq!(bundle.status, StatusCode::OK);
    let entries = decode_bundle(&bundle.body, Some(1)).unwrap();
    let env = LeafEnvelope::decode(entries[0]).unwrap();
    let payload = br#"{"user":"alice","action":"login"}"#;
    assert_eq!(env.payload_size, payload.len() as u64);
    assert_eq!(env.content_type, "application/json");
    assert_eq!(env.event_type.as_deref(), Some("user.login"));
    // The leaf holds no content: neither the payload nor the principal is in the public tile.
    let text = String::from_utf8_lossy(&bundle.body);
    assert!(
        !text.contains("alice") && !text.contains("anonymous"),
        "{text}"
    );
    // The record the entry answer serves (with its salt) is the one the leaf commits to.
    let e = log.get("/v1/entries/0").await.json();
    assert_eq!(e["restricted"], false, "loopback reads content: {e}");
    let record = PrivateRecord {
        salt: Hash::from_hex(e["record"]["salt"].as_str().unwrap())
            .unwrap()
            .0,
        principal: e["record"]["principal"].as_str().unwrap().to_owned(),
        payload: B64
            .decode(e["record"]["payload_base64"].as_str().unwrap())
            .unwrap(),
    };
    assert_eq!(record.principal, "anonymous");
    assert_eq!(record.payload, payload);
    assert_eq!(record.check(&env), Ok(()));
    assert_eq!(env.time_ms, j["timestamp"].as_u64().unwrap());
    assert_eq!(
        leaf_hash(entries[0]).to_hex(),
        j["leaf_hash"].as_str().unwrap()
    );
    // A one-leaf tree's root is the leaf hash, under a valid signature.
    let c = log.checkpoint().await;
    assert_eq!(cp(&c).size(), 1);
    assert_eq!(cp(&c).root(), leaf_hash(entries[0]));
    // The decoded JSON view agrees.
    let e = log.get("/v1/entries/0").await.json();
    assert_eq!(e["record"]["payload"]["user"], "alice");
    assert_eq!(e["event_type"], "user.login");
    assert_eq!(e["leaf_hash"], j["leaf_hash"]);
    log.stop().await;
}

#[tokio::test]
async fn wait_checkpoint_returns_a_verifiable_proof() {
    let (_, log) = mem();
    for i in 0..5 {
        log.post_json("/v1/entries", &format!("{{\"n\":{i}}}"))
            .await;
    }
    let r = log
        .req(
            Method::POST,
            "/v1/entries?wait=checkpoint",
            &[("content-type", "text/plain")],
            b"plain text payload",
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let j = r.json();
    let index = j["index"].as_u64().unwrap();
    let note = j["checkpoint"].as_str().unwrap();
    let c = sealtrail_spec::checkpoint::open(note.as_bytes(), ORIGIN, &[&verifier()]).unwrap();
    let leaf = Hash::from_hex(j["leaf_hash"].as_str().unwrap()).unwrap();
    let proof = b64s(&j["inclusion_proof"]);
    verify_inclusion(index, cp(&c).size(), &leaf, &proof, &cp(&c).root()).unwrap();
    // The tlog-proof verifies offline with the spec crate, for this leaf only.
    let t =
        sealtrail_spec::tlog_proof::TlogProof::parse(j["tlog_proof"].as_str().unwrap().as_bytes())
            .unwrap();
    assert_eq!(t.index(), index);
    assert_eq!(t.checkpoint(), note.as_bytes());
    t.verify(&leaf, ORIGIN, &[&verifier()], None).unwrap();
    assert!(
        t.verify(&sealtrail_spec::EMPTY_ROOT, ORIGIN, &[&verifier()], None)
            .is_err()
    );
    log.stop().await;
}

#[tokio::test]
async fn idempotency_keys_replay_or_conflict() {
    let (store, log) = mem();
    let h = [
        ("content-type", "application/json"),
        ("idempotency-key", "req-1"),
    ];
    let a = log.req(Method::POST, "/v1/entries", &h, b"{\"a\":1}").await;
    assert_eq!(a.status, StatusCode::CREATED);
    let b = log.req(Method::POST, "/v1/entries", &h, b"{\"a\":1}").await;
    assert_eq!(b.status, StatusCode::OK, "{}", b.text());
    assert_eq!(b.json()["index"], a.json()["index"]);
    assert_eq!(b.json()["leaf_hash"], a.json()["leaf_hash"]);
    assert_eq!(b.json()["duplicate"], true);
    let c = log.req(Method::POST, "/v1/entries", &h, b"{\"a\":2}").await;
    assert_eq!(c.status, StatusCode::CONFLICT);
    assert_eq!(c.error_code(), "conflict");
    use sealtrail_server::store::LogStore as _;
    assert_eq!(
        store.tree_size().unwrap(),
        1,
        "replays and conflicts append nothing"
    );
    // Keys are per request content: same key, another event type is a different request.
    let d = log
        .req(
            Method::POST,
            "/v1/entries",
            &[
                ("content-type", "application/json"),
                ("idempotency-key", "req-1"),
                ("x-event-type", "x"),
            ],
            b"{\"a\":1}",
        )
        .await;
    assert_eq!(d.status, StatusCode::CONFLICT);
    // Concurrent duplicates (likely in one batch) all get the same single entry.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let app = log.app.clone();
        tasks.push(tokio::spawn(async move {
            use tower::ServiceExt as _;
            let req = axum::http::Request::post("/v1/entries")
                .header("content-type", "application/json")
                .header("idempotency-key", "burst")
                .body(axum::body::Body::from("{\"burst\":true}"))
                .unwrap();
            let resp = app.oneshot(req).await.unwrap();
            let status = resp.status();
            let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
                .await
                .unwrap();
            (
                status,
                serde_json::from_slice::<serde_json::Value>(&body).unwrap(),
            )
        }));
    }
    let mut indices = std::collections::BTreeSet::new();
    let mut created = 0;
    for t in tasks {
        let (status, j) = t.await.unwrap();
        assert!(status == StatusCode::CREATED || status == StatusCode::OK);
        created += usize::from(status == StatusCode::CREATED);
        indices.insert(j["index"].as_u64().unwrap());
    }
    assert_eq!(created, 1);
    assert_eq!(indices.len(), 1);
    assert_eq!(store.tree_size().unwrap(), 2);
    log.stop().await;
}

#[tokio::test]
async fn batches_are_all_or_nothing() {
    let (store, log) = mem();
    use sealtrail_server::store::LogStore as _;
    let r = log
        .post_json("/v1/entries/batch", r#"[{"a":1}, {"b":[1,2]}, "s", 3]"#)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let j = r.json();
    assert_eq!(j["first_index"], 0);
    assert_eq!(j["count"], 4);
    let nd = log
        .req(
            Method::POST,
            "/v1/entries/batch?wait=checkpoint",
            &[
                ("content-type", "application/x-ndjson"),
                ("x-event-type", "bulk"),
            ],
            b"{\"x\":1}\n{\"x\":2}\r\n\n{\"x\":3}\n",
        )
        .await;
    assert_eq!(nd.status, StatusCode::CREATED, "{}", nd.text());
    let n = nd.json();
    assert_eq!(n["first_index"], 4);
    assert_eq!(n["count"], 3);
    let c = sealtrail_spec::checkpoint::open(
        n["checkpoint"].as_str().unwrap().as_bytes(),
        ORIGIN,
        &[&verifier()],
    )
    .unwrap();
    for (i, p) in n["inclusion_proofs"].as_array().unwrap().iter().enumerate() {
        let leaf = Hash::from_hex(n["leaf_hashes"][i].as_str().unwrap()).unwrap();
        verify_inclusion(4 + i as u64, cp(&c).size(), &leaf, &b64s(p), &cp(&c).root()).unwrap();
    }
    // Each item's payload is its exact JSON text.
    let e = log.get("/v1/entries/1").await.json();
    assert_eq!(e["record"]["payload"], serde_json::json!({"b": [1, 2]}));
    assert_eq!(log.get("/v1/entries/5").await.json()["event_type"], "bulk");
    // One bad line rejects the whole batch.
    let bad = log
        .req(
            Method::POST,
            "/v1/entries/batch",
            &[("content-type", "application/x-ndjson")],
            b"{\"ok\":1}\n{broken\n",
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(
        bad.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("line 2")
    );
    assert_eq!(store.tree_size().unwrap(), 7);
    log.stop().await;
}

#[tokio::test]
async fn bad_input_gets_a_json_error_and_writes_nothing() {
    let mut c = config();
    c.limits.max_payload_bytes = 100;
    c.limits.max_batch_entries = 3;
    c.limits.max_batch_bytes = 200;
    let store = Arc::new(MemStore::new());
    let log = TestLog::start(c, store.clone());
    let json = [("content-type", "application/json")];
    let cases: Vec<(Method, &str, Vec<(&str, &str)>, Vec<u8>, StatusCode, &str)> = vec![
        (
            Method::POST,
            "/v1/entries",
            json.to_vec(),
            vec![b'1'; 101],
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            Method::POST,
            "/v1/entries",
            json.to_vec(),
            b"{not json".to_vec(),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            Method::POST,
            "/v1/entries",
            json.to_vec(),
            b"".to_vec(),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            Method::POST,
            "/v1/entries",
            vec![],
            b"".to_vec(),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            Method::POST,
            "/v1/entries?wait=forever",
            json.to_vec(),
            b"1".to_vec(),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            Method::POST,
            "/v1/entries?bogus=1",
            json.to_vec(),
            b"1".to_vec(),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            Method::POST,
            "/v1/entries",
            vec![
                ("content-type", "application/json"),
                ("idempotency-key", ""),
            ],
            b"1".to_vec(),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            Method::POST,
            "/v1/entries",
            vec![("content-type", "application/json"), ("x-event-type", "")],
            b"1".to_vec(),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            Method::POST,
            "/v1/entries/batch",
            vec![("content-type", "text/plain")],
            b"[1]".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            Method::POST,
            "/v1/entries/batch",
            json.to_vec(),
            b"[]".to_vec(),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            Method::POST,
            "/v1/entries/batch",
            json.to_vec(),
            b"{\"a\":1}".to_vec(),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            Method::POST,
            "/v1/entries/batch",
            json.to_vec(),
            b"[1,2,3,4]".to_vec(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            Method::POST,
            "/v1/entries/batch",
            json.to_vec(),
            format!("[\"{}\"]", "x".repeat(120)).into_bytes(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            Method::POST,
            "/v1/entries/batch",
            json.to_vec(),
            format!("[1{}]", " ".repeat(250)).into_bytes(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            Method::GET,
            "/nope",
            vec![],
            vec![],
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            Method::DELETE,
            "/v1/entries",
            vec![],
            vec![],
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            Method::POST,
            "/checkpoint",
            vec![],
            vec![],
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            Method::GET,
            "/tile/0/0",
            vec![],
            vec![],
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            Method::GET,
            "/tile/0/000.p/0",
            vec![],
            vec![],
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            Method::GET,
            "/tile/0/x000/001",
            vec![],
            vec![],
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            Method::GET,
            "/tile/data/000",
            vec![],
            vec![],
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            Method::GET,
            "/tile/0/000",
            vec![],
            vec![],
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            Method::GET,
            "/tile/entries/000.p/1",
            vec![],
            vec![],
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            Method::GET,
            "/tile/7/x018/x446/x744/x073/x709/x551/615",
            vec![],
            vec![],
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            Method::GET,
            "/v1/entries/0",
            vec![],
            vec![],
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            Method::GET,
            "/v1/entries/01",
            vec![],
            vec![],
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            Method::GET,
            "/v1/entries/-1",
            vec![],
            vec![],
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            Method::GET,
            "/v1/entries/99999999999999999999999",
            vec![],
            vec![],
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            Method::GET,
            "/v1/entries?limit=0",
            vec![],
            vec![],
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            Method::GET,
            "/v1/entries?limit=100000",
            vec![],
            vec![],
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            Method::GET,
            "/v1/entries?start=x",
            vec![],
            vec![],
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            Method::GET,
            "/v1/proof/inclusion?index=0",
            vec![],
            vec![],
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            Method::GET,
            "/v1/proof/inclusion",
            vec![],
            vec![],
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            Method::GET,
            "/v1/proof/inclusion?index=0&size=5",
            vec![],
            vec![],
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            Method::GET,
            "/v1/proof/inclusion?leaf_hash=zz",
            vec![],
            vec![],
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            Method::GET,
            "/v1/proof/consistency",
            vec![],
            vec![],
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            Method::GET,
            "/v1/proof/consistency?from=1&to=0",
            vec![],
            vec![],
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            Method::GET,
            "/v1/proof/consistency?from=0&to=1",
            vec![],
            vec![],
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            Method::GET,
            "/v1/proof/0",
            vec![],
            vec![],
            StatusCode::NOT_FOUND,
            "not_found",
        ),
    ];
    for (method, uri, headers, body, status, code) in cases {
        let r = log.req(method.clone(), uri, &headers, &body).await;
        assert_eq!(r.status, status, "{method} {uri}: {}", r.text());
        assert_eq!(r.error_code(), code, "{method} {uri}");
        assert_eq!(r.headers["content-type"], "application/json");
    }
    use sealtrail_server::store::LogStore as _;
    assert_eq!(store.tree_size().unwrap(), 0);
    assert_eq!(store.commits(), 0);
    log.stop().await;
}

/// Every tile and bundle of the published tree, fetched over the API and checked against each other
/// and against the signed checkpoint.
async fn fetch_and_check_tiles(log: &TestLog) -> (u64, HashMap<(u8, u64), Vec<Hash>>) {
    let c = log.checkpoint().await;
    let size = cp(&c).size();
    let mut tiles = HashMap::new();
    for t in all_tiles(size) {
        let r = log.get(&format!("/{}", t.path())).await;
        assert_eq!(r.status, StatusCode::OK, "{}", t.path());
        assert_eq!(r.headers["content-type"], "application/octet-stream");
        let cc = r.headers["cache-control"].to_str().unwrap();
        assert_eq!(cc.contains("immutable"), t.is_full(), "{}: {cc}", t.path());
        tiles.insert(
            (t.level, t.index),
            decode_hash_tile(&r.body, t.width).unwrap(),
        );
    }
    for b in all_bundles(size) {
        let r = log.get(&format!("/{}", b.path())).await;
        assert_eq!(r.status, StatusCode::OK, "{}", b.path());
        let entries = decode_bundle(&r.body, Some(b.width)).unwrap();
        for (i, e) in entries.iter().enumerate() {
            LeafEnvelope::decode(e).unwrap();
            assert_eq!(
                leaf_hash(e),
                tiles[&(0, b.index)][i],
                "entry {}",
                b.start() + i as u64
            );
        }
    }
    let mut reader = TileHashReader::new(size, Tiles(&tiles));
    assert_eq!(
        tree_root(size, &mut reader).unwrap(),
        cp(&c).root(),
        "tiles hash to the signed root"
    );
    // Parents: every full tile's root is the matching hash one level up.
    for ((level, index), hashes) in &tiles {
        if hashes.len() == 256
            && let Some(parent) = tiles.get(&(level + 1, index / 256))
        {
            assert_eq!(
                sealtrail_spec::merkle::tree_hash(hashes),
                parent[(index % 256) as usize]
            );
        }
    }
    (size, tiles)
}

struct Tiles<'a>(&'a HashMap<(u8, u64), Vec<Hash>>);

impl TileReader for Tiles<'_> {
    type Error = String;
    fn read_tile(&mut self, t: TileId) -> Result<Vec<Hash>, String> {
        self.0
            .get(&(t.level, t.index))
            .and_then(|v| v.get(..usize::from(t.width)))
            .map(<[Hash]>::to_vec)
            .ok_or_else(|| t.path())
    }
}

#[tokio::test]
async fn tiles_proofs_and_checkpoints_agree() {
    let (_, log) = mem();
    let mut checkpoints = vec![log.checkpoint().await];
    // Grow past two levels of tiles in uneven batches, keeping every checkpoint.
    let mut n = 0;
    for batch in [1usize, 255, 1, 300, 10, 1000, 1000, 1000, 200] {
        let items: Vec<String> = (0..batch).map(|i| format!("{{\"i\":{}}}", n + i)).collect();
        let r = log
            .post_json("/v1/entries/batch", &format!("[{}]", items.join(",")))
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
        n += batch;
        checkpoints.push(log.checkpoint().await);
    }
    let (size, tiles) = fetch_and_check_tiles(&log).await;
    assert_eq!(size, n as u64);
    // Partial tiles of earlier sizes are still served (tlog-tiles requires it).
    let old = cp(&checkpoints[2]).size();
    for t in all_tiles(old) {
        let r = log.get(&format!("/{}", t.path())).await;
        assert_eq!(r.status, StatusCode::OK, "{} of size {old}", t.path());
    }
    // JSON inclusion proofs verify and equal the proofs computed from the fetched tiles.
    for index in [0u64, 1, 255, 256, 511, 1000, size - 1] {
        let j = log
            .get(&format!("/v1/proof/inclusion?index={index}"))
            .await
            .json();
        let proof = b64s(&j["proof"]);
        let mut reader = TileHashReader::new(size, Tiles(&tiles));
        assert_eq!(proof, inclusion_proof(index, size, &mut reader).unwrap());
        let leaf = Hash::from_hex(j["leaf_hash"].as_str().unwrap()).unwrap();
        assert_eq!(leaf, tiles[&(0, index / 256)][(index % 256) as usize]);
        let c = checkpoints.last().unwrap();
        verify_inclusion(index, size, &leaf, &proof, &cp(c).root()).unwrap();
        // By leaf hash, at an older size too.
        let j2 = log
            .get(&format!(
                "/v1/proof/inclusion?leaf_hash={}&size={}",
                leaf.to_hex(),
                size
            ))
            .await
            .json();
        assert_eq!(j2["index"], index);
        // And the tlog-proof endpoint.
        let t = log.get(&format!("/v1/proof/{index}")).await;
        assert_eq!(t.status, StatusCode::OK);
        assert!(
            t.text()
                .starts_with(&format!("c2sp.org/tlog-proof@v1\nindex {index}\n"))
        );
    }
    // Consistency between every pair of checkpoints we saw.
    for a in &checkpoints {
        for b in &checkpoints {
            let (m, n) = (cp(a).size(), cp(b).size());
            if m > n {
                continue;
            }
            let r = log
                .get(&format!("/v1/proof/consistency?from={m}&to={n}"))
                .await;
            assert_eq!(r.status, StatusCode::OK, "{m}->{n}: {}", r.text());
            let proof = b64s(&r.json()["proof"]);
            verify_consistency(m, n, &cp(a).root(), &cp(b).root(), &proof)
                .unwrap_or_else(|e| panic!("{m}->{n}: {e}"));
            let mut reader = TileHashReader::new(n, Tiles(&tiles));
            assert_eq!(proof, consistency_proof(m, n, &mut reader).unwrap());
        }
    }
    // Paging.
    let page = log.get("/v1/entries?start=250&limit=10").await.json();
    assert_eq!(page["entries"].as_array().unwrap().len(), 10);
    assert_eq!(page["entries"][0]["index"], 250);
    assert_eq!(page["next"], 260);
    let last = log
        .get(&format!("/v1/entries?start={}", size - 1))
        .await
        .json();
    assert_eq!(last["entries"].as_array().unwrap().len(), 1);
    assert_eq!(last["next"], serde_json::Value::Null);
    log.stop().await;
}

#[tokio::test]
async fn every_answer_carries_a_request_id() {
    let (_, log) = mem();
    let id = |r: &Resp| r.headers["x-request-id"].to_str().unwrap().to_owned();
    // Generated ids are `{pid:x}-{counter}` (the test runs in the server's process).
    let ours = format!("{:x}-", std::process::id());
    let generated = |v: &str| {
        v.strip_prefix(&ours)
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("{v:?} is not a generated request id"))
    };
    let a = generated(&id(&log.get("/v1/log").await));
    let b = generated(&id(&log.post_json("/v1/entries", "{}").await));
    let c = generated(&id(&log.get("/nope").await));
    assert!(a != b && b != c && a != c, "{a} {b} {c}");
    // A client's own id is echoed; an unusable one is replaced.
    for (sent, echoed) in [("trace-42:abc".to_owned(), true), ("y".repeat(128), true)]
        .into_iter()
        .chain([String::new(), "has space".into(), "z".repeat(129)].map(|v| (v, false)))
    {
        let r = log
            .req(
                Method::GET,
                "/v1/log",
                &[("x-request-id", sent.as_str())],
                b"",
            )
            .await;
        if echoed {
            assert_eq!(id(&r), sent);
        } else {
            generated(&id(&r));
        }
    }
    log.stop().await;
}

#[tokio::test]
async fn log_info_metrics_and_health() {
    let (_, log) = mem();
    log.post_json("/v1/entries", "{}").await;
    let info = log.get("/v1/log").await.json();
    assert_eq!(info["origin"], ORIGIN);
    assert_eq!(info["verifier_key"], verifier().to_vkey());
    assert_eq!(info["tree_size"], 1);
    assert_eq!(info["limits"]["max_payload_bytes"], 64000);
    assert_eq!(info["storage_engine"], "memory");
    assert_eq!(log.get("/livez").await.status, StatusCode::OK);
    assert_eq!(log.get("/readyz").await.status, StatusCode::OK);
    log.get("/nope").await;
    let m = log.get("/metrics").await.text();
    assert!(m.contains("sealtrail_entries_appended_total 1"), "{m}");
    assert!(m.contains("sealtrail_tree_size 1"));
    assert!(m.contains("sealtrail_commit_seconds_bucket"));
    assert!(
        m.contains(
            r#"sealtrail_http_requests_total{method="POST",route="/v1/entries",status="201"} 1"#
        ),
        "{m}"
    );
    assert!(
        m.contains(r#"sealtrail_errors_total{category="not_found"} 1"#),
        "{m}"
    );
    let c = log.get("/checkpoint").await;
    assert_eq!(c.headers["content-type"], "text/plain; charset=utf-8");
    assert!(
        c.headers["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age=1")
    );
    log.stop().await;
}

#[tokio::test]
async fn a_failed_commit_acknowledges_nothing_and_stops_writes() {
    let (store, log) = mem();
    log.post_json("/v1/entries", "{\"before\":1}").await;
    let before = log.checkpoint().await;
    store.fail_commits(1);
    let r = log.post_json("/v1/entries", "{\"lost\":1}").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
    assert_eq!(r.headers["retry-after"], "1");
    assert_eq!(r.error_code(), "unavailable");
    // Refuses further writes (even though the store would now accept them), not ready.
    let r = log.post_json("/v1/entries", "{\"after\":1}").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        log.get("/readyz").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    // Reads go on, and nothing was published or written.
    let now = log.checkpoint().await;
    assert_eq!(now.bytes(), before.bytes());
    use sealtrail_server::store::LogStore as _;
    assert_eq!(store.tree_size().unwrap(), 1);
    assert_eq!(log.get("/v1/entries/0").await.status, StatusCode::OK);
    log.stop().await;
    // A restart recovers from what is durable and accepts writes again.
    let log = TestLog::start(config(), store.clone());
    assert_eq!(log.checkpoint().await.bytes(), before.bytes());
    let r = log.post_json("/v1/entries", "{\"after\":1}").await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.json()["index"], 1);
    log.stop().await;
}

#[tokio::test]
async fn queue_full_is_503_with_retry_after() {
    let mut c = config();
    c.limits.queue_entries = 2; // a 3-entry batch can never fit
    let log = TestLog::start(c, Arc::new(MemStore::new()));
    let r = log.post_json("/v1/entries/batch", "[1,2,3]").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
    assert_eq!(r.error_code(), "busy");
    assert_eq!(r.headers["retry-after"], "1");
    assert_eq!(
        log.post_json("/v1/entries/batch", "[1,2]").await.status,
        StatusCode::CREATED
    );
    log.stop().await;
}

#[tokio::test]
async fn restart_recovers_and_refuses_a_tampered_checkpoint() {
    let store = Arc::new(MemStore::new());
    let log = TestLog::start(config(), store.clone());
    log.post_json("/v1/entries/batch", "[1,2,3,4,5]").await;
    let c1 = log.checkpoint().await;
    log.stop().await;
    let log = TestLog::start(config(), store.clone());
    let c2 = log.checkpoint().await;
    assert_eq!(
        c1.bytes(),
        c2.bytes(),
        "the same tree re-signs to the same checkpoint"
    );
    log.post_json("/v1/entries", "6").await;
    let c3 = log.checkpoint().await;
    let p = log.get("/v1/proof/consistency?from=5&to=6").await.json();
    verify_consistency(5, 6, &cp(&c1).root(), &cp(&c3).root(), &b64s(&p["proof"])).unwrap();
    // Sequencing time never goes backwards across the restart.
    let t5 = log.get("/v1/entries/4").await.json()["timestamp"]
        .as_u64()
        .unwrap();
    let t6 = log.get("/v1/entries/5").await.json()["timestamp"]
        .as_u64()
        .unwrap();
    assert!(t6 >= t5);
    log.stop().await;
    // A store whose checkpoint does not match its tiles is refused at start.
    use sealtrail_server::store::{Batch, LogStore as _};
    let bad = Arc::new(MemStore::new());
    let other = sealtrail_spec::note::Ed25519Signer::from_seed(ORIGIN, [9u8; 32]).unwrap();
    let note = sealtrail_spec::checkpoint::sign_checkpoint(
        &sealtrail_spec::checkpoint::Checkpoint::new(ORIGIN, 0, sealtrail_spec::EMPTY_ROOT)
            .unwrap(),
        &other,
    )
    .unwrap();
    bad.commit(&Batch {
        checkpoint: note,
        ..Batch::default()
    })
    .unwrap();
    let err = sealtrail_server::serve::Server::start(config(), bad, signer()).unwrap_err();
    assert!(err.to_string().contains("fsck"), "{err}");
}

/// Proofs are built from cached tile summaries (level 0: heights 4-7; above: every inner node),
/// for full and partial tiles at the published and at older sizes. On a tree with three tile
/// levels (a full level-1 tile, a partial one, a level-2 tile), every proof must equal the one
/// `sealtrail-spec` computes from the fetched tiles, whatever was cached by the requests before.
#[tokio::test]
async fn proofs_agree_with_the_tiles_on_three_tile_levels() {
    let (_, log) = mem();
    let mut n = 0usize;
    while n < 66_100 {
        let batch = 1000.min(66_100 - n);
        let items: Vec<String> = (0..batch).map(|i| format!("{{\"i\":{}}}", n + i)).collect();
        let r = log
            .post_json("/v1/entries/batch", &format!("[{}]", items.join(",")))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        n += batch;
    }
    let (size, tiles) = fetch_and_check_tiles(&log).await;
    assert_eq!(size, 66_100);
    let root = |s: u64| tree_root(s, &mut TileHashReader::new(s, Tiles(&tiles))).unwrap();
    // The published size first, then older ones (other partial widths), then the published again.
    let sizes = [
        size, 1, 2, 255, 256, 257, 4097, 65_535, 65_536, 65_537, size,
    ];
    for &s in &sizes {
        let want_root = root(s);
        for index in [0, 1, s / 3, s / 2, s.saturating_sub(257), s - 1] {
            if index >= s {
                continue;
            }
            let j = log
                .get(&format!("/v1/proof/inclusion?index={index}&size={s}"))
                .await
                .json();
            let proof = b64s(&j["proof"]);
            let mut oracle = TileHashReader::new(s, Tiles(&tiles));
            assert_eq!(
                proof,
                inclusion_proof(index, s, &mut oracle).unwrap(),
                "inclusion of {index} in {s}"
            );
            assert_eq!(
                Hash::from_base64(j["root_hash"].as_str().unwrap()).unwrap(),
                want_root
            );
            let leaf = Hash::from_hex(j["leaf_hash"].as_str().unwrap()).unwrap();
            assert_eq!(leaf, tiles[&(0, index / 256)][(index % 256) as usize]);
            verify_inclusion(index, s, &leaf, &proof, &want_root).unwrap();
        }
    }
    for &m in &sizes {
        for &s in &sizes {
            if m > s {
                continue;
            }
            let j = log
                .get(&format!("/v1/proof/consistency?from={m}&to={s}"))
                .await
                .json();
            let proof = b64s(&j["proof"]);
            let mut oracle = TileHashReader::new(s, Tiles(&tiles));
            assert_eq!(
                proof,
                consistency_proof(m, s, &mut oracle).unwrap(),
                "{m}->{s}"
            );
            verify_consistency(m, s, &root(m), &root(s), &proof).unwrap();
        }
    }
    log.stop().await;
}

/// Point reads run inline on the HTTP worker; one that stalls (here a store read that takes
/// 100 ms, as a disk would) sends the following point reads to the blocking pool for a while.
#[tokio::test]
async fn a_stalled_inline_read_sends_point_reads_to_the_pool() {
    let (store, log) = mem();
    log.post_json("/v1/entries", "{\"a\":1}").await;
    let inline = r#"sealtrail_point_reads_total{path="inline"}"#;
    let pool = r#"sealtrail_point_reads_total{path="pool"}"#;
    let m = log.get("/metrics").await.text();
    assert_eq!(
        (metric(&m, inline), metric(&m, pool)),
        (0, 0),
        "exported at 0 from the start"
    );
    assert_eq!(metric(&m, "sealtrail_slow_inline_reads_total"), 0);
    assert_eq!(log.get("/v1/entries/0").await.status, StatusCode::OK);
    let m = log.get("/metrics").await.text();
    assert_eq!((metric(&m, inline), metric(&m, pool)), (1, 0));
    assert_eq!(metric(&m, "sealtrail_slow_inline_reads_total"), 0);

    store.delay_entry_reads(1, ReadDelay::Sleep(std::time::Duration::from_millis(100)));
    let r = log.get("/v1/entries/0").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["index"], 0);
    let m = log.get("/metrics").await.text();
    assert_eq!((metric(&m, inline), metric(&m, pool)), (2, 0));
    assert_eq!(metric(&m, "sealtrail_slow_inline_reads_total"), 1);
    // The next point read (within the following second) runs on the pool, and answers the same.
    let r = log.get("/v1/entries/0").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["index"], 0);
    let m = log.get("/metrics").await.text();
    assert_eq!((metric(&m, inline), metric(&m, pool)), (2, 1));
    log.stop().await;
}
