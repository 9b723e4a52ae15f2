//! Tests of the native tree and its node store.

#![allow(clippy::unwrap_used)] // a failing test should panic

use std::collections::HashMap;

use ark_ff::{One, Zero};
use ark_serialize::CanonicalSerialize;
use ark_std::UniformRand;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use redb::{Database, ReadableDatabase, ReadableTableMetadata};

use super::store::{decode_node, encode_node};
use super::*;
use ark_ff::{BigInteger, PrimeField};

/// The naive reference: all leaves in a map, every root recomputed level by level.
struct Reference {
    depth: usize,
    leaves: HashMap<u64, Fr>,
}

impl Reference {
    fn new(depth: usize) -> Self {
        Self {
            depth,
            leaves: HashMap::new(),
        }
    }

    fn levels(&self) -> Vec<Vec<Fr>> {
        let mut level: Vec<Fr> = (0..1u64 << self.depth)
            .map(|i| self.leaves.get(&i).copied().unwrap_or_else(Fr::zero))
            .collect();
        let mut all = vec![level.clone()];
        while level.len() > 1 {
            level = level
                .chunks(2)
                .map(|p| poseidon::hash2(p[0], p[1]))
                .collect();
            all.push(level.clone());
        }
        all
    }

    fn root(&self) -> Fr {
        self.levels()[self.depth][0]
    }

    fn siblings(&self, index: u64) -> Vec<Fr> {
        let levels = self.levels();
        (0..self.depth)
            .map(|l| levels[l][usize::try_from((index >> l) ^ 1).unwrap()])
            .collect()
    }
}

fn temp_db() -> (tempfile::TempDir, std::path::PathBuf, Database) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    let db = Database::create(&path).unwrap();
    (dir, path, db)
}

#[test]
fn empty_hashes_are_roots_of_empty_trees() {
    for depth in 1..=6 {
        assert_eq!(Reference::new(depth).root(), empty_root(depth).unwrap());
    }
    assert_eq!(empty_hashes()[0], Fr::zero());
    assert!(matches!(
        empty_root(0),
        Err(MerkleError::InvalidDepth { depth: 0 })
    ));
    assert!(matches!(
        empty_root(65),
        Err(MerkleError::InvalidDepth { depth: 65 })
    ));
}

#[test]
fn stored_tree_agrees_with_reference_over_random_updates() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for depth in [1usize, 2, 5, 8] {
        let (_dir, _path, db) = temp_db();
        let tree = MerkleTree::new("pulse.tree.test", depth).unwrap();
        let mut reference = Reference::new(depth);
        let n = 1u64 << depth;
        // Several transactions, each a batch of updates, some leaves cleared again.
        for batch in 0..4 {
            let txn = db.begin_write().unwrap();
            {
                let mut w = tree.writer(&txn).unwrap();
                for _ in 0..40 {
                    let index = rng.gen_range(0..n);
                    let leaf = match rng.gen_range(0..4) {
                        0 => Fr::zero(),
                        1 => reference
                            .leaves
                            .get(&index)
                            .copied()
                            .unwrap_or_else(Fr::zero),
                        _ => Fr::rand(&mut rng),
                    };
                    let old_root = reference.root();
                    let old_siblings = reference.siblings(index);
                    let old_leaf = reference
                        .leaves
                        .get(&index)
                        .copied()
                        .unwrap_or_else(Fr::zero);
                    let up = w.set(index, leaf).unwrap();
                    reference.leaves.insert(index, leaf);
                    assert_eq!(up.old_root, old_root, "depth {depth} batch {batch}");
                    assert_eq!(up.old_leaf, old_leaf);
                    assert_eq!(up.new_leaf, leaf);
                    assert_eq!(up.proof.index, index);
                    assert_eq!(up.proof.siblings, old_siblings);
                    assert_eq!(up.new_root, reference.root());
                    assert!(up.proof.verify(depth, up.old_root, up.old_leaf));
                    assert!(up.proof.verify(depth, up.new_root, up.new_leaf));
                    assert_eq!(w.root().unwrap(), up.new_root);
                }
                for index in 0..n {
                    assert_eq!(w.proof(index).unwrap().siblings, reference.siblings(index));
                    let leaf = reference
                        .leaves
                        .get(&index)
                        .copied()
                        .unwrap_or_else(Fr::zero);
                    assert_eq!(w.get_leaf(index).unwrap(), leaf);
                }
            }
            txn.commit().unwrap();
            let snap = tree.snapshot(&db.begin_read().unwrap()).unwrap();
            assert_eq!(snap.root().unwrap(), reference.root());
        }
    }
}

#[test]
fn only_non_empty_nodes_are_stored() {
    let (_dir, _path, db) = temp_db();
    let tree = MerkleTree::new("t", 16).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut w = tree.writer(&txn).unwrap();
        let up = w.set(12345, Fr::from(9u64)).unwrap();
        assert_eq!(up.old_root, tree.empty_root());
        assert_ne!(up.new_root, tree.empty_root());
        w.set(12344, Fr::from(8u64)).unwrap();
    }
    {
        let table = txn.open_table(tree.table_definition()).unwrap();
        // Two leaves, their common path of 15 inner nodes and the root: 2 + 15 + 1.
        assert_eq!(table.len().unwrap(), 18);
    }
    {
        let mut w = tree.writer(&txn).unwrap();
        w.set(12345, Fr::zero()).unwrap();
        let up = w.set(12344, Fr::zero()).unwrap();
        assert_eq!(up.new_root, tree.empty_root());
    }
    let table = txn.open_table(tree.table_definition()).unwrap();
    assert_eq!(table.len().unwrap(), 0);
}

#[test]
fn proofs_verify_for_set_and_empty_leaves_and_tampering_fails() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let depth = 12;
    let (_dir, _path, db) = temp_db();
    let tree = MerkleTree::new("t", depth).unwrap();
    let txn = db.begin_write().unwrap();
    let mut set = Vec::new();
    {
        let mut w = tree.writer(&txn).unwrap();
        for _ in 0..50 {
            let (i, leaf) = (rng.gen_range(0..1u64 << depth), Fr::rand(&mut rng));
            w.set(i, leaf).unwrap();
            set.push(i);
        }
    }
    txn.commit().unwrap();
    let snap = tree.snapshot(&db.begin_read().unwrap()).unwrap();
    let root = snap.root().unwrap();
    let empty_index = (0..1u64 << depth).find(|i| !set.contains(i)).unwrap();
    for index in [set[0], set[17], set[49], empty_index] {
        let leaf = snap.get_leaf(index).unwrap();
        let proof = snap.proof(index).unwrap();
        assert!(proof.verify(depth, root, leaf));
        assert!(tree.verify(&proof, root, leaf));
        assert_eq!(proof.root_for(leaf).unwrap(), root);
        // Tampered leaf, root, sibling, index.
        assert!(!proof.verify(depth, root, leaf + Fr::one()));
        assert!(!proof.verify(depth, root + Fr::one(), leaf));
        for l in [0, 5, depth - 1] {
            let mut bad = proof.clone();
            bad.siblings[l] += Fr::one();
            assert!(!bad.verify(depth, root, leaf));
            // Another index fails, unless the statement is true for it too (an empty leaf
            // whose subtree at that level is empty on both sides).
            let mut bad = proof.clone();
            bad.index ^= 1 << l;
            if bad.verify(depth, root, leaf) {
                assert_eq!(index, empty_index);
                assert_eq!(snap.get_leaf(bad.index).unwrap(), leaf);
                assert_eq!(snap.proof(bad.index).unwrap(), bad);
            }
            if index != empty_index {
                assert!(!bad.verify(depth, root, leaf));
            }
        }
        // Wrong depth for the verifier, wrong length, index out of range: rejected, no panic.
        assert!(!proof.verify(depth + 1, root, leaf));
        let mut short = proof.clone();
        short.siblings.pop();
        assert!(!short.verify(depth, root, leaf));
        let mut long = proof.clone();
        long.siblings.push(Fr::zero());
        assert!(!long.verify(depth, root, leaf));
        let mut far = proof.clone();
        far.index |= 1 << depth;
        assert!(!far.verify(depth, root, leaf));
        assert!(matches!(
            far.root_for(leaf),
            Err(MerkleError::IndexOutOfRange { .. })
        ));
    }
    // An inner node hashes to the root along a shorter path, but is no leaf of this tree.
    let proof = snap.proof(set[0]).unwrap();
    let leaf = snap.get_leaf(set[0]).unwrap();
    let inner_node = parent(leaf, proof.siblings[0], set[0]);
    let mut inner = MerkleProof {
        index: set[0] >> 1,
        siblings: proof.siblings[1..].to_vec(),
    };
    assert_eq!(inner.root_for(inner_node).unwrap(), root);
    assert!(!inner.verify(depth, root, inner_node));
    inner.siblings.clear();
    assert!(matches!(
        inner.root_for(root),
        Err(MerkleError::InvalidDepth { depth: 0 })
    ));
    let huge = MerkleProof {
        index: 0,
        siblings: vec![Fr::zero(); 65],
    };
    assert!(!huge.verify(65, Fr::zero(), Fr::zero()));
}

#[test]
fn out_of_range_indices_are_errors() {
    let (_dir, _path, db) = temp_db();
    let tree = MerkleTree::new("t", 4).unwrap();
    let txn = db.begin_write().unwrap();
    let mut w = tree.writer(&txn).unwrap();
    assert!(w.set(15, Fr::one()).is_ok());
    for index in [16, 17, u64::MAX] {
        let e = w.set(index, Fr::one()).unwrap_err();
        assert!(matches!(e, MerkleError::IndexOutOfRange { index: i, depth: 4 } if i == index));
        assert!(e.to_string().contains("out of range"), "{e}");
        assert!(w.get_leaf(index).is_err());
        assert!(w.proof(index).is_err());
    }
    drop(w);
    txn.commit().unwrap();
    let snap = tree.snapshot(&db.begin_read().unwrap()).unwrap();
    assert!(snap.proof(16).is_err());
    assert!(matches!(
        MerkleTree::new("t", 0),
        Err(MerkleError::InvalidDepth { depth: 0 })
    ));
    assert!(MerkleTree::new("t", 65).is_err());
}

#[test]
fn depth_64_uses_the_whole_index_space() {
    let (_dir, _path, db) = temp_db();
    let tree = MerkleTree::new("t", 64).unwrap();
    let txn = db.begin_write().unwrap();
    let mut w = tree.writer(&txn).unwrap();
    let a = w.set(u64::MAX, Fr::from(3u64)).unwrap();
    let b = w.set(0, Fr::from(4u64)).unwrap();
    assert_eq!(a.old_root, empty_root(64).unwrap());
    assert_eq!(b.old_root, a.new_root);
    let root = w.root().unwrap();
    assert!(w.proof(u64::MAX).unwrap().verify(64, root, Fr::from(3u64)));
    assert!(w.proof(0).unwrap().verify(64, root, Fr::from(4u64)));
    assert!(w.proof(1 << 40).unwrap().verify(64, root, Fr::zero()));
}

#[test]
fn groups_commit_or_roll_back_atomically_and_survive_reopening() {
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    let (dir, path, db) = temp_db();
    let accounts = MerkleTree::new("pulse.tree.accounts", 10).unwrap();
    let records = MerkleTree::new("pulse.tree.records", 12).unwrap();
    const OTHER: redb::TableDefinition<u64, u64> = redb::TableDefinition::new("other.state");

    // A committed group across both trees and another table.
    let txn = db.begin_write().unwrap();
    {
        let mut a = accounts.writer(&txn).unwrap();
        let mut r = records.writer(&txn).unwrap();
        for _ in 0..20 {
            a.set(rng.gen_range(0..1024), Fr::rand(&mut rng)).unwrap();
            r.set(rng.gen_range(0..4096), Fr::rand(&mut rng)).unwrap();
        }
        txn.open_table(OTHER).unwrap().insert(1, 1).unwrap();
    }
    txn.commit().unwrap();
    let roots = |db: &Database| {
        let read = db.begin_read().unwrap();
        (
            accounts.snapshot(&read).unwrap().root().unwrap(),
            records.snapshot(&read).unwrap().root().unwrap(),
        )
    };
    let committed = roots(&db);
    assert_ne!(committed.0, accounts.empty_root());

    // An aborted group changes nothing, even though the writer saw its own updates.
    let txn = db.begin_write().unwrap();
    {
        let mut a = accounts.writer(&txn).unwrap();
        let up = a.set(5, Fr::rand(&mut rng)).unwrap();
        assert_eq!(up.old_root, committed.0);
        assert_ne!(a.root().unwrap(), committed.0);
        let mut r = records.writer(&txn).unwrap();
        r.set(6, Fr::rand(&mut rng)).unwrap();
    }
    txn.abort().unwrap();
    assert_eq!(roots(&db), committed);

    // A dropped transaction is an abort too.
    {
        let txn = db.begin_write().unwrap();
        accounts.set(&txn, 7, Fr::rand(&mut rng)).unwrap();
    }
    assert_eq!(roots(&db), committed);

    // A committed group changes both roots.
    let txn = db.begin_write().unwrap();
    let (new_a, new_r) = {
        let mut a = accounts.writer(&txn).unwrap();
        let mut r = records.writer(&txn).unwrap();
        let ua = a.set(5, Fr::rand(&mut rng)).unwrap();
        let ur = r.set(6, Fr::rand(&mut rng)).unwrap();
        (ua.new_root, ur.new_root)
    };
    txn.commit().unwrap();
    let after = roots(&db);
    assert_eq!(after, (new_a, new_r));
    assert_ne!(after.0, committed.0);
    assert_ne!(after.1, committed.1);

    // Reopening the file gives the same roots and proofs.
    drop(db);
    let db = Database::open(&path).unwrap();
    assert_eq!(roots(&db), after);
    let read = db.begin_read().unwrap();
    let snap = accounts.snapshot(&read).unwrap();
    let leaf = snap.get_leaf(5).unwrap();
    assert!(snap.proof(5).unwrap().verify(10, after.0, leaf));
    drop(dir);
}

#[test]
fn snapshot_serves_proofs_while_a_writer_works() {
    let mut rng = ChaCha8Rng::seed_from_u64(31);
    let (_dir, _path, db) = temp_db();
    let tree = MerkleTree::new("t", 20).unwrap();
    // Before anything is committed, a snapshot reads the empty tree.
    let snap = tree.snapshot(&db.begin_read().unwrap()).unwrap();
    assert_eq!(snap.root().unwrap(), tree.empty_root());
    assert!(
        snap.proof(99)
            .unwrap()
            .verify(20, tree.empty_root(), Fr::zero())
    );

    let mut leaves = Vec::new();
    let txn = db.begin_write().unwrap();
    {
        let mut w = tree.writer(&txn).unwrap();
        for _ in 0..30 {
            let (i, leaf) = (rng.gen_range(0..1u64 << 20), Fr::rand(&mut rng));
            w.set(i, leaf).unwrap();
            leaves.push((i, leaf));
        }
    }
    txn.commit().unwrap();
    let snap = tree.snapshot(&db.begin_read().unwrap()).unwrap();
    let root = snap.root().unwrap();

    let txn = db.begin_write().unwrap();
    let mut w = tree.writer(&txn).unwrap();
    let reader = std::thread::spawn(move || {
        for (i, leaf) in leaves {
            let proof = snap.proof(i).unwrap();
            assert_eq!(snap.get_leaf(i).unwrap(), leaf);
            assert!(proof.verify(20, root, leaf));
        }
        snap.root().unwrap()
    });
    for i in 0..200 {
        w.set(i, Fr::rand(&mut rng)).unwrap();
    }
    assert_eq!(reader.join().unwrap(), root);
    assert_ne!(w.root().unwrap(), root);
    drop(w);
    txn.commit().unwrap();
}

#[test]
fn reopening_with_another_depth_is_an_error() {
    let (_dir, _path, db) = temp_db();
    let txn = db.begin_write().unwrap();
    MerkleTree::new("t", 8)
        .unwrap()
        .set(&txn, 1, Fr::one())
        .unwrap();
    txn.commit().unwrap();
    let other = MerkleTree::new("t", 9).unwrap();
    let txn = db.begin_write().unwrap();
    let e = other.writer(&txn).err().unwrap();
    assert!(
        matches!(
            e,
            MerkleError::DepthMismatch {
                stored: 8,
                requested: 9,
                ..
            }
        ),
        "{e}"
    );
    drop(txn);
    let read = db.begin_read().unwrap();
    assert!(matches!(
        other.snapshot(&read),
        Err(MerkleError::DepthMismatch { .. })
    ));
}

#[test]
fn node_encoding_is_canonical_and_corruption_is_reported() {
    let mut rng = ChaCha8Rng::seed_from_u64(41);
    for _ in 0..20 {
        let x = Fr::rand(&mut rng);
        let mut ark = Vec::new();
        x.serialize_compressed(&mut ark).unwrap();
        assert_eq!(encode_node(&x).to_vec(), ark);
        assert_eq!(decode_node(&encode_node(&x)), Some(x));
    }
    let mut modulus = [0u8; 32];
    modulus.copy_from_slice(&<Fr as PrimeField>::MODULUS.to_bytes_le());
    assert_eq!(decode_node(&modulus), None);
    assert_eq!(decode_node(&[0xff; 32]), None);

    let (_dir, _path, db) = temp_db();
    let tree = MerkleTree::new("t", 4).unwrap();
    let txn = db.begin_write().unwrap();
    tree.set(&txn, 3, Fr::from(5u64)).unwrap();
    txn.open_table(tree.table_definition())
        .unwrap()
        .insert((0u8, 3u64), &[0xff; 32])
        .unwrap();
    txn.commit().unwrap();
    let snap = tree.snapshot(&db.begin_read().unwrap()).unwrap();
    let e = snap.get_leaf(3).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, MerkleError::Corrupt { .. }));
    assert!(
        msg.contains("level 0, index 3") && msg.contains("`t`"),
        "{msg}"
    );
    assert!(snap.proof(2).is_err());
    assert!(snap.root().is_ok());
}

#[test]
fn proofs_round_trip_through_json_with_decimal_siblings() {
    let proof = MerkleProof {
        index: 6,
        siblings: vec![Fr::zero(), Fr::from(12345u64), -Fr::one()],
    };
    let json = serde_json::to_string(&proof).unwrap();
    let p_minus_1 = "21888242871839275222246405745257275088548364400416034343698204186575808495616";
    assert_eq!(
        json,
        format!(r#"{{"index":6,"siblings":["0","12345","{p_minus_1}"]}}"#)
    );
    let back: MerkleProof = serde_json::from_str(&json).unwrap();
    assert_eq!(back, proof);
    let p = "21888242871839275222246405745257275088548364400416034343698204186575808495617";
    for bad in ["", "01", "+1", "-1", "1_0", "0x10", " 1", p] {
        let json = format!(r#"{{"index":1,"siblings":["{bad}"]}}"#);
        assert!(
            serde_json::from_str::<MerkleProof>(&json).is_err(),
            "{bad:?}"
        );
    }
    assert!(serde_json::from_str::<MerkleProof>(r#"{"index":1,"siblings":[1]}"#).is_err());
    assert!(serde_json::from_str::<MerkleProof>(r#"{"index":1,"siblings":[],"extra":0}"#).is_err());
    assert_eq!(proof.index_bits(), vec![false, true, true]);
}

/// Throughput at production depth; run with
/// `cargo test -p pulse-circuits --release merkle::tests::update_rate -- --ignored --nocapture`.
#[test]
#[ignore]
fn update_rate_at_depth_32() {
    let mut rng = ChaCha8Rng::seed_from_u64(51);
    let (_dir, _path, db) = temp_db();
    let tree = MerkleTree::new("t", 32).unwrap();
    let n = 20_000u32;
    let leaves: Vec<(u64, Fr)> = (0..n)
        .map(|_| (rng.gen_range(0..1u64 << 32), Fr::rand(&mut rng)))
        .collect();

    let start = std::time::Instant::now();
    for _ in 0..n / 10 {
        let _ = poseidon::hash2(leaves[0].1, leaves[1].1);
    }
    let per_hash = start.elapsed() / (n / 10);

    let start = std::time::Instant::now();
    let txn = db.begin_write().unwrap();
    {
        let mut w = tree.writer(&txn).unwrap();
        for &(i, leaf) in &leaves {
            w.set(i, leaf).unwrap();
        }
    }
    let in_txn = start.elapsed();
    txn.commit().unwrap();
    let total = start.elapsed();

    let start = std::time::Instant::now();
    let snap = tree.snapshot(&db.begin_read().unwrap()).unwrap();
    for &(i, _) in leaves.iter().take(5000) {
        let _ = snap.proof(i).unwrap();
    }
    let proofs = start.elapsed();
    #[allow(clippy::print_stdout)]
    {
        println!("poseidon hash2: {per_hash:?}");
        println!(
            "depth 32: {n} updates in {in_txn:?} + commit = {total:?}: {:.0} updates/s \
             ({:.0} µs/update, of which 32 hashes = {:.0} µs)",
            f64::from(n) / total.as_secs_f64(),
            total.as_secs_f64() * 1e6 / f64::from(n),
            per_hash.as_secs_f64() * 32e6
        );
        println!("snapshot proofs: {:.0}/s", 5000.0 / proofs.as_secs_f64());
    }
}
