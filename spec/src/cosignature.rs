//! C2SP tlog-cosignature v1 with Ed25519 (<https://c2sp.org/tlog-cosignature>, signature type
//! `0x04`, "cosignature/v1"): a witness's timestamped signature on a checkpoint.
//!
//! The signature line is `— <cosigner name> base64(key ID || timestamp || signature)`, with an
//! 8-byte big-endian POSIX timestamp and a 64-byte Ed25519 signature over
//! `"cosignature/v1\ntime <timestamp>\n" || <the whole checkpoint note text>` (extension lines
//! included). The key ID hashes type byte `0x04`, so one Ed25519 key has different IDs as a
//! note key and as a cosigner.
//!
//! Out of scope: ML-DSA-44 cosignatures (type `0x06`) and subtrees; reading the clock (callers
//! pass the timestamp); policy on timestamps in the future.

use std::fmt;

use ed25519_dalek::{SigningKey, VerifyingKey};

use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::note::ed25519::{public_key_from, seed_from, sign_ed25519, verify_ed25519};
use crate::note::{
    KeyError, NoteError, NoteSignature, SIG_TYPE_ED25519, Verifier, VerifierKey, format_key_text,
    format_skey, is_valid_key_name, key_id, parse_skey,
};
use crate::text::to_hex;

/// Signature type byte for Ed25519 checkpoint cosignatures (<https://c2sp.org/tlog-cosignature>,
/// registered in <https://c2sp.org/signed-note#signature-types>).
pub const SIG_TYPE_COSIGNATURE_V1: u8 = 0x04;

/// Largest timestamp a cosignature may carry: `2^63 - 1` (<https://c2sp.org/tlog-cosignature>:
/// "It MUST NOT exceed 2^63 - 1", so it fits a signed 64-bit integer).
pub const MAX_TIMESTAMP: u64 = i64::MAX as u64;

/// Bytes after the key ID in a type-`0x04` signature: 8 of timestamp and 64 of Ed25519.
pub const COSIGNATURE_SIZE: usize = TIMESTAMP_SIZE + 64;

const TIMESTAMP_SIZE: usize = 8;

/// Why a cosignature could not be made, decoded or verified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CosignatureError {
    /// The timestamp is above [`MAX_TIMESTAMP`].
    #[error("cosignature timestamp {0} is above 2^63-1")]
    Timestamp(u64),
    /// The signature bytes are not `timestamp(8) || signature(64)`.
    #[error("cosignature is {0} bytes after the key ID, expected {COSIGNATURE_SIZE}")]
    Length(usize),
    /// The text to cosign is not a valid checkpoint.
    #[error("cannot cosign: {0}")]
    Checkpoint(#[from] CheckpointError),
    /// The signature line could not be built.
    #[error(transparent)]
    Note(#[from] NoteError),
    /// The signature line names another key.
    #[error("signature is from key {name}+{key_id:08x}, not this cosigner")]
    OtherKey {
        /// Key name on the signature line.
        name: String,
        /// Key ID on the signature line.
        key_id: u32,
    },
    /// The Ed25519 signature does not verify.
    #[error("invalid cosignature for key {name}+{key_id:08x}")]
    InvalidSignature {
        /// The cosigner's name.
        name: String,
        /// The cosigner's key ID.
        key_id: u32,
    },
}

/// The message a type-`0x04` cosignature signs:
/// `"cosignature/v1\ntime " || decimal(timestamp) || "\n" || checkpoint_text`.
pub fn cosigned_message(timestamp: u64, checkpoint_text: &[u8]) -> Vec<u8> {
    let mut msg = format!("cosignature/v1\ntime {timestamp}\n").into_bytes();
    msg.extend_from_slice(checkpoint_text);
    msg
}

/// The timestamp of a type-`0x04` cosignature, without verifying it. Use
/// [`CosignatureVerifier::verify_cosignature`] to get it from a signature that is known valid.
pub fn cosignature_timestamp(signature: &NoteSignature) -> Result<u64, CosignatureError> {
    split_cosignature(signature.signature()).map(|(ts, _)| ts)
}

fn split_cosignature(sig: &[u8]) -> Result<(u64, &[u8]), CosignatureError> {
    if sig.len() != COSIGNATURE_SIZE {
        return Err(CosignatureError::Length(sig.len()));
    }
    let (ts, ed) = sig.split_at(TIMESTAMP_SIZE);
    let mut be = [0u8; TIMESTAMP_SIZE];
    be.copy_from_slice(ts);
    let ts = u64::from_be_bytes(be);
    if ts > MAX_TIMESTAMP {
        return Err(CosignatureError::Timestamp(ts));
    }
    Ok((ts, ed))
}

fn cosigner_key_id(name: &str, public_key: &[u8; 32]) -> u32 {
    typed_key_id(name, SIG_TYPE_COSIGNATURE_V1, public_key)
}

fn typed_key_id(name: &str, key_type: u8, public_key: &[u8; 32]) -> u32 {
    let mut material = [0u8; 33];
    material[0] = key_type;
    material[1..].copy_from_slice(public_key);
    key_id(name, &material)
}

/// A witness's Ed25519 cosigning key. `Debug` shows the name, key ID and public key, never the
/// seed; the seed is zeroed when the value is dropped.
#[derive(Clone)]
pub struct Cosigner {
    name: String,
    key_id: u32,
    key: SigningKey,
}

impl Cosigner {
    /// A cosigner named `name` with the Ed25519 key derived from `seed`.
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Result<Self, KeyError> {
        if !is_valid_key_name(name) {
            return Err(KeyError::Name(name.to_owned()));
        }
        let key = SigningKey::from_bytes(&seed);
        Ok(Self {
            name: name.to_owned(),
            key_id: cosigner_key_id(name, key.verifying_key().as_bytes()),
            key,
        })
    }

    /// Parses a Go-style skey. Type `0x04` (as [`Cosigner::to_skey`] writes) must carry the
    /// type-`0x04` key ID; type `0x01` (a plain note key from Go's `note.GenerateKey`) must carry
    /// the type-`0x01` ID and is used as a cosigner with the type-`0x04` ID, as
    /// transparency-dev/formats' `NewSignerForCosignatureV1` does.
    pub fn from_skey(skey: &str) -> Result<Self, KeyError> {
        let parts = parse_skey(skey)?;
        if parts.key_type != SIG_TYPE_COSIGNATURE_V1 && parts.key_type != SIG_TYPE_ED25519 {
            return Err(KeyError::Type(parts.key_type));
        }
        let cosigner = Self::from_seed(&parts.name, seed_from(&parts.key)?)?;
        let computed = typed_key_id(&parts.name, parts.key_type, &cosigner.public_key());
        if computed != parts.key_id {
            return Err(KeyError::KeyId {
                written: parts.key_id,
                computed,
            });
        }
        Ok(cosigner)
    }

    /// The skey text form, type `0x04`. It contains the private seed: handle it as a secret.
    pub fn to_skey(&self) -> String {
        format_skey(
            &self.name,
            self.key_id,
            SIG_TYPE_COSIGNATURE_V1,
            self.key.as_bytes(),
        )
    }

    /// The matching verifier.
    pub fn verifier(&self) -> CosignatureVerifier {
        CosignatureVerifier {
            name: self.name.clone(),
            key_id: self.key_id,
            key: self.key.verifying_key(),
        }
    }

    /// The cosigner name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The type-`0x04` key ID.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The 32-byte public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// Cosigns a checkpoint note text (the whole text, extension lines included) at
    /// `timestamp`, in POSIX seconds. The text must parse as a checkpoint, so the key never
    /// signs anything else; the caller must have verified the checkpoint and its consistency.
    pub fn cosign(
        &self,
        checkpoint_text: &str,
        timestamp: u64,
    ) -> Result<NoteSignature, CosignatureError> {
        if timestamp > MAX_TIMESTAMP {
            return Err(CosignatureError::Timestamp(timestamp));
        }
        Checkpoint::parse(checkpoint_text)?;
        let msg = cosigned_message(timestamp, checkpoint_text.as_bytes());
        let mut sig = Vec::with_capacity(COSIGNATURE_SIZE);
        sig.extend_from_slice(&timestamp.to_be_bytes());
        sig.extend_from_slice(&sign_ed25519(&self.key, &msg));
        // Cannot fail: the name was validated at construction and the signature is not empty.
        Ok(NoteSignature::new(&self.name, self.key_id, sig)?)
    }
}

impl fmt::Debug for Cosigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cosigner")
            .field("name", &self.name)
            .field("key_id", &format_args!("{:08x}", self.key_id))
            .field("public_key", &to_hex(&self.public_key()))
            .finish_non_exhaustive()
    }
}

/// Verifies type-`0x04` cosignatures. As a [`Verifier`] it plugs into [`crate::note::verify`]:
/// it reads the timestamp, rejects one above [`MAX_TIMESTAMP`], rebuilds the cosigned message
/// from the note text and checks the signature with `verify_strict`.
#[derive(Clone, PartialEq, Eq)]
pub struct CosignatureVerifier {
    name: String,
    key_id: u32,
    key: VerifyingKey,
}

impl CosignatureVerifier {
    /// A verifier for cosigner `name` with a 32-byte Ed25519 public key.
    pub fn from_public_key(name: &str, public_key: [u8; 32]) -> Result<Self, KeyError> {
        if !is_valid_key_name(name) {
            return Err(KeyError::Name(name.to_owned()));
        }
        Ok(Self {
            name: name.to_owned(),
            key_id: cosigner_key_id(name, &public_key),
            key: public_key_from(&public_key)?,
        })
    }

    /// Parses a vkey. Type `0x04` is the cosigner form. Type `0x01` (a plain Ed25519 note vkey)
    /// is also accepted, its written ID checked as type `0x01`, and converted: the verifier then
    /// uses the type-`0x04` key ID, as transparency-dev/formats' `NewVerifierForCosignatureV1`
    /// does. The written ID must always match; other types are rejected.
    pub fn from_vkey(vkey: &str) -> Result<Self, KeyError> {
        let parsed = VerifierKey::parse(vkey)?;
        if parsed.key_type != SIG_TYPE_COSIGNATURE_V1 && parsed.key_type != SIG_TYPE_ED25519 {
            return Err(KeyError::Type(parsed.key_type));
        }
        // VerifierKey::parse has checked the written ID against the written type.
        Self::from_public_key(&parsed.name, seed_from(&parsed.key)?)
    }

    /// The type-`0x04` vkey text form.
    pub fn to_vkey(&self) -> String {
        format_key_text(
            &self.name,
            self.key_id,
            SIG_TYPE_COSIGNATURE_V1,
            self.key.as_bytes(),
        )
    }

    /// The 32-byte public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// Verifies one cosignature line over `checkpoint_text` and returns its timestamp. The line
    /// must carry this cosigner's name and key ID.
    pub fn verify_cosignature(
        &self,
        checkpoint_text: &str,
        signature: &NoteSignature,
    ) -> Result<u64, CosignatureError> {
        if signature.name() != self.name || signature.key_id() != self.key_id {
            return Err(CosignatureError::OtherKey {
                name: signature.name().to_owned(),
                key_id: signature.key_id(),
            });
        }
        let ts = cosignature_timestamp(signature)?;
        if !self.verify(checkpoint_text.as_bytes(), signature.signature()) {
            return Err(CosignatureError::InvalidSignature {
                name: self.name.clone(),
                key_id: self.key_id,
            });
        }
        Ok(ts)
    }
}

impl Verifier for CosignatureVerifier {
    fn name(&self) -> &str {
        &self.name
    }

    fn key_id(&self) -> u32 {
        self.key_id
    }

    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        let Ok((ts, ed)) = split_cosignature(sig) else {
            return false;
        };
        verify_ed25519(&self.key, &cosigned_message(ts, msg), ed)
    }
}

impl fmt::Debug for CosignatureVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_vkey())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::note::{self, Ed25519Signer, Note, Signer as _};

    const SOFA: &str =
        "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";

    fn witness() -> Cosigner {
        Cosigner::from_seed("witness.example/w1", [9; 32]).unwrap()
    }

    #[test]
    fn message_layout() {
        // tlog-cosignature's example message: 15 + 16 + 82 = 113 bytes for this checkpoint and
        // timestamp (c2sp-digest section 4.2 says 119, which is the ML-DSA message's length).
        let msg = cosigned_message(1679315147, SOFA.as_bytes());
        assert_eq!(msg.len(), 113);
        assert!(msg.starts_with(b"cosignature/v1\ntime 1679315147\nexample.com/behind"));
    }

    #[test]
    fn cosign_and_verify() {
        let w = witness();
        let sig = w.cosign(SOFA, 1679315147).unwrap();
        assert_eq!(sig.name(), "witness.example/w1");
        assert_eq!(sig.signature().len(), COSIGNATURE_SIZE);
        assert_eq!(&sig.signature()[..8], 1679315147u64.to_be_bytes());
        let v = w.verifier();
        assert_eq!(v.verify_cosignature(SOFA, &sig), Ok(1679315147));
        assert_eq!(cosignature_timestamp(&sig), Ok(1679315147));

        // Independently: the Ed25519 part is a plain signature over the documented message.
        let pk = ed25519_dalek::VerifyingKey::from_bytes(&w.public_key()).unwrap();
        let ed = ed25519_dalek::Signature::from_slice(&sig.signature()[8..]).unwrap();
        let msg = format!("cosignature/v1\ntime 1679315147\n{SOFA}");
        pk.verify_strict(msg.as_bytes(), &ed).unwrap();
    }

    #[test]
    fn cosignature_in_a_note() {
        let log = Ed25519Signer::from_seed("example.com/behind-the-sofa", [1; 32]).unwrap();
        let w = witness();
        let mut n = Note::sign(SOFA, &[&log]).unwrap();
        n.push_signature(w.cosign(SOFA, 5).unwrap()).unwrap();
        let parsed = Note::parse(&n.to_bytes()).unwrap();
        let (lv, wv) = (log.verifier(), w.verifier());
        assert_eq!(note::verify(&parsed, &[&lv, &wv]).unwrap(), vec![0, 1]);
        assert_eq!(note::verify(&parsed, &[&wv]).unwrap(), vec![0]);
        // The plain Ed25519 verifier for the same key and name has another ID: the cosignature
        // is unknown to it.
        let plain = Ed25519Signer::from_seed("witness.example/w1", [9; 32]).unwrap();
        assert_ne!(plain.key_id(), w.key_id());
        assert_eq!(
            note::verify(&parsed, &[&plain.verifier()]),
            Err(NoteError::Unverified)
        );
    }

    #[test]
    fn extension_lines_are_signed() {
        let w = witness();
        let text = format!("{SOFA}ext\n");
        let sig = w.cosign(&text, 1).unwrap();
        let v = w.verifier();
        assert_eq!(v.verify_cosignature(&text, &sig), Ok(1));
        assert!(v.verify_cosignature(&format!("{SOFA}exu\n"), &sig).is_err());
        assert!(v.verify_cosignature(SOFA, &sig).is_err());
    }

    #[test]
    fn tampering_fails() {
        let w = witness();
        let v = w.verifier();
        let sig = w.cosign(SOFA, 1679315147).unwrap();
        for i in 0..(COSIGNATURE_SIZE * 8) {
            let mut s = sig.signature().to_vec();
            s[i / 8] ^= 1 << (i % 8);
            let s = NoteSignature::new(sig.name(), sig.key_id(), s).unwrap();
            assert!(v.verify_cosignature(SOFA, &s).is_err(), "bit {i}");
        }
        let other = NoteSignature::new("x", sig.key_id(), sig.signature().to_vec()).unwrap();
        assert!(matches!(
            v.verify_cosignature(SOFA, &other),
            Err(CosignatureError::OtherKey { .. })
        ));
        let short = NoteSignature::new(sig.name(), sig.key_id(), vec![0; 68]).unwrap();
        assert_eq!(
            v.verify_cosignature(SOFA, &short),
            Err(CosignatureError::Length(68))
        );
    }

    #[test]
    fn timestamp_limit() {
        let w = witness();
        assert!(w.cosign(SOFA, MAX_TIMESTAMP).is_ok());
        assert_eq!(
            w.cosign(SOFA, MAX_TIMESTAMP + 1),
            Err(CosignatureError::Timestamp(1 << 63))
        );
        // A signature that is valid over a message with time 2^63 is still rejected.
        let msg = cosigned_message(1 << 63, SOFA.as_bytes());
        let mut raw = (1u64 << 63).to_be_bytes().to_vec();
        raw.extend_from_slice(&sign_ed25519(&SigningKey::from_bytes(&[9; 32]), &msg));
        let v = w.verifier();
        assert!(!v.verify(SOFA.as_bytes(), &raw));
        let line = NoteSignature::new(w.name(), w.key_id(), raw).unwrap();
        assert_eq!(
            cosignature_timestamp(&line),
            Err(CosignatureError::Timestamp(1 << 63))
        );
    }

    #[test]
    fn cosign_requires_a_checkpoint() {
        let w = witness();
        for text in ["hello\n", "o\n01\nAAAA\n", "", "no newline"] {
            assert!(w.cosign(text, 1).is_err(), "{text:?}");
        }
    }

    #[test]
    fn keys_round_trip_and_convert() {
        let w = witness();
        let vkey = w.verifier().to_vkey();
        assert!(vkey.starts_with(&format!("witness.example/w1+{:08x}+B", w.key_id())));
        assert_eq!(CosignatureVerifier::from_vkey(&vkey).unwrap(), w.verifier());
        let skey = w.to_skey();
        assert_eq!(Cosigner::from_skey(&skey).unwrap().to_skey(), skey);

        // A type-0x01 note key for the same seed converts to the same cosigner.
        let plain = Ed25519Signer::from_seed("witness.example/w1", [9; 32]).unwrap();
        let from_plain = CosignatureVerifier::from_vkey(&plain.verifier().to_vkey()).unwrap();
        assert_eq!(from_plain, w.verifier());
        assert_eq!(
            Cosigner::from_skey(&plain.to_skey()).unwrap().to_skey(),
            skey
        );

        // A type-0x01 vkey carrying the type-0x04 ID (or vice versa) is rejected.
        let swapped = plain.verifier().to_vkey().replace(
            &format!("{:08x}", plain.key_id()),
            &format!("{:08x}", w.key_id()),
        );
        assert!(CosignatureVerifier::from_vkey(&swapped).is_err());
        let swapped = vkey.replace(
            &format!("{:08x}", w.key_id()),
            &format!("{:08x}", plain.key_id()),
        );
        assert!(CosignatureVerifier::from_vkey(&swapped).is_err());
        // And the note verifier refuses a type-0x04 vkey.
        assert_eq!(
            note::Ed25519Verifier::from_vkey(&vkey),
            Err(KeyError::Type(0x04))
        );
    }

    #[test]
    fn debug_hides_the_seed() {
        let w = Cosigner::from_seed("w", [0xcd; 32]).unwrap();
        let d = format!("{w:?}");
        let skey = w.to_skey();
        let seed_b64 = skey.splitn(5, '+').last().unwrap();
        assert!(!d.contains("cdcdcdcd") && !d.contains(seed_b64), "{d}");
    }
}
