/* Pippenger's bucket method (Pippenger 1976; Bernstein et al., "Faster batch forgery
 * identification", 2012, for the signed-digit buckets) laid out for thousands of threads,
 * after the sort-by-bucket design of sppark and ICICLE:
 *
 *   1. msm_digits_glv one thread per scalar: out of Montgomery form, split by GLV into
 *                     two halves below 2^128 (src/glv.rs), then signed c-bit digits
 *                     d ∈ [-2^(c-1), 2^(c-1)] of each, so a window needs 2^(c-1) buckets
 *                     and half as many windows cover a half; msm_digits, without the
 *                     split, is kept to measure against;
 *   2. msm_count      one thread per (window, scalar): bucket sizes (32-bit atomics);
 *   3. msm_scan_*     exclusive prefix sums of the sizes, per window, in three passes;
 *   4. msm_scatter    one thread per (window, scalar): each point index (with the digit's
 *                     sign in bit 31) lands in its bucket's run of one flat list;
 *   5. *_sum_list,    the bucket sums, balanced: one thread per piece of at most `cap`
 *      *_sum_partials points of a bucket, then levels of threads adding a split bucket's
 *                     partials, until each bucket has one (src/buckets.rs plans them on
 *                     the host from the counts of step 2);
 *   6. *_bucket_reduce one thread per segment of buckets: Σ d·B_d over the segment with
 *                     the running-sum trick, plus the segment's offset times its sum;
 *   7. *_window_step  the sum of each window's segments, as a tree of ⌈log₂ segs⌉
 *                     launches.
 *
 * The host combines the window sums by doubling (Horner); that is c·windows doublings,
 * not worth a launch. Steps 1–4 depend only on the scalars and are shared by G1 and G2.
 * Digits are stored window-major (index w·n + i) so that neighbouring threads touch
 * neighbouring words. */

#define DIGIT_SIGN 0x80000000u
#define DIGIT_MAGNITUDE 0x7fffffffu
#define NO_PARTIAL 0xffffffffu

/* The signed c-bit digits of the non-negative integer v (nlimbs little-endian limbs) over
 * `windows` windows, written to digits[w·stride + i]; with `negate`, every non-zero digit's
 * sign is flipped (the digits of -v). */
DEVICE void msm_write_digits(const uint *v, uint nlimbs, uint negate, GLOBAL uint *digits,
                             ulong stride, ulong i, uint c, uint windows) {
  uint top = 1u << (c - 1);
  uint mask = (1u << c) - 1u;
  uint carry = 0;
  for (uint w = 0; w < windows; w++) {
    uint offset = w * c;
    uint limb = offset >> 5;
    uint shift = offset & 31u;
    uint bits = limb < nlimbs ? v[limb] >> shift : 0u;
    if (shift != 0 && limb + 1 < nlimbs) bits |= v[limb + 1] << (32u - shift);
    uint d = (bits & mask) + carry;
    uint out;
    if (d > top) {
      /* d - 2^c, negative: its magnitude 2^c - d and a carry into the next window. For
       * d = 2^c the magnitude is 0: a zero digit that still carries. */
      out = ((1u << c) - d) | DIGIT_SIGN;
      carry = 1;
    } else {
      out = d;
      carry = 0;
    }
    if (negate) out ^= DIGIT_SIGN;
    if ((out & DIGIT_MAGNITUDE) == 0) out = 0;
    digits[(ulong)w * stride + i] = out;
  }
}

KERNEL void msm_digits(GLOBAL const fr_t *scalars, GLOBAL uint *digits, uint n, uint c,
                       uint windows) {
  ulong i = GLOBAL_ID();
  if (i >= n) return;
  fr_t s = fr_from_mont(scalars[i]);
  msm_write_digits(s.v, LIMBS, 0u, digits, n, i, c, windows);
}

/* GLV (see src/glv.rs): scalar i splits into k1 + k2·λ with |k1|, |k2| < 2^128; the digits
 * of k1 go to virtual scalar i (base P_i) and those of k2 to virtual scalar n + i (base
 * φ(P_i)), so a pass of n scalars is a pass of 2n half-length ones. The integers are
 * computed modulo 2^160 (GLV_LIMBS limbs), exact for results this small. */
#define GLV_LIMBS 5

/* out = a·b mod 2^(32·nout), schoolbook. */
DEVICE void glv_mul_lo(const uint *a, uint na, const uint *b, uint nb, uint *out, uint nout) {
  for (uint k = 0; k < nout; k++) out[k] = 0;
  for (uint i = 0; i < na && i < nout; i++) {
    ulong carry = 0;
    uint j = 0;
    for (; j < nb && i + j < nout; j++) {
      ulong t = (ulong)a[i] * b[j] + out[i + j] + carry;
      out[i + j] = (uint)t;
      carry = t >> 32;
    }
    for (uint k = i + j; k < nout && carry != 0; k++) {
      ulong t = (ulong)out[k] + carry;
      out[k] = (uint)t;
      carry = t >> 32;
    }
  }
}

/* a -= b modulo 2^(32·GLV_LIMBS). */
DEVICE void glv_sub(uint *a, const uint *b) {
  uint borrow = 0;
  for (uint k = 0; k < GLV_LIMBS; k++) {
    ulong t = (ulong)a[k] - b[k] - borrow;
    a[k] = (uint)t;
    borrow = (uint)(t >> 63);
  }
}

/* Two's complement: |a| and whether a was negative. */
DEVICE uint glv_abs(uint *a) {
  if ((a[GLV_LIMBS - 1] >> 31) == 0) return 0u;
  uint carry = 1;
  for (uint k = 0; k < GLV_LIMBS; k++) {
    ulong t = (ulong)(~a[k]) + carry;
    a[k] = (uint)t;
    carry = (uint)(t >> 32);
  }
  return 1u;
}

KERNEL void msm_digits_glv(GLOBAL const fr_t *scalars, GLOBAL uint *digits, uint n, uint c,
                           uint windows) {
  ulong i = GLOBAL_ID();
  if (i >= n) return;
  fr_t s = fr_from_mont(scalars[i]);
  uint g1[5], g2[3], n11[4], n12[2], n21[2], n22[4];
  for (uint k = 0; k < 5; k++) g1[k] = GLV_G1[k];
  for (uint k = 0; k < 3; k++) g2[k] = GLV_G2[k];
  for (uint k = 0; k < 4; k++) { n11[k] = GLV_N11[k]; n22[k] = GLV_N22[k]; }
  for (uint k = 0; k < 2; k++) { n12[k] = GLV_N12[k]; n21[k] = GLV_N21[k]; }
  uint wide[LIMBS + 5];
  uint q1[4], q2[2];
  glv_mul_lo(s.v, LIMBS, g1, 5, wide, LIMBS + 5);
  for (uint k = 0; k < 4; k++) q1[k] = wide[LIMBS + k];
  glv_mul_lo(s.v, LIMBS, g2, 3, wide, LIMBS + 3);
  for (uint k = 0; k < 2; k++) q2[k] = wide[LIMBS + k];
  uint k1[GLV_LIMBS], k2[GLV_LIMBS], t[GLV_LIMBS];
  for (uint k = 0; k < GLV_LIMBS; k++) k1[k] = s.v[k];
  glv_mul_lo(q1, 4, n11, 4, t, GLV_LIMBS);
  glv_sub(k1, t);
  glv_mul_lo(q2, 2, n21, 2, t, GLV_LIMBS);
  glv_sub(k1, t);
  glv_mul_lo(q1, 4, n12, 2, k2, GLV_LIMBS);
  glv_mul_lo(q2, 2, n22, 4, t, GLV_LIMBS);
  glv_sub(k2, t);
  uint neg1 = glv_abs(k1);
  uint neg2 = glv_abs(k2);
  ulong stride = 2 * (ulong)n;
  msm_write_digits(k1, GLV_LIMBS, neg1, digits, stride, i, c, windows);
  msm_write_digits(k2, GLV_LIMBS, neg2, digits, stride, n + i, c, windows);
}

/* φ(x, y) = (β·x, y): λ·P in either group (β differs: GLV_BETA_G1, GLV_BETA_G2). */
DEVICE g1_affine g1_endo(g1_affine p) {
  fq_t b;
  for (int k = 0; k < LIMBS; k++) b.v[k] = GLV_BETA_G1[k];
  p.x = fq_mul(p.x, b);
  return p;
}

DEVICE g2_affine g2_endo(g2_affine p) {
  fq_t b;
  for (int k = 0; k < LIMBS; k++) b.v[k] = GLV_BETA_G2[k];
  p.x.c0 = fq_mul(p.x.c0, b);
  p.x.c1 = fq_mul(p.x.c1, b);
  return p;
}

KERNEL void msm_count(GLOBAL const uint *digits, GLOBAL uint *counts, uint n, uint windows,
                      uint buckets) {
  ulong g = GLOBAL_ID();
  if (g >= (ulong)n * windows) return;
  uint magnitude = digits[g] & DIGIT_MAGNITUDE;
  if (magnitude == 0) return;
  ulong w = g / n;
  ATOMIC_INC(&counts[w * buckets + magnitude - 1]);
}

/* Pass 1: an exclusive scan inside each block of `block` buckets; the block's total. */
KERNEL void msm_scan_blocks(GLOBAL const uint *counts, GLOBAL uint *offsets,
                            GLOBAL uint *block_sums, uint windows, uint buckets, uint block,
                            uint blocks) {
  ulong t = GLOBAL_ID();
  if (t >= (ulong)windows * blocks) return;
  ulong w = t / blocks;
  uint b = (uint)(t % blocks);
  uint first = b * block;
  uint last = first + block < buckets ? first + block : buckets;
  uint acc = 0;
  for (uint k = first; k < last; k++) {
    offsets[w * buckets + k] = acc;
    acc += counts[w * buckets + k];
  }
  block_sums[t] = acc;
}

/* Pass 2: per window, an exclusive scan of the block totals, starting at w·n, the
 * window's run in the list (a window holds at most n entries). */
KERNEL void msm_scan_tops(GLOBAL uint *block_sums, uint windows, uint blocks, uint n) {
  ulong w = GLOBAL_ID();
  if (w >= windows) return;
  uint acc = (uint)(w * n);
  for (uint b = 0; b < blocks; b++) {
    uint v = block_sums[w * blocks + b];
    block_sums[w * blocks + b] = acc;
    acc += v;
  }
}

/* Pass 3: each bucket's offset plus its block's. */
KERNEL void msm_scan_add(GLOBAL uint *offsets, GLOBAL const uint *block_sums, uint windows,
                         uint buckets, uint block, uint blocks) {
  ulong g = GLOBAL_ID();
  if (g >= (ulong)windows * buckets) return;
  ulong w = g / buckets;
  uint k = (uint)(g % buckets);
  offsets[g] += block_sums[w * blocks + k / block];
}

KERNEL void msm_scatter(GLOBAL const uint *digits, GLOBAL const uint *offsets,
                        GLOBAL uint *cursors, GLOBAL uint *list, uint n, uint windows,
                        uint buckets) {
  ulong g = GLOBAL_ID();
  if (g >= (ulong)n * windows) return;
  uint d = digits[g];
  uint magnitude = d & DIGIT_MAGNITUDE;
  if (magnitude == 0) return;
  ulong w = g / n;
  uint i = (uint)(g % n);
  ulong k = w * buckets + magnitude - 1;
  uint position = offsets[k] + ATOMIC_INC(&cursors[k]);
  list[position] = i | (d & DIGIT_SIGN);
}
