//! The JetStream layout, created idempotently by [`ensure_layout`]: running it again, by a
//! restarted coordinator or a second one, changes nothing (settings that differ are
//! updated to these).

use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, pull};
use async_nats::jetstream::stream::{Config as StreamConfig, RetentionPolicy, StorageType};
use async_nats::jetstream::{self, kv, object_store};

use crate::messages::MAX_MESSAGE_BYTES;
use crate::*;

/// Why the layout could not be created.
#[derive(Debug, thiserror::Error)]
#[error(
    "creating {what} on NATS JetStream: {reason}; check that the server runs with JetStream enabled (-js) and that this user may manage streams"
)]
pub struct LayoutError {
    /// The stream, consumer or bucket.
    pub what: String,
    /// The server's answer.
    pub reason: String,
}

fn err(what: &str, e: impl std::fmt::Display) -> LayoutError {
    LayoutError {
        what: what.to_owned(),
        reason: e.to_string(),
    }
}

/// The pending-transactions stream: a work queue, deduplicated by transaction hash. Its
/// message limit is above the transaction limit on purpose, so that an oversized transaction
/// reaches the coordinator and gets a rejection receipt instead of vanishing at the server.
pub fn tx_stream() -> StreamConfig {
    StreamConfig {
        name: TX_STREAM.to_owned(),
        description: Some("signed Pulse transactions waiting to be sequenced".to_owned()),
        subjects: vec![TX_SUBJECT.to_owned()],
        retention: RetentionPolicy::WorkQueue,
        storage: StorageType::File,
        duplicate_window: TX_DEDUP_WINDOW,
        max_message_size: 256 * 1024,
        ..Default::default()
    }
}

/// The receipts stream: the last receipts of each transaction, for a day, readable by
/// direct get (a client that subscribes late still finds its receipt).
pub fn receipt_stream() -> StreamConfig {
    StreamConfig {
        name: RECEIPT_STREAM.to_owned(),
        description: Some("receipts for submitted transactions".to_owned()),
        subjects: vec![format!("{RECEIPT_PREFIX}.>")],
        retention: RetentionPolicy::Limits,
        storage: StorageType::File,
        max_age: RECEIPT_MAX_AGE,
        max_messages_per_subject: 8,
        allow_direct: true,
        max_message_size: 64 * 1024,
        ..Default::default()
    }
}

/// The proving-jobs stream: a work queue.
pub fn job_stream() -> StreamConfig {
    StreamConfig {
        name: JOB_STREAM.to_owned(),
        description: Some("chunk proving jobs".to_owned()),
        subjects: vec![format!("{JOB_PREFIX}.>")],
        retention: RetentionPolicy::WorkQueue,
        storage: StorageType::File,
        max_message_size: i32::try_from(MAX_MESSAGE_BYTES).unwrap_or(i32::MAX),
        ..Default::default()
    }
}

/// The shard-jobs stream: a work queue whose consumers each filter one worker's subject.
pub fn shard_stream() -> StreamConfig {
    StreamConfig {
        name: SHARD_STREAM.to_owned(),
        description: Some("shards of split proofs, one subject per worker".to_owned()),
        subjects: vec![format!("{SHARD_PREFIX}.>")],
        retention: RetentionPolicy::WorkQueue,
        storage: StorageType::File,
        max_message_size: 64 * 1024,
        ..Default::default()
    }
}

/// Worker `worker_id`'s consumer of its shard jobs: the job consumer's lease and
/// deliveries, filtered to [`shard_subject`]. The coordinator creates it (idempotently)
/// before it sends that worker a shard.
pub fn shard_consumer_config(worker_id: &str, options: LayoutOptions) -> pull::Config {
    pull::Config {
        durable_name: Some(shard_consumer(worker_id)),
        description: Some(format!("shards for worker {worker_id}")),
        filter_subject: shard_subject(worker_id),
        ack_policy: AckPolicy::Explicit,
        ack_wait: options.job_lease,
        max_deliver: options.job_max_deliver,
        max_ack_pending: 1_000,
        num_replicas: options.replicas.clamp(1, MAX_REPLICAS),
        ..Default::default()
    }
}

/// The job-results stream: a work queue.
pub fn result_stream() -> StreamConfig {
    StreamConfig {
        name: RESULT_STREAM.to_owned(),
        description: Some("proofs and failures reported by workers".to_owned()),
        subjects: vec![RESULT_SUBJECT.to_owned()],
        retention: RetentionPolicy::WorkQueue,
        storage: StorageType::File,
        max_message_size: 64 * 1024,
        ..Default::default()
    }
}

/// The coordinator's consumer of transactions. Messages stay unacknowledged until their
/// batch is final on L1; a redelivery of a message already sequenced is recognised by its
/// transaction hash.
pub fn tx_consumer() -> pull::Config {
    pull::Config {
        durable_name: Some(TX_CONSUMER.to_owned()),
        description: Some("the coordinator's sequencer".to_owned()),
        ack_policy: AckPolicy::Explicit,
        ack_wait: Duration::from_secs(600),
        max_deliver: -1,
        max_ack_pending: 100_000,
        ..Default::default()
    }
}

/// Settings an operator (or a test) may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayoutOptions {
    /// A job's lease (see [`JOB_LEASE`]).
    pub job_lease: Duration,
    /// Deliveries of a job (see [`JOB_MAX_DELIVER`]).
    pub job_max_deliver: i64,
    /// Copies of every stream, bucket and consumer: 1 on a single server, 3 on a
    /// three-node JetStream cluster (which then survives the loss of any one node). At
    /// most [`MAX_REPLICAS`].
    pub replicas: usize,
}

/// The most replicas JetStream keeps of a stream.
pub const MAX_REPLICAS: usize = 5;

impl Default for LayoutOptions {
    fn default() -> Self {
        Self {
            job_lease: JOB_LEASE,
            job_max_deliver: JOB_MAX_DELIVER,
            replicas: 1,
        }
    }
}

/// The workers' shared consumer of jobs: a lease kept alive by in-progress
/// acknowledgements, a bounded number of deliveries.
pub fn job_consumer(options: LayoutOptions) -> pull::Config {
    pull::Config {
        durable_name: Some(JOB_CONSUMER.to_owned()),
        description: Some("proving workers".to_owned()),
        ack_policy: AckPolicy::Explicit,
        ack_wait: options.job_lease,
        max_deliver: options.job_max_deliver,
        max_ack_pending: 10_000,
        ..Default::default()
    }
}

/// The coordinator's consumer of results.
pub fn result_consumer() -> pull::Config {
    pull::Config {
        durable_name: Some(RESULT_CONSUMER.to_owned()),
        description: Some("the coordinator's proof checker".to_owned()),
        ack_policy: AckPolicy::Explicit,
        ack_wait: Duration::from_secs(120),
        max_deliver: -1,
        ..Default::default()
    }
}

/// How long [`ensure_layout`] waits for a JetStream cluster that is still forming (a
/// node not yet known to the meta leader answers "no suitable peers for placement").
pub const CLUSTER_SETTLE: Duration = Duration::from_secs(30);

/// Whether the server's answer is one a cluster gives while it forms or elects a leader,
/// and that the same request will not get once it has: no peers for placement yet
/// (10005), the cluster not active, not available or incomplete (10006, 10008, 10004), no
/// meta leader (10009), or a request timed out during an election. The create errors of
/// streams, key-value buckets and object stores carry the server's code only in their
/// text, so the text is what is read.
fn forming(reason: &str) -> bool {
    ["10004", "10005", "10006", "10008", "10009"]
        .iter()
        .any(|code| reason.contains(&format!("error code {code})")))
        || reason.contains("timed out")
}

/// Evaluates `$step` (an expression that awaits) until it succeeds, fails for a reason other
/// than a forming cluster, or [`CLUSTER_SETTLE`] has passed; a [`LayoutError`] naming
/// `$what` then. (A macro, not an async closure: the coordinator's start must stay `Send`.)
macro_rules! settled {
    ($what:expr, $step:expr) => {{
        let start = std::time::Instant::now();
        loop {
            match $step {
                Ok(v) => break Ok(v),
                Err(e) => {
                    let reason = e.to_string();
                    if !forming(&reason) || start.elapsed() >= CLUSTER_SETTLE {
                        break Err(err(&$what, reason));
                    }
                    tracing::info!(what = %$what, %reason, "JetStream cluster still forming; retrying");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }
        }
    }};
}

/// Creates (or updates to these settings) every stream, consumer and bucket of the protocol.
/// On a cluster still forming it retries for up to [`CLUSTER_SETTLE`].
///
/// # Errors
/// [`LayoutError`] naming what could not be created.
pub async fn ensure_layout(
    js: &jetstream::Context,
    options: LayoutOptions,
) -> Result<(), LayoutError> {
    let replicas = options.replicas.clamp(1, MAX_REPLICAS);
    for (config, consumer) in [
        (tx_stream(), Some(tx_consumer())),
        (receipt_stream(), None),
        (job_stream(), Some(job_consumer(options))),
        (result_stream(), Some(result_consumer())),
        (shard_stream(), None),
        (crate::dac::dac_stream(replicas), None),
    ] {
        let config = StreamConfig {
            num_replicas: replicas,
            ..config
        };
        let name = config.name.clone();
        settled!(
            format!("stream {name}"),
            js.create_or_update_stream(config.clone()).await
        )?;
        if let Some(c) = consumer {
            let cname = c.durable_name.clone().unwrap_or_default();
            settled!(
                format!("consumer {cname} on {name}"),
                async {
                    js.get_stream(&name)
                        .await
                        .map_err(|e| e.to_string())?
                        .create_consumer(c.clone())
                        .await
                        .map_err(|e| e.to_string())
                }
                .await
            )?;
        }
    }
    let workers = kv::Config {
        bucket: WORKER_BUCKET.to_owned(),
        description: "registered proving workers, refreshed by heartbeats".to_owned(),
        history: 1,
        max_age: WORKER_TTL,
        storage: StorageType::File,
        num_replicas: replicas,
        ..Default::default()
    };
    settled!(
        format!("key-value bucket {WORKER_BUCKET}"),
        js.create_or_update_key_value(workers.clone()).await
    )?;
    let shares = kv::Config {
        bucket: SHARE_BUCKET.to_owned(),
        description: "record file keys wrapped for grantees (safe to store: only the \
                      grantee's key unwraps them)"
            .to_owned(),
        history: 1,
        max_value_size: i32::try_from(MAX_SHARE_BYTES).unwrap_or(i32::MAX),
        storage: StorageType::File,
        num_replicas: replicas,
        ..Default::default()
    };
    settled!(
        format!("key-value bucket {SHARE_BUCKET}"),
        js.create_or_update_key_value(shares.clone()).await
    )?;
    let keys = object_store::Config {
        bucket: KEY_BUCKET.to_owned(),
        description: Some("proving keys, named by their SHA-256".to_owned()),
        storage: StorageType::File,
        num_replicas: replicas,
        ..Default::default()
    };
    let splits = object_store::Config {
        bucket: SPLIT_BUCKET.to_owned(),
        description: Some(
            "split proofs' shard scalars, named by their SHA-256; deleted when their proof is accepted"
                .to_owned(),
        ),
        // Scalars a coordinator could not delete (it stopped mid-split) age out.
        max_age: SPLIT_MAX_AGE,
        storage: StorageType::File,
        num_replicas: replicas,
        ..Default::default()
    };
    for config in [keys, splits] {
        let bucket = config.bucket.clone();
        if js.get_object_store(&bucket).await.is_err() {
            settled!(
                format!("object store {bucket}"),
                js.create_object_store(config.clone()).await
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forming_cluster_is_waited_for_and_a_refusal_is_not() {
        assert!(forming(
            "jetstream error: no suitable peers for placement, peer offline (code 400, error code 10005)"
        ));
        assert!(forming("jetstream request timed out"));
        assert!(!forming(
            "jetstream error: insufficient resources (code 503, error code 10023)"
        ));
        assert!(!forming(
            "jetstream error: stream name already in use with a different configuration (code 400, error code 10058)"
        ));
        // A code that merely starts like a transient one is not one.
        assert!(!forming(
            "jetstream error: something (code 400, error code 100050)"
        ));
    }
}
