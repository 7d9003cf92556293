//! RFC 6962 / C2SP tlog Merkle tree hashing: leaf = SHA-256(0x00 ‖ data), node =
//! SHA-256(0x01 ‖ left ‖ right). Proofs are built from *complete subtrees* (level `l`, index
//! `i` covers leaves `i·2^l .. (i+1)·2^l`), which is what the store keeps: a proof needs
//! O(log n) of them, never the leaves. Verification follows RFC 9162 §2.1.3.2 and §2.1.4.2.

use sha2::{Digest, Sha256};

pub type Hash = [u8; 32];

/// A complete subtree: `level` (0 = a leaf) and its `index` at that level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    pub level: u8,
    pub index: u64,
}

pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the empty tree: SHA-256 of nothing.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// Largest power of two strictly below `n` (n ≥ 2).
fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// Node lookups fail with the missing node's id (a store that lacks it is corrupt).
pub type Lookup<'a> = dyn FnMut(NodeId) -> Option<Hash> + 'a;

/// MTH(D[start..end]) from complete subtrees: one lookup per aligned power-of-two piece.
fn subtree(start: u64, end: u64, get: &mut Lookup) -> Result<Hash, NodeId> {
    let n = end - start;
    if n.is_power_of_two() && start % n == 0 {
        let id = NodeId {
            level: n.trailing_zeros() as u8,
            index: start >> n.trailing_zeros(),
        };
        return get(id).ok_or(id);
    }
    let k = split(n);
    let l = subtree(start, start + k, get)?;
    let r = subtree(start + k, end, get)?;
    Ok(node_hash(&l, &r))
}

/// The root of the first `size` leaves.
pub fn root(size: u64, get: &mut Lookup) -> Result<Hash, NodeId> {
    if size == 0 {
        return Ok(empty_root());
    }
    subtree(0, size, get)
}

/// Inclusion proof of leaf `index` in the tree of `size` leaves (RFC 6962 PATH).
pub fn inclusion_proof(index: u64, size: u64, get: &mut Lookup) -> Result<Vec<Hash>, NodeId> {
    assert!(index < size, "leaf {index} is not in a tree of {size}");
    let mut out = Vec::new();
    path(index, 0, size, get, &mut out)?;
    Ok(out)
}

fn path(m: u64, start: u64, end: u64, get: &mut Lookup, out: &mut Vec<Hash>) -> Result<(), NodeId> {
    let n = end - start;
    if n == 1 {
        return Ok(());
    }
    let k = split(n);
    if m < k {
        path(m, start, start + k, get, out)?;
        out.push(subtree(start + k, end, get)?);
    } else {
        path(m - k, start + k, end, get, out)?;
        out.push(subtree(start, start + k, get)?);
    }
    Ok(())
}

/// Consistency proof from the tree of `old` leaves to the tree of `new` (RFC 6962 PROOF);
/// empty when `old` is 0 or equals `new`.
pub fn consistency_proof(old: u64, new: u64, get: &mut Lookup) -> Result<Vec<Hash>, NodeId> {
    assert!(old <= new, "consistency from {old} to a smaller tree {new}");
    let mut out = Vec::new();
    if old == 0 || old == new {
        return Ok(out);
    }
    subproof(old, 0, new, true, get, &mut out)?;
    Ok(out)
}

fn subproof(
    m: u64,
    start: u64,
    end: u64,
    whole: bool,
    get: &mut Lookup,
    out: &mut Vec<Hash>,
) -> Result<(), NodeId> {
    let n = end - start;
    if m == n {
        if !whole {
            out.push(subtree(start, end, get)?);
        }
        return Ok(());
    }
    let k = split(n);
    if m <= k {
        subproof(m, start, start + k, whole, get, out)?;
        out.push(subtree(start + k, end, get)?);
    } else {
        subproof(m - k, start + k, end, false, get, out)?;
        out.push(subtree(start, start + k, get)?);
    }
    Ok(())
}

/// The nodes a computation looks up, found by running it against zero hashes: the store
/// fetches exactly these in one query, then the computation runs again on the real ones.
pub fn nodes_needed<T>(run: impl FnOnce(&mut Lookup) -> Result<T, NodeId>) -> Vec<NodeId> {
    let mut ids = Vec::new();
    let mut rec = |id: NodeId| {
        ids.push(id);
        Some([0u8; 32])
    };
    let _ = run(&mut rec);
    ids.sort();
    ids.dedup();
    ids
}

/// The complete subtrees that leaves `size..size+leaves.len()` add to a tree of `size`
/// leaves: each leaf, then every node it completes. `get` supplies existing nodes (only the
/// left siblings on the old right edge are needed: [`frontier`]).
pub fn extend(size: u64, leaves: &[Hash], get: &mut Lookup) -> Result<Vec<(NodeId, Hash)>, NodeId> {
    let mut added: std::collections::HashMap<NodeId, Hash> = std::collections::HashMap::new();
    let mut out = Vec::with_capacity(leaves.len() * 2);
    for (i, leaf) in leaves.iter().enumerate() {
        let idx = size + i as u64;
        let mut id = NodeId {
            level: 0,
            index: idx,
        };
        let mut h = *leaf;
        added.insert(id, h);
        out.push((id, h));
        // While this node is a right child, its parent is complete now.
        while id.index & 1 == 1 {
            let left = NodeId {
                level: id.level,
                index: id.index - 1,
            };
            let lh = match added.get(&left) {
                Some(x) => *x,
                None => get(left).ok_or(left)?,
            };
            h = node_hash(&lh, &h);
            id = NodeId {
                level: id.level + 1,
                index: id.index >> 1,
            };
            added.insert(id, h);
            out.push((id, h));
        }
    }
    Ok(out)
}

/// The complete subtrees whose roots make up the right edge of a tree of `size` leaves
/// (one per set bit of `size`, largest first): all that [`extend`] and [`root`] need.
pub fn frontier(size: u64) -> Vec<NodeId> {
    let mut out = Vec::new();
    let mut start = 0u64;
    for level in (0..64u8).rev() {
        if size & (1 << level) != 0 {
            out.push(NodeId {
                level,
                index: start >> level,
            });
            start += 1 << level;
        }
    }
    out
}

/// Builds a root over a stream of leaves with O(log n) memory (the verifier's tree).
#[derive(Debug, Default, Clone)]
pub struct Builder {
    /// Roots of complete subtrees, largest first; `stack[i]` has level `levels[i]`.
    stack: Vec<(u8, Hash)>,
    size: u64,
}

impl Builder {
    pub fn push(&mut self, leaf: Hash) {
        let mut cur = (0u8, leaf);
        while let Some(&(level, h)) = self.stack.last() {
            if level != cur.0 {
                break;
            }
            self.stack.pop();
            cur = (level + 1, node_hash(&h, &cur.1));
        }
        self.stack.push(cur);
        self.size += 1;
    }
    pub fn size(&self) -> u64 {
        self.size
    }
    pub fn root(&self) -> Hash {
        let mut it = self.stack.iter().rev();
        let Some(&(_, mut acc)) = it.next() else {
            return empty_root();
        };
        for (_, h) in it {
            acc = node_hash(h, &acc);
        }
        acc
    }
}

/// RFC 9162 §2.1.3.2: does `proof` show `leaf` at `index` in the tree of `size` with `root`?
pub fn verify_inclusion(index: u64, size: u64, leaf: &Hash, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut fnn, mut sn) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if sn == 0 {
            return false;
        }
        if fnn & 1 == 1 || fnn == sn {
            r = node_hash(p, &r);
            while fnn & 1 == 0 && fnn != 0 {
                fnn >>= 1;
                sn >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fnn >>= 1;
        sn >>= 1;
    }
    sn == 0 && &r == root
}

/// RFC 9162 §2.1.4.2: does `proof` show the tree of `old` leaves (`old_root`) is a prefix of
/// the tree of `new` leaves (`new_root`)?
pub fn verify_consistency(
    old: u64,
    new: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> bool {
    if old > new {
        return false;
    }
    if old == new {
        return proof.is_empty() && old_root == new_root;
    }
    if old == 0 {
        // The empty tree is a prefix of every tree; nothing to prove.
        return proof.is_empty();
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    let (mut fnn, mut sn) = (old - 1, new - 1);
    while fnn & 1 == 1 {
        fnn >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if sn == 0 {
            return false;
        }
        if fnn & 1 == 1 || fnn == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fnn & 1 == 0 && fnn != 0 {
                fnn >>= 1;
                sn >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnn >>= 1;
        sn >>= 1;
    }
    &fr == old_root && &sr == new_root && sn == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    // The naive definitions of RFC 6962 §2.1, straight from the leaves.
    fn mth(d: &[Hash]) -> Hash {
        match d.len() {
            0 => empty_root(),
            1 => d[0],
            n => {
                let k = split(n as u64) as usize;
                node_hash(&mth(&d[..k]), &mth(&d[k..]))
            }
        }
    }
    fn naive_path(m: usize, d: &[Hash]) -> Vec<Hash> {
        if d.len() <= 1 {
            return vec![];
        }
        let k = split(d.len() as u64) as usize;
        if m < k {
            let mut p = naive_path(m, &d[..k]);
            p.push(mth(&d[k..]));
            p
        } else {
            let mut p = naive_path(m - k, &d[k..]);
            p.push(mth(&d[..k]));
            p
        }
    }
    fn naive_subproof(m: usize, d: &[Hash], b: bool) -> Vec<Hash> {
        let n = d.len();
        if m == n {
            return if b { vec![] } else { vec![mth(d)] };
        }
        let k = split(n as u64) as usize;
        if m <= k {
            let mut p = naive_subproof(m, &d[..k], b);
            p.push(mth(&d[k..]));
            p
        } else {
            let mut p = naive_subproof(m - k, &d[k..], false);
            p.push(mth(&d[..k]));
            p
        }
    }

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n)
            .map(|i| leaf_hash(format!("entry {i}").as_bytes()))
            .collect()
    }

    /// The store: nodes added by `extend` in batches of `batch`.
    fn stored(d: &[Hash], batch: usize) -> HashMap<NodeId, Hash> {
        let mut nodes: HashMap<NodeId, Hash> = HashMap::new();
        let mut size = 0;
        for chunk in d.chunks(batch.max(1)) {
            let front = frontier(size as u64);
            let mut get = |id: NodeId| {
                assert!(
                    front.contains(&id),
                    "extend read {id:?}, not on the frontier"
                );
                nodes.get(&id).copied()
            };
            let add = extend(size as u64, chunk, &mut get).unwrap();
            nodes.extend(add);
            size += chunk.len();
        }
        nodes
    }

    #[test]
    fn known_answers() {
        // The empty tree and a one-leaf tree (RFC 6962 test vectors: leaf of the empty string).
        assert_eq!(
            hex::encode(empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hex::encode(leaf_hash(b"")),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
    }

    proptest! {
        #[test]
        fn roots_and_proofs_match_the_naive_definition(n in 1usize..80, batch in 1usize..20, seed in any::<u64>()) {
            let d = leaves(n);
            let nodes = stored(&d, batch);
            let mut get = |id: NodeId| nodes.get(&id).copied();
            for size in 1..=n {
                let r = root(size as u64, &mut get).unwrap();
                prop_assert_eq!(r, mth(&d[..size]));
                let mut b = Builder::default();
                d[..size].iter().for_each(|l| b.push(*l));
                prop_assert_eq!(b.root(), r);
            }
            let size = 1 + (seed as usize % n);
            let m = (seed >> 20) as usize % size;
            let r = mth(&d[..size]);
            let p = inclusion_proof(m as u64, size as u64, &mut get).unwrap();
            prop_assert_eq!(&p, &naive_path(m, &d[..size]));
            prop_assert!(verify_inclusion(m as u64, size as u64, &d[m], &p, &r));
            let needed = nodes_needed(|g| inclusion_proof(m as u64, size as u64, g));
            prop_assert!(needed.len() <= 2 * 64);
            // Any altered proof, leaf, index or root fails.
            if !p.is_empty() {
                let mut bad = p.clone();
                bad[(seed as usize) % p.len()][0] ^= 1;
                prop_assert!(!verify_inclusion(m as u64, size as u64, &d[m], &bad, &r));
                prop_assert!(!verify_inclusion(m as u64, size as u64, &d[m], &p[..p.len() - 1], &r));
            }
            let other = (m + 1) % size;
            if other != m {
                prop_assert!(!verify_inclusion(other as u64, size as u64, &d[m], &p, &r));
                prop_assert!(!verify_inclusion(m as u64, size as u64, &d[other], &p, &r));
            }
            let old = 1 + (seed >> 40) as usize % size;
            let c = consistency_proof(old as u64, size as u64, &mut get).unwrap();
            let naive = if old == size { vec![] } else { naive_subproof(old, &d[..size], true) };
            prop_assert_eq!(&c, &naive);
            let old_root = mth(&d[..old]);
            prop_assert!(verify_consistency(old as u64, size as u64, &old_root, &r, &c));
            if !c.is_empty() {
                let mut bad = c.clone();
                bad[(seed as usize) % c.len()][5] ^= 1;
                prop_assert!(!verify_consistency(old as u64, size as u64, &old_root, &r, &bad));
            }
            if old < size {
                // A rewritten history: the same size, another last leaf.
                let mut forged = d[..size].to_vec();
                forged[old - 1] = leaf_hash(b"forged");
                prop_assert!(!verify_consistency(old as u64, size as u64, &old_root, &mth(&forged), &c));
            }
        }
    }

    #[test]
    fn every_pair_is_consistent_for_small_trees() {
        let d = leaves(33);
        let nodes = stored(&d, 7);
        let mut get = |id: NodeId| nodes.get(&id).copied();
        for new in 1..=33u64 {
            for old in 1..=new {
                let p = consistency_proof(old, new, &mut get).unwrap();
                assert!(
                    verify_consistency(
                        old,
                        new,
                        &mth(&d[..old as usize]),
                        &mth(&d[..new as usize]),
                        &p
                    ),
                    "{old} -> {new}"
                );
            }
            for m in 0..new {
                let p = inclusion_proof(m, new, &mut get).unwrap();
                assert!(verify_inclusion(
                    m,
                    new,
                    &d[m as usize],
                    &p,
                    &mth(&d[..new as usize])
                ));
            }
        }
    }

    #[test]
    fn missing_nodes_are_named() {
        let d = leaves(10);
        let mut nodes = stored(&d, 3);
        nodes.remove(&NodeId { level: 3, index: 0 });
        let mut get = |id: NodeId| nodes.get(&id).copied();
        assert_eq!(root(10, &mut get), Err(NodeId { level: 3, index: 0 }));
    }
}
