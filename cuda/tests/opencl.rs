//! The kernels for real, on the OpenCL device CI has: PoCL on the CPU (installed by
//! `scripts/deps`). These tests do not skip: without an OpenCL device they fail and say
//! how to get one.


use pulse_gpu::selftest::{self, Options};
use pulse_gpu::{Api, GpuBackend};

fn backend() -> GpuBackend {
    let dev = pulse_gpu::open_device(Api::OpenCl, None).unwrap_or_else(|e| {
        panic!("no OpenCL device ({e}); run scripts/deps, which installs PoCL")
    });
    GpuBackend::on(dev, None)
}

#[test]
fn selftest_passes_on_opencl() {
    let backend = backend();
    let mut lines = Vec::new();
    let summary = selftest::run(&backend, &Options::default(), &mut |c| {
        let line = format!(
            "{} {} ({:.2} s) {}",
            if c.passed { "ok  " } else { "FAIL" },
            c.name,
            c.elapsed.as_secs_f64(),
            c.detail
        );
        eprintln!("{line}");
        lines.push(line);
    });
    assert_eq!(summary.failed, 0, "{}", lines.join("\n"));
    assert!(summary.passed >= 15, "{summary:?}");
}
