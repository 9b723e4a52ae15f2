/* A short-Weierstrass curve y² = x³ + b over BASE_ (`fq_` for G1, `fq2_` for G2), points
 * named POINT_ (`g1_`, `g2_`). Both BN254 groups have a = 0, and none of the formulas
 * below needs b.
 *
 * Affine points are (x, y) in Montgomery form, with (0, 0) as the point at infinity (it is
 * on neither curve, and it is how arkworks lays out its infinity). Jacobian points are
 * (X, Y, Z) for (X/Z², Y/Z³), Z = 0 at infinity: arkworks' `Projective` exactly, so results
 * go back to the host without conversion. Formulas: the Explicit-Formulas Database,
 * dbl-2009-l, madd-2007-bl and add-2007-bl, with the exceptional cases (equal points,
 * opposite points, infinity) handled before they divide by zero. */
typedef struct { BASE_t x, y; } POINT_affine;
typedef struct { BASE_t x, y, z; } POINT_jac;

DEVICE POINT_jac POINT_infinity(void) {
  POINT_jac r;
  r.x = BASE_one();
  r.y = BASE_one();
  r.z = BASE_zero();
  return r;
}

DEVICE int POINT_affine_is_infinity(POINT_affine p) {
  return BASE_is_zero(p.x) && BASE_is_zero(p.y);
}

DEVICE POINT_affine POINT_affine_neg(POINT_affine p) {
  p.y = BASE_neg(p.y);
  return p;
}

DEVICE_CALL POINT_jac POINT_dbl(POINT_jac p) {
  if (BASE_is_zero(p.z)) return p;
  BASE_t a = BASE_sqr(p.x);
  BASE_t b = BASE_sqr(p.y);
  BASE_t c = BASE_sqr(b);
  BASE_t d = BASE_dbl(BASE_sub(BASE_sub(BASE_sqr(BASE_add(p.x, b)), a), c));
  BASE_t e = BASE_add(BASE_dbl(a), a);
  BASE_t f = BASE_sqr(e);
  POINT_jac r;
  r.x = BASE_sub(f, BASE_dbl(d));
  BASE_t c8 = BASE_dbl(BASE_dbl(BASE_dbl(c)));
  r.y = BASE_sub(BASE_mul(e, BASE_sub(d, r.x)), c8);
  r.z = BASE_dbl(BASE_mul(p.y, p.z));
  return r;
}

/* p + q for affine q (mixed addition: the bucket accumulation's step). */
DEVICE_CALL POINT_jac POINT_add_affine(POINT_jac p, POINT_affine q) {
  if (POINT_affine_is_infinity(q)) return p;
  POINT_jac r;
  if (BASE_is_zero(p.z)) {
    r.x = q.x;
    r.y = q.y;
    r.z = BASE_one();
    return r;
  }
  BASE_t z1z1 = BASE_sqr(p.z);
  BASE_t u2 = BASE_mul(q.x, z1z1);
  BASE_t s2 = BASE_mul(BASE_mul(q.y, p.z), z1z1);
  BASE_t h = BASE_sub(u2, p.x);
  BASE_t rr = BASE_dbl(BASE_sub(s2, p.y));
  if (BASE_is_zero(h)) {
    return BASE_is_zero(rr) ? POINT_dbl(p) : POINT_infinity();
  }
  BASE_t hh = BASE_sqr(h);
  BASE_t i = BASE_dbl(BASE_dbl(hh));
  BASE_t j = BASE_mul(h, i);
  BASE_t v = BASE_mul(p.x, i);
  r.x = BASE_sub(BASE_sub(BASE_sqr(rr), j), BASE_dbl(v));
  r.y = BASE_sub(BASE_mul(rr, BASE_sub(v, r.x)), BASE_dbl(BASE_mul(p.y, j)));
  r.z = BASE_sub(BASE_sub(BASE_sqr(BASE_add(p.z, h)), z1z1), hh);
  return r;
}

DEVICE_CALL POINT_jac POINT_add(POINT_jac p, POINT_jac q) {
  if (BASE_is_zero(p.z)) return q;
  if (BASE_is_zero(q.z)) return p;
  BASE_t z1z1 = BASE_sqr(p.z);
  BASE_t z2z2 = BASE_sqr(q.z);
  BASE_t u1 = BASE_mul(p.x, z2z2);
  BASE_t u2 = BASE_mul(q.x, z1z1);
  BASE_t s1 = BASE_mul(BASE_mul(p.y, q.z), z2z2);
  BASE_t s2 = BASE_mul(BASE_mul(q.y, p.z), z1z1);
  BASE_t h = BASE_sub(u2, u1);
  BASE_t rr = BASE_dbl(BASE_sub(s2, s1));
  if (BASE_is_zero(h)) {
    return BASE_is_zero(rr) ? POINT_dbl(p) : POINT_infinity();
  }
  BASE_t i = BASE_sqr(BASE_dbl(h));
  BASE_t j = BASE_mul(h, i);
  BASE_t v = BASE_mul(u1, i);
  POINT_jac r;
  r.x = BASE_sub(BASE_sub(BASE_sqr(rr), j), BASE_dbl(v));
  r.y = BASE_sub(BASE_mul(rr, BASE_sub(v, r.x)), BASE_dbl(BASE_mul(s1, j)));
  r.z = BASE_mul(BASE_sub(BASE_sub(BASE_sqr(BASE_add(p.z, q.z)), z1z1), z2z2), h);
  return r;
}

/* k·p for a small k (a bucket index), by double-and-add from the top bit. */
DEVICE_CALL POINT_jac POINT_mul_small(POINT_jac p, uint k) {
  POINT_jac acc = POINT_infinity();
  for (int bit = 31; bit >= 0; bit--) {
    acc = POINT_dbl(acc);
    if ((k >> bit) & 1u) acc = POINT_add(acc, p);
  }
  return acc;
}
