//! `entry`: fetch a log's checkpoint, the entry bundle holding one index and the hash tiles its
//! inclusion proof needs; verify the checkpoint, compute the proof from the tiles, check the
//! entry's leaf hash against the signed root, and decode the entry.

use sealtrail_spec::envelope::LeafEnvelope;
use sealtrail_spec::merkle;
use sealtrail_spec::tiles::{self, BundleId, TILE_WIDTH, TileHashReader};
use serde_json::json;

use crate::source::{Source, SourceTiles};
use crate::trust::Trust;
use crate::{Error, Report, show};

/// Verifies entry `index` of the log at `source`.
pub fn run(trust: &Trust, source: &Source, index: u64) -> Result<Report, Error> {
    let (cp, witnesses) = trust.open(&source.checkpoint()?, "the log's checkpoint")?;
    let (size, root) = (cp.checkpoint().size(), cp.checkpoint().root());
    if index >= size {
        return Err(Error::Usage(format!(
            "index {index} is not in the log's tree of size {size}"
        )));
    }
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
    let leaf = sealtrail_spec::leaf_hash(data);
    let mut reader = TileHashReader::new(size, SourceTiles(source));
    let proof = merkle::inclusion_proof(index, size, &mut reader)
        .map_err(|e| Error::failed(format!("computing the inclusion proof from tiles: {e}")))?;
    merkle::verify_inclusion(index, size, &leaf, &proof, &root).map_err(|e| {
        Error::failed(format!(
            "entry {index} from {} is not included in the checkpoint of size {size}: {e} \
             (the entry bundle or a hash tile on its path was altered)",
            bundle.path()
        ))
    })?;
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
    match LeafEnvelope::decode(data) {
        Ok(env) => {
            lines.push("envelope:".into());
            lines.extend(show::envelope_lines(&env));
            j["envelope"] = show::envelope_json(&env);
        }
        Err(e) => lines.push(format!("(not a sealtrail leaf envelope: {e})")),
    }
    Ok(Report { lines, json: j })
}
