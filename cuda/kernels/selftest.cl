/* Field operations one by one, for the differential self-test against arkworks:
 * out[6i..6i+6] = a+b, a-b, a·b, a², -a, 2a. FIELD_ = `fq_`,
 * `fr_` or `fq2_`. */
KERNEL void FIELD_selftest(GLOBAL const FIELD_t *a, GLOBAL const FIELD_t *b,
                           GLOBAL FIELD_t *out, uint n) {
  ulong i = GLOBAL_ID();
  if (i >= n) return;
  FIELD_t x = a[i];
  FIELD_t y = b[i];
  out[6 * i + 0] = FIELD_add(x, y);
  out[6 * i + 1] = FIELD_sub(x, y);
  out[6 * i + 2] = FIELD_mul(x, y);
  out[6 * i + 3] = FIELD_sqr(x);
  out[6 * i + 4] = FIELD_neg(x);
  out[6 * i + 5] = FIELD_dbl(x);
}
