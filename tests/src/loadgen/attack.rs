//! Resource-exhaustion attacks, as an outsider with one address would make them, each bounded in
//! connections and time, and what the target does meanwhile: its resident memory (sampled from
//! `/proc`), `/livez` latency from another address, and whether a well-behaved client's appends
//! succeed. After the attack every socket is closed and the target's memory is watched until it
//! returns near its baseline.
//!
//! - [`Scenario::UnreadResponses`]: connections with a tiny receive buffer ask for large pages of
//!   entries and never read the answers.
//! - [`Scenario::SlowBodies`]: requests declare a large `Content-Length`, send all of the body but
//!   its last byte, and wait; refused or closed ones are made again.
//! - [`Scenario::IdleSockets`]: many connections that send nothing; closed ones are opened again.
//!
//! Attack sockets are bound to [`AttackOptions::from`] (by default 127.0.0.2, on Linux a loopback
//! address like 127.0.0.1), so a per-address connection cap tells the attacker from the probes.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;

use super::LoadError;
use super::stats::{Latency, latency, proc_use};

/// Which attack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// Large pages asked for on connections that never read.
    UnreadResponses,
    /// Request bodies declared large and never finished.
    SlowBodies,
    /// Connections that send nothing.
    IdleSockets,
}

/// One attack's settings; [`AttackOptions::new`] gives the defaults of each scenario.
#[derive(Debug, Clone)]
pub struct AttackOptions {
    /// The attack.
    pub scenario: Scenario,
    /// The target, a loopback address.
    pub target: SocketAddr,
    /// The address attack sockets are bound to.
    pub from: IpAddr,
    /// Attack connections held at once.
    pub connections: usize,
    /// How long the attack lasts.
    pub duration: Duration,
    /// The target's process id, whose memory is sampled.
    pub pid: u32,
    /// Sent as `Authorization: Bearer` by the attack (pages) and the well-behaved client.
    pub token: Option<String>,
    /// What the attack asks for or posts to. Unread responses: the page path (by default
    /// `/v1/entries?start=S&limit=1000`, over entries the attack appends first). Slow bodies:
    /// `/v1/entries/batch`.
    pub path: Option<String>,
    /// Slow bodies: the declared `Content-Length`.
    pub body_bytes: usize,
    /// Unread responses: entries appended first for the pages, and their payload size.
    pub page_entries: usize,
    /// Unread responses: the payload size of those entries.
    pub payload_bytes: usize,
    /// How long an attack connection waits before it is made again after the target closed or
    /// refused it.
    pub reconnect: Duration,
    /// Whether a well-behaved client appends entries during the attack (the witness has none).
    pub appends: bool,
    /// Longest wait for one `/livez` answer or one append before it counts as failed.
    pub probe_timeout: Duration,
    /// Longest wait, after the attack, for the memory to come back near its baseline.
    pub settle: Duration,
    /// Then how long the memory is watched still (it must stay near the baseline).
    pub linger: Duration,
}

impl AttackOptions {
    /// The defaults of `scenario` against `target`, whose process is `pid`: the sizes the
    /// hardening issue measured (150 unread pages of 1000 8 KB entries, 300 unfinished 8 MiB
    /// bodies, 4200 idle sockets), for 20 seconds.
    pub fn new(scenario: Scenario, target: SocketAddr, pid: u32) -> Self {
        AttackOptions {
            scenario,
            target,
            from: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)),
            connections: match scenario {
                Scenario::UnreadResponses => 150,
                Scenario::SlowBodies => 300,
                Scenario::IdleSockets => 4200,
            },
            duration: Duration::from_secs(20),
            pid,
            token: None,
            path: None,
            body_bytes: 8 << 20,
            page_entries: 1000,
            payload_bytes: 8000,
            appends: true,
            reconnect: Duration::from_secs(1),
            probe_timeout: Duration::from_secs(5),
            settle: Duration::from_secs(60),
            linger: Duration::from_secs(30),
        }
    }
}

/// What happened.
#[derive(Debug, Clone, Serialize)]
pub struct AttackReport {
    /// The attack.
    pub scenario: Scenario,
    /// Attack connections asked for at once.
    pub connections: usize,
    /// Seconds the attack lasted.
    pub duration_s: f64,
    /// Attack connections opened (reconnections included).
    pub opened: u64,
    /// Most attack connections open at once, as the attacker saw them.
    pub open_peak: usize,
    /// Attack connections the target closed or answered with a refusal (503, 408, 413).
    pub refused: u64,
    /// The target's resident memory before the attack, MiB.
    pub rss_baseline_mib: f64,
    /// Its highest sample during the attack, MiB.
    pub rss_peak_mib: f64,
    /// Its memory when it came back near the baseline (within a quarter, or 32 MiB), or at the
    /// end of the wait, MiB.
    pub rss_after_mib: f64,
    /// Seconds after the attack until that sample.
    pub settle_s: f64,
    /// Its highest sample in the [`AttackOptions::linger`] seconds after that, MiB.
    pub rss_linger_max_mib: f64,
    /// `/livez` during the attack, one new connection each, every 100 ms.
    pub livez: Probes,
    /// The well-behaved client's appends during the attack, one at a time.
    pub appends: Probes,
}

/// Requests of a well-behaved client during the attack.
#[derive(Debug, Clone, Serialize)]
pub struct Probes {
    /// Answered with success.
    pub ok: u64,
    /// Failed: an error status, a timeout or a connection error.
    pub failed: u64,
    /// The first failure.
    pub first_failure: Option<String>,
    /// Latency of the successful ones, milliseconds.
    pub latency_ms: Latency,
}

/// Counters the attack workers share.
#[derive(Default)]
struct Tally {
    opened: AtomicU64,
    open: AtomicUsize,
    open_peak: AtomicUsize,
    refused: AtomicU64,
}

impl Tally {
    fn opened(&self) {
        self.opened.fetch_add(1, Ordering::Relaxed);
        let now = self.open.fetch_add(1, Ordering::Relaxed) + 1;
        self.open_peak.fetch_max(now, Ordering::Relaxed);
    }

    fn closed(&self, refused: bool) {
        self.open.fetch_sub(1, Ordering::Relaxed);
        if refused {
            self.refused.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn rss_mib(pid: u32) -> Option<f64> {
    proc_use(&pid.to_string()).map(|(_, rss, _)| rss as f64 / 1024.0)
}

/// Runs one attack and reports. Errors only when it cannot start (the target does not answer,
/// its memory cannot be read, or the pages cannot be prepared).
pub async fn attack(opts: AttackOptions) -> Result<AttackReport, LoadError> {
    if !opts.target.ip().is_loopback() || !opts.from.is_loopback() {
        return Err(LoadError::Usage(
            "attacks are made on loopback addresses only".into(),
        ));
    }
    raise_fd_limit();
    let baseline = rss_mib(opts.pid).ok_or_else(|| {
        LoadError::Usage(format!("cannot read the memory of process {}", opts.pid))
    })?;
    let path = match (opts.scenario, &opts.path) {
        (_, Some(p)) => p.clone(),
        (Scenario::UnreadResponses, None) => {
            let start = prepare_pages(&opts).await?;
            format!("/v1/entries?start={start}&limit={}", opts.page_entries)
        }
        (Scenario::SlowBodies, None) => "/v1/entries/batch".to_owned(),
        (Scenario::IdleSockets, None) => "/".to_owned(),
    };
    let baseline = rss_mib(opts.pid).unwrap_or(baseline);
    let (stop_tx, stop) = watch::channel(false);
    let tally = Arc::new(Tally::default());
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..opts.connections {
        let (opts, path, tally, stop) = (opts.clone(), path.clone(), tally.clone(), stop.clone());
        workers.spawn(async move { attacker(&opts, &path, &tally, stop).await });
    }
    let livez = tokio::spawn(probe_loop(opts.clone(), stop.clone(), false));
    let appends = opts
        .appends
        .then(|| tokio::spawn(probe_loop(opts.clone(), stop.clone(), true)));
    let started = Instant::now();
    let mut peak = baseline;
    while started.elapsed() < opts.duration {
        tokio::time::sleep(Duration::from_millis(100)).await;
        peak = peak.max(rss_mib(opts.pid).unwrap_or(0.0));
    }
    let _ = stop_tx.send(true);
    while workers.join_next().await.is_some() {}
    let duration_s = started.elapsed().as_secs_f64();
    let livez = livez.await.unwrap_or_else(|e| failed_probes(e.to_string()));
    let appends = match appends {
        Some(a) => a.await.unwrap_or_else(|e| failed_probes(e.to_string())),
        None => failed_probes("no appends asked for".into()),
    };
    // Every attack socket is closed now: how long until the memory is back near the baseline
    // (within a quarter, or 32 MiB)?
    let near = baseline + (baseline / 4.0).max(32.0);
    let settling = Instant::now();
    let mut after = rss_mib(opts.pid).unwrap_or(0.0);
    while after > near && settling.elapsed() < opts.settle {
        tokio::time::sleep(Duration::from_millis(100)).await;
        after = rss_mib(opts.pid).unwrap_or(0.0);
    }
    let settle_s = settling.elapsed().as_secs_f64();
    let lingering = Instant::now();
    let mut linger_max = after;
    while lingering.elapsed() < opts.linger {
        tokio::time::sleep(Duration::from_millis(250)).await;
        linger_max = linger_max.max(rss_mib(opts.pid).unwrap_or(0.0));
    }
    Ok(AttackReport {
        scenario: opts.scenario,
        connections: opts.connections,
        duration_s,
        opened: tally.opened.load(Ordering::Relaxed),
        open_peak: tally.open_peak.load(Ordering::Relaxed),
        refused: tally.refused.load(Ordering::Relaxed),
        rss_baseline_mib: baseline,
        rss_peak_mib: peak,
        rss_after_mib: after,
        settle_s,
        rss_linger_max_mib: linger_max,
        livez,
        appends,
    })
}

fn failed_probes(why: String) -> Probes {
    Probes {
        ok: 0,
        failed: 0,
        first_failure: Some(why),
        latency_ms: latency(Vec::new()),
    }
}

/// Lifts the soft open-file limit to the hard one: thousands of sockets are the point.
fn raise_fd_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let _ = setrlimit(
            Resource::Nofile,
            rustix::process::Rlimit {
                current: limit.maximum,
                maximum: limit.maximum,
            },
        );
    }
}

async fn connect_from(
    from: IpAddr,
    to: SocketAddr,
    recv_buffer: Option<u32>,
) -> std::io::Result<TcpStream> {
    let s = match to {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    if let Some(n) = recv_buffer {
        s.set_recv_buffer_size(n)?;
    }
    s.bind(SocketAddr::new(from, 0))?;
    s.connect(to).await
}

fn head(opts: &AttackOptions, method: &str, path: &str, extra: &str) -> String {
    let auth = opts
        .token
        .as_ref()
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\n{auth}{extra}\r\n",
        opts.target
    )
}

/// Whether `bytes` begin with a refusal status line.
fn refusal(bytes: &[u8]) -> bool {
    [b"HTTP/1.1 503", b"HTTP/1.1 408", b"HTTP/1.1 413"]
        .iter()
        .any(|s| bytes.starts_with(*s))
}

/// One attack connection, made again whenever the target ends it, until the attack stops.
async fn attacker(
    opts: &AttackOptions,
    path: &str,
    tally: &Tally,
    mut stop: watch::Receiver<bool>,
) {
    while !*stop.borrow() {
        let mut sock = match opts.scenario {
            Scenario::UnreadResponses => connect_from(opts.from, opts.target, Some(4096)).await,
            _ => connect_from(opts.from, opts.target, None).await,
        };
        let Ok(s) = sock.as_mut() else {
            // Out of ports or descriptors, or the backlog is full: try again shortly.
            if pause(&mut stop, Duration::from_millis(200)).await {
                return;
            }
            continue;
        };
        tally.opened();
        let refused = match opts.scenario {
            Scenario::UnreadResponses => unread(opts, path, s, &mut stop).await,
            Scenario::SlowBodies => slow_body(opts, path, s, &mut stop).await,
            Scenario::IdleSockets => hold(s, &mut stop).await,
        };
        tally.closed(refused);
        drop(sock);
        if *stop.borrow() || pause(&mut stop, opts.reconnect).await {
            return;
        }
    }
}

/// Waits `d`, or until the attack stops (then true).
async fn pause(stop: &mut watch::Receiver<bool>, d: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => {}
        _ = stop.wait_for(|s| *s) => {}
    }
    *stop.borrow()
}

/// Asks for the page and never reads; held until the attack stops.
async fn unread(
    opts: &AttackOptions,
    path: &str,
    s: &mut TcpStream,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    if s.write_all(head(opts, "GET", path, "").as_bytes())
        .await
        .is_err()
    {
        return true;
    }
    let _ = stop.wait_for(|s| *s).await;
    false
}

/// Sends all of a declared body but its last byte, then waits for the attack to stop or the
/// target to answer. True when refused or closed by the target.
async fn slow_body(
    opts: &AttackOptions,
    path: &str,
    s: &mut TcpStream,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    let n = opts.body_bytes.max(2);
    let h = head(
        opts,
        "POST",
        path,
        &format!("Content-Type: application/x-ndjson\r\nContent-Length: {n}\r\n"),
    );
    if s.write_all(h.as_bytes()).await.is_err() {
        return true;
    }
    let line = vec![b' '; 64 << 10];
    let mut sent = 0;
    let mut answer = [0u8; 64];
    let (mut rx, mut tx) = s.split();
    while sent < n - 1 {
        let take = (n - 1 - sent).min(line.len());
        tokio::select! {
            w = tx.write_all(&line[..take]) => if w.is_err() { return true },
            r = rx.read(&mut answer) => return r.map_or(true, |k| k == 0 || refusal(&answer[..k])),
            _ = stop.wait_for(|s| *s) => return false,
        }
        sent += take;
    }
    tokio::select! {
        r = rx.read(&mut answer) => r.map_or(true, |k| k == 0 || refusal(&answer[..k])),
        _ = stop.wait_for(|s| *s) => false,
    }
}

/// Sends nothing; true when the target closes the connection before the attack stops.
async fn hold(s: &mut TcpStream, stop: &mut watch::Receiver<bool>) -> bool {
    let mut b = [0u8; 64];
    tokio::select! {
        _ = s.read(&mut b) => true,
        _ = stop.wait_for(|s| *s) => false,
    }
}

/// `/livez` (or appends) every 100 ms from 127.0.0.1, each on a new connection, until the
/// attack stops.
async fn probe_loop(opts: AttackOptions, mut stop: watch::Receiver<bool>, append: bool) -> Probes {
    let mut lat = Vec::new();
    let (mut ok, mut failed, mut first) = (0, 0, None);
    let mut seq = 0u64;
    loop {
        let started = Instant::now();
        let req = if append {
            seq += 1;
            let body = format!("{{\"probe\":{seq},\"during\":\"{:?}\"}}", opts.scenario);
            format!(
                "{}{body}",
                head(
                    &opts,
                    "POST",
                    "/v1/entries",
                    &format!(
                        "Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
                        body.len()
                    )
                )
            )
        } else {
            head(&opts, "GET", "/livez", "Connection: close\r\n")
        };
        let want: &[u8] = if append {
            b"HTTP/1.1 201"
        } else {
            b"HTTP/1.1 200"
        };
        match tokio::time::timeout(opts.probe_timeout, exchange(opts.target, req.as_bytes())).await
        {
            Ok(Ok(answer)) if answer.starts_with(want) => {
                ok += 1;
                lat.push(u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX));
            }
            other => {
                failed += 1;
                first.get_or_insert_with(|| match other {
                    Ok(Ok(a)) => format!(
                        "answered {:?}",
                        String::from_utf8_lossy(&a[..a.len().min(200)])
                    ),
                    Ok(Err(e)) => e.to_string(),
                    Err(_) => format!("no answer within {:?}", opts.probe_timeout),
                });
            }
        }
        if *stop.borrow() {
            break;
        }
        let next = Duration::from_millis(100).saturating_sub(started.elapsed());
        if pause(&mut stop, next).await {
            break;
        }
    }
    Probes {
        ok,
        failed,
        first_failure: first,
        latency_ms: latency(lat),
    }
}

/// One request on a new connection from 127.0.0.1; the answer up to the target's close.
async fn exchange(target: SocketAddr, req: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut s = connect_from(IpAddr::V4(Ipv4Addr::LOCALHOST), target, None).await?;
    s.write_all(req).await?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).await?;
    Ok(out)
}

/// Appends the entries the pages are made of (from the attacker's address, before the attack);
/// returns the first one's index.
async fn prepare_pages(opts: &AttackOptions) -> Result<u64, LoadError> {
    let mut first = None;
    let pad = "x".repeat(opts.payload_bytes.saturating_sub(32));
    let per_request = 100;
    let mut seq = 0;
    while seq < opts.page_entries {
        let n = per_request.min(opts.page_entries - seq);
        let mut body = String::new();
        for _ in 0..n {
            body.push_str(&format!("{{\"page_entry\":{seq},\"pad\":\"{pad}\"}}\n"));
            seq += 1;
        }
        let req = format!(
            "{}{body}",
            head(
                opts,
                "POST",
                "/v1/entries/batch",
                &format!(
                    "Content-Type: application/x-ndjson\r\nContent-Length: {}\r\nConnection: close\r\n",
                    body.len()
                )
            )
        );
        let answer = exchange(opts.target, req.as_bytes())
            .await
            .map_err(|e| LoadError::Usage(format!("preparing the pages: {e}")))?;
        let text = String::from_utf8_lossy(&answer);
        if !text.starts_with("HTTP/1.1 201") {
            return Err(LoadError::Usage(format!(
                "preparing the pages: {}",
                &text[..text.len().min(300)]
            )));
        }
        if first.is_none() {
            let json = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
            let v: serde_json::Value = serde_json::from_str(json)
                .map_err(|e| LoadError::Usage(format!("preparing the pages: {e}: {json}")))?;
            first = v["first_index"].as_u64();
        }
    }
    first.ok_or_else(|| LoadError::Usage("preparing the pages: no index in the answer".into()))
}
