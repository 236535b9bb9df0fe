//! Evidence packages end to end: a live log with two witnesses (a 2-of-2 policy), records of
//! several types, an erasure the cosigned checkpoint does not cover yet, then `GET /v1/evidence`
//! and `sealtrail-verify evidence` (the verifier library): the package verifies; one flipped byte
//! in any file, a missing file or an extra one fails and the message names the file; a log that
//! re-signs a manifest over altered content is still caught by the deeper checks; Go's x/mod
//! checks the package's checkpoint and inclusion proofs independently; scopes are checked
//! (principal needs the reader role, a bad time is 400, too large a scope is 413) and content is
//! withheld from callers who may not read it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "../../server/tests/common/go.rs"]
#[allow(dead_code, unreachable_pub)]
mod go;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use common::Live;
use sealtrail_server::auth::{Role, TokenEntry};
use sealtrail_server::config::{Config, WitnessEndpoint};
use sealtrail_server::store::mem::MemStore;
use sealtrail_spec::Hash;
use sealtrail_spec::cosignature::Cosigner;
use sealtrail_spec::note::{Ed25519Signer, Note, Signer};
use sealtrail_spec::policy::Policy;
use sealtrail_verifier::Error;
use sealtrail_verifier::evidence::{Keys, Package, run};
use sealtrail_witness::Witness;
use sha2::{Digest as _, Sha256};

const ORIGIN: &str = "evidence.sealtrail.example/log";
const ADMIN: &str = "stk_evidence-admin-token-for-tests-0000000000000";
const READER: &str = "stk_evidence-reader-token-for-tests-000000000000";

fn log_signer() -> Ed25519Signer {
    Ed25519Signer::from_seed(ORIGIN, [41; 32]).unwrap()
}

fn cosigner(n: u8) -> Cosigner {
    Cosigner::from_seed(&format!("w{n}.evidence.example"), [n + 100; 32]).unwrap()
}

/// A witness on its own port, served by `rt` until the sender is dropped or used.
fn start_witness(
    rt: &tokio::runtime::Runtime,
    n: u8,
    dir: &Path,
) -> ((String, String), tokio::sync::oneshot::Sender<()>) {
    let name = cosigner(n).name().to_owned();
    let mut c = sealtrail_witness::Config::new(
        &name,
        dir.join(format!("w{n}.key")),
        dir.join(format!("w{n}")),
    );
    c.logs = vec![sealtrail_witness::config::LogConfig {
        origin: ORIGIN.to_owned(),
        keys: vec![log_signer().verifier().to_vkey()],
        url: None,
    }];
    c.anchoring.interval_secs = 0;
    let w = Witness::start_with_key(c, cosigner(n)).unwrap();
    let vkey = w.verifier().to_vkey();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let url = rt.block_on(async {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        tokio::spawn(w.run(l, async {
            let _ = stopped.await;
        }));
        url
    });
    ((url, vkey), stop)
}

fn token(name: &str, role: Role, t: &str) -> TokenEntry {
    TokenEntry {
        name: name.to_owned(),
        role,
        sha256: Hash(sealtrail_spec::hash::sha256(t.as_bytes())).to_hex(),
        expires_at: None,
    }
}

fn config(witnesses: &[(String, String)]) -> Config {
    let mut c = Config {
        origin: ORIGIN.to_owned(),
        ..Config::default()
    };
    c.witnessing.witnesses = witnesses
        .iter()
        .map(|(url, vkey)| WitnessEndpoint {
            url: url.clone(),
            vkey: vkey.clone(),
        })
        .collect();
    c.witnessing.quorum = Some(witnesses.len());
    c.witnessing.interval_ms = 20;
    c.witnessing.max_backoff_ms = 200;
    c.witnessing.cosigned_wait_secs = 10;
    c.auth.tokens = vec![
        token("ops", Role::Admin, ADMIN),
        token("auditor", Role::Reader, READER),
    ];
    c.limits.max_evidence_records = 50;
    c
}

/// Appends NDJSON payloads of one event type; returns the answer.
fn append(live: &Live, event_type: &str, payloads: &[String], wait: &str) -> serde_json::Value {
    let body: String = payloads.iter().map(|p| format!("{p}\n")).collect();
    let r = live
        .http
        .post(format!("{}/v1/entries/batch?wait={wait}", live.url))
        .bearer_auth(ADMIN)
        .header("content-type", "application/x-ndjson")
        .header("x-event-type", event_type)
        .body(body)
        .send()
        .unwrap();
    let status = r.status();
    let j: serde_json::Value = r.json().unwrap();
    assert!(status.is_success(), "{j}");
    j
}

/// `GET /v1/evidence` with the query and token: `(status, body)`.
fn evidence(live: &Live, query: &str, token: Option<&str>) -> (u16, Vec<u8>) {
    let mut req = live.http.get(format!("{}/v1/evidence?{query}", live.url));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().unwrap();
    (r.status().as_u16(), r.bytes().unwrap().to_vec())
}

fn keys(policy: &Policy) -> Keys {
    Keys {
        log_key: Some(log_signer().verifier().to_vkey()),
        policy: Some(policy.to_text()),
    }
}

/// Verifies the files and returns the failure message; panics if they verify.
fn failure(files: &BTreeMap<String, Vec<u8>>, keys: &Keys) -> String {
    match run(&Package::from_files(files.clone()), keys) {
        Ok(r) => panic!("verified: {:?}", r.lines),
        Err(e @ Error::Failed(_)) => {
            assert_eq!(e.exit_code(), 1);
            e.to_string()
        }
        Err(e) => panic!("not a verification failure: {e}"),
    }
}

/// Re-signs `files`' manifest after `edit` changed some files, as a log lying under its own key
/// would: every SHA-256 and the statement match again.
fn resign(files: &mut BTreeMap<String, Vec<u8>>) {
    let mut m: serde_json::Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    for (name, bytes) in files.iter() {
        if name != "manifest.json" && name != "manifest.sig" {
            m["files"][name] = sealtrail_spec::to_hex(&Sha256::digest(bytes)).into();
        }
    }
    let manifest = serde_json::to_vec_pretty(&m).unwrap();
    let digest = Hash(Sha256::digest(&manifest).into());
    let signer = log_signer();
    let signers: [&dyn Signer; 1] = [&signer];
    let note = Note::sign(
        &sealtrail_spec::evidence::statement(ORIGIN, &digest),
        &signers,
    )
    .unwrap();
    files.insert("manifest.json".into(), manifest);
    files.insert("manifest.sig".into(), note.to_bytes());
}

/// Rewrites line `n` of records.jsonl with `edit`.
fn edit_record(
    files: &mut BTreeMap<String, Vec<u8>>,
    index: u64,
    edit: impl Fn(&mut serde_json::Value),
) {
    let text = String::from_utf8(files["records.jsonl"].clone()).unwrap();
    let lines: Vec<String> = text
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            if v["index"] == index {
                edit(&mut v);
            }
            v.to_string()
        })
        .collect();
    files.insert(
        "records.jsonl".into(),
        format!("{}\n", lines.join("\n")).into_bytes(),
    );
}

fn write_dir(files: &BTreeMap<String, Vec<u8>>, dir: &Path) {
    for (name, bytes) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
}

#[test]
fn evidence_packages_verify_and_every_tampering_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (w1, _stop1) = start_witness(&rt, 1, dir.path());
    let (w2, stop2) = start_witness(&rt, 2, dir.path());
    let witnesses = vec![w1, w2];
    let vkeys: Vec<&str> = witnesses.iter().map(|(_, k)| k.as_str()).collect();
    let policy = Policy::k_of_n(&[log_signer().verifier().to_vkey()], &vkeys, 2).unwrap();
    let live = Live::start(config(&witnesses), Arc::new(MemStore::new()), log_signer());

    // 60 bulk entries (a scope too large for max_evidence_records = 50), then the records of
    // the scope: logins (two of them to be erased), reads, and an admin action.
    let bulk: Vec<String> = (0..60).map(|n| format!("{{\"bulk\":{n}}}")).collect();
    append(&live, "bulk.event", &bulk, "checkpoint");
    let logins: Vec<String> = (0..8)
        .map(|n| format!("{{\"user\":\"u{n}\",\"ok\":true}}"))
        .collect();
    let first_login = append(&live, "user.login", &logins, "checkpoint")["first_index"]
        .as_u64()
        .unwrap();
    let reads: Vec<String> = (0..4).map(|n| format!("{{\"doc\":\"d{n}\"}}")).collect();
    append(&live, "doc.read", &reads, "checkpoint");
    append(&live, "admin.action", &["{\"x\":1}".to_owned()], "cosigned");
    let cosigned = live.json("v1/log")["cosigned_tree_size"].as_u64().unwrap();
    assert_eq!(cosigned, 73);

    // One witness down: the policy cannot be met, so the cosigned checkpoint stays at 73 while
    // an erasure (entry 73) and one more login (entry 74) are appended after it.
    stop2.send(()).unwrap();
    let erased = [first_login + 1, first_login + 4];
    let r = live
        .http
        .post(format!("{}/v1/admin/erasures", live.url))
        .bearer_auth(ADMIN)
        .json(&serde_json::json!({"indices": erased, "reason": "evidence test"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().unwrap());
    append(
        &live,
        "user.login",
        &["{\"user\":\"late\"}".to_owned()],
        "checkpoint",
    );

    // A package of the logins (by type and a time range given as an RFC 3339 date).
    let (status, pkg) = evidence(&live, "type=user.login&since=2000-01-01", Some(READER));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&pkg));
    let path = dir.path().join("logins.tar.gz");
    std::fs::write(&path, &pkg).unwrap();
    let package = Package::open(&path).unwrap();
    let report = run(&package, &keys(&policy)).unwrap();
    let j = &report.json;
    assert_eq!(j["checkpoint"]["size"], cosigned, "{j}");
    assert_eq!(
        j["checkpoint"]["witnesses"].as_array().unwrap().len(),
        2,
        "{j}"
    );
    assert_eq!(j["consistency_to_size"], 75, "{j}");
    // The late login (74) is past the cosigned checkpoint: not in the package.
    assert_eq!(
        j["records"],
        serde_json::json!({"in_scope": 8, "live": 6, "erased": 2, "restricted": 0, "erasure_entries": 1}),
        "{j}"
    );
    let entries = j["entries"].as_array().unwrap();
    for e in entries {
        let i = e["index"].as_u64().unwrap();
        if erased.contains(&i) {
            assert_eq!(e["record_status"], "erased", "{e}");
            assert_eq!(e["erased"]["erasure_index"], 73, "{e}");
            assert_eq!(e["erased"]["erasure_entry_verified"], true, "{e}");
        } else {
            assert_eq!(e["record_status"], "verified", "{e}");
        }
    }
    let files = package.files().clone();
    let report_html = String::from_utf8(files["report.html"].clone()).unwrap();
    assert!(report_html.contains("erased by entry 73"), "report");
    assert!(report_html.contains("sealtrail-verify evidence"), "report");
    assert!(report_html.contains("<svg"), "report chart");
    assert!(!report_html.contains("<script"), "report has no scripts");

    // Without pinned keys the package's own are used, and the report says so.
    let own = run(&package, &Keys::default()).unwrap();
    assert!(own.lines[0].contains("from the package"), "{:?}", own.lines);
    // Another log key: the manifest signature fails.
    let other = Keys {
        log_key: Some(
            Ed25519Signer::from_seed(ORIGIN, [9; 32])
                .unwrap()
                .verifier()
                .to_vkey(),
        ),
        policy: None,
    };
    assert!(failure(&files, &other).starts_with("manifest.sig:"));

    // One flipped byte in any file fails, and the message names the file.
    for name in files.keys() {
        let mut tampered = files.clone();
        let bytes = tampered.get_mut(name).unwrap();
        let at = bytes.len() / 2;
        bytes[at] ^= 0x01;
        let msg = failure(&tampered, &keys(&policy));
        assert!(msg.contains(name.as_str()), "flipping {name}: {msg}");
        // A missing file too.
        let mut missing = files.clone();
        missing.remove(name);
        let msg = failure(&missing, &keys(&policy));
        assert!(msg.contains(name.as_str()), "removing {name}: {msg}");
    }
    let mut extra = files.clone();
    extra.insert("proofs/9999.tlog-proof".into(), b"x".to_vec());
    assert!(failure(&extra, &keys(&policy)).contains("proofs/9999.tlog-proof"));

    // A log that re-signs its manifest over altered content is caught by the deeper checks.
    let live_index = first_login;
    let mut t = files.clone();
    edit_record(&mut t, live_index, |v| {
        // Same length as the real payload, so only the commitment can tell.
        v["record"]["payload_base64"] = B64.encode(br#"{"user":"mx","ok":true}"#).into();
    });
    resign(&mut t);
    let msg = failure(&t, &keys(&policy));
    assert!(
        msg.contains(&format!("entry {live_index}")) && msg.contains("commitment"),
        "{msg}"
    );
    let mut t = files.clone();
    let proof = format!("proofs/{live_index}.tlog-proof");
    let text = String::from_utf8(t[&proof].clone()).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines[2] = Hash([0xee; 32]).to_base64();
    t.insert(
        proof.clone(),
        format!("{}\n", lines.join("\n")).into_bytes(),
    );
    resign(&mut t);
    let msg = failure(&t, &keys(&policy));
    assert!(
        msg.starts_with(&proof) && msg.contains("not included"),
        "{msg}"
    );
    let mut t = files.clone();
    edit_record(&mut t, live_index, |v| {
        v["record"] = serde_json::Value::Null;
        v["erased"] = serde_json::json!({"erasure_index": 73});
    });
    resign(&mut t);
    let msg = failure(&t, &keys(&policy));
    assert!(msg.contains("does not list entry"), "{msg}");
    let mut t = files.clone();
    edit_record(&mut t, live_index, |v| {
        v["in_scope"] = false.into();
    });
    resign(&mut t);
    assert!(failure(&t, &keys(&policy)).contains("erases no record"));

    // Go's x/mod client checks the checkpoints, the consistency proof and every inclusion proof
    // of the extracted package, and fails on a wrong proof hash.
    let go = rt.block_on(go::build_go_client());
    let extracted = dir.path().join("extracted");
    write_dir(&files, &extracted);
    let vkey = log_signer().verifier().to_vkey();
    let ok = rt.block_on(go.run_evidence(&extracted, &vkey));
    assert_eq!(ok.code, Some(0), "{}", ok.stderr);
    assert_eq!(ok.summary["records_included"], 9, "{}", ok.summary);
    assert_eq!(ok.summary["later_tree_size"], 75, "{}", ok.summary);
    let bad_dir = dir.path().join("bad");
    let mut bad = files.clone();
    let text = String::from_utf8(bad[&proof].clone()).unwrap();
    bad.insert(
        proof.clone(),
        text.replacen("index ", "index 1", 1).into_bytes(),
    );
    write_dir(&bad, &bad_dir);
    let failed = rt.block_on(go.run_evidence(&bad_dir, &vkey));
    assert_eq!(failed.code, Some(1), "{}", failed.summary);
    assert_eq!(failed.summary["stage"], proof, "{}", failed.summary);

    // Scopes: a principal needs the reader role; bad times and unknown parameters are 400; a
    // scope of more than max_evidence_records is 413. The principal scope works for a reader.
    let (s, _) = evidence(&live, "type=doc.read&principal=token%3Aops", None);
    assert_eq!(
        s, 200,
        "anonymous content is allowed on loopback by default"
    );
    let (s, body) = evidence(&live, "since=yesterday", Some(READER));
    assert_eq!(s, 400, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("since"));
    let (s, _) = evidence(&live, "kind=x", Some(READER));
    assert_eq!(s, 400);
    let (s, body) = evidence(&live, "", Some(READER));
    assert_eq!(s, 413, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("max_evidence_records"));
    let (s, pkg) = evidence(&live, "type=doc.read&principal=token%3Aops", Some(READER));
    assert_eq!(s, 200);
    let r = run(&Package::from_tar_gz(&pkg[..]).unwrap(), &keys(&policy)).unwrap();
    assert_eq!(r.json["records"]["in_scope"], 4, "{}", r.json);
    live.stop();

    // Content withheld: a server that never shows content anonymously.
    let mut c = config(&[]);
    c.witnessing.quorum = None;
    c.auth.anonymous_content = sealtrail_server::auth::AnonymousAccess::Never;
    let live = Live::start(c, Arc::new(MemStore::new()), log_signer());
    append(&live, "doc.read", &reads, "checkpoint");
    let (s, body) = evidence(&live, "principal=token%3Aops", None);
    assert_eq!(s, 403, "{}", String::from_utf8_lossy(&body));
    let (s, pkg) = evidence(&live, "type=doc.read", None);
    assert_eq!(s, 200);
    let files = Package::from_tar_gz(&pkg[..]).unwrap();
    assert!(!files.files().contains_key("witness-policy"));
    let keys = Keys {
        log_key: Some(log_signer().verifier().to_vkey()),
        policy: None,
    };
    let r = run(&files, &keys).unwrap();
    assert_eq!(r.json["records"]["restricted"], 4, "{}", r.json);
    let records = String::from_utf8(files.files()["records.jsonl"].clone()).unwrap();
    assert!(!records.contains("\"salt\""), "no salts without content");
    live.stop();
}
