//! The L1 side of Pulse: bindings to the rollup contract (from the compiled artifact in
//! `contracts/out/`), deployment, status reads and the [`sender`] that gets batch commits
//! onto L1 in order and exactly once.
//!
//! The rollup contract holds the state root and the batch number and verifies all chunk
//! proofs of a batch in one pairing check (see `contracts/README.md`), for its own
//! deployment id ([`mod@deployment`]): the field element every transaction is signed over.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod attest;
pub mod contract;
pub mod deployment;
mod error;
pub mod history;
pub mod pipeline;
pub mod sender;

use alloy::network::EthereumWallet;
use alloy::primitives::{Address, B256, TxHash, U256};
use alloy::providers::{Provider, ProviderBuilder, RootProvider};
use alloy::signers::local::PrivateKeySigner;
use ark_bn254::{Bn254, Fr};
use ark_groth16::VerifyingKey;
use pulse_circuits::deployment::DeploymentId;

pub use contract::{ChunkProof, PulseRollup, Revert};
pub use deployment::{deployment, deployment_id, read_deployment};
pub use error::L1Error;
pub use sender::{BatchCommit, BatchEvent, Committed, L1Sender, Phase, SenderConfig, SenderStatus};

/// A provider for `rpc_url` with no fillers: callers set every field they send.
///
/// # Errors
/// [`L1Error::BadUrl`] when `rpc_url` is not an http(s) URL.
pub fn connect(rpc_url: &str) -> Result<RootProvider, L1Error> {
    let url = parse_url(rpc_url)?;
    Ok(ProviderBuilder::new()
        .disable_recommended_fillers()
        .connect_http(url))
}

/// A provider for `rpc_url` (as [`connect`]) and the node's chain id, once the node has
/// said there is code at `contract`.
///
/// # Errors
/// [`L1Error::BadUrl`], [`L1Error::Rpc`], [`L1Error::NoContract`].
pub(crate) async fn connect_to_contract(
    rpc_url: &str,
    contract: Address,
) -> Result<(RootProvider, u64), L1Error> {
    let provider = connect(rpc_url)?;
    let chain_id = provider
        .get_chain_id()
        .await
        .map_err(|e| L1Error::rpc(rpc_url, e))?;
    let code = provider
        .get_code_at(contract)
        .await
        .map_err(|e| L1Error::rpc(rpc_url, e))?;
    if code.is_empty() {
        return Err(L1Error::NoContract {
            address: contract,
            rpc_url: rpc_url.to_owned(),
        });
    }
    Ok((provider, chain_id))
}

/// The contract's batch number and state root at the node's latest block, and that block:
/// readers that also read the events pin them to it, so that storage and logs agree (a node
/// can show a new batch number a moment before it serves the new block's logs).
pub(crate) struct Head {
    pub(crate) at: u64,
    pub(crate) batch_number: u64,
    pub(crate) state_root: U256,
}

/// Reads [`Head`].
///
/// # Errors
/// [`L1Error::Rpc`] when the node does not answer; [`L1Error::BadAnswer`] for a batch number
/// above 2^64.
pub(crate) async fn head(
    provider: &RootProvider,
    rpc_url: &str,
    contract: Address,
) -> Result<Head, L1Error> {
    let rollup = PulseRollup::new(contract, provider);
    let c = |e| L1Error::contract(rpc_url, e);
    let at = provider
        .get_block_number()
        .await
        .map_err(|e| L1Error::rpc(rpc_url, e))?;
    let batch_number = rollup
        .batchNumber()
        .block(at.into())
        .call()
        .await
        .map_err(c)?;
    let state_root = rollup
        .stateRoot()
        .block(at.into())
        .call()
        .await
        .map_err(c)?;
    Ok(Head {
        at,
        batch_number: u64::try_from(batch_number)
            .map_err(|_| L1Error::BadAnswer("batch number above 2^64".to_owned()))?,
        state_root,
    })
}

/// How long [`events_through`] waits for a node to serve the logs of a block whose storage
/// it already serves.
const LOG_LAG_RETRIES: u32 = 20;
const LOG_LAG_PAUSE: std::time::Duration = std::time::Duration::from_millis(100);

/// Every `BatchCommitted` event up to `head.at`. Pinning the block is not enough on every
/// node: anvil (and load-balanced providers) can answer storage at a block a moment before
/// their log index holds it. When the last event is short of `head.batch_number`, the read
/// is repeated, up to two seconds; what it then returns is left to the caller to judge.
///
/// # Errors
/// [`L1Error::Rpc`], [`L1Error::BadAnswer`] as [`sender::batch_events`].
pub(crate) async fn events_through(
    provider: &RootProvider,
    rpc_url: &str,
    contract: Address,
    head: &Head,
) -> Result<Vec<BatchEvent>, L1Error> {
    let mut tries = 0;
    loop {
        let events = sender::batch_events(provider, rpc_url, contract, None, Some(head.at)).await?;
        let last = events.iter().map(|e| e.number).max().unwrap_or(0);
        if last >= head.batch_number || tries >= LOG_LAG_RETRIES {
            return Ok(events);
        }
        tries += 1;
        tokio::time::sleep(LOG_LAG_PAUSE).await;
    }
}

fn parse_url(rpc_url: &str) -> Result<alloy::transports::http::reqwest::Url, L1Error> {
    let url: alloy::transports::http::reqwest::Url =
        rpc_url
            .parse()
            .map_err(|e: url::ParseError| L1Error::BadUrl {
                url: rpc_url.to_owned(),
                reason: e.to_string(),
            })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(L1Error::BadUrl {
            url: rpc_url.to_owned(),
            reason: format!("scheme {:?} is not http or https", url.scheme()),
        });
    }
    Ok(url)
}

/// What a new rollup deployment starts from.
#[derive(Clone, Debug)]
pub struct DeployParams {
    /// The state root of the genesis state.
    pub genesis_root: Fr,
    /// The chunk circuit's verifying key.
    pub vk: VerifyingKey<Bn254>,
    /// The owner (manages operators).
    pub owner: Address,
    /// The operators (may commit batches).
    pub operators: Vec<Address>,
    /// The data-availability committee's attestation addresses (empty: no committee).
    pub committee: Vec<Address>,
    /// Attestations of distinct members each batch needs (0 with no committee).
    pub threshold: u64,
}

/// A deployed rollup contract.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deployment {
    /// Its address.
    pub address: Address,
    /// The deploying transaction.
    pub tx_hash: TxHash,
    /// The block it was deployed in.
    pub block_number: u64,
    /// The chain.
    pub chain_id: u64,
    /// SHA-256 of the verifying key (as Pulse's key manifests name it).
    pub vk_hash: B256,
    /// The id transactions for this contract are signed over (its `deploymentId()`).
    pub deployment_id: DeploymentId,
}

impl Deployment {
    /// The deployment as transactions and chunk proofs are bound to it.
    pub fn for_signing(&self) -> pulse_circuits::deployment::Deployment {
        pulse_circuits::deployment::Deployment::new(
            self.deployment_id,
            self.chain_id,
            self.address.into_array(),
        )
    }
}

/// Deploys the rollup contract from `deployer`.
///
/// # Errors
/// [`L1Error::Encoding`] when the key is not a chunk key; [`L1Error::Rpc`] /
/// [`L1Error::Reverted`] when the deployment fails; [`L1Error::DeploymentMismatch`] when the
/// new contract's `deploymentId()` is not the one Pulse computes.
pub async fn deploy(
    rpc_url: &str,
    deployer: PrivateKeySigner,
    params: &DeployParams,
) -> Result<Deployment, L1Error> {
    let url = parse_url(rpc_url)?;
    let vk_words = contract::vk_words(&params.vk).map_err(L1Error::Encoding)?;
    let vk_hash = B256::from(pulse_circuits::artifacts::vk_hash(&params.vk));
    let provider = ProviderBuilder::new()
        .wallet(EthereumWallet::from(deployer))
        .connect_http(url);
    let chain_id = provider
        .get_chain_id()
        .await
        .map_err(|e| L1Error::rpc(rpc_url, e))?;
    let pending = PulseRollup::deploy_builder(
        &provider,
        contract::word(params.genesis_root),
        vk_words,
        vk_hash,
        params.owner,
        params.operators.clone(),
        params.committee.clone(),
        U256::from(params.threshold),
    )
    .send()
    .await
    .map_err(|e| L1Error::contract(rpc_url, e))?;
    let receipt = pending.get_receipt().await.map_err(|e| L1Error::Rpc {
        url: rpc_url.to_owned(),
        message: e.to_string(),
    })?;
    let address = receipt.contract_address.ok_or_else(|| {
        L1Error::BadAnswer("deployment receipt has no contract address".to_owned())
    })?;
    if !receipt.status() {
        return Err(L1Error::BadAnswer(format!(
            "deployment transaction {} reverted",
            receipt.transaction_hash
        )));
    }
    let deployment = read_deployment(rpc_url, address).await?;
    Ok(Deployment {
        address,
        tx_hash: receipt.transaction_hash,
        block_number: receipt.block_number.unwrap_or_default(),
        chain_id,
        vk_hash,
        deployment_id: deployment.id,
    })
}

/// What the rollup contract holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RollupStatus {
    /// The contract.
    pub address: Address,
    /// The chain.
    pub chain_id: u64,
    /// Batches committed.
    pub batch_number: u64,
    /// The current state root.
    pub state_root: U256,
    /// The verifying key's hash.
    pub vk_hash: B256,
    /// The contract's `deploymentId()`.
    pub deployment_id: U256,
    /// The owner.
    pub owner: Address,
    /// The last batches, oldest first.
    pub last_batches: Vec<BatchEvent>,
}

/// Checks one chunk proof with the rollup contract's own `verifyProof` (the deployment's
/// specialised key, the plain Groth16 equation on the chain's precompiles): what L1 would
/// accept. A proof made for another deployment is refused before the call, with both ids.
///
/// # Errors
/// [`L1Error::NoContract`], [`L1Error::Rpc`], [`L1Error::Contract`] as [`status`];
/// [`L1Error::BadAnswer`] for a proof of another deployment.
pub async fn verify_chunk_proof(
    rpc_url: &str,
    address: Address,
    proof: &ChunkProof,
) -> Result<bool, L1Error> {
    let (provider, _) = connect_to_contract(rpc_url, address).await?;
    let rollup = PulseRollup::new(address, &provider);
    let c = |e| L1Error::contract(rpc_url, e);
    let deployment_id = rollup.deploymentId().call().await.map_err(c)?;
    if deployment_id != contract::word(proof.deployment) {
        return Err(L1Error::BadAnswer(format!(
            "the proof is for deployment {}, but the contract at {address} is deployment {deployment_id}: make the proof for this contract",
            proof.deployment
        )));
    }
    let inputs = proof.calldata_inputs().map(contract::word);
    rollup
        .verifyProof(contract::proof_words(&proof.proof), inputs)
        .call()
        .await
        .map_err(c)
}

/// Reads the contract's state and its last `last` batch events.
///
/// # Errors
/// [`L1Error::NoContract`] when there is no contract at `address`; [`L1Error::Rpc`] when the
/// node does not answer.
pub async fn status(rpc_url: &str, address: Address, last: usize) -> Result<RollupStatus, L1Error> {
    let (provider, chain_id) = connect_to_contract(rpc_url, address).await?;
    let rollup = PulseRollup::new(address, &provider);
    let c = |e| L1Error::contract(rpc_url, e);
    let head = head(&provider, rpc_url, address).await?;
    let vk_hash = rollup.vkHash().call().await.map_err(c)?;
    let deployment_id = rollup.deploymentId().call().await.map_err(c)?;
    let owner = rollup.owner().call().await.map_err(c)?;
    // The event scan reads every log of the contract: only when events are asked for.
    let last_batches = if last == 0 {
        Vec::new()
    } else {
        let mut events = events_through(&provider, rpc_url, address, &head).await?;
        let skip = events.len().saturating_sub(last);
        events.split_off(skip)
    };
    Ok(RollupStatus {
        address,
        chain_id,
        batch_number: head.batch_number,
        state_root: head.state_root,
        vk_hash,
        deployment_id,
        owner,
        last_batches,
    })
}
