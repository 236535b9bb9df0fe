//! The private record: what a leaf commits to and what erasure destroys. A record is a fresh
//! 32-byte salt, the submitter principal and the payload; the leaf envelope carries only
//! [`commitment`] of the three (and the payload's length), so tiles and entry bundles reveal
//! nothing of the content, and once the record (salt included) is destroyed the commitment
//! reveals nothing even of a guessable payload.
//!
//! The commitment is SHA-256 over an unambiguous, domain-separated encoding (normative text in
//! `spec/docs/leaf-envelope.md`):
//!
//! ```text
//! "sealtrail/record/v1" || 0x00 || salt (32 bytes)
//!   || principal length (u64 BE) || principal (UTF-8)
//!   || payload length (u64 BE) || payload
//! ```
//!
//! In scope: the commitment, checking a record against its leaf, and the record's storage
//! encoding (used by the stores and by export files). Out of scope: where salts come from (the
//! server draws them from the OS CSPRNG) and who may read a record (the server's access rules).

use sha2::{Digest, Sha256};

use crate::envelope::{COMMITMENT_LEN, LeafEnvelope, MAX_PRINCIPAL_LEN};

/// Domain separation prefix of the commitment (followed by one zero byte).
pub const COMMITMENT_DOMAIN: &[u8] = b"sealtrail/record/v1";
/// Length of a record's salt.
pub const SALT_LEN: usize = 32;
/// Largest payload a record may hold, in bytes (servers configure a smaller cap).
pub const MAX_PAYLOAD_LEN: usize = 1 << 20;
/// The first byte of a record's storage encoding.
const ENCODING_VERSION: u8 = 1;

/// A record: the private half of a log entry.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PrivateRecord {
    /// A fresh random salt: without it the commitment cannot be tested against a guess.
    pub salt: [u8; SALT_LEN],
    /// Who submitted the entry, as the log authenticated them, e.g. `anonymous`.
    pub principal: String,
    /// Exactly the bytes the client sent.
    pub payload: Vec<u8>,
}

impl std::fmt::Debug for PrivateRecord {
    // Never print content or salt by accident (logs, panics).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrivateRecord")
            .field("payload_len", &self.payload.len())
            .finish_non_exhaustive()
    }
}

/// The commitment to `(salt, principal, payload)`.
pub fn commitment(salt: &[u8; SALT_LEN], principal: &str, payload: &[u8]) -> [u8; COMMITMENT_LEN] {
    let mut h = Sha256::new();
    h.update(COMMITMENT_DOMAIN);
    h.update([0u8]);
    h.update(salt);
    h.update((principal.len() as u64).to_be_bytes());
    h.update(principal.as_bytes());
    h.update((payload.len() as u64).to_be_bytes());
    h.update(payload);
    h.finalize().into()
}

/// Why a record does not belong to a leaf, or could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The payload's length differs from the leaf's payload size.
    #[error("the record's payload is {got} bytes but the leaf says {want}")]
    PayloadSize {
        /// The record's payload length.
        got: u64,
        /// The leaf's payload size.
        want: u64,
    },
    /// The commitment of the record is not the leaf's.
    #[error("the record does not match the leaf's commitment")]
    Commitment,
    /// The principal breaks its rules (empty, too long, not UTF-8, control characters).
    #[error("principal {0}")]
    Principal(&'static str),
    /// The payload is larger than [`MAX_PAYLOAD_LEN`].
    #[error("payload of {0} bytes exceeds the {MAX_PAYLOAD_LEN}-byte limit")]
    PayloadTooLarge(usize),
    /// The storage encoding is malformed.
    #[error("malformed record encoding: {0}")]
    Malformed(&'static str),
}

/// Checks a principal: 1 to [`MAX_PRINCIPAL_LEN`] bytes of UTF-8 without control characters.
pub fn check_principal(principal: &str) -> Result<(), RecordError> {
    if principal.is_empty() {
        return Err(RecordError::Principal("is empty"));
    }
    if principal.len() > MAX_PRINCIPAL_LEN {
        return Err(RecordError::Principal(
            "is longer than 256 bytes (MAX_PRINCIPAL_LEN)",
        ));
    }
    if principal.chars().any(char::is_control) {
        return Err(RecordError::Principal("contains a control character"));
    }
    Ok(())
}

impl PrivateRecord {
    /// The record's commitment.
    pub fn commitment(&self) -> [u8; COMMITMENT_LEN] {
        commitment(&self.salt, &self.principal, &self.payload)
    }

    /// The leaf envelope that commits to this record, with the given public fields.
    pub fn leaf(&self, time_ms: u64, content_type: &str, event_type: Option<&str>) -> LeafEnvelope {
        LeafEnvelope {
            time_ms,
            content_type: content_type.to_owned(),
            event_type: event_type.map(str::to_owned),
            payload_size: self.payload.len() as u64,
            commitment: self.commitment(),
        }
    }

    /// Checks the field rules: a valid principal and a payload within [`MAX_PAYLOAD_LEN`].
    pub fn validate(&self) -> Result<(), RecordError> {
        check_principal(&self.principal)?;
        if self.payload.len() > MAX_PAYLOAD_LEN {
            return Err(RecordError::PayloadTooLarge(self.payload.len()));
        }
        Ok(())
    }

    /// Checks that this record is the one `leaf` commits to: same payload size, same commitment.
    pub fn check(&self, leaf: &LeafEnvelope) -> Result<(), RecordError> {
        let got = self.payload.len() as u64;
        if got != leaf.payload_size {
            return Err(RecordError::PayloadSize {
                got,
                want: leaf.payload_size,
            });
        }
        if self.commitment() != leaf.commitment {
            return Err(RecordError::Commitment);
        }
        Ok(())
    }

    /// The storage encoding: `0x01 || salt || principal length (u16 BE) || principal || payload`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(1 + SALT_LEN + 2 + self.principal.len() + self.payload.len());
        out.push(ENCODING_VERSION);
        out.extend_from_slice(&self.salt);
        let plen = u16::try_from(self.principal.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&plen.to_be_bytes());
        out.extend_from_slice(self.principal.as_bytes());
        out.extend_from_slice(&self.payload);
        out
    }

    /// Decodes [`encode`](Self::encode)'s output and checks the field rules.
    pub fn decode(bytes: &[u8]) -> Result<PrivateRecord, RecordError> {
        let (&version, rest) = bytes.split_first().ok_or(RecordError::Malformed("empty"))?;
        if version != ENCODING_VERSION {
            return Err(RecordError::Malformed("unknown encoding version"));
        }
        let (salt, rest) = rest
            .split_first_chunk::<SALT_LEN>()
            .ok_or(RecordError::Malformed("truncated salt"))?;
        let (plen, rest) = rest
            .split_first_chunk::<2>()
            .ok_or(RecordError::Malformed("truncated principal length"))?;
        let plen = usize::from(u16::from_be_bytes(*plen));
        let (principal, payload) = rest
            .split_at_checked(plen)
            .ok_or(RecordError::Malformed("truncated principal"))?;
        let principal = std::str::from_utf8(principal)
            .map_err(|_| RecordError::Principal("is not valid UTF-8"))?;
        let record = PrivateRecord {
            salt: *salt,
            principal: principal.to_owned(),
            payload: payload.to_vec(),
        };
        record.validate()?;
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> PrivateRecord {
        PrivateRecord {
            salt: [7; 32],
            principal: "alice".into(),
            payload: b"{\"a\":1}".to_vec(),
        }
    }

    #[test]
    fn encoding_round_trips_and_rejects_damage() {
        let r = record();
        let bytes = r.encode();
        assert_eq!(PrivateRecord::decode(&bytes).unwrap(), r);
        for cut in 0..1 + SALT_LEN + 2 + 5 {
            assert!(
                PrivateRecord::decode(&bytes[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        let mut bad = bytes.clone();
        bad[0] = 2;
        assert!(PrivateRecord::decode(&bad).is_err());
        let mut ctrl = bytes;
        ctrl[1 + SALT_LEN + 2] = b'\n';
        assert!(matches!(
            PrivateRecord::decode(&ctrl),
            Err(RecordError::Principal(_))
        ));
    }

    #[test]
    fn every_part_changes_the_commitment() {
        let base = record().commitment();
        let mut r = record();
        r.salt[31] ^= 1;
        assert_ne!(r.commitment(), base);
        // Moving a byte between principal and payload changes it (the lengths are bound).
        let a = commitment(&[0; 32], "ab", b"c");
        let b = commitment(&[0; 32], "a", b"bc");
        assert_ne!(a, b);
    }

    #[test]
    fn check_compares_size_then_commitment() {
        let r = record();
        let mut leaf = LeafEnvelope {
            time_ms: 1,
            content_type: "application/json".into(),
            event_type: None,
            payload_size: r.payload.len() as u64,
            commitment: r.commitment(),
        };
        assert_eq!(r.check(&leaf), Ok(()));
        leaf.commitment[0] ^= 1;
        assert_eq!(r.check(&leaf), Err(RecordError::Commitment));
        leaf.payload_size += 1;
        assert!(matches!(
            r.check(&leaf),
            Err(RecordError::PayloadSize { .. })
        ));
    }
}
