//! Access control and abuse resistance: who a request comes from (API token, JWT, client
//! certificate, or anonymous), whether its role allows the route, and whether it may run now
//! (concurrency limit, per-IP and per-principal rate limits). Every refusal is a
//! [`SecurityEvent`](events::SecurityEvent).
//!
//! In scope: the [`guard`] middleware, the [`Guard`] state it runs on, API token creation and
//! the admin view of recent security events. TLS itself (handshakes, certificate loading) is in
//! `crate::tls`; this module only turns a verified client certificate into a principal.
//!
//! Roles are ordered: `reader` < `submitter` < `admin`; a role allows everything a lower one
//! does (a submitter can read the proofs of what it wrote even when reads are private).

mod config;
pub mod der;
pub mod events;
mod jwt;
mod middleware;

use std::net::IpAddr;
use std::sync::Arc;

use axum::http::{HeaderMap, header};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq as _;
use tokio::sync::Semaphore;

pub use config::{AnonymousAccess, AuthConfig, JwtAlgorithm, JwtConfig, TokenEntry};
pub use events::{SecurityEvent, SecurityEventKind, SecurityEvents};
pub use middleware::{guard, security_events};

use crate::http_error::ApiError;
use middleware::RouteClass;
use sealtrail_net::ratelimit::RateLimiter;

/// Every API token starts with this, so a bearer value is never mistaken for a JWT.
pub const TOKEN_PREFIX: &str = "stk_";
/// The principal of unauthenticated requests.
pub const ANONYMOUS: &str = "anonymous";
/// Security events kept for `GET /v1/admin/security-events`.
pub(crate) const RECENT_EVENTS: usize = 1000;

/// What a principal may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads, when reads are private.
    Reader,
    /// Appends entries (and reads).
    Submitter,
    /// Admin endpoints, private metrics, and everything else.
    Admin,
}

impl Role {
    /// Parses `reader`, `submitter` or `admin`.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "reader" => Some(Role::Reader),
            "submitter" => Some(Role::Submitter),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// The authenticated caller of a request (a request extension set by [`guard`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Recorded in every entry it appends: `token:NAME`, `jwt:SUBJECT`, `cert:NAME` or
    /// `anonymous`.
    pub name: String,
    /// `None` for anonymous callers and for credentials that carry no known role.
    pub role: Option<Role>,
}

impl Principal {
    fn anonymous() -> Self {
        Principal {
            name: ANONYMOUS.to_owned(),
            role: None,
        }
    }
}

/// What the connection layer knows about a request's client (a request extension set by
/// `sealtrail-net`'s accept loop; absent for in-process requests): its address and the principal
/// of a verified client certificate (`cert:...`).
pub use sealtrail_net::http::ConnInfo as Peer;

/// Checks a principal against the leaf envelope's rules (non-empty, at most
/// [`MAX_PRINCIPAL_LEN`](sealtrail_spec::envelope::MAX_PRINCIPAL_LEN) bytes, no control
/// characters).
pub fn check_principal(p: &str) -> Result<(), String> {
    sealtrail_spec::record::check_principal(p).map_err(|e| e.to_string())
}

/// A new random API token and the lowercase hex SHA-256 that goes into the configuration.
pub fn generate_token() -> Result<(String, String), getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    let token = format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    let hash = token_hash(&token);
    Ok((token, sealtrail_spec::to_hex(&hash)))
}

fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn unhex(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if s.len() != 64 {
        return None;
    }
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// The state [`guard`] runs on. Built once per server; its credentials and access rules (the
/// `[auth]` section) are replaced whole by [`Guard::reload`], its limits are not.
#[derive(Debug)]
pub struct Guard {
    /// The current `[auth]` rules: each request reads them once per check, so a reload applies
    /// to the requests that start after it while those in flight finish under the old ones.
    credentials: std::sync::RwLock<Arc<Credentials>>,
    inflight: Arc<Semaphore>,
    ip_limit: RateLimiter<IpAddr>,
    principal_limit: RateLimiter<String>,
    /// Every security event; subscribe here to forward them.
    pub events: Arc<SecurityEvents>,
}

/// An API token as the guard checks it: its hash, who it is, and when it stops being valid.
#[derive(Debug, Clone)]
struct Token {
    hash: [u8; 32],
    principal: Principal,
    /// ms since the Unix epoch; `None`: never.
    expires_ms: Option<u64>,
}

/// What `[auth]` (and the client-certificate role from `[tls]`) decides.
#[derive(Debug)]
struct Credentials {
    tokens: Vec<Token>,
    jwt: Option<jwt::JwtAuth>,
    cert_role: Option<Role>,
    anonymous_writes: bool,
    anonymous_content: bool,
    private_reads: bool,
    private_metrics: bool,
}

impl Credentials {
    /// Reads the settings (and the JWT key files).
    fn new(settings: &GuardSettings<'_>) -> Result<Self, GuardError> {
        let a = settings.auth;
        a.validate().map_err(GuardError::Invalid)?;
        let tokens = a
            .tokens
            .iter()
            .map(|t| {
                let hash = unhex(&t.sha256)
                    .ok_or_else(|| GuardError::Invalid("auth.tokens: bad sha256".into()))?;
                let expires_ms = t.expires_ms().map_err(GuardError::Invalid)?;
                Ok(Token {
                    hash,
                    principal: Principal {
                        name: format!("token:{}", t.name),
                        role: Some(t.role),
                    },
                    expires_ms,
                })
            })
            .collect::<Result<_, GuardError>>()?;
        Ok(Credentials {
            tokens,
            jwt: a
                .jwt
                .as_ref()
                .map(jwt::JwtAuth::new)
                .transpose()
                .map_err(GuardError::JwtKey)?,
            cert_role: settings.cert_role,
            anonymous_writes: a.anonymous_writes.allowed(settings.listen_is_loopback),
            anonymous_content: a.anonymous_content.allowed(settings.listen_is_loopback),
            private_reads: a.private_reads,
            private_metrics: a.private_metrics,
        })
    }
}

/// The token whose hash is `token`'s, comparing with every configured hash in constant time (no
/// early exit).
fn lookup_token<'a>(tokens: &'a [Token], token: &str) -> Option<&'a Token> {
    let h = token_hash(token);
    let mut found = None;
    for t in tokens {
        if bool::from(t.hash.ct_eq(&h)) {
            found = Some(t);
        }
    }
    found
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// What a [`Guard`] is built from: the `[auth]` section and the few facts of other sections it
/// needs (the caller, which holds the whole configuration, gathers them).
#[derive(Debug, Clone, Copy)]
pub struct GuardSettings<'a> {
    /// The `[auth]` section.
    pub auth: &'a AuthConfig,
    /// Concurrency and rate limits (from `[limits]`).
    pub limits: RequestLimits,
    /// The role of requests with a verified client certificate (from `[tls]`).
    pub cert_role: Option<Role>,
    /// Whether the server listens on a loopback address (`anonymous_writes = "loopback"`).
    pub listen_is_loopback: bool,
}

/// The guard's concurrency and rate limits; see `[limits]` in the example configuration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RequestLimits {
    /// Requests handled at once; more are shed with 503.
    pub max_concurrent_requests: usize,
    /// Sustained requests per second per principal (0 = no limit).
    pub principal_rate_per_sec: f64,
    /// Burst per principal.
    pub principal_burst: u32,
    /// Sustained requests per second per client IP address (0 = no limit).
    pub ip_rate_per_sec: f64,
    /// Burst per client IP address.
    pub ip_burst: u32,
    /// Most rate-limit buckets kept per kind.
    pub rate_limit_max_keys: usize,
}

/// Why a [`Guard`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    /// The `[auth]` section is inconsistent or holds a malformed value.
    #[error("{0}")]
    Invalid(String),
    /// The JWT verification key could not be read or used.
    #[error("{0}")]
    JwtKey(String),
}

impl Guard {
    /// Builds the guard from its settings (reads JWT key files). `counter` counts events by kind.
    pub fn new(
        settings: GuardSettings<'_>,
        counter: Option<prometheus::IntCounterVec>,
    ) -> Result<Self, GuardError> {
        let credentials = Credentials::new(&settings)?;
        let l = &settings.limits;
        Ok(Guard {
            credentials: std::sync::RwLock::new(Arc::new(credentials)),
            inflight: Arc::new(Semaphore::new(l.max_concurrent_requests)),
            ip_limit: RateLimiter::new(l.ip_rate_per_sec, l.ip_burst, l.rate_limit_max_keys),
            principal_limit: RateLimiter::new(
                l.principal_rate_per_sec,
                l.principal_burst,
                l.rate_limit_max_keys,
            ),
            events: Arc::new(SecurityEvents::new(RECENT_EVENTS, counter)),
        })
    }

    /// Replaces the credentials and access rules with those of `settings` (a re-read `[auth]`
    /// section: tokens, JWT keys, anonymous access, private reads and metrics). On an error the
    /// current ones stay. Limits (`settings.limits`) are not changed: they need a restart.
    pub fn reload(&self, settings: GuardSettings<'_>) -> Result<(), GuardError> {
        let new = Arc::new(Credentials::new(&settings)?);
        match self.credentials.write() {
            Ok(mut c) => *c = new,
            Err(poisoned) => *poisoned.into_inner() = new,
        }
        Ok(())
    }

    /// The current credentials.
    fn creds(&self) -> Arc<Credentials> {
        match self.credentials.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Whether requests without credentials may append.
    pub fn anonymous_writes(&self) -> bool {
        self.creds().anonymous_writes
    }

    /// Whether requests without credentials may read private records.
    pub fn anonymous_content(&self) -> bool {
        self.creds().anonymous_content
    }

    /// Whether `who` may read private records (principal and payload): the `reader` role or
    /// higher, or anyone when `anonymous_content` allows it.
    pub fn may_read_content(&self, who: &Principal) -> bool {
        who.role.is_some_and(|r| r >= Role::Reader)
            || (who.name == ANONYMOUS && self.creds().anonymous_content)
    }

    /// Whether any credential (token, JWT, client certificate role) is configured.
    pub fn has_credentials(&self) -> bool {
        let c = self.creds();
        !c.tokens.is_empty() || c.jwt.is_some() || c.cert_role.is_some()
    }

    /// Who sent the request. Credentials that are present must be valid: a bad token is never
    /// downgraded to anonymous.
    fn authenticate(&self, headers: &HeaderMap, peer: Option<&Peer>) -> Result<Principal, String> {
        let c = self.creds();
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Ok(match peer.and_then(|p| p.cert_principal.as_ref()) {
                Some(name) => Principal {
                    name: name.to_string(),
                    role: c.cert_role,
                },
                None => Principal::anonymous(),
            });
        };
        let value = value
            .to_str()
            .map_err(|_| "the Authorization header is not visible ASCII".to_owned())?;
        let (scheme, credential) = value.split_once(' ').unwrap_or((value, ""));
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err("only Bearer credentials are accepted".into());
        }
        let credential = credential.trim();
        if credential.starts_with(TOKEN_PREFIX) {
            let t = lookup_token(&c.tokens, credential).ok_or("unknown API token")?;
            return match t.expires_ms {
                Some(at) if now_ms() >= at => Err(format!(
                    "the API token of {} expired at {}",
                    t.principal.name,
                    sealtrail_spec::rfc3339_ms(at)
                )),
                _ => Ok(t.principal.clone()),
            };
        }
        let Some(jwt) = &c.jwt else {
            return Err("unknown bearer token".into());
        };
        let (name, role) = jwt.verify(credential)?;
        let name = format!("jwt:{name}");
        check_principal(&name).map_err(|e| format!("the JWT principal is unusable: {e}"))?;
        Ok(Principal { name, role })
    }

    /// 401 when the route needs credentials the caller did not present, 403 when its role is
    /// too low.
    fn authorise(&self, class: RouteClass, who: &Principal) -> Result<(), ApiError> {
        let c = self.creds();
        let need = match class {
            RouteClass::Public => None,
            RouteClass::Read => c.private_reads.then_some(Role::Reader),
            RouteClass::Append if c.anonymous_writes && who.name == ANONYMOUS => None,
            RouteClass::Append => Some(Role::Submitter),
            RouteClass::Metrics => c.private_metrics.then_some(Role::Admin),
            RouteClass::Admin => Some(Role::Admin),
        };
        let Some(need) = need else { return Ok(()) };
        match who.role {
            _ if who.name == ANONYMOUS => Err(ApiError::Unauthorized(
                "credentials required: send Authorization: Bearer TOKEN".into(),
            )),
            Some(r) if r >= need => Ok(()),
            _ => Err(ApiError::Forbidden(format!(
                "{} lacks the {need:?} role this request needs",
                who.name
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_hash_and_parse() {
        let (t, h) = generate_token().unwrap();
        assert!(t.starts_with(TOKEN_PREFIX));
        assert_eq!(t.len(), TOKEN_PREFIX.len() + 43);
        assert_eq!(unhex(&h), Some(token_hash(&t)));
        let (t2, _) = generate_token().unwrap();
        assert_ne!(t, t2);
        assert_eq!(unhex("zz"), None);
        assert_eq!(unhex(&"g".repeat(64)), None);
    }

    #[test]
    fn roles_are_ordered() {
        assert!(Role::Reader < Role::Submitter && Role::Submitter < Role::Admin);
        assert_eq!(Role::parse("admin"), Some(Role::Admin));
        assert_eq!(Role::parse("Admin"), None);
    }
}
