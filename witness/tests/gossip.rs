//! Gossip and split views: two witnesses fed two histories signed by one log key; a log URL
//! with tiles for checkpoints of other sizes; bad signatures ignored; the operator's clear.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::StatusCode;
use common::*;
use sealtrail_spec::cosignature::Cosigner;
use sealtrail_spec::note::{Note, NoteSignature, Signer as _};
use sealtrail_spec::witness::monitoring_checkpoint_path;
use sealtrail_witness::config::PeerConfig;

const SPLIT_METRIC: &str = "sealtrail_witness_split_view{origin=\"example.com/log\"}";

fn ok_receiver() -> Respond {
    Arc::new(|_, _| (StatusCode::OK, String::new()))
}

async fn split_views(url: &str) -> Vec<serde_json::Value> {
    let (status, json) = get(&format!("{url}/split-views")).await;
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    v["split_views"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_witnesses_detect_a_split_view_and_the_operator_clears_it() {
    // One log key, two histories of ORIGIN; and a second, honest log.
    let h1 = TestLog::new(ORIGIN, 1, "a", 10);
    let h2 = TestLog::new(ORIGIN, 1, "b", 10);
    let honest = TestLog::new("example.com/honest", 3, "c", 10);
    let alerts = receiver(ok_receiver()).await;
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (la, lb) = (listener().await, listener().await);
    let (ua, ub) = (
        format!("http://{}", la.local_addr().unwrap()),
        format!("http://{}", lb.local_addr().unwrap()),
    );
    let key_a = Cosigner::from_seed("witness-a.example.com", [1; 32]).unwrap();
    let key_b = Cosigner::from_seed("witness-b.example.com", [2; 32]).unwrap();
    let mk = |dir: &std::path::Path, name: &str, peer_url: &str, peer_vkey: String| {
        let mut c = config(dir, vec![h1.log_config(None), honest.log_config(None)]);
        c.name = name.to_owned();
        c.peers = vec![PeerConfig {
            url: peer_url.to_owned(),
            vkey: peer_vkey,
        }];
        c.alerts.webhook_url = Some(format!("{}/alert", alerts.url));
        c
    };
    let cfg_a = mk(da.path(), key_a.name(), &ub, key_b.verifier().to_vkey());
    let cfg_b = mk(db.path(), key_b.name(), &ua, key_a.verifier().to_vkey());
    let a = start_on(la, cfg_a.clone(), key_a.clone());
    let b = start_on(lb, cfg_b, key_b);

    // Consistent views of the honest log: gossip finds nothing.
    assert_eq!(add(&a.url, honest.request(0, 4)).await.0, 200);
    assert_eq!(add(&b.url, honest.request(0, 4)).await.0, 200);
    // A is shown history 1 at size 5, B history 2 at size 5.
    assert_eq!(add(&a.url, h1.request(0, 5)).await.0, 200);
    assert_eq!(add(&b.url, h2.request(0, 5)).await.0, 200);

    a.witness.gossip_once().await;
    b.witness.gossip_once().await;
    for (w, ours, theirs) in [(&a, &h1, &h2), (&b, &h2, &h1)] {
        let splits = split_views(&w.url).await;
        assert_eq!(splits.len(), 1, "{splits:?}");
        let s = &splits[0];
        assert_eq!(s["origin"], ORIGIN);
        assert!(s["source"].as_str().unwrap().starts_with("peer "), "{s}");
        assert!(
            s["ours"]
                .as_str()
                .unwrap()
                .starts_with(&ours.checkpoint_text(5))
        );
        assert_eq!(
            s["theirs"].as_str().unwrap(),
            // The peer serves the log signature and its own cosignature.
            get(&format!(
                "{}/{}",
                if w.url == a.url { &b.url } else { &a.url },
                monitoring_checkpoint_path(ORIGIN)
            ))
            .await
            .1
        );
        assert!(
            s["theirs"]
                .as_str()
                .unwrap()
                .starts_with(&theirs.checkpoint_text(5))
        );
        assert_eq!(metric(&w.url, SPLIT_METRIC).await, Some(1.0));
        assert_eq!(
            metric(
                &w.url,
                "sealtrail_witness_split_view{origin=\"example.com/honest\"}"
            )
            .await,
            Some(0.0)
        );
        assert_eq!(
            metric(
                &w.url,
                "sealtrail_witness_gossip_checks_total{result=\"consistent\",source=\"peer\"}"
            )
            .await,
            Some(1.0)
        );
    }
    // Both stop cosigning that log, even consistent checkpoints of their own history; the
    // honest log is still cosigned.
    let (status, _, text) = add(&a.url, h1.request(5, 6)).await;
    assert_eq!(status, 403, "{text}");
    assert_eq!(add(&b.url, h2.request(5, 6)).await.0, 403);
    assert_eq!(add(&a.url, honest.request(4, 6)).await.0, 200);
    // Another round changes nothing and sends no further alert.
    a.witness.gossip_once().await;
    assert_eq!(split_views(&a.url).await.len(), 1);

    // The alert webhook got one JSON alert from each witness.
    let got = eventually("two alerts", || async {
        let r = alerts.requests();
        (r.len() >= 2).then_some(r)
    })
    .await;
    assert_eq!(got.len(), 2);
    let mut witnesses = Vec::new();
    for r in &got {
        assert_eq!(r.path, "/alert");
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["event"], "split_view");
        assert_eq!(v["origin"], ORIGIN);
        assert!(v["theirs"].as_str().unwrap().contains("\n5\n"));
        witnesses.push(v["witness"].as_str().unwrap().to_owned());
    }
    witnesses.sort();
    assert_eq!(
        witnesses,
        ["witness-a.example.com", "witness-b.example.com"]
    );

    // The operator stops A and clears the block; A cosigns again after the restart.
    let la = listener().await;
    a.stop().await;
    let toml = da.path().join("clear.toml");
    std::fs::write(
        &toml,
        format!(
            "name = \"w\"\nkey_file = \"unused\"\ndata_dir = \"{}\"\n",
            da.path().join("data").display()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sealtrail-witness"))
        .args([
            "clear-split-view",
            "--config",
            toml.to_str().unwrap(),
            "--origin",
            ORIGIN,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cleared: sealtrail_witness::store::SplitView = serde_json::from_slice(&out.stdout).unwrap();
    assert!(cleared.theirs.starts_with(&h2.checkpoint_text(5)));
    let a = start_on(la, cfg_a, key_a);
    assert_eq!(metric(&a.url, SPLIT_METRIC).await, Some(0.0));
    assert!(split_views(&a.url).await.is_empty());
    let (status, _, text) = add(&a.url, h1.request(5, 6)).await;
    assert_eq!(status, 200, "{text}");
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_url_checks_other_sizes_with_tiles() {
    // History 1 has 300 leaves: tiles on two levels. The log serves h1 at size 300.
    let h1 = TestLog::new(ORIGIN, 1, "a", 300);
    let h2 = TestLog::new(ORIGIN, 1, "b", 300);
    let mut files = h1.tiles(300);
    files.insert("checkpoint".into(), h1.checkpoint(300));
    let log_url = static_server(files).await;

    // A witness that cosigned h1 at 260: consistent with the log's 300.
    let d1 = tempfile::tempdir().unwrap();
    let w = start(config(
        d1.path(),
        vec![h1.log_config(Some(log_url.clone()))],
    ))
    .await;
    assert_eq!(add(&w.url, h1.request(0, 260)).await.0, 200);
    w.witness.gossip_once().await;
    assert!(split_views(&w.url).await.is_empty());
    assert_eq!(
        metric(
            &w.url,
            "sealtrail_witness_gossip_checks_total{result=\"consistent\",source=\"log\"}"
        )
        .await,
        Some(1.0)
    );
    w.stop().await;

    // A witness that cosigned h2 at 260: the log's checkpoint of size 300 commits to another
    // root at 260. Split view, proven from the tiles.
    let d2 = tempfile::tempdir().unwrap();
    let w = start(config(
        d2.path(),
        vec![h1.log_config(Some(log_url.clone()))],
    ))
    .await;
    assert_eq!(add(&w.url, h2.request(0, 260)).await.0, 200);
    w.witness.gossip_once().await;
    let splits = split_views(&w.url).await;
    assert_eq!(splits.len(), 1);
    assert_eq!(splits[0]["source"], format!("log {log_url}/checkpoint"));
    assert!(
        splits[0]["reason"]
            .as_str()
            .unwrap()
            .contains("commits to root")
    );
    assert_eq!(metric(&w.url, SPLIT_METRIC).await, Some(1.0));
    w.stop().await;

    // The log serves tiles that do not match its own checkpoint: nothing can be concluded, so
    // no split view is recorded.
    let mut bad = h2.tiles(300);
    bad.insert("checkpoint".into(), h1.checkpoint(300));
    let bad_url = static_server(bad).await;
    let d3 = tempfile::tempdir().unwrap();
    let w = start(config(d3.path(), vec![h1.log_config(Some(bad_url))])).await;
    assert_eq!(add(&w.url, h1.request(0, 100)).await.0, 200);
    w.witness.gossip_once().await;
    assert!(split_views(&w.url).await.is_empty());
    assert_eq!(
        metric(
            &w.url,
            "sealtrail_witness_gossip_checks_total{result=\"unverifiable\",source=\"log\"}"
        )
        .await,
        Some(1.0)
    );
    assert_eq!(add(&w.url, h1.request(100, 101)).await.0, 200);
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smaller_peer_checkpoints_are_checked_against_ours_with_tiles() {
    // We cosigned h1 at 300; the log serves h1's tiles. One peer shows h1 at 100 (consistent),
    // another h2 at 260 (a fork): the tiles at 300 commit to h1's root at 260.
    let h1 = TestLog::new(ORIGIN, 1, "a", 300);
    let h2 = TestLog::new(ORIGIN, 1, "b", 300);
    let mut files = h1.tiles(300);
    files.insert("checkpoint".into(), h1.checkpoint(300));
    let log_url = static_server(files).await;
    let path = monitoring_checkpoint_path(ORIGIN);
    let honest = static_server(HashMap::from([(path.clone(), h1.checkpoint(100))])).await;
    let forked = static_server(HashMap::from([(path, h2.checkpoint(260))])).await;
    let peer_key = Cosigner::from_seed("peer", [9; 32]).unwrap();
    let d = tempfile::tempdir().unwrap();
    let mut c = config(d.path(), vec![h1.log_config(Some(log_url))]);
    c.peers = vec![PeerConfig {
        url: honest.clone(),
        vkey: peer_key.verifier().to_vkey(),
    }];
    let w = start(c.clone()).await;
    assert_eq!(add(&w.url, h1.request(0, 300)).await.0, 200);
    w.witness.gossip_once().await;
    assert!(split_views(&w.url).await.is_empty());
    assert_eq!(
        metric(
            &w.url,
            "sealtrail_witness_gossip_checks_total{result=\"consistent\",source=\"peer\"}"
        )
        .await,
        Some(1.0)
    );
    w.stop().await;

    c.peers[0].url = forked.clone();
    let w = start(c).await;
    w.witness.gossip_once().await;
    let splits = split_views(&w.url).await;
    assert_eq!(splits.len(), 1);
    assert_eq!(
        splits[0]["source"],
        format!("peer {forked}/{}", monitoring_checkpoint_path(ORIGIN))
    );
    assert_eq!(
        splits[0]["theirs"],
        String::from_utf8(h2.checkpoint(260)).unwrap()
    );
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_signatures_from_peers_are_ignored() {
    let h1 = TestLog::new(ORIGIN, 1, "a", 10);
    let h2 = TestLog::new(ORIGIN, 1, "b", 10);
    let peer_key = Cosigner::from_seed("peer", [9; 32]).unwrap();
    let path = monitoring_checkpoint_path(ORIGIN);
    // Peer 1 serves h2 at 5 with a forged log signature; peer 2 serves a correctly log-signed
    // h2 at 5 with a forged cosignature under the peer's key.
    let forged_log = Note::new(
        &h2.checkpoint_text(5),
        vec![NoteSignature::new(ORIGIN, h1.key.key_id(), vec![1; 64]).unwrap()],
    )
    .unwrap()
    .to_bytes();
    let mut forged_peer = Note::parse(&h2.checkpoint(5)).unwrap();
    let mut fake = peer_key
        .cosign(&h2.checkpoint_text(5), 7)
        .unwrap()
        .signature()
        .to_vec();
    fake[20] ^= 1;
    forged_peer
        .push_signature(NoteSignature::new("peer", peer_key.key_id(), fake).unwrap())
        .unwrap();
    let p1 = static_server(HashMap::from([(path.clone(), forged_log)])).await;
    let p2 = static_server(HashMap::from([(path.clone(), forged_peer.to_bytes())])).await;
    let p3 = static_server(HashMap::new()).await;

    let d = tempfile::tempdir().unwrap();
    let mut c = config(d.path(), vec![h1.log_config(None)]);
    c.peers = [p1, p2, p3]
        .into_iter()
        .map(|url| PeerConfig {
            url,
            vkey: peer_key.verifier().to_vkey(),
        })
        .collect();
    let w = start(c).await;
    assert_eq!(add(&w.url, h1.request(0, 5)).await.0, 200);
    w.witness.gossip_once().await;
    assert!(split_views(&w.url).await.is_empty());
    for (result, n) in [
        ("bad_signature", 1.0),
        ("bad_peer_signature", 1.0),
        ("not_found", 1.0),
    ] {
        let m =
            format!("sealtrail_witness_gossip_checks_total{{result=\"{result}\",source=\"peer\"}}");
        assert_eq!(metric(&w.url, &m).await, Some(n), "{result}");
    }
    assert_eq!(add(&w.url, h1.request(5, 6)).await.0, 200);
    w.stop().await;
}
