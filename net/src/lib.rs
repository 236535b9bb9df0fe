//! `sealtrail-net`: the serving plumbing the sealtrail server and witness share, so both get the
//! same hardening from one piece of code: an HTTP/1.1 accept loop with a connection limit, a
//! header-read timeout and graceful shutdown ([`http`]); TLS and mutual TLS with rustls and
//! certificate reload ([`tls`]); SIGTERM/SIGINT/SIGHUP handling ([`signal`]); and files that hold
//! secrets, created 0600 and refused when others can read them ([`secret`]); TOML configuration
//! files ([`config`]) and structured logs ([`logging`]). Both also sign with a key kept in a
//! secret file ([`keyfile`]), limit request rates with token buckets ([`ratelimit`]), bound what clients can make them hold
//! ([`budget`], [`body`]), retry with
//! exponential back-off ([`backoff`]) and stamp Unix time ([`clock`]).
//!
//! Nothing here knows about logs, witnesses or authentication: callers pass an axum router and,
//! for mutual TLS, a function naming the principal of a client certificate. The only formats it
//! knows are `sealtrail-spec`'s key formats, to store keys.

pub mod backoff;
pub mod body;
pub mod budget;
pub mod clock;
pub mod config;
pub mod http;
pub mod keyfile;
pub mod logging;
pub mod ratelimit;
pub mod secret;
pub mod signal;
pub mod tls;
