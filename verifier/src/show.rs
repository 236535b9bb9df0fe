//! Rendering verified values for humans and as JSON.

use base64::Engine as _;
use sealtrail_spec::Hash;
use sealtrail_spec::checkpoint::VerifiedCheckpoint;
use sealtrail_spec::envelope::LeafEnvelope;
use sealtrail_spec::record::PrivateRecord;
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

/// The leaf envelope's public fields, as JSON (text exactly as in the leaf).
pub(crate) fn envelope_json(e: &LeafEnvelope) -> Value {
    json!({
        "time_ms": e.time_ms,
        "content_type": e.content_type,
        "event_type": e.event_type,
        "payload_size": e.payload_size,
        "commitment": Hash(e.commitment).to_hex(),
    })
}

/// The leaf envelope's public fields, one per line, text escaped for the terminal.
pub(crate) fn envelope_lines(e: &LeafEnvelope) -> Vec<String> {
    let event_type = match &e.event_type {
        None => "-".to_owned(),
        Some(t) if e.is_reserved() => format!("{} (reserved: the log's own entry)", escaped(t)),
        Some(t) => escaped(t),
    };
    vec![
        format!("  time_ms: {} ({})", e.time_ms, utc(e.time_ms)),
        format!("  content_type: {}", escaped(&e.content_type)),
        format!("  event_type: {event_type}"),
        format!("  payload_size: {} bytes", e.payload_size),
        format!("  commitment: {}", Hash(e.commitment).to_hex()),
    ]
}

/// A payload as JSON: `{"text": ...}` when it is UTF-8, otherwise `{"base64": ...}`.
fn payload_json(payload: &[u8]) -> Value {
    match std::str::from_utf8(payload) {
        Ok(text) => json!({ "text": text }),
        Err(_) => json!({ "base64": base64::engine::general_purpose::STANDARD.encode(payload) }),
    }
}

/// A verified record's content as JSON (never the salt).
pub(crate) fn record_json(r: &PrivateRecord) -> Value {
    json!({
        "principal": r.principal,
        "payload": payload_json(&r.payload),
    })
}

/// A verified record's content, one field per line, text escaped for the terminal (the salt is
/// never shown).
pub(crate) fn record_lines(r: &PrivateRecord) -> Vec<String> {
    let payload = match std::str::from_utf8(&r.payload) {
        Ok(text) => escaped(text),
        Err(_) => format!(
            "(binary, base64) {}",
            base64::engine::general_purpose::STANDARD.encode(&r.payload)
        ),
    };
    vec![
        format!("  principal: {}", escaped(&r.principal)),
        format!("  payload: {payload}"),
    ]
}

/// Text from the log made safe to print ([`sealtrail_spec::escape_display`]).
pub(crate) fn escaped(text: &str) -> String {
    sealtrail_spec::escape_display(text)
}

/// `YYYY-MM-DDThh:mm:ss.mmmZ` (see [`sealtrail_spec::rfc3339_ms`]).
pub(crate) fn utc(ms: u64) -> String {
    sealtrail_spec::rfc3339_ms(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_times() {
        assert_eq!(utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(utc(1_700_000_000_000), "2023-11-14T22:13:20.000Z");
        assert_eq!(utc(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(utc(4_102_444_799_999), "2099-12-31T23:59:59.999Z");
        // The largest time still renders.
        assert!(utc(u64::MAX).ends_with(".615Z"));
    }

    #[test]
    fn escapes_controls_and_invisible_characters() {
        assert_eq!(escaped("user.login"), "user.login");
        assert_eq!(escaped("Zoë 🛡"), "Zoë 🛡");
        assert_eq!(escaped("user\u{202e}nigol"), "user\\u{202e}nigol");
        assert_eq!(escaped("a\u{200b}b\nc\u{85}"), "a\\u{200b}b\\u{a}c\\u{85}");
        assert_eq!(escaped("\u{feff}x\u{e0041}"), "\\u{feff}x\\u{e0041}");
    }
}
