//! The few DER reads authentication needs: the key inside a `SubjectPublicKeyInfo` (RFC 5280
//! §4.1.2.7), and the subject common name and subject alternative names of a client certificate
//! (RFC 5280 §4.1.2.6, §4.2.1.6).
//!
//! Not a general X.509 parser: certificates reach it only after rustls/webpki verified their
//! chain, and it reads nothing but names. The reads are `sealtrail_spec::der`'s (strict DER,
//! bounds-checked); malformed input gives `None` or no names, never a panic.

use sealtrail_spec::der::{self, Reader, tag};

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

/// The algorithm OID and the key bits (without the unused-bits octet) of a SubjectPublicKeyInfo.
pub(crate) fn spki_parts(der: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut spki = der::single(der, tag::SEQUENCE, "SubjectPublicKeyInfo")
        .ok()?
        .reader();
    let oid = spki.sequence("algorithm").ok()?.oid("algorithm").ok()?;
    let bits = spki.expect(tag::BIT_STRING, "subjectPublicKey").ok()?.value;
    spki.finish("SubjectPublicKeyInfo").ok()?;
    let (&unused, key) = bits.split_first()?;
    (unused == 0 && !key.is_empty()).then_some((oid, key))
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

/// Reads the subject CN and the SANs of a DER certificate (what it can; nothing from a malformed
/// one).
pub(crate) fn cert_names(cert: &[u8]) -> CertNames {
    let mut names = CertNames::default();
    let Ok(mut c) = Reader::new(cert).sequence("Certificate") else {
        return names;
    };
    let Ok(mut tbs) = c.sequence("tbsCertificate") else {
        return names;
    };
    // version [0]?, serial, signature, issuer, validity, subject, spki, [1]?, [2]?, [3] extensions
    let _ = tbs.optional(tag::context(0, true), "version");
    for what in ["serialNumber", "signature", "issuer", "validity"] {
        if tbs.any(what).is_err() {
            return names;
        }
    }
    if let Ok(subject) = tbs.expect(tag::SEQUENCE, "subject") {
        names.cn = common_name(subject.reader());
    }
    while let Ok(field) = tbs.any("tbsCertificate field") {
        if field.tag != tag::context(3, true) {
            continue;
        }
        let Ok(mut list) = field.reader().sequence("extensions") else {
            return names;
        };
        while let Ok(ext) = list.sequence("extension") {
            read_san(ext, &mut names);
        }
    }
    names
}

fn common_name(mut rdns: Reader<'_>) -> Option<String> {
    while let Ok(set) = rdns.expect(tag::SET, "RDN") {
        let mut atvs = set.reader();
        while let Ok(mut atv) = atvs.sequence("AttributeTypeAndValue") {
            if atv.oid("type").ok()? == OID_CN {
                return String::from_utf8(atv.any("value").ok()?.value.to_vec()).ok();
            }
        }
    }
    None
}

fn read_san(mut ext: Reader<'_>, names: &mut CertNames) {
    if ext.oid("extnID").ok() != Some(OID_SAN) {
        return;
    }
    // An optional `critical` BOOLEAN precedes the OCTET STRING.
    let _ = ext.optional(tag::BOOLEAN, "critical");
    let Ok(value) = ext.octet_string("extnValue") else {
        return;
    };
    let Ok(mut general_names) = Reader::new(value).sequence("GeneralNames") else {
        return;
    };
    while let Ok(name) = general_names.any("GeneralName") {
        let Ok(text) = std::str::from_utf8(name.value) else {
            continue;
        };
        match name.tag {
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
