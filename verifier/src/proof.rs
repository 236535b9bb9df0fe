//! `proof`: a C2SP tlog-proof, offline: the log's signature on its checkpoint, the witness
//! quorum, and the inclusion of the entry (its RFC 6962 leaf hash, from the entry's bytes or
//! given as hex) at the proof's index. The entry is decoded as a sealtrail leaf envelope when it
//! is one.

use sealtrail_spec::Hash;
use sealtrail_spec::envelope::LeafEnvelope;
use sealtrail_spec::tlog_proof::{TlogProof, TlogProofError};
use serde_json::json;

use crate::trust::Trust;
use crate::{Error, Report, show};

/// The entry whose inclusion is claimed.
#[derive(Debug, Clone)]
pub enum Leaf {
    /// The entry's bytes (for sealtrail, the leaf envelope).
    Entry(Vec<u8>),
    /// The leaf hash itself.
    Hash(Hash),
}

/// Verifies the tlog-proof `bytes` for `leaf`.
pub fn run(trust: &Trust, bytes: &[u8], leaf: &Leaf) -> Result<Report, Error> {
    let proof = TlogProof::parse(bytes).map_err(|e| Error::failed(format!("tlog-proof: {e}")))?;
    let (cp, witnesses) = trust.open(proof.checkpoint(), "tlog-proof checkpoint")?;
    let leaf_hash = match leaf {
        Leaf::Entry(data) => sealtrail_spec::leaf_hash(data),
        Leaf::Hash(h) => *h,
    };
    proof
        .verify(&leaf_hash, trust.origin(), &[trust.log()], trust.policy())
        .map_err(|e| match e {
            TlogProofError::Inclusion {
                index,
                size,
                source,
            } => Error::failed(format!(
                "inclusion: leaf hash {} is not at index {index} of the tree of size {size}: \
                 {source} (the entry, a proof line or the index is wrong)",
                leaf_hash.to_hex()
            )),
            other => Error::failed(format!("tlog-proof: {other}")),
        })?;
    let mut lines = show::checkpoint_lines("checkpoint", &cp, &witnesses);
    lines.push(format!(
        "entry {} (leaf hash {}) is included",
        proof.index(),
        leaf_hash.to_hex()
    ));
    let mut j = json!({
        "checkpoint": show::checkpoint_json(&cp, &witnesses),
        "index": proof.index(),
        "leaf_hash": leaf_hash.to_hex(),
    });
    if let Leaf::Entry(data) = leaf
        && let Ok(env) = LeafEnvelope::decode(data)
    {
        lines.push("envelope:".into());
        lines.extend(show::envelope_lines(&env));
        j["envelope"] = show::envelope_json(&env);
    }
    Ok(Report { lines, json: j })
}
