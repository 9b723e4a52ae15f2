//! The CPU backend: the default, and the reference the GPU backend is tested against.
//!
//! MSMs use [`msm`] (Pippenger, signed digits, batch-affine buckets); NTTs use
//! [`ntt::Radix2Ntt`] with cached twiddles. Preparing bases takes ownership of them and
//! copies nothing, so a prepared proving key costs no more memory than the key itself.

pub mod msm;
pub mod ntt;

use std::ops::Range;

use ark_bn254::Fr;
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

/// Bases prepared by [`CpuBackend`]: the affine points, as given.
pub struct CpuBases<P: SWCurveConfig> {
    points: Vec<Affine<P>>,
}

impl<P: SWCurveConfig> CpuBases<P> {
    /// The prepared points.
    pub fn points(&self) -> &[Affine<P>] {
        &self.points
    }
}

impl<P: SWCurveConfig> MsmBackend<P> for CpuBackend {
    type Bases = CpuBases<P>;

    fn prepare(&self, bases: Vec<Affine<P>>) -> Result<Self::Bases, BackendError> {
        if bases.len() > msm::MAX_BASES {
            return Err(BackendError::TooManyBases(bases.len()));
        }
        Ok(CpuBases { points: bases })
    }

    fn num_bases(&self, bases: &Self::Bases) -> usize {
        bases.points.len()
    }

    fn msm(
        &self,
        bases: &Self::Bases,
        range: Range<usize>,
        scalars: &[P::ScalarField],
    ) -> Result<Projective<P>, BackendError> {
        check_msm_request(bases.points.len(), &range, scalars.len())?;
        Ok(msm::msm(&bases.points[range], scalars))
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
