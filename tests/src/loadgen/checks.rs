//! The answer checks: the API's replies as decoded here, and what each must satisfy before the
//! request counts as done. Signed checkpoints are opened with the trusted key ([`Trust`]); proofs
//! are checked against the signed tree, their Merkle paths when asked to.
//!
//! Nothing here does I/O: the requests themselves are made in `modes`.

use std::sync::Mutex;

use hyper::body::Bytes;
use sealtrail_spec::Hash;
use sealtrail_spec::checkpoint;
use sealtrail_spec::merkle;
use sealtrail_spec::note::{Ed25519Verifier, Verifier};
use sealtrail_spec::tlog_proof::TlogProof;
use serde::Deserialize;

use super::client::Failure;

/// `GET /v1/log`.
#[derive(Deserialize)]
pub(super) struct LogInfo {
    pub(super) origin: String,
    pub(super) verifier_key: String,
    pub(super) tree_size: u64,
    pub(super) checkpoint: String,
    pub(super) storage_engine: String,
}

/// `POST /v1/entries` (with `wait=checkpoint`, a tlog-proof too).
#[derive(Deserialize)]
pub(super) struct AppendReply {
    pub(super) index: u64,
    pub(super) leaf_hash: String,
    pub(super) tree_size: u64,
    pub(super) tlog_proof: Option<String>,
}

/// `POST /v1/entries/batch`.
#[derive(Deserialize)]
pub(super) struct BatchReply {
    pub(super) first_index: u64,
    pub(super) count: u64,
    pub(super) leaf_hashes: Vec<String>,
    pub(super) tree_size: u64,
}

/// `GET /v1/proof/inclusion`.
#[derive(Deserialize)]
pub(super) struct InclusionReply {
    index: u64,
    tree_size: u64,
    leaf_hash: String,
    root_hash: String,
    proof: Vec<String>,
}

/// `GET /v1/proof/consistency`.
#[derive(Deserialize)]
pub(super) struct ConsistencyReply {
    from: u64,
    to: u64,
    old_root: String,
    new_root: String,
    proof: Vec<String>,
}

/// A signed tree: its size and root hash.
#[derive(Debug, Clone, Copy)]
pub(super) struct Tree {
    pub(super) size: u64,
    pub(super) root: Hash,
}

/// The log's origin and key, and the last checkpoint whose signature was verified.
pub(super) struct Trust {
    origin: String,
    verifier: Ed25519Verifier,
    /// The last checkpoint whose signature was verified, and its tree.
    last_checkpoint: Mutex<Option<(Vec<u8>, Tree)>>,
}

impl Trust {
    pub(super) fn new(origin: String, verifier: Ed25519Verifier) -> Self {
        Trust {
            origin,
            verifier,
            last_checkpoint: Mutex::new(None),
        }
    }

    /// Opens a signed checkpoint, verifying its signature only if it differs from the last one
    /// verified (many answers of one group commit carry the same checkpoint).
    pub(super) fn verified_tree(&self, bytes: &[u8]) -> Result<Tree, Failure> {
        if let Ok(last) = self.last_checkpoint.lock()
            && let Some((b, tree)) = last.as_ref()
            && b.as_slice() == bytes
        {
            return Ok(*tree);
        }
        let tree = self.open_checkpoint(bytes)?;
        if let Ok(mut last) = self.last_checkpoint.lock() {
            *last = Some((bytes.to_vec(), tree));
        }
        Ok(tree)
    }

    /// Opens a signed checkpoint with the trusted key.
    pub(super) fn open_checkpoint(&self, bytes: &[u8]) -> Result<Tree, Failure> {
        let v: [&dyn Verifier; 1] = [&self.verifier];
        let cp = checkpoint::open(bytes, &self.origin, &v)
            .map_err(|e| Failure::verify(format!("checkpoint: {e}")))?;
        Ok(Tree {
            size: cp.checkpoint().size(),
            root: cp.checkpoint().root(),
        })
    }
}

pub(super) fn hash_hex(h: &str) -> Result<Hash, Failure> {
    Hash::from_hex(h).map_err(|e| Failure::bad(format!("leaf_hash {h:?}: {e}")))
}

fn hashes_b64(v: &[String]) -> Result<Vec<Hash>, Failure> {
    v.iter()
        .map(|h| Hash::from_base64(h).map_err(|e| Failure::bad(format!("hash {h:?}: {e}"))))
        .collect()
}

/// A JSON reply body, or a malformed-response failure naming `what`.
pub(super) fn parse<T: for<'de> Deserialize<'de>>(what: &str, body: &Bytes) -> Result<T, Failure> {
    serde_json::from_slice(body).map_err(|e| Failure::bad(format!("{what}: {e}")))
}

/// An append reply: the index is below the tree size; returns the leaf hash.
pub(super) fn append_reply(r: &AppendReply) -> Result<Hash, Failure> {
    if r.index >= r.tree_size {
        return Err(Failure::bad(format!(
            "index {} is not below the tree size {}",
            r.index, r.tree_size
        )));
    }
    hash_hex(&r.leaf_hash)
}

/// A `wait=checkpoint` reply's tlog-proof: for this entry (`index`, `leaf`), in a checkpoint
/// signed with the log's key (its steps 2 and 4: the log's signature on the checkpoint, then
/// inclusion), with the signature checked once per checkpoint.
pub(super) fn tlog_proof(
    trust: &Trust,
    index: u64,
    leaf: &Hash,
    text: Option<&str>,
) -> Result<(), Failure> {
    let text = text.ok_or_else(|| Failure::bad("wait=checkpoint reply without tlog_proof"))?;
    let proof = TlogProof::parse(text.as_bytes())
        .map_err(|e| Failure::verify(format!("tlog-proof: {e}")))?;
    if proof.index() != index {
        return Err(Failure::verify(format!(
            "tlog-proof for index {} in the reply for index {}",
            proof.index(),
            index
        )));
    }
    let tree = trust.verified_tree(proof.checkpoint())?;
    merkle::verify_inclusion(index, tree.size, leaf, proof.path(), &tree.root)
        .map_err(|e| Failure::verify(format!("tlog-proof of {index}: {e}")))
}

/// A batch reply for `n` entries: `n` acknowledged, `n` leaf hashes, all within the tree size.
pub(super) fn batch_reply(r: &BatchReply, n: u64) -> Result<(), Failure> {
    if r.count != n || r.leaf_hashes.len() as u64 != n {
        return Err(Failure::bad(format!(
            "batch of {n} acknowledged as {} entries with {} leaf hashes",
            r.count,
            r.leaf_hashes.len()
        )));
    }
    if r.first_index.checked_add(n).is_none_or(|e| e > r.tree_size) {
        return Err(Failure::bad(format!(
            "entries {}+{n} are not within the tree size {}",
            r.first_index, r.tree_size
        )));
    }
    Ok(())
}

/// A consistency proof from `from` to the signed `tree`: for those sizes, to the signed root;
/// with `check_path`, the proof itself.
pub(super) fn consistency_reply(
    r: &ConsistencyReply,
    from: u64,
    tree: Tree,
    check_path: bool,
) -> Result<(), Failure> {
    let new_root =
        Hash::from_base64(&r.new_root).map_err(|e| Failure::bad(format!("new_root: {e}")))?;
    if r.from != from || r.to != tree.size || new_root != tree.root {
        return Err(Failure::verify(format!(
            "consistency {from}->{}: answered {}->{} with a root other than the signed one",
            tree.size, r.from, r.to
        )));
    }
    if check_path {
        let old_root =
            Hash::from_base64(&r.old_root).map_err(|e| Failure::bad(format!("old_root: {e}")))?;
        merkle::verify_consistency(
            from,
            tree.size,
            &old_root,
            &new_root,
            &hashes_b64(&r.proof)?,
        )
        .map_err(|e| Failure::verify(format!("consistency {from}->{}: {e}", tree.size)))?;
    }
    Ok(())
}

/// An inclusion proof of `index` in the signed `tree`: for that entry and size, to the signed
/// root, for `leaf` if given; with `check_path`, the proof itself.
pub(super) fn inclusion_reply(
    r: &InclusionReply,
    index: u64,
    tree: Tree,
    leaf: Option<Hash>,
    check_path: bool,
) -> Result<(), Failure> {
    let root =
        Hash::from_base64(&r.root_hash).map_err(|e| Failure::bad(format!("root_hash: {e}")))?;
    if r.index != index || r.tree_size != tree.size || root != tree.root {
        return Err(Failure::verify(format!(
            "inclusion of {index} in {}: answered for {} in {} with a root other than the signed one",
            tree.size, r.index, r.tree_size
        )));
    }
    let got = hash_hex(&r.leaf_hash)?;
    if leaf.is_some_and(|l| l != got) {
        return Err(Failure::verify(format!(
            "entry {index}: the proof is for another leaf hash than the one acknowledged or served"
        )));
    }
    if check_path {
        merkle::verify_inclusion(index, tree.size, &got, &hashes_b64(&r.proof)?, &tree.root)
            .map_err(|e| Failure::verify(format!("inclusion of {index} in {}: {e}", tree.size)))?;
    }
    Ok(())
}

/// A level-0 tile served at `path`: `width` hashes of 32 bytes.
pub(super) fn tile_body(path: &str, body: &[u8], width: u64) -> Result<(), Failure> {
    if body.len() as u64 != width * 32 {
        return Err(Failure::bad(format!(
            "{path}: {} bytes, expected {}",
            body.len(),
            width * 32
        )));
    }
    Ok(())
}

/// Hash `k` of a tile already checked with [`tile_body`].
pub(super) fn tile_hash(path: &str, body: &[u8], k: u64) -> Result<Hash, Failure> {
    let at = (k * 32) as usize;
    Hash::from_slice(&body[at..at + 32]).map_err(|e| Failure::bad(format!("{path}: {e}")))
}

#[cfg(test)]
mod tests {
    use sealtrail_spec::checkpoint::{Checkpoint, sign_checkpoint};
    use sealtrail_spec::note::Ed25519Signer;
    use sealtrail_spec::{leaf_hash, node_hash};

    use super::*;

    const ORIGIN: &str = "example.com/loadgen";

    /// A two-entry tree built by hand: leaves `a` and `b`, root `H(a, b)`.
    fn two() -> (Hash, Hash, Tree) {
        let (a, b) = (leaf_hash(b"a"), leaf_hash(b"b"));
        let root = node_hash(&a, &b);
        (a, b, Tree { size: 2, root })
    }

    /// A failure's kind and message.
    fn failed<T>(r: Result<T, Failure>) -> (String, String) {
        match r {
            Ok(_) => panic!("expected a failure"),
            Err(f) => (f.kind, f.message),
        }
    }

    fn inclusion(index: u64, leaf: Hash, root: Hash, proof: &[Hash]) -> InclusionReply {
        InclusionReply {
            index,
            tree_size: 2,
            leaf_hash: leaf.to_hex(),
            root_hash: root.to_base64(),
            proof: proof.iter().map(Hash::to_base64).collect(),
        }
    }

    #[test]
    fn appends_are_within_the_tree_and_name_a_leaf_hash() {
        let (a, _, _) = two();
        let mut r = AppendReply {
            index: 1,
            leaf_hash: a.to_hex(),
            tree_size: 2,
            tlog_proof: None,
        };
        assert_eq!(append_reply(&r).unwrap(), a);
        r.tree_size = 1;
        assert_eq!(
            failed(append_reply(&r)),
            (
                "malformed response".into(),
                "index 1 is not below the tree size 1".into()
            )
        );
        r.tree_size = 2;
        r.leaf_hash = "zz".into();
        assert!(failed(append_reply(&r)).1.starts_with("leaf_hash \"zz\": "));
    }

    #[test]
    fn batches_are_acknowledged_whole_and_within_the_tree() {
        let r = |first_index, count, hashes: usize, tree_size| BatchReply {
            first_index,
            count,
            leaf_hashes: vec![String::new(); hashes],
            tree_size,
        };
        assert!(batch_reply(&r(5, 3, 3, 8), 3).is_ok());
        assert_eq!(
            failed(batch_reply(&r(5, 2, 3, 8), 3)).1,
            "batch of 3 acknowledged as 2 entries with 3 leaf hashes"
        );
        assert_eq!(
            failed(batch_reply(&r(5, 3, 2, 8), 3)).1,
            "batch of 3 acknowledged as 3 entries with 2 leaf hashes"
        );
        assert_eq!(
            failed(batch_reply(&r(6, 3, 3, 8), 3)).1,
            "entries 6+3 are not within the tree size 8"
        );
        assert_eq!(
            failed(batch_reply(&r(u64::MAX, 3, 3, u64::MAX), 3)).0,
            "malformed response",
            "an overflowing range"
        );
    }

    #[test]
    fn inclusion_proofs_must_prove_the_signed_root() {
        let (a, b, tree) = two();
        let good = inclusion(0, a, tree.root, &[b]);
        assert!(inclusion_reply(&good, 0, tree, Some(a), true).is_ok());
        assert!(inclusion_reply(&good, 0, tree, None, true).is_ok());
        let (kind, message) = failed(inclusion_reply(&good, 1, tree, None, false));
        assert_eq!(kind, "verification failed");
        assert_eq!(
            message,
            "inclusion of 1 in 2: answered for 0 in 2 with a root other than the signed one"
        );
        let other_root = inclusion(0, a, b, &[b]);
        assert_eq!(
            failed(inclusion_reply(&other_root, 0, tree, None, false)).0,
            "verification failed"
        );
        assert_eq!(
            failed(inclusion_reply(&good, 0, tree, Some(b), false)).1,
            "entry 0: the proof is for another leaf hash than the one acknowledged or served"
        );
        // A wrong path is caught only when the path is checked.
        let bad_path = inclusion(0, a, tree.root, &[a]);
        assert!(inclusion_reply(&bad_path, 0, tree, None, false).is_ok());
        let (kind, message) = failed(inclusion_reply(&bad_path, 0, tree, None, true));
        assert_eq!(kind, "verification failed");
        assert!(message.starts_with("inclusion of 0 in 2: "), "{message}");
    }

    #[test]
    fn consistency_proofs_must_reach_the_signed_root() {
        let (a, b, tree) = two();
        let reply = |from, new_root: Hash, proof: &[Hash]| ConsistencyReply {
            from,
            to: 2,
            old_root: a.to_base64(),
            new_root: new_root.to_base64(),
            proof: proof.iter().map(Hash::to_base64).collect(),
        };
        assert!(consistency_reply(&reply(1, tree.root, &[b]), 1, tree, true).is_ok());
        assert_eq!(
            failed(consistency_reply(&reply(1, b, &[b]), 1, tree, false)).1,
            "consistency 1->2: answered 1->2 with a root other than the signed one"
        );
        let bad_path = reply(1, tree.root, &[a]);
        assert!(consistency_reply(&bad_path, 1, tree, false).is_ok());
        let (kind, message) = failed(consistency_reply(&bad_path, 1, tree, true));
        assert_eq!(kind, "verification failed");
        assert!(message.starts_with("consistency 1->2: "), "{message}");
    }

    #[test]
    fn tiles_have_their_width_and_give_their_hashes() {
        let (a, b, _) = two();
        let body = [a.as_bytes().as_slice(), b.as_bytes().as_slice()].concat();
        assert!(tile_body("/tile/0/000.p/2", &body, 2).is_ok());
        assert_eq!(tile_hash("/tile/0/000.p/2", &body, 1).unwrap(), b);
        assert_eq!(
            failed(tile_body("/tile/0/000", &body, 256)),
            (
                "malformed response".into(),
                "/tile/0/000: 64 bytes, expected 8192".into()
            )
        );
    }

    #[test]
    fn tlog_proofs_are_verified_with_the_logs_key() {
        let (a, b, tree) = two();
        let signer = Ed25519Signer::from_seed(ORIGIN, [7; 32]).unwrap();
        let trust = Trust::new(ORIGIN.into(), signer.verifier());
        let signed = sign_checkpoint(
            &Checkpoint::new(ORIGIN, tree.size, tree.root).unwrap(),
            &signer,
        )
        .unwrap();
        let text = |index, path: Vec<Hash>| {
            let p = TlogProof::new(index, path, signed.clone(), None).unwrap();
            String::from_utf8(p.to_bytes()).unwrap()
        };
        let good = text(0, vec![b]);
        assert!(tlog_proof(&trust, 0, &a, Some(&good)).is_ok());
        assert_eq!(trust.verified_tree(&signed).unwrap().size, 2);
        assert_eq!(
            failed(tlog_proof(&trust, 0, &a, None)),
            (
                "malformed response".into(),
                "wait=checkpoint reply without tlog_proof".into()
            )
        );
        assert_eq!(
            failed(tlog_proof(&trust, 1, &b, Some(&good))).1,
            "tlog-proof for index 0 in the reply for index 1"
        );
        let (kind, message) = failed(tlog_proof(&trust, 0, &b, Some(&good)));
        assert_eq!(kind, "verification failed");
        assert!(message.starts_with("tlog-proof of 0: "), "{message}");
        assert!(
            failed(tlog_proof(&trust, 0, &a, Some("not a proof")))
                .1
                .starts_with("tlog-proof: ")
        );
        let other = Ed25519Signer::from_seed(ORIGIN, [8; 32]).unwrap();
        let stranger = Trust::new(ORIGIN.into(), other.verifier());
        let (kind, message) = failed(tlog_proof(&stranger, 0, &a, Some(&good)));
        assert_eq!(kind, "verification failed");
        assert!(message.starts_with("checkpoint: "), "{message}");
    }
}
