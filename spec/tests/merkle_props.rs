//! The Merkle maths against a naive recursive RFC 6962 implementation (written from the RFC's
//! definitions, section 2.1) for every size up to 300, against the rs_merkle and ct-merkle crates as
//! independent oracles, proofs out of hash tiles, and negative cases. Tree extension is tested in
//! `edge.rs`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::needless_range_loop
)]

mod common;

use common::*;
use sealtrail_spec::merkle::{
    LeafHashes, VerifyError, consistency_proof, inclusion_proof, tree_hash, verify_consistency,
    verify_inclusion,
};
use sealtrail_spec::tiles::TileHashReader;
use sealtrail_spec::{EMPTY_ROOT, Hash, node_hash};

const MAX_N: usize = 300;

// ---- Naive RFC 6962 section 2.1, straight from the definitions (`mth` is in `common`) ----

fn path(m: usize, d: &[Hash]) -> Vec<Hash> {
    let n = d.len();
    if n <= 1 {
        return vec![];
    }
    let k = k_of(n);
    if m < k {
        let mut p = path(m, &d[..k]);
        p.push(mth(&d[k..]));
        p
    } else {
        let mut p = path(m - k, &d[k..]);
        p.push(mth(&d[..k]));
        p
    }
}

fn subproof(m: usize, d: &[Hash], b: bool) -> Vec<Hash> {
    let n = d.len();
    if m == n {
        return if b { vec![] } else { vec![mth(d)] };
    }
    let k = k_of(n);
    if m <= k {
        let mut p = subproof(m, &d[..k], b);
        p.push(mth(&d[k..]));
        p
    } else {
        let mut p = subproof(m - k, &d[k..], false);
        p.push(mth(&d[..k]));
        p
    }
}

#[test]
fn matches_naive_rfc6962_for_every_size_to_300() {
    let leaves = leaf_hashes(MAX_N as u64);
    let prefix_roots: Vec<Hash> = (0..=MAX_N).map(|n| mth(&leaves[..n])).collect();
    for n in 0..=MAX_N {
        let d = &leaves[..n];
        let root = prefix_roots[n];
        assert_eq!(tree_hash(d), root, "root {n}");
        for m in 0..n {
            let want = path(m, d);
            let got = inclusion_proof(m as u64, n as u64, &mut LeafHashes(d)).unwrap();
            assert_eq!(got, want, "PATH({m}, {n})");
            verify_inclusion(m as u64, n as u64, &d[m], &got, &root).unwrap();
        }
        for m in 1..=n {
            let want = subproof(m, d, true);
            let got = consistency_proof(m as u64, n as u64, &mut LeafHashes(d)).unwrap();
            assert_eq!(got, want, "PROOF({m}, {n})");
            verify_consistency(m as u64, n as u64, &prefix_roots[m], &root, &got).unwrap();
        }
        verify_consistency(0, n as u64, &EMPTY_ROOT, &root, &[]).unwrap();
    }
}

// ---- rs_merkle: roots and inclusion paths, with an RFC 6962 node hasher ----

#[derive(Clone)]
struct Rfc6962;

impl rs_merkle::Hasher for Rfc6962 {
    type Hash = [u8; 32];
    fn hash(data: &[u8]) -> [u8; 32] {
        sealtrail_spec::hash::sha256(data)
    }
    fn concat_and_hash(left: &[u8; 32], right: Option<&[u8; 32]>) -> [u8; 32] {
        match right {
            Some(r) => node_hash(&Hash(*left), &Hash(*r)).0,
            None => *left, // a lone left node is promoted, as in a left-balanced tree
        }
    }
}

#[test]
fn matches_rs_merkle_roots_and_paths() {
    let leaves = leaf_hashes(MAX_N as u64);
    for n in 1..=MAX_N {
        let raw: Vec<[u8; 32]> = leaves[..n].iter().map(|h| h.0).collect();
        let tree = rs_merkle::MerkleTree::<Rfc6962>::from_leaves(&raw);
        assert_eq!(tree.root(), Some(tree_hash(&leaves[..n]).0), "root {n}");
        for m in 0..n {
            let theirs: Vec<Hash> = tree
                .proof(&[m])
                .proof_hashes()
                .iter()
                .map(|h| Hash(*h))
                .collect();
            let ours = inclusion_proof(m as u64, n as u64, &mut LeafHashes(&leaves[..n])).unwrap();
            assert_eq!(ours, theirs, "PATH({m}, {n})");
        }
    }
}

// ---- ct-merkle: consistency proofs (and its verifier on our proofs) ----

#[test]
fn matches_ct_merkle_consistency_proofs() {
    type T = ct_merkle::mem_backed_tree::MemoryBackedTree<sha2_11::Sha256, Vec<u8>>;
    const N: u64 = 130;
    let leaves = leaf_hashes(N);
    let mut tree = T::new();
    let mut roots = vec![];
    for n in 1..=N {
        tree.push(leaf_data(n - 1));
        let root = tree.root();
        assert_eq!(
            root.as_bytes().as_slice(),
            tree_hash(&leaves[..n as usize]).0
        );
        roots.push(tree.root());
        for old in 1..n {
            let theirs = tree.prove_consistency((n - old) as usize);
            let ours = consistency_proof(old, n, &mut LeafHashes(&leaves[..n as usize])).unwrap();
            let ours_bytes: Vec<u8> = ours.iter().flat_map(|h| h.0).collect();
            assert_eq!(ours_bytes, theirs.as_bytes(), "PROOF({old}, {n})");
            let ours_ct =
                ct_merkle::ConsistencyProof::<sha2_11::Sha256>::try_from_bytes(ours_bytes).unwrap();
            root.verify_consistency(&roots[old as usize - 1], &ours_ct)
                .unwrap();
        }
    }
}

// ---- Proofs served out of hash tiles ----

#[test]
fn proofs_from_tiles_equal_proofs_from_leaves() {
    let leaves = leaf_hashes(1100);
    let (mut store, _) = MemTiles::build(&leaves, &[100, 157, 843]);
    for n in [1u64, 255, 256, 257, 511, 512, 513, 1024, 1100] {
        let d = &leaves[..n as usize];
        for m in (0..n).step_by(37).chain([n - 1]) {
            let mut r = TileHashReader::new(n, &mut store);
            assert_eq!(inclusion_proof(m, n, &mut r).unwrap(), path(m as usize, d));
            let mut r = TileHashReader::new(n, &mut store);
            assert_eq!(
                consistency_proof(m + 1, n, &mut r).unwrap(),
                subproof(m as usize + 1, d, true)
            );
        }
    }
    // A node outside the tree size is refused, never read from a wider stored tile.
    let mut r = TileHashReader::new(10, &mut store);
    assert!(matches!(
        inclusion_proof(5, 20, &mut r),
        Err(sealtrail_spec::merkle::ProofError::Reader(
            sealtrail_spec::tiles::TileReadError::OutOfTree(..)
        ))
    ));
}

// ---- Negative cases: every single-bit flip, wrong index/size, truncated/extended proofs ----

fn flips(h: &Hash) -> impl Iterator<Item = Hash> + '_ {
    (0..256).map(move |bit| {
        let mut x = *h;
        x.0[bit / 8] ^= 1 << (bit % 8);
        x
    })
}

#[test]
fn inclusion_rejects_every_mutation() {
    let leaves = leaf_hashes(41);
    for n in 1..=40u64 {
        let d = &leaves[..n as usize];
        let root = tree_hash(d);
        for m in 0..n {
            let leaf = d[m as usize];
            let proof = path(m as usize, d);
            for i in 0..proof.len() {
                for bad in flips(&proof[i]) {
                    let mut p = proof.clone();
                    p[i] = bad;
                    assert!(verify_inclusion(m, n, &leaf, &p, &root).is_err());
                }
            }
            for bad in flips(&leaf).step_by(17) {
                assert!(verify_inclusion(m, n, &bad, &proof, &root).is_err());
            }
            for bad in flips(&root).step_by(17) {
                assert!(verify_inclusion(m, n, &leaf, &proof, &bad).is_err());
            }
            if n > 1 {
                let other = (m + 1) % n;
                assert!(
                    verify_inclusion(other, n, &leaf, &proof, &root).is_err(),
                    "index {other} for {m}/{n}"
                );
            }
            // A wrong size is caught against the true root of that size unless the leaf's path
            // really is the same in both trees (RFC 6962 proofs do not otherwise bind the size).
            for other in [n - 1, n + 1] {
                if other > m {
                    let d2 = &leaves[..other as usize];
                    let ok = verify_inclusion(m, other, &leaf, &proof, &tree_hash(d2)).is_ok();
                    assert_eq!(
                        ok,
                        path(m as usize, d2) == proof,
                        "size {other} for {m}/{n}"
                    );
                }
            }
            assert!(verify_inclusion(n, n, &leaf, &proof, &root).is_err());
            assert!(verify_inclusion(u64::MAX, n, &leaf, &proof, &root).is_err());
            if !proof.is_empty() {
                assert!(verify_inclusion(m, n, &leaf, &proof[..proof.len() - 1], &root).is_err());
                let mut rev = proof.clone();
                rev.reverse();
                if rev != proof {
                    assert!(verify_inclusion(m, n, &leaf, &rev, &root).is_err());
                }
            }
            let mut longer = proof.clone();
            longer.push(root);
            assert!(matches!(
                verify_inclusion(m, n, &leaf, &longer, &root),
                Err(VerifyError::ProofLength { .. })
            ));
            let mut prefixed = vec![leaf];
            prefixed.extend_from_slice(&proof);
            assert!(verify_inclusion(m, n, &leaf, &prefixed, &root).is_err());
        }
    }
    assert!(verify_inclusion(0, 0, &EMPTY_ROOT, &[], &EMPTY_ROOT).is_err());
}

#[test]
fn consistency_rejects_every_mutation() {
    let leaves = leaf_hashes(41);
    for n in 1..=40u64 {
        let r2 = tree_hash(&leaves[..n as usize]);
        for m in 1..=n {
            let r1 = tree_hash(&leaves[..m as usize]);
            let proof = subproof(m as usize, &leaves[..n as usize], true);
            for i in 0..proof.len() {
                for bad in flips(&proof[i]) {
                    let mut p = proof.clone();
                    p[i] = bad;
                    assert!(
                        verify_consistency(m, n, &r1, &r2, &p).is_err(),
                        "flip in PROOF({m},{n})[{i}]"
                    );
                }
            }
            for bad in flips(&r1).step_by(13) {
                assert!(verify_consistency(m, n, &bad, &r2, &proof).is_err());
            }
            for bad in flips(&r2).step_by(13) {
                assert!(verify_consistency(m, n, &r1, &bad, &proof).is_err());
            }
            let r2_next = tree_hash(&leaves[..n as usize + 1]);
            let ok = verify_consistency(m, n + 1, &r1, &r2_next, &proof).is_ok();
            assert_eq!(
                ok,
                subproof(m as usize, &leaves[..n as usize + 1], true) == proof
            );
            if m > 1 {
                let r1_prev = tree_hash(&leaves[..m as usize - 1]);
                let ok = verify_consistency(m - 1, n, &r1_prev, &r2, &proof).is_ok();
                assert_eq!(
                    ok,
                    subproof(m as usize - 1, &leaves[..n as usize], true) == proof
                );
            }
            assert!(
                verify_consistency(n + 1, n, &r2, &r2, &[]).is_err(),
                "m > n"
            );
            if !proof.is_empty() {
                assert!(verify_consistency(m, n, &r1, &r2, &proof[1..]).is_err());
                assert!(verify_consistency(m, n, &r1, &r2, &proof[..proof.len() - 1]).is_err());
            }
            let mut longer = proof.clone();
            longer.push(r2);
            assert!(verify_consistency(m, n, &r1, &r2, &longer).is_err());
        }
    }
    // Size 0: empty proof and the empty root only.
    let r = tree_hash(&leaves[..5]);
    verify_consistency(0, 0, &EMPTY_ROOT, &EMPTY_ROOT, &[]).unwrap();
    verify_consistency(0, 5, &EMPTY_ROOT, &r, &[]).unwrap();
    assert!(verify_consistency(0, 5, &EMPTY_ROOT, &r, &[r]).is_err());
    assert!(verify_consistency(0, 5, &r, &r, &[]).is_err());
    // Equal sizes: equal roots, empty proof.
    verify_consistency(5, 5, &r, &r, &[]).unwrap();
    assert!(verify_consistency(5, 5, &r, &EMPTY_ROOT, &[]).is_err());
    assert!(verify_consistency(5, 5, &r, &r, &[r]).is_err());
}
