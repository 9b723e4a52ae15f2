//! Fixed-depth Poseidon Merkle trees: the native tree math, a persistent node store on
//! [`redb`], and the R1CS gadget ([`gadget`]).
//!
//! # Tree layout
//!
//! A tree of depth `D` (1 to [`MAX_DEPTH`]) has `2^D` leaves indexed by `u64`; every leaf is a
//! BN254 scalar ([`Fr`]) and a leaf never written is `0`. Levels are numbered from the leaves
//! up: level 0 holds the leaves, level `D` holds the single root. The node at level `l + 1`,
//! index `i` is `poseidon::hash2(node(l, 2i), node(l, 2i + 1))`. Bit `l` (least significant
//! first) of a leaf's index says whether the leaf's ancestor at level `l` is a right child,
//! so the authentication path of leaf `i` is, for each level `l < D`, the node at index
//! `(i >> l) ^ 1`.
//!
//! A subtree whose leaves are all `0` hashes to the *empty hash* of its height,
//! `E[0] = 0, E[l + 1] = hash2(E[l], E[l])`. These do not depend on the tree's depth, so one
//! table of `MAX_DEPTH + 1` values, computed once per process ([`empty_hashes`]), serves every
//! tree.
//!
//! # Storage
//!
//! See [`MerkleTree`]: each tree lives in its own redb table, inside a database that the
//! caller owns and shares with other state, and every operation runs inside a transaction the
//! caller opens. Only nodes that differ from the empty hash of their level are stored, so an
//! empty tree takes no space and clearing a leaf removes the nodes that became empty.
//!
//! # Proofs
//!
//! A [`MerkleProof`] is a leaf index with its `D` siblings, bottom-up. Updating a leaf
//! ([`TreeWriter::set`]) returns the proof that was valid before the update together with the
//! old and new leaf and root ([`LeafUpdate`]); the siblings do not change when the leaf does,
//! so the same path proves both roots, which is what the chunk circuit's
//! [`gadget::update`] consumes.

pub mod gadget;
mod store;

use std::sync::OnceLock;

use ark_bn254::Fr;
use ark_ff::Zero;
use serde::{Deserialize, Serialize};

pub use store::{
    LeafUpdate, MerkleTree, NodeKey, NodeValue, TREES_TABLE, TreeSnapshot, TreeWriter,
};

use crate::poseidon;

/// The deepest tree supported: every `u64` is a leaf index.
pub const MAX_DEPTH: usize = 64;

/// Errors of the Merkle tree and its node store.
#[derive(Debug, thiserror::Error)]
pub enum MerkleError {
    /// The leaf index does not fit the tree.
    #[error(
        "leaf index {index} is out of range for a depth-{depth} Merkle tree, which has leaves \
         0..2^{depth}; check the index, or the depth the tree was configured with"
    )]
    IndexOutOfRange {
        /// The index asked for.
        index: u64,
        /// The tree's depth.
        depth: usize,
    },
    /// The depth is not in `1..=MAX_DEPTH` (or a proof has that many siblings).
    #[error("a Merkle tree of depth {depth} is not supported; use a depth from 1 to {MAX_DEPTH}")]
    InvalidDepth {
        /// The depth asked for.
        depth: usize,
    },
    /// The database already holds a tree of this name with another depth.
    #[error(
        "the database holds Merkle tree `{tree}` with depth {stored}, but it was opened with \
         depth {requested}; open it with depth {stored}, or use a new tree name or database"
    )]
    DepthMismatch {
        /// The tree's name.
        tree: String,
        /// The depth recorded in the database.
        stored: usize,
        /// The depth the handle was built with.
        requested: usize,
    },
    /// The database failed (I/O, locking, a table of another type under the tree's name...).
    #[error("Merkle node store: {0}; check the database file, its permissions and free disk space")]
    Storage(#[from] redb::Error),
    /// The database holds something that cannot be a tree node.
    #[error(
        "Merkle node store is corrupt: {what}; restore the database from a backup or rebuild the \
         tree from its leaves"
    )]
    Corrupt {
        /// What is corrupt and where.
        what: String,
    },
}

macro_rules! storage_error_from {
    ($($t:ty),* $(,)?) => {$(
        impl From<$t> for MerkleError {
            fn from(e: $t) -> Self {
                MerkleError::Storage(e.into())
            }
        }
    )*};
}
storage_error_from!(
    redb::StorageError,
    redb::TableError,
    redb::TransactionError,
    redb::CommitError,
    redb::DatabaseError,
);

/// Checks that `depth` is a supported tree depth.
///
/// # Errors
/// [`MerkleError::InvalidDepth`] outside `1..=MAX_DEPTH`.
pub fn check_depth(depth: usize) -> Result<(), MerkleError> {
    if (1..=MAX_DEPTH).contains(&depth) {
        Ok(())
    } else {
        Err(MerkleError::InvalidDepth { depth })
    }
}

/// Checks that `index` is a leaf of a tree of depth `depth` (assumed valid).
///
/// # Errors
/// [`MerkleError::IndexOutOfRange`] when `index >= 2^depth`.
pub fn check_index(depth: usize, index: u64) -> Result<(), MerkleError> {
    if depth >= 64 || index >> depth == 0 {
        Ok(())
    } else {
        Err(MerkleError::IndexOutOfRange { index, depth })
    }
}

/// The empty-subtree hashes `E[0..=MAX_DEPTH]`: `E[l]` is the root of a height-`l` subtree
/// whose leaves are all `0`. Computed once per process.
pub fn empty_hashes() -> &'static [Fr; MAX_DEPTH + 1] {
    static EMPTY: OnceLock<[Fr; MAX_DEPTH + 1]> = OnceLock::new();
    EMPTY.get_or_init(|| {
        let mut e = [Fr::zero(); MAX_DEPTH + 1];
        for l in 0..MAX_DEPTH {
            e[l + 1] = poseidon::hash2(e[l], e[l]);
        }
        e
    })
}

/// The root of an empty tree of depth `depth`.
///
/// # Errors
/// [`MerkleError::InvalidDepth`] outside `1..=MAX_DEPTH`.
pub fn empty_root(depth: usize) -> Result<Fr, MerkleError> {
    check_depth(depth)?;
    Ok(empty_hashes()[depth])
}

/// Hashes a node at level `level` (its index being `index_at_level`) with its sibling.
#[inline]
fn parent(node: Fr, sibling: Fr, index_at_level: u64) -> Fr {
    if index_at_level & 1 == 0 {
        poseidon::hash2(node, sibling)
    } else {
        poseidon::hash2(sibling, node)
    }
}

/// A Merkle authentication path: a leaf index and the sibling of each of its ancestors,
/// from the leaf's sibling (level 0) up to the root's children (level `D - 1`).
///
/// In JSON the siblings are decimal strings (`{"index": 5, "siblings": ["0", "1234..."]}`),
/// and parsing accepts only canonical decimals below the field modulus.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MerkleProof {
    /// The leaf index; bit `l` says whether the ancestor at level `l` is a right child.
    pub index: u64,
    /// The siblings, bottom-up; as many as the tree is deep.
    #[serde(with = "crate::field::fr_string_vec")]
    pub siblings: Vec<Fr>,
}

impl MerkleProof {
    /// The depth of the tree this path belongs to: the number of siblings.
    pub fn depth(&self) -> usize {
        self.siblings.len()
    }

    /// The index's bits, least significant first, one per level.
    pub fn index_bits(&self) -> Vec<bool> {
        (0..self.depth())
            .map(|l| l < 64 && (self.index >> l) & 1 == 1)
            .collect()
    }

    /// The root that this path leads to from `leaf`.
    ///
    /// # Errors
    /// [`MerkleError::InvalidDepth`] when the path has no siblings or more than
    /// [`MAX_DEPTH`]; [`MerkleError::IndexOutOfRange`] when the index does not fit the
    /// path's depth.
    pub fn root_for(&self, leaf: Fr) -> Result<Fr, MerkleError> {
        let depth = self.depth();
        check_depth(depth)?;
        check_index(depth, self.index)?;
        let mut cur = leaf;
        for (level, sibling) in self.siblings.iter().enumerate() {
            cur = parent(cur, *sibling, self.index >> level);
        }
        Ok(cur)
    }

    /// Whether this path proves that `leaf` sits at [`Self::index`] in the depth-`depth` tree
    /// with root `root`. A path of another length or an index out of range is rejected: the
    /// depth must come from the verifier, or an inner node could pass for a leaf.
    pub fn verify(&self, depth: usize, root: Fr, leaf: Fr) -> bool {
        self.depth() == depth && matches!(self.root_for(leaf), Ok(r) if r == root)
    }
}

#[cfg(test)]
mod tests;
