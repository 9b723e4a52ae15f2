//! Poseidon over BN254 Fr, compatible with circomlib / circomlibjs `poseidon`.
//!
//! Construction (Grassi, Khovratovich, Rechberger, Roy, Schofnegger, "Poseidon: A New Hash
//! Function for Zero-Knowledge Proof Systems", USENIX Security 2021), with the parameters
//! circomlib publishes: state width `t = n + 1` for `n` inputs, S-box `x^5`, 8 full rounds
//! and the per-width number of partial rounds; the state starts as `[0, in_1, .., in_n]` and
//! the hash is `state[0]` after the permutation.
//!
//! Two evaluations are provided and must agree:
//! - [`hash`], the fast path, uses circomlibjs' optimised round structure (`poseidon_opt`):
//!   the partial rounds use sparse matrices, so one partial round costs `2t - 1`
//!   multiplications instead of `t^2`.
//! - [`hash_reference`], the textbook construction with the dense MDS matrix in every round,
//!   used only to check the fast path.
//!
//! The constants are circomlib's, shipped as data in `data/poseidon_constants_bn254.json`.

pub mod gadget;

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use ark_bn254::Fr;
use ark_ff::{Field, Zero};
use num_bigint::BigUint;
use serde::Deserialize;

/// The largest number of inputs Pulse hashes at once (state width 7).
pub const MAX_INPUTS: usize = 6;

const FULL_ROUNDS: usize = 8;

/// Errors from hashing.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PoseidonError {
    /// Poseidon is defined here for 1 to [`MAX_INPUTS`] inputs.
    #[error("Poseidon takes 1 to {MAX_INPUTS} inputs, got {0}; hash longer inputs as a tree")]
    InputCount(usize),
}

/// The constants of one state width, in both forms.
#[derive(Debug)]
pub struct WidthParams {
    /// State width `t`.
    pub t: usize,
    /// Number of partial rounds.
    pub partial_rounds: usize,
    /// Round constants of the plain construction, `t` per round.
    pub round_constants: Vec<Fr>,
    /// The MDS matrix, `mds[i][j]`.
    pub mds: Vec<Vec<Fr>>,
    /// Round constants of the optimised construction.
    pub opt_constants: Vec<Fr>,
    /// The matrix applied before the first partial round in the optimised construction,
    /// stored (unlike the published file) in the same orientation as `mds`: `out = m * state`.
    pub pre_sparse: Vec<Vec<Fr>>,
    /// The sparse matrices of the partial rounds, `2t - 1` entries each.
    pub sparse: Vec<Fr>,
}

#[derive(Deserialize)]
struct RawFile {
    by_width: std::collections::BTreeMap<String, RawWidth>,
}

#[derive(Deserialize)]
struct RawWidth {
    full_rounds: usize,
    partial_rounds: usize,
    round_constants: Vec<String>,
    mds: Vec<Vec<String>>,
    optimized: RawOptimized,
}

#[derive(Deserialize)]
struct RawOptimized {
    round_constants: Vec<String>,
    pre_sparse_matrix: Vec<Vec<String>>,
    sparse_matrices: Vec<String>,
}

const CONSTANTS_JSON: &str = include_str!("../../data/poseidon_constants_bn254.json");

fn parse_hex(s: &str) -> Fr {
    let digits = s.trim_start_matches("0x");
    // The file is shipped with the crate and checked by tests; a bad digit is a broken build.
    let n = BigUint::parse_bytes(digits.as_bytes(), 16).expect("poseidon constant is hex");
    Fr::from(n)
}

fn parse_matrix(m: &[Vec<String>]) -> Vec<Vec<Fr>> {
    m.iter()
        .map(|row| row.iter().map(|s| parse_hex(s)).collect())
        .collect()
}

fn transpose(m: Vec<Vec<Fr>>) -> Vec<Vec<Fr>> {
    (0..m.len())
        .map(|i| m.iter().map(|row| row[i]).collect())
        .collect()
}

fn load() -> Vec<WidthParams> {
    let raw: RawFile = serde_json::from_str(CONSTANTS_JSON).expect("poseidon constants parse");
    (2..=MAX_INPUTS + 1)
        .map(|t| {
            let w = &raw.by_width[&t.to_string()];
            assert_eq!(w.full_rounds, FULL_ROUNDS, "circomlib uses 8 full rounds");
            let p = WidthParams {
                t,
                partial_rounds: w.partial_rounds,
                round_constants: w.round_constants.iter().map(|s| parse_hex(s)).collect(),
                mds: parse_matrix(&w.mds),
                opt_constants: w
                    .optimized
                    .round_constants
                    .iter()
                    .map(|s| parse_hex(s))
                    .collect(),
                pre_sparse: transpose(parse_matrix(&w.optimized.pre_sparse_matrix)),
                sparse: w
                    .optimized
                    .sparse_matrices
                    .iter()
                    .map(|s| parse_hex(s))
                    .collect(),
            };
            assert_eq!(
                p.round_constants.len(),
                t * (FULL_ROUNDS + p.partial_rounds)
            );
            assert_eq!(p.opt_constants.len(), t * FULL_ROUNDS + p.partial_rounds);
            assert_eq!(p.sparse.len(), (2 * t - 1) * p.partial_rounds);
            p
        })
        .collect()
}

/// The parameters for `n` inputs (`1..=MAX_INPUTS`).
///
/// # Panics
/// If `n` is out of range; callers check it first.
pub fn params(n: usize) -> &'static WidthParams {
    static PARAMS: OnceLock<Vec<WidthParams>> = OnceLock::new();
    &PARAMS.get_or_init(load)[n - 1]
}

#[inline(always)]
fn pow5(x: Fr) -> Fr {
    let x2 = x.square();
    x2.square() * x
}

/// `out[i] = sum_j m[i][j] * state[j]`.
#[inline(always)]
fn mix<const T: usize>(state: &[Fr; T], m: &[Vec<Fr>]) -> [Fr; T] {
    let mut out = [Fr::zero(); T];
    for (i, o) in out.iter_mut().enumerate() {
        let row = &m[i];
        for j in 0..T {
            *o += row[j] * state[j];
        }
    }
    out
}

fn permute_opt<const T: usize>(mut state: [Fr; T], p: &WidthParams) -> [Fr; T] {
    let c = &p.opt_constants;
    let half = FULL_ROUNDS / 2;
    for (i, s) in state.iter_mut().enumerate() {
        *s += c[i];
    }
    for r in 0..half - 1 {
        for (i, s) in state.iter_mut().enumerate() {
            *s = pow5(*s) + c[(r + 1) * T + i];
        }
        state = mix(&state, &p.mds);
    }
    for (i, s) in state.iter_mut().enumerate() {
        *s = pow5(*s) + c[half * T + i];
    }
    state = mix(&state, &p.pre_sparse);
    let base = (half + 1) * T;
    for r in 0..p.partial_rounds {
        state[0] = pow5(state[0]) + c[base + r];
        let s = &p.sparse[(2 * T - 1) * r..(2 * T - 1) * (r + 1)];
        let mut s0 = Fr::zero();
        for j in 0..T {
            s0 += s[j] * state[j];
        }
        let x0 = state[0];
        for k in 1..T {
            state[k] += x0 * s[T + k - 1];
        }
        state[0] = s0;
    }
    let base = base + p.partial_rounds;
    for r in 0..half - 1 {
        for (i, s) in state.iter_mut().enumerate() {
            *s = pow5(*s) + c[base + r * T + i];
        }
        state = mix(&state, &p.mds);
    }
    for s in state.iter_mut() {
        *s = pow5(*s);
    }
    mix(&state, &p.mds)
}

/// Permutations computed by this process, by input count (index 0: one input).
static COUNTS: [AtomicU64; MAX_INPUTS] = [const { AtomicU64::new(0) }; MAX_INPUTS];

/// How many hashes of each input count (index 0: one input) this process has computed with
/// [`hash`]: instrumentation for benchmarks, which relate a workload's speed to the cost of
/// the hashes it needs.
pub fn hash_counts() -> [u64; MAX_INPUTS] {
    std::array::from_fn(|i| COUNTS[i].load(Ordering::Relaxed))
}

fn hash_fixed<const T: usize>(inputs: &[Fr]) -> Fr {
    COUNTS[T - 2].fetch_add(1, Ordering::Relaxed);
    let mut state = [Fr::zero(); T];
    state[1..].copy_from_slice(inputs);
    permute_opt(state, params(T - 1))[0]
}

/// Poseidon hash of 1 to [`MAX_INPUTS`] field elements, as circomlibjs `poseidon(inputs)`.
///
/// # Errors
/// [`PoseidonError::InputCount`] for an empty or too long input.
pub fn hash(inputs: &[Fr]) -> Result<Fr, PoseidonError> {
    Ok(match inputs.len() {
        1 => hash_fixed::<2>(inputs),
        2 => hash_fixed::<3>(inputs),
        3 => hash_fixed::<4>(inputs),
        4 => hash_fixed::<5>(inputs),
        5 => hash_fixed::<6>(inputs),
        6 => hash_fixed::<7>(inputs),
        n => return Err(PoseidonError::InputCount(n)),
    })
}

/// Poseidon of two elements: the Merkle node hash, on the sequencer's hot path.
#[inline]
pub fn hash2(left: Fr, right: Fr) -> Fr {
    hash_fixed::<3>(&[left, right])
}

/// Poseidon of a fixed-size array; the size is checked at compile time.
#[inline]
pub fn hash_n<const N: usize>(inputs: [Fr; N]) -> Fr {
    const { assert!(N >= 1 && N <= MAX_INPUTS) };
    match hash(&inputs) {
        Ok(h) => h,
        Err(_) => unreachable!("size checked at compile time"),
    }
}

/// The textbook construction (dense MDS in every round), for differential tests.
///
/// # Errors
/// [`PoseidonError::InputCount`] for an empty or too long input.
pub fn hash_reference(inputs: &[Fr]) -> Result<Fr, PoseidonError> {
    let n = inputs.len();
    if n == 0 || n > MAX_INPUTS {
        return Err(PoseidonError::InputCount(n));
    }
    let p = params(n);
    let t = p.t;
    let mut state = vec![Fr::zero(); t];
    state[1..].copy_from_slice(inputs);
    let rounds = FULL_ROUNDS + p.partial_rounds;
    for r in 0..rounds {
        for (i, s) in state.iter_mut().enumerate() {
            *s += p.round_constants[r * t + i];
        }
        let full = r < FULL_ROUNDS / 2 || r >= FULL_ROUNDS / 2 + p.partial_rounds;
        if full {
            state.iter_mut().for_each(|s| *s = s.pow([5u64]));
        } else {
            state[0] = state[0].pow([5u64]);
        }
        state = (0..t)
            .map(|i| (0..t).map(|j| p.mds[i][j] * state[j]).sum())
            .collect();
    }
    Ok(state[0])
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_std::UniformRand;
    use rand::SeedableRng;
    use std::str::FromStr;

    #[test]
    fn known_answer_from_circomlibjs() {
        // poseidon([1, 2]) as published by circomlibjs.
        let h = hash(&[Fr::from(1u64), Fr::from(2u64)]).unwrap();
        assert_eq!(
            h,
            Fr::from_str(
                "7853200120776062878684798364095072458815029376092732009249414926327459813530"
            )
            .unwrap()
        );
    }

    #[test]
    fn optimised_agrees_with_reference_for_every_width() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for n in 1..=MAX_INPUTS {
            for _ in 0..8 {
                let xs: Vec<Fr> = (0..n).map(|_| Fr::rand(&mut rng)).collect();
                assert_eq!(hash(&xs).unwrap(), hash_reference(&xs).unwrap(), "n = {n}");
            }
            let zeros = vec![Fr::zero(); n];
            assert_eq!(hash(&zeros).unwrap(), hash_reference(&zeros).unwrap());
            let minus_one = vec![-Fr::from(1u64); n];
            assert_eq!(
                hash(&minus_one).unwrap(),
                hash_reference(&minus_one).unwrap()
            );
        }
    }

    #[test]
    fn bad_input_counts_are_refused() {
        assert_eq!(hash(&[]), Err(PoseidonError::InputCount(0)));
        assert_eq!(hash(&[Fr::zero(); 7]), Err(PoseidonError::InputCount(7)));
        assert!(hash_reference(&[Fr::zero(); 7]).is_err());
    }

    #[test]
    fn different_inputs_give_different_hashes() {
        let a = hash2(Fr::from(1u64), Fr::from(2u64));
        let b = hash2(Fr::from(2u64), Fr::from(1u64));
        assert_ne!(a, b);
        assert_ne!(
            hash(&[Fr::from(1u64)]).unwrap(),
            hash(&[Fr::from(1u64), Fr::zero()]).unwrap()
        );
    }
}
