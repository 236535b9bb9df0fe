//! `entry`: fetch a log's checkpoint, the entry bundle holding one index and the hash tiles its
//! inclusion proof needs; verify the checkpoint, compute the proof from the tiles, check the
//! entry's leaf hash against the signed root, and decode the entry. Then, for a sealtrail leaf
//! envelope, check its private record against the leaf: from the log (`GET /v1/entries/{i}`, when
//! the log is an http(s) URL) or from a file (see [`crate::record`]).

use sealtrail_spec::envelope::LeafEnvelope;
use sealtrail_spec::merkle;
use sealtrail_spec::tiles::{self, BundleId, TILE_WIDTH, TileHashReader};
use sealtrail_spec::{Hash, leaf_hash};
use serde_json::json;

use crate::record::{self, ERASURE_EVENT_TYPE, ErasureCheck, Outcome, ParseError, RecordFrom};
use crate::source::{ApiAnswer, Source, SourceTiles};
use crate::trust::Trust;
use crate::{Error, Report, show};

/// Verifies entry `index` of the log at `source`, and its record as `sealtrail-verify entry`
/// does by default: fetched from an http(s) log without a token, not checked for a tile
/// directory.
pub fn run(trust: &Trust, source: &Source, index: u64) -> Result<Report, Error> {
    run_with(trust, source, index, &RecordFrom::Log { token: None })
}

/// Verifies entry `index` of the log at `source`, and its private record from `from`.
pub fn run_with(
    trust: &Trust,
    source: &Source,
    index: u64,
    from: &RecordFrom,
) -> Result<Report, Error> {
    let (cp, witnesses) = trust.open(&source.checkpoint()?, "the log's checkpoint")?;
    let (size, root) = (cp.checkpoint().size(), cp.checkpoint().root());
    if index >= size {
        return Err(Error::Usage(format!(
            "index {index} is not in the log's tree of size {size}"
        )));
    }
    let (data, leaf) = included(source, size, &root, index)?;
    let mut lines = show::checkpoint_lines("checkpoint", &cp, &witnesses);
    lines.push(format!(
        "entry {index} (leaf hash {}) is included",
        leaf.to_hex()
    ));
    let mut j = json!({
        "checkpoint": show::checkpoint_json(&cp, &witnesses),
        "index": index,
        "leaf_hash": leaf.to_hex(),
    });
    let envelope = match LeafEnvelope::decode(&data) {
        Ok(env) => {
            lines.push("envelope:".into());
            lines.extend(show::envelope_lines(&env));
            j["envelope"] = show::envelope_json(&env);
            Some(env)
        }
        Err(e) => {
            lines.push(format!("(not a sealtrail leaf envelope: {e})"));
            None
        }
    };
    let mut erasure = |e: u64| check_erasure(source, size, &root, e);
    let outcome = match (envelope, from) {
        (_, RecordFrom::Skip) => Outcome::unchecked("skipped", "not checked (--no-record)"),
        (None, RecordFrom::File(_)) => {
            return Err(Error::failed(format!(
                "entry {index} is not a sealtrail leaf envelope, so no record can match it"
            )));
        }
        (None, RecordFrom::Log { .. }) => Outcome::unchecked(
            "not_checked",
            "not checked: the entry is not a sealtrail leaf envelope",
        ),
        (Some(env), RecordFrom::File(bytes)) => {
            let answer =
                record::parse(bytes).map_err(|e| Error::Usage(format!("--record: {e}")))?;
            record::judge(
                index,
                &env,
                answer,
                "the --record file",
                false,
                &mut erasure,
            )?
        }
        (Some(env), RecordFrom::Log { token }) => {
            let path = format!("v1/entries/{index}");
            match source.api_get(&path, token.as_deref())? {
                None => Outcome::unchecked(
                    "not_checked",
                    "not checked: a tile directory serves no records (give --record FILE)",
                ),
                Some(ApiAnswer::NotFound) => Outcome::unchecked(
                    "not_served",
                    format!("the log serves no {path} (HTTP 404); content not verified"),
                ),
                Some(ApiAnswer::Denied(status)) => {
                    Outcome::restricted(&format!("{path}: HTTP {status}"), token.is_none())
                }
                Some(ApiAnswer::Body(body)) => match record::parse(&body) {
                    Err(ParseError::NotAnAnswer(e)) => Outcome::unchecked(
                        "not_served",
                        format!(
                            "the log's {path} is not a sealtrail entry answer ({e}); content \
                             not verified"
                        ),
                    ),
                    Err(ParseError::Malformed(e)) => {
                        return Err(Error::failed(format!(
                            "entry {index}: the log's answer ({path}) is malformed: {e}"
                        )));
                    }
                    Ok(answer) => record::judge(
                        index,
                        &env,
                        answer,
                        "the log's answer",
                        token.is_none(),
                        &mut erasure,
                    )?,
                },
            }
        }
    };
    outcome.apply(&mut lines, &mut j);
    Ok(Report { lines, json: j })
}

/// Reads entry `index` from its bundle and verifies its inclusion in the tree of `size` with
/// `root`, the proof computed from the log's tiles. Returns the entry's bytes and leaf hash.
fn included(source: &Source, size: u64, root: &Hash, index: u64) -> Result<(Vec<u8>, Hash), Error> {
    let w = u64::from(TILE_WIDTH);
    let bundle = BundleId {
        index: index / w,
        width: u16::try_from((size - index / w * w).min(w)).unwrap_or(TILE_WIDTH),
    };
    let bytes = source.bundle(bundle)?;
    let entries = tiles::decode_bundle(&bytes, Some(bundle.width))
        .map_err(|e| Error::failed(format!("{}: {e}", bundle.path())))?;
    let data = entries
        .get(usize::try_from(index % w).unwrap_or(usize::MAX))
        .ok_or_else(|| Error::failed(format!("{}: no entry {index}", bundle.path())))?;
    let leaf = leaf_hash(data);
    let mut reader = TileHashReader::new(size, SourceTiles(source));
    let proof = merkle::inclusion_proof(index, size, &mut reader)
        .map_err(|e| Error::failed(format!("computing the inclusion proof from tiles: {e}")))?;
    merkle::verify_inclusion(index, size, &leaf, &proof, root).map_err(|e| {
        Error::failed(format!(
            "entry {index} from {} is not included in the checkpoint of size {size}: {e} \
             (the entry bundle or a hash tile on its path was altered)",
            bundle.path()
        ))
    })?;
    Ok((data.to_vec(), leaf))
}

/// An answer says the record was erased by entry `erasure`: when that entry is in the verified
/// tree, it must be included and be one of the log's erasure entries.
fn check_erasure(
    source: &Source,
    size: u64,
    root: &Hash,
    erasure: u64,
) -> Result<ErasureCheck, Error> {
    if erasure >= size {
        return Ok(ErasureCheck::Beyond { size });
    }
    let (data, _) = included(source, size, root, erasure)?;
    let env = LeafEnvelope::decode(&data).map_err(|e| {
        Error::failed(format!(
            "the erasure entry {erasure} is not a sealtrail leaf envelope: {e}"
        ))
    })?;
    if env.event_type.as_deref() != Some(ERASURE_EVENT_TYPE) {
        return Err(Error::failed(format!(
            "entry {erasure}, named as the erasure, is not a {ERASURE_EVENT_TYPE} entry (its \
             event type is {})",
            env.event_type.as_deref().map_or_else(
                || "absent".to_owned(),
                |t| format!("{:?}", show::escaped(t))
            )
        )));
    }
    Ok(ErasureCheck::Verified {
        time_ms: env.time_ms,
    })
}
