//! Differential tests of the CPU backend against naive implementations: MSM against
//! `Σ sᵢ·Pᵢ` with arkworks' scalar multiplication, NTTs against the O(n²) DFT.

use ark_bn254::{Fq, Fr, G1Affine, G1Projective, G2Affine, G2Projective, g1};
use ark_ec::scalar_mul::glv::GLVConfig;
use ark_ec::short_weierstrass::{Affine, Projective, SWCurveConfig};
use ark_ec::{AffineRepr, CurveGroup, PrimeGroup};
use ark_ff::{FftField, Field, One, PrimeField, UniformRand, Zero};
use ark_poly::{EvaluationDomain, Radix2EvaluationDomain};
use pulse_prover::cpu::msm::{
    GLV_A1, GLV_A2, GLV_B1, GLV_B2, GROUP, PointTable, batch_invert, glv_decompose,
    glv_endomorphism, glv_endomorphism_g2, msm_glv, msm_glv_tuned, msm_glv_with_window,
    msm_with_window,
};
use pulse_prover::{BackendError, CpuBackend, MsmBackend, NttBackend};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

fn naive_msm<P: SWCurveConfig>(bases: &[Affine<P>], scalars: &[P::ScalarField]) -> Projective<P> {
    bases.iter().zip(scalars).map(|(b, s)| *b * s).sum()
}

fn random_g1(n: usize, r: &mut ChaCha20Rng) -> Vec<G1Affine> {
    let v: Vec<G1Projective> = (0..n).map(|_| G1Projective::rand(r)).collect();
    G1Projective::normalize_batch(&v)
}

fn random_scalars(n: usize, r: &mut ChaCha20Rng) -> Vec<Fr> {
    (0..n).map(|_| Fr::rand(r)).collect()
}

fn cpu_msm<P: SWCurveConfig>(bases: &[Affine<P>], scalars: &[P::ScalarField]) -> Projective<P>
where
    CpuBackend: MsmBackend<P>,
{
    let b = CpuBackend::new();
    let prepared = b.prepare(bases.to_vec()).expect("prepare");
    b.msm(&prepared, 0..bases.len(), scalars).expect("msm")
}

#[test]
fn g1_msm_matches_naive_on_random_inputs() {
    let mut r = rng(1);
    for n in [1usize, 2, 3, 7, 31, 100, 257, 1000, 3001] {
        let bases = random_g1(n, &mut r);
        let scalars = random_scalars(n, &mut r);
        assert_eq!(
            cpu_msm(&bases, &scalars),
            naive_msm(&bases, &scalars),
            "n = {n}"
        );
    }
}

#[test]
fn g2_msm_matches_naive_on_random_inputs() {
    let mut r = rng(2);
    for n in [1usize, 5, 64, 300] {
        let v: Vec<G2Projective> = (0..n).map(|_| G2Projective::rand(&mut r)).collect();
        let bases = G2Projective::normalize_batch(&v);
        let scalars = random_scalars(n, &mut r);
        assert_eq!(
            cpu_msm(&bases, &scalars),
            naive_msm(&bases, &scalars),
            "n = {n}"
        );
    }
}

#[test]
fn msm_of_nothing_is_zero() {
    let b = CpuBackend::new();
    let prepared = MsmBackend::<g1::Config>::prepare(&b, Vec::new()).expect("prepare");
    assert!(
        MsmBackend::<g1::Config>::msm(&b, &prepared, 0..0, &[])
            .expect("msm")
            .is_zero()
    );
}

#[test]
fn msm_edge_scalars_and_bases() {
    let mut r = rng(3);
    let g = G1Affine::generator();
    let p = random_g1(1, &mut r)[0];
    let minus_one = -Fr::one();
    let half = Fr::from(2u64).inverse().expect("2 is invertible");
    let mut bases = vec![
        g,
        p,
        p,
        p,
        G1Affine::zero(),
        g,
        p,
        (-p.into_group()).into_affine(),
        p,
        p,
    ];
    let mut scalars = vec![
        Fr::zero(),
        Fr::one(),
        minus_one,
        Fr::from(5u64),
        Fr::rand(&mut r),
        minus_one,
        half,
        half,
        Fr::from(5u64),
        Fr::from(5u64),
    ];
    // Many copies of one base with equal and opposite scalars: every bucket sees
    // doublings and cancellations.
    for i in 0..200u64 {
        bases.push(p);
        scalars.push(if i % 2 == 0 {
            Fr::from(i)
        } else {
            -Fr::from(i - 1)
        });
        bases.push(p);
        scalars.push(Fr::from(7u64));
    }
    let expect = naive_msm(&bases, &scalars);
    assert_eq!(cpu_msm(&bases, &scalars), expect);
    for c in 2..=16 {
        assert_eq!(msm_with_window(&bases, &scalars, c), expect, "window {c}");
    }
    // All zero scalars, all infinity bases, the largest scalar alone.
    assert!(cpu_msm(&bases, &vec![Fr::zero(); bases.len()]).is_zero());
    let inf = vec![G1Affine::zero(); 50];
    assert!(cpu_msm(&inf, &random_scalars(50, &mut r)).is_zero());
    assert_eq!(cpu_msm(&[g], &[minus_one]), -G1Projective::generator());
    assert_eq!(
        cpu_msm(&[g, g], &[minus_one, Fr::one()]),
        G1Projective::zero()
    );
}

#[test]
fn msm_every_window_size_matches_naive() {
    let mut r = rng(4);
    let bases = random_g1(700, &mut r);
    // Small scalars (bits, bytes, negatives) as witnesses have, and full-size ones.
    let mut scalars = random_scalars(700, &mut r);
    for (i, s) in scalars.iter_mut().enumerate().take(400) {
        *s = match i % 4 {
            0 => Fr::from((i % 2) as u64),
            1 => Fr::from(i as u64),
            2 => -Fr::from(i as u64),
            _ => *s,
        };
    }
    let expect = naive_msm(&bases, &scalars);
    for c in 2..=20 {
        assert_eq!(msm_with_window(&bases, &scalars, c), expect, "window {c}");
    }
}

#[test]
fn g2_msm_edge_cases() {
    let mut r = rng(5);
    let q = G2Projective::rand(&mut r).into_affine();
    let bases = vec![q, q, G2Affine::zero(), q, G2Affine::generator()];
    let scalars = vec![
        Fr::one(),
        -Fr::one(),
        Fr::rand(&mut r),
        Fr::from(3u64),
        -Fr::one(),
    ];
    assert_eq!(cpu_msm(&bases, &scalars), naive_msm(&bases, &scalars));
}

#[test]
fn sharded_msm_sums_to_the_whole() {
    let mut r = rng(6);
    let n = 1500;
    let bases = random_g1(n, &mut r);
    let scalars = random_scalars(n, &mut r);
    let b = CpuBackend::new();
    let prepared = b.prepare(bases.clone()).expect("prepare");
    let whole = b.msm(&prepared, 0..n, &scalars).expect("msm");
    assert_eq!(whole, naive_msm(&bases, &scalars));
    for cuts in [[0, 1, 2], [0, 500, 1000], [0, 0, n], [0, 777, 778]] {
        let mut ranges: Vec<_> = cuts.windows(2).map(|w| w[0]..w[1]).collect();
        ranges.push(cuts[2]..n);
        let sum: G1Projective = ranges
            .into_iter()
            .map(|rg| b.msm(&prepared, rg.clone(), &scalars[rg]).expect("part"))
            .sum();
        assert_eq!(sum, whole, "cuts {cuts:?}");
    }
}

#[test]
fn msm_rejects_bad_requests() {
    let mut r = rng(7);
    let bases = random_g1(10, &mut r);
    let b = CpuBackend::new();
    let prepared = MsmBackend::<g1::Config>::prepare(&b, bases).expect("prepare");
    let s = random_scalars(10, &mut r);
    assert_eq!(
        MsmBackend::<g1::Config>::msm(&b, &prepared, 5..11, &s[..6]),
        Err(BackendError::RangeOutOfBounds {
            start: 5,
            end: 11,
            len: 10
        })
    );
    assert_eq!(
        MsmBackend::<g1::Config>::msm(&b, &prepared, 0..10, &s[..9]),
        Err(BackendError::LengthMismatch {
            scalars: 9,
            bases: 10
        })
    );
    #[allow(clippy::reversed_empty_ranges)]
    let backwards = 6..5;
    assert!(MsmBackend::<g1::Config>::msm(&b, &prepared, backwards, &[]).is_err());
}

#[test]
fn batch_inversion_matches_one_by_one() {
    let mut r = rng(8);
    let mut v = random_scalars(100, &mut r);
    v[0] = Fr::zero();
    v[17] = Fr::zero();
    v[99] = Fr::zero();
    let expect: Vec<Fr> = v
        .iter()
        .map(|x| x.inverse().unwrap_or(Fr::zero()))
        .collect();
    batch_invert(&mut v);
    assert_eq!(v, expect);
    let mut empty: Vec<Fr> = Vec::new();
    batch_invert(&mut empty);
}

/// `Σ_i a_i·(shift·ω^j)^i` for every j.
fn naive_dft(a: &[Fr], shift: Fr) -> Vec<Fr> {
    let n = a.len();
    let omega = Fr::get_root_of_unity(n as u64).expect("root");
    (0..n)
        .map(|j| {
            let x = shift * omega.pow([j as u64]);
            a.iter().rev().fold(Fr::zero(), |acc, c| acc * x + c)
        })
        .collect()
}

#[test]
fn ntt_matches_naive_dft() {
    let mut r = rng(9);
    let b = CpuBackend::new();
    let g = Fr::GENERATOR;
    for log in 0..=8 {
        let n = 1usize << log;
        let a = random_scalars(n, &mut r);
        let mut v = a.clone();
        b.ntt(&mut v).expect("ntt");
        assert_eq!(v, naive_dft(&a, Fr::one()), "ntt n = {n}");
        let mut v = a.clone();
        b.coset_ntt(&mut v, g).expect("coset ntt");
        assert_eq!(v, naive_dft(&a, g), "coset ntt n = {n}");
        let mut v = naive_dft(&a, Fr::one());
        b.intt(&mut v).expect("intt");
        assert_eq!(v, a, "intt n = {n}");
        let mut v = naive_dft(&a, g);
        b.coset_intt(&mut v, g).expect("coset intt");
        assert_eq!(v, a, "coset intt n = {n}");
    }
}

#[test]
fn ntt_edge_values() {
    let b = CpuBackend::new();
    for n in [1usize, 2, 16] {
        let mut zeros = vec![Fr::zero(); n];
        b.ntt(&mut zeros).expect("ntt");
        assert!(zeros.iter().all(Zero::is_zero));
        // The constant polynomial 1 evaluates to 1 everywhere; a delta at the last
        // coefficient (r - 1 times x^(n-1)) to -ω^{j(n-1)}.
        let mut one = vec![Fr::zero(); n];
        one[0] = Fr::one();
        b.ntt(&mut one).expect("ntt");
        assert!(one.iter().all(|x| x.is_one()));
        let mut last = vec![Fr::zero(); n];
        last[n - 1] = -Fr::one();
        let expect = naive_dft(&last, Fr::one());
        b.ntt(&mut last).expect("ntt");
        assert_eq!(last, expect);
    }
}

#[test]
fn ntt_round_trips_and_matches_ark_poly() {
    let mut r = rng(10);
    let b = CpuBackend::new();
    let shift = Fr::rand(&mut r);
    for log in [10u32, 12, 14] {
        let n = 1usize << log;
        let a = random_scalars(n, &mut r);
        let domain = Radix2EvaluationDomain::<Fr>::new(n).expect("domain");
        let mut v = a.clone();
        b.ntt(&mut v).expect("ntt");
        assert_eq!(v, domain.fft(&a), "vs ark-poly, n = {n}");
        b.intt(&mut v).expect("intt");
        assert_eq!(v, a, "round trip n = {n}");
        b.coset_ntt(&mut v, shift).expect("coset ntt");
        let coset = domain.get_coset(shift).expect("coset");
        assert_eq!(v, coset.fft(&a), "coset vs ark-poly, n = {n}");
        b.coset_intt(&mut v, shift).expect("coset intt");
        assert_eq!(v, a, "coset round trip n = {n}");
    }
}

#[test]
fn ntt_rejects_bad_sizes_and_shifts() {
    let b = CpuBackend::new();
    for n in [0usize, 3, 6, 100] {
        let mut v = vec![Fr::one(); n];
        assert_eq!(b.ntt(&mut v), Err(BackendError::NotPowerOfTwo(n)));
        assert_eq!(b.intt(&mut v), Err(BackendError::NotPowerOfTwo(n)));
    }
    let mut v = vec![Fr::one(); 4];
    assert_eq!(
        b.coset_ntt(&mut v, Fr::zero()),
        Err(BackendError::ZeroShift)
    );
    assert_eq!(
        b.coset_intt(&mut v, Fr::zero()),
        Err(BackendError::ZeroShift)
    );
}

#[test]
fn g2_and_g1_generators_are_the_curve_generators() {
    // Guards the test helpers: naive MSM of the generator by k is k·G.
    let k = Fr::from(12345u64);
    assert_eq!(
        naive_msm(&[G1Affine::generator()], &[k]),
        G1Projective::generator() * k
    );
    assert_eq!(
        naive_msm(&[G2Affine::generator()], &[k]),
        G2Projective::generator() * k
    );
}

// ----- GLV (Gallant–Lambert–Vanstone, CRYPTO 2001) for G1 -----

/// `a·b` as little-endian 64-bit limbs.
fn wide_mul(a: u128, b: u128) -> [u64; 4] {
    let (a0, a1) = (a as u64 as u128, a >> 64);
    let (b0, b1) = (b as u64 as u128, b >> 64);
    let mut out = [0u64; 4];
    for (i, j, p) in [
        (0, 0, a0 * b0),
        (0, 1, a0 * b1),
        (1, 0, a1 * b0),
        (1, 1, a1 * b1),
    ] {
        let mut carry = p;
        let mut k = i + j;
        while carry != 0 {
            let t = out[k] as u128 + (carry as u64 as u128);
            out[k] = t as u64;
            carry = (carry >> 64) + (t >> 64);
            k += 1;
        }
    }
    out
}

fn add_limbs(a: [u64; 4], b: [u64; 4]) -> [u64; 4] {
    let mut out = [0u64; 4];
    let mut carry = 0u128;
    for i in 0..4 {
        let t = a[i] as u128 + b[i] as u128 + carry;
        out[i] = t as u64;
        carry = t >> 64;
    }
    assert_eq!(carry, 0);
    out
}

fn fr_of(neg: bool, m: u128) -> Fr {
    let v = Fr::from(m);
    if neg { -v } else { v }
}

fn lambda() -> Fr {
    <g1::Config as GLVConfig>::LAMBDA
}

#[test]
fn glv_constants_are_consistent() {
    let lam = lambda();
    // λ and β are primitive cube roots of unity.
    assert_ne!(lam, Fr::one());
    assert_eq!(lam * lam * lam, Fr::one());
    let beta = <g1::Config as GLVConfig>::ENDO_COEFFS[0];
    assert_ne!(beta, Fq::one());
    assert_eq!(beta * beta * beta, Fq::one());
    // φ(P) = λ·P on the generator and on random points; φ(∞) = ∞.
    let g = G1Affine::generator();
    assert_eq!(
        glv_endomorphism(&g).into_group(),
        G1Projective::generator() * lam
    );
    let mut r = rng(20);
    for p in random_g1(5, &mut r) {
        let e = glv_endomorphism(&p);
        assert!(e.is_on_curve());
        assert_eq!(e.into_group(), p * lam);
    }
    assert!(glv_endomorphism(&G1Affine::zero()).is_zero());
    // The basis: A1 - B1·λ ≡ 0, A2 + B2·λ ≡ 0 (mod r), and its determinant is r.
    assert!((Fr::from(GLV_A1) - Fr::from(GLV_B1) * lam).is_zero());
    assert!((Fr::from(GLV_A2) + Fr::from(GLV_B2) * lam).is_zero());
    let det = add_limbs(wide_mul(GLV_A1, GLV_B2), wide_mul(GLV_A2, GLV_B1));
    assert_eq!(det, Fr::MODULUS.0);
}

#[test]
fn glv_decomposition_is_exact_and_short() {
    let lam = lambda();
    let mut r = rng(21);
    let mut ks: Vec<Fr> = random_scalars(2000, &mut r);
    let half = Fr::from(2u64).inverse().expect("2 is invertible");
    for d in 0..4u64 {
        let d = Fr::from(d);
        ks.extend([d, -d, lam + d, lam - d, -lam + d, -lam - d, lam * lam + d]);
        ks.extend([half + d, half - d]);
    }
    for e in [1u32, 63, 64, 126, 127, 128, 129, 200, 252, 253] {
        let p = Fr::from(2u64).pow([e as u64]);
        ks.extend([p, -p, p * lam, p + Fr::one()]);
    }
    for k in ks {
        let ((n1, m1), (n2, m2)) = glv_decompose(&k);
        assert!(m1 < 1 << 126 && m2 < 1 << 126, "k = {k}");
        assert_eq!(fr_of(n1, m1) + fr_of(n2, m2) * lam, k, "k = {k}");
    }
    assert_eq!(glv_decompose(&Fr::zero()), ((false, 0), (false, 0)));
    assert_eq!(glv_decompose(&Fr::one()), ((false, 1), (false, 0)));
    assert_eq!(glv_decompose(&-Fr::one()), ((true, 1), (false, 0)));
}

/// `msm_glv` at every window size and through the backend, against the naive sum.
fn check_glv(bases: &[G1Affine], scalars: &[Fr], windows: std::ops::RangeInclusive<u32>) {
    let expect = naive_msm(bases, scalars);
    assert_eq!(
        msm_glv(bases, glv_endomorphism, scalars),
        expect,
        "n = {}",
        bases.len()
    );
    for c in windows {
        assert_eq!(
            msm_glv_with_window(bases, glv_endomorphism, scalars, c),
            expect,
            "n = {}, window {c}",
            bases.len()
        );
    }
    assert_eq!(cpu_msm(bases, scalars), expect);
}

#[test]
fn glv_msm_matches_naive_on_random_inputs() {
    let mut r = rng(22);
    for n in [1usize, 2, 3, 5, 17, 100, 333, 1025] {
        let bases = random_g1(n, &mut r);
        let scalars = random_scalars(n, &mut r);
        check_glv(&bases, &scalars, 2..=14);
    }
}

#[test]
fn glv_msm_edge_scalars_and_bases() {
    let mut r = rng(23);
    let lam = lambda();
    let g = G1Affine::generator();
    let p = random_g1(1, &mut r)[0];
    let phi_p = glv_endomorphism(&p);
    let neg_p = (-p.into_group()).into_affine();
    let mut bases = Vec::new();
    let mut scalars = Vec::new();
    // Zero, one, r - 1, λ and its neighbours, -λ, λ², on repeated bases, on a base and its
    // negation, on a base and its image under φ (whose GLV halves land in the same
    // buckets as the base's), and on infinity.
    let specials = [
        Fr::zero(),
        Fr::one(),
        -Fr::one(),
        lam,
        lam + Fr::one(),
        lam - Fr::one(),
        -lam,
        -lam + Fr::one(),
        lam * lam,
        Fr::from(2u64).pow([127]),
        Fr::from(2u64).pow([128]),
    ];
    for (i, s) in specials.iter().enumerate() {
        for base in [g, p, p, neg_p, phi_p, G1Affine::zero()] {
            bases.push(base);
            scalars.push(if i % 2 == 0 { *s } else { -*s });
            bases.push(base);
            scalars.push(*s);
        }
    }
    for i in 0..150u64 {
        bases.push(p);
        scalars.push(Fr::from(i) * lam);
        bases.push(phi_p);
        scalars.push(-Fr::from(i));
        bases.push(p);
        scalars.push(Fr::rand(&mut r));
    }
    check_glv(&bases, &scalars, 2..=16);
    // All zero, all infinity, λ·G - φ(G) = 0, single scalars.
    let zeros = vec![Fr::zero(); bases.len()];
    check_glv(&bases, &zeros, 2..=4);
    let inf = vec![G1Affine::zero(); 40];
    check_glv(&inf, &random_scalars(40, &mut r), 2..=4);
    let phi_g = glv_endomorphism(&g);
    check_glv(&[g, phi_g], &[lam, -Fr::one()], 2..=16);
    assert!(cpu_msm(&[g, phi_g], &[lam, -Fr::one()]).is_zero());
    check_glv(&[g], &[-Fr::one()], 2..=16);
    check_glv(&[p], &[-lam], 2..=16);
}

#[test]
fn glv_sharded_msm_sums_to_the_whole() {
    let mut r = rng(24);
    let n = 999;
    let mut bases = random_g1(n, &mut r);
    bases[10] = G1Affine::zero();
    bases[11] = bases[12];
    let mut scalars = random_scalars(n, &mut r);
    scalars[5] = -Fr::one();
    scalars[6] = lambda();
    let b = CpuBackend::new();
    let prepared = MsmBackend::<g1::Config>::prepare(&b, bases.clone()).expect("prepare");
    assert_eq!(prepared.table().len(), n);
    assert_eq!(prepared.table().base(11), prepared.table().base(12));
    let whole = MsmBackend::<g1::Config>::msm(&b, &prepared, 0..n, &scalars).expect("msm");
    assert_eq!(whole, naive_msm(&bases, &scalars));
    for cuts in [
        vec![0, 1, 2, n],
        vec![0, 333, 334, 900, n],
        vec![0, 0, 11, 13, n],
    ] {
        let sum: G1Projective = cuts
            .windows(2)
            .map(|w| {
                MsmBackend::<g1::Config>::msm(&b, &prepared, w[0]..w[1], &scalars[w[0]..w[1]])
                    .expect("part")
            })
            .sum();
        assert_eq!(sum, whole, "cuts {cuts:?}");
    }
}

#[test]
fn glv_on_g2_matches_naive() {
    let lam = lambda();
    let mut r = rng(25);
    let g2 = G2Affine::generator();
    assert_eq!(
        glv_endomorphism_g2(&g2).into_group(),
        G2Projective::generator() * lam
    );
    assert!(glv_endomorphism_g2(&G2Affine::zero()).is_zero());
    let v: Vec<G2Projective> = (0..60).map(|_| G2Projective::rand(&mut r)).collect();
    let mut bases = G2Projective::normalize_batch(&v);
    bases[3] = G2Affine::zero();
    bases[4] = bases[5];
    bases.push(glv_endomorphism_g2(&bases[0]));
    for q in &bases {
        assert_eq!(glv_endomorphism_g2(q).into_group(), *q * lam);
    }
    let mut scalars = random_scalars(bases.len(), &mut r);
    scalars[0] = lam;
    scalars[1] = -Fr::one();
    scalars[2] = Fr::zero();
    scalars[4] = -scalars[5];
    let expect = naive_msm(&bases, &scalars);
    assert_eq!(cpu_msm(&bases, &scalars), expect);
    for c in 2..=10 {
        assert_eq!(
            msm_glv_with_window(&bases, glv_endomorphism_g2, &scalars, c),
            expect,
            "window {c}"
        );
    }
}

#[test]
fn glv_msm_bucket_groups_of_every_size_match_naive() {
    // Buckets are summed in groups of about `group` points; a bucket larger than a group
    // is one on its own. Small windows and small groups put many points in a bucket and
    // cut between buckets everywhere; repeated bases, a base and its negation, and
    // infinity land in the same buckets.
    let mut r = rng(26);
    let n = 600;
    let mut bases = random_g1(n, &mut r);
    let mut scalars = random_scalars(n, &mut r);
    for i in 0..100 {
        bases[i + 100] = bases[i];
        bases[i + 200] = (-bases[i].into_group()).into_affine();
        scalars[i + 200] = scalars[i];
        scalars[i + 300] = Fr::from((i % 3) as u64);
    }
    bases[7] = G1Affine::zero();
    let expect = naive_msm(&bases, &scalars);
    let table = PointTable::with_glv(&bases, glv_endomorphism);
    for c in [2u32, 3, 5, 8, 12] {
        for group in [0usize, 1, 2, 3, 7, 64, 500, GROUP, 10 * GROUP] {
            assert_eq!(
                msm_glv_tuned(&table, 0..n, &scalars, c, group),
                expect,
                "window {c}, group {group}"
            );
        }
    }
    // A range of rows, and a range past the end clamped to the table.
    assert_eq!(
        msm_glv_tuned(&table, 100..350, &scalars[100..350], 6, 5),
        naive_msm(&bases[100..350], &scalars[100..350])
    );
    assert_eq!(
        msm_glv_tuned(&table, 590..700, &scalars[590..], 6, 5),
        naive_msm(&bases[590..], &scalars[590..])
    );
    assert_eq!(table.base(7), Some(G1Affine::zero()));
    assert_eq!(table.base(8), Some(bases[8]));
    assert_eq!(table.base(n), None);
}
