//! Each role against a real nats-server running the generated configuration: what the role
//! needs works, and what it must not do is refused by the server (a permissions violation
//! the server reports, and no effect).

use std::time::Duration;

use async_nats::jetstream::{self, AckKind};
use async_nats::{ConnectOptions, Event};
use futures::StreamExt;
use pulse_access::{NatsEndpoint, Role};
use pulse_protocol::nats::{LayoutOptions, ensure_layout};
use pulse_protocol::{
    JOB_CONSUMER, JOB_STREAM, KEY_BUCKET, RESULT_SUBJECT, TX_STREAM, TX_SUBJECT, WORKER_BUCKET,
    job_subject, receipt_subject,
};
use pulse_testkit::Nats;
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(3);

/// A connection whose server errors (permissions violations) can be awaited.
struct Conn {
    client: async_nats::Client,
    errors: mpsc::UnboundedReceiver<String>,
}

impl Conn {
    async fn open(endpoint: &NatsEndpoint) -> Conn {
        let (tx, errors) = mpsc::unbounded_channel();
        let options = ConnectOptions::new()
            .request_timeout(Some(Duration::from_secs(2)))
            .event_callback(move |event| {
                let tx = tx.clone();
                async move {
                    if let Event::ServerError(e) = event {
                        let _ = tx.send(e.to_string());
                    }
                }
            });
        let client = endpoint
            .connect_with(options)
            .await
            .unwrap_or_else(|e| panic!("connect: {e}"));
        Conn { client, errors }
    }

    fn js(&self) -> jetstream::Context {
        jetstream::new(self.client.clone())
    }

    /// Waits for the server to report a permissions violation naming `subject`.
    async fn refused(&mut self, what: &str, subject: &str) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, self.errors.recv()).await {
                Ok(Some(e)) if e.contains("Permissions Violation") && e.contains(subject) => {
                    return;
                }
                Ok(Some(_)) => {}
                _ => panic!("{what}: the server reported no permissions violation for {subject}"),
            }
        }
    }

    /// Core publish that the server must refuse.
    async fn publish_refused(&mut self, subject: &str) {
        self.client
            .publish(subject.to_owned(), "forged".into())
            .await
            .expect("publish is queued");
        self.client.flush().await.expect("flush");
        self.refused(&format!("publish {subject}"), subject).await;
    }

    /// Subscription that the server must refuse.
    async fn subscribe_refused(&mut self, subject: &str) {
        let _sub = self
            .client
            .subscribe(subject.to_owned())
            .await
            .expect("subscribe is queued");
        self.client.flush().await.expect("flush");
        self.refused(&format!("subscribe {subject}"), subject).await;
    }
}

/// A server with the coordinator's layout, a job waiting and a proving-key object.
async fn cluster() -> (Nats, Conn) {
    let nats = Nats::start();
    let coordinator = Conn::open(&nats.coordinator()).await;
    let js = coordinator.js();
    ensure_layout(&js, LayoutOptions::default())
        .await
        .expect("the coordinator creates its layout");
    let store = js.get_object_store(KEY_BUCKET).await.expect("key store");
    store
        .put("key-1", &mut &b"proving key bytes"[..])
        .await
        .expect("the coordinator writes the key store");
    (nats, coordinator)
}

#[tokio::test]
async fn coordinator_owns_the_layout_and_publishes_receipts_and_jobs() {
    let (_nats, mut coordinator) = cluster().await;
    let js = coordinator.js();
    js.publish(job_subject("c1"), "job".into())
        .await
        .expect("publish job")
        .await
        .expect("job stored");
    js.publish(receipt_subject("0xab"), "receipt".into())
        .await
        .expect("publish receipt")
        .await
        .expect("receipt stored");
    let mut stream = js.get_stream(TX_STREAM).await.expect("tx stream");
    assert_eq!(stream.info().await.expect("info").config.name, TX_STREAM);
    // It never submits transactions nor publishes proving results.
    coordinator.publish_refused(TX_SUBJECT).await;
    coordinator.publish_refused(RESULT_SUBJECT).await;
    coordinator.subscribe_refused("_INBOX.>").await;
}

#[tokio::test]
async fn worker_pulls_acks_publishes_results_reads_keys_and_writes_only_its_entry() {
    let (mut nats, coordinator) = cluster().await;
    for i in 0..3 {
        coordinator
            .js()
            .publish(job_subject("c1"), format!("job {i}").into())
            .await
            .expect("publish job")
            .await
            .expect("job stored");
    }
    let mut worker = Conn::open(&nats.worker("h1")).await;
    let js = worker.js();

    // Allowed: the job consumer, acks of every kind, results, its registry entry, keys.
    let consumer: jetstream::consumer::PullConsumer = js
        .get_stream(JOB_STREAM)
        .await
        .expect("job stream info")
        .get_consumer(JOB_CONSUMER)
        .await
        .expect("job consumer info");
    let mut jobs = consumer
        .fetch()
        .max_messages(3)
        .expires(Duration::from_secs(2))
        .messages()
        .await
        .expect("pull");
    let mut got = 0;
    while let Some(msg) = jobs.next().await {
        let msg = msg.expect("job");
        match got {
            0 => {
                msg.ack_with(AckKind::Progress).await.expect("in progress");
                msg.ack().await.expect("ack after progress");
            }
            1 => msg.ack_with(AckKind::Nak(None)).await.expect("nak"),
            _ => msg.ack().await.expect("ack"),
        }
        got += 1;
    }
    assert_eq!(got, 3, "the worker pulled every job");
    js.publish(RESULT_SUBJECT, "result".into())
        .await
        .expect("publish result")
        .await
        .expect("result stored");
    let registry = js.get_key_value(WORKER_BUCKET).await.expect("registry");
    registry.put("h1", "alive".into()).await.expect("own entry");
    assert_eq!(
        registry.get("h1").await.expect("read own entry").as_deref(),
        Some(&b"alive"[..])
    );
    let store = js.get_object_store(KEY_BUCKET).await.expect("key store");
    let mut object = store.get("key-1").await.expect("get key");
    let mut bytes = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut object, &mut bytes)
        .await
        .expect("read key");
    assert_eq!(bytes, b"proving key bytes");

    // Refused by the server.
    worker.publish_refused(&receipt_subject("0xab")).await;
    worker.publish_refused(&job_subject("c1")).await;
    worker.publish_refused("pulse.journal.1").await;
    worker.subscribe_refused(TX_SUBJECT).await;
    worker.subscribe_refused("pulse.journal.>").await;
    worker.subscribe_refused("_INBOX.>").await;
    worker.subscribe_refused("_INBOX_worker_h2.>").await;
    assert!(
        registry.put("h2", "forged".into()).await.is_err(),
        "another worker's entry"
    );
    worker.refused("put h2", "$KV.pulse-workers.h2").await;
    assert!(js.get_stream(TX_STREAM).await.is_err(), "tx stream info");
    worker
        .refused(
            "tx stream info",
            &format!("$JS.API.STREAM.INFO.{TX_STREAM}"),
        )
        .await;
    for (what, subject) in [
        (
            "read a transaction",
            format!("$JS.API.STREAM.MSG.GET.{TX_STREAM}"),
        ),
        (
            "consume transactions",
            format!("$JS.API.CONSUMER.CREATE.{TX_STREAM}"),
        ),
        (
            "delete the job stream",
            format!("$JS.API.STREAM.DELETE.{JOB_STREAM}"),
        ),
        (
            "purge the tx stream",
            format!("$JS.API.STREAM.PURGE.{TX_STREAM}"),
        ),
        (
            "update the job stream",
            format!("$JS.API.STREAM.UPDATE.{JOB_STREAM}"),
        ),
        ("create a stream", "$JS.API.STREAM.CREATE.EVIL".to_owned()),
        (
            "delete the job consumer",
            format!("$JS.API.CONSUMER.DELETE.{JOB_STREAM}.{JOB_CONSUMER}"),
        ),
        (
            "add a job consumer",
            format!("$JS.API.CONSUMER.CREATE.{JOB_STREAM}.mine"),
        ),
        ("list streams", "$JS.API.STREAM.LIST".to_owned()),
    ] {
        assert!(
            worker
                .client
                .request(subject.clone(), "{}".into())
                .await
                .is_err(),
            "{what}"
        );
        worker.refused(what, &subject).await;
    }
    // Nothing it tried had an effect.
    let cjs = coordinator.js();
    let mut tx = cjs
        .get_stream(TX_STREAM)
        .await
        .expect("tx stream still there");
    tx.info().await.expect("info");
    cjs.get_stream(JOB_STREAM)
        .await
        .expect("job stream still there")
        .get_consumer::<jetstream::consumer::pull::Config>(JOB_CONSUMER)
        .await
        .expect("job consumer still there");
    let creg = cjs.get_key_value(WORKER_BUCKET).await.expect("registry");
    assert_eq!(creg.get("h2").await.expect("read"), None);
}

#[tokio::test]
async fn client_submits_and_reads_receipts_only() {
    let (nats, coordinator) = cluster().await;
    let mut client = Conn::open(&nats.client()).await;
    let js = client.js();
    js.publish(TX_SUBJECT, "{}".into())
        .await
        .expect("publish tx")
        .await
        .expect("tx stored");
    let subject = receipt_subject("0xab");
    let mut live = client.client.subscribe(subject.clone()).await.expect("sub");
    // A round trip, so the server has the subscription before anything is published
    // (`flush` only writes the socket).
    let _ = js
        .get_stream_no_info(pulse_protocol::RECEIPT_STREAM)
        .await
        .expect("stream handle")
        .direct_get_last_for_subject(receipt_subject("0x00"))
        .await;
    coordinator
        .js()
        .publish(subject.clone(), "accepted".into())
        .await
        .expect("publish")
        .await
        .expect("stored");
    let got = tokio::time::timeout(WAIT, live.next())
        .await
        .expect("receipt in time")
        .expect("receipt");
    assert_eq!(&got.payload[..], b"accepted");
    let stored = js
        .get_stream_no_info(pulse_protocol::RECEIPT_STREAM)
        .await
        .expect("stream handle")
        .direct_get_last_for_subject(&subject)
        .await
        .expect("stored receipt");
    assert_eq!(&stored.payload[..], b"accepted");

    client.publish_refused(&receipt_subject("0xcd")).await;
    client.publish_refused(&job_subject("c1")).await;
    client.publish_refused(RESULT_SUBJECT).await;
    client.publish_refused("pulse.journal.1").await;
    client.subscribe_refused("pulse.jobs.>").await;
    client.subscribe_refused("pulse.journal.>").await;
    client.subscribe_refused("_INBOX.>").await;
    assert!(js.get_stream(TX_STREAM).await.is_err());
    client
        .refused("stream info", &format!("$JS.API.STREAM.INFO.{TX_STREAM}"))
        .await;
}

#[tokio::test]
async fn operator_monitors_streams_and_cannot_touch_the_protocol() {
    let (nats, _coordinator) = cluster().await;
    let endpoint = nats.operator();
    let mut operator = Conn::open(&endpoint).await;
    let answer = operator
        .client
        .request(
            "$SYS.REQ.SERVER.PING.JSZ",
            r#"{"accounts":true,"streams":true,"consumer":true}"#.into(),
        )
        .await
        .expect("jsz");
    let text = String::from_utf8_lossy(&answer.payload);
    assert!(
        text.contains(TX_STREAM) && text.contains(JOB_CONSUMER),
        "{text}"
    );

    operator.publish_refused(TX_SUBJECT).await;
    operator.publish_refused(&receipt_subject("0xab")).await;
    operator
        .publish_refused("$SYS.REQ.SERVER.PING.PROFILEZ")
        .await;
    let server_id = serde_json::from_slice::<serde_json::Value>(&answer.payload)
        .ok()
        .and_then(|v| v["server"]["id"].as_str().map(str::to_owned))
        .expect("server id in jsz");
    operator
        .publish_refused(&format!("$SYS.REQ.SERVER.{server_id}.RELOAD"))
        .await;
}

#[tokio::test]
async fn anonymous_and_unverified_connections_are_refused() {
    let nats = Nats::start();
    let good = nats.client();

    let anonymous = NatsEndpoint {
        credentials: None,
        ..good.clone()
    };
    let e = anonymous.connect("anon").await.expect_err("anonymous");
    assert!(e.to_string().contains("refused these credentials"), "{e}");

    let no_ca = NatsEndpoint {
        ca: None,
        ..good.clone()
    };
    let e = no_ca
        .connect_with(ConnectOptions::new().require_tls(true))
        .await
        .expect_err("server not verified without the CA");
    assert!(e.to_string().contains("--nats-ca"), "{e}");

    // A CA that did not sign the server's certificate.
    let other = tempfile::tempdir().expect("tempdir");
    let other_ca = pulse_access::tls::make_dev_tls(other.path(), &["127.0.0.1".into()])
        .expect("another CA")
        .ca;
    let wrong = NatsEndpoint {
        ca: Some(other_ca),
        ..good.clone()
    };
    assert!(wrong.connect("wrong-ca").await.is_err());

    // A plain-text client is refused by the server, which requires TLS.
    let plain = async_nats::ConnectOptions::new()
        .connect(format!("nats://127.0.0.1:{}", nats.port()))
        .await;
    assert!(plain.is_err(), "plain text accepted");

    good.connect("good").await.expect("the client connects");
}

#[tokio::test]
async fn a_revoked_worker_is_cut_off_and_the_others_stay() {
    let (mut nats, _coordinator) = cluster().await;
    let w1 = Conn::open(&nats.worker("w1")).await;
    let w2 = Conn::open(&nats.worker("w2")).await;
    let w1_endpoint = nats.worker("w1");
    nats.revoke(Role::Worker, "w1");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while w1.client.connection_state() == async_nats::connection::State::Connected {
        assert!(tokio::time::Instant::now() < deadline, "w1 still connected");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !w1_endpoint.credentials.as_ref().is_some_and(|p| p.exists()),
        "the revoked credentials file is gone"
    );
    w2.js()
        .publish(RESULT_SUBJECT, "still here".into())
        .await
        .expect("w2 publishes")
        .await
        .expect("w2 stored");
    assert_eq!(
        w2.client.connection_state(),
        async_nats::connection::State::Connected
    );
}

#[tokio::test]
async fn ceremony_participants_read_their_turns_and_announce_only_their_own_contributions() {
    use pulse_protocol::ceremony::{
        CEREMONY_STREAM, ceremony_stream, contribution_subject, turn_subject, verdict_subject,
    };
    let (mut nats, mut coordinator) = cluster().await;
    let host = coordinator.js();
    host.create_or_update_stream(ceremony_stream())
        .await
        .expect("the host makes the ceremony stream");
    for subject in [turn_subject("h1"), verdict_subject("h1")] {
        host.publish(subject, "for h1".into())
            .await
            .expect("publish")
            .await
            .expect("stored");
    }
    let mut worker = Conn::open(&nats.worker("h1")).await;
    let js = worker.js();
    let stream = js
        .get_stream_no_info(CEREMONY_STREAM)
        .await
        .expect("stream handle");
    for subject in [turn_subject("h1"), verdict_subject("h1")] {
        let got = stream
            .direct_get_last_for_subject(&subject)
            .await
            .unwrap_or_else(|e| panic!("h1 reads {subject}: {e}"));
        assert_eq!(&got.payload[..], b"for h1");
    }
    js.publish(contribution_subject("h1"), "mine".into())
        .await
        .expect("publish")
        .await
        .expect("h1's contribution stored");
    let got = host
        .get_stream_no_info(CEREMONY_STREAM)
        .await
        .expect("stream")
        .direct_get_last_for_subject(contribution_subject("h1"))
        .await
        .expect("the host reads h1's contribution");
    assert_eq!(&got.payload[..], b"mine");

    // Another participant's subjects, and the host's, are refused.
    worker.publish_refused(&contribution_subject("h2")).await;
    worker.publish_refused(&turn_subject("h1")).await;
    worker.publish_refused(&verdict_subject("h1")).await;
    assert!(
        stream
            .direct_get_last_for_subject(turn_subject("h2"))
            .await
            .is_err(),
        "h1 reads h2's turn"
    );
    // The host never announces a participant's contribution.
    coordinator
        .publish_refused(&contribution_subject("h1"))
        .await;
}
