//! Shared fixture for the L1 tests: a chunk circuit key and a chain of real chunk proofs made
//! by Pulse's prover, made once per test binary, for the deployment that the first contract
//! deployed on a fresh anvil is ([`deployment_a`]).
#![allow(dead_code)]

use std::sync::OnceLock;
use std::time::Duration;

use alloy::network::EthereumWallet;
use alloy::primitives::Address;
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use ark_bn254::{Bn254, Fr};
use ark_groth16::VerifyingKey;
use pulse_circuits::artifacts::{self, CircuitParams};
use pulse_circuits::circuit::ChunkCircuit;
use pulse_circuits::deployment::Deployment as SigningDeployment;
use pulse_circuits::sample;
use pulse_l1::{ChunkProof, DeployParams, Deployment, SenderConfig};
use pulse_prover::{CpuBackend, Prover};
use pulse_testkit::{ANVIL_CHAIN_ID, Anvil, DEV_ACCOUNTS};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

/// Chunks in the fixture chain: enough for batches of 1, 2 and 8 in a row.
pub const CHAIN: usize = 11;

pub struct Fixture {
    pub genesis: Fr,
    pub vk: VerifyingKey<Bn254>,
    pub chunks: Vec<ChunkProof>,
}

pub fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let params = CircuitParams::new(1, 4);
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        let keys = artifacts::setup(ChunkCircuit::blank(params), params, &mut rng).expect("setup");
        let dir = tempfile::tempdir().expect("tempdir");
        let chain = sample::registration_chain(
            dir.path(),
            params,
            CHAIN,
            9,
            1_800_000_000,
            &deployment_a(),
        )
        .expect("sample chain");
        let prover = Prover::new(CpuBackend::new(), keys.pk.clone()).expect("prover");
        let chunks = chain
            .chunks
            .into_iter()
            .map(|w| {
                let inputs = w.public_inputs();
                let proof = prover
                    .prove(ChunkCircuit { params, witness: w }, &mut rng)
                    .expect("prove");
                ChunkProof::new(&inputs, proof).expect("chunk proof")
            })
            .collect();
        Fixture {
            genesis: chain.genesis.state_root(),
            vk: keys.pk.vk.clone(),
            chunks,
        }
    })
}

/// Deployment A: the first contract the owner deploys on a fresh anvil (its address is the
/// owner's CREATE address at nonce 0), for which the fixture's proofs are made.
pub fn deployment_a() -> SigningDeployment {
    pulse_l1::deployment(ANVIL_CHAIN_ID, address(OWNER).create(0))
}

pub fn signer(i: usize) -> PrivateKeySigner {
    DEV_ACCOUNTS[i].private_key.parse().expect("dev key")
}

pub fn address(i: usize) -> Address {
    signer(i).address()
}

/// Account 0 deploys and owns; account 1 is the operator.
pub const OWNER: usize = 0;
pub const OPERATOR: usize = 1;
pub const STRANGER: usize = 2;

pub async fn deploy(anvil: &Anvil) -> Deployment {
    deploy_with_committee(anvil, Vec::new(), 0)
        .await
        .expect("deploy")
}

/// Deploys the fixture's contract (owner, operator) with an availability committee.
pub async fn deploy_with_committee(
    anvil: &Anvil,
    committee: Vec<Address>,
    threshold: u64,
) -> Result<Deployment, pulse_l1::L1Error> {
    let f = fixture();
    pulse_l1::deploy(
        &anvil.url(),
        signer(OWNER),
        &DeployParams {
            genesis_root: f.genesis,
            vk: f.vk.clone(),
            owner: address(OWNER),
            operators: vec![address(OPERATOR)],
            committee,
            threshold,
        },
    )
    .await
}

/// A provider that signs as dev account `i` and fills nonce, gas and fees itself.
pub fn wallet_provider(anvil: &Anvil, i: usize) -> DynProvider {
    ProviderBuilder::new()
        .wallet(EthereumWallet::from(signer(i)))
        .connect_http(anvil.url().parse().expect("url"))
        .erased()
}

pub fn fast_config() -> SenderConfig {
    SenderConfig {
        confirmations: 1,
        poll_interval: Duration::from_millis(50),
        resubmit_after: Duration::from_secs(1),
        ..SenderConfig::default()
    }
}

pub fn batch(number: u64, chunks: &[ChunkProof]) -> pulse_l1::BatchCommit {
    pulse_l1::BatchCommit {
        number,
        chunks: chunks.to_vec(),
        data_cid: "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy".to_owned(),
        tx_count: chunks.len() as u64,
        attestations: Default::default(),
    }
}
