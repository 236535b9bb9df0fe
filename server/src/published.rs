//! What the log has published: the latest durable tree and its signed checkpoint. The sequencer
//! makes it; the HTTP API, witnessing, forwarding and metrics read it.

use std::sync::Arc;
use std::time::SystemTime;

use sealtrail_spec::Hash;

/// The latest durable tree and its signed checkpoint.
#[derive(Debug, Clone)]
pub struct Published {
    /// Tree size.
    pub size: u64,
    /// Root hash at that size.
    pub root: Hash,
    /// The signed checkpoint note.
    pub checkpoint: Arc<Vec<u8>>,
    /// When the checkpoint was signed (kept out of the checkpoint body; for metrics and `/v1/log`).
    pub signed_at: SystemTime,
}
