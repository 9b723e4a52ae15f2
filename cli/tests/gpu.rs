//! The GPU side of the `pulse` binary, run as an operator would: the self-test, the GPU
//! benchmarks, and a worker refusing a GPU it cannot open. The device is OpenCL device 0
//! (PoCL in CI) unless `PULSE_GPU_BACKEND=cuda` / `PULSE_GPU_DEVICE` say otherwise; the
//! tests never skip.

use std::process::{Command, Output};

fn pulse(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pulse"))
        .args(args)
        .env_remove("PULSE_WORKER_BACKEND")
        .env_remove("PULSE_WORKER_DEVICE")
        .env_remove("PULSE_GPU_MEMORY_LIMIT")
        .output()
        .expect("run pulse")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `opencl` or `cuda`.
fn backend() -> String {
    let b = std::env::var("PULSE_GPU_BACKEND").unwrap_or_else(|_| "opencl".into());
    assert!(
        b == "opencl" || b == "cuda",
        "PULSE_GPU_BACKEND={b}: expected `opencl` or `cuda`"
    );
    b
}

fn device() -> String {
    std::env::var("PULSE_GPU_DEVICE").unwrap_or_else(|_| "0".into())
}

/// `--backend B --device N`, for the test device.
fn gpu_flags() -> Vec<String> {
    vec!["--backend".into(), backend(), "--device".into(), device()]
}

fn with_gpu<'a>(args: &[&'a str], gpu: &'a [String]) -> Vec<&'a str> {
    args.iter()
        .copied()
        .chain(gpu.iter().map(String::as_str))
        .collect()
}

/// `N passed, M failed`, as numbers.
fn counts(line: &str) -> Option<(usize, usize)> {
    let (passed, rest) = line.split_once(" passed, ")?;
    let failed = rest.strip_suffix(" failed")?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(passed) || !digits(failed) {
        return None;
    }
    Some((passed.parse().ok()?, failed.parse().ok()?))
}

/// Checks a passing self-test's output: the device line, one `ok` line per check, the
/// counts.
fn check_selftest_passed(o: &Output, label_prefix: &str) {
    let out = stdout(o);
    assert!(o.status.success(), "{out}{}", stderr(o));
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines
            .first()
            .is_some_and(|l| l.starts_with(&format!("device {label_prefix}"))),
        "{out}"
    );
    let last = lines.last().copied().unwrap_or_default();
    let (passed, failed) = counts(last).unwrap_or_else(|| panic!("last line `{last}`:\n{out}"));
    assert_eq!(failed, 0, "{out}");
    // The checks, then the capacity table (24, 40, 80 GiB and the device), then the counts.
    let table = lines
        .iter()
        .position(|l| l.starts_with("largest chunk at depth 20"))
        .unwrap_or_else(|| panic!("no capacity table:\n{out}"));
    let checks = &lines[1..table];
    let sizes = &lines[table + 1..lines.len() - 1];
    assert_eq!(sizes.len(), 4, "{out}");
    for (line, size) in sizes
        .iter()
        .zip(["24 GiB", "40 GiB", "80 GiB", "this device ("])
    {
        assert!(line.trim_start().starts_with(size), "{line}");
        assert!(
            line.contains(" slots (") && line.contains("M constraints)"),
            "{line}"
        );
    }
    assert!(passed >= 10, "{out}");
    assert_eq!(checks.len(), passed, "{out}");
    for line in checks {
        assert!(line.starts_with("ok "), "{line}");
        assert!(
            line.trim_end().ends_with(" s"),
            "seconds on every line: {line}"
        );
    }
}

#[test]
fn selftest_passes_on_the_test_device_and_ends_with_the_counts() {
    let gpu = gpu_flags();
    let o = pulse(&with_gpu(&["worker", "selftest"], &gpu));
    check_selftest_passed(&o, &format!("{}:{} (", backend(), device()));
}

#[test]
fn selftest_on_cuda_checks_the_gpu_or_names_what_is_missing() {
    let o = pulse(&["worker", "selftest", "--backend", "cuda"]);
    match pulse_gpu::cuda::devices() {
        Ok(devices) if !devices.is_empty() => check_selftest_passed(&o, "cuda:0 ("),
        listed => {
            assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
            let err = stderr(&o);
            assert!(err.contains("opening cuda device 0"), "{err}");
            match listed {
                Err(pulse_gpu::GpuError::Unavailable { .. }) => {
                    assert!(err.contains("the cuda driver is not available"), "{err}");
                    assert!(err.contains("NVIDIA driver"), "says what to install: {err}");
                }
                _ => assert!(err.contains("no cuda device"), "{err}"),
            }
            assert!(!stdout(&o).contains("passed"), "no checks without a device");
        }
    }
}

/// Runs a `pulse bench … --json` and checks the GPU fields every GPU report has.
fn gpu_bench(args: &[&str]) -> serde_json::Value {
    let gpu = gpu_flags();
    let o = pulse(&with_gpu(args, &gpu));
    let out = stdout(&o);
    assert!(o.status.success(), "{out}{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_str(&out).expect("a JSON report");
    assert_eq!(report["backend"], backend().as_str(), "{report}");
    let label = report["device"].as_str().unwrap_or_default();
    assert!(
        label.starts_with(&format!("{}:{} (", backend(), device())),
        "{report}"
    );
    let (gpu_ms, cpu_ms, ratio) = (
        report["gpu_ms"].as_f64().unwrap_or(-1.0),
        report["cpu_ms"].as_f64().unwrap_or(-1.0),
        report["ratio"].as_f64().unwrap_or(-1.0),
    );
    assert!(gpu_ms > 0.0 && cpu_ms > 0.0, "{report}");
    assert!(ratio.is_finite() && ratio > 0.0, "{report}");
    assert!(
        (ratio - gpu_ms / cpu_ms).abs() < 1e-9 * ratio.max(1.0),
        "{report}"
    );
    report
}

#[test]
fn bench_msm_and_ntt_on_the_gpu_report_a_ratio_to_the_cpu() {
    let msm = gpu_bench(&[
        "bench",
        "msm",
        "--log-size",
        "10",
        "--repeats",
        "1",
        "--json",
    ]);
    assert_eq!(msm["log_size"], 10);
    let ntt = gpu_bench(&[
        "bench",
        "ntt",
        "--log-size",
        "10",
        "--repeats",
        "1",
        "--json",
    ]);
    assert_eq!(ntt["log_size"], 10);
}

#[test]
fn bench_prove_on_the_gpu_makes_the_cpus_proof() {
    let prove = gpu_bench(&[
        "bench",
        "prove",
        "--slots",
        "1",
        "--depth",
        "3",
        "--repeats",
        "1",
        "--json",
    ]);
    assert!(prove["constraints"].as_u64().unwrap_or(0) > 0, "{prove}");
    assert_eq!(prove["witness"], "real", "{prove}");
    assert!(
        prove["gpu_stages"]["msm_total"].as_f64().unwrap_or(0.0) > 0.0,
        "{prove}"
    );
}

#[test]
fn a_worker_refuses_a_gpu_it_cannot_open_and_gpu_flags_without_a_gpu() {
    let b = backend();
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = dir.path().join("keys");
    // Nothing listens on port 1: the refusal must come from the device, before NATS, and
    // before anything is written.
    let o = pulse(&[
        "worker",
        "run",
        "--id",
        "w1",
        "--nats",
        "nats://127.0.0.1:1",
        "--key-cache",
        keys.to_str().expect("utf-8 path"),
        "--backend",
        &b,
        "--device",
        "99",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains(&format!("no {b} device number 99")), "{err}");
    assert!(!err.contains("NATS"), "{err}");
    assert!(
        !keys.exists(),
        "no key cache made by a worker that did not start"
    );

    let o = pulse(&[
        "worker",
        "run",
        "--id",
        "w1",
        "--backend",
        "cpu",
        "--device",
        "1",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--device"), "{}", stderr(&o));

    let o = pulse(&["worker", "run", "--id", "w1", "--backend", "metal"]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("auto, cpu, cuda or opencl"), "{err}");

    let o = pulse(&["bench", "msm", "--backend", "cpu", "--device", "1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--device"), "{}", stderr(&o));
}
