//! An entry as the JSON API shows it (`GET /v1/entries/{index}`, pages, search results), and as
//! evidence packages hold it.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use sealtrail_net::http::{is_json_media, media_essence};
use sealtrail_spec::envelope::LeafEnvelope;
use sealtrail_spec::record::PrivateRecord;

use crate::store::RecordState;

/// An entry as JSON: its public leaf fields, and its private record when the caller may read
/// content (`record`, with the salt, so the caller can check it against `commitment`), or
/// `erased` naming the erasure entry. `restricted` says content was withheld.
pub fn entry_json(
    index: u64,
    bytes: &[u8],
    content: Option<RecordState>,
) -> Result<serde_json::Value, String> {
    let env =
        LeafEnvelope::decode(bytes).map_err(|e| format!("entry {index} does not decode: {e}"))?;
    let mut v = serde_json::json!({
        "index": index,
        "leaf_hash": sealtrail_spec::leaf_hash(bytes).to_hex(),
        "timestamp": env.time_ms,
        "content_type": env.content_type,
        "event_type": env.event_type,
        "payload_size": env.payload_size,
        "commitment": sealtrail_spec::to_hex(&env.commitment),
        "record": null,
        "erased": null,
        "restricted": content.is_none(),
    });
    match content {
        Some(RecordState::Live(bytes)) => {
            let r = PrivateRecord::decode(&bytes)
                .map_err(|e| format!("the record of entry {index} does not decode: {e}"))?;
            let json_payload = is_json_media(&media_essence(&env.content_type))
                .then(|| serde_json::from_slice::<serde_json::Value>(&r.payload).ok())
                .flatten();
            v["record"] = serde_json::json!({
                "salt": sealtrail_spec::to_hex(&r.salt),
                "principal": r.principal,
                "payload_base64": B64.encode(&r.payload),
                "payload": json_payload,
            });
        }
        Some(RecordState::Erased(by)) => {
            v["erased"] = serde_json::json!({ "erasure_index": by });
        }
        Some(RecordState::Absent) => {
            return Err(format!(
                "the record of entry {index} is missing from the store"
            ));
        }
        None => {}
    }
    Ok(v)
}
