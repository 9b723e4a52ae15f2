//! The native rules and the chunk circuit checked against each other on drawn transaction
//! sequences (`pulse_circuits::differential`; the fuzz target `differential` steers the same
//! draw by coverage), and the check shown to catch a circuit weaker than the rules.

use proptest::prelude::*;
use pulse_circuits::circuit::{Weakening, weaken_for_tests};
use pulse_circuits::differential::{self, Finding, Report};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut bytes = vec![0u8; len];
    rng.fill_bytes(&mut bytes);
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn drawn_sequences_agree_with_the_circuit(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let Err(f) = differential::run(&bytes) {
            panic!("{f}\ninput: {}", hex::encode(&bytes));
        }
    }
}

#[test]
fn sequences_reach_the_rules_behind_the_signature() {
    // Fixed inputs, so this covers the same ground on every run; proptest above and the
    // fuzz target explore further.
    let mut total = Report::default();
    for seed in 0..40 {
        let bytes = random_bytes(seed, 400);
        match differential::run(&bytes) {
            Ok(r) => total.add(&r),
            Err(f) => panic!("seed {seed}: {f}"),
        }
    }
    eprintln!("{total}");
    eprintln!("refused: {:?}", total.refused);
    assert!(total.accepted >= 40, "too few accepted: {total}");
    for reason in [
        "bad_signature",
        "stale_nonce",
        "future_nonce",
        "wrong_role",
        "no_active_grant",
        "unknown_grant",
        "bad_grant",
    ] {
        assert!(
            total.forced_refused.contains_key(reason),
            "no forced {reason} refused by the circuit in 40 sequences: {:?}",
            total.forced_refused
        );
    }
}

#[test]
fn a_circuit_without_the_grant_expiry_check_is_caught() {
    weaken_for_tests(Some(Weakening::GrantExpiry));
    let mut caught = None;
    for seed in 0..300 {
        match differential::run(&random_bytes(1000 + seed, 400)) {
            Err(Finding::RefusedSatisfied { reason, .. }) => {
                assert_eq!(reason, "grant_expired", "seed {seed}: another rule failed");
                caught = Some(seed);
                break;
            }
            Err(f) => panic!("seed {seed}: {f}"),
            Ok(_) => {}
        }
    }
    weaken_for_tests(None);
    let seed = caught.expect("300 sequences did not catch a circuit that ignores grant expiry");
    eprintln!("caught after {} sequences", seed + 1);
    // The same input passes against the real circuit.
    differential::run(&random_bytes(1000 + seed, 400)).expect("the real circuit agrees");
}

/// Found by the differential check (proptest, then the fuzz target): a cheating sequencer's
/// witness for an unknown signer at nonce 2^64 − 1 overflowed the nonce increment (a panic
/// in debug builds, a wrapped nonce in release). Now no witness is made and the refusal
/// names the reason.
#[test]
fn a_forced_transaction_at_the_last_nonce_is_refused_not_wrapped() {
    use pulse_circuits::deployment::{Deployment, DeploymentId};
    use pulse_circuits::eddsa::PrivateKey;
    use pulse_circuits::state::{ApplyError, State};
    use pulse_circuits::tx::{Transaction, TxBody};

    let state = State::in_memory(3).expect("state");
    let registrar = PrivateKey::from_bytes([1; 32]);
    state
        .init_genesis(&[registrar.public_key()])
        .expect("genesis");
    let here = Deployment::new(DeploymentId(pulse_circuits::Fr::from(7u64)), 31337, [1; 20]);
    let stranger = PrivateKey::from_bytes([9; 32]);
    let tx = Transaction {
        signer: 5,
        nonce: u64::MAX,
        body: TxBody::Revoke { grant: 1 },
    }
    .sign(&stranger, here.id)
    .expect("sign");
    let mut batch = state.begin(1_800_000_000, &here).expect("begin");
    match batch.apply(&tx) {
        Err(ApplyError::Rejected(e)) => assert_eq!(e.reason(), "unknown_account"),
        other => panic!("expected unknown_account, got {:?}", other.map(|a| a.kind)),
    }
    match batch.apply_unchecked_for_tests(&tx, Some(stranger.public_key())) {
        Err(ApplyError::Rejected(e)) => {
            assert_eq!(e.reason(), "nonces_exhausted", "{e}");
            assert!(e.to_string().contains("every nonce"), "{e}");
        }
        other => panic!("expected nonces_exhausted, got {:?}", other.map(|a| a.kind)),
    }
    batch.rollback().expect("rollback");
}
