//! The forwarded form of an event: [`ForwardEvent`], and [`entry_event`], which turns a stored
//! leaf into the JSON document every sink sends (each sink only frames it: a syslog message, an
//! NDJSON line, a HEC event, a `_bulk` document).

use base64::Engine as _;
use sealtrail_net::clock::unix_millis;
use sealtrail_net::http::{is_json_media, media_essence};
use sealtrail_spec::envelope::LeafEnvelope;
use sealtrail_spec::record::PrivateRecord;

use crate::store::{RecordState, StoreError};

/// Something to forward.
#[derive(Debug, Clone)]
pub enum ForwardEvent {
    /// A committed entry (cursor-tracked).
    Entry(EntryEvent),
    /// A non-entry event: a JSON object from the access-control or witness layer (best-effort).
    Security(serde_json::Value),
}

/// A committed entry as forwarded.
#[derive(Debug, Clone)]
pub struct EntryEvent {
    /// The log's origin.
    pub origin: String,
    /// The entry's index.
    pub index: u64,
    /// Hex leaf hash.
    pub leaf_hash: String,
    /// Sequencing time, ms since the Unix epoch.
    pub time_ms: u64,
    /// Size of a signed, published checkpoint that includes the entry.
    pub checkpoint_size: u64,
    /// The JSON document every sink sends (see [`entry_event`]).
    pub json: serde_json::Value,
}

impl ForwardEvent {
    /// The JSON document of the event.
    pub fn json(&self) -> &serde_json::Value {
        match self {
            ForwardEvent::Entry(e) => &e.json,
            ForwardEvent::Security(v) => v,
        }
    }

    /// The event's stable id (`origin/index`) for entries; replays carry the same id.
    pub fn id(&self) -> Option<String> {
        match self {
            ForwardEvent::Entry(e) => Some(format!("{}/{}", e.origin, e.index)),
            ForwardEvent::Security(_) => None,
        }
    }

    /// Time of the event in ms since the Unix epoch.
    pub fn time_ms(&self) -> u64 {
        match self {
            ForwardEvent::Entry(e) => e.time_ms,
            ForwardEvent::Security(v) => v
                .get("time_ms")
                .and_then(serde_json::Value::as_u64)
                .unwrap_or_else(unix_millis),
        }
    }
}

/// Builds the forwarded form of entry `index` (leaf bytes `leaf`, private record `record`):
/// origin, index, id, leaf hash, sequencing time, principal, event type, content type, the
/// payload (inline JSON when the content type is JSON and the bytes parse, otherwise
/// `payload_base64`) and the size of a published checkpoint that covers it. A record erased
/// before it was forwarded is sent without principal and payload, with `erased` naming the
/// erasure entry.
pub fn entry_event(
    origin: &str,
    index: u64,
    leaf: &[u8],
    record: RecordState,
    checkpoint_size: u64,
) -> Result<EntryEvent, StoreError> {
    let corrupt = |e: &dyn std::fmt::Display| StoreError::Corrupt(format!("entry {index}: {e}"));
    let env = LeafEnvelope::decode(leaf).map_err(|e| corrupt(&e))?;
    let leaf_hash = sealtrail_spec::leaf_hash(leaf).to_hex();
    let mut json = serde_json::json!({
        "id": format!("{origin}/{index}"),
        "origin": origin,
        "index": index,
        "leaf_hash": leaf_hash,
        "timestamp": env.time_ms,
        "event_type": env.event_type,
        "content_type": env.content_type,
        "checkpoint_size": checkpoint_size,
    });
    let record = match record {
        RecordState::Live(bytes) => PrivateRecord::decode(&bytes).map_err(|e| corrupt(&e))?,
        RecordState::Erased(by) => {
            json["erased"] = serde_json::json!({ "erasure_index": by });
            return Ok(EntryEvent {
                origin: origin.to_owned(),
                index,
                leaf_hash,
                time_ms: env.time_ms,
                checkpoint_size,
                json,
            });
        }
        RecordState::Absent => return Err(corrupt(&"its private record is missing")),
    };
    let is_json = is_json_media(&media_essence(&env.content_type));
    let inline = is_json
        .then(|| serde_json::from_slice::<serde_json::Value>(&record.payload).ok())
        .flatten();
    json["principal"] = record.principal.into();
    match inline {
        Some(v) => json["payload"] = v,
        None => {
            json["payload_base64"] = base64::engine::general_purpose::STANDARD
                .encode(&record.payload)
                .into();
        }
    }
    Ok(EntryEvent {
        origin: origin.to_owned(),
        index,
        leaf_hash,
        time_ms: env.time_ms,
        checkpoint_size,
        json,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A leaf and its live record.
    fn leaf(content_type: &str, payload: &[u8]) -> (Vec<u8>, RecordState) {
        let record = PrivateRecord {
            salt: [3; 32],
            principal: "alice".into(),
            payload: payload.to_vec(),
        };
        let leaf = LeafEnvelope {
            time_ms: 1_700_000_000_123,
            content_type: content_type.into(),
            event_type: Some("user.login".into()),
            payload_size: payload.len() as u64,
            commitment: record.commitment(),
        }
        .encode()
        .unwrap();
        (leaf, RecordState::Live(record.encode()))
    }

    #[test]
    fn an_entry_document_has_every_field() {
        let (bytes, record) = leaf("application/json", br#"{"a":[1,2]}"#);
        let e = entry_event("log.example/x", 7, &bytes, record, 9).unwrap();
        let hash = sealtrail_spec::leaf_hash(&bytes).to_hex();
        assert_eq!(
            e.json,
            serde_json::json!({
                "id": "log.example/x/7",
                "origin": "log.example/x",
                "index": 7,
                "leaf_hash": hash,
                "timestamp": 1_700_000_000_123_u64,
                "principal": "alice",
                "event_type": "user.login",
                "content_type": "application/json",
                "checkpoint_size": 9,
                "payload": {"a": [1, 2]},
            })
        );
        assert_eq!(
            (e.index, e.time_ms, e.checkpoint_size, e.leaf_hash.as_str()),
            (7, 1_700_000_000_123, 9, hash.as_str())
        );
        let fe = ForwardEvent::Entry(e);
        assert_eq!(fe.id().as_deref(), Some("log.example/x/7"));
        assert_eq!(fe.time_ms(), 1_700_000_000_123);
    }

    #[test]
    fn payloads_are_inline_only_when_json_by_type_and_by_content() {
        let payload = |ct: &str, body: &[u8]| {
            let (bytes, record) = leaf(ct, body);
            let e = entry_event("o", 0, &bytes, record, 1).unwrap();
            (
                e.json.get("payload").cloned(),
                e.json.get("payload_base64").cloned(),
            )
        };
        let inline = |v: serde_json::Value| (Some(v), None);
        let base64 = |s: &str| (None, Some(serde_json::Value::from(s)));
        assert_eq!(
            payload("application/json", b"[1]"),
            inline(serde_json::json!([1]))
        );
        assert_eq!(
            payload("Application/JSON; charset=utf-8", b"\"s\""),
            inline(serde_json::json!("s"))
        );
        assert_eq!(
            payload("application/cloudevents+json", b"{}"),
            inline(serde_json::json!({}))
        );
        assert_eq!(
            payload("application/json", b"{not json"),
            base64("e25vdCBqc29u")
        );
        assert_eq!(payload("text/plain", b"[1]"), base64("WzFd"));
        assert_eq!(payload("application/jsonx", b"hi"), base64("aGk="));
    }

    #[test]
    fn undecodable_leaves_are_corrupt_entries() {
        match entry_event("o", 3, b"\x01\x02", RecordState::Absent, 4) {
            Err(StoreError::Corrupt(m)) => assert!(m.starts_with("entry 3: "), "{m}"),
            other => panic!("{other:?}"),
        }
        let (bytes, _) = leaf("text/plain", b"x");
        assert!(matches!(
            entry_event("o", 3, &bytes, RecordState::Absent, 4),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn an_erased_record_is_forwarded_without_content() {
        let (bytes, _) = leaf("application/json", br#"{"secret":"marker"}"#);
        let e = entry_event("o", 3, &bytes, RecordState::Erased(12), 20).unwrap();
        assert_eq!(e.json["erased"], serde_json::json!({"erasure_index": 12}));
        assert!(e.json.get("principal").is_none());
        assert!(e.json.get("payload").is_none() && e.json.get("payload_base64").is_none());
        assert!(!e.json.to_string().contains("marker"));
    }

    #[test]
    fn security_events_have_no_id_and_their_own_time() {
        let with_time = ForwardEvent::Security(serde_json::json!({"kind": "x", "time_ms": 42}));
        assert_eq!((with_time.id(), with_time.time_ms()), (None, 42));
        let before = unix_millis();
        let without = ForwardEvent::Security(serde_json::json!({"kind": "x"}));
        let t = without.time_ms();
        assert!(t >= before && t <= unix_millis(), "now when absent");
        assert_eq!(without.json()["kind"], "x");
    }
}
