//! A whole chunk proof made with the GPU backend (OpenCL on PoCL in CI; see `common`): real signed transactions,
//! every MSM and the quotient on the device. It verifies with ark-groth16, equals
//! ark-groth16's own proof for the same randomisers, and a tampered proof or input fails.

use ark_bn254::{Bn254, Fr};
use ark_ec::{AdditiveGroup, AffineRepr, CurveGroup};
use ark_ff::{One, UniformRand};
use ark_groth16::{Groth16, Proof, prepare_verifying_key};
use pulse_circuits::artifacts::{self, CircuitParams};
use pulse_circuits::circuit::ChunkCircuit;
use pulse_circuits::sample;
use pulse_gpu::GpuBackend;
use pulse_prover::{BackendError, ProveError, Prover};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

mod common;

#[test]
fn chunk_proof_on_the_device_verifies_and_equals_ark_groth16() {
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let params = CircuitParams::new(2, 4);
    let keys = artifacts::setup(ChunkCircuit::blank(params), params, &mut rng).expect("setup");
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = sample::registration_chain(
        dir.path(),
        params,
        1,
        11,
        1_700_000_000,
        &sample::offline_deployment(),
    )
    .expect("sample chunk");
    let witness = chain.chunks[0].clone();
    let inputs = witness.public_inputs();
    let circuit = ChunkCircuit { params, witness };

    let prover = Prover::new(common::backend(), keys.pk.clone()).expect("bases uploaded");
    let (r, s) = (Fr::rand(&mut rng), Fr::rand(&mut rng));
    let (proof, timings) = prover
        .prove_with_randomness(circuit.clone(), r, s)
        .expect("OpenCL proof");
    eprintln!(
        "{} chunk proof (slots 2, depth 4): {timings:?}",
        common::api()
    );

    let pvk = prepare_verifying_key(&keys.pk.vk);
    let verifies = |p: &Proof<Bn254>, x: &[Fr]| {
        Groth16::<Bn254>::verify_proof(&pvk, p, x).expect("verifier runs")
    };
    assert!(verifies(&proof, &inputs), "the device's proof must verify");
    let ark = Groth16::<Bn254>::create_proof_with_reduction(circuit, &keys.pk, r, s)
        .expect("ark-groth16 proves");
    assert_eq!(proof, ark, "same randomisers, same proof as ark-groth16");

    let mut wrong = inputs.clone();
    wrong[0] += Fr::one();
    assert!(
        !verifies(&proof, &wrong),
        "a changed public input must fail"
    );
    let mut bad = proof.clone();
    bad.a = (bad.a + keys.pk.vk.alpha_g1).into_affine();
    assert!(!verifies(&bad, &inputs), "a tampered proof must fail");
    let mut bad = proof;
    bad.c = (bad.c.into_group().double()).into_affine();
    assert!(!verifies(&bad, &inputs), "a tampered proof must fail");
}

#[test]
fn a_key_too_large_for_the_memory_budget_is_a_typed_out_of_memory_error() {
    let mut rng = ChaCha20Rng::seed_from_u64(8);
    let params = CircuitParams::new(1, 4);
    let keys = artifacts::setup(ChunkCircuit::blank(params), params, &mut rng).expect("setup");
    let tiny = GpuBackend::on(common::device(), Some(64 * 1024));
    match Prover::new(tiny, keys.pk) {
        Err(ProveError::Backend(BackendError::OutOfMemory(msg))) => {
            assert!(
                msg.contains("fall"),
                "the message says what happens next: {msg}"
            );
        }
        Err(other) => panic!("expected OutOfMemory, got {other}"),
        Ok(_) => panic!("a 64 KiB budget cannot hold a proving key"),
    }
}
