//! Split proving against the unsplit proof, on one real chunk witness: what each part of a
//! split proof costs (the assembler's witness, each shard's MSMs, the assembly), the bytes
//! it moves, its CPU overhead over the unsplit proof, and each role's peak memory.
//!
//! Everything runs on this machine, one part after another, so wall-clock speed-up cannot
//! show here; the per-shard times and bytes feed the latency model in `bench/README.md`.
//! The CPU time of a part is the process's user and system time across all threads
//! (`/proc/self/stat`), so a part that keeps every core busy counts every core.
//!
//! [`split_memory`] runs one role alone in a fresh process (the caller starts it), as
//! [`crate::prover::prove_memory`] does: `unsplit` (a worker that holds the whole key and
//! proves), `assembler` (the witness and every shard's scalars, no bases), `shard` (one
//! shard's bases read from the key file, its scalars, its sums).

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use ark_bn254::{Bn254, Fr};
use ark_groth16::{Groth16, prepare_verifying_key};
use ark_std::UniformRand;
use pulse_circuits::artifacts::{self, CircuitParams, KeyArtifacts, PROVING_KEY_FILE};
use pulse_circuits::circuit::ChunkCircuit;
use pulse_prover::split::{
    KeyHeader, SUMS_BYTES, ShardProver, ShardRanges, ShardScalars, decode_sums, encode_sums,
};
use pulse_prover::{CpuBackend, MsmSums, Prover, QapWitness};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde::{Deserialize, Serialize};

use crate::prover::{Witness, median, status_kib, werr};
use crate::statement::BenchError;

/// Seconds of CPU (user and system, every thread) this process has used. `/proc` counts
/// in units of `USER_HZ`, which Linux fixes at 100 per second for user space.
fn cpu_seconds() -> Result<f64, BenchError> {
    let stat = std::fs::read_to_string("/proc/self/stat").map_err(werr)?;
    // Fields after the command name (which may hold spaces) start at its closing bracket.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| BenchError::Workload("/proc/self/stat has no command name".into()))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line; 12 and 13 after the name.
    let tick = |i: usize| -> Result<f64, BenchError> {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .map(|t| t as f64 / 100.0)
            .ok_or_else(|| BenchError::Workload("/proc/self/stat is not as expected".into()))
    };
    Ok(tick(11)? + tick(12)?)
}

/// Wall milliseconds and CPU seconds of `f`.
fn timed<T>(f: impl FnOnce() -> Result<T, BenchError>) -> Result<(T, f64, f64), BenchError> {
    let cpu = cpu_seconds()?;
    let t = Instant::now();
    let out = f()?;
    let wall = t.elapsed().as_secs_f64() * 1e3;
    Ok((out, wall, cpu_seconds()? - cpu))
}

/// One shard count's figures (medians over the runs).
#[derive(Debug, Clone, Serialize)]
pub struct SplitRun {
    /// Shards.
    pub shards: usize,
    /// The assembler's witness: synthesis, the quotient's NTTs and cutting the scalars,
    /// wall milliseconds.
    pub witness_ms: f64,
    /// Its CPU seconds.
    pub witness_cpu_s: f64,
    /// Each shard's MSMs (bases resident), wall milliseconds, in plan order.
    pub shard_ms: Vec<f64>,
    /// Each shard's CPU seconds.
    pub shard_cpu_s: Vec<f64>,
    /// Reading and preparing each shard's bases once (a shard worker keeps them resident
    /// between proofs), wall milliseconds.
    pub shard_load_ms: Vec<f64>,
    /// Adding the sums, forming the proof and checking it, wall milliseconds.
    pub assemble_ms: f64,
    /// CPU seconds of one split proof: witness, every shard, assembly.
    pub total_cpu_s: f64,
    /// `total_cpu_s` over the unsplit proof's CPU seconds, minus one.
    pub cpu_overhead: f64,
    /// Bytes of every shard's scalars (stored by the assembler, read by its shard worker).
    pub scalars_bytes: u64,
    /// Bytes of the sums sent back.
    pub sums_bytes: u64,
    /// Bytes that cross the network per proof: the scalars twice (to the store and from
    /// it), the sums once.
    pub bytes_moved: u64,
    /// Bytes of the largest shard's bases.
    pub largest_shard_base_bytes: u64,
}

/// Peak memory of one role of a split (or unsplit) proof, in a fresh process.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SplitMemory {
    /// `unsplit`, `assembler` or `shard`.
    pub role: String,
    /// Shards of the plan (1 for `unsplit`).
    pub shards: usize,
    /// Resident set before the role loaded anything of the key (the chunk witness, which
    /// arrives in the job, already built), bytes.
    pub baseline_rss_bytes: u64,
    /// Peak resident set, bytes.
    pub peak_rss_bytes: u64,
    /// `peak - baseline`: the role's own memory at its peak (the key's bases, or a
    /// shard's, included).
    pub role_peak_bytes: u64,
}

/// What [`split`] measured.
#[derive(Debug, Clone, Serialize)]
pub struct SplitReport {
    /// Transaction slots.
    pub slots: usize,
    /// Tree depth.
    pub depth: usize,
    /// The witness proved.
    pub witness: Witness,
    /// Constraints.
    pub constraints: usize,
    /// Runs of each configuration.
    pub repeats: usize,
    /// Bytes of the key's bases.
    pub key_base_bytes: u64,
    /// The unsplit proof (Pulse's prover, matrices given), wall milliseconds.
    pub unsplit_ms: f64,
    /// Its CPU seconds.
    pub unsplit_cpu_s: f64,
    /// One entry per shard count.
    pub runs: Vec<SplitRun>,
    /// Peak memory per role (filled by the caller from child processes).
    pub memory: Vec<SplitMemory>,
}

fn circuit_and_keys(
    slots: usize,
    depth: usize,
    witness: Witness,
    keys_dir: &Path,
    setup: bool,
) -> Result<(CircuitParams, KeyArtifacts, ChunkCircuit), BenchError> {
    let params = CircuitParams::new(slots, depth);
    let keys = if setup {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let keys = artifacts::setup(ChunkCircuit::blank(params), params, &mut rng).map_err(werr)?;
        keys.write(keys_dir).map_err(werr)?;
        keys
    } else {
        let keys = KeyArtifacts::load(keys_dir).map_err(werr)?;
        if keys.circuit_id() != params.id() {
            return Err(BenchError::Workload(format!(
                "keys in {} are not for slots {slots} depth {depth}",
                keys_dir.display()
            )));
        }
        keys
    };
    Ok((params, keys, witness.circuit(params)?))
}

/// The file a shard child reads its scalars from.
pub fn scalars_file(dir: &Path, shards: usize, shard: usize) -> std::path::PathBuf {
    dir.join(format!("scalars-{shards}-{shard}.bin"))
}

/// Split proofs of one real chunk into each of `shard_counts` shards, against the unsplit
/// proof, `repeats` runs each; every proof is checked, and the split proof is checked
/// equal to the unsplit one for the same randomisers. The keys are set up and written to
/// `keys_dir`, with shard 0's scalars of each count (for [`split_memory`]).
///
/// # Errors
/// Setup or proving failures, or a proof that does not verify or differs.
pub fn split(
    slots: usize,
    depth: usize,
    repeats: usize,
    witness: Witness,
    shard_counts: &[usize],
    keys_dir: &Path,
) -> Result<SplitReport, BenchError> {
    let (_, keys, circuit) = circuit_and_keys(slots, depth, witness, keys_dir, true)?;
    let inputs = circuit.witness.public_inputs();
    let key_path = keys_dir.join(PROVING_KEY_FILE);
    let header = KeyHeader::read(&key_path).map_err(werr)?;
    let pvk = prepare_verifying_key(&header.vk);
    let r1cs = keys
        .constraints
        .clone()
        .ok_or_else(|| BenchError::Workload("the setup gave no constraint matrices".into()))?;
    let constraints = r1cs.num_constraints();
    let prover =
        Prover::with_constraints(CpuBackend::new(), keys.pk.clone(), r1cs.clone()).map_err(werr)?;
    drop(keys);
    let mut rng = ChaCha20Rng::seed_from_u64(8);
    let (r, s) = (Fr::rand(&mut rng), Fr::rand(&mut rng));
    let mut unsplit = (Vec::new(), Vec::new());
    let mut expected = None;
    for _ in 0..repeats.max(1) {
        let ((proof, _), wall, cpu) = timed(|| {
            prover
                .prove_with_randomness(circuit.clone(), r, s)
                .map_err(werr)
        })?;
        if !Groth16::<Bn254>::verify_proof(&pvk, &proof, &inputs).map_err(werr)? {
            return Err(BenchError::Workload(
                "the unsplit proof does not verify".into(),
            ));
        }
        expected = Some(proof);
        unsplit.0.push(wall);
        unsplit.1.push(cpu);
    }
    drop(prover);
    let (unsplit_ms, unsplit_cpu_s) = (median(unsplit.0), median(unsplit.1));
    let backend = CpuBackend::new();
    let mut runs = Vec::new();
    for &n in shard_counts {
        let plan = ShardRanges::plan(header.lens, n);
        let mut load_ms = Vec::new();
        let mut shard_provers = Vec::new();
        for ranges in &plan {
            let (p, wall, _) = timed(|| {
                ShardProver::load(CpuBackend::new(), &key_path, &header, ranges.clone())
                    .map_err(werr)
            })?;
            load_ms.push(wall);
            shard_provers.push(p);
        }
        let mut witness_runs = (Vec::new(), Vec::new());
        let mut shard_runs: Vec<(Vec<f64>, Vec<f64>)> = vec![(Vec::new(), Vec::new()); n];
        let mut assemble_runs = Vec::new();
        let (mut scalars_bytes, mut sums_bytes) = (0u64, 0u64);
        for _ in 0..repeats.max(1) {
            let (encoded, wall, cpu) = timed(|| {
                let (qap, _) =
                    QapWitness::with_constraints(&backend, circuit.clone(), &r1cs, header.lens.h)
                        .map_err(werr)?;
                plan.iter()
                    .map(|r| ShardScalars::of(&qap, r).map(|s| s.encode()).map_err(werr))
                    .collect::<Result<Vec<_>, _>>()
            })?;
            witness_runs.0.push(wall);
            witness_runs.1.push(cpu);
            scalars_bytes = encoded.iter().map(|e| e.len() as u64).sum();
            let mut sums = Vec::with_capacity(n);
            for (k, p) in shard_provers.iter().enumerate() {
                let (part, wall, cpu) = timed(|| {
                    let scalars = ShardScalars::decode(&encoded[k]).map_err(werr)?;
                    p.sums(&scalars).map(|s| encode_sums(&s)).map_err(werr)
                })?;
                shard_runs[k].0.push(wall);
                shard_runs[k].1.push(cpu);
                sums.push(part);
            }
            sums_bytes = (n * SUMS_BYTES) as u64;
            let t = Instant::now();
            let mut total = MsmSums::default();
            for part in &sums {
                total += &decode_sums(part).map_err(werr)?;
            }
            let proof = header.assemble(&total, r, s);
            if !Groth16::<Bn254>::verify_proof(&pvk, &proof, &inputs).map_err(werr)? {
                return Err(BenchError::Workload(format!(
                    "the proof from {n} shards does not verify"
                )));
            }
            if Some(&proof) != expected.as_ref() {
                return Err(BenchError::Workload(format!(
                    "the proof from {n} shards differs from the unsplit one"
                )));
            }
            assemble_runs.push(t.elapsed().as_secs_f64() * 1e3);
            if n > 1 {
                std::fs::write(scalars_file(keys_dir, n, 0), &encoded[0]).map_err(werr)?;
            }
        }
        let shard_ms: Vec<f64> = shard_runs.iter().map(|r| median(r.0.clone())).collect();
        let shard_cpu_s: Vec<f64> = shard_runs.iter().map(|r| median(r.1.clone())).collect();
        let witness_cpu_s = median(witness_runs.1);
        let total_cpu_s = witness_cpu_s + shard_cpu_s.iter().sum::<f64>();
        runs.push(SplitRun {
            shards: n,
            witness_ms: median(witness_runs.0),
            witness_cpu_s,
            shard_ms,
            shard_cpu_s,
            shard_load_ms: load_ms,
            assemble_ms: median(assemble_runs),
            total_cpu_s,
            cpu_overhead: total_cpu_s / unsplit_cpu_s - 1.0,
            scalars_bytes,
            sums_bytes,
            bytes_moved: 2 * scalars_bytes + sums_bytes,
            largest_shard_base_bytes: plan.iter().map(ShardRanges::base_bytes).max().unwrap_or(0),
        });
    }
    Ok(SplitReport {
        slots,
        depth,
        witness,
        constraints,
        repeats: repeats.max(1),
        key_base_bytes: header.lens.base_bytes(),
        unsplit_ms,
        unsplit_cpu_s,
        runs,
        memory: Vec::new(),
    })
}

/// One role's peak memory, alone in this (fresh) process: `unsplit`, `assembler`, or
/// `shard` (shard 0 of `shards`, its scalars from the file [`split`] wrote). The keys come
/// from `keys_dir`, as [`split`] wrote them.
///
/// # Errors
/// An unknown role, `/proc` unavailable, keys for other parameters, or a failed proof.
pub fn split_memory(
    slots: usize,
    depth: usize,
    witness: Witness,
    role: &str,
    shards: usize,
    keys_dir: &Path,
) -> Result<SplitMemory, BenchError> {
    let params = CircuitParams::new(slots, depth);
    // The chunk witness arrives with the job: built before the baseline.
    let circuit = match role {
        "unsplit" | "assembler" => Some(witness.circuit(params)?),
        _ => None,
    };
    std::fs::write("/proc/self/clear_refs", "5").map_err(werr)?;
    let baseline = status_kib("VmRSS:")?;
    let key_path = keys_dir.join(PROVING_KEY_FILE);
    match (role, circuit) {
        ("unsplit", Some(circuit)) => {
            let keys = KeyArtifacts::load(keys_dir).map_err(werr)?;
            if keys.circuit_id() != params.id() {
                return Err(BenchError::Workload("keys for other parameters".into()));
            }
            let r1cs = keys
                .constraints
                .ok_or_else(|| BenchError::Workload("no constraints.r1cs".into()))?;
            let prover =
                Prover::with_constraints(CpuBackend::new(), keys.pk, r1cs).map_err(werr)?;
            let mut rng = ChaCha20Rng::seed_from_u64(9);
            prover.prove(circuit, &mut rng).map_err(werr)?;
        }
        ("assembler", Some(circuit)) => {
            let header = KeyHeader::read(&key_path).map_err(werr)?;
            let manifest = artifacts::VerifierArtifacts::load(keys_dir)
                .map_err(werr)?
                .manifest;
            let expected = manifest
                .constraints_hash
                .ok_or_else(|| BenchError::Workload("no constraints.r1cs".into()))?;
            let r1cs =
                artifacts::read_constraints(keys_dir, expected, &manifest, header.lens.assignment)
                    .map_err(werr)?;
            let (qap, _) = QapWitness::with_constraints(
                &CpuBackend::new(),
                circuit,
                &Arc::new(r1cs),
                header.lens.h,
            )
            .map_err(werr)?;
            let mut bytes = 0;
            for r in ShardRanges::plan(header.lens, shards) {
                bytes += ShardScalars::of(&qap, &r).map_err(werr)?.encode().len();
            }
            if bytes == 0 {
                return Err(BenchError::Workload("no scalars".into()));
            }
        }
        ("shard", None) => {
            let header = KeyHeader::read(&key_path).map_err(werr)?;
            let plan = ShardRanges::plan(header.lens, shards);
            let prover = ShardProver::load(CpuBackend::new(), &key_path, &header, plan[0].clone())
                .map_err(werr)?;
            let bytes = std::fs::read(scalars_file(keys_dir, shards, 0)).map_err(werr)?;
            let scalars = ShardScalars::decode(&bytes).map_err(werr)?;
            drop(bytes);
            prover.sums(&scalars).map_err(werr)?;
        }
        (other, _) => return Err(BenchError::Workload(format!("unknown role {other}"))),
    }
    let peak = status_kib("VmHWM:")?;
    Ok(SplitMemory {
        role: role.to_owned(),
        shards,
        baseline_rss_bytes: baseline * 1024,
        peak_rss_bytes: peak * 1024,
        role_peak_bytes: peak.saturating_sub(baseline) * 1024,
    })
}
