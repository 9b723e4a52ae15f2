//! Every Prometheus metric a worker exports, and the HTTP listener that serves them on
//! `/metrics` when [`crate::WorkerConfig::metrics_addr`] is set.
//!
//! Names are `pulse_worker_<what>_<unit>`: counters end in `_total`, durations are in
//! `_seconds`, sizes in `_bytes`. Every series carries the label `worker` (the worker's id,
//! chosen by its operator), so that one Prometheus can scrape all the workers of a hospital
//! and a dashboard can pick one. Other labels take a handful of values (an outcome, a
//! stage, a backend, a fallback reason) or one value per worker (its device, on
//! `pulse_worker_info`); job ids, keys and anything about a patient never become labels.
//!
//! Each worker has a registry of its own, so several workers in one process (tests,
//! `pulse dev demo`) do not collide.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Seconds: from a small test circuit proved in a fraction of a second on a CPU to a
/// production chunk (depth 32, several slots) proved in minutes on a CPU.
const PROOF_BUCKETS: &[f64] = &[
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 60.0, 120.0, 300.0, 600.0,
];
/// Seconds: loading a proving key and preparing its bases on the backend.
const LOAD_BUCKETS: &[f64] = &[
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

/// What can become of a job a worker took.
pub const JOB_OUTCOMES: [&str; 5] = ["proved", "failed", "refused", "handed_back", "poison"];
/// Where a proving key was found: in memory, in the key cache on disk, or downloaded.
pub const KEY_CACHE_RESULTS: [&str; 3] = ["hit_memory", "hit_disk", "miss"];
/// The stages of one proof, whole or split.
pub const PROOF_STAGES: [&str; 5] = [
    "witness",
    "prove",
    "split_witness",
    "shard_load",
    "shard_msm",
];
/// Which way shard scalars went: stored by this worker as an assembler, or read for a shard.
pub const SPLIT_DIRECTIONS: [&str; 2] = ["stored", "read"];
/// Why a GPU worker proved a job on the CPU.
pub const GPU_FALLBACK_REASONS: [&str; 1] = ["out_of_memory"];

/// A worker's metrics.
pub struct WorkerMetrics {
    registry: Registry,
    backend: &'static str,
    jobs: IntCounterVec,
    redeliveries: IntCounter,
    proof_duration: HistogramVec,
    key_cache: IntCounterVec,
    key_download_bytes: IntCounter,
    key_load: Histogram,
    gpu_fallbacks: IntCounterVec,
    busy: IntGauge,
    info: IntGaugeVec,
    resident_memory: IntGauge,
    peak_memory: IntGauge,
    split_bytes: IntCounterVec,
}

impl std::fmt::Debug for WorkerMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerMetrics")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

fn register<C: prometheus::core::Collector + Clone + 'static>(
    r: &Registry,
    c: C,
) -> prometheus::Result<C> {
    r.register(Box::new(c.clone()))?;
    Ok(c)
}

/// Resident and peak resident memory of this process, in bytes (Linux; zeros elsewhere).
fn process_memory() -> (i64, i64) {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return (0, 0);
    };
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<i64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

impl WorkerMetrics {
    /// Registers every metric in a registry of its own, each series labelled with
    /// `worker_id`. `backend` is what the worker proves on (`cpu`, `cuda`, `opencl`) and
    /// `device` that in words (`opencl:0 (…)`, or the processor), for `pulse_worker_info`.
    ///
    /// # Errors
    /// A metric the registry refuses (a bug: names and labels are fixed), or a worker id
    /// that is not a valid label value (ids are checked by [`crate::validate_worker_id`]
    /// first).
    pub fn new(worker_id: &str, backend: &'static str, device: &str) -> prometheus::Result<Self> {
        let labels = HashMap::from([("worker".to_owned(), worker_id.to_owned())]);
        let r = Registry::new_custom(None, Some(labels))?;
        let m = Self {
            backend,
            jobs: register(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "pulse_worker_jobs_total",
                        "Jobs taken, by outcome: proved, failed (offered again), refused (no worker can prove it), handed_back (at shutdown), poison (not a job).",
                    ),
                    &["outcome"],
                )?,
            )?,
            redeliveries: register(
                &r,
                IntCounter::with_opts(Opts::new(
                    "pulse_worker_job_redeliveries_total",
                    "Jobs this worker took that had been delivered before (a failed attempt or a lost lease).",
                ))?,
            )?,
            proof_duration: register(
                &r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "pulse_worker_proof_duration_seconds",
                        "Seconds per chunk proof, by the backend that made it and stage (witness: constraint synthesis; prove: the rest; for split proofs split_witness: the assembler's witness and quotient, shard_load: reading a shard's bases, shard_msm: a shard's MSMs).",
                    )
                    .buckets(PROOF_BUCKETS.to_vec()),
                    &["backend", "stage"],
                )?,
            )?,
            key_cache: register(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "pulse_worker_key_cache_lookups_total",
                        "Proving key lookups by result: hit_memory (prover loaded), hit_disk (key cache), miss (downloaded).",
                    ),
                    &["result"],
                )?,
            )?,
            key_download_bytes: register(
                &r,
                IntCounter::with_opts(Opts::new(
                    "pulse_worker_key_download_bytes_total",
                    "Bytes of proving keys downloaded from the NATS object store.",
                ))?,
            )?,
            key_load: register(
                &r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "pulse_worker_key_load_seconds",
                        "Seconds loading a proving key from the cache onto the backend.",
                    )
                    .buckets(LOAD_BUCKETS.to_vec()),
                )?,
            )?,
            gpu_fallbacks: register(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "pulse_worker_gpu_fallbacks_total",
                        "Jobs a GPU worker proved on the CPU backend instead, by reason: out_of_memory (the proving key or the job did not fit the device's memory budget).",
                    ),
                    &["reason"],
                )?,
            )?,
            busy: register(
                &r,
                IntGauge::with_opts(Opts::new(
                    "pulse_worker_busy",
                    "1 while the worker holds a job, else 0.",
                ))?,
            )?,
            info: register(
                &r,
                IntGaugeVec::new(
                    Opts::new(
                        "pulse_worker_info",
                        "Always 1; its labels say the worker's backend, its device and its software version.",
                    ),
                    &["backend", "device", "version"],
                )?,
            )?,
            resident_memory: register(
                &r,
                IntGauge::with_opts(Opts::new(
                    "pulse_worker_process_resident_memory_bytes",
                    "Resident memory of the worker's process.",
                ))?,
            )?,
            peak_memory: register(
                &r,
                IntGauge::with_opts(Opts::new(
                    "pulse_worker_process_peak_memory_bytes",
                    "Peak resident memory of the worker's process.",
                ))?,
            )?,
            split_bytes: register(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "pulse_worker_split_bytes_total",
                        "Bytes of split proofs' shard scalars this worker stored (as assembler) or read (for its shards).",
                    ),
                    &["direction"],
                )?,
            )?,
            registry: r,
        };
        m.info
            .with_label_values(&[backend, device, env!("CARGO_PKG_VERSION")])
            .set(1);
        // Series that exist from the start, so that rates and dashboards see zeros.
        for outcome in JOB_OUTCOMES {
            m.jobs.with_label_values(&[outcome]);
        }
        for result in KEY_CACHE_RESULTS {
            m.key_cache.with_label_values(&[result]);
        }
        for stage in PROOF_STAGES {
            m.proof_duration.with_label_values(&[m.backend, stage]);
        }
        for reason in GPU_FALLBACK_REASONS {
            m.gpu_fallbacks.with_label_values(&[reason]);
        }
        for direction in SPLIT_DIRECTIONS {
            m.split_bytes.with_label_values(&[direction]);
        }
        Ok(m)
    }

    /// The registry (for tests and embedding).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The metrics in Prometheus's text format, with the memory gauges brought up to date.
    pub fn encode(&self) -> String {
        let (rss, peak) = process_memory();
        self.resident_memory.set(rss);
        self.peak_memory.set(peak);
        let mut out = String::new();
        if let Err(e) = TextEncoder::new().encode_utf8(&self.registry.gather(), &mut out) {
            tracing::error!(error = %e, "cannot encode the metrics");
        }
        out
    }

    /// A job taken, delivered `delivered` times.
    pub(crate) fn job_taken(&self, delivered: i64) {
        self.busy.set(1);
        if delivered > 1 {
            self.redeliveries.inc();
        }
    }

    /// A job settled with `outcome` (one of [`JOB_OUTCOMES`]).
    pub(crate) fn job_settled(&self, outcome: &str) {
        self.busy.set(0);
        self.jobs.with_label_values(&[outcome]).inc();
    }

    /// A message on the job stream that was not a job.
    pub(crate) fn poison(&self) {
        self.jobs.with_label_values(&["poison"]).inc();
    }

    /// A proof made by `backend` (the worker's, or `cpu` after a GPU fallback), with where
    /// its time went.
    pub(crate) fn proved(&self, backend: &str, witness_seconds: f64, prove_seconds: f64) {
        for (stage, seconds) in [("witness", witness_seconds), ("prove", prove_seconds)] {
            self.proof_duration
                .with_label_values(&[backend, stage])
                .observe(seconds);
        }
    }

    /// A split proof's witness made in `seconds`, its shard scalars (`bytes`) stored.
    pub(crate) fn split_witness(&self, seconds: f64, bytes: u64) {
        self.proof_duration
            .with_label_values(&["cpu", "split_witness"])
            .observe(seconds);
        self.split_bytes
            .with_label_values(&["stored"])
            .inc_by(bytes);
    }

    /// A shard computed by `backend`: its bases loaded in `load_seconds` (0 when resident),
    /// its MSMs in `msm_seconds`, its scalars (`bytes`) read.
    pub(crate) fn shard(&self, backend: &str, load_seconds: f64, msm_seconds: f64, bytes: u64) {
        if load_seconds > 0.0 {
            self.proof_duration
                .with_label_values(&[backend, "shard_load"])
                .observe(load_seconds);
        }
        self.proof_duration
            .with_label_values(&[backend, "shard_msm"])
            .observe(msm_seconds);
        self.split_bytes.with_label_values(&["read"]).inc_by(bytes);
    }

    /// A job a GPU worker proved on the CPU, for `reason` (one of
    /// [`GPU_FALLBACK_REASONS`]).
    pub(crate) fn gpu_fallback(&self, reason: &str) {
        self.gpu_fallbacks.with_label_values(&[reason]).inc();
    }

    /// A proving key looked up: `result` is one of [`KEY_CACHE_RESULTS`].
    pub(crate) fn key_lookup(&self, result: &str) {
        self.key_cache.with_label_values(&[result]).inc();
    }

    /// `bytes` of a proving key downloaded.
    pub(crate) fn key_downloaded(&self, bytes: u64) {
        self.key_download_bytes.inc_by(bytes);
    }

    /// A proving key loaded onto the backend in `seconds`.
    pub(crate) fn key_loaded(&self, seconds: f64) {
        self.key_load.observe(seconds);
    }
}

async fn serve(State(metrics): State<Arc<WorkerMetrics>>) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)],
        metrics.encode(),
    )
        .into_response()
}

/// Binds `addr` and serves `GET /metrics` (and `GET /health`) until `shutdown`.
///
/// # Errors
/// The address cannot be bound (in use, or not an address of this machine).
pub(crate) async fn listen(
    addr: SocketAddr,
    metrics: Arc<WorkerMetrics>,
    shutdown: CancellationToken,
) -> anyhow::Result<JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the metrics listener to {addr}"))?;
    let bound = listener.local_addr().unwrap_or(addr);
    tracing::info!(addr = %bound, "serving metrics on /metrics");
    let app = axum::Router::new()
        .route("/metrics", get(serve))
        .route("/health", get(|| async { "ok" }))
        .with_state(metrics);
    Ok(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await
        {
            tracing::error!(error = %e, "the metrics listener stopped");
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_convention_and_every_series_names_its_worker() {
        let m = WorkerMetrics::new("hospital-a-gpu1", "opencl", "opencl:0 (Some GPU)")
            .expect("metrics");
        m.proved("opencl", 0.1, 0.5);
        m.proved("cpu", 0.1, 2.5);
        m.gpu_fallback("out_of_memory");
        m.key_lookup("miss");
        let text = m.encode();
        for family in m.registry().gather() {
            let name = family.name();
            assert!(name.starts_with("pulse_worker_"), "{name}");
            let counter = family.get_field_type() == prometheus::proto::MetricType::COUNTER;
            assert_eq!(counter, name.ends_with("_total"), "{name}");
            for metric in family.get_metric() {
                assert!(
                    metric
                        .get_label()
                        .iter()
                        .any(|l| l.name() == "worker" && l.value() == "hospital-a-gpu1"),
                    "{name}"
                );
            }
        }
        assert!(
            text.contains("pulse_worker_key_cache_lookups_total{result=\"hit_disk\",worker=\"hospital-a-gpu1\"} 0"),
            "{text}"
        );
        assert!(
            text.contains(
                "pulse_worker_info{backend=\"opencl\",device=\"opencl:0 (Some GPU)\",version=\""
            ),
            "{text}"
        );
        assert!(
            text.contains("pulse_worker_gpu_fallbacks_total{reason=\"out_of_memory\",worker=\"hospital-a-gpu1\"} 1"),
            "{text}"
        );
    }
}
