//! `--fsync-probe`: the durable-write latency of this machine's disk, measured without a server.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::stats::{Latency, latency};

/// The durable-write latency of this machine's disk, tail included: what a sequencer commit can
/// never beat. From `--fsync-probe`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct FsyncProbe {
    /// Durable writes made (4 KiB each, then `fdatasync`).
    pub syncs: u64,
    /// Seconds the probe ran.
    pub elapsed_s: f64,
    /// Latency of one write plus `fdatasync`, in milliseconds.
    pub latency_ms: Latency,
    /// Syncs slower than 25 ms.
    pub over_25ms: u64,
}

/// Rewrites 4 KiB blocks of a 2 MiB file in `dir` and `fdatasync`s after each, for `duration`
/// (at most `max_syncs` syncs), timing each; the file is removed afterwards. The same kind of
/// write a commit ends with, without the store: its tail is the disk's.
pub fn fsync_probe(
    dir: &std::path::Path,
    duration: Duration,
    max_syncs: u64,
) -> std::io::Result<FsyncProbe> {
    use std::os::unix::fs::FileExt as _;
    const BLOCK: usize = 4096;
    const BLOCKS: u64 = 512;
    let path = dir.join(format!("sealtrail-fsync-probe-{}", std::process::id()));
    let file = std::fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .open(&path)?;
    let run = || {
        let block = vec![0x5a_u8; BLOCK];
        // Allocate the whole file first, so the timed syncs are overwrites.
        for b in 0..BLOCKS {
            file.write_all_at(&block, b * BLOCK as u64)?;
        }
        file.sync_all()?;
        let mut us = Vec::new();
        let start = Instant::now();
        let mut n = 0u64;
        while n < max_syncs && start.elapsed() < duration {
            let t = Instant::now();
            file.write_all_at(&block, (n % BLOCKS) * BLOCK as u64)?;
            file.sync_data()?;
            // Rounded up: on a filesystem where a sync costs under a microsecond (tmpfs) every
            // sample is still a measured, non-zero time.
            let took = t.elapsed().as_nanos().div_ceil(1000);
            us.push(u32::try_from(took).unwrap_or(u32::MAX));
            n += 1;
        }
        Ok(FsyncProbe {
            syncs: n,
            elapsed_s: start.elapsed().as_secs_f64(),
            over_25ms: us.iter().filter(|&&u| u > 25_000).count() as u64,
            latency_ms: latency(us),
        })
    };
    let result = run();
    drop(file);
    std::fs::remove_file(&path)?;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fsync_probe_times_syncs_and_cleans_up() {
        let dir = tempfile::tempdir().expect("temp dir");
        let p = fsync_probe(dir.path(), Duration::from_secs(5), 50).expect("probe");
        assert_eq!(p.syncs, 50, "bounded by the count");
        let l = &p.latency_ms;
        assert!(l.p50 > 0.0 && l.p50 <= l.p99 && l.p99 <= l.max, "{l:?}");
        assert!(p.elapsed_s * 1e3 >= l.max, "{p:?}");
        assert_eq!(
            std::fs::read_dir(dir.path()).expect("list").count(),
            0,
            "the probe file is removed"
        );
        let p = fsync_probe(dir.path(), Duration::ZERO, 50).expect("probe");
        assert_eq!(p.syncs, 0, "bounded by the duration");
    }
}
