//! The worker's configuration: where NATS is, who the worker is, where it keeps keys, what
//! it proves on, and the few timings an operator may want to change.

use pulse_access::{NatsEndpoint, Role};
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// How long a job being proved when shutdown is asked may still take before it is handed
/// back.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// How long the worker tries to reach NATS at start before giving up.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(120);

/// How long a job that failed here waits before it is offered again (to any worker).
pub const DEFAULT_RETRY_DELAY: Duration = Duration::from_secs(10);

/// How many proving keys (with their prepared bases) are kept in memory.
pub const DEFAULT_PROVERS_CACHED: usize = 2;

/// The longest worker id.
pub const MAX_WORKER_ID_LEN: usize = 64;

/// A configuration that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The worker id is empty, too long or has characters other than `[A-Za-z0-9_-]`.
    #[error(
        "worker id `{id}` is not valid: use 1 to {MAX_WORKER_ID_LEN} characters among A-Z, a-z, 0-9, `_` and `-` (for instance the host name)"
    )]
    WorkerId {
        /// The id given (cut to a printable length).
        id: String,
    },
    /// No NATS URL.
    #[error("no NATS URL: pass the coordinator's NATS address, for instance nats://host:4222")]
    NatsUrl,
    /// A backend name that is not one of [`BackendKind::ALL`].
    #[error("backend `{name}` is not known; use auto, cpu, cuda or opencl")]
    Backend {
        /// The name given.
        name: String,
    },
    /// A GPU setting given to a backend it does not apply to.
    #[error("{what} applies to {applies_to}, not to the {backend} backend")]
    GpuSetting {
        /// The setting.
        what: &'static str,
        /// The backends it applies to.
        applies_to: &'static str,
        /// The backend chosen.
        backend: BackendKind,
    },
    /// The credentials file cannot be used.
    #[error("NATS credentials: {0}")]
    Credentials(String),
    /// A setting that must be positive is zero.
    #[error("{what} must be greater than zero")]
    Zero {
        /// The setting.
        what: &'static str,
    },
}

/// The proving backend, as the operator asks for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum BackendKind {
    /// The first CUDA device, else the first OpenCL GPU, else (with a warning) the CPU.
    /// OpenCL CPU devices are never picked: Pulse's CPU backend is faster on a CPU.
    Auto,
    /// `pulse_prover::CpuBackend`: multi-threaded MSM and NTT on the CPU.
    #[default]
    Cpu,
    /// `pulse_gpu::GpuBackend` on a CUDA device (kernels compiled by NVRTC).
    Cuda,
    /// `pulse_gpu::GpuBackend` on an OpenCL device.
    OpenCl,
}

impl BackendKind {
    /// Every backend, in the order the flags list them.
    pub const ALL: [BackendKind; 4] = [
        BackendKind::Auto,
        BackendKind::Cpu,
        BackendKind::Cuda,
        BackendKind::OpenCl,
    ];

    /// The name used in flags, results and the worker registry (`auto`, `cpu`, `cuda`,
    /// `opencl`). Results and the registry name the backend a worker resolved to, never
    /// `auto`.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Auto => "auto",
            BackendKind::Cpu => "cpu",
            BackendKind::Cuda => "cuda",
            BackendKind::OpenCl => "opencl",
        }
    }

    /// The GPU API this backend names, if it names one.
    pub fn api(self) -> Option<pulse_gpu::Api> {
        match self {
            BackendKind::Cuda => Some(pulse_gpu::Api::Cuda),
            BackendKind::OpenCl => Some(pulse_gpu::Api::OpenCl),
            BackendKind::Auto | BackendKind::Cpu => None,
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for BackendKind {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|b| b.name() == wanted)
            .ok_or_else(|| ConfigError::Backend {
                name: s.chars().take(32).collect(),
            })
    }
}

/// Everything [`crate::run`] needs.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// The NATS server(s), the CA that vouches for them, and this worker's credentials
    /// file (a worker user named as [`WorkerConfig::worker_id`]).
    pub nats: NatsEndpoint,
    /// The worker's id, chosen by its operator: the key of its registry entry and the name
    /// on its results. `[A-Za-z0-9_-]{1,64}`.
    pub worker_id: String,
    /// Where downloaded proving keys are kept (one directory per key hash).
    pub key_cache_dir: PathBuf,
    /// The proving backend.
    pub backend: BackendKind,
    /// Which device of the `cuda` or `opencl` API to prove on (default 0, the first).
    pub device: Option<usize>,
    /// The most GPU memory the worker uses, in bytes (default 90 % of the device's): for
    /// a GPU shared with other work. A proving key or job that does not fit is proved on
    /// the CPU instead.
    pub gpu_memory_limit: Option<u64>,
    /// The most memory the worker gives to a proving key's bases (as the key file stores
    /// them), in bytes; `None`: no limit. Announced in the registry: a key larger than this
    /// is proved split across workers, and this worker takes shards of it that fit.
    pub base_memory: Option<u64>,
    /// Stop after this many jobs (proved or failed); `None` runs until shutdown.
    pub max_jobs: Option<u64>,
    /// How long a job in progress at shutdown may take before it is handed back.
    pub shutdown_grace: Duration,
    /// How long to keep trying to reach NATS at start.
    pub connect_timeout: Duration,
    /// How long a job that failed here waits before it is offered again.
    pub retry_delay: Duration,
    /// How many proving keys to keep loaded.
    pub provers_cached: usize,
    /// Where to serve Prometheus metrics on `/metrics`; `None` serves none. Keep it on
    /// loopback or a private network: the page is not authenticated.
    pub metrics_addr: Option<SocketAddr>,
}

impl WorkerConfig {
    /// A configuration with the defaults for everything but the essentials.
    pub fn new(
        nats: NatsEndpoint,
        worker_id: impl Into<String>,
        key_cache_dir: impl Into<PathBuf>,
    ) -> Self {
        Self {
            nats,
            worker_id: worker_id.into(),
            key_cache_dir: key_cache_dir.into(),
            backend: BackendKind::default(),
            device: None,
            gpu_memory_limit: None,
            base_memory: None,
            max_jobs: None,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            retry_delay: DEFAULT_RETRY_DELAY,
            provers_cached: DEFAULT_PROVERS_CACHED,
            metrics_addr: None,
        }
    }

    /// Checks the configuration.
    ///
    /// # Errors
    /// The first [`ConfigError`] found.
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate_worker_id(&self.worker_id)?;
        if self.nats.url.trim().is_empty() {
            return Err(ConfigError::NatsUrl);
        }
        if let Some(creds) = self
            .nats
            .load_credentials()
            .map_err(|e| ConfigError::Credentials(e.to_string()))?
        {
            if creds.role() != Role::Worker {
                return Err(ConfigError::Credentials(format!(
                    "the credentials are for {creds}, not a worker; ask the operator for a worker's (`pulse nats worker add {}`)",
                    self.worker_id
                )));
            }
            if creds.user() != self.worker_id {
                return Err(ConfigError::Credentials(format!(
                    "the credentials are for worker `{}` but this worker's id is `{}`; run with --id {} (a worker may only announce itself under its own name)",
                    creds.user(),
                    self.worker_id,
                    creds.user()
                )));
            }
        }
        if self.provers_cached == 0 {
            return Err(ConfigError::Zero {
                what: "the number of cached provers",
            });
        }
        if self.max_jobs == Some(0) {
            return Err(ConfigError::Zero { what: "max jobs" });
        }
        if self.device.is_some() && self.backend.api().is_none() {
            return Err(ConfigError::GpuSetting {
                what: "a device number (--device)",
                applies_to: "the cuda and opencl backends",
                backend: self.backend,
            });
        }
        if self.gpu_memory_limit.is_some() && self.backend == BackendKind::Cpu {
            return Err(ConfigError::GpuSetting {
                what: "a GPU memory limit (--gpu-memory-limit)",
                applies_to: "the auto, cuda and opencl backends",
                backend: self.backend,
            });
        }
        if self.base_memory == Some(0) {
            return Err(ConfigError::Zero {
                what: "the base memory (--base-memory)",
            });
        }
        if self.gpu_memory_limit == Some(0) {
            return Err(ConfigError::Zero {
                what: "the GPU memory limit",
            });
        }
        Ok(())
    }
}

/// Checks a worker id: 1 to 64 characters among `A-Z a-z 0-9 _ -`, so that it is a valid
/// NATS key-value key and safe in logs and file names.
///
/// # Errors
/// [`ConfigError::WorkerId`].
pub fn validate_worker_id(id: &str) -> Result<(), ConfigError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_WORKER_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ConfigError::WorkerId {
            id: id.chars().take(MAX_WORKER_ID_LEN + 8).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_ids_are_checked() {
        for good in ["a", "hospital-7_gpu0", &"x".repeat(64)] {
            assert_eq!(validate_worker_id(good), Ok(()), "{good}");
        }
        for bad in ["", "a b", "a.b", "a/b", "é", "a*", &"x".repeat(65)] {
            let err = validate_worker_id(bad).expect_err(bad);
            assert!(err.to_string().contains("A-Z"), "{err}");
        }
    }

    #[test]
    fn config_is_validated() {
        let good = WorkerConfig::new(
            NatsEndpoint::new("nats://127.0.0.1:4222"),
            "w1",
            "/tmp/keys",
        );
        assert_eq!(good.validate(), Ok(()));
        let mut c = good.clone();
        c.worker_id = "no spaces".into();
        assert!(matches!(c.validate(), Err(ConfigError::WorkerId { .. })));
        let mut c = good.clone();
        c.nats.url = " ".into();
        assert_eq!(c.validate(), Err(ConfigError::NatsUrl));
        let mut c = good.clone();
        c.max_jobs = Some(0);
        assert!(matches!(c.validate(), Err(ConfigError::Zero { .. })));
        let mut c = good;
        c.provers_cached = 0;
        assert!(matches!(c.validate(), Err(ConfigError::Zero { .. })));
    }

    #[test]
    fn backends_parse() {
        for (text, kind) in [
            ("cpu", BackendKind::Cpu),
            ("CPU", BackendKind::Cpu),
            ("auto", BackendKind::Auto),
            (" Cuda ", BackendKind::Cuda),
            ("OpenCL", BackendKind::OpenCl),
        ] {
            assert_eq!(text.parse::<BackendKind>(), Ok(kind), "{text}");
        }
        for kind in BackendKind::ALL {
            assert_eq!(kind.to_string().parse::<BackendKind>(), Ok(kind));
        }
        let err = "metal".parse::<BackendKind>().expect_err("no metal");
        let text = err.to_string();
        assert!(text.contains("`metal`"), "{text}");
        for name in ["auto", "cpu", "cuda", "opencl"] {
            assert!(text.contains(name), "{text}");
        }
    }

    #[test]
    fn gpu_settings_need_a_gpu_backend() {
        let mut c = WorkerConfig::new(
            NatsEndpoint::new("nats://127.0.0.1:4222"),
            "w1",
            "/tmp/keys",
        );
        c.device = Some(1);
        let err = c.validate().expect_err("cpu has no device number");
        assert!(err.to_string().contains("--device"), "{err}");
        c.backend = BackendKind::Auto;
        assert!(matches!(c.validate(), Err(ConfigError::GpuSetting { .. })));
        c.backend = BackendKind::OpenCl;
        assert_eq!(c.validate(), Ok(()));
        c.gpu_memory_limit = Some(0);
        assert!(matches!(c.validate(), Err(ConfigError::Zero { .. })));
        c.gpu_memory_limit = Some(1 << 30);
        assert_eq!(c.validate(), Ok(()));
        c.device = None;
        c.backend = BackendKind::Auto;
        assert_eq!(c.validate(), Ok(()));
        c.backend = BackendKind::Cpu;
        let err = c.validate().expect_err("cpu has no GPU memory");
        assert!(err.to_string().contains("--gpu-memory-limit"), "{err}");
    }

    #[test]
    fn credentials_must_be_this_workers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("w.json");
        pulse_access::Credentials::generate(Role::Worker, "h1")
            .and_then(|c| c.save(&path))
            .expect("credentials");
        let endpoint = NatsEndpoint::new("tls://127.0.0.1:4222").with_credentials(&path);
        let ok = WorkerConfig::new(endpoint.clone(), "h1", "/tmp/keys");
        assert_eq!(ok.validate(), Ok(()));
        let other = WorkerConfig::new(endpoint, "h2", "/tmp/keys");
        let err = other
            .validate()
            .expect_err("another worker's id")
            .to_string();
        assert!(err.contains("--id h1"), "{err}");
        pulse_access::Credentials::generate(Role::Client, "h1")
            .and_then(|c| c.save(&path))
            .expect("credentials");
        let err = ok
            .validate()
            .expect_err("a client's credentials")
            .to_string();
        assert!(err.contains("not a worker"), "{err}");
    }
}
