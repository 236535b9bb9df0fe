//! C2SP tlog-checkpoint (<https://c2sp.org/tlog-checkpoint>): the checkpoint body (origin,
//! tree size, root hash, optional extension lines), strict parsing and canonical writing, and
//! [`open`], the one way to obtain a proof-carrying [`VerifiedCheckpoint`].
//!
//! In scope: the note text of a checkpoint and checking the log's signature on it. Out of scope:
//! consistency between checkpoints (see [`crate::merkle`]), cosignatures (see
//! [`crate::cosignature`]) and the witness rules such as the empty-tree root check (see
//! [`crate::witness`] and the witness service).
//!
//! [`Checkpoint::parse`] is canonical: when it accepts a text, [`Checkpoint::to_text`] returns
//! that text exactly.

use crate::hash::Hash;
use crate::note::{self, Note, NoteError, Signer, Verifier};
use crate::text::parse_decimal;

/// Why a checkpoint was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// The signed note is malformed or its signatures did not verify.
    #[error(transparent)]
    Note(#[from] NoteError),
    /// The note text is not a valid checkpoint body.
    #[error("malformed checkpoint: {0}")]
    Malformed(&'static str),
    /// The checkpoint is for another log.
    #[error("checkpoint origin is {found:?}, expected {expected:?}")]
    Origin {
        /// The origin the caller expected.
        expected: String,
        /// The origin line of the checkpoint.
        found: String,
    },
}

impl CheckpointError {
    /// A short static label for metrics: `"malformed"`, `"wrong_origin"`, or the
    /// [`NoteError::category`] of a note error.
    pub fn category(&self) -> &'static str {
        match self {
            CheckpointError::Note(e) => e.category(),
            CheckpointError::Malformed(_) => "malformed",
            CheckpointError::Origin { .. } => "wrong_origin",
        }
    }
}

/// A checkpoint body. Every value is valid: the origin and extension lines are non-empty and free
/// of control characters, so [`Checkpoint::to_text`] always gives text [`Checkpoint::parse`]
/// accepts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Checkpoint {
    origin: String,
    size: u64,
    root: Hash,
    extensions: Vec<String>,
}

impl Checkpoint {
    /// A checkpoint without extension lines. The origin must be a non-empty line without control
    /// characters (tlog-checkpoint also says it SHOULD be a schema-less URL without spaces or
    /// `+`; that is not enforced).
    pub fn new(origin: &str, size: u64, root: Hash) -> Result<Self, CheckpointError> {
        Self::with_extensions(origin, size, root, Vec::new())
    }

    /// A checkpoint with extension lines (tlog-checkpoint: opaque, each non-empty, use NOT
    /// RECOMMENDED).
    pub fn with_extensions(
        origin: &str,
        size: u64,
        root: Hash,
        extensions: Vec<String>,
    ) -> Result<Self, CheckpointError> {
        check_line(origin, "origin line is empty or holds a control character")?;
        for e in &extensions {
            check_line(e, "extension line is empty or holds a control character")?;
        }
        let checkpoint = Self {
            origin: origin.to_owned(),
            size,
            root,
            extensions,
        };
        note::check_text(&checkpoint.to_text())?;
        Ok(checkpoint)
    }

    /// Parses a checkpoint body strictly: valid note text (no control characters but LF, ends in
    /// LF), a non-empty origin line, the tree size in canonical decimal, the root hash as
    /// canonical base64 of 32 bytes, then zero or more non-empty extension lines.
    pub fn parse(text: &str) -> Result<Self, CheckpointError> {
        note::check_text(text)?;
        let body = text
            .strip_suffix('\n')
            .ok_or(CheckpointError::Malformed("text does not end in a newline"))?;
        let mut lines = body.split('\n');
        let (Some(origin), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next())
        else {
            return Err(CheckpointError::Malformed("fewer than three lines"));
        };
        if origin.is_empty() {
            return Err(CheckpointError::Malformed("origin line is empty"));
        }
        let size = parse_decimal(size).ok_or(CheckpointError::Malformed(
            "tree size is not a canonical decimal",
        ))?;
        let root = Hash::from_base64(root).map_err(|_| {
            CheckpointError::Malformed("root hash is not canonical base64 of 32 bytes")
        })?;
        let extensions: Vec<String> = lines.map(str::to_owned).collect();
        if extensions.iter().any(String::is_empty) {
            return Err(CheckpointError::Malformed("extension line is empty"));
        }
        Ok(Self {
            origin: origin.to_owned(),
            size,
            root,
            extensions,
        })
    }

    /// The checkpoint as note text: origin, size, root and extension lines, each ending in LF.
    pub fn to_text(&self) -> String {
        let mut text = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            self.root.to_base64()
        );
        for e in &self.extensions {
            text.push_str(e);
            text.push('\n');
        }
        text
    }

    /// The origin line, which identifies the log.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The tree size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The RFC 6962 root hash of the tree at [`Checkpoint::size`].
    pub fn root(&self) -> Hash {
        self.root
    }

    /// The extension lines, without their newlines.
    pub fn extensions(&self) -> &[String] {
        &self.extensions
    }
}

/// A checkpoint whose note carries at least one valid signature from the log keys it was opened
/// with, and no invalid signature from them. Only [`open`] builds one.
#[derive(Debug, Clone)]
pub struct VerifiedCheckpoint {
    checkpoint: Checkpoint,
    note: Note,
    bytes: Vec<u8>,
    verified_by: Vec<usize>,
}

impl VerifiedCheckpoint {
    /// The checkpoint body.
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// The parsed note, with every signature line it carried (including unknown ones).
    pub fn note(&self) -> &Note {
        &self.note
    }

    /// The note bytes exactly as received.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Indices into the verifier list given to [`open`] of the keys that signed it.
    pub fn verified_by(&self) -> &[usize] {
        &self.verified_by
    }
}

/// Opens a signed checkpoint from log `origin`: parses the note, parses the checkpoint body,
/// checks the origin line equals `origin`, then verifies the note with `log_verifiers` under the
/// rules of [`note::verify`] (at least one valid log signature, none invalid, unknown ones
/// ignored). The cheap checks come first, so a note for the wrong log is reported as
/// [`CheckpointError::Origin`] without any signature work.
pub fn open(
    note_bytes: &[u8],
    origin: &str,
    log_verifiers: &[&dyn Verifier],
) -> Result<VerifiedCheckpoint, CheckpointError> {
    let note = Note::parse(note_bytes)?;
    let checkpoint = Checkpoint::parse(note.text())?;
    if checkpoint.origin != origin {
        return Err(CheckpointError::Origin {
            expected: origin.to_owned(),
            found: checkpoint.origin,
        });
    }
    let verified_by = note::verify(&note, log_verifiers)?;
    Ok(VerifiedCheckpoint {
        checkpoint,
        note,
        bytes: note_bytes.to_vec(),
        verified_by,
    })
}

/// Signs a checkpoint as its log: the signed note's bytes, ready to publish.
///
/// Fails only if the signer's name is not a valid key name.
pub fn sign_checkpoint(
    checkpoint: &Checkpoint,
    signer: &dyn Signer,
) -> Result<Vec<u8>, CheckpointError> {
    Ok(Note::sign(&checkpoint.to_text(), &[signer])?.to_bytes())
}

fn check_line(line: &str, what: &'static str) -> Result<(), CheckpointError> {
    if line.is_empty() || line.chars().any(|c| c.is_ascii_control()) {
        return Err(CheckpointError::Malformed(what));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::{EMPTY_ROOT, leaf_hash};
    use crate::note::{Ed25519Signer, NoteSignature};

    const SOFA: &str =
        "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";

    fn log_key() -> Ed25519Signer {
        Ed25519Signer::from_seed("example.com/log", [5; 32]).unwrap()
    }

    #[test]
    fn parse_spec_example() {
        let c = Checkpoint::parse(SOFA).unwrap();
        assert_eq!(c.origin(), "example.com/behind-the-sofa");
        assert_eq!(c.size(), 20852163);
        assert_eq!(
            c.root().to_hex(),
            "0ac5186a91863e8e1d90c808014aa89bf5da8e3ee1d9f07630f0378f68f1ab62"
        );
        assert!(c.extensions().is_empty());
        assert_eq!(c.to_text(), SOFA);
    }

    #[test]
    fn extensions_round_trip() {
        let text = format!("{SOFA}ext one\n— not a signature\n");
        let c = Checkpoint::parse(&text).unwrap();
        assert_eq!(c.extensions(), ["ext one", "— not a signature"]);
        assert_eq!(c.to_text(), text);
    }

    #[test]
    fn parse_rejects() {
        let root = EMPTY_ROOT.to_base64();
        assert!(
            root.ends_with("FU="),
            "the non-canonical case below edits this"
        );
        let cases = [
            (String::new(), "empty"),
            ("o\n".to_owned(), "one line"),
            ("o\n1\n".to_owned(), "two lines"),
            (format!("o\n1\n{root}"), "no final newline"),
            (format!("\n1\n{root}\n"), "empty origin"),
            (format!("o\n01\n{root}\n"), "leading zero"),
            (format!("o\n00\n{root}\n"), "double zero"),
            (format!("o\n+1\n{root}\n"), "plus sign"),
            (format!("o\n-1\n{root}\n"), "minus sign"),
            (format!("o\n 1\n{root}\n"), "space before size"),
            (format!("o\n1 \n{root}\n"), "space after size"),
            (format!("o\n\n{root}\n"), "empty size"),
            (
                format!("o\n18446744073709551616\n{root}\n"),
                "size over u64",
            ),
            (
                format!("o\n1\n{}\n", root.trim_end_matches('=')),
                "unpadded root",
            ),
            (format!("o\n1\n{}\n", &root[..40]), "short root"),
            ("o\n1\nAAAA\n".to_owned(), "3-byte root"),
            (
                format!("o\n1\n{}\n", root.replace("FU=", "FV=")),
                "non-canonical root",
            ),
            (format!("o\n1\n{}\n", leaf_hash(b"x").to_hex()), "hex root"),
            (format!("o\n1\n{root}\n\n"), "empty extension line"),
            (format!("o\n1\n{root}\next\n\n"), "trailing empty line"),
            (format!("o\n1\n{root}\r\n"), "CRLF"),
            (format!("o\t\n1\n{root}\n"), "tab in origin"),
            (format!("o\n1\n{root}\nx\u{7}\n"), "BEL in extension"),
        ];
        for (text, what) in cases {
            assert!(Checkpoint::parse(&text).is_err(), "accepted: {what}");
        }
    }

    #[test]
    fn constructors_validate() {
        assert!(Checkpoint::new("", 1, EMPTY_ROOT).is_err());
        assert!(Checkpoint::new("a\nb", 1, EMPTY_ROOT).is_err());
        assert!(Checkpoint::with_extensions("o", 1, EMPTY_ROOT, vec![String::new()]).is_err());
        assert!(Checkpoint::with_extensions("o", 1, EMPTY_ROOT, vec!["a\nb".into()]).is_err());
        let c = Checkpoint::with_extensions("o", 0, EMPTY_ROOT, vec!["x y".into()]).unwrap();
        assert_eq!(
            c.to_text(),
            "o\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\nx y\n"
        );
        assert_eq!(Checkpoint::parse(&c.to_text()).unwrap(), c);
    }

    #[test]
    fn mutations_that_parse_are_canonical() {
        // A deterministic sweep instead of a proptest: every single-byte substitution from a
        // small alphabet at every position of a checkpoint with an extension line.
        let text = format!("{SOFA}ext\n");
        for i in 0..text.len() {
            for b in [b'0', b'1', b'A', b'=', b'+', b'\n', b' ', b'x', 0x80] {
                let mut bytes = text.clone().into_bytes();
                bytes[i] = b;
                let Ok(t) = std::str::from_utf8(&bytes) else {
                    continue;
                };
                if let Ok(c) = Checkpoint::parse(t) {
                    assert_eq!(c.to_text(), t);
                }
            }
        }
    }

    #[test]
    fn open_signed_checkpoint() {
        let log = log_key();
        let c = Checkpoint::new("example.com/log", 7, leaf_hash(b"r")).unwrap();
        let bytes = sign_checkpoint(&c, &log).unwrap();
        let other = Ed25519Signer::from_seed("example.com/log", [6; 32])
            .unwrap()
            .verifier();
        let v = open(&bytes, "example.com/log", &[&other, &log.verifier()]).unwrap();
        assert_eq!(v.checkpoint(), &c);
        assert_eq!(v.bytes(), bytes.as_slice());
        assert_eq!(v.note().text(), c.to_text());
        assert_eq!(v.verified_by(), [1]);
    }

    #[test]
    fn open_rejects() {
        let log = log_key();
        let c = Checkpoint::new("example.com/log", 7, leaf_hash(b"r")).unwrap();
        let bytes = sign_checkpoint(&c, &log).unwrap();
        let v = log.verifier();

        let err = open(&bytes, "example.com/other", &[&v]).unwrap_err();
        assert!(matches!(err, CheckpointError::Origin { .. }), "{err}");
        assert_eq!(err.category(), "wrong_origin");

        let wrong = Ed25519Signer::from_seed("example.com/log", [6; 32]).unwrap();
        let err = open(&bytes, "example.com/log", &[&wrong.verifier()]).unwrap_err();
        assert_eq!(err, CheckpointError::Note(NoteError::Unverified));

        // Same text, forged signature under the right key ID.
        let forged = NoteSignature::new("example.com/log", log.key_id(), vec![1; 64]).unwrap();
        let forged = Note::new(&c.to_text(), vec![forged]).unwrap().to_bytes();
        let err = open(&forged, "example.com/log", &[&v]).unwrap_err();
        assert_eq!(err.category(), "invalid_signature");

        let mut trailing = bytes.clone();
        trailing.extend_from_slice(b"x");
        assert!(open(&trailing, "example.com/log", &[&v]).is_err());

        // A signed note whose text is not a checkpoint.
        let not_cp = Note::sign("hello\n", &[&log]).unwrap().to_bytes();
        assert!(matches!(
            open(&not_cp, "hello", &[&v]),
            Err(CheckpointError::Malformed(_))
        ));
    }
}
