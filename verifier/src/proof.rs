//! `proof`: a C2SP tlog-proof, offline: the log's signature on its checkpoint, the witness
//! quorum, and the inclusion of the entry (its RFC 6962 leaf hash, from the entry's bytes or
//! given as hex) at the proof's index. The entry is decoded as a sealtrail leaf envelope when it
//! is one, and a private record given with `--record FILE` is checked against it (see
//! [`crate::record`]).

use sealtrail_spec::Hash;
use sealtrail_spec::envelope::LeafEnvelope;
use sealtrail_spec::tlog_proof::{TlogProof, TlogProofError};
use serde_json::json;

use crate::record::{self, ErasureCheck};
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
    run_with_record(trust, bytes, leaf, None)
}

/// Verifies the tlog-proof `bytes` for `leaf`, then checks `record` (a JSON file's bytes: the
/// log's answer for the entry, or only its `record` object) against the entry's leaf envelope.
/// With [`Leaf::Hash`] there are no entry bytes: the file must then be the whole answer, and the
/// envelope its public fields describe is trusted only because it hashes to the proven leaf.
pub fn run_with_record(
    trust: &Trust,
    bytes: &[u8],
    leaf: &Leaf,
    record: Option<&[u8]>,
) -> Result<Report, Error> {
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
    let mut envelope = None;
    if let Leaf::Entry(data) = leaf
        && let Ok(env) = LeafEnvelope::decode(data)
    {
        lines.push("envelope:".into());
        lines.extend(show::envelope_lines(&env));
        j["envelope"] = show::envelope_json(&env);
        envelope = Some(env);
    }
    let Some(file) = record else {
        return Ok(Report { lines, json: j });
    };
    let index = proof.index();
    let answer = record::parse(file).map_err(|e| Error::Usage(format!("--record: {e}")))?;
    let env = match (envelope, leaf) {
        (Some(env), _) => env,
        (None, Leaf::Entry(_)) => {
            return Err(Error::failed(format!(
                "entry {index} is not a sealtrail leaf envelope, so no record can match it"
            )));
        }
        (None, Leaf::Hash(_)) => {
            let env = answer.claimed.envelope().map_err(|e| {
                Error::Usage(format!(
                    "--record with --leaf-hash needs the log's whole answer for the entry, with \
                     its public fields (time_ms, content_type, event_type, payload_size, \
                     commitment), or give --entry instead: {e}"
                ))
            })?;
            let hash = env
                .encode()
                .map(|b| sealtrail_spec::leaf_hash(&b))
                .map_err(|e| {
                    Error::failed(format!(
                        "entry {index}: the --record file's public fields are not a valid leaf \
                         envelope: {e}"
                    ))
                })?;
            if hash != leaf_hash {
                return Err(Error::failed(format!(
                    "entry {index}: the --record file's public fields hash to leaf hash {}, not \
                     to the proven {}: they are not this entry's",
                    hash.to_hex(),
                    leaf_hash.to_hex()
                )));
            }
            lines.push(
                "envelope (the --record file's public fields; they hash to the proven leaf):"
                    .into(),
            );
            lines.extend(show::envelope_lines(&env));
            j["envelope"] = show::envelope_json(&env);
            env
        }
    };
    let mut offline = |_| Ok(ErasureCheck::Offline);
    record::judge(
        index,
        &env,
        answer,
        "the --record file",
        false,
        &mut offline,
    )?
    .apply(&mut lines, &mut j);
    Ok(Report { lines, json: j })
}
