//! EdDSA-Poseidon against vectors produced by circomlibjs 0.1.7 (`signPoseidon` /
//! `verifyPoseidon`), read from `shared/vectors/eddsa_poseidon.json` beside the repository.
//!
//! For every vector the public key derived from the private key must be the one recorded;
//! a valid vector must be reproduced exactly by [`PrivateKey::sign`] and accepted by
//! [`verify`]; an invalid one must be rejected. Some vectors also go through the R1CS
//! verifier.
#![allow(clippy::unwrap_used)]

use ark_r1cs_std::{fields::fp::FpVar, prelude::*};
use ark_relations::gr1cs::ConstraintSystem;
use pulse_circuits::Fr;
use pulse_circuits::babyjubjub::{Point, fr_from_decimal, gadget::PointVar};
use pulse_circuits::eddsa::{self, PrivateKey, PublicKey, Signature, gadget::enforce_verify};
use serde::Deserialize;

const VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/vectors/eddsa_poseidon.json"
);

#[derive(Deserialize)]
struct File {
    vectors: Vec<Vector>,
}

#[derive(Deserialize)]
struct Vector {
    private_key_hex: String,
    public_key: [String; 2],
    message: String,
    signature: serde_json::Value,
    valid: bool,
}

fn load() -> Vec<Vector> {
    let text =
        std::fs::read_to_string(VECTORS).unwrap_or_else(|e| panic!("cannot read {VECTORS}: {e}"));
    let file: File = serde_json::from_str(&text).unwrap();
    assert!(!file.vectors.is_empty(), "no vectors in {VECTORS}");
    file.vectors
}

fn point(xy: &[String; 2]) -> Point {
    Point::from_decimal(&xy[0], &xy[1]).unwrap()
}

/// Whether the R1CS verifier (enabled) is satisfied by this instance.
fn gadget_accepts(pk: Point, msg: Fr, r8: Point, s: Fr) -> bool {
    let cs = ConstraintSystem::<Fr>::new_ref();
    let enabled = Boolean::new_witness(cs.clone(), || Ok(true)).unwrap();
    let pk = PointVar::new_witness(cs.clone(), || Ok(pk)).unwrap();
    let r8 = PointVar::new_witness(cs.clone(), || Ok(r8)).unwrap();
    let msg = FpVar::new_witness(cs.clone(), || Ok(msg)).unwrap();
    let s = FpVar::new_witness(cs.clone(), || Ok(s)).unwrap();
    enforce_verify(&enabled, &pk, &msg, &r8, &s).unwrap();
    cs.is_satisfied().unwrap()
}

#[test]
fn circomlibjs_vectors() {
    let vectors = load();
    let (mut valid, mut invalid, mut through_gadget) = (0, 0, 0);
    for (i, v) in vectors.iter().enumerate() {
        let key = PrivateKey::from_hex(&v.private_key_hex).unwrap();
        let pk = key.public_key();
        assert_eq!(
            pk,
            PublicKey(point(&v.public_key)),
            "vector {i}: public key"
        );
        let msg = fr_from_decimal(&v.message).unwrap();
        let parsed: Result<Signature, _> = serde_json::from_value(v.signature.clone());
        if v.valid {
            valid += 1;
            let sig = parsed.unwrap();
            assert_eq!(
                key.sign(msg),
                sig,
                "vector {i}: our signature differs from circomlibjs"
            );
            eddsa::verify(&pk, msg, &sig).unwrap();
            // The round trip through JSON keeps the recorded shape.
            assert_eq!(
                serde_json::to_value(&sig).unwrap(),
                v.signature,
                "vector {i}"
            );
            if through_gadget < 3 {
                through_gadget += 1;
                let s = eddsa::s_as_fr(&sig).unwrap();
                assert!(
                    gadget_accepts(pk.0, msg, sig.r8, s),
                    "vector {i}: gadget rejects"
                );
                assert!(
                    !gadget_accepts(pk.0, msg + Fr::from(1u8), sig.r8, s),
                    "vector {i}: gadget accepts another message"
                );
            }
        } else {
            invalid += 1;
            // Unparseable counts as rejected; a parsed one must fail verification.
            if let Ok(sig) = parsed {
                let err = eddsa::verify(&pk, msg, &sig).unwrap_err();
                // Every invalid vector is refused by the circuit as well, where it can be
                // expressed (S must fit in the field).
                if let Ok(s) = eddsa::s_as_fr(&sig) {
                    assert!(
                        !gadget_accepts(pk.0, msg, sig.r8, s),
                        "vector {i}: gadget accepts what verify rejects ({err})"
                    );
                }
            }
        }
    }
    assert!(
        valid >= 3 && invalid >= 1,
        "{valid} valid and {invalid} invalid vectors"
    );
    assert_eq!(through_gadget, 3);
}

/// A valid vector with its signature altered is rejected natively, with the typed error.
#[test]
fn altered_vectors_are_rejected() {
    let vectors = load();
    let v = vectors.iter().find(|v| v.valid).unwrap();
    let pk = PublicKey(point(&v.public_key));
    let msg = fr_from_decimal(&v.message).unwrap();
    let sig: Signature = serde_json::from_value(v.signature.clone()).unwrap();
    let mut s_plus_l = sig.clone();
    s_plus_l.s += pulse_circuits::babyjubjub::subgroup_order();
    assert_eq!(
        eddsa::verify(&pk, msg, &s_plus_l),
        Err(eddsa::EddsaError::NonCanonicalS)
    );
    let mut off = sig.clone();
    off.r8.y += Fr::from(1u8);
    assert!(matches!(
        eddsa::verify(&pk, msg, &off),
        Err(eddsa::EddsaError::NotOnCurve { .. })
    ));
    assert_eq!(
        eddsa::verify(&pk, msg + Fr::from(1u8), &sig),
        Err(eddsa::EddsaError::BadSignature)
    );
}
