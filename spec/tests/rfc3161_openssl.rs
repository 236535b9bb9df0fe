//! RFC 3161 parsing against tokens OpenSSL 3.0 made (`openssl ts -reply`; the seeds of the
//! `rfc3161_token` fuzz target). The expected values are what `openssl ts -reply -text` printed
//! for them and what the request (`openssl ts -query`) carried, not what this parser says.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use sealtrail_spec::der::{oid_from_dotted, oid_to_dotted};
use sealtrail_spec::rfc3161::{
    CertInfo, HashAlg, SignerId, Token, name_to_string, token_bytes, token_from_response,
};
use sealtrail_spec::to_hex;

fn seed(name: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus/rfc3161_token")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn an_openssl_response_parses_to_what_openssl_printed() {
    let resp = seed("valid-openssl-rsa-response.tsr");
    let token = token_from_response(&resp).unwrap();
    let t = Token::parse(token).unwrap();
    let tst = &t.tst_info;
    assert_eq!(oid_to_dotted(tst.policy), "1.2.3.4.1");
    assert_eq!(tst.imprint_alg, HashAlg::Sha256);
    // SHA-256 of "hello\n", the data the request was made for.
    assert_eq!(
        to_hex(tst.imprint),
        "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
    );
    assert_eq!(to_hex(tst.serial), "02");
    // "Time stamp: Dec  8 00:33:51.156 2026 GMT"
    assert_eq!(tst.gen_time_ms, 1_796_690_031_156);
    // "Accuracy: 0x01 seconds, 0x01F4 millis, 0x64 micros"
    assert_eq!(tst.accuracy_micros, Some(1_500_100));
    assert!(tst.ordering);
    assert_eq!(to_hex(tst.nonce.unwrap()), "047b25f2a62792bb");
    tst.check_answer(
        &hex32("5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"),
        &[0x04, 0x7b, 0x25, 0xf2, 0xa6, 0x27, 0x92, 0xbb],
        None,
    )
    .unwrap();
    // Under the policy asked for, and not under another.
    let asked = |policy: &str| {
        tst.check_answer(
            &hex32("5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"),
            &[0x04, 0x7b, 0x25, 0xf2, 0xa6, 0x27, 0x92, 0xbb],
            Some(&oid_from_dotted(policy).unwrap()),
        )
    };
    asked("1.2.3.4.1").unwrap();
    let e = asked("1.2.3.4.5").unwrap_err();
    assert_eq!(
        e.to_string(),
        "the token is under policy 1.2.3.4.1, not the requested 1.2.3.4.5"
    );
    let e = tst.check_answer(&[0; 32], &[1], None).unwrap_err();
    assert!(e.to_string().contains("not SHA-256 0000"), "{e}");
    let e = tst
        .check_answer(
            &hex32("5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"),
            &[1],
            None,
        )
        .unwrap_err();
    assert!(e.to_string().contains("nonce"), "{e}");

    // The signer: issuer and serial of the TSA certificate the token carries (with the CA's).
    assert_eq!(t.certificates.len(), 2);
    let signer = t
        .certificates
        .iter()
        .map(|c| CertInfo::parse(c).unwrap())
        .find(|c| c.is(&t.signer.sid))
        .unwrap();
    assert_eq!(
        name_to_string(signer.subject),
        "O=Sealtrail Test, CN=Test TSA"
    );
    assert_eq!(name_to_string(signer.issuer), "CN=Test Root CA");
    signer.check_tsa_usage().unwrap();
    assert!(matches!(t.signer.sid, SignerId::IssuerSerial { .. }));
    assert_eq!(t.signer.digest_alg, HashAlg::Sha256);
    // ess_cert_id_alg = sha256: SigningCertificateV2 with its default algorithm.
    assert_eq!(t.signer.signing_cert.alg, HashAlg::Sha256);
    // The whole response and the bare token give the same token.
    assert_eq!(token_bytes(&resp).unwrap(), token);
}

#[test]
fn a_rejection_says_why() {
    let e = token_from_response(&seed("invalid-openssl-rejection.tsr")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "the TSA refused the request: status 2 (rejection; Requested policy is not supported.; unacceptedPolicy)"
    );
}

#[test]
fn tokens_with_and_without_certificates() {
    let ec = seed("valid-openssl-ecdsa-p384-token.tst");
    let t = Token::parse(token_bytes(&ec).unwrap()).unwrap();
    assert_eq!(t.signer.digest_alg, HashAlg::Sha384);
    assert_eq!(
        oid_to_dotted(t.signer.signature_alg.oid),
        "1.2.840.10045.4.3.3"
    );
    let bare = seed("valid-openssl-token-without-certificates.tst");
    let t = Token::parse(token_bytes(&bare).unwrap()).unwrap();
    assert!(t.certificates.is_empty());
}

fn hex32(h: &str) -> [u8; 32] {
    let v: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    v.try_into().unwrap()
}
