//! The persistent node store: Merkle trees kept in tables of a caller-owned redb database.
//!
//! # Layout
//!
//! Each tree is one redb table, named by the tree ([`MerkleTree::name`]), mapping
//! [`NodeKey`] `(level, index)` to the node's 32-byte value ([`NodeValue`]): the canonical
//! little-endian encoding of the [`Fr`] that `ark-serialize` writes. Level 0 holds the leaves
//! and level `D` the root (at index 0). Only nodes that differ from the empty hash of their
//! level are stored; a missing key reads as that empty hash. A small shared table,
//! [`TREES_TABLE`], records each tree's depth so that opening a tree with the wrong depth is
//! an error instead of silently wrong roots.
//!
//! # Why no overlay
//!
//! The trees work directly inside the caller's redb transactions rather than through an
//! in-memory overlay: a redb [`WriteTransaction`] already is one (its dirty pages stay in
//! memory until commit, reads inside it see its own writes, `abort` or drop discards all of
//! them, and `commit` makes every tree and every other table of the same database change
//! together), and a [`ReadTransaction`] is a consistent snapshot that keeps serving the last
//! committed roots and proofs while a writer works. A second cache would duplicate that and
//! add a way for the two to disagree.
//!
//! # Cost of an update
//!
//! [`TreeWriter::set`] reads the old leaf, the old root and the `D` siblings, hashes exactly
//! `D` times (nothing when the leaf does not change) and writes (or, for nodes that became
//! empty, removes) the `D + 1` nodes on the path. Opening the table once per batch
//! ([`MerkleTree::writer`]) rather than per update avoids redb's table lookup.

use ark_bn254::Fr;
use ark_ff::{PrimeField, Zero};
use ark_serialize::CanonicalDeserialize;
use redb::{
    ReadOnlyTable, ReadTransaction, ReadableTable, Table, TableDefinition, TableError,
    WriteTransaction,
};

use super::{MerkleError, MerkleProof, check_depth, check_index, empty_hashes, parent};

/// Key of a stored node: `(level, index at that level)`, level 0 being the leaves.
pub type NodeKey = (u8, u64);

/// Value of a stored node: the canonical 32-byte little-endian encoding of an [`Fr`].
pub type NodeValue = &'static [u8; 32];

/// The table recording each tree's depth (tree name to depth), shared by all trees of a
/// database.
pub const TREES_TABLE: TableDefinition<'static, &'static str, u8> =
    TableDefinition::new("pulse.merkle.trees");

/// A handle on one named tree of fixed depth; cheap to copy, holds no database state.
///
/// Pulse keeps three trees (accounts, records, grants) in one database, each a handle like
/// `MerkleTree::new("pulse.tree.accounts", 32)`. The name is the redb table holding the
/// tree's nodes, so it must not be used by any other table of the database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MerkleTree {
    name: &'static str,
    depth: usize,
}

/// What one leaf update did. [`Self::proof`] holds the siblings at the time of the update,
/// which proves both `old_leaf` under `old_root` and `new_leaf` under `new_root`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeafUpdate {
    /// The authentication path of the leaf (unchanged by the update).
    pub proof: MerkleProof,
    /// The leaf before the update.
    pub old_leaf: Fr,
    /// The leaf after the update.
    pub new_leaf: Fr,
    /// The root before the update.
    pub old_root: Fr,
    /// The root after the update.
    pub new_root: Fr,
}

impl MerkleTree {
    /// A handle on the tree called `name`, of depth `depth` (`2^depth` leaves).
    ///
    /// # Errors
    /// [`MerkleError::InvalidDepth`] unless `1 <= depth <= 64`.
    pub fn new(name: &'static str, depth: usize) -> Result<Self, MerkleError> {
        check_depth(depth)?;
        Ok(Self { name, depth })
    }

    /// The tree's name, which is also the name of its redb table.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The tree's depth.
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// The root of this tree when all its leaves are 0.
    pub fn empty_root(&self) -> Fr {
        empty_hashes()[self.depth]
    }

    /// The definition of the table holding this tree's nodes, for callers that manage the
    /// table themselves (see the generic `*_in` methods).
    pub fn table_definition(&self) -> TableDefinition<'static, NodeKey, NodeValue> {
        TableDefinition::new(self.name)
    }

    /// Whether `proof` proves `leaf` under `root` in a tree of this depth.
    pub fn verify(&self, proof: &MerkleProof, root: Fr, leaf: Fr) -> bool {
        proof.verify(self.depth, root, leaf)
    }

    /// Opens the tree for reading and writing inside `txn`, recording its depth on first use.
    /// Nothing is written to the file until the caller commits `txn`; aborting or dropping it
    /// discards every update made through the writer.
    ///
    /// # Errors
    /// [`MerkleError::DepthMismatch`] if the database holds this tree with another depth;
    /// [`MerkleError::Storage`] if redb fails, for instance because the table is already open
    /// in `txn`.
    pub fn writer<'txn>(
        &self,
        txn: &'txn WriteTransaction,
    ) -> Result<TreeWriter<'txn>, MerkleError> {
        {
            let mut trees = txn.open_table(TREES_TABLE)?;
            let stored = trees.get(self.name)?.map(|v| v.value());
            match stored {
                Some(d) => self.check_stored_depth(d)?,
                None => {
                    trees.insert(self.name, self.depth_u8())?;
                }
            }
        }
        let table = txn.open_table(self.table_definition())?;
        Ok(TreeWriter { tree: *self, table })
    }

    /// Opens the tree in the snapshot `txn`: proofs and roots as of the snapshot, however a
    /// writer changes the database meanwhile. A tree never committed reads as empty.
    ///
    /// # Errors
    /// [`MerkleError::DepthMismatch`] if the database holds this tree with another depth;
    /// [`MerkleError::Storage`] if redb fails.
    pub fn snapshot(&self, txn: &ReadTransaction) -> Result<TreeSnapshot, MerkleError> {
        let stored = match txn.open_table(TREES_TABLE) {
            Ok(trees) => trees.get(self.name)?.map(|v| v.value()),
            Err(TableError::TableDoesNotExist(_)) => None,
            Err(e) => return Err(e.into()),
        };
        let table = match stored {
            None => None,
            Some(d) => {
                self.check_stored_depth(d)?;
                match txn.open_table(self.table_definition()) {
                    Ok(t) => Some(t),
                    Err(TableError::TableDoesNotExist(_)) => None,
                    Err(e) => return Err(e.into()),
                }
            }
        };
        Ok(TreeSnapshot { tree: *self, table })
    }

    /// Updates a leaf inside `txn`, opening the tree's table for this one update. To update
    /// many leaves, open a [`Self::writer`] once and call [`TreeWriter::set`].
    ///
    /// # Errors
    /// As [`Self::writer`] and [`TreeWriter::set`].
    pub fn set(
        &self,
        txn: &WriteTransaction,
        index: u64,
        leaf: Fr,
    ) -> Result<LeafUpdate, MerkleError> {
        self.writer(txn)?.set(index, leaf)
    }

    /// The root, read from any table holding this tree's nodes.
    ///
    /// # Errors
    /// [`MerkleError::Storage`] or [`MerkleError::Corrupt`] on a bad read.
    pub fn root_in<T: ReadableTable<NodeKey, NodeValue>>(
        &self,
        table: &T,
    ) -> Result<Fr, MerkleError> {
        self.node_in(table, self.depth, 0)
    }

    /// A leaf, read from any table holding this tree's nodes.
    ///
    /// # Errors
    /// [`MerkleError::IndexOutOfRange`]; [`MerkleError::Storage`] or
    /// [`MerkleError::Corrupt`] on a bad read.
    pub fn leaf_in<T: ReadableTable<NodeKey, NodeValue>>(
        &self,
        table: &T,
        index: u64,
    ) -> Result<Fr, MerkleError> {
        check_index(self.depth, index)?;
        self.node_in(table, 0, index)
    }

    /// The authentication path of a leaf (set or empty), read from any table holding this
    /// tree's nodes.
    ///
    /// # Errors
    /// [`MerkleError::IndexOutOfRange`]; [`MerkleError::Storage`] or
    /// [`MerkleError::Corrupt`] on a bad read.
    pub fn proof_in<T: ReadableTable<NodeKey, NodeValue>>(
        &self,
        table: &T,
        index: u64,
    ) -> Result<MerkleProof, MerkleError> {
        check_index(self.depth, index)?;
        let siblings = (0..self.depth)
            .map(|level| self.node_in(table, level, (index >> level) ^ 1))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(MerkleProof { index, siblings })
    }

    /// Sets a leaf in a table holding this tree's nodes, returning the path before the update
    /// and the old and new leaf and root.
    ///
    /// # Errors
    /// [`MerkleError::IndexOutOfRange`]; [`MerkleError::Storage`] or
    /// [`MerkleError::Corrupt`] on a bad read or write. After an error the table may hold a
    /// partial update: abort the transaction.
    pub fn set_in(
        &self,
        table: &mut Table<'_, NodeKey, NodeValue>,
        index: u64,
        leaf: Fr,
    ) -> Result<LeafUpdate, MerkleError> {
        let proof = self.proof_in(table, index)?;
        let old_leaf = self.node_in(table, 0, index)?;
        let old_root = self.node_in(table, self.depth, 0)?;
        if old_leaf == leaf {
            return Ok(LeafUpdate {
                proof,
                old_leaf,
                new_leaf: leaf,
                old_root,
                new_root: old_root,
            });
        }
        let mut cur = leaf;
        for (level, sibling) in proof.siblings.iter().enumerate() {
            let at = index >> level;
            self.put_node(table, level, at, &cur)?;
            cur = parent(cur, *sibling, at);
        }
        self.put_node(table, self.depth, 0, &cur)?;
        Ok(LeafUpdate {
            proof,
            old_leaf,
            new_leaf: leaf,
            old_root,
            new_root: cur,
        })
    }

    /// Reads the node at `(level, index)`, the empty hash when absent.
    fn node_in<T: ReadableTable<NodeKey, NodeValue>>(
        &self,
        table: &T,
        level: usize,
        index: u64,
    ) -> Result<Fr, MerkleError> {
        match table.get((level_key(level), index))? {
            None => Ok(empty_hashes()[level]),
            Some(guard) => {
                let bytes: &[u8; 32] = guard.value();
                decode_node(bytes).ok_or_else(|| MerkleError::Corrupt {
                    what: format!(
                        "node (level {level}, index {index}) of tree `{}` is not a canonical \
                         BN254 scalar (bytes {})",
                        self.name,
                        hex::encode(bytes)
                    ),
                })
            }
        }
    }

    /// Writes the node at `(level, index)`, or removes it when it is the empty hash.
    fn put_node(
        &self,
        table: &mut Table<'_, NodeKey, NodeValue>,
        level: usize,
        index: u64,
        value: &Fr,
    ) -> Result<(), MerkleError> {
        let key = (level_key(level), index);
        if *value == empty_hashes()[level] {
            table.remove(key)?;
        } else {
            table.insert(key, &encode_node(value))?;
        }
        Ok(())
    }

    fn depth_u8(&self) -> u8 {
        level_key(self.depth)
    }

    fn check_stored_depth(&self, stored: u8) -> Result<(), MerkleError> {
        if usize::from(stored) == self.depth {
            Ok(())
        } else {
            Err(MerkleError::DepthMismatch {
                tree: self.name.to_string(),
                stored: usize::from(stored),
                requested: self.depth,
            })
        }
    }
}

/// A level as stored in a key; levels never exceed [`super::MAX_DEPTH`], so this is exact.
#[inline]
fn level_key(level: usize) -> u8 {
    u8::try_from(level).unwrap_or(u8::MAX)
}

/// The canonical little-endian 32-byte encoding (what `ark-serialize` writes for an [`Fr`]).
pub(crate) fn encode_node(x: &Fr) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (chunk, limb) in out.chunks_exact_mut(8).zip(x.into_bigint().0) {
        chunk.copy_from_slice(&limb.to_le_bytes());
    }
    out
}

/// Decodes [`encode_node`]'s output; `None` for an integer not below the modulus.
pub(crate) fn decode_node(bytes: &[u8; 32]) -> Option<Fr> {
    Fr::deserialize_compressed(&bytes[..]).ok()
}

/// A tree opened inside a write transaction ([`MerkleTree::writer`]).
pub struct TreeWriter<'txn> {
    tree: MerkleTree,
    table: Table<'txn, NodeKey, NodeValue>,
}

impl TreeWriter<'_> {
    /// The tree this writer works on.
    pub fn tree(&self) -> MerkleTree {
        self.tree
    }

    /// Sets leaf `index` to `leaf`; see [`LeafUpdate`]. Writing 0 clears the leaf.
    ///
    /// # Errors
    /// [`MerkleError::IndexOutOfRange`]; [`MerkleError::Storage`] or
    /// [`MerkleError::Corrupt`] on a bad read or write. After an error the tree may hold a
    /// partial update: abort the transaction.
    pub fn set(&mut self, index: u64, leaf: Fr) -> Result<LeafUpdate, MerkleError> {
        self.tree.set_in(&mut self.table, index, leaf)
    }

    /// Applies updates in order, returning one [`LeafUpdate`] each (each proof is valid for
    /// the tree as the previous updates left it).
    ///
    /// # Errors
    /// As [`Self::set`]; the updates before the failing one stay applied.
    pub fn set_many(&mut self, updates: &[(u64, Fr)]) -> Result<Vec<LeafUpdate>, MerkleError> {
        updates.iter().map(|&(i, leaf)| self.set(i, leaf)).collect()
    }

    /// The current root, including this transaction's uncommitted updates.
    ///
    /// # Errors
    /// [`MerkleError::Storage`] or [`MerkleError::Corrupt`] on a bad read.
    pub fn root(&self) -> Result<Fr, MerkleError> {
        self.tree.root_in(&self.table)
    }

    /// A leaf, including this transaction's uncommitted updates.
    ///
    /// # Errors
    /// As [`MerkleTree::leaf_in`].
    pub fn get_leaf(&self, index: u64) -> Result<Fr, MerkleError> {
        self.tree.leaf_in(&self.table, index)
    }

    /// A leaf's path in the current tree.
    ///
    /// # Errors
    /// As [`MerkleTree::proof_in`].
    pub fn proof(&self, index: u64) -> Result<MerkleProof, MerkleError> {
        self.tree.proof_in(&self.table, index)
    }
}

/// A tree as of a read transaction ([`MerkleTree::snapshot`]); independent of the transaction
/// object's lifetime and can be sent to another thread.
pub struct TreeSnapshot {
    tree: MerkleTree,
    table: Option<ReadOnlyTable<NodeKey, NodeValue>>,
}

impl TreeSnapshot {
    /// The tree this snapshot reads.
    pub fn tree(&self) -> MerkleTree {
        self.tree
    }

    /// The root as of the snapshot.
    ///
    /// # Errors
    /// [`MerkleError::Storage`] or [`MerkleError::Corrupt`] on a bad read.
    pub fn root(&self) -> Result<Fr, MerkleError> {
        match &self.table {
            Some(t) => self.tree.root_in(t),
            None => Ok(self.tree.empty_root()),
        }
    }

    /// A leaf as of the snapshot.
    ///
    /// # Errors
    /// As [`MerkleTree::leaf_in`].
    pub fn get_leaf(&self, index: u64) -> Result<Fr, MerkleError> {
        match &self.table {
            Some(t) => self.tree.leaf_in(t, index),
            None => check_index(self.tree.depth, index).map(|()| Fr::zero()),
        }
    }

    /// A leaf's path as of the snapshot.
    ///
    /// # Errors
    /// As [`MerkleTree::proof_in`].
    pub fn proof(&self, index: u64) -> Result<MerkleProof, MerkleError> {
        match &self.table {
            Some(t) => self.tree.proof_in(t, index),
            None => {
                check_index(self.tree.depth, index)?;
                let siblings = empty_hashes()[..self.tree.depth].to_vec();
                Ok(MerkleProof { index, siblings })
            }
        }
    }
}
