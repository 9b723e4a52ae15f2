//! The sequencer: one thread that owns the open batch (one write transaction over the
//! rollup state), applies transactions to it and seals it. Sealing writes the batch record
//! (witnesses included) to the coordinator store *before* committing the state, so that a
//! crash in between leaves a record whose start root is the state's root: found at restart
//! and dropped, its transactions come back from NATS (they were never acknowledged).

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use pulse_circuits::deployment::Deployment;
use pulse_circuits::state::{Applied, ApplyError, Batch, State};
use pulse_circuits::tx::{SignedTransaction, TxError};
use tokio::sync::{mpsc, oneshot};

use crate::store::{BatchRecord, BatchStatus, Store};

/// What the sequencer is asked to do.
pub enum Command {
    /// Apply a transaction to the open batch (opening one at `time` if none is open).
    Apply {
        /// The transaction.
        tx: Box<SignedTransaction>,
        /// The timestamp (unix seconds) of the batch this opens, if it opens one.
        time: u64,
        /// Accepted (with what it created, and the open batch's timestamp) or rejected.
        reply: oneshot::Sender<Result<(Applied, u64), Refusal>>,
    },
    /// Seal the open batch as `number`.
    Seal {
        /// The batch number.
        number: u64,
        /// When its first transaction arrived (unix ms).
        first_received_ms: u64,
        /// The sealed record, or `None` when no batch is open.
        reply: oneshot::Sender<Result<Option<BatchRecord>, String>>,
    },
}

/// Why a transaction was not applied.
#[derive(Debug)]
pub enum Refusal {
    /// Invalid: reject it.
    Rejected(TxError),
    /// The store failed: the transaction is not rejected (it will be retried).
    Storage(String),
}

/// Unix milliseconds now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Starts the sequencer thread, which checks signatures for `deployment`. The thread ends
/// (rolling back a batch left open) once every sender is dropped; the handle joins it, so
/// that a stopping coordinator releases the state file before it returns.
///
/// # Errors
/// The thread cannot be started.
pub fn spawn(
    state: Arc<State>,
    store: Arc<Store>,
    slots: usize,
    deployment: Deployment,
) -> std::io::Result<(mpsc::Sender<Command>, std::thread::JoinHandle<()>)> {
    let (tx, rx) = mpsc::channel(1024);
    let handle = std::thread::Builder::new()
        .name("pulse-sequencer".into())
        .spawn(move || run(&state, &store, slots, &deployment, rx))?;
    Ok((tx, handle))
}

fn run(
    state: &State,
    store: &Store,
    slots: usize,
    deployment: &Deployment,
    mut rx: mpsc::Receiver<Command>,
) {
    let mut open: Option<(Batch<'_>, u64)> = None;
    while let Some(cmd) = rx.blocking_recv() {
        match cmd {
            Command::Apply { tx, time, reply } => {
                if open.is_none() {
                    match state.begin(time, deployment) {
                        Ok(b) => open = Some((b, time)),
                        Err(e) => {
                            let _ = reply.send(Err(Refusal::Storage(e.to_string())));
                            continue;
                        }
                    }
                }
                let Some((batch, time)) = open.as_mut() else {
                    continue;
                };
                let result = match batch.apply(&tx) {
                    Ok(a) => Ok((a.clone(), *time)),
                    Err(ApplyError::Rejected(e)) => Err(Refusal::Rejected(e)),
                    Err(ApplyError::Storage(e)) => Err(Refusal::Storage(e.to_string())),
                };
                let _ = reply.send(result);
            }
            Command::Seal {
                number,
                first_received_ms,
                reply,
            } => {
                let result = match open.take() {
                    None => Ok(None),
                    Some((batch, _)) if batch.applied().is_empty() => {
                        let _ = batch.rollback();
                        Ok(None)
                    }
                    Some((batch, _)) => seal(state, store, batch, number, slots, first_received_ms),
                };
                let _ = reply.send(result);
            }
        }
    }
    if let Some((b, _)) = open {
        let _ = b.rollback();
    }
}

/// Why a transaction whose message id is not its hash on `deployment` is refused: a
/// client computes the hash for the deployment it signed for, so the usual cause is a
/// signature made for another deployment. When the signature does not verify here, the
/// refusal is the signature's (`bad_signature`, naming this deployment); otherwise the id
/// itself is wrong (`id_mismatch`).
pub fn foreign_id_refusal(
    state: &State,
    stx: &SignedTransaction,
    deployment: &Deployment,
) -> (&'static str, String) {
    match state.verify_signature(stx, deployment) {
        Err(ApplyError::Rejected(e @ TxError::BadSignature { .. })) => (e.reason(), e.to_string()),
        _ => (
            "id_mismatch",
            format!(
                "the message id (Nats-Msg-Id) must be the transaction's hash on this deployment \
                 ({deployment})"
            ),
        ),
    }
}

fn seal(
    state: &State,
    store: &Store,
    batch: Batch<'_>,
    number: u64,
    slots: usize,
    first_received_ms: u64,
) -> Result<Option<BatchRecord>, String> {
    let before = state.roots().map_err(|e| e.to_string())?;
    let chunks = batch.chunks(before, slots);
    let record = BatchRecord {
        number,
        status: BatchStatus::Proving,
        timestamp: batch.timestamp(),
        tx_hashes: batch.applied().iter().map(|a| a.hash.to_string()).collect(),
        proofs: vec![None; chunks.len()],
        provers: vec![None; chunks.len()],
        chunks,
        generation: 0,
        data_cid: None,
        l1_tx: None,
        l1_gas: None,
        failure: None,
        first_received_ms,
        sealed_ms: now_ms(),
        proven_ms: None,
        committed_ms: None,
    };
    store.put(&record).map_err(|e| e.to_string())?;
    batch.commit().map_err(|e| e.to_string())?;
    Ok(Some(record))
}
