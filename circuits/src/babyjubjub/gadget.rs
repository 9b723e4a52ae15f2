//! BabyJubJub as R1CS gadgets over BN254 `Fr`, computing the same functions as the native
//! [`Point`] (the curve is circomlib's, see the [module documentation](super)).
//!
//! Constraint costs (all operands variables; constant operands make some products free):
//!
//! | operation | constraints |
//! |---|---|
//! | [`PointVar::enforce_on_curve`] | [`ON_CURVE_COST`] = 3 |
//! | [`PointVar::add`] (circomlib `BabyAdd`) | [`ADD_COST`] = 6 |
//! | [`PointVar::double`] | [`DOUBLE_COST`] = 5 |
//! | select between two points | 2 |
//! | [`PointVar::fixed_base_mul_le`], `n` bits | [`fixed_base_mul_cost`]`(n)`: 831 for 251 bits |
//! | [`PointVar::scalar_mul_le`], `n` bits | [`var_base_mul_cost`]`(n)`: 2,541 for 254 bits |
//! | [`scalar_to_bits_le`] (251 bits, `< l`) | [`SCALAR_BITS_COST`] = 403 |
//! | [`to_bits_le_strict`] (254 bits, `< p`) | [`STRICT_BITS_COST`] = 385 |
//!
//! Because the addition law is complete, none of the gadgets has exceptional cases: every
//! input point on the curve (the identity and small-order points included) gives the right
//! result, and no witness needs a special case.
//!
//! Fixed-base multiplication uses 3-bit windows over constant tables: selecting among eight
//! constant points is linear in the four bit products `b0b1, b0b2, b1b2, b0b1b2`, so a window
//! costs 4 products plus one addition (10 constraints per 3 bits, about 3.3 per bit).
//!
//! Variable-base multiplication uses a signed-digit recoding of the scalar that needs no
//! extra constraints: for `k' = k | 1` and `n` bits, `k' = 2^(n-1) + Σ_{i<n-1} (2·b_{i+1} - 1)·2^i`,
//! so every digit is `±1`. Digits are taken in pairs, each pair worth one of `±P, ±3P`; the
//! pair's point is selected with 4 constraints (negation is free on `x`), so a pair costs
//! two doublings, the lookup and one addition: 20 constraints per 2 bits. A final addition
//! of `-P` when `b0 = 0` corrects `k'` back to `k`.
//!
//! The bit-decomposition helpers ([`to_bits_le`], [`enforce_le_constant`],
//! [`to_bits_le_strict`], [`scalar_to_bits_le`]) give the canonical decompositions that make
//! scalars unambiguous, as circomlib's `Num2Bits_strict` / `CompConstant` do.

use std::borrow::Borrow;

use ark_bn254::Fr;
use ark_ff::{AdditiveGroup, Field, One, PrimeField, Zero};
use ark_r1cs_std::{fields::fp::FpVar, prelude::*};
use ark_relations::gr1cs::{ConstraintSystemRef, Namespace, SynthesisError};
use num_bigint::BigUint;

use super::{Point, a, base_field_modulus, d, fr_bits_le, fr_to_biguint, subgroup_order};

/// Constraints of [`PointVar::enforce_on_curve`].
pub const ON_CURVE_COST: usize = 3;
/// Constraints of [`PointVar::add`].
pub const ADD_COST: usize = 6;
/// Constraints of [`PointVar::double`].
pub const DOUBLE_COST: usize = 5;
/// Constraints of [`scalar_to_bits_le`]: 251 bits, their sum, and 151 for `≤ l - 1`.
pub const SCALAR_BITS_COST: usize = 403;
/// Constraints of [`to_bits_le_strict`]: 254 bits, their sum, and 130 for `≤ p - 1`.
pub const STRICT_BITS_COST: usize = 385;
/// Bits per window of [`PointVar::fixed_base_mul_le`].
pub const FIXED_WINDOW: usize = 3;

/// Constraints of [`PointVar::fixed_base_mul_le`] for `n` variable bits.
pub const fn fixed_base_mul_cost(n: usize) -> usize {
    if n == 0 {
        return 0;
    }
    let full = n / FIXED_WINDOW;
    let rest = n % FIXED_WINDOW;
    let windows = full + if rest > 0 { 1 } else { 0 };
    // A window of w bits needs every product of two or more of its bits: 2^w - w - 1.
    let products = full * ((1 << FIXED_WINDOW) - FIXED_WINDOW - 1)
        + if rest > 0 { (1 << rest) - rest - 1 } else { 0 };
    products + (windows - 1) * ADD_COST
}

/// Constraints of [`PointVar::scalar_mul_le`] for a variable point and `n` variable bits.
pub const fn var_base_mul_cost(n: usize) -> usize {
    if n == 0 {
        return 0;
    }
    let triple = if n >= 2 { DOUBLE_COST + ADD_COST } else { 0 };
    let top = if n & 1 == 0 { 2 } else { 0 };
    let pairs = (n - 1) / 2;
    let pair = 2 * DOUBLE_COST + 4 + ADD_COST;
    let correction = 2 + ADD_COST;
    triple + top + pairs * pair + correction
}

/// A BabyJubJub point in the circuit, affine coordinates. Allocating one does not check
/// that it is on the curve; call [`PointVar::enforce_on_curve`] for untrusted points.
#[derive(Clone, Debug)]
pub struct PointVar {
    /// The x coordinate.
    pub x: FpVar<Fr>,
    /// The y coordinate.
    pub y: FpVar<Fr>,
}

impl PointVar {
    /// The point with these coordinates.
    pub fn new(x: FpVar<Fr>, y: FpVar<Fr>) -> Self {
        Self { x, y }
    }

    /// A constant point (no variables, no constraints).
    pub fn constant(p: Point) -> Self {
        Self {
            x: FpVar::constant(p.x),
            y: FpVar::constant(p.y),
        }
    }

    /// The identity `(0, 1)` as a constant.
    pub fn identity() -> Self {
        Self::constant(Point::identity())
    }

    /// Enforces `a·x² + y² = 1 + d·x²·y²` ([`ON_CURVE_COST`] constraints).
    ///
    /// # Errors
    /// [`SynthesisError::Unsatisfiable`] for a constant point off the curve, otherwise
    /// whatever the constraint system reports.
    pub fn enforce_on_curve(&self) -> Result<(), SynthesisError> {
        if self.is_constant() {
            return if self.value()?.is_on_curve() {
                Ok(())
            } else {
                Err(SynthesisError::Unsatisfiable)
            };
        }
        let xx = self.x.square()?;
        let yy = self.y.square()?;
        (&xx * d()).mul_equals(&yy, &(&xx * a() + &yy - Fr::one()))
    }

    /// `-P = (-x, y)`, free.
    pub fn negate(&self) -> Self {
        Self {
            x: FpVar::zero() - &self.x,
            y: self.y.clone(),
        }
    }

    /// `P + Q` by the complete addition law, as circomlib's `BabyAdd` ([`ADD_COST`]
    /// constraints):
    ///
    /// ```text
    /// β = x1·y2, γ = y1·x2, δ = (y1 - a·x1)·(x2 + y2), τ = β·γ,
    /// x3·(1 + d·τ) = β + γ,  y3·(1 - d·τ) = δ + a·β - γ
    /// ```
    ///
    /// # Errors
    /// Whatever the constraint system reports.
    pub fn add(&self, other: &Self) -> Result<Self, SynthesisError> {
        if self.is_constant() && other.is_constant() {
            return Ok(Self::constant(self.value()?.add(&other.value()?)));
        }
        let beta = &self.x * &other.y;
        let gamma = &self.y * &other.x;
        let delta = (&self.y - &self.x * a()) * (&other.x + &other.y);
        let tau = &beta * &gamma;
        let dtau = &tau * d();
        let x = quotient(&(&beta + &gamma), &(FpVar::one() + &dtau))?;
        let y = quotient(&(&delta + &beta * a() - &gamma), &(FpVar::one() - &dtau))?;
        Ok(Self { x, y })
    }

    /// `2·P` ([`DOUBLE_COST`] constraints): the addition law with both operands equal, which
    /// shares `β = γ = x·y`.
    ///
    /// # Errors
    /// Whatever the constraint system reports.
    pub fn double(&self) -> Result<Self, SynthesisError> {
        if self.is_constant() {
            return Ok(Self::constant(self.value()?.double()));
        }
        let beta = &self.x * &self.y;
        let delta = (&self.y - &self.x * a()) * (&self.x + &self.y);
        let dtau = beta.square()? * d();
        let x = quotient(&beta.double()?, &(FpVar::one() + &dtau))?;
        let y = quotient(
            &(&delta + &beta * (a() - Fr::one())),
            &(FpVar::one() - &dtau),
        )?;
        Ok(Self { x, y })
    }

    /// `k·base` for a constant `base` and a scalar given by its little-endian bits (any
    /// number; the integer they spell is used as is, not reduced). Costs
    /// [`fixed_base_mul_cost`]`(bits.len())` constraints.
    ///
    /// # Errors
    /// Whatever the constraint system reports.
    pub fn fixed_base_mul_le(base: &Point, bits: &[Boolean<Fr>]) -> Result<Self, SynthesisError> {
        let mut acc: Option<Self> = None;
        // 2^(3j)·base for window j.
        let mut window_base = *base;
        for chunk in bits.chunks(FIXED_WINDOW) {
            let mut table = Vec::with_capacity(1 << chunk.len());
            let mut multiple = Point::identity();
            for _ in 0..1usize << chunk.len() {
                table.push(multiple);
                multiple = multiple.add(&window_base);
            }
            let term = constant_lookup(chunk, &table)?;
            acc = Some(match acc {
                None => term,
                Some(acc) => acc.add(&term)?,
            });
            window_base = multiple;
        }
        Ok(acc.unwrap_or_else(Self::identity))
    }

    /// `k·Base8` (see [`PointVar::fixed_base_mul_le`]).
    ///
    /// # Errors
    /// Whatever the constraint system reports.
    pub fn base8_mul_le(bits: &[Boolean<Fr>]) -> Result<Self, SynthesisError> {
        Self::fixed_base_mul_le(&Point::base8(), bits)
    }

    /// `k·P` for this (variable) point and a scalar given by its little-endian bits (any
    /// number; the integer they spell is used as is, not reduced). Costs
    /// [`var_base_mul_cost`]`(bits.len())` constraints; a constant point takes the cheaper
    /// [`PointVar::fixed_base_mul_le`].
    ///
    /// # Errors
    /// Whatever the constraint system reports.
    pub fn scalar_mul_le(&self, bits: &[Boolean<Fr>]) -> Result<Self, SynthesisError> {
        let n = bits.len();
        if n == 0 {
            return Ok(Self::identity());
        }
        if self.is_constant() {
            return Self::fixed_base_mul_le(&self.value()?, bits);
        }
        let p1 = self.clone();
        let p3 = if n >= 2 {
            self.double()?.add(self)?
        } else {
            p1.clone()
        };
        // Digit i (i < n - 1) is 2·bits[i + 1] - 1; digit n - 1 is +1.
        let (mut acc, mut remaining) = if n % 2 == 1 {
            (p1.clone(), n - 1)
        } else {
            // The top pair is 2 + (2·b_{n-1} - 1): 3P or P.
            (Self::conditionally_select(&bits[n - 1], &p3, &p1)?, n - 2)
        };
        while remaining >= 2 {
            acc = acc.double()?.double()?;
            let term = signed_lookup(&bits[remaining], &bits[remaining - 1], &p1, &p3)?;
            acc = acc.add(&term)?;
            remaining -= 2;
        }
        // So far acc = (k | 1)·P; subtract P when k is even.
        let correction = Self::conditionally_select(&bits[0], &Self::identity(), &self.negate())?;
        acc.add(&correction)
    }
}

/// `num / den` as a new witness `q` with the single constraint `q·den = num`. A zero
/// denominator yields the witness 0 (the constraint then fails unless `num = 0`), so
/// off-curve inputs make the system unsatisfied rather than failing synthesis.
fn quotient(num: &FpVar<Fr>, den: &FpVar<Fr>) -> Result<FpVar<Fr>, SynthesisError> {
    let cs = num.cs().or(den.cs());
    if cs.is_none() {
        let inv = den.value()?.inverse().unwrap_or(Fr::ZERO);
        return Ok(FpVar::constant(num.value()? * inv));
    }
    let q = FpVar::new_witness(cs, || {
        Ok(num.value()? * den.value()?.inverse().unwrap_or(Fr::ZERO))
    })?;
    q.mul_equals(den, num)?;
    Ok(q)
}

/// Selects `table[v]` where `v` is the integer spelled by `bits` (little-endian), for a
/// constant table of `2^bits.len()` points. The coordinates are multilinear in the bits, so
/// only the products of two or more bits cost constraints.
fn constant_lookup(bits: &[Boolean<Fr>], table: &[Point]) -> Result<PointVar, SynthesisError> {
    let size = table.len();
    // Monomials: mono[mask] = product of the bits in mask.
    let mut mono: Vec<FpVar<Fr>> = Vec::with_capacity(size);
    mono.push(FpVar::one());
    for mask in 1..size {
        let low = mask.trailing_zeros() as usize;
        let rest = mask & (mask - 1);
        let bit = FpVar::from(bits[low].clone());
        mono.push(if rest == 0 { bit } else { &mono[rest] * &bit });
    }
    // Coefficients of the multilinear interpolation (Möbius inversion over subsets).
    let mut cx: Vec<Fr> = table.iter().map(|p| p.x).collect();
    let mut cy: Vec<Fr> = table.iter().map(|p| p.y).collect();
    for i in 0..bits.len() {
        for mask in 0..size {
            if mask & (1 << i) != 0 {
                cx[mask] = cx[mask] - cx[mask ^ (1 << i)];
                cy[mask] = cy[mask] - cy[mask ^ (1 << i)];
            }
        }
    }
    let combine = |c: &[Fr]| -> FpVar<Fr> {
        mono.iter()
            .zip(c)
            .fold(FpVar::zero(), |acc, (m, k)| acc + m * *k)
    };
    Ok(PointVar {
        x: combine(&cx),
        y: combine(&cy),
    })
}

/// The point worth the signed digit pair `2·(2·c1 - 1) + (2·c0 - 1)` ∈ {-3, -1, 1, 3} times
/// P, given `p1 = P` and `p3 = 3P` (4 constraints):
///
/// ```text
/// (c1, c0) = (0,0): -3P   (0,1): -P   (1,0): P   (1,1): 3P
/// x = -x3 + c0·(x3 - x1) + c1·(x1 + x3)
/// y = y3 + (c0 ⊕ c1)·(y1 - y3)
/// ```
fn signed_lookup(
    c1: &Boolean<Fr>,
    c0: &Boolean<Fr>,
    p1: &PointVar,
    p3: &PointVar,
) -> Result<PointVar, SynthesisError> {
    let f0 = FpVar::from(c0.clone());
    let f1 = FpVar::from(c1.clone());
    let x = &f0 * &(&p3.x - &p1.x) + &f1 * &(&p1.x + &p3.x) - &p3.x;
    let both = &f0 * &f1;
    let xor = &f0 + &f1 - both.double()?;
    let y = &p3.y + xor * &(&p1.y - &p3.y);
    Ok(PointVar { x, y })
}

impl GR1CSVar<Fr> for PointVar {
    type Value = Point;

    fn cs(&self) -> ConstraintSystemRef<Fr> {
        self.x.cs().or(self.y.cs())
    }

    fn value(&self) -> Result<Point, SynthesisError> {
        Ok(Point {
            x: self.x.value()?,
            y: self.y.value()?,
        })
    }
}

impl AllocVar<Point, Fr> for PointVar {
    /// Allocates both coordinates in `mode`. No curve check: see
    /// [`PointVar::enforce_on_curve`].
    fn new_variable<T: Borrow<Point>>(
        cs: impl Into<Namespace<Fr>>,
        f: impl FnOnce() -> Result<T, SynthesisError>,
        mode: AllocationMode,
    ) -> Result<Self, SynthesisError> {
        let cs = cs.into().cs();
        let value = f().map(|p| *p.borrow());
        let x = FpVar::new_variable(cs.clone(), || value.map(|p| p.x), mode)?;
        let y = FpVar::new_variable(cs, || value.map(|p| p.y), mode)?;
        Ok(Self { x, y })
    }
}

impl EqGadget<Fr> for PointVar {
    /// Whether both coordinates are equal (5 constraints).
    fn is_eq(&self, other: &Self) -> Result<Boolean<Fr>, SynthesisError> {
        Ok(self.x.is_eq(&other.x)? & self.y.is_eq(&other.y)?)
    }

    /// One constraint per coordinate.
    fn conditional_enforce_equal(
        &self,
        other: &Self,
        should_enforce: &Boolean<Fr>,
    ) -> Result<(), SynthesisError> {
        self.x.conditional_enforce_equal(&other.x, should_enforce)?;
        self.y.conditional_enforce_equal(&other.y, should_enforce)
    }

    /// Enforces that the points differ (in at least one coordinate) when `should_enforce`.
    fn conditional_enforce_not_equal(
        &self,
        other: &Self,
        should_enforce: &Boolean<Fr>,
    ) -> Result<(), SynthesisError> {
        self.is_eq(other)?
            .conditional_enforce_equal(&Boolean::FALSE, should_enforce)
    }
}

impl CondSelectGadget<Fr> for PointVar {
    /// One constraint per coordinate (none when the condition or both points are constant).
    fn conditionally_select(
        cond: &Boolean<Fr>,
        true_value: &Self,
        false_value: &Self,
    ) -> Result<Self, SynthesisError> {
        Ok(Self {
            x: cond.select(&true_value.x, &false_value.x)?,
            y: cond.select(&true_value.y, &false_value.y)?,
        })
    }
}

/// Allocates the `n` little-endian bits of `v` and enforces `Σ b_i·2^i = v`
/// (`n` booleanity constraints and one sum). For `n` below 254 this also proves `v < 2^n`;
/// for `n = 254` the sum can wrap modulo `p`, so use [`to_bits_le_strict`] to get the unique
/// decomposition. A constant `v` gives constant bits.
///
/// # Errors
/// [`SynthesisError::Unsatisfiable`] for `n > 254` or a constant that does not fit in `n`
/// bits, otherwise whatever the constraint system reports.
pub fn to_bits_le(v: &FpVar<Fr>, n: usize) -> Result<Vec<Boolean<Fr>>, SynthesisError> {
    if n > Fr::MODULUS_BIT_SIZE as usize {
        return Err(SynthesisError::Unsatisfiable);
    }
    if let FpVar::Constant(c) = v {
        if fr_to_biguint(c).bits() > n as u64 {
            return Err(SynthesisError::Unsatisfiable);
        }
        return Ok(fr_bits_le(c, n)
            .into_iter()
            .map(Boolean::constant)
            .collect());
    }
    let cs = v.cs();
    // None in setup mode, where the witness closures are never called.
    let value_bits = v.value().ok().map(|x| fr_bits_le(&x, n));
    let bits = (0..n)
        .map(|i| {
            Boolean::new_witness(cs.clone(), || {
                value_bits
                    .as_ref()
                    .map(|b| b[i])
                    .ok_or(SynthesisError::AssignmentMissing)
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut power = Fr::one();
    let mut sum = FpVar::zero();
    for b in &bits {
        sum += FpVar::from(b.clone()) * power;
        power.double_in_place();
    }
    sum.enforce_equal(v)?;
    Ok(bits)
}

/// Enforces that the integer spelled by the little-endian `bits` is at most the constant
/// `bound`.
///
/// Walking from the most significant bit, `e` says "equal to `bound` so far". Over a run
/// of zero bits of `bound` the constraint `e · Σ run = 0` forbids any one bit while equal
/// (1 constraint per run); over a run of one bits `e` becomes `e ∧ run` (1 constraint for
/// two factors, 2 for more), except for a final run of ones, which needs nothing. So the
/// cost is about the number of runs in `bound`'s binary expansion, not its length.
///
/// # Errors
/// [`SynthesisError::Unsatisfiable`] when all bits are constants spelling a larger value,
/// otherwise whatever the constraint system reports.
pub fn enforce_le_constant(bits: &[Boolean<Fr>], bound: &BigUint) -> Result<(), SynthesisError> {
    if bits.is_constant() {
        let value = bits
            .iter()
            .rev()
            .map(|b| b.value())
            .try_fold(BigUint::zero(), |acc, b| {
                b.map(|b| (acc << 1u8) + u8::from(b))
            })?;
        return if &value <= bound {
            Ok(())
        } else {
            Err(SynthesisError::Unsatisfiable)
        };
    }
    if bound.bits() > bits.len() as u64 {
        // Every value of this many bits is below the bound.
        return Ok(());
    }
    let mut e = FpVar::<Fr>::one();
    let mut hi = bits.len();
    while hi > 0 {
        let c = bound.bit(hi as u64 - 1);
        let mut lo = hi - 1;
        while lo > 0 && bound.bit(lo as u64 - 1) == c {
            lo -= 1;
        }
        let run = &bits[lo..hi];
        if c {
            if lo == 0 {
                break;
            }
            let mut factors = vec![e];
            factors.extend(run.iter().map(|b| FpVar::from(b.clone())));
            e = and_all(factors)?;
        } else {
            let sum = run
                .iter()
                .fold(FpVar::zero(), |acc, b| acc + FpVar::from(b.clone()));
            e.mul_equals(&sum, &FpVar::zero())?;
        }
        hi = lo;
    }
    Ok(())
}

/// The AND of boolean-valued variables: a product for two, `Σ = k` tested with an inverse
/// for more (2 constraints).
fn and_all(factors: Vec<FpVar<Fr>>) -> Result<FpVar<Fr>, SynthesisError> {
    let mut vars = Vec::with_capacity(factors.len());
    for f in factors {
        match f {
            FpVar::Constant(c) if c.is_zero() => return Ok(FpVar::zero()),
            FpVar::Constant(_) => {}
            v => vars.push(v),
        }
    }
    match vars.len() {
        0 => Ok(FpVar::one()),
        1 => Ok(vars.swap_remove(0)),
        2 => Ok(&vars[0] * &vars[1]),
        k => {
            let z = FpVar::constant(Fr::from(k as u64)) - vars.iter().sum::<FpVar<Fr>>();
            let cs = z.cs();
            let out = FpVar::new_witness(cs.clone(), || {
                Ok(if z.value()?.is_zero() {
                    Fr::one()
                } else {
                    Fr::zero()
                })
            })?;
            let inv = FpVar::new_witness(cs, || Ok(z.value()?.inverse().unwrap_or(Fr::ZERO)))?;
            // z ≠ 0 forces out = 0 (second) and then inv = 1/z (first); z = 0 forces out = 1.
            z.mul_equals(&inv, &(FpVar::one() - &out))?;
            z.mul_equals(&out, &FpVar::zero())?;
            Ok(out)
        }
    }
}

/// The bits of `v` given that `v < bound`: `bound - 1` has `m` bits, `v` is decomposed
/// into `m` bits and [`enforce_le_constant`]`(bits, bound - 1)`.
///
/// # Errors
/// [`SynthesisError::Unsatisfiable`] for `bound = 0` or `bound > p`, otherwise as
/// [`to_bits_le`].
pub fn to_bits_le_below(
    v: &FpVar<Fr>,
    bound: &BigUint,
) -> Result<Vec<Boolean<Fr>>, SynthesisError> {
    if bound.bits() == 0 || bound > base_field_modulus() {
        return Err(SynthesisError::Unsatisfiable);
    }
    let max = bound - 1u8;
    let bits = to_bits_le(v, max.bits() as usize)?;
    enforce_le_constant(&bits, &max)?;
    Ok(bits)
}

/// The unique 254 little-endian bits of a field element (circomlib's `Num2Bits_strict`).
///
/// # Errors
/// As [`to_bits_le`].
pub fn to_bits_le_strict(v: &FpVar<Fr>) -> Result<Vec<Boolean<Fr>>, SynthesisError> {
    to_bits_le_below(v, base_field_modulus())
}

/// The 251 little-endian bits of `v`, enforcing `v < l` (a canonical BabyJubJub scalar).
///
/// # Errors
/// As [`to_bits_le`].
pub fn scalar_to_bits_le(v: &FpVar<Fr>) -> Result<Vec<Boolean<Fr>>, SynthesisError> {
    to_bits_le_below(v, subgroup_order())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::babyjubjub::tests::order8_point;
    use ark_relations::gr1cs::{ConstraintSystem, ConstraintSystemRef, SynthesisMode};
    use ark_std::UniformRand;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    fn rng() -> ChaCha20Rng {
        ChaCha20Rng::seed_from_u64(0x6AD6)
    }

    fn witness_point(cs: &ConstraintSystemRef<Fr>, p: Point) -> PointVar {
        PointVar::new_witness(cs.clone(), || Ok(p)).unwrap()
    }

    fn witness_bits(cs: &ConstraintSystemRef<Fr>, k: &BigUint, n: usize) -> Vec<Boolean<Fr>> {
        (0..n)
            .map(|i| Boolean::new_witness(cs.clone(), || Ok(k.bit(i as u64))).unwrap())
            .collect()
    }

    fn random_point(rng: &mut ChaCha20Rng) -> Point {
        Point::base8().mul_scalar_fr(&ark_ed_on_bn254::Fr::rand(rng))
    }

    /// Scalars worth testing at `n` bits: 0, 1, 2, l - 1, l, the largest n-bit value, and
    /// random ones.
    fn scalars(rng: &mut ChaCha20Rng, n: usize) -> Vec<BigUint> {
        let l = subgroup_order();
        let top = (BigUint::one() << n) - 1u8;
        let mut v = vec![
            BigUint::zero(),
            BigUint::one(),
            BigUint::from(2u8),
            l - 1u8,
            l.clone(),
            top.clone(),
            &top - 1u8,
        ];
        for _ in 0..3 {
            v.push(fr_to_biguint(&Fr::rand(rng)) % (&top + 1u8));
        }
        v.retain(|k| k.bits() <= n as u64);
        v
    }

    #[test]
    fn add_double_and_curve_check_match_native_and_cost() {
        let mut rng = rng();
        let t8 = order8_point();
        for _ in 0..4 {
            let p = random_point(&mut rng);
            let q = random_point(&mut rng);
            for (p, q) in [
                (p, q),
                (p, p),
                (p, p.neg()),
                (p, Point::identity()),
                (t8, p),
                (t8, t8),
                (Point::identity(), Point::identity()),
            ] {
                let cs = ConstraintSystem::<Fr>::new_ref();
                let pv = witness_point(&cs, p);
                let qv = witness_point(&cs, q);
                let n0 = cs.num_constraints();
                let sum = pv.add(&qv).unwrap();
                assert_eq!(cs.num_constraints() - n0, ADD_COST);
                assert_eq!(sum.value().unwrap(), p.add(&q));
                let n0 = cs.num_constraints();
                let dbl = pv.double().unwrap();
                assert_eq!(cs.num_constraints() - n0, DOUBLE_COST);
                assert_eq!(dbl.value().unwrap(), p.double());
                let n0 = cs.num_constraints();
                sum.enforce_on_curve().unwrap();
                assert_eq!(cs.num_constraints() - n0, ON_CURVE_COST);
                assert!(cs.is_satisfied().unwrap());
            }
        }
    }

    #[test]
    fn off_curve_point_is_unsatisfied_and_a_wrong_sum_is_caught() {
        let cs = ConstraintSystem::<Fr>::new_ref();
        let p = witness_point(&cs, Point::new(Fr::from(1u8), Fr::from(2u8)));
        p.enforce_on_curve().unwrap();
        assert!(!cs.is_satisfied().unwrap());

        let mut rng = rng();
        let (p, q) = (random_point(&mut rng), random_point(&mut rng));
        let cs = ConstraintSystem::<Fr>::new_ref();
        let sum = witness_point(&cs, p).add(&witness_point(&cs, q)).unwrap();
        let wrong = PointVar::constant(p.add(&q).double());
        sum.enforce_equal(&wrong).unwrap();
        assert!(!cs.is_satisfied().unwrap());
    }

    #[test]
    fn fixed_base_mul_matches_native() {
        let mut rng = rng();
        for n in [1usize, 2, 3, 4, 8, 251, 253, 254] {
            for k in scalars(&mut rng, n) {
                let cs = ConstraintSystem::<Fr>::new_ref();
                let bits = witness_bits(&cs, &k, n);
                let n0 = cs.num_constraints();
                let r = PointVar::base8_mul_le(&bits).unwrap();
                assert_eq!(cs.num_constraints() - n0, fixed_base_mul_cost(n), "n = {n}");
                assert_eq!(
                    r.value().unwrap(),
                    Point::base8().mul_scalar(&k),
                    "n = {n}, k = {k}"
                );
                r.enforce_equal(&PointVar::constant(Point::base8().mul_scalar(&k)))
                    .unwrap();
                assert!(cs.is_satisfied().unwrap());
            }
        }
        assert_eq!(fixed_base_mul_cost(251), 831);
        // Any base, including one outside the subgroup.
        let t8 = order8_point();
        let cs = ConstraintSystem::<Fr>::new_ref();
        let k = BigUint::from(12345u32);
        let r = PointVar::fixed_base_mul_le(&t8, &witness_bits(&cs, &k, 16)).unwrap();
        assert_eq!(r.value().unwrap(), t8.mul_scalar(&k));
    }

    #[test]
    fn var_base_mul_matches_native() {
        let mut rng = rng();
        let t8 = order8_point();
        for n in [1usize, 2, 3, 4, 5, 251, 254] {
            for k in scalars(&mut rng, n) {
                let p = random_point(&mut rng);
                for base in [p, p.add(&t8), Point::identity()] {
                    let cs = ConstraintSystem::<Fr>::new_ref();
                    let pv = witness_point(&cs, base);
                    let bits = witness_bits(&cs, &k, n);
                    let n0 = cs.num_constraints();
                    let r = pv.scalar_mul_le(&bits).unwrap();
                    assert_eq!(cs.num_constraints() - n0, var_base_mul_cost(n), "n = {n}");
                    assert_eq!(r.value().unwrap(), base.mul_scalar(&k), "n = {n}, k = {k}");
                    assert!(cs.is_satisfied().unwrap());
                }
            }
        }
        assert_eq!(var_base_mul_cost(254), 2541);
    }

    #[test]
    fn var_base_mul_with_a_wrong_witness_is_unsatisfied() {
        let mut rng = rng();
        let p = random_point(&mut rng);
        let k = fr_to_biguint(&Fr::rand(&mut rng));
        let cs = ConstraintSystem::<Fr>::new_ref();
        let r = witness_point(&cs, p)
            .scalar_mul_le(&witness_bits(&cs, &k, 254))
            .unwrap();
        r.enforce_equal(&PointVar::constant(p.mul_scalar(&(&k + 1u8))))
            .unwrap();
        assert!(!cs.is_satisfied().unwrap());
    }

    #[test]
    fn constant_points_and_equality() {
        let mut rng = rng();
        let p = random_point(&mut rng);
        let q = random_point(&mut rng);
        let cs = ConstraintSystem::<Fr>::new_ref();
        let pv = witness_point(&cs, p);
        let c = PointVar::constant(p);
        assert!(pv.is_eq(&c).unwrap().value().unwrap());
        assert!(!pv.is_eq(&PointVar::constant(q)).unwrap().value().unwrap());
        pv.enforce_equal(&c).unwrap();
        pv.enforce_not_equal(&PointVar::constant(q)).unwrap();
        // Constant arithmetic stays constant and free.
        let n0 = cs.num_constraints();
        let s = c.add(&PointVar::constant(q)).unwrap().double().unwrap();
        assert!(s.is_constant());
        assert_eq!(s.value().unwrap(), p.add(&q).double());
        let bits = witness_bits(&cs, &BigUint::from(77u8), 7);
        let n1 = cs.num_constraints();
        let m = c.scalar_mul_le(&bits).unwrap();
        assert_eq!(cs.num_constraints() - n1, fixed_base_mul_cost(7));
        assert_eq!(m.value().unwrap(), p.mul_scalar(&BigUint::from(77u8)));
        assert_eq!(n1 - n0, 7);
        assert!(cs.is_satisfied().unwrap());
        let cs2 = ConstraintSystem::<Fr>::new_ref();
        witness_point(&cs2, p)
            .enforce_equal(&PointVar::constant(q))
            .unwrap();
        assert!(!cs2.is_satisfied().unwrap());
    }

    #[test]
    fn strict_decompositions() {
        let l = subgroup_order().clone();
        let p = base_field_modulus().clone();
        let check = |v: Fr, below: &BigUint, ok: bool| {
            let cs = ConstraintSystem::<Fr>::new_ref();
            let var = FpVar::new_witness(cs.clone(), || Ok(v)).unwrap();
            let bits = to_bits_le_below(&var, below).unwrap();
            assert_eq!(cs.is_satisfied().unwrap(), ok, "v = {v}, below {below}");
            if ok {
                let got = bits
                    .iter()
                    .enumerate()
                    .filter(|(_, b)| b.value().unwrap())
                    .fold(BigUint::zero(), |acc, (i, _)| acc + (BigUint::one() << i));
                assert_eq!(got, fr_to_biguint(&v));
            }
        };
        let fr = |x: &BigUint| Fr::from(x.clone());
        check(Fr::zero(), &l, true);
        check(fr(&(&l - 1u8)), &l, true);
        check(fr(&l), &l, false);
        check(fr(&(&l + 1u8)), &l, false);
        check(fr(&((BigUint::one() << 251) - 1u8)), &l, false);
        check(-Fr::one(), &p, true);
        check(Fr::zero(), &p, true);
        // Small bounds exercise every run shape.
        for bound in 1u32..70 {
            for v in 0..bound + 3 {
                check(Fr::from(v), &BigUint::from(bound), v < bound);
            }
        }
        // A bound wider than the bits constrains nothing.
        let cs = ConstraintSystem::<Fr>::new_ref();
        let bits = witness_bits(&cs, &BigUint::from(7u8), 3);
        let n0 = cs.num_constraints();
        enforce_le_constant(&bits, &BigUint::from(8u8)).unwrap();
        assert_eq!(cs.num_constraints(), n0);
        enforce_le_constant(&bits, &BigUint::from(6u8)).unwrap();
        assert!(!cs.is_satisfied().unwrap());
        // Constant bits are checked at synthesis.
        let seven: Vec<Boolean<Fr>> = [true, true, true].map(Boolean::constant).to_vec();
        assert!(enforce_le_constant(&seven, &BigUint::from(7u8)).is_ok());
        assert_eq!(
            enforce_le_constant(&seven, &BigUint::from(6u8)),
            Err(SynthesisError::Unsatisfiable)
        );
        // A value that fits in 254 bits only by wrapping: x + p's bits claimed for x.
        let cs = ConstraintSystem::<Fr>::new_ref();
        let x = Fr::from(5u8);
        let var = FpVar::new_witness(cs.clone(), || Ok(x)).unwrap();
        let alias = &p + 5u8;
        let bits = witness_bits(&cs, &alias, 254);
        let mut sum = FpVar::zero();
        let mut pow = Fr::one();
        for b in &bits {
            sum += FpVar::from(b.clone()) * pow;
            pow.double_in_place();
        }
        sum.enforce_equal(&var).unwrap();
        assert!(cs.is_satisfied().unwrap(), "the alias passes the plain sum");
        enforce_le_constant(&bits, &(&p - 1u8)).unwrap();
        assert!(!cs.is_satisfied().unwrap(), "but not the strict check");
    }

    #[test]
    fn decomposition_costs() {
        let cost = |bound: &BigUint| {
            let cs = ConstraintSystem::<Fr>::new_ref();
            cs.set_mode(SynthesisMode::Setup);
            let var = FpVar::new_witness(cs.clone(), || Ok(Fr::zero())).unwrap();
            to_bits_le_below(&var, bound).unwrap();
            cs.num_constraints()
        };
        let s = cost(subgroup_order());
        let h = cost(base_field_modulus());
        // Bits, one sum, and the comparison, which costs about one constraint per run of
        // equal bits in the bound.
        assert_eq!((s, h), (SCALAR_BITS_COST, STRICT_BITS_COST));
    }
}
