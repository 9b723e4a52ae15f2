//! Phase 2 of the Groth16 ceremony (BGM17, as snarkjs's `zkey new`, `contribute`,
//! `beacon` and `verify` run it), bit for bit compatible with snarkjs.
//!
//! - [`initial`]: a circuit's key from its constraints and a prepared ptau, with `δ = 1`:
//!   each wire's `A`, `B₁`, `B₂` points and `(β·A + α·B + C)` point are sums of the ptau's
//!   Lagrange points over the rows it appears in (public-input rows `A[m+s][s] = 1`
//!   appended); `H` is the odd half of the Lagrange block of twice the domain. Its circuit
//!   hash (BLAKE2b-512 over the key's points, `H` in `τⁱ·Z(τ)` form) starts the transcript.
//! - [`contribute`], [`beacon`]: multiply `δ` by a secret `k`, divide the `C` and `H`
//!   points by it, and append a proof of knowledge of `k`: `(s, k·s)` in G1 for a random
//!   `s`, and `k·hashToG2(transcript)` in G2, the transcript binding every earlier
//!   contribution. A beacon's `k` comes from public randomness, so anyone recomputes it.
//! - [`verify_step`]: one contribution checked against the key before it; [`verify`]: a
//!   final key against the initial one and the ptau, as `snarkjs zkey verify` does.
//!   The point checks are batched with random 64-bit scalars (a wrong key passes with
//!   probability about `2⁻⁶⁴`).

use ark_bn254::{Bn254, Fr, G1Affine, G1Projective, G2Affine, G2Projective};
use ark_ec::{AdditiveGroup, AffineRepr, CurveGroup, VariableBaseMSM, pairing::Pairing};
use ark_ff::{BigInteger, Field, One, PrimeField, Zero};
use blake2::{Blake2b512, Digest};
use rand::RngCore;
use rayon::prelude::*;

use crate::encoding::{g1_u, g1_u_bytes, g2_in_subgroup_batched, g2_u, g2_u_bytes};
use crate::ptau::{Ptau, block, random_scalars};
use crate::r1cs_file::CircomR1cs;
use crate::rng::{JsChaCha, beacon_stream, hash_to_g2};
use crate::zkey::{Beacon, Coef, Contribution, Mpc, Zkey};

/// Why a key could not be made, or a transcript was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Phase2Error {
    /// The circuit and the ptau do not fit together.
    #[error("{0}")]
    Setup(String),
    /// A check of the transcript failed: which contribution (1-based, with its name), and
    /// what failed.
    #[error("{}: {check}", where_(*.contribution, .name.as_deref()))]
    Invalid {
        /// The contribution, counted from 1; `None` for the key itself.
        contribution: Option<usize>,
        /// Its name, when it has one.
        name: Option<String>,
        /// The check that failed.
        check: String,
    },
}

fn where_(c: Option<usize>, name: Option<&str>) -> String {
    match (c, name) {
        (Some(i), Some(n)) => format!("contribution #{i} ({n:?})"),
        (Some(i), None) => format!("contribution #{i}"),
        (None, _) => "the key".to_owned(),
    }
}

/// `log₂` of the domain snarkjs gives a circuit: the smallest power of two above its
/// constraints plus public values (room for the public-input rows).
pub fn domain_power(constraints: usize, public: usize) -> u32 {
    let m = (constraints + public).max(1);
    usize::BITS - m.leading_zeros()
}

/// `Σ cᵢ·Pᵢ` over a wire's terms: additions for ±1, and the rest by Straus's interleaved
/// multiplication (one shared chain of doublings, width-5 NAF digits per scalar): a wire of
/// the chunk circuit has about a dozen full-size coefficients (Poseidon's linear layers),
/// where one double-and-add each would spend twelve times the doublings.
fn combine<G: AffineRepr<ScalarField = Fr>>(points: &[G], terms: &[(u32, Fr)]) -> G::Group {
    const W: usize = 5;
    let one = Fr::one();
    let minus_one = -one;
    let mut acc = G::Group::zero();
    let mut tables: Vec<[G::Group; 1 << (W - 2)]> = Vec::new();
    let mut digits: Vec<Vec<i64>> = Vec::new();
    for &(row, c) in terms {
        let p = points[row as usize];
        if c == one {
            acc += p;
        } else if c == minus_one {
            acc -= p;
        } else {
            let naf = c
                .into_bigint()
                .find_wnaf(W)
                .expect("a width-5 NAF of a 254-bit scalar exists");
            let p = p.into_group();
            let twice = p.double();
            let mut table = [p; 1 << (W - 2)];
            for i in 1..table.len() {
                table[i] = table[i - 1] + twice;
            }
            tables.push(table);
            digits.push(naf);
        }
    }
    let len = digits.iter().map(Vec::len).max().unwrap_or(0);
    let mut sum = G::Group::zero();
    for i in (0..len).rev() {
        sum.double_in_place();
        for (naf, table) in digits.iter().zip(&tables) {
            match naf.get(i).copied().unwrap_or(0) {
                0 => {}
                d if d > 0 => sum += table[(d as usize - 1) / 2],
                d => sum -= table[((-d) as usize - 1) / 2],
            }
        }
    }
    acc + sum
}

/// Terms by wire: for each wire, `(row, coefficient)`.
fn by_wire(r1cs: &CircomR1cs, k: usize, extra: bool) -> Vec<Vec<(u32, Fr)>> {
    let mut out = vec![Vec::new(); r1cs.wires as usize];
    for (row, c) in r1cs.constraints.iter().enumerate() {
        for &(w, v) in &c[k] {
            out[w as usize].push((row as u32, v));
        }
    }
    if extra {
        let m = r1cs.constraints.len() as u32;
        for s in 0..=r1cs.public() {
            out[s as usize].push((m + s, Fr::one()));
        }
    }
    out
}

/// The initial key of a circuit (`δ = γ = 1`), as `snarkjs zkey new` makes it.
///
/// # Errors
/// [`Phase2Error::Setup`] when the ptau is too small or not prepared, or (for domains of
/// 2^15 rows and more) of exactly the circuit's power: snarkjs's circuit hash then reads one
/// point past the ptau's powers, which no other implementation can reproduce; a ptau one
/// power larger works.
pub fn initial(r1cs: &CircomR1cs, ptau: &Ptau) -> Result<Zkey, Phase2Error> {
    let b = Blocks::of(r1cs, ptau)?;
    g2_in_subgroup_batched(b.lg2, "section 13 (Lagrange tauG2)", &mut rand::rngs::OsRng)
        .map_err(|e| Phase2Error::Setup(e.to_string()))?;
    let a_terms = by_wire(r1cs, 0, true);
    let b_terms = by_wire(r1cs, 1, false);
    let c_terms = by_wire(r1cs, 2, false);
    let wires = r1cs.wires as usize;
    let a: Vec<G1Projective> = (0..wires)
        .into_par_iter()
        .map(|s| combine(b.lg1, &a_terms[s]))
        .collect();
    let b1: Vec<G1Projective> = (0..wires)
        .into_par_iter()
        .map(|s| combine(b.lg1, &b_terms[s]))
        .collect();
    let b2: Vec<G2Projective> = (0..wires)
        .into_par_iter()
        .map(|s| combine(b.lg2, &b_terms[s]))
        .collect();
    let k: Vec<G1Projective> = (0..wires)
        .into_par_iter()
        .map(|s| {
            combine(b.lb, &a_terms[s]) + combine(b.la, &b_terms[s]) + combine(b.lg1, &c_terms[s])
        })
        .collect();
    let k = G1Projective::normalize_batch(&k);
    let points = Points {
        k,
        a: G1Projective::normalize_batch(&a),
        b1: G1Projective::normalize_batch(&b1),
        b2: G2Projective::normalize_batch(&b2),
    };
    Ok(assemble_initial(r1cs, ptau, &b, points))
}

/// Each wire's points of an initial key: `K = β·A + α·B + C` (IC, then the private
/// wires' C), `A`, `B₁`, `B₂`.
struct Points {
    k: Vec<G1Affine>,
    a: Vec<G1Affine>,
    b1: Vec<G1Affine>,
    b2: Vec<G2Affine>,
}

/// The initial key from its points: `δ = γ = 1`, the ptau's `α`, `β`, `H`, the circuit
/// hash.
fn assemble_initial(r1cs: &CircomR1cs, ptau: &Ptau, b: &Blocks<'_>, p: Points) -> Zkey {
    let np = r1cs.public() as usize;
    let mut zkey = Zkey {
        n_vars: r1cs.wires,
        n_public: r1cs.public(),
        domain_size: b.n as u32,
        alpha1: ptau.alpha_tau_g1[0],
        beta1: ptau.beta_tau_g1[0],
        beta2: ptau.beta_g2,
        gamma2: G2Affine::generator(),
        delta1: G1Affine::generator(),
        delta2: G2Affine::generator(),
        ic: p.k[..=np].to_vec(),
        coefs: coefs_of(r1cs),
        a: p.a,
        b1: p.b1,
        b2: p.b2,
        c: p.k[np + 1..].to_vec(),
        h: b.h(),
        mpc: Mpc {
            cs_hash: [0; 64],
            contributions: Vec::new(),
        },
    };
    zkey.mpc.cs_hash = circuit_hash(&zkey, ptau, b.hashed_h);
    zkey
}

/// [`initial`] for a ptau whose secrets are known (one made here for a development
/// cluster): the same key, byte for byte, with each wire's values computed in the field
/// and multiplied onto the generators once, as a single-party setup does.
///
/// # Errors
/// As [`initial`].
pub fn initial_from_secrets(
    r1cs: &CircomR1cs,
    ptau: &Ptau,
    secrets: &crate::ptau::Secrets,
) -> Result<Zkey, Phase2Error> {
    use ark_ec::scalar_mul::BatchMulPreprocessing;
    use ark_poly::{EvaluationDomain, Radix2EvaluationDomain};
    let b = Blocks::of(r1cs, ptau)?;
    let domain = Radix2EvaluationDomain::<Fr>::new(b.n)
        .ok_or_else(|| Phase2Error::Setup("no domain of that size".into()))?;
    let lag = domain.evaluate_all_lagrange_coefficients(secrets.tau);
    let wires = r1cs.wires as usize;
    let column = |k: usize, extra: bool| {
        let mut v = vec![Fr::zero(); wires];
        for (row, c) in r1cs.constraints.iter().enumerate() {
            for &(w, x) in &c[k] {
                v[w as usize] += x * lag[row];
            }
        }
        if extra {
            let m = r1cs.constraints.len();
            for s in 0..=r1cs.public() as usize {
                v[s] += lag[m + s];
            }
        }
        v
    };
    let (u, v, w) = (column(0, true), column(1, false), column(2, false));
    let k: Vec<Fr> = (0..wires)
        .map(|s| secrets.beta * u[s] + secrets.alpha * v[s] + w[s])
        .collect();
    let g1 = BatchMulPreprocessing::new(G1Projective::from(G1Affine::generator()), 4 * wires);
    let g2 = BatchMulPreprocessing::new(G2Projective::from(G2Affine::generator()), wires);
    let points = Points {
        k: g1.batch_mul(&k),
        a: g1.batch_mul(&u),
        b1: g1.batch_mul(&v),
        b2: g2.batch_mul(&v),
    };
    Ok(assemble_initial(r1cs, ptau, &b, points))
}

/// The ptau's blocks a circuit's initial key is made of.
struct Blocks<'a> {
    n: usize,
    hashed_h: usize,
    lg1: &'a [G1Affine],
    lg2: &'a [G2Affine],
    la: &'a [G1Affine],
    lb: &'a [G1Affine],
    double: &'a [G1Affine],
}

impl<'a> Blocks<'a> {
    fn of(r1cs: &CircomR1cs, ptau: &'a Ptau) -> Result<Self, Phase2Error> {
        let setup = |s: String| Phase2Error::Setup(s);
        let n_public = r1cs.public();
        let power = domain_power(r1cs.constraints.len(), n_public as usize);
        if power > ptau.power {
            return Err(setup(format!(
                "the circuit needs a domain of 2^{power} rows ({} constraints and {n_public} public values) but the ptau has 2^{} powers: use a ptau of power {power} or more",
                r1cs.constraints.len(),
                ptau.power
            )));
        }
        let n = 1usize << power;
        let hashed_h = if n - 1 <= 1 << 14 {
            n - 1
        } else {
            (n - 1).div_ceil(1 << 14) << 14
        };
        if n + hashed_h > ptau.tau_g1.len() {
            return Err(setup(format!(
                "for a domain of 2^{power} rows snarkjs's circuit hash reads past the powers of a ptau of power {0}; use a ptau of power {1} or more",
                ptau.power,
                power + 1
            )));
        }
        let l = ptau.lagrange().map_err(|e| setup(e.to_string()))?;
        Ok(Self {
            n,
            hashed_h,
            lg1: block(&l.g1, power),
            lg2: block(&l.g2, power),
            la: block(&l.alpha_g1, power),
            lb: block(&l.beta_g1, power),
            double: block(&l.g1, power + 1),
        })
    }

    /// `H`: the odd half of the Lagrange block of twice the domain.
    fn h(&self) -> Vec<G1Affine> {
        (0..self.n).map(|i| self.double[2 * i + 1]).collect()
    }
}

/// Section 4: every `A` and `B` term, constraint by constraint, then the public-input rows.
fn coefs_of(r1cs: &CircomR1cs) -> Vec<Coef> {
    let mut coefs = Vec::new();
    for (row, c) in r1cs.constraints.iter().enumerate() {
        for (matrix, lc) in c[..2].iter().enumerate() {
            for &(signal, value) in lc {
                coefs.push(Coef {
                    matrix: matrix as u32,
                    constraint: row as u32,
                    signal,
                    value,
                });
            }
        }
    }
    let m = r1cs.constraints.len() as u32;
    for s in 0..=r1cs.public() {
        coefs.push(Coef {
            matrix: 0,
            constraint: m + s,
            signal: s,
            value: Fr::one(),
        });
    }
    coefs
}

/// snarkjs's circuit hash of an initial key: its points in U form, with `H` hashed as
/// `τⁱ·Z(τ)·G₁` (`hashed_h` of them) from the ptau's powers.
fn circuit_hash(zkey: &Zkey, ptau: &Ptau, hashed_h: usize) -> [u8; 64] {
    let n = zkey.domain_size as usize;
    let hz: Vec<G1Projective> = (0..hashed_h)
        .into_par_iter()
        .map(|i| ptau.tau_g1[n + i].into_group() - ptau.tau_g1[i])
        .collect();
    let hz = G1Projective::normalize_batch(&hz);
    let mut hasher = Blake2b512::new();
    hasher.update(g1_u(&zkey.alpha1));
    hasher.update(g1_u(&zkey.beta1));
    hasher.update(g2_u(&zkey.beta2));
    hasher.update(g2_u(&zkey.gamma2));
    hasher.update(g1_u(&zkey.delta1));
    hasher.update(g2_u(&zkey.delta2));
    hasher.update((zkey.ic.len() as u32).to_be_bytes());
    hasher.update(g1_u_bytes(&zkey.ic));
    hasher.update((n as u32 - 1).to_be_bytes());
    hasher.update(g1_u_bytes(&hz));
    hasher.update((zkey.c.len() as u32).to_be_bytes());
    hasher.update(g1_u_bytes(&zkey.c));
    let wires = zkey.n_vars;
    hasher.update(wires.to_be_bytes());
    hasher.update(g1_u_bytes(&zkey.a));
    hasher.update(wires.to_be_bytes());
    hasher.update(g1_u_bytes(&zkey.b1));
    hasher.update(wires.to_be_bytes());
    hasher.update(g2_u_bytes(&zkey.b2));
    hasher.finalize().into()
}

/// Checks that `zkey` is the initial key of `r1cs` over `ptau`, without recomputing it:
/// the header, coefficients and `H` compared directly, the circuit hash recomputed, and
/// each wire's points checked at once with random weights `ρ` (`Σₛ ρₛ·A[s]` against
/// `Σ_c (Σₛ A_{c,s}ρₛ)·L_c`: the sparse products in the field, one MSM a side), so a
/// ceremony verifies in a few MSMs where making its key took one multiplication per
/// coefficient.
///
/// # Errors
/// [`Phase2Error::Invalid`] naming what differs.
pub fn check_initial<R: RngCore>(
    r1cs: &CircomR1cs,
    ptau: &Ptau,
    zkey: &Zkey,
    rng: &mut R,
) -> Result<(), Phase2Error> {
    let bad = |what: &str| Phase2Error::Invalid {
        contribution: None,
        name: None,
        check: format!("the initial key (0000.zkey): {what}"),
    };
    let b = Blocks::of(r1cs, ptau)?;
    let wires = r1cs.wires as usize;
    let np = r1cs.public();
    if (zkey.n_vars, zkey.n_public, zkey.domain_size as usize) != (r1cs.wires, np, b.n) {
        return Err(bad("its sizes are not the circuit's"));
    }
    let g1 = G1Affine::generator();
    let g2 = G2Affine::generator();
    if zkey.alpha1 != ptau.alpha_tau_g1[0]
        || zkey.beta1 != ptau.beta_tau_g1[0]
        || zkey.beta2 != ptau.beta_g2
        || zkey.gamma2 != g2
        || zkey.delta1 != g1
        || zkey.delta2 != g2
    {
        return Err(bad(
            "its α, β, γ or δ are not the ptau's and the generators",
        ));
    }
    if !zkey.mpc.contributions.is_empty() {
        return Err(bad("it already holds contributions"));
    }
    if zkey.coefs != coefs_of(r1cs) {
        return Err(bad("its coefficients (section 4) are not the circuit's"));
    }
    if zkey.h != b.h() {
        return Err(bad("its H section is not the ptau's"));
    }
    if zkey.mpc.cs_hash != circuit_hash(zkey, ptau, b.hashed_h) {
        return Err(bad("its circuit hash is not the hash of its points"));
    }
    // Σₛ ρₛ·(column s of M) as a vector over rows.
    let rows_of = |k: usize, extra: bool, rho: &[Fr]| {
        let mut v = vec![Fr::zero(); b.n];
        for (row, c) in r1cs.constraints.iter().enumerate() {
            for &(w, x) in &c[k] {
                v[row] += x * rho[w as usize];
            }
        }
        if extra {
            let m = r1cs.constraints.len();
            for s in 0..=np as usize {
                v[m + s] += rho[s];
            }
        }
        v
    };
    let rho = random_scalars(rng, wires);
    let ra = rows_of(0, true, &rho);
    let rb = rows_of(1, false, &rho);
    let rc = rows_of(2, false, &rho);
    let msm1 = |bases: &[G1Affine], s: &[Fr]| G1Projective::msm_unchecked(bases, s);
    if msm1(&zkey.a, &rho) != msm1(b.lg1, &ra) {
        return Err(bad("its A section is not the circuit's"));
    }
    if msm1(&zkey.b1, &rho) != msm1(b.lg1, &rb) {
        return Err(bad("its B1 section is not the circuit's"));
    }
    if G2Projective::msm_unchecked(&zkey.b2, &rho) != G2Projective::msm_unchecked(b.lg2, &rb) {
        return Err(bad("its B2 section is not the circuit's"));
    }
    let k: Vec<G1Affine> = zkey.ic.iter().chain(&zkey.c).copied().collect();
    if msm1(&k, &rho) != msm1(b.lb, &ra) + msm1(b.la, &rb) + msm1(b.lg1, &rc) {
        return Err(bad("its IC or C section is not the circuit's"));
    }
    Ok(())
}

/// The transcript hasher after the circuit hash and `contributions`.
fn transcript_after(cs_hash: &[u8; 64], contributions: &[Contribution]) -> Blake2b512 {
    let mut h = Blake2b512::new();
    h.update(cs_hash);
    for c in contributions {
        h.update(c.public_key_bytes());
    }
    h
}

/// Applies a contribution with secret drawn from `stream` (first `k`, then `s`, as snarkjs
/// draws them) to `prev`, returning the new key and the contribution's hash.
fn apply(
    prev: &Zkey,
    stream: &mut JsChaCha,
    name: Option<String>,
    beacon: Option<Beacon>,
) -> (Zkey, [u8; 64]) {
    let k = stream.fr();
    let g1_s = stream.g1();
    let g1_sx = (g1_s * k).into_affine();
    let mut t = transcript_after(&prev.mpc.cs_hash, &prev.mpc.contributions);
    t.update(g1_u(&g1_s));
    t.update(g1_u(&g1_sx));
    let transcript: [u8; 64] = t.finalize().into();
    let g2_spx = (hash_to_g2(&transcript) * k).into_affine();
    let k_inv = k.inverse().expect("a random k is never zero in practice");
    let scale = |pts: &[G1Affine]| {
        let p: Vec<G1Projective> = pts.par_iter().map(|p| *p * k_inv).collect();
        G1Projective::normalize_batch(&p)
    };
    let mut next = prev.clone();
    next.delta1 = (prev.delta1 * k).into_affine();
    next.delta2 = (prev.delta2 * k).into_affine();
    next.c = scale(&prev.c);
    next.h = scale(&prev.h);
    let c = Contribution {
        delta_after: next.delta1,
        g1_s,
        g1_sx,
        g2_spx,
        transcript,
        name,
        beacon,
    };
    let hash = c.hash();
    next.mpc.contributions.push(c);
    (next, hash)
}

/// A contribution with fresh randomness from `stream` (see
/// [`crate::rng::contribution_stream`]); the secret lives only inside this call.
pub fn contribute(prev: &Zkey, stream: &mut JsChaCha, name: Option<String>) -> (Zkey, [u8; 64]) {
    apply(prev, stream, name, None)
}

/// A beacon contribution: its key derived from public randomness `hash`, through SHA-256
/// `2^iterations_exp` times.
///
/// # Errors
/// [`Phase2Error::Setup`] for an empty or over-long hash (1 to 255 bytes), or an exponent
/// outside 10 to 63 (snarkjs's bounds).
pub fn beacon(
    prev: &Zkey,
    hash: &[u8],
    iterations_exp: u8,
    name: Option<String>,
) -> Result<(Zkey, [u8; 64]), Phase2Error> {
    if hash.is_empty() || hash.len() > 255 {
        return Err(Phase2Error::Setup(
            "a beacon's value must be 1 to 255 bytes".into(),
        ));
    }
    if !(10..=63).contains(&iterations_exp) {
        return Err(Phase2Error::Setup(
            "a beacon's iteration exponent must be between 10 and 63".into(),
        ));
    }
    let mut stream = beacon_stream(hash, u32::from(iterations_exp));
    let b = Beacon {
        hash: hash.to_vec(),
        iterations_exp,
    };
    Ok(apply(prev, &mut stream, name, Some(b)))
}

/// `e(a₁, b₂) = e(b₁, a₂)`, false if any is the identity (snarkjs's `sameRatio`).
fn same_ratio(a1: G1Affine, b1: G1Affine, a2: G2Affine, b2: G2Affine) -> bool {
    if a1.is_zero() || b1.is_zero() || a2.is_zero() || b2.is_zero() {
        return false;
    }
    Bn254::multi_pairing([a1, (-b1.into_group()).into_affine()], [b2, a2]).is_zero()
}

/// Checks contribution `c` (the `index`-th, from 1) of a transcript whose earlier
/// contributions are `before`, `δ` having been `prev_delta` before it.
fn check_contribution(
    cs_hash: &[u8; 64],
    before: &[Contribution],
    prev_delta: G1Affine,
    c: &Contribution,
    index: usize,
) -> Result<(), Phase2Error> {
    let fail = |check: &str| Phase2Error::Invalid {
        contribution: Some(index),
        name: c.name.clone(),
        check: check.to_owned(),
    };
    let mut t = transcript_after(cs_hash, before);
    t.update(g1_u(&c.g1_s));
    t.update(g1_u(&c.g1_sx));
    let expected: [u8; 64] = t.finalize().into();
    if expected != c.transcript {
        return Err(fail(
            "its transcript is not the hash of the circuit and the contributions before it (made on another circuit, or out of order)",
        ));
    }
    let g2_sp = hash_to_g2(&c.transcript);
    if !same_ratio(c.g1_s, c.g1_sx, g2_sp, c.g2_spx) {
        return Err(fail(
            "its proof of knowledge does not hold (g1_s, g1_sx and g2_spx are not in the same ratio)",
        ));
    }
    if !same_ratio(prev_delta, c.delta_after, g2_sp, c.g2_spx) {
        return Err(fail(
            "its δ is not the previous δ times the secret its proof of knowledge is for",
        ));
    }
    if let Some(b) = &c.beacon {
        let mut s = beacon_stream(&b.hash, u32::from(b.iterations_exp));
        let k = s.fr();
        let g1_s = s.g1();
        if g1_s != c.g1_s || (g1_s * k).into_affine() != c.g1_sx {
            return Err(fail("its key is not the one its beacon parameters give"));
        }
    }
    Ok(())
}

/// Checks that the points `next` are the points `prev` times `δ_prev/δ_next`:
/// `e(Σρᵢ·prevᵢ, δ₂_prev) = e(Σρᵢ·nextᵢ, δ₂_next)`.
fn scaled_by_delta<R: RngCore>(
    prev: &[G1Affine],
    next: &[G1Affine],
    prev_delta2: G2Affine,
    next_delta2: G2Affine,
    rng: &mut R,
) -> bool {
    if prev.len() != next.len() {
        return false;
    }
    if prev.is_empty() {
        return true;
    }
    let r = random_scalars(rng, prev.len());
    let a = G1Projective::msm_unchecked(prev, &r).into_affine();
    let b = G1Projective::msm_unchecked(next, &r).into_affine();
    same_ratio(a, b, next_delta2, prev_delta2)
}

/// Checks that `next` is `prev` with one more contribution, correctly applied: the
/// transcript extends `prev`'s by one valid contribution, every point but `δ`, `C` and `H`
/// is unchanged, and `C`, `H` are `prev`'s divided by the contribution's secret. `index` is
/// the contribution's number (from 1), for the messages.
///
/// # Errors
/// [`Phase2Error::Invalid`] naming the contribution and the check.
pub fn verify_step<R: RngCore>(
    prev: &Zkey,
    next: &Zkey,
    index: usize,
    rng: &mut R,
) -> Result<(), Phase2Error> {
    let before = &prev.mpc.contributions;
    let Some((c, earlier)) = next.mpc.contributions.split_last() else {
        return Err(Phase2Error::Invalid {
            contribution: Some(index),
            name: None,
            check: "it holds no contribution".into(),
        });
    };
    let fail = |check: &str| Phase2Error::Invalid {
        contribution: Some(index),
        name: c.name.clone(),
        check: check.to_owned(),
    };
    if next.mpc.cs_hash != prev.mpc.cs_hash {
        return Err(fail(
            "it was made on another circuit (its circuit hash differs from the key before it)",
        ));
    }
    if earlier != before.as_slice() {
        return Err(fail(
            "its transcript does not extend the one before it by exactly one contribution (reordered, or a contribution is missing)",
        ));
    }
    check_contribution(&prev.mpc.cs_hash, before, prev.delta1, c, index)?;
    if c.delta_after != next.delta1 {
        return Err(fail(
            "the key's δ₁ is not the one its contribution announces",
        ));
    }
    if !same_ratio(
        G1Affine::generator(),
        next.delta1,
        G2Affine::generator(),
        next.delta2,
    ) {
        return Err(fail("the key's δ₂ does not match its δ₁"));
    }
    unchanged(prev, next)
        .map_err(|what| fail(&format!("its {what} differs from the key before it")))?;
    if !scaled_by_delta(&prev.c, &next.c, prev.delta2, next.delta2, rng) {
        return Err(fail(
            "its C section (section 8) is not the previous one divided by its secret",
        ));
    }
    if !scaled_by_delta(&prev.h, &next.h, prev.delta2, next.delta2, rng) {
        return Err(fail(
            "its H section (section 9) is not the previous one divided by its secret",
        ));
    }
    Ok(())
}

/// Which of the points a contribution leaves alone differ.
fn unchanged(a: &Zkey, b: &Zkey) -> Result<(), &'static str> {
    if (a.n_vars, a.n_public, a.domain_size) != (b.n_vars, b.n_public, b.domain_size) {
        return Err("circuit size");
    }
    if a.alpha1 != b.alpha1 || a.beta1 != b.beta1 || a.beta2 != b.beta2 {
        return Err("α or β");
    }
    if a.gamma2 != b.gamma2 {
        return Err("γ");
    }
    if a.ic != b.ic {
        return Err("IC section (section 3)");
    }
    if a.coefs != b.coefs {
        return Err("coefficients (section 4)");
    }
    if a.a != b.a {
        return Err("A section (section 5)");
    }
    if a.b1 != b.b1 {
        return Err("B1 section (section 6)");
    }
    if a.b2 != b.b2 {
        return Err("B2 section (section 7)");
    }
    Ok(())
}

/// Checks a final key against the initial one made from the circuit and the ptau, as
/// `snarkjs zkey verify` does: every contribution of its transcript, the points it must
/// leave alone, and `C`, `H` scaled by `1/δ`. Returns the contribution hashes.
///
/// # Errors
/// [`Phase2Error::Invalid`] naming the contribution (or the key) and the check.
pub fn verify<R: RngCore>(
    init: &Zkey,
    zkey: &Zkey,
    rng: &mut R,
) -> Result<Vec<[u8; 64]>, Phase2Error> {
    let key = |check: &str| Phase2Error::Invalid {
        contribution: None,
        name: None,
        check: check.to_owned(),
    };
    if zkey.mpc.cs_hash != init.mpc.cs_hash {
        return Err(key("it is for another circuit (its circuit hash differs)"));
    }
    let cs = &zkey.mpc.cs_hash;
    let mut delta = G1Affine::generator();
    let mut hashes = Vec::new();
    for (i, c) in zkey.mpc.contributions.iter().enumerate() {
        check_contribution(cs, &zkey.mpc.contributions[..i], delta, c, i + 1)?;
        delta = c.delta_after;
        hashes.push(c.hash());
    }
    if zkey.delta1 != delta {
        return Err(key("its δ₁ is not the last contribution's"));
    }
    if !same_ratio(
        G1Affine::generator(),
        zkey.delta1,
        G2Affine::generator(),
        zkey.delta2,
    ) {
        return Err(key("its δ₂ does not match its δ₁"));
    }
    unchanged(init, zkey).map_err(|what| key(&format!("its {what} differs from the circuit's")))?;
    if !scaled_by_delta(&init.c, &zkey.c, init.delta2, zkey.delta2, rng) {
        return Err(key(
            "its C section (section 8) is not the circuit's divided by δ",
        ));
    }
    if !scaled_by_delta(&init.h, &zkey.h, init.delta2, zkey.delta2, rng) {
        return Err(key(
            "its H section (section 9) is not the circuit's divided by δ",
        ));
    }
    Ok(hashes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn domain_power_matches_snarkjs() {
        assert_eq!(domain_power(3, 2), 3);
        assert_eq!(domain_power(4, 3), 3);
        assert_eq!(domain_power(5, 3), 4);
        assert_eq!(domain_power(10865, 3), 14);
    }

    fn toy() -> CircomR1cs {
        // x² = y, y·x = z + 7, (x + y)·3 = w, over wires 1 out, 2 x (public), 3 y, 4 z, 5 w.
        let f = |x: u64| Fr::from(x);
        CircomR1cs {
            wires: 6,
            outputs: 1,
            public_inputs: 1,
            private_inputs: 0,
            labels: 6,
            constraints: vec![
                [vec![(2, f(1))], vec![(2, f(1))], vec![(3, f(1))]],
                [vec![(3, f(1))], vec![(2, f(1))], vec![(4, f(1)), (0, f(7))]],
                [
                    vec![(2, f(1)), (3, -f(123_456_789_123_456_789))],
                    vec![(0, f(3))],
                    vec![(5, f(1))],
                ],
                [
                    vec![(1, Fr::from(2u64).pow([200]))],
                    vec![(0, f(1))],
                    vec![(5, f(1))],
                ],
            ],
        }
    }

    #[test]
    fn the_initial_key_is_the_same_from_points_and_from_secrets_and_checks() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(5);
        let (ptau, secrets) = Ptau::new_with_secrets(4, &mut rng).unwrap();
        let r1cs = toy();
        let a = initial(&r1cs, &ptau).unwrap();
        let b = initial_from_secrets(&r1cs, &ptau, &secrets).unwrap();
        assert_eq!(a, b);
        check_initial(&r1cs, &ptau, &a, &mut rng).unwrap();
        let mut bad = a.clone();
        bad.c[0] = bad.c[1];
        // Rehashed, so that only the points' check can find it.
        bad.mpc.cs_hash = circuit_hash(&bad, &ptau, bad.domain_size as usize - 1);
        let err = check_initial(&r1cs, &ptau, &bad, &mut rng)
            .unwrap_err()
            .to_string();
        assert!(err.contains("IC or C"), "{err}");
        // A contribution checks against the key before it; tampering with it does not.
        let (next, _) = contribute(&a, &mut JsChaCha::new([9; 8]), Some("x".into()));
        verify_step(&a, &next, 1, &mut rng).unwrap();
        verify(&a, &next, &mut rng).unwrap();
        let mut forged = next.clone();
        forged.h[2] = forged.h[3];
        let err = verify_step(&a, &forged, 1, &mut rng)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("contribution #1 (\"x\")") && err.contains("H section"),
            "{err}"
        );
        let mut forged = next.clone();
        let last = forged.mpc.contributions.last_mut().unwrap();
        last.g2_spx = (last.g2_spx * Fr::from(2u64)).into_affine();
        let err = verify_step(&a, &forged, 1, &mut rng)
            .unwrap_err()
            .to_string();
        assert!(err.contains("proof of knowledge"), "{err}");
    }

    #[test]
    fn same_ratio_refuses_the_identity() {
        let g = G1Affine::generator();
        let h = G2Affine::generator();
        assert!(same_ratio(g, g, h, h));
        assert!(!same_ratio(G1Affine::zero(), G1Affine::zero(), h, h));
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        let _ = random_scalars(&mut rng, 1);
    }
}
