/* Pippenger's bucket method (Pippenger 1976; Bernstein et al., "Faster batch forgery
 * identification", 2012, for the signed-digit buckets) laid out for thousands of threads,
 * after the sort-by-bucket design of sppark and ICICLE:
 *
 *   1. msm_digits     one thread per scalar: out of Montgomery form, then signed c-bit
 *                     digits d ∈ [-2^(c-1), 2^(c-1)], so a window needs 2^(c-1) buckets;
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

KERNEL void msm_digits(GLOBAL const fr_t *scalars, GLOBAL uint *digits, uint n, uint c,
                       uint windows) {
  ulong i = GLOBAL_ID();
  if (i >= n) return;
  fr_t s = fr_from_mont(scalars[i]);
  uint top = 1u << (c - 1);
  uint mask = (1u << c) - 1u;
  uint carry = 0;
  for (uint w = 0; w < windows; w++) {
    uint offset = w * c;
    uint limb = offset >> 5;
    uint shift = offset & 31u;
    uint bits = s.v[limb] >> shift;
    if (shift != 0 && limb + 1 < LIMBS) bits |= s.v[limb + 1] << (32u - shift);
    uint d = (bits & mask) + carry;
    uint out;
    if (d > top) {
      /* d - 2^c, negative: its magnitude 2^c - d and a carry into the next window. For
       * d = 2^c the magnitude is 0: a zero digit that still carries. */
      out = ((1u << c) - d) | DIGIT_SIGN;
      if ((out & DIGIT_MAGNITUDE) == 0) out = 0;
      carry = 1;
    } else {
      out = d;
      carry = 0;
    }
    digits[(ulong)w * n + i] = out;
  }
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
