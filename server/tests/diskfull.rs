//! A full disk, on a real size-limited filesystem (a tmpfs mounted by the test; needs root, as CI
//! and this project's machines run): writes are refused with 503 `disk_full` before the store is
//! touched, reads keep working, nothing acknowledged is lost, and writes resume once the
//! filesystem is grown. And with the guard off, a real ENOSPC inside the store's commit: writes
//! stop, and after a restart every acknowledged entry is there and fsck passes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use axum::http::StatusCode;
use common::{ORIGIN, TestLog, config, verifier};
use sealtrail_server::store::{Engine, LogStore};

/// A tmpfs of `mib` MiB, unmounted on drop.
struct Tmpfs {
    dir: PathBuf,
    _parent: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(mib: u64) -> Self {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("fs");
        std::fs::create_dir(&dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(&dir)
            .output()
            .expect("running mount(8)");
        assert!(
            out.status.success(),
            "this test mounts a small tmpfs and needs root, or a user namespace (scripts/test runs the tests in one when not root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs {
            dir,
            _parent: parent,
        }
    }

    fn resize(&self, mib: u64) {
        let ok = Command::new("mount")
            .args(["-o", &format!("remount,size={mib}m")])
            .arg(&self.dir)
            .status()
            .unwrap()
            .success();
        assert!(ok, "remount");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).status();
    }
}

fn open(dir: &Path) -> Arc<dyn LogStore> {
    Arc::from(sealtrail_server::store::open(Engine::Redb, dir).unwrap())
}

/// A 1000-entry batch of ~1 KiB JSON payloads.
fn batch(tag: usize) -> String {
    let pad = "x".repeat(1000);
    let items: Vec<String> = (0..1000)
        .map(|i| format!("{{\"b\":{tag},\"i\":{i},\"p\":\"{pad}\"}}"))
        .collect();
    format!("[{}]", items.join(","))
}

/// Appends batches until one is refused; returns the acknowledged size and the refusal.
async fn fill(log: &TestLog, limit: usize) -> (u64, common::Resp) {
    let mut size = 0;
    for tag in 0..limit {
        let r = log.post_json("/v1/entries/batch", &batch(tag)).await;
        if r.status != StatusCode::CREATED {
            return (size, r);
        }
        size = r.json()["tree_size"].as_u64().unwrap();
    }
    panic!("the filesystem never filled up after {limit} batches");
}

fn fsck_ok(store: &dyn LogStore) -> u64 {
    let report = sealtrail_server::fsck::fsck(store, ORIGIN, &verifier()).unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    report.size
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nearly_full_disk_refuses_writes_keeps_reads_and_recovers() {
    let fs = Tmpfs::mount(24);
    let mut c = config();
    c.data_dir = fs.dir.clone();
    c.limits.min_free_bytes = 4 << 20;
    let store = open(&fs.dir);
    let log = TestLog::start(c, store.clone());
    let (acked, refused) = fill(&log, 200).await;
    assert!(acked > 0);
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refused.error_code(), "disk_full");
    assert!(refused.headers.contains_key("retry-after"));
    // Nothing of the refused batch was written, and reads go on.
    let cp = log.checkpoint().await;
    assert_eq!(cp.checkpoint().size(), acked);
    assert_eq!(
        log.get(&format!("/v1/entries/{}", acked - 1)).await.status,
        StatusCode::OK
    );
    assert_eq!(log.get("/tile/0/000").await.status, StatusCode::OK);
    let metrics = log.get("/metrics").await.text();
    assert!(
        metrics.contains("sealtrail_errors_total{category=\"disk_full\"}"),
        "{metrics}"
    );
    // Grow the filesystem: writes resume without a restart.
    fs.resize(96);
    let r = log.post_json("/v1/entries/batch", &batch(999)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.json()["first_index"].as_u64().unwrap(), acked);
    log.stop().await;
    assert_eq!(fsck_ok(store.as_ref()), acked + 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enospc_inside_a_commit_loses_nothing_acknowledged() {
    let fs = Tmpfs::mount(16);
    let mut c = config();
    c.data_dir = fs.dir.clone();
    c.limits.min_free_bytes = 0;
    let store = open(&fs.dir);
    let log = TestLog::start(c.clone(), store.clone());
    let (acked, refused) = fill(&log, 200).await;
    assert!(acked > 0);
    assert_eq!(
        refused.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        refused.text()
    );
    // The sequencer fails closed: later writes are refused too, even with space back.
    fs.resize(64);
    let r = log.post_json("/v1/entries", "{}").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    // Liveness fails, so a supervisor restarts it; reads of what is durable still answer.
    assert_eq!(
        log.get("/livez").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        log.get("/readyz").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    log.stop().await;
    drop(store);
    // A restart finds every acknowledged entry and a consistent store, and appends again.
    let store = open(&fs.dir);
    assert_eq!(fsck_ok(store.as_ref()), acked);
    let log = TestLog::start(c, store.clone());
    let r = log.post_json("/v1/entries", "{}").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.json()["index"].as_u64().unwrap(), acked);
    log.stop().await;
}
