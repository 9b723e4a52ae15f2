//! Re-applying published batch data ([`Batch::replay`]): the state transition as a reader of
//! the public data sees it, without signatures or the checks they guard. Whoever rebuilds
//! the state from L1 and IPFS replays each chunk's slots and compares the roots after it
//! with the ones the chunk's proof binds; the rules were enforced by that proof.

use ark_bn254::Fr;
use ark_ff::{BigInteger, PrimeField, Zero};

use super::{ACCOUNTS, Batch, GRANTS, RECORDS, StoredRecord, next_id, peek_id};
use crate::babyjubjub::Point;
use crate::eddsa::PublicKey;
use crate::leaf::{AccountLeaf, GrantLeaf, RecordLeaf, Roots};
use crate::state::StateError;
use crate::tx::{Role, TxKind, cid_digest};

/// One slot of a batch's public data: what the chunk commitment binds
/// ([`crate::circuit::pubdata_step`]), and the record's CID for an `add_record`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicSlot {
    /// The transaction kind.
    pub kind: TxKind,
    /// The acting account (the new account for a self-registration).
    pub actor: u64,
    /// The id written: new account, record or grant, the grant revoked, the record read.
    pub object: u64,
    /// The payload `p1..p4`.
    pub payload: [Fr; 4],
    /// An added record's CID (its digest is `p2`); `None` when the data does not carry it.
    pub cid: Option<String>,
}

/// Why a slot of published data cannot be replayed: the data does not describe a state
/// transition from the state it is applied to.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The data is inconsistent with the state.
    #[error("{0}")]
    Inconsistent(String),
    /// The store failed.
    #[error(transparent)]
    Storage(#[from] StateError),
}

fn small(x: Fr, what: &str) -> Result<u64, ReplayError> {
    let bytes = x.into_bigint().to_bytes_le();
    if bytes[8..].iter().any(|b| *b != 0) {
        return Err(ReplayError::Inconsistent(format!(
            "{what} is not a 64-bit integer"
        )));
    }
    let mut le = [0u8; 8];
    le.copy_from_slice(&bytes[..8]);
    Ok(u64::from_le_bytes(le))
}

fn inconsistent(msg: String) -> ReplayError {
    ReplayError::Inconsistent(msg)
}

impl Batch<'_> {
    /// Applies one slot of published data as the native rules applied the transaction it
    /// records: the actor's nonce goes up, and the object is written. Nothing is checked
    /// beyond what replaying needs (the ids are the next free ones, the accounts and grants
    /// written exist); the caller compares the roots with the proven ones.
    ///
    /// # Errors
    /// [`ReplayError::Inconsistent`] when the slot cannot follow the state (nothing was
    /// written); [`ReplayError::Storage`] when the store failed (roll the batch back).
    pub fn replay(&mut self, slot: &PublicSlot) -> Result<Roots, ReplayError> {
        let [p1, p2, p3, p4] = slot.payload;
        if slot.kind == TxKind::Noop {
            if slot.actor != 0 || slot.object != 0 || slot.payload.iter().any(|p| !p.is_zero()) {
                return Err(inconsistent(
                    "a padding slot carries an actor, object or payload".into(),
                ));
            }
            return Ok(self.roots);
        }
        let depth = self.state.depth;
        for (what, id) in [("actor", slot.actor), ("object", slot.object)] {
            if depth < 64 && id >= 1u64 << depth {
                return Err(inconsistent(format!(
                    "the {what} id {id} is past the trees' {} leaves",
                    1u128 << depth
                )));
            }
        }
        let self_registration =
            slot.kind == TxKind::Register && small(p3, "the role")? == Role::Patient.code();
        // Read and check everything before the first write.
        let actor = if self_registration {
            let next = peek_id(&self.txn, "next_account")?;
            if slot.actor != next {
                return Err(inconsistent(format!(
                    "a self-registration as account {} where the next account is {next}",
                    slot.actor
                )));
            }
            AccountLeaf {
                pk: Point { x: p1, y: p2 },
                role: Role::Patient.code(),
                nonce: 0,
            }
        } else {
            self.account(slot.actor)
                .map_err(storage)?
                .ok_or_else(|| inconsistent(format!("account {} does not exist", slot.actor)))?
        };
        let next_nonce = actor
            .nonce
            .checked_add(1)
            .ok_or_else(|| inconsistent(format!("account {} has no nonce left", slot.actor)))?;
        let expect_next = |key: &str, tree: &str| -> Result<(), ReplayError> {
            let next = peek_id(&self.txn, key)?;
            if slot.object == next {
                Ok(())
            } else {
                Err(inconsistent(format!(
                    "a new {tree} {} where the next one is {next}",
                    slot.object
                )))
            }
        };
        match slot.kind {
            TxKind::Noop => {}
            TxKind::Register if self_registration => {
                if slot.object != 0 {
                    return Err(inconsistent(
                        "a self-registration writes no second account".into(),
                    ));
                }
            }
            TxKind::Register => expect_next("next_account", "account")?,
            TxKind::AddRecord => expect_next("next_record", "record")?,
            TxKind::Grant => expect_next("next_grant", "grant")?,
            TxKind::Revoke => {
                if self.grant(slot.object).map_err(storage)?.is_none() {
                    return Err(inconsistent(format!(
                        "grant {} does not exist",
                        slot.object
                    )));
                }
            }
            TxKind::AccessLog => {}
        }
        let cid = match (&slot.cid, slot.kind) {
            (Some(cid), TxKind::AddRecord) => {
                let digest = cid_digest(
                    &cid.parse::<cid::Cid>()
                        .map_err(|_| inconsistent("a record CID does not parse".into()))?,
                )
                .map_err(|e| inconsistent(e.to_string()))?;
                if digest != p2 {
                    return Err(inconsistent(
                        "a record CID does not match its digest in the payload".into(),
                    ));
                }
                cid.clone()
            }
            (Some(_), _) => {
                return Err(inconsistent(format!(
                    "a CID in a {} slot",
                    slot.kind.name()
                )));
            }
            (None, _) => String::new(),
        };

        // The actor.
        let a_new = AccountLeaf {
            nonce: next_nonce,
            ..actor
        };
        self.state
            .accounts
            .set(&self.txn, slot.actor, a_new.hash())?;
        self.put(ACCOUNTS, slot.actor, &a_new)?;
        if self_registration {
            next_id(&self.txn, "next_account")?;
            self.put_key(&PublicKey(a_new.pk), slot.actor)?;
        }
        // The object.
        match slot.kind {
            TxKind::Register if !self_registration => {
                let leaf = AccountLeaf {
                    pk: Point { x: p1, y: p2 },
                    role: small(p3, "the role")?,
                    nonce: 0,
                };
                self.state
                    .accounts
                    .set(&self.txn, slot.object, leaf.hash())?;
                self.put(ACCOUNTS, slot.object, &leaf)?;
                self.put_key(&PublicKey(leaf.pk), slot.object)?;
                next_id(&self.txn, "next_account")?;
            }
            TxKind::AddRecord => {
                let leaf = RecordLeaf {
                    owner: small(p1, "the patient")?,
                    uploader: slot.actor,
                    cid_digest: p2,
                    metadata_hash: p3,
                };
                self.state
                    .records
                    .set(&self.txn, slot.object, leaf.hash())?;
                self.put(RECORDS, slot.object, &StoredRecord { leaf, cid })?;
                crate::state::link_record(&self.txn, slot.object, &leaf)?;
                next_id(&self.txn, "next_record")?;
            }
            TxKind::Grant => {
                let leaf = GrantLeaf {
                    patient: slot.actor,
                    grantee: small(p1, "the grantee")?,
                    scope: small(p2, "the scope")?,
                    permissions: small(p3, "the permissions")?,
                    expires_at: small(p4, "the expiry")?,
                    active: true,
                };
                self.state.grants.set(&self.txn, slot.object, leaf.hash())?;
                self.put(GRANTS, slot.object, &leaf)?;
                crate::state::link_grant(&self.txn, slot.object, &leaf)?;
                next_id(&self.txn, "next_grant")?;
            }
            TxKind::Revoke => {
                let g = self
                    .grant(slot.object)
                    .map_err(storage)?
                    .ok_or_else(|| inconsistent(format!("grant {} vanished", slot.object)))?;
                let revoked = GrantLeaf { active: false, ..g };
                self.state
                    .grants
                    .set(&self.txn, slot.object, revoked.hash())?;
                self.put(GRANTS, slot.object, &revoked)?;
            }
            TxKind::AccessLog => {
                let record = small(p1, "the record")?;
                let r = self.record(record).map_err(storage)?.ok_or_else(|| {
                    inconsistent(format!(
                        "an access to record {record}, which does not exist"
                    ))
                })?;
                crate::state::log_access(
                    &self.txn,
                    &crate::state::AccessEntry {
                        record,
                        owner: r.leaf.owner,
                        grant: small(p2, "the grant")?,
                        reader: slot.actor,
                        at: self.timestamp,
                        purpose: p3,
                        nonce: a_new.nonce,
                    },
                )?;
            }
            TxKind::Noop | TxKind::Register => {}
        }
        self.roots = Roots {
            accounts: self.state.accounts.writer(&self.txn)?.root()?,
            records: self.state.records.writer(&self.txn)?.root()?,
            grants: self.state.grants.writer(&self.txn)?.root()?,
        };
        Ok(self.roots)
    }
}

fn storage(e: super::ApplyError) -> ReplayError {
    match e {
        super::ApplyError::Storage(s) => ReplayError::Storage(s),
        super::ApplyError::Rejected(t) => ReplayError::Inconsistent(t.to_string()),
    }
}

impl From<crate::merkle::MerkleError> for ReplayError {
    fn from(e: crate::merkle::MerkleError) -> Self {
        Self::Storage(StateError::Merkle(e))
    }
}
