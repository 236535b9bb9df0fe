//! `sealtrail-server`: the sealtrail log server as a library. `main.rs` is a thin CLI over it, and
//! tests run it in-process on `127.0.0.1:0`.

pub mod api;
pub mod archive;
pub mod auth;
pub mod config;
pub mod entry_view;
pub mod evidence;
pub mod export;
pub mod forward;
pub mod fsck;
pub mod http_error;
pub mod keys;
pub mod leader;
pub mod leafindex;
pub mod metrics;
pub mod migrate;
pub mod privacy;
pub mod published;
pub mod query;
pub mod retention;
pub mod sequencer;
pub mod serve;
pub mod space;
pub mod status;
pub mod store;
pub mod tls;
pub mod ui;
pub mod witnessing;
