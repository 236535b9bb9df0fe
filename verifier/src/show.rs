//! Rendering verified values for humans and as JSON.

use base64::Engine as _;
use sealtrail_spec::checkpoint::VerifiedCheckpoint;
use sealtrail_spec::envelope::LeafEnvelope;
use serde_json::{Value, json};

pub(crate) fn checkpoint_json(cp: &VerifiedCheckpoint, witnesses: &[String]) -> Value {
    let c = cp.checkpoint();
    json!({
        "origin": c.origin(),
        "size": c.size(),
        "root_hash": c.root().to_base64(),
        "witnesses": witnesses,
    })
}

pub(crate) fn checkpoint_lines(
    what: &str,
    cp: &VerifiedCheckpoint,
    witnesses: &[String],
) -> Vec<String> {
    let c = cp.checkpoint();
    let mut lines = vec![format!(
        "{what}: {} size {} root {} (log signature OK)",
        c.origin(),
        c.size(),
        c.root().to_base64()
    )];
    if !witnesses.is_empty() {
        lines.push(format!("cosigned by: {}", witnesses.join(", ")));
    }
    lines
}

pub(crate) fn envelope_json(e: &LeafEnvelope) -> Value {
    let payload = match std::str::from_utf8(&e.payload) {
        Ok(text) => json!({ "text": text }),
        Err(_) => json!({ "base64": base64::engine::general_purpose::STANDARD.encode(&e.payload) }),
    };
    json!({
        "time_ms": e.time_ms,
        "principal": e.principal,
        "content_type": e.content_type,
        "event_type": e.event_type,
        "payload": payload,
    })
}

pub(crate) fn envelope_lines(e: &LeafEnvelope) -> Vec<String> {
    let payload = match std::str::from_utf8(&e.payload) {
        Ok(text) => text.to_owned(),
        Err(_) => format!(
            "(binary, base64) {}",
            base64::engine::general_purpose::STANDARD.encode(&e.payload)
        ),
    };
    vec![
        format!("  time_ms: {}", e.time_ms),
        format!("  principal: {}", e.principal),
        format!("  content_type: {}", e.content_type),
        format!("  event_type: {}", e.event_type.as_deref().unwrap_or("-")),
        format!("  payload: {payload}"),
    ]
}
