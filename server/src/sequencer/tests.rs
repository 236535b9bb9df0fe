//! The sequencer with its threads, on an in-memory store.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use sealtrail_spec::envelope::LeafEnvelope;

use super::*;
use crate::store::mem::MemStore;
use crate::store::{EntryStore as _, LeafIndex as _};

const ORIGIN: &str = "example.com/pipeline";

fn log(store: &Arc<MemStore>) -> (SequencerHandle, std::thread::JoinHandle<()>) {
    let signer = Ed25519Signer::from_seed(ORIGIN, [7; 32]).unwrap();
    let config = SequencerConfig {
        origin: ORIGIN.into(),
        queue_entries: 1000,
        commit_max_entries: 100,
        disk_guard: None,
    };
    start(
        store.clone(),
        signer,
        &config,
        Arc::new(Metrics::new().unwrap()),
    )
    .unwrap()
}

fn entry(payload: &str) -> Vec<NewEntry> {
    vec![NewEntry {
        principal: "tester".into(),
        content_type: "application/json".into(),
        event_type: None,
        payload: payload.as_bytes().to_vec(),
    }]
}

fn key(k: u8, payload: &str) -> Option<Idempotency> {
    Some(Idempotency {
        key: [k; 32],
        request_hash: sealtrail_spec::hash::sha256(payload.as_bytes()),
    })
}

/// `f`'s output, or a failure if it takes more than 30 s (an answer that never comes).
async fn answer<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(std::time::Duration::from_secs(30), f)
        .await
        .expect("no answer within 30 s")
}

/// Polls `f` once, which sends its submission: the sequencer takes messages in order.
async fn send<F: Future + Unpin>(f: &mut F) {
    std::future::poll_fn(|cx| {
        assert!(
            Pin::new(&mut *f).poll(cx).is_pending(),
            "answered too early"
        );
        Poll::Ready(())
    })
    .await;
}

/// While the writer commits one batch, the next is gathered: a repeat of an idempotency key
/// in the batch being committed is a duplicate of it, a different request under that key a
/// conflict, and new entries go into the next commit at the following indices.
#[tokio::test]
async fn the_next_batch_gathers_while_one_commits() {
    let store = Arc::new(MemStore::new());
    let (seq, thread) = log(&store);
    store.hold_commits(true);
    let mut a = Box::pin(seq.submit(entry("{\"a\":1}"), key(1, "{\"a\":1}")));
    send(&mut a).await;
    store.wait_for_held_commits(1);
    let mut again = Box::pin(seq.submit(entry("{\"a\":1}"), key(1, "{\"a\":1}")));
    send(&mut again).await;
    let mut next = Box::pin(seq.submit(entry("{\"b\":2}"), None));
    send(&mut next).await;
    // Answered at once, and after the two above were gathered (messages are taken in order).
    match answer(seq.submit(entry("{\"c\":3}"), key(1, "{\"c\":3}"))).await {
        Err(SequenceError::IdempotencyConflict(0)) => {}
        other => panic!("expected a conflict with entry 0, got {other:?}"),
    }
    assert_eq!(store.commits(), 0, "the first commit is still held");
    store.hold_commits(false);
    let a = a.await.unwrap();
    let again = again.await.unwrap();
    let next = next.await.unwrap();
    assert_eq!((a.first_index, a.duplicate), (0, false));
    assert_eq!((again.first_index, again.duplicate), (0, true));
    assert_eq!(again.leaf_hashes, a.leaf_hashes);
    assert_eq!(again.time_ms, a.time_ms);
    assert_eq!((next.first_index, next.duplicate), (1, false));
    assert_eq!(next.published.size, 2);
    assert_eq!(store.commits(), 2, "one commit each");
    assert!(next.time_ms >= a.time_ms);
    seq.shutdown();
    thread.join().unwrap();
}

/// A batch gathered behind a commit that fails is refused and never written. (Two things
/// see to that: the writer refuses batches after a failure, and the store refuses a batch
/// built on a size it does not hold.)
#[tokio::test]
async fn a_failed_commit_refuses_the_batch_gathered_behind_it() {
    let store = Arc::new(MemStore::new());
    let (seq, thread) = log(&store);
    store.hold_commits(true);
    store.fail_commits(1);
    let mut a = Box::pin(seq.submit(entry("{\"a\":1}"), key(1, "{\"a\":1}")));
    send(&mut a).await;
    store.wait_for_held_commits(1);
    let mut behind = Box::pin(seq.submit(entry("{\"b\":2}"), None));
    send(&mut behind).await;
    assert!(matches!(
        answer(seq.submit(entry("{\"c\":3}"), key(1, "{\"c\":3}"))).await,
        Err(SequenceError::IdempotencyConflict(0))
    ));
    store.hold_commits(false);
    // The batch whose commit failed says why, by category; everything after it names the
    // earlier failure.
    let Err(SequenceError::Unavailable(why)) = a.await else {
        panic!("the failed commit was not refused");
    };
    assert!(
        matches!(
            &why,
            Unavailable::Commit(CommitError::Store { entries: 1, .. })
        ),
        "{why:?}"
    );
    assert_eq!(why.category(), "commit");
    assert!(
        why.to_string().starts_with("commit of 1 entries failed: "),
        "{why}"
    );
    assert!(matches!(
        behind.await,
        Err(SequenceError::Unavailable(Unavailable::EarlierFailure))
    ));
    assert!(seq.is_failed());
    assert_eq!(store.tree_size().unwrap(), 0);
    assert_eq!(store.commits(), 0);
    let later = seq.submit(entry("{\"d\":4}"), None).await;
    let Err(SequenceError::Unavailable(later)) = later else {
        panic!("a write after the failure was not refused");
    };
    assert_eq!(later.category(), "earlier_failure");
    assert_eq!(
        SequenceError::Unavailable(later).to_string(),
        "the log is not accepting writes: an earlier commit failed"
    );
    seq.shutdown();
    thread.join().unwrap();
}

/// A repeat of a committed request is answered with the stored entry's index, hashes and
/// sequencing time.
#[tokio::test]
async fn a_repeat_of_a_stored_request_gets_the_stored_answer() {
    let store = Arc::new(MemStore::new());
    let (seq, thread) = log(&store);
    let first = seq
        .submit(entry("{\"a\":1}"), key(1, "{\"a\":1}"))
        .await
        .unwrap();
    seq.submit(entry("{\"b\":2}"), None).await.unwrap();
    let again = seq
        .submit(entry("{\"a\":1}"), key(1, "{\"a\":1}"))
        .await
        .unwrap();
    assert!(again.duplicate);
    assert_eq!(again.first_index, 0);
    assert_eq!(again.leaf_hashes, first.leaf_hashes);
    assert_eq!(again.time_ms, first.time_ms);
    assert_eq!(again.published.size, 2);
    seq.shutdown();
    thread.join().unwrap();
}

/// Leaf-index runs are written whichever way batches fall across them: a batch that
/// completes one run from the unfinished one, spans a whole second run and starts a third,
/// then small batches that go on from its tail (checked by fsck, which rebuilds every row).
#[tokio::test]
async fn leaf_index_runs_are_whole_across_a_batch_larger_than_a_run() {
    let run = crate::leafindex::RUN;
    let store = Arc::new(MemStore::new());
    let (seq, thread) = log(&store);
    let mut last = None;
    for i in 0..3 {
        last = Some(
            seq.submit(entry(&format!("{{\"i\":{i}}}")), None)
                .await
                .unwrap(),
        );
    }
    let time_ms = last.unwrap().time_ms;
    let leaves: Vec<ImportEntry> = (0..2 * run + 10)
        .map(|i| {
            let record = sealtrail_spec::record::PrivateRecord {
                salt: [i as u8; 32],
                principal: "importer".into(),
                payload: format!("{{\"imported\":{i}}}").into_bytes(),
            };
            ImportEntry {
                leaf: record
                    .leaf(time_ms, "application/json", None)
                    .encode()
                    .unwrap(),
                record: ImportRecord::Live(record),
            }
        })
        .collect();
    let importer = seq.clone();
    let published =
        tokio::task::spawn_blocking(move || importer.import_blocking(leaves, Vec::new()))
            .await
            .unwrap()
            .unwrap();
    assert_eq!(published.size, 2 * run + 13);
    for i in 0..5 {
        seq.submit(entry(&format!("{{\"after\":{i}}}")), None)
            .await
            .unwrap();
    }
    seq.shutdown();
    thread.join().unwrap();
    let signer = Ed25519Signer::from_seed(ORIGIN, [7; 32]).unwrap();
    let report = crate::fsck::fsck(store.as_ref(), ORIGIN, &signer.verifier()).unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!(report.size, 2 * run + 18);
    for r in 0..2 {
        assert!(
            (0..=255u8).any(|b| store.leaf_run(r, b).unwrap().is_some()),
            "run {r} has no rows"
        );
    }
}

/// Small submissions sequenced on the callers' threads and larger ones through the
/// sequencer thread, all at once: every entry gets exactly one index, the indices are
/// contiguous, and sequencing times never go backwards in index order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn inline_and_threaded_submissions_keep_indices_and_times_in_order() {
    let store = Arc::new(MemStore::new());
    let (seq, thread) = log(&store);
    let mut tasks = Vec::new();
    for t in 0..16u32 {
        let seq = seq.clone();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for i in 0..40u32 {
                // Every fourth submission is larger than the inline limit.
                let n = if i % 4 == 3 {
                    INLINE_MAX_ENTRIES + 5
                } else {
                    1
                };
                let entries: Vec<NewEntry> = (0..n)
                    .flat_map(|k| entry(&format!("{{\"t\":{t},\"i\":{i},\"k\":{k}}}")))
                    .collect();
                let done = loop {
                    match seq.submit(entries.clone(), None).await {
                        Err(SequenceError::QueueFull) => tokio::task::yield_now().await,
                        other => break other.unwrap(),
                    }
                };
                assert_eq!(done.leaf_hashes.len(), n);
                got.push((done.first_index, n, done.time_ms));
            }
            got
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    seq.shutdown();
    thread.join().unwrap();
    all.sort_unstable();
    let mut next = 0;
    for (first, n, _) in &all {
        assert_eq!(*first, next, "indices are contiguous and given once");
        next += *n as u64;
    }
    let entries = store.entries(0, next).unwrap();
    assert_eq!(entries.len() as u64, next);
    let times: Vec<u64> = entries
        .iter()
        .map(|e| LeafEnvelope::decode(e).unwrap().time_ms)
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "sequencing times go backwards"
    );
    for (first, _, time_ms) in &all {
        assert_eq!(
            times[*first as usize], *time_ms,
            "the answer's time is the stored one"
        );
    }
}

/// A small submission does not overtake a larger one waiting for room in the batch: while
/// the sequencer thread holds any submission, small ones queue behind it there.
#[tokio::test]
async fn a_small_submission_queues_behind_one_waiting_for_room() {
    let entries = |tag: &str, n: usize| -> Vec<NewEntry> {
        (0..n)
            .flat_map(|k| entry(&format!("{{\"{tag}\":{k}}}")))
            .collect()
    };
    let store = Arc::new(MemStore::new());
    let (seq, thread) = log(&store);
    store.hold_commits(true);
    let mut x = Box::pin(seq.submit(entries("x", 1), None));
    send(&mut x).await;
    store.wait_for_held_commits(1);
    // 60 entries open the next batch; 50 more do not fit beside them (at most 100); one
    // would.
    let mut b = Box::pin(seq.submit(entries("b", 60), None));
    send(&mut b).await;
    let mut c = Box::pin(seq.submit(entries("c", 50), None));
    send(&mut c).await;
    let mut d = Box::pin(seq.submit(entries("d", 1), None));
    send(&mut d).await;
    store.hold_commits(false);
    assert_eq!(answer(x).await.unwrap().first_index, 0);
    assert_eq!(answer(b).await.unwrap().first_index, 1);
    assert_eq!(answer(c).await.unwrap().first_index, 61);
    assert_eq!(answer(d).await.unwrap().first_index, 111);
    seq.shutdown();
    thread.join().unwrap();
}

#[test]
fn only_small_submissions_are_sequenced_on_the_callers_thread() {
    let sized = |n: usize, bytes: usize| -> Vec<NewEntry> {
        (0..n)
            .map(|_| NewEntry {
                principal: "tester".into(),
                content_type: "application/octet-stream".into(),
                event_type: None,
                payload: vec![b'x'; bytes],
            })
            .collect()
    };
    assert!(small_enough(&sized(1, 256)));
    assert!(small_enough(&sized(INLINE_MAX_ENTRIES, 256)));
    assert!(!small_enough(&sized(INLINE_MAX_ENTRIES + 1, 1)));
    assert!(small_enough(&sized(1, 64 * 1024)));
    assert!(!small_enough(&sized(2, 40 * 1024)));
}

/// On shutdown, what was accepted before it (a batch being committed, one gathered on a
/// caller's thread) is committed and answered, and every later submission is refused,
/// whichever way it would have gone.
#[tokio::test]
async fn shutdown_commits_what_was_accepted_and_refuses_the_rest() {
    let store = Arc::new(MemStore::new());
    let (seq, thread) = log(&store);
    store.hold_commits(true);
    let mut a = Box::pin(seq.submit(entry("{\"a\":1}"), None));
    send(&mut a).await;
    store.wait_for_held_commits(1);
    let mut b = Box::pin(seq.submit(entry("{\"b\":2}"), None));
    send(&mut b).await;
    seq.shutdown();
    // Through the thread, behind the shutdown: refused once the thread has seen it.
    let large: Vec<NewEntry> = (0..=INLINE_MAX_ENTRIES)
        .flat_map(|k| entry(&format!("{{\"large\":{k}}}")))
        .collect();
    assert!(matches!(
        answer(seq.submit(large, None)).await,
        Err(SequenceError::ShuttingDown)
    ));
    assert!(matches!(
        answer(seq.submit(entry("{\"c\":3}"), None)).await,
        Err(SequenceError::ShuttingDown)
    ));
    store.hold_commits(false);
    assert_eq!(answer(a).await.unwrap().first_index, 0);
    let b = answer(b).await.unwrap();
    assert_eq!((b.first_index, b.published.size), (1, 2));
    thread.join().unwrap();
    assert_eq!(store.entries(0, 2).unwrap().len(), 2);
    assert!(
        store.entries(2, 3).is_err(),
        "nothing after the shutdown was stored"
    );
}
