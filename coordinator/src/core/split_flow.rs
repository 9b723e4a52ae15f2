//! The coordinator's side of split proofs (see [`crate::split`]): planning a chunk, sending
//! its shards, adding their sums, checking the proof, finding a worker that lied, and
//! looking after shards whose workers went away.

use std::time::{Duration, Instant};

use ark_ff::UniformRand;
use async_nats::HeaderMap;
use pulse_circuits::artifacts::ProofArtifact;
use pulse_protocol::nats::{LayoutOptions, shard_consumer_config};
use pulse_protocol::split::{delete_scalars, from_hex};
use pulse_protocol::{
    JobOutcome, JobResult, SHARD_STREAM, ScalarsRef, ShardId, ShardJob, ShardSpan, WorkerInfo,
    encode, shard_job_id, shard_subject,
};
use pulse_prover::split::{ShardRanges, ShardScalars, decode_sums};
use tracing::{error, info, warn};

use super::Coordinator;
use crate::split::{self, Decision, SHARD_WORKER_SILENCE, SplitChunk, span_of};
use crate::store::BatchStatus;

/// How often the split proofs are looked after.
const SPLIT_TICK: Duration = Duration::from_secs(1);

/// How a chunk's job goes out.
pub(super) enum ChunkPlan {
    /// Whole.
    Whole,
    /// As the witness job of a split proof with these shards.
    Split(Vec<ShardSpan>),
    /// Not now: no live worker can take it.
    Blocked,
}

/// Unix seconds now.
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Coordinator {
    /// Live workers whose heartbeat is recent enough to be sent a shard.
    fn shard_workers(&self) -> Vec<WorkerInfo> {
        let now = unix_now();
        self.metrics
            .live_workers()
            .into_iter()
            .filter(|w| now.saturating_sub(w.heartbeat_at) <= SHARD_WORKER_SILENCE.as_secs())
            .collect()
    }

    /// Whether chunk `i` of batch `n` is being proved split, within its deadline.
    pub(super) fn split_in_progress(&self, n: u64, i: usize) -> bool {
        self.splits
            .get(&(n, i))
            .is_some_and(|s| s.started.elapsed() < self.config.split.deadline)
    }

    /// Decides how chunk `i` of batch `n` is proved now, and starts a split's state.
    pub(super) fn plan_chunk(&mut self, n: u64, i: usize, generation: u32) -> ChunkPlan {
        let workers = self.metrics.live_workers();
        let waiting = self
            .pending
            .values()
            .filter(|b| b.status == BatchStatus::Proving)
            .map(|b| b.proofs.iter().filter(|p| p.is_none()).count())
            .sum();
        let decision = split::decide(&self.config.split, self.key.lens, &workers, waiting);
        match decision {
            Decision::Whole => {
                self.split_blocked.remove(&(n, i));
                self.forget_split(n, i);
                ChunkPlan::Whole
            }
            Decision::Split(k) => {
                self.split_blocked.remove(&(n, i));
                self.forget_split(n, i);
                let plan = ShardRanges::plan(self.key.lens, k);
                let spans = plan.iter().map(span_of).collect();
                info!(
                    batch = n,
                    chunk = i,
                    shards = k,
                    "proving the chunk split across workers"
                );
                self.splits
                    .insert((n, i), SplitChunk::new(generation, plan));
                ChunkPlan::Split(spans)
            }
            Decision::NoWorker(why) => {
                if self.split_blocked.get(&(n, i)) != Some(&why) {
                    if workers.is_empty() {
                        info!(batch = n, chunk = i, "{why}");
                    } else {
                        error!(batch = n, chunk = i, "{why}");
                    }
                }
                self.split_blocked.insert((n, i), why);
                ChunkPlan::Blocked
            }
        }
    }

    /// After a whole job of chunk `i` failed: if the live workers now call for a split (or
    /// none can take it), the chunk is planned again at once.
    pub(super) async fn replan_if_split(&mut self, n: u64, i: usize) {
        if self.splits.contains_key(&(n, i)) {
            return;
        }
        let workers = self.metrics.live_workers();
        let whole =
            split::decide(&self.config.split, self.key.lens, &workers, 1) == Decision::Whole;
        if !whole {
            info!(
                batch = n,
                chunk = i,
                "a whole job failed and the live workers cannot hold the key: planning the chunk again"
            );
            self.restart_chunk(n, i).await;
        }
    }

    /// Drops the split state of chunk `i` of batch `n` and deletes its stored scalars.
    pub(super) fn forget_split(&mut self, n: u64, i: usize) {
        if let Some(s) = self.splits.remove(&(n, i))
            && let Some(scalars) = s.scalars
        {
            self.delete_scalars_later(scalars);
        }
    }

    fn delete_scalars_later(&self, scalars: Vec<ScalarsRef>) {
        let js = self.js.clone();
        tokio::spawn(async move {
            for s in scalars {
                if let Err(e) = delete_scalars(&js, &s.sha256).await {
                    warn!(error = %e, "could not delete shard scalars; they stay in the store");
                }
            }
        });
    }

    /// A witness job's answer: the shard scalars are stored; every shard is sent.
    pub(super) async fn on_witnessed(
        &mut self,
        n: u64,
        chunk: usize,
        generation: u32,
        worker: &str,
        scalars: Vec<ScalarsRef>,
    ) {
        let Some(s) = self.splits.get_mut(&(n, chunk)) else {
            // A split given up (or already proved): its scalars are not needed.
            self.delete_scalars_later(scalars);
            return;
        };
        if s.generation != generation || s.scalars.is_some() {
            let kept: Vec<String> = s
                .scalars
                .iter()
                .flatten()
                .map(|r| r.sha256.clone())
                .collect();
            let stale = scalars
                .into_iter()
                .filter(|r| !kept.contains(&r.sha256))
                .collect();
            self.delete_scalars_later(stale);
            return;
        }
        let fits = scalars.len() == s.shards.len()
            && scalars.iter().zip(&s.shards).all(|(r, shard)| {
                r.bytes == ShardScalars::encoded_len(&shard.ranges) as u64
                    && r.sha256.len() == 64
                    && from_hex(&r.sha256).is_some()
            });
        if !fits {
            warn!(
                batch = n,
                chunk,
                worker,
                "a split witness does not fit its plan (shard count or sizes); the witness is made again"
            );
            *self.invalid_by_worker.entry(worker.to_owned()).or_default() += 1;
            self.summary.invalid_proofs += 1;
            self.delete_scalars_later(scalars);
            self.restart_chunk(n, chunk).await;
            return;
        }
        let bytes: u64 = scalars.iter().map(|r| r.bytes).sum();
        info!(
            batch = n,
            chunk,
            assembler = worker,
            shards = scalars.len(),
            bytes,
            "split witness stored; sending the shards"
        );
        s.scalars = Some(scalars);
        s.assembler = Some(worker.to_owned());
        self.metrics.shard_event_bytes(bytes);
        for k in 0..self.splits.get(&(n, chunk)).map_or(0, |s| s.shards.len()) {
            self.send_shard(n, chunk, k, &[], "sent").await;
        }
    }

    /// Sends shard `k` of a split chunk to a live worker not in `excluded` (one holding it
    /// resident if any). Without one, it stays unsent and the tick tries again.
    async fn send_shard(
        &mut self,
        n: u64,
        chunk: usize,
        k: usize,
        excluded: &[String],
        event: &str,
    ) {
        let workers = self.shard_workers();
        let Some(s) = self.splits.get(&(n, chunk)) else {
            return;
        };
        let Some(shard) = s.shards.get(k) else {
            return;
        };
        let Some(scalars) = s.scalars.as_ref().and_then(|v| v.get(k)).cloned() else {
            return;
        };
        let checking = s.checking;
        let load = |w: &str| {
            s.shards
                .iter()
                .enumerate()
                .filter(|(j, o)| *j != k && o.worker.as_deref() == Some(w) && o.waiting(checking))
                .count()
        };
        let ranges = shard.ranges.clone();
        let Some(worker) = split::pick_worker(&workers, &self.pk_hash, &ranges, excluded, &load)
        else {
            warn!(
                batch = n,
                chunk,
                shard = k,
                bytes = ranges.base_bytes(),
                "no live worker can take this shard now (base memory, or all excluded); it is sent when one can"
            );
            self.mark_unsent(n, chunk, k);
            return;
        };
        if !self.ensure_shard_consumer(&worker).await {
            return;
        }
        let Some(s) = self.splits.get_mut(&(n, chunk)) else {
            return;
        };
        let generation = s.generation;
        let Some(shard) = s.shards.get_mut(k) else {
            return;
        };
        shard.lease += 1;
        shard.worker = Some(worker.clone());
        shard.sent_at = Some(Instant::now());
        let id = ShardId {
            batch: n,
            chunk,
            generation,
            shard: k,
            lease: shard.lease,
        };
        let job = ShardJob {
            job_id: shard_job_id(id),
            circuit_id: self.circuit_id.clone(),
            pk_hash: self.pk_hash.clone(),
            span: span_of(&ranges),
            scalars: scalars.clone(),
        };
        let mut headers = HeaderMap::new();
        headers.insert(
            "Nats-Msg-Id",
            format!("{}.{:016x}", job.job_id, self.run_id).as_str(),
        );
        let published = match self
            .js
            .publish_with_headers(shard_subject(&worker), headers, encode(&job).into())
            .await
        {
            Ok(ack) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match published {
            Ok(()) => {
                info!(batch = n, chunk, shard = k, worker = %worker, event, "shard sent");
                self.metrics.shard_event(event, scalars.bytes);
            }
            Err(e) => {
                warn!(batch = n, chunk, shard = k, error = %e, "shard not published; it is sent again");
                self.mark_unsent(n, chunk, k);
            }
        }
    }

    /// Shard `k` of a split chunk has no worker now: the tick sends it when one can take it.
    fn mark_unsent(&mut self, n: u64, chunk: usize, k: usize) {
        if let Some(shard) = self
            .splits
            .get_mut(&(n, chunk))
            .and_then(|s| s.shards.get_mut(k))
        {
            shard.worker = None;
            shard.sent_at = None;
        }
    }

    /// Makes worker `worker`'s shard consumer (once per run).
    async fn ensure_shard_consumer(&mut self, worker: &str) -> bool {
        if self.shard_consumers.contains(worker) {
            return true;
        }
        let options = LayoutOptions {
            job_lease: self.config.job_lease,
            replicas: self.config.nats_replicas,
            ..LayoutOptions::default()
        };
        let made = match self.js.get_stream(SHARD_STREAM).await {
            Ok(stream) => stream
                .create_consumer(shard_consumer_config(worker, options))
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match made {
            Ok(()) => {
                self.shard_consumers.insert(worker.to_owned());
                true
            }
            Err(e) => {
                warn!(worker, error = %e, "cannot make the worker's shard consumer; the shard is sent again");
                false
            }
        }
    }

    /// A shard job's answer.
    pub(super) async fn on_shard_result(&mut self, id: ShardId, result: JobResult) {
        let key = (id.batch, id.chunk);
        let worker = result.worker_id;
        let Some(s) = self.splits.get_mut(&key) else {
            return;
        };
        let checking = s.checking;
        let Some(shard) = s.shards.get_mut(id.shard) else {
            return;
        };
        if s.generation != id.generation
            || shard.lease != id.lease
            || shard.worker.as_deref() != Some(worker.as_str())
            || !shard.waiting(checking)
        {
            // An answer to a shard sent again since, or from a worker it was not sent to.
            return;
        }
        let sums = match result.outcome {
            JobOutcome::Shard { sums, .. } => from_hex(&sums)
                .ok_or_else(|| "the sums are not hex".to_owned())
                .and_then(|b| decode_sums(&b).map_err(|e| e.to_string())),
            JobOutcome::Failed { reason } => {
                warn!(batch = id.batch, chunk = id.chunk, shard = id.shard, worker = %worker, %reason, "a worker could not compute a shard; it goes to another worker");
                self.metrics.job_failed();
                let excluded = self.excluded_for(key, id.shard, &worker);
                self.send_shard(id.batch, id.chunk, id.shard, &excluded, "retried")
                    .await;
                return;
            }
            _ => Err("the answer is not a shard's sums".to_owned()),
        };
        let sums = match sums {
            Ok(sums) => sums,
            Err(reason) => {
                warn!(batch = id.batch, chunk = id.chunk, shard = id.shard, worker = %worker, %reason, "a worker sent unreadable shard sums; counted against it, and the shard goes to another worker");
                self.blame(&worker);
                let excluded = self.excluded_for(key, id.shard, &worker);
                self.send_shard(id.batch, id.chunk, id.shard, &excluded, "retried")
                    .await;
                return;
            }
        };
        if checking {
            shard.check = Some((sums, worker));
        } else {
            shard.sums = Some((sums, worker));
        }
        self.metrics.shard_event("answered", 0);
        if s.round_done() {
            self.finish_round(id.batch, id.chunk).await;
        }
    }

    /// The workers a shard must not go to now: `worker` (it failed or left), and in a
    /// check the one whose answer is being checked.
    fn excluded_for(&self, key: (u64, usize), k: usize, worker: &str) -> Vec<String> {
        let mut out = vec![worker.to_owned()];
        if let Some(s) = self.splits.get(&key)
            && s.checking
            && let Some(Some((_, first))) = s.shards.get(k).map(|s| &s.sums)
            && first != worker
        {
            out.push(first.clone());
        }
        out
    }

    /// Counts a wrong shard (or witness) against `worker`, as an invalid proof is.
    fn blame(&mut self, worker: &str) {
        self.metrics.bad_shard(worker);
        *self.invalid_by_worker.entry(worker.to_owned()).or_default() += 1;
        self.summary.invalid_proofs += 1;
        self.summary.bad_shards += 1;
    }

    /// Every shard of the round has answered: the sums added, the proof formed with fresh
    /// randomisers and checked. A proof that fails sends every shard to another worker;
    /// one that fails after the check starts the chunk over.
    async fn finish_round(&mut self, n: u64, chunk: usize) {
        let key = (n, chunk);
        let Some(s) = self.splits.get(&key).cloned() else {
            return;
        };
        let Some(b) = self.pending.get(&n) else {
            self.forget_split(n, chunk);
            return;
        };
        if b.proofs.get(chunk).is_none_or(Option::is_some) {
            self.forget_split(n, chunk);
            return;
        }
        let Some(total) = s.total(s.checking) else {
            return;
        };
        let expected = b.chunks[chunk].public_inputs();
        let header = self.key.clone();
        let verifier = self.verifier.clone();
        let started = Instant::now();
        let made = tokio::task::spawn_blocking(move || {
            let mut rng = rand::rngs::OsRng;
            let (r, s) = (
                pulse_circuits::Fr::rand(&mut rng),
                pulse_circuits::Fr::rand(&mut rng),
            );
            let artifact = ProofArtifact {
                circuit_id: verifier.manifest.circuit_id,
                vk_hash: verifier.manifest.vk_hash,
                public_inputs: expected,
                proof: header.assemble(&total, r, s),
            };
            let checked = verifier.verify(&artifact).map_err(|e| e.to_string());
            (artifact.to_json(), checked)
        })
        .await;
        self.metrics
            .proof_check_seconds(n, started.elapsed().as_secs_f64());
        let (proof, checked) = match made {
            Ok(made) => made,
            Err(e) => {
                error!(batch = n, chunk, error = %e, "assembling a split proof panicked; the chunk starts over");
                self.restart_chunk(n, chunk).await;
                return;
            }
        };
        match checked {
            Ok(()) => {
                for liar in s.liars() {
                    warn!(batch = n, chunk, worker = %liar, "a worker sent wrong shard sums (another worker's differ, and the proof from those verifies); counted against it");
                    self.blame(&liar);
                }
                let provers = s.provers();
                info!(batch = n, chunk, shards = s.shards.len(), workers = %provers.join(","), checked = s.checking, "split proof accepted");
                let prover = format!("split:{}:{}", s.shards.len(), provers.join("+"));
                self.forget_split(n, chunk);
                if self.record_proof(n, chunk, proof, prover) {
                    self.summary.split_proofs += 1;
                    self.summary.shards += s.shards.len() as u64;
                    self.metrics.split_proof();
                    self.try_commit_next().await;
                } else {
                    self.restart_chunk(n, chunk).await;
                }
            }
            Err(reason) if !s.checking => {
                warn!(batch = n, chunk, %reason, "a split proof failed its check; every shard is computed again on another worker to find the wrong one");
                if let Some(s) = self.splits.get_mut(&key) {
                    s.checking = true;
                }
                for k in 0..s.shards.len() {
                    let excluded: Vec<String> =
                        s.shards[k].sums.iter().map(|(_, w)| w.clone()).collect();
                    self.send_shard(n, chunk, k, &excluded, "checked").await;
                }
            }
            Err(reason) => {
                let liars = s.liars();
                if liars.is_empty() {
                    // Two workers agree on every shard: the scalars were wrong.
                    if let Some(assembler) = &s.assembler {
                        warn!(batch = n, chunk, worker = %assembler, %reason, "a split proof fails although every shard was computed twice alike: its witness was wrong; counted against the worker that made it, and the chunk starts over");
                        self.blame(assembler);
                    }
                } else {
                    warn!(batch = n, chunk, %reason, "a split proof fails with the shards computed twice, and they disagree: the chunk starts over");
                }
                self.restart_chunk(n, chunk).await;
            }
        }
    }

    /// Starts chunk `i` of batch `n` over under a new generation (its split state and
    /// scalars dropped; the policy decides again).
    async fn restart_chunk(&mut self, n: u64, i: usize) {
        self.forget_split(n, i);
        if let Some(generation) = self.next_generation(n) {
            self.publish_chunk(n, i, generation).await;
        }
    }

    /// Moves pending batch `n` to its next job generation (recorded in the store) and
    /// returns it; `None` when the batch is not pending.
    fn next_generation(&mut self, n: u64) -> Option<u32> {
        let b = self.pending.get_mut(&n)?;
        b.generation += 1;
        if let Err(e) = self.store.put(b) {
            error!(batch = n, error = %e, "cannot record the job generation");
        }
        Some(b.generation)
    }

    /// Looks after the split proofs (every [`SPLIT_TICK`]): shards whose worker went silent
    /// or did not answer in time go to another worker; a split past its deadline falls
    /// back to a whole proof (where a live worker can hold the key) or starts over; chunks
    /// no worker could take are planned again.
    pub(super) async fn split_tick(&mut self) {
        if self.split_ticked.elapsed() < SPLIT_TICK {
            return;
        }
        self.split_ticked = Instant::now();
        let live: Vec<String> = self
            .shard_workers()
            .into_iter()
            .map(|w| w.worker_id)
            .collect();
        let keys: Vec<(u64, usize)> = self.splits.keys().copied().collect();
        for (n, chunk) in keys {
            let proved = self.pending.get(&n).is_none_or(|b| {
                b.status != BatchStatus::Proving || b.proofs.get(chunk).is_none_or(Option::is_some)
            });
            if proved {
                self.forget_split(n, chunk);
                continue;
            }
            let Some(s) = self.splits.get(&(n, chunk)) else {
                continue;
            };
            if s.started.elapsed() >= self.config.split.deadline {
                self.split_deadline(n, chunk).await;
                continue;
            }
            if s.scalars.is_none() {
                continue;
            }
            let checking = s.checking;
            let mut resend = Vec::new();
            for (k, shard) in s.shards.iter().enumerate() {
                if !shard.waiting(checking) {
                    continue;
                }
                match (&shard.worker, shard.sent_at) {
                    (Some(w), Some(at)) => {
                        if !live.contains(w) {
                            warn!(batch = n, chunk, shard = k, worker = %w, "the worker holding a shard stopped sending heartbeats; the shard goes to another worker");
                            resend.push((k, Some(w.clone())));
                        } else if at.elapsed() >= self.config.split.shard_timeout {
                            warn!(batch = n, chunk, shard = k, worker = %w, seconds = at.elapsed().as_secs(), "a shard is unanswered past its timeout; it goes to another worker");
                            resend.push((k, Some(w.clone())));
                        }
                    }
                    _ => resend.push((k, None)),
                }
            }
            for (k, gone) in resend {
                let excluded = match &gone {
                    Some(w) => self.excluded_for((n, chunk), k, w),
                    None => self
                        .splits
                        .get(&(n, chunk))
                        .filter(|s| s.checking)
                        .and_then(|s| s.shards.get(k))
                        .and_then(|s| s.sums.as_ref())
                        .map(|(_, w)| vec![w.clone()])
                        .unwrap_or_default(),
                };
                let event = if gone.is_some() {
                    "retried"
                } else if checking {
                    "checked"
                } else {
                    "sent"
                };
                self.send_shard(n, chunk, k, &excluded, event).await;
            }
        }
        let in_flight = self
            .splits
            .values()
            .map(|s| {
                s.shards
                    .iter()
                    .filter(|sh| sh.sent_at.is_some() && sh.waiting(s.checking))
                    .count()
            })
            .sum();
        self.metrics.set_shards_in_flight(in_flight);
        let had_blocked = !self.split_blocked.is_empty();
        let blocked: Vec<(u64, usize)> = self.split_blocked.keys().copied().collect();
        for (n, chunk) in blocked {
            let generation = match self.pending.get(&n) {
                Some(b)
                    if b.status == BatchStatus::Proving
                        && b.proofs.get(chunk).is_some_and(Option::is_none) =>
                {
                    b.generation
                }
                _ => {
                    self.split_blocked.remove(&(n, chunk));
                    continue;
                }
            };
            self.publish_chunk(n, chunk, generation).await;
        }
        if had_blocked || !self.split_blocked.is_empty() {
            self.refresh_snapshot().await;
        }
    }

    /// A split past its deadline: a whole proof where a live worker can hold the key, else
    /// a new plan.
    async fn split_deadline(&mut self, n: u64, chunk: usize) {
        let key_bytes = self.key.lens.base_bytes();
        let whole = self
            .metrics
            .live_workers()
            .iter()
            .any(|w| w.base_memory_bytes.is_none_or(|m| key_bytes <= m));
        warn!(
            batch = n,
            chunk,
            deadline_s = self.config.split.deadline.as_secs(),
            whole,
            "a split proof is past its deadline; proving the chunk whole where a worker can hold the key, else planning it again"
        );
        self.forget_split(n, chunk);
        let Some(generation) = self.next_generation(n) else {
            return;
        };
        if whole {
            self.publish_job(n, chunk, generation, Vec::new()).await;
        } else {
            self.publish_chunk(n, chunk, generation).await;
        }
    }
}
