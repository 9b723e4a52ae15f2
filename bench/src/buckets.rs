//! How evenly the GPU MSM's bucket sums spread over threads on the scalars a worker really
//! proves: the A, B and C (`L`) assignments and the `H` coefficients of one full chunk of
//! real transactions ([`Witness::Real`]), next to uniform random
//! scalars of the same length.
//!
//! The figure is the worst thread's additions over the mean, for the one-thread-per-bucket
//! layout the GPU MSM had and for the balanced schedule it has now
//! ([`pulse_gpu::buckets`]). Both are measured against the same mean, the bucket additions
//! spread evenly over one thread per bucket; for the schedule, whose launches run one
//! after another, the worst thread is its critical path (the busiest thread of each launch,
//! summed). Per-launch figures are in `before` and `after`. It is computed by the host model of the schedule from the digits the
//! kernels compute, so it needs no GPU; the kernels run the same schedule (the self-test
//! checks their sums against arkworks on skewed scalars).

use ark_bn254::Fr;
use ark_ff::{BigInteger, One, PrimeField, UniformRand, Zero};
use pulse_circuits::artifacts::CircuitParams;
use pulse_gpu::buckets::{Balance, Schedule, bucket_counts};
use pulse_gpu::msm::{MAX_PASS, Plan};
use pulse_prover::{CpuBackend, QapWitness, Query};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde::Serialize;

use crate::prover::Witness;
use crate::statement::BenchError;

/// One MSM's scalars and their bucket balance.
#[derive(Debug, Clone, Serialize)]
pub struct MsmBuckets {
    /// Which scalars: `a/b` (the assignment, shared by A, B in G1 and G2), `c` (the
    /// witness part, the `L` query), `h`, `random`, or `a/b pad` and `h pad` for an
    /// all-padding chunk.
    pub scalars: String,
    /// How many.
    pub n: usize,
    /// Fraction that are zero.
    pub zero: f64,
    /// Fraction that are one.
    pub one: f64,
    /// Fraction that are below 2^c (one non-zero window), zero and one excluded.
    pub small: f64,
    /// Window width of the pass.
    pub c: u32,
    /// Windows.
    pub windows: u32,
    /// Buckets per window.
    pub buckets: u32,
    /// Fraction of the buckets that are empty.
    pub empty_buckets: f64,
    /// The largest bucket.
    pub largest_bucket: u32,
    /// Bucket additions per thread if they were spread evenly over one thread per bucket
    /// (non-zero digits over windows × buckets): the mean both layouts are measured by.
    pub mean: f64,
    /// The one-thread-per-bucket layout's busiest thread over `mean`.
    pub before_worst_over_mean: f64,
    /// The balanced schedule's critical path (its busiest thread per launch, summed over
    /// its launches) over `mean`.
    pub after_worst_over_mean: f64,
    /// One thread per bucket, per launch.
    pub before: Balance,
    /// The balanced schedule, per launch.
    pub after: Balance,
    /// Its cap on one thread's additions.
    pub cap: u32,
}

/// What [`run`] measured.
#[derive(Debug, Clone, Serialize)]
pub struct BucketsReport {
    /// Slots per chunk.
    pub slots: usize,
    /// Tree depth.
    pub depth: usize,
    /// `"real"`: a chunk whose every slot holds a valid transaction.
    pub witness: &'static str,
    /// Constraints of the chunk circuit.
    pub constraints: usize,
    /// Per MSM.
    pub msms: Vec<MsmBuckets>,
}

fn werr(e: impl std::fmt::Display) -> BenchError {
    BenchError::Workload(e.to_string())
}

/// The bucket balance of `scalars` in one pass (the longest pass the GPU runs).
pub fn measure(name: &str, scalars: &[Fr]) -> MsmBuckets {
    let scalars = &scalars[..scalars.len().min(MAX_PASS)];
    let plan = Plan::new(scalars.len());
    let counts = bucket_counts(scalars, &plan);
    let schedule = Schedule::new(&counts, &plan);
    let n = scalars.len().max(1) as f64;
    let count = |f: &dyn Fn(&Fr) -> bool| scalars.iter().filter(|s| f(s)).count() as f64 / n;
    let small_bits = plan.c as usize;
    let before = Balance::one_thread_per_bucket(&counts);
    let after = schedule.balance();
    let digits: u64 = counts.iter().map(|&c| u64::from(c)).sum();
    let mean = (digits as f64 / counts.len().max(1) as f64).max(f64::MIN_POSITIVE);
    MsmBuckets {
        scalars: name.into(),
        n: scalars.len(),
        zero: count(&|s| s.is_zero()),
        one: count(&|s| s.is_one()),
        small: count(&|s| {
            !s.is_zero() && !s.is_one() && s.into_bigint().num_bits() as usize <= small_bits
        }),
        c: plan.c,
        windows: plan.windows,
        buckets: plan.buckets,
        empty_buckets: counts.iter().filter(|&&c| c == 0).count() as f64
            / counts.len().max(1) as f64,
        largest_bucket: counts.iter().copied().max().unwrap_or(0),
        mean,
        before_worst_over_mean: before.critical_path as f64 / mean,
        after_worst_over_mean: after.critical_path as f64 / mean,
        before,
        after,
        cap: schedule.cap,
    }
}

/// The bucket balance of one real chunk's MSMs at `slots` and `depth`, of random scalars
/// as long as the assignment, and of an all-padding chunk's A/B and H (`… pad`).
///
/// # Errors
/// [`BenchError`] when the chunk cannot be built or its witness computed.
pub fn run(slots: usize, depth: usize) -> Result<BucketsReport, BenchError> {
    let params = CircuitParams::new(slots, depth);
    let qap =
        QapWitness::compute(&CpuBackend::new(), Witness::Real.circuit(params)?).map_err(werr)?;
    let constraints = pulse_circuits::circuit::info(params)
        .map_err(werr)?
        .constraints_total;
    let assignment = qap.scalars(Query::A);
    let padding =
        QapWitness::compute(&CpuBackend::new(), Witness::Padding.circuit(params)?).map_err(werr)?;
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let random: Vec<Fr> = (0..assignment.len()).map(|_| Fr::rand(&mut rng)).collect();
    Ok(BucketsReport {
        slots,
        depth,
        witness: "real",
        constraints,
        msms: vec![
            measure("a/b", assignment),
            measure("c", qap.scalars(Query::L)),
            measure("h", qap.scalars(Query::H)),
            measure("random", &random),
            measure("a/b pad", padding.scalars(Query::A)),
            measure("h pad", padding.scalars(Query::H)),
        ],
    })
}
