//! The Merkle maths against vectors made by independent implementations: Go's
//! golang.org/x/mod/sumdb/tlog (`spec/tests/vectors/`), the RFC 6962 / CT reference vectors, and the
//! published examples collected in `c2sp-digest.md` section 8.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::needless_range_loop
)]

mod common;

use std::collections::BTreeSet;

use common::*;
use sealtrail_spec::merkle::{
    LeafHashes, consistency_proof, inclusion_proof, tree_hash, tree_root, verify_consistency,
    verify_inclusion,
};
use sealtrail_spec::tiles::{
    TileHashReader, TilePath, all_bundles, all_tiles, encode_bundle, encode_hash_tile,
};
use sealtrail_spec::{EMPTY_ROOT, Hash, hash::sha256, leaf_hash};

const BIG: u64 = 70000;

/// The 70000-leaf vector tree, built through tree extension in uneven batches.
fn big_tree() -> (MemTiles, Hash) {
    let leaves = leaf_hashes(BIG);
    MemTiles::build(&leaves, &[1, 254, 1, 300, 65000, 17, 4000])
}

#[test]
fn leaf_hashes_match_go() {
    let v = load("leaves.json");
    for case in v.as_array().unwrap() {
        let data = hex::decode(case["data_hex"].as_str().unwrap()).unwrap();
        assert_eq!(data, leaf_data(u(&case["index"])));
        assert_eq!(leaf_hash(&data), hx(&case["leaf_hash_hex"]));
    }
}

#[test]
fn roots_match_go() {
    let v = load("roots.json");
    let leaves = leaf_hashes(BIG);
    let (mut tiles, big_root) = big_tree();
    let mut checked = 0;
    for case in v.as_array().unwrap() {
        let size = u(&case["size"]);
        let want = hx(&case["root_hex"]);
        assert_eq!(
            Hash::from_base64(case["root_b64"].as_str().unwrap()),
            Ok(want)
        );
        assert_eq!(
            tree_hash(&leaves[..size as usize]),
            want,
            "tree_hash({size})"
        );
        // The same root read back out of the tiles the extension wrote for size 70000.
        let mut reader = TileHashReader::new(size, &mut tiles);
        assert_eq!(
            tree_root(size, &mut reader).unwrap(),
            want,
            "tiles root({size})"
        );
        checked += 1;
    }
    assert_eq!(checked, 63);
    assert_eq!(
        big_root.to_hex(),
        "881c2f4c7c3b60c864d574aab91746a167220c520a2f833d86eee6dfefb9accb"
    );
    assert_eq!(tree_hash(&[]), EMPTY_ROOT);
}

#[test]
fn inclusion_proofs_match_go() {
    let v = load("inclusion.json");
    let leaves = leaf_hashes(BIG);
    let (mut tiles, _) = big_tree();
    let cases = v.as_array().unwrap();
    assert_eq!(cases.len(), 1321);
    for case in cases {
        let (index, size) = (u(&case["index"]), u(&case["size"]));
        let (leaf, root, proof) = (
            hx(&case["leaf_hash_hex"]),
            hx(&case["root_hex"]),
            hashes(&case["proof_hex"]),
        );
        assert_eq!(leaf, leaves[index as usize]);
        verify_inclusion(index, size, &leaf, &proof, &root)
            .unwrap_or_else(|e| panic!("Go proof ({index}, {size}) rejected: {e}"));
        let mut reader = TileHashReader::new(size, &mut tiles);
        let ours = inclusion_proof(index, size, &mut reader).unwrap();
        assert_eq!(ours, proof, "inclusion ({index}, {size})");
        if size <= 4096 {
            let mem =
                inclusion_proof(index, size, &mut LeafHashes(&leaves[..size as usize])).unwrap();
            assert_eq!(mem, proof);
        }
    }
}

#[test]
fn consistency_proofs_match_go() {
    let v = load("consistency.json");
    let (mut tiles, _) = big_tree();
    let cases = v.as_array().unwrap();
    assert_eq!(cases.len(), 1326);
    for case in cases {
        let (old, new) = (u(&case["old_size"]), u(&case["new_size"]));
        let (r1, r2, proof) = (
            hx(&case["old_root_hex"]),
            hx(&case["new_root_hex"]),
            hashes(&case["proof_hex"]),
        );
        verify_consistency(old, new, &r1, &r2, &proof)
            .unwrap_or_else(|e| panic!("Go proof ({old}, {new}) rejected: {e}"));
        let mut reader = TileHashReader::new(new, &mut tiles);
        assert_eq!(
            consistency_proof(old, new, &mut reader).unwrap(),
            proof,
            "consistency ({old}, {new})"
        );
    }
}

#[test]
fn tiles_and_bundles_of_70000_match_go() {
    let v = load("tiles_70000.json");
    let (tiles, _) = big_tree();
    let mut seen = BTreeSet::new();
    for case in v.as_array().unwrap() {
        let path = case["path"].as_str().unwrap();
        let width = u(&case["width"]) as usize;
        let bytes = match TilePath::parse(path).unwrap() {
            TilePath::Hash(id) => {
                assert_eq!(usize::from(id.width), width);
                let stored = &tiles.tiles[&(id.level, id.index)];
                assert_eq!(stored.len(), width, "{path}: stored width");
                encode_hash_tile(stored)
            }
            TilePath::Entries(b) => {
                assert_eq!(usize::from(b.width), width);
                let entries: Vec<Vec<u8>> = (b.start()..b.start() + width as u64)
                    .map(leaf_data)
                    .collect();
                encode_bundle(&entries).unwrap()
            }
        };
        assert_eq!(bytes.len() as u64, u(&case["bytes"]), "{path}: length");
        assert_eq!(
            Hash(sha256(&bytes)),
            hx(&case["sha256_hex"]),
            "{path}: digest"
        );
        seen.insert(path.to_owned());
    }
    // Exactly the tiles our path enumeration says a size-70000 log serves, and no others.
    let ours: BTreeSet<String> = all_tiles(BIG)
        .iter()
        .map(|t| t.path())
        .chain(all_bundles(BIG).iter().map(|b| b.path()))
        .collect();
    assert_eq!(ours, seen);
    assert_eq!(tiles.tiles.len(), all_tiles(BIG).len());
}

#[test]
fn rfc6962_reference_vectors() {
    let v = load("rfc6962_reference.json");
    let leaves: Vec<Hash> = v["leaves_hex"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| leaf_hash(&hex::decode(l.as_str().unwrap()).unwrap()))
        .collect();
    let roots = hashes(&v["roots_hex_by_size"]);
    for (n, root) in roots.iter().enumerate() {
        assert_eq!(tree_hash(&leaves[..n]), *root, "root of size {n}");
    }
    for case in v["inclusion"].as_array().unwrap() {
        let (i, n, proof) = (u(&case["A"]), u(&case["B"]), hashes(&case["Proof"]));
        assert_eq!(
            inclusion_proof(i, n, &mut LeafHashes(&leaves[..n as usize])).unwrap(),
            proof
        );
        verify_inclusion(i, n, &leaves[i as usize], &proof, &roots[n as usize]).unwrap();
    }
    for case in v["consistency"].as_array().unwrap() {
        let (m, n, proof) = (u(&case["A"]), u(&case["B"]), hashes(&case["Proof"]));
        assert_eq!(
            consistency_proof(m, n, &mut LeafHashes(&leaves[..n as usize])).unwrap(),
            proof
        );
        verify_consistency(m, n, &roots[m as usize], &roots[n as usize], &proof).unwrap();
    }
}

fn h(hex: &str) -> Hash {
    Hash::from_hex(hex).unwrap()
}

#[test]
fn published_ct_examples() {
    // c2sp-digest 8.1/8.2: interior nodes and proofs over the CT test leaves, written out in full.
    let data = [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ];
    let leaves: Vec<Hash> = data
        .iter()
        .map(|d| leaf_hash(&hex::decode(d).unwrap()))
        .collect();
    let l = |i: usize| leaves[i];
    let n23 = h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e");
    let n45 = h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a");
    let n67 = h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0");
    let n03 = h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7");
    let n47 = h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4");
    let n46 = h("837dbb152e9b079010717e84e865da4ebc0fa198a806d59d31bf15accef22d0e");
    let n01 = h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125");
    let incl =
        |i: u64, n: u64| inclusion_proof(i, n, &mut LeafHashes(&leaves[..n as usize])).unwrap();
    let cons =
        |m: u64, n: u64| consistency_proof(m, n, &mut LeafHashes(&leaves[..n as usize])).unwrap();
    assert_eq!(incl(0, 8), [l(1), n23, n47]);
    assert_eq!(incl(5, 8), [l(4), n67, n03]);
    assert_eq!(incl(7, 8), [l(6), n45, n03]);
    assert_eq!(incl(2, 3), [n01]);
    assert_eq!(incl(1, 5), [l(0), n23, l(4)]);
    assert_eq!(incl(0, 7), [l(1), n23, n46]);
    assert_eq!(incl(6, 7), [n45, n03]);
    assert_eq!(cons(1, 8), [l(1), n23, n47]);
    assert_eq!(cons(6, 8), [n45, n67, n03]);
    assert_eq!(cons(2, 5), [n23, l(4)]);
    assert_eq!(cons(6, 7), [n45, l(6), n03]);
    assert_eq!(cons(3, 7), [l(2), l(3), n01, n46]);
    assert_eq!(cons(4, 7), [n46]);
    assert_eq!(cons(7, 8), [l(6), l(7), n45, n03]);
    assert!(cons(5, 5).is_empty());
    // transparency-dev/merkle testdata/consistency/3/happy-path.json (base64).
    let b = |s: &str| Hash::from_base64(s).unwrap();
    verify_consistency(
        2,
        5,
        &b("+sVCA+fMaWzw38tCySodnbr3CtnmIfS9jZhmLwDjwSU="),
        &b("Tju7H3tHjc/nH7YxYxUZo7yhLJrvyhYSv85ME6hiZNQ="),
        &[
            b("Xwg/ChozygdqlSeYMlgNs+DvRYS9/x9UyKNg9Q3jAx4="),
            b("vBoGQ7EuTS18d5GPROD095qDi2z57FtcKD4fTYhZnms="),
        ],
    )
    .unwrap();
    // Single-entry tree: root = leaf, empty proof.
    let one = b("DTrtAjFI/9KiWfvQzcf7PPl1ZYdg03dbgq9vkKrMLfw=");
    verify_inclusion(0, 1, &one, &[], &one).unwrap();
    assert!(verify_inclusion(0, 1, &one, &[], &Hash::default()).is_err());
    assert!(verify_inclusion(0, 1, &Hash::default(), &[], &one).is_err());
}

#[test]
fn litewitness_synthetic_tree() {
    // c2sp-digest 8.4: leaf hashes given directly.
    let mut leaves = [Hash::default(); 3];
    for (i, l) in leaves.iter_mut().enumerate() {
        l.0[0] = 0x2a;
        l.0[1] = i as u8;
    }
    let b = |s: &str| Hash::from_base64(s).unwrap();
    assert_eq!(
        tree_hash(&leaves[..1]),
        b("KgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
    );
    let root3 = b("RcCI1Nk56ZcSmIEfIn0SleqtV7uvrlXNccFx595Iwl0=");
    assert_eq!(tree_hash(&leaves), root3);
    let proof = consistency_proof(1, 3, &mut LeafHashes(&leaves)).unwrap();
    assert_eq!(proof, [leaves[1], leaves[2]]);
    verify_consistency(1, 3, &leaves[0], &root3, &proof).unwrap();
}
