//! The JetStream layout on a real nats-server: created twice without change, transactions
//! deduplicated by hash, jobs leased and redelivered, receipts readable after the fact.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, AckKind};
use futures::StreamExt;
use pulse_protocol::nats::{LayoutOptions, ensure_layout};
use pulse_protocol::*;
use pulse_testkit::Nats;

#[tokio::test]
async fn the_layout_is_idempotent_and_behaves_as_documented() {
    let nats = Nats::start();
    let client = nats
        .coordinator()
        .connect("coordinator")
        .await
        .expect("connect");
    let js = jetstream::new(client.clone());
    let submitter = jetstream::new(nats.client().connect("client").await.expect("connect"));
    let options = LayoutOptions {
        job_lease: Duration::from_secs(1),
        job_max_deliver: 3,
    };
    ensure_layout(&js, options).await.expect("layout");
    ensure_layout(&js, options).await.expect("layout again");

    // Transactions: the same hash twice is stored once.
    for _ in 0..2 {
        let mut h = HeaderMap::new();
        h.insert("Nats-Msg-Id", "0xabc");
        submitter
            .publish_with_headers(TX_SUBJECT, h, "{}".into())
            .await
            .expect("publish")
            .await
            .expect("ack");
    }
    let mut tx = js.get_stream(TX_STREAM).await.expect("tx stream");
    assert_eq!(tx.info().await.expect("info").state.messages, 1);

    // Jobs: a job not acknowledged within its lease comes back, with its delivery count.
    js.publish(job_subject("c1"), "job".into())
        .await
        .expect("publish")
        .await
        .expect("ack");
    let consumer: jetstream::consumer::PullConsumer = js
        .get_stream(JOB_STREAM)
        .await
        .expect("job stream")
        .get_consumer(JOB_CONSUMER)
        .await
        .expect("consumer");
    let mut msgs = consumer.messages().await.expect("messages");
    let first = msgs.next().await.expect("a job").expect("message");
    assert_eq!(first.info().expect("info").delivered, 1);
    // Keep it for two leases with progress acks: not redelivered meanwhile.
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        first.ack_with(AckKind::Progress).await.expect("progress");
    }
    // Then stop: it comes back.
    let again = tokio::time::timeout(Duration::from_secs(10), msgs.next())
        .await
        .expect("redelivered within the lease")
        .expect("a job")
        .expect("message");
    assert_eq!(again.info().expect("info").delivered, 2);
    again.ack().await.expect("ack");

    // Receipts: published before anyone listens, read afterwards by subject.
    let subject = receipt_subject("0xabc");
    let receipt = Receipt {
        tx_hash: Some("0xabc".into()),
        status: ReceiptStatus::Accepted {
            batch: 1,
            new_account: Some(2),
            new_record: None,
            new_grant: None,
        },
    };
    js.publish(subject.clone(), encode(&receipt).into())
        .await
        .expect("publish")
        .await
        .expect("ack");
    let stream = js.get_stream(RECEIPT_STREAM).await.expect("receipt stream");
    let last = stream
        .get_last_raw_message_by_subject(&subject)
        .await
        .expect("last receipt");
    assert_eq!(decode::<Receipt>(&last.payload).expect("decode"), receipt);

    // The worker registry and the key store exist.
    js.get_key_value(WORKER_BUCKET)
        .await
        .expect("worker bucket");
    js.get_object_store(KEY_BUCKET).await.expect("key store");
}
