//! HTTP forwarding sinks (NDJSON webhook, Splunk HEC, Elasticsearch `_bulk`) and the JSONL file
//! sink, against in-test receivers on 127.0.0.1 that check the exact request format and fail on
//! purpose (500, a timeout, a partial bulk failure) before recovering. Every entry must arrive,
//! with what was submitted and the leaf hash computed here from the stored leaf.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode, Uri};
use common::*;
use sealtrail_server::forward::{ForwardMetrics, Forwarders, SinkConfig, SinkKind};
use sealtrail_server::sequencer::NewEntry;
use sealtrail_server::store::mem::MemStore;
use sealtrail_server::store::{CursorStore as _, EntryStore as _};

const GUARD: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
enum Answer {
    Status(u16),
    /// Answer only after this long (longer than the sink's timeout).
    Slow(Duration),
    BulkItemErrors,
}

#[derive(Debug, Clone)]
struct Req {
    path: String,
    headers: HeaderMap,
    body: Vec<u8>,
    ok: bool,
}

#[derive(Default)]
struct Receiver {
    script: Mutex<VecDeque<Answer>>,
    requests: Mutex<Vec<Req>>,
}

async fn handle(
    axum::extract::State(r): axum::extract::State<Arc<Receiver>>,
    uri: Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> (StatusCode, String) {
    let answer = r.script.lock().unwrap().pop_front();
    let path = uri.path().to_owned();
    let mut req = Req {
        path: path.clone(),
        headers,
        body: body.to_vec(),
        ok: false,
    };
    let reply = match answer {
        Some(Answer::Status(s)) => (StatusCode::from_u16(s).unwrap(), "failing".to_owned()),
        Some(Answer::Slow(d)) => {
            r.requests.lock().unwrap().push(req);
            // A receiver that hangs: the sink's timeout must fire first.
            tokio::time::sleep(d).await;
            return (StatusCode::OK, "too late".to_owned());
        }
        Some(Answer::BulkItemErrors) => (
            StatusCode::OK,
            r#"{"took":1,"errors":true,"items":[{"index":{"status":429,"error":{"type":"es_rejected_execution_exception"}}}]}"#.to_owned(),
        ),
        None => {
            req.ok = true;
            let body = match path.as_str() {
                "/_bulk" => r#"{"took":1,"errors":false,"items":[]}"#,
                "/services/collector/event" => r#"{"text":"Success","code":0}"#,
                _ => "",
            };
            (StatusCode::OK, body.to_owned())
        }
    };
    r.requests.lock().unwrap().push(req);
    reply
}

async fn receiver(script: Vec<Answer>) -> (Arc<Receiver>, String) {
    let r = Arc::new(Receiver {
        script: Mutex::new(script.into()),
        requests: Mutex::default(),
    });
    let app = axum::Router::new()
        .fallback(axum::routing::post(handle))
        .with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (r, url)
}

/// What the test submitted for entry `i`.
fn submitted(i: u64) -> NewEntry {
    if i % 7 == 3 {
        NewEntry {
            principal: "svc-b".into(),
            content_type: "application/octet-stream".into(),
            event_type: None,
            payload: vec![0, 1, 2, i as u8],
        }
    } else {
        NewEntry {
            principal: format!("user-{}", i % 3),
            content_type: "application/json".into(),
            event_type: Some("user.login".into()),
            payload: format!("{{\"n\":{i}}}").into_bytes(),
        }
    }
}

/// Checks one forwarded document against what was submitted and the stored leaf.
fn check_doc(store: &MemStore, doc: &serde_json::Value, size_at_least: u64) -> u64 {
    let i = doc["index"].as_u64().unwrap();
    let want = submitted(i);
    let leaf = store.entry(i).unwrap().unwrap();
    assert_eq!(doc["origin"], ORIGIN);
    assert_eq!(doc["id"], format!("{ORIGIN}/{i}"));
    assert_eq!(doc["leaf_hash"], sealtrail_spec::leaf_hash(&leaf).to_hex());
    assert_eq!(doc["principal"], want.principal.as_str());
    assert_eq!(doc["content_type"], want.content_type.as_str());
    assert_eq!(doc["event_type"].as_str(), want.event_type.as_deref());
    let env = sealtrail_spec::envelope::LeafEnvelope::decode(&leaf).unwrap();
    assert_eq!(doc["timestamp"], env.time_ms);
    if want.content_type == "application/json" {
        let p: serde_json::Value = serde_json::from_slice(&want.payload).unwrap();
        assert_eq!(doc["payload"], p);
        assert!(doc.get("payload_base64").is_none());
    } else {
        use base64::Engine as _;
        let b = base64::engine::general_purpose::STANDARD.encode(&want.payload);
        assert_eq!(doc["payload_base64"], b);
        assert!(doc.get("payload").is_none());
    }
    let cs = doc["checkpoint_size"].as_u64().unwrap();
    assert!(
        cs > i && cs >= size_at_least.min(i + 1),
        "checkpoint {cs} covers {i}"
    );
    i
}

struct Setup {
    log: TestLog,
    store: Arc<MemStore>,
    forwarders: Forwarders,
    registry: prometheus::Registry,
}

fn start(mut sink: SinkConfig) -> Setup {
    sink.retry_initial_ms = 5;
    sink.retry_max_ms = 50;
    sink.timeout_secs = 1;
    sink.batch_entries = 25;
    let store = Arc::new(MemStore::new());
    let log = TestLog::start(config(), store.clone());
    let registry = prometheus::Registry::new();
    let server = log.server.as_ref().unwrap();
    let forwarders = Forwarders::start(
        &[sink],
        store.clone(),
        ORIGIN,
        server.sequencer().subscribe(),
        ForwardMetrics::new(&registry).unwrap(),
    )
    .unwrap();
    Setup {
        log,
        store,
        forwarders,
        registry,
    }
}

async fn append(log: &TestLog, from: u64, to: u64) {
    let seq = log.server.as_ref().unwrap().sequencer();
    let mut i = from;
    while i < to {
        let n = (to - i).min(40);
        let r = seq.submit((i..i + n).map(submitted).collect(), None).await;
        assert_eq!(r.unwrap().first_index, i);
        i += n;
    }
}

/// Polls `f` until it is true, failing after the guard timeout.
async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + GUARD;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn metric(registry: &prometheus::Registry, name: &str) -> f64 {
    registry
        .gather()
        .iter()
        .filter(|f| f.name() == name)
        .flat_map(|f| f.get_metric().iter().map(|m| m.get_counter().get_value()))
        .sum()
}

/// Runs a sink against a receiver with `script`, appending 120 entries in three rounds while it
/// fails and recovers. Returns the receiver's requests and the setup.
async fn run(
    kind: SinkKind,
    script: Vec<Answer>,
    tweak: impl FnOnce(&mut SinkConfig),
) -> (Vec<Req>, Setup) {
    let (recv, url) = receiver(script).await;
    let mut sink = SinkConfig::new("siem", kind);
    sink.url = Some(url);
    tweak(&mut sink);
    let setup = start(sink);
    append(&setup.log, 0, 50).await;
    append(&setup.log, 50, 90).await;
    append(&setup.log, 90, 120).await;
    let delivered = |reqs: &[Req]| {
        reqs.iter()
            .filter(|r| r.ok)
            .map(|r| r.body.len())
            .sum::<usize>()
            > 0
    };
    until("every entry acknowledged", || {
        setup.store.sink_cursor("siem").unwrap() == Some(120)
            && delivered(&recv.requests.lock().unwrap())
    })
    .await;
    let reqs = recv.requests.lock().unwrap().clone();
    (reqs, setup)
}

/// Every index in 0..n arrived in an acknowledged request, and every copy of an index (in any
/// request) is the same document.
fn check_all_delivered(store: &MemStore, docs: &[(bool, serde_json::Value)], n: u64) {
    let mut seen: BTreeMap<u64, serde_json::Value> = BTreeMap::new();
    for (ok, d) in docs {
        let i = check_doc(store, d, 0);
        if let Some(prev) = seen.get(&i) {
            let strip = |v: &serde_json::Value| {
                let mut v = v.clone();
                v.as_object_mut().unwrap().remove("checkpoint_size");
                v
            };
            assert_eq!(strip(prev), strip(d), "a replay of {i} differs");
        }
        if *ok {
            seen.insert(i, d.clone());
        } else {
            seen.entry(i).or_insert_with(|| d.clone());
        }
    }
    let acked: std::collections::BTreeSet<u64> = docs
        .iter()
        .filter(|(ok, _)| *ok)
        .map(|(_, d)| d["index"].as_u64().unwrap())
        .collect();
    assert_eq!(acked, (0..n).collect(), "entries missing");
}

fn lines(body: &[u8]) -> Vec<serde_json::Value> {
    assert_eq!(body.last(), Some(&b'\n'), "NDJSON ends with a newline");
    body.split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect()
}

#[tokio::test]
async fn splunk_hec_gets_every_entry_through_failures() {
    let script = vec![
        Answer::Status(500),
        Answer::Status(503),
        Answer::Slow(Duration::from_secs(3)),
    ];
    let (reqs, s) = run(SinkKind::SplunkHec, script, |c| {
        c.token = Some("0000-hec-token".into());
    })
    .await;
    let mut docs = Vec::new();
    for r in &reqs {
        assert_eq!(r.path, "/services/collector/event");
        assert_eq!(r.headers["authorization"], "Splunk 0000-hec-token");
        assert_eq!(r.headers["content-type"], "application/json");
        for ev in lines(&r.body) {
            assert_eq!(ev["source"], ORIGIN);
            assert_eq!(ev["sourcetype"], "sealtrail:entry");
            let doc = ev["event"].clone();
            let t = ev["time"].as_f64().unwrap();
            let ms = doc["timestamp"].as_u64().unwrap();
            assert!((t * 1000.0 - ms as f64).abs() < 1.0, "time {t} vs {ms} ms");
            docs.push((r.ok, doc));
        }
    }
    check_all_delivered(&s.store, &docs, 120);
    assert!(reqs.iter().filter(|r| !r.ok).count() >= 3);
    assert!(metric(&s.registry, "forward_failed_total") >= 3.0);
    assert!(metric(&s.registry, "forward_retries_total") >= 3.0);
    assert!(metric(&s.registry, "forward_sent_total") >= 120.0);
    s.forwarders.stop().await;
    s.log.stop().await;
}

#[tokio::test]
async fn elasticsearch_bulk_ids_make_replays_idempotent() {
    let script = vec![
        Answer::BulkItemErrors,
        Answer::Status(500),
        Answer::Slow(Duration::from_secs(3)),
    ];
    let (reqs, s) = run(SinkKind::Elasticsearch, script, |c| {
        c.index = Some("audit-log".into());
        c.headers
            .insert("Authorization".into(), "ApiKey c2VjcmV0".into());
    })
    .await;
    let mut docs = Vec::new();
    for r in &reqs {
        assert_eq!(r.path, "/_bulk");
        assert_eq!(r.headers["content-type"], "application/x-ndjson");
        assert_eq!(r.headers["authorization"], "ApiKey c2VjcmV0");
        let l = lines(&r.body);
        assert_eq!(l.len() % 2, 0, "action and document lines pair up");
        for pair in l.chunks(2) {
            let doc = pair[1].clone();
            let want_action = serde_json::json!({
                "index": {"_index": "audit-log", "_id": format!("{ORIGIN}/{}", doc["index"])}
            });
            assert_eq!(pair[0], want_action);
            docs.push((r.ok, doc));
        }
    }
    check_all_delivered(&s.store, &docs, 120);
    assert!(reqs.iter().filter(|r| !r.ok).count() >= 3);
    s.forwarders.stop().await;
    s.log.stop().await;
}

#[tokio::test]
async fn webhook_gets_ndjson_and_resumes_from_its_cursor() {
    let (reqs, s) = run(SinkKind::Webhook, vec![Answer::Status(500)], |c| {
        c.url = c.url.as_ref().map(|u| format!("{u}/hook"));
        c.headers.insert("X-Token".into(), "t1".into());
    })
    .await;
    let mut docs = Vec::new();
    for r in &reqs {
        assert_eq!(r.path, "/hook");
        assert_eq!(r.headers["content-type"], "application/x-ndjson");
        assert_eq!(r.headers["x-token"], "t1");
        docs.extend(lines(&r.body).into_iter().map(|d| (r.ok, d)));
    }
    check_all_delivered(&s.store, &docs, 120);
    // A new forwarder on the same store (a restart) resumes at the cursor: only new entries.
    s.forwarders.stop().await;
    let (recv2, url2) = receiver(vec![]).await;
    let mut sink = SinkConfig::new("siem", SinkKind::Webhook);
    sink.url = Some(url2);
    let registry = prometheus::Registry::new();
    let server = s.log.server.as_ref().unwrap();
    let f = Forwarders::start(
        &[sink],
        s.store.clone(),
        ORIGIN,
        server.sequencer().subscribe(),
        ForwardMetrics::new(&registry).unwrap(),
    )
    .unwrap();
    append(&s.log, 120, 130).await;
    until("the new entries", || {
        s.store.sink_cursor("siem").unwrap() == Some(130)
    })
    .await;
    let got: Vec<u64> = recv2
        .requests
        .lock()
        .unwrap()
        .iter()
        .flat_map(|r| lines(&r.body))
        .map(|d| d["index"].as_u64().unwrap())
        .collect();
    assert_eq!(got, (120..130).collect::<Vec<_>>());
    f.stop().await;
    s.log.stop().await;
}

#[tokio::test]
async fn a_dead_sink_does_not_hold_up_appends_or_other_sinks() {
    // Nothing listens on the dead sink's port.
    let dead_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let (recv, url) = receiver(vec![]).await;
    let mut dead = SinkConfig::new("dead", SinkKind::Webhook);
    dead.url = Some(format!("http://127.0.0.1:{dead_port}/"));
    let mut live = SinkConfig::new("live", SinkKind::Webhook);
    live.url = Some(url);
    let store = Arc::new(MemStore::new());
    let log = TestLog::start(config(), store.clone());
    let registry = prometheus::Registry::new();
    let f = Forwarders::start(
        &[dead, live],
        store.clone(),
        ORIGIN,
        log.server.as_ref().unwrap().sequencer().subscribe(),
        ForwardMetrics::new(&registry).unwrap(),
    )
    .unwrap();
    append(&log, 0, 200).await;
    until("the live sink", || {
        store.sink_cursor("live").unwrap() == Some(200)
    })
    .await;
    assert_eq!(store.sink_cursor("dead").unwrap(), None);
    let n: usize = recv
        .requests
        .lock()
        .unwrap()
        .iter()
        .map(|r| lines(&r.body).len())
        .sum();
    assert_eq!(n, 200);
    let lag = || {
        registry
            .gather()
            .iter()
            .find(|m| m.name() == "forward_lag_entries")
            .unwrap()
            .get_metric()
            .iter()
            .find(|m| m.get_label().iter().any(|l| l.value() == "dead"))
            .map(|m| m.get_gauge().get_value())
    };
    until("the dead sink's lag", || lag() == Some(200.0)).await;
    assert_eq!(store.sink_cursor("dead").unwrap(), None);
    f.stop().await;
    log.stop().await;
}

#[tokio::test]
async fn file_sink_rotates_by_size_and_keeps_every_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let mut sink = SinkConfig::new("file", SinkKind::File);
    sink.path = Some(path.clone());
    sink.max_bytes = Some(4000);
    sink.keep_files = Some(50);
    let s = start(sink);
    // A configured sink has every series from the start, at 0, before its first send.
    for name in [
        "forward_lag_entries",
        "forward_lag_seconds",
        "forward_sent_total",
        "forward_failed_total",
        "forward_retries_total",
        "forward_dropped_events_total",
    ] {
        let labels: Vec<String> = s
            .registry
            .gather()
            .iter()
            .filter(|f| f.name() == name)
            .flat_map(|f| f.get_metric().iter())
            .flat_map(|m| m.get_label().iter().map(|l| l.value().to_owned()))
            .collect();
        assert_eq!(labels, ["file"], "{name}");
    }
    append(&s.log, 0, 300).await;
    until("the file sink", || {
        s.store.sink_cursor("file").unwrap() == Some(300)
    })
    .await;
    let mut files = vec![path.clone()];
    for n in 1..=50 {
        let p = dir.path().join(format!("audit.jsonl.{n}"));
        if p.exists() {
            files.push(p);
        }
    }
    assert!(files.len() > 3, "rotated: {files:?}");
    // Oldest file first: .N ... .1, then the live file.
    files[1..].reverse();
    files.rotate_left(1);
    let mut all = Vec::new();
    for f in &files {
        let text = std::fs::read(f).unwrap();
        // A batch (25 lines) may exceed the limit alone; otherwise files stay under it.
        assert!(text.len() <= 4000 || lines(&text).len() <= 25, "{f:?}");
        for d in lines(&text) {
            all.push(check_doc(&s.store, &d, 0));
        }
    }
    assert_eq!(all, (0..300).collect::<Vec<_>>());
    s.forwarders.stop().await;
    s.log.stop().await;
}

#[tokio::test]
async fn bad_sink_configs_are_refused() {
    let mut no_url = SinkConfig::new("a", SinkKind::Webhook);
    assert!(no_url.validate().unwrap_err().to_string().contains("url"));
    no_url.url = Some("not a url".into());
    assert!(sealtrail_server::forward::Prepared::new(&[no_url]).is_err());
    let mut hec = SinkConfig::new("h", SinkKind::SplunkHec);
    hec.url = Some("http://127.0.0.1:1".into());
    assert!(hec.validate().unwrap_err().to_string().contains("token"));
    let mut f = SinkConfig::new("f", SinkKind::File);
    f.path = Some("x".into());
    f.url = Some("http://x".into());
    assert!(
        f.validate()
            .unwrap_err()
            .to_string()
            .contains("url is not used")
    );
    let mut tls = SinkConfig::new("t", SinkKind::Syslog);
    tls.address = Some("127.0.0.1:6514".into());
    tls.transport = Some(sealtrail_server::forward::Transport::Tls);
    assert!(tls.validate().unwrap_err().to_string().contains("ca_file"));
    tls.ca_file = Some("/nonexistent/ca.pem".into());
    assert!(sealtrail_server::forward::Prepared::new(&[tls]).is_err());
    let a = SinkConfig {
        path: Some("x".into()),
        ..SinkConfig::new("same", SinkKind::File)
    };
    assert!(
        sealtrail_server::forward::validate_all(&[a.clone(), a])
            .unwrap_err()
            .to_string()
            .contains("two")
    );
    let c = sealtrail_server::config::Config::from_toml(
        "[[forward]]\nname = \"s\"\nkind = \"syslog\"\naddress = \"h:1\"\ntransport = \"tcp\"\nfacility = 30\n",
    )
    .unwrap();
    assert!(c.validate().is_err());
    assert!(
        sealtrail_server::config::Config::from_toml(
            "[[forward]]\nname = \"s\"\nkind = \"kafka\"\n"
        )
        .is_err()
    );
}

#[tokio::test]
async fn security_events_reach_only_sinks_that_asked_for_them() {
    let (with, url_with) = receiver(vec![]).await;
    let (without, url_without) = receiver(vec![]).await;
    let mut a = SinkConfig::new("with", SinkKind::Webhook);
    a.url = Some(url_with);
    a.security_events = true;
    let mut b = SinkConfig::new("without", SinkKind::Webhook);
    b.url = Some(url_without);
    let store = Arc::new(MemStore::new());
    let log = TestLog::start(config(), store.clone());
    let f = Forwarders::start(
        &[a, b],
        store.clone(),
        ORIGIN,
        log.server.as_ref().unwrap().sequencer().subscribe(),
        ForwardMetrics::new(&prometheus::Registry::new()).unwrap(),
    )
    .unwrap();
    let alarm = serde_json::json!({"kind": "auth.denied", "principal": "mallory", "time_ms": 5});
    f.security_events().send(alarm.clone());
    append(&log, 0, 3).await;
    let docs = |r: &Receiver| -> Vec<serde_json::Value> {
        r.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|q| q.ok)
            .flat_map(|q| lines(&q.body))
            .collect()
    };
    until("the alarm and the entries", || {
        let d = docs(&with);
        d.contains(&alarm) && d.iter().filter(|x| x.get("index").is_some()).count() == 3
    })
    .await;
    until("the other sink's entries", || {
        store.sink_cursor("without").unwrap() == Some(3)
    })
    .await;
    assert!(!docs(&without).contains(&alarm));
    // Security events are not cursor-tracked: the cursor counts entries only.
    assert_eq!(store.sink_cursor("with").unwrap(), Some(3));
    f.stop().await;
    log.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_server_forwards_its_security_events() {
    let (rx, url) = receiver(vec![]).await;
    let mut sink = SinkConfig::new("soc", SinkKind::Webhook);
    sink.url = Some(url);
    sink.security_events = true;
    let mut c = config();
    c.forward = vec![sink];
    c.auth.anonymous_writes = sealtrail_server::auth::AnonymousAccess::Never;
    let server =
        sealtrail_server::serve::Server::start(c, Arc::new(MemStore::new()), signer()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.run(listener, async {
        let _ = stopped.await;
    }));
    // An unauthenticated write: 401, and an auth_failure security event at the SOC's sink.
    let r = reqwest::Client::new()
        .post(format!("http://{addr}/v1/entries"))
        .body("{}")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    until("the security event at the sink", || {
        rx.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|q| q.ok)
            .flat_map(|q| lines(&q.body))
            .any(|d| d["kind"] == "auth_failure")
    })
    .await;
    let _ = stop.send(());
    task.await.unwrap();
}
