//! Evidence packages (`spec/docs/evidence-package.md`): the names inside a package and the
//! signed statement that binds its manifest to the log's key.
//!
//! A package is a gzip-compressed tar of one directory. Its `manifest.json` lists the SHA-256 of
//! every other file; `manifest.sig` is a C2SP signed note by the log's key whose text names the
//! manifest's SHA-256. The note's second line is never a decimal number, so no party can take it
//! for a checkpoint (whose second line is the tree size), and a witness never cosigns it.

use crate::Hash;

/// The `format` value of a manifest, and the first line of its signed statement.
pub const FORMAT: &str = "sealtrail-evidence/v1";
/// The manifest: scope, counts, and the SHA-256 of every other file.
pub const MANIFEST: &str = "manifest.json";
/// The log's signed note over the manifest's SHA-256.
pub const MANIFEST_SIG: &str = "manifest.sig";
/// The checkpoint every record is proven against (cosigned when the log has witnesses).
pub const CHECKPOINT: &str = "checkpoint";
/// The log's note verifier key.
pub const LOG_KEY: &str = "log.vkey";
/// The log's witness policy (C2SP tlog-policy), when it has witnesses.
pub const WITNESS_POLICY: &str = "witness-policy";
/// One JSON object per line: each record's entry, envelope and private record (or its erasure).
pub const RECORDS: &str = "records.jsonl";
/// The human report.
pub const REPORT: &str = "report.html";
/// The directory of the tlog-proof of every record, named `<index>.tlog-proof`.
pub const PROOFS_DIR: &str = "proofs";
/// A later checkpoint, when the package proves the log's consistency up to it.
pub const LATER_CHECKPOINT: &str = "consistency/checkpoint";
/// The consistency proof from [`CHECKPOINT`] to [`LATER_CHECKPOINT`]: one base64 hash per line.
pub const CONSISTENCY_PROOF: &str = "consistency/proof";

/// The path of entry `index`'s tlog-proof inside a package.
pub fn proof_path(index: u64) -> String {
    format!("{PROOFS_DIR}/{index}.tlog-proof")
}

/// The text of the signed statement over a manifest: three lines, the format, the manifest's
/// SHA-256 and the log's origin.
pub fn statement(origin: &str, manifest_sha256: &Hash) -> String {
    format!(
        "{FORMAT}\nmanifest sha256:{}\norigin {origin}\n",
        manifest_sha256.to_hex()
    )
}

/// Reads a statement's text back into `(origin, manifest SHA-256)`; `None` if it is not exactly
/// the form [`statement`] writes.
pub fn parse_statement(text: &str) -> Option<(&str, Hash)> {
    let rest = text.strip_prefix(FORMAT)?.strip_prefix('\n')?;
    let (hash_line, rest) = rest.split_once('\n')?;
    let hash = Hash::from_hex(hash_line.strip_prefix("manifest sha256:")?).ok()?;
    let origin = rest.strip_prefix("origin ")?.strip_suffix('\n')?;
    (!origin.is_empty() && !origin.contains('\n')).then_some((origin, hash))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::Checkpoint;

    #[test]
    fn statement_round_trips_and_is_never_a_checkpoint() {
        let h = Hash([7; 32]);
        let text = statement("log.example/a", &h);
        assert_eq!(parse_statement(&text), Some(("log.example/a", h)));
        assert!(Checkpoint::parse(&text).is_err());
        for bad in [
            text.replacen("v1", "v2", 1),
            text.replace("origin ", "origin"),
            text.trim_end().to_owned(),
            format!("{text}extra\n"),
            text.replace("sha256:", "sha256: "),
            statement("", &h),
        ] {
            assert_eq!(parse_statement(&bad), None, "{bad:?}");
        }
    }
}
