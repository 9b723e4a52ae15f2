//! The kernels for real: the differential self-test on the test device (PoCL in CI; see
//! `common`), and MSMs split into passes by a small memory budget.

mod common;

use ark_bn254::{Fr, G1Affine, G1Projective, G2Affine, G2Projective};
use ark_ec::{CurveGroup, PrimeGroup, VariableBaseMSM};
use ark_ff::UniformRand;
use pulse_gpu::GpuBackend;
use pulse_gpu::msm::Plan;
use pulse_gpu::selftest::{self, Options};
use pulse_prover::MsmBackend;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

use common::backend;

#[test]
fn selftest_passes() {
    let backend = backend();
    let mut lines = Vec::new();
    let summary = selftest::run(&backend, &Options::default(), &mut |c| {
        let line = format!(
            "{} {} ({:.2} s) {}",
            if c.passed { "ok  " } else { "FAIL" },
            c.name,
            c.elapsed.as_secs_f64(),
            c.detail
        );
        eprintln!("{line}");
        lines.push(line);
    });
    assert_eq!(summary.failed, 0, "{}", lines.join("\n"));
    assert!(summary.passed >= 15, "{summary:?}");
}

#[test]
fn msms_too_big_for_the_budget_run_in_passes() {
    let n = 10_000;
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let g1: Vec<G1Affine> = (0..n)
        .map(|_| (G1Projective::generator() * Fr::rand(&mut rng)).into_affine())
        .collect();
    let g2: Vec<G2Affine> = (0..n / 8)
        .map(|_| (G2Projective::generator() * Fr::rand(&mut rng)).into_affine())
        .collect();
    let scalars: Vec<Fr> = (0..n).map(|_| Fr::rand(&mut rng)).collect();
    // Room for the bases and a 4096-scalar pass, not for one pass over all 10,000.
    let bases_bytes = (n * 64 + n / 8 * 128) as u64;
    let limit = bases_bytes + Plan::new(4096).scratch_bytes(192) + 1024;
    assert!(Plan::new(n).scratch_bytes(96) > limit - bases_bytes);
    let gpu = GpuBackend::on(common::device(), Some(limit));
    let p1 = MsmBackend::<ark_bn254::g1::Config>::prepare(&gpu, g1.clone()).expect("g1 bases fit");
    let p2 = MsmBackend::<ark_bn254::g2::Config>::prepare(&gpu, g2.clone()).expect("g2 bases fit");
    let got = MsmBackend::<ark_bn254::g1::Config>::msm(&gpu, &p1, 0..n, &scalars).expect("g1 msm");
    assert_eq!(got, G1Projective::msm(&g1, &scalars).expect("ark msm"));
    let m = n / 8;
    let got =
        MsmBackend::<ark_bn254::g2::Config>::msm(&gpu, &p2, 0..m, &scalars[..m]).expect("g2 msm");
    assert_eq!(got, G2Projective::msm(&g2, &scalars[..m]).expect("ark msm"));
    // A key twenty times larger does not fit beside the two: refused up front, as out of
    // memory.
    let big: Vec<G1Affine> = g1.iter().cycle().take(20 * n).copied().collect();
    let err = MsmBackend::<ark_bn254::g1::Config>::prepare(&gpu, big)
        .err()
        .expect("no room");
    assert!(
        matches!(err, pulse_prover::BackendError::OutOfMemory(_)),
        "{err}"
    );
}

#[test]
fn a_kernel_that_does_not_compile_comes_back_with_the_compilers_log() {
    if common::api() != pulse_gpu::Api::OpenCl {
        return; // The NVRTC side of this is tests/nvrtc.rs.
    }
    let broken = format!(
        "{}\nKERNEL void broken(GLOBAL uint *out) {{ out[0] = undeclared_name; }}\n",
        pulse_gpu::source::program()
    );
    match pulse_gpu::opencl::OpenClDevice::build(0, &broken, &["broken"]) {
        Err(pulse_gpu::GpuError::Build { log, .. }) => {
            assert!(
                log.contains("undeclared_name"),
                "the log names the problem: {log}"
            );
        }
        Err(other) => panic!("expected a build error, got {other}"),
        Ok(_) => panic!("a program with an undeclared name must not build"),
    }
}

/// GLV against the plain digits and arkworks, on the device, in G1 and G2: the scalars
/// that stress the split (0, 1, -1, λ, -λ, λ², 2¹²⁸ ± 1, random) over sizes 1, 2 and
/// non-powers of two, with infinity, a repeated base and its negation among the bases; and
/// a base beside its own φ (λ·P, -λ·P) under scalars whose halves put φ(P) and λ·P in one
/// bucket (doubling) or φ(P) and -λ·P (opposite points).
#[test]
fn glv_msms_agree_with_plain_digits_and_arkworks() {
    use ark_ff::{Field, One, Zero};
    use pulse_gpu::glv;
    use pulse_gpu::msm::{self, GpuCurve, Plan};

    fn check<P: GpuCurve>(
        dev: &dyn pulse_gpu::Device,
        what: &str,
        bases: &[ark_ec::short_weierstrass::Affine<P>],
        scalars: &[Fr],
    ) where
        ark_ec::short_weierstrass::Projective<P>:
            VariableBaseMSM<MulBase = ark_ec::short_weierstrass::Affine<P>, ScalarField = Fr>,
    {
        let want: ark_ec::short_weierstrass::Projective<P> =
            VariableBaseMSM::msm(bases, scalars).expect("same lengths");
        let resident = msm::upload_bases(dev, bases).expect("upload");
        let n = bases.len();
        for (name, plan) in [
            ("glv", Plan::new as fn(usize) -> Plan),
            ("plain", Plan::plain),
        ] {
            let got = msm::msm_with::<P>(dev, &resident, 0..n, scalars, n, plan).expect("msm");
            assert_eq!(got, want, "{} {what}, n = {n}, {name}", P::PREFIX);
        }
    }

    let dev = common::device();
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    let lambda = glv::constants().lambda;
    let two128 = Fr::from(2u64).pow([128u64]);
    let edges = [
        Fr::zero(),
        Fr::one(),
        -Fr::one(),
        lambda,
        -lambda,
        lambda * lambda,
        two128 - Fr::one(),
        two128,
        two128 + Fr::one(),
    ];
    for n in [1usize, 2, 9, 300, 4099] {
        let scalars: Vec<Fr> = (0..n)
            .map(|i| {
                if i % 2 == 0 {
                    edges[(i / 2) % edges.len()]
                } else {
                    Fr::rand(&mut rng)
                }
            })
            .collect();
        let mut g1: Vec<G1Affine> = (0..n)
            .map(|_| (G1Projective::generator() * Fr::rand(&mut rng)).into_affine())
            .collect();
        if n >= 9 {
            g1[3] = G1Affine::identity();
            g1[5] = g1[4];
            g1[7] = -g1[4];
        }
        check(dev.as_ref(), "edge scalars", &g1, &scalars);
        let m = n.min(300);
        let g2: Vec<G2Affine> = (0..m)
            .map(|_| (G2Projective::generator() * Fr::rand(&mut rng)).into_affine())
            .collect();
        check(dev.as_ref(), "edge scalars", &g2, &scalars[..m]);
    }

    // A base beside λ·P. On P, scalar s puts φ(P) in window 0's bucket |d| (d the first
    // digit of s's second half); on ±λ·P, the small scalar |d| (its own first half, whole)
    // puts ±λ·P in the same bucket: with one of the two signs the bucket doubles, with the
    // other it cancels to infinity.
    let plan = Plan::new(2);
    let (s, d) = (1u64..)
        .map(|k| Fr::from(k) * lambda)
        .map(|s| (s, pulse_gpu::buckets::plan_digits(&s, &plan)[1][0]))
        .find(|(_, d)| *d != 0)
        .expect("some multiple of λ has a non-zero first digit");
    let t = Fr::from(u64::from(d.unsigned_abs()));
    assert_eq!(pulse_gpu::buckets::plan_digits(&t, &plan)[0][0], d.abs());
    let five = Fr::from(5u64);
    let p = (G1Projective::generator() * Fr::rand(&mut rng)).into_affine();
    let lp = (p * lambda).into_affine();
    check(dev.as_ref(), "φ(P) meets λP", &[p, lp], &[s, t]);
    check(dev.as_ref(), "φ(P) meets -λP", &[p, -lp], &[s, t]);
    let q = (G2Projective::generator() * Fr::rand(&mut rng)).into_affine();
    let lq = (q * lambda).into_affine();
    check(dev.as_ref(), "φ(Q) meets λQ", &[q, lq], &[s, t]);
    check(dev.as_ref(), "φ(Q) meets -λQ", &[q, -lq], &[s, t]);
    // And both together with P's first half in play: 5λ + 5 on P, 5 on λ·P.
    check(
        dev.as_ref(),
        "P, φ(P) and λP",
        &[p, lp, -lp],
        &[five * lambda + five, five, five],
    );
}

/// The NTT through local memory against the register passes and the CPU backend, forward
/// and inverse, at every size to 2^14 and at 2^16 (passes of 10 and 6 stages), with 0, 1 and
/// r - 1 among the values and an all-zero vector.
#[test]
fn local_memory_ntt_agrees_with_register_passes_and_the_cpu() {
    use ark_ff::{One, Zero};
    use pulse_gpu::ntt::{DeviceVec, Passes, Tables};
    use pulse_prover::{CpuBackend, NttBackend};

    let dev = common::device();
    let tables = Tables::default();
    let mut rng = ChaCha20Rng::seed_from_u64(12);
    let cpu = CpuBackend::new();
    for log in (0..=14).chain([16]) {
        let n = 1usize << log;
        let mut values: Vec<Fr> = (0..n).map(|_| Fr::rand(&mut rng)).collect();
        for (i, v) in [Fr::zero(), Fr::one(), -Fr::one()].into_iter().enumerate() {
            values[(i * n / 3).min(n - 1)] = v;
        }
        for input in [values.clone(), vec![Fr::zero(); n]] {
            let mut want = input.clone();
            cpu.ntt(&mut want).expect("cpu ntt");
            for passes in [Passes::Local, Passes::Registers] {
                let v = DeviceVec::upload(dev.as_ref(), &input).expect("upload");
                v.transform_with(dev.as_ref(), &tables, false, passes)
                    .expect("ntt");
                let mut got = vec![Fr::zero(); n];
                v.download(dev.as_ref(), &mut got).expect("download");
                let first_difference =
                    |a: &[Fr], b: &[Fr]| a.iter().zip(b).position(|(x, y)| x != y);
                assert_eq!(
                    first_difference(&got, &want),
                    None,
                    "forward, 2^{log}, {passes:?}"
                );
                v.transform_with(dev.as_ref(), &tables, true, passes)
                    .expect("intt");
                v.download(dev.as_ref(), &mut got).expect("download");
                assert_eq!(
                    first_difference(&got, &input),
                    None,
                    "round trip, 2^{log}, {passes:?}"
                );
            }
        }
    }
}

/// The device's GLV digits, read back, against the host model (`buckets::plan_digits`,
/// built on `glv::split`) for 20,000 scalars: random, small, near r, near 2¹²⁸ and
/// multiples of λ, at three window widths (n = 1, 5,000 and 20,000 give c = 4, 10, 12).
#[test]
fn device_glv_digits_match_the_host_model() {
    use ark_ff::{Field, One, Zero};
    use pulse_gpu::buckets::plan_digits;
    use pulse_gpu::msm::{Plan, to_device};
    use pulse_gpu::{Arg, glv};

    const SIGN: u32 = 0x8000_0000;
    let dev = common::device();
    let mut rng = ChaCha20Rng::seed_from_u64(13);
    let lambda = glv::constants().lambda;
    let two128 = Fr::from(2u64).pow([128u64]);
    let all: Vec<Fr> = (0..20_000u64)
        .map(|i| match i % 6 {
            0 => Fr::from(i),
            1 => -Fr::from(i),
            2 => two128 + Fr::from(i) - Fr::from(10_000u64),
            3 => lambda * Fr::from(i),
            4 => Fr::one() - lambda * Fr::from(i),
            _ => Fr::rand(&mut rng),
        })
        .chain([Fr::zero(), Fr::one(), -Fr::one()])
        .collect();
    for n in [1usize, 5_000, 20_000] {
        let scalars = &all[..n];
        let plan = Plan::new(n);
        let entries = plan.n as usize;
        let windows = plan.windows as usize;
        let input = dev.alloc(32 * n).expect("alloc");
        dev.write(&input, 0, &to_device(scalars)).expect("write");
        let digits = dev.alloc(4 * windows * entries).expect("alloc");
        dev.launch(
            "msm_digits_glv",
            n,
            &[
                Arg::Buf(&input),
                Arg::Buf(&digits),
                Arg::U32(n as u32),
                Arg::U32(plan.c),
                Arg::U32(plan.windows),
            ],
        )
        .expect("launch");
        let mut bytes = vec![0u8; 4 * windows * entries];
        dev.read(&digits, 0, &mut bytes).expect("read");
        let word = |k: usize| u32::from_le_bytes(bytes[4 * k..4 * k + 4].try_into().expect("4"));
        for (i, s) in scalars.iter().enumerate() {
            for (half, row) in plan_digits(s, &plan).iter().enumerate() {
                for (w, d) in row.iter().enumerate() {
                    let want = if *d < 0 {
                        d.unsigned_abs() | SIGN
                    } else {
                        *d as u32
                    };
                    let got = word(w * entries + half * n + i);
                    assert_eq!(
                        got, want,
                        "scalar {i} ({s}), half {half}, window {w}, c = {}",
                        plan.c
                    );
                }
            }
        }
    }
}
