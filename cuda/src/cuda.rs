//! The CUDA implementation of [`Device`], through `cudarc`'s driver API and NVRTC.
//!
//! - **NVRTC at run time.** The program from [`source::program`] is compiled when a device is
//!   opened, for that device's own compute capability (`--gpu-architecture=sm_XY`), straight
//!   to a CUBIN: no PTX is left for the driver to JIT, so a driver older than NVRTC loads it
//!   too (CUDA's minor-version compatibility covers binaries, not PTX).
//! - **Cached by source hash.** The CUBIN is kept under `$PULSE_KERNEL_CACHE`, else
//!   `$XDG_CACHE_HOME/pulse/kernels`, else `$HOME/.cache/pulse/kernels`, named by
//!   [`source::program_hash`], the architecture and the NVRTC version, and stored with its
//!   own SHA-256 so that a damaged file is rebuilt rather than handed to the driver.
//! - **One stream.** Every copy and launch goes to the context's default stream in order, so
//!   [`Device::read`] only has to wait for that stream; buffers are freed in stream order
//!   too, after the work that uses them.
//! - **Blocks of 256.** [`Device::launch`] runs `ceil(items / 256)` blocks of 256 threads;
//!   the kernels ignore indices past their bound.
//! - **Arguments checked against the source.** Each kernel's parameter list is read from the
//!   program text when the device is opened, and a launch whose [`Arg`]s do not match it is
//!   refused: a wrong argument list would make `cuLaunchKernel` read past the host's array.
//!
//! Both libraries are loaded at run time. `cudarc` panics when one is missing, so every entry
//! point checks for the library first and runs inside `catch_unwind`: without a driver or
//! NVRTC, the answer is [`GpuError::Unavailable`], never a panic.
#![allow(unsafe_code)]

use std::collections::HashMap;
use std::ffi::{CString, OsString, c_char, c_int};
use std::fmt;
use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use cudarc::driver::result::{self as driver, DriverError};
use cudarc::driver::sys::{self as driver_sys, CUdevice_attribute, CUresult};
use cudarc::driver::{
    CudaContext, CudaFunction, CudaModule, CudaSlice, CudaStream, DevicePtr, LaunchConfig,
    PushKernelArg,
};
use cudarc::nvrtc::Ptx;
use cudarc::nvrtc::result::{self as nvrtc, NvrtcError};
use cudarc::nvrtc::sys::{self as nvrtc_sys, nvrtcResult};
use sha2::{Digest, Sha256};

use crate::device::{Api, Arg, Buffer, Device, DeviceInfo, GpuError, check_range};
use crate::source;

/// Threads per block.
const BLOCK: u32 = 256;

/// Every CUDA device the driver reports.
///
/// # Errors
/// [`GpuError::Unavailable`] without a driver (no `libcuda`, or one that cannot start),
/// [`GpuError::NoDevice`] when the driver sees no GPU, driver errors.
pub fn devices() -> Result<Vec<DeviceInfo>, GpuError> {
    with_library(Library::Driver, || {
        init()?;
        (0..device_count()?).map(describe).collect()
    })
}

/// What NVRTC produced for one architecture.
#[derive(Clone)]
pub struct Compiled {
    /// The PTX text.
    pub ptx: String,
    /// The CUBIN for the architecture, what a device loads (empty for a virtual
    /// architecture, `compute_XY`).
    pub cubin: Vec<u8>,
    /// NVRTC's log: empty on a clean build, warnings otherwise.
    pub log: String,
}

impl fmt::Debug for Compiled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Compiled")
            .field("ptx_bytes", &self.ptx.len())
            .field("cubin_bytes", &self.cubin.len())
            .field("log", &self.log)
            .finish()
    }
}

/// Compiles CUDA C++ `source` with NVRTC for `arch` (`sm_80`, `sm_90`, …, or a virtual
/// `compute_XY` for PTX alone).
///
/// # Errors
/// [`GpuError::Unavailable`] without NVRTC, [`GpuError::Build`] with NVRTC's log when the
/// source (or the architecture) is rejected, [`GpuError::Driver`] when an NVRTC call fails.
pub fn compile(source: &str, arch: &str) -> Result<Compiled, GpuError> {
    let src = CString::new(source)
        .map_err(|_| GpuError::Unsupported("the kernel source contains a NUL byte".into()))?;
    if arch.contains('\0') {
        return Err(GpuError::Unsupported(format!(
            "bad architecture name {arch:?}"
        )));
    }
    with_library(Library::Nvrtc, || {
        let program = Program::new(&src)?;
        let options = [format!("--gpu-architecture={arch}")];
        // SAFETY: `program` is live until it is dropped at the end of this closure.
        let built = unsafe { nvrtc::compile_program(program.0, &options) };
        // SAFETY: as above; NVRTC keeps a log once compilation was attempted.
        let log =
            c_text(unsafe { nvrtc::get_program_log(program.0) }.or_nvrtc("nvrtcGetProgramLog")?);
        match built {
            Ok(()) => {}
            Err(NvrtcError(nvrtcResult::NVRTC_ERROR_COMPILATION)) => {
                return Err(GpuError::Build {
                    api: Api::Cuda,
                    log,
                });
            }
            Err(e) => {
                return Err(GpuError::Build {
                    api: Api::Cuda,
                    log: format!(
                        "nvrtcCompileProgram({}) failed: {e:?}\n{log}",
                        options.join(" ")
                    ),
                });
            }
        }
        // SAFETY: `program` is live and compiled.
        let ptx = c_text(unsafe { nvrtc::get_ptx(program.0) }.or_nvrtc("nvrtcGetPTX")?);
        // A virtual architecture (`compute_XY`) has PTX only.
        let cubin = if arch.starts_with("sm_") {
            program.cubin()?
        } else {
            Vec::new()
        };
        Ok(Compiled { ptx, cubin, log })
    })
}

/// NVRTC's version, `(major, minor)`.
///
/// # Errors
/// [`GpuError::Unavailable`] without NVRTC.
pub fn nvrtc_version() -> Result<(i32, i32), GpuError> {
    with_library(Library::Nvrtc, || {
        let (mut major, mut minor): (c_int, c_int) = (0, 0);
        // SAFETY: NVRTC writes one int through each pointer, both to live locals.
        unsafe { nvrtc_sys::nvrtcVersion(&mut major, &mut minor) }
            .result()
            .or_nvrtc("nvrtcVersion")?;
        Ok((major, minor))
    })
}

/// A CUDA device with Pulse's kernels loaded.
pub struct CudaDevice {
    info: DeviceInfo,
    stream: Arc<CudaStream>,
    kernels: HashMap<&'static str, Kernel>,
}

struct Kernel {
    function: CudaFunction,
    params: Vec<Param>,
}

/// A kernel parameter, as far as a launch can tell: a device pointer or a `uint`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Param {
    Pointer,
    U32,
}

impl CudaDevice {
    /// Opens device `index` and loads the kernels, compiling them unless the cache has them.
    ///
    /// # Errors
    /// [`GpuError::Unavailable`] without the driver or NVRTC, [`GpuError::NoDevice`] when
    /// there is no device `index`, [`GpuError::Build`] with NVRTC's log, driver errors.
    pub fn open(index: usize) -> Result<Self, GpuError> {
        with_library(Library::Driver, || {
            init()?;
            let count = device_count()?;
            if index >= count {
                return Err(GpuError::NoDevice {
                    api: Api::Cuda,
                    index: Some(index),
                    found: format!("the driver reports {count} CUDA device(s)"),
                });
            }
            let info = describe(index)?;
            let ctx = CudaContext::new(index).or_driver("creating a context")?;
            // SAFETY: cudarc's per-buffer events only order work across streams. This device
            // uses one stream, whose order already puts every use of a buffer after its
            // allocation and before its (stream-ordered) free.
            unsafe { ctx.disable_event_tracking() };
            let (major, minor) = ctx
                .compute_capability()
                .or_driver("reading the compute capability")?;
            let arch = format!("sm_{major}{minor}");
            let program = source::program();
            let module = load_module(&ctx, &program, &arch)?;
            let mut kernels = HashMap::new();
            for &name in source::KERNELS {
                let function = module
                    .load_function(name)
                    .or_driver(&format!("looking up kernel {name}"))?;
                let params = signature(&program, name)?;
                kernels.insert(name, Kernel { function, params });
            }
            tracing::info!(device = %info.label(), arch, "CUDA device ready");
            Ok(Self {
                info,
                stream: ctx.default_stream(),
                kernels,
            })
        })
    }

    /// The allocation behind `buf`, if this device made it.
    fn slice<'b>(&self, buf: &'b Buffer) -> Result<&'b CudaSlice<u8>, GpuError> {
        match buf.inner::<CudaSlice<u8>>() {
            Some(slice) if slice.ordinal() == self.info.index => Ok(slice),
            Some(slice) => Err(GpuError::Unsupported(format!(
                "a buffer of cuda:{} was passed to {}",
                slice.ordinal(),
                self.info.label()
            ))),
            None => Err(GpuError::Unsupported(format!(
                "a buffer of another backend was passed to {}",
                self.info.label()
            ))),
        }
    }
}

impl fmt::Debug for CudaDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CudaDevice")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl Device for CudaDevice {
    fn info(&self) -> &DeviceInfo {
        &self.info
    }

    fn alloc(&self, bytes: usize) -> Result<Buffer, GpuError> {
        // The driver refuses empty allocations; an empty buffer still needs a handle.
        match self.stream.alloc_zeros::<u8>(bytes.max(1)) {
            Ok(slice) => Ok(Buffer::new(bytes, Box::new(slice))),
            Err(DriverError(CUresult::CUDA_ERROR_OUT_OF_MEMORY)) => {
                let available = self
                    .stream
                    .context()
                    .mem_get_info()
                    .map_or(0, |(free, _)| free);
                Err(GpuError::OutOfMemory {
                    requested: bytes as u64,
                    available: available as u64,
                })
            }
            Err(e) => Err(driver_error(&format!("allocating {bytes} bytes"), e)),
        }
    }

    fn write(&self, buf: &Buffer, offset: usize, data: &[u8]) -> Result<(), GpuError> {
        let slice = self.slice(buf)?;
        check_range(buf.len(), offset, data.len())?;
        if data.is_empty() {
            return Ok(());
        }
        self.stream
            .context()
            .bind_to_thread()
            .or_driver("binding the context")?;
        let (base, _record) = slice.device_ptr(&self.stream);
        // SAFETY: `check_range` keeps the `data.len()` bytes at `offset` inside the allocation
        // (`buf.len()` never exceeds it), which stays alive until the stream has passed this
        // copy. The copy is queued on the stream that orders every other use of the buffer.
        // `data` is ordinary pageable memory (this crate pins nothing), which the driver copies
        // to a staging buffer before cuMemcpyHtoDAsync returns, so it may be freed right after.
        unsafe { driver::memcpy_htod_async(base + offset as u64, data, self.stream.cu_stream()) }
            .or_driver("copying to the device")
    }

    fn read(&self, buf: &Buffer, offset: usize, out: &mut [u8]) -> Result<(), GpuError> {
        let slice = self.slice(buf)?;
        check_range(buf.len(), offset, out.len())?;
        // First the queued work, so that a failed kernel is reported as such.
        self.stream
            .synchronize()
            .or_driver("waiting for queued work")?;
        if out.is_empty() {
            return Ok(());
        }
        self.stream
            .memcpy_dtoh(&slice.slice(offset..offset + out.len()), out)
            .or_driver("copying from the device")?;
        self.stream.synchronize().or_driver("waiting for the copy")
    }

    fn launch(&self, name: &str, items: usize, args: &[Arg<'_>]) -> Result<(), GpuError> {
        let kernel = self.kernels.get(name).ok_or_else(|| {
            GpuError::Unsupported(format!("Pulse's CUDA program has no kernel {name}"))
        })?;
        let given: Vec<Param> = args
            .iter()
            .map(|a| match a {
                Arg::Buf(_) => Param::Pointer,
                Arg::U32(_) => Param::U32,
            })
            .collect();
        if given != kernel.params {
            return Err(GpuError::Unsupported(format!(
                "kernel {name} takes {:?}, the launch passed {given:?}",
                kernel.params
            )));
        }
        if items == 0 {
            return Ok(());
        }
        let blocks = u32::try_from(items.div_ceil(BLOCK as usize))
            .ok()
            .filter(|&b| b <= i32::MAX as u32)
            .ok_or_else(|| {
                GpuError::Unsupported(format!(
                    "{items} work items is too many for one launch of {name}"
                ))
            })?;
        // Resolved first: the launch builder borrows every argument until it is launched.
        let values: Vec<Value<'_>> = args
            .iter()
            .map(|a| match a {
                Arg::Buf(b) => self.slice(b).map(Value::Buf),
                Arg::U32(v) => Ok(Value::U32(*v)),
            })
            .collect::<Result<_, _>>()?;
        let mut launch = self.stream.launch_builder(&kernel.function);
        for value in &values {
            match value {
                Value::Buf(slice) => launch.arg(*slice),
                Value::U32(v) => launch.arg(v),
            };
        }
        let config = LaunchConfig {
            grid_dim: (blocks, 1, 1),
            block_dim: (BLOCK, 1, 1),
            shared_mem_bytes: 0,
        };
        // SAFETY: the arguments match the kernel's parameter list (checked above against the
        // source it was compiled from), so the driver reads exactly the values pushed, each
        // alive until this call returns. The kernel touches only device memory, never the
        // host's; the buffers it is given outlive it because they are freed in this stream's
        // order. A kernel fault (the kernel's bug) is reported by the next synchronize.
        unsafe { launch.launch(config) }.or_driver(&format!("launching {name}"))?;
        Ok(())
    }
}

enum Value<'a> {
    Buf(&'a CudaSlice<u8>),
    U32(u32),
}

fn init() -> Result<(), GpuError> {
    match driver::init() {
        Ok(()) => Ok(()),
        Err(DriverError(CUresult::CUDA_ERROR_NO_DEVICE)) => Err(GpuError::NoDevice {
            api: Api::Cuda,
            index: None,
            found: "the CUDA driver is installed but sees no GPU".into(),
        }),
        Err(e) => Err(GpuError::Unavailable {
            api: Api::Cuda,
            reason: format!("cuInit failed: {}", reason(e)),
        }),
    }
}

fn device_count() -> Result<usize, GpuError> {
    let count = driver::device::get_count().or_driver("counting devices")?;
    Ok(usize::try_from(count).unwrap_or(0))
}

fn describe(index: usize) -> Result<DeviceInfo, GpuError> {
    let ordinal = c_int::try_from(index)
        .map_err(|_| GpuError::Unsupported(format!("device number {index} is out of range")))?;
    let dev = driver::device::get(ordinal).or_driver("cuDeviceGet")?;
    let name = driver::device::get_name(dev).or_driver("cuDeviceGetName")?;
    // SAFETY: `dev` is a handle cuDeviceGet just returned.
    let memory = unsafe { driver::device::total_mem(dev) }.or_driver("cuDeviceTotalMem")?;
    // SAFETY: as above.
    let sms = unsafe {
        driver::device::get_attribute(
            dev,
            CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT,
        )
    }
    .or_driver("cuDeviceGetAttribute")?;
    Ok(DeviceInfo {
        api: Api::Cuda,
        index,
        name,
        memory_bytes: memory as u64,
        compute_units: u32::try_from(sms).unwrap_or(0),
    })
}

/// Loads the program for `arch` from the cache, or compiles and caches it. Without NVRTC
/// on this machine, a CUBIN for `arch` built elsewhere ([`prebuild`], `pulse worker
/// kernels`) and copied into the cache is loaded instead, whatever NVRTC made it.
fn load_module(
    ctx: &Arc<CudaContext>,
    program: &str,
    arch: &str,
) -> Result<Arc<CudaModule>, GpuError> {
    let dir = cache_dir(|key| std::env::var_os(key));
    let (major, minor) = match nvrtc_version() {
        Ok(v) => v,
        Err(GpuError::Unavailable { api, reason }) => {
            return load_prebuilt(ctx, program, arch, dir.as_deref()).ok_or_else(|| {
                let place = dir.map_or("the kernel cache".into(), |d| d.display().to_string());
                GpuError::Unavailable {
                    api,
                    reason: format!(
                        "{reason}; nor are there prebuilt kernels for {arch} in {place} (run \
                         `pulse worker kernels --arch {arch} --cache DIR` where NVRTC is \
                         installed and copy DIR there, or set PULSE_KERNEL_CACHE to it)"
                    ),
                }
            });
        }
        Err(e) => return Err(e),
    };
    let path = dir.map(|dir| dir.join(cache_file(program, arch, major, minor)));
    if let Some(path) = &path
        && let Some(cubin) = read_cached(path)
    {
        match ctx.load_module(Ptx::from_binary(cubin)) {
            Ok(module) => {
                tracing::debug!(path = %path.display(), "CUDA kernels loaded from the cache");
                return Ok(module);
            }
            Err(e) => tracing::warn!(
                path = %path.display(),
                error = %reason(e),
                "cached CUDA kernels did not load; rebuilding"
            ),
        }
    }
    let started = Instant::now();
    let compiled = compile(program, arch)?;
    tracing::info!(
        arch,
        seconds = started.elapsed().as_secs_f64(),
        "NVRTC compiled Pulse's kernels"
    );
    if !compiled.log.trim().is_empty() {
        tracing::warn!(arch, log = %compiled.log, "NVRTC reported on Pulse's kernels");
    }
    if let Some(path) = &path
        && let Err(e) = write_cached(path, &compiled.cubin)
    {
        tracing::warn!(path = %path.display(), error = %e, "could not cache the CUDA kernels");
    }
    ctx.load_module(Ptx::from_binary(compiled.cubin))
        .or_driver("loading the kernels")
}

/// The cache's name for the program compiled for `arch` by NVRTC `major.minor`.
fn cache_file(program: &str, arch: &str, major: i32, minor: i32) -> String {
    format!(
        "{}-{arch}-nvrtc{major}.{minor}.cubin",
        source::program_hash(program)
    )
}

/// A cached CUBIN of this program for `arch` from any NVRTC, newest name first.
fn load_prebuilt(
    ctx: &Arc<CudaContext>,
    program: &str,
    arch: &str,
    dir: Option<&Path>,
) -> Option<Arc<CudaModule>> {
    let prefix = format!("{}-{arch}-nvrtc", source::program_hash(program));
    let mut names: Vec<PathBuf> = fs::read_dir(dir?)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".cubin"))
        })
        .collect();
    names.sort();
    names.into_iter().rev().find_map(|path| {
        let cubin = read_cached(&path)?;
        match ctx.load_module(Ptx::from_binary(cubin)) {
            Ok(module) => {
                tracing::info!(path = %path.display(), "prebuilt CUDA kernels loaded (no NVRTC here)");
                Some(module)
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %reason(e), "prebuilt CUDA kernels did not load");
                None
            }
        }
    })
}

/// Compiles Pulse's kernels for each architecture in `archs` (`sm_80`, `sm_90`, …) and
/// stores them in `dir` under the cache's names, so that a machine with the NVIDIA driver
/// but no NVRTC loads them (copy `dir` to its kernel cache, or point `PULSE_KERNEL_CACHE`
/// at it). Needs NVRTC here, no GPU. Returns the files written.
///
/// # Errors
/// [`GpuError::Unavailable`] without NVRTC, [`GpuError::Unsupported`] for a virtual
/// architecture, [`GpuError::Build`] with NVRTC's log, [`GpuError::Driver`] when `dir`
/// cannot be written.
pub fn prebuild(archs: &[String], dir: &Path) -> Result<Vec<PathBuf>, GpuError> {
    let (major, minor) = nvrtc_version()?;
    let program = source::program();
    let mut written = Vec::new();
    for arch in archs {
        if !arch.starts_with("sm_") {
            return Err(GpuError::Unsupported(format!(
                "architecture {arch:?}: a device loads a CUBIN, so name a real one (sm_80, sm_90)"
            )));
        }
        let compiled = compile(&program, arch)?;
        let path = dir.join(cache_file(&program, arch, major, minor));
        write_cached(&path, &compiled.cubin).map_err(|e| GpuError::Driver {
            api: Api::Cuda,
            what: format!("writing {}", path.display()),
            reason: e.to_string(),
        })?;
        written.push(path);
    }
    Ok(written)
}

/// Where compiled kernels are kept; `var` reads the environment.
fn cache_dir(var: impl Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    let set = |key: &str| var(key).filter(|v| !v.is_empty()).map(PathBuf::from);
    set("PULSE_KERNEL_CACHE")
        .or_else(|| set("XDG_CACHE_HOME").map(|d| d.join("pulse").join("kernels")))
        .or_else(|| set("HOME").map(|d| d.join(".cache").join("pulse").join("kernels")))
}

/// A cache file is the SHA-256 of the CUBIN followed by the CUBIN. The driver is given only
/// what NVRTC produced: it trusts the image's own headers for its length.
fn read_cached(path: &Path) -> Option<Vec<u8>> {
    let bytes = fs::read(path).ok()?;
    let (digest, cubin) = bytes.split_at_checked(32)?;
    if Sha256::digest(cubin).as_slice() == digest {
        Some(cubin.to_vec())
    } else {
        tracing::warn!(path = %path.display(), "damaged CUDA kernel cache file; rebuilding");
        None
    }
}

fn write_cached(path: &Path, cubin: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    // Written aside and renamed, so a reader never sees half a file.
    let tmp = dir.join(format!(
        ".{}.{}",
        std::process::id(),
        path.file_name().unwrap_or_default().to_string_lossy()
    ));
    let mut bytes = Sha256::digest(cubin).to_vec();
    bytes.extend_from_slice(cubin);
    fs::write(&tmp, bytes)?;
    fs::rename(&tmp, path).inspect_err(|_| {
        let _ = fs::remove_file(&tmp);
    })
}

/// Kernel `name`'s parameters, read from its definition `void name(…)` in the program.
fn signature(program: &str, name: &str) -> Result<Vec<Param>, GpuError> {
    let unreadable = |why: &str| {
        GpuError::Unsupported(format!(
            "cannot read the parameters of kernel {name}: {why}"
        ))
    };
    let head = format!("void {name}(");
    let start = program
        .find(&head)
        .ok_or_else(|| unreadable("no definition"))?
        + head.len();
    let len = program[start..]
        .find(')')
        .ok_or_else(|| unreadable("no closing parenthesis"))?;
    program[start..start + len]
        .split(',')
        .map(|p| {
            let words: Vec<&str> = p.split_whitespace().collect();
            if p.contains('*') {
                Ok(Param::Pointer)
            } else if words.len() >= 2 && words[words.len() - 2] == "uint" {
                Ok(Param::U32)
            } else {
                Err(unreadable(&format!(
                    "`{}` is neither a pointer nor a uint",
                    p.trim()
                )))
            }
        })
        .collect()
}

/// An NVRTC program, destroyed when dropped.
struct Program(nvrtc_sys::nvrtcProgram);

impl Program {
    /// The program for `src`, which must outlive it.
    fn new(src: &CString) -> Result<Self, GpuError> {
        nvrtc::create_program(src, Some(c"pulse.cu"))
            .map(Self)
            .or_nvrtc("nvrtcCreateProgram")
    }

    fn cubin(&self) -> Result<Vec<u8>, GpuError> {
        let mut size = 0usize;
        // SAFETY: the program is live and compiled; NVRTC writes the size to a live local.
        unsafe { nvrtc_sys::nvrtcGetCUBINSize(self.0, &mut size) }
            .result()
            .or_nvrtc("nvrtcGetCUBINSize")?;
        let mut cubin = vec![0u8; size];
        // SAFETY: `cubin` has the `size` bytes NVRTC just asked for.
        unsafe { nvrtc_sys::nvrtcGetCUBIN(self.0, cubin.as_mut_ptr().cast::<c_char>()) }
            .result()
            .or_nvrtc("nvrtcGetCUBIN")?;
        Ok(cubin)
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        // SAFETY: the handle came from nvrtcCreateProgram and is destroyed only here.
        if let Err(e) = unsafe { nvrtc::destroy_program(self.0) } {
            tracing::warn!(error = ?e, "nvrtcDestroyProgram failed");
        }
    }
}

/// A NUL-terminated buffer from NVRTC as text.
fn c_text(buf: Vec<c_char>) -> String {
    let bytes: Vec<u8> = buf
        .into_iter()
        .map(|c| c as u8)
        .take_while(|&b| b != 0)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[derive(Clone, Copy)]
enum Library {
    Driver,
    Nvrtc,
}

/// Runs `f`, which calls into `library`, after checking that the library loads. `cudarc`
/// panics on a missing library or symbol; either becomes [`GpuError::Unavailable`].
fn with_library<T>(
    library: Library,
    f: impl FnOnce() -> Result<T, GpuError>,
) -> Result<T, GpuError> {
    // SAFETY: this only dlopens the library under its usual names and closes it again;
    // loading runs NVIDIA's initialisers, as any use of the library does.
    let present = unsafe {
        match library {
            Library::Driver => driver_sys::is_culib_present(),
            Library::Nvrtc => nvrtc_sys::is_culib_present(),
        }
    };
    let missing = |why: String| GpuError::Unavailable {
        api: Api::Cuda,
        reason: why,
    };
    if !present {
        return Err(missing(match library {
            Library::Driver => "libcuda.so.1 not found: no NVIDIA driver is installed".into(),
            Library::Nvrtc => {
                "libnvrtc.so.12 not found: install NVRTC (pip install nvidia-cuda-nvrtc-cu12, \
                 as scripts/deps does) and put its lib/ folder on LD_LIBRARY_PATH"
                    .into()
            }
        }));
    }
    panic::catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("no message");
        Err(missing(format!(
            "the CUDA library could not be used: {message}"
        )))
    })
}

fn reason(e: DriverError) -> String {
    match (e.error_name(), e.error_string()) {
        (Ok(name), Ok(text)) => format!("{}: {}", name.to_string_lossy(), text.to_string_lossy()),
        _ => format!("{:?}", e.0),
    }
}

fn driver_error(what: &str, e: DriverError) -> GpuError {
    GpuError::Driver {
        api: Api::Cuda,
        what: what.into(),
        reason: reason(e),
    }
}

trait OrDriver<T> {
    fn or_driver(self, what: &str) -> Result<T, GpuError>;
}

impl<T> OrDriver<T> for Result<T, DriverError> {
    fn or_driver(self, what: &str) -> Result<T, GpuError> {
        self.map_err(|e| driver_error(what, e))
    }
}

trait OrNvrtc<T> {
    fn or_nvrtc(self, what: &str) -> Result<T, GpuError>;
}

impl<T> OrNvrtc<T> for Result<T, NvrtcError> {
    fn or_nvrtc(self, what: &str) -> Result<T, GpuError> {
        self.map_err(|e| GpuError::Driver {
            api: Api::Cuda,
            what: what.into(),
            reason: format!("{:?}", e.0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kernel_has_a_signature_a_launch_can_match() {
        let program = source::program();
        for name in source::KERNELS {
            let params = signature(&program, name).unwrap_or_else(|e| panic!("{e}"));
            assert!(
                params.contains(&Param::Pointer),
                "{name} takes no buffer: {params:?}"
            );
        }
        assert_eq!(
            signature(
                "KERNEL void k(GLOBAL const fr_t *a, uint n,\n  GLOBAL uint *b) {",
                "k"
            ),
            Ok(vec![Param::Pointer, Param::U32, Param::Pointer])
        );
        assert!(signature("KERNEL void k(ulong n) {", "k").is_err());
    }

    #[test]
    fn the_cache_follows_the_environment() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |key: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| OsString::from(v))
            }
        };
        const ALL: &[(&str, &str)] = &[
            ("PULSE_KERNEL_CACHE", "/k"),
            ("XDG_CACHE_HOME", "/x"),
            ("HOME", "/h"),
        ];
        assert_eq!(cache_dir(env(ALL)), Some(PathBuf::from("/k")));
        assert_eq!(
            cache_dir(env(&ALL[1..])),
            Some(PathBuf::from("/x/pulse/kernels"))
        );
        assert_eq!(
            cache_dir(env(&[("XDG_CACHE_HOME", ""), ("HOME", "/h")])),
            Some(PathBuf::from("/h/.cache/pulse/kernels"))
        );
        assert_eq!(cache_dir(env(&[])), None);
    }

    #[test]
    fn a_cache_file_round_trips_and_damage_is_refused() {
        let dir = std::env::temp_dir().join(format!("pulse-cuda-cache-{}", std::process::id()));
        let path = dir.join("k.cubin");
        write_cached(&path, b"\x7fELF not really").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            read_cached(&path).as_deref(),
            Some(&b"\x7fELF not really"[..])
        );
        let mut bytes = fs::read(&path).unwrap_or_default();
        if let Some(last) = bytes.last_mut() {
            *last ^= 1;
        }
        fs::write(&path, bytes).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read_cached(&path), None);
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn without_a_gpu_listing_devices_is_an_error_not_a_panic() {
        match devices() {
            Ok(found) => assert!(found.iter().all(|d| d.api == Api::Cuda)),
            Err(GpuError::Unavailable { .. } | GpuError::NoDevice { .. }) => {
                assert!(CudaDevice::open(0).is_err());
            }
            Err(e) => panic!("unexpected error listing CUDA devices: {e}"),
        }
    }
}
