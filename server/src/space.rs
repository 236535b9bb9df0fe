//! Free space of the data directory's filesystem, for the sequencer's disk guard, `/metrics`,
//! `GET /v1/log` and `sealtrail status`.

use std::path::Path;

/// Space on a filesystem, as an unprivileged process may use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskSpace {
    /// Bytes available to unprivileged users (`f_bavail`).
    pub free_bytes: u64,
    /// Size of the filesystem in bytes.
    pub total_bytes: u64,
}

/// The space of the filesystem holding `dir`.
pub fn disk_space(dir: &Path) -> std::io::Result<DiskSpace> {
    let s = rustix::fs::statvfs(dir)?;
    Ok(DiskSpace {
        free_bytes: s.f_bavail.saturating_mul(s.f_frsize),
        total_bytes: s.f_blocks.saturating_mul(s.f_frsize),
    })
}

/// Bytes a batch of `payload_bytes` may take on disk at most, generously: envelopes, the
/// copy-on-write pages of the store, tiles and indexes.
pub fn batch_footprint(payload_bytes: u64, entries: u64) -> u64 {
    payload_bytes
        .saturating_add(entries.saturating_mul(256))
        .saturating_mul(4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_the_filesystem_of_a_directory() {
        let dir = std::env::temp_dir();
        let s = disk_space(&dir).unwrap();
        assert!(s.total_bytes > 0 && s.free_bytes <= s.total_bytes);
        assert!(disk_space(Path::new("/nonexistent/sealtrail")).is_err());
    }

    #[test]
    fn footprint_grows_with_the_batch() {
        assert!(batch_footprint(1000, 1) > 1000);
        assert!(batch_footprint(2000, 1) > batch_footprint(1000, 1));
        assert_eq!(batch_footprint(u64::MAX, 1), u64::MAX);
    }
}
