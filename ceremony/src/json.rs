//! snarkjs's JSON files: `verification_key.json`, `proof.json`, `public.json`.
//!
//! Field elements are decimal strings of canonical values; points are projective triples,
//! `[x, y, "1"]` in G1 and `[[x.c0, x.c1], [y.c0, y.c1], ["1", "0"]]` in G2, the identity
//! `["0", "1", "0"]` (G2: `[["0","0"],["1","0"],["0","0"]]`). Reading accepts `z = 1` and the
//! identity, and checks every point on its curve (G2 also in the subgroup) and every public
//! value below the modulus.

use ark_bn254::{Bn254, Fq, Fq2, Fr, G1Affine, G2Affine};
use ark_ec::{AffineRepr, pairing::Pairing};
use ark_ff::{PrimeField, Zero};
use ark_groth16::{Proof, VerifyingKey};
use num_bigint::BigUint;
use serde::{Deserialize, Serialize};

use crate::FormatError;

fn dec<F: PrimeField>(x: &F) -> String {
    x.into_bigint().to_string()
}

fn g1(p: &G1Affine) -> [String; 3] {
    match p.xy() {
        Some((x, y)) => [dec(&x), dec(&y), "1".into()],
        None => ["0".into(), "1".into(), "0".into()],
    }
}

fn fq2(x: &Fq2) -> [String; 2] {
    [dec(&x.c0), dec(&x.c1)]
}

fn g2(p: &G2Affine) -> [[String; 2]; 3] {
    match p.xy() {
        Some((x, y)) => [fq2(&x), fq2(&y), ["1".into(), "0".into()]],
        None => [
            ["0".into(), "0".into()],
            ["1".into(), "0".into()],
            ["0".into(), "0".into()],
        ],
    }
}

/// `verification_key.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VkJson {
    /// `"groth16"`.
    pub protocol: String,
    /// `"bn128"`.
    pub curve: String,
    /// Public values.
    #[serde(rename = "nPublic")]
    pub n_public: usize,
    /// `α·G₁`.
    pub vk_alpha_1: [String; 3],
    /// `β·G₂`.
    pub vk_beta_2: [[String; 2]; 3],
    /// `γ·G₂`.
    pub vk_gamma_2: [[String; 2]; 3],
    /// `δ·G₂`.
    pub vk_delta_2: [[String; 2]; 3],
    /// `e(α, β)` (snarkjs writes it; its verifier does not read it).
    pub vk_alphabeta_12: Vec<Vec<[String; 2]>>,
    /// The public values' points.
    #[serde(rename = "IC")]
    pub ic: Vec<[String; 3]>,
}

/// The JSON of a verifying key.
pub fn vk_json(vk: &VerifyingKey<Bn254>) -> VkJson {
    let ab = Bn254::pairing(vk.alpha_g1, vk.beta_g2).0;
    let fq6 = |x: &ark_bn254::Fq6| vec![fq2(&x.c0), fq2(&x.c1), fq2(&x.c2)];
    VkJson {
        protocol: "groth16".into(),
        curve: "bn128".into(),
        n_public: vk.gamma_abc_g1.len() - 1,
        vk_alpha_1: g1(&vk.alpha_g1),
        vk_beta_2: g2(&vk.beta_g2),
        vk_gamma_2: g2(&vk.gamma_g2),
        vk_delta_2: g2(&vk.delta_g2),
        vk_alphabeta_12: vec![fq6(&ab.c0), fq6(&ab.c1)],
        ic: vk.gamma_abc_g1.iter().map(g1).collect(),
    }
}

/// `proof.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProofJson {
    /// `A`.
    pub pi_a: [String; 3],
    /// `B`.
    pub pi_b: [[String; 2]; 3],
    /// `C`.
    pub pi_c: [String; 3],
    /// `"groth16"`.
    pub protocol: String,
    /// `"bn128"`.
    pub curve: String,
}

/// The JSON of a proof.
pub fn proof_json(p: &Proof<Bn254>) -> ProofJson {
    ProofJson {
        pi_a: g1(&p.a),
        pi_b: g2(&p.b),
        pi_c: g1(&p.c),
        protocol: "groth16".into(),
        curve: "bn128".into(),
    }
}

/// The JSON of public values.
pub fn public_json(inputs: &[Fr]) -> Vec<String> {
    inputs.iter().map(dec).collect()
}

fn field<F: PrimeField>(s: &str, what: &str) -> Result<F, FormatError> {
    let v: BigUint = s
        .parse()
        .map_err(|_| FormatError::new(format!("{what}: {s:?} is not a decimal number")))?;
    if v >= F::MODULUS.into() {
        return Err(FormatError::new(format!(
            "{what}: {s} is not below the field modulus"
        )));
    }
    Ok(F::from(v))
}

fn read_g1(p: &[String; 3], what: &str) -> Result<G1Affine, FormatError> {
    let z: Fq = field(&p[2], what)?;
    if z.is_zero() {
        return Ok(G1Affine::zero());
    }
    if z != Fq::from(1u64) {
        return Err(FormatError::new(format!(
            "{what}: only affine points (z = 1) are read"
        )));
    }
    let pt = G1Affine::new_unchecked(field(&p[0], what)?, field(&p[1], what)?);
    if !pt.is_on_curve() {
        return Err(FormatError::new(format!(
            "{what}: the point is not on the curve"
        )));
    }
    Ok(pt)
}

fn read_g2(p: &[[String; 2]; 3], what: &str) -> Result<G2Affine, FormatError> {
    let f2 = |c: &[String; 2]| -> Result<Fq2, FormatError> {
        Ok(Fq2::new(field(&c[0], what)?, field(&c[1], what)?))
    };
    let z = f2(&p[2])?;
    if z.is_zero() {
        return Ok(G2Affine::zero());
    }
    if z != Fq2::from(1u64) {
        return Err(FormatError::new(format!(
            "{what}: only affine points (z = [1, 0]) are read"
        )));
    }
    let pt = G2Affine::new_unchecked(f2(&p[0])?, f2(&p[1])?);
    if !pt.is_on_curve() || !pt.is_in_correct_subgroup_assuming_on_curve() {
        return Err(FormatError::new(format!(
            "{what}: the point is not on the curve's prime-order subgroup"
        )));
    }
    Ok(pt)
}

/// A proof from its JSON.
///
/// # Errors
/// [`FormatError`] naming the field that is wrong.
pub fn read_proof(json: &str) -> Result<Proof<Bn254>, FormatError> {
    let p: ProofJson = serde_json::from_str(json)
        .map_err(|e| FormatError::new(format!("not a snarkjs proof.json: {e}")))?;
    if p.protocol != "groth16" {
        return Err(FormatError::new(format!(
            "the proof is for {:?}, not groth16",
            p.protocol
        )));
    }
    Ok(Proof {
        a: read_g1(&p.pi_a, "pi_a")?,
        b: read_g2(&p.pi_b, "pi_b")?,
        c: read_g1(&p.pi_c, "pi_c")?,
    })
}

/// Public values from their JSON.
///
/// # Errors
/// [`FormatError`] naming the value that is wrong.
pub fn read_public(json: &str) -> Result<Vec<Fr>, FormatError> {
    let v: Vec<String> = serde_json::from_str(json)
        .map_err(|e| FormatError::new(format!("not a snarkjs public.json: {e}")))?;
    v.iter()
        .enumerate()
        .map(|(i, s)| field(s, &format!("public value {i}")))
        .collect()
}

/// A verifying key from its JSON.
///
/// # Errors
/// [`FormatError`] naming the field that is wrong.
pub fn read_vk(json: &str) -> Result<VerifyingKey<Bn254>, FormatError> {
    let v: VkJson = serde_json::from_str(json)
        .map_err(|e| FormatError::new(format!("not a snarkjs verification_key.json: {e}")))?;
    if v.ic.len() != v.n_public + 1 {
        return Err(FormatError::new(format!(
            "the key has {} IC points for {} public values",
            v.ic.len(),
            v.n_public
        )));
    }
    Ok(VerifyingKey {
        alpha_g1: read_g1(&v.vk_alpha_1, "vk_alpha_1")?,
        beta_g2: read_g2(&v.vk_beta_2, "vk_beta_2")?,
        gamma_g2: read_g2(&v.vk_gamma_2, "vk_gamma_2")?,
        delta_g2: read_g2(&v.vk_delta_2, "vk_delta_2")?,
        gamma_abc_g1: v
            .ic
            .iter()
            .enumerate()
            .map(|(i, p)| read_g1(p, &format!("IC[{i}]")))
            .collect::<Result<_, _>>()?,
    })
}

/// JSON as snarkjs writes it (`JSON.stringify(x, null, 1)`).
pub fn to_string<T: Serialize>(x: &T) -> String {
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b" ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    x.serialize(&mut ser).expect("JSON of plain data");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}
