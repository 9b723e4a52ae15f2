//! Checking Pulse against test vectors made by a peer implementation (circomlibjs): Poseidon
//! hashes and EdDSA-Poseidon keys and signatures, in the JSON format of `shared/vectors/`;
//! and making vectors for the peer to check, among them signed transaction messages
//! ([`make_tx_vectors`]: what a circomlibjs wallet computes to sign for a deployment).

use num_bigint::BigUint;
use serde::Deserialize;
use serde_json::Value;

use crate::babyjubjub::Point;
use crate::deployment::DeploymentId;
use crate::eddsa::{self, PrivateKey, PublicKey, Signature};
use crate::field::{DecimalError, fr_to_decimal};
use crate::poseidon;
use crate::tx::{TxFields, TxKind};

fn fr_from_decimal(s: &str) -> Result<ark_bn254::Fr, String> {
    crate::field::fr_from_decimal(s).map_err(|e: DecimalError| e.to_string())
}

/// The outcome of checking one file.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// What the file holds: `poseidon`, `eddsa` or `tx`.
    pub kind: &'static str,
    /// Vectors that passed.
    pub passed: usize,
    /// One line per failed vector.
    pub failures: Vec<String>,
}

impl Report {
    fn check(&mut self, index: usize, result: Result<(), String>) {
        match result {
            Ok(()) => self.passed += 1,
            Err(e) => self.failures.push(format!("vector {index}: {e}")),
        }
    }
}

/// Errors that stop a whole file from being checked.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VectorFileError {
    /// Not JSON.
    #[error("not a JSON file: {0}")]
    Json(String),
    /// JSON, but no known vector format.
    #[error(
        "no `vectors` list of Poseidon (`inputs`, `hash`), EdDSA (`private_key_hex`, \
         `signature`, …) or transaction (`deployment_id`, `message`, …) vectors found"
    )]
    UnknownFormat,
}

#[derive(Deserialize)]
struct PoseidonVector {
    inputs: Vec<String>,
    hash: String,
}

#[derive(Deserialize)]
struct EddsaVector {
    private_key_hex: String,
    public_key: [String; 2],
    message: String,
    signature: RawSignature,
    valid: bool,
}

#[derive(Deserialize)]
struct RawSignature {
    r8: [String; 2],
    s: String,
}

/// A transaction message signed for a deployment ([`make_tx_vectors`]).
#[derive(Deserialize)]
struct TxVector {
    /// The deployment's chain and contract: a peer with keccak (circomlibjs ships ethers)
    /// checks `deployment_id` against them; Pulse's statement crate has no keccak and
    /// takes the id as given.
    #[allow(dead_code)]
    chain_id: u64,
    #[allow(dead_code)]
    contract: String,
    deployment_id: String,
    kind: u64,
    signer: u64,
    nonce: u64,
    payload: [String; 4],
    message: String,
    private_key_hex: String,
    signature: RawSignature,
}

fn point(xy: &[String; 2]) -> Result<Point, String> {
    Ok(Point {
        x: fr_from_decimal(&xy[0])?,
        y: fr_from_decimal(&xy[1])?,
    })
}

fn check_poseidon(v: &Value) -> Result<(), String> {
    let v: PoseidonVector = serde_json::from_value(v.clone()).map_err(|e| e.to_string())?;
    let inputs = v
        .inputs
        .iter()
        .map(|s| fr_from_decimal(s))
        .collect::<Result<Vec<_>, _>>()?;
    let want = fr_from_decimal(&v.hash)?;
    let got = poseidon::hash(&inputs).map_err(|e| e.to_string())?;
    if got != want {
        return Err(format!(
            "poseidon of {} inputs: got {}, expected {}",
            inputs.len(),
            fr_to_decimal(&got),
            v.hash
        ));
    }
    Ok(())
}

fn check_eddsa(v: &Value) -> Result<(), String> {
    let v: EddsaVector = serde_json::from_value(v.clone()).map_err(|e| e.to_string())?;
    let msg = fr_from_decimal(&v.message)?;
    let pk = PublicKey(point(&v.public_key)?);
    let s = BigUint::parse_bytes(v.signature.s.as_bytes(), 10)
        .ok_or_else(|| format!("signature s `{}` is not a decimal number", v.signature.s))?;
    let sig = Signature {
        r8: point(&v.signature.r8)?,
        s,
    };
    let verdict = eddsa::verify(&pk, msg, &sig);
    if !v.valid {
        return match verdict {
            Err(_) => Ok(()),
            Ok(()) => Err("a tampered signature was accepted".into()),
        };
    }
    verdict.map_err(|e| format!("a valid signature was rejected: {e}"))?;
    let key = PrivateKey::from_hex(&v.private_key_hex).map_err(|e| e.to_string())?;
    if key.public_key() != pk {
        return Err("the public key derived from the private key differs".into());
    }
    if key.sign(msg) != sig {
        return Err("signing the message gives a different signature".into());
    }
    Ok(())
}

fn check_tx(v: &Value) -> Result<(), String> {
    let v: TxVector = serde_json::from_value(v.clone()).map_err(|e| e.to_string())?;
    let kind = TxKind::SIGNED
        .into_iter()
        .find(|k| k.code() == v.kind)
        .ok_or_else(|| format!("kind {} is not a signed transaction kind", v.kind))?;
    let payload = v
        .payload
        .iter()
        .map(|s| fr_from_decimal(s))
        .collect::<Result<Vec<_>, _>>()?;
    let fields = TxFields {
        kind,
        signer: v.signer,
        nonce: v.nonce,
        payload: [payload[0], payload[1], payload[2], payload[3]],
    };
    let deployment = DeploymentId(fr_from_decimal(&v.deployment_id)?);
    let msg = fields.message(deployment);
    if fr_to_decimal(&msg) != v.message {
        return Err(format!(
            "message: got {}, expected {}",
            fr_to_decimal(&msg),
            v.message
        ));
    }
    let key = PrivateKey::from_hex(&v.private_key_hex).map_err(|e| e.to_string())?;
    let s = BigUint::parse_bytes(v.signature.s.as_bytes(), 10)
        .ok_or_else(|| format!("signature s `{}` is not a decimal number", v.signature.s))?;
    let sig = Signature {
        r8: point(&v.signature.r8)?,
        s,
    };
    if key.sign(msg) != sig {
        return Err("signing the message gives a different signature".into());
    }
    eddsa::verify(&key.public_key(), msg, &sig).map_err(|e| e.to_string())?;
    Ok(())
}

/// Check every vector of a file's text, telling the formats apart by content.
///
/// # Errors
/// [`VectorFileError`] when the file is not a vector file at all; a bad vector inside a
/// vector file is a failure line in the report instead.
pub fn check_file(text: &str) -> Result<Report, VectorFileError> {
    let doc: Value =
        serde_json::from_str(text).map_err(|e| VectorFileError::Json(e.to_string()))?;
    let vectors = doc
        .get("vectors")
        .and_then(Value::as_array)
        .filter(|v| !v.is_empty())
        .ok_or(VectorFileError::UnknownFormat)?;
    let first = &vectors[0];
    type Check = fn(&Value) -> Result<(), String>;
    let (kind, check): (&'static str, Check) = if first.get("deployment_id").is_some() {
        ("tx", check_tx)
    } else if first.get("private_key_hex").is_some() || first.get("signature").is_some() {
        ("eddsa", check_eddsa)
    } else if first.get("inputs").is_some() {
        ("poseidon", check_poseidon)
    } else {
        return Err(VectorFileError::UnknownFormat);
    };
    let mut report = Report {
        kind,
        ..Report::default()
    };
    for (i, v) in vectors.iter().enumerate() {
        report.check(i, check(v));
    }
    Ok(report)
}

/// Make `count` Poseidon vectors (1 to [`poseidon::MAX_INPUTS`] inputs, cycling) in the
/// format [`check_file`] reads, from a seed: for checking Pulse against a peer
/// implementation in the other direction.
pub fn make_poseidon_vectors(count: usize, seed: u64) -> Value {
    use ark_std::UniformRand;
    use rand::SeedableRng;
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
    let vectors: Vec<Value> = (0..count)
        .map(|i| {
            let n = i % poseidon::MAX_INPUTS + 1;
            let inputs: Vec<ark_bn254::Fr> =
                (0..n).map(|_| ark_bn254::Fr::rand(&mut rng)).collect();
            let hash = poseidon::hash(&inputs).unwrap_or_default();
            serde_json::json!({
                "inputs": inputs.iter().map(fr_to_decimal).collect::<Vec<_>>(),
                "hash": fr_to_decimal(&hash),
            })
        })
        .collect();
    serde_json::json!({ "source": "pulse make-vectors", "vectors": vectors })
}

/// Make `count` EdDSA-Poseidon vectors signed by Pulse, every third one tampered (its
/// message changed) and marked `"valid": false`.
pub fn make_eddsa_vectors(count: usize, seed: u64) -> Value {
    use ark_std::UniformRand;
    use rand::SeedableRng;
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
    let vectors: Vec<Value> = (0..count)
        .map(|i| {
            let key = PrivateKey::random(&mut rng);
            let msg = ark_bn254::Fr::rand(&mut rng);
            let sig = key.sign(msg);
            let valid = i % 3 != 2;
            let shown = if valid {
                msg
            } else {
                msg + ark_bn254::Fr::from(1u64)
            };
            let pk = key.public_key();
            serde_json::json!({
                "private_key_hex": hex::encode(key.to_bytes()),
                "public_key": [fr_to_decimal(&pk.0.x), fr_to_decimal(&pk.0.y)],
                "message": fr_to_decimal(&shown),
                "signature": sig,
                "valid": valid,
            })
        })
        .collect();
    serde_json::json!({ "source": "pulse make-vectors", "vectors": vectors })
}

/// Make `count` signed transaction messages in the form a circomlibjs wallet computes them
/// (see [`crate::tx`]): for a random deployment (chain id and contract address drawn from
/// `seed`, its id computed by `deployment_id`, which is keccak-based and lives outside this
/// crate), a random kind, signer, nonce and payload, the message
/// `poseidon([kind + 8·signer + 2^67·nonce, p1, p2, p3, p4, D])` and its signature by a
/// random key.
pub fn make_tx_vectors(
    count: usize,
    seed: u64,
    deployment_id: impl Fn(u64, [u8; 20]) -> DeploymentId,
) -> Value {
    use ark_std::UniformRand;
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
    let vectors: Vec<Value> = (0..count)
        .map(|i| {
            // Anvil's chain first, then arbitrary ones, up to the largest chain id wallets use.
            let chain_id = if i == 0 {
                31337
            } else {
                rng.gen_range(1..=(1u64 << 53))
            };
            let contract: [u8; 20] = rng.r#gen();
            let d = deployment_id(chain_id, contract);
            let fields = TxFields {
                kind: TxKind::SIGNED[i % TxKind::SIGNED.len()],
                signer: rng.gen_range(0..1u64 << 40),
                nonce: rng.gen_range(0..1u64 << 40),
                payload: [(); 4].map(|_| ark_bn254::Fr::rand(&mut rng)),
            };
            let key = PrivateKey::random(&mut rng);
            let msg = fields.message(d);
            serde_json::json!({
                "chain_id": chain_id,
                "contract": format!("0x{}", hex::encode(contract)),
                "deployment_id": d.to_string(),
                "kind": fields.kind.code(),
                "signer": fields.signer,
                "nonce": fields.nonce,
                "payload": fields.payload.iter().map(fr_to_decimal).collect::<Vec<_>>(),
                "message": fr_to_decimal(&msg),
                "private_key_hex": hex::encode(key.to_bytes()),
                "signature": key.sign(msg),
            })
        })
        .collect();
    serde_json::json!({ "source": "pulse make-vectors", "vectors": vectors })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_vectors_check_and_tampering_is_caught() {
        let toy_id = |chain: u64, contract: [u8; 20]| {
            use ark_ff::PrimeField;
            DeploymentId(
                ark_bn254::Fr::from(chain) + ark_bn254::Fr::from_le_bytes_mod_order(&contract),
            )
        };
        for v in [
            make_poseidon_vectors(12, 1),
            make_eddsa_vectors(9, 2),
            make_tx_vectors(6, 3, toy_id),
        ] {
            let report = check_file(&v.to_string()).expect("vector file");
            assert_eq!(report.failures, Vec::<String>::new());
            assert_eq!(
                report.passed,
                v["vectors"].as_array().map(Vec::len).unwrap_or(0)
            );
        }
        let mut v = make_eddsa_vectors(3, 3);
        v["vectors"][2]["valid"] = true.into();
        let report = check_file(&v.to_string()).expect("vector file");
        assert_eq!(
            report.failures.len(),
            1,
            "a tampered vector claimed valid must fail"
        );

        // A message signed for another deployment is not this deployment's message.
        let mut v = make_tx_vectors(2, 4, toy_id);
        v["vectors"][1]["deployment_id"] = "7".into();
        let report = check_file(&v.to_string()).expect("vector file");
        assert_eq!(report.kind, "tx");
        assert_eq!(report.passed, 1);
        assert!(
            report.failures[0].contains("message"),
            "{:?}",
            report.failures
        );
    }
}
