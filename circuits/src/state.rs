//! The rollup state on disk and the native state transition.
//!
//! One redb database holds the three Merkle trees ([`crate::merkle`]), the leaf preimages
//! (accounts, records with their full CIDs, grants), an index from public key to account,
//! and counters. A [`Batch`] is one redb write transaction: transactions are applied to it
//! one by one, each either fully (its rows, its three tree operations, its counters) or not
//! at all, and the whole batch is committed atomically or rolled back. Readers
//! ([`State::account`], [`State::proof`], …) see the last committed state.
//!
//! Applying a transaction checks it exactly as the chunk circuit does (signature, nonce,
//! roles, ownership, grants and their expiry) and returns the [`SlotWitness`] the circuit
//! needs: the leaves before and the Merkle paths of every tree operation.

use std::path::Path;

use ark_bn254::Fr;
use cid::Cid;
use redb::{
    Database, MultimapTableDefinition, ReadableDatabase, ReadableTable, TableDefinition,
    WriteTransaction,
};
use serde::{Deserialize, Serialize};

use crate::circuit::SlotWitness;
use crate::deployment::Deployment;
use crate::eddsa::{self, PublicKey};
use crate::leaf::{AccountLeaf, GrantLeaf, RecordLeaf, Roots};
use crate::merkle::{MerkleError, MerkleProof, MerkleTree};
use crate::tx::{Role, SignedTransaction, TxBody, TxError, TxHash, TxKind, cid_digest};

mod batch;

pub use batch::{Batch, PublicSlot, ReplayError};

const META: TableDefinition<&str, u64> = TableDefinition::new("pulse.meta");
const ACCOUNTS: TableDefinition<u64, &[u8]> = TableDefinition::new("pulse.accounts");
const RECORDS: TableDefinition<u64, &[u8]> = TableDefinition::new("pulse.records");
const GRANTS: TableDefinition<u64, &[u8]> = TableDefinition::new("pulse.grants");
const PUBKEYS: TableDefinition<&[u8], u64> = TableDefinition::new("pulse.pubkeys");
/// Who is linked to which record or grant, by account and [`Link`]: the lookups of one
/// party's records and grants (outside the trees, which it does not change).
const LINKS: MultimapTableDefinition<(u64, u8), u64> = MultimapTableDefinition::new("pulse.links");
/// Access logs by account (the record's owner and the reader each), as [`AccessEntry`].
const ACCESS: MultimapTableDefinition<u64, &[u8]> = MultimapTableDefinition::new("pulse.access");
/// The version of the [`LINKS`] index (a state made before it is indexed at open).
const LINKS_VERSION: u64 = 1;

/// How an account is linked to a record or a grant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Link {
    /// The patient who owns a record.
    Owns = 0,
    /// The account that uploaded a record (when not its owner).
    Uploaded = 1,
    /// The patient who made a grant.
    Granted = 2,
    /// The account a grant was made to.
    Received = 3,
}

/// One access logged on L1: `reader` read `record` (owned by `owner`) under `grant`, in
/// the batch of time `at`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessEntry {
    /// The record read.
    pub record: u64,
    /// Its owner.
    pub owner: u64,
    /// The grant that allowed it.
    pub grant: u64,
    /// The account that read it.
    pub reader: u64,
    /// The batch time (unix seconds).
    pub at: u64,
    /// The hash of the stated purpose.
    #[serde(with = "crate::field::fr_string")]
    pub purpose: Fr,
    /// The reader's nonce after the access (tells two accesses of one batch apart).
    pub nonce: u64,
}

const ACCOUNTS_TREE: &str = "pulse.tree.accounts";
const RECORDS_TREE: &str = "pulse.tree.records";
const GRANTS_TREE: &str = "pulse.tree.grants";

/// The three trees.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TreeKind {
    /// Accounts.
    Accounts,
    /// Records.
    Records,
    /// Grants.
    Grants,
}

/// Errors of the store itself (not of a transaction).
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The database could not be read or written.
    #[error("state store: {0}; check the disk and the file permissions of the state directory")]
    Storage(String),
    /// A Merkle tree failed.
    #[error("state tree: {0}")]
    Merkle(#[from] MerkleError),
    /// The database holds something this version cannot read.
    #[error("state store is corrupt: {0}; restore it from a backup or rebuild it from L1 and IPFS")]
    Corrupt(String),
    /// The database was created with other parameters.
    #[error(
        "state at {path} was created with tree depth {stored}, not {wanted}; use a fresh state directory for a new depth"
    )]
    DepthMismatch {
        /// The file.
        path: String,
        /// Depth on disk.
        stored: u64,
        /// Depth asked for.
        wanted: usize,
    },
    /// Genesis was already written.
    #[error("genesis was already written to this state")]
    AlreadyInitialized,
}

macro_rules! storage_from {
    ($($t:ty),*) => {$(
        impl From<$t> for StateError {
            fn from(e: $t) -> Self {
                Self::Storage(e.to_string())
            }
        }
    )*};
}
storage_from!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// Why [`Batch::apply`] did not apply a transaction.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The transaction is invalid: reject it, the batch goes on.
    #[error(transparent)]
    Rejected(#[from] TxError),
    /// The store failed: abort the batch.
    #[error(transparent)]
    Storage(#[from] StateError),
}

impl From<MerkleError> for ApplyError {
    fn from(e: MerkleError) -> Self {
        Self::Storage(StateError::Merkle(e))
    }
}

/// A stored record: its leaf and the full CID.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredRecord {
    /// The leaf preimage.
    pub leaf: RecordLeaf,
    /// The CID of the encrypted file.
    pub cid: String,
}

/// What applying one transaction did.
#[derive(Clone, Debug)]
pub struct Applied {
    /// The transaction hash.
    pub hash: TxHash,
    /// Its kind.
    pub kind: TxKind,
    /// The account it created, if any.
    pub new_account: Option<u64>,
    /// The record it created, if any.
    pub new_record: Option<u64>,
    /// The grant it created, if any.
    pub new_grant: Option<u64>,
    /// The roots after it.
    pub roots_after: Roots,
    /// The circuit's view of it.
    pub slot: SlotWitness,
}

/// The persistent rollup state.
pub struct State {
    db: Database,
    depth: usize,
    accounts: MerkleTree,
    records: MerkleTree,
    grants: MerkleTree,
}

fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>, StateError> {
    serde_json::to_vec(v).map_err(|e| StateError::Corrupt(e.to_string()))
}

fn decode<T: for<'de> Deserialize<'de>>(b: &[u8], what: &str) -> Result<T, StateError> {
    serde_json::from_slice(b).map_err(|e| StateError::Corrupt(format!("{what}: {e}")))
}

fn pk_key(pk: &PublicKey) -> Vec<u8> {
    let mut k = Vec::with_capacity(64);
    let p = &pk.0;
    k.extend_from_slice(&ark_ff::BigInteger::to_bytes_le(
        &ark_ff::PrimeField::into_bigint(p.x),
    ));
    k.extend_from_slice(&ark_ff::BigInteger::to_bytes_le(
        &ark_ff::PrimeField::into_bigint(p.y),
    ));
    k
}

impl State {
    /// Open (or create) the state at `path` with trees of depth `depth`.
    ///
    /// # Errors
    /// [`StateError::DepthMismatch`] when the file was made for another depth;
    /// [`StateError::Storage`] when it cannot be opened.
    pub fn open(path: &Path, depth: usize) -> Result<Self, StateError> {
        let db = Database::create(path)?;
        Self::with_db(db, &path.display().to_string(), depth)
    }

    /// A fresh state with trees of depth `depth` held in memory only: for the differential
    /// checks of the statement and for tests, which need no file and no fsync per batch.
    ///
    /// # Errors
    /// [`StateError::Storage`] when redb fails.
    pub fn in_memory(depth: usize) -> Result<Self, StateError> {
        let db = Database::builder().create_with_backend(redb::backends::InMemoryBackend::new())?;
        Self::with_db(db, "(in memory)", depth)
    }

    fn with_db(db: Database, path: &str, depth: usize) -> Result<Self, StateError> {
        let accounts = MerkleTree::new(ACCOUNTS_TREE, depth)?;
        let records = MerkleTree::new(RECORDS_TREE, depth)?;
        let grants = MerkleTree::new(GRANTS_TREE, depth)?;
        let txn = db.begin_write()?;
        {
            let mut meta = txn.open_table(META)?;
            let stored = meta.get("depth")?.map(|v| v.value());
            match stored {
                Some(d) if d != depth as u64 => {
                    return Err(StateError::DepthMismatch {
                        path: path.to_owned(),
                        stored: d,
                        wanted: depth,
                    });
                }
                Some(_) => {}
                None => {
                    meta.insert("depth", depth as u64)?;
                    for k in ["next_account", "next_record", "next_grant"] {
                        meta.insert(k, 1)?;
                    }
                }
            }
            txn.open_table(ACCOUNTS)?;
            txn.open_table(RECORDS)?;
            txn.open_table(GRANTS)?;
            txn.open_table(PUBKEYS)?;
            txn.open_multimap_table(LINKS)?;
            txn.open_multimap_table(ACCESS)?;
            if meta.get("links")?.map(|v| v.value()) != Some(LINKS_VERSION) {
                index_links(&txn)?;
                meta.insert("links", LINKS_VERSION)?;
            }
        }
        // Create the trees' tables so that readers find them.
        accounts.writer(&txn)?;
        records.writer(&txn)?;
        grants.writer(&txn)?;
        txn.commit()?;
        Ok(Self {
            db,
            depth,
            accounts,
            records,
            grants,
        })
    }

    /// The tree depth.
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// Write the genesis registrars (accounts 1, 2, …). Only on an empty state.
    ///
    /// # Errors
    /// [`StateError::AlreadyInitialized`] when the state already has accounts.
    pub fn init_genesis(&self, registrars: &[PublicKey]) -> Result<Roots, StateError> {
        let txn = self.db.begin_write()?;
        {
            let meta = txn.open_table(META)?;
            if meta.get("next_account")?.map(|v| v.value()) != Some(1) {
                return Err(StateError::AlreadyInitialized);
            }
        }
        for pk in registrars {
            let id = next_id(&txn, "next_account")?;
            let leaf = AccountLeaf {
                pk: pk.0,
                role: Role::Registrar.code(),
                nonce: 0,
            };
            self.accounts.set(&txn, id, leaf.hash())?;
            txn.open_table(ACCOUNTS)?
                .insert(id, encode(&leaf)?.as_slice())?;
            txn.open_table(PUBKEYS)?.insert(pk_key(pk).as_slice(), id)?;
        }
        txn.commit()?;
        self.roots()
    }

    /// A consistent read-only view of the committed state as it is now, which keeps
    /// answering for this moment however the state changes later (a snapshot: the pages it
    /// reads are kept until it is dropped). The coordinator keeps the view of the state the
    /// L1 contract holds, to serve proofs against that root.
    ///
    /// # Errors
    /// [`StateError`] on a storage failure.
    pub fn view(&self) -> Result<StateView, StateError> {
        Ok(StateView {
            txn: self.db.begin_read()?,
            accounts: self.accounts,
            records: self.records,
            grants: self.grants,
        })
    }

    /// The committed roots.
    ///
    /// # Errors
    /// [`StateError`] on a storage failure.
    pub fn roots(&self) -> Result<Roots, StateError> {
        self.view()?.roots()
    }

    /// A committed account.
    ///
    /// # Errors
    /// [`StateError`] on a storage failure.
    pub fn account(&self, id: u64) -> Result<Option<AccountLeaf>, StateError> {
        self.view()?.account(id)
    }

    /// The account holding a public key.
    ///
    /// # Errors
    /// [`StateError`] on a storage failure.
    pub fn account_by_key(&self, pk: &PublicKey) -> Result<Option<u64>, StateError> {
        let r = self.db.begin_read()?;
        let t = r.open_table(PUBKEYS)?;
        Ok(t.get(pk_key(pk).as_slice())?.map(|v| v.value()))
    }

    /// A committed record.
    ///
    /// # Errors
    /// [`StateError`] on a storage failure.
    pub fn record(&self, id: u64) -> Result<Option<StoredRecord>, StateError> {
        self.view()?.record(id)
    }

    /// A committed grant.
    ///
    /// # Errors
    /// [`StateError`] on a storage failure.
    pub fn grant(&self, id: u64) -> Result<Option<GrantLeaf>, StateError> {
        self.view()?.grant(id)
    }

    /// The committed leaf at `index` of a tree, its Merkle proof and the tree's roots, all
    /// from one snapshot (see [`StateView::proof`]).
    ///
    /// # Errors
    /// [`StateError`] on a storage failure or an index out of range.
    pub fn proof(
        &self,
        tree: TreeKind,
        index: u64,
    ) -> Result<(Fr, MerkleProof, Roots), StateError> {
        self.view()?.proof(tree, index)
    }

    /// Verify a transaction's signature for `deployment` against the committed key of its
    /// signer (or, for a self-registration, the key it registers). Safe to call from many
    /// threads at once.
    ///
    /// # Errors
    /// [`ApplyError::Rejected`] with [`TxError::BadSignature`] (which names the deployment:
    /// a signature made for another one ends there) or [`TxError::UnknownAccount`];
    /// [`ApplyError::Storage`] on a storage failure.
    pub fn verify_signature(
        &self,
        stx: &SignedTransaction,
        deployment: &Deployment,
    ) -> Result<(), ApplyError> {
        let pk = match &stx.tx.body {
            TxBody::Register { public_key, .. } if stx.tx.signer == 0 => *public_key,
            _ => PublicKey(
                self.account(stx.tx.signer)?
                    .ok_or(TxError::UnknownAccount(stx.tx.signer))?
                    .pk,
            ),
        };
        eddsa::verify(&pk, stx.tx.message(deployment.id)?, &stx.signature)
            .map_err(|e| bad_signature(e, deployment).into())
    }

    /// Start a batch at batch time `timestamp` (unix seconds) for `deployment`: its
    /// signatures are checked against that deployment's id, and its chunk witnesses carry it.
    ///
    /// # Errors
    /// [`StateError`] on a storage failure.
    pub fn begin(&self, timestamp: u64, deployment: &Deployment) -> Result<Batch<'_>, StateError> {
        let roots = self.roots()?;
        let txn = self.db.begin_write()?;
        Ok(Batch::new(self, txn, timestamp, deployment.clone(), roots))
    }
}

/// The refusal of a signature that does not verify on `deployment`.
fn bad_signature(e: eddsa::EddsaError, deployment: &Deployment) -> TxError {
    TxError::BadSignature {
        reason: e.to_string(),
        deployment: deployment.clone(),
    }
}

fn next_id(txn: &WriteTransaction, key: &str) -> Result<u64, StateError> {
    let mut meta = txn.open_table(META)?;
    let id = meta
        .get(key)?
        .map(|v| v.value())
        .ok_or_else(|| StateError::Corrupt(format!("missing counter {key}")))?;
    meta.insert(key, id + 1)?;
    Ok(id)
}

/// Indexes the records and grants a state holds by the accounts they link (for a state
/// written before the index; its access logs were not kept and stay unknown).
fn index_links(txn: &WriteTransaction) -> Result<(), StateError> {
    let mut records = Vec::new();
    for row in txn.open_table(RECORDS)?.iter()? {
        let (id, v) = row?;
        let r: StoredRecord = decode(v.value(), "record")?;
        records.push((id.value(), r.leaf));
    }
    for (id, leaf) in records {
        link_record(txn, id, &leaf)?;
    }
    let mut grants = Vec::new();
    for row in txn.open_table(GRANTS)?.iter()? {
        let (id, v) = row?;
        let g: GrantLeaf = decode(v.value(), "grant")?;
        grants.push((id.value(), g));
    }
    for (id, g) in grants {
        link_grant(txn, id, &g)?;
    }
    Ok(())
}

/// Links a new record to its owner and uploader.
fn link_record(txn: &WriteTransaction, id: u64, r: &RecordLeaf) -> Result<(), StateError> {
    let mut links = txn.open_multimap_table(LINKS)?;
    links.insert((r.owner, Link::Owns as u8), id)?;
    if r.uploader != r.owner {
        links.insert((r.uploader, Link::Uploaded as u8), id)?;
    }
    Ok(())
}

/// Links a new grant to its patient and grantee.
fn link_grant(txn: &WriteTransaction, id: u64, g: &GrantLeaf) -> Result<(), StateError> {
    let mut links = txn.open_multimap_table(LINKS)?;
    links.insert((g.patient, Link::Granted as u8), id)?;
    links.insert((g.grantee, Link::Received as u8), id)?;
    Ok(())
}

/// Records an access for its owner and its reader.
fn log_access(txn: &WriteTransaction, e: &AccessEntry) -> Result<(), StateError> {
    let mut t = txn.open_multimap_table(ACCESS)?;
    let bytes = encode(e)?;
    t.insert(e.owner, bytes.as_slice())?;
    if e.reader != e.owner {
        t.insert(e.reader, bytes.as_slice())?;
    }
    Ok(())
}

/// A read-only snapshot of the committed state ([`State::view`]).
pub struct StateView {
    txn: redb::ReadTransaction,
    accounts: MerkleTree,
    records: MerkleTree,
    grants: MerkleTree,
}

impl StateView {
    fn tree(&self, kind: TreeKind) -> MerkleTree {
        match kind {
            TreeKind::Accounts => self.accounts,
            TreeKind::Records => self.records,
            TreeKind::Grants => self.grants,
        }
    }

    /// The roots in this view.
    ///
    /// # Errors
    /// [`StateError`] on a storage failure.
    pub fn roots(&self) -> Result<Roots, StateError> {
        Ok(Roots {
            accounts: self.accounts.snapshot(&self.txn)?.root()?,
            records: self.records.snapshot(&self.txn)?.root()?,
            grants: self.grants.snapshot(&self.txn)?.root()?,
        })
    }

    /// An account in this view.
    ///
    /// # Errors
    /// [`StateError`] on a storage failure.
    pub fn account(&self, id: u64) -> Result<Option<AccountLeaf>, StateError> {
        let t = self.txn.open_table(ACCOUNTS)?;
        t.get(id)?.map(|v| decode(v.value(), "account")).transpose()
    }

    /// A record in this view.
    ///
    /// # Errors
    /// [`StateError`] on a storage failure.
    pub fn record(&self, id: u64) -> Result<Option<StoredRecord>, StateError> {
        let t = self.txn.open_table(RECORDS)?;
        t.get(id)?.map(|v| decode(v.value(), "record")).transpose()
    }

    /// A grant in this view.
    ///
    /// # Errors
    /// [`StateError`] on a storage failure.
    pub fn grant(&self, id: u64) -> Result<Option<GrantLeaf>, StateError> {
        let t = self.txn.open_table(GRANTS)?;
        t.get(id)?.map(|v| decode(v.value(), "grant")).transpose()
    }

    /// The records or grants linked to `account` as `link`, in id order.
    ///
    /// # Errors
    /// [`StateError`] on a storage failure.
    pub fn linked(&self, account: u64, link: Link) -> Result<Vec<u64>, StateError> {
        let t = self.txn.open_multimap_table(LINKS)?;
        let mut out = Vec::new();
        for v in t.get((account, link as u8))? {
            out.push(v?.value());
        }
        Ok(out)
    }

    /// The accesses logged of `account`'s records or by `account`, oldest first.
    ///
    /// # Errors
    /// [`StateError`] on a storage failure.
    pub fn access_log(&self, account: u64) -> Result<Vec<AccessEntry>, StateError> {
        let t = self.txn.open_multimap_table(ACCESS)?;
        let mut out = Vec::new();
        for v in t.get(account)? {
            out.push(decode::<AccessEntry>(v?.value(), "access entry")?);
        }
        out.sort_by_key(|e| (e.at, e.reader, e.nonce));
        Ok(out)
    }

    /// The leaf at `index` of a tree, its Merkle proof and the tree roots, all from this
    /// view: a light client checks `proof` for `leaf` against the tree root and the tree
    /// roots against the state root.
    ///
    /// # Errors
    /// [`StateError`] on a storage failure or an index out of range.
    pub fn proof(
        &self,
        tree: TreeKind,
        index: u64,
    ) -> Result<(Fr, MerkleProof, Roots), StateError> {
        let snap = self.tree(tree).snapshot(&self.txn)?;
        let leaf = snap.get_leaf(index)?;
        let proof = snap.proof(index)?;
        Ok((leaf, proof, self.roots()?))
    }
}

/// Whether `cid` would be accepted in a record.
///
/// # Errors
/// [`TxError::MalformedCid`] naming the problem.
pub fn check_cid(cid: &str) -> Result<Cid, TxError> {
    let c = Cid::try_from(cid).map_err(|e| TxError::MalformedCid(e.to_string()))?;
    cid_digest(&c)?;
    Ok(c)
}
