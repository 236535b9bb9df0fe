//! `consistency`: that a NEW checkpoint extends an OLD one of the same log. The proof comes from
//! a file (one base64 hash per line) or is computed from the log's hash tiles, which works
//! against any tlog-tiles log and trusts nothing but the two signed roots.

use sealtrail_spec::Hash;
use sealtrail_spec::merkle::{self, ProofError};
use sealtrail_spec::tiles::TileHashReader;
use serde_json::json;

use crate::source::{Source, SourceTiles};
use crate::trust::Trust;
use crate::{Error, Report, show};

/// Where the consistency proof comes from.
#[derive(Debug)]
pub enum ProofFrom<'a> {
    /// A proof file's bytes: one base64 hash per line.
    File(Vec<u8>),
    /// Computed from this log's tiles.
    Log(&'a Source),
    /// No proof: only equal sizes (or an empty OLD) can be checked.
    None,
}

/// Verifies that checkpoint note `new` extends `old`.
pub fn run(trust: &Trust, old: &[u8], new: &[u8], from: ProofFrom<'_>) -> Result<Report, Error> {
    let (old_cp, old_w) = trust.open(old, "OLD checkpoint")?;
    let (new_cp, new_w) = trust.open(new, "NEW checkpoint")?;
    let (o, n) = (old_cp.checkpoint(), new_cp.checkpoint());
    check(o.size(), n.size(), &o.root(), &n.root(), from)?;
    let mut lines = show::checkpoint_lines("OLD", &old_cp, &old_w);
    lines.extend(show::checkpoint_lines("NEW", &new_cp, &new_w));
    lines.push(format!(
        "NEW (size {}) extends OLD (size {})",
        n.size(),
        o.size()
    ));
    Ok(Report {
        lines,
        json: json!({
            "old": show::checkpoint_json(&old_cp, &old_w),
            "new": show::checkpoint_json(&new_cp, &new_w),
        }),
    })
}

/// Checks that the tree (`new`, `new_root`) extends (`old`, `old_root`).
pub fn check(
    old: u64,
    new: u64,
    old_root: &Hash,
    new_root: &Hash,
    from: ProofFrom<'_>,
) -> Result<(), Error> {
    if new < old {
        return Err(Error::failed(format!(
            "rollback: NEW has size {new}, smaller than OLD's {old}"
        )));
    }
    let proof = match from {
        _ if old == 0 || old == new => Vec::new(),
        ProofFrom::File(bytes) => parse_proof(&bytes)?,
        ProofFrom::Log(source) => {
            let mut reader = TileHashReader::new(new, SourceTiles(source));
            merkle::consistency_proof(old, new, &mut reader).map_err(|e| match e {
                ProofError::Reader(e) => match e {
                    sealtrail_spec::tiles::TileReadError::Reader { error, .. } => error,
                    other => Error::failed(other.to_string()),
                },
                other => Error::failed(other.to_string()),
            })?
        }
        ProofFrom::None => {
            return Err(Error::Usage(
                "sizes differ: give --proof FILE or --from URL".into(),
            ));
        }
    };
    merkle::verify_consistency(old, new, old_root, new_root, &proof).map_err(|e| {
        Error::failed(format!(
            "fork or bad proof: the tree of size {new} does not extend the tree of size {old}: {e}"
        ))
    })
}

/// One standard base64 hash per line.
fn parse_proof(bytes: &[u8]) -> Result<Vec<Hash>, Error> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| Error::failed("consistency proof file is not UTF-8"))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            Hash::from_base64(l.trim())
                .map_err(|e| Error::failed(format!("consistency proof line {}: {e}", i + 1)))
        })
        .collect()
}
