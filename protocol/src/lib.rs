//! The Pulse protocol: the messages the coordinator, the workers and the clients exchange,
//! the NATS subjects they travel on, and the JetStream streams, consumers and buckets that
//! hold them. Both sides check the protocol version: a message from another version is
//! refused with a message that says which versions are involved.
//!
//! | what | subject | stream / bucket | retention |
//! |---|---|---|---|
//! | signed transactions (client → coordinator) | [`TX_SUBJECT`] | [`TX_STREAM`] | work queue, deduplicated by transaction hash (`Nats-Msg-Id`) |
//! | receipts (coordinator → client) | [`receipt_subject`] | [`RECEIPT_STREAM`] | limits: the last few per transaction, for a day |
//! | proving jobs (coordinator → workers) | [`job_subject`] | [`JOB_STREAM`] | work queue; workers pull through the shared durable consumer [`JOB_CONSUMER`] |
//! | job results (workers → coordinator) | [`RESULT_SUBJECT`] | [`RESULT_STREAM`] | work queue |
//! | worker registry and heartbeats | key = worker id | KV bucket [`WORKER_BUCKET`] | entries expire after [`WORKER_TTL`] |
//! | proving keys, by hash ([`keys`]) | name = pk hash | object store [`KEY_BUCKET`] | kept |
//! | shard jobs of split proofs (coordinator → one worker) | [`shard_subject`] | [`SHARD_STREAM`] | work queue; each worker pulls its own through [`shard_consumer`] |
//! | a split proof's shard scalars, by hash | name = SHA-256 | object store [`SPLIT_BUCKET`] | deleted when the batch is final or the split abandoned |
//! | a phase-2 ceremony's turns, contributions and verdicts ([`ceremony`]) | `pulse.ceremony.{turn,contribution,verdict}.<participant>` | [`ceremony::CEREMONY_STREAM`] | limits: the last few per subject, for a week |
//!
//! A **split proof** shards one chunk's MSMs by base range across workers: a proving job
//! that carries a plan ([`ProvingJob::split`]) asks a worker (the assembler) for the
//! chunk's witness cut into one scalars object per shard ([`JobOutcome::Witnessed`]); the
//! coordinator sends each shard to one worker ([`ShardJob`]), which answers the shard's
//! partial sums ([`JobOutcome::Shard`]); the coordinator adds them, forms the proof with
//! fresh randomisers, and checks it as every proof.
//!
//! A job's lease is JetStream's ack wait ([`JOB_LEASE`]): a worker proving a job sends an
//! in-progress acknowledgement every [`HEARTBEAT_INTERVAL`]; a worker that stops sending them
//! loses the job, which is delivered again, at most [`JOB_MAX_DELIVER`] times.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod ceremony;
pub mod dac;
pub mod keys;
pub mod lookup_auth;
pub mod messages;
pub mod nats;
pub mod split;

pub use messages::{
    DecodeError, JobOutcome, JobResult, MAX_SHARDS, ProvingJob, Receipt, ReceiptStatus,
    ResidentShard, ScalarsRef, ShardJob, ShardSpan, WorkerInfo, decode, encode,
};

use std::time::Duration;

/// The protocol version this build speaks. Every message carries it as `"v"`.
pub const PROTOCOL_VERSION: u32 = 1;

/// Subject clients publish signed transactions to (the transaction JSON v1 of
/// `pulse_circuits::tx`).
pub const TX_SUBJECT: &str = "pulse.tx.submit";
/// The stream of pending transactions.
pub const TX_STREAM: &str = "PULSE_TX";
/// The coordinator's durable consumer of [`TX_STREAM`].
pub const TX_CONSUMER: &str = "coordinator";
/// How long a resubmitted transaction (same hash) is recognised as a duplicate by JetStream.
/// The coordinator's own nonce check refuses later replays.
pub const TX_DEDUP_WINDOW: Duration = Duration::from_secs(3600);
/// The largest transaction message accepted (the transaction JSON limit).
pub const MAX_TX_BYTES: usize = pulse_circuits::tx::MAX_TX_JSON_BYTES;

/// Prefix of receipt subjects.
pub const RECEIPT_PREFIX: &str = "pulse.receipt";
/// The stream of receipts.
pub const RECEIPT_STREAM: &str = "PULSE_RECEIPTS";
/// How long receipts are kept.
pub const RECEIPT_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// Prefix of proving-job subjects.
pub const JOB_PREFIX: &str = "pulse.jobs";
/// The stream of proving jobs.
pub const JOB_STREAM: &str = "PULSE_JOBS";
/// The workers' shared durable consumer of [`JOB_STREAM`].
pub const JOB_CONSUMER: &str = "workers";
/// A job's lease: without an in-progress acknowledgement for this long, it is redelivered.
pub const JOB_LEASE: Duration = Duration::from_secs(30);
/// How often a worker acknowledges progress on the job it proves.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);
/// Deliveries of one job before JetStream gives up on it (the coordinator then fails the
/// batch loudly and retries it).
pub const JOB_MAX_DELIVER: i64 = 5;

/// Subject of job results.
pub const RESULT_SUBJECT: &str = "pulse.results";
/// The stream of job results.
pub const RESULT_STREAM: &str = "PULSE_RESULTS";
/// The coordinator's durable consumer of [`RESULT_STREAM`].
pub const RESULT_CONSUMER: &str = "coordinator";

/// KV bucket of registered workers.
pub const WORKER_BUCKET: &str = "pulse-workers";
/// A worker's registry entry expires this long after its last heartbeat.
pub const WORKER_TTL: Duration = Duration::from_secs(30);

/// Object store of proving keys, named by the hex SHA-256 of the key file.
pub const KEY_BUCKET: &str = "pulse-keys";
/// The key-value bucket of record keys wrapped for grantees (created by the coordinator,
/// written and read by clients).
pub const SHARE_BUCKET: &str = "pulse-key-shares";
/// The largest wrapped-key share accepted in [`SHARE_BUCKET`], in bytes.
pub const MAX_SHARE_BYTES: usize = 16 * 1024;
/// The coordinator's sequencing journal: subjects `pulse.journal.<batch>`, written by the
/// active coordinator, read by the one that takes over (only coordinators may).
pub const JOURNAL_PREFIX: &str = "pulse.journal";
/// The journal's stream.
pub const JOURNAL_STREAM: &str = "PULSE_JOURNAL";
/// The key-value bucket whose one key says which coordinator is active.
pub const LEASE_BUCKET: &str = "pulse-coordinator-lease";
/// Prefix of the shard-job subjects: [`shard_subject`].
pub const SHARD_PREFIX: &str = "pulse.shards";
/// The stream of shard jobs: a work queue, one filtered consumer per worker.
pub const SHARD_STREAM: &str = "PULSE_SHARDS";
/// The object store of split proofs' shard scalars, named by their SHA-256 (hex).
pub const SPLIT_BUCKET: &str = "pulse-split";
/// How long shard scalars are kept at most (a split proof takes minutes; scalars its
/// coordinator did not delete, because it stopped mid-split, age out).
pub const SPLIT_MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// The largest shard-scalars object accepted, in bytes (2^24 scalars: a shard of a chunk
/// of about 8M constraints).
pub const MAX_SCALARS_BYTES: u64 = 512 * 1024 * 1024;

/// The subject of the shard jobs sent to worker `worker_id`.
pub fn shard_subject(worker_id: &str) -> String {
    format!("{SHARD_PREFIX}.{worker_id}")
}

/// The durable consumer through which worker `worker_id` pulls its shard jobs (created by
/// the coordinator when it first sends that worker a shard).
pub fn shard_consumer(worker_id: &str) -> String {
    format!("shard-{worker_id}")
}

/// The receipt subject of a transaction (its hash as `TxHash` displays it: `0x` and hex).
pub fn receipt_subject(tx_hash: &str) -> String {
    format!("{RECEIPT_PREFIX}.{tx_hash}")
}

/// The id of the proving job for chunk `chunk` of batch `batch` in the batch's generation
/// `generation` (a batch proven again gets a new one): `b{batch}-c{chunk}-g{generation}`.
pub fn job_id(batch: u64, chunk: usize, generation: u32) -> String {
    format!("b{batch}-c{chunk}-g{generation}")
}

/// The batch and chunk a [`job_id`] names; `None` for any other text (a result naming
/// one comes from a worker, so it is outside input).
pub fn parse_job_id(id: &str) -> Option<(u64, usize)> {
    parse_job_id_generation(id).map(|(b, c, _)| (b, c))
}

/// The batch, chunk and generation a [`job_id`] names.
pub fn parse_job_id_generation(id: &str) -> Option<(u64, usize, u32)> {
    let mut parts = id.split('-');
    let b = parts.next()?.strip_prefix('b')?.parse().ok()?;
    let c = parts.next()?.strip_prefix('c')?.parse().ok()?;
    let g = parts.next()?.strip_prefix('g')?.parse::<u32>().ok()?;
    parts.next().is_none().then_some((b, c, g))
}

/// What a [`shard_job_id`] names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ShardId {
    /// The batch.
    pub batch: u64,
    /// The chunk in it.
    pub chunk: usize,
    /// The batch's job generation.
    pub generation: u32,
    /// The shard's index in its plan.
    pub shard: usize,
    /// Which sending of the shard (0 first; a re-lease or a check sends it again).
    pub lease: u32,
}

/// The id of a shard job: `b{batch}-c{chunk}-g{generation}-s{shard}-l{lease}`.
pub fn shard_job_id(id: ShardId) -> String {
    format!(
        "b{}-c{}-g{}-s{}-l{}",
        id.batch, id.chunk, id.generation, id.shard, id.lease
    )
}

/// What a [`shard_job_id`] names; `None` for any other text.
pub fn parse_shard_job_id(text: &str) -> Option<ShardId> {
    let mut parts = text.split('-');
    let batch = parts.next()?.strip_prefix('b')?.parse().ok()?;
    let chunk = parts.next()?.strip_prefix('c')?.parse().ok()?;
    let generation = parts.next()?.strip_prefix('g')?.parse().ok()?;
    let shard = parts.next()?.strip_prefix('s')?.parse().ok()?;
    let lease = parts.next()?.strip_prefix('l')?.parse().ok()?;
    parts.next().is_none().then_some(ShardId {
        batch,
        chunk,
        generation,
        shard,
        lease,
    })
}

/// The job subject for a circuit (its id in hex): workers filter by the circuits they hold.
pub fn job_subject(circuit_id: &str) -> String {
    format!("{JOB_PREFIX}.{circuit_id}")
}

#[cfg(test)]
mod tests {
    use super::{ShardId, job_id, parse_job_id, parse_shard_job_id, shard_job_id};

    #[test]
    fn job_ids_parse_strictly() {
        assert_eq!(parse_job_id(&job_id(3, 1, 2)), Some((3, 1)));
        assert_eq!(parse_job_id("b3-c1"), None);
        assert_eq!(parse_job_id("b3-c1-g2-x"), None);
        assert_eq!(parse_job_id("x3-c1-g2"), None);
        assert_eq!(parse_job_id("b18446744073709551616-c1-g2"), None);
        let shard = ShardId {
            batch: 3,
            chunk: 1,
            generation: 2,
            shard: 4,
            lease: 5,
        };
        assert_eq!(shard_job_id(shard), "b3-c1-g2-s4-l5");
        assert_eq!(parse_shard_job_id(&shard_job_id(shard)), Some(shard));
        assert_eq!(parse_job_id(&shard_job_id(shard)), None);
        assert_eq!(parse_shard_job_id(&job_id(3, 1, 2)), None);
        assert_eq!(parse_shard_job_id("b3-c1-g2-s4-l5-x"), None);
        assert_eq!(parse_shard_job_id("b3-c1-g2-s-1-l5"), None);
    }
}
