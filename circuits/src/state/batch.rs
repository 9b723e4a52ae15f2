//! The native state transition: a [`Batch`] applies transactions one by one to a write
//! transaction over the [`State`], checking each exactly as the chunk circuit does, and
//! seals them into chunk witnesses.

use ark_bn254::Fr;
use redb::{ReadableTable, TableDefinition, WriteTransaction};
use serde::Serialize;

use super::{
    ACCOUNTS, Applied, ApplyError, GRANTS, META, PUBKEYS, RECORDS, State, StateError, StoredRecord,
    bad_signature, decode, encode, next_id, pk_key,
};
use crate::babyjubjub::Point;
use crate::circuit::{ChunkWitness, SlotWitness};
use crate::deployment::Deployment;
use crate::eddsa::{self, PublicKey};
use crate::leaf::{AccountLeaf, GrantLeaf, RecordLeaf, Roots};
use crate::tx::{Role, Scope, SignedTransaction, TxBody, TxError, TxHash, cid_digest};

mod replay;

pub use replay::{PublicSlot, ReplayError};

fn peek_id(txn: &WriteTransaction, key: &str) -> Result<u64, StateError> {
    let meta = txn.open_table(META)?;
    meta.get(key)?
        .map(|v| v.value())
        .ok_or_else(|| StateError::Corrupt(format!("missing counter {key}")))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Checks {
    All,
    AllButSignature,
    None,
}

/// A batch being built: one write transaction over the state.
pub struct Batch<'s> {
    state: &'s State,
    txn: WriteTransaction,
    timestamp: u64,
    deployment: Deployment,
    roots: Roots,
    applied: Vec<Applied>,
}

fn check_key(pk: &PublicKey) -> Result<(), TxError> {
    let p: &Point = &pk.0;
    if !p.is_on_curve() {
        return Err(TxError::InvalidPublicKey(
            "the point is not on BabyJubJub".into(),
        ));
    }
    if !p.is_in_subgroup() {
        return Err(TxError::InvalidPublicKey(
            "the point is not in BabyJubJub's prime-order subgroup".into(),
        ));
    }
    if *p == Point::identity() {
        return Err(TxError::InvalidPublicKey(
            "the identity is not a key".into(),
        ));
    }
    Ok(())
}

fn wrong_role(action: &'static str, account: u64, needed: &str, found: u64) -> TxError {
    match Role::from_code(found) {
        Some(found) => TxError::WrongRole {
            action,
            account,
            needed: needed.into(),
            found,
        },
        None => TxError::UnknownAccount(account),
    }
}

impl<'s> Batch<'s> {
    /// A batch over `txn`, a fresh write transaction on `state` whose roots are `roots`.
    pub(super) fn new(
        state: &'s State,
        txn: WriteTransaction,
        timestamp: u64,
        deployment: Deployment,
        roots: Roots,
    ) -> Self {
        Self {
            state,
            txn,
            timestamp,
            deployment,
            roots,
            applied: Vec::new(),
        }
    }

    /// The batch time.
    pub fn timestamp(&self) -> u64 {
        self.timestamp
    }

    /// The roots after the transactions applied so far.
    pub fn roots(&self) -> Roots {
        self.roots
    }

    /// The transactions applied so far.
    pub fn applied(&self) -> &[Applied] {
        &self.applied
    }

    fn account(&self, id: u64) -> Result<Option<AccountLeaf>, ApplyError> {
        let t = self.txn.open_table(ACCOUNTS).map_err(StateError::from)?;
        let v = t.get(id).map_err(StateError::from)?;
        Ok(v.map(|v| decode(v.value(), "account")).transpose()?)
    }

    fn record(&self, id: u64) -> Result<Option<StoredRecord>, ApplyError> {
        let t = self.txn.open_table(RECORDS).map_err(StateError::from)?;
        let v = t.get(id).map_err(StateError::from)?;
        Ok(v.map(|v| decode(v.value(), "record")).transpose()?)
    }

    fn grant(&self, id: u64) -> Result<Option<GrantLeaf>, ApplyError> {
        let t = self.txn.open_table(GRANTS).map_err(StateError::from)?;
        let v = t.get(id).map_err(StateError::from)?;
        Ok(v.map(|v| decode(v.value(), "grant")).transpose()?)
    }

    fn key_owner(&self, pk: &PublicKey) -> Result<Option<u64>, ApplyError> {
        let t = self.txn.open_table(PUBKEYS).map_err(StateError::from)?;
        let v = t.get(pk_key(pk).as_slice()).map_err(StateError::from)?;
        Ok(v.map(|v| v.value()))
    }

    fn fresh_id(&self, key: &str, tree: &'static str) -> Result<u64, ApplyError> {
        let id = peek_id(&self.txn, key)?;
        if self.state.depth < 64 && id >= 1u64 << self.state.depth {
            return Err(TxError::TreeFull(tree).into());
        }
        Ok(id)
    }

    /// The id a new account with key `pk` gets, once the key is valid and unused.
    fn new_account_id(
        &self,
        pk: &PublicKey,
        reject: &dyn Fn(TxError) -> Result<(), ApplyError>,
    ) -> Result<u64, ApplyError> {
        if let Err(e) = check_key(pk) {
            reject(e)?;
        }
        if let Some(id) = self.key_owner(pk)? {
            reject(TxError::AccountExists(id))?;
        }
        self.fresh_id("next_account", "accounts")
    }

    /// A grant that lets `grantee` act on `patient`'s records, or why not.
    fn usable_grant(
        &self,
        id: u64,
        grantee: u64,
        patient: u64,
        checked: bool,
    ) -> Result<GrantLeaf, ApplyError> {
        let reject =
            |e: TxError| -> Result<(), ApplyError> { if checked { Err(e.into()) } else { Ok(()) } };
        let Some(g) = self.grant(id)? else {
            reject(TxError::UnknownGrant(id))?;
            return Ok(GrantLeaf {
                patient,
                grantee,
                scope: 0,
                permissions: 3,
                expires_at: u64::MAX,
                active: true,
            });
        };
        if g.grantee != grantee || g.patient != patient {
            reject(TxError::NoActiveGrant(format!(
                "grant {id} is not from patient {patient} to account {grantee}"
            )))?;
        }
        if !g.active {
            reject(TxError::NoActiveGrant(format!("grant {id} was revoked")))?;
        }
        if g.expires_at <= self.timestamp {
            reject(TxError::GrantExpired {
                grant: id,
                expired_at: g.expires_at,
                now: self.timestamp,
            })?;
        }
        Ok(g)
    }

    /// Check and apply one transaction. On `Err(Rejected)` nothing was written and the batch
    /// goes on; on `Err(Storage)` the batch must be rolled back.
    ///
    /// # Errors
    /// [`ApplyError::Rejected`] with the reason the transaction is invalid;
    /// [`ApplyError::Storage`] when the store failed.
    pub fn apply(&mut self, stx: &SignedTransaction) -> Result<&Applied, ApplyError> {
        self.apply_inner(stx, Checks::All, None)
    }

    /// [`Batch::apply`] for a transaction whose signature the caller has already verified
    /// against the signer's key with [`State::verify_signature`] (the coordinator verifies
    /// signatures on many cores before the single-threaded sequencer applies them). Every
    /// other rule is checked here. A wrongly skipped signature cannot reach L1: the chunk
    /// circuit checks it again and the proof would fail.
    ///
    /// # Errors
    /// As [`Batch::apply`].
    pub fn apply_preverified(&mut self, stx: &SignedTransaction) -> Result<&Applied, ApplyError> {
        self.apply_inner(stx, Checks::AllButSignature, None)
    }

    /// Apply a transaction WITHOUT checking it, as a cheating sequencer would, substituting
    /// plausible leaves for missing accounts (with `fake_key` as their key), records
    /// and grants. The resulting witness is
    /// what the circuit must refuse; tests use it to show that every rule is enforced there.
    ///
    /// # Errors
    /// [`ApplyError::Storage`] when the store failed, [`ApplyError::Rejected`] only for a
    /// transaction that cannot even be encoded.
    #[doc(hidden)]
    pub fn apply_unchecked_for_tests(
        &mut self,
        stx: &SignedTransaction,
        fake_key: Option<PublicKey>,
    ) -> Result<&Applied, ApplyError> {
        self.apply_inner(stx, Checks::None, fake_key)
    }

    fn apply_inner(
        &mut self,
        stx: &SignedTransaction,
        checks: Checks,
        fake_key: Option<PublicKey>,
    ) -> Result<&Applied, ApplyError> {
        let checked = checks != Checks::None;
        // In unchecked mode a rule violation is ignored instead of returned.
        let reject =
            |e: TxError| -> Result<(), ApplyError> { if checked { Err(e.into()) } else { Ok(()) } };
        let tx = &stx.tx;
        let fields = tx.fields()?;
        let msg = fields.message(self.deployment.id);
        let kind = fields.kind;
        let depth = self.state.depth;
        let is_self = matches!(tx.body, TxBody::Register { .. }) && tx.signer == 0;

        // The signer.
        let (a_index, a_leaf) = if is_self {
            let TxBody::Register { public_key, role } = &tx.body else {
                unreachable!("checked above")
            };
            if *role != Role::Patient {
                reject(TxError::BadRegistration(format!(
                    "only patients register themselves (signer 0); a {role} is registered by a \
                     registrar"
                )))?;
            }
            if tx.nonce != 0 {
                reject(TxError::BadRegistration(
                    "a self-registration is signed with nonce 0".into(),
                ))?;
            }
            let id = self.new_account_id(public_key, &reject)?;
            (
                id,
                AccountLeaf {
                    pk: public_key.0,
                    role: Role::Patient.code(),
                    nonce: 0,
                },
            )
        } else {
            let a = match self.account(tx.signer)? {
                Some(a) => a,
                None => {
                    reject(TxError::UnknownAccount(tx.signer))?;
                    let role = match tx.body {
                        TxBody::Register { .. } => Role::Registrar,
                        TxBody::AddRecord { patient, .. } if patient == tx.signer => Role::Patient,
                        TxBody::AddRecord { .. } | TxBody::AccessLog { .. } => Role::Doctor,
                        TxBody::Grant { .. } | TxBody::Revoke { .. } => Role::Patient,
                    };
                    AccountLeaf {
                        pk: fake_key.map(|k| k.0).unwrap_or_else(Point::identity),
                        role: role.code(),
                        nonce: tx.nonce,
                    }
                }
            };
            if tx.nonce < a.nonce {
                reject(TxError::StaleNonce {
                    account: tx.signer,
                    expected: a.nonce,
                    got: tx.nonce,
                })?;
            }
            if tx.nonce > a.nonce {
                reject(TxError::FutureNonce {
                    account: tx.signer,
                    expected: a.nonce,
                    got: tx.nonce,
                })?;
            }
            (tx.signer, a)
        };
        if checks == Checks::All
            && let Err(e) = eddsa::verify(&PublicKey(a_leaf.pk), msg, &stx.signature)
        {
            reject(bad_signature(e, &self.deployment))?;
        }
        let signer = a_index;

        // What the transaction does, checked before anything is written.
        enum Object {
            None,
            NewAccount(u64, AccountLeaf),
            NewRecord(u64, StoredRecord),
            NewGrant(u64, GrantLeaf),
            Revoke(u64, GrantLeaf),
            Read(u64, StoredRecord),
        }
        let mut c_read: Option<(u64, GrantLeaf)> = None;
        let object = match &tx.body {
            TxBody::Register { .. } if is_self => Object::None,
            TxBody::Register { public_key, role } => {
                if a_leaf.role != Role::Registrar.code() {
                    reject(wrong_role(
                        "registering an account",
                        signer,
                        "registrar",
                        a_leaf.role,
                    ))?;
                }
                if *role == Role::Patient {
                    reject(TxError::BadRegistration(
                        "patients register themselves (signer 0, nonce 0)".into(),
                    ))?;
                }
                let id = self.new_account_id(public_key, &reject)?;
                Object::NewAccount(
                    id,
                    AccountLeaf {
                        pk: public_key.0,
                        role: role.code(),
                        nonce: 0,
                    },
                )
            }
            TxBody::AddRecord {
                patient,
                cid,
                metadata_hash,
                grant,
            } => {
                let owner_role = match self.account(*patient)? {
                    Some(owner) => owner.role,
                    None => {
                        reject(TxError::UnknownAccount(*patient))?;
                        Role::Patient.code()
                    }
                };
                if owner_role != Role::Patient.code() {
                    reject(TxError::NotOwner {
                        account: *patient,
                        what: "records: it is not a patient".into(),
                    })?;
                }
                if signer == *patient {
                    // The patient's own upload.
                } else {
                    if a_leaf.role != Role::Doctor.code() {
                        reject(wrong_role(
                            "adding a record for a patient",
                            signer,
                            "doctor",
                            a_leaf.role,
                        ))?;
                    }
                    if grant.is_none() {
                        reject(TxError::NoActiveGrant(
                            "a doctor adds records under the patient's write grant; name it in \
                             `grant`"
                                .into(),
                        ))?;
                    }
                    let gid = grant.unwrap_or(0);
                    let g = self.usable_grant(gid, signer, *patient, checked)?;
                    if g.permissions & 2 == 0 {
                        reject(TxError::NoActiveGrant(format!(
                            "grant {gid} does not give write access"
                        )))?;
                    }
                    if g.scope != 0 {
                        reject(TxError::NoActiveGrant(format!(
                            "grant {gid} covers one record; adding records needs a grant over \
                             all records"
                        )))?;
                    }
                    c_read = Some((gid, g));
                }
                let id = self.fresh_id("next_record", "records")?;
                let leaf = RecordLeaf {
                    owner: *patient,
                    uploader: signer,
                    cid_digest: cid_digest(cid)?,
                    metadata_hash: *metadata_hash,
                };
                Object::NewRecord(
                    id,
                    StoredRecord {
                        leaf,
                        cid: cid.to_string(),
                    },
                )
            }
            TxBody::Grant {
                grantee,
                scope,
                permissions,
                expires_at,
            } => {
                if a_leaf.role != Role::Patient.code() {
                    reject(wrong_role(
                        "granting access",
                        signer,
                        "patient",
                        a_leaf.role,
                    ))?;
                }
                if *grantee == signer {
                    reject(TxError::BadGrant(
                        "a patient cannot grant access to itself".into(),
                    ))?;
                }
                if self.account(*grantee)?.is_none() {
                    reject(TxError::UnknownAccount(*grantee))?;
                }
                if let Scope::Record(rid) = scope {
                    match self.record(*rid)? {
                        None => reject(TxError::UnknownRecord(*rid))?,
                        Some(r) if r.leaf.owner != signer => reject(TxError::NotOwner {
                            account: signer,
                            what: format!("record {rid}"),
                        })?,
                        Some(_) => {}
                    }
                }
                if *expires_at <= self.timestamp {
                    reject(TxError::BadGrant(format!(
                        "expires_at {expires_at} is not after the batch time {}",
                        self.timestamp
                    )))?;
                }
                if permissions.bits() == 0 {
                    reject(TxError::BadGrant(
                        "a grant needs read or write permission".into(),
                    ))?;
                }
                let id = self.fresh_id("next_grant", "grants")?;
                Object::NewGrant(
                    id,
                    GrantLeaf {
                        patient: signer,
                        grantee: *grantee,
                        scope: scope.code(),
                        permissions: permissions.bits(),
                        expires_at: *expires_at,
                        active: true,
                    },
                )
            }
            TxBody::Revoke { grant } => {
                if a_leaf.role != Role::Patient.code() {
                    reject(wrong_role(
                        "revoking access",
                        signer,
                        "patient",
                        a_leaf.role,
                    ))?;
                }
                let g = match self.grant(*grant)? {
                    Some(g) => g,
                    None => {
                        reject(TxError::UnknownGrant(*grant))?;
                        GrantLeaf {
                            patient: signer,
                            grantee: 0,
                            scope: 0,
                            permissions: 1,
                            expires_at: u64::MAX,
                            active: true,
                        }
                    }
                };
                if g.patient != signer {
                    reject(TxError::NotOwner {
                        account: signer,
                        what: format!("grant {grant}"),
                    })?;
                }
                if !g.active {
                    reject(TxError::AlreadyRevoked(*grant))?;
                }
                Object::Revoke(*grant, g)
            }
            TxBody::AccessLog { record, grant, .. } => {
                if a_leaf.role != Role::Doctor.code() {
                    reject(wrong_role("logging access", signer, "doctor", a_leaf.role))?;
                }
                let r = match self.record(*record)? {
                    Some(r) => r,
                    None => {
                        reject(TxError::UnknownRecord(*record))?;
                        StoredRecord {
                            leaf: RecordLeaf::default(),
                            cid: String::new(),
                        }
                    }
                };
                let g = self.usable_grant(*grant, signer, r.leaf.owner, checked)?;
                if g.permissions & 1 == 0 {
                    reject(TxError::NoActiveGrant(format!(
                        "grant {grant} does not give read access"
                    )))?;
                }
                if !Scope::from_code(g.scope).covers(*record) {
                    reject(TxError::NoActiveGrant(format!(
                        "grant {grant} does not cover record {record}"
                    )))?;
                }
                c_read = Some((*grant, g));
                Object::Read(*record, r)
            }
        };

        // The account's next nonce. Only a forced witness can reach the last one (a real
        // account would need 2^64 transactions), and no witness can hold the one after it.
        let Some(next_nonce) = a_leaf.nonce.checked_add(1) else {
            return Err(TxError::NoncesExhausted(a_index).into());
        };

        // Everything checked: write. A failure from here on is a storage failure.
        let mut slot = SlotWitness::noop(depth);
        slot.tx = fields;
        slot.r8 = stx.signature.r8;
        slot.s = Fr::from(stx.signature.s.clone());
        slot.a_index = a_index;
        slot.a_leaf = a_leaf;
        let a_new = AccountLeaf {
            nonce: next_nonce,
            ..a_leaf
        };
        let upd = self.state.accounts.set(&self.txn, a_index, a_new.hash())?;
        slot.a_path = upd.proof.siblings;
        self.put(ACCOUNTS, a_index, &a_new)?;
        if is_self {
            next_id(&self.txn, "next_account")?;
            self.put_key(&PublicKey(a_leaf.pk), a_index)?;
        }
        let mut new_account = is_self.then_some(a_index);
        let (mut new_record, mut new_grant) = (None, None);
        match object {
            Object::None => {}
            Object::NewAccount(id, leaf) => {
                let upd = self.state.accounts.set(&self.txn, id, leaf.hash())?;
                slot.b_index = id;
                slot.b_path = upd.proof.siblings;
                self.put(ACCOUNTS, id, &leaf)?;
                self.put_key(&PublicKey(leaf.pk), id)?;
                next_id(&self.txn, "next_account")?;
                new_account = Some(id);
            }
            Object::NewRecord(id, rec) => {
                let upd = self.state.records.set(&self.txn, id, rec.leaf.hash())?;
                slot.b_index = id;
                slot.b_path = upd.proof.siblings;
                slot.b_record = rec.leaf;
                self.put(RECORDS, id, &rec)?;
                super::link_record(&self.txn, id, &rec.leaf)?;
                next_id(&self.txn, "next_record")?;
                new_record = Some(id);
            }
            Object::NewGrant(id, g) => {
                let upd = self.state.grants.set(&self.txn, id, g.hash())?;
                slot.b_index = id;
                slot.b_path = upd.proof.siblings;
                slot.b_grant = g;
                self.put(GRANTS, id, &g)?;
                super::link_grant(&self.txn, id, &g)?;
                next_id(&self.txn, "next_grant")?;
                new_grant = Some(id);
            }
            Object::Revoke(id, g) => {
                let revoked = GrantLeaf { active: false, ..g };
                let upd = self.state.grants.set(&self.txn, id, revoked.hash())?;
                slot.b_index = id;
                slot.b_path = upd.proof.siblings;
                slot.b_grant = g;
                self.put(GRANTS, id, &revoked)?;
            }
            Object::Read(id, rec) => {
                let w = self.state.records.writer(&self.txn)?;
                slot.b_index = id;
                slot.b_path = w.proof(id)?.siblings;
                slot.b_record = rec.leaf;
            }
        }
        if let Some((gid, g)) = c_read {
            let w = self.state.grants.writer(&self.txn)?;
            slot.c_index = gid;
            slot.c_grant = g;
            slot.c_path = w.proof(gid)?.siblings;
            if let TxBody::AccessLog {
                record, purpose, ..
            } = &tx.body
            {
                super::log_access(
                    &self.txn,
                    &super::AccessEntry {
                        record: *record,
                        owner: slot.b_record.owner,
                        grant: gid,
                        reader: a_index,
                        at: self.timestamp,
                        purpose: *purpose,
                        nonce: a_new.nonce,
                    },
                )?;
            }
        }
        self.roots = Roots {
            accounts: self.state.accounts.writer(&self.txn)?.root()?,
            records: self.state.records.writer(&self.txn)?.root()?,
            grants: self.state.grants.writer(&self.txn)?.root()?,
        };
        self.applied.push(Applied {
            hash: TxHash::of(msg),
            kind,
            new_account,
            new_record,
            new_grant,
            roots_after: self.roots,
            slot,
        });
        Ok(self
            .applied
            .last()
            .unwrap_or_else(|| unreachable!("just pushed")))
    }

    fn put<T: Serialize>(
        &self,
        table: TableDefinition<u64, &[u8]>,
        id: u64,
        v: &T,
    ) -> Result<(), StateError> {
        self.txn
            .open_table(table)?
            .insert(id, encode(v)?.as_slice())?;
        Ok(())
    }

    fn put_key(&self, pk: &PublicKey, id: u64) -> Result<(), StateError> {
        self.txn
            .open_table(PUBKEYS)?
            .insert(pk_key(pk).as_slice(), id)?;
        Ok(())
    }

    /// The chunk witnesses of the transactions applied so far, `slots` per chunk, the last
    /// one padded with no-ops.
    pub fn chunks(&self, roots_before: Roots, slots: usize) -> Vec<ChunkWitness> {
        let depth = self.state.depth;
        let mut out = Vec::new();
        let mut before = roots_before;
        for group in self.applied.chunks(slots.max(1)) {
            let after = group.last().map(|a| a.roots_after).unwrap_or(before);
            let mut s: Vec<SlotWitness> = group.iter().map(|a| a.slot.clone()).collect();
            s.resize_with(slots, || SlotWitness::noop(depth));
            out.push(ChunkWitness {
                timestamp: self.timestamp,
                deployment: self.deployment.id,
                roots_before: before,
                roots_after: after,
                slots: s,
            });
            before = after;
        }
        out
    }

    /// Commit the batch atomically; returns the new roots.
    ///
    /// # Errors
    /// [`StateError`] when the commit fails (nothing was written).
    pub fn commit(self) -> Result<Roots, StateError> {
        self.txn.commit()?;
        Ok(self.roots)
    }

    /// Discard everything applied in this batch.
    ///
    /// # Errors
    /// [`StateError`] when redb fails to abort.
    pub fn rollback(self) -> Result<(), StateError> {
        self.txn.abort()?;
        Ok(())
    }
}
