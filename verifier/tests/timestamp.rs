//! `sealtrail-verify timestamp` against tokens made by a real TSA (OpenSSL's `openssl ts`): RSA
//! and ECDSA TSAs, SHA-256 and SHA-512 imprints, a directory of anchored checkpoints; and every
//! way a token can be wrong: another file, an altered TSTInfo, an altered signature, another
//! CA, a missing TSA certificate, a TSA certificate without the critical timeStamping usage.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../tests/support/openssl_tsa.rs"]
mod openssl_tsa;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{SystemTime, UNIX_EPOCH};

use openssl_tsa::{POLICY, Tsa, TsaKey};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use sealtrail_spec::rfc3161::{CertInfo, Token, token_bytes};

const TSA_EKU: Option<&str> = Some("critical,timeStamping");

fn command() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sealtrail-verify"));
    c.arg("timestamp");
    c
}

fn run(ca: &Path, extra: &[&str], file: &Path) -> Output {
    command()
        .arg("--tsa-ca")
        .arg(ca)
        .args(extra)
        .arg(file)
        .output()
        .unwrap()
}

/// Asserts the exit code and that the output says `want`.
fn exits_with(o: &Output, code: i32, want: &str) {
    assert_eq!(o.status.code(), Some(code), "{want}: {}", text(o));
    assert!(text(o).contains(want), "{want}: {}", text(o));
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// A checkpoint-shaped file and OpenSSL's token over it (`.tst` beside it).
fn stamped(tsa: &Tsa, dir: &Path, name: &str, size: u64, digest: &str) -> PathBuf {
    let data = dir.join(format!("{name}.checkpoint"));
    std::fs::write(
        &data,
        format!("example.com/log\n{size}\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n— example.com/log sig\n"),
    )
    .unwrap();
    tsa.stamp(&data, digest, &data.with_extension("tst"), true);
    data
}

/// The offset of `part` inside `whole` (a sub-slice of it).
fn offset(whole: &[u8], part: &[u8]) -> usize {
    part.as_ptr() as usize - whole.as_ptr() as usize
}

#[test]
fn tokens_from_rsa_and_ecdsa_tsas_verify() {
    for (key, digest) in [
        (TsaKey::Rsa, "sha256"),
        (TsaKey::EcP384, "sha256"),
        (TsaKey::Rsa, "sha512"),
    ] {
        let tsa = Tsa::new(key, TSA_EKU);
        let dir = tempfile::tempdir().unwrap();
        let before = now_ms();
        let data = stamped(&tsa, dir.path(), "7-aa", 7, digest);
        let after = now_ms();
        // OpenSSL agrees the token is good.
        tsa.openssl_verify(&data, &data.with_extension("tst"))
            .unwrap();

        let o = run(&tsa.ca, &[], &data);
        let t = text(&o);
        assert!(o.status.success(), "{key:?} {digest}: {t}");
        assert!(t.contains("by O=Sealtrail Test, CN=Test TSA"), "{t}");
        assert!(t.contains(&format!("policy {POLICY}")), "{t}");
        assert!(t.contains("; checkpoint example.com/log size 7"), "{t}");
        assert!(t.contains("±1500 ms"), "{t}");
        assert!(t.contains("OK: 1 time-stamp token verified"), "{t}");

        let o = run(&tsa.ca, &["--json"], &data);
        assert!(o.status.success(), "{}", text(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let r = &v["timestamps"][0];
        assert_eq!(v["verified"], true);
        // genTime is OpenSSL's clock, read between our two readings (whole seconds apart at
        // worst: OpenSSL's precision here is the second).
        let t = r["time_ms"].as_u64().unwrap();
        assert!(
            t + 1000 >= before && t <= after + 1000,
            "{t} not in {before}..{after}"
        );
        assert_eq!(r["size"], 7);
        assert_eq!(r["accuracy_micros"], 1_500_000);
        let expected_alg = if digest == "sha512" {
            "SHA-512"
        } else {
            "SHA-256"
        };
        assert_eq!(r["imprint_algorithm"], expected_alg);
        // The serial OpenSSL's own text dump shows.
        let dump = Command::new("openssl")
            .args(["ts", "-reply", "-token_in", "-text", "-in"])
            .arg(data.with_extension("tst"))
            .output()
            .unwrap();
        let dump = String::from_utf8_lossy(&dump.stdout).into_owned();
        let serial = dump
            .lines()
            .find_map(|l| l.strip_prefix("Serial number: 0x"))
            .unwrap();
        assert_eq!(
            r["serial"].as_str().unwrap().to_uppercase(),
            serial.trim(),
            "{dump}"
        );
    }
}

#[test]
fn a_directory_of_anchored_checkpoints_verifies_whole() {
    let tsa = Tsa::new(TsaKey::Rsa, TSA_EKU);
    let root = tempfile::tempdir().unwrap();
    let origin = root.path().join("example.com%2Flog");
    std::fs::create_dir(&origin).unwrap();
    stamped(&tsa, &origin, "4-0123456789abcdef", 4, "sha256");
    let last = stamped(&tsa, &origin, "7-fedcba9876543210", 7, "sha256");
    let o = run(&tsa.ca, &[], root.path());
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("OK: 2 time-stamp tokens verified"),
        "{}",
        text(&o)
    );

    // One token swapped for the other's: the failure names the pair.
    std::fs::copy(
        origin.join("4-0123456789abcdef.tst"),
        last.with_extension("tst"),
    )
    .unwrap();
    let o = run(&tsa.ca, &[], root.path());
    exits_with(&o, 1, "7-fedcba9876543210.checkpoint with");
    exits_with(&o, 1, "but the file's is");

    // A checkpoint without its token is an error too.
    std::fs::remove_file(last.with_extension("tst")).unwrap();
    exits_with(&run(&tsa.ca, &[], root.path()), 2, "7-fedcba9876543210.tst");
}

#[test]
fn altered_tokens_files_and_chains_fail() {
    let tsa = Tsa::new(TsaKey::Rsa, TSA_EKU);
    let other = Tsa::new(TsaKey::Rsa, TSA_EKU);
    let dir = tempfile::tempdir().unwrap();
    let data = stamped(&tsa, dir.path(), "7-aa", 7, "sha256");
    let token_path = data.with_extension("tst");
    let token = std::fs::read(&token_path).unwrap();
    let parsed = Token::parse(token_bytes(&token).unwrap()).unwrap();
    let fails = |bytes: &[u8], ca: &Path, want: &str| {
        let t = dir.path().join("bad.tst");
        std::fs::write(&t, bytes).unwrap();
        exits_with(&run(ca, &["--token", t.to_str().unwrap()], &data), 1, want);
    };
    // The control: the same token, copied, verifies.
    std::fs::write(dir.path().join("good.tst"), &token).unwrap();
    let good = dir.path().join("good.tst");
    assert!(
        run(&tsa.ca, &["--token", good.to_str().unwrap()], &data)
            .status
            .success()
    );
    // The TSTInfo's last byte (inside the TSA's name: the DER stays valid).
    let mut b = token.clone();
    let end = offset(&token, parsed.tst_info_der) + parsed.tst_info_der.len() - 1;
    b[end] ^= 1;
    fails(
        &b,
        &tsa.ca,
        "messageDigest attribute is not the digest of the TSTInfo",
    );
    // The signature's last byte.
    let mut b = token.clone();
    let sig = parsed.signer.signature;
    b[offset(&token, sig) + sig.len() - 1] ^= 1;
    fails(
        &b,
        &tsa.ca,
        "signature over the signed attributes is invalid",
    );
    // Another CA.
    exits_with(
        &run(&other.ca, &[], &data),
        1,
        "does not chain to a --tsa-ca certificate",
    );
    // Another file.
    let moved = dir.path().join("moved.checkpoint");
    let mut bytes = std::fs::read(&data).unwrap();
    bytes.push(b'\n');
    std::fs::write(&moved, bytes).unwrap();
    let o = run(&tsa.ca, &["--token", token_path.to_str().unwrap()], &moved);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    // Not a token.
    fails(b"not DER", &tsa.ca, "the token: malformed");
    // Usage: no CA.
    let o = command().arg(&data).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

#[test]
fn a_token_without_the_tsa_certificate_needs_it_given() {
    let tsa = Tsa::new(TsaKey::EcP384, TSA_EKU);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("7-aa.checkpoint");
    std::fs::write(&data, "example.com/log\n7\nroot\n").unwrap();
    tsa.stamp(&data, "sha256", &data.with_extension("tst"), false);
    exits_with(
        &run(&tsa.ca, &[], &data),
        1,
        "neither in the token nor given with --tsa-cert",
    );
    let o = run(&tsa.ca, &["--tsa-cert", tsa.cert.to_str().unwrap()], &data);
    assert!(o.status.success(), "{}", text(&o));
}

/// RFC 3161 2.3: exactly id-kp-timeStamping, critical. OpenSSL will not sign with anything
/// else, so the rule is checked on certificates it issued.
#[test]
fn the_tsa_certificate_must_carry_only_a_critical_timestamping_usage() {
    let cases = [
        (Some("critical,timeStamping"), None),
        (Some("timeStamping"), Some("is not critical")),
        (
            Some("critical,timeStamping,codeSigning"),
            Some("not exactly id-kp-timeStamping"),
        ),
        (None, Some("has no extended key usage")),
    ];
    for (eku, want) in cases {
        let t = Tsa::new(TsaKey::EcP384, eku);
        let cert = CertificateDer::from_pem_file(&t.cert).unwrap();
        let got = CertInfo::parse(&cert).unwrap().check_tsa_usage();
        match want {
            None => got.unwrap(),
            Some(w) => assert!(got.unwrap_err().to_string().contains(w), "{eku:?}"),
        }
    }
}
