//! The EdDSA-Poseidon verifier as an R1CS gadget, following circomlib's
//! `EdDSAPoseidonVerifier` (see the [module documentation](super) for the scheme).
//!
//! [`enforce_verify`] enforces, when `enabled` is true:
//!
//! 1. `S < l`: `S` is decomposed into 251 bits and compared with `l - 1` (circomlib:
//!    `Num2Bits(253)` + `CompConstant`);
//! 2. `R8` and `A` are on the curve (circomlib checks neither; `R8` is then forced into the
//!    prime-order subgroup by the equation, see below);
//! 3. `8·A` is not the identity (circomlib's `IsZero(dbl3.xout)`): this rejects the identity
//!    and every small-order key, which would verify any message;
//! 4. `hm = Poseidon(R8.x, R8.y, A.x, A.y, msg)`, decomposed into its unique 254 bits
//!    (`Num2Bits_strict`);
//! 5. `Base8·S = R8 + hm·(8·A)`, with `8·A` by three doublings, `hm·(8A)` by
//!    variable-base multiplication and `Base8·S` by fixed-base multiplication.
//!
//! Since `8·A` and `Base8·S` lie in the prime-order subgroup, the equation forces `R8` into
//! it too. What the gadget cannot see (without a full scalar multiplication by `l`) is a
//! small-order component in `A` itself: `A` and `A + T` (`T` of order dividing 8) accept the
//! same signatures. Keys must therefore be checked natively
//! ([`super::PublicKey::validate`]) before they enter the state, which is what makes the
//! gadget accept exactly what [`super::verify`] accepts.
//!
//! # Disabled instances
//!
//! When `enabled` is false, the gadget replaces its inputs by the dummy of
//! [`dummy_witness`] (`A = R8 = identity`, `S = 0`) before any check (five constraints), so
//! the constraints are satisfiable whatever the caller assigns to `pk`, `r8`, `s` and `msg`
//! — padding slots can keep their own values. Passing the dummy explicitly is fine as well.
//!
//! # Cost
//!
//! [`constraint_cost`] counts it and the test `verifier_cost_is_pinned` pins the number,
//! [`VERIFIER_CONSTRAINTS`] = 4,516 (circomlib's `EdDSAPoseidonVerifier` is about 5,500):
//!
//! | part | constraints |
//! |---|---|
//! | dummy substitution when disabled | 5 |
//! | `S` into 251 bits, `S ≤ l - 1` | 403 |
//! | `R8`, `A` on the curve | 6 |
//! | `8·A` (three doublings), `x(8A) ≠ 0` | 16 |
//! | Poseidon of 5 inputs | 321 |
//! | `hm` into its unique 254 bits | 385 |
//! | `hm·(8A)`, variable base, 254 bits | 2,541 |
//! | `R8 + hm·(8A)` | 6 |
//! | `Base8·S`, fixed base, 251 bits | 831 |
//! | final equality | 2 |

use ark_bn254::Fr;
use ark_ff::{AdditiveGroup, Field, Zero};
use ark_r1cs_std::{fields::fp::FpVar, prelude::*};
use ark_relations::gr1cs::{ConstraintSystem, SynthesisError, SynthesisMode};

use crate::babyjubjub::Point;
use crate::babyjubjub::gadget::{PointVar, scalar_to_bits_le, to_bits_le_strict};
use crate::poseidon;

/// The number of constraints [`enforce_verify`] adds (with every input a variable), as
/// [`constraint_cost`] measures it.
pub const VERIFIER_CONSTRAINTS: usize = 4_516;

/// Enforces that `(r8, s)` is a valid EdDSA-Poseidon signature by `pk` on `msg` when
/// `enabled` is true (see the [module documentation](self) for the checks); when it is
/// false the constraints hold for any assignment.
///
/// `s` is the signature scalar as a field element (a canonical `S < l` always fits).
///
/// # Errors
/// Whatever the constraint system reports (only synthesis failures: an invalid signature
/// makes the system unsatisfied, it is not an error here).
pub fn enforce_verify(
    enabled: &Boolean<Fr>,
    pk: &PointVar,
    msg: &FpVar<Fr>,
    r8: &PointVar,
    s: &FpVar<Fr>,
) -> Result<(), SynthesisError> {
    // Disabled: verify the dummy instead, which always passes.
    let identity = PointVar::identity();
    let pk = PointVar::conditionally_select(enabled, pk, &identity)?;
    let r8 = PointVar::conditionally_select(enabled, r8, &identity)?;
    let s = enabled.select(s, &FpVar::zero())?;

    // 1. S < l.
    let s_bits = scalar_to_bits_le(&s)?;
    // 2. Both points on the curve.
    r8.enforce_on_curve()?;
    pk.enforce_on_curve()?;
    // 3. 8A is not the identity: x(8A) has an inverse when enabled (one constraint,
    //    x · inv = enabled; a disabled instance sets inv = 0).
    let a8 = pk.double()?.double()?.double()?;
    let cs = a8.x.cs().or(enabled.cs());
    let inv = if cs.is_none() {
        if enabled.value()? && a8.x.value()?.is_zero() {
            return Err(SynthesisError::Unsatisfiable);
        }
        FpVar::constant(a8.x.value()?.inverse().unwrap_or(Fr::ZERO))
    } else {
        FpVar::new_witness(cs, || {
            Ok(if enabled.value()? {
                a8.x.value()?.inverse().unwrap_or(Fr::ZERO)
            } else {
                Fr::ZERO
            })
        })?
    };
    a8.x.mul_equals(&inv, &FpVar::from(enabled.clone()))?;
    // 4. hm and its unique bits.
    let hm = poseidon::gadget::hash(&[
        r8.x.clone(),
        r8.y.clone(),
        pk.x.clone(),
        pk.y.clone(),
        msg.clone(),
    ])?;
    let hm_bits = to_bits_le_strict(&hm)?;
    // 5. Base8·S = R8 + hm·(8A).
    let right = r8.add(&a8.scalar_mul_le(&hm_bits)?)?;
    let left = PointVar::base8_mul_le(&s_bits)?;
    left.enforce_equal(&right)
}

/// A witness for a disabled instance: `(pk, r8, s)` = (identity, identity, 0), with any
/// message. It is also what [`enforce_verify`] substitutes internally when disabled.
pub fn dummy_witness() -> (Point, Point, Fr) {
    (Point::identity(), Point::identity(), Fr::zero())
}

/// The number of constraints of [`enforce_verify`] with all inputs variables, measured on a
/// fresh constraint system in setup mode.
///
/// # Errors
/// Whatever the constraint system reports.
pub fn constraint_cost() -> Result<usize, SynthesisError> {
    let cs = ConstraintSystem::<Fr>::new_ref();
    cs.set_mode(SynthesisMode::Setup);
    let (pk, r8, s) = dummy_witness();
    let enabled = Boolean::new_witness(cs.clone(), || Ok(false))?;
    let pk = PointVar::new_witness(cs.clone(), || Ok(pk))?;
    let r8 = PointVar::new_witness(cs.clone(), || Ok(r8))?;
    let msg = FpVar::new_witness(cs.clone(), || Ok(Fr::zero()))?;
    let s = FpVar::new_witness(cs.clone(), || Ok(s))?;
    let before = cs.num_constraints();
    enforce_verify(&enabled, &pk, &msg, &r8, &s)?;
    Ok(cs.num_constraints() - before)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::babyjubjub::gadget::{
        ADD_COST, DOUBLE_COST, ON_CURVE_COST, SCALAR_BITS_COST, STRICT_BITS_COST,
        fixed_base_mul_cost, var_base_mul_cost,
    };
    use crate::babyjubjub::subgroup_order;
    use crate::eddsa::{PrivateKey, Signature, s_as_fr};
    use ark_relations::gr1cs::ConstraintSystemRef;
    use ark_std::UniformRand;
    use num_bigint::BigUint;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    fn rng() -> ChaCha20Rng {
        ChaCha20Rng::seed_from_u64(0x5161)
    }

    /// Builds a system with every input a witness and reports whether it is satisfied.
    fn satisfied(enabled: bool, pk: Point, msg: Fr, r8: Point, s: Fr) -> bool {
        let cs = ConstraintSystem::<Fr>::new_ref();
        run(&cs, enabled, pk, msg, r8, s);
        cs.is_satisfied().unwrap()
    }

    fn run(cs: &ConstraintSystemRef<Fr>, enabled: bool, pk: Point, msg: Fr, r8: Point, s: Fr) {
        let enabled = Boolean::new_witness(cs.clone(), || Ok(enabled)).unwrap();
        let pk = PointVar::new_witness(cs.clone(), || Ok(pk)).unwrap();
        let r8 = PointVar::new_witness(cs.clone(), || Ok(r8)).unwrap();
        let msg = FpVar::new_witness(cs.clone(), || Ok(msg)).unwrap();
        let s = FpVar::new_witness(cs.clone(), || Ok(s)).unwrap();
        enforce_verify(&enabled, &pk, &msg, &r8, &s).unwrap();
    }

    fn signed(rng: &mut ChaCha20Rng) -> (Point, Fr, Signature) {
        let key = PrivateKey::random(rng);
        let msg = Fr::rand(rng);
        (key.public_key().0, msg, key.sign(msg))
    }

    #[test]
    fn valid_signatures_satisfy() {
        let mut rng = rng();
        for _ in 0..3 {
            let (pk, msg, sig) = signed(&mut rng);
            assert!(satisfied(true, pk, msg, sig.r8, s_as_fr(&sig).unwrap()));
            // A valid signature also passes when disabled.
            assert!(satisfied(false, pk, msg, sig.r8, s_as_fr(&sig).unwrap()));
        }
    }

    #[test]
    fn tampered_signatures_are_unsatisfied_when_enabled() {
        let mut rng = rng();
        let (pk, msg, sig) = signed(&mut rng);
        let s = s_as_fr(&sig).unwrap();
        let one = Fr::from(1u8);
        assert!(!satisfied(true, pk, msg + one, sig.r8, s), "message");
        assert!(!satisfied(true, pk, msg, sig.r8, s + one), "S");
        let other_r8 = sig.r8.add(&Point::base8());
        assert!(!satisfied(true, pk, msg, other_r8, s), "R8 on the curve");
        let off_r8 = Point::new(sig.r8.x + one, sig.r8.y);
        assert!(!satisfied(true, pk, msg, off_r8, s), "R8 off the curve");
        let (other_pk, _, _) = signed(&mut rng);
        assert!(!satisfied(true, other_pk, msg, sig.r8, s), "key");
        // S + l: same point, but not canonical.
        let s_plus_l = Fr::from(&sig.s + subgroup_order());
        assert_eq!(
            Point::base8().mul_scalar(&(&sig.s + subgroup_order())),
            Point::base8().mul_scalar(&sig.s)
        );
        assert!(!satisfied(true, pk, msg, sig.r8, s_plus_l), "S + l");
    }

    #[test]
    fn identity_key_is_rejected_when_enabled() {
        // With A = identity the equation is Base8·S = R8 for any message.
        let s = BigUint::from(99u8);
        let r8 = Point::base8().mul_scalar(&s);
        let msg = Fr::from(5u8);
        assert!(!satisfied(
            true,
            Point::identity(),
            msg,
            r8,
            Fr::from(s.clone())
        ));
        // A small-order key is caught by the same check (8A = identity).
        let t8 = crate::babyjubjub::tests::order8_point();
        assert!(!satisfied(true, t8, msg, r8, Fr::from(s)));
    }

    #[test]
    fn disabled_instances_are_satisfiable_with_any_witness() {
        let mut rng = rng();
        let (pk, r8, s) = dummy_witness();
        assert!(satisfied(false, pk, Fr::rand(&mut rng), r8, s));
        // Garbage: off-curve points and an S far above l.
        let junk = Point::new(Fr::from(3u8), Fr::from(4u8));
        assert!(satisfied(
            false,
            junk,
            Fr::rand(&mut rng),
            junk,
            -Fr::from(1u8)
        ));
        // ...which the enabled verifier refuses, as it does the dummy.
        assert!(!satisfied(
            true,
            junk,
            Fr::rand(&mut rng),
            junk,
            -Fr::from(1u8)
        ));
        assert!(!satisfied(true, pk, Fr::zero(), r8, s));
    }

    #[test]
    fn verifier_cost_is_pinned() {
        let cost = constraint_cost().unwrap();
        // The table in the module documentation.
        let parts = [
            5,
            SCALAR_BITS_COST,
            2 * ON_CURVE_COST,
            3 * DOUBLE_COST + 1,
            321,
            STRICT_BITS_COST,
            var_base_mul_cost(254),
            ADD_COST,
            fixed_base_mul_cost(251),
            2,
        ];
        assert_eq!(cost, parts.iter().sum::<usize>());
        assert_eq!(
            cost, VERIFIER_CONSTRAINTS,
            "update VERIFIER_CONSTRAINTS and the docs"
        );
        assert!(cost < 5_500);
        // The same count in proving mode.
        let mut rng = rng();
        let (pk, msg, sig) = signed(&mut rng);
        let cs = ConstraintSystem::<Fr>::new_ref();
        run(&cs, true, pk, msg, sig.r8, s_as_fr(&sig).unwrap());
        // 1 boolean + no constraints for the other allocations.
        assert_eq!(cs.num_constraints(), cost + 1);
    }
}
