//! NVRTC compiles Pulse's kernel program cleanly for the GPUs the cluster runs on. No GPU is
//! needed, only NVRTC, which `scripts/deps` installs: without it these tests fail, they do not
//! skip, since a program that no longer compiles would otherwise go unnoticed until a
//! hospital's worker tried to open its GPU.

use std::time::Instant;

use pulse_gpu::cuda::{self, Compiled};
use pulse_gpu::{GpuError, source};

/// Ampere (A100), as PTX, and Hopper (H100, H200), through to a CUBIN. One CUBIN is enough
/// to know that ptxas takes the program (each takes about two minutes of a core here);
/// `scripts/gpu-check --package` builds every architecture's.
const ARCHS: [&str; 2] = ["compute_80", "sm_90"];

fn compile(source: &str, arch: &str) -> Result<Compiled, GpuError> {
    match cuda::compile(source, arch) {
        Err(GpuError::Unavailable { reason, .. }) => panic!(
            "{reason}. Run scripts/deps, then source the tools.env it writes, which puts \
             NVRTC's lib/ on LD_LIBRARY_PATH (scripts/test does both)"
        ),
        other => other,
    }
}

fn check(arch: &str) {
    let program = source::program();
    let started = Instant::now();
    let compiled = compile(&program, arch).unwrap_or_else(|e| panic!("{arch}: {e}"));
    eprintln!(
        "{arch}: NVRTC compiled Pulse's program in {:.2?} ({} bytes of PTX, {} of CUBIN)",
        started.elapsed(),
        compiled.ptx.len(),
        compiled.cubin.len()
    );
    assert!(
        !compiled.log.to_lowercase().contains("warning"),
        "{arch}: NVRTC warned about Pulse's kernels:\n{}",
        compiled.log
    );
    let missing: Vec<&str> = source::KERNELS
        .iter()
        .copied()
        .filter(|name| !compiled.ptx.contains(&format!(".entry {name}(")))
        .collect();
    assert!(missing.is_empty(), "{arch}: no PTX entry for {missing:?}");
    if arch.starts_with("sm_") {
        assert!(
            compiled.cubin.starts_with(b"\x7fELF"),
            "{arch}: NVRTC's CUBIN is not an ELF image"
        );
    } else {
        assert!(compiled.cubin.is_empty(), "{arch}: PTX only");
    }
}

#[test]
fn the_program_compiles_cleanly_to_ptx_for_compute_80() {
    check(ARCHS[0]);
}

#[test]
fn the_program_compiles_cleanly_for_sm_90() {
    check(ARCHS[1]);
}

#[test]
fn a_rejected_program_returns_the_compiler_log() {
    match compile(
        "extern \"C\" __global__ void k() { undeclared = 1; }",
        ARCHS[0],
    ) {
        Err(GpuError::Build { log, .. }) => assert!(log.contains("undeclared"), "log: {log}"),
        other => panic!("expected a build error, got {other:?}"),
    }
}

#[test]
fn nvrtc_reports_a_cuda_12_version() {
    match cuda::nvrtc_version() {
        Ok((major, minor)) => assert!(major >= 12, "NVRTC {major}.{minor} is older than CUDA 12"),
        Err(e) => panic!("{e}; run scripts/deps"),
    }
}
