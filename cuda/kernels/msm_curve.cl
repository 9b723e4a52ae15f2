/* Steps 5–7 of the MSM (see msm.cl) for one group, POINT_ = `g1_` or `g2_`. */

/* One thread per (window, bucket): the sum of the bucket's points. `first` is the index
 * of the MSM's range in the resident bases. */
KERNEL void POINT_bucket_sum(GLOBAL const POINT_affine *bases, uint first,
                             GLOBAL const uint *list, GLOBAL const uint *offsets,
                             GLOBAL const uint *counts, GLOBAL POINT_jac *sums,
                             uint total) {
  ulong g = GLOBAL_ID();
  if (g >= total) return;
  uint start = offsets[g];
  uint count = counts[g];
  POINT_jac acc = POINT_infinity();
  for (uint k = 0; k < count; k++) {
    uint e = list[start + k];
    POINT_affine p = bases[(ulong)first + (e & DIGIT_MAGNITUDE)];
    if (e & DIGIT_SIGN) p = POINT_affine_neg(p);
    acc = POINT_add_affine(acc, p);
  }
  sums[g] = acc;
}

/* One thread per (window, segment of `seg_len` buckets). Bucket k holds digit k + 1; over
 * a segment starting at bucket lo, Σ (k + 1)·B_k = Σ (k - lo + 1)·B_k + lo·Σ B_k, and the
 * first sum is the running-sum trick: walk down, add each bucket to a running sum and the
 * running sum to the total. */
KERNEL void POINT_bucket_reduce(GLOBAL const POINT_jac *sums, GLOBAL POINT_jac *segments,
                                uint windows, uint buckets, uint seg_len, uint segs) {
  ulong g = GLOBAL_ID();
  if (g >= (ulong)windows * segs) return;
  ulong w = g / segs;
  uint lo = (uint)(g % segs) * seg_len;
  uint hi = lo + seg_len < buckets ? lo + seg_len : buckets;
  POINT_jac running = POINT_infinity();
  POINT_jac total = POINT_infinity();
  for (uint k = hi; k > lo; k--) {
    running = POINT_add(running, sums[w * buckets + k - 1]);
    total = POINT_add(total, running);
  }
  if (lo != 0) total = POINT_add(total, POINT_mul_small(running, lo));
  segments[g] = total;
}

/* One thread per window: the sum of its segments. */
KERNEL void POINT_window_sum(GLOBAL const POINT_jac *segments, GLOBAL POINT_jac *out,
                             uint windows, uint segs) {
  ulong w = GLOBAL_ID();
  if (w >= windows) return;
  POINT_jac acc = POINT_infinity();
  for (uint s = 0; s < segs; s++) acc = POINT_add(acc, segments[w * segs + s]);
  out[w] = acc;
}
