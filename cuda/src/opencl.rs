//! The OpenCL implementation of [`Device`], over `opencl3`: NVIDIA, AMD and Intel GPUs, and
//! PoCL on CPUs (how CI runs the kernels).
//!
//! The ICD loader (`libOpenCL.so.1`) is opened at run time, so a machine without OpenCL
//! gets [`GpuError::Unavailable`] rather than a link error. Devices are numbered in
//! platform order, then device order within a platform, as `clinfo -l` lists them. The
//! program is built once per device from [`source::program`]; the platform compiler's log
//! comes back in [`GpuError::Build`]. One in-order command queue per device; kernel
//! objects are not safe to set arguments on from two threads at once, so launches take a
//! lock.
#![allow(unsafe_code)]

use std::collections::HashMap;
use std::ptr;
use std::sync::Mutex;

use opencl3::command_queue::{CommandQueue, enqueue_write_buffer};
use opencl3::context::Context;
use opencl3::device::{CL_DEVICE_TYPE_ALL, CL_DEVICE_TYPE_GPU, Device as ClDevice};
use opencl3::error_codes::{CL_MEM_OBJECT_ALLOCATION_FAILURE, CL_OUT_OF_RESOURCES, ClError};
use opencl3::event::Event;
use opencl3::kernel::Kernel;
use opencl3::memory::{Buffer as ClBuffer, CL_MEM_READ_WRITE, ClMem};
use opencl3::platform::get_platforms;
use opencl3::program::Program;
use opencl3::types::{CL_BLOCKING, cl_device_id, cl_uint};

use crate::device::{Api, Arg, Buffer, Device, DeviceInfo, GpuError, check_range};
use crate::source;

fn driver(what: &str, e: ClError) -> GpuError {
    GpuError::Driver {
        api: Api::OpenCl,
        what: what.to_string(),
        reason: e.to_string(),
    }
}

/// ICD loaders and platforms initialise themselves on the first query, and two threads
/// querying at once can see an empty platform; enumeration takes this lock.
static ENUMERATION: Mutex<()> = Mutex::new(());

/// Every OpenCL device with its id, in `clinfo -l` order.
fn all_devices() -> Result<Vec<cl_device_id>, GpuError> {
    let _one_at_a_time = ENUMERATION
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let platforms = get_platforms().map_err(|e| GpuError::Unavailable {
        api: Api::OpenCl,
        reason: format!("no OpenCL platform: {e}"),
    })?;
    let mut ids = Vec::new();
    for p in platforms {
        // A platform without devices answers with an error; it just has none.
        if let Ok(devices) = p.get_devices(CL_DEVICE_TYPE_ALL) {
            ids.extend(devices);
        }
    }
    Ok(ids)
}

fn describe(index: usize, id: cl_device_id) -> Result<DeviceInfo, GpuError> {
    let d = ClDevice::new(id);
    Ok(DeviceInfo {
        api: Api::OpenCl,
        index,
        name: d.name().map_err(|e| driver("reading the device name", e))?,
        memory_bytes: d
            .global_mem_size()
            .map_err(|e| driver("reading the device memory size", e))?,
        compute_units: d
            .max_compute_units()
            .map_err(|e| driver("reading the compute units", e))?,
    })
}

/// Every OpenCL device on this machine.
///
/// # Errors
/// [`GpuError::Unavailable`] when there is no OpenCL loader or platform.
pub fn devices() -> Result<Vec<DeviceInfo>, GpuError> {
    all_devices()?
        .into_iter()
        .enumerate()
        .map(|(i, id)| describe(i, id))
        .collect()
}

/// The index of the first OpenCL device that is a GPU.
///
/// # Errors
/// [`GpuError::NoDevice`] when there is none.
pub fn first_gpu() -> Result<usize, GpuError> {
    let ids = all_devices()?;
    ids.iter()
        .position(|&id| {
            ClDevice::new(id)
                .dev_type()
                .is_ok_and(|t| t & CL_DEVICE_TYPE_GPU != 0)
        })
        .ok_or_else(|| GpuError::NoDevice {
            api: Api::OpenCl,
            index: None,
            found: format!("{} OpenCL device(s), none of them a GPU", ids.len()),
        })
}

/// One kernel and the work-group size it launches with.
struct Launchable {
    kernel: Kernel,
    group: usize,
}

/// An OpenCL device with Pulse's program built for it.
pub struct OpenClDevice {
    info: DeviceInfo,
    context: Context,
    queue: CommandQueue,
    kernels: Mutex<HashMap<&'static str, Launchable>>,
}

/// Work-group size cap: enough threads to hide latency on GPUs, small enough for the
/// register-heavy G2 kernels.
const MAX_GROUP: usize = 128;

impl OpenClDevice {
    /// Opens device `index` and builds the kernels.
    ///
    /// # Errors
    /// [`GpuError::Unavailable`], [`GpuError::NoDevice`], [`GpuError::Build`] with the
    /// compiler's log, driver errors.
    pub fn open(index: usize) -> Result<Self, GpuError> {
        Self::build(index, &source::program(), source::KERNELS)
    }

    /// Opens device `index` with another program (for tests of the build path) exposing
    /// the kernels `names`.
    ///
    /// # Errors
    /// As [`OpenClDevice::open`].
    pub fn build(
        index: usize,
        program_source: &str,
        names: &[&'static str],
    ) -> Result<Self, GpuError> {
        let ids = all_devices()?;
        let Some(&id) = ids.get(index) else {
            return Err(GpuError::NoDevice {
                api: Api::OpenCl,
                index: Some(index),
                found: format!("{} OpenCL device(s)", ids.len()),
            });
        };
        let info = describe(index, id)?;
        let device = ClDevice::new(id);
        let context = Context::from_device(&device).map_err(|e| driver("creating a context", e))?;
        let queue = CommandQueue::create_default_with_properties(&context, 0, 0)
            .map_err(|e| driver("creating a command queue", e))?;
        let t = std::time::Instant::now();
        let mut program = Program::create_from_source(&context, program_source)
            .map_err(|e| driver("loading the program source", e))?;
        if let Err(e) = program.build(&[id], "-cl-std=CL1.2") {
            let log = program
                .get_build_log(id)
                .unwrap_or_else(|le| format!("({e}; the build log could not be read: {le})"));
            return Err(GpuError::Build {
                api: Api::OpenCl,
                log,
            });
        }
        tracing::info!(device = %info.label(), build_ms = t.elapsed().as_millis() as u64, "OpenCL kernels built");
        let mut kernels = HashMap::new();
        for &name in names {
            let kernel =
                Kernel::create(&program, name).map_err(|e| driver(&format!("kernel {name}"), e))?;
            let max = kernel
                .get_work_group_size(id)
                .map_err(|e| driver(&format!("work-group size of {name}"), e))?;
            let group = prev_power_of_two(max.clamp(1, MAX_GROUP));
            kernels.insert(name, Launchable { kernel, group });
        }
        Ok(Self {
            info,
            context,
            queue,
            kernels: Mutex::new(kernels),
        })
    }

    fn cl_buffer<'a>(&self, buf: &'a Buffer) -> Result<&'a ClBuffer<u8>, GpuError> {
        buf.inner::<ClBuffer<u8>>().ok_or_else(|| {
            GpuError::Unsupported("a buffer from another device was passed to OpenCL".into())
        })
    }
}

fn prev_power_of_two(x: usize) -> usize {
    1 << (usize::BITS - 1 - x.leading_zeros())
}

impl Device for OpenClDevice {
    fn info(&self) -> &DeviceInfo {
        &self.info
    }

    fn alloc(&self, bytes: usize) -> Result<Buffer, GpuError> {
        let size = bytes.max(1);
        // SAFETY: no host pointer is passed (null with flags that do not use one), so the
        // driver allocates and owns the memory; `Buffer` releases it on drop.
        let created = unsafe {
            ClBuffer::<u8>::create(&self.context, CL_MEM_READ_WRITE, size, ptr::null_mut())
        };
        let mut buffer = created.map_err(|e| match e.0 {
            CL_MEM_OBJECT_ALLOCATION_FAILURE | CL_OUT_OF_RESOURCES => GpuError::OutOfMemory {
                requested: bytes as u64,
                available: self.info.memory_bytes,
            },
            _ => driver("allocating a buffer", e),
        })?;
        // SAFETY: the fill covers exactly the buffer's `size` bytes with a one-byte
        // pattern that lives for the call; the queue is in order, so later commands see
        // the zeros.
        unsafe {
            self.queue
                .enqueue_fill_buffer(&mut buffer, &[0u8], 0, size, &[])
        }
        .map_err(|e| match e.0 {
            CL_MEM_OBJECT_ALLOCATION_FAILURE | CL_OUT_OF_RESOURCES => GpuError::OutOfMemory {
                requested: bytes as u64,
                available: self.info.memory_bytes,
            },
            _ => driver("zeroing a buffer", e),
        })?;
        Ok(Buffer::new(bytes, Box::new(buffer)))
    }

    fn write(&self, buf: &Buffer, offset: usize, data: &[u8]) -> Result<(), GpuError> {
        check_range(buf.len(), offset, data.len())?;
        if data.is_empty() {
            return Ok(());
        }
        let cl = self.cl_buffer(buf)?;
        // SAFETY: the write is blocking, so `data` outlives the transfer, and it reads
        // exactly `data.len()` bytes from it; the range was checked against the buffer's
        // size above. The returned event is wrapped so that it is released.
        unsafe {
            enqueue_write_buffer(
                self.queue.get(),
                cl.get(),
                CL_BLOCKING,
                offset,
                data.len(),
                data.as_ptr().cast(),
                0,
                ptr::null(),
            )
        }
        .map(|event| drop(Event::new(event)))
        .map_err(|e| driver("copying to the device", ClError(e)))
    }

    fn read(&self, buf: &Buffer, offset: usize, out: &mut [u8]) -> Result<(), GpuError> {
        check_range(buf.len(), offset, out.len())?;
        if out.is_empty() {
            return Ok(());
        }
        let cl = self.cl_buffer(buf)?;
        // SAFETY: the read is blocking (and the queue in order, so every earlier kernel has
        // finished); `out` is exactly the checked range's length.
        unsafe {
            self.queue
                .enqueue_read_buffer(cl, CL_BLOCKING, offset, out, &[])
        }
        .map(drop)
        .map_err(|e| driver("copying from the device", e))
    }

    fn launch(&self, name: &str, items: usize, args: &[Arg<'_>]) -> Result<(), GpuError> {
        if items == 0 {
            return Ok(());
        }
        let kernels = self
            .kernels
            .lock()
            .map_err(|_| GpuError::Unsupported("the OpenCL kernel table is poisoned".into()))?;
        let Some(k) = kernels.get(name) else {
            return Err(GpuError::Unsupported(format!("no kernel named {name}")));
        };
        for (i, arg) in args.iter().enumerate() {
            let index = i as cl_uint;
            // SAFETY: each argument has the size and kind the kernel's parameter declares
            // (`GLOBAL T *` ← a `cl_mem`, `uint` ← a `u32`), which the kernel table's
            // callers in `msm` and `ntt` keep in step with `kernels/`; the value is copied
            // by the driver during the call.
            let set = unsafe {
                match arg {
                    Arg::Buf(b) => k.kernel.set_arg(index, &self.cl_buffer(b)?.get()),
                    Arg::U32(v) => k.kernel.set_arg(index, v),
                }
            };
            set.map_err(|e| driver(&format!("argument {i} of {name}"), e))?;
        }
        let global = items.div_ceil(k.group) * k.group;
        // SAFETY: one dimension; the size arrays outlive the call; every argument was set
        // above, and the buffers stay alive until `read` waits for the queue (the callers
        // hold them across the launch and the read that follows).
        unsafe {
            self.queue.enqueue_nd_range_kernel(
                k.kernel.get(),
                1,
                ptr::null(),
                &global,
                &k.group,
                &[],
            )
        }
        .map(drop)
        .map_err(|e| driver(&format!("launching {name}"), e))
    }
}
