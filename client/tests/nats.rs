//! Submission and the key-share mailbox against a real nats-server (started by
//! pulse-testkit; `scripts/deps` installs it), with a stand-in coordinator that reads the
//! transaction stream and answers on the receipt subjects as the real one does.

use std::time::{Duration, Instant};

use async_nats::header::NATS_MESSAGE_ID;
use async_nats::jetstream::{self, consumer::PullConsumer};
use futures::StreamExt;
use pulse_circuits::Fr;
use pulse_circuits::deployment::DeploymentId;
use pulse_circuits::eddsa::PrivateKey;
use pulse_circuits::tx::{Role, SignedTransaction, Transaction, TxBody};
use pulse_client::{
    MailboxError, SubmitError, delete_share, ensure_share_bucket, get_share, put_share, share_key,
    submit, submit_raw, wait_committed, wait_receipt,
};
use pulse_protocol::nats::{LayoutOptions, ensure_layout};
use pulse_protocol::{
    Receipt, ReceiptStatus, TX_CONSUMER, TX_STREAM, TX_SUBJECT, encode, receipt_subject,
};
use pulse_testkit::Nats;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use tokio::task::JoinHandle;

const WAIT: Duration = Duration::from_secs(10);

/// Client software's connection (the coordinator's layout made first when `layout`).
async fn connect(nats: &Nats, layout: bool) -> jetstream::Context {
    if layout {
        ensure_layout(&coordinator_js(nats).await, LayoutOptions::default())
            .await
            .expect("layout");
    }
    let client = nats.client().connect("client").await.expect("connect");
    jetstream::new(client)
}

/// The coordinator's connection, for the fake coordinator and for reading streams.
async fn coordinator_js(nats: &Nats) -> jetstream::Context {
    let client = nats
        .coordinator()
        .connect("coordinator")
        .await
        .expect("connect");
    jetstream::new(client)
}

/// The deployment the stand-in coordinator serves.
fn here() -> DeploymentId {
    DeploymentId(Fr::from(31337u64))
}

fn registration(seed: u64) -> SignedTransaction {
    let key = PrivateKey::random(&mut ChaCha20Rng::seed_from_u64(seed));
    Transaction {
        signer: 0,
        nonce: 0,
        body: TxBody::Register {
            public_key: key.public_key(),
            role: Role::Patient,
        },
    }
    .sign(&key, here())
    .expect("sign")
}

fn accepted(hash: &str, batch: u64) -> Receipt {
    Receipt {
        tx_hash: Some(hash.to_owned()),
        status: ReceiptStatus::Accepted {
            batch,
            new_account: Some(1),
            new_record: None,
            new_grant: None,
        },
    }
}

fn rejected(hash: Option<&str>, reason: &str) -> Receipt {
    Receipt {
        tx_hash: hash.map(str::to_owned),
        status: ReceiptStatus::Rejected {
            reason: reason.to_owned(),
            message: format!("{reason}: fix it"),
        },
    }
}

async fn publish_receipt(js: &jetstream::Context, id: &str, receipt: &Receipt) {
    js.publish(receipt_subject(id), encode(receipt).into())
        .await
        .expect("publish receipt")
        .await
        .expect("receipt stored");
}

/// The coordinator's side, reduced to receipts: every transaction is accepted into batch
/// 7 after `reply_after` and committed `commit_after` later; a message that is not a
/// transaction is rejected on the subject its message id names.
fn fake_coordinator(
    js: jetstream::Context,
    reply_after: Duration,
    commit_after: Duration,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let consumer: PullConsumer = js
            .get_stream(TX_STREAM)
            .await
            .expect("tx stream")
            .get_consumer(TX_CONSUMER)
            .await
            .expect("tx consumer");
        let mut msgs = consumer.messages().await.expect("messages");
        while let Some(Ok(msg)) = msgs.next().await {
            let id = msg
                .headers
                .as_ref()
                .and_then(|h| h.get(NATS_MESSAGE_ID))
                .map(|v| v.as_str().to_owned())
                .expect("every transaction carries a message id");
            let tx = std::str::from_utf8(&msg.payload)
                .ok()
                .and_then(|t| SignedTransaction::from_json(t).ok());
            match tx {
                Some(tx) => {
                    let hash = tx.hash(here()).expect("hash").to_string();
                    assert_eq!(hash, id, "the message id is the transaction hash");
                    tokio::time::sleep(reply_after).await;
                    publish_receipt(&js, &id, &accepted(&hash, 7)).await;
                    let js = js.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(commit_after).await;
                        let committed = Receipt {
                            tx_hash: Some(hash.clone()),
                            status: ReceiptStatus::Committed {
                                batch: 7,
                                l1_tx: "0x01".to_owned(),
                            },
                        };
                        publish_receipt(&js, &hash, &committed).await;
                    });
                }
                None => publish_receipt(&js, &id, &rejected(None, "malformed_json")).await,
            }
            msg.ack().await.expect("ack");
        }
    })
}

#[tokio::test]
async fn submit_gets_the_receipt_published_after_it_subscribed() {
    let nats = Nats::start();
    let js = connect(&nats, true).await;
    let coordinator = fake_coordinator(
        coordinator_js(&nats).await,
        Duration::from_millis(300),
        Duration::from_secs(1),
    );

    let tx = registration(1);
    let hash = tx.hash(here()).expect("hash").to_string();
    let receipt = submit(&js, &tx, here(), WAIT).await.expect("submit");
    assert_eq!(receipt, accepted(&hash, 7));

    let committed = wait_committed(&js, &hash, WAIT).await.expect("committed");
    assert!(
        matches!(committed.status, ReceiptStatus::Committed { batch: 7, .. }),
        "{committed:?}"
    );
    // Once final, both waits answer at once from the stored receipts.
    let again = wait_committed(&js, &hash, Duration::from_secs(2))
        .await
        .expect("stored commit");
    assert_eq!(again, committed);
    assert_eq!(
        wait_receipt(&js, &hash, Duration::from_secs(2))
            .await
            .expect("stored"),
        committed
    );
    // A resubmission is deduplicated by JetStream and answered from the stored receipt.
    assert_eq!(
        submit(&js, &tx, here(), WAIT).await.expect("resubmit"),
        committed
    );
    let mut stream = coordinator_js(&nats)
        .await
        .get_stream(TX_STREAM)
        .await
        .expect("stream");
    assert_eq!(stream.info().await.expect("info").state.messages, 0);

    // Not a transaction: the coordinator answers on the subject of the message id.
    let receipt = submit_raw(&js, b"{\"version\":1}".to_vec(), "garbage-1", WAIT)
        .await
        .expect("submit raw");
    assert_eq!(receipt, rejected(None, "malformed_json"));
    coordinator.abort();
}

#[tokio::test]
async fn submit_finds_a_receipt_stored_before_it_subscribed() {
    let nats = Nats::start();
    let js = connect(&nats, true).await;
    // No coordinator runs: the answer can only come from the stream.
    let tx = registration(2);
    let hash = tx.hash(here()).expect("hash").to_string();
    publish_receipt(&coordinator_js(&nats).await, &hash, &accepted(&hash, 3)).await;
    let started = Instant::now();
    let receipt = submit(&js, &tx, here(), WAIT).await.expect("submit");
    assert_eq!(receipt, accepted(&hash, 3));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "it did not wait"
    );

    // A stored rejection answers a duplicate (the coordinator will not see it again) ...
    let tx = registration(3);
    let hash = tx.hash(here()).expect("hash").to_string();
    let mut h = async_nats::HeaderMap::new();
    h.insert(NATS_MESSAGE_ID, hash.as_str());
    js.publish_with_headers(TX_SUBJECT, h, tx.to_json().into())
        .await
        .expect("publish")
        .await
        .expect("stored");
    publish_receipt(
        &coordinator_js(&nats).await,
        &hash,
        &rejected(Some(&hash), "future_nonce"),
    )
    .await;
    let receipt = submit(&js, &tx, here(), WAIT)
        .await
        .expect("submit duplicate");
    assert_eq!(receipt, rejected(Some(&hash), "future_nonce"));

    // ... but not a message stored afresh, which the coordinator judges again.
    let tx = registration(4);
    let hash = tx.hash(here()).expect("hash").to_string();
    publish_receipt(
        &coordinator_js(&nats).await,
        &hash,
        &rejected(Some(&hash), "future_nonce"),
    )
    .await;
    let coordinator = fake_coordinator(
        coordinator_js(&nats).await,
        Duration::ZERO,
        Duration::from_secs(60),
    );
    let receipt = submit(&js, &tx, here(), WAIT).await.expect("submit fresh");
    assert_eq!(receipt, accepted(&hash, 7));
    coordinator.abort();
}

#[tokio::test]
async fn silence_is_a_timeout_and_a_missing_layout_is_named() {
    let nats = Nats::start();
    let bare = connect(&nats, false).await;
    let tx = registration(5);
    let err = submit(&bare, &tx, here(), WAIT)
        .await
        .expect_err("no stream");
    assert!(matches!(err, SubmitError::NoTxStream), "{err}");
    assert!(err.to_string().contains("ensure_layout"), "{err}");

    let js = connect(&nats, true).await;
    let timeout = Duration::from_millis(500);
    let started = Instant::now();
    let err = submit(&js, &tx, here(), timeout)
        .await
        .expect_err("nobody answers");
    let took = started.elapsed();
    assert!(matches!(err, SubmitError::Timeout { .. }), "{err}");
    assert!(
        took >= timeout && took < timeout + Duration::from_secs(2),
        "{took:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains(&tx.hash(here()).expect("hash").to_string()) && text.contains("500ms"),
        "{text}"
    );
    // Published nonetheless: a coordinator that starts later decides it.
    let coordinator = fake_coordinator(
        coordinator_js(&nats).await,
        Duration::ZERO,
        Duration::from_secs(60),
    );
    let receipt = wait_receipt(&js, &tx.hash(here()).expect("hash").to_string(), WAIT)
        .await
        .expect("decided later");
    assert!(matches!(receipt.status, ReceiptStatus::Accepted { .. }));
    coordinator.abort();

    let err = submit_raw(&js, b"x".to_vec(), "a.b", WAIT)
        .await
        .expect_err("not a token");
    assert!(matches!(err, SubmitError::InvalidMsgId(_)), "{err}");
}

#[tokio::test]
async fn shares_go_through_the_mailbox() {
    use pulse_client::{open_with_share, seal_record};

    let nats = Nats::start();
    let js = connect(&nats, false).await;
    let mut rng = ChaCha20Rng::seed_from_u64(6);
    let patient = PrivateKey::random(&mut rng);
    let grantee = PrivateKey::random(&mut rng);
    let envelope =
        seal_record(b"lab results", &[(1, patient.public_key())], &mut rng).expect("seal");
    let cid = pulse_ipfs::raw_cid_of(&envelope.to_json());
    let share = pulse_client::add_recipient(
        &envelope,
        &cid,
        1,
        &patient,
        5,
        &grantee.public_key(),
        &mut rng,
    )
    .expect("share");

    let err = put_share(&js, 12, &share).await.expect_err("no bucket yet");
    assert!(matches!(err, MailboxError::NoBucket { .. }), "{err}");
    // The coordinator makes the bucket (clients may not create streams).
    let cjs = coordinator_js(&nats).await;
    assert!(
        ensure_share_bucket(&js).await.is_err(),
        "a client made a bucket"
    );
    let bucket = ensure_share_bucket(&cjs).await.expect("bucket");
    ensure_share_bucket(&cjs).await.expect("bucket again");

    assert_eq!(get_share(&js, 12, 5).await.expect("get"), None);
    put_share(&js, 12, &share).await.expect("put");
    let got = get_share(&js, 12, 5).await.expect("get").expect("a share");
    assert_eq!(got, share);
    assert_eq!(
        open_with_share(&envelope, &got, &grantee).expect("open"),
        b"lab results"
    );
    assert_eq!(get_share(&js, 12, 6).await.expect("get"), None);
    assert_eq!(get_share(&js, 13, 5).await.expect("get"), None);

    delete_share(&js, 12, 5).await.expect("delete");
    assert_eq!(get_share(&js, 12, 5).await.expect("get"), None);

    // Entries that are not this account's share are refused, not misused.
    bucket
        .put(share_key(12, 9), share.to_json().into())
        .await
        .expect("put");
    let err = get_share(&js, 12, 9).await.expect_err("wrong account");
    assert!(
        matches!(err, MailboxError::WrongAccount { found: 5, .. }),
        "{err}"
    );
    bucket
        .put(share_key(12, 10), "junk".into())
        .await
        .expect("put");
    let err = get_share(&js, 12, 10).await.expect_err("junk");
    assert!(matches!(err, MailboxError::Malformed { .. }), "{err}");
}
