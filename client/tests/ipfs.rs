//! Records through a real js-ipfs node (started by pulse-testkit; `scripts/deps` installs
//! it): sealed, added, read back by CID and opened by each recipient.

use std::time::Duration;

use pulse_circuits::eddsa::PrivateKey;
use pulse_client::{
    OpenError, RecordEnvelope, add_recipient, open_record, open_with_share, seal_record,
};
use pulse_ipfs::IpfsClient;
use pulse_testkit::Ipfs;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

#[tokio::test]
async fn a_record_round_trips_through_ipfs() {
    let node = Ipfs::start();
    let ipfs = IpfsClient::new(&node.api_url()).expect("client");
    let mut rng = ChaCha20Rng::seed_from_u64(0x1BF5);
    let (patient, doctor, other) = (
        PrivateKey::random(&mut rng),
        PrivateKey::random(&mut rng),
        PrivateKey::random(&mut rng),
    );
    let (patient_id, doctor_id, other_id) = (3, 8, 11);

    // Larger than one IPFS chunk, so the envelope is a multi-block UnixFS file.
    let emr: Vec<u8> = (0..400_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let envelope = seal_record(
        &emr,
        &[
            (patient_id, patient.public_key()),
            (doctor_id, doctor.public_key()),
        ],
        &mut rng,
    )
    .expect("seal");
    let json = envelope.to_json();
    let cid = ipfs.add(json.clone()).await.expect("add");

    let fetched = ipfs.cat(&cid, Duration::from_secs(10)).await.expect("cat");
    assert_eq!(fetched, json);
    let back = RecordEnvelope::from_json(&fetched).expect("parse");
    assert_eq!(back, envelope);
    assert_eq!(
        open_record(&back, patient_id, &patient).expect("patient"),
        emr
    );
    assert_eq!(open_record(&back, doctor_id, &doctor).expect("doctor"), emr);
    let err = open_record(&back, other_id, &other).expect_err("not a recipient");
    assert_eq!(err, OpenError::NotARecipient { account: other_id });
    assert!(
        err.to_string().contains("ask the patient for a grant"),
        "{err}"
    );

    // The patient grants the other doctor: a key share, the stored envelope unchanged.
    let share = add_recipient(
        &back,
        &cid,
        patient_id,
        &patient,
        other_id,
        &other.public_key(),
        &mut rng,
    )
    .expect("share");
    let again = RecordEnvelope::from_json(
        &ipfs
            .cat(&share.record_cid, Duration::from_secs(10))
            .await
            .expect("cat by the share's CID"),
    )
    .expect("parse");
    assert_eq!(
        open_with_share(&again, &share, &other).expect("grantee"),
        emr
    );

    // A small record is a single raw block, checked against its CID by the client.
    let small = seal_record(
        b"allergy: none",
        &[(patient_id, patient.public_key())],
        &mut rng,
    )
    .expect("seal");
    let cid = ipfs.add(small.to_json()).await.expect("add");
    assert_eq!(cid, pulse_ipfs::raw_cid_of(&small.to_json()));
    let back =
        RecordEnvelope::from_json(&ipfs.cat(&cid, Duration::from_secs(10)).await.expect("cat"))
            .expect("parse");
    assert_eq!(
        open_record(&back, patient_id, &patient).expect("open"),
        b"allergy: none"
    );
}
