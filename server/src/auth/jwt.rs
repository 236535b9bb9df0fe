//! JWT bearer tokens, verified by `jsonwebtoken` with a `ring` crypto provider of our own.
//!
//! `jsonwebtoken` is built without a crypto backend (its choices are aws-lc-rs, a heavy C build,
//! or the RustCrypto RSA stack); `ring` is already in the tree through rustls, so [`RING`]
//! verifies HS256, RS256, ES256 and EdDSA with it. Signing is not offered: the server never issues
//! JWTs. One algorithm is pinned by configuration: a token whose header names another (`none`,
//! HS256 against an RSA key, ...) is refused before any key is used, and the provider refuses a
//! key of the wrong family as a second line of defence.

use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::signature::{self, Verifier};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, Validation};
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, ED25519, RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey,
    VerificationAlgorithm,
};
use rustls::pki_types::SubjectPublicKeyInfoDer;
use rustls::pki_types::pem::PemObject as _;
use serde_json::{Map, Value};

use super::config::{JwtAlgorithm, JwtConfig};
use super::{Role, der};

/// Verification-only `jsonwebtoken` provider over `ring`.
static RING: CryptoProvider = CryptoProvider {
    signer_factory: no_signer,
    verifier_factory: ring_verifier,
    key_utils: KeyUtils::new_unimplemented(),
};

fn no_signer(
    _: &Algorithm,
    _: &jsonwebtoken::EncodingKey,
) -> jsonwebtoken::errors::Result<Box<dyn JwtSigner>> {
    Err(ErrorKind::UnsupportedAlgorithm.into())
}

enum RingKey {
    Hmac(ring::hmac::Key),
    Public(&'static dyn VerificationAlgorithm, Vec<u8>),
}

struct RingVerifier {
    alg: Algorithm,
    key: RingKey,
}

impl Verifier<Vec<u8>> for RingVerifier {
    fn verify(&self, msg: &[u8], sig: &Vec<u8>) -> Result<(), signature::Error> {
        let ok = match &self.key {
            RingKey::Hmac(k) => ring::hmac::verify(k, msg, sig).is_ok(),
            RingKey::Public(alg, key) => UnparsedPublicKey::new(*alg, key).verify(msg, sig).is_ok(),
        };
        if ok {
            Ok(())
        } else {
            Err(signature::Error::new())
        }
    }
}

impl JwtVerifier for RingVerifier {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }
}

fn ring_verifier(
    alg: &Algorithm,
    key: &DecodingKey,
) -> jsonwebtoken::errors::Result<Box<dyn JwtVerifier>> {
    let bytes = key.try_get_as_bytes()?;
    let key = match (alg, key.family()) {
        (Algorithm::HS256, AlgorithmFamily::Hmac) => {
            RingKey::Hmac(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, bytes))
        }
        (Algorithm::RS256, AlgorithmFamily::Rsa) => {
            RingKey::Public(&RSA_PKCS1_2048_8192_SHA256, bytes.to_vec())
        }
        (Algorithm::ES256, AlgorithmFamily::Ec) => {
            RingKey::Public(&ECDSA_P256_SHA256_FIXED, bytes.to_vec())
        }
        (Algorithm::EdDSA, AlgorithmFamily::Ed) => RingKey::Public(&ED25519, bytes.to_vec()),
        _ => return Err(ErrorKind::InvalidAlgorithm.into()),
    };
    Ok(Box::new(RingVerifier { alg: *alg, key }))
}

/// Whether the token's protected header has a `crit` member (any value; an unreadable header is
/// left to the decoder to refuse).
fn has_crit(token: &str) -> bool {
    use base64::Engine as _;
    token
        .split('.')
        .next()
        .and_then(|h| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(h)
                .ok()
        })
        .and_then(|b| serde_json::from_slice::<Map<String, Value>>(&b).ok())
        .is_some_and(|h| h.contains_key("crit"))
}

/// Installs [`RING`] as `jsonwebtoken`'s process-wide provider, unless one already is.
fn install_provider() {
    // Err means a provider is already installed (ours, or an embedding program's choice).
    let _ = RING.install_default();
}

/// A configured JWT verifier.
pub(crate) struct JwtAuth {
    key: DecodingKey,
    validation: Validation,
    principal_claim: String,
    role_claim: String,
}

impl std::fmt::Debug for JwtAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtAuth")
            .field("algorithms", &self.validation.algorithms)
            .finish_non_exhaustive()
    }
}

impl JwtAuth {
    /// Loads the key and pins the algorithm, issuer, audience and required claims.
    pub(crate) fn new(c: &JwtConfig) -> Result<Self, String> {
        install_provider();
        let (alg, key) = match c.algorithm {
            JwtAlgorithm::HS256 => (Algorithm::HS256, DecodingKey::from_secret(&hs_secret(c)?)),
            other => {
                let path = c
                    .public_key_file
                    .as_ref()
                    .ok_or("auth.jwt: public_key_file missing")?;
                let spki = SubjectPublicKeyInfoDer::from_pem_file(path).map_err(|e| {
                    format!(
                        "auth.jwt: reading the PEM public key {}: {e}",
                        path.display()
                    )
                })?;
                let (oid, bits) = der::spki_parts(spki.as_ref())
                    .ok_or("auth.jwt: the public key is not a valid SubjectPublicKeyInfo")?;
                let (alg, want, key) = match other {
                    JwtAlgorithm::RS256 => (
                        Algorithm::RS256,
                        der::OID_RSA,
                        DecodingKey::from_rsa_der(bits),
                    ),
                    JwtAlgorithm::ES256 => (
                        Algorithm::ES256,
                        der::OID_EC,
                        DecodingKey::from_ec_der(bits),
                    ),
                    _ => (
                        Algorithm::EdDSA,
                        der::OID_ED25519,
                        DecodingKey::from_ed_der(bits),
                    ),
                };
                if oid != want {
                    return Err(format!("auth.jwt: the public key does not match {other:?}"));
                }
                (alg, key)
            }
        };
        let mut validation = Validation::new(alg);
        validation.set_issuer(&[&c.issuer]);
        validation.set_audience(&[&c.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.validate_nbf = true;
        validation.leeway = c.leeway_secs;
        Ok(JwtAuth {
            key,
            validation,
            principal_claim: c.principal_claim.clone(),
            role_claim: c.role_claim.clone(),
        })
    }

    /// Verifies a token; returns its principal claim and the role it grants (if any).
    pub(crate) fn verify(&self, token: &str) -> Result<(String, Option<Role>), String> {
        // RFC 7515 section 4.1.11: a recipient that does not understand every extension named
        // in `crit` must reject the token. This server understands none.
        if has_crit(token) {
            return Err(
                "invalid JWT: its header names critical extensions (crit), which this server \
                 does not support"
                    .into(),
            );
        }
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &self.key, &self.validation)
            .map_err(|e| format!("invalid JWT: {e}"))?;
        let claims = data.claims;
        let principal = match claims.get(&self.principal_claim) {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            _ => {
                return Err(format!(
                    "the JWT has no non-empty string {:?} claim",
                    self.principal_claim
                ));
            }
        };
        let role = match claims.get(&self.role_claim) {
            Some(Value::String(s)) => Role::parse(s),
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|v| v.as_str().and_then(Role::parse))
                .max(),
            _ => None,
        };
        Ok((principal, role))
    }
}

fn hs_secret(c: &JwtConfig) -> Result<Vec<u8>, String> {
    if let Some(s) = &c.secret {
        return Ok(s.as_bytes().to_vec());
    }
    let path = c
        .secret_file
        .as_ref()
        .ok_or("auth.jwt: secret or secret_file missing")?;
    let text =
        std::fs::read(path).map_err(|e| format!("auth.jwt: reading {}: {e}", path.display()))?;
    let secret = text.strip_suffix(b"\n").unwrap_or(&text).to_vec();
    if secret.len() < 32 {
        return Err("auth.jwt: an HS256 secret must be at least 32 bytes".into());
    }
    Ok(secret)
}
