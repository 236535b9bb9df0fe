//! Process signals: SIGTERM/SIGINT for a graceful shutdown, SIGHUP to reload TLS certificates.

use std::future::Future;
use std::sync::Arc;

use tokio::signal::unix::{SignalKind, signal};

/// A future that resolves on SIGINT or SIGTERM. The handlers are installed when this is called
/// (on a runtime), not when the future is first polled, so a signal sent right after a caller
/// announces it is listening is not lost.
pub fn shutdown_signal() -> impl Future<Output = ()> {
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    async move {
        match (term, int) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {},
                    _ = int.recv() => {},
                }
            }
            (Ok(mut one), Err(_)) | (Err(_), Ok(mut one)) => {
                one.recv().await;
            }
            (Err(_), Err(_)) => std::future::pending::<()>().await,
        }
        tracing::info!("shutdown signal received");
    }
}

/// A future that reloads `tls` on every SIGHUP until it is dropped; a failed reload keeps the
/// current certificates and is logged. The handler is installed when this is called (on a
/// runtime): call it before announcing that the process listens, since SIGHUP's default action
/// ends the process.
pub fn reload_on_sighup(tls: Arc<crate::tls::Tls>) -> impl Future<Output = ()> {
    let hup = signal(SignalKind::hangup());
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
