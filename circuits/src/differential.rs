//! Differential checking of the statement: sequences of transactions, valid and invalid in
//! every way the rules know, applied by the native transition ([`crate::state`]) and checked
//! against the chunk circuit ([`crate::circuit`]) slot by slot.
//!
//! - What the native rules accept gives chunk witnesses that satisfy the circuit with the
//!   same new root (the root is a public input, so satisfaction is agreement).
//! - For what they refuse, the witness a cheating sequencer builds to force the slot through
//!   ([`Batch::apply_unchecked_for_tests`]: real Merkle paths, plausible leaves for what is
//!   missing, the signer's real key) must not satisfy the circuit, unless the refusal is one
//!   of the policy rules the circuit leaves to the sequencer ([`circuit_enforced`]).
//!
//! A disagreement either way is the worst bug this system can have: a circuit weaker than
//! the rules lets an operator prove a forbidden transition, and a circuit stronger than them
//! stalls the chain on a batch nobody can prove.
//!
//! Sequences are drawn from bytes ([`Choices`]), so that a coverage-guided fuzzer steers
//! them (`fuzz/`, target `differential`), the normal suite runs them from random bytes, and
//! any finding replays from its input. The draw is biased towards transactions that the
//! state makes plausible (a doctor logging a record it holds a grant for), so that sequences
//! reach the rules behind the signature and nonce checks.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use ark_ff::{PrimeField, Zero};
use ark_relations::gr1cs::{ConstraintSynthesizer, ConstraintSystem};
use cid::Cid;

use crate::Fr;
use crate::artifacts::CircuitParams;
use crate::babyjubjub::Point;
use crate::circuit::{ChunkCircuit, ChunkWitness};
use crate::deployment::{Deployment, DeploymentId};
use crate::eddsa::{PrivateKey, PublicKey};
use crate::leaf::{AccountLeaf, Roots};
use crate::state::{Applied, ApplyError, State, StateError};
use crate::tx::{
    Permissions, Role, Scope, SignedTransaction, Transaction, TxBody, TxError, TxKind,
};

/// Tree depth of the sequences' state: 7 usable ids per tree, so trees fill up.
pub const DEPTH: usize = 3;
/// Slots per chunk when accepted transactions are checked together.
pub const SLOTS: usize = 2;
/// The most transactions one sequence draws after its fixed opening.
pub const MAX_STEPS: usize = 10;

const T0: u64 = 1_800_000_000;
const CIDS: [&str; 2] = [
    "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy",
    "QmWATWQ7fVPP2EFGu71UkfnqhYXDYH566qy47CnJDgvs8u",
];
/// Ids drawn at random lie in `0..ID_RANGE`: every used id, a few unused ones and one past
/// the tree.
const ID_RANGE: u64 = (1 << DEPTH) + 2;

/// Choices drawn from bytes. Past the end every draw is zero, which draws the plausible
/// option, so short inputs give short, mostly valid sequences.
pub struct Choices<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Choices<'a> {
    /// Choices from `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, at: 0 }
    }

    fn byte(&mut self) -> u8 {
        let b = self.bytes.get(self.at).copied().unwrap_or(0);
        self.at = self.at.saturating_add(1);
        b
    }

    fn done(&self) -> bool {
        self.at >= self.bytes.len()
    }

    fn u64(&mut self) -> u64 {
        (0..8).fold(0u64, |acc, _| (acc << 8) | u64::from(self.byte()))
    }

    /// A number below `n` (0 when `n` is 0).
    fn below(&mut self, n: u64) -> u64 {
        match n {
            0 | 1 => 0,
            2..=256 => u64::from(self.byte()) % n,
            _ => self.u64() % n,
        }
    }

    /// True once in `n` draws of random bytes; false past the end.
    fn one_in(&mut self, n: u64) -> bool {
        n > 0 && u64::from(self.byte()) % n == n - 1
    }

    /// A field element, the edges often: 0, 1, p − 1, a small number, any element.
    fn field(&mut self) -> Fr {
        match self.below(5) {
            0 => Fr::from(self.u64() % 1000),
            1 => Fr::zero(),
            2 => Fr::from(1u64),
            3 => -Fr::from(1u64),
            _ => {
                let bytes: Vec<u8> = (0..32).map(|_| self.byte()).collect();
                Fr::from_le_bytes_mod_order(&bytes)
            }
        }
    }

    /// One of `xs`, or `None` when empty.
    fn pick<T: Copy>(&mut self, xs: &[T]) -> Option<T> {
        if xs.is_empty() {
            return None;
        }
        let i = self.below(xs.len() as u64) as usize;
        xs.get(i).copied()
    }
}

/// What the checks exercised, summed over sequences by [`Report::add`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Sequences run.
    pub sequences: u64,
    /// Transactions drawn.
    pub transactions: u64,
    /// Transactions the native rules accepted, each checked in a satisfied chunk.
    pub accepted: u64,
    /// Chunks of accepted transactions checked.
    pub chunks: u64,
    /// Refusals by reason code.
    pub refused: BTreeMap<&'static str, u64>,
    /// Refusals whose forced witness the circuit refused, by reason code.
    pub forced_refused: BTreeMap<&'static str, u64>,
    /// Policy refusals whose forced witness the circuit accepted (allowed: the sequencer
    /// keeps these rules), by reason code.
    pub policy_accepted: BTreeMap<&'static str, u64>,
    /// Refusals no witness could even be built for (an id past the tree, a malformed CID).
    pub unbuildable: u64,
}

impl Report {
    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &Report) {
        self.sequences += other.sequences;
        self.transactions += other.transactions;
        self.accepted += other.accepted;
        self.chunks += other.chunks;
        self.unbuildable += other.unbuildable;
        for (mine, theirs) in [
            (&mut self.refused, &other.refused),
            (&mut self.forced_refused, &other.forced_refused),
            (&mut self.policy_accepted, &other.policy_accepted),
        ] {
            for (k, v) in theirs {
                *mine.entry(k).or_default() += v;
            }
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} sequences, {} transactions: {} accepted in {} chunks, {} refused for {} reasons \
             (forced witnesses refused by the circuit: {}; policy refusals it accepts: {}; \
             unbuildable: {})",
            self.sequences,
            self.transactions,
            self.accepted,
            self.chunks,
            self.refused.values().sum::<u64>(),
            self.refused.len(),
            self.forced_refused.values().sum::<u64>(),
            self.policy_accepted.values().sum::<u64>(),
            self.unbuildable,
        )
    }
}

/// A disagreement between the native rules and the circuit.
#[derive(Debug)]
pub enum Finding {
    /// The native rules accepted a transaction whose slot does not satisfy the circuit.
    AcceptedUnsatisfied {
        /// The step of the sequence.
        step: usize,
        /// The transaction's kind.
        kind: TxKind,
        /// Why the circuit check failed (unsatisfied, or synthesis refused the witness).
        detail: String,
    },
    /// The native rules refused a transaction, and the forced witness satisfies the circuit.
    RefusedSatisfied {
        /// The step of the sequence.
        step: usize,
        /// The transaction's kind.
        kind: TxKind,
        /// The native refusal's reason code.
        reason: &'static str,
        /// The native refusal.
        message: String,
    },
    /// The state store failed (not a disagreement: the check could not run).
    Storage(String),
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AcceptedUnsatisfied { step, kind, detail } => write!(
                f,
                "step {step}: the native rules accepted a {} the circuit refuses ({detail})",
                kind.name()
            ),
            Self::RefusedSatisfied {
                step,
                kind,
                reason,
                message,
            } => write!(
                f,
                "step {step}: the native rules refused a {} ({reason}: {message}) but the forced \
                 witness satisfies the circuit",
                kind.name()
            ),
            Self::Storage(e) => write!(f, "the state store failed: {e}"),
        }
    }
}

impl From<StateError> for Finding {
    fn from(e: StateError) -> Self {
        Self::Storage(e.to_string())
    }
}

/// Whether the circuit must refuse a transaction the native rules refused with `e`. A few
/// rules are the sequencer's policy: they protect users from mistakes, and a violation could
/// not harm anyone's records, so the circuit does not spend constraints on them:
/// registering a key twice or a key outside the prime-order subgroup (a key off the curve
/// the circuit refuses), and a grant to an account that does not exist or over a record the
/// patient does not own or that does not exist (nobody can use such a grant on another
/// patient's records: a read proves the record's owner is the grant's patient).
pub fn circuit_enforced(tx: &Transaction, e: &TxError) -> bool {
    match (e, &tx.body) {
        (TxError::AccountExists(_), _) => false,
        (TxError::InvalidPublicKey(_), TxBody::Register { public_key, .. }) => {
            !public_key.0.is_on_curve()
        }
        (TxError::UnknownAccount(id), TxBody::Grant { grantee, .. }) => {
            *id != *grantee || *id == tx.signer
        }
        (TxError::NotOwner { .. } | TxError::UnknownRecord(_), TxBody::Grant { .. }) => false,
        _ => true,
    }
}

/// Whether `witness` satisfies the circuit of `params`; `Err` says why not when synthesis
/// itself refused the witness.
fn satisfies(params: CircuitParams, witness: ChunkWitness) -> Result<bool, String> {
    let cs = ConstraintSystem::<Fr>::new_ref();
    ChunkCircuit { params, witness }
        .generate_constraints(cs.clone())
        .map_err(|e| format!("synthesis: {e}"))?;
    cs.is_satisfied().map_err(|e| format!("check: {e}"))
}

/// The keys of a sequence: 0 is the genesis registrar, 1 and 2 doctors, 3 and 4 patients
/// (registered by the opening), 5 and 6 never registered.
struct Keys {
    private: Vec<PrivateKey>,
    public: Vec<PublicKey>,
}

impl Keys {
    fn new() -> Self {
        let private: Vec<PrivateKey> = (1..=7u8).map(|i| PrivateKey::from_bytes([i; 32])).collect();
        let public = private.iter().map(PrivateKey::public_key).collect();
        Self { private, public }
    }

    fn of(&self, pk: &Point) -> Option<usize> {
        self.public.iter().position(|k| k.0 == *pk)
    }
}

/// One sequence's world: the state, the deployment, the keys and the batch time.
struct World {
    state: State,
    here: Deployment,
    elsewhere: Deployment,
    keys: Keys,
    ts: u64,
}

/// An accepted transaction waiting to be checked in a chunk.
struct Pending {
    step: usize,
    kind: TxKind,
    applied: Applied,
}

impl World {
    fn new() -> Result<Self, Finding> {
        let keys = Keys::new();
        let state = State::in_memory(DEPTH)?;
        state.init_genesis(&[keys.public[0]])?;
        Ok(Self {
            state,
            here: Deployment::new(DeploymentId(Fr::from(0xd0_u64)), 31337, [0x5f; 20]),
            elsewhere: Deployment::new(DeploymentId(Fr::from(0xd1_u64)), 1, [0x5f; 20]),
            keys,
            ts: T0,
        })
    }

    /// `body` from `signer` at `nonce`, signed with pool key `key` for the deployment
    /// here; `None` when it cannot be encoded (never for what is drawn here).
    fn sign(&self, key: usize, signer: u64, nonce: u64, body: TxBody) -> Option<SignedTransaction> {
        self.sign_for(&self.here, key, signer, nonce, body)
    }

    fn sign_for(
        &self,
        deployment: &Deployment,
        key: usize,
        signer: u64,
        nonce: u64,
        body: TxBody,
    ) -> Option<SignedTransaction> {
        let key = self.keys.private.get(key)?;
        Transaction {
            signer,
            nonce,
            body,
        }
        .sign(key, deployment.id)
        .ok()
    }

    /// The fixed opening: two doctors, two patients, a record and a grant, every rule met.
    fn opening(&self) -> Vec<Option<SignedTransaction>> {
        let reg = |k: usize, role| TxBody::Register {
            public_key: self.keys.public[k],
            role,
        };
        vec![
            self.sign(0, 1, 0, reg(1, Role::Doctor)),
            self.sign(0, 1, 1, reg(2, Role::Doctor)),
            self.sign(3, 0, 0, reg(3, Role::Patient)),
            self.sign(4, 0, 0, reg(4, Role::Patient)),
            self.sign(
                3,
                4,
                1,
                TxBody::AddRecord {
                    patient: 4,
                    cid: cid(0),
                    metadata_hash: Fr::from(7u64),
                    grant: None,
                },
            ),
            self.sign(
                3,
                4,
                2,
                TxBody::Grant {
                    grantee: 2,
                    scope: Scope::All,
                    permissions: Permissions {
                        read: true,
                        write: true,
                    },
                    expires_at: T0 + 3,
                },
            ),
        ]
    }

    /// A world after [`World::opening`].
    fn opened() -> Result<Self, Finding> {
        let w = Self::new()?;
        let mut batch = w.state.begin(w.ts, &w.here)?;
        for stx in w.opening() {
            let applied = match stx {
                Some(stx) => batch.apply(&stx).map(|_| ()).map_err(|e| e.to_string()),
                None => Err("it cannot be signed".to_owned()),
            };
            if let Err(e) = applied {
                return Err(Finding::Storage(format!("the opening was refused: {e}")));
            }
        }
        batch.commit()?;
        Ok(w)
    }

    fn accounts(&self) -> Result<Vec<(u64, AccountLeaf)>, Finding> {
        let mut out = Vec::new();
        for id in 1..(1u64 << DEPTH) {
            if let Some(a) = self.state.account(id)? {
                out.push((id, a));
            }
        }
        Ok(out)
    }

    /// An account id: one with `role` most of the time, any id in range otherwise.
    fn draw_account(&self, c: &mut Choices<'_>, role: Role) -> Result<u64, Finding> {
        if c.one_in(8) {
            return Ok(any_id(c));
        }
        let ids: Vec<u64> = self
            .accounts()?
            .into_iter()
            .filter(|(_, a)| a.role == role.code())
            .map(|(id, _)| id)
            .collect();
        Ok(c.pick(&ids).unwrap_or_else(|| any_id(c)))
    }

    /// A record id: one of `owner`'s most of the time, any id in range otherwise.
    fn draw_record(&self, c: &mut Choices<'_>, owner: Option<u64>) -> Result<u64, Finding> {
        if c.one_in(6) {
            return Ok(any_id(c));
        }
        let mut ids = Vec::new();
        for id in 1..(1u64 << DEPTH) {
            if let Some(r) = self.state.record(id)?
                && owner.is_none_or(|o| r.leaf.owner == o)
            {
                ids.push(id);
            }
        }
        Ok(c.pick(&ids).unwrap_or_else(|| any_id(c)))
    }

    /// A grant id: one from `patient` (any when `None`) to `grantee` (any when `None`) most
    /// of the time, any id in range otherwise.
    fn draw_grant(
        &self,
        c: &mut Choices<'_>,
        patient: Option<u64>,
        grantee: Option<u64>,
    ) -> Result<u64, Finding> {
        if c.one_in(6) {
            return Ok(any_id(c));
        }
        let mut ids = Vec::new();
        for id in 1..(1u64 << DEPTH) {
            if let Some(g) = self.state.grant(id)?
                && patient.is_none_or(|p| g.patient == p)
                && grantee.is_none_or(|d| g.grantee == d)
            {
                ids.push(id);
            }
        }
        Ok(c.pick(&ids).unwrap_or_else(|| any_id(c)))
    }

    /// A key to register: a key of the pool (registered or not), or a point no key should
    /// be: of low order, the identity, off the curve.
    fn draw_new_key(&self, c: &mut Choices<'_>) -> (PublicKey, Option<usize>) {
        let n = self.keys.public.len() as u64;
        let i = if c.one_in(4) {
            c.below(n + 3)
        } else {
            5 + c.below(2)
        };
        match i {
            i if i < n => (self.keys.public[i as usize], Some(i as usize)),
            x if x == n => (
                PublicKey(Point {
                    x: Fr::zero(),
                    y: -Fr::from(1u64),
                }),
                None,
            ),
            x if x == n + 1 => (PublicKey(Point::identity()), None),
            _ => (
                PublicKey(Point {
                    x: Fr::from(1u64),
                    y: Fr::from(1u64),
                }),
                None,
            ),
        }
    }

    fn draw_expiry(&self, c: &mut Choices<'_>) -> u64 {
        match c.below(8) {
            0 => u64::MAX,
            1 => self.ts,
            2 => self.ts.saturating_sub(c.below(3)),
            3 => 0,
            _ => self.ts + 1 + c.below(4),
        }
    }

    /// Draws the next transaction and the key its signer would claim if its account is
    /// missing (the signing key's own, so that only the missing leaf can refuse it).
    fn draw_tx(
        &self,
        c: &mut Choices<'_>,
    ) -> Result<Option<(SignedTransaction, PublicKey)>, Finding> {
        let accounts = self.accounts()?;
        let leaf = |id: u64| accounts.iter().find(|(i, _)| *i == id).map(|(_, a)| *a);
        let key_of = |id: u64| leaf(id).and_then(|a| self.keys.of(&a.pk));
        let kind = c.below(5);
        let (signer, body, own_key) = match kind {
            0 => {
                let (public_key, key) = self.draw_new_key(c);
                if c.below(3) != 0 {
                    let role = if c.one_in(6) {
                        Role::Doctor
                    } else {
                        Role::Patient
                    };
                    (0, TxBody::Register { public_key, role }, key)
                } else {
                    let signer = self.draw_account(c, Role::Registrar)?;
                    let role = [Role::Doctor, Role::Registrar, Role::Patient][c.below(3) as usize];
                    (
                        signer,
                        TxBody::Register { public_key, role },
                        key_of(signer),
                    )
                }
            }
            1 => {
                // A patient's own record, or a doctor's under a grant.
                let by_doctor = c.below(2) == 0;
                let (signer, patient, grant) = if by_doctor {
                    let signer = self.draw_account(c, Role::Doctor)?;
                    let patient = self.draw_account(c, Role::Patient)?;
                    let grant = if c.one_in(8) {
                        None
                    } else {
                        Some(self.draw_grant(c, Some(patient), Some(signer))?)
                    };
                    (signer, patient, grant)
                } else {
                    let signer = self.draw_account(c, Role::Patient)?;
                    let patient = if c.one_in(8) { any_id(c) } else { signer };
                    (signer, patient, c.one_in(8).then(|| any_id(c)))
                };
                let body = TxBody::AddRecord {
                    patient,
                    cid: cid(c.below(2) as usize),
                    metadata_hash: c.field(),
                    grant,
                };
                (signer, body, key_of(signer))
            }
            2 => {
                let signer = self.draw_account(c, Role::Patient)?;
                let grantee = if c.one_in(8) {
                    signer
                } else {
                    self.draw_account(c, Role::Doctor)?
                };
                let scope = if c.below(3) == 0 {
                    Scope::Record(self.draw_record(c, Some(signer))?)
                } else {
                    Scope::All
                };
                let bits = if c.one_in(8) { 0 } else { 1 + c.below(3) };
                let permissions = Permissions {
                    read: bits & 1 == 1,
                    write: bits & 2 == 2,
                };
                let body = TxBody::Grant {
                    grantee,
                    scope,
                    permissions,
                    expires_at: self.draw_expiry(c),
                };
                (signer, body, key_of(signer))
            }
            3 => {
                let signer = self.draw_account(c, Role::Patient)?;
                let patient = if c.one_in(6) { None } else { Some(signer) };
                let grant = self.draw_grant(c, patient, None)?;
                (signer, TxBody::Revoke { grant }, key_of(signer))
            }
            _ => {
                let signer = self.draw_account(c, Role::Doctor)?;
                let grant = self.draw_grant(c, None, Some(signer))?;
                let patient = self.state.grant(grant)?.map(|g| g.patient);
                let record = self.draw_record(c, patient)?;
                let body = TxBody::AccessLog {
                    record,
                    grant,
                    purpose: c.field(),
                };
                (signer, body, key_of(signer))
            }
        };
        let nonce = match leaf(signer) {
            _ if signer == 0 => 0,
            Some(a) => a.nonce,
            None => 0,
        };
        let nonce = match c.below(16) {
            13 => nonce.wrapping_sub(1),
            14 => nonce + 1,
            15 => c.u64(),
            _ => nonce,
        };
        let n = self.keys.private.len() as u64;
        let key = match own_key {
            Some(k) if !c.one_in(12) => k,
            _ => c.below(n) as usize,
        };
        let stx = if c.one_in(16) {
            self.sign_for(&self.elsewhere, key, signer, nonce, body)
        } else {
            self.sign(key, signer, nonce, body)
        };
        Ok(stx.map(|stx| (stx, self.keys.public[key])))
    }

    /// Checks accepted transactions together in chunks of [`SLOTS`], then alone when a chunk
    /// fails, to name the slot.
    fn check_accepted(
        &self,
        before: Roots,
        ts: u64,
        pending: &[Pending],
        report: &mut Report,
    ) -> Result<(), Finding> {
        let mut from = before;
        for group in pending.chunks(SLOTS) {
            let Some(last) = group.last() else { continue };
            let mut slots: Vec<_> = group.iter().map(|p| p.applied.slot.clone()).collect();
            slots.resize_with(SLOTS, || crate::circuit::SlotWitness::noop(DEPTH));
            let witness = ChunkWitness {
                timestamp: ts,
                deployment: self.here.id,
                roots_before: from,
                roots_after: last.applied.roots_after,
                slots,
            };
            report.chunks += 1;
            if satisfies(CircuitParams::new(SLOTS, DEPTH), witness) != Ok(true) {
                let mut slot_before = from;
                for p in group {
                    let alone = ChunkWitness {
                        timestamp: ts,
                        deployment: self.here.id,
                        roots_before: slot_before,
                        roots_after: p.applied.roots_after,
                        slots: vec![p.applied.slot.clone()],
                    };
                    match satisfies(CircuitParams::new(1, DEPTH), alone) {
                        Ok(true) => {}
                        Ok(false) => {
                            return Err(Finding::AcceptedUnsatisfied {
                                step: p.step,
                                kind: p.kind,
                                detail: "unsatisfied".into(),
                            });
                        }
                        Err(detail) => {
                            return Err(Finding::AcceptedUnsatisfied {
                                step: p.step,
                                kind: p.kind,
                                detail,
                            });
                        }
                    }
                    slot_before = p.applied.roots_after;
                }
                return Err(Finding::AcceptedUnsatisfied {
                    step: group[0].step,
                    kind: group[0].kind,
                    detail: "each slot alone is satisfied, the chunk of them is not".into(),
                });
            }
            from = last.applied.roots_after;
        }
        Ok(())
    }

    /// Forces a refused transaction through as a cheating sequencer would and checks that
    /// the circuit refuses it (or, for a policy rule, counts whether it does).
    fn check_refused(
        &self,
        step: usize,
        stx: &SignedTransaction,
        fake_key: PublicKey,
        refusal: &TxError,
        report: &mut Report,
    ) -> Result<(), Finding> {
        let reason = refusal.reason();
        let mut batch = self.state.begin(self.ts, &self.here)?;
        let before = batch.roots();
        let forced = match batch.apply_unchecked_for_tests(stx, Some(fake_key)) {
            Ok(a) => Some(a.clone()),
            Err(_) => None,
        };
        batch.rollback()?;
        let Some(forced) = forced else {
            report.unbuildable += 1;
            return Ok(());
        };
        let witness = ChunkWitness {
            timestamp: self.ts,
            deployment: self.here.id,
            roots_before: before,
            roots_after: forced.roots_after,
            slots: vec![forced.slot],
        };
        if satisfies(CircuitParams::new(1, DEPTH), witness) == Ok(true) {
            if circuit_enforced(&stx.tx, refusal) {
                return Err(Finding::RefusedSatisfied {
                    step,
                    kind: stx.tx.body.kind(),
                    reason,
                    message: refusal.to_string(),
                });
            }
            *report.policy_accepted.entry(reason).or_default() += 1;
        } else {
            *report.forced_refused.entry(reason).or_default() += 1;
        }
        Ok(())
    }
}

/// Any id: in range mostly, now and then the largest there is.
fn any_id(c: &mut Choices<'_>) -> u64 {
    if c.one_in(16) {
        u64::MAX
    } else {
        c.below(ID_RANGE)
    }
}

fn cid(i: usize) -> Cid {
    #[allow(clippy::expect_used)]
    Cid::from_str(CIDS[i % CIDS.len()]).expect("the sample CIDs parse")
}

/// A state in memory after the opening every sequence starts from (a registrar, two
/// doctors, two patients, a record and a grant), the deployment it runs for, and its batch
/// time: for fuzz targets that need a populated state.
///
/// # Errors
/// [`Finding::Storage`] when the store fails.
pub fn opened_state() -> Result<(State, Deployment, u64), Finding> {
    let w = World::opened()?;
    Ok((w.state, w.here, w.ts))
}

/// Runs one sequence drawn from `bytes`: the fixed opening, then up to [`MAX_STEPS`]
/// transactions, each applied natively and checked against the circuit.
///
/// # Errors
/// The first [`Finding`].
pub fn run(bytes: &[u8]) -> Result<Report, Finding> {
    let mut c = Choices::new(bytes);
    let mut w = World::opened()?;
    let mut report = Report {
        sequences: 1,
        ..Report::default()
    };
    let steps = 1 + c.below(MAX_STEPS as u64) as usize;
    let mut pending: Vec<Pending> = Vec::new();
    let mut pending_from = w.state.roots()?;
    let mut pending_ts = w.ts;
    for step in 0..steps {
        if c.done() && step > 0 {
            break;
        }
        if c.one_in(3) {
            w.ts += 1 + c.below(3);
        }
        if w.ts != pending_ts {
            w.check_accepted(pending_from, pending_ts, &pending, &mut report)?;
            pending.clear();
            pending_from = w.state.roots()?;
            pending_ts = w.ts;
        }
        report.transactions += 1;
        let Some((stx, fake_key)) = w.draw_tx(&mut c)? else {
            report.unbuildable += 1;
            continue;
        };
        let mut batch = w.state.begin(w.ts, &w.here)?;
        match batch.apply(&stx) {
            Ok(applied) => {
                let applied = applied.clone();
                batch.commit()?;
                report.accepted += 1;
                pending.push(Pending {
                    step,
                    kind: stx.tx.body.kind(),
                    applied,
                });
            }
            Err(ApplyError::Rejected(e)) => {
                batch.rollback()?;
                *report.refused.entry(e.reason()).or_default() += 1;
                w.check_refused(step, &stx, fake_key, &e, &mut report)?;
            }
            Err(ApplyError::Storage(e)) => return Err(e.into()),
        }
    }
    w.check_accepted(pending_from, pending_ts, &pending, &mut report)?;
    Ok(report)
}
