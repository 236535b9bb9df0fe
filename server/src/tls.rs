//! TLS with rustls (ring provider) and mutual TLS: certificate loading, reloading without a
//! restart, and the principal of a verified client certificate.
//!
//! [`Tls::load`] reads the certificate chain, key and (for mTLS) the client CA; [`Tls::reload`]
//! reads them again and swaps the configuration for new connections (existing ones keep theirs);
//! a failed reload keeps the old configuration. `serve::reload_on_sighup` (started by `main`)
//! calls `reload` on SIGHUP; `Server::run` bounds every handshake by
//! `limits.tls_handshake_timeout_secs`.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use serde::{Deserialize, Serialize};

use crate::auth::{Role, der};

/// The `[tls]` section. TLS is on when `cert_file` and `key_file` are set.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first. Flag `--tls-cert`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1). Flag `--tls-key`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    /// PEM CA certificates for client certificates; setting it turns on mutual TLS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_ca_file: Option<PathBuf>,
    /// Whether every client must present a certificate (`required`, the default) or may
    /// authenticate otherwise (`optional`).
    pub client_auth: ClientAuth,
    /// Which name of a client certificate is its principal (`cert:NAME`).
    pub client_principal: ClientName,
    /// The role of client-certificate principals (default `submitter`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_role: Option<Role>,
}

/// Whether a client certificate is required.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    /// Handshakes without a valid client certificate fail.
    #[default]
    Required,
    /// A client may present no certificate (then tokens, JWTs or anonymous rules apply); one it
    /// presents must still be valid.
    Optional,
}

/// The certificate name used as principal.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ClientName {
    /// The subject common name.
    #[default]
    Cn,
    /// The first DNS SAN.
    Dns,
    /// The first e-mail SAN.
    Email,
    /// The first URI SAN (e.g. a SPIFFE ID).
    Uri,
}

impl TlsConfig {
    /// Whether TLS is on.
    pub fn enabled(&self) -> bool {
        self.cert_file.is_some()
    }

    /// Checks the combination of options (files are read by [`Tls::load`]).
    pub fn validate(&self) -> Result<(), String> {
        if self.cert_file.is_some() != self.key_file.is_some() {
            return Err("tls.cert_file and tls.key_file go together".into());
        }
        if !self.enabled() && self.client_ca_file.is_some() {
            return Err("tls.client_ca_file needs tls.cert_file and tls.key_file".into());
        }
        Ok(())
    }

    /// The role given to client-certificate principals, when mutual TLS is on.
    pub fn cert_role(&self) -> Option<Role> {
        self.client_ca_file
            .as_ref()
            .map(|_| self.client_role.unwrap_or(Role::Submitter))
    }
}

/// A TLS setting that cannot be loaded.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TlsError(String);

/// The server's TLS state: `sealtrail-net`'s acceptor (swappable by [`Tls::reload`]) and how
/// client certificates name principals.
#[derive(Debug)]
pub struct Tls {
    config: TlsConfig,
    inner: Arc<sealtrail_net::tls::Tls>,
}

impl Tls {
    /// Loads the configured files; `None` when TLS is off.
    pub fn load(c: &TlsConfig) -> Result<Option<Self>, TlsError> {
        let (Some(cert), Some(key)) = (&c.cert_file, &c.key_file) else {
            return Ok(None);
        };
        let inner = sealtrail_net::tls::Tls::load(sealtrail_net::tls::TlsFiles {
            cert_file: cert.clone(),
            key_file: key.clone(),
            client_ca_file: c.client_ca_file.clone(),
            client_cert_optional: c.client_auth == ClientAuth::Optional,
        })
        .map_err(|e| TlsError(e.to_string()))?;
        Ok(Some(Tls {
            config: c.clone(),
            inner: Arc::new(inner),
        }))
    }

    /// Reads the files again; new connections use them. On error the old ones stay in use.
    pub fn reload(&self) -> Result<(), TlsError> {
        self.inner.reload().map_err(|e| TlsError(e.to_string()))
    }

    /// The shared acceptor state.
    pub fn acceptor(&self) -> Arc<sealtrail_net::tls::Tls> {
        self.inner.clone()
    }

    /// The principal (`cert:NAME`) of a verified client certificate: `Ok(None)` when none was
    /// presented, an error when the certificate lacks the configured name (or it is not a usable
    /// principal); such a client is refused rather than treated as anonymous.
    pub fn client_principal(
        &self,
        certs: Option<&[CertificateDer<'_>]>,
    ) -> Result<Option<Arc<str>>, String> {
        let Some(leaf) = certs.and_then(<[_]>::first) else {
            return Ok(None);
        };
        let names = der::cert_names(leaf.as_ref());
        let kind = self.config.client_principal;
        let name = match kind {
            ClientName::Cn => names.cn,
            ClientName::Dns => names.dns.into_iter().next(),
            ClientName::Email => names.email.into_iter().next(),
            ClientName::Uri => names.uri.into_iter().next(),
        }
        .filter(|n| !n.is_empty())
        .ok_or_else(|| format!("the client certificate has no {kind:?} name"))?;
        let p = format!("cert:{name}");
        crate::auth::check_principal(&p)
            .map_err(|e| format!("the client certificate name is unusable: {e}"))?;
        Ok(Some(p.into()))
    }
}
