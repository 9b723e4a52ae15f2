//! The host side of the GPU NTT (kernels in `kernels/ntt.cl`): twiddle and coset-power
//! tables built on the device and cached there, the stage launches (up to [`LOCAL_LOG`]
//! stages a pass through local memory), and the whole Groth16 quotient kept on the device
//! from the first transform to the last.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ark_bn254::Fr;
use ark_ff::{FftField, Field};

use crate::device::{Arg, Buffer, Device, GpuError};
use crate::msm::{from_device, to_device};

/// Elements each thread of `fr_powers` steps through.
const POWERS_RUN: u32 = 64;

/// Stages per pass through local memory: a work-group's block is `2^LOCAL_LOG` elements
/// (32 KiB), within the local memory of every GPU Pulse targets (48 KiB and up).
pub const LOCAL_LOG: u32 = 10;

/// Threads asked for per block of `fr_ntt_local` (the device may group them otherwise; the
/// kernel works with any group size).
const LOCAL_THREADS: usize = 256;

/// How the transform's stages are grouped into passes over device memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Passes {
    /// Up to [`LOCAL_LOG`] stages a pass through local memory (`fr_ntt_local`): what the
    /// backend runs; 2^20 takes two passes.
    Local,
    /// Three stages a pass in registers (`fr_ntt_radix8`), then single stages: kept to
    /// measure against; 2^20 takes eight.
    Registers,
}

impl Passes {
    /// The passes over memory after the bit reversal, for `2^log` elements.
    pub fn count(self, log: u32) -> u32 {
        match self {
            Passes::Local => log.div_ceil(LOCAL_LOG),
            Passes::Registers => log / 3 + log % 3,
        }
    }
}

/// A table's key: `(log₂ n, g)` in Montgomery limbs.
type TableKey = (u32, [u64; 4]);

/// Tables cached on one device: `g^i` for `i < n`.
#[derive(Default)]
pub struct Tables {
    powers: Mutex<HashMap<TableKey, Arc<Buffer>>>,
}

/// Most tables kept per device; past that the cache starts over (a prover uses four:
/// two twiddle directions and the coset shift and its inverse, per domain size).
const MAX_TABLES: usize = 16;

impl Tables {
    /// `g^i` for `i < len`, on the device.
    fn powers(&self, dev: &dyn Device, log: u32, len: u32, g: Fr) -> Result<Arc<Buffer>, GpuError> {
        let key = (log, g.0.0);
        let mut cache = self
            .powers
            .lock()
            .map_err(|_| GpuError::Unsupported("the NTT table cache is poisoned".into()))?;
        if let Some(t) = cache.get(&key) {
            return Ok(t.clone());
        }
        let base = dev.alloc(32)?;
        dev.write(&base, 0, &to_device(&[g]))?;
        let table = dev.alloc(32 * len as usize)?;
        dev.launch(
            "fr_powers",
            len.div_ceil(POWERS_RUN) as usize,
            &[
                Arg::Buf(&table),
                Arg::Buf(&base),
                Arg::U32(len),
                Arg::U32(POWERS_RUN),
            ],
        )?;
        // The base must outlive the launch: wait for it before it is freed.
        dev.read(&table, 0, &mut [0u8; 32])?;
        drop(base);
        if cache.len() >= MAX_TABLES {
            cache.clear();
        }
        let table = Arc::new(table);
        cache.insert(key, table.clone());
        Ok(table)
    }
}

/// A vector of `n` field elements on the device.
pub struct DeviceVec {
    buf: Buffer,
    n: u32,
    log: u32,
}

impl DeviceVec {
    /// Uploads `values` (a power-of-two length, checked by the caller).
    ///
    /// # Errors
    /// Device errors.
    pub fn upload(dev: &dyn Device, values: &[Fr]) -> Result<Self, GpuError> {
        let n = u32::try_from(values.len())
            .map_err(|_| GpuError::Unsupported(format!("NTT of {} elements", values.len())))?;
        let buf = dev.alloc(32 * values.len())?;
        dev.write(&buf, 0, &to_device(values))?;
        Ok(Self {
            buf,
            n,
            log: n.trailing_zeros(),
        })
    }

    /// Copies the values back into `out` (of the same length).
    ///
    /// # Errors
    /// Device errors.
    pub fn download(&self, dev: &dyn Device, out: &mut [Fr]) -> Result<(), GpuError> {
        let mut bytes = vec![0u8; 32 * out.len()];
        dev.read(&self.buf, 0, &mut bytes)?;
        out.copy_from_slice(&from_device::<Fr>(&bytes));
        Ok(())
    }

    /// `a[i] *= table[i]`.
    fn mul_each(&self, dev: &dyn Device, table: &Buffer) -> Result<(), GpuError> {
        dev.launch(
            "fr_mul_each",
            self.n as usize,
            &[Arg::Buf(&self.buf), Arg::Buf(table), Arg::U32(self.n)],
        )
    }

    /// `a[i] *= s`.
    fn scale(&self, dev: &dyn Device, s: Fr) -> Result<(), GpuError> {
        let sb = dev.alloc(32)?;
        dev.write(&sb, 0, &to_device(&[s]))?;
        dev.launch(
            "fr_scale",
            self.n as usize,
            &[Arg::Buf(&self.buf), Arg::Buf(&sb), Arg::U32(self.n)],
        )?;
        dev.read(&sb, 0, &mut [0u8; 32])
    }

    /// The transform on the subgroup (`inverse`: and back, scaled by 1/n).
    ///
    /// # Errors
    /// Device errors.
    pub fn transform(
        &self,
        dev: &dyn Device,
        tables: &Tables,
        inverse: bool,
    ) -> Result<(), GpuError> {
        self.transform_with(dev, tables, inverse, Passes::Local)
    }

    /// [`DeviceVec::transform`] with the stages grouped as `passes` says.
    ///
    /// # Errors
    /// Device errors.
    pub fn transform_with(
        &self,
        dev: &dyn Device,
        tables: &Tables,
        inverse: bool,
        passes: Passes,
    ) -> Result<(), GpuError> {
        if self.n <= 1 {
            return Ok(());
        }
        let mut omega = Fr::get_root_of_unity(u64::from(self.n)).ok_or_else(|| {
            GpuError::Unsupported(format!("no root of unity of order {}", self.n))
        })?;
        if inverse {
            omega = omega.inverse().unwrap_or(omega);
        }
        let twiddles = tables.powers(dev, self.log, self.n / 2, omega)?;
        dev.launch(
            "fr_bit_reverse",
            self.n as usize,
            &[Arg::Buf(&self.buf), Arg::U32(self.n), Arg::U32(self.log)],
        )?;
        if passes == Passes::Local {
            let mut s = 0;
            while s < self.log {
                let k = LOCAL_LOG.min(self.log - s);
                let blocks = (self.n >> k) as usize;
                dev.launch(
                    "fr_ntt_local",
                    blocks * LOCAL_THREADS.min(1 << (k - 1)),
                    &[
                        Arg::Buf(&self.buf),
                        Arg::Buf(&twiddles),
                        Arg::U32(self.n),
                        Arg::U32(s),
                        Arg::U32(k),
                    ],
                )?;
                s += k;
            }
            return self.finish(dev, inverse);
        }
        // Three stages per pass while three remain, then single stages.
        let mut s = 0;
        while s + 3 <= self.log {
            dev.launch(
                "fr_ntt_radix8",
                (self.n / 8) as usize,
                &[
                    Arg::Buf(&self.buf),
                    Arg::Buf(&twiddles),
                    Arg::U32(self.n),
                    Arg::U32(s),
                ],
            )?;
            s += 3;
        }
        for s in s..self.log {
            let half = 1u32 << s;
            dev.launch(
                "fr_ntt_stage",
                (self.n / 2) as usize,
                &[
                    Arg::Buf(&self.buf),
                    Arg::Buf(&twiddles),
                    Arg::U32(self.n),
                    Arg::U32(half),
                    Arg::U32(self.n / (2 * half)),
                ],
            )?;
        }
        self.finish(dev, inverse)
    }

    /// After the stages: the 1/n scaling of an inverse transform.
    fn finish(&self, dev: &dyn Device, inverse: bool) -> Result<(), GpuError> {
        if inverse {
            let n_inv = Fr::from(self.n)
                .inverse()
                .ok_or_else(|| GpuError::Unsupported("the NTT size is zero in the field".into()))?;
            self.scale(dev, n_inv)?;
        }
        Ok(())
    }

    /// Multiplies coefficient `i` by `g^i` (`g` = `shift`): the step between a transform
    /// on the subgroup and one on the coset `shift·⟨ω⟩`.
    ///
    /// # Errors
    /// Device errors.
    pub fn shift(&self, dev: &dyn Device, tables: &Tables, shift: Fr) -> Result<(), GpuError> {
        let table = tables.powers(dev, self.log, self.n, shift)?;
        self.mul_each(dev, &table)
    }

    /// Coefficients to evaluations on the coset.
    ///
    /// # Errors
    /// Device errors.
    pub fn coset_forward(
        &self,
        dev: &dyn Device,
        tables: &Tables,
        shift: Fr,
    ) -> Result<(), GpuError> {
        self.shift(dev, tables, shift)?;
        self.transform(dev, tables, false)
    }

    /// Evaluations on the coset back to coefficients.
    ///
    /// # Errors
    /// Device errors.
    pub fn coset_inverse(
        &self,
        dev: &dyn Device,
        tables: &Tables,
        shift: Fr,
    ) -> Result<(), GpuError> {
        self.transform(dev, tables, true)?;
        let inv = shift
            .inverse()
            .ok_or_else(|| GpuError::Unsupported("coset shift must be non-zero".into()))?;
        self.shift(dev, tables, inv)
    }
}

/// The Groth16 quotient on the device: with `a`, `b`, `c` the evaluations of the QAP
/// polynomials on the subgroup, leaves in `a` the coefficients of `(a·b - c)/Z`, where
/// `Z = z_inv⁻¹` is constant on the coset `shift·⟨ω⟩`. Three uploads, one download and
/// seven transforms without leaving the device.
///
/// # Errors
/// Device errors.
pub fn quotient(
    dev: &dyn Device,
    tables: &Tables,
    a: &mut [Fr],
    b: &[Fr],
    c: &[Fr],
    shift: Fr,
    z_inv: Fr,
) -> Result<(), GpuError> {
    let da = DeviceVec::upload(dev, a)?;
    let db = DeviceVec::upload(dev, b)?;
    let dc = DeviceVec::upload(dev, c)?;
    for v in [&da, &db, &dc] {
        v.transform(dev, tables, true)?;
        v.coset_forward(dev, tables, shift)?;
    }
    let zb = dev.alloc(32)?;
    dev.write(&zb, 0, &to_device(&[z_inv]))?;
    dev.launch(
        "fr_quotient",
        da.n as usize,
        &[
            Arg::Buf(&da.buf),
            Arg::Buf(&db.buf),
            Arg::Buf(&dc.buf),
            Arg::Buf(&zb),
            Arg::U32(da.n),
        ],
    )?;
    da.coset_inverse(dev, tables, shift)?;
    da.download(dev, a)?;
    drop((db, dc, zb));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_passes_cover_2_to_the_20_in_two() {
        assert_eq!(Passes::Local.count(20), 2);
        assert_eq!(Passes::Registers.count(20), 8);
        assert_eq!(Passes::Local.count(10), 1);
        assert_eq!(Passes::Local.count(11), 2);
        assert_eq!(Passes::Local.count(0), 0);
        // The kernel's block must fit its local array: the program is built with the same
        // constant.
        assert!(crate::source::program().contains(&format!("#define NTT_LOCAL_LOG {LOCAL_LOG}")));
    }
}
