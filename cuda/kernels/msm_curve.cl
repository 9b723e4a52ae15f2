/* Steps 5–7 of the MSM (see msm.cl) for one group, POINT_ = `g1_` or `g2_`. */

/* The bucket sums, balanced (see src/buckets.rs): level 0, one thread per piece of a
 * bucket's run in the sorted list, items[2t] its start and items[2t + 1] its length, the
 * sum written to partials[out + t]. `first` is the index of the MSM's range in the
 * resident bases. Entries from `endo_from` on are GLV's second halves (see
 * msm_digits_glv): entry endo_from + i stands for φ(P_i); without GLV, endo_from is
 * 0xffffffff. */
KERNEL void POINT_sum_list(GLOBAL const POINT_affine *bases, uint first,
                           GLOBAL const uint *list, GLOBAL const uint *items,
                           GLOBAL POINT_jac *partials, uint out, uint count,
                           uint endo_from) {
  ulong t = GLOBAL_ID();
  if (t >= count) return;
  uint start = items[2 * t];
  uint len = items[2 * t + 1];
  POINT_jac acc = POINT_infinity();
  for (uint k = 0; k < len; k++) {
    uint e = list[start + k];
    uint index = e & DIGIT_MAGNITUDE;
    POINT_affine p;
    if (index >= endo_from) {
      p = POINT_endo(bases[(ulong)first + (index - endo_from)]);
    } else {
      p = bases[(ulong)first + index];
    }
    if (e & DIGIT_SIGN) p = POINT_affine_neg(p);
    acc = POINT_add_affine(acc, p);
  }
  partials[(ulong)out + t] = acc;
}

/* Levels after the first: the same over partials written by earlier levels (below `out`,
 * so no thread reads what another writes). */
KERNEL void POINT_sum_partials(GLOBAL POINT_jac *partials, GLOBAL const uint *items,
                               uint out, uint count) {
  ulong t = GLOBAL_ID();
  if (t >= count) return;
  uint start = items[2 * t];
  uint len = items[2 * t + 1];
  POINT_jac acc = POINT_infinity();
  for (uint k = 0; k < len; k++) acc = POINT_add(acc, partials[start + k]);
  partials[(ulong)out + t] = acc;
}

/* One thread per (window, segment of `seg_len` buckets); a bucket's sum is the partial
 * `refs` names, or nothing (NO_PARTIAL) for an empty bucket. Bucket k holds digit k + 1; over
 * a segment starting at bucket lo, Σ (k + 1)·B_k = Σ (k - lo + 1)·B_k + lo·Σ B_k, and the
 * first sum is the running-sum trick: walk down, add each bucket to a running sum and the
 * running sum to the total. */
KERNEL void POINT_bucket_reduce(GLOBAL const POINT_jac *partials, GLOBAL const uint *refs,
                                GLOBAL POINT_jac *segments, uint windows, uint buckets,
                                uint seg_len, uint segs) {
  ulong g = GLOBAL_ID();
  if (g >= (ulong)windows * segs) return;
  ulong w = g / segs;
  uint lo = (uint)(g % segs) * seg_len;
  uint hi = lo + seg_len < buckets ? lo + seg_len : buckets;
  POINT_jac running = POINT_infinity();
  POINT_jac total = POINT_infinity();
  for (uint k = hi; k > lo; k--) {
    uint r = refs[w * buckets + k - 1];
    if (r != NO_PARTIAL) running = POINT_add(running, partials[r]);
    total = POINT_add(total, running);
  }
  if (lo != 0) total = POINT_add(total, POINT_mul_small(running, lo));
  segments[g] = total;
}

/* The window sums, as a tree: one launch per level, one thread per (window, pair), adding
 * segment i + upper into segment i while `len` segments remain (upper = ⌈len / 2⌉); after
 * ⌈log₂ segs⌉ launches segment 0 of each window holds its sum. */
KERNEL void POINT_window_step(GLOBAL POINT_jac *segments, uint windows, uint segs, uint len,
                              uint upper) {
  ulong g = GLOBAL_ID();
  if (g >= (ulong)windows * upper) return;
  ulong w = g / upper;
  uint i = (uint)(g % upper);
  if (i + upper >= len) return;
  ulong at = w * segs + i;
  segments[at] = POINT_add(segments[at], segments[at + upper]);
}
