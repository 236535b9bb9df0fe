//! Export archives (`sealtrail export --archive`): a gzip-compressed tar of an export directory
//! under `sealtrail-export/`. [`extract`] unpacks one into a scratch directory, removed when
//! dropped, so `audit` reads it as the static tile directory it holds. (The server has the same
//! few lines for `import`; the verifier does not depend on the server.)

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::Error;

/// The directory every file of an export archive is in.
pub const TOP: &str = "sealtrail-export";

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

/// Unpacks the archive at `archive` into a new directory in the system's temporary directory;
/// anything but the files and directories of `sealtrail-export/` is refused.
pub fn extract(archive: &Path) -> Result<Scratch, Error> {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let root =
        std::env::temp_dir().join(format!("sealtrail-verify-{}-{stamp}", std::process::id()));
    std::fs::create_dir(&root)
        .map_err(|e| Error::Io(format!("creating {}: {e}", root.display())))?;
    let scratch = Scratch {
        export: root.join(TOP),
        root,
    };
    let name = archive.display();
    let bad = |m: String| Error::failed(format!("{name}: {m}"));
    let f = File::open(archive).map_err(|e| Error::Io(format!("reading {name}: {e}")))?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(f));
    let entries = tar
        .entries()
        .map_err(|e| bad(format!("not a gzip-compressed tar: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| bad(format!("not a readable archive: {e}")))?;
        let path = entry.path().map_err(|e| bad(e.to_string()))?.into_owned();
        let kind = entry.header().entry_type();
        if !path.starts_with(TOP) || !(kind.is_file() || kind.is_dir()) {
            return Err(bad(format!(
                "{} is not a file or directory of {TOP}/: not an export archive",
                path.display()
            )));
        }
        // unpack_in refuses paths that would leave the directory (`..`, absolute paths).
        match entry.unpack_in(&scratch.root) {
            Ok(true) => {}
            Ok(false) => return Err(bad(format!("{} escapes the archive", path.display()))),
            Err(e) => return Err(bad(format!("unpacking {}: {e}", path.display()))),
        }
    }
    Ok(scratch)
}
