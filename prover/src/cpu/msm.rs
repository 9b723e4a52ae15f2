//! Multi-scalar multiplication on the CPU: Pippenger's bucket method with signed-digit
//! windows and batch-affine bucket accumulation.
//!
//! - **Pippenger** (N. Pippenger, "On the evaluation of powers and related problems", FOCS
//!   1976; the bucket form in Bernstein, Doumen, Lange, Oosterwijk, "Faster batch forgery
//!   identification", INDOCRYPT 2012): each scalar is cut into `c`-bit windows; per window,
//!   every base is added into the bucket named by its digit, and the buckets are combined
//!   as `Σ_d d·B_d`. A running sum would take `2·2^(c-1)` projective additions; writing
//!   `d - 1 = hi·K + lo` with `K ≈ 2^((c-1)/2)` turns it into two batch-affine sums over the
//!   buckets and two running sums of `≈ K` terms ([`weighted_sum`]).
//! - **Signed digits**: digits lie in `[-2^(c-1), 2^(c-1)]` (a digit at or above `2^(c-1)`
//!   borrows from the next window), so a window needs `2^(c-1)` buckets instead of `2^c - 1`,
//!   a negative digit adding the negated base (negation is free on short-Weierstrass
//!   curves). Scalars above `r/2` are replaced by `r - s` with the base negated, so small
//!   negative scalars (`-1`, common in witnesses) cost as little as small positive ones.
//! - **Batch-affine accumulation** (the technique of Aztec's barretenberg, zkSync's
//!   era-bellman-cuda and gnark's `msm` writeups): instead of adding each base into a
//!   projective bucket (11 field multiplications per mixed addition), the bases of a window
//!   are sorted by bucket (a counting sort) and summed pairwise in rounds with affine
//!   additions, whose one inversion per addition is shared across many additions by
//!   Montgomery's trick (P. Montgomery, "Speeding the Pollard and elliptic curve methods of
//!   factorization", 1987): about 6 multiplications per addition. The buckets are summed
//!   in groups of consecutive buckets holding about [`GROUP`] points, all rounds of a group
//!   before the next, so after one gather of its points a group stays in the L2 cache and
//!   a window allocates nothing in proportion to its points (peak memory).
//! - **Layout**: prepared bases live in a [`PointTable`], each point in a 64-byte-aligned
//!   slot (one cache line per random read of a G1 point, not two; less than the 72 bytes of
//!   an `Affine`).
//! - **GLV endomorphism** (R. Gallant, R. Lambert, S. Vanstone, "Faster point multiplication
//!   on elliptic curves with efficient endomorphisms", CRYPTO 2001): on BN254,
//!   `φ(x, y) = (β·x, y)` (`β` a cube root of unity in the base field) is `λ·P` for a cube
//!   root of unity `λ` in Fr. [`msm_glv`] splits each scalar as `k ≡ k1 + k2·λ` with
//!   `|k1|, |k2| < 2^126` ([`glv_decompose`]) and runs over the `2n` points `P, φ(P)` with
//!   128-bit scalars: half the windows, so half the bucket combinations and room for a
//!   larger window. The images are never stored: the `k2` halves go to buckets of their
//!   own, summed over the bases `P`, and `φ` is applied once per bucket sum
//!   (`Σ b·(B1_b + φ(B2_b))`, as `φ` is a homomorphism).
//! - **Window size** minimises a cost model of the two phases (accumulation `≈ 9n`, measured, and bucket
//!   combination `≈ 27·2^(c-1)` multiplications per window); windows run in parallel on
//!   rayon.

use ark_ec::AffineRepr;
use ark_ec::short_weierstrass::{Affine, Projective, SWCurveConfig};
use ark_ff::{AdditiveGroup, BigInteger, Field, PrimeField, Zero};
use rayon::prelude::*;

/// Marks a negated base in a sorted index (the top bit); the rest is the base's index.
const NEG: u32 = 1 << 31;

/// The largest number of bases one call can index (the sort packs an index in 31 bits).
pub const MAX_BASES: usize = (NEG - 1) as usize;

/// Points of one bucket group (see the module documentation): a group's points, their sums and
/// their denominators (about 2 MiB for G1) stay in the L2/L3 caches through all its rounds;
/// a larger group shares each round's inversion among more additions. Measured at 2^20 on a
/// 2-core EPYC (1 MiB L2): 16384 is about 2 % faster than 8192, and 32768 no faster.
pub const GROUP: usize = 16384;

/// Affine coordinates of a point that is not at infinity, aligned to a cache line: a
/// random read of a G1 base touches one line, where a 72-byte `Affine` always spans two.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Pt<F> {
    x: F,
    y: F,
}

/// The GLV endomorphism `φ` of a group, as a function on affine points.
pub type Endomorphism<P> = fn(&Affine<P>) -> Affine<P>;

/// Points in the form the bucket phase reads: coordinates in cache-line-aligned slots (64
/// bytes per G1 base, less than the 72 of an `Affine`), whether each is at infinity, and
/// for GLV the endomorphism, applied to bucket sums rather than stored per base.
pub struct PointTable<P: SWCurveConfig> {
    pts: Vec<Pt<P::BaseField>>,
    infinity: Vec<bool>,
    phi: Option<Endomorphism<P>>,
}

impl<P: SWCurveConfig> PointTable<P> {
    /// A table of `bases`.
    pub fn new(bases: &[Affine<P>]) -> Self {
        let zero = P::BaseField::ZERO;
        Self {
            pts: bases
                .par_iter()
                .map(|p| Pt {
                    x: if p.is_zero() { zero } else { p.x },
                    y: if p.is_zero() { zero } else { p.y },
                })
                .collect(),
            infinity: bases.iter().map(|p| p.is_zero()).collect(),
            phi: None,
        }
    }

    /// A table of `bases` for [`msm_glv_table`], with the GLV endomorphism `phi` (which
    /// must be `P ↦ λ·P` for the `λ` of [`glv_decompose`]).
    pub fn with_glv(bases: &[Affine<P>], phi: Endomorphism<P>) -> Self {
        Self {
            phi: Some(phi),
            ..Self::new(bases)
        }
    }

    /// Bases.
    pub fn len(&self) -> usize {
        self.infinity.len()
    }

    /// Whether the table has no bases.
    pub fn is_empty(&self) -> bool {
        self.infinity.is_empty()
    }

    /// Base `i`.
    pub fn base(&self, i: usize) -> Option<Affine<P>> {
        let inf = *self.infinity.get(i)?;
        let p = self.pts[i];
        Some(if inf {
            Affine::identity()
        } else {
            Affine::new_unchecked(p.x, p.y)
        })
    }
}

/// The window size (bits per digit) for `n` scalars of `bits` bits, by the cost model in
/// the module documentation.
pub fn window_bits(n: usize, bits: u32) -> u32 {
    let n = n.max(1) as f64;
    (2..=22u32)
        .min_by(|&a, &b| {
            let cost = |c: u32| {
                let windows = bits.div_ceil(c) as f64;
                windows * (9.0 * n + 27.0 * (1u64 << (c - 1)) as f64)
            };
            cost(a).total_cmp(&cost(b))
        })
        .unwrap_or(8)
}

/// `Σ scalars[i]·bases[i]`. The slices must have equal lengths, at most [`MAX_BASES`]
/// (checked by the caller); points at infinity and zero scalars contribute nothing.
pub fn msm<P: SWCurveConfig>(bases: &[Affine<P>], scalars: &[P::ScalarField]) -> Projective<P> {
    debug_assert_eq!(bases.len(), scalars.len());
    let n = bases.len().min(scalars.len());
    if n == 0 {
        return Projective::zero();
    }
    let bits = P::ScalarField::MODULUS_BIT_SIZE;
    let c = window_bits(n, bits);
    msm_with_window(&bases[..n], &scalars[..n], c)
}

/// [`msm`] with a given window size `c` (2 ≤ c ≤ 30); exposed for tuning and tests.
pub fn msm_with_window<P: SWCurveConfig>(
    bases: &[Affine<P>],
    scalars: &[P::ScalarField],
    c: u32,
) -> Projective<P> {
    let n = bases.len().min(scalars.len());
    if n == 0 {
        return Projective::zero();
    }
    let c = c.clamp(2, 30);
    let table = PointTable::new(&bases[..n]);
    // After replacing s > r/2 by r - s, every scalar is below 2^(bits-1); `windows·c ≥ bits`
    // leaves room for the final borrow, so the top digit never needs wrapping.
    let bits = P::ScalarField::MODULUS_BIT_SIZE;
    let windows = bits.div_ceil(c) as usize;
    let digits = signed_digits::<P>(&table.infinity, &scalars[..n], c, windows);
    let sums: Vec<Projective<P>> = (0..windows)
        .into_par_iter()
        .map(|w| window_sum(&table.pts, None, &digits, windows, w, c, GROUP))
        .collect();
    combine_windows(&sums, c)
}

/// `Σ_w 2^(w·c)·sums[w]` by Horner's rule from the top window.
fn combine_windows<P: SWCurveConfig>(sums: &[Projective<P>], c: u32) -> Projective<P> {
    let mut total = Projective::<P>::zero();
    for sum in sums.iter().rev() {
        for _ in 0..c {
            total.double_in_place();
        }
        total += sum;
    }
    total
}

/// Signed digits of every scalar, scalar-major (`digits[i·windows + w]`), with the sign of
/// the scalar's own negation folded in. A base at infinity gets all-zero digits.
fn signed_digits<P: SWCurveConfig>(
    infinity: &[bool],
    scalars: &[P::ScalarField],
    c: u32,
    windows: usize,
) -> Vec<i32> {
    let half = P::ScalarField::MODULUS_MINUS_ONE_DIV_TWO;
    let modulus = P::ScalarField::MODULUS;
    let mut digits = vec![0i32; scalars.len() * windows];
    digits
        .par_chunks_mut(windows)
        .zip(scalars.par_iter())
        .zip(infinity.par_iter())
        .for_each(|((out, s), &inf)| {
            if inf {
                return;
            }
            let mut v = s.into_bigint();
            let negate = v > half;
            if negate {
                let mut m = modulus;
                m.sub_with_borrow(&v);
                v = m;
            }
            fill_digits(v.as_ref(), negate, c, out);
        });
    digits
}

/// Writes the signed `c`-bit digits of the magnitude `limbs` into `out` (one per window),
/// negated when `negate`. The magnitude must be below `2^(out.len()·c - 1)`, so the last
/// window's digit (with the carry) is at most `2^(c-1)` and never wraps.
fn fill_digits(limbs: &[u64], negate: bool, c: u32, out: &mut [i32]) {
    let windows = out.len();
    let full = 1i64 << c;
    let half_window = 1i64 << (c - 1);
    let mut carry = 0i64;
    for (w, d) in out.iter_mut().enumerate() {
        let mut digit = window_value(limbs, w as u32 * c, c) as i64 + carry;
        carry = 0;
        if digit >= half_window && w + 1 < windows {
            digit -= full;
            carry = 1;
        }
        *d = if negate { -digit } else { digit } as i32;
    }
}

/// The `c` bits of `limbs` starting at bit `pos` (zeros past the end).
fn window_value(limbs: &[u64], pos: u32, c: u32) -> u64 {
    let limb = (pos / 64) as usize;
    let off = pos % 64;
    let Some(&lo) = limbs.get(limb) else {
        return 0;
    };
    let mut v = lo >> off;
    if off + c > 64
        && let Some(&hi) = limbs.get(limb + 1)
    {
        v |= hi << (64 - off);
    }
    v & ((1u64 << c) - 1)
}

/// The sum `Σ_j digit_w(j)·point(j)` of window `w` (`digits` holds `windows` digits per
/// digit row `j`, row-major). Without `phi`, row `j` is `pts[j]`. With the GLV
/// endomorphism `phi`, rows come in pairs: row `2i` is `pts[i]` (the `k1` half), row
/// `2i + 1` is `φ(pts[i])` (the `k2` half); the `k2` rows go to buckets of their own, so
/// they are summed as `pts[i]` and `φ` is applied once per bucket sum instead of being
/// stored per base: `Σ_b b·(B1_b + φ(B2_b))`.
///
/// The points with a non-zero digit are counting-sorted by bucket (`|digit| - 1`, and for
/// GLV times two plus the half), then
/// the buckets are summed in groups of consecutive buckets holding about `group` points
/// (a bucket larger than that is a group of its own), from the top bucket down: a group's
/// points are gathered into a small buffer and halved round by round
/// ([`Scratch::reduce`]) until each bucket holds its sum; every round after the gather runs
/// in cache. The bucket sums (for GLV merged first: `S_b = B1_b + φ(B2_b)`, one more
/// batch-affine reduction) are then weighted by [`weighted_sum`].
#[allow(clippy::too_many_arguments)]
fn window_sum<P: SWCurveConfig>(
    pts: &[Pt<P::BaseField>],
    phi: Option<Endomorphism<P>>,
    digits: &[i32],
    windows: usize,
    w: usize,
    c: u32,
    group: usize,
) -> Projective<P> {
    // Bucket of row j with digit d: |d| - 1, or for GLV 2(|d| - 1) + (j mod 2).
    let glv = usize::from(phi.is_some());
    let bucket = |j: usize, d: i32| ((d.unsigned_abs() as usize - 1) << glv) | (j & glv);
    let buckets = 1usize << (c - 1 + glv as u32);
    let mut offsets = vec![0u32; buckets + 1];
    for (j, d) in digits.iter().skip(w).step_by(windows).enumerate() {
        if *d != 0 {
            offsets[bucket(j, *d) + 1] += 1;
        }
    }
    for b in 0..buckets {
        offsets[b + 1] += offsets[b];
    }
    let nonzero = offsets[buckets] as usize;
    if nonzero == 0 {
        return Projective::zero();
    }
    let mut cursor = offsets.clone();
    let mut sorted = vec![0u32; nonzero];
    for (j, d) in digits.iter().skip(w).step_by(windows).enumerate() {
        if *d != 0 {
            let b = bucket(j, *d);
            sorted[cursor[b] as usize] = (j >> glv) as u32 | if *d < 0 { NEG } else { 0 };
            cursor[b] += 1;
        }
    }
    drop(cursor);

    let group = group.max(1);
    let mut scratch = Scratch::default();
    let mut sums = BucketSums::default();
    let mut hi = buckets;
    while hi > 0 {
        let end = offsets[hi] as usize;
        let mut lo = hi - 1;
        while lo > 0 && end - offsets[lo - 1] as usize <= group {
            lo -= 1;
        }
        let start = offsets[lo] as usize;
        if start < end {
            // The gather is a stream of cache misses: it only copies, so that no branch
            // (a negation's sign is as good as random) squashes the loads in flight. The
            // signs are applied afterwards, to points already in cache.
            let group_rows = &sorted[start..end];
            scratch.cur.clear();
            scratch
                .cur
                .extend(group_rows.iter().map(|&e| pts[(e & !NEG) as usize]));
            for (p, &e) in scratch.cur.iter_mut().zip(group_rows) {
                if e & NEG != 0 {
                    p.y = -p.y;
                }
            }
            scratch.offs.clear();
            scratch
                .offs
                .extend(offsets[lo..=hi].iter().map(|o| o - offsets[lo]));
            scratch.reduce::<P>();
            scratch.collect_sums(lo as u32, &mut sums);
        }
        hi = lo;
    }
    drop(sorted);
    let sums = match phi {
        // Bucket 2m + h holds the half-h sums of digit m + 1: S_m = B1_m + φ(B2_m).
        Some(phi) => {
            for (b, p) in sums.keys.iter().zip(sums.pts.iter_mut()) {
                if b & 1 == 1 {
                    let q = phi(&Affine::new_unchecked(p.x, p.y));
                    *p = Pt { x: q.x, y: q.y };
                }
            }
            scratch.sum_by_key::<P>(&sums, buckets >> 1, |b| b >> 1)
        }
        None => sums,
    };
    weighted_sum(&sums, buckets >> glv, &mut scratch)
}

/// Bucket sums that are not empty: bucket `keys[i]` holds `pts[i]`.
#[derive(Default)]
struct BucketSums<F> {
    keys: Vec<u32>,
    pts: Vec<Pt<F>>,
}

/// `Σ_m (m+1)·S_m` for the bucket sums `S_m` of `sums` (`m < buckets`).
///
/// A running sum over the buckets would cost two projective additions per bucket. Instead,
/// with `m = hi·K + lo` (`K ≈ √buckets`), `Σ (m+1)·S_m = K·Σ_hi hi·T_hi + Σ_lo (lo+1)·U_lo`
/// where `T_hi = Σ_lo S_{hi·K+lo}` and `U_lo = Σ_hi S_{hi·K+lo}`: the two families of
/// sums are batch-affine reductions like the buckets' own (about six multiplications per
/// addition), and only the `≈ 2√buckets` sums `T`, `U` go through running sums.
fn weighted_sum<P: SWCurveConfig>(
    sums: &BucketSums<P::BaseField>,
    buckets: usize,
    scratch: &mut Scratch<P::BaseField>,
) -> Projective<P> {
    if sums.keys.is_empty() {
        return Projective::zero();
    }
    let k = buckets.max(1).ilog2() / 2;
    let lo_count = 1usize << k;
    let hi_count = buckets.div_ceil(lo_count);
    let high = scratch.sum_by_key::<P>(sums, hi_count, |m| m >> k);
    let low = scratch.sum_by_key::<P>(sums, lo_count, |m| m & (lo_count as u32 - 1));
    let mut total = running_sum::<P>(&high, hi_count, 0);
    for _ in 0..k {
        total.double_in_place();
    }
    total + running_sum::<P>(&low, lo_count, 1)
}

/// `Σ_j (j + first)·V_j` for the sums `V_j` (`j < count`), by a running sum from the top.
fn running_sum<P: SWCurveConfig>(
    sums: &BucketSums<P::BaseField>,
    count: usize,
    first: u32,
) -> Projective<P> {
    let mut dense = vec![None; count];
    for (&j, p) in sums.keys.iter().zip(&sums.pts) {
        dense[j as usize] = Some(Affine::<P>::new_unchecked(p.x, p.y));
    }
    let mut running = Projective::<P>::zero();
    let mut total = Projective::<P>::zero();
    for (j, v) in dense.iter().enumerate().rev() {
        if let Some(v) = v {
            running += v;
        }
        if j as u32 + first > 0 {
            total += &running;
        }
    }
    total
}

/// The buffers of one bucket group, reused from group to group.
struct Scratch<F> {
    /// The group's points, bucket by bucket (bucket `b` at `offs[b]..offs[b+1]`).
    cur: Vec<Pt<F>>,
    offs: Vec<u32>,
    /// The next round's points and offsets.
    next: Vec<Pt<F>>,
    next_offs: Vec<u32>,
    /// One denominator per pair, then its inverse.
    den: Vec<F>,
    /// Prefix products for [`batch_invert_into`].
    prefix: Vec<F>,
}

impl<F> Default for Scratch<F> {
    fn default() -> Self {
        Self {
            cur: Vec::new(),
            offs: Vec::new(),
            next: Vec::new(),
            next_offs: Vec::new(),
            den: Vec::new(),
            prefix: Vec::new(),
        }
    }
}

impl<F: Field> Scratch<F> {
    /// Appends the sum left in each bucket of the group by [`Self::reduce`] to `out`, keyed
    /// `first + b` for the group's bucket `b`.
    fn collect_sums(&self, first: u32, out: &mut BucketSums<F>) {
        for (b, r) in self.offs.windows(2).enumerate() {
            if r[1] > r[0] {
                out.keys.push(first + b as u32);
                out.pts.push(self.cur[r[0] as usize]);
            }
        }
    }

    /// `V_j = Σ_{key(m) = j} S_m` for every `j < count` with a non-empty sum: the sums
    /// are counting-sorted by key and reduced like a bucket group.
    fn sum_by_key<P: SWCurveConfig<BaseField = F>>(
        &mut self,
        sums: &BucketSums<F>,
        count: usize,
        key: impl Fn(u32) -> u32,
    ) -> BucketSums<F> {
        self.offs.clear();
        self.offs.resize(count + 1, 0);
        for &m in &sums.keys {
            self.offs[key(m) as usize + 1] += 1;
        }
        for j in 0..count {
            self.offs[j + 1] += self.offs[j];
        }
        let mut cursor = self.offs.clone();
        self.cur.clear();
        self.cur.resize(
            sums.pts.len(),
            Pt {
                x: F::ZERO,
                y: F::ZERO,
            },
        );
        for (&m, p) in sums.keys.iter().zip(&sums.pts) {
            let slot = &mut cursor[key(m) as usize];
            self.cur[*slot as usize] = *p;
            *slot += 1;
        }
        self.reduce::<P>();
        let mut out = BucketSums::default();
        self.collect_sums(0, &mut out);
        out
    }

    /// Adds the points of each bucket in pairs, round by round, until every bucket holds
    /// at most one point: its sum (none when its points cancel). One round's additions
    /// share one inversion (Montgomery's trick), so an affine addition costs about six
    /// multiplications instead of the eleven of a mixed projective one.
    fn reduce<P: SWCurveConfig<BaseField = F>>(&mut self) {
        while self.offs.windows(2).any(|r| r[1] - r[0] > 1) {
            // Denominators: x_q - x_p for an addition, 2·y_p for a doubling, 1 (unused)
            // when the pair cancels to the point at infinity.
            self.den.clear();
            for r in self.offs.windows(2) {
                let (s, e) = (r[0] as usize, r[1] as usize);
                let mut k = s;
                while k + 1 < e {
                    let (p, q) = (&self.cur[k], &self.cur[k + 1]);
                    self.den.push(if p.x != q.x {
                        q.x - p.x
                    } else if p.y == q.y && !p.y.is_zero() {
                        p.y.double()
                    } else {
                        F::ONE
                    });
                    k += 2;
                }
            }
            batch_invert_into(&mut self.den, &mut self.prefix);
            self.next.clear();
            self.next_offs.clear();
            self.next_offs.push(0);
            let mut inv = self.den.iter();
            for r in self.offs.windows(2) {
                let (s, e) = (r[0] as usize, r[1] as usize);
                let mut k = s;
                while k + 1 < e {
                    let (p, q) = (&self.cur[k], &self.cur[k + 1]);
                    k += 2;
                    let Some(inv) = inv.next() else { break };
                    let lambda = if p.x != q.x {
                        (q.y - p.y) * inv
                    } else if p.y == q.y && !p.y.is_zero() {
                        let xx = p.x.square();
                        (xx.double() + xx + P::COEFF_A) * inv
                    } else {
                        continue;
                    };
                    let x = lambda.square() - p.x - q.x;
                    let y = lambda * (p.x - x) - p.y;
                    self.next.push(Pt { x, y });
                }
                if k < e {
                    self.next.push(self.cur[k]);
                }
                self.next_offs.push(self.next.len() as u32);
            }
            std::mem::swap(&mut self.cur, &mut self.next);
            std::mem::swap(&mut self.offs, &mut self.next_offs);
        }
    }
}

/// Independent product chains in [`batch_invert`]: Montgomery's trick is a serial chain
/// of multiplications, so it is latency-bound; interleaving `LANES` chains lets the CPU
/// overlap them.
const LANES: usize = 8;

/// Inverts every element of `v` in place with one field inversion (Montgomery's trick, run
/// as `LANES` interleaved chains whose totals are themselves inverted together). Zeros
/// are left as zero.
pub fn batch_invert<F: Field>(v: &mut [F]) {
    batch_invert_into(v, &mut Vec::with_capacity(v.len()));
}

/// [`batch_invert`] with a caller's buffer for the prefix products.
fn batch_invert_into<F: Field>(v: &mut [F], prefix: &mut Vec<F>) {
    prefix.clear();
    let mut acc = [F::ONE; LANES];
    for chunk in v.chunks(LANES) {
        for (a, x) in acc.iter_mut().zip(chunk) {
            if !x.is_zero() {
                *a *= x;
            }
            prefix.push(*a);
        }
    }
    // One inversion for all lanes: the same trick, serially, on LANES elements.
    let mut lane_prefix = [F::ONE; LANES];
    let mut total = F::ONE;
    for (p, a) in lane_prefix.iter_mut().zip(&acc) {
        total *= a;
        *p = total;
    }
    // Every lane total is a product of non-zero elements, so `total` is invertible.
    let mut total_inv = total.inverse().unwrap_or(F::ZERO);
    let mut inv = [F::ZERO; LANES];
    for l in (0..LANES).rev() {
        let before = if l == 0 { F::ONE } else { lane_prefix[l - 1] };
        inv[l] = total_inv * before;
        total_inv *= acc[l];
    }
    let full = v.len() - v.len() % LANES;
    let (body, tail) = v.split_at_mut(full);
    // The ragged tail belongs to the lanes 0..tail.len(); undo it first.
    // Element `i` sits in lane `l`: its inverse is the lane's running inverse times the
    // prefix product before it in that lane; then the lane's inverse absorbs the element.
    let mut undo = |x: &mut F, i: usize, l: usize| {
        if x.is_zero() {
            return;
        }
        let before = if i >= LANES {
            prefix[i - LANES]
        } else {
            F::ONE
        };
        let orig = *x;
        *x = inv[l] * before;
        inv[l] *= orig;
    };
    for (l, x) in tail.iter_mut().enumerate().rev() {
        undo(x, full + l, l);
    }
    for (c, chunk) in body.chunks_mut(LANES).enumerate().rev() {
        for (l, x) in chunk.iter_mut().enumerate() {
            undo(x, c * LANES + l, l);
        }
    }
}

// ---------------------------------------------------------------------------------------
// GLV for BN254 G1 and G2.
// ---------------------------------------------------------------------------------------

/// Bits the GLV window loop covers: both halves of a decomposed scalar are below `2^126`
/// in magnitude (see [`glv_decompose`]), well below the `2^(GLV_BITS-1)` that
/// the signed-digit recoding needs.
pub const GLV_BITS: u32 = 128;

/// The lattice `{(x, y) : x + y·λ ≡ 0 (mod r)}` has the reduced basis `v1 = (A1, -B1)`,
/// `v2 = (A2, B2)` (found by the extended Euclidean algorithm on `(r, λ)`, as in
/// Gallant–Lambert–Vanstone §4), with `A1·B2 + A2·B1 = r`. All four are checked in tests.
pub const GLV_A1: u128 = 0x6f4d8248eeb859fc8211bbeb7d4f1128;
/// See [`GLV_A1`].
pub const GLV_B1: u128 = 0x89d3256894d213e3;
/// See [`GLV_A1`].
pub const GLV_A2: u128 = 0x89d3256894d213e3;
/// See [`GLV_A1`].
pub const GLV_B2: u128 = 0x6f4d8248eeb859fd0be4e1541221250b;
/// `round(2^256·B2 / r)`, little-endian limbs: `c1 = round(k·B2 / r)` without a division.
const GLV_G1: [u64; 3] = [0x5398fd0300ff6565, 0x4ccef014a773d2d2, 0x2];
/// `round(2^256·B1 / r)`, little-endian limbs.
const GLV_G2: [u64; 3] = [0xd91d232ec7e0b3d7, 0x2, 0x0];

/// `round(k·g / 2^256)` for a 256-bit `k` and a 192-bit `g`, when the result fits 128 bits.
fn mul_shift_round(k: &[u64; 4], g: &[u64; 3]) -> u128 {
    let mut prod = [0u64; 7];
    for (i, &ki) in k.iter().enumerate() {
        let mut carry = 0u128;
        for (j, &gj) in g.iter().enumerate() {
            let t = ki as u128 * gj as u128 + prod[i + j] as u128 + carry;
            prod[i + j] = t as u64;
            carry = t >> 64;
        }
        prod[i + 3] = carry as u64;
    }
    // Add 2^255 (one half of the divisor) to round to nearest.
    let (t, mut carry) = prod[3].overflowing_add(1 << 63);
    prod[3] = t;
    for limb in prod.iter_mut().skip(4) {
        let (t, c) = limb.overflowing_add(carry as u64);
        *limb = t;
        carry = c;
    }
    prod[4] as u128 | (prod[5] as u128) << 64
}

/// A scalar half: `(negative, magnitude)`.
pub type SignedHalf = (bool, u128);

/// The GLV decomposition `k ≡ k1 + k2·λ (mod r)` of a BN254 scalar, with
/// `|k1|, |k2| < 2^126`, by Babai rounding against the basis of [`GLV_A1`]:
/// `c1 = round(k·B2/r)`, `c2 = round(k·B1/r)`, `k1 = k - c1·A1 - c2·A2`,
/// `k2 = c1·B1 - c2·B2`. The halves are small, so they are computed modulo `2^128` and
/// read as signed (Gallant, Lambert, Vanstone, "Faster point multiplication on elliptic
/// curves with efficient endomorphisms", CRYPTO 2001).
pub fn glv_decompose(k: &ark_bn254::Fr) -> (SignedHalf, SignedHalf) {
    let limbs = k.into_bigint().0;
    let c1 = mul_shift_round(&limbs, &GLV_G1);
    let c2 = mul_shift_round(&limbs, &GLV_G2);
    let low = limbs[0] as u128 | (limbs[1] as u128) << 64;
    let k1 = low
        .wrapping_sub(c1.wrapping_mul(GLV_A1))
        .wrapping_sub(c2.wrapping_mul(GLV_A2)) as i128;
    let k2 = c1
        .wrapping_mul(GLV_B1)
        .wrapping_sub(c2.wrapping_mul(GLV_B2)) as i128;
    ((k1 < 0, k1.unsigned_abs()), (k2 < 0, k2.unsigned_abs()))
}

/// The endomorphism `φ(x, y) = (β·x, y)` of BN254 G1, `β` a primitive cube root of unity
/// in Fq; `φ(P) = λ·P` for the `λ` of ark-bn254's `GLVConfig` (checked in tests). The
/// point at infinity maps to itself.
pub fn glv_endomorphism(p: &ark_bn254::G1Affine) -> ark_bn254::G1Affine {
    use ark_ec::scalar_mul::glv::GLVConfig;
    if p.is_zero() {
        return *p;
    }
    let beta = ark_bn254::g1::Config::ENDO_COEFFS[0];
    ark_bn254::G1Affine::new_unchecked(p.x * beta, p.y)
}

/// The same endomorphism on BN254 G2 (the twist): `(x, y) ↦ (β²·x, y)`, which is `λ·Q`
/// for the G1 `λ`, so [`glv_decompose`] serves both groups. (`(β·x, y)` is `λ²·Q` on the
/// twist: ark-bn254's G2 `GLVConfig` pairs `β` with `λ² = -λ - 1`.) Checked in tests.
pub fn glv_endomorphism_g2(q: &ark_bn254::G2Affine) -> ark_bn254::G2Affine {
    use ark_ec::scalar_mul::glv::GLVConfig;
    if q.is_zero() {
        return *q;
    }
    let beta = ark_bn254::g1::Config::ENDO_COEFFS[0];
    let mut x = q.x;
    x.mul_assign_by_basefield(&beta.square());
    ark_bn254::G2Affine::new_unchecked(x, q.y)
}

/// `Σ scalars[i]·bases[i]` on BN254 G1 or G2 with the GLV endomorphism `phi`
/// ([`glv_endomorphism`] or [`glv_endomorphism_g2`]). Each scalar is split by
/// [`glv_decompose`], and the MSM runs over the `2n` points `bases[i], φ(bases[i])` with
/// 128-bit scalars: half the windows of [`msm`]. The halves' signs become digit signs,
/// so negation costs nothing. Builds a [`PointTable`] first; a prover keeps one and calls
/// [`msm_glv_table`].
pub fn msm_glv<P: SWCurveConfig<ScalarField = ark_bn254::Fr>>(
    bases: &[Affine<P>],
    phi: Endomorphism<P>,
    scalars: &[ark_bn254::Fr],
) -> Projective<P> {
    let n = bases.len().min(scalars.len());
    msm_glv_table(&PointTable::with_glv(&bases[..n], phi), 0..n, &scalars[..n])
}

/// [`msm_glv`] with a given window size `c` (2 ≤ c ≤ 30); exposed for tuning and tests.
pub fn msm_glv_with_window<P: SWCurveConfig<ScalarField = ark_bn254::Fr>>(
    bases: &[Affine<P>],
    phi: Endomorphism<P>,
    scalars: &[ark_bn254::Fr],
    c: u32,
) -> Projective<P> {
    let n = bases.len().min(scalars.len());
    let table = PointTable::with_glv(&bases[..n], phi);
    msm_glv_tuned(&table, 0..n, &scalars[..n], c, GROUP)
}

/// `Σ scalars[i]·bases[range.start + i]` over a table made by [`PointTable::with_glv`]:
/// [`msm_glv`] on `range`, with the window size of the cost model. The range must lie
/// within the table and match the scalars in length (checked by the caller).
pub fn msm_glv_table<P: SWCurveConfig<ScalarField = ark_bn254::Fr>>(
    table: &PointTable<P>,
    range: std::ops::Range<usize>,
    scalars: &[ark_bn254::Fr],
) -> Projective<P> {
    let n = range.len().min(scalars.len());
    if n == 0 {
        return Projective::zero();
    }
    msm_glv_tuned(table, range, scalars, window_bits(2 * n, GLV_BITS), GROUP)
}

/// [`msm_glv_table`] with a given window size `c` (2 ≤ c ≤ 30) and bucket-group size
/// (see [`GROUP`]); exposed for tuning and tests. A table without the endomorphism,
/// or more than [`MAX_BASES`] digit rows, falls back to [`msm_with_window`].
pub fn msm_glv_tuned<P: SWCurveConfig<ScalarField = ark_bn254::Fr>>(
    table: &PointTable<P>,
    range: std::ops::Range<usize>,
    scalars: &[ark_bn254::Fr],
    c: u32,
    group: usize,
) -> Projective<P> {
    let range = range.start..range.end.min(table.len());
    let n = range.len().min(scalars.len());
    if n == 0 {
        return Projective::zero();
    }
    let (range, scalars) = (range.start..range.start + n, &scalars[..n]);
    let c = c.clamp(2, 30);
    let Some(phi) = table.phi.filter(|_| 2 * n <= MAX_BASES) else {
        let bases: Vec<Affine<P>> = range.filter_map(|i| table.base(i)).collect();
        return msm_with_window(&bases, scalars, c);
    };
    let windows = GLV_BITS.div_ceil(c) as usize;
    let pts = &table.pts[range.clone()];
    let rows = RecodedRows::new(scalars, &table.infinity[range], c, windows);
    let sums: Vec<Projective<P>> = (0..windows)
        .into_par_iter()
        .map(|w| window_sum(pts, Some(phi), &rows.digits(w), 1, 0, c, group))
        .collect();
    combine_windows(&sums, c)
}

/// The GLV halves of every scalar, recoded so that any one window's signed digits can be
/// read without the others: for a magnitude `k < 2^127` and `offset = Σ_{w < top}
/// 2^(c-1)·2^(c·w)`, the digits of window `w < top` are `bits_w(k + offset) - 2^(c-1)`,
/// in `[-2^(c-1), 2^(c-1))`, and the top window's are `bits_top(k + offset) ≤ 2^(c-1)`
/// (because `c·windows ≥ 128`); together they sum back to `k`. Rows are stored as
/// `k + offset` (16 bytes, half what all windows' digits take) and each window's digits are
/// computed when that window is summed, as one contiguous vector, instead of being read
/// with a stride out of a scalar-major table.
struct RecodedRows {
    /// `k + offset` for row `2i` (the k1 half of scalar i) and `2i + 1` (k2).
    shifted: Vec<u128>,
    /// Whether the row's half is negative.
    negative: Vec<bool>,
    c: u32,
    windows: usize,
}

impl RecodedRows {
    fn new(scalars: &[ark_bn254::Fr], infinity: &[bool], c: u32, windows: usize) -> Self {
        let half = 1u128 << (c - 1);
        let offset: u128 = (0..windows - 1).map(|w| half << (c as usize * w)).sum();
        let mut shifted = vec![offset; 2 * scalars.len()];
        let mut negative = vec![false; 2 * scalars.len()];
        shifted
            .par_chunks_mut(2)
            .zip(negative.par_chunks_mut(2))
            .zip(scalars.par_iter().zip(infinity.par_iter()))
            .for_each(|((k, neg), (s, &inf))| {
                if inf {
                    return;
                }
                let ((n1, m1), (n2, m2)) = glv_decompose(s);
                k[0] = m1 + offset;
                k[1] = m2 + offset;
                neg[0] = n1;
                neg[1] = n2;
            });
        Self {
            shifted,
            negative,
            c,
            windows,
        }
    }

    /// The signed digits of window `w`, one per row.
    fn digits(&self, w: usize) -> Vec<i32> {
        let shift = self.c as usize * w;
        let mask = (1u128 << self.c) - 1;
        let bias = if w + 1 == self.windows {
            0
        } else {
            1i32 << (self.c - 1)
        };
        self.shifted
            .iter()
            .zip(&self.negative)
            .map(|(&k, &neg)| {
                let d = ((k >> shift) & mask) as i32 - bias;
                if neg { -d } else { d }
            })
            .collect()
    }
}
