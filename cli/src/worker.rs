//! `pulse worker run`: a proving worker for a coordinator's NATS.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use pulse_worker::{BackendKind, Credentials, WorkerConfig};
use tokio_util::sync::CancellationToken;

/// `pulse worker …`.
#[derive(clap::Subcommand)]
pub enum WorkerCommand {
    /// Pull proving jobs, prove them, publish the proofs; stop cleanly on Ctrl-C / SIGTERM.
    Run(RunArgs),
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
    /// The proving backend.
    #[arg(long, default_value = "cpu")]
    backend: String,
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
