//! The log's signing key: created on first start, then loaded on every start.
//!
//! The key is the log's identity. It is stored as a Go `golang.org/x/mod/sumdb/note` signer key
//! (`PRIVATE+KEY+<origin>+<key id>+<base64>`) in a file of mode 0600, written with `O_EXCL` and
//! synced before use, and the server refuses to start if the file is readable by anyone else.
//!
//! The file handling is `sealtrail-net`'s [`keyfile`], shared with the witness; the wording of
//! the errors is the server's.

use std::path::{Path, PathBuf};

use sealtrail_net::keyfile;
use sealtrail_net::secret::SecretFileError;
use sealtrail_spec::note::Ed25519Signer;

/// Why the key could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// File-system failure.
    #[error("{path}: {error}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// The key file is readable or writable by group or others.
    #[error(
        "{path} has mode {mode:o}: a signing key must be readable by its owner only (chmod 600 it)"
    )]
    Permissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file does not hold a valid signer key.
    #[error("{path} is not a valid signer key: {error}")]
    Invalid {
        /// The key file.
        path: PathBuf,
        /// What is wrong.
        error: String,
    },
    /// The key's name is not the configured origin.
    #[error(
        "{path} is the key of origin {key_origin:?} but the configured origin is {configured:?}; \
         the origin of an existing log cannot change"
    )]
    OriginMismatch {
        /// The key file.
        path: PathBuf,
        /// The key's name.
        key_origin: String,
        /// The configured origin.
        configured: String,
    },
    /// A key file already exists where a new one was to be written.
    #[error("{0} already exists; refusing to overwrite a signing key")]
    Exists(PathBuf),
}

impl From<keyfile::KeyFileError> for KeyFileError {
    fn from(e: keyfile::KeyFileError) -> Self {
        use keyfile::KeyFileError as E;
        match e {
            E::File(SecretFileError::Io { path, error }) => KeyFileError::Io { path, error },
            E::File(SecretFileError::Permissions { path, mode }) => {
                KeyFileError::Permissions { path, mode }
            }
            E::File(SecretFileError::Exists(path)) => KeyFileError::Exists(path),
            E::NoRandomness(e) => KeyFileError::Invalid {
                path: PathBuf::new(),
                error: format!("no randomness available: {e}"),
            },
            E::Name { error, .. } => KeyFileError::Invalid {
                path: PathBuf::new(),
                error: error.to_string(),
            },
            E::Invalid { path, error } => KeyFileError::Invalid {
                path,
                error: error.to_string(),
            },
            E::NameMismatch {
                path,
                key_name,
                expected,
            } => KeyFileError::OriginMismatch {
                path,
                key_origin: key_name,
                configured: expected,
            },
        }
    }
}

/// Generates a new Ed25519 key named `origin` from the operating system's random source.
pub fn generate(origin: &str) -> Result<Ed25519Signer, KeyFileError> {
    Ok(keyfile::generate(origin)?)
}

/// Writes `signer` to a new file at `path` (mode 0600, `O_EXCL`), syncing the file and its
/// directory so the key survives a crash right after it was first used.
pub fn write_new(path: &Path, signer: &Ed25519Signer) -> Result<(), KeyFileError> {
    Ok(keyfile::write_new(path, signer)?)
}

/// Loads the key at `path`, checking its permissions and that its name is `origin`.
pub fn load(path: &Path, origin: &str) -> Result<Ed25519Signer, KeyFileError> {
    Ok(keyfile::load(path, origin)?)
}

/// Loads the key at `path`, checking its permissions; its name is the log's origin.
pub fn load_any(path: &Path) -> Result<Ed25519Signer, KeyFileError> {
    Ok(keyfile::load_any(path)?)
}

/// Loads the key, or creates it if the file does not exist. Returns the signer and whether it was
/// created now.
pub fn load_or_create(path: &Path, origin: &str) -> Result<(Ed25519Signer, bool), KeyFileError> {
    Ok(keyfile::load_or_create(path, origin)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn created_once_then_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/log.key");
        let (a, created) = load_or_create(&path, "example.com/log").unwrap();
        assert!(created);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let (b, created) = load_or_create(&path, "example.com/log").unwrap();
        assert!(!created);
        assert_eq!(a.to_skey(), b.to_skey());
        assert!(matches!(write_new(&path, &a), Err(KeyFileError::Exists(_))));
    }

    #[test]
    fn refuses_readable_key_wrong_origin_and_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.key");
        load_or_create(&path, "example.com/log").unwrap();
        assert!(matches!(
            load(&path, "example.com/other"),
            Err(KeyFileError::OriginMismatch { .. })
        ));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = load(&path, "example.com/log").unwrap_err();
        assert!(
            matches!(err, KeyFileError::Permissions { mode: 0o644, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("chmod 600"));
        let bad = dir.path().join("bad.key");
        std::fs::write(&bad, "PRIVATE+KEY+nope\n").unwrap();
        std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(
            load(&bad, "nope"),
            Err(KeyFileError::Invalid { .. })
        ));
    }

    #[test]
    fn errors_keep_the_server_wording() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.key");
        load_or_create(&path, "example.com/log").unwrap();
        let err = load(&path, "example.com/other").unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{} is the key of origin \"example.com/log\" but the configured origin is \
                 \"example.com/other\"; the origin of an existing log cannot change",
                path.display()
            )
        );
        let err = write_new(&path, &generate("example.com/log").unwrap()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{} already exists; refusing to overwrite a signing key",
                path.display()
            )
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert_eq!(
            load_any(&path).unwrap_err().to_string(),
            format!(
                "{} has mode 640: a signing key must be readable by its owner only (chmod 600 it)",
                path.display()
            )
        );
        let bad = dir.path().join("bad.key");
        std::fs::write(&bad, "PRIVATE+KEY+nope\n").unwrap();
        std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(
            load_any(&bad)
                .unwrap_err()
                .to_string()
                .starts_with(&format!("{} is not a valid signer key: ", bad.display()))
        );
        assert_eq!(
            generate("bad origin").unwrap_err().to_string(),
            " is not a valid signer key: invalid key name \"bad origin\""
        );
    }
}
