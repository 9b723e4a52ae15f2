//! The messages, as versioned JSON objects (`"v": 1`), refused when they come from another
//! protocol version, carry unknown fields or a field twice, or exceed their size limit.

use pulse_circuits::circuit::ChunkWitness;
use pulse_circuits::json::check_unique_keys;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::PROTOCOL_VERSION;

/// The largest message of any kind (a proving job carries a whole chunk witness).
pub const MAX_MESSAGE_BYTES: usize = 8 * 1024 * 1024;

/// Why a message was refused.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Larger than the limit for its kind.
    #[error("{kind} message of {size} bytes is over the {limit}-byte limit")]
    TooLarge {
        /// The message kind.
        kind: &'static str,
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Not JSON, or not an object with a numeric `"v"`.
    #[error("{kind} message is not a versioned JSON object: {reason}")]
    NotVersioned {
        /// The message kind.
        kind: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// From another protocol version.
    #[error(
        "{kind} message is protocol version {found}; this build speaks version {supported}: upgrade the older side"
    )]
    Version {
        /// The message kind.
        kind: &'static str,
        /// The version found.
        found: u64,
        /// The version spoken here.
        supported: u32,
    },
    /// Right version, wrong content.
    #[error("{kind} message is malformed: {reason}")]
    Malformed {
        /// The message kind.
        kind: &'static str,
        /// What is wrong (serde's message: the field and the problem).
        reason: String,
    },
}

/// A message kind: its name in errors and its size limit.
pub trait Message: Serialize + DeserializeOwned {
    /// Name in errors and logs.
    const KIND: &'static str;
    /// Size limit in bytes.
    const MAX_BYTES: usize = MAX_MESSAGE_BYTES;
}

#[derive(Serialize)]
struct Out<'a, T> {
    v: u32,
    #[serde(flatten)]
    body: &'a T,
}

/// Encodes a message as versioned JSON.
///
/// # Panics
/// Never for the protocol's own types (their serialization cannot fail).
pub fn encode<T: Message>(msg: &T) -> Vec<u8> {
    #[allow(clippy::expect_used)]
    serde_json::to_vec(&Out {
        v: PROTOCOL_VERSION,
        body: msg,
    })
    .expect("protocol messages always serialize")
}

/// Decodes a message, checking size, version and shape. An object anywhere in it that
/// names a key twice is [`DecodeError::Malformed`]: readers that keep the first and readers
/// that keep the last value would see two different messages.
///
/// # Errors
/// A [`DecodeError`] naming the kind and what is wrong.
pub fn decode<T: Message>(bytes: &[u8]) -> Result<T, DecodeError> {
    if bytes.len() > T::MAX_BYTES {
        return Err(DecodeError::TooLarge {
            kind: T::KIND,
            size: bytes.len(),
            limit: T::MAX_BYTES,
        });
    }
    check_unique_keys(bytes).map_err(|e| DecodeError::Malformed {
        kind: T::KIND,
        reason: e.to_string(),
    })?;
    let mut value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| DecodeError::NotVersioned {
            kind: T::KIND,
            reason: e.to_string(),
        })?;
    let obj = value
        .as_object_mut()
        .ok_or_else(|| DecodeError::NotVersioned {
            kind: T::KIND,
            reason: "not a JSON object".to_owned(),
        })?;
    let v = obj
        .remove("v")
        .and_then(|v| v.as_u64())
        .ok_or_else(|| DecodeError::NotVersioned {
            kind: T::KIND,
            reason: "no numeric \"v\" field".to_owned(),
        })?;
    if v != u64::from(PROTOCOL_VERSION) {
        return Err(DecodeError::Version {
            kind: T::KIND,
            found: v,
            supported: PROTOCOL_VERSION,
        });
    }
    serde_json::from_value(value).map_err(|e| DecodeError::Malformed {
        kind: T::KIND,
        reason: e.to_string(),
    })
}

/// The coordinator's answer about one transaction, on its receipt subject.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    /// The transaction hash (`0x…`), or `null` for a message that was not a transaction.
    pub tx_hash: Option<String>,
    /// What happened.
    pub status: ReceiptStatus,
}

impl Message for Receipt {
    const KIND: &'static str = "receipt";
    const MAX_BYTES: usize = 64 * 1024;
}

/// What happened to a transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case", deny_unknown_fields)]
pub enum ReceiptStatus {
    /// Valid and sequenced into a batch; not final until committed.
    Accepted {
        /// The batch.
        batch: u64,
        /// The account the transaction created, if any (a registration).
        new_account: Option<u64>,
        /// The record it created, if any.
        new_record: Option<u64>,
        /// The grant it created, if any.
        new_grant: Option<u64>,
    },
    /// Refused; it will never be in a batch.
    Rejected {
        /// A stable reason code (`bad_signature`, `nonce`, …).
        reason: String,
        /// A sentence for the submitter.
        message: String,
    },
    /// Its batch is final on L1.
    Committed {
        /// The batch.
        batch: u64,
        /// The L1 transaction that committed it.
        l1_tx: String,
    },
}

/// A proving job: one chunk of a batch, with everything needed to prove it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvingJob {
    /// Unique per (batch, chunk, generation of the batch): [`crate::job_id`].
    pub job_id: String,
    /// The batch.
    pub batch: u64,
    /// The chunk's index in the batch.
    pub chunk: u32,
    /// The batch attempt (a failed batch is retried with a new attempt number).
    pub attempt: u32,
    /// The circuit (hex id): the worker must hold its proving key. It is the id of
    /// `CircuitParams::new(slots, depth)`, which the worker checks.
    pub circuit_id: String,
    /// The circuit's transaction slots per chunk (its `CircuitParams::slots`).
    pub slots: u32,
    /// The circuit's state-tree depth (its `CircuitParams::depth`).
    pub depth: u32,
    /// The proving key's hash (hex SHA-256 of the key file); fetch it by this name.
    pub pk_hash: String,
    /// The verifying key's hash (hex), which the result's proof must name.
    pub vk_hash: String,
    /// The chunk witness.
    pub witness: ChunkWitness,
    /// Empty for a whole proof. Otherwise the chunk is proved split, by these shards, and
    /// the job asks only for its witness: the scalars of each shard, stored in the object
    /// store `SPLIT_BUCKET` and named in a [`JobOutcome::Witnessed`] result.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub split: Vec<ShardSpan>,
}

impl Message for ProvingJob {
    const KIND: &'static str = "proving job";
}

/// The most shards a split proof has.
pub const MAX_SHARDS: usize = 64;

/// A shard of a split proof: a range `[start, end)` of every query's bases (A and B share
/// one: they run over the same assignment).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardSpan {
    /// Bases of `a_query`, `b_g1_query` and `b_g2_query`.
    pub assignment: [u64; 2],
    /// Bases of `l_query`.
    pub l: [u64; 2],
    /// Bases of `h_query`.
    pub h: [u64; 2],
}

/// A stored object of shard scalars: its name (hex SHA-256 of its bytes) and size.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScalarsRef {
    /// Hex SHA-256 of the object's bytes, which is also its name.
    pub sha256: String,
    /// Its size in bytes.
    pub bytes: u64,
}

/// One shard of a split proof, sent to one worker (on its own subject).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardJob {
    /// `pulse_protocol::shard_job_id`: batch, chunk, generation, shard, lease.
    pub job_id: String,
    /// The circuit (hex id).
    pub circuit_id: String,
    /// The proving key's hash (hex SHA-256 of the key file): the bases come from it.
    pub pk_hash: String,
    /// The shard's ranges of the key's bases.
    pub span: ShardSpan,
    /// Its scalars, in the object store `SPLIT_BUCKET`.
    pub scalars: ScalarsRef,
}

impl Message for ShardJob {
    const KIND: &'static str = "shard job";
    const MAX_BYTES: usize = 64 * 1024;
}

/// A worker's answer to a job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobResult {
    /// The job.
    pub job_id: String,
    /// The worker that did it.
    pub worker_id: String,
    /// What came of it.
    pub outcome: JobOutcome,
}

impl Message for JobResult {
    const KIND: &'static str = "job result";
    const MAX_BYTES: usize = 64 * 1024;
}

/// The outcome of a job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case", deny_unknown_fields)]
pub enum JobOutcome {
    /// Proven.
    Proved {
        /// The proof artifact (`pulse_circuits::artifacts::ProofArtifact` JSON): circuit id,
        /// vk hash, public inputs, proof.
        proof: String,
        /// Seconds spent building the witness.
        witness_seconds: f64,
        /// Seconds spent proving.
        prove_seconds: f64,
        /// The backend that proved it (`cpu`, `cuda`, `opencl`).
        backend: String,
    },
    /// The witness of a split proof ([`ProvingJob::split`]) is made and stored.
    Witnessed {
        /// One scalars object per shard, in the plan's order.
        scalars: Vec<ScalarsRef>,
        /// Seconds spent on the assignment.
        witness_seconds: f64,
        /// Seconds spent on the quotient's coefficients (the NTTs).
        reduction_seconds: f64,
    },
    /// A shard's partial sums ([`ShardJob`]).
    Shard {
        /// The five sums, compressed (`pulse_prover::split::encode_sums`), in hex.
        sums: String,
        /// Seconds spent on the MSMs.
        msm_seconds: f64,
        /// Seconds spent reading and preparing the shard's bases (0 when resident).
        load_seconds: f64,
        /// The backend that computed them.
        backend: String,
    },
    /// The worker could not prove it (the job goes back to the queue).
    Failed {
        /// Why, for the operator.
        reason: String,
    },
}

/// A worker's registry entry, refreshed with every heartbeat.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerInfo {
    /// The worker's id (chosen by its operator; no patient data).
    pub worker_id: String,
    /// The backend (`cpu`, `cuda`, `opencl`).
    pub backend: String,
    /// The device, in words.
    pub device: String,
    /// Memory available for proving, in bytes.
    pub memory_bytes: u64,
    /// The worker's software version.
    pub version: String,
    /// Circuits (hex ids) whose keys it holds.
    pub circuits: Vec<String>,
    /// Jobs proved since start.
    pub jobs_done: u64,
    /// The job being proved, if any.
    pub current_job: Option<String>,
    /// Unix seconds of this heartbeat.
    pub heartbeat_at: u64,
    /// The most memory it gives to a proving key's bases, in bytes; `None`: no limit. A
    /// key whose bases are larger is proved split across workers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_memory_bytes: Option<u64>,
    /// The shards of proving keys whose bases it holds resident.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resident: Vec<ResidentShard>,
}

/// A shard of a proving key held resident by a worker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResidentShard {
    /// The key (hex SHA-256).
    pub pk_hash: String,
    /// The ranges held.
    pub span: ShardSpan,
}

impl Message for WorkerInfo {
    const KIND: &'static str = "worker registration";
    const MAX_BYTES: usize = 64 * 1024;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `job_result` fuzz target: with serde_json's fast float parser,
    /// `3.3e88` written out with its 90 digits read back as `3.2999999999999996e88`, whose
    /// encoding then decoded to another number, so a result changed through its own
    /// encoding. Floats are now parsed correctly rounded (`float_roundtrip`).
    #[test]
    fn a_decoded_result_survives_its_encoding_with_extreme_floats() {
        let text = r#"{"v":1,"job_id":"b1-c0-g0","worker_id":"w","outcome":{"outcome":"proved","proof":"{}","witness_seconds":33000000000000000000000000000000000000000000000000000000000000000000007036123817828504914.01,"prove_seconds":1.5,"backend":"cpu"}}"#;
        let r = decode::<JobResult>(text.as_bytes()).expect("decodes");
        let again = decode::<JobResult>(&encode(&r)).expect("decodes again");
        assert_eq!(again, r);
        let JobOutcome::Proved {
            witness_seconds, ..
        } = r.outcome
        else {
            panic!("not a proof");
        };
        assert_eq!(witness_seconds, 3.3e88);
    }

    #[test]
    fn versions_sizes_and_unknown_fields_are_checked() {
        let r = Receipt {
            tx_hash: Some("0x01".into()),
            status: ReceiptStatus::Rejected {
                reason: "nonce".into(),
                message: "stale nonce".into(),
            },
        };
        let bytes = encode(&r);
        let text = String::from_utf8(bytes.clone()).unwrap_or_default();
        assert!(text.contains("\"v\":1"), "{text}");
        assert_eq!(decode::<Receipt>(&bytes).ok(), Some(r));

        let other = text.replace("\"v\":1", "\"v\":2");
        let err = decode::<Receipt>(other.as_bytes())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("version 2") && err.contains("version 1"),
            "{err}"
        );

        let none = text.replace("\"v\":1,", "");
        assert!(matches!(
            decode::<Receipt>(none.as_bytes()),
            Err(DecodeError::NotVersioned { .. })
        ));

        let extra = text.replace("\"v\":1,", "\"v\":1,\"x\":0,");
        assert!(matches!(
            decode::<Receipt>(extra.as_bytes()),
            Err(DecodeError::Malformed { .. })
        ));

        let big = vec![b' '; Receipt::MAX_BYTES + 1];
        assert!(matches!(
            decode::<Receipt>(&big),
            Err(DecodeError::TooLarge { .. })
        ));
        assert!(matches!(
            decode::<Receipt>(b"[1]"),
            Err(DecodeError::NotVersioned { .. })
        ));
        assert!(matches!(
            decode::<Receipt>(b"{\"v\":1"),
            Err(DecodeError::NotVersioned { .. })
        ));
    }

    #[test]
    fn repeated_keys_are_refused_at_any_depth() {
        let r = Receipt {
            tx_hash: Some("0x01".into()),
            status: ReceiptStatus::Accepted {
                batch: 3,
                new_account: Some(7),
                new_record: None,
                new_grant: None,
            },
        };
        let text = String::from_utf8(encode(&r)).unwrap_or_default();
        assert_eq!(decode::<Receipt>(text.as_bytes()).ok(), Some(r));
        let malformed = |text: &str| match decode::<Receipt>(text.as_bytes()) {
            Err(DecodeError::Malformed { reason, .. }) => reason,
            other => panic!("{text}: not refused as malformed: {other:?}"),
        };

        let twice = text.replace("\"v\":1,", "\"v\":1,\"v\":2,");
        assert_eq!(
            malformed(&twice),
            "the JSON object at $ has the key \"v\" twice; send each field once"
        );
        // Inside the flattened, internally tagged status: serde would keep one of them.
        let batch = text.replace("\"batch\":3", "\"batch\":3,\"batch\":4");
        assert!(malformed(&batch).contains("\"batch\" twice"), "{batch}");
        let job = serde_json::json!({"v": 1, "job_id": "b1-c0-a0", "worker_id": "w",
            "outcome": {"outcome": "failed", "reason": "x"}})
        .to_string();
        assert!(decode::<JobResult>(job.as_bytes()).is_ok());
        let nested = job.replace("\"reason\":\"x\"", "\"reason\":\"x\",\"reason\":\"y\"");
        assert_eq!(
            match decode::<JobResult>(nested.as_bytes()) {
                Err(DecodeError::Malformed { reason, .. }) => reason,
                other => panic!("not refused: {other:?}"),
            },
            "the JSON object at $.outcome has the key \"reason\" twice; send each field once"
        );
    }
}
