//! File sink: one JSON document per line, appended and `fdatasync`ed before a batch counts as
//! acknowledged, rotated by size: when a batch would take the file past `max_bytes` it is renamed
//! to `path.1` (older ones shift to `path.2` ... `path.keep_files`, the oldest removed) and a new
//! file is started. A batch is never split across files. A crash between the write and the cursor
//! update replays the batch: lines are then duplicated, never missing.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::PathBuf;

use super::{ForwardEvent, OpenError, SinkConfig, SinkError};

/// Default rotation size: 100 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 100 << 20;
/// Default rotated files kept.
pub const DEFAULT_KEEP: u32 = 5;

/// A file operation that failed: what was done, to which path, and the I/O error.
#[derive(Debug, thiserror::Error)]
#[error("{action} {}: {source}", .path.display())]
pub struct FileError {
    /// `opening`, `repairing`, `writing`, `removing`, `renaming` or `syncing`.
    pub action: &'static str,
    /// The file (or, for `syncing`, the directory).
    pub path: PathBuf,
    /// The underlying error.
    pub source: std::io::Error,
}

impl FileError {
    /// Wraps an I/O error of `action` on `path`.
    fn of(action: &'static str, path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.to_path_buf();
        move |source| FileError {
            action,
            path,
            source,
        }
    }
}

/// A JSONL file destination.
#[derive(Debug)]
pub struct FileSink {
    path: PathBuf,
    max_bytes: u64,
    keep: u32,
}

impl FileSink {
    /// Checks that the file can be opened for appending.
    pub fn new(cfg: &SinkConfig) -> Result<Self, OpenError> {
        let path = cfg.path.clone().unwrap_or_default();
        let open_error = |source| OpenError::File {
            sink: cfg.name.clone(),
            source,
        };
        open_append(&path).map_err(open_error)?;
        drop_partial_line(&path).map_err(open_error)?;
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
            .map_err(|e| SinkError(e.to_string()))
    }
}

fn open_append(path: &PathBuf) -> Result<File, FileError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(FileError::of("opening", path))
}

/// A crash in the middle of an append can leave a last line without its newline. It was never
/// acknowledged (the batch is sent again), so it is cut off rather than glued to the next line.
fn drop_partial_line(path: &PathBuf) -> Result<(), FileError> {
    use std::io::{Read as _, Seek as _, SeekFrom};
    let io = |e: std::io::Error| FileError::of("repairing", path)(e);
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(io)?;
    let len = f.metadata().map_err(io)?.len();
    let mut end = len;
    let mut chunk = vec![0u8; 64 * 1024];
    while end > 0 {
        let start = end.saturating_sub(chunk.len() as u64);
        let buf = &mut chunk[..(end - start) as usize];
        f.seek(SeekFrom::Start(start)).map_err(io)?;
        f.read_exact(buf).map_err(io)?;
        if let Some(nl) = buf.iter().rposition(|b| *b == b'\n') {
            end = start + nl as u64 + 1;
            break;
        }
        end = start;
    }
    if end != len {
        tracing::warn!(file = %path.display(), bytes = len - end, "forward: dropping a partial last line");
        f.set_len(end).and_then(|()| f.sync_data()).map_err(io)?;
    }
    Ok(())
}

fn rotated(path: &std::path::Path, n: u32) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(format!(".{n}"));
    PathBuf::from(p)
}

fn append(path: &PathBuf, max: u64, keep: u32, buf: &[u8]) -> Result<(), FileError> {
    let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    if len > 0 && len + buf.len() as u64 > max {
        rotate(path, keep)?;
    }
    let mut f = open_append(path)?;
    f.write_all(buf)
        .and_then(|()| f.sync_data())
        .map_err(FileError::of("writing", path))?;
    if len == 0 {
        sync_parent(path)?;
    }
    Ok(())
}

fn rotate(path: &std::path::Path, keep: u32) -> Result<(), FileError> {
    if keep == 0 {
        return std::fs::remove_file(path).map_err(FileError::of("removing", path));
    }
    let oldest = rotated(path, keep);
    match std::fs::remove_file(&oldest) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(FileError::of("removing", &oldest)(e)),
    }
    for n in (1..keep).rev() {
        let from = rotated(path, n);
        if from.exists() {
            std::fs::rename(&from, rotated(path, n + 1))
                .map_err(FileError::of("renaming", &from))?;
        }
    }
    std::fs::rename(path, rotated(path, 1)).map_err(FileError::of("renaming", path))?;
    sync_parent(path)
}

fn sync_parent(path: &std::path::Path) -> Result<(), FileError> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    File::open(parent)
        .and_then(|d| d.sync_all())
        .map_err(FileError::of("syncing", parent))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_last_line_is_cut_off_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.jsonl");
        let mut cfg = SinkConfig::new("f", super::super::SinkKind::File);
        cfg.path = Some(path.clone());
        let long = "x".repeat(200_000);
        for (content, want) in [
            ("", ""),
            ("{\"a\":1}\n", "{\"a\":1}\n"),
            ("{\"a\":1}\n{\"b\"", "{\"a\":1}\n"),
            ("no newline at all", ""),
        ] {
            std::fs::write(&path, content).unwrap();
            FileSink::new(&cfg).unwrap();
            assert_eq!(std::fs::read_to_string(&path).unwrap(), want);
        }
        std::fs::write(&path, format!("1\n{long}")).unwrap();
        FileSink::new(&cfg).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "1\n");
    }

    #[test]
    fn failures_name_the_sink_the_action_and_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing").join("f.jsonl");
        let mut cfg = SinkConfig::new("f", super::super::SinkKind::File);
        cfg.path = Some(path.clone());
        let e = FileSink::new(&cfg).unwrap_err();
        assert_eq!(e.category(), "file");
        assert_eq!(
            e.to_string(),
            format!(
                "forward f: opening {}: No such file or directory (os error 2)",
                path.display()
            )
        );
        let source = std::error::Error::source(&e).unwrap().to_string();
        assert!(source.starts_with("opening "), "{source}");
    }

    #[tokio::test]
    async fn a_batch_is_appended_with_one_line_per_event_and_rotated_by_size() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        let path = sub.join("f.jsonl");
        let mut cfg = SinkConfig::new("f", super::super::SinkKind::File);
        cfg.path = Some(path.clone());
        cfg.max_bytes = Some(20);
        cfg.keep_files = Some(1);
        let mut sink = FileSink::new(&cfg).unwrap();
        let event = |n: u64| ForwardEvent::Security(serde_json::json!({ "n": n }));
        sink.send(&[event(1), event(2)]).await.unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"n\":1}\n{\"n\":2}\n"
        );
        sink.send(&[event(3)]).await.unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"n\":3}\n");
        assert_eq!(
            std::fs::read_to_string(rotated(&path, 1)).unwrap(),
            "{\"n\":1}\n{\"n\":2}\n"
        );
        // The directory is gone: the send fails with the action and the path.
        std::fs::remove_dir_all(&sub).unwrap();
        let e = sink.send(&[event(4)]).await.unwrap_err();
        assert!(
            e.0.starts_with(&format!("opening {}: ", path.display())),
            "{e}"
        );
    }
}
