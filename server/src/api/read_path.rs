//! Where a read runs: point reads inline on the HTTP worker unless the store recently read from
//! the disk, scans on the blocking pool.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::{ApiError, AppState};
use crate::store::LogStore;

use super::cache::TileCache;

/// After an inline point read that waited for the disk, point reads go to the blocking pool for
/// this many times as long as it waited, so a worker spends at most about a tenth of its time
/// blocked on the disk inline.
const POOL_FACTOR: u32 = 10;
/// The longest stretch of pooled point reads after one slow inline read.
const MAX_POOL_STRETCH: Duration = Duration::from_secs(1);
/// An inline point read that took longer than this counts as having waited for the disk even
/// where the kernel does not account a thread's block reads (a read from memory takes tens of
/// microseconds; preemption on a busy machine adds a few milliseconds at most).
const STALLED_INLINE_READ: Duration = Duration::from_millis(10);

/// Where point reads run: a proof, a tile, an entry. Handing one to the blocking pool and back
/// costs two thread wake-ups, about 30 µs of CPU here (a third of an inclusion proof on a
/// 10M-entry log, measured in BENCHMARKS.md), while the read itself normally comes from memory
/// (the store's cache or the kernel's page cache). So point reads run inline on the HTTP
/// worker. When one of them had to read from the disk (the thread's block-read count went up)
/// or stalled, the following ones go to the blocking pool for ten times as long as it took (at
/// most a second), where disk reads overlap instead of holding up a worker: with a cold page
/// cache (after a reboot) reads mostly run on the pool, with a warm one almost all run inline.
/// Scans (entry pages, bundles, search) always use the pool.
#[derive(Debug)]
pub struct ReadPath {
    epoch: Instant,
    /// Microseconds after `epoch` until which point reads go to the pool.
    pool_until_us: AtomicU64,
    stalled: Duration,
}

impl Default for ReadPath {
    fn default() -> Self {
        ReadPath::new(STALLED_INLINE_READ)
    }
}

impl ReadPath {
    /// A read path that counts an inline read taking longer than `stalled` as a disk wait.
    pub fn new(stalled: Duration) -> Self {
        ReadPath {
            epoch: Instant::now(),
            pool_until_us: AtomicU64::new(0),
            stalled,
        }
    }

    fn micros(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_micros()).unwrap_or(u64::MAX)
    }

    /// Whether a point read starting at `now` goes to the blocking pool.
    pub fn pooled_at(&self, now: Instant) -> bool {
        self.micros(now) < self.pool_until_us.load(Ordering::Relaxed)
    }

    /// Records an inline read from `start` to `end` that did (`disk`) or did not read from the
    /// disk. True if it read from the disk or stalled, and point reads now go to the pool.
    pub fn finished_inline(&self, start: Instant, end: Instant, disk: bool) -> bool {
        let took = end.saturating_duration_since(start);
        if !disk && took <= self.stalled {
            return false;
        }
        let until = self.micros(end + (took * POOL_FACTOR).min(MAX_POOL_STRETCH));
        self.pool_until_us.fetch_max(until, Ordering::Relaxed);
        true
    }
}

/// Block reads this thread has made so far (`None` where the kernel does not say).
fn thread_block_reads() -> Option<nix::libc::c_long> {
    nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_THREAD)
        .ok()
        .map(|u| u.block_reads())
}

/// Runs a point read (a bounded amount of store work: a proof, a tile, an entry) where
/// [`ReadPath`] says: inline, or on the blocking pool after a recent read from the disk.
pub(super) async fn point_read<T: Send + 'static>(
    st: &AppState,
    f: impl FnOnce(&dyn LogStore, &TileCache) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let start = Instant::now();
    if st.reads.pooled_at(start) {
        st.metrics.point_reads_pool.inc();
        return blocking(st, f).await;
    }
    st.metrics.point_reads_inline.inc();
    let before = thread_block_reads();
    let remote = crate::store::pg_store::remote_reads();
    let out = f(st.store.as_ref(), &st.cache);
    // A read that went to the disk, or across the network to PostgreSQL, waited.
    let disk = matches!((before, thread_block_reads()), (Some(a), Some(b)) if b > a)
        || crate::store::pg_store::remote_reads() > remote;
    if st.reads.finished_inline(start, Instant::now(), disk) {
        st.metrics.slow_inline_reads.inc();
    }
    out
}

/// Runs store work on the blocking pool.
pub(super) async fn blocking<T: Send + 'static>(
    st: &AppState,
    f: impl FnOnce(&dyn LogStore, &TileCache) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let store = st.store.clone();
    let cache = st.cache.clone();
    tokio::task::spawn_blocking(move || f(store.as_ref(), &cache))
        .await
        .map_err(|e| ApiError::Internal(format!("blocking task: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_path_pools_for_ten_times_a_slow_read() {
        let p = ReadPath::new(Duration::from_millis(10));
        let t0 = Instant::now();
        assert!(!p.pooled_at(t0));
        // Fast and from memory: stays inline.
        assert!(!p.finished_inline(t0, t0 + Duration::from_micros(50), false));
        // Slow but under the stall limit, without a disk read: stays inline.
        assert!(!p.finished_inline(t0, t0 + Duration::from_millis(9), false));
        assert!(!p.pooled_at(t0 + Duration::from_millis(9)));
        // A 2 ms read that went to the disk: pooled for the next 20 ms.
        let end = t0 + Duration::from_millis(2);
        assert!(p.finished_inline(t0, end, true));
        assert!(p.pooled_at(end + Duration::from_millis(19)));
        assert!(!p.pooled_at(end + Duration::from_millis(21)));
        // A stall without a disk read counts too, and a shorter later one never shortens the
        // window.
        let t1 = t0 + Duration::from_millis(100);
        let end = t1 + Duration::from_millis(30);
        assert!(p.finished_inline(t1, end, false));
        assert!(p.finished_inline(t1, t1 + Duration::from_micros(100), true));
        assert!(p.pooled_at(end + Duration::from_millis(299)));
        assert!(!p.pooled_at(end + Duration::from_millis(301)));
        // At most a second, however long the read.
        let t2 = t0 + Duration::from_secs(10);
        let end = t2 + Duration::from_secs(5);
        assert!(p.finished_inline(t2, end, true));
        assert!(p.pooled_at(end + Duration::from_millis(999)));
        assert!(!p.pooled_at(end + Duration::from_millis(1001)));
    }
}
