//! End-to-end checks of the key, proof and Solidity verifier artifacts through the public API.
//!
//! `emit_evm_fixture` (ignored) writes the toy verifier's calldata cases for a manual run of
//! the generated contract on an EVM: `PULSE_EVM_FIXTURE=/tmp/fixture.json cargo test -p
//! pulse-circuits --test solidity_verifier -- --ignored`.

use ark_bn254::{Fq, Fr};
use ark_ff::PrimeField;
use num_bigint::BigUint;
use pulse_circuits::artifacts::{
    self, KeyArtifacts, ProofArtifact, VerifierArtifacts, prove_reference,
    toy::{self, ToyCircuit},
};
use pulse_circuits::solidity::{
    TOY_CONTRACT_NAME, TOY_SEED, encode_verify_proof_args, generate_verifier, proof_to_calldata,
    public_inputs_to_calldata, verify_proof_signature,
};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde_json::json;

#[test]
fn solidity_keys_proof_and_verifier_agree_through_disk() {
    let keys = toy::keys(21).expect("setup");
    let dir = tempfile::tempdir().expect("tempdir");
    keys.write(dir.path()).expect("write");

    let loaded = KeyArtifacts::load(dir.path()).expect("load");
    let mut rng = ChaCha20Rng::seed_from_u64(22);
    let proof = prove_reference(
        &loaded,
        ToyCircuit::new(Fr::from(3u64), Fr::from(4u64)),
        &mut rng,
    )
    .expect("prove");
    let json = proof.to_json();
    let parsed = ProofArtifact::from_json(&json).expect("parse");
    let verifier = VerifierArtifacts::load(dir.path()).expect("load verifier");
    verifier.verify(&parsed).expect("verifies");

    // The contract generated from the loaded key names the manifest's vk hash.
    let sol = generate_verifier(&verifier.vk, "PulseVerifier").expect("generate");
    assert!(sol.contains(&format!(
        "bytes32 public constant VK_HASH = 0x{};",
        verifier.manifest.vk_hash
    )));
    assert!(sol.contains("uint256 public constant NUM_PUBLIC_INPUTS = 2;"));
}

/// One call of the toy verifier: arguments as decimal strings, and the expected outcome
/// (`true`, `false`, or the name of the custom error it reverts with).
fn case(
    name: &str,
    proof: &ProofArtifact,
    inputs: &[String],
    expect: serde_json::Value,
) -> serde_json::Value {
    let cd = proof_to_calldata(&proof.proof);
    json!({ "name": name, "a": cd.a, "b": cd.b, "c": cd.c, "input": inputs, "expect": expect })
}

#[test]
#[ignore = "writes a fixture for a manual EVM run; set PULSE_EVM_FIXTURE"]
fn emit_evm_fixture() {
    let Some(path) = std::env::var_os("PULSE_EVM_FIXTURE") else {
        return;
    };
    let keys = toy::keys(TOY_SEED).expect("setup");
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let (x, y) = (Fr::from(6u64), Fr::from(7u64));
    let proof = prove_reference(&keys, ToyCircuit::new(x, y), &mut rng).expect("prove");
    let good = public_inputs_to_calldata(&proof.public_inputs);
    assert_eq!(good, ["42", "13"]);

    let r = BigUint::from(Fr::MODULUS);
    let q = BigUint::from(Fq::MODULUS);
    let mut cases = vec![
        case("valid", &proof, &good, json!(true)),
        case(
            "wrong input",
            &proof,
            &["43".into(), "13".into()],
            json!(false),
        ),
        case(
            "swapped inputs",
            &proof,
            &["13".into(), "42".into()],
            json!(false),
        ),
        case(
            "input equal to r",
            &proof,
            &[r.to_string(), "13".into()],
            json!("PublicInputNotInField"),
        ),
        case(
            "input 42 + r",
            &proof,
            &[(&r + 42u32).to_string(), "13".into()],
            json!("PublicInputNotInField"),
        ),
    ];
    // A second valid proof of the same statement (fresh randomness).
    let proof2 = prove_reference(&keys, ToyCircuit::new(x, y), &mut rng).expect("prove");
    cases.push(case("valid, rerandomized", &proof2, &good, json!(true)));
    // Another statement.
    let proof3 = prove_reference(
        &keys,
        ToyCircuit::new(Fr::from(1u64), -Fr::from(1u64)),
        &mut rng,
    )
    .expect("prove");
    cases.push(case(
        "valid, x = 1, y = r - 1",
        &proof3,
        &public_inputs_to_calldata(&proof3.public_inputs),
        json!(true),
    ));
    // A proof from another setup of the same circuit.
    let other = toy::keys(TOY_SEED + 1).expect("setup");
    let foreign = prove_reference(&other, ToyCircuit::new(x, y), &mut rng).expect("prove");
    cases.push(case(
        "proof from another setup",
        &foreign,
        &good,
        json!(false),
    ));
    // B with c0 and c1 in the wrong order.
    let mut swapped_b = case(
        "B coefficients swapped (c0 first)",
        &proof,
        &good,
        json!(false),
    );
    for row in 0..2 {
        let w = swapped_b["b"][row].clone();
        swapped_b["b"][row] = json!([w[1], w[0]]);
    }
    cases.push(swapped_b);
    // A coordinate not below q.
    let mut big_a = case("A.x + q", &proof, &good, json!(false));
    let ax =
        BigUint::parse_bytes(proof_to_calldata(&proof.proof).a[0].as_bytes(), 10).expect("dec");
    big_a["a"][0] = json!((ax + &q).to_string());
    cases.push(big_a);
    // C replaced by A.
    let mut c_is_a = case("C replaced by A", &proof, &good, json!(false));
    c_is_a["c"] = c_is_a["a"].clone();
    cases.push(c_is_a);

    let abi = encode_verify_proof_args(&proof.proof, &proof.public_inputs);
    let fixture = json!({
        "contract": TOY_CONTRACT_NAME,
        "signature": verify_proof_signature(proof.public_inputs.len()),
        "vk_hash": artifacts::to_hex(&artifacts::vk_hash(keys.vk())),
        "valid_abi_args": artifacts::to_hex(&abi),
        "cases": cases,
    });
    std::fs::write(path, serde_json::to_string_pretty(&fixture).expect("json")).expect("write");
}
