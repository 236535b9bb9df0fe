//! C2SP signed-note (<https://c2sp.org/signed-note>), compatible with Go's
//! `golang.org/x/mod/sumdb/note`: parsing and writing notes, key names and key IDs, the
//! [`Signer`] and [`Verifier`] traits, note verification, and the vkey/skey text forms.
//!
//! In scope: the note wire format, byte for byte, and the signature-line rules shared by every
//! signature type. Ed25519 (type `0x01`) keys live in [`ed25519`] and are re-exported here.
//! Out of scope: what the text means (see [`crate::checkpoint`]) and timestamped cosignatures (see
//! [`crate::cosignature`]).
//!
//! Parsing is canonical: whenever [`Note::parse`] accepts some bytes, [`Note::to_bytes`] gives the
//! same bytes back. Every [`Note`] value holds valid text, 1 to [`MAX_SIGNATURES`] signatures and
//! encodes to at most [`MAX_NOTE_SIZE`] bytes, so whatever we write parses again.

use std::fmt;

use crate::hash::sha256;
use crate::text::{decode_base64, encode_base64};

pub mod ed25519;
mod keys;

pub use ed25519::{Ed25519Signer, Ed25519Verifier};
pub use keys::{KeyError, VerifierKey};
pub(crate) use keys::{format_key_text, format_skey, parse_skey};

/// Largest note we parse or build, in bytes. <https://c2sp.org/signed-note#format> asks
/// verifiers to cap the size but accept at least 16 signatures, and post-quantum signatures
/// approach 5 KB each (an ML-DSA-44 cosignature line is about 3.3 KB), so 1 MiB leaves room for
/// far more than 16.
pub const MAX_NOTE_SIZE: usize = 1 << 20;

/// Most signature lines a note may carry, counting unknown ones. Go's `note.Open` rejects more
/// than 100; <https://c2sp.org/signed-note#format> requires accepting at least 16.
pub const MAX_SIGNATURES: usize = 100;

/// Signature type byte for Ed25519 note signatures
/// (<https://c2sp.org/signed-note#signature-types>).
pub const SIG_TYPE_ED25519: u8 = 0x01;

/// Every signature line starts with an em dash (U+2014) and a space.
const SIG_PREFIX: &str = "\u{2014} ";

/// Bytes in a key ID.
const KEY_ID_SIZE: usize = 4;

/// Why a note could not be parsed, built, signed or verified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// The input is larger than [`MAX_NOTE_SIZE`].
    #[error("note is {0} bytes, more than the {MAX_NOTE_SIZE}-byte limit")]
    TooLarge(usize),
    /// The input is not UTF-8.
    #[error("note is not valid UTF-8")]
    Utf8,
    /// The input holds an ASCII control character other than LF (tab, CR, NUL, ...).
    #[error("note contains control character {0:#04x}")]
    ControlCharacter(u8),
    /// The note text is empty or does not end in LF.
    #[error("note text is empty or does not end in a newline")]
    Text,
    /// There is no empty line separating text from signatures.
    #[error("note has no empty line before its signatures")]
    NoSignatureBlock,
    /// The signature block is empty.
    #[error("note has no signature lines")]
    NoSignatures,
    /// A signature line is malformed; `line` counts signature lines from 1.
    #[error("malformed signature line {line}: {reason}")]
    SignatureLine {
        /// Which signature line (1-based).
        line: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A signature with no bytes after the key ID.
    #[error("signature has no bytes after the key ID")]
    EmptySignature,
    /// More than [`MAX_SIGNATURES`] signature lines.
    #[error("note has more than {MAX_SIGNATURES} signature lines")]
    TooManySignatures,
    /// A key name is empty or contains whitespace, `+` or a control character.
    #[error("invalid key name {0:?}")]
    KeyName(String),
    /// A signature from a known key did not verify.
    #[error("invalid signature for key {name}+{key_id:08x}")]
    InvalidSignature {
        /// Key name of the failing signature.
        name: String,
        /// Key ID of the failing signature.
        key_id: u32,
    },
    /// Two verifiers share a key name and key ID, so a signature cannot be attributed.
    #[error("ambiguous key {name}+{key_id:08x}")]
    AmbiguousKey {
        /// The shared key name.
        name: String,
        /// The shared key ID.
        key_id: u32,
    },
    /// No signature from a known key was found.
    #[error("note has no verifiable signatures")]
    Unverified,
}

impl NoteError {
    /// A short static label for metrics: `"malformed"`, `"invalid_signature"`, `"ambiguous_key"`
    /// or `"unverified"`.
    pub fn category(&self) -> &'static str {
        match self {
            NoteError::InvalidSignature { .. } => "invalid_signature",
            NoteError::AmbiguousKey { .. } => "ambiguous_key",
            NoteError::Unverified => "unverified",
            _ => "malformed",
        }
    }
}

/// A key that can verify note signatures.
///
/// Promise: `name` and `key_id` are constant for the value's lifetime, and `verify` is a pure
/// function of its inputs (no I/O, no clock) that returns `false` for anything malformed.
pub trait Verifier {
    /// The key name, which must be a valid key name.
    fn name(&self) -> &str;
    /// The key ID, as written in signatures.
    fn key_id(&self) -> u32;
    /// Whether `sig` (the signature bytes after the 4-byte key ID) is valid over `msg` (the note
    /// text, including its final newline).
    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool;
}

/// A key that can sign notes.
///
/// Promise: `name` and `key_id` are constant for the value's lifetime, and `sign` cannot fail.
/// Signers used here read no clock; a timestamp, if the type needs one, is fixed at construction.
pub trait Signer {
    /// The key name. [`Note::sign`] rejects invalid names.
    fn name(&self) -> &str;
    /// The key ID, written before the signature bytes.
    fn key_id(&self) -> u32;
    /// The signature bytes (without the key ID) over `msg`, the note text.
    fn sign(&self, msg: &[u8]) -> Vec<u8>;
}

/// Whether `name` is a valid key name: non-empty, no `+`, no whitespace (Rust's
/// `char::is_whitespace` is the Unicode `White_Space` set, the same as Go's `unicode.IsSpace`),
/// and, since a note may not carry them, no ASCII control characters.
pub fn is_valid_key_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c == '+' || c.is_whitespace() || c.is_ascii_control())
}

/// The signed-note key ID: the first four bytes, big-endian, of
/// `SHA-256(name || 0x0A || type_and_key)`, where `type_and_key` is the signature type byte
/// followed by the public key (signed-note "Signatures").
pub fn key_id(name: &str, type_and_key: &[u8]) -> u32 {
    let mut buf = Vec::with_capacity(name.len() + 1 + type_and_key.len());
    buf.extend_from_slice(name.as_bytes());
    buf.push(b'\n');
    buf.extend_from_slice(type_and_key);
    let h = sha256(&buf);
    u32::from_be_bytes([h[0], h[1], h[2], h[3]])
}

/// One signature line of a note: `— <name> base64(key ID || signature)`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct NoteSignature {
    name: String,
    key_id: u32,
    signature: Vec<u8>,
}

impl NoteSignature {
    /// Builds a signature; the name must be valid and the signature bytes non-empty.
    pub fn new(name: &str, key_id: u32, signature: Vec<u8>) -> Result<Self, NoteError> {
        if !is_valid_key_name(name) {
            return Err(NoteError::KeyName(name.to_owned()));
        }
        if signature.is_empty() {
            return Err(NoteError::EmptySignature);
        }
        Ok(Self {
            name: name.to_owned(),
            key_id,
            signature,
        })
    }

    /// Parses one signature line, including its final LF. Canonical: if this succeeds,
    /// [`NoteSignature::to_line`] returns exactly `line`.
    pub fn parse_line(line: &str) -> Result<Self, NoteError> {
        Self::parse_numbered(line, 1)
    }

    fn parse_numbered(line: &str, n: usize) -> Result<Self, NoteError> {
        let err = |reason| NoteError::SignatureLine { line: n, reason };
        if line.len() > MAX_NOTE_SIZE {
            return Err(NoteError::TooLarge(line.len()));
        }
        check_control(line)?;
        let body = line
            .strip_suffix('\n')
            .ok_or(err("missing final newline"))?;
        if body.contains('\n') {
            return Err(err("more than one line"));
        }
        let rest = body
            .strip_prefix(SIG_PREFIX)
            .ok_or(err("does not start with an em dash and a space"))?;
        let (name, b64) = rest
            .split_once(' ')
            .ok_or(err("no space between key name and signature"))?;
        if !is_valid_key_name(name) {
            return Err(NoteError::KeyName(name.to_owned()));
        }
        let blob = decode_base64(b64).ok_or(err("signature is not canonical base64"))?;
        if blob.len() <= KEY_ID_SIZE {
            return Err(err("signature shorter than 5 bytes"));
        }
        let (id, sig) = blob.split_at(KEY_ID_SIZE);
        Ok(Self {
            name: name.to_owned(),
            key_id: u32::from_be_bytes([id[0], id[1], id[2], id[3]]),
            signature: sig.to_vec(),
        })
    }

    /// The line as it appears in a note, ending in LF.
    pub fn to_line(&self) -> String {
        let mut blob = Vec::with_capacity(KEY_ID_SIZE + self.signature.len());
        blob.extend_from_slice(&self.key_id.to_be_bytes());
        blob.extend_from_slice(&self.signature);
        format!("{SIG_PREFIX}{} {}\n", self.name, encode_base64(&blob))
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key ID.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The signature bytes after the key ID.
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }
}

impl fmt::Debug for NoteSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "NoteSignature({}+{:08x}, {} bytes)",
            self.name,
            self.key_id,
            self.signature.len()
        )
    }
}

/// A signed note: text and one or more signature lines, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    text: String,
    signatures: Vec<NoteSignature>,
}

impl Note {
    /// Assembles a note from text and signatures without checking the signatures. The text must
    /// be valid note text, and the result must respect [`MAX_SIGNATURES`] and [`MAX_NOTE_SIZE`].
    pub fn new(text: &str, signatures: Vec<NoteSignature>) -> Result<Self, NoteError> {
        check_text(text)?;
        let note = Self {
            text: text.to_owned(),
            signatures,
        };
        note.check_limits()?;
        Ok(note)
    }

    /// Parses a signed note strictly (signed-note "Format"): size cap, UTF-8, no control
    /// characters but LF, split at the last empty line, text ending in LF, every later line a
    /// signature line with a valid key name and canonical base64 of at least 5 bytes, and at most
    /// [`MAX_SIGNATURES`] lines. Duplicate lines are kept. Canonical: when this succeeds,
    /// [`Note::to_bytes`] returns `bytes` exactly.
    pub fn parse(bytes: &[u8]) -> Result<Self, NoteError> {
        if bytes.len() > MAX_NOTE_SIZE {
            return Err(NoteError::TooLarge(bytes.len()));
        }
        let msg = std::str::from_utf8(bytes).map_err(|_| NoteError::Utf8)?;
        check_control(msg)?;
        let split = msg.rfind("\n\n").ok_or(NoteError::NoSignatureBlock)?;
        let (text, sigs) = (&msg[..=split], &msg[split + 2..]);
        if sigs.is_empty() {
            return Err(NoteError::NoSignatures);
        }
        let mut signatures = Vec::new();
        for (i, line) in sigs.split_inclusive('\n').enumerate() {
            if i >= MAX_SIGNATURES {
                return Err(NoteError::TooManySignatures);
            }
            signatures.push(NoteSignature::parse_numbered(line, i + 1)?);
        }
        Ok(Self {
            text: text.to_owned(),
            signatures,
        })
    }

    /// The note's wire form: text, an empty line, then the signature lines.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        out.extend_from_slice(self.text.as_bytes());
        out.push(b'\n');
        for s in &self.signatures {
            out.extend_from_slice(s.to_line().as_bytes());
        }
        out
    }

    /// The signed text, including its final newline.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The signature lines, in order.
    pub fn signatures(&self) -> &[NoteSignature] {
        &self.signatures
    }

    /// Signs `text` with every signer, in order (Go's `note.Sign` with a fresh note).
    pub fn sign(text: &str, signers: &[&dyn Signer]) -> Result<Self, NoteError> {
        check_text(text)?;
        let mut note = Self {
            text: text.to_owned(),
            signatures: Vec::new(),
        };
        note.add_signatures(signers)?;
        Ok(note)
    }

    /// Adds signatures from `signers`, as Go's `note.Sign` does: an existing signature with the
    /// same key name and ID as one of the signers is dropped, the rest keep their order, and the
    /// new signatures follow in the signers' order. On error the note is unchanged.
    pub fn add_signatures(&mut self, signers: &[&dyn Signer]) -> Result<(), NoteError> {
        let mut fresh = Vec::with_capacity(signers.len());
        for s in signers {
            fresh.push(NoteSignature::new(
                s.name(),
                s.key_id(),
                s.sign(self.text.as_bytes()),
            )?);
        }
        let mut signatures: Vec<NoteSignature> = self
            .signatures
            .iter()
            .filter(|old| !fresh.iter().any(|f| same_key(old, f)))
            .cloned()
            .collect();
        signatures.extend(fresh);
        let note = Self {
            text: self.text.clone(),
            signatures,
        };
        note.check_limits()?;
        *self = note;
        Ok(())
    }

    /// Appends one signature line as it is (for example a cosignature a witness returned),
    /// keeping the limits. Nothing is verified.
    pub fn push_signature(&mut self, signature: NoteSignature) -> Result<(), NoteError> {
        self.signatures.push(signature);
        let checked = self.check_limits();
        if checked.is_err() {
            self.signatures.pop();
        }
        checked
    }

    fn encoded_len(&self) -> usize {
        let sigs: usize = self.signatures.iter().map(|s| s.to_line().len()).sum();
        self.text.len() + 1 + sigs
    }

    fn check_limits(&self) -> Result<(), NoteError> {
        if self.signatures.is_empty() {
            return Err(NoteError::NoSignatures);
        }
        if self.signatures.len() > MAX_SIGNATURES {
            return Err(NoteError::TooManySignatures);
        }
        let len = self.encoded_len();
        if len > MAX_NOTE_SIZE {
            return Err(NoteError::TooLarge(len));
        }
        Ok(())
    }
}

fn same_key(a: &NoteSignature, b: &NoteSignature) -> bool {
    a.name == b.name && a.key_id == b.key_id
}

/// Checks the signatures of `note` against `verifiers` (signed-note "Signatures") and returns
/// the indices into `verifiers`, ascending and without repeats, of those that verified at least
/// one signature.
///
/// - A signature whose (name, key ID) matches no verifier is ignored, even if it shares the name
///   or the ID with one.
/// - Every signature whose (name, key ID) matches a verifier is verified, including repeated lines
///   for the same key. Any failure rejects the note with [`NoteError::InvalidSignature`]. This is
///   stricter than Go's `note.Open`, which verifies only the first line per key and skips later
///   ones; the spec says known-key signatures MUST be verified.
/// - Two verifiers with the same (name, key ID) are a configuration error,
///   [`NoteError::AmbiguousKey`], reported up front even if no signature uses that key (Go
///   reports it only when a signature does).
/// - If nothing verified, [`NoteError::Unverified`].
pub fn verify(note: &Note, verifiers: &[&dyn Verifier]) -> Result<Vec<usize>, NoteError> {
    for (i, a) in verifiers.iter().enumerate() {
        if verifiers[..i]
            .iter()
            .any(|b| a.name() == b.name() && a.key_id() == b.key_id())
        {
            return Err(NoteError::AmbiguousKey {
                name: a.name().to_owned(),
                key_id: a.key_id(),
            });
        }
    }
    let mut verified = Vec::new();
    for sig in note.signatures() {
        let Some(i) = verifiers
            .iter()
            .position(|v| v.name() == sig.name && v.key_id() == sig.key_id)
        else {
            continue;
        };
        if !verifiers[i].verify(note.text.as_bytes(), &sig.signature) {
            return Err(NoteError::InvalidSignature {
                name: sig.name.clone(),
                key_id: sig.key_id,
            });
        }
        verified.push(i);
    }
    if verified.is_empty() {
        return Err(NoteError::Unverified);
    }
    verified.sort_unstable();
    verified.dedup();
    Ok(verified)
}

/// Rejects ASCII control characters other than LF.
fn check_control(s: &str) -> Result<(), NoteError> {
    match s.bytes().find(|&b| b < 0x20 && b != b'\n') {
        Some(b) => Err(NoteError::ControlCharacter(b)),
        None => Ok(()),
    }
}

/// Valid note text: non-empty, ends in LF, no control characters but LF, within the size cap.
///
/// Text that itself ends in empty lines (`"a\n\n"`) is valid and safe: signature lines never
/// contain an empty line, so the last empty line of the note is always the separator right after
/// the text, and the text round-trips.
pub(crate) fn check_text(text: &str) -> Result<(), NoteError> {
    if text.len() > MAX_NOTE_SIZE {
        return Err(NoteError::TooLarge(text.len()));
    }
    check_control(text)?;
    if !text.ends_with('\n') {
        return Err(NoteError::Text);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
