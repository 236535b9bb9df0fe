//! The [`guard`] middleware, which runs every request past the checks of
//! [`Guard`](super::Guard) in order: load shedding, the per-IP limit, authentication,
//! authorisation by route class, the per-principal limit. Also the admin view of recent security
//! events.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use std::sync::Arc;

use super::{
    ANONYMOUS, Guard, Peer, RECENT_EVENTS, SecurityEvent, SecurityEventKind, SecurityEvents,
};
use crate::http_error::{ApiError, ErrorCategory, QueryResult};

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RouteClass {
    /// `/livez`, `/readyz`: never limited or authenticated (orchestrators probe them). Also the
    /// web explorer's static files under `/ui` (`crate::ui`): they hold no data, and the API
    /// calls the page makes carry the user's credentials.
    Public,
    /// The read API.
    Read,
    /// `POST /v1/entries`, `POST /v1/entries/batch`.
    Append,
    /// `/metrics`.
    Metrics,
    /// `/v1/admin/...`.
    Admin,
}

fn classify(method: &Method, matched: Option<&str>, path: &str) -> RouteClass {
    match matched {
        Some("/livez" | "/readyz") => RouteClass::Public,
        _ if path == "/ui" || path.starts_with("/ui/") => RouteClass::Public,
        Some("/metrics") => RouteClass::Metrics,
        Some("/v1/entries" | "/v1/entries/batch") if method == Method::POST => RouteClass::Append,
        _ if path.starts_with("/v1/admin") => RouteClass::Admin,
        _ => RouteClass::Read,
    }
}

/// Facts about one request for its security events.
struct Ctx<'a> {
    events: &'a SecurityEvents,
    method: Method,
    /// The request's URI (a shared, reference-counted copy: only refusals read it).
    uri: Uri,
    ip: Option<IpAddr>,
}

impl Ctx<'_> {
    fn record(&self, kind: SecurityEventKind, principal: Option<&str>, detail: &str) {
        self.events.record(SecurityEvent::new(
            kind,
            principal,
            self.ip,
            self.method.as_str(),
            self.uri.path(),
            detail,
        ));
    }
}

fn rate_limited(wait: Duration, what: &str) -> Response {
    ApiError::RateLimited {
        message: format!("rate limit reached for this {what}; retry later"),
        retry_after_secs: sealtrail_net::ratelimit::retry_after_secs(wait),
    }
    .into_response()
}

/// The access-control middleware: load shedding, per-IP limit, authentication, authorisation,
/// per-principal limit, then the handler (with the [`Principal`] as a request extension). Records
/// a security event for every refusal, and for oversized, malformed or too-slow requests the
/// handler rejects.
pub async fn guard(State(g): State<Arc<Guard>>, mut req: Request, next: Next) -> Response {
    let matched = req.extensions().get::<MatchedPath>();
    let class = classify(
        req.method(),
        matched.map(MatchedPath::as_str),
        req.uri().path(),
    );
    if class == RouteClass::Public {
        return next.run(req).await;
    }
    let peer = req.extensions().get::<Peer>().cloned();
    let ctx = Ctx {
        events: &g.events,
        method: req.method().clone(),
        uri: req.uri().clone(),
        ip: peer.as_ref().map(|p| p.addr.ip()),
    };
    let Ok(_permit) = g.inflight.clone().try_acquire_owned() else {
        ctx.record(
            SecurityEventKind::Overloaded,
            None,
            "concurrent request limit",
        );
        return ApiError::Busy("too many requests in progress; retry shortly".into())
            .into_response();
    };
    if let Some(ip) = ctx.ip
        && let Err(wait) = g.ip_limit.check(&ip, Instant::now())
    {
        ctx.record(SecurityEventKind::RateLimited, None, "per-IP limit");
        return rate_limited(wait, "client address");
    }
    let who = match g.authenticate(req.headers(), peer.as_ref()) {
        Ok(p) => p,
        Err(why) => {
            ctx.record(SecurityEventKind::AuthFailure, None, &why);
            return ApiError::Unauthorized(why).into_response();
        }
    };
    if let Err(e) = g.authorise(class, &who) {
        let kind = match e {
            ApiError::Unauthorized(_) => SecurityEventKind::AuthFailure,
            _ => SecurityEventKind::Forbidden,
        };
        ctx.record(kind, Some(&who.name), &e.to_string());
        return e.into_response();
    }
    // Anonymous callers are many clients under one name: the per-IP limit covers them.
    if who.name != ANONYMOUS
        && let Err(wait) = g.principal_limit.check(&who.name, Instant::now())
    {
        ctx.record(
            SecurityEventKind::RateLimited,
            Some(&who.name),
            "per-principal limit",
        );
        return rate_limited(wait, "principal");
    }
    req.extensions_mut().insert(who.clone());
    let resp = next.run(req).await;
    if let Some(ErrorCategory(cat)) = resp.extensions().get::<ErrorCategory>() {
        let kind = match *cat {
            "payload_too_large" => Some(SecurityEventKind::Oversized),
            "bad_request" | "unsupported_media_type" => Some(SecurityEventKind::Malformed),
            "timeout" => Some(SecurityEventKind::Timeout),
            _ => None,
        };
        if let Some(kind) = kind {
            ctx.record(kind, Some(&who.name), cat);
        }
    }
    resp
}

/// `GET /v1/admin/security-events?limit=N`: the most recent security events, oldest first
/// (admin role).
pub async fn security_events(
    State(guard): State<Arc<Guard>>,
    query: QueryResult,
) -> Result<Response, ApiError> {
    let axum::extract::Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    if let Some(k) = q.keys().find(|k| k.as_str() != "limit") {
        return Err(ApiError::BadRequest(format!("unknown parameter {k:?}")));
    }
    let limit = match q.get("limit") {
        None => 100,
        Some(v) => sealtrail_spec::parse_decimal(v)
            .filter(|n| (1..=RECENT_EVENTS as u64).contains(n))
            .ok_or_else(|| ApiError::BadRequest(format!("limit must be 1 to {RECENT_EVENTS}")))?
            as usize,
    };
    let events = guard.events.recent(limit);
    let counts: serde_json::Map<String, serde_json::Value> = guard
        .events
        .counts()
        .into_iter()
        .map(|(k, n)| (k.as_str().to_owned(), n.into()))
        .collect();
    Ok(axum::Json(serde_json::json!({ "events": events, "counts": counts })).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_classified() {
        use RouteClass::*;
        let c = |m: Method, r: Option<&str>, p: &str| classify(&m, r, p);
        assert_eq!(c(Method::GET, Some("/livez"), "/livez"), Public);
        assert_eq!(c(Method::POST, Some("/v1/entries"), "/v1/entries"), Append);
        assert_eq!(c(Method::GET, Some("/v1/entries"), "/v1/entries"), Read);
        assert_eq!(
            c(Method::POST, Some("/v1/entries/batch"), "/v1/entries/batch"),
            Append
        );
        assert_eq!(c(Method::GET, Some("/metrics"), "/metrics"), Metrics);
        assert_eq!(c(Method::GET, None, "/v1/admin/nothing"), Admin);
        assert_eq!(c(Method::GET, None, "/nothing"), Read);
        assert_eq!(c(Method::GET, Some("/ui"), "/ui"), Public);
        assert_eq!(c(Method::GET, Some("/ui/{*file}"), "/ui/app.js"), Public);
        assert_eq!(c(Method::GET, None, "/ui/a/b"), Public);
        assert_eq!(c(Method::GET, None, "/uix"), Read);
    }
}
