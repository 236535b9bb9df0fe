//! The leaf envelope: the bytes of every log entry (the RFC 6962 leaf), as defined normatively in
//! `spec/docs/leaf-envelope.md`. It is a deterministic CBOR map (RFC 8949 section 4.2.1, core
//! deterministic encoding) with small unsigned integer keys and public fields only: version 2,
//! sequencing time, content type, optional event type, payload size, and a 32-byte commitment to
//! the private record (salt, principal, payload; see [`crate::record`]).
//!
//! Version 1 carried the principal and the payload in the leaf. It was never released and this
//! code does not read it: a v1 leaf is an [`EnvelopeError::Version`] error.
//!
//! In scope: the [`LeafEnvelope`] value, its encoder, its strict decoder (anything that does not
//! re-encode to the very same bytes is rejected) and the field limits. Out of scope:
//! authentication, payload checks and the server's payload cap, which belong to the server.
//!
//! Both directions are written byte by byte against RFC 8949 rather than with a general CBOR
//! library: a general decoder accepts non-shortest heads and indefinite lengths, and the envelope
//! must not. Tests check both directions against `minicbor`.

use std::fmt;

use crate::hash::{Hash, leaf_hash};
use crate::tiles::MAX_ENTRY_SIZE;

/// The only envelope version this code writes and reads (key 0).
pub const ENVELOPE_VERSION: u64 = 2;
/// Longest submitter principal, in UTF-8 bytes (room for an e-mail address, a SPIFFE ID or an
/// OAuth subject with its issuer). The principal lives in the private record, not in the leaf.
pub const MAX_PRINCIPAL_LEN: usize = 256;
/// Longest content type, in bytes (RFC 6838 allows 127 characters each for type and subtype,
/// plus parameters).
pub const MAX_CONTENT_TYPE_LEN: usize = 256;
/// Longest event type, in UTF-8 bytes.
pub const MAX_EVENT_TYPE_LEN: usize = 128;
/// Event types that start with this prefix are the log's own (erasures, holds); clients may not
/// submit them.
pub const RESERVED_EVENT_TYPE_PREFIX: &str = "sealtrail.";
/// Length of the commitment (key 5): a SHA-256 digest.
pub const COMMITMENT_LEN: usize = 32;
/// The longest envelope with valid fields: map head 1, six keys 6, version 1, time 9, content
/// type 3 + 256, event type 2 + 128, payload size 9 and the commitment 2 + 32 (a test checks this
/// against the encoder). Every leaf therefore fits an entry bundle with room to spare.
pub const MAX_ENVELOPE_LEN: usize = 449;

const MAJOR_UNSIGNED: u8 = 0;
const MAJOR_BYTES: u8 = 2;
const MAJOR_TEXT: u8 = 3;
const MAJOR_MAP: u8 = 5;

/// One log entry, before encoding or after strict decoding. The version is implicit:
/// [`ENVELOPE_VERSION`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LeafEnvelope {
    /// Sequencing time: milliseconds since the Unix epoch, set by the log (key 1).
    pub time_ms: u64,
    /// The payload's content type as the client sent it, e.g. `application/json` (key 2).
    pub content_type: String,
    /// The client's event type, if any (key 3, absent when `None`; never null, never empty).
    /// Public: it must never hold personal data.
    pub event_type: Option<String>,
    /// Length of the payload in bytes (key 4).
    pub payload_size: u64,
    /// The commitment to the private record (key 5): see [`crate::record::commitment`].
    pub commitment: [u8; COMMITMENT_LEN],
}

/// The envelope's map keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// Key 0, unsigned integer.
    Version,
    /// Key 1, unsigned integer.
    Time,
    /// Key 2, text string.
    ContentType,
    /// Key 3, text string, optional.
    EventType,
    /// Key 4, unsigned integer.
    PayloadSize,
    /// Key 5, byte string of 32 bytes.
    Commitment,
}

impl Field {
    /// Every field, in key order.
    pub const ALL: [Field; 6] = [
        Field::Version,
        Field::Time,
        Field::ContentType,
        Field::EventType,
        Field::PayloadSize,
        Field::Commitment,
    ];

    /// The field's map key.
    pub const fn key(self) -> u64 {
        match self {
            Field::Version => 0,
            Field::Time => 1,
            Field::ContentType => 2,
            Field::EventType => 3,
            Field::PayloadSize => 4,
            Field::Commitment => 5,
        }
    }

    /// The field a map key names, if any.
    pub fn from_key(key: u64) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.key() == key)
    }

    /// Name and key, for messages: `event type (key 3)`.
    pub const fn label(self) -> &'static str {
        match self {
            Field::Version => "version (key 0)",
            Field::Time => "time (key 1)",
            Field::ContentType => "content type (key 2)",
            Field::EventType => "event type (key 3)",
            Field::PayloadSize => "payload size (key 4)",
            Field::Commitment => "commitment (key 5)",
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// Why an envelope could not be encoded or was rejected by the decoder. Offsets count bytes from
/// the start of the entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// The input is longer than an entry bundle can hold.
    #[error("envelope of {0} bytes exceeds the {MAX_ENTRY_SIZE}-byte entry limit")]
    TooLarge(usize),
    /// A text field is longer than its limit.
    #[error("{field} is {len} bytes, more than its {max}-byte limit")]
    TextTooLong {
        /// The field.
        field: Field,
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A text field is empty (an absent event type is spelled by omitting key 3).
    #[error("{0} is empty")]
    EmptyText(Field),
    /// A text field holds a character its rules forbid (a control character, or non-ASCII in the
    /// content type).
    #[error("{field} contains the forbidden character {ch:?}")]
    ForbiddenChar {
        /// The field.
        field: Field,
        /// The first forbidden character.
        ch: char,
    },
    /// A text field is not valid UTF-8.
    #[error("{0} is not valid UTF-8")]
    Utf8(Field),
    /// The commitment is not 32 bytes long.
    #[error("commitment (key 5) is {0} bytes, not {COMMITMENT_LEN}")]
    CommitmentLength(usize),
    /// The input ends inside a CBOR item.
    #[error("CBOR item at byte {offset} is truncated")]
    Truncated {
        /// Where the item starts.
        offset: usize,
    },
    /// An integer or length head is not in its shortest form (RFC 8949 section 4.2.1).
    #[error("CBOR head at byte {offset} is not in shortest form")]
    NotShortest {
        /// Where the head starts.
        offset: usize,
    },
    /// An indefinite-length string or map (only definite lengths are allowed).
    #[error("indefinite-length item at byte {offset}")]
    Indefinite {
        /// Where the item starts.
        offset: usize,
    },
    /// A head whose additional information is reserved (28 to 30), or 31 on an integer: not
    /// well-formed CBOR.
    #[error("invalid additional information {info} at byte {offset}")]
    Reserved {
        /// Where the head starts.
        offset: usize,
        /// The additional information.
        info: u8,
    },
    /// A CBOR tag (major type 6); the envelope has none.
    #[error("tag at byte {offset}: tags are not allowed")]
    Tag {
        /// Where the tag starts.
        offset: usize,
    },
    /// An item of the wrong CBOR type.
    #[error("{item} at byte {offset} must be {expected}, found {found}")]
    WrongType {
        /// What was being read: `envelope`, `map key` or a field label.
        item: &'static str,
        /// Where the item starts.
        offset: usize,
        /// The type required.
        expected: &'static str,
        /// The type found.
        found: &'static str,
    },
    /// A map key the envelope does not define.
    #[error("unknown map key {key} at byte {offset}")]
    UnknownKey {
        /// The key.
        key: u64,
        /// Where the key starts.
        offset: usize,
    },
    /// A map key given twice.
    #[error("duplicate map key {key} at byte {offset}")]
    DuplicateKey {
        /// The key.
        key: u64,
        /// Where the second occurrence starts.
        offset: usize,
    },
    /// Map keys not in ascending order.
    #[error("map key {key} at byte {offset} follows key {prev}: keys must ascend")]
    KeyOrder {
        /// The key out of order.
        key: u64,
        /// The key before it.
        prev: u64,
        /// Where the key starts.
        offset: usize,
    },
    /// A required key is absent.
    #[error("required {0} is missing")]
    MissingKey(Field),
    /// A version this code does not read (version 1 was never released and is not read).
    #[error("unsupported envelope version {0}, expected {ENVELOPE_VERSION}")]
    Version(u64),
    /// Bytes after the envelope's map.
    #[error("{0} trailing bytes after the envelope")]
    TrailingBytes(usize),
    /// The input decoded but does not re-encode to itself. The other checks should make this
    /// unreachable; it is the decoder's last guard.
    #[error("envelope does not re-encode to the same bytes")]
    NotCanonical,
}

impl EnvelopeError {
    /// A short static category, for metrics labels and log fields.
    pub fn kind(&self) -> &'static str {
        use EnvelopeError::*;
        match self {
            TooLarge(_) => "too_large",
            TextTooLong { .. }
            | EmptyText(_)
            | ForbiddenChar { .. }
            | Utf8(_)
            | CommitmentLength(_) => "invalid_field",
            Version(_) => "unsupported_version",
            NotShortest { .. }
            | Indefinite { .. }
            | KeyOrder { .. }
            | DuplicateKey { .. }
            | NotCanonical => "non_canonical",
            Truncated { .. }
            | Reserved { .. }
            | Tag { .. }
            | WrongType { .. }
            | UnknownKey { .. }
            | MissingKey(_)
            | TrailingBytes(_) => "malformed",
        }
    }
}

impl LeafEnvelope {
    /// Checks every field rule, without encoding.
    pub fn validate(&self) -> Result<(), EnvelopeError> {
        check_text(
            Field::ContentType,
            &self.content_type,
            MAX_CONTENT_TYPE_LEN,
            |c| c == ' ' || c.is_ascii_graphic(),
        )?;
        if let Some(event_type) = &self.event_type {
            check_text(Field::EventType, event_type, MAX_EVENT_TYPE_LEN, |c| {
                !c.is_control()
            })?;
        }
        Ok(())
    }

    /// Whether the event type is one of the log's own (`sealtrail.` prefix).
    pub fn is_reserved(&self) -> bool {
        self.event_type
            .as_deref()
            .is_some_and(|t| t.starts_with(RESERVED_EVENT_TYPE_PREFIX))
    }

    /// The exact length of [`encode`](Self::encode)'s output, computed without encoding.
    /// Saturates instead of overflowing.
    pub fn encoded_len(&self) -> usize {
        let keys = if self.event_type.is_some() { 6 } else { 5 };
        let texts = std::iter::once(&self.content_type)
            .chain(&self.event_type)
            .map(|s| string_len(s.len()))
            .fold(0usize, usize::saturating_add);
        (1 + keys
            + head_len(ENVELOPE_VERSION)
            + head_len(self.time_ms)
            + head_len(self.payload_size)
            + string_len(COMMITMENT_LEN))
        .saturating_add(texts)
    }

    /// The canonical encoding: the bytes of the log entry.
    pub fn encode(&self) -> Result<Vec<u8>, EnvelopeError> {
        self.validate()?;
        Ok(self.write())
    }

    /// Writes the encoding of a validated envelope.
    fn write(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        let pairs = if self.event_type.is_some() { 6 } else { 5 };
        write_head(&mut out, MAJOR_MAP, pairs);
        write_key(&mut out, Field::Version);
        write_head(&mut out, MAJOR_UNSIGNED, ENVELOPE_VERSION);
        write_key(&mut out, Field::Time);
        write_head(&mut out, MAJOR_UNSIGNED, self.time_ms);
        write_key(&mut out, Field::ContentType);
        write_string(&mut out, MAJOR_TEXT, self.content_type.as_bytes());
        if let Some(event_type) = &self.event_type {
            write_key(&mut out, Field::EventType);
            write_string(&mut out, MAJOR_TEXT, event_type.as_bytes());
        }
        write_key(&mut out, Field::PayloadSize);
        write_head(&mut out, MAJOR_UNSIGNED, self.payload_size);
        write_key(&mut out, Field::Commitment);
        write_string(&mut out, MAJOR_BYTES, &self.commitment);
        out
    }

    /// The RFC 6962 leaf hash of the encoding. Code that stores entries should hash the bytes it
    /// stores; this is the same value for an envelope it has just built.
    pub fn leaf_hash(&self) -> Result<Hash, EnvelopeError> {
        Ok(leaf_hash(&self.encode()?))
    }

    /// Strictly decodes an entry. Accepts only the canonical encoding: definite lengths,
    /// shortest-form heads, keys 0 to 5 ascending without duplicates, version
    /// [`ENVELOPE_VERSION`], valid fields, a 32-byte commitment, no tags, floats or simple
    /// values, no trailing bytes. As a last guard the result is re-encoded and must equal `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<LeafEnvelope, EnvelopeError> {
        if bytes.len() > MAX_ENTRY_SIZE {
            return Err(EnvelopeError::TooLarge(bytes.len()));
        }
        let mut r = Reader { buf: bytes, pos: 0 };
        let pairs = r.head("envelope", MAJOR_MAP)?;
        let mut seen = Seen::default();
        let mut prev: Option<u64> = None;
        for _ in 0..pairs {
            let offset = r.pos;
            let key = r.head("map key", MAJOR_UNSIGNED)?;
            let field = Field::from_key(key).ok_or(EnvelopeError::UnknownKey { key, offset })?;
            match prev {
                Some(p) if p == key => return Err(EnvelopeError::DuplicateKey { key, offset }),
                Some(p) if p > key => {
                    return Err(EnvelopeError::KeyOrder {
                        key,
                        prev: p,
                        offset,
                    });
                }
                _ => prev = Some(key),
            }
            seen.read_value(&mut r, field)?;
        }
        if r.pos != bytes.len() {
            return Err(EnvelopeError::TrailingBytes(bytes.len() - r.pos));
        }
        let envelope = seen.finish()?;
        if envelope.write() != bytes {
            return Err(EnvelopeError::NotCanonical);
        }
        Ok(envelope)
    }
}

fn check_text(
    field: Field,
    text: &str,
    max: usize,
    allowed: impl Fn(char) -> bool,
) -> Result<(), EnvelopeError> {
    if text.is_empty() {
        return Err(EnvelopeError::EmptyText(field));
    }
    if text.len() > max {
        return Err(EnvelopeError::TextTooLong {
            field,
            len: text.len(),
            max,
        });
    }
    match text.chars().find(|c| !allowed(*c)) {
        Some(ch) => Err(EnvelopeError::ForbiddenChar { field, ch }),
        None => Ok(()),
    }
}

/// Fields read so far by the decoder.
#[derive(Default)]
struct Seen {
    version: bool,
    time_ms: Option<u64>,
    content_type: Option<String>,
    event_type: Option<String>,
    payload_size: Option<u64>,
    commitment: Option<[u8; COMMITMENT_LEN]>,
}

impl Seen {
    fn read_value(&mut self, r: &mut Reader<'_>, field: Field) -> Result<(), EnvelopeError> {
        match field {
            Field::Version => {
                // Checked at once: another version may define other keys.
                let version = r.head(field.label(), MAJOR_UNSIGNED)?;
                if version != ENVELOPE_VERSION {
                    return Err(EnvelopeError::Version(version));
                }
                self.version = true;
            }
            Field::Time => self.time_ms = Some(r.head(field.label(), MAJOR_UNSIGNED)?),
            Field::ContentType => self.content_type = Some(r.text(field)?),
            Field::EventType => self.event_type = Some(r.text(field)?),
            Field::PayloadSize => self.payload_size = Some(r.head(field.label(), MAJOR_UNSIGNED)?),
            Field::Commitment => {
                let bytes = r.string(field.label(), MAJOR_BYTES)?;
                let c = <[u8; COMMITMENT_LEN]>::try_from(bytes)
                    .map_err(|_| EnvelopeError::CommitmentLength(bytes.len()))?;
                self.commitment = Some(c);
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<LeafEnvelope, EnvelopeError> {
        let missing = EnvelopeError::MissingKey;
        if !self.version {
            return Err(missing(Field::Version));
        }
        let envelope = LeafEnvelope {
            time_ms: self.time_ms.ok_or(missing(Field::Time))?,
            content_type: self.content_type.ok_or(missing(Field::ContentType))?,
            event_type: self.event_type,
            payload_size: self.payload_size.ok_or(missing(Field::PayloadSize))?,
            commitment: self.commitment.ok_or(missing(Field::Commitment))?,
        };
        envelope.validate()?;
        Ok(envelope)
    }
}

/// A cursor over the input that reads CBOR heads strictly.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, offset: usize) -> Result<&'a [u8], EnvelopeError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.buf.len())
            .ok_or(EnvelopeError::Truncated { offset })?;
        let s = self.buf.get(self.pos..end).unwrap_or_default();
        self.pos = end;
        Ok(s)
    }

    fn be(&mut self, n: usize, offset: usize) -> Result<u64, EnvelopeError> {
        let bytes = self.take(n, offset)?;
        Ok(bytes.iter().fold(0, |acc, b| (acc << 8) | u64::from(*b)))
    }

    /// Reads a head of major type `major` and returns its argument, insisting on the shortest
    /// form: an argument below 24 lives in the initial byte, and each longer form must hold a
    /// value too large for the form before it.
    fn head(&mut self, item: &'static str, major: u8) -> Result<u64, EnvelopeError> {
        let offset = self.pos;
        let initial = self.be(1, offset)?;
        let (got, info) = ((initial >> 5) as u8, (initial & 0x1f) as u8);
        if got == 6 {
            return Err(EnvelopeError::Tag { offset });
        }
        if got != major {
            return Err(EnvelopeError::WrongType {
                item,
                offset,
                expected: type_name(major),
                found: found_name(got, info),
            });
        }
        let (arg, min) = match info {
            0..=23 => (u64::from(info), 0),
            24 => (self.be(1, offset)?, 24),
            25 => (self.be(2, offset)?, 0x100),
            26 => (self.be(4, offset)?, 0x1_0000),
            27 => (self.be(8, offset)?, 0x1_0000_0000),
            31 if major != MAJOR_UNSIGNED => return Err(EnvelopeError::Indefinite { offset }),
            _ => return Err(EnvelopeError::Reserved { offset, info }),
        };
        if arg < min {
            return Err(EnvelopeError::NotShortest { offset });
        }
        Ok(arg)
    }

    /// A definite-length byte or text string's content.
    fn string(&mut self, item: &'static str, major: u8) -> Result<&'a [u8], EnvelopeError> {
        let offset = self.pos;
        let len = self.head(item, major)?;
        let len = usize::try_from(len).map_err(|_| EnvelopeError::Truncated { offset })?;
        self.take(len, offset)
    }

    fn text(&mut self, field: Field) -> Result<String, EnvelopeError> {
        let bytes = self.string(field.label(), MAJOR_TEXT)?;
        let text = std::str::from_utf8(bytes).map_err(|_| EnvelopeError::Utf8(field))?;
        Ok(text.to_owned())
    }
}

fn type_name(major: u8) -> &'static str {
    match major {
        0 => "an unsigned integer",
        1 => "a negative integer",
        2 => "a byte string",
        3 => "a text string",
        4 => "an array",
        5 => "a map",
        6 => "a tag",
        _ => "a simple value or float",
    }
}

fn found_name(major: u8, info: u8) -> &'static str {
    match (major, info) {
        (7, 20 | 21) => "a boolean",
        (7, 22) => "null",
        (7, 23) => "undefined",
        (7, 25..=27) => "a float",
        (7, 31) => "a break stop code",
        _ => type_name(major),
    }
}

/// Bytes of a head carrying argument `n` in shortest form.
fn head_len(n: u64) -> usize {
    match n {
        0..=23 => 1,
        24..=0xff => 2,
        0x100..=0xffff => 3,
        0x1_0000..=0xffff_ffff => 5,
        _ => 9,
    }
}

/// Bytes of a string of `len` bytes with its head.
fn string_len(len: usize) -> usize {
    head_len(u64::try_from(len).unwrap_or(u64::MAX)).saturating_add(len)
}

/// Writes a head in shortest form (RFC 8949 sections 3 and 4.2.1).
fn write_head(out: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    if let Ok(b) = u8::try_from(n) {
        if b < 24 {
            out.push(m | b);
        } else {
            out.extend([m | 24, b]);
        }
    } else if let Ok(v) = u16::try_from(n) {
        out.push(m | 25);
        out.extend(v.to_be_bytes());
    } else if let Ok(v) = u32::try_from(n) {
        out.push(m | 26);
        out.extend(v.to_be_bytes());
    } else {
        out.push(m | 27);
        out.extend(n.to_be_bytes());
    }
}

fn write_key(out: &mut Vec<u8>, field: Field) {
    write_head(out, MAJOR_UNSIGNED, field.key());
}

fn write_string(out: &mut Vec<u8>, major: u8, bytes: &[u8]) {
    write_head(out, major, u64::try_from(bytes.len()).unwrap_or(u64::MAX));
    out.extend_from_slice(bytes);
}
