//! Radix-2 number-theoretic transform on the CPU with precomputed twiddles.
//!
//! The forward transform is the decimation-in-frequency butterfly network of Gentleman and
//! Sande ("Fast Fourier transforms: for fun and profit", 1966), natural order in, bit-reversed
//! out, followed by one bit-reversal permutation (Cooley and Tukey, 1965). It recurses
//! depth-first, so once a sub-transform fits in cache all its remaining levels run there,
//! and the two halves run in parallel on rayon (`join`). Twiddles for every level of a size
//! are computed once and cached: level `h` (butterfly span) stores `ω_{2h}^j` for `j < h`
//! contiguously, `n - 1` elements in all.
//!
//! The inverse transform reuses the forward tables: `DFT⁻¹(x)_k = n⁻¹·DFT(x)_{-k mod n}`,
//! so it is the forward transform, a reversal of entries `1..n`, and a scaling that the
//! coset variants merge with their powers of the shift.

use std::sync::{Arc, Mutex, PoisonError};

use ark_ff::{FftField, Field};
use rayon::prelude::*;

use crate::backend::{BackendError, check_ntt_len};

/// Sub-transforms at least this long split their work across rayon tasks.
const PARALLEL_LEN: usize = 1 << 11;
/// Butterflies per rayon task within one level.
const CHUNK: usize = 1 << 10;

/// Twiddle tables of one transform size.
struct Twiddles<F> {
    /// Level `h` (a power of two below `n`) at `table[h-1 .. 2h-1]`: `ω_{2h}^j`, `j < h`.
    table: Vec<F>,
    /// `n⁻¹`.
    n_inv: F,
}

/// Radix-2 NTTs over `F`, caching twiddle tables by size.
pub struct Radix2Ntt<F> {
    cache: Mutex<Vec<Option<Arc<Twiddles<F>>>>>,
}

impl<F: FftField> Default for Radix2Ntt<F> {
    fn default() -> Self {
        Self {
            cache: Mutex::new(vec![None; F::TWO_ADICITY as usize + 1]),
        }
    }
}

impl<F: FftField> Radix2Ntt<F> {
    /// An engine with an empty twiddle cache.
    pub fn new() -> Self {
        Self::default()
    }

    fn twiddles(&self, log_n: u32) -> Result<Arc<Twiddles<F>>, BackendError> {
        let n = 1usize << log_n;
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(Some(t)) = cache.get(log_n as usize) {
            return Ok(t.clone());
        }
        let omega = F::get_root_of_unity(n as u64).ok_or(BackendError::NttTooLarge(n))?;
        let n_inv = F::from(n as u64)
            .inverse()
            .ok_or(BackendError::NttTooLarge(n))?;
        let half = n / 2;
        let mut table = vec![F::ZERO; n.saturating_sub(1)];
        if half > 0 {
            // Top level: ω^j for j < n/2, filled in parallel chunks each seeded with a pow.
            let top = &mut table[half - 1..];
            top.par_chunks_mut(CHUNK)
                .enumerate()
                .for_each(|(i, chunk)| {
                    let mut w = omega.pow([(i * CHUNK) as u64]);
                    for t in chunk {
                        *t = w;
                        w *= omega;
                    }
                });
            // Level h is the top level read with stride n/(2h).
            let mut h = half / 2;
            while h >= 1 {
                let stride = half / h;
                for j in 0..h {
                    table[h - 1 + j] = table[half - 1 + j * stride];
                }
                h /= 2;
            }
        }
        let t = Arc::new(Twiddles { table, n_inv });
        if let Some(slot) = cache.get_mut(log_n as usize) {
            *slot = Some(t.clone());
        }
        Ok(t)
    }

    /// Forward transform in place.
    ///
    /// # Errors
    /// See [`crate::NttBackend`].
    pub fn ntt(&self, values: &mut [F]) -> Result<(), BackendError> {
        let log = check_ntt_len(values.len(), F::TWO_ADICITY)?;
        let tw = self.twiddles(log)?;
        dif(values, &tw.table);
        bit_reverse(values, log);
        Ok(())
    }

    /// Inverse transform in place.
    ///
    /// # Errors
    /// See [`crate::NttBackend`].
    pub fn intt(&self, values: &mut [F]) -> Result<(), BackendError> {
        let log = check_ntt_len(values.len(), F::TWO_ADICITY)?;
        let tw = self.twiddles(log)?;
        self.inverse_unscaled(values, log, &tw);
        let n_inv = tw.n_inv;
        values.par_iter_mut().for_each(|v| *v *= n_inv);
        Ok(())
    }

    /// Forward transform on the coset `shift·⟨ω⟩`.
    ///
    /// # Errors
    /// See [`crate::NttBackend`].
    pub fn coset_ntt(&self, values: &mut [F], shift: F) -> Result<(), BackendError> {
        let log = check_ntt_len(values.len(), F::TWO_ADICITY)?;
        if shift.is_zero() {
            return Err(BackendError::ZeroShift);
        }
        let tw = self.twiddles(log)?;
        scale_by_powers(values, F::ONE, shift);
        dif(values, &tw.table);
        bit_reverse(values, log);
        Ok(())
    }

    /// Inverse transform on the coset `shift·⟨ω⟩`.
    ///
    /// # Errors
    /// See [`crate::NttBackend`].
    pub fn coset_intt(&self, values: &mut [F], shift: F) -> Result<(), BackendError> {
        let log = check_ntt_len(values.len(), F::TWO_ADICITY)?;
        let shift_inv = shift.inverse().ok_or(BackendError::ZeroShift)?;
        let tw = self.twiddles(log)?;
        self.inverse_unscaled(values, log, &tw);
        scale_by_powers(values, tw.n_inv, shift_inv);
        Ok(())
    }

    /// `n·DFT⁻¹`: the forward transform with entries `1..n` reversed.
    fn inverse_unscaled(&self, values: &mut [F], log: u32, tw: &Twiddles<F>) {
        dif(values, &tw.table);
        bit_reverse(values, log);
        if values.len() > 2 {
            values[1..].reverse();
        }
    }
}

/// `values[i] *= first·ratioⁱ`, in parallel chunks each seeded with a pow.
fn scale_by_powers<F: Field>(values: &mut [F], first: F, ratio: F) {
    values
        .par_chunks_mut(CHUNK)
        .enumerate()
        .for_each(|(i, chunk)| {
            let mut w = first * ratio.pow([(i * CHUNK) as u64]);
            for v in chunk {
                *v *= w;
                w *= ratio;
            }
        });
}

/// Decimation-in-frequency network: natural order in, bit-reversed order out.
fn dif<F: Field>(a: &mut [F], table: &[F]) {
    let m = a.len();
    if m < 2 {
        return;
    }
    if m == 4 {
        // The last two levels at once: of their twiddles (1; 1, ω₄) only ω₄ multiplies.
        let (s0, d0) = (a[0] + a[2], a[0] - a[2]);
        let (s1, d1) = (a[1] + a[3], (a[1] - a[3]) * table[2]);
        a[0] = s0 + s1;
        a[1] = s0 - s1;
        a[2] = d0 + d1;
        a[3] = d0 - d1;
        return;
    }
    if m == 2 {
        // The last level's twiddle is ω⁰ = 1: no multiplication.
        let (u, v) = (a[0], a[1]);
        a[0] = u + v;
        a[1] = u - v;
        return;
    }
    let h = m / 2;
    let tw = &table[h - 1..2 * h - 1];
    let (lo, hi) = a.split_at_mut(h);
    if m >= PARALLEL_LEN {
        lo.par_chunks_mut(CHUNK)
            .zip(hi.par_chunks_mut(CHUNK))
            .zip(tw.par_chunks(CHUNK))
            .for_each(|((l, r), t)| butterflies(l, r, t));
        rayon::join(|| dif(lo, table), || dif(hi, table));
    } else {
        butterflies(lo, hi, tw);
        dif(lo, table);
        dif(hi, table);
    }
}

/// `(l, r) ← (l + r, (l - r)·t)` element-wise.
#[inline]
fn butterflies<F: Field>(lo: &mut [F], hi: &mut [F], tw: &[F]) {
    for ((l, r), t) in lo.iter_mut().zip(hi.iter_mut()).zip(tw) {
        let u = *l;
        let v = *r;
        *l = u + v;
        *r = (u - v) * t;
    }
}

/// Permutes `a` (length `2^log`) into bit-reversed index order.
fn bit_reverse<F>(a: &mut [F], log: u32) {
    if log == 0 {
        return;
    }
    let shift = usize::BITS - log;
    for i in 0..a.len() {
        let j = i.reverse_bits() >> shift;
        if i < j {
            a.swap(i, j);
        }
    }
}
