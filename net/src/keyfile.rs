//! Signing-key files: one Go-style skey line (`PRIVATE+KEY+<name>+<id>+<base64>`, as
//! `golang.org/x/mod/sumdb/note` writes it) in a [`secret`](crate::secret) file: created with mode
//! 0600 and `O_EXCL`, synced with its directory, and refused when group or others may access it.
//!
//! The log server keeps its [`Ed25519Signer`] in such a file and the witness its [`Cosigner`].
//! The key formats are `sealtrail-spec`'s; this module only moves them in and out of files and
//! checks the key's name. The wording of errors shown to operators is each binary's: they map
//! [`KeyFileError`] to their own error type.

use std::path::{Path, PathBuf};

use sealtrail_spec::cosignature::Cosigner;
use sealtrail_spec::note::{Ed25519Signer, KeyError, Signer as _};

use crate::secret::SecretFileError;

/// Bytes of an Ed25519 seed.
const SEED_SIZE: usize = 32;

/// A private key that is stored as an skey line.
pub trait SkeyKey: Sized {
    /// The key named `name` derived from `seed`.
    fn from_seed(name: &str, seed: [u8; SEED_SIZE]) -> Result<Self, KeyError>;
    /// Parses an skey (without the line ending).
    fn from_skey(skey: &str) -> Result<Self, KeyError>;
    /// The skey text. It contains the private key.
    fn to_skey(&self) -> String;
    /// The key name (a log's origin, a witness's name).
    fn key_name(&self) -> &str;
}

impl SkeyKey for Ed25519Signer {
    fn from_seed(name: &str, seed: [u8; SEED_SIZE]) -> Result<Self, KeyError> {
        Ed25519Signer::from_seed(name, seed)
    }
    fn from_skey(skey: &str) -> Result<Self, KeyError> {
        Ed25519Signer::from_skey(skey)
    }
    fn to_skey(&self) -> String {
        Ed25519Signer::to_skey(self)
    }
    fn key_name(&self) -> &str {
        self.name()
    }
}

impl SkeyKey for Cosigner {
    fn from_seed(name: &str, seed: [u8; SEED_SIZE]) -> Result<Self, KeyError> {
        Cosigner::from_seed(name, seed)
    }
    fn from_skey(skey: &str) -> Result<Self, KeyError> {
        Cosigner::from_skey(skey)
    }
    fn to_skey(&self) -> String {
        Cosigner::to_skey(self)
    }
    fn key_name(&self) -> &str {
        self.name()
    }
}

/// Why a key could not be generated, written or loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// The file could not be created or read, is accessible to others, or already exists.
    #[error(transparent)]
    File(#[from] SecretFileError),
    /// The operating system gave no random seed.
    #[error("no randomness available: {0}")]
    NoRandomness(getrandom::Error),
    /// A key cannot have this name.
    #[error("{error}")]
    Name {
        /// The refused name.
        name: String,
        /// Why.
        error: KeyError,
    },
    /// The file does not hold a valid skey.
    #[error("{path} is not a valid key: {error}")]
    Invalid {
        /// The key file.
        path: PathBuf,
        /// What is wrong.
        error: KeyError,
    },
    /// The key in the file has another name than the expected one.
    #[error("{path} is the key of {key_name:?}, not of {expected:?}")]
    NameMismatch {
        /// The key file.
        path: PathBuf,
        /// The name of the key in the file.
        key_name: String,
        /// The name the caller expected.
        expected: String,
    },
}

/// A new key named `name` with a seed from the operating system's random source.
pub fn generate<K: SkeyKey>(name: &str) -> Result<K, KeyFileError> {
    let mut seed = [0u8; SEED_SIZE];
    getrandom::fill(&mut seed).map_err(KeyFileError::NoRandomness)?;
    K::from_seed(name, seed).map_err(|error| KeyFileError::Name {
        name: name.to_owned(),
        error,
    })
}

/// Writes `key` as one skey line to a new file at `path` (mode 0600, never over an existing
/// file), syncing the file and its directory so the key survives a crash right after first use.
pub fn write_new<K: SkeyKey>(path: &Path, key: &K) -> Result<(), KeyFileError> {
    Ok(crate::secret::write_new(
        path,
        &format!("{}\n", key.to_skey()),
    )?)
}

/// Loads the key at `path`, whatever its name, refusing a file others may access.
pub fn load_any<K: SkeyKey>(path: &Path) -> Result<K, KeyFileError> {
    let text = crate::secret::read(path)?;
    K::from_skey(text.trim_end_matches('\n')).map_err(|error| KeyFileError::Invalid {
        path: path.to_owned(),
        error,
    })
}

/// Loads the key at `path` like [`load_any`], and checks that it is named `name`.
pub fn load<K: SkeyKey>(path: &Path, name: &str) -> Result<K, KeyFileError> {
    let key: K = load_any(path)?;
    if key.key_name() != name {
        return Err(KeyFileError::NameMismatch {
            path: path.to_owned(),
            key_name: key.key_name().to_owned(),
            expected: name.to_owned(),
        });
    }
    Ok(key)
}

/// Loads the key named `name` at `path`, or generates and writes it if there is no file (not
/// even a dangling symlink) at `path`. Returns the key and whether it was created now.
pub fn load_or_create<K: SkeyKey>(path: &Path, name: &str) -> Result<(K, bool), KeyFileError> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => Ok((load(path, name)?, false)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = generate(name)?;
            write_new(path, &key)?;
            Ok((key, true))
        }
        Err(error) => Err(SecretFileError::Io {
            path: path.to_owned(),
            error,
        }
        .into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn written_as_one_private_skey_line_and_loaded_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k/w.key");
        let c: Cosigner = generate("witness.example/w").unwrap();
        write_new(&path, &c).unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{}\n", c.to_skey())
        );
        let back: Cosigner = load(&path, "witness.example/w").unwrap();
        assert_eq!(back.to_skey(), c.to_skey());
        let any: Cosigner = load_any(&path).unwrap();
        assert_eq!(any.to_skey(), c.to_skey());
        // Never over an existing key.
        let other: Cosigner = generate("witness.example/w").unwrap();
        assert!(matches!(
            write_new(&path, &other),
            Err(KeyFileError::File(SecretFileError::Exists(_)))
        ));
        assert_eq!(
            load::<Cosigner>(&path, "witness.example/w")
                .unwrap()
                .to_skey(),
            c.to_skey()
        );
    }

    #[test]
    fn generated_keys_differ() {
        let a: Ed25519Signer = generate("example.com/log").unwrap();
        let b: Ed25519Signer = generate("example.com/log").unwrap();
        assert_ne!(a.to_skey(), b.to_skey());
        assert_eq!(a.key_name(), "example.com/log");
    }

    #[test]
    fn created_once_then_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/log.key");
        let (a, created): (Ed25519Signer, _) = load_or_create(&path, "example.com/log").unwrap();
        assert!(created);
        assert_eq!(mode(&path), 0o600);
        let (b, created): (Ed25519Signer, _) = load_or_create(&path, "example.com/log").unwrap();
        assert!(!created);
        assert_eq!(a.to_skey(), b.to_skey());
    }

    #[test]
    fn refuses_wrong_name_open_mode_garbage_and_bad_names() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.key");
        let _: (Ed25519Signer, _) = load_or_create(&path, "example.com/log").unwrap();
        match load::<Ed25519Signer>(&path, "example.com/other") {
            Err(KeyFileError::NameMismatch {
                key_name, expected, ..
            }) => {
                assert_eq!(key_name, "example.com/log");
                assert_eq!(expected, "example.com/other");
            }
            other => panic!("{other:?}"),
        }
        // A file that exists is never replaced, even when it is unusable.
        assert!(matches!(
            load_or_create::<Ed25519Signer>(&path, "example.com/other"),
            Err(KeyFileError::NameMismatch { .. })
        ));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            load::<Ed25519Signer>(&path, "example.com/log"),
            Err(KeyFileError::File(SecretFileError::Permissions {
                mode: 0o644,
                ..
            }))
        ));
        let bad = dir.path().join("bad.key");
        std::fs::write(&bad, "PRIVATE+KEY+nope\n").unwrap();
        std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(
            load_any::<Cosigner>(&bad),
            Err(KeyFileError::Invalid { .. })
        ));
        assert!(matches!(
            generate::<Cosigner>("bad name"),
            Err(KeyFileError::Name { .. })
        ));
        assert!(matches!(
            load_any::<Cosigner>(&dir.path().join("missing")),
            Err(KeyFileError::File(SecretFileError::Io { .. }))
        ));
    }

    #[test]
    fn a_dangling_symlink_is_not_replaced_by_a_new_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.key");
        std::os::unix::fs::symlink(dir.path().join("elsewhere"), &path).unwrap();
        assert!(matches!(
            load_or_create::<Ed25519Signer>(&path, "example.com/log"),
            Err(KeyFileError::File(SecretFileError::Io { .. }))
        ));
        assert!(!dir.path().join("elsewhere").exists());
    }
}
