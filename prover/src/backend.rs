//! The kernels a Groth16 prover spends its time in, behind traits a CPU or a GPU implements.
//!
//! - [`MsmBackend`]: multi-scalar multiplication `Σ sᵢ·Pᵢ` over *fixed* bases. The bases of a
//!   proving key never change between proofs, so a backend first [`prepare`s](MsmBackend::prepare)
//!   them once (a GPU uploads them and keeps them resident; a CPU may precompute) and then
//!   runs any number of MSMs against them. An MSM names a sub-range of the prepared bases and
//!   returns a partial sum, so one large MSM can be sharded across workers by base range
//!   and the parts added (the split-proof mode of DIZK, Wu et al. 2018).
//! - [`NttBackend`]: the number-theoretic transform over a multiplicative subgroup of the
//!   scalar field, its inverse, and both on a coset, which is what the QAP quotient `H` of
//!   Groth16 needs.
//!
//! [`Backend`] bundles the three the BN254 prover needs; every type implementing the parts
//! implements it.

use std::ops::Range;

use ark_ec::short_weierstrass::{Affine, Projective, SWCurveConfig};
use ark_ff::FftField;
use rayon::prelude::*;

/// Errors a backend reports. Each is about the caller's input or the device, never a bug.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// The MSM asked for bases outside the prepared set.
    #[error("MSM range {start}..{end} is not within the {len} prepared bases")]
    RangeOutOfBounds {
        /// First base asked for.
        start: usize,
        /// One past the last base asked for.
        end: usize,
        /// Number of prepared bases.
        len: usize,
    },
    /// The MSM got a different number of scalars than bases in its range.
    #[error("MSM got {scalars} scalars for a range of {bases} bases")]
    LengthMismatch {
        /// Scalars given.
        scalars: usize,
        /// Bases in the range.
        bases: usize,
    },
    /// More bases than the backend can index.
    #[error("{0} bases are more than this backend supports")]
    TooManyBases(usize),
    /// An NTT size that is not a power of two (zero included).
    #[error("NTT size {0} is not a power of two")]
    NotPowerOfTwo(usize),
    /// An NTT larger than the field's largest power-of-two subgroup.
    #[error("NTT size {0} is larger than the field's two-adic subgroup")]
    NttTooLarge(usize),
    /// A coset shift of zero, which does not define a coset.
    #[error("coset shift must be non-zero")]
    ZeroShift,
    /// The device ran out of memory: retry smaller, or fall back to another backend.
    #[error("backend out of memory: {0}")]
    OutOfMemory(String),
    /// Any other device failure.
    #[error("backend device error: {0}")]
    Device(String),
}

/// Multi-scalar multiplication over fixed bases on the short-Weierstrass curve `P`.
pub trait MsmBackend<P: SWCurveConfig>: Send + Sync {
    /// Bases in the backend's own form (resident on a device, or with precomputation).
    type Bases: Send + Sync;

    /// Takes ownership of `bases` and prepares them for [`MsmBackend::msm`]. Called once per
    /// proving key. Points at infinity are allowed and contribute nothing.
    ///
    /// # Errors
    /// [`BackendError::TooManyBases`], or a device error such as
    /// [`BackendError::OutOfMemory`].
    fn prepare(&self, bases: Vec<Affine<P>>) -> Result<Self::Bases, BackendError>;

    /// How many bases `bases` holds.
    fn num_bases(&self, bases: &Self::Bases) -> usize;

    /// `Σ scalars[i] · bases[range.start + i]`: the MSM over one range of the prepared
    /// bases. Results over disjoint ranges add up to the MSM over their union.
    ///
    /// # Errors
    /// [`BackendError::RangeOutOfBounds`] or [`BackendError::LengthMismatch`] when the range
    /// and scalars do not fit the bases; device errors.
    fn msm(
        &self,
        bases: &Self::Bases,
        range: Range<usize>,
        scalars: &[P::ScalarField],
    ) -> Result<Projective<P>, BackendError>;
}

/// Number-theoretic transforms over the field `F`, in place, natural order in and out.
///
/// For `n = values.len()` (a power of two) and `ω` the field's canonical primitive `n`-th
/// root of unity (`F::get_root_of_unity(n)`, the one ark-poly's radix-2 domain uses):
/// - [`ntt`](NttBackend::ntt): coefficients `a` to evaluations `a(ωʲ)`;
/// - [`intt`](NttBackend::intt): its inverse;
/// - [`coset_ntt`](NttBackend::coset_ntt): coefficients to evaluations `a(g·ωʲ)`;
/// - [`coset_intt`](NttBackend::coset_intt): its inverse.
///
/// # Errors
/// Every method returns [`BackendError::NotPowerOfTwo`] for a length that is not a power of
/// two (zero included), [`BackendError::NttTooLarge`] beyond the field's two-adicity, and
/// the coset methods [`BackendError::ZeroShift`] for `g = 0`.
pub trait NttBackend<F: FftField>: Send + Sync {
    /// Forward transform on the subgroup.
    fn ntt(&self, values: &mut [F]) -> Result<(), BackendError>;
    /// Inverse transform on the subgroup.
    fn intt(&self, values: &mut [F]) -> Result<(), BackendError>;
    /// Forward transform on the coset `shift·⟨ω⟩`.
    fn coset_ntt(&self, values: &mut [F], shift: F) -> Result<(), BackendError>;
    /// Inverse transform on the coset `shift·⟨ω⟩`.
    fn coset_intt(&self, values: &mut [F], shift: F) -> Result<(), BackendError>;

    /// The Groth16 quotient: given the evaluations `a`, `b`, `c` of the QAP polynomials on
    /// the subgroup, leaves in `a` the coefficients of `(a·b - c)/Z`, where `Z` is the
    /// constant `1/z_inv` on the coset `shift·⟨ω⟩`. `b` and `c` are scratch.
    ///
    /// The default runs the seven transforms through the methods above; a device backend
    /// overrides it to keep the vectors on the device from the first transform to the
    /// last.
    ///
    /// # Errors
    /// As the transforms; [`BackendError::LengthMismatch`] when the lengths differ.
    fn quotient(
        &self,
        a: &mut [F],
        b: &mut [F],
        c: &mut [F],
        shift: F,
        z_inv: F,
    ) -> Result<(), BackendError> {
        if b.len() != a.len() || c.len() != a.len() {
            return Err(BackendError::LengthMismatch {
                scalars: b.len().max(c.len()),
                bases: a.len(),
            });
        }
        for v in [&mut *a, &mut *b, &mut *c] {
            self.intt(v)?;
            self.coset_ntt(v, shift)?;
        }
        a.par_iter_mut()
            .zip(b.par_iter().zip(c.par_iter()))
            .for_each(|(x, (y, z))| *x = (*x * y - z) * z_inv);
        self.coset_intt(a, shift)
    }
}

/// Everything the BN254 Groth16 prover needs from a backend: MSMs in G1 and G2 and NTTs
/// over Fr, and the three MSMs over the assignment together.
pub trait Backend:
    MsmBackend<ark_bn254::g1::Config> + MsmBackend<ark_bn254::g2::Config> + NttBackend<ark_bn254::Fr>
{
    /// `Σ zᵢ·aᵢ`, `Σ zᵢ·bᵢ` in G1 and `Σ zᵢ·bᵢ` in G2: three MSMs over the same scalars
    /// and range, so a backend may share what depends only on the scalars (a GPU's digit
    /// decomposition and bucket sort). The default runs the three one after another
    /// through [`MsmBackend::msm`] (each is parallel inside, and one MSM's digits at a
    /// time stay in memory), timing each.
    ///
    /// # Errors
    /// As [`MsmBackend::msm`].
    fn msm_assignment(
        &self,
        a: &<Self as MsmBackend<ark_bn254::g1::Config>>::Bases,
        b_g1: &<Self as MsmBackend<ark_bn254::g1::Config>>::Bases,
        b_g2: &<Self as MsmBackend<ark_bn254::g2::Config>>::Bases,
        range: Range<usize>,
        scalars: &[ark_bn254::Fr],
    ) -> Result<AssignmentSums, BackendError> {
        use ark_bn254::{g1, g2};
        use std::time::Instant;
        let t = Instant::now();
        let a = MsmBackend::<g1::Config>::msm(self, a, range.clone(), scalars)?;
        let ta = t.elapsed();
        let t = Instant::now();
        let b_g1 = MsmBackend::<g1::Config>::msm(self, b_g1, range.clone(), scalars)?;
        let tb1 = t.elapsed();
        let t = Instant::now();
        let b_g2 = MsmBackend::<g2::Config>::msm(self, b_g2, range, scalars)?;
        Ok(AssignmentSums {
            a,
            b_g1,
            b_g2,
            times: [ta, tb1, t.elapsed()],
        })
    }
}

/// The three MSMs over the assignment ([`Backend::msm_assignment`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AssignmentSums {
    /// `Σ zᵢ·aᵢ`.
    pub a: ark_bn254::G1Projective,
    /// `Σ zᵢ·bᵢ` in G1.
    pub b_g1: ark_bn254::G1Projective,
    /// `Σ zᵢ·bᵢ` in G2.
    pub b_g2: ark_bn254::G2Projective,
    /// Time spent on each (work shared by the three counted in the first).
    pub times: [std::time::Duration; 3],
}

impl Backend for crate::CpuBackend {}

/// Checks an MSM request against `len` prepared bases; for backends to share.
///
/// # Errors
/// [`BackendError::RangeOutOfBounds`], [`BackendError::LengthMismatch`].
pub fn check_msm_request(
    len: usize,
    range: &Range<usize>,
    scalars: usize,
) -> Result<(), BackendError> {
    if range.start > range.end || range.end > len {
        return Err(BackendError::RangeOutOfBounds {
            start: range.start,
            end: range.end,
            len,
        });
    }
    if scalars != range.end - range.start {
        return Err(BackendError::LengthMismatch {
            scalars,
            bases: range.end - range.start,
        });
    }
    Ok(())
}

/// Checks an NTT length: a power of two no larger than `2^two_adicity`. Returns `log2(n)`.
///
/// # Errors
/// [`BackendError::NotPowerOfTwo`], [`BackendError::NttTooLarge`].
pub fn check_ntt_len(n: usize, two_adicity: u32) -> Result<u32, BackendError> {
    if !n.is_power_of_two() {
        return Err(BackendError::NotPowerOfTwo(n));
    }
    let log = n.trailing_zeros();
    if log > two_adicity {
        return Err(BackendError::NttTooLarge(n));
    }
    Ok(log)
}
