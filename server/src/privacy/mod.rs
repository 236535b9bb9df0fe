//! Private records, erasure and legal holds: the vocabulary the sequencer, the HTTP layer, the
//! CLI and the retention job share.
//!
//! Every entry's principal and payload live in its private record (`sealtrail_spec::record`),
//! beside the tree; the leaf carries a salted commitment. An erasure destroys records (salts
//! included) and is itself an entry of the reserved event type [`ERASURE_EVENT_TYPE`], committed
//! in the same transaction, whose payload says which indices were erased, when, by whom and why,
//! and holds no personal data: a selector by principal is recorded as `"principal": true`, never
//! the value. Legal holds block erasure and retention until released; placing and releasing one
//! are entries too ([`HOLD_EVENT_TYPE`], [`RELEASE_EVENT_TYPE`]), again without the principal's
//! value, which lives only in the store's hold table while the hold is in force.
//!
//! Out of scope here: how the records are stored (`crate::store`), sequencing (`crate::sequencer`),
//! who may erase (the `admin` role, `crate::auth`).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The event type of erasure entries.
pub const ERASURE_EVENT_TYPE: &str = "sealtrail.erasure";
/// The event type of entries that place a legal hold.
pub const HOLD_EVENT_TYPE: &str = "sealtrail.hold";
/// The event type of entries that release a legal hold.
pub const RELEASE_EVENT_TYPE: &str = "sealtrail.hold-release";
/// The content type of the log's own entries.
pub const ADMIN_CONTENT_TYPE: &str = "application/json";
/// The principal recorded for erasures the retention job makes.
pub const RETENTION_PRINCIPAL: &str = "sealtrail:retention";
/// Most indices one erasure entry names; a larger erasure is split into parts, each its own
/// entry and its own atomic commit.
pub const ERASURE_CHUNK: usize = 4096;
/// Most indices an erasure request may list explicitly.
pub const MAX_LISTED_INDICES: usize = 100_000;
/// Longest reason, in bytes.
pub const MAX_REASON_LEN: usize = 1024;

/// Conditions on records; every condition given must hold. Used by erasures (with an optional
/// explicit index list) and by legal holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conditions {
    /// Exact submitting principal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// Exact event type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    /// Sequencing time lower bound, ms since the Unix epoch, inclusive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_ms: Option<u64>,
    /// Sequencing time upper bound, ms since the Unix epoch, exclusive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_ms: Option<u64>,
}

impl Conditions {
    /// Whether no condition is given.
    pub fn is_empty(&self) -> bool {
        self.principal.is_none()
            && self.event_type.is_none()
            && self.since_ms.is_none()
            && self.until_ms.is_none()
    }

    /// Checks the values: non-empty strings within their limits, a non-empty time range.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(p) = &self.principal {
            sealtrail_spec::record::check_principal(p).map_err(|e| e.to_string())?;
        }
        if let Some(t) = &self.event_type
            && (t.is_empty() || t.len() > sealtrail_spec::envelope::MAX_EVENT_TYPE_LEN)
        {
            return Err("event_type must be 1 to 128 bytes".into());
        }
        if let (Some(a), Some(b)) = (self.since_ms, self.until_ms)
            && a >= b
        {
            return Err(format!("since_ms ({a}) must be before until_ms ({b})"));
        }
        Ok(())
    }

    /// Whether a record with these fields meets every condition.
    pub fn covers(&self, principal: Option<&str>, event_type: Option<&str>, time_ms: u64) -> bool {
        self.principal
            .as_deref()
            .is_none_or(|p| principal == Some(p))
            && self
                .event_type
                .as_deref()
                .is_none_or(|t| event_type == Some(t))
            && self.since_ms.is_none_or(|s| time_ms >= s)
            && self.until_ms.is_none_or(|u| time_ms < u)
    }

    /// What a log entry may say about these conditions: everything but the principal's value.
    pub fn public(&self) -> Value {
        let mut v = json!({});
        if self.principal.is_some() {
            v["principal"] = json!(true);
        }
        if let Some(t) = &self.event_type {
            v["event_type"] = json!(t);
        }
        if let Some(s) = self.since_ms {
            v["since_ms"] = json!(s);
        }
        if let Some(u) = self.until_ms {
            v["until_ms"] = json!(u);
        }
        v
    }
}

/// Checks a reason: 1 to [`MAX_REASON_LEN`] bytes, no control characters but none at all.
pub fn check_reason(reason: &str) -> Result<(), String> {
    if reason.trim().is_empty() || reason.len() > MAX_REASON_LEN {
        return Err(format!("reason must be 1 to {MAX_REASON_LEN} bytes"));
    }
    if reason.chars().any(char::is_control) {
        return Err("reason must not contain control characters".into());
    }
    Ok(())
}

/// A legal hold in force: records it covers can be neither erased nor expired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hold {
    /// The index of the entry that placed it.
    pub id: u64,
    /// What it covers.
    pub covers: Conditions,
    /// Why.
    pub reason: String,
    /// Who placed it.
    pub placed_by: String,
    /// When, ms since the Unix epoch (the entry's sequencing time).
    pub placed_at_ms: u64,
}

impl Hold {
    /// The store's encoding (JSON).
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Decodes [`encode`](Self::encode)'s output.
    pub fn decode(bytes: &[u8]) -> Result<Hold, String> {
        serde_json::from_slice(bytes).map_err(|e| format!("stored hold: {e}"))
    }

    /// The payload of the entry that places it: no principal value.
    pub fn entry_payload(&self) -> Vec<u8> {
        Self::entry_payload_for(&self.covers, &self.reason)
    }

    /// The payload of the entry that places a hold covering `covers` for `reason`.
    pub fn entry_payload_for(covers: &Conditions, reason: &str) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "hold": {
                "covers": covers.public(),
                "reason": reason,
            }
        }))
        .unwrap_or_default()
    }

    /// The JSON an admin sees (the principal's value included).
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "covers": self.covers,
            "reason": self.reason,
            "placed_by": self.placed_by,
            "placed_at_ms": self.placed_at_ms,
        })
    }
}

/// The payload of the entry that releases hold `id`.
pub fn release_payload(id: u64, reason: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({ "release": { "hold": id, "reason": reason } })).unwrap_or_default()
}

/// What an erasure entry records, besides the erased indices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErasureNote {
    /// Groups the parts of one request (random, hex).
    pub request_id: String,
    /// 1-based part number within the request.
    pub part: u32,
    /// Why.
    pub reason: String,
    /// What selected the records: [`Conditions::public`], `{"indices": true}`, or a retention
    /// rule. Never a principal's value.
    pub selector: Value,
}

impl ErasureNote {
    /// The erasure entry's payload for the erased `indices` (ascending).
    pub fn payload(&self, indices: &[u64]) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "erasure": {
                "request_id": self.request_id,
                "part": self.part,
                "reason": self.reason,
                "selector": self.selector,
                "count": indices.len(),
                "indices": ranges(indices),
            }
        }))
        .unwrap_or_default()
    }
}

/// Ascending indices as compact JSON: a lone index as a number, a run as `[first, last]`.
pub fn ranges(indices: &[u64]) -> Value {
    let mut out = Vec::new();
    let mut iter = indices.iter().copied().peekable();
    while let Some(first) = iter.next() {
        let mut last = first;
        while iter.peek() == Some(&(last + 1)) {
            last += 1;
            iter.next();
        }
        out.push(if first == last {
            json!(first)
        } else {
            json!([first, last])
        });
    }
    Value::Array(out)
}

/// The indices an erasure entry's payload names, ascending; `None` if it is not one.
pub fn erased_indices(payload: &[u8]) -> Option<Vec<u64>> {
    let v: Value = serde_json::from_slice(payload).ok()?;
    let mut out = Vec::new();
    for item in v.get("erasure")?.get("indices")?.as_array()? {
        match item {
            Value::Number(n) => out.push(n.as_u64()?),
            Value::Array(pair) => {
                let (a, b) = (pair.first()?.as_u64()?, pair.get(1)?.as_u64()?);
                if pair.len() != 2 || a > b || b - a > MAX_LISTED_INDICES as u64 {
                    return None;
                }
                out.extend(a..=b);
            }
            _ => return None,
        }
    }
    out.windows(2).all(|w| w[0] < w[1]).then_some(out)
}

/// A random request id (16 bytes, hex).
pub fn new_request_id() -> Result<String, String> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| format!("the OS random number generator failed: {e}"))?;
    Ok(sealtrail_spec::to_hex(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_compact_runs_and_read_back() {
        let idx = [1, 2, 3, 7, 9, 10];
        assert_eq!(ranges(&idx), json!([[1, 3], 7, [9, 10]]));
        let payload = ErasureNote {
            request_id: "r".into(),
            part: 1,
            reason: "why".into(),
            selector: json!({"principal": true}),
        }
        .payload(&idx);
        assert_eq!(erased_indices(&payload), Some(idx.to_vec()));
        assert_eq!(erased_indices(b"{}"), None);
        assert_eq!(
            erased_indices(br#"{"erasure":{"indices":[[5,2]]}}"#),
            None,
            "an inverted run"
        );
        assert_eq!(
            erased_indices(br#"{"erasure":{"indices":[3,3]}}"#),
            None,
            "not increasing"
        );
    }

    #[test]
    fn public_conditions_never_hold_the_principal() {
        let c = Conditions {
            principal: Some("alice@example.com".into()),
            event_type: Some("login".into()),
            since_ms: Some(5),
            until_ms: None,
        };
        let text = c.public().to_string();
        assert!(!text.contains("alice"), "{text}");
        assert_eq!(
            c.public(),
            json!({"principal": true, "event_type": "login", "since_ms": 5})
        );
        let hold = Hold {
            id: 3,
            covers: c.clone(),
            reason: "litigation".into(),
            placed_by: "token:admin".into(),
            placed_at_ms: 9,
        };
        let payload = String::from_utf8(hold.entry_payload()).unwrap();
        assert!(!payload.contains("alice"), "{payload}");
        assert_eq!(Hold::decode(&hold.encode()).unwrap(), hold);
    }

    #[test]
    fn conditions_cover_only_what_they_name() {
        let c = Conditions {
            principal: Some("a".into()),
            since_ms: Some(10),
            until_ms: Some(20),
            ..Conditions::default()
        };
        assert!(c.covers(Some("a"), None, 10));
        assert!(!c.covers(Some("a"), None, 20));
        assert!(!c.covers(Some("b"), None, 15));
        assert!(
            !c.covers(None, None, 15),
            "an erased record has no principal"
        );
        assert!(Conditions::default().covers(None, None, 0));
        assert!(c.validate().is_ok());
        let bad = Conditions {
            since_ms: Some(5),
            until_ms: Some(5),
            ..Conditions::default()
        };
        assert!(bad.validate().is_err());
    }
}
