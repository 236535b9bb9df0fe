//! `checkpoint`: a checkpoint file's origin, log signature and witness quorum.

use serde_json::json;

use crate::trust::Trust;
use crate::{Error, Report, show};

/// Verifies the signed checkpoint `note`.
pub fn run(trust: &Trust, note: &[u8]) -> Result<Report, Error> {
    let (cp, witnesses) = trust.open(note, "checkpoint")?;
    Ok(Report {
        lines: show::checkpoint_lines("checkpoint", &cp, &witnesses),
        json: json!({ "checkpoint": show::checkpoint_json(&cp, &witnesses) }),
    })
}
