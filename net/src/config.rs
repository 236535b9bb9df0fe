//! Configuration files: TOML, every unknown key an error (the callers' types use
//! `deny_unknown_fields`), with the file named in every error.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

/// A configuration that cannot be loaded or would be unsafe.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading {path}: {error}")]
    Read {
        /// The config file.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// The text is not valid TOML for this configuration.
    #[error("parsing {path}: {error}")]
    Parse {
        /// The config file (empty when parsing text).
        path: PathBuf,
        /// What is wrong, with line and column.
        error: String,
    },
    /// A value is out of its allowed range or a combination is unsafe.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// Parses TOML text.
pub fn parse_toml<T: DeserializeOwned>(text: &str) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: PathBuf::new(),
        error: e.to_string(),
    })
}

/// Reads and parses a TOML file, naming it in every error.
pub fn read_toml<T: DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
        path: path.to_owned(),
        error,
    })?;
    parse_toml(&text).map_err(|e| match e {
        ConfigError::Parse { error, .. } => ConfigError::Parse {
            path: path.to_owned(),
            error,
        },
        other => other,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct T {
        a: u32,
    }

    #[test]
    fn errors_name_the_file_and_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "a = 1\n").unwrap();
        assert_eq!(read_toml::<T>(&p).unwrap(), T { a: 1 });
        std::fs::write(&p, "a = 1\nb = 2\n").unwrap();
        let e = read_toml::<T>(&p).unwrap_err().to_string();
        assert!(e.contains("c.toml") && e.contains("unknown field"), "{e}");
        let e = read_toml::<T>(&dir.path().join("missing")).unwrap_err();
        assert!(matches!(e, ConfigError::Read { .. }));
    }
}
