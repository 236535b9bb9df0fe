//! The web explorer (`/ui/`) in a real browser: headless Chromium driven over the W3C WebDriver
//! protocol (chromedriver), against a server running in-process on 127.0.0.1.
//!
//! - `explorer_verifies_entries_and_catches_tampering`: the overview verifies the checkpoint and
//!   pins the key; a search lists the entries with the bidi event type and principal shown
//!   escaped; entries (JSON, text, binary, erased) verify in the browser; the same entry through
//!   a proxy that alters one hash of the inclusion proof fails on that check alone; a
//!   consistency check between two checkpoints verifies, and fails through the proxy; the admin
//!   view shows 401 and 403 plainly, and the erasures and holds with an admin token, which stays
//!   in sessionStorage. No script error or CSP violation reaches the console.
//! - `explorer_checks_witness_cosignatures`: with two stand-in witnesses and a 2-of-2 policy, the
//!   cosigned checkpoint and an entry verify with the quorum; an entry newer than the cosigned
//!   checkpoint verifies with the quorum pending (one witness down); a pinned policy the
//!   cosignatures do not meet, and a pinned log key the server does not sign with, both fail.
//! - `verify_module_agrees_with_the_rust_implementation`: `verify.js`, run in the browser, against
//!   values computed here by `sealtrail-spec`: envelope encodings, record commitments, every
//!   inclusion and consistency proof of trees up to 20 leaves (and mutated ones, which must fail),
//!   signed checkpoints, cosignatures and a 2-of-3 witness policy, a tlog-proof, and the escaping
//!   of invisible characters.
//!
//! Screenshots of the main views go to target/ui-screenshots/, and to docs/ when
//! SEALTRAIL_UI_SCREENSHOTS=docs. Every wait is WebDriver's implicit wait or a poll with a
//! deadline; there are no sleeps.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "ui_browser/proxy.rs"]
mod proxy;
#[path = "ui_browser/vectors.rs"]
mod vectors;
#[path = "ui_browser/webdriver.rs"]
mod webdriver;
#[path = "ui_browser/witness.rs"]
mod witness;

use std::path::PathBuf;
use std::sync::Arc;

use common::{ORIGIN, config, erase_indices, signer, token};
use sealtrail_server::auth::Role;
use sealtrail_server::config::{Config, WitnessEndpoint};
use sealtrail_server::privacy::Conditions;
use sealtrail_server::sequencer::{AdminOp, NewEntry, SequencerHandle};
use sealtrail_server::serve::Server;
use sealtrail_server::store::mem::MemStore;
use serde_json::{Value, json};
use webdriver::{Driver, Session, wait_until};

const ADMIN: &str = "stk_ui-browser-admin-token-00000000000000000000";
const READER: &str = "stk_ui-browser-reader-token-0000000000000000000";
/// The event type with a right-to-left override: displays as "userlogin".
const BIDI_TYPE: &str = "user\u{202E}nigol";
/// A principal with a zero-width space.
const ZWSP_PRINCIPAL: &str = "jwt:alice\u{200B}@example.com";

/// The log, served on 127.0.0.1 from a runtime of its own (the test thread makes blocking
/// WebDriver calls).
struct Log {
    rt: tokio::runtime::Runtime,
    url: String,
    seq: SequencerHandle,
    vkey: String,
}

fn runtime() -> tokio::runtime::Runtime {
    let _ = rustls::crypto::ring::default_provider().install_default();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The test log's configuration: an admin and a reader token; anonymous callers (the page on
/// 127.0.0.1) may read content.
fn log_config() -> Config {
    let mut c = config();
    c.auth.tokens = vec![
        token("ops", Role::Admin, ADMIN),
        token("auditor", Role::Reader, READER),
    ];
    c
}

fn start_log(rt: tokio::runtime::Runtime, c: Config) -> Log {
    let (url, seq, vkey) = rt.block_on(async {
        let server = Server::start(c, Arc::new(MemStore::new()), signer()).unwrap();
        let seq = server.sequencer().clone();
        let vkey = server.state().verifier_key.to_string();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(server.run(listener, std::future::pending()));
        (url, seq, vkey)
    });
    Log { rt, url, seq, vkey }
}

fn entry(
    principal: &str,
    content_type: &str,
    event_type: Option<&str>,
    payload: &[u8],
) -> NewEntry {
    NewEntry {
        principal: principal.into(),
        content_type: content_type.into(),
        event_type: event_type.map(str::to_owned),
        payload: payload.to_vec(),
    }
}

impl Log {
    fn append(&self, entries: Vec<NewEntry>) {
        self.rt
            .block_on(self.seq.submit(entries, None))
            .expect("appended");
    }

    /// Entries 0 to 6, the erasure of 6 (entry 7) and a hold (entry 8).
    fn fill(&self) {
        let json = "application/json";
        self.append(vec![
            entry(
                "token:ingest",
                json,
                Some("user.login"),
                br#"{"user":"alice","ok":true}"#,
            ),
            entry(
                "token:ingest",
                json,
                Some("user.login"),
                br#"{"user":"bob","ok":false}"#,
            ),
            entry(
                "token:ingest",
                json,
                Some("user.logout"),
                br#"{"user":"alice"}"#,
            ),
            entry(
                "token:ingest",
                json,
                Some(BIDI_TYPE),
                br#"{"user":"mallory"}"#,
            ),
            entry(
                ZWSP_PRINCIPAL,
                "text/plain; charset=utf-8",
                Some("note.text"),
                b"hello, auditor\n",
            ),
            entry(
                "token:ingest",
                "application/octet-stream",
                Some("blob.upload"),
                &[0, 159, 146, 150, 255],
            ),
            entry(
                "token:ingest",
                json,
                Some("user.profile"),
                br#"{"user":"carol","email":"carol@example.com"}"#,
            ),
        ]);
        self.rt.block_on(erase_indices(&self.seq, vec![6]));
        self.rt
            .block_on(self.seq.admin(AdminOp::PlaceHold {
                covers: Conditions {
                    event_type: Some("user.logout".into()),
                    ..Conditions::default()
                },
                reason: "litigation 2026-17".into(),
                by: "token:ops".into(),
            }))
            .expect("hold placed");
    }

    fn checkpoint(&self) -> String {
        reqwest::blocking::get(format!("{}/checkpoint", self.url))
            .unwrap()
            .text()
            .unwrap()
    }

    /// Waits until the newest checkpoint meeting the witness policy has `size` entries.
    fn wait_cosigned(&self, size: u64) {
        wait_until(&format!("a cosigned checkpoint of size {size}"), || {
            let v: Value = reqwest::blocking::get(format!("{}/v1/log", self.url))
                .ok()?
                .json()
                .ok()?;
            (v["cosigned_tree_size"] == json!(size)).then_some(())
        });
    }
}

/// Saves a screenshot as target/ui-screenshots/NAME.png, and as docs/NAME.png when
/// SEALTRAIL_UI_SCREENSHOTS=docs.
fn screenshot(s: &Session<'_>, name: &str) {
    let png = s.screenshot();
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or(root.join("target"), PathBuf::from);
    let mut dirs = vec![target.join("ui-screenshots")];
    if std::env::var("SEALTRAIL_UI_SCREENSHOTS").as_deref() == Ok("docs") {
        dirs.push(root.join("docs"));
    }
    for dir in dirs {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), &png).unwrap();
    }
}

/// Waits for the status element `css` to leave the pending state; returns (state, text).
fn settled(s: &Session<'_>, css: &str) -> (String, String) {
    let el = s.find(&format!("{css}:not([data-state=\"pending\"])"));
    (s.attr(&el, "data-state").unwrap_or_default(), s.text(&el))
}

/// The state of each check listed under `list`, by check id.
fn check_states(s: &Session<'_>, list: &str) -> Vec<(String, String)> {
    s.find_all(&format!("{list} li"))
        .iter()
        .map(|li| {
            (
                s.attr(li, "data-check").unwrap_or_default(),
                s.attr(li, "data-state").unwrap_or_default(),
            )
        })
        .collect()
}

fn state_of(states: &[(String, String)], id: &str) -> String {
    states
        .iter()
        .find(|(c, _)| c == id)
        .map(|(_, st)| st.clone())
        .unwrap_or_else(|| panic!("no check {id} in {states:?}"))
}

/// Opens entry `index` at `base` and waits for the browser's verdict.
fn open_entry(s: &Session<'_>, base: &str, index: u64) -> (String, String) {
    s.goto(&format!("{base}/ui/#/entry/{index}"));
    wait_until("the entry view", || {
        s.current_url()
            .ends_with(&format!("#/entry/{index}"))
            .then_some(())
    });
    settled(s, &format!("#verify-status[data-entry=\"{index}\"]"))
}

/// Sets a datetime-local input to now + `offset_ms`, in the browser's local time.
fn set_local_time(s: &Session<'_>, css: &str, offset_ms: i64) {
    let el = s.find(css);
    s.exec(
        "const [el, offset] = arguments; const d = new Date(Date.now() + offset); \
         el.value = new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 19);",
        vec![Session::arg(&el), json!(offset_ms)],
    );
}

fn search_rows(s: &Session<'_>, n: usize) -> Vec<webdriver::Element> {
    wait_until(&format!("{n} search results"), || {
        let rows = s.find_all("#search-table tbody tr");
        (rows.len() == n).then_some(rows)
    })
}

#[test]
fn explorer_verifies_entries_and_catches_tampering() {
    let log = start_log(runtime(), log_config());
    log.fill();
    let tamper = log.rt.block_on(proxy::start(log.url.clone()));
    let driver = Driver::start();
    let s = driver.session();
    overview_verifies_and_pins_the_key(&s, &log);
    search_lists_escapes_and_filters(&s);
    entries_verify(&s, &log);
    a_tampered_proof_fails(&s, &tamper);
    consistency_verifies_and_fails_through_the_proxy(&s, &log, &tamper);
    admin_views_refuse_plainly_and_keep_the_token_in_the_tab(&s, &log);
    assert_clean_console(&s);
}

/// Overview: /ui redirects to the page; the checkpoint verifies; the key gets pinned.
fn overview_verifies_and_pins_the_key(s: &Session<'_>, log: &Log) {
    s.goto(&format!("{}/ui", log.url));
    assert!(s.current_url().ends_with("/ui/"), "{}", s.current_url());
    let (state, _) = settled(s, "#checkpoint-status");
    assert_eq!(state, "ok");
    assert_eq!(s.text(&s.find("#overview-tree-size")), "9");
    s.click(&s.find("#pin-key"));
    s.find("#checkpoint-status[data-state=\"ok\"]");
    screenshot(s, "ui-overview");
    let pinned = s.exec(
        "return localStorage.getItem('sealtrail.pinned-vkey')",
        vec![],
    );
    assert_eq!(pinned, json!(log.vkey));
}

/// Search: every entry, newest first, with the bidi event type and the principal escaped; then
/// a time range from the date pickers and an event type.
fn search_lists_escapes_and_filters(s: &Session<'_>) {
    s.click(&s.find("a[data-nav=\"search\"]"));
    search_rows(s, 9);
    let bidi = s.find("#search-table tr[data-index=\"3\"] td.event-type");
    assert_eq!(s.text(&bidi), r"user\u{202E}nigol");
    let esc = s.find("#search-table tr[data-index=\"3\"] td.event-type .esc");
    assert_eq!(s.text(&esc), r"\u{202E}");
    assert_eq!(
        s.attr(&esc, "title").as_deref(),
        Some("U+202E RIGHT-TO-LEFT OVERRIDE")
    );
    let principal = s.find("#search-table tr[data-index=\"4\"] td.principal");
    assert_eq!(s.text(&principal), r"jwt:alice\u{200B}@example.com");
    let raw_controls = s.exec(
        "return /[\\u202a-\\u202e\\u2066-\\u2069\\u200b-\\u200f]/.test(document.body.innerText)",
        vec![],
    );
    assert_eq!(
        raw_controls,
        json!(false),
        "no raw bidi or zero-width character on the page"
    );
    let erased = s.find("#search-table tr[data-index=\"6\"] td.principal");
    assert_eq!(s.text(&erased), "erased by #7");
    screenshot(s, "ui-search");

    // Search with conditions: a time range from the date pickers and an event type.
    set_local_time(s, "#search-since", -3_600_000);
    set_local_time(s, "#search-until", 3_600_000);
    s.type_into(&s.find("#search-type"), "user.login");
    s.click(&s.find("#search-submit"));
    let rows = search_rows(s, 2);
    let url = s.current_url();
    assert!(
        url.contains("type=user.login") && url.contains("since=") && url.contains("until="),
        "{url}"
    );
    assert_eq!(s.attr(&rows[0], "data-index").as_deref(), Some("1"));
    // An until in 2001 finds nothing: the range is sent.
    s.exec(
        "document.getElementById('search-until').value = '2001-01-01T00:00:00'",
        vec![],
    );
    s.click(&s.find("#search-submit"));
    wait_until("an empty result", || {
        s.current_url()
            .contains("until=978")
            .then_some(())
            .and_then(|()| {
                s.find_all("#search-results p")
                    .into_iter()
                    .any(|p| s.text(&p).contains("No entry matches"))
                    .then_some(())
            })
    });
}

/// Entries verify in the browser: the bidi one (JSON), text, binary, erased, the log's own.
fn entries_verify(s: &Session<'_>, log: &Log) {
    s.goto(&format!("{}/ui/#/search", log.url));
    search_rows(s, 9);
    s.click(&s.find("#search-table tr[data-index=\"3\"] a.entry-link"));
    let (state, text) = settled(s, "#verify-status");
    assert_eq!((state.as_str(), text.as_str()), ("ok", "verified"));
    let checks = check_states(s, "#verify-checks");
    for (id, want) in [
        ("record", "ok"),
        ("leaf-hash", "ok"),
        ("inclusion", "ok"),
        ("checkpoint-signature", "ok"),
        ("witnesses", "skipped"),
        ("log-key", "ok"),
    ] {
        assert_eq!(state_of(&checks, id), want, "{id}");
    }
    assert_eq!(s.text(&s.find("#entry-event-type")), r"user\u{202E}nigol");
    assert_eq!(
        s.text(&s.find("#entry-payload")),
        "{\n  \"user\": \"mallory\"\n}"
    );
    screenshot(s, "ui-entry-verified");
    for index in [0, 4, 5, 7, 8] {
        let (state, text) = open_entry(s, &log.url, index);
        assert_eq!(
            (state.as_str(), text.as_str()),
            ("ok", "verified"),
            "entry {index}"
        );
    }
    let (state, _) = open_entry(s, &log.url, 5);
    assert_eq!(state, "ok");
    assert_eq!(
        s.text(&s.find("#entry-payload")),
        "AJ+Slv8=",
        "binary shown as base64"
    );
    let (state, text) = open_entry(s, &log.url, 6);
    assert_eq!(state, "ok", "an erased record's leaf is still proven");
    assert_eq!(text, "verified (the leaf only: the record was erased)");
    let record = s.find("#verify-checks li[data-check=\"record\"]");
    assert_eq!(s.attr(&record, "data-state").as_deref(), Some("info"));
    assert!(
        s.text(&record).contains("erased by entry 7"),
        "{}",
        s.text(&record)
    );
}

/// Through the tampering proxy the same kind of entry fails, on the inclusion proof alone.
fn a_tampered_proof_fails(s: &Session<'_>, tamper: &proxy::Tamper) {
    let before = tamper.tampered();
    let (state, text) = open_entry(s, &tamper.url, 1);
    assert_eq!(state, "failed");
    assert!(
        text.starts_with("verification failed") && text.contains("inclusion proof"),
        "{text}"
    );
    assert!(tamper.tampered() > before, "the proxy altered the proof");
    let checks = check_states(s, "#verify-checks");
    for (id, want) in [
        ("record", "ok"),
        ("leaf-hash", "ok"),
        ("inclusion", "failed"),
        ("checkpoint-signature", "ok"),
    ] {
        assert_eq!(state_of(&checks, id), want, "{id} through the proxy");
    }
    screenshot(s, "ui-entry-failed");
}

/// Consistency between a checkpoint pasted by hand (size 9) and the latest (size 14); through
/// the proxy, with the size-9 checkpoint that origin remembered, the proof fails.
fn consistency_verifies_and_fails_through_the_proxy(
    s: &Session<'_>,
    log: &Log,
    tamper: &proxy::Tamper,
) {
    let old_note = log.checkpoint();
    log.append(
        (0..5)
            .map(|i| {
                entry(
                    "token:ingest",
                    "application/json",
                    Some("user.login"),
                    format!("{{\"n\":{i}}}").as_bytes(),
                )
            })
            .collect(),
    );
    // Takes the latest checkpoint (size 14) as NEW and checks; the overall state and its text.
    let check_against_latest = || {
        s.click(&s.find("#consistency-latest"));
        wait_until("the latest checkpoint", || {
            let v = s.property(&s.find("#consistency-new"), "value");
            v.as_str()
                .is_some_and(|t| t.contains("\n14\n"))
                .then_some(())
        });
        s.click(&s.find("#consistency-check"));
        settled(s, "#consistency-status")
    };
    s.goto(&format!("{}/ui/#/consistency", log.url));
    let old = s.find("#consistency-old");
    s.clear(&old);
    s.type_into(&old, &old_note);
    let (state, text) = check_against_latest();
    assert_eq!(state, "ok", "{text}");
    let checks = check_states(s, "#consistency-result");
    assert_eq!(state_of(&checks, "consistency"), "ok");
    screenshot(s, "ui-consistency");
    // Through the proxy, with the size-9 checkpoint this origin remembered: the proof fails.
    s.goto(&format!("{}/ui/#/consistency", tamper.url));
    s.click(&s.find("#consistency-old-pick option[value=\"0\"]"));
    let (state, text) = check_against_latest();
    assert_eq!(state, "failed", "{text}");
    let checks = check_states(s, "#consistency-result");
    assert_eq!(state_of(&checks, "consistency"), "failed");
    assert_eq!(state_of(&checks, "old-signature"), "ok");
    assert_eq!(state_of(&checks, "new-signature"), "ok");
}

/// Admin: refusals are plain; with an admin token the erasures and holds show, and the token
/// stays in sessionStorage.
fn admin_views_refuse_plainly_and_keep_the_token_in_the_tab(s: &Session<'_>, log: &Log) {
    s.goto(&format!("{}/ui/#/admin", log.url));
    s.find(".alert[data-status=\"401\"]");
    s.goto(&format!("{}/ui/#/settings", log.url));
    s.type_into(&s.find("#settings-token"), READER);
    s.click(&s.find("#settings-token-save"));
    s.goto(&format!("{}/ui/#/admin", log.url));
    s.find(".alert[data-status=\"403\"]");
    s.goto(&format!("{}/ui/#/settings", log.url));
    s.type_into(&s.find("#settings-token"), ADMIN);
    s.click(&s.find("#settings-token-save"));
    s.goto(&format!("{}/ui/#/admin", log.url));
    let erasure = s.find("#erasures-table tbody tr");
    assert!(s.text(&erasure).contains("#7"), "{}", s.text(&erasure));
    let hold = s.find("#holds-table tbody tr");
    assert!(
        s.text(&hold).contains("litigation 2026-17"),
        "{}",
        s.text(&hold)
    );
    let stored = s.exec(
        "return [sessionStorage.getItem('sealtrail.token'), JSON.stringify(localStorage)]",
        vec![],
    );
    assert_eq!(stored[0], json!(ADMIN));
    assert!(
        !stored[1].as_str().unwrap().contains(ADMIN),
        "the token is not in localStorage"
    );
    screenshot(s, "ui-admin");
}

/// No script error and no Content-Security-Policy violation was reported on the console (the
/// refusals the admin view shows on purpose are logged as failed loads, which are fine).
fn assert_clean_console(s: &Session<'_>) {
    let console = s.console();
    let bad: Vec<&String> = console
        .iter()
        .filter(|m| {
            m.contains("Content Security Policy")
                || m.contains("Uncaught")
                || m.contains("Refused to")
                || (m.starts_with("SEVERE") && !m.contains("Failed to load resource"))
        })
        .collect();
    assert!(bad.is_empty(), "console: {bad:#?}");
}

#[test]
fn explorer_checks_witness_cosignatures() {
    let rt = runtime();
    let (w1, w2) = rt.block_on(async {
        (
            witness::start("w1.witness.example", [51; 32]).await,
            witness::start("w2.witness.example", [52; 32]).await,
        )
    });
    let mut c = log_config();
    c.witnessing.witnesses = [&w1, &w2]
        .iter()
        .map(|w| WitnessEndpoint {
            url: w.url.clone(),
            vkey: w.vkey.clone(),
        })
        .collect();
    c.witnessing.quorum = Some(2);
    c.witnessing.interval_ms = 20;
    c.witnessing.max_backoff_ms = 200;
    let log = start_log(rt, c);
    let json = "application/json";
    log.append(
        (0..4)
            .map(|i| {
                entry(
                    "token:ingest",
                    json,
                    Some("user.login"),
                    format!("{{\"n\":{i}}}").as_bytes(),
                )
            })
            .collect(),
    );
    log.wait_cosigned(4);
    // One witness down: the next entry is signed by the log but meets no quorum.
    w2.go_down();
    log.append(vec![entry(
        "token:ingest",
        json,
        Some("user.login"),
        b"{\"n\":4}",
    )]);
    let driver = Driver::start();
    let s = driver.session();

    // The overview verifies the cosigned checkpoint: the log's signature and both cosignatures.
    s.goto(&format!("{}/ui/", log.url));
    let (state, _) = settled(&s, "#checkpoint-status");
    assert_eq!(state, "ok");
    let checks = check_states(&s, ".checks");
    assert_eq!(state_of(&checks, "witnesses"), "ok");
    let kinds: Vec<String> = s
        .find_all("table tbody tr td:nth-child(3)")
        .iter()
        .map(|td| s.text(td))
        .collect();
    assert_eq!(kinds.len(), 3, "{kinds:?}");
    assert_eq!(
        kinds
            .iter()
            .filter(|k| k.starts_with("cosignature of witness"))
            .count(),
        2,
        "{kinds:?}"
    );
    screenshot(&s, "ui-overview-witnessed");

    // An entry the cosigned checkpoint covers: verified with the quorum.
    let (state, text) = open_entry(&s, &log.url, 2);
    assert_eq!((state.as_str(), text.as_str()), ("ok", "verified"));
    assert_eq!(
        state_of(&check_states(&s, "#verify-checks"), "witnesses"),
        "ok"
    );
    // The newer entry: proven against the log-signed checkpoint, the quorum still pending.
    let (state, text) = open_entry(&s, &log.url, 4);
    assert_eq!(state, "ok");
    assert!(
        text.contains("no witness quorum covers this entry yet"),
        "{text}"
    );
    assert_eq!(
        state_of(&check_states(&s, "#verify-checks"), "witnesses"),
        "warn"
    );

    // A pinned policy that wants a witness which never cosigned: verification fails.
    let w3 = sealtrail_spec::cosignature::Cosigner::from_seed("w3.witness.example", [53; 32])
        .unwrap()
        .verifier()
        .to_vkey();
    let policy = format!("log {}\nwitness w3 {w3}\nquorum w3\n", log.vkey);
    s.exec(
        "localStorage.setItem('sealtrail.pinned-policy', arguments[0])",
        vec![json!(policy)],
    );
    let (state, text) = open_entry(&s, &log.url, 1);
    assert_eq!(state, "failed", "{text}");
    assert!(text.contains("witness cosignatures"), "{text}");
    assert_eq!(
        state_of(&check_states(&s, "#verify-checks"), "witnesses"),
        "failed"
    );

    // A pinned log key the server does not sign with: verification fails, loudly.
    let other = sealtrail_spec::note::Ed25519Signer::from_seed(ORIGIN, [99; 32])
        .unwrap()
        .verifier()
        .to_vkey();
    s.exec(
        "localStorage.removeItem('sealtrail.pinned-policy'); \
         localStorage.setItem('sealtrail.pinned-vkey', arguments[0])",
        vec![json!(other)],
    );
    let (state, text) = open_entry(&s, &log.url, 3);
    assert_eq!(state, "failed", "{text}");
    let checks = check_states(&s, "#verify-checks");
    assert_eq!(state_of(&checks, "log-key"), "failed");
    assert_eq!(state_of(&checks, "checkpoint-signature"), "failed");
    assert_eq!(state_of(&checks, "inclusion"), "failed");
    assert_clean_console(&s);
}

// ---------------------------------------------------------------------------------------------
// verify.js against sealtrail-spec

/// The checks `verify.js` must pass on `vectors::data()` (run in the page by [`run_module`]).
const VERIFY_VECTORS: &str = include_str!("ui_browser/verify_vectors.js");

/// Runs `body` (an async function body with `v` = verify.js, `dom` = dom.js and `data`) in the
/// page and returns what it returns.
fn run_module(s: &Session<'_>, body: &str, data: Value) -> Value {
    let script = format!(
        "const [data, done] = arguments;
         (async () => {{
           const v = await import('/ui/verify.js');
           const dom = await import('/ui/dom.js');
           {body}
         }})().then(done, (e) => done({{ exception: String(e && e.stack || e) }}));"
    );
    let out = s.exec_async(&script, vec![data]);
    assert!(out.get("exception").is_none(), "{}", out["exception"]);
    out
}

#[test]
fn verify_module_agrees_with_the_rust_implementation() {
    let log = start_log(runtime(), log_config());
    let driver = Driver::start();
    let s = driver.session();
    s.goto(&format!("{}/ui/#/settings", log.url));
    s.find("h1");
    let out = run_module(&s, VERIFY_VECTORS, vectors::data());
    assert_eq!(
        out["fails"],
        json!([]),
        "verify.js disagrees:\n{:#}",
        out["fails"]
    );
    assert_eq!(out["counts"], json!([210, 230]));
}
