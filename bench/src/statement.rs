//! The sequencer's speed against the bound set by Poseidon.
//!
//! Applying a transaction natively is dominated by Poseidon: leaf hashes, `depth` node
//! hashes per tree update, the message hash. The bound is what a transaction would cost if
//! hashing were all it did: `sum over widths (hashes per transaction × time per hash)`, with
//! the hash counts taken from the run itself ([`pulse_circuits::poseidon::hash_counts`]) and
//! the time per hash measured in the same process. Signature checks run on many cores before
//! sequencing ([`pulse_circuits::state::State::verify_signature`]), so the sequencer's rate is
//! measured with `apply_preverified`; the rate with signatures checked inline is reported too.

use std::str::FromStr;
use std::time::Instant;

use ark_bn254::Fr;
use ark_std::UniformRand;
use cid::Cid;
use pulse_circuits::eddsa::PrivateKey;
use pulse_circuits::poseidon::{self, MAX_INPUTS};
use pulse_circuits::sample;
use pulse_circuits::state::State;
use pulse_circuits::tx::{Permissions, Role, Scope, SignedTransaction, Transaction, TxBody};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde::Serialize;

/// Errors of the benchmark itself.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The workload could not be built or applied.
    #[error("benchmark workload: {0}")]
    Workload(String),
}

fn werr(e: impl std::fmt::Display) -> BenchError {
    BenchError::Workload(e.to_string())
}

/// What [`run`] measured.
#[derive(Debug, Clone, Serialize)]
pub struct StatementReport {
    /// Tree depth.
    pub depth: usize,
    /// Transactions applied per run.
    pub txs: usize,
    /// Median nanoseconds per Poseidon hash, by input count (index 0: one input).
    pub poseidon_ns: [f64; MAX_INPUTS],
    /// Poseidon hashes per transaction, by input count.
    pub hashes_per_tx: [f64; MAX_INPUTS],
    /// The bound: transactions per second if Poseidon were the only cost.
    pub bound_tx_per_s: f64,
    /// Transactions per second applied by the sequencer (signatures verified beforehand).
    pub applied_tx_per_s: f64,
    /// `bound_tx_per_s / applied_tx_per_s`: how far the sequencer is from the bound.
    pub ratio_to_bound: f64,
    /// Transactions per second with each signature verified inline, on the same core.
    pub applied_with_signatures_tx_per_s: f64,
    /// Milliseconds to commit the batch to disk.
    pub commit_ms: f64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Median time of one Poseidon hash of each input count.
pub fn poseidon_ns(rounds: usize) -> [f64; MAX_INPUTS] {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    std::array::from_fn(|i| {
        let inputs: Vec<Fr> = (0..=i).map(|_| Fr::rand(&mut rng)).collect();
        let samples = (0..7)
            .map(|_| {
                let mut acc = inputs.clone();
                let t = Instant::now();
                for _ in 0..rounds {
                    acc[0] = poseidon::hash(&acc).unwrap_or(acc[0]);
                }
                std::hint::black_box(&acc);
                t.elapsed().as_nanos() as f64 / rounds as f64
            })
            .collect();
        median(samples)
    })
}

/// A realistic workload of `4 · patients + 1` transactions: a registrar registers a doctor;
/// each patient registers itself, adds a record and grants the doctor access; the doctor logs
/// an access to each record.
fn workload(patients: usize) -> Result<(PrivateKey, Vec<SignedTransaction>), BenchError> {
    let mut rng = ChaCha20Rng::seed_from_u64(42);
    let registrar = PrivateKey::random(&mut rng);
    let doctor = PrivateKey::random(&mut rng);
    let cid = Cid::from_str("bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy")
        .map_err(werr)?;
    let sign = |k: &PrivateKey, signer, nonce, body| {
        Transaction {
            signer,
            nonce,
            body,
        }
        .sign(k, sample::offline_deployment().id)
        .map_err(werr)
    };
    let mut txs = vec![sign(
        &registrar,
        1,
        0,
        TxBody::Register {
            public_key: doctor.public_key(),
            role: Role::Doctor,
        },
    )?];
    const DOCTOR: u64 = 2;
    for i in 0..patients as u64 {
        let k = PrivateKey::random(&mut rng);
        let id = 3 + i;
        let record = 1 + i;
        let grant = 1 + i;
        txs.push(sign(
            &k,
            0,
            0,
            TxBody::Register {
                public_key: k.public_key(),
                role: Role::Patient,
            },
        )?);
        txs.push(sign(
            &k,
            id,
            1,
            TxBody::AddRecord {
                patient: id,
                cid,
                metadata_hash: Fr::from(i),
                grant: None,
            },
        )?);
        txs.push(sign(
            &k,
            id,
            2,
            TxBody::Grant {
                grantee: DOCTOR,
                scope: Scope::All,
                permissions: Permissions {
                    read: true,
                    write: false,
                },
                expires_at: u64::MAX / 2,
            },
        )?);
        txs.push(sign(
            &doctor,
            DOCTOR,
            i,
            TxBody::AccessLog {
                record,
                grant,
                purpose: Fr::from(1u64),
            },
        )?);
    }
    Ok((registrar, txs))
}

fn apply_run(
    depth: usize,
    registrar: &PrivateKey,
    txs: &[SignedTransaction],
    preverified: bool,
) -> Result<(f64, [u64; MAX_INPUTS], f64), BenchError> {
    let dir = tempfile::tempdir().map_err(werr)?;
    let state = State::open(&dir.path().join("state.redb"), depth).map_err(werr)?;
    state
        .init_genesis(&[registrar.public_key()])
        .map_err(werr)?;
    let mut batch = state
        .begin(1_000, &sample::offline_deployment())
        .map_err(werr)?;
    let before = poseidon::hash_counts();
    let t = Instant::now();
    for tx in txs {
        let r = if preverified {
            batch.apply_preverified(tx)
        } else {
            batch.apply(tx)
        };
        r.map_err(werr)?;
    }
    let secs = t.elapsed().as_secs_f64();
    let after = poseidon::hash_counts();
    let t = Instant::now();
    batch.commit().map_err(werr)?;
    let commit = t.elapsed().as_secs_f64();
    Ok((secs, std::array::from_fn(|i| after[i] - before[i]), commit))
}

/// Run the benchmark at `depth` with about `txs` transactions, `repeats` times each way.
///
/// # Errors
/// [`BenchError`] if the workload cannot be applied.
pub fn run(depth: usize, txs: usize, repeats: usize) -> Result<StatementReport, BenchError> {
    let (registrar, work) = workload(txs.div_ceil(4).max(1))?;
    let n = work.len();
    let ns = poseidon_ns(20_000);
    let mut fast = Vec::new();
    let mut slow = Vec::new();
    let mut counts = [0u64; MAX_INPUTS];
    let mut commit = Vec::new();
    for _ in 0..repeats.max(1) {
        let (s, c, cm) = apply_run(depth, &registrar, &work, true)?;
        fast.push(s);
        counts = c;
        commit.push(cm * 1e3);
        let (s, _, _) = apply_run(depth, &registrar, &work, false)?;
        slow.push(s);
    }
    let hashes_per_tx: [f64; MAX_INPUTS] = std::array::from_fn(|i| counts[i] as f64 / n as f64);
    let bound_ns: f64 = (0..MAX_INPUTS).map(|i| hashes_per_tx[i] * ns[i]).sum();
    let bound = 1e9 / bound_ns;
    let applied = n as f64 / median(fast);
    Ok(StatementReport {
        depth,
        txs: n,
        poseidon_ns: ns,
        hashes_per_tx,
        bound_tx_per_s: bound,
        applied_tx_per_s: applied,
        ratio_to_bound: bound / applied,
        applied_with_signatures_tx_per_s: n as f64 / median(slow),
        commit_ms: median(commit),
    })
}
