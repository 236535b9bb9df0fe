//! The read path with a real disk read: a point read whose store had to read from the disk (a
//! file whose pages were evicted from the page cache) is seen through the thread's block-read
//! count, and sends the following point reads to the blocking pool. A stall without a disk read
//! is tested in `api.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::sync::Arc;

use axum::http::StatusCode;
use common::*;
use nix::sys::resource::{UsageWho, getrusage};
use sealtrail_server::store::mem::{MemStore, ReadDelay};

/// Drops `path`'s (clean) pages from the page cache.
fn evict(path: &Path) {
    let f = std::fs::File::open(path).unwrap();
    f.sync_all().unwrap();
    rustix::fs::fadvise(&f, 0, None, rustix::fs::Advice::DontNeed).unwrap();
}

fn block_reads() -> nix::libc::c_long {
    getrusage(UsageWho::RUSAGE_THREAD).unwrap().block_reads()
}

#[tokio::test]
async fn a_point_read_from_the_disk_sends_the_next_ones_to_the_pool() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("on-disk");
    std::fs::write(&file, vec![7u8; 1 << 20]).unwrap();
    // Can this machine show it? Not on tmpfs (nothing to evict) or without task I/O accounting.
    evict(&file);
    let before = block_reads();
    std::fs::read(&file).unwrap();
    if block_reads() == before {
        eprintln!(
            "skipped: this filesystem or kernel does not show a thread's disk reads \
             (tmpfs, or no task I/O accounting)"
        );
        return;
    }

    let store = Arc::new(MemStore::new());
    let log = TestLog::start(config(), store.clone());
    assert_eq!(
        log.post_json("/v1/entries", "{\"a\":1}").await.status,
        StatusCode::CREATED
    );
    let want = log.get("/v1/entries/0").await.json();
    let inline = r#"sealtrail_point_reads_total{path="inline"}"#;
    let pool = r#"sealtrail_point_reads_total{path="pool"}"#;
    let m = log.get("/metrics").await.text();
    assert_eq!((metric(&m, inline), metric(&m, pool)), (1, 0));
    assert_eq!(metric(&m, "sealtrail_slow_inline_reads_total"), 0);

    // The next entry read reads the evicted file first: quick (well under the 10 ms stall
    // limit on most disks) but from the disk.
    evict(&file);
    store.delay_entry_reads(1, ReadDelay::ReadFile(file.clone()));
    let r = log.get("/v1/entries/0").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json(), want);
    let m = log.get("/metrics").await.text();
    assert_eq!((metric(&m, inline), metric(&m, pool)), (2, 0));
    assert_eq!(metric(&m, "sealtrail_slow_inline_reads_total"), 1, "{m}");
    log.stop().await;
}
