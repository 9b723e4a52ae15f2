//! The leaves of the three state trees and how each is hashed.
//!
//! ```text
//! account = poseidon([pk.x, pk.y, role, nonce])
//! record  = poseidon([owner, uploader, cid_digest, metadata_hash])
//! grant   = poseidon([patient, grantee, scope, permissions, expires_at, active])
//! state root = poseidon([accounts_root, records_root, grants_root])
//! ```
//! An empty leaf is 0. The circuit hashes the same preimages.

use ark_bn254::Fr;
use serde::{Deserialize, Serialize};

use crate::babyjubjub::Point;
use crate::field::fr_string;
use crate::poseidon;

/// An account: its key, role and nonce.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountLeaf {
    /// The account's public key (circomlib BabyJubJub form).
    pub pk: Point,
    /// The role code (see [`crate::tx::Role`]).
    pub role: u64,
    /// The number of the account's transactions applied so far.
    pub nonce: u64,
}

impl AccountLeaf {
    /// The leaf hash.
    pub fn hash(&self) -> Fr {
        poseidon::hash_n([
            self.pk.x,
            self.pk.y,
            Fr::from(self.role),
            Fr::from(self.nonce),
        ])
    }

    /// The placeholder preimage used in slots that touch no account (the identity key).
    pub fn placeholder() -> Self {
        Self {
            pk: Point::identity(),
            role: 0,
            nonce: 0,
        }
    }
}

/// A record: who owns it, who uploaded it, and what it points to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RecordLeaf {
    /// The patient who owns it.
    pub owner: u64,
    /// The account that uploaded it.
    pub uploader: u64,
    /// The digest of the CID of the encrypted file ([`crate::tx::cid_digest`]).
    #[serde(with = "fr_string")]
    pub cid_digest: Fr,
    /// The metadata hash.
    #[serde(with = "fr_string")]
    pub metadata_hash: Fr,
}

impl RecordLeaf {
    /// The leaf hash.
    pub fn hash(&self) -> Fr {
        poseidon::hash_n([
            Fr::from(self.owner),
            Fr::from(self.uploader),
            self.cid_digest,
            self.metadata_hash,
        ])
    }
}

/// A grant of access from a patient to another account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GrantLeaf {
    /// The patient granting access.
    pub patient: u64,
    /// The account receiving it.
    pub grantee: u64,
    /// 0 for all records, else a record id.
    pub scope: u64,
    /// Permission bits: 1 read, 2 write.
    pub permissions: u64,
    /// Unix seconds after which it no longer holds.
    pub expires_at: u64,
    /// False once revoked.
    pub active: bool,
}

impl GrantLeaf {
    /// The leaf hash.
    pub fn hash(&self) -> Fr {
        poseidon::hash_n([
            Fr::from(self.patient),
            Fr::from(self.grantee),
            Fr::from(self.scope),
            Fr::from(self.permissions),
            Fr::from(self.expires_at),
            Fr::from(u64::from(self.active)),
        ])
    }
}

/// The roots of the three trees.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Roots {
    /// Accounts tree root.
    #[serde(with = "fr_string")]
    pub accounts: Fr,
    /// Records tree root.
    #[serde(with = "fr_string")]
    pub records: Fr,
    /// Grants tree root.
    #[serde(with = "fr_string")]
    pub grants: Fr,
}

impl Roots {
    /// The state root.
    pub fn state_root(&self) -> Fr {
        poseidon::hash_n([self.accounts, self.records, self.grants])
    }
}
