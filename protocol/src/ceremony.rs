//! A phase-2 ceremony run through the cluster: the coordinator (the ceremony's host) asks
//! each participant in turn, the participant contributes on the key it is given and
//! announces the result, and the host verifies it before it asks the next one.
//!
//! Keys travel on IPFS (content-addressed; every message also carries the key file's
//! SHA-256, which the reader checks, because a large key's UnixFS CID cannot be checked
//! without walking its blocks). The messages travel on one JetStream stream,
//! [`CEREMONY_STREAM`], read by direct get of the last message on a subject, so a
//! participant that connects late, or reconnects, still finds its turn:
//!
//! | message | subject | written by |
//! |---|---|---|
//! | [`CeremonyTurn`]: your turn, on this key | [`turn_subject`] | the host |
//! | [`CeremonyContribution`]: my contribution, on that key | [`contribution_subject`] | the participant, under its own name only |
//! | [`CeremonyVerdict`]: accepted, or refused and why | [`verdict_subject`] | the host |
//!
//! A participant's name is its NATS user name: the server lets a worker publish only on
//! its own contribution subject and read only its own turn and verdict, so an
//! announcement on `contribution.<name>` comes from `<name>`.

use std::time::Duration;

use async_nats::jetstream::stream::{Config as StreamConfig, RetentionPolicy, StorageType};
use serde::{Deserialize, Serialize};

use crate::messages::Message;

/// Prefix of the ceremony subjects.
pub const CEREMONY_PREFIX: &str = "pulse.ceremony";
/// The stream of the ceremony messages.
pub const CEREMONY_STREAM: &str = "PULSE_CEREMONY";
/// How long ceremony messages are kept.
pub const CEREMONY_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

/// The subject of the turns offered to `participant`.
pub fn turn_subject(participant: &str) -> String {
    format!("{CEREMONY_PREFIX}.turn.{participant}")
}

/// The subject of `participant`'s announced contributions.
pub fn contribution_subject(participant: &str) -> String {
    format!("{CEREMONY_PREFIX}.contribution.{participant}")
}

/// The subject of the host's verdicts on `participant`'s contributions.
pub fn verdict_subject(participant: &str) -> String {
    format!("{CEREMONY_PREFIX}.verdict.{participant}")
}

/// The ceremony stream: the last few messages of each subject, for a week, readable by
/// direct get.
pub fn ceremony_stream() -> StreamConfig {
    StreamConfig {
        name: CEREMONY_STREAM.to_owned(),
        description: Some("phase-2 ceremony turns, contributions and verdicts".to_owned()),
        subjects: vec![format!("{CEREMONY_PREFIX}.>")],
        retention: RetentionPolicy::Limits,
        storage: StorageType::File,
        max_age: CEREMONY_MAX_AGE,
        max_messages_per_subject: 4,
        allow_direct: true,
        max_message_size: 16 * 1024,
        ..Default::default()
    }
}

/// A key file on IPFS: its CID, and the SHA-256 and length of its bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZkeyRef {
    /// The CID the content was added under.
    pub cid: String,
    /// The hex SHA-256 of the file.
    pub sha256: String,
    /// Its length in bytes.
    pub bytes: u64,
}

/// The host to one participant: contribute on this key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CeremonyTurn {
    /// The ceremony: its circuit hash (hex BLAKE2b-512 of the initial parameters).
    pub ceremony: String,
    /// The contribution's index (1 for the first).
    pub index: u32,
    /// The key to contribute on.
    pub zkey: ZkeyRef,
    /// The transcript hash of that key (hex), for the participant to publish beside its own.
    pub transcript: String,
    /// How long the host waits for the contribution, in seconds.
    pub timeout_s: u64,
}

impl Message for CeremonyTurn {
    const KIND: &'static str = "ceremony turn";
    const MAX_BYTES: usize = 8 * 1024;
}

/// A participant to the host: my contribution.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CeremonyContribution {
    /// The ceremony, as in the turn.
    pub ceremony: String,
    /// The index, as in the turn.
    pub index: u32,
    /// The SHA-256 of the key it contributed on (the turn's).
    pub base_sha256: String,
    /// The key with the contribution.
    pub zkey: ZkeyRef,
    /// The contribution's hash (hex BLAKE2b-512), as the participant publishes it.
    pub contribution_hash: String,
}

impl Message for CeremonyContribution {
    const KIND: &'static str = "ceremony contribution";
    const MAX_BYTES: usize = 8 * 1024;
}

/// The host's verdict on one contribution.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CeremonyVerdict {
    /// The ceremony.
    pub ceremony: String,
    /// The index of the turn.
    pub index: u32,
    /// What the host decided.
    pub outcome: VerdictOutcome,
}

/// Accepted or refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case", deny_unknown_fields)]
pub enum VerdictOutcome {
    /// Verified and added to the transcript.
    Accepted {
        /// The contribution's hash (hex).
        contribution_hash: String,
        /// The transcript hash after it (hex).
        transcript: String,
    },
    /// Not added; the turn stays open until its timeout (a corrected announcement is
    /// taken), unless `final` says it is over.
    Refused {
        /// What failed, naming the check.
        reason: String,
        /// The turn is over (timed out): nothing more is taken from this participant.
        #[serde(rename = "final")]
        is_final: bool,
    },
}

impl Message for CeremonyVerdict {
    const KIND: &'static str = "ceremony verdict";
    const MAX_BYTES: usize = 8 * 1024;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DecodeError, decode, encode};

    fn zkey() -> ZkeyRef {
        ZkeyRef {
            cid: "bafybeib".into(),
            sha256: "00".repeat(32),
            bytes: 7,
        }
    }

    #[test]
    fn messages_round_trip_and_refuse_strangers() {
        let turn = CeremonyTurn {
            ceremony: "ab".into(),
            index: 2,
            zkey: zkey(),
            transcript: "cd".into(),
            timeout_s: 60,
        };
        assert_eq!(decode::<CeremonyTurn>(&encode(&turn)).unwrap(), turn);
        let verdict = CeremonyVerdict {
            ceremony: "ab".into(),
            index: 2,
            outcome: VerdictOutcome::Refused {
                reason: "contribution 2: proof of knowledge".into(),
                is_final: false,
            },
        };
        let bytes = encode(&verdict);
        assert!(String::from_utf8_lossy(&bytes).contains("\"final\":false"));
        assert_eq!(decode::<CeremonyVerdict>(&bytes).unwrap(), verdict);
        let c = CeremonyContribution {
            ceremony: "ab".into(),
            index: 2,
            base_sha256: "11".repeat(32),
            zkey: zkey(),
            contribution_hash: "ef".into(),
        };
        assert_eq!(decode::<CeremonyContribution>(&encode(&c)).unwrap(), c);
        // Unknown fields, another version, oversized.
        let mut v: serde_json::Value = serde_json::from_slice(&encode(&c)).unwrap();
        v["extra"] = 1.into();
        assert!(matches!(
            decode::<CeremonyContribution>(&serde_json::to_vec(&v).unwrap()),
            Err(DecodeError::Malformed { .. })
        ));
        v["v"] = 9.into();
        assert!(matches!(
            decode::<CeremonyContribution>(&serde_json::to_vec(&v).unwrap()),
            Err(DecodeError::Version { .. })
        ));
        assert!(matches!(
            decode::<CeremonyTurn>(&vec![b' '; 9000]),
            Err(DecodeError::TooLarge { .. })
        ));
    }

    #[test]
    fn subjects_are_per_participant() {
        assert_eq!(turn_subject("worker-1"), "pulse.ceremony.turn.worker-1");
        assert_eq!(
            contribution_subject("worker-1"),
            "pulse.ceremony.contribution.worker-1"
        );
        assert_eq!(verdict_subject("h"), "pulse.ceremony.verdict.h");
        assert_eq!(ceremony_stream().subjects, vec!["pulse.ceremony.>"]);
    }
}
