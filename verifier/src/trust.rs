//! What the auditor trusts: the log's verifier key, the origin, and optionally a witness policy
//! (a tlog-policy file, or witness keys with a k-of-n quorum). [`Trust::open`] is the one place a
//! checkpoint's bytes become a verified checkpoint here.

use sealtrail_spec::checkpoint::{self, CheckpointError, VerifiedCheckpoint};
use sealtrail_spec::note::{Ed25519Verifier, NoteError, Verifier};
use sealtrail_spec::policy::Policy;

use crate::Error;

/// The keys and policy a command verifies against.
#[derive(Debug, Clone)]
pub struct Trust {
    origin: String,
    log: Ed25519Verifier,
    policy: Option<Policy>,
}

/// The witness flags: a policy file's bytes, or witness vkeys and a quorum.
#[derive(Debug, Clone, Default)]
pub struct WitnessArgs {
    /// Contents of `--policy FILE`.
    pub policy: Option<Vec<u8>>,
    /// `--witness-key` values.
    pub witness_keys: Vec<String>,
    /// `--quorum`; defaults to every listed witness.
    pub quorum: Option<usize>,
}

impl Trust {
    /// Builds the trust roots. `origin` defaults to the log key's name.
    pub fn new(
        log_vkey: &str,
        origin: Option<&str>,
        witnesses: WitnessArgs,
    ) -> Result<Self, Error> {
        let log = Ed25519Verifier::from_vkey(log_vkey.trim())
            .map_err(|e| Error::Usage(format!("--log-key: {e}")))?;
        let origin = origin.unwrap_or(log.name()).to_owned();
        let policy = match (witnesses.policy, witnesses.witness_keys.is_empty()) {
            (Some(_), false) => {
                return Err(Error::Usage(
                    "give --policy or --witness-key, not both".into(),
                ));
            }
            (Some(bytes), true) => {
                Some(Policy::parse(&bytes).map_err(|e| Error::Usage(format!("--policy: {e}")))?)
            }
            (None, false) => {
                let k = witnesses.quorum.unwrap_or(witnesses.witness_keys.len());
                Some(
                    Policy::k_of_n(&[log_vkey.trim()], &witnesses.witness_keys, k)
                        .map_err(|e| Error::Usage(format!("--witness-key/--quorum: {e}")))?,
                )
            }
            (None, true) if witnesses.quorum.is_some_and(|k| k > 0) => {
                return Err(Error::Usage("--quorum needs --witness-key".into()));
            }
            (None, true) => None,
        };
        Ok(Trust {
            origin,
            log,
            policy,
        })
    }

    /// The expected origin.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The log's verifier.
    pub fn log(&self) -> &Ed25519Verifier {
        &self.log
    }

    /// The witness policy, if any.
    pub fn policy(&self) -> Option<&Policy> {
        self.policy.as_ref()
    }

    /// Verifies a checkpoint note (`what` names it in messages): origin, the log's signature and
    /// the witness quorum. Returns it with the names of the witnesses whose cosignatures verified.
    pub fn open(
        &self,
        note: &[u8],
        what: &str,
    ) -> Result<(VerifiedCheckpoint, Vec<String>), Error> {
        let cp = checkpoint::open(note, &self.origin, &[&self.log])
            .map_err(|e| Error::failed(format!("{what}: {}", self.explain(&e))))?;
        let witnesses = match &self.policy {
            None => Vec::new(),
            Some(p) => p
                .check_quorum(&cp)
                .map_err(|e| Error::failed(format!("{what}: witness policy: {e}")))?
                .iter()
                .map(|w| String::from_utf8_lossy(w.name()).into_owned())
                .collect(),
        };
        Ok((cp, witnesses))
    }

    /// Verifies only the origin and the log's signature: for a checkpoint trusted earlier (a
    /// state file), which was checked against the policy of its day.
    pub fn open_signed(&self, note: &[u8], what: &str) -> Result<VerifiedCheckpoint, Error> {
        checkpoint::open(note, &self.origin, &[&self.log])
            .map_err(|e| Error::failed(format!("{what}: {}", self.explain(&e))))
    }

    /// A checkpoint error in the auditor's terms: which key, which signature.
    pub fn explain(&self, e: &CheckpointError) -> String {
        match e {
            CheckpointError::Note(NoteError::Unverified) => format!(
                "no signature by the log key {}+{:08x} (signed by another key?)",
                self.log.name(),
                self.log.key_id()
            ),
            CheckpointError::Note(NoteError::InvalidSignature { name, key_id }) => format!(
                "the log signature by {name}+{key_id:08x} does not verify over the checkpoint text"
            ),
            other => other.to_string(),
        }
    }
}
