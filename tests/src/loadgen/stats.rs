//! The statistics: each worker's tally of its requests ([`Stats`]), merged at the end, and what
//! the summary derives from it: latency percentiles, duplicate indices, CPU and memory of the
//! processes, and the server's commits from its `sealtrail_commit_seconds` histogram.

use std::collections::BTreeMap;
use std::time::Instant;

use hyper::body::Bytes;
use hyper::{Method, StatusCode};
use sealtrail_spec::Hash;
use serde::{Deserialize, Serialize};

use super::client::{Client, Conn, Failure};

/// One worker's (or one open-loop request's) tally.
#[derive(Default)]
pub(super) struct Stats {
    pub(super) requests: u64,
    pub(super) ok: u64,
    pub(super) entries: u64,
    pub(super) latencies_us: Vec<u32>,
    pub(super) errors: BTreeMap<String, u64>,
    pub(super) first_error: Option<String>,
    pub(super) verified: u64,
    pub(super) verify_failures: u64,
    /// Acknowledged index ranges `(first, count)`.
    pub(super) ranges: Vec<(u64, u64)>,
    /// Acknowledged `(index, leaf hash)` pairs kept for the post-run check.
    pub(super) samples: Vec<(u64, Hash)>,
}

impl Stats {
    /// Counts one request started at `started` (its latency runs until now).
    pub(super) fn record(&mut self, started: Instant, result: Result<Done, Failure>) {
        self.requests += 1;
        match result {
            Ok(done) => {
                self.ok += 1;
                self.entries += done.entries;
                let us = started.elapsed().as_micros();
                self.latencies_us
                    .push(u32::try_from(us).unwrap_or(u32::MAX));
                self.verified += u64::from(done.verified);
                if done.entries > 0 {
                    self.ranges.push((done.first_index, done.entries));
                }
                if let Some(s) = done.sample {
                    self.samples.push(s);
                }
            }
            Err(f) => {
                if f.verify {
                    self.verify_failures += 1;
                }
                *self.errors.entry(f.kind).or_default() += 1;
                if self.first_error.is_none() {
                    self.first_error = Some(f.message);
                }
            }
        }
    }

    /// Adds another tally to this one.
    pub(super) fn merge(&mut self, o: Stats) {
        self.requests += o.requests;
        self.ok += o.ok;
        self.entries += o.entries;
        self.latencies_us.extend(o.latencies_us);
        for (k, v) in o.errors {
            *self.errors.entry(k).or_default() += v;
        }
        if self.first_error.is_none() {
            self.first_error = o.first_error;
        }
        self.verified += o.verified;
        self.verify_failures += o.verify_failures;
        self.ranges.extend(o.ranges);
        self.samples.extend(o.samples);
    }
}

/// A successful request.
#[derive(Default)]
pub(super) struct Done {
    /// Entries acknowledged.
    pub(super) entries: u64,
    /// The first of them.
    pub(super) first_index: u64,
    /// Whether the answer was verified cryptographically.
    pub(super) verified: bool,
    /// An acknowledged `(index, leaf hash)` kept for the post-run check.
    pub(super) sample: Option<(u64, Hash)>,
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

/// Nearest-rank percentiles and the mean of latencies in microseconds, as milliseconds.
pub(super) fn latency(mut us: Vec<u32>) -> Latency {
    if us.is_empty() {
        return Latency::default();
    }
    us.sort_unstable();
    let at = |q: f64| {
        let i = ((us.len() as f64 * q).ceil() as usize).clamp(1, us.len()) - 1;
        f64::from(us[i]) / 1000.0
    };
    let sum: u64 = us.iter().map(|&v| u64::from(v)).sum();
    Latency {
        p50: at(0.50),
        p90: at(0.90),
        p99: at(0.99),
        max: at(1.0),
        mean: sum as f64 / us.len() as f64 / 1000.0,
    }
}

/// Index ranges acknowledged more than once (overlapping entries counted).
pub(super) fn duplicates(mut ranges: Vec<(u64, u64)>) -> u64 {
    ranges.sort_unstable();
    let mut dup = 0;
    let mut end = 0u64;
    for (i, (first, n)) in ranges.into_iter().enumerate() {
        let last = first.saturating_add(n);
        if i > 0 && first < end {
            dup += end.min(last) - first;
        }
        end = end.max(last);
    }
    dup
}

/// CPU and memory of a process over a run.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ProcessUse {
    /// User plus system CPU seconds during the run.
    pub cpu_s: f64,
    /// CPU microseconds per successful request.
    pub cpu_us_per_request: f64,
    /// Resident memory at the end, KiB.
    pub rss_kib: u64,
    /// Peak resident memory (VmHWM), KiB.
    pub peak_rss_kib: u64,
}

/// `/proc/<pid>/stat` utime+stime in seconds (USER_HZ is 100 on Linux), and VmRSS/VmHWM in KiB.
pub(super) fn proc_use(pid: &str) -> Option<(f64, u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Some((ticks as f64 / 100.0, kib("VmRSS:"), kib("VmHWM:")))
}

/// The server's sequencer commits (extend, sign, durable write) during a run, from the
/// difference of its `sealtrail_commit_seconds` histogram before and after. Percentiles are
/// the histogram's bucket bounds: "at most this long".
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Commits {
    /// Commits during the run.
    pub count: u64,
    /// Mean commit time, milliseconds.
    pub mean_ms: f64,
    /// Upper bound of the bucket holding the median, milliseconds.
    pub p50_le_ms: f64,
    /// Upper bound of the bucket holding the 99th percentile, milliseconds.
    pub p99_le_ms: f64,
    /// Upper bound of the bucket holding the slowest commit, milliseconds.
    pub max_le_ms: f64,
    /// Commits that took longer than 25.6 ms (the bucket bound nearest half of a 50 ms goal).
    pub over_25ms: u64,
}

/// A Prometheus histogram as cumulative `(le, count)` buckets, its sum and count.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Histogram {
    buckets: Vec<(f64, u64)>,
    sum: f64,
    count: u64,
}

/// Reads histogram `name` from a Prometheus text exposition (no labels besides `le`).
pub(super) fn parse_histogram(text: &str, name: &str) -> Option<Histogram> {
    let mut h = Histogram::default();
    let bucket = format!("{name}_bucket{{le=\"");
    let (sum, count) = (format!("{name}_sum "), format!("{name}_count "));
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix(&bucket) {
            let (le, n) = rest.split_once("\"} ")?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            h.buckets.push((le, n.trim().parse().ok()?));
        } else if let Some(v) = line.strip_prefix(&sum) {
            h.sum = v.trim().parse().ok()?;
        } else if let Some(v) = line.strip_prefix(&count) {
            h.count = v.trim().parse().ok()?;
        }
    }
    (!h.buckets.is_empty()).then_some(h)
}

/// The commits between two scrapes of the same server's `sealtrail_commit_seconds`.
pub(super) fn commits_between(before: &Histogram, after: &Histogram) -> Option<Commits> {
    if before.buckets.len() != after.buckets.len() || after.count < before.count {
        return None;
    }
    let count = after.count - before.count;
    let delta: Vec<(f64, u64)> = after
        .buckets
        .iter()
        .zip(&before.buckets)
        .map(|(a, b)| (a.0, a.1.saturating_sub(b.1)))
        .collect();
    let rank = |q: f64| {
        let want = ((count as f64) * q).ceil().max(1.0) as u64;
        delta
            .iter()
            .find(|(_, n)| *n >= want)
            .map_or(f64::INFINITY, |(le, _)| le * 1e3)
    };
    let within_25ms = delta
        .iter()
        .filter(|(le, _)| *le <= 0.0256 + 1e-9)
        .map(|(_, n)| *n)
        .max()
        .unwrap_or(0);
    Some(Commits {
        count,
        mean_ms: if count == 0 {
            0.0
        } else {
            (after.sum - before.sum) * 1e3 / count as f64
        },
        p50_le_ms: if count == 0 { 0.0 } else { rank(0.5) },
        p99_le_ms: if count == 0 { 0.0 } else { rank(0.99) },
        max_le_ms: if count == 0 { 0.0 } else { rank(1.0) },
        over_25ms: count.saturating_sub(within_25ms),
    })
}

/// The server's commit-latency histogram, or `None` if its `/metrics` is not readable (private
/// metrics without a token that may read them) or lacks it.
pub(super) async fn commit_histogram(http: &Client, conn: &mut Option<Conn>) -> Option<Histogram> {
    let (status, body) = http
        .call(conn, Method::GET, "/metrics", None, Bytes::new())
        .await
        .ok()?;
    if status != StatusCode::OK {
        return None;
    }
    parse_histogram(std::str::from_utf8(&body).ok()?, "sealtrail_commit_seconds")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_ranges_are_counted() {
        assert_eq!(duplicates(vec![(0, 10), (10, 5), (20, 1)]), 0);
        assert_eq!(duplicates(vec![(0, 10), (5, 10)]), 5);
        assert_eq!(duplicates(vec![(3, 1), (3, 1), (3, 1)]), 2);
        assert_eq!(duplicates(vec![(0, 100), (10, 5)]), 5);
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let l = latency((1..=100).map(|v| v * 1000).collect());
        assert_eq!(
            (l.p50, l.p90, l.p99, l.max, l.mean),
            (50.0, 90.0, 99.0, 100.0, 50.5)
        );
        assert_eq!(latency(vec![7000]).p99, 7.0);
    }

    #[test]
    fn commit_histograms_are_differenced() {
        let exposition = |b: [u64; 4], sum: f64| {
            format!(
                "# HELP sealtrail_commit_seconds x\n# TYPE sealtrail_commit_seconds histogram\n\
                 sealtrail_commit_seconds_bucket{{le=\"0.0128\"}} {}\n\
                 sealtrail_commit_seconds_bucket{{le=\"0.0256\"}} {}\n\
                 sealtrail_commit_seconds_bucket{{le=\"0.0512\"}} {}\n\
                 sealtrail_commit_seconds_bucket{{le=\"+Inf\"}} {}\n\
                 sealtrail_commit_seconds_sum {sum}\nsealtrail_commit_seconds_count {}\n\
                 sealtrail_other_bucket{{le=\"1\"}} 99\n",
                b[0], b[1], b[2], b[3], b[3]
            )
        };
        let before = parse_histogram(
            &exposition([10, 10, 10, 10], 0.05),
            "sealtrail_commit_seconds",
        )
        .expect("parses");
        assert_eq!(before.buckets.len(), 4);
        assert_eq!(before.buckets[3], (f64::INFINITY, 10));
        assert_eq!(before.count, 10);
        // 100 more commits: 97 within 12.8 ms, 1 within 25.6 ms, 1 within 51.2 ms, 1 beyond.
        let after = parse_histogram(
            &exposition([107, 108, 109, 110], 1.05),
            "sealtrail_commit_seconds",
        )
        .expect("parses");
        let c = commits_between(&before, &after).expect("same buckets");
        assert_eq!(c.count, 100);
        assert!((c.mean_ms - 10.0).abs() < 1e-9, "{}", c.mean_ms);
        assert!((c.p50_le_ms - 12.8).abs() < 1e-9, "{}", c.p50_le_ms);
        assert!((c.p99_le_ms - 51.2).abs() < 1e-9, "{}", c.p99_le_ms);
        assert_eq!(
            c.max_le_ms,
            f64::INFINITY,
            "the slowest is beyond the last bound"
        );
        assert_eq!(c.over_25ms, 2);
        assert!(
            commits_between(&after, &before).is_none(),
            "a restarted server"
        );
        assert!(parse_histogram("sealtrail_x 1\n", "sealtrail_commit_seconds").is_none());
    }
}
