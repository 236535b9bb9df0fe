//! Static fixtures for the CLI tests, built with the spec crate alone: a log of v2 leaf envelopes
//! and their private records, written as a directory of static tlog-tiles, its signed (and
//! cosigned) checkpoints and tlog-proofs, the JSON answers of `GET /v1/entries/{i}`, a small HTTP
//! server for both, and helpers to run the binary and to flip bits.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use sealtrail_spec::checkpoint::{Checkpoint, sign_checkpoint};
use sealtrail_spec::cosignature::Cosigner;
use sealtrail_spec::edge::extend;
use sealtrail_spec::envelope::LeafEnvelope;
use sealtrail_spec::hash::sha256;
use sealtrail_spec::merkle::{self, LeafHashes};
use sealtrail_spec::note::{Ed25519Signer, Note};
use sealtrail_spec::record::PrivateRecord;
use sealtrail_spec::tiles::{self, TileId, TileReader};
use sealtrail_spec::tlog_proof::TlogProof;
use sealtrail_spec::{Hash, leaf_hash};
use serde_json::{Value, json};

pub const ORIGIN: &str = "verify.test.example/log";

pub fn signer() -> Ed25519Signer {
    Ed25519Signer::from_seed(ORIGIN, [3; 32]).unwrap()
}

pub fn log_vkey() -> String {
    signer().verifier().to_vkey()
}

pub fn witness(n: u8) -> Cosigner {
    Cosigner::from_seed(&format!("witness{n}.example"), [40 + n; 32]).unwrap()
}

/// The private record of entry `i` of a log; `history` tells forks apart. The salt is fixed per
/// entry (a test fixture; a log draws it at random).
pub fn record(history: &str, i: u64) -> PrivateRecord {
    PrivateRecord {
        salt: sha256(format!("salt/{history}/{i}").as_bytes()),
        principal: "tester".into(),
        payload: format!("{{\"history\":\"{history}\",\"n\":{i}}}").into_bytes(),
    }
}

/// The leaf envelope of entry `i` that commits to `record`.
pub fn envelope(record: &PrivateRecord, i: u64, event_type: &str) -> LeafEnvelope {
    LeafEnvelope {
        time_ms: 1_700_000_000_000 + i,
        content_type: "application/json".into(),
        event_type: Some(event_type.into()),
        payload_size: record.payload.len() as u64,
        commitment: record.commitment(),
    }
}

/// Entry `i` of a log: the encoded envelope committing to [`record`].
pub fn entry(history: &str, i: u64) -> Vec<u8> {
    envelope(&record(history, i), i, "test.event")
        .encode()
        .unwrap()
}

struct NoTiles;
impl TileReader for NoTiles {
    type Error = ();
    fn read_tile(&mut self, _: TileId) -> Result<Vec<Hash>, ()> {
        Err(())
    }
}

/// A log of `size` entries of `history`, with their envelopes and records.
pub struct Log {
    pub entries: Vec<Vec<u8>>,
    pub leaves: Vec<Hash>,
    pub envelopes: Vec<LeafEnvelope>,
    pub records: Vec<PrivateRecord>,
}

impl Log {
    pub fn new(history: &str, size: u64) -> Self {
        Self::with_erasure_at(history, size, None)
    }

    /// A log whose entry `erasure` (if any) is one of the log's own `sealtrail.erasure` entries.
    pub fn with_erasure_at(history: &str, size: u64, erasure: Option<u64>) -> Self {
        let (mut envelopes, mut records) = (Vec::new(), Vec::new());
        for i in 0..size {
            let (r, event_type) = if Some(i) == erasure {
                let mut r = record(history, i);
                r.principal = "sealtrail".into();
                (r, "sealtrail.erasure")
            } else {
                (record(history, i), "test.event")
            };
            envelopes.push(envelope(&r, i, event_type));
            records.push(r);
        }
        let entries: Vec<Vec<u8>> = envelopes.iter().map(|e| e.encode().unwrap()).collect();
        let leaves = entries.iter().map(|e| leaf_hash(e)).collect();
        Log {
            entries,
            leaves,
            envelopes,
            records,
        }
    }

    /// The JSON answer of `GET /v1/entries/{i}` to a caller who may read the record.
    pub fn answer(&self, i: u64) -> Value {
        let mut j = self.public_fields(i);
        j["record"] = record_json(&self.records[i as usize]);
        j["erased"] = Value::Null;
        j
    }

    /// The answer to a caller who may not read the record.
    pub fn restricted_answer(&self, i: u64) -> Value {
        let mut j = self.public_fields(i);
        j["record"] = Value::Null;
        j["restricted"] = true.into();
        j["erased"] = Value::Null;
        j
    }

    /// The answer once the record is erased by entry `erasure_index`.
    pub fn erased_answer(&self, i: u64, erasure_index: u64) -> Value {
        let mut j = self.public_fields(i);
        j["record"] = Value::Null;
        j["erased"] = json!({"erasure_index": erasure_index, "time_ms": 1_700_000_999_000u64});
        j
    }

    fn public_fields(&self, i: u64) -> Value {
        let e = &self.envelopes[i as usize];
        json!({
            "index": i,
            "time_ms": e.time_ms,
            "content_type": e.content_type,
            "event_type": e.event_type,
            "payload_size": e.payload_size,
            "commitment": Hash(e.commitment).to_hex(),
        })
    }

    pub fn size(&self) -> u64 {
        self.leaves.len() as u64
    }

    pub fn root(&self, size: u64) -> Hash {
        merkle::tree_hash(&self.leaves[..size as usize])
    }

    /// The checkpoint at `size`, signed by the log and cosigned by `witnesses`.
    pub fn checkpoint(&self, size: u64, witnesses: &[Cosigner]) -> Vec<u8> {
        let cp = Checkpoint::new(ORIGIN, size, self.root(size)).unwrap();
        let mut note = Note::parse(&sign_checkpoint(&cp, &signer()).unwrap()).unwrap();
        for w in witnesses {
            let sig = w.cosign(note.text(), 1_700_000_000).unwrap();
            note.push_signature(sig).unwrap();
        }
        note.to_bytes()
    }

    /// A tlog-proof for entry `index` in the checkpoint at `size`.
    pub fn proof(&self, index: u64, size: u64, witnesses: &[Cosigner]) -> Vec<u8> {
        let path =
            merkle::inclusion_proof(index, size, &mut LeafHashes(&self.leaves[..size as usize]))
                .unwrap();
        TlogProof::new(index, path, self.checkpoint(size, witnesses), None)
            .unwrap()
            .to_bytes()
    }

    /// Writes the log as static tlog-tiles into `dir`: checkpoint, every tile and bundle.
    pub fn write_tiles(&self, dir: &Path, witnesses: &[Cosigner]) {
        let ext = extend(0, NoTiles, &self.leaves).unwrap();
        for (tile, hashes) in ext.tiles {
            write(dir, &tile.path(), &tiles::encode_hash_tile(&hashes));
        }
        for b in tiles::all_bundles(self.size()) {
            let start = b.start() as usize;
            let chunk = &self.entries[start..start + usize::from(b.width)];
            write(dir, &b.path(), &tiles::encode_bundle(chunk).unwrap());
        }
        write(dir, "checkpoint", &self.checkpoint(self.size(), witnesses));
    }
}

pub fn write(dir: &Path, rel: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, bytes).unwrap();
    p
}

/// Flips the lowest bit of byte `at` (negative: from the end) of a file.
pub fn flip(path: &Path, at: isize) {
    let mut b = std::fs::read(path).unwrap();
    let i = if at < 0 {
        b.len() - at.unsigned_abs()
    } else {
        at as usize
    };
    b[i] ^= 1;
    std::fs::write(path, b).unwrap();
}

/// Flips a bit inside the signature bytes (past the key ID) of signature line `n` (0-based).
pub fn flip_signature(note: &[u8], n: usize) -> Vec<u8> {
    let text = String::from_utf8(note.to_vec()).unwrap();
    let (body, sigs) = text.split_once("\n\n").unwrap();
    let mut lines: Vec<String> = sigs.lines().map(str::to_owned).collect();
    let (prefix, b64) = lines[n].rsplit_once(' ').unwrap();
    let b64e = base64::engine::general_purpose::STANDARD;
    let mut raw = b64e.decode(b64).unwrap();
    let last = raw.len() - 1;
    raw[last] ^= 1;
    lines[n] = format!("{prefix} {}", b64e.encode(raw));
    format!("{body}\n\n{}\n", lines.join("\n")).into_bytes()
}

pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    /// Asserts exit code 1 and that the message names `what`.
    pub fn failed_naming(&self, what: &str) {
        assert_eq!(
            self.code, 1,
            "want exit 1; stdout {} stderr {}",
            self.stdout, self.stderr
        );
        assert!(
            self.stderr.contains(what) || self.stdout.contains(what),
            "message does not name {what:?}: {}{}",
            self.stdout,
            self.stderr
        );
    }

    pub fn ok(&self) {
        assert_eq!(
            self.code, 0,
            "want exit 0; stdout {} stderr {}",
            self.stdout, self.stderr
        );
    }
}

pub fn run(args: &[&str]) -> Out {
    let out = Command::new(env!("CARGO_BIN_EXE_sealtrail-verify"))
        .args(args)
        .output()
        .unwrap();
    Out {
        code: out.status.code().unwrap(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A record as the server serves it: salt in hex, payload in standard base64 and, when it is
/// JSON, parsed.
pub fn record_json(r: &PrivateRecord) -> Value {
    json!({
        "salt": Hash(r.salt).to_hex(),
        "principal": r.principal,
        "payload_base64": base64::engine::general_purpose::STANDARD.encode(&r.payload),
        "payload": serde_json::from_slice::<Value>(&r.payload).ok(),
    })
}

/// One request the test server answered: its path and `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub path: String,
    pub authorization: Option<String>,
}

/// Answers the JSON API: given a request's path and `Authorization` header, a status and a
/// body, or `None` to fall back to the static files.
pub type Api = dyn Fn(&str, Option<&str>) -> Option<(u16, String)> + Send + Sync;

/// A small HTTP/1.1 server on 127.0.0.1 for one test: it serves `dir` as static tlog-tiles and
/// whatever `api` answers, one connection per request (`connection: close`), and records every
/// request. It lives until the test process ends.
pub struct Server {
    pub url: String,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    pub fn start(dir: &Path, api: Box<Api>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (dir, log, api) = (dir.to_path_buf(), Arc::clone(&seen), Arc::new(api));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (dir, log, api) = (dir.clone(), Arc::clone(&log), Arc::clone(&api));
                std::thread::spawn(move || answer(stream, &dir, &log, &**api));
            }
        });
        Server { url, seen }
    }

    /// The requests answered so far.
    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn answer(mut stream: std::net::TcpStream, dir: &Path, seen: &Mutex<Vec<Seen>>, api: &Api) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut first = String::new();
    if reader.read_line(&mut first).is_err() {
        return;
    }
    let path = first.split(' ').nth(1).unwrap_or("/").to_owned();
    let mut authorization = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("authorization")
        {
            authorization = Some(value.trim().to_owned());
        }
    }
    seen.lock().unwrap().push(Seen {
        path: path.clone(),
        authorization: authorization.clone(),
    });
    let (status, body, kind) = match api(&path, authorization.as_deref()) {
        Some((status, body)) => (status, body.into_bytes(), "application/json"),
        None => {
            let rel = path.trim_start_matches('/');
            match std::fs::read(dir.join(rel)) {
                Ok(b) if !rel.contains("..") => (200, b, "application/octet-stream"),
                _ => (404, b"not found\n".to_vec(), "text/plain"),
            }
        }
    };
    let head = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: {kind}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&body);
}

/// Serves `log` (already written to `dir`) with `GET /v1/entries/{i}` answered by `answer(i)`
/// (status 200), 404 for indices it returns `None` for.
pub fn serve_log(
    dir: &Path,
    answer: impl Fn(u64, Option<&str>) -> Option<(u16, Value)> + Send + Sync + 'static,
) -> Server {
    Server::start(
        dir,
        Box::new(move |path, auth| {
            let i = path.strip_prefix("/v1/entries/")?;
            let i: u64 = i.parse().ok()?;
            Some(match answer(i, auth) {
                Some((status, v)) => (status, v.to_string()),
                None => (404, "{\"error\":\"not found\"}".to_owned()),
            })
        }),
    )
}
