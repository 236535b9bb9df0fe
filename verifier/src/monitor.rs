//! `monitor`: follow a log. Each poll fetches the log's checkpoint, verifies it (origin, log
//! signature, witness quorum) and its consistency with the trusted checkpoint in the state file
//! (the proof computed from the log's tiles), and only then replaces the state, atomically
//! (write a temporary file, then rename). A bad checkpoint, a rollback or a fork never advances
//! the state; the caller turns the failure into an alert. The first poll without a state file
//! trusts the verified checkpoint it finds (trust on first use).

use std::path::Path;

use serde_json::{Value, json};

use crate::consistency::{self, ProofFrom};
use crate::source::Source;
use crate::trust::Trust;
use crate::{Error, Report, show};

/// One poll: verify the log's current checkpoint against the trusted state and advance it.
pub fn poll(trust: &Trust, source: &Source, state: &Path) -> Result<Report, Error> {
    let trusted = match state.exists() {
        true => Some(crate::read_file(state)?),
        false => None,
    };
    let trusted = trusted
        .map(|b| trust.open_signed(&b, "the trusted checkpoint in the state file"))
        .transpose()
        .map_err(|e| Error::Usage(e.to_string()))?;
    let note = source.checkpoint()?;
    let (cp, witnesses) = trust.open(&note, "the log's checkpoint")?;
    let (new_size, new_root) = (cp.checkpoint().size(), cp.checkpoint().root());
    let from = trusted.as_ref().map_or(0, |t| t.checkpoint().size());
    if let Some(t) = &trusted {
        let (old_size, old_root) = (t.checkpoint().size(), t.checkpoint().root());
        consistency::check(
            old_size,
            new_size,
            &old_root,
            &new_root,
            ProofFrom::Log(source),
        )?;
    }
    if trusted
        .as_ref()
        .is_none_or(|t| t.bytes() != note.as_slice())
    {
        crate::write_atomically(state, &note)?;
    }
    let mut lines = show::checkpoint_lines("checkpoint", &cp, &witnesses);
    lines.push(format!(
        "consistent with the trusted size {from}; state at size {new_size}"
    ));
    Ok(Report {
        lines,
        json: json!({
            "checkpoint": show::checkpoint_json(&cp, &witnesses),
            "trusted_size": from,
        }),
    })
}

/// The alert for a failed poll: one JSON object, printed as a line and sent to the webhook.
pub fn alert(origin: &str, error: &Error) -> Value {
    json!({
        "alert": error.category(),
        "origin": origin,
        "message": error.to_string(),
    })
}

/// POSTs the alert to `url` as JSON.
pub fn send_webhook(url: &str, alert: &Value) -> Result<(), Error> {
    let r = crate::source::http_client()?
        .post(url)
        .json(alert)
        .send()
        .map_err(|e| Error::Io(format!("alert webhook {url}: {e}")))?;
    if !r.status().is_success() {
        return Err(Error::Io(format!(
            "alert webhook {url}: HTTP {}",
            r.status()
        )));
    }
    Ok(())
}
