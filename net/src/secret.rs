//! Files holding secrets (signing keys, token secrets): written once, mode 0600, with `O_EXCL`,
//! synced with their directory; read only when neither group nor others can access them.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

/// Why a secret file could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum SecretFileError {
    /// File-system failure.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// Group or others may access the file.
    #[error("{path} has mode {mode:o}: a secret must be readable by its owner only (chmod 600 it)")]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A file already exists where a new secret was to be written.
    #[error("{0} already exists; refusing to overwrite a secret")]
    Exists(PathBuf),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SecretFileError + '_ {
    move |error| SecretFileError::Io {
        path: path.to_owned(),
        error,
    }
}

/// Writes `text` to a new file at `path` (mode 0600, never over an existing file), creating
/// missing parent directories, and makes the file and its directory entry durable.
pub fn write_new(path: &Path, text: &str) -> Result<(), SecretFileError> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                SecretFileError::Exists(path.to_owned())
            } else {
                io(path)(e)
            }
        })?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(io(path))?;
    if let Some(dir) = dir {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io(dir))?;
    }
    Ok(())
}

/// Reads the secret at `path`, refusing a file that group or others may access.
pub fn read(path: &Path) -> Result<String, SecretFileError> {
    let meta = std::fs::metadata(path).map_err(io(path))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(SecretFileError::Permissions {
            path: path.to_owned(),
            mode,
        });
    }
    std::fs::read_to_string(path).map_err(io(path))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn written_once_private_and_checked_on_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/secret");
        write_new(&path, "s3cret\n").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(read(&path).unwrap(), "s3cret\n");
        assert!(matches!(
            write_new(&path, "other"),
            Err(SecretFileError::Exists(_))
        ));
        assert_eq!(read(&path).unwrap(), "s3cret\n");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(matches!(
            read(&path),
            Err(SecretFileError::Permissions { mode: 0o640, .. })
        ));
        assert!(matches!(
            read(&dir.path().join("missing")),
            Err(SecretFileError::Io { .. })
        ));
    }
}
