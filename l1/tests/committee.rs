//! The availability committee on a real anvil: `commitBatch` takes a batch only with the
//! threshold of valid attestations from the current members, over this batch's digest.

mod common;

use alloy::primitives::{Address, Bytes, U256};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolEvent;
use common::*;
use pulse_l1::attest::{self, Attestation, attestation_digest};
use pulse_l1::{ChunkProof, L1Error, L1Sender, PulseRollup};
use pulse_testkit::Anvil;

const CID: &str = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy";

fn sign_all(keys: &[PrivateKeySigner], batch: u64, chunks: &[ChunkProof]) -> Vec<Attestation> {
    let commitments: Vec<_> = chunks.iter().map(|c| c.commitment).collect();
    let digest = attestation_digest(deployment_a().id, batch, CID, &commitments);
    keys.iter()
        .map(|k| attest::sign(k, digest).expect("sign"))
        .collect()
}

fn commit(number: u64, chunks: &[ChunkProof], attestations: Bytes) -> pulse_l1::BatchCommit {
    pulse_l1::BatchCommit {
        attestations,
        ..batch(number, chunks)
    }
}

fn refused(r: Result<pulse_l1::Committed, L1Error>) -> String {
    match r {
        Err(e) => e.to_string(),
        Ok(c) => panic!("committed: {c:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_needs_the_threshold_of_member_attestations_over_its_own_digest() {
    let f = fixture();
    let anvil = Anvil::start();
    // Three members (keys without funds: they only sign); the contract requires two.
    let members: Vec<PrivateKeySigner> = (0..3).map(|_| PrivateKeySigner::random()).collect();
    let newcomers: Vec<PrivateKeySigner> = (0..2).map(|_| PrivateKeySigner::random()).collect();
    let new_addresses: Vec<Address> = newcomers.iter().map(PrivateKeySigner::address).collect();
    let addresses: Vec<Address> = members.iter().map(PrivateKeySigner::address).collect();

    // A threshold above the member count, or a committee without one, is refused.
    for (m, k) in [
        (addresses.clone(), 4),
        (addresses.clone(), 0),
        (vec![addresses[0], addresses[0]], 1),
    ] {
        let e = deploy_with_committee(&anvil, m, k)
            .await
            .expect_err("bad committee");
        assert!(e.to_string().contains("InvalidCommittee"), "{e}");
    }
    let d = deploy_with_committee(&anvil, addresses.clone(), 2)
        .await
        .expect("deploy");
    assert_eq!(
        d.for_signing(),
        deployment_a(),
        "the fixture is for this deployment"
    );
    let onchain = attest::read_committee(&anvil.url(), d.address)
        .await
        .expect("committee");
    assert_eq!(onchain.members, addresses);
    assert_eq!((onchain.threshold, onchain.epoch), (2, 1));

    // The contract's digest is the one members sign natively.
    let rollup = PulseRollup::new(d.address, wallet_provider(&anvil, OPERATOR));
    let chunks = &f.chunks[0..2];
    let onchain_digest = rollup
        .attestationDigest(
            U256::from(1),
            CID.into(),
            chunks
                .iter()
                .map(|c| pulse_l1::contract::word(c.commitment))
                .collect(),
        )
        .call()
        .await
        .expect("digest");
    let commitments: Vec<_> = chunks.iter().map(|c| c.commitment).collect();
    assert_eq!(
        onchain_digest,
        attestation_digest(d.deployment_id, 1, CID, &commitments)
    );

    let sender = L1Sender::connect(&anvil.url(), signer(OPERATOR), d.address, fast_config())
        .await
        .expect("connect");
    let atts = sign_all(&members, 1, chunks);

    // No attestations, and k - 1 of them.
    let e = refused(sender.commit(&commit(1, chunks, Bytes::new())).await);
    assert!(
        e.contains("NotEnoughAttestations(given: 0, needed: 2)"),
        "{e}"
    );
    let e = refused(
        sender
            .commit(&commit(1, chunks, attest::pack(&atts[..1])))
            .await,
    );
    assert!(
        e.contains("NotEnoughAttestations(given: 1, needed: 2)"),
        "{e}"
    );

    // A non-member's signature beside a member's.
    let stranger = sign_all(&[signer(STRANGER)], 1, chunks);
    let e = refused(
        sender
            .commit(&commit(1, chunks, attest::pack(&[atts[0], stranger[0]])))
            .await,
    );
    assert!(e.contains("NotACommitteeMember"), "{e}");
    assert!(
        e.contains(&address(STRANGER).to_string()),
        "names the signer: {e}"
    );

    // Members' signatures over another batch number, another CID, or other commitments.
    let other_batch = sign_all(&members, 2, chunks);
    let e = refused(
        sender
            .commit(&commit(1, chunks, attest::pack(&other_batch)))
            .await,
    );
    assert!(e.contains("NotACommitteeMember"), "{e}");
    let other_chunks = sign_all(&members, 1, &f.chunks[0..1]);
    let e = refused(
        sender
            .commit(&commit(1, chunks, attest::pack(&other_chunks)))
            .await,
    );
    assert!(e.contains("NotACommitteeMember"), "{e}");
    let e = refused(
        sender
            .commit(&pulse_l1::BatchCommit {
                data_cid: "bafkreiother".into(),
                ..commit(1, chunks, attest::pack(&atts))
            })
            .await,
    );
    assert!(e.contains("NotACommitteeMember"), "{e}");

    // The same member twice, or out of order, or a cut signature.
    let mut twice = attest::pack(&atts[..1]).to_vec();
    twice.extend_from_slice(&atts[0].signature);
    let e = refused(sender.commit(&commit(1, chunks, twice.into())).await);
    assert!(e.contains("AttestationsNotSorted(index: 1)"), "{e}");
    let mut sorted = atts[..2].to_vec();
    sorted.sort_by_key(|a| a.signer);
    let reversed: Vec<u8> = sorted.iter().rev().flat_map(|a| a.signature).collect();
    let e = refused(sender.commit(&commit(1, chunks, reversed.into())).await);
    assert!(e.contains("AttestationsNotSorted(index: 1)"), "{e}");
    let cut = attest::pack(&atts[..2]).slice(..129);
    let e = refused(sender.commit(&commit(1, chunks, cut)).await);
    assert!(e.contains("MalformedAttestation"), "{e}");
    assert_eq!(sender.batch_number().await.expect("batch number"), 0);

    // Two of three commit; all three do too.
    sender
        .commit(&commit(1, chunks, attest::pack(&atts[1..3])))
        .await
        .expect("two of three");
    // Batch 1's attestations do not serve batch 2 (another number, other commitments).
    let next = &f.chunks[2..3];
    let e = refused(sender.commit(&commit(2, next, attest::pack(&atts))).await);
    assert!(e.contains("NotACommitteeMember"), "{e}");
    sender
        .commit(&commit(2, next, attest::pack(&sign_all(&members, 2, next))))
        .await
        .expect("three of three");

    // Only the owner changes the committee; a change is an event, and the old members'
    // signatures no longer count.
    let e = rollup
        .setCommittee(new_addresses.clone(), U256::from(1))
        .send()
        .await
        .expect_err("the operator is not the owner");
    assert!(matches!(
        e.as_decoded_interface_error::<pulse_l1::contract::PulseRollupErrors>(),
        Some(pulse_l1::contract::PulseRollupErrors::NotOwner(_))
    ));
    let as_owner = PulseRollup::new(d.address, wallet_provider(&anvil, OWNER));
    let receipt = as_owner
        .setCommittee(new_addresses.clone(), U256::from(1))
        .send()
        .await
        .expect("send")
        .get_receipt()
        .await
        .expect("receipt");
    let changed = receipt
        .inner
        .logs()
        .iter()
        .find_map(|l| PulseRollup::CommitteeChanged::decode_log(&l.inner).ok())
        .expect("CommitteeChanged event");
    assert_eq!(changed.epoch, U256::from(2));
    assert_eq!(changed.members, new_addresses);
    assert_eq!(changed.threshold, U256::from(1));
    let third = &f.chunks[3..4];
    let e = refused(
        sender
            .commit(&commit(
                3,
                third,
                attest::pack(&sign_all(&members, 3, third)),
            ))
            .await,
    );
    assert!(e.contains("NotACommitteeMember"), "{e}");
    sender
        .commit(&commit(
            3,
            third,
            attest::pack(&sign_all(&newcomers[1..], 3, third)),
        ))
        .await
        .expect("a new member's attestation");
    assert_eq!(sender.batch_number().await.expect("batch number"), 3);
}
