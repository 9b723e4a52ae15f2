//! How iden3's files and hashes write BN254 field elements and points.
//!
//! - **LEM** (`.ptau`, `.zkey` on disk): each coordinate in Montgomery form (`v·2²⁵⁶ mod p`),
//!   32 bytes little-endian; a G1 point is `x ‖ y`, a G2 point `x.c0 ‖ x.c1 ‖ y.c0 ‖ y.c1`;
//!   the point at infinity is all zeros. arkworks keeps field elements in the same Montgomery
//!   form, so reading is a copy of limbs and a range check.
//! - **U** (every hash: snarkjs's `toRprUncompressed`): each coordinate canonical and
//!   big-endian; G2 as `x.c1 ‖ x.c0 ‖ y.c1 ‖ y.c0`; infinity all zeros.
//! - **LE** (`.r1cs`, `.wtns`, header integers): canonical values, 32 bytes little-endian.
//!
//! Reading a point checks its coordinates are below the modulus and that it is on the curve;
//! G2 points are also checked to lie in the prime-order subgroup (G1 has cofactor 1).

use ark_bn254::{Fq, Fq2, Fr, G1Affine, G2Affine};
use ark_ec::AffineRepr;
use ark_ff::{BigInt, BigInteger, PrimeField, Zero};
use rayon::prelude::*;

use crate::FormatError;

/// Bytes of one LEM G1 point.
pub const G1_LEN: usize = 64;
/// Bytes of one LEM G2 point.
pub const G2_LEN: usize = 128;

fn limbs(bytes: &[u8]) -> [u64; 4] {
    let mut l = [0u64; 4];
    for (i, c) in bytes.chunks_exact(8).take(4).enumerate() {
        l[i] = u64::from_le_bytes(c.try_into().expect("8 bytes"));
    }
    l
}

fn limb_bytes(l: &[u64; 4]) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, x) in l.iter().enumerate() {
        out[i * 8..i * 8 + 8].copy_from_slice(&x.to_le_bytes());
    }
    out
}

/// An Fq coordinate from its 32 LEM bytes (`None` when the value is not below `q`).
fn fq_lem(bytes: &[u8]) -> Option<Fq> {
    let b = BigInt::new(limbs(bytes));
    (b < Fq::MODULUS).then(|| Fq::new_unchecked(b))
}

fn fq_to_lem(x: &Fq) -> [u8; 32] {
    limb_bytes(&x.0.0)
}

/// A scalar from 32 little-endian bytes of its canonical value.
pub fn fr_from_le(bytes: &[u8]) -> Option<Fr> {
    Fr::from_bigint(BigInt::new(limbs(bytes)))
}

/// The 32 little-endian bytes of a scalar's canonical value.
pub fn fr_to_le(x: &Fr) -> [u8; 32] {
    limb_bytes(&x.into_bigint().0)
}

/// The 32 little-endian bytes of an Fq element's canonical value.
pub fn fq_to_le(x: &Fq) -> [u8; 32] {
    limb_bytes(&x.into_bigint().0)
}

/// An Fr element from LEM bytes (the Montgomery form snarkjs keeps in memory).
pub fn fr_from_lem(bytes: &[u8]) -> Option<Fr> {
    let b = BigInt::new(limbs(bytes));
    (b < Fr::MODULUS).then(|| Fr::new_unchecked(b))
}

/// A G1 point from 64 LEM bytes.
///
/// # Errors
/// A coordinate not below `q`, or a point off the curve.
pub fn g1_from_lem(bytes: &[u8]) -> Result<G1Affine, &'static str> {
    if bytes.iter().all(|&b| b == 0) {
        return Ok(G1Affine::zero());
    }
    let (Some(x), Some(y)) = (fq_lem(&bytes[..32]), fq_lem(&bytes[32..64])) else {
        return Err("a coordinate is not below the base field modulus");
    };
    let p = G1Affine::new_unchecked(x, y);
    if p.is_on_curve() {
        Ok(p)
    } else {
        Err("a G1 point is not on the curve")
    }
}

/// A G2 point from 128 LEM bytes, checked on the curve and in the subgroup.
///
/// # Errors
/// A coordinate not below `q`, a point off the curve or outside the subgroup.
pub fn g2_from_lem(bytes: &[u8]) -> Result<G2Affine, &'static str> {
    let p = g2_on_curve(bytes)?;
    if !p.is_in_correct_subgroup_assuming_on_curve() {
        return Err("a G2 point is not in the prime-order subgroup");
    }
    Ok(p)
}

/// A G2 point from 128 LEM bytes, checked on the curve only (the subgroup check, about
/// a scalar multiplication, is left to the caller: see [`g2_in_subgroup`]).
///
/// # Errors
/// A coordinate not below `q`, or a point off the curve.
pub fn g2_on_curve(bytes: &[u8]) -> Result<G2Affine, &'static str> {
    if bytes.iter().all(|&b| b == 0) {
        return Ok(G2Affine::zero());
    }
    let c = |i: usize| fq_lem(&bytes[i * 32..i * 32 + 32]);
    let (Some(x0), Some(x1), Some(y0), Some(y1)) = (c(0), c(1), c(2), c(3)) else {
        return Err("a coordinate is not below the base field modulus");
    };
    let p = G2Affine::new_unchecked(Fq2::new(x0, x1), Fq2::new(y0, y1));
    if !p.is_on_curve() {
        return Err("a G2 point is not on the curve");
    }
    Ok(p)
}

/// Checks that the points of `points` all lie in G2's prime-order subgroup, in batch:
/// four random combinations `Σρᵢ·Pᵢ` (64-bit `ρ`), each checked in the subgroup. A point
/// with a component outside the subgroup leaves one in a combination except with
/// probability at most `1/10069` per round (the smallest prime factor of G2's cofactor),
/// so below `10⁻¹⁶` for the four; a few MSMs where one check per point costs a scalar
/// multiplication each.
///
/// # Errors
/// A message naming `what`.
pub fn g2_in_subgroup_batched<R: rand::RngCore>(
    points: &[G2Affine],
    what: &str,
    rng: &mut R,
) -> Result<(), FormatError> {
    use ark_ec::{CurveGroup, VariableBaseMSM};
    for _ in 0..4 {
        let r: Vec<ark_bn254::Fr> = (0..points.len())
            .map(|_| ark_bn254::Fr::from(rng.next_u64()))
            .collect();
        let sum = ark_bn254::G2Projective::msm_unchecked(points, &r).into_affine();
        if !sum.is_in_correct_subgroup_assuming_on_curve() {
            return Err(FormatError::new(format!(
                "{what}: a G2 point is not in the prime-order subgroup"
            )));
        }
    }
    Ok(())
}

/// Checks that every point of `points` lies in G2's prime-order subgroup.
///
/// # Errors
/// The index of the first that does not, in a message naming `what`.
pub fn g2_in_subgroup(points: &[G2Affine], what: &str) -> Result<(), FormatError> {
    match points
        .par_iter()
        .position_first(|p| !p.is_in_correct_subgroup_assuming_on_curve())
    {
        None => Ok(()),
        Some(i) => Err(FormatError::new(format!(
            "{what}, point {i}: a G2 point is not in the prime-order subgroup"
        ))),
    }
}

/// The 64 LEM bytes of a G1 point.
pub fn g1_to_lem(p: &G1Affine) -> [u8; G1_LEN] {
    let mut out = [0u8; G1_LEN];
    if let Some((x, y)) = p.xy() {
        out[..32].copy_from_slice(&fq_to_lem(&x));
        out[32..].copy_from_slice(&fq_to_lem(&y));
    }
    out
}

/// The 128 LEM bytes of a G2 point.
pub fn g2_to_lem(p: &G2Affine) -> [u8; G2_LEN] {
    let mut out = [0u8; G2_LEN];
    if let Some((x, y)) = p.xy() {
        for (i, c) in [x.c0, x.c1, y.c0, y.c1].iter().enumerate() {
            out[i * 32..i * 32 + 32].copy_from_slice(&fq_to_lem(c));
        }
    }
    out
}

fn fq_be(x: &Fq) -> [u8; 32] {
    let mut b = fq_to_le(x);
    b.reverse();
    b
}

/// The U form of a G1 point (what snarkjs hashes).
pub fn g1_u(p: &G1Affine) -> [u8; 64] {
    let mut out = [0u8; 64];
    if let Some((x, y)) = p.xy() {
        out[..32].copy_from_slice(&fq_be(&x));
        out[32..].copy_from_slice(&fq_be(&y));
    }
    out
}

/// The U form of a G2 point: `x.c1 ‖ x.c0 ‖ y.c1 ‖ y.c0`, big-endian.
pub fn g2_u(p: &G2Affine) -> [u8; 128] {
    let mut out = [0u8; 128];
    if let Some((x, y)) = p.xy() {
        for (i, c) in [x.c1, x.c0, y.c1, y.c0].iter().enumerate() {
            out[i * 32..i * 32 + 32].copy_from_slice(&fq_be(c));
        }
    }
    out
}

/// Parses `count` LEM G1 points from `bytes` (exactly that many), in parallel.
///
/// # Errors
/// A wrong length, or the first bad point by index, in a message naming `what`.
pub fn g1_array(bytes: &[u8], count: usize, what: &str) -> Result<Vec<G1Affine>, FormatError> {
    points(bytes, count, G1_LEN, what, g1_from_lem)
}

/// Parses `count` LEM G2 points from `bytes`, in parallel, each checked in the subgroup
/// when `subgroup` (else on the curve only).
///
/// # Errors
/// As [`g1_array`].
pub fn g2_array(
    bytes: &[u8],
    count: usize,
    what: &str,
    subgroup: bool,
) -> Result<Vec<G2Affine>, FormatError> {
    let parse = if subgroup { g2_from_lem } else { g2_on_curve };
    points(bytes, count, G2_LEN, what, parse)
}

fn points<P: Send>(
    bytes: &[u8],
    count: usize,
    size: usize,
    what: &str,
    parse: fn(&[u8]) -> Result<P, &'static str>,
) -> Result<Vec<P>, FormatError> {
    if count.checked_mul(size) != Some(bytes.len()) {
        return Err(FormatError::new(format!(
            "{what}: {} bytes where {count} points of {size} bytes were expected",
            bytes.len()
        )));
    }
    bytes
        .par_chunks_exact(size)
        .enumerate()
        .map(|(i, c)| parse(c).map_err(|e| FormatError::new(format!("{what}, point {i}: {e}"))))
        .collect()
}

/// LEM bytes of G1 points, concatenated.
pub fn g1_bytes(points: &[G1Affine]) -> Vec<u8> {
    let mut out = vec![0u8; points.len() * G1_LEN];
    out.par_chunks_exact_mut(G1_LEN)
        .zip(points.par_iter())
        .for_each(|(o, p)| o.copy_from_slice(&g1_to_lem(p)));
    out
}

/// LEM bytes of G2 points, concatenated.
pub fn g2_bytes(points: &[G2Affine]) -> Vec<u8> {
    let mut out = vec![0u8; points.len() * G2_LEN];
    out.par_chunks_exact_mut(G2_LEN)
        .zip(points.par_iter())
        .for_each(|(o, p)| o.copy_from_slice(&g2_to_lem(p)));
    out
}

/// U bytes of G1 points, concatenated (for hashing).
pub fn g1_u_bytes(points: &[G1Affine]) -> Vec<u8> {
    let mut out = vec![0u8; points.len() * 64];
    out.par_chunks_exact_mut(64)
        .zip(points.par_iter())
        .for_each(|(o, p)| o.copy_from_slice(&g1_u(p)));
    out
}

/// U bytes of G2 points, concatenated (for hashing).
pub fn g2_u_bytes(points: &[G2Affine]) -> Vec<u8> {
    let mut out = vec![0u8; points.len() * 128];
    out.par_chunks_exact_mut(128)
        .zip(points.par_iter())
        .for_each(|(o, p)| o.copy_from_slice(&g2_u(p)));
    out
}

/// The 32 little-endian bytes of a modulus (the header field of every iden3 file).
pub fn modulus_le<F: PrimeField<BigInt = BigInt<4>>>() -> [u8; 32] {
    limb_bytes(&F::MODULUS.0)
}

/// Whether a canonical Fq value is "negative" in ffjavascript's sense: above `(q-1)/2`.
pub fn fq_is_negative(x: &Fq) -> bool {
    let mut half = Fq::MODULUS;
    half.div2();
    x.into_bigint() > half
}

/// ffjavascript's sign of an Fq2 element: that of `c1`, or of `c0` when `c1` is zero.
pub fn fq2_is_negative(x: &Fq2) -> bool {
    if x.c1.is_zero() {
        fq_is_negative(&x.c0)
    } else {
        fq_is_negative(&x.c1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_ec::CurveGroup;
    use ark_ff::{One, UniformRand};
    use rand::SeedableRng;

    #[test]
    fn lem_round_trips_and_matches_the_spec() {
        let g = G1Affine::generator();
        let b = g1_to_lem(&g);
        // x = 1 in Montgomery form is 2²⁵⁶ mod q.
        assert_eq!(fq_lem(&b[..32]), Some(Fq::one()));
        assert_eq!(g1_from_lem(&b).unwrap(), g);
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        let p = (ark_bn254::G2Projective::rand(&mut rng)).into_affine();
        assert_eq!(g2_from_lem(&g2_to_lem(&p)).unwrap(), p);
        assert!(g1_from_lem(&[0u8; 64]).unwrap().is_zero());
        let mut off = b;
        off[40] ^= 1;
        assert!(g1_from_lem(&off).is_err());
        // The G2 generator's U form (from snarkjs).
        let u = g2_u(&G2Affine::generator());
        assert_eq!(
            hex::encode(u),
            "198e9393920d483a7260bfb731fb5d25f1aa493335a9e71297e485b7aef312c2\
             1800deef121f1e76426a00665e5c4479674322d4f75edadd46debd5cd992f6ed\
             090689d0585ff075ec9e99ad690c3395bc4b313370b38ef355acdadcd122975b\
             12c85ea5db8c6deb4aab71808dcb408fe3d1e7690c43d37b4ce6cc0166fa7daa"
        );
    }
}
