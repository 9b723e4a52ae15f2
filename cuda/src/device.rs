//! The seam between the GPU algorithms and the two driver APIs.
//!
//! [`Device`] is the handful of operations the MSM and NTT host code needs: allocate,
//! copy in, copy out, launch a kernel by name over a number of work items. [`crate::opencl`]
//! implements it with `opencl3`, [`crate::cuda`] with `cudarc`; the algorithms in
//! [`crate::msm`] and [`crate::ntt`] are written once against it. Operations on one device
//! run in order; [`Device::read`] returns when every operation before it has finished.

use std::any::Any;
use std::fmt;

/// Which driver API a device is reached through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Api {
    /// CUDA, kernels compiled by NVRTC.
    Cuda,
    /// OpenCL, kernels compiled by the platform's compiler.
    OpenCl,
}

impl Api {
    /// `cuda` or `opencl`, as the CLI spells it.
    pub fn name(self) -> &'static str {
        match self {
            Api::Cuda => "cuda",
            Api::OpenCl => "opencl",
        }
    }
}

impl fmt::Display for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a device is, for selection, logs and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// The API it is reached through.
    pub api: Api,
    /// Its index among that API's devices (the `--device` number).
    pub index: usize,
    /// The name the driver reports (`NVIDIA H100 80GB HBM3`, `pthread-skylake…`).
    pub name: String,
    /// Global memory in bytes.
    pub memory_bytes: u64,
    /// Compute units (streaming multiprocessors, or cores for PoCL).
    pub compute_units: u32,
}

impl DeviceInfo {
    /// `opencl:0 (name)`: how logs and the worker's registration name the device.
    pub fn label(&self) -> String {
        format!("{}:{} ({})", self.api, self.index, self.name)
    }
}

/// Errors of the GPU backend. Each says what failed and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GpuError {
    /// The driver library could not be loaded (no driver, or no ICD loader installed).
    #[error(
        "the {api} driver is not available ({reason}); install it (OpenCL: an ICD such as pocl-opencl-icd; CUDA: the NVIDIA driver) or use --backend cpu"
    )]
    Unavailable {
        /// The API.
        api: Api,
        /// The driver's or loader's message.
        reason: String,
    },
    /// The API works but has no device (or not the one asked for).
    #[error("no {api} device{}: {found}", .index.map(|i| format!(" number {i}")).unwrap_or_default())]
    NoDevice {
        /// The API.
        api: Api,
        /// The device number asked for, if one was.
        index: Option<usize>,
        /// What was found instead.
        found: String,
    },
    /// `auto` found no GPU of either API.
    #[error("no GPU found: {found}")]
    NoGpu {
        /// What was found instead, and why each API had nothing.
        found: String,
    },
    /// The kernels did not compile. `log` is the compiler's output.
    #[error("the {api} compiler rejected Pulse's kernels:\n{log}")]
    Build {
        /// The API.
        api: Api,
        /// The compiler's log.
        log: String,
    },
    /// An allocation did not fit in device memory.
    #[error(
        "out of device memory: {requested} bytes asked for, {available} available; the job falls back to the CPU backend"
    )]
    OutOfMemory {
        /// Bytes asked for.
        requested: u64,
        /// Bytes the budget had left.
        available: u64,
    },
    /// A driver call failed.
    #[error("{api} driver error in {what}: {reason}")]
    Driver {
        /// The API.
        api: Api,
        /// What the host was doing.
        what: String,
        /// The driver's message.
        reason: String,
    },
    /// The host asked for something the device code cannot do (a bug or a limit).
    #[error("{0}")]
    Unsupported(String),
}

impl From<GpuError> for pulse_prover::BackendError {
    fn from(e: GpuError) -> Self {
        match e {
            GpuError::OutOfMemory { .. } => pulse_prover::BackendError::OutOfMemory(e.to_string()),
            other => pulse_prover::BackendError::Device(other.to_string()),
        }
    }
}

/// Device memory: `bytes` long, zero-filled when allocated, freed when dropped. The
/// backend keeps its own handle inside.
pub struct Buffer {
    bytes: usize,
    inner: Box<dyn Any + Send + Sync>,
}

impl Buffer {
    /// Wraps a backend's handle.
    pub fn new(bytes: usize, inner: Box<dyn Any + Send + Sync>) -> Self {
        Self { bytes, inner }
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.bytes
    }

    /// Whether the buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.bytes == 0
    }

    /// The backend's handle, if it is a `T`.
    pub fn inner<T: 'static>(&self) -> Option<&T> {
        self.inner.downcast_ref()
    }
}

impl fmt::Debug for Buffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Buffer({} bytes)", self.bytes)
    }
}

/// A kernel argument.
#[derive(Debug, Clone, Copy)]
pub enum Arg<'a> {
    /// A device buffer (a `GLOBAL T *` parameter).
    Buf(&'a Buffer),
    /// A `uint` parameter.
    U32(u32),
}

/// A GPU (or an OpenCL CPU device) with Pulse's kernels built for it.
pub trait Device: Send + Sync {
    /// What the device is.
    fn info(&self) -> &DeviceInfo;

    /// A zero-filled buffer of `bytes` bytes.
    ///
    /// # Errors
    /// [`GpuError::OutOfMemory`] when it does not fit; driver errors.
    fn alloc(&self, bytes: usize) -> Result<Buffer, GpuError>;

    /// Copies `data` into `buf` at byte `offset`.
    ///
    /// # Errors
    /// [`GpuError::Unsupported`] when it does not fit in the buffer; driver errors.
    fn write(&self, buf: &Buffer, offset: usize, data: &[u8]) -> Result<(), GpuError>;

    /// Copies `out.len()` bytes of `buf` from byte `offset` into `out`, after every
    /// operation queued before it has finished.
    ///
    /// # Errors
    /// [`GpuError::Unsupported`] when it reads past the buffer; driver errors.
    fn read(&self, buf: &Buffer, offset: usize, out: &mut [u8]) -> Result<(), GpuError>;

    /// Queues kernel `name` over `items` work items (indices `0..items`; the kernel ignores
    /// indices past its own bound, since the launch is rounded up to whole groups).
    ///
    /// # Errors
    /// [`GpuError::Unsupported`] for an unknown kernel; driver errors.
    fn launch(&self, name: &str, items: usize, args: &[Arg<'_>]) -> Result<(), GpuError>;
}

/// Checks that `len` bytes at `offset` lie within a buffer of `size` bytes.
///
/// # Errors
/// [`GpuError::Unsupported`] naming the overrun.
pub fn check_range(size: usize, offset: usize, len: usize) -> Result<(), GpuError> {
    match offset.checked_add(len) {
        Some(end) if end <= size => Ok(()),
        _ => Err(GpuError::Unsupported(format!(
            "copy of {len} bytes at offset {offset} overruns a buffer of {size} bytes"
        ))),
    }
}
