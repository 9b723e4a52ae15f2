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
use pulse_worker::{BackendKind, Credentials, WorkerConfig};
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
}

/// `pulse worker run`.
#[derive(clap::Args)]
pub struct RunArgs {
    /// The coordinator's NATS server(s), comma-separated.
    #[arg(long, env = "PULSE_NATS", default_value = "nats://127.0.0.1:4222")]
    nats: String,
    /// This worker's id (letters, digits, `_` and `-`; no patient data).
    #[arg(long, env = "PULSE_WORKER_ID")]
    id: String,
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
    /// NATS user (the password comes from PULSE_NATS_PASSWORD).
    #[arg(long, env = "PULSE_NATS_USER")]
    user: Option<String>,
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
    let mut config = WorkerConfig::new(args.nats, args.id, args.key_cache);
    config.backend = args
        .backend
        .parse::<BackendKind>()
        .map_err(|e| anyhow::anyhow!("--backend {}: {e}", args.backend))?;
    config.device = args.device;
    config.gpu_memory_limit = args.gpu_memory_limit;
    config.max_jobs = args.max_jobs;
    config.metrics_addr = args.metrics_addr;
    if let Some(user) = args.user {
        let password = std::env::var("PULSE_NATS_PASSWORD")
            .context("--user needs the password in PULSE_NATS_PASSWORD")?;
        config.credentials = Some(Credentials::UserPassword { user, password });
    }
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

/// `pulse worker selftest --json`.
#[derive(Serialize)]
struct SelftestReport {
    device: String,
    memory_bytes: u64,
    compute_units: u32,
    open_seconds: f64,
    checks: Vec<CheckReport>,
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
    if args.json {
        let report = SelftestReport {
            device: info.label(),
            memory_bytes: info.memory_bytes,
            compute_units: info.compute_units,
            open_seconds,
            checks,
            passed: summary.passed,
            failed: summary.failed,
        };
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
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
