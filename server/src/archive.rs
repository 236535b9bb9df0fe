//! Export archives: an export directory (`crate::export`) as one gzip-compressed tar, for backups
//! that are copied, kept N at a time and restored whole. [`write`] packs a directory under one
//! top-level directory ([`TOP`]) and publishes the file atomically (a temporary file synced and
//! renamed); [`extract`] unpacks one into a scratch directory that is removed when dropped.
//! `sealtrail import` and `sealtrail-verify audit` read archives through it (the verifier has its
//! own copy of the few lines that unpack, as it does not depend on the server).

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

/// The directory every file of an archive is in.
pub const TOP: &str = "sealtrail-export";

/// Whether `path` names an archive (a file) rather than an export directory.
pub fn is_archive(path: &Path) -> bool {
    path.is_file()
}

/// Packs the export directory `dir` into `archive` (which must not exist), under [`TOP`]; returns
/// the archive's size in bytes.
pub fn write(dir: &Path, archive: &Path) -> Result<u64> {
    if archive.exists() {
        anyhow::bail!("{} exists; choose a new file", archive.display());
    }
    let tmp = partial(archive);
    let result = (|| -> Result<u64> {
        let f = File::create_new(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        let gz = flate2::write::GzEncoder::new(f, flate2::Compression::default());
        let mut tar = tar::Builder::new(gz);
        tar.mode(tar::HeaderMode::Deterministic);
        tar.follow_symlinks(false);
        tar.append_dir_all(TOP, dir)
            .with_context(|| format!("packing {}", dir.display()))?;
        let f = tar.into_inner()?.finish()?;
        f.sync_all()?;
        let size = f.metadata()?.len();
        std::fs::rename(&tmp, archive)
            .with_context(|| format!("renaming {} to {}", tmp.display(), archive.display()))?;
        if let Some(parent) = archive.parent().filter(|p| !p.as_os_str().is_empty()) {
            File::open(parent)?.sync_all()?;
        }
        Ok(size)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// `archive` with `.partial` appended: where it is written before it is renamed into place.
fn partial(archive: &Path) -> PathBuf {
    let mut p = archive.as_os_str().to_owned();
    p.push(".partial");
    PathBuf::from(p)
}

/// A directory removed (with everything in it) when dropped.
#[derive(Debug)]
pub struct Scratch {
    root: PathBuf,
    export: PathBuf,
}

impl Scratch {
    /// The extracted export directory.
    pub fn path(&self) -> &Path {
        &self.export
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Unpacks `archive` into a new directory under `parent` and returns the export directory in it.
/// Entries outside [`TOP`], and anything but regular files and directories, are refused.
pub fn extract(archive: &Path, parent: &Path) -> Result<Scratch> {
    let mut name = std::ffi::OsString::from(".sealtrail-extract-");
    name.push(std::process::id().to_string());
    name.push("-");
    name.push(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
            .to_string(),
    );
    let root = parent.join(name);
    std::fs::create_dir(&root).with_context(|| format!("creating {}", root.display()))?;
    let scratch = Scratch {
        export: root.join(TOP),
        root,
    };
    let f = File::open(archive).with_context(|| format!("opening {}", archive.display()))?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(f));
    for entry in tar
        .entries()
        .with_context(|| format!("{}: not a gzip-compressed tar", archive.display()))?
    {
        let mut entry = entry.with_context(|| format!("reading {}", archive.display()))?;
        let path = entry.path()?.into_owned();
        let kind = entry.header().entry_type();
        if !path.starts_with(TOP) || !(kind.is_file() || kind.is_dir()) {
            anyhow::bail!(
                "{}: {} is not a file or directory of {TOP}/: not an export archive",
                archive.display(),
                path.display()
            );
        }
        // unpack_in refuses paths that would leave the directory (`..`, absolute paths).
        if !entry.unpack_in(&scratch.root)? {
            anyhow::bail!(
                "{}: {} escapes the archive",
                archive.display(),
                path.display()
            );
        }
    }
    if !scratch.export.join("checkpoint").is_file() {
        anyhow::bail!(
            "{}: no {TOP}/checkpoint: not an export archive",
            archive.display()
        );
    }
    Ok(scratch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let dir = tempfile::tempdir().unwrap();
        let export = dir.path().join("export");
        std::fs::create_dir_all(export.join("tile/0")).unwrap();
        std::fs::write(export.join("checkpoint"), "cp\n").unwrap();
        std::fs::write(export.join("tile/0/000"), [7u8; 64]).unwrap();
        let archive = dir.path().join("backup.tar.gz");
        let size = write(&export, &archive).unwrap();
        assert_eq!(size, std::fs::metadata(&archive).unwrap().len());
        assert!(!partial(&archive).exists());
        // Never over an existing file.
        assert!(write(&export, &archive).is_err());
        let s = extract(&archive, dir.path()).unwrap();
        assert_eq!(std::fs::read(s.path().join("checkpoint")).unwrap(), b"cp\n");
        assert_eq!(
            std::fs::read(s.path().join("tile/0/000")).unwrap(),
            [7u8; 64]
        );
        let root = s.root.clone();
        drop(s);
        assert!(!root.exists(), "the scratch directory is removed");

        // An archive of something else, and a file that is not an archive, are refused.
        let other = dir.path().join("other.tar.gz");
        {
            let gz = flate2::write::GzEncoder::new(
                File::create(&other).unwrap(),
                flate2::Compression::fast(),
            );
            let mut t = tar::Builder::new(gz);
            t.append_dir_all("elsewhere", &export).unwrap();
            t.into_inner().unwrap().finish().unwrap();
        }
        let e = extract(&other, dir.path()).unwrap_err();
        assert!(e.to_string().contains("not an export archive"), "{e}");
        let junk = dir.path().join("junk");
        std::fs::write(&junk, "not gzip").unwrap();
        assert!(extract(&junk, dir.path()).is_err());
        // Failed extractions leave no scratch directory behind.
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(".sealtrail-extract-")
            })
            .collect();
        assert!(left.is_empty());
    }
}
