//! The Pulse proving worker: what a hospital runs on its GPU (or CPU) machines.
//!
//! [`run`] opens the backend it was given ([`Hardware`]: the CPU, or one GPU shared by
//! every key it loads; an unusable GPU asked for by name stops it there), connects to the
//! coordinator's NATS server, waits for the coordinator's JetStream layout if it is not
//! there yet, registers the worker in the registry bucket, and proves chunk jobs until
//! shutdown (or [`WorkerConfig::max_jobs`]):
//!
//! 1. pull one job from the shared consumer `pulse_protocol::JOB_CONSUMER`; a message that is
//!    not a proving job of this protocol version is terminated (logged, never dumped);
//! 2. check the job (its parameters name its circuit, its witness fits them), fetch its
//!    proving key by hash into the key cache (`pulse_protocol::keys`) and load it on the
//!    backend, once per key; check the key against the job (circuit, verifying key); on a
//!    GPU, a key or job that does not fit the device's memory is proved on the CPU;
//! 3. prove on a thread of its own, with in-progress acknowledgements keeping the job's
//!    lease while it runs, and check the proof before publishing it;
//! 4. publish the `JobResult` to `pulse_protocol::RESULT_SUBJECT` and wait until JetStream
//!    has stored it, then acknowledge the job.
//!
//! A job no worker can prove (wrong parameters, shape or key) gets a `Failed` result and is
//! terminated; a job that failed here (proving error, key unavailable) gets a `Failed`
//! result and goes back to the queue after [`WorkerConfig::retry_delay`]. The worker rides
//! out NATS restarts (the client reconnects, the pull loop and the heartbeat retry), and on
//! shutdown finishes the job in hand within [`WorkerConfig::shutdown_grace`] or hands it
//! back, then deletes its registry entry.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
pub mod connect;
pub mod engine;
pub mod metrics;
mod pipeline;
pub mod registry;
mod split;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream;
use pulse_protocol::{WORKER_TTL, WorkerInfo, decode};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio_util::sync::CancellationToken;

pub use config::{BackendKind, ConfigError, WorkerConfig, validate_worker_id};
pub use connect::ConnectError;
pub use engine::{Hardware, LoadError, Loaded, Proved};
pub use metrics::WorkerMetrics;
pub use registry::Device;

use crate::engine::ProverCache;
use crate::pipeline::{Executor, Picker, Saver, progress_interval};
use crate::registry::{Registry, Status};
use crate::split::ShardCache;

/// How long deregistering and flushing may take at the end.
const FAREWELL_TIMEOUT: Duration = Duration::from_secs(5);

/// What a worker did, returned by [`run`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerSummary {
    /// Jobs proved and published.
    pub jobs_done: u64,
    /// Jobs answered with a `Failed` result.
    pub jobs_failed: u64,
    /// Messages on the job stream that were not proving jobs (terminated).
    pub poison_messages: u64,
    /// Jobs handed back unfinished at shutdown.
    pub jobs_handed_back: u64,
}

/// Runs a worker until `shutdown` is cancelled or it has taken `config.max_jobs` jobs.
///
/// # Errors
/// An invalid configuration, a GPU backend asked for by name that cannot be opened, an
/// unwritable key cache directory, or NATS unreachable (or refusing the credentials) at
/// start. Once running, trouble with NATS, keys or proofs is logged and retried, never
/// returned.
pub async fn run(
    config: WorkerConfig,
    shutdown: CancellationToken,
) -> anyhow::Result<WorkerSummary> {
    config
        .validate()
        .context("checking the worker configuration")?;
    let hardware = open_hardware(&config).await?;
    tokio::fs::create_dir_all(&config.key_cache_dir)
        .await
        .with_context(|| {
            format!(
                "creating the key cache directory {}",
                config.key_cache_dir.display()
            )
        })?;
    let worker_id = config.worker_id.clone();
    let device = Device::detect(&hardware);
    let metrics = Arc::new(
        WorkerMetrics::new(&worker_id, hardware.name(), &device.description)
            .context("registering the metrics")?,
    );
    if let Some(addr) = config.metrics_addr {
        metrics::listen(addr, metrics.clone(), shutdown.clone()).await?;
    }
    tracing::info!(
        worker = %worker_id,
        backend = hardware.name(),
        device = %device.description,
        memory_bytes = device.memory_bytes,
        nats = %config.nats.url,
        "starting the worker"
    );

    let Some(client) = connect::connect(&config, &shutdown)
        .await
        .context("connecting to NATS")?
    else {
        return Ok(WorkerSummary::default());
    };
    let js = jetstream::new(client.clone());
    let Some(layout) = connect::wait_for_layout(&js, &shutdown).await else {
        return Ok(WorkerSummary::default());
    };
    let progress_every = progress_interval(layout.lease);
    tracing::info!(
        worker = %worker_id,
        lease_seconds = layout.lease.as_secs_f64(),
        progress_seconds = progress_every.as_secs_f64(),
        "found the job queue"
    );

    warn_if_id_in_use(&layout.registry, &worker_id).await;
    let registry = Registry::new(
        layout.registry,
        worker_id.clone(),
        hardware.clone(),
        config.base_memory,
    );
    match registry.put(&Status::default()).await {
        Ok(()) => tracing::info!(worker = %worker_id, "registered"),
        Err(reason) => {
            tracing::warn!(worker = %worker_id, %reason, "cannot register yet; the heartbeat retries")
        }
    }

    let (status_tx, status_rx) = watch::channel(Status::default());
    let status = Arc::new(status_tx);
    let slots = Arc::new(Semaphore::new(1));
    let (picked_tx, picked_rx) = mpsc::channel(1);
    let (finished_tx, finished_rx) = mpsc::channel(1);
    let picker = Picker {
        js: js.clone(),
        jobs: layout.consumer,
        shards: None,
        slots,
        progress_every,
        max_jobs: config.max_jobs,
        worker_id: worker_id.clone(),
        metrics: metrics.clone(),
        shutdown: shutdown.clone(),
        out: picked_tx,
    };
    let saver = Saver {
        js: js.clone(),
        worker_id: worker_id.clone(),
        status: status.clone(),
        shutdown: shutdown.clone(),
        grace: config.shutdown_grace,
        metrics: metrics.clone(),
        input: finished_rx,
    };
    let executor = Executor {
        js,
        hardware,
        provers: ProverCache::new(config.provers_cached),
        shards: ShardCache::new(config.base_memory),
        config,
        status,
        metrics,
        shutdown: shutdown.clone(),
        input: picked_rx,
        out: finished_tx,
    };

    let heartbeat_stop = CancellationToken::new();
    let pipeline = async {
        let (poison, (), mut summary) = tokio::join!(picker.run(), executor.run(), saver.run());
        summary.poison_messages = poison;
        heartbeat_stop.cancel();
        summary
    };
    let (summary, ()) = tokio::join!(
        pipeline,
        registry.heartbeat(status_rx, heartbeat_stop.clone())
    );

    registry.deregister(FAREWELL_TIMEOUT).await;
    if tokio::time::timeout(FAREWELL_TIMEOUT, client.flush())
        .await
        .is_err()
    {
        tracing::warn!(worker = %worker_id, "flushing the NATS connection timed out");
    }
    tracing::info!(
        worker = %worker_id,
        jobs_done = summary.jobs_done,
        jobs_failed = summary.jobs_failed,
        poison_messages = summary.poison_messages,
        jobs_handed_back = summary.jobs_handed_back,
        "worker stopped"
    );
    Ok(summary)
}

/// Opens the configured backend on a thread of its own: building the GPU kernels can take
/// a while, and must not stall the runtime.
async fn open_hardware(config: &WorkerConfig) -> anyhow::Result<Hardware> {
    let (backend, device, limit) = (config.backend, config.device, config.gpu_memory_limit);
    match backend {
        BackendKind::Cpu => {}
        BackendKind::Auto => tracing::info!("backend auto: looking for a GPU"),
        _ => tracing::info!(%backend, "opening the GPU (the first time, its kernels are compiled)"),
    }
    let opened = pipeline::on_thread("pulse-open-device", move || {
        Hardware::open(backend, device, limit)
    })
    .await
    .map_err(|e| anyhow::anyhow!("opening the {backend} backend: {e}"))?;
    opened.with_context(|| format!("opening the {backend} backend"))
}

/// Two workers under one id would overwrite each other's registry entry: say so.
async fn warn_if_id_in_use(store: &jetstream::kv::Store, worker_id: &str) {
    let Ok(Some(bytes)) = store.get(worker_id).await else {
        return;
    };
    let Ok(info) = decode::<WorkerInfo>(&bytes) else {
        return;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if now.saturating_sub(info.heartbeat_at) < WORKER_TTL.as_secs() {
        tracing::warn!(
            worker = %worker_id,
            device = %info.device,
            "another worker with this id sent a heartbeat recently; give each worker its own id (a worker that crashed just now is fine)"
        );
    }
}
