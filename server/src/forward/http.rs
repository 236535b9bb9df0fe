//! HTTP sinks: an NDJSON webhook, Splunk HEC and Elasticsearch/OpenSearch `_bulk`.
//!
//! One request per batch; a batch is acknowledged only by a 2xx answer that reports no error in
//! its body (HEC `code` 0; `_bulk` `errors: false`). Anything else (refused connection, timeout,
//! other status, a partial bulk failure) fails the whole batch, which is sent again: bulk
//! documents have `_id` = `origin/index`, so a replay overwrites instead of duplicating; webhook
//! and HEC receivers de-duplicate with the `id` field.

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};

use super::{ForwardEvent, SinkConfig, SinkError, SinkKind};

/// Longest response body read (to find errors in it).
const MAX_RESPONSE: usize = 1 << 20;

/// An HTTP destination.
#[derive(Debug)]
pub struct HttpSink {
    kind: SinkKind,
    client: reqwest::Client,
    url: String,
    index: Option<String>,
}

impl HttpSink {
    /// Builds the client (timeouts, CA file, headers, HEC token).
    pub fn new(cfg: &SinkConfig) -> Result<Self, String> {
        let name = &cfg.name;
        let _ = rustls::crypto::ring::default_provider().install_default();
        let base = cfg.url.clone().unwrap_or_default();
        let base = base.trim_end_matches('/');
        let url = match cfg.kind {
            SinkKind::SplunkHec => format!("{base}/services/collector/event"),
            SinkKind::Elasticsearch => format!("{base}/_bulk"),
            _ => base.to_owned(),
        };
        reqwest::Url::parse(&url).map_err(|e| format!("forward {name}: url {url:?}: {e}"))?;
        let mut headers = HeaderMap::new();
        for (k, v) in &cfg.headers {
            let k = HeaderName::try_from(k.as_str())
                .map_err(|e| format!("forward {name}: header {k:?}: {e}"))?;
            let mut v = HeaderValue::try_from(v.as_str())
                .map_err(|e| format!("forward {name}: header {k}: {e}"))?;
            v.set_sensitive(true);
            headers.insert(k, v);
        }
        if let Some(token) = &cfg.token {
            let mut v = HeaderValue::try_from(format!("Splunk {token}"))
                .map_err(|e| format!("forward {name}: token: {e}"))?;
            v.set_sensitive(true);
            headers.insert(AUTHORIZATION, v);
        }
        let content_type = match cfg.kind {
            SinkKind::SplunkHec => "application/json",
            _ => "application/x-ndjson",
        };
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        let mut builder = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(cfg.timeout())
            .connect_timeout(cfg.timeout().min(Duration::from_secs(10)));
        if let Some(path) = &cfg.ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| format!("forward {name}: reading {}: {e}", path.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| format!("forward {name}: {}: {e}", path.display()))?;
            for c in certs {
                builder = builder.add_root_certificate(c);
            }
        }
        let client = builder
            .build()
            .map_err(|e| format!("forward {name}: HTTP client: {e}"))?;
        Ok(HttpSink {
            kind: cfg.kind,
            client,
            url,
            index: cfg.index.clone(),
        })
    }

    /// Sends one batch as one request.
    pub async fn send(&mut self, events: &[ForwardEvent]) -> Result<(), SinkError> {
        let body = match self.kind {
            SinkKind::SplunkHec => hec_body(events),
            SinkKind::Elasticsearch => bulk_body(self.index.as_deref().unwrap_or(""), events),
            _ => ndjson(events),
        };
        let err = |e: &dyn std::fmt::Display| SinkError(format!("POST {}: {e}", self.url));
        let mut resp = self
            .client
            .post(&self.url)
            .body(body)
            .send()
            .await
            .map_err(|e| err(&e))?;
        let status = resp.status();
        // Read at most MAX_RESPONSE bytes of the answer: a receiver cannot make us buffer more.
        let mut bytes = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| err(&e))? {
            let room = MAX_RESPONSE - bytes.len();
            bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if bytes.len() == MAX_RESPONSE {
                break;
            }
        }
        let text = String::from_utf8_lossy(&bytes);
        if !status.is_success() {
            let head: String = text.chars().take(200).collect();
            return Err(err(&format!("status {status}: {head}")));
        }
        match self.kind {
            SinkKind::SplunkHec => check_hec(&text).map_err(|e| err(&e)),
            SinkKind::Elasticsearch => check_bulk(&text).map_err(|e| err(&e)),
            _ => Ok(()),
        }
    }
}

fn ndjson(events: &[ForwardEvent]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in events {
        out.extend_from_slice(&serde_json::to_vec(e.json()).unwrap_or_default());
        out.push(b'\n');
    }
    out
}

/// HEC event objects, one per line: `time` in seconds, `source` the origin, `sourcetype`
/// `sealtrail:entry` or `sealtrail:security`, the document as `event`.
pub fn hec_body(events: &[ForwardEvent]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in events {
        let (source, sourcetype) = match e {
            ForwardEvent::Entry(en) => (en.origin.as_str(), "sealtrail:entry"),
            ForwardEvent::Security(_) => ("sealtrail", "sealtrail:security"),
        };
        let ms = e.time_ms();
        let obj = serde_json::json!({
            "time": format!("{}.{:03}", ms / 1000, ms % 1000).parse::<f64>().unwrap_or(0.0),
            "source": source,
            "sourcetype": sourcetype,
            "event": e.json(),
        });
        out.extend_from_slice(&serde_json::to_vec(&obj).unwrap_or_default());
        out.push(b'\n');
    }
    out
}

/// `_bulk` body: an `index` action with `_id` = `origin/index` (none for security events), then
/// the document, each on its own line.
pub fn bulk_body(index: &str, events: &[ForwardEvent]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in events {
        let action = match e.id() {
            Some(id) => serde_json::json!({ "index": { "_index": index, "_id": id } }),
            None => serde_json::json!({ "index": { "_index": index } }),
        };
        out.extend_from_slice(&serde_json::to_vec(&action).unwrap_or_default());
        out.push(b'\n');
        out.extend_from_slice(&serde_json::to_vec(e.json()).unwrap_or_default());
        out.push(b'\n');
    }
    out
}

fn check_hec(text: &str) -> Result<(), String> {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(v)
            if v.get("code")
                .and_then(serde_json::Value::as_i64)
                .unwrap_or(0)
                != 0 =>
        {
            Err(format!("HEC error: {text}"))
        }
        _ => Ok(()),
    }
}

fn check_bulk(text: &str) -> Result<(), String> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("bulk response is not JSON: {e}"))?;
    match v.get("errors").and_then(serde_json::Value::as_bool) {
        Some(false) => Ok(()),
        Some(true) => {
            let first = v["items"]
                .as_array()
                .and_then(|items| {
                    items
                        .iter()
                        .find_map(|i| i.get("index").and_then(|x| x.get("error")).cloned())
                })
                .unwrap_or_default();
            Err(format!("bulk items failed, first error: {first}"))
        }
        None => Err("bulk response without \"errors\"".into()),
    }
}
