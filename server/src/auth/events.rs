//! Security events: authentication failures, forbidden attempts, rate-limit hits, load shedding,
//! oversized or malformed requests, failed TLS handshakes.
//!
//! [`SecurityEvents::record`] logs each event as a structured `tracing` event (target
//! `sealtrail::security`), counts it in `sealtrail_security_events_total{kind}` and per kind
//! here, keeps it in a bounded ring **per kind** of recent events (served to admins at
//! `GET /v1/admin/security-events`; a flood of one kind cannot push another kind out, and a
//! repeat of the newest event of its kind only counts as a repeat of it), and broadcasts it to
//! subscribers ([`SecurityEvents::subscribe`], e.g. a SIEM forwarder). A slow
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
    /// Later occurrences coalesced into this one: the same kind, principal, address, method,
    /// path and detail, each arriving while this was the newest event of its kind (0: none).
    pub repeats: u64,
    /// Time of the latest of them, ms since the Unix epoch (`time_ms` if none).
    pub last_time_ms: u64,
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
            repeats: 0,
            last_time_ms: time_ms,
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

/// The recent events of each kind, and how many of each kind were recorded.
#[derive(Debug, Default)]
struct Recent {
    by_kind: [VecDeque<SecurityEvent>; SecurityEventKind::ALL.len()],
    counts: [u64; SecurityEventKind::ALL.len()],
}

/// The per-kind recent-events rings, the broadcast channel and the counter.
#[derive(Debug)]
pub struct SecurityEvents {
    recent: Mutex<Recent>,
    per_kind: usize,
    tx: broadcast::Sender<SecurityEvent>,
    counter: Option<IntCounterVec>,
}

fn same_source(a: &SecurityEvent, b: &SecurityEvent) -> bool {
    a.principal == b.principal
        && a.client_ip == b.client_ip
        && a.method == b.method
        && a.path == b.path
        && a.detail == b.detail
}

impl SecurityEvents {
    /// Keeps the last `capacity` events of each kind (repeats coalesced); counts into `counter`
    /// (label `kind`) when given.
    pub fn new(capacity: usize, counter: Option<IntCounterVec>) -> Self {
        let (tx, _) = broadcast::channel(CHANNEL_CAPACITY);
        SecurityEvents {
            recent: Mutex::new(Recent::default()),
            per_kind: capacity.max(1),
            tx,
            counter,
        }
    }

    /// Events recorded since start, by kind (every kind listed).
    pub fn counts(&self) -> Vec<(SecurityEventKind, u64)> {
        let r = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        SecurityEventKind::ALL.into_iter().zip(r.counts).collect()
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
            let k = SecurityEventKind::ALL
                .iter()
                .position(|k| *k == ev.kind)
                .unwrap_or_default();
            r.counts[k] += 1;
            let ring = &mut r.by_kind[k];
            match ring.back_mut() {
                Some(last) if same_source(last, &ev) => {
                    last.repeats += 1;
                    last.last_time_ms = ev.time_ms;
                }
                _ => {
                    if ring.len() == self.per_kind {
                        ring.pop_front();
                    }
                    ring.push_back(ev.clone());
                }
            }
        }
        // Err only means nobody is subscribed.
        let _ = self.tx.send(ev);
    }

    /// The most recent events of every kind, oldest first (by their latest occurrence), at most
    /// `limit`.
    pub fn recent(&self, limit: usize) -> Vec<SecurityEvent> {
        let r = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        let mut all: Vec<SecurityEvent> = r.by_kind.iter().flatten().cloned().collect();
        all.sort_by_key(|e| e.last_time_ms);
        let skip = all.len().saturating_sub(limit);
        all.split_off(skip)
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
    fn a_flood_of_one_kind_hides_no_other_and_repeats_coalesce() {
        let e = SecurityEvents::new(3, None);
        let forbidden = ev(1);
        e.record(forbidden.clone());
        let flood = |n: usize| {
            SecurityEvent::new(
                SecurityEventKind::AuthFailure,
                None,
                Some("10.0.0.9".parse().unwrap()),
                "POST",
                "/v1/entries",
                &format!("unknown API token {}", n % 2),
            )
        };
        // Alternating details: no coalescing, the ring of that kind rolls over.
        for n in 0..1000 {
            e.record(flood(n));
        }
        let recent = e.recent(1000);
        assert_eq!(recent.len(), 4, "3 auth failures and the forbidden one");
        assert!(
            recent
                .iter()
                .any(|x| x.kind == SecurityEventKind::Forbidden)
        );
        // The same event again and again: one entry, counted.
        let same = SecurityEvents::new(3, None);
        for _ in 0..1000 {
            same.record(flood(0));
        }
        let recent = same.recent(10);
        assert_eq!(recent.len(), 1);
        assert_eq!(recent[0].repeats, 999);
        assert!(recent[0].last_time_ms >= recent[0].time_ms);
        let counts = same.counts();
        assert_eq!(counts[0], (SecurityEventKind::AuthFailure, 1000));
        assert!(counts[1..].iter().all(|(_, n)| *n == 0));
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
