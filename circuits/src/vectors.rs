//! Checking Pulse against test vectors made by a peer implementation (circomlibjs): Poseidon
//! hashes and EdDSA-Poseidon keys and signatures, in the JSON format of `shared/vectors/`.

use num_bigint::BigUint;
use serde::Deserialize;
use serde_json::Value;

use crate::babyjubjub::Point;
use crate::eddsa::{self, PrivateKey, PublicKey, Signature};
use crate::field::{DecimalError, fr_to_decimal};
use crate::poseidon;

fn fr_from_decimal(s: &str) -> Result<ark_bn254::Fr, String> {
    crate::field::fr_from_decimal(s).map_err(|e: DecimalError| e.to_string())
}

/// The outcome of checking one file.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// What the file holds: `poseidon` or `eddsa`.
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
    /// JSON, but neither vector format.
    #[error(
        "no `vectors` list of Poseidon (`inputs`, `hash`) or EdDSA (`private_key_hex`, \
         `signature`, …) vectors found"
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

/// Check every vector of a file's text, telling the two formats apart by content.
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
    let (kind, check): (&'static str, Check) =
        if first.get("private_key_hex").is_some() || first.get("signature").is_some() {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_vectors_check_and_tampering_is_caught() {
        for v in [make_poseidon_vectors(12, 1), make_eddsa_vectors(9, 2)] {
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
    }
}
