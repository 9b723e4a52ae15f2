//! The statement end to end: transactions of every kind applied to a persistent state, the
//! chunks they make proven with ark-groth16 and verified; every validity rule refused both by
//! the native transition and by the circuit (a signature made for another deployment among
//! them); the store surviving a process exit.

use std::collections::BTreeSet;
use std::str::FromStr;

use ark_bn254::Fr;
use ark_relations::gr1cs::{ConstraintSynthesizer, ConstraintSystem};
use cid::Cid;
use pulse_circuits::artifacts::{self, CircuitParams, KeyArtifacts};
use pulse_circuits::circuit::{ChunkCircuit, ChunkWitness};
use pulse_circuits::deployment::{Deployment, DeploymentId};
use pulse_circuits::eddsa::{PrivateKey, PublicKey};
use pulse_circuits::leaf::Roots;
use pulse_circuits::state::{Applied, ApplyError, Batch, State, TreeKind};
use pulse_circuits::tx::{
    Permissions, Role, Scope, SignedTransaction, Transaction, TxBody, TxKind,
};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

const DEPTH: usize = 4;
const T0: u64 = 1_800_000_000;

const CID_A: &str = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy";
const CID_B: &str = "QmWATWQ7fVPP2EFGu71UkfnqhYXDYH566qy47CnJDgvs8u";

struct Actors {
    registrar: PrivateKey,
    p: PrivateKey,
    q: PrivateKey,
    d: PrivateKey,
    e: PrivateKey,
}

// Account ids, in registration order.
const REGISTRAR: u64 = 1;
const P: u64 = 2;
const Q: u64 = 3;
const D: u64 = 4;
const E: u64 = 5;

/// The deployment the tests' state runs for. Its id is arbitrary here: only `pulse_l1`
/// computes real ones, and the statement takes the id as given.
fn here() -> Deployment {
    Deployment::new(DeploymentId(Fr::from(0xd0_u64)), 31337, [0x5f; 20])
}

/// Another deployment: the same contract address on another chain.
fn elsewhere() -> Deployment {
    Deployment::new(DeploymentId(Fr::from(0xd1_u64)), 1, [0x5f; 20])
}

fn sign_for(
    deployment: &Deployment,
    key: &PrivateKey,
    signer: u64,
    nonce: u64,
    body: TxBody,
) -> SignedTransaction {
    Transaction {
        signer,
        nonce,
        body,
    }
    .sign(key, deployment.id)
    .expect("sign")
}

fn sign(key: &PrivateKey, signer: u64, nonce: u64, body: TxBody) -> SignedTransaction {
    sign_for(&here(), key, signer, nonce, body)
}

fn read_write() -> Permissions {
    Permissions {
        read: true,
        write: true,
    }
}

fn read_only() -> Permissions {
    Permissions {
        read: true,
        write: false,
    }
}

fn actors(seed: u64) -> Actors {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    Actors {
        registrar: PrivateKey::random(&mut rng),
        p: PrivateKey::random(&mut rng),
        q: PrivateKey::random(&mut rng),
        d: PrivateKey::random(&mut rng),
        e: PrivateKey::random(&mut rng),
    }
}

/// The scenario: every kind of transaction, in an order where each is valid.
fn scenario(a: &Actors) -> Vec<SignedTransaction> {
    let reg = |k: &PrivateKey, role| TxBody::Register {
        public_key: k.public_key(),
        role,
    };
    vec![
        sign(&a.p, 0, 0, reg(&a.p, Role::Patient)),
        sign(&a.q, 0, 0, reg(&a.q, Role::Patient)),
        sign(&a.registrar, REGISTRAR, 0, reg(&a.d, Role::Doctor)),
        sign(&a.registrar, REGISTRAR, 1, reg(&a.e, Role::Doctor)),
        // P's own record 1.
        sign(
            &a.p,
            P,
            1,
            TxBody::AddRecord {
                patient: P,
                cid: Cid::from_str(CID_A).expect("cid"),
                metadata_hash: Fr::from(11u64),
                grant: None,
            },
        ),
        // Grant 1: D may read and write all of P's records.
        sign(
            &a.p,
            P,
            2,
            TxBody::Grant {
                grantee: D,
                scope: Scope::All,
                permissions: read_write(),
                expires_at: T0 + 1000,
            },
        ),
        // Record 2, uploaded by D for P under grant 1.
        sign(
            &a.d,
            D,
            0,
            TxBody::AddRecord {
                patient: P,
                cid: Cid::from_str(CID_B).expect("cid"),
                metadata_hash: Fr::from(12u64),
                grant: Some(1),
            },
        ),
        sign(
            &a.d,
            D,
            1,
            TxBody::AccessLog {
                record: 1,
                grant: 1,
                purpose: Fr::from(7u64),
            },
        ),
        // Grant 2: E may read record 1 only, briefly.
        sign(
            &a.p,
            P,
            3,
            TxBody::Grant {
                grantee: E,
                scope: Scope::Record(1),
                permissions: read_only(),
                expires_at: T0 + 10,
            },
        ),
        // Grant 3: D may read Q's records; Q revokes it.
        sign(
            &a.q,
            Q,
            1,
            TxBody::Grant {
                grantee: D,
                scope: Scope::All,
                permissions: read_only(),
                expires_at: T0 + 1000,
            },
        ),
        sign(&a.q, Q, 2, TxBody::Revoke { grant: 3 }),
    ]
}

fn fresh_state(dir: &std::path::Path, a: &Actors) -> State {
    let state = State::open(&dir.join("state.redb"), DEPTH).expect("open state");
    state
        .init_genesis(&[a.registrar.public_key()])
        .expect("genesis");
    state
}

fn apply_all(batch: &mut Batch<'_>, txs: &[SignedTransaction]) -> Vec<Applied> {
    txs.iter()
        .map(|t| {
            batch
                .apply(t)
                .unwrap_or_else(|e| panic!("{:?} refused: {e}", t.tx.body.kind()))
                .clone()
        })
        .collect()
}

fn satisfied(params: CircuitParams, witness: ChunkWitness) -> bool {
    let cs = ConstraintSystem::<Fr>::new_ref();
    ChunkCircuit { params, witness }
        .generate_constraints(cs.clone())
        .expect("synthesis");
    cs.is_satisfied().expect("satisfiability check")
}

fn single_slot(ts: u64, before: Roots, applied: &Applied) -> ChunkWitness {
    ChunkWitness {
        timestamp: ts,
        deployment: here().id,
        roots_before: before,
        roots_after: applied.roots_after,
        slots: vec![applied.slot.clone()],
    }
}

#[test]
fn every_kind_proves_and_verifies_in_chunks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = actors(1);
    let state = fresh_state(dir.path(), &a);
    let before = state.roots().expect("roots");
    let mut batch = state.begin(T0, &here()).expect("begin");
    let applied = apply_all(&mut batch, &scenario(&a));
    let kinds: BTreeSet<_> = applied.iter().map(|x| x.kind.name()).collect();
    assert_eq!(kinds.len(), 5, "the scenario holds every kind: {kinds:?}");
    assert_eq!(applied[0].new_account, Some(P));
    assert_eq!(applied[3].new_account, Some(E));
    assert_eq!(applied[6].new_record, Some(2));
    assert_eq!(applied[9].new_grant, Some(3));

    let params = CircuitParams::new(3, DEPTH);
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let keys: KeyArtifacts =
        artifacts::setup(ChunkCircuit::blank(params), params, &mut rng).expect("setup");
    let chunks = batch.chunks(before, params.slots);
    assert_eq!(chunks.len(), 4, "11 transactions in chunks of 3");
    assert_eq!(chunks.last().map(|c| c.roots_after), Some(batch.roots()));
    let verifier = keys.verifier();
    for (i, chunk) in chunks.into_iter().enumerate() {
        let public = chunk.public_inputs();
        let proof = artifacts::prove_reference(
            &keys,
            ChunkCircuit {
                params,
                witness: chunk,
            },
            &mut rng,
        )
        .unwrap_or_else(|e| panic!("chunk {i}: {e}"));
        assert_eq!(proof.public_inputs, public);
        verifier
            .verify(&proof)
            .unwrap_or_else(|e| panic!("chunk {i}: {e}"));
        // A tampered public input (each of the four, the deployment id included) fails.
        for k in 0..4 {
            let mut bad = proof.clone();
            bad.public_inputs[k] += Fr::from(1u64);
            assert!(
                verifier.verify(&bad).is_err(),
                "chunk {i}: tampered input {k} verified"
            );
        }
    }
    let roots = batch.commit().expect("commit");
    assert_eq!(state.roots().expect("roots"), roots);
}

/// A transaction the native transition refuses with `reason`, and whose unchecked witness
/// the circuit refuses too.
struct Bad {
    what: &'static str,
    reason: &'static str,
    /// Transactions applied first (valid ones).
    setup: Vec<SignedTransaction>,
    tx: SignedTransaction,
    timestamp: u64,
    fake_key: Option<PublicKey>,
}

#[test]
fn every_validity_rule_is_refused_natively_and_by_the_circuit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = actors(2);
    let state = fresh_state(dir.path(), &a);
    {
        let mut batch = state.begin(T0, &here()).expect("begin");
        apply_all(&mut batch, &scenario(&a));
        batch.commit().expect("commit");
    }
    let params = CircuitParams::new(1, DEPTH);
    let grant = |grantee, expires_at| TxBody::Grant {
        grantee,
        scope: Scope::All,
        permissions: read_only(),
        expires_at,
    };
    let log = |record, grant| TxBody::AccessLog {
        record,
        grant,
        purpose: Fr::from(1u64),
    };
    let stranger = PrivateKey::from_bytes([42u8; 32]);
    let cases = vec![
        Bad {
            what: "signed by another key",
            reason: "bad_signature",
            setup: vec![],
            tx: sign(&a.q, P, 4, grant(D, T0 + 100)),
            timestamp: T0,
            fake_key: None,
        },
        Bad {
            what: "signed for another deployment",
            reason: "bad_signature",
            setup: vec![],
            tx: sign_for(&elsewhere(), &a.p, P, 4, grant(D, T0 + 100)),
            timestamp: T0,
            fake_key: None,
        },
        Bad {
            what: "replayed nonce",
            reason: "stale_nonce",
            setup: vec![],
            tx: sign(&a.p, P, 1, grant(D, T0 + 100)),
            timestamp: T0,
            fake_key: None,
        },
        Bad {
            what: "nonce from the future",
            reason: "future_nonce",
            setup: vec![],
            tx: sign(&a.p, P, 9, grant(D, T0 + 100)),
            timestamp: T0,
            fake_key: None,
        },
        Bad {
            what: "unregistered signer",
            reason: "unknown_account",
            setup: vec![],
            tx: sign(&stranger, 9, 0, grant(D, T0 + 100)),
            timestamp: T0,
            fake_key: Some(stranger.public_key()),
        },
        Bad {
            what: "a doctor granting",
            reason: "wrong_role",
            setup: vec![],
            tx: sign(&a.d, D, 2, grant(E, T0 + 100)),
            timestamp: T0,
            fake_key: None,
        },
        Bad {
            what: "a patient logging access",
            reason: "wrong_role",
            setup: vec![],
            tx: sign(&a.p, P, 4, log(1, 1)),
            timestamp: T0,
            fake_key: None,
        },
        Bad {
            what: "a patient registering others",
            reason: "wrong_role",
            setup: vec![],
            tx: sign(
                &a.p,
                P,
                4,
                TxBody::Register {
                    public_key: stranger.public_key(),
                    role: Role::Doctor,
                },
            ),
            timestamp: T0,
            fake_key: None,
        },
        Bad {
            what: "a self-registered doctor",
            reason: "bad_registration",
            setup: vec![],
            tx: sign(
                &stranger,
                0,
                0,
                TxBody::Register {
                    public_key: stranger.public_key(),
                    role: Role::Doctor,
                },
            ),
            timestamp: T0,
            fake_key: None,
        },
        Bad {
            what: "a registrar registering a patient",
            reason: "bad_registration",
            setup: vec![],
            tx: sign(
                &a.registrar,
                REGISTRAR,
                2,
                TxBody::Register {
                    public_key: stranger.public_key(),
                    role: Role::Patient,
                },
            ),
            timestamp: T0,
            fake_key: None,
        },
        Bad {
            what: "revoking another patient's grant",
            reason: "not_owner",
            setup: vec![],
            tx: sign(&a.q, Q, 3, TxBody::Revoke { grant: 1 }),
            timestamp: T0,
            fake_key: None,
        },
        Bad {
            what: "logging a missing record",
            reason: "unknown_record",
            setup: vec![],
            tx: sign(&a.d, D, 2, log(9, 1)),
            timestamp: T0,
            fake_key: None,
        },
        Bad {
            what: "logging under a missing grant",
            reason: "unknown_grant",
            setup: vec![],
            tx: sign(&a.d, D, 2, log(1, 9)),
            timestamp: T0,
            fake_key: None,
        },
        Bad {
            what: "reading outside the grant's scope",
            reason: "no_active_grant",
            setup: vec![],
            tx: sign(&a.e, E, 0, log(2, 2)),
            timestamp: T0,
            fake_key: None,
        },
        Bad {
            what: "reading under another doctor's grant",
            reason: "no_active_grant",
            setup: vec![],
            tx: sign(&a.e, E, 0, log(1, 1)),
            timestamp: T0,
            fake_key: None,
        },
        Bad {
            what: "reading under a revoked grant",
            reason: "no_active_grant",
            setup: vec![sign(&a.p, P, 4, TxBody::Revoke { grant: 1 })],
            tx: sign(&a.d, D, 2, log(1, 1)),
            timestamp: T0,
            fake_key: None,
        },
        Bad {
            what: "writing under a read-only grant",
            reason: "no_active_grant",
            setup: vec![sign(&a.p, P, 4, grant(E, T0 + 100))],
            tx: sign(
                &a.e,
                E,
                0,
                TxBody::AddRecord {
                    patient: P,
                    cid: Cid::from_str(CID_A).expect("cid"),
                    metadata_hash: Fr::from(3u64),
                    grant: Some(4),
                },
            ),
            timestamp: T0,
            fake_key: None,
        },
        Bad {
            what: "reading under an expired grant",
            reason: "grant_expired",
            setup: vec![],
            tx: sign(&a.e, E, 0, log(1, 2)),
            timestamp: T0 + 10,
            fake_key: None,
        },
        Bad {
            what: "revoking twice",
            reason: "already_revoked",
            setup: vec![],
            tx: sign(&a.q, Q, 3, TxBody::Revoke { grant: 3 }),
            timestamp: T0,
            fake_key: None,
        },
        Bad {
            what: "granting to oneself",
            reason: "bad_grant",
            setup: vec![],
            tx: sign(&a.p, P, 4, grant(P, T0 + 100)),
            timestamp: T0,
            fake_key: None,
        },
        Bad {
            what: "a grant that already expired",
            reason: "bad_grant",
            setup: vec![],
            tx: sign(&a.p, P, 4, grant(D, T0)),
            timestamp: T0,
            fake_key: None,
        },
    ];
    let mut reasons = BTreeSet::new();
    for case in cases {
        let mut batch = state.begin(case.timestamp, &here()).expect("begin");
        apply_all(&mut batch, &case.setup);
        let before = batch.roots();
        match batch.apply(&case.tx) {
            Err(ApplyError::Rejected(e)) => {
                assert_eq!(
                    e.reason(),
                    case.reason,
                    "{}: refused for another reason: {e}",
                    case.what
                )
            }
            Err(e) => panic!("{}: storage error {e}", case.what),
            Ok(_) => panic!("{}: accepted", case.what),
        }
        assert_eq!(
            batch.roots(),
            before,
            "{}: a refused transaction changed the state",
            case.what
        );
        let forced = batch
            .apply_unchecked_for_tests(&case.tx, case.fake_key)
            .unwrap_or_else(|e| panic!("{}: {e}", case.what))
            .clone();
        assert!(
            !satisfied(params, single_slot(case.timestamp, before, &forced)),
            "{}: the circuit accepted a witness the native transition refuses",
            case.what
        );
        reasons.insert(case.reason);
        batch.rollback().expect("rollback");
    }
    assert_eq!(
        reasons.len(),
        13,
        "every circuit-enforced reason is covered: {reasons:?}"
    );
}

#[test]
fn a_signature_for_another_deployment_is_refused_natively_and_by_the_circuit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = actors(8);
    let state = fresh_state(dir.path(), &a);
    let (ours, theirs) = (here(), elsewhere());
    // Patient P registers on the other deployment: a valid transaction, there.
    let reg = TxBody::Register {
        public_key: a.p.public_key(),
        role: Role::Patient,
    };
    let signed_there = sign_for(&theirs, &a.p, 0, 0, reg.clone());

    // Natively: refused here, with a reason that names this deployment.
    for refusal in [
        state
            .verify_signature(&signed_there, &ours)
            .expect_err("refused before sequencing"),
        state
            .begin(T0, &ours)
            .expect("begin")
            .apply(&signed_there)
            .map(|x| x.kind)
            .expect_err("refused by the sequencer"),
    ] {
        let ApplyError::Rejected(e) = refusal else {
            panic!("not a rejection: {refusal}")
        };
        assert_eq!(e.reason(), "bad_signature");
        let msg = e.to_string();
        for needle in [
            "not valid for this deployment",
            "chain 31337",
            &ours.contract_hex(),
            &format!("deployment id {}", ours.id),
        ] {
            assert!(msg.contains(needle), "`{msg}` lacks `{needle}`");
        }
    }
    // The same transaction signed for this deployment is accepted, and so is the foreign
    // one by a state running for its deployment.
    assert!(
        state
            .verify_signature(&sign_for(&ours, &a.p, 0, 0, reg), &ours)
            .is_ok()
    );
    assert!(state.verify_signature(&signed_there, &theirs).is_ok());

    // By the circuit: the slot of a transaction signed for the other deployment satisfies
    // the circuit only when public input 3 is that deployment's id.
    let params = CircuitParams::new(1, DEPTH);
    let mut batch = state.begin(T0, &theirs).expect("begin");
    let before = batch.roots();
    let applied = batch.apply(&signed_there).expect("valid there").clone();
    let witness_there = ChunkWitness {
        deployment: theirs.id,
        ..single_slot(T0, before, &applied)
    };
    assert!(satisfied(params, witness_there.clone()));
    assert_eq!(witness_there.public_inputs()[3], theirs.id.0);
    let witness_here = ChunkWitness {
        deployment: ours.id,
        ..witness_there
    };
    assert_eq!(witness_here.public_inputs()[3], ours.id.0);
    assert!(
        !satisfied(params, witness_here),
        "a signature for deployment A satisfied the circuit with deployment B's id"
    );
    batch.rollback().expect("rollback");
}

#[test]
fn valid_witnesses_satisfy_a_single_slot_circuit() {
    // The other side of the refusal test: the same circuit accepts honest witnesses, so an
    // unsatisfied system above is the rule at work, not a broken circuit.
    let dir = tempfile::tempdir().expect("tempdir");
    let a = actors(3);
    let state = fresh_state(dir.path(), &a);
    let mut batch = state.begin(T0, &here()).expect("begin");
    let mut before = batch.roots();
    let params = CircuitParams::new(1, DEPTH);
    for tx in scenario(&a) {
        let applied = batch.apply(&tx).expect("valid").clone();
        assert!(
            satisfied(params, single_slot(T0, before, &applied)),
            "{:?}",
            applied.kind
        );
        before = applied.roots_after;
    }
    // Unchecked application of a valid transaction equals checked application.
    let tx = sign(
        &a.d,
        D,
        2,
        TxBody::AccessLog {
            record: 2,
            grant: 1,
            purpose: Fr::from(5u64),
        },
    );
    let forced = batch
        .apply_unchecked_for_tests(&tx, None)
        .expect("apply")
        .clone();
    assert!(satisfied(params, single_slot(T0, before, &forced)));
    assert_eq!(forced.kind, TxKind::AccessLog);
    // A padding slot must be all zeros: a payload smuggled into it is refused.
    let roots = forced.roots_after;
    let mut pad = pulse_circuits::circuit::SlotWitness::noop(DEPTH);
    let blank = ChunkWitness {
        timestamp: T0,
        deployment: here().id,
        roots_before: roots,
        roots_after: roots,
        slots: vec![pad.clone()],
    };
    assert!(satisfied(params, blank.clone()));
    pad.tx.payload[2] = Fr::from(5u64);
    assert!(!satisfied(
        params,
        ChunkWitness {
            slots: vec![pad],
            ..blank
        }
    ));
}

#[test]
fn policy_rules_are_refused_natively() {
    // Rules the sequencer enforces that the circuit does not need to: they protect users
    // from mistakes but a violation could not harm anyone's records.
    let dir = tempfile::tempdir().expect("tempdir");
    let a = actors(4);
    let state = fresh_state(dir.path(), &a);
    let mut batch = state.begin(T0, &here()).expect("begin");
    apply_all(&mut batch, &scenario(&a));
    let reg = |k: &PrivateKey| TxBody::Register {
        public_key: k.public_key(),
        role: Role::Patient,
    };
    let expect = |batch: &mut Batch<'_>, tx: SignedTransaction, reason: &str| match batch.apply(&tx)
    {
        Err(ApplyError::Rejected(e)) => assert_eq!(e.reason(), reason, "{e}"),
        other => panic!("expected {reason}, got {:?}", other.map(|x| x.kind)),
    };
    expect(&mut batch, sign(&a.p, 0, 0, reg(&a.p)), "account_exists");
    expect(
        &mut batch,
        sign(
            &a.p,
            P,
            4,
            TxBody::Grant {
                grantee: 99,
                scope: Scope::All,
                permissions: read_only(),
                expires_at: T0 + 5,
            },
        ),
        "unknown_account",
    );
    expect(
        &mut batch,
        sign(
            &a.q,
            Q,
            3,
            TxBody::Grant {
                grantee: D,
                scope: Scope::Record(1),
                permissions: read_only(),
                expires_at: T0 + 5,
            },
        ),
        "not_owner",
    );
    // A key outside the prime-order subgroup: a point of order 2 is (0, -1).
    let low = pulse_circuits::babyjubjub::Point {
        x: Fr::from(0u64),
        y: -Fr::from(1u64),
    };
    expect(
        &mut batch,
        sign(
            &a.registrar,
            REGISTRAR,
            2,
            TxBody::Register {
                public_key: PublicKey(low),
                role: Role::Doctor,
            },
        ),
        "invalid_public_key",
    );
    // Fill the accounts tree (16 leaves, 6 used, id 0 reserved).
    let mut rng = ChaCha20Rng::seed_from_u64(77);
    for _ in 0..10 {
        let k = PrivateKey::random(&mut rng);
        batch.apply(&sign(&k, 0, 0, reg(&k))).expect("room left");
    }
    let k = PrivateKey::random(&mut rng);
    expect(&mut batch, sign(&k, 0, 0, reg(&k)), "tree_full");
}

#[test]
fn light_client_proofs_verify_and_tampered_ones_fail() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = actors(5);
    let state = fresh_state(dir.path(), &a);
    let mut batch = state.begin(T0, &here()).expect("begin");
    apply_all(&mut batch, &scenario(&a));
    let roots = batch.commit().expect("commit");
    let record = state.record(2).expect("read").expect("record 2");
    let (leaf, proof, r) = state.proof(TreeKind::Records, 2).expect("proof");
    assert_eq!(r, roots);
    assert_eq!(leaf, record.leaf.hash());
    assert!(proof.verify(DEPTH, r.records, leaf));
    assert_eq!(r.state_root(), roots.state_root());
    let mut bad = proof.clone();
    bad.siblings[1] += Fr::from(1u64);
    assert!(!bad.verify(DEPTH, r.records, leaf));
    assert!(!proof.verify(DEPTH, r.records, leaf + Fr::from(1u64)));
    assert!(!proof.verify(DEPTH, r.accounts, leaf));
    let mut moved = proof.clone();
    moved.index = 3;
    assert!(!moved.verify(DEPTH, r.records, leaf));
}

#[test]
fn a_refused_batch_rolls_back_entirely() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = actors(6);
    let state = fresh_state(dir.path(), &a);
    let genesis = state.roots().expect("roots");
    let mut batch = state.begin(T0, &here()).expect("begin");
    apply_all(&mut batch, &scenario(&a));
    assert_ne!(batch.roots(), genesis);
    batch.rollback().expect("rollback");
    assert_eq!(state.roots().expect("roots"), genesis);
    assert!(state.account(P).expect("read").is_none());
}

const CHILD_ENV: &str = "PULSE_TEST_STATE_CHILD_DIR";

#[test]
fn the_store_survives_the_process_exiting() {
    // Run this same test binary as a child process that writes a batch and exits; then
    // reopen its store here.
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        let a = actors(7);
        let state = fresh_state(std::path::Path::new(&dir), &a);
        let mut batch = state.begin(T0, &here()).expect("begin");
        apply_all(&mut batch, &scenario(&a));
        let roots = batch.commit().expect("commit");
        std::fs::write(
            std::path::Path::new(&dir).join("root.txt"),
            pulse_circuits::tx::fr_to_decimal(&roots.state_root()),
        )
        .expect("write root");
        std::process::exit(0);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let status = std::process::Command::new(std::env::current_exe().expect("exe"))
        .args([
            "--exact",
            "the_store_survives_the_process_exiting",
            "--nocapture",
        ])
        .env(CHILD_ENV, dir.path())
        .status()
        .expect("spawn child");
    assert!(status.success());
    let written = std::fs::read_to_string(dir.path().join("root.txt")).expect("child's root");
    let state = State::open(&dir.path().join("state.redb"), DEPTH).expect("reopen");
    let root = state.roots().expect("roots").state_root();
    assert_eq!(pulse_circuits::tx::fr_to_decimal(&root), written);
    assert_ne!(
        root,
        Roots {
            accounts: Fr::from(0u64),
            records: Fr::from(0u64),
            grants: Fr::from(0u64)
        }
        .state_root()
    );
    // The state goes on from where the child left it: P's next nonce is 4.
    assert_eq!(state.account(P).expect("read").map(|x| x.nonce), Some(4));
    // Reopening with another depth is refused with a message naming both depths.
    drop(state);
    let err = State::open(&dir.path().join("state.redb"), DEPTH + 1)
        .err()
        .expect("refused");
    assert!(err.to_string().contains("depth 4"), "{err}");
}

#[test]
fn witnesses_survive_their_wire_form_and_bad_shapes_are_named() {
    use pulse_circuits::circuit::WitnessShapeError;

    let dir = tempfile::tempdir().expect("tempdir");
    let a = actors(3);
    let state = fresh_state(dir.path(), &a);
    let before = state.roots().expect("roots");
    let mut batch = state.begin(T0, &here()).expect("begin");
    apply_all(&mut batch, &scenario(&a));
    let params = CircuitParams::new(4, DEPTH);
    let chunks = batch.chunks(before, params.slots);
    for chunk in &chunks {
        chunk
            .check_shape(params)
            .expect("a sequenced chunk has the circuit's shape");
        let text = serde_json::to_string(chunk).expect("serialize");
        let back: ChunkWitness = serde_json::from_str(&text).expect("deserialize");
        assert_eq!(&back, chunk);
        assert_eq!(back.public_inputs(), chunk.public_inputs());
    }

    let mut short = chunks[0].clone();
    short.slots.pop();
    assert_eq!(
        short.check_shape(params),
        Err(WitnessShapeError::Slots {
            expected: 4,
            found: 3
        })
    );
    let mut bad_path = chunks[0].clone();
    bad_path.slots[1].b_path.push(Fr::from(0u64));
    assert!(matches!(
        bad_path.check_shape(params),
        Err(WitnessShapeError::Path {
            slot: 1,
            path: "b",
            ..
        })
    ));
    let mut far = chunks[0].clone();
    far.slots[2].c_index = 1 << DEPTH;
    assert!(matches!(
        far.check_shape(params),
        Err(WitnessShapeError::Index { slot: 2, .. })
    ));

    // A non-canonical field element or an unknown field is refused on the wire.
    let text = serde_json::to_string(&chunks[0]).expect("serialize");
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    let mut extra = v.clone();
    extra["slots"][0]["surprise"] = serde_json::json!(1);
    assert!(serde_json::from_value::<ChunkWitness>(extra).is_err());
    let mut big = v;
    big["slots"][0]["s"] = serde_json::json!(
        "21888242871839275222246405745257275088548364400416034343698204186575808495617"
    );
    let err = serde_json::from_value::<ChunkWitness>(big).expect_err("r is not canonical");
    assert!(!err.to_string().is_empty());
}

#[test]
fn the_mixed_sample_chunk_fills_every_slot_with_every_kind_and_satisfies_the_circuit() {
    let params = CircuitParams::new(6, 6);
    let dir = tempfile::tempdir().expect("tempdir");
    let witness = pulse_circuits::sample::mixed_chunk(
        dir.path(),
        params,
        9,
        &pulse_circuits::sample::offline_deployment(),
    )
    .expect("mixed chunk");
    let kinds: BTreeSet<String> = witness
        .slots
        .iter()
        .map(|s| format!("{:?}", s.tx.kind))
        .collect();
    assert_eq!(witness.slots.len(), 6);
    assert_eq!(
        kinds,
        ["AccessLog", "AddRecord", "Grant", "Register", "Revoke"]
            .map(String::from)
            .into(),
        "every slot real, every kind present"
    );
    assert_ne!(witness.roots_before, witness.roots_after);
    assert!(satisfied(params, witness));
}
