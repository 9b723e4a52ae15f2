//! The Solidity verifier generated from a Groth16 verifying key, and the calldata that goes
//! with it.
//!
//! [`generate_verifier`] renders `templates/Groth16Verifier.sol.tmpl` (next to this crate's
//! sources) with a verifying key's constants. The contract checks Groth16 proofs (J. Groth,
//! "On the Size of Pairing-based Non-interactive Arguments", EUROCRYPT 2016) with the BN254
//! ("alt_bn128") precompiles of EIP-196 (ecAdd at `0x06`, ecMul at `0x07`) and EIP-197
//! (pairing at `0x08`), through the equation
//!
//! ```text
//! e(-A, B) * e(alpha, beta) * e(vk_x, gamma) * e(C, delta) == 1,
//! vk_x = IC_0 + x_1 * IC_1 + ... + x_n * IC_n
//! ```
//!
//! which is `ark-groth16`'s check `e(A, B) = e(alpha, beta) * e(vk_x, gamma) * e(C, delta)`
//! with every pairing moved to one side.
//!
//! # Encoding
//!
//! The contract and [`proof_to_calldata`] agree on one encoding of points as `uint256`s:
//!
//! - G1 point: `[x, y]`.
//! - G2 point: `[[x_im, x_re], [y_im, y_re]]`: for `x = x_re + x_im * i` in `Fq2`, the
//!   coefficient of `i` (`c1` in arkworks) comes **first**, which is the order the EIP-197
//!   precompile reads. Passing `[c0, c1]` instead makes every proof fail.
//! - The point at infinity: `[0, 0]` (resp. all four coordinates 0).
//!
//! # The contract's interface
//!
//! - `verifyProof(uint256[2] a, uint256[2][2] b, uint256[2] c, uint256[N] input) returns (bool)`
//!   (`input` is left out when the key takes no public input, since Solidity has no
//!   zero-length arrays): `false` for an invalid proof, a revert with
//!   `PublicInputNotInField(index, value)` for an input not below the scalar field modulus
//!   `r` (a caller's bug rather than a bad proof).
//! - `verifyingKey()` returns the key in the same encoding, for any contract to read;
//!   the key is also held in `internal constant`s (`ALPHA_X`, `BETA_X_IM`, ..., `IC0_X`, ...)
//!   and checked by `_verifyProof(..)` (proofs in memory), for a contract that inherits the
//!   verifier, such as a rollup contract batching several proofs.
//! - `NUM_PUBLIC_INPUTS` and `VK_HASH` (the [`crate::artifacts::vk_hash`] of the key, as in
//!   key manifests and proof files) are public constants.
//!
//! # Drift check
//!
//! `templates/testdata/ToyVerifier.sol` is the verifier of the deterministic toy key
//! ([`crate::artifacts::toy::keys`] with seed [`TOY_SEED`]); a unit test regenerates it and
//! fails on any difference, so a change to the template or the generator shows up in review as
//! a change to that file. To refresh it after an intended change, run
//!
//! ```text
//! PULSE_BLESS=1 cargo test -p pulse-circuits solidity
//! ```
//!
//! and commit the rewritten file.

use std::fmt;

use ark_bn254::{Bn254, Fq, Fq2, Fr, G1Affine, G2Affine};
use ark_ec::AffineRepr;
use ark_ff::{BigInteger, PrimeField};
use ark_groth16::{Proof, VerifyingKey};
use num_bigint::BigUint;
use serde::Serialize;

use crate::artifacts::{self, CREATED_BY};

/// The template, `templates/Groth16Verifier.sol.tmpl`.
pub const TEMPLATE: &str = include_str!("../templates/Groth16Verifier.sol.tmpl");

/// The seed of the toy key whose verifier is checked in as
/// `templates/testdata/ToyVerifier.sol`.
pub const TOY_SEED: u64 = 2016;

/// The contract name of the checked-in toy verifier.
pub const TOY_CONTRACT_NAME: &str = "ToyVerifier";

/// Why a verifier could not be generated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SolidityError {
    /// The contract name is not a valid name for the generated contract.
    #[error(
        "invalid contract name {0:?}: use an ASCII letter A-Z followed by letters, digits or \
         underscores (e.g. PulseVerifier)"
    )]
    ContractName(String),
    /// The verifying key has no `IC_0` point, so it is not a Groth16 verifying key.
    #[error("the verifying key has no IC points (gamma_abc_g1 is empty)")]
    EmptyVerifyingKey,
    /// The template refers to a placeholder the generator does not fill, or is malformed.
    #[error("template error: {0}")]
    Template(String),
}

/// Renders the Solidity verifier for `vk` as contract `contract_name`.
///
/// The name must start with an ASCII capital letter and continue with ASCII letters, digits
/// or underscores, which also keeps it clear of Solidity's (lowercase) keywords.
pub fn generate_verifier(
    vk: &VerifyingKey<Bn254>,
    contract_name: &str,
) -> Result<String, SolidityError> {
    validate_contract_name(contract_name)?;
    if vk.gamma_abc_g1.is_empty() {
        return Err(SolidityError::EmptyVerifyingKey);
    }
    let n = vk.gamma_abc_g1.len() - 1;

    let [alpha_x, alpha_y] = g1_words(&vk.alpha_g1);
    let [[beta_x_im, beta_x_re], [beta_y_im, beta_y_re]] = g2_words(&vk.beta_g2);
    let [[gamma_x_im, gamma_x_re], [gamma_y_im, gamma_y_re]] = g2_words(&vk.gamma_g2);
    let [[delta_x_im, delta_x_re], [delta_y_im, delta_y_re]] = g2_words(&vk.delta_g2);

    let mut ic_constants = String::new();
    let mut ic_array = String::new();
    for (i, p) in vk.gamma_abc_g1.iter().enumerate() {
        let [x, y] = g1_words(p);
        if i > 0 {
            ic_constants.push('\n');
        }
        ic_constants.push_str(&format!(
            "    uint256 internal constant IC{i}_X = {x};\n    uint256 internal constant IC{i}_Y = {y};\n"
        ));
        ic_array.push_str(&format!("        ic[{i}] = [IC{i}_X, IC{i}_Y];\n"));
    }
    let ic_accumulate: String = (0..n)
        .map(|i| {
            let k = i + 1;
            format!("        _mulAdd(vkX, IC{k}_X, IC{k}_Y, input[{i}]);\n")
        })
        .collect();

    let (input_doc, input_calldata, input_arg, input_memory, input_check) = if n == 0 {
        Default::default()
    } else {
        (
            "\n    /// @param input The public inputs, each below the scalar field modulus r."
                .to_string(),
            format!(",\n        uint256[{n}] calldata input"),
            ", input".to_string(),
            format!(",\n        uint256[{n}] memory input"),
            concat!(
                "        for (uint256 i = 0; i < NUM_PUBLIC_INPUTS; ++i) {\n",
                "            if (input[i] >= SCALAR_FIELD) {\n",
                "                revert PublicInputNotInField(i, input[i]);\n",
                "            }\n",
                "        }\n",
                "\n",
            )
            .to_string(),
        )
    };

    let vk_hash = artifacts::to_hex(&artifacts::vk_hash(vk));
    let values: Vec<(&str, String)> = vec![
        ("CREATED_BY", CREATED_BY.to_string()),
        ("CONTRACT_NAME", contract_name.to_string()),
        ("NUM_INPUTS", n.to_string()),
        ("NUM_IC", (n + 1).to_string()),
        ("VK_HASH", vk_hash),
        ("ALPHA_X", alpha_x),
        ("ALPHA_Y", alpha_y),
        ("BETA_X_IM", beta_x_im),
        ("BETA_X_RE", beta_x_re),
        ("BETA_Y_IM", beta_y_im),
        ("BETA_Y_RE", beta_y_re),
        ("GAMMA_X_IM", gamma_x_im),
        ("GAMMA_X_RE", gamma_x_re),
        ("GAMMA_Y_IM", gamma_y_im),
        ("GAMMA_Y_RE", gamma_y_re),
        ("DELTA_X_IM", delta_x_im),
        ("DELTA_X_RE", delta_x_re),
        ("DELTA_Y_IM", delta_y_im),
        ("DELTA_Y_RE", delta_y_re),
        ("IC_CONSTANTS", ic_constants),
        ("IC_ARRAY", ic_array),
        ("IC_ACCUMULATE", ic_accumulate),
        ("INPUT_DOC", input_doc),
        ("INPUT_PARAM_CALLDATA", input_calldata),
        ("INPUT_ARG", input_arg),
        ("INPUT_PARAM_MEMORY", input_memory),
        ("INPUT_CHECK", input_check),
    ];
    render(TEMPLATE, &values)
}

/// The Solidity signature of `verifyProof` for `n` public inputs, e.g.
/// `verifyProof(uint256[2],uint256[2][2],uint256[2],uint256[1])`; its keccak-256 gives the
/// function selector.
pub fn verify_proof_signature(n: usize) -> String {
    if n == 0 {
        "verifyProof(uint256[2],uint256[2][2],uint256[2])".to_string()
    } else {
        format!("verifyProof(uint256[2],uint256[2][2],uint256[2],uint256[{n}])")
    }
}

/// Replaces every `{{NAME}}` in `template` with its value; an unknown or unterminated
/// placeholder, or a value never used, is an error.
fn render(template: &str, values: &[(&str, String)]) -> Result<String, SolidityError> {
    let mut out = String::with_capacity(template.len() * 2);
    let mut used = vec![false; values.len()];
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| SolidityError::Template("unterminated `{{`".to_string()))?;
        let key = &after[..end];
        let index = values
            .iter()
            .position(|(k, _)| *k == key)
            .ok_or_else(|| SolidityError::Template(format!("unknown placeholder {{{{{key}}}}}")))?;
        used[index] = true;
        out.push_str(&values[index].1);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    if let Some(i) = used.iter().position(|u| !u) {
        return Err(SolidityError::Template(format!(
            "placeholder {{{{{}}}}} does not occur in the template",
            values[i].0
        )));
    }
    Ok(out)
}

fn validate_contract_name(name: &str) -> Result<(), SolidityError> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_uppercase())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(SolidityError::ContractName(name.to_string()))
    }
}

fn fq_decimal(x: &Fq) -> String {
    BigUint::from(x.into_bigint()).to_string()
}

fn fq_hex(x: &Fq) -> String {
    format!("0x{:064x}", BigUint::from(x.into_bigint()))
}

/// The words of a G1 point in the verifier's encoding: `[x, y]`, `[0, 0]` for infinity.
pub fn g1_coords(p: &G1Affine) -> [Fq; 2] {
    match p.xy() {
        Some((x, y)) => [x, y],
        None => [Fq::from(0u64); 2],
    }
}

/// The words of a G2 point in the verifier's encoding: `[[x.c1, x.c0], [y.c1, y.c0]]`, all
/// zero for infinity.
pub fn g2_coords(p: &G2Affine) -> [[Fq; 2]; 2] {
    let (x, y) = p.xy().unwrap_or((Fq2::from(0u64), Fq2::from(0u64)));
    [[x.c1, x.c0], [y.c1, y.c0]]
}

fn g1_words(p: &G1Affine) -> [String; 2] {
    g1_coords(p).map(|w| fq_decimal(&w))
}

fn g2_words(p: &G2Affine) -> [[String; 2]; 2] {
    g2_coords(p).map(|row| row.map(|w| fq_decimal(&w)))
}

/// A proof as the arguments `a`, `b`, `c` of the contract's `verifyProof`, in its encoding
/// (see the module docs: `b` is `[[x_im, x_re], [y_im, y_re]]`). Serializes to JSON as
/// `{"a": [..], "b": [[..], [..]], "c": [..]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProofCalldata {
    /// A, a G1 point.
    pub a: [String; 2],
    /// B, a G2 point.
    pub b: [[String; 2]; 2],
    /// C, a G1 point.
    pub c: [String; 2],
}

impl fmt::Display for ProofCalldata {
    /// The arguments as a Solidity/`cast` literal: `[a0,a1],[[b00,b01],[b10,b11]],[c0,c1]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a0, a1] = &self.a;
        let [[b00, b01], [b10, b11]] = &self.b;
        let [c0, c1] = &self.c;
        write!(f, "[{a0},{a1}],[[{b00},{b01}],[{b10},{b11}]],[{c0},{c1}]")
    }
}

/// `proof` as `verifyProof`'s `a`, `b`, `c`, each number in decimal.
pub fn proof_to_calldata(proof: &Proof<Bn254>) -> ProofCalldata {
    ProofCalldata {
        a: g1_coords(&proof.a).map(|w| fq_decimal(&w)),
        b: g2_coords(&proof.b).map(|row| row.map(|w| fq_decimal(&w))),
        c: g1_coords(&proof.c).map(|w| fq_decimal(&w)),
    }
}

/// `proof` as `verifyProof`'s `a`, `b`, `c`, each number as `0x` and 64 hex digits.
pub fn proof_to_calldata_hex(proof: &Proof<Bn254>) -> ProofCalldata {
    ProofCalldata {
        a: g1_coords(&proof.a).map(|w| fq_hex(&w)),
        b: g2_coords(&proof.b).map(|row| row.map(|w| fq_hex(&w))),
        c: g1_coords(&proof.c).map(|w| fq_hex(&w)),
    }
}

/// Public inputs as `verifyProof`'s `input`, in decimal.
pub fn public_inputs_to_calldata(inputs: &[Fr]) -> Vec<String> {
    inputs.iter().map(artifacts::fr_to_decimal).collect()
}

/// The ABI encoding of `verifyProof`'s arguments for `proof` and `inputs`, without the
/// 4-byte selector (keccak-256 of [`verify_proof_signature`]): all arguments are static
/// arrays, so this is `8 + inputs.len()` big-endian 32-byte words in the order
/// `a[0], a[1], b[0][0], b[0][1], b[1][0], b[1][1], c[0], c[1], input[0], ...`.
pub fn encode_verify_proof_args(proof: &Proof<Bn254>, inputs: &[Fr]) -> Vec<u8> {
    let [a0, a1] = g1_coords(&proof.a);
    let [[b00, b01], [b10, b11]] = g2_coords(&proof.b);
    let [c0, c1] = g1_coords(&proof.c);
    let mut out = Vec::with_capacity(32 * (8 + inputs.len()));
    for w in [a0, a1, b00, b01, b10, b11, c0, c1] {
        out.extend_from_slice(&word(w));
    }
    for x in inputs {
        out.extend_from_slice(&word(*x));
    }
    out
}

/// A field element as a big-endian 32-byte word.
fn word<F: PrimeField>(x: F) -> [u8; 32] {
    let be = x.into_bigint().to_bytes_be();
    let mut out = [0u8; 32];
    // Both BN254 moduli are below 2^254: only leading zero bytes can exceed 32.
    let be = &be[be.len().saturating_sub(32)..];
    out[32 - be.len()..].copy_from_slice(be);
    out
}

/// The toy verifier as checked in at `templates/testdata/ToyVerifier.sol`: the verifier of
/// [`crate::artifacts::toy::keys`]`(`[`TOY_SEED`]`)`.
pub fn toy_verifier() -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
    let keys = artifacts::toy::keys(TOY_SEED)?;
    Ok(generate_verifier(keys.vk(), TOY_CONTRACT_NAME)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifacts::toy::{self, ToyCircuit};
    use ark_ec::CurveGroup;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;
    use std::path::PathBuf;

    const EXPECTED_TOY: &str = include_str!("../templates/testdata/ToyVerifier.sol");

    #[test]
    fn solidity_toy_verifier_has_not_drifted() {
        let generated = toy_verifier().expect("generate");
        if std::env::var_os("PULSE_BLESS").is_some() {
            let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("templates/testdata/ToyVerifier.sol");
            std::fs::write(&path, &generated).expect("write expected file");
            return;
        }
        if generated != EXPECTED_TOY {
            let line = generated
                .lines()
                .zip(EXPECTED_TOY.lines())
                .position(|(a, b)| a != b)
                .map_or_else(|| "the end".to_string(), |i| format!("line {}", i + 1));
            panic!(
                "the generated toy verifier differs from templates/testdata/ToyVerifier.sol \
                 (first at {line}); if the change is intended, refresh it with \
                 `PULSE_BLESS=1 cargo test -p pulse-circuits solidity` and commit it"
            );
        }
    }

    #[test]
    fn solidity_renders_every_placeholder() {
        let keys = toy::keys(1).expect("setup");
        let sol = generate_verifier(keys.vk(), "PulseVerifier").expect("generate");
        assert!(!sol.contains("{{") && !sol.contains("}}"));
        assert!(sol.contains("contract PulseVerifier {"));
        assert!(sol.contains("uint256 public constant NUM_PUBLIC_INPUTS = 2;"));
        assert!(sol.contains("uint256[2] calldata input"));
        assert!(sol.contains("_mulAdd(vkX, IC2_X, IC2_Y, input[1]);"));
        assert!(!sol.contains("IC3_X"));
        let hash = artifacts::to_hex(&artifacts::vk_hash(keys.vk()));
        assert!(sol.contains(&format!("VK_HASH = 0x{hash};")));
        // Every constant is a decimal below q.
        let q = BigUint::from(Fq::MODULUS);
        for line in sol.lines().filter(|l| l.contains("internal constant")) {
            let value = line
                .split('=')
                .nth(1)
                .map(|v| v.trim().trim_end_matches(';'))
                .unwrap_or_default();
            if value.is_empty() {
                continue; // the moduli are on the next line
            }
            let v = BigUint::parse_bytes(value.as_bytes(), 10).expect("decimal");
            assert!(v < q, "{line}");
        }
    }

    #[test]
    fn solidity_g2_coordinates_are_imaginary_first() {
        let keys = toy::keys(1).expect("setup");
        let beta = keys.vk().beta_g2;
        let sol = generate_verifier(keys.vk(), "V").expect("generate");
        let expect = |name: &str, x: &Fq| {
            let line = format!("uint256 internal constant {name} = {};", fq_decimal(x));
            assert!(sol.contains(&line), "missing {line}");
        };
        expect("BETA_X_IM", &beta.x.c1);
        expect("BETA_X_RE", &beta.x.c0);
        expect("BETA_Y_IM", &beta.y.c1);
        expect("BETA_Y_RE", &beta.y.c0);
        expect("ALPHA_X", &keys.vk().alpha_g1.x);
    }

    #[test]
    fn solidity_no_public_inputs() {
        let keys = toy::keys(1).expect("setup");
        let mut vk = keys.vk().clone();
        vk.gamma_abc_g1.truncate(1);
        let sol = generate_verifier(&vk, "NoInputs").expect("generate");
        assert!(!sol.contains("calldata input") && !sol.contains("_mulAdd(vkX"));
        assert!(sol.contains("NUM_PUBLIC_INPUTS = 0;"));
        assert!(sol.contains("uint256[2] calldata c\n    ) external view"));
        vk.gamma_abc_g1.clear();
        assert_eq!(
            generate_verifier(&vk, "Empty"),
            Err(SolidityError::EmptyVerifyingKey)
        );
    }

    #[test]
    fn solidity_rejects_bad_contract_names() {
        let keys = toy::keys(1).expect("setup");
        for bad in [
            "",
            "verifier",
            "1Verifier",
            "My Verifier",
            "Vérifier",
            "A-B",
            "A{{B}}",
        ] {
            assert!(
                matches!(
                    generate_verifier(keys.vk(), bad),
                    Err(SolidityError::ContractName(_))
                ),
                "{bad:?} accepted"
            );
        }
        assert!(generate_verifier(keys.vk(), "Pulse_Verifier2").is_ok());
    }

    #[test]
    fn solidity_render_is_strict() {
        let v = |k: &'static str| (k, "x".to_string());
        assert_eq!(render("a{{K}}b", &[v("K")]), Ok("axb".to_string()));
        assert!(render("a{{K}}b", &[]).is_err());
        assert!(render("a{{K", &[v("K")]).is_err());
        assert!(render("ab", &[v("K")]).is_err());
    }

    /// Checks the calldata the way the contract uses it, natively: the pairing product over
    /// the decoded words is one exactly for valid proofs.
    #[test]
    fn solidity_calldata_satisfies_contract_equation() {
        use ark_bn254::{Fq2, G1Projective};
        use ark_ec::pairing::Pairing;
        use ark_ff::One;

        let keys = toy::keys(3).expect("setup");
        let (x, y) = (Fr::from(6u64), Fr::from(7u64));
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        let proof =
            artifacts::prove_reference(&keys, ToyCircuit::new(x, y), &mut rng).expect("prove");
        let cd = proof_to_calldata(&proof.proof);
        let inputs = public_inputs_to_calldata(&proof.public_inputs);
        assert_eq!(inputs, ["42", "13"]);

        let fq = |s: &String| Fq::from(BigUint::parse_bytes(s.as_bytes(), 10).expect("dec"));
        let g1 = |w: &[String; 2]| G1Affine::new(fq(&w[0]), fq(&w[1]));
        // The contract hands [[x_im, x_re], [y_im, y_re]] to the precompile, which reads
        // x = x_re + x_im * i.
        let g2 = |w: &[[String; 2]; 2]| {
            G2Affine::new(
                Fq2::new(fq(&w[0][1]), fq(&w[0][0])),
                Fq2::new(fq(&w[1][1]), fq(&w[1][0])),
            )
        };
        let check = |inputs: &[Fr]| {
            let vk = keys.vk();
            let mut vk_x: G1Projective = vk.gamma_abc_g1[0].into();
            for (xi, ic) in inputs.iter().zip(&vk.gamma_abc_g1[1..]) {
                vk_x += *ic * xi;
            }
            let a = g1(&cd.a);
            let product = Bn254::multi_pairing(
                [-a, vk.alpha_g1, vk_x.into_affine(), g1(&cd.c)],
                [g2(&cd.b), vk.beta_g2, vk.gamma_g2, vk.delta_g2],
            );
            product.0.is_one()
        };
        assert!(check(&proof.public_inputs));
        assert!(!check(&[Fr::from(43u64), Fr::from(13u64)]));
        assert!(!check(&[Fr::from(13u64), Fr::from(42u64)]));

        // Hex form and ABI words carry the same numbers.
        let hex = proof_to_calldata_hex(&proof.proof);
        let dec_of_hex = |h: &String| {
            BigUint::parse_bytes(h.trim_start_matches("0x").as_bytes(), 16)
                .expect("hex")
                .to_string()
        };
        assert_eq!(hex.a.each_ref().map(dec_of_hex), cd.a);
        assert_eq!(hex.b[0].each_ref().map(dec_of_hex), cd.b[0]);
        let abi = encode_verify_proof_args(&proof.proof, &proof.public_inputs);
        assert_eq!(abi.len(), 32 * 10);
        let words: Vec<String> = abi
            .chunks(32)
            .map(|w| BigUint::from_bytes_be(w).to_string())
            .collect();
        let expected: Vec<String> =
            cd.a.iter()
                .chain(cd.b.iter().flatten())
                .chain(cd.c.iter())
                .chain(inputs.iter())
                .cloned()
                .collect();
        assert_eq!(words, expected);
        assert_eq!(
            verify_proof_signature(2),
            "verifyProof(uint256[2],uint256[2][2],uint256[2],uint256[2])"
        );
        assert!(cd.to_string().starts_with('['));
        assert!(
            serde_json::to_string(&cd)
                .expect("json")
                .starts_with("{\"a\":[")
        );
    }
}
