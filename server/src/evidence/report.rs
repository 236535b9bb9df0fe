//! `report.html`: the package for people. One self-contained page (inline CSS and SVG, no
//! scripts, no external resources) that prints well to PDF: the scope, the checkpoint, counts per
//! event type and per day, every record, what was verified and the command that re-verifies the
//! package. Everything from the log is HTML-escaped, and invisible and bidirectional characters
//! are shown as `\u{..}` escapes (`spec/docs/leaf-envelope.md`, section 3).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use sealtrail_spec::checkpoint::Checkpoint;
use sealtrail_spec::envelope::LeafEnvelope;
use sealtrail_spec::record::PrivateRecord;
use sealtrail_spec::{escape_display, rfc3339_ms};

use super::Scope;

/// Distinct days above which the chart shows months.
const MAX_DAY_BARS: usize = 92;

/// What the report shows of one record.
#[derive(Debug, Clone)]
pub(super) struct Row {
    index: u64,
    time_ms: u64,
    event_type: Option<String>,
    principal: Option<String>,
    payload_size: u64,
    preview: Option<String>,
    pub(super) erased_by: Option<u64>,
    pub(super) in_scope: bool,
}

impl Row {
    pub(super) fn new(
        index: u64,
        env: &LeafEnvelope,
        record: Option<&PrivateRecord>,
        erased_by: Option<u64>,
        in_scope: bool,
    ) -> Self {
        Row {
            index,
            time_ms: env.time_ms,
            event_type: env.event_type.clone(),
            principal: record.map(|r| r.principal.clone()),
            payload_size: env.payload_size,
            preview: record.map(|r| super::preview(&r.payload)),
            erased_by,
            in_scope,
        }
    }
}

/// The facts the report states.
pub(super) struct Summary<'a> {
    pub(super) origin: &'a str,
    pub(super) verifier_key: &'a str,
    pub(super) scope: &'a Scope,
    pub(super) checkpoint: &'a Checkpoint,
    pub(super) cosigned: bool,
    pub(super) later_size: Option<u64>,
    pub(super) policy: bool,
    pub(super) content: bool,
    pub(super) created_ms: u64,
    pub(super) rows: &'a [Row],
}

/// Text from the log, safe in HTML text and attribute values.
fn html(text: &str) -> String {
    let shown = escape_display(text);
    let mut out = String::with_capacity(shown.len());
    for c in shown.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn day(ms: u64) -> String {
    rfc3339_ms(ms)[..10].to_owned()
}

const STYLE: &str = "
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1b1f24;margin:2rem auto;max-width:64rem;padding:0 1rem}
h1{font-size:1.5rem;margin:0 0 .25rem}h2{font-size:1.1rem;margin:1.75rem 0 .5rem;border-bottom:1px solid #d0d7de;padding-bottom:.25rem}
.sub{color:#57606a;margin:0 0 1rem}
table{border-collapse:collapse;width:100%;font-size:12.5px}
th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #e5e8eb;vertical-align:top}
th{background:#f6f8fa;font-weight:600}
td.n{text-align:right;font-variant-numeric:tabular-nums}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px;word-break:break-all}
dl{display:grid;grid-template-columns:12rem 1fr;gap:.2rem 1rem;margin:0}dt{color:#57606a}dd{margin:0}
.statement{background:#f6f8fa;border:1px solid #d0d7de;border-radius:6px;padding:.75rem 1rem}
pre{background:#0d1117;color:#e6edf3;padding:.75rem 1rem;border-radius:6px;white-space:pre-wrap;word-break:break-all}
.erased{color:#9a6700}.restricted{color:#57606a}
svg text{font:11px system-ui,sans-serif;fill:#57606a}
@media print{body{margin:0;max-width:none;font-size:11px}pre{background:#fff;color:#000;border:1px solid #999}
tr{break-inside:avoid}h2{break-after:avoid}@page{size:A4;margin:14mm}}
";

/// The whole page.
pub(super) fn render(s: &Summary<'_>) -> String {
    let mut o = String::with_capacity(4096 + s.rows.len() * 300);
    let in_scope: Vec<&Row> = s.rows.iter().filter(|r| r.in_scope).collect();
    let _ = writeln!(
        o,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>Evidence package: {origin}</title><style>{STYLE}</style></head><body>\n\
         <h1>Evidence package</h1><p class=\"sub\">Log <code>{origin}</code>, created \
         {created}</p>",
        origin = html(s.origin),
        created = rfc3339_ms(s.created_ms),
    );
    scope_section(&mut o, s, in_scope.len());
    let _ = writeln!(
        o,
        "<h2>Checkpoint</h2><dl><dt>Tree size</dt><dd>{size}</dd><dt>Root hash</dt>\
         <dd class=\"mono\">{root} (hex)<br>{root64} (base64, as in the checkpoint)</dd>\
         <dt>Witnessed</dt><dd>{witnessed}</dd>\
         <dt>Later checkpoint</dt><dd>{later}</dd></dl>",
        size = s.checkpoint.size(),
        root = s.checkpoint.root().to_hex(),
        root64 = s.checkpoint.root().to_base64(),
        witnessed = if s.cosigned {
            "yes: its cosignatures meet the log's witness policy (witness-policy)"
        } else if s.policy {
            "no: the package's checkpoint has only the log's signature"
        } else {
            "the log has no witnesses"
        },
        later = match s.later_size {
            Some(n) =>
                format!("size {n}, with a consistency proof from this checkpoint (consistency/)"),
            None => "none (this is the latest)".into(),
        },
    );
    counts_section(&mut o, &in_scope);
    records_section(&mut o, s);
    statement_section(&mut o, s);
    o.push_str("</body></html>\n");
    o
}

fn scope_section(o: &mut String, s: &Summary<'_>, n: usize) {
    let sc = s.scope;
    let or_any = |v: &Option<String>| v.as_deref().map_or("any".into(), html);
    let time = |v: Option<u64>, none: &str| {
        v.map_or(none.into(), |ms| format!("{} ({ms})", rfc3339_ms(ms)))
    };
    let _ = writeln!(
        o,
        "<h2>Scope</h2><dl><dt>Since (inclusive)</dt><dd>{since}</dd><dt>Until (exclusive)</dt>\
         <dd>{until}</dd><dt>Event type</dt><dd>{etype}</dd><dt>Principal</dt><dd>{principal}</dd>\
         <dt>Records</dt><dd>{n}{content}</dd></dl>",
        since = time(sc.since_ms, "the beginning"),
        until = time(sc.until_ms, "the checkpoint"),
        etype = or_any(&sc.event_type),
        principal = or_any(&sc.principal),
        content = if s.content {
            ""
        } else {
            " (content withheld: the package was requested without the reader role)"
        },
    );
}

fn counts_section(o: &mut String, rows: &[&Row]) {
    let mut by_type: BTreeMap<String, u64> = BTreeMap::new();
    for r in rows {
        *by_type
            .entry(r.event_type.clone().unwrap_or_else(|| "(none)".into()))
            .or_default() += 1;
    }
    o.push_str(
        "<h2>Records per event type</h2><table><tr><th>Event type</th><th>Records</th></tr>",
    );
    for (t, n) in &by_type {
        let _ = write!(
            o,
            "<tr><td><code>{}</code></td><td class=\"n\">{n}</td></tr>",
            html(t)
        );
    }
    o.push_str("</table>\n");
    let mut by_day: BTreeMap<String, u64> = BTreeMap::new();
    for r in rows {
        *by_day.entry(day(r.time_ms)).or_default() += 1;
    }
    let (unit, buckets) = if by_day.len() > MAX_DAY_BARS {
        let mut by_month: BTreeMap<String, u64> = BTreeMap::new();
        for (d, n) in by_day {
            *by_month.entry(d[..7].to_owned()).or_default() += n;
        }
        ("month", by_month)
    } else {
        ("day", by_day)
    };
    let _ = write!(o, "<h2>Records per {unit} (UTC)</h2>");
    o.push_str(&chart(&buckets));
}

/// A bar chart of `buckets` (label, count) as inline SVG.
fn chart(buckets: &BTreeMap<String, u64>) -> String {
    if buckets.is_empty() {
        return "<p>No records.</p>\n".into();
    }
    let (w, h, left, bottom) = (960.0_f64, 220.0_f64, 40.0_f64, 28.0_f64);
    let max = buckets.values().copied().max().unwrap_or(1).max(1) as f64;
    let step = (w - left) / buckets.len() as f64;
    let bar = (step * 0.8).clamp(1.0, 48.0);
    let mut s = format!(
        "<svg role=\"img\" aria-label=\"records per period\" viewBox=\"0 0 {w} {h}\" \
         width=\"100%\" xmlns=\"http://www.w3.org/2000/svg\">\
         <line x1=\"{left}\" y1=\"{y0}\" x2=\"{w}\" y2=\"{y0}\" stroke=\"#8c959f\"/>\
         <text x=\"{lx}\" y=\"12\" text-anchor=\"end\">{max}</text>\
         <text x=\"{lx}\" y=\"{y0}\" text-anchor=\"end\">0</text>",
        y0 = h - bottom,
        lx = left - 6.0,
    );
    let plot = h - bottom - 8.0;
    for (i, (label, n)) in buckets.iter().enumerate() {
        let bh = (*n as f64 / max * plot).max(1.0);
        let x = left + i as f64 * step + (step - bar) / 2.0;
        let _ = write!(
            s,
            "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bar:.1}\" height=\"{bh:.1}\" \
             fill=\"#0969da\"><title>{label}: {n}</title></rect>",
            y = h - bottom - bh,
        );
    }
    let first = buckets.keys().next().map_or("", String::as_str);
    let last = buckets.keys().next_back().map_or("", String::as_str);
    let _ = writeln!(
        s,
        "<text x=\"{left}\" y=\"{ty}\">{first}</text>\
         <text x=\"{w}\" y=\"{ty}\" text-anchor=\"end\">{last}</text></svg>",
        ty = h - 8.0,
    );
    s
}

fn records_section(o: &mut String, s: &Summary<'_>) {
    o.push_str(
        "<h2>Records</h2><table><tr><th>Index</th><th>Sequenced (UTC)</th><th>Event type</th>\
         <th>Principal</th><th>Bytes</th><th>Content</th></tr>\n",
    );
    for r in s.rows {
        let principal = r.principal.as_deref().map_or(String::new(), html);
        let content = match (&r.preview, r.erased_by) {
            (_, Some(e)) => format!("<span class=\"erased\">erased by entry {e}</span>"),
            (Some(p), None) => format!("<code>{}</code>", html(p)),
            (None, None) => "<span class=\"restricted\">withheld</span>".into(),
        };
        let role = if r.in_scope {
            String::new()
        } else {
            " (erasure entry, outside the scope)".into()
        };
        let _ = writeln!(
            o,
            "<tr><td class=\"n\">{index}</td><td>{time}</td><td><code>{etype}</code>{role}</td>\
             <td><code>{principal}</code></td><td class=\"n\">{size}</td><td>{content}</td></tr>",
            index = r.index,
            time = rfc3339_ms(r.time_ms),
            etype = r.event_type.as_deref().map_or(String::new(), html),
            size = r.payload_size,
        );
    }
    o.push_str("</table>\n");
}

fn statement_section(o: &mut String, s: &Summary<'_>) {
    let policy = if s.policy {
        " --policy witness-policy"
    } else {
        ""
    };
    let _ = writeln!(
        o,
        "<h2>Verification</h2><div class=\"statement\"><p>The log <code>{origin}</code> states, \
         under its key, that each record above is included in its tree of size {size} with root \
         <code>{root}</code>, and that each record's content matches the commitment in its \
         leaf. The package holds the evidence for this: the signed checkpoint, an inclusion \
         proof (tlog-proof) for every record, each record with its salt, the log's public key{w}, \
         and <code>manifest.json</code> with the SHA-256 of every file, signed by the log \
         (<code>manifest.sig</code>).</p><p>This page is a summary written by the log; it proves \
         nothing by itself. Verify the package offline, with the log's key and witness policy \
         obtained from a source you trust (not from the package), by running:</p>\
         <pre>sealtrail-verify evidence PACKAGE.tar.gz --log-key '{vkey}'{policy}</pre>\
         <p>It checks every file against the signed manifest, the checkpoint's signature{w2}, \
         every inclusion proof, every record against its commitment and the scope, every erasure \
         against its erasure entry, and the consistency proof when there is one.</p></div>",
        origin = html(s.origin),
        size = s.checkpoint.size(),
        root = s.checkpoint.root().to_hex(),
        w = if s.policy { " and witness policy" } else { "" },
        w2 = if s.policy {
            " and the witness quorum"
        } else {
            ""
        },
        vkey = html(s.verifier_key),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_text_is_escaped_and_invisible_characters_shown() {
        assert_eq!(
            html("<b onclick='x'>\"&\"</b>"),
            "&lt;b onclick=&#39;x&#39;&gt;&quot;&amp;&quot;&lt;/b&gt;"
        );
        // `user` U+202E `nigol` would display as `userlogin`.
        assert_eq!(html("user\u{202e}nigol"), "user\\u{202e}nigol");
        assert_eq!(html("a\nb\u{200b}"), "a\\u{a}b\\u{200b}");
    }

    fn buckets(days: &[(&str, u64)]) -> BTreeMap<String, u64> {
        days.iter().map(|(d, n)| ((*d).to_owned(), *n)).collect()
    }

    #[test]
    fn chart_has_one_bar_per_bucket_scaled_to_the_largest() {
        let svg = chart(&buckets(&[
            ("2026-12-01", 4),
            ("2026-12-02", 2),
            ("2026-12-05", 1),
        ]));
        assert_eq!(svg.matches("<rect").count(), 3);
        assert!(svg.contains("<title>2026-12-01: 4</title>"));
        // The largest bar fills the plot (220 - 28 - 8 = 184), the others in proportion.
        assert!(svg.contains("height=\"184.0\""), "{svg}");
        assert!(svg.contains("height=\"92.0\""), "{svg}");
        assert!(svg.contains("height=\"46.0\""), "{svg}");
        assert_eq!(chart(&BTreeMap::new()), "<p>No records.</p>\n");
    }

    #[test]
    fn many_days_are_counted_per_month() {
        let env = |t: u64| LeafEnvelope {
            time_ms: t,
            content_type: "text/plain".into(),
            event_type: Some("a".into()),
            payload_size: 0,
            commitment: [0; 32],
        };
        let day_ms = 86_400_000;
        let rows: Vec<Row> = (0..120)
            .map(|d| Row::new(d, &env(d * day_ms), None, None, true))
            .collect();
        let refs: Vec<&Row> = rows.iter().collect();
        let mut o = String::new();
        counts_section(&mut o, &refs);
        assert!(o.contains("Records per month (UTC)"), "{o}");
        // 1970-01 .. 1970-04: 31 + 28 + 31 + 30 = 120 days.
        assert_eq!(o.matches("<rect").count(), 4);
        assert!(o.contains("<title>1970-02: 28</title>"));
        let mut o = String::new();
        counts_section(&mut o, &refs[..10]);
        assert!(o.contains("Records per day (UTC)"));
        assert_eq!(o.matches("<rect").count(), 10);
    }
}
