//! Pulse's Groth16 proofs against ark-groth16: they verify, they equal ark-groth16's own
//! proof for the same randomisers, sharded MSMs assemble the same proof, and tampering is
//! caught.

use std::sync::Arc;

use ark_bn254::{Bn254, Fr};
use ark_ec::{AffineRepr, CurveGroup};
use ark_ff::{Field, One, UniformRand};
use ark_groth16::{Groth16, Proof, ProvingKey, prepare_verifying_key};
use ark_relations::gr1cs::{
    ConstraintSynthesizer, ConstraintSystemRef, LinearCombination, R1CS_PREDICATE_LABEL,
    SynthesisError, Variable,
};
use pulse_circuits::artifacts::{self, CircuitParams};
use pulse_circuits::circuit::ChunkCircuit;
use pulse_circuits::r1cs::R1cs;
use pulse_prover::{CpuBackend, MsmSums, ProveError, Prover, Query};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

/// `out = x^(rounds+1) + 3x - bit` with `bit` boolean: a chain of multiplications, a
/// boolean check and linear terms with negative coefficients.
#[derive(Clone)]
struct Toy {
    x: Option<Fr>,
    bit: Option<bool>,
    rounds: usize,
    /// Claim a wrong output (an unsatisfiable witness).
    lie: bool,
}

impl Toy {
    fn new(x: u64, bit: bool, rounds: usize) -> Self {
        Self {
            x: Some(Fr::from(x)),
            bit: Some(bit),
            rounds,
            lie: false,
        }
    }

    fn output(&self) -> Fr {
        let x = self.x.unwrap_or_default();
        let bit = Fr::from(u64::from(self.bit.unwrap_or_default()));
        x.pow([self.rounds as u64 + 1]) + x * Fr::from(3u64) - bit
    }
}

fn lc(terms: &[(Fr, Variable)]) -> LinearCombination<Fr> {
    LinearCombination::from_sum_coeff_vars(terms)
}

impl ConstraintSynthesizer<Fr> for Toy {
    fn generate_constraints(self, cs: ConstraintSystemRef<Fr>) -> Result<(), SynthesisError> {
        let one = Fr::one();
        let claimed = self.output() + if self.lie { one } else { Fr::from(0u64) };
        let out = cs.new_input_variable(|| Ok(claimed))?;
        let x = cs.new_witness_variable(|| self.x.ok_or(SynthesisError::AssignmentMissing))?;
        let bit = cs.new_witness_variable(|| {
            self.bit
                .map(|b| Fr::from(u64::from(b)))
                .ok_or(SynthesisError::AssignmentMissing)
        })?;
        cs.enforce_constraint_arity_3(
            R1CS_PREDICATE_LABEL,
            || lc(&[(one, bit)]),
            || lc(&[(one, bit)]),
            || lc(&[(one, bit)]),
        )?;
        let xv = self.x.unwrap_or_default();
        let mut power = x;
        let mut pv = xv;
        for _ in 0..self.rounds {
            pv *= xv;
            let next = cs.new_witness_variable(|| Ok(pv))?;
            cs.enforce_constraint_arity_3(
                R1CS_PREDICATE_LABEL,
                || lc(&[(one, power)]),
                || lc(&[(one, x)]),
                || lc(&[(one, next)]),
            )?;
            power = next;
        }
        // (power + 3x - bit) · 1 = out
        cs.enforce_constraint_arity_3(
            R1CS_PREDICATE_LABEL,
            || lc(&[(one, power), (Fr::from(3u64), x), (-one, bit)]),
            || lc(&[(one, Variable::One)]),
            || lc(&[(one, out)]),
        )?;
        Ok(())
    }
}

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

fn toy_key(rounds: usize, r: &mut ChaCha20Rng) -> ProvingKey<Bn254> {
    Groth16::<Bn254>::generate_random_parameters_with_reduction(Toy::new(0, false, rounds), r)
        .expect("setup")
}

fn verifies(prover: &Prover<CpuBackend>, proof: &Proof<Bn254>, inputs: &[Fr]) -> bool {
    let pvk = prepare_verifying_key(prover.vk());
    Groth16::<Bn254>::verify_proof(&pvk, proof, inputs).expect("verifier runs")
}

fn tampered(proof: &Proof<Bn254>) -> Vec<Proof<Bn254>> {
    let g = ark_bn254::G1Affine::generator();
    let mut a = proof.clone();
    a.a = (a.a + g).into_affine();
    let mut c = proof.clone();
    c.c = (c.c + g).into_affine();
    let mut b = proof.clone();
    b.b = (b.b + ark_bn254::G2Affine::generator()).into_affine();
    vec![a, b, c]
}

#[test]
fn toy_proof_verifies_and_tampering_fails() {
    let mut r = rng(20);
    for rounds in [1usize, 5, 40] {
        let pk = toy_key(rounds, &mut r);
        let prover = Prover::new(CpuBackend::new(), pk).expect("prover");
        let circuit = Toy::new(7, true, rounds);
        let out = circuit.output();
        let proof = prover.prove(circuit, &mut r).expect("prove");
        assert!(verifies(&prover, &proof, &[out]), "rounds {rounds}");
        assert!(
            !verifies(&prover, &proof, &[out + Fr::one()]),
            "wrong input"
        );
        for bad in tampered(&proof) {
            assert!(!verifies(&prover, &bad, &[out]), "tampered proof");
        }
    }
}

#[test]
fn proof_equals_ark_groth16_for_the_same_randomness() {
    let mut r = rng(21);
    let pk = toy_key(9, &mut r);
    let (rr, ss) = (Fr::rand(&mut r), Fr::rand(&mut r));
    let circuit = Toy::new(123_456_789, false, 9);
    let ark = Groth16::<Bn254>::create_proof_with_reduction(circuit.clone(), &pk, rr, ss)
        .expect("ark proof");
    let prover = Prover::new(CpuBackend::new(), pk).expect("prover");
    let (ours, timings) = prover
        .prove_with_randomness(circuit, rr, ss)
        .expect("prove");
    assert_eq!(ours, ark);
    assert!(timings.total >= timings.msm_total);
}

#[test]
fn proof_from_three_shards_per_msm_verifies() {
    let mut r = rng(22);
    let pk = toy_key(30, &mut r);
    let prover = Prover::new(CpuBackend::new(), pk).expect("prover");
    let circuit = Toy::new(5, true, 30);
    let out = circuit.output();
    let witness = prover.witness(circuit.clone()).expect("witness");
    assert_eq!(witness.public_inputs(), &[out]);
    let mut sums = MsmSums::default();
    for q in Query::ALL {
        let n = prover.query_len(q);
        for range in [0..n / 3, n / 3..2 * n / 3, 2 * n / 3..n] {
            sums += &prover.msm_part(&witness, q, range).expect("part");
        }
    }
    let (rr, ss) = (Fr::rand(&mut r), Fr::rand(&mut r));
    let sharded = prover.prove_from_shards(&sums, rr, ss);
    assert!(verifies(&prover, &sharded, &[out]));
    let (whole, _) = prover
        .prove_with_randomness(circuit, rr, ss)
        .expect("prove");
    assert_eq!(sharded, whole);
    // A missing shard gives a proof that fails.
    let mut partial = MsmSums::default();
    for q in Query::ALL {
        let n = prover.query_len(q);
        partial += &prover.msm_part(&witness, q, 0..n - n / 3).expect("part");
    }
    assert!(!verifies(
        &prover,
        &prover.prove_from_shards(&partial, rr, ss),
        &[out]
    ));
    assert!(
        prover
            .msm_part(&witness, Query::H, 0..prover.query_len(Query::H) + 1)
            .is_err()
    );
}

#[test]
fn unsatisfied_witness_is_an_error() {
    let mut r = rng(23);
    let prover = Prover::new(CpuBackend::new(), toy_key(4, &mut r)).expect("prover");
    let mut circuit = Toy::new(3, false, 4);
    circuit.lie = true;
    assert!(matches!(
        prover.prove(circuit, &mut r),
        Err(ProveError::Unsatisfied { .. })
    ));
    let missing = Toy {
        x: None,
        bit: Some(true),
        rounds: 4,
        lie: false,
    };
    assert!(matches!(
        prover.prove(missing, &mut r),
        Err(ProveError::Synthesis(_))
    ));
}

#[test]
fn key_for_another_circuit_is_an_error() {
    let mut r = rng(24);
    let prover = Prover::new(CpuBackend::new(), toy_key(4, &mut r)).expect("prover");
    let err = prover
        .prove(Toy::new(3, false, 9), &mut r)
        .expect_err("wrong key");
    assert!(matches!(err, ProveError::KeyMismatch { .. }), "{err}");
    let mut pk = toy_key(4, &mut r);
    pk.b_g1_query.pop();
    assert!(matches!(
        Prover::new(CpuBackend::new(), pk),
        Err(ProveError::KeyMismatch { .. })
    ));
}

#[test]
fn chunk_circuit_proof_verifies() {
    let mut r = rng(25);
    let params = CircuitParams::new(1, 4);
    let keys = artifacts::setup(ChunkCircuit::blank(params), params, &mut r).expect("setup");
    let circuit = ChunkCircuit::blank(params);
    let inputs = circuit.witness.public_inputs();
    let prover = Prover::new(CpuBackend::new(), keys.pk).expect("prover");
    let (rr, ss) = (Fr::rand(&mut r), Fr::rand(&mut r));
    let (proof, _) = prover
        .prove_with_randomness(circuit.clone(), rr, ss)
        .expect("prove");
    assert!(verifies(&prover, &proof, &inputs));
    let mut wrong = inputs.clone();
    wrong[1] += Fr::one();
    assert!(!verifies(&prover, &proof, &wrong));
    for bad in tampered(&proof) {
        assert!(!verifies(&prover, &bad, &inputs));
    }
}

#[test]
fn later_proofs_reuse_the_first_proofs_matrices() {
    let mut r = rng(26);
    let rounds = 6;
    let pk = toy_key(rounds, &mut r);
    let prover = Prover::new(CpuBackend::new(), pk.clone()).expect("prover");
    // A failed first attempt keeps nothing; the first proof that verifies keeps the
    // matrices; later proofs (other witnesses) only compute the assignment.
    let mut liar = Toy::new(5, true, rounds);
    liar.lie = true;
    assert!(matches!(
        prover.prove(liar.clone(), &mut r),
        Err(ProveError::Unsatisfied { .. })
    ));
    for (x, bit) in [(3u64, false), (11, true), (0, false), (u64::MAX, true)] {
        let circuit = Toy::new(x, bit, rounds);
        let out = circuit.output();
        let (rr, ss) = (Fr::rand(&mut r), Fr::rand(&mut r));
        let (proof, _) = prover
            .prove_with_randomness(circuit.clone(), rr, ss)
            .expect("prove");
        assert!(verifies(&prover, &proof, &[out]), "x = {x}");
        for bad in tampered(&proof) {
            assert!(!verifies(&prover, &bad, &[out]), "tampered, x = {x}");
        }
        let expect = Groth16::<Bn254>::create_proof_with_reduction(circuit, &pk, rr, ss)
            .expect("ark-groth16 proves");
        assert_eq!(proof, expect, "x = {x}");
    }
    // With the matrices kept, a false claim and a circuit of another size are still caught.
    assert!(matches!(
        prover.prove(liar, &mut r),
        Err(ProveError::Unsatisfied { .. })
    ));
    assert!(matches!(
        prover.prove(Toy::new(3, false, rounds + 1), &mut r),
        Err(ProveError::KeyMismatch { .. })
    ));
}

#[test]
fn a_prover_given_the_matrices_proves_as_ark_groth16_from_its_first_proof() {
    let mut r = rng(27);
    let rounds = 7;
    let pk = toy_key(rounds, &mut r);
    let r1cs = Arc::new(R1cs::of_circuit(Toy::new(0, false, rounds)).expect("matrices"));
    let prover =
        Prover::with_constraints(CpuBackend::new(), pk.clone(), r1cs.clone()).expect("prover");
    assert!(Arc::ptr_eq(prover.constraints().expect("kept"), &r1cs));
    for (x, bit) in [(9u64, true), (2, false)] {
        let circuit = Toy::new(x, bit, rounds);
        let (rr, ss) = (Fr::rand(&mut r), Fr::rand(&mut r));
        let (proof, _) = prover
            .prove_with_randomness(circuit.clone(), rr, ss)
            .expect("prove");
        let expect = Groth16::<Bn254>::create_proof_with_reduction(circuit, &pk, rr, ss)
            .expect("ark-groth16 proves");
        assert_eq!(proof, expect, "x = {x}");
    }
    let mut liar = Toy::new(5, true, rounds);
    liar.lie = true;
    assert!(matches!(
        prover.prove(liar, &mut r),
        Err(ProveError::Unsatisfied { .. })
    ));

    // Matrices of another circuit: refused when the sizes differ; unsatisfied otherwise.
    let other = Arc::new(R1cs::of_circuit(Toy::new(0, false, rounds + 1)).expect("matrices"));
    assert!(matches!(
        Prover::with_constraints(CpuBackend::new(), pk.clone(), other),
        Err(ProveError::KeyMismatch { .. })
    ));
    // Same sizes, other rows: `out · 1 = 0` in every row, which no true claim here meets.
    let m = r1cs.num_constraints();
    let same_size = R1cs::from_matrices(
        r1cs.num_instance(),
        r1cs.num_variables(),
        [
            vec![vec![(Fr::one(), 1)]; m],
            vec![vec![(Fr::one(), 0)]; m],
            vec![Vec::new(); m],
        ],
    )
    .expect("matrices");
    let prover =
        Prover::with_constraints(CpuBackend::new(), pk, Arc::new(same_size)).expect("prover");
    assert!(matches!(
        prover.prove(Toy::new(3, false, rounds), &mut r),
        Err(ProveError::Unsatisfied { .. })
    ));
}

#[test]
fn setup_writes_the_matrices_the_prover_builds() {
    let mut r = rng(28);
    let params = CircuitParams::new(1, 3);
    let keys = artifacts::setup(ChunkCircuit::blank(params), params, &mut r).expect("setup");
    let given = keys.constraints.clone().expect("setup takes the matrices");
    let prover = Prover::new(CpuBackend::new(), keys.pk).expect("prover");
    let circuit = ChunkCircuit::blank(params);
    prover.prove(circuit, &mut r).expect("prove");
    assert_eq!(**prover.constraints().expect("kept"), *given);
    assert_eq!(given.num_constraints(), keys.manifest.constraints);
}
