//! `sealtrail-spec`: the formats and Merkle maths of sealtrail, with no I/O, no async and no clock.
//!
//! One module per format. Everything here is deterministic and takes its inputs as values,
//! readers or closures, so the server, the witness and the verifier share one implementation and
//! tests can check it against independent ones.
//!
//! | module | what |
//! |---|---|
//! | [`hash`] | RFC 6962 leaf and node hashing, the [`Hash`](struct@Hash) type |
//! | [`merkle`] | tree roots, inclusion and consistency proofs (generate and verify) |
//! | [`tiles`] | C2SP tlog-tiles: tile coordinates, paths, widths, tile and bundle encodings |
//! | [`edge`] | the tiled right edge: appending leaves gives the new root and every changed hash tile |
//! | [`envelope`] | the leaf envelope: deterministic CBOR entry bytes, public fields only (ours, `docs/leaf-envelope.md`) |
//! | [`record`] | the private record (salt, principal, payload) and the commitment the leaf carries |
//! | [`note`] | C2SP signed-note: parse and write notes, key IDs, Ed25519 keys, verification |
//! | [`checkpoint`] | C2SP tlog-checkpoint: the checkpoint body and proof-carrying [`checkpoint::VerifiedCheckpoint`] |
//! | [`cosignature`] | C2SP tlog-cosignature v1: timestamped Ed25519 cosignatures (type `0x04`) |
//! | [`witness`] | C2SP tlog-witness wire format: add-checkpoint request, cosignature lines, `text/x.tlog.size` |
//! | [`tlog_proof`] | C2SP tlog-proof v1: offline inclusion proofs, verified into [`tlog_proof::VerifiedProof`] |
//! | [`evidence`] | evidence packages: file names and the log's signed statement over a manifest (ours, `docs/evidence-package.md`) |
//! | [`policy`] | C2SP tlog-policy: trusted logs and witnesses, quorum groups, checkpoint evaluation |
//! | [`rfc3161`] | RFC 3161 time-stamp requests, responses and tokens (structure; signatures are checked by the verifier) |
//! | [`der`] | the strict DER reader under [`rfc3161`] |

pub mod edge;
pub mod envelope;
pub mod hash;
pub mod merkle;
pub mod record;
pub mod tiles;

pub mod checkpoint;
pub mod cosignature;
pub mod der;
pub mod evidence;
pub mod note;
pub mod policy;
pub mod rfc3161;
pub mod tlog_proof;
pub mod witness;

#[doc(hidden)]
pub mod roundtrip;

mod text;

pub use hash::{EMPTY_ROOT, Hash, leaf_hash, node_hash};
/// The strict C2SP decimal rule (ASCII digits, no sign, no leading zeros but `0`), for callers
/// that parse sizes and indices outside the formats here (URLs, query strings).
pub use text::{escape_display, parse_decimal, parse_time_ms, rfc3339_ms, to_hex};
