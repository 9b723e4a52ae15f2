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

use ark_bn254::Fr;
use ark_ec::short_weierstrass::{Affine, Projective};
use pulse_prover::backend::{check_msm_request, check_ntt_len};
use pulse_prover::{BackendError, MsmBackend, NttBackend};

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
