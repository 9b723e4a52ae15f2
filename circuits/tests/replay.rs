//! Replaying published slot data ([`Batch::replay`]) rebuilds the state the native rules
//! built: the same roots after every transaction, the same leaves, the records' CIDs; and
//! data that does not follow from the state is refused.

use pulse_circuits::Fr;
use pulse_circuits::deployment::Deployment;
use pulse_circuits::eddsa::PrivateKey;
use pulse_circuits::sample::offline_deployment;
use pulse_circuits::state::{Applied, PublicSlot, ReplayError, State};
use pulse_circuits::tx::{Permissions, Role, Scope, Transaction, TxBody, TxKind};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

const DEPTH: usize = 6;
const NOW: u64 = 1_800_000_000;
const CIDS: [&str; 2] = [
    "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy",
    "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG",
];

struct Users {
    registrar: PrivateKey,
    doctor: PrivateKey,
    patient: PrivateKey,
}

fn sign(
    d: &Deployment,
    key: &PrivateKey,
    signer: u64,
    nonce: u64,
    body: TxBody,
) -> pulse_circuits::tx::SignedTransaction {
    Transaction {
        signer,
        nonce,
        body,
    }
    .sign(key, d.id)
    .expect("sign")
}

/// Every kind of transaction, applied by the native rules to a fresh state.
fn history(state: &State, d: &Deployment, u: &Users) -> Vec<(Applied, Option<String>)> {
    let mut batch = state.begin(NOW, d).expect("begin");
    let txs = vec![
        (
            sign(
                d,
                &u.registrar,
                1,
                0,
                TxBody::Register {
                    public_key: u.doctor.public_key(),
                    role: Role::Doctor,
                },
            ),
            None,
        ),
        (
            sign(
                d,
                &u.patient,
                0,
                0,
                TxBody::Register {
                    public_key: u.patient.public_key(),
                    role: Role::Patient,
                },
            ),
            None,
        ),
        (
            sign(
                d,
                &u.patient,
                3,
                1,
                TxBody::AddRecord {
                    patient: 3,
                    cid: CIDS[0].parse().expect("cid"),
                    metadata_hash: Fr::from(7u64),
                    grant: None,
                },
            ),
            Some(CIDS[0]),
        ),
        (
            sign(
                d,
                &u.patient,
                3,
                2,
                TxBody::Grant {
                    grantee: 2,
                    scope: Scope::All,
                    permissions: Permissions {
                        read: true,
                        write: true,
                    },
                    expires_at: NOW + 3600,
                },
            ),
            None,
        ),
        (
            sign(
                d,
                &u.doctor,
                2,
                0,
                TxBody::AddRecord {
                    patient: 3,
                    cid: CIDS[1].parse().expect("cid"),
                    metadata_hash: Fr::from(8u64),
                    grant: Some(1),
                },
            ),
            Some(CIDS[1]),
        ),
        (
            sign(
                d,
                &u.doctor,
                2,
                1,
                TxBody::AccessLog {
                    record: 1,
                    grant: 1,
                    purpose: Fr::from(99u64),
                },
            ),
            None,
        ),
        (sign(d, &u.patient, 3, 3, TxBody::Revoke { grant: 1 }), None),
    ];
    let mut out = Vec::new();
    for (stx, cid) in txs {
        let a = batch.apply(&stx).expect("a valid transaction").clone();
        out.push((a, cid.map(str::to_owned)));
    }
    batch.commit().expect("commit");
    out
}

fn public(a: &Applied, cid: Option<String>) -> PublicSlot {
    PublicSlot {
        kind: a.slot.tx.kind,
        actor: a.slot.a_index,
        object: a.slot.b_index,
        payload: a.slot.tx.payload,
        cid,
    }
}

fn users() -> Users {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    Users {
        registrar: PrivateKey::random(&mut rng),
        doctor: PrivateKey::random(&mut rng),
        patient: PrivateKey::random(&mut rng),
    }
}

/// A fresh state holding only the genesis registrar.
fn genesis(u: &Users) -> State {
    let s = State::in_memory(DEPTH).expect("state");
    s.init_genesis(&[u.registrar.public_key()])
        .expect("genesis");
    s
}

#[test]
fn replaying_the_public_data_rebuilds_the_same_state() {
    let d = offline_deployment();
    let u = users();
    let native = genesis(&u);
    let applied = history(&native, &d, &u);
    let kinds: Vec<TxKind> = applied.iter().map(|(a, _)| a.kind).collect();
    for k in TxKind::SIGNED {
        assert!(kinds.contains(&k), "the history has a {}", k.name());
    }

    let rebuilt = genesis(&u);
    let mut batch = rebuilt.begin(NOW, &d).expect("begin");
    for (a, cid) in &applied {
        let roots = batch.replay(&public(a, cid.clone())).expect("replays");
        assert_eq!(roots, a.roots_after, "after a {}", a.kind.name());
    }
    // A padding slot changes nothing.
    let before = batch.roots();
    let noop = PublicSlot {
        kind: TxKind::Noop,
        actor: 0,
        object: 0,
        payload: [Fr::from(0u64); 4],
        cid: None,
    };
    assert_eq!(batch.replay(&noop).expect("noop"), before);
    batch.commit().expect("commit");

    assert_eq!(
        rebuilt.roots().expect("roots"),
        native.roots().expect("roots")
    );
    for id in 1..=3 {
        assert_eq!(
            rebuilt.account(id).expect("read"),
            native.account(id).expect("read")
        );
    }
    for id in 1..=2 {
        let r = rebuilt.record(id).expect("read").expect("record");
        assert_eq!(Some(&r), native.record(id).expect("read").as_ref());
        assert_eq!(r.cid, CIDS[id as usize - 1]);
    }
    assert_eq!(
        rebuilt.grant(1).expect("read"),
        native.grant(1).expect("read")
    );
    assert_eq!(
        rebuilt
            .account_by_key(&u.patient.public_key())
            .expect("read"),
        Some(3),
        "the key index is rebuilt too"
    );
}

#[test]
fn data_that_does_not_follow_from_the_state_is_refused() {
    let d = offline_deployment();
    let u = users();
    let native = genesis(&u);
    let applied = history(&native, &d, &u);
    let inconsistent = |state: &State, slot: PublicSlot, needle: &str| {
        let mut batch = state.begin(NOW, &d).expect("begin");
        match batch.replay(&slot) {
            Err(ReplayError::Inconsistent(why)) => assert!(why.contains(needle), "{why}"),
            other => panic!("expected an inconsistency ({needle}), got {other:?}"),
        }
    };
    let s = genesis(&u);
    // The doctor's registration at an id that is not the next one.
    let mut slot = public(&applied[0].0, None);
    slot.object = 5;
    inconsistent(&s, slot, "next one is 2");
    // An id past the trees.
    let mut slot = public(&applied[5].0, None);
    slot.actor = 1 << DEPTH;
    inconsistent(&s, slot, "past the trees");
    // A record added by an account that does not exist yet.
    inconsistent(
        &s,
        public(&applied[2].0, Some(CIDS[0].into())),
        "does not exist",
    );
    // A CID whose digest is not the payload's.
    let mut batch = s.begin(NOW, &d).expect("begin");
    for (a, cid) in &applied[..2] {
        batch.replay(&public(a, cid.clone())).expect("replays");
    }
    match batch.replay(&public(&applied[2].0, Some(CIDS[1].into()))) {
        Err(ReplayError::Inconsistent(why)) => assert!(why.contains("digest"), "{why}"),
        other => panic!("expected a digest mismatch, got {other:?}"),
    }
    // A padding slot with content.
    let mut noop = public(&applied[0].0, None);
    noop.kind = TxKind::Noop;
    match batch.replay(&noop) {
        Err(ReplayError::Inconsistent(why)) => assert!(why.contains("padding"), "{why}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    // An altered payload replays, but to other roots than the native ones.
    let mut altered = public(&applied[2].0, None);
    altered.payload[2] = Fr::from(1234u64);
    let roots = batch.replay(&altered).expect("replays");
    assert_ne!(roots, applied[2].0.roots_after);
}
