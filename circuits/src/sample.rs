//! Sample batches for tests and benchmarks: a fresh state and a chain of chunk witnesses made
//! of real, signed self-registrations, so that the proofs made from them are real chunk
//! proofs of the deployed circuit (used by the L1 tests and `pulse bench l1-gas`); and one
//! chunk of every kind of transaction over a populated state ([`mixed_chunk`]), the witness
//! the prover benchmarks measure because it is what workers prove.

use std::path::Path;

use ark_bn254::Fr;
use ark_std::UniformRand;
use cid::Cid;
use cid::multihash::Multihash;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

use crate::artifacts::CircuitParams;
use crate::circuit::ChunkWitness;
use crate::deployment::{Deployment, DeploymentId};
use crate::eddsa::PrivateKey;
use crate::leaf::Roots;
use crate::state::{ApplyError, State, StateError};
use crate::tx::{Permissions, Role, Scope, Transaction, TxBody};

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

/// One full chunk of real transactions, as a worker receives it: the state holds a
/// registrar, a doctor and `slots + 1` patients, each with a record and an all-records
/// read-write grant to the doctor (committed in a first batch), and the chunk's slots then
/// cycle through every kind of transaction: a patient registers, a patient adds a record, a
/// patient grants the doctor one record, the doctor logs an access, a patient revokes a
/// grant, the doctor adds a record under a write grant. Keys, CIDs, metadata and purposes
/// are drawn from `seed`; every slot is a distinct account's transaction, so none depends
/// on another's outcome. The state lives in `dir` (which must not hold one).
///
/// # Errors
/// [`SampleError`] when the store fails or the tree is too small for
/// `2 · slots + 3` accounts.
pub fn mixed_chunk(
    dir: &Path,
    params: CircuitParams,
    seed: u64,
    deployment: &Deployment,
) -> Result<ChunkWitness, SampleError> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let state = State::open(&dir.join("sample-state.redb"), params.depth)?;
    let registrar = PrivateKey::random(&mut rng);
    state.init_genesis(&[registrar.public_key()])?;
    const REGISTRAR: u64 = 1;
    let doctor = PrivateKey::random(&mut rng);
    let sign = |key: &PrivateKey, signer: u64, nonce: u64, body: TxBody| {
        Transaction {
            signer,
            nonce,
            body,
        }
        .sign(key, deployment.id)
        .map_err(ApplyError::Rejected)
    };
    let random_cid = |rng: &mut ChaCha20Rng| {
        let digest: [u8; 32] = rng.r#gen();
        let hash = Multihash::<64>::wrap(0x12, &digest)
            .unwrap_or_else(|_| unreachable!("32 bytes fit a 64-byte multihash"));
        Cid::new_v1(0x55, hash)
    };
    let read_write = Permissions {
        read: true,
        write: true,
    };
    let far = u64::MAX / 2;

    struct Patient {
        key: PrivateKey,
        id: u64,
        nonce: u64,
        record: u64,
        grant: u64,
    }
    let mut batch = state.begin(1_000, deployment)?;
    let doctor_id = batch
        .apply(&sign(
            &registrar,
            REGISTRAR,
            0,
            TxBody::Register {
                public_key: doctor.public_key(),
                role: Role::Doctor,
            },
        )?)?
        .new_account
        .unwrap_or_default();
    let mut doctor_nonce = 0;
    let mut patients = Vec::new();
    for _ in 0..=params.slots {
        let key = PrivateKey::random(&mut rng);
        let register = TxBody::Register {
            public_key: key.public_key(),
            role: Role::Patient,
        };
        let id = batch
            .apply(&sign(&key, 0, 0, register)?)?
            .new_account
            .unwrap_or_default();
        let add = TxBody::AddRecord {
            patient: id,
            cid: random_cid(&mut rng),
            metadata_hash: Fr::rand(&mut rng),
            grant: None,
        };
        let record = batch
            .apply(&sign(&key, id, 1, add)?)?
            .new_record
            .unwrap_or_default();
        let grant = TxBody::Grant {
            grantee: doctor_id,
            scope: Scope::All,
            permissions: read_write,
            expires_at: far,
        };
        let grant = batch
            .apply(&sign(&key, id, 2, grant)?)?
            .new_grant
            .unwrap_or_default();
        patients.push(Patient {
            key,
            id,
            nonce: 3,
            record,
            grant,
        });
    }
    let roots_before = batch.commit()?;

    let mut batch = state.begin(2_000, deployment)?;
    for (slot, p) in (0..params.slots).zip(patients.iter_mut()) {
        let stx = match slot % 6 {
            0 => {
                let key = PrivateKey::random(&mut rng);
                let body = TxBody::Register {
                    public_key: key.public_key(),
                    role: Role::Patient,
                };
                sign(&key, 0, 0, body)?
            }
            1 => {
                let body = TxBody::AddRecord {
                    patient: p.id,
                    cid: random_cid(&mut rng),
                    metadata_hash: Fr::rand(&mut rng),
                    grant: None,
                };
                p.nonce += 1;
                sign(&p.key, p.id, p.nonce - 1, body)?
            }
            2 => {
                let body = TxBody::Grant {
                    grantee: doctor_id,
                    scope: Scope::Record(p.record),
                    permissions: Permissions {
                        read: true,
                        write: false,
                    },
                    expires_at: rng.gen_range(3_000..far),
                };
                p.nonce += 1;
                sign(&p.key, p.id, p.nonce - 1, body)?
            }
            3 => {
                let body = TxBody::AccessLog {
                    record: p.record,
                    grant: p.grant,
                    purpose: Fr::rand(&mut rng),
                };
                doctor_nonce += 1;
                sign(&doctor, doctor_id, doctor_nonce - 1, body)?
            }
            4 => {
                let body = TxBody::Revoke { grant: p.grant };
                p.nonce += 1;
                sign(&p.key, p.id, p.nonce - 1, body)?
            }
            _ => {
                let body = TxBody::AddRecord {
                    patient: p.id,
                    cid: random_cid(&mut rng),
                    metadata_hash: Fr::rand(&mut rng),
                    grant: Some(p.grant),
                };
                doctor_nonce += 1;
                sign(&doctor, doctor_id, doctor_nonce - 1, body)?
            }
        };
        batch.apply(&stx)?;
    }
    let chunk = batch
        .chunks(roots_before, params.slots)
        .into_iter()
        .next()
        .unwrap_or_else(|| unreachable!("a batch of {} transactions has a chunk", params.slots));
    batch.rollback()?;
    Ok(chunk)
}
