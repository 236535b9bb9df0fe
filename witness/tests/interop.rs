//! Interop: the litewitness test transcript (FiloSottile/torchwood,
//! `cmd/litewitness/testdata/litewitness.txt`, as summarised in c2sp-digest section 8.5(c)),
//! replayed against this witness. The log key, origin, checkpoints and log signatures are the
//! transcript's; the cosignatures are this witness's own (its key differs), so only statuses are
//! compared, plus that every 200 carries a cosignature that verifies. Where litewitness differs
//! from the spec (unknown origin: 403 there, 404 in tlog-witness), we follow the spec.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use sealtrail_spec::witness::parse_cosignature_lines;
use sealtrail_witness::config::LogConfig;

const ORIGIN: &str =
    "sigsum.org/v1/tree/4d6d8825a6bb689d459628312889dfbb0bcd41b5211d9e1ce768b0ff0309e562";
const VKEY: &str = "sigsum.org/v1/tree/4d6d8825a6bb689d459628312889dfbb0bcd41b5211d9e1ce768b0ff0309e562+5202289b+Af/cLU2Y5BJNP+r3iMDC+av9eWCD0fBJVDfzAux5zxAP";
const ROOT1: &str = "KgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
const SIG1: &str =
    "UgIom7fPZTqpxWWhyjWduBvTvGVqsokMbqTArsQilegKoFBJQjUFAmQ0+YeSPM3wfUQMFSzVnnNuWRTYrajXpNUbIQY=";
const ROOT3: &str = "RcCI1Nk56ZcSmIEfIn0SleqtV7uvrlXNccFx595Iwl0=";
const SIG3: &str =
    "UgIom2VbtIcdFbwFAy1n7s6IkAxIY6J/GQOTuZF2ORV39d75cbAj2aQYwyJre36kezNobZs4SUUdrcawfAB8WVrx6go=";
const H1: &str = "KgEAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
const H2: &str = "KgIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

fn checkpoint(origin: &str, size: u64, root: &str, sig: &str) -> String {
    format!("{origin}\n{size}\n{root}\n\n\u{2014} {ORIGIN} {sig}\n")
}

fn request(old: u64, proof: &[&str], note: &str) -> Vec<u8> {
    let mut b = format!("old {old}\n");
    for p in proof {
        b.push_str(p);
        b.push('\n');
    }
    b.push('\n');
    b.push_str(note);
    b.into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn litewitness_transcript() {
    let dir = tempfile::tempdir().unwrap();
    let log = LogConfig {
        origin: ORIGIN.into(),
        keys: vec![VKEY.into()],
        url: None,
    };
    let w = start(config(dir.path(), vec![log])).await;
    let url = &w.url;
    let verifier = cosigner().verifier();

    // 1. old 0, no proof, the size-1 checkpoint: 200 with a cosignature.
    let cp1 = checkpoint(ORIGIN, 1, ROOT1, SIG1);
    let (status, _, text) = add(url, request(0, &[], &cp1)).await;
    assert_eq!(status, 200, "{text}");
    let sig = &parse_cosignature_lines(text.as_bytes()).unwrap()[0];
    verifier
        .verify_cosignature(&format!("{ORIGIN}\n1\n{ROOT1}\n"), sig)
        .unwrap();

    // 2. The size-3 checkpoint with its signature altered near the end: 403.
    let mut bad_sig = SIG3.to_owned();
    bad_sig.replace_range(80..81, if &SIG3[80..81] == "A" { "B" } else { "A" });
    let (status, _, text) = add(
        url,
        request(1, &[H1, H2], &checkpoint(ORIGIN, 3, ROOT3, &bad_sig)),
    )
    .await;
    assert_eq!(status, 403, "{text}");

    // 3. The same with origin ...e563 (not configured): 404 per tlog-witness (litewitness 403).
    let other = format!("{}3", &ORIGIN[..ORIGIN.len() - 1]);
    let (status, _, _) = add(
        url,
        request(1, &[H1, H2], &checkpoint(&other, 3, ROOT3, SIG3)),
    )
    .await;
    assert_eq!(status, 404);

    let cp3 = checkpoint(ORIGIN, 3, ROOT3, SIG3);
    // 4. old 1 with no proof: 422.
    assert_eq!(add(url, request(1, &[], &cp3)).await.0, 422);
    // 5. old 1 with a corrupted second proof hash: 422.
    let corrupted = H2.replace("KgI", "KgM");
    assert_eq!(add(url, request(1, &[H1, &corrupted], &cp3)).await.0, 422);
    // 6. old 1 with the right proof: 200.
    let (status, _, text) = add(url, request(1, &[H1, H2], &cp3)).await;
    assert_eq!(status, 200, "{text}");
    let sig = &parse_cosignature_lines(text.as_bytes()).unwrap()[0];
    verifier
        .verify_cosignature(&format!("{ORIGIN}\n3\n{ROOT3}\n"), sig)
        .unwrap();
    w.stop().await;
}
