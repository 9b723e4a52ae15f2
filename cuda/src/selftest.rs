//! The differential self-test: every kernel against arkworks and the CPU backend, on the
//! device a hospital is about to contribute. `pulse worker selftest` prints one line per
//! check and ends with `N passed, M failed`; the crate's tests run it on PoCL.
//!
//! Inputs are seeded random values plus the edge cases that break big-integer and curve
//! code: 0, 1, -1, 2, (p±1)/2, 2^k; the point at infinity, repeated and opposite bases
//! (the exceptional cases of the addition formulas); zero, one and -1 scalars; MSMs over
//! sub-ranges (the sharded form); NTT round trips on the subgroup and on a coset.

use std::time::{Duration, Instant};

use ark_bn254::{Fq, Fq2, Fr, G1Affine, G1Projective, G2Affine, G2Projective};
use ark_ec::short_weierstrass::{Affine, Projective};
use ark_ec::{AdditiveGroup, CurveGroup, PrimeGroup, VariableBaseMSM};
use ark_ff::{BigInteger, FftField, Field, PrimeField, UniformRand};
use pulse_prover::{CpuBackend, MsmBackend, NttBackend};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

use crate::backend::GpuBackend;
use crate::device::{Arg, Device, GpuError};
use crate::msm::{DeviceField, GpuCurve, from_device, to_device};

/// One check's outcome.
#[derive(Debug, Clone)]
pub struct Check {
    /// What was checked (`fq arithmetic`, `g1 msm n=1000`, …).
    pub name: String,
    /// Whether the device agreed with the reference.
    pub passed: bool,
    /// On failure, the first disagreement or the device error.
    pub detail: String,
    /// How long the device part took.
    pub elapsed: Duration,
}

/// Counts of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Checks that passed.
    pub passed: usize,
    /// Checks that failed.
    pub failed: usize,
}

/// What to run: sizes are kept small by default, so that the test finishes in seconds on
/// a CPU OpenCL device; `--large` on the CLI adds sizes a GPU is meant for.
#[derive(Debug, Clone)]
pub struct Options {
    /// Seed of the random inputs.
    pub seed: u64,
    /// Random field elements per field check.
    pub field_values: usize,
    /// G1 MSM sizes.
    pub g1_sizes: Vec<usize>,
    /// G2 MSM sizes.
    pub g2_sizes: Vec<usize>,
    /// NTT sizes, as log₂.
    pub ntt_logs: Vec<u32>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            seed: 0x9a15e,
            field_values: 256,
            g1_sizes: vec![1, 2, 31, 300, 5000],
            g2_sizes: vec![1, 17, 300],
            // One local pass short of, at and past a full block (2^10), then two passes.
            ntt_logs: vec![0, 1, 2, 3, 5, 9, 10, 11, 13],
        }
    }
}

impl Options {
    /// The default checks plus sizes for a real GPU (MSMs of 2^16 and 2^18, NTTs to 2^18).
    pub fn large() -> Self {
        let mut o = Self::default();
        o.g1_sizes.extend([1 << 16, (1 << 18) + 1]);
        o.g2_sizes.push(1 << 14);
        o.ntt_logs.extend([16, 18]);
        o
    }
}

/// Runs every check, calling `report` after each.
pub fn run(backend: &GpuBackend, opts: &Options, report: &mut dyn FnMut(&Check)) -> Summary {
    let mut rng = ChaCha20Rng::seed_from_u64(opts.seed);
    let mut summary = Summary::default();
    let mut record = |check: Check| {
        if check.passed {
            summary.passed += 1;
        } else {
            summary.failed += 1;
        }
        report(&check);
    };
    let dev = backend.device();
    record(field_check::<Fq>(dev, "fq", opts.field_values, &mut rng));
    record(field_check::<Fr>(dev, "fr", opts.field_values, &mut rng));
    record(field_check::<Fq2>(dev, "fq2", opts.field_values, &mut rng));
    for &n in &opts.g1_sizes {
        record(msm_check::<ark_bn254::g1::Config>(backend, n, &mut rng));
    }
    for &n in &opts.g2_sizes {
        record(msm_check::<ark_bn254::g2::Config>(backend, n, &mut rng));
    }
    record(msm_edge_check(backend, &mut rng));
    record(msm_skew_check(backend, &mut rng));
    record(size_edge_check(backend, &mut rng));
    for n in [0, 1, 300, 4099] {
        record(assignment_check(backend, n, &mut rng));
    }
    for &log in &opts.ntt_logs {
        record(ntt_check(backend, log, &mut rng));
    }
    record(quotient_check(backend, 10, &mut rng));
    summary
}

fn timed(name: String, f: impl FnOnce() -> Result<Result<(), String>, GpuError>) -> Check {
    let t = Instant::now();
    let outcome = f();
    let elapsed = t.elapsed();
    let (passed, detail) = match outcome {
        Ok(Ok(())) => (true, String::new()),
        Ok(Err(mismatch)) => (false, mismatch),
        Err(e) => (false, format!("device error: {e}")),
    };
    Check {
        name,
        passed,
        detail,
        elapsed,
    }
}

/// A field the self-test compares: arithmetic from arkworks and edge values.
trait TestField: DeviceField + Field + UniformRand + std::fmt::Debug {
    fn edges() -> Vec<Self>;
}

fn prime_edges<F: PrimeField>() -> Vec<F> {
    let half = F::from_bigint(F::MODULUS_MINUS_ONE_DIV_TWO).unwrap_or(F::ZERO);
    let mut top_bit = F::MODULUS;
    top_bit.div2();
    vec![
        F::ZERO,
        F::ONE,
        -F::ONE,
        F::from(2u64),
        half,
        half + F::ONE,
        -F::from(2u64),
        F::from(u64::MAX),
        F::from(1u64 << 32) - F::ONE,
        F::from_bigint(top_bit).unwrap_or(F::ONE),
    ]
}

impl TestField for Fq {
    fn edges() -> Vec<Self> {
        prime_edges()
    }
}

impl TestField for Fr {
    fn edges() -> Vec<Self> {
        prime_edges()
    }
}

impl TestField for Fq2 {
    fn edges() -> Vec<Self> {
        let e = prime_edges::<Fq>();
        let mut out = Vec::new();
        for (i, a) in e.iter().enumerate() {
            out.push(Fq2::new(*a, e[(i * 3 + 1) % e.len()]));
            out.push(Fq2::new(*a, Fq::ZERO));
            out.push(Fq2::new(Fq::ZERO, *a));
        }
        out
    }
}

fn field_check<F: TestField>(
    dev: &dyn Device,
    name: &str,
    random: usize,
    rng: &mut ChaCha20Rng,
) -> Check {
    let edges = F::edges();
    let mut a = Vec::new();
    let mut b = Vec::new();
    for x in &edges {
        for y in &edges {
            a.push(*x);
            b.push(*y);
        }
    }
    for _ in 0..random {
        a.push(F::rand(rng));
        b.push(F::rand(rng));
    }
    timed(format!("{name} arithmetic ({} pairs)", a.len()), || {
        let n = a.len();
        let da = dev.alloc(n * F::BYTES)?;
        let db = dev.alloc(n * F::BYTES)?;
        let out = dev.alloc(6 * n * F::BYTES)?;
        dev.write(&da, 0, &to_device(&a))?;
        dev.write(&db, 0, &to_device(&b))?;
        dev.launch(
            &format!("{name}_selftest"),
            n,
            &[
                Arg::Buf(&da),
                Arg::Buf(&db),
                Arg::Buf(&out),
                Arg::U32(n as u32),
            ],
        )?;
        let mut bytes = vec![0u8; 6 * n * F::BYTES];
        dev.read(&out, 0, &mut bytes)?;
        let got = from_device::<F>(&bytes);
        for i in 0..n {
            let (x, y) = (a[i], b[i]);
            let want = [x + y, x - y, x * y, x.square(), -x, x.double()];
            for (k, op) in ["+", "-", "*", "square", "neg", "double"]
                .iter()
                .enumerate()
            {
                if got[6 * i + k] != want[k] {
                    return Ok(Err(format!(
                        "{op} of {x:?} and {y:?}: device {:?}, arkworks {:?}",
                        got[6 * i + k],
                        want[k]
                    )));
                }
            }
        }
        Ok(Ok(()))
    })
}

/// Random points: a random combination of the generator, cheaper than hashing to the curve.
fn random_points<P: GpuCurve>(n: usize, rng: &mut ChaCha20Rng) -> Vec<Affine<P>>
where
    Projective<P>: PrimeGroup,
{
    let g = Projective::<P>::generator();
    let step = g * Fr::rand(rng);
    let mut acc = g * Fr::rand(rng);
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(acc);
        acc += step;
    }
    Projective::normalize_batch(&out)
}

/// Scalars with the edge cases mixed in: 0, 1, -1, 2^k, small, and random.
fn test_scalars(n: usize, rng: &mut ChaCha20Rng) -> Vec<Fr> {
    (0..n)
        .map(|i| match i % 7 {
            0 if i % 14 == 0 => Fr::ZERO,
            1 if i % 3 == 0 => Fr::ONE,
            2 if i % 3 == 0 => -Fr::ONE,
            3 if i % 3 == 0 => Fr::from(2u64).pow([rng.gen_range(0..254u64)]),
            4 if i % 3 == 0 => Fr::from(rng.gen_range(0..1u64 << 20)),
            _ => Fr::rand(rng),
        })
        .collect()
}

fn msm_check<P: GpuCurve>(backend: &GpuBackend, n: usize, rng: &mut ChaCha20Rng) -> Check
where
    Projective<P>: PrimeGroup + VariableBaseMSM<MulBase = Affine<P>, ScalarField = Fr>,
    GpuBackend: MsmBackend<P>,
{
    let bases = random_points::<P>(n, rng);
    let scalars = test_scalars(n, rng);
    let want: Projective<P> = VariableBaseMSM::msm(&bases, &scalars).unwrap_or_default();
    // And a sub-range, as split-proof mode asks for.
    let (lo, hi) = (n / 3, n - n / 4);
    let want_part: Projective<P> =
        VariableBaseMSM::msm(&bases[lo..hi], &scalars[lo..hi]).unwrap_or_default();
    timed(format!("{} msm n={n}", P::PREFIX), || {
        let prepared = MsmBackend::<P>::prepare(backend, bases)
            .map_err(|e| GpuError::Unsupported(e.to_string()))?;
        let got = MsmBackend::<P>::msm(backend, &prepared, 0..n, &scalars)
            .map_err(|e| GpuError::Unsupported(e.to_string()))?;
        if got != want {
            return Ok(Err(format!(
                "whole MSM: device {}, arkworks {}",
                got.into_affine(),
                want.into_affine()
            )));
        }
        let part = MsmBackend::<P>::msm(backend, &prepared, lo..hi, &scalars[lo..hi])
            .map_err(|e| GpuError::Unsupported(e.to_string()))?;
        if part != want_part {
            return Ok(Err(format!("MSM over {lo}..{hi} differs from arkworks")));
        }
        Ok(Ok(()))
    })
}

/// The exceptional cases of point addition, each forced: a bucket holding `P` twice (its
/// running sum meets `P` again: doubling), `P` and `-P` (opposite: infinity), infinity
/// among the bases, all scalars zero, all `-1`, and everything at once in random order.
fn msm_edge_check(backend: &GpuBackend, rng: &mut ChaCha20Rng) -> Check {
    let five = Fr::from(5u64);
    let g1 = random_points::<ark_bn254::g1::Config>(5, rng);
    let g2 = random_points::<ark_bn254::g2::Config>(3, rng);
    let (p, q) = (g1[0], g2[0]);
    let inf1 = G1Affine::identity();
    let mixed: Vec<G1Affine> = [g1.clone(), vec![inf1, p, p, -p, p, inf1]].concat();
    let g1_cases: Vec<(&str, Vec<G1Affine>, Vec<Fr>)> = vec![
        ("P twice in one bucket", vec![p, p], vec![five, five]),
        (
            "P four times in one bucket",
            vec![p; 4],
            vec![Fr::from(3u64); 4],
        ),
        ("P and -P in one bucket", vec![p, -p], vec![five, five]),
        ("infinity and P", vec![inf1, p], vec![five, five]),
        ("only infinity", vec![inf1, inf1], vec![five, -Fr::ONE]),
        (
            "all scalars zero",
            mixed.clone(),
            vec![Fr::ZERO; mixed.len()],
        ),
        ("all scalars -1", mixed.clone(), vec![-Fr::ONE; mixed.len()]),
        (
            "equal scalars, mixed bases",
            mixed.clone(),
            vec![five; mixed.len()],
        ),
        (
            "random scalars, mixed bases",
            mixed.clone(),
            (0..mixed.len()).map(|_| Fr::rand(rng)).collect(),
        ),
    ];
    let inf2 = G2Affine::identity();
    let g2_cases: Vec<(&str, Vec<G2Affine>, Vec<Fr>)> = vec![
        ("P twice in one bucket", vec![q, q], vec![five, five]),
        ("P and -P in one bucket", vec![q, -q], vec![five, five]),
        (
            "infinity and P",
            vec![inf2, q, g2[1]],
            vec![five, five, -Fr::ONE],
        ),
    ];
    timed(
        "msm edge cases (doubling, opposite points, infinity, zero scalars)".into(),
        || match cases_agree(backend, g1_cases)? {
            Ok(()) => cases_agree(backend, g2_cases),
            failed => Ok(failed),
        },
    )
}

/// A named MSM: what it checks, its bases, its scalars.
type MsmCase<'a, P> = (&'a str, Vec<Affine<P>>, Vec<Fr>);

/// Each MSM on the device against arkworks; the first that differs, by name.
fn cases_agree<P: GpuCurve>(
    backend: &GpuBackend,
    cases: Vec<MsmCase<'_, P>>,
) -> Result<Result<(), String>, GpuError>
where
    Projective<P>: VariableBaseMSM<MulBase = Affine<P>, ScalarField = Fr>,
    GpuBackend: MsmBackend<P>,
{
    let err = |e: pulse_prover::BackendError| GpuError::Unsupported(e.to_string());
    for (what, bases, scalars) in cases {
        let want: Projective<P> = VariableBaseMSM::msm(&bases, &scalars).unwrap_or_default();
        let n = bases.len();
        let prepared = MsmBackend::<P>::prepare(backend, bases).map_err(err)?;
        let got = MsmBackend::<P>::msm(backend, &prepared, 0..n, &scalars).map_err(err)?;
        if got != want {
            return Ok(Err(format!(
                "{}, {what}: device and arkworks differ",
                P::PREFIX
            )));
        }
    }
    Ok(Ok(()))
}

/// Scalars that pile into few buckets, as real witnesses do, so that the balanced bucket
/// sums split them (see `buckets`): one bucket of exactly the cap (16 at n = 16), one over
/// it (n = 17), all ones and all equal at n = 5000 (a bucket over cap², three levels), and
/// a witness-like mix (60 % zero, 30 % one, 10 % random); G2 with all ones.
fn msm_skew_check(backend: &GpuBackend, rng: &mut ChaCha20Rng) -> Check {
    let three = Fr::from(3u64);
    let big = random_points::<ark_bn254::g1::Config>(5000, rng);
    let witness_like: Vec<Fr> = (0..5000)
        .map(|_| match rng.gen_range(0..10) {
            0..=5 => Fr::ZERO,
            6..=8 => Fr::ONE,
            _ => Fr::rand(rng),
        })
        .collect();
    let equal = Fr::rand(rng);
    let g1_cases: Vec<(&str, Vec<G1Affine>, Vec<Fr>)> = vec![
        (
            "16 points in one bucket",
            big[..16].to_vec(),
            vec![three; 16],
        ),
        (
            "17 points in one bucket",
            big[..17].to_vec(),
            vec![three; 17],
        ),
        ("all scalars one", big.clone(), vec![Fr::ONE; 5000]),
        ("all scalars equal", big.clone(), vec![equal; 5000]),
        ("witness-like scalars", big, witness_like),
    ];
    let g2 = random_points::<ark_bn254::g2::Config>(700, rng);
    timed(
        "msm skewed scalars (buckets split across threads)".into(),
        || {
            let ones = vec![Fr::ONE; g2.len()];
            match cases_agree(backend, g1_cases)? {
                Ok(()) => cases_agree(backend, vec![("all scalars one", g2, ones)]),
                failed => Ok(failed),
            }
        },
    )
}

/// The three MSMs over one assignment with the scalar work shared (one sort, three sums),
/// against arkworks: edge scalars, and among the bases infinity, a repeated point and its
/// negation; sizes 0, 1 and non-powers of two, and a sub-range.
fn assignment_check(backend: &GpuBackend, n: usize, rng: &mut ChaCha20Rng) -> Check {
    let mut a = random_points::<ark_bn254::g1::Config>(n, rng);
    let mut b1 = random_points::<ark_bn254::g1::Config>(n, rng);
    let b2 = random_points::<ark_bn254::g2::Config>(n, rng);
    if n >= 4 {
        a[1] = G1Affine::identity();
        a[2] = a[3];
        b1[2] = -b1[3];
    }
    let scalars = test_scalars(n, rng);
    let (lo, hi) = (n / 3, n - n / 4);
    let want = |lo: usize, hi: usize| {
        (
            G1Projective::msm(&a[lo..hi], &scalars[lo..hi]).unwrap_or_default(),
            G1Projective::msm(&b1[lo..hi], &scalars[lo..hi]).unwrap_or_default(),
            G2Projective::msm(&b2[lo..hi], &scalars[lo..hi]).unwrap_or_default(),
        )
    };
    let (whole, part) = (want(0, n), want(lo, hi));
    timed(
        format!("msm over an assignment n={n} (A, B in G1 and G2, one sort)"),
        || {
            let err = |e: pulse_prover::BackendError| GpuError::Unsupported(e.to_string());
            let pa = MsmBackend::<ark_bn254::g1::Config>::prepare(backend, a).map_err(err)?;
            let pb1 = MsmBackend::<ark_bn254::g1::Config>::prepare(backend, b1).map_err(err)?;
            let pb2 = MsmBackend::<ark_bn254::g2::Config>::prepare(backend, b2).map_err(err)?;
            for ((lo, hi), want) in [((0, n), whole), ((lo, hi), part)] {
                let got = pulse_prover::Backend::msm_assignment(
                    backend,
                    &pa,
                    &pb1,
                    &pb2,
                    lo..hi,
                    &scalars[lo..hi],
                )
                .map_err(err)?;
                if (got.a, got.b_g1, got.b_g2) != want {
                    return Ok(Err(format!(
                        "over {lo}..{hi}: A {}, B₁ {}, B₂ {} (equal to arkworks)",
                        got.a == want.0,
                        got.b_g1 == want.1,
                        got.b_g2 == want.2
                    )));
                }
            }
            Ok(Ok(()))
        },
    )
}

/// Sizes the kernels must refuse or treat as empty: an NTT of 0 or 12 elements is refused
/// (not a power of two) as the CPU backend refuses it; an MSM of no scalars is zero.
fn size_edge_check(backend: &GpuBackend, rng: &mut ChaCha20Rng) -> Check {
    let bases = random_points::<ark_bn254::g1::Config>(3, rng);
    timed(
        "sizes 0 and non-powers of two (NTT refused, empty MSM)".into(),
        || {
            let err = |e: pulse_prover::BackendError| GpuError::Unsupported(e.to_string());
            for len in [0usize, 12] {
                let mut v = vec![Fr::ONE; len];
                let got = backend.ntt(&mut v);
                let want = CpuBackend::new().ntt(&mut vec![Fr::ONE; len]);
                if got.is_ok() || got != want {
                    return Ok(Err(format!(
                        "NTT of {len}: device {got:?}, CPU backend {want:?}"
                    )));
                }
            }
            let prepared =
                MsmBackend::<ark_bn254::g1::Config>::prepare(backend, bases).map_err(err)?;
            let empty = MsmBackend::<ark_bn254::g1::Config>::msm(backend, &prepared, 1..1, &[])
                .map_err(err)?;
            if empty != G1Projective::default() {
                return Ok(Err("an MSM of no scalars is not zero".into()));
            }
            Ok(Ok(()))
        },
    )
}

fn ntt_check(backend: &GpuBackend, log: u32, rng: &mut ChaCha20Rng) -> Check {
    let n = 1usize << log;
    let mut values: Vec<Fr> = (0..n).map(|_| Fr::rand(rng)).collect();
    // Edge values among the random ones: 0, 1 and r - 1.
    for (i, v) in [Fr::ZERO, Fr::ONE, -Fr::ONE].into_iter().enumerate() {
        if let Some(x) = values.get_mut(i * n / 3) {
            *x = v;
        }
    }
    let shift = Fr::GENERATOR;
    let cpu = CpuBackend::new();
    timed(
        format!("ntt n=2^{log} (forward, inverse, coset, round trips)"),
        || {
            let err = |e: pulse_prover::BackendError| GpuError::Unsupported(e.to_string());
            let mut want = values.clone();
            let mut got = values.clone();
            cpu.ntt(&mut want).map_err(err)?;
            backend.ntt(&mut got).map_err(err)?;
            if got != want {
                return Ok(Err("forward NTT differs from the CPU backend".into()));
            }
            backend.intt(&mut got).map_err(err)?;
            if got != values {
                return Ok(Err("inverse NTT does not return the input".into()));
            }
            let mut want = values.clone();
            cpu.coset_ntt(&mut want, shift).map_err(err)?;
            backend.coset_ntt(&mut got, shift).map_err(err)?;
            if got != want {
                return Ok(Err("coset NTT differs from the CPU backend".into()));
            }
            backend.coset_intt(&mut got, shift).map_err(err)?;
            if got != values {
                return Ok(Err("inverse coset NTT does not return the input".into()));
            }
            let mut zeros = vec![Fr::ZERO; n];
            backend.ntt(&mut zeros).map_err(err)?;
            if zeros.iter().any(|z| *z != Fr::ZERO) {
                return Ok(Err("the NTT of zeros is not zero".into()));
            }
            Ok(Ok(()))
        },
    )
}

fn quotient_check(backend: &GpuBackend, log: u32, rng: &mut ChaCha20Rng) -> Check {
    let n = 1usize << log;
    let mut draw = || (0..n).map(|_| Fr::rand(rng)).collect::<Vec<Fr>>();
    let (a, b, c) = (draw(), draw(), draw());
    let g = Fr::GENERATOR;
    let z_inv = (g.pow([n as u64]) - Fr::ONE).inverse().unwrap_or(Fr::ONE);
    let cpu = CpuBackend::new();
    timed(format!("groth16 quotient n=2^{log}"), || {
        let err = |e: pulse_prover::BackendError| GpuError::Unsupported(e.to_string());
        let mut want = a.clone();
        let (mut wb, mut wc) = (b.clone(), c.clone());
        for v in [&mut want, &mut wb, &mut wc] {
            cpu.intt(v).map_err(err)?;
            cpu.coset_ntt(v, g).map_err(err)?;
        }
        for i in 0..n {
            want[i] = (want[i] * wb[i] - wc[i]) * z_inv;
        }
        cpu.coset_intt(&mut want, g).map_err(err)?;
        let mut got = a.clone();
        backend.quotient_on_device(&mut got, &b, &c, g, z_inv)?;
        if got != want {
            return Ok(Err("the quotient differs from the CPU backend's".into()));
        }
        Ok(Ok(()))
    })
}
