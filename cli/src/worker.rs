//! `pulse worker run`: a proving worker for a coordinator's NATS; `pulse worker selftest`:
//! the GPU kernels checked against the CPU on the device a worker would use.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use pulse_gpu::selftest::{self, Check, Options};
use pulse_gpu::{Api, GpuBackend};
use pulse_worker::{BackendKind, WorkerConfig};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

/// `pulse worker …`.
#[derive(clap::Subcommand)]
pub enum WorkerCommand {
    /// Pull proving jobs, prove them, publish the proofs; stop cleanly on Ctrl-C / SIGTERM.
    Run(RunArgs),
    /// Check a GPU before contributing it: every kernel against arkworks and the CPU
    /// backend. Prints one line per check and ends with `N passed, M failed`; exits
    /// non-zero if any check failed or the device cannot be opened.
    Selftest(SelftestArgs),
    /// Check this machine's NATS setup before contributing it: connects with the
    /// credentials and CA, checks everything a worker needs works, and that what a worker
    /// must not do is refused by the server. Ends with `N passed, M failed`.
    Check(CheckArgs),
    /// Compile the CUDA kernels for given architectures into a kernel cache, for GPU
    /// machines that have the NVIDIA driver but not NVRTC (copy the folder there and point
    /// PULSE_KERNEL_CACHE at it). Needs NVRTC here, no GPU.
    Kernels(KernelsArgs),
}

/// `pulse worker kernels`.
#[derive(clap::Args)]
pub struct KernelsArgs {
    /// A CUDA architecture to build for, as the device reports it: sm_80 (A100), sm_86,
    /// sm_89 (RTX 40xx, L4), sm_90 (H100, H200). Repeat for several.
    #[arg(long = "arch", required = true)]
    archs: Vec<String>,
    /// The folder to write the kernels into (created if missing).
    #[arg(long)]
    cache: std::path::PathBuf,
}

/// `pulse worker kernels`.
#[allow(clippy::print_stdout)]
pub fn kernels(args: KernelsArgs) -> Result<ExitCode> {
    let written = pulse_gpu::cuda::prebuild(&args.archs, &args.cache)
        .with_context(|| format!("building CUDA kernels for {}", args.archs.join(", ")))?;
    for path in written {
        println!("{}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// `pulse worker check`.
#[derive(clap::Args)]
pub struct CheckArgs {
    #[command(flatten)]
    nats: crate::nats::NatsArgs,
    /// This worker's id; by default the name in its credentials file.
    #[arg(long, env = "PULSE_WORKER_ID")]
    id: Option<String>,
    /// Print JSON instead of a line per check.
    #[arg(long)]
    json: bool,
}

/// The worker id: the one given, else the credentials file's user.
fn worker_id(given: Option<String>, nats: &pulse_access::NatsEndpoint) -> Result<String> {
    if let Some(id) = given {
        return Ok(id);
    }
    match nats.load_credentials()? {
        Some(creds) => Ok(creds.user().to_owned()),
        None => bail!(
            "no worker id: pass --id, or --nats-credentials with the file `pulse nats worker add ID` wrote"
        ),
    }
}

/// `pulse worker check`.
#[allow(clippy::print_stdout)]
pub fn check(args: CheckArgs) -> Result<ExitCode> {
    let nats = args.nats.endpoint();
    let id = worker_id(args.id, &nats)?;
    let config = WorkerConfig::new(nats.clone(), id.clone(), std::env::temp_dir());
    config.validate()?;
    let checks = crate::l1::runtime()?.block_on(crate::nats::check_worker(&nats, &id));
    let failed = checks.iter().filter(|c| !c.passed).count();
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "worker": id,
                "checks": checks,
                "passed": checks.len() - failed,
                "failed": failed,
            }))?
        );
    } else {
        for c in &checks {
            let status = if c.passed { "ok  " } else { "FAIL" };
            println!("{status} {:<60} {}", c.name, c.detail);
        }
        println!("{} passed, {failed} failed", checks.len() - failed);
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A size in bytes: a number, optionally followed by KiB, MiB, GiB (or KB, MB, GB, taken
/// as the same powers of two).
pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    if unit.starts_with(['.', ',']) {
        return Err(format!(
            "`{text}` is not a size: use a whole number of a smaller unit (1536MiB, not 1.5GiB)"
        ));
    }
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => {
            return Err(format!(
                "`{text}` is not a size: write bytes, or a number with KiB, MiB, GiB or TiB"
            ));
        }
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a size: it must start with a whole number"))?;
    n.checked_mul(1u64 << shift)
        .filter(|&b| b > 0)
        .ok_or_else(|| format!("`{text}` is not a size above zero that fits in 64 bits"))
}

/// `pulse worker run`.
#[derive(clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    nats: crate::nats::NatsArgs,
    /// This worker's id (letters, digits, `_` and `-`; no patient data); by default the
    /// name in its credentials file.
    #[arg(long, env = "PULSE_WORKER_ID")]
    id: Option<String>,
    /// Where proving keys are cached.
    #[arg(long, env = "PULSE_KEY_CACHE", default_value = "pulse-keys")]
    key_cache: PathBuf,
    /// The proving backend: auto (the first CUDA device, else the first OpenCL GPU, else
    /// the CPU with a warning), cpu, cuda or opencl (refuses to start without the device).
    #[arg(long, env = "PULSE_WORKER_BACKEND", default_value = "cpu")]
    backend: String,
    /// Which device of the cuda or opencl API (default 0).
    #[arg(long, env = "PULSE_WORKER_DEVICE")]
    device: Option<usize>,
    /// The most GPU memory to use, in bytes (default 90 % of the device's), for a GPU
    /// shared with other work; keys and jobs that do not fit are proved on the CPU.
    #[arg(long, env = "PULSE_GPU_MEMORY_LIMIT")]
    gpu_memory_limit: Option<u64>,
    /// The most memory to give a proving key's bases: bytes, or with a unit (512MiB,
    /// 8GiB). Announced to the coordinator, which proves a larger key split across
    /// workers, this one holding a shard of it. No limit when not given.
    #[arg(long, env = "PULSE_BASE_MEMORY", value_parser = parse_size)]
    base_memory: Option<u64>,
    /// Stop after this many jobs.
    #[arg(long)]
    max_jobs: Option<u64>,
    /// Serve Prometheus metrics on http://ADDR/metrics (for instance 127.0.0.1:9478; keep it
    /// off public interfaces, the page is not authenticated). Off when not given.
    #[arg(long, env = "PULSE_WORKER_METRICS")]
    metrics_addr: Option<SocketAddr>,
}

/// `pulse worker run`.
pub fn run(args: RunArgs) -> Result<ExitCode> {
    let nats = args.nats.endpoint();
    let id = worker_id(args.id, &nats)?;
    let mut config = WorkerConfig::new(nats, id, args.key_cache);
    config.backend = args
        .backend
        .parse::<BackendKind>()
        .map_err(|e| anyhow::anyhow!("--backend {}: {e}", args.backend))?;
    config.device = args.device;
    config.gpu_memory_limit = args.gpu_memory_limit;
    config.base_memory = args.base_memory;
    config.max_jobs = args.max_jobs;
    config.metrics_addr = args.metrics_addr;
    let rt = crate::l1::runtime()?;
    rt.block_on(async move {
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        tokio::spawn(async move {
            crate::coordinator::wait_for_signal().await;
            token.cancel();
        });
        let summary = pulse_worker::run(config, shutdown).await?;
        tracing::info!(?summary, "worker stopped");
        Ok(ExitCode::SUCCESS)
    })
}

/// `pulse worker selftest`.
#[derive(clap::Args)]
pub struct SelftestArgs {
    /// The device to check: auto (the device `pulse worker run --backend auto` would pick;
    /// fails if there is no GPU), cuda or opencl.
    #[arg(long, default_value = "auto", ignore_case = true, value_parser = ["auto", "cuda", "opencl"])]
    backend: String,
    /// Which device of the cuda or opencl API (default 0).
    #[arg(long)]
    device: Option<usize>,
    /// Add the sizes a GPU is meant for (MSMs of 2^16 and 2^18 points, NTTs to 2^18).
    #[arg(long)]
    large: bool,
    /// Print JSON at the end instead of a line per check.
    #[arg(long)]
    json: bool,
}

/// One check, as `--json` prints it.
#[derive(Serialize)]
struct CheckReport {
    name: String,
    passed: bool,
    seconds: f64,
    detail: String,
}

/// The tree depth the capacity table is computed at (the benchmarks' depth).
const CAPACITY_DEPTH: usize = 20;

/// The largest chunk a device of some memory holds, from the circuit's shape and the GPU
/// prover's layout ([`pulse_gpu::ProverFootprint`]).
#[derive(Serialize)]
struct Capacity {
    /// `24 GiB`, …, or `this device (79.6 GiB)`.
    memory: String,
    memory_bytes: u64,
    /// The most slots with every MSM in one pass, and that chunk's constraints.
    slots_one_pass: usize,
    constraints_one_pass: usize,
    /// The most slots with MSMs cut into the smallest passes.
    slots_in_passes: usize,
    constraints_in_passes: usize,
}

/// The capacity table for 24, 40 and 80 GiB and this device's `memory` bytes. The chunk
/// circuit grows linearly in its slots, so two syntheses (one and two slots) give every
/// size.
fn capacity(memory: u64) -> Result<Vec<Capacity>> {
    use pulse_circuits::artifacts::CircuitParams;
    let one = pulse_circuits::circuit::info(CircuitParams::new(1, CAPACITY_DEPTH))?;
    let two = pulse_circuits::circuit::info(CircuitParams::new(2, CAPACITY_DEPTH))?;
    let inputs = one.public_inputs + 1;
    let shape = |slots: usize| {
        let extra = slots.saturating_sub(1);
        let constraints =
            one.constraints_total + extra * (two.constraints_total - one.constraints_total);
        let witness =
            one.witness_variables + extra * (two.witness_variables - one.witness_variables);
        let domain = (constraints + inputs).next_power_of_two();
        (
            constraints,
            pulse_gpu::ProverFootprint::new(inputs, witness, domain),
        )
    };
    // The most slots (up to 2^20) for which `fits` holds; footprints grow with slots.
    let largest = |fits: &dyn Fn(&pulse_gpu::ProverFootprint) -> bool| {
        let (mut lo, mut hi) = (0usize, 1usize << 20);
        while lo < hi {
            let mid = (lo + hi).div_ceil(2);
            if fits(&shape(mid).1) {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        (lo, if lo == 0 { 0 } else { shape(lo).0 })
    };
    const GIB: u64 = 1 << 30;
    let mut sizes: Vec<(String, u64)> = [24u64, 40, 80]
        .iter()
        .map(|g| (format!("{g} GiB"), g * GIB))
        .collect();
    sizes.push((
        format!("this device ({:.1} GiB)", memory as f64 / GIB as f64),
        memory,
    ));
    Ok(sizes
        .into_iter()
        .map(|(label, bytes)| {
            let (slots_one_pass, constraints_one_pass) = largest(&|f| f.fits(bytes, false));
            let (slots_in_passes, constraints_in_passes) = largest(&|f| f.fits(bytes, true));
            Capacity {
                memory: label,
                memory_bytes: bytes,
                slots_one_pass,
                constraints_one_pass,
                slots_in_passes,
                constraints_in_passes,
            }
        })
        .collect())
}

/// `pulse worker selftest --json`.
#[derive(Serialize)]
struct SelftestReport {
    device: String,
    memory_bytes: u64,
    compute_units: u32,
    open_seconds: f64,
    checks: Vec<CheckReport>,
    capacity: Vec<Capacity>,
    passed: usize,
    failed: usize,
}

/// `pulse worker selftest`.
#[allow(clippy::print_stdout)]
pub fn selftest(args: SelftestArgs) -> Result<ExitCode> {
    let backend = args
        .backend
        .parse::<BackendKind>()
        .map_err(|e| anyhow::anyhow!("--backend {}: {e}", args.backend))?;
    let started = Instant::now();
    let gpu = match backend.api() {
        Some(api) => open(api, args.device)?,
        None => {
            if args.device.is_some() {
                bail!("--device needs --backend cuda or opencl: auto picks its own device");
            }
            pulse_gpu::open_auto().context("--backend auto: no GPU to check")?
        }
    };
    let open_seconds = started.elapsed().as_secs_f64();
    let info = gpu.info().clone();
    let mut out = std::io::stdout().lock();
    if !args.json {
        writeln!(
            out,
            "device {}: {} compute units, {:.1} GiB, opened in {open_seconds:.1} s",
            info.label(),
            info.compute_units,
            info.memory_bytes as f64 / f64::from(1u32 << 30)
        )?;
        out.flush()?;
    }
    let opts = if args.large {
        Options::large()
    } else {
        Options::default()
    };
    let mut checks = Vec::new();
    let mut print_error = None;
    let summary = selftest::run(&gpu, &opts, &mut |check: &Check| {
        let seconds = check.elapsed.as_secs_f64();
        if !args.json && print_error.is_none() {
            let status = if check.passed { "ok  " } else { "FAIL" };
            let mut line = format!("{status} {:<66} {seconds:>8.3} s", check.name);
            if !check.passed {
                line.push_str("  ");
                line.push_str(&check.detail);
            }
            // Each line as soon as its check ends: a slow device shows its progress.
            if let Err(e) = writeln!(out, "{line}").and_then(|()| out.flush()) {
                print_error = Some(e);
            }
        }
        checks.push(CheckReport {
            name: check.name.clone(),
            passed: check.passed,
            seconds,
            detail: check.detail.clone(),
        });
    });
    if let Some(e) = print_error {
        return Err(e).context("printing the self-test");
    }
    let capacity = capacity(info.memory_bytes).context("sizing chunks for the device")?;
    if args.json {
        let report = SelftestReport {
            device: info.label(),
            memory_bytes: info.memory_bytes,
            compute_units: info.compute_units,
            open_seconds,
            checks,
            capacity,
            passed: summary.passed,
            failed: summary.failed,
        };
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        writeln!(
            out,
            "largest chunk at depth {CAPACITY_DEPTH} with the key's bases resident (MSMs in one pass; cut into passes):"
        )?;
        for c in &capacity {
            let show = |slots: usize, constraints: usize| {
                if slots == 0 {
                    "none".to_string()
                } else {
                    format!(
                        "{slots} slots ({:.2}M constraints)",
                        constraints as f64 / 1e6
                    )
                }
            };
            writeln!(
                out,
                "  {:<24} {:>34}; {}",
                c.memory,
                show(c.slots_one_pass, c.constraints_one_pass),
                show(c.slots_in_passes, c.constraints_in_passes)
            )?;
        }
        writeln!(out, "{} passed, {} failed", summary.passed, summary.failed)?;
    }
    Ok(if summary.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Opens device `index` of `api` for the self-test.
fn open(api: Api, index: Option<usize>) -> Result<GpuBackend> {
    GpuBackend::open(api, index).with_context(|| {
        format!(
            "opening {api} device {} for the self-test",
            index.unwrap_or(0)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_parse_with_units_and_refuse_the_rest() {
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("2 GiB"), Ok(2 << 30));
        assert_eq!(parse_size("3k"), Ok(3 << 10));
        for bad in [
            "",
            "0",
            "MiB",
            "1.5GiB",
            "12 parsecs",
            "-1",
            "99999999999TiB",
        ] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
