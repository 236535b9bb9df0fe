//! Evidence packages (`spec/docs/evidence-package.md`): the records of a scope (a time range, an
//! event type, a principal), each with its tlog-proof against one checkpoint, the keys and policy
//! to check them, a report for people, and a manifest of every file's SHA-256 signed by the log.
//!
//! [`build`] writes the package as a gzip-compressed tar to any writer, file by file as it reads
//! the records, so the HTTP answer streams and memory stays at one record plus a short summary of
//! each (for the report and the manifest). What it needs from the server (proofs from the cached
//! tiles, the published checkpoint after the records are read) comes in [`Inputs`], so this
//! module depends on the store and the formats, not on the HTTP layer.

mod report;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use sealtrail_spec::Hash;
use sealtrail_spec::checkpoint::Checkpoint;
use sealtrail_spec::envelope::LeafEnvelope;
use sealtrail_spec::evidence::{self as format, FORMAT};
use sealtrail_spec::note::{Ed25519Signer, Note, Signer};
use sealtrail_spec::record::PrivateRecord;
use sealtrail_spec::tlog_proof::TlogProof;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::query::{QueryError, SearchQuery, search};
use crate::store::{LogStore, RecordState, StoreError};

/// The directory every file of a package is in.
pub const PACKAGE_DIR: &str = "sealtrail-evidence";

/// Records looked up per search page while selecting the scope.
const PAGE: usize = 10_000;

/// Characters of a payload shown in the report.
const PREVIEW_CHARS: usize = 160;

/// Which records a package holds: all conditions must hold (none: every record).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// Sequencing time, ms since the Unix epoch, inclusive.
    pub since_ms: Option<u64>,
    /// Sequencing time, exclusive.
    pub until_ms: Option<u64>,
    /// Exact event type.
    pub event_type: Option<String>,
    /// Exact submitting principal (needs content).
    pub principal: Option<String>,
}

impl Scope {
    fn to_json(&self) -> Value {
        json!({
            "since_ms": self.since_ms,
            "until_ms": self.until_ms,
            "event_type": self.event_type,
            "principal": self.principal,
        })
    }
}

/// A signed checkpoint as published: its note and its tree size.
#[derive(Debug, Clone)]
pub struct SignedCheckpoint {
    /// The note's bytes (the log's signature, and cosignatures when it has them).
    pub note: Vec<u8>,
    /// Whether its cosignatures meet the log's witness policy.
    pub cosigned: bool,
}

/// Why a package could not be built.
#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    /// The scope is invalid (a bad request).
    #[error("{0}")]
    Scope(String),
    /// The scope holds more records than the server builds into one package.
    #[error("{0}")]
    TooLarge(String),
    /// The log is changing under the request in a way that needs a retry.
    #[error("{0}")]
    Retry(String),
    /// Reading the store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Writing the package failed (the client went away, the disk is full).
    #[error("writing the package: {0}")]
    Write(#[from] std::io::Error),
    /// Something the log holds is not what it should be.
    #[error("{0}")]
    Internal(String),
}

/// Everything [`build`] reads besides the store.
pub struct Inputs<'a> {
    /// The log's store.
    pub store: &'a dyn LogStore,
    /// The log's origin.
    pub origin: &'a str,
    /// The log's note verifier key.
    pub verifier_key: &'a str,
    /// The log's key, which signs the manifest statement.
    pub signer: &'a Ed25519Signer,
    /// The checkpoint the records are proven against: the newest one meeting the witness policy
    /// when there is one, else the latest.
    pub checkpoint: SignedCheckpoint,
    /// The latest published checkpoint, read after the records (a consistency proof to it is
    /// added when it is larger, and erasure entries past `checkpoint` are proven against it).
    pub latest: &'a dyn Fn() -> Vec<u8>,
    /// The witness policy (tlog-policy text), when the log has witnesses.
    pub policy: Option<String>,
    /// Whether the caller may read content (records, salts, principals).
    pub content: bool,
    /// Now, ms since the Unix epoch (the package's creation time).
    pub now_ms: u64,
    /// Proof hashes: `inclusion(index, size)` and `consistency(old, new)`.
    pub proofs: &'a mut dyn Proofs,
}

impl std::fmt::Debug for Inputs<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inputs")
            .field("origin", &self.origin)
            .field("content", &self.content)
            .finish_non_exhaustive()
    }
}

/// Where [`build`] gets proofs.
pub trait Proofs {
    /// The inclusion proof of `index` in the tree of `size`.
    fn inclusion(&mut self, index: u64, size: u64) -> Result<Vec<Hash>, String>;
    /// The consistency proof from the tree of `old` to the tree of `new`.
    fn consistency(&mut self, old: u64, new: u64) -> Result<Vec<Hash>, String>;
}

/// What a package holds, for the caller's log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    /// Records in scope.
    pub records: u64,
    /// Of them, erased.
    pub erased: u64,
    /// Erasure entries added to prove erasures.
    pub erasure_entries: u64,
    /// The checkpoint's tree size.
    pub size: u64,
}

/// The tree size and root of a checkpoint note.
fn checkpoint_of(note: &[u8]) -> Result<Checkpoint, EvidenceError> {
    let note = Note::parse(note)
        .map_err(|e| EvidenceError::Internal(format!("the log's checkpoint: {e}")))?;
    Checkpoint::parse(note.text())
        .map_err(|e| EvidenceError::Internal(format!("the log's checkpoint: {e}")))
}

/// The indices of the records in `scope` among the first `size` entries, ascending.
pub fn select(
    store: &dyn LogStore,
    size: u64,
    scope: &Scope,
    max_records: u64,
) -> Result<Vec<u64>, EvidenceError> {
    let mut q = SearchQuery {
        since: scope.since_ms,
        until: scope.until_ms,
        event_type: scope.event_type.clone(),
        principal: scope.principal.clone(),
        cursor: None,
        limit: PAGE,
        newest_first: false,
    };
    let mut out = Vec::new();
    loop {
        let page = search(store, size, &q).map_err(|e| match e {
            QueryError::Invalid(m) => EvidenceError::Scope(m),
            QueryError::Store(e) => EvidenceError::Store(e),
        })?;
        out.extend(page.indices);
        if out.len() as u64 > max_records {
            return Err(EvidenceError::TooLarge(format!(
                "the scope holds more than {max_records} records (limits.max_evidence_records): \
                 narrow it (a shorter time range, an event type or a principal)"
            )));
        }
        match page.next_cursor {
            Some(c) => q.cursor = Some(c),
            None => return Ok(out),
        }
    }
}

/// Adds files to the tar, each under [`PACKAGE_DIR`], and keeps their SHA-256 for the manifest.
struct Package<W: Write> {
    tar: tar::Builder<flate2::write::GzEncoder<W>>,
    mtime: u64,
    files: BTreeMap<String, String>,
}

impl<W: Write> Package<W> {
    fn new(out: W, now_ms: u64) -> Self {
        let gz = flate2::write::GzEncoder::new(out, flate2::Compression::default());
        let mut tar = tar::Builder::new(gz);
        tar.mode(tar::HeaderMode::Deterministic);
        Package {
            tar,
            mtime: now_ms / 1000,
            files: BTreeMap::new(),
        }
    }

    /// Adds `name` without listing it in the manifest (the manifest and its signature).
    fn put_unlisted(&mut self, name: &str, bytes: &[u8]) -> std::io::Result<()> {
        let mut h = tar::Header::new_ustar();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(self.mtime);
        h.set_entry_type(tar::EntryType::Regular);
        self.tar
            .append_data(&mut h, format!("{PACKAGE_DIR}/{name}"), bytes)
    }

    fn put(&mut self, name: &str, bytes: &[u8]) -> std::io::Result<()> {
        self.files.insert(
            name.to_owned(),
            sealtrail_spec::to_hex(&Sha256::digest(bytes)),
        );
        self.put_unlisted(name, bytes)
    }

    fn finish(self) -> std::io::Result<W> {
        self.tar.into_inner()?.finish()
    }
}

/// One record's line of `records.jsonl`, and its summary for the report.
fn record_line(
    store: &dyn LogStore,
    index: u64,
    in_scope: bool,
    content: bool,
) -> Result<(Value, report::Row, Option<u64>), EvidenceError> {
    let bytes = store
        .entry(index)?
        .ok_or_else(|| EvidenceError::Internal(format!("entry {index} missing from the store")))?;
    let state = if content {
        Some(store.record(index)?)
    } else {
        None
    };
    let erased_by = match &state {
        Some(RecordState::Erased(by)) => Some(*by),
        _ => None,
    };
    let env = LeafEnvelope::decode(&bytes)
        .map_err(|e| EvidenceError::Internal(format!("entry {index} does not decode: {e}")))?;
    let record = match &state {
        Some(RecordState::Live(r)) => Some(PrivateRecord::decode(r).map_err(|e| {
            EvidenceError::Internal(format!("the record of entry {index} does not decode: {e}"))
        })?),
        _ => None,
    };
    let mut v =
        crate::entry_view::entry_json(index, &bytes, state).map_err(EvidenceError::Internal)?;
    v["envelope_base64"] = B64.encode(&bytes).into();
    v["in_scope"] = in_scope.into();
    let row = report::Row::new(index, &env, record.as_ref(), erased_by, in_scope);
    Ok((v, row, erased_by))
}

/// The tree size of the checkpoint a package would be proven against (what [`select`] needs).
pub fn size_of(checkpoint: &SignedCheckpoint) -> Result<u64, EvidenceError> {
    Ok(checkpoint_of(&checkpoint.note)?.size())
}

/// Writes the package of `scope` to `out` and returns `out` and what it holds. `selected` is
/// what [`select`] found for the scope at the checkpoint's size: callers select first, so that a
/// scope that is invalid or too large is refused before a byte of the package is written.
pub fn build<W: Write>(
    inputs: Inputs<'_>,
    scope: &Scope,
    selected: &[u64],
    out: W,
) -> Result<(W, Built), EvidenceError> {
    if scope.principal.is_some() && !inputs.content {
        return Err(EvidenceError::Scope(
            "a scope by principal needs the reader role (principals are private)".into(),
        ));
    }
    let cp = checkpoint_of(&inputs.checkpoint.note)?;
    let size = cp.size();
    if selected.last().is_some_and(|&i| i >= size) {
        return Err(EvidenceError::Internal(
            "a selected record is past the checkpoint".into(),
        ));
    }

    let mut pkg = Package::new(out, inputs.now_ms);
    let mut rows = Vec::with_capacity(selected.len());
    let mut lines = Vec::new();
    let mut erasures = BTreeSet::new();
    let in_scope: BTreeSet<u64> = selected.iter().copied().collect();
    for &index in selected {
        let (v, row, erased_by) = record_line(inputs.store, index, true, inputs.content)?;
        serde_json::to_writer(&mut lines, &v)
            .map_err(|e| EvidenceError::Internal(e.to_string()))?;
        lines.push(b'\n');
        rows.push(row);
        erasures.extend(erased_by.filter(|e| !in_scope.contains(e)));
    }
    // The latest checkpoint, read after the records: every erasure the records show was
    // committed, so published, before it.
    let latest_note = (inputs.latest)();
    let latest = checkpoint_of(&latest_note)?;
    if latest.size() < size {
        return Err(EvidenceError::Internal(format!(
            "the latest checkpoint (size {}) is older than the one chosen (size {size})",
            latest.size()
        )));
    }
    for &index in &erasures {
        if index >= latest.size() {
            return Err(EvidenceError::Retry(format!(
                "entry {index}, an erasure of a record in scope, is not published yet; retry"
            )));
        }
        let (v, row, _) = record_line(inputs.store, index, false, inputs.content)?;
        serde_json::to_writer(&mut lines, &v)
            .map_err(|e| EvidenceError::Internal(e.to_string()))?;
        lines.push(b'\n');
        rows.push(row);
    }
    pkg.put(format::RECORDS, &lines)?;
    drop(lines);

    // A tlog-proof for every record: against the package's checkpoint, or for an erasure entry
    // past it, against the latest (which the consistency proof ties to it).
    for index in selected.iter().chain(&erasures) {
        let (proof_size, note) = if *index < size {
            (size, &inputs.checkpoint.note)
        } else {
            (latest.size(), &latest_note)
        };
        let path = inputs
            .proofs
            .inclusion(*index, proof_size)
            .map_err(EvidenceError::Internal)?;
        let proof = TlogProof::new(*index, path, note.clone(), None)
            .map_err(|e| EvidenceError::Internal(format!("tlog-proof of entry {index}: {e}")))?;
        pkg.put(&format::proof_path(*index), &proof.to_bytes())?;
    }
    let consistency = if latest.size() > size {
        let proof = inputs
            .proofs
            .consistency(size, latest.size())
            .map_err(EvidenceError::Internal)?;
        let text: String = proof
            .iter()
            .map(|h| format!("{}\n", h.to_base64()))
            .collect();
        pkg.put(format::LATER_CHECKPOINT, &latest_note)?;
        pkg.put(format::CONSISTENCY_PROOF, text.as_bytes())?;
        Some(latest.size())
    } else {
        None
    };
    pkg.put(format::CHECKPOINT, &inputs.checkpoint.note)?;
    pkg.put(
        format::LOG_KEY,
        format!("{}\n", inputs.verifier_key).as_bytes(),
    )?;
    if let Some(p) = &inputs.policy {
        pkg.put(format::WITNESS_POLICY, p.as_bytes())?;
    }

    let erased = rows
        .iter()
        .filter(|r| r.in_scope && r.erased_by.is_some())
        .count() as u64;
    let restricted = if inputs.content {
        0
    } else {
        selected.len() as u64
    };
    let counts = json!({
        "in_scope": selected.len(),
        "live": selected.len() as u64 - erased - restricted,
        "erased": erased,
        "restricted": restricted,
        "erasure_entries": erasures.len(),
    });
    let summary = report::Summary {
        origin: inputs.origin,
        verifier_key: inputs.verifier_key,
        scope,
        checkpoint: &cp,
        cosigned: inputs.checkpoint.cosigned,
        later_size: consistency,
        policy: inputs.policy.is_some(),
        content: inputs.content,
        created_ms: inputs.now_ms,
        rows: &rows,
    };
    pkg.put(format::REPORT, report::render(&summary).as_bytes())?;

    let manifest = json!({
        "format": FORMAT,
        "origin": inputs.origin,
        "log_key": inputs.verifier_key,
        "created_ms": inputs.now_ms,
        "scope": scope.to_json(),
        "checkpoint": {
            "size": size,
            "root_hash": cp.root().to_hex(),
            "cosigned": inputs.checkpoint.cosigned,
        },
        "consistency_to_size": consistency,
        "content": if inputs.content { "included" } else { "withheld" },
        "records": counts,
        "files": pkg.files,
    });
    let mut manifest =
        serde_json::to_vec_pretty(&manifest).map_err(|e| EvidenceError::Internal(e.to_string()))?;
    manifest.push(b'\n');
    let digest = Hash(Sha256::digest(&manifest).into());
    let signers: [&dyn Signer; 1] = [inputs.signer];
    let statement = Note::sign(&format::statement(inputs.origin, &digest), &signers)
        .map_err(|e| EvidenceError::Internal(format!("signing the manifest: {e}")))?;
    pkg.put_unlisted(format::MANIFEST, &manifest)?;
    pkg.put_unlisted(format::MANIFEST_SIG, &statement.to_bytes())?;
    let out = pkg.finish()?;
    Ok((
        out,
        Built {
            records: selected.len() as u64,
            erased,
            erasure_entries: erasures.len() as u64,
            size,
        },
    ))
}

/// The first `PREVIEW_CHARS` characters of a payload as text (lossy UTF-8), for the report.
fn preview(payload: &[u8]) -> String {
    let text = String::from_utf8_lossy(payload);
    let mut out: String = text.chars().take(PREVIEW_CHARS).collect();
    if text.chars().nth(PREVIEW_CHARS).is_some() {
        out.push('…');
    }
    out
}
