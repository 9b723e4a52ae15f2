/* Fq2 = Fq[u]/(u² + 1), BN254's quadratic extension (non-residue -1), for G2. The names
 * match the field template's, so the curve template runs over Fq2 unchanged. */
typedef struct { fq_t c0, c1; } fq2_t;

DEVICE fq2_t fq2_zero(void) { fq2_t r; r.c0 = fq_zero(); r.c1 = fq_zero(); return r; }
DEVICE fq2_t fq2_one(void) { fq2_t r; r.c0 = fq_one(); r.c1 = fq_zero(); return r; }
DEVICE int fq2_is_zero(fq2_t a) { return fq_is_zero(a.c0) && fq_is_zero(a.c1); }
DEVICE int fq2_eq(fq2_t a, fq2_t b) { return fq_eq(a.c0, b.c0) && fq_eq(a.c1, b.c1); }

DEVICE fq2_t fq2_add(fq2_t a, fq2_t b) {
  fq2_t r; r.c0 = fq_add(a.c0, b.c0); r.c1 = fq_add(a.c1, b.c1); return r;
}
DEVICE fq2_t fq2_sub(fq2_t a, fq2_t b) {
  fq2_t r; r.c0 = fq_sub(a.c0, b.c0); r.c1 = fq_sub(a.c1, b.c1); return r;
}
DEVICE fq2_t fq2_dbl(fq2_t a) { return fq2_add(a, a); }
DEVICE fq2_t fq2_neg(fq2_t a) { fq2_t r; r.c0 = fq_neg(a.c0); r.c1 = fq_neg(a.c1); return r; }

/* Karatsuba: three base-field products. */
DEVICE fq2_t fq2_mul(fq2_t a, fq2_t b) {
  fq_t v0 = fq_mul(a.c0, b.c0);
  fq_t v1 = fq_mul(a.c1, b.c1);
  fq2_t r;
  r.c0 = fq_sub(v0, v1);
  r.c1 = fq_sub(fq_sub(fq_mul(fq_add(a.c0, a.c1), fq_add(b.c0, b.c1)), v0), v1);
  return r;
}

/* (a0 + a1·u)² = (a0 + a1)(a0 - a1) + 2·a0·a1·u: two products. */
DEVICE fq2_t fq2_sqr(fq2_t a) {
  fq2_t r;
  r.c0 = fq_mul(fq_add(a.c0, a.c1), fq_sub(a.c0, a.c1));
  r.c1 = fq_dbl(fq_mul(a.c0, a.c1));
  return r;
}
