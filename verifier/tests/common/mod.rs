//! Static fixtures for the CLI tests, built with the spec crate alone: a log written as a
//! directory of static tlog-tiles, its signed (and cosigned) checkpoints and tlog-proofs, and
//! helpers to run the binary and to flip bits.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use sealtrail_spec::checkpoint::{Checkpoint, sign_checkpoint};
use sealtrail_spec::cosignature::Cosigner;
use sealtrail_spec::edge::extend;
use sealtrail_spec::envelope::LeafEnvelope;
use sealtrail_spec::merkle::{self, LeafHashes};
use sealtrail_spec::note::{Ed25519Signer, Note};
use sealtrail_spec::tiles::{self, TileId, TileReader};
use sealtrail_spec::tlog_proof::TlogProof;
use sealtrail_spec::{Hash, leaf_hash};

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

/// Entry `i` of a log; `history` tells forks apart.
pub fn entry(history: &str, i: u64) -> Vec<u8> {
    LeafEnvelope {
        time_ms: 1_700_000_000_000 + i,
        principal: "tester".into(),
        content_type: "application/json".into(),
        event_type: Some("test.event".into()),
        payload: format!("{{\"history\":\"{history}\",\"n\":{i}}}").into_bytes(),
    }
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

/// A log of `size` entries of `history`.
pub struct Log {
    pub entries: Vec<Vec<u8>>,
    pub leaves: Vec<Hash>,
}

impl Log {
    pub fn new(history: &str, size: u64) -> Self {
        let entries: Vec<Vec<u8>> = (0..size).map(|i| entry(history, i)).collect();
        let leaves = entries.iter().map(|e| leaf_hash(e)).collect();
        Log { entries, leaves }
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
