//! The CPU backend: the default, and the reference the GPU backend is tested against.
//!
//! MSMs use [`msm`] (Pippenger, signed digits, batch-affine buckets) with the
//! GLV endomorphism (Gallant, Lambert, Vanstone, CRYPTO 2001; [`msm::msm_glv`]), which halves
//! the scalar length. NTTs use [`ntt::Radix2Ntt`] with cached twiddles. Preparing bases
//! consumes them into a [`msm::PointTable`] of cache-line-aligned slots: 64 bytes per G1
//! base, against the 72 of the `Affine` it replaces. The endomorphism is applied to
//! bucket sums, so the images `φ(P)` are never stored.
pub mod msm;
pub mod ntt;

use std::ops::Range;

use ark_bn254::{Fr, G1Affine, G2Affine, g1, g2};
use ark_ec::short_weierstrass::{Affine, Projective, SWCurveConfig};

use crate::backend::{BackendError, MsmBackend, NttBackend, check_msm_request};

/// The CPU backend. Cheap to create; holds the NTT twiddle cache.
#[derive(Default)]
pub struct CpuBackend {
    ntt: ntt::Radix2Ntt<Fr>,
}

impl CpuBackend {
    /// A backend with an empty twiddle cache.
    pub fn new() -> Self {
        Self::default()
    }
}

/// Bases prepared by [`CpuBackend`]: a [`msm::PointTable`] with the GLV endomorphism.
pub struct CpuBases<P: SWCurveConfig> {
    table: msm::PointTable<P>,
}

impl<P: SWCurveConfig> CpuBases<P> {
    /// The prepared table.
    pub fn table(&self) -> &msm::PointTable<P> {
        &self.table
    }
}

/// The BN254 groups the CPU backend runs GLV on, with their endomorphism `φ(P) = λ·P`.
pub trait GlvGroup: SWCurveConfig<ScalarField = Fr> {
    /// `φ(p)`.
    fn endomorphism(p: &Affine<Self>) -> Affine<Self>;
}

impl GlvGroup for g1::Config {
    fn endomorphism(p: &G1Affine) -> G1Affine {
        msm::glv_endomorphism(p)
    }
}

impl GlvGroup for g2::Config {
    fn endomorphism(q: &G2Affine) -> G2Affine {
        msm::glv_endomorphism_g2(q)
    }
}

impl<P: GlvGroup> MsmBackend<P> for CpuBackend {
    type Bases = CpuBases<P>;

    fn prepare(&self, bases: Vec<Affine<P>>) -> Result<Self::Bases, BackendError> {
        if bases.len() > msm::MAX_BASES {
            return Err(BackendError::TooManyBases(bases.len()));
        }
        Ok(CpuBases {
            table: msm::PointTable::with_glv(&bases, P::endomorphism),
        })
    }

    fn num_bases(&self, bases: &Self::Bases) -> usize {
        bases.table.len()
    }

    fn msm(
        &self,
        bases: &Self::Bases,
        range: Range<usize>,
        scalars: &[Fr],
    ) -> Result<Projective<P>, BackendError> {
        check_msm_request(bases.table.len(), &range, scalars.len())?;
        Ok(msm::msm_glv_table(&bases.table, range, scalars))
    }
}

impl NttBackend<Fr> for CpuBackend {
    fn ntt(&self, values: &mut [Fr]) -> Result<(), BackendError> {
        self.ntt.ntt(values)
    }

    fn intt(&self, values: &mut [Fr]) -> Result<(), BackendError> {
        self.ntt.intt(values)
    }

    fn coset_ntt(&self, values: &mut [Fr], shift: Fr) -> Result<(), BackendError> {
        self.ntt.coset_ntt(values, shift)
    }

    fn coset_intt(&self, values: &mut [Fr], shift: Fr) -> Result<(), BackendError> {
        self.ntt.coset_intt(values, shift)
    }
}
