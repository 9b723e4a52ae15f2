//! Pulse's prover kernels and Groth16 prover against arkworks, in the same process on the
//! same inputs, alternating runs and reporting medians.
//!
//! - [`msm`]: G1 MSM, [`pulse_prover::CpuBackend`] against `ark_ec::VariableBaseMSM::msm`;
//!   the two results are checked equal.
//! - [`ntt`]: forward NTT against ark-poly's `Radix2EvaluationDomain::fft_in_place`; the
//!   outputs are checked equal.
//! - [`prove`]: a chunk-circuit proof, Pulse's prover against ark-groth16's
//!   `create_random_proof_with_reduction`; both proofs are verified.
//! - [`prove_memory`]: the peak resident memory of one proof by one prover. The caller
//!   runs it in a fresh child process per prover; inside, after setup, the peak (`VmHWM`)
//!   is reset to the current resident set by writing `5` to `/proc/self/clear_refs`, so
//!   the peak read after the proof is the proof's own (plus the key and process baseline,
//!   which are the same for both provers and reported separately).
//!
//! With a GPU, [`msm_gpu`], [`ntt_gpu`] and [`prove_gpu`] measure `pulse_gpu::GpuBackend`
//! on one device against Pulse's CPU backend in the same way: same inputs, alternating
//! runs, medians, the results checked equal (the two provers use the same randomisers, so
//! their proofs are equal too), and `ratio = gpu / cpu`.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use ark_bn254::{Bn254, Fr, G1Affine, G1Projective};
use ark_ec::{CurveGroup, VariableBaseMSM};
use ark_groth16::{Groth16, prepare_verifying_key};
use ark_poly::{EvaluationDomain, Radix2EvaluationDomain};
use ark_std::UniformRand;
use pulse_circuits::artifacts::{self, CircuitParams};
use pulse_circuits::circuit::ChunkCircuit;
use pulse_gpu::msm::{self, Plan};
use pulse_gpu::ntt::{DeviceVec, Passes};
use pulse_gpu::{Device, GpuBackend};
use pulse_prover::cpu::msm::{GLV_BITS, window_bits};
use pulse_prover::{CpuBackend, MsmBackend, NttBackend, Prover, StageTimings};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde::Serialize;

use crate::statement::BenchError;

pub(crate) fn werr(e: impl std::fmt::Display) -> BenchError {
    BenchError::Workload(e.to_string())
}

pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// Which chunk witness a proof benchmark proves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Witness {
    /// A full chunk of valid transactions of every kind over a populated state
    /// ([`pulse_circuits::sample::mixed_chunk`]): what workers prove.
    Real,
    /// Every slot a no-op: mostly-zero scalars, cheaper MSMs; the old benchmark's witness.
    Padding,
}

impl Witness {
    /// `real` or `padding`.
    ///
    /// # Errors
    /// Any other name.
    pub fn parse(name: &str) -> Result<Self, BenchError> {
        match name {
            "real" => Ok(Self::Real),
            "padding" => Ok(Self::Padding),
            other => Err(BenchError::Workload(format!(
                "witness {other:?}: use real or padding"
            ))),
        }
    }

    /// The circuit to prove at `params` (the setup always uses the blank one: the keys
    /// depend only on the shape).
    ///
    /// # Errors
    /// [`BenchError`] when the real chunk cannot be built (a tree too small for
    /// `2 · slots + 4` accounts).
    pub fn circuit(self, params: CircuitParams) -> Result<ChunkCircuit, BenchError> {
        match self {
            Self::Padding => Ok(ChunkCircuit::blank(params)),
            Self::Real => {
                let dir = tempfile::tempdir().map_err(werr)?;
                let witness = pulse_circuits::sample::mixed_chunk(
                    dir.path(),
                    params,
                    11,
                    &pulse_circuits::sample::offline_deployment(),
                )
                .map_err(werr)?;
                Ok(ChunkCircuit { params, witness })
            }
        }
    }
}

/// What [`msm`] measured.
#[derive(Debug, Clone, Serialize)]
pub struct MsmReport {
    /// log2 of the number of bases.
    pub log_size: u32,
    /// Runs of each side.
    pub repeats: usize,
    /// Window size Pulse chose (over the 2n GLV points and 128-bit scalars).
    pub window_bits: u32,
    /// Median milliseconds, Pulse.
    pub pulse_ms: f64,
    /// Median milliseconds, arkworks.
    pub ark_ms: f64,
    /// `pulse_ms / ark_ms`: below 1 means Pulse is faster.
    pub ratio: f64,
}

/// Bases `P, P+Q, P+2Q, …` (cheap to make, and as good as random for timing) and uniformly
/// random scalars.
fn msm_inputs(n: usize, rng: &mut ChaCha20Rng) -> (Vec<G1Affine>, Vec<Fr>) {
    let step = G1Projective::rand(rng);
    let mut acc = G1Projective::rand(rng);
    let mut points = Vec::with_capacity(n);
    for _ in 0..n {
        points.push(acc);
        acc += step;
    }
    let bases = G1Projective::normalize_batch(&points);
    let scalars = (0..n).map(|_| Fr::rand(rng)).collect();
    (bases, scalars)
}

/// G1 MSM of `2^log_size` random scalars, Pulse against arkworks.
///
/// # Errors
/// If the two results differ, or the backend fails.
pub fn msm(log_size: u32, repeats: usize) -> Result<MsmReport, BenchError> {
    let n = 1usize << log_size;
    let mut rng = ChaCha20Rng::seed_from_u64(log_size.into());
    let (bases, scalars) = msm_inputs(n, &mut rng);
    let backend = CpuBackend::new();
    let prepared = backend.prepare(bases.clone()).map_err(werr)?;
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..repeats.max(1) {
        let t = Instant::now();
        let a = backend.msm(&prepared, 0..n, &scalars).map_err(werr)?;
        ours.push(ms(t));
        let t = Instant::now();
        let b = G1Projective::msm(&bases, &scalars).map_err(werr)?;
        theirs.push(ms(t));
        if a != b {
            return Err(BenchError::Workload(
                "Pulse and ark MSM results differ".into(),
            ));
        }
    }
    let (pulse_ms, ark_ms) = (median(ours), median(theirs));
    Ok(MsmReport {
        log_size,
        repeats: repeats.max(1),
        // GLV: twice the points, half-length scalars.
        window_bits: window_bits(2 * n, GLV_BITS),
        pulse_ms,
        ark_ms,
        ratio: pulse_ms / ark_ms,
    })
}

/// What [`ntt`] measured.
#[derive(Debug, Clone, Serialize)]
pub struct NttReport {
    /// log2 of the transform size.
    pub log_size: u32,
    /// Runs of each side.
    pub repeats: usize,
    /// Median milliseconds, Pulse.
    pub pulse_ms: f64,
    /// Median milliseconds, ark-poly.
    pub ark_ms: f64,
    /// `pulse_ms / ark_ms`.
    pub ratio: f64,
}

/// Forward NTT of `2^log_size` random elements, Pulse against ark-poly's radix-2 FFT. One
/// untimed run of each first (Pulse fills its twiddle cache then, as a prover does once).
///
/// # Errors
/// If the two results differ, or a transform fails.
pub fn ntt(log_size: u32, repeats: usize) -> Result<NttReport, BenchError> {
    let n = 1usize << log_size;
    let mut rng = ChaCha20Rng::seed_from_u64(log_size.into());
    let input: Vec<Fr> = (0..n).map(|_| Fr::rand(&mut rng)).collect();
    let domain = Radix2EvaluationDomain::<Fr>::new(n)
        .ok_or_else(|| BenchError::Workload(format!("no radix-2 domain of size {n}")))?;
    let backend = CpuBackend::new();
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for round in 0..=repeats.max(1) {
        let mut a = input.clone();
        let t = Instant::now();
        backend.ntt(&mut a).map_err(werr)?;
        let pulse = ms(t);
        let mut b = input.clone();
        let t = Instant::now();
        domain.fft_in_place(&mut b);
        let ark = ms(t);
        if a != b {
            return Err(BenchError::Workload(
                "Pulse and ark-poly NTTs differ".into(),
            ));
        }
        if round > 0 {
            ours.push(pulse);
            theirs.push(ark);
        }
    }
    let (pulse_ms, ark_ms) = (median(ours), median(theirs));
    Ok(NttReport {
        log_size,
        repeats: repeats.max(1),
        pulse_ms,
        ark_ms,
        ratio: pulse_ms / ark_ms,
    })
}

/// Median stage times of Pulse's prover, in milliseconds (see
/// [`pulse_prover::StageTimings`]; the five MSMs run concurrently and overlap).
#[derive(Debug, Clone, Serialize, Default)]
pub struct StageMs {
    /// Synthesis.
    pub synthesis: f64,
    /// R1CS-to-QAP reduction (NTTs).
    pub reduction: f64,
    /// MSM `a_query`.
    pub msm_a: f64,
    /// MSM `b_g1_query`.
    pub msm_b_g1: f64,
    /// MSM `b_g2_query`.
    pub msm_b_g2: f64,
    /// MSM `l_query`.
    pub msm_l: f64,
    /// MSM `h_query`.
    pub msm_h: f64,
    /// The reduction and all MSMs (which overlap it), wall time.
    pub msm_total: f64,
}

impl StageMs {
    fn median_of(runs: &[StageTimings]) -> Self {
        let m = |f: fn(&StageTimings) -> std::time::Duration| {
            median(runs.iter().map(|t| f(t).as_secs_f64() * 1e3).collect())
        };
        Self {
            synthesis: m(|t| t.synthesis),
            reduction: m(|t| t.reduction),
            msm_a: m(|t| t.msm_a),
            msm_b_g1: m(|t| t.msm_b_g1),
            msm_b_g2: m(|t| t.msm_b_g2),
            msm_l: m(|t| t.msm_l),
            msm_h: m(|t| t.msm_h),
            msm_total: m(|t| t.msm_total),
        }
    }
}

/// Peak memory of one proof (see [`prove_memory`]).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct MemoryReport {
    /// `ark`; `pulse` (the prover given the key directory's constraint matrices, as
    /// `pulse setup` writes them: every proof computes only the assignment); or
    /// `pulse-first` (a prover without them, whose first proof synthesizes the matrices
    /// through `ark-relations`, as ark-groth16 does on every proof).
    pub prover: String,
    /// Resident set just before the proof (process, circuit, proving key), bytes.
    pub baseline_rss_bytes: u64,
    /// Peak resident set during the proof, bytes.
    pub peak_rss_bytes: u64,
    /// `peak - baseline`: what the proof itself added at its peak.
    pub proof_peak_bytes: u64,
    /// Bytes of the compact constraint matrices held in the baseline (`pulse` only).
    #[serde(default)]
    pub constraints_bytes: u64,
}

/// What [`prove`] measured.
#[derive(Debug, Clone, Serialize)]
pub struct ProveReport {
    /// Transaction slots.
    pub slots: usize,
    /// Tree depth.
    pub depth: usize,
    /// The witness proved.
    pub witness: Witness,
    /// Constraints in the circuit.
    pub constraints: usize,
    /// Runs of each prover.
    pub repeats: usize,
    /// Median milliseconds, Pulse.
    pub pulse_ms: f64,
    /// Milliseconds of Pulse's first proof (included in `pulse_ms` as one of the runs). The
    /// prover is given the constraint matrices the setup took, as a worker is given them
    /// with the key, so its first proof builds none.
    pub pulse_first_ms: f64,
    /// Median milliseconds, ark-groth16.
    pub ark_ms: f64,
    /// `pulse_ms / ark_ms`.
    pub ratio: f64,
    /// `pulse_first_ms / ark_ms`: a prover's first proof against ark-groth16.
    pub first_ratio: f64,
    /// Pulse's stage breakdown (medians).
    pub pulse_stages: StageMs,
    /// Peak memory of one proof per prover, when measured (in child processes).
    pub memory: Vec<MemoryReport>,
}

/// Chunk-circuit proofs of `witness`, Pulse against ark-groth16, alternating.
/// Both sides prove with the same key; every proof is verified. One Pulse prover makes
/// all of Pulse's proofs, as a worker does, with the constraint matrices the setup took
/// (`constraints.r1cs`; see [`pulse_prover::Prover::with_constraints`]); the first proof's
/// time is reported on its own too.
///
/// # Errors
/// Setup or proving failures, or a proof that does not verify.
///
/// With `save_keys`, the keys are also written there (for [`prove_memory`] to load
/// instead of running the setup again, which at large sizes takes longer than proving).
pub fn prove(
    slots: usize,
    depth: usize,
    repeats: usize,
    witness: Witness,
    save_keys: Option<&Path>,
) -> Result<ProveReport, BenchError> {
    let params = CircuitParams::new(slots, depth);
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let keys = artifacts::setup(ChunkCircuit::blank(params), params, &mut rng).map_err(werr)?;
    if let Some(dir) = save_keys {
        keys.write(dir).map_err(werr)?;
    }
    let pk = keys.pk;
    let pvk = prepare_verifying_key(&pk.vk);
    let circuit = witness.circuit(params)?;
    let inputs = circuit.witness.public_inputs();
    let constraints = keys
        .constraints
        .ok_or_else(|| BenchError::Workload("the setup gave no constraint matrices".into()))?;
    let prover =
        Prover::with_constraints(CpuBackend::new(), pk.clone(), constraints).map_err(werr)?;
    let constraints = pulse_circuits::circuit::info(params)
        .map_err(werr)?
        .constraints_total;
    let (mut ours, mut theirs, mut stages) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..repeats.max(1) {
        let t = Instant::now();
        let proof =
            Groth16::<Bn254>::create_random_proof_with_reduction(circuit.clone(), &pk, &mut rng)
                .map_err(werr)?;
        theirs.push(ms(t));
        check(&pvk, &proof, &inputs, "ark-groth16")?;
        let (r, s) = (Fr::rand(&mut rng), Fr::rand(&mut rng));
        let t = Instant::now();
        let (proof, timings) = prover
            .prove_with_randomness(circuit.clone(), r, s)
            .map_err(werr)?;
        ours.push(ms(t));
        stages.push(timings);
        check(&pvk, &proof, &inputs, "Pulse")?;
    }
    let pulse_first_ms = ours.first().copied().unwrap_or(f64::NAN);
    let (pulse_ms, ark_ms) = (median(ours), median(theirs));
    Ok(ProveReport {
        slots,
        depth,
        witness,
        constraints,
        repeats: repeats.max(1),
        pulse_ms,
        pulse_first_ms,
        ark_ms,
        ratio: pulse_ms / ark_ms,
        first_ratio: pulse_first_ms / ark_ms,
        pulse_stages: StageMs::median_of(&stages),
        memory: Vec::new(),
    })
}

fn check(
    pvk: &ark_groth16::PreparedVerifyingKey<Bn254>,
    proof: &ark_groth16::Proof<Bn254>,
    inputs: &[Fr],
    who: &str,
) -> Result<(), BenchError> {
    match Groth16::<Bn254>::verify_proof(pvk, proof, inputs) {
        Ok(true) => Ok(()),
        _ => Err(BenchError::Workload(format!("{who} proof does not verify"))),
    }
}

/// One chunk-circuit proof by one prover (`pulse` or `ark`) and its peak memory. Meant to
/// run alone in a fresh process: the peak is reset after setup through
/// `/proc/self/clear_refs` (Linux), so it covers the proof (and, for Pulse, taking the key
/// into the prover, which moves it without copying). The keys come from `keys_dir` (as
/// [`prove`] saved them) when given, from a fresh setup otherwise.
///
/// # Errors
/// An unknown prover name, `/proc` unavailable, keys for other parameters, or a failed
/// proof.
pub fn prove_memory(
    slots: usize,
    depth: usize,
    witness: Witness,
    which: &str,
    keys_dir: Option<&Path>,
) -> Result<MemoryReport, BenchError> {
    let params = CircuitParams::new(slots, depth);
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let keys = match keys_dir {
        Some(dir) => {
            let keys = artifacts::KeyArtifacts::load(dir).map_err(werr)?;
            if keys.circuit_id() != params.id() {
                return Err(BenchError::Workload(format!(
                    "keys in {} are not for slots {slots} depth {depth}",
                    dir.display()
                )));
            }
            keys
        }
        None => artifacts::setup(ChunkCircuit::blank(params), params, &mut rng).map_err(werr)?,
    };
    let pk = keys.pk;
    let vk = pk.vk.clone();
    let circuit = witness.circuit(params)?;
    let inputs = circuit.witness.public_inputs();
    let constraints = match which {
        "pulse" => Some(keys.constraints.ok_or_else(|| {
            BenchError::Workload("the key directory has no constraints.r1cs".into())
        })?),
        _ => None,
    };
    let constraints_bytes = constraints.as_ref().map_or(0, |c| c.memory_bytes() as u64);
    std::fs::write("/proc/self/clear_refs", "5").map_err(werr)?;
    let baseline = status_kib("VmRSS:")?;
    let proof = match (which, constraints) {
        ("ark", _) => Groth16::<Bn254>::create_random_proof_with_reduction(circuit, &pk, &mut rng)
            .map_err(werr)?,
        ("pulse", Some(constraints)) => {
            Prover::with_constraints(CpuBackend::new(), pk, constraints)
                .map_err(werr)?
                .prove(circuit, &mut rng)
                .map_err(werr)?
        }
        ("pulse-first", _) => Prover::new(CpuBackend::new(), pk)
            .map_err(werr)?
            .prove(circuit, &mut rng)
            .map_err(werr)?,
        (other, _) => return Err(BenchError::Workload(format!("unknown prover {other}"))),
    };
    let peak = status_kib("VmHWM:")?;
    check(&prepare_verifying_key(&vk), &proof, &inputs, which)?;
    Ok(MemoryReport {
        prover: which.to_string(),
        baseline_rss_bytes: baseline * 1024,
        peak_rss_bytes: peak * 1024,
        proof_peak_bytes: peak.saturating_sub(baseline) * 1024,
        constraints_bytes,
    })
}

/// A `kB` field of `/proc/self/status`.
pub(crate) fn status_kib(field: &str) -> Result<u64, BenchError> {
    let status = std::fs::read_to_string("/proc/self/status").map_err(werr)?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| BenchError::Workload(format!("no {field} in /proc/self/status")))
}

/// A GPU benchmark's device: `cuda` or `opencl`, and its label (`opencl:0 (…)`).
fn describe(device: &Arc<dyn Device>) -> (String, String) {
    let info = device.info();
    (info.api.name().to_owned(), info.label())
}

/// What [`msm_gpu`] measured.
#[derive(Debug, Clone, Serialize)]
pub struct GpuMsmReport {
    /// log2 of the number of bases.
    pub log_size: u32,
    /// Timed runs of each side.
    pub repeats: usize,
    /// The GPU API: `cuda` or `opencl`.
    pub backend: String,
    /// The device.
    pub device: String,
    /// Milliseconds uploading the bases to the device (once per proving key in a worker).
    pub gpu_prepare_ms: f64,
    /// Milliseconds preparing the bases on the CPU.
    pub cpu_prepare_ms: f64,
    /// Median milliseconds, the GPU (scalars copied in, the sum copied out).
    pub gpu_ms: f64,
    /// Median milliseconds, Pulse's CPU backend.
    pub cpu_ms: f64,
    /// `gpu_ms / cpu_ms`: below 1 means the GPU is faster.
    pub ratio: f64,
    /// Median milliseconds of the same MSM on the device with GLV's split (what the
    /// backend runs) and without it (254-bit digits, twice the windows), alternating, in
    /// the same run: `[glv, plain]`, through `pulse_gpu::msm` directly.
    pub glv_plain_ms: [f64; 2],
    /// `glv_plain_ms[0] / glv_plain_ms[1]`: below 1 means GLV is faster.
    pub glv_ratio: f64,
}

/// Runs `run` on the GPU side and the CPU side `repeats + 1` times each, alternating which
/// goes first, and returns the median milliseconds of each (the first round, a warm-up, is
/// not counted). The two sides' results must be equal; `what` names them in the error.
fn alternate<T: PartialEq>(
    repeats: usize,
    what: &str,
    mut run: impl FnMut(bool) -> Result<T, BenchError>,
) -> Result<(f64, f64), BenchError> {
    let (mut on_gpu, mut on_cpu) = (Vec::new(), Vec::new());
    for round in 0..=repeats.max(1) {
        let mut timed = |gpu: bool| {
            let t = Instant::now();
            run(gpu).map(|r| (r, ms(t)))
        };
        let gpu_first = round % 2 == 0;
        let first = timed(gpu_first)?;
        let second = timed(!gpu_first)?;
        let ((g, g_ms), (c, c_ms)) = if gpu_first {
            (first, second)
        } else {
            (second, first)
        };
        if g != c {
            return Err(BenchError::Workload(format!("{what} differ")));
        }
        if round > 0 {
            on_gpu.push(g_ms);
            on_cpu.push(c_ms);
        }
    }
    Ok((median(on_gpu), median(on_cpu)))
}

/// G1 MSM of `2^log_size` random scalars over prepared bases, the GPU on `device` against
/// Pulse's CPU backend. One untimed run of each first (the GPU's first launches, the CPU's
/// thread pool); then the two alternate which goes first.
///
/// # Errors
/// If the two results differ, or a backend fails.
pub fn msm_gpu(
    device: Arc<dyn Device>,
    log_size: u32,
    repeats: usize,
) -> Result<GpuMsmReport, BenchError> {
    let n = 1usize << log_size;
    let mut rng = ChaCha20Rng::seed_from_u64(log_size.into());
    let (bases, scalars) = msm_inputs(n, &mut rng);
    let (backend, label) = describe(&device);
    let gpu = GpuBackend::on(device.clone(), None);
    let cpu = CpuBackend::new();
    let t = Instant::now();
    let gpu_bases =
        MsmBackend::<ark_bn254::g1::Config>::prepare(&gpu, bases.clone()).map_err(werr)?;
    let gpu_prepare_ms = ms(t);
    let t = Instant::now();
    let cpu_bases = cpu.prepare(bases.clone()).map_err(werr)?;
    let cpu_prepare_ms = ms(t);
    let (gpu_ms, cpu_ms) = alternate(
        repeats,
        &format!("the {backend} and CPU MSM results"),
        |on_gpu| {
            if on_gpu {
                gpu.msm(&gpu_bases, 0..n, &scalars)
            } else {
                cpu.msm(&cpu_bases, 0..n, &scalars)
            }
            .map_err(werr)
        },
    )?;
    drop(gpu_bases);
    let resident = msm::upload_bases(device.as_ref(), &bases).map_err(werr)?;
    let (glv_ms, plain_ms) = alternate(repeats, "the MSMs with and without GLV", |glv| {
        let plan = if glv { Plan::new } else { Plan::plain };
        msm::msm_with::<ark_bn254::g1::Config>(
            device.as_ref(),
            &resident,
            0..n,
            &scalars,
            msm::MAX_PASS,
            plan,
        )
        .map_err(werr)
    })?;
    Ok(GpuMsmReport {
        log_size,
        repeats: repeats.max(1),
        backend,
        device: label,
        gpu_prepare_ms,
        cpu_prepare_ms,
        gpu_ms,
        cpu_ms,
        ratio: gpu_ms / cpu_ms,
        glv_plain_ms: [glv_ms, plain_ms],
        glv_ratio: glv_ms / plain_ms,
    })
}

/// What [`ntt_gpu`] measured.
#[derive(Debug, Clone, Serialize)]
pub struct GpuNttReport {
    /// log2 of the transform size.
    pub log_size: u32,
    /// Timed runs of each side.
    pub repeats: usize,
    /// The GPU API: `cuda` or `opencl`.
    pub backend: String,
    /// The device.
    pub device: String,
    /// Median milliseconds, the GPU, copies to and from the device included.
    pub gpu_ms: f64,
    /// Median milliseconds, Pulse's CPU backend.
    pub cpu_ms: f64,
    /// `gpu_ms / cpu_ms`: below 1 means the GPU is faster.
    pub ratio: f64,
    /// Median milliseconds of the forward NTT on the device with its stages through local
    /// memory (what the backend runs) and in register passes (three stages a pass), in the
    /// same run: `[local, registers]`.
    pub local_registers_ms: [f64; 2],
    /// `local_registers_ms[0] / local_registers_ms[1]`: below 1 means local memory is faster.
    pub local_ratio: f64,
    /// Passes over device memory after the bit reversal: `[local, registers]`.
    pub passes: [u32; 2],
}

/// Forward NTT of `2^log_size` random elements, the GPU on `device` against Pulse's CPU
/// backend. One untimed run of each first (both fill their twiddle tables then, as a
/// prover does once); then the two alternate which goes first.
///
/// # Errors
/// If the two outputs differ, or a transform fails.
pub fn ntt_gpu(
    device: Arc<dyn Device>,
    log_size: u32,
    repeats: usize,
) -> Result<GpuNttReport, BenchError> {
    let n = 1usize << log_size;
    let mut rng = ChaCha20Rng::seed_from_u64(log_size.into());
    let input: Vec<Fr> = (0..n).map(|_| Fr::rand(&mut rng)).collect();
    let (backend, label) = describe(&device);
    let gpu = GpuBackend::on(device.clone(), None);
    let cpu = CpuBackend::new();
    let (gpu_ms, cpu_ms) = alternate(repeats, &format!("the {backend} and CPU NTTs"), |on_gpu| {
        let mut v = input.clone();
        if on_gpu {
            gpu.ntt(&mut v)
        } else {
            cpu.ntt(&mut v)
        }
        .map_err(werr)?;
        Ok(v)
    })?;
    // The same transform with its stages through local memory (what the backend runs)
    // and in register passes, on the device, copies included as above.
    let tables = pulse_gpu::ntt::Tables::default();
    let (local_ms, registers_ms) = alternate(
        repeats,
        "the NTTs through local memory and in registers",
        |local| {
            let passes = if local {
                Passes::Local
            } else {
                Passes::Registers
            };
            let v = DeviceVec::upload(device.as_ref(), &input).map_err(werr)?;
            v.transform_with(device.as_ref(), &tables, false, passes)
                .map_err(werr)?;
            let mut out = input.clone();
            v.download(device.as_ref(), &mut out).map_err(werr)?;
            Ok(out)
        },
    )?;
    Ok(GpuNttReport {
        log_size,
        repeats: repeats.max(1),
        backend,
        device: label,
        gpu_ms,
        cpu_ms,
        ratio: gpu_ms / cpu_ms,
        local_registers_ms: [local_ms, registers_ms],
        local_ratio: local_ms / registers_ms,
        passes: [
            Passes::Local.count(log_size),
            Passes::Registers.count(log_size),
        ],
    })
}

/// What [`prove_gpu`] measured.
#[derive(Debug, Clone, Serialize)]
pub struct GpuProveReport {
    /// Transaction slots.
    pub slots: usize,
    /// Tree depth.
    pub depth: usize,
    /// The witness proved.
    pub witness: Witness,
    /// Constraints in the circuit.
    pub constraints: usize,
    /// Runs of each prover.
    pub repeats: usize,
    /// The GPU API: `cuda` or `opencl`.
    pub backend: String,
    /// The device.
    pub device: String,
    /// Milliseconds taking the key onto the device (bases uploaded; once per key).
    pub gpu_prepare_ms: f64,
    /// Milliseconds taking the key into the CPU prover.
    pub cpu_prepare_ms: f64,
    /// Median milliseconds, the GPU prover.
    pub gpu_ms: f64,
    /// Milliseconds of the GPU prover's first proof (the kernels' first launches, with the
    /// constraint matrices given as a worker has them; included in `gpu_ms` as one of the
    /// runs).
    pub gpu_first_ms: f64,
    /// Median milliseconds, the CPU prover.
    pub cpu_ms: f64,
    /// Milliseconds of the CPU prover's first proof.
    pub cpu_first_ms: f64,
    /// `gpu_ms / cpu_ms`: below 1 means the GPU is faster.
    pub ratio: f64,
    /// `gpu_first_ms / cpu_first_ms`.
    pub first_ratio: f64,
    /// The GPU prover's stages (medians).
    pub gpu_stages: StageMs,
    /// The CPU prover's stages (medians).
    pub cpu_stages: StageMs,
}

/// Chunk-circuit proofs of `witness`, a prover on the GPU on `device` against one
/// on Pulse's CPU backend, alternating, both with the same key and constraint matrices
/// and, each round, the same randomisers: the two proofs must be equal, and they are
/// verified.
///
/// # Errors
/// Setup or proving failures, proofs that differ, or a proof that does not verify.
pub fn prove_gpu(
    device: Arc<dyn Device>,
    slots: usize,
    depth: usize,
    repeats: usize,
    witness: Witness,
) -> Result<GpuProveReport, BenchError> {
    let params = CircuitParams::new(slots, depth);
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let keys = artifacts::setup(ChunkCircuit::blank(params), params, &mut rng).map_err(werr)?;
    let matrices = keys
        .constraints
        .ok_or_else(|| BenchError::Workload("the setup gave no constraint matrices".into()))?;
    let pk = keys.pk;
    let pvk = prepare_verifying_key(&pk.vk);
    let circuit = witness.circuit(params)?;
    let inputs = circuit.witness.public_inputs();
    let constraints = pulse_circuits::circuit::info(params)
        .map_err(werr)?
        .constraints_total;
    let (backend, label) = describe(&device);
    // Both provers take the setup's constraint matrices, as workers do (from the key's
    // `constraints.r1cs`): no proof, the first included, synthesizes them.
    let t = Instant::now();
    let gpu = Prover::with_constraints(GpuBackend::on(device, None), pk.clone(), matrices.clone())
        .map_err(werr)?;
    let gpu_prepare_ms = ms(t);
    let t = Instant::now();
    let cpu = Prover::with_constraints(CpuBackend::new(), pk, matrices).map_err(werr)?;
    let cpu_prepare_ms = ms(t);
    let (mut on_gpu, mut on_cpu) = (Vec::new(), Vec::new());
    let (mut gpu_stages, mut cpu_stages) = (Vec::new(), Vec::new());
    for round in 0..repeats.max(1) {
        let (r, s) = (Fr::rand(&mut rng), Fr::rand(&mut rng));
        let gpu_first = round % 2 == 0;
        let mut proofs = Vec::with_capacity(2);
        for on_gpu_side in [gpu_first, !gpu_first] {
            let t = Instant::now();
            let (proof, timings) = if on_gpu_side {
                gpu.prove_with_randomness(circuit.clone(), r, s)
            } else {
                cpu.prove_with_randomness(circuit.clone(), r, s)
            }
            .map_err(werr)?;
            let elapsed = ms(t);
            if on_gpu_side {
                on_gpu.push(elapsed);
                gpu_stages.push(timings);
                check(&pvk, &proof, &inputs, &backend)?;
            } else {
                on_cpu.push(elapsed);
                cpu_stages.push(timings);
                check(&pvk, &proof, &inputs, "Pulse CPU")?;
            }
            proofs.push(proof);
        }
        if proofs[0] != proofs[1] {
            return Err(BenchError::Workload(format!(
                "the {backend} and CPU provers made different proofs from the same randomisers"
            )));
        }
    }
    let gpu_first_ms = on_gpu.first().copied().unwrap_or(f64::NAN);
    let cpu_first_ms = on_cpu.first().copied().unwrap_or(f64::NAN);
    let (gpu_ms, cpu_ms) = (median(on_gpu), median(on_cpu));
    Ok(GpuProveReport {
        slots,
        depth,
        witness,
        constraints,
        repeats: repeats.max(1),
        backend,
        device: label,
        gpu_prepare_ms,
        cpu_prepare_ms,
        gpu_ms,
        gpu_first_ms,
        cpu_ms,
        cpu_first_ms,
        ratio: gpu_ms / cpu_ms,
        first_ratio: gpu_first_ms / cpu_first_ms,
        gpu_stages: StageMs::median_of(&gpu_stages),
        cpu_stages: StageMs::median_of(&cpu_stages),
    })
}
