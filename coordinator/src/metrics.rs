//! Every Prometheus metric the coordinator exports, and the `/metrics` handler.
//!
//! Names are `pulse_coordinator_<what>_<unit>`: counters end in `_total`, durations are in
//! `_seconds`, sizes in `_bytes`. Labels take few values: a rejection reason (the codes of
//! `TxError::reason`), a job outcome, a batch stage, a backend name, a worker id (chosen by
//! its operator, one per machine, and capped at [`MAX_LABEL_VALUES`]). Account, record and
//! grant ids, keys, CIDs and anything about a patient never become labels.
//!
//! A batch's latency runs from its first transaction received to its commit being final on
//! L1. Its stages add up to that latency:
//!
//! - `queue_wait`: first transaction received → sealing starts (the batch fills up);
//! - `witness`: sealing (the sequencer builds the chunk witnesses and records the batch);
//! - `proving`: sealed → every chunk proven (jobs waiting for a worker, and proving);
//! - `proof_check`: the coordinator checking the proofs it received;
//! - `l1_inclusion`: every chunk proven → the commit is final (IPFS, L1 transaction,
//!   confirmations).
//!
//! Each coordinator has a registry of its own, so several coordinators in one process
//! (tests, `pulse dev demo`) do not collide.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use prometheus::{
    Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use pulse_protocol::{JOB_STREAM, TX_STREAM, WORKER_BUCKET, WORKER_TTL, WorkerInfo, decode};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::sequencer::now_ms;
use crate::store::BatchRecord;

/// Seconds: from a small test circuit proved in a fraction of a second on a CPU to a
/// production chunk (depth 32, several slots) proved in minutes on a CPU.
const PROOF_BUCKETS: &[f64] = &[
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 60.0, 120.0, 300.0, 600.0,
];
/// Seconds: the seal deadline, proving and L1 confirmations.
const BATCH_BUCKETS: &[f64] = &[
    0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0,
    600.0, 1200.0, 1800.0,
];
/// Seconds: stages run from milliseconds (a proof check) to minutes (proving).
const STAGE_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 60.0, 120.0,
    300.0, 600.0, 1200.0,
];
/// Seconds: a pairing-based check takes milliseconds.
const CHECK_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];
/// Seconds: an IPFS add of a batch's public data.
const IPFS_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Transactions per batch.
const SIZE_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
];
/// Gas of one batch commit (a pairing check plus calldata).
const GAS_BUCKETS: &[f64] = &[
    100e3, 200e3, 300e3, 400e3, 500e3, 750e3, 1e6, 1.5e6, 2e6, 3e6, 5e6, 10e6,
];

/// The batch stages, in order (see the module documentation).
pub const STAGES: [&str; 5] = [
    "queue_wait",
    "witness",
    "proving",
    "proof_check",
    "l1_inclusion",
];
/// What can become of a proving job.
pub const JOB_OUTCOMES: [&str; 4] = ["proved", "invalid", "failed", "timed_out"];
/// Backends known in advance (the worker gauge shows 0 for them rather than nothing).
pub const KNOWN_BACKENDS: [&str; 3] = ["cpu", "cuda", "opencl"];
/// What happens to shards of split proofs (`pulse_coordinator_shards_total`).
pub const SHARD_EVENTS: [&str; 4] = ["sent", "answered", "retried", "checked"];

/// The most distinct values a label filled from a worker's message (worker id, backend)
/// takes; later ones are counted under `other`, so that a misbehaving worker cannot make
/// the series count grow without bound.
pub const MAX_LABEL_VALUES: usize = 256;

/// How often the stream depths and the worker registry are read.
const WATCH_INTERVAL: Duration = Duration::from_secs(2);

/// How many committed batches the live figures of the status page look back on.
const LIVE_BATCHES: usize = 200;
/// The window of the live throughput.
const LIVE_WINDOW: Duration = Duration::from_secs(60);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Admits label values that come from other processes: well-formed and not too many.
#[derive(Default)]
struct LabelGuard {
    seen: Mutex<HashSet<String>>,
}

impl LabelGuard {
    fn admit(&self, value: &str) -> String {
        let well_formed = !value.is_empty()
            && value.len() <= 64
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !well_formed {
            return "invalid".to_owned();
        }
        let mut seen = lock(&self.seen);
        if seen.contains(value) || seen.len() < MAX_LABEL_VALUES {
            seen.insert(value.to_owned());
            value.to_owned()
        } else {
            "other".to_owned()
        }
    }
}

/// Per-batch timings the batch record does not keep.
#[derive(Default, Clone, Copy)]
struct BatchClock {
    seal_started_ms: Option<u64>,
    check_seconds: f64,
}

/// One committed batch, for the live figures.
#[derive(Clone, Copy)]
struct Done {
    committed_ms: u64,
    txs: u64,
    latency: f64,
    stages: [f64; 5],
}

/// Latency percentiles over the last committed batches (seconds).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: Option<f64>,
    /// 90th percentile.
    pub p90: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
    /// How many batches they are over.
    pub samples: usize,
}

/// What the status page shows beside the snapshot: live throughput, latency percentiles,
/// where the time goes, and the workers.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Live {
    /// Transactions in batches committed during the last minute, per second.
    pub throughput_tps: f64,
    /// Transactions in batches committed by this run.
    pub committed_txs: u64,
    /// Batch latency (first transaction received → final on L1).
    pub latency_s: Percentiles,
    /// Mean seconds per stage over the same batches, by stage name.
    pub stages_s: BTreeMap<&'static str, f64>,
    /// Workers whose heartbeat is recent.
    pub workers: Vec<WorkerView>,
}

/// A registered worker as the status page shows it.
#[derive(Clone, Debug, Serialize)]
pub struct WorkerView {
    /// Its id.
    pub id: String,
    /// Its backend.
    pub backend: String,
    /// Its device, in words.
    pub device: String,
    /// Jobs proved since it started.
    pub jobs_done: u64,
    /// Whether it holds a job now.
    pub busy: bool,
    /// Seconds since its last heartbeat.
    pub heartbeat_age_s: u64,
}

/// The coordinator's metrics.
pub struct Metrics {
    registry: Registry,
    started: Instant,

    txs_received: IntCounter,
    txs_accepted: IntCounter,
    txs_rejected: IntCounterVec,
    txs_committed: IntCounter,
    redeliveries: IntCounterVec,
    tx_queue_depth: IntGauge,
    job_queue_depth: IntGauge,
    open_batch_txs: IntGauge,

    batches: IntCounterVec,
    batch_size: Histogram,
    batch_latency: Histogram,
    batch_stage: HistogramVec,
    oldest_batch_age: Gauge,
    batch_deadline: Gauge,
    job_timeout: Gauge,

    jobs_published: IntCounter,
    jobs: IntCounterVec,
    invalid_proofs: IntCounterVec,
    split_proofs: IntCounter,
    shards: IntCounterVec,
    shards_in_flight: IntGauge,
    split_bytes: IntCounter,
    bad_shards: IntCounterVec,
    proof_check: Histogram,
    proof_duration: HistogramVec,
    workers: IntGaugeVec,
    workers_busy: IntGauge,

    l1_commits: IntCounterVec,
    l1_batch_gas: Histogram,
    l1_gas_used: IntCounter,
    l1_pending_batches: IntGauge,
    l1_oldest_pending: Gauge,
    l1_last_batch: IntGauge,

    ipfs_add: Histogram,
    ipfs_add_failures: IntCounter,

    resident_memory: IntGauge,
    peak_memory: IntGauge,

    worker_labels: LabelGuard,
    backend_labels: LabelGuard,
    clocks: Mutex<HashMap<u64, BatchClock>>,
    l1_in_flight: Mutex<BTreeMap<u64, Instant>>,
    oldest_unfinished_ms: Mutex<Option<u64>>,
    done: Mutex<VecDeque<Done>>,
    registered: Mutex<Vec<WorkerInfo>>,
}

fn counter(r: &Registry, name: &str, help: &str) -> prometheus::Result<IntCounter> {
    let c = IntCounter::with_opts(Opts::new(name, help))?;
    r.register(Box::new(c.clone()))?;
    Ok(c)
}

fn counter_vec(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<IntCounterVec> {
    let c = IntCounterVec::new(Opts::new(name, help), labels)?;
    r.register(Box::new(c.clone()))?;
    Ok(c)
}

fn int_gauge(r: &Registry, name: &str, help: &str) -> prometheus::Result<IntGauge> {
    let g = IntGauge::with_opts(Opts::new(name, help))?;
    r.register(Box::new(g.clone()))?;
    Ok(g)
}

fn gauge(r: &Registry, name: &str, help: &str) -> prometheus::Result<Gauge> {
    let g = Gauge::with_opts(Opts::new(name, help))?;
    r.register(Box::new(g.clone()))?;
    Ok(g)
}

fn histogram(
    r: &Registry,
    name: &str,
    help: &str,
    buckets: &[f64],
) -> prometheus::Result<Histogram> {
    let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets.to_vec()))?;
    r.register(Box::new(h.clone()))?;
    Ok(h)
}

fn histogram_vec(
    r: &Registry,
    name: &str,
    help: &str,
    buckets: &[f64],
    labels: &[&str],
) -> prometheus::Result<HistogramVec> {
    let h = HistogramVec::new(
        HistogramOpts::new(name, help).buckets(buckets.to_vec()),
        labels,
    )?;
    r.register(Box::new(h.clone()))?;
    Ok(h)
}

/// Nearest-rank percentile of sorted `xs`.
fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
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

impl Metrics {
    /// Registers every metric in a registry of its own; the batch deadline and job timeout
    /// are exported too, so that alert rules can compare against them.
    ///
    /// # Errors
    /// A metric the registry refuses (a bug: names and labels are fixed).
    pub fn new(batch_deadline: Duration, job_timeout: Duration) -> prometheus::Result<Self> {
        let r = Registry::new();
        let m = Self {
            txs_received: counter(
                &r,
                "pulse_coordinator_txs_received_total",
                "Transaction messages taken from the stream (redeliveries included).",
            )?,
            txs_accepted: counter(
                &r,
                "pulse_coordinator_txs_accepted_total",
                "Transactions accepted into a batch.",
            )?,
            txs_rejected: counter_vec(
                &r,
                "pulse_coordinator_txs_rejected_total",
                "Transactions rejected, by reason code.",
                &["reason"],
            )?,
            txs_committed: counter(
                &r,
                "pulse_coordinator_txs_committed_total",
                "Transactions in batches final on L1.",
            )?,
            redeliveries: counter_vec(
                &r,
                "pulse_coordinator_redeliveries_total",
                "Messages delivered to the coordinator more than once, by stream.",
                &["stream"],
            )?,
            tx_queue_depth: int_gauge(
                &r,
                "pulse_coordinator_tx_queue_depth",
                "Transaction messages in the stream (waiting, or held until their batch is final).",
            )?,
            job_queue_depth: int_gauge(
                &r,
                "pulse_coordinator_job_queue_depth",
                "Proving jobs in the job stream (waiting for a worker or being proved).",
            )?,
            open_batch_txs: int_gauge(
                &r,
                "pulse_coordinator_open_batch_txs",
                "Transactions in the batch being filled.",
            )?,
            batches: counter_vec(
                &r,
                "pulse_coordinator_batches_total",
                "Batches by event: sealed, committed (final on L1), failed (refused by L1).",
                &["event"],
            )?,
            batch_size: histogram(
                &r,
                "pulse_coordinator_batch_size_txs",
                "Transactions per sealed batch.",
                SIZE_BUCKETS,
            )?,
            batch_latency: histogram(
                &r,
                "pulse_coordinator_batch_latency_seconds",
                "Seconds from a batch's first transaction received to its commit final on L1.",
                BATCH_BUCKETS,
            )?,
            batch_stage: histogram_vec(
                &r,
                "pulse_coordinator_batch_stage_seconds",
                "Seconds a committed batch spent in each stage; the stages add up to its latency.",
                STAGE_BUCKETS,
                &["stage"],
            )?,
            oldest_batch_age: gauge(
                &r,
                "pulse_coordinator_oldest_batch_age_seconds",
                "Age of the oldest batch not yet final on L1, since its first transaction (0 when none).",
            )?,
            batch_deadline: gauge(
                &r,
                "pulse_coordinator_batch_deadline_seconds",
                "The configured seal deadline of a batch.",
            )?,
            job_timeout: gauge(
                &r,
                "pulse_coordinator_job_timeout_seconds",
                "The configured time after which unanswered jobs are published again.",
            )?,
            jobs_published: counter(
                &r,
                "pulse_coordinator_jobs_published_total",
                "Proving jobs published (one per chunk, again after a timeout or an invalid proof).",
            )?,
            jobs: counter_vec(
                &r,
                "pulse_coordinator_jobs_total",
                "Proving jobs by outcome: proved (proof accepted), invalid (proof refused), failed (the worker gave up), timed_out (published again).",
                &["outcome"],
            )?,
            invalid_proofs: counter_vec(
                &r,
                "pulse_coordinator_invalid_proofs_total",
                "Proofs refused by the coordinator's check, by worker.",
                &["worker"],
            )?,
            split_proofs: counter(
                &r,
                "pulse_coordinator_split_proofs_total",
                "Chunk proofs assembled from shards computed on several workers (and accepted).",
            )?,
            shards: counter_vec(
                &r,
                "pulse_coordinator_shards_total",
                "Shards of split proofs by event: sent (to a worker), answered, retried (sent again: its worker left, was slow or failed), checked (sent to another worker after the proof failed its check).",
                &["event"],
            )?,
            shards_in_flight: int_gauge(
                &r,
                "pulse_coordinator_shards_in_flight",
                "Shards of split proofs sent and not yet answered.",
            )?,
            split_bytes: counter(
                &r,
                "pulse_coordinator_split_bytes_total",
                "Bytes of shard scalars moved for split proofs: stored by assemblers and read by shard workers.",
            )?,
            bad_shards: counter_vec(
                &r,
                "pulse_coordinator_bad_shards_total",
                "Shards whose sums a check on another worker showed to be wrong, by the worker that sent them.",
                &["worker"],
            )?,
            proof_check: histogram(
                &r,
                "pulse_coordinator_proof_check_seconds",
                "Seconds checking one chunk proof.",
                CHECK_BUCKETS,
            )?,
            proof_duration: histogram_vec(
                &r,
                "pulse_coordinator_proof_duration_seconds",
                "Seconds per chunk proof as the workers report them, by backend and stage (witness, prove).",
                PROOF_BUCKETS,
                &["backend", "stage"],
            )?,
            workers: IntGaugeVec::new(
                Opts::new(
                    "pulse_coordinator_workers",
                    "Workers with a recent heartbeat in the registry, by backend.",
                ),
                &["backend"],
            )?,
            workers_busy: int_gauge(
                &r,
                "pulse_coordinator_workers_busy",
                "Registered workers holding a job.",
            )?,
            l1_commits: counter_vec(
                &r,
                "pulse_coordinator_l1_commits_total",
                "Batch commits by result: committed (final), refused (L1 rejected the batch).",
                &["result"],
            )?,
            l1_batch_gas: histogram(
                &r,
                "pulse_coordinator_l1_batch_gas",
                "Gas used by each batch commit.",
                GAS_BUCKETS,
            )?,
            l1_gas_used: counter(
                &r,
                "pulse_coordinator_l1_gas_used_total",
                "Gas used by batch commits.",
            )?,
            l1_pending_batches: int_gauge(
                &r,
                "pulse_coordinator_l1_pending_batches",
                "Batches handed to the L1 sender and not yet final.",
            )?,
            l1_oldest_pending: gauge(
                &r,
                "pulse_coordinator_l1_oldest_pending_seconds",
                "Seconds the oldest batch handed to the L1 sender has waited to be final (0 when none).",
            )?,
            l1_last_batch: int_gauge(
                &r,
                "pulse_coordinator_l1_last_committed_batch",
                "Number of the last batch final on L1 (0 before the first).",
            )?,
            ipfs_add: histogram(
                &r,
                "pulse_coordinator_ipfs_add_seconds",
                "Seconds adding a batch's public data to IPFS.",
                IPFS_BUCKETS,
            )?,
            ipfs_add_failures: counter(
                &r,
                "pulse_coordinator_ipfs_add_failures_total",
                "Failed IPFS adds (retried).",
            )?,
            resident_memory: int_gauge(
                &r,
                "pulse_coordinator_process_resident_memory_bytes",
                "Resident memory of the coordinator's process.",
            )?,
            peak_memory: int_gauge(
                &r,
                "pulse_coordinator_process_peak_memory_bytes",
                "Peak resident memory of the coordinator's process.",
            )?,
            registry: r,
            started: Instant::now(),
            worker_labels: LabelGuard::default(),
            backend_labels: LabelGuard::default(),
            clocks: Mutex::new(HashMap::new()),
            l1_in_flight: Mutex::new(BTreeMap::new()),
            oldest_unfinished_ms: Mutex::new(None),
            done: Mutex::new(VecDeque::new()),
            registered: Mutex::new(Vec::new()),
        };
        m.registry.register(Box::new(m.workers.clone()))?;
        m.batch_deadline.set(batch_deadline.as_secs_f64());
        m.job_timeout.set(job_timeout.as_secs_f64());
        // Series that exist from the start, so that rates and alerts see zeros, not nothing.
        for stream in ["tx", "result"] {
            m.redeliveries.with_label_values(&[stream]);
        }
        for event in ["sealed", "committed", "failed"] {
            m.batches.with_label_values(&[event]);
        }
        for outcome in JOB_OUTCOMES {
            m.jobs.with_label_values(&[outcome]);
        }
        for result in ["committed", "refused"] {
            m.l1_commits.with_label_values(&[result]);
        }
        for event in SHARD_EVENTS {
            m.shards.with_label_values(&[event]);
        }
        for backend in KNOWN_BACKENDS {
            m.workers.with_label_values(&[backend]);
            for stage in ["witness", "prove"] {
                m.proof_duration.with_label_values(&[backend, stage]);
            }
        }
        for stage in STAGES {
            m.batch_stage.with_label_values(&[stage]);
        }
        Ok(m)
    }

    /// The registry (for tests and embedding).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The metrics in Prometheus's text format, with the gauges that depend on the time
    /// (ages, memory) brought up to date.
    pub fn encode(&self) -> String {
        let now = now_ms();
        let oldest = *lock(&self.oldest_unfinished_ms);
        self.oldest_batch_age
            .set(oldest.map_or(0.0, |first| now.saturating_sub(first) as f64 / 1000.0));
        {
            let in_flight = lock(&self.l1_in_flight);
            self.l1_pending_batches.set(in_flight.len() as i64);
            self.l1_oldest_pending.set(
                in_flight
                    .values()
                    .map(|t| t.elapsed().as_secs_f64())
                    .fold(0.0, f64::max),
            );
        }
        let (rss, peak) = process_memory();
        self.resident_memory.set(rss);
        self.peak_memory.set(peak);
        let mut out = String::new();
        if let Err(e) = TextEncoder::new().encode_utf8(&self.registry.gather(), &mut out) {
            tracing::error!(error = %e, "cannot encode the metrics");
        }
        out
    }

    /// A transaction message taken from the stream, delivered `delivered` times.
    pub(crate) fn tx_received(&self, delivered: i64) {
        self.txs_received.inc();
        if delivered > 1 {
            self.redeliveries.with_label_values(&["tx"]).inc();
        }
    }

    /// A transaction accepted into the open batch, whose first transaction arrived at
    /// `first_received_ms` and which now holds `open_txs`.
    pub(crate) fn tx_accepted(&self, first_received_ms: u64, open_txs: usize) {
        self.txs_accepted.inc();
        self.open_batch_txs.set(open_txs as i64);
        let mut oldest = lock(&self.oldest_unfinished_ms);
        *oldest = Some(oldest.map_or(first_received_ms, |o| o.min(first_received_ms)));
    }

    /// A transaction rejected with a reason code.
    pub(crate) fn tx_rejected(&self, reason: &str) {
        self.txs_rejected.with_label_values(&[reason]).inc();
    }

    /// A job result message, delivered `delivered` times.
    pub(crate) fn result_received(&self, delivered: i64) {
        if delivered > 1 {
            self.redeliveries.with_label_values(&["result"]).inc();
        }
    }

    /// Batch `record` sealed; sealing started at `started_ms`.
    pub(crate) fn batch_sealed(&self, record: &BatchRecord, started_ms: u64) {
        self.batches.with_label_values(&["sealed"]).inc();
        self.batch_size.observe(record.tx_hashes.len() as f64);
        self.open_batch_txs.set(0);
        lock(&self.clocks)
            .entry(record.number)
            .or_default()
            .seal_started_ms = Some(started_ms);
    }

    /// `count` jobs published.
    pub(crate) fn jobs_published(&self, count: usize) {
        self.jobs_published.inc_by(count as u64);
    }

    /// `count` jobs unanswered past the timeout (they are published again).
    pub(crate) fn jobs_timed_out(&self, count: usize) {
        self.jobs
            .with_label_values(&["timed_out"])
            .inc_by(count as u64);
    }

    /// A worker answered a job with a failure.
    pub(crate) fn job_failed(&self) {
        self.jobs.with_label_values(&["failed"]).inc();
    }

    /// A worker's proof with the times it reports.
    pub(crate) fn proof_reported(&self, backend: &str, witness_seconds: f64, prove_seconds: f64) {
        let backend = self.backend_labels.admit(backend);
        for (stage, seconds) in [("witness", witness_seconds), ("prove", prove_seconds)] {
            if seconds.is_finite() && seconds >= 0.0 {
                self.proof_duration
                    .with_label_values(&[backend.as_str(), stage])
                    .observe(seconds);
            }
        }
    }

    /// A proof of batch `batch` checked in `seconds`: accepted, or refused (from `worker`).
    pub(crate) fn proof_checked(&self, batch: u64, seconds: f64, valid: bool, worker: &str) {
        self.proof_check.observe(seconds);
        lock(&self.clocks).entry(batch).or_default().check_seconds += seconds;
        if valid {
            self.jobs.with_label_values(&["proved"]).inc();
        } else {
            self.jobs.with_label_values(&["invalid"]).inc();
            let worker = self.worker_labels.admit(worker);
            self.invalid_proofs.with_label_values(&[&worker]).inc();
        }
    }

    /// A split proof accepted.
    pub(crate) fn split_proof(&self) {
        self.split_proofs.inc();
        self.jobs.with_label_values(&["proved"]).inc();
    }

    /// A shard event (one of [`SHARD_EVENTS`]); `bytes` of scalars moved with it.
    pub(crate) fn shard_event(&self, event: &str, bytes: u64) {
        self.shards.with_label_values(&[event]).inc();
        self.split_bytes.inc_by(bytes);
    }

    /// `bytes` of shard scalars stored by an assembler.
    pub(crate) fn shard_event_bytes(&self, bytes: u64) {
        self.split_bytes.inc_by(bytes);
    }

    /// A proof of batch `batch` checked in `seconds` (a split proof's: assembled and
    /// checked here).
    pub(crate) fn proof_check_seconds(&self, batch: u64, seconds: f64) {
        self.proof_check.observe(seconds);
        lock(&self.clocks).entry(batch).or_default().check_seconds += seconds;
    }

    /// Shards sent and not answered, now.
    pub(crate) fn set_shards_in_flight(&self, n: usize) {
        self.shards_in_flight.set(n as i64);
    }

    /// A worker sent a wrong shard: counted as a bad shard and as an invalid proof.
    pub(crate) fn bad_shard(&self, worker: &str) {
        let worker = self.worker_labels.admit(worker);
        self.bad_shards.with_label_values(&[&worker]).inc();
        self.invalid_proofs.with_label_values(&[&worker]).inc();
    }

    /// The live workers of the registry, as last read.
    pub(crate) fn live_workers(&self) -> Vec<WorkerInfo> {
        lock(&self.registered).clone()
    }

    /// An IPFS add that took `seconds` and succeeded or not.
    pub(crate) fn ipfs_added(&self, seconds: f64, ok: bool) {
        if ok {
            self.ipfs_add.observe(seconds);
        } else {
            self.ipfs_add_failures.inc();
        }
    }

    /// Batch `batch` handed to the L1 sender.
    pub(crate) fn l1_submitted(&self, batch: u64) {
        lock(&self.l1_in_flight).insert(batch, Instant::now());
    }

    /// Batch `record` final on L1 (its `committed_ms` and `l1_gas` set).
    pub(crate) fn batch_committed(&self, record: &BatchRecord) {
        lock(&self.l1_in_flight).remove(&record.number);
        let clock = lock(&self.clocks)
            .remove(&record.number)
            .unwrap_or_default();
        let txs = record.tx_hashes.len() as u64;
        self.l1_commits.with_label_values(&["committed"]).inc();
        self.batches.with_label_values(&["committed"]).inc();
        self.txs_committed.inc_by(txs);
        self.l1_last_batch.set(record.number as i64);
        if let Some(gas) = record.l1_gas {
            self.l1_batch_gas.observe(gas as f64);
            self.l1_gas_used.inc_by(gas);
        }
        let committed = record.committed_ms.unwrap_or_else(now_ms);
        let secs = |from: u64, to: u64| to.saturating_sub(from) as f64 / 1000.0;
        let first = record.first_received_ms;
        let seal_started = clock
            .seal_started_ms
            .unwrap_or(record.sealed_ms)
            .clamp(first, record.sealed_ms.max(first));
        let proven = record.proven_ms.unwrap_or(committed);
        let stages = [
            secs(first, seal_started),
            secs(seal_started, record.sealed_ms),
            (secs(record.sealed_ms, proven) - clock.check_seconds).max(0.0),
            clock.check_seconds,
            secs(proven, committed),
        ];
        let latency = secs(first, committed);
        self.batch_latency.observe(latency);
        for (stage, seconds) in STAGES.iter().zip(stages) {
            self.batch_stage
                .with_label_values(&[stage])
                .observe(seconds);
        }
        let mut done = lock(&self.done);
        done.push_back(Done {
            committed_ms: committed,
            txs,
            latency,
            stages,
        });
        while done.len() > LIVE_BATCHES {
            done.pop_front();
        }
    }

    /// L1 refused batch `batch`.
    pub(crate) fn batch_refused(&self, batch: u64) {
        lock(&self.l1_in_flight).remove(&batch);
        lock(&self.clocks).remove(&batch);
        self.l1_commits.with_label_values(&["refused"]).inc();
        self.batches.with_label_values(&["failed"]).inc();
    }

    /// The first-transaction time of the oldest batch not yet final (open or pending).
    pub(crate) fn set_oldest_unfinished(&self, first_received_ms: Option<u64>) {
        *lock(&self.oldest_unfinished_ms) = first_received_ms;
    }

    /// The live figures and the registered workers, for the status page.
    pub fn live(&self) -> Live {
        let now = now_ms();
        let done: Vec<Done> = lock(&self.done).iter().copied().collect();
        let window_ms = LIVE_WINDOW.as_millis() as u64;
        let recent: u64 = done
            .iter()
            .filter(|d| now.saturating_sub(d.committed_ms) <= window_ms)
            .map(|d| d.txs)
            .sum();
        let span = self
            .started
            .elapsed()
            .min(LIVE_WINDOW)
            .as_secs_f64()
            .max(1.0);
        let mut latencies: Vec<f64> = done.iter().map(|d| d.latency).collect();
        latencies.sort_by(f64::total_cmp);
        let mut stages_s = BTreeMap::new();
        if !done.is_empty() {
            for (i, stage) in STAGES.iter().enumerate() {
                let mean = done.iter().map(|d| d.stages[i]).sum::<f64>() / done.len() as f64;
                stages_s.insert(*stage, mean);
            }
        }
        let now_s = now / 1000;
        let workers = lock(&self.registered)
            .iter()
            .map(|w| WorkerView {
                id: w.worker_id.clone(),
                backend: w.backend.clone(),
                device: w.device.clone(),
                jobs_done: w.jobs_done,
                busy: w.current_job.is_some(),
                heartbeat_age_s: now_s.saturating_sub(w.heartbeat_at),
            })
            .collect();
        Live {
            throughput_tps: recent as f64 / span,
            committed_txs: self.txs_committed.get(),
            latency_s: Percentiles {
                p50: percentile(&latencies, 50.0),
                p90: percentile(&latencies, 90.0),
                p99: percentile(&latencies, 99.0),
                samples: latencies.len(),
            },
            stages_s,
            workers,
        }
    }

    fn set_workers(&self, mut workers: Vec<WorkerInfo>) {
        workers.sort_by(|a, b| a.worker_id.cmp(&b.worker_id));
        self.workers.reset();
        for backend in KNOWN_BACKENDS {
            self.workers.with_label_values(&[backend]);
        }
        for w in &workers {
            let backend = self.backend_labels.admit(&w.backend);
            self.workers.with_label_values(&[&backend]).inc();
            // The series starts at 0 when the worker registers, so that the first invalid
            // proof is an increase Prometheus can see (a series born at 1 shows none).
            let id = self.worker_labels.admit(&w.worker_id);
            self.invalid_proofs.with_label_values(&[&id]);
            self.bad_shards.with_label_values(&[&id]);
        }
        self.workers_busy
            .set(workers.iter().filter(|w| w.current_job.is_some()).count() as i64);
        *lock(&self.registered) = workers;
    }
}

/// Reads the stream depths and the worker registry every [`WATCH_INTERVAL`] until
/// `shutdown`, outside the event loop so that a slow NATS never holds it up.
pub(crate) async fn watch(
    js: jetstream::Context,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(WATCH_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        for (stream, gauge) in [
            (TX_STREAM, &metrics.tx_queue_depth),
            (JOB_STREAM, &metrics.job_queue_depth),
        ] {
            if let Ok(mut s) = js.get_stream(stream).await
                && let Ok(info) = s.info().await
            {
                gauge.set(info.state.messages as i64);
            }
        }
        if let Some(workers) = registered_workers(&js).await {
            metrics.set_workers(workers);
        }
    }
}

/// The workers in the registry whose heartbeat is recent; `None` when it cannot be read.
async fn registered_workers(js: &jetstream::Context) -> Option<Vec<WorkerInfo>> {
    let kv = js.get_key_value(WORKER_BUCKET).await.ok()?;
    let mut keys = kv.keys().await.ok()?;
    let now = now_ms() / 1000;
    let mut workers = Vec::new();
    while let Some(key) = keys.next().await {
        let Ok(key) = key else { continue };
        if let Ok(Some(bytes)) = kv.get(&key).await
            && let Ok(info) = decode::<WorkerInfo>(&bytes)
            && now.saturating_sub(info.heartbeat_at) < WORKER_TTL.as_secs()
        {
            workers.push(info);
        }
    }
    Some(workers)
}

/// `GET /metrics`.
pub(crate) async fn serve(State(metrics): State<Arc<Metrics>>) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)],
        metrics.encode(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let xs: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&xs, 50.0), Some(50.0));
        assert_eq!(percentile(&xs, 99.0), Some(99.0));
        assert_eq!(percentile(&[3.0], 90.0), Some(3.0));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn foreign_label_values_are_checked_and_capped() {
        let guard = LabelGuard::default();
        assert_eq!(guard.admit("hospital-a_1"), "hospital-a_1");
        assert_eq!(guard.admit("bad id"), "invalid");
        assert_eq!(guard.admit(""), "invalid");
        for i in 0..MAX_LABEL_VALUES {
            guard.admit(&format!("w{i}"));
        }
        assert_eq!(guard.admit("one-too-many"), "other");
        assert_eq!(guard.admit("hospital-a_1"), "hospital-a_1");
    }

    #[test]
    fn names_follow_the_convention_and_series_exist_from_the_start() {
        let m = Metrics::new(Duration::from_secs(5), Duration::from_secs(60)).expect("metrics");
        let text = m.encode();
        for family in m.registry().gather() {
            let name = family.name();
            assert!(name.starts_with("pulse_coordinator_"), "{name}");
            let counter = family.get_field_type() == prometheus::proto::MetricType::COUNTER;
            assert_eq!(counter, name.ends_with("_total"), "{name}");
        }
        assert!(
            text.contains("pulse_coordinator_jobs_total{outcome=\"timed_out\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("pulse_coordinator_workers{backend=\"cpu\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("pulse_coordinator_batch_deadline_seconds 5"),
            "{text}"
        );
    }
}
