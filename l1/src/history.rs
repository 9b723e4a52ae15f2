//! The rollup's history as L1 records it: every committed batch, in order, with the public
//! inputs its chunk proofs were verified against (read back from the commit's calldata).
//! This is what a reader needs to rebuild the state from L1 and IPFS and check every step.

use alloy::consensus::Transaction as _;
use alloy::primitives::{Address, U256};
use alloy::providers::Provider;
use alloy::sol_types::SolCall;
use ark_bn254::Fr;

use crate::contract::{PulseRollup, fr_from_word};
use crate::sender::BatchEvent;
use crate::{L1Error, connect_to_contract};

/// The public inputs one chunk proof of a committed batch was verified against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkInputs {
    /// The state root before the chunk.
    pub root_before: Fr,
    /// The state root after it.
    pub root_after: Fr,
    /// Its public-data commitment.
    pub commitment: Fr,
}

/// A committed batch: its event and its chunks.
#[derive(Clone, Debug)]
pub struct CommittedBatch {
    /// The `BatchCommitted` event.
    pub event: BatchEvent,
    /// The chunks, in order.
    pub chunks: Vec<ChunkInputs>,
}

/// The rollup's history: its current root and batch number, and the batch events.
#[derive(Clone, Debug)]
pub struct History {
    /// The contract's batch number now.
    pub batch_number: u64,
    /// The contract's state root now.
    pub state_root: U256,
    /// Every `BatchCommitted` event, in batch order, checked to number 1, 2, … without gaps
    /// or repeats and to end at `batch_number`.
    pub events: Vec<BatchEvent>,
}

/// Reads the contract's batch number and root and every batch event.
///
/// # Errors
/// [`L1Error::NoContract`], [`L1Error::Rpc`]; [`L1Error::BadAnswer`] when the events do
/// not number the batches 1 to the contract's batch number exactly once each (a node that
/// lost logs, or a reorg while reading: read again).
pub async fn history(rpc_url: &str, contract: Address) -> Result<History, L1Error> {
    let (provider, _chain) = connect_to_contract(rpc_url, contract).await?;
    let head = crate::head(&provider, rpc_url, contract).await?;
    let (batch_number, state_root) = (head.batch_number, head.state_root);
    let mut events = crate::events_through(&provider, rpc_url, contract, &head).await?;
    events.sort_by_key(|e| (e.number, e.block_number));
    for (i, e) in events.iter().enumerate() {
        let expected = i as u64 + 1;
        if e.number != expected {
            return Err(L1Error::BadAnswer(format!(
                "the node's BatchCommitted events skip or repeat a batch: found batch {} where \
                 {expected} belongs; read again, or ask another node",
                e.number
            )));
        }
    }
    if events.len() as u64 != batch_number {
        return Err(L1Error::BadAnswer(format!(
            "the contract is at batch {batch_number} but the node returned {} BatchCommitted \
             events; read again, or ask another node",
            events.len()
        )));
    }
    Ok(History {
        batch_number,
        state_root,
        events,
    })
}

/// The chunks of the batch `event` committed, from its transaction's calldata, checked
/// against the event (count, last root).
///
/// # Errors
/// [`L1Error::Rpc`]; [`L1Error::BadAnswer`] when the transaction is missing, is not a
/// `commitBatch` call for this batch, or does not match its event.
pub async fn batch_chunks(
    rpc_url: &str,
    contract: Address,
    event: &BatchEvent,
) -> Result<Vec<ChunkInputs>, L1Error> {
    let provider = crate::connect(rpc_url)?;
    let n = event.number;
    let tx = provider
        .get_transaction_by_hash(event.tx_hash)
        .await
        .map_err(|e| L1Error::rpc(rpc_url, e))?
        .ok_or_else(|| {
            L1Error::BadAnswer(format!(
                "the node does not have transaction {} that committed batch {n}",
                event.tx_hash
            ))
        })?;
    if tx.to() != Some(contract) {
        return Err(L1Error::BadAnswer(format!(
            "batch {n} was committed by a call through another contract ({:?}); only direct \
             commitBatch calls can be read back",
            tx.to()
        )));
    }
    let call = PulseRollup::commitBatchCall::abi_decode(tx.input()).map_err(|e| {
        L1Error::BadAnswer(format!(
            "transaction {} of batch {n} is not a commitBatch call: {e}",
            event.tx_hash
        ))
    })?;
    if call.newBatchNumber != U256::from(n) || call.chunks.len() as u64 != event.chunks {
        return Err(L1Error::BadAnswer(format!(
            "transaction {} does not match batch {n}'s event",
            event.tx_hash
        )));
    }
    let field = |w: U256, what: &str| {
        fr_from_word(w).ok_or_else(|| {
            L1Error::BadAnswer(format!(
                "batch {n}: a chunk's {what} is not a field element"
            ))
        })
    };
    let chunks = call
        .chunks
        .iter()
        .map(|c| {
            Ok(ChunkInputs {
                root_before: field(c.rootBefore, "root before")?,
                root_after: field(c.rootAfter, "root after")?,
                commitment: field(c.commitment, "commitment")?,
            })
        })
        .collect::<Result<Vec<_>, L1Error>>()?;
    if chunks.last().map(|c| crate::contract::word(c.root_after)) != Some(event.new_root) {
        return Err(L1Error::BadAnswer(format!(
            "batch {n}: the last chunk's root is not the event's"
        )));
    }
    Ok(chunks)
}
