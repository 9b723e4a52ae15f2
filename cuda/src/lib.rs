//! Pulse's GPU backend: BN254 MSM and NTT kernels written once (`kernels/`), compiled by
//! NVRTC for CUDA devices and by the OpenCL runtime for OpenCL devices, behind
//! `pulse-prover`'s backend traits.
//!
//! - [`source`]: the kernel program, assembled from `kernels/` with generated constants.
//! - [`device`]: the [`Device`] seam (allocate, copy, launch) with its two implementations,
//!   [`opencl`] (`opencl3`) and [`cuda`] (`cudarc`, NVRTC). `unsafe` lives only there.
//! - [`glv`]: the scalar split that halves the MSM's windows (GLV), with its host model.
//! - [`msm`], [`ntt`]: the host side of the algorithms, written once against [`Device`].
//! - [`backend`]: [`GpuBackend`], implementing `pulse_prover::Backend`: proving-key bases
//!   uploaded once and kept resident, memory budgeted, NTT twiddles cached on the device.
//! - [`selftest`]: the differential checks against the CPU backend that
//!   `pulse worker selftest` runs on a hospital's device.
//!
//! Nothing here links a driver at build time: both APIs are loaded at run time, so the
//! crate builds and its CPU-side tests run on a machine with no GPU; opening a device
//! there fails with [`GpuError::Unavailable`] or [`GpuError::NoDevice`].
#![warn(missing_docs)]

pub mod backend;
pub mod buckets;
pub mod cuda;
pub mod device;
pub mod glv;
pub mod msm;
pub mod ntt;
pub mod opencl;
pub mod selftest;
pub mod source;

use std::sync::Arc;

pub use backend::{GpuBackend, ProverFootprint};
pub use device::{Api, Arg, Buffer, Device, DeviceInfo, GpuError};

/// Opens device `index` (default 0) of `api` and builds the kernels for it.
///
/// # Errors
/// [`GpuError::Unavailable`] without a driver, [`GpuError::NoDevice`], [`GpuError::Build`]
/// with the compiler's log.
pub fn open_device(api: Api, index: Option<usize>) -> Result<Arc<dyn Device>, GpuError> {
    Ok(match api {
        Api::Cuda => Arc::new(cuda::CudaDevice::open(index.unwrap_or(0))?),
        Api::OpenCl => Arc::new(opencl::OpenClDevice::open(index.unwrap_or(0))?),
    })
}

/// Every device of both APIs, and for each API that has none, why.
pub fn discover() -> (Vec<DeviceInfo>, Vec<GpuError>) {
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for listed in [cuda::devices(), opencl::devices()] {
        match listed {
            Ok(devices) => found.extend(devices),
            Err(e) => missing.push(e),
        }
    }
    (found, missing)
}

/// The device `--backend auto` picks: the first CUDA device, else the first OpenCL *GPU*.
/// OpenCL CPU devices (PoCL) are not picked: on a CPU, Pulse's CPU backend is faster.
///
/// # Errors
/// [`GpuError::NoGpu`] listing what was found and why the rest was not; the errors of
/// [`open_device`] for the device picked.
pub fn open_auto_device() -> Result<Arc<dyn Device>, GpuError> {
    if let Ok(devices) = cuda::devices()
        && !devices.is_empty()
    {
        return open_device(Api::Cuda, Some(0));
    }
    if let Ok(index) = opencl::first_gpu() {
        return open_device(Api::OpenCl, Some(index));
    }
    let (found, missing) = discover();
    let mut why: Vec<String> = found
        .iter()
        .map(|d| format!("{} is not a GPU", d.label()))
        .collect();
    why.extend(missing.iter().map(ToString::to_string));
    Err(GpuError::NoGpu {
        found: if why.is_empty() {
            "no CUDA or OpenCL device".into()
        } else {
            why.join("; ")
        },
    })
}

/// [`open_auto_device`] as a backend with the default memory budget.
///
/// # Errors
/// As [`open_auto_device`].
pub fn open_auto() -> Result<GpuBackend, GpuError> {
    Ok(GpuBackend::on(open_auto_device()?, None))
}
