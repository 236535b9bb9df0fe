//! Anchors: a JSONL file, a webhook, a (fake) sealtrail log, a real RFC 3161 TSA (OpenSSL's);
//! retries that never delay cosigning.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "../../tests/support/openssl_tsa.rs"]
mod openssl_tsa;

use std::sync::Arc;

use axum::http::StatusCode;
use common::*;
use sealtrail_spec::witness::monitoring_checkpoint_path;
use sealtrail_witness::config::AnchorConfig;

fn settle(c: &mut sealtrail_witness::Config) {
    c.anchoring.interval_secs = 0;
    c.anchoring.retry_initial_ms = 10;
    c.anchoring.retry_max_secs = 1;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_webhook_and_sealtrail_anchors_receive_the_checkpoint() {
    let log = TestLog::new(ORIGIN, 1, "a", 10);
    let hook = receiver(Arc::new(|_, _| (StatusCode::OK, String::new()))).await;
    // A fake sealtrail log that checks the request like the real write API would see it and
    // answers like it (201 with the entry's index).
    let fake = receiver(Arc::new(|n, r: &Received| {
        let h = |k: &str| r.headers.get(k).map(|v| v.to_str().unwrap().to_owned());
        let ok = r.path == "/v1/entries"
            && h("content-type").as_deref() == Some("text/plain; charset=utf-8")
            && h("x-event-type").as_deref() == Some(sealtrail_witness::ANCHOR_EVENT_TYPE)
            && h("authorization").as_deref() == Some("Bearer s3cret")
            && h("idempotency-key").is_some_and(|k| k.len() == 64)
            && r.body.starts_with(b"example.com/log\n");
        if ok {
            (
                StatusCode::CREATED,
                format!("{{\"index\":{},\"tree_size\":{}}}", 41 + n, 42 + n),
            )
        } else {
            (StatusCode::BAD_REQUEST, "{}".to_owned())
        }
    }))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("anchors.jsonl");
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret\n").unwrap();
    let mut c = config(dir.path(), vec![log.log_config(None)]);
    settle(&mut c);
    c.anchors = vec![
        AnchorConfig::File {
            name: None,
            path: jsonl.clone(),
        },
        AnchorConfig::Webhook {
            name: Some("hook".into()),
            url: format!("{}/checkpoints", hook.url),
        },
        AnchorConfig::Sealtrail {
            name: Some("anchor-log".into()),
            url: fake.url.clone(),
            bearer_token: None,
            bearer_token_file: Some(token),
        },
    ];
    let w = start(c).await;
    assert_eq!(add(&w.url, log.request(0, 4)).await.0, 200);
    let (_, note4) = get(&format!("{}/{}", w.url, monitoring_checkpoint_path(ORIGIN))).await;

    let line = eventually("a JSONL line", || async {
        std::fs::read_to_string(&jsonl)
            .ok()
            .filter(|t| t.ends_with('\n'))
    })
    .await;
    let v: serde_json::Value = serde_json::from_str(line.trim_end()).unwrap();
    assert_eq!(v["origin"], ORIGIN);
    assert_eq!(v["size"], 4);
    assert_eq!(v["root_hash"], log.root(4).to_base64());
    assert_eq!(v["note"], note4);
    assert!(v["time"].as_u64().unwrap() > 1_700_000_000);

    let got = eventually("the webhook", || async { hook.requests().first().cloned() }).await;
    assert_eq!(got.path, "/checkpoints");
    let v: serde_json::Value = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(
        (v["size"].as_u64(), v["note"].as_str()),
        (Some(4), Some(note4.as_str()))
    );

    let got = eventually("the sealtrail anchor", || async {
        fake.requests().first().cloned()
    })
    .await;
    assert_eq!(got.body, note4.as_bytes());
    eventually("the anchor index metric", || async {
        metric(
            &w.url,
            "sealtrail_witness_anchor_last_index{anchor=\"anchor-log\"}",
        )
        .await
        .filter(|v| *v == 41.0)
    })
    .await;

    // Re-submitting size 4 only refreshes the cosignature: not anchored again. A second
    // checkpoint is appended as a second line.
    assert_eq!(add(&w.url, log.request(4, 4)).await.0, 200);
    assert_eq!(add(&w.url, log.request(4, 7)).await.0, 200);
    let text = eventually("a second JSONL line", || async {
        std::fs::read_to_string(&jsonl)
            .ok()
            .filter(|t| t.lines().count() == 2 && t.ends_with('\n'))
    })
    .await;
    let sizes: Vec<u64> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["size"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(sizes, [4, 7]);
    eventually("anchor size metric", || async {
        metric(
            &w.url,
            "sealtrail_witness_anchor_last_size{anchor=\"file-0\",origin=\"example.com/log\"}",
        )
        .await
        .filter(|v| *v == 7.0)
    })
    .await;
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_anchor_is_retried_without_delaying_cosigning() {
    let log = TestLog::new(ORIGIN, 1, "a", 10);
    let (open, gate) = tokio::sync::oneshot::channel();
    // First request: held until the test opens the gate, then 500. Then 200.
    let hook = receiver_with_gate(
        Arc::new(|n, _| {
            if n == 0 {
                (StatusCode::INTERNAL_SERVER_ERROR, String::new())
            } else {
                (StatusCode::OK, String::new())
            }
        }),
        Some(gate),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), vec![log.log_config(None)]);
    settle(&mut c);
    c.anchors = vec![AnchorConfig::Webhook {
        name: Some("hook".into()),
        url: hook.url.clone(),
    }];
    let w = start(c).await;
    // Both series are exported from the start, at 0.
    for result in ["ok", "error"] {
        let name = format!(
            "sealtrail_witness_anchor_deliveries_total{{anchor=\"hook\",result=\"{result}\"}}"
        );
        assert_eq!(metric(&w.url, &name).await, Some(0.0), "{name}");
    }
    assert_eq!(add(&w.url, log.request(0, 3)).await.0, 200);
    // The anchor is now stuck in its first delivery...
    eventually("the first delivery", || async {
        (!hook.requests().is_empty()).then_some(())
    })
    .await;
    // ...and cosigning goes on regardless.
    assert_eq!(add(&w.url, log.request(3, 5)).await.0, 200);
    assert_eq!(add(&w.url, log.request(5, 8)).await.0, 200);
    open.send(()).unwrap();
    // The failed delivery is retried, with the latest checkpoint.
    let last = eventually("a successful retry", || async {
        let r = hook.requests();
        r.iter()
            .skip(1)
            .map(|r| serde_json::from_slice::<serde_json::Value>(&r.body).unwrap())
            .find(|v| v["size"] == 8)
    })
    .await;
    assert_eq!(last["origin"], ORIGIN);
    let first: serde_json::Value = serde_json::from_slice(&hook.requests()[0].body).unwrap();
    assert_eq!(first["size"], 3);
    eventually("error and ok counted", || async {
        let e = metric(
            &w.url,
            "sealtrail_witness_anchor_deliveries_total{anchor=\"hook\",result=\"error\"}",
        )
        .await;
        let o = metric(
            &w.url,
            "sealtrail_witness_anchor_deliveries_total{anchor=\"hook\",result=\"ok\"}",
        )
        .await;
        (e >= Some(1.0) && o >= Some(1.0)).then_some(())
    })
    .await;
    w.stop().await;
}

/// A witness cosigning `ORIGIN` with one `rfc3161` anchor named `tsa`, storing under
/// `<dir>/timestamps`.
async fn rfc3161_witness(
    url: String,
    policy: Option<String>,
) -> (TestLog, tempfile::TempDir, std::path::PathBuf, Running) {
    let log = TestLog::new(ORIGIN, 1, "a", 10);
    let dir = tempfile::tempdir().unwrap();
    let stamps = dir.path().join("timestamps");
    let mut c = config(dir.path(), vec![log.log_config(None)]);
    settle(&mut c);
    c.anchors = vec![AnchorConfig::Rfc3161 {
        name: Some("tsa".into()),
        url,
        dir: stamps.clone(),
        policy,
    }];
    (log, dir, stamps, start(c).await)
}

async fn two_failed_deliveries(w: &Running) {
    eventually("two failed deliveries", || async {
        metric(
            &w.url,
            "sealtrail_witness_anchor_deliveries_total{anchor=\"tsa\",result=\"error\"}",
        )
        .await
        .filter(|v| *v >= 2.0)
    })
    .await;
}

fn stored_nothing(stamps: &std::path::Path) -> bool {
    !stamps.exists() || std::fs::read_dir(stamps).unwrap().next().is_none()
}

/// The `rfc3161` anchor against OpenSSL's TSA: each new cosigned checkpoint is time-stamped, and
/// the note and token stored beside each other verify with `openssl ts -verify`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc3161_anchor_stores_tokens_that_openssl_verifies() {
    let tsa = Arc::new(openssl_tsa::Tsa::new(
        openssl_tsa::TsaKey::Rsa,
        Some("critical,timeStamping"),
    ));
    let tsa_url = tsa.serve();
    let (log, dir, stamps, w) = rfc3161_witness(tsa_url, Some(openssl_tsa::POLICY.into())).await;
    let folder = stamps.join("example.com%2Flog");
    let tokens = |n: usize| {
        let folder = folder.clone();
        async move {
            let mut files: Vec<_> = std::fs::read_dir(&folder)
                .ok()?
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            files.sort();
            (files.iter().filter(|f| f.ends_with(".tst")).count() == n).then_some(files)
        }
    };
    for (old, new) in [(0, 4), (4, 7)] {
        assert_eq!(add(&w.url, log.request(old, new)).await.0, 200);
    }
    let files = eventually("two tokens", || tokens(2)).await;
    let (_, note7) = get(&format!("{}/{}", w.url, monitoring_checkpoint_path(ORIGIN))).await;
    // Each checkpoint under <size>-<first 16 hex of the note's SHA-256>, with its token.
    let digest = sealtrail_spec::Hash(sealtrail_spec::hash::sha256(note7.as_bytes())).to_hex();
    let stem7 = format!("7-{}", &digest[..16]);
    assert!(files.contains(&format!("{stem7}.checkpoint")), "{files:?}");
    assert_eq!(files.len(), 4, "{files:?}");
    assert_eq!(
        std::fs::read_to_string(folder.join(format!("{stem7}.checkpoint"))).unwrap(),
        note7
    );
    for f in files.iter().filter(|f| f.ends_with(".checkpoint")) {
        let data = folder.join(f);
        let token = data.with_extension("tst");
        tsa.openssl_verify(&data, &token)
            .unwrap_or_else(|e| panic!("openssl ts -verify {f}: {e}"));
        // The token is for this note and no other: OpenSSL refuses it over a changed note.
        let altered = dir.path().join("altered");
        let mut bytes = std::fs::read(&data).unwrap();
        bytes[0] ^= 1;
        std::fs::write(&altered, bytes).unwrap();
        assert!(tsa.openssl_verify(&altered, &token).is_err());
    }
    eventually("two ok deliveries", || async {
        metric(
            &w.url,
            "sealtrail_witness_anchor_deliveries_total{anchor=\"tsa\",result=\"ok\"}",
        )
        .await
        .filter(|v| *v == 2.0)
    })
    .await;
    w.stop().await;
}

/// A TSA that refuses (a policy it does not serve) is an error, retried, and nothing is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc3161_refusal_is_retried_and_stores_nothing() {
    let tsa = Arc::new(openssl_tsa::Tsa::new(
        openssl_tsa::TsaKey::EcP384,
        Some("critical,timeStamping"),
    ));
    let (log, _dir, stamps, w) = rfc3161_witness(tsa.serve(), Some("1.2.3.4.99".into())).await;
    assert_eq!(add(&w.url, log.request(0, 4)).await.0, 200);
    two_failed_deliveries(&w).await;
    assert_eq!(
        metric(
            &w.url,
            "sealtrail_witness_anchor_deliveries_total{anchor=\"tsa\",result=\"ok\"}",
        )
        .await,
        Some(0.0)
    );
    assert!(stored_nothing(&stamps));
    w.stop().await;
}

/// A TSA answer that is a genuine, granted token for another request (another digest and nonce,
/// as a replaying or confused TSA would send) is refused: nothing is stored, the delivery fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc3161_token_for_another_request_is_refused() {
    let tsa = openssl_tsa::Tsa::new(openssl_tsa::TsaKey::Rsa, Some("critical,timeStamping"));
    let other = sealtrail_spec::rfc3161::request(&[7; 32], &[1, 2, 3], None);
    let replayed = tsa.reply(&other);
    assert!(sealtrail_spec::rfc3161::token_from_response(&replayed).is_ok());
    let url = openssl_tsa::serve_with(move |_| replayed.clone());
    let (log, _dir, stamps, w) = rfc3161_witness(url, None).await;
    assert_eq!(add(&w.url, log.request(0, 4)).await.0, 200);
    two_failed_deliveries(&w).await;
    assert!(stored_nothing(&stamps));
    w.stop().await;
}
