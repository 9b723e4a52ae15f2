//! The chunk circuit: `slots` transaction slots, each able to hold any transaction kind or
//! a padding no-op, over three Poseidon Merkle trees of depth `depth`.
//!
//! Public inputs, in order: the state root before the chunk, the state root after it, the
//! chunk's public-data commitment ([`pubdata_start`], [`pubdata_step`]): what a reader needs
//! to rebuild the state from the batch data published on IPFS, and the deployment id `D`
//! ([`crate::deployment`]) that every signature in the chunk is checked against. The rollup
//! contract takes the first three from the operator and fixes the fourth to its own `D`, so
//! a chunk of transactions signed for another deployment cannot be proven for this one.
//!
//! # One slot
//! Every slot runs the same gadgets; the kind's selector bits decide which of them bind:
//! - the message hash (over the deployment id) and the EdDSA-Poseidon signature check of
//!   the signer's key;
//! - **A**, the signer's account: its leaf is proven against the accounts root and rewritten
//!   with the nonce incremented (for a patient registering itself, an empty leaf becomes the
//!   new account);
//! - **B**, the object: one leaf of the accounts (a registrar registering an account),
//!   records (add, or read for an access log) or grants tree (grant, revoke) is proven and
//!   rewritten;
//! - **C**, a grant read: the grant that allows a doctor's upload or access is proven
//!   against the grants root, with its grantee, patient, scope, permission and expiry.
//!
//! So a slot costs five Merkle paths (A and B twice, old and new root; C once), seven leaf
//! hashes, the message hash, the signature, and a few hundred constraints of logic.

use std::cell::Cell;
use std::collections::BTreeMap;

use ark_bn254::Fr;
use ark_ff::{Field, Zero};
use ark_r1cs_std::{fields::fp::FpVar, prelude::*};
use ark_relations::gr1cs::{ConstraintSynthesizer, ConstraintSystemRef, SynthesisError};

use serde::{Deserialize, Serialize};

use crate::artifacts::CircuitParams;
use crate::babyjubjub::{self, Point, gadget::PointVar};
use crate::deployment::DeploymentId;
use crate::field::{fr_string, fr_string_vec};
use crate::leaf::{AccountLeaf, GrantLeaf, RecordLeaf, Roots};
use crate::tx::{Role, TxFields, TxKind};
use crate::{eddsa, merkle, poseidon};

/// A constraint that a test can switch off on its own thread, to show that the
/// differential checks ([`crate::differential`]) catch a circuit weaker than the native
/// rules. Nothing outside tests sets one; synthesis on other threads is unaffected.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Weakening {
    /// Drop the check that the grant read by an access log or a doctor's upload has not
    /// expired at the batch time.
    GrantExpiry,
}

thread_local! {
    static WEAKENED: Cell<Option<Weakening>> = const { Cell::new(None) };
}

/// Switch a constraint off (or back on with `None`) for circuits synthesized on this
/// thread. For tests of the differential checks only.
#[doc(hidden)]
pub fn weaken_for_tests(w: Option<Weakening>) {
    WEAKENED.set(w);
}

fn weakened(w: Weakening) -> bool {
    WEAKENED.get() == Some(w)
}

/// Everything one slot needs, as produced by the native state transition.
///
/// Serialized (serde) with field elements as canonical decimal strings, for proving jobs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlotWitness {
    /// The transaction (a no-op for padding).
    pub tx: TxFields,
    /// Signature point R8.
    pub r8: Point,
    /// Signature scalar S (below the subgroup order).
    #[serde(with = "fr_string")]
    pub s: Fr,
    /// A: the signer's account index (the new account for a self-registration).
    pub a_index: u64,
    /// A: the account before the transaction (for a self-registration, the new account
    /// with nonce 0).
    pub a_leaf: AccountLeaf,
    /// A: the Merkle siblings of `a_index` before the update.
    #[serde(with = "fr_string_vec")]
    pub a_path: Vec<Fr>,
    /// B: the object's index in its tree.
    pub b_index: u64,
    /// B: the Merkle siblings before the update.
    #[serde(with = "fr_string_vec")]
    pub b_path: Vec<Fr>,
    /// B: the record (added, or read by an access log).
    pub b_record: RecordLeaf,
    /// B: the grant (created or revoked); `active` is implied by the kind.
    pub b_grant: GrantLeaf,
    /// C: the grant read, if any.
    pub c_index: u64,
    /// C: the grant's preimage (it must be active).
    pub c_grant: GrantLeaf,
    /// C: its Merkle siblings.
    #[serde(with = "fr_string_vec")]
    pub c_path: Vec<Fr>,
}

impl SlotWitness {
    /// A padding slot for trees of depth `depth`.
    pub fn noop(depth: usize) -> Self {
        Self {
            tx: TxFields::noop(),
            r8: Point::identity(),
            s: Fr::zero(),
            a_index: 0,
            a_leaf: AccountLeaf::placeholder(),
            a_path: vec![Fr::zero(); depth],
            b_index: 0,
            b_path: vec![Fr::zero(); depth],
            b_record: RecordLeaf::default(),
            b_grant: GrantLeaf::default(),
            c_index: 0,
            c_grant: GrantLeaf::default(),
            c_path: vec![Fr::zero(); depth],
        }
    }
}

/// The witness of a whole chunk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChunkWitness {
    /// Batch time (unix seconds), used for grant expiry.
    pub timestamp: u64,
    /// The deployment every signature of the chunk is made for (public input 3).
    pub deployment: DeploymentId,
    /// Tree roots before the chunk.
    pub roots_before: Roots,
    /// Tree roots after the chunk.
    pub roots_after: Roots,
    /// Exactly `slots` slots.
    pub slots: Vec<SlotWitness>,
}

/// A witness that does not fit the circuit's parameters.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WitnessShapeError {
    /// Wrong number of slots.
    #[error("the witness has {found} slots; the circuit has {expected}")]
    Slots {
        /// The circuit's slots.
        expected: usize,
        /// The witness's.
        found: usize,
    },
    /// A Merkle path of the wrong length.
    #[error(
        "slot {slot}: Merkle path {path} has {found} siblings; the trees have depth {expected}"
    )]
    Path {
        /// The slot.
        slot: usize,
        /// Which path (`a`, `b` or `c`).
        path: &'static str,
        /// The depth.
        expected: usize,
        /// The length found.
        found: usize,
    },
    /// An index that does not fit the trees.
    #[error("slot {slot}: index {index} does not fit trees of depth {depth}")]
    Index {
        /// The slot.
        slot: usize,
        /// The index.
        index: u64,
        /// The depth.
        depth: usize,
    },
}

impl ChunkWitness {
    /// Checks that the witness has the shape `params` asks for (slots, path lengths,
    /// indices), so that synthesis cannot fail on it for a structural reason. Whether it
    /// satisfies the circuit is for the proof to say.
    ///
    /// # Errors
    /// The first [`WitnessShapeError`] found.
    pub fn check_shape(&self, params: CircuitParams) -> Result<(), WitnessShapeError> {
        if self.slots.len() != params.slots {
            return Err(WitnessShapeError::Slots {
                expected: params.slots,
                found: self.slots.len(),
            });
        }
        let fits = |i: u64| params.depth >= 64 || i < (1u64 << params.depth);
        for (slot, w) in self.slots.iter().enumerate() {
            for (path, v) in [("a", &w.a_path), ("b", &w.b_path), ("c", &w.c_path)] {
                if v.len() != params.depth {
                    return Err(WitnessShapeError::Path {
                        slot,
                        path,
                        expected: params.depth,
                        found: v.len(),
                    });
                }
            }
            for index in [w.a_index, w.b_index, w.c_index] {
                if !fits(index) {
                    return Err(WitnessShapeError::Index {
                        slot,
                        index,
                        depth: params.depth,
                    });
                }
            }
        }
        Ok(())
    }

    /// The public inputs: state root before, state root after, public-data commitment,
    /// deployment id.
    pub fn public_inputs(&self) -> Vec<Fr> {
        let mut c = pubdata_start(self.timestamp);
        for s in &self.slots {
            c = pubdata_step(c, &s.tx, s.a_index, s.b_index);
        }
        vec![
            self.roots_before.state_root(),
            self.roots_after.state_root(),
            c,
            self.deployment.0,
        ]
    }
}

/// The start of the public-data chain: the batch timestamp.
pub fn pubdata_start(timestamp: u64) -> Fr {
    Fr::from(timestamp)
}

/// One step of the public-data chain:
/// `c' = poseidon([c, poseidon([kind + 8·actor, object, p1, p2, p3, p4])])`, where `actor` is
/// the signer's account (the new account for a self-registration) and `object` the index the
/// transaction wrote (new account, record or grant id).
pub fn pubdata_step(c: Fr, tx: &TxFields, actor: u64, object: u64) -> Fr {
    let [p1, p2, p3, p4] = tx.payload;
    let head = Fr::from(tx.kind.code()) + Fr::from(8u64) * Fr::from(actor);
    let d = poseidon::hash_n([head, Fr::from(object), p1, p2, p3, p4]);
    poseidon::hash2(c, d)
}

/// The chunk circuit for one parameter set, with its witness.
#[derive(Clone, Debug)]
pub struct ChunkCircuit {
    /// Slots and depth.
    pub params: CircuitParams,
    /// The witness (a padding-only witness for setup).
    pub witness: ChunkWitness,
}

impl ChunkCircuit {
    /// A circuit full of padding, for setup and for counting constraints. Its deployment id
    /// is 0: the keys do not depend on it, as it is a public input.
    pub fn blank(params: CircuitParams) -> Self {
        let roots = Roots {
            accounts: Fr::zero(),
            records: Fr::zero(),
            grants: Fr::zero(),
        };
        let witness = ChunkWitness {
            timestamp: 0,
            deployment: DeploymentId::default(),
            roots_before: roots,
            roots_after: roots,
            slots: (0..params.slots)
                .map(|_| SlotWitness::noop(params.depth))
                .collect(),
        };
        Self { params, witness }
    }
}

/// Where constraints go, for `pulse circuit info`.
#[derive(Debug, Default, Clone)]
pub struct Meter {
    /// Constraints per component name, summed over the metered slots.
    pub parts: BTreeMap<&'static str, usize>,
    last: usize,
}

impl Meter {
    fn mark(&mut self, cs: &ConstraintSystemRef<Fr>, part: &'static str) {
        let now = cs.num_constraints();
        *self.parts.entry(part).or_default() += now - self.last;
        self.last = now;
    }
}

/// The components each kind uses (for the per-kind breakdown of `pulse circuit info`).
pub fn components_used(kind: TxKind) -> &'static [&'static str] {
    const SIGNED: [&str; 8] = [
        "message",
        "signature",
        "account_path",
        "account_leaves",
        "object_path",
        "object_leaves",
        "logic",
        "pubdata",
    ];
    const WITH_GRANT: [&str; 10] = [
        "message",
        "signature",
        "account_path",
        "account_leaves",
        "object_path",
        "object_leaves",
        "grant_path",
        "grant_leaf",
        "logic",
        "pubdata",
    ];
    match kind {
        TxKind::Noop => &["pubdata"],
        TxKind::Register | TxKind::Grant | TxKind::Revoke => &SIGNED,
        TxKind::AddRecord | TxKind::AccessLog => &WITH_GRANT,
    }
}

fn witness_fr(cs: &ConstraintSystemRef<Fr>, v: Fr) -> Result<FpVar<Fr>, SynthesisError> {
    FpVar::new_witness(cs.clone(), || Ok(v))
}

fn witness_u64(cs: &ConstraintSystemRef<Fr>, v: u64) -> Result<FpVar<Fr>, SynthesisError> {
    witness_fr(cs, Fr::from(v))
}

/// Allocate `n` little-endian bits of `v` and return them with their packed value.
fn witness_bits(
    cs: &ConstraintSystemRef<Fr>,
    v: u64,
    n: usize,
) -> Result<(Vec<Boolean<Fr>>, FpVar<Fr>), SynthesisError> {
    let bits = (0..n)
        .map(|i| Boolean::new_witness(cs.clone(), || Ok(i < 64 && (v >> i) & 1 == 1)))
        .collect::<Result<Vec<_>, _>>()?;
    let packed = pack(&bits);
    Ok((bits, packed))
}

fn pack(bits: &[Boolean<Fr>]) -> FpVar<Fr> {
    let mut acc = FpVar::zero();
    let mut w = Fr::from(1u64);
    for b in bits {
        acc += FpVar::from(b.clone()) * w;
        w += w;
    }
    acc
}

/// Enforce `v ∈ [0, 2^64)` when `cond`, by decomposing `cond · v` (a value known natively).
fn enforce_u64_when(
    cs: &ConstraintSystemRef<Fr>,
    cond: &Boolean<Fr>,
    v: &FpVar<Fr>,
) -> Result<(), SynthesisError> {
    let value = match (cond.value(), v.value()) {
        (Ok(true), Ok(x)) => {
            let b = ark_ff::PrimeField::into_bigint(x);
            // Out of range: any value whose bits cannot pack to `x`, so the check fails.
            if b.0[1..].iter().all(|l| *l == 0) {
                b.0[0]
            } else {
                u64::MAX
            }
        }
        _ => 0,
    };
    let (_, packed) = witness_bits(cs, value, 64)?;
    let gated = FpVar::from(cond.clone()) * v;
    packed.enforce_equal(&gated)
}

struct TreeOp {
    old_root: FpVar<Fr>,
    new_root: FpVar<Fr>,
}

fn tree_op(
    cs: &ConstraintSystemRef<Fr>,
    index_bits: &[Boolean<Fr>],
    path: &[Fr],
    old_leaf: &FpVar<Fr>,
    new_leaf: Option<&FpVar<Fr>>,
) -> Result<TreeOp, SynthesisError> {
    let siblings = path
        .iter()
        .map(|s| witness_fr(cs, *s))
        .collect::<Result<Vec<_>, _>>()?;
    let old_root = merkle::gadget::root_from_path(old_leaf, index_bits, &siblings)?;
    let new_root = match new_leaf {
        Some(l) => merkle::gadget::root_from_path(l, index_bits, &siblings)?,
        None => old_root.clone(),
    };
    Ok(TreeOp { old_root, new_root })
}

struct RootsVar {
    accounts: FpVar<Fr>,
    records: FpVar<Fr>,
    grants: FpVar<Fr>,
}

impl RootsVar {
    fn state_root(&self) -> Result<FpVar<Fr>, SynthesisError> {
        poseidon::gadget::hash(&[
            self.accounts.clone(),
            self.records.clone(),
            self.grants.clone(),
        ])
    }
}

fn select(cond: &Boolean<Fr>, t: &FpVar<Fr>, f: &FpVar<Fr>) -> Result<FpVar<Fr>, SynthesisError> {
    FpVar::conditionally_select(cond, t, f)
}

fn fp(b: &Boolean<Fr>) -> FpVar<Fr> {
    FpVar::from(b.clone())
}

impl ChunkCircuit {
    /// Generate the constraints, metering the first slot into `meter` when given.
    ///
    /// # Errors
    /// [`SynthesisError`] when the witness has the wrong shape or the system fails.
    pub fn synthesize(
        self,
        cs: ConstraintSystemRef<Fr>,
        mut meter: Option<&mut Meter>,
    ) -> Result<(), SynthesisError> {
        let p = self.params;
        let w = self.witness;
        if w.slots.len() != p.slots {
            return Err(SynthesisError::Unsatisfiable);
        }
        let public = w.public_inputs();
        let root_before = FpVar::new_input(cs.clone(), || Ok(public[0]))?;
        let root_after = FpVar::new_input(cs.clone(), || Ok(public[1]))?;
        let commitment = FpVar::new_input(cs.clone(), || Ok(public[2]))?;
        let deployment = FpVar::new_input(cs.clone(), || Ok(public[3]))?;

        let mut roots = RootsVar {
            accounts: witness_fr(&cs, w.roots_before.accounts)?,
            records: witness_fr(&cs, w.roots_before.records)?,
            grants: witness_fr(&cs, w.roots_before.grants)?,
        };
        roots.state_root()?.enforce_equal(&root_before)?;
        let ts = witness_u64(&cs, w.timestamp)?;
        let mut chain = ts.clone();

        for (i, slot) in w.slots.iter().enumerate() {
            let mut m = if i == 0 { meter.as_deref_mut() } else { None };
            if let Some(m) = m.as_deref_mut() {
                m.last = cs.num_constraints();
            }
            synth_slot(
                &cs,
                p.depth,
                slot,
                &ts,
                &deployment,
                &mut roots,
                &mut chain,
                m,
            )?;
        }
        roots.state_root()?.enforce_equal(&root_after)?;
        chain.enforce_equal(&commitment)?;
        Ok(())
    }
}

#[allow(clippy::too_many_arguments)]
fn synth_slot(
    cs: &ConstraintSystemRef<Fr>,
    depth: usize,
    s: &SlotWitness,
    ts: &FpVar<Fr>,
    deployment: &FpVar<Fr>,
    roots: &mut RootsVar,
    chain: &mut FpVar<Fr>,
    mut meter: Option<&mut Meter>,
) -> Result<(), SynthesisError> {
    let mut mark = |part: &'static str| {
        if let Some(m) = meter.as_deref_mut() {
            m.mark(cs, part);
        }
    };
    // Kind selectors: one-hot.
    let kinds = [
        TxKind::Noop,
        TxKind::Register,
        TxKind::AddRecord,
        TxKind::Grant,
        TxKind::Revoke,
        TxKind::AccessLog,
    ];
    let sel = kinds
        .iter()
        .map(|k| Boolean::new_witness(cs.clone(), || Ok(s.tx.kind == *k)))
        .collect::<Result<Vec<_>, _>>()?;
    let sum = sel.iter().fold(FpVar::zero(), |acc, b| acc + fp(b));
    sum.enforce_equal(&FpVar::one())?;
    let kind_code = kinds.iter().zip(&sel).fold(FpVar::zero(), |acc, (k, b)| {
        acc + fp(b) * Fr::from(k.code())
    });
    let [is_noop, is_register, is_add, is_grant, is_revoke, is_access] =
        [&sel[0], &sel[1], &sel[2], &sel[3], &sel[4], &sel[5]];
    let enabled = !is_noop;

    let signer = witness_u64(cs, s.tx.signer)?;
    let nonce = witness_u64(cs, s.tx.nonce)?;
    let pv =
        s.tx.payload
            .iter()
            .map(|x| witness_fr(cs, *x))
            .collect::<Result<Vec<_>, _>>()?;
    let (p1, p2, p3, p4) = (&pv[0], &pv[1], &pv[2], &pv[3]);
    // A padding slot is all zeros, so its public data is unambiguous.
    for v in [&signer, &nonce, p1, p2, p3, p4] {
        v.conditional_enforce_equal(&FpVar::zero(), is_noop)?;
    }
    let signer_is_zero = signer.is_eq(&FpVar::zero())?;
    let is_self = is_register & &signer_is_zero;
    let nonself = &enabled & &!&is_self;
    mark("logic");

    // Message, bound to the deployment (public input 3) so that a signature for another
    // deployment does not verify here.
    let two67 = Fr::from(2u64).pow([67u64]);
    let header = &kind_code + &signer * Fr::from(8u64) + &nonce * two67;
    let msg = poseidon::gadget::hash(&[
        header,
        p1.clone(),
        p2.clone(),
        p3.clone(),
        p4.clone(),
        deployment.clone(),
    ])?;
    mark("message");

    // A: the signer's account.
    let (a_bits, a_index) = witness_bits(cs, s.a_index, depth)?;
    let ax = witness_fr(cs, s.a_leaf.pk.x)?;
    let ay = witness_fr(cs, s.a_leaf.pk.y)?;
    let arole = witness_u64(cs, s.a_leaf.role)?;
    let anonce = witness_u64(cs, s.a_leaf.nonce)?;
    a_index.conditional_enforce_equal(&signer, &nonself)?;
    nonce.conditional_enforce_equal(&anonce, &enabled)?;
    // A self-registration's new account is the registered key, a patient, at nonce 0.
    ax.conditional_enforce_equal(p1, &is_self)?;
    ay.conditional_enforce_equal(p2, &is_self)?;
    arole.conditional_enforce_equal(&FpVar::constant(Fr::from(Role::Patient.code())), &is_self)?;
    p3.conditional_enforce_equal(&FpVar::constant(Fr::from(Role::Patient.code())), &is_self)?;
    anonce.conditional_enforce_equal(&FpVar::zero(), &is_self)?;
    mark("logic");
    let a_old_hash =
        poseidon::gadget::hash(&[ax.clone(), ay.clone(), arole.clone(), anonce.clone()])?;
    let a_new_leaf = poseidon::gadget::hash(&[
        ax.clone(),
        ay.clone(),
        arole.clone(),
        &anonce + Fr::from(1u64),
    ])?;
    let a_old_leaf = select(&is_self, &FpVar::zero(), &a_old_hash)?;
    mark("account_leaves");
    let a_op = tree_op(cs, &a_bits, &s.a_path, &a_old_leaf, Some(&a_new_leaf))?;
    mark("account_path");
    a_op.old_root
        .conditional_enforce_equal(&roots.accounts, &enabled)?;
    roots.accounts = select(&enabled, &a_op.new_root, &roots.accounts)?;

    // Signature by the account's key.
    let pk = PointVar {
        x: ax.clone(),
        y: ay.clone(),
    };
    let r8 = PointVar {
        x: witness_fr(cs, s.r8.x)?,
        y: witness_fr(cs, s.r8.y)?,
    };
    let sig_s = witness_fr(cs, s.s)?;
    mark("logic");
    eddsa::gadget::enforce_verify(&enabled, &pk, &msg, &r8, &sig_s)?;
    mark("signature");

    // Roles. The role the signer needs: registrar to register others, patient to grant,
    // revoke or add its own record, doctor to log access or upload under a grant.
    let by_owner = signer.is_eq(p1)?;
    let add_by_owner = is_add & &by_owner;
    let add_by_doctor = is_add & &!&by_owner;
    let patient = Fr::from(Role::Patient.code());
    let doctor = Fr::from(Role::Doctor.code());
    let registrar = Fr::from(Role::Registrar.code());
    let needed_role = fp(is_register) * registrar
        + fp(&add_by_owner) * patient
        + fp(&add_by_doctor) * doctor
        + fp(is_grant) * patient
        + fp(is_revoke) * patient
        + fp(is_access) * doctor;
    arole.conditional_enforce_equal(&needed_role, &nonself)?;
    // A registered key is a curve point; a registrar registers doctors or registrars.
    let x2 = p1.square()?;
    let y2 = p2.square()?;
    let lhs = &x2 * babyjubjub::a() + &y2;
    let rhs = &x2 * &y2 * babyjubjub::d() + Fr::from(1u64);
    lhs.conditional_enforce_equal(&rhs, is_register)?;
    let reg_by_registrar = is_register & &!&signer_is_zero;
    let role_ok = (p3 - doctor) * (p3 - registrar);
    role_ok.conditional_enforce_equal(&FpVar::zero(), &reg_by_registrar)?;

    // B: the object.
    let sel_acc = reg_by_registrar.clone();
    let sel_rec = is_add | is_access;
    let sel_grant = is_grant | is_revoke;
    let b_enabled = &(&sel_acc | &sel_rec) | &sel_grant;
    let (b_bits, b_index) = witness_bits(cs, s.b_index, depth)?;
    let r_owner = witness_u64(cs, s.b_record.owner)?;
    let r_uploader = witness_u64(cs, s.b_record.uploader)?;
    let r_cid = witness_fr(cs, s.b_record.cid_digest)?;
    let r_meta = witness_fr(cs, s.b_record.metadata_hash)?;
    r_owner.conditional_enforce_equal(p1, is_add)?;
    r_uploader.conditional_enforce_equal(&signer, is_add)?;
    r_cid.conditional_enforce_equal(p2, is_add)?;
    r_meta.conditional_enforce_equal(p3, is_add)?;
    b_index.conditional_enforce_equal(p1, is_access)?;
    let g_patient = witness_u64(cs, s.b_grant.patient)?;
    let g_grantee = witness_u64(cs, s.b_grant.grantee)?;
    let g_scope = witness_u64(cs, s.b_grant.scope)?;
    let g_perms = witness_u64(cs, s.b_grant.permissions)?;
    let g_expiry = witness_u64(cs, s.b_grant.expires_at)?;
    g_patient.conditional_enforce_equal(&signer, &sel_grant)?;
    g_grantee.conditional_enforce_equal(p1, is_grant)?;
    g_scope.conditional_enforce_equal(p2, is_grant)?;
    g_perms.conditional_enforce_equal(p3, is_grant)?;
    g_expiry.conditional_enforce_equal(p4, is_grant)?;
    b_index.conditional_enforce_equal(p1, is_revoke)?;
    // A new grant names read and/or write, and an expiry ...
    let perms_value = if s.tx.kind == TxKind::Grant {
        s.b_grant.permissions
    } else {
        1
    };
    let (pbits, ppacked) = witness_bits(cs, perms_value, 2)?;
    let perms_or_one = select(is_grant, &g_perms, &FpVar::one())?;
    ppacked.enforce_equal(&perms_or_one)?;
    let none = (FpVar::one() - fp(&pbits[0])) * (FpVar::one() - fp(&pbits[1]));
    none.enforce_equal(&FpVar::zero())?;
    // ... that lies after the batch time, to another account.
    let grant_margin = &g_expiry - ts - Fr::from(1u64);
    enforce_u64_when(cs, is_grant, &grant_margin)?;
    p1.conditional_enforce_not_equal(&signer, is_grant)?;
    mark("logic");
    let new_account = poseidon::gadget::hash(&[p1.clone(), p2.clone(), p3.clone(), FpVar::zero()])?;
    let record = poseidon::gadget::hash(&[r_owner.clone(), r_uploader, r_cid, r_meta])?;
    let g_fields = [g_patient, g_grantee, g_scope, g_perms, g_expiry];
    let mut old_in = g_fields.to_vec();
    old_in.push(FpVar::one());
    let grant_old = poseidon::gadget::hash(&old_in)?;
    let mut new_in = g_fields.to_vec();
    new_in.push(fp(is_grant));
    let grant_new = poseidon::gadget::hash(&new_in)?;
    let b_old = fp(is_access) * &record + fp(is_revoke) * &grant_old;
    let b_new = fp(&sel_acc) * &new_account + fp(&sel_rec) * &record + fp(&sel_grant) * &grant_new;
    mark("object_leaves");
    let b_op = tree_op(cs, &b_bits, &s.b_path, &b_old, Some(&b_new))?;
    mark("object_path");
    let b_current = fp(&sel_acc) * &roots.accounts
        + fp(&sel_rec) * &roots.records
        + fp(&sel_grant) * &roots.grants;
    b_op.old_root
        .conditional_enforce_equal(&b_current, &b_enabled)?;
    roots.accounts = select(&sel_acc, &b_op.new_root, &roots.accounts)?;
    roots.records = select(&sel_rec, &b_op.new_root, &roots.records)?;
    roots.grants = select(&sel_grant, &b_op.new_root, &roots.grants)?;
    mark("logic");

    // C: the grant that allows a doctor's upload or access.
    let c_enabled = &add_by_doctor | is_access;
    let (c_bits, c_index) = witness_bits(cs, s.c_index, depth)?;
    let c_patient = witness_u64(cs, s.c_grant.patient)?;
    let c_grantee = witness_u64(cs, s.c_grant.grantee)?;
    let c_scope = witness_u64(cs, s.c_grant.scope)?;
    let c_perms_v = if s.c_grant.permissions <= 3 {
        s.c_grant.permissions
    } else {
        0
    };
    let (cbits, c_perms) = witness_bits(cs, c_perms_v, 2)?;
    let c_expiry = witness_u64(cs, s.c_grant.expires_at)?;
    c_index.conditional_enforce_equal(p4, &add_by_doctor)?;
    c_index.conditional_enforce_equal(p2, is_access)?;
    c_grantee.conditional_enforce_equal(&signer, &c_enabled)?;
    c_patient.conditional_enforce_equal(p1, &add_by_doctor)?;
    c_patient.conditional_enforce_equal(&r_owner, is_access)?;
    // Writing needs the write bit and a grant over all records; reading needs the read bit
    // and a grant over all records or this one.
    cbits[1].conditional_enforce_equal(&Boolean::TRUE, &add_by_doctor)?;
    c_scope.conditional_enforce_equal(&FpVar::zero(), &add_by_doctor)?;
    cbits[0].conditional_enforce_equal(&Boolean::TRUE, is_access)?;
    let scope_ok = &c_scope * (&c_scope - p1);
    scope_ok.conditional_enforce_equal(&FpVar::zero(), is_access)?;
    // Not expired: expires_at - timestamp - 1 is in [0, 2^64).
    let margin = &c_expiry - ts - Fr::from(1u64);
    if !weakened(Weakening::GrantExpiry) {
        enforce_u64_when(cs, &c_enabled, &margin)?;
    }
    mark("logic");
    let c_leaf = poseidon::gadget::hash(&[
        c_patient,
        c_grantee,
        c_scope,
        c_perms,
        c_expiry,
        FpVar::one(),
    ])?;
    mark("grant_leaf");
    let c_op = tree_op(cs, &c_bits, &s.c_path, &c_leaf, None)?;
    mark("grant_path");
    c_op.old_root
        .conditional_enforce_equal(&roots.grants, &c_enabled)?;
    mark("logic");

    // Public data.
    let head = &kind_code + &a_index * Fr::from(8u64);
    let digest = poseidon::gadget::hash(&[
        head,
        b_index,
        p1.clone(),
        p2.clone(),
        p3.clone(),
        p4.clone(),
    ])?;
    *chain = poseidon::gadget::hash2(chain, &digest)?;
    mark("pubdata");
    Ok(())
}

impl ConstraintSynthesizer<Fr> for ChunkCircuit {
    fn generate_constraints(self, cs: ConstraintSystemRef<Fr>) -> Result<(), SynthesisError> {
        self.synthesize(cs, None)
    }
}

/// Constraint counts of a parameter set.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CircuitInfo {
    /// Slots per chunk.
    pub slots: usize,
    /// Tree depth.
    pub depth: usize,
    /// Constraints of the whole chunk circuit.
    pub constraints_total: usize,
    /// Constraints of one slot (every slot is universal, so this is the maximum over kinds).
    pub constraints_per_slot: usize,
    /// Constraints outside the slots (state roots, public inputs).
    pub constraints_fixed: usize,
    /// One slot's constraints by component.
    pub breakdown: BTreeMap<String, usize>,
    /// For each kind, the constraints of the components it uses.
    pub per_kind: BTreeMap<String, usize>,
    /// Public inputs (without the constant one).
    pub public_inputs: usize,
    /// Witness variables.
    pub witness_variables: usize,
}

/// Count the constraints of a parameter set by synthesizing a blank chunk.
///
/// # Errors
/// [`SynthesisError`] if synthesis fails.
pub fn info(params: CircuitParams) -> Result<CircuitInfo, SynthesisError> {
    let cs = ark_relations::gr1cs::ConstraintSystem::<Fr>::new_ref();
    cs.set_mode(ark_relations::gr1cs::SynthesisMode::Setup);
    let mut meter = Meter::default();
    ChunkCircuit::blank(params).synthesize(cs.clone(), Some(&mut meter))?;
    let total = cs.num_constraints();
    let per_slot: usize = meter.parts.values().sum();
    let per_kind = TxKind::SIGNED
        .iter()
        .map(|k| {
            let used: usize = components_used(*k)
                .iter()
                .map(|c| meter.parts.get(c).copied().unwrap_or(0))
                .sum();
            (k.name().to_string(), used)
        })
        .collect();
    Ok(CircuitInfo {
        slots: params.slots,
        depth: params.depth,
        constraints_total: total,
        constraints_per_slot: per_slot,
        constraints_fixed: total - per_slot * params.slots,
        breakdown: meter
            .parts
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect(),
        per_kind,
        public_inputs: cs.num_instance_variables() - 1,
        witness_variables: cs.num_witness_variables(),
    })
}
