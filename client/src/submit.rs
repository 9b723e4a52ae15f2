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
    if let Some(stored) = stored_receipt(js, &subject, msg_id, deadline, timeout).await?
        && decisive(&stored.status)
    {
        return Ok(stored);
    }
    next_receipt(
        &mut receipts,
        msg_id,
        deadline,
        timeout,
        "the coordinator's receipt",
        |_| true,
    )
    .await
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
    if let Some(stored) = stored_receipt(js, &subject, tx_hash, deadline, timeout).await?
        && wanted(&stored.status)
    {
        return Ok(stored);
    }
    next_receipt(&mut receipts, tx_hash, deadline, timeout, stage, wanted).await
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

/// The last receipt stored for the transaction, if any.
async fn stored_receipt(
    js: &jetstream::Context,
    subject: &str,
    tx_hash: &str,
    deadline: Instant,
    timeout: Duration,
) -> Result<Option<Receipt>, SubmitError> {
    let got = within(deadline, timeout, tx_hash, "the stored receipts", async {
        let stream = js
            .get_stream_no_info(RECEIPT_STREAM)
            .await
            .map_err(|e| e.to_string())?;
        match stream.direct_get_last_for_subject(subject).await {
            Ok(msg) => Ok(Some(msg.payload)),
            Err(e) if e.kind() == DirectGetErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    })
    .await?
    .map_err(|reason| SubmitError::Nats {
        action: "read the stored receipts",
        reason: format!("{reason} (is the receipts stream {RECEIPT_STREAM} created?)"),
    })?;
    got.map(|payload| check_receipt(&payload, tx_hash))
        .transpose()
}

/// The next receipt on the subscription that `wanted` accepts.
async fn next_receipt(
    receipts: &mut async_nats::Subscriber,
    tx_hash: &str,
    deadline: Instant,
    timeout: Duration,
    stage: &'static str,
    wanted: impl Fn(&ReceiptStatus) -> bool,
) -> Result<Receipt, SubmitError> {
    loop {
        let msg = within(deadline, timeout, tx_hash, stage, receipts.next())
            .await?
            .ok_or_else(|| SubmitError::Nats {
                action: "wait for the receipt",
                reason: "the connection was closed".to_owned(),
            })?;
        let receipt = check_receipt(&msg.payload, tx_hash)?;
        if wanted(&receipt.status) {
            return Ok(receipt);
        }
        tracing::debug!(tx = tx_hash, "intermediate receipt; waiting for the next");
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
}
