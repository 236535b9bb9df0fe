//! RFC 6962 / RFC 9162 Merkle tree maths: tree hashes, inclusion and consistency proof
//! generation over a [`HashReader`], and proof verification.
//!
//! Proof generation is split into a pure *plan* (which perfect subtrees a proof needs, as
//! [`Node`]s) and one batched read, so a storage-backed reader can fetch each tile once. Proofs are
//! in RFC 6962 order: the hash nearest the leaf first. Verification follows RFC 9162 sections
//! 2.1.3.2 and 2.1.4.2 step by step, with the C2SP conventions for the cases the RFC leaves open
//! (size 0 and equal sizes; see `c2sp-digest.md` section 1.5). Out of scope: where hashes are
//! stored (see [`crate::tiles`]) and how trees grow (see [`crate::edge`]).

use crate::hash::{EMPTY_ROOT, Hash, node_hash};

/// A perfect subtree: `2^height` leaves starting at leaf `index * 2^height`. Perfect subtrees never
/// change once the tree covers them, which is what makes them cacheable and tile-addressable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Node {
    /// Height above the leaves; 0 is a leaf hash.
    pub height: u8,
    /// Position among the nodes of this height, counting from 0 on the left.
    pub index: u64,
}

impl Node {
    /// First leaf covered.
    pub fn start(&self) -> u64 {
        self.index << self.height
    }

    /// One past the last leaf covered.
    pub fn end(&self) -> u64 {
        (self.index + 1) << self.height
    }
}

/// Reads hashes of perfect subtrees of the tree being proven.
///
/// Contract: callers only ask for nodes that lie wholly inside the tree size they are working with,
/// so an implementation backed by an append-only store always has them. `read_nodes` returns one
/// hash per requested node, in request order (callers check the count and report
/// [`ProofError::ShortRead`] otherwise). Readers are not trusted for truth: a wrong hash yields a
/// proof that fails verification, never a panic.
pub trait HashReader {
    /// The reader's own failure (I/O, missing tile, corrupt tile).
    type Error;

    /// Returns the hash of each node in `nodes`, in order.
    fn read_nodes(&mut self, nodes: &[Node]) -> Result<Vec<Hash>, Self::Error>;
}

/// Why a proof could not be generated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError<E> {
    /// The request itself is impossible (index past the tree, sizes out of order, size 0).
    #[error("{0}")]
    Range(#[from] RangeError),
    /// The hash reader failed.
    #[error("reading hashes: {0}")]
    Reader(E),
    /// The hash reader returned the wrong number of hashes.
    #[error("hash reader returned {got} hashes for {want} nodes")]
    ShortRead {
        /// Hashes requested.
        want: usize,
        /// Hashes returned.
        got: usize,
    },
}

/// An impossible proof request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    /// Inclusion asked for a leaf at or past the end of the tree.
    #[error("leaf index {index} is not below tree size {size}")]
    IndexOutOfRange {
        /// The leaf index asked for.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// Consistency asked from a larger tree to a smaller one.
    #[error("old size {old} is larger than new size {new}")]
    SizesOutOfOrder {
        /// The first (old) size.
        old: u64,
        /// The second (new) size.
        new: u64,
    },
}

/// Why a proof did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The claim is impossible before looking at any hash.
    #[error("{0}")]
    Range(#[from] RangeError),
    /// The proof has the wrong number of hashes for these sizes.
    #[error("proof has {got} hashes; sizes {first} and {second} need {want}")]
    ProofLength {
        /// Hashes in the proof.
        got: usize,
        /// Hashes these sizes need.
        want: usize,
        /// Leaf index (inclusion) or old size (consistency).
        first: u64,
        /// Tree size (inclusion) or new size (consistency).
        second: u64,
    },
    /// The hashes do not lead to the expected root(s).
    #[error("proof does not match the {which} root")]
    RootMismatch {
        /// Which root failed: "tree", "old" or "new".
        which: &'static str,
    },
}

/// The largest power of two strictly below `n` (`n >= 2`), RFC 6962's split point `k`.
fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// The perfect subtrees that make up the range `[start, end)`, largest first. The range must be
/// one RFC 6962 recursion produces: `start` a multiple of the largest power of two not above
/// `end - start` (always true for `[0, n)` and for the right part of any split).
pub fn range_nodes(start: u64, end: u64) -> Vec<Node> {
    let mut nodes = Vec::new();
    let mut at = start;
    let len = end - start;
    for height in (0..64u8).rev() {
        if len & (1 << height) != 0 {
            nodes.push(Node {
                height,
                index: at >> height,
            });
            at += 1 << height;
        }
    }
    nodes
}

/// Folds the largest-first perfect subtrees of a range into the range's MTH, right to left.
pub(crate) fn fold_range(hashes: &[Hash]) -> Hash {
    let mut iter = hashes.iter().rev();
    let Some(last) = iter.next() else {
        return EMPTY_ROOT;
    };
    iter.fold(*last, |acc, left| node_hash(left, &acc))
}

/// The ranges `[a, b)` whose MTHs make up `PATH(index, D[size])`, leaf sibling first.
fn inclusion_ranges(index: u64, size: u64) -> Vec<(u64, u64)> {
    let (mut lo, mut hi) = (0, size);
    let mut out = Vec::new();
    while hi - lo > 1 {
        let k = split_point(hi - lo);
        if index < lo + k {
            out.push((lo + k, hi));
            hi = lo + k;
        } else {
            out.push((lo, lo + k));
            lo += k;
        }
    }
    out.reverse();
    out
}

/// The ranges whose MTHs make up `PROOF(old, D[new])` = `SUBPROOF(old, D[new], true)`,
/// for `0 < old < new`, in proof order.
fn consistency_ranges(old: u64, new: u64) -> Vec<(u64, u64)> {
    let (mut lo, mut hi) = (0, new);
    let mut whole = true; // the RFC's `b`: is the old tree the whole current subtree so far?
    let mut out = Vec::new();
    while old != hi {
        let k = split_point(hi - lo);
        if old <= lo + k {
            out.push((lo + k, hi));
            hi = lo + k;
        } else {
            out.push((lo, lo + k));
            lo += k;
            whole = false;
        }
    }
    if !whole {
        out.push((lo, hi));
    }
    out.reverse();
    out
}

/// A plan: for each proof hash, which slice of `nodes` folds into it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofPlan {
    /// Every node to read, in order.
    pub nodes: Vec<Node>,
    /// For each proof hash, the number of consecutive `nodes` that fold into it.
    pub spans: Vec<usize>,
}

impl ProofPlan {
    fn from_ranges(ranges: &[(u64, u64)]) -> Self {
        let mut nodes = Vec::new();
        let mut spans = Vec::with_capacity(ranges.len());
        for &(a, b) in ranges {
            let part = range_nodes(a, b);
            spans.push(part.len());
            nodes.extend(part);
        }
        ProofPlan { nodes, spans }
    }

    /// Reads the plan's nodes and folds them into proof hashes.
    pub fn execute<R: HashReader + ?Sized>(
        &self,
        reader: &mut R,
    ) -> Result<Vec<Hash>, ProofError<R::Error>> {
        let hashes = reader.read_nodes(&self.nodes).map_err(ProofError::Reader)?;
        if hashes.len() != self.nodes.len() {
            return Err(ProofError::ShortRead {
                want: self.nodes.len(),
                got: hashes.len(),
            });
        }
        let mut rest = hashes.as_slice();
        let mut out = Vec::with_capacity(self.spans.len());
        for &n in &self.spans {
            let (part, tail) = rest.split_at(n);
            out.push(fold_range(part));
            rest = tail;
        }
        Ok(out)
    }
}

/// The plan for the inclusion proof of leaf `index` in a tree of `size` leaves.
pub fn inclusion_plan(index: u64, size: u64) -> Result<ProofPlan, RangeError> {
    if index >= size {
        return Err(RangeError::IndexOutOfRange { index, size });
    }
    Ok(ProofPlan::from_ranges(&inclusion_ranges(index, size)))
}

/// The plan for the consistency proof from size `old` to size `new`. Empty for `old == 0` and
/// `old == new` (the C2SP conventions: nothing needs proving).
pub fn consistency_plan(old: u64, new: u64) -> Result<ProofPlan, RangeError> {
    if old > new {
        return Err(RangeError::SizesOutOfOrder { old, new });
    }
    if old == 0 || old == new {
        return Ok(ProofPlan::from_ranges(&[]));
    }
    Ok(ProofPlan::from_ranges(&consistency_ranges(old, new)))
}

/// The plan for the root of a tree of `size` leaves: one node per set bit of `size`.
pub fn root_plan(size: u64) -> Vec<Node> {
    range_nodes(0, size)
}

/// `PATH(index, D[size])`: the inclusion proof of leaf `index` in the tree of `size` leaves.
pub fn inclusion_proof<R: HashReader + ?Sized>(
    index: u64,
    size: u64,
    reader: &mut R,
) -> Result<Vec<Hash>, ProofError<R::Error>> {
    inclusion_plan(index, size)?.execute(reader)
}

/// `PROOF(old, D[new])`: the consistency proof from size `old` to size `new`.
pub fn consistency_proof<R: HashReader + ?Sized>(
    old: u64,
    new: u64,
    reader: &mut R,
) -> Result<Vec<Hash>, ProofError<R::Error>> {
    consistency_plan(old, new)?.execute(reader)
}

/// `MTH(D[size])` read from perfect subtrees; the empty tree's root for size 0.
pub fn tree_root<R: HashReader + ?Sized>(
    size: u64,
    reader: &mut R,
) -> Result<Hash, ProofError<R::Error>> {
    ProofPlan {
        nodes: root_plan(size),
        spans: vec![root_plan(size).len()],
    }
    .execute(reader)
    .map(|h| h.first().copied().unwrap_or(EMPTY_ROOT))
}

/// `MTH` of a list of leaf hashes, computed with a stack of perfect subtrees (O(n) hashes,
/// O(log n) memory).
pub fn tree_hash(leaves: &[Hash]) -> Hash {
    let mut stack = PerfectStack::default();
    for leaf in leaves {
        stack.push(*leaf);
    }
    stack.root()
}

/// A binary counter of perfect subtrees: pushing leaf hashes in order keeps, for every set bit of
/// the count, the hash of that perfect subtree. This is the "right edge" (a compact range from 0).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PerfectStack {
    count: u64,
    /// Hashes of the perfect subtrees, largest (leftmost) first.
    hashes: Vec<Hash>,
}

impl PerfectStack {
    /// Appends one hash of the next subtree of height 0 (relative to this stack).
    pub fn push(&mut self, mut h: Hash) {
        let mut c = self.count;
        while c & 1 == 1 {
            if let Some(left) = self.hashes.pop() {
                h = node_hash(&left, &h);
            }
            c >>= 1;
        }
        self.hashes.push(h);
        self.count += 1;
    }

    /// Number of hashes pushed.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The perfect subtree hashes, largest first (one per set bit of `count`).
    pub fn hashes(&self) -> &[Hash] {
        &self.hashes
    }

    /// `MTH` over everything pushed (the empty root if nothing was).
    pub fn root(&self) -> Hash {
        fold_range(&self.hashes)
    }
}

/// An in-memory [`HashReader`] over a slice of leaf hashes that hashes on demand. For tests and
/// small trees; a node of height `h` costs `2^h - 1` hashes.
#[derive(Debug, Clone, Copy)]
pub struct LeafHashes<'a>(pub &'a [Hash]);

/// A node outside the slice given to [`LeafHashes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("node {0:?} is outside the {1} leaves held")]
pub struct MissingNode(pub Node, pub usize);

impl HashReader for LeafHashes<'_> {
    type Error = MissingNode;

    fn read_nodes(&mut self, nodes: &[Node]) -> Result<Vec<Hash>, MissingNode> {
        nodes
            .iter()
            .map(|n| {
                let range = usize::try_from(n.start())
                    .ok()
                    .zip(usize::try_from(n.end()).ok());
                range
                    .and_then(|(a, b)| self.0.get(a..b))
                    .map(tree_hash)
                    .ok_or(MissingNode(*n, self.0.len()))
            })
            .collect()
    }
}

/// The root that an inclusion proof implies for `leaf` at `index` in a tree of `size` leaves
/// (RFC 9162 section 2.1.3.2, steps 1-4). The caller compares it with a trusted root.
pub fn root_from_inclusion_proof(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
) -> Result<Hash, VerifyError> {
    if index >= size {
        return Err(RangeError::IndexOutOfRange { index, size }.into());
    }
    let want = inclusion_ranges(index, size).len();
    if proof.len() != want {
        return Err(VerifyError::ProofLength {
            got: proof.len(),
            want,
            first: index,
            second: size,
        });
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if sn == 0 {
            // Unreachable after the length check; kept so the loop is the RFC's, verbatim.
            return Err(VerifyError::ProofLength {
                got: proof.len(),
                want,
                first: index,
                second: size,
            });
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(VerifyError::ProofLength {
            got: proof.len(),
            want,
            first: index,
            second: size,
        });
    }
    Ok(r)
}

/// Verifies that `leaf` is at `index` in the tree of `size` leaves with root `root`
/// (RFC 9162 section 2.1.3.2).
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), VerifyError> {
    if root_from_inclusion_proof(index, size, leaf, proof)? == *root {
        Ok(())
    } else {
        Err(VerifyError::RootMismatch { which: "tree" })
    }
}

/// Verifies that the tree of `new` leaves with root `new_root` extends the tree of `old` leaves
/// with root `old_root` (RFC 9162 section 2.1.4.2), with the C2SP conventions outside the RFC's
/// `0 < old < new`: `old == new` needs an empty proof and equal roots; `old == 0` needs an empty
/// proof and the empty-tree root as `old_root`; `old > new` is never consistent.
pub fn verify_consistency(
    old: u64,
    new: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), VerifyError> {
    if old > new {
        return Err(RangeError::SizesOutOfOrder { old, new }.into());
    }
    let want = if old == 0 || old == new {
        0
    } else {
        consistency_ranges(old, new).len()
    };
    let length_error = VerifyError::ProofLength {
        got: proof.len(),
        want,
        first: old,
        second: new,
    };
    if proof.len() != want {
        return Err(length_error);
    }
    if old == 0 {
        return if *old_root == EMPTY_ROOT {
            Ok(())
        } else {
            Err(VerifyError::RootMismatch { which: "old" })
        };
    }
    if old == new {
        return if old_root == new_root {
            Ok(())
        } else {
            Err(VerifyError::RootMismatch { which: "new" })
        };
    }
    // RFC 9162 2.1.4.2. Step 2: a power-of-two old tree is itself a node of the new tree, so its
    // root is the implicit first element of the proof.
    let mut hashes = Vec::with_capacity(proof.len() + 1);
    if old.is_power_of_two() {
        hashes.push(*old_root);
    }
    hashes.extend_from_slice(proof);
    let (mut fn_, mut sn) = (old - 1, new - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let Some((first, rest)) = hashes.split_first() else {
        return Err(length_error);
    };
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if sn == 0 {
            return Err(length_error);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(length_error);
    }
    if fr != *old_root {
        return Err(VerifyError::RootMismatch { which: "old" });
    }
    if sr != *new_root {
        return Err(VerifyError::RootMismatch { which: "new" });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::leaf_hash;

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n)
            .map(|i| leaf_hash(format!("leaf-{i}").as_bytes()))
            .collect()
    }

    #[test]
    fn split_point_is_largest_power_below() {
        assert_eq!(split_point(2), 1);
        assert_eq!(split_point(3), 2);
        assert_eq!(split_point(4), 2);
        assert_eq!(split_point(5), 4);
        assert_eq!(split_point(1 << 40), 1 << 39);
        assert_eq!(split_point((1 << 40) + 1), 1 << 40);
        assert_eq!(split_point(u64::MAX), 1 << 63);
    }

    #[test]
    fn range_nodes_are_binary_digits() {
        assert_eq!(
            range_nodes(0, 13),
            vec![
                Node {
                    height: 3,
                    index: 0
                },
                Node {
                    height: 2,
                    index: 2
                },
                Node {
                    height: 0,
                    index: 12
                },
            ]
        );
        assert!(range_nodes(5, 5).is_empty());
    }

    #[test]
    fn perfect_stack_matches_tree_root_reader() {
        let l = leaves(77);
        let mut r = LeafHashes(&l);
        for n in 0..=77u64 {
            let mut s = PerfectStack::default();
            for h in &l[..n as usize] {
                s.push(*h);
            }
            assert_eq!(s.root(), tree_root(n, &mut r).unwrap(), "size {n}");
            assert_eq!(s.hashes().len(), n.count_ones() as usize);
        }
    }

    #[test]
    fn reader_errors_surface() {
        let l = leaves(4);
        let err = inclusion_proof(1, 8, &mut LeafHashes(&l)).unwrap_err();
        assert!(
            matches!(err, ProofError::Reader(MissingNode(..))),
            "{err:?}"
        );
        let err = inclusion_proof(8, 8, &mut LeafHashes(&l)).unwrap_err();
        assert_eq!(
            err,
            ProofError::Range(RangeError::IndexOutOfRange { index: 8, size: 8 })
        );
    }
}
