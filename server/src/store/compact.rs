//! `sealtrail compact`: rewrites a stopped log's store into fresh files, so that nothing of an
//! erased record survives in the data directory.
//!
//! Removing a record does not remove its bytes from the files at once: redb is copy-on-write (the
//! old pages are freed, not overwritten) and sled is log-structured (old segments are rewritten
//! only by its cleaner). Compaction copies every live row into a new store beside the old one,
//! makes it durable, and swaps the directories:
//!
//! 1. `DIR.compacting/` is built: the engine's copy, and every other file of `DIR` (key, engine
//!    marker) copied and fsynced;
//! 2. `DIR` is renamed to `DIR.precompact`, then `DIR.compacting` to `DIR` (parent fsynced);
//! 3. `DIR.precompact` is removed.
//!
//! A crash leaves either the old directory in place (a stale `DIR.compacting` is removed by the
//! next run), or both `DIR` and `DIR.precompact` complete (the next run removes the old one), or,
//! between the two renames, only `DIR.precompact`, which the next run moves back. The file
//! system may keep freed blocks on the device until they are reused: against an attacker with
//! the raw disk, use encryption at rest.

use std::path::{Path, PathBuf};

use super::{Engine, StoreError, StoreResult, sync_dir};

/// What a compaction did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompactSummary {
    /// The tree size (unchanged).
    pub size: u64,
    /// Rows (redb) or keys (sled) copied.
    pub rows: u64,
    /// Bytes of the store's files before.
    pub bytes_before: u64,
    /// Bytes after.
    pub bytes_after: u64,
}

fn sibling(dir: &Path, suffix: &str) -> PathBuf {
    let mut s = dir.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn io(what: &str, path: &Path) -> impl FnOnce(std::io::Error) -> StoreError {
    let msg = format!("{what} {}", path.display());
    move |e| StoreError::Io(format!("{msg}: {e}"))
}

/// Bytes of every file under `dir`.
pub fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Files of the engine's own in a data directory: what the copy replaces.
fn is_engine_file(engine: Engine, name: &str) -> bool {
    match engine {
        Engine::Redb => name == super::redb_store::FILE_NAME,
        Engine::Sled => matches!(name, "db" | "conf" | "blobs") || name.starts_with("snap."),
        Engine::Postgres => false,
    }
}

/// Finishes or undoes an interrupted compaction of `dir`.
fn recover(dir: &Path) -> StoreResult<()> {
    let staging = sibling(dir, ".compacting");
    let old = sibling(dir, ".precompact");
    if !dir.exists() && old.exists() {
        std::fs::rename(&old, dir).map_err(io("restoring", &old))?;
    }
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(io("removing", &old))?;
    }
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(io("removing", &staging))?;
    }
    Ok(())
}

/// Compacts the store of `engine` in `dir`. The server must be stopped (the store is opened, and
/// an open store is refused). The copy is checked before the swap: same tree size, checkpoint,
/// records and tombstones.
pub fn compact(engine: Engine, dir: &Path) -> StoreResult<CompactSummary> {
    recover(dir)?;
    if !dir.is_dir() {
        return Err(StoreError::Io(format!(
            "{} is not a data directory",
            dir.display()
        )));
    }
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_owned();
    let staging = sibling(dir, ".compacting");
    let old = sibling(dir, ".precompact");
    let bytes_before = dir_bytes(dir);
    let built = (|| -> StoreResult<(u64, u64)> {
        let src = super::open(engine, dir)?;
        std::fs::create_dir(&staging).map_err(io("creating", &staging))?;
        let rows = src.copy_into(&staging)?;
        // The other files of the data directory (key, engine marker), as they are.
        for entry in std::fs::read_dir(dir).map_err(io("listing", dir))? {
            let entry = entry.map_err(io("listing", dir))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if is_engine_file(engine, &name) || !entry.path().is_file() {
                continue;
            }
            let to = staging.join(&*name);
            std::fs::copy(entry.path(), &to).map_err(io("copying", &entry.path()))?;
            std::fs::File::open(&to)
                .and_then(|f| f.sync_all())
                .map_err(io("syncing", &to))?;
        }
        sync_dir(&staging)?;
        let copy = super::open(engine, &staging)?;
        let same = |what: &str, a: StoreResult<u64>, b: StoreResult<u64>| -> StoreResult<()> {
            let (a, b) = (a?, b?);
            if a != b {
                return Err(StoreError::Corrupt(format!(
                    "the compacted copy has {what} {b}, the store {a}; nothing was changed"
                )));
            }
            Ok(())
        };
        let size = src.tree_size()?;
        same("tree size", Ok(size), copy.tree_size())?;
        let count = |s: &dyn super::LogStore, live: bool| -> StoreResult<u64> {
            Ok(if live {
                s.live_records(0, u64::MAX, usize::MAX)?.len() as u64
            } else {
                s.erased_records(0, u64::MAX, usize::MAX)?.len() as u64
            })
        };
        same(
            "live records",
            count(src.as_ref(), true),
            count(copy.as_ref(), true),
        )?;
        same(
            "tombstones",
            count(src.as_ref(), false),
            count(copy.as_ref(), false),
        )?;
        if src.checkpoint()? != copy.checkpoint()? {
            return Err(StoreError::Corrupt(
                "the compacted copy's checkpoint differs; nothing was changed".into(),
            ));
        }
        Ok((size, rows))
    })();
    let (size, rows) = match built {
        Ok(v) => v,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    std::fs::rename(dir, &old).map_err(io("renaming", dir))?;
    std::fs::rename(&staging, dir).map_err(io("renaming", &staging))?;
    sync_dir(&parent)?;
    std::fs::remove_dir_all(&old).map_err(io("removing", &old))?;
    sync_dir(&parent)?;
    Ok(CompactSummary {
        size,
        rows,
        bytes_before,
        bytes_after: dir_bytes(dir),
    })
}
