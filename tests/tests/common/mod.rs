//! Live sealtrail servers on 127.0.0.1 for the end-to-end tests, each on a runtime of its own so
//! blocking clients (the verifier, export) can run on the test thread.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::sync::Arc;

use sealtrail_server::config::Config;
use sealtrail_server::serve::Server;
use sealtrail_server::store::LogStore;
use sealtrail_spec::note::Ed25519Signer;

/// A server on 127.0.0.1:0; stopped (gracefully, store closed) by [`Live::stop`] or on drop.
pub struct Live {
    pub url: String,
    pub http: reqwest::blocking::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: Option<tokio::task::JoinHandle<()>>,
    rt: tokio::runtime::Runtime,
}

impl Live {
    pub fn start(config: Config, store: Arc<dyn LogStore>, signer: Ed25519Signer) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (addr, done) = rt.block_on(async {
            let server = Server::start(config, store, signer).unwrap();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let done = tokio::spawn(server.run(listener, async {
                let _ = rx.await;
            }));
            (addr, done)
        });
        Live {
            url: format!("http://{addr}"),
            http: sealtrail_verifier::source::http_client().unwrap(),
            stop: Some(tx),
            done: Some(done),
            rt,
        }
    }

    /// Shuts the server down and waits until it has stopped (its store is released).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(done) = self.done.take() {
            let _ = self.rt.block_on(done);
        }
    }

    /// Appends `count` JSON entries tagged `history`, 100 per request.
    pub fn append(&self, history: &str, first: u64, count: u64) {
        for chunk in (first..first + count).collect::<Vec<_>>().chunks(100) {
            let body: String = chunk
                .iter()
                .map(|i| format!("{{\"history\":\"{history}\",\"n\":{i}}}\n"))
                .collect();
            let r = self
                .http
                .post(format!("{}/v1/entries/batch?wait=checkpoint", self.url))
                .header("content-type", "application/x-ndjson")
                .body(body)
                .send()
                .unwrap();
            assert!(r.status().is_success(), "{}", r.text().unwrap());
        }
    }

    pub fn get(&self, path: &str) -> Vec<u8> {
        let r = self
            .http
            .get(format!("{}/{path}", self.url))
            .send()
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.bytes().unwrap().to_vec()
    }

    pub fn json(&self, path: &str) -> serde_json::Value {
        serde_json::from_slice(&self.get(path)).unwrap()
    }

    pub fn source(&self) -> sealtrail_verifier::source::Source {
        sealtrail_verifier::source::Source::open(&self.url).unwrap()
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.shutdown();
    }
}
