//! Shared fixture for the worker tests: a real chunk-circuit key (1 slot, depth 3) and a
//! real chain of three chunk witnesses, made once per test binary; helpers to set up NATS
//! as the coordinator would, publish jobs, and read results.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ark_snark::SNARK;
use async_nats::jetstream::{self, consumer::PullConsumer, kv};
use futures::StreamExt;
use pulse_circuits::artifacts::{self, CircuitParams, KeyArtifacts, ProofArtifact};
use pulse_circuits::circuit::{ChunkCircuit, ChunkWitness};
use pulse_circuits::sample;
use pulse_protocol::nats::{LayoutOptions, ensure_layout};
use pulse_protocol::{
    JOB_STREAM, JobOutcome, JobResult, ProvingJob, RESULT_CONSUMER, RESULT_STREAM, WORKER_BUCKET,
    WorkerInfo, decode, encode, job_subject,
};
use pulse_testkit::Nats;
use pulse_worker::{WorkerConfig, WorkerSummary};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

/// Leases in the tests: short, so that redelivery is quick.
pub const LEASE: Duration = Duration::from_secs(2);

pub struct Fixture {
    pub params: CircuitParams,
    pub keys: KeyArtifacts,
    pub key_dir: PathBuf,
    pub chain: Vec<ChunkWitness>,
    _dir: TempDir,
}

pub fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let params = CircuitParams::new(1, 3);
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let keys = artifacts::setup(ChunkCircuit::blank(params), params, &mut rng).expect("setup");
        let dir = tempfile::tempdir().expect("tempdir");
        let key_dir = dir.path().join("keys");
        keys.write(&key_dir).expect("write keys");
        let chain = sample::registration_chain(
            dir.path(),
            params,
            3,
            11,
            1_800_000_000,
            &sample::offline_deployment(),
        )
        .expect("sample chain")
        .chunks;
        Fixture {
            params,
            keys,
            key_dir,
            chain,
            _dir: dir,
        }
    })
}

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "pulse_worker=info,pulse_protocol=info".into()),
        )
        .try_init();
}

/// The job for chunk `chunk` of the fixture chain.
pub fn job(chunk: usize) -> ProvingJob {
    let f = fixture();
    ProvingJob {
        job_id: format!("b1-c{chunk}-a0"),
        batch: 1,
        chunk: chunk as u32,
        attempt: 0,
        circuit_id: f.keys.manifest.circuit_id.to_string(),
        slots: f.params.slots as u32,
        depth: f.params.depth as u32,
        pk_hash: f.keys.manifest.pk_hash.to_hex(),
        vk_hash: f.keys.manifest.vk_hash.to_hex(),
        witness: f.chain[chunk].clone(),
        split: Vec::new(),
    }
}

/// A NATS server with the coordinator's layout (lease [`LEASE`], 3 deliveries) and the
/// fixture's key published.
pub async fn nats_with_layout() -> (Nats, jetstream::Context) {
    let nats = Nats::start();
    let client = nats
        .coordinator()
        .connect("coordinator")
        .await
        .expect("connect");
    let js = jetstream::new(client);
    ensure_layout(
        &js,
        LayoutOptions {
            job_lease: LEASE,
            job_max_deliver: 3,
            replicas: 1,
        },
    )
    .await
    .expect("layout");
    pulse_protocol::keys::publish_proving_key(&js, &fixture().key_dir)
        .await
        .expect("publish key");
    (nats, js)
}

/// Publishes raw bytes on the fixture circuit's job subject, retrying while NATS is away.
pub async fn publish_raw(js: &jetstream::Context, payload: Vec<u8>) {
    let subject = job_subject(&fixture().keys.manifest.circuit_id.to_string());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let attempt = async {
            js.publish(subject.clone(), payload.clone().into())
                .await
                .map_err(|e| e.to_string())?
                .await
                .map_err(|e| e.to_string())
        };
        match attempt.await {
            Ok(_) => return,
            Err(e) if Instant::now() < deadline => {
                eprintln!("publishing a job failed ({e}); retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("cannot publish a job: {e}"),
        }
    }
}

pub async fn publish_job(js: &jetstream::Context, job: &ProvingJob) {
    publish_raw(js, encode(job)).await;
}

/// A worker configuration for tests: its own key cache, quick retries.
pub fn config(nats: &mut Nats, worker_id: &str, cache: &TempDir) -> WorkerConfig {
    let mut c = WorkerConfig::new(nats.worker(worker_id), worker_id, cache.path().join("keys"));
    c.retry_delay = Duration::from_secs(30);
    c.connect_timeout = Duration::from_secs(10);
    c
}

/// Starts a worker on a task of its own.
pub fn spawn_worker(
    config: WorkerConfig,
) -> (
    CancellationToken,
    tokio::task::JoinHandle<anyhow::Result<WorkerSummary>>,
) {
    let token = CancellationToken::new();
    let handle = tokio::spawn(pulse_worker::run(config, token.clone()));
    (token, handle)
}

/// Waits for a worker's run to end.
pub async fn finished(
    handle: tokio::task::JoinHandle<anyhow::Result<WorkerSummary>>,
    within: Duration,
) -> WorkerSummary {
    tokio::time::timeout(within, handle)
        .await
        .expect("the worker stops in time")
        .expect("the worker task does not panic")
        .expect("the worker runs without error")
}

/// Takes `n` results from the coordinator's result consumer, acknowledging them.
pub async fn take_results(js: &jetstream::Context, n: usize, within: Duration) -> Vec<JobResult> {
    let deadline = Instant::now() + within;
    let mut out = Vec::new();
    while out.len() < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} results within {within:?}: {out:?}",
            out.len()
        );
        let consumer: Result<PullConsumer, String> = async {
            js.get_stream(RESULT_STREAM)
                .await
                .map_err(|e| e.to_string())?
                .get_consumer(RESULT_CONSUMER)
                .await
                .map_err(|e| e.to_string())
        }
        .await;
        let Ok(consumer) = consumer else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let Ok(mut batch) = consumer
            .batch()
            .max_messages(n - out.len())
            .expires(Duration::from_secs(1))
            .messages()
            .await
        else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        while let Some(Ok(msg)) = batch.next().await {
            out.push(decode::<JobResult>(&msg.payload).expect("a result"));
            msg.ack().await.expect("ack result");
        }
    }
    out
}

/// Checks a `Proved` result made on the CPU backend (see [`check_proved_by`]).
pub fn check_proved(result: &JobResult, witness: &ChunkWitness) {
    check_proved_by(result, witness, "cpu");
}

/// Checks a `Proved` result: made by `backend`, the proof verifies with ark-groth16
/// against the fixture's verifying key, its public inputs are the witness's, and a
/// tampered input is refused.
pub fn check_proved_by(result: &JobResult, witness: &ChunkWitness, expected_backend: &str) {
    let JobOutcome::Proved {
        proof,
        witness_seconds,
        prove_seconds,
        backend,
    } = &result.outcome
    else {
        panic!(
            "expected a proof for {}, got {:?}",
            result.job_id, result.outcome
        );
    };
    assert_eq!(backend, expected_backend);
    assert!(*witness_seconds > 0.0 && *prove_seconds > 0.0);
    let artifact = ProofArtifact::from_json(proof).expect("proof artifact");
    check_artifact(&artifact, witness);
}

/// Checks a proof artifact of the fixture's key: it names the key's circuit and
/// verifying key, its public inputs are the witness's, ark-groth16 accepts it, and a
/// tampered input is refused.
pub fn check_artifact(artifact: &ProofArtifact, witness: &ChunkWitness) {
    let f = fixture();
    assert_eq!(artifact.circuit_id, f.keys.manifest.circuit_id);
    assert_eq!(artifact.vk_hash, f.keys.manifest.vk_hash);
    assert_eq!(artifact.public_inputs, witness.public_inputs());
    artifact
        .verify(&f.keys.manifest.circuit_id, f.keys.vk())
        .expect("the proof verifies");
    assert!(
        ark_groth16::Groth16::<ark_bn254::Bn254>::verify(
            f.keys.vk(),
            &witness.public_inputs(),
            &artifact.proof
        )
        .expect("pairing check"),
        "ark-groth16 accepts it"
    );
    let mut tampered = witness.public_inputs();
    tampered[1] += ark_bn254::Fr::from(1u64);
    assert!(
        !ark_groth16::Groth16::<ark_bn254::Bn254>::verify(f.keys.vk(), &tampered, &artifact.proof)
            .expect("pairing check"),
        "a tampered public input is refused"
    );
}

pub async fn registry(js: &jetstream::Context) -> kv::Store {
    js.get_key_value(WORKER_BUCKET)
        .await
        .expect("worker bucket")
}

/// Waits until the registry entry of `worker_id` satisfies `pred`.
pub async fn wait_for_entry(
    js: &jetstream::Context,
    worker_id: &str,
    within: Duration,
    pred: impl Fn(&WorkerInfo) -> bool,
) -> WorkerInfo {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(store) = js.get_key_value(WORKER_BUCKET).await
            && let Ok(Some(bytes)) = store.get(worker_id).await
        {
            let info = decode::<WorkerInfo>(&bytes).expect("worker info");
            if pred(&info) {
                return info;
            }
        }
        assert!(
            Instant::now() < deadline,
            "worker {worker_id} not registered as expected within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits for a registry entry of `worker_id` satisfying `pred`, watching the bucket so
/// that the entry is seen within milliseconds of its being written.
pub async fn watch_for_entry(
    js: &jetstream::Context,
    worker_id: &str,
    within: Duration,
    pred: impl Fn(&WorkerInfo) -> bool,
) -> WorkerInfo {
    let store = registry(js).await;
    let mut updates = store.watch_with_history(worker_id).await.expect("watch");
    tokio::time::timeout(within, async {
        while let Some(entry) = updates.next().await {
            let entry = entry.expect("entry");
            if entry.operation != kv::Operation::Put {
                continue;
            }
            let info = decode::<WorkerInfo>(&entry.value).expect("worker info");
            if pred(&info) {
                return info;
            }
        }
        panic!("the registry watch ended");
    })
    .await
    .unwrap_or_else(|_| panic!("worker {worker_id} not seen as expected within {within:?}"))
}

/// Messages left in the job stream.
pub async fn jobs_left(js: &jetstream::Context) -> u64 {
    let mut stream = js.get_stream(JOB_STREAM).await.expect("job stream");
    stream.info().await.expect("stream info").state.messages
}
