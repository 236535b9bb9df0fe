//! The text forms of keys: vkeys (`<name>+<hex8 id>+<base64(type || key)>`, signed-note
//! "Verifier keys") for any signature type, and Go's private skeys (`PRIVATE+KEY+...`, an x/mod
//! convention that no C2SP spec defines). Type-specific checks live with each key type.

use std::fmt;

use super::{SIG_TYPE_ED25519, is_valid_key_name};
use crate::text::{decode_base64, encode_base64, from_hex, to_hex};

/// Prefix of Go's private signer-key format.
const SKEY_PREFIX: &str = "PRIVATE+KEY+";

/// Why a verifier key (vkey) or signer key (skey) string was rejected. Never carries key bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The string does not have the `name+id+base64` shape, or a part is malformed.
    #[error("malformed key: {0}")]
    Format(&'static str),
    /// The key name is invalid.
    #[error("invalid key name {0:?}")]
    Name(String),
    /// The key's type byte is not one this constructor handles.
    #[error("unsupported key type {0:#04x}")]
    Type(u8),
    /// The key material has the wrong length for its type.
    #[error("key material is {got} bytes, expected {want}")]
    Length {
        /// Bytes after the type byte.
        got: usize,
        /// Bytes the type requires.
        want: usize,
    },
    /// The key ID in the string is not the one computed from the name and key.
    #[error("key ID {written:08x} does not match the computed key ID {computed:08x}")]
    KeyId {
        /// The ID written in the key string.
        written: u32,
        /// The ID computed from the name, type and key.
        computed: u32,
    },
    /// The bytes are not a valid Ed25519 public key.
    #[error("not a valid Ed25519 public key")]
    PublicKey,
}

/// The parts of a vkey, `<name>+<hex8 id>+<base64(type || key)>`, as any signature type writes
/// it. The key ID is NOT checked against the key here: the ID formula differs between types (see
/// [`VerifierKey::parse`]).
#[derive(Clone, PartialEq, Eq)]
pub struct VerifierKey {
    /// The key name.
    pub name: String,
    /// The key ID written in the vkey.
    pub key_id: u32,
    /// The signature type byte.
    pub key_type: u8,
    /// The public key material after the type byte.
    pub key: Vec<u8>,
}

impl VerifierKey {
    /// Splits a vkey on `+` at most twice (base64 may itself contain `+`) and checks the shape:
    /// valid key name, exactly 8 lowercase hex digits of key ID, canonical base64 of at least a
    /// type byte. For the types this crate implements, `0x01` and `0x04`, the written ID must be
    /// [`key_id`](super::key_id)`(name, type || key)`. Other types' IDs are taken as written:
    /// `0x02` and `0x05` hash other material, and for `0x06` (ML-DSA-44) the one published test
    /// vkey we have, from transparency-dev/formats, carries an ID that is not the formula's
    /// (formats ignores the written ID), so checking it belongs to a future ML-DSA verifier.
    pub fn parse(vkey: &str) -> Result<Self, KeyError> {
        let SignerKeyParts {
            name,
            key_id,
            key_type,
            key,
        } = split_key_text(vkey, "expected name+id+key")?;
        let mut material = Vec::with_capacity(1 + key.len());
        material.push(key_type);
        material.extend_from_slice(&key);
        if matches!(
            key_type,
            SIG_TYPE_ED25519 | crate::cosignature::SIG_TYPE_COSIGNATURE_V1
        ) {
            let computed = super::key_id(&name, &material);
            if computed != key_id {
                return Err(KeyError::KeyId {
                    written: key_id,
                    computed,
                });
            }
        }
        Ok(Self {
            name,
            key_id,
            key_type,
            key,
        })
    }

    /// The vkey text form.
    pub fn to_vkey(&self) -> String {
        format_key_text(&self.name, self.key_id, self.key_type, &self.key)
    }
}

impl fmt::Debug for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "VerifierKey({}+{:08x}, type {:#04x}, {} bytes)",
            self.name,
            self.key_id,
            self.key_type,
            self.key.len()
        )
    }
}

/// A key ID in text: exactly 8 lowercase hex digits (Go also accepts upper case; the spec's
/// examples and every writer use lower case, so we insist on one spelling).
fn parse_key_id(text: &str) -> Result<u32, KeyError> {
    let ok = text.len() == 8 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let bytes = from_hex(text).filter(|_| ok);
    match bytes.as_deref() {
        Some(&[a, b, c, d]) => Ok(u32::from_be_bytes([a, b, c, d])),
        _ => Err(KeyError::Format("key ID is not 8 lowercase hex digits")),
    }
}

/// `<name>+<hex8 id>+<base64(type || key)>`, the shape shared by vkeys and (after the
/// `PRIVATE+KEY+` prefix) Go skeys.
pub(crate) fn format_key_text(name: &str, key_id: u32, key_type: u8, key: &[u8]) -> String {
    let mut material = Vec::with_capacity(1 + key.len());
    material.push(key_type);
    material.extend_from_slice(key);
    format!(
        "{name}+{}+{}",
        to_hex(&key_id.to_be_bytes()),
        encode_base64(&material)
    )
}

/// A parsed Go skey, `PRIVATE+KEY+<name>+<hex8 id>+<base64(type || private key)>`. The ID is
/// not checked here: it hashes the public key, which only the type-specific code can derive.
pub(crate) struct SignerKeyParts {
    pub(crate) name: String,
    pub(crate) key_id: u32,
    pub(crate) key_type: u8,
    pub(crate) key: Vec<u8>,
}

pub(crate) fn parse_skey(skey: &str) -> Result<SignerKeyParts, KeyError> {
    let rest = skey.strip_prefix(SKEY_PREFIX).ok_or(KeyError::Format(
        "signer key does not start with PRIVATE+KEY+",
    ))?;
    split_key_text(rest, "expected PRIVATE+KEY+name+id+key")
}

/// Splits `<name>+<hex8 id>+<base64(type || key)>` (the shape of vkeys, and of skeys after
/// `PRIVATE+KEY+`) with at most two splits, since base64 may contain `+`; checks the name, the ID's
/// spelling and the base64, but not what the ID hashes (that is type-specific).
fn split_key_text(text: &str, shape: &'static str) -> Result<SignerKeyParts, KeyError> {
    let mut parts = text.splitn(3, '+');
    let (Some(name), Some(id), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(KeyError::Format(shape));
    };
    if !is_valid_key_name(name) {
        return Err(KeyError::Name(name.to_owned()));
    }
    let key_id = parse_key_id(id)?;
    let material = decode_base64(b64).ok_or(KeyError::Format("key is not canonical base64"))?;
    let Some((&key_type, key)) = material.split_first() else {
        return Err(KeyError::Format("key is empty"));
    };
    Ok(SignerKeyParts {
        name: name.to_owned(),
        key_id,
        key_type,
        key: key.to_vec(),
    })
}

/// The Go skey text form for a private key of the given type.
pub(crate) fn format_skey(name: &str, key_id: u32, key_type: u8, key: &[u8]) -> String {
    format!(
        "{SKEY_PREFIX}{}",
        format_key_text(name, key_id, key_type, key)
    )
}
