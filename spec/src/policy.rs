//! C2SP tlog-policy (<https://c2sp.org/tlog-policy>): which logs and witnesses a verifier
//! trusts, and the quorum of witness cosignatures a checkpoint needs.
//!
//! ```text
//! log <vkey> [<url>]
//! witness <name> <vkey> [<url>]
//! group <name> all|any|<k> <member>...
//! quorum <name>|none
//! ```
//!
//! In scope: parsing the policy file as the spec writes it (not transparency-dev/formats'
//! looser variant, see c2sp-digest section 7.3), a programmatic k-of-n policy
//! ([`Policy::k_of_n`]), writing a policy back out ([`Policy::to_text`]), and evaluating a
//! checkpoint against it ([`Policy::verify_checkpoint`], [`Policy::check_quorum`]). Out of scope:
//! what the URLs mean, and timestamps (reported, never judged: this crate reads no clock).
//!
//! Rules, all enforced by [`Policy::parse`]:
//!
//! - The file is octets. Allowed: tab, LF, `0x20..=0x7e` and `0x80..=0xff`; the high ones are
//!   opaque, so names and URLs are byte strings, compared byte for byte. Every line ends in LF,
//!   the last one included.
//! - Fields are separated by runs of ASCII spaces and tabs; leading and trailing ones are
//!   allowed. Lines that are empty, whitespace only, or whose first non-blank byte is `#` are
//!   ignored. Comments are whole lines only: `#` later in a line is an ordinary byte.
//! - Keywords (`log`, `witness`, `group`, `quorum`, `all`, `any`, `none`) are lower case.
//! - `log`: the vkey's key name is the log's origin. Types `0x01` (Ed25519 note signatures) and
//!   `0x04` (Ed25519 cosignatures, which tlog-checkpoint allows a log to sign with) are
//!   accepted.
//! - `witness`: the vkey is a cosignature key, type `0x04`. A type-`0x01` vkey is accepted and
//!   converted, checking its written ID as type `0x01` and then expecting cosignatures under the
//!   type-`0x04` ID, as [`CosignatureVerifier::from_vkey`] and transparency-dev/formats do.
//! - No two keys, log or witness, may wrap the same public key, whatever their names and IDs.
//!   The spec forbids duplicates among logs and among witnesses; we also refuse a key that is
//!   both a log and a witness, since that log could then witness itself. Two keys with the same
//!   (key name, key ID) are refused too, as a signature could not be attributed.
//! - Witnesses and groups share one namespace; `none` is predefined. A group or the quorum may
//!   only name earlier definitions, a group lists each member at most once and never `none`, and
//!   a numeric threshold is a canonical decimal (no leading zeros) with `1 <= k <= n`.
//! - Exactly one `quorum` line.
//!
//! A cosignature line from a listed witness that does not verify makes [`Policy::check_quorum`]
//! fail, rather than just not counting: signed-note says a client SHOULD reject a note with an
//! invalid signature from a known key, and [`crate::note::verify`] does the same for log keys.
//! Lines from unlisted keys are ignored. A witness that cosigned more than once counts once.

use std::fmt;

use crate::checkpoint::{self, CheckpointError, VerifiedCheckpoint};
use crate::cosignature::{CosignatureError, CosignatureVerifier};
use crate::note::{Ed25519Verifier, KeyError, Verifier};

mod parse;

use parse::Builder;

/// Largest policy file we parse, in bytes. A witness line with a vkey and a URL is about 200
/// bytes, so this leaves room for every entry the count limits allow, and for comments.
pub const MAX_POLICY_SIZE: usize = 1 << 20;

/// Most `log` lines. tlog-policy strongly recommends supporting at least 32.
pub const MAX_LOGS: usize = 256;

/// Most `witness` lines. tlog-policy strongly recommends supporting at least 32.
pub const MAX_WITNESSES: usize = 256;

/// Most `group` lines. tlog-policy strongly recommends supporting at least 32.
pub const MAX_GROUPS: usize = 256;

/// The predefined quorum name that requires no cosignatures.
pub const NONE: &str = "none";

/// Name of the group [`Policy::k_of_n`] defines. Key names never contain `+`, so it cannot clash
/// with a witness named after its key.
pub const K_OF_N_GROUP: &str = "+quorum";

/// Where a policy rule was broken: a line of a policy file, or an argument of
/// [`Policy::k_of_n`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// A line of the policy file (1-based).
    Line(usize),
    /// The n-th log key given to [`Policy::k_of_n`] (1-based).
    LogKey(usize),
    /// The n-th witness key given to [`Policy::k_of_n`] (1-based).
    WitnessKey(usize),
    /// The threshold given to [`Policy::k_of_n`].
    Quorum,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Line(n) => write!(f, "line {n}"),
            Location::LogKey(n) => write!(f, "log key {n}"),
            Location::WitnessKey(n) => write!(f, "witness key {n}"),
            Location::Quorum => f.write_str("quorum"),
        }
    }
}

/// A broken policy rule. Names are shown with non-printable and non-ASCII bytes escaped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// A byte the policy character set does not allow.
    #[error("byte {0:#04x} is not allowed in a policy file")]
    Byte(u8),
    /// The line starts with an unknown keyword.
    #[error("unknown keyword \"{0}\"")]
    Keyword(String),
    /// The line has the wrong number of fields.
    #[error("wrong number of fields, expected \"{0}\"")]
    Fields(&'static str),
    /// The vkey is malformed.
    #[error("bad vkey: {0}")]
    Key(KeyError),
    /// The vkey's type does not suit its role.
    #[error("a {role} key cannot have type {key_type:#04x}")]
    KeyType {
        /// `"log"` or `"witness"`.
        role: &'static str,
        /// The vkey's type byte.
        key_type: u8,
    },
    /// The public key is already listed.
    #[error("the same public key is already listed at {0}")]
    DuplicateKey(Location),
    /// Another key has the same key name and key ID.
    #[error("key {key} has the same name and key ID as the key at {first}")]
    AmbiguousKey {
        /// `name+id` of the key.
        key: String,
        /// Where the first key with that name and ID is.
        first: Location,
    },
    /// The name is already defined, or is `none`.
    #[error("name \"{0}\" is already defined")]
    DuplicateName(String),
    /// The name is not defined on an earlier line.
    #[error("name \"{0}\" is not defined on an earlier line")]
    UndefinedName(String),
    /// `none` listed as a group member.
    #[error("\"none\" cannot be a group member")]
    NoneMember,
    /// A group lists a member twice.
    #[error("group member \"{0}\" is listed twice")]
    DuplicateMember(String),
    /// The threshold is not `all`, `any` or a canonical decimal.
    #[error("threshold \"{0}\" is not all, any or a decimal without leading zeros")]
    Threshold(String),
    /// A numeric threshold outside `1..=n`.
    #[error("threshold {k} is not between 1 and the {n} members")]
    ThresholdRange {
        /// The threshold.
        k: u64,
        /// The number of members.
        n: usize,
    },
    /// Too many logs, witnesses or groups.
    #[error("more than {max} {what}")]
    TooMany {
        /// `"logs"`, `"witnesses"` or `"groups"`.
        what: &'static str,
        /// The limit.
        max: usize,
    },
    /// A second quorum line.
    #[error("the quorum is already defined at {0}")]
    SecondQuorum(Location),
}

/// Why a policy could not be parsed or built, or why a checkpoint does not satisfy it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The file is larger than [`MAX_POLICY_SIZE`].
    #[error("policy is {0} bytes, more than the {MAX_POLICY_SIZE}-byte limit")]
    TooLarge(usize),
    /// The last line does not end in LF.
    #[error("the last line of the policy does not end in a newline")]
    NoFinalNewline,
    /// A rule is broken at `at`.
    #[error("policy {at}: {error}")]
    At {
        /// Where.
        at: Location,
        /// What.
        error: RuleError,
    },
    /// No quorum line.
    #[error("policy has no quorum line")]
    NoQuorum,
    /// The policy lists no log for this origin.
    #[error("policy lists no log with origin {0:?}")]
    UnknownLog(String),
    /// The checkpoint is malformed, for another origin, or not signed by a listed log.
    #[error("checkpoint: {0}")]
    Checkpoint(CheckpointError),
    /// A listed witness's cosignature line does not verify.
    #[error("cosignature of witness \"{witness}\": {source}")]
    InvalidCosignature {
        /// The witness's policy name.
        witness: String,
        /// Why it failed.
        source: CosignatureError,
    },
    /// Not enough valid cosignatures.
    #[error(
        "quorum \"{quorum}\" is not satisfied; valid cosignatures from: {}",
        names_or_nothing(.cosigned)
    )]
    QuorumNotMet {
        /// The quorum's name.
        quorum: String,
        /// The witnesses whose cosignatures verified.
        cosigned: Vec<String>,
    },
}

impl PolicyError {
    /// A short static label for metrics: `"malformed"` for parse and build errors,
    /// `"unknown_log"`, the [`CheckpointError::category`] of a checkpoint error,
    /// `"invalid_cosignature"` or `"quorum_not_met"`.
    pub fn category(&self) -> &'static str {
        match self {
            PolicyError::UnknownLog(_) => "unknown_log",
            PolicyError::Checkpoint(e) => e.category(),
            PolicyError::InvalidCosignature { .. } => "invalid_cosignature",
            PolicyError::QuorumNotMet { .. } => "quorum_not_met",
            _ => "malformed",
        }
    }
}

fn names_or_nothing(names: &[String]) -> String {
    if names.is_empty() {
        "nobody".to_owned()
    } else {
        names.join(", ")
    }
}

/// A name or other opaque bytes, printable: ASCII as is, everything else escaped.
fn show(bytes: &[u8]) -> String {
    bytes.escape_ascii().to_string()
}

/// A log's key: Ed25519 note signatures (`0x01`) or Ed25519 cosignatures (`0x04`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum LogKey {
    Ed25519(Ed25519Verifier),
    Cosignature(CosignatureVerifier),
}

impl LogKey {
    fn verifier(&self) -> &dyn Verifier {
        match self {
            LogKey::Ed25519(v) => v,
            LogKey::Cosignature(v) => v,
        }
    }
}

/// A `log` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyLog {
    vkey: String,
    key: LogKey,
    url: Option<Vec<u8>>,
}

impl PolicyLog {
    /// The log's origin: its vkey's key name.
    pub fn origin(&self) -> &str {
        self.key.verifier().name()
    }

    /// The vkey as written.
    pub fn vkey(&self) -> &str {
        &self.vkey
    }

    /// The verifier for the log's checkpoint signatures.
    pub fn verifier(&self) -> &dyn Verifier {
        self.key.verifier()
    }

    /// The URL, if given: opaque bytes whose meaning is up to the application.
    pub fn url(&self) -> Option<&[u8]> {
        self.url.as_deref()
    }
}

/// A `witness` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyWitness {
    name: Vec<u8>,
    vkey: String,
    verifier: CosignatureVerifier,
    url: Option<Vec<u8>>,
}

impl PolicyWitness {
    /// The witness's name in the policy (opaque bytes; not its key name).
    pub fn name(&self) -> &[u8] {
        &self.name
    }

    /// The vkey as written (type `0x01` or `0x04`).
    pub fn vkey(&self) -> &str {
        &self.vkey
    }

    /// The cosignature verifier, with the type-`0x04` key ID.
    pub fn verifier(&self) -> &CosignatureVerifier {
        &self.verifier
    }

    /// The URL, if given (RECOMMENDED to be the witness's tlog-witness submission prefix).
    pub fn url(&self) -> Option<&[u8]> {
        self.url.as_deref()
    }
}

/// How many members of a group must have witnessed a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Threshold {
    /// Every member (`all`).
    All,
    /// One member (`any`).
    Any,
    /// At least this many members, between 1 and the member count.
    AtLeast(usize),
}

/// A witness or a group, by index into [`Policy::witnesses`] or [`Policy::groups`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Member {
    /// A witness.
    Witness(usize),
    /// A group.
    Group(usize),
}

/// A `group` line. Members always refer to earlier witnesses and groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyGroup {
    name: Vec<u8>,
    threshold: Threshold,
    members: Vec<Member>,
}

impl PolicyGroup {
    /// The group's name.
    pub fn name(&self) -> &[u8] {
        &self.name
    }

    /// The threshold as written.
    pub fn threshold(&self) -> Threshold {
        self.threshold
    }

    /// The members, in order.
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// How many members must have witnessed.
    fn k(&self) -> usize {
        match self.threshold {
            Threshold::All => self.members.len(),
            Threshold::Any => 1,
            Threshold::AtLeast(k) => k,
        }
    }
}

/// A valid cosignature from a policy witness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessCosignature {
    name: Vec<u8>,
    verifier: CosignatureVerifier,
    timestamp: u64,
}

impl WitnessCosignature {
    /// The witness's name in the policy.
    pub fn name(&self) -> &[u8] {
        &self.name
    }

    /// The witness's key (its key name is [`Verifier::name`]).
    pub fn verifier(&self) -> &CosignatureVerifier {
        &self.verifier
    }

    /// The cosignature's timestamp, POSIX seconds; not compared with any clock here.
    pub fn timestamp(&self) -> u64 {
        self.timestamp
    }
}

/// A checkpoint that satisfies a policy: signed by a listed log and cosigned by a quorum.
#[derive(Debug, Clone)]
pub struct PolicyOutcome {
    checkpoint: VerifiedCheckpoint,
    witnesses: Vec<WitnessCosignature>,
}

impl PolicyOutcome {
    /// The checkpoint, with its verified log signature.
    pub fn checkpoint(&self) -> &VerifiedCheckpoint {
        &self.checkpoint
    }

    /// Every policy witness whose cosignature verified, in policy order, each once with the
    /// timestamp of its first valid line; also those the quorum did not need.
    pub fn witnesses(&self) -> &[WitnessCosignature] {
        &self.witnesses
    }
}

/// A parsed tlog-policy: logs, witnesses, groups and the quorum. Every value is valid under the
/// rules in the module documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    logs: Vec<PolicyLog>,
    witnesses: Vec<PolicyWitness>,
    groups: Vec<PolicyGroup>,
    /// `None` for `quorum none`.
    quorum: Option<Member>,
}

impl Policy {
    /// Parses a policy file strictly; see the module documentation for the rules. Errors name
    /// the line.
    pub fn parse(bytes: &[u8]) -> Result<Self, PolicyError> {
        if bytes.len() > MAX_POLICY_SIZE {
            return Err(PolicyError::TooLarge(bytes.len()));
        }
        let body = match bytes.strip_suffix(b"\n") {
            Some(body) => body,
            None if bytes.is_empty() => bytes,
            None => return Err(PolicyError::NoFinalNewline),
        };
        let mut b = Builder::default();
        if !bytes.is_empty() {
            for (i, line) in body.split(|&c| c == b'\n').enumerate() {
                let at = Location::Line(i + 1);
                b.line(line, at)
                    .map_err(|error| PolicyError::At { at, error })?;
            }
        }
        b.finish()
    }

    /// A policy accepting checkpoints from any of `logs` (vkeys, type `0x01` or `0x04`)
    /// cosigned by at least `k` of `witnesses` (vkeys, type `0x04`, or `0x01` converted). Each
    /// witness is named after its vkey's key name, so two witness keys with one name are
    /// refused as a duplicate name. `k == 0` gives `quorum none`; otherwise the quorum is a
    /// group named [`K_OF_N_GROUP`] and `k` may not exceed the number of witnesses. Errors name
    /// the argument.
    pub fn k_of_n(
        logs: &[impl AsRef<str>],
        witnesses: &[impl AsRef<str>],
        k: usize,
    ) -> Result<Self, PolicyError> {
        let mut b = Builder::default();
        let at_err = |at| move |error| PolicyError::At { at, error };
        for (i, vkey) in logs.iter().enumerate() {
            let at = Location::LogKey(i + 1);
            b.log(vkey.as_ref().as_bytes(), None, at)
                .map_err(at_err(at))?;
        }
        let mut names = Vec::with_capacity(witnesses.len());
        for (i, vkey) in witnesses.iter().enumerate() {
            let at = Location::WitnessKey(i + 1);
            let vkey = vkey.as_ref();
            let name = vkey.split('+').next().unwrap_or_default().as_bytes();
            b.witness(name, vkey.as_bytes(), None, at)
                .map_err(at_err(at))?;
            names.push(name);
        }
        let at = Location::Quorum;
        let quorum: &[u8] = if k == 0 {
            NONE.as_bytes()
        } else {
            let k = k.to_string();
            b.group(K_OF_N_GROUP.as_bytes(), k.as_bytes(), &names)
                .map_err(at_err(at))?;
            K_OF_N_GROUP.as_bytes()
        };
        b.quorum(quorum, at).map_err(at_err(at))?;
        b.finish()
    }

    /// The policy in the file format: logs, witnesses, groups (in their order), then the
    /// quorum, one per line. Comments, blank lines, extra whitespace and the interleaving of
    /// the input are not kept, so this is not the parsed bytes; [`Policy::parse`] of it gives
    /// back an equal policy. Bytes, not a `String`: names and URLs may hold non-UTF-8 octets.
    pub fn to_text(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for log in &self.logs {
            out.extend_from_slice(b"log ");
            out.extend_from_slice(log.vkey.as_bytes());
            push_url(&mut out, log.url.as_deref());
        }
        for w in &self.witnesses {
            for part in [&b"witness "[..], &w.name, b" ", w.vkey.as_bytes()] {
                out.extend_from_slice(part);
            }
            push_url(&mut out, w.url.as_deref());
        }
        for g in &self.groups {
            for part in [&b"group "[..], &g.name, b" "] {
                out.extend_from_slice(part);
            }
            match g.threshold {
                Threshold::All => out.extend_from_slice(b"all"),
                Threshold::Any => out.extend_from_slice(b"any"),
                Threshold::AtLeast(k) => out.extend_from_slice(k.to_string().as_bytes()),
            }
            for m in &g.members {
                out.push(b' ');
                out.extend_from_slice(self.member_name(*m));
            }
            out.push(b'\n');
        }
        out.extend_from_slice(b"quorum ");
        match self.quorum {
            None => out.extend_from_slice(NONE.as_bytes()),
            Some(m) => out.extend_from_slice(self.member_name(m)),
        }
        out.push(b'\n');
        out
    }

    /// The `log` lines, in order.
    pub fn logs(&self) -> &[PolicyLog] {
        &self.logs
    }

    /// The `witness` lines, in order.
    pub fn witnesses(&self) -> &[PolicyWitness] {
        &self.witnesses
    }

    /// The `group` lines, in order.
    pub fn groups(&self) -> &[PolicyGroup] {
        &self.groups
    }

    /// The quorum: a witness or group, or `None` for `quorum none`.
    pub fn quorum(&self) -> Option<Member> {
        self.quorum
    }

    /// The verifiers of the listed logs whose origin (key name) is `origin`; several when a
    /// log's key is being rotated, none for an unknown origin.
    pub fn log_verifiers(&self, origin: &str) -> Vec<&dyn Verifier> {
        self.logs
            .iter()
            .filter(|l| l.origin() == origin)
            .map(PolicyLog::verifier)
            .collect()
    }

    /// Checks a checkpoint's signed note against the whole policy: a listed log for `origin`
    /// signed it ([`checkpoint::open`] with [`Policy::log_verifiers`]; no listed log key may
    /// have signed it badly), and [`Policy::check_quorum`] holds.
    pub fn verify_checkpoint(
        &self,
        note_bytes: &[u8],
        origin: &str,
    ) -> Result<PolicyOutcome, PolicyError> {
        let logs = self.log_verifiers(origin);
        if logs.is_empty() {
            return Err(PolicyError::UnknownLog(origin.to_owned()));
        }
        let checkpoint =
            checkpoint::open(note_bytes, origin, &logs).map_err(PolicyError::Checkpoint)?;
        let witnesses = self.check_quorum(&checkpoint)?;
        Ok(PolicyOutcome {
            checkpoint,
            witnesses,
        })
    }

    /// Checks the witness part of the policy on a checkpoint whose log signature is already
    /// verified, and returns every listed witness with a valid cosignature (see
    /// [`PolicyOutcome::witnesses`]).
    ///
    /// Each signature line whose key name and key ID are a listed witness's is verified as a
    /// type-`0x04` cosignature over the checkpoint text; one that fails is an error
    /// ([`PolicyError::InvalidCosignature`]), not merely uncounted. Other lines are ignored.
    /// Groups are then evaluated in definition order (members are always earlier) and the
    /// quorum must hold ([`PolicyError::QuorumNotMet`]).
    pub fn check_quorum(
        &self,
        checkpoint: &VerifiedCheckpoint,
    ) -> Result<Vec<WitnessCosignature>, PolicyError> {
        let note = checkpoint.note();
        let mut timestamps: Vec<Option<u64>> = vec![None; self.witnesses.len()];
        for sig in note.signatures() {
            let Some(i) = self.witnesses.iter().position(|w| {
                w.verifier.name() == sig.name() && w.verifier.key_id() == sig.key_id()
            }) else {
                continue;
            };
            let w = &self.witnesses[i];
            let ts = w
                .verifier
                .verify_cosignature(note.text(), sig)
                .map_err(|source| PolicyError::InvalidCosignature {
                    witness: show(&w.name),
                    source,
                })?;
            timestamps[i].get_or_insert(ts);
        }
        let mut groups = Vec::with_capacity(self.groups.len());
        for g in &self.groups {
            let done = g
                .members
                .iter()
                .filter(|m| match m {
                    Member::Witness(i) => timestamps[*i].is_some(),
                    Member::Group(i) => groups[*i],
                })
                .count();
            groups.push(done >= g.k());
        }
        let met = match self.quorum {
            None => true,
            Some(Member::Witness(i)) => timestamps[i].is_some(),
            Some(Member::Group(i)) => groups[i],
        };
        let cosigned = self.witnesses.iter().zip(&timestamps);
        if !met {
            return Err(PolicyError::QuorumNotMet {
                quorum: show(self.quorum.map_or(NONE.as_bytes(), |m| self.member_name(m))),
                cosigned: cosigned
                    .filter(|(_, t)| t.is_some())
                    .map(|(w, _)| show(&w.name))
                    .collect(),
            });
        }
        Ok(cosigned
            .filter_map(|(w, t)| {
                t.map(|timestamp| WitnessCosignature {
                    name: w.name.clone(),
                    verifier: w.verifier.clone(),
                    timestamp,
                })
            })
            .collect())
    }

    fn member_name(&self, m: Member) -> &[u8] {
        match m {
            Member::Witness(i) => &self.witnesses[i].name,
            Member::Group(i) => &self.groups[i].name,
        }
    }
}

/// Ends a `log` or `witness` line: the URL if any, then LF.
fn push_url(out: &mut Vec<u8>, url: Option<&[u8]>) {
    if let Some(url) = url {
        out.push(b' ');
        out.extend_from_slice(url);
    }
    out.push(b'\n');
}
