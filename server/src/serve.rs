//! Running the server: open the store, start the sequencer, accept connections, shut down
//! gracefully.
//!
//! [`Server::start`] does everything that can fail before a port is used (store, key, recovery);
//! [`Server::run`] serves a bound listener until `shutdown` resolves, then stops accepting, lets
//! in-flight requests finish (bounded by `shutdown_grace_secs`), has the sequencer commit and answer
//! everything queued, and returns. Tests bind `127.0.0.1:0` and call the same functions as `main`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use sealtrail_spec::note::Ed25519Signer;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt as _;

use crate::api::{AppState, TileCache, router};
use crate::auth::{Guard, Peer, SecurityEvent, SecurityEventKind};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::sequencer::{self, SequencerConfig, SequencerHandle, StartError};
use crate::store::LogStore;
use crate::tls::Tls;
use crate::witnessing::Witnessing;

/// A started log: store open, state recovered and checked, sequencer running.
#[derive(Debug)]
pub struct Server {
    state: AppState,
    sequencer: std::thread::JoinHandle<()>,
    tls: Option<Arc<Tls>>,
}

impl Server {
    /// Recovers the log from `store` and starts its sequencer.
    pub fn start(
        config: Config,
        store: Arc<dyn LogStore>,
        signer: Ed25519Signer,
    ) -> Result<Self, StartError> {
        let metrics = Arc::new(
            Metrics::new().map_err(|e| StartError::Config(format!("registering metrics: {e}")))?,
        );
        let seq_config = SequencerConfig {
            origin: config.origin.clone(),
            queue_entries: config.limits.queue_entries,
            commit_max_entries: config.limits.commit_max_entries,
            // Only for a real data directory (in-memory test stores have none).
            disk_guard: config
                .data_dir
                .is_dir()
                .then(|| (config.data_dir.clone(), config.limits.min_free_bytes)),
        };
        let verifier_key = signer.verifier().to_vkey();
        metrics
            .queue_capacity
            .set(i64::try_from(config.limits.queue_entries).unwrap_or(i64::MAX));
        let witnessing = Arc::new(
            Witnessing::new(&config, &verifier_key, metrics.registry())
                .map_err(|e| StartError::Config(e.to_string()))?,
        );
        // Access control and TLS files are checked before the sequencer starts.
        let guard = Guard::new(&config, Some(metrics.security_events.clone()))
            .map_err(StartError::Config)?;
        let tls = Tls::load(&config.tls)
            .map_err(|e| StartError::Config(format!("tls: {e}")))?
            .map(Arc::new);
        let (seq, sequencer) =
            sequencer::start(store.clone(), signer, &seq_config, metrics.clone())?;
        Ok(Server {
            state: AppState {
                store,
                seq,
                config: Arc::new(config),
                verifier_key: verifier_key.into(),
                metrics,
                cache: Arc::new(TileCache::default()),
                witnessing,
                guard: Arc::new(guard),
            },
            sequencer,
            tls,
        })
    }

    /// The shared state (for tests and in-process use).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The sequencer handle.
    pub fn sequencer(&self) -> &SequencerHandle {
        &self.state.seq
    }

    /// The TLS state, when TLS is on (to reload certificates).
    pub fn tls(&self) -> Option<&Arc<Tls>> {
        self.tls.as_ref()
    }

    /// Serves `listener` until `shutdown` resolves, then shuts down gracefully. With TLS on,
    /// every connection is a TLS connection (handshake bounded by
    /// `limits.tls_handshake_timeout_secs`); see [`reload_on_sighup`] for certificate reloads.
    pub async fn run(self, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        let limits = self.state.config.limits.clone();
        let app = router(self.state.clone());
        let mut witness_tasks = self
            .state
            .witnessing
            .spawn(self.state.seq.clone(), self.state.store.clone());
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout())
            .keep_alive(true);
        let graceful = GracefulShutdown::new();
        let connections = Arc::new(Semaphore::new(limits.max_connections));
        tokio::pin!(shutdown);
        loop {
            let permit = tokio::select! {
                () = &mut shutdown => break,
                p = connections.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => break,
                },
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
            let _ = stream.set_nodelay(true);
            let conn = Connection {
                app: app.clone(),
                builder: builder.clone(),
                graceful: graceful.watcher(),
                peer,
                events: self.state.guard.events.clone(),
            };
            let tls = self.tls.clone();
            let handshake = limits.tls_handshake_timeout();
            tokio::spawn(async move {
                match tls {
                    None => conn.serve(stream, None).await,
                    Some(tls) => conn.serve_tls(stream, &tls, handshake).await,
                }
                drop(permit);
            });
        }
        drop(listener);
        witness_tasks.abort_all();
        tracing::info!("shutting down: no longer accepting connections");
        let grace = Duration::from_secs(limits.shutdown_grace_secs);
        if tokio::time::timeout(grace, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!(
                "in-flight requests did not finish within {}s",
                grace.as_secs()
            );
        }
        self.stop().await;
    }

    /// Stops the sequencer after it has committed and answered everything queued.
    pub async fn stop(self) {
        self.state.seq.shutdown();
        let Server {
            state, sequencer, ..
        } = self;
        drop(state);
        let _ = tokio::task::spawn_blocking(move || sequencer.join()).await;
        tracing::info!("stopped");
    }
}

/// One accepted connection, ready to be served over plain TCP or TLS.
struct Connection {
    app: axum::Router,
    builder: hyper::server::conn::http1::Builder,
    graceful: hyper_util::server::graceful::Watcher,
    peer: std::net::SocketAddr,
    events: Arc<crate::auth::SecurityEvents>,
}

impl Connection {
    /// Serves HTTP/1.1 on `io`; every request carries the [`Peer`].
    async fn serve<I>(self, io: I, cert_principal: Option<Arc<str>>)
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let Connection {
            app,
            builder,
            graceful,
            peer,
            events,
        } = self;
        let info = Peer {
            addr: peer,
            cert_principal,
        };
        let service = hyper::service::service_fn(move |mut req: hyper::Request<_>| {
            req.extensions_mut().insert(info.clone());
            app.clone().oneshot(req)
        });
        let conn = graceful.watch(builder.serve_connection(TokioIo::new(io), service));
        if let Err(e) = conn.await {
            tracing::debug!(%peer, error = %e, "connection ended with an error");
            // Requests hyper refuses before the router sees them are security events too.
            let kind = if e.is_timeout() {
                Some(SecurityEventKind::Timeout)
            } else if e.is_parse_too_large() {
                Some(SecurityEventKind::Oversized)
            } else if e.is_parse() {
                Some(SecurityEventKind::Malformed)
            } else {
                None
            };
            if let Some(kind) = kind {
                let detail = e.to_string();
                events.record(SecurityEvent::new(
                    kind,
                    None,
                    Some(peer.ip()),
                    "",
                    "",
                    &detail,
                ));
            }
        }
    }
}

impl Connection {
    /// The TLS handshake (bounded by `timeout`), the client certificate's principal, then HTTP.
    /// A failed handshake, or a certificate without a usable name, closes the connection and is
    /// a security event.
    async fn serve_tls(self, stream: tokio::net::TcpStream, tls: &Tls, timeout: Duration) {
        let (peer, events) = (self.peer, self.events.clone());
        let why = match tokio::time::timeout(timeout, tls.acceptor().accept(stream)).await {
            Ok(Ok(s)) => match tls.client_principal(s.get_ref().1.peer_certificates()) {
                Ok(name) => return self.serve(s, name).await,
                Err(why) => why,
            },
            Ok(Err(e)) => e.to_string(),
            Err(_) => "handshake timed out".to_owned(),
        };
        events.record(SecurityEvent::new(
            SecurityEventKind::TlsHandshake,
            None,
            Some(peer.ip()),
            "",
            "",
            &why,
        ));
    }
}

/// Reloads the TLS files on every SIGHUP; a failed reload keeps the current ones. The handler is
/// installed when this is called (inside a runtime), so `main` calls it before announcing that it
/// listens: a SIGHUP's default action would end the process.
pub fn reload_on_sighup(tls: Arc<Tls>) -> impl Future<Output = ()> {
    let hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup());
    async move {
        let Ok(mut hup) = hup else {
            tracing::warn!("cannot listen for SIGHUP: TLS certificates reload only on restart");
            return;
        };
        while hup.recv().await.is_some() {
            match tls.reload() {
                Ok(()) => tracing::info!("TLS certificates reloaded"),
                Err(e) => {
                    tracing::error!(error = %e, "TLS reload failed; keeping the current certificates");
                }
            }
        }
    }
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed when this is called (inside a
/// runtime), not when it is first polled, so a signal sent right after "listening" is printed is
/// never lost.
pub fn shutdown_signal() -> impl Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let int = signal(SignalKind::interrupt());
    let term = signal(SignalKind::terminate());
    async move {
        let wait = |s: std::io::Result<tokio::signal::unix::Signal>| async move {
            match s {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = wait(int) => {},
            () = wait(term) => {},
        }
        tracing::info!("shutdown signal received");
    }
}
