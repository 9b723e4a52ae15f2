//! The device the tests run on: `PULSE_GPU_BACKEND` (`opencl`, the default: PoCL in CI;
//! `cuda` on a CUDA machine) and `PULSE_GPU_DEVICE` (default 0). The tests never skip: a
//! missing device fails them with what to install.
#![allow(dead_code)]

use std::sync::Arc;

use pulse_gpu::{Api, Device, GpuBackend};

pub fn api() -> Api {
    match std::env::var("PULSE_GPU_BACKEND").as_deref() {
        Ok("cuda") => Api::Cuda,
        Ok("opencl") | Err(_) => Api::OpenCl,
        Ok(other) => panic!("PULSE_GPU_BACKEND={other}: expected `opencl` or `cuda`"),
    }
}

pub fn device() -> Arc<dyn Device> {
    let index = std::env::var("PULSE_GPU_DEVICE")
        .ok()
        .map(|s| s.parse().expect("PULSE_GPU_DEVICE is a device number"));
    pulse_gpu::open_device(api(), index).unwrap_or_else(|e| {
        panic!(
            "no {} device ({e}); run scripts/deps, which installs PoCL for OpenCL (CUDA needs an NVIDIA GPU and driver)",
            api()
        )
    })
}

pub fn backend() -> GpuBackend {
    GpuBackend::on(device(), None)
}
