//! `pulse bench l1-gas`: the gas of committing batches of K = 1, 2, 4, 8, 16 real chunk proofs
//! to the rollup contract on a local anvil, next to the gas of verifying one proof alone,
//! measured in the same run on the same chain.
//!
//! The chain is a fresh anvil on a free loopback port (started through `pulse-testkit`, which
//! finds the binary installed by `scripts/deps`); the proofs are made by Pulse's prover for a
//! chain of self-registrations, one batch after the other, so every batch is a real commit.

use std::time::Duration;

use alloy::network::{EthereumWallet, TransactionBuilder};
use alloy::providers::{Provider, ProviderBuilder};
use alloy::rpc::types::TransactionRequest;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolCall;
use pulse_circuits::artifacts::{self, CircuitParams};
use pulse_circuits::circuit::ChunkCircuit;
use pulse_circuits::sample;
use pulse_l1::contract::{PulseRollup, proof_words, word};
use pulse_l1::{BatchCommit, ChunkProof, DeployParams, L1Sender, SenderConfig};
use pulse_prover::{CpuBackend, Prover};
use pulse_testkit::{ANVIL_CHAIN_ID, Anvil, DEV_ACCOUNTS};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde::Serialize;

/// Batch sizes measured.
pub const BATCH_SIZES: [usize; 5] = [1, 2, 4, 8, 16];

/// Availability committees measured (threshold, members): each on its own contract, a
/// one-chunk batch with exactly `threshold` attestations.
pub const COMMITTEES: [(usize, usize); 2] = [(2, 3), (5, 7)];

/// One committee's batch, against the same batch without a committee.
#[derive(Clone, Debug, Serialize)]
pub struct CommitteeGas {
    /// Attestations required (k).
    pub threshold: usize,
    /// Members (n).
    pub members: usize,
    /// Gas of the one-chunk commit with k attestations.
    pub gas: u64,
    /// Gas of the one-chunk commit on the contract without a committee (the first batch of
    /// [`BATCH_SIZES`]).
    pub baseline_gas: u64,
    /// `gas - baseline_gas`: what the attestation check costs per batch, its calldata
    /// included.
    pub attestation_gas: u64,
    /// Bytes of the attestations in calldata.
    pub attestation_bytes: usize,
}

/// One measured batch.
#[derive(Clone, Debug, Serialize)]
pub struct BatchGas {
    /// Chunk proofs in the batch (K).
    pub chunks: usize,
    /// Gas used by the commit transaction.
    pub gas: u64,
    /// Transactions the batch carries (chunks × slots).
    pub txs: u64,
    /// Bytes of calldata.
    pub calldata_bytes: usize,
    /// Gas the calldata costs (EIP-2028: 16 per non-zero byte, 4 per zero byte).
    pub calldata_gas: u64,
    /// `gas / chunks`.
    pub gas_per_chunk: u64,
    /// `gas / txs`.
    pub gas_per_tx: u64,
    /// The target: 150,000 + 50,000·K plus calldata.
    pub target: u64,
}

/// The report.
#[derive(Clone, Debug, Serialize)]
pub struct L1GasReport {
    /// Slots per chunk of the circuit used.
    pub slots: usize,
    /// Tree depth of the circuit used.
    pub depth: usize,
    /// The batches, in commit order.
    pub batches: Vec<BatchGas>,
    /// Gas of one transaction that verifies one proof alone (`verifyProof`).
    pub single_proof_gas: u64,
    /// Least squares over the batches: fixed gas per batch.
    pub fit_fixed_gas: f64,
    /// Least squares over the batches: gas per extra chunk proof.
    pub fit_gas_per_chunk: f64,
    /// The availability committee's attestation check per batch.
    pub committees: Vec<CommitteeGas>,
}

/// Why the benchmark failed.
#[derive(Debug, thiserror::Error)]
pub enum L1GasError {
    /// Setup, proving or the sample chain failed.
    #[error("{0}")]
    Prove(String),
    /// The chain refused or failed.
    #[error(transparent)]
    L1(#[from] pulse_l1::L1Error),
}

fn calldata_gas(data: &[u8]) -> u64 {
    data.iter().map(|b| if *b == 0 { 4 } else { 16 }).sum()
}

/// Runs the benchmark with a chunk circuit of `slots` and `depth`, reporting progress lines
/// to `progress`.
///
/// # Errors
/// [`L1GasError`] when proving or the chain fails.
pub async fn run(
    slots: usize,
    depth: usize,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<L1GasReport, L1GasError> {
    let params = CircuitParams::new(slots, depth);
    let total: usize = BATCH_SIZES.iter().sum();
    let need = (total * slots + 1).next_power_of_two().trailing_zeros() as usize;
    if depth < need {
        return Err(L1GasError::Prove(format!(
            "{total} chunks of {slots} registrations need tree depth {need} or more, not {depth}"
        )));
    }
    progress(&format!("setup for {slots} slot(s), depth {depth}"));
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let keys = artifacts::setup(ChunkCircuit::blank(params), params, &mut rng)
        .map_err(|e| L1GasError::Prove(e.to_string()))?;
    let dir = tempfile::tempdir().map_err(|e| L1GasError::Prove(e.to_string()))?;
    // The contract is the owner's first on a fresh anvil: its deployment is known before it
    // exists, so the proofs can be made first.
    let owner: PrivateKeySigner = DEV_ACCOUNTS[0]
        .private_key
        .parse()
        .map_err(|e| L1GasError::Prove(format!("{e}")))?;
    let deployment = pulse_l1::deployment(ANVIL_CHAIN_ID, owner.address().create(0));
    let chain =
        sample::registration_chain(dir.path(), params, total, 11, 1_800_000_000, &deployment)
            .map_err(|e| L1GasError::Prove(e.to_string()))?;
    // The matrices the setup took, as a worker gets them with the key.
    let prover = match keys.constraints.clone() {
        Some(r1cs) => Prover::with_constraints(CpuBackend::new(), keys.pk.clone(), r1cs),
        None => Prover::new(CpuBackend::new(), keys.pk.clone()),
    }
    .map_err(|e| L1GasError::Prove(e.to_string()))?;
    let mut chunks = Vec::with_capacity(total);
    for (i, w) in chain.chunks.into_iter().enumerate() {
        progress(&format!("proving chunk {}/{total}", i + 1));
        let inputs = w.public_inputs();
        let proof = prover
            .prove(ChunkCircuit { params, witness: w }, &mut rng)
            .map_err(|e| L1GasError::Prove(e.to_string()))?;
        chunks.push(ChunkProof::new(&inputs, proof).map_err(L1GasError::Prove)?);
    }

    let anvil = Anvil::start();
    let d = pulse_l1::deploy(
        &anvil.url(),
        owner.clone(),
        &DeployParams {
            genesis_root: chain.genesis.state_root(),
            vk: keys.pk.vk.clone(),
            owner: owner.address(),
            operators: vec![owner.address()],
            committee: Vec::new(),
            threshold: 0,
        },
    )
    .await?;
    if d.for_signing() != deployment {
        return Err(L1GasError::Prove(format!(
            "the contract was deployed at {}, not at the owner's first address: the proofs \
             are for another deployment",
            d.address
        )));
    }
    let config = SenderConfig {
        confirmations: 1,
        poll_interval: Duration::from_millis(20),
        ..SenderConfig::default()
    };
    let sender = L1Sender::connect(&anvil.url(), owner.clone(), d.address, config.clone()).await?;

    let mut batches = Vec::new();
    let mut start = 0;
    for (i, k) in BATCH_SIZES.into_iter().enumerate() {
        let commit = BatchCommit {
            number: i as u64 + 1,
            chunks: chunks[start..start + k].to_vec(),
            data_cid: "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy".to_owned(),
            tx_count: (k * slots) as u64,
            attestations: Default::default(),
        };
        start += k;
        let data = commit.calldata();
        let c = sender.commit(&commit).await?;
        progress(&format!("batch of {k}: {} gas", c.gas_used));
        let txs = commit.tx_count;
        let data_gas = calldata_gas(&data);
        batches.push(BatchGas {
            chunks: k,
            gas: c.gas_used,
            txs,
            calldata_bytes: data.len(),
            calldata_gas: data_gas,
            gas_per_chunk: c.gas_used / k as u64,
            gas_per_tx: c.gas_used / txs.max(1),
            target: 150_000 + 50_000 * k as u64 + data_gas,
        });
    }

    // One proof verified alone, as a transaction (a view call's gas is not a transaction's).
    let p = ProviderBuilder::new()
        .wallet(EthereumWallet::from(owner.clone()))
        .connect_http(
            anvil
                .url()
                .parse()
                .map_err(|e| L1GasError::Prove(format!("{e}")))?,
        );
    let c = &chunks[0];
    let call = PulseRollup::verifyProofCall {
        proof: proof_words(&c.proof),
        inputs: c.calldata_inputs().map(word),
    };
    let receipt = p
        .send_transaction(
            TransactionRequest::default()
                .with_to(d.address)
                .with_input(call.abi_encode())
                .with_gas_limit(1_000_000),
        )
        .await
        .map_err(|e| L1GasError::Prove(format!("verifyProof transaction: {e}")))?
        .get_receipt()
        .await
        .map_err(|e| L1GasError::Prove(format!("verifyProof receipt: {e}")))?;

    let baseline_gas = batches.first().map_or(0, |b| b.gas);
    let mut committees = Vec::new();
    // Each committee on its own contract, deployed by another account whose nonces are
    // known (so its deployment, which the proof's transactions are signed for, is too).
    let deployer: PrivateKeySigner = DEV_ACCOUNTS[2]
        .private_key
        .parse()
        .map_err(|e| L1GasError::Prove(format!("{e}")))?;
    for (i, (k, n)) in COMMITTEES.into_iter().enumerate() {
        progress(&format!(
            "a one-chunk batch with {k} of {n} committee attestations"
        ));
        let at = deployer.address().create(i as u64);
        let here = pulse_l1::deployment(ANVIL_CHAIN_ID, at);
        let cdir = tempfile::tempdir().map_err(|e| L1GasError::Prove(e.to_string()))?;
        let chain = sample::registration_chain(cdir.path(), params, 1, 11, 1_800_000_000, &here)
            .map_err(|e| L1GasError::Prove(e.to_string()))?;
        let w = chain
            .chunks
            .into_iter()
            .next()
            .ok_or_else(|| L1GasError::Prove("the sample chain has no chunk".to_owned()))?;
        let inputs = w.public_inputs();
        let proof = prover
            .prove(ChunkCircuit { params, witness: w }, &mut rng)
            .map_err(|e| L1GasError::Prove(e.to_string()))?;
        let chunk = ChunkProof::new(&inputs, proof).map_err(L1GasError::Prove)?;
        let members: Vec<PrivateKeySigner> = (0..n).map(|_| PrivateKeySigner::random()).collect();
        let cd = pulse_l1::deploy(
            &anvil.url(),
            deployer.clone(),
            &DeployParams {
                genesis_root: chain.genesis.state_root(),
                vk: keys.pk.vk.clone(),
                owner: deployer.address(),
                operators: vec![owner.address()],
                committee: members.iter().map(PrivateKeySigner::address).collect(),
                threshold: k as u64,
            },
        )
        .await?;
        if cd.address != at {
            return Err(L1GasError::Prove(format!(
                "the committee contract was deployed at {}, not at {at}",
                cd.address
            )));
        }
        let cid = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy";
        let digest = pulse_l1::attest::attestation_digest(here.id, 1, cid, &[chunk.commitment]);
        let atts = members[..k]
            .iter()
            .map(|m| pulse_l1::attest::sign(m, digest))
            .collect::<Result<Vec<_>, _>>()
            .map_err(L1GasError::Prove)?;
        let attestations = pulse_l1::attest::pack(&atts);
        let attestation_bytes = attestations.len();
        let csender =
            L1Sender::connect(&anvil.url(), owner.clone(), cd.address, config.clone()).await?;
        let c = csender
            .commit(&BatchCommit {
                number: 1,
                chunks: vec![chunk],
                data_cid: cid.to_owned(),
                tx_count: slots as u64,
                attestations,
            })
            .await?;
        progress(&format!("{k} of {n}: {} gas", c.gas_used));
        committees.push(CommitteeGas {
            threshold: k,
            members: n,
            gas: c.gas_used,
            baseline_gas,
            attestation_gas: c.gas_used.saturating_sub(baseline_gas),
            attestation_bytes,
        });
    }

    let (fixed, per) = fit(&batches);
    Ok(L1GasReport {
        slots,
        depth,
        batches,
        single_proof_gas: receipt.gas_used,
        fit_fixed_gas: fixed,
        fit_gas_per_chunk: per,
        committees,
    })
}

/// Least-squares line gas = a + b·K over the batches.
fn fit(b: &[BatchGas]) -> (f64, f64) {
    let n = b.len() as f64;
    let sx: f64 = b.iter().map(|x| x.chunks as f64).sum();
    let sy: f64 = b.iter().map(|x| x.gas as f64).sum();
    let sxx: f64 = b.iter().map(|x| (x.chunks as f64).powi(2)).sum();
    let sxy: f64 = b.iter().map(|x| x.chunks as f64 * x.gas as f64).sum();
    let slope = (n * sxy - sx * sy) / (n * sxx - sx * sx);
    ((sy - slope * sx) / n, slope)
}
