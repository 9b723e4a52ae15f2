//! The rollup contract and the L1 sender against a real anvil, with real chunk proofs made by
//! Pulse's prover: batches of 1, 2 and 8 proofs commit; bad batches are refused with named
//! custom errors; proofs made for one deployment are refused by another, whose
//! `deploymentId()` is the one Pulse computes; the sender survives a restart between
//! submission and confirmation, a dropped transaction and a stuck one, and never commits
//! twice.

mod common;

use std::time::Duration;

use alloy::primitives::U256;
use alloy::providers::Provider;
use ark_bn254::G1Affine;
use ark_ec::{AffineRepr, CurveGroup};
use pulse_l1::contract::{PulseRollupErrors, proof_words, word};
use pulse_l1::{L1Error, L1Sender, Phase, PulseRollup, SenderConfig, SenderStatus};
use pulse_testkit::Anvil;
use tokio::sync::watch;

use common::{
    OPERATOR, OWNER, STRANGER, address, batch, deploy, deployment_a, fast_config, fixture, signer,
    wallet_provider,
};

async fn wait_for(
    rx: &mut watch::Receiver<SenderStatus>,
    what: &str,
    f: impl Fn(&SenderStatus) -> bool,
) -> SenderStatus {
    let waited = tokio::time::timeout(Duration::from_secs(60), rx.wait_for(|s| f(s)))
        .await
        .map(|r| r.map(|s| s.clone()));
    match waited {
        Ok(Ok(s)) => s,
        _ => panic!(
            "sender never reached: {what} (last status {:?})",
            *rx.borrow()
        ),
    }
}

async fn set_automine(p: &impl Provider, on: bool) {
    let _: serde_json::Value = p
        .raw_request("evm_setAutomine".into(), (on,))
        .await
        .expect("evm_setAutomine");
}

async fn start_interval_mining(p: &impl Provider) {
    let _: serde_json::Value = p
        .raw_request("evm_setIntervalMining".into(), (1u64,))
        .await
        .expect("evm_setIntervalMining");
}

fn tamper(p: &mut ark_groth16::Proof<ark_bn254::Bn254>) {
    p.a = (p.a + G1Affine::generator()).into_affine();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_batches_of_1_2_and_8_real_chunk_proofs() {
    let f = fixture();
    let anvil = Anvil::start();
    let d = deploy(&anvil).await;
    let sender = L1Sender::connect(&anvil.url(), signer(OPERATOR), d.address, fast_config())
        .await
        .expect("connect");
    assert_eq!(sender.batch_number().await.expect("batch number"), 0);

    let mut start = 0;
    let mut gas = Vec::new();
    for (n, k) in [(1u64, 1usize), (2, 2), (3, 8)] {
        let c = sender
            .commit(&batch(n, &f.chunks[start..start + k]))
            .await
            .expect("commit");
        assert_eq!(c.number, n);
        assert!(!c.already);
        assert_eq!(c.submissions, 1);
        gas.push(c.gas_used);
        start += k;
    }
    // Each extra proof costs one more pairing and two scalar multiplications at least.
    assert!(gas[0] < gas[1] && gas[1] < gas[2], "gas {gas:?}");

    let st = pulse_l1::status(&anvil.url(), d.address, 10)
        .await
        .expect("status");
    assert_eq!(st.batch_number, 3);
    assert_eq!(st.state_root, word(f.chunks[10].root_after));
    assert_eq!(st.vk_hash, d.vk_hash);
    assert_eq!(st.owner, address(OWNER));
    let events: Vec<(u64, u64, u64)> = st
        .last_batches
        .iter()
        .map(|e| (e.number, e.chunks, e.tx_count))
        .collect();
    assert_eq!(events, vec![(1, 1, 1), (2, 2, 2), (3, 8, 8)]);
    assert!(
        st.last_batches
            .iter()
            .all(|e| e.data_cid.starts_with("bafk"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_batches_are_refused_with_named_errors() {
    let f = fixture();
    let anvil = Anvil::start();
    let d = deploy(&anvil).await;
    let sender = L1Sender::connect(&anvil.url(), signer(OPERATOR), d.address, fast_config())
        .await
        .expect("connect");
    let refused = |r: Result<pulse_l1::Committed, L1Error>| match r {
        Err(e) => e
            .revert_name()
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("not a revert: {e}")),
        Ok(c) => panic!("committed: {c:?}"),
    };

    let mut tampered = f.chunks[0..2].to_vec();
    tamper(&mut tampered[1].proof);
    assert_eq!(
        refused(sender.commit(&batch(1, &tampered)).await),
        "InvalidBatchProof"
    );

    let broken = vec![f.chunks[0].clone(), f.chunks[2].clone()];
    assert_eq!(
        refused(sender.commit(&batch(1, &broken)).await),
        "BrokenRootChain"
    );

    assert_eq!(
        refused(sender.commit(&batch(1, &f.chunks[1..3])).await),
        "WrongStartRoot"
    );

    let mut out_of_field = f.chunks[0..1].to_vec();
    let stranger = L1Sender::connect(&anvil.url(), signer(STRANGER), d.address, fast_config())
        .await
        .expect("connect");
    assert_eq!(
        refused(stranger.commit(&batch(1, &out_of_field)).await),
        "NotOperator"
    );

    // A commitment of r or more (not a field element) is named, not just an invalid proof.
    let rollup = PulseRollup::new(d.address, wallet_provider(&anvil, OPERATOR));
    let mut abi = out_of_field.remove(0).to_abi();
    abi.commitment += U256::from_str_radix(
        "21888242871839275222246405745257275088548364400416034343698204186575808495617",
        10,
    )
    .expect("r");
    let err = rollup
        .commitBatch(
            U256::from(1),
            vec![abi],
            "bafk".into(),
            U256::from(1),
            Default::default(),
        )
        .send()
        .await
        .expect_err("out of field");
    assert!(matches!(
        err.as_decoded_interface_error::<PulseRollupErrors>(),
        Some(PulseRollupErrors::PublicInputNotInField(e)) if e.chunk == U256::ZERO && e.input == U256::from(2)
    ));

    // Nothing changed; the good batch still commits.
    assert_eq!(sender.batch_number().await.expect("batch number"), 0);
    let c = sender
        .commit(&batch(1, &f.chunks[0..2]))
        .await
        .expect("commit");
    assert!(!c.already);

    // A replay: the sender recognises its own committed batch and sends nothing ...
    let again = sender
        .commit(&batch(1, &f.chunks[0..2]))
        .await
        .expect("idempotent");
    assert!(again.already);
    assert_eq!(again.tx_hash, c.tx_hash);
    // ... and the contract refuses the replayed call by its batch number.
    let replay = f.chunks[0..2]
        .iter()
        .map(|c| c.to_abi())
        .collect::<Vec<_>>();
    let err = rollup
        .commitBatch(
            U256::from(1),
            replay,
            "bafk".into(),
            U256::from(2),
            Default::default(),
        )
        .send()
        .await
        .expect_err("replay");
    assert!(matches!(
        err.as_decoded_interface_error::<PulseRollupErrors>(),
        Some(PulseRollupErrors::UnexpectedBatchNumber(e)) if e.expected == U256::from(2) && e.given == U256::from(1)
    ));
    // Out of order for the sender: a clear error, nothing sent.
    assert!(matches!(
        sender.commit(&batch(5, &f.chunks[2..3])).await,
        Err(L1Error::OutOfOrder {
            onchain: 1,
            given: 5
        })
    ));
    // Only the owner manages operators.
    let as_operator = PulseRollup::new(d.address, wallet_provider(&anvil, OPERATOR));
    let err = as_operator
        .addOperator(address(STRANGER))
        .send()
        .await
        .expect_err("not owner");
    assert!(matches!(
        err.as_decoded_interface_error::<PulseRollupErrors>(),
        Some(PulseRollupErrors::NotOwner(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_single_proof_verifier_accepts_a_real_proof_and_refuses_tampering() {
    let f = fixture();
    let anvil = Anvil::start();
    let d = deploy(&anvil).await;
    let rollup = PulseRollup::new(d.address, wallet_provider(&anvil, STRANGER));
    let c = &f.chunks[3];
    let inputs = c.calldata_inputs().map(word);
    assert!(
        rollup
            .verifyProof(proof_words(&c.proof), inputs)
            .call()
            .await
            .expect("call")
    );

    let mut bad = c.proof.clone();
    tamper(&mut bad);
    assert!(
        !rollup
            .verifyProof(proof_words(&bad), inputs)
            .call()
            .await
            .expect("call")
    );

    let mut wrong = inputs;
    wrong[2] += U256::from(1);
    assert!(
        !rollup
            .verifyProof(proof_words(&c.proof), wrong)
            .call()
            .await
            .expect("call")
    );
    let mut swapped = inputs;
    swapped.swap(0, 1);
    assert!(
        !rollup
            .verifyProof(proof_words(&c.proof), swapped)
            .call()
            .await
            .expect("call")
    );

    // The batch check agrees, for every chunk alone and for all together.
    let all: Vec<_> = f.chunks.iter().map(|c| c.to_abi()).collect();
    assert!(rollup.verifyBatch(all.clone()).call().await.expect("call"));
    let mut one_bad = all;
    one_bad[7].proof[7] = one_bad[6].proof[7];
    assert!(!rollup.verifyBatch(one_bad).call().await.unwrap_or(false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_sender_neither_commits_twice_nor_loses_the_batch() {
    let f = fixture();
    let anvil = Anvil::start();
    let d = deploy(&anvil).await;
    let p = wallet_provider(&anvil, OWNER);
    set_automine(&p, false).await;
    let b = batch(1, &f.chunks[0..2]);

    // The first sender submits, then dies before the commit is included.
    let first = L1Sender::connect(&anvil.url(), signer(OPERATOR), d.address, fast_config())
        .await
        .expect("connect");
    let mut rx = first.subscribe();
    let task = {
        let b = b.clone();
        tokio::spawn(async move { first.commit(&b).await })
    };
    let submitted = wait_for(&mut rx, "first submission", |s| s.phase == Phase::Submitted).await;
    task.abort();
    let _ = task.await;
    let pending = submitted.last_tx.expect("tx");
    assert!(
        p.get_transaction_by_hash(pending)
            .await
            .expect("rpc")
            .is_some(),
        "the first submission is pending"
    );

    // A new sender: the contract is still at batch 0, so it submits again with the same
    // (confirmed) nonce: the two can only replace each other.
    let second = L1Sender::connect(&anvil.url(), signer(OPERATOR), d.address, fast_config())
        .await
        .expect("connect");
    let mut rx2 = second.subscribe();
    let task = {
        let b = b.clone();
        tokio::spawn(async move { second.commit(&b).await })
    };
    let resubmitted = wait_for(&mut rx2, "second submission", |s| {
        s.phase == Phase::Submitted
    })
    .await;
    assert_eq!(resubmitted.nonce, submitted.nonce);
    start_interval_mining(&p).await;
    let c = task.await.expect("join").expect("commit");
    assert!(!c.already);

    let st = pulse_l1::status(&anvil.url(), d.address, 10)
        .await
        .expect("status");
    assert_eq!(st.batch_number, 1);
    assert_eq!(st.last_batches.len(), 1, "exactly one BatchCommitted event");
    let nonce = p
        .get_transaction_count(address(OPERATOR))
        .await
        .expect("nonce");
    assert_eq!(nonce, 1, "exactly one operator transaction was included");

    // A third run after the commit finds it and sends nothing.
    let third = L1Sender::connect(&anvil.url(), signer(OPERATOR), d.address, fast_config())
        .await
        .expect("connect");
    let again = third.commit(&b).await.expect("idempotent");
    assert!(again.already);
    assert_eq!(again.submissions, 0);
    assert_eq!(again.tx_hash, c.tx_hash);
    assert_eq!(
        p.get_transaction_count(address(OPERATOR))
            .await
            .expect("nonce"),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_commit_is_resubmitted() {
    let f = fixture();
    let anvil = Anvil::start();
    let d = deploy(&anvil).await;
    let p = wallet_provider(&anvil, OWNER);
    set_automine(&p, false).await;

    let sender = L1Sender::connect(&anvil.url(), signer(OPERATOR), d.address, fast_config())
        .await
        .expect("connect");
    let mut rx = sender.subscribe();
    let task = tokio::spawn(async move { sender.commit(&batch(1, &fixture().chunks[0..1])).await });
    let s = wait_for(&mut rx, "submission", |s| s.phase == Phase::Submitted).await;
    let dropped = s.last_tx.expect("tx");
    let _: serde_json::Value = p
        .raw_request("anvil_dropTransaction".into(), (dropped,))
        .await
        .expect("anvil_dropTransaction");
    assert!(
        p.get_transaction_by_hash(dropped)
            .await
            .expect("rpc")
            .is_none(),
        "anvil dropped it"
    );

    wait_for(&mut rx, "resubmission", |s| s.submissions >= 2).await;
    start_interval_mining(&p).await;
    let c = task.await.expect("join").expect("commit");
    assert!(c.submissions >= 2);
    let st = pulse_l1::status(&anvil.url(), d.address, 10)
        .await
        .expect("status");
    assert_eq!(st.batch_number, 1);
    assert_eq!(st.state_root, word(f.chunks[0].root_after));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_commit_is_replaced_with_capped_fee_bumps() {
    let anvil = Anvil::start();
    let d = deploy(&anvil).await;
    let p = wallet_provider(&anvil, OWNER);
    set_automine(&p, false).await;
    let est = p.estimate_eip1559_fees().await.expect("fees");
    let cap = est.max_fee_per_gas * 2;
    let config = SenderConfig {
        max_fee_per_gas: cap,
        max_priority_fee_per_gas: cap,
        fee_bump_percent: 25,
        ..fast_config()
    };
    let sender = L1Sender::connect(&anvil.url(), signer(OPERATOR), d.address, config)
        .await
        .expect("connect");
    let mut rx = sender.subscribe();
    let task = tokio::spawn(async move { sender.commit(&batch(1, &fixture().chunks[0..1])).await });
    let first = wait_for(&mut rx, "submission", |s| s.phase == Phase::Submitted).await;
    let stuck = wait_for(&mut rx, "the fee cap", |s| s.phase == Phase::Stuck).await;
    assert!(stuck.submissions >= 3, "{stuck:?}");
    assert!(stuck.max_fee_per_gas > first.max_fee_per_gas);
    assert_eq!(stuck.max_fee_per_gas, cap);
    // Only the last replacement is in the pool.
    let first_tx = first.last_tx.expect("tx");
    assert!(
        p.get_transaction_by_hash(first_tx)
            .await
            .expect("rpc")
            .is_none(),
        "replaced"
    );

    start_interval_mining(&p).await;
    let c = task.await.expect("join").expect("commit");
    assert_eq!(c.tx_hash, stuck.last_tx.expect("tx"));
    assert_eq!(
        p.get_transaction_count(address(OPERATOR))
            .await
            .expect("nonce"),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_nodes_and_bad_urls_are_named() {
    let port = pulse_testkit::free_port();
    let url = format!("http://127.0.0.1:{port}");
    let err = L1Sender::connect(&url, signer(OPERATOR), address(0), fast_config())
        .await
        .expect_err("no node");
    assert!(
        matches!(&err, L1Error::Rpc { url: u, .. } if *u == url),
        "{err}"
    );
    assert!(err.is_transient());
    assert!(err.to_string().contains(&url));

    let err = L1Sender::connect("ws//nowhere", signer(OPERATOR), address(0), fast_config())
        .await
        .expect_err("bad url");
    assert!(matches!(err, L1Error::BadUrl { .. }), "{err}");

    let anvil = Anvil::start();
    let err = L1Sender::connect(&anvil.url(), signer(OPERATOR), address(3), fast_config())
        .await
        .expect_err("no code");
    assert!(matches!(err, L1Error::NoContract { .. }), "{err}");
}

#[test]
fn the_artifact_is_compiled_from_the_checked_in_source() {
    assert_eq!(
        pulse_l1::contract::artifact_source_sha256().expect("artifact"),
        pulse_l1::contract::source_sha256(),
        "contracts/out/PulseRollup.json is stale: run scripts/contracts build"
    );
}

/// Compiles a standalone Solidity file with the project's pinned solc-js (through
/// `contracts/build.cjs --compile`) and returns its creation bytecode.
fn compile_standalone(path: &std::path::Path) -> alloy::primitives::Bytes {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../contracts/build.cjs");
    let out = std::process::Command::new("node")
        .arg(&script)
        .arg("--compile")
        .arg(path)
        .output()
        .expect("node must be installed (scripts/test checks for it)");
    assert!(
        out.status.success(),
        "solc-js failed (run scripts/deps):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let artifacts: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("compiler output");
    let code = artifacts[0]["bytecode"].as_str().expect("bytecode");
    code.parse().expect("hex bytecode")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_generated_verifier_alone_accepts_a_real_proof_and_refuses_tampering() {
    use alloy::network::TransactionBuilder;
    use alloy::primitives::keccak256;
    use alloy::rpc::types::TransactionRequest;
    use pulse_circuits::solidity::{
        encode_verify_proof_args, generate_verifier, verify_proof_signature,
    };

    let f = fixture();
    let dir = tempfile::tempdir().expect("tempdir");
    let source = generate_verifier(&f.vk, "ChunkVerifier").expect("generate");
    let path = dir.path().join("ChunkVerifier.sol");
    std::fs::write(&path, source).expect("write");
    let code = compile_standalone(&path);

    let anvil = Anvil::start();
    let p = wallet_provider(&anvil, OWNER);
    let receipt = p
        .send_transaction(TransactionRequest::default().with_deploy_code(code))
        .await
        .expect("send")
        .get_receipt()
        .await
        .expect("receipt");
    let verifier = receipt.contract_address.expect("deployed");

    // The standalone verifier takes all four inputs, the deployment id included.
    let selector = keccak256(verify_proof_signature(4).as_bytes());
    let verify = |proof: &ark_groth16::Proof<ark_bn254::Bn254>, inputs: &[ark_bn254::Fr]| {
        let mut data = selector[..4].to_vec();
        data.extend(encode_verify_proof_args(proof, inputs));
        let p = p.clone();
        async move {
            let out = p
                .call(
                    TransactionRequest::default()
                        .with_to(verifier)
                        .with_input(data),
                )
                .await
                .expect("eth_call");
            out.len() == 32 && out[31] == 1 && out[..31].iter().all(|b| *b == 0)
        }
    };
    let c = &f.chunks[5];
    let inputs = c.public_inputs();
    assert!(
        verify(&c.proof, &inputs).await,
        "a real chunk proof verifies"
    );
    let mut bad = c.proof.clone();
    tamper(&mut bad);
    assert!(!verify(&bad, &inputs).await, "a tampered proof is refused");
    let mut wrong = inputs;
    wrong[1] += ark_bn254::Fr::from(1u64);
    assert!(
        !verify(&c.proof, &wrong).await,
        "a wrong public input is refused"
    );
    let mut elsewhere = inputs;
    elsewhere[3] += ark_bn254::Fr::from(1u64);
    assert!(
        !verify(&c.proof, &elsewhere).await,
        "another deployment id is refused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proof_for_one_deployment_is_refused_by_another() {
    use pulse_circuits::solidity::g1_coords;

    let f = fixture();
    let anvil = Anvil::start();
    // A is the fixture's deployment; B is the same contract, key and genesis deployed next.
    let a = deploy(&anvil).await;
    let b = deploy(&anvil).await;
    assert_eq!(a.address, address(OWNER).create(0));
    assert_ne!(a.address, b.address);
    for d in [&a, &b] {
        let rollup = PulseRollup::new(d.address, wallet_provider(&anvil, STRANGER));
        let onchain = rollup.deploymentId().call().await.expect("deploymentId");
        let native = pulse_l1::deployment_id(pulse_testkit::ANVIL_CHAIN_ID, d.address);
        assert_eq!(
            onchain,
            word(native.0),
            "deploymentId() is the Rust computation"
        );
        assert_eq!(d.deployment_id, native);
        let read = pulse_l1::read_deployment(&anvil.url(), d.address)
            .await
            .expect("read");
        assert_eq!(read, d.for_signing());
    }
    assert_eq!(a.for_signing(), deployment_a());
    assert_ne!(a.deployment_id, b.deployment_id);

    // Every fixture proof is for A: accepted by A, refused by B.
    let c = &f.chunks[0];
    assert_eq!(c.deployment, deployment_a().id.0);
    let on =
        |d: &pulse_l1::Deployment| PulseRollup::new(d.address, wallet_provider(&anvil, STRANGER));
    let inputs = c.calldata_inputs().map(word);
    let proof = proof_words(&c.proof);
    assert!(
        on(&a)
            .verifyProof(proof, inputs)
            .call()
            .await
            .expect("call")
    );
    assert!(
        !on(&b)
            .verifyProof(proof, inputs)
            .call()
            .await
            .expect("call")
    );
    let all: Vec<_> = f.chunks.iter().map(|c| c.to_abi()).collect();
    assert!(on(&a).verifyBatch(all.clone()).call().await.expect("call"));
    assert!(!on(&b).verifyBatch(all).call().await.unwrap_or(true));

    // An operator replaying A's batch on B is refused; on A it commits.
    let to_b = L1Sender::connect(&anvil.url(), signer(OPERATOR), b.address, fast_config())
        .await
        .expect("connect");
    let err = to_b
        .commit(&batch(1, &f.chunks[0..2]))
        .await
        .expect_err("B refuses A's proofs");
    assert_eq!(err.revert_name(), Some("InvalidBatchProof"), "{err}");
    let to_a = L1Sender::connect(&anvil.url(), signer(OPERATOR), a.address, fast_config())
        .await
        .expect("connect");
    to_a.commit(&batch(1, &f.chunks[0..2]))
        .await
        .expect("A accepts them");

    // verifyingKey() is the setup's key specialised to the deployment: IC_0 + D·IC_4 in
    // place of IC_0, IC_4 left out.
    let key = on(&a).verifyingKey().call().await.expect("verifyingKey");
    let words = pulse_l1::contract::vk_words(&f.vk).expect("vk words");
    let folded = (f.vk.gamma_abc_g1[0] + f.vk.gamma_abc_g1[4] * deployment_a().id.0).into_affine();
    let mut expected: Vec<U256> = words[..22].to_vec();
    expected.splice(14..16, g1_coords(&folded).map(word));
    assert_eq!(key.to_vec(), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_whose_ic4_is_off_the_curve_is_refused_at_deployment() {
    let f = fixture();
    let anvil = Anvil::start();
    let mut vk = f.vk.clone();
    vk.gamma_abc_g1[4] =
        G1Affine::new_unchecked(ark_bn254::Fq::from(1u64), ark_bn254::Fq::from(1u64));
    let err = pulse_l1::deploy(
        &anvil.url(),
        signer(OWNER),
        &pulse_l1::DeployParams {
            genesis_root: f.genesis,
            vk,
            owner: address(OWNER),
            operators: vec![],
            committee: Vec::new(),
            threshold: 0,
        },
    )
    .await
    .expect_err("refused");
    assert_eq!(err.revert_name(), Some("InvalidVerifyingKey"), "{err}");
}
