//! The worker on a GPU: OpenCL device 0 by default (PoCL in CI), `PULSE_GPU_BACKEND=cuda`
//! on a CUDA machine, `PULSE_GPU_DEVICE` for another device. The tests never skip: a
//! missing device fails them with what to install.
//!
//! A key loaded onto the device proves chunks that verify, through the engine and through
//! the whole job pipeline against a real nats-server; the worker names its device in its
//! registration and its metrics; a key or a job that does not fit the GPU's memory budget
//! is proved on the CPU, and counted; a GPU asked for by name that cannot be opened stops
//! the worker before it connects to anything.

mod common;

use std::sync::Arc;
use std::time::Duration;

use ark_bn254::Bn254;
use ark_groth16::ProvingKey;
use common::*;
use pulse_gpu::{Device, GpuBackend};
use pulse_prover::{BackendError, ProveError, Prover};
use pulse_worker::{BackendKind, Hardware, Loaded, WorkerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SOON: Duration = Duration::from_secs(300);

/// The GPU backend the tests run on.
fn gpu_kind() -> BackendKind {
    match std::env::var("PULSE_GPU_BACKEND").as_deref() {
        Ok("cuda") => BackendKind::Cuda,
        Ok("opencl") | Err(_) => BackendKind::OpenCl,
        Ok(other) => panic!("PULSE_GPU_BACKEND={other}: expected `opencl` or `cuda`"),
    }
}

fn gpu_index() -> Option<usize> {
    std::env::var("PULSE_GPU_DEVICE")
        .ok()
        .map(|s| s.parse().expect("PULSE_GPU_DEVICE is a device number"))
}

fn open_gpu(memory_limit: Option<u64>) -> Hardware {
    Hardware::open(gpu_kind(), gpu_index(), memory_limit).unwrap_or_else(|e| {
        panic!(
            "no {} device ({e}); run scripts/deps, which installs PoCL for OpenCL (CUDA needs an NVIDIA GPU and driver)",
            gpu_kind()
        )
    })
}

/// How the device's label starts: `opencl:0 (`.
fn label_prefix() -> String {
    format!("{}:{} (", gpu_kind(), gpu_index().unwrap_or(0))
}

fn gpu_config(
    nats: &mut pulse_testkit::Nats,
    worker_id: &str,
    cache: &tempfile::TempDir,
) -> WorkerConfig {
    let mut c = config(nats, worker_id, cache);
    c.backend = gpu_kind();
    c.device = gpu_index();
    c.metrics_addr = Some(std::net::SocketAddr::from((
        [127, 0, 0, 1],
        pulse_testkit::free_port(),
    )));
    c
}

/// `GET /metrics` from a worker's listener.
async fn scrape(config: &WorkerConfig) -> String {
    let addr = config.metrics_addr.expect("the worker serves metrics");
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to the metrics listener");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: worker\r\nConnection: close\r\n\r\n")
        .await
        .expect("send the request");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .expect("read the response");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
}

/// The value of the one series of `family` whose labels include every `label=value` of
/// `labels`.
fn sample(text: &str, family: &str, labels: &[(&str, &str)]) -> f64 {
    let wanted: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    let mut found = text.lines().filter(|line| {
        line.strip_prefix(family)
            .is_some_and(|rest| rest.starts_with('{'))
            && wanted.iter().all(|w| line.contains(w.as_str()))
    });
    let line = found
        .next()
        .unwrap_or_else(|| panic!("no series {family}{labels:?} in:\n{text}"));
    assert!(found.next().is_none(), "several series {family}{labels:?}");
    line.rsplit_once(' ')
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or_else(|| panic!("not a sample: {line}"))
}

#[test]
fn a_key_on_the_gpu_proves_chunks_that_verify() {
    init_tracing();
    let f = fixture();
    let hardware = open_gpu(None);
    assert_eq!(hardware.name(), gpu_kind().name());
    let loaded = Loaded::load(&f.key_dir, &hardware).expect("the key goes onto the device");
    assert_eq!(loaded.proves_on(), gpu_kind().name());
    // The first proof builds the constraint matrices, the second reuses them.
    for chunk in 0..2 {
        let proved = loaded
            .prove(f.chain[chunk].clone())
            .unwrap_or_else(|e| panic!("chunk {chunk}: {e}"));
        assert_eq!(proved.backend, gpu_kind().name());
        assert_eq!(proved.gpu_fallback, None);
        check_artifact(&proved.artifact, &f.chain[chunk]);
    }
}

/// The smallest memory budget (to within 1 KiB) whose GPU backend takes the key's bases.
fn smallest_budget_for(device: &Arc<dyn Device>, pk: &ProvingKey<Bn254>) -> u64 {
    let fits =
        |limit: u64| match Prover::new(GpuBackend::on(device.clone(), Some(limit)), pk.clone()) {
            Ok(_) => true,
            Err(ProveError::Backend(BackendError::OutOfMemory(_))) => false,
            Err(other) => panic!("preparing the key with a budget of {limit} bytes: {other}"),
        };
    let (mut lo, mut hi) = (64 << 10, 1 << 30);
    assert!(
        !fits(lo) && fits(hi),
        "the key needs between 64 KiB and 1 GiB"
    );
    while hi - lo > 1024 {
        let mid = lo + (hi - lo) / 2;
        if fits(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    hi
}

#[test]
fn a_key_or_a_job_too_large_for_the_gpu_budget_is_proved_on_the_cpu() {
    init_tracing();
    let f = fixture();

    // A budget that cannot hold the key: it is prepared on the CPU from the start.
    let tiny = open_gpu(Some(64 << 10));
    let loaded = Loaded::load(&f.key_dir, &tiny).expect("the key loads, on the CPU");
    assert_eq!(loaded.proves_on(), "cpu");
    let proved = loaded.prove(f.chain[0].clone()).expect("proved on the CPU");
    assert_eq!(proved.backend, "cpu");
    let reason = proved.gpu_fallback.expect("the fallback is reported");
    assert!(reason.contains("out of device memory"), "{reason}");
    check_artifact(&proved.artifact, &f.chain[0]);
    drop(loaded);

    // A budget that holds the key's bases but not a proof's scratch memory: the first job
    // runs out of memory on the device and is proved on the CPU, and so is the next.
    let Hardware::Gpu { device, .. } = open_gpu(None) else {
        panic!("a GPU backend opens a GPU");
    };
    let limit = smallest_budget_for(&device, &f.keys.pk);
    let tight = Hardware::Gpu {
        device,
        memory_limit: Some(limit),
    };
    let loaded = Loaded::load(&f.key_dir, &tight).expect("the key fits the budget");
    assert_eq!(loaded.proves_on(), gpu_kind().name(), "budget {limit}");
    for chunk in 1..3 {
        let proved = loaded
            .prove(f.chain[chunk].clone())
            .unwrap_or_else(|e| panic!("chunk {chunk}: {e}"));
        assert_eq!(proved.backend, "cpu", "chunk {chunk}, budget {limit}");
        let reason = proved.gpu_fallback.expect("the fallback is reported");
        assert!(reason.contains("out of device memory"), "{reason}");
        check_artifact(&proved.artifact, &f.chain[chunk]);
        assert_eq!(loaded.proves_on(), "cpu");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gpu_worker_proves_jobs_and_names_its_device() {
    init_tracing();
    let (mut nats, js) = nats_with_layout().await;
    let cache = tempfile::tempdir().expect("tempdir");
    let mut config = gpu_config(&mut nats, "hospital-gpu", &cache);
    config.max_jobs = Some(2);
    let (_token, handle) = spawn_worker(config.clone());

    let info = wait_for_entry(&js, "hospital-gpu", SOON, |_| true).await;
    assert_eq!(info.backend, gpu_kind().name());
    assert!(
        info.device.starts_with(&label_prefix()),
        "the registration names the device: {}",
        info.device
    );
    assert!(info.memory_bytes > 0);
    publish_job(&js, &job(0)).await;
    publish_job(&js, &job(1)).await;

    let summary = finished(handle, SOON).await;
    assert_eq!(summary.jobs_done, 2, "{summary:?}");
    let mut results = take_results(&js, 2, SOON).await;
    results.sort_by(|a, b| a.job_id.cmp(&b.job_id));
    for (chunk, result) in results.iter().enumerate() {
        assert_eq!(result.worker_id, "hospital-gpu");
        check_proved_by(result, &fixture().chain[chunk], gpu_kind().name());
    }

    let text = scrape(&config).await;
    let device = info.device.as_str();
    let backend = gpu_kind().name();
    assert_eq!(
        sample(
            &text,
            "pulse_worker_info",
            &[("backend", backend), ("device", device)]
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            "pulse_worker_proof_duration_seconds_count",
            &[("backend", backend), ("stage", "prove")]
        ),
        2.0
    );
    assert_eq!(
        sample(
            &text,
            "pulse_worker_gpu_fallbacks_total",
            &[("reason", "out_of_memory")]
        ),
        0.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gpu_worker_short_of_memory_proves_on_the_cpu_and_counts_it() {
    init_tracing();
    let (mut nats, js) = nats_with_layout().await;
    publish_job(&js, &job(2)).await;
    let cache = tempfile::tempdir().expect("tempdir");
    let mut config = gpu_config(&mut nats, "shared-gpu", &cache);
    config.gpu_memory_limit = Some(64 << 10);
    config.max_jobs = Some(1);
    let (_token, handle) = spawn_worker(config.clone());

    let summary = finished(handle, SOON).await;
    assert_eq!(summary.jobs_done, 1, "{summary:?}");
    let results = take_results(&js, 1, SOON).await;
    check_proved_by(&results[0], &fixture().chain[2], "cpu");

    let text = scrape(&config).await;
    assert_eq!(
        sample(
            &text,
            "pulse_worker_gpu_fallbacks_total",
            &[("reason", "out_of_memory"), ("worker", "shared-gpu")]
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            "pulse_worker_proof_duration_seconds_count",
            &[("backend", "cpu"), ("stage", "prove")]
        ),
        1.0
    );
    // Still a GPU worker, whose device is named.
    let info_line = text
        .lines()
        .find(|l| l.starts_with("pulse_worker_info{"))
        .expect("pulse_worker_info");
    assert!(
        info_line.contains(&format!("backend=\"{}\"", gpu_kind()))
            && info_line.contains(&format!("device=\"{}", label_prefix())),
        "{info_line}"
    );
}

#[tokio::test]
async fn a_gpu_asked_for_by_name_and_missing_stops_the_worker_before_it_connects() {
    init_tracing();
    let cache = tempfile::tempdir().expect("tempdir");
    // Nothing listens there: the worker must fail on the device, not on NATS.
    let mut config = WorkerConfig::new(
        pulse_testkit::NatsEndpoint::new(format!(
            "nats://127.0.0.1:{}",
            pulse_testkit::free_port()
        )),
        "no-such-gpu",
        cache.path().join("keys"),
    );
    config.backend = gpu_kind();
    config.device = Some(99);
    config.connect_timeout = Duration::from_secs(30);
    let started = std::time::Instant::now();
    let err = pulse_worker::run(config, tokio_util::sync::CancellationToken::new())
        .await
        .expect_err("there is no device 99");
    let text = format!("{err:#}");
    assert!(
        text.contains(&format!("no {} device number 99", gpu_kind())),
        "{text}"
    );
    assert!(!text.contains("NATS"), "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "it did not try NATS"
    );
}

#[test]
fn cuda_is_opened_or_refused_by_name_and_auto_falls_back_to_the_cpu_only_without_a_gpu() {
    init_tracing();
    let cuda_devices = pulse_gpu::cuda::devices().unwrap_or_default();
    match Hardware::open(BackendKind::Cuda, None, None) {
        Ok(hardware) => {
            assert!(
                !cuda_devices.is_empty(),
                "CUDA opened without a CUDA device"
            );
            assert_eq!(hardware.name(), "cuda");
        }
        Err(e) => {
            assert!(cuda_devices.is_empty(), "a CUDA device is there but: {e}");
            assert!(e.to_string().contains("cuda"), "{e}");
        }
    }

    let has_gpu = !cuda_devices.is_empty() || pulse_gpu::opencl::first_gpu().is_ok();
    let auto = Hardware::open(BackendKind::Auto, None, None).expect("auto always opens");
    assert_eq!(auto.name() != "cpu", has_gpu, "auto chose {auto:?}");
    // Whatever it chose proves.
    let f = fixture();
    let loaded = Loaded::load(&f.key_dir, &auto).expect("load");
    let proved = loaded.prove(f.chain[0].clone()).expect("prove");
    assert_eq!(proved.backend, auto.name());
    check_artifact(&proved.artifact, &f.chain[0]);
}
