//! A minimal W3C WebDriver client (https://www.w3.org/TR/webdriver2/) over `reqwest`'s blocking
//! client, driving headless Chromium through chromedriver: sessions, navigation, finding
//! elements by CSS selector (with the session's implicit wait), clicks, typing, text and
//! attributes, scripts and screenshots. chromedriver is started on a free 127.0.0.1 port and
//! killed when the [`Driver`] is dropped.
#![allow(unreachable_pub)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// How long finding an element may wait for it to appear, and any other wait for a condition.
pub const WAIT: Duration = Duration::from_secs(20);

/// The key W3C WebDriver names element references with.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A running chromedriver.
pub struct Driver {
    child: Child,
    base: String,
    http: reqwest::blocking::Client,
}

impl Driver {
    /// Starts chromedriver on a free port and waits (polling `/status`, bounded) until it is
    /// ready. Fails with what to do when Chromium or chromedriver is not installed.
    pub fn start() -> Driver {
        for (path, package) in [(CHROMEDRIVER, "chromium-driver"), (CHROMIUM, "chromium")] {
            assert!(
                Path::new(path).exists(),
                "{path} is missing: this test drives headless Chromium. Run scripts/test, which \
                 installs the Debian packages chromium and chromium-driver ({package}), or \
                 `apt-get install -y --no-install-recommends chromium chromium-driver`."
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting chromedriver");
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("an HTTP client");
        let d = Driver {
            child,
            base: format!("http://127.0.0.1:{port}"),
            http,
        };
        wait_until("chromedriver to be ready", || {
            let v: Value = d
                .http
                .get(format!("{}/status", d.base))
                .send()
                .ok()?
                .json()
                .ok()?;
            v["value"]["ready"].as_bool().filter(|r| *r)
        });
        d
    }

    /// A new headless Chromium session with a 1280x900 window.
    pub fn session(&self) -> Session<'_> {
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--window-size=1280,900", "--disable-dev-shm-usage",
                         "--no-first-run", "--no-default-browser-check"],
            },
        }}});
        let v = self.call(reqwest::Method::POST, "/session", Some(caps));
        let id = v["sessionId"].as_str().expect("a session id").to_owned();
        let s = Session { d: self, id };
        s.cmd(
            reqwest::Method::POST,
            "timeouts",
            Some(
                json!({"implicit": WAIT.as_millis() as u64, "pageLoad": 30_000, "script": 30_000}),
            ),
        );
        s
    }

    /// One WebDriver command; returns its `value`, panics with the driver's error.
    fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req
            .send()
            .unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"));
        let status = resp.status();
        let v: Value = resp.json().unwrap_or(Value::Null);
        assert!(
            status.is_success(),
            "WebDriver {method} {path}: {status}: {}",
            v["value"]
        );
        v["value"].clone()
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `f` until it returns `Some`, for at most [`WAIT`]; panics naming `what` if it never does.
pub fn wait_until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {WAIT:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A browser session; deleted (closing the browser) when dropped.
pub struct Session<'a> {
    d: &'a Driver,
    id: String,
}

/// An element reference.
#[derive(Clone, Debug)]
pub struct Element(String);

impl Session<'_> {
    fn cmd(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        self.d
            .call(method, &format!("/session/{}/{path}", self.id), body)
    }

    pub fn goto(&self, url: &str) {
        self.cmd(reqwest::Method::POST, "url", Some(json!({ "url": url })));
    }

    pub fn current_url(&self) -> String {
        self.cmd(reqwest::Method::GET, "url", None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The first element matching `css`, waiting up to the implicit wait for one to appear.
    pub fn find(&self, css: &str) -> Element {
        let v = self.cmd(
            reqwest::Method::POST,
            "element",
            Some(json!({"using": "css selector", "value": css})),
        );
        Element(
            v[ELEMENT]
                .as_str()
                .unwrap_or_else(|| panic!("no element {css:?}: {v}"))
                .to_owned(),
        )
    }

    /// Every element matching `css` now (waiting only while there is none).
    pub fn find_all(&self, css: &str) -> Vec<Element> {
        let v = self.cmd(
            reqwest::Method::POST,
            "elements",
            Some(json!({"using": "css selector", "value": css})),
        );
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e[ELEMENT].as_str())
                    .map(|s| Element(s.to_owned()))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn click(&self, e: &Element) {
        self.cmd(
            reqwest::Method::POST,
            &format!("element/{}/click", e.0),
            Some(json!({})),
        );
    }

    pub fn clear(&self, e: &Element) {
        self.cmd(
            reqwest::Method::POST,
            &format!("element/{}/clear", e.0),
            Some(json!({})),
        );
    }

    pub fn type_into(&self, e: &Element, text: &str) {
        self.cmd(
            reqwest::Method::POST,
            &format!("element/{}/value", e.0),
            Some(json!({ "text": text })),
        );
    }

    /// The element's rendered text.
    pub fn text(&self, e: &Element) -> String {
        self.cmd(reqwest::Method::GET, &format!("element/{}/text", e.0), None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub fn attr(&self, e: &Element, name: &str) -> Option<String> {
        self.cmd(
            reqwest::Method::GET,
            &format!("element/{}/attribute/{name}", e.0),
            None,
        )
        .as_str()
        .map(str::to_owned)
    }

    /// The element's DOM property `name` (a form control's current `value`).
    pub fn property(&self, e: &Element, name: &str) -> Value {
        self.cmd(
            reqwest::Method::GET,
            &format!("element/{}/property/{name}", e.0),
            None,
        )
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and returns its result.
    pub fn exec(&self, script: &str, args: Vec<Value>) -> Value {
        self.cmd(
            reqwest::Method::POST,
            "execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
    }

    /// Runs `script`, which calls its last argument with the result.
    pub fn exec_async(&self, script: &str, args: Vec<Value>) -> Value {
        self.cmd(
            reqwest::Method::POST,
            "execute/async",
            Some(json!({ "script": script, "args": args })),
        )
    }

    /// A PNG of the viewport.
    pub fn screenshot(&self) -> Vec<u8> {
        let v = self.cmd(reqwest::Method::GET, "screenshot", None);
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("base64 PNG"))
            .expect("a PNG")
    }

    /// The browser console's messages since the last call (chromedriver's log extension), as
    /// "LEVEL message" lines.
    pub fn console(&self) -> Vec<String> {
        let v = self.cmd(
            reqwest::Method::POST,
            "se/log",
            Some(json!({ "type": "browser" })),
        );
        v.as_array()
            .map(|a| {
                a.iter()
                    .map(|m| {
                        format!(
                            "{} {}",
                            m["level"].as_str().unwrap_or("?"),
                            m["message"].as_str().unwrap_or("")
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The element reference as a script argument.
    pub fn arg(e: &Element) -> Value {
        json!({ ELEMENT: e.0 })
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        let _ = self
            .d
            .http
            .delete(format!("{}/session/{}", self.d.base, self.id))
            .send();
    }
}
