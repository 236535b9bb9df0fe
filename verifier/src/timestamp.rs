//! `sealtrail-verify timestamp`: RFC 3161 time-stamp tokens checked against the files they
//! time-stamp and the Time-Stamp Authority's certificate chain.
//!
//! For each token: the message imprint is the file's digest; the signed `messageDigest`
//! attribute is the digest of the TSTInfo; the signer's certificate (in the token, or given with
//! `--tsa-cert`) is the one the ESS signing-certificate attribute names, has the critical
//! id-kp-timeStamping extended key usage and nothing else (RFC 3161 2.3), and signed the
//! attributes (RSA PKCS#1 v1.5 or PSS, ECDSA P-256/P-384, Ed25519); and it chains to a given
//! CA at the token's genTime, every certificate of the chain valid then. Revocation (CRL, OCSP)
//! is not checked.
//!
//! A witness's `rfc3161` anchor stores `<dir>/<origin>/<size>-<digest>.checkpoint` with the token
//! beside it as `.tst`; given a directory, every checkpoint in it is checked with its token.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ring::digest;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, SignatureVerificationAlgorithm, UnixTime};
use sealtrail_spec::der;
use sealtrail_spec::rfc3161::{self, CertInfo, HashAlg, Token, oid};
use sealtrail_spec::{rfc3339_ms, to_hex};
use serde_json::{Value, json};
use webpki::ring as algs;

use crate::{Error, Report, read_file};

/// The extension of a token stored beside the file it time-stamps.
pub const TOKEN_EXTENSION: &str = "tst";
/// The extension of a checkpoint stored by a witness's `rfc3161` anchor.
pub const CHECKPOINT_EXTENSION: &str = "checkpoint";

/// The certificates a verification trusts and may use.
#[derive(Debug, Clone, Default)]
pub struct Authorities {
    /// Trust anchors: the TSA's root (or issuing) CA certificates.
    pub roots: Vec<CertificateDer<'static>>,
    /// More certificates: the TSA's own when the token does not carry it, intermediates.
    pub extra: Vec<CertificateDer<'static>>,
}

impl Authorities {
    /// Reads PEM certificate files: `roots` are trusted, `extra` only used to build the chain.
    pub fn from_pem_files(roots: &[PathBuf], extra: &[PathBuf]) -> Result<Authorities, Error> {
        let read = |paths: &[PathBuf]| -> Result<Vec<CertificateDer<'static>>, Error> {
            let mut out = Vec::new();
            for p in paths {
                let bytes = read_file(p)?;
                let certs = CertificateDer::pem_slice_iter(&bytes)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| {
                        Error::Usage(format!("{}: not PEM certificates: {e}", p.display()))
                    })?;
                if certs.is_empty() {
                    return Err(Error::Usage(format!("{}: no PEM certificate", p.display())));
                }
                out.extend(certs);
            }
            Ok(out)
        };
        Ok(Authorities {
            roots: read(roots)?,
            extra: read(extra)?,
        })
    }
}

/// What a verified token asserts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// genTime, milliseconds since the Unix epoch.
    pub gen_time_ms: u64,
    /// The stated accuracy in microseconds, if any.
    pub accuracy_micros: Option<u64>,
    /// The token's serial number, hex.
    pub serial: String,
    /// The TSA policy, dotted.
    pub policy: String,
    /// The signer's subject.
    pub tsa: String,
    /// The signer's issuer.
    pub issuer: String,
    /// The imprint's algorithm and value (hex).
    pub imprint: (HashAlg, String),
}

fn hash(alg: HashAlg, data: &[u8]) -> Vec<u8> {
    let a = match alg {
        HashAlg::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
        HashAlg::Sha256 => &digest::SHA256,
        HashAlg::Sha384 => &digest::SHA384,
        HashAlg::Sha512 => &digest::SHA512,
    };
    digest::digest(a, data).as_ref().to_vec()
}

fn failed(text: impl Into<String>) -> Error {
    Error::Failed(text.into())
}

/// Verifies one token (a bare token or a whole `TimeStampResp`) over `data`.
pub fn verify(
    token_bytes: &[u8],
    data: &[u8],
    authorities: &Authorities,
) -> Result<Verified, Error> {
    let bad = |e: rfc3161::Rfc3161Error| failed(format!("the token: {e}"));
    let token = Token::parse(rfc3161::token_bytes(token_bytes).map_err(bad)?).map_err(bad)?;
    let tst = &token.tst_info;
    let digest_of_data = hash(tst.imprint_alg, data);
    if digest_of_data != tst.imprint {
        return Err(failed(format!(
            "the token time-stamps {} {}, but the file's is {}",
            tst.imprint_alg.name(),
            to_hex(tst.imprint),
            to_hex(&digest_of_data)
        )));
    }
    let signer = &token.signer;
    if hash(signer.digest_alg, token.tst_info_der) != signer.message_digest {
        return Err(failed(
            "the signed messageDigest attribute is not the digest of the TSTInfo (the token was altered)",
        ));
    }
    let candidates: Vec<&[u8]> = token
        .certificates
        .iter()
        .copied()
        .chain(authorities.extra.iter().map(|c| c.as_ref()))
        .collect();
    let mut signer_cert = None;
    for c in &candidates {
        let info = CertInfo::parse(c).map_err(|e| failed(format!("a certificate: {e}")))?;
        if info.is(&signer.sid) {
            signer_cert = Some((*c, info));
            break;
        }
    }
    let (cert_der, info) = signer_cert.ok_or_else(|| {
        failed("the TSA's certificate is neither in the token nor given with --tsa-cert")
    })?;
    let ess = signer.signing_cert;
    if hash(ess.alg, cert_der) != ess.cert_hash {
        return Err(failed(
            "the ESS signing-certificate attribute names another certificate than the signer's",
        ));
    }
    info.check_tsa_usage().map_err(|e| failed(e.to_string()))?;

    let cert = CertificateDer::from(cert_der);
    let ee = webpki::EndEntityCert::try_from(&cert)
        .map_err(|e| failed(format!("the TSA certificate: {e:?}")))?;
    check_signature(&ee, signer)?;

    let anchors = authorities
        .roots
        .iter()
        .map(|c| {
            webpki::anchor_from_trusted_cert(c)
                .map_err(|e| Error::Usage(format!("a --tsa-ca certificate: {e:?}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let intermediates: Vec<CertificateDer<'_>> = candidates
        .iter()
        .filter(|c| **c != cert_der)
        .map(|c| CertificateDer::from(*c))
        .collect();
    let at = UnixTime::since_unix_epoch(Duration::from_millis(tst.gen_time_ms));
    ee.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &anchors,
        &intermediates,
        at,
        webpki::KeyUsage::required(oid::KP_TIME_STAMPING),
        None,
        None,
    )
    .map_err(|e| {
        failed(format!(
            "the TSA certificate does not chain to a --tsa-ca certificate at {}: {e:?}",
            rfc3339_ms(tst.gen_time_ms)
        ))
    })?;
    Ok(Verified {
        gen_time_ms: tst.gen_time_ms,
        accuracy_micros: tst.accuracy_micros,
        serial: to_hex(tst.serial),
        policy: der::oid_to_dotted(tst.policy),
        tsa: rfc3161::name_to_string(info.subject),
        issuer: rfc3161::name_to_string(info.issuer),
        imprint: (tst.imprint_alg, to_hex(tst.imprint)),
    })
}

/// The algorithms that may have made a signature with `alg` under `digest`; the certificate's
/// key decides among them (P-256 or P-384).
fn signature_algorithms(
    alg: &rfc3161::AlgorithmId<'_>,
    digest: HashAlg,
) -> Result<Vec<&'static dyn SignatureVerificationAlgorithm>, Error> {
    let unsupported = || {
        failed(format!(
            "unsupported signature algorithm {} with {}",
            der::oid_to_dotted(alg.oid),
            digest.name()
        ))
    };
    let pkcs1 = |h: HashAlg| match h {
        HashAlg::Sha256 => Some(algs::RSA_PKCS1_2048_8192_SHA256),
        HashAlg::Sha384 => Some(algs::RSA_PKCS1_2048_8192_SHA384),
        HashAlg::Sha512 => Some(algs::RSA_PKCS1_2048_8192_SHA512),
        HashAlg::Sha1 => None,
    };
    let found = match alg.oid {
        o if o == oid::RSA_ENCRYPTION => pkcs1(digest).map(|a| vec![a]),
        o if o == oid::SHA256_WITH_RSA => pkcs1(HashAlg::Sha256).map(|a| vec![a]),
        o if o == oid::SHA384_WITH_RSA => pkcs1(HashAlg::Sha384).map(|a| vec![a]),
        o if o == oid::SHA512_WITH_RSA => pkcs1(HashAlg::Sha512).map(|a| vec![a]),
        o if o == oid::RSASSA_PSS => match pss_hash(alg.params)? {
            HashAlg::Sha256 => Some(vec![algs::RSA_PSS_2048_8192_SHA256_LEGACY_KEY]),
            HashAlg::Sha384 => Some(vec![algs::RSA_PSS_2048_8192_SHA384_LEGACY_KEY]),
            HashAlg::Sha512 => Some(vec![algs::RSA_PSS_2048_8192_SHA512_LEGACY_KEY]),
            HashAlg::Sha1 => None,
        },
        o if o == oid::ECDSA_SHA256 => Some(vec![algs::ECDSA_P256_SHA256, algs::ECDSA_P384_SHA256]),
        o if o == oid::ECDSA_SHA384 => Some(vec![algs::ECDSA_P256_SHA384, algs::ECDSA_P384_SHA384]),
        o if o == oid::ED25519 => Some(vec![algs::ED25519]),
        _ => None,
    };
    found.ok_or_else(unsupported)
}

/// The hash of RSASSA-PSS parameters (`[0] hashAlgorithm`, SHA-1 when absent).
fn pss_hash(params: Option<&[u8]>) -> Result<HashAlg, Error> {
    let bad = |e: der::DerError| failed(format!("RSASSA-PSS parameters: {e}"));
    let Some(p) = params else {
        return Ok(HashAlg::Sha1);
    };
    let mut r = der::single(p, der::tag::SEQUENCE, "RSASSA-PSS-params")
        .map_err(bad)?
        .reader();
    let Some(h) = r
        .optional(der::tag::context(0, true), "hashAlgorithm")
        .map_err(bad)?
    else {
        return Ok(HashAlg::Sha1);
    };
    let mut a = der::single(h.value, der::tag::SEQUENCE, "hashAlgorithm")
        .map_err(bad)?
        .reader();
    match a.oid("hashAlgorithm").map_err(bad)? {
        o if o == oid::SHA256 => Ok(HashAlg::Sha256),
        o if o == oid::SHA384 => Ok(HashAlg::Sha384),
        o if o == oid::SHA512 => Ok(HashAlg::Sha512),
        _ => Ok(HashAlg::Sha1),
    }
}

fn check_signature(
    ee: &webpki::EndEntityCert<'_>,
    signer: &rfc3161::SignerInfo<'_>,
) -> Result<(), Error> {
    let mut last = None;
    for alg in signature_algorithms(&signer.signature_alg, signer.digest_alg)? {
        match ee.verify_signature(alg, &signer.signed_attrs, signer.signature) {
            Ok(()) => return Ok(()),
            Err(webpki::Error::InvalidSignatureForPublicKey) => {
                return Err(failed(
                    "the TSA's signature over the signed attributes is invalid",
                ));
            }
            // Another curve or key type: try the next candidate.
            Err(e) => last = Some(e),
        }
    }
    Err(failed(format!(
        "the TSA's signature cannot be checked with its certificate's key: {last:?}"
    )))
}

/// The checkpoint and token files to check: one pair, or every `*.checkpoint` under a directory
/// (the anchor's layout, one subdirectory per origin) with its `.tst`.
pub fn pairs(path: &Path, token: Option<&Path>) -> Result<Vec<(PathBuf, PathBuf)>, Error> {
    let io = |p: &Path, e: std::io::Error| Error::Io(format!("reading {}: {e}", p.display()));
    if !path.is_dir() {
        let t = token.map_or_else(|| path.with_extension(TOKEN_EXTENSION), Path::to_path_buf);
        return Ok(vec![(path.to_path_buf(), t)]);
    }
    if token.is_some() {
        return Err(Error::Usage(
            "a token file goes with one checkpoint file, not with a directory".into(),
        ));
    }
    let mut out = Vec::new();
    let mut dirs = vec![path.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).map_err(|e| io(&d, e))? {
            let p = e.map_err(|e| io(&d, e))?.path();
            if p.is_dir() && d == path {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == CHECKPOINT_EXTENSION) {
                let t = p.with_extension(TOKEN_EXTENSION);
                out.push((p, t));
            }
        }
    }
    out.sort();
    if out.is_empty() {
        return Err(Error::Failed(format!(
            "no *.{CHECKPOINT_EXTENSION} file under {}",
            path.display()
        )));
    }
    Ok(out)
}

/// Verifies every pair; fails on the first that does not verify, naming its files.
pub fn run(pairs: &[(PathBuf, PathBuf)], authorities: &Authorities) -> Result<Report, Error> {
    if authorities.roots.is_empty() {
        return Err(Error::Usage("--tsa-ca is required".into()));
    }
    let mut lines = Vec::new();
    let mut results = Vec::new();
    for (data_path, token_path) in pairs {
        let data = read_file(data_path)?;
        let token = read_file(token_path)?;
        let v = verify(&token, &data, authorities).map_err(|e| match e {
            Error::Failed(m) => Error::Failed(format!(
                "{} with {}: {m}",
                data_path.display(),
                token_path.display()
            )),
            other => other,
        })?;
        let checkpoint = describe_checkpoint(&data);
        let accuracy = v
            .accuracy_micros
            .map_or(String::new(), |a| format!(" ±{}", micros_text(a)));
        lines.push(format!(
            "{}: time-stamped at {}{accuracy} by {} (serial {}, policy {}){}",
            data_path.display(),
            rfc3339_ms(v.gen_time_ms),
            v.tsa,
            v.serial,
            v.policy,
            checkpoint.as_ref().map_or(String::new(), |c| format!(
                "; checkpoint {} size {}",
                c.0, c.1
            ))
        ));
        results.push(json!({
            "file": data_path.display().to_string(),
            "token": token_path.display().to_string(),
            "time": rfc3339_ms(v.gen_time_ms),
            "time_ms": v.gen_time_ms,
            "accuracy_micros": v.accuracy_micros,
            "tsa": v.tsa,
            "tsa_issuer": v.issuer,
            "serial": v.serial,
            "policy": v.policy,
            "imprint_algorithm": v.imprint.0.name(),
            "imprint": v.imprint.1,
            "origin": checkpoint.as_ref().map(|c| c.0.clone()),
            "size": checkpoint.as_ref().map(|c| c.1),
        }));
    }
    lines.push(format!(
        "OK: {} time-stamp token{} verified against the TSA chain (revocation not checked)",
        pairs.len(),
        if pairs.len() == 1 { "" } else { "s" }
    ));
    Ok(Report {
        lines,
        json: json!({ "verified": true, "timestamps": Value::Array(results) }),
    })
}

/// `1.5 s`, `500 ms`, `100 µs`.
fn micros_text(m: u64) -> String {
    if m.is_multiple_of(1_000_000) {
        format!("{} s", m / 1_000_000)
    } else if m.is_multiple_of(1000) {
        format!("{} ms", m / 1000)
    } else {
        format!("{m} µs")
    }
}

/// The origin and size of a checkpoint note (unverified: `sealtrail-verify checkpoint` checks its
/// signatures), or nothing when the file is not one.
fn describe_checkpoint(data: &[u8]) -> Option<(String, u64)> {
    let text = std::str::from_utf8(data).ok()?;
    let mut lines = text.lines();
    let origin = lines.next()?;
    let size = sealtrail_spec::parse_decimal(lines.next()?)?;
    Some((sealtrail_spec::escape_display(origin), size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accuracy_reads_in_the_largest_whole_unit() {
        assert_eq!(micros_text(1_000_000), "1 s");
        assert_eq!(micros_text(1_500_000), "1500 ms");
        assert_eq!(micros_text(1_500_100), "1500100 µs");
    }

    #[test]
    fn a_directory_yields_each_checkpoint_with_its_token() {
        let dir = tempfile::tempdir().unwrap();
        let origin = dir.path().join("example.com%2Flog");
        std::fs::create_dir(&origin).unwrap();
        for f in [
            "7-aa.checkpoint",
            "7-aa.tst",
            "9-bb.checkpoint",
            "notes.txt",
        ] {
            std::fs::write(origin.join(f), b"x").unwrap();
        }
        let got = pairs(dir.path(), None).unwrap();
        assert_eq!(
            got,
            vec![
                (origin.join("7-aa.checkpoint"), origin.join("7-aa.tst")),
                (origin.join("9-bb.checkpoint"), origin.join("9-bb.tst")),
            ]
        );
        assert!(matches!(
            pairs(dir.path(), Some(Path::new("t"))),
            Err(Error::Usage(_))
        ));
        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(pairs(empty.path(), None), Err(Error::Failed(_))));
        let one = origin.join("7-aa.checkpoint");
        assert_eq!(
            pairs(&one, None).unwrap(),
            vec![(one.clone(), origin.join("7-aa.tst"))]
        );
    }
}
