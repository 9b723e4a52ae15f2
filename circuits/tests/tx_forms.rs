//! Transaction forms: JSON and binary round trips, the hash (bound to the deployment), and
//! clear errors for bad input, repeated keys included.
#![allow(clippy::unwrap_used)]

use std::str::FromStr;

use ark_bn254::Fr;
use cid::Cid;
use pulse_circuits::deployment::DeploymentId;
use pulse_circuits::eddsa::{self, PrivateKey};
use pulse_circuits::tx::{
    MAX_TX_JSON_BYTES, Permissions, Role, Scope, SignedTransaction, Transaction, TxBody, TxError,
};

/// The deployment the transactions are signed for.
fn here() -> DeploymentId {
    DeploymentId(Fr::from(31337u64))
}

fn key() -> PrivateKey {
    PrivateKey::from_bytes([7u8; 32])
}

fn every_kind() -> Vec<SignedTransaction> {
    let k = key();
    let other = PrivateKey::from_bytes([8u8; 32]);
    let bodies = vec![
        (
            0,
            TxBody::Register {
                public_key: k.public_key(),
                role: Role::Patient,
            },
        ),
        (
            3,
            TxBody::Register {
                public_key: other.public_key(),
                role: Role::Doctor,
            },
        ),
        (
            5,
            TxBody::AddRecord {
                patient: 5,
                cid: Cid::from_str("bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy")
                    .unwrap(),
                metadata_hash: Fr::from(99u64),
                grant: None,
            },
        ),
        (
            6,
            TxBody::AddRecord {
                patient: 5,
                cid: Cid::from_str("QmWATWQ7fVPP2EFGu71UkfnqhYXDYH566qy47CnJDgvs8u").unwrap(),
                metadata_hash: Fr::from(1u64),
                grant: Some(4),
            },
        ),
        (
            5,
            TxBody::Grant {
                grantee: 6,
                scope: Scope::Record(2),
                permissions: Permissions {
                    read: true,
                    write: false,
                },
                expires_at: 1_900_000_000,
            },
        ),
        (5, TxBody::Revoke { grant: 4 }),
        (
            6,
            TxBody::AccessLog {
                record: 2,
                grant: 4,
                purpose: Fr::from(3u64),
            },
        ),
    ];
    bodies
        .into_iter()
        .enumerate()
        .map(|(i, (signer, body))| {
            Transaction {
                signer,
                nonce: i as u64,
                body,
            }
            .sign(&k, here())
            .unwrap()
        })
        .collect()
}

#[test]
fn json_and_binary_round_trip_for_every_kind() {
    for stx in every_kind() {
        let json = stx.to_json();
        let back = SignedTransaction::from_json(&json).unwrap_or_else(|e| panic!("{json}: {e}"));
        assert_eq!(back, stx, "{json}");
        let bytes = stx.encode();
        assert_eq!(SignedTransaction::decode(&bytes).unwrap(), stx);
        assert_eq!(back.hash(here()).unwrap(), stx.hash(here()).unwrap());
        // Any truncation is refused.
        for cut in [0, 1, bytes.len() / 2, bytes.len() - 1] {
            assert!(
                SignedTransaction::decode(&bytes[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(SignedTransaction::decode(&longer).is_err());
    }
}

#[test]
fn the_hash_binds_every_field() {
    let txs = every_kind();
    let mut hashes: Vec<_> = txs.iter().map(|t| t.hash(here()).unwrap()).collect();
    hashes.sort();
    hashes.dedup();
    assert_eq!(hashes.len(), txs.len());
    let mut t = txs[4].clone();
    if let TxBody::Grant { expires_at, .. } = &mut t.tx.body {
        *expires_at += 1;
    }
    assert_ne!(t.hash(here()).unwrap(), txs[4].hash(here()).unwrap());
}

#[test]
fn the_message_and_hash_bind_the_deployment() {
    let elsewhere = DeploymentId(Fr::from(1u64));
    for stx in every_kind() {
        assert_ne!(stx.hash(here()).unwrap(), stx.hash(elsewhere).unwrap());
        let pk = key().public_key();
        let here_msg = stx.tx.message(here()).unwrap();
        assert_eq!(eddsa::verify(&pk, here_msg, &stx.signature), Ok(()));
        let there_msg = stx.tx.message(elsewhere).unwrap();
        assert!(eddsa::verify(&pk, there_msg, &stx.signature).is_err());
    }
}

#[test]
fn the_json_form_is_documented_and_stable() {
    let stx = &every_kind()[4];
    let v: serde_json::Value = serde_json::from_str(&stx.to_json()).unwrap();
    assert_eq!(v["version"], 1);
    assert_eq!(v["type"], "grant");
    assert_eq!(v["scope"]["record"], 2);
    assert_eq!(v["permissions"], serde_json::json!(["read"]));
    assert!(v["signature"]["r8"][0].is_string());
    assert!(v["signature"]["s"].is_string());
}

fn err(text: &str) -> TxError {
    SignedTransaction::from_json(text).expect_err("must be refused")
}

#[test]
fn malformed_json_gives_clear_errors() {
    let good: serde_json::Value = serde_json::from_str(&every_kind()[2].to_json()).unwrap();
    let with = |k: &str, v: serde_json::Value| {
        let mut x = good.clone();
        x[k] = v;
        x.to_string()
    };
    let without = |k: &str| {
        let mut x = good.clone();
        x.as_object_mut().unwrap().remove(k);
        x.to_string()
    };
    let cases: Vec<(String, &str)> = vec![
        ("{not json".into(), "key must be a string"),
        ("[1,2]".into(), "expected a JSON object"),
        (with("version", 2.into()), "version 2 is not supported"),
        (without("version"), "missing field `version`"),
        (without("nonce"), "missing field `nonce`"),
        (with("nonce", "seven".into()), "field `nonce`"),
        (with("signer", (-1).into()), "field `signer`"),
        (
            with("type", "delete_everything".into()),
            "unknown variant `delete_everything`",
        ),
        (with("cid", "not-a-cid".into()), "`cid` is not a valid CID"),
        (
            with("metadata_hash", "12x".into()),
            "is not a decimal number",
        ),
        (
            with(
                "metadata_hash",
                "21888242871839275222246405745257275088548364400416034343698204186575808495617"
                    .into(),
            ),
            "not below the BN254 scalar field modulus",
        ),
        (with("surprise", 1.into()), "unknown field `surprise`"),
        (without("signature"), "missing field `signature`"),
        (
            format!("{{\"pad\":\"{}\"}}", "x".repeat(MAX_TX_JSON_BYTES)),
            "the limit is",
        ),
    ];
    for (text, needle) in cases {
        let e = err(&text);
        let msg = e.to_string();
        assert!(
            msg.contains(needle),
            "for {text:.80}: `{msg}` lacks `{needle}`"
        );
        assert_eq!(e.reason(), "malformed_json", "{msg}");
        assert!(msg.starts_with("malformed transaction JSON"), "{msg}");
    }
}

#[test]
fn repeated_keys_are_refused_at_any_depth() {
    let register = every_kind()[1].to_json();
    assert!(register.contains("\"role\":\"doctor\""), "{register}");
    // Two `role`s: a parser keeping the last one would register a registrar.
    let two_roles = register.replacen(
        "\"role\":\"doctor\"",
        "\"role\":\"doctor\",\"role\":\"registrar\"",
        1,
    );
    let e = err(&two_roles);
    assert_eq!(e.reason(), "malformed_json");
    assert_eq!(
        e.to_string(),
        "malformed transaction JSON: the JSON object at $ has the key \"role\" twice; send \
         each field once; see the JSON form in the `pulse-circuits` tx docs"
    );

    let nested = register.replacen("\"s\":", "\"s\":\"1\",\"s\":", 1);
    let msg = err(&nested).to_string();
    assert!(
        msg.contains("the JSON object at $.signature has the key \"s\" twice"),
        "{msg}"
    );
    let version = register.replacen("\"version\":1", "\"version\":1,\"version\":1", 1);
    assert!(err(&version).to_string().contains("\"version\" twice"));

    // Every valid transaction still parses.
    for stx in every_kind() {
        assert_eq!(SignedTransaction::from_json(&stx.to_json()).unwrap(), stx);
    }
}

#[test]
fn grants_need_a_permission() {
    let stx = &every_kind()[4];
    let mut v: serde_json::Value = serde_json::from_str(&stx.to_json()).unwrap();
    v["permissions"] = serde_json::json!([]);
    let msg = err(&v.to_string()).to_string();
    assert!(msg.contains("at least one of"), "{msg}");
}

#[test]
fn errors_carry_no_key_material() {
    let k = key();
    let dbg = format!("{k:?}");
    assert!(!dbg.contains(&hex::encode([7u8; 32])), "{dbg}");
}
