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
