//! HTTP sinks: an NDJSON webhook, Splunk HEC and Elasticsearch/OpenSearch `_bulk`.
//!
//! One request per batch; a batch is acknowledged only by a 2xx answer that reports no error in
//! its body (HEC `code` 0; `_bulk` `errors: false`). Anything else (refused connection, timeout,
//! other status, a partial bulk failure) fails the whole batch, which is sent again: bulk
//! documents have `_id` = `origin/index`, so a replay overwrites instead of duplicating; webhook
//! and HEC receivers de-duplicate with the `id` field.

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};

use super::{ForwardEvent, OpenError, SinkConfig, SinkError, SinkKind};

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
    pub fn new(cfg: &SinkConfig) -> Result<Self, OpenError> {
        let request = |detail: String| OpenError::Request {
            sink: cfg.name.clone(),
            detail,
        };
        let _ = rustls::crypto::ring::default_provider().install_default();
        let base = cfg.url.clone().unwrap_or_default();
        let base = base.trim_end_matches('/');
        let url = match cfg.kind {
            SinkKind::SplunkHec => format!("{base}/services/collector/event"),
            SinkKind::Elasticsearch => format!("{base}/_bulk"),
            _ => base.to_owned(),
        };
        reqwest::Url::parse(&url).map_err(|e| request(format!("url {url:?}: {e}")))?;
        let mut headers = HeaderMap::new();
        for (k, v) in &cfg.headers {
            let k = HeaderName::try_from(k.as_str())
                .map_err(|e| request(format!("header {k:?}: {e}")))?;
            let mut v = HeaderValue::try_from(v.as_str())
                .map_err(|e| request(format!("header {k}: {e}")))?;
            v.set_sensitive(true);
            headers.insert(k, v);
        }
        if let Some(token) = &cfg.token {
            let mut v = HeaderValue::try_from(format!("Splunk {token}"))
                .map_err(|e| request(format!("token: {e}")))?;
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
            let ca_file = |detail: String| OpenError::CaFile {
                sink: cfg.name.clone(),
                detail,
            };
            let pem = std::fs::read(path)
                .map_err(|e| ca_file(format!("reading {}: {e}", path.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| ca_file(format!("{}: {e}", path.display())))?;
            for c in certs {
                builder = builder.add_root_certificate(c);
            }
        }
        let client = builder.build().map_err(|e| OpenError::HttpClient {
            sink: cfg.name.clone(),
            detail: format!("HTTP client: {e}"),
        })?;
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

/// A 2xx answer whose body reports that the batch was not (wholly) accepted.
#[derive(Debug, thiserror::Error)]
enum Refused {
    /// Splunk HEC answered with a non-zero `code`.
    #[error("HEC error: {0}")]
    Hec(String),
    /// The `_bulk` answer does not parse.
    #[error("bulk response is not JSON: {0}")]
    BulkNotJson(serde_json::Error),
    /// Some `_bulk` items failed; the first item's error.
    #[error("bulk items failed, first error: {0}")]
    BulkItems(serde_json::Value),
    /// The `_bulk` answer lacks the `errors` flag.
    #[error("bulk response without \"errors\"")]
    BulkUnflagged,
}

fn check_hec(text: &str) -> Result<(), Refused> {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(v)
            if v.get("code")
                .and_then(serde_json::Value::as_i64)
                .unwrap_or(0)
                != 0 =>
        {
            Err(Refused::Hec(text.to_owned()))
        }
        _ => Ok(()),
    }
}

fn check_bulk(text: &str) -> Result<(), Refused> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(Refused::BulkNotJson)?;
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
            Err(Refused::BulkItems(first))
        }
        None => Err(Refused::BulkUnflagged),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_in_a_2xx_body_are_found_and_named() {
        assert!(check_hec(r#"{"text":"Success","code":0}"#).is_ok());
        assert!(check_hec("not json: HEC said nothing parseable").is_ok());
        assert_eq!(
            check_hec(r#"{"text":"Invalid token","code":4}"#)
                .unwrap_err()
                .to_string(),
            r#"HEC error: {"text":"Invalid token","code":4}"#
        );
        assert!(check_bulk(r#"{"errors":false,"items":[]}"#).is_ok());
        assert_eq!(
            check_bulk(
                r#"{"errors":true,"items":[{"index":{"status":201}},{"index":{"error":{"type":"x"}}}]}"#
            )
            .unwrap_err()
            .to_string(),
            r#"bulk items failed, first error: {"type":"x"}"#
        );
        assert_eq!(
            check_bulk(r#"{"took":1}"#).unwrap_err().to_string(),
            r#"bulk response without "errors""#
        );
        assert!(
            check_bulk("<html>")
                .unwrap_err()
                .to_string()
                .starts_with("bulk response is not JSON: ")
        );
    }

    #[test]
    fn unusable_settings_are_refused_by_category() {
        let mut cfg = SinkConfig::new("w", SinkKind::Webhook);
        cfg.url = Some("not a url".into());
        let e = HttpSink::new(&cfg).unwrap_err();
        assert_eq!(e.category(), "request");
        assert!(
            e.to_string().starts_with(r#"forward w: url "not a url": "#),
            "{e}"
        );
        cfg.url = Some("http://127.0.0.1:1".into());
        cfg.headers.insert("bad header".into(), "v".into());
        let e = HttpSink::new(&cfg).unwrap_err();
        assert_eq!(e.category(), "request");
        assert!(
            e.to_string()
                .starts_with(r#"forward w: header "bad header": "#),
            "{e}"
        );
        cfg.headers.clear();
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("ca.pem");
        cfg.ca_file = Some(missing.clone());
        let e = HttpSink::new(&cfg).unwrap_err();
        assert_eq!(e.category(), "ca_file");
        assert!(
            e.to_string()
                .starts_with(&format!("forward w: reading {}: ", missing.display())),
            "{e}"
        );
        cfg.ca_file = None;
        assert!(HttpSink::new(&cfg).is_ok());
    }
}
