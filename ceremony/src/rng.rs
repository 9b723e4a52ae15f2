//! The deterministic randomness of snarkjs's ceremonies, reproduced exactly: what a
//! contribution's proof of knowledge is checked against (`hashToG2`) and what a beacon's key
//! is derived from must come out the same here as in snarkjs, or neither side accepts the
//! other's transcript.
//!
//! - [`JsChaCha`]: ffjavascript's ChaCha20 stream (RFC 7539 with a zero nonce), seeded with
//!   eight words read big-endian from the first 32 bytes of a hash; `next_u64` takes the
//!   high word first.
//! - Field elements ([`JsChaCha::fq`], [`JsChaCha::fr`]): four `u64` draws, least
//!   significant first, masked to 254 bits, rejected until below the modulus, and then, as
//!   ffjavascript does, taken as the element's *Montgomery* representation (the value is
//!   `v·2⁻²⁵⁶`).
//! - Points ([`JsChaCha::g1`], [`JsChaCha::g2`]): an `x`, a sign bit, until `x³ + b` is a
//!   square; the root of that sign (ffjavascript's sign: above `(q-1)/2`, `c1` first in Fq2);
//!   G2 points multiplied by the cofactor `2q - r`.
//! - [`hash_to_g2`]: a G2 point from a 64-byte transcript.

use ark_bn254::{Fq, Fq2, Fr, G1Affine, G2Affine, g2};
use ark_ec::{AffineRepr, CurveGroup, short_weierstrass::SWCurveConfig};
use ark_ff::{BigInt, Field, PrimeField};
use blake2::{Blake2b512, Digest};
use rand::RngCore;
use sha2::Sha256;

use crate::encoding::{fq_is_negative, fq2_is_negative};

/// ffjavascript's ChaCha20 stream.
#[derive(Clone)]
pub struct JsChaCha {
    state: [u32; 16],
    block: [u32; 16],
    used: usize,
}

fn quarter(x: &mut [u32; 16], a: usize, b: usize, c: usize, d: usize) {
    x[a] = x[a].wrapping_add(x[b]);
    x[d] = (x[d] ^ x[a]).rotate_left(16);
    x[c] = x[c].wrapping_add(x[d]);
    x[b] = (x[b] ^ x[c]).rotate_left(12);
    x[a] = x[a].wrapping_add(x[b]);
    x[d] = (x[d] ^ x[a]).rotate_left(8);
    x[c] = x[c].wrapping_add(x[d]);
    x[b] = (x[b] ^ x[c]).rotate_left(7);
}

impl JsChaCha {
    /// The stream for eight seed words.
    pub fn new(seed: [u32; 8]) -> Self {
        let mut state = [0u32; 16];
        state[..4].copy_from_slice(&[0x6170_7865, 0x3320_646E, 0x7962_2D32, 0x6B20_6574]);
        state[4..12].copy_from_slice(&seed);
        Self {
            state,
            block: [0; 16],
            used: 16,
        }
    }

    /// The stream seeded from the first 32 bytes of `hash` (eight big-endian words), as
    /// snarkjs seeds every stream it derives from a hash.
    ///
    /// # Panics
    /// If `hash` is shorter than 32 bytes (every caller passes a 32- or 64-byte digest).
    pub fn from_hash(hash: &[u8]) -> Self {
        let mut seed = [0u32; 8];
        for (i, w) in seed.iter_mut().enumerate() {
            *w = u32::from_be_bytes(hash[i * 4..i * 4 + 4].try_into().expect("4 bytes"));
        }
        Self::new(seed)
    }

    fn refill(&mut self) {
        let mut x = self.state;
        for _ in 0..10 {
            quarter(&mut x, 0, 4, 8, 12);
            quarter(&mut x, 1, 5, 9, 13);
            quarter(&mut x, 2, 6, 10, 14);
            quarter(&mut x, 3, 7, 11, 15);
            quarter(&mut x, 0, 5, 10, 15);
            quarter(&mut x, 1, 6, 11, 12);
            quarter(&mut x, 2, 7, 8, 13);
            quarter(&mut x, 3, 4, 9, 14);
        }
        for (o, (a, b)) in self.block.iter_mut().zip(x.iter().zip(&self.state)) {
            *o = a.wrapping_add(*b);
        }
        self.used = 0;
        for w in 12..16 {
            self.state[w] = self.state[w].wrapping_add(1);
            if self.state[w] != 0 {
                break;
            }
        }
    }

    /// The next word.
    pub fn next_u32(&mut self) -> u32 {
        if self.used == 16 {
            self.refill();
        }
        let w = self.block[self.used];
        self.used += 1;
        w
    }

    /// Two words, the first as the high half.
    pub fn next_u64(&mut self) -> u64 {
        let hi = u64::from(self.next_u32());
        let lo = u64::from(self.next_u32());
        (hi << 32) | lo
    }

    fn next_bool(&mut self) -> bool {
        self.next_u32() & 1 == 1
    }

    /// 254 random bits below the modulus, as limbs.
    fn below(&mut self, modulus: &BigInt<4>) -> BigInt<4> {
        loop {
            let mut l = [0u64; 4];
            for x in &mut l {
                *x = self.next_u64();
            }
            l[3] &= (1u64 << 62) - 1;
            let v = BigInt::new(l);
            if v < *modulus {
                return v;
            }
        }
    }

    /// ffjavascript's `Fr.fromRng`: the draw taken as a Montgomery representation.
    pub fn fr(&mut self) -> Fr {
        Fr::new_unchecked(self.below(&Fr::MODULUS))
    }

    /// ffjavascript's `Fq.fromRng`.
    pub fn fq(&mut self) -> Fq {
        Fq::new_unchecked(self.below(&Fq::MODULUS))
    }

    /// ffjavascript's `G1.fromRng`.
    pub fn g1(&mut self) -> G1Affine {
        loop {
            let x = self.fq();
            let greatest = self.next_bool();
            let t = x.square() * x + ark_bn254::g1::Config::COEFF_B;
            if let Some(mut y) = t.sqrt() {
                if fq_is_negative(&y) != greatest {
                    y = -y;
                }
                return G1Affine::new_unchecked(x, y);
            }
        }
    }

    /// ffjavascript's `G2.fromRng`: a point of the twist times the cofactor `2q - r`.
    pub fn g2(&mut self) -> G2Affine {
        loop {
            let x = Fq2::new(self.fq(), self.fq());
            let greatest = self.next_bool();
            let t = x.square() * x + g2::Config::COEFF_B;
            if let Some(mut y) = t.sqrt() {
                if fq2_is_negative(&y) != greatest {
                    y = -y;
                }
                let p = G2Affine::new_unchecked(x, y);
                return p.mul_bigint(g2_cofactor()).into_affine();
            }
        }
    }
}

/// `2q - r`, the integer ffjavascript multiplies a random twist point by.
fn g2_cofactor() -> BigInt<5> {
    let mut q2 = [0u64; 5];
    let q = Fq::MODULUS.0;
    let r = Fr::MODULUS.0;
    // 2q as five limbs, then minus r.
    let mut carry = 0u64;
    for i in 0..4 {
        q2[i] = (q[i] << 1) | carry;
        carry = q[i] >> 63;
    }
    q2[4] = carry;
    let mut borrow = 0u64;
    for i in 0..5 {
        let ri = if i < 4 { r[i] } else { 0 };
        let (d, b1) = q2[i].overflowing_sub(ri);
        let (d, b2) = d.overflowing_sub(borrow);
        q2[i] = d;
        borrow = u64::from(b1 || b2);
    }
    BigInt::new(q2)
}

/// snarkjs's `hashToG2`: the G2 point a contribution's proof of knowledge is made against,
/// drawn from the stream seeded by its transcript.
pub fn hash_to_g2(transcript: &[u8; 64]) -> G2Affine {
    JsChaCha::from_hash(transcript).g2()
}

/// The stream a beacon contribution draws its key from: `hash` through SHA-256
/// `2^iterations_exp` times.
pub fn beacon_stream(hash: &[u8], iterations_exp: u32) -> JsChaCha {
    let mut cur = hash.to_vec();
    for _ in 0..(1u64 << iterations_exp) {
        cur = Sha256::digest(&cur).to_vec();
    }
    JsChaCha::from_hash(&cur)
}

/// The stream a contribution draws its secret from: BLAKE2b-512 of 64 bytes from the
/// operating system's generator and the contributor's optional text (snarkjs's
/// `getRandomRng`).
pub fn contribution_stream(entropy: &[u8]) -> JsChaCha {
    let mut bytes = [0u8; 64];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let mut h = Blake2b512::new();
    h.update(bytes);
    h.update(entropy);
    JsChaCha::from_hash(&h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::g2_u;

    #[test]
    fn chacha_matches_rfc_7539_with_a_zero_key() {
        let mut c = JsChaCha::new([0; 8]);
        let w: Vec<u32> = (0..4).map(|_| c.next_u32()).collect();
        assert_eq!(w, [0xade0_b876, 0x903d_f1a0, 0xe56a_5d40, 0x28bd_8653]);
    }

    #[test]
    fn fr_from_the_zero_stream_matches_ffjavascript() {
        let v = JsChaCha::new([0; 8]).fr();
        assert_eq!(
            v.into_bigint().to_string(),
            "2855533207797893389160939676118313310715587629841770121526233971100838768296"
        );
    }

    #[test]
    fn hash_to_g2_matches_snarkjs() {
        let p = hash_to_g2(&[0u8; 64]);
        assert_eq!(
            hex::encode(g2_u(&p)),
            "016da982561548ef17438fc5f16af2d06348e246801233dd863f85b937a42227\
             00144b14ebc33ed4f1073eb8fbf150648e59b395a0eed9487bf24562f4b28724\
             0791424b86388b676df73f8d5ffa9de420358cdeda710a5d964cb92ce42cd590\
             043450a9c3c386c5224786dee53423d7747da0de49d80575539d8dcc2d8213ef"
        );
        let empty: [u8; 64] = Blake2b512::digest(b"").into();
        assert_eq!(
            hex::encode(g2_u(&hash_to_g2(&empty))),
            "0c523e705b9c613572f1172e2b8d6f1ccc683be186d4cf900c7445fb0f7915e7\
             2b0b0c694f859d887b3625c8c354cd165941aea9c401765399d33ddae2f95686\
             2b2de6e1352e8390db9eb6b48a05264693b59e4bd3799a1454ab9fd4ef9c0ab8\
             1aeb050dac999ffe8fae225f56b0f8a9f0c28a6ad1b3c4aacae1a70d2be29497"
        );
        assert!(p.is_in_correct_subgroup_assuming_on_curve());
    }

    #[test]
    fn beacon_key_matches_snarkjs() {
        let hash: Vec<u8> = (1u8..=31).collect();
        let mut s = beacon_stream(&hash, 10);
        assert_eq!(
            s.fr().into_bigint().to_string(),
            "245419528001706797440158906564465443062649850853982249214041232844358706575"
        );
        assert_eq!(
            hex::encode(crate::encoding::g1_u(&s.g1())),
            "09e723037c59f6b75ebf248acceed5e6ede9379de88709fa8ee01b868c4316e4\
             226297780cd50e09ce89df14e4471e6294ad2ec5188217ce6974709bf4322e00"
        );
    }
}
