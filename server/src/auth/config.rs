//! The `[auth]` section of the configuration: who may do what, and how they prove who they are.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::Role;

/// Authentication and authorisation settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// When requests without credentials may append entries (as principal `anonymous`).
    pub anonymous_writes: AnonymousAccess,
    /// When requests without credentials may read private records (principal and payload). A
    /// server reachable from other machines never serves content anonymously by default; the
    /// `reader` role (or higher) reads it.
    pub anonymous_content: AnonymousAccess,
    /// Whether the read API (`/checkpoint`, `/tile/...`, `/v1/log`, entries, proofs) needs the
    /// `reader` role. Public by default: a transparency log is meant to be read.
    pub private_reads: bool,
    /// Whether `/metrics` needs the `admin` role.
    pub private_metrics: bool,
    /// API tokens (`sealtrail token create` prints the line to add).
    pub tokens: Vec<TokenEntry>,
    /// JWT bearer tokens; off unless set.
    pub jwt: Option<JwtConfig>,
}

/// When an anonymous request may do something (append, or read content).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AnonymousAccess {
    /// Only while the server listens on a loopback address (the quick start). As soon as `listen`
    /// is reachable from other machines, credentials are needed.
    Loopback,
    /// Always (any listen address). Only behind a proxy that authenticates.
    Always,
    /// Never.
    Never,
}

impl AnonymousAccess {
    /// Whether anonymous requests are allowed, for a server that listens on a loopback address
    /// or not.
    pub fn allowed(self, listen_is_loopback: bool) -> bool {
        match self {
            AnonymousAccess::Always => true,
            AnonymousAccess::Never => false,
            AnonymousAccess::Loopback => listen_is_loopback,
        }
    }
}

/// One API token: its SHA-256 (never the token itself), a principal name and a role.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    /// The principal recorded for this token's writes (as `token:NAME`).
    pub name: String,
    /// The token's role.
    pub role: Role,
    /// Lowercase hex SHA-256 of the token text.
    pub sha256: String,
    /// When the token stops being accepted: an RFC 3339 time (`2027-03-07T00:00:00Z`), a date
    /// (midnight UTC) or ms since the Unix epoch. None: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

impl TokenEntry {
    /// `expires_at` in ms since the Unix epoch, or why it is not a time.
    pub fn expires_ms(&self) -> Result<Option<u64>, String> {
        self.expires_at
            .as_deref()
            .map(|t| {
                sealtrail_spec::parse_time_ms(t)
                    .map_err(|e| format!("auth.tokens {:?}: expires_at: {e}", self.name))
            })
            .transpose()
    }
}

/// JWT bearer token settings. Exactly one key source: `secret`/`secret_file` for HS256, or
/// `public_key_file` (PEM `PUBLIC KEY`) for RS256, ES256 or EdDSA.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    /// The one accepted algorithm: `HS256`, `RS256`, `ES256` or `EdDSA`. The token's `alg` must
    /// equal it; `none` and every other algorithm are refused.
    pub algorithm: JwtAlgorithm,
    /// HS256 shared secret, inline (prefer `secret_file`). Never printed: `config check` shows
    /// it as `<redacted>`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "redacted"
    )]
    pub secret: Option<String>,
    /// File holding the HS256 secret (trailing newline ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_file: Option<PathBuf>,
    /// PEM public key for RS256, ES256 (P-256) or EdDSA (Ed25519).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key_file: Option<PathBuf>,
    /// Required `iss`.
    pub issuer: String,
    /// Required `aud` (one of the token's audiences).
    pub audience: String,
    /// The claim naming the principal (recorded as `jwt:VALUE`).
    #[serde(default = "default_principal_claim")]
    pub principal_claim: String,
    /// The claim holding the role (a string, or an array of strings: the highest known role wins).
    #[serde(default = "default_role_claim")]
    pub role_claim: String,
    /// Clock skew tolerated for `exp` and `nbf`, in seconds.
    #[serde(default = "default_leeway")]
    pub leeway_secs: u64,
}

/// The JWT algorithms the server verifies.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum JwtAlgorithm {
    /// HMAC-SHA-256 with a shared secret.
    HS256,
    /// RSASSA-PKCS1-v1_5 with SHA-256 (2048 to 8192-bit keys).
    RS256,
    /// ECDSA P-256 with SHA-256.
    ES256,
    /// Ed25519.
    EdDSA,
}

fn redacted<S: serde::Serializer>(_: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str("<redacted>")
}

fn default_principal_claim() -> String {
    "sub".to_owned()
}

fn default_role_claim() -> String {
    "role".to_owned()
}

fn default_leeway() -> u64 {
    30
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            anonymous_writes: AnonymousAccess::Loopback,
            anonymous_content: AnonymousAccess::Loopback,
            private_reads: false,
            private_metrics: false,
            tokens: Vec::new(),
            jwt: None,
        }
    }
}

impl AuthConfig {
    /// Checks the section (token hashes, names, JWT key source).
    pub fn validate(&self) -> Result<(), String> {
        let mut seen = std::collections::HashSet::new();
        for t in &self.tokens {
            if t.name.is_empty() {
                return Err("auth.tokens: a token name must not be empty".into());
            }
            let principal = format!("token:{}", t.name);
            super::check_principal(&principal)
                .map_err(|e| format!("auth.tokens name {:?}: {e}", t.name))?;
            if t.sha256.len() != 64
                || !t
                    .sha256
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            {
                return Err(format!(
                    "auth.tokens {:?}: sha256 must be 64 lowercase hex digits",
                    t.name
                ));
            }
            t.expires_ms()?;
            if !seen.insert(t.sha256.as_str()) {
                return Err(format!("auth.tokens {:?}: duplicate token hash", t.name));
            }
        }
        if let Some(j) = &self.jwt {
            let secret = j.secret.is_some() || j.secret_file.is_some();
            let public = j.public_key_file.is_some();
            match j.algorithm {
                JwtAlgorithm::HS256
                    if !secret || public || (j.secret.is_some() && j.secret_file.is_some()) =>
                {
                    return Err(
                        "auth.jwt: HS256 needs exactly one of secret or secret_file, \
                                and no public_key_file"
                            .into(),
                    );
                }
                JwtAlgorithm::RS256 | JwtAlgorithm::ES256 | JwtAlgorithm::EdDSA
                    if !public || secret =>
                {
                    return Err(format!(
                        "auth.jwt: {:?} needs public_key_file and no secret",
                        j.algorithm
                    ));
                }
                _ => {}
            }
            if j.issuer.is_empty() || j.audience.is_empty() {
                return Err("auth.jwt: issuer and audience must not be empty".into());
            }
            if let Some(s) = &j.secret
                && s.len() < 32
            {
                return Err("auth.jwt: an HS256 secret must be at least 32 bytes".into());
            }
        }
        Ok(())
    }
}
