//! RFC 9162 §2.1 Merkle trees over SHA-256: hashes, the tree head of any size, inclusion and
//! consistency proofs, and their verification algorithms (§2.1.3.2, §2.1.4.2).
//!
//! All functions take the leaf *hashes* (`H(0x00 ‖ entry)`), so callers hash each entry once.

use sha2::{Digest, Sha256};

/// A SHA-256 value.
pub type Hash = [u8; 32];

/// Leaf hash: `SHA-256(0x00 ‖ entry)` (RFC 9162 §2.1.1).
#[must_use]
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(entry);
    h.finalize().into()
}

/// Interior node hash: `SHA-256(0x01 ‖ left ‖ right)`.
#[must_use]
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// Hash of the empty tree: `SHA-256()`.
#[must_use]
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The largest power of two strictly smaller than `n` (`n >= 2`).
fn split(n: usize) -> usize {
    let mut k = 1usize;
    while k << 1 < n {
        k <<= 1;
    }
    k
}

/// MTH(D[n]) over leaf hashes (RFC 9162 §2.1.1), computed bottom-up (equal to the recursive
/// definition: pairs left to right, an odd last node promoted unchanged).
#[must_use]
pub fn root(leaves: &[Hash]) -> Hash {
    if leaves.is_empty() {
        return empty_root();
    }
    let mut level: Vec<Hash> = leaves.to_vec();
    while level.len() > 1 {
        let mut next = Vec::with_capacity(level.len().div_ceil(2));
        for pair in level.chunks(2) {
            match pair {
                [l, r] => next.push(node_hash(l, r)),
                [one] => next.push(*one),
                _ => {}
            }
        }
        level = next;
    }
    level.first().copied().unwrap_or_else(empty_root)
}

/// An append-only tree head accumulator: the perfect subtrees along the right edge.
/// `push` is amortised O(1); `root` is O(log n).
#[derive(Debug, Clone, Default)]
pub struct Frontier {
    /// (height, hash) of perfect subtrees, largest (leftmost) first.
    stack: Vec<(u32, Hash)>,
    size: u64,
}

impl Frontier {
    /// An empty tree.
    #[must_use]
    pub fn new() -> Self {
        Frontier::default()
    }
    /// Number of leaves.
    #[must_use]
    pub fn size(&self) -> u64 {
        self.size
    }
    /// Appends a leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        let mut cur = (0u32, leaf);
        while let Some(&(h, left)) = self.stack.last() {
            if h != cur.0 {
                break;
            }
            self.stack.pop();
            cur = (h + 1, node_hash(&left, &cur.1));
        }
        self.stack.push(cur);
        self.size += 1;
    }
    /// MTH of the leaves so far: the right fold of the perfect subtrees (RFC 9162 splits at the
    /// largest power of two, which is exactly this decomposition).
    #[must_use]
    pub fn root(&self) -> Hash {
        let mut it = self.stack.iter().rev();
        let Some(&(_, mut acc)) = it.next() else { return empty_root() };
        for (_, left) in it {
            acc = node_hash(left, &acc);
        }
        acc
    }
}

/// PATH(m, D[n]) (RFC 9162 §2.1.3.1): the inclusion proof of leaf `m` in the tree of `leaves`.
/// `None` if `m` is out of range.
#[must_use]
pub fn inclusion_proof(leaves: &[Hash], m: usize) -> Option<Vec<Hash>> {
    if m >= leaves.len() {
        return None;
    }
    let mut out = Vec::new();
    path(leaves, m, &mut out);
    Some(out)
}

fn path(d: &[Hash], m: usize, out: &mut Vec<Hash>) {
    let n = d.len();
    if n <= 1 {
        return;
    }
    let k = split(n);
    let (left, right) = d.split_at(k);
    if m < k {
        path(left, m, out);
        out.push(root(right));
    } else {
        path(right, m - k, out);
        out.push(root(left));
    }
}

/// PROOF(m, D[n]) (RFC 9162 §2.1.4.1): consistency between the first `m` leaves and all of
/// `leaves`. `None` unless `0 < m <= n`.
#[must_use]
pub fn consistency_proof(leaves: &[Hash], m: usize) -> Option<Vec<Hash>> {
    if m == 0 || m > leaves.len() {
        return None;
    }
    let mut out = Vec::new();
    subproof(m, leaves, true, &mut out);
    Some(out)
}

fn subproof(m: usize, d: &[Hash], b: bool, out: &mut Vec<Hash>) {
    let n = d.len();
    if m == n {
        if !b {
            out.push(root(d));
        }
        return;
    }
    let k = split(n);
    let (left, right) = d.split_at(k);
    if m <= k {
        subproof(m, left, b, out);
        out.push(root(right));
    } else {
        subproof(m - k, right, false, out);
        out.push(root(left));
    }
}

/// RFC 9162 §2.1.3.2: verifies an inclusion proof.
#[must_use]
pub fn verify_inclusion(leaf_index: u64, tree_size: u64, leaf: &Hash, proof: &[Hash], root: &Hash) -> bool {
    if leaf_index >= tree_size {
        return false;
    }
    let (mut fn_, mut sn) = (leaf_index, tree_size - 1);
    let mut r = *leaf;
    for p in proof {
        if sn == 0 {
            return false;
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
    sn == 0 && &r == root
}

/// RFC 9162 §2.1.4.2: verifies a consistency proof between (`first`, `first_hash`) and
/// (`second`, `second_hash`).
#[must_use]
pub fn verify_consistency(first: u64, second: u64, first_hash: &Hash, second_hash: &Hash, proof: &[Hash]) -> bool {
    if first == second {
        return proof.is_empty() && first_hash == second_hash;
    }
    if first == 0 || first > second {
        return false;
    }
    // If first is an exact power of 2, prepend first_hash to the proof.
    let owned: Vec<Hash>;
    let proof: &[Hash] = if first.is_power_of_two() {
        owned = std::iter::once(*first_hash).chain(proof.iter().copied()).collect();
        &owned
    } else {
        proof
    };
    let Some((c0, rest)) = proof.split_first() else { return false };
    let (mut fn_, mut sn) = (first - 1, second - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (*c0, *c0);
    for c in rest {
        if sn == 0 {
            return false;
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
    sn == 0 && &fr == first_hash && &sr == second_hash
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    /// The literal recursive definition of RFC 9162 §2.1.1 over entries (a second, independent
    /// computation: no leaf-hash list, no bottom-up loop, no frontier).
    fn mth_reference(entries: &[Vec<u8>]) -> Hash {
        match entries.len() {
            0 => Sha256::digest([]).into(),
            1 => Sha256::digest([&[0u8][..], &entries[0]].concat()).into(),
            n => {
                let mut k = 1;
                while k * 2 < n {
                    k *= 2;
                }
                let l = mth_reference(&entries[..k]);
                let r = mth_reference(&entries[k..]);
                Sha256::digest([&[1u8][..], &l, &r].concat()).into()
            }
        }
    }

    fn entries(n: usize) -> Vec<Vec<u8>> {
        (0..n).map(|i| format!("entry {i}").into_bytes()).collect()
    }

    fn hashes(e: &[Vec<u8>]) -> Vec<Hash> {
        e.iter().map(|x| leaf_hash(x)).collect()
    }

    /// RFC 6962/9162 reference test vectors (certificate-transparency-go `merkle` testdata):
    /// roots of the first n of the 8 standard leaves.
    #[test]
    fn roots_match_the_certificate_transparency_test_vectors() {
        let leaves: Vec<Vec<u8>> = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]
            .iter()
            .map(|h| hex::decode(h).unwrap_or_default())
            .collect();
        let want = [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
            "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
        ];
        let h = hashes(&leaves);
        for (n, w) in want.iter().enumerate() {
            assert_eq!(hex::encode(root(&h[..=n])), *w, "tree of {} leaves", n + 1);
        }
        // Inclusion proof vector: leaf 0 of 8 (ct-go testdata).
        let proof = inclusion_proof(&h, 0).unwrap_or_default();
        let want_proof = [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ];
        assert_eq!(proof.iter().map(hex::encode).collect::<Vec<_>>(), want_proof);
        // Consistency proof vector: 1 -> 8.
        let c = consistency_proof(&h, 1).unwrap_or_default();
        assert_eq!(c.iter().map(hex::encode).collect::<Vec<_>>(), want_proof);
        // 6 -> 8.
        let c = consistency_proof(&h, 6).unwrap_or_default();
        assert_eq!(
            c.iter().map(hex::encode).collect::<Vec<_>>(),
            [
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ]
        );
    }

    #[test]
    fn root_and_frontier_agree_with_the_recursive_definition_for_every_size_up_to_70() {
        let e = entries(70);
        let h = hashes(&e);
        let mut f = Frontier::new();
        assert_eq!(f.root(), mth_reference(&[]));
        for n in 1..=70 {
            f.push(h[n - 1]);
            let want = mth_reference(&e[..n]);
            assert_eq!(root(&h[..n]), want, "root({n})");
            assert_eq!(f.root(), want, "frontier({n})");
        }
    }

    #[test]
    fn every_inclusion_and_consistency_proof_verifies_up_to_40_leaves() {
        let e = entries(40);
        let h = hashes(&e);
        for n in 1..=40usize {
            let r = mth_reference(&e[..n]);
            for m in 0..n {
                let p = inclusion_proof(&h[..n], m).unwrap_or_default();
                assert!(verify_inclusion(m as u64, n as u64, &h[m], &p, &r), "inclusion {m} in {n}");
            }
            for m in 1..=n {
                let p = consistency_proof(&h[..n], m).unwrap_or_default();
                assert!(verify_consistency(m as u64, n as u64, &mth_reference(&e[..m]), &r, &p), "consistency {m} -> {n}");
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn tampered_inclusion_proofs_fail(n in 1usize..200, m in 0usize..200, which in 0usize..64, bit in 0u8..8, mode in 0u8..4) {
            let m = m % n;
            let e = entries(n);
            let h = hashes(&e);
            let r = root(&h);
            let mut p = inclusion_proof(&h, m).unwrap_or_default();
            let ok = verify_inclusion(m as u64, n as u64, &h[m], &p, &r);
            proptest::prop_assert!(ok);
            let tampered = match mode {
                0 if !p.is_empty() => { let i = which % p.len(); p[i][which % 32] ^= 1 << bit; verify_inclusion(m as u64, n as u64, &h[m], &p, &r) }
                1 => { p.push([0; 32]); verify_inclusion(m as u64, n as u64, &h[m], &p, &r) }
                2 if !p.is_empty() => { p.pop(); verify_inclusion(m as u64, n as u64, &h[m], &p, &r) }
                3 if n > 1 => { let other = (m + 1 + which) % n; let other = if other == m { (m + 1) % n } else { other };
                                verify_inclusion(other as u64, n as u64, &h[m], &p, &r) || verify_inclusion(m as u64, n as u64, &h[other], &p, &r) }
                _ => { let mut rr = r; rr[which % 32] ^= 1 << bit; verify_inclusion(m as u64, n as u64, &h[m], &p, &rr) }
            };
            proptest::prop_assert!(!tampered);
        }

        #[test]
        fn tampered_consistency_proofs_fail(n in 2usize..200, m in 1usize..200, which in 0usize..64, bit in 0u8..8, mode in 0u8..3) {
            let m = 1 + (m - 1) % (n - 1);
            let e = entries(n);
            let h = hashes(&e);
            let (r1, r2) = (root(&h[..m]), root(&h));
            let mut p = consistency_proof(&h, m).unwrap_or_default();
            proptest::prop_assert!(verify_consistency(m as u64, n as u64, &r1, &r2, &p));
            let tampered = match mode {
                0 if !p.is_empty() => { let i = which % p.len(); p[i][which % 32] ^= 1 << bit; verify_consistency(m as u64, n as u64, &r1, &r2, &p) }
                1 => { let mut x = r1; x[which % 32] ^= 1 << bit; verify_consistency(m as u64, n as u64, &x, &r2, &p) }
                _ => { let mut x = r2; x[which % 32] ^= 1 << bit; verify_consistency(m as u64, n as u64, &r1, &x, &p) }
            };
            proptest::prop_assert!(!tampered);
        }
    }
}
