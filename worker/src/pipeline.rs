//! The job loop, as three stages joined by bounded channels (the shape of zksync-era's
//! `prover_job_processor`):
//!
//! - the **picker** pulls one job at a time from the shared consumer (a fast worker pulls
//!   more often, so it takes more of the work), starts its lease, and terminates messages
//!   that are not proving jobs of this protocol version;
//! - the **executor** checks the job, gets the prover of its key (from memory, the key
//!   cache, or the object store), proves on a dedicated thread, and decides what becomes of
//!   the job;
//! - the **saver** publishes the result, waits for JetStream to store it, and only then
//!   acknowledges the job (or hands it back, or terminates it).
//!
//! A semaphore with one permit travels with each job from the picker to the saver, so the
//! worker holds one job at a time and never pulls work it cannot start.
//!
//! Every job is held under a lease: from the moment it is pulled until it is acknowledged,
//! a task sends JetStream in-progress acknowledgements well within the consumer's ack wait.
//! If the worker dies, the acknowledgements stop and the job is delivered to another worker.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{self, AckKind, consumer::PullConsumer};
use futures::StreamExt;
use pulse_circuits::artifacts::{CircuitId, CircuitParams, Hash32, Manifest};
use pulse_protocol::keys::{fetch_proving_key, parse_pk_hash};
use pulse_protocol::split::{fetch_scalars, put_scalars, to_hex};
use pulse_protocol::{
    JobOutcome, JobResult, ProvingJob, RESULT_SUBJECT, ShardJob, decode, encode, parse_shard_job_id,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio_util::sync::{CancellationToken, DropGuard};
use tracing::Instrument;

use crate::WorkerSummary;
use crate::config::WorkerConfig;
use crate::connect::{Backoff, open_consumer, open_shard_consumer};
use crate::engine::{Hardware, Loaded, ProverCache};
use crate::metrics::WorkerMetrics;
use crate::registry::SharedStatus;
use crate::split::{ShardCache, ShardEngine, make_witness, span_ranges};

/// How long one pull request waits on the server for a job.
const PULL_WAIT: Duration = Duration::from_secs(5);
/// How long one pull request waits for a shard job before the picker asks the job queue.
const SHARD_PULL_WAIT: Duration = Duration::from_millis(100);
/// How long one pull request waits for a job while shard jobs may arrive (the longest a
/// shard waits on an idle worker).
const JOB_PULL_WAIT_WITH_SHARDS: Duration = Duration::from_secs(1);
/// How often a worker looks for its shard consumer before the coordinator has made it.
const SHARD_CONSUMER_POLL: Duration = Duration::from_secs(2);

/// How many times an acknowledgement is tried before the job is left to its lease.
const ACK_ATTEMPTS: u32 = 3;

/// How often to send in-progress acknowledgements for a consumer whose ack wait is
/// `lease`: three times per lease, and at least every `HEARTBEAT_INTERVAL`.
pub(crate) fn progress_interval(lease: Duration) -> Duration {
    (lease / 3).clamp(
        Duration::from_millis(100),
        pulse_protocol::HEARTBEAT_INTERVAL,
    )
}

/// Keeps a job's lease alive until ended or dropped.
pub(crate) struct Lease {
    guard: Option<DropGuard>,
}

impl Lease {
    fn start(msg: Arc<jetstream::Message>, every: Duration) -> Self {
        let token = CancellationToken::new();
        let stop = token.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    _ = tick.tick() => {
                        if let Err(e) = msg.ack_with(AckKind::Progress).await {
                            tracing::debug!(reason = %e, "in-progress acknowledgement failed");
                        }
                    }
                }
            }
        });
        Self {
            guard: Some(token.drop_guard()),
        }
    }

    fn end(&mut self) {
        self.guard.take();
    }
}

/// A job message held under its lease.
pub(crate) struct Held {
    msg: Arc<jetstream::Message>,
    lease: Lease,
    delivered: i64,
    _slot: OwnedSemaphorePermit,
}

/// What a worker was asked to do.
pub(crate) enum Work {
    /// Prove a chunk, or (with a plan) make its split proof's witness.
    Prove(Box<ProvingJob>),
    /// One shard of a split proof.
    Shard(ShardJob),
}

/// A decoded job on its way to the executor.
pub(crate) struct Picked {
    held: Held,
    work: Work,
}

/// What becomes of a job message once its result (if any) is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Disposition {
    /// Done: acknowledge.
    Ack,
    /// A job no worker can prove: stop its redelivery.
    Term,
    /// A job that failed here: offer it again after a delay.
    Retry(Duration),
    /// Shutdown came first: offer it again at once, with no result.
    HandBack,
}

/// A job on its way to the saver.
pub(crate) struct Finished {
    held: Held,
    job_id: String,
    batch: u64,
    chunk: u32,
    outcome: Option<JobOutcome>,
    disposition: Disposition,
}

/// Runs `f` on a thread of its own (proving never runs on the async runtime) and waits for
/// it. A panic comes back as an error message. If the waiting future is dropped, the thread
/// runs on and its answer is dropped.
pub(crate) async fn on_thread<T, F>(name: &str, f: F) -> Result<T, String>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (tx, rx) = oneshot::channel();
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let answer = std::panic::catch_unwind(AssertUnwindSafe(f)).map_err(|panic| {
                panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".to_owned())
            });
            let _ = tx.send(answer);
        })
        .map_err(|e| format!("cannot start a thread: {e}"))?;
    match rx.await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(panic)) => Err(format!("panicked: {panic}")),
        Err(_) => Err("the thread ended without an answer".to_owned()),
    }
}

// ---------------------------------------------------------------------------------------------
// Picker
// ---------------------------------------------------------------------------------------------

/// Which consumer a message came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    /// The shared job consumer: proving jobs.
    Jobs,
    /// This worker's own consumer of shard jobs.
    Shards,
}

pub(crate) struct Picker {
    pub(crate) js: jetstream::Context,
    /// The shared job consumer.
    pub(crate) jobs: PullConsumer,
    /// This worker's shard consumer: `None` until the coordinator has made it (when it
    /// first sends this worker a shard).
    pub(crate) shards: Option<PullConsumer>,
    pub(crate) slots: Arc<Semaphore>,
    pub(crate) progress_every: Duration,
    pub(crate) max_jobs: Option<u64>,
    pub(crate) worker_id: String,
    pub(crate) metrics: Arc<WorkerMetrics>,
    pub(crate) shutdown: CancellationToken,
    pub(crate) out: mpsc::Sender<Picked>,
}

async fn pull_one(
    consumer: &PullConsumer,
    wait: Duration,
) -> Result<Option<jetstream::Message>, String> {
    let mut batch = consumer
        .batch()
        .max_messages(1)
        .expires(wait)
        .messages()
        .await
        .map_err(|e| e.to_string())?;
    match batch.next().await {
        None => Ok(None),
        Some(Ok(msg)) => Ok(Some(msg)),
        Some(Err(e)) => Err(e.to_string()),
    }
}

impl Picker {
    /// Pulls jobs until shutdown or `max_jobs`; returns the number of poison messages.
    ///
    /// With its slot held, the picker first asks its shard consumer (a shard is part of a
    /// proof already under way on other workers, so it goes first), briefly, then the
    /// shared job queue; with nothing in either, the slot goes back and it asks again.
    pub(crate) async fn run(mut self) -> u64 {
        let mut picked = 0u64;
        let mut poison = 0u64;
        let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(15));
        let mut shards_looked = None::<Instant>;
        loop {
            if self.max_jobs.is_some_and(|max| picked >= max) {
                tracing::info!(worker = %self.worker_id, jobs = picked, "took the jobs asked for; stopping");
                break;
            }
            if self.shards.is_none()
                && shards_looked.is_none_or(|t| t.elapsed() >= SHARD_CONSUMER_POLL)
            {
                shards_looked = Some(Instant::now());
                self.shards = open_shard_consumer(&self.js, &self.worker_id).await.ok();
            }
            let slot = tokio::select! {
                () = self.shutdown.cancelled() => break,
                slot = self.slots.clone().acquire_owned() => match slot {
                    Ok(slot) => slot,
                    Err(_) => break,
                },
            };
            let mut pulled = Ok(None);
            let mut source = Source::Shards;
            if let Some(shards) = self.shards.clone() {
                pulled = tokio::select! {
                    () = self.shutdown.cancelled() => break,
                    pulled = pull_one(&shards, SHARD_PULL_WAIT) => pulled,
                };
                if let Err(reason) = &pulled {
                    // The consumer may be gone (deleted, or NATS restarting): looked for
                    // again at the next round.
                    tracing::debug!(worker = %self.worker_id, %reason, "pulling shard jobs failed");
                    self.shards = None;
                    pulled = Ok(None);
                }
            }
            if matches!(pulled, Ok(None)) {
                source = Source::Jobs;
                // Short while shards may come, so that one waits at most this long.
                let wait = if self.shards.is_some() {
                    JOB_PULL_WAIT_WITH_SHARDS
                } else {
                    PULL_WAIT
                };
                pulled = tokio::select! {
                    () = self.shutdown.cancelled() => break,
                    pulled = pull_one(&self.jobs, wait) => pulled,
                };
            }
            let msg = match pulled {
                Ok(Some(msg)) => {
                    backoff.reset();
                    msg
                }
                // Nothing to do: the slot goes back.
                Ok(None) => continue,
                Err(reason) => {
                    drop(slot);
                    tracing::warn!(worker = %self.worker_id, %reason, "pulling jobs failed; retrying");
                    if !backoff.wait(&self.shutdown).await {
                        break;
                    }
                    match open_consumer(&self.js).await {
                        Ok(consumer) => self.jobs = consumer,
                        Err(missing) => tracing::warn!(
                            worker = %self.worker_id,
                            %missing,
                            "cannot open the job consumer (NATS restarting, or the coordinator has not set it up); retrying"
                        ),
                    }
                    continue;
                }
            };
            let (delivered, stream_seq) = msg
                .info()
                .map(|i| (i.delivered, i.stream_sequence))
                .unwrap_or((1, 0));
            let msg = Arc::new(msg);
            let mut lease = Lease::start(msg.clone(), self.progress_every);
            let decoded = match source {
                Source::Jobs => {
                    decode::<ProvingJob>(&msg.payload).map(|j| Work::Prove(Box::new(j)))
                }
                Source::Shards => decode::<ShardJob>(&msg.payload).map(Work::Shard),
            };
            match decoded {
                Ok(work) => {
                    if source == Source::Jobs {
                        picked += 1;
                    }
                    self.metrics.job_taken(delivered);
                    let held = Held {
                        msg,
                        lease,
                        delivered,
                        _slot: slot,
                    };
                    if self.out.send(Picked { held, work }).await.is_err() {
                        break;
                    }
                }
                Err(e) => {
                    // The reason names the problem; the payload may hold patient data and
                    // is never logged.
                    tracing::warn!(
                        worker = %self.worker_id,
                        stream_seq,
                        ?source,
                        bytes = msg.payload.len(),
                        reason = %e,
                        "not a job this worker understands; terminating the message"
                    );
                    lease.end();
                    settle(&msg, AckKind::Term).await;
                    poison += 1;
                    self.metrics.poison();
                }
            }
        }
        poison
    }
}

/// Sends a final acknowledgement of any kind, waiting for the server to confirm it; after
/// [`ACK_ATTEMPTS`] failures the job is left to its lease.
async fn settle(msg: &jetstream::Message, kind: AckKind) {
    for attempt in 1..=ACK_ATTEMPTS {
        match msg.double_ack_with(kind).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(attempt, ?kind, reason = %e, "acknowledgement failed");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
    tracing::warn!(
        ?kind,
        "could not acknowledge the job; it will be delivered again when its lease ends"
    );
}

// ---------------------------------------------------------------------------------------------
// Executor
// ---------------------------------------------------------------------------------------------

pub(crate) struct Executor {
    pub(crate) js: jetstream::Context,
    pub(crate) config: WorkerConfig,
    pub(crate) hardware: Hardware,
    pub(crate) provers: ProverCache,
    pub(crate) shards: ShardCache,
    pub(crate) status: SharedStatus,
    pub(crate) metrics: Arc<WorkerMetrics>,
    pub(crate) shutdown: CancellationToken,
    pub(crate) input: mpsc::Receiver<Picked>,
    pub(crate) out: mpsc::Sender<Finished>,
}

/// What a job asks for, checked against itself: the parameters name the circuit id, and
/// the witness has their shape.
fn check_job(job: &ProvingJob) -> Result<(CircuitParams, CircuitId), String> {
    let params = CircuitParams::new(job.slots as usize, job.depth as usize);
    let circuit_id: CircuitId = job
        .circuit_id
        .parse()
        .map_err(|e| format!("circuit_id is not a circuit id: {e}"))?;
    let expected = params.id();
    if circuit_id != expected {
        return Err(format!(
            "circuit_id {circuit_id} is not the circuit of {} slots and depth {} (that is {expected})",
            job.slots, job.depth
        ));
    }
    job.witness
        .check_shape(params)
        .map_err(|e| format!("the witness does not fit the circuit: {e}"))?;
    Ok((params, circuit_id))
}

/// The job against the key it names.
fn check_key(job: &ProvingJob, circuit_id: CircuitId, manifest: &Manifest) -> Result<(), String> {
    if manifest.circuit_id != circuit_id {
        return Err(format!(
            "proving key {} is for circuit {}, the job is for circuit {circuit_id}",
            manifest.pk_hash, manifest.circuit_id
        ));
    }
    let vk_hash: Hash32 = job
        .vk_hash
        .parse()
        .map_err(|e| format!("vk_hash is not a hash: {e}"))?;
    if vk_hash != manifest.vk_hash {
        return Err(format!(
            "the job expects verifying key {vk_hash}, but proving key {} goes with verifying key {}",
            manifest.pk_hash, manifest.vk_hash
        ));
    }
    Ok(())
}

impl Executor {
    pub(crate) async fn run(mut self) {
        while let Some(picked) = self.input.recv().await {
            let finished = self.execute(picked).await;
            if self.out.send(finished).await.is_err() {
                break;
            }
        }
    }

    async fn execute(&mut self, picked: Picked) -> Finished {
        let Picked { held, work } = picked;
        let is_shard = matches!(work, Work::Shard(_));
        let (job_id, batch, chunk) = match &work {
            Work::Prove(job) => (job.job_id.clone(), job.batch, job.chunk),
            Work::Shard(job) => {
                let id = parse_shard_job_id(&job.job_id);
                (
                    job.job_id.clone(),
                    id.map_or(0, |i| i.batch),
                    id.map_or(0, |i| i.chunk as u32),
                )
            }
        };
        let span = tracing::info_span!(
            "job",
            job = %job_id,
            batch,
            chunk,
            worker = %self.config.worker_id,
            delivered = held.delivered,
        );
        self.status
            .send_modify(|s| s.current_job = Some(job_id.clone()));
        let shutdown = self.shutdown.clone();
        let grace = self.config.shutdown_grace;
        let (outcome, disposition) = async {
            match (held.delivered > 1, is_shard) {
                (true, false) => tracing::info!(
                    "job picked again (an earlier attempt failed or lost its lease)"
                ),
                (false, false) => tracing::info!("job picked"),
                (true, true) => tracing::info!(
                    "shard picked again (an earlier attempt failed or lost its lease)"
                ),
                (false, true) => tracing::info!("shard picked"),
            }
            tokio::select! {
                done = self.dispatch(work) => done,
                () = async { shutdown.cancelled().await; tokio::time::sleep(grace).await } => {
                    tracing::warn!(grace_seconds = grace.as_secs_f64(), "shutting down: handing the job back");
                    (None, Disposition::HandBack)
                }
            }
        }
        .instrument(span)
        .await;
        Finished {
            held,
            job_id,
            batch,
            chunk,
            outcome,
            disposition,
        }
    }

    async fn dispatch(&mut self, work: Work) -> (Option<JobOutcome>, Disposition) {
        match work {
            Work::Prove(job) if !job.split.is_empty() => self.witness(*job).await,
            Work::Prove(job) => self.work(*job).await,
            Work::Shard(job) => self.shard(job).await,
        }
    }

    /// The key directory of `pk_hash` for a job, or the job's answer when there is none.
    async fn key_dir_for(
        &mut self,
        pk_hash: &str,
    ) -> Result<(Hash32, std::path::PathBuf), (Option<JobOutcome>, Disposition)> {
        let pk_hash = match parse_pk_hash(pk_hash) {
            Ok(h) => h,
            Err(e) => {
                let reason = e.to_string();
                tracing::warn!(%reason, "refusing the job");
                return Err((Some(JobOutcome::Failed { reason }), Disposition::Term));
            }
        };
        match self.key_dir(&pk_hash).await {
            Ok(dir) => Ok((pk_hash, dir)),
            Err(reason) => {
                tracing::warn!(%reason, "cannot get the proving key; the job goes back to the queue");
                Err((
                    Some(JobOutcome::Failed { reason }),
                    Disposition::Retry(self.config.retry_delay),
                ))
            }
        }
    }

    /// A split proof's witness: made from the key's matrices, cut into the plan's shards,
    /// each stored in the object store under its hash.
    async fn witness(&mut self, job: ProvingJob) -> (Option<JobOutcome>, Disposition) {
        let refuse = |reason: String| {
            tracing::warn!(%reason, "refusing the job");
            (Some(JobOutcome::Failed { reason }), Disposition::Term)
        };
        let (params, circuit_id) = match check_job(&job) {
            Ok(checked) => checked,
            Err(reason) => return refuse(reason),
        };
        let (_, dir) = match self.key_dir_for(&job.pk_hash).await {
            Ok(found) => found,
            Err(answer) => return answer,
        };
        let manifest = match crate::split::read_manifest(&dir) {
            Ok(m) => m,
            Err(reason) => return refuse(reason),
        };
        if let Err(reason) = check_key(&job, circuit_id, &manifest) {
            return refuse(reason);
        }
        let start = Instant::now();
        let plan = job.split;
        let witness = job.witness;
        let made = on_thread("pulse-split-witness", move || {
            make_witness(&dir, params, witness, &plan)
        })
        .await;
        let made = match made {
            Ok(Ok(made)) => made,
            Ok(Err(reason)) | Err(reason) => {
                tracing::warn!(%reason, "making the split witness failed; the job goes back to the queue");
                return (
                    Some(JobOutcome::Failed { reason }),
                    Disposition::Retry(self.config.retry_delay),
                );
            }
        };
        let mut stored = Vec::with_capacity(made.scalars.len());
        let mut bytes = 0;
        for scalars in made.scalars {
            match put_scalars(&self.js, scalars).await {
                Ok(r) => {
                    bytes += r.bytes;
                    stored.push(r);
                }
                Err(e) => {
                    let reason = e.to_string();
                    tracing::warn!(%reason, "storing shard scalars failed; the job goes back to the queue");
                    return (
                        Some(JobOutcome::Failed { reason }),
                        Disposition::Retry(self.config.retry_delay),
                    );
                }
            }
        }
        let seconds = start.elapsed().as_secs_f64();
        self.metrics.split_witness(seconds, bytes);
        tracing::info!(
            shards = stored.len(),
            bytes,
            witness_seconds = made.witness_seconds,
            reduction_seconds = made.reduction_seconds,
            "split witness stored"
        );
        (
            Some(JobOutcome::Witnessed {
                scalars: stored,
                witness_seconds: made.witness_seconds,
                reduction_seconds: made.reduction_seconds,
            }),
            Disposition::Ack,
        )
    }

    /// One shard of a split proof: its bases (resident, or read from the key file), its
    /// scalars from the object store, its sums.
    async fn shard(&mut self, job: ShardJob) -> (Option<JobOutcome>, Disposition) {
        // A shard that cannot be done here is answered, and the coordinator sends it to
        // another worker: shard jobs are never offered again on this worker's subject.
        let fail = |reason: String| {
            tracing::warn!(%reason, "cannot compute the shard");
            (Some(JobOutcome::Failed { reason }), Disposition::Term)
        };
        let ranges = match span_ranges(&job.span) {
            Ok(r) => r,
            Err(reason) => return fail(reason),
        };
        let bytes = ranges.base_bytes();
        if !self.shards.fits(bytes) {
            return fail(format!(
                "the shard's bases are {} MiB, more than this worker's base memory (--base-memory {} MiB)",
                bytes >> 20,
                self.config.base_memory.unwrap_or_default() >> 20
            ));
        }
        let (pk_hash, dir) = match self.key_dir_for(&job.pk_hash).await {
            Ok(found) => found,
            Err((outcome, _)) => return (outcome, Disposition::Term),
        };
        let mut load_seconds = 0.0;
        let engine = match self.shards.get(&pk_hash, &ranges) {
            Some(engine) => engine,
            None => {
                // Room first: the old shard's bases go before the new one's are read.
                self.shards.make_room(bytes);
                let hardware = self.hardware.clone();
                let load = ranges.clone();
                let start = Instant::now();
                let loaded = on_thread("pulse-load-shard", move || {
                    ShardEngine::load(&dir, load, &hardware)
                })
                .await;
                let engine = match loaded {
                    Ok(Ok(engine)) => Arc::new(engine),
                    Ok(Err(reason)) | Err(reason) => return fail(reason),
                };
                load_seconds = start.elapsed().as_secs_f64();
                tracing::info!(bytes, seconds = load_seconds, "shard bases loaded");
                self.shards.insert(pk_hash, ranges, engine.clone());
                let resident = self.shards.resident();
                self.status.send_modify(|s| s.resident = resident);
                engine
            }
        };
        let scalars = match fetch_scalars(&self.js, &job.scalars).await {
            Ok(s) => s,
            Err(e) => return fail(e.to_string()),
        };
        let received = scalars.len() as u64;
        let backend = engine.backend();
        let start = Instant::now();
        let sums = on_thread("pulse-shard", move || engine.sums(&scalars)).await;
        let sums = match sums {
            Ok(Ok(sums)) => sums,
            Ok(Err(reason)) | Err(reason) => return fail(reason),
        };
        let msm_seconds = start.elapsed().as_secs_f64();
        self.metrics
            .shard(backend, load_seconds, msm_seconds, received);
        tracing::info!(msm_seconds, load_seconds, backend, "shard computed");
        (
            Some(JobOutcome::Shard {
                sums: to_hex(&sums),
                msm_seconds,
                load_seconds,
                backend: backend.to_owned(),
            }),
            Disposition::Ack,
        )
    }

    async fn work(&mut self, job: ProvingJob) -> (Option<JobOutcome>, Disposition) {
        let refuse = |reason: String| {
            tracing::warn!(%reason, "refusing the job");
            (Some(JobOutcome::Failed { reason }), Disposition::Term)
        };
        let (_, circuit_id) = match check_job(&job) {
            Ok(checked) => checked,
            Err(reason) => return refuse(reason),
        };
        let pk_hash = match parse_pk_hash(&job.pk_hash) {
            Ok(h) => h,
            Err(e) => return refuse(e.to_string()),
        };
        if let Some(answer) = self.over_base_memory(&pk_hash).await {
            return answer;
        }
        let loaded = match self.prover(&pk_hash).await {
            Ok(loaded) => loaded,
            Err(reason) => {
                tracing::warn!(%reason, "cannot get the proving key; the job goes back to the queue");
                return (
                    Some(JobOutcome::Failed { reason }),
                    Disposition::Retry(self.config.retry_delay),
                );
            }
        };
        if let Err(reason) = check_key(&job, circuit_id, &loaded.manifest) {
            return refuse(reason);
        }
        let witness = job.witness;
        let prover = loaded.clone();
        match on_thread("pulse-prove", move || prover.prove(witness)).await {
            Ok(Ok(proved)) => {
                self.metrics
                    .proved(proved.backend, proved.witness_seconds, proved.prove_seconds);
                if proved.gpu_fallback.is_some() {
                    // The reason was logged once, when the key moved to the CPU.
                    self.metrics.gpu_fallback("out_of_memory");
                }
                tracing::info!(
                    witness_seconds = proved.witness_seconds,
                    prove_seconds = proved.prove_seconds,
                    backend = proved.backend,
                    "proved"
                );
                (
                    Some(JobOutcome::Proved {
                        proof: proved.artifact.to_json(),
                        witness_seconds: proved.witness_seconds,
                        prove_seconds: proved.prove_seconds,
                        backend: proved.backend.to_owned(),
                    }),
                    Disposition::Ack,
                )
            }
            Ok(Err(reason)) | Err(reason) => {
                tracing::warn!(%reason, "proving failed; the job goes back to the queue");
                (
                    Some(JobOutcome::Failed { reason }),
                    Disposition::Retry(self.config.retry_delay),
                )
            }
        }
    }

    /// With a base memory set, a key not loaded yet whose bases are larger is not taken
    /// whole: the job goes back (for a worker with the memory; the coordinator proves such
    /// keys split when no worker has it).
    async fn over_base_memory(
        &mut self,
        pk_hash: &Hash32,
    ) -> Option<(Option<JobOutcome>, Disposition)> {
        let limit = self.config.base_memory?;
        if self.provers.contains(pk_hash) {
            return None;
        }
        let dir = match self.key_dir(pk_hash).await {
            Ok(dir) => dir,
            Err(reason) => {
                return Some((
                    Some(JobOutcome::Failed { reason }),
                    Disposition::Retry(self.config.retry_delay),
                ));
            }
        };
        let path = dir.join(pulse_circuits::artifacts::PROVING_KEY_FILE);
        let header = on_thread("pulse-key-header", move || {
            pulse_prover::split::KeyHeader::read(&path).map_err(|e| e.to_string())
        })
        .await;
        let bytes = match header {
            Ok(Ok(h)) => h.lens.base_bytes(),
            Ok(Err(reason)) | Err(reason) => {
                return Some((
                    Some(JobOutcome::Failed { reason }),
                    Disposition::Retry(self.config.retry_delay),
                ));
            }
        };
        if bytes <= limit {
            return None;
        }
        let reason = format!(
            "the key's bases are {} MiB, more than this worker's base memory (--base-memory {} MiB): a worker with more proves it whole, or the coordinator proves it split",
            bytes >> 20,
            limit >> 20
        );
        tracing::warn!(%reason, "not taking the job whole");
        Some((
            Some(JobOutcome::Failed { reason }),
            Disposition::Retry(self.config.retry_delay),
        ))
    }

    /// The directory of key `pk_hash` in the key cache, downloading the key if needed.
    async fn key_dir(&mut self, pk_hash: &Hash32) -> Result<std::path::PathBuf, String> {
        let reported = AtomicU64::new(0);
        // Called only while downloading: a key found in the cache never reports progress.
        let downloaded = AtomicU64::new(0);
        let called = std::sync::atomic::AtomicBool::new(false);
        let progress = |done: u64, total: u64| {
            called.store(true, Ordering::Relaxed);
            downloaded.fetch_max(done, Ordering::Relaxed);
            // Log every tenth of the download.
            let tenth = (done * 10).checked_div(total).unwrap_or(10);
            if tenth > reported.swap(tenth, Ordering::Relaxed) {
                tracing::info!(
                    done_bytes = done,
                    total_bytes = total,
                    "downloading the proving key"
                );
            }
        };
        let hex = pk_hash.to_hex();
        let dir = fetch_proving_key(&self.js, &hex, &self.config.key_cache_dir, &progress)
            .await
            .map_err(|e| e.to_string())?;
        if called.load(Ordering::Relaxed) {
            self.metrics.key_lookup("miss");
            self.metrics
                .key_downloaded(downloaded.load(Ordering::Relaxed));
        } else {
            self.metrics.key_lookup("hit_disk");
        }
        Ok(dir)
    }

    /// The prover of key `pk_hash`: from memory, else from the key cache (downloading the
    /// key if needed), loaded on a thread of its own.
    async fn prover(&mut self, pk_hash: &Hash32) -> Result<Arc<Loaded>, String> {
        if let Some(loaded) = self.provers.get(pk_hash) {
            self.metrics.key_lookup("hit_memory");
            return Ok(loaded);
        }
        let hex = pk_hash.to_hex();
        let dir = self.key_dir(pk_hash).await?;
        let hardware = self.hardware.clone();
        let start = Instant::now();
        let loaded = on_thread("pulse-load-key", move || Loaded::load(&dir, &hardware))
            .await
            .map_err(|e| format!("loading the proving key {e}"))?
            .map_err(|e| e.to_string())?;
        self.metrics.key_loaded(start.elapsed().as_secs_f64());
        tracing::info!(
            pk_hash = %hex,
            circuit = %loaded.manifest.circuit_id,
            seconds = start.elapsed().as_secs_f64(),
            backend = loaded.proves_on(),
            "proving key loaded"
        );
        let loaded = Arc::new(loaded);
        self.provers.insert(*pk_hash, loaded.clone());
        let circuits = self.provers.circuits();
        self.status.send_modify(|s| s.circuits = circuits);
        Ok(loaded)
    }
}

// ---------------------------------------------------------------------------------------------
// Saver
// ---------------------------------------------------------------------------------------------

pub(crate) struct Saver {
    pub(crate) js: jetstream::Context,
    pub(crate) worker_id: String,
    pub(crate) status: SharedStatus,
    pub(crate) shutdown: CancellationToken,
    pub(crate) grace: Duration,
    pub(crate) metrics: Arc<WorkerMetrics>,
    pub(crate) input: mpsc::Receiver<Finished>,
}

impl Saver {
    pub(crate) async fn run(mut self) -> WorkerSummary {
        let mut summary = WorkerSummary::default();
        while let Some(finished) = self.input.recv().await {
            let span = tracing::info_span!(
                "job",
                job = %finished.job_id,
                batch = finished.batch,
                chunk = finished.chunk,
                worker = %self.worker_id,
            );
            self.save(finished, &mut summary).instrument(span).await;
            let done = summary.jobs_done;
            self.status.send_modify(|s| {
                s.current_job = None;
                s.jobs_done = done;
            });
        }
        summary
    }

    async fn save(&self, finished: Finished, summary: &mut WorkerSummary) {
        let Finished {
            mut held,
            job_id,
            outcome,
            disposition,
            ..
        } = finished;
        let settled = match disposition {
            Disposition::Ack => "proved",
            Disposition::Term => "refused",
            Disposition::Retry(_) => "failed",
            Disposition::HandBack => "handed_back",
        };
        if let Some(outcome) = outcome {
            let proved = matches!(outcome, JobOutcome::Proved { .. });
            let result = JobResult {
                job_id: job_id.clone(),
                worker_id: self.worker_id.clone(),
                outcome,
            };
            // Retries of this very attempt are deduplicated by JetStream.
            let msg_id = format!("{job_id}/{}/{}", self.worker_id, held.delivered);
            if !self.publish(&result, &msg_id).await {
                tracing::warn!(
                    "could not publish the result before shutdown; the job will be delivered again when its lease ends"
                );
                self.metrics.job_settled("handed_back");
                return;
            }
            if proved {
                summary.jobs_done += 1;
            } else {
                summary.jobs_failed += 1;
            }
        }
        held.lease.end();
        let kind = match disposition {
            Disposition::Ack => AckKind::Ack,
            Disposition::Term => AckKind::Term,
            Disposition::Retry(delay) => AckKind::Nak(Some(delay)),
            Disposition::HandBack => {
                summary.jobs_handed_back += 1;
                AckKind::Nak(None)
            }
        };
        settle(&held.msg, kind).await;
        self.metrics.job_settled(settled);
        tracing::debug!(?kind, "job settled");
    }

    /// Publishes a result and waits for JetStream to store it, retrying while NATS is
    /// away; after shutdown, for at most the grace period. Whether it was stored.
    async fn publish(&self, result: &JobResult, msg_id: &str) -> bool {
        let payload = encode(result);
        let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(10));
        let mut give_up_at: Option<Instant> = None;
        loop {
            let attempt = async {
                let publish = PublishMessage::build()
                    .payload(payload.clone().into())
                    .message_id(msg_id);
                self.js
                    .send_publish(RESULT_SUBJECT, publish)
                    .await
                    .map_err(|e| e.to_string())?
                    .await
                    .map_err(|e| e.to_string())
            };
            match attempt.await {
                Ok(_) => return true,
                Err(reason) => {
                    tracing::warn!(%reason, "publishing the result failed; retrying");
                }
            }
            if self.shutdown.is_cancelled() {
                let at = *give_up_at.get_or_insert_with(|| Instant::now() + self.grace);
                if Instant::now() >= at {
                    return false;
                }
            }
            tokio::time::sleep(backoff.next_delay()).await;
        }
    }
}
