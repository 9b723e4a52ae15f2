//! [`GpuBackend`]: `pulse-prover`'s backend traits on a GPU.
//!
//! Proving-key bases are uploaded once by `prepare` and stay resident until the prepared
//! value is dropped. Every MSM and NTT first checks its scratch memory against the
//! backend's budget (90 % of the device's memory, or the limit it was opened with): an
//! MSM that does not fit runs in smaller passes, and what cannot fit at all is refused
//! with `BackendError::OutOfMemory` *before* anything is allocated, which is the worker's
//! cue to prove that job on the CPU. Work from several threads (the prover runs its MSMs
//! beside the reduction) takes turns on the device.

use std::marker::PhantomData;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use ark_bn254::{Fr, g1, g2};
use ark_ec::short_weierstrass::{Affine, Projective};
use pulse_prover::backend::{check_msm_request, check_ntt_len};
use pulse_prover::{AssignmentSums, Backend, BackendError, MsmBackend, NttBackend};

use crate::device::{Api, Device, DeviceInfo, GpuError};
use crate::msm::{self, GpuCurve, MAX_PASS, Plan, ResidentBases};
use crate::ntt::{self, DeviceVec, Tables};

/// The smallest MSM pass worth running; below it the budget is called exhausted.
const MIN_PASS: usize = 1 << 12;

/// The GPU backend on one device.
pub struct GpuBackend {
    dev: Arc<dyn Device>,
    tables: Tables,
    budget: u64,
    resident: Arc<AtomicU64>,
    turn: Mutex<()>,
}

/// Bases resident on the device, released when dropped.
pub struct GpuBases<P> {
    bases: ResidentBases,
    bytes: u64,
    resident: Arc<AtomicU64>,
    _group: PhantomData<P>,
}

impl<P> Drop for GpuBases<P> {
    fn drop(&mut self) {
        self.resident.fetch_sub(self.bytes, Ordering::SeqCst);
    }
}

impl GpuBackend {
    /// Opens device `index` (default 0) of `api`, with a budget of 90 % of its memory.
    ///
    /// # Errors
    /// As [`crate::open_device`].
    pub fn open(api: Api, index: Option<usize>) -> Result<Self, GpuError> {
        Ok(Self::on(crate::open_device(api, index)?, None))
    }

    /// The backend on an opened device; `memory_limit` caps the bytes it uses (default 90 %
    /// of the device's memory).
    pub fn on(dev: Arc<dyn Device>, memory_limit: Option<u64>) -> Self {
        let budget = memory_limit.unwrap_or(dev.info().memory_bytes / 10 * 9);
        Self {
            dev,
            tables: Tables::default(),
            budget,
            resident: Arc::new(AtomicU64::new(0)),
            turn: Mutex::new(()),
        }
    }

    /// The device.
    pub fn info(&self) -> &DeviceInfo {
        self.dev.info()
    }

    /// The device, for the self-test.
    pub fn device(&self) -> &dyn Device {
        &*self.dev
    }

    /// Bytes the backend may still use beside what is resident.
    fn available(&self) -> u64 {
        self.budget
            .saturating_sub(self.resident.load(Ordering::SeqCst))
    }

    fn reserve(&self, bytes: u64) -> Result<(), GpuError> {
        let available = self.available();
        if bytes > available {
            return Err(GpuError::OutOfMemory {
                requested: bytes,
                available,
            });
        }
        Ok(())
    }

    fn turn(&self) -> Result<MutexGuard<'_, ()>, GpuError> {
        self.turn
            .lock()
            .map_err(|_| GpuError::Unsupported("a GPU job panicked; reopen the device".into()))
    }

    /// The largest pass (a power of two, at most `len` rounded up) whose scratch fits.
    fn pass_for<P: GpuCurve>(&self, len: usize) -> Result<usize, GpuError> {
        let mut pass = len.next_power_of_two().clamp(1, MAX_PASS);
        loop {
            let need = Plan::new(pass.min(len)).scratch_bytes(P::jacobian_bytes());
            if need <= self.available() {
                return Ok(pass);
            }
            if pass <= MIN_PASS {
                return Err(GpuError::OutOfMemory {
                    requested: need,
                    available: self.available(),
                });
            }
            pass /= 2;
        }
    }

    /// The Groth16 quotient, all on the device (see [`ntt::quotient`]).
    ///
    /// # Errors
    /// [`GpuError::OutOfMemory`] when six vectors of the domain's size do not fit; device
    /// errors.
    pub fn quotient_on_device(
        &self,
        a: &mut [Fr],
        b: &[Fr],
        c: &[Fr],
        shift: Fr,
        z_inv: Fr,
    ) -> Result<(), GpuError> {
        // a, b, c, the two coset tables and the twiddles.
        self.reserve(6 * 32 * a.len() as u64)?;
        let _turn = self.turn()?;
        ntt::quotient(&*self.dev, &self.tables, a, b, c, shift, z_inv)
    }

    fn transform(
        &self,
        values: &mut [Fr],
        f: impl FnOnce(&DeviceVec, &dyn Device, &Tables) -> Result<(), GpuError>,
    ) -> Result<(), BackendError> {
        check_ntt_len(values.len(), <Fr as ark_ff::FftField>::TWO_ADICITY)?;
        self.reserve(3 * 32 * values.len() as u64)?;
        let _turn = self.turn()?;
        let v = DeviceVec::upload(&*self.dev, values)?;
        f(&v, &*self.dev, &self.tables)?;
        v.download(&*self.dev, values)?;
        Ok(())
    }
}

impl<P: GpuCurve> MsmBackend<P> for GpuBackend {
    type Bases = GpuBases<P>;

    fn prepare(&self, bases: Vec<Affine<P>>) -> Result<Self::Bases, BackendError> {
        if bases.len() > u32::MAX as usize / 2 {
            return Err(BackendError::TooManyBases(bases.len()));
        }
        let bytes = (bases.len() * P::affine_bytes()) as u64;
        // Room for the bases and for at least the smallest pass beside them.
        self.reserve(bytes + Plan::new(MIN_PASS).scratch_bytes(P::jacobian_bytes()))?;
        let _turn = self.turn()?;
        let resident = msm::upload_bases::<P>(&*self.dev, &bases)?;
        self.resident.fetch_add(bytes, Ordering::SeqCst);
        Ok(GpuBases {
            bases: resident,
            bytes,
            resident: self.resident.clone(),
            _group: PhantomData,
        })
    }

    fn num_bases(&self, bases: &Self::Bases) -> usize {
        bases.bases.len
    }

    fn msm(
        &self,
        bases: &Self::Bases,
        range: Range<usize>,
        scalars: &[Fr],
    ) -> Result<Projective<P>, BackendError> {
        check_msm_request(bases.bases.len, &range, scalars.len())?;
        let pass = self.pass_for::<P>(scalars.len())?;
        let _turn = self.turn()?;
        Ok(msm::msm::<P>(
            &*self.dev,
            &bases.bases,
            range,
            scalars,
            pass,
        )?)
    }
}

impl Backend for GpuBackend {
    /// The three MSMs over the assignment with the scalar work shared
    /// ([`msm::msm_assignment`]).
    fn msm_assignment(
        &self,
        a: &GpuBases<g1::Config>,
        b_g1: &GpuBases<g1::Config>,
        b_g2: &GpuBases<g2::Config>,
        range: Range<usize>,
        scalars: &[Fr],
    ) -> Result<AssignmentSums, BackendError> {
        for len in [a.bases.len, b_g1.bases.len, b_g2.bases.len] {
            check_msm_request(len, &range, scalars.len())?;
        }
        // The G2 sums' scratch is the larger; the sorted pass is in it.
        let pass = self.pass_for::<g2::Config>(scalars.len())?;
        let _turn = self.turn()?;
        let r = msm::msm_assignment(
            &*self.dev,
            [&a.bases, &b_g1.bases, &b_g2.bases],
            range,
            scalars,
            pass,
        )?;
        Ok(AssignmentSums {
            a: r.a,
            b_g1: r.b_g1,
            b_g2: r.b_g2,
            times: r.times,
        })
    }
}

impl NttBackend<Fr> for GpuBackend {
    fn ntt(&self, values: &mut [Fr]) -> Result<(), BackendError> {
        self.transform(values, |v, dev, t| v.transform(dev, t, false))
    }

    fn intt(&self, values: &mut [Fr]) -> Result<(), BackendError> {
        self.transform(values, |v, dev, t| v.transform(dev, t, true))
    }

    fn coset_ntt(&self, values: &mut [Fr], shift: Fr) -> Result<(), BackendError> {
        if shift == Fr::from(0u64) {
            return Err(BackendError::ZeroShift);
        }
        self.transform(values, |v, dev, t| v.coset_forward(dev, t, shift))
    }

    fn coset_intt(&self, values: &mut [Fr], shift: Fr) -> Result<(), BackendError> {
        if shift == Fr::from(0u64) {
            return Err(BackendError::ZeroShift);
        }
        self.transform(values, |v, dev, t| v.coset_inverse(dev, t, shift))
    }

    fn quotient(
        &self,
        a: &mut [Fr],
        b: &mut [Fr],
        c: &mut [Fr],
        shift: Fr,
        z_inv: Fr,
    ) -> Result<(), BackendError> {
        check_ntt_len(a.len(), <Fr as ark_ff::FftField>::TWO_ADICITY)?;
        if b.len() != a.len() || c.len() != a.len() {
            return Err(BackendError::LengthMismatch {
                scalars: b.len().max(c.len()),
                bases: a.len(),
            });
        }
        if shift == Fr::from(0u64) {
            return Err(BackendError::ZeroShift);
        }
        Ok(self.quotient_on_device(a, b, c, shift, z_inv)?)
    }
}

/// The device memory a Groth16 prover on [`GpuBackend`] holds for one circuit: the proving
/// key's bases (resident), and the larger of the two jobs that take turns on the device,
/// the quotient's six domain-sized vectors and the largest MSM pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProverFootprint {
    /// Bytes of resident bases: `a`, `b` (G1 and G2) over the assignment, `l` over the
    /// witness, `h` over the domain.
    pub bases: u64,
    /// Scratch of the largest MSM run in one pass.
    pub msm: u64,
    /// Scratch of the smallest pass an MSM may be cut into.
    pub msm_min: u64,
    /// The quotient's vectors and tables.
    pub quotient: u64,
}

impl ProverFootprint {
    /// The footprint of a circuit with `inputs` instance variables (the constant one
    /// included), `witness` witness variables and a QAP domain of `domain` rows.
    pub fn new(inputs: usize, witness: usize, domain: usize) -> Self {
        let m = (inputs + witness) as u64;
        let h = domain.saturating_sub(1) as u64;
        let g1 = <ark_bn254::g1::Config as GpuCurve>::affine_bytes() as u64;
        let g2 = <ark_bn254::g2::Config as GpuCurve>::affine_bytes() as u64;
        let (j1, j2) = (
            <ark_bn254::g1::Config as GpuCurve>::jacobian_bytes(),
            <ark_bn254::g2::Config as GpuCurve>::jacobian_bytes(),
        );
        let pass = |n: u64| (n as usize).clamp(1, MAX_PASS);
        Self {
            bases: m * (2 * g1 + g2) + witness as u64 * g1 + h * g1,
            msm: Plan::new(pass(m))
                .scratch_bytes(j2)
                .max(Plan::new(pass(m.max(h))).scratch_bytes(j1)),
            msm_min: Plan::new(pass(m).min(MIN_PASS))
                .scratch_bytes(j2)
                .max(Plan::new(pass(m.max(h)).min(MIN_PASS)).scratch_bytes(j1)),
            quotient: 6 * 32 * domain as u64,
        }
    }

    /// Bytes with every MSM in one pass (the fastest way).
    pub fn total(&self) -> u64 {
        self.bases + self.msm.max(self.quotient)
    }

    /// Bytes with the MSMs cut into the smallest passes: below this the bases do not stay
    /// resident and the worker proves on the CPU.
    pub fn minimum(&self) -> u64 {
        self.bases + self.msm_min.max(self.quotient)
    }

    /// Whether the prover fits a device of `memory` bytes within the backend's default
    /// budget (90 %), all MSMs in one pass or (`passes`) cut into the smallest.
    pub fn fits(&self, memory: u64, passes: bool) -> bool {
        let need = if passes { self.minimum() } else { self.total() };
        need <= memory / 10 * 9
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_footprint_counts_every_resident_base_and_the_larger_job() {
        // 2 instance + 3 witness variables, a domain of 8 rows: a, b₁ (64 B) and b₂ (128 B)
        // over 5, l over 3, h over 7.
        let f = ProverFootprint::new(2, 3, 8);
        assert_eq!(f.bases, 5 * (64 + 64 + 128) + 3 * 64 + 7 * 64);
        assert_eq!(f.quotient, 6 * 32 * 8);
        assert_eq!(f.total(), f.bases + f.msm.max(f.quotient));
        assert!(f.minimum() <= f.total());
        assert!(f.fits(f.total() * 10 / 9 + 10, false));
        assert!(
            !f.fits(f.minimum(), true),
            "the budget is 90 % of the memory"
        );
        // Larger circuits never need less.
        let mut last = 0;
        for k in 6..24 {
            let n = 1usize << k;
            let t = ProverFootprint::new(10, n - 20, n).total();
            assert!(t > last, "{k}");
            last = t;
        }
    }
}
