//! A `.zkey` as the proving key Pulse's prover and verifier take.
//!
//! The queries map one to one (`A`, `B₁`, `B₂`, `C` as `L`, `IC` as `γ_abc`); `H` keeps
//! snarkjs's form (`n` points on the odd coset, [`pulse_prover::QuotientForm::OddCoset`]),
//! which the prover tells from its length. A snarkjs key holds the `A` and `B` rows of its
//! circuit but not `C`; [`ab_rows`] gives those rows for
//! [`pulse_prover::Prover::for_imported`].

use std::sync::Arc;

use ark_bn254::{Bn254, Fr};
use ark_groth16::{ProvingKey, VerifyingKey};
use pulse_circuits::r1cs::R1cs;

use crate::FormatError;
use crate::zkey::Zkey;

/// The proving key (its verifying key inside) of a `.zkey`.
pub fn proving_key(z: &Zkey) -> ProvingKey<Bn254> {
    ProvingKey {
        vk: verifying_key(z),
        beta_g1: z.beta1,
        delta_g1: z.delta1,
        a_query: z.a.clone(),
        b_g1_query: z.b1.clone(),
        b_g2_query: z.b2.clone(),
        h_query: z.h.clone(),
        l_query: z.c.clone(),
    }
}

/// The verifying key of a `.zkey`.
pub fn verifying_key(z: &Zkey) -> VerifyingKey<Bn254> {
    VerifyingKey {
        alpha_g1: z.alpha1,
        beta_g2: z.beta2,
        gamma_g2: z.gamma2,
        delta_g2: z.delta2,
        gamma_abc_g1: z.ic.clone(),
    }
}

/// The number of constraints of the circuit a `.zkey` was made for: its coefficients end
/// with the public-input rows `(A, m + s, s, 1)` for `s = 0..=public`.
///
/// # Errors
/// When they do not.
pub fn constraints(z: &Zkey) -> Result<usize, FormatError> {
    let np = z.n_public as usize;
    let tail = z
        .coefs
        .len()
        .checked_sub(np + 1)
        .map(|start| &z.coefs[start..])
        .ok_or_else(|| FormatError::new("the zkey's coefficients lack the public-input rows"))?;
    let m = tail[0].constraint;
    let ok = tail.iter().enumerate().all(|(s, c)| {
        c.matrix == 0
            && c.signal == s as u32
            && c.constraint == m + s as u32
            && c.value == Fr::from(1u64)
    });
    if !ok || m as usize + np + 1 > z.domain_size as usize {
        return Err(FormatError::new(
            "the zkey's coefficients do not end with the public-input rows snarkjs appends",
        ));
    }
    Ok(m as usize)
}

/// The circuit's `A` and `B` rows from a `.zkey` (no `C`; the public-input rows left out,
/// as the prover appends them).
///
/// # Errors
/// When the coefficients are not laid out as snarkjs writes them.
pub fn ab_rows(z: &Zkey) -> Result<Arc<R1cs>, FormatError> {
    let m = constraints(z)?;
    let mut a = vec![Vec::new(); m];
    let mut b = vec![Vec::new(); m];
    let body = z.coefs.len() - (z.n_public as usize + 1);
    for c in &z.coefs[..body] {
        let row = c.constraint as usize;
        if row >= m {
            return Err(FormatError::new(format!(
                "a coefficient names row {row} past the circuit's {m} constraints"
            )));
        }
        let target = if c.matrix == 0 { &mut a } else { &mut b };
        target[row].push((c.value, c.signal as usize));
    }
    R1cs::from_matrices(
        z.n_public as usize + 1,
        z.n_vars as usize,
        [a, b, vec![Vec::new(); m]],
    )
    .map(Arc::new)
    .map_err(|e| FormatError::new(format!("the zkey's rows do not fit: {e}")))
}
