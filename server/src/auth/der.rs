//! The few DER reads authentication needs: the key inside a `SubjectPublicKeyInfo` (RFC 5280
//! §4.1.2.7), and the subject common name and subject alternative names of a client certificate
//! (RFC 5280 §4.1.2.6, §4.2.1.6).
//!
//! Not a general X.509 parser: certificates reach it only after rustls/webpki verified their
//! chain, and it reads nothing but names. Every read is bounds-checked; malformed input gives
//! `None` or no names, never a panic.

/// `rsaEncryption` (1.2.840.113549.1.1.1), DER contents.
pub(crate) const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
/// `id-ecPublicKey` (1.2.840.10045.2.1).
pub(crate) const OID_EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// `id-Ed25519` (1.3.101.112).
pub(crate) const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];
/// `id-at-commonName` (2.5.4.3).
const OID_CN: &[u8] = &[0x55, 0x04, 0x03];
/// `id-ce-subjectAltName` (2.5.29.17).
const OID_SAN: &[u8] = &[0x55, 0x1d, 0x11];

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
const BIT_STRING: u8 = 0x03;
const OCTET_STRING: u8 = 0x04;

/// Reads one TLV with a single-byte tag; returns (tag, contents, rest).
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |a, b| (a << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// Reads one TLV that must have `tag`.
fn expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (t, contents, rest) = tlv(input)?;
    (t == tag).then_some((contents, rest))
}

/// The elements of a constructed value's contents.
fn elements(mut contents: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    std::iter::from_fn(move || {
        let (tag, value, rest) = tlv(contents)?;
        contents = rest;
        Some((tag, value))
    })
}

/// The algorithm OID and the key bits (without the unused-bits octet) of a SubjectPublicKeyInfo.
pub(crate) fn spki_parts(der: &[u8]) -> Option<(&[u8], &[u8])> {
    let (spki, rest) = expect(der, SEQUENCE)?;
    if !rest.is_empty() {
        return None;
    }
    let (alg, rest) = expect(spki, SEQUENCE)?;
    let (oid, _params) = expect(alg, OID)?;
    let (bits, rest) = expect(rest, BIT_STRING)?;
    let (&unused, key) = bits.split_first()?;
    (unused == 0 && rest.is_empty() && !key.is_empty()).then_some((oid, key))
}

/// The names a client certificate carries.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct CertNames {
    /// The subject's first common name.
    pub(crate) cn: Option<String>,
    /// `dNSName` SANs.
    pub(crate) dns: Vec<String>,
    /// `rfc822Name` (e-mail) SANs.
    pub(crate) email: Vec<String>,
    /// `uniformResourceIdentifier` SANs (SPIFFE IDs, for example).
    pub(crate) uri: Vec<String>,
}

/// Reads the subject CN and the SANs of a DER certificate.
pub(crate) fn cert_names(cert: &[u8]) -> CertNames {
    let mut names = CertNames::default();
    let Some((c, _)) = expect(cert, SEQUENCE) else {
        return names;
    };
    let Some((tbs, _)) = expect(c, SEQUENCE) else {
        return names;
    };
    // version [0]?, serial, signature, issuer, validity, subject, spki, [1]?, [2]?, [3] extensions
    let fields: Vec<(u8, &[u8])> = elements(tbs).collect();
    let skip = usize::from(fields.first().is_some_and(|(t, _)| *t == 0xa0));
    if let Some((SEQUENCE, subject)) = fields.get(skip + 4) {
        names.cn = common_name(subject);
    }
    if let Some((_, exts)) = fields.iter().find(|(t, _)| *t == 0xa3)
        && let Some((list, _)) = expect(exts, SEQUENCE)
    {
        for (_, ext) in elements(list).filter(|(t, _)| *t == SEQUENCE) {
            read_san(ext, &mut names);
        }
    }
    names
}

fn common_name(name: &[u8]) -> Option<String> {
    elements(name)
        .filter(|(t, _)| *t == SET)
        .flat_map(|(_, set)| elements(set))
        .filter(|(t, _)| *t == SEQUENCE)
        .find_map(|(_, atv)| {
            let (oid, rest) = expect(atv, OID)?;
            if oid != OID_CN {
                return None;
            }
            let (_, value, _) = tlv(rest)?;
            String::from_utf8(value.to_vec()).ok()
        })
}

fn read_san(ext: &[u8], names: &mut CertNames) {
    let Some((oid, rest)) = expect(ext, OID) else {
        return;
    };
    if oid != OID_SAN {
        return;
    }
    // An optional `critical` BOOLEAN precedes the OCTET STRING.
    let Some((value, _)) = elements(rest)
        .find(|(t, _)| *t == OCTET_STRING)
        .map(|(_, v)| (v, ()))
    else {
        return;
    };
    let Some((general_names, _)) = expect(value, SEQUENCE) else {
        return;
    };
    for (tag, v) in elements(general_names) {
        let Ok(text) = std::str::from_utf8(v) else {
            continue;
        };
        match tag {
            0x81 => names.email.push(text.to_owned()),
            0x82 => names.dns.push(text.to_owned()),
            0x86 => names.uri.push(text.to_owned()),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_and_garbage_input_gives_nothing() {
        assert_eq!(tlv(&[0x30, 0x05, 1, 2]), None);
        assert_eq!(tlv(&[0x30, 0x85, 1, 1, 1, 1, 1]), None);
        assert_eq!(spki_parts(&[0x30, 0x00]), None);
        assert_eq!(cert_names(&[0xff; 40]), CertNames::default());
        for n in 0..64u8 {
            let junk: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37) ^ 0x30).collect();
            let _ = cert_names(&junk);
            let _ = spki_parts(&junk);
        }
    }

    #[test]
    fn reads_an_ed25519_spki() {
        // RFC 8410 §10.1 example public key.
        let der = [
            0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00, 0x19, 0xbf,
            0x44, 0x09, 0x69, 0x84, 0xcd, 0xfe, 0x85, 0x41, 0xba, 0xc1, 0x67, 0xdc, 0x3b, 0x96,
            0xc8, 0x50, 0x86, 0xaa, 0x30, 0xb6, 0xb6, 0xcb, 0x0c, 0x5c, 0x38, 0xad, 0x70, 0x31,
            0x66, 0xe1,
        ];
        let (oid, key) = spki_parts(&der).unwrap();
        assert_eq!(oid, OID_ED25519);
        assert_eq!(key.len(), 32);
        assert_eq!(key[0], 0x19);
        assert_eq!(spki_parts(&der[..der.len() - 1]), None);
    }
}
