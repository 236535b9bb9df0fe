//! RFC 3161 time-stamp requests, responses and tokens, and the X.509 fields their verification
//! needs (RFC 5652 CMS SignedData, RFC 5035/2634 ESS signing-certificate attributes, RFC 5816).
//!
//! Structure only: this module builds a request and takes a response or token apart, strictly,
//! into borrowed fields. It checks what needs no cryptography beyond SHA-256 (versions, content
//! types, the message imprint and the nonce). Signatures and certificate chains are checked by
//! `sealtrail-verify timestamp` (verifier crate), which has the X.509 machinery.
//!
//! A sealtrail witness time-stamps the SHA-256 of each cosigned checkpoint note it anchors
//! (`docs/timestamps.md`).

use thiserror::Error;

use crate::der::{self, DerError, Reader, tag};
use crate::to_hex;

/// Object identifiers (content octets), each checked against its dotted form in the tests.
pub mod oid {
    /// sha1 (1.3.14.3.2.26), only in ESS `SigningCertificate` v1.
    pub const SHA1: &[u8] = &[0x2b, 0x0e, 0x03, 0x02, 0x1a];
    /// sha256 (2.16.840.1.101.3.4.2.1).
    pub const SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
    /// sha384 (2.16.840.1.101.3.4.2.2).
    pub const SHA384: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02];
    /// sha512 (2.16.840.1.101.3.4.2.3).
    pub const SHA512: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03];
    /// id-signedData (1.2.840.113549.1.7.2).
    pub const SIGNED_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02];
    /// id-ct-TSTInfo (1.2.840.113549.1.9.16.1.4).
    pub const TST_INFO: &[u8] = &[
        0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x10, 0x01, 0x04,
    ];
    /// id-contentType attribute (1.2.840.113549.1.9.3).
    pub const CONTENT_TYPE: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x03];
    /// id-messageDigest attribute (1.2.840.113549.1.9.4).
    pub const MESSAGE_DIGEST: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x04];
    /// id-aa-signingCertificate (1.2.840.113549.1.9.16.2.12).
    pub const SIGNING_CERTIFICATE: &[u8] = &[
        0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x10, 0x02, 0x0c,
    ];
    /// id-aa-signingCertificateV2 (1.2.840.113549.1.9.16.2.47).
    pub const SIGNING_CERTIFICATE_V2: &[u8] = &[
        0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x10, 0x02, 0x2f,
    ];
    /// rsaEncryption (1.2.840.113549.1.1.1).
    pub const RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    /// RSASSA-PSS (1.2.840.113549.1.1.10).
    pub const RSASSA_PSS: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a];
    /// sha256WithRSAEncryption (1.2.840.113549.1.1.11).
    pub const SHA256_WITH_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b];
    /// sha384WithRSAEncryption (1.2.840.113549.1.1.12).
    pub const SHA384_WITH_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c];
    /// sha512WithRSAEncryption (1.2.840.113549.1.1.13).
    pub const SHA512_WITH_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d];
    /// ecdsa-with-SHA256 (1.2.840.10045.4.3.2).
    pub const ECDSA_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
    /// ecdsa-with-SHA384 (1.2.840.10045.4.3.3).
    pub const ECDSA_SHA384: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];
    /// ecdsa-with-SHA512 (1.2.840.10045.4.3.4).
    pub const ECDSA_SHA512: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04];
    /// id-Ed25519 (1.3.101.112).
    pub const ED25519: &[u8] = &[0x2b, 0x65, 0x70];
    /// id-ce-extKeyUsage (2.5.29.37).
    pub const EXT_KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x25];
    /// id-ce-subjectKeyIdentifier (2.5.29.14).
    pub const SUBJECT_KEY_ID: &[u8] = &[0x55, 0x1d, 0x0e];
    /// id-kp-timeStamping (1.3.6.1.5.5.7.3.8).
    pub const KP_TIME_STAMPING: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x08];
}

/// The media type of a request (RFC 3161 section 3.4).
pub const QUERY_MEDIA_TYPE: &str = "application/timestamp-query";
/// The media type of a response.
pub const REPLY_MEDIA_TYPE: &str = "application/timestamp-reply";

/// Why a response or token was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Rfc3161Error {
    /// Not well-formed DER, or not the structure RFC 3161 / CMS define.
    #[error("malformed: {0}")]
    Der(#[from] DerError),
    /// The TSA answered with a status other than granted.
    #[error("the TSA refused the request: status {status} ({})", .text)]
    Refused {
        /// The PKIStatus number.
        status: u64,
        /// Its meaning, the TSA's status text and failure bits.
        text: String,
    },
    /// Well-formed but not acceptable (wrong version, content type, imprint, nonce, algorithm).
    #[error("{0}")]
    Invalid(String),
}

fn invalid(text: impl Into<String>) -> Rfc3161Error {
    Rfc3161Error::Invalid(text.into())
}

/// A digest algorithm of a message imprint, a CMS signer or an ESS certificate ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlg {
    /// SHA-1: only accepted in ESS `SigningCertificate` v1, which RFC 3161 defines with it.
    Sha1,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl HashAlg {
    fn from_oid(oid: &[u8]) -> Option<HashAlg> {
        [
            (oid::SHA1, HashAlg::Sha1),
            (oid::SHA256, HashAlg::Sha256),
            (oid::SHA384, HashAlg::Sha384),
            (oid::SHA512, HashAlg::Sha512),
        ]
        .into_iter()
        .find_map(|(o, h)| (o == oid).then_some(h))
    }

    /// Reads an AlgorithmIdentifier naming a digest (parameters absent or NULL).
    fn read(r: &mut Reader<'_>, what: &'static str) -> Result<HashAlg, Rfc3161Error> {
        let id = AlgorithmId::read(r, what)?;
        if id.params.is_some_and(|p| p != [tag::NULL, 0]) {
            return Err(invalid(format!(
                "{what}: digest parameters other than NULL"
            )));
        }
        HashAlg::from_oid(id.oid).ok_or_else(|| {
            invalid(format!(
                "{what}: unsupported digest algorithm {}",
                der::oid_to_dotted(id.oid)
            ))
        })
    }

    /// The digest's name.
    pub fn name(self) -> &'static str {
        match self {
            HashAlg::Sha1 => "SHA-1",
            HashAlg::Sha256 => "SHA-256",
            HashAlg::Sha384 => "SHA-384",
            HashAlg::Sha512 => "SHA-512",
        }
    }
}

/// An AlgorithmIdentifier: the algorithm and its parameters as encoded (if any).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlgorithmId<'a> {
    /// The algorithm's object identifier (content octets).
    pub oid: &'a [u8],
    /// The parameters element, whole.
    pub params: Option<&'a [u8]>,
}

impl<'a> AlgorithmId<'a> {
    fn read(r: &mut Reader<'a>, what: &'static str) -> Result<AlgorithmId<'a>, DerError> {
        let mut s = r.sequence(what)?;
        let oid = s.oid(what)?;
        let params = if s.is_empty() {
            None
        } else {
            Some(s.any(what)?.raw)
        };
        s.finish(what)?;
        Ok(AlgorithmId { oid, params })
    }
}

/// A DER `TimeStampReq` (RFC 3161 section 2.4.1) for a SHA-256 digest, with a nonce and
/// `certReq` set (so the token carries the TSA's certificate), and optionally a policy
/// (`reqPolicy`, dotted object identifier content octets from [`der::oid_from_dotted`]).
pub fn request(sha256: &[u8; 32], nonce: &[u8], policy: Option<&[u8]>) -> Vec<u8> {
    let alg = der::tlv(
        tag::SEQUENCE,
        &[der::tlv(tag::OID, oid::SHA256), vec![tag::NULL, 0]].concat(),
    );
    let imprint = der::tlv(
        tag::SEQUENCE,
        &[alg, der::tlv(tag::OCTET_STRING, sha256)].concat(),
    );
    let mut body = der::unsigned_integer(&[1]);
    body.extend(imprint);
    if let Some(p) = policy {
        body.extend(der::tlv(tag::OID, p));
    }
    body.extend(der::unsigned_integer(nonce));
    body.extend(der::tlv(tag::BOOLEAN, &[0xff]));
    der::tlv(tag::SEQUENCE, &body)
}

/// The PKIStatus values (RFC 3161 section 2.4.2).
fn status_name(status: u64) -> &'static str {
    match status {
        0 => "granted",
        1 => "granted with modifications",
        2 => "rejection",
        3 => "waiting",
        4 => "revocation warning",
        5 => "revocation notification",
        _ => "unknown status",
    }
}

/// The PKIFailureInfo bit names (RFC 3161 section 2.4.2).
const FAILURE_BITS: &[(usize, &str)] = &[
    (0, "badAlg"),
    (2, "badRequest"),
    (5, "badDataFormat"),
    (14, "timeNotAvailable"),
    (15, "unacceptedPolicy"),
    (16, "unacceptedExtension"),
    (17, "addInfoNotAvailable"),
    (25, "systemFailure"),
];

/// The time-stamp token (a CMS ContentInfo) from a DER `TimeStampResp`, if the status is granted
/// (0) or granted with modifications (1); otherwise the status, the TSA's text and failure bits.
pub fn token_from_response(response: &[u8]) -> Result<&[u8], Rfc3161Error> {
    let mut outer = der::single(response, tag::SEQUENCE, "TimeStampResp")?.reader();
    let mut info = outer.sequence("PKIStatusInfo")?;
    let status = info.small_uint("PKIStatus")?;
    let mut text = vec![status_name(status).to_owned()];
    if let Some(strings) = info.optional(tag::SEQUENCE, "statusString")? {
        let mut s = strings.reader();
        while !s.is_empty() {
            let t = s.expect(tag::UTF8_STRING, "statusString")?;
            text.push(crate::escape_display(&String::from_utf8_lossy(t.value)));
        }
    }
    if let Some(bits) = info.optional(tag::BIT_STRING, "failInfo")? {
        let bytes = bits.value.get(1..).unwrap_or_default();
        for (bit, name) in FAILURE_BITS {
            if bytes
                .get(bit / 8)
                .is_some_and(|b| b & (0x80 >> (bit % 8)) != 0)
            {
                text.push((*name).to_owned());
            }
        }
    }
    info.finish("PKIStatusInfo")?;
    if status > 1 {
        return Err(Rfc3161Error::Refused {
            status,
            text: text.join("; "),
        });
    }
    let token = outer.expect(tag::SEQUENCE, "timeStampToken")?.raw;
    outer.finish("TimeStampResp")?;
    Ok(token)
}

/// The token in `bytes`, which hold either a whole `TimeStampResp` (what `openssl ts -reply`
/// writes) or a bare token (a ContentInfo, what `-token_out` writes).
pub fn token_bytes(bytes: &[u8]) -> Result<&[u8], Rfc3161Error> {
    let outer = der::single(bytes, tag::SEQUENCE, "time-stamp token or response")?;
    if outer.reader().peek_tag() == Some(tag::OID) {
        Ok(bytes)
    } else {
        token_from_response(bytes)
    }
}

/// TSTInfo (RFC 3161 section 2.4.2): what the TSA asserts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TstInfo<'a> {
    /// The TSA policy under which the token was issued (object identifier content octets).
    pub policy: &'a [u8],
    /// The digest algorithm of the imprint.
    pub imprint_alg: HashAlg,
    /// The digest of the time-stamped data.
    pub imprint: &'a [u8],
    /// The serial number (INTEGER content octets).
    pub serial: &'a [u8],
    /// genTime, in milliseconds since the Unix epoch (finer fractions cut).
    pub gen_time_ms: u64,
    /// The accuracy, in microseconds, if the TSA states one.
    pub accuracy_micros: Option<u64>,
    /// Whether the TSA claims ordering by genTime.
    pub ordering: bool,
    /// The nonce (INTEGER content octets), if the request had one.
    pub nonce: Option<&'a [u8]>,
}

impl<'a> TstInfo<'a> {
    fn parse(der_bytes: &'a [u8]) -> Result<TstInfo<'a>, Rfc3161Error> {
        let mut r = der::single(der_bytes, tag::SEQUENCE, "TSTInfo")?.reader();
        if r.small_uint("TSTInfo version")? != 1 {
            return Err(invalid("TSTInfo version is not 1"));
        }
        let policy = r.oid("TSTInfo policy")?;
        let mut mi = r.sequence("messageImprint")?;
        let imprint_alg = HashAlg::read(&mut mi, "messageImprint algorithm")?;
        let imprint = mi.octet_string("messageImprint")?;
        mi.finish("messageImprint")?;
        if imprint_alg == HashAlg::Sha1 {
            return Err(invalid("the message imprint uses SHA-1"));
        }
        let serial = r.integer("TSTInfo serialNumber")?;
        let time = r.expect(tag::GENERALIZED_TIME, "genTime")?;
        let gen_time_ms = der::generalized_time(time.value, "genTime")?;
        let accuracy_micros = match r.optional(tag::SEQUENCE, "accuracy")? {
            None => None,
            Some(a) => Some(accuracy(a.reader())?),
        };
        let ordering = if r.peek_tag() == Some(tag::BOOLEAN) {
            r.boolean("ordering")?
        } else {
            false
        };
        let nonce = if r.peek_tag() == Some(tag::INTEGER) {
            Some(r.integer("nonce")?)
        } else {
            None
        };
        // tsa [0] GeneralName and extensions [1]: informational, not interpreted.
        r.optional(tag::context(0, true), "tsa")?;
        r.optional(tag::context(1, true), "TSTInfo extensions")?;
        r.finish("TSTInfo")?;
        Ok(TstInfo {
            policy,
            imprint_alg,
            imprint,
            serial,
            gen_time_ms,
            accuracy_micros,
            ordering,
            nonce,
        })
    }

    /// Checks that this is the answer to a SHA-256 request for `sha256` with `nonce` (the
    /// nonce's unsigned magnitude, as given to [`request`]) and, if one was requested, `policy`
    /// (RFC 3161 2.4.2: a TSA grants under the requested policy or refuses).
    pub fn check_answer(
        &self,
        sha256: &[u8; 32],
        nonce: &[u8],
        policy: Option<&[u8]>,
    ) -> Result<(), Rfc3161Error> {
        if let Some(p) = policy
            && p != self.policy
        {
            return Err(invalid(format!(
                "the token is under policy {}, not the requested {}",
                der::oid_to_dotted(self.policy),
                der::oid_to_dotted(p)
            )));
        }
        if self.imprint_alg != HashAlg::Sha256 || self.imprint != sha256 {
            return Err(invalid(format!(
                "the token time-stamps {} {}, not SHA-256 {}",
                self.imprint_alg.name(),
                to_hex(self.imprint),
                to_hex(sha256)
            )));
        }
        fn trim(b: &[u8]) -> &[u8] {
            &b[b.iter().take_while(|&&x| x == 0).count()..]
        }
        match self.nonce {
            Some(n) if trim(n) == trim(nonce) => Ok(()),
            Some(n) => Err(invalid(format!(
                "the token's nonce {} is not the request's {}",
                to_hex(n),
                to_hex(nonce)
            ))),
            None => Err(invalid("the token has no nonce; the request had one")),
        }
    }
}

/// Accuracy ::= SEQUENCE { seconds INTEGER OPTIONAL, millis [0] 1..999, micros [1] 1..999 }.
fn accuracy(mut r: Reader<'_>) -> Result<u64, Rfc3161Error> {
    let seconds = if r.peek_tag() == Some(tag::INTEGER) {
        r.small_uint("accuracy seconds")?
    } else {
        0
    };
    let mut part = |n: u8, what: &'static str| -> Result<u64, Rfc3161Error> {
        match r.optional(tag::context(n, false), what)? {
            None => Ok(0),
            Some(t) => {
                let v = der::small_uint(t.value, what)?;
                if (1..=999).contains(&v) {
                    Ok(v)
                } else {
                    Err(invalid(format!("{what} {v} is outside 1..999")))
                }
            }
        }
    };
    let millis = part(0, "accuracy millis")?;
    let micros = part(1, "accuracy micros")?;
    r.finish("accuracy")?;
    Ok(seconds
        .saturating_mul(1_000_000)
        .saturating_add(millis * 1000 + micros))
}

/// How a CMS SignerInfo names its certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignerId<'a> {
    /// The issuer's Name (whole element) and the serial number (INTEGER content octets).
    IssuerSerial {
        /// The issuer Name, as encoded.
        issuer: &'a [u8],
        /// The serial number.
        serial: &'a [u8],
    },
    /// The subjectKeyIdentifier.
    KeyId(&'a [u8]),
}

/// The ESS certificate identifier of the signer (RFC 2634 / RFC 5035).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EssCertId<'a> {
    /// The digest of the certificate's DER.
    pub alg: HashAlg,
    /// The digest value.
    pub cert_hash: &'a [u8],
}

/// The one SignerInfo of a time-stamp token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignerInfo<'a> {
    /// The signer's certificate, by issuer and serial or by key identifier.
    pub sid: SignerId<'a>,
    /// The digest algorithm over the TSTInfo and the signed attributes.
    pub digest_alg: HashAlg,
    /// The signed attributes re-encoded as the SET OF the signature covers (RFC 5652 5.4).
    pub signed_attrs: Vec<u8>,
    /// The messageDigest attribute: the digest of the TSTInfo.
    pub message_digest: &'a [u8],
    /// The ESS signing-certificate attribute's first certificate ID.
    pub signing_cert: EssCertId<'a>,
    /// The signature algorithm.
    pub signature_alg: AlgorithmId<'a>,
    /// The signature value.
    pub signature: &'a [u8],
}

/// A time-stamp token taken apart: the TSTInfo, the certificates it carries and its signer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token<'a> {
    /// The TSTInfo, parsed.
    pub tst_info: TstInfo<'a>,
    /// The TSTInfo as encoded (the signed content).
    pub tst_info_der: &'a [u8],
    /// The certificates in the SignedData, each as encoded.
    pub certificates: Vec<&'a [u8]>,
    /// The signer.
    pub signer: SignerInfo<'a>,
}

impl<'a> Token<'a> {
    /// Parses a token (a CMS ContentInfo holding SignedData with one signer over a TSTInfo).
    pub fn parse(token: &'a [u8]) -> Result<Token<'a>, Rfc3161Error> {
        let mut ci = der::single(token, tag::SEQUENCE, "ContentInfo")?.reader();
        if ci.oid("contentType")? != oid::SIGNED_DATA {
            return Err(invalid("the token is not CMS SignedData"));
        }
        let explicit = ci.expect(tag::context(0, true), "content")?;
        ci.finish("ContentInfo")?;
        let mut sd = der::single(explicit.value, tag::SEQUENCE, "SignedData")?.reader();
        let version = sd.small_uint("SignedData version")?;
        if !(1..=5).contains(&version) {
            return Err(invalid(format!("SignedData version {version}")));
        }
        sd.expect(tag::SET, "digestAlgorithms")?;
        let mut eci = sd.sequence("encapContentInfo")?;
        if eci.oid("eContentType")? != oid::TST_INFO {
            return Err(invalid("the signed content is not a TSTInfo"));
        }
        let e = eci.expect(tag::context(0, true), "eContent")?;
        eci.finish("encapContentInfo")?;
        let tst_info_der = der::single(e.value, tag::OCTET_STRING, "eContent")?.value;
        let mut certificates = Vec::new();
        if let Some(certs) = sd.optional(tag::context(0, true), "certificates")? {
            let mut c = certs.reader();
            while !c.is_empty() {
                let cert = c.any("certificate")?;
                // Other certificate formats ([0]..[3]) are not X.509 certificates: skipped.
                if cert.tag == tag::SEQUENCE {
                    certificates.push(cert.raw);
                }
            }
        }
        sd.optional(tag::context(1, true), "crls")?;
        let mut signers = sd.expect(tag::SET, "signerInfos")?.reader();
        sd.finish("SignedData")?;
        let signer = SignerInfo::parse(&mut signers)?;
        if !signers.is_empty() {
            return Err(invalid("the token has more than one signer"));
        }
        Ok(Token {
            tst_info: TstInfo::parse(tst_info_der)?,
            tst_info_der,
            certificates,
            signer,
        })
    }
}

impl<'a> SignerInfo<'a> {
    fn parse(r: &mut Reader<'a>) -> Result<SignerInfo<'a>, Rfc3161Error> {
        let mut s = r.sequence("SignerInfo")?;
        let version = s.small_uint("SignerInfo version")?;
        let sid = match (version, s.peek_tag()) {
            (1, Some(tag::SEQUENCE)) => {
                let mut is = s.sequence("issuerAndSerialNumber")?;
                let issuer = is.expect(tag::SEQUENCE, "issuer")?.raw;
                let serial = is.integer("serialNumber")?;
                is.finish("issuerAndSerialNumber")?;
                SignerId::IssuerSerial { issuer, serial }
            }
            (3, Some(t)) if t == tag::context(0, false) => {
                SignerId::KeyId(s.any("subjectKeyIdentifier")?.value)
            }
            _ => {
                return Err(invalid(format!(
                    "SignerInfo version {version} with its sid"
                )));
            }
        };
        let digest_alg = HashAlg::read(&mut s, "SignerInfo digestAlgorithm")?;
        if digest_alg == HashAlg::Sha1 {
            return Err(invalid("the signer digests with SHA-1"));
        }
        let attrs = s
            .optional(tag::context(0, true), "signedAttrs")?
            .ok_or_else(|| invalid("the signer has no signed attributes"))?;
        let signature_alg = AlgorithmId::read(&mut s, "signatureAlgorithm")?;
        let signature = s.octet_string("signature")?;
        s.optional(tag::context(1, true), "unsignedAttrs")?;
        s.finish("SignerInfo")?;

        let mut content_type = None;
        let mut message_digest = None;
        let mut signing_cert = None;
        let mut a = attrs.reader();
        while !a.is_empty() {
            let mut attr = a.sequence("attribute")?;
            let kind = attr.oid("attribute type")?;
            let values = attr.expect(tag::SET, "attribute values")?;
            attr.finish("attribute")?;
            let mut v = values.reader();
            let value = v.any("attribute value")?;
            if !v.is_empty() {
                return Err(invalid("a signed attribute has more than one value"));
            }
            let slot = match kind {
                k if k == oid::CONTENT_TYPE => {
                    let o = der::single(value.raw, tag::OID, "contentType attribute")?.value;
                    if o != oid::TST_INFO {
                        return Err(invalid("the contentType attribute is not id-ct-TSTInfo"));
                    }
                    content_type.replace(())
                }
                k if k == oid::MESSAGE_DIGEST => message_digest
                    .replace(der::single(value.raw, tag::OCTET_STRING, "messageDigest")?.value)
                    .map(|_| ()),
                k if k == oid::SIGNING_CERTIFICATE => {
                    signing_cert.replace(ess_cert_id(value, false)?).map(|_| ())
                }
                k if k == oid::SIGNING_CERTIFICATE_V2 => {
                    signing_cert.replace(ess_cert_id(value, true)?).map(|_| ())
                }
                _ => None,
            };
            if slot.is_some() {
                return Err(invalid(format!(
                    "the signed attribute {} appears twice",
                    der::oid_to_dotted(kind)
                )));
            }
        }
        if content_type.is_none() {
            return Err(invalid("no contentType signed attribute"));
        }
        let mut signed_attrs = attrs.raw.to_vec();
        signed_attrs[0] = tag::SET;
        Ok(SignerInfo {
            sid,
            digest_alg,
            signed_attrs,
            message_digest: message_digest
                .ok_or_else(|| invalid("no messageDigest signed attribute"))?,
            signing_cert: signing_cert
                .ok_or_else(|| invalid("no ESS signing-certificate attribute (RFC 3161 2.4.1)"))?,
            signature_alg,
            signature,
        })
    }
}

/// The first ESSCertID(v2) of a SigningCertificate(V2) attribute value.
fn ess_cert_id<'a>(value: der::Tlv<'a>, v2: bool) -> Result<EssCertId<'a>, Rfc3161Error> {
    let mut sc = der::single(value.raw, tag::SEQUENCE, "SigningCertificate")?.reader();
    let mut certs = sc.sequence("SigningCertificate certs")?;
    let mut id = certs.sequence("ESSCertID")?;
    let alg = if v2 && id.peek_tag() == Some(tag::SEQUENCE) {
        HashAlg::read(&mut id, "ESSCertIDv2 hashAlgorithm")?
    } else if v2 {
        HashAlg::Sha256
    } else {
        HashAlg::Sha1
    };
    let cert_hash = id.octet_string("certHash")?;
    Ok(EssCertId { alg, cert_hash })
}

/// The fields of an X.509 certificate that time-stamp verification needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo<'a> {
    /// The serial number (INTEGER content octets).
    pub serial: &'a [u8],
    /// The issuer Name, as encoded.
    pub issuer: &'a [u8],
    /// The subject Name, as encoded.
    pub subject: &'a [u8],
    /// The subjectKeyIdentifier, if present.
    pub key_id: Option<&'a [u8]>,
    /// The extendedKeyUsage extension: whether it is critical, and its purposes.
    pub ext_key_usage: Option<(bool, Vec<&'a [u8]>)>,
}

impl<'a> CertInfo<'a> {
    /// Parses the fields from a DER certificate.
    pub fn parse(cert: &'a [u8]) -> Result<CertInfo<'a>, Rfc3161Error> {
        let mut c = der::single(cert, tag::SEQUENCE, "Certificate")?.reader();
        let mut tbs = c.sequence("tbsCertificate")?;
        tbs.optional(tag::context(0, true), "version")?;
        let serial = tbs.integer("certificate serialNumber")?;
        tbs.sequence("certificate signature")?;
        let issuer = tbs.expect(tag::SEQUENCE, "issuer")?.raw;
        tbs.sequence("validity")?;
        let subject = tbs.expect(tag::SEQUENCE, "subject")?.raw;
        tbs.sequence("subjectPublicKeyInfo")?;
        tbs.optional(tag::context(1, false), "issuerUniqueID")?;
        tbs.optional(tag::context(2, false), "subjectUniqueID")?;
        let mut key_id = None;
        let mut ext_key_usage = None;
        if let Some(exts) = tbs.optional(tag::context(3, true), "extensions")? {
            let mut list = der::single(exts.value, tag::SEQUENCE, "extensions")?.reader();
            while !list.is_empty() {
                let mut e = list.sequence("extension")?;
                let id = e.oid("extnID")?;
                let critical = if e.peek_tag() == Some(tag::BOOLEAN) {
                    e.boolean("critical")?
                } else {
                    false
                };
                let value = e.octet_string("extnValue")?;
                e.finish("extension")?;
                if id == oid::SUBJECT_KEY_ID {
                    key_id =
                        Some(der::single(value, tag::OCTET_STRING, "subjectKeyIdentifier")?.value);
                } else if id == oid::EXT_KEY_USAGE {
                    let mut purposes = Vec::new();
                    let mut p = der::single(value, tag::SEQUENCE, "extKeyUsage")?.reader();
                    while !p.is_empty() {
                        purposes.push(p.oid("KeyPurposeId")?);
                    }
                    ext_key_usage = Some((critical, purposes));
                }
            }
        }
        Ok(CertInfo {
            serial,
            issuer,
            subject,
            key_id,
            ext_key_usage,
        })
    }

    /// Whether `sid` names this certificate.
    pub fn is(&self, sid: &SignerId<'_>) -> bool {
        match *sid {
            SignerId::IssuerSerial { issuer, serial } => {
                issuer == self.issuer && serial == self.serial
            }
            SignerId::KeyId(k) => self.key_id == Some(k),
        }
    }

    /// RFC 3161 section 2.3: a TSA certificate has exactly one extended key usage,
    /// id-kp-timeStamping, in a critical extension.
    pub fn check_tsa_usage(&self) -> Result<(), Rfc3161Error> {
        match &self.ext_key_usage {
            Some((true, p)) if p.as_slice() == [oid::KP_TIME_STAMPING] => Ok(()),
            Some((false, _)) => Err(invalid(
                "the TSA certificate's extended key usage is not critical (RFC 3161 2.3)",
            )),
            Some(_) => Err(invalid(
                "the TSA certificate's extended key usage is not exactly id-kp-timeStamping",
            )),
            None => Err(invalid(
                "the TSA certificate has no extended key usage (id-kp-timeStamping is required)",
            )),
        }
    }
}

/// A Name (RDNSequence) for display: `CN=..., O=..., C=...`, values escaped.
pub fn name_to_string(name: &[u8]) -> String {
    let mut parts = Vec::new();
    let Ok(outer) = der::single(name, tag::SEQUENCE, "Name") else {
        return "(malformed name)".to_owned();
    };
    let mut rdns = outer.reader();
    while let Ok(set) = rdns.expect(tag::SET, "RDN") {
        let mut atvs = set.reader();
        while let Ok(mut atv) = atvs.sequence("AttributeTypeAndValue") {
            let (Ok(kind), Ok(value)) = (atv.oid("type"), atv.any("value")) else {
                break;
            };
            let label = match kind {
                [0x55, 0x04, 0x03] => "CN".to_owned(),
                [0x55, 0x04, 0x06] => "C".to_owned(),
                [0x55, 0x04, 0x07] => "L".to_owned(),
                [0x55, 0x04, 0x08] => "ST".to_owned(),
                [0x55, 0x04, 0x0a] => "O".to_owned(),
                [0x55, 0x04, 0x0b] => "OU".to_owned(),
                other => der::oid_to_dotted(other),
            };
            let text = crate::escape_display(&String::from_utf8_lossy(value.value));
            parts.push(format!("{label}={text}"));
        }
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_identifiers_match_their_dotted_forms() {
        for (dotted, der) in [
            ("1.3.14.3.2.26", oid::SHA1),
            ("2.16.840.1.101.3.4.2.1", oid::SHA256),
            ("2.16.840.1.101.3.4.2.2", oid::SHA384),
            ("2.16.840.1.101.3.4.2.3", oid::SHA512),
            ("1.2.840.113549.1.7.2", oid::SIGNED_DATA),
            ("1.2.840.113549.1.9.16.1.4", oid::TST_INFO),
            ("1.2.840.113549.1.9.3", oid::CONTENT_TYPE),
            ("1.2.840.113549.1.9.4", oid::MESSAGE_DIGEST),
            ("1.2.840.113549.1.9.16.2.12", oid::SIGNING_CERTIFICATE),
            ("1.2.840.113549.1.9.16.2.47", oid::SIGNING_CERTIFICATE_V2),
            ("1.2.840.113549.1.1.1", oid::RSA_ENCRYPTION),
            ("1.2.840.113549.1.1.10", oid::RSASSA_PSS),
            ("1.2.840.113549.1.1.11", oid::SHA256_WITH_RSA),
            ("1.2.840.113549.1.1.12", oid::SHA384_WITH_RSA),
            ("1.2.840.113549.1.1.13", oid::SHA512_WITH_RSA),
            ("1.2.840.10045.4.3.2", oid::ECDSA_SHA256),
            ("1.2.840.10045.4.3.3", oid::ECDSA_SHA384),
            ("1.2.840.10045.4.3.4", oid::ECDSA_SHA512),
            ("1.3.101.112", oid::ED25519),
            ("2.5.29.37", oid::EXT_KEY_USAGE),
            ("2.5.29.14", oid::SUBJECT_KEY_ID),
            ("1.3.6.1.5.5.7.3.8", oid::KP_TIME_STAMPING),
        ] {
            assert_eq!(der::oid_from_dotted(dotted).unwrap(), der, "{dotted}");
        }
    }

    #[test]
    fn refusals_carry_the_status_text_and_failure_bits() {
        // TimeStampResp { status { 2, ["policy unknown"], failInfo unacceptedPolicy (bit 15) } }
        let text = der::tlv(
            tag::SEQUENCE,
            &der::tlv(tag::UTF8_STRING, b"policy unknown"),
        );
        let bits = der::tlv(tag::BIT_STRING, &[0x00, 0x00, 0x01]);
        let info = der::tlv(
            tag::SEQUENCE,
            &[der::unsigned_integer(&[2]), text, bits].concat(),
        );
        let resp = der::tlv(tag::SEQUENCE, &info);
        let e = token_from_response(&resp).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the TSA refused the request: status 2 (rejection; policy unknown; unacceptedPolicy)"
        );
        // Granted without a token is malformed.
        let granted = der::tlv(
            tag::SEQUENCE,
            &der::tlv(tag::SEQUENCE, &der::unsigned_integer(&[0])),
        );
        assert!(matches!(
            token_from_response(&granted),
            Err(Rfc3161Error::Der(_))
        ));
    }
}
