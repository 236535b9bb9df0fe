//! Shared helpers for sealtrail's end-to-end tests.
//!
//! The tests themselves live in `tests/tests/`. This library grows helpers (starting servers on
//! 127.0.0.1, the load generator) as the services land.

/// The workspace root, for tests that inspect the build itself.
pub fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_else(|| std::path::PathBuf::from(".."))
}

pub mod loadgen;
