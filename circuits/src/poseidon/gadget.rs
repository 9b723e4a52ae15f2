//! Poseidon as an R1CS gadget, the same function as [`super::hash`].
//!
//! It follows the optimised round structure, like circomlib's `Poseidon` template: every
//! S-box `x^5` costs three constraints (`x^2`, `x^4`, `x^5`), every linear layer is free, so
//! `n` inputs cost `3 * (8 * t + R_P) - 3` constraints (240 for two inputs: the capacity
//! element starts as a constant, so its first S-box is free).

use ark_bn254::Fr;
use ark_r1cs_std::{fields::fp::FpVar, prelude::*};
use ark_relations::gr1cs::SynthesisError;

use super::{FULL_ROUNDS, MAX_INPUTS, params};

fn pow5(x: &FpVar<Fr>) -> Result<FpVar<Fr>, SynthesisError> {
    let x2 = x.square()?;
    let x4 = x2.square()?;
    Ok(x4 * x)
}

fn mix(state: &[FpVar<Fr>], m: &[Vec<Fr>]) -> Vec<FpVar<Fr>> {
    let t = state.len();
    (0..t)
        .map(|i| {
            state
                .iter()
                .enumerate()
                .map(|(j, s)| s * m[i][j])
                .fold(FpVar::zero(), |acc, x| acc + x)
        })
        .collect()
}

/// Poseidon of 1 to [`MAX_INPUTS`] field variables.
///
/// # Errors
/// [`SynthesisError::Unsatisfiable`] for an input count Poseidon is not defined for here,
/// otherwise whatever the constraint system reports.
pub fn hash(inputs: &[FpVar<Fr>]) -> Result<FpVar<Fr>, SynthesisError> {
    let n = inputs.len();
    if n == 0 || n > MAX_INPUTS {
        return Err(SynthesisError::Unsatisfiable);
    }
    let p = params(n);
    let t = p.t;
    let c = &p.opt_constants;
    let half = FULL_ROUNDS / 2;
    let mut state: Vec<FpVar<Fr>> = std::iter::once(FpVar::zero())
        .chain(inputs.iter().cloned())
        .enumerate()
        .map(|(i, s)| s + c[i])
        .collect();
    for r in 0..half - 1 {
        for (i, s) in state.iter_mut().enumerate() {
            *s = pow5(s)? + c[(r + 1) * t + i];
        }
        state = mix(&state, &p.mds);
    }
    for (i, s) in state.iter_mut().enumerate() {
        *s = pow5(s)? + c[half * t + i];
    }
    state = mix(&state, &p.pre_sparse);
    let base = (half + 1) * t;
    for r in 0..p.partial_rounds {
        state[0] = pow5(&state[0])? + c[base + r];
        let s = &p.sparse[(2 * t - 1) * r..(2 * t - 1) * (r + 1)];
        let s0 = state
            .iter()
            .zip(s)
            .map(|(x, k)| x * *k)
            .fold(FpVar::zero(), |acc, x| acc + x);
        let x0 = state[0].clone();
        for k in 1..t {
            state[k] += &x0 * s[t + k - 1];
        }
        state[0] = s0;
    }
    let base = base + p.partial_rounds;
    for r in 0..half - 1 {
        for (i, s) in state.iter_mut().enumerate() {
            *s = pow5(s)? + c[base + r * t + i];
        }
        state = mix(&state, &p.mds);
    }
    for s in state.iter_mut() {
        *s = pow5(s)?;
    }
    // Only the first output is used: compute just that column of the last mix.
    Ok(state
        .iter()
        .enumerate()
        .map(|(j, s)| s * p.mds[0][j])
        .fold(FpVar::zero(), |acc, x| acc + x))
}

/// Poseidon of two variables (the Merkle node hash).
///
/// # Errors
/// Whatever the constraint system reports.
pub fn hash2(left: &FpVar<Fr>, right: &FpVar<Fr>) -> Result<FpVar<Fr>, SynthesisError> {
    hash(&[left.clone(), right.clone()])
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_relations::gr1cs::ConstraintSystem;
    use ark_std::UniformRand;
    use rand::SeedableRng;

    #[test]
    fn gadget_matches_native_and_costs_what_circomlib_costs() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for n in 1..=MAX_INPUTS {
            let cs = ConstraintSystem::<Fr>::new_ref();
            let xs: Vec<Fr> = (0..n).map(|_| Fr::rand(&mut rng)).collect();
            let vars: Vec<FpVar<Fr>> = xs
                .iter()
                .map(|x| FpVar::new_witness(cs.clone(), || Ok(*x)).unwrap())
                .collect();
            let before = cs.num_constraints();
            let h = hash(&vars).unwrap();
            let cost = cs.num_constraints() - before;
            assert_eq!(h.value().unwrap(), super::super::hash(&xs).unwrap());
            let p = params(n);
            // The capacity element enters as a constant, so its first S-box is free.
            assert_eq!(
                cost,
                3 * (FULL_ROUNDS * p.t + p.partial_rounds) - 3,
                "n = {n}"
            );
            let expected =
                FpVar::new_input(cs.clone(), || Ok(super::super::hash(&xs).unwrap())).unwrap();
            h.enforce_equal(&expected).unwrap();
            assert!(cs.is_satisfied().unwrap());
        }
    }

    #[test]
    fn wrong_claimed_hash_is_unsatisfied() {
        let cs = ConstraintSystem::<Fr>::new_ref();
        let a = FpVar::new_witness(cs.clone(), || Ok(Fr::from(1u64))).unwrap();
        let b = FpVar::new_witness(cs.clone(), || Ok(Fr::from(2u64))).unwrap();
        let h = hash2(&a, &b).unwrap();
        let wrong = FpVar::new_input(cs.clone(), || Ok(Fr::from(3u64))).unwrap();
        h.enforce_equal(&wrong).unwrap();
        assert!(!cs.is_satisfied().unwrap());
    }
}
