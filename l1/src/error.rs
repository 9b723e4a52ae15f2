//! Errors of the L1 side, with what to do about each.

use alloy::primitives::{Address, TxHash, U256};
use alloy::transports::{RpcError, TransportErrorKind};

use crate::contract::Revert;

/// Why an L1 operation failed.
#[derive(Debug, thiserror::Error)]
pub enum L1Error {
    /// The node did not answer or answered with an error (transient: try again).
    #[error("Ethereum node at {url}: {message}; check that the node is running and reachable")]
    Rpc {
        /// The node.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The contract's `deploymentId()` is not the id Pulse computes for its chain and
    /// address: not a Pulse rollup contract of this version.
    #[error(
        "the contract at {address} on chain {chain_id} reports deployment id {onchain}, but Pulse computes {expected} from the chain id and the address; it is not a Pulse rollup contract of this version: deploy one with `pulse l1 deploy`"
    )]
    DeploymentMismatch {
        /// The contract.
        address: Address,
        /// The chain.
        chain_id: u64,
        /// What the contract returns.
        onchain: U256,
        /// What Pulse computes.
        expected: U256,
    },
    /// The RPC URL is not a URL.
    #[error(
        "invalid Ethereum RPC URL {url:?}: {reason}; give an http(s) URL such as http://127.0.0.1:8545"
    )]
    BadUrl {
        /// The text given.
        url: String,
        /// Why it does not parse.
        reason: String,
    },
    /// No contract at the address.
    #[error(
        "no contract at {address} on {rpc_url}; deploy one with `pulse l1 deploy` or check the address and the chain"
    )]
    NoContract {
        /// The address.
        address: Address,
        /// The node.
        rpc_url: String,
    },
    /// The contract refused the call (simulated before sending: nothing was sent).
    #[error("the rollup contract refused the call: {0}")]
    Reverted(Revert),
    /// A sent transaction reverted on chain.
    #[error("commit transaction {tx} reverted on chain{}", .reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default())]
    RevertedOnChain {
        /// The transaction.
        tx: TxHash,
        /// The custom error, when a replay could tell it.
        reason: Option<Revert>,
    },
    /// The batch is not the next one.
    #[error(
        "batch {given} cannot be committed: the contract is at batch {onchain}; commit batches in order"
    )]
    OutOfOrder {
        /// The contract's batch number.
        onchain: u64,
        /// The batch given.
        given: u64,
    },
    /// The contract holds a different batch under this number.
    #[error(
        "batch {batch} on chain has root {onchain_root}, not ours ({ours}): another sequencer committed it; stop and reconcile the state"
    )]
    Conflict {
        /// The batch number.
        batch: u64,
        /// The root on chain.
        onchain_root: U256,
        /// Ours.
        ours: U256,
    },
    /// A batch without chunks.
    #[error("a batch commit needs at least one chunk proof")]
    EmptyBatch,
    /// The transaction could not be signed.
    #[error("signing the transaction failed: {0}")]
    Signing(String),
    /// The node's answer made no sense.
    #[error("unexpected answer from the Ethereum node: {0}")]
    BadAnswer(String),
    /// The verifying key or a proof does not fit the contract.
    #[error("{0}")]
    Encoding(String),
}

impl L1Error {
    pub(crate) fn rpc(url: &str, e: RpcError<TransportErrorKind>) -> Self {
        Self::Rpc {
            url: url.to_owned(),
            message: e.to_string(),
        }
    }

    pub(crate) fn contract(url: &str, e: alloy::contract::Error) -> Self {
        match e.as_revert_data() {
            Some(data) => Self::Reverted(crate::contract::decode_revert(&data)),
            None => Self::Rpc {
                url: url.to_owned(),
                message: e.to_string(),
            },
        }
    }

    /// True for failures worth retrying as they are (the node was unreachable or busy).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Rpc { .. })
    }

    /// The custom error's name when the contract refused.
    pub fn revert_name(&self) -> Option<&str> {
        match self {
            Self::Reverted(r) => Some(&r.name),
            Self::RevertedOnChain {
                reason: Some(r), ..
            } => Some(&r.name),
            _ => None,
        }
    }
}
