//! Ed25519 note keys (signature type `0x01`, signed-note "Ed25519 signatures"): signing from a
//! 32-byte seed, verification with `verify_strict`, and Go's skey/vkey text forms.
//!
//! Key generation is out of scope (the crate has no randomness): callers bring the seed.

use std::fmt;

use ed25519_dalek::{Signature, SigningKey, VerifyingKey};

use super::{
    KeyError, SIG_TYPE_ED25519, Signer, Verifier, VerifierKey, format_skey, is_valid_key_name,
    key_id, parse_skey,
};
use crate::text::to_hex;

/// Bytes in an Ed25519 seed, public key.
pub const ED25519_KEY_SIZE: usize = 32;
/// Bytes in an Ed25519 signature.
pub const ED25519_SIGNATURE_SIZE: usize = 64;

/// An Ed25519 note signer. Its `Debug` output shows the name, key ID and public key, never the
/// seed; the seed is zeroed when the value is dropped.
#[derive(Clone)]
pub struct Ed25519Signer {
    name: String,
    key_id: u32,
    key: SigningKey,
}

impl Ed25519Signer {
    /// A signer named `name` with the Ed25519 private key derived from `seed` (RFC 8032).
    pub fn from_seed(name: &str, seed: [u8; ED25519_KEY_SIZE]) -> Result<Self, KeyError> {
        if !is_valid_key_name(name) {
            return Err(KeyError::Name(name.to_owned()));
        }
        let key = SigningKey::from_bytes(&seed);
        let key_id = ed25519_key_id(name, key.verifying_key().as_bytes());
        Ok(Self {
            name: name.to_owned(),
            key_id,
            key,
        })
    }

    /// Parses Go's `PRIVATE+KEY+<name>+<hex8 id>+<base64(0x01 || seed)>` and checks that the ID
    /// is the one of the derived public key.
    pub fn from_skey(skey: &str) -> Result<Self, KeyError> {
        let parts = parse_skey(skey)?;
        if parts.key_type != SIG_TYPE_ED25519 {
            return Err(KeyError::Type(parts.key_type));
        }
        let seed = seed_from(&parts.key)?;
        let signer = Self::from_seed(&parts.name, seed)?;
        if signer.key_id != parts.key_id {
            return Err(KeyError::KeyId {
                written: parts.key_id,
                computed: signer.key_id,
            });
        }
        Ok(signer)
    }

    /// The Go skey text form. It contains the private seed: handle it as a secret.
    pub fn to_skey(&self) -> String {
        format_skey(
            &self.name,
            self.key_id,
            SIG_TYPE_ED25519,
            self.key.as_bytes(),
        )
    }

    /// The matching verifier.
    pub fn verifier(&self) -> Ed25519Verifier {
        Ed25519Verifier {
            name: self.name.clone(),
            key_id: self.key_id,
            key: self.key.verifying_key(),
        }
    }

    /// The 32-byte public key.
    pub fn public_key(&self) -> [u8; ED25519_KEY_SIZE] {
        self.key.verifying_key().to_bytes()
    }
}

impl Signer for Ed25519Signer {
    fn name(&self) -> &str {
        &self.name
    }

    fn key_id(&self) -> u32 {
        self.key_id
    }

    fn sign(&self, msg: &[u8]) -> Vec<u8> {
        sign_ed25519(&self.key, msg).to_vec()
    }
}

impl fmt::Debug for Ed25519Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ed25519Signer")
            .field("name", &self.name)
            .field("key_id", &format_args!("{:08x}", self.key_id))
            .field("public_key", &to_hex(&self.public_key()))
            .finish_non_exhaustive()
    }
}

/// An Ed25519 note verifier (type `0x01`). Verification is `verify_strict`: it rejects
/// non-canonical signatures and small-order keys and `R` values.
#[derive(Clone, PartialEq, Eq)]
pub struct Ed25519Verifier {
    name: String,
    key_id: u32,
    key: VerifyingKey,
}

impl Ed25519Verifier {
    /// A verifier for `name` and a 32-byte public key, which must decode to a point that is not
    /// of small order (such a key cannot verify anything under `verify_strict`).
    pub fn from_public_key(
        name: &str,
        public_key: [u8; ED25519_KEY_SIZE],
    ) -> Result<Self, KeyError> {
        if !is_valid_key_name(name) {
            return Err(KeyError::Name(name.to_owned()));
        }
        let key = public_key_from(&public_key)?;
        Ok(Self {
            name: name.to_owned(),
            key_id: ed25519_key_id(name, &public_key),
            key,
        })
    }

    /// Parses `<name>+<hex8 id>+<base64(0x01 || pk32)>` (Go's `note.NewVerifier`): the type must
    /// be `0x01`, the key 32 bytes and a usable point, and the ID the computed one.
    pub fn from_vkey(vkey: &str) -> Result<Self, KeyError> {
        let parsed = VerifierKey::parse(vkey)?;
        if parsed.key_type != SIG_TYPE_ED25519 {
            return Err(KeyError::Type(parsed.key_type));
        }
        // VerifierKey::parse has already checked the ID for type 0x01.
        Self::from_public_key(&parsed.name, seed_from(&parsed.key)?)
    }

    /// The vkey text form.
    pub fn to_vkey(&self) -> String {
        super::format_key_text(
            &self.name,
            self.key_id,
            SIG_TYPE_ED25519,
            self.key.as_bytes(),
        )
    }

    /// The 32-byte public key.
    pub fn public_key(&self) -> [u8; ED25519_KEY_SIZE] {
        self.key.to_bytes()
    }
}

impl Verifier for Ed25519Verifier {
    fn name(&self) -> &str {
        &self.name
    }

    fn key_id(&self) -> u32 {
        self.key_id
    }

    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        verify_ed25519(&self.key, msg, sig)
    }
}

impl fmt::Debug for Ed25519Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_vkey())
    }
}

/// The type-`0x01` key ID of an Ed25519 public key.
fn ed25519_key_id(name: &str, public_key: &[u8; ED25519_KEY_SIZE]) -> u32 {
    let mut material = [0u8; 1 + ED25519_KEY_SIZE];
    material[0] = SIG_TYPE_ED25519;
    material[1..].copy_from_slice(public_key);
    key_id(name, &material)
}

/// Copies 32 key bytes (a seed or a public key) out of a slice.
pub(crate) fn seed_from(key: &[u8]) -> Result<[u8; ED25519_KEY_SIZE], KeyError> {
    <[u8; ED25519_KEY_SIZE]>::try_from(key).map_err(|_| KeyError::Length {
        got: key.len(),
        want: ED25519_KEY_SIZE,
    })
}

/// Decodes a public key, refusing invalid encodings and small-order points.
pub(crate) fn public_key_from(bytes: &[u8; ED25519_KEY_SIZE]) -> Result<VerifyingKey, KeyError> {
    let key = VerifyingKey::from_bytes(bytes).map_err(|_| KeyError::PublicKey)?;
    if key.is_weak() {
        return Err(KeyError::PublicKey);
    }
    Ok(key)
}

/// `verify_strict` over a signature that must be exactly 64 bytes.
pub(crate) fn verify_ed25519(key: &VerifyingKey, msg: &[u8], sig: &[u8]) -> bool {
    let Ok(bytes) = <[u8; ED25519_SIGNATURE_SIZE]>::try_from(sig) else {
        return false;
    };
    key.verify_strict(msg, &Signature::from_bytes(&bytes))
        .is_ok()
}

/// Signs with a raw key (shared with the cosignature module).
pub(crate) fn sign_ed25519(key: &SigningKey, msg: &[u8]) -> [u8; ED25519_SIGNATURE_SIZE] {
    ed25519_dalek::Signer::sign(key, msg).to_bytes()
}
