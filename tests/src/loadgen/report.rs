//! The report: the run's JSON [`Summary`], its row in the benchmark suite's results table
//! ([`Row`], [`Summary::row`]), and the table as Markdown ([`markdown`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::stats::{Commits, Latency, ProcessUse};

/// The JSON summary of a run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    /// The mode, as given on the command line.
    pub mode: String,
    /// `closed` or `open`.
    pub load: String,
    /// The target.
    pub url: String,
    /// The server's storage engine, from `GET /v1/log`.
    pub engine: String,
    /// Closed-loop workers, or the open loop's in-flight cap.
    pub concurrency: usize,
    /// Open loop: requests offered per second.
    pub offered_rate: Option<f64>,
    /// Payload bytes per entry.
    pub payload_bytes: usize,
    /// Entries per request for appends (1 unless batch mode).
    pub batch: usize,
    /// Seconds from the first request to the last answer.
    pub elapsed_s: f64,
    /// Requests sent.
    pub requests: u64,
    /// Requests answered as expected and verified.
    pub ok: u64,
    /// Requests that failed in any way (status, transport, malformed or unverifiable answer).
    pub errors: u64,
    /// Errors by kind.
    pub error_kinds: BTreeMap<String, u64>,
    /// The first error's full message, if any.
    pub first_error: Option<String>,
    /// Entries appended and acknowledged (0 for read modes).
    pub entries: u64,
    /// Successful requests per second.
    pub requests_per_s: f64,
    /// Acknowledged entries per second.
    pub entries_per_s: f64,
    /// Latency of the successful requests, in milliseconds (send to verified answer; open loop:
    /// scheduled start to verified answer).
    pub latency_ms: Latency,
    /// Responses whose proof (or tile hash) was verified cryptographically.
    pub verified: u64,
    /// Verification failures (also counted in `errors`).
    pub verify_failures: u64,
    /// Indices acknowledged more than once within this run (must be 0).
    pub duplicate_indices: u64,
    /// Tree size before and after the run.
    pub tree_size_before: u64,
    /// Tree size after the run.
    pub tree_size_after: u64,
    /// Acknowledged entries later proven into a fresh signed checkpoint.
    pub post_checked: u64,
    /// This process's CPU time during the run.
    pub generator: ProcessUse,
    /// The server's CPU time during the run and memory after it, if its pid was given.
    pub server: Option<ProcessUse>,
    /// The server's sequencer commits during the run (from its `/metrics`, when readable).
    pub server_commits: Option<Commits>,
}

/// One row of the benchmark suite's results table: a load-generator run (see
/// [`Summary::row`]) or a figure the suite measured otherwise (written by the suite script).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Row {
    /// What was measured, e.g. `append-64`.
    pub scenario: String,
    /// Storage engine, or what else ran (`postgresql`, `machine`).
    pub engine: String,
    /// The figure, with its unit.
    pub result: String,
    /// Median latency, ms.
    #[serde(default)]
    pub p50_ms: Option<f64>,
    /// 99th-percentile latency, ms.
    #[serde(default)]
    pub p99_ms: Option<f64>,
    /// Failed requests.
    #[serde(default)]
    pub errors: Option<u64>,
    /// The goal, in words (empty if none).
    #[serde(default)]
    pub goal: String,
    /// Whether the goal was met (`None`: no goal).
    #[serde(default)]
    pub met: Option<bool>,
    /// Context: CPU per request, machine load.
    #[serde(default)]
    pub note: String,
}

/// A number with thousands separators, rounded.
fn grouped(v: f64) -> String {
    let digits = format!("{:.0}", v.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The first field of `/proc/loadavg` (the 1-minute load average), if readable.
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

impl Summary {
    /// Whether the run saw no error and no verification failure.
    pub fn clean(&self) -> bool {
        self.errors == 0 && self.verify_failures == 0 && self.duplicate_indices == 0
    }

    /// This run as a results-table row, judged against a rate goal (entries/s for append modes,
    /// requests/s otherwise) and a p99 goal. A run with any error never meets its goal.
    pub fn row(&self, scenario: &str, goal_rate: Option<f64>, goal_p99_ms: Option<f64>) -> Row {
        let appends = self.entries > 0 || matches!(self.mode.as_str(), "append" | "batch");
        let (rate, unit) = if appends {
            (self.entries_per_s, "entries/s")
        } else {
            (self.requests_per_s, "requests/s")
        };
        let mut goal = Vec::new();
        if let Some(g) = goal_rate {
            goal.push(format!("≥ {} {unit}", grouped(g)));
        }
        if let Some(g) = goal_p99_ms {
            goal.push(format!("p99 ≤ {g} ms"));
        }
        let met = (goal_rate.is_some() || goal_p99_ms.is_some()).then(|| {
            self.clean()
                && goal_rate.is_none_or(|g| rate >= g)
                && goal_p99_ms.is_none_or(|g| self.latency_ms.p99 <= g)
        });
        let mut note = format!(
            "{} requests in {:.1} s; CPU per request: generator {:.0} µs",
            self.requests, self.elapsed_s, self.generator.cpu_us_per_request
        );
        if let Some(s) = &self.server {
            note.push_str(&format!(
                ", server {:.0} µs; server RSS {} MiB",
                s.cpu_us_per_request,
                s.rss_kib / 1024
            ));
        }
        if let Some(r) = self.offered_rate {
            note.push_str(&format!("; offered {} requests/s", grouped(r)));
        }
        if let Some(c) = self.server_commits.as_ref().filter(|c| c.count > 0) {
            note.push_str(&format!(
                "; {} server commits, mean {:.2} ms, p50 ≤ {:.1} ms, p99 ≤ {:.1} ms, max ≤ {:.1} ms, {} over 25.6 ms",
                grouped(c.count as f64),
                c.mean_ms,
                c.p50_le_ms,
                c.p99_le_ms,
                c.max_le_ms,
                c.over_25ms
            ));
        }
        if self.verified > 0 {
            note.push_str(&format!("; {} answers verified", self.verified));
        }
        if let Some(l) = load_average() {
            note.push_str(&format!("; load {l:.2}"));
        }
        Row {
            scenario: scenario.to_owned(),
            engine: self.engine.clone(),
            result: format!("{} {unit}", grouped(rate)),
            p50_ms: Some(self.latency_ms.p50),
            p99_ms: Some(self.latency_ms.p99),
            errors: Some(self.errors),
            goal: goal.join(", "),
            met,
            note,
        }
    }
}

/// The rows as a Markdown table.
pub fn markdown(rows: &[Row]) -> String {
    let ms = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.2}"));
    let mut out = String::from(
        "| scenario | engine | result | p50 ms | p99 ms | errors | goal | met | note |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let cell = |s: &str| s.replace('|', "\\|");
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            cell(&r.scenario),
            cell(&r.engine),
            cell(&r.result),
            ms(r.p50_ms),
            ms(r.p99_ms),
            r.errors.map_or(String::new(), |e| e.to_string()),
            cell(&r.goal),
            match r.met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "",
            },
            cell(&r.note),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_render_and_judge_goals() {
        assert_eq!(grouped(1234567.4), "1,234,567");
        assert_eq!(grouped(999.0), "999");
        let mut s = Summary {
            mode: "append".into(),
            load: "closed".into(),
            url: String::new(),
            engine: "redb".into(),
            concurrency: 64,
            offered_rate: None,
            payload_bytes: 256,
            batch: 1,
            elapsed_s: 2.0,
            requests: 40_000,
            ok: 40_000,
            errors: 0,
            error_kinds: BTreeMap::new(),
            first_error: None,
            entries: 40_000,
            requests_per_s: 20_000.0,
            entries_per_s: 20_000.0,
            latency_ms: Latency {
                p50: 2.0,
                p90: 5.0,
                p99: 25.0,
                max: 30.0,
                mean: 3.0,
            },
            verified: 0,
            verify_failures: 0,
            duplicate_indices: 0,
            tree_size_before: 0,
            tree_size_after: 40_000,
            post_checked: 100,
            generator: ProcessUse::default(),
            server: None,
            server_commits: None,
        };
        let r = s.row("append-64", Some(20_000.0), Some(25.0));
        assert_eq!(r.result, "20,000 entries/s");
        assert_eq!(r.goal, "≥ 20,000 entries/s, p99 ≤ 25 ms");
        assert_eq!(r.met, Some(true));
        assert_eq!(s.row("x", None, None).met, None);
        assert_eq!(s.row("x", Some(20_001.0), None).met, Some(false));
        assert_eq!(s.row("x", None, Some(24.9)).met, Some(false));
        s.errors = 1;
        assert_eq!(
            s.row("x", Some(1.0), None).met,
            Some(false),
            "errors never meet a goal"
        );
        let md = markdown(&[r]);
        assert_eq!(md.lines().count(), 3);
        assert!(md.contains("| append-64 | redb | 20,000 entries/s | 2.00 | 25.00 | 0 |"));
        assert!(md.contains("| yes |"));
    }
}
