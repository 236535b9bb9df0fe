//! The HTTP/1.1 client: one keep-alive connection per worker (hyper's bare client connections:
//! no pool, no TLS), the target resolved once, and [`Failure`], how a request went wrong.

use std::net::SocketAddr;

use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;

use super::LoadError;

/// The target: where to connect and what to put in `Host`.
#[derive(Debug, Clone)]
struct Target {
    addr: SocketAddr,
    host: HeaderValue,
}

/// Parses `http://HOST:PORT` and resolves it; refuses a non-loopback address unless allowed.
async fn resolve(url: &str, allow_remote: bool) -> Result<Target, LoadError> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        LoadError::Usage(format!(
            "the URL must start with http:// (TLS is not supported): {url:?}"
        ))
    })?;
    let authority = rest.trim_end_matches('/');
    if authority.is_empty() || authority.contains(['/', '?', '#', '@']) {
        return Err(LoadError::Usage(format!(
            "the URL must be http://HOST:PORT with no path: {url:?}"
        )));
    }
    let with_port = if authority.rsplit_once(':').is_some_and(|(_, p)| {
        !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && !authority.ends_with(']')
    }) {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(&with_port)
        .await
        .map_err(|e| LoadError::Usage(format!("resolving {authority}: {e}")))?
        .collect();
    let Some(addr) = addrs.first().copied() else {
        return Err(LoadError::Usage(format!("{authority} has no address")));
    };
    if !allow_remote && !addrs.iter().all(|a| a.ip().is_loopback()) {
        return Err(LoadError::Usage(format!(
            "{authority} is not a loopback address; pass --allow-remote to load a remote server"
        )));
    }
    let host = HeaderValue::from_str(authority)
        .map_err(|_| LoadError::Usage(format!("bad host in {url:?}")))?;
    Ok(Target { addr, host })
}

/// One keep-alive HTTP/1.1 connection.
pub(super) struct Conn {
    tx: SendRequest<Full<Bytes>>,
}

/// A failed request: a short kind for counting and the full message.
#[derive(Debug)]
pub(super) struct Failure {
    /// Short, for counting (`status 503`, `transport`, `verification failed`, ...).
    pub(super) kind: String,
    /// The whole story, for the first error of a run.
    pub(super) message: String,
    /// Whether an answer failed verification (also counted apart).
    pub(super) verify: bool,
}

impl Failure {
    pub(super) fn new(kind: impl Into<String>, message: impl Into<String>) -> Self {
        Failure {
            kind: kind.into(),
            message: message.into(),
            verify: false,
        }
    }

    /// An answer that does not verify.
    pub(super) fn verify(message: impl Into<String>) -> Self {
        Failure {
            kind: "verification failed".into(),
            message: message.into(),
            verify: true,
        }
    }

    /// An answer that is not what the API promises.
    pub(super) fn bad(message: impl Into<String>) -> Self {
        Failure::new("malformed response", message)
    }
}

/// An HTTP/1.1 client for one server: the address, the `Host` header and the token.
#[derive(Debug, Clone)]
pub(super) struct Client {
    target: Target,
    token: Option<HeaderValue>,
}

impl Client {
    /// The client for `url` (resolved now) with `token` as a bearer token.
    pub(super) async fn new(
        url: &str,
        allow_remote: bool,
        token: Option<&str>,
    ) -> Result<Self, LoadError> {
        let target = resolve(url, allow_remote).await?;
        let token = token
            .map(|t| {
                let mut v = HeaderValue::from_str(&format!("Bearer {t}"))
                    .map_err(|_| LoadError::Usage("the token must be visible ASCII".into()))?;
                v.set_sensitive(true);
                Ok::<_, LoadError>(v)
            })
            .transpose()?;
        Ok(Client { target, token })
    }

    async fn connect(&self) -> Result<Conn, Failure> {
        let stream = tokio::net::TcpStream::connect(self.target.addr)
            .await
            .map_err(|e| Failure::new("connect", format!("connecting: {e}")))?;
        let _ = stream.set_nodelay(true);
        let (tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| Failure::new("connect", format!("HTTP handshake: {e}")))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Conn { tx })
    }

    /// Sends one request on `conn` (connecting first if needed); drops a broken connection.
    pub(super) async fn call(
        &self,
        conn: &mut Option<Conn>,
        method: Method,
        path: &str,
        content_type: Option<&'static str>,
        body: Bytes,
    ) -> Result<(StatusCode, Bytes), Failure> {
        if conn.as_ref().is_none_or(|c| c.tx.is_closed()) {
            *conn = Some(self.connect().await?);
        }
        let Some(c) = conn.as_mut() else {
            return Err(Failure::new("connect", "no connection"));
        };
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, self.target.host.clone());
        if let Some(ct) = content_type {
            req = req.header(CONTENT_TYPE, ct);
        }
        if let Some(t) = &self.token {
            req = req.header(AUTHORIZATION, t.clone());
        }
        let req = req
            .body(Full::new(body))
            .map_err(|e| Failure::new("request", format!("building the request: {e}")))?;
        let result = async {
            c.tx.ready().await?;
            let resp = c.tx.send_request(req).await?;
            let status = resp.status();
            let body = resp.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>((status, body))
        }
        .await;
        match result {
            Ok(r) => Ok(r),
            Err(e) => {
                *conn = None;
                Err(Failure::new("transport", format!("{path}: {e}")))
            }
        }
    }

    /// `GET path`, expecting 200 and a JSON body of type `T`.
    pub(super) async fn get_json<T: for<'de> Deserialize<'de>>(
        &self,
        conn: &mut Option<Conn>,
        path: &str,
    ) -> Result<T, Failure> {
        let (status, body) = self
            .call(conn, Method::GET, path, None, Bytes::new())
            .await?;
        expect_status(status, StatusCode::OK, &body)?;
        serde_json::from_slice(&body).map_err(|e| Failure::bad(format!("{path}: {e}")))
    }
}

/// `Ok` if the status is `want`; otherwise a failure counted by status, with the body's start.
pub(super) fn expect_status(got: StatusCode, want: StatusCode, body: &[u8]) -> Result<(), Failure> {
    if got == want {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
    Err(Failure::new(
        format!("status {}", got.as_u16()),
        format!("expected {want}, got {got}: {text}"),
    ))
}
