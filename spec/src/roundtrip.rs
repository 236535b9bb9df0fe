//! Round-trip checks for every parser, shared by the fuzz targets (`fuzz/fuzz_targets/`) and the
//! corpus test (`tests/fuzz_corpus.rs`), so CI runs the fuzz corpora without a nightly toolchain.
//!
//! Each function takes arbitrary bytes, parses them, and when parsing succeeds serializes the
//! value again and asserts that the result is the input (the parsers here are canonical: a value
//! has one spelling). A parser that is not canonical would instead check
//! `parse(serialize(x)) == x`. The functions panic on a violated property, which is how a fuzzer
//! reports a finding; they must never panic otherwise.

use crate::checkpoint::Checkpoint;
use crate::cosignature::cosignature_timestamp;
use crate::envelope::LeafEnvelope;
use crate::note::{Note, NoteSignature};
use crate::policy::Policy;
use crate::record::PrivateRecord;
use crate::tiles::{TilePath, decode_bundle, encode_bundle};
use crate::tlog_proof::TlogProof;
use crate::witness::{AddCheckpointRequest, format_signature_lines, parse_cosignature_lines};

// --- tlog-tiles -------------------------------------------------------------------------------

/// `tile/...` paths, as UTF-8 text: a parsed path prints back as the input.
pub fn tile_path(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(path) = TilePath::parse(text) {
        assert_eq!(path.to_string(), text);
        assert_eq!(TilePath::parse(&path.to_string()), Ok(path));
    }
}

/// Entry bundles: the entries re-encode to the bundle, which also decodes with its width given.
pub fn entry_bundle(data: &[u8]) {
    if let Ok(entries) = decode_bundle(data, None) {
        assert_eq!(encode_bundle(&entries).ok().as_deref(), Some(data));
        let width = u16::try_from(entries.len()).ok();
        if let Some(w) = width.filter(|w| *w > 0) {
            assert_eq!(decode_bundle(data, Some(w)), Ok(entries));
        }
    }
}

// --- the leaf envelope and the private record -------------------------------------------------

/// Leaf envelopes (version 2): a decoded envelope encodes back to the input, with the length
/// `encoded_len` predicts, never longer than `MAX_ENVELOPE_LEN`.
pub fn leaf_envelope(data: &[u8]) {
    if let Ok(envelope) = LeafEnvelope::decode(data) {
        assert_eq!(envelope.encoded_len(), data.len());
        assert!(data.len() <= crate::envelope::MAX_ENVELOPE_LEN);
        assert_eq!(envelope.encode().ok().as_deref(), Some(data));
    }
}

/// Private records in their storage encoding: a decoded record encodes back to the input, and
/// checks against a leaf made from it.
pub fn private_record(data: &[u8]) {
    if let Ok(record) = PrivateRecord::decode(data) {
        assert_eq!(record.encode(), data);
        assert_eq!(record.validate(), Ok(()));
        let leaf = LeafEnvelope {
            time_ms: 0,
            content_type: "application/octet-stream".into(),
            event_type: None,
            payload_size: record.payload.len() as u64,
            commitment: record.commitment(),
        };
        assert_eq!(record.check(&leaf), Ok(()));
    }
}

// --- signed notes, checkpoints, cosignatures, tlog-witness ---------------------------------

/// Signed notes: a parsed note writes back as the input.
pub fn note(data: &[u8]) {
    if let Ok(note) = Note::parse(data) {
        assert_eq!(note.to_bytes(), data);
        assert_eq!(Note::parse(&note.to_bytes()), Ok(note));
    }
}

/// Checkpoint bodies, as UTF-8 text: a parsed checkpoint prints back as the input.
pub fn checkpoint(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(checkpoint) = Checkpoint::parse(text) {
        assert_eq!(checkpoint.to_text(), text);
        assert_eq!(Checkpoint::parse(&checkpoint.to_text()), Ok(checkpoint));
    }
}

/// Signature lines, including the final LF: one line through [`NoteSignature::parse_line`],
/// and the same bytes as a tlog-witness 200 body of one or more lines through
/// [`parse_cosignature_lines`]. Reading a cosignature timestamp never panics.
pub fn cosignature(data: &[u8]) {
    if let Ok(line) = std::str::from_utf8(data)
        && let Ok(sig) = NoteSignature::parse_line(line)
    {
        assert_eq!(sig.to_line(), line);
        let _ = cosignature_timestamp(&sig);
    }
    if let Ok(lines) = parse_cosignature_lines(data) {
        assert_eq!(format_signature_lines(&lines).as_bytes(), data);
    }
}

/// tlog-witness add-checkpoint bodies: a parsed request writes back as the input, and building
/// it from its parts gives the same request.
pub fn witness_request(data: &[u8]) {
    if let Ok(req) = AddCheckpointRequest::parse(data) {
        assert_eq!(req.to_bytes(), data);
        let rebuilt = AddCheckpointRequest::new(
            req.old_size(),
            req.proof().to_vec(),
            req.checkpoint().to_vec(),
        );
        assert_eq!(rebuilt, Ok(req));
    }
}

// --- tlog-proof, tlog-policy -------------------------------------------------------------------

/// tlog-proofs: a parsed proof writes back as the input, and building it from its parts gives
/// the same proof.
pub fn tlog_proof(data: &[u8]) {
    if let Ok(proof) = TlogProof::parse(data) {
        assert_eq!(proof.to_bytes(), data);
        let rebuilt = TlogProof::new(
            proof.index(),
            proof.path().to_vec(),
            proof.checkpoint().to_vec(),
            proof.extra().map(<[u8]>::to_vec),
        );
        assert_eq!(rebuilt, Ok(proof));
    }
}

/// Policy files. [`Policy::to_text`] is not the input (comments, spacing and line order are
/// dropped), so the check is that the written policy parses to an equal policy and writes the
/// same text again.
pub fn policy(data: &[u8]) {
    if let Ok(policy) = Policy::parse(data) {
        let text = policy.to_text();
        let again = Policy::parse(&text);
        assert_eq!(again.as_ref(), Ok(&policy));
        assert_eq!(again.map(|p| p.to_text()), Ok(text));
    }
}

// --- RFC 3161 -----------------------------------------------------------------------------------

/// Time-stamp responses and tokens: a token that parses is a sub-structure of the input, its
/// signed attributes are re-tagged as a SET of the same length, and its certificates and names
/// can be taken apart (or refused) without a panic.
pub fn rfc3161_token(data: &[u8]) {
    use crate::rfc3161::{CertInfo, Token, name_to_string, token_bytes};
    let Ok(token) = token_bytes(data) else {
        return;
    };
    if let Ok(t) = Token::parse(token) {
        assert!(token.len() <= data.len());
        assert_eq!(t.signer.signed_attrs.first(), Some(&0x31));
        assert!(t.tst_info.gen_time_ms < u64::MAX);
        for c in &t.certificates {
            if let Ok(info) = CertInfo::parse(c) {
                let _ = name_to_string(info.subject);
                let _ = info.is(&t.signer.sid);
                let _ = info.check_tsa_usage();
            }
        }
    }
}
