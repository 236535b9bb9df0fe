//! Every add-checkpoint status path, the monitoring API, the CAS race and restarts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use sealtrail_spec::checkpoint::{Checkpoint, sign_checkpoint};
use sealtrail_spec::cosignature::CosignatureVerifier;
use sealtrail_spec::note::{self, Ed25519Signer, Note, NoteSignature, Signer as _};
use sealtrail_spec::witness::{monitoring_checkpoint_path, parse_cosignature_lines};
use sealtrail_spec::{EMPTY_ROOT, leaf_hash};

/// Checks a 200 body: exactly one cosignature line that verifies over the checkpoint text with
/// the witness key; returns its timestamp.
fn check_cosignature(body: &str, log: &TestLog, size: u64) -> u64 {
    let lines = parse_cosignature_lines(body.as_bytes()).unwrap();
    assert_eq!(lines.len(), 1, "{body}");
    let v = CosignatureVerifier::from_vkey(&cosigner().verifier().to_vkey()).unwrap();
    v.verify_cosignature(&log.checkpoint_text(size), &lines[0])
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_paths() {
    let dir = tempfile::tempdir().unwrap();
    let log = TestLog::new(ORIGIN, 1, "a", 20);
    let w = start(config(dir.path(), vec![log.log_config(None)])).await;
    let url = &w.url;
    let monitor = format!("{url}/{}", monitoring_checkpoint_path(ORIGIN));

    // Never cosigned: the monitoring API has nothing.
    assert_eq!(get(&monitor).await.0, 404);

    // Success from old 0.
    let (status, ct, text) = add(url, log.request(0, 3)).await;
    assert_eq!(status, 200, "{text}");
    assert!(ct.starts_with("text/plain"), "{ct}");
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let ts = check_cosignature(&text, &log, 3);
    assert!(ts > 1_700_000_000 && ts <= before + 1, "{ts}");

    // The monitoring checkpoint carries the log signature and our cosignature, both valid.
    let (status, served) = get(&monitor).await;
    assert_eq!(status, 200);
    let n = Note::parse(served.as_bytes()).unwrap();
    assert_eq!(n.text(), log.checkpoint_text(3));
    let lv = log.key.verifier();
    let wv = cosigner().verifier();
    assert_eq!(note::verify(&n, &[&lv, &wv]).unwrap(), vec![0, 1]);
    assert_eq!(n.signatures().len(), 2);

    // Re-submitting the same checkpoint gives a (fresh) valid cosignature.
    let (status, _, text) = add(url, log.request(3, 3)).await;
    assert_eq!(status, 200, "{text}");
    check_cosignature(&text, &log, 3);

    // Advance with a proof.
    let (status, _, text) = add(url, log.request(3, 7)).await;
    assert_eq!(status, 200, "{text}");
    check_cosignature(&text, &log, 7);

    // Old size mismatch: 409 with the stored size.
    let (status, ct, text) = add(url, log.request(3, 9)).await;
    assert_eq!(
        (status, ct.as_str(), text.as_str()),
        (409, "text/x.tlog.size", "7\n")
    );
    let (status, _, text) = add(url, log.request(0, 9)).await;
    assert_eq!((status, text.as_str()), (409, "7\n"));

    // Old larger than the checkpoint: 400 (before the 409 check).
    let (status, _, _) = add(url, body(9, &[], &log.checkpoint(8))).await;
    assert_eq!(status, 400);

    // Malformed bodies: 400.
    let cp = log.checkpoint(9);
    let good = log.request(7, 9);
    let proof_line = log.proof(7, 9)[0].to_base64();
    let malformed: Vec<(Vec<u8>, &str)> = vec![
        ([b"\n".as_slice(), &cp].concat(), "no old line"),
        (cp.clone(), "only a checkpoint"),
        (body(7, &vec![leaf_hash(b"x"); 64], &cp), "64 proof lines"),
        (
            [b"old 7\n".as_slice(), b"not base64!\n\n", &cp].concat(),
            "bad base64",
        ),
        (
            [format!("old 7\n{proof_line}\n").as_bytes(), &cp].concat(),
            "missing blank line",
        ),
        ([good.as_slice(), b"garbage\n"].concat(), "trailing garbage"),
        (b"old 7\n\n".to_vec(), "no checkpoint"),
        (
            [b"old 07\n\n".as_slice(), &cp].concat(),
            "non-canonical old",
        ),
        (
            body(
                7,
                &[],
                b"example.com/log\n9\nnot a hash\n\n\xe2\x80\x94 x AAAA\n",
            ),
            "bad checkpoint",
        ),
    ];
    for (b, what) in malformed {
        let (status, _, text) = add(url, b).await;
        assert_eq!(status, 400, "{what}: {text}");
    }

    // Oversized: 413.
    let big = vec![b'a'; 128 * 1024 + 1];
    assert_eq!(add(url, big).await.0, 413);

    // Unknown origin: 404.
    let other = TestLog::new("example.com/other", 1, "a", 5);
    assert_eq!(add(url, other.request(0, 3)).await.0, 404);

    // Signed by an unknown key only: 403. Signed with a forged signature under the log's key
    // name and ID: 403.
    let stranger = TestLog::new(ORIGIN, 2, "a", 20);
    let (status, _, text) = add(url, stranger.request(7, 9)).await;
    assert_eq!(status, 403, "{text}");
    let forged = NoteSignature::new(ORIGIN, log.key.key_id(), vec![7; 64]).unwrap();
    let forged = Note::new(&log.checkpoint_text(9), vec![forged])
        .unwrap()
        .to_bytes();
    let (status, _, text) = add(url, body(7, &log.proof(7, 9), &forged)).await;
    assert_eq!(status, 403, "{text}");
    // A valid log signature next to an invalid one for the same key: 403 too.
    let mut both = Note::parse(&log.checkpoint(9)).unwrap();
    both.push_signature(NoteSignature::new(ORIGIN, log.key.key_id(), vec![7; 64]).unwrap())
        .unwrap();
    let (status, _, _) = add(url, body(7, &log.proof(7, 9), &both.to_bytes())).await;
    assert_eq!(status, 403);

    // Bad proof: 422; a proof of the wrong length: 422.
    let mut bad = log.proof(7, 9);
    bad[0].0[0] ^= 1;
    assert_eq!(add(url, body(7, &bad, &log.checkpoint(9))).await.0, 422);
    let short = &log.proof(7, 9)[1..];
    assert_eq!(add(url, body(7, short, &log.checkpoint(9))).await.0, 422);

    // Nothing of the refused requests changed the state.
    let (_, served) = get(&monitor).await;
    assert_eq!(
        Note::parse(served.as_bytes()).unwrap().text(),
        log.checkpoint_text(7)
    );

    // Other checkpoint signatures (say another witness's cosignature) are accepted and ignored.
    let mut extra = Note::parse(&log.checkpoint(9)).unwrap();
    let w2 = sealtrail_spec::cosignature::Cosigner::from_seed("w2", [5; 32]).unwrap();
    extra
        .push_signature(w2.cosign(&log.checkpoint_text(9), 5).unwrap())
        .unwrap();
    let (status, _, text) = add(url, body(7, &log.proof(7, 9), &extra.to_bytes())).await;
    assert_eq!(status, 200, "{text}");
    let (_, served) = get(&monitor).await;
    let n = Note::parse(served.as_bytes()).unwrap();
    assert_eq!(
        n.signatures().len(),
        2,
        "the unknown cosignature is not kept"
    );
    assert!(n.signatures().iter().all(|s| s.name() != "w2"));

    assert_eq!(
        metric(url, "sealtrail_witness_add_checkpoint_total{result=\"ok\"}").await,
        Some(4.0)
    );
    assert_eq!(
        metric(
            url,
            "sealtrail_witness_cosigned_tree_size{origin=\"example.com/log\"}"
        )
        .await,
        Some(9.0)
    );
    assert_eq!(get(&format!("{url}/livez")).await.0, 200);
    assert_eq!(get(&format!("{url}/readyz")).await.0, 200);
    assert_eq!(
        get(&format!("{url}/{}/checkpoint", "00".repeat(32)))
            .await
            .0,
        404
    );
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_trees_and_old_zero() {
    let dir = tempfile::tempdir().unwrap();
    let a = TestLog::new("example.com/a", 1, "a", 8);
    let b = TestLog::new("example.com/b", 3, "b", 8);
    let w = start(config(
        dir.path(),
        vec![a.log_config(None), b.log_config(None)],
    ))
    .await;
    let url = &w.url;

    // Old 0 with a non-empty proof: 422.
    let (status, _, text) = add(url, body(0, &[leaf_hash(b"x")], &a.checkpoint(4))).await;
    assert_eq!(status, 422, "{text}");

    // Size 0 with a root other than the empty-tree root: 422; with it: 200.
    let zero = |root| {
        sign_checkpoint(&Checkpoint::new("example.com/b", 0, root).unwrap(), &b.key).unwrap()
    };
    assert_eq!(add(url, body(0, &[], &zero(leaf_hash(b"r")))).await.0, 422);
    let (status, _, text) = add(url, body(0, &[], &zero(EMPTY_ROOT))).await;
    assert_eq!(status, 200, "{text}");
    // From the stored empty tree, on to size 5.
    let (status, _, text) = add(url, b.request(0, 5)).await;
    assert_eq!(status, 200, "{text}");
    check_cosignature(&text, &b, 5);
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_size_different_root_is_refused_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let log = TestLog::new(ORIGIN, 1, "a", 10);
    let fork = TestLog::new(ORIGIN, 1, "b", 10);
    let w = start(config(dir.path(), vec![log.log_config(None)])).await;
    let url = &w.url;
    assert_eq!(add(url, log.request(0, 5)).await.0, 200);
    let (status, _, text) = add(url, body(5, &[], &fork.checkpoint(5))).await;
    assert_eq!(status, 422, "{text}");

    // Two validly signed checkpoints of one size with different roots: evidence is kept and
    // the log is no longer cosigned, even consistently.
    let (status, json) = get(&format!("{url}/split-views")).await;
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let s = &v["split_views"][0];
    assert_eq!(s["origin"], ORIGIN);
    assert_eq!(s["source"], "add-checkpoint");
    assert_eq!(s["theirs"], String::from_utf8(fork.checkpoint(5)).unwrap());
    assert!(
        s["ours"]
            .as_str()
            .unwrap()
            .starts_with(&log.checkpoint_text(5))
    );
    let (status, _, text) = add(url, log.request(5, 6)).await;
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("split view"), "{text}");
    assert_eq!(
        metric(
            url,
            "sealtrail_witness_split_view{origin=\"example.com/log\"}"
        )
        .await,
        Some(1.0)
    );
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_submissions_never_roll_back() {
    let dir = tempfile::tempdir().unwrap();
    let log = TestLog::new(ORIGIN, 1, "a", 200);
    let w = start(config(dir.path(), vec![log.log_config(None)])).await;
    let url = w.url.clone();
    let mut current = 4u64;
    assert_eq!(add(&url, log.request(0, current)).await.0, 200);
    for round in 0..6u64 {
        // Eight requests from the same old size to different new sizes, sent at once. Without
        // compare-and-swap several would succeed and the last writer (possibly the smallest)
        // would win, rolling the state back.
        let targets: Vec<u64> = (1..=8).map(|i| current + i * (round + 1)).collect();
        let tasks: Vec<_> = targets
            .iter()
            .map(|&t| {
                let (url, b) = (url.clone(), log.request(current, t));
                tokio::spawn(async move { (t, add(&url, b).await) })
            })
            .collect();
        let mut winners = Vec::new();
        let mut conflicts = Vec::new();
        for task in tasks {
            let (t, (status, _, text)) = task.await.unwrap();
            match status {
                200 => winners.push(t),
                409 => conflicts.push(text),
                other => panic!("unexpected {other}: {text}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        let won = winners[0];
        assert!(
            conflicts.iter().all(|c| *c == format!("{won}\n")),
            "{conflicts:?}"
        );
        let (_, served) = get(&format!("{url}/{}", monitoring_checkpoint_path(ORIGIN))).await;
        assert_eq!(
            Note::parse(served.as_bytes()).unwrap().text(),
            log.checkpoint_text(won)
        );
        current = won;
    }
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_state() {
    let dir = tempfile::tempdir().unwrap();
    let log = TestLog::new(ORIGIN, 1, "a", 20);
    let fork = TestLog::new(ORIGIN, 1, "b", 20);
    let cfg = config(dir.path(), vec![log.log_config(None)]);
    let w = start(cfg.clone()).await;
    assert_eq!(add(&w.url, log.request(0, 5)).await.0, 200);
    w.stop().await;

    let w = start(cfg).await;
    let url = &w.url;
    let (status, _, text) = add(url, log.request(0, 3)).await;
    assert_eq!((status, text.as_str()), (409, "5\n"));
    assert_eq!(add(url, body(5, &[], &log.checkpoint(3))).await.0, 400);
    // A bigger checkpoint of another history, with that history's own proof: 422.
    assert_eq!(add(url, fork.request(5, 8)).await.0, 422);
    let (status, served) = get(&format!("{url}/{}", monitoring_checkpoint_path(ORIGIN))).await;
    assert_eq!(status, 200);
    assert_eq!(
        Note::parse(served.as_bytes()).unwrap().text(),
        log.checkpoint_text(5)
    );
    assert_eq!(
        metric(
            url,
            "sealtrail_witness_cosigned_tree_size{origin=\"example.com/log\"}"
        )
        .await,
        Some(5.0)
    );
    assert_eq!(add(url, log.request(5, 8)).await.0, 200);
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits() {
    let dir = tempfile::tempdir().unwrap();
    let a = TestLog::new("example.com/a", 1, "a", 8);
    let b = TestLog::new("example.com/b", 2, "b", 8);
    let mut cfg = config(dir.path(), vec![a.log_config(None), b.log_config(None)]);
    // Refill so slow that no token comes back during the test.
    cfg.rate_limits.per_log_per_second = 0.0001;
    cfg.rate_limits.per_log_burst = 2;
    cfg.rate_limits.total_per_second = 0.0001;
    cfg.rate_limits.total_burst = 4;
    let w = start(cfg).await;
    let url = &w.url;
    assert_eq!(add(url, a.request(0, 1)).await.0, 200);
    assert_eq!(add(url, a.request(1, 2)).await.0, 200);
    let r = client()
        .post(format!("{url}/add-checkpoint"))
        .body(a.request(2, 3))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    // The other log has its own bucket...
    assert_eq!(add(url, b.request(0, 1)).await.0, 200);
    // ...but the overall bucket (4, including the refused request) is now empty.
    assert_eq!(add(url, b.request(1, 2)).await.0, 429);
    assert_eq!(
        metric(
            url,
            "sealtrail_witness_add_checkpoint_total{result=\"rate_limited\"}"
        )
        .await,
        Some(2.0)
    );
    w.stop().await;
}

#[test]
fn forged_key_sanity() {
    // The test log key and the "stranger" key share the name but not the key ID, so the
    // stranger's signature is unknown to the witness (403 Unverified, not InvalidSignature).
    let a = Ed25519Signer::from_seed(ORIGIN, [1; 32]).unwrap();
    let b = Ed25519Signer::from_seed(ORIGIN, [2; 32]).unwrap();
    assert_ne!(a.key_id(), b.key_id());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_chunked_body_is_413() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let dir = tempfile::tempdir().unwrap();
    let log = TestLog::new(ORIGIN, 1, "a", 4);
    let w = start(config(dir.path(), vec![log.log_config(None)])).await;
    // No Content-Length: the limit must hold while streaming.
    let addr = w.url.trim_start_matches("http://").to_owned();
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /add-checkpoint HTTP/1.1\r\nHost: {addr}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b'a'; 16 * 1024];
    for _ in 0..9 {
        let r = async {
            s.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                .await?;
            s.write_all(&chunk).await?;
            s.write_all(b"\r\n").await
        }
        .await;
        if r.is_err() {
            break; // the witness answered and closed early
        }
    }
    let _ = s.write_all(b"0\r\n\r\n").await;
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp).await;
    let resp = String::from_utf8_lossy(&resp);
    assert!(resp.starts_with("HTTP/1.1 413"), "{resp}");
    // The witness still works.
    assert_eq!(add(&w.url, log.request(0, 4)).await.0, 200);
    w.stop().await;
}
