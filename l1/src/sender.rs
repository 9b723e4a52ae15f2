//! The L1 sender: gets batch commits onto L1 in order and exactly once.
//!
//! One commit at a time, in batch order (the contract refuses anything but the next batch).
//! For each batch the sender:
//!
//! 1. reads the contract's batch number. A batch the contract already holds is not sent again:
//!    the sender finds its `BatchCommitted` event, checks that its root is ours, waits for the
//!    confirmation depth and reports it (`already = true`). This is what makes a restart
//!    idempotent: a sender killed between submission and confirmation, restarted, either finds
//!    the batch on chain or submits it again;
//! 2. simulates the call (`eth_estimateGas`): a revert is reported with the contract's custom
//!    error, nothing is sent;
//! 3. signs an EIP-1559 transaction with the operator's **confirmed** nonce (not the pending
//!    one): a restarted sender's submission therefore replaces its predecessor's pending one
//!    instead of queueing behind it, and at most one of them can be included;
//! 4. waits for the receipt. A transaction not included after `resubmit_after` is sent again:
//!    with fees bumped by `fee_bump_percent` (at least the node's current estimate), capped at
//!    `max_fee_per_gas`; a transaction the node dropped is resubmitted the same way;
//! 5. waits for `confirmations` blocks and checks that the receipt is still there (a reorg
//!    sends it back to step 4).
//!
//! The operator key must be used by one sender only: a foreign transaction taking the nonce
//! sends the sender back to step 1, which is safe but wastes a submission.

use std::time::{Duration, Instant};

use alloy::consensus::TxEnvelope;
use alloy::eips::BlockId;
use alloy::eips::eip2718::Encodable2718;
use alloy::network::{EthereumWallet, NetworkTransactionBuilder, TransactionBuilder};
use alloy::primitives::{Address, B256, Bytes, TxHash, U256};
use alloy::providers::{Provider, RootProvider};
use alloy::rpc::types::{Filter, TransactionReceipt, TransactionRequest};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{SolCall, SolEvent};
use alloy::transports::{RpcError, TransportErrorKind};
use ark_bn254::Fr;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::contract::{ChunkProof, PulseRollup, Revert, decode_revert, word};
use crate::error::L1Error;

/// How the sender waits, bumps and gives up.
#[derive(Clone, Debug)]
pub struct SenderConfig {
    /// Blocks on top of the inclusion block before a commit is final (1 = included).
    pub confirmations: u64,
    /// How often the node is polled for receipts and blocks.
    pub poll_interval: Duration,
    /// A submission not included after this long is sent again with bumped fees.
    pub resubmit_after: Duration,
    /// Fee increase per resubmission, in percent (nodes require at least 10).
    pub fee_bump_percent: u64,
    /// The most the sender ever offers per gas (wei); bumps stop here.
    pub max_fee_per_gas: u128,
    /// The most priority fee per gas (wei).
    pub max_priority_fee_per_gas: u128,
    /// Gas limit = estimate × (100 + this) / 100.
    pub gas_margin_percent: u64,
}

impl Default for SenderConfig {
    fn default() -> Self {
        Self {
            confirmations: 2,
            poll_interval: Duration::from_millis(500),
            resubmit_after: Duration::from_secs(30),
            fee_bump_percent: 20,
            max_fee_per_gas: 500_000_000_000,
            max_priority_fee_per_gas: 50_000_000_000,
            gas_margin_percent: 25,
        }
    }
}

/// A batch commit: what `commitBatch` takes.
#[derive(Clone, Debug)]
pub struct BatchCommit {
    /// The batch number (the contract's batch number + 1 when it is next).
    pub number: u64,
    /// The chunk proofs, in order.
    pub chunks: Vec<ChunkProof>,
    /// The CID of the batch's public data on IPFS.
    pub data_cid: String,
    /// Transactions in the batch.
    pub tx_count: u64,
    /// The committee's attestations, packed by [`crate::attest::pack`] (empty with no
    /// committee).
    pub attestations: Bytes,
}

impl BatchCommit {
    /// The state root after the batch.
    ///
    /// # Errors
    /// [`L1Error::EmptyBatch`] when there are no chunks.
    pub fn new_root(&self) -> Result<Fr, L1Error> {
        self.chunks
            .last()
            .map(|c| c.root_after)
            .ok_or(L1Error::EmptyBatch)
    }

    /// The calldata of `commitBatch`.
    pub fn calldata(&self) -> Bytes {
        PulseRollup::commitBatchCall {
            newBatchNumber: U256::from(self.number),
            chunks: self.chunks.iter().map(ChunkProof::to_abi).collect(),
            dataCid: self.data_cid.clone(),
            txCount: U256::from(self.tx_count),
            attestations: self.attestations.clone(),
        }
        .abi_encode()
        .into()
    }
}

/// A batch final on L1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Committed {
    /// The batch number.
    pub number: u64,
    /// The transaction that committed it.
    pub tx_hash: TxHash,
    /// Its block.
    pub block_number: u64,
    /// Gas it used (0 when the sender found the batch already committed and did not look).
    pub gas_used: u64,
    /// True when the batch was already on chain (committed by an earlier run).
    pub already: bool,
    /// Submissions this run made for it (0 when `already`).
    pub submissions: u32,
}

/// What the sender is doing, for status pages and metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SenderStatus {
    /// The phase.
    pub phase: Phase,
    /// The batch being committed.
    pub batch: Option<u64>,
    /// The last transaction sent.
    pub last_tx: Option<TxHash>,
    /// Submissions so far for this batch.
    pub submissions: u32,
    /// The nonce in use.
    pub nonce: Option<u64>,
    /// Max fee per gas of the last submission (wei).
    pub max_fee_per_gas: u128,
    /// Batches committed by this sender.
    pub committed: u64,
}

/// The sender's phase.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Phase {
    /// Nothing to send.
    #[default]
    Idle,
    /// Checking the contract and simulating.
    Preparing,
    /// Sent, waiting for inclusion.
    Submitted,
    /// Included, waiting for the confirmation depth.
    Confirming,
    /// At the fee cap and still not included.
    Stuck,
}

impl Phase {
    /// A short lowercase name, for metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Idle => "idle",
            Phase::Preparing => "preparing",
            Phase::Submitted => "submitted",
            Phase::Confirming => "confirming",
            Phase::Stuck => "stuck",
        }
    }
}

/// The sender for one rollup contract and one operator key.
pub struct L1Sender {
    provider: RootProvider,
    rpc_url: String,
    wallet: EthereumWallet,
    from: Address,
    contract: Address,
    chain_id: u64,
    config: SenderConfig,
    status: watch::Sender<SenderStatus>,
}

impl std::fmt::Debug for L1Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("L1Sender")
            .field("rpc_url", &self.rpc_url)
            .field("from", &self.from)
            .field("contract", &self.contract)
            .field("chain_id", &self.chain_id)
            .finish_non_exhaustive()
    }
}

enum Attempt {
    Final(Committed),
    /// The nonce was used by a transaction this sender does not know: start over.
    NonceTaken,
}

impl L1Sender {
    /// Connects to `rpc_url` and checks that `contract` holds code.
    ///
    /// # Errors
    /// [`L1Error::Rpc`] when the node does not answer, [`L1Error::NoContract`] when there is
    /// no contract at the address.
    pub async fn connect(
        rpc_url: &str,
        signer: PrivateKeySigner,
        contract: Address,
        config: SenderConfig,
    ) -> Result<Self, L1Error> {
        let (provider, chain_id) = crate::connect_to_contract(rpc_url, contract).await?;
        let from = signer.address();
        Ok(Self {
            provider,
            rpc_url: rpc_url.to_owned(),
            wallet: EthereumWallet::from(signer),
            from,
            contract,
            chain_id,
            config,
            status: watch::Sender::new(SenderStatus::default()),
        })
    }

    /// The operator address the sender sends from.
    pub fn from(&self) -> Address {
        self.from
    }

    /// The rollup contract.
    pub fn contract(&self) -> Address {
        self.contract
    }

    /// A receiver of the sender's status.
    pub fn subscribe(&self) -> watch::Receiver<SenderStatus> {
        self.status.subscribe()
    }

    fn rpc(&self, e: RpcError<TransportErrorKind>) -> L1Error {
        L1Error::rpc(&self.rpc_url, e)
    }

    /// The contract's batch number.
    ///
    /// # Errors
    /// [`L1Error::Rpc`] when the node does not answer.
    pub async fn batch_number(&self) -> Result<u64, L1Error> {
        let rollup = PulseRollup::new(self.contract, &self.provider);
        let n = rollup
            .batchNumber()
            .call()
            .block(BlockId::latest())
            .await
            .map_err(|e| L1Error::contract(&self.rpc_url, e))?;
        u64::try_from(n).map_err(|_| L1Error::BadAnswer("batch number above 2^64".to_owned()))
    }

    /// Commits `batch`, or finds it committed; returns once it is final.
    ///
    /// # Errors
    /// [`L1Error::Reverted`] with the contract's custom error when the commit would revert;
    /// [`L1Error::OutOfOrder`] when the batch is not the next one; [`L1Error::Conflict`] when
    /// the contract holds a different batch under this number; [`L1Error::Rpc`] on node
    /// failures (transient: call again).
    pub async fn commit(&self, batch: &BatchCommit) -> Result<Committed, L1Error> {
        let result = self.commit_inner(batch).await;
        self.status.send_modify(|s| {
            s.phase = Phase::Idle;
            if matches!(&result, Ok(c) if !c.already) {
                s.committed += 1;
            }
        });
        result
    }

    async fn commit_inner(&self, batch: &BatchCommit) -> Result<Committed, L1Error> {
        let new_root = batch.new_root()?;
        let calldata = batch.calldata();
        self.status.send_modify(|s| {
            *s = SenderStatus {
                phase: Phase::Preparing,
                batch: Some(batch.number),
                committed: s.committed,
                ..SenderStatus::default()
            };
        });
        loop {
            let onchain = self.batch_number().await?;
            if onchain >= batch.number {
                return self.already_committed(batch.number, new_root).await;
            }
            if onchain + 1 != batch.number {
                return Err(L1Error::OutOfOrder {
                    onchain,
                    given: batch.number,
                });
            }
            let gas = self.simulate(&calldata).await?;
            let nonce = self
                .provider
                .get_transaction_count(self.from)
                .latest()
                .await
                .map_err(|e| self.rpc(e))?;
            match self
                .submit_and_confirm(batch.number, &calldata, gas, nonce)
                .await?
            {
                Attempt::Final(c) => return Ok(c),
                Attempt::NonceTaken => {
                    warn!(
                        batch = batch.number,
                        nonce, "nonce used by another transaction; starting over"
                    );
                }
            }
        }
    }

    fn request(&self, calldata: &Bytes) -> TransactionRequest {
        TransactionRequest::default()
            .with_from(self.from)
            .with_to(self.contract)
            .with_input(calldata.clone())
    }

    /// Estimates the gas of the call; a revert comes back decoded.
    async fn simulate(&self, calldata: &Bytes) -> Result<u64, L1Error> {
        // Against the latest block: a pending predecessor of ours must not make the simulation
        // fail with `UnexpectedBatchNumber` (the new submission replaces it).
        match self
            .provider
            .estimate_gas(self.request(calldata))
            .latest()
            .await
        {
            Ok(gas) => Ok(gas.saturating_mul(100 + self.config.gas_margin_percent) / 100),
            Err(e) => Err(self.revert_or_rpc(e)),
        }
    }

    fn revert_or_rpc(&self, e: RpcError<TransportErrorKind>) -> L1Error {
        match e.as_error_resp().and_then(|p| p.as_revert_data()) {
            Some(data) => L1Error::Reverted(decode_revert(&data)),
            None => self.rpc(e),
        }
    }

    /// Fees for a submission: the node's estimate, at least `floor` (a bump of the last
    /// submission), capped by the config.
    async fn fees(&self, floor: Option<(u128, u128)>) -> Result<(u128, u128, bool), L1Error> {
        let est = self
            .provider
            .estimate_eip1559_fees()
            .await
            .map_err(|e| self.rpc(e))?;
        let (mut max_fee, mut tip) = (est.max_fee_per_gas, est.max_priority_fee_per_gas);
        if let Some((f, t)) = floor {
            let bump = |x: u128| {
                x.saturating_mul(100 + u128::from(self.config.fee_bump_percent)) / 100 + 1
            };
            max_fee = max_fee.max(bump(f));
            tip = tip.max(bump(t));
        }
        let capped =
            max_fee > self.config.max_fee_per_gas || tip > self.config.max_priority_fee_per_gas;
        let tip = tip.min(self.config.max_priority_fee_per_gas);
        let max_fee = max_fee.min(self.config.max_fee_per_gas).max(tip);
        Ok((max_fee, tip, capped))
    }

    async fn sign(
        &self,
        calldata: &Bytes,
        gas: u64,
        nonce: u64,
        fees: (u128, u128),
    ) -> Result<TxEnvelope, L1Error> {
        self.request(calldata)
            .with_nonce(nonce)
            .with_chain_id(self.chain_id)
            .with_gas_limit(gas)
            .with_max_fee_per_gas(fees.0)
            .with_max_priority_fee_per_gas(fees.1)
            .with_value(U256::ZERO)
            .build(&self.wallet)
            .await
            .map_err(|e| L1Error::Signing(e.to_string()))
    }

    /// Sends a signed transaction; `Ok(false)` when the node refuses a replacement as
    /// underpriced (bump again).
    async fn send(&self, tx: &TxEnvelope) -> Result<bool, L1Error> {
        let raw = tx.encoded_2718();
        match self.provider.send_raw_transaction(&raw).await {
            Ok(_) => Ok(true),
            Err(e) => {
                let msg = e.to_string().to_lowercase();
                if msg.contains("already known") || msg.contains("already imported") {
                    Ok(true)
                } else if msg.contains("underpriced") || msg.contains("replacement") {
                    Ok(false)
                } else if msg.contains("nonce too low") {
                    // Mined meanwhile (ours or not): the receipt check decides.
                    Ok(true)
                } else {
                    Err(self.revert_or_rpc(e))
                }
            }
        }
    }

    async fn submit_and_confirm(
        &self,
        batch: u64,
        calldata: &Bytes,
        gas: u64,
        nonce: u64,
    ) -> Result<Attempt, L1Error> {
        let mut sent: Vec<TxHash> = Vec::new();
        let mut fees = self.fees(None).await?;
        let mut last_sent = Instant::now();
        let mut submissions = 0u32;
        let mut needs_send = true;
        loop {
            if needs_send {
                let tx = self.sign(calldata, gas, nonce, (fees.0, fees.1)).await?;
                let hash = *tx.tx_hash();
                if self.send(&tx).await? {
                    submissions += 1;
                    if !sent.contains(&hash) {
                        sent.push(hash);
                    }
                    info!(batch, nonce, tx = %hash, max_fee_per_gas = fees.0, submissions, "commit submitted");
                    self.status.send_modify(|s| {
                        s.phase = if fees.2 {
                            Phase::Stuck
                        } else {
                            Phase::Submitted
                        };
                        s.last_tx = Some(hash);
                        s.submissions = submissions;
                        s.nonce = Some(nonce);
                        s.max_fee_per_gas = fees.0;
                    });
                    needs_send = false;
                    last_sent = Instant::now();
                } else {
                    // Underpriced replacement: bump from what we offered and try again.
                    fees = self.fees(Some((fees.0, fees.1))).await?;
                    if fees.2 {
                        warn!(batch, nonce, "replacement refused at the fee cap; waiting");
                        needs_send = false;
                        last_sent = Instant::now();
                    }
                    continue;
                }
            }
            tokio::time::sleep(self.config.poll_interval).await;

            if let Some(receipt) = self.find_receipt(&sent).await? {
                return self.confirm(batch, receipt, submissions, &sent).await;
            }
            let chain_nonce = self
                .provider
                .get_transaction_count(self.from)
                .latest()
                .await
                .map_err(|e| self.rpc(e))?;
            if chain_nonce > nonce {
                // Included between the two reads? Look once more before giving up the nonce.
                if let Some(receipt) = self.find_receipt(&sent).await? {
                    return self.confirm(batch, receipt, submissions, &sent).await;
                }
                return Ok(Attempt::NonceTaken);
            }
            if last_sent.elapsed() >= self.config.resubmit_after {
                let last = sent.last().copied();
                let known = match last {
                    Some(h) => self
                        .provider
                        .get_transaction_by_hash(h)
                        .await
                        .map_err(|e| self.rpc(e))?
                        .is_some(),
                    None => false,
                };
                if known {
                    let bumped = self.fees(Some((fees.0, fees.1))).await?;
                    if bumped.0 == fees.0 && bumped.1 == fees.1 {
                        warn!(
                            batch,
                            nonce,
                            max_fee_per_gas = fees.0,
                            "commit not included and the fee cap is reached"
                        );
                        self.status.send_modify(|s| s.phase = Phase::Stuck);
                        last_sent = Instant::now();
                        continue;
                    }
                    warn!(
                        batch,
                        nonce, "commit not included in time; replacing it with higher fees"
                    );
                    fees = bumped;
                } else {
                    warn!(batch, nonce, "the node dropped the commit; resubmitting");
                    fees = self.fees(Some((fees.0, fees.1))).await?;
                }
                needs_send = true;
            }
        }
    }

    async fn find_receipt(&self, sent: &[TxHash]) -> Result<Option<TransactionReceipt>, L1Error> {
        for h in sent.iter().rev() {
            if let Some(r) = self
                .provider
                .get_transaction_receipt(*h)
                .await
                .map_err(|e| self.rpc(e))?
            {
                return Ok(Some(r));
            }
        }
        Ok(None)
    }

    /// Waits for the confirmation depth; a receipt that disappears (reorg) sends the caller
    /// back to waiting for inclusion.
    async fn confirm(
        &self,
        batch: u64,
        receipt: TransactionReceipt,
        submissions: u32,
        sent: &[TxHash],
    ) -> Result<Attempt, L1Error> {
        let mut receipt = receipt;
        loop {
            if !receipt.status() {
                let reason = self.replay_revert(receipt.transaction_hash).await;
                return Err(L1Error::RevertedOnChain {
                    tx: receipt.transaction_hash,
                    reason,
                });
            }
            let block = receipt
                .block_number
                .ok_or_else(|| L1Error::BadAnswer("receipt without a block number".to_owned()))?;
            self.status.send_modify(|s| s.phase = Phase::Confirming);
            self.wait_for_depth(block).await?;
            match self.find_receipt(sent).await? {
                Some(r) if r.block_hash == receipt.block_hash => {
                    info!(batch, tx = %r.transaction_hash, block, "commit final");
                    return Ok(Attempt::Final(Committed {
                        number: batch,
                        tx_hash: r.transaction_hash,
                        block_number: block,
                        gas_used: r.gas_used,
                        already: false,
                        submissions,
                    }));
                }
                Some(r) => {
                    warn!(
                        batch,
                        "commit moved to another block (reorg); confirming again"
                    );
                    receipt = r;
                }
                None => {
                    warn!(
                        batch,
                        "commit left the chain (reorg); it will be resubmitted"
                    );
                    return Ok(Attempt::NonceTaken);
                }
            }
        }
    }

    async fn wait_for_depth(&self, block: u64) -> Result<(), L1Error> {
        let target = block + self.config.confirmations.saturating_sub(1);
        loop {
            let head = self
                .provider
                .get_block_number()
                .await
                .map_err(|e| self.rpc(e))?;
            if head >= target {
                return Ok(());
            }
            tokio::time::sleep(self.config.poll_interval).await;
        }
    }

    /// Replays a reverted transaction as a call to learn its custom error.
    async fn replay_revert(&self, tx: TxHash) -> Option<Revert> {
        let t = self.provider.get_transaction_by_hash(tx).await.ok()??;
        let receipt = self.provider.get_transaction_receipt(tx).await.ok()??;
        let block = receipt.block_number?;
        let req = TransactionRequest::default()
            .with_from(self.from)
            .with_to(self.contract)
            .with_input(alloy::consensus::Transaction::input(&t).clone());
        match self
            .provider
            .call(req)
            .block(block.saturating_sub(1).into())
            .await
        {
            Ok(_) => None,
            Err(e) => e
                .as_error_resp()
                .and_then(|p| p.as_revert_data())
                .map(|d| decode_revert(&d)),
        }
    }

    /// The batch is on chain: find its event, check its root, wait for the depth.
    async fn already_committed(&self, number: u64, new_root: Fr) -> Result<Committed, L1Error> {
        let event = find_batch_event(&self.provider, &self.rpc_url, self.contract, number)
            .await?
            .ok_or(L1Error::BadAnswer(format!(
                "the contract is past batch {number} but has no BatchCommitted event for it"
            )))?;
        if event.new_root != word(new_root) {
            return Err(L1Error::Conflict {
                batch: number,
                onchain_root: event.new_root,
                ours: word(new_root),
            });
        }
        self.status.send_modify(|s| s.phase = Phase::Confirming);
        self.wait_for_depth(event.block_number).await?;
        info!(batch = number, tx = %event.tx_hash, "batch was already committed");
        Ok(Committed {
            number,
            tx_hash: event.tx_hash,
            block_number: event.block_number,
            gas_used: 0,
            already: true,
            submissions: 0,
        })
    }
}

/// A `BatchCommitted` event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchEvent {
    /// Batch number.
    pub number: u64,
    /// The state root after the batch.
    pub new_root: U256,
    /// The CID of the batch's public data.
    pub data_cid: String,
    /// Transactions in the batch.
    pub tx_count: u64,
    /// Chunk proofs in the batch.
    pub chunks: u64,
    /// The committing transaction.
    pub tx_hash: TxHash,
    /// Its block.
    pub block_number: u64,
}

/// The `BatchCommitted` events of `contract` (of batch `number` only, when given), oldest
/// first, up to block `to_block` (the latest when `None`). Readers that compare the events
/// with the contract's storage pin both to one block: a node can show a new batch number a
/// moment before it serves the new block's logs.
///
/// # Errors
/// [`L1Error::Rpc`] when the node does not answer; [`L1Error::BadAnswer`] for logs that do
/// not decode.
pub async fn batch_events(
    provider: &RootProvider,
    rpc_url: &str,
    contract: Address,
    number: Option<u64>,
    to_block: Option<u64>,
) -> Result<Vec<BatchEvent>, L1Error> {
    let mut filter = Filter::new()
        .address(contract)
        .event_signature(PulseRollup::BatchCommitted::SIGNATURE_HASH)
        .from_block(0);
    if let Some(b) = to_block {
        filter = filter.to_block(b);
    }
    if let Some(n) = number {
        filter = filter.topic1(B256::from(U256::from(n)));
    }
    let logs = provider
        .get_logs(&filter)
        .await
        .map_err(|e| L1Error::rpc(rpc_url, e))?;
    logs.into_iter()
        .map(|log| {
            let tx_hash = log
                .transaction_hash
                .ok_or_else(|| L1Error::BadAnswer("log without a transaction".to_owned()))?;
            let block_number = log
                .block_number
                .ok_or_else(|| L1Error::BadAnswer("log without a block".to_owned()))?;
            let ev = PulseRollup::BatchCommitted::decode_log_data(log.data()).map_err(|e| {
                L1Error::BadAnswer(format!("BatchCommitted log does not decode: {e}"))
            })?;
            let small = |x: U256, what: &str| {
                u64::try_from(x).map_err(|_| L1Error::BadAnswer(format!("{what} above 2^64")))
            };
            Ok(BatchEvent {
                number: small(ev.batchNumber, "batch number")?,
                new_root: ev.newRoot,
                data_cid: ev.dataCid,
                tx_count: small(ev.txCount, "transaction count")?,
                chunks: small(ev.chunks, "chunk count")?,
                tx_hash,
                block_number,
            })
        })
        .collect()
}

async fn find_batch_event(
    provider: &RootProvider,
    rpc_url: &str,
    contract: Address,
    number: u64,
) -> Result<Option<BatchEvent>, L1Error> {
    Ok(
        batch_events(provider, rpc_url, contract, Some(number), None)
            .await?
            .into_iter()
            .last(),
    )
}
