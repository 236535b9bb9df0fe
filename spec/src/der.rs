//! A strict DER reader, and the two writers an RFC 3161 request needs.
//!
//! Only what X.509, CMS and RFC 3161 structures use: single-byte tags (tag numbers below 31),
//! definite lengths in their shortest form, minimal INTEGERs. Anything else is refused with a
//! message naming the field being read, so a damaged token says where it broke.

use thiserror::Error;

/// Universal tags (with the constructed bit where DER requires it).
pub mod tag {
    /// BOOLEAN.
    pub const BOOLEAN: u8 = 0x01;
    /// INTEGER.
    pub const INTEGER: u8 = 0x02;
    /// BIT STRING.
    pub const BIT_STRING: u8 = 0x03;
    /// OCTET STRING.
    pub const OCTET_STRING: u8 = 0x04;
    /// NULL.
    pub const NULL: u8 = 0x05;
    /// OBJECT IDENTIFIER.
    pub const OID: u8 = 0x06;
    /// UTF8String.
    pub const UTF8_STRING: u8 = 0x0c;
    /// GeneralizedTime.
    pub const GENERALIZED_TIME: u8 = 0x18;
    /// SEQUENCE (constructed).
    pub const SEQUENCE: u8 = 0x30;
    /// SET (constructed).
    pub const SET: u8 = 0x31;

    /// A context-specific tag `[n]`; `constructed` for EXPLICIT tags and IMPLICIT SEQUENCE/SET.
    pub const fn context(n: u8, constructed: bool) -> u8 {
        0x80 | if constructed { 0x20 } else { 0 } | n
    }
}

/// Why DER could not be read: what was being read, and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{what}: {problem}")]
pub struct DerError {
    /// The field being read.
    pub what: &'static str,
    /// What was wrong with it.
    pub problem: String,
}

impl DerError {
    /// An error about `what`.
    pub fn new(what: &'static str, problem: impl Into<String>) -> Self {
        DerError {
            what,
            problem: problem.into(),
        }
    }
}

/// One element: its tag, its content, and its whole encoding (tag, length and content).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    /// The tag byte.
    pub tag: u8,
    /// The content octets.
    pub value: &'a [u8],
    /// The whole element as encoded.
    pub raw: &'a [u8],
}

impl<'a> Tlv<'a> {
    /// A reader over the content (for constructed elements).
    pub fn reader(&self) -> Reader<'a> {
        Reader::new(self.value)
    }
}

/// Reads elements one after another from a byte slice.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Reader { data }
    }

    /// Whether everything has been read.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The next element's tag, if any.
    pub fn peek_tag(&self) -> Option<u8> {
        self.data.first().copied()
    }

    /// The next element, whatever its tag.
    pub fn any(&mut self, what: &'static str) -> Result<Tlv<'a>, DerError> {
        let bad = |p: &str| DerError::new(what, p);
        let (&tag, rest) = self.data.split_first().ok_or_else(|| bad("missing"))?;
        if tag & 0x1f == 0x1f {
            return Err(bad("a multi-byte tag (not used by these formats)"));
        }
        let (&first, rest) = rest.split_first().ok_or_else(|| bad("no length"))?;
        let (len, rest) = match first {
            0..=0x7f => (usize::from(first), rest),
            0x80 => return Err(bad("an indefinite length (BER, not DER)")),
            0x81..=0x84 => {
                let n = usize::from(first & 0x7f);
                if rest.len() < n {
                    return Err(bad("truncated length"));
                }
                let (bytes, rest) = rest.split_at(n);
                if bytes[0] == 0 {
                    return Err(bad("a length with a leading zero byte"));
                }
                let len = bytes.iter().fold(0usize, |l, &b| (l << 8) | usize::from(b));
                if len < 0x80 {
                    return Err(bad("a long-form length below 128"));
                }
                (len, rest)
            }
            _ => return Err(bad("a length above 4 GiB")),
        };
        if rest.len() < len {
            return Err(bad(&format!(
                "truncated: {len} bytes declared, {} left",
                rest.len()
            )));
        }
        let header = self.data.len() - rest.len();
        let raw = &self.data[..header + len];
        let value = &rest[..len];
        self.data = &rest[len..];
        Ok(Tlv { tag, value, raw })
    }

    /// The next element, which must have tag `tag`.
    pub fn expect(&mut self, tag: u8, what: &'static str) -> Result<Tlv<'a>, DerError> {
        match self.peek_tag() {
            Some(t) if t == tag => self.any(what),
            Some(t) => Err(DerError::new(
                what,
                format!("tag 0x{t:02x} where 0x{tag:02x} was expected"),
            )),
            None => Err(DerError::new(what, "missing")),
        }
    }

    /// The next element if it has tag `tag`, else nothing (for OPTIONAL and DEFAULT fields).
    pub fn optional(&mut self, tag: u8, what: &'static str) -> Result<Option<Tlv<'a>>, DerError> {
        if self.peek_tag() == Some(tag) {
            self.any(what).map(Some)
        } else {
            Ok(None)
        }
    }

    /// A SEQUENCE's content, as a reader.
    pub fn sequence(&mut self, what: &'static str) -> Result<Reader<'a>, DerError> {
        self.expect(tag::SEQUENCE, what).map(|t| t.reader())
    }

    /// An OBJECT IDENTIFIER's content octets.
    pub fn oid(&mut self, what: &'static str) -> Result<&'a [u8], DerError> {
        let v = self.expect(tag::OID, what)?.value;
        if v.is_empty() || v.last().is_some_and(|b| b & 0x80 != 0) {
            return Err(DerError::new(what, "a malformed object identifier"));
        }
        Ok(v)
    }

    /// An INTEGER's content octets (two's complement, minimal).
    pub fn integer(&mut self, what: &'static str) -> Result<&'a [u8], DerError> {
        let v = self.expect(tag::INTEGER, what)?.value;
        check_integer(v, what)?;
        Ok(v)
    }

    /// A small non-negative INTEGER.
    pub fn small_uint(&mut self, what: &'static str) -> Result<u64, DerError> {
        let v = self.expect(tag::INTEGER, what)?.value;
        small_uint(v, what)
    }

    /// A BOOLEAN (DER: 0x00 or 0xff).
    pub fn boolean(&mut self, what: &'static str) -> Result<bool, DerError> {
        match self.expect(tag::BOOLEAN, what)?.value {
            [0x00] => Ok(false),
            [0xff] => Ok(true),
            _ => Err(DerError::new(
                what,
                "a BOOLEAN that is neither 0x00 nor 0xff",
            )),
        }
    }

    /// An OCTET STRING's content.
    pub fn octet_string(&mut self, what: &'static str) -> Result<&'a [u8], DerError> {
        self.expect(tag::OCTET_STRING, what).map(|t| t.value)
    }

    /// Fails if anything is left (trailing data inside a structure).
    pub fn finish(&self, what: &'static str) -> Result<(), DerError> {
        if self.data.is_empty() {
            Ok(())
        } else {
            Err(DerError::new(
                what,
                format!("{} unexpected trailing bytes", self.data.len()),
            ))
        }
    }
}

/// The INTEGER content octets `v` (of a universal or an IMPLICIT-tagged INTEGER) as a small
/// non-negative number.
pub fn small_uint(v: &[u8], what: &'static str) -> Result<u64, DerError> {
    check_integer(v, what)?;
    if v[0] & 0x80 != 0 || v.len() > 9 || (v.len() == 9 && v[0] != 0) {
        return Err(DerError::new(what, "out of range"));
    }
    Ok(v.iter().fold(0u64, |n, &b| (n << 8) | u64::from(b)))
}

/// Checks DER's minimal two's-complement INTEGER encoding.
fn check_integer(v: &[u8], what: &'static str) -> Result<(), DerError> {
    match v {
        [] => Err(DerError::new(what, "an empty INTEGER")),
        [0x00, b, ..] if b & 0x80 == 0 => Err(DerError::new(what, "a non-minimal INTEGER")),
        [0xff, b, ..] if b & 0x80 != 0 => Err(DerError::new(what, "a non-minimal INTEGER")),
        _ => Ok(()),
    }
}

/// The whole of `data` as exactly one element with tag `tag`.
pub fn single<'a>(data: &'a [u8], tag: u8, what: &'static str) -> Result<Tlv<'a>, DerError> {
    let mut r = Reader::new(data);
    let t = r.expect(tag, what)?;
    r.finish(what)?;
    Ok(t)
}

/// Encodes one element.
pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// Encodes a non-negative INTEGER given as big-endian magnitude bytes.
pub fn unsigned_integer(magnitude: &[u8]) -> Vec<u8> {
    let start = magnitude.iter().take_while(|&&b| b == 0).count();
    let m = &magnitude[start..];
    let mut content = Vec::with_capacity(m.len() + 1);
    if m.first().is_none_or(|b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(m);
    tlv(tag::INTEGER, &content)
}

/// Parses a dotted object identifier (`1.2.840.113549`) into its content octets.
pub fn oid_from_dotted(text: &str) -> Result<Vec<u8>, DerError> {
    let bad = || {
        DerError::new(
            "object identifier",
            format!("{text:?} is not dotted decimal"),
        )
    };
    let arcs: Vec<u64> = text
        .split('.')
        .map(|a| crate::parse_decimal(a).ok_or_else(bad))
        .collect::<Result<_, _>>()?;
    let (first, second) = match arcs[..] {
        [a, b, ..] if a < 2 && b < 40 || a == 2 => (a, b),
        _ => return Err(bad()),
    };
    let mut out = Vec::new();
    let head = first
        .checked_mul(40)
        .and_then(|h| h.checked_add(second))
        .ok_or_else(bad)?;
    for arc in std::iter::once(head).chain(arcs[2..].iter().copied()) {
        let mut groups = vec![(arc & 0x7f) as u8];
        let mut rest = arc >> 7;
        while rest > 0 {
            groups.push(0x80 | (rest & 0x7f) as u8);
            rest >>= 7;
        }
        out.extend(groups.iter().rev());
    }
    Ok(out)
}

/// The dotted form of an object identifier's content octets.
pub fn oid_to_dotted(oid: &[u8]) -> String {
    let mut arcs = Vec::new();
    let mut n: u64 = 0;
    for &b in oid {
        n = (n << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            arcs.push(n);
            n = 0;
        }
    }
    let mut out = match arcs.first() {
        Some(&h) if h < 80 => format!("{}.{}", h / 40, h % 40),
        Some(&h) => format!("2.{}", h - 80),
        None => return String::new(),
    };
    for a in &arcs[1..] {
        out.push_str(&format!(".{a}"));
    }
    out
}

/// A GeneralizedTime as RFC 3161 and RFC 5280 restrict it (`YYYYMMDDHHMMSS[.f*]Z`, UTC, no
/// trailing zeros in the fraction): milliseconds since the Unix epoch (a finer fraction is cut),
/// and the text.
pub fn generalized_time(value: &[u8], what: &'static str) -> Result<u64, DerError> {
    let bad = |p: &str| {
        DerError::new(
            what,
            format!(
                "{p} in GeneralizedTime {:?}",
                String::from_utf8_lossy(value)
            ),
        )
    };
    let text = std::str::from_utf8(value).map_err(|_| bad("not ASCII"))?;
    let body = text.strip_suffix('Z').ok_or_else(|| bad("no Z (UTC)"))?;
    let (whole, fraction) = match body.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (body, None),
    };
    if whole.len() != 14 || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("not YYYYMMDDHHMMSS"));
    }
    let rfc3339 = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &whole[0..4],
        &whole[4..6],
        &whole[6..8],
        &whole[8..10],
        &whole[10..12],
        &whole[12..14]
    );
    let secs_ms = crate::parse_time_ms(&rfc3339).map_err(|e| bad(&e))?;
    let millis = match fraction {
        None => 0,
        Some(f) => {
            if f.is_empty() || f.ends_with('0') || !f.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad("a malformed fraction"));
            }
            format!("{:0<3}", &f[..f.len().min(3)])
                .parse::<u64>()
                .map_err(|_| bad("a malformed fraction"))?
        }
    };
    Ok(secs_ms + millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_are_strict_der() {
        assert_eq!(
            Reader::new(&[0x04, 0x01, 0xaa]).any("x").unwrap().value,
            &[0xaa]
        );
        let long = tlv(tag::OCTET_STRING, &[7; 200]);
        assert_eq!(&long[..3], &[0x04, 0x81, 200]);
        let t = Reader::new(&long).any("x").unwrap();
        assert_eq!((t.value.len(), t.raw.len()), (200, 203));
        for (bytes, problem) in [
            (&[0x04, 0x80, 0x00, 0x00][..], "indefinite"),
            (&[0x04, 0x81, 0x05, 0, 0, 0, 0, 0][..], "below 128"),
            (&[0x04, 0x82, 0x00, 0x81][..], "leading zero"),
            (&[0x04, 0x05, 0x00][..], "truncated"),
            (&[0x1f, 0x01, 0x00][..], "multi-byte tag"),
            (&[0x04][..], "no length"),
        ] {
            let e = Reader::new(bytes).any("field").unwrap_err();
            assert!(e.to_string().contains(problem), "{e}");
            assert!(e.to_string().starts_with("field: "), "{e}");
        }
        let e = single(&[0x04, 0x00, 0x05, 0x00], tag::OCTET_STRING, "x").unwrap_err();
        assert!(e.problem.contains("2 unexpected trailing bytes"), "{e}");
    }

    #[test]
    fn integers_are_minimal_and_encoded_unsigned() {
        assert_eq!(unsigned_integer(&[0, 0, 0x7f]), vec![0x02, 0x01, 0x7f]);
        assert_eq!(unsigned_integer(&[0x80]), vec![0x02, 0x02, 0x00, 0x80]);
        assert_eq!(unsigned_integer(&[]), vec![0x02, 0x01, 0x00]);
        assert_eq!(
            Reader::new(&[0x02, 0x02, 0x01, 0x00])
                .small_uint("n")
                .unwrap(),
            256
        );
        for bad in [
            &[0x02, 0x02, 0x00, 0x01][..],
            &[0x02, 0x02, 0xff, 0x80],
            &[0x02, 0x00],
        ] {
            assert!(Reader::new(bad).integer("n").is_err(), "{bad:?}");
        }
        assert!(Reader::new(&[0x02, 0x01, 0xff]).small_uint("n").is_err());
    }

    #[test]
    fn oids_round_trip_through_dotted_text() {
        // id-kp-timeStamping and sha256, as RFC 5280 and RFC 5754 list their encodings.
        for (dotted, der) in [
            ("1.3.6.1.5.5.7.3.8", &[0x2b, 6, 1, 5, 5, 7, 3, 8][..]),
            (
                "2.16.840.1.101.3.4.2.1",
                &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01],
            ),
        ] {
            assert_eq!(oid_from_dotted(dotted).unwrap(), der);
            assert_eq!(oid_to_dotted(der), dotted);
        }
        for bad in ["", "1", "1.x", "3.1", "1.40", "1..2", "01.2"] {
            assert!(oid_from_dotted(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn generalized_times_follow_rfc_3161() {
        let t = |s: &str| generalized_time(s.as_bytes(), "genTime");
        assert_eq!(t("19700101000000Z").unwrap(), 0);
        assert_eq!(t("20261208013005Z").unwrap(), 1_796_693_405_000);
        assert_eq!(t("20261208013005.5Z").unwrap(), 1_796_693_405_500);
        assert_eq!(t("20261208013005.0421Z").unwrap(), 1_796_693_405_042);
        for bad in [
            "20261208013005",
            "20261208013005.50Z",
            "20261208013005.Z",
            "202612080130Z",
            "20261308013005Z",
            "20261208013005+0100",
        ] {
            assert!(t(bad).is_err(), "{bad}");
        }
    }
}
