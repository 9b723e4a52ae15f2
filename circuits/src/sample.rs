//! Sample batches for tests and benchmarks: a fresh state and a chain of chunk witnesses made
//! of real, signed self-registrations, so that the proofs made from them are real chunk
//! proofs of the deployed circuit (used by the L1 tests and `pulse bench l1-gas`).

use std::path::Path;

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

use crate::artifacts::CircuitParams;
use crate::circuit::ChunkWitness;
use crate::deployment::{Deployment, DeploymentId};
use crate::eddsa::PrivateKey;
use crate::leaf::Roots;
use crate::state::{ApplyError, State, StateError};
use crate::tx::{Role, Transaction, TxBody};

/// A chain of chunks over a fresh state, as a sequencer would have sealed it.
#[derive(Clone, Debug)]
pub struct SampleChain {
    /// The roots of the fresh state (the genesis of a rollup deployed for this chain).
    pub genesis: Roots,
    /// The chunks, in order; chunk `i + 1` starts where chunk `i` ends.
    pub chunks: Vec<ChunkWitness>,
}

/// Why a sample chain could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    /// The state store failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// A transaction was refused (the tree is too small for this many accounts).
    #[error("sample transaction refused: {0}; use a deeper tree for this many chunks")]
    Apply(#[from] ApplyError),
}

/// A stand-in deployment for samples that never reach L1: chain 31337, contract
/// `0x00…01`, id 1. Its id is not the keccak of its chain and contract (only `pulse_l1`
/// computes those): a proof made for it verifies with the keys, not on any contract.
pub fn offline_deployment() -> Deployment {
    let mut contract = [0u8; 20];
    contract[19] = 1;
    Deployment::new(DeploymentId(ark_bn254::Fr::from(1u64)), 31337, contract)
}

/// Opens a fresh state in `dir` (which must not hold one) and seals `chunks` full chunks of
/// patient self-registrations for `params`, with keys drawn from `seed`, signed for
/// `deployment` (so their proofs verify on that deployment's contract only).
///
/// # Errors
/// [`SampleError`] when the store fails or the accounts tree is too small
/// (`chunks · slots` accounts need depth ≥ log2 of that plus one).
pub fn registration_chain(
    dir: &Path,
    params: CircuitParams,
    chunks: usize,
    seed: u64,
    timestamp: u64,
    deployment: &Deployment,
) -> Result<SampleChain, SampleError> {
    let state = State::open(&dir.join("sample-state.redb"), params.depth)?;
    let genesis = state.init_genesis(&[])?;
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut batch = state.begin(timestamp, deployment)?;
    for _ in 0..chunks * params.slots {
        let key = PrivateKey::random(&mut rng);
        let tx = Transaction {
            signer: 0,
            nonce: 0,
            body: TxBody::Register {
                public_key: key.public_key(),
                role: Role::Patient,
            },
        };
        let stx = tx.sign(&key, deployment.id).map_err(ApplyError::Rejected)?;
        batch.apply(&stx)?;
    }
    let witnesses = batch.chunks(genesis, params.slots);
    batch.commit()?;
    Ok(SampleChain {
        genesis,
        chunks: witnesses,
    })
}
