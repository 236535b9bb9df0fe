//! The HTTP/1.1 accept loop: at most `max_connections` connections (more wait in the kernel's
//! accept queue, and the caller is told), at most `max_connections_per_ip` from one address (more
//! are closed at once), a header-read timeout against slow clients, optional TLS with a bounded
//! handshake, and a graceful shutdown that lets in-flight requests finish within a grace period.
//!
//! Every request carries a [`ConnInfo`] extension: the peer address and, with mutual TLS, the
//! principal its client certificate was given by [`TlsSetup::principal`].

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use rustls::pki_types::CertificateDer;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt as _;

use crate::tls::Tls;

/// The media type of a `Content-Type` value: before any parameters, trimmed, lowercase
/// (`"Application/JSON; charset=utf-8"` is `"application/json"`).
pub fn media_essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Whether a media type (from [`media_essence`]) is JSON: `application/json` or `*+json`.
pub fn is_json_media(essence: &str) -> bool {
    essence == "application/json" || essence.ends_with("+json")
}

/// Who is on the other end of a connection; an extension of every request.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// The peer's address.
    pub addr: SocketAddr,
    /// With mutual TLS, the principal named by the verified client certificate.
    pub cert_principal: Option<Arc<str>>,
}

/// Connection limits and timeouts.
#[derive(Debug, Clone, Copy)]
pub struct HttpOptions {
    /// Time a client may take to send its request headers.
    pub header_timeout: Duration,
    /// Most concurrent connections.
    pub max_connections: usize,
    /// Most concurrent connections from one IP address (0: no cap, e.g. behind a proxy whose
    /// one address carries every client). More are closed as soon as they are accepted.
    pub max_connections_per_ip: usize,
    /// Time in-flight requests get to finish after shutdown begins.
    pub shutdown_grace: Duration,
    /// Time a write to the client may stay blocked (the client reads nothing) before the
    /// connection is closed, so clients that never read their answers cannot hold the server's
    /// memory and connections.
    pub write_timeout: Duration,
    /// Time a TLS handshake may take.
    pub tls_handshake_timeout: Duration,
}

/// Names the principal of a verified client certificate chain (`Ok(None)` when the client sent
/// none); an error refuses the connection.
pub type PrincipalFn =
    dyn Fn(Option<&[CertificateDer<'_>]>) -> Result<Option<Arc<str>>, String> + Send + Sync;

/// Called when a TLS connection is refused (failed or timed-out handshake, unusable
/// certificate), with the peer and the reason.
pub type RefusedFn = dyn Fn(SocketAddr, &str) + Send + Sync;

/// Called when hyper ends a connection with an error (header timeout, malformed or oversized
/// request head, ...), with the peer.
pub type ConnErrorFn = dyn Fn(SocketAddr, &hyper::Error) + Send + Sync;

/// Which connection limit was reached (see [`ConnLimitFn`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnLimit {
    /// `max_connections`: new connections wait in the kernel's accept queue.
    Total,
    /// `max_connections_per_ip`: this address's new connection was closed.
    PerIp(std::net::IpAddr),
}

/// Told when a connection limit is reached: `Total` once each time the server fills up, `PerIp`
/// for every connection refused.
pub type ConnLimitFn = dyn Fn(ConnLimit) + Send + Sync;

/// Open connections per client address, for `max_connections_per_ip`.
#[derive(Default)]
struct PerIp(std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>);

impl PerIp {
    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<std::net::IpAddr, usize>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts a new connection from `ip`, unless it already has `cap` (then `false`).
    fn enter(&self, ip: std::net::IpAddr, cap: usize) -> bool {
        let mut m = self.lock();
        let n = m.entry(ip).or_insert(0);
        if cap > 0 && *n >= cap {
            if *n == 0 {
                m.remove(&ip);
            }
            return false;
        }
        *n += 1;
        true
    }

    fn leave(&self, ip: std::net::IpAddr) {
        let mut m = self.lock();
        if let Some(n) = m.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                m.remove(&ip);
            }
        }
    }
}

/// A connection counted in [`PerIp`], uncounted when dropped (whatever ends the task).
struct IpSlot(Arc<PerIp>, std::net::IpAddr);

impl Drop for IpSlot {
    fn drop(&mut self) {
        self.0.leave(self.1);
    }
}

/// TLS for [`serve`].
#[derive(Clone)]
pub struct TlsSetup {
    /// Certificates and acceptor.
    pub tls: Arc<Tls>,
    /// The principal of a client certificate.
    pub principal: Arc<PrincipalFn>,
    /// What to do about a refused connection (besides closing it).
    pub refused: Arc<RefusedFn>,
}

impl std::fmt::Debug for TlsSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSetup")
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then stops accepting, lets in-flight
/// requests finish (up to `shutdown_grace`) and returns. With `tls`, every connection is TLS
/// (certificate reloads are the caller's: see [`crate::signal::reload_on_sighup`]).
pub async fn serve(
    listener: TcpListener,
    app: axum::Router,
    opts: HttpOptions,
    tls: Option<TlsSetup>,
    on_error: Option<Arc<ConnErrorFn>>,
    on_limit: Option<Arc<ConnLimitFn>>,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(opts.header_timeout)
        // A client that sends its request and then shuts down its sending side (as `nc -N` and
        // some batch clients do) still gets its answer; hyper would otherwise drop it.
        .half_close(true)
        .keep_alive(true);
    let graceful = GracefulShutdown::new();
    let connections = Arc::new(Semaphore::new(opts.max_connections));
    let per_ip = Arc::new(PerIp::default());
    let limit = |l: ConnLimit| {
        if let Some(f) = &on_limit {
            f(l);
        }
    };
    // Whether the server is full: the limit is reported once each time it fills up.
    let mut full = false;
    tokio::pin!(shutdown);
    loop {
        let permit = match connections.clone().try_acquire_owned() {
            Ok(p) => {
                full = false;
                p
            }
            Err(_) => {
                if !std::mem::replace(&mut full, true) {
                    tracing::warn!(
                        max_connections = opts.max_connections,
                        "connection limit reached: new connections wait in the accept queue"
                    );
                    limit(ConnLimit::Total);
                }
                tokio::select! {
                    () = &mut shutdown => break,
                    p = connections.clone().acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => break,
                    },
                }
            }
        };
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    // Out of file descriptors and similar: log, back off briefly, go on.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let ip = peer.ip();
        if !per_ip.enter(ip, opts.max_connections_per_ip) {
            tracing::debug!(%ip, "per-address connection limit reached: connection closed");
            limit(ConnLimit::PerIp(ip));
            drop(stream);
            continue;
        }
        let _ = stream.set_nodelay(true);
        let conn = Connection {
            app: app.clone(),
            builder: builder.clone(),
            graceful: graceful.watcher(),
            peer,
            on_error: on_error.clone(),
            write_timeout: opts.write_timeout,
        };
        let tls = tls.clone();
        let handshake = opts.tls_handshake_timeout;
        let slot = IpSlot(per_ip.clone(), ip);
        tokio::spawn(async move {
            match tls {
                None => conn.serve(stream, None).await,
                Some(tls) => conn.serve_tls(stream, &tls, handshake).await,
            }
            drop(slot);
            drop(permit);
        });
    }
    drop(listener);
    drop(app);
    tracing::info!("shutting down: no longer accepting connections");
    if tokio::time::timeout(opts.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "in-flight requests did not finish within {}s",
            opts.shutdown_grace.as_secs()
        );
    }
}

/// One accepted connection.
struct Connection {
    app: axum::Router,
    builder: hyper::server::conn::http1::Builder,
    graceful: hyper_util::server::graceful::Watcher,
    peer: SocketAddr,
    on_error: Option<Arc<ConnErrorFn>>,
    write_timeout: Duration,
}

impl Connection {
    /// Serves HTTP/1.1 on `io`; every request carries the [`ConnInfo`].
    async fn serve<I>(self, io: I, cert_principal: Option<Arc<str>>)
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let Connection {
            app,
            builder,
            graceful,
            peer,
            on_error,
            write_timeout,
        } = self;
        let info = ConnInfo {
            addr: peer,
            cert_principal,
        };
        let service = hyper::service::service_fn(move |mut req: hyper::Request<_>| {
            req.extensions_mut().insert(info.clone());
            app.clone().oneshot(req)
        });
        let io = WriteTimeout::new(io, write_timeout);
        let conn = graceful.watch(builder.serve_connection(TokioIo::new(io), service));
        if let Err(e) = conn.await {
            tracing::debug!(%peer, error = %e, "connection ended with an error");
            if let Some(f) = on_error {
                f(peer, &e);
            }
        }
    }

    /// The TLS handshake (bounded by `timeout`), the client certificate's principal, then HTTP.
    async fn serve_tls(self, stream: tokio::net::TcpStream, tls: &TlsSetup, timeout: Duration) {
        let peer = self.peer;
        let why = match tokio::time::timeout(timeout, tls.tls.acceptor().accept(stream)).await {
            Ok(Ok(s)) => match (tls.principal)(s.get_ref().1.peer_certificates()) {
                Ok(name) => return self.serve(s, name).await,
                Err(why) => why,
            },
            Ok(Err(e)) => e.to_string(),
            Err(_) => "handshake timed out".to_owned(),
        };
        tracing::debug!(%peer, reason = %why, "TLS connection refused");
        (tls.refused)(peer, &why);
    }
}

/// A connection whose writes fail with `TimedOut` once one has been blocked (the peer's receive
/// window full) for longer than the timeout: hyper then closes the connection and frees what the
/// response held. Progress of any size restarts the clock.
struct WriteTimeout<I> {
    io: I,
    timeout: Duration,
    blocked: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl<I> WriteTimeout<I> {
    fn new(io: I, timeout: Duration) -> Self {
        WriteTimeout {
            io,
            timeout,
            blocked: None,
        }
    }

    /// After the inner write returned `r`: clear the clock on progress, run it while blocked.
    fn watch<T>(
        &mut self,
        cx: &mut std::task::Context<'_>,
        r: std::task::Poll<std::io::Result<T>>,
    ) -> std::task::Poll<std::io::Result<T>> {
        use std::task::Poll;
        match r {
            Poll::Ready(v) => {
                self.blocked = None;
                Poll::Ready(v)
            }
            Poll::Pending => {
                let timeout = self.timeout;
                let sleep = self
                    .blocked
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the client did not read its answer in time",
                    ))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl<I: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for WriteTimeout<I> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<I: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for WriteTimeout<I> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let r = std::pin::Pin::new(&mut self.io).poll_write(cx, buf);
        self.watch(cx, r)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let r = std::pin::Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.watch(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let r = std::pin::Pin::new(&mut self.io).poll_flush(cx);
        self.watch(cx, r)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let r = std::pin::Pin::new(&mut self.io).poll_shutdown(cx);
        self.watch(cx, r)
    }
}
