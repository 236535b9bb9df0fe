//! RFC 6962 section 2.1 hashing: SHA-256 with domain separation between leaves (`0x00`) and
//! interior nodes (`0x01`).
//!
//! In scope: the [`Hash`](struct@Hash) value type, leaf and node hashing, the empty-tree root, and the text
//! encodings (hex, standard padded base64) other modules use. Out of scope: tree shapes (see
//! [`crate::merkle`]).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use sha2::{Digest, Sha256};

/// Length in bytes of every hash in an RFC 6962 tree over SHA-256.
pub const HASH_SIZE: usize = 32;

/// A SHA-256 digest: a leaf hash, an interior node hash or a tree root.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash(pub [u8; HASH_SIZE]);

/// The root of the empty tree: SHA-256 of nothing (RFC 6962 section 2.1, `MTH({})`).
pub const EMPTY_ROOT: Hash = Hash([
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
]);

/// Error decoding a hash from text or bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    /// The input did not hold exactly 32 bytes.
    #[error("hash must be {HASH_SIZE} bytes, got {0}")]
    Length(usize),
    /// The base64 text was not canonical standard padded base64.
    #[error("hash is not valid padded base64")]
    Base64,
    /// The hex text was not 64 hex digits.
    #[error("hash is not 64 hex digits")]
    Hex,
}

impl Hash {
    /// Copies a hash out of a slice that must be exactly 32 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, HashError> {
        <[u8; HASH_SIZE]>::try_from(bytes)
            .map(Hash)
            .map_err(|_| HashError::Length(bytes.len()))
    }

    /// Standard padded base64 (RFC 4648 section 4), as checkpoints and proofs carry hashes.
    pub fn to_base64(&self) -> String {
        B64.encode(self.0)
    }

    /// Parses standard padded base64 holding exactly 32 bytes. Non-canonical encodings (stray
    /// bits in the final character) are rejected, so every hash has one spelling.
    pub fn from_base64(text: &str) -> Result<Self, HashError> {
        let bytes = crate::text::decode_base64(text).ok_or(HashError::Base64)?;
        Self::from_slice(&bytes)
    }

    /// Lowercase hex, 64 characters.
    pub fn to_hex(&self) -> String {
        crate::text::to_hex(&self.0)
    }

    /// Parses 64 hex digits (either case).
    pub fn from_hex(text: &str) -> Result<Self, HashError> {
        let bytes = crate::text::from_hex(text).ok_or(HashError::Hex)?;
        Self::from_slice(&bytes).map_err(|_| HashError::Hex)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; HASH_SIZE] {
        &self.0
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.to_hex())
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl AsRef<[u8]> for Hash {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// `SHA-256(0x00 || data)`: the RFC 6962 leaf hash (Go's `tlog.RecordHash`).
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(data);
    Hash(h.finalize().into())
}

/// `SHA-256(0x01 || left || right)`: the RFC 6962 interior node hash.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut buf = [0u8; 1 + 2 * HASH_SIZE];
    buf[0] = 0x01;
    buf[1..1 + HASH_SIZE].copy_from_slice(&left.0);
    buf[1 + HASH_SIZE..].copy_from_slice(&right.0);
    Hash(Sha256::digest(buf).into())
}

/// Plain SHA-256, for key IDs, origin hashes and similar non-tree uses.
pub fn sha256(data: &[u8]) -> [u8; HASH_SIZE] {
    Sha256::digest(data).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_root_is_sha256_of_nothing() {
        assert_eq!(EMPTY_ROOT.0, sha256(b""));
        assert_eq!(
            EMPTY_ROOT.to_base64(),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
    }

    #[test]
    fn record_hash_hello_world() {
        // golang.org/x/mod/sumdb/tlog note_test.go, via c2sp-digest section 8.4.
        assert_eq!(
            leaf_hash(b"hello world").to_base64(),
            "TszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0="
        );
    }

    #[test]
    fn base64_rejects_wrong_length_and_noncanonical() {
        let h = leaf_hash(b"x");
        assert_eq!(Hash::from_base64(&h.to_base64()), Ok(h));
        assert!(Hash::from_base64("AAAA").is_err());
        // 'B' instead of 'A' before the padding sets bits the 32 bytes do not use.
        let mut s = EMPTY_ROOT.to_base64();
        s.replace_range(42..43, "V");
        assert!(Hash::from_base64(&s).is_err());
        assert!(Hash::from_base64(&EMPTY_ROOT.to_base64().replace('=', "")).is_err());
    }

    #[test]
    fn hex_round_trip() {
        let h = leaf_hash(b"y");
        assert_eq!(Hash::from_hex(&h.to_hex()), Ok(h));
        assert!(Hash::from_hex("zz").is_err());
        assert!(Hash::from_hex(&h.to_hex()[..62]).is_err());
    }
}
