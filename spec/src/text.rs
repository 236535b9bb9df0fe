//! Small text helpers shared by the format modules and their users: canonical base64, hex, RFC
//! 3339 times, and the strict decimal rule (ASCII digits, no sign, no leading zeros except `0` itself) that every C2SP format
//! uses for sizes and indices.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

/// Decodes standard padded base64 and insists it re-encodes to the same text, which rejects
/// non-zero trailing bits and any other second spelling of the same bytes.
pub(crate) fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let bytes = B64.decode(text).ok()?;
    (B64.encode(&bytes) == text).then_some(bytes)
}

pub(crate) fn encode_base64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

/// Lowercase hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

pub(crate) fn from_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| char::from(c).to_digit(16);
    text.as_bytes()
        .chunks_exact(2)
        .map(|p| u8::try_from(digit(p[0])? * 16 + digit(p[1])?).ok())
        .collect()
}

/// Parses a canonical decimal `u64`: ASCII digits only, no sign, no leading zeros (but `0`).
pub fn parse_decimal(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    if b.is_empty() || b.len() > 20 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if b.len() > 1 && b[0] == b'0' {
        return None;
    }
    text.parse().ok()
}

/// `YYYY-MM-DDThh:mm:ss.mmmZ` for `ms` milliseconds since the Unix epoch (RFC 3339, UTC,
/// proleptic Gregorian), for any `u64`.
pub fn rfc3339_ms(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm, days_from_civil's
    // inverse); `days` is below 2^64 / 86_400_000, so the arithmetic fits in u64.
    let z = days + 719_468;
    let (era, doe) = (z / 146_097, z % 146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

/// Text from the log made safe to print: control characters (line breaks included), invisible
/// characters and bidirectional controls become `\u{..}` escapes, as `spec/docs/leaf-envelope.md`
/// asks of displays. The JSON output carries the exact text.
pub fn escape_display(text: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() || is_invisible(c) {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    out
}

/// Format characters that print as nothing or reorder the text around them: soft hyphen, Arabic
/// letter mark, Mongolian vowel separator, zero-width spaces and joiners, left-to-right and
/// right-to-left marks, bidirectional embeddings, overrides and isolates, line and paragraph
/// separators, word joiner and invisible operators, byte order mark, interlinear annotation
/// controls, and tag characters.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{ad}'
            | '\u{61c}'
            | '\u{180e}'
            | '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{206f}'
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffb}'
            | '\u{e0000}'..='\u{e007f}'
    )
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil), or
/// `None` before 1970 or for an invalid date.
fn days_from_civil(year: u64, month: u64, day: u64) -> Option<u64> {
    let leap = year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400));
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if year < 1970 || day == 0 || day > days_in_month {
        return None;
    }
    let y = if month <= 2 { year - 1 } else { year };
    let (era, yoe) = (y / 400, y % 400);
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe).checked_sub(719_468)
}

/// A point in time given as milliseconds since the Unix epoch (canonical decimal), an RFC 3339
/// date-time (`2026-12-01T10:00:00Z`, `2026-12-01T10:00:00.250+01:00`; seconds required, a
/// fraction is cut to milliseconds, `t` and `z` accepted) or a full date (`2026-12-01`, meaning
/// its midnight UTC). Returns the milliseconds, or why the text is none of these. Times before
/// 1970 are refused.
pub fn parse_time_ms(text: &str) -> Result<u64, String> {
    if let Some(ms) = parse_decimal(text) {
        return Ok(ms);
    }
    let bad = || {
        format!(
            "{text:?} is neither milliseconds since the Unix epoch nor an RFC 3339 time \
             (2026-12-01T10:00:00Z) or date (2026-12-01)"
        )
    };
    let b = text.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<u64> {
        let digits = b.get(range)?;
        digits
            .iter()
            .all(u8::is_ascii_digit)
            .then(|| digits.iter().fold(0, |n, d| n * 10 + u64::from(d - b'0')))
    };
    let date = (|| {
        (b.get(4) == Some(&b'-') && b.get(7) == Some(&b'-')).then_some(())?;
        days_from_civil(num(0..4)?, num(5..7)?, num(8..10)?)
    })()
    .ok_or_else(bad)?;
    if b.len() == 10 {
        return Ok(date * 86_400_000);
    }
    let ms = (|| {
        (matches!(b.get(10), Some(b'T' | b't'))
            && b.get(13) == Some(&b':')
            && b.get(16) == Some(&b':'))
        .then_some(())?;
        let (h, m, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
        // 60 is a leap second: counted as the next second's start, as Unix time does.
        (h < 24 && m < 60 && s <= 60).then_some(())?;
        let mut rest = b.get(19..)?;
        let mut frac_ms = 0;
        if let Some((b'.', tail)) = rest.split_first() {
            let n = tail.iter().take_while(|c| c.is_ascii_digit()).count();
            (n > 0).then_some(())?;
            for (i, d) in tail[..n].iter().take(3).enumerate() {
                frac_ms += u64::from(d - b'0') * [100, 10, 1][i];
            }
            rest = &tail[n..];
        }
        let local = date * 86_400_000 + ((h * 60 + m) * 60 + s) * 1000 + frac_ms;
        match rest {
            [b'Z' | b'z'] => Some(local),
            [sign @ (b'+' | b'-'), oh1, oh2, b':', om1, om2] => {
                let two = |a: u8, c: u8| {
                    (a.is_ascii_digit() && c.is_ascii_digit())
                        .then(|| u64::from(a - b'0') * 10 + u64::from(c - b'0'))
                };
                let (oh, om) = (two(*oh1, *oh2)?, two(*om1, *om2)?);
                (oh < 24 && om < 60).then_some(())?;
                let offset = (oh * 60 + om) * 60_000;
                if *sign == b'+' {
                    local.checked_sub(offset)
                } else {
                    local.checked_add(offset)
                }
            }
            _ => None,
        }
    })();
    ms.ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_is_strict() {
        assert_eq!(parse_decimal("0"), Some(0));
        assert_eq!(parse_decimal("18446744073709551615"), Some(u64::MAX));
        for bad in [
            "",
            "00",
            "007",
            "+7",
            "-1",
            " 1",
            "1 ",
            "1e3",
            "18446744073709551616",
            "٣",
        ] {
            assert_eq!(parse_decimal(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn times_parse_as_ms_rfc3339_or_date() {
        for (text, ms) in [
            ("0", 0),
            ("1765000000000", 1_765_000_000_000),
            ("1970-01-01", 0),
            ("2000-02-29", 951_782_400_000),
            ("2000-02-29T00:00:00.500Z", 951_782_400_500),
            ("2023-11-14T22:13:20.123456Z", 1_700_000_000_123),
            ("2023-11-14t22:13:20z", 1_700_000_000_000),
            ("2023-11-15T00:13:20+02:00", 1_700_000_000_000),
            ("2023-11-14T21:43:20.1-00:30", 1_700_000_000_100),
            ("2099-12-31T23:59:59.999Z", 4_102_444_799_999),
        ] {
            assert_eq!(parse_time_ms(text), Ok(ms), "{text}");
            // Every time the formatter writes parses back to itself.
            assert_eq!(parse_time_ms(&rfc3339_ms(ms)), Ok(ms), "{text}");
        }
        for bad in [
            "",
            "007",
            "1969-12-31",
            "2023-02-29",
            "2023-13-01",
            "2023-11-14T22:13Z",
            "2023-11-14T24:00:00Z",
            "2023-11-14T22:13:20",
            "2023-11-14T22:13:20.Z",
            "2023-11-14T22:13:20+0200",
            "2023-11-14 22:13:20Z",
            "1970-01-01T00:00:00+01:00",
            "yesterday",
        ] {
            assert!(parse_time_ms(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn hex_round_trip() {
        assert_eq!(to_hex(&[0, 0xab, 0xff]), "00abff");
        assert_eq!(from_hex("00ABff"), Some(vec![0, 0xab, 0xff]));
        assert_eq!(from_hex("0"), None);
        assert_eq!(from_hex("0g"), None);
    }
}
