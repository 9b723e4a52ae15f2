//! The Merkle path as an R1CS gadget over BN254.
//!
//! A path of depth `D` costs, per level, one constraint to order the current node and its
//! sibling (`left = cur + bit * (sib - cur)`, `right = cur + sib - left`, the latter a free
//! linear combination) and one Poseidon `hash2` ([`crate::poseidon::gadget::hash2`], 240
//! constraints): [`PATH_CONSTRAINTS_PER_LEVEL`] = 241 per level, `241 * D` per root. An update
//! ([`update`]) computes two roots over the same bits and siblings: `482 * D`. Allocating the
//! index bits as witnesses ([`MerkleProofVar::new_witness`]) adds one booleanity constraint
//! per bit.
//!
//! The gadget does not check the path against a root: the caller compares the returned root
//! with the one it trusts (`enforce_equal`).

use ark_bn254::Fr;
use ark_r1cs_std::{fields::fp::FpVar, prelude::*};
use ark_relations::gr1cs::{Namespace, SynthesisError};

use super::MerkleProof;
use crate::poseidon;

/// Constraints per level of [`root_from_path`]: one select and one Poseidon `hash2`.
pub const PATH_CONSTRAINTS_PER_LEVEL: usize = 241;

/// The root reached from `leaf` along the path given by `index_bits` (least significant
/// first: bit `l` set means the ancestor at level `l` is a right child) and `siblings`
/// (bottom-up).
///
/// # Errors
/// [`SynthesisError::ArityMismatch`] when there are not as many bits as siblings; otherwise
/// whatever the constraint system reports.
pub fn root_from_path(
    leaf: &FpVar<Fr>,
    index_bits: &[Boolean<Fr>],
    siblings: &[FpVar<Fr>],
) -> Result<FpVar<Fr>, SynthesisError> {
    if index_bits.len() != siblings.len() {
        return Err(SynthesisError::ArityMismatch);
    }
    let mut cur = leaf.clone();
    for (bit, sibling) in index_bits.iter().zip(siblings) {
        // bit = 1: `cur` is the right child, so the sibling goes left.
        let left = FpVar::conditionally_select(bit, sibling, &cur)?;
        let right = &cur + sibling - &left;
        cur = poseidon::gadget::hash2(&left, &right)?;
    }
    Ok(cur)
}

/// The roots before and after replacing `old_leaf` by `new_leaf` at the leaf the path leads
/// to: `(old_root, new_root)`, sharing the bits and siblings.
///
/// # Errors
/// As [`root_from_path`].
pub fn update(
    old_leaf: &FpVar<Fr>,
    new_leaf: &FpVar<Fr>,
    index_bits: &[Boolean<Fr>],
    siblings: &[FpVar<Fr>],
) -> Result<(FpVar<Fr>, FpVar<Fr>), SynthesisError> {
    let old_root = root_from_path(old_leaf, index_bits, siblings)?;
    let new_root = root_from_path(new_leaf, index_bits, siblings)?;
    Ok((old_root, new_root))
}

/// A [`MerkleProof`] allocated in a constraint system.
#[derive(Clone, Debug)]
pub struct MerkleProofVar {
    /// The leaf index's bits, least significant first, one per level.
    pub index_bits: Vec<Boolean<Fr>>,
    /// The siblings, bottom-up.
    pub siblings: Vec<FpVar<Fr>>,
}

impl MerkleProofVar {
    /// Allocates a depth-`depth` path as witnesses: `depth` booleans (one booleanity
    /// constraint each) and `depth` field elements. With `proof = None` (setup, or when the
    /// system is in setup mode) the shape is the same and no value is needed.
    ///
    /// # Errors
    /// [`SynthesisError::ArityMismatch`] when `proof` has another depth, or an index that
    /// does not fit `depth` bits; [`SynthesisError::AssignmentMissing`] when `proof` is
    /// `None` outside setup mode.
    pub fn new_witness(
        cs: impl Into<Namespace<Fr>>,
        depth: usize,
        proof: Option<&MerkleProof>,
    ) -> Result<Self, SynthesisError> {
        let ns = cs.into();
        let cs = ns.cs();
        if let Some(p) = proof {
            let fits = depth >= 64 || p.index >> depth == 0;
            if p.depth() != depth || !fits {
                return Err(SynthesisError::ArityMismatch);
            }
        }
        let index_bits = (0..depth)
            .map(|l| {
                Boolean::new_witness(cs.clone(), || {
                    proof
                        .map(|p| l < 64 && (p.index >> l) & 1 == 1)
                        .ok_or(SynthesisError::AssignmentMissing)
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let siblings = (0..depth)
            .map(|l| {
                FpVar::new_witness(cs.clone(), || {
                    proof
                        .and_then(|p| p.siblings.get(l).copied())
                        .ok_or(SynthesisError::AssignmentMissing)
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            index_bits,
            siblings,
        })
    }

    /// The path's depth.
    pub fn depth(&self) -> usize {
        self.siblings.len()
    }

    /// The leaf index as a field element: a linear combination of the bits, no constraints
    /// for depths below the field size.
    ///
    /// # Errors
    /// Whatever the constraint system reports.
    pub fn index(&self) -> Result<FpVar<Fr>, SynthesisError> {
        Boolean::le_bits_to_fp(&self.index_bits)
    }

    /// [`root_from_path`] along this path.
    ///
    /// # Errors
    /// As [`root_from_path`].
    pub fn root(&self, leaf: &FpVar<Fr>) -> Result<FpVar<Fr>, SynthesisError> {
        root_from_path(leaf, &self.index_bits, &self.siblings)
    }

    /// [`update`] along this path: `(old_root, new_root)`.
    ///
    /// # Errors
    /// As [`root_from_path`].
    pub fn update(
        &self,
        old_leaf: &FpVar<Fr>,
        new_leaf: &FpVar<Fr>,
    ) -> Result<(FpVar<Fr>, FpVar<Fr>), SynthesisError> {
        update(old_leaf, new_leaf, &self.index_bits, &self.siblings)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test should panic
mod tests {
    use super::*;
    use crate::merkle::{MerkleTree, empty_hashes};
    use ark_relations::gr1cs::{ConstraintSystem, ConstraintSystemRef, SynthesisMode};
    use ark_std::UniformRand;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// A depth-`depth` tree in a fresh in-file database with `n` random leaves; returns a
    /// proof for a random set leaf, that leaf and the root.
    fn random_path(depth: usize, n: usize, seed: u64) -> (MerkleProof, Fr, Fr) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let dir = tempfile::tempdir().unwrap();
        let db = redb::Database::create(dir.path().join("t.redb")).unwrap();
        let tree = MerkleTree::new("t", depth).unwrap();
        let txn = db.begin_write().unwrap();
        let mut w = tree.writer(&txn).unwrap();
        let max = if depth >= 64 {
            u64::MAX
        } else {
            (1u64 << depth) - 1
        };
        let mut last = (0, Fr::from(0u64));
        for _ in 0..n {
            let i = rng.gen_range(0..=max);
            let leaf = Fr::rand(&mut rng);
            w.set(i, leaf).unwrap();
            last = (i, leaf);
        }
        let proof = w.proof(last.0).unwrap();
        let root = w.root().unwrap();
        assert!(tree.verify(&proof, root, last.1));
        (proof, last.1, root)
    }

    fn alloc(cs: &ConstraintSystemRef<Fr>, x: Fr) -> FpVar<Fr> {
        FpVar::new_witness(cs.clone(), || Ok(x)).unwrap()
    }

    #[test]
    fn root_from_path_matches_native_and_costs_241_per_level() {
        for (depth, seed) in [(1, 1), (5, 2), (20, 3), (64, 4)] {
            let (proof, leaf, root) = random_path(depth, 30, seed);
            let cs = ConstraintSystem::<Fr>::new_ref();
            let leaf_var = alloc(&cs, leaf);
            let before = cs.num_constraints();
            let path = MerkleProofVar::new_witness(cs.clone(), depth, Some(&proof)).unwrap();
            assert_eq!(
                cs.num_constraints() - before,
                depth,
                "one booleanity check per bit"
            );
            let before = cs.num_constraints();
            let got = path.root(&leaf_var).unwrap();
            assert_eq!(
                cs.num_constraints() - before,
                depth * PATH_CONSTRAINTS_PER_LEVEL
            );
            assert_eq!(got.value().unwrap(), root);
            let index = path.index().unwrap();
            assert_eq!(index.value().unwrap(), Fr::from(proof.index));
            let expected = FpVar::new_input(cs.clone(), || Ok(root)).unwrap();
            got.enforce_equal(&expected).unwrap();
            assert!(cs.is_satisfied().unwrap(), "depth {depth}");
        }
    }

    #[test]
    fn update_gives_both_roots_at_482_per_level() {
        let depth = 10;
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let dir = tempfile::tempdir().unwrap();
        let db = redb::Database::create(dir.path().join("t.redb")).unwrap();
        let tree = MerkleTree::new("t", depth).unwrap();
        let txn = db.begin_write().unwrap();
        let mut w = tree.writer(&txn).unwrap();
        for _ in 0..20 {
            w.set(rng.gen_range(0..1024), Fr::rand(&mut rng)).unwrap();
        }
        let up = w.set(rng.gen_range(0..1024), Fr::rand(&mut rng)).unwrap();

        let cs = ConstraintSystem::<Fr>::new_ref();
        let path = MerkleProofVar::new_witness(cs.clone(), depth, Some(&up.proof)).unwrap();
        let old_leaf = alloc(&cs, up.old_leaf);
        let new_leaf = alloc(&cs, up.new_leaf);
        let before = cs.num_constraints();
        let (old_root, new_root) = path.update(&old_leaf, &new_leaf).unwrap();
        assert_eq!(
            cs.num_constraints() - before,
            2 * depth * PATH_CONSTRAINTS_PER_LEVEL
        );
        assert_eq!(old_root.value().unwrap(), up.old_root);
        assert_eq!(new_root.value().unwrap(), up.new_root);
        let o = FpVar::new_input(cs.clone(), || Ok(up.old_root)).unwrap();
        let n = FpVar::new_input(cs.clone(), || Ok(up.new_root)).unwrap();
        old_root.enforce_equal(&o).unwrap();
        new_root.enforce_equal(&n).unwrap();
        assert!(cs.is_satisfied().unwrap());
    }

    /// Builds the circuit "path(leaf) == root" with one thing tampered, and checks it fails.
    fn satisfied_with(proof: &MerkleProof, leaf: Fr, root: Fr) -> bool {
        let cs = ConstraintSystem::<Fr>::new_ref();
        let path = MerkleProofVar::new_witness(cs.clone(), proof.depth(), Some(proof)).unwrap();
        let leaf = alloc(&cs, leaf);
        let root_var = FpVar::new_input(cs.clone(), || Ok(root)).unwrap();
        path.root(&leaf).unwrap().enforce_equal(&root_var).unwrap();
        cs.is_satisfied().unwrap()
    }

    #[test]
    fn tampered_paths_are_unsatisfied() {
        let depth = 8;
        let (proof, leaf, root) = random_path(depth, 40, 5);
        assert!(satisfied_with(&proof, leaf, root));
        for l in [0, 3, depth - 1] {
            let mut bad = proof.clone();
            bad.siblings[l] += Fr::from(1u64);
            assert!(!satisfied_with(&bad, leaf, root), "sibling {l}");
            let mut bad = proof.clone();
            bad.index ^= 1 << l;
            assert!(!satisfied_with(&bad, leaf, root), "index bit {l}");
        }
        assert!(!satisfied_with(&proof, leaf + Fr::from(1u64), root));
        assert!(!satisfied_with(&proof, leaf, root + Fr::from(1u64)));
    }

    #[test]
    fn setup_mode_needs_no_values_and_has_the_same_shape() {
        let depth = 6;
        let count = |cs: ConstraintSystemRef<Fr>, proof: Option<&MerkleProof>| {
            let path = MerkleProofVar::new_witness(cs.clone(), depth, proof).unwrap();
            let leaf = FpVar::new_witness(cs.clone(), || {
                proof
                    .map(|_| Fr::from(0u64))
                    .ok_or(SynthesisError::AssignmentMissing)
            })
            .unwrap();
            let new_leaf = leaf.clone() + Fr::from(1u64);
            let _ = path.update(&leaf, &new_leaf).unwrap();
            (cs.num_constraints(), cs.num_witness_variables())
        };
        let setup = ConstraintSystem::<Fr>::new_ref();
        setup.set_mode(SynthesisMode::Setup);
        let proof = MerkleProof {
            index: 5,
            siblings: empty_hashes()[..depth].to_vec(),
        };
        let proving = ConstraintSystem::<Fr>::new_ref();
        assert_eq!(count(setup, None), count(proving, Some(&proof)));
    }

    #[test]
    fn shape_errors_are_reported() {
        let cs = ConstraintSystem::<Fr>::new_ref();
        let proof = MerkleProof {
            index: 4,
            siblings: vec![Fr::from(0u64); 2],
        };
        assert!(matches!(
            MerkleProofVar::new_witness(cs.clone(), 3, Some(&proof)),
            Err(SynthesisError::ArityMismatch)
        ));
        assert!(matches!(
            MerkleProofVar::new_witness(cs.clone(), 2, Some(&proof)),
            Err(SynthesisError::ArityMismatch)
        ));
        assert!(matches!(
            MerkleProofVar::new_witness(cs.clone(), 2, None),
            Err(SynthesisError::AssignmentMissing)
        ));
        let leaf = alloc(&cs, Fr::from(1u64));
        let bits = vec![Boolean::TRUE; 3];
        let sibs = vec![leaf.clone(); 2];
        assert!(matches!(
            root_from_path(&leaf, &bits, &sibs),
            Err(SynthesisError::ArityMismatch)
        ));
    }
}
