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
        replicas: 1,
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

/// On a three-node cluster with three replicas every stream and bucket keeps a copy on
/// each node; a node killed with SIGKILL leaves the layout writable and readable, and once
/// restarted it reports itself current (`/healthz`): every replica caught up with what was
/// written without it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_survive_a_killed_node_and_it_catches_up() {
    let mut nats = Nats::start_with(pulse_testkit::NatsOptions {
        nodes: 3,
        ..Default::default()
    });
    let js = jetstream::new(
        nats.coordinator()
            .connect("coordinator")
            .await
            .expect("connect to the cluster"),
    );
    let options = LayoutOptions {
        replicas: 3,
        ..LayoutOptions::default()
    };
    ensure_layout(&js, options).await.expect("layout");
    for name in [TX_STREAM, RECEIPT_STREAM, JOB_STREAM, RESULT_STREAM] {
        let info = js
            .get_stream(name)
            .await
            .expect("stream")
            .info()
            .await
            .expect("info")
            .clone();
        assert_eq!(info.config.num_replicas, 3, "{name} replicas");
        let cluster = info.cluster.expect("cluster info");
        assert_eq!(
            cluster.replicas.len(),
            2,
            "{name}: a leader and two followers"
        );
    }
    let bucket = js
        .get_key_value(WORKER_BUCKET)
        .await
        .expect("worker bucket");
    assert_eq!(
        bucket
            .status()
            .await
            .expect("status")
            .info
            .config
            .num_replicas,
        3
    );

    // As a client does: publish until stored (a write during a leader election times
    // out; the message id makes a repeat harmless).
    let submitter = jetstream::new(nats.client().connect("client").await.expect("connect"));
    let publish = |n: u32| {
        let js = submitter.clone();
        async move {
            for _ in 0..240 {
                let mut h = HeaderMap::new();
                h.insert("Nats-Msg-Id", format!("0x{n:x}").as_str());
                if let Ok(ack) = js.publish_with_headers(TX_SUBJECT, h, "{}".into()).await
                    && ack.await.is_ok()
                {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            panic!("transaction {n} never stored by a quorum");
        }
    };
    for n in 0..5 {
        publish(n).await;
    }
    tokio::task::block_in_place(|| nats.kill_node(0));
    // Writes still reach a quorum of two, once a new leader is elected if the killed node
    // led (the client moves to another node if it was on the killed one).
    for n in 5..10 {
        publish(n).await;
    }
    let mut tx = js.get_stream(TX_STREAM).await.expect("tx stream");
    assert_eq!(tx.info().await.expect("info").state.messages, 10);

    tokio::task::block_in_place(|| nats.restart_node(0));
    let (status, body) = nats.node_health(0).expect("the restarted node answers");
    assert_eq!(status, 200, "restarted node healthy: {body}");
    // The stream's peers (the restarted node among them) are all current.
    let mut only = nats.coordinator();
    only.url = nats.node_url(0);
    let js0 = jetstream::new(only.connect("reader").await.expect("connect to node 1"));
    // Health is the node's own view; the leader's view of its followers may lag a beat.
    let mut last = None;
    for _ in 0..100 {
        let info = js0
            .get_stream(TX_STREAM)
            .await
            .expect("tx stream")
            .info()
            .await
            .expect("info")
            .clone();
        assert_eq!(info.state.messages, 10);
        let cluster = info.cluster.expect("cluster info");
        assert_eq!(cluster.replicas.len(), 2, "{cluster:?}");
        if cluster
            .replicas
            .iter()
            .all(|p| p.current && p.lag.unwrap_or(0) == 0)
        {
            return;
        }
        last = Some(cluster);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("a replica never caught up: {last:?}");
}
