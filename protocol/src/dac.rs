//! The data-availability committee's messages: the coordinator asks the members to attest
//! a batch's (encrypted) data, and each member answers with its signature once it has
//! fetched, decrypted, checked and pinned the data.
//!
//! | message | subject | written by |
//! |---|---|---|
//! | [`AttestRequest`]: batch `n`'s data is at this CID | [`request_subject`] | the coordinator |
//! | [`AttestationMessage`]: my signature over batch `n` | [`attestation_subject`] | the member, under its own name only |
//!
//! Both travel on one JetStream stream, [`DAC_STREAM`], read by direct get: a member walks
//! the requests in stream order (so one that starts late or reconnects catches up), the
//! coordinator reads the last attestation of each member for the batch it commits next. A
//! member's name is its NATS user name: the server lets a member publish only on its own
//! attestation subjects, so an attestation on `attestation.<name>.<n>` comes from `<name>`
//! (and its signature, checked against the committee's address for `<name>`, is what L1
//! counts).

use std::time::Duration;

use async_nats::jetstream::stream::{Config as StreamConfig, RetentionPolicy, StorageType};
use serde::{Deserialize, Serialize};

use crate::messages::Message;

/// Prefix of the committee's subjects.
pub const DAC_PREFIX: &str = "pulse.dac";
/// The stream of the committee's messages.
pub const DAC_STREAM: &str = "PULSE_DAC";
/// How long the messages are kept (a member down longer than this misses the requests
/// made meanwhile; the other members still attest them).
pub const DAC_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

/// The subject of the request to attest batch `batch`.
pub fn request_subject(batch: u64) -> String {
    format!("{DAC_PREFIX}.request.{batch}")
}

/// The subjects of every request (a member reads them in order).
pub fn request_subjects() -> String {
    format!("{DAC_PREFIX}.request.>")
}

/// The subject of `member`'s attestation of batch `batch` (`*` for any batch).
pub fn attestation_subject(member: &str, batch: &str) -> String {
    format!("{DAC_PREFIX}.attestation.{member}.{batch}")
}

/// The committee's stream: the last message of each subject, for a week, readable by
/// direct get.
pub fn dac_stream(replicas: usize) -> StreamConfig {
    StreamConfig {
        name: DAC_STREAM.to_owned(),
        description: Some(
            "availability committee: attestation requests and the members' attestations".to_owned(),
        ),
        subjects: vec![format!("{DAC_PREFIX}.>")],
        retention: RetentionPolicy::Limits,
        storage: StorageType::File,
        max_age: DAC_MAX_AGE,
        max_messages_per_subject: 1,
        allow_direct: true,
        max_message_size: 64 * 1024,
        num_replicas: replicas.max(1),
        ..Default::default()
    }
}

/// The coordinator to the committee: attest batch `batch`, whose sealed data is at
/// `data_cid`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttestRequest {
    /// The batch number.
    pub batch: u64,
    /// The CID of the sealed batch data on IPFS.
    pub data_cid: String,
    /// The committee the data is sealed for (hex of its id).
    pub committee: String,
    /// The chunks' public-data commitments (decimal), as the chunk proofs bind them: the
    /// member checks the data against these and signs what it computes itself.
    pub commitments: Vec<String>,
}

impl Message for AttestRequest {
    const KIND: &'static str = "attestation request";
    const MAX_BYTES: usize = 16 * 1024;
}

/// A member to the coordinator: my attestation of batch `batch`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttestationMessage {
    /// The batch number.
    pub batch: u64,
    /// The CID it attests (the request's).
    pub data_cid: String,
    /// The member's Ethereum address (`0x…`), as the committee lists it.
    pub signer: String,
    /// The signature (65 bytes r, s, v as hex, `0x…`) over the batch's attestation digest.
    pub signature: String,
}

impl Message for AttestationMessage {
    const KIND: &'static str = "attestation";
    const MAX_BYTES: usize = 4 * 1024;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DecodeError, decode, encode};

    #[test]
    fn messages_round_trip_and_refuse_strangers() {
        let r = AttestRequest {
            batch: 3,
            data_cid: "bafy".into(),
            committee: "ab".repeat(32),
            commitments: vec!["12".into(), "34".into()],
        };
        assert_eq!(decode::<AttestRequest>(&encode(&r)).unwrap(), r);
        let a = AttestationMessage {
            batch: 3,
            data_cid: "bafy".into(),
            signer: format!("0x{}", "11".repeat(20)),
            signature: format!("0x{}", "22".repeat(65)),
        };
        assert_eq!(decode::<AttestationMessage>(&encode(&a)).unwrap(), a);
        let mut v: serde_json::Value = serde_json::from_slice(&encode(&a)).unwrap();
        v["extra"] = 1.into();
        assert!(matches!(
            decode::<AttestationMessage>(&serde_json::to_vec(&v).unwrap()),
            Err(DecodeError::Malformed { .. })
        ));
        assert!(matches!(
            decode::<AttestationMessage>(&vec![b' '; 5000]),
            Err(DecodeError::TooLarge { .. })
        ));
    }

    #[test]
    fn subjects_are_per_batch_and_member() {
        assert_eq!(request_subject(7), "pulse.dac.request.7");
        assert_eq!(attestation_subject("h1", "7"), "pulse.dac.attestation.h1.7");
        assert_eq!(attestation_subject("h1", "*"), "pulse.dac.attestation.h1.*");
        assert_eq!(dac_stream(1).subjects, vec!["pulse.dac.>"]);
    }
}
