//! Submitting signed transactions and waiting for their receipts.
//!
//! A transaction is published to [`TX_SUBJECT`] as its JSON form, with its hash on the
//! cluster's deployment (`0x…`, [`pulse_circuits::tx::TxHash`]'s display) as `Nats-Msg-Id`,
//! so that JetStream stores a resubmission only once. Signatures and hashes are bound to one
//! deployment (`pulse_l1::read_deployment` gives the cluster's): a transaction signed for
//! another one is rejected with a `bad_signature` receipt that names the cluster's chain and
//! contract. The coordinator answers on
//! [`receipt_subject`]`(hash)`: `accepted` (sequenced into a batch) or `rejected` (with a
//! reason), later `committed` once the batch is final on L1. Receipts are also kept in
//! [`RECEIPT_STREAM`] for a day.
//!
//! Nothing is lost between publishing and listening: the client subscribes to the receipt
//! subject before it publishes, and after publishing it reads the last receipt already
//! stored for the hash (a direct get), which answers a transaction the coordinator had
//! seen before. A stored rejection is not taken as the answer to a message JetStream
//! stored afresh (the coordinator will judge it again); a stored acceptance is.
//!
//! The subscription is the fast path, not the only one. On a NATS cluster the client's
//! server tells the others of its subscription asynchronously, so a receipt published on
//! another server in that moment reaches the stream but not the subscriber (and a
//! reconnect loses what was sent meanwhile). While it waits, the client therefore also
//! reads the stored receipts again, at widening intervals ([`POLL_FIRST`] up to
//! [`POLL_MAX`]), and takes one stored after the one it first saw.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::header::NATS_MESSAGE_ID;
use async_nats::jetstream::{self, context::PublishErrorKind, stream::DirectGetErrorKind};
use futures::StreamExt;
use pulse_circuits::deployment::DeploymentId;
use pulse_circuits::tx::{SignedTransaction, TxError};
use pulse_protocol::{
    DecodeError, RECEIPT_STREAM, Receipt, ReceiptStatus, TX_SUBJECT, decode, receipt_subject,
};
use tokio::time::Instant;

/// The first re-read of the stored receipts while waiting on the subscription.
pub const POLL_FIRST: Duration = Duration::from_millis(500);
/// The widest interval between re-reads of the stored receipts.
pub const POLL_MAX: Duration = Duration::from_secs(4);

/// Publishes a transaction signed for `deployment` (the cluster's: its hash is taken there)
/// and waits, at most `timeout` in all, for the coordinator's first decision: an `accepted`
/// or `rejected` receipt, or a `committed` one when the transaction was final already (a
/// resubmission).
///
/// A rejection is a receipt, not an error: its `reason` and `message` say what to change.
///
/// # Errors
/// [`SubmitError::Transaction`] when the transaction has no hash (a CID that is too long);
/// [`SubmitError::NoTxStream`] when no stream takes transactions;
/// [`SubmitError::Timeout`] when no decision arrives in time (the transaction is stored and
/// may still be decided: wait again with [`wait_receipt`]); [`SubmitError::Nats`];
/// [`SubmitError::BadReceipt`].
pub async fn submit(
    js: &jetstream::Context,
    tx: &SignedTransaction,
    deployment: DeploymentId,
    timeout: Duration,
) -> Result<Receipt, SubmitError> {
    let hash = tx
        .hash(deployment)
        .map_err(SubmitError::Transaction)?
        .to_string();
    submit_raw(js, tx.to_json().into_bytes(), &hash, timeout).await
}

/// Publishes `payload` as a transaction with `Nats-Msg-Id: msg_id` and waits for the
/// receipt on `receipt_subject(msg_id)`, as [`submit`] does. For tests of the
/// coordinator's handling of malformed input: it answers a message that is not a
/// transaction with a rejection (`tx_hash: null`) on the subject named by the message id.
///
/// # Errors
/// [`SubmitError::InvalidMsgId`] for an id that cannot be a subject token; otherwise as
/// [`submit`].
pub async fn submit_raw(
    js: &jetstream::Context,
    payload: Vec<u8>,
    msg_id: &str,
    timeout: Duration,
) -> Result<Receipt, SubmitError> {
    check_msg_id(msg_id)?;
    let deadline = Instant::now() + timeout;
    let subject = receipt_subject(msg_id);
    let mut receipts = listen(js, &subject, msg_id, deadline, timeout).await?;

    let mut headers = HeaderMap::new();
    headers.insert(NATS_MESSAGE_ID, msg_id);
    let ack = within(
        deadline,
        timeout,
        msg_id,
        "the server's acknowledgement",
        async {
            js.publish_with_headers(TX_SUBJECT, headers, payload.into())
                .await?
                .await
        },
    )
    .await?
    .map_err(|e| match e.kind() {
        PublishErrorKind::StreamNotFound => SubmitError::NoTxStream,
        _ => SubmitError::Nats {
            action: "publish the transaction",
            reason: e.to_string(),
        },
    })?;
    tracing::debug!(tx = msg_id, duplicate = ack.duplicate, "transaction stored");

    let decisive =
        |s: &ReceiptStatus| !matches!(s, ReceiptStatus::Rejected { .. }) || ack.duplicate;
    let wait = Wait {
        js,
        subject: &subject,
        tx_hash: msg_id,
        deadline,
        timeout,
        stage: "the coordinator's receipt",
    };
    wait.first(&mut receipts, decisive, |_| true).await
}

/// Waits, at most `timeout`, for the decision on a transaction already submitted (an
/// `accepted`, `rejected` or `committed` receipt), without publishing it again.
///
/// # Errors
/// As [`submit`], less the publishing.
pub async fn wait_receipt(
    js: &jetstream::Context,
    tx_hash: &str,
    timeout: Duration,
) -> Result<Receipt, SubmitError> {
    wait_for(js, tx_hash, timeout, "the coordinator's receipt", |_| true).await
}

/// Waits, at most `timeout`, until the transaction's batch is final on L1: returns the
/// `committed` receipt, or a `rejected` one (which is final too). Call it after [`submit`]
/// returned `accepted`; batches take as long as proving and L1 confirmations do.
///
/// # Errors
/// As [`wait_receipt`].
pub async fn wait_committed(
    js: &jetstream::Context,
    tx_hash: &str,
    timeout: Duration,
) -> Result<Receipt, SubmitError> {
    wait_for(js, tx_hash, timeout, "the commit on L1", |s| {
        !matches!(s, ReceiptStatus::Accepted { .. })
    })
    .await
}

async fn wait_for(
    js: &jetstream::Context,
    tx_hash: &str,
    timeout: Duration,
    stage: &'static str,
    wanted: impl Fn(&ReceiptStatus) -> bool,
) -> Result<Receipt, SubmitError> {
    check_msg_id(tx_hash)?;
    let deadline = Instant::now() + timeout;
    let subject = receipt_subject(tx_hash);
    let mut receipts = listen(js, &subject, tx_hash, deadline, timeout).await?;
    let wait = Wait {
        js,
        subject: &subject,
        tx_hash,
        deadline,
        timeout,
        stage,
    };
    wait.first(&mut receipts, &wanted, &wanted).await
}

/// Subscribes to the receipt subject and makes sure the server has the subscription
/// (a flush round trip) before anything is published.
async fn listen(
    js: &jetstream::Context,
    subject: &str,
    tx_hash: &str,
    deadline: Instant,
    timeout: Duration,
) -> Result<async_nats::Subscriber, SubmitError> {
    let client = js.client();
    let sub = within(deadline, timeout, tx_hash, "the server", async {
        let sub = client
            .subscribe(subject.to_owned())
            .await
            .map_err(|e| SubmitError::Nats {
                action: "subscribe to the receipt subject",
                reason: e.to_string(),
            })?;
        client.flush().await.map_err(|e| SubmitError::Nats {
            action: "subscribe to the receipt subject",
            reason: e.to_string(),
        })?;
        Ok::<_, SubmitError>(sub)
    })
    .await??;
    Ok(sub)
}

/// The last receipt stored for the transaction, with its stream sequence, if any.
async fn stored_receipt(
    js: &jetstream::Context,
    subject: &str,
    tx_hash: &str,
    deadline: Instant,
    timeout: Duration,
) -> Result<Option<(u64, Receipt)>, SubmitError> {
    let got = within(deadline, timeout, tx_hash, "the stored receipts", async {
        let stream = js
            .get_stream_no_info(RECEIPT_STREAM)
            .await
            .map_err(|e| e.to_string())?;
        match stream.direct_get_last_for_subject(subject).await {
            Ok(msg) => Ok(Some((msg.sequence, msg.payload))),
            Err(e) if e.kind() == DirectGetErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    })
    .await?
    .map_err(|reason| SubmitError::Nats {
        action: "read the stored receipts",
        reason: format!("{reason} (is the receipts stream {RECEIPT_STREAM} created?)"),
    })?;
    got.map(|(seq, payload)| check_receipt(&payload, tx_hash).map(|r| (seq, r)))
        .transpose()
}

/// One wait for a receipt: the subscription, and the stored receipts read again.
struct Wait<'a> {
    js: &'a jetstream::Context,
    subject: &'a str,
    tx_hash: &'a str,
    deadline: Instant,
    timeout: Duration,
    stage: &'static str,
}

impl Wait<'_> {
    /// The receipt stored for the transaction if `take_stored` accepts it; otherwise the
    /// next that `wanted` accepts ([`Wait::next`], newer than the stored one).
    async fn first(
        &self,
        receipts: &mut async_nats::Subscriber,
        take_stored: impl Fn(&ReceiptStatus) -> bool,
        wanted: impl Fn(&ReceiptStatus) -> bool,
    ) -> Result<Receipt, SubmitError> {
        let stored = stored_receipt(
            self.js,
            self.subject,
            self.tx_hash,
            self.deadline,
            self.timeout,
        )
        .await?;
        let seen = match stored {
            Some((_, receipt)) if take_stored(&receipt.status) => return Ok(receipt),
            Some((seq, _)) => Some(seq),
            None => None,
        };
        self.next(receipts, seen, wanted).await
    }

    /// The next receipt that `wanted` accepts: from the subscription, or a stored one
    /// newer than `seen` (the stream sequence of the receipt stored when waiting began).
    /// A failed re-read is not an error (the subscription may still answer); it is tried
    /// again at the next interval.
    async fn next(
        &self,
        receipts: &mut async_nats::Subscriber,
        seen: Option<u64>,
        wanted: impl Fn(&ReceiptStatus) -> bool,
    ) -> Result<Receipt, SubmitError> {
        let mut seen = seen;
        let mut interval = POLL_FIRST;
        let mut poll_at = Instant::now() + interval;
        loop {
            let live = tokio::time::timeout_at(poll_at.min(self.deadline), receipts.next());
            match live.await {
                Ok(Some(msg)) => {
                    let receipt = check_receipt(&msg.payload, self.tx_hash)?;
                    if wanted(&receipt.status) {
                        return Ok(receipt);
                    }
                    tracing::debug!(
                        tx = self.tx_hash,
                        "intermediate receipt; waiting for the next"
                    );
                }
                Ok(None) => {
                    return Err(SubmitError::Nats {
                        action: "wait for the receipt",
                        reason: "the connection was closed".to_owned(),
                    });
                }
                Err(_) if Instant::now() >= self.deadline => {
                    return Err(SubmitError::Timeout {
                        tx_hash: self.tx_hash.to_owned(),
                        waited: self.timeout,
                        stage: self.stage,
                    });
                }
                Err(_) => {
                    match stored_receipt(
                        self.js,
                        self.subject,
                        self.tx_hash,
                        self.deadline,
                        self.timeout,
                    )
                    .await
                    {
                        Ok(Some((seq, receipt))) if seen.is_none_or(|s| seq > s) => {
                            if wanted(&receipt.status) {
                                tracing::debug!(
                                    tx = self.tx_hash,
                                    "receipt read from the stream (the subscription missed it)"
                                );
                                return Ok(receipt);
                            }
                            seen = Some(seq);
                        }
                        Ok(_) | Err(SubmitError::Nats { .. }) => {}
                        Err(e) => return Err(e),
                    }
                    interval = (interval * 2).min(POLL_MAX);
                    poll_at = Instant::now() + interval;
                }
            }
        }
    }
}

fn check_receipt(payload: &[u8], tx_hash: &str) -> Result<Receipt, SubmitError> {
    let receipt = decode::<Receipt>(payload).map_err(|source| SubmitError::BadReceipt {
        tx_hash: tx_hash.to_owned(),
        source: Box::new(source),
    })?;
    match receipt.tx_hash.as_deref() {
        None => Ok(receipt),
        Some(h) if h.eq_ignore_ascii_case(tx_hash) => Ok(receipt),
        Some(other) => Err(SubmitError::ReceiptMismatch {
            tx_hash: tx_hash.to_owned(),
            found: other.chars().take(80).collect(),
        }),
    }
}

/// `fut`, or [`SubmitError::Timeout`] at `deadline`.
async fn within<T>(
    deadline: Instant,
    timeout: Duration,
    tx_hash: &str,
    stage: &'static str,
    fut: impl Future<Output = T>,
) -> Result<T, SubmitError> {
    tokio::time::timeout_at(deadline, fut)
        .await
        .map_err(|_| SubmitError::Timeout {
            tx_hash: tx_hash.to_owned(),
            waited: timeout,
            stage,
        })
}

/// A message id names the receipt subject, so it must be one subject token.
fn check_msg_id(id: &str) -> Result<(), SubmitError> {
    let ok = !id.is_empty()
        && id.len() <= 256
        && id
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'.' | b'*' | b'>'));
    if ok {
        Ok(())
    } else {
        Err(SubmitError::InvalidMsgId(id.chars().take(80).collect()))
    }
}

/// Why a transaction could not be submitted or its receipt not obtained. A rejection by
/// the coordinator is not an error but a [`Receipt`].
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The transaction cannot be hashed.
    #[error("the transaction cannot be submitted: {0}")]
    Transaction(#[source] TxError),
    /// A message id that is not a single subject token.
    #[error(
        "message id {0:?} cannot name a receipt subject: use printable ASCII without \
         spaces, '.', '*' or '>' (a transaction hash such as 0x1f…)"
    )]
    InvalidMsgId(String),
    /// No stream takes transactions.
    #[error(
        "no JetStream stream takes {TX_SUBJECT}: the Pulse layout is not set up on this \
         server; start the coordinator (or run pulse_protocol::nats::ensure_layout)"
    )]
    NoTxStream,
    /// Nothing arrived in time.
    #[error(
        "no answer from {stage} for transaction {tx_hash} within {waited:?}; if it was \
         published it is stored and may still be processed: check that the coordinator \
         runs, then wait again for its receipt (do not re-sign it with a new nonce)"
    )]
    Timeout {
        /// The transaction hash (message id).
        tx_hash: String,
        /// How long was waited in all.
        waited: Duration,
        /// What did not answer.
        stage: &'static str,
    },
    /// The server or the connection failed.
    #[error("cannot {action}: {reason}; check the NATS connection")]
    Nats {
        /// What was being done.
        action: &'static str,
        /// The server's or client's answer.
        reason: String,
    },
    /// A message on the receipt subject that is not a receipt of this protocol version.
    #[error("the receipt for transaction {tx_hash} cannot be read: {source}")]
    BadReceipt {
        /// The transaction hash.
        tx_hash: String,
        /// Why.
        #[source]
        source: Box<DecodeError>,
    },
    /// A receipt on this transaction's subject names another transaction.
    #[error(
        "the receipt on the subject of transaction {tx_hash} names transaction {found}: \
         the coordinator is misbehaving; report it to its operator"
    )]
    ReceiptMismatch {
        /// The transaction hash.
        tx_hash: String,
        /// The hash the receipt names.
        found: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_must_be_one_token() {
        assert!(check_msg_id("0x0123abcd").is_ok());
        assert!(check_msg_id("garbage-1").is_ok());
        for bad in ["", "a.b", "a b", "*", ">", "a\nb", "é"] {
            assert!(
                matches!(check_msg_id(bad), Err(SubmitError::InvalidMsgId(_))),
                "{bad:?}"
            );
        }
        assert!(check_msg_id(&"a".repeat(257)).is_err());
    }

    #[test]
    fn receipts_are_checked_against_the_hash() {
        let r = |h: Option<&str>| {
            pulse_protocol::encode(&Receipt {
                tx_hash: h.map(str::to_owned),
                status: ReceiptStatus::Rejected {
                    reason: "r".into(),
                    message: "m".into(),
                },
            })
        };
        assert!(check_receipt(&r(Some("0xab")), "0xab").is_ok());
        assert!(check_receipt(&r(Some("0xAB")), "0xab").is_ok());
        assert!(check_receipt(&r(None), "0xab").is_ok());
        assert!(matches!(
            check_receipt(&r(Some("0xcd")), "0xab"),
            Err(SubmitError::ReceiptMismatch { .. })
        ));
        assert!(matches!(
            check_receipt(b"{\"v\":2}", "0xab"),
            Err(SubmitError::BadReceipt { .. })
        ));
    }

    /// What the coordinator would store: the receipt, on its subject, in the stream.
    async fn store(js: &jetstream::Context, hash: &str, status: ReceiptStatus) -> u64 {
        let receipt = Receipt {
            tx_hash: Some(hash.to_owned()),
            status,
        };
        js.publish(
            receipt_subject(hash),
            pulse_protocol::encode(&receipt).into(),
        )
        .await
        .expect("publish")
        .await
        .expect("stored")
        .sequence
    }

    fn refused() -> ReceiptStatus {
        ReceiptStatus::Rejected {
            reason: "stale_nonce".into(),
            message: "an older answer".into(),
        }
    }

    /// A receipt stored while the subscription hears nothing (as when a cluster's other
    /// servers had not yet learnt of it) is read from the stream; the one stored before
    /// the wait began is not taken for it.
    #[tokio::test]
    async fn a_receipt_the_subscription_missed_is_read_from_the_stream() {
        let nats = pulse_testkit::Nats::start();
        let coordinator = jetstream::new(
            nats.coordinator()
                .connect("coordinator")
                .await
                .expect("connect"),
        );
        pulse_protocol::nats::ensure_layout(&coordinator, Default::default())
            .await
            .expect("layout");
        let js = jetstream::new(nats.client().connect("client").await.expect("connect"));
        let hash = "0x5eed";
        let subject = receipt_subject(hash);
        let before = store(&coordinator, hash, refused()).await;
        // A subscription that the receipt never reaches.
        let mut deaf = js
            .client()
            .subscribe(receipt_subject("0xdeaf"))
            .await
            .expect("subscribe");
        let wait = |timeout| Wait {
            js: &js,
            subject: &subject,
            tx_hash: hash,
            deadline: Instant::now() + timeout,
            timeout,
            stage: "the test's receipt",
        };

        // Nothing newer: a timeout, not the old rejection.
        let e = wait(Duration::from_secs(2))
            .next(&mut deaf, Some(before), |_| true)
            .await
            .expect_err("nothing new was stored");
        assert!(matches!(e, SubmitError::Timeout { .. }), "{e}");

        let later = {
            let coordinator = coordinator.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(1500)).await;
                let accepted = ReceiptStatus::Accepted {
                    batch: 4,
                    new_account: None,
                    new_record: None,
                    new_grant: None,
                };
                store(&coordinator, hash, accepted).await;
                tokio::time::sleep(Duration::from_millis(500)).await;
                let committed = ReceiptStatus::Committed {
                    batch: 4,
                    l1_tx: "0x01".into(),
                };
                store(&coordinator, hash, committed).await
            })
        };
        let got = wait(Duration::from_secs(20))
            .next(&mut deaf, Some(before), |_| true)
            .await
            .expect("the stored acceptance");
        assert!(
            matches!(got.status, ReceiptStatus::Accepted { batch: 4, .. }),
            "{got:?}"
        );
        // A wait for the commit takes the commit, not the acceptance.
        let got = wait(Duration::from_secs(20))
            .next(&mut deaf, Some(before), |s| {
                !matches!(s, ReceiptStatus::Accepted { .. })
            })
            .await
            .expect("the stored commit");
        assert!(
            matches!(got.status, ReceiptStatus::Committed { batch: 4, .. }),
            "{got:?}"
        );
        later.await.expect("publisher");
    }
}
