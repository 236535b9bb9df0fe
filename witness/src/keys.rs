//! The witness key file: a Go-style skey (`PRIVATE+KEY+<name>+<id>+<base64>`, type `0x04`, or a
//! plain `0x01` note key used as a cosigner), mode 0600, written with `O_EXCL` and synced. The
//! witness refuses to load a key readable or writable by group or others.
//!
//! The file handling is `sealtrail-net`'s [`keyfile`], shared with the server; the wording of
//! the errors is the witness's.

use std::path::{Path, PathBuf};

use sealtrail_net::keyfile;
use sealtrail_net::secret::SecretFileError;
use sealtrail_spec::cosignature::Cosigner;

/// Why the key could not be created or loaded.
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
    /// The file is accessible to group or others.
    #[error(
        "{path} has mode {mode:o}: a witness key must be readable by its owner only (chmod 600 it)"
    )]
    Permissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Not a valid skey, or no randomness.
    #[error("{path}: {error}")]
    Invalid {
        /// The key file.
        path: PathBuf,
        /// What is wrong.
        error: String,
    },
    /// The key's name is not the configured witness name.
    #[error("{path} is the key of {key_name:?} but the configured name is {configured:?}")]
    NameMismatch {
        /// The key file.
        path: PathBuf,
        /// The key's name.
        key_name: String,
        /// The configured name.
        configured: String,
    },
    /// Refusing to overwrite a key.
    #[error("{0} already exists; refusing to overwrite a key")]
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
                error: format!("no randomness: {e}"),
            },
            E::Name { error, .. } => KeyFileError::Invalid {
                path: PathBuf::new(),
                error: error.to_string(),
            },
            E::Invalid { path, error } => KeyFileError::Invalid {
                path,
                error: format!("not a valid witness key: {error}"),
            },
            E::NameMismatch {
                path,
                key_name,
                expected,
            } => KeyFileError::NameMismatch {
                path,
                key_name,
                configured: expected,
            },
        }
    }
}

/// A new cosigner named `name` with a seed from the operating system.
pub fn generate(name: &str) -> Result<Cosigner, KeyFileError> {
    Ok(keyfile::generate(name)?)
}

/// Writes `cosigner` as a type-`0x04` skey to a new file (mode 0600, `O_EXCL`), synced with its
/// directory.
pub fn write_new(path: &Path, cosigner: &Cosigner) -> Result<(), KeyFileError> {
    Ok(keyfile::write_new(path, cosigner)?)
}

/// Loads the key at `path`, checking its permissions and that its name is `name`.
pub fn load(path: &Path, name: &str) -> Result<Cosigner, KeyFileError> {
    Ok(keyfile::load(path, name)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn write_load_and_refuse() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k/w.key");
        let c = generate("witness.example/w").unwrap();
        write_new(&path, &c).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            load(&path, "witness.example/w").unwrap().to_skey(),
            c.to_skey()
        );
        assert!(matches!(write_new(&path, &c), Err(KeyFileError::Exists(_))));
        assert!(matches!(
            load(&path, "other"),
            Err(KeyFileError::NameMismatch { .. })
        ));
        for mode in [0o640, 0o604, 0o620] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            assert!(matches!(
                load(&path, "witness.example/w"),
                Err(KeyFileError::Permissions { .. })
            ));
        }
        let bad = dir.path().join("bad.key");
        std::fs::write(&bad, "PRIVATE+KEY+x\n").unwrap();
        std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(load(&bad, "x"), Err(KeyFileError::Invalid { .. })));
    }

    #[test]
    fn errors_keep_the_witness_wording() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.key");
        write_new(&path, &generate("witness.example/w").unwrap()).unwrap();
        assert_eq!(
            load(&path, "other").unwrap_err().to_string(),
            format!(
                "{} is the key of \"witness.example/w\" but the configured name is \"other\"",
                path.display()
            )
        );
        let again = write_new(&path, &generate("witness.example/w").unwrap()).unwrap_err();
        assert_eq!(
            again.to_string(),
            format!(
                "{} already exists; refusing to overwrite a key",
                path.display()
            )
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o604)).unwrap();
        assert_eq!(
            load(&path, "witness.example/w").unwrap_err().to_string(),
            format!(
                "{} has mode 604: a witness key must be readable by its owner only (chmod 600 it)",
                path.display()
            )
        );
        let bad = dir.path().join("bad.key");
        std::fs::write(&bad, "PRIVATE+KEY+x\n").unwrap();
        std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(
            load(&bad, "x")
                .unwrap_err()
                .to_string()
                .starts_with(&format!("{}: not a valid witness key: ", bad.display()))
        );
        assert_eq!(
            generate("bad name").unwrap_err().to_string(),
            ": invalid key name \"bad name\""
        );
        assert!(matches!(
            load(&dir.path().join("missing"), "x"),
            Err(KeyFileError::Io { .. })
        ));
    }
}
