//! `evidence`: an evidence package (`spec/docs/evidence-package.md`), offline. Nothing in the
//! package is trusted but what the log's key (and the witness policy) vouch for:
//!
//! 1. `manifest.sig` is the log's signed statement of the SHA-256 of `manifest.json`;
//! 2. every other file is listed in the manifest with its SHA-256, and nothing else is there;
//! 3. the checkpoint verifies (the log's signature, and the witness quorum when there is a
//!    policy) and is the one the manifest names; a later checkpoint, when there is one, is signed
//!    by the log and consistent with it;
//! 4. every record's leaf envelope is included in the checkpoint (its tlog-proof), its fields are
//!    the ones the record line claims, its private record matches the leaf's commitment, and it
//!    is within the scope the manifest states;
//! 5. every erased record's erasure entry is in the package, included, after it, of event type
//!    `sealtrail.erasure`, and lists it;
//! 6. the counts in the manifest are what the package holds.
//!
//! Any failure names the file and what failed. The key and the policy SHOULD come from the
//! auditor (`--log-key`, `--policy`); without them the package's own are used, and the report says
//! so, since a package can only vouch for itself that far.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read as _;
use std::path::Path;

use base64::Engine as _;
use sealtrail_spec::Hash;
use sealtrail_spec::checkpoint::VerifiedCheckpoint;
use sealtrail_spec::envelope::LeafEnvelope;
use sealtrail_spec::evidence::{self as format, FORMAT};
use sealtrail_spec::merkle;
use sealtrail_spec::note::{Note, Verifier as _};
use sealtrail_spec::tlog_proof::TlogProof;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::record::{self, Content, ERASURE_EVENT_TYPE, ErasureCheck};
use crate::trust::{Trust, WitnessArgs};
use crate::{Error, Report, show};

/// Largest package (uncompressed) read into memory.
const MAX_PACKAGE_BYTES: u64 = 4 << 30;

/// A package's files by their path inside it.
#[derive(Debug, Clone, Default)]
pub struct Package {
    files: BTreeMap<String, Vec<u8>>,
}

impl Package {
    /// Reads a package: a `.tar.gz` file, or a directory it was extracted into (the package's
    /// own directory, holding `manifest.json`).
    pub fn open(path: &Path) -> Result<Self, Error> {
        if path.is_dir() {
            let mut files = BTreeMap::new();
            read_dir(path, path, &mut files)?;
            return Ok(Package { files });
        }
        let file = std::fs::File::open(path)
            .map_err(|e| Error::Io(format!("reading {}: {e}", path.display())))?;
        Self::from_tar_gz(file).map_err(|e| {
            Error::failed(format!(
                "{}: not a readable evidence package (gzip-compressed tar): {e}",
                path.display()
            ))
        })
    }

    /// Reads a gzip-compressed tar whose files are all in one top directory.
    pub fn from_tar_gz(reader: impl std::io::Read) -> Result<Self, String> {
        let gz = flate2::read::GzDecoder::new(reader);
        let mut archive = tar::Archive::new(gz.take(MAX_PACKAGE_BYTES));
        let mut files = BTreeMap::new();
        let mut top: Option<String> = None;
        for entry in archive.entries().map_err(|e| e.to_string())? {
            let mut entry = entry.map_err(|e| e.to_string())?;
            let path = entry.path().map_err(|e| e.to_string())?.into_owned();
            let name = path
                .to_str()
                .ok_or_else(|| format!("{}: not a UTF-8 path", path.display()))?
                .to_owned();
            let kind = entry.header().entry_type();
            if kind.is_dir() {
                continue;
            }
            if !kind.is_file() {
                return Err(format!("{name}: not a regular file"));
            }
            let (dir, rest) = name
                .split_once('/')
                .ok_or_else(|| format!("{name}: outside the package's directory"))?;
            if top.get_or_insert_with(|| dir.to_owned()) != dir {
                return Err(format!("{name}: outside the package's directory {top:?}"));
            }
            if rest.is_empty()
                || rest
                    .split('/')
                    .any(|c| c.is_empty() || c == "." || c == "..")
            {
                return Err(format!("{name}: not a plain relative path"));
            }
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).map_err(|e| e.to_string())?;
            if files.insert(rest.to_owned(), bytes).is_some() {
                return Err(format!("{name}: twice in the archive"));
            }
        }
        if files.is_empty() {
            return Err("the archive is empty".into());
        }
        Ok(Package { files })
    }

    /// A package from files already in memory (for tests and tools).
    pub fn from_files(files: BTreeMap<String, Vec<u8>>) -> Self {
        Package { files }
    }

    /// The package's files.
    pub fn files(&self) -> &BTreeMap<String, Vec<u8>> {
        &self.files
    }

    fn file(&self, name: &str) -> Result<&[u8], Error> {
        self.files
            .get(name)
            .map(Vec::as_slice)
            .ok_or_else(|| Error::failed(format!("{name}: missing from the package")))
    }
}

fn read_dir(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) -> Result<(), Error> {
    let io = |p: &Path, e: std::io::Error| Error::Io(format!("reading {}: {e}", p.display()));
    for entry in std::fs::read_dir(dir).map_err(|e| io(dir, e))? {
        let entry = entry.map_err(|e| io(dir, e))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(|e| io(&path, e))?;
        if kind.is_dir() {
            read_dir(root, &path, out)?;
        } else {
            let rel = path
                .strip_prefix(root)
                .ok()
                .and_then(Path::to_str)
                .ok_or_else(|| Error::Io(format!("{}: not a UTF-8 path", path.display())))?
                .replace(std::path::MAIN_SEPARATOR, "/");
            out.insert(rel, crate::read_file(&path)?);
        }
    }
    Ok(())
}

/// The verifier key and witness policy the package is checked with, and where they came from.
#[derive(Debug, Clone, Default)]
pub struct Keys {
    /// `--log-key`; `None`: the package's `log.vkey`.
    pub log_key: Option<String>,
    /// `--policy` file bytes; `None`: the package's `witness-policy`, if any.
    pub policy: Option<Vec<u8>>,
}

fn sha256_hex(bytes: &[u8]) -> String {
    sealtrail_spec::to_hex(&Sha256::digest(bytes))
}

/// A record line, checked for inclusion.
struct Included {
    envelope: LeafEnvelope,
    in_scope: bool,
    line: usize,
    answer: Vec<u8>,
    /// The checkpoint it is proven against (0: the package's, 1: the later one).
    size: u64,
}

/// Verifies `pkg` with `keys`.
pub fn run(pkg: &Package, keys: &Keys) -> Result<Report, Error> {
    let mut lines = Vec::new();
    // The trust roots: the auditor's, or the package's own (said in the report).
    let log_key = match &keys.log_key {
        Some(k) => k.trim().to_owned(),
        None => {
            let k = String::from_utf8_lossy(pkg.file(format::LOG_KEY)?)
                .trim()
                .to_owned();
            lines.push(format!(
                "log key: {k} (from the package's {}: pass --log-key to pin the key you trust)",
                format::LOG_KEY
            ));
            k
        }
    };
    let policy = match (&keys.policy, pkg.files.get(format::WITNESS_POLICY)) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(p)) => {
            lines.push(format!(
                "witness policy: from the package's {} (pass --policy to use your own)",
                format::WITNESS_POLICY
            ));
            Some(p.clone())
        }
        (None, None) => None,
    };
    let trust = Trust::new(
        &log_key,
        None,
        WitnessArgs {
            policy,
            ..WitnessArgs::default()
        },
    )?;

    // 1. The signed statement over the manifest.
    let manifest_bytes = pkg.file(format::MANIFEST)?;
    let sig = pkg.file(format::MANIFEST_SIG)?;
    let bad_sig = |m: String| Error::failed(format!("{}: {m}", format::MANIFEST_SIG));
    let note = Note::parse(sig).map_err(|e| bad_sig(format!("not a signed note: {e}")))?;
    sealtrail_spec::note::verify(&note, &[trust.log()]).map_err(|e| {
        bad_sig(format!(
            "no valid signature by the log key {}+{:08x}: {e}",
            trust.log().name(),
            trust.log().key_id()
        ))
    })?;
    let (origin, digest) = format::parse_statement(note.text())
        .ok_or_else(|| bad_sig("not a sealtrail evidence statement".into()))?;
    if origin != trust.origin() {
        return Err(bad_sig(format!(
            "signed for origin {origin:?}, not {:?}",
            trust.origin()
        )));
    }
    if sha256_hex(manifest_bytes) != digest.to_hex() {
        return Err(Error::failed(format!(
            "{}: its SHA-256 is not the one the log signed in {}",
            format::MANIFEST,
            format::MANIFEST_SIG
        )));
    }
    lines.push(format!(
        "{}: signed by the log key {}+{:08x}",
        format::MANIFEST,
        trust.log().name(),
        trust.log().key_id()
    ));

    // 2. The manifest and every file it lists.
    let m = Manifest::parse(manifest_bytes)?;
    if m.origin != trust.origin() {
        return Err(m.bad(format!("names origin {:?}", m.origin)));
    }
    if m.log_key.trim() != log_key {
        return Err(m.bad("names a log key other than the one verified".into()));
    }
    for name in pkg.files.keys() {
        if name != format::MANIFEST && name != format::MANIFEST_SIG && !m.files.contains_key(name) {
            return Err(Error::failed(format!(
                "{name}: not listed in manifest.json"
            )));
        }
    }
    for (name, want) in &m.files {
        let got = sha256_hex(pkg.file(name)?);
        if &got != want {
            return Err(Error::failed(format!(
                "{name}: SHA-256 {got} does not match manifest.json ({want})"
            )));
        }
    }
    lines.push(format!(
        "{} files match their SHA-256 in the manifest",
        m.files.len()
    ));
    if pkg.file(format::LOG_KEY)?.trim_ascii() != log_key.as_bytes() {
        return Err(Error::failed(format!(
            "{}: not the log key the package is verified with",
            format::LOG_KEY
        )));
    }

    // 3. The checkpoints.
    let cp_bytes = pkg.file(format::CHECKPOINT)?;
    let (cp, witnesses) = trust.open(cp_bytes, format::CHECKPOINT)?;
    let (size, root) = (cp.checkpoint().size(), cp.checkpoint().root());
    if size != m.size || root.to_hex() != m.root_hash {
        return Err(m.bad(format!(
            "names checkpoint size {} root {}, but {} has size {size} root {}",
            m.size,
            m.root_hash,
            format::CHECKPOINT,
            root.to_hex()
        )));
    }
    if m.cosigned && trust.policy().is_none() {
        lines.push(
            "the manifest says the checkpoint is cosigned; no witness policy to check it with"
                .into(),
        );
    }
    lines.extend(show::checkpoint_lines("checkpoint", &cp, &witnesses));
    let later = later_checkpoint(pkg, &trust, &m, &cp, &mut lines)?;

    // 4. The records.
    let records = pkg.file(format::RECORDS)?;
    let mut included: BTreeMap<u64, Included> = BTreeMap::new();
    for (n, line) in records.split(|b| *b == b'\n').enumerate() {
        if line.is_empty() && n > 0 && records.ends_with(b"\n") {
            continue;
        }
        let (index, inc) = include(pkg, line, n + 1, (&cp, later.as_ref()))?;
        if included.insert(index, inc).is_some() {
            return Err(Error::failed(format!(
                "{}: entry {index} appears twice",
                format::RECORDS
            )));
        }
    }
    let proof_files = pkg
        .files
        .keys()
        .filter(|k| k.starts_with(&format!("{}/", format::PROOFS_DIR)))
        .count();
    if proof_files != included.len() {
        return Err(Error::failed(format!(
            "{}: {proof_files} proofs for {} records",
            format::PROOFS_DIR,
            included.len()
        )));
    }

    // 5. Records, scope and erasures.
    let mut counts = Counts::default();
    let mut referenced = BTreeSet::new();
    let mut record_lines = Vec::new();
    for (&index, inc) in &included {
        let at = |m: String| {
            Error::failed(format!(
                "{} line {} (entry {index}): {m}",
                format::RECORDS,
                inc.line
            ))
        };
        let answer = record::parse(&inc.answer).map_err(|e| at(e.to_string()))?;
        if !inc.in_scope {
            continue;
        }
        if inc.size > size {
            return Err(at("in scope but not in the package's checkpoint".into()));
        }
        m.scope.check(&inc.envelope).map_err(at)?;
        if let (Some(p), Content::Record(r)) = (&m.scope.principal, &answer.content)
            && &r.principal != p
        {
            return Err(at(format!(
                "its principal {:?} is outside the scope",
                show::escaped(&r.principal)
            )));
        }
        match &answer.content {
            Content::Record(_) => counts.live += 1,
            Content::Erased { erasure_index, .. } => {
                counts.erased += 1;
                referenced.insert(*erasure_index);
            }
            Content::Restricted => counts.restricted += 1,
        }
        counts.in_scope += 1;
        let mut erasure = |e: u64| erasure_check(&included, e, index);
        let outcome = record::judge(
            index,
            &inc.envelope,
            answer,
            format::RECORDS,
            false,
            &mut erasure,
        )
        .map_err(|e| Error::failed(format!("{} line {}: {e}", format::RECORDS, inc.line)))?;
        let mut j = json!({"index": index});
        let mut l = Vec::new();
        outcome.apply(&mut l, &mut j);
        record_lines.push(j);
    }
    for (&index, inc) in included.iter().filter(|(_, i)| !i.in_scope) {
        if !referenced.contains(&index) {
            return Err(Error::failed(format!(
                "{} line {}: entry {index} is outside the scope and erases no record in it",
                format::RECORDS,
                inc.line
            )));
        }
        counts.erasure_entries += 1;
    }
    if counts != m.counts {
        return Err(m.bad(format!(
            "counts {:?}, but the package holds {:?}",
            m.counts, counts
        )));
    }
    lines.push(format!(
        "{} records in scope included in the checkpoint: {} with content verified against \
         their commitments, {} erased (erasure entries verified), {} withheld",
        counts.in_scope, counts.live, counts.erased, counts.restricted
    ));
    lines.push(format!("scope: {}", m.scope.describe()));
    Ok(Report {
        lines,
        json: json!({
            "origin": trust.origin(),
            "checkpoint": show::checkpoint_json(&cp, &witnesses),
            "consistency_to_size": later.as_ref().map(|l| l.checkpoint().size()),
            "scope": m.scope_json,
            "records": {
                "in_scope": counts.in_scope,
                "live": counts.live,
                "erased": counts.erased,
                "restricted": counts.restricted,
                "erasure_entries": counts.erasure_entries,
            },
            "entries": record_lines,
            "log_key_pinned": keys.log_key.is_some(),
        }),
    })
}

/// The later checkpoint and the consistency proof to it, when the package has them.
fn later_checkpoint(
    pkg: &Package,
    trust: &Trust,
    m: &Manifest,
    cp: &VerifiedCheckpoint,
    lines: &mut Vec<String>,
) -> Result<Option<VerifiedCheckpoint>, Error> {
    let Some(to) = m.consistency_to else {
        if pkg.files.contains_key(format::LATER_CHECKPOINT) {
            return Err(m.bad(format!("names no {}", format::LATER_CHECKPOINT)));
        }
        return Ok(None);
    };
    let later = trust.open_signed(
        pkg.file(format::LATER_CHECKPOINT)?,
        format::LATER_CHECKPOINT,
    )?;
    let (o, n) = (cp.checkpoint(), later.checkpoint());
    if n.size() != to || to <= o.size() {
        return Err(Error::failed(format!(
            "{}: size {}, but manifest.json names {to} (after {})",
            format::LATER_CHECKPOINT,
            n.size(),
            o.size()
        )));
    }
    let text = std::str::from_utf8(pkg.file(format::CONSISTENCY_PROOF)?)
        .map_err(|_| Error::failed(format!("{}: not UTF-8", format::CONSISTENCY_PROOF)))?;
    let proof = text
        .lines()
        .map(Hash::from_base64)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::failed(format!("{}: {e}", format::CONSISTENCY_PROOF)))?;
    merkle::verify_consistency(o.size(), n.size(), &o.root(), &n.root(), &proof).map_err(|e| {
        Error::failed(format!(
            "{}: the later checkpoint does not extend the package's: {e}",
            format::CONSISTENCY_PROOF
        ))
    })?;
    lines.push(format!(
        "{} (size {}) is signed by the log and consistent with the checkpoint",
        format::LATER_CHECKPOINT,
        n.size()
    ));
    Ok(Some(later))
}

/// Checks one line of `records.jsonl`: its envelope's inclusion, through its tlog-proof, in the
/// package's checkpoint (or the later one).
fn include(
    pkg: &Package,
    line: &[u8],
    n: usize,
    (cp, later): (&VerifiedCheckpoint, Option<&VerifiedCheckpoint>),
) -> Result<(u64, Included), Error> {
    let at = |m: String| Error::failed(format!("{} line {n}: {m}", format::RECORDS));
    let v: Value = serde_json::from_slice(line).map_err(|e| at(format!("not JSON: {e}")))?;
    let index = v["index"]
        .as_u64()
        .ok_or_else(|| at("no \"index\"".into()))?;
    let at =
        |m: String| Error::failed(format!("{} line {n} (entry {index}): {m}", format::RECORDS));
    let env_bytes = v["envelope_base64"]
        .as_str()
        .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
        .ok_or_else(|| at("no base64 \"envelope_base64\"".into()))?;
    let envelope =
        LeafEnvelope::decode(&env_bytes).map_err(|e| at(format!("the envelope: {e}")))?;
    if v["timestamp"].as_u64() != Some(envelope.time_ms) {
        return Err(at("its timestamp is not the envelope's".into()));
    }
    let leaf_hash = sealtrail_spec::leaf_hash(&env_bytes);
    if v["leaf_hash"].as_str() != Some(leaf_hash.to_hex().as_str()) {
        return Err(at("its leaf_hash is not the envelope's".into()));
    }
    let in_scope = v["in_scope"]
        .as_bool()
        .ok_or_else(|| at("no boolean \"in_scope\"".into()))?;
    let name = format::proof_path(index);
    let proof_at = |m: String| Error::failed(format!("{name}: {m}"));
    let proof = TlogProof::parse(pkg.file(&name)?).map_err(|e| proof_at(e.to_string()))?;
    if proof.index() != index {
        return Err(proof_at(format!("proves index {}", proof.index())));
    }
    let against = if proof.checkpoint() == cp.bytes() {
        cp
    } else {
        later
            .filter(|l| proof.checkpoint() == l.bytes())
            .ok_or_else(|| {
                proof_at("its checkpoint is neither of the package's checkpoints".into())
            })?
    };
    let (size, root) = (against.checkpoint().size(), against.checkpoint().root());
    merkle::verify_inclusion(index, size, &leaf_hash, proof.path(), &root).map_err(|e| {
        proof_at(format!(
            "entry {index} (leaf hash {}) is not included in the tree of size {size}: {e}",
            leaf_hash.to_hex()
        ))
    })?;
    Ok((
        index,
        Included {
            envelope,
            in_scope,
            line: n,
            answer: line.to_vec(),
            size,
        },
    ))
}

/// Whether erasure entry `e`, as the package holds it, erases record `index`.
fn erasure_check(
    included: &BTreeMap<u64, Included>,
    e: u64,
    index: u64,
) -> Result<ErasureCheck, Error> {
    let bad = |m: String| {
        Error::failed(format!(
            "{}: entry {index} is said to be erased by entry {e}, but {m}",
            format::RECORDS
        ))
    };
    let entry = included
        .get(&e)
        .ok_or_else(|| bad("that entry is not in the package".into()))?;
    if entry.envelope.event_type.as_deref() != Some(ERASURE_EVENT_TYPE) {
        return Err(bad(format!("it is not a {ERASURE_EVENT_TYPE} entry")));
    }
    let answer = record::parse(&entry.answer).map_err(|err| bad(err.to_string()))?;
    let Content::Record(r) = answer.content else {
        return Err(bad("its record is not in the package".into()));
    };
    record::check(&r, &entry.envelope).map_err(|err| bad(format!("its record: {err}")))?;
    if !erasure_lists(&r.payload, index) {
        return Err(bad(format!("its record does not list entry {index}")));
    }
    Ok(ErasureCheck::Verified {
        time_ms: entry.envelope.time_ms,
    })
}

/// Whether an erasure entry's payload (`{"erasure": {"indices": [...]}}`, a lone index as a
/// number and a run as `[first, last]`) lists `index`.
pub fn erasure_lists(payload: &[u8], index: u64) -> bool {
    let Ok(v) = serde_json::from_slice::<Value>(payload) else {
        return false;
    };
    let Some(indices) = v["erasure"]["indices"].as_array() else {
        return false;
    };
    indices.iter().any(|i| match i {
        Value::Number(n) => n.as_u64() == Some(index),
        Value::Array(run) => match (
            run.first().and_then(Value::as_u64),
            run.get(1).and_then(Value::as_u64),
        ) {
            (Some(a), Some(b)) if run.len() == 2 => (a..=b).contains(&index),
            _ => false,
        },
        _ => false,
    })
}

/// The record counts a manifest states.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Counts {
    in_scope: u64,
    live: u64,
    erased: u64,
    restricted: u64,
    erasure_entries: u64,
}

/// A manifest's scope.
#[derive(Debug, Clone, Default)]
struct Scope {
    since_ms: Option<u64>,
    until_ms: Option<u64>,
    event_type: Option<String>,
    principal: Option<String>,
}

impl Scope {
    fn check(&self, env: &LeafEnvelope) -> Result<(), String> {
        let t = env.time_ms;
        if self.since_ms.is_some_and(|s| t < s) || self.until_ms.is_some_and(|u| t >= u) {
            return Err(format!(
                "sequenced at {}, outside the scope's time range",
                show::utc(t)
            ));
        }
        if let Some(want) = &self.event_type
            && env.event_type.as_ref() != Some(want)
        {
            return Err("its event type is outside the scope".into());
        }
        Ok(())
    }

    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(s) = self.since_ms {
            parts.push(format!("since {}", show::utc(s)));
        }
        if let Some(u) = self.until_ms {
            parts.push(format!("until {}", show::utc(u)));
        }
        if let Some(t) = &self.event_type {
            parts.push(format!("event type {:?}", show::escaped(t)));
        }
        if let Some(p) = &self.principal {
            parts.push(format!("principal {:?}", show::escaped(p)));
        }
        if parts.is_empty() {
            "every record".into()
        } else {
            parts.join(", ")
        }
    }
}

/// The parts of `manifest.json` the verifier checks.
#[derive(Debug, Clone)]
struct Manifest {
    origin: String,
    log_key: String,
    size: u64,
    root_hash: String,
    cosigned: bool,
    consistency_to: Option<u64>,
    scope: Scope,
    scope_json: Value,
    counts: Counts,
    files: HashMap<String, String>,
}

impl Manifest {
    fn bad(&self, m: String) -> Error {
        Error::failed(format!("{}: {m}", format::MANIFEST))
    }

    fn parse(bytes: &[u8]) -> Result<Self, Error> {
        let bad = |m: &str| Error::failed(format!("{}: {m}", format::MANIFEST));
        let v: Value = serde_json::from_slice(bytes).map_err(|e| bad(&format!("not JSON: {e}")))?;
        if v["format"] != FORMAT {
            return Err(bad(&format!("format is not {FORMAT:?}")));
        }
        let text = |v: &Value, k: &str| {
            v[k].as_str()
                .map(str::to_owned)
                .ok_or_else(|| bad(&format!("no \"{k}\" string")))
        };
        let opt_text = |v: &Value, k: &str| match &v[k] {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s.clone())),
            _ => Err(bad(&format!("\"{k}\" is not a string or null"))),
        };
        let opt_uint = |v: &Value, k: &str| match &v[k] {
            Value::Null => Ok(None),
            n => n
                .as_u64()
                .map(Some)
                .ok_or_else(|| bad(&format!("\"{k}\" is not a number or null"))),
        };
        let uint = |v: &Value, k: &str| {
            v[k].as_u64()
                .ok_or_else(|| bad(&format!("no \"{k}\" number")))
        };
        let s = &v["scope"];
        let scope = Scope {
            since_ms: opt_uint(s, "since_ms")?,
            until_ms: opt_uint(s, "until_ms")?,
            event_type: opt_text(s, "event_type")?,
            principal: opt_text(s, "principal")?,
        };
        let c = &v["records"];
        let counts = Counts {
            in_scope: uint(c, "in_scope")?,
            live: uint(c, "live")?,
            erased: uint(c, "erased")?,
            restricted: uint(c, "restricted")?,
            erasure_entries: uint(c, "erasure_entries")?,
        };
        let files = v["files"]
            .as_object()
            .ok_or_else(|| bad("no \"files\" object"))?
            .iter()
            .map(|(k, h)| {
                h.as_str()
                    .map(|h| (k.clone(), h.to_owned()))
                    .ok_or_else(|| bad(&format!("the hash of {k} is not a string")))
            })
            .collect::<Result<HashMap<_, _>, _>>()?;
        let cp = &v["checkpoint"];
        Ok(Manifest {
            origin: text(&v, "origin")?,
            log_key: text(&v, "log_key")?,
            size: uint(cp, "size")?,
            root_hash: text(cp, "root_hash")?,
            cosigned: cp["cosigned"]
                .as_bool()
                .ok_or_else(|| bad("no \"cosigned\" boolean"))?,
            consistency_to: opt_uint(&v, "consistency_to_size")?,
            scope,
            scope_json: s.clone(),
            counts,
            files,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erasure_payloads_list_lone_indices_and_runs() {
        let p = br#"{"erasure": {"indices": [3, [7, 9], 12]}}"#;
        for (i, listed) in [
            (3, true),
            (7, true),
            (8, true),
            (9, true),
            (12, true),
            (4, false),
            (10, false),
        ] {
            assert_eq!(erasure_lists(p, i), listed, "{i}");
        }
        assert!(!erasure_lists(
            br#"{"erasure": {"indices": [[7, 9, 11]]}}"#,
            8
        ));
        assert!(!erasure_lists(br#"{"indices": [8]}"#, 8));
        assert!(!erasure_lists(b"not json", 8));
    }

    #[test]
    fn tar_paths_must_stay_in_one_directory() {
        fn tar_of(names: &[&str]) -> Vec<u8> {
            let mut b = tar::Builder::new(Vec::new());
            for n in names {
                let mut h = tar::Header::new_gnu();
                h.set_size(1);
                h.set_mode(0o644);
                h.set_entry_type(tar::EntryType::Regular);
                // Written raw, so that names tar::Builder would refuse still reach the reader.
                h.as_gnu_mut().unwrap().name[..n.len()].copy_from_slice(n.as_bytes());
                h.set_cksum();
                b.append(&h, &b"x"[..]).unwrap();
            }
            let tar = b.into_inner().unwrap();
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            std::io::Write::write_all(&mut gz, &tar).unwrap();
            gz.finish().unwrap()
        }
        let ok = Package::from_tar_gz(&tar_of(&["p/a", "p/b/c"])[..]).unwrap();
        assert_eq!(ok.files().keys().collect::<Vec<_>>(), ["a", "b/c"]);
        for bad in [
            &["p/a", "q/b"][..],
            &["a"],
            &["p/../a"],
            &["p/a", "p/a"],
            &["p//a"],
        ] {
            assert!(Package::from_tar_gz(&tar_of(bad)[..]).is_err(), "{bad:?}");
        }
        assert!(Package::from_tar_gz(&b"not gzip"[..]).is_err());
    }
}
