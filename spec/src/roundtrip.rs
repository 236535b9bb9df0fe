//! Round-trip checks for every parser, shared by the fuzz targets (`fuzz/fuzz_targets/`) and the
//! corpus test (`tests/fuzz_corpus.rs`), so CI runs the fuzz corpora without a nightly toolchain.
//!
//! Each function takes arbitrary bytes, parses them, and when parsing succeeds serializes the
//! value again and asserts that the result is the input (the parsers here are canonical: a value
//! has one spelling). A parser that is not canonical would instead check
//! `parse(serialize(x)) == x`. The functions panic on a violated property, which is how a fuzzer
//! reports a finding; they must never panic otherwise.

use crate::envelope::LeafEnvelope;
use crate::tiles::{TilePath, decode_bundle, encode_bundle};

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

// --- the leaf envelope ------------------------------------------------------------------------

/// Leaf envelopes: a decoded envelope encodes back to the input, with the length
/// `encoded_len` predicts.
pub fn leaf_envelope(data: &[u8]) {
    if let Ok(envelope) = LeafEnvelope::decode(data) {
        assert_eq!(envelope.encoded_len(), data.len());
        assert_eq!(envelope.encode().ok().as_deref(), Some(data));
    }
}

// --- signed notes, checkpoints, cosignatures, tlog-witness (to come) --------------------------

// --- tlog-proof, tlog-policy (to come) ---------------------------------------------------------
