/* NTT over Fr (Cooley–Tukey, decimation in time): a bit-reversal permutation, then
 * log₂ n stages of n/2 butterflies, up to NTT_LOCAL_LOG of them per pass over memory by
 * fr_ntt_local (each work-group holds a block of 2^k elements in local memory through k
 * stages): 2^20 takes two passes. The register-only passes (fr_ntt_radix8, three stages a
 * pass, and fr_ntt_stage, one) are kept to measure against. The twiddles ω^t, t < n/2, are
 * computed once per size and direction by fr_powers and stay on the device; stage s (span
 * = 2^s) reads them with stride n/(2·span). Element-wise kernels cover the coset shifts,
 * the 1/n scaling and the Groth16 quotient step. */

KERNEL void fr_bit_reverse(GLOBAL fr_t *a, uint n, uint log_n) {
  ulong i = GLOBAL_ID();
  if (i >= n) return;
  uint x = (uint)i;
  uint r = 0;
  for (uint b = 0; b < log_n; b++) {
    r = (r << 1) | (x & 1u);
    x >>= 1;
  }
  if (i < r) {
    fr_t t = a[i];
    a[i] = a[r];
    a[r] = t;
  }
}

KERNEL void fr_ntt_stage(GLOBAL fr_t *a, GLOBAL const fr_t *twiddles, uint n, uint span,
                         uint stride) {
  ulong k = GLOBAL_ID();
  if (k >= n / 2) return;
  ulong j = k & (ulong)(span - 1);
  ulong i0 = ((k - j) << 1) + j;
  ulong i1 = i0 + span;
  fr_t u = a[i0];
  fr_t v = fr_mul(a[i1], twiddles[j * stride]);
  a[i0] = fr_add(u, v);
  a[i1] = fr_sub(u, v);
}

/* Three stages in one pass (radix 8): stages s, s+1, s+2 of the transform above, each
 * thread holding in registers the 8 elements b + m·2^s (m < 8) that those stages mix,
 * with b = (t >> s) << (s+3) | (t mod 2^s) for thread t < n/8. In stage s+l the pair
 * (m, m + 2^l), m with bit l clear, takes the twiddle ω_{2h}^j, h = 2^(s+l),
 * j = (t mod 2^s) + (m mod 2^l)·2^s: the same butterflies as three fr_ntt_stage launches,
 * with one global read and write of each element instead of three. */
KERNEL void fr_ntt_radix8(GLOBAL fr_t *a, GLOBAL const fr_t *twiddles, uint n, uint s) {
  ulong t = GLOBAL_ID();
  if (t >= n / 8) return;
  ulong span = (ulong)1 << s;
  ulong low = t & (span - 1);
  ulong b = ((t >> s) << (s + 3)) | low;
  fr_t x[8];
  for (uint m = 0; m < 8; m++) x[m] = a[b + m * span];
  for (uint l = 0; l < 3; l++) {
    uint h = 1u << l;
    /* twiddles holds ω_n^k, k < n/2; ω_{2·2^(s+l)} = ω_n^(n >> (s+l+1)). */
    ulong stride = (ulong)n >> (s + l + 1);
    for (uint m = 0; m < 8; m++) {
      if (m & h) continue;
      ulong j = low + (ulong)(m & (h - 1)) * span;
      fr_t u = x[m];
      fr_t v = fr_mul(x[m + h], twiddles[j * stride]);
      x[m] = fr_add(u, v);
      x[m + h] = fr_sub(u, v);
    }
  }
  for (uint m = 0; m < 8; m++) a[b + m * span] = x[m];
}

/* Stages s … s+k-1 (k ≤ NTT_LOCAL_LOG) through local memory. Block B (of n/2^k) is the
 * 2^k elements whose index bits s … s+k-1 vary, the others fixed by B: element m of the
 * block is index (B >> s) << (s+k) | m << s | (B mod 2^s), so the block's stages are the
 * block's own butterflies. A work-group loads a block, runs the k stages with a barrier
 * after each (any group size: threads stride over the 2^(k-1) butterflies), stores it, and
 * goes on to block B + (number of groups) until none is left. In stage s+l the pair
 * (m, m + 2^l), m with bit l clear, takes the twiddle ω_{2h}^j, h = 2^(s+l),
 * j = (m mod 2^l)·2^s + (B mod 2^s), as fr_ntt_stage would. */
KERNEL void fr_ntt_local(GLOBAL fr_t *a, GLOBAL const fr_t *twiddles, uint n, uint s,
                         uint k) {
  LOCAL_ARRAY(fr_t, x, 1 << NTT_LOCAL_LOG);
  uint count = 1u << k;
  ulong blocks = (ulong)n >> k;
  ulong span = (ulong)1 << s;
  uint lid = LOCAL_ID();
  uint size = LOCAL_SIZE();
  for (ulong block = GROUP_ID(); block < blocks; block += NUM_GROUPS()) {
    ulong low = block & (span - 1);
    ulong base = ((block >> s) << (s + k)) | low;
    for (uint m = lid; m < count; m += size) x[m] = a[base + ((ulong)m << s)];
    BARRIER();
    for (uint l = 0; l < k; l++) {
      uint h = 1u << l;
      ulong stride = (ulong)n >> (s + l + 1);
      for (uint q = lid; q < count / 2; q += size) {
        uint m0 = ((q >> l) << (l + 1)) | (q & (h - 1));
        ulong j = ((ulong)(m0 & (h - 1)) << s) | low;
        fr_t u = x[m0];
        fr_t v = fr_mul(x[m0 + h], twiddles[j * stride]);
        x[m0] = fr_add(u, v);
        x[m0 + h] = fr_sub(u, v);
      }
      BARRIER();
    }
    for (uint m = lid; m < count; m += size) a[base + ((ulong)m << s)] = x[m];
    BARRIER();
  }
}

/* out[i] = g^i for i < n; each thread starts at g^(t·run) by square-and-multiply and
 * steps `run` times. */
KERNEL void fr_powers(GLOBAL fr_t *out, GLOBAL const fr_t *g, uint n, uint run) {
  ulong t = GLOBAL_ID();
  ulong start = t * run;
  if (start >= n) return;
  fr_t base = g[0];
  fr_t x = fr_one();
  fr_t sq = base;
  for (ulong e = start; e != 0; e >>= 1) {
    if (e & 1) x = fr_mul(x, sq);
    sq = fr_sqr(sq);
  }
  for (uint k = 0; k < run && start + k < n; k++) {
    out[start + k] = x;
    x = fr_mul(x, base);
  }
}

/* a[i] *= b[i] */
KERNEL void fr_mul_each(GLOBAL fr_t *a, GLOBAL const fr_t *b, uint n) {
  ulong i = GLOBAL_ID();
  if (i >= n) return;
  a[i] = fr_mul(a[i], b[i]);
}

/* a[i] *= s */
KERNEL void fr_scale(GLOBAL fr_t *a, GLOBAL const fr_t *s, uint n) {
  ulong i = GLOBAL_ID();
  if (i >= n) return;
  a[i] = fr_mul(a[i], s[0]);
}

/* The Groth16 quotient on the coset, where Z is the constant z: a[i] = (a[i]·b[i] - c[i])/z,
 * with z_inv = 1/z. */
KERNEL void fr_quotient(GLOBAL fr_t *a, GLOBAL const fr_t *b, GLOBAL const fr_t *c,
                        GLOBAL const fr_t *z_inv, uint n) {
  ulong i = GLOBAL_ID();
  if (i >= n) return;
  a[i] = fr_mul(fr_sub(fr_mul(a[i], b[i]), c[i]), z_inv[0]);
}
