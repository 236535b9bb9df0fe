//! `sealtrail-witness`: a C2SP tlog-witness cosigner with gossip, split-view alarms and anchoring.
//!
//! The witness cosigns checkpoints of its configured logs only after verifying the log's
//! signature and a consistency proof from the checkpoint it cosigned last, and it stores the new
//! state durably (compare-and-swap) before answering. It compares its view with peer witnesses
//! and with the logs themselves, and on a split view it keeps the evidence, raises the alarm and
//! stops cosigning that log until an operator clears it. It can record every cosigned checkpoint
//! in anchors (a sealtrail log, a JSONL file, a webhook).
//!
//! `main.rs` is a thin CLI over this library; tests run [`Witness`] in-process on `127.0.0.1:0`:
//!
//! ```no_run
//! # async fn example(config: sealtrail_witness::Config) -> Result<(), Box<dyn std::error::Error>> {
//! let witness = sealtrail_witness::Witness::start(config)?;
//! println!("vkey {}", witness.verifier().to_vkey());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! witness.run(listener, std::future::pending()).await;
//! # Ok(()) }
//! ```
//!
//! | module | what |
//! |---|---|
//! | [`config`] | the TOML configuration |
//! | [`keys`] | the witness key file (generate, load with permission checks) |
//! | [`store`] | redb state: latest cosigned checkpoint per log, split-view evidence |
//! | [`add`] | `add-checkpoint`: every check and its status |
//! | [`serve`] | [`Witness`]: start, run, shutdown |
//! | [`metrics`] | Prometheus metrics |
//!
//! Gossip (`gossip.rs`) and anchoring (`anchor.rs`) are documented in their modules.

pub mod add;
mod anchor;
mod api;
pub mod config;
mod gossip;
pub mod keys;
pub mod metrics;
pub mod serve;
mod state;
pub mod store;

pub use anchor::{AnchorTokenError, EVENT_TYPE as ANCHOR_EVENT_TYPE};
pub use config::Config;
pub use sealtrail_net::signal::shutdown_signal;
pub use serve::{StartError, Witness};
