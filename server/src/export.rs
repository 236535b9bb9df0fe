//! Export and import: the log as a static tlog-tiles directory (`checkpoint`, `tile/<L>/<N>`,
//! `tile/entries/<N>`, partial tiles as `.p/<W>`), which is both a backup and a mirror any web
//! server or CDN can serve, plus the private records in `private/records/<N>` (one file per entry
//! bundle; see [`RECORDS_DIR`]). `private/` holds personal data: never publish it. An export
//! made with `public_only` has none and is safe to mirror.
//!
//! Records follow erasures: re-exporting after an erasure replaces the erased records in the
//! backup by their tombstones, and an import re-applies every erasure entry it restores, so a
//! record file older than an erasure in the same export never brings the record back.
//!
//! Both directions trust nothing they read. A [`Rebuild`] takes a signed checkpoint and the entry
//! bundles up to its size, decodes every leaf envelope strictly, recomputes every hash tile from
//! the leaves (the same `extend` the sequencer uses), and only succeeds when the recomputed root
//! is the checkpoint's, whose signature was verified with the log's key first. Export writes the
//! recomputed tiles (never tiles copied from the source); import appends the verified leaves
//! through the sequencer into a fresh data directory, which signs the same checkpoint again.
//!
//! Export is a consistent snapshot while the server runs: it reads the server's `/checkpoint`
//! (the store is locked by the running server) and then only bundles below that size, which never
//! change. Re-exporting into an earlier export checks the old checkpoint is a prefix of the new
//! one (same root at the old size), rewrites only what changed, and writes `checkpoint` last.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use sealtrail_spec::Hash;
use sealtrail_spec::checkpoint::VerifiedCheckpoint;
use sealtrail_spec::edge::TiledEdge;
use sealtrail_spec::envelope::LeafEnvelope;
use sealtrail_spec::note::Verifier;
use sealtrail_spec::tiles::{
    BundleId, TILE_WIDTH, TileId, all_bundles, decode_bundle, encode_bundle, encode_hash_tile,
};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use sealtrail_spec::record::PrivateRecord;

use crate::sequencer::{ImportEntry, ImportRecord};
use crate::store::{LogStore, RecordState};

/// Where an export keeps the private records: `private/records/<N>` for entry bundle `N`, one
/// line per entry: `r <base64 of the record's storage encoding>` for a live record, `x <index of
/// the erasure entry>` for an erased one.
pub const RECORDS_DIR: &str = "private/records";

/// The path of the records file of bundle `index`.
fn records_path(index: u64) -> String {
    format!("{RECORDS_DIR}/{index}")
}

/// Encodes a bundle's records as a records file.
fn encode_records(records: &[ImportRecord]) -> Vec<u8> {
    let mut out = String::new();
    for r in records {
        match r {
            ImportRecord::Live(r) => {
                out.push_str("r ");
                out.push_str(&B64.encode(r.encode()));
            }
            ImportRecord::Erased(by) => out.push_str(&format!("x {by}")),
        }
        out.push('\n');
    }
    out.into_bytes()
}

/// Decodes a records file of `n` entries.
fn decode_records(bytes: &[u8], n: usize, what: &str) -> Result<Vec<ImportRecord>, ExportError> {
    let text = std::str::from_utf8(bytes).map_err(|_| invalid(format!("{what}: not UTF-8")))?;
    let lines: Vec<&str> = text
        .strip_suffix('\n')
        .unwrap_or(text)
        .split('\n')
        .collect();
    if lines.len() != n || text.is_empty() {
        return Err(invalid(format!(
            "{what}: {} lines for {n} entries",
            if text.is_empty() { 0 } else { lines.len() }
        )));
    }
    lines
        .iter()
        .enumerate()
        .map(|(i, line)| {
            let bad = |why: String| invalid(format!("{what} line {}: {why}", i + 1));
            match line.split_once(' ') {
                Some(("r", b64)) => {
                    let bytes = B64.decode(b64).map_err(|e| bad(e.to_string()))?;
                    PrivateRecord::decode(&bytes)
                        .map(ImportRecord::Live)
                        .map_err(|e| bad(e.to_string()))
                }
                Some(("x", by)) => sealtrail_spec::parse_decimal(by)
                    .map(ImportRecord::Erased)
                    .ok_or_else(|| bad("bad erasure index".into())),
                _ => Err(bad("neither `r` nor `x`".into())),
            }
        })
        .collect()
}

/// A store's record state as an export record.
fn from_state(index: u64, state: RecordState) -> Result<ImportRecord, ExportError> {
    match state {
        RecordState::Live(bytes) => PrivateRecord::decode(&bytes)
            .map(ImportRecord::Live)
            .map_err(|e| invalid(format!("the record of entry {index}: {e}"))),
        RecordState::Erased(by) => Ok(ImportRecord::Erased(by)),
        RecordState::Absent => Err(invalid(format!(
            "the record of entry {index} is missing from the store"
        ))),
    }
}

/// Why an export or import failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The source could not be read.
    #[error("reading {what}: {error}")]
    Source {
        /// What was being read.
        what: String,
        /// Why it failed.
        error: String,
    },
    /// The source does not hold a valid log: bad signature, bad envelope, wrong root.
    #[error("refused: {0}")]
    Invalid(String),
    /// The log changed while it was being read (an erasure committed after the checkpoint was
    /// read): run again, which reads a newer checkpoint.
    #[error("the log changed during the export: {0}")]
    Changed(String),
    /// Writing the output failed.
    #[error("writing {path}: {error}")]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
}

fn invalid(m: impl Into<String>) -> ExportError {
    ExportError::Invalid(m.into())
}

/// Where a log is read from: a running server, a stopped server's store, or an export.
pub trait Source {
    /// The signed checkpoint note to export (with any cosignatures).
    fn checkpoint(&mut self) -> Result<Vec<u8>, ExportError>;
    /// The bytes of an entry bundle at its width.
    fn bundle(&mut self, id: BundleId) -> Result<Vec<u8>, ExportError>;
    /// The private records of the bundle's entries, in order.
    fn records(&mut self, id: BundleId) -> Result<Vec<ImportRecord>, ExportError>;
}

/// A running server's tlog-tiles endpoints, and `GET /v1/entries` for the records.
pub struct HttpSource {
    base: String,
    client: reqwest::blocking::Client,
    token: Option<String>,
}

impl std::fmt::Debug for HttpSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSource")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl HttpSource {
    /// Reads from the server at `base` (e.g. `http://127.0.0.1:8080`), sending `token` as a
    /// bearer token (needed to read the records from a server that does not serve content
    /// anonymously).
    pub fn new(base: &str, token: Option<String>) -> Result<Self, ExportError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::blocking::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .user_agent(concat!("sealtrail-export/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ExportError::Source {
                what: "HTTP client".into(),
                error: e.to_string(),
            })?;
        Ok(HttpSource {
            base: base.trim_end_matches('/').to_owned(),
            client,
            token,
        })
    }

    fn get(&self, path: &str) -> Result<Vec<u8>, ExportError> {
        let url = format!("{}/{path}", self.base);
        let err = |error: String| ExportError::Source {
            what: url.clone(),
            error,
        };
        let mut req = self.client.get(&url);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().map_err(|e| err(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(err(format!("HTTP {}", resp.status())));
        }
        Ok(resp.bytes().map_err(|e| err(e.to_string()))?.to_vec())
    }
}

impl Source for HttpSource {
    fn checkpoint(&mut self) -> Result<Vec<u8>, ExportError> {
        self.get("checkpoint")
    }

    fn bundle(&mut self, id: BundleId) -> Result<Vec<u8>, ExportError> {
        self.get(&id.path())
    }

    fn records(&mut self, id: BundleId) -> Result<Vec<ImportRecord>, ExportError> {
        let start = id.index * u64::from(TILE_WIDTH);
        let path = format!("v1/entries?start={start}&limit={}", id.width);
        let body = self.get(&path)?;
        let bad = |why: String| invalid(format!("{path}: {why}"));
        let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| bad(e.to_string()))?;
        let entries = v
            .get("entries")
            .and_then(serde_json::Value::as_array)
            .ok_or_else(|| bad("no entries array".into()))?;
        if entries.len() != usize::from(id.width) {
            return Err(bad(format!(
                "{} entries, expected {}",
                entries.len(),
                id.width
            )));
        }
        entries
            .iter()
            .zip(start..)
            .map(|(e, index)| record_from_json(e, index).map_err(bad))
            .collect()
    }
}

/// The record in an entry of `GET /v1/entries` (see `spec/docs/http-api.md`).
fn record_from_json(e: &serde_json::Value, index: u64) -> Result<ImportRecord, String> {
    if e.get("index").and_then(serde_json::Value::as_u64) != Some(index) {
        return Err(format!("expected entry {index}"));
    }
    if e.get("restricted").and_then(serde_json::Value::as_bool) == Some(true) {
        return Err(
            "the server withholds the records from this caller: pass --token with a reader's \
             token, or export --public-only"
                .into(),
        );
    }
    if let Some(by) = e
        .pointer("/erased/erasure_index")
        .and_then(serde_json::Value::as_u64)
    {
        return Ok(ImportRecord::Erased(by));
    }
    let r = e.get("record").ok_or("no record")?;
    let text = |k: &str| r.get(k).and_then(serde_json::Value::as_str);
    let salt = text("salt")
        .and_then(|h| Hash::from_hex(h).ok())
        .ok_or(format!("entry {index}: bad salt"))?;
    let payload = text("payload_base64")
        .and_then(|b| B64.decode(b).ok())
        .ok_or(format!("entry {index}: bad payload_base64"))?;
    Ok(ImportRecord::Live(PrivateRecord {
        salt: salt.0,
        principal: text("principal")
            .ok_or(format!("entry {index}: no principal"))?
            .to_owned(),
        payload,
    }))
}

/// A store opened directly (the server must be stopped: the store is locked while it runs).
pub struct StoreSource<'a>(pub &'a dyn LogStore);

impl std::fmt::Debug for StoreSource<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StoreSource({})", self.0.engine())
    }
}

impl Source for StoreSource<'_> {
    fn checkpoint(&mut self) -> Result<Vec<u8>, ExportError> {
        self.0
            .checkpoint()
            .map_err(|e| ExportError::Source {
                what: "the stored checkpoint".into(),
                error: e.to_string(),
            })?
            .ok_or_else(|| invalid("the store holds no checkpoint"))
    }

    fn bundle(&mut self, id: BundleId) -> Result<Vec<u8>, ExportError> {
        let start = id.index * u64::from(TILE_WIDTH);
        let entries = self
            .0
            .entries(start, start + u64::from(id.width))
            .map_err(|e| ExportError::Source {
                what: id.path(),
                error: e.to_string(),
            })?;
        encode_bundle(&entries).map_err(|e| invalid(format!("{}: {e}", id.path())))
    }

    fn records(&mut self, id: BundleId) -> Result<Vec<ImportRecord>, ExportError> {
        let start = id.index * u64::from(TILE_WIDTH);
        let states = crate::store::record_states(self.0, start, start + u64::from(id.width))
            .map_err(|e| ExportError::Source {
                what: records_path(id.index),
                error: e.to_string(),
            })?;
        states
            .into_iter()
            .zip(start..)
            .map(|(s, i)| from_state(i, s))
            .collect()
    }
}

/// An export directory.
#[derive(Debug)]
pub struct DirSource(pub PathBuf);

impl Source for DirSource {
    fn checkpoint(&mut self) -> Result<Vec<u8>, ExportError> {
        read_file(&self.0.join("checkpoint"))
    }

    fn bundle(&mut self, id: BundleId) -> Result<Vec<u8>, ExportError> {
        read_file(&self.0.join(id.path()))
    }

    fn records(&mut self, id: BundleId) -> Result<Vec<ImportRecord>, ExportError> {
        let rel = records_path(id.index);
        let bytes = read_file(&self.0.join(&rel))?;
        decode_records(&bytes, usize::from(id.width), &rel)
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>, ExportError> {
    std::fs::read(path).map_err(|e| ExportError::Source {
        what: path.display().to_string(),
        error: e.to_string(),
    })
}

/// What a verified rebuild hands to its consumer, in log order.
#[derive(Debug)]
pub enum Piece<'a> {
    /// An entry bundle (its bytes as read) and its decoded leaves.
    Bundle {
        /// Which bundle.
        id: BundleId,
        /// The bundle's bytes.
        bytes: &'a [u8],
        /// The leaves it holds.
        leaves: Vec<&'a [u8]>,
        /// Their private records, each checked against its leaf (empty for a public-only
        /// rebuild).
        records: Vec<ImportRecord>,
    },
    /// A hash tile recomputed from the leaves: full tiles as they complete, partial tiles at
    /// the end.
    Tile(TileId, Vec<u8>),
}

/// Recomputes a log from a source and checks it against its signed checkpoint.
#[derive(Debug)]
pub struct Rebuild {
    /// The verified checkpoint.
    pub checkpoint: VerifiedCheckpoint,
    /// Its signed note as read (with any cosignatures).
    pub note: Vec<u8>,
}

/// Root of the tree at `at` leaves, if the rebuild passes that size (for consistency checks).
#[derive(Debug, Clone, Copy)]
pub struct Prefix {
    /// The size.
    pub size: u64,
    /// The root expected there.
    pub root: Hash,
}

/// Reads the checkpoint from `source`, verifies it with `log_key` for `origin`, then reads and
/// checks every bundle (and, `with_records`, every record against its leaf's commitment), giving
/// each bundle and each recomputed tile to `consume`. If `prefix` is given, the tree at that
/// size must have that root (an earlier checkpoint of the same log). Fails unless the recomputed
/// root equals the checkpoint's.
pub fn rebuild(
    source: &mut dyn Source,
    origin: &str,
    log_key: &dyn Verifier,
    prefix: Option<Prefix>,
    with_records: bool,
    consume: &mut dyn FnMut(Piece<'_>) -> Result<(), ExportError>,
) -> Result<Rebuild, ExportError> {
    let note = source.checkpoint()?;
    let checkpoint = sealtrail_spec::checkpoint::open(&note, origin, &[log_key])
        .map_err(|e| invalid(format!("checkpoint: {e}")))?;
    let size = checkpoint.checkpoint().size();
    if let Some(p) = prefix
        && p.size > size
    {
        return Err(invalid(format!(
            "the earlier export is at size {}, beyond the source's {size}",
            p.size
        )));
    }
    let mut edge = TiledEdge::empty();
    let mut last_time = 0u64;
    let check_prefix = |edge: &TiledEdge| -> Result<(), ExportError> {
        match prefix {
            Some(p) if p.size == edge.size() && p.root != edge.root() => Err(invalid(format!(
                "the earlier export's checkpoint (size {}) is not a prefix of this log: \
                 roots differ",
                p.size
            ))),
            _ => Ok(()),
        }
    };
    check_prefix(&edge)?;
    for id in all_bundles(size) {
        let bytes = source.bundle(id)?;
        let leaves = decode_bundle(&bytes, Some(id.width))
            .map_err(|e| invalid(format!("{}: {e}", id.path())))?;
        let records = match with_records {
            true => source.records(id)?,
            false => Vec::new(),
        };
        let mut hashes = Vec::with_capacity(leaves.len());
        for (i, leaf) in leaves.iter().enumerate() {
            let index = id.index * u64::from(TILE_WIDTH) + i as u64;
            let env =
                LeafEnvelope::decode(leaf).map_err(|e| invalid(format!("entry {index}: {e}")))?;
            match records.get(i) {
                Some(ImportRecord::Live(r)) => r.check(&env).map_err(|e| {
                    invalid(format!("{}: entry {index}: {e}", records_path(id.index)))
                })?,
                Some(ImportRecord::Erased(by)) if *by <= index => {
                    return Err(invalid(format!(
                        "{}: entry {index} erased by entry {by}, which does not come after it",
                        records_path(id.index)
                    )));
                }
                Some(ImportRecord::Erased(by)) if *by >= size => {
                    return Err(ExportError::Changed(format!(
                        "{}: entry {index} was erased by entry {by}, past the checkpoint's size \
                         {size}",
                        records_path(id.index)
                    )));
                }
                _ => {}
            }
            if env.time_ms < last_time {
                return Err(invalid(format!(
                    "entry {index}: sequencing time {} is before the previous entry's {last_time}",
                    env.time_ms
                )));
            }
            last_time = env.time_ms;
            hashes.push(sealtrail_spec::leaf_hash(leaf));
        }
        // Split at the earlier export's size, to compare roots there.
        let split = match prefix {
            Some(p) if p.size > edge.size() && p.size < edge.size() + hashes.len() as u64 => {
                (p.size - edge.size()) as usize
            }
            _ => hashes.len(),
        };
        for part in [&hashes[..split], &hashes[split..]] {
            if part.is_empty() {
                continue;
            }
            let ext = edge
                .extend(part)
                .map_err(|e| invalid(format!("extending the tree: {e}")))?;
            // Full tiles as they complete; the partial ones, which the edge holds, at the end.
            for (tile, hashes) in ext.tiles.iter().filter(|(t, _)| t.is_full()) {
                consume(Piece::Tile(*tile, encode_hash_tile(hashes)))?;
            }
            edge = ext.edge;
            check_prefix(&edge)?;
        }
        consume(Piece::Bundle {
            id,
            bytes: &bytes,
            leaves,
            records,
        })?;
    }
    if edge.root() != checkpoint.checkpoint().root() {
        return Err(invalid(format!(
            "the entries give root {} at size {size}, but the checkpoint says {}",
            edge.root().to_base64(),
            checkpoint.checkpoint().root().to_base64()
        )));
    }
    for (tile, hashes) in edge.partial_tiles() {
        consume(Piece::Tile(tile, encode_hash_tile(hashes)))?;
    }
    Ok(Rebuild { checkpoint, note })
}

/// What an export wrote.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExportSummary {
    /// Tree size of the exported checkpoint.
    pub size: u64,
    /// Files written (unchanged files of an earlier export are not rewritten).
    pub files_written: u64,
    /// Bytes written.
    pub bytes_written: u64,
    /// Records in the export that are erased (tombstones).
    pub erased_records: u64,
}

/// Exports the log from `source` into `out` (created if missing; an earlier export there is
/// extended after checking it is a prefix of the source: same bytes in every tile and bundle both
/// have, same root at the earlier size; no tile or bundle of the earlier export is ever
/// overwritten). Records files are rewritten whenever they changed, so erasures reach the backup.
/// Everything is durable (one `syncfs`) before `checkpoint` is replaced, so a crash leaves the old
/// export intact. `public_only` writes no records (a mirror).
pub fn export(
    source: &mut dyn Source,
    origin: &str,
    log_key: &dyn Verifier,
    out: &Path,
    public_only: bool,
) -> Result<ExportSummary, ExportError> {
    // An erasure that commits while a running server is read shows as a record erased by an
    // entry past the checkpoint; reading again starts from a checkpoint that includes it.
    let mut attempts = 0;
    loop {
        match export_once(source, origin, log_key, out, public_only) {
            Err(ExportError::Changed(why)) if attempts < 4 => {
                attempts += 1;
                tracing::info!(%why, attempts, "export: the log changed; reading it again");
            }
            other => return other,
        }
    }
}

fn export_once(
    source: &mut dyn Source,
    origin: &str,
    log_key: &dyn Verifier,
    out: &Path,
    public_only: bool,
) -> Result<ExportSummary, ExportError> {
    let werr = |path: &Path| {
        let path = path.to_owned();
        move |error| ExportError::Write { path, error }
    };
    std::fs::create_dir_all(out).map_err(werr(out))?;
    let prefix = match std::fs::read(out.join("checkpoint")) {
        Ok(note) => {
            let old = sealtrail_spec::checkpoint::open(&note, origin, &[log_key])
                .map_err(|e| invalid(format!("the earlier export's checkpoint: {e}")))?;
            Some(Prefix {
                size: old.checkpoint().size(),
                root: old.checkpoint().root(),
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut entries = std::fs::read_dir(out).map_err(werr(out))?;
            if entries.next().is_some() {
                return Err(invalid(format!(
                    "{} is neither empty nor an earlier export (no checkpoint file)",
                    out.display()
                )));
            }
            None
        }
        Err(e) => return Err(werr(out)(e)),
    };
    let mut summary = ExportSummary::default();
    // Tiles and bundles never change once written (a partial one is a new file at each width),
    // so an existing file with other bytes means another history: stop before touching it.
    let mut write = |rel: &str, bytes: &[u8]| -> Result<(), ExportError> {
        let path = out.join(rel);
        match std::fs::read(&path) {
            Ok(old) if old == bytes => return Ok(()),
            Ok(_) => {
                return Err(invalid(format!(
                    "{rel} differs from the earlier export's: the source is not a continuation \
                     of the exported log; nothing was changed"
                )));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(werr(&path)(e)),
        }
        write_file(&path, bytes, false)?;
        summary.files_written += 1;
        summary.bytes_written += bytes.len() as u64;
        Ok(())
    };
    let mut erased_records = 0u64;
    let mut records_written = (0u64, 0u64);
    let rebuilt = rebuild(
        source,
        origin,
        log_key,
        prefix,
        !public_only,
        &mut |piece| match piece {
            Piece::Bundle {
                id, bytes, records, ..
            } => {
                write(&id.path(), bytes)?;
                if public_only {
                    return Ok(());
                }
                erased_records += records
                    .iter()
                    .filter(|r| matches!(r, ImportRecord::Erased(_)))
                    .count() as u64;
                // Records change (erasures), so they are replaced, not compared.
                let path = out.join(records_path(id.index));
                let new = encode_records(&records);
                if std::fs::read(&path).ok().as_deref() != Some(new.as_slice()) {
                    write_file(&path, &new, false)?;
                    records_written.0 += 1;
                    records_written.1 += new.len() as u64;
                }
                Ok(())
            }
            Piece::Tile(tile, bytes) => write(&tile.path(), &bytes),
        },
    )?;
    summary.files_written += records_written.0;
    summary.bytes_written += records_written.1;
    summary.erased_records = erased_records;
    // Every tile and bundle durable first, then the checkpoint that makes them the export.
    let dir = std::fs::File::open(out).map_err(werr(out))?;
    rustix::fs::syncfs(&dir).map_err(|e| werr(out)(e.into()))?;
    write_file(&out.join("checkpoint"), &rebuilt.note, true)?;
    summary.files_written += 1;
    summary.bytes_written += rebuilt.note.len() as u64;
    summary.size = rebuilt.checkpoint.checkpoint().size();
    Ok(summary)
}

/// Writes `bytes` to `path` through a temporary file and a rename, creating parent directories;
/// with `durable`, fsyncs the file and its directory.
fn write_file(path: &Path, bytes: &[u8], durable: bool) -> Result<(), ExportError> {
    let werr = |error| ExportError::Write {
        path: path.to_owned(),
        error,
    };
    let parent = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(werr)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = parent.join(format!(".{name}.tmp"));
    let mut f = std::fs::File::create(&tmp).map_err(werr)?;
    f.write_all(bytes).map_err(werr)?;
    if durable {
        f.sync_all().map_err(werr)?;
    }
    drop(f);
    std::fs::rename(&tmp, path).map_err(werr)?;
    if durable {
        crate::store::sync_dir(parent).map_err(|e| ExportError::Write {
            path: parent.to_owned(),
            error: std::io::Error::other(e.to_string()),
        })?;
    }
    Ok(())
}

/// What an import restored.
#[derive(Debug, Clone, Copy, Default)]
pub struct ImportSummary {
    /// Tree size of the restored log.
    pub size: u64,
    /// Root hash of the restored log.
    pub root: Hash,
    /// Records the export still held although a restored erasure entry names them (records
    /// files older than the erasure): erased again during the import, after which the store was
    /// compacted so their bytes are not left in its files.
    pub erased_again: u64,
}

/// Rebuilds `config.data_dir` (which must not exist yet) from the export in `dir`, with the log's
/// own signing key `signer`. Nothing is written before the export's checkpoint verifies with that
/// key. The store is built in a sibling directory and renamed into place only after every entry,
/// every hash and the final root were checked, so a refused export leaves nothing behind.
/// Every record is checked against its leaf, and every erasure entry restored is applied again
/// to the records it names. Idempotency keys are not part of an export; forwarding sinks start
/// over from entry 0.
pub fn import(
    dir: &Path,
    config: &crate::config::Config,
    signer: sealtrail_spec::note::Ed25519Signer,
) -> Result<ImportSummary, ExportError> {
    let target = config.data_dir.clone();
    if target.exists() {
        return Err(invalid(format!(
            "{} already exists: import only creates a new data directory",
            target.display()
        )));
    }
    let verifier = signer.verifier();
    let mut source = DirSource(dir.to_owned());
    let note = source.checkpoint()?;
    sealtrail_spec::checkpoint::open(&note, &config.origin, &[&verifier])
        .map_err(|e| invalid(format!("the export's checkpoint, with this log's key: {e}")))?;
    let mut staging = target.clone().into_os_string();
    staging.push(".importing");
    let staging = PathBuf::from(staging);
    if staging.exists() {
        return Err(invalid(format!(
            "{} exists (an interrupted import?); remove it first",
            staging.display()
        )));
    }
    let result = import_into(&mut source, config, signer, &staging).and_then(|summary| {
        // Records written and erased again during the import leave bytes in the store's files
        // until it is rewritten: rewrite it now, before it becomes the data directory.
        if summary.erased_again > 0 {
            crate::store::compact::compact(config.store, &staging).map_err(|e| {
                ExportError::Write {
                    path: staging.clone(),
                    error: std::io::Error::other(e.to_string()),
                }
            })?;
        }
        Ok(summary)
    });
    match result {
        Ok(summary) => {
            std::fs::rename(&staging, &target).map_err(|error| ExportError::Write {
                path: target.clone(),
                error,
            })?;
            let parent = target
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            crate::store::sync_dir(parent).map_err(|e| ExportError::Write {
                path: parent.to_owned(),
                error: std::io::Error::other(e.to_string()),
            })?;
            Ok(summary)
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            Err(e)
        }
    }
}

/// Most leaves per import commit.
const IMPORT_BATCH: usize = 8192;

/// Entries waiting for the next import commit, and the erasures restored entries re-apply to
/// records committed earlier.
#[derive(Default)]
struct Pending {
    /// Index of `entries[0]`.
    first: u64,
    entries: Vec<ImportEntry>,
    reapply: Vec<(u64, u64)>,
    /// Tombstones read from the export: erasure entry index -> the indices they say it erased.
    claimed: std::collections::BTreeMap<u64, Vec<u64>>,
    /// What each restored erasure entry says it erased.
    named: std::collections::BTreeMap<u64, Vec<u64>>,
    /// Live records of the export that a restored erasure entry names.
    erased_again: u64,
}

impl Pending {
    /// Every tombstone of the export is backed by the erasure entry it names: that entry is an
    /// erasure entry of the restored log and names the record. Otherwise the export was tampered
    /// with, or is not a consistent snapshot.
    fn check_tombstones(&self) -> Result<(), ExportError> {
        for (by, indices) in &self.claimed {
            let named = self.named.get(by);
            if let Some(&i) = indices
                .iter()
                .find(|i| named.is_none_or(|n| n.binary_search(i).is_err()))
            {
                return Err(invalid(format!(
                    "{}: entry {i} is marked erased by entry {by}, which is not an erasure entry \
                     naming it",
                    records_path(i / u64::from(TILE_WIDTH))
                )));
            }
        }
        Ok(())
    }

    /// Adds an entry; if it is an erasure entry, the records it names are erased again: in this
    /// batch directly, in earlier ones through `reapply`.
    fn push(&mut self, leaf: Vec<u8>, record: ImportRecord) {
        let index = self.first + self.entries.len() as u64;
        let erased = match &record {
            ImportRecord::Live(r) if is_erasure(&leaf) => {
                crate::privacy::erased_indices(&r.payload).unwrap_or_default()
            }
            ImportRecord::Erased(by) => {
                self.claimed.entry(*by).or_default().push(index);
                Vec::new()
            }
            ImportRecord::Live(_) => Vec::new(),
        };
        self.entries.push(ImportEntry { leaf, record });
        for &i in erased.iter().filter(|i| **i < index) {
            match i.checked_sub(self.first) {
                Some(k) => {
                    if let Some(e) = self
                        .entries
                        .get_mut(usize::try_from(k).unwrap_or(usize::MAX))
                        && matches!(e.record, ImportRecord::Live(_))
                    {
                        e.record = ImportRecord::Erased(index);
                        self.erased_again += 1;
                    }
                }
                // Committed already: erased again unless the export has its tombstone.
                None if self
                    .claimed
                    .get(&index)
                    .is_some_and(|c| c.binary_search(&i).is_ok()) => {}
                None => {
                    self.reapply.push((i, index));
                    self.erased_again += 1;
                }
            }
        }
        if !erased.is_empty() {
            self.named.insert(index, erased);
        }
    }
}

fn is_erasure(leaf: &[u8]) -> bool {
    LeafEnvelope::decode(leaf)
        .ok()
        .and_then(|e| e.event_type)
        .is_some_and(|t| t == crate::privacy::ERASURE_EVENT_TYPE)
}

fn import_into(
    source: &mut DirSource,
    config: &crate::config::Config,
    signer: sealtrail_spec::note::Ed25519Signer,
    staging: &Path,
) -> Result<ImportSummary, ExportError> {
    let store_err = |e: crate::store::StoreError| ExportError::Write {
        path: staging.to_owned(),
        error: std::io::Error::other(e.to_string()),
    };
    let store: std::sync::Arc<dyn LogStore> =
        std::sync::Arc::from(crate::store::open(config.store, staging).map_err(store_err)?);
    let metrics = std::sync::Arc::new(
        crate::metrics::Metrics::new().map_err(|e| invalid(format!("metrics: {e}")))?,
    );
    let verifier = signer.verifier();
    let seq_config = crate::sequencer::SequencerConfig {
        origin: config.origin.clone(),
        queue_entries: IMPORT_BATCH,
        commit_max_entries: IMPORT_BATCH,
        disk_guard: None,
    };
    let (seq, thread) = crate::sequencer::start(store.clone(), signer, &seq_config, metrics)
        .map_err(|e| invalid(format!("starting the sequencer: {e}")))?;
    let mut pending = Pending::default();
    let flush = |pending: &mut Pending| -> Result<(), ExportError> {
        if pending.entries.is_empty() {
            return Ok(());
        }
        pending.first += pending.entries.len() as u64;
        seq.import_blocking(
            std::mem::take(&mut pending.entries),
            std::mem::take(&mut pending.reapply),
        )
        .map(|_| ())
        .map_err(|e| invalid(format!("appending: {e}")))
    };
    let rebuilt = rebuild(
        source,
        &config.origin,
        &verifier,
        None,
        true,
        &mut |piece| {
            if let Piece::Bundle {
                leaves, records, ..
            } = piece
            {
                for (leaf, record) in leaves.iter().zip(records) {
                    pending.push(leaf.to_vec(), record);
                }
                if pending.entries.len() >= IMPORT_BATCH {
                    flush(&mut pending)?;
                }
            }
            Ok(())
        },
    );
    let rebuilt = rebuilt.map_err(|e| match e {
        // Nothing re-reads a directory: such an export is not a consistent snapshot.
        ExportError::Changed(why) => invalid(format!("not a consistent snapshot: {why}")),
        other => other,
    });
    let outcome = rebuilt.and_then(|r| {
        pending.check_tombstones()?;
        flush(&mut pending)?;
        let published = seq.published();
        let (size, root) = (
            r.checkpoint.checkpoint().size(),
            r.checkpoint.checkpoint().root(),
        );
        if published.size != size || published.root != root {
            return Err(invalid(format!(
                "the restored log is at size {} root {}, not the export's size {size} root {}",
                published.size,
                published.root.to_base64(),
                root.to_base64()
            )));
        }
        Ok(ImportSummary {
            size,
            root,
            erased_again: pending.erased_again,
        })
    });
    seq.shutdown();
    let _ = thread.join();
    drop(store);
    outcome
}
