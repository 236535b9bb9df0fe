//! `GET /v1/entries/search` against a brute-force filter over every entry, for seeded random
//! queries on the in-memory and redb stores: every page in both orders, paging by cursor until
//! the end, so a skipped or repeated result fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use axum::http::StatusCode;
use common::*;
use sealtrail_server::sequencer::NewEntry;
use sealtrail_server::store::LogStore;
use sealtrail_server::store::mem::MemStore;
use sealtrail_server::store::redb_store::RedbStore;

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const PRINCIPALS: [&str; 4] = ["alice", "bob", "svc/deploy", "al"];
const TYPES: [Option<&str>; 5] = [
    Some("user.login"),
    Some("user.logout"),
    Some("db.write"),
    Some("rare"),
    None,
];

#[derive(Debug, Clone)]
struct Row {
    index: u64,
    time: u64,
    principal: String,
    event_type: Option<String>,
}

/// Appends `rounds` submissions of random entries and returns every entry as the log reports it
/// through `GET /v1/entries` (the ground truth of times).
async fn fill(log: &TestLog, rng: &mut Rng, rounds: u64) -> Vec<Row> {
    let seq = log.server.as_ref().unwrap().sequencer().clone();
    let mut pending = Vec::new();
    for r in 0..rounds {
        let n = rng.below(12) + 1;
        let entries: Vec<NewEntry> = (0..n)
            .map(|k| {
                // "rare" only now and then, so sparse postings are exercised.
                let mut t = TYPES[rng.below(4) as usize];
                if t == Some("rare") && rng.below(6) != 0 {
                    t = None;
                }
                NewEntry {
                    principal: PRINCIPALS[rng.below(4) as usize].into(),
                    content_type: "application/json".into(),
                    event_type: t.map(str::to_owned),
                    payload: format!("{{\"r\":{r},\"k\":{k}}}").into_bytes(),
                }
            })
            .collect();
        // Some submissions in parallel, so batches hold several submitters' entries.
        let seq = seq.clone();
        pending.push(tokio::spawn(async move {
            seq.submit(entries, None).await.unwrap()
        }));
        if r % 4 == 3 {
            for p in pending.drain(..) {
                p.await.unwrap();
            }
        }
    }
    for p in pending {
        p.await.unwrap();
    }
    let mut rows = Vec::new();
    let mut start = 0;
    loop {
        let j = log
            .get(&format!("/v1/entries?start={start}&limit=1000"))
            .await
            .json();
        for e in j["entries"].as_array().unwrap() {
            rows.push(Row {
                index: e["index"].as_u64().unwrap(),
                time: e["timestamp"].as_u64().unwrap(),
                principal: e["record"]["principal"].as_str().unwrap().to_owned(),
                event_type: e["event_type"].as_str().map(str::to_owned),
            });
        }
        match j["next"].as_u64() {
            Some(n) => start = n,
            None => break,
        }
    }
    rows
}

#[derive(Debug, Default, Clone)]
struct Q {
    since: Option<u64>,
    until: Option<u64>,
    event_type: Option<&'static str>,
    principal: Option<&'static str>,
}

impl Q {
    fn matches(&self, r: &Row) -> bool {
        self.since.is_none_or(|s| r.time >= s)
            && self.until.is_none_or(|u| r.time < u)
            && self
                .event_type
                .is_none_or(|t| r.event_type.as_deref() == Some(t))
            && self.principal.is_none_or(|p| r.principal == p)
    }

    fn url(&self, order: &str, limit: u64, cursor: Option<u64>) -> String {
        let mut u = format!("/v1/entries/search?order={order}&limit={limit}");
        let mut add = |k: &str, v: String| u.push_str(&format!("&{k}={v}"));
        if let Some(s) = self.since {
            add("since", s.to_string());
        }
        if let Some(s) = self.until {
            add("until", s.to_string());
        }
        if let Some(t) = self.event_type {
            add("type", t.to_string());
        }
        if let Some(p) = self.principal {
            add("principal", p.replace('/', "%2F"));
        }
        if let Some(c) = cursor {
            add("cursor", c.to_string());
        }
        u
    }
}

fn random_query(rng: &mut Rng, rows: &[Row]) -> Q {
    let time = |rng: &mut Rng| {
        let r = &rows[rng.below(rows.len() as u64) as usize];
        r.time + rng.below(3) - 1
    };
    Q {
        since: (rng.below(3) == 0).then(|| time(rng)),
        until: (rng.below(3) == 0).then(|| time(rng)),
        event_type: (rng.below(2) == 0).then(|| TYPES[rng.below(4) as usize].unwrap()),
        principal: (rng.below(2) == 0).then(|| PRINCIPALS[rng.below(4) as usize]),
    }
}

/// Pages through `q` in `order` with page size `limit` and returns the indices.
async fn page_all(log: &TestLog, q: &Q, order: &str, limit: u64) -> Vec<u64> {
    let mut out = Vec::new();
    let mut cursor = None;
    for _ in 0..10_000 {
        let r = log.get(&q.url(order, limit, cursor)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let j = r.json();
        let entries = j["entries"].as_array().unwrap();
        assert!(entries.len() as u64 <= limit);
        for e in entries {
            out.push(e["index"].as_u64().unwrap());
        }
        match j["next_cursor"].as_u64() {
            Some(c) => {
                assert_eq!(entries.len() as u64, limit, "a short page with a cursor");
                cursor = Some(c);
            }
            None => return out,
        }
    }
    panic!("paging did not end");
}

async fn check_random_queries(store: Arc<dyn LogStore>, seed: u64) {
    let log = TestLog::start(config(), store);
    let mut rng = Rng(seed);
    let rows = fill(&log, &mut rng, 120).await;
    assert!(rows.len() > 400, "{} rows", rows.len());
    let distinct_times: std::collections::BTreeSet<u64> = rows.iter().map(|r| r.time).collect();
    assert!(distinct_times.len() > 1, "all entries in one millisecond");
    let mut queries = vec![
        Q::default(),
        Q {
            event_type: Some("rare"),
            principal: Some("al"),
            ..Q::default()
        },
        Q {
            principal: Some("nobody"),
            ..Q::default()
        },
    ];
    queries.extend((0..60).map(|_| random_query(&mut rng, &rows)));
    for q in &queries {
        let want: Vec<u64> = rows
            .iter()
            .filter(|r| q.matches(r))
            .map(|r| r.index)
            .collect();
        let limit = [1, 3, 7, 50, 1000][rng.below(5) as usize];
        assert_eq!(page_all(&log, q, "oldest", limit).await, want, "{q:?}");
        let mut newest = want.clone();
        newest.reverse();
        assert_eq!(page_all(&log, q, "newest", limit).await, newest, "{q:?}");
    }
    log.stop().await;
}

#[tokio::test]
async fn random_queries_match_brute_force_in_memory() {
    check_random_queries(Arc::new(MemStore::new()), 0x5EA1_7A11).await;
}

#[tokio::test]
async fn random_queries_match_brute_force_on_redb() {
    let dir = tempfile::tempdir().unwrap();
    check_random_queries(Arc::new(RedbStore::open(dir.path()).unwrap()), 0xC0FF_EE11).await;
}

#[tokio::test]
async fn results_have_the_entry_shape_and_are_provable() {
    let log = TestLog::start(config(), Arc::new(MemStore::new()));
    let mut rng = Rng(99);
    fill(&log, &mut rng, 10).await;
    let j = log
        .get("/v1/entries/search?principal=alice&limit=2")
        .await
        .json();
    let size = j["tree_size"].as_u64().unwrap();
    for e in j["entries"].as_array().unwrap() {
        let index = e["index"].as_u64().unwrap();
        assert!(index < size);
        assert_eq!(e["record"]["principal"], "alice");
        let direct = log.get(&format!("/v1/entries/{index}")).await.json();
        assert_eq!(
            e, &direct,
            "search result differs from GET /v1/entries/{index}"
        );
        let p = log
            .get(&format!("/v1/proof/inclusion?index={index}&size={size}"))
            .await;
        assert_eq!(p.status, StatusCode::OK, "{}", p.text());
    }
    log.stop().await;
}

#[tokio::test]
async fn bad_queries_are_400() {
    let log = TestLog::start(config(), Arc::new(MemStore::new()));
    for q in [
        "order=sideways",
        "limit=0",
        "limit=1001",
        "since=-1",
        "since=01",
        "cursor=x",
        "type=",
        "principal=",
        "colour=red",
    ] {
        let r = log.get(&format!("/v1/entries/search?{q}")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{q}: {}", r.text());
        assert_eq!(r.error_code(), "bad_request");
    }
    let r = log.get("/v1/entries/search").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["entries"], serde_json::json!([]));
    log.stop().await;
}
