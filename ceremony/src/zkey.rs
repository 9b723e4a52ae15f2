//! snarkjs's Groth16 `.zkey` files (version 1), read and written.
//!
//! | section | holds |
//! |---|---|
//! | 1 | the protocol, `1` for Groth16 |
//! | 2 | the moduli, variables, public values, the domain size, `α₁ β₁ β₂ γ₂ δ₁ δ₂` |
//! | 3 | `IC`: the public values' points (`/γ`) |
//! | 4 | the `A` and `B` coefficients, each `(matrix, row, wire, c·R² mod r)` |
//! | 5, 6, 7 | the `A`, `B₁`, `B₂` queries, one point per wire |
//! | 8 | `C`: the private wires' points (`/δ`), Pulse's and arkworks' `L` query |
//! | 9 | `H`: the `domain` points `L₂ᵢ₊₁(τ)/δ` |
//! | 10 | the ceremony transcript: the circuit hash and every contribution |
//!
//! Points are LEM ([`crate::encoding`]). The proving key's G2 points are checked on the
//! curve only when read (a bad base makes a proof that does not verify, and a ceremony's
//! keys are checked against the ones recomputed from the ptau); the verifying key's G2
//! points and the transcript's are checked in the subgroup too.

use ark_bn254::{Fr, G1Affine, G2Affine};
use ark_ff::{Field, PrimeField};
use blake2::{Blake2b512, Digest};

use crate::FormatError;
use crate::binfile::{self, BinFile, Reader};
use crate::encoding::{
    G1_LEN, G2_LEN, g1_array, g1_bytes, g1_from_lem, g1_to_lem, g1_u, g2_array, g2_bytes,
    g2_from_lem, g2_to_lem, g2_u, modulus_le,
};

/// One coefficient of section 4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Coef {
    /// 0 for `A`, 1 for `B`.
    pub matrix: u32,
    /// The row (constraint; rows past the constraints are the public-input rows).
    pub constraint: u32,
    /// The wire.
    pub signal: u32,
    /// The coefficient.
    pub value: Fr,
}

/// A beacon contribution's public randomness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Beacon {
    /// The beacon's value (1 to 255 bytes).
    pub hash: Vec<u8>,
    /// SHA-256 is applied `2^iterations_exp` times.
    pub iterations_exp: u8,
}

/// One contribution of the transcript.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contribution {
    /// `δ₁` after this contribution.
    pub delta_after: G1Affine,
    /// The proof of knowledge: a random `s·G₁`…
    pub g1_s: G1Affine,
    /// …times the secret `k`…
    pub g1_sx: G1Affine,
    /// …and `k` times the point [`crate::rng::hash_to_g2`] draws from the transcript.
    pub g2_spx: G2Affine,
    /// BLAKE2b-512 of the circuit hash, every earlier contribution's public key, and
    /// `g1_s ‖ g1_sx`.
    pub transcript: [u8; 64],
    /// The contributor's name, when given (at most 64 characters).
    pub name: Option<String>,
    /// For a beacon, its parameters (anyone can recompute its key from them).
    pub beacon: Option<Beacon>,
}

impl Contribution {
    /// The public key as snarkjs hashes it: `U(δ after) ‖ U(g1_s) ‖ U(g1_sx) ‖
    /// U(g2_spx) ‖ transcript`.
    pub fn public_key_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(384);
        out.extend_from_slice(&g1_u(&self.delta_after));
        out.extend_from_slice(&g1_u(&self.g1_s));
        out.extend_from_slice(&g1_u(&self.g1_sx));
        out.extend_from_slice(&g2_u(&self.g2_spx));
        out.extend_from_slice(&self.transcript);
        out
    }

    /// The contribution's hash, the one its contributor publishes: BLAKE2b-512 of its
    /// public key.
    pub fn hash(&self) -> [u8; 64] {
        Blake2b512::digest(self.public_key_bytes()).into()
    }
}

/// The ceremony transcript of section 10.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mpc {
    /// BLAKE2b-512 of the initial key's points (snarkjs's "circuit hash").
    pub cs_hash: [u8; 64],
    /// The contributions, oldest first.
    pub contributions: Vec<Contribution>,
}

/// A Groth16 `.zkey`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zkey {
    /// Wires (the witness length).
    pub n_vars: u32,
    /// Public values, not counting the constant one.
    pub n_public: u32,
    /// The QAP domain: a power of two above the constraints and public values.
    pub domain_size: u32,
    /// `α·G₁`.
    pub alpha1: G1Affine,
    /// `β·G₁`.
    pub beta1: G1Affine,
    /// `β·G₂`.
    pub beta2: G2Affine,
    /// `γ·G₂`.
    pub gamma2: G2Affine,
    /// `δ·G₁`.
    pub delta1: G1Affine,
    /// `δ·G₂`.
    pub delta2: G2Affine,
    /// Section 3.
    pub ic: Vec<G1Affine>,
    /// Section 4.
    pub coefs: Vec<Coef>,
    /// Section 5.
    pub a: Vec<G1Affine>,
    /// Section 6.
    pub b1: Vec<G1Affine>,
    /// Section 7.
    pub b2: Vec<G2Affine>,
    /// Section 8.
    pub c: Vec<G1Affine>,
    /// Section 9.
    pub h: Vec<G1Affine>,
    /// Section 10.
    pub mpc: Mpc,
}

/// `2²⁵⁶ mod r`, the Montgomery radix as a field element.
fn radix() -> Fr {
    Fr::from(2u64).pow([256])
}

impl Zkey {
    /// Parses a `.zkey` file.
    ///
    /// # Errors
    /// [`FormatError`] naming the section and what is wrong.
    pub fn parse(bytes: Vec<u8>) -> Result<Self, FormatError> {
        let f = BinFile::parse(bytes, b"zkey")?;
        if f.version() > 2 {
            return Err(FormatError::new(format!(
                "zkey version {} (versions up to 2 are known)",
                f.version()
            )));
        }
        let mut p = Reader::new(f.required(1, "protocol")?, "the zkey protocol");
        if p.u32()? != 1 {
            return Err(FormatError::new(
                "the zkey is not a Groth16 key (its protocol is not 1)",
            ));
        }
        let mut h = Reader::new(f.required(2, "Groth16 header")?, "the zkey header");
        if h.u32()? != 32
            || h.take(32)? != modulus_le::<ark_bn254::Fq>()
            || h.u32()? != 32
            || h.take(32)? != modulus_le::<Fr>()
        {
            return Err(FormatError::new("the zkey is not for BN254 (bn128)"));
        }
        let n_vars = h.u32()?;
        let n_public = h.u32()?;
        let domain_size = h.u32()?;
        if n_public >= n_vars {
            return Err(FormatError::new(format!(
                "the zkey has {n_public} public values of {n_vars} wires"
            )));
        }
        if !domain_size.is_power_of_two() || domain_size > 1 << 28 {
            return Err(FormatError::new(format!(
                "domain size {domain_size} is not a power of two up to 2^28"
            )));
        }
        let point1 = |b: &[u8], what: &str| {
            g1_from_lem(b).map_err(|e| FormatError::new(format!("the zkey's {what}: {e}")))
        };
        let point2 = |b: &[u8], what: &str| {
            g2_from_lem(b).map_err(|e| FormatError::new(format!("the zkey's {what}: {e}")))
        };
        let alpha1 = point1(h.take(G1_LEN)?, "alpha1")?;
        let beta1 = point1(h.take(G1_LEN)?, "beta1")?;
        let beta2 = point2(h.take(G2_LEN)?, "beta2")?;
        let gamma2 = point2(h.take(G2_LEN)?, "gamma2")?;
        let delta1 = point1(h.take(G1_LEN)?, "delta1")?;
        let delta2 = point2(h.take(G2_LEN)?, "delta2")?;
        h.finish()?;
        let (nv, np) = (n_vars as usize, n_public as usize);
        let ic = g1_array(f.required(3, "IC")?, np + 1, "section 3 (IC)")?;
        let coefs = parse_coefs(f.required(4, "coefficients")?, n_vars, domain_size)?;
        let a = g1_array(f.required(5, "A")?, nv, "section 5 (A)")?;
        let b1 = g1_array(f.required(6, "B1")?, nv, "section 6 (B1)")?;
        let b2 = g2_array(f.required(7, "B2")?, nv, "section 7 (B2)", false)?;
        let c = g1_array(f.required(8, "C")?, nv - np - 1, "section 8 (C)")?;
        let hq = g1_array(f.required(9, "H")?, domain_size as usize, "section 9 (H)")?;
        let mpc = parse_mpc(f.required(10, "contributions")?)?;
        Ok(Self {
            n_vars,
            n_public,
            domain_size,
            alpha1,
            beta1,
            beta2,
            gamma2,
            delta1,
            delta2,
            ic,
            coefs,
            a,
            b1,
            b2,
            c,
            h: hq,
            mpc,
        })
    }

    /// The file's bytes, sections in order 1 to 10.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut header = Vec::with_capacity(660);
        header.extend_from_slice(&32u32.to_le_bytes());
        header.extend_from_slice(&modulus_le::<ark_bn254::Fq>());
        header.extend_from_slice(&32u32.to_le_bytes());
        header.extend_from_slice(&modulus_le::<Fr>());
        for v in [self.n_vars, self.n_public, self.domain_size] {
            header.extend_from_slice(&v.to_le_bytes());
        }
        header.extend_from_slice(&g1_to_lem(&self.alpha1));
        header.extend_from_slice(&g1_to_lem(&self.beta1));
        header.extend_from_slice(&g2_to_lem(&self.beta2));
        header.extend_from_slice(&g2_to_lem(&self.gamma2));
        header.extend_from_slice(&g1_to_lem(&self.delta1));
        header.extend_from_slice(&g2_to_lem(&self.delta2));
        let r = radix();
        let mut coefs = Vec::with_capacity(4 + 44 * self.coefs.len());
        coefs.extend_from_slice(&(self.coefs.len() as u32).to_le_bytes());
        for c in &self.coefs {
            coefs.extend_from_slice(&c.matrix.to_le_bytes());
            coefs.extend_from_slice(&c.constraint.to_le_bytes());
            coefs.extend_from_slice(&c.signal.to_le_bytes());
            // c·R² mod r: the Montgomery representation of c·R.
            let v = (c.value * r).0;
            for l in v.0 {
                coefs.extend_from_slice(&l.to_le_bytes());
            }
        }
        let sections: Vec<(u32, Vec<u8>)> = vec![
            (1, 1u32.to_le_bytes().to_vec()),
            (2, header),
            (3, g1_bytes(&self.ic)),
            (4, coefs),
            (5, g1_bytes(&self.a)),
            (6, g1_bytes(&self.b1)),
            (7, g2_bytes(&self.b2)),
            (8, g1_bytes(&self.c)),
            (9, g1_bytes(&self.h)),
            (10, mpc_bytes(&self.mpc)),
        ];
        let refs: Vec<(u32, &[u8])> = sections.iter().map(|(k, b)| (*k, b.as_slice())).collect();
        let mut out =
            Vec::with_capacity(refs.iter().map(|(_, b)| b.len() + 12).sum::<usize>() + 12);
        binfile::write(&mut out, b"zkey", 1, &refs).expect("writing to memory");
        out
    }

    /// `log₂` of the domain size.
    pub fn power(&self) -> u32 {
        self.domain_size.trailing_zeros()
    }
}

fn parse_coefs(bytes: &[u8], n_vars: u32, domain: u32) -> Result<Vec<Coef>, FormatError> {
    let mut r = Reader::new(bytes, "section 4 (coefficients)");
    let count = r.u32()? as usize;
    if r.remaining() != count.saturating_mul(44) {
        return Err(FormatError::new(format!(
            "section 4 declares {count} coefficients but holds {} bytes",
            r.remaining()
        )));
    }
    let inv = radix().inverse().expect("2^256 is invertible mod r");
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let matrix = r.u32()?;
        let constraint = r.u32()?;
        let signal = r.u32()?;
        let raw = r.take(32)?;
        let v = ark_ff::BigInt::<4>::new(std::array::from_fn(|k| {
            u64::from_le_bytes(raw[k * 8..k * 8 + 8].try_into().expect("8 bytes"))
        }));
        if matrix > 1 || signal >= n_vars || constraint >= domain || v >= Fr::MODULUS {
            return Err(FormatError::new(format!(
                "section 4, coefficient {i}: matrix {matrix}, row {constraint}, wire {signal} is out of range"
            )));
        }
        out.push(Coef {
            matrix,
            constraint,
            signal,
            value: Fr::new_unchecked(v) * inv,
        });
    }
    Ok(out)
}

fn parse_mpc(bytes: &[u8]) -> Result<Mpc, FormatError> {
    let mut r = Reader::new(bytes, "section 10 (contributions)");
    let cs_hash: [u8; 64] = r.take(64)?.try_into().expect("64 bytes");
    let count = r.u32()? as usize;
    let mut contributions = Vec::with_capacity(count.min(r.remaining() / 392));
    for i in 0..count {
        let at = |e: &str| FormatError::new(format!("contribution #{}: {e}", i + 1));
        let delta_after = g1_from_lem(r.take(G1_LEN)?).map_err(at)?;
        let g1_s = g1_from_lem(r.take(G1_LEN)?).map_err(at)?;
        let g1_sx = g1_from_lem(r.take(G1_LEN)?).map_err(at)?;
        let g2_spx = g2_from_lem(r.take(G2_LEN)?).map_err(at)?;
        let transcript: [u8; 64] = r.take(64)?.try_into().expect("64 bytes");
        let kind = r.u32()?;
        let len = r.u32()? as usize;
        let mut p = Reader::new(r.take(len)?, "a contribution's parameters");
        let (mut name, mut exp, mut hash) = (None, None, None);
        let mut last = 0u8;
        while p.remaining() > 0 {
            let tag = p.take(1)?[0];
            if tag <= last {
                return Err(at("its parameters are not sorted"));
            }
            last = tag;
            match tag {
                1 => {
                    let n = p.take(1)?[0] as usize;
                    name = Some(String::from_utf8_lossy(p.take(n)?).into_owned());
                }
                2 => exp = Some(p.take(1)?[0]),
                3 => {
                    let n = p.take(1)?[0] as usize;
                    hash = Some(p.take(n)?.to_vec());
                }
                _ => return Err(at(&format!("unknown parameter {tag}"))),
            }
        }
        let beacon = match (kind, exp, hash) {
            (0, None, None) => None,
            (1, Some(iterations_exp), Some(hash)) => Some(Beacon {
                hash,
                iterations_exp,
            }),
            _ => return Err(at("its type and beacon parameters disagree")),
        };
        contributions.push(Contribution {
            delta_after,
            g1_s,
            g1_sx,
            g2_spx,
            transcript,
            name,
            beacon,
        });
    }
    r.finish()?;
    Ok(Mpc {
        cs_hash,
        contributions,
    })
}

fn mpc_bytes(mpc: &Mpc) -> Vec<u8> {
    let mut out = Vec::with_capacity(68 + 420 * mpc.contributions.len());
    out.extend_from_slice(&mpc.cs_hash);
    out.extend_from_slice(&(mpc.contributions.len() as u32).to_le_bytes());
    for c in &mpc.contributions {
        out.extend_from_slice(&g1_to_lem(&c.delta_after));
        out.extend_from_slice(&g1_to_lem(&c.g1_s));
        out.extend_from_slice(&g1_to_lem(&c.g1_sx));
        out.extend_from_slice(&g2_to_lem(&c.g2_spx));
        out.extend_from_slice(&c.transcript);
        out.extend_from_slice(&u32::from(c.beacon.is_some()).to_le_bytes());
        let mut params = Vec::new();
        if let Some(name) = c.name.as_deref().filter(|n| !n.is_empty()) {
            let name: String = name.chars().take(64).collect();
            let mut b = name.into_bytes();
            b.truncate(255);
            params.push(1);
            params.push(b.len() as u8);
            params.extend_from_slice(&b);
        }
        if let Some(b) = &c.beacon {
            params.push(2);
            params.push(b.iterations_exp);
            params.push(3);
            params.push(b.hash.len() as u8);
            params.extend_from_slice(&b.hash);
        }
        out.extend_from_slice(&(params.len() as u32).to_le_bytes());
        out.extend_from_slice(&params);
    }
    out
}
