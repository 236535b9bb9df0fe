//! The private record of a sealtrail entry (salt, principal, payload; `spec/docs/leaf-envelope.md`
//! section 6): reading the log's answer to `GET /v1/entries/{i}` (or a file holding that answer,
//! or only its `record` object), and checking the record against the leaf verified in the tree.
//!
//! Nothing in the answer is trusted. The public fields it repeats (index, time, content type,
//! event type, payload size, commitment) are compared with the verified leaf, and the record must
//! match the leaf's payload size and commitment (`PrivateRecord::check`). An answer that says the
//! record is restricted or erased is reported as such: the entry's inclusion is still verified,
//! its content is not.

use base64::Engine as _;
use sealtrail_spec::Hash;
use sealtrail_spec::envelope::{COMMITMENT_LEN, LeafEnvelope};
use sealtrail_spec::record::{PrivateRecord, RecordError, SALT_LEN};
use serde_json::{Map, Value, json};

use crate::{Error, show};

/// The event type of the log's erasure entries.
pub const ERASURE_EVENT_TYPE: &str = "sealtrail.erasure";

/// Where the verifier gets an entry's private record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordFrom {
    /// From the log: `GET /v1/entries/{index}` when the log is an http(s) URL, with this bearer
    /// token. A tile directory serves no records.
    Log {
        /// Bearer token for that request only.
        token: Option<String>,
    },
    /// A JSON file's bytes: the log's answer for the entry, or only its `record` object.
    File(Vec<u8>),
    /// Not at all (`--no-record`).
    Skip,
}

/// What an answer says of the entry's content.
#[derive(Debug, Clone)]
pub(crate) enum Content {
    /// The record, to be checked.
    Record(PrivateRecord),
    /// The caller may not read it.
    Restricted,
    /// Erased by the log's erasure entry `erasure_index`.
    Erased {
        erasure_index: u64,
        /// As the answer claims it.
        time_ms: Option<u64>,
    },
}

/// The public fields an answer repeats; each one present is compared with the verified leaf.
#[derive(Debug, Clone, Default)]
pub(crate) struct Claimed {
    index: Option<u64>,
    time_ms: Option<u64>,
    content_type: Option<String>,
    /// `Some(None)`: the answer says the entry has no event type.
    event_type: Option<Option<String>>,
    payload_size: Option<u64>,
    commitment: Option<[u8; COMMITMENT_LEN]>,
}

/// A parsed answer.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub(crate) claimed: Claimed,
    pub(crate) content: Content,
}

/// Why an answer could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ParseError {
    /// Not a JSON object with a `record` (an entry answer) or a `salt` (a record): not a
    /// sealtrail v2 answer at all.
    NotAnAnswer(String),
    /// Shaped like an answer, but a member is missing or malformed.
    Malformed(String),
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParseError::NotAnAnswer(m) | ParseError::Malformed(m) => f.write_str(m),
        }
    }
}

/// Parses an entry answer (an object with a `record` member, which may be null) or a bare
/// record object (with a `salt` member).
pub(crate) fn parse(bytes: &[u8]) -> Result<Answer, ParseError> {
    let not = |m: &str| ParseError::NotAnAnswer(m.to_owned());
    let value: Value = serde_json::from_slice(bytes).map_err(|e| not(&format!("not JSON: {e}")))?;
    let obj = value.as_object().ok_or_else(|| not("not a JSON object"))?;
    if obj.contains_key("salt") && !obj.contains_key("record") {
        let record = parse_record(obj).map_err(ParseError::Malformed)?;
        return Ok(Answer {
            claimed: Claimed::default(),
            content: Content::Record(record),
        });
    }
    let record = obj
        .get("record")
        .ok_or_else(|| not("neither an entry answer (no \"record\") nor a record (no \"salt\")"))?;
    let bad = ParseError::Malformed;
    let claimed = parse_claimed(obj).map_err(bad)?;
    let erased = obj.get("erased").filter(|v| !v.is_null());
    let restricted = match obj.get("restricted") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(bad("\"restricted\" is not a boolean".into())),
    };
    let content = match (record, erased) {
        (Value::Object(r), None) => Content::Record(parse_record(r).map_err(bad)?),
        (Value::Object(_), Some(_)) => {
            return Err(bad("it holds both a record and an erasure".into()));
        }
        (Value::Null, Some(e)) => {
            let e = e
                .as_object()
                .ok_or_else(|| bad("\"erased\" is not an object".into()))?;
            Content::Erased {
                erasure_index: uint(e, "erasure_index")
                    .map_err(bad)?
                    .ok_or_else(|| bad("\"erased\" has no erasure_index".into()))?,
                time_ms: uint(e, "time_ms").map_err(bad)?,
            }
        }
        (Value::Null, None) if restricted => Content::Restricted,
        (Value::Null, None) => {
            return Err(bad(
                "\"record\" is null, but the answer says neither \"restricted\" nor \"erased\""
                    .into(),
            ));
        }
        (_, _) => return Err(bad("\"record\" is neither an object nor null".into())),
    };
    Ok(Answer { claimed, content })
}

fn parse_record(r: &Map<String, Value>) -> Result<PrivateRecord, String> {
    let text = |key: &str| {
        r.get(key)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("the record has no \"{key}\" string"))
    };
    let salt = Hash::from_hex(text("salt")?)
        .map_err(|_| format!("the record's salt is not {} hex digits", 2 * SALT_LEN))?
        .0;
    let payload = base64::engine::general_purpose::STANDARD
        .decode(text("payload_base64")?)
        .map_err(|e| format!("the record's payload_base64 is not standard base64: {e}"))?;
    Ok(PrivateRecord {
        salt,
        principal: text("principal")?.to_owned(),
        payload,
    })
}

fn uint(obj: &Map<String, Value>, key: &str) -> Result<Option<u64>, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| format!("\"{key}\" is not an unsigned integer")),
    }
}

fn parse_claimed(obj: &Map<String, Value>) -> Result<Claimed, String> {
    let text = |key: &str| match obj.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(Some(s.clone()))),
        Some(Value::Null) => Ok(Some(None)),
        Some(_) => Err(format!("\"{key}\" is not a string")),
    };
    let commitment = match obj.get("commitment") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_str()
                .and_then(|s| Hash::from_hex(s).ok())
                .ok_or("\"commitment\" is not 64 hex digits")?
                .0,
        ),
    };
    Ok(Claimed {
        index: uint(obj, "index")?,
        time_ms: uint(obj, "time_ms")?,
        content_type: text("content_type")?.flatten(),
        event_type: text("event_type")?,
        payload_size: uint(obj, "payload_size")?,
        commitment,
    })
}

impl Claimed {
    /// Compares every field present with entry `index`'s verified leaf; the error names the
    /// first difference.
    pub(crate) fn check(&self, index: u64, leaf: &LeafEnvelope) -> Result<(), String> {
        let differs = |field: &str, claimed: String, leaf: String| {
            Err(format!(
                "says {field} {claimed}, but the verified leaf has {leaf}"
            ))
        };
        let show_event = |t: &Option<String>| match t {
            Some(t) => format!("{:?}", show::escaped(t)),
            None => "none".to_owned(),
        };
        if let Some(i) = self.index.filter(|i| *i != index) {
            return Err(format!("is for entry {i}, not entry {index}"));
        }
        if let Some(t) = self.time_ms.filter(|t| *t != leaf.time_ms) {
            return differs("time_ms", t.to_string(), leaf.time_ms.to_string());
        }
        if let Some(c) = self
            .content_type
            .as_ref()
            .filter(|c| **c != leaf.content_type)
        {
            return differs(
                "content_type",
                format!("{:?}", show::escaped(c)),
                format!("{:?}", show::escaped(&leaf.content_type)),
            );
        }
        if let Some(e) = self.event_type.as_ref().filter(|e| **e != leaf.event_type) {
            return differs("event_type", show_event(e), show_event(&leaf.event_type));
        }
        if let Some(n) = self.payload_size.filter(|n| *n != leaf.payload_size) {
            return differs("payload_size", n.to_string(), leaf.payload_size.to_string());
        }
        if let Some(c) = self.commitment.filter(|c| *c != leaf.commitment) {
            return differs(
                "commitment",
                Hash(c).to_hex(),
                Hash(leaf.commitment).to_hex(),
            );
        }
        Ok(())
    }

    /// The envelope these fields describe, when the answer gives them all (an absent event type
    /// is taken as none). Used when only the leaf hash is known: the envelope is trusted only
    /// if it hashes to it.
    pub(crate) fn envelope(&self) -> Result<LeafEnvelope, String> {
        let missing = |f: &str| format!("it has no {f}");
        Ok(LeafEnvelope {
            time_ms: self.time_ms.ok_or_else(|| missing("time_ms"))?,
            content_type: self
                .content_type
                .clone()
                .ok_or_else(|| missing("content_type"))?,
            event_type: self.event_type.clone().flatten(),
            payload_size: self.payload_size.ok_or_else(|| missing("payload_size"))?,
            commitment: self.commitment.ok_or_else(|| missing("commitment"))?,
        })
    }
}

/// Checks `record` against the verified `leaf`: payload size, then commitment, then the record
/// rules (a record that matches but breaks them is one the log should never have accepted).
pub(crate) fn check(record: &PrivateRecord, leaf: &LeafEnvelope) -> Result<(), String> {
    match record.check(leaf) {
        Ok(()) => {}
        Err(RecordError::PayloadSize { got, want }) => {
            return Err(format!(
                "the payload is {got} bytes but the leaf's payload size is {want}"
            ));
        }
        Err(RecordError::Commitment) => {
            return Err(format!(
                "its commitment {} is not the leaf's commitment {}: the salt, principal or \
                 payload is not what the log committed to",
                Hash(record.commitment()).to_hex(),
                Hash(leaf.commitment).to_hex()
            ));
        }
        Err(e) => return Err(e.to_string()),
    }
    record
        .validate()
        .map_err(|e| format!("it matches the leaf but breaks the record rules: {e}"))
}

/// What became of an erasure claim.
#[derive(Debug, Clone)]
pub(crate) enum ErasureCheck {
    /// The erasure entry is in the verified tree, after the entry, with event type
    /// `sealtrail.erasure`; its sequencing time.
    Verified { time_ms: u64 },
    /// The erasure entry is past the verified checkpoint's size.
    Beyond { size: u64 },
    /// Offline: no log to read the erasure entry from.
    Offline,
}

/// The result of looking at an entry's record, for the report.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    status: &'static str,
    lines: Vec<String>,
    record: Value,
    erased: Value,
}

impl Outcome {
    /// No record was checked, for the reason given.
    pub(crate) fn unchecked(status: &'static str, why: impl Into<String>) -> Self {
        Outcome {
            status,
            lines: vec![format!("record: {}", why.into())],
            record: Value::Null,
            erased: Value::Null,
        }
    }

    /// The caller may not read the record; `via` says how the log said so.
    pub(crate) fn restricted(via: &str, hint: bool) -> Self {
        let mut o = Outcome::unchecked(
            "restricted",
            format!("not readable by this caller ({via}); content not verified"),
        );
        if hint {
            o.lines
                .push("  (give --token or set SEALTRAIL_TOKEN to read it)".into());
        }
        o
    }

    fn verified(record: &PrivateRecord, what: &str) -> Self {
        let mut lines = vec![format!(
            "record ({what}): verified, its payload size and commitment match the leaf"
        )];
        lines.extend(show::record_lines(record));
        Outcome {
            status: "verified",
            lines,
            record: show::record_json(record),
            erased: Value::Null,
        }
    }

    fn erased(erasure_index: u64, claimed_time: Option<u64>, check: &ErasureCheck) -> Self {
        let (line, time, verified) = match check {
            ErasureCheck::Verified { time_ms } => (
                format!(
                    "record: erased by entry {erasure_index}, a {ERASURE_EVENT_TYPE} entry \
                     included in this checkpoint (sequenced {})",
                    show::utc(*time_ms)
                ),
                Some(*time_ms),
                true,
            ),
            ErasureCheck::Beyond { size } => (
                format!(
                    "record: erased by entry {erasure_index}, says the log (past the verified \
                     checkpoint of size {size}: not checked)"
                ),
                claimed_time,
                false,
            ),
            ErasureCheck::Offline => (
                format!(
                    "record: erased by entry {erasure_index}, says the file (not checked offline)"
                ),
                claimed_time,
                false,
            ),
        };
        Outcome {
            status: "erased",
            lines: vec![
                line,
                "  content not verified: the record no longer exists".into(),
            ],
            record: Value::Null,
            erased: json!({
                "erasure_index": erasure_index,
                "time_ms": time,
                "erasure_entry_verified": verified,
            }),
        }
    }

    /// Adds the outcome to a report: its lines, and `record_status`, `record` and `erased` in
    /// the JSON.
    pub(crate) fn apply(self, lines: &mut Vec<String>, j: &mut Value) {
        lines.extend(self.lines);
        j["record_status"] = self.status.into();
        j["record"] = self.record;
        j["erased"] = self.erased;
    }
}

/// Judges an answer for entry `index` whose verified leaf is `leaf`. `what` names the answer's
/// origin in messages (`the log's answer`, `the --record file`); `hint` adds the token hint to a
/// restricted answer; `erasure` checks an erasure claim's entry.
pub(crate) fn judge(
    index: u64,
    leaf: &LeafEnvelope,
    answer: Answer,
    what: &str,
    hint: bool,
    erasure: &mut dyn FnMut(u64) -> Result<ErasureCheck, Error>,
) -> Result<Outcome, Error> {
    answer
        .claimed
        .check(index, leaf)
        .map_err(|e| Error::failed(format!("entry {index}: {what} {e}")))?;
    match answer.content {
        Content::Record(record) => {
            check(&record, leaf).map_err(|e| {
                Error::failed(format!(
                    "entry {index}: the record from {what} does not match the leaf: {e}"
                ))
            })?;
            Ok(Outcome::verified(&record, what))
        }
        Content::Restricted => Ok(Outcome::restricted(
            &format!("{what} says restricted"),
            hint,
        )),
        Content::Erased {
            erasure_index,
            time_ms,
        } => {
            if erasure_index <= index {
                return Err(Error::failed(format!(
                    "entry {index}: {what} says it was erased by entry {erasure_index}, which is \
                     not after it"
                )));
            }
            let check = erasure(erasure_index)?;
            Ok(Outcome::erased(erasure_index, time_ms, &check))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SALT: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    fn record_json() -> Value {
        json!({"salt": SALT, "principal": "alice", "payload_base64": "eyJvayI6dHJ1ZX0=", "payload": {"ok": true}})
    }

    #[test]
    fn parses_an_entry_answer_and_a_bare_record() {
        let entry = json!({"index": 5, "time_ms": 1, "content_type": "application/json",
            "event_type": null, "payload_size": 11, "commitment": "00".repeat(32),
            "record": record_json(), "erased": null});
        let a = parse(entry.to_string().as_bytes()).unwrap();
        let Content::Record(r) = a.content else {
            panic!("no record")
        };
        assert_eq!(r.principal, "alice");
        assert_eq!(r.payload, br#"{"ok":true}"#);
        assert_eq!(a.claimed.index, Some(5));
        assert_eq!(a.claimed.event_type, Some(None));
        let bare = parse(record_json().to_string().as_bytes()).unwrap();
        assert!(matches!(bare.content, Content::Record(_)));
        assert_eq!(bare.claimed.index, None);
    }

    #[test]
    fn restricted_erased_and_malformed_answers() {
        let restricted = json!({"index": 5, "record": null, "restricted": true, "erased": null});
        assert!(matches!(
            parse(restricted.to_string().as_bytes()).unwrap().content,
            Content::Restricted
        ));
        let erased = json!({"record": null, "erased": {"erasure_index": 17, "time_ms": 9}});
        assert!(matches!(
            parse(erased.to_string().as_bytes()).unwrap().content,
            Content::Erased {
                erasure_index: 17,
                time_ms: Some(9)
            }
        ));
        for (v, not_an_answer) in [
            (json!([1]), true),
            (json!({"index": 5, "principal": "alice"}), true),
            (json!({"record": null}), false),
            (json!({"record": 5}), false),
            (
                json!({"record": record_json(), "erased": {"erasure_index": 1}}),
                false,
            ),
            (json!({"record": null, "erased": {"time_ms": 1}}), false),
            (
                json!({"salt": "00", "principal": "a", "payload_base64": ""}),
                false,
            ),
            (
                json!({"salt": SALT, "principal": "a", "payload_base64": "%%"}),
                false,
            ),
            (json!({"salt": SALT, "payload_base64": ""}), false),
            (json!({"record": record_json(), "payload_size": "7"}), false),
        ] {
            let e = parse(v.to_string().as_bytes()).unwrap_err();
            assert_eq!(
                matches!(e, ParseError::NotAnAnswer(_)),
                not_an_answer,
                "{v}: {e}"
            );
        }
        assert!(matches!(parse(b"<html>"), Err(ParseError::NotAnAnswer(_))));
    }
}
