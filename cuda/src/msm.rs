//! The host side of the GPU MSM (the kernels and the algorithm are described in
//! `kernels/msm.cl`): data layout, the window plan, memory use, the launches.

use std::ops::Range;
use std::time::{Duration, Instant};

use ark_bn254::{Fq, Fq2, Fr, g1, g2};
use ark_ec::AdditiveGroup;
use ark_ec::AffineRepr;
use ark_ec::short_weierstrass::{Affine, Projective, SWCurveConfig};
use ark_ff::{BigInt, Fp, MontBackend, MontConfig, Zero};

use crate::buckets::Schedule;
use crate::device::{Arg, Buffer, Device, GpuError};

/// `u32`s as the device's little-endian words.
fn u32_bytes(words: &[u32]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

/// A field element as the kernels lay it out: little-endian 32-bit limbs of the Montgomery
/// form, which are the bytes of arkworks' little-endian `u64` limbs.
pub trait DeviceField: Sized {
    /// Bytes per element.
    const BYTES: usize;
    /// Appends the element's device bytes.
    fn put(&self, out: &mut Vec<u8>);
    /// Reads an element from `BYTES` device bytes. The kernels only produce reduced
    /// values, so no check is made.
    fn get(bytes: &[u8]) -> Self;
}

fn put_limbs(limbs: &[u64; 4], out: &mut Vec<u8>) {
    for l in limbs {
        out.extend_from_slice(&l.to_le_bytes());
    }
}

fn get_limbs(bytes: &[u8]) -> BigInt<4> {
    let mut limbs = [0u64; 4];
    for (limb, chunk) in limbs.iter_mut().zip(bytes.chunks_exact(8)) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        *limb = u64::from_le_bytes(word);
    }
    BigInt(limbs)
}

/// Fq and Fr: arkworks' Montgomery-backend prime fields with four 64-bit limbs.
impl<P: MontConfig<4>> DeviceField for Fp<MontBackend<P, 4>, 4> {
    const BYTES: usize = 32;
    fn put(&self, out: &mut Vec<u8>) {
        put_limbs(&self.0.0, out);
    }
    fn get(bytes: &[u8]) -> Self {
        Self::new_unchecked(get_limbs(bytes))
    }
}

impl DeviceField for Fq2 {
    const BYTES: usize = 64;
    fn put(&self, out: &mut Vec<u8>) {
        self.c0.put(out);
        self.c1.put(out);
    }
    fn get(bytes: &[u8]) -> Self {
        Fq2::new(Fq::get(&bytes[..32]), Fq::get(&bytes[32..64]))
    }
}

/// The device bytes of a slice of field elements.
pub fn to_device<F: DeviceField>(values: &[F]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() * F::BYTES);
    for v in values {
        v.put(&mut out);
    }
    out
}

/// Field elements back from device bytes.
pub fn from_device<F: DeviceField>(bytes: &[u8]) -> Vec<F> {
    bytes.chunks_exact(F::BYTES).map(F::get).collect()
}

/// A BN254 group the kernels implement.
pub trait GpuCurve: SWCurveConfig<ScalarField = Fr> {
    /// The kernels' prefix: `g1` or `g2`.
    const PREFIX: &'static str;
    /// Bytes of a coordinate.
    const COORD_BYTES: usize;
    /// Appends a coordinate's device bytes.
    fn put_coord(x: &Self::BaseField, out: &mut Vec<u8>);
    /// Reads a coordinate.
    fn get_coord(bytes: &[u8]) -> Self::BaseField;

    /// Bytes of an affine point (x, y).
    fn affine_bytes() -> usize {
        2 * Self::COORD_BYTES
    }
    /// Bytes of a Jacobian point (X, Y, Z).
    fn jacobian_bytes() -> usize {
        3 * Self::COORD_BYTES
    }
    /// Appends an affine point; infinity as (0, 0), as the kernels expect.
    fn put_affine(p: &Affine<Self>, out: &mut Vec<u8>) {
        if p.is_zero() {
            out.resize(out.len() + Self::affine_bytes(), 0);
        } else {
            Self::put_coord(&p.x, out);
            Self::put_coord(&p.y, out);
        }
    }
    /// Reads a Jacobian point: the kernels' layout is arkworks' `Projective`.
    fn get_jacobian(bytes: &[u8]) -> Projective<Self> {
        let c = Self::COORD_BYTES;
        Projective::new_unchecked(
            Self::get_coord(&bytes[..c]),
            Self::get_coord(&bytes[c..2 * c]),
            Self::get_coord(&bytes[2 * c..3 * c]),
        )
    }
}

impl GpuCurve for g1::Config {
    const PREFIX: &'static str = "g1";
    const COORD_BYTES: usize = 32;
    fn put_coord(x: &Fq, out: &mut Vec<u8>) {
        x.put(out);
    }
    fn get_coord(bytes: &[u8]) -> Fq {
        Fq::get(bytes)
    }
}

impl GpuCurve for g2::Config {
    const PREFIX: &'static str = "g2";
    const COORD_BYTES: usize = 64;
    fn put_coord(x: &Fq2, out: &mut Vec<u8>) {
        x.put(out);
    }
    fn get_coord(bytes: &[u8]) -> Fq2 {
        Fq2::get(bytes)
    }
}

/// The most scalars one pass handles: list positions are 32-bit, and windows × scalars
/// must stay below 2³². Longer MSMs run in passes whose sums are added.
pub const MAX_PASS: usize = 1 << 22;

/// Buckets per scan block (pass 1 of the prefix sum).
const SCAN_BLOCK: u32 = 256;

/// How one pass is cut: window width, windows, buckets, reduction segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// Digit entries per window: the scalars, or twice as many with GLV (both halves).
    pub n: u32,
    /// Scalars in the pass.
    pub scalars: u32,
    /// Whether the scalars are split by GLV ([`crate::glv`]).
    pub glv: bool,
    /// Window width in bits.
    pub c: u32,
    /// Windows: enough that the top one, signed, never carries out of the scalar's bits
    /// plus one (255 bits; 129 for GLV's halves).
    pub windows: u32,
    /// Buckets per window: digit magnitudes 1..=2^(c-1).
    pub buckets: u32,
    /// Scan blocks per window.
    pub blocks: u32,
    /// Buckets per reduction segment.
    pub seg_len: u32,
    /// Segments per window.
    pub segs: u32,
}

impl Plan {
    /// The plan for `scalars` scalars (at most [`MAX_PASS`]), split by GLV: what the
    /// device runs.
    pub fn new(scalars: usize) -> Self {
        Self::with(scalars, true)
    }

    /// The plan without the GLV split, 254-bit digits over twice the windows: kept to
    /// measure GLV against, in the same run.
    pub fn plain(scalars: usize) -> Self {
        Self::with(scalars, false)
    }

    /// The width grows with `log₂ n` of the digit entries so that buckets hold a few dozen
    /// points each (the bucket sums are the parallel part) while the reduction's serial
    /// runs stay short.
    fn with(scalars: usize, glv: bool) -> Self {
        let n = if glv { 2 * scalars } else { scalars };
        let log = usize::BITS - n.max(1).leading_zeros();
        let c = log.saturating_sub(4).clamp(4, 16);
        let bits = if glv { crate::glv::HALF_BITS + 1 } else { 255 };
        let windows = bits.div_ceil(c);
        let buckets = 1u32 << (c - 1);
        let seg_len = (buckets / 256).max(1).min(buckets);
        Self {
            n: n as u32,
            scalars: scalars as u32,
            glv,
            c,
            windows,
            buckets,
            blocks: buckets.div_ceil(SCAN_BLOCK),
            seg_len,
            segs: buckets.div_ceil(seg_len),
        }
    }

    /// Device bytes one pass allocates for a group with `jacobian` bytes per point, at
    /// most, whatever the scalars (the bucket-sum partials are bounded by
    /// [`Schedule::max_partials`]).
    pub fn scratch_bytes(&self, jacobian: usize) -> u64 {
        let n = u64::from(self.n);
        let w = u64::from(self.windows);
        let b = u64::from(self.buckets);
        let partials = Schedule::max_partials(self);
        32 * u64::from(self.scalars)
            + 2 * 4 * w * n // digits, list
            + 4 * 4 * w * b // counts, offsets, cursors, refs
            + 4 * w * u64::from(self.blocks)
            + 8 * partials // the schedule's (start, len) items, all levels
            + jacobian as u64 * (partials + w * (u64::from(self.segs) + 1))
    }

    /// The first digit entry that stands for φ of a base (GLV's second halves), or
    /// `u32::MAX` without GLV: the `*_sum_list` kernels' `endo_from`.
    pub fn endo_from(&self) -> u32 {
        if self.glv { self.scalars } else { u32::MAX }
    }
}

/// Bases resident on a device.
pub struct ResidentBases {
    /// The affine points, in the kernels' layout.
    pub buffer: Buffer,
    /// How many.
    pub len: usize,
}

/// Uploads `bases`.
///
/// # Errors
/// Device errors, [`GpuError::OutOfMemory`] among them.
pub fn upload_bases<P: GpuCurve>(
    dev: &dyn Device,
    bases: &[Affine<P>],
) -> Result<ResidentBases, GpuError> {
    let mut bytes = Vec::with_capacity(bases.len() * P::affine_bytes());
    for p in bases {
        P::put_affine(p, &mut bytes);
    }
    let buffer = dev.alloc(bytes.len())?;
    dev.write(&buffer, 0, &bytes)?;
    Ok(ResidentBases {
        buffer,
        len: bases.len(),
    })
}

/// Checks that `range` lies within `bases` and holds `scalars` scalars.
fn fits(bases: &ResidentBases, range: &Range<usize>, scalars: usize) -> Result<(), GpuError> {
    if range.end > bases.len || range.len() != scalars {
        return Err(GpuError::Unsupported(format!(
            "MSM over {range:?} with {scalars} scalars on {} bases",
            bases.len
        )));
    }
    Ok(())
}

/// `Σ scalars[i]·bases[range.start + i]`, in passes of at most `pass` scalars.
///
/// # Errors
/// Device errors; [`GpuError::Unsupported`] for a range past the bases.
pub fn msm<P: GpuCurve>(
    dev: &dyn Device,
    bases: &ResidentBases,
    range: Range<usize>,
    scalars: &[Fr],
    pass: usize,
) -> Result<Projective<P>, GpuError> {
    msm_with(dev, bases, range, scalars, pass, Plan::new)
}

/// [`msm`] with passes planned by `plan` ([`Plan::new`], GLV, or [`Plan::plain`]): for
/// measuring and testing one against the other.
///
/// # Errors
/// As [`msm`].
pub fn msm_with<P: GpuCurve>(
    dev: &dyn Device,
    bases: &ResidentBases,
    range: Range<usize>,
    scalars: &[Fr],
    pass: usize,
    plan: fn(usize) -> Plan,
) -> Result<Projective<P>, GpuError> {
    fits(bases, &range, scalars.len())?;
    let pass = pass.clamp(1, MAX_PASS);
    let mut total = Projective::<P>::zero();
    for (k, chunk) in scalars.chunks(pass).enumerate() {
        let sorted = sort_pass_planned(dev, chunk, plan(chunk.len()))?;
        total += sum_pass::<P>(dev, bases, range.start + k * pass, &sorted)?;
    }
    Ok(total)
}

/// `Σ sᵢ·aᵢ`, `Σ sᵢ·bᵢ` in G1 and in G2 over the same `scalars` and `range` of the three
/// base sets: each pass is sorted once ([`sort_pass`]) and summed three times, so the
/// digits, the bucket sort and the schedule are shared. Also returns the time of each
/// (the shared work counted in the first).
///
/// # Errors
/// Device errors; [`GpuError::Unsupported`] for a range past any base set.
pub fn msm_assignment(
    dev: &dyn Device,
    [a, b_g1, b_g2]: [&ResidentBases; 3],
    range: Range<usize>,
    scalars: &[Fr],
    pass: usize,
) -> Result<AssignmentMsms, GpuError> {
    for bases in [a, b_g1, b_g2] {
        fits(bases, &range, scalars.len())?;
    }
    let pass = pass.clamp(1, MAX_PASS);
    let mut out = AssignmentMsms::default();
    for (k, chunk) in scalars.chunks(pass).enumerate() {
        let first = range.start + k * pass;
        let t = Instant::now();
        let sorted = sort_pass(dev, chunk)?;
        out.a += sum_pass::<g1::Config>(dev, a, first, &sorted)?;
        out.times[0] += t.elapsed();
        let t = Instant::now();
        out.b_g1 += sum_pass::<g1::Config>(dev, b_g1, first, &sorted)?;
        out.times[1] += t.elapsed();
        let t = Instant::now();
        out.b_g2 += sum_pass::<g2::Config>(dev, b_g2, first, &sorted)?;
        out.times[2] += t.elapsed();
    }
    Ok(out)
}

/// What [`msm_assignment`] returns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AssignmentMsms {
    /// Over the first base set (G1).
    pub a: Projective<g1::Config>,
    /// Over the second (G1).
    pub b_g1: Projective<g1::Config>,
    /// Over the third (G2).
    pub b_g2: Projective<g2::Config>,
    /// Time of each.
    pub times: [Duration; 3],
}

/// The part of one MSM pass that depends only on the scalars, done on the device and kept
/// there: the digits sorted by bucket (the list), and the bucket-sum schedule with its
/// items and bucket references uploaded. Several MSMs over the same scalars (A and B in G1
/// and G2) share one.
pub struct SortedPass {
    plan: Plan,
    list: Buffer,
    schedule: Schedule,
    items: Vec<Buffer>,
    refs: Buffer,
}

/// Sorts `scalars` (one pass, at most [`MAX_PASS`], not empty) into buckets on the device,
/// split by GLV.
///
/// # Errors
/// Device errors.
pub fn sort_pass(dev: &dyn Device, scalars: &[Fr]) -> Result<SortedPass, GpuError> {
    sort_pass_planned(dev, scalars, Plan::new(scalars.len()))
}

/// [`sort_pass`] by a given plan for `scalars` ([`Plan::new`] or [`Plan::plain`]).
///
/// # Errors
/// Device errors; [`GpuError::Unsupported`] for a plan made for another length.
pub fn sort_pass_planned(
    dev: &dyn Device,
    scalars: &[Fr],
    plan: Plan,
) -> Result<SortedPass, GpuError> {
    if plan.scalars as usize != scalars.len() {
        return Err(GpuError::Unsupported(format!(
            "an MSM plan for {} scalars given {}",
            plan.scalars,
            scalars.len()
        )));
    }
    let Plan {
        n,
        c,
        windows,
        buckets,
        blocks,
        ..
    } = plan;
    let (nu, wu, bu) = (n as usize, windows as usize, buckets as usize);
    let scalar_buf = dev.alloc(scalars.len() * 32)?;
    dev.write(&scalar_buf, 0, &to_device(scalars))?;
    let digits = dev.alloc(4 * wu * nu)?;
    dev.launch(
        if plan.glv {
            "msm_digits_glv"
        } else {
            "msm_digits"
        },
        scalars.len(),
        &[
            Arg::Buf(&scalar_buf),
            Arg::Buf(&digits),
            Arg::U32(plan.scalars),
            Arg::U32(c),
            Arg::U32(windows),
        ],
    )?;

    let counts = dev.alloc(4 * wu * bu)?;
    dev.launch(
        "msm_count",
        nu * wu,
        &[
            Arg::Buf(&digits),
            Arg::Buf(&counts),
            Arg::U32(n),
            Arg::U32(windows),
            Arg::U32(buckets),
        ],
    )?;
    let offsets = dev.alloc(4 * wu * bu)?;
    let block_sums = dev.alloc(4 * wu * blocks as usize)?;
    dev.launch(
        "msm_scan_blocks",
        wu * blocks as usize,
        &[
            Arg::Buf(&counts),
            Arg::Buf(&offsets),
            Arg::Buf(&block_sums),
            Arg::U32(windows),
            Arg::U32(buckets),
            Arg::U32(SCAN_BLOCK),
            Arg::U32(blocks),
        ],
    )?;
    dev.launch(
        "msm_scan_tops",
        wu,
        &[
            Arg::Buf(&block_sums),
            Arg::U32(windows),
            Arg::U32(blocks),
            Arg::U32(n),
        ],
    )?;
    dev.launch(
        "msm_scan_add",
        wu * bu,
        &[
            Arg::Buf(&offsets),
            Arg::Buf(&block_sums),
            Arg::U32(windows),
            Arg::U32(buckets),
            Arg::U32(SCAN_BLOCK),
            Arg::U32(blocks),
        ],
    )?;
    let cursors = dev.alloc(4 * wu * bu)?;
    let list = dev.alloc(4 * wu * nu)?;
    dev.launch(
        "msm_scatter",
        nu * wu,
        &[
            Arg::Buf(&digits),
            Arg::Buf(&offsets),
            Arg::Buf(&cursors),
            Arg::Buf(&list),
            Arg::U32(n),
            Arg::U32(windows),
            Arg::U32(buckets),
        ],
    )?;

    // The bucket sums, balanced over threads by a schedule made from the counts.
    let mut count_bytes = vec![0u8; 4 * wu * bu];
    dev.read(&counts, 0, &mut count_bytes)?;
    let sizes: Vec<u32> = count_bytes
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let schedule = Schedule::new(&sizes, &plan);
    let mut items = Vec::with_capacity(schedule.levels.len());
    for level in &schedule.levels {
        let buf = dev.alloc(4 * level.items.len())?;
        dev.write(&buf, 0, &u32_bytes(&level.items))?;
        items.push(buf);
    }
    let refs = dev.alloc(4 * wu * bu)?;
    dev.write(&refs, 0, &u32_bytes(&schedule.refs))?;
    // The read of the counts waited for every launch above, so their scratch can go.
    drop((scalar_buf, digits, cursors, offsets, counts, block_sums));
    Ok(SortedPass {
        plan,
        list,
        schedule,
        items,
        refs,
    })
}

/// `Σ scalars[i]·bases[first + i]` for the scalars of `sorted`.
///
/// # Errors
/// Device errors.
pub fn sum_pass<P: GpuCurve>(
    dev: &dyn Device,
    bases: &ResidentBases,
    first: usize,
    sorted: &SortedPass,
) -> Result<Projective<P>, GpuError> {
    let Plan {
        c,
        windows,
        buckets,
        seg_len,
        segs,
        ..
    } = sorted.plan;
    let first = u32::try_from(first)
        .map_err(|_| GpuError::Unsupported(format!("base index {first} exceeds 32 bits")))?;
    let wu = windows as usize;
    let jac = P::jacobian_bytes();
    let schedule = &sorted.schedule;
    let prefix = P::PREFIX;
    let partials = dev.alloc(jac * (schedule.partials as usize).max(1))?;
    for (i, (level, items)) in schedule.levels.iter().zip(&sorted.items).enumerate() {
        let threads = level.threads();
        let count = Arg::U32(threads as u32);
        if i == 0 {
            dev.launch(
                &format!("{prefix}_sum_list"),
                threads,
                &[
                    Arg::Buf(&bases.buffer),
                    Arg::U32(first),
                    Arg::Buf(&sorted.list),
                    Arg::Buf(items),
                    Arg::Buf(&partials),
                    Arg::U32(level.out),
                    count,
                    Arg::U32(sorted.plan.endo_from()),
                ],
            )?;
        } else {
            dev.launch(
                &format!("{prefix}_sum_partials"),
                threads,
                &[
                    Arg::Buf(&partials),
                    Arg::Buf(items),
                    Arg::U32(level.out),
                    count,
                ],
            )?;
        }
    }
    let segments = dev.alloc(jac * wu * segs as usize)?;
    dev.launch(
        &format!("{prefix}_bucket_reduce"),
        wu * segs as usize,
        &[
            Arg::Buf(&partials),
            Arg::Buf(&sorted.refs),
            Arg::Buf(&segments),
            Arg::U32(windows),
            Arg::U32(buckets),
            Arg::U32(seg_len),
            Arg::U32(segs),
        ],
    )?;
    let mut len = segs;
    while len > 1 {
        let half = len.div_ceil(2);
        dev.launch(
            &format!("{prefix}_window_step"),
            wu * half as usize,
            &[
                Arg::Buf(&segments),
                Arg::U32(windows),
                Arg::U32(segs),
                Arg::U32(len),
                Arg::U32(half),
            ],
        )?;
        len = half;
    }
    // Segment 0 of each window holds the window's sum: one read of all segments (a few
    // hundred KB) rather than a synchronising read per window.
    let mut all = vec![0u8; jac * wu * segs as usize];
    dev.read(&segments, 0, &mut all)?;
    let out: Vec<u8> = all
        .chunks_exact(jac * segs as usize)
        .flat_map(|window| window[..jac].iter().copied())
        .collect();
    // The buffers the kernels used stay alive until here, past the read that waits for
    // them.
    drop((partials, segments));

    // Horner over the windows, top first: c doublings between them.
    let mut acc = Projective::<P>::zero();
    for w in (0..wu).rev() {
        for _ in 0..c {
            acc = acc.double();
        }
        acc += P::get_jacobian(&out[w * jac..(w + 1) * jac]);
    }
    Ok(acc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_cover_the_scalars_bits_without_overflowing_32_bit_positions() {
        for log in 0..=22 {
            for (p, bits) in [
                (Plan::new(1 << log), crate::glv::HALF_BITS + 1),
                (Plan::plain(1 << log), 255),
            ] {
                assert!(p.c * p.windows >= bits, "{p:?}");
                // Entries and the sign bit share a list word.
                assert!(u64::from(p.n) < 1 << 31, "{p:?}");
                assert!(u64::from(p.windows) * u64::from(p.n) < 1 << 32, "{p:?}");
                assert!(p.seg_len * p.segs >= p.buckets, "{p:?}");
                assert!(p.blocks * SCAN_BLOCK >= p.buckets, "{p:?}");
                assert_eq!(p.n, if p.glv { 2 } else { 1 } * p.scalars, "{p:?}");
            }
        }
        assert_eq!(Plan::plain(1 << 20).c, 16);
        let glv = Plan::new(1 << 20);
        assert_eq!((glv.c, glv.windows), (16, 9));
        assert_eq!(glv.endo_from(), 1 << 20);
    }

    #[test]
    fn device_layout_round_trips() {
        use ark_ff::UniformRand;
        let mut rng = ark_std::test_rng();
        let xs: Vec<Fq2> = (0..5).map(|_| Fq2::rand(&mut rng)).collect();
        assert_eq!(from_device::<Fq2>(&to_device(&xs)), xs);
        let rs: Vec<Fr> = (0..5).map(|_| Fr::rand(&mut rng)).collect();
        assert_eq!(from_device::<Fr>(&to_device(&rs)), rs);
    }
}
