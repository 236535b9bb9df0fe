//! C2SP tlog-witness wire format (<https://c2sp.org/tlog-witness>): the `add-checkpoint`
//! request body, the cosignature lines of a 200 response, the `text/x.tlog.size` body of a 409,
//! and the origin hash used in monitoring paths.
//!
//! In scope: bytes in and out, parsed strictly. Out of scope: the witness's decisions (which
//! origin is known, signature checks via [`crate::checkpoint::open`], the old-size comparison,
//! consistency proofs via [`crate::merkle`], HTTP statuses) and `sign-subtree`.
//!
//! Every parser here is canonical: when it accepts an input, its writer reproduces the input
//! byte for byte ([`AddCheckpointRequest::parse`] / [`AddCheckpointRequest::to_bytes`],
//! [`parse_cosignature_lines`] / [`format_signature_lines`], [`parse_size_body`] /
//! [`format_size_body`]).

use crate::hash::{Hash, sha256};
use crate::note::{MAX_NOTE_SIZE, MAX_SIGNATURES, Note, NoteError, NoteSignature};
use crate::text::{parse_decimal, to_hex};

/// Most consistency-proof lines a request may carry
/// (<https://c2sp.org/tlog-witness#add-checkpoint>: "The client
/// MUST NOT send more than 63 consistency proof lines"; enough for trees up to `2^62` leaves).
pub const MAX_PROOF_LINES: usize = 63;

/// Largest add-checkpoint body we parse: the `old` line (at most `"old "` + 20 digits + LF),
/// [`MAX_PROOF_LINES`] base64 hashes of 44 characters plus LF, the empty line, and a note of at
/// most [`MAX_NOTE_SIZE`] bytes.
pub const MAX_REQUEST_SIZE: usize = 25 + MAX_PROOF_LINES * 45 + 1 + MAX_NOTE_SIZE;

/// Path of the submission endpoint under the witness's submission prefix.
pub const ADD_CHECKPOINT_PATH: &str = "add-checkpoint";

/// `Content-Type` of a 409 Conflict answer to add-checkpoint, whose body is the witness's size.
pub const CONTENT_TYPE_TLOG_SIZE: &str = "text/x.tlog.size";

/// `Content-Type` for checkpoints and cosignature lines (tlog-tiles serves checkpoints with it;
/// tlog-witness names none for the 200 body).
pub const CONTENT_TYPE_TEXT: &str = "text/plain; charset=utf-8";

/// Why a witness message was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WitnessError {
    /// The body is larger than the format allows.
    #[error("body is {0} bytes, more than the limit")]
    TooLarge(usize),
    /// The body does not follow the format.
    #[error("malformed witness message: {0}")]
    Malformed(&'static str),
    /// More than [`MAX_PROOF_LINES`] consistency-proof lines.
    #[error("more than {MAX_PROOF_LINES} consistency proof lines")]
    TooManyProofLines,
    /// The checkpoint (or a signature line) is not a valid note.
    #[error(transparent)]
    Note(#[from] NoteError),
}

/// The body of `POST <prefix>/add-checkpoint`: `old <size>`, 0 to 63 proof lines, an empty line,
/// then the checkpoint's signed note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddCheckpointRequest {
    old_size: u64,
    proof: Vec<Hash>,
    checkpoint: Vec<u8>,
}

impl AddCheckpointRequest {
    /// Builds a request; `proof` holds at most [`MAX_PROOF_LINES`] hashes and `checkpoint` must
    /// parse as a signed note (its signatures are not checked).
    pub fn new(old_size: u64, proof: Vec<Hash>, checkpoint: Vec<u8>) -> Result<Self, WitnessError> {
        if proof.len() > MAX_PROOF_LINES {
            return Err(WitnessError::TooManyProofLines);
        }
        Note::parse(&checkpoint)?;
        Ok(Self {
            old_size,
            proof,
            checkpoint,
        })
    }

    /// Parses a request body strictly: `old` line with a canonical decimal, each proof line
    /// canonical base64 of 32 bytes, at most [`MAX_PROOF_LINES`] of them, the empty line, and a
    /// non-empty remainder that parses as a signed note. The note's origin and signatures are for
    /// the caller to check with [`crate::checkpoint::open`]; that the proof is empty when
    /// `old_size` is 0 is a witness rule (422), not a syntax rule, and is not checked here.
    pub fn parse(body: &[u8]) -> Result<Self, WitnessError> {
        if body.len() > MAX_REQUEST_SIZE {
            return Err(WitnessError::TooLarge(body.len()));
        }
        let mut rest = body;
        let old = next_line(&mut rest)?.ok_or(WitnessError::Malformed("no old size line"))?;
        let old_size =
            old.strip_prefix("old ")
                .and_then(parse_decimal)
                .ok_or(WitnessError::Malformed(
                    "first line is not \"old \" and a canonical decimal",
                ))?;
        let mut proof = Vec::new();
        loop {
            let line = next_line(&mut rest)?.ok_or(WitnessError::Malformed(
                "no empty line before the checkpoint",
            ))?;
            if line.is_empty() {
                break;
            }
            if proof.len() == MAX_PROOF_LINES {
                return Err(WitnessError::TooManyProofLines);
            }
            proof.push(Hash::from_base64(line).map_err(|_| {
                WitnessError::Malformed("proof line is not canonical base64 of 32 bytes")
            })?);
        }
        if rest.is_empty() {
            return Err(WitnessError::Malformed("empty checkpoint"));
        }
        Note::parse(rest)?;
        Ok(Self {
            old_size,
            proof,
            checkpoint: rest.to_vec(),
        })
    }

    /// The request body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!("old {}\n", self.old_size).into_bytes();
        for h in &self.proof {
            out.extend_from_slice(h.to_base64().as_bytes());
            out.push(b'\n');
        }
        out.push(b'\n');
        out.extend_from_slice(&self.checkpoint);
        out
    }

    /// The size of the checkpoint the client believes the witness last cosigned (0 if none).
    pub fn old_size(&self) -> u64 {
        self.old_size
    }

    /// The consistency proof from `old_size` to the checkpoint's size.
    pub fn proof(&self) -> &[Hash] {
        &self.proof
    }

    /// The checkpoint's signed note bytes, exactly as sent.
    pub fn checkpoint(&self) -> &[u8] {
        &self.checkpoint
    }
}

/// Takes one LF-terminated line off the front of `rest`, without the LF. `Ok(None)` if no LF is
/// left; an error if the line is not UTF-8.
fn next_line<'a>(rest: &mut &'a [u8]) -> Result<Option<&'a str>, WitnessError> {
    let Some(end) = rest.iter().position(|&b| b == b'\n') else {
        return Ok(None);
    };
    let line = std::str::from_utf8(&rest[..end])
        .map_err(|_| WitnessError::Malformed("request line is not UTF-8"))?;
    *rest = &rest[end + 1..];
    Ok(Some(line))
}

/// Parses the body of a 200 answer to add-checkpoint: one or more note signature lines (each
/// `— <name> <base64>` ending in LF), at most [`MAX_SIGNATURES`], nothing else. To keep only
/// cosignatures from trusted witnesses, add the lines to the checkpoint note and run
/// [`crate::note::verify`] with the witness keys, as tlog-witness suggests.
pub fn parse_cosignature_lines(body: &[u8]) -> Result<Vec<NoteSignature>, WitnessError> {
    if body.len() > MAX_NOTE_SIZE {
        return Err(WitnessError::TooLarge(body.len()));
    }
    let text = std::str::from_utf8(body).map_err(|_| NoteError::Utf8)?;
    if text.is_empty() {
        return Err(WitnessError::Malformed("no signature lines"));
    }
    let mut lines = Vec::new();
    for line in text.split_inclusive('\n') {
        if lines.len() == MAX_SIGNATURES {
            return Err(NoteError::TooManySignatures.into());
        }
        lines.push(NoteSignature::parse_line(line)?);
    }
    Ok(lines)
}

/// Writes signature lines, each ending in LF: the body of a 200 answer to add-checkpoint.
pub fn format_signature_lines(signatures: &[NoteSignature]) -> String {
    signatures.iter().map(NoteSignature::to_line).collect()
}

/// Parses a `text/x.tlog.size` body: the witness's tree size in canonical decimal and a LF.
pub fn parse_size_body(body: &[u8]) -> Result<u64, WitnessError> {
    body.strip_suffix(b"\n")
        .and_then(|b| std::str::from_utf8(b).ok())
        .and_then(parse_decimal)
        .ok_or(WitnessError::Malformed(
            "size body is not a canonical decimal and a newline",
        ))
}

/// Writes a `text/x.tlog.size` body.
pub fn format_size_body(size: u64) -> String {
    format!("{size}\n")
}

/// The origin hash of the monitoring API: lowercase hex of `SHA-256(origin)` (tlog-witness
/// `main`, `GET <monitoring prefix>/<origin hash>/checkpoint`). Not transparency-dev/formats'
/// `log.ID`, which hashes `"o:" || origin`.
pub fn origin_hash(origin: &str) -> String {
    to_hex(&sha256(origin.as_bytes()))
}

/// The monitoring path of a log's latest cosigned checkpoint, relative to the monitoring prefix:
/// `<origin hash>/checkpoint`.
pub fn monitoring_checkpoint_path(origin: &str) -> String {
    format!("{}/checkpoint", origin_hash(origin))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::{Checkpoint, sign_checkpoint};
    use crate::hash::leaf_hash;
    use crate::note::Ed25519Signer;

    fn checkpoint_note() -> Vec<u8> {
        let log = Ed25519Signer::from_seed("example.com/log", [2; 32]).unwrap();
        let c = Checkpoint::new("example.com/log", 9, leaf_hash(b"9")).unwrap();
        sign_checkpoint(&c, &log).unwrap()
    }

    fn body(old: &str, proof: &[Hash], note: &[u8]) -> Vec<u8> {
        let mut b = format!("old {old}\n").into_bytes();
        for h in proof {
            b.extend_from_slice(format!("{}\n", h.to_base64()).as_bytes());
        }
        b.push(b'\n');
        b.extend_from_slice(note);
        b
    }

    #[test]
    fn request_round_trip() {
        let note = checkpoint_note();
        let proof = vec![leaf_hash(b"a"), leaf_hash(b"b")];
        let bytes = body("5", &proof, &note);
        let req = AddCheckpointRequest::parse(&bytes).unwrap();
        assert_eq!(req.old_size(), 5);
        assert_eq!(req.proof(), proof.as_slice());
        assert_eq!(req.checkpoint(), note.as_slice());
        assert_eq!(req.to_bytes(), bytes);
        assert_eq!(
            AddCheckpointRequest::new(5, proof, note)
                .unwrap()
                .to_bytes(),
            bytes
        );
    }

    #[test]
    fn proof_line_limit() {
        let note = checkpoint_note();
        let proof: Vec<Hash> = (0..64u8).map(|i| leaf_hash(&[i])).collect();
        let ok = body("1", &proof[..63], &note);
        assert_eq!(
            AddCheckpointRequest::parse(&ok).unwrap().proof().len(),
            MAX_PROOF_LINES
        );
        let over = body("1", &proof, &note);
        assert_eq!(
            AddCheckpointRequest::parse(&over),
            Err(WitnessError::TooManyProofLines)
        );
        assert_eq!(
            AddCheckpointRequest::new(1, proof, note),
            Err(WitnessError::TooManyProofLines)
        );
    }

    #[test]
    fn request_rejects() {
        let note = checkpoint_note();
        let h = leaf_hash(b"a");
        let good = body("0", &[], &note);
        assert!(AddCheckpointRequest::parse(&good).is_ok());
        let hb = h.to_base64();
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (Vec::new(), "empty"),
            (b"old 0\n\n".to_vec(), "empty checkpoint"),
            (body("00", &[], &note), "leading zeros"),
            (body("01", &[], &note), "leading zero"),
            (body("+1", &[], &note), "plus"),
            (body("-1", &[], &note), "minus"),
            (body("", &[], &note), "no number"),
            (body("1 ", &[], &note), "trailing space"),
            (body("18446744073709551616", &[], &note), "overflow"),
            ([b"old  1\n\n".as_slice(), &note].concat(), "two spaces"),
            ([b"Old 1\n\n".as_slice(), &note].concat(), "capital"),
            ([b"old 1\r\n\n".as_slice(), &note].concat(), "CRLF"),
            ([b"old\t1\n\n".as_slice(), &note].concat(), "tab"),
            ([b"old 1\n".as_slice(), &note].concat(), "no empty line"),
            (
                format!("old 1\n{}\n\n", hb.trim_end_matches('='))
                    .into_bytes()
                    .into_iter()
                    .chain(note.clone())
                    .collect(),
                "unpadded proof hash",
            ),
            (
                [format!("old 1\n{}\n\n", h.to_hex()).as_bytes(), &note].concat(),
                "hex proof hash",
            ),
            (
                [format!("old 1\n{hb} \n\n").as_bytes(), &note].concat(),
                "space after hash",
            ),
            ([good.as_slice(), b"x"].concat(), "trailing byte"),
            ([good.as_slice(), b"\n"].concat(), "trailing newline"),
            (good[..good.len() - 1].to_vec(), "truncated note"),
            (body("0", &[], b"not a note\n"), "not a note"),
        ];
        for (input, what) in cases {
            assert!(
                AddCheckpointRequest::parse(&input).is_err(),
                "accepted: {what}"
            );
        }
        let huge = vec![b'a'; MAX_REQUEST_SIZE + 1];
        assert_eq!(
            AddCheckpointRequest::parse(&huge),
            Err(WitnessError::TooLarge(MAX_REQUEST_SIZE + 1))
        );
    }

    #[test]
    fn mutations_that_parse_are_canonical() {
        let note = checkpoint_note();
        let good = body("1", &[leaf_hash(b"a")], &note);
        // The header and the proof line: every position, a few substitutes.
        for i in 0..52 {
            for b in [b'0', b'1', b'A', b'=', b'+', b'\n', b' ', b'o'] {
                let mut bytes = good.clone();
                bytes[i] = b;
                if let Ok(req) = AddCheckpointRequest::parse(&bytes) {
                    assert_eq!(req.to_bytes(), bytes, "position {i}");
                }
            }
        }
    }

    #[test]
    fn cosignature_lines() {
        let w = Ed25519Signer::from_seed("w", [3; 32]).unwrap();
        let n = Note::sign("x\n", &[&w]).unwrap();
        let sigs = n.signatures().to_vec();
        let body = format_signature_lines(&[sigs[0].clone(), sigs[0].clone()]);
        let parsed = parse_cosignature_lines(body.as_bytes()).unwrap();
        assert_eq!(parsed, [sigs[0].clone(), sigs[0].clone()]);
        assert_eq!(format_signature_lines(&parsed), body);
        let line = sigs[0].to_line();
        for bad in [
            String::new(),
            "\n".to_owned(),
            line.trim_end().to_owned(),
            format!("{line}\n"),
            format!("\n{line}"),
            format!("{line}garbage\n"),
            line.replace('—', "-"),
            line.repeat(MAX_SIGNATURES + 1),
        ] {
            assert!(parse_cosignature_lines(bad.as_bytes()).is_err(), "{bad:?}");
        }
        assert_eq!(
            parse_cosignature_lines(line.repeat(MAX_SIGNATURES).as_bytes())
                .unwrap()
                .len(),
            MAX_SIGNATURES
        );
    }

    #[test]
    fn size_body() {
        assert_eq!(parse_size_body(b"0\n"), Ok(0));
        assert_eq!(parse_size_body(b"20852014\n"), Ok(20852014));
        assert_eq!(format_size_body(20852014), "20852014\n");
        for bad in [
            &b""[..],
            b"\n",
            b"1",
            b"01\n",
            b"1\n\n",
            b"1\r\n",
            b" 1\n",
            b"+1\n",
            b"18446744073709551616\n",
        ] {
            assert!(parse_size_body(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn monitoring_path() {
        // The well-known SHA-256("a"); the spec example is in tests/notes_vectors.rs.
        assert_eq!(
            origin_hash("a"),
            "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"
        );
        assert_eq!(
            monitoring_checkpoint_path("a"),
            "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb/checkpoint"
        );
    }
}
