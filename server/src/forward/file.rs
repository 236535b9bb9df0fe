//! File sink: one JSON document per line, appended and `fdatasync`ed before a batch counts as
//! acknowledged, rotated by size: when a batch would take the file past `max_bytes` it is renamed
//! to `path.1` (older ones shift to `path.2` ... `path.keep_files`, the oldest removed) and a new
//! file is started. A batch is never split across files. A crash between the write and the cursor
//! update replays the batch: lines are then duplicated, never missing.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::PathBuf;

use super::{ForwardEvent, SinkConfig, SinkError};

/// Default rotation size: 100 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 100 << 20;
/// Default rotated files kept.
pub const DEFAULT_KEEP: u32 = 5;

/// A JSONL file destination.
#[derive(Debug)]
pub struct FileSink {
    path: PathBuf,
    max_bytes: u64,
    keep: u32,
}

impl FileSink {
    /// Checks that the file can be opened for appending.
    pub fn new(cfg: &SinkConfig) -> Result<Self, String> {
        let path = cfg.path.clone().unwrap_or_default();
        open_append(&path).map_err(|e| format!("forward {}: {e}", cfg.name))?;
        Ok(FileSink {
            path,
            max_bytes: cfg.max_bytes.unwrap_or(DEFAULT_MAX_BYTES),
            keep: cfg.keep_files.unwrap_or(DEFAULT_KEEP),
        })
    }

    /// Appends the batch and syncs it (on the blocking pool).
    pub async fn send(&mut self, events: &[ForwardEvent]) -> Result<(), SinkError> {
        let mut buf = Vec::new();
        for e in events {
            buf.extend_from_slice(&serde_json::to_vec(e.json()).unwrap_or_default());
            buf.push(b'\n');
        }
        let (path, max, keep) = (self.path.clone(), self.max_bytes, self.keep);
        tokio::task::spawn_blocking(move || append(&path, max, keep, &buf))
            .await
            .map_err(|e| SinkError(format!("file task: {e}")))?
            .map_err(SinkError)
    }
}

fn open_append(path: &PathBuf) -> Result<File, String> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("opening {}: {e}", path.display()))
}

fn rotated(path: &std::path::Path, n: u32) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(format!(".{n}"));
    PathBuf::from(p)
}

fn append(path: &PathBuf, max: u64, keep: u32, buf: &[u8]) -> Result<(), String> {
    let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    if len > 0 && len + buf.len() as u64 > max {
        rotate(path, keep)?;
    }
    let mut f = open_append(path)?;
    f.write_all(buf)
        .and_then(|()| f.sync_data())
        .map_err(|e| format!("writing {}: {e}", path.display()))?;
    if len == 0 {
        sync_parent(path)?;
    }
    Ok(())
}

fn rotate(path: &std::path::Path, keep: u32) -> Result<(), String> {
    let io =
        |what: &str, p: &std::path::Path, e: std::io::Error| format!("{what} {}: {e}", p.display());
    if keep == 0 {
        return std::fs::remove_file(path).map_err(|e| io("removing", path, e));
    }
    let oldest = rotated(path, keep);
    match std::fs::remove_file(&oldest) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io("removing", &oldest, e)),
    }
    for n in (1..keep).rev() {
        let from = rotated(path, n);
        if from.exists() {
            std::fs::rename(&from, rotated(path, n + 1)).map_err(|e| io("renaming", &from, e))?;
        }
    }
    std::fs::rename(path, rotated(path, 1)).map_err(|e| io("renaming", path, e))?;
    sync_parent(path)
}

fn sync_parent(path: &std::path::Path) -> Result<(), String> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    File::open(parent)
        .and_then(|d| d.sync_all())
        .map_err(|e| format!("syncing {}: {e}", parent.display()))
}
