//! `sealtrail status`: a health check for scripts and monitoring systems (Nagios-style exit
//! codes: 0 healthy, 1 warning, 2 critical). It reads a running server's `/readyz`, `/v1/log`
//! and `/metrics`, and [`evaluate`] turns what it read into findings; the evaluation is a pure
//! function of its inputs, so every rule is unit-tested.

use std::time::Duration;

use serde::Serialize;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Healthy.
    Ok,
    /// Needs attention soon.
    Warning,
    /// Needs attention now.
    Critical,
}

impl Level {
    /// The process exit code for this level.
    pub fn exit_code(self) -> u8 {
        match self {
            Level::Ok => 0,
            Level::Warning => 1,
            Level::Critical => 2,
        }
    }
}

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// Which check.
    pub check: &'static str,
    /// Its level.
    pub level: Level,
    /// What it found, for humans.
    pub message: String,
}

/// Limits the checks compare against.
#[derive(Debug, Clone, Copy)]
pub struct Thresholds {
    /// Seconds entries may wait without a new checkpoint before the log counts as stuck.
    pub max_checkpoint_age_secs: f64,
    /// Seconds the newest witnessed checkpoint may go without meeting the policy.
    pub max_cosign_lag_secs: f64,
    /// Free fraction of the data directory's filesystem below which to warn.
    pub disk_warn_free: f64,
    /// Free fraction below which it is critical.
    pub disk_critical_free: f64,
    /// Entries a forwarding sink may lag behind before a warning (critical at ten times this).
    pub max_forward_lag_entries: f64,
    /// Fraction of the sequencer queue (`limits.queue_entries`) in use that warns (critical at
    /// 0.9, when writes are about to get 503).
    pub queue_warn_fraction: f64,
    /// Security events (auth failures, refusals, rate limiting, ...) per minute that warn
    /// (critical at ten times this).
    pub max_security_events_per_min: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            max_checkpoint_age_secs: 60.0,
            max_cosign_lag_secs: 300.0,
            disk_warn_free: 0.10,
            disk_critical_free: 0.05,
            max_forward_lag_entries: 100_000.0,
            queue_warn_fraction: 0.5,
            max_security_events_per_min: 5.0,
        }
    }
}

/// What was read from the server.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// `/readyz`: `Ok((status, body))`, or why it could not be fetched.
    pub readyz: Option<Result<(u16, String), String>>,
    /// `/v1/log`, if it was fetched.
    pub log: Option<serde_json::Value>,
    /// `/metrics` text, if it was fetched.
    pub metrics: Option<String>,
    /// The current Unix time in seconds.
    pub now_secs: f64,
}

/// The value of an unlabelled sample `name` in Prometheus text exposition.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    metric_samples(text, name)
        .into_iter()
        .next()
        .map(|(_, v)| v)
}

/// Every sample of `name` with its label text (`""` when unlabelled).
pub fn metric_samples<'a>(text: &'a str, name: &str) -> Vec<(&'a str, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            let (metric, labels) = match key.split_once('{') {
                Some((m, rest)) => (m, rest.trim_end_matches('}')),
                None => (key, ""),
            };
            (metric == name).then_some(())?;
            Some((labels, value.parse().ok()?))
        })
        .collect()
}

/// Fraction of the queue in use at which the queue check is critical.
const QUEUE_CRITICAL_FRACTION: f64 = 0.9;

/// Turns observations into findings, one per check that could run. `previous` is an earlier
/// observation of the same server (the rate checks need two); without it they do not run.
pub fn evaluate(o: &Observed, previous: Option<&Observed>, t: &Thresholds) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut push = |check, level, message: String| {
        out.push(Finding {
            check,
            level,
            message,
        });
    };
    match &o.readyz {
        None => {}
        Some(Err(e)) => push("reachable", Level::Critical, format!("server down: {e}")),
        Some(Ok((200, _))) => push("ready", Level::Ok, "ready".into()),
        Some(Ok((code, body))) => push(
            "ready",
            Level::Critical,
            format!("not ready (HTTP {code}): {}", body.trim()),
        ),
    }
    let Some(m) = &o.metrics else {
        return out;
    };
    let queued = metric(m, "sealtrail_queue_entries").unwrap_or(0.0);
    let signed = metric(m, "sealtrail_checkpoint_timestamp_seconds").unwrap_or(0.0);
    let age = (o.now_secs - signed).max(0.0);
    if queued > 0.0 && age > t.max_checkpoint_age_secs {
        push(
            "checkpoint",
            Level::Critical,
            format!("{queued} entries waiting, but the last checkpoint was signed {age:.0}s ago"),
        );
    } else {
        push(
            "checkpoint",
            Level::Ok,
            format!(
                "tree size {}, {queued} entries waiting",
                metric(m, "sealtrail_tree_size").unwrap_or(0.0)
            ),
        );
    }
    let witnessed = o
        .log
        .as_ref()
        .is_some_and(|l| l["witness_policy"].is_string());
    if witnessed {
        let target = metric(m, "sealtrail_witness_target_size").unwrap_or(0.0);
        let cosigned = metric(m, "sealtrail_cosigned_tree_size").unwrap_or(0.0);
        let when = metric(m, "sealtrail_cosigned_timestamp_seconds").unwrap_or(0.0);
        let lag = o.now_secs - when;
        if target > 0.0 && when == 0.0 {
            push(
                "witness_policy",
                Level::Warning,
                "no checkpoint has met the witness policy since the start".into(),
            );
        } else if cosigned < target && lag > t.max_cosign_lag_secs {
            push(
                "witness_policy",
                Level::Critical,
                format!(
                    "witness policy not met: newest cosigned size {cosigned} < {target}, for {lag:.0}s"
                ),
            );
        } else {
            push(
                "witness_policy",
                Level::Ok,
                format!("cosigned size {cosigned}"),
            );
        }
    }
    let capacity = metric(m, "sealtrail_queue_capacity_entries").unwrap_or(0.0);
    if capacity > 0.0 {
        let used = queued / capacity;
        let level = if used >= QUEUE_CRITICAL_FRACTION {
            Level::Critical
        } else if used >= t.queue_warn_fraction {
            Level::Warning
        } else {
            Level::Ok
        };
        push(
            "queue",
            level,
            format!(
                "{queued} of {capacity} entries queued ({:.0}%)",
                used * 100.0
            ),
        );
    }
    if let Some((rate, worst)) = previous.and_then(|p| security_event_rate(p, o)) {
        let level = if rate > t.max_security_events_per_min * 10.0 {
            Level::Critical
        } else if rate > t.max_security_events_per_min {
            Level::Warning
        } else {
            Level::Ok
        };
        let most = worst.map_or(String::new(), |(kind, r)| {
            format!(", most of them {kind} ({r:.1}/min)")
        });
        push(
            "security_events",
            level,
            format!("{rate:.1} security events per minute{most}"),
        );
    }
    let free = metric(m, "sealtrail_data_dir_free_bytes");
    let total = metric(m, "sealtrail_data_dir_size_bytes");
    if let (Some(free), Some(total)) = (free, total)
        && total > 0.0
    {
        let ratio = free / total;
        let level = if ratio < t.disk_critical_free {
            Level::Critical
        } else if ratio < t.disk_warn_free {
            Level::Warning
        } else {
            Level::Ok
        };
        push(
            "disk",
            level,
            format!(
                "{:.1}% free ({} MiB of {} MiB)",
                ratio * 100.0,
                (free / 1048576.0) as u64,
                (total / 1048576.0) as u64
            ),
        );
    }
    for (labels, lag) in metric_samples(m, "sealtrail_forward_lag_entries") {
        let level = if lag > t.max_forward_lag_entries * 10.0 {
            Level::Critical
        } else if lag > t.max_forward_lag_entries {
            Level::Warning
        } else {
            Level::Ok
        };
        push(
            "forwarding",
            level,
            format!("{{{labels}}} lags {lag} entries"),
        );
    }
    out
}

/// Security events per minute between two observations, and the kind with the most, from
/// `sealtrail_security_events_total{kind}`; `None` when either lacks the metrics or no time passed.
/// A counter that went down (the server restarted) counts from zero.
fn security_event_rate(
    before: &Observed,
    after: &Observed,
) -> Option<(f64, Option<(String, f64)>)> {
    let minutes = (after.now_secs - before.now_secs) / 60.0;
    if minutes <= 0.0 {
        return None;
    }
    let name = "sealtrail_security_events_total";
    let old = metric_samples(before.metrics.as_deref()?, name);
    let new = metric_samples(after.metrics.as_deref()?, name);
    let mut total = 0.0;
    let mut worst: Option<(String, f64)> = None;
    for (labels, now) in new {
        let was = old
            .iter()
            .find(|(l, _)| *l == labels)
            .map_or(0.0, |(_, v)| *v);
        let delta = if now >= was { now - was } else { now };
        let rate = delta / minutes;
        total += rate;
        let kind = labels
            .strip_prefix("kind=\"")
            .and_then(|k| k.strip_suffix('"'))
            .unwrap_or(labels);
        if rate > 0.0 && worst.as_ref().is_none_or(|(_, r)| rate > *r) {
            worst = Some((kind.to_owned(), rate));
        }
    }
    Some((total, worst))
}

/// The worst level among `findings` (`Ok` for none).
pub fn overall(findings: &[Finding]) -> Level {
    findings.iter().map(|f| f.level).max().unwrap_or(Level::Ok)
}

/// Reads `/readyz`, `/v1/log` and `/metrics` from the server at `base`.
pub fn observe(base: &str, token: Option<&str>, timeout: Duration) -> Observed {
    let now_secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = match reqwest::blocking::Client::builder()
        .timeout(timeout)
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            return Observed {
                readyz: Some(Err(format!("HTTP client: {e}"))),
                now_secs,
                ..Observed::default()
            };
        }
    };
    let base = base.trim_end_matches('/');
    let get = |path: &str| -> Result<(u16, String), String> {
        let mut req = client.get(format!("{base}{path}"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().map_err(|e| e.to_string())?;
        let code = resp.status().as_u16();
        Ok((code, resp.text().map_err(|e| e.to_string())?))
    };
    let readyz = get("/readyz");
    if readyz.is_err() {
        return Observed {
            readyz: Some(readyz),
            now_secs,
            ..Observed::default()
        };
    }
    let ok_body = |r: Result<(u16, String), String>| match r {
        Ok((200, body)) => Some(body),
        _ => None,
    };
    Observed {
        readyz: Some(readyz),
        log: ok_body(get("/v1/log")).and_then(|b| serde_json::from_str(&b).ok()),
        metrics: ok_body(get("/metrics")),
        now_secs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: f64 = 1_800_000_000.0;

    fn observed(metrics: &str, witnessed: bool) -> Observed {
        Observed {
            readyz: Some(Ok((200, "ready\n".into()))),
            log: Some(serde_json::json!({
                "witness_policy": if witnessed { serde_json::json!("quorum none\n") } else { serde_json::Value::Null },
            })),
            metrics: Some(metrics.to_owned()),
            now_secs: NOW,
        }
    }

    fn level_of(o: &Observed, check: &str) -> Level {
        evaluate(o, None, &Thresholds::default())
            .into_iter()
            .find(|f| f.check == check)
            .unwrap_or_else(|| panic!("no {check} finding"))
            .level
    }

    #[test]
    fn parses_prometheus_text() {
        let text = "# HELP x y\n# TYPE x gauge\nsealtrail_tree_size 42\n\
                    sealtrail_forward_lag_entries{sink=\"a\"} 3\n\
                    sealtrail_forward_lag_entries{sink=\"b\"} 5\n";
        assert_eq!(metric(text, "sealtrail_tree_size"), Some(42.0));
        assert_eq!(metric(text, "sealtrail_tree"), None);
        assert_eq!(
            metric_samples(text, "sealtrail_forward_lag_entries"),
            vec![("sink=\"a\"", 3.0), ("sink=\"b\"", 5.0)]
        );
    }

    #[test]
    fn down_and_not_ready_are_critical() {
        let o = Observed {
            readyz: Some(Err("connection refused".into())),
            ..Observed::default()
        };
        assert_eq!(
            overall(&evaluate(&o, None, &Thresholds::default())),
            Level::Critical
        );
        let o = Observed {
            readyz: Some(Ok((503, "the sequencer is not accepting writes".into()))),
            ..Observed::default()
        };
        assert_eq!(level_of(&o, "ready"), Level::Critical);
    }

    #[test]
    fn a_stale_checkpoint_with_waiting_entries_is_critical() {
        let fresh = format!(
            "sealtrail_queue_entries 10\nsealtrail_checkpoint_timestamp_seconds {}\n",
            NOW - 5.0
        );
        assert_eq!(level_of(&observed(&fresh, false), "checkpoint"), Level::Ok);
        let stale = format!(
            "sealtrail_queue_entries 10\nsealtrail_checkpoint_timestamp_seconds {}\n",
            NOW - 600.0
        );
        assert_eq!(
            level_of(&observed(&stale, false), "checkpoint"),
            Level::Critical
        );
        // An idle log is not stale: nothing is waiting.
        let idle = format!(
            "sealtrail_queue_entries 0\nsealtrail_checkpoint_timestamp_seconds {}\n",
            NOW - 86400.0
        );
        assert_eq!(level_of(&observed(&idle, false), "checkpoint"), Level::Ok);
    }

    #[test]
    fn witness_policy_checks() {
        let m = |target: u64, cosigned: u64, ago: f64| {
            format!(
                "sealtrail_witness_target_size {target}\nsealtrail_cosigned_tree_size {cosigned}\n\
                 sealtrail_cosigned_timestamp_seconds {}\n",
                if ago < 0.0 { 0.0 } else { NOW - ago }
            )
        };
        assert_eq!(
            level_of(&observed(&m(10, 10, 1.0), true), "witness_policy"),
            Level::Ok
        );
        assert_eq!(
            level_of(&observed(&m(12, 10, 10.0), true), "witness_policy"),
            Level::Ok
        );
        assert_eq!(
            level_of(&observed(&m(12, 10, 900.0), true), "witness_policy"),
            Level::Critical
        );
        assert_eq!(
            level_of(&observed(&m(12, 0, -1.0), true), "witness_policy"),
            Level::Warning
        );
        // No policy configured: no witness finding at all.
        let f = evaluate(
            &observed(&m(12, 0, -1.0), false),
            None,
            &Thresholds::default(),
        );
        assert!(f.iter().all(|f| f.check != "witness_policy"));
    }

    #[test]
    fn disk_and_forwarding_levels() {
        let disk = |free: u64| {
            format!("sealtrail_data_dir_free_bytes {free}\nsealtrail_data_dir_size_bytes 1000\n")
        };
        assert_eq!(level_of(&observed(&disk(500), false), "disk"), Level::Ok);
        assert_eq!(
            level_of(&observed(&disk(80), false), "disk"),
            Level::Warning
        );
        assert_eq!(
            level_of(&observed(&disk(20), false), "disk"),
            Level::Critical
        );
        let lag = |n: u64| format!("sealtrail_forward_lag_entries{{sink=\"siem\"}} {n}\n");
        assert_eq!(
            level_of(&observed(&lag(10), false), "forwarding"),
            Level::Ok
        );
        assert_eq!(
            level_of(&observed(&lag(200_000), false), "forwarding"),
            Level::Warning
        );
        assert_eq!(
            level_of(&observed(&lag(2_000_000), false), "forwarding"),
            Level::Critical
        );
        assert_eq!(
            overall(&evaluate(
                &observed(&lag(2_000_000), false),
                None,
                &Thresholds::default()
            ))
            .exit_code(),
            2
        );
    }

    #[test]
    fn queue_levels() {
        let q = |n: u64| {
            format!("sealtrail_queue_entries {n}\nsealtrail_queue_capacity_entries 1000\n")
        };
        assert_eq!(level_of(&observed(&q(10), false), "queue"), Level::Ok);
        assert_eq!(level_of(&observed(&q(500), false), "queue"), Level::Warning);
        assert_eq!(
            level_of(&observed(&q(950), false), "queue"),
            Level::Critical
        );
    }

    #[test]
    fn security_event_rate_needs_two_observations() {
        let events = |auth: u64, limited: u64, at: f64| Observed {
            now_secs: at,
            ..observed(
                &format!(
                    "sealtrail_security_events_total{{kind=\"auth_failure\"}} {auth}\n\
                     sealtrail_security_events_total{{kind=\"rate_limited\"}} {limited}\n"
                ),
                false,
            )
        };
        let t = Thresholds::default();
        let find = |now: &Observed, before: &Observed| {
            evaluate(now, Some(before), &t)
                .into_iter()
                .find(|f| f.check == "security_events")
                .unwrap()
        };
        // One observation: no rate.
        assert!(
            evaluate(&events(100, 0, NOW), None, &t)
                .iter()
                .all(|f| f.check != "security_events")
        );
        // 2 a minute: fine. 20 in a minute: a warning naming the kind. 600: critical.
        let before = events(100, 7, NOW - 60.0);
        assert_eq!(find(&events(102, 7, NOW), &before).level, Level::Ok);
        let f = find(&events(120, 7, NOW), &before);
        assert_eq!(f.level, Level::Warning);
        assert!(
            f.message.contains("auth_failure (20.0/min)"),
            "{}",
            f.message
        );
        assert_eq!(find(&events(100, 607, NOW), &before).level, Level::Critical);
        // A restarted server (counters reset) counts from zero, not negative.
        assert_eq!(find(&events(3, 0, NOW), &before).level, Level::Ok);
    }
}
