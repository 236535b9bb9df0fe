//! The redb file backend: redb's own [`FileBackend`], with the file's blocks allocated before
//! redb writes into them.
//!
//! redb grows its file with `ftruncate`, which leaves a hole. Each commit then writes new pages
//! into that hole, so the filesystem allocates blocks, and the commit's `fdatasync` has to commit
//! that allocation to the filesystem journal as well as write the data. On ext4 that made the
//! sync of a typical append commit about 0.39 ms instead of about 0.07 ms for an overwrite of
//! allocated blocks (`BENCHMARKS.md`, "What limits single-entry appends"). PostgreSQL zero-fills
//! its WAL segments for the same reason.
//!
//! This backend writes zeros over each hole [`CHUNK`] bytes at a time, one chunk ahead of redb's
//! writes, so most commits overwrite allocated blocks and one commit in many pays for the
//! allocation of a whole chunk.
//!
//! Safety of the data rests on one rule: zeros are written only into a chunk that holds no data.
//! A chunk is marked filled before redb's first write into it, chunks that held data when the
//! file was opened are marked filled from the start (found with `SEEK_DATA`/`SEEK_HOLE`), and a
//! filled chunk is never filled again. A hole reads as zeros, so filling one changes no byte
//! anyone can read. Everything else (reads, syncs, locks, length) is redb's `FileBackend`
//! unchanged.

use std::fs::File;
use std::io;
use std::ops::Bound;
use std::os::unix::fs::FileExt;
use std::sync::Mutex;

use redb::backends::FileBackend;
use redb::{BackendError, StorageBackend};

/// Bytes filled at a time.
pub(super) const CHUNK: u64 = 1 << 20;

/// Zeros to copy from.
static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];

/// redb's file backend with holes filled ahead of its writes (see the module docs).
#[derive(Debug)]
pub(super) struct FilledFile {
    inner: FileBackend,
    /// Bytes filled at a time ([`CHUNK`]; smaller in tests).
    chunk: u64,
    /// The same open file, for the zero writes and the hole scan.
    file: File,
    state: Mutex<Chunks>,
}

/// Which chunks of the file may hold data (and are never filled again).
#[derive(Debug, Default)]
struct Chunks {
    /// The file length as last set.
    len: u64,
    /// `filled[k]`: chunk `k` holds data or was filled.
    filled: Vec<bool>,
    /// Bytes of zeros written, for tests.
    zero_bytes: u64,
}

impl Chunks {
    fn is_filled(&self, k: u64) -> bool {
        usize::try_from(k)
            .ok()
            .and_then(|k| self.filled.get(k))
            .copied()
            .unwrap_or(false)
    }

    fn mark(&mut self, k: u64) {
        let k = usize::try_from(k).unwrap_or(usize::MAX);
        if self.filled.len() <= k {
            self.filled.resize(k + 1, false);
        }
        self.filled[k] = true;
    }

    /// Marks every chunk (of `chunk` bytes) that overlaps `[start, end)`.
    fn mark_range(&mut self, start: u64, end: u64, chunk: u64) {
        if end > start {
            for k in start / chunk..=(end - 1) / chunk {
                self.mark(k);
            }
        }
    }
}

impl FilledFile {
    /// Wraps `file` (opened read-write), scanning it for the chunks that hold data.
    pub(super) fn new(file: File) -> io::Result<Self> {
        Self::with_chunk(file, CHUNK)
    }

    fn with_chunk(file: File, chunk: u64) -> io::Result<Self> {
        let scan = file.try_clone()?;
        let len = file.metadata()?.len();
        let mut chunks = Chunks {
            len,
            ..Chunks::default()
        };
        for (start, end) in data_extents(&scan, len) {
            chunks.mark_range(start, end, chunk);
        }
        let inner = FileBackend::new(file).map_err(|e| io::Error::other(e.to_string()))?;
        Ok(FilledFile {
            inner,
            chunk,
            file: scan,
            state: Mutex::new(chunks),
        })
    }

    /// Bytes of zeros written so far.
    #[cfg(test)]
    fn zero_bytes(&self) -> u64 {
        self.lock().zero_bytes
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Chunks> {
        // A panic while holding the lock leaves the marks as they were: still a safe state,
        // since a chunk is marked only after its zeros were written.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Fills chunk `k` (within the file's length) with zeros unless it is marked, and marks it.
    fn fill(&self, chunks: &mut Chunks, k: u64) -> io::Result<()> {
        if chunks.is_filled(k) {
            return Ok(());
        }
        let start = k * self.chunk;
        let end = ((k + 1) * self.chunk).min(chunks.len);
        self.zero(chunks, start, end)?;
        chunks.mark(k);
        Ok(())
    }

    /// Writes zeros over `[start, end)`, which the caller knows is a hole.
    fn zero(&self, chunks: &mut Chunks, start: u64, end: u64) -> io::Result<()> {
        let mut at = start;
        while at < end {
            let n = usize::try_from(end - at)
                .unwrap_or(usize::MAX)
                .min(ZEROS.len());
            self.file.write_all_at(&ZEROS[..n], at)?;
            at += n as u64;
        }
        chunks.zero_bytes += end.saturating_sub(start);
        Ok(())
    }
}

/// The `[start, end)` ranges of `file` below `len` that hold data. Where the filesystem cannot
/// tell (no `SEEK_DATA`), the whole file counts as data, so nothing in it is ever filled.
fn data_extents(file: &File, len: u64) -> Vec<(u64, u64)> {
    use nix::errno::Errno;
    use nix::unistd::{Whence, lseek};
    let mut out = Vec::new();
    let mut pos = 0u64;
    while pos < len {
        let Ok(at) = i64::try_from(pos) else { break };
        let data = match lseek(file, at, Whence::SeekData) {
            Ok(d) => u64::try_from(d).unwrap_or(len),
            // No data at or after `pos`.
            Err(Errno::ENXIO) => break,
            Err(_) => return vec![(0, len)],
        };
        let hole = match i64::try_from(data).map(|d| lseek(file, d, Whence::SeekHole)) {
            Ok(Ok(h)) => u64::try_from(h).unwrap_or(len),
            _ => return vec![(0, len)],
        };
        if hole <= data {
            return vec![(0, len)];
        }
        out.push((data, hole.min(len)));
        pos = hole;
    }
    out
}

impl StorageBackend for FilledFile {
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        self.inner.read(offset, out)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut chunks = self.lock();
        let old = chunks.len;
        self.inner.set_len(len)?;
        chunks.len = len;
        let chunk = self.chunk;
        if len > old && !old.is_multiple_of(chunk) && chunks.is_filled(old / chunk) {
            // The chunk across the old end was filled only up to it; the rest is new, a hole
            // nobody has written, so fill it now.
            let end = old.next_multiple_of(chunk).min(len);
            self.zero(&mut chunks, old, end)?;
        }
        if len < old {
            // Chunks wholly past the new end lost their blocks and hold no data any more. The
            // chunk across the new end keeps its mark: it holds data below `len`.
            let keep = usize::try_from(len.div_ceil(chunk)).unwrap_or(usize::MAX);
            chunks.filled.truncate(keep);
        }
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        self.inner.sync_data()
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        if !data.is_empty() {
            let end = offset.saturating_add(data.len() as u64);
            let chunk = self.chunk;
            let mut chunks = self.lock();
            // The chunks written, then the one after them, so the next commits find it ready.
            for k in offset / chunk..=(end - 1) / chunk + 1 {
                if k * chunk < chunks.len {
                    self.fill(&mut chunks, k)?;
                }
            }
            // A write past the end (redb sets the length first, but be exact anyway).
            chunks.mark_range(offset, end, chunk);
            self.inner.write(offset, data)?;
            chunks.len = chunks.len.max(end);
            return Ok(());
        }
        self.inner.write(offset, data)
    }

    fn close(&self) -> io::Result<()> {
        self.inner.close()
    }

    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.try_lock_range(start, end)
    }

    fn try_lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<bool, BackendError> {
        self.inner.try_lock_shared_range(start, end)
    }

    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_range(start, end)
    }

    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_shared_range(start, end)
    }

    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.unlock_range(start, end)
    }

    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.query_lock_range(start, end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::unistd::{Whence, lseek};

    const K: u64 = 4096;

    fn open(path: &std::path::Path) -> File {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .unwrap()
    }

    fn contents(b: &FilledFile) -> Vec<u8> {
        let mut out = vec![0; usize::try_from(b.len().unwrap()).unwrap()];
        b.read(0, &mut out).unwrap();
        out
    }

    /// Whether `[start, end)` has no hole.
    fn allocated(file: &File, start: u64, end: u64) -> bool {
        let hole = lseek(file, i64::try_from(start).unwrap(), Whence::SeekHole).unwrap();
        u64::try_from(hole).unwrap() >= end
    }

    /// Writes into a hole fill the chunks written and the next one; a chunk that held data when
    /// the file was opened is never zeroed, even where it has a hole of its own.
    #[test]
    fn fills_holes_ahead_of_writes_and_never_data() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("f");
        {
            let f = open(&path);
            f.set_len(16 * K).unwrap();
            f.write_all_at(b"kept", 0).unwrap();
            f.write_all_at(b"also kept", 6 * K + 100).unwrap();
            f.sync_all().unwrap();
        }
        let b = FilledFile::with_chunk(open(&path), 4 * K).unwrap();
        if !allocated(&b.file, 0, 4) || allocated(&b.file, 8 * K, 16 * K) {
            eprintln!("skipped: this filesystem does not report holes");
            return;
        }
        // Chunk 1 ([4K, 8K)) holds data; writing into its hole must not zero that data.
        b.write(4 * K, b"new").unwrap();
        assert_eq!(b.zero_bytes(), 4 * K, "chunk 2, the next one, only");
        // Chunk 3 is a hole; the next one is past the end.
        b.write(13 * K, b"x").unwrap();
        assert_eq!(b.zero_bytes(), 8 * K);
        assert!(
            allocated(&b.file, 8 * K, 16 * K),
            "chunks 2 and 3 are allocated"
        );
        let want = {
            let mut v = vec![0u8; 16 * K as usize];
            v[..4].copy_from_slice(b"kept");
            v[4 * K as usize..4 * K as usize + 3].copy_from_slice(b"new");
            v[6 * K as usize + 100..6 * K as usize + 109].copy_from_slice(b"also kept");
            v[13 * K as usize] = b'x';
            v[9 * K as usize] = b'y';
            v
        };
        // Writing the filled chunks again writes no zeros.
        b.write(9 * K, b"y").unwrap();
        assert_eq!(b.zero_bytes(), 8 * K);
        assert_eq!(contents(&b), want);
    }

    /// Growing fills the rest of the chunk across the old end; shrinking forgets the chunks
    /// past the new end, which are filled again when written after growing back.
    #[test]
    fn growth_and_shrinking_keep_the_marks_exact() {
        let tmp = tempfile::tempdir().unwrap();
        let b = FilledFile::with_chunk(open(&tmp.path().join("f")), 4 * K).unwrap();
        b.set_len(6 * K).unwrap();
        b.write(K, b"a").unwrap();
        // Chunks 0 and 1 (the part of 1 below the end).
        assert_eq!(b.zero_bytes(), 6 * K);
        b.set_len(12 * K).unwrap();
        assert_eq!(b.zero_bytes(), 8 * K, "the rest of chunk 1");
        b.set_len(3 * K).unwrap();
        b.set_len(12 * K).unwrap();
        b.write(5 * K, b"b").unwrap();
        // Chunk 0's tail [3K, 4K) on growth, then chunks 1 and 2.
        assert_eq!(b.zero_bytes(), 8 * K + K + 8 * K);
        let mut want = vec![0u8; 12 * K as usize];
        want[K as usize] = b'a';
        want[5 * K as usize] = b'b';
        assert_eq!(contents(&b), want);
    }

    /// Random writes, growth and shrinking through the backend read back exactly as they would
    /// from a plain file, including across reopening (which rescans for data).
    #[test]
    fn reads_back_like_a_plain_file_under_random_operations() {
        for seed in 1..=8u64 {
            let tmp = tempfile::tempdir().unwrap();
            let path = tmp.path().join("f");
            let mut model: Vec<u8> = Vec::new();
            let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let mut next = move |n: u64| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x % n
            };
            for round in 0..4 {
                let b = FilledFile::with_chunk(open(&path), 2 * K).unwrap();
                assert_eq!(contents(&b), model, "seed {seed} round {round}: reopened");
                for _ in 0..60 {
                    if next(8) == 0 {
                        let len = next(64 * K);
                        b.set_len(len).unwrap();
                        model.resize(usize::try_from(len).unwrap(), 0);
                    } else if !model.is_empty() {
                        let off = next(model.len() as u64);
                        let n = (1 + next(3 * K)).min(model.len() as u64 - off);
                        let fill = u8::try_from(1 + next(255)).unwrap();
                        let data = vec![fill; usize::try_from(n).unwrap()];
                        b.write(off, &data).unwrap();
                        let off = usize::try_from(off).unwrap();
                        model[off..off + data.len()].copy_from_slice(&data);
                    }
                }
                assert_eq!(contents(&b), model, "seed {seed} round {round}");
            }
        }
    }
}
