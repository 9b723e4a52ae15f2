//! A ceremony for Pulse's chunk circuit, end to end: a ptau, contributions and a beacon,
//! verification, keys Pulse's prover proves with, and snarkjs (the peer implementation, as
//! `scripts/deps` installs it) accepting the ceremony's key, Pulse's proofs, and proving
//! with the key itself.
#![allow(missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command;

use ark_bn254::{Bn254, Fr};
use ark_groth16::Groth16;
use pulse_ceremony::ceremony::{Ceremony, Circuit, FINAL_ZKEY, R1CS, chunk_r1cs};
use pulse_ceremony::{json, ptau::Ptau, wtns};
use pulse_circuits::artifacts::{CircuitParams, KeyArtifacts};
use pulse_circuits::circuit::ChunkCircuit;
use pulse_circuits::sample;
use pulse_prover::{CpuBackend, Prover, QapWitness, Query};
use rand::SeedableRng;

fn verifies(
    vk: &ark_groth16::VerifyingKey<Bn254>,
    inputs: &[Fr],
    proof: &ark_groth16::Proof<Bn254>,
) -> bool {
    let pvk = ark_groth16::prepare_verifying_key(vk);
    Groth16::<Bn254>::verify_proof(&pvk, proof, inputs).expect("verify")
}

fn snarkjs() -> PathBuf {
    PathBuf::from(std::env::var("PULSE_SNARKJS").expect(
        "PULSE_SNARKJS is not set: run scripts/deps and source ~/.cache/pulse/tools.env (scripts/test does both)",
    ))
}

/// Runs snarkjs with `args` in `dir`, returning whether it exited 0 and what it printed.
fn run_snarkjs(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(snarkjs())
        .args(args)
        .current_dir(dir)
        .output()
        .expect("snarkjs runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn a_chunk_circuit_ceremony_gives_keys_that_pulse_and_snarkjs_both_prove_and_check() {
    let params = CircuitParams::new(1, 4);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
    let ptau = Ptau::new(14, &mut rng).expect("ptau");
    let ptau_path = dir.join("pot14.ptau");
    std::fs::write(&ptau_path, ptau.to_bytes()).expect("write ptau");

    let r1cs = chunk_r1cs(params).expect("r1cs");
    let cdir = dir.join("ceremony");
    let t0 = std::time::Instant::now();
    let quiet = |s: &str| eprintln!("{:>7.2?} {s}", t0.elapsed());
    let mut c = Ceremony::create(&cdir, Circuit::Chunk { params }, &r1cs, &ptau_path, &quiet)
        .expect("new ceremony");
    let a = c
        .contribute("hospital a", b"", &quiet)
        .expect("contribute a");
    let b = c
        .contribute("hospital b", b"more", &quiet)
        .expect("contribute b");
    assert_ne!(a.hash, b.hash);
    c.beacon(&[7u8; 32], 10, "beacon", &quiet).expect("beacon");
    let keys_dir = dir.join("keys");
    let (keys, report) = c.finalize(&keys_dir, None, &quiet).expect("finalize");
    assert_eq!(report.contributions.len(), 3);
    assert!(report.contributions[2].beacon);
    let loaded = KeyArtifacts::load(&keys_dir).expect("keys load");
    assert_eq!(loaded.manifest, keys.manifest);

    // Pulse proves a real chunk with the ceremony's keys.
    let state = tempfile::tempdir().expect("tempdir");
    let witness =
        sample::mixed_chunk(state.path(), params, 3, &sample::offline_deployment()).expect("chunk");
    let inputs = witness.public_inputs();
    let circuit = ChunkCircuit {
        params,
        witness: witness.clone(),
    };
    let prover = Prover::with_constraints(
        CpuBackend::new(),
        loaded.pk.clone(),
        loaded.constraints.clone().expect("constraints"),
    )
    .expect("prover");
    let proof = prover.prove(circuit.clone(), &mut rng).expect("prove");
    assert!(verifies(&loaded.pk.vk, &inputs, &proof));
    let mut wrong = inputs.clone();
    wrong[0] += Fr::from(1u64);
    assert!(!verifies(&loaded.pk.vk, &wrong, &proof));

    // snarkjs accepts the key from the circuit and the ptau, and Pulse's proof.
    let (ok, out) = run_snarkjs(
        dir,
        &[
            "zkey",
            "verify",
            keys_dir.join(R1CS).to_str().unwrap(),
            ptau_path.to_str().unwrap(),
            keys_dir.join(FINAL_ZKEY).to_str().unwrap(),
        ],
    );
    assert!(ok && out.contains("ZKey Ok!"), "snarkjs zkey verify: {out}");
    std::fs::write(
        dir.join("vk.json"),
        json::to_string(&json::vk_json(&loaded.pk.vk)),
    )
    .unwrap();
    std::fs::write(
        dir.join("proof.json"),
        json::to_string(&json::proof_json(&proof)),
    )
    .unwrap();
    std::fs::write(
        dir.join("public.json"),
        json::to_string(&json::public_json(&inputs)),
    )
    .unwrap();
    let (ok, out) = run_snarkjs(
        dir,
        &["groth16", "verify", "vk.json", "public.json", "proof.json"],
    );
    assert!(
        ok && out.contains("OK!"),
        "snarkjs groth16 verify of Pulse's proof: {out}"
    );
    std::fs::write(
        dir.join("public.json"),
        json::to_string(&json::public_json(&wrong)),
    )
    .unwrap();
    let (ok, _) = run_snarkjs(
        dir,
        &["groth16", "verify", "vk.json", "public.json", "proof.json"],
    );
    assert!(!ok, "snarkjs accepted a proof for other public inputs");

    // snarkjs proves with the ceremony's key; Pulse accepts its proof.
    let assignment = QapWitness::compute(&CpuBackend::new(), circuit)
        .expect("assignment")
        .scalars(Query::A)
        .to_vec();
    std::fs::write(dir.join("witness.wtns"), wtns::to_bytes(&assignment)).unwrap();
    let (ok, out) = run_snarkjs(
        dir,
        &[
            "groth16",
            "prove",
            keys_dir.join(FINAL_ZKEY).to_str().unwrap(),
            "witness.wtns",
            "sj_proof.json",
            "sj_public.json",
        ],
    );
    assert!(ok, "snarkjs groth16 prove: {out}");
    let sj_proof =
        json::read_proof(&std::fs::read_to_string(dir.join("sj_proof.json")).unwrap()).unwrap();
    let sj_public =
        json::read_public(&std::fs::read_to_string(dir.join("sj_public.json")).unwrap()).unwrap();
    assert_eq!(sj_public, inputs);
    assert!(verifies(&loaded.pk.vk, &sj_public, &sj_proof));

    // Pulse proves the snarkjs key from the .zkey and the .wtns alone, as for any circom
    // circuit, and snarkjs accepts the proof.
    let zkey = pulse_ceremony::ceremony::read_zkey(&keys_dir.join(FINAL_ZKEY)).unwrap();
    let imported = Prover::for_imported(
        CpuBackend::new(),
        pulse_ceremony::keys::proving_key(&zkey),
        pulse_ceremony::keys::ab_rows(&zkey).unwrap(),
    )
    .expect("imported prover");
    let (p2, _) = imported
        .prove_assignment(assignment, inputs.len() + 1, Fr::from(3u64), Fr::from(5u64))
        .expect("prove the imported key");
    std::fs::write(
        dir.join("proof.json"),
        json::to_string(&json::proof_json(&p2)),
    )
    .unwrap();
    std::fs::write(
        dir.join("public.json"),
        json::to_string(&json::public_json(&inputs)),
    )
    .unwrap();
    let (ok, out) = run_snarkjs(
        dir,
        &["groth16", "verify", "vk.json", "public.json", "proof.json"],
    );
    assert!(
        ok,
        "snarkjs groth16 verify of Pulse's proof of the imported key: {out}"
    );
}
