//! GLV scalar decomposition for the GPU MSM (Gallant, Lambert, Vanstone, "Faster point
//! multiplication on elliptic curves with efficient endomorphisms", CRYPTO 2001).
//!
//! BN254's groups have an endomorphism φ(x, y) = (β·x, y), β a cube root of unity in Fq,
//! that acts as multiplication by λ, a cube root of unity in Fr: φ(P) = λ·P. A scalar
//! `s` splits into `k₁ + k₂·λ ≡ s (mod r)` with `|k₁|, |k₂| < 2¹²⁸`, so
//! `s·P = k₁·P + k₂·φ(P)`: an MSM over `n` 254-bit scalars becomes one over `2n` 128-bit
//! scalars, with half the windows (and half the bucket reductions and doublings). φ costs
//! one Fq multiplication (two in G2) when a point is read. G1 and G2 take the same λ with
//! different β (checked by [`tests`]), so one decomposition serves the A, B₁ and B₂ MSMs.
//!
//! The split (Babai rounding in the lattice `{(a, b) : a + b·λ ≡ 0}`, with arkworks' reduced
//! basis `v₁ = (n₁₁, -n₁₂)`, `v₂ = (n₂₁, n₂₂)`, all four magnitudes ≤ 2¹²⁷):
//!
//! ```text
//! q₁ = ⌊s·g₁ / 2²⁵⁶⌋,  g₁ = ⌊2²⁵⁶·n₂₂ / r⌋      (≈ s·n₂₂/r, from below, less than 2 off)
//! q₂ = ⌊s·g₂ / 2²⁵⁶⌋,  g₂ = ⌊2²⁵⁶·n₁₂ / r⌋      (≈ s·n₁₂/r)
//! k₁ = s - q₁·n₁₁ - q₂·n₂₁
//! k₂ = q₁·n₁₂ - q₂·n₂₂
//! ```
//!
//! With `e₁ = s·n₂₂/r - q₁` and `e₂ = s·n₁₂/r - q₂`, both in `[0, 2)`, and
//! `n₁₁·n₂₂ + n₁₂·n₂₁ = r`, this gives `k₁ = e₁·n₁₁ + e₂·n₂₁ ∈ [0, 2·(n₁₁ + n₂₁))` and
//! `k₂ = e₂·n₂₂ - e₁·n₁₂ ∈ (-2·n₁₂, 2·n₂₂)`: magnitudes below 2¹²⁸, `k₂` possibly negative.
//! The device computes the same integers modulo 2¹⁶⁰ (five 32-bit limbs), which is exact
//! for results this small; [`split`] is the host's model of it, for tests and for
//! `pulse bench buckets`.

use std::sync::OnceLock;

use ark_bn254::{Fq, Fr, g1};
use ark_ec::scalar_mul::glv::GLVConfig;
use ark_ff::{BigInteger, Field, PrimeField};
use num_bigint::{BigInt, BigUint, Sign};

/// Bits of a half's magnitude: `|k₁|, |k₂| < 2^HALF_BITS`.
pub const HALF_BITS: u32 = 128;

/// The decomposition's constants, derived from arkworks' (nothing typed by hand).
#[derive(Debug, Clone)]
pub struct Constants {
    /// λ: φ(P) = λ·P in both groups.
    pub lambda: Fr,
    /// β for G1: φ(x, y) = (β·x, y).
    pub beta_g1: Fq,
    /// β for G2 (applied to both coordinates of x in Fq2).
    pub beta_g2: Fq,
    /// The magnitudes of the basis: `v₁ = (n11, -n12)`, `v₂ = (n21, n22)`.
    pub n11: BigUint,
    /// See [`Constants::n11`].
    pub n12: BigUint,
    /// See [`Constants::n11`].
    pub n21: BigUint,
    /// See [`Constants::n11`].
    pub n22: BigUint,
    /// `⌊2²⁵⁶·n22 / r⌋`.
    pub g1: BigUint,
    /// `⌊2²⁵⁶·n12 / r⌋`.
    pub g2: BigUint,
}

fn big(x: impl BigInteger) -> BigUint {
    BigUint::from_bytes_le(&x.to_bytes_le())
}

fn modulus() -> BigUint {
    big(Fr::MODULUS)
}

/// The constants (computed once).
///
/// # Panics
/// If arkworks' basis is not a basis of the GLV lattice with the signs above (a change of
/// arkworks' constants); the tests check this.
pub fn constants() -> &'static Constants {
    static C: OnceLock<Constants> = OnceLock::new();
    C.get_or_init(|| {
        let lambda = g1::Config::LAMBDA;
        let beta_g1 = g1::Config::ENDO_COEFFS[0];
        let [n11, n12, n21, n22] = g1::Config::SCALAR_DECOMP_COEFFS.map(|(_, m)| big(m));
        let r = modulus();
        let l = big(lambda.into_bigint());
        // v₁ = (n11, -n12), v₂ = (n21, n22) must lie in the lattice: a + b·λ ≡ 0 (mod r).
        assert_eq!(
            (&n11 + (&r - &n12) * &l) % &r,
            BigUint::ZERO,
            "GLV basis v₁"
        );
        assert_eq!((&n21 + &n22 * &l) % &r, BigUint::ZERO, "GLV basis v₂");
        assert_eq!(&n11 * &n22 + &n12 * &n21, r, "GLV basis determinant");
        let g1 = (&n22 << 256u32) / &r;
        let g2 = (&n12 << 256u32) / &r;
        Constants {
            lambda,
            beta_g1,
            beta_g2: beta_g1.square(),
            n11,
            n12,
            n21,
            n22,
            g1,
            g2,
        }
    })
}

/// One half of a split scalar: a magnitude below 2¹²⁸ and its sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Half {
    /// `|k|`.
    pub magnitude: u128,
    /// `k < 0`.
    pub negative: bool,
}

impl Half {
    /// The half as a field element.
    pub fn to_fr(self) -> Fr {
        let m = Fr::from(self.magnitude);
        if self.negative { -m } else { m }
    }
}

fn half(k: BigInt) -> Half {
    let (sign, m) = k.into_parts();
    let digits = m.to_u64_digits();
    assert!(
        digits.len() <= 2,
        "GLV half above 2^128: the bound is broken"
    );
    let magnitude = digits
        .iter()
        .rev()
        .fold(0u128, |acc, &d| (acc << 64) | u128::from(d));
    Half {
        magnitude,
        negative: sign == Sign::Minus,
    }
}

/// `s = k₁ + k₂·λ (mod r)`, exactly as the `msm_digits_glv` kernel splits it.
pub fn split(s: &Fr) -> [Half; 2] {
    let c = constants();
    let s = big(s.into_bigint());
    let q1 = (&s * &c.g1) >> 256u32;
    let q2 = (&s * &c.g2) >> 256u32;
    let signed = |x: BigUint| BigInt::from_biguint(Sign::Plus, x);
    let k1 = signed(s) - signed(&q1 * &c.n11) - signed(&q2 * &c.n21);
    let k2 = signed(&q1 * &c.n12) - signed(&q2 * &c.n22);
    [half(k1), half(k2)]
}

/// Little-endian 32-bit limbs of `x`, exactly `n` of them.
///
/// # Panics
/// If `x` does not fit.
pub fn limbs32(x: &BigUint, n: usize) -> Vec<u32> {
    let mut v = x.to_u32_digits();
    assert!(v.len() <= n, "constant wider than {n} limbs");
    v.resize(n, 0);
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_bn254::{G1Projective, G2Projective};
    use ark_ec::{CurveGroup, PrimeGroup};
    use ark_ff::{One, UniformRand, Zero};

    #[test]
    fn phi_is_lambda_in_both_groups() {
        let c = constants();
        let g = G1Projective::generator();
        let mut phi = g.into_affine();
        phi.x *= c.beta_g1;
        assert_eq!(phi, (g * c.lambda).into_affine());
        let h = G2Projective::generator();
        let mut phi = h.into_affine();
        phi.x.c0 *= c.beta_g2;
        phi.x.c1 *= c.beta_g2;
        assert_eq!(phi, (h * c.lambda).into_affine());
        // The other cube root is λ² in each group: the pairing of β and λ matters.
        let mut wrong = g.into_affine();
        wrong.x *= c.beta_g2;
        assert_ne!(wrong, (g * c.lambda).into_affine());
    }

    #[test]
    fn halves_recompose_the_scalar_and_stay_below_2_to_128() {
        let c = constants();
        let mut rng = ark_std::test_rng();
        let mut edges = vec![
            Fr::zero(),
            Fr::one(),
            -Fr::one(),
            Fr::from(2u64),
            c.lambda,
            -c.lambda,
            c.lambda * c.lambda,
            Fr::from(u128::MAX),
            -Fr::from(u128::MAX),
            Fr::from(BigUint::from(1u8) << 253u32),
        ];
        edges.extend((0..20_000).map(|_| Fr::rand(&mut rng)));
        let mut negative = 0;
        for s in &edges {
            let [k1, k2] = split(s);
            assert_eq!(k1.to_fr() + k2.to_fr() * c.lambda, *s, "{s}");
            assert!(!k1.negative, "k₁ is never negative: {s}");
            negative += usize::from(k2.negative);
        }
        // Bounded by construction; the magnitudes above fit u128 or `half` panicked.
        assert!(negative < edges.len());
        assert_eq!(split(&Fr::zero())[0].magnitude, 0);
        assert_eq!(split(&Fr::one())[0].magnitude, 1);
    }

    #[test]
    fn the_bound_holds_for_the_basis() {
        let c = constants();
        let bound = BigUint::from(1u8) << HALF_BITS;
        assert!(BigUint::from(2u8) * (&c.n11 + &c.n21) <= bound);
        assert!(BigUint::from(2u8) * &c.n22 <= bound);
        assert!(BigUint::from(2u8) * &c.n12 <= bound);
        assert_eq!(limbs32(&c.g1, 5).len(), 5);
        assert_eq!(limbs32(&c.g2, 3).len(), 3);
    }
}
