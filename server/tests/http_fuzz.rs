//! A bounded property test of the HTTP surface over raw sockets: valid requests for every route
//! (with and without credentials, chunked bodies, pipelining) are mutated at random, byte by
//! byte and token by token, and sent to a real server (its accept loop, hyper and the router) on
//! 127.0.0.1 with a redb store. Properties:
//!
//! - every answer is well-formed HTTP/1.1, and none is a 5xx other than 503, except 501 to a
//!   request that names a `Transfer-Encoding` and 505 to one whose request line is not HTTP/1.x
//!   (a panic would be a 500: the router catches panics);
//! - between cases the server still answers `/livez` and appends;
//! - afterwards the store passes fsck.
//!
//! `SEALTRAIL_HTTP_FUZZ_CASES` (default 2000) and `SEALTRAIL_HTTP_FUZZ_SEED` (default: from the
//! clock, printed) set the run; a failure prints the seed, the case and the request to replay.
//! BENCHMARKS.md has the figures of a longer manual run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::*;
use sealtrail_server::auth::Role;
use sealtrail_server::serve::Server;

const SUBMITTER: &str = "stk_submitter-token-for-the-http-fuzz-0000000000";
const ADMIN: &str = "stk_admin-token-for-the-http-fuzz-00000000000000";
const THREADS: u64 = 4;

/// splitmix64: small, seedable, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

fn request(method: &str, path: &str, headers: &[&str], body: &[u8]) -> Vec<u8> {
    let mut r = format!("{method} {path} HTTP/1.1\r\nHost: fuzz\r\n");
    for h in headers {
        r.push_str(h);
        r.push_str("\r\n");
    }
    if !body.is_empty() && !headers.iter().any(|h| h.starts_with("Transfer-Encoding")) {
        r.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    r.push_str("\r\n");
    let mut r = r.into_bytes();
    r.extend_from_slice(body);
    r
}

fn chunked(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for part in body.chunks(7) {
        out.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        out.extend_from_slice(part);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

/// Valid requests for every route: the starting points of the mutations.
fn seeds() -> Vec<Vec<u8>> {
    let sub = format!("Authorization: Bearer {SUBMITTER}");
    let adm = format!("Authorization: Bearer {ADMIN}");
    let json = "Content-Type: application/json";
    let ndjson = "Content-Type: application/x-ndjson";
    let te = "Transfer-Encoding: chunked";
    vec![
        request("GET", "/checkpoint", &[], b""),
        request("GET", "/tile/0/000", &[], b""),
        request("GET", "/tile/0/x001/234.p/5", &[], b""),
        request("GET", "/tile/entries/000.p/3", &[], b""),
        request("GET", "/v1/log", &[], b""),
        request("GET", "/v1/entries?start=0&limit=5", &[], b""),
        request("GET", "/v1/entries/0", &[&adm], b""),
        request("GET", "/v1/entries/search?type=login&limit=3", &[&sub], b""),
        request("GET", "/v1/proof/inclusion?index=0&tree_size=2", &[], b""),
        request("GET", "/v1/proof/consistency?first=1&second=2", &[], b""),
        request("GET", "/v1/proof/1", &[], b""),
        request("GET", "/livez", &[], b""),
        request("GET", "/readyz", &[], b""),
        request("GET", "/metrics", &[], b""),
        request("GET", "/v1/admin/security-events", &[&adm], b""),
        request("GET", "/v1/admin/holds", &[&adm], b""),
        request(
            "POST",
            "/v1/entries",
            &[json, "X-Event-Type: login", "Idempotency-Key: k-1"],
            br#"{"user":"alice","ok":true}"#,
        ),
        request(
            "POST",
            "/v1/entries",
            &[&sub, "Content-Type: application/octet-stream"],
            b"\x00\x01\xfe\xff raw",
        ),
        request(
            "POST",
            "/v1/entries",
            &[&sub, json, te],
            &chunked(br#"{"chunked":[1,2,3]}"#),
        ),
        request(
            "POST",
            "/v1/entries/batch",
            &[&sub, ndjson],
            b"{\"a\":1}\n{\"b\":2}\n\n{\"c\":\"\\u00e9\"}\n",
        ),
        request(
            "POST",
            "/v1/entries/batch",
            &[ndjson, te],
            &chunked(b"{\"x\":1}\n{\"y\":2}\n"),
        ),
        request(
            "POST",
            "/v1/admin/holds",
            &[&adm, json],
            br#"{"reason":"fuzz","principal":"anonymous"}"#,
        ),
        request(
            "POST",
            "/v1/admin/erasures",
            &[&adm, json],
            br#"{"indices":[1],"reason":"fuzz"}"#,
        ),
        request("POST", "/v1/admin/holds/1/release", &[&adm, json], b"{}"),
    ]
}

/// Fragments a mutation inserts: the places parsers disagree.
const TOKENS: &[&[u8]] = &[
    b"\r\n",
    b"\n",
    b"\r",
    b"\0",
    b" ",
    b"\t",
    b"%",
    b"%ff",
    b"%2e",
    b"%2F",
    b"%00",
    b"..",
    b"/",
    b"//",
    b"?",
    b"&",
    b"=",
    b";",
    b":",
    b",",
    b"\xff",
    b"\xc3\x28",
    b"{",
    b"}",
    b"[",
    b"\"",
    b"\\u0000",
    b"-1",
    b"0",
    b"18446744073709551615",
    b"99999999999999999999999",
    b"1e309",
    b"HTTP/1.0",
    b"HTTP/2.0",
    b"chunked",
    b"gzip, chunked",
    b"Transfer-Encoding: chunked\r\n",
    b"Transfer-Encoding: gzip\r\n",
    b"Content-Length: 3\r\n",
    b"Content-Length: 18446744073709551616\r\n",
    b"Content-Length: -1\r\n",
    b"Content-Length: 1, 2\r\n",
    b"Authorization: Bearer x\r\n",
    b"Authorization: Basic Og==\r\n",
    b"X-Event-Type: a\r\n",
    b"Idempotency-Key: k\r\n",
    b"Expect: 100-continue\r\n",
    b"Connection: keep-alive\r\n",
    b"Connection: close\r\n",
    b"Content-Encoding: gzip\r\n",
    b"Content-Type: application/json; charset=latin1\r\n",
    b"Host: a\r\n",
    b"0\r\n\r\n",
    b"ffffffffffffffff\r\n",
    b"5;ext=1\r\nhello\r\n",
    b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n",
];

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut r = rng.pick(seeds).clone();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(r.len() + 1);
        match rng.below(8) {
            0 if !r.is_empty() => {
                let i = rng.below(r.len());
                r[i] = rng.next() as u8;
            }
            1 => {
                let t = rng.pick(TOKENS);
                r.splice(at..at, t.iter().copied());
            }
            2 => {
                let n: Vec<u8> = (0..1 + rng.below(16)).map(|_| rng.next() as u8).collect();
                r.splice(at..at, n);
            }
            3 => {
                let end = (at + 1 + rng.below(32)).min(r.len());
                r.drain(at..end);
            }
            4 => {
                let end = (at + 1 + rng.below(64)).min(r.len());
                let dup = r[at..end].to_vec();
                r.splice(at..at, dup);
            }
            5 => r.truncate(at),
            6 => {
                // Pipelining: another request behind this one.
                let next = rng.pick(seeds).clone();
                r.extend_from_slice(&next);
            }
            _ => {
                // A number made huge or negative.
                if let Some(i) = (at..r.len()).find(|&i| r[i].is_ascii_digit()) {
                    const NUMBERS: &[&[u8]] = &[b"18446744073709551616", b"-7", b"00000000001"];
                    let t = *rng.pick(NUMBERS);
                    r.splice(i..i + 1, t.iter().copied());
                }
            }
        }
    }
    r
}

/// The statuses of the answers in `raw`, as long as they parse; an error for a malformed one.
fn statuses(raw: &[u8], head_request: bool) -> Result<Vec<u16>, String> {
    let mut out = Vec::new();
    let mut rest = raw;
    while !rest.is_empty() {
        let end = rest
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or("an answer without the end of its header")?;
        let head = std::str::from_utf8(&rest[..end]).map_err(|_| "a header that is not UTF-8")?;
        let mut lines = head.split("\r\n");
        let line = lines.next().unwrap_or("");
        let status: u16 = line
            .strip_prefix("HTTP/1.1 ")
            .or_else(|| line.strip_prefix("HTTP/1.0 "))
            .and_then(|s| s.get(..3))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("a bad status line {line:?}"))?;
        out.push(status);
        rest = &rest[end + 4..];
        if head_request || status < 200 || status == 204 || status == 304 {
            if status >= 200 {
                break;
            }
            continue;
        }
        let mut length = None;
        let mut chunked = false;
        for l in lines {
            let (k, v) = l
                .split_once(':')
                .ok_or_else(|| format!("a bad header {l:?}"))?;
            match k.to_ascii_lowercase().as_str() {
                "content-length" => {
                    length = Some(v.trim().parse::<usize>().map_err(|e| e.to_string())?)
                }
                "transfer-encoding" => chunked = v.trim().eq_ignore_ascii_case("chunked"),
                _ => {}
            }
        }
        if chunked {
            loop {
                let eol = rest
                    .windows(2)
                    .position(|w| w == b"\r\n")
                    .ok_or("a chunk without its size line")?;
                let size = usize::from_str_radix(
                    std::str::from_utf8(&rest[..eol]).map_err(|_| "a bad chunk size")?,
                    16,
                )
                .map_err(|_| "a bad chunk size")?;
                rest = &rest[eol + 2..];
                if rest.len() < size + 2 {
                    return Err("a chunk cut short".into());
                }
                rest = &rest[size + 2..];
                if size == 0 {
                    break;
                }
            }
        } else {
            // An answer to HTTP/1.0 may instead end with the connection.
            let Some(n) = length else {
                if line.starts_with("HTTP/1.0 ") {
                    break;
                }
                return Err("an answer with neither a length nor chunks".into());
            };
            if rest.len() < n {
                return Err("a body cut short".into());
            }
            rest = &rest[n..];
        }
    }
    Ok(out)
}

/// Whether `status` is allowed as an answer to `req`.
fn allowed(status: u16, req: &[u8]) -> bool {
    let lower = req.to_ascii_lowercase();
    let names = |needle: &[u8]| lower.windows(needle.len()).any(|w| w == needle);
    let line_end = req
        .windows(2)
        .position(|w| w == b"\r\n")
        .unwrap_or(req.len());
    let http1 = req[..line_end].ends_with(b" HTTP/1.1") || req[..line_end].ends_with(b" HTTP/1.0");
    match status {
        100..=499 | 503 => true,
        501 => names(b"transfer-encoding"),
        505 => !http1,
        _ => false,
    }
}

/// Sends `req` on a new connection, closes the sending side, and reads every answer.
fn exchange(addr: SocketAddr, req: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    // The server may answer and close before it has read everything (413, 400): not an error.
    let _ = s.write_all(req);
    let _ = s.shutdown(Shutdown::Write);
    let mut out = Vec::new();
    match s.read_to_end(&mut out) {
        Ok(_) => Ok(out),
        // A reset after an early answer: keep what arrived.
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Ok(out),
        Err(e) => Err(e),
    }
}

fn escaped(b: &[u8]) -> String {
    b.escape_ascii().to_string()
}

#[test]
fn mutated_requests_never_get_a_server_error_and_leave_the_store_intact() {
    let cases: u64 = std::env::var("SEALTRAIL_HTTP_FUZZ_CASES")
        .ok()
        .map_or(2000, |v| {
            v.parse().expect("SEALTRAIL_HTTP_FUZZ_CASES is a number")
        });
    let seed: u64 = std::env::var("SEALTRAIL_HTTP_FUZZ_SEED").ok().map_or_else(
        || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        },
        |v| v.parse().expect("SEALTRAIL_HTTP_FUZZ_SEED is a number"),
    );
    println!("http fuzz: {cases} cases, SEALTRAIL_HTTP_FUZZ_SEED={seed}");

    let dir = tempfile::tempdir().unwrap();
    let mut c = config();
    c.limits.ip_rate_per_sec = 0.0;
    c.limits.principal_rate_per_sec = 0.0;
    c.auth.tokens = vec![
        token("ingest", Role::Submitter, SUBMITTER),
        token("ops", Role::Admin, ADMIN),
    ];
    let store: Arc<dyn sealtrail_server::store::LogStore> =
        Arc::from(sealtrail_server::store::open(c.store, dir.path()).unwrap());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (stop, done, addr) = rt.block_on(async {
        let server = Server::start(c, store.clone(), signer()).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let done = tokio::spawn(server.run(listener, async {
            let _ = rx.await;
        }));
        (tx, done, addr)
    });

    let seeds = Arc::new(seeds());
    let next = Arc::new(AtomicU64::new(0));
    let answered = Arc::new(AtomicU64::new(0));
    let by_status = Arc::new(std::sync::Mutex::new(
        std::collections::BTreeMap::<u16, u64>::new(),
    ));
    let workers: Vec<_> = (0..THREADS)
        .map(|_| {
            let (seeds, next, answered, by_status) = (
                seeds.clone(),
                next.clone(),
                answered.clone(),
                by_status.clone(),
            );
            std::thread::spawn(move || {
                loop {
                    let case = next.fetch_add(1, Ordering::Relaxed);
                    if case >= cases {
                        return;
                    }
                    // Each case has its own generator: a failure replays from (seed, case).
                    let mut rng = Rng(seed ^ case.wrapping_mul(0x2545_f491_4f6c_dd1d));
                    let req = mutate(&mut rng, &seeds);
                    let raw = exchange(addr, &req).unwrap_or_else(|e| {
                        panic!("seed {seed} case {case}: {e}; request {}", escaped(&req))
                    });
                    let head_request = req.starts_with(b"HEAD ");
                    let got = statuses(&raw, head_request).unwrap_or_else(|e| {
                        panic!(
                            "seed {seed} case {case}: {e}; request {}; answer {}",
                            escaped(&req),
                            escaped(&raw[..raw.len().min(2000)])
                        )
                    });
                    for s in &got {
                        *by_status.lock().unwrap().entry(*s).or_default() += 1;
                        assert!(
                            allowed(*s, &req),
                            "seed {seed} case {case}: {s}; request {}; answer {}",
                            escaped(&req),
                            escaped(&raw[..raw.len().min(2000)])
                        );
                    }
                    if !got.is_empty() {
                        answered.fetch_add(1, Ordering::Relaxed);
                    }
                    if case % 250 == 0 {
                        // The server still serves everyone else.
                        let live = exchange(addr, &request("GET", "/livez", &[], b"")).unwrap();
                        assert_eq!(
                            statuses(&live, false).unwrap(),
                            [200],
                            "seed {seed} case {case}"
                        );
                        let append = exchange(
                            addr,
                            &request(
                                "POST",
                                "/v1/entries",
                                &["Content-Type: application/json"],
                                br#"{"canary":true}"#,
                            ),
                        )
                        .unwrap();
                        assert_eq!(
                            statuses(&append, false).unwrap(),
                            [201],
                            "seed {seed} case {case}"
                        );
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let answered = answered.load(Ordering::Relaxed);
    let by_status = by_status.lock().unwrap().clone();
    println!("http fuzz: {answered} of {cases} cases answered; answers by status {by_status:?}");
    assert!(
        by_status.range(200..300).count() > 0,
        "no mutated request got through to a handler: {by_status:?}"
    );
    // Most mutations still make a request the server answers: the cases reached the router.
    assert!(
        answered * 2 > cases,
        "only {answered} of {cases} cases were answered"
    );

    let _ = stop.send(());
    rt.block_on(done).unwrap();
    let report = sealtrail_server::fsck::fsck(store.as_ref(), ORIGIN, &verifier()).unwrap();
    assert!(report.ok(), "seed {seed}: {report:?}");
    assert!(report.size > 0, "the canaries were appended");
}
