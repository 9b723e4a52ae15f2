//! The sequencing journal: what the active coordinator has promised, made durable in
//! JetStream before the promise is made.
//!
//! A receipt says "accepted in batch N". For that to stay true when the coordinator's
//! machine dies, the order it applied transactions in, and where its batches begin and
//! end, must outlive it: a standby that takes over catches its state up to L1 and then
//! replays the journal's batches past L1, re-creating the same batches (same
//! transactions, same order, same timestamp, so the same roots and the same receipts).
//!
//! Entries, one JetStream message each on `pulse.journal.<batch>`:
//! - `open`: batch N begins, with its timestamp (the time its grants are checked against);
//! - `tx`: the next accepted transaction of batch N, written before its receipt is sent;
//! - `seal`: batch N is sealed (a later batch's `open` implies it too).
//!
//! The stream keeps entries for a day (longer than a transaction's redelivery window), so a
//! standby also learns which transactions of the batches already on L1 it must not
//! sequence again.

use std::collections::BTreeMap;
use std::time::Duration;

use async_nats::jetstream::{self, stream};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

pub use pulse_protocol::{JOURNAL_PREFIX, JOURNAL_STREAM};
/// How long entries are kept.
pub const JOURNAL_MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// The largest entry: a transaction (at most `MAX_TX_JSON_BYTES`) and its envelope.
const MAX_ENTRY_BYTES: i32 = 128 * 1024;

/// One journal entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Entry {
    /// Batch `batch` begins; its transactions are checked at unix time `time`.
    Open {
        /// The batch number.
        batch: u64,
        /// Its timestamp (unix seconds).
        time: u64,
        /// The deployment the transactions are signed for (hex): a journal left by another
        /// deployment is never replayed onto this one's state.
        deployment: String,
    },
    /// The next accepted transaction of `batch`, as the client signed it.
    Tx {
        /// The batch number.
        batch: u64,
        /// The transaction's hash (its receipt id).
        hash: String,
        /// The signed transaction, as JSON.
        tx: String,
    },
    /// Batch `batch` is sealed.
    Seal {
        /// The batch number.
        batch: u64,
    },
}

impl Entry {
    /// The batch the entry belongs to.
    pub fn batch(&self) -> u64 {
        match self {
            Self::Open { batch, .. } | Self::Tx { batch, .. } | Self::Seal { batch } => *batch,
        }
    }
}

/// Why the journal cannot be written or read.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// JetStream refused or did not answer.
    #[error(
        "the sequencing journal on NATS JetStream ({what}): {reason}; check that JetStream runs and this coordinator's user may use the {JOURNAL_STREAM} stream"
    )]
    Nats {
        /// What was being done.
        what: &'static str,
        /// The server's answer.
        reason: String,
    },
    /// An entry that does not parse, or entries out of order.
    #[error(
        "the sequencing journal is not consistent: {0}; it was written by another deployment or altered — stop and ask the operator"
    )]
    Inconsistent(String),
}

fn nats(what: &'static str, e: impl std::fmt::Display) -> JournalError {
    JournalError::Nats {
        what,
        reason: e.to_string(),
    }
}

/// The journal stream's settings (file storage; `replicas` copies on a NATS cluster).
pub fn stream_config(replicas: usize) -> stream::Config {
    stream::Config {
        name: JOURNAL_STREAM.to_owned(),
        description: Some(
            "the coordinator's sequencing journal: batches and their transactions in order"
                .to_owned(),
        ),
        subjects: vec![format!("{JOURNAL_PREFIX}.>")],
        retention: stream::RetentionPolicy::Limits,
        storage: stream::StorageType::File,
        max_age: JOURNAL_MAX_AGE,
        max_message_size: MAX_ENTRY_BYTES,
        num_replicas: replicas.clamp(1, pulse_protocol::nats::MAX_REPLICAS),
        ..Default::default()
    }
}

/// Tries at storing one entry before the write fails.
const WRITE_ATTEMPTS: u32 = 8;

/// The writer the active coordinator holds.
#[derive(Clone)]
pub struct Journal {
    js: jetstream::Context,
    /// Names this writer's entries (`Nats-Msg-Id` = writer.sequence): a retried write
    /// whose first try was stored after all is dropped by the stream as a duplicate.
    writer: u64,
    written: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Journal {
    /// Creates the stream, or brings an existing one to these settings (a deployment
    /// that moves to a NATS cluster raises its replicas).
    ///
    /// # Errors
    /// [`JournalError::Nats`].
    pub async fn open(js: jetstream::Context, replicas: usize) -> Result<Self, JournalError> {
        js.create_or_update_stream(stream_config(replicas))
            .await
            .map_err(|e| nats("creating the stream", e))?;
        Ok(Self {
            js,
            writer: crate::random_id(),
            written: std::sync::Arc::default(),
        })
    }

    /// Writes `entry` and waits until JetStream has stored it, trying again for a while
    /// when it is not (a NATS node lost, the stream electing a new leader); the retries
    /// carry the same message id, so the entry is stored once.
    ///
    /// # Errors
    /// [`JournalError::Nats`] when it is not stored: the promise must then not be made.
    pub async fn write(&self, entry: &Entry) -> Result<(), JournalError> {
        let body = serde_json::to_vec(entry).map_err(|e| nats("encoding an entry", e))?;
        let subject = format!("{JOURNAL_PREFIX}.{}", entry.batch());
        let sequence = self
            .written
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = format!("{:016x}.{sequence}", self.writer);
        let mut pause = Duration::from_millis(250);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Nats-Msg-Id", id.as_str());
            let stored = match self
                .js
                .publish_with_headers(subject.clone(), headers, body.clone().into())
                .await
            {
                Ok(ack) => ack
                    .await
                    .map(|_| ())
                    .map_err(|e| nats("storing an entry", e)),
                Err(e) => Err(nats("writing an entry", e)),
            };
            match stored {
                Ok(()) => return Ok(()),
                Err(e) if attempt >= WRITE_ATTEMPTS => return Err(e),
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?pause, "journal entry not stored; trying again");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(4));
                }
            }
        }
    }
}

/// A batch as the journal has it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JournalBatch {
    /// Its timestamp.
    pub time: u64,
    /// Its deployment.
    pub deployment: String,
    /// Its transactions in order: (hash, signed JSON).
    pub txs: Vec<(String, String)>,
    /// Whether it was sealed.
    pub sealed: bool,
}

/// Every batch in the journal, by number.
pub type Batches = BTreeMap<u64, JournalBatch>;

/// Folds entries (in stream order) into batches, checking their order: a batch opens once,
/// before its transactions; numbers only grow; a batch is sealed when a later one opens.
///
/// # Errors
/// [`JournalError::Inconsistent`] naming the first entry out of place.
pub fn fold(entries: impl IntoIterator<Item = Entry>) -> Result<Batches, JournalError> {
    let mut out = Batches::new();
    let mut last: Option<u64> = None;
    for e in entries {
        let n = e.batch();
        match e {
            Entry::Open {
                time, deployment, ..
            } => {
                if last.is_some_and(|l| n <= l) {
                    return Err(JournalError::Inconsistent(format!(
                        "batch {n} opens after batch {}",
                        last.unwrap_or_default()
                    )));
                }
                if let Some(l) = last.and_then(|l| out.get_mut(&l)) {
                    l.sealed = true;
                }
                out.insert(
                    n,
                    JournalBatch {
                        time,
                        deployment,
                        ..JournalBatch::default()
                    },
                );
                last = Some(n);
            }
            Entry::Tx { hash, tx, .. } => match out.get_mut(&n) {
                Some(b) if last == Some(n) && !b.sealed => b.txs.push((hash, tx)),
                _ => {
                    return Err(JournalError::Inconsistent(format!(
                        "a transaction of batch {n} outside its open batch"
                    )));
                }
            },
            // Sealing twice (a restarted coordinator re-sealing a batch) changes nothing.
            Entry::Seal { .. } => match out.get_mut(&n) {
                Some(b) if last == Some(n) || b.sealed => b.sealed = true,
                _ => {
                    return Err(JournalError::Inconsistent(format!(
                        "batch {n} sealed without being open"
                    )));
                }
            },
        }
    }
    Ok(out)
}

/// Decodes entry number `seq` as read from the stream.
///
/// # Errors
/// [`JournalError::Inconsistent`] naming the entry when it does not parse (or is larger
/// than an entry can be).
pub fn decode(seq: u64, bytes: &[u8]) -> Result<Entry, JournalError> {
    if bytes.len() > MAX_ENTRY_BYTES as usize {
        return Err(JournalError::Inconsistent(format!(
            "entry {seq} is {} bytes, above the {MAX_ENTRY_BYTES} an entry can be",
            bytes.len()
        )));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| JournalError::Inconsistent(format!("entry {seq} does not parse ({e})")))
}

/// Reads the whole journal, in order, up to its last entry at the time of the call.
///
/// # Errors
/// [`JournalError`].
pub async fn read(js: &jetstream::Context) -> Result<Batches, JournalError> {
    // A JetStream request can fail on a loaded server; the read is retried before the
    // coordinator gives up starting (entries out of place are never retried).
    let mut tries = 0;
    loop {
        tries += 1;
        match read_once(js).await {
            Err(e @ JournalError::Nats { .. }) if tries < 3 => {
                tracing::warn!(error = %e, "reading the sequencing journal; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            other => return other,
        }
    }
}

async fn read_once(js: &jetstream::Context) -> Result<Batches, JournalError> {
    let stream = js
        .get_stream(JOURNAL_STREAM)
        .await
        .map_err(|e| nats("opening the stream", e))?;
    // The state as `get_stream` just read it.
    let info = stream.cached_info();
    let last_seq = info.state.last_sequence;
    if info.state.messages == 0 {
        return Ok(Batches::new());
    }
    let consumer = stream
        .create_consumer(jetstream::consumer::pull::OrderedConfig {
            deliver_policy: jetstream::consumer::DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .map_err(|e| nats("reading the entries", e))?;
    let mut messages = consumer
        .messages()
        .await
        .map_err(|e| nats("reading the entries", e))?;
    let mut entries = Vec::new();
    while let Some(m) = tokio::time::timeout(Duration::from_secs(10), messages.next())
        .await
        .map_err(|_| nats("reading the entries", "no entry within 10 s"))?
    {
        let m = m.map_err(|e| nats("reading an entry", e))?;
        let seq = m.info().map(|i| i.stream_sequence).unwrap_or(last_seq);
        entries.push(decode(seq, &m.payload)?);
        if seq >= last_seq {
            break;
        }
    }
    fold(entries)
}

/// Drops the entries of batches up to `through` once they are final on L1 and their
/// transactions acknowledged (kept otherwise until they age out).
///
/// # Errors
/// [`JournalError::Nats`].
pub async fn forget_batch(js: &jetstream::Context, batch: u64) -> Result<(), JournalError> {
    let stream = js
        .get_stream(JOURNAL_STREAM)
        .await
        .map_err(|e| nats("opening the stream", e))?;
    stream
        .purge()
        .filter(format!("{JOURNAL_PREFIX}.{batch}"))
        .await
        .map_err(|e| nats("dropping a committed batch", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(batch: u64, time: u64) -> Entry {
        Entry::Open {
            batch,
            time,
            deployment: "d".to_owned(),
        }
    }

    fn tx(batch: u64, h: &str) -> Entry {
        Entry::Tx {
            batch,
            hash: h.to_owned(),
            tx: format!("{{\"h\":\"{h}\"}}"),
        }
    }

    #[test]
    fn entries_fold_into_batches_and_a_later_open_seals_the_one_before() {
        let b = fold([
            open(3, 100),
            tx(3, "a"),
            tx(3, "b"),
            open(4, 105),
            tx(4, "c"),
            Entry::Seal { batch: 4 },
            Entry::Seal { batch: 3 },
            open(5, 110),
            tx(5, "d"),
        ])
        .expect("fold");
        assert_eq!(b.len(), 3);
        assert!(b[&3].sealed && b[&4].sealed && !b[&5].sealed);
        assert_eq!(b[&3].time, 100);
        let hashes: Vec<&str> = b[&3].txs.iter().map(|(h, _)| h.as_str()).collect();
        assert_eq!(hashes, ["a", "b"]);
    }

    #[test]
    fn entries_out_of_place_are_named() {
        for (entries, says) in [
            (vec![tx(1, "a")], "outside its open batch"),
            (vec![open(2, 1), open(2, 1)], "batch 2 opens after batch 2"),
            (vec![Entry::Seal { batch: 1 }], "sealed without being open"),
            (
                vec![open(1, 1), Entry::Seal { batch: 1 }, tx(1, "a")],
                "outside its open batch",
            ),
        ] {
            let e = fold(entries).expect_err("inconsistent");
            assert!(e.to_string().contains(says), "{e}");
        }
    }

    #[test]
    fn an_entry_reads_back_and_unknown_fields_are_refused() {
        let e = open(7, 9);
        let text = serde_json::to_string(&e).expect("json");
        assert_eq!(serde_json::from_str::<Entry>(&text).expect("parse"), e);
        assert!(serde_json::from_str::<Entry>(r#"{"kind":"seal","batch":1,"x":2}"#).is_err());
    }
}
