//! `pulse bench msm|ntt|prove`: print what [`pulse_bench::prover`] measured.
//!
//! With `--backend cpu` (the default), Pulse's CPU backend against arkworks; with
//! `--backend cuda|opencl`, that GPU against Pulse's CPU backend.
//!
//! `prove` on the CPU measures peak memory by running this same binary again, once per
//! prover, with `--memory-of ark|pulse`: each child loads the keys the parent saved, proves
//! once and reports its own peak.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use pulse_bench::prover::{self, MemoryReport, StageMs, Witness};
use pulse_gpu::{Api, Device};

/// `--backend` and `--device` of `pulse bench msm|ntt|prove`.
#[derive(clap::Args, Clone)]
pub struct BackendArgs {
    /// cpu: Pulse's CPU backend against arkworks; cuda or opencl: that GPU against
    /// Pulse's CPU backend, in the same run.
    #[arg(long, default_value = "cpu", ignore_case = true, value_parser = ["cpu", "cuda", "opencl"])]
    backend: String,
    /// Which device of the cuda or opencl API (default 0).
    #[arg(long)]
    device: Option<usize>,
}

impl BackendArgs {
    /// The GPU asked for, opened; `None` for the CPU.
    fn open(&self) -> Result<Option<Arc<dyn Device>>> {
        let api = match self.backend.to_ascii_lowercase().as_str() {
            "cuda" => Api::Cuda,
            "opencl" => Api::OpenCl,
            _ => {
                if self.device.is_some() {
                    bail!("--device needs --backend cuda or opencl");
                }
                return Ok(None);
            }
        };
        let device = pulse_gpu::open_device(api, self.device)
            .with_context(|| format!("opening {api} device {}", self.device.unwrap_or(0)))?;
        Ok(Some(device))
    }
}

/// `pulse bench buckets`.
#[allow(clippy::print_stdout)]
pub fn buckets(slots: usize, depth: usize, json: bool) -> Result<ExitCode> {
    let r = pulse_bench::buckets::run(slots, depth).context("measuring bucket balance")?;
    if json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "GPU MSM bucket balance, chunk of {} real transactions at depth {} ({} constraints)",
        r.slots, r.depth, r.constraints
    );
    println!(
        "  {:<7} {:>8} {:>6} {:>6} {:>6} {:>3} {:>9} {:>22} {:>22}",
        "scalars",
        "n",
        "zero",
        "one",
        "small",
        "c",
        "largest",
        "before worst/mean",
        "after worst/mean (cap)"
    );
    for m in &r.msms {
        println!(
            "  {:<7} {:>8} {:>5.1}% {:>5.1}% {:>5.1}% {:>3} {:>9} {:>12.1} (path {:>7}) {:>7.2} ({:>3}, path {:>4})",
            m.scalars,
            m.n,
            100.0 * m.zero,
            100.0 * m.one,
            100.0 * m.small,
            m.c,
            m.largest_bucket,
            m.before_worst_over_mean,
            m.before.critical_path,
            m.after_worst_over_mean,
            m.cap,
            m.after.critical_path,
        );
    }
    println!(
        "  worst/mean: the busiest thread's additions (after: summed over the schedule's launches,"
    );
    println!(
        "  its critical path) over the mean, the additions spread evenly over one thread per bucket"
    );
    Ok(ExitCode::SUCCESS)
}

/// `pulse bench msm`.
#[allow(clippy::print_stdout)]
pub fn msm(log_size: u32, repeats: usize, json: bool, backend: &BackendArgs) -> Result<ExitCode> {
    if let Some(device) = backend.open()? {
        let r = prover::msm_gpu(device, log_size, repeats).context("running the MSM benchmark")?;
        if json {
            println!("{}", serde_json::to_string_pretty(&r)?);
            return Ok(ExitCode::SUCCESS);
        }
        println!(
            "G1 MSM, 2^{} bases, {} runs each (medians), results equal",
            r.log_size, r.repeats
        );
        println!("  device           {}", r.device);
        println!(
            "  {:<16} {:>10.1} ms  (bases uploaded in {:.1} ms)",
            r.backend, r.gpu_ms, r.gpu_prepare_ms
        );
        println!(
            "  pulse cpu        {:>10.1} ms  (bases prepared in {:.1} ms)",
            r.cpu_ms, r.cpu_prepare_ms
        );
        println!("  ratio gpu/cpu    {:>10.3}", r.ratio);
        println!(
            "  device, GLV      {:>10.1} ms  against {:.1} ms without: ratio {:.3}",
            r.glv_plain_ms[0], r.glv_plain_ms[1], r.glv_ratio
        );
        return Ok(ExitCode::SUCCESS);
    }
    let r = prover::msm(log_size, repeats).context("running the MSM benchmark")?;
    if json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "G1 MSM, 2^{} bases, {} runs each (medians), results equal",
        r.log_size, r.repeats
    );
    println!(
        "  pulse (window {:>2} bits) {:>10.1} ms",
        r.window_bits, r.pulse_ms
    );
    println!("  ark-ec                 {:>10.1} ms", r.ark_ms);
    println!("  ratio pulse/ark        {:>10.3}", r.ratio);
    Ok(ExitCode::SUCCESS)
}

/// `pulse bench ntt`.
#[allow(clippy::print_stdout)]
pub fn ntt(log_size: u32, repeats: usize, json: bool, backend: &BackendArgs) -> Result<ExitCode> {
    if let Some(device) = backend.open()? {
        let r = prover::ntt_gpu(device, log_size, repeats).context("running the NTT benchmark")?;
        if json {
            println!("{}", serde_json::to_string_pretty(&r)?);
            return Ok(ExitCode::SUCCESS);
        }
        println!(
            "NTT over Fr, 2^{}, {} runs each (medians), outputs equal",
            r.log_size, r.repeats
        );
        println!("  device           {}", r.device);
        println!(
            "  {:<16} {:>10.2} ms  (copies to and from the device included)",
            r.backend, r.gpu_ms
        );
        println!("  pulse cpu        {:>10.2} ms", r.cpu_ms);
        println!("  ratio gpu/cpu    {:>10.3}", r.ratio);
        println!(
            "  device, local    {:>10.2} ms  ({} passes) against {:.2} ms in registers ({} passes): ratio {:.3}",
            r.local_registers_ms[0],
            r.passes[0],
            r.local_registers_ms[1],
            r.passes[1],
            r.local_ratio
        );
        return Ok(ExitCode::SUCCESS);
    }
    let r = prover::ntt(log_size, repeats).context("running the NTT benchmark")?;
    if json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "NTT over Fr, 2^{}, {} runs each (medians), outputs equal",
        r.log_size, r.repeats
    );
    println!("  pulse            {:>10.2} ms", r.pulse_ms);
    println!("  ark-poly radix-2 {:>10.2} ms", r.ark_ms);
    println!("  ratio pulse/ark  {:>10.3}", r.ratio);
    Ok(ExitCode::SUCCESS)
}

/// `pulse bench prove`; with `memory_of`, the child-process half (one proof, its peak).
#[allow(clippy::print_stdout)]
pub fn prove(
    slots: usize,
    depth: usize,
    repeats: usize,
    witness: &str,
    memory_of: Option<&str>,
    json: bool,
    backend: &BackendArgs,
) -> Result<ExitCode> {
    let witness_name = witness;
    let witness = Witness::parse(witness)?;
    if let Some(which) = memory_of {
        let keys = std::env::var_os(KEYS_ENV).map(PathBuf::from);
        let m = prover::prove_memory(slots, depth, witness, which, keys.as_deref())
            .context("measuring peak memory")?;
        println!("{}", serde_json::to_string(&m)?);
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(device) = backend.open()? {
        let r = prover::prove_gpu(device, slots, depth, repeats, witness)
            .context("running the prove benchmark")?;
        if json {
            println!("{}", serde_json::to_string_pretty(&r)?);
            return Ok(ExitCode::SUCCESS);
        }
        println!(
            "Groth16 chunk proof, slots {} depth {} ({} constraints, {witness_name} witness), {} runs each (medians), proofs equal and verified",
            r.slots, r.depth, r.constraints, r.repeats
        );
        println!("  device           {}", r.device);
        println!(
            "  {:<16} {:>10.1} ms  (key onto the device in {:.1} ms; first proof {:.1} ms)",
            r.backend, r.gpu_ms, r.gpu_prepare_ms, r.gpu_first_ms
        );
        println!(
            "  pulse cpu        {:>10.1} ms  (key prepared in {:.1} ms; first proof {:.1} ms)",
            r.cpu_ms, r.cpu_prepare_ms, r.cpu_first_ms
        );
        println!(
            "  ratio gpu/cpu    {:>10.3}  (first proofs {:.3})",
            r.ratio, r.first_ratio
        );
        println!("  stages (ms; the MSMs run beside the reduction):");
        for (who, s) in [
            (r.backend.as_str(), &r.gpu_stages),
            ("pulse cpu", &r.cpu_stages),
        ] {
            print_stages(who, s);
        }
        return Ok(ExitCode::SUCCESS);
    }
    // The children load the keys this run makes instead of each running the setup again.
    let keys = std::env::temp_dir().join(format!("pulse-bench-keys-{}", std::process::id()));
    let measured = (|| {
        let mut r = prover::prove(slots, depth, repeats, witness, Some(&keys))
            .context("running the prove benchmark")?;
        for which in ["ark", "pulse", "pulse-first"] {
            r.memory
                .push(memory_in_child(slots, depth, witness_name, which, &keys)?);
        }
        anyhow::Ok(r)
    })();
    if keys.exists() {
        std::fs::remove_dir_all(&keys)
            .with_context(|| format!("removing the benchmark keys in {}", keys.display()))?;
    }
    let r = measured?;
    if json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "Groth16 chunk proof, slots {} depth {} ({} constraints, {witness_name} witness), {} runs each (medians), all verified",
        r.slots, r.depth, r.constraints, r.repeats
    );
    println!("  ark-groth16      {:>10.1} ms", r.ark_ms);
    println!("  pulse            {:>10.1} ms", r.pulse_ms);
    println!("  ratio pulse/ark  {:>10.3}", r.ratio);
    println!(
        "  pulse first proof (constraint matrices from the key directory) {:.1} ms, ratio {:.3}",
        r.pulse_first_ms, r.first_ratio
    );
    let s = &r.pulse_stages;
    println!(
        "  pulse stages (ms; the MSMs run concurrently, those over the assignment beside the reduction):"
    );
    println!(
        "    synthesis {:.1}  reduction/NTT {:.1}",
        s.synthesis, s.reduction
    );
    println!(
        "    msm a {:.1}  b_g1 {:.1}  b_g2 {:.1}  l {:.1}  h {:.1}  reduction and all MSMs {:.1}",
        s.msm_a, s.msm_b_g1, s.msm_b_g2, s.msm_l, s.msm_h, s.msm_total
    );
    for m in &r.memory {
        println!(
            "  peak memory {:<11} {:>8.1} MiB (proof adds {:.1} MiB over {:.1} MiB baseline)",
            m.prover,
            m.peak_rss_bytes as f64 / 1048576.0,
            m.proof_peak_bytes as f64 / 1048576.0,
            m.baseline_rss_bytes as f64 / 1048576.0
        );
    }
    println!(
        "  (pulse: keys with constraints.r1cs, in the baseline; pulse-first: without, so the first proof synthesizes the matrices)"
    );
    Ok(ExitCode::SUCCESS)
}

#[allow(clippy::print_stdout)]
fn print_stages(who: &str, s: &StageMs) {
    println!(
        "    {who:<10} synthesis {:.1}  reduction/NTT {:.1}  msm a {:.1}  b_g1 {:.1}  b_g2 {:.1}  l {:.1}  h {:.1}  reduction and all MSMs {:.1}",
        s.synthesis, s.reduction, s.msm_a, s.msm_b_g1, s.msm_b_g2, s.msm_l, s.msm_h, s.msm_total
    );
}

/// Where a memory child finds the keys the parent saved.
const KEYS_ENV: &str = "PULSE_BENCH_KEYS";

fn memory_in_child(
    slots: usize,
    depth: usize,
    witness: &str,
    which: &str,
    keys: &Path,
) -> Result<MemoryReport> {
    let (slots, depth) = (slots.to_string(), depth.to_string());
    let args = [
        "bench",
        "prove",
        "--slots",
        &slots,
        "--depth",
        &depth,
        "--witness",
        witness,
        "--memory-of",
        which,
    ];
    memory_child(&args, keys, which)
}

/// Runs this binary with `args` (a `--memory-of` child) on the keys in `keys`, and reads
/// the JSON report it prints.
fn memory_child<T: serde::de::DeserializeOwned>(
    args: &[&str],
    keys: &Path,
    which: &str,
) -> Result<T> {
    let exe = std::env::current_exe().context("finding the pulse binary")?;
    let out = Command::new(exe)
        .args(args)
        .env(KEYS_ENV, keys)
        .output()
        .with_context(|| format!("running the {which} memory child"))?;
    if !out.status.success() {
        bail!(
            "the {which} memory child failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    serde_json::from_slice(&out.stdout)
        .with_context(|| format!("parsing the {which} memory report"))
}

/// Shard counts of `pulse bench split`.
#[derive(Clone, Debug)]
pub struct ShardCounts(pub Vec<usize>);

/// `--shards 1,2,4`: shard counts from 1 to 64.
pub fn parse_shard_counts(text: &str) -> Result<ShardCounts, String> {
    let counts: Vec<usize> = text
        .split(',')
        .map(|t| t.trim().parse::<usize>())
        .collect::<Result<_, _>>()
        .map_err(|_| format!("`{text}` is not a list of shard counts such as 1,2,4"))?;
    if counts.is_empty() || counts.iter().any(|&n| n == 0 || n > 64) {
        return Err(format!("`{text}`: shard counts are 1 to 64"));
    }
    Ok(ShardCounts(counts))
}

/// `pulse bench split`.
#[allow(clippy::print_stdout, clippy::too_many_arguments)]
pub fn split(
    slots: usize,
    depth: usize,
    shards: &[usize],
    repeats: usize,
    witness: &str,
    memory_of: Option<&str>,
    json: bool,
) -> Result<ExitCode> {
    let witness_name = witness;
    let witness = Witness::parse(witness)?;
    if let Some(role) = memory_of {
        let keys = std::env::var_os(KEYS_ENV)
            .map(PathBuf::from)
            .context("the memory child needs the parent's keys")?;
        let n = shards.first().copied().unwrap_or(1);
        let m = pulse_bench::split::split_memory(slots, depth, witness, role, n, &keys)
            .context("measuring peak memory")?;
        println!("{}", serde_json::to_string(&m)?);
        return Ok(ExitCode::SUCCESS);
    }
    let keys = std::env::temp_dir().join(format!("pulse-bench-split-{}", std::process::id()));
    let measured = (|| {
        let mut r = pulse_bench::split::split(slots, depth, repeats, witness, shards, &keys)
            .context("running the split benchmark")?;
        let mut roles = vec![("unsplit".to_owned(), 1usize)];
        for &n in shards.iter().filter(|&&n| n > 1) {
            roles.push(("assembler".to_owned(), n));
            roles.push(("shard".to_owned(), n));
        }
        let (slots, depth) = (slots.to_string(), depth.to_string());
        for (role, n) in roles {
            let n = n.to_string();
            let args = [
                "bench",
                "split",
                "--slots",
                &slots,
                "--depth",
                &depth,
                "--witness",
                witness_name,
                "--shards",
                &n,
                "--memory-of",
                &role,
            ];
            r.memory.push(memory_child(&args, &keys, &role)?);
        }
        anyhow::Ok(r)
    })();
    if keys.exists() {
        std::fs::remove_dir_all(&keys)
            .with_context(|| format!("removing the benchmark keys in {}", keys.display()))?;
    }
    let r = measured?;
    if json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mib = |b: u64| b as f64 / 1048576.0;
    println!(
        "Split Groth16 chunk proof, slots {} depth {} ({} constraints, {witness_name} witness), {} runs each (medians), every proof verified and equal to the unsplit one",
        r.slots, r.depth, r.constraints, r.repeats
    );
    println!(
        "  unsplit proof    {:>10.1} ms  {:>8.2} CPU-s  (key bases {:.1} MiB)",
        r.unsplit_ms,
        r.unsplit_cpu_s,
        mib(r.key_base_bytes)
    );
    for run in &r.runs {
        let shard_ms: Vec<String> = run.shard_ms.iter().map(|m| format!("{m:.1}")).collect();
        println!(
            "  {} shard(s): witness {:.1} ms; shards {} ms; assembly {:.1} ms; {:.2} CPU-s, overhead {:+.1} %; {:.1} MiB moved per proof",
            run.shards,
            run.witness_ms,
            shard_ms.join(" / "),
            run.assemble_ms,
            run.total_cpu_s,
            100.0 * run.cpu_overhead,
            mib(run.bytes_moved)
        );
    }
    let unsplit = r
        .memory
        .iter()
        .find(|m| m.role == "unsplit")
        .map_or(0, |m| m.role_peak_bytes);
    for m in &r.memory {
        println!(
            "  peak memory {:<9} {:>2} shard(s) {:>8.1} MiB ({:.2} of the unsplit worker's)",
            m.role,
            m.shards,
            mib(m.role_peak_bytes),
            m.role_peak_bytes as f64 / unsplit.max(1) as f64
        );
    }
    Ok(ExitCode::SUCCESS)
}
