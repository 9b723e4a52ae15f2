//! The roles and what nats-server lets each of them do.
//!
//! Permissions are allow lists of subjects to publish to and subscribe to; the JetStream
//! API is itself a set of subjects (`$JS.API.…`), so what a user may do with streams and
//! consumers is decided by the same lists. Anything not allowed is refused by the server
//! with a permissions violation.

use std::fmt;
use std::str::FromStr;

use pulse_protocol::ceremony::{
    CEREMONY_STREAM, contribution_subject, turn_subject, verdict_subject,
};
use pulse_protocol::dac::{DAC_PREFIX, DAC_STREAM, attestation_subject};
use pulse_protocol::{
    JOB_CONSUMER, JOB_PREFIX, JOB_STREAM, JOURNAL_PREFIX, KEY_BUCKET, RECEIPT_PREFIX,
    RECEIPT_STREAM, RESULT_SUBJECT, SHARD_PREFIX, SHARD_STREAM, SHARE_BUCKET, SPLIT_BUCKET,
    TX_SUBJECT, WORKER_BUCKET, shard_consumer,
};
use serde::{Deserialize, Serialize};

use crate::AccessError;

/// A party's role on the cluster's NATS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The operator's coordinator: owns the streams, consumers, buckets and the key
    /// object store; publishes receipts and jobs.
    Coordinator,
    /// One hospital machine: pulls jobs, acknowledges them, publishes results, reads the
    /// proving keys, writes its own registry entry.
    Worker,
    /// Submitting software: publishes transactions, reads receipts.
    Client,
    /// An availability committee member (a hospital): reads the attestation requests,
    /// publishes its own attestations.
    Member,
    /// Monitoring: the server's `$SYS` statistics (streams and consumers included), in the
    /// system account, where no Pulse protocol subject exists.
    Operator,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 5] = [
        Role::Coordinator,
        Role::Worker,
        Role::Client,
        Role::Member,
        Role::Operator,
    ];

    /// The role's name, as in files and flags.
    pub fn name(self) -> &'static str {
        match self {
            Role::Coordinator => "coordinator",
            Role::Worker => "worker",
            Role::Client => "client",
            Role::Member => "member",
            Role::Operator => "operator",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.name() == s)
            .ok_or_else(|| {
                format!("`{s}` is not a role: use coordinator, worker, client, member or operator")
            })
    }
}

/// Checks a user name: `[A-Za-z0-9_-]{1,64}` (it becomes a subject token).
///
/// # Errors
/// [`AccessError::BadUserName`].
pub fn validate_user_name(name: &str) -> Result<(), AccessError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(AccessError::BadUserName {
            name: name.chars().take(64).collect(),
        })
    }
}

/// The inbox prefix of a user: replies to its requests (JetStream API answers, pulled
/// jobs, publish acknowledgements) arrive under `<prefix>.>`, which only it may read.
pub fn inbox_prefix(role: Role, name: &str) -> String {
    format!("_INBOX_{}_{name}", role.name())
}

/// Subjects a user may publish to and subscribe to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Permissions {
    /// Subjects it may publish to (requests to the JetStream API included).
    pub publish: Vec<String>,
    /// Subjects it may subscribe to.
    pub subscribe: Vec<String>,
}

/// What a user of `role` named `name` may do. Worker names are their worker ids: a worker
/// may write only the registry entry under its own name.
pub fn permissions(role: Role, name: &str) -> Permissions {
    let inbox = format!("{}.>", inbox_prefix(role, name));
    let kv_stream = |bucket: &str| format!("KV_{bucket}");
    let obj_stream = |bucket: &str| format!("OBJ_{bucket}");
    match role {
        Role::Coordinator => Permissions {
            // Its own layout, receipts and jobs. It never submits transactions nor
            // publishes proving results.
            publish: vec![
                format!("{RECEIPT_PREFIX}.>"),
                format!("{JOB_PREFIX}.>"),
                format!("{SHARD_PREFIX}.>"),
                format!("{JOURNAL_PREFIX}.>"),
                // As a ceremony's host: turns and verdicts, never a participant's
                // contribution.
                turn_subject("*"),
                verdict_subject("*"),
                // Attestation requests to the committee, never an attestation.
                format!("{DAC_PREFIX}.request.>"),
                "$JS.API.>".into(),
                "$JS.ACK.>".into(),
                "$JS.FC.>".into(),
                "$KV.>".into(),
                "$O.>".into(),
            ],
            subscribe: vec![inbox],
        },
        Role::Worker => {
            let registry = kv_stream(WORKER_BUCKET);
            let keys = obj_stream(KEY_BUCKET);
            let split = obj_stream(SPLIT_BUCKET);
            let shards = shard_consumer(name);
            let mut publish = vec![
                // The job consumer: its info, pulling, and acknowledging what it got.
                format!("$JS.API.STREAM.INFO.{JOB_STREAM}"),
                format!("$JS.API.CONSUMER.INFO.{JOB_STREAM}.{JOB_CONSUMER}"),
                format!("$JS.API.CONSUMER.MSG.NEXT.{JOB_STREAM}.{JOB_CONSUMER}"),
                format!("$JS.ACK.{JOB_STREAM}.{JOB_CONSUMER}.>"),
                // Results.
                RESULT_SUBJECT.to_owned(),
                // Its own registry entry, and nobody else's.
                format!("$JS.API.STREAM.INFO.{registry}"),
                format!("$KV.{WORKER_BUCKET}.{name}"),
                format!("$JS.API.DIRECT.GET.{registry}.$KV.{WORKER_BUCKET}.{name}"),
                // Reading the proving keys: an object is read through an ephemeral
                // ordered consumer on the store's stream, which it may create and
                // delete there and nowhere else.
                format!("$JS.API.STREAM.INFO.{keys}"),
                format!("$JS.API.DIRECT.GET.{keys}.>"),
                format!("$JS.API.STREAM.MSG.GET.{keys}"),
                format!("$JS.API.CONSUMER.CREATE.{keys}"),
                format!("$JS.API.CONSUMER.CREATE.{keys}.>"),
                format!("$JS.API.CONSUMER.DELETE.{keys}.>"),
                format!("$JS.FC.{keys}.>"),
                // Its own shard jobs (the coordinator makes the consumer), nobody
                // else's.
                format!("$JS.API.STREAM.INFO.{SHARD_STREAM}"),
                format!("$JS.API.CONSUMER.INFO.{SHARD_STREAM}.{shards}"),
                format!("$JS.API.CONSUMER.MSG.NEXT.{SHARD_STREAM}.{shards}"),
                format!("$JS.ACK.{SHARD_STREAM}.{shards}.>"),
                // Writing shard scalars (as the assembler of a split proof): new
                // chunks and their metadata, never a purge; readers check every
                // object against the hash that names it.
                format!("$O.{SPLIT_BUCKET}.C.>"),
                format!("$O.{SPLIT_BUCKET}.M.>"),
            ];
            // A ceremony's participant: its own turns and verdicts, its own
            // contributions, nobody else's.
            for subject in [turn_subject(name), verdict_subject(name)] {
                publish.push(format!("$JS.API.DIRECT.GET.{CEREMONY_STREAM}.{subject}"));
            }
            publish.push(contribution_subject(name));
            // Reading shard scalars, as the keys are read.
            for api in [
                format!("$JS.API.STREAM.INFO.{split}"),
                format!("$JS.API.DIRECT.GET.{split}.>"),
                format!("$JS.API.STREAM.MSG.GET.{split}"),
                format!("$JS.API.CONSUMER.CREATE.{split}"),
                format!("$JS.API.CONSUMER.CREATE.{split}.>"),
                format!("$JS.API.CONSUMER.DELETE.{split}.>"),
                format!("$JS.FC.{split}.>"),
            ] {
                publish.push(api);
            }
            Permissions {
                publish,
                subscribe: vec![inbox],
            }
        }
        Role::Client => Permissions {
            publish: vec![
                TX_SUBJECT.to_owned(),
                // The last receipt of a transaction whose hash it knows.
                format!("$JS.API.DIRECT.GET.{RECEIPT_STREAM}.{RECEIPT_PREFIX}.*"),
                // Wrapped record keys for grantees: written by owners, read by grantees.
                format!("$JS.API.STREAM.INFO.{}", kv_stream(SHARE_BUCKET)),
                format!("$KV.{SHARE_BUCKET}.>"),
                format!("$JS.API.DIRECT.GET.{}.>", kv_stream(SHARE_BUCKET)),
            ],
            subscribe: vec![format!("{RECEIPT_PREFIX}.*"), inbox],
        },
        Role::Member => Permissions {
            publish: vec![
                // Its own attestations, nobody else's.
                attestation_subject(name, "*"),
                // Reading the committee stream (requests, in order) by direct get.
                format!("$JS.API.STREAM.INFO.{DAC_STREAM}"),
                format!("$JS.API.DIRECT.GET.{DAC_STREAM}"),
                format!("$JS.API.DIRECT.GET.{DAC_STREAM}.>"),
            ],
            subscribe: vec![inbox],
        },
        Role::Operator => {
            // Read-only monitoring requests in the system account: server and JetStream
            // statistics (streams and consumers of every account), connections,
            // subscriptions, health. Not reloads, kicks, profiling or account updates.
            const READ_ONLY: [&str; 9] = [
                "STATZ", "VARZ", "SUBSZ", "CONNZ", "ROUTEZ", "LEAFZ", "ACCOUNTZ", "JSZ", "HEALTHZ",
            ];
            let mut publish = vec!["$SYS.REQ.SERVER.PING".to_owned()];
            for z in READ_ONLY {
                publish.push(format!("$SYS.REQ.SERVER.PING.{z}"));
                publish.push(format!("$SYS.REQ.SERVER.*.{z}"));
            }
            for z in ["CONNZ", "JSZ", "INFO", "STATZ", "SUBSZ"] {
                publish.push(format!("$SYS.REQ.ACCOUNT.*.{z}"));
            }
            Permissions {
                publish,
                subscribe: vec![inbox, "$SYS.SERVER.>".into(), "$SYS.ACCOUNT.>".into()],
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_writes_only_its_own_registry_key() {
        let p = permissions(Role::Worker, "h1");
        assert!(p.publish.contains(&"$KV.pulse-workers.h1".to_owned()));
        assert!(
            !p.publish
                .iter()
                .any(|s| s.contains("$KV.pulse-workers.>") || s.contains("$KV.pulse-workers.*"))
        );
        assert!(!p.publish.iter().any(|s| s.starts_with(RECEIPT_PREFIX)));
        assert_eq!(p.subscribe, vec!["_INBOX_worker_h1.>".to_owned()]);
        // Its own shard jobs only, and no purge of the shard scalars.
        assert!(
            p.publish
                .contains(&"$JS.API.CONSUMER.MSG.NEXT.PULSE_SHARDS.shard-h1".to_owned())
        );
        assert!(
            !p.publish
                .iter()
                .any(|s| s.contains("PULSE_SHARDS.shard-h2") || s.contains("PULSE_SHARDS.>"))
        );
        assert!(!p.publish.iter().any(|s| s.contains("PURGE")));
    }

    #[test]
    fn names_are_subject_tokens() {
        for good in ["h1", "hospital-a_gpu-0", &"x".repeat(64)] {
            validate_user_name(good).expect(good);
        }
        for bad in ["", "a.b", "a b", "a*", ">", &"x".repeat(65), "é"] {
            assert!(validate_user_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn roles_parse() {
        for r in Role::ALL {
            assert_eq!(r.name().parse::<Role>(), Ok(r));
        }
        assert!("admin".parse::<Role>().is_err());
    }
}
