//! A stand-in witness for the browser test: it answers C2SP tlog-witness `add-checkpoint` by
//! cosigning the checkpoint it is sent (tlog-cosignature/v1) without keeping any state, or with
//! 503 while it is "down". Enough for the log to collect real cosignatures that the browser then
//! verifies; the consistency checks a real witness makes are tested with the real one elsewhere
//! (tests/tests/witnessed_log.rs).
#![allow(unreachable_pub)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use sealtrail_spec::cosignature::Cosigner;
use sealtrail_spec::note::Note;
use sealtrail_spec::witness::{AddCheckpointRequest, format_signature_lines};
use tokio::net::TcpListener;

/// A running stand-in witness.
pub struct FakeWitness {
    /// Its submission prefix.
    pub url: String,
    /// Its verifier key (type 0x04).
    pub vkey: String,
    down: Arc<AtomicBool>,
}

impl FakeWitness {
    /// Makes it answer 503 from now on.
    pub fn go_down(&self) {
        self.down.store(true, Ordering::SeqCst);
    }
}

/// Starts a witness named `name` on 127.0.0.1:0 (on the current runtime).
pub async fn start(name: &str, seed: [u8; 32]) -> FakeWitness {
    let cosigner = Arc::new(Cosigner::from_seed(name, seed).unwrap());
    let vkey = cosigner.verifier().to_vkey();
    let down = Arc::new(AtomicBool::new(false));
    let flag = down.clone();
    let app = Router::new().route(
        "/add-checkpoint",
        post(move |body: Bytes| async move { add_checkpoint(&cosigner, &flag, &body) }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    FakeWitness { url, vkey, down }
}

fn add_checkpoint(cosigner: &Cosigner, down: &AtomicBool, body: &[u8]) -> Response {
    if down.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "down").into_response();
    }
    let Ok(req) = AddCheckpointRequest::parse(body) else {
        return (StatusCode::BAD_REQUEST, "bad request").into_response();
    };
    let Ok(note) = Note::parse(req.checkpoint()) else {
        return (StatusCode::BAD_REQUEST, "bad checkpoint").into_response();
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    match cosigner.cosign(note.text(), now) {
        Ok(sig) => (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format_signature_lines(&[sig]),
        )
            .into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    }
}
