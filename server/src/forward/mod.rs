//! Forwarding to SIEMs: every committed entry reaches every configured sink at least once.
//!
//! One tokio task per sink reads committed entries from the store, from the sink's durable cursor
//! up to the published tree size, in batches of `batch_entries`, sends each batch, and only when
//! the sink has acknowledged it advances the cursor (stored in the log's store, see
//! [`crate::store::CursorStore`]). A failed send is retried with exponential back-off and jitter,
//! for ever, without moving the cursor. The task wakes on the sequencer's published watch; it never
//! touches the append path, so a slow or dead sink costs appends nothing, and it holds one batch
//! at a time, so memory is bounded per sink. Sinks are independent tasks: one stuck sink never
//! blocks another.
//!
//! Besides entries a sink configured with `security_events = true` receives non-entry events
//! ([`ForwardEvent::Security`], e.g. access-control alarms or witness alarms) through a bounded
//! channel, best-effort: sent once with the next attempt, dropped (and counted) when the channel
//! is full, never cursor-tracked.
//!
//! Sinks: syslog RFC 5424 over UDP, TCP or TLS ([`syslog`]), HTTP NDJSON webhook, Splunk HEC and
//! Elasticsearch/OpenSearch `_bulk` ([`http`]), a local JSONL file with size-based rotation
//! ([`file`]).
//!
//! Layout, one concern per file: `config` (the `[[forward]]` section and its checks), `event`
//! (the forwarded document), `metrics`, `sink` (one type over the sink kinds, and how building or
//! sending fails), `run` (one sink's task: read, send, advance the cursor, wait) and `forwarders`
//! (building, starting and stopping the tasks). Their public names are re-exported here.

mod config;
mod event;
pub mod file;
mod forwarders;
pub mod http;
mod metrics;
mod run;
mod sink;
pub mod syslog;

pub use config::{SinkConfig, SinkConfigError, SinkKind, Transport, validate_all};
pub use event::{EntryEvent, ForwardEvent, entry_event};
pub use forwarders::{Forwarders, PrepareError, Prepared, SecurityEvents};
pub use metrics::ForwardMetrics;
pub use sink::{OpenError, SinkError};
