/* A 256-bit prime field in Montgomery form: FIELD_ is replaced by the field's prefix
 * (`fq_`, `fr_`) when the program is assembled; FIELD_P, FIELD_INV and FIELD_R are its
 * modulus, -p⁻¹ mod 2³² and R = 2²⁵⁶ mod p, generated from arkworks' constants.
 *
 * Multiplication is CIOS Montgomery (Koç, Acar, Kaliski, IEEE Micro 1996) over 32-bit
 * limbs with 64-bit accumulators: GPUs multiply 32-bit words natively, and a 32×32+32+32
 * product-sum fits 64 bits exactly. Both BN254 moduli are below 2²⁵⁴, so every sum of two
 * reduced values fits 256 bits and CIOS ends below 2p: one conditional subtraction. */
typedef struct { uint v[LIMBS]; } FIELD_t;

DEVICE FIELD_t FIELD_zero(void) {
  FIELD_t r;
  for (int i = 0; i < LIMBS; i++) r.v[i] = 0;
  return r;
}

/* One in Montgomery form, R mod p. */
DEVICE FIELD_t FIELD_one(void) {
  FIELD_t r;
  for (int i = 0; i < LIMBS; i++) r.v[i] = FIELD_R[i];
  return r;
}

DEVICE int FIELD_is_zero(FIELD_t a) {
  uint x = 0;
  for (int i = 0; i < LIMBS; i++) x |= a.v[i];
  return x == 0;
}

DEVICE int FIELD_eq(FIELD_t a, FIELD_t b) {
  uint x = 0;
  for (int i = 0; i < LIMBS; i++) x |= a.v[i] ^ b.v[i];
  return x == 0;
}

/* a - p if a ≥ p, else a; for a < 2p. */
DEVICE FIELD_t FIELD_reduce(FIELD_t a) {
  FIELD_t t;
  uint borrow = 0;
  for (int i = 0; i < LIMBS; i++) {
    ulong d = (ulong)a.v[i] - (ulong)FIELD_P[i] - (ulong)borrow;
    t.v[i] = (uint)d;
    borrow = (uint)(d >> 32) & 1u;
  }
  return borrow ? a : t;
}

DEVICE FIELD_t FIELD_add(FIELD_t a, FIELD_t b) {
  FIELD_t r;
  ulong c = 0;
  for (int i = 0; i < LIMBS; i++) {
    c += (ulong)a.v[i] + (ulong)b.v[i];
    r.v[i] = (uint)c;
    c >>= 32;
  }
  return FIELD_reduce(r);
}

DEVICE FIELD_t FIELD_sub(FIELD_t a, FIELD_t b) {
  FIELD_t r;
  uint borrow = 0;
  for (int i = 0; i < LIMBS; i++) {
    ulong d = (ulong)a.v[i] - (ulong)b.v[i] - (ulong)borrow;
    r.v[i] = (uint)d;
    borrow = (uint)(d >> 32) & 1u;
  }
  if (borrow) {
    ulong c = 0;
    for (int i = 0; i < LIMBS; i++) {
      c += (ulong)r.v[i] + (ulong)FIELD_P[i];
      r.v[i] = (uint)c;
      c >>= 32;
    }
  }
  return r;
}

DEVICE FIELD_t FIELD_dbl(FIELD_t a) { return FIELD_add(a, a); }

DEVICE FIELD_t FIELD_neg(FIELD_t a) {
  return FIELD_is_zero(a) ? a : FIELD_sub(FIELD_zero(), a);
}

DEVICE FIELD_t FIELD_mul(FIELD_t a, FIELD_t b) {
  uint t[LIMBS + 2];
  for (int i = 0; i < LIMBS + 2; i++) t[i] = 0;
  for (int i = 0; i < LIMBS; i++) {
    ulong c = 0;
    for (int j = 0; j < LIMBS; j++) {
      c += (ulong)t[j] + (ulong)a.v[j] * (ulong)b.v[i];
      t[j] = (uint)c;
      c >>= 32;
    }
    c += (ulong)t[LIMBS];
    t[LIMBS] = (uint)c;
    t[LIMBS + 1] = (uint)(c >> 32);
    uint m = t[0] * FIELD_INV;
    c = ((ulong)t[0] + (ulong)m * (ulong)FIELD_P[0]) >> 32;
    for (int j = 1; j < LIMBS; j++) {
      c += (ulong)t[j] + (ulong)m * (ulong)FIELD_P[j];
      t[j - 1] = (uint)c;
      c >>= 32;
    }
    c += (ulong)t[LIMBS];
    t[LIMBS - 1] = (uint)c;
    t[LIMBS] = t[LIMBS + 1] + (uint)(c >> 32);
  }
  FIELD_t r;
  for (int i = 0; i < LIMBS; i++) r.v[i] = t[i];
  return FIELD_reduce(r);
}

DEVICE FIELD_t FIELD_sqr(FIELD_t a) { return FIELD_mul(a, a); }

/* The canonical integer of a Montgomery-form element: a·R⁻¹ = mont_mul(a, 1). */
DEVICE FIELD_t FIELD_from_mont(FIELD_t a) {
  FIELD_t one = FIELD_zero();
  one.v[0] = 1;
  return FIELD_mul(a, one);
}
