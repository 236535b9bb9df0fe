//! Security events: authentication failures, forbidden attempts, rate-limit hits, load shedding,
//! oversized or malformed requests, failed TLS handshakes.
//!
//! [`SecurityEvents::record`] logs each event as a structured `tracing` event (target
//! `sealtrail::security`), counts it in `sealtrail_security_events_total{kind}`, keeps it in a
//! bounded ring of recent events (served to admins at `GET /v1/admin/security-events`), and
//! broadcasts it to subscribers ([`SecurityEvents::subscribe`], e.g. a SIEM forwarder). A slow
//! subscriber misses events (it sees `RecvError::Lagged`); it never slows the server down.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Mutex;

use prometheus::IntCounterVec;
use serde::Serialize;
use tokio::sync::broadcast;

/// Longest path or detail text kept in an event (longer ones are cut at a char boundary).
const MAX_TEXT: usize = 256;
/// Events a subscriber may fall behind before it misses some.
const CHANNEL_CAPACITY: usize = 1024;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SecurityEventKind {
    /// Missing, malformed or invalid credentials (401).
    AuthFailure,
    /// Valid credentials without the role the request needs (403).
    Forbidden,
    /// A rate limit was reached (429).
    RateLimited,
    /// Shed under load (503).
    Overloaded,
    /// A body or batch over its size limit (413).
    Oversized,
    /// A request that could not be parsed or validated (400, 415).
    Malformed,
    /// A client too slow to send its request (408).
    Timeout,
    /// A TLS handshake that failed or timed out (bad or missing client certificate, ...).
    TlsHandshake,
}

impl SecurityEventKind {
    /// Every kind, in declaration order.
    pub const ALL: [SecurityEventKind; 8] = [
        SecurityEventKind::AuthFailure,
        SecurityEventKind::Forbidden,
        SecurityEventKind::RateLimited,
        SecurityEventKind::Overloaded,
        SecurityEventKind::Oversized,
        SecurityEventKind::Malformed,
        SecurityEventKind::Timeout,
        SecurityEventKind::TlsHandshake,
    ];

    /// The metrics label and log field.
    pub fn as_str(self) -> &'static str {
        match self {
            SecurityEventKind::AuthFailure => "auth_failure",
            SecurityEventKind::Forbidden => "forbidden",
            SecurityEventKind::RateLimited => "rate_limited",
            SecurityEventKind::Overloaded => "overloaded",
            SecurityEventKind::Oversized => "oversized",
            SecurityEventKind::Malformed => "malformed",
            SecurityEventKind::Timeout => "timeout",
            SecurityEventKind::TlsHandshake => "tls_handshake",
        }
    }
}

/// One security event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecurityEvent {
    /// Milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// What happened.
    pub kind: SecurityEventKind,
    /// The authenticated principal, when there was one.
    pub principal: Option<String>,
    /// The client's address, when known.
    pub client_ip: Option<IpAddr>,
    /// HTTP method (empty for connection-level events).
    pub method: String,
    /// Request path, without the query (empty for connection-level events).
    pub path: String,
    /// Why, for a human.
    pub detail: String,
}

impl SecurityEvent {
    /// An event stamped now; texts are cut to a bounded length.
    pub fn new(
        kind: SecurityEventKind,
        principal: Option<&str>,
        client_ip: Option<IpAddr>,
        method: &str,
        path: &str,
        detail: &str,
    ) -> Self {
        let time_ms = sealtrail_net::clock::unix_millis();
        SecurityEvent {
            time_ms,
            kind,
            principal: principal.map(|p| cut(p).to_owned()),
            client_ip,
            method: cut(method).to_owned(),
            path: cut(path).to_owned(),
            detail: cut(detail).to_owned(),
        }
    }
}

fn cut(s: &str) -> &str {
    if s.len() <= MAX_TEXT {
        return s;
    }
    let mut end = MAX_TEXT;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The recent-events ring, the broadcast channel and the counter.
#[derive(Debug)]
pub struct SecurityEvents {
    recent: Mutex<VecDeque<SecurityEvent>>,
    capacity: usize,
    tx: broadcast::Sender<SecurityEvent>,
    counter: Option<IntCounterVec>,
}

impl SecurityEvents {
    /// Keeps the last `capacity` events; counts into `counter` (label `kind`) when given.
    pub fn new(capacity: usize, counter: Option<IntCounterVec>) -> Self {
        let (tx, _) = broadcast::channel(CHANNEL_CAPACITY);
        SecurityEvents {
            recent: Mutex::new(VecDeque::with_capacity(capacity.min(1024))),
            capacity: capacity.max(1),
            tx,
            counter,
        }
    }

    /// Logs, counts, keeps and broadcasts one event.
    pub fn record(&self, ev: SecurityEvent) {
        tracing::warn!(
            target: "sealtrail::security",
            kind = ev.kind.as_str(),
            principal = ev.principal.as_deref(),
            client_ip = ev.client_ip.map(|ip| ip.to_string()),
            method = %ev.method,
            path = %ev.path,
            detail = %ev.detail,
            "security event"
        );
        if let Some(c) = &self.counter {
            c.with_label_values(&[ev.kind.as_str()]).inc();
        }
        {
            let mut r = self.recent.lock().unwrap_or_else(|p| p.into_inner());
            if r.len() == self.capacity {
                r.pop_front();
            }
            r.push_back(ev.clone());
        }
        // Err only means nobody is subscribed.
        let _ = self.tx.send(ev);
    }

    /// The most recent events, oldest first, at most `limit`.
    pub fn recent(&self, limit: usize) -> Vec<SecurityEvent> {
        let r = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        r.iter()
            .skip(r.len().saturating_sub(limit))
            .cloned()
            .collect()
    }

    /// A stream of every event recorded from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<SecurityEvent> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(n: usize) -> SecurityEvent {
        SecurityEvent::new(
            SecurityEventKind::Forbidden,
            None,
            None,
            "GET",
            &format!("/{n}"),
            "x",
        )
    }

    #[test]
    fn ring_is_bounded_and_subscribers_see_new_events() {
        let e = SecurityEvents::new(3, None);
        let mut rx = e.subscribe();
        for n in 0..5 {
            e.record(ev(n));
        }
        let paths: Vec<String> = e.recent(10).into_iter().map(|x| x.path).collect();
        assert_eq!(paths, ["/2", "/3", "/4"]);
        assert_eq!(e.recent(1)[0].path, "/4");
        assert_eq!(rx.try_recv().unwrap().path, "/0");
    }

    #[test]
    fn long_texts_are_cut_at_char_boundaries() {
        let long = "é".repeat(300);
        let x = SecurityEvent::new(
            SecurityEventKind::Malformed,
            Some(&long),
            None,
            "",
            &long,
            "",
        );
        assert!(x.path.len() <= MAX_TEXT && x.path.chars().all(|c| c == 'é'));
        assert!(x.principal.unwrap().len() <= MAX_TEXT);
    }
}
