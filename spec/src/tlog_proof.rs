//! C2SP tlog-proof v1 (<https://c2sp.org/tlog-proof>): an offline proof that an entry is in a
//! log, bundling the entry's index, its RFC 6962 inclusion proof and the log's (co)signed
//! checkpoint, plus optional opaque extra data.
//!
//! ```text
//! c2sp.org/tlog-proof@v1
//! [extra <base64>]
//! index <decimal>
//! <base64 hash>            0 to MAX_PATH_LINES times, the leaf's sibling first
//!
//! <checkpoint signed note, verbatim>
//! ```
//!
//! In scope: parsing and writing the format strictly and canonically, and [`TlogProof::verify`],
//! which runs the spec's verification steps 2-4 (log signature, witness policy, inclusion) and
//! returns a proof-carrying [`VerifiedProof`]. Out of scope: step 1, computing the leaf hash,
//! which is the application's business (an RFC 6962 leaf hash of the entry, or of a record
//! derived from it), and anything about the extra data, which is unauthenticated.
//!
//! Choices where the spec is silent (c2sp-digest section 9, item 16):
//!
//! - `extra ` with an empty payload is accepted and kept apart from an absent line:
//!   [`TlogProof::extra`] is `Some(&[])` for it and `None` without the line, so both round-trip
//!   (transparency-dev/formats writes the same two spellings for empty and absent extra data).
//! - The proof's tree size is the checkpoint's size: [`TlogProof::verify`] checks inclusion at
//!   the size and root the checkpoint states, so a path for any other size fails.
//! - The checkpoint part must be a signed note whose text is a checkpoint body; that is checked
//!   when parsing, its signatures when verifying.

use crate::checkpoint::{self, Checkpoint, CheckpointError, VerifiedCheckpoint};
use crate::hash::Hash;
use crate::merkle::{self, VerifyError};
use crate::note::{MAX_NOTE_SIZE, Note, NoteError, Verifier};
use crate::policy::{Policy, PolicyError, WitnessCosignature};
use crate::text::{decode_base64, encode_base64, parse_decimal};

/// The first line of every v1 proof, without its LF.
pub const HEADER: &str = "c2sp.org/tlog-proof@v1";

/// Most inclusion-proof lines a proof may carry. A path in a tree of `n` leaves has at most
/// `ceil(log2 n)` hashes, so 63 covers every tree of up to `2^63` leaves; it is also
/// tlog-witness's limit for consistency proofs ([`crate::witness::MAX_PROOF_LINES`]).
pub const MAX_PATH_LINES: usize = 63;

/// Largest extra payload, decoded, in bytes: room for a whole tlog-tiles entry
/// ([`crate::tiles::MAX_ENTRY_SIZE`] is 65535 bytes) or a VRF proof. The spec sets no limit.
pub const MAX_EXTRA_SIZE: usize = 1 << 16;

/// Characters of base64 for [`MAX_EXTRA_SIZE`] bytes: 4 for every 3 bytes or part of them.
const MAX_EXTRA_BASE64: usize = MAX_EXTRA_SIZE.div_ceil(3) * 4;

/// Largest proof we parse or build: the header line, an extra line of at most
/// [`MAX_EXTRA_SIZE`] bytes, `index ` with 20 digits, [`MAX_PATH_LINES`] hashes of 44 base64
/// characters, the empty line, and a note of at most [`MAX_NOTE_SIZE`] bytes.
pub const MAX_PROOF_SIZE: usize = (HEADER.len() + 1)
    + ("extra ".len() + MAX_EXTRA_BASE64 + 1)
    + ("index ".len() + 20 + 1)
    + MAX_PATH_LINES * 45
    + 1
    + MAX_NOTE_SIZE;

/// Why a proof could not be parsed, built or verified. Parse errors name the line (1-based);
/// verification errors name the step that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlogProofError {
    /// The input is larger than [`MAX_PROOF_SIZE`].
    #[error("tlog-proof is {0} bytes, more than the {MAX_PROOF_SIZE}-byte limit")]
    TooLarge(usize),
    /// A line before the checkpoint does not follow the format.
    #[error("malformed tlog-proof, line {line}: {reason}")]
    Malformed {
        /// Which line (1-based).
        line: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The extra payload is larger than [`MAX_EXTRA_SIZE`].
    #[error("extra data is larger than {MAX_EXTRA_SIZE} bytes")]
    ExtraTooLarge,
    /// More than [`MAX_PATH_LINES`] inclusion-proof lines.
    #[error("more than {MAX_PATH_LINES} inclusion proof lines")]
    TooManyPathLines,
    /// The checkpoint part is not a signed note.
    #[error("checkpoint part is not a signed note: {0}")]
    Note(NoteError),
    /// The checkpoint part is a signed note, but its text is not a checkpoint.
    #[error("checkpoint part is not a checkpoint: {0}")]
    CheckpointBody(CheckpointError),
    /// Verification step 2: the checkpoint is for another origin, or the log keys did not
    /// verify it.
    #[error("checkpoint not accepted: {0}")]
    Checkpoint(CheckpointError),
    /// Verification step 3: the witness policy rejected the checkpoint's cosignatures.
    #[error("witness policy not satisfied: {0}")]
    Policy(PolicyError),
    /// Verification step 4: the inclusion proof does not lead from the leaf to the root.
    #[error(
        "leaf is not proven at index {index} of the checkpoint's tree of size {size}: {source}"
    )]
    Inclusion {
        /// The proof's index.
        index: u64,
        /// The checkpoint's tree size.
        size: u64,
        /// Why the proof failed.
        source: VerifyError,
    },
}

impl TlogProofError {
    /// A short static label for metrics: `"malformed"` for anything found while parsing or
    /// building, the category of the checkpoint or policy error for steps 2 and 3, and
    /// `"inclusion"` for step 4.
    pub fn category(&self) -> &'static str {
        match self {
            TlogProofError::Checkpoint(e) => e.category(),
            TlogProofError::Policy(e) => e.category(),
            TlogProofError::Inclusion { .. } => "inclusion",
            _ => "malformed",
        }
    }
}

/// A parsed tlog-proof. Every value is valid: at most [`MAX_PATH_LINES`] path hashes, extra data
/// of at most [`MAX_EXTRA_SIZE`] bytes, and a checkpoint that parses as a signed note holding a
/// checkpoint body, so [`TlogProof::to_bytes`] always gives bytes [`TlogProof::parse`] accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlogProof {
    extra: Option<Vec<u8>>,
    index: u64,
    path: Vec<Hash>,
    checkpoint: Vec<u8>,
}

impl TlogProof {
    /// Builds a proof, as a log does after computing the inclusion proof (`path`, from
    /// [`merkle::inclusion_proof`]) of entry `index` in the tree `checkpoint` signs. The
    /// checkpoint is the signed note's bytes, with any cosignatures; it must parse as a note
    /// holding a checkpoint, but neither its signatures nor the path are checked here.
    pub fn new(
        index: u64,
        path: Vec<Hash>,
        checkpoint: Vec<u8>,
        extra: Option<Vec<u8>>,
    ) -> Result<Self, TlogProofError> {
        if path.len() > MAX_PATH_LINES {
            return Err(TlogProofError::TooManyPathLines);
        }
        if extra.as_ref().is_some_and(|e| e.len() > MAX_EXTRA_SIZE) {
            return Err(TlogProofError::ExtraTooLarge);
        }
        check_checkpoint(&checkpoint)?;
        Ok(Self {
            extra,
            index,
            path,
            checkpoint,
        })
    }

    /// Parses a proof strictly: size cap, the exact header line, an optional `extra ` line with
    /// canonical base64 (possibly empty), `index ` and a canonical decimal, at most
    /// [`MAX_PATH_LINES`] lines of canonical base64 of 32 bytes, an empty line, then a signed
    /// note (see [`Note::parse`]) whose text is a checkpoint (see [`Checkpoint::parse`]) and
    /// which runs to the end of the input. Canonical: when this succeeds, [`TlogProof::to_bytes`]
    /// returns `bytes` exactly.
    pub fn parse(bytes: &[u8]) -> Result<Self, TlogProofError> {
        if bytes.len() > MAX_PROOF_SIZE {
            return Err(TlogProofError::TooLarge(bytes.len()));
        }
        let mut lines = Lines { rest: bytes, n: 0 };
        if lines.next("no header line")? != HEADER.as_bytes() {
            return Err(lines.error("header is not \"c2sp.org/tlog-proof@v1\""));
        }
        let mut line = lines.next("no index line")?;
        let mut extra = None;
        if let Some(b64) = line.strip_prefix(b"extra ") {
            extra = Some(parse_extra(b64).map_err(|reason| match reason {
                None => TlogProofError::ExtraTooLarge,
                Some(reason) => lines.error(reason),
            })?);
            line = lines.next("no index line")?;
        }
        let index = line
            .strip_prefix(b"index ")
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(parse_decimal)
            .ok_or(lines.error(
                "expected \"index \" and a canonical decimal (or, on line 2, \"extra \")",
            ))?;
        let mut path = Vec::new();
        loop {
            let line = lines.next("no empty line before the checkpoint")?;
            if line.is_empty() {
                break;
            }
            if path.len() == MAX_PATH_LINES {
                return Err(TlogProofError::TooManyPathLines);
            }
            let hash = std::str::from_utf8(line)
                .ok()
                .and_then(|l| Hash::from_base64(l).ok())
                .ok_or(lines.error("proof line is not canonical base64 of 32 bytes"))?;
            path.push(hash);
        }
        let checkpoint = lines.rest.to_vec();
        check_checkpoint(&checkpoint)?;
        Ok(Self {
            extra,
            index,
            path,
            checkpoint,
        })
    }

    /// The proof in its wire form. An `extra ` line is written whenever [`TlogProof::extra`] is
    /// `Some`, also for an empty payload.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!("{HEADER}\n").into_bytes();
        if let Some(extra) = &self.extra {
            out.extend_from_slice(format!("extra {}\n", encode_base64(extra)).as_bytes());
        }
        out.extend_from_slice(format!("index {}\n", self.index).as_bytes());
        for h in &self.path {
            out.extend_from_slice(h.to_base64().as_bytes());
            out.push(b'\n');
        }
        out.push(b'\n');
        out.extend_from_slice(&self.checkpoint);
        out
    }

    /// The opaque extra data: `None` without an `extra` line, `Some(&[])` for `extra ` with an
    /// empty payload. It is NOT authenticated by anything; the spec says applications MUST NOT
    /// trust it implicitly.
    pub fn extra(&self) -> Option<&[u8]> {
        self.extra.as_deref()
    }

    /// The zero-based index of the entry in the log.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// The inclusion proof, the leaf's sibling first (RFC 6962 `PATH`).
    pub fn path(&self) -> &[Hash] {
        &self.path
    }

    /// The checkpoint's signed-note bytes, exactly as carried.
    pub fn checkpoint(&self) -> &[u8] {
        &self.checkpoint
    }

    /// Verifies the proof for the entry whose leaf hash is `leaf_hash`, in the log `origin`
    /// (tlog-proof "Verification", steps 2-4, in that order; each failure names its step):
    ///
    /// 2. [`checkpoint::open`] the checkpoint with `log_verifiers`: its origin line must be
    ///    `origin`, at least one log key must have signed it and none of them may have signed
    ///    it badly;
    /// 3. if `policy` is given, [`Policy::check_quorum`]: the cosignatures of the policy's
    ///    witnesses must satisfy its quorum. The policy's `log` lines are not consulted here;
    ///    to use them as the log keys, pass [`Policy::log_verifiers`] as `log_verifiers`;
    /// 4. [`merkle::verify_inclusion`] of `leaf_hash` at [`TlogProof::index`] in the tree of the
    ///    checkpoint's size and root.
    pub fn verify(
        &self,
        leaf_hash: &Hash,
        origin: &str,
        log_verifiers: &[&dyn Verifier],
        policy: Option<&Policy>,
    ) -> Result<VerifiedProof, TlogProofError> {
        let checkpoint = checkpoint::open(&self.checkpoint, origin, log_verifiers)
            .map_err(TlogProofError::Checkpoint)?;
        let witnesses = policy
            .map(|p| p.check_quorum(&checkpoint))
            .transpose()
            .map_err(TlogProofError::Policy)?;
        let (size, root) = (
            checkpoint.checkpoint().size(),
            checkpoint.checkpoint().root(),
        );
        merkle::verify_inclusion(self.index, size, leaf_hash, &self.path, &root).map_err(
            |source| TlogProofError::Inclusion {
                index: self.index,
                size,
                source,
            },
        )?;
        Ok(VerifiedProof {
            checkpoint,
            index: self.index,
            leaf_hash: *leaf_hash,
            witnesses,
        })
    }
}

/// A proof that passed [`TlogProof::verify`]: the leaf hash is at the index in the tree of a
/// checkpoint the log signed, and, if a policy was given, its quorum of witnesses cosigned that
/// checkpoint. Only [`TlogProof::verify`] builds one.
#[derive(Debug, Clone)]
pub struct VerifiedProof {
    checkpoint: VerifiedCheckpoint,
    index: u64,
    leaf_hash: Hash,
    witnesses: Option<Vec<WitnessCosignature>>,
}

impl VerifiedProof {
    /// The checkpoint, with its verified log signature.
    pub fn checkpoint(&self) -> &VerifiedCheckpoint {
        &self.checkpoint
    }

    /// The entry's index in the log.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// The leaf hash that was proven.
    pub fn leaf_hash(&self) -> &Hash {
        &self.leaf_hash
    }

    /// With a policy, every policy witness whose cosignature verified (each once, with the
    /// timestamp of its first valid line), whether or not the quorum needed it; `None` when
    /// verified without a policy.
    pub fn witnesses(&self) -> Option<&[WitnessCosignature]> {
        self.witnesses.as_deref()
    }
}

/// Decodes the payload of an `extra ` line. `Err(None)` means too large.
fn parse_extra(b64: &[u8]) -> Result<Vec<u8>, Option<&'static str>> {
    if b64.len() > MAX_EXTRA_BASE64 {
        return Err(None);
    }
    let decoded = std::str::from_utf8(b64).ok().and_then(decode_base64);
    let extra = decoded.ok_or(Some("extra data is not canonical base64"))?;
    if extra.len() > MAX_EXTRA_SIZE {
        return Err(None);
    }
    Ok(extra)
}

/// The checkpoint part must be a signed note whose text is a checkpoint body.
fn check_checkpoint(bytes: &[u8]) -> Result<(), TlogProofError> {
    let note = Note::parse(bytes).map_err(TlogProofError::Note)?;
    Checkpoint::parse(note.text()).map_err(TlogProofError::CheckpointBody)?;
    Ok(())
}

/// LF-terminated lines taken off the front of the input, counted from 1.
struct Lines<'a> {
    rest: &'a [u8],
    n: usize,
}

impl<'a> Lines<'a> {
    /// The next line without its LF; `missing` names what was expected if no LF is left.
    fn next(&mut self, missing: &'static str) -> Result<&'a [u8], TlogProofError> {
        self.n += 1;
        let Some(end) = self.rest.iter().position(|&b| b == b'\n') else {
            return Err(self.error(missing));
        };
        let line = &self.rest[..end];
        self.rest = &self.rest[end + 1..];
        Ok(line)
    }

    /// A [`TlogProofError::Malformed`] for the line last taken.
    fn error(&self, reason: &'static str) -> TlogProofError {
        TlogProofError::Malformed {
            line: self.n,
            reason,
        }
    }
}
