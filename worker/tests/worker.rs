//! The worker against a real nats-server laid out as the coordinator lays it out, with a real
//! chunk-circuit key and real chunk witnesses: proofs that verify, bad messages that do not
//! stop it, failures reported, a crashed worker's job finished by another, NATS restarted
//! under it, a clean shutdown; a key's constraint matrices checked when it loads.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use pulse_circuits::artifacts::{self, Hash32};
use pulse_protocol::nats::{LayoutOptions, ensure_layout};
use pulse_protocol::{JobOutcome, WorkerInfo, encode};
use pulse_testkit::Nats;
use pulse_testkit::NatsEndpoint;
use pulse_worker::{Hardware, Loaded, WorkerConfig, WorkerSummary};

const SOON: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_are_proved_and_bad_messages_do_not_stop_the_worker() {
    init_tracing();
    let (mut nats, js) = nats_with_layout().await;

    let wrong_version = String::from_utf8(encode(&job(1)))
        .expect("utf8")
        .replacen("\"v\":1", "\"v\":2", 1);
    let mut wrong_shape = job(2);
    wrong_shape.job_id = "b1-c2-shape".into();
    let extra = wrong_shape.witness.slots[0].clone();
    wrong_shape.witness.slots.push(extra);
    let mut wrong_vk = job(2);
    wrong_vk.job_id = "b1-c2-vk".into();
    wrong_vk.vk_hash = Hash32([7; 32]).to_hex();

    publish_raw(&js, b"this is not json".to_vec()).await;
    publish_job(&js, &job(0)).await;
    publish_raw(&js, wrong_version.into_bytes()).await;
    publish_job(&js, &job(1)).await;
    publish_job(&js, &wrong_shape).await;
    publish_job(&js, &wrong_vk).await;
    publish_job(&js, &job(2)).await;

    let cache = tempfile::tempdir().expect("tempdir");
    let mut config = config(&mut nats, "hospital-a", &cache);
    config.max_jobs = Some(5);
    let (_token, handle) = spawn_worker(config);
    let summary = finished(handle, SOON).await;
    assert_eq!(
        summary,
        WorkerSummary {
            jobs_done: 3,
            jobs_failed: 2,
            poison_messages: 2,
            jobs_handed_back: 0
        }
    );

    let results = take_results(&js, 5, SOON).await;
    let by_id: HashMap<_, _> = results.iter().map(|r| (r.job_id.as_str(), r)).collect();
    assert_eq!(by_id.len(), 5, "{results:?}");
    for chunk in 0..3 {
        let r = by_id[format!("b1-c{chunk}-a0").as_str()];
        assert_eq!(r.worker_id, "hospital-a");
        check_proved(r, &fixture().chain[chunk]);
    }
    let reason = |id: &str| match &by_id[id].outcome {
        JobOutcome::Failed { reason } => reason.clone(),
        other => panic!("expected {id} to fail, got {other:?}"),
    };
    let shape = reason("b1-c2-shape");
    assert!(
        shape.contains("2 slots") && shape.contains("has 1"),
        "{shape}"
    );
    let vk = reason("b1-c2-vk");
    assert!(vk.contains("verifying key"), "{vk}");

    // Everything was acknowledged or terminated: nothing is left to redeliver.
    assert_eq!(jobs_left(&js).await, 0);
    // A clean stop deregisters.
    assert_eq!(
        registry(&js).await.get("hospital-a").await.expect("get"),
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unprovable_witness_is_reported_and_goes_back_to_the_queue() {
    init_tracing();
    let (mut nats, js) = nats_with_layout().await;
    // Right shape, wrong claim: the roots after the chunk are those before it.
    let mut lie = job(1);
    lie.witness.roots_after = lie.witness.roots_before;
    publish_job(&js, &lie).await;

    let cache = tempfile::tempdir().expect("tempdir");
    let mut config = config(&mut nats, "hospital-b", &cache);
    config.max_jobs = Some(1);
    let (_token, handle) = spawn_worker(config);
    let summary = finished(handle, SOON).await;
    assert_eq!(summary.jobs_failed, 1);
    assert_eq!(summary.jobs_done, 0);

    let results = take_results(&js, 1, SOON).await;
    match &results[0].outcome {
        JobOutcome::Failed { reason } => assert!(reason.contains("satisfy"), "{reason}"),
        other => panic!("expected a failure, got {other:?}"),
    }
    // Not acknowledged: handed back for another try (after the retry delay).
    assert_eq!(jobs_left(&js).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_workers_job_is_finished_by_another_after_its_lease() {
    init_tracing();
    let (mut nats, js) = nats_with_layout().await;
    publish_job(&js, &job(0)).await;

    // Worker A takes the job and dies mid-proof (its key is loaded, so it is proving),
    // without any cleanup.
    let cache_a = tempfile::tempdir().expect("tempdir");
    let (_token_a, handle_a) = spawn_worker(config(&mut nats, "crashy", &cache_a));
    let busy = watch_for_entry(&js, "crashy", SOON, |i| {
        i.current_job.is_some() && !i.circuits.is_empty()
    })
    .await;
    handle_a.abort();
    let _ = handle_a.await;
    assert_eq!(busy.current_job.as_deref(), Some("b1-c0-a0"));
    assert_eq!(
        busy.circuits,
        [fixture().keys.manifest.circuit_id.to_string()]
    );

    // Worker B gets it once A's lease runs out, and proves it.
    let cache_b = tempfile::tempdir().expect("tempdir");
    let mut config_b = config(&mut nats, "steady", &cache_b);
    config_b.max_jobs = Some(1);
    let started = std::time::Instant::now();
    let (_token_b, handle_b) = spawn_worker(config_b);
    let summary = finished(handle_b, SOON).await;
    assert_eq!(summary.jobs_done, 1);
    assert!(
        started.elapsed() >= LEASE / 2,
        "the job came back only after the lease"
    );
    // One result, from B: A's proof, if it finished after the crash, went nowhere.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let results = take_results(&js, 1, SOON).await;
    assert_eq!(results[0].worker_id, "steady");
    check_proved(&results[0], &fixture().chain[0]);
    assert_eq!(jobs_left(&js).await, 0);
    let mut results_stream = js
        .get_stream(pulse_protocol::RESULT_STREAM)
        .await
        .expect("results");
    assert_eq!(
        results_stream.info().await.expect("info").state.messages,
        0,
        "no other result"
    );

    // A crashed worker's entry stays until it expires.
    assert!(
        registry(&js)
            .await
            .get("crashy")
            .await
            .expect("get")
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_rides_out_a_nats_restart() {
    init_tracing();
    let (mut nats, js) = nats_with_layout().await;
    let cache = tempfile::tempdir().expect("tempdir");
    let mut config = config(&mut nats, "hospital-c", &cache);
    config.max_jobs = Some(1);
    let (_token, handle) = spawn_worker(config);
    wait_for_entry(&js, "hospital-c", SOON, |_| true).await;

    // Idle, pulling, when the server goes away and comes back.
    tokio::task::block_in_place(|| nats.restart());
    publish_job(&js, &job(2)).await;

    let summary = finished(handle, SOON).await;
    assert_eq!(summary.jobs_done, 1);
    let results = take_results(&js, 1, SOON).await;
    check_proved(&results[0], &fixture().chain[2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_waits_for_the_coordinator_and_deregisters_on_shutdown() {
    init_tracing();
    let mut nats = Nats::start();
    let client = nats
        .coordinator()
        .connect("coordinator")
        .await
        .expect("connect");
    let js = async_nats::jetstream::new(client);

    let cache = tempfile::tempdir().expect("tempdir");
    let (token, handle) = spawn_worker(config(&mut nats, "early-bird", &cache));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!handle.is_finished(), "the worker waits for the layout");

    ensure_layout(&js, LayoutOptions::default())
        .await
        .expect("layout");
    let info: WorkerInfo = wait_for_entry(&js, "early-bird", SOON, |_| true).await;
    assert_eq!(info.backend, "cpu");
    assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
    assert!(info.device.contains("threads"), "{}", info.device);
    assert!(info.memory_bytes > 0);
    assert_eq!(info.current_job, None);
    assert_eq!(info.jobs_done, 0);

    token.cancel();
    let summary = finished(handle, SOON).await;
    assert_eq!(summary, WorkerSummary::default());
    assert_eq!(
        registry(&js).await.get("early-bird").await.expect("get"),
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_mid_job_hands_the_job_back() {
    init_tracing();
    let (mut nats, js) = nats_with_layout().await;
    publish_job(&js, &job(1)).await;
    let cache = tempfile::tempdir().expect("tempdir");
    let mut config = config(&mut nats, "short-grace", &cache);
    config.shutdown_grace = Duration::ZERO;
    let (token, handle) = spawn_worker(config);
    wait_for_entry(&js, "short-grace", SOON, |i| i.current_job.is_some()).await;
    token.cancel();
    let summary = finished(handle, SOON).await;
    // The job was picked before its key was even loaded: too late to finish with no grace.
    assert_eq!(
        summary.jobs_handed_back + summary.jobs_done,
        1,
        "{summary:?}"
    );
    if summary.jobs_handed_back == 1 {
        assert_eq!(jobs_left(&js).await, 1, "the job is back in the queue");
        // Another worker can take it at once.
        let cache2 = tempfile::tempdir().expect("tempdir");
        let mut again = common::config(&mut nats, "next", &cache2);
        again.max_jobs = Some(1);
        let (_t, h) = spawn_worker(again);
        assert_eq!(finished(h, SOON).await.jobs_done, 1);
    }
    let results = take_results(&js, 1, SOON).await;
    check_proved(&results[0], &fixture().chain[1]);
    assert_eq!(
        registry(&js).await.get("short-grace").await.expect("get"),
        None
    );
}

#[tokio::test]
async fn an_unreachable_server_is_a_clear_error() {
    let port = pulse_testkit::free_port();
    let cache = tempfile::tempdir().expect("tempdir");
    let mut config = WorkerConfig::new(
        NatsEndpoint::new(format!("nats://127.0.0.1:{port}")),
        "lonely",
        cache.path().join("keys"),
    );
    config.connect_timeout = Duration::from_secs(1);
    let err = pulse_worker::run(config, tokio_util::sync::CancellationToken::new())
        .await
        .expect_err("nothing listens");
    let text = format!("{err:#}");
    assert!(text.contains("could not reach NATS"), "{text}");
    assert!(text.contains(&port.to_string()), "{text}");

    let mut bad = WorkerConfig::new(
        NatsEndpoint::new("nats://127.0.0.1:1"),
        "no spaces allowed",
        "/tmp/x",
    );
    bad.max_jobs = Some(1);
    let err = pulse_worker::run(bad, tokio_util::sync::CancellationToken::new())
        .await
        .expect_err("bad id");
    assert!(format!("{err:#}").contains("worker id"), "{err:#}");
}

/// A key cache entry's constraint matrices are used when they check out and refused, with
/// the file named, when they were altered or lost; the key still proves without them when
/// its manifest names none (an entry from before keys came with them).
#[test]
fn the_constraint_matrices_of_a_key_are_checked_at_load() {
    let f = fixture();
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("entry");
    std::fs::create_dir(&dir).expect("mkdir");
    for entry in std::fs::read_dir(&f.key_dir).expect("read the key dir") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), dir.join(entry.file_name())).expect("copy");
    }
    let r1cs_path = dir.join(artifacts::CONSTRAINTS_FILE);
    let good = std::fs::read(&r1cs_path).expect("the key dir has its matrices");

    let loaded = Loaded::load(&dir, &Hardware::Cpu).expect("loads with its matrices");
    let proved = loaded.prove(f.chain[0].clone()).expect("proved");
    check_artifact(&proved.artifact, &f.chain[0]);

    let mut bad = good.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    std::fs::write(&r1cs_path, &bad).expect("alter");
    let err = Loaded::load(&dir, &Hardware::Cpu)
        .err()
        .expect("altered matrices are refused");
    assert!(err.to_string().contains("constraints.r1cs"), "{err}");

    std::fs::remove_file(&r1cs_path).expect("remove");
    let err = Loaded::load(&dir, &Hardware::Cpu)
        .err()
        .expect("missing matrices are refused");
    assert!(err.to_string().contains("constraints.r1cs"), "{err}");

    // A manifest without `constraints_hash`: the prover builds the matrices itself.
    let manifest_path = dir.join(artifacts::MANIFEST_FILE);
    let mut manifest: artifacts::Manifest =
        serde_json::from_slice(&std::fs::read(&manifest_path).expect("read")).expect("manifest");
    manifest.constraints_hash = None;
    std::fs::write(&manifest_path, serde_json::to_vec(&manifest).expect("json")).expect("write");
    let loaded = Loaded::load(&dir, &Hardware::Cpu).expect("loads without matrices");
    let proved = loaded.prove(f.chain[1].clone()).expect("proved");
    check_artifact(&proved.artifact, &f.chain[1]);
}
