//! Retention: `[[retention]]` rules and the job that erases expired records.
//!
//! A rule names an event type (exact, or a prefix ending in `*`; no `event_type` makes it the
//! default rule) and `keep_days`. A record expires when its entry's sequencing time is more than
//! `keep_days` before now under the most specific rule that matches its event type: an exact
//! match, else the longest matching prefix, else the default rule; with no rule, it never
//! expires. The log's own entries (`sealtrail.*`) never expire.
//!
//! The job ([`run_once`], scheduled by [`spawn`]) finds expired, live records by scanning the
//! leaves below the newest cutoff and erases them in parts through the sequencer, each part an
//! erasure entry recorded as by [`RETENTION_PRINCIPAL`]. Legal holds are applied by the sequencer:
//! a held record is skipped and found again on the next run, after its hold is released.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;

use sealtrail_spec::envelope::LeafEnvelope;

use crate::privacy::{ERASURE_CHUNK, ErasureNote, RETENTION_PRINCIPAL, new_request_id};
use crate::sequencer::{AdminOp, AdminOutcome, SequencerHandle};
use crate::store::LogStore;

/// Milliseconds in a day.
const DAY_MS: u64 = 86_400_000;
/// Leaves read per store call while scanning.
const SCAN_PAGE: u64 = 4096;

/// One `[[retention]]` rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionRule {
    /// The event types it covers: exact, or a prefix ending in `*` (`auth.*`). Absent: the
    /// default rule, for every event type no other rule matches and for entries without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    /// Days a record is kept after its entry was sequenced.
    pub keep_days: u64,
}

impl RetentionRule {
    /// How specifically the rule matches `event_type`: `None` if not at all; exact beats every
    /// prefix, a longer prefix beats a shorter one, and the default rule comes last.
    fn specificity(&self, event_type: Option<&str>) -> Option<usize> {
        match (&self.event_type, event_type) {
            (None, _) => Some(0),
            (Some(p), Some(t)) => match p.strip_suffix('*') {
                Some(prefix) if t.starts_with(prefix) => Some(1 + prefix.len()),
                Some(_) => None,
                None if p == t => Some(usize::MAX),
                None => None,
            },
            (Some(_), None) => None,
        }
    }
}

/// Checks a rule set: at most one default rule, no pattern twice, sane values.
pub fn validate(rules: &[RetentionRule]) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    for r in rules {
        if r.keep_days == 0 || r.keep_days > 100 * 366 {
            return Err(format!(
                "retention: keep_days must be 1 to 36600, got {}",
                r.keep_days
            ));
        }
        if let Some(p) = &r.event_type {
            let bare = p.strip_suffix('*').unwrap_or(p);
            if bare.contains('*') || p.len() > sealtrail_spec::envelope::MAX_EVENT_TYPE_LEN {
                return Err(format!(
                    "retention: event_type {p:?} must be an event type or a prefix ending in `*`"
                ));
            }
            if bare.starts_with(sealtrail_spec::envelope::RESERVED_EVENT_TYPE_PREFIX) {
                return Err(format!(
                    "retention: event_type {p:?}: the log's own entries never expire"
                ));
            }
        }
        if !seen.insert(r.event_type.clone()) {
            return Err(format!(
                "retention: two rules for {}",
                r.event_type.as_deref().unwrap_or("the default")
            ));
        }
    }
    Ok(())
}

/// The rule for an event type, if any.
pub fn rule_for<'a>(
    rules: &'a [RetentionRule],
    event_type: Option<&str>,
) -> Option<&'a RetentionRule> {
    rules
        .iter()
        .filter_map(|r| Some((r.specificity(event_type)?, r)))
        .max_by_key(|(s, _)| *s)
        .map(|(_, r)| r)
}

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// Records found expired.
    pub expired: u64,
    /// Records erased.
    pub erased: u64,
    /// Expired records kept because a legal hold covers them.
    pub held: u64,
    /// The erasure entries written.
    pub entries: Vec<u64>,
}

/// Finds the expired, live records of the published tree at `now_ms` and erases them, part by
/// part. Returns what it did, or why it stopped (parts before the error stay erased).
pub async fn run_once(
    store: &Arc<dyn LogStore>,
    seq: &SequencerHandle,
    rules: &[RetentionRule],
    now_ms: u64,
) -> Result<RetentionReport, String> {
    let mut report = RetentionReport::default();
    let Some(newest_cutoff) = rules
        .iter()
        .map(|r| now_ms.saturating_sub(r.keep_days.saturating_mul(DAY_MS)))
        .max()
    else {
        return Ok(report);
    };
    let size = seq.published().size;
    let request_id = new_request_id()?;
    let selector = json!({ "retention": { "as_of_ms": now_ms } });
    let mut part = 0u32;
    let mut start = 0u64;
    let mut candidates: Vec<u64> = Vec::new();
    loop {
        let end = (start + SCAN_PAGE).min(size);
        let (found, done) = if start < end {
            let st = store.clone();
            let rules = rules.to_vec();
            tokio::task::spawn_blocking(move || {
                expired_in(st.as_ref(), &rules, start, end, now_ms, newest_cutoff)
            })
            .await
            .map_err(|e| format!("retention scan task: {e}"))??
        } else {
            (Vec::new(), true)
        };
        report.expired += found.len() as u64;
        candidates.extend(found);
        let last = done || end >= size;
        while candidates.len() >= ERASURE_CHUNK || (last && !candidates.is_empty()) {
            let take = candidates.len().min(ERASURE_CHUNK);
            let indices: Vec<u64> = candidates.drain(..take).collect();
            part += 1;
            let op = AdminOp::Erase {
                indices,
                note: ErasureNote {
                    request_id: request_id.clone(),
                    part,
                    reason: "retention period elapsed".into(),
                    selector: selector.clone(),
                },
                requested_by: RETENTION_PRINCIPAL.into(),
            };
            match seq.admin(op).await.map_err(|e| e.to_string())? {
                AdminOutcome::Erased {
                    entry,
                    erased,
                    held,
                    ..
                } => {
                    report.erased += erased;
                    report.held += held.len() as u64;
                    report.entries.extend(entry);
                }
                other => return Err(format!("unexpected outcome {other:?}")),
            }
        }
        if last {
            return Ok(report);
        }
        start = end;
    }
}

/// Expired, live records among entries `start..end`; also whether the scan can stop (every
/// later entry was sequenced at or after the newest cutoff).
fn expired_in(
    store: &dyn LogStore,
    rules: &[RetentionRule],
    start: u64,
    end: u64,
    now_ms: u64,
    newest_cutoff: u64,
) -> Result<(Vec<u64>, bool), String> {
    let leaves = store.entries(start, end).map_err(|e| e.to_string())?;
    let erased: std::collections::HashSet<u64> = store
        .erased_records(start, end, usize::MAX)
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|(i, _)| i)
        .collect();
    let mut out = Vec::new();
    for (i, leaf) in (start..).zip(&leaves) {
        let env = LeafEnvelope::decode(leaf).map_err(|e| format!("entry {i}: {e}"))?;
        if env.time_ms >= newest_cutoff {
            // Times never decrease: nothing from here on has expired under any rule.
            return Ok((out, true));
        }
        if env.is_reserved() || erased.contains(&i) {
            continue;
        }
        let Some(rule) = rule_for(rules, env.event_type.as_deref()) else {
            continue;
        };
        if env.time_ms < now_ms.saturating_sub(rule.keep_days.saturating_mul(DAY_MS)) {
            out.push(i);
        }
    }
    Ok((out, false))
}

/// Runs [`run_once`] every `interval` (the first run right away) until the task is aborted.
pub async fn run(
    store: Arc<dyn LogStore>,
    seq: SequencerHandle,
    rules: Vec<RetentionRule>,
    interval: Duration,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = sealtrail_net::clock::unix_millis();
        match run_once(&store, &seq, &rules, now).await {
            Ok(r) if r.expired > 0 => tracing::info!(
                expired = r.expired,
                erased = r.erased,
                held = r.held,
                entries = ?r.entries,
                "retention: expired records erased"
            ),
            Ok(_) => tracing::debug!("retention: nothing expired"),
            Err(e) => {
                tracing::error!(error = %e, "retention run failed; retried next interval")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(t: Option<&str>, days: u64) -> RetentionRule {
        RetentionRule {
            event_type: t.map(str::to_owned),
            keep_days: days,
        }
    }

    #[test]
    fn the_most_specific_rule_wins() {
        let rules = [
            rule(None, 365),
            rule(Some("auth.*"), 90),
            rule(Some("auth.login"), 30),
            rule(Some("auth.admin.*"), 7),
        ];
        let days = |t: Option<&str>| rule_for(&rules, t).map(|r| r.keep_days);
        assert_eq!(days(Some("auth.login")), Some(30));
        assert_eq!(days(Some("auth.logout")), Some(90));
        assert_eq!(days(Some("auth.admin.grant")), Some(7));
        assert_eq!(days(Some("billing")), Some(365));
        assert_eq!(days(None), Some(365));
        assert_eq!(rule_for(&rules[1..], Some("billing")), None);
        assert!(validate(&rules).is_ok());
    }

    #[test]
    fn bad_rule_sets_are_refused() {
        assert!(validate(&[rule(None, 1), rule(None, 2)]).is_err());
        assert!(validate(&[rule(Some("a*b"), 1)]).is_err());
        assert!(validate(&[rule(Some("x"), 0)]).is_err());
        assert!(validate(&[rule(Some("sealtrail.*"), 5)]).is_err());
    }
}
