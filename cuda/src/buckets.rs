//! Balanced bucket sums: how the points of one MSM pass's buckets are cut into threads.
//!
//! Pippenger's bucket sums are the parallel part of the MSM, and the one-thread-per-bucket
//! layout is balanced only for uniform scalars. A real Groth16 witness is not uniform: most
//! of its scalars are 0 or 1 (boolean decompositions, selectors) or small, so window 0's
//! bucket 1 can hold a third of all the points while the other windows are nearly empty,
//! and the launch waits on that one thread. Zero scalars never reach a bucket (their digits
//! are all 0); the rest is handled by splitting every bucket's run into pieces of at most
//! [`Schedule::cap`] points:
//!
//! - **Level 0** reads the sorted list: one thread per piece of a non-empty bucket's run
//!   (a bucket of `m` points gets `⌈m / cap⌉` pieces of near-equal length), each writing
//!   the Jacobian sum of its piece to a partials buffer.
//! - **Level ℓ > 0** does the same over the partials of the buckets that still have more
//!   than one, until each bucket has one partial (or none: empty).
//! - The reduction reads each bucket's sum through [`Schedule::refs`].
//!
//! So a bucket of scalar-1 points is summed by a tree of depth `log_cap m` instead of one
//! thread, and no thread adds more than `cap` points. The cap is twice the mean occupancy
//! of a window (`2n / buckets`, at least [`MIN_CAP`]): uniform scalars almost never split
//! (the schedule is then one thread per non-empty bucket, as before), and the partials
//! stay within three per bucket (see [`Schedule::max_partials`]).
//!
//! The schedule is made on the host from the bucket sizes the device counted (2 MB read
//! back at 2^20), which also makes it the host model of the balance: [`Balance`] reports
//! the worst thread's additions over the mean for this layout and for the one it replaces,
//! which `pulse bench buckets` measures on real chunk witnesses.

use ark_bn254::Fr;
use ark_ff::PrimeField;
use rayon::prelude::*;
use serde::Serialize;

use crate::msm::Plan;

/// The smallest cap on a thread's additions.
pub const MIN_CAP: u32 = 16;

/// A bucket with no points: no partial to read.
pub const NO_PARTIAL: u32 = u32::MAX;

/// The signed `c`-bit digits of `s` over `windows` windows, exactly as the `msm_digits`
/// kernel computes them: `d ∈ [-2^(c-1), 2^(c-1)]`, a digit above `2^(c-1)` taken as
/// `d - 2^c` with a carry into the next window.
pub fn signed_digits(s: &Fr, c: u32, windows: u32) -> Vec<i32> {
    digits_of(s.into_bigint().0, c, windows)
}

/// The digit rows one scalar puts in a pass planned by `plan`, as the device makes them:
/// its own digits, or with GLV those of its two halves ([`crate::glv::split`]; a negative
/// half's digits negated), the second standing for φ of the base.
pub fn plan_digits(s: &Fr, plan: &Plan) -> Vec<Vec<i32>> {
    if !plan.glv {
        return vec![signed_digits(s, plan.c, plan.windows)];
    }
    crate::glv::split(s)
        .iter()
        .map(|h| {
            let m = h.magnitude;
            let digits = digits_of([m as u64, (m >> 64) as u64, 0, 0], plan.c, plan.windows);
            if h.negative {
                digits.into_iter().map(|d| -d).collect()
            } else {
                digits
            }
        })
        .collect()
}

fn digits_of(limbs: [u64; 4], c: u32, windows: u32) -> Vec<i32> {
    let bit = |i: u32| -> u32 {
        let (l, b) = ((i / 64) as usize, i % 64);
        if l < 4 {
            ((limbs[l] >> b) & 1) as u32
        } else {
            0
        }
    };
    let top = 1u32 << (c - 1);
    let mut carry = 0;
    (0..windows)
        .map(|w| {
            let bits: u32 = (0..c).map(|k| bit(w * c + k) << k).sum();
            let d = bits + carry;
            if d > top {
                carry = 1;
                -(((1u32 << c) - d) as i32)
            } else {
                carry = 0;
                d as i32
            }
        })
        .collect()
}

/// The sizes of a pass's buckets, window-major (`w · buckets + |d| - 1`), as the
/// `msm_count` kernel counts them: the host model for measuring a scalar distribution.
pub fn bucket_counts(scalars: &[Fr], plan: &Plan) -> Vec<u32> {
    let size = (plan.windows * plan.buckets) as usize;
    scalars
        .par_chunks(4096)
        .fold(
            || vec![0u32; size],
            |mut counts, chunk| {
                for s in chunk {
                    for row in plan_digits(s, plan) {
                        for (w, d) in row.iter().enumerate() {
                            if *d != 0 {
                                counts
                                    [w * plan.buckets as usize + d.unsigned_abs() as usize - 1] +=
                                    1;
                            }
                        }
                    }
                }
                counts
            },
        )
        .reduce(
            || vec![0u32; size],
            |mut a, b| {
                a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
                a
            },
        )
}

/// One launch of the bucket sums: each item adds `len` consecutive entries from `start`
/// (in the sorted list at level 0, in the partials after) into partial `out + item`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Level {
    /// `(start, len)` per thread, flattened as the kernels read them.
    pub items: Vec<u32>,
    /// The first partial this level writes.
    pub out: u32,
}

impl Level {
    /// Threads in the launch.
    pub fn threads(&self) -> usize {
        self.items.len() / 2
    }

    fn lens(&self) -> impl Iterator<Item = u32> + '_ {
        self.items.chunks_exact(2).map(|p| p[1])
    }
}

/// The balanced bucket sums of one pass (module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// The most additions one thread does.
    pub cap: u32,
    /// The launches, in order.
    pub levels: Vec<Level>,
    /// Per bucket (window-major), the index of its sum among the partials, or
    /// [`NO_PARTIAL`] for an empty bucket.
    pub refs: Vec<u32>,
    /// Partials written in all.
    pub partials: u32,
}

impl Schedule {
    /// The cap for a plan: twice the mean bucket size of a window, at least [`MIN_CAP`].
    pub fn cap(plan: &Plan) -> u32 {
        (2 * plan.n.div_ceil(plan.buckets)).max(MIN_CAP)
    }

    /// An upper bound on [`Schedule::partials`] for any scalars, for memory planning.
    /// Level 0 has at most one piece per bucket plus one per `cap` entries
    /// (`windows · n / cap ≤ windows · buckets / 2`); each later level has at most one
    /// item per bucket still split (at most `windows · n / cap`) plus one per `cap`
    /// partials of the level before, so the sum stays below `3 · windows · buckets`.
    pub fn max_partials(plan: &Plan) -> u64 {
        3 * u64::from(plan.windows) * u64::from(plan.buckets) + 1
    }

    /// The schedule for bucket sizes `counts` (window-major) of a pass planned by `plan`.
    /// Bucket `k` of window `w` starts at `w · n` plus the sizes before it in its window,
    /// as the device's scan lays the list out.
    pub fn new(counts: &[u32], plan: &Plan) -> Self {
        let cap = Self::cap(plan);
        let buckets = plan.buckets as usize;
        let mut runs: Vec<(u32, u32)> = Vec::with_capacity(counts.len());
        for (w, window) in counts.chunks(buckets).enumerate() {
            let mut start = w as u32 * plan.n;
            for &m in window {
                runs.push((start, m));
                start += m;
            }
        }
        let mut refs = vec![NO_PARTIAL; counts.len()];
        let mut active: Vec<usize> = (0..counts.len()).filter(|&b| counts[b] > 0).collect();
        let mut levels = Vec::new();
        let mut next = 0u32;
        while !active.is_empty() {
            let mut items = Vec::new();
            let mut still = Vec::new();
            for &b in &active {
                let (start, len) = runs[b];
                let pieces = len.div_ceil(cap);
                let first = next + (items.len() / 2) as u32;
                let (base, extra) = (len / pieces, len % pieces);
                let mut at = start;
                for j in 0..pieces {
                    let l = base + u32::from(j < extra);
                    items.extend([at, l]);
                    at += l;
                }
                runs[b] = (first, pieces);
                if pieces == 1 {
                    refs[b] = first;
                } else {
                    still.push(b);
                }
            }
            let level = Level { items, out: next };
            next += level.threads() as u32;
            levels.push(level);
            active = still;
        }
        Self {
            cap,
            levels,
            refs,
            partials: next,
        }
    }

    /// The balance of this schedule: each launch's worst thread over its mean.
    pub fn balance(&self) -> Balance {
        let levels: Vec<LaunchBalance> = self
            .levels
            .iter()
            .map(|l| LaunchBalance::of(l.lens()))
            .collect();
        Balance::from_levels(levels)
    }
}

/// One launch's work: threads, additions, the worst thread.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LaunchBalance {
    /// Threads launched.
    pub threads: u64,
    /// Additions of all threads.
    pub additions: u64,
    /// Additions of the busiest thread.
    pub worst: u64,
    /// `worst / (additions / threads)`: 1 is perfect balance.
    pub worst_over_mean: f64,
}

impl LaunchBalance {
    fn of(lens: impl Iterator<Item = u32>) -> Self {
        let (mut threads, mut additions, mut worst) = (0u64, 0u64, 0u64);
        for l in lens {
            threads += 1;
            additions += u64::from(l);
            worst = worst.max(u64::from(l));
        }
        let mean = additions as f64 / threads.max(1) as f64;
        Self {
            threads,
            additions,
            worst,
            worst_over_mean: if additions == 0 {
                1.0
            } else {
                worst as f64 / mean
            },
        }
    }
}

/// How evenly a bucket-sum layout spreads its additions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Balance {
    /// Per launch.
    pub levels: Vec<LaunchBalance>,
    /// The largest `worst_over_mean` of any launch.
    pub worst_over_mean: f64,
    /// The critical path: the worst thread's additions summed over the launches (which
    /// run one after another).
    pub critical_path: u64,
}

impl Balance {
    fn from_levels(levels: Vec<LaunchBalance>) -> Self {
        Self {
            worst_over_mean: levels.iter().map(|l| l.worst_over_mean).fold(1.0, f64::max),
            critical_path: levels.iter().map(|l| l.worst).sum(),
            levels,
        }
    }

    /// The layout this module replaced: one thread per bucket (empty ones included), in
    /// one launch.
    pub fn one_thread_per_bucket(counts: &[u32]) -> Self {
        Self::from_levels(vec![LaunchBalance::of(counts.iter().copied())])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_ec::AdditiveGroup;
    use ark_ff::{BigInteger, Field, UniformRand};

    /// The digits recompose the scalar: Σ d_w · 2^(c·w) = s.
    #[test]
    fn signed_digits_recompose_the_scalar() {
        let mut rng = ark_std::test_rng();
        let mut values = vec![Fr::ZERO, Fr::ONE, -Fr::ONE, Fr::from(2u64).pow([253u64])];
        values.extend((0..50).map(|_| Fr::rand(&mut rng)));
        for c in [4, 7, 13, 16] {
            let plan_windows = 255u32.div_ceil(c);
            for s in &values {
                let digits = signed_digits(s, c, plan_windows);
                let mut acc = Fr::ZERO;
                for d in digits.iter().rev() {
                    acc *= Fr::from(2u64).pow([u64::from(c)]);
                    let m = Fr::from(u64::from(d.unsigned_abs()));
                    acc += if *d < 0 { -m } else { m };
                    assert!(d.unsigned_abs() <= 1 << (c - 1));
                }
                assert_eq!(
                    acc,
                    *s,
                    "c = {c}, s = {:?}",
                    s.into_bigint().to_bits_le().len()
                );
            }
        }
    }

    /// With GLV, the two rows recompose the scalar through λ, within the plan's windows:
    /// Σ d₁,w·2^(c·w) + λ·Σ d₂,w·2^(c·w) = s.
    #[test]
    fn glv_digit_rows_recompose_the_scalar() {
        let lambda = crate::glv::constants().lambda;
        let mut rng = ark_std::test_rng();
        let mut values = vec![Fr::ZERO, Fr::ONE, -Fr::ONE, lambda, -lambda];
        values.extend((0..50).map(|_| Fr::rand(&mut rng)));
        for n in [1, 100, 1 << 12, 1 << 20] {
            let plan = Plan::new(n);
            for s in &values {
                let rows = plan_digits(s, &plan);
                assert_eq!(rows.len(), 2);
                let value = |row: &[i32]| {
                    row.iter().rev().fold(Fr::ZERO, |acc, d| {
                        let m = Fr::from(u64::from(d.unsigned_abs()));
                        acc * Fr::from(2u64).pow([u64::from(plan.c)]) + if *d < 0 { -m } else { m }
                    })
                };
                assert_eq!(value(&rows[0]) + lambda * value(&rows[1]), *s, "{plan:?}");
                for row in &rows {
                    assert_eq!(row.len(), plan.windows as usize);
                    assert!(row.iter().all(|d| d.unsigned_abs() <= 1 << (plan.c - 1)));
                }
            }
        }
    }

    fn check(counts: &[u32], plan: &Plan) -> Schedule {
        let s = Schedule::new(counts, plan);
        assert!(u64::from(s.partials) <= Schedule::max_partials(plan));
        // Every thread within the cap; every level after the first merges ≥ 2 partials.
        for (i, l) in s.levels.iter().enumerate() {
            for len in l.lens() {
                assert!(len >= 1 && len <= s.cap, "level {i}: {len} > {}", s.cap);
                if i > 0 {
                    assert!(len >= 2, "level {i} copies a single partial");
                }
            }
        }
        // Follow each bucket down the levels: its entries are covered exactly once.
        let total: u64 = counts.iter().map(|&c| u64::from(c)).sum();
        assert_eq!(
            s.levels
                .first()
                .map_or(0, |l| l.lens().map(u64::from).sum::<u64>()),
            total
        );
        for (b, &r) in s.refs.iter().enumerate() {
            assert_eq!(r == NO_PARTIAL, counts[b] == 0, "bucket {b}");
            if r != NO_PARTIAL {
                assert!(r < s.partials);
            }
        }
        // Each level's items read only partials written by earlier levels.
        for l in s.levels.iter().skip(1) {
            for p in l.items.chunks_exact(2) {
                assert!(p[0] + p[1] <= l.out);
            }
        }
        s
    }

    #[test]
    fn uniform_buckets_take_one_thread_each_and_piles_are_split_into_a_tree() {
        let plan = Plan::new(1 << 14);
        let size = (plan.windows * plan.buckets) as usize;
        let cap = Schedule::cap(&plan);
        assert_eq!(cap, 32);
        let uniform = vec![16u32; size];
        let s = check(&uniform, &plan);
        assert_eq!(s.levels.len(), 1);
        assert_eq!(s.balance().worst_over_mean, 1.0);

        // The real-witness shape: window 0's bucket 1 holds every scalar-1 point.
        let mut piled = vec![0u32; size];
        piled[0] = 8192;
        piled[5] = cap;
        piled[6] = cap + 1;
        piled[plan.buckets as usize + 3] = cap * cap + 1;
        let s = check(&piled, &plan);
        assert_eq!(s.levels.len(), 3, "{cap}² + 1 points need three levels");
        let before = Balance::one_thread_per_bucket(&piled);
        assert_eq!(before.critical_path, 8192);
        assert!(s.balance().critical_path <= 3 * u64::from(cap));
        assert!(s.balance().worst_over_mean < 2.0, "{:?}", s.balance());
    }

    #[test]
    fn bucket_counts_match_the_digits() {
        let plan = Plan::new(100);
        let scalars = vec![Fr::ONE; 100];
        let counts = bucket_counts(&scalars, &plan);
        assert_eq!(counts[0], 100);
        assert_eq!(counts.iter().sum::<u32>(), 100);
        let minus = bucket_counts(&[-Fr::ONE], &plan);
        assert!(minus.iter().sum::<u32>() >= 1);
        check(&counts, &plan);
        check(&vec![0; counts.len()], &plan);
    }
}
