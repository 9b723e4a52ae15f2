//! The Groth16 prover (J. Groth, "On the size of pairing-based non-interactive arguments",
//! EUROCRYPT 2016) over BN254, with every MSM and NTT run by a [`Backend`].
//!
//! Proving a circuit with full assignment `z` (`z₀ = 1`, then the public inputs, then the
//! witness) against a proving key made by `ark_groth16`'s setup:
//!
//! 1. **Synthesis**: the circuit in a `ConstraintSystem` in prove mode, optimised for
//!    constraints and finalised, exactly as `ark_groth16::Groth16::create_random_proof` does,
//!    so the constraint matrices match the ones the key was made from. The matrices depend
//!    only on the circuit's shape, which the proving key fixes, so the prover keeps those
//!    of its first proof that verifies and afterwards only computes the assignment (the
//!    constraint system without matrices: no linear-combination map, no inlining), as
//!    provers that read the matrices from the key file do (rapidsnark, snarkjs). A later
//!    circuit of another shape is still caught: its assignment must fit the key's sizes
//!    and satisfy every row of the kept matrices. A prover made with
//!    [`Prover::with_constraints`] (the matrices `pulse setup` writes beside the keys)
//!    never builds them. They are kept compact ([`R1cs`]: eight bytes an entry).
//! 2. **Reduction** (the R1CS-to-QAP witness map of libsnark, ark-groth16's
//!    `LibsnarkReduction`): evaluations of `A·z`, `B·z`, `C·z` on the domain (the public
//!    inputs appended as extra rows of `A`), interpolated by an inverse NTT, evaluated on a
//!    coset `g·H` where the vanishing polynomial is the constant `gⁿ - 1`, divided there,
//!    and interpolated back: the coefficients of `h = (A·B - C)/Z`. Seven transforms. The
//!    rows are also checked to hold, so an unsatisfied witness is an error, not a bad proof.
//! 3. **MSMs**, run concurrently: `Σ zᵢ·aᵢ` (G1), `Σ zᵢ·bᵢ` (G1 and G2), `Σ zⱼ·lⱼ` over
//!    the witness (G1), which need no `h` and so run beside the reduction, and `Σ hᵢ·Hᵢ`
//!    (G1) after it.
//! 4. **Assembly** with the randomisers `r`, `s`:
//!    `A = α + Σzᵢaᵢ + rδ`, `B = β + Σzᵢbᵢ + sδ`, `C = s·A + r·B₁ - rsδ + L + H`.
//!
//! For split proofs, [`Prover::msm_part`] runs one MSM over one range of its bases; the
//! parts ([`MsmSums`]) add up, and [`Prover::prove_from_shards`] assembles the proof.

use std::ops::{Add, AddAssign, Range};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use ark_bn254::{Bn254, Fr, G1Affine, G1Projective, G2Affine, G2Projective, g1, g2};
use ark_ec::{AffineRepr, CurveGroup};
use ark_ff::{Field, UniformRand, Zero};
use ark_groth16::{Groth16, PreparedVerifyingKey, Proof, ProvingKey, VerifyingKey};
use ark_relations::gr1cs::{
    ConstraintSynthesizer, ConstraintSystem, OptimizationGoal, SynthesisError, SynthesisMode,
};
use ark_std::rand::{CryptoRng, RngCore};
use pulse_circuits::r1cs::{self, R1cs, R1csError, Which};
use rayon::prelude::*;

use crate::backend::{Backend, BackendError, MsmBackend};

/// Errors of proving. None of them is a panic: bad circuits, witnesses, keys and device
/// failures all come back here.
#[derive(Debug, thiserror::Error)]
pub enum ProveError {
    /// The circuit failed to synthesize.
    #[error("circuit synthesis failed: {0}")]
    Synthesis(#[from] SynthesisError),
    /// The witness does not satisfy the circuit.
    #[error("the witness does not satisfy constraint {constraint}")]
    Unsatisfied {
        /// Index of the first failing constraint.
        constraint: usize,
    },
    /// The circuit has no R1CS constraints at all, or a malformed constraint system.
    #[error("constraint system unusable: {0}")]
    ConstraintSystem(&'static str),
    /// The proving key was not made for this circuit (or is internally inconsistent).
    #[error("proving key does not match the circuit: {what} has {got}, expected {expected}")]
    KeyMismatch {
        /// Which part disagrees.
        what: &'static str,
        /// What the circuit (or the rest of the key) implies.
        expected: usize,
        /// What the key holds.
        got: usize,
    },
    /// The QAP domain is larger than the scalar field supports.
    #[error("QAP domain of {0} points is too large for BN254's Fr")]
    DomainTooLarge(usize),
    /// The backend failed.
    #[error("backend: {0}")]
    Backend(#[from] BackendError),
}

/// The five MSMs of a Groth16 proof, named by their query in the proving key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Query {
    /// `a_query` (G1), scalars `z`.
    A,
    /// `b_g1_query` (G1), scalars `z`.
    BG1,
    /// `b_g2_query` (G2), scalars `z`.
    BG2,
    /// `l_query` (G1), scalars: the witness part of `z`.
    L,
    /// `h_query` (G1), scalars: the coefficients of `h`.
    H,
}

impl Query {
    /// All five, in a fixed order.
    pub const ALL: [Query; 5] = [Query::A, Query::BG1, Query::BG2, Query::L, Query::H];
}

/// What the MSMs of one proof need: the full assignment and the quotient's coefficients.
#[derive(Debug, Clone)]
pub struct QapWitness {
    /// `z`: 1, the public inputs, the witness.
    assignment: Vec<Fr>,
    /// Instance variables, the leading 1 included.
    num_inputs: usize,
    /// Coefficients of `h`, as many as the key's `h_query`.
    h: Vec<Fr>,
}

impl QapWitness {
    /// The witness of `circuit` without a proving key: the assignment and all `n - 1`
    /// coefficients of `h` on the circuit's domain of `n` rows (a key's `h_query` has as
    /// many). For measuring what a prover's MSMs are given (`pulse bench buckets`), where a
    /// setup would cost more than the measurement; [`Prover::witness`] is the same with
    /// the key's checks.
    ///
    /// # Errors
    /// [`ProveError::Synthesis`], [`ProveError::Unsatisfied`], backend errors.
    pub fn compute<B: Backend, C: ConstraintSynthesizer<Fr>>(
        backend: &B,
        circuit: C,
    ) -> Result<Self, ProveError> {
        let syn = synthesize(circuit, None)?;
        let n = domain_size(&syn)?;
        let h = h_scalars(backend, &syn, n - 1, false)?;
        Ok(Self {
            assignment: syn.assignment,
            num_inputs: syn.num_inputs,
            h,
        })
    }

    /// [`Self::compute`] with the circuit's constraint matrices given (as `pulse setup`
    /// writes them beside the keys), so that synthesis computes only the assignment: what
    /// the machine that makes a split proof's witness runs, holding no base of the key.
    /// `h_len` is the key's `h_query` length (the coefficients kept). The timings have
    /// `synthesis` and `reduction` set.
    ///
    /// # Errors
    /// As [`Self::compute`], and [`ProveError::KeyMismatch`] when the circuit's variables
    /// or `h_len` disagree with the matrices.
    pub fn with_constraints<B: Backend, C: ConstraintSynthesizer<Fr>>(
        backend: &B,
        circuit: C,
        r1cs: &Arc<R1cs>,
        h_len: usize,
    ) -> Result<(Self, StageTimings), ProveError> {
        let mut timings = StageTimings::default();
        let t = Instant::now();
        let syn = synthesize(circuit, Some(r1cs))?;
        timings.synthesis = t.elapsed();
        let t = Instant::now();
        let h = h_scalars(backend, &syn, h_len, false)?;
        timings.reduction = t.elapsed();
        let witness = Self {
            assignment: syn.assignment,
            num_inputs: syn.num_inputs,
            h,
        };
        Ok((witness, timings))
    }

    /// The public inputs (without the leading 1), as `Groth16::verify` takes them.
    pub fn public_inputs(&self) -> &[Fr] {
        &self.assignment[1..self.num_inputs]
    }

    /// The scalars of the MSM `query`, aligned with that query's bases.
    pub fn scalars(&self, query: Query) -> &[Fr] {
        match query {
            Query::A | Query::BG1 | Query::BG2 => &self.assignment,
            Query::L => &self.assignment[self.num_inputs..],
            Query::H => &self.h,
        }
    }
}

/// Sums of the five MSMs, whole or partial. Partial sums over disjoint ranges add up
/// (`+`, `+=`) to the whole; the zero value is [`MsmSums::default`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MsmSums {
    /// `Σ zᵢ·aᵢ`.
    pub a: G1Projective,
    /// `Σ zᵢ·bᵢ` in G1.
    pub b_g1: G1Projective,
    /// `Σ zᵢ·bᵢ` in G2.
    pub b_g2: G2Projective,
    /// `Σ zⱼ·lⱼ` over the witness.
    pub l: G1Projective,
    /// `Σ hᵢ·Hᵢ`.
    pub h: G1Projective,
}

impl AddAssign<&MsmSums> for MsmSums {
    fn add_assign(&mut self, o: &MsmSums) {
        self.a += o.a;
        self.b_g1 += o.b_g1;
        self.b_g2 += o.b_g2;
        self.l += o.l;
        self.h += o.h;
    }
}

impl Add for MsmSums {
    type Output = MsmSums;
    fn add(mut self, o: MsmSums) -> MsmSums {
        self += &o;
        self
    }
}

/// Wall time of each proving stage. The five MSMs run concurrently, so their times
/// overlap; the four over the assignment also overlap the reduction, and `msm_total` is
/// the wall time of the reduction and all five MSMs together.
#[derive(Debug, Clone, Copy, Default)]
pub struct StageTimings {
    /// Constraint synthesis: the assignment, and on a prover's first proof also the
    /// finalised constraint matrices.
    pub synthesis: Duration,
    /// The R1CS-to-QAP witness map (row evaluations and the seven NTTs).
    pub reduction: Duration,
    /// MSM over `a_query`.
    pub msm_a: Duration,
    /// MSM over `b_g1_query`.
    pub msm_b_g1: Duration,
    /// MSM over `b_g2_query`.
    pub msm_b_g2: Duration,
    /// MSM over `l_query`.
    pub msm_l: Duration,
    /// MSM over `h_query`.
    pub msm_h: Duration,
    /// The reduction and all five MSMs, wall time.
    pub msm_total: Duration,
    /// The whole proof.
    pub total: Duration,
}

type G1Bases<B> = <B as MsmBackend<g1::Config>>::Bases;
type G2Bases<B> = <B as MsmBackend<g2::Config>>::Bases;

/// A Groth16 prover for one proving key, its bases prepared on a backend.
pub struct Prover<B: Backend> {
    backend: B,
    vk: VerifyingKey<Bn254>,
    pvk: PreparedVerifyingKey<Bn254>,
    /// The constraint matrices: given ([`Self::with_constraints`]), or from the first proof
    /// that verified.
    shape: OnceLock<Arc<R1cs>>,
    beta_g1: G1Affine,
    delta_g1: G1Affine,
    a: G1Bases<B>,
    b_g1: G1Bases<B>,
    b_g2: G2Bases<B>,
    l: G1Bases<B>,
    h: G1Bases<B>,
    /// Whether `C·z` is taken as `(A·z)∘(B·z)` ([`Self::for_imported`]).
    c_from_ab: bool,
}

impl<B: Backend> Prover<B> {
    /// Takes the proving key and prepares its five queries on `backend` (once per key).
    ///
    /// # Errors
    /// [`ProveError::KeyMismatch`] if the key's queries disagree in length;
    /// [`ProveError::Backend`] if the backend cannot hold them.
    #[tracing::instrument(skip_all, fields(variables = pk.a_query.len(), h = pk.h_query.len()))]
    pub fn new(backend: B, pk: ProvingKey<Bn254>) -> Result<Self, ProveError> {
        let ProvingKey {
            vk,
            beta_g1,
            delta_g1,
            a_query,
            b_g1_query,
            b_g2_query,
            h_query,
            l_query,
        } = pk;
        let vars = a_query.len();
        for (what, got) in [
            ("b_g1_query", b_g1_query.len()),
            ("b_g2_query", b_g2_query.len()),
            (
                "l_query plus public inputs",
                l_query.len() + vk.gamma_abc_g1.len(),
            ),
        ] {
            if got != vars {
                return Err(ProveError::KeyMismatch {
                    what,
                    expected: vars,
                    got,
                });
            }
        }
        Ok(Self {
            a: MsmBackend::<g1::Config>::prepare(&backend, a_query)?,
            b_g1: MsmBackend::<g1::Config>::prepare(&backend, b_g1_query)?,
            b_g2: MsmBackend::<g2::Config>::prepare(&backend, b_g2_query)?,
            l: MsmBackend::<g1::Config>::prepare(&backend, l_query)?,
            h: MsmBackend::<g1::Config>::prepare(&backend, h_query)?,
            backend,
            pvk: ark_groth16::prepare_verifying_key(&vk),
            vk,
            shape: OnceLock::new(),
            c_from_ab: false,
            beta_g1,
            delta_g1,
        })
    }

    /// [`Self::new`] with the circuit's constraint matrices given (as `pulse setup` writes
    /// them beside the keys), so that no proof synthesizes them: every proof, the first
    /// included, computes only the assignment. The matrices must be the key's circuit's: a
    /// witness that does not satisfy them is refused ([`ProveError::Unsatisfied`]), and a
    /// proof made against the wrong ones would not verify.
    ///
    /// # Errors
    /// As [`Self::new`], and [`ProveError::KeyMismatch`] when the matrices' variables differ
    /// from the key's.
    pub fn with_constraints(
        backend: B,
        pk: ProvingKey<Bn254>,
        r1cs: Arc<R1cs>,
    ) -> Result<Self, ProveError> {
        for (what, expected, got) in [
            (
                "constraint system variables against a_query",
                pk.a_query.len(),
                r1cs.num_variables(),
            ),
            (
                "constraint system instance variables against gamma_abc_g1",
                pk.vk.gamma_abc_g1.len(),
                r1cs.num_instance(),
            ),
        ] {
            if expected != got {
                return Err(ProveError::KeyMismatch {
                    what,
                    expected,
                    got,
                });
            }
        }
        let prover = Self::new(backend, pk)?;
        let _ = prover.shape.set(r1cs);
        Ok(prover)
    }

    /// A prover for a key imported from snarkjs, whose file holds the `A` and `B` rows of
    /// the circuit but not `C` (snarkjs's prover, like this one then, takes `C·z` to be
    /// `(A·z)∘(B·z)`). `ab` holds those rows and no `C` entry. A witness that does not
    /// satisfy the circuit gives a proof that does not verify:
    /// [`Self::prove_assignment`] checks each proof it makes.
    ///
    /// # Errors
    /// As [`Self::with_constraints`], and [`ProveError::ConstraintSystem`] when `ab` has
    /// `C` entries.
    pub fn for_imported(
        backend: B,
        pk: ProvingKey<Bn254>,
        ab: Arc<R1cs>,
    ) -> Result<Self, ProveError> {
        if ab.entries(Which::C) != 0 {
            return Err(ProveError::ConstraintSystem(
                "an imported key's rows must not include C",
            ));
        }
        let mut prover = Self::with_constraints(backend, pk, ab)?;
        prover.c_from_ab = true;
        Ok(prover)
    }

    /// A proof of a full assignment `z` (1, the `num_inputs - 1` public inputs, the witness),
    /// for a prover that holds its circuit's matrices ([`Self::with_constraints`],
    /// [`Self::for_imported`]); checked against the verifying key before it is returned.
    ///
    /// # Errors
    /// [`ProveError::ConstraintSystem`] without matrices, a `z₀` other than 1, or a proof that
    /// does not verify; [`ProveError::KeyMismatch`] when `z` does not fit the key;
    /// [`ProveError::Unsatisfied`] as [`Self::prove`].
    pub fn prove_assignment(
        &self,
        assignment: Vec<Fr>,
        num_inputs: usize,
        r: Fr,
        s: Fr,
    ) -> Result<(Proof<Bn254>, StageTimings), ProveError> {
        let start = Instant::now();
        let Some(shape) = self.shape.get() else {
            return Err(ProveError::ConstraintSystem(
                "proving an assignment needs the circuit's matrices",
            ));
        };
        if assignment.first() != Some(&Fr::ONE) {
            return Err(ProveError::ConstraintSystem(
                "the assignment must start with the constant 1",
            ));
        }
        for (what, expected, got) in [
            (
                "assignment against a_query",
                self.query_len(Query::A),
                assignment.len(),
            ),
            (
                "public inputs against gamma_abc_g1",
                self.vk.gamma_abc_g1.len(),
                num_inputs,
            ),
        ] {
            if expected != got {
                return Err(ProveError::KeyMismatch {
                    what,
                    expected,
                    got,
                });
            }
        }
        let syn = Synthesized {
            shape: shape.clone(),
            num_inputs,
            assignment,
        };
        let mut timings = StageTimings::default();
        let msm_start = Instant::now();
        let sums = self.msm_beside_reduction(&syn, &mut timings)?;
        timings.msm_total = msm_start.elapsed();
        let proof = self.prove_from_shards(&sums, r, s);
        let inputs = &syn.assignment[1..num_inputs];
        if !matches!(
            Groth16::<Bn254>::verify_proof(&self.pvk, &proof, inputs),
            Ok(true)
        ) {
            return Err(ProveError::ConstraintSystem(
                "the proof does not verify: the witness does not satisfy the key's circuit",
            ));
        }
        timings.total = start.elapsed();
        Ok((proof, timings))
    }

    /// The constraint matrices proofs are checked and reduced with: given to
    /// [`Self::with_constraints`], or kept from the first proof that verified; `None` before.
    pub fn constraints(&self) -> Option<&Arc<R1cs>> {
        self.shape.get()
    }

    /// The verifying key of the proving key this prover holds.
    pub fn vk(&self) -> &VerifyingKey<Bn254> {
        &self.vk
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// How many bases the MSM `query` runs over (the valid ranges for [`Self::msm_part`]).
    pub fn query_len(&self, query: Query) -> usize {
        let b = &self.backend;
        match query {
            Query::A => MsmBackend::<g1::Config>::num_bases(b, &self.a),
            Query::BG1 => MsmBackend::<g1::Config>::num_bases(b, &self.b_g1),
            Query::BG2 => MsmBackend::<g2::Config>::num_bases(b, &self.b_g2),
            Query::L => MsmBackend::<g1::Config>::num_bases(b, &self.l),
            Query::H => MsmBackend::<g1::Config>::num_bases(b, &self.h),
        }
    }

    /// A zero-knowledge proof of `circuit`, with `r`, `s` drawn from `rng`.
    ///
    /// # Errors
    /// See [`ProveError`].
    pub fn prove<C, R>(&self, circuit: C, rng: &mut R) -> Result<Proof<Bn254>, ProveError>
    where
        C: ConstraintSynthesizer<Fr>,
        R: RngCore + CryptoRng,
    {
        let r = Fr::rand(rng);
        let s = Fr::rand(rng);
        self.prove_with_randomness(circuit, r, s).map(|(p, _)| p)
    }

    /// A proof of `circuit` with the given randomisers, and how long each stage took.
    ///
    /// # Errors
    /// See [`ProveError`].
    #[tracing::instrument(skip_all)]
    pub fn prove_with_randomness<C: ConstraintSynthesizer<Fr>>(
        &self,
        circuit: C,
        r: Fr,
        s: Fr,
    ) -> Result<(Proof<Bn254>, StageTimings), ProveError> {
        let start = Instant::now();
        let mut timings = StageTimings::default();
        let (syn, fresh) = self.synthesize_checked(circuit, &mut timings)?;
        let msm_start = Instant::now();
        let sums = self.msm_beside_reduction(&syn, &mut timings)?;
        timings.msm_total = msm_start.elapsed();
        let proof = self.prove_from_shards(&sums, r, s);
        if let Some(shape) = fresh {
            // Keep the matrices only once a proof made with them verifies: a first circuit
            // of the wrong shape must not decide what later proofs are checked against.
            let inputs = &syn.assignment[1..syn.num_inputs];
            if let Ok(true) = Groth16::<Bn254>::verify_proof(&self.pvk, &proof, inputs) {
                let _ = self.shape.set(shape);
            }
        }
        drop(syn);
        timings.total = start.elapsed();
        Ok((proof, timings))
    }

    /// Synthesizes `circuit` and computes `h`: everything the MSMs need.
    ///
    /// # Errors
    /// [`ProveError::Synthesis`], [`ProveError::Unsatisfied`], [`ProveError::KeyMismatch`]
    /// when the circuit is not the key's, backend errors.
    pub fn witness<C: ConstraintSynthesizer<Fr>>(
        &self,
        circuit: C,
    ) -> Result<QapWitness, ProveError> {
        let (syn, _) = self.synthesize_checked(circuit, &mut StageTimings::default())?;
        let h = self.h_coefficients(&syn)?;
        Ok(QapWitness {
            assignment: syn.assignment,
            num_inputs: syn.num_inputs,
            h,
        })
    }

    /// Synthesis, and the checks that the assignment fits the key. Also returns the
    /// matrices when this call built them (none were kept yet).
    fn synthesize_checked<C: ConstraintSynthesizer<Fr>>(
        &self,
        circuit: C,
        timings: &mut StageTimings,
    ) -> Result<(Synthesized, Option<Arc<R1cs>>), ProveError> {
        let t = Instant::now();
        let kept = self.shape.get();
        let syn = synthesize(circuit, kept)?;
        timings.synthesis = t.elapsed();
        let fresh = kept.is_none().then(|| syn.shape.clone());
        let expect = |what, expected, got| {
            if expected == got {
                Ok(())
            } else {
                Err(ProveError::KeyMismatch {
                    what,
                    expected,
                    got,
                })
            }
        };
        expect(
            "verifying key's public inputs (gamma_abc_g1)",
            syn.num_inputs,
            self.vk.gamma_abc_g1.len(),
        )?;
        expect("a_query", syn.assignment.len(), self.query_len(Query::A))?;
        Ok((syn, fresh))
    }

    /// The scalars of the MSM over `h_query`, in the key's [`QuotientForm`].
    fn h_coefficients(&self, syn: &Synthesized) -> Result<Vec<Fr>, ProveError> {
        h_scalars(&self.backend, syn, self.query_len(Query::H), self.c_from_ab)
    }

    /// The reduction and the five MSMs over all their bases. The MSMs over the assignment
    /// do not need `h`, so they run, one after another, beside the reduction (filling the
    /// cores its serial steps leave idle), and the MSM over `h` follows it; rayon balances
    /// the two sides.
    #[tracing::instrument(skip_all)]
    fn msm_beside_reduction(
        &self,
        syn: &Synthesized,
        timings: &mut StageTimings,
    ) -> Result<MsmSums, ProveError> {
        let whole = |q: Query, scalars: &[Fr]| {
            let t = Instant::now();
            let r = self.msm_scalars(q, 0..self.query_len(q), scalars);
            (r, t.elapsed())
        };
        let z = &syn.assignment;
        let witness = &z[syn.num_inputs..];
        let ((h, reduction, h_msm), (ab, l)) = rayon::join(
            || {
                let t = Instant::now();
                let h = self.h_coefficients(syn);
                let reduction = t.elapsed();
                let h_msm = h.as_ref().ok().map(|h| whole(Query::H, h));
                (h, reduction, h_msm)
            },
            || {
                // The three over the assignment together (a backend may share their
                // scalar work), then L; one after another (each is parallel over its
                // windows already, and one MSM's digits at a time sit beside the
                // reduction's vectors).
                let ab = self.msm_assignment(z);
                (ab, whole(Query::L, witness))
            },
        );
        h?;
        let Some(h) = h_msm else {
            return Err(ProveError::ConstraintSystem("no MSM over h"));
        };
        let ab = ab?;
        timings.reduction = reduction;
        [timings.msm_a, timings.msm_b_g1, timings.msm_b_g2] = ab.times;
        timings.msm_l = l.1;
        timings.msm_h = h.1;
        let mut sums = MsmSums {
            a: ab.a,
            b_g1: ab.b_g1,
            b_g2: ab.b_g2,
            ..MsmSums::default()
        };
        for part in [l.0?, h.0?] {
            sums += &part;
        }
        Ok(sums)
    }

    /// The MSM `query` over `range` of its bases (and the matching scalars of `witness`),
    /// as an [`MsmSums`] with that one field set. Parts over a partition of every query's
    /// bases add up to the sums [`Self::prove_from_shards`] takes.
    ///
    /// # Errors
    /// [`ProveError::KeyMismatch`] if the witness does not fit the key;
    /// [`BackendError::RangeOutOfBounds`] for a range outside the query's bases.
    #[tracing::instrument(skip_all, fields(?query, start = range.start, end = range.end))]
    pub fn msm_part(
        &self,
        witness: &QapWitness,
        query: Query,
        range: Range<usize>,
    ) -> Result<MsmSums, ProveError> {
        self.msm_scalars(query, range, witness.scalars(query))
    }

    /// The three MSMs over the whole assignment `z` (A, B in G1 and G2), through
    /// [`Backend::msm_assignment`].
    fn msm_assignment(&self, z: &[Fr]) -> Result<crate::AssignmentSums, ProveError> {
        let len = self.query_len(Query::A);
        for q in [Query::BG1, Query::BG2] {
            if self.query_len(q) != len {
                return Err(ProveError::KeyMismatch {
                    what: "b_query length against a_query",
                    expected: len,
                    got: self.query_len(q),
                });
            }
        }
        if z.len() != len {
            return Err(ProveError::KeyMismatch {
                what: "MSM bases for the witness",
                expected: z.len(),
                got: len,
            });
        }
        Ok(self
            .backend
            .msm_assignment(&self.a, &self.b_g1, &self.b_g2, 0..len, z)?)
    }

    /// [`Self::msm_part`] with the query's full scalar vector given directly.
    fn msm_scalars(
        &self,
        query: Query,
        range: Range<usize>,
        scalars: &[Fr],
    ) -> Result<MsmSums, ProveError> {
        let len = self.query_len(query);
        if scalars.len() != len {
            return Err(ProveError::KeyMismatch {
                what: "MSM bases for the witness",
                expected: scalars.len(),
                got: len,
            });
        }
        let Some(scalars) = scalars.get(range.clone()) else {
            return Err(BackendError::RangeOutOfBounds {
                start: range.start,
                end: range.end,
                len,
            }
            .into());
        };
        let b = &self.backend;
        let g1 = |bases| MsmBackend::<g1::Config>::msm(b, bases, range.clone(), scalars);
        let mut sums = MsmSums::default();
        match query {
            Query::A => sums.a = g1(&self.a)?,
            Query::BG1 => sums.b_g1 = g1(&self.b_g1)?,
            Query::BG2 => {
                sums.b_g2 = MsmBackend::<g2::Config>::msm(b, &self.b_g2, range.clone(), scalars)?
            }
            Query::L => sums.l = g1(&self.l)?,
            Query::H => sums.h = g1(&self.h)?,
        }
        Ok(sums)
    }

    /// Assembles the proof from the full MSM sums (whole, or added up from parts) and the
    /// randomisers `r`, `s`.
    #[tracing::instrument(skip_all)]
    pub fn prove_from_shards(&self, sums: &MsmSums, r: Fr, s: Fr) -> Proof<Bn254> {
        assemble(&self.vk, self.beta_g1, self.delta_g1, sums, r, s)
    }
}

/// The Groth16 proof from the five MSM sums, the key's `vk`, `β·G₁`, `δ·G₁`, and the
/// randomisers `r`, `s`.
pub(crate) fn assemble(
    vk: &VerifyingKey<Bn254>,
    beta_g1: G1Affine,
    delta_g1: G1Affine,
    sums: &MsmSums,
    r: Fr,
    s: Fr,
) -> Proof<Bn254> {
    let delta = delta_g1.into_group();
    let a = sums.a + vk.alpha_g1 + delta * r;
    let b_g1 = sums.b_g1 + beta_g1 + delta * s;
    let b_g2: G2Projective = sums.b_g2 + vk.beta_g2 + vk.delta_g2 * s;
    let c = a * s + b_g1 * r - delta * (r * s) + sums.l + sums.h;
    Proof {
        a: a.into_affine(),
        b: G2Affine::from(b_g2),
        c: c.into_affine(),
    }
}

/// A synthesized constraint system, reduced to what the prover needs.
struct Synthesized {
    shape: Arc<R1cs>,
    num_inputs: usize,
    assignment: Vec<Fr>,
}

/// The smallest power-of-two domain holding the constraints and the public-input rows.
fn domain_size(syn: &Synthesized) -> Result<usize, ProveError> {
    let rows = syn.shape.num_constraints() + syn.num_inputs;
    let n = rows.next_power_of_two();
    if n.trailing_zeros() > <Fr as ark_ff::FftField>::TWO_ADICITY {
        return Err(ProveError::DomainTooLarge(n));
    }
    Ok(n)
}

/// How a proving key's `h_query` pairs with the quotient, told apart by its length on the
/// circuit's domain of `n` rows (both forms make the same `h(τ)·Z(τ)/δ` in the proof).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotientForm {
    /// `ark-groth16`'s keys: `n - 1` points `τⁱ·Z(τ)/δ`, paired with the coefficients of
    /// `h = (A·B - C)/Z`.
    Coefficients,
    /// snarkjs's keys (and Pulse's ceremonies, which follow them): `n` points
    /// `L₂ᵢ₊₁(τ)/δ`, the Lagrange basis of the domain of `2n` points at its odd points,
    /// paired with the values of `A·B - C` at those points (the coset `ω₂ₙ·⟨ωₙ⟩`): on the
    /// even points `A·B - C` vanishes, so those values alone interpolate it at `τ`.
    OddCoset,
}

impl QuotientForm {
    /// The form of a key whose `h_query` has `h_len` points on a domain of `n` rows.
    pub fn of(h_len: usize, n: usize) -> Option<Self> {
        if h_len == n {
            Some(Self::OddCoset)
        } else if h_len + 1 == n {
            Some(Self::Coefficients)
        } else {
            None
        }
    }
}

/// The R1CS-to-QAP witness map: the scalars of the MSM over an `h_query` of `h_len` points
/// ([`QuotientForm`]), on the smallest power-of-two domain holding the constraints and the
/// public-input rows. With `c_from_ab`, the rows of `C·z` are taken to be `(A·z)∘(B·z)`
/// (keys imported from snarkjs carry no `C`; a witness that does not satisfy the circuit
/// then gives a proof that does not verify, which the caller checks); otherwise every row
/// is checked.
#[tracing::instrument(skip_all, fields(constraints = syn.shape.num_constraints(), inputs = syn.num_inputs))]
fn h_scalars<B: Backend>(
    backend: &B,
    syn: &Synthesized,
    h_len: usize,
    c_from_ab: bool,
) -> Result<Vec<Fr>, ProveError> {
    let num_constraints = syn.shape.num_constraints();
    let rows = num_constraints + syn.num_inputs;
    let n = domain_size(syn)?;
    let Some(form) = QuotientForm::of(h_len, n) else {
        return Err(ProveError::KeyMismatch {
            what: "h_query",
            expected: n - 1,
            got: h_len,
        });
    };
    let z = &syn.assignment;
    let r1cs = &syn.shape;
    if r1cs.num_instance() != syn.num_inputs || r1cs.num_variables() != z.len() {
        return Err(ProveError::KeyMismatch {
            what: "constraint system variables",
            expected: z.len(),
            got: r1cs.num_variables(),
        });
    }
    let mut a = evaluate_rows(r1cs, Which::A, z, n)?;
    let mut b = evaluate_rows(r1cs, Which::B, z, n)?;
    let mut c = if c_from_ab {
        let mut c = vec![Fr::zero(); n];
        c[..num_constraints]
            .par_iter_mut()
            .zip(a[..num_constraints].par_iter().zip(&b[..num_constraints]))
            .for_each(|(c, (a, b))| *c = *a * b);
        c
    } else {
        let c = evaluate_rows(r1cs, Which::C, z, n)?;
        if let Some(bad) = (0..num_constraints)
            .into_par_iter()
            .find_first(|&i| a[i] * b[i] != c[i])
        {
            return Err(ProveError::Unsatisfied { constraint: bad });
        }
        c
    };
    a[num_constraints..rows].copy_from_slice(&z[..syn.num_inputs]);

    match form {
        QuotientForm::Coefficients => {
            let g = <Fr as ark_ff::FftField>::GENERATOR;
            // Z(x) = xⁿ - 1 is the constant gⁿ - 1 on the coset; g generates Fr*, so gⁿ ≠ 1.
            let z_inv = (g.pow([n as u64]) - Fr::ONE)
                .inverse()
                .ok_or(ProveError::DomainTooLarge(n))?;
            backend.quotient(&mut a, &mut b, &mut c, g, z_inv)?;
            // The satisfied rows make deg h ≤ n - 2, so the coefficient dropped is zero.
            a.truncate(h_len);
        }
        QuotientForm::OddCoset => {
            // ω₂ₙ, whose square generates the domain: the odd points are ω₂ₙ·⟨ωₙ⟩.
            let log = n.trailing_zeros() + 1;
            if log > <Fr as ark_ff::FftField>::TWO_ADICITY {
                return Err(ProveError::DomainTooLarge(2 * n));
            }
            let shift = <Fr as ark_ff::FftField>::get_root_of_unity(2 * n as u64)
                .ok_or(ProveError::DomainTooLarge(2 * n))?;
            // Six transforms, not seven: nothing is divided or interpolated back.
            for v in [&mut a, &mut b, &mut c] {
                backend.intt(v)?;
                backend.coset_ntt(v, shift)?;
            }
            a.par_iter_mut()
                .zip(b.par_iter().zip(c.par_iter()))
                .for_each(|(x, (y, z))| *x = *x * y - z);
        }
    }
    Ok(a)
}

/// Runs `circuit` in prove mode. With `kept` matrices, only the assignment is computed;
/// without, the constraint system is also finalised and its matrices extracted.
#[tracing::instrument(skip_all, fields(kept = kept.is_some()))]
fn synthesize<C: ConstraintSynthesizer<Fr>>(
    circuit: C,
    kept: Option<&Arc<R1cs>>,
) -> Result<Synthesized, ProveError> {
    let cs = ConstraintSystem::new_ref();
    cs.set_optimization_goal(OptimizationGoal::Constraints);
    cs.set_mode(SynthesisMode::Prove {
        construct_matrices: kept.is_none(),
        generate_lc_assignments: false,
    });
    circuit.generate_constraints(cs.clone())?;
    cs.finalize();
    let num_inputs = cs.num_instance_variables();
    let assignment = {
        let inner = cs.borrow().ok_or(ProveError::ConstraintSystem(
            "constraint system is borrowed",
        ))?;
        [inner.instance_assignment()?, inner.witness_assignment()?].concat()
    };
    let shape = match kept {
        Some(shape) => shape.clone(),
        None => {
            let num_variables = assignment.len();
            let matrices = r1cs::matrices_of(&cs).map_err(shape_error)?;
            // The linear combinations go before the matrices are compacted.
            drop(cs);
            Arc::new(R1cs::from_matrices(num_inputs, num_variables, matrices).map_err(shape_error)?)
        }
    };
    Ok(Synthesized {
        shape,
        num_inputs,
        assignment,
    })
}

fn shape_error(e: R1csError) -> ProveError {
    match e {
        R1csError::Synthesis(e) => ProveError::Synthesis(e),
        _ => ProveError::ConstraintSystem("the constraint system's matrices are malformed"),
    }
}

/// `M·z` row by row, zero-padded to `n` entries.
fn evaluate_rows(r1cs: &R1cs, which: Which, z: &[Fr], n: usize) -> Result<Vec<Fr>, ProveError> {
    let mut out = vec![Fr::zero(); n];
    let ok = out[..r1cs.num_constraints()]
        .par_iter_mut()
        .enumerate()
        .with_min_len(1024)
        .all(|(i, o)| match r1cs.evaluate_row(which, i, z) {
            Some(v) => {
                *o = v;
                true
            }
            None => false,
        });
    if ok {
        Ok(out)
    } else {
        Err(ProveError::ConstraintSystem(
            "constraint refers to an unknown variable",
        ))
    }
}
